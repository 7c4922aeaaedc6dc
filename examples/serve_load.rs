//! Load benchmark for the feed server: publishes a 50-item feed into a temporary
//! folder, serves it on 127.0.0.1, and hammers `/feeds/all.rss` from 64 concurrent
//! connections — plain GETs, gzip GETs, and conditional GETs answered 304.
//!
//! Run: `cargo run --release --example serve_load [seconds-per-mode]`
//!
//! One run on a busy 2-core machine (165 KB feed): plain GET ~3,400 req/s, GET with
//! If-None-Match (304) ~6,300 req/s, gzip ~60 req/s (compressed on every request).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bantin::config::Config;
use bantin::metrics::Metrics;
use bantin::model::{Article, CategoryId, SourceId};
use bantin::serve::AppState;
use bantin::store::{SqliteStore, Store};
use chrono::{Duration as Days, TimeZone};
use tokio_util::sync::CancellationToken;
use url::Url;

const CONNECTIONS: usize = 64;
const ITEMS: u32 = 50;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir()?;
    let mut config = Config::load(Path::new("tests/fixtures/publish/config/bantin.toml"))?;
    config.settings.data_dir = dir.path().join("data");
    config.settings.feeds_dir = dir.path().join("feeds");
    let store = Arc::new(SqliteStore::open(
        &dir.path().join("data/bantin.sqlite3"),
        3,
    )?);
    for n in 0..ITEMS {
        store.record(
            &article(n),
            &SourceId::from("news"),
            &[CategoryId::from("party-work")],
            None,
        )?;
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        config.settings.base_url = Url::parse(&format!("http://{addr}/"))?;
        bantin::publish::publish_all(&config, store.as_ref())?;
        let size = std::fs::metadata(config.settings.feeds_dir.join("all.rss"))?.len();
        let items = store.latest_items(&CategoryId::from("all"), 100)?.len();
        let state = AppState::new(
            Arc::new(ArcSwap::from_pointee(config)),
            store,
            Arc::new(Metrics::new()),
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(bantin::serve::serve(listener, state, shutdown.clone()));
        let url = format!("http://{addr}/feeds/all.rss");
        println!("{items}-item feed, {size} bytes; {CONNECTIONS} connections, {seconds}s per mode");
        let client = reqwest::Client::builder()
            .no_gzip()
            .no_brotli()
            .pool_max_idle_per_host(CONNECTIONS)
            .build()?;
        let etag = client.get(&url).send().await?.headers()["etag"]
            .to_str()?
            .to_owned();
        for (mode, headers) in [
            ("GET, no conditional headers", vec![]),
            (
                "GET, Accept-Encoding: gzip",
                vec![("accept-encoding", "gzip".to_owned())],
            ),
            (
                "GET, If-None-Match (304)",
                vec![("if-none-match", etag.clone())],
            ),
        ] {
            let (rps, statuses) =
                hammer(&client, &url, &headers, Duration::from_secs(seconds)).await;
            println!("{mode:32} {rps:>10.0} req/s  statuses {statuses:?}");
        }
        shutdown.cancel();
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

async fn hammer(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&'static str, String)],
    length: Duration,
) -> (f64, BTreeMap<u16, u64>) {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let client = client.clone();
            let url = url.to_owned();
            let headers = headers.to_vec();
            let done = done.clone();
            tokio::spawn(async move {
                let mut statuses = BTreeMap::new();
                while start.elapsed() < length {
                    let mut request = client.get(&url);
                    for (name, value) in &headers {
                        request = request.header(*name, value);
                    }
                    let status = match request.send().await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let _ = response.bytes().await;
                            status
                        }
                        Err(_) => 0,
                    };
                    *statuses.entry(status).or_insert(0u64) += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                statuses
            })
        })
        .collect();
    let mut statuses = BTreeMap::new();
    for task in tasks {
        for (status, n) in task.await.expect("load task") {
            *statuses.entry(status).or_insert(0) += n;
        }
    }
    let rps = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    (rps, statuses)
}

fn article(n: u32) -> Article {
    let published = chrono::FixedOffset::east_opt(7 * 3600)
        .unwrap()
        .with_ymd_and_hms(2024, 3, 1, 8, 0, 0)
        .unwrap()
        + Days::minutes(i64::from(n) * 37);
    // Distinct text per item, so dedup keeps all of them.
    const WORDS: [&str; 24] = [
        "công",
        "an",
        "tỉnh",
        "tuần",
        "tra",
        "kiểm",
        "soát",
        "giao",
        "thông",
        "đường",
        "phố",
        "người",
        "dân",
        "chiến",
        "sĩ",
        "trật",
        "tự",
        "an",
        "ninh",
        "xã",
        "huyện",
        "phường",
        "bảo",
        "đảm",
    ];
    let mut seed = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut paragraphs = Vec::new();
    for _ in 0..10 {
        let words: Vec<&str> = (0..40)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                WORDS[(seed % WORDS.len() as u64) as usize]
            })
            .collect();
        paragraphs.push(words.join(" "));
    }
    let body_text = paragraphs.join("\n\n");
    Article {
        url: Url::parse(&format!("https://news.example/tin-tuc/bai-{n}-i{n}0000/")).unwrap(),
        canonical_url: None,
        title: format!("Bài viết số {n}: Công an tỉnh triển khai nhiệm vụ"),
        published: Some(published),
        updated: None,
        authors: vec!["Phóng viên".into()],
        lead: Some(format!("(CAO) Tóm tắt bài viết số {n}.")),
        body_html: body_text
            .split("\n\n")
            .map(|p| format!("<p>{p}</p>"))
            .collect(),
        body_text,
        image: Some(Url::parse(&format!("https://news.example/anh/{n}.jpg")).unwrap()),
        tags: vec!["An ninh".into()],
        section: None,
        language: Some("vi".into()),
        provenance: BTreeMap::new(),
    }
}
