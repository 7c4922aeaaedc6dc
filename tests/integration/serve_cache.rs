//! The server answers published feeds from memory; these tests show it answers the new
//! version once a publish replaced them: by the publisher in the same process (which
//! refreshes the copy), or by another process on the same store (followed through the
//! store's publish generation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bantin::daemon::Service;
use bantin::serve::{self, AppState};
use tokio_util::sync::CancellationToken;

use crate::support::daemon::{Daemon, PATIENCE, copy_dir, free_port, titles};
use crate::support::feeds::{FeedEnv, article};

async fn get_titles(url: &str) -> Vec<String> {
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    titles(&body)
}

#[tokio::test]
async fn cached_feed_is_answered_anew_after_the_publisher_replaces_it() {
    let mut env = FeedEnv::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/feeds/all.rss", listener.local_addr().unwrap());
    env.config.settings.base_url = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let config = Arc::new(env.config.clone());
    let service = Service::open(&config).expect("store opens");
    env.add(
        &article(1, "Bài đầu tiên", "2024-05-01T08:00:00+07:00"),
        &[],
    );
    service.publish(&config).await.expect("first publish");
    let state = AppState::new(
        Arc::new(ArcSwap::from(config.clone())),
        service.store(),
        service.pipeline.metrics.clone(),
    )
    .with_published(service.published.clone());
    let shutdown = CancellationToken::new();
    tokio::spawn(serve::serve(listener, state, shutdown.clone()));
    assert_eq!(get_titles(&url).await, ["Bài đầu tiên"], "first answer");
    assert_eq!(get_titles(&url).await, ["Bài đầu tiên"], "cached answer");

    env.add(&article(2, "Bài thứ hai", "2024-05-02T08:00:00+07:00"), &[]);
    service.publish(&config).await.expect("second publish");
    assert_eq!(
        get_titles(&url).await,
        ["Bài thứ hai", "Bài đầu tiên"],
        "the answer right after the publish that replaced the file"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn serve_alone_answers_a_feed_another_process_published() {
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("config");
    copy_dir(
        std::path::Path::new("tests/fixtures/publish/config"),
        &config_dir,
    );
    let port = free_port();
    let settings = config_dir.join("bantin.toml");
    let text = std::fs::read_to_string(&settings)
        .unwrap()
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    std::fs::write(
        &settings,
        format!("{text}data_dir = \"../data\"\nfeeds_dir = \"../feeds\"\n"),
    )
    .unwrap();
    let server = Daemon::command(&settings, port, dir.path().join("serve.log"), &["serve"]);
    let first = server
        .wait_for("/feeds/all.rss", "the published feed", |_| true)
        .await;
    assert!(titles(&first).is_empty(), "the store is empty: {first}");

    // What a `bantin crawl` from cron does: another process stores and publishes.
    let page = "tests/fixtures/sites/news/tin-tuc/bai-1-i10001/index.html";
    let ingest = std::process::Command::new(assert_cmd::cargo::cargo_bin!("bantin"))
        .args(["--config", settings.to_str().unwrap(), "ingest", page])
        .output()
        .unwrap();
    assert!(ingest.status.success(), "{ingest:?}");

    let start = Instant::now();
    loop {
        let body = server
            .wait_for("/feeds/all.rss", "the feed", |_| true)
            .await;
        if titles(&body) == ["Bắt giữ đối tượng trộm cắp số 1"] {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the other process's publish was never served; still:\n{body}\nlog:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
