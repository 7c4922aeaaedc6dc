//! Leases beyond the scheduled runs of `workers.rs`, on both backends: `bantin crawl`
//! beside a running daemon takes the same leases (it waits for a source the daemon is
//! running, or leaves it to the daemon and says so), two workers keep the delay of a
//! host that only their sources' article links are on, and a worker restarted after a
//! kill runs the sources it held again at once, and so does a sibling that was already
//! running when the holder was killed; a `Retry-After` one worker met holds back
//! another worker's requests to that host. What happened is read from the test
//! servers' own request logs; two workers also keep a host's concurrency there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::daemon::{Daemon, PATIENCE, free_port};
use crate::support::news_pages::{article, article_path, listing, listing_path};
use crate::support::{Backend, Gate, Override, Request, TestConfig, TestSite, TestStore};

/// Runs each named async test once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(crate::support::Backend::Postgres).await
            }
        })*
    };
}

on_both_backends!(
    crawl_beside_a_running_daemon_never_overlaps_a_source_run,
    crawl_leaves_a_source_held_past_the_lease_to_its_holder_and_names_it,
    two_workers_keep_the_delay_of_a_host_no_start_url_is_on,
    two_workers_send_one_request_at_a_time_to_a_host_no_start_url_is_on,
    a_restarted_worker_runs_its_own_sources_again_at_once,
    a_sibling_killed_mid_run_has_its_source_taken_at_the_next_claim,
    a_retry_after_one_worker_met_holds_back_another_workers_requests_to_its_host,
);

/// A listing source `id` reading `listing_url` on `schedule`, that may follow links to
/// `also` (a host besides its own).
fn source(id: &str, listing_url: &str, schedule: &str, also: &str) -> String {
    format!(
        "[[source]]\nid = \"{id}\"\nkind = \"listing\"\nurls = [\"{listing_url}\"]\n\
         schedule = \"{schedule}\"\nallowed_domains = [\"{also}\"]\n\n\
         [source.links]\nselector = \"div.list article.story\"\npattern = \"-i\\\\d{{5}}/?$\"\n\n"
    )
}

/// A process's configuration: its user agent (the request logs tell processes apart
/// by it), the shared database, a lease, the sources, and the port it serves on.
/// Requests wait long for their answer: a gated page holds a run, it does not fail it.
fn config(agent: &str, store: &TestStore, lease: &str, sources: &str) -> (TestConfig, u16) {
    let port = free_port();
    let config = TestConfig::new()
        .user_agent(agent)
        .fetch("per_host_concurrency = 1\nobey_robots = false\ntimeout = \"300s\"")
        .settings(&format!(
            "listen = \"127.0.0.1:{port}\"\n{}\nworkers = {{ lease = \"{lease}\" }}",
            store.settings_line()
        ))
        .site("news", sources);
    (config, port)
}

/// Starts `bantin <args>` on a written configuration, logging to `log`.
fn start((config, port): &(TestConfig, u16), logs: &Path, name: &str, args: &[&str]) -> Daemon {
    let path = config.write().join("bantin.toml");
    let log: PathBuf = logs.join(format!("{name}.log"));
    Daemon::command(&path, *port, log, args)
}

/// Waits until `ok` holds, polling every 50 ms, for at most `patience`.
async fn wait_until(what: &str, patience: Duration, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < patience, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Both workers (`bantin-one`, `bantin-two`) asked, and every request came at least
/// `at_least` after the one before it, whoever sent them.
fn assert_both_asked_and_apart(requests: &[Request], at_least: Duration) {
    for agent in ["bantin-one", "bantin-two"] {
        assert!(!by(requests, agent).is_empty(), "{agent} asked the host");
    }
    for pair in requests.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= at_least,
            "{} by {:?} came {gap:?} after {} by {:?}",
            pair[1].path,
            pair[1].user_agent(),
            pair[0].path,
            pair[0].user_agent()
        );
    }
}

