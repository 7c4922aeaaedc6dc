//! Leases, the decision both backends share: given the stored rows of a source and of
//! its hosts, whether a worker's claim is granted, busy or already done, and what each
//! host's previous holder left for the next one; and, for a request to a host no run of
//! the worker holds (an article link elsewhere), which time slot it gets. The backends
//! only read and write the rows (`lease_state` in each); no SQL here, and no look at
//! the machine's processes: the asker says which holders it found dead.
//!
//! A lease is a row with a holder and an expiry rather than a row lock (`FOR UPDATE
//! SKIP LOCKED`) held for the run: a run lasts minutes and makes many store calls on
//! pooled connections, a row lock would pin one connection per run and vanish with a
//! dropped connection, and a row with an expiry is visible to `/healthz`. Claims are
//! short transactions that lock the rows they decide on.

use chrono::{DateTime, Utc};

use crate::model::{Claim, ClaimRequest, HostSlot, HostTurn, SlotRequest};

/// A holder as stored: who, until when, and as which process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Holder {
    /// `None` when released.
    pub worker: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// See [`ClaimRequest::process`].
    pub process: Option<String>,
}

/// Who asks, when, and which processes it knows dead.
struct Asker<'a> {
    worker: &'a str,
    now: DateTime<Utc>,
    dead: &'a [String],
}

impl Holder {
    /// Whether another worker than the asker holds it now: its lease has not run out
    /// and its process is not one the asker found dead.
    fn held_by_other(&self, asker: &Asker<'_>) -> Option<(&str, DateTime<Utc>)> {
        let worker = self.worker.as_deref().filter(|w| *w != asker.worker)?;
        let until = self.expires_at.filter(|t| *t > asker.now)?;
        if self
            .process
            .as_ref()
            .is_some_and(|p| asker.dead.contains(p))
        {
            return None;
        }
        Some((worker, until))
    }

    /// Another worker held it and left without releasing it: it let the lease run out,
    /// or its process died.
    fn abandoned_by_other(&self, asker: &Asker<'_>) -> bool {
        self.worker.as_deref().is_some_and(|w| w != asker.worker)
            && self.held_by_other(asker).is_none()
    }
}

/// A source's lease row (absent: never claimed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SourceRow {
    pub holder: Holder,
    /// The latest due tick a run finished for.
    pub done_tick: Option<DateTime<Utc>>,
}

/// A host's lease row (absent: never claimed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostRow {
    pub host: String,
    pub holder: Holder,
    pub next_request_at: Option<DateTime<Utc>>,
}

/// Decides a claim on the rows read (and locked) in the claim's transaction. On
/// [`Claim::Granted`] the caller writes the claimer as holder of the source and of
/// every host, until `claim.now + claim.lease`.
pub(crate) fn decide(claim: &ClaimRequest, source: &SourceRow, hosts: &[HostRow]) -> Claim {
    // Ticks are stored in milliseconds. A run by hand is for no tick: never done.
    if let (Some(tick), Some(done)) = (claim.tick, source.done_tick)
        && done.timestamp_millis() >= tick.timestamp_millis()
    {
        return Claim::Done;
    }
    let asker = Asker {
        worker: &claim.worker,
        now: claim.now,
        dead: &claim.dead_processes,
    };
    let busy = std::iter::once(&source.holder)
        .chain(hosts.iter().map(|h| &h.holder))
        .filter_map(|holder| Some((holder.held_by_other(&asker)?, holder)))
        .max_by_key(|((_, until), _)| *until);
    if let Some(((worker, until), holder)) = busy {
        return Claim::Busy {
            worker: worker.to_owned(),
            until,
            process: holder.process.clone(),
        };
    }
    Claim::Granted {
        hosts: hosts
            .iter()
            .map(|row| HostTurn {
                host: row.host.clone(),
                not_before: row.next_request_at,
                abandoned: row.holder.abandoned_by_other(&asker),
            })
            .collect(),
    }
}

/// A request in flight on a host, taken through a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InFlight {
    pub worker: String,
    /// When it stops counting, ended or not.
    pub ends_at: DateTime<Utc>,
}

/// What a slot request got, and what the caller writes for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SlotDecision {
    /// No slot now: the answer as it is, nothing written.
    Refused(HostSlot),
    /// A slot at `at`: the caller stores `next_request_at` as the host's next free time
    /// and a request in flight until `ends_at`, whose id is the slot's ticket.
    Taken {
        at: DateTime<Utc>,
        next_request_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    },
}

