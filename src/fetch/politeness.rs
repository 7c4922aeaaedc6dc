//! Politeness: how many requests run at once (per host and in all), how long to wait
//! between two requests to one host, and which URLs or hosts a `Retry-After` answer
//! holds back (the fetcher hands each one to the store, and [`Politeness::restore`]
//! takes them back after a restart). Callers never sleep or count themselves; every
//! request goes through [`Politeness::acquire`]. robots.txt rules live in `robots.rs`.
//!
//! Across workers sharing a store ([`SharedHosts`]): a host a run of this worker holds
//! (a host of the source's start URLs, claimed with the source) is this worker's alone,
//! and its requests are spaced here, in memory. A request to any other host (an article
//! link on another host, a CDN) also takes that host's next slot in the store, so that
//! every worker asking it keeps its delay and its concurrency (the slot counts as in
//! flight until the permit is dropped); while another worker holds the host, or a
//! `Retry-After` another worker stored holds it back, it waits, at most
//! [`MAX_HOST_WAIT`]. robots.txt (and its Crawl-delay) each worker reads itself before
//! its first request to a host, so the delay it asks the store for includes it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::Url;

use crate::config::{FetchSettings, RetryAfterScope};
use crate::model::{HeldBack, HostSlot};

/// Longest a request waits for a host another worker holds before it fails
/// ([`NotSent::HostHeld`]): the other worker's run may last long, and this run must end.
pub const MAX_HOST_WAIT: Duration = Duration::from_secs(30);
/// Longest pause between two asks for a host another worker holds.
const HOST_POLL: Duration = Duration::from_secs(1);

/// The hosts this worker shares with other workers through the store.
pub trait SharedHosts: Send + Sync {
    /// Whether a run of this worker holds `host` (a [`host_key`]) now.
    fn holds(&self, host: &str) -> bool;
    /// The store's next slot for one request (see [`SlotAsk`]) to a host no run of
    /// this worker holds; or who holds the host now, the `Retry-After` that holds it
    /// back, or the request in flight that fills its concurrency.
    fn take_slot(
        &self,
        ask: SlotAsk,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<HostSlot, String>> + Send + '_>>;
    /// The request of the slot `ticket` ended (its permit was dropped); returns at once.
    fn end_slot(&self, ticket: i64);
}

/// One request's ask for a slot of its host in the store.
#[derive(Debug, Clone)]
pub struct SlotAsk {
    /// A [`host_key`].
    pub host: String,
    pub url: Url,
    /// How long the host's next request waits after this one.
    pub delay: Duration,
    /// How many requests may be in flight on the host at once, across workers.
    pub concurrency: usize,
    /// How long the request counts as in flight at most, should this worker die.
    pub hold: Duration,
}

/// A request not sent for what other workers sharing the store did to its host.
#[derive(Debug)]
pub enum NotSent {
    /// Another worker held the host for all of [`MAX_HOST_WAIT`].
    HostHeld { worker: String },
    /// A `Retry-After` another worker stored holds the host (or the address) back for
    /// longer than [`MAX_HOST_WAIT`]; this worker holds it back too from now on.
    HeldBack { until: DateTime<Utc> },
}

/// Shared request gates of one fetcher.
pub struct Politeness {
    /// Set once when this fetcher's process is a worker sharing a store.
    shared: std::sync::OnceLock<Arc<dyn SharedHosts>>,
    global: Arc<Semaphore>,
    per_host_concurrency: usize,
    per_host_delay: Duration,
    /// How long a request slot taken in the store counts as in flight at most: twice
    /// the request timeout, once for the wait for a global permit, once for the request.
    slot_hold: Duration,
    retry_after_scope: RetryAfterScope,
    hosts: Mutex<HashMap<String, Arc<HostGate>>>,
    /// URL or host key -> time before which no request is sent.
    held_back: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl std::fmt::Debug for Politeness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Politeness")
            .field("per_host_concurrency", &self.per_host_concurrency)
            .field("per_host_delay", &self.per_host_delay)
            .field("shared", &self.shared.get().is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct HostGate {
    slots: Arc<Semaphore>,
    /// Taken by the request waiting for its start, so the host's requests start one
    /// after the other.
    turn: tokio::sync::Mutex<()>,
    /// Earliest start of the next request to this host.
    next_start: Mutex<Instant>,
}

impl HostGate {
    fn next_start(&self) -> Instant {
        *self
            .next_start
            .lock()
            .expect("host gate lock is not poisoned")
    }

    /// Puts the next start at `at` or later.
    fn defer(&self, at: Instant) {
        let mut next = self
            .next_start
            .lock()
            .expect("host gate lock is not poisoned");
        *next = (*next).max(at);
    }
}

/// Leave to send one request; hold it until the response body is read.
pub struct Permit {
    _host: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
    /// The store slot the request took, ended when the permit is dropped.
    _slot: Option<SlotTicket>,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("slot", &self._slot.as_ref().map(|s| s.ticket))
            .finish_non_exhaustive()
    }
}

/// A request's slot in the store, in flight until dropped.
struct SlotTicket {
    shared: Arc<dyn SharedHosts>,
    ticket: i64,
}

impl Drop for SlotTicket {
    fn drop(&mut self) {
        self.shared.end_slot(self.ticket);
    }
}

/// The key requests to one host share: `host:port`.
pub fn host_key(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default().to_ascii_lowercase(),
        url.port_or_known_default().unwrap_or(0)
    )
}

impl Politeness {
    pub fn new(settings: &FetchSettings) -> Self {
        Self {
            shared: std::sync::OnceLock::new(),
            global: Arc::new(Semaphore::new(settings.global_concurrency.max(1))),
            per_host_concurrency: settings.per_host_concurrency.max(1),
            per_host_delay: settings.per_host_delay,
            slot_hold: settings.timeout.saturating_mul(2),
            retry_after_scope: settings.retry_after_scope,
            hosts: Mutex::default(),
            held_back: Mutex::default(),
        }
    }

