//! `bantin run` as a real process against a local site: sources on a seconds schedule,
//! feeds over HTTP, new articles after the next tick, live config reload (good and bad),
//! publishes coalesced over a burst of runs, and a clean exit on SIGTERM.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bantin::daemon::{PUBLISH_INTERVAL, Publisher, Service};
use tokio_util::sync::CancellationToken;

use crate::support::daemon::{Daemon, PATIENCE, copy_dir, free_port, metric, titles};
use crate::support::{TestConfig, TestSite};

const SITE: &str = "tests/fixtures/sites/news";

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

fn write_article(site_dir: &Path, n: u32, title: &str) {
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
}

fn add_article(site_dir: &Path, n: u32, title: &str) {
    write_article(site_dir, n, title);
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
    // Feed files are written one after another, so each is waited for on its own.
    daemon
        .wait_for("/feeds/all.rss", "30 items", |b| titles(b).len() == 30)
        .await;
    let party = titles(
        &daemon
            .wait_for("/feeds/party-work.rss", "12 items", |b| {
                titles(b).len() == 12
            })
            .await,
    );
    assert!(
        party
            .iter()
            .all(|t| t.starts_with("Chi bộ") || t.starts_with("Đảng viên"))
    );
    let police = titles(
        &daemon
            .wait_for("/feeds/police-activities.rss", "12 items", |b| {
                titles(b).len() == 12
            })
            .await,
    );
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
    let status = daemon.stop().await;
    assert_eq!(status.code(), Some(0), "log:\n{}", daemon.log());
    assert!(daemon.log().contains("bantin stopped"));
}

/// Sources in a burst: each has its own listing page with two new articles.
const BURST_SOURCES: u32 = 40;

/// A site with [`BURST_SOURCES`] listing pages (`/list-<i>/`), each linking two articles
/// of its own, and a configuration with one source per page, all due every second.
async fn burst_site(site_dir: &Path, settings: &str) -> (TestSite, TestConfig) {
    let mut test = TestConfig::new().settings(&format!("items_per_feed = 500\n{settings}"));
    for i in 0..BURST_SOURCES {
        let mut links = String::new();
        for n in [2 * i + 1, 2 * i + 2] {
            let title = format!("Bản tin của nguồn {i}, bài số {n}");
            write_article(site_dir, n, &title);
            links.push_str(&format!(
                "<article class=\"story\"><h3><a href=\"/tin-tuc/bai-{n}-i{}/\">{title}</a></h3></article>",
                10000 + n
            ));
        }
        let list = site_dir.join(format!("list-{i}"));
        std::fs::create_dir_all(&list).unwrap();
        std::fs::write(
            list.join("index.html"),
            format!(
                "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Tin {i}</title></head>\
                 <body><div class=\"list\">{links}</div></body></html>"
            ),
        )
        .unwrap();
    }
    let site = TestSite::serve(site_dir).await;
    for i in 0..BURST_SOURCES {
        test = test.site(
            &format!("s{i}"),
            &format!(
                "[[source]]\nid = \"s{i}\"\nkind = \"listing\"\nurls = [\"{}\"]\n\
                 schedule = \"* * * * * *\"\n\n[source.links]\nselector = \"div.list article.story\"\n\
                 pattern = \"-i\\\\d{{5}}/?$\"\n",
                site.url(&format!("/list-{i}/"))
            ),
        );
    }
    test.load();
    (site, test)
}

