//! The long-running service: the scheduler, live configuration, the publisher and the
//! HTTP server in one process, and the one-pass crawl that `bantin crawl` and
//! `bantin run --once` use. What a source run does lives in `pipeline`; this module only
//! wires the parts together and shuts them down in order.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{Config, Source};
use crate::fetch::{FetchError, Fetcher};
use crate::metrics::Metrics;
use crate::model::{HeldBack, SourceId, SourceRun};
use crate::pipeline::{Pipeline, RunProgress};
use crate::publish::{self, PublishError, PublishReport};
use crate::reload::{self, ReloadError};
use crate::schedule::{NotRun, ScheduleOptions, Scheduler, Worker};
use crate::serve::caching::PublishedCache;
use crate::serve::{self, AppState};
use crate::store::{Store, StoreError};

/// How long shutdown waits, after the last publish, for the server's open requests;
/// the server stopped accepting at the signal, so they have had the whole shutdown.
const SERVER_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);
/// Shortest time between the starts of two publishes in the daemon. Changes that
/// arrive meanwhile (a burst of source runs, a reload) are published together once it
/// has passed.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(2);
/// How long runs may take past `shutdown_timeout` (when requests in flight are dropped)
/// to store what they fetched.
const STORE_GRACE: Duration = Duration::from_secs(3);
/// How long shutdown waits for the last publish.
const PUBLISH_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// Why the service could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot open the store")]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client")]
    Fetcher(#[from] FetchError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start live configuration reload")]
    Reload(#[from] ReloadError),
    #[error("cannot publish the feeds")]
    Publish(#[from] PublishError),
    #[error("a background task stopped unexpectedly")]
    TaskPanicked,
    #[error("cannot write the demo configuration into {dir}")]
    Demo {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the demo configuration is invalid: {0}")]
    DemoConfig(String),
}

/// The parts every command that crawls or serves shares.
#[derive(Clone)]
pub struct Service {
    pub pipeline: Pipeline,
    /// The published documents as the server answers them from memory; every publish
    /// through this service refreshes it.
    pub published: Arc<PublishedCache>,
    /// This process as a worker of the store: every source run, scheduled or asked for
    /// by hand, goes through its leases.
    pub scheduler: Scheduler,
}

/// A one-pass crawl's sources: those run here, and those another worker held.
#[derive(Debug, Default)]
pub struct CrawlPass {
    pub runs: Vec<(SourceId, SourceRun)>,
    /// Sources not run here: another worker held each (it was running it) for the
    /// whole wait.
    pub held: Vec<(SourceId, NotRun)>,
}

impl Service {
    /// Opens the store and builds the HTTP client for `config`.
    pub fn open(config: &Config) -> Result<Service, DaemonError> {
        let store = crate::store::open(
            &config.settings.database,
            config.settings.near_duplicate_distance,
        )?;
        let fetcher = Fetcher::new(&config.settings)?;
        // A host that asked to wait is still waited for after a restart, or a kill.
        fetcher.keep_held_back(store.held_back()?, {
            let store = store.clone();
            move |held| keep_held_back(&store, held)
        });
        let scheduler = Scheduler::with_store(
            ScheduleOptions {
                shutdown_deadline: config.settings.shutdown_timeout + STORE_GRACE,
                ..ScheduleOptions::default()
            },
            store.clone(),
            Worker::new(config.settings.workers.lease, fetcher.clone()),
        );
        Ok(Service {
            pipeline: Pipeline {
                metrics: Arc::new(Metrics::with_fetch_counts(fetcher.counts())),
                fetcher,
                store,
            },
            published: Arc::default(),
            scheduler,
        })
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.pipeline.store.clone()
    }

    /// Re-renders every feed, prunes old items, and notifies the WebSub hub of the
    /// feeds that changed. The daemon publishes through its [`Publisher`] instead.
    pub async fn publish(&self, config: &Arc<Config>) -> Result<PublishReport, DaemonError> {
        let result = self.publish_now(config).await;
        self.pipeline
            .metrics
            .record_publish(result.is_ok(), chrono::Utc::now());
        result
    }

    async fn publish_now(&self, config: &Arc<Config>) -> Result<PublishReport, DaemonError> {
        let store = self.store();
        let cfg = config.clone();
        let report = tokio::task::spawn_blocking(move || {
            // The `all` feed is always kept by the store itself.
            let feeds: Vec<_> = cfg.categories.iter().map(|c| c.id.clone()).collect();
            let s = &cfg.settings;
            if let Err(err) =
                store.prune(s.retention_days, s.raw_page_days, s.items_per_feed, &feeds)
            {
                warn!(error = %err, "cannot prune old items");
            }
            publish::publish_all(&cfg, store.as_ref())
        })
        .await
        .map_err(|_| DaemonError::TaskPanicked)??;
        // The server in this process answers the new documents at once, not at its
        // next poll.
        if let Err(err) = self.published.refresh(&self.store()).await {
            warn!(error = %err, "cannot read the published feeds back; the server catches up at its next poll");
        }
        let fetcher = &self.pipeline.fetcher;
        if let Err(err) = publish::websub::notify_changes(fetcher, config, &report).await {
            warn!(error = %format!("{err:#}"), "WebSub hub not notified");
        }
        Ok(report)
    }

    /// Runs the given sources once, a few at a time (politeness per host is the
    /// fetcher's), reporting each finished run to `done`. A source another worker is
    /// running is left to it (see [`Service::crawl_reporting`]).
    pub async fn crawl(
        &self,
        config: &Arc<Config>,
        sources: Vec<Source>,
        done: impl Fn(&SourceId, &SourceRun),
    ) -> Vec<(SourceId, SourceRun)> {
        let stop = CancellationToken::new();
        self.crawl_reporting(config, sources, &|_, _, _| {}, done, &stop)
            .await
            .runs
    }

    /// [`Service::crawl`], telling `progress` how far each source's run has got. Each
    /// run holds the source's lease as a scheduled run does; a source another worker
    /// holds is waited for (at most a lease, or until `stop`), then left to that
    /// worker and listed in [`CrawlPass::held`].
    pub async fn crawl_reporting(
        &self,
        config: &Arc<Config>,
        sources: Vec<Source>,
        progress: &(dyn Fn(&SourceId, &SourceRun, RunProgress) + Sync),
        done: impl Fn(&SourceId, &SourceRun),
        stop: &CancellationToken,
    ) -> CrawlPass {
        use futures_util::StreamExt;
        let parallel = config.settings.fetch.global_concurrency.clamp(1, 8);
        let mut runs = futures_util::stream::iter(sources)
            .map(|source| {
                let pipeline = self.pipeline.clone();
                let config = config.clone();
                async move {
                    let report = |run: &SourceRun, at| progress(&source.id, run, at);
                    let run = pipeline.run_source_reporting(&config, &source, &report);
                    (
                        source.id.clone(),
                        self.scheduler.run_now(&source, run, stop).await,
                    )
                }
            })
            .buffer_unordered(parallel);
        let mut pass = CrawlPass::default();
        while let Some((id, run)) = runs.next().await {
            match run {
                Ok(run) => {
                    done(&id, &run);
                    pass.runs.push((id, run));
                }
                Err(not_run) => {
                    warn!(source = %id, reason = %not_run, "source not run here");
                    pass.held.push((id, not_run));
                }
            }
        }
        pass
    }
}

/// Stores a site's `Retry-After` off the async threads, without holding up the fetch
/// that met it.
fn keep_held_back(store: &Arc<dyn Store>, held: HeldBack) {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(err) = store.save_held_back(std::slice::from_ref(&held)) {
            warn!(error = %err, key = %held.key, "cannot store a Retry-After; a restart forgets it");
        }
    });
}

/// The daemon's one publishing task and the handle to ask it for a publish. Whoever
/// changes the feeds' content (a source run, a reload) calls [`Publisher::request`];
/// the task publishes with the live configuration at most once per
/// [`PUBLISH_INTERVAL`], never two publishes at once, and always after the last
/// request: a request that arrives during a publish gets a publish of its own.
#[derive(Clone)]
pub struct Publisher {
    shared: Arc<PublisherShared>,
    service: Service,
}

struct PublisherShared {
    /// Something changed since the last publish started.
    dirty: AtomicBool,
    wake: Notify,
}

impl Publisher {
    /// Starts the publishing task. It publishes with the newest configuration of
    /// `config`; when `stop` is cancelled it publishes what is still pending, without
    /// waiting out the interval, and ends. Cancel `stop` only once nothing will request
    /// a publish any more (after the scheduler has stopped).
    pub fn start(
        service: Service,
        config: watch::Receiver<Arc<Config>>,
        stop: CancellationToken,
    ) -> (Publisher, JoinHandle<()>) {
        let shared = Arc::new(PublisherShared {
            dirty: AtomicBool::new(false),
            wake: Notify::new(),
        });
        let task = tokio::spawn(publish_loop(service.clone(), config, shared.clone(), stop));
        (Publisher { shared, service }, task)
    }

    /// Marks the feeds out of date; the publishing task publishes them soon.
    pub fn request(&self) {
        self.service.pipeline.metrics.record_publish_request();
        // The flag is set before the wake-up, so the task never wakes to find nothing
        // to do and then misses this request; `notify_one` keeps the wake-up for a task
        // that is not waiting yet.
        self.shared.dirty.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }
}

/// The publishing task of [`Publisher::start`].
async fn publish_loop(
    service: Service,
    config: watch::Receiver<Arc<Config>>,
    shared: Arc<PublisherShared>,
    stop: CancellationToken,
) {
    let publish = || {
        let config = config.borrow().clone();
        let service = service.clone();
        async move {
            if let Err(err) = service.publish(&config).await {
                error!(error = %format!("{err:#}"), "publishing failed");
            }
        }
    };
    let mut last_start: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = shared.wake.notified() => {}
        }
        if let Some(last) = last_start {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(last + PUBLISH_INTERVAL) => {}
            }
        }
        // A wake-up can outlive its request: one that came while the last publish was
        // waiting out the interval was served by it.
        if !shared.dirty.swap(false, Ordering::SeqCst) {
            continue;
        }
        last_start = Some(Instant::now());
        publish().await;
    }
    if shared.dirty.swap(false, Ordering::SeqCst) {
        info!("publishing the last changes before stopping");
        publish().await;
    }
}

