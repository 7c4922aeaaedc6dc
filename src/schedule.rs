//! The scheduler: runs every source on its own cron schedule, in the source's time zone,
//! with a small random jitter; never two runs of one source at once; failed sources
//! back off exponentially up to a cap and recover on their own. It follows the live
//! configuration (sources added, removed or rescheduled take effect at once, runs in
//! flight are never dropped) and stops on the shutdown token, waiting for runs in
//! flight up to a deadline.
//!
//! What a run does is not this module's business: the caller hands in a closure. The
//! scheduler only decides *when*, and keeps a [`SourceStatus`] per source for the index
//! page and `/metrics`. With a store ([`Scheduler::with_store`]) it starts each source
//! from the stored failures, last run and next due time, stores every next due time it
//! sets, so a restart keeps a failing source backing off, and puts a source off while
//! a site's stored `Retry-After` holds back all of its start URLs. With a store it is
//! also one worker among the processes sharing that store: a due tick runs only under a
//! lease claimed in the store (`claims`), and a tick another worker ran is skipped. A
//! run asked for by hand ([`Scheduler::run_now`]) takes the same lease.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::{Config, Source};
use crate::fetch::politeness::host_key;
use crate::model::{HeldBack, SourceId, SourceSchedule};
use crate::store::Store;

mod claims;
mod process;

pub use claims::Worker;
use claims::{Acquired, Claims};

/// Largest random delay added to a tick (it is also never more than a tenth of the
/// source's interval).
pub const DEFAULT_MAX_JITTER: Duration = Duration::from_secs(10);
/// How long shutdown waits for runs in flight before giving up on them.
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// Knobs of the scheduler; the defaults suit the daemon.
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    /// Largest random delay added to a tick.
    pub max_jitter: Duration,
    /// How long shutdown waits for runs in flight.
    pub shutdown_deadline: Duration,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        Self {
            max_jitter: DEFAULT_MAX_JITTER,
            shutdown_deadline: DEFAULT_SHUTDOWN_DEADLINE,
        }
    }
}

/// What the scheduler knows about one source, for the index page and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceStatus {
    /// The cron schedule as written.
    pub schedule: String,
    /// When the next run is due (jitter and backoff included); `None` while the
    /// schedule has no future tick.
    pub next_run: Option<DateTime<Utc>>,
    pub last_started: Option<DateTime<Utc>>,
    pub last_finished: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    /// Whether the last successful run changed anything.
    pub last_changed: bool,
    /// A run is in flight.
    pub running: bool,
    /// Failed runs in a row.
    pub failures: u32,
    /// The current backoff after failures, if any.
    pub backoff: Option<Duration>,
    /// The last failure's message; cleared by a successful run.
    pub last_error: Option<String>,
    /// Runs finished, successful or not.
    pub runs: u64,
    pub runs_failed: u64,
    /// Ticks skipped because the previous run was still in flight.
    pub ticks_skipped: u64,
}

/// Runs sources on their schedules and keeps their [`SourceStatus`]. Cheap to clone:
/// clones share the status table.
#[derive(Clone, Default)]
pub struct Scheduler {
    options: ScheduleOptions,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Where the schedule state outlives the process; none in tests of timing alone.
    store: Option<Arc<dyn Store>>,
    /// This worker's leases in the store (with a store).
    claims: Option<Arc<Claims>>,
    status: Mutex<BTreeMap<SourceId, SourceStatus>>,
    /// Sources with a run in flight. Kept apart from `status` so a source removed and
    /// added again while its old run is still going cannot start a second run.
    in_flight: Mutex<HashSet<SourceId>>,
}

impl Shared {
    fn status(&self) -> MutexGuard<'_, BTreeMap<SourceId, SourceStatus>> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn in_flight(&self) -> MutexGuard<'_, HashSet<SourceId>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, id: &SourceId, f: impl FnOnce(&mut SourceStatus)) {
        if let Some(status) = self.status().get_mut(id) {
            f(status);
        }
    }
}

