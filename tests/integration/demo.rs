//! The sample site of `bantin demo` over 127.0.0.1, and the configuration that points
//! bantin at it.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use bantin::config::Config;
use bantin::demo::{DEMO_SECTIONS, serve_site, write_demo_config};
use bantin::sources::listing_links;
use reqwest::StatusCode;
use reqwest::header;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

/// The sample site on a free port; stops when the returned token is dropped or cancelled.
async fn start_site() -> (Url, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(serve_site(listener, shutdown.clone()));
    (site, shutdown)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn demo_site_serves_listings_and_articles() {
    let (site, _stop) = start_site().await;
    let http = client();

    let listing = http
        .get(site.join("Xay-dung-Dang/").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), StatusCode::OK);
    assert_eq!(
        listing.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    let text = listing.text().await.unwrap();
    assert!(text.contains("div class=\"box-widget-loaded\""));
    assert!(
        text.contains(&format!("{}Xay-dung-Dang/", site)),
        "absolute links use the site's address"
    );

    let article = site
        .join("Hoat-dong-LL-CAND/giai-cuu-hai-nguoi-mac-ket-trong-thang-may-chung-cu-i800203/")
        .unwrap();
    let page = http.get(article.clone()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let text = page.text().await.unwrap();
    assert!(text.contains("<h1 class=\"box-title-detail entry-title\""));
    assert!(text.contains(&format!("<link rel=\"canonical\" href=\"{article}\">")));
    assert!(text.contains("\"@type\": \"NewsArticle\""));

    let robots = http
        .get(site.join("robots.txt").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(robots.status(), StatusCode::OK);
    assert!(robots.text().await.unwrap().contains("User-agent: *"));

    let missing = http
        .get(
            site.join("Xay-dung-Dang/khong-co-bai-nay-i999999/")
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let no_slash = http
        .get(site.join("Xay-dung-Dang").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(no_slash.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(no_slash.headers()[header::LOCATION], "/Xay-dung-Dang/");
}

#[tokio::test]
async fn demo_site_answers_conditional_requests() {
    let (site, _stop) = start_site().await;
    let http = client();
    let url = site.join("Hoat-dong-LL-CAND/").unwrap();
    let first = http.get(url.clone()).send().await.unwrap();
    let etag = first.headers()[header::ETAG].clone();
    let modified = first.headers()[header::LAST_MODIFIED].clone();

    let by_etag = http
        .get(url.clone())
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(by_etag.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(by_etag.headers()[header::ETAG], etag);
    assert!(by_etag.bytes().await.unwrap().is_empty());

    let by_date = http
        .get(url.clone())
        .header(header::IF_MODIFIED_SINCE, modified)
        .send()
        .await
        .unwrap();
    assert_eq!(by_date.status(), StatusCode::NOT_MODIFIED);

    let stale = http
        .get(url)
        .header(header::IF_NONE_MATCH, "\"0\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
}

#[tokio::test]
async fn demo_config_is_valid_and_points_at_the_site() {
    let dir = tempfile::tempdir().unwrap();
    let site = Url::parse("http://127.0.0.1:4000/").unwrap();
    let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let path = write_demo_config(dir.path(), &site, listen).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e:?}"));

    let shipped = Config::load(std::path::Path::new("config/bantin.toml")).unwrap();
    let ids = |c: &Config| {
        c.categories
            .iter()
            .map(|c| c.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&config), ids(&shipped));
    assert!(config.settings.fetch.allow_private_networks);
    assert!(config.settings.fetch.per_host_delay.is_zero());
    assert_eq!(config.settings.listen, listen);
    assert_eq!(config.settings.data_dir, dir.path().join("data"));
    assert_eq!(config.sources.len(), DEMO_SECTIONS.len());
    for source in &config.sources {
        assert_eq!(source.urls[0].origin(), site.origin(), "{}", source.id);
        assert!(source.allows_host("127.0.0.1"));
        assert!(source.extract.title.is_some() && source.extract.body.is_some());
    }
}

/// Article URLs a listing source finds with bantin's link finder, following the
/// next-page link up to the source's page limit.
async fn listed_articles(
    http: &reqwest::Client,
    source: &bantin::config::Source,
) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut next = Some(source.urls[0].clone());
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        let html = http
            .get(url.clone())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let links = listing_links(&html, &url, &source.links);
        found.extend(links.articles.into_iter().map(|(u, _)| u.to_string()));
        if pages < source.links.max_pages {
            next = links.next_page;
        }
    }
    found
}

#[tokio::test]
async fn configured_link_rules_find_every_article_of_each_section() {
    let (site, _stop) = start_site().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_demo_config(dir.path(), &site, "127.0.0.1:8080".parse().unwrap()).unwrap();
    let config = Config::load(&path).unwrap();
    let http = client();

    let mut all = BTreeSet::new();
    for (id, section, _) in DEMO_SECTIONS {
        let source = config.source(id).unwrap();
        let found = listed_articles(&http, source).await;
        // Only the section's own articles: sidebar and related links are left out.
        assert!(found.len() >= 4, "{id}: {found:?}");
        for url in &found {
            assert!(
                url.starts_with(site.join(section).unwrap().as_str()),
                "{id}: {url}"
            );
            let page = http.get(url).send().await.unwrap();
            assert_eq!(page.status(), StatusCode::OK, "{url}");
        }
        all.extend(found);
    }
    // Two listing pages each for party work and police activities, one mixed page.
    assert_eq!(all.len(), 16, "{all:#?}");
}

#[tokio::test]
async fn sample_articles_extract_and_land_in_their_categories() {
    let (site, _stop) = start_site().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_demo_config(dir.path(), &site, "127.0.0.1:8080".parse().unwrap()).unwrap();
    let config = Config::load(&path).unwrap();
    let http = client();

    let mut seen = 0;
    for (id, _, _) in DEMO_SECTIONS {
        let source = config.source(id).unwrap();
        for url in listed_articles(&http, source).await {
            let url = Url::parse(&url).unwrap();
            let html = http
                .get(url.clone())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let input = bantin::extract::Input {
                url: &url,
                rules: &source.extract,
                zone: source.timezone,
                fetched_at: chrono::Utc::now(),
            };
            let article =
                bantin::extract::article(&html, &input).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(!article.title.is_empty(), "{url}");
            assert!(article.published.is_some(), "{url}: no date");
            assert_eq!(
                article.published.unwrap().offset().local_minus_utc(),
                7 * 3600
            );
            assert_eq!(article.authors.len(), 1, "{url}: {:?}", article.authors);
            assert!(!article.authors[0].ends_with('-'), "{url}");
            assert!(article.lead.is_some(), "{url}: no lead");
            assert!(
                article.body_text.split("\n\n").count() >= 3,
                "{url}: {}",
                article.body_text
            );
            assert!(
                !article.body_text.contains("Tin liên quan"),
                "{url}: related box kept"
            );
            assert_eq!(article.canonical_url.as_ref(), Some(&url), "{url}");

            let categories =
                bantin::classify::categorize(&article, &source.categories, &config.categories);
            let names: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
            let expected: &[&str] = match url.path() {
                p if p.starts_with("/Xay-dung-Dang/") => &["party-work"],
                p if p.starts_with("/Hoat-dong-LL-CAND/") => &["police-activities"],
                p if p.contains("le-hoi-van-hoa") => &[],
                p if p.contains("dai-hoi-chi-bo") => &["party-work"],
                _ => &["police-activities"],
            };
            assert_eq!(names, expected, "{url}");
            seen += 1;
        }
    }
    assert_eq!(seen, 16);
}

/// One `bantin demo` run with the sample site on `site_port`, stopped once its feeds are
/// published: the JSON feed of everything, what it printed, and its log.
async fn demo_run(
    site_port: u16,
    dir: &std::path::Path,
) -> (serde_json::Value, Vec<String>, String) {
    use crate::support::daemon::{Daemon, free_port};
    let port = free_port();
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin!("bantin"));
    command
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--site-listen", &format!("127.0.0.1:{site_port}")])
        .arg("--dir")
        .arg(dir)
        .env_remove("RUST_LOG");
    let mut demo = Daemon::spawn(command, port, dir.with_extension("log"));
    let printed = demo.stdout.until("Press Ctrl-C");
    let (_, json) = demo
        .get("/feeds/all.json")
        .await
        .expect("the feed is served");
    let feed: serde_json::Value = serde_json::from_str(&json).unwrap();
    // The sample site is still there while the demo runs: item links work.
    let link = feed["items"][0]["url"]
        .as_str()
        .expect("an item with a link");
    let page = reqwest::get(link).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{link}");
    assert_eq!(demo.stop().await.code(), Some(0), "{}", demo.log());
    (feed, printed, demo.log())
}

#[tokio::test]
async fn demo_keeps_its_site_up_and_item_ids_across_runs_and_prints_apart_from_the_log() {
    let site_port = crate::support::daemon::free_port();
    let dir = tempfile::tempdir().unwrap();
    let (first, printed, log) = demo_run(site_port, &dir.path().join("first")).await;
    let (second, _, _) = demo_run(site_port, &dir.path().join("second")).await;
    let ids = |feed: &serde_json::Value| {
        feed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert!(ids(&first).len() >= 12, "{:?}", ids(&first));
    assert_eq!(ids(&first), ids(&second));
    let summary = printed.join("\n");
    assert!(
        summary.contains(&format!("Sample site:   http://127.0.0.1:{site_port}/")),
        "{summary}"
    );
    assert!(
        summary.contains("Listening on http://127.0.0.1:"),
        "{summary}"
    );
    assert!(summary.contains("crawled demo-xay-dung-dang"), "{summary}");
    // Only warnings and errors are logged, on stderr; the summary is not in the log.
    assert!(!log.contains("INFO"), "{log}");
    assert!(!log.contains("crawled demo-"), "{log}");
}