fn by(requests: &[Request], agent: &str) -> Vec<Request> {
    requests
        .iter()
        .filter(|r| r.user_agent() == Some(agent))
        .cloned()
        .collect()
}

/// A site with source 0's listing and `articles` articles, the first held behind
/// `gate` (so that a run of the source lasts until the test opens it).
async fn gated_site(articles: usize, gate: &Gate) -> TestSite {
    let site = TestSite::empty().await;
    site.put(&listing_path(0), listing(0, articles));
    for k in 0..articles {
        site.put(&article_path(0, k), article(0, k));
    }
    site.set(&article_path(0, 0), Override::default().behind(gate));
    site
}

/// A schedule that fires a few seconds from now, then a minute later: one run of the
/// daemon in a test's time.
fn once_soon() -> String {
    let second = (chrono::Utc::now() + chrono::Duration::seconds(4)).format("%S");
    format!("{second} * * * * *")
}

async fn crawl_beside_a_running_daemon_never_overlaps_a_source_run(backend: Backend) {
    let store = TestStore::new(backend);
    let gate = Gate::default();
    let site = gated_site(3, &gate).await;
    let sources = source(
        "news",
        site.url(&listing_path(0)).as_str(),
        &once_soon(),
        "127.0.0.1",
    );
    let logs = tempfile::tempdir().unwrap();
    // A lease long enough that the crawl's wait (a lease and a third) outlasts the
    // daemon's run after the gate opens, even on a loaded machine.
    let daemon_config = config("bantin-daemon", &store, "15s", &sources);
    let _daemon = start(&daemon_config, logs.path(), "daemon", &["run"]);
    wait_until("the daemon's run to start", 2 * PATIENCE, || {
        !by(&site.requests_to(&article_path(0, 0)), "bantin-daemon").is_empty()
    })
    .await;

    let crawl_config = config("bantin-crawl", &store, "15s", &sources);
    let mut crawl = start(&crawl_config, logs.path(), "crawl", &["crawl"]);
    // Until the crawl waits for the daemon's run (or, were it not to, has started its own).
    wait_until("the crawl to wait or to start", PATIENCE, || {
        crawl.log().contains("waiting for it") || !by(&site.requests(), "bantin-crawl").is_empty()
    })
    .await;
    // New articles for the crawl's own run, once the daemon has read the listing.
    site.put(&listing_path(0), listing(0, 6));
    for k in 3..6 {
        site.put(&article_path(0, k), article(0, k));
    }
    gate.open();
    assert!(crawl.wait_exit().await.success(), "{}", crawl.log());
    let summary = crawl.stdout.until("news");
    assert!(
        !summary.iter().any(|l| l.contains("not run here")),
        "the crawl ran the source once the daemon's run ended: {summary:#?}"
    );

    // The crawl's requests form one block that no request of a daemon run interrupts.
    let requests = site.requests();
    let crawl_at: Vec<Instant> = by(&requests, "bantin-crawl").iter().map(|r| r.at).collect();
    assert_eq!(
        crawl_at.len(),
        4,
        "the listing and three articles: {requests:#?}"
    );
    let (first, last) = (crawl_at[0], crawl_at[3]);
    let daemon = by(&requests, "bantin-daemon");
    let inside: Vec<&Request> = daemon
        .iter()
        .filter(|r| r.at > first && r.at < last)
        .collect();
    assert!(
        inside.is_empty(),
        "the daemon asked during the crawl's run: {inside:#?}"
    );
    let last_of_daemon = daemon.last().expect("the daemon's run").at;
    assert!(
        last_of_daemon < first,
        "the daemon's run (its last article after the gate) ended before the crawl's began"
    );
}

