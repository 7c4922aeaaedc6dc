//! Source runs over time, as an operator sees them: why a source could not be read,
//! every request counted by kind, and the scheduling state a restart or a shutdown must
//! keep (backoff, Retry-After, what was fetched before the signal).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bantin::daemon::Service;

use crate::support::daemon::{Daemon, PATIENCE, free_port, metric};
use crate::support::pages::{article_path, write_listing};
use crate::support::{Gate, Override, TestConfig, TestSite};

const SITE: &str = "tests/fixtures/sites/news";

/// A listing source `id` reading `url` on `schedule`, links in `div.list article.story`.
fn listing_source(id: &str, url: &url::Url, schedule: &str) -> String {
    format!(
        "[[source]]\nid = \"{id}\"\nkind = \"listing\"\nurls = [\"{url}\"]\nschedule = \"{schedule}\"\n\n\
         [source.links]\nselector = \"div.list article.story\"\npattern = \"-i\\\\d{{5}}/?$\"\n"
    )
}

/// `bantin crawl` on the configuration in `dir`: exit code and stdout. Waits off the
/// test's runtime, which serves the test sites meanwhile.
async fn crawl(dir: &Path) -> (Option<i32>, String) {
    let config = dir.join("bantin.toml");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(assert_cmd::cargo::cargo_bin!("bantin"))
            .args(["--config", config.to_str().unwrap(), "crawl"])
            .output()
    })
    .await
    .unwrap()
    .expect("bantin crawl runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn crawl_names_why_each_unreadable_source_was_not_read() {
    let missing = TestSite::serve(SITE).await;
    let disallowed = TestSite::empty().await;
    disallowed.set(
        "/robots.txt",
        Override::body("User-agent: *\nDisallow: /\n"),
    );
    let silent = TestSite::empty().await;
    silent.set("/list/", Override::never());
    let closed = url::Url::parse(&format!("http://127.0.0.1:{}/list/", free_port())).unwrap();
    let test = TestConfig::new()
        .fetch("timeout = \"1s\"")
        .site(
            "silent",
            &listing_source("silent", &silent.url("/list/"), "0 * * * *"),
        )
        .site("down", &listing_source("down", &closed, "0 * * * *"))
        .site(
            "missing",
            &listing_source("missing", &missing.url("/list/"), "0 * * * *"),
        )
        .site(
            "disallowed",
            &listing_source("disallowed", &disallowed.url("/list/"), "0 * * * *"),
        );
    test.load();
    // The first pass reads `missing`'s listing: from then on it usually has links.
    crawl(test.dir()).await;
    // The listing that was read before is gone now: a 404, not a redesign.
    missing.set("/list/", Override::status(404));

    let (code, out) = crawl(test.dir()).await;

    assert_eq!(
        code,
        Some(1),
        "a source that could not be read fails the crawl:\n{out}"
    );
    for (source, cause) in [
        ("down", "source not read: connection refused"),
        ("silent", "source not read: timed out"),
        ("missing", "source not read: answered 404"),
        (
            "disallowed",
            "source not read: robots.txt does not allow it",
        ),
    ] {
        let block: String = out
            .lines()
            .skip_while(|l| !l.starts_with(source))
            .take(2)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(block.contains(cause), "{source}: {cause:?} in:\n{out}");
    }
    assert!(
        !out.contains("links.selector"),
        "no selector hint for listings that were not read:\n{out}"
    );
}

