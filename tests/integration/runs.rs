//! Source runs over time, as an operator sees them: why a source could not be read,
//! every request counted by kind, and the scheduling state a restart or a shutdown must
//! keep (backoff, Retry-After, what was fetched before the signal).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bantin::daemon::Service;

use crate::support::daemon::{Daemon, PATIENCE, free_port, metric};
use crate::support::{Override, TestConfig, TestSite};

const SITE: &str = "tests/fixtures/sites/news";

/// A listing source `id` reading `url` on a seconds schedule.
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
    disallowed.set("/robots.txt", Override::body("User-agent: *\nDisallow: /\n"));
    let closed = url::Url::parse(&format!("http://127.0.0.1:{}/list/", free_port())).unwrap();
    let test = TestConfig::new()
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
    let (_, first) = crawl(test.dir()).await;
    assert!(first.contains("missing  "), "{first}");
    // The listing that was read before is gone now: a 404, not a redesign.
    missing.set("/list/", Override::status(404));

    let (code, out) = crawl(test.dir()).await;

    assert_eq!(code, Some(1), "a source that could not be read fails the crawl:\n{out}");
    for (source, cause) in [
        ("down", "source not read: connection refused"),
        ("missing", "source not read: answered 404"),
        ("disallowed", "source not read: robots.txt does not allow it"),
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
    site.set("/tin-tuc/missing-i99999/", Override::status(404));
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
    service.crawl(&config, config.sources.clone(), |_, _| {}).await;

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
        metric(&metrics, "bantin_fetches_total{kind=\"robots\",status=\"404\"}"),
        1,
        "{metrics}"
    );
}