/// Runs `run_source` for each source of the live configuration when its schedule fires,
/// until `shutdown` is cancelled. A shorthand for [`Scheduler::run`] with default options
/// when nobody needs to see the sources' status.
pub async fn run_schedule<F, Fut>(
    config: watch::Receiver<Arc<Config>>,
    run_source: F,
    shutdown: CancellationToken,
) where
    F: Fn(Source) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<bool, String>> + Send + 'static,
{
    Scheduler::default().run(config, run_source, shutdown).await
}

/// What a source's driver needs to know; replaced when the configuration changes.
#[derive(Clone)]
struct Plan {
    source: Source,
    backoff_base: Duration,
    backoff_cap: Duration,
}

/// The task that runs one source on its schedule, and how to reach it.
struct Driver {
    plan: watch::Sender<Plan>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Scheduler {
    pub fn new(options: ScheduleOptions) -> Self {
        Self {
            options,
            shared: Arc::default(),
        }
    }

    /// A scheduler that keeps each source's next due time and backoff in `store` and
    /// starts from what is stored there, and runs a source only while `worker` holds a
    /// lease on it in the store, so that several workers on one database share the
    /// sources.
    pub fn with_store(options: ScheduleOptions, store: Arc<dyn Store>, worker: Worker) -> Self {
        Self {
            options,
            shared: Arc::new(Shared {
                claims: Some(Claims::new(worker, store.clone())),
                store: Some(store),
                ..Shared::default()
            }),
        }
    }

    /// This worker's id, with a store.
    pub fn worker_id(&self) -> Option<&str> {
        self.shared.claims.as_deref().map(Claims::worker_id)
    }

    /// Leases this worker holds now, and leases it lost to other workers since it
    /// started.
    pub fn lease_counts(&self) -> (usize, u64) {
        self.shared
            .claims
            .as_deref()
            .map_or((0, 0), |c| (c.held_count(), c.lost_count()))
    }

    /// Every configured source's status, by id.
    pub fn status(&self) -> BTreeMap<SourceId, SourceStatus> {
        self.shared.status().clone()
    }

    /// One source's status.
    pub fn source_status(&self, id: &SourceId) -> Option<SourceStatus> {
        self.shared.status().get(id).cloned()
    }

    /// Runs `run_source` for each source of the live configuration when its schedule
    /// fires, until `shutdown` is cancelled; then waits for runs in flight up to the
    /// shutdown deadline and returns. `run_source` answers whether the run changed
    /// anything, or why it failed.
    pub async fn run<F, Fut>(
        &self,
        mut config: watch::Receiver<Arc<Config>>,
        run_source: F,
        shutdown: CancellationToken,
    ) where
        F: Fn(Source) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<bool, String>> + Send + 'static,
    {
        let run_source: Arc<RunFn> = Arc::new(move |source| Box::pin(run_source(source)));
        let runs = TaskTracker::new();
        if let Some(claims) = &self.shared.claims {
            claims.start().await;
        }
        let mut drivers: HashMap<SourceId, Driver> = HashMap::new();
        loop {
            let current = config.borrow_and_update().clone();
            self.apply(&current, &mut drivers, &run_source, &runs);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = config.changed() => {
                    if changed.is_err() {
                        // Nobody can send a new configuration: keep this one to the end.
                        shutdown.cancelled().await;
                        break;
                    }
                }
            }
        }

        for driver in drivers.values() {
            driver.stop.cancel();
        }
        for (_, driver) in drivers {
            let _ = driver.task.await;
        }
        runs.close();
        let in_flight = runs.len();
        if in_flight > 0 {
            info!(runs = in_flight, "waiting for runs in flight");
        }
        if tokio::time::timeout(self.options.shutdown_deadline, runs.wait())
            .await
            .is_err()
        {
            warn!(
                runs = runs.len(),
                deadline_ms = self.options.shutdown_deadline.as_millis() as u64,
                "runs still in flight at the shutdown deadline; not waiting longer"
            );
        }
        if let Some(claims) = &self.shared.claims {
            claims.close();
        }
    }