#[tokio::test]
async fn every_request_is_counted_by_kind_and_status() {
    let site = TestSite::serve(SITE).await;
    let test = TestConfig::new()
        .site(
            "listing",
            &listing_source("listing", &site.url("/list/"), "0 * * * *"),
        )
        .site(
            "feed",
            &format!(
                "[[source]]\nid = \"feed\"\nkind = \"feed\"\nurls = [\"{}\"]\nschedule = \"0 * * * *\"\n",
                site.url("/feeds/rss.xml")
            ),
        )
        .site(
            "sitemap",
            &format!(
                "[[source]]\nid = \"sitemap\"\nkind = \"sitemap\"\nurls = [\"{}\"]\nschedule = \"0 * * * *\"\n",
                site.url("/sitemap_index.xml")
            ),
        );
    let config = Arc::new(test.load());
    let service = Service::open(&config).expect("store opens");
    service
        .crawl(&config, config.sources.clone(), |_, _| {})
        .await;

    let metrics = service.pipeline.metrics.render();
    let counted = |kind: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(&format!("bantin_fetches_total{{kind=\"{kind}\",")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let asked = |prefix: &str| site.requests_under(prefix).len() as u64;
    assert_eq!(counted("robots"), asked("/robots.txt"), "{metrics}");
    assert_eq!(counted("listing"), asked("/list/"), "{metrics}");
    assert_eq!(counted("feed"), asked("/feeds/"), "{metrics}");
    assert_eq!(
        counted("sitemap"),
        asked("/sitemap_index.xml") + asked("/sitemaps/"),
        "{metrics}"
    );
    assert_eq!(counted("article"), asked("/tin-tuc/"), "{metrics}");
    assert!(counted("article") > 0 && counted("listing") > 0 && counted("robots") > 0);
    assert_eq!(
        counted("robots")
            + counted("listing")
            + counted("feed")
            + counted("sitemap")
            + counted("article"),
        site.requests().len() as u64,
        "every request the site saw is counted once:\n{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "bantin_fetches_total{kind=\"robots\",status=\"404\"}"
        ),
        1,
        "{metrics}"
    );
}

/// `listen` and `base_url` lines for a daemon on `port`.
fn listen_on(port: u16) -> String {
    format!("listen = \"127.0.0.1:{port}\"\nbase_url = \"http://127.0.0.1:{port}/\"")
}

/// Waits until `what` holds, polling.
async fn wait_until(what: &str, daemon: &Daemon, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < PATIENCE,
            "timed out waiting for {what}; daemon log:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One source's entry in `/healthz`.
async fn source_health(daemon: &Daemon, id: &str) -> serde_json::Value {
    let (_, body) = daemon.get("/healthz").await.expect("healthz answers");
    let health: serde_json::Value = serde_json::from_str(&body).expect("healthz is JSON");
    health["sources"]
        .as_array()
        .expect("healthz lists sources")
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} in {body}"))
}

/// Waits until the scheduler puts source `id`'s next run more than `after` from now.
async fn wait_for_next_run_after(daemon: &Daemon, id: &str, after: Duration) {
    let start = Instant::now();
    loop {
        let health = source_health(daemon, id).await;
        let next = health["next_run"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        if next.is_some_and(|t| t.to_utc() > chrono::Utc::now() + after) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{id} is not put off by {after:?}: {health}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn restart_keeps_a_failing_source_backing_off_and_a_hosts_retry_after() {
    let failing = TestSite::empty().await;
    failing.set("/list/", Override::status(500));
    let waiting = TestSite::empty().await;
    waiting.set("/list/", Override::status(503).header("retry-after", "600"));
    // A healthy source shows that the restarted daemon is ticking.
    let healthy = TestSite::serve(SITE).await;
    let port = free_port();
    let every_second = "* * * * * *";
    let test = TestConfig::new()
        .settings(&listen_on(port))
        .fetch("backoff_base = \"60s\"\nbackoff_cap = \"1h\"\nretry_after_scope = \"host\"")
        .site(
            "failing",
            &listing_source("failing", &failing.url("/list/"), every_second),
        )
        .site(
            "waiting",
            &listing_source("waiting", &waiting.url("/list/"), every_second),
        )
        .site(
            "healthy",
            &listing_source("healthy", &healthy.url("/list/"), every_second),
        );
    test.load();
    let config = test.dir().join("bantin.toml");
    let mut daemon = Daemon::start(&config, port, test.dir().join("first.log"));
    wait_until("both sources asked once", &daemon, || {
        !failing.requests_to("/list/").is_empty() && !waiting.requests_to("/list/").is_empty()
    })
    .await;
    let start = Instant::now();
    loop {
        let (failing_health, waiting_health) = (
            source_health(&daemon, "failing").await,
            source_health(&daemon, "waiting").await,
        );
        if failing_health["failures"] == 1 && !waiting_health["last_run"].is_null() {
            assert_eq!(failing_health["failure"], "answered 500");
            let cause = waiting_health["failure"].as_str().unwrap_or_default();
            assert!(
                cause.starts_with("held back by the site's Retry-After"),
                "{cause}"
            );
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "runs not recorded:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_next_run_after(&daemon, "waiting", Duration::from_secs(500)).await;
    wait_for_next_run_after(&daemon, "failing", Duration::from_secs(30)).await;
    let (_, index) = daemon.get("/").await.expect("index answers");
    assert!(index.contains("failing: not read: answered 500"), "{index}");
    assert!(
        index.contains("waiting: not read: held back by the site's Retry-After"),
        "{index}"
    );
    assert_eq!(daemon.stop().await.code(), Some(0), "{}", daemon.log());
    let asked_failing = failing.requests().len();
    let asked_waiting = waiting.requests().len();

    let mut daemon = Daemon::start(&config, port, test.dir().join("second.log"));
    let ticks_before = healthy.requests_to("/list/").len();
    wait_until("three ticks after the restart", &daemon, || {
        healthy.requests_to("/list/").len() >= ticks_before + 3
    })
    .await;
    wait_for_next_run_after(&daemon, "waiting", Duration::from_secs(500)).await;
    wait_for_next_run_after(&daemon, "failing", Duration::from_secs(30)).await;
    assert_eq!(
        failing.requests().len(),
        asked_failing,
        "the failing source was asked again before its backoff ended:\n{}",
        daemon.log()
    );
    assert_eq!(
        waiting.requests().len(),
        asked_waiting,
        "the host was asked again before its Retry-After:\n{}",
        daemon.log()
    );
    assert_eq!(daemon.stop().await.code(), Some(0), "{}", daemon.log());
}

#[tokio::test]
async fn sigterm_with_slow_requests_in_flight_starts_none_stores_what_came_and_exits_in_time() {
    let site = TestSite::serve(SITE).await;
    // Articles 6 to 10 never answer in time; 11 to 15 answer once the signal is sent.
    let slow: Vec<String> = (6..=15).map(article_path).collect();
    let after_signal = Gate::default();
    for n in 6..=15 {
        let held = match n {
            6..=10 => Override::default().delay(Duration::from_secs(300)),
            _ => Override::default().behind(&after_signal),
        };
        site.set(&article_path(n), held);
    }
    let port = free_port();
    let shutdown_timeout = Duration::from_secs(2);
    // Ten requests at a time: the slow ten hold every slot while the fifteen articles
    // of the second listing page wait for one.
    let both_pages = listing_source("news", &site.url("/list/"), "* * * * * *")
        + "next_page = \"ul.pagination a.next\"\nmax_pages = 2\n";
    let test = TestConfig::new()
        .settings(&format!("{}\nshutdown_timeout = \"2s\"", listen_on(port)))
        .fetch("timeout = \"600s\"\nper_host_concurrency = 10")
        .site("news", &both_pages);
    let config = test.load();
    let mut daemon = Daemon::start(
        &test.dir().join("bantin.toml"),
        port,
        test.dir().join("daemon.log"),
    );
    let in_flight = || {
        slow.iter()
            .filter(|p| !site.requests_to(p).is_empty())
            .count()
    };
    wait_until("10 slow requests in flight", &daemon, || in_flight() == 10).await;
    let start = Instant::now();
    loop {
        let stored = match daemon.get("/metrics").await {
            Some((_, text)) => metric(&text, "bantin_items_total{outcome=\"new\"}"),
            None => 0,
        };
        if stored == 5 {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "fast articles not stored:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let asked_before = site.requests().len();
    assert_eq!(
        asked_before,
        1 + 2 + 15,
        "robots.txt, two listing pages, 15 articles"
    );
    let signalled = Instant::now();
    daemon.signal("TERM");
    wait_until("the daemon to stop new requests", &daemon, || {
        daemon.log().contains("no new requests")
    })
    .await;
    after_signal.open();
    let status = daemon.wait_exit().await;
    let took = signalled.elapsed();
    assert_eq!(
        site.requests().len(),
        asked_before,
        "no request starts after the signal: {:?}",
        site.requests()[asked_before..]
            .iter()
            .map(|r| &r.path)
            .collect::<Vec<_>>()
    );

    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    assert!(
        took < shutdown_timeout + Duration::from_secs(5),
        "took {took:?}:\n{}",
        daemon.log()
    );
    let links = published_paths(&config.settings.feeds_dir.join("all.rss"));
    let fetched = sorted_paths((1..=5).chain(11..=15));
    assert_eq!(
        links, fetched,
        "articles fetched before the deadline are published, those still in flight are not"
    );
}

/// Article `n` with a byline in an element of class `byline_class`.
fn write_signed_article(site_dir: &Path, n: u32, byline_class: &str) {
    let dir = site_dir.join(article_path(n).trim_matches('/'));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("index.html"),
        format!(
            "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Bài {n}</title></head>\
             <body><article><h1>Tin số {n} về công tác phòng cháy</h1>\
             <div class=\"date\">03/05/2024 09:00</div><span class=\"{byline_class}\">Minh Anh</span>\
             <div class=\"body\"><p>Đoạn mở đầu của bài số {n}, kể lại sự việc trong tuần qua.</p>\
             <p>Đoạn thứ hai của bài số {n}, đủ dài để là phần thân của một bài báo thật.</p></div>\
             </article></body></html>"
        ),
    )
    .unwrap();
}

#[tokio::test]
async fn a_field_the_new_articles_lose_raises_the_alarm_naming_its_selector() {
    let site_dir = tempfile::tempdir().unwrap();
    let site = TestSite::serve(site_dir.path()).await;
    let source = listing_source("news", &site.url("/list/"), "0 * * * *")
        + "\n[source.extract]\nauthor = \"span.author\"\n";
    let config = TestConfig::new().site("news", &source).load();
    let service = Service::open(&config).expect("store opens");
    let mut runs = Vec::new();
    // Two runs of signed articles, then the site renames its byline element.
    for (round, byline) in [(0, "author"), (1, "author"), (2, "nguoi-viet")] {
        let numbers = 3 * round + 1..=3 * round + 3;
        for n in numbers.clone() {
            write_signed_article(site_dir.path(), n, byline);
        }
        write_listing(site_dir.path(), "list", numbers);
        runs.push(
            service
                .pipeline
                .run_source(&config, &config.sources[0])
                .await,
        );
    }

    for run in &runs {
        assert_eq!((run.new, run.errors), (3, 0), "{run:?}");
    }
    assert!(runs[1].breakage.is_empty(), "{:?}", runs[1]);
    assert_eq!(
        runs[2].breakage,
        ["only 0% of articles had `authors` (usually 100%); check extract.author \"span.author\""],
        "{:?}",
        runs[2]
    );
}

/// The addresses of articles `numbers`, sorted as [`published_paths`] sorts.
fn sorted_paths(numbers: impl Iterator<Item = u32>) -> Vec<String> {
    let mut paths: Vec<String> = numbers.map(article_path).collect();
    paths.sort();
    paths
}

/// The paths of the items in a published RSS file, sorted.
fn published_paths(feed: &Path) -> Vec<String> {
    let rss = std::fs::read_to_string(feed).expect("the feed was published");
    let channel = rss::Channel::read_from(rss.as_bytes()).expect("the feed parses");
    let mut paths: Vec<String> = channel
        .items()
        .iter()
        .filter_map(|i| {
            i.link()
                .map(|l| url::Url::parse(l).unwrap().path().to_owned())
        })
        .collect();
    paths.sort();
    paths
}

#[tokio::test]
async fn sigterm_ends_a_crawl_in_time_and_publishes_what_was_fetched() {
    let site = TestSite::serve(SITE).await;
    for n in 6..=15 {
        site.set(
            &article_path(n),
            Override::default().delay(Duration::from_secs(300)),
        );
    }
    let test = TestConfig::new()
        .settings("shutdown_timeout = \"2s\"")
        .fetch("timeout = \"600s\"\nper_host_concurrency = 16")
        .site(
            "news",
            &listing_source("news", &site.url("/list/"), "0 * * * *"),
        );
    let config = test.load();
    let mut crawl = Daemon::command(
        &test.dir().join("bantin.toml"),
        0,
        test.dir().join("crawl.log"),
        &["crawl"],
    );
    wait_until("10 slow requests in flight", &crawl, || {
        (6..=15).all(|n| !site.requests_to(&article_path(n)).is_empty())
    })
    .await;

    let signalled = Instant::now();
    crawl.signal("TERM");
    let status = crawl.wait_exit().await;

    assert_eq!(status.code(), Some(0), "{}", crawl.log());
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(2 + 5), "took {took:?}");
    assert_eq!(
        published_paths(&config.settings.feeds_dir.join("all.rss")),
        sorted_paths(1..=5),
        "the articles answered before the deadline are published"
    );
}
