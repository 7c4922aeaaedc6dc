//! The command line as an operator meets it: what each command prints, and its exit code
//! when it is given something it cannot use.

use assert_cmd::Command;

use crate::support::TestConfig;
use crate::support::daemon::{Daemon, free_port};

fn bantin(config: &std::path::Path) -> Command {
    let mut command = Command::cargo_bin("bantin").expect("the bantin binary is built");
    command.arg("--config").arg(config);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `bantin <command>` on a config listening on a free port: its first line on stdout
/// names the address, and the server answers there.
async fn prints_its_address(command: &str) {
    let port = free_port();
    let config = TestConfig::new().settings(&format!(
        "listen = \"127.0.0.1:{port}\"\nbase_url = \"http://feeds.example.org/\""
    ));
    let root = config.write().join("bantin.toml");
    let log = config.dir().join("log");
    let daemon = Daemon::command(&root, port, log, &[command]);
    let lines = daemon.stdout.until("listening on");
    let line = lines.last().expect("until returns the line it found");
    assert!(
        line.contains(&format!("listening on http://127.0.0.1:{port}/")),
        "{line}"
    );
    daemon.wait_for("/healthz", "the server", |_| true).await;
}

#[tokio::test]
async fn serve_prints_the_address_it_listens_on() {
    prints_its_address("serve").await;
}

#[tokio::test]
async fn run_prints_the_address_it_listens_on() {
    prints_its_address("run").await;
}

#[test]
fn ingest_of_a_folder_without_html_is_bad_usage() {
    let config = TestConfig::new();
    let root = config.write().join("bantin.toml");
    let folder = config.dir().join("saved");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("notes.txt"), "not a page").unwrap();
    let out = bantin(&root)
        .arg("ingest")
        .arg(&folder)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no HTML files in"), "{stderr}");
    assert!(stderr.contains("*.html"), "{stderr}");
}

#[tokio::test]
async fn refused_loopback_fetch_names_allow_private_networks() {
    let site = crate::support::TestSite::empty().await;
    let config = TestConfig::new()
        .fetch("allow_private_networks = false")
        .site(
            "local",
            &format!(
                "[[source]]\nid = \"local\"\nkind = \"feed\"\nurls = [\"{}\"]\nschedule = \"0 * * * *\"\n",
                site.url("/feed.xml")
            ),
        );
    let root = config.write().join("bantin.toml");
    let out = tokio::task::spawn_blocking(move || {
        bantin(&root)
            .arg("crawl")
            .assert()
            .code(1)
            .get_output()
            .clone()
    })
    .await
    .unwrap();
    let printed = text(&out.stdout) + &text(&out.stderr);
    assert!(printed.contains("loopback"), "{printed}");
    assert!(
        printed.contains("allow_private_networks = true"),
        "{printed}"
    );
}

const POLICE_CATEGORY: &str = "[[category]]\nid = \"police-activities\"\ntitle = \"Hoạt động Công an\"\n\n[[category.rule]]\nany = [\"bắt giữ\"]\n";

const ARREST_PAGE: &str = "<!doctype html><html><head><title>Bắt giữ nghi phạm</title></head>\
    <body><article><h1>Bắt giữ nghi phạm trộm cắp</h1>\
    <p>Công an quận đã bắt giữ hai nghi phạm trộm cắp tài sản trong đêm qua.</p>\
    <p>Vụ việc đang được điều tra làm rõ.</p></article></body></html>";

/// A config with the police category and the arrest page saved beside it.
fn config_with_saved_page() -> (TestConfig, std::path::PathBuf, std::path::PathBuf) {
    let config = TestConfig::new().categories(POLICE_CATEGORY);
    let root = config.write().join("bantin.toml");
    let page = config.dir().join("arrest.html");
    std::fs::write(&page, ARREST_PAGE).unwrap();
    (config, root, page)
}

#[test]
fn classify_explains_a_saved_html_page_by_default() {
    let (_config, root, page) = config_with_saved_page();
    let out = bantin(&root)
        .arg("classify")
        .arg(&page)
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("title: Bắt giữ nghi phạm trộm cắp"),
        "{stdout}"
    );
    assert!(
        stdout.contains("categories from rules: police-activities"),
        "{stdout}"
    );
    assert!(stdout.contains("MATCH"), "{stdout}");
}