    /// Runs `run` for `source` now, outside its schedule (`bantin crawl`, `bantin run
    /// --once`), the way a due tick runs: with a store, under a lease on the source and
    /// the hosts of its start URLs, renewed while it lasts and released after, so that
    /// it never overlaps another worker's run. While another worker holds them it waits,
    /// at most one lease (a holder that died is past its lease by then), and then gives
    /// up: that worker is running the source.
    pub async fn run_now<T>(
        &self,
        source: &Source,
        run: impl Future<Output = T>,
        stop: &CancellationToken,
    ) -> Result<T, NotRun> {
        let Some(claims) = &self.shared.claims else {
            return Ok(run.await);
        };
        claims.start().await;
        let patience = claims.lease() + claims.lease() / 3;
        under_lease(
            claims,
            source,
            None,
            Some(patience),
            stop,
            |lost| async move {
                tokio::select! {
                    out = run => Some(out),
                    _ = lost.cancelled() => None,
                }
            },
        )
        .await
    }

    /// Brings the drivers in line with a configuration: stops removed sources, starts
    /// new ones and hands changed ones their new plan.
    fn apply(
        &self,
        config: &Config,
        drivers: &mut HashMap<SourceId, Driver>,
        run_source: &Arc<RunFn>,
        runs: &TaskTracker,
    ) {
        let fetch = &config.settings.fetch;
        let wanted: HashSet<&SourceId> = config.sources.iter().map(|s| &s.id).collect();
        drivers.retain(|id, driver| {
            let keep = wanted.contains(id);
            if !keep {
                info!(source = %id, "source removed; no further runs");
                driver.stop.cancel();
                self.shared.status().remove(id);
            }
            keep
        });
        for source in &config.sources {
            let plan = Plan {
                source: source.clone(),
                backoff_base: fetch.backoff_base,
                backoff_cap: fetch.backoff_cap,
            };
            self.shared
                .status()
                .entry(source.id.clone())
                .or_default()
                .schedule = source.schedule_text.clone();
            match drivers.get(&source.id) {
                Some(driver) => {
                    driver.plan.send_replace(plan);
                }
                None => {
                    debug!(source = %source.id, schedule = %source.schedule_text, "source scheduled");
                    let (tx, rx) = watch::channel(plan);
                    let stop = CancellationToken::new();
                    let task = tokio::spawn(drive(
                        self.options.clone(),
                        self.shared.clone(),
                        rx,
                        run_source.clone(),
                        runs.clone(),
                        stop.clone(),
                    ));
                    drivers.insert(
                        source.id.clone(),
                        Driver {
                            plan: tx,
                            stop,
                            task,
                        },
                    );
                }
            }
        }
    }
}

type RunFuture = std::pin::Pin<Box<dyn Future<Output = Result<bool, String>> + Send>>;
type RunFn = dyn Fn(Source) -> RunFuture + Send + Sync;

