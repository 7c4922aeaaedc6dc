//! This process as one worker among those sharing a store: its id, the leases it holds
//! on sources (and on their hosts) while it runs them, their renewal, and the hand-over
//! of hosts between the fetcher's politeness and the store. The store decides who gets
//! a claim ([`Store::claim_source`]); this module asks, keeps what it got, renews it
//! every third of the lease, and gives it back when the run ends. It also tells the
//! fetcher which hosts this worker holds, and takes store slots for the others
//! ([`SharedHosts`]).
//!
//! When it starts, a worker ends the leases of workers of its own machine whose process
//! is dead ([`super::process`]): a worker restarted after a kill runs its sources again
//! at once, not a lease later. While it runs, a claim or a host slot that finds its
//! source or host held by a dead process of this machine (a sibling killed meanwhile)
//! asks again naming that process dead, and the store hands over what it held.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Source;
use crate::fetch::Fetcher;
use crate::fetch::politeness::{SharedHosts, SlotAsk, host_key};
use crate::model::{Claim, ClaimRequest, HostSlot, HostTurn, SlotRequest, SourceId};
use crate::store::Store;

use super::in_store;

/// Longest wait between two claims of a source another worker holds.
const MAX_CLAIM_POLL: Duration = Duration::from_secs(5);

/// This process as a worker: who it is, how long its claims hold, and the fetcher whose
/// politeness takes hosts over from other workers.
#[derive(Clone, Debug)]
pub struct Worker {
    /// Shown in logs and `/healthz`: host name, process id and a random suffix.
    pub id: String,
    /// How long a claim holds without a renewal (`[workers] lease`).
    pub lease: Duration,
    pub fetcher: Fetcher,
    /// This process as its machine names it, stored with its leases.
    pub process: Option<String>,
}

impl Worker {
    /// This process, with a fresh id.
    pub fn new(lease: Duration, fetcher: Fetcher) -> Worker {
        Worker {
            id: worker_id(),
            lease,
            fetcher,
            process: super::process::this_process(),
        }
    }
}

/// `host-pid-suffix`: the suffix tells apart two processes that got one pid, in two
/// containers of one host name, say.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let suffix: u16 = rand::random();
    format!("{host}-{}-{suffix:04x}", std::process::id())
}