/// Options of `bantin run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run every source once, publish, then only serve.
    pub once: bool,
    /// Only serve (a serving tier): no crawling and no publishing; the feeds are those
    /// the crawling workers publish into the store.
    pub no_crawl: bool,
}

/// Connections the kernel holds for the server before it accepts them. A burst of
/// connections beyond it is dropped and retried by clients a second later, so it is
/// larger than the connection cap (the kernel lowers it to `somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the server's address early, so a busy port fails before any work is done.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, DaemonError> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    };
    socket
        .and_then(|socket| {
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(LISTEN_BACKLOG)
        })
        .map_err(|source| DaemonError::Bind { addr, source })
}

/// `bantin run`: scheduler, live reload and server until `shutdown` is cancelled, with
/// the store and the listening socket already open (the caller prints the address).
pub async fn run_with(
    service: Service,
    listener: TcpListener,
    config_path: &Path,
    config: Arc<Config>,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let addr = listener.local_addr().unwrap_or(config.settings.listen);
    let (config_rx, reload_task) =
        reload::watch_config(config_path, config.clone(), shutdown.clone())?;
    let live = Arc::new(ArcSwap::from(config.clone()));
    let shutdown_timeout = config.settings.shutdown_timeout;
    let scheduler = service.scheduler.clone();
    tokio::spawn(stop_fetching_on(
        shutdown.clone(),
        service.pipeline.fetcher.clone(),
        shutdown_timeout,
    ));
    let state = AppState::new(
        live.clone(),
        service.store(),
        service.pipeline.metrics.clone(),
    )
    .with_published(service.published.clone())
    .with_schedule(scheduler.clone());
    let server = tokio::spawn(serve::serve(listener, state, shutdown.clone()));
    info!(addr = %addr, base_url = %config.settings.base_url,
        worker = scheduler.worker_id().unwrap_or_default(), "bantin is running");
    if options.no_crawl {
        // A serving tier does not publish: publishing is the crawling workers' (they
        // know when the items changed), and the server follows their publishes.
        tokio::spawn(follow_config(None, config_rx, live, shutdown.clone()));
        shutdown.cancelled().await;
        return stop_serving(server, reload_task).await;
    }

    // The publisher outlives the scheduler: runs still in flight at shutdown may ask
    // for a publish, and that publish is the last thing done.
    let stop_publishing = CancellationToken::new();
    let (publisher, publishing) =
        Publisher::start(service.clone(), config_rx.clone(), stop_publishing.clone());
    publisher.request();
    tokio::spawn(follow_config(
        Some(publisher.clone()),
        config_rx.clone(),
        live,
        shutdown.clone(),
    ));

    if options.once {
        let changed = |_: &SourceId, run: &SourceRun| {
            if run.new + run.updated > 0 {
                publisher.request();
            }
        };
        let sources = config.sources.clone();
        service
            .crawl_reporting(&config, sources, &|_, _, _| {}, changed, &shutdown)
            .await;
        shutdown.cancelled().await;
    } else {
        let rx = config_rx.clone();
        let worker = service.clone();
        scheduler
            .run(
                config_rx,
                move |source| {
                    let (service, publisher) = (worker.clone(), publisher.clone());
                    let config = rx.borrow().clone();
                    async move {
                        let run = service.pipeline.run_source(&config, &source).await;
                        let changed = run.new + run.updated > 0;
                        if changed {
                            publisher.request();
                        }
                        if run.failed() {
                            Err(run
                                .failure
                                .map_or_else(|| "failed".into(), |f| f.to_string()))
                        } else {
                            Ok(changed)
                        }
                    }
                },
                shutdown.clone(),
            )
            .await;
    }

    stop_publishing.cancel();
    match tokio::time::timeout(PUBLISH_SHUTDOWN_DEADLINE, publishing).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => error!("the publishing task stopped unexpectedly"),
        Err(_) => warn!("the last publish did not finish in time; feeds may be behind"),
    }
    stop_serving(server, reload_task).await
}

