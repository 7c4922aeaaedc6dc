//! Whole source runs through the pipeline against a real local site and a real SQLite
//! file: discover → fetch → extract → classify → store, then publish.

use std::sync::Arc;

use bantin::config::Config;
use bantin::daemon::Service;
use bantin::model::{CategoryId, SourceRun};

use crate::support::{Override, TestConfig, TestSite};

const SITE: &str = "tests/fixtures/sites/news";

const CATEGORIES: &str = r#"
[[category]]
id = "police-activities"
title = "Hoạt động Công an"

[[category.rule]]
any = ["bắt giữ", "khởi tố", "điều tra", "triệt phá"]
fold_diacritics = true
"#;

fn listing(site: &TestSite) -> TestConfig {
    TestConfig::new().categories(CATEGORIES).site(
        "news",
        &format!(
            r#"
[[source]]
id = "news"
kind = "listing"
urls = ["{}"]
schedule = "0 * * * *"

[source.links]
selector = "div.list article.story"
pattern = "-i\\d{{5}}/?$"
next_page = "ul.pagination a.next"
max_pages = 2
"#,
            site.url("/list/")
        ),
    )
}

async fn crawl_once(config: &Arc<Config>, service: &Service) -> SourceRun {
    let mut runs = service
        .crawl(config, config.sources.clone(), |_, _| {})
        .await;
    assert_eq!(runs.len(), 1, "one source configured");
    runs.pop().expect("one run").1
}

fn article_requests(site: &TestSite) -> usize {
    site.requests()
        .iter()
        .filter(|r| r.path.starts_with("/tin-tuc/"))
        .count()
}

#[tokio::test]
async fn listing_of_thirty_is_stored_once_and_second_run_fetches_no_article() {
    let site = TestSite::serve(SITE).await;
    let test = listing(&site);
    let config = Arc::new(test.load());
    let service = Service::open(&config).expect("store opens");

    let first = crawl_once(&config, &service).await;
    assert_eq!(first.new, 30, "{first:?}");
    assert_eq!(first.errors, 0, "{first:?}");
    assert_eq!(article_requests(&site), 30);
    let all = service
        .store()
        .latest_items(&CategoryId::from("all"), 100)
        .expect("items readable");
    assert_eq!(all.len(), 30);
    assert!(
        all.iter()
            .all(|i| !i.article.title.is_empty() && !i.article.body_text.is_empty())
    );

    let second = crawl_once(&config, &service).await;
    assert_eq!(second.new, 0, "{second:?}");
    assert_eq!(
        article_requests(&site),
        30,
        "no article page is fetched again"
    );
    assert!(
        second.not_modified >= 1 || second.links_found == 30,
        "the listing was asked conditionally or found unchanged: {second:?}"
    );
}

#[tokio::test]
async fn crawl_publishes_category_and_all_feeds() {
    let site = TestSite::serve(SITE).await;
    let test = listing(&site);
    let config = Arc::new(test.load());
    let service = Service::open(&config).expect("store opens");
    crawl_once(&config, &service).await;
    let report = service.publish(&config).await.expect("publishes");
    assert!(report.changed.iter().any(|c| c.id.as_str() == "all"));

    let text = std::fs::read_to_string(config.settings.feeds_dir.join("all.rss")).unwrap();
    let channel = rss::Channel::read_from(text.as_bytes()).expect("valid RSS");
    assert_eq!(channel.items().len(), 30);
    let police = std::fs::read(config.settings.feeds_dir.join("police-activities.atom")).unwrap();
    let feed = feed_rs::parser::parse(police.as_slice()).expect("valid Atom");
    let all_titles: Vec<_> = channel.items().iter().filter_map(|i| i.title()).collect();
    // The six arrest stories of the fixture site match the police keyword rules.
    assert_eq!(feed.entries.len(), 6);
    for entry in &feed.entries {
        let title = &entry.title.as_ref().expect("entries have titles").content;
        assert!(
            all_titles.contains(&title.as_str()),
            "{title} is also in all"
        );
    }
}