/// The hosts a claim on `source` holds: those of its start URLs, sorted, once each.
fn hosts_of(source: &Source) -> Vec<String> {
    let mut hosts: Vec<String> = source.urls.iter().map(host_key).collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// The claims of this worker.
pub(super) struct Claims {
    worker: Worker,
    store: Arc<dyn Store>,
    /// Runs holding a lease, by source: the hosts each needs, and how to stop it when
    /// its lease is lost.
    held: Mutex<HashMap<SourceId, Held>>,
    /// Claims, releases and renewals go one at a time, so that the store never frees a
    /// host a run of this worker has just claimed again.
    order: tokio::sync::Mutex<()>,
    lost: AtomicU64,
    /// Processes of this machine that held leases and were found dead: named in every
    /// claim and slot request, so the store treats their leases as run out. A process
    /// once dead stays dead (its name holds its start time).
    dead: Mutex<BTreeSet<String>>,
    /// Set up once, before the first claim: dead holders ended, renewals started.
    started: tokio::sync::OnceCell<()>,
    /// Cancelled when this worker stops renewing (the scheduler's shutdown).
    closed: CancellationToken,
}

struct Held {
    hosts: Vec<String>,
    lost: CancellationToken,
}

/// A run's claim, given back with [`Claims::release`].
pub(super) struct RunLease {
    source: SourceId,
    tick: Option<DateTime<Utc>>,
    /// Cancelled when another worker took the source over: the run must stop.
    pub lost: CancellationToken,
}

/// What [`Claims::acquire`] got.
pub(super) enum Acquired {
    Run(RunLease),
    /// Another worker finished a run for this tick.
    Done,
    /// Another worker held the source (or a host of it) for all the patience given.
    Busy {
        worker: String,
        until: DateTime<Utc>,
    },
    /// The source was stopped while waiting.
    Stopped,
}

impl Claims {
    /// This worker's claims; its fetcher asks them which hosts it holds from now on.
    pub(super) fn new(worker: Worker, store: Arc<dyn Store>) -> Arc<Claims> {
        let fetcher = worker.fetcher.clone();
        let claims = Arc::new(Claims {
            worker,
            store,
            held: Mutex::default(),
            order: tokio::sync::Mutex::new(()),
            lost: AtomicU64::new(0),
            dead: Mutex::default(),
            started: tokio::sync::OnceCell::new(),
            closed: CancellationToken::new(),
        });
        // Weak: the fetcher outlives nothing it is asked for, and must not keep the
        // claims (and their renewals) alive.
        fetcher.share_hosts(Box::new(HostsOf(Arc::downgrade(&claims))));
        claims
    }

    fn held(&self) -> MutexGuard<'_, HashMap<SourceId, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dead_processes(&self) -> Vec<String> {
        let dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        dead.iter().cloned().collect()
    }

    /// Whether `holder`, running as `process`, is a dead process of this machine not
    /// known dead before; it is known from now on.
    fn newly_dead(&self, holder: &str, process: Option<&str>) -> bool {
        let Some(process) = process.filter(|p| super::process::is_dead(p)) else {
            return false;
        };
        let mut dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        let new = dead.insert(process.to_owned());
        if new {
            info!(
                holder,
                "a worker of this machine died holding leases; taking them over"
            );
        }
        new
    }

    pub(super) fn worker_id(&self) -> &str {
        &self.worker.id
    }

    /// How long a claim holds without a renewal.
    pub(super) fn lease(&self) -> Duration {
        self.worker.lease
    }

    /// Leases this worker holds now.
    pub(super) fn held_count(&self) -> usize {
        self.held().len()
    }

    /// Leases lost to another worker since the start (renewed too late).
    pub(super) fn lost_count(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Before the first claim: ends the leases of this machine's dead workers, and
    /// starts renewing (until [`Claims::close`] or the last handle is dropped).
    pub(super) async fn start(self: &Arc<Self>) {
        self.started
            .get_or_init(|| async {
                self.end_dead_holders().await;
                tokio::spawn(renew_while_open(Arc::downgrade(self), self.closed.clone()));
            })
            .await;
    }

    /// Stops renewing: leases of runs still in flight run out by themselves.
    pub(super) fn close(&self) {
        self.closed.cancel();
    }

    /// Ends the leases of every holder that is a dead process of this machine (a
    /// worker killed before this one started in its place, say).
    async fn end_dead_holders(&self) {
        let leases = match in_store(&self.store, |store| store.leases(Utc::now())).await {
            Ok(leases) => leases,
            Err(error) => return warn!(%error, "cannot read the leases held"),
        };
        let dead: BTreeSet<(String, String)> = leases
            .into_iter()
            .filter_map(|lease| Some((lease.worker, lease.process?)))
            .filter(|(worker, process)| {
                *worker != self.worker.id && super::process::is_dead(process)
            })
            .collect();
        for (worker, process) in dead {
            let ended = {
                let worker = worker.clone();
                in_store(&self.store, move |store| {
                    store.expire_leases(&worker, &process)
                })
                .await
            };
            match ended {
                Ok(()) => info!(holder = %worker, "leases of a dead worker of this machine ended"),
                Err(error) => warn!(holder = %worker, %error, "cannot end a dead worker's leases"),
            }
        }
    }

    /// Claims the run of `source` for `tick` (`None`: a run by hand), asking again
    /// while another worker holds the source or one of its hosts, until granted, done
    /// elsewhere, `stop`, or `patience` (when given) has passed.
    pub(super) async fn acquire(
        &self,
        source: &Source,
        tick: Option<DateTime<Utc>>,
        patience: Option<Duration>,
        stop: &CancellationToken,
    ) -> Acquired {
        let hosts = hosts_of(source);
        let poll = (self.worker.lease / 3).clamp(Duration::from_millis(100), MAX_CLAIM_POLL);
        let asked = Instant::now();
        loop {
            match self.claim(&source.id, &hosts, tick).await {
                Ok(Claim::Granted { hosts: turns }) => {
                    self.take_over(&turns).await;
                    let lost = self.held().get(&source.id).map(|h| h.lost.clone());
                    return Acquired::Run(RunLease {
                        source: source.id.clone(),
                        tick,
                        lost: lost.unwrap_or_default(),
                    });
                }
                Ok(Claim::Done) => {
                    debug!(source = %source.id, "another worker ran this tick");
                    return Acquired::Done;
                }
                Ok(Claim::Busy { worker, until, .. }) => match patience {
                    Some(patience) if asked.elapsed() >= patience => {
                        return Acquired::Busy { worker, until };
                    }
                    Some(patience) if asked.elapsed() < poll => {
                        info!(source = %source.id, holder = %worker, until = %until,
                            wait_ms = patience.as_millis() as u64,
                            "held by another worker; waiting for it");
                    }
                    _ => debug!(source = %source.id, holder = %worker, until = %until,
                        "held by another worker; asking again"),
                },
                Err(error) => {
                    warn!(source = %source.id, %error, "cannot claim the source; asking again");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return Acquired::Stopped,
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    async fn claim(
        &self,
        source: &SourceId,
        hosts: &[String],
        tick: Option<DateTime<Utc>>,
    ) -> Result<Claim, String> {
        let _order = self.order.lock().await;
        let now = Utc::now();
        if self.held().contains_key(source) {
            // A run of this worker has it (a source named twice on the command line).
            return Ok(Claim::Busy {
                worker: self.worker.id.clone(),
                until: crate::store::lease_expiry(now, self.worker.lease),
                process: None,
            });
        }
        let answer = loop {
            let claim = ClaimRequest {
                source: source.clone(),
                hosts: hosts.to_vec(),
                worker: self.worker.id.clone(),
                tick,
                lease: self.worker.lease,
                now: Utc::now(),
                process: self.worker.process.clone(),
                dead_processes: self.dead_processes(),
            };
            match in_store(&self.store, move |store| store.claim_source(&claim)).await? {
                Claim::Busy {
                    worker, process, ..
                } if self.newly_dead(&worker, process.as_deref()) => {}
                answer => break answer,
            }
        };
        if let Claim::Granted { .. } = answer {
            let held = Held {
                hosts: hosts.to_vec(),
                lost: CancellationToken::new(),
            };
            self.held().insert(source.clone(), held);
        }
        Ok(answer)
    }

    /// Before the first request to hosts just claimed: the previous holder's delay, and
    /// every `Retry-After` any worker stored.
    async fn take_over(&self, turns: &[HostTurn]) {
        let fetcher = &self.worker.fetcher;
        for turn in turns {
            fetcher.take_over_host(turn);
        }
        match in_store(&self.store, |store| store.held_back()).await {
            Ok(held) => fetcher.honour_held_back(held),
            Err(error) => warn!(%error, "cannot read the stored Retry-After hold-backs"),
        }
    }

    /// Gives a run's claim back; `finished` when the run ended (its tick is done), not
    /// when it stopped short. Hosts no other run of this worker needs are freed, with
    /// when each may be asked next.
    pub(super) async fn release(&self, lease: RunLease, finished: bool) {
        let _order = self.order.lock().await;
        let free: Vec<HostTurn> = {
            let mut held = self.held();
            let Some(run) = held.remove(&lease.source) else {
                return;
            };
            let still: HashSet<&String> = held.values().flat_map(|h| &h.hosts).collect();
            run.hosts
                .iter()
                .filter(|h| !still.contains(h))
                .map(|h| self.worker.fetcher.host_turn(h))
                .collect()
        };
        let worker = self.worker.id.clone();
        let RunLease { source, tick, .. } = lease;
        let done = tick.filter(|_| finished);
        let released = {
            let source = source.clone();
            in_store(&self.store, move |store| {
                store.release_source(&source, &worker, done, &free)
            })
            .await
        };
        if let Err(error) = released {
            warn!(source = %source, %error, "cannot release the source; it is free when its lease runs out");
        }
    }

    async fn renew(&self) -> Result<(), String> {
        let _order = self.order.lock().await;
        let hosts: Vec<HostTurn> = {
            let held = self.held();
            if held.is_empty() {
                return Ok(());
            }
            let hosts: HashSet<&String> = held.values().flat_map(|h| &h.hosts).collect();
            hosts
                .into_iter()
                .map(|h| self.worker.fetcher.host_turn(h))
                .collect()
        };
        let worker = self.worker.id.clone();
        let until = crate::store::lease_expiry(Utc::now(), self.worker.lease);
        let kept: HashSet<SourceId> = in_store(&self.store, move |store| {
            store.renew_leases(&worker, &hosts, until)
        })
        .await?
        .into_iter()
        .collect();
        for (source, run) in self.held().iter() {
            if !kept.contains(source) && !run.lost.is_cancelled() {
                warn!(source = %source, worker = %self.worker.id,
                    "lease lost to another worker; stopping the run");
                self.lost.fetch_add(1, Ordering::Relaxed);
                run.lost.cancel();
            }
        }
        Ok(())
    }

    fn drop_all(&self) {
        for run in self.held().values() {
            if !run.lost.is_cancelled() {
                self.lost.fetch_add(1, Ordering::Relaxed);
                run.lost.cancel();
            }
        }
    }
}

/// Renews the leases of `claims` every third of the lease until `closed` or until the
/// claims are gone. A run whose lease another worker took (this one renewed too late)
/// is stopped; so is every run once renewals have failed for a whole lease.
async fn renew_while_open(claims: Weak<Claims>, closed: CancellationToken) {
    let Some(lease) = claims.upgrade().map(|c| c.worker.lease) else {
        return;
    };
    let mut last_renewed = Instant::now();
    loop {
        tokio::select! {
            _ = closed.cancelled() => return,
            _ = tokio::time::sleep(lease / 3) => {}
        }
        let Some(claims) = claims.upgrade() else {
            return;
        };
        let started = Instant::now();
        match claims.renew().await {
            Ok(()) => last_renewed = started,
            Err(error) if started - last_renewed > lease => {
                warn!(%error, "leases not renewed for a whole lease; stopping their runs");
                claims.drop_all();
            }
            Err(error) => warn!(%error, "cannot renew leases; trying again"),
        }
    }
}

/// The fetcher's view of this worker's hosts: the hosts its runs hold are asked with
/// the fetcher's own spacing, any other takes a slot in the store.
struct HostsOf(Weak<Claims>);

impl SharedHosts for HostsOf {
    fn holds(&self, host: &str) -> bool {
        // Without claims (the worker is gone) there is nothing to share.
        self.0.upgrade().is_none_or(|claims| {
            claims
                .held()
                .values()
                .any(|run| run.hosts.iter().any(|h| h == host))
        })
    }

    fn take_slot(
        &self,
        ask: SlotAsk,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<HostSlot, String>> + Send + '_>> {
        Box::pin(async move {
            let claims = self.0.upgrade().ok_or("the worker has stopped")?;
            loop {
                let request = SlotRequest {
                    host: ask.host.clone(),
                    url: ask.url.to_string(),
                    worker: claims.worker.id.clone(),
                    delay: ask.delay,
                    concurrency: ask.concurrency,
                    hold: ask.hold,
                    now: Utc::now(),
                    dead_processes: claims.dead_processes(),
                };
                let slot =
                    in_store(&claims.store, move |store| store.take_host_slot(&request)).await?;
                match slot {
                    HostSlot::Held {
                        worker, process, ..
                    } if claims.newly_dead(&worker, process.as_deref()) => {}
                    slot => return Ok(slot),
                }
            }
        })
    }

    fn end_slot(&self, ticket: i64) {
        let Some(claims) = self.0.upgrade() else {
            return;
        };
        // Not awaited: the request is over, and whoever asks next reads the end.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let ended = in_store(&claims.store, move |store| store.end_host_request(ticket)).await;
            if let Err(error) = ended {
                warn!(%error, "cannot end a host request in the store; it counts until its hold runs out");
            }
        });
    }
}