/// Decides a request to `row`'s host by a worker that holds no lease on it, on the row
/// read (and locked) in the request's transaction, the latest `Retry-After` stored for
/// the host or the address (`held_back`) and the requests in flight on the host: while
/// another worker holds the host it is that worker's alone, while a `Retry-After` holds
/// it back nobody gets a slot, and while as many requests as the concurrency allows are
/// in flight the next waits for one to end. Otherwise the request gets the host's next
/// free time, one delay before the next, so that each worker asking gets a slot of its
/// own.
pub(crate) fn host_slot(
    row: &HostRow,
    held_back: Option<DateTime<Utc>>,
    in_flight: &[InFlight],
    request: &SlotRequest,
) -> SlotDecision {
    let asker = Asker {
        worker: &request.worker,
        now: request.now,
        dead: &request.dead_processes,
    };
    if let Some((worker, until)) = row.holder.held_by_other(&asker) {
        let (worker, process) = (worker.to_owned(), row.holder.process.clone());
        return SlotDecision::Refused(HostSlot::Held {
            worker,
            until,
            process,
        });
    }
    if let Some(until) = held_back.filter(|until| *until > request.now) {
        return SlotDecision::Refused(HostSlot::HeldBack { until });
    }
    let counting: Vec<&InFlight> = in_flight
        .iter()
        .filter(|r| r.ends_at > request.now)
        .collect();
    if counting.len() >= request.concurrency.max(1)
        && let Some(first) = counting.iter().min_by_key(|r| r.ends_at)
    {
        return SlotDecision::Refused(HostSlot::Full {
            worker: first.worker.clone(),
            until: first.ends_at,
        });
    }
    let at = row
        .next_request_at
        .map_or(request.now, |next| next.max(request.now));
    SlotDecision::Taken {
        at,
        next_request_at: expiry(at, request.delay),
        ends_at: expiry(at, request.hold),
    }
}

