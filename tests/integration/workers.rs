//! Several `bantin run` processes on one PostgreSQL database share the sources: three
//! workers, 30 sources over three hosts (three local servers) with a per-host delay,
//! one worker SIGKILLed in the middle of its runs. What happened is read back from the
//! database (items, runs, leases) and from the servers' own request logs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bantin::model::SourceRun;
use chrono::{DateTime, Utc};
use url::Url;

use crate::support::backend::TestDatabase;
use crate::support::daemon::{Daemon, PATIENCE, free_port, metric, titles};
use crate::support::news_pages::{article, article_path, listing, listing_path, source_toml};
use crate::support::{TestConfig, TestSite};

const WORKERS: usize = 3;
const HOSTS: usize = 3;
const SOURCES_PER_HOST: usize = 10;
const SOURCES: usize = HOSTS * SOURCES_PER_HOST;
const LEASE: Duration = Duration::from_secs(4);
const PER_HOST_DELAY: Duration = Duration::from_millis(500);
/// Every source runs on every 15th second, so runs go on after the kill.
const SCHEDULE: &str = "*/15 * * * * *";

/// One host: a server holding the listings and articles of its sources.
async fn host(h: usize) -> TestSite {
    let site = TestSite::empty().await;
    for n in h * SOURCES_PER_HOST..(h + 1) * SOURCES_PER_HOST {
        site.put(&listing_path(n), listing(n, 1));
        site.put(&article_path(n, 0), article(n, 0));
    }
    site
}

/// A worker's configuration: its own port, user agent and feeds folder; the shared
/// database and sources.
fn worker_config(w: usize, port: u16, database: &str, hosts: &[TestSite]) -> TestConfig {
    let mut config = TestConfig::new()
        .user_agent(&format!("bantin-worker-{w}"))
        .fetch(&format!(
            "per_host_delay = \"{}ms\"\nper_host_concurrency = 1\nobey_robots = false",
            PER_HOST_DELAY.as_millis()
        ))
        .settings(&format!(
            "listen = \"127.0.0.1:{port}\"\ndatabase_url = {database:?}\n\
             workers = {{ lease = \"{}s\" }}",
            LEASE.as_secs()
        ));
    for (h, site) in hosts.iter().enumerate() {
        let sources: String = (h * SOURCES_PER_HOST..(h + 1) * SOURCES_PER_HOST)
            .map(|n| source_toml(&source_id(n), site.url(&listing_path(n)).as_str(), SCHEDULE))
            .collect();
        config = config.site(&format!("host-{h}"), &sources);
    }
    config
}

fn source_id(n: usize) -> String {
    format!("src-{n}")
}

/// Runs a query on the test database off the async threads.
async fn query(database: &str, sql: &'static str) -> Vec<postgres::Row> {
    let url = database.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("database");
        client.query(sql, &[]).expect("query runs")
    })
    .await
    .expect("query thread")
}

/// Sources a worker holds now, by worker id, as a worker's `/healthz` shows them.
async fn leases_by_worker(daemon: &Daemon) -> BTreeMap<String, Vec<String>> {
    let health = daemon.wait_for("/healthz", "health", |_| true).await;
    let health: serde_json::Value = serde_json::from_str(&health).expect("health is JSON");
    let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for source in health["sources"].as_array().expect("sources") {
        if let Some(worker) = source["lease"]["worker"].as_str() {
            let id = source["id"].as_str().expect("source id");
            held.entry(worker.to_owned())
                .or_default()
                .push(id.to_owned());
        }
    }
    held
}

/// Every stored run, by source.
async fn runs_by_source(database: &str) -> BTreeMap<String, Vec<SourceRun>> {
    let rows = query(database, "SELECT source, run FROM source_runs").await;
    let mut runs: BTreeMap<String, Vec<SourceRun>> = BTreeMap::new();
    for row in rows {
        let run: String = row.get(1);
        let run = serde_json::from_str(&run).expect("a stored run is JSON");
        runs.entry(row.get(0)).or_default().push(run);
    }
    runs
}

