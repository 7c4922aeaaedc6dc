//! The server over real TCP on 127.0.0.1: feeds with caching headers and 304s,
//! compression, HEAD, errors, traversal attempts, filters, index, health and metrics.

use std::io::Read;

use reqwest::header;

use crate::support::feeds::{FeedEnv, article, validate_rss};
use crate::support::server::TestServer;
use crate::support::synthetic;

async fn server() -> TestServer {
    let env = FeedEnv::new();
    env.add(
        &article(
            1,
            "Đảng ủy Công an tỉnh tổng kết công tác Đảng",
            "2020-07-17T21:54:00+07:00",
        ),
        &["party-work"],
    );
    env.add(
        &article(
            2,
            "Bắt giữ nhóm đối tượng trộm cắp xe máy",
            "2020-07-16T08:05:00+07:00",
        ),
        &["police-activities"],
    );
    env.add(
        &article(
            3,
            "Cảnh sát giao thông xử lý vi phạm nồng độ cồn",
            "2020-07-15T10:00:00+07:00",
        ),
        &["police-activities"],
    );
    TestServer::start(env).await
}

/// A client that neither decompresses nor caches, so the tests see the wire.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .build()
        .unwrap()
}

fn titles(rss: &[u8]) -> Vec<String> {
    rss::Channel::read_from(rss)
        .expect("RSS parses")
        .items
        .into_iter()
        .filter_map(|i| i.title)
        .collect()
}