/// When a lease taken at `now` runs out.
pub fn expiry(claim_now: DateTime<Utc>, lease: std::time::Duration) -> DateTime<Utc> {
    claim_now + chrono::Duration::from_std(lease).unwrap_or(chrono::TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SourceId;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn claim(worker: &str, tick: i64, now: i64) -> ClaimRequest {
        ClaimRequest {
            source: SourceId::from("news"),
            hosts: vec!["a:80".into()],
            worker: worker.into(),
            tick: Some(at(tick)),
            lease: std::time::Duration::from_secs(30),
            now: at(now),
            process: None,
            dead_processes: Vec::new(),
        }
    }

    fn held(worker: &str, until: i64) -> Holder {
        Holder {
            worker: Some(worker.into()),
            expires_at: Some(at(until)),
            process: Some(format!("{worker}-process")),
        }
    }

    fn host(holder: Holder) -> HostRow {
        HostRow {
            host: "a:80".into(),
            holder,
            next_request_at: Some(at(5)),
        }
    }

    #[test]
    fn a_claim_waits_for_a_live_holder_of_the_source_or_a_host() {
        let free = SourceRow::default();
        let busy = Claim::Busy {
            worker: "w2".into(),
            until: at(40),
            process: Some("w2-process".into()),
        };
        assert_eq!(
            decide(&claim("w1", 0, 10), &free, &[host(held("w2", 40))]),
            busy
        );
        let source = SourceRow {
            holder: held("w2", 40),
            done_tick: None,
        };
        assert_eq!(
            decide(&claim("w1", 0, 10), &source, &[host(Holder::default())]),
            busy
        );
    }

    #[test]
    fn a_claim_is_granted_on_free_own_or_expired_rows() {
        let free = SourceRow::default();
        let granted = |abandoned| Claim::Granted {
            hosts: vec![HostTurn {
                host: "a:80".into(),
                not_before: Some(at(5)),
                abandoned,
            }],
        };
        assert_eq!(
            decide(&claim("w1", 0, 10), &free, &[host(Holder::default())]),
            granted(false)
        );
        assert_eq!(
            decide(&claim("w1", 0, 10), &free, &[host(held("w1", 40))]),
            granted(false),
            "its own host"
        );
        assert_eq!(
            decide(&claim("w1", 0, 50), &free, &[host(held("w2", 40))]),
            granted(true),
            "a dead worker's host"
        );
    }

    #[test]
    fn a_tick_finished_by_anyone_is_done() {
        let source = SourceRow {
            holder: Holder::default(),
            done_tick: Some(at(0)),
        };
        let hosts = [host(Holder::default())];
        assert_eq!(decide(&claim("w1", 0, 10), &source, &hosts), Claim::Done);
        assert!(matches!(
            decide(&claim("w1", 60, 70), &source, &hosts),
            Claim::Granted { .. }
        ));
        let by_hand = ClaimRequest {
            tick: None,
            ..claim("w1", 0, 10)
        };
        assert!(
            matches!(decide(&by_hand, &source, &hosts), Claim::Granted { .. }),
            "a run by hand is for no tick"
        );
    }

    #[test]
    fn a_holder_found_dead_holds_nothing_and_leaves_its_hosts_abandoned() {
        let source = SourceRow {
            holder: held("w2", 40),
            done_tick: None,
        };
        let knowing = ClaimRequest {
            dead_processes: vec!["w2-process".into()],
            ..claim("w1", 0, 10)
        };
        let answer = decide(&knowing, &source, &[host(held("w2", 40))]);
        assert_eq!(
            answer,
            Claim::Granted {
                hosts: vec![HostTurn {
                    host: "a:80".into(),
                    not_before: Some(at(5)),
                    abandoned: true,
                }]
            }
        );
        let other_dead = ClaimRequest {
            dead_processes: vec!["w3-process".into()],
            ..claim("w1", 0, 10)
        };
        assert!(
            matches!(decide(&other_dead, &source, &[]), Claim::Busy { .. }),
            "another process's death frees nothing"
        );
    }

    fn slot(worker: &str, now: i64) -> SlotRequest {
        SlotRequest {
            host: "a:80".into(),
            url: "http://a/x".into(),
            worker: worker.into(),
            delay: std::time::Duration::from_secs(2),
            concurrency: 1,
            hold: std::time::Duration::from_secs(10),
            now: at(now),
            dead_processes: Vec::new(),
        }
    }

    #[test]
    fn a_host_slot_follows_the_last_one_and_waits_for_a_holder() {
        let row = host(Holder::default());
        assert_eq!(
            host_slot(&row, None, &[], &slot("w1", 0)),
            taken(5),
            "after the last request's delay"
        );
        assert_eq!(
            host_slot(&row, None, &[], &slot("w1", 9)),
            taken(9),
            "now, when the host has been quiet"
        );
        let busy = host_slot(&host(held("w2", 40)), None, &[], &slot("w1", 10));
        assert_eq!(
            busy,
            SlotDecision::Refused(HostSlot::Held {
                worker: "w2".into(),
                until: at(40),
                process: Some("w2-process".into()),
            })
        );
        let own = host_slot(&host(held("w1", 40)), None, &[], &slot("w1", 10));
        assert_eq!(own, taken(10));
        let knowing = SlotRequest {
            dead_processes: vec!["w2-process".into()],
            ..slot("w1", 10)
        };
        let after_death = host_slot(&host(held("w2", 40)), None, &[], &knowing);
        assert_eq!(after_death, taken(10), "its holder died");
    }

    #[test]
    fn no_host_slot_is_given_before_a_stored_retry_after() {
        let row = host(Holder::default());
        assert_eq!(
            host_slot(&row, Some(at(30)), &[], &slot("w1", 10)),
            SlotDecision::Refused(HostSlot::HeldBack { until: at(30) })
        );
        assert_eq!(
            host_slot(&row, Some(at(30)), &[], &slot("w1", 31)),
            taken(31),
            "once it has passed"
        );
        let busy = host_slot(&host(held("w2", 40)), Some(at(30)), &[], &slot("w1", 10));
        assert!(
            matches!(busy, SlotDecision::Refused(HostSlot::Held { .. })),
            "a holder first"
        );
    }

    #[test]
    fn no_host_slot_is_given_while_the_concurrency_is_in_flight() {
        let row = host(Holder::default());
        let in_flight = |worker: &str, ends: i64| InFlight {
            worker: worker.into(),
            ends_at: at(ends),
        };
        let two = [in_flight("w3", 25), in_flight("w2", 20)];
        assert_eq!(
            host_slot(&row, None, &two[..1], &slot("w1", 10)),
            SlotDecision::Refused(HostSlot::Full {
                worker: "w3".into(),
                until: at(25)
            })
        );
        let two_at_once = SlotRequest {
            concurrency: 2,
            ..slot("w1", 10)
        };
        assert_eq!(
            host_slot(&row, None, &two[..1], &two_at_once),
            taken(10),
            "room for one more"
        );
        assert_eq!(
            host_slot(&row, None, &two, &two_at_once),
            SlotDecision::Refused(HostSlot::Full {
                worker: "w2".into(),
                until: at(20)
            }),
            "the one that ends first"
        );
        assert_eq!(
            host_slot(&row, None, &two, &slot("w1", 26)),
            taken(26),
            "requests past their end count no more (their workers died)"
        );
    }

    /// A slot at `secs`, the next one delay (2 s) later, in flight for its hold (10 s).
    fn taken(secs: i64) -> SlotDecision {
        SlotDecision::Taken {
            at: at(secs),
            next_request_at: at(secs + 2),
            ends_at: at(secs + 10),
        }
    }
}