/// One source's loop: sleep until the next due tick, start a run unless one is in
/// flight, repeat; wake early when the plan changes or a run finishes.
async fn drive(
    options: ScheduleOptions,
    shared: Arc<Shared>,
    mut plan: watch::Receiver<Plan>,
    run_source: Arc<RunFn>,
    runs: TaskTracker,
    stop: CancellationToken,
) {
    let finished = Arc::new(Notify::new());
    // The last tick that fired; the next one must come after it even if the wall clock
    // reads a little earlier than the timer that woke us.
    let mut last_tick: Option<DateTime<Utc>> = None;
    // A backoff an earlier process set holds until the first run here.
    let first_id = plan.borrow().source.id.clone();
    let mut backoff_end = follow_store(&shared, &first_id).await;
    let mut saved: Option<Due> = None;
    loop {
        let current = plan.borrow_and_update().clone();
        let id = current.source.id.clone();
        follow_store(&shared, &id).await;
        let (failures, last_finished) = shared
            .status()
            .get(&id)
            .map(|s| (s.failures, s.last_finished))
            .unwrap_or_default();
        let now = last_tick.map_or_else(Utc::now, |t| t.max(Utc::now()));
        let retry_after = held_until(&current.source, &stored_hold_backs(&shared).await);
        let due = next_due(&current, failures, last_finished, now, options.max_jitter)
            .map(|due| due.not_before(backoff_end.max(retry_after), &current));
        shared.update(&id, |s| {
            s.next_run = due.map(|d| d.at);
            s.backoff = due.and_then(|d| d.backoff);
        });
        if due != saved
            && let Some(due) = due
        {
            save_due(&shared, &id, due).await;
            saved = Some(due);
        }
        let sleep = async {
            match due {
                Some(due) => {
                    let wait = (due.at - Utc::now()).to_std().unwrap_or_default();
                    tokio::time::sleep(wait).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = plan.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            _ = finished.notified() => continue,
            _ = sleep => {}
        }
        let Some(due) = due else { continue };
        last_tick = Some(due.at);

        if !shared.in_flight().insert(id.clone()) {
            warn!(source = %id, schedule = %current.source.schedule_text,
                "previous run still in flight; tick skipped");
            shared.update(&id, |s| s.ticks_skipped += 1);
            continue;
        }
        backoff_end = None;
        let turn = Turn {
            shared: shared.clone(),
            source: current.source.clone(),
            tick: due.tick,
            finished: finished.clone(),
        };
        runs.spawn(turn.take(run_source.clone(), stop.clone()));
    }
}

/// Why a run asked for by hand ([`Scheduler::run_now`]) did not happen, or not to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRun {
    /// Another worker held the source, or a host of its start URLs, for the whole wait:
    /// it runs that source (or another of the host) now.
    Held {
        worker: String,
        until: DateTime<Utc>,
    },
    /// Another worker took the lease over (this one renewed too late): the run stopped.
    Lost,
    /// Stopped while waiting.
    Stopped,
}

impl std::fmt::Display for NotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotRun::Held { worker, until } => write!(
                f,
                "worker {worker} holds it (it runs it, or a source of the same host; lease until {})",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            NotRun::Lost => f.write_str("another worker took its lease over; the run stopped"),
            NotRun::Stopped => f.write_str("stopped before it could start"),
        }
    }
}

/// The one way a source runs with a store: claimed (for a due `tick`, or by hand), run
/// while the lease holds (`run` is told when it is lost, and answers `None` when it
/// stopped for that), then released; the tick is done only when the run finished.
async fn under_lease<T, Fut>(
    claims: &Claims,
    source: &Source,
    tick: Option<DateTime<Utc>>,
    patience: Option<Duration>,
    stop: &CancellationToken,
    run: impl FnOnce(CancellationToken) -> Fut,
) -> Result<T, NotRun>
where
    Fut: Future<Output = Option<T>>,
{
    let lease = match claims.acquire(source, tick, patience, stop).await {
        Acquired::Run(lease) => lease,
        Acquired::Busy { worker, until } => return Err(NotRun::Held { worker, until }),
        Acquired::Done | Acquired::Stopped => return Err(NotRun::Stopped),
    };
    let out = run(lease.lost.clone()).await;
    claims.release(lease, out.is_some()).await;
    out.ok_or(NotRun::Lost)
}

/// One due tick of one source: claimed, run, recorded, released.
struct Turn {
    shared: Arc<Shared>,
    source: Source,
    tick: DateTime<Utc>,
    /// Told when the turn is over, so the source's loop plans the next one.
    finished: Arc<Notify>,
}