async fn crawl_leaves_a_source_held_past_the_lease_to_its_holder_and_names_it(backend: Backend) {
    let store = TestStore::new(backend);
    let gate = Gate::default();
    let site = gated_site(1, &gate).await;
    let sources = source(
        "news",
        site.url(&listing_path(0)).as_str(),
        "*/2 * * * * *",
        "127.0.0.1",
    );
    let logs = tempfile::tempdir().unwrap();
    let daemon_config = config("bantin-daemon", &store, "6s", &sources);
    let mut daemon = start(&daemon_config, logs.path(), "daemon", &["run"]);
    let worker = {
        let health = daemon
            .wait_for("/healthz", "the daemon to hold the source", |b| {
                b.contains("\"lease\":{")
            })
            .await;
        let health: serde_json::Value = serde_json::from_str(&health).unwrap();
        health["worker"].as_str().unwrap().to_owned()
    };

    let crawl_config = config("bantin-crawl", &store, "6s", &sources);
    let mut crawl = start(&crawl_config, logs.path(), "crawl", &["crawl"]);
    assert!(crawl.wait_exit().await.success(), "{}", crawl.log());
    let summary = crawl.stdout.until("not run here");
    let line = summary.last().unwrap();
    assert!(
        line.starts_with("news") && line.contains(&format!("worker {worker} holds it")),
        "{summary:#?}"
    );
    assert!(
        crawl.log().contains("source not run here") && crawl.log().contains(&worker),
        "said on stderr too: {}",
        crawl.log()
    );
    assert!(
        by(&site.requests(), "bantin-crawl").is_empty(),
        "the crawl sent nothing for a source the daemon ran"
    );
    gate.open();
    assert!(daemon.stop().await.success(), "{}", daemon.log());
}

async fn two_workers_keep_the_delay_of_a_host_no_start_url_is_on(backend: Backend) {
    const DELAY: Duration = Duration::from_millis(400);
    const ARTICLES: usize = 5;
    let store = TestStore::new(backend);
    // Article pages on 127.0.0.2; each source's listing on a host of its own.
    let articles = TestSite::empty_on([127, 0, 0, 2].into()).await;
    let listings = listings_of_articles_on(&articles, 4, ARTICLES).await;
    // Each worker runs two sources of its own, at the same ticks.
    let sources = |of: [usize; 2]| -> String {
        of.iter()
            .map(|&n| {
                let url = listings[n].url(&listing_path(n));
                source(
                    &format!("src-{n}"),
                    url.as_str(),
                    "*/10 * * * * *",
                    "127.0.0.2",
                )
            })
            .collect()
    };
    let logs = tempfile::tempdir().unwrap();
    let delay = format!("per_host_delay = \"{}ms\"", DELAY.as_millis());
    let with_delay = |(config, port): (TestConfig, u16)| (config.fetch(&delay), port);
    let one = with_delay(config("bantin-one", &store, "10s", &sources([0, 1])));
    let two = with_delay(config("bantin-two", &store, "10s", &sources([2, 3])));
    let _one = start(&one, logs.path(), "one", &["run"]);
    let _two = start(&two, logs.path(), "two", &["run"]);
    wait_until("every article to be fetched", 2 * PATIENCE, || {
        articles.requests().len() >= 4 * ARTICLES
    })
    .await;

    // Half the delay of slack, as the server logs arrivals: a request can reach the
    // server late on a loaded machine, but two workers at once arrive side by side.
    assert_both_asked_and_apart(&articles.requests(), DELAY / 2);
}

/// `sources` listing pages, each on a host of its own, linking to `per_source` articles
/// each served by `articles` (a host no listing is on).
async fn listings_of_articles_on(
    articles: &TestSite,
    sources: usize,
    per_source: usize,
) -> Vec<TestSite> {
    let mut listings = Vec::new();
    for n in 0..sources {
        let site = TestSite::empty().await;
        let links = listing(n, per_source).replace(
            "href=\"/tin-tuc/",
            &format!("href=\"{}tin-tuc/", articles.url("/")),
        );
        site.put(&listing_path(n), links);
        for k in 0..per_source {
            articles.put(&article_path(n, k), article(n, k));
        }
        listings.push(site);
    }
    listings
}

/// A lease long enough that waiting it out would show.
const LONG_LEASE: &str = "60s";