#[tokio::test]
async fn listing_that_suddenly_has_no_links_raises_the_breakage_alarm() {
    let site = TestSite::serve(SITE).await;
    let test = listing(&site);
    let config = Arc::new(test.load());
    let service = Service::open(&config).expect("store opens");
    // Two runs make the source's recent normal.
    crawl_once(&config, &service).await;
    crawl_once(&config, &service).await;
    site.set(
        "/list/",
        Override::body("<html><body><p>Trang đang bảo trì</p></body></html>"),
    );

    let broken = crawl_once(&config, &service).await;
    assert_eq!(broken.links_found, 0);
    let error = broken.last_error.expect("the run reports the breakage");
    assert!(
        error.contains("found no article links (usually 30)"),
        "{error}"
    );
    assert!(
        error.contains("div.list article.story"),
        "names the selector: {error}"
    );
}

#[tokio::test]
async fn preview_fetches_an_address_through_the_shared_client() {
    let site = TestSite::serve(SITE).await;
    let test = listing(&site);
    test.load();
    let config = test.dir().join("bantin.toml");
    let page = site.url("/tin-tuc/bai-1-i10001/");
    let missing = site.url("/tin-tuc/khong-co-i99999/");
    let output = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::new(assert_cmd::cargo::cargo_bin!("bantin"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "preview",
                "--source",
                "news",
            ])
            .args([page.as_str(), missing.as_str()])
            .output()
            .expect("bantin runs")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "one of two inputs failed: {stderr}"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let first = stdout
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no output; stderr: {stderr}"));
    let json: serde_json::Value = serde_json::from_str(first).unwrap();
    assert_eq!(json["title"], "Bắt giữ đối tượng trộm cắp số 1");
    assert_eq!(json["published"], "2024-05-02T08:15:00+07:00");
    assert!(
        stderr.contains("khong-co-i99999") && stderr.contains("404"),
        "{stderr}"
    );
    assert_eq!(site.requests_to("/tin-tuc/bai-1-i10001/").len(), 1);
}