    /// Shares hosts with the other workers of a store from now on (set once).
    pub fn share_hosts(&self, shared: Box<dyn SharedHosts>) {
        let _ = self.shared.set(Arc::from(shared));
    }

    /// Waits until a request to `url` may start: a free slot for its host, the host's
    /// delay since the previous start (the larger of `per_host_delay` and `crawl_delay`),
    /// its slot in the store when no run of this worker holds it, then a global slot.
    pub async fn acquire(
        &self,
        url: &Url,
        crawl_delay: Option<Duration>,
    ) -> Result<Permit, NotSent> {
        let key = host_key(url);
        let gate = self.gate(&key);
        let host = Arc::clone(&gate.slots)
            .acquire_owned()
            .await
            .expect("host semaphores are never closed");
        let delay = crawl_delay.map_or(self.per_host_delay, |d| d.max(self.per_host_delay));
        let slot = {
            // Holding the turn while sleeping queues the host's requests one delay apart.
            let _turn = gate.turn.lock().await;
            // The start can move later while we sleep: another worker handed the host over.
            while gate.next_start() > Instant::now() {
                tokio::time::sleep_until(gate.next_start()).await;
            }
            let slot = self.store_slot(&key, url, delay).await?;
            *gate
                .next_start
                .lock()
                .expect("host gate lock is not poisoned") = Instant::now() + delay;
            slot
        };
        let global = Arc::clone(&self.global)
            .acquire_owned()
            .await
            .expect("the global semaphore is never closed");
        Ok(Permit {
            _host: host,
            _global: global,
            _slot: slot,
        })
    }

    /// The store's slot for a request to `url` on `host`, when this worker shares
    /// hosts with others and no run of it holds this one. A `Retry-After` that keeps
    /// the slot away too long is held back here too from now on.
    async fn store_slot(
        &self,
        host: &str,
        url: &Url,
        delay: Duration,
    ) -> Result<Option<SlotTicket>, NotSent> {
        let Some(shared) = self.shared.get().filter(|s| !s.holds(host)) else {
            return Ok(None);
        };
        let ask = SlotAsk {
            host: host.to_owned(),
            url: url.clone(),
            delay,
            concurrency: self.per_host_concurrency,
            hold: self.slot_hold,
        };
        let waited = wait_for_slot(shared.as_ref(), ask).await;
        if let Err(NotSent::HeldBack { until }) = &waited {
            self.restore(vec![HeldBack {
                key: host.to_owned(),
                until: *until,
            }]);
        }
        Ok(waited?.map(|ticket| SlotTicket {
            shared: Arc::clone(shared),
            ticket,
        }))
    }