#[tokio::test]
async fn feed_answers_200_then_304_for_its_etag() {
    let server = server().await;
    let first = client()
        .get(server.url("/feeds/all.rss"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.headers()[header::CONTENT_TYPE],
        "application/rss+xml; charset=utf-8"
    );
    assert_eq!(
        first.headers()[header::CACHE_CONTROL],
        "public, max-age=1200"
    );
    let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong ETag: {etag}"
    );
    let body = first.bytes().await.unwrap();
    assert_eq!(
        body,
        std::fs::read(server.env.config.settings.feeds_dir.join("all.rss")).unwrap()
    );

    let second = client()
        .get(server.url("/feeds/all.rss"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 304);
    assert_eq!(second.headers()[header::ETAG], etag.as_str());
    assert!(second.bytes().await.unwrap().is_empty());

    let stale = client()
        .get(server.url("/feeds/all.rss"))
        .header(header::IF_NONE_MATCH, "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
}

#[tokio::test]
async fn last_modified_is_the_newest_item_and_if_modified_since_gives_304() {
    let server = server().await;
    let response = client()
        .get(server.url("/feeds/all.atom"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/atom+xml; charset=utf-8"
    );
    let last_modified = response.headers()[header::LAST_MODIFIED]
        .to_str()
        .unwrap()
        .to_owned();
    let newest = server
        .env
        .store
        .latest_items(&"all".into(), 50)
        .unwrap()
        .iter()
        .map(|i| i.updated_at)
        .max()
        .unwrap();
    assert_eq!(
        last_modified,
        newest.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
    );

    let again = client()
        .get(server.url("/feeds/all.atom"))
        .header(header::IF_MODIFIED_SINCE, &last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let older = client()
        .get(server.url("/feeds/all.atom"))
        .header(header::IF_MODIFIED_SINCE, "Sat, 01 Jan 2000 00:00:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(older.status(), 200);
}

use bantin::store::Store;

#[tokio::test]
async fn gzip_and_brotli_when_asked() {
    let server = server().await;
    let plain = client()
        .get(server.url("/feeds/all.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        plain.headers()[header::CONTENT_TYPE],
        "application/feed+json; charset=utf-8"
    );
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    let plain_etag = plain.headers()[header::ETAG].to_str().unwrap().to_owned();
    let plain_body = plain.bytes().await.unwrap();

    let gz = client()
        .get(server.url("/feeds/all.json"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
    let gz_etag = gz.headers()[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(
        gz_etag,
        format!("\"{}-gzip\"", plain_etag.trim_matches('"')),
        "another representation, another strong tag"
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&gz.bytes().await.unwrap()[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain_body);

    let revalidated = client()
        .get(server.url("/feeds/all.json"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .header(header::IF_NONE_MATCH, &gz_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);

    let br = client()
        .get(server.url("/feeds/all.rss"))
        .header(header::ACCEPT_ENCODING, "br")
        .send()
        .await
        .unwrap();
    assert_eq!(br.headers()[header::CONTENT_ENCODING], "br");
}

#[tokio::test]
async fn head_sends_the_headers_without_a_body() {
    let server = server().await;
    let get = client()
        .get(server.url("/feeds/party-work.rss"))
        .send()
        .await
        .unwrap();
    let etag = get.headers()[header::ETAG].clone();
    let head = client()
        .head(server.url("/feeds/party-work.rss"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()[header::ETAG], etag);
    assert_eq!(
        head.headers()[header::CONTENT_TYPE],
        "application/rss+xml; charset=utf-8"
    );
    assert!(head.headers().contains_key(header::LAST_MODIFIED));
    assert!(head.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let server = server().await;
    for path in [
        "/nope",
        "/feeds/unknown.rss",
        "/feeds/all.xml",
        "/feeds/all",
        "/feeds/",
        "/feeds/a/b.rss",
    ] {
        let status = client()
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "{path}");
    }
    for (method, path) in [
        (reqwest::Method::POST, "/feeds/all.rss"),
        (reqwest::Method::PUT, "/feeds/all.rss"),
        (reqwest::Method::DELETE, "/"),
        (reqwest::Method::POST, "/healthz"),
        (reqwest::Method::PATCH, "/somewhere"),
    ] {
        let status = client()
            .request(method.clone(), server.url(path))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 405, "{method} {path}");
    }
}

#[tokio::test]
async fn traversal_attempts_never_reach_the_file_system() {
    let server = server().await;
    // Something worth stealing next to the feeds folder.
    std::fs::write(server.env.dir.path().join("secret.txt"), "secret").unwrap();
    for target in [
        "/feeds/../secret.txt",
        "/feeds/..%2fsecret.txt",
        "/feeds/..%2Fsecret.txt",
        "/feeds/%2e%2e%2fsecret.txt",
        "/feeds/%2e%2e/secret.txt",
        "/feeds/..%5csecret.txt",
        "/feeds/%252e%252e%252fsecret.txt",
        "/feeds/....//secret.txt",
        "/../secret.txt",
        "/feeds/%2fetc%2fpasswd",
        "/feeds/all.rss%00.txt",
    ] {
        let status = server.raw_status(&format!("GET {target} HTTP/1.1")).await;
        assert!(status == 404 || status == 400, "{target} answered {status}");
    }
}

#[tokio::test]
async fn limit_and_q_filter_a_feed_case_and_diacritic_insensitively() {
    let server = server().await;
    let limited = client()
        .get(server.url("/feeds/all.rss?limit=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 200);
    assert_eq!(
        titles(&limited.bytes().await.unwrap()),
        ["Đảng ủy Công an tỉnh tổng kết công tác Đảng"]
    );

    let folded = client()
        .get(server.url("/feeds/all.rss?q=DANG%20uy"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        titles(&folded.bytes().await.unwrap()),
        ["Đảng ủy Công an tỉnh tổng kết công tác Đảng"]
    );

    let accented = client()
        .get(server.url("/feeds/police-activities.atom?q=nồng+độ"))
        .send()
        .await
        .unwrap();
    let feed = atom_syndication::Feed::read_from(&accented.bytes().await.unwrap()[..]).unwrap();
    let found: Vec<_> = feed.entries.iter().map(|e| e.title.value.clone()).collect();
    assert_eq!(found, ["Cảnh sát giao thông xử lý vi phạm nồng độ cồn"]);

    let none = client()
        .get(server.url("/feeds/all.json?q=bong%20da"))
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&none.bytes().await.unwrap()).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 0);

    let filtered = client()
        .get(server.url("/feeds/all.rss?limit=2"))
        .send()
        .await
        .unwrap();
    let etag = filtered.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    let again = client()
        .get(server.url("/feeds/all.rss?limit=2"))
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304, "filtered feeds revalidate too");

    let bad = client()
        .get(server.url("/feeds/all.rss?limit=many"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// More newer items in one feed than the in-memory search looked through.
const NEWER_ITEMS: u32 = 2_001;

/// Two stories from 2001 in `party-work`, one written with diacritics and one without,
/// then [`NEWER_ITEMS`] synthetic stories published later in the same feed.
async fn server_with_old_stories() -> TestServer {
    let env = FeedEnv::new();
    env.add(
        &article(
            1,
            "Đảng ủy Công an tỉnh tổng kết công tác Đảng",
            "2001-01-01T08:00:00+07:00",
        ),
        &["party-work"],
    );
    env.add(
        &article(
            2,
            "Hoi nghi tong ket nam, ban tin khong dau",
            "2001-01-02T08:00:00+07:00",
        ),
        &["party-work"],
    );
    let later = chrono::DateTime::parse_from_rfc3339("2020-07-01T08:00:00+07:00").unwrap();
    for n in 0..NEWER_ITEMS {
        let mut newer = synthetic::article(u64::from(n), 30);
        newer.published = Some(later + chrono::Duration::minutes(i64::from(n)));
        env.add(&newer, &["party-work"]);
    }
    TestServer::start(env).await
}

/// The titles of an RSS answer to `path`, after checking it is a 200 and a valid feed.
async fn search(server: &TestServer, path: &str) -> Vec<String> {
    let response = client().get(server.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let body = response.bytes().await.unwrap();
    let channel = rss::Channel::read_from(&body[..]).expect("RSS parses");
    validate_rss(&channel);
    titles(&body)
}

#[tokio::test]
async fn q_finds_a_story_older_than_the_newest_two_thousand() {
    // The in-memory search looked at the newest 2,000 items of the feed only.
    let server = server_with_old_stories().await;
    for feed in ["party-work", "all"] {
        assert_eq!(
            search(&server, &format!("/feeds/{feed}.rss?q=tổng+kết+Đảng+ủy")).await,
            ["Đảng ủy Công an tỉnh tổng kết công tác Đảng"],
            "{feed}"
        );
    }
    assert_eq!(
        search(&server, "/feeds/party-work.rss?q=tong+ket&limit=5").await,
        [
            "Hoi nghi tong ket nam, ban tin khong dau",
            "Đảng ủy Công an tỉnh tổng kết công tác Đảng"
        ],
        "newest first"
    );
    assert!(
        search(&server, "/feeds/police-activities.rss?q=tong+ket")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn q_ignores_diacritics_in_the_query_and_in_the_text() {
    let server = server_with_old_stories().await;
    assert_eq!(
        search(&server, "/feeds/all.rss?q=dang%20UY").await,
        ["Đảng ủy Công an tỉnh tổng kết công tác Đảng"]
    );
    assert_eq!(
        search(&server, "/feeds/all.rss?q=bản+tin+KHÔNG+DẤU").await,
        ["Hoi nghi tong ket nam, ban tin khong dau"]
    );
}

#[tokio::test]
async fn q_with_search_syntax_gives_a_valid_feed() {
    let server = server_with_old_stories().await;
    let accented = ["Đảng ủy Công an tỉnh tổng kết công tác Đảng"];
    // FTS5 syntax around real words is punctuation: the words are still required.
    for q in [
        "\"uy",
        "uy\"",
        "uy*",
        "(uy)",
        "-uy",
        "^uy",
        "uy:",
        ":uy",
        "uy+",
        "{uy}",
        "\"dang uy\"",
    ] {
        let path = format!("/feeds/all.rss?q={}", urlencode(q));
        assert_eq!(search(&server, &path).await, accented, "{q}");
    }
    // Operators are words too: "or" and "near" must be in the text.
    for q in [
        "uy OR khong",
        "uy NEAR dang",
        "NEAR(uy dang)",
        "NEAR(",
        "uy AND dang",
        "a OR b",
        "x NOT y",
        "-x",
    ] {
        let path = format!("/feeds/all.rss?q={}", urlencode(q));
        assert!(search(&server, &path).await.is_empty(), "{q}");
    }
    // Nothing to search for: the newest items, as without `q`.
    for q in ["", "\"", "*", "-", "()", "\"\"", " + ", "^:"] {
        let path = format!("/feeds/all.rss?q={}&limit=3", urlencode(q));
        assert_eq!(search(&server, &path).await.len(), 3, "{q}");
    }
    assert!(!search(&server, "/feeds/all.rss?q=").await.is_empty());
    assert!(!search(&server, "/feeds/all.rss?q=%22*").await.is_empty());
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn index_lists_feeds_items_sources_and_autodiscovery_links() {
    let server = server().await;
    let response = client().get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let html = response.text().await.unwrap();
    let base = server.base.as_str();
    for id in ["all", "party-work", "police-activities"] {
        for (ext, kind) in [
            ("rss", "application/rss+xml"),
            ("atom", "application/atom+xml"),
            ("json", "application/feed+json"),
        ] {
            let href = format!("{base}feeds/{id}.{ext}");
            assert!(
                html.lines().any(|l| l
                    .starts_with(&format!("<link rel=\"alternate\" type=\"{kind}\""))
                    && l.ends_with(&format!("href=\"{href}\">"))),
                "{href} autodiscovery"
            );
            assert!(html.contains(&format!("href=\"{href}\"")), "{href} linked");
            assert!(
                html.contains(&format!("<code>{href}</code>")),
                "{href} copyable"
            );
        }
    }
    assert!(html.contains("Bắt giữ nhóm đối tượng trộm cắp xe máy"));
    assert!(
        html.contains("17/07/2020 21:54"),
        "dates in the site's zone"
    );
    assert!(html.contains("<td>news</td>"));
    assert!(html.contains("name=\"viewport\""));
    assert!(!html.contains("<script"));
}

#[tokio::test]
async fn healthz_reports_store_and_sources_and_metrics_count_requests() {
    let server = server().await;
    let health = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(&health.bytes().await.unwrap()).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["store"]["reachable"], true);
    assert_eq!(json["sources"][0]["id"], "news");
    assert_eq!(json["sources"][0]["last_success"], serde_json::Value::Null);
    assert_eq!(json["unhealthy_sources"].as_array().unwrap().len(), 0);

    client()
        .get(server.url("/feeds/all.rss"))
        .send()
        .await
        .unwrap();
    client().get(server.url("/nope")).send().await.unwrap();
    let metrics = client().get(server.url("/metrics")).send().await.unwrap();
    assert!(
        metrics.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("bantin_http_requests_total{route=\"/feeds/{file}\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("bantin_http_requests_total{route=\"unmatched\",status=\"404\"} 1"));
    assert!(text.contains("bantin_items_total{outcome=\"new\"}"));
}

#[tokio::test]
async fn opml_and_stylesheet_are_served() {
    let server = server().await;
    let opml = client()
        .get(server.url("/feeds/feeds.opml"))
        .send()
        .await
        .unwrap();
    assert_eq!(opml.status(), 200);
    assert_eq!(
        opml.headers()[header::CONTENT_TYPE],
        "text/x-opml; charset=utf-8"
    );
    assert!(opml.text().await.unwrap().contains("party-work.rss"));
    let xsl = client()
        .get(server.url("/feeds/feed.xsl"))
        .send()
        .await
        .unwrap();
    assert_eq!(xsl.status(), 200);
}