/// Every source of a burst changes the store at about the same time: the daemon
/// publishes a few times, at most once per interval, and the feeds end up with every
/// item. Counts come from `/metrics`.
async fn burst_is_published_a_few_times_with_every_item(args: &[&str]) {
    let site_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_site, test) = burst_site(
        site_dir.path(),
        &format!("listen = \"127.0.0.1:{port}\"\nbase_url = \"http://127.0.0.1:{port}/\""),
    )
    .await;
    let started = Instant::now();
    let mut daemon = Daemon::start_with(
        &test.dir().join("bantin.toml"),
        port,
        test.dir().join("daemon.log"),
        args,
    );
    let items = 2 * BURST_SOURCES as usize;
    let all = daemon
        .wait_for("/feeds/all.rss", "every item of the burst", |b| {
            titles(b).len() == items
        })
        .await;
    let mut expected: Vec<String> = (0..BURST_SOURCES)
        .flat_map(|i| [2 * i + 1, 2 * i + 2].map(|n| format!("Bản tin của nguồn {i}, bài số {n}")))
        .collect();
    let mut published = titles(&all);
    expected.sort();
    published.sort();
    assert_eq!(published, expected);

    let (_, metrics) = daemon.get("/metrics").await.expect("metrics answer");
    let elapsed = started.elapsed();
    let requests = metric(&metrics, "bantin_publish_requests_total");
    let publishes = metric(&metrics, "bantin_publishes_total{result=\"ok\"}");
    // One request at start, one per source run that stored something.
    assert!(
        requests > u64::from(BURST_SOURCES),
        "{requests} requests:\n{metrics}"
    );
    assert!(
        publishes < requests,
        "{publishes} publishes for {requests} requests"
    );
    // Publishes start at least an interval apart, all since the daemon started.
    let at_most = 1 + (elapsed.as_millis() / PUBLISH_INTERVAL.as_millis()) as u64;
    assert!(
        publishes <= at_most,
        "{publishes} publishes in {elapsed:?}; at most {at_most} fit:\n{}",
        daemon.log()
    );
    assert_eq!(
        metric(&metrics, "bantin_publishes_total{result=\"error\"}"),
        0
    );

    let status = daemon.stop().await;
    assert_eq!(status.code(), Some(0), "log:\n{}", daemon.log());
}

#[tokio::test]
async fn burst_of_scheduled_runs_is_published_a_few_times_with_every_item() {
    burst_is_published_a_few_times_with_every_item(&[]).await;
}

#[tokio::test]
async fn burst_of_once_runs_is_published_a_few_times_with_every_item() {
    burst_is_published_a_few_times_with_every_item(&["--once"]).await;
}

#[tokio::test]
async fn publisher_stopped_with_a_change_pending_publishes_it_first() {
    let site_dir = tempfile::tempdir().unwrap();
    let (_site, test) = burst_site(site_dir.path(), "").await;
    let config = Arc::new(test.load());
    let service = Service::open(&config).expect("store opens");
    let (_config_tx, config_rx) = tokio::sync::watch::channel(config.clone());
    let stop = CancellationToken::new();
    let (publisher, publishing) = Publisher::start(service.clone(), config_rx, stop.clone());
    let publishes = || {
        metric(
            &service.pipeline.metrics.render(),
            "bantin_publishes_total{result=\"ok\"}",
        )
    };

    let first = service
        .pipeline
        .run_source(&config, &config.sources[0])
        .await;
    assert_eq!(first.new, 2, "{first:?}");
    publisher.request();
    let start = Instant::now();
    while publishes() == 0 {
        assert!(
            start.elapsed() < PATIENCE,
            "the first request was not published"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The next change falls within the interval after that publish, so it waits...
    let second = service
        .pipeline
        .run_source(&config, &config.sources[1])
        .await;
    assert_eq!(second.new, 2, "{second:?}");
    publisher.request();
    // ...but stopping does not drop it.
    stop.cancel();
    publishing.await.expect("the publishing task ends cleanly");

    assert_eq!(publishes(), 2);
    let rss = std::fs::read_to_string(config.settings.feeds_dir.join("all.rss")).unwrap();
    assert_eq!(titles(&rss).len(), 4, "{:?}", titles(&rss));
}

#[tokio::test]
async fn demo_runs_offline_and_serves_feeds_that_parse() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo.log");
    let mut command = Command::new(assert_cmd::cargo::cargo_bin!("bantin"));
    command
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--site-listen", "127.0.0.1:0"])
        .args(["--dir", dir.path().join("demo").to_str().unwrap()]);
    let mut demo = Daemon::spawn(command, port, log);
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

    demo.signal("INT");
    let status = demo.wait_exit().await;
    assert_eq!(status.code(), Some(0), "log:\n{}", demo.log());
}
