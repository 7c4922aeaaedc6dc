//! The scheduler over real configurations with one-second cron schedules and counting
//! closures: runs happen, never overlap, failing sources back off and recover, config
//! changes take effect, shutdown waits for runs in flight.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bantin::config::Config;
use bantin::model::SourceId;
use bantin::schedule::{ScheduleOptions, Scheduler};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const EVERY_SECOND: &str = "* * * * * *";

/// Writes and loads a configuration with one listing source per `(id, schedule)`.
fn config(dir: &Path, sources: &[(&str, &str)]) -> Arc<Config> {
    std::fs::create_dir_all(dir.join("sources")).unwrap();
    std::fs::write(
        dir.join("bantin.toml"),
        "data_dir = \"data\"\nfeeds_dir = \"feeds\"\n[fetch]\nbackoff_base = \"1s\"\nbackoff_cap = \"2s\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("categories.toml"),
        "[[category]]\nid = \"news\"\ntitle = \"News\"\n",
    )
    .unwrap();
    let mut text = String::new();
    for (id, schedule) in sources {
        text += &format!(
            "[[source]]\nid = \"{id}\"\nkind = \"listing\"\nurls = [\"http://127.0.0.1:9/{id}/\"]\n\
             schedule = \"{schedule}\"\n[source.links]\npattern = \"-i\\\\d+/$\"\n\n"
        );
    }
    std::fs::write(dir.join("sources/site.toml"), text).unwrap();
    Arc::new(Config::load(&dir.join("bantin.toml")).unwrap())
}

/// Polls `cond` until it holds; fails the test after a generous limit.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let limit = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < limit, "gave up waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs per source id.
#[derive(Clone, Default)]
struct Counter(Arc<Mutex<HashMap<String, usize>>>);

impl Counter {
    fn hit(&self, id: &SourceId) {
        *self.0.lock().unwrap().entry(id.to_string()).or_default() += 1;
    }
    fn get(&self, id: &str) -> usize {
        self.0.lock().unwrap().get(id).copied().unwrap_or(0)
    }
}

fn start(
    scheduler: &Scheduler,
    config: watch::Receiver<Arc<Config>>,
    run: impl Fn(
        bantin::config::Source,
    ) -> futures_util::future::BoxFuture<'static, Result<bool, String>>
    + Send
    + Sync
    + 'static,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let scheduler = scheduler.clone();
    let token = shutdown.clone();
    let task = tokio::spawn(async move { scheduler.run(config, run, token).await });
    (shutdown, task)
}

fn counting(
    counter: &Counter,
) -> impl Fn(bantin::config::Source) -> futures_util::future::BoxFuture<'static, Result<bool, String>>
+ Send
+ Sync
+ 'static {
    let counter = counter.clone();
    move |source| {
        counter.hit(&source.id);
        Box::pin(async { Ok(true) })
    }
}

