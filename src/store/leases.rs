//! Leases, the decision both backends share: given the stored rows of a source and of
//! its hosts, whether a worker's claim is granted, busy or already done, and what each
//! host's previous holder left for the next one. The backends only read and write the
//! rows (`lease_state` in each); no SQL here.
//!
//! A lease is a row with a holder and an expiry rather than a row lock (`FOR UPDATE
//! SKIP LOCKED`) held for the run: a run lasts minutes and makes many store calls on
//! pooled connections, a row lock would pin one connection per run and vanish with a
//! dropped connection, and a row with an expiry is visible to `/healthz`. Claims are
//! short transactions that lock the rows they decide on.

use chrono::{DateTime, Utc};

use crate::model::{Claim, ClaimRequest, HostTurn};

/// A holder as stored: who, and until when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Holder {
    /// `None` when released.
    pub worker: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Holder {
    /// Whether another worker than `me` holds it at `now`.
    fn held_by_other(&self, me: &str, now: DateTime<Utc>) -> Option<(&str, DateTime<Utc>)> {
        let worker = self.worker.as_deref().filter(|w| *w != me)?;
        let until = self.expires_at.filter(|t| *t > now)?;
        Some((worker, until))
    }

    /// Another worker held it and let it run out without releasing it.
    fn abandoned_by_other(&self, me: &str, now: DateTime<Utc>) -> bool {
        self.worker.as_deref().is_some_and(|w| w != me) && self.expires_at.is_none_or(|t| t <= now)
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
    // Ticks are stored in milliseconds.
    let tick = claim.tick.timestamp_millis();
    if source
        .done_tick
        .is_some_and(|done| done.timestamp_millis() >= tick)
    {
        return Claim::Done;
    }
    let (me, now) = (claim.worker.as_str(), claim.now);
    let busy = std::iter::once(&source.holder)
        .chain(hosts.iter().map(|h| &h.holder))
        .filter_map(|holder| holder.held_by_other(me, now))
        .max_by_key(|(_, until)| *until);
    if let Some((worker, until)) = busy {
        return Claim::Busy {
            worker: worker.to_owned(),
            until,
        };
    }
    Claim::Granted {
        hosts: hosts
            .iter()
            .map(|row| HostTurn {
                host: row.host.clone(),
                not_before: row.next_request_at,
                abandoned: row.holder.abandoned_by_other(me, now),
            })
            .collect(),
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
            tick: at(tick),
            lease: std::time::Duration::from_secs(30),
            now: at(now),
        }
    }

    fn held(worker: &str, until: i64) -> Holder {
        Holder {
            worker: Some(worker.into()),
            expires_at: Some(at(until)),
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
    }
}
