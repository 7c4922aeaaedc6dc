//! Counters the pipeline, the daemon and the server bump, rendered in the Prometheus
//! text format for `GET /metrics`. Plain atomics and small maps; no registry crate. It
//! owns counting and rendering; serving the text is `serve`'s job, so the pipeline and
//! the daemon count without importing the web server.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};

use crate::fetch::FetchCounts;
use crate::model::{Outcome, SourceId, SourceState};

/// Every counter bantin exposes.
#[derive(Debug, Default)]
pub struct Metrics {
    /// HTTP requests served, by route and status.
    requests: RequestCounts,
    /// Requests the fetcher sent, by kind and status; counted by the fetcher itself.
    fetches: Arc<FetchCounts>,
    items_new: AtomicU64,
    items_updated: AtomicU64,
    items_duplicate: AtomicU64,
    items_unchanged: AtomicU64,
    /// Source -> errors (failed pages, failed runs).
    errors: Mutex<BTreeMap<String, u64>>,
    /// Source -> Unix time of its last successful run.
    last_success: Mutex<BTreeMap<String, i64>>,
    last_run: AtomicI64,
    /// Times something asked for the feeds to be published again.
    publish_requests: AtomicU64,
    publishes_ok: AtomicU64,
    publishes_failed: AtomicU64,
    /// Unix time of the last successful publish.
    last_publish: AtomicI64,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Metrics that report the requests counted in `fetches` (see
    /// [`crate::fetch::Fetcher::counts`]).
    pub fn with_fetch_counts(fetches: Arc<FetchCounts>) -> Metrics {
        Metrics {
            fetches,
            ..Metrics::default()
        }
    }

    /// One HTTP request answered. `route` is the matched route pattern, so the label
    /// set stays small.
    pub fn record_request(&self, route: &str, status: u16) {
        self.requests.record(route, status);
    }

    /// What the store did with one article.
    pub fn record_outcome(&self, outcome: &Outcome) {
        let counter = match outcome {
            Outcome::New(_) => &self.items_new,
            Outcome::Updated(_) => &self.items_updated,
            Outcome::Duplicate { .. } => &self.items_duplicate,
            Outcome::Unchanged(_) => &self.items_unchanged,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// One error while crawling a source.
    pub fn record_error(&self, source: &SourceId) {
        *lock(&self.errors).entry(source.to_string()).or_default() += 1;
    }

    /// A source finished a run successfully.
    pub fn record_success(&self, source: &SourceId, at: DateTime<Utc>) {
        lock(&self.last_success).insert(source.to_string(), at.timestamp());
        self.last_run.fetch_max(at.timestamp(), Ordering::Relaxed);
    }

    /// A crawl run finished (successfully or not).
    pub fn set_last_run(&self, at: DateTime<Utc>) {
        self.last_run.store(at.timestamp(), Ordering::Relaxed);
    }

    /// Something changed the feeds' content and asked for a publish (publishes of
    /// several requests are coalesced, so this outgrows the publish count).
    pub fn record_publish_request(&self) {
        self.publish_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The feeds were published (re-rendered from the store), or publishing failed.
    pub fn record_publish(&self, ok: bool, at: DateTime<Utc>) {
        if ok {
            self.publishes_ok.fetch_add(1, Ordering::Relaxed);
            self.last_publish.store(at.timestamp(), Ordering::Relaxed);
        } else {
            self.publishes_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "bantin_http_requests_total",
            "counter",
            "HTTP requests served.",
        );
        for ((route, status), n) in self.requests.snapshot() {
            let _ = writeln!(
                out,
                "bantin_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(&route)
            );
        }
        header(
            &mut out,
            "bantin_fetches_total",
            "counter",
            "HTTP requests sent, by what they fetched and the status answered (`error`: no answer).",
        );
        for (kind, status, n) in self.fetches.snapshot() {
            let _ = writeln!(
                out,
                "bantin_fetches_total{{kind=\"{}\",status=\"{}\"}} {n}",
                kind.as_str(),
                escape(&status)
            );
        }
        header(
            &mut out,
            "bantin_items_total",
            "counter",
            "Articles stored, by outcome.",
        );
        for (outcome, counter) in [
            ("new", &self.items_new),
            ("updated", &self.items_updated),
            ("duplicate", &self.items_duplicate),
            ("unchanged", &self.items_unchanged),
        ] {
            let _ = writeln!(
                out,
                "bantin_items_total{{outcome=\"{outcome}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "bantin_errors_total",
            "counter",
            "Crawl errors, by source.",
        );
        for (source, n) in lock(&self.errors).iter() {
            let _ = writeln!(
                out,
                "bantin_errors_total{{source=\"{}\"}} {n}",
                escape(source)
            );
        }
        header(
            &mut out,
            "bantin_source_last_success_timestamp_seconds",
            "gauge",
            "Unix time of each source's last successful run.",
        );
        for (source, t) in lock(&self.last_success).iter() {
            let _ = writeln!(
                out,
                "bantin_source_last_success_timestamp_seconds{{source=\"{}\"}} {t}",
                escape(source)
            );
        }
        let name = "bantin_last_run_timestamp_seconds";
        header(&mut out, name, "gauge", "Unix time of the last crawl run.");
        let _ = writeln!(out, "{name} {}", self.last_run.load(Ordering::Relaxed));
        let name = "bantin_publish_requests_total";
        header(
            &mut out,
            name,
            "counter",
            "Requests to publish the feeds (at start, after runs that changed items, on reload).",
        );
        let _ = writeln!(
            out,
            "{name} {}",
            self.publish_requests.load(Ordering::Relaxed)
        );
        let name = "bantin_publishes_total";
        header(
            &mut out,
            name,
            "counter",
            "Times the feeds were published, by result.",
        );
        for (result, counter) in [
            ("ok", &self.publishes_ok),
            ("error", &self.publishes_failed),
        ] {
            let _ = writeln!(
                out,
                "{name}{{result=\"{result}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let name = "bantin_last_publish_timestamp_seconds";
        header(
            &mut out,
            name,
            "gauge",
            "Unix time of the last successful publish.",
        );
        let _ = writeln!(out, "{name} {}", self.last_publish.load(Ordering::Relaxed));
        out
    }
}

/// Distinct routes counted without a lock; more would share one locked map.
const ROUTE_SLOTS: usize = 16;
/// Status codes 100 to 599, one counter each.
const STATUS_CODES: usize = 500;

/// Requests by (route, status), bumped on every request: one atomic add for the first
/// [`ROUTE_SLOTS`] routes seen, no lock and no allocation. Route names are matched route
/// patterns, a handful, claimed a slot each the first time they are seen.
struct RequestCounts {
    routes: [OnceLock<Box<str>>; ROUTE_SLOTS],
    /// `ROUTE_SLOTS * STATUS_CODES` counters, a route's statuses side by side.
    counts: Box<[AtomicU64]>,
    claiming: Mutex<()>,
    /// Routes past the slots and statuses outside 100-599.
    others: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Default for RequestCounts {
    fn default() -> RequestCounts {
        RequestCounts {
            routes: std::array::from_fn(|_| OnceLock::new()),
            counts: (0..ROUTE_SLOTS * STATUS_CODES)
                .map(|_| AtomicU64::new(0))
                .collect(),
            claiming: Mutex::new(()),
            others: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for RequestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.snapshot()).finish()
    }
}

impl RequestCounts {
    fn record(&self, route: &str, status: u16) {
        let code = usize::from(status).wrapping_sub(100);
        match self.slot(route) {
            Some(slot) if code < STATUS_CODES => {
                self.counts[slot * STATUS_CODES + code].fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                *lock(&self.others)
                    .entry((route.to_owned(), status))
                    .or_default() += 1
            }
        }
    }

    /// The slot of `route`, claimed now if it is new and one is free.
    fn slot(&self, route: &str) -> Option<usize> {
        let find = || {
            self.routes
                .iter()
                .position(|r| r.get().is_some_and(|r| **r == *route))
        };
        if let Some(slot) = find() {
            return Some(slot);
        }
        let _claiming = lock(&self.claiming);
        find().or_else(|| {
            let free = self.routes.iter().position(|r| r.get().is_none())?;
            self.routes[free]
                .set(route.into())
                .expect("slots are claimed one at a time, under the lock");
            Some(free)
        })
    }

    /// Every count above zero, sorted by route and status.
    fn snapshot(&self) -> BTreeMap<(String, u16), u64> {
        let mut all = lock(&self.others).clone();
        for (slot, route) in self.routes.iter().enumerate() {
            let Some(route) = route.get() else { continue };
            let counts = &self.counts[slot * STATUS_CODES..(slot + 1) * STATUS_CODES];
            for (code, n) in counts.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let status = u16::try_from(code + 100).expect("status codes fit in u16");
                    all.insert((route.to_string(), status), n);
                }
            }
        }
        all
    }
}

/// This worker's leases: how many it holds, and how many it lost to another worker
/// (renewed too late). Appended to [`Metrics::render`] by the `/metrics` route.
pub fn render_leases((held, lost): (usize, u64)) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "bantin_worker_leases_held",
        "gauge",
        "Sources this worker holds a lease on (runs in flight).",
    );
    let _ = writeln!(out, "bantin_worker_leases_held {held}");
    header(
        &mut out,
        "bantin_worker_leases_lost_total",
        "counter",
        "Leases another worker took over before this one renewed them; their runs stopped.",
    );
    let _ = writeln!(out, "bantin_worker_leases_lost_total {lost}");
    out
}

/// The publish generation this server answers, so servers behind one load balancer
/// can be seen to agree. Absent before the server's first load.
pub fn render_publish_generation(served: Option<u64>) -> String {
    let mut out = String::new();
    if let Some(generation) = served {
        header(
            &mut out,
            "bantin_publish_generation_served",
            "gauge",
            "The publish generation whose feeds this server answers.",
        );
        let _ = writeln!(out, "bantin_publish_generation_served {generation}");
    }
    out
}

/// Per-source gauges from the stored run history and the scheduler: last run, next
/// run, links found, health. Appended to [`Metrics::render`] by the `/metrics` route.
pub fn render_sources(
    states: &[SourceState],
    next_runs: &BTreeMap<SourceId, DateTime<Utc>>,
) -> String {
    let mut out = String::new();
    type Gauge<'a> = (&'a str, &'a str, &'a dyn Fn(&SourceState) -> Option<i64>);
    let gauges: [Gauge; 5] = [
        (
            "bantin_source_last_run_timestamp_seconds",
            "When the source's last run finished (Unix time).",
            &|s| s.last_run.as_ref()?.finished_at.map(|t| t.timestamp()),
        ),
        (
            "bantin_source_links_found",
            "Article links the source's last run found.",
            &|s| s.last_run.as_ref().map(|r| r.links_found as i64),
        ),
        (
            "bantin_source_dead_links",
            "Article links of the source's last run that are dead (404/410, in backoff).",
            &|s| s.last_run.as_ref().map(|r| r.dead_links as i64),
        ),
        ("bantin_source_failures", "Failed runs in a row.", &|s| {
            Some(i64::from(s.failures))
        }),
        (
            "bantin_source_healthy",
            "1 when the source is healthy, 0 when failing or its breakage alarm is raised.",
            &|s| Some(i64::from(s.is_healthy())),
        ),
    ];
    for (name, help, value) in gauges {
        header(&mut out, name, "gauge", help);
        for state in states {
            if let (Some(id), Some(v)) = (&state.source, value(state)) {
                let _ = writeln!(out, "{name}{{source=\"{}\"}} {v}", escape(id.as_str()));
            }
        }
    }
    header(
        &mut out,
        "bantin_source_next_run_timestamp_seconds",
        "gauge",
        "When the scheduler runs the source next (Unix time).",
    );
    for (id, t) in next_runs {
        let _ = writeln!(
            out,
            "bantin_source_next_run_timestamp_seconds{{source=\"{}\"}} {}",
            escape(id.as_str()),
            t.timestamp()
        );
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label values escape backslash, quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A counter map stays valid even if a holder panicked mid-update.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ItemId;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::new();
        m.record_request("/feeds/{file}", 200);
        m.record_request("/feeds/{file}", 200);
        m.record_outcome(&Outcome::New(ItemId::from("a")));
        m.record_error(&SourceId::from("ca\"nd"));
        m.record_success(
            &SourceId::from("cand"),
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        );
        let text = m.render();
        assert!(
            text.contains("bantin_http_requests_total{route=\"/feeds/{file}\",status=\"200\"} 2")
        );
        assert!(text.contains("bantin_items_total{outcome=\"new\"} 1"));
        assert!(text.contains("bantin_errors_total{source=\"ca\\\"nd\"} 1"));
        assert!(
            text.contains(
                "bantin_source_last_success_timestamp_seconds{source=\"cand\"} 1700000000"
            )
        );
        assert!(text.contains("bantin_last_run_timestamp_seconds 1700000000"));
    }

    #[test]
    fn counts_requests_of_more_routes_than_slots_and_odd_statuses() {
        let m = Metrics::new();
        for n in 0..ROUTE_SLOTS + 2 {
            m.record_request(&format!("/r{n}"), 200);
            m.record_request(&format!("/r{n}"), 200);
        }
        m.record_request("/r0", 404);
        m.record_request("/r0", 999);
        let text = m.render();
        for n in 0..ROUTE_SLOTS + 2 {
            let sample = format!("bantin_http_requests_total{{route=\"/r{n}\",status=\"200\"}} 2");
            assert!(text.contains(&sample), "no {sample} in:\n{text}");
        }
        assert!(text.contains("bantin_http_requests_total{route=\"/r0\",status=\"404\"} 1"));
        assert!(text.contains("bantin_http_requests_total{route=\"/r0\",status=\"999\"} 1"));
    }

    #[test]
    fn counts_publish_requests_and_publishes_by_result() {
        let m = Metrics::new();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for _ in 0..3 {
            m.record_publish_request();
        }
        m.record_publish(true, at);
        m.record_publish(false, at + chrono::Duration::seconds(5));
        let text = m.render();
        assert!(text.contains("bantin_publish_requests_total 3"));
        assert!(text.contains("bantin_publishes_total{result=\"ok\"} 1"));
        assert!(text.contains("bantin_publishes_total{result=\"error\"} 1"));
        assert!(text.contains("bantin_last_publish_timestamp_seconds 1700000000"));
    }
}