#[test]
fn classify_finds_a_stored_item_by_id_and_by_its_feed_guid() {
    let (config, root, page) = config_with_saved_page();
    bantin(&root).arg("ingest").arg(&page).assert().success();
    let json = std::fs::read_to_string(config.dir().join("feeds/all.json")).unwrap();
    let feed: serde_json::Value = serde_json::from_str(&json).unwrap();
    let guid = feed["items"][0]["id"].as_str().unwrap().to_owned();
    let id = guid.rsplit(':').next().unwrap().to_owned();
    assert!(guid.starts_with("tag:") && guid != id, "{guid}");
    for target in [guid, id] {
        let out = bantin(&root)
            .args(["classify", &target])
            .assert()
            .success()
            .get_output()
            .clone();
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("categories from rules: police-activities"),
            "{target}: {stdout}"
        );
    }
}

#[test]
fn classify_of_a_file_it_cannot_read_says_what_it_reads() {
    let (config, root, _) = config_with_saved_page();
    let notes = config.dir().join("notes.txt");
    std::fs::write(&notes, "bắt giữ").unwrap();
    let out = bantin(&root)
        .arg("classify")
        .arg(&notes)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = text(&out.stderr);
    assert!(stderr.contains("saved HTML pages"), "{stderr}");
}

const CRIME_CATEGORY: &str = "[[category]]\nid = \"crime\"\ntitle = \"Tội phạm\"\n\n[[category.rule]]\nany = [\"trộm cắp\"]\n";

/// The arrest page ingested under the police category, then the categories file
/// replaced by one with only a `crime` category, and `bantin <args>` run.
fn after_replacing_the_category(args: &[&str]) -> (TestConfig, String) {
    let (config, root, page) = config_with_saved_page();
    bantin(&root).arg("ingest").arg(&page).assert().success();
    let feeds = config.dir().join("feeds");
    assert!(feeds.join("police-activities.rss").is_file());
    std::fs::write(config.dir().join("categories.toml"), CRIME_CATEGORY).unwrap();
    let out = bantin(&root)
        .args(args)
        .assert()
        .success()
        .get_output()
        .clone();
    (config, text(&out.stdout))
}

#[test]
fn reextract_counts_items_whose_categories_changed() {
    let (_config, stdout) = after_replacing_the_category(&["reextract"]);
    assert!(
        stdout.contains("1 pages: 0 updated, 1 re-categorized, 0 unchanged"),
        "{stdout}"
    );
}

#[test]
fn feeds_of_a_removed_category_are_removed() {
    for command in ["reextract", "publish"] {
        let (config, _) = after_replacing_the_category(&[command]);
        let feeds = config.dir().join("feeds");
        for ext in ["rss", "atom", "json"] {
            assert!(
                !feeds.join(format!("police-activities.{ext}")).exists(),
                "{command} {ext}"
            );
            assert!(
                feeds.join(format!("crime.{ext}")).is_file(),
                "{command} {ext}"
            );
            assert!(
                feeds.join(format!("all.{ext}")).is_file(),
                "{command} {ext}"
            );
        }
    }
}

/// A config with one listing source over the `news` fixture site served by `site`:
/// (the config, kept alive for its files, and the path of its `bantin.toml`).
fn news_listing_config(site: &crate::support::TestSite) -> (TestConfig, std::path::PathBuf) {
    let config = TestConfig::new().site(
        "news",
        &format!(
            "[[source]]\nid = \"news\"\nkind = \"listing\"\nurls = [\"{}\"]\nschedule = \"0 * * * *\"\n\n\
             [source.links]\nselector = \"div.list article.story\"\npattern = \"-i\\\\d{{5}}/?$\"\n",
            site.url("/list/")
        ),
    );
    let root = config.write().join("bantin.toml");
    (config, root)
}

#[tokio::test]
async fn crawl_without_a_terminal_prints_plain_progress_lines_per_source() {
    let site = crate::support::TestSite::serve("tests/fixtures/sites/news").await;
    let (_config, root) = news_listing_config(&site);
    let out = tokio::task::spawn_blocking(move || {
        bantin(&root)
            .arg("crawl")
            .assert()
            .success()
            .get_output()
            .clone()
    })
    .await
    .unwrap();
    let stdout = text(&out.stdout);
    let to_read = regex::Regex::new(r"(?m)^\[news\] (\d+) page\(s\) to read$").unwrap();
    let total: u64 = to_read.captures(&stdout).expect(&stdout)[1]
        .parse()
        .unwrap();
    assert!(total > 1, "the listing and its articles: {stdout}");
    let done = regex::Regex::new(
        r"(?m)^\[news\] done, (\d+)/(\d+) pages, (\d+) new, 0 updated, 0 errors, \d+\.\ds$",
    )
    .unwrap();
    let caps = done.captures(&stdout).expect(&stdout);
    assert_eq!(caps[1], caps[2], "{stdout}");
    assert_eq!(caps[2].parse::<u64>().unwrap(), total, "{stdout}");
    assert_eq!(caps[3].parse::<u64>().unwrap(), total - 1, "{stdout}");
    // The summary table follows the progress lines.
    assert!(
        stdout.find("[news] done").unwrap() < stdout.find("source ").unwrap(),
        "{stdout}"
    );
}