impl Turn {
    /// Claims the tick (with a store), runs the source unless another worker ran the
    /// tick, and gives the claim back.
    async fn take(self, run_source: Arc<RunFn>, stop: CancellationToken) {
        match &self.shared.claims {
            None => {
                self.run(run_source, CancellationToken::new()).await;
            }
            Some(claims) => {
                let tick = Some(self.tick);
                // Done elsewhere, stopped or lost: nothing more to do for this tick.
                let _ = under_lease(claims, &self.source, tick, None, &stop, |lost| async {
                    self.run(run_source, lost).await.then_some(())
                })
                .await;
            }
        }
        self.end();
    }

    fn end(&self) {
        self.shared.in_flight().remove(&self.source.id);
        self.finished.notify_one();
    }

    /// Runs the source and records the result in its status; false when the run was
    /// stopped because another worker took its lease.
    async fn run(&self, run_source: Arc<RunFn>, lost: CancellationToken) -> bool {
        let (shared, id) = (&self.shared, &self.source.id);
        let started = Utc::now();
        shared.update(id, |s| {
            s.running = true;
            s.last_started = Some(started);
        });
        debug!(source = %id, "run starting");
        let mut run = tokio::spawn(run_source(self.source.clone()));
        // A run that panics must not leave the source marked as running forever.
        let result = tokio::select! {
            joined = &mut run => joined.unwrap_or_else(|err| Err(format!("run panicked: {err}"))),
            _ = lost.cancelled() => {
                run.abort();
                shared.update(id, |s| s.running = false);
                return false;
            }
        };
        let now = Utc::now();
        let elapsed_ms = (now - started).num_milliseconds();
        shared.update(id, |s| record_run(s, id, &result, now, elapsed_ms));
        if let Ok(changed) = result {
            debug!(source = %id, changed, elapsed_ms, "run finished");
        }
        true
    }
}

/// A finished run's result in its source's status.
fn record_run(
    s: &mut SourceStatus,
    id: &SourceId,
    result: &Result<bool, String>,
    now: DateTime<Utc>,
    elapsed_ms: i64,
) {
    s.running = false;
    s.last_finished = Some(now);
    s.runs += 1;
    match result {
        Ok(changed) => {
            if s.failures > 0 {
                info!(source = %id, failures = s.failures, "source recovered");
            }
            s.failures = 0;
            s.last_error = None;
            s.last_success = Some(now);
            s.last_changed = *changed;
        }
        Err(error) => {
            s.failures += 1;
            s.runs_failed += 1;
            s.last_error = Some(error.clone());
            warn!(source = %id, failures = s.failures, elapsed_ms, %error,
                "source run failed; backing off");
        }
    }
}

/// When a source is next due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Due {
    at: DateTime<Utc>,
    /// The schedule's tick `at` is for (before jitter): every worker computes the same
    /// one, so a tick one of them ran is not run again by another.
    tick: DateTime<Utc>,
    /// The backoff that pushed the run back, if the source is failing.
    backoff: Option<Duration>,
}

impl Due {
    /// This due time, or the first tick at or after `until` (a stored backoff's end, a
    /// site's `Retry-After`) when that is later.
    fn not_before(self, until: Option<DateTime<Utc>>, plan: &Plan) -> Due {
        let Some(until) = until.filter(|until| *until > self.at) else {
            return self;
        };
        let source = &plan.source;
        let from = until - chrono::Duration::milliseconds(1);
        let at = source
            .schedule
            .after(&from.with_timezone(&source.timezone))
            .next()
            .map_or(until, |t| t.with_timezone(&Utc));
        Due {
            at,
            tick: at,
            ..self
        }
    }
}

/// When every start URL of `source` is held back by a site's `Retry-After` (per URL or
/// per host), the first time one of them is free: until then a run could fetch nothing.
fn held_until(source: &Source, held: &[HeldBack]) -> Option<DateTime<Utc>> {
    source
        .urls
        .iter()
        .map(|url| {
            let keys = [url.as_str().to_owned(), host_key(url)];
            held.iter()
                .filter(|h| keys.contains(&h.key))
                .map(|h| h.until)
                .max()
        })
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min()
}

