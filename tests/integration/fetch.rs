//! The fetch stage against a real local server: limits, politeness, robots.txt,
//! retries, charsets and the address guard.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bantin::fetch::{FetchError, FetchKind, Fetched, Fetcher};
use bantin::model::Validators;

use crate::support::{Override, OverrideBody, TestConfig, TestSite};

const SITE: &str = "tests/fixtures/sites/news";
/// Upper bound for tests whose fetch must end on its own well before it.
const TEST_DEADLINE: Duration = Duration::from_secs(20);

fn fetcher(fetch: &str) -> Fetcher {
    let config = TestConfig::new().fetch(fetch).load();
    Fetcher::new(&config.settings).expect("fetcher builds")
}

async fn get(fetcher: &Fetcher, url: &url::Url) -> Result<Fetched, FetchError> {
    tokio::time::timeout(
        TEST_DEADLINE,
        fetcher.fetch(FetchKind::Article, url, None, None),
    )
    .await
    .expect("fetch ends on its own")
}

fn html(fetched: Fetched) -> String {
    match fetched {
        Fetched::Page { page, .. } => page.html,
        Fetched::NotModified => panic!("expected a page, got 304"),
    }
}

/// Gaps between consecutive request arrivals at the server. The server notes an
/// arrival when its task runs, which a loaded machine delays by tens of milliseconds,
/// so a gap is checked against [`SPACED`] of the delay; requests not spaced at all
/// arrive within a few milliseconds of each other.
fn gaps(times: &[Instant]) -> Vec<Duration> {
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// The share of a delay a gap between arrivals must reach.
const SPACED: f64 = 0.8;

#[tokio::test]
async fn page_is_fetched_with_user_agent_and_final_url() {
    let site = TestSite::serve(SITE).await;
    site.set("/old", Override::redirect("/list/"));
    let got = get(&fetcher(""), &site.url("/old")).await.unwrap();
    let Fetched::Page {
        page, validators, ..
    } = got
    else {
        panic!("expected a page");
    };
    assert_eq!(page.url, site.url("/old"));
    assert_eq!(page.final_url, site.url("/list/"));
    assert!(page.html.contains("Tin tức — trang 1"));
    assert!(validators.etag.is_some());
    let ua = &site.requests_to("/list/")[0].headers["user-agent"];
    assert_eq!(ua, "bantin-test/0.1");
}

#[tokio::test]
async fn conditional_get_with_stored_validators_is_not_modified() {
    let site = TestSite::serve(SITE).await;
    let fetcher = fetcher("");
    let url = site.url("/list/");
    let Fetched::Page { validators, .. } = get(&fetcher, &url).await.unwrap() else {
        panic!("first fetch gives the page");
    };
    let again = fetcher
        .fetch(FetchKind::Listing, &url, Some(&validators), None)
        .await
        .unwrap();
    assert!(matches!(again, Fetched::NotModified));
    let sent = &site.requests_to("/list/")[1].headers;
    assert_eq!(sent["if-none-match"], validators.etag.unwrap().as_str());
}

#[tokio::test]
async fn gzip_body_is_decompressed() {
    let site = TestSite::empty().await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all("<p>Công an nhân dân</p>".as_bytes()).unwrap();
    site.set(
        "/gz",
        Override::body(gz.finish().unwrap())
            .header("content-encoding", "gzip")
            .header("content-type", "text/html; charset=utf-8"),
    );
    let got = get(&fetcher(""), &site.url("/gz")).await.unwrap();
    assert!(html(got).contains("Công an nhân dân"));
}

#[tokio::test]
async fn robots_disallow_is_obeyed_without_requesting_the_page() {
    let site = TestSite::serve(SITE).await;
    site.set(
        "/robots.txt",
        Override::body("User-agent: *\nDisallow: /tin-tuc/\n").header("content-type", "text/plain"),
    );
    let fetcher = fetcher("");
    let err = get(&fetcher, &site.url("/tin-tuc/bai-1-i10001/"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::RobotsDisallowed { .. }), "{err}");
    assert!(site.requests_to("/tin-tuc/bai-1-i10001/").is_empty());
    assert!(get(&fetcher, &site.url("/list/")).await.is_ok());
    assert_eq!(
        site.requests_to("/robots.txt").len(),
        1,
        "robots.txt is cached"
    );
}

#[tokio::test]
async fn crawl_delay_spaces_requests_to_a_host() {
    let site = TestSite::serve(SITE).await;
    site.set(
        "/robots.txt",
        Override::body("User-agent: bantin-test\nCrawl-delay: 0.3\n"),
    );
    let fetcher = fetcher("per_host_concurrency = 4");
    let urls: Vec<_> = (1..=4)
        .map(|i| site.url(&format!("/tin-tuc/bai-{i}-i{}/", 10000 + i)))
        .collect();
    let all = futures_util::future::join_all(urls.iter().map(|u| get(&fetcher, u))).await;
    assert!(all.iter().all(Result::is_ok));
    let times: Vec<Instant> = site
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/tin-tuc/"))
        .map(|r| r.at)
        .collect();
    assert_eq!(times.len(), 4);
    for gap in gaps(&times) {
        assert!(
            gap >= Duration::from_millis(300).mul_f64(SPACED),
            "gap {gap:?} under crawl delay"
        );
    }
}

#[tokio::test]
async fn per_host_delay_spaces_concurrent_requests() {
    let site = TestSite::serve(SITE).await;
    let fetcher =
        fetcher("per_host_delay = \"250ms\"\nper_host_concurrency = 4\nobey_robots = false");
    let urls: Vec<_> = (1..=4)
        .map(|i| site.url(&format!("/tin-tuc/bai-{i}-i{}/", 10000 + i)))
        .collect();
    let all = futures_util::future::join_all(urls.iter().map(|u| get(&fetcher, u))).await;
    assert!(all.iter().all(Result::is_ok));
    let times: Vec<Instant> = site.requests().iter().map(|r| r.at).collect();
    assert_eq!(times.len(), 4);
    for gap in gaps(&times) {
        assert!(
            gap >= Duration::from_millis(250).mul_f64(SPACED),
            "gap {gap:?} under per-host delay"
        );
    }
}

#[tokio::test]
async fn never_answering_server_times_out() {
    let site = TestSite::empty().await;
    site.set("/hang", Override::never());
    let err = get(&fetcher("timeout = \"1s\""), &site.url("/hang"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("/hang"), "{err}");
}

#[tokio::test]
async fn one_byte_per_second_body_times_out() {
    let site = TestSite::empty().await;
    site.set("/drip", Override::drip(Duration::from_secs(1)));
    let err = get(&fetcher("timeout = \"1500ms\""), &site.url("/drip"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
    assert_eq!(site.requests_to("/drip").len(), 1);
}

#[tokio::test]
async fn redirect_loop_stops_at_the_redirect_limit() {
    let site = TestSite::empty().await;
    site.set("/a", Override::redirect("/b"));
    site.set("/b", Override::redirect("/a"));
    let err = get(&fetcher("max_redirects = 3"), &site.url("/a"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::TooManyRedirects { limit: 3, .. }),
        "{err}"
    );
    let hops = site
        .requests()
        .iter()
        .filter(|r| r.path != "/robots.txt")
        .count();
    assert_eq!(hops, 4, "first request and three redirects");
}

#[tokio::test]
async fn fifty_megabyte_body_is_cut_off_at_the_limit() {
    let site = TestSite::empty().await;
    site.set("/huge", Override::huge(50 << 20));
    site.set(
        "/huge-declared",
        Override {
            body: Some(OverrideBody::Huge {
                len: 50 << 20,
                declare_length: true,
            }),
            ..Override::default()
        },
    );
    let fetcher = fetcher("max_body_bytes = \"1 MiB\"\nobey_robots = false");
    for path in ["/huge", "/huge-declared"] {
        let err = get(&fetcher, &site.url(path)).await.unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit, .. } if limit == 1 << 20),
            "{path}: {err}"
        );
    }
}

#[tokio::test]
async fn server_error_then_success_is_retried() {
    let site = TestSite::serve(SITE).await;
    site.set("/list/", Override::status(500).times(1));
    let got = get(&fetcher("max_retries = 2"), &site.url("/list/")).await;
    assert!(html(got.unwrap()).contains("trang 1"));
    assert_eq!(site.requests_to("/list/").len(), 2);
}

#[tokio::test]
async fn server_error_without_retries_left_is_reported() {
    let site = TestSite::serve(SITE).await;
    site.set("/list/", Override::status(500));
    let err = get(&fetcher("max_retries = 1"), &site.url("/list/"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Status { .. }), "{err}");
    assert_eq!(site.requests_to("/list/").len(), 2);
}

#[tokio::test]
async fn retry_after_holds_the_url_back() {
    let site = TestSite::serve(SITE).await;
    site.set("/list/", Override::status(429).header("retry-after", "120"));
    let fetcher = fetcher("max_retries = 3");
    let before = chrono::Utc::now();
    let err = get(&fetcher, &site.url("/list/")).await.unwrap_err();
    let FetchError::RetryLater { until, .. } = err else {
        panic!("expected RetryLater, got {err}");
    };
    assert!(until >= before + chrono::Duration::seconds(119));
    let again = get(&fetcher, &site.url("/list/")).await.unwrap_err();
    assert!(matches!(again, FetchError::RetryLater { .. }));
    assert_eq!(
        site.requests_to("/list/").len(),
        1,
        "held back, not re-sent"
    );
    assert!(get(&fetcher, &site.url("/list/page-2/")).await.is_ok());
}

#[tokio::test]
async fn retry_after_with_host_scope_holds_the_host_back() {
    let site = TestSite::serve(SITE).await;
    site.set("/list/", Override::status(503).header("retry-after", "60"));
    let fetcher = fetcher("retry_after_scope = \"host\"");
    assert!(get(&fetcher, &site.url("/list/")).await.is_err());
    let other = get(&fetcher, &site.url("/list/page-2/")).await.unwrap_err();
    assert!(matches!(other, FetchError::RetryLater { .. }), "{other}");
    assert!(site.requests_to("/list/page-2/").is_empty());
}

#[tokio::test]
async fn windows_1258_page_decodes_to_vietnamese() {
    let site = TestSite::serve(SITE).await;
    site.set(
        "/charset/windows-1258.html",
        Override::default().header("content-type", "text/html; charset=windows-1258"),
    );
    let got = html(
        get(&fetcher(""), &site.url("/charset/windows-1258.html"))
            .await
            .unwrap(),
    );
    assert!(
        bantin::text::normalize(&got).contains("Đảng viên Công an nhân dân học tập nghị quyết"),
        "{got}"
    );
}

#[tokio::test]
async fn wrong_header_charset_with_right_meta_decodes_to_vietnamese() {
    let site = TestSite::serve(SITE).await;
    // windows-1258 bytes sent as UTF-8; UTF-8 bytes sent as Latin-1.
    site.set(
        "/charset/windows-1258.html",
        Override::default().header("content-type", "text/html; charset=utf-8"),
    );
    site.set(
        "/charset/utf8-meta.html",
        Override::default().header("content-type", "text/html; charset=iso-8859-1"),
    );
    let fetcher = fetcher("");
    for path in ["/charset/windows-1258.html", "/charset/utf8-meta.html"] {
        let got = html(get(&fetcher, &site.url(path)).await.unwrap());
        assert!(
            bantin::text::normalize(&got).contains("Đảng viên Công an nhân dân học tập nghị quyết"),
            "{path}: {got}"
        );
    }
}

fn guarded_fetcher(allowed: &[IpAddr]) -> Fetcher {
    let config = TestConfig::new()
        .fetch("allow_private_networks = false")
        .load();
    Fetcher::with_allowed_addresses(&config.settings, allowed).expect("fetcher builds")
}

#[tokio::test]
async fn redirect_to_127_0_0_2_is_refused_when_private_networks_are_not_allowed() {
    let site = TestSite::serve(SITE).await;
    let port = site.addr().port();
    site.set(
        "/go",
        Override::redirect(&format!("http://127.0.0.2:{port}/list/")),
    );
    let fetcher = guarded_fetcher(&[IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    // The allow-listed test server itself is reachable...
    assert!(get(&fetcher, &site.url("/list/")).await.is_ok());
    // ...but the redirect to another loopback address is not followed.
    let err = get(&fetcher, &site.url("/go")).await.unwrap_err();
    assert!(
        matches!(err, FetchError::ForbiddenAddress { addr, .. } if addr == "127.0.0.2".parse::<IpAddr>().unwrap()),
        "{err}"
    );
}

#[tokio::test]
async fn private_address_is_refused_after_name_resolution() {
    let site = TestSite::serve(SITE).await;
    let url = url::Url::parse(&format!("http://localhost:{}/list/", site.addr().port())).unwrap();
    let err = get(&guarded_fetcher(&[]), &url).await.unwrap_err();
    assert!(matches!(err, FetchError::ForbiddenAddress { .. }), "{err}");
    assert!(site.requests().is_empty(), "no connection was made");
}

#[tokio::test]
async fn literal_private_address_is_refused_before_connecting() {
    let site = TestSite::serve(SITE).await;
    let err = get(&guarded_fetcher(&[]), &site.url("/list/"))
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::ForbiddenAddress { .. }), "{err}");
    assert!(site.requests().is_empty());
}

#[tokio::test]
async fn redirect_to_a_foreign_host_is_not_followed_for_a_source() {
    let site = TestSite::serve(SITE).await;
    site.set("/out", Override::redirect("http://elsewhere.example/x"));
    let config = TestConfig::new()
        .site(
            "news",
            &format!(
                "[[source]]\nid = \"news\"\nkind = \"feed\"\nurls = [\"{}\"]\nschedule = \"0 * * * *\"\n",
                site.url("/list/")
            ),
        )
        .load();
    let fetcher = Fetcher::new(&config.settings).unwrap();
    let err = fetcher
        .fetch(
            FetchKind::Article,
            &site.url("/out"),
            None,
            Some(&config.sources[0]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::ForeignHost { .. }), "{err}");
    assert!(err.to_string().contains("elsewhere.example"), "{err}");
}

#[tokio::test]
async fn not_modified_is_reported_only_for_validators_sent() {
    let site = TestSite::serve(SITE).await;
    let stale = Validators {
        etag: Some("\"stale\"".into()),
        last_modified: None,
    };
    let got = fetcher("")
        .fetch(FetchKind::Listing, &site.url("/list/"), Some(&stale), None)
        .await
        .unwrap();
    assert!(matches!(got, Fetched::Page { .. }));

    // A 304 to a request that sent no validators, directly or after a redirect, says
    // nothing about a stored copy: it is an error, not "unchanged".
    site.set("/list/", Override::status(304));
    let err = fetcher("")
        .fetch(FetchKind::Listing, &site.url("/list/"), None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Status { .. }), "{err}");
    site.set("/moved", Override::redirect("/list/"));
    let err = fetcher("")
        .fetch(FetchKind::Listing, &site.url("/moved"), Some(&stale), None)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Status { .. }), "{err}");
}
