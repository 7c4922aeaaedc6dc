//! Several bantin processes on one PostgreSQL database, as behind a load balancer: a
//! crawling worker publishes, a serving tier (`bantin run --no-crawl`) answers the same
//! bytes and ETags, each server honours the other's ETag, a publish by a third process
//! reaches both, and the serving tier never asks the site for anything.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::header;

use crate::support::daemon::{Daemon, PATIENCE, copy_dir, free_port, titles};
use crate::support::{Backend, TestConfig, TestSite, TestStore, news_listing_source};

const CATEGORIES: &str = r#"
[[category]]
id = "police-activities"
title = "Hoạt động Công an"

[[category.rule]]
any = ["bắt giữ"]
fields = ["title"]
"#;

/// Every name a server answers under `/feeds/` for [`CATEGORIES`].
const DOCUMENTS: &[&str] = &[
    "all.rss",
    "all.atom",
    "all.json",
    "police-activities.rss",
    "police-activities.atom",
    "police-activities.json",
    "feeds.opml",
];

/// A worker's configuration folder: the news site as its one source (on `schedule`),
/// the shared database, and a port of its own.
fn worker_config(site: &TestSite, database: &TestStore, port: u16, schedule: &str) -> TestConfig {
    let source = news_listing_source(&site.url("/list/"), schedule);
    let config = TestConfig::new()
        .settings(&database.settings_line())
        // One public address for every worker: what a load balancer puts in front.
        .settings(&format!(
            "listen = \"127.0.0.1:{port}\"\nbase_url = \"http://feeds.example.org/\""
        ))
        .categories(CATEGORIES)
        .site("news", &source);
    config.write();
    config
}

async fn news_site() -> (TestSite, tempfile::TempDir) {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sites/news"),
        copy.path(),
    );
    (TestSite::serve(copy.path()).await, copy)
}

/// Status, ETag and body of `path` on `server`, sending `if_none_match` when given.
async fn fetch(server: &Daemon, path: &str, if_none_match: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", server.base));
    if let Some(etag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    let response = request.send().await.expect("server answers");
    let status = response.status().as_u16();
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    (status, etag, response.bytes().await.unwrap().to_vec())
}

/// Waits until both servers answer `path` with the same body, for which `ok` holds.
async fn wait_alike(a: &Daemon, b: &Daemon, path: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let body = a.wait_for(path, path, &ok).await;
        if b.get(path)
            .await
            .is_some_and(|(s, other)| s == 200 && other == body)
        {
            return body;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{path} never alike on both servers\nA:\n{}\nB:\n{}",
            a.log(),
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_servers_on_one_database_answer_the_same_feeds_and_etags() {
    let (site, _copy) = news_site().await;
    let database = TestStore::new(Backend::Postgres);
    let (port_a, port_b) = (free_port(), free_port());
    let config_a = worker_config(&site, &database, port_a, "0 0 0 1 1 *");
    let config_b = worker_config(&site, &database, port_b, "0 0 0 1 1 *");
    let a = Daemon::start_with(
        &config_a.dir().join("bantin.toml"),
        port_a,
        config_a.dir().join("a.log"),
        &["--once"],
    );
    let b = Daemon::start_with(
        &config_b.dir().join("bantin.toml"),
        port_b,
        config_b.dir().join("b.log"),
        &["--no-crawl"],
    );
    let crawled = wait_alike(&a, &b, "/feeds/all.rss", |body| !titles(body).is_empty()).await;
    assert!(titles(&crawled).len() >= 10, "{crawled}");

    for name in DOCUMENTS {
        let path = format!("/feeds/{name}");
        let (status_a, etag_a, body_a) = fetch(&a, &path, None).await;
        let (status_b, etag_b, body_b) = fetch(&b, &path, None).await;
        assert_eq!((status_a, status_b), (200, 200), "{name}");
        assert_eq!(body_a, body_b, "{name}: the same bytes from both servers");
        assert_eq!(etag_a, etag_b, "{name}: the same ETag from both servers");
        assert_eq!(
            fetch(&b, &path, Some(&etag_a)).await.0,
            304,
            "{name} on B, A's tag"
        );
        assert_eq!(
            fetch(&a, &path, Some(&etag_b)).await.0,
            304,
            "{name} on A, B's tag"
        );
    }

    // A publish by another process (an operator's `bantin ingest`) reaches both.
    let page =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/publish/pages/new-article.html");
    let ingest = std::process::Command::new(assert_cmd::cargo::cargo_bin!("bantin"))
        .args([
            "--config",
            config_a.dir().join("bantin.toml").to_str().unwrap(),
        ])
        .args(["ingest", "--url", "http://127.0.0.1:9/tin-tuc/moi-i99999/"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(ingest.status.success(), "{ingest:?}");
    let after = wait_alike(&a, &b, "/feeds/all.rss", |body| {
        titles(body).contains(&"Bắt giữ nhóm đối tượng buôn lậu qua biên giới".to_owned())
    })
    .await;
    assert_eq!(titles(&after).len(), titles(&crawled).len() + 1);

    // Both tell which publish they answer, the newest the store holds.
    let (health_a, health_b) = (health(&a).await, health(&b).await);
    let served = &health_a["published"]["served_generation"];
    assert!(served.as_u64().is_some_and(|g| g > 0), "{health_a}");
    assert_eq!(served, &health_b["published"]["served_generation"]);
    assert_eq!(served, &health_a["published"]["stored_generation"]);
    let metrics = b.get("/metrics").await.expect("metrics answer").1;
    assert!(
        metrics.contains(&format!("bantin_publish_generation_served {served}")),
        "{metrics}"
    );
}

async fn health(daemon: &Daemon) -> serde_json::Value {
    let (_, body) = daemon.get("/healthz").await.expect("healthz answers");
    serde_json::from_str(&body).expect("healthz is JSON")
}

#[tokio::test]
async fn no_crawl_serves_what_others_publish_and_asks_the_site_nothing() {
    let (site, _copy) = news_site().await;
    let database = TestStore::new(Backend::Postgres);
    let port = free_port();
    // Due every second: a worker that crawled would ask the site at once.
    let config = worker_config(&site, &database, port, "* * * * * *");
    let settings = config.dir().join("bantin.toml");
    let server = Daemon::start_with(
        &settings,
        port,
        config.dir().join("serve.log"),
        &["--no-crawl"],
    );
    server.wait_for("/healthz", "the server", |_| true).await;
    assert_eq!(
        server.get("/feeds/all.rss").await.map(|(status, _)| status),
        Some(404),
        "a serving tier publishes nothing itself"
    );

    let publish = std::process::Command::new(assert_cmd::cargo::cargo_bin!("bantin"))
        .args(["--config", settings.to_str().unwrap(), "publish"])
        .output()
        .unwrap();
    assert!(publish.status.success(), "{publish:?}");
    server
        .wait_for("/feeds/all.rss", "the published feed", |_| true)
        .await;
    // Several ticks of the every-second schedule have passed since the server started.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        site.requests().is_empty(),
        "the serving tier asked the site: {:?}\n{}",
        site.requests(),
        server.log()
    );
}
