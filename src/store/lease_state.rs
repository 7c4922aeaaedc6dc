//! Leases in SQLite: the rows of `source_leases` and `host_leases`, read and written
//! for the decision in `leases`. One process uses a SQLite file, so a claim is only
//! ever contended by that process's own runs; the rows are kept all the same, so the
//! scheduler has one way of running on both backends.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

use super::StoreError;
use super::encoding::{from_millis, sql, to_millis};
use super::leases::{self, Holder, HostRow, InFlight, SlotDecision, SourceRow};
use super::schedule_state;
use crate::model::{Claim, ClaimRequest, HostSlot, HostTurn, Lease, SlotRequest, SourceId};

/// A holder from the columns `worker, expires_at, process` starting at `first`.
fn holder(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Holder> {
    Ok(Holder {
        worker: r.get(first)?,
        expires_at: r.get::<_, Option<i64>>(first + 1)?.map(from_millis),
        process: r.get(first + 2)?,
    })
}

/// Claims in an immediate transaction: no other writer runs between read and write.
pub(crate) fn claim(tx: &Transaction<'_>, claim: &ClaimRequest) -> Result<Claim, StoreError> {
    let source = tx
        .query_row(
            "SELECT worker, expires_at, process, done_tick FROM source_leases WHERE source = ?1",
            [claim.source.as_str()],
            |r| {
                Ok(SourceRow {
                    holder: holder(r, 0)?,
                    done_tick: r.get::<_, Option<i64>>(3)?.map(from_millis),
                })
            },
        )
        .optional()
        .map_err(sql("read source lease"))?
        .unwrap_or_default();
    let hosts = claim
        .hosts
        .iter()
        .map(|host| host_row(tx, host))
        .collect::<Result<Vec<_>, _>>()?;
    let decision = leases::decide(claim, &source, &hosts);
    if let Claim::Granted { .. } = decision {
        hold(tx, claim)?;
    }
    Ok(decision)
}

/// A host's lease row, a free one when it has none.
fn host_row(tx: &Transaction<'_>, host: &str) -> Result<HostRow, StoreError> {
    let row = tx
        .query_row(
            "SELECT worker, expires_at, process, next_request_at FROM host_leases
             WHERE host = ?1",
            [host],
            |r| {
                Ok(HostRow {
                    host: host.to_owned(),
                    holder: holder(r, 0)?,
                    next_request_at: r.get::<_, Option<i64>>(3)?.map(from_millis),
                })
            },
        )
        .optional()
        .map_err(sql("read host lease"))?;
    Ok(row.unwrap_or_else(|| HostRow {
        host: host.to_owned(),
        holder: Holder::default(),
        next_request_at: None,
    }))
}

/// Takes the next slot of a host in an immediate transaction (see
/// [`leases::host_slot`]).
pub(crate) fn host_slot(
    tx: &Transaction<'_>,
    request: &SlotRequest,
) -> Result<HostSlot, StoreError> {
    let row = host_row(tx, &request.host)?;
    let keys = [request.host.as_str(), request.url.as_str()];
    let held_back = schedule_state::held_back_until(tx, &keys, request.now)?;
    let in_flight = in_flight(tx, &request.host, request.now)?;
    let (at, next_request_at, ends_at) =
        match leases::host_slot(&row, held_back, &in_flight, request) {
            SlotDecision::Refused(answer) => return Ok(answer),
            SlotDecision::Taken {
                at,
                next_request_at,
                ends_at,
            } => (at, next_request_at, ends_at),
        };
    tx.execute(
        "INSERT INTO host_leases (host, next_request_at) VALUES (?1, ?2)
         ON CONFLICT (host) DO UPDATE SET next_request_at = excluded.next_request_at",
        params![request.host, to_millis(next_request_at)],
    )
    .map_err(sql("take host slot"))?;
    let ticket = tx
        .query_row(
            "INSERT INTO host_requests (host, worker, ends_at) VALUES (?1, ?2, ?3)
             RETURNING id",
            params![request.host, request.worker, to_millis(ends_at)],
            |r| r.get(0),
        )
        .map_err(sql("take host slot"))?;
    Ok(HostSlot::At { at, ticket })
}

/// The requests in flight on `host` at `now`, after forgetting those past their end.
fn in_flight(
    tx: &Transaction<'_>,
    host: &str,
    now: DateTime<Utc>,
) -> Result<Vec<InFlight>, StoreError> {
    tx.execute(
        "DELETE FROM host_requests WHERE host = ?1 AND ends_at <= ?2",
        params![host, to_millis(now)],
    )
    .map_err(sql("forget ended host requests"))?;
    let mut stmt = tx
        .prepare("SELECT worker, ends_at FROM host_requests WHERE host = ?1")
        .map_err(sql("read host requests"))?;
    stmt.query_map([host], |r| {
        Ok(InFlight {
            worker: r.get(0)?,
            ends_at: from_millis(r.get(1)?),
        })
    })
    .map_err(sql("read host requests"))?
    .collect::<Result<_, _>>()
    .map_err(sql("read host requests"))
}

/// The request of a slot's `ticket` ended.
pub(crate) fn end_host_request(tx: &Transaction<'_>, ticket: i64) -> Result<(), StoreError> {
    tx.execute("DELETE FROM host_requests WHERE id = ?1", [ticket])
        .map_err(sql("end host request"))?;
    Ok(())
}

/// Ends every lease `worker` holds as `process`, as if it had run out: its process
/// died, and whoever takes its hosts next waits one delay first.
pub(crate) fn expire(tx: &Transaction<'_>, worker: &str, process: &str) -> Result<(), StoreError> {
    for table in ["source_leases", "host_leases"] {
        tx.execute(
            &format!("UPDATE {table} SET expires_at = 0 WHERE worker = ?1 AND process = ?2"),
            params![worker, process],
        )
        .map_err(sql("expire leases of a dead worker"))?;
    }
    Ok(())
}

fn hold(tx: &Transaction<'_>, claim: &ClaimRequest) -> Result<(), StoreError> {
    let until = to_millis(leases::expiry(claim.now, claim.lease));
    tx.execute(
        "INSERT INTO source_leases (source, worker, tick, expires_at, process)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (source) DO UPDATE SET worker = excluded.worker, tick = excluded.tick,
             expires_at = excluded.expires_at, process = excluded.process",
        params![
            claim.source.as_str(),
            claim.worker,
            claim.tick.map(to_millis),
            until,
            claim.process
        ],
    )
    .map_err(sql("hold source lease"))?;
    for host in &claim.hosts {
        tx.execute(
            "INSERT INTO host_leases (host, worker, expires_at, process) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (host) DO UPDATE SET worker = excluded.worker,
                 expires_at = excluded.expires_at, process = excluded.process",
            params![host, claim.worker, until, claim.process],
        )
        .map_err(sql("hold host lease"))?;
    }
    Ok(())
}

pub(crate) fn renew(
    tx: &Transaction<'_>,
    worker: &str,
    hosts: &[HostTurn],
    until: DateTime<Utc>,
) -> Result<Vec<SourceId>, StoreError> {
    let until = to_millis(until);
    tx.execute(
        "UPDATE host_leases SET expires_at = ?2 WHERE worker = ?1",
        params![worker, until],
    )
    .map_err(sql("renew host leases"))?;
    for turn in hosts {
        tx.execute(
            "UPDATE host_leases SET next_request_at = coalesce(?3, next_request_at)
             WHERE host = ?1 AND worker = ?2",
            params![turn.host, worker, turn.not_before.map(to_millis)],
        )
        .map_err(sql("renew host leases"))?;
    }
    let mut stmt = tx
        .prepare("UPDATE source_leases SET expires_at = ?2 WHERE worker = ?1 RETURNING source")
        .map_err(sql("renew source leases"))?;
    stmt.query_map(params![worker, until], |r| Ok(SourceId(r.get(0)?)))
        .map_err(sql("renew source leases"))?
        .collect::<Result<_, _>>()
        .map_err(sql("renew source leases"))
}

pub(crate) fn release(
    tx: &Transaction<'_>,
    source: &SourceId,
    worker: &str,
    finished: Option<DateTime<Utc>>,
    free: &[HostTurn],
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE source_leases SET worker = NULL, expires_at = NULL,
             done_tick = coalesce(?3, done_tick)
         WHERE source = ?1 AND worker = ?2",
        params![source.as_str(), worker, finished.map(to_millis)],
    )
    .map_err(sql("release source lease"))?;
    for turn in free {
        tx.execute(
            "UPDATE host_leases SET worker = NULL, expires_at = NULL,
                 next_request_at = coalesce(?3, next_request_at)
             WHERE host = ?1 AND worker = ?2",
            params![turn.host, worker, turn.not_before.map(to_millis)],
        )
        .map_err(sql("release host lease"))?;
    }
    Ok(())
}

pub(crate) fn held(tx: &Transaction<'_>, now: DateTime<Utc>) -> Result<Vec<Lease>, StoreError> {
    let mut stmt = tx
        .prepare(
            "SELECT source, worker, expires_at, process FROM source_leases
             WHERE worker IS NOT NULL AND expires_at > ?1 ORDER BY source",
        )
        .map_err(sql("read leases"))?;
    stmt.query_map([to_millis(now)], |r| {
        Ok(Lease {
            source: SourceId(r.get(0)?),
            worker: r.get(1)?,
            expires_at: from_millis(r.get(2)?),
            process: r.get(3)?,
        })
    })
    .map_err(sql("read leases"))?
    .collect::<Result<_, _>>()
    .map_err(sql("read leases"))
}