    fn gate(&self, key: &str) -> Arc<HostGate> {
        let mut hosts = self.hosts.lock().expect("host table lock is not poisoned");
        Arc::clone(hosts.entry(key.to_owned()).or_insert_with(|| {
            Arc::new(HostGate {
                slots: Arc::new(Semaphore::new(self.per_host_concurrency)),
                turn: tokio::sync::Mutex::new(()),
                next_start: Mutex::new(Instant::now()),
            })
        }))
    }

    /// When the next request to `host` (a [`host_key`]) may start, as wall time, for the
    /// worker that asks the host after this one; `None` if it may start now.
    pub fn next_start_at(&self, host: &str) -> Option<DateTime<Utc>> {
        let gate = self
            .hosts
            .lock()
            .expect("host table lock is not poisoned")
            .get(host)
            .cloned()?;
        let wait = gate.next_start().checked_duration_since(Instant::now())?;
        Some(Utc::now() + chrono::Duration::from_std(wait).ok()?)
    }

    /// Takes `host` over from another worker: no request to it before `at` (when the
    /// other's last request and delay allow one), and, when the other died holding it
    /// (`abandoned`: its last request is unknown), not before one delay from now.
    pub fn take_over(&self, host: &str, at: Option<DateTime<Utc>>, abandoned: bool) {
        let now = Instant::now();
        let mut start = at
            .and_then(|at| (at - Utc::now()).to_std().ok())
            .map_or(now, |wait| now + wait);
        if abandoned {
            start = start.max(now + self.per_host_delay);
        }
        self.gate(host).defer(start);
    }

    /// The time a `Retry-After` holds `url` back until, if it is still in the future.
    pub fn held_back_until(&self, url: &Url) -> Option<DateTime<Utc>> {
        let now = Utc::now();
        let mut held = self
            .held_back
            .lock()
            .expect("retry table lock is not poisoned");
        held.retain(|_, until| *until > now);
        [url.as_str().to_owned(), host_key(url)]
            .iter()
            .filter_map(|k| held.get(k).copied())
            .max()
    }

    /// Records a `Retry-After` answer for `url`: holds back that URL, or its whole host,
    /// as configured. Returns the hold-back recorded.
    pub fn hold_back(&self, url: &Url, until: DateTime<Utc>) -> HeldBack {
        let key = match self.retry_after_scope {
            RetryAfterScope::Url => url.as_str().to_owned(),
            RetryAfterScope::Host => host_key(url),
        };
        let mut held = self
            .held_back
            .lock()
            .expect("retry table lock is not poisoned");
        let entry = held.entry(key.clone()).or_insert(until);
        *entry = (*entry).max(until);
        HeldBack { key, until: *entry }
    }

    /// Honours hold-backs kept from an earlier process.
    pub fn restore(&self, kept: Vec<HeldBack>) {
        let mut held = self
            .held_back
            .lock()
            .expect("retry table lock is not poisoned");
        for HeldBack { key, until } in kept {
            let entry = held.entry(key).or_insert(until);
            *entry = (*entry).max(until);
        }
    }
}

/// Waits for the store's next slot of the host asked for, asking again while another
/// worker holds the host, a stored `Retry-After` holds it back or its concurrency is in
/// flight, for at most [`MAX_HOST_WAIT`]; returns the slot's ticket. A store that
/// cannot be asked leaves the request to this worker's own spacing: bantin does not
/// stop crawling while its database is briefly away.
async fn wait_for_slot(shared: &dyn SharedHosts, ask: SlotAsk) -> Result<Option<i64>, NotSent> {
    let asked = Instant::now();
    loop {
        match shared.take_slot(ask.clone()).await {
            Ok(HostSlot::At { at, ticket }) => {
                if let Ok(wait) = (at - Utc::now()).to_std() {
                    tokio::time::sleep(wait).await;
                }
                return Ok(Some(ticket));
            }
            Ok(HostSlot::Full { worker, .. }) => {
                if asked.elapsed() >= MAX_HOST_WAIT {
                    return Err(NotSent::HostHeld { worker });
                }
                // A request ends any time: asked again about as often as slots come.
                tokio::time::sleep(ask.delay.clamp(Duration::from_millis(50), HOST_POLL)).await;
            }
            Ok(HostSlot::Held { worker, until, .. }) => {
                if asked.elapsed() >= MAX_HOST_WAIT {
                    return Err(NotSent::HostHeld { worker });
                }
                let left = (until - Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(left.clamp(Duration::from_millis(50), HOST_POLL)).await;
            }
            Ok(HostSlot::HeldBack { until }) => {
                let left = (until - Utc::now()).to_std().unwrap_or_default();
                if asked.elapsed() + left > MAX_HOST_WAIT {
                    return Err(NotSent::HeldBack { until });
                }
                // Asked again then: its slot comes after the hold-back, among the
                // other workers' slots.
                tokio::time::sleep(left).await;
            }
            Err(error) => {
                tracing::warn!(host = %ask.host, %error, "cannot take the host's slot in the store; spacing requests here only");
                return Ok(None);
            }
        }
    }
}

/// Longest hold-back a `Retry-After` is honoured for, whichever form it takes; a site
/// asking for more is asked again after this.
pub const MAX_RETRY_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// Parses a `Retry-After` value: delay seconds or an HTTP date. The time returned is
/// never later than [`MAX_RETRY_AFTER`] from `now`, nor earlier than `now`.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => chrono::TimeDelta::seconds(
            i64::try_from(secs)
                .unwrap_or(i64::MAX)
                .min(MAX_RETRY_AFTER.num_seconds()),
        ),
        Err(_) => DateTime::parse_from_rfc2822(value).ok()?.to_utc() - now,
    };
    Some(now + wait.clamp(chrono::TimeDelta::zero(), MAX_RETRY_AFTER))
}

