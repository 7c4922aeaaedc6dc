//! The sources stage against a real local server: listings with pagination, feeds,
//! sitemaps, conditional GET across passes, foreign links, failing sources.

use std::collections::HashMap;

use bantin::config::Config;
use bantin::fetch::Fetcher;
use bantin::sources::{Discovery, SourceError, discover};
use chrono::{Duration, Utc};

use crate::support::{Override, TestConfig, TestSite};

const SITE: &str = "tests/fixtures/sites/news";

fn source_toml(id: &str, kind: &str, urls: &[url::Url], extra: &str) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "[[source]]\nid = \"{id}\"\nkind = \"{kind}\"\nurls = [{}]\nschedule = \"0 * * * *\"\n{extra}\n",
        urls.join(", ")
    )
}

const LISTING_LINKS: &str = r#"
[source.links]
selector = "div.list article.story"
pattern = "-i\\d{5}/?$"
next_page = "ul.pagination a.next"
max_pages = 2
"#;

fn load(sources: &str) -> (TestConfig, Config, Fetcher) {
    let test = TestConfig::new().site("news", sources);
    let config = test.load();
    let fetcher = Fetcher::new(&config.settings).expect("fetcher builds");
    (test, config, fetcher)
}

async fn run(config: &Config, fetcher: &Fetcher, id: &str) -> Result<Discovery, SourceError> {
    discover(
        config.source(id).expect("source exists"),
        fetcher,
        &HashMap::new(),
    )
    .await
}

fn paths(d: &Discovery) -> Vec<String> {
    d.candidates
        .iter()
        .map(|c| c.url.path().to_owned())
        .collect()
}

#[tokio::test]
async fn listing_with_two_pages_gives_thirty_candidates_then_304() {
    let site = TestSite::serve(SITE).await;
    let (_dir, config, fetcher) = load(&source_toml(
        "news",
        "listing",
        &[site.url("/list/")],
        LISTING_LINKS,
    ));
    let first = run(&config, &fetcher, "news").await.unwrap();
    assert_eq!(first.candidates.len(), 30, "{:?}", paths(&first));
    assert_eq!(first.pages_fetched, 2);
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert_eq!(
        first.candidates[0].title.as_deref(),
        Some("Bắt giữ đối tượng trộm cắp số 1")
    );
    // The foreign link matched selector and pattern but is not followed.
    assert!(
        first
            .candidates
            .iter()
            .all(|c| c.url.host_str() == Some("127.0.0.1"))
    );

    let validators: HashMap<_, _> = first.validators.into_iter().collect();
    let before = site.requests().len();
    let second = discover(config.source("news").unwrap(), &fetcher, &validators)
        .await
        .unwrap();
    assert_eq!(second.not_modified, 1);
    assert_eq!(second.pages_fetched, 0);
    assert!(second.candidates.is_empty());
    let asked: Vec<String> = site.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        asked,
        ["/list/"],
        "only the first listing page is asked again"
    );
}

#[tokio::test]
async fn listing_stops_at_max_pages() {
    let site = TestSite::serve(SITE).await;
    let links = LISTING_LINKS.replace("max_pages = 2", "max_pages = 1");
    let (_dir, config, fetcher) = load(&source_toml(
        "news",
        "listing",
        &[site.url("/list/")],
        &links,
    ));
    let found = run(&config, &fetcher, "news").await.unwrap();
    assert_eq!(found.candidates.len(), 15);
    assert!(site.requests_to("/list/page-2/").is_empty());
}

#[tokio::test]
async fn rss_atom_json_and_rdf_feeds_become_articles() {
    let site = TestSite::serve(SITE).await;
    let mut toml = String::new();
    for (id, path) in [
        ("rss", "/feeds/rss.xml"),
        ("atom", "/feeds/atom.xml"),
        ("json", "/feeds/feed.json"),
        ("rdf", "/feeds/rss1.rdf"),
    ] {
        toml.push_str(&source_toml(id, "feed", &[site.url(path)], ""));
    }
    let (_dir, config, fetcher) = load(&toml);
    for id in ["rss", "atom", "json", "rdf"] {
        let found = run(&config, &fetcher, id)
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(found.candidates.len(), 5, "{id}");
        let first = &found.candidates[0];
        assert_eq!(first.url, site.url("/tin-tuc/bai-1-i10001/"), "{id}");
        let article = first
            .article
            .as_ref()
            .expect("feed entries carry an article");
        assert_eq!(article.title, "Bắt giữ đối tượng trộm cắp số 1", "{id}");
        let published = article.published.unwrap_or_else(|| panic!("{id}: no date"));
        // The same instant, in the source's zone (Asia/Ho_Chi_Minh).
        assert_eq!(published.to_rfc3339(), "2024-05-01T01:30:00+07:00", "{id}");
        assert_eq!(
            article.lead.as_deref(),
            Some("(CAO) Tóm tắt bài 1."),
            "{id}"
        );
        if id != "rdf" {
            assert_eq!(article.authors, ["Phóng viên 1"], "{id}");
            assert_eq!(article.tags.len(), 1, "{id}");
        }
    }
    let atom = run(&config, &fetcher, "atom").await.unwrap();
    let body = &atom.candidates[0].article.as_ref().unwrap().body_html;
    assert!(!body.contains("<script"), "{body}");
    assert!(
        body.contains(&format!("src=\"{}\"", site.url("/anh/1.jpg"))),
        "{body}"
    );
    assert_eq!(
        atom.candidates[0].article.as_ref().unwrap().tags,
        ["An ninh"]
    );
}

