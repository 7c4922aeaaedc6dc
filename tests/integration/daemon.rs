//! `bantin run` as a real process against a local site: sources on a seconds schedule,
//! feeds over HTTP, new articles after the next tick, live config reload (good and bad),
//! and a clean exit on SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TestConfig, TestSite};

const SITE: &str = "tests/fixtures/sites/news";
/// Longest wait for something the daemon should do within a few ticks.
const PATIENCE: Duration = Duration::from_secs(60);

const CATEGORIES: &str = r#"
[[category]]
id = "party-work"
title = "Công tác Đảng"

[[category.rule]]
any = ["chi bộ", "đảng viên"]
fields = ["title"]

[[category]]
id = "police-activities"
title = "Hoạt động Công an"

[[category.rule]]
any = ["bắt giữ", "phòng cháy chữa cháy"]
fields = ["title"]
"#;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Daemon {
    child: Child,
    log: PathBuf,
    base: String,
}

impl Daemon {
    fn start(config: &Path, port: u16, log: PathBuf) -> Daemon {
        let child = Command::new(assert_cmd::cargo::cargo_bin!("bantin"))
            .args(["--config", config.to_str().unwrap(), "run"])
            .env("RUST_LOG", "bantin=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("bantin starts");
        Daemon {
            child,
            log,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::get(format!("{}{path}", self.base)).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// Waits until `path` answers 200 with a body for which `ok` holds.
    async fn wait_for(&self, path: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some((200, body)) = self.get(path).await
                && ok(&body)
            {
                return body;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {what} at {path}; daemon log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn titles(rss: &str) -> Vec<String> {
    rss::Channel::read_from(rss.as_bytes())
        .expect("served RSS parses")
        .items()
        .iter()
        .filter_map(|i| i.title().map(str::to_owned))
        .collect()
}

fn add_article(site_dir: &Path, n: u32, title: &str) {
    let dir = site_dir.join(format!("tin-tuc/bai-{n}-i{}", 10000 + n));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("index.html"),
        format!(
            "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body><article><h1 class=\"title\">{title}</h1><div class=\"date\">03/05/2024 09:00</div>\
             <p class=\"lead\">(CAO) {title}: tin mới trong ngày.</p><div class=\"body\">\
             <p>Bài viết mới số {n} về hoạt động của lực lượng trong tuần.</p>\
             <p>Đoạn kết của bài mới số {n}, đủ dài để là một bài báo thật.</p></div></article></body></html>"
        ),
    )
    .unwrap();
    let list = site_dir.join("list/index.html");
    let text = std::fs::read_to_string(&list).unwrap();
    let link = format!(
        "<div class=\"list\">\n    <article class=\"story\"><h3><a href=\"/tin-tuc/bai-{n}-i{}/\">{title}</a></h3></article>",
        10000 + n
    );
    std::fs::write(&list, text.replacen("<div class=\"list\">", &link, 1)).unwrap();
}

#[tokio::test]
async fn daemon_crawls_on_schedule_reloads_config_and_stops_cleanly() {
    let site_copy = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(SITE),
        site_copy.path(),
    );
    let site = TestSite::serve(site_copy.path()).await;
    let port = free_port();
    let source = format!(
        r#"
[[source]]
id = "news"
kind = "listing"
urls = ["{}"]
schedule = "*/2 * * * * *"

[source.links]
selector = "div.list article.story"
pattern = "-i\\d{{5}}/?$"
next_page = "ul.pagination a.next"
max_pages = 2
"#,
        site.url("/list/")
    );
    let test = TestConfig::new()
        .settings(&format!(
            "listen = \"127.0.0.1:{port}\"\nbase_url = \"http://127.0.0.1:{port}/\""
        ))
        .categories(CATEGORIES)
        .site("news", &source);
    test.load();
    let config_path = test.dir().join("bantin.toml");
    // The log sits in the watched folder and is read often: that must not hold reloads back.
    let mut daemon = Daemon::start(&config_path, port, test.dir().join("daemon.log"));

    // The first ticks fill every feed.
    let all = daemon
        .wait_for("/feeds/all.rss", "30 items", |b| titles(b).len() == 30)
        .await;
    assert_eq!(titles(&all).len(), 30);
    let party = titles(&daemon.get("/feeds/party-work.rss").await.unwrap().1);
    assert_eq!(party.len(), 12, "{party:?}");
    assert!(
        party
            .iter()
            .all(|t| t.starts_with("Chi bộ") || t.starts_with("Đảng viên"))
    );
    let police = titles(&daemon.get("/feeds/police-activities.rss").await.unwrap().1);
    assert_eq!(police.len(), 12, "{police:?}");
    assert!(
        police
            .iter()
            .all(|t| t.starts_with("Bắt giữ") || t.starts_with("Phòng cháy"))
    );

    // A new article on the site shows up after the next tick.
    add_article(site_copy.path(), 31, "Bắt giữ nhóm đối tượng mới số 31");
    daemon
        .wait_for("/feeds/police-activities.rss", "the new article", |b| {
            titles(b).iter().any(|t| t.contains("số 31"))
        })
        .await;

    // A keyword and a category added to the config take effect without a restart.
    let categories = test.dir().join("categories.toml");
    let more = CATEGORIES.replace(
        "any = [\"bắt giữ\", \"phòng cháy chữa cháy\"]",
        "any = [\"bắt giữ\", \"phòng cháy chữa cháy\", \"tuần tra\"]",
    ) + "\n[[category]]\nid = \"giao-thong\"\ntitle = \"Giao thông\"\n\n[[category.rule]]\nany = [\"tuần tra\"]\n";
    std::fs::write(&categories, &more).unwrap();
    daemon
        .wait_for("/feeds/giao-thong.rss", "the new category's feed", |b| {
            rss::Channel::read_from(b.as_bytes()).is_ok()
        })
        .await;
    add_article(site_copy.path(), 32, "Tuần tra ban đêm số 32");
    daemon
        .wait_for(
            "/feeds/police-activities.rss",
            "the new keyword at work",
            |b| titles(b).iter().any(|t| t.contains("số 32")),
        )
        .await;
    daemon
        .wait_for("/feeds/giao-thong.rss", "the new category at work", |b| {
            titles(b).iter().any(|t| t.contains("số 32"))
        })
        .await;

    // An invalid config is logged with its place and the daemon keeps the old one.
    std::fs::write(
        &categories,
        "[[category]]\nid = \"Giao Thông\"\ntitle = 5\n",
    )
    .unwrap();
    let start = Instant::now();
    while !daemon.log().contains("categories.toml:") {
        assert!(
            start.elapsed() < PATIENCE,
            "no reload error logged:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = daemon
        .get("/feeds/giao-thong.rss")
        .await
        .expect("still serving");
    assert_eq!(
        status, 200,
        "the old config, with its category, stays in force"
    );
    assert!(daemon.child.try_wait().unwrap().is_none(), "still running");

    // SIGTERM: a clean stop with exit code 0.
    let pid = daemon.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "did not stop:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(0), "log:\n{}", daemon.log());
    assert!(daemon.log().contains("bantin stopped"));
}

#[tokio::test]
async fn demo_runs_offline_and_serves_feeds_that_parse() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo.log");
    let mut demo = Daemon {
        child: Command::new(assert_cmd::cargo::cargo_bin!("bantin"))
            .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--dir", dir.path().join("demo").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("bantin demo starts"),
        log,
        base: format!("http://127.0.0.1:{port}"),
    };
    for feed in ["all", "party-work", "police-activities"] {
        let rss = demo
            .wait_for(&format!("/feeds/{feed}.rss"), "a demo feed", |b| {
                !titles(b).is_empty()
            })
            .await;
        let channel = rss::Channel::read_from(rss.as_bytes()).unwrap();
        crate::support::feeds::validate_rss(&channel);
        let (_, atom) = demo.get(&format!("/feeds/{feed}.atom")).await.unwrap();
        let parsed = atom_syndication::Feed::read_from(atom.as_bytes()).expect("Atom parses");
        assert_eq!(parsed.entries().len(), titles(&rss).len());
        let (_, json) = demo.get(&format!("/feeds/{feed}.json")).await.unwrap();
        let parsed = feed_rs::parser::parse(json.as_bytes()).expect("JSON Feed parses");
        assert_eq!(parsed.entries.len(), titles(&rss).len());
    }
    let all = titles(&demo.get("/feeds/all.rss").await.unwrap().1);
    let party = titles(&demo.get("/feeds/party-work.rss").await.unwrap().1);
    let police = titles(&demo.get("/feeds/police-activities.rss").await.unwrap().1);
    assert!(
        party.len() >= 6 && police.len() >= 6,
        "{party:?} {police:?}"
    );
    assert!(
        all.len() > party.len().max(police.len()),
        "all holds every story: {all:?}"
    );
    assert!(
        party.iter().all(|t| !police.contains(t)),
        "no story is in both feeds"
    );

    let pid = demo.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = demo.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "demo did not stop:\n{}",
            demo.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(0), "log:\n{}", demo.log());
}
