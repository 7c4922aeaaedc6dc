//! The HTTP server (axum): published feeds with caching headers, filtered feeds
//! rendered from the store, the human index page, `/healthz` and `/metrics`. It reads
//! the store (published documents through `caching`'s copy); it never crawls or
//! writes. Connections, their
//! timeouts and their cap are `connections`' job.

pub mod caching;
mod connections;
mod counting;
pub mod index;
pub mod pages;
mod routes;

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::metrics::Metrics;
use crate::model::SourceId;
use crate::schedule::Scheduler;
use crate::store::Store;
use caching::PublishedCache;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The running configuration; live reload swaps it and the next request sees it.
    pub config: Arc<ArcSwap<Config>>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// The daemon's scheduler, for next-run times; absent under `bantin serve`.
    pub schedule: Option<Scheduler>,
    published: Arc<PublishedCache>,
    /// Feed list and headers worked out from the current config, redone after a swap.
    derived: Arc<ArcSwap<Derived>>,
}

/// What every feed request needs from the config; computing the schedule's `ttl`
/// walks cron times, too slow to repeat per request.
pub(crate) struct Derived {
    config: Arc<Config>,
    pub(crate) feeds: Vec<crate::publish::FeedMeta>,
    pub(crate) cache_control: axum::http::HeaderValue,
}

impl AppState {
    pub fn new(
        config: Arc<ArcSwap<Config>>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> AppState {
        AppState {
            store,
            metrics,
            schedule: None,
            published: Arc::default(),
            derived: Arc::new(ArcSwap::from_pointee(Derived::from(config.load_full()))),
            config,
        }
    }

    /// Answers published documents from `published`, the copy a publisher in this
    /// process refreshes after each publish.
    pub fn with_published(mut self, published: Arc<PublishedCache>) -> AppState {
        self.published = published;
        self
    }

    /// Shows the scheduler's next-run times on the index page, `/healthz` and `/metrics`.
    pub fn with_schedule(mut self, schedule: Scheduler) -> AppState {
        self.schedule = Some(schedule);
        self
    }

    /// Next scheduled run per source, when a scheduler runs.
    pub fn next_runs(&self) -> BTreeMap<SourceId, DateTime<Utc>> {
        self.schedule
            .as_ref()
            .map(|s| {
                s.status()
                    .into_iter()
                    .filter_map(|(id, st)| st.next_run.map(|t| (id, t)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The current config and what is derived from it.
    pub(crate) fn current(&self) -> (Arc<Config>, Arc<Derived>) {
        let config = self.config.load_full();
        let derived = self.derived.load_full();
        if Arc::ptr_eq(&derived.config, &config) {
            return (config, derived);
        }
        let fresh = Arc::new(Derived::from(config.clone()));
        self.derived.store(fresh.clone());
        (config, fresh)
    }
}

/// `max-age` when no source has a schedule.
const DEFAULT_MAX_AGE_SECS: u32 = 300;

impl From<Arc<Config>> for Derived {
    fn from(config: Arc<Config>) -> Derived {
        // `public, max-age=<ttl>`: readers need not ask again before the next crawl
        // could run.
        let max_age = crate::publish::ttl_minutes(&config).map_or(DEFAULT_MAX_AGE_SECS, |m| m * 60);
        Derived {
            feeds: crate::publish::feeds_for(&config),
            cache_control: axum::http::HeaderValue::from_str(&format!("public, max-age={max_age}"))
                .expect("Cache-Control is ASCII"),
            config,
        }
    }
}

use routes::App;

use connections::connection_cap;

/// How often a server asks the store whether a newer publish happened: how long a
/// publish by another process may take to be answered here.
pub const PUBLISH_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves until `shutdown` is cancelled, then stops accepting and lets requests in
/// flight finish. The `[server]` settings are read once, here.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tokio::spawn(state.published.clone().follow(
        state.store.clone(),
        PUBLISH_POLL_INTERVAL,
        shutdown.clone(),
    ));
    let settings = state.config.load().settings.server.clone();
    let cap = connection_cap(settings.max_connections);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, max_connections = cap, "serving feeds");
    }
    connections::serve(listener, App::new(state), &settings, cap, shutdown).await;
    Ok(())
}

/// Where a source stands, as the index page and `/healthz` tell it.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing<'a> {
    /// No run of the source finished yet.
    NotRunYet,
    /// The last run read the source; `last_error` is the last page that failed in it.
    Ok { last_error: Option<&'a str> },
    /// The site asked to wait (`Retry-After`); the source is not backed off.
    Waiting { cause: String },
    /// The last run could not read the source; `runs` failed in a row.
    Failing { cause: String, runs: u32 },
    /// The breakage alarm went off: what went missing and the selector to check.
    Broken { findings: &'a [String] },
}

impl Standing<'_> {
    /// Reads a source's stored state (`None`: never recorded).
    pub fn of(state: Option<&crate::model::SourceState>) -> Standing<'_> {
        let Some((state, run)) = state.and_then(|s| s.last_run.as_ref().map(|r| (s, r))) else {
            return Standing::NotRunYet;
        };
        match &run.failure {
            _ if !run.breakage.is_empty() => Standing::Broken {
                findings: &run.breakage,
            },
            Some(failure) if run.failed() => Standing::Failing {
                cause: failure.to_string(),
                runs: state.failures,
            },
            Some(failure) => Standing::Waiting {
                cause: failure.to_string(),
            },
            None => Standing::Ok {
                last_error: run.last_error.as_deref(),
            },
        }
    }