#[tokio::test]
async fn crawl_on_a_terminal_draws_a_bar_per_source_with_its_counts() {
    let site = crate::support::TestSite::serve("tests/fixtures/sites/news").await;
    let (_config, root) = news_listing_config(&site);
    let bantin = assert_cmd::cargo::cargo_bin!("bantin");
    // `script` (util-linux, on every Debian system) runs the crawl on a pseudo-terminal
    // and copies what it drew to our pipe.
    let command = format!("{} --config {} crawl", bantin.display(), root.display());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("script")
            .args(["-qefc", &command, "/dev/null"])
            .env("COLUMNS", "120")
            .output()
            .expect("`script` runs")
    })
    .await
    .unwrap();
    let drawn = text(&out.stdout);
    assert!(out.status.success(), "{drawn}");
    assert!(
        !drawn.contains("page(s) to read"),
        "a terminal gets bars, not lines: {drawn}"
    );
    // The last frame of the bar: every page read, with the counts of the run.
    let bar = regex::Regex::new(r"news +\S* +(\d+)/(\d+) +pages +(\d+) new, 0 updated, 0 errors")
        .unwrap();
    let frames: Vec<_> = bar.captures_iter(&drawn).collect();
    let last = frames.last().expect(&drawn);
    assert_eq!(last[1], last[2], "{drawn}");
    let total: u64 = last[2].parse().unwrap();
    assert!(total > 1, "the listing and its articles: {drawn}");
    assert_eq!(last[3].parse::<u64>().unwrap(), total - 1, "{drawn}");
    assert!(drawn.contains("source "), "the summary follows: {drawn}");
}

/// `bantin preview` of one address of the `news` fixture site, with `flags`, against a
/// config where a source on another host comes first and the `news` source reads the
/// byline as the section: (the JSON line, stderr).
async fn preview_news_page(flags: &[&str]) -> (serde_json::Value, String) {
    let site = crate::support::TestSite::serve("tests/fixtures/sites/news").await;
    let source = |id: &str, url: &str| {
        format!(
            "[[source]]\nid = \"{id}\"\nkind = \"feed\"\nurls = [\"{url}\"]\nschedule = \"0 * * * *\"\n\n[source.extract]\nsection = \"div.author\"\n"
        )
    };
    let config = TestConfig::new()
        .site(
            "a-elsewhere",
            &source("elsewhere", "http://elsewhere.example/list/"),
        )
        .site("news", &source("news", site.url("/list/").as_str()));
    config.load();
    let root = config.dir().join("bantin.toml");
    let page = site.url("/tin-tuc/bai-1-i10001/");
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        bantin(&root)
            .arg("preview")
            .args(flags)
            .arg(page.as_str())
            .output()
            .expect("bantin runs")
    })
    .await
    .expect("the preview task ends");
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let json = serde_json::from_slice(&output.stdout).expect("one JSON line");
    (json, stderr)
}

#[tokio::test]
async fn preview_of_an_address_applies_the_source_it_belongs_to_and_says_which() {
    let (json, stderr) = preview_news_page(&[]).await;
    assert_eq!(
        json["section"], "Phóng viên 1",
        "the news source's selector"
    );
    assert!(stderr.contains("with source news from"), "{stderr}");
}

#[tokio::test]
async fn preview_with_no_source_gives_the_generic_result() {
    let (json, stderr) = preview_news_page(&["--no-source"]).await;
    assert_eq!(json["section"], serde_json::Value::Null);
    assert!(!stderr.contains("source news"), "{stderr}");
}

#[test]
fn the_source_of_an_address_is_the_one_whose_section_holds_it_else_its_site() {
    let config = bantin::config::Config::load(std::path::Path::new("config/bantin.toml"))
        .expect("the shipped config is valid");
    let source_of = |address: &str| {
        let url = url::Url::parse(address).expect("valid address");
        config.source_for(&url).map(|s| s.id.to_string())
    };
    assert_eq!(
        source_of("https://cand.com.vn/Thoi-su/hoi-nghi-i700003/").as_deref(),
        Some("cand-thoi-su")
    );
    assert_eq!(
        source_of("https://cand.com.vn/Ban-tin-113/bat-giu-i700004/").as_deref(),
        Some("cand-ban-tin-113")
    );
    assert_eq!(
        source_of("https://cand.com.vn/The-thao/tran-dau-i700005/").as_deref(),
        Some(config.sources[0].id.as_str()),
        "another section of the site: the site's first source"
    );
    assert_eq!(source_of("https://news.example/tin-i1/"), None);
}