/// Waits (with a deadline) for the server to finish its open requests, and for the
/// config watcher, once shutdown has begun.
async fn stop_serving(
    server: JoinHandle<std::io::Result<()>>,
    reload_task: JoinHandle<()>,
) -> Result<(), DaemonError> {
    match tokio::time::timeout(SERVER_SHUTDOWN_DEADLINE, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(err))) => error!(error = %err, "server stopped with an error"),
        Ok(Err(_)) => return Err(DaemonError::TaskPanicked),
        Err(_) => warn!("server did not stop in time; open connections were dropped"),
    }
    let _ = reload_task.await;
    info!("bantin stopped");
    Ok(())
}

/// At shutdown no request starts any more, and those in flight are dropped after
/// `shutdown_timeout`: runs then end at once with what they fetched.
pub async fn stop_fetching_on(shutdown: CancellationToken, fetcher: Fetcher, timeout: Duration) {
    shutdown.cancelled().await;
    fetcher.shut_down(timeout);
    info!(
        timeout_ms = timeout.as_millis() as u64,
        "no new requests; requests in flight get until the shutdown timeout"
    );
}

/// Keeps the server's view of the configuration current and asks `publisher` (when
/// this process publishes) for a publish when a new configuration arrives (a category
/// added or renamed shows at once).
async fn follow_config(
    publisher: Option<Publisher>,
    mut config_rx: tokio::sync::watch::Receiver<Arc<Config>>,
    live: Arc<ArcSwap<Config>>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = config_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let config = config_rx.borrow_and_update().clone();
                live.store(config);
                if let Some(publisher) = &publisher {
                    publisher.request();
                }
            }
        }
    }
}

/// Cancels `token` on SIGINT or SIGTERM; a second signal ends the process at once
/// (SQLite's journal keeps the database whole even then).
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            error!("cannot listen for SIGTERM/SIGINT");
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        info!("shutting down: finishing work in flight (signal again to stop at once)");
        token.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        warn!("second signal: stopping now");
        std::process::exit(130);
    });
}