/// Waits until `ok` holds, polling every quarter second, for at most `patience`.
async fn wait_until<F: Future<Output = bool>>(what: &str, patience: Duration, ok: impl Fn() -> F) {
    let start = Instant::now();
    while !ok().await {
        assert!(start.elapsed() < patience, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The worker id a daemon's `/healthz` shows.
async fn worker_id(daemon: &Daemon) -> String {
    let health = daemon
        .wait_for("/healthz", "the worker id", |b| b.contains("\"worker\""))
        .await;
    let health: serde_json::Value = serde_json::from_str(&health).expect("health is JSON");
    health["worker"]
        .as_str()
        .expect("worker is text")
        .to_owned()
}

/// Starts the workers (configs, logs and ports kept in the returned values).
async fn start_workers(
    database: &str,
    hosts: &[TestSite],
    logs: &tempfile::TempDir,
) -> Vec<(Daemon, TestConfig, String)> {
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let port = free_port();
        let config = worker_config(w, port, database, hosts);
        let path = config.write().join("bantin.toml");
        let log: PathBuf = logs.path().join(format!("worker-{w}.log"));
        let daemon = Daemon::start(&path, port, log);
        workers.push((daemon, config, String::new()));
    }
    for worker in &mut workers {
        worker.2 = worker_id(&worker.0).await;
    }
    workers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_sources_and_survive_one_killed_mid_run() {
    let db = TestDatabase::create();
    let mut hosts = Vec::new();
    for h in 0..HOSTS {
        hosts.push(host(h).await);
    }
    let logs = tempfile::tempdir().unwrap();
    let mut workers = start_workers(&db.url, &hosts, &logs).await;
    let ids: BTreeSet<&String> = workers.iter().map(|w| &w.2).collect();
    assert_eq!(
        ids.len(),
        WORKERS,
        "each worker has an id of its own: {ids:?}"
    );

    // Kill a worker while it holds sources whose runs have started.
    let article_requests = || {
        hosts
            .iter()
            .map(|h| h.requests_under("/tin-tuc/").len())
            .sum::<usize>()
    };
    let (victim, dead_sources, killed_wall) = loop {
        wait_until("the first articles to be fetched", PATIENCE, || async {
            article_requests() >= 2
        })
        .await;
        let held = leases_by_worker(&workers[0].0).await;
        if let Some((worker, sources)) = held.into_iter().max_by_key(|(_, s)| s.len()) {
            let victim = workers
                .iter()
                .position(|w| w.2 == worker)
                .expect("a known worker");
            workers[victim].0.signal("KILL");
            break (victim, sources, Utc::now());
        }
    };
    workers[victim].0.wait_exit().await;
    let dead_id = workers[victim].2.clone();

    // Survivors finish every source the dead worker held, and then all sources run.
    wait_until(
        "survivors to run the dead worker's sources",
        2 * PATIENCE,
        || async {
            let runs = runs_by_source(&db.url).await;
            dead_sources.iter().all(|source| {
                runs.get(source).is_some_and(|runs| {
                    runs.iter()
                        .any(|r| !r.failed() && r.started_at.is_some_and(|t| t > killed_wall))
                })
            })
        },
    )
    .await;
    // Two ticks or more of every source, so that runs of one tick by two workers at
    // once would show as overlapping runs.
    wait_until("every source to have run twice", 2 * PATIENCE, || async {
        let runs = runs_by_source(&db.url).await;
        runs.len() == SOURCES && runs.values().all(|r| r.len() >= 2)
    })
    .await;

    // Each dead source was run again once its lease ran out (a lease after the kill,
    // plus the claim poll; a generous margin on a loaded machine, not a speed test).
    let runs = runs_by_source(&db.url).await;
    for source in &dead_sources {
        let restarted = runs[source]
            .iter()
            .filter_map(|r| r.started_at)
            .filter(|t| *t > killed_wall)
            .min()
            .expect("a run after the kill");
        let after = (restarted - killed_wall).to_std().unwrap();
        assert!(
            after < 5 * LEASE,
            "{source} taken over {after:?} after the kill"
        );
    }
    let survivor = workers.iter().find(|w| w.2 != dead_id).expect("a survivor");
    assert!(
        !leases_by_worker(&survivor.0).await.contains_key(&dead_id),
        "the dead worker's leases ran out"
    );

    // Every article is stored exactly once.
    let items = query(&db.url, "SELECT count(*) FROM items").await[0].get::<_, i64>(0);
    assert_eq!(items, SOURCES as i64, "one item per article");
    let store = bantin::store::open(&bantin::config::Database::Postgres(db.url.clone()), 3)
        .expect("store opens");
    let unknown: Vec<Url> = (0..SOURCES)
        .map(|n| hosts[n / SOURCES_PER_HOST].url(&article_path(n, 0)))
        .filter(|url| !tokio::task::block_in_place(|| store.knows_url(url)).unwrap())
        .collect();
    assert!(unknown.is_empty(), "not stored: {unknown:?}");
    drop(store);

    assert_no_overlapping_runs(&runs_by_source(&db.url).await);
    for (h, site) in hosts.iter().enumerate() {
        assert_delay_kept(h, site);
    }

    // Every survivor's server answers the same feeds once it has published what the
    // database holds (a reload publishes).
    let survivors: Vec<_> = workers
        .iter()
        .enumerate()
        .filter(|(w, _)| *w != victim)
        .map(|(_, w)| w)
        .collect();
    for (daemon, config, _) in &survivors {
        let path = config.dir().join("bantin.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}\n# reloaded\n")).unwrap();
        daemon
            .wait_for("/feeds/all.rss", "every article in the feed", |rss| {
                titles(rss).len() == SOURCES
            })
            .await;
    }
    for feed in ["/feeds/all.rss", "/feeds/all.atom", "/feeds/all.json"] {
        let mut bodies = BTreeSet::new();
        for (daemon, _, _) in &survivors {
            bodies.insert(daemon.get(feed).await.expect("feed answers"));
        }
        assert_eq!(bodies.len(), 1, "{feed} differs between workers");
    }
    for (daemon, _, _) in &survivors {
        let (_, metrics) = daemon.get("/metrics").await.expect("metrics answer");
        assert_eq!(
            metric(&metrics, "bantin_worker_leases_lost_total"),
            0,
            "renewed in time"
        );
    }
    for worker in workers.iter_mut().filter(|w| w.2 != dead_id) {
        assert!(worker.0.stop().await.success(), "{}", worker.0.log());
    }
}

/// No source ever had two runs at once: each stored run started after the one before
/// it finished.
fn assert_no_overlapping_runs(runs: &BTreeMap<String, Vec<SourceRun>>) {
    for (source, runs) in runs {
        let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = runs
            .iter()
            .map(|r| (r.started_at.unwrap(), r.finished_at.unwrap()))
            .collect();
        spans.sort();
        for pair in spans.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1,
                "{source}: a run started at {} while one from {} ran to {}",
                pair[1].0,
                pair[0].0,
                pair[0].1
            );
        }
    }
}

/// No two workers asked a host closer together than its delay: wherever the requests
/// to a host pass from one worker to another, the second waited out the first's delay.
/// Half the delay of slack, as the server logs arrivals: on a loaded machine a request
/// can reach the server late, but two workers at once would send requests side by
/// side. (One worker's own spacing is its fetcher's, tested with the fetcher.)
fn assert_delay_kept(h: usize, site: &TestSite) {
    let requests = site.requests();
    assert!(!requests.is_empty(), "host {h} was never asked");
    for pair in requests.windows(2) {
        if pair[0].user_agent() == pair[1].user_agent() {
            continue;
        }
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= PER_HOST_DELAY / 2,
            "host {h}: {} by {:?} came {gap:?} after {} by {:?}",
            pair[1].path,
            pair[1].user_agent(),
            pair[0].path,
            pair[0].user_agent()
        );
    }
}