#[tokio::test]
async fn sitemap_index_gives_urls_newest_first() {
    let site = TestSite::serve(SITE).await;
    let (_dir, config, fetcher) = load(&source_toml(
        "map",
        "sitemap",
        &[site.url("/sitemap_index.xml")],
        "",
    ));
    let found = run(&config, &fetcher, "map").await.unwrap();
    assert_eq!(found.pages_fetched, 3);
    assert_eq!(found.candidates.len(), 10, "{:?}", paths(&found));
    assert_eq!(found.candidates[0].url.path(), "/tin-tuc/bai-5-i10005/");
    assert_eq!(
        found.candidates[0].title.as_deref(),
        Some("Chi bộ sinh hoạt chuyên đề số 5")
    );
    let dates: Vec<_> = found
        .candidates
        .iter()
        .map(|c| c.published.unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{dates:?}");
}

#[tokio::test]
async fn sitemap_max_age_and_max_articles_limit_candidates() {
    let site = TestSite::empty().await;
    let now = Utc::now();
    let urls: String = (0..10)
        .map(|i| {
            let date = (now - Duration::days(i * 3)).to_rfc3339();
            format!("<url><loc>/tin/bai-{i}</loc><lastmod>{date}</lastmod></url>")
        })
        .collect();
    site.set(
        "/sitemap.xml",
        Override::body(format!(
            "<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">{urls}</urlset>"
        )),
    );
    let (_dir, config, fetcher) = load(&format!(
        "{}{}",
        source_toml(
            "aged",
            "sitemap",
            &[site.url("/sitemap.xml")],
            "max_age = \"10d\""
        ),
        source_toml(
            "capped",
            "sitemap",
            &[site.url("/sitemap.xml")],
            "max_articles = 3"
        ),
    ));
    let aged = run(&config, &fetcher, "aged").await.unwrap();
    assert_eq!(
        paths(&aged),
        ["/tin/bai-0", "/tin/bai-1", "/tin/bai-2", "/tin/bai-3"]
    );
    let capped = run(&config, &fetcher, "capped").await.unwrap();
    assert_eq!(paths(&capped), ["/tin/bai-0", "/tin/bai-1", "/tin/bai-2"]);
}

#[tokio::test]
async fn failing_sources_report_errors_while_others_succeed() {
    let good = TestSite::serve(SITE).await;
    let bad = TestSite::empty().await;
    bad.set("/hang", Override::never());
    bad.set("/broken", Override::status(500));
    bad.set("/notxml", Override::body("<html>not a feed</html>"));
    let toml = [
        source_toml("good", "listing", &[good.url("/list/")], LISTING_LINKS),
        source_toml("hang", "listing", &[bad.url("/hang")], LISTING_LINKS),
        source_toml("broken", "feed", &[bad.url("/broken")], ""),
        source_toml("notxml", "sitemap", &[bad.url("/notxml")], ""),
    ]
    .concat();
    let test = TestConfig::new()
        .fetch("timeout = \"1s\"")
        .site("news", &toml);
    let config = test.load();
    let fetcher = Fetcher::new(&config.settings).unwrap();
    let ids = ["good", "hang", "broken", "notxml"];
    let results =
        futures_util::future::join_all(ids.iter().map(|id| run(&config, &fetcher, id))).await;
    assert_eq!(results[0].as_ref().unwrap().candidates.len(), 30);
    for (id, result) in ids.iter().zip(&results).skip(1) {
        let err = result.as_ref().expect_err(id);
        assert!(err.to_string().contains(id), "{id}: {err}");
    }
    let hang = results[1].as_ref().unwrap_err();
    let cause = std::error::Error::source(hang).map(|c| c.to_string());
    assert!(
        cause.is_some_and(|c| c.contains("took longer than 1s")),
        "{hang:?}"
    );
}