/// The `Retry-After` hold-backs in the store (none without a store).
async fn stored_hold_backs(shared: &Arc<Shared>) -> Vec<HeldBack> {
    let Some(store) = &shared.store else {
        return Vec::new();
    };
    in_store(store, |store| store.held_back())
        .await
        .unwrap_or_else(|error| {
            warn!(%error, "cannot read the stored Retry-After hold-backs");
            Vec::new()
        })
}

/// Takes a source's failures in a row and its last run's end from the store when a
/// run there finished later than any here (so the backoff goes on where it was): after
/// a restart, or when another worker ran the source. Returns the stored next due time
/// when the source was backing off.
async fn follow_store(shared: &Arc<Shared>, id: &SourceId) -> Option<DateTime<Utc>> {
    let store = shared.store.as_ref()?;
    let source = id.clone();
    let stored: SourceSchedule = in_store(store, move |store| store.source_schedule(&source))
        .await
        .map_err(|error| warn!(source = %id, %error, "cannot read the stored schedule"))
        .ok()?;
    shared.update(id, |s| {
        if stored.last_finished > s.last_finished {
            s.failures = stored.failures;
            s.last_finished = stored.last_finished;
        }
    });
    stored.next_due.filter(|_| stored.backoff.is_some())
}

/// Stores when a source is due next, so that a restart keeps to it.
async fn save_due(shared: &Arc<Shared>, id: &SourceId, due: Due) {
    let Some(store) = &shared.store else {
        return;
    };
    let source = id.clone();
    let saved = in_store(store, move |store| {
        store.save_next_due(&source, due.at, due.backoff)
    })
    .await;
    if let Err(error) = saved {
        warn!(source = %id, %error, "cannot store the next due time");
    }
}

/// Runs a store call on a blocking thread; an error comes back as its message.
async fn in_store<T: Send + 'static>(
    store: &Arc<dyn Store>,
    call: impl FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || call(store.as_ref())).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(err)) => Err(crate::error_chain(&err)),
        Err(err) => Err(format!("store call panicked: {err}")),
    }
}

/// The next tick of the source's schedule after `now` (and, when it is failing, after
/// the backoff since its last run), plus jitter.
fn next_due(
    plan: &Plan,
    failures: u32,
    last_finished: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    max_jitter: Duration,
) -> Option<Due> {
    let source = &plan.source;
    let interval = interval_after(&source.schedule, source.timezone, now)?;
    let backoff = (failures > 0).then(|| {
        // The first retry waits at least one interval; a source on a 15-minute schedule
        // then skips 1, 3, 7, ... ticks rather than retrying every few seconds.
        backoff_delay(failures, plan.backoff_base.max(interval), plan.backoff_cap)
    });
    let not_before = match (backoff, last_finished) {
        (Some(delay), Some(finished)) => (finished
            + chrono::Duration::from_std(delay).unwrap_or(chrono::TimeDelta::MAX))
        .max(now),
        _ => now,
    };
    // A tick exactly at the end of the backoff counts.
    let from = not_before - chrono::Duration::milliseconds(1);
    let tick = source
        .schedule
        .after(&from.with_timezone(&source.timezone))
        .find(|t| t.with_timezone(&Utc) > now)?
        .with_timezone(&Utc);
    let jitter = random_jitter(max_jitter.min(interval / 10));
    Some(Due {
        at: tick + chrono::Duration::from_std(jitter).unwrap_or_default(),
        tick,
        backoff,
    })
}

/// The time between the schedule's next two ticks after `now`.
fn interval_after(
    schedule: &cron::Schedule,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let mut ticks = schedule.after(&now.with_timezone(&tz));
    let first = ticks.next()?;
    let second = ticks.next()?;
    (second - first).to_std().ok()
}