#[tokio::test]
async fn every_source_runs_on_its_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = watch::channel(config(
        dir.path(),
        &[("a", EVERY_SECOND), ("b", EVERY_SECOND)],
    ));
    let scheduler = Scheduler::default();
    let counter = Counter::default();
    let (shutdown, task) = start(&scheduler, rx, counting(&counter));

    wait_until("both sources ran twice", || {
        counter.get("a") >= 2 && counter.get("b") >= 2
    })
    .await;
    let status = scheduler.source_status(&"a".into()).unwrap();
    assert_eq!(status.schedule, EVERY_SECOND);
    assert!(status.runs >= 2 && status.runs_failed == 0);
    assert!(status.last_success.is_some() && status.last_changed);
    assert!(status.next_run.is_some());

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn slow_run_skips_overlapping_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = watch::channel(config(dir.path(), &[("slow", EVERY_SECOND)]));
    let scheduler = Scheduler::default();
    let running = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let (r, m) = (running.clone(), most_at_once.clone());
    let (shutdown, task) = start(&scheduler, rx, move |_| {
        let (r, m) = (r.clone(), m.clone());
        Box::pin(async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2500)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            Ok(false)
        })
    });

    let id: SourceId = "slow".into();
    wait_until("two runs finished", || {
        scheduler.source_status(&id).is_some_and(|s| s.runs >= 2)
    })
    .await;
    let status = scheduler.source_status(&id).unwrap();
    assert!(status.ticks_skipped >= 2, "{status:?}");
    assert_eq!(most_at_once.load(Ordering::SeqCst), 1);

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn failing_source_backs_off_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // backoff_base 1s, backoff_cap 2s: waits of at least 1s, 2s, 2s after failures 1-3.
    let (_tx, rx) = watch::channel(config(dir.path(), &[("flaky", EVERY_SECOND)]));
    let scheduler = Scheduler::default();
    let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let s = starts.clone();
    let (shutdown, task) = start(&scheduler, rx, move |_| {
        let mut starts = s.lock().unwrap();
        starts.push(Instant::now());
        let result = if starts.len() <= 3 {
            Err(format!("failure {}", starts.len()))
        } else {
            Ok(true)
        };
        Box::pin(async move { result })
    });

    let id: SourceId = "flaky".into();
    wait_until("the third failure is recorded", || {
        scheduler
            .source_status(&id)
            .is_some_and(|s| s.failures == 3)
    })
    .await;
    let failing = scheduler.source_status(&id).unwrap();
    assert_eq!(failing.last_error.as_deref(), Some("failure 3"));

    wait_until("five runs", || starts.lock().unwrap().len() >= 5).await;
    let starts = starts.lock().unwrap().clone();
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    let slack = Duration::from_millis(50);
    for (gap, backoff) in gaps.iter().zip([1, 2, 2]) {
        assert!(
            *gap + slack >= Duration::from_secs(backoff),
            "gaps {gaps:?}"
        );
    }
    wait_until("the recovery is recorded", || {
        scheduler.source_status(&id).is_some_and(|s| s.runs >= 5)
    })
    .await;
    let recovered = scheduler.source_status(&id).unwrap();
    assert_eq!(recovered.failures, 0);
    assert_eq!(recovered.last_error, None);
    assert_eq!(recovered.backoff, None);
    assert_eq!(recovered.runs_failed, 3);

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn config_change_removes_adds_and_reschedules_sources() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = watch::channel(config(
        dir.path(),
        &[("a", EVERY_SECOND), ("b", EVERY_SECOND)],
    ));
    let scheduler = Scheduler::default();
    let counter = Counter::default();
    let (shutdown, task) = start(&scheduler, rx, counting(&counter));
    wait_until("both sources ran", || {
        counter.get("a") >= 1 && counter.get("b") >= 1
    })
    .await;

    // b removed, c added, a moved to once a year.
    tx.send_replace(config(
        dir.path(),
        &[("a", "0 0 0 1 1 *"), ("c", EVERY_SECOND)],
    ));
    wait_until("the new source ran", || counter.get("c") >= 1).await;
    let (a_runs, b_runs) = (counter.get("a"), counter.get("b"));
    wait_until("the new source ran twice more", || counter.get("c") >= 3).await;
    assert_eq!(counter.get("b"), b_runs, "a removed source ran");
    assert_eq!(
        counter.get("a"),
        a_runs,
        "a rescheduled source kept its old schedule"
    );

    let status = scheduler.status();
    assert!(!status.contains_key(&SourceId::from("b")));
    let a = &status[&SourceId::from("a")];
    assert_eq!(a.schedule, "0 0 0 1 1 *");
    let next = a.next_run.expect("a yearly schedule has a next run");
    assert!(
        next > chrono::Utc::now() + chrono::Duration::days(1),
        "{next}"
    );

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn shutdown_waits_for_runs_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = watch::channel(config(dir.path(), &[("a", EVERY_SECOND)]));
    let scheduler = Scheduler::default();
    let started = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let (s, f) = (started.clone(), finished.clone());
    let (shutdown, task) = start(&scheduler, rx, move |_| {
        let (s, f) = (s.clone(), f.clone());
        Box::pin(async move {
            s.store(true, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            f.store(true, Ordering::SeqCst);
            Ok(true)
        })
    });
    wait_until("a run started", || started.load(Ordering::SeqCst)).await;
    shutdown.cancel();
    task.await.unwrap();
    assert!(
        finished.load(Ordering::SeqCst),
        "shutdown returned before the run finished"
    );
}

#[tokio::test]
async fn shutdown_gives_up_on_runs_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = watch::channel(config(dir.path(), &[("stuck", EVERY_SECOND)]));
    let scheduler = Scheduler::new(ScheduleOptions {
        shutdown_deadline: Duration::from_millis(200),
        ..ScheduleOptions::default()
    });
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let (shutdown, task) = start(&scheduler, rx, move |_| {
        s.store(true, Ordering::SeqCst);
        Box::pin(std::future::pending())
    });
    wait_until("a run started", || started.load(Ordering::SeqCst)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("shutdown waited past its deadline")
        .unwrap();
}