    /// One word for machines: `not_run`, `ok`, `waiting`, `failing` or `broken`.
    pub fn name(&self) -> &'static str {
        match self {
            Standing::NotRunYet => "not_run",
            Standing::Ok { .. } => "ok",
            Standing::Waiting { .. } => "waiting",
            Standing::Failing { .. } => "failing",
            Standing::Broken { .. } => "broken",
        }
    }
}

impl std::fmt::Display for Standing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Standing::NotRunYet => f.write_str("not run yet"),
            Standing::Ok { last_error: None } => f.write_str("ok"),
            Standing::Ok {
                last_error: Some(error),
            } => write!(f, "ok (last page error: {error})"),
            Standing::Waiting { cause } => write!(f, "waiting: not read: {cause}"),
            Standing::Failing { cause, runs } if *runs > 1 => {
                write!(f, "failing: not read: {cause} ({runs} runs in a row)")
            }
            Standing::Failing { cause, .. } => write!(f, "failing: not read: {cause}"),
            Standing::Broken { findings } => write!(f, "broken: {}", findings.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Standing;
    use crate::model::{ReadFailure, SourceRun, SourceState};

    fn after(run: SourceRun, failures: u32) -> SourceState {
        SourceState {
            last_run: Some(run),
            failures,
            ..SourceState::default()
        }
    }

    #[test]
    fn standing_tells_each_case_apart() {
        let failed = SourceRun {
            failure: Some(ReadFailure::Status(500)),
            ..SourceRun::default()
        };
        let broken = SourceRun {
            breakage: vec!["field `title` gone: check title".into()],
            ..SourceRun::default()
        };
        let page_error = SourceRun {
            last_error: Some("GET /a answered 404".into()),
            ..SourceRun::default()
        };
        let rows = [
            (None, "not run yet"),
            (Some(SourceState::default()), "not run yet"),
            (Some(after(SourceRun::default(), 0)), "ok"),
            (
                Some(after(page_error, 0)),
                "ok (last page error: GET /a answered 404)",
            ),
            (
                Some(after(failed.clone(), 1)),
                "failing: not read: answered 500",
            ),
            (
                Some(after(failed, 4)),
                "failing: not read: answered 500 (4 runs in a row)",
            ),
            (
                Some(after(broken, 0)),
                "broken: field `title` gone: check title",
            ),
        ];
        for (state, shown) in rows {
            assert_eq!(Standing::of(state.as_ref()).to_string(), shown, "{state:?}");
        }
    }
}