/// The backoff after `failures` failed runs in a row: `base`, doubled for each further
/// failure, at most `cap`.
pub fn backoff_delay(failures: u32, base: Duration, cap: Duration) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 2u32.saturating_pow(failures - 1);
    base.checked_mul(factor).unwrap_or(cap).min(cap)
}

fn random_jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random_range(0..=max.as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn fixture_plan() -> Plan {
        let config = Config::load(std::path::Path::new(
            "tests/fixtures/config/valid/bantin.toml",
        ))
        .expect("the fixture config is valid");
        Plan {
            source: config.sources[0].clone(),
            backoff_base: SEC,
            backoff_cap: 60 * SEC,
        }
    }

    #[test]
    fn a_source_is_held_back_only_while_every_start_url_is() {
        let mut source = fixture_plan().source;
        let list = url::Url::parse("http://127.0.0.1:8080/list/").unwrap();
        let other = url::Url::parse("http://127.0.0.1:9090/list/").unwrap();
        let soon = Utc::now() + chrono::Duration::minutes(5);
        let later = soon + chrono::Duration::minutes(5);
        let held = |key: &str, until| HeldBack {
            key: key.into(),
            until,
        };
        source.urls = vec![list.clone()];
        assert_eq!(held_until(&source, &[]), None);
        assert_eq!(
            held_until(&source, &[held("127.0.0.1:8080", soon)]),
            Some(soon),
            "held by its host"
        );
        assert_eq!(
            held_until(
                &source,
                &[held(list.as_str(), soon), held("127.0.0.1:8080", later)]
            ),
            Some(later),
            "the later of its URL's and its host's"
        );
        source.urls = vec![list, other.clone()];
        assert_eq!(
            held_until(&source, &[held("127.0.0.1:8080", soon)]),
            None,
            "another start URL can still be read"
        );
        assert_eq!(
            held_until(
                &source,
                &[held("127.0.0.1:8080", later), held(other.as_str(), soon)]
            ),
            Some(soon),
            "free as soon as one is"
        );
    }

    #[test]
    fn a_hold_puts_the_next_run_on_the_first_tick_after_it() {
        // The fixture source runs every 20 minutes.
        let plan = fixture_plan();
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let due = Due {
            at: at("2024-05-01T10:20:00Z"),
            tick: at("2024-05-01T10:20:00Z"),
            backoff: Some(3600 * SEC),
        };
        let hold = Some(at("2024-05-01T11:05:00Z"));
        assert_eq!(
            due.not_before(hold, &plan),
            Due {
                at: at("2024-05-01T11:20:00Z"),
                tick: at("2024-05-01T11:20:00Z"),
                backoff: Some(3600 * SEC),
            }
        );
        let passed = Some(at("2024-05-01T10:00:00Z"));
        assert_eq!(
            due.not_before(passed, &plan),
            due,
            "a passed hold changes nothing"
        );
        assert_eq!(due.not_before(None, &plan), due);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cap = Duration::from_secs(60);
        let delays: Vec<u64> = (0..9)
            .map(|n| backoff_delay(n, 2 * SEC, cap).as_secs())
            .collect();
        assert_eq!(delays, [0, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff_delay(u32::MAX, 2 * SEC, cap), cap);
    }

    #[test]
    fn interval_of_five_and_six_field_schedules() {
        let now = Utc::now();
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        let every_15_min: cron::Schedule = "0 */15 * * * *".parse().unwrap();
        let every_second: cron::Schedule = "* * * * * *".parse().unwrap();
        assert_eq!(
            interval_after(&every_15_min, tz, now),
            Some(Duration::from_secs(900))
        );
        assert_eq!(interval_after(&every_second, tz, now), Some(SEC));
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        for _ in 0..100 {
            assert!(random_jitter(Duration::from_millis(100)) <= Duration::from_millis(100));
        }
        assert_eq!(random_jitter(Duration::ZERO), Duration::ZERO);
    }
}