#[tokio::test]
async fn check_online_reports_each_test_url_field_that_no_longer_matches() {
    let site = TestSite::serve(SITE).await;
    let test = TestConfig::new().categories(CATEGORIES).site(
        "news",
        &format!(
            r#"
[[source]]
id = "news"
kind = "listing"
urls = ["{list}"]
schedule = "0 * * * *"

[source.links]
pattern = "-i\\d{{5}}/?$"

[[source.test_urls]]
url = "{one}"
title = "Bắt giữ đối tượng trộm cắp số 1"
published = "2024-05-02T08:15:00+07:00"

[[source.test_urls]]
url = "{two}"
title = "Tiêu đề cũ trước khi trang đổi giao diện"
published = "2024-05-03T09:15:00+07:00"
"#,
            list = site.url("/list/"),
            one = site.url("/tin-tuc/bai-1-i10001/"),
            two = site.url("/tin-tuc/bai-2-i10002/"),
        ),
    );
    test.load();
    let config = test.dir().join("bantin.toml");
    let output = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::new(assert_cmd::cargo::cargo_bin!("bantin"))
            .args(["--config", config.to_str().unwrap(), "check", "--online"])
            .output()
            .expect("bantin runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("2 test page(s) checked, 1 mismatch(es)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "bai-2-i10002/: `title` is \"Phòng cháy chữa cháy số 2\", expected \"Tiêu đề cũ"
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn relative_dates_on_article_pages_count_back_from_the_fetch_in_the_source_zone() {
    let site = TestSite::serve("tests/fixtures/sites/relative").await;
    let test = TestConfig::new().site(
        "relative",
        &format!(
            r#"
timezone = "Asia/Ho_Chi_Minh"

[extract]
published = "span.time"

[[source]]
id = "relative"
kind = "listing"
urls = ["{}"]
schedule = "0 * * * *"

[source.links]
selector = "div.list article.story"
"#,
            site.url("/list/")
        ),
    );
    let config = Arc::new(test.load());
    let service = Service::open(&config).expect("store opens");
    let before = chrono::Utc::now();
    let run = crawl_once(&config, &service).await;
    let after = chrono::Utc::now();
    assert_eq!(run.new, 3, "{run:?}");
    let items = service
        .store()
        .latest_items(&CategoryId::from("all"), 10)
        .expect("items readable");
    let published = |path: &str| {
        let item = items
            .iter()
            .find(|i| i.article.url.path() == path)
            .unwrap_or_else(|| panic!("{path} stored"));
        let date = item.article.published.expect("a date");
        assert_eq!(date.offset().local_minus_utc(), 7 * 3600, "{path}: {date}");
        date
    };
    // Counted back from the fetch, which lies between `before` and `after`, to the minute.
    let minutes_ago = |path: &str, minutes: i64| {
        let date = published(path).to_utc();
        let back = chrono::Duration::minutes(minutes);
        let earliest = before - back - chrono::Duration::minutes(1);
        assert!(
            earliest < date && date <= after - back,
            "{path}: {date} not {minutes} minutes before the crawl ({before}..{after})"
        );
    };
    minutes_ago("/tin/vua-dang-i20001/", 5);
    minutes_ago("/tin/hai-gio-i20002/", 120);
    let hcm = chrono_tz::Asia::Ho_Chi_Minh;
    let yesterday = published("/tin/hom-qua-i20003/");
    let days: Vec<String> = [before, after]
        .iter()
        .map(|t| {
            let day = t
                .with_timezone(&hcm)
                .date_naive()
                .pred_opt()
                .expect("a day before");
            format!("{day}T14:30:00+07:00")
        })
        .collect();
    assert!(
        days.contains(&yesterday.to_rfc3339()),
        "{yesterday} is not 14:30 the day before the crawl in Ho Chi Minh City"
    );
}

#[tokio::test]
async fn reextract_reads_relative_dates_against_the_stored_fetch_time() {
    let config = TestConfig::new().load();
    let service = Service::open(&config).expect("store opens");
    let files = bantin::model::SourceId::from(bantin::pipeline::FILES_SOURCE);
    let page = "tests/fixtures/sites/relative/tin/vua-dang-i20001/index.html";
    let html = std::fs::read_to_string(page).expect("fixture exists");
    // What an older extractor made of the page: no date, another title.
    let mut article = crate::support::synthetic::article(1, 60);
    article.url = url::Url::parse("https://news.example/tin/vua-dang-i20001/").unwrap();
    article.published = None;
    let fetched_at = "2024-03-05T02:00:37Z".parse().expect("valid RFC 3339");
    let raw = bantin::model::RawPage {
        url: article.url.clone(),
        source: files.clone(),
        fetched_at,
        html,
    };
    service
        .store()
        .record(&article, &files, &[], Some(&raw))
        .expect("stored");

    bantin::pipeline::reextract(&service.pipeline, &config, None, None)
        .await
        .expect("re-extracts");
    let items = service
        .store()
        .latest_items(&CategoryId::from("all"), 10)
        .expect("items readable");
    let published = items[0].article.published.map(|d| d.to_rfc3339());
    assert_eq!(
        published.as_deref(),
        Some("2024-03-05T08:55:00+07:00"),
        "\"5 phút trước\" counted from when the page was fetched"
    );
}

#[tokio::test]
async fn a_run_stopped_mid_way_reads_its_listing_again_next_time() {
    // Regression: the listing's validators were kept before its links were visited, so
    // the run after a kill or a stop heard 304 and never visited the links left over.
    let site = TestSite::serve(SITE).await;
    let stuck = "/tin-tuc/bai-1-i10001/";
    site.set(stuck, Override::never());
    let test = listing(&site);
    let config = Arc::new(test.load());
    let service = Service::open(&config).expect("store opens");
    let run = tokio::spawn({
        let (config, service) = (config.clone(), service.clone());
        async move { crawl_once(&config, &service).await }
    });
    while site.requests_to(stuck).is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    service
        .pipeline
        .fetcher
        .shut_down(std::time::Duration::ZERO);
    assert!(run.await.unwrap().interrupted, "the stop cut the run short");
    drop(service);

    site.set(stuck, Override::default());
    let service = Service::open(&config).expect("store opens again");
    crawl_once(&config, &service).await;
    let listings = site.requests_to("/list/");
    assert!(
        !listings.last().unwrap().is_conditional(),
        "the listing is read again, not asked for a 304"
    );
    let url = site.url(stuck);
    assert!(
        service.store().knows_url(&url).unwrap(),
        "the stuck link is stored"
    );
}