/// Backoff before retry number `attempt` (0-based): `base * 2^attempt` capped at `cap`,
/// then a uniformly random point in its upper half ("equal jitter"), so that retries
/// from many tasks spread out but never come sooner than half the nominal delay.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let nominal = base
        .checked_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .unwrap_or(cap)
        .min(cap);
    let half = nominal / 2;
    half + half.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(now + chrono::Duration::seconds(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 01 May 2024 00:10:00 GMT", now),
            Some(now + chrono::Duration::minutes(10))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_is_capped_at_a_day_in_both_forms() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let cap = Some(now + MAX_RETRY_AFTER);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("9999999999", now), cap);
        assert_eq!(parse_retry_after("18446744073709551615", now), cap);
        assert_eq!(parse_retry_after("Thu, 01 Jan 2099 00:00:00 GMT", now), cap);
        assert_eq!(
            parse_retry_after("Mon, 01 Jan 2024 00:00:00 GMT", now),
            Some(now)
        );
    }

    fn settings(delay: Duration) -> FetchSettings {
        let config = crate::config::Config::load(std::path::Path::new(
            "tests/fixtures/config/valid/bantin.toml",
        ))
        .expect("the fixture config is valid");
        FetchSettings {
            per_host_delay: delay,
            ..config.settings.fetch
        }
    }

    #[tokio::test]
    async fn a_host_taken_over_waits_out_the_previous_workers_delay() {
        // Lower bounds only: a loaded machine may wait longer, never shorter.
        let url = Url::parse("http://127.0.0.1:8080/list/").unwrap();
        let host = host_key(&url);
        let delay = Duration::from_millis(300);
        let gates = Politeness::new(&settings(delay));
        let start = Instant::now();
        gates.take_over(
            &host,
            Some(Utc::now() + chrono::Duration::milliseconds(400)),
            false,
        );
        drop(gates.acquire(&url, None).await.unwrap());
        assert!(
            start.elapsed() >= Duration::from_millis(390),
            "{:?}",
            start.elapsed()
        );
        assert!(
            gates.next_start_at(&host).is_some(),
            "its own delay is handed on"
        );

        // A holder that died leaves no time: one delay from the take-over.
        let gates = Politeness::new(&settings(delay));
        let start = Instant::now();
        gates.take_over(&host, None, true);
        drop(gates.acquire(&url, None).await.unwrap());
        assert!(start.elapsed() >= delay, "{:?}", start.elapsed());
    }

    #[test]
    fn backoff_doubles_within_jitter_and_stops_at_cap() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        for attempt in 0..3 {
            let nominal = base * 2u32.pow(attempt);
            let d = backoff(attempt, base, cap);
            assert!(d >= nominal / 2 && d <= nominal, "{attempt}: {d:?}");
        }
        assert!(backoff(30, base, cap) <= cap);
        assert!(backoff(30, base, cap) >= cap / 2);
    }
}