/// One source, `news`, due every two seconds, whose one article answers only once
/// `gate` opens: a run of it stays in flight until then.
async fn one_gated_source() -> (Gate, TestSite, String) {
    let gate = Gate::default();
    let site = gated_site(1, &gate).await;
    let listing = site.url(&listing_path(0));
    let sources = source("news", listing.as_str(), "*/2 * * * * *", "127.0.0.1");
    (gate, site, sources)
}

/// Starts a worker and waits until its run of [`one_gated_source`] asks for the article.
async fn start_mid_run(
    worker: &(TestConfig, u16),
    logs: &Path,
    name: &str,
    site: &TestSite,
) -> Daemon {
    let daemon = start(worker, logs, name, &["run"]);
    wait_until("the first run to start", PATIENCE, || {
        !site.requests_to(&article_path(0, 0)).is_empty()
    })
    .await;
    daemon
}

async fn a_restarted_worker_runs_its_own_sources_again_at_once(backend: Backend) {
    let store = TestStore::new(backend);
    let (gate, site, sources) = one_gated_source().await;
    let logs = tempfile::tempdir().unwrap();
    let worker = config("bantin-worker", &store, LONG_LEASE, &sources);
    let mut first = start_mid_run(&worker, logs.path(), "first", &site).await;
    first.signal("KILL");
    first.wait_exit().await;
    let killed = Instant::now();
    let listed = site.requests_to(&listing_path(0)).len();

    let _second = start(&worker, logs.path(), "second", &["run"]);
    // The killed worker renewed its lease a third of a lease ago at most: waiting for
    // it would take 40 s or more. A generous margin below that, not a speed test.
    wait_until(
        "the restarted worker to read the source again",
        Duration::from_secs(30),
        || site.requests_to(&listing_path(0)).len() > listed,
    )
    .await;
    assert!(site.requests_to(&listing_path(0))[listed].at > killed);
    gate.open();
}

async fn a_sibling_killed_mid_run_has_its_source_taken_at_the_next_claim(backend: Backend) {
    let store = TestStore::new(backend);
    let (gate, site, sources) = one_gated_source().await;
    let logs = tempfile::tempdir().unwrap();
    let first = config("bantin-first", &store, LONG_LEASE, &sources);
    let mut first = start_mid_run(&first, logs.path(), "first", &site).await;
    // The sibling starts while the first worker lives, so the check at its start finds
    // nothing dead; its scheduler plans the source (it asks for it) once it has a next run.
    let sibling = config("bantin-sibling", &store, LONG_LEASE, &sources);
    let sibling = start(&sibling, logs.path(), "sibling", &["run"]);
    sibling
        .wait_for("/healthz", "the sibling to plan the source", |b| {
            b.contains("\"next_run\":\"")
        })
        .await;
    first.signal("KILL");
    first.wait_exit().await;
    let killed = Instant::now();

    // The first worker renewed its lease a third of a lease ago at most: waiting for
    // it would take 40 s or more. A generous margin below that, not a speed test.
    wait_until(
        "the sibling to read the source",
        Duration::from_secs(30),
        || !by(&site.requests_to(&listing_path(0)), "bantin-sibling").is_empty(),
    )
    .await;
    let taken = by(&site.requests_to(&listing_path(0)), "bantin-sibling")[0].at;
    assert!(
        taken > killed,
        "the sibling read the source only after the kill"
    );
    gate.open();
}

async fn a_retry_after_one_worker_met_holds_back_another_workers_requests_to_its_host(
    backend: Backend,
) {
    const RETRY_AFTER: Duration = Duration::from_secs(5);
    const ARTICLES: usize = 3;
    let store = TestStore::new(backend);
    // Article pages of both sources on 127.0.0.2, a host neither lists on; the first
    // article of source 0 answers 429 with a Retry-After for the whole host.
    let articles = TestSite::empty_on([127, 0, 0, 2].into()).await;
    let gate = Gate::default();
    let listings = listings_of_articles_on(&articles, 2, ARTICLES).await;
    // The 429 comes once the second worker's run has started: what it read of the
    // stored hold-backs when it claimed its source does not have it yet. Its listing
    // then waits until the first worker has stored the 429.
    let refuse = Gate::default();
    let retry_after = RETRY_AFTER.as_secs().to_string();
    articles.set(
        &article_path(0, 0),
        Override::status(429)
            .header("Retry-After", &retry_after)
            .behind(&refuse),
    );
    listings[1].set(&listing_path(1), Override::default().behind(&gate));
    let schedule = once_soon();
    let source_of = |n: usize| {
        let url = listings[n].url(&listing_path(n));
        source(&format!("src-{n}"), url.as_str(), &schedule, "127.0.0.2")
    };
    let logs = tempfile::tempdir().unwrap();
    let by_host =
        |(config, port): (TestConfig, u16)| (config.fetch("retry_after_scope = \"host\""), port);
    let one = by_host(config("bantin-one", &store, "10s", &source_of(0)));
    let two = by_host(config("bantin-two", &store, "10s", &source_of(1)));
    let _one = start(&one, logs.path(), "one", &["run"]);
    let _two = start(&two, logs.path(), "two", &["run"]);
    wait_until("the second worker's run to start", 2 * PATIENCE, || {
        !by(&listings[1].requests(), "bantin-two").is_empty()
    })
    .await;
    refuse.open();
    wait_until(
        "the first worker to store the Retry-After",
        2 * PATIENCE,
        || store.count("SELECT count(*) FROM held_back") > 0,
    )
    .await;
    let refused = by(&articles.requests_to(&article_path(0, 0)), "bantin-one")[0].at;
    gate.open();
    wait_until("the second worker to fetch its articles", PATIENCE, || {
        by(&articles.requests(), "bantin-two").len() >= ARTICLES
    })
    .await;

    // The hold-back runs from when the first worker read the answer, after the server
    // logged the request; a tenth of slack for the clocks.
    for request in by(&articles.requests(), "bantin-two") {
        let after = request.at - refused;
        assert!(
            after >= RETRY_AFTER - RETRY_AFTER / 10,
            "{} came {after:?} after the 429",
            request.path
        );
    }
}

async fn two_workers_send_one_request_at_a_time_to_a_host_no_start_url_is_on(backend: Backend) {
    const ANSWER_AFTER: Duration = Duration::from_millis(500);
    const ARTICLES: usize = 4;
    let store = TestStore::new(backend);
    // Slow article pages on 127.0.0.2, no delay between requests: only the concurrency
    // (one, as `config` sets it) keeps two workers' requests apart.
    let articles = TestSite::empty_on([127, 0, 0, 2].into()).await;
    let listings = listings_of_articles_on(&articles, 2, ARTICLES).await;
    for n in 0..2 {
        for k in 0..ARTICLES {
            articles.set(&article_path(n, k), Override::default().delay(ANSWER_AFTER));
        }
    }
    let source_of = |n: usize| {
        let url = listings[n].url(&listing_path(n));
        source(
            &format!("src-{n}"),
            url.as_str(),
            "*/10 * * * * *",
            "127.0.0.2",
        )
    };
    let logs = tempfile::tempdir().unwrap();
    let one = config("bantin-one", &store, "10s", &source_of(0));
    let two = config("bantin-two", &store, "10s", &source_of(1));
    let _one = start(&one, logs.path(), "one", &["run"]);
    let _two = start(&two, logs.path(), "two", &["run"]);
    wait_until("every article to be fetched", 2 * PATIENCE, || {
        articles.requests().len() >= 2 * ARTICLES
    })
    .await;

    // A request is sent only once the one before has its answer, which the server
    // sends no sooner than `ANSWER_AFTER` after it came; half of it as slack for a
    // loaded machine, while two requests at once arrive side by side.
    assert_both_asked_and_apart(&articles.requests(), ANSWER_AFTER / 2);
}
