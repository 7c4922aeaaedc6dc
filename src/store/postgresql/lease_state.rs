//! Leases in PostgreSQL: the rows of `source_leases` and `host_leases`, read and
//! written for the decision in `store::leases`. A claim locks the source's row and its
//! hosts' rows (`FOR UPDATE`, hosts in sorted order so two claims never wait on each
//! other in a circle) for its short transaction, so two workers claiming sources of
//! one host at once are decided one after the other.

use chrono::{DateTime, Utc};
use postgres::Transaction;

use super::{pg, schedule_state};
use crate::model::{Claim, ClaimRequest, HostSlot, HostTurn, Lease, SlotRequest, SourceId};
use crate::store::StoreError;
use crate::store::encoding::{from_millis, to_millis};
use crate::store::leases::{self, Holder, HostRow, InFlight, SlotDecision, SourceRow};

fn holder(row: &postgres::Row) -> Holder {
    Holder {
        worker: row.get("worker"),
        expires_at: row.get::<_, Option<i64>>("expires_at").map(from_millis),
        process: row.get("process"),
    }
}

pub(super) fn claim(tx: &mut Transaction<'_>, claim: &ClaimRequest) -> Result<Claim, StoreError> {
    // Rows exist before they are locked: a first claim has something to wait on.
    tx.execute(
        "INSERT INTO source_leases (source) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&claim.source.as_str()],
    )
    .map_err(pg("add source lease"))?;
    tx.execute(
        "INSERT INTO host_leases (host) SELECT unnest($1::text[]) ORDER BY 1
         ON CONFLICT DO NOTHING",
        &[&claim.hosts],
    )
    .map_err(pg("add host leases"))?;
    let row = tx
        .query_one(
            "SELECT worker, expires_at, process, done_tick FROM source_leases WHERE source = $1
             FOR UPDATE",
            &[&claim.source.as_str()],
        )
        .map_err(pg("lock source lease"))?;
    let source = SourceRow {
        holder: holder(&row),
        done_tick: row.get::<_, Option<i64>>("done_tick").map(from_millis),
    };
    let hosts: Vec<HostRow> = tx
        .query(
            "SELECT host, worker, expires_at, process, next_request_at FROM host_leases
             WHERE host = ANY($1) ORDER BY host FOR UPDATE",
            &[&claim.hosts],
        )
        .map_err(pg("lock host leases"))?
        .iter()
        .map(|row| HostRow {
            host: row.get("host"),
            holder: holder(row),
            next_request_at: row
                .get::<_, Option<i64>>("next_request_at")
                .map(from_millis),
        })
        .collect();
    let decision = leases::decide(claim, &source, &hosts);
    if let Claim::Granted { .. } = decision {
        hold(tx, claim)?;
    }
    Ok(decision)
}

/// Takes the next slot of a host (see [`leases::host_slot`]), its row locked while
/// deciding so that two workers asking at once get one slot each.
pub(super) fn host_slot(
    tx: &mut Transaction<'_>,
    request: &SlotRequest,
) -> Result<HostSlot, StoreError> {
    let host = request.host.as_str();
    tx.execute(
        "INSERT INTO host_leases (host) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&host],
    )
    .map_err(pg("add host lease"))?;
    let row = tx
        .query_one(
            "SELECT worker, expires_at, process, next_request_at FROM host_leases
             WHERE host = $1 FOR UPDATE",
            &[&host],
        )
        .map_err(pg("lock host lease"))?;
    let row = HostRow {
        host: host.to_owned(),
        holder: holder(&row),
        next_request_at: row
            .get::<_, Option<i64>>("next_request_at")
            .map(from_millis),
    };
    let keys = [host, request.url.as_str()];
    let held_back = schedule_state::held_back_until(tx, &keys, request.now)?;
    let in_flight = in_flight(tx, host, request.now)?;
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
        "UPDATE host_leases SET next_request_at = $2 WHERE host = $1",
        &[&host, &to_millis(next_request_at)],
    )
    .map_err(pg("take host slot"))?;
    let ticket = tx
        .query_one(
            "INSERT INTO host_requests (host, worker, ends_at) VALUES ($1, $2, $3)
             RETURNING id",
            &[&host, &request.worker, &to_millis(ends_at)],
        )
        .map_err(pg("take host slot"))?
        .get(0);
    Ok(HostSlot::At { at, ticket })
}

/// The requests in flight on `host` at `now`, after forgetting those past their end;
/// the caller holds the host's row locked.
fn in_flight(
    tx: &mut Transaction<'_>,
    host: &str,
    now: DateTime<Utc>,
) -> Result<Vec<InFlight>, StoreError> {
    tx.execute(
        "DELETE FROM host_requests WHERE host = $1 AND ends_at <= $2",
        &[&host, &to_millis(now)],
    )
    .map_err(pg("forget ended host requests"))?;
    Ok(tx
        .query(
            "SELECT worker, ends_at FROM host_requests WHERE host = $1",
            &[&host],
        )
        .map_err(pg("read host requests"))?
        .iter()
        .map(|r| InFlight {
            worker: r.get(0),
            ends_at: from_millis(r.get(1)),
        })
        .collect())
}

/// The request of a slot's `ticket` ended.
pub(super) fn end_host_request(tx: &mut Transaction<'_>, ticket: i64) -> Result<(), StoreError> {
    tx.execute("DELETE FROM host_requests WHERE id = $1", &[&ticket])
        .map_err(pg("end host request"))?;
    Ok(())
}

/// Ends every lease `worker` holds as `process`, as if it had run out: its process
/// died, and whoever takes its hosts next waits one delay first.
pub(super) fn expire(
    tx: &mut Transaction<'_>,
    worker: &str,
    process: &str,
) -> Result<(), StoreError> {
    for table in ["source_leases", "host_leases"] {
        tx.execute(
            &format!("UPDATE {table} SET expires_at = 0 WHERE worker = $1 AND process = $2"),
            &[&worker, &process],
        )
        .map_err(pg("expire leases of a dead worker"))?;
    }
    Ok(())
}

fn hold(tx: &mut Transaction<'_>, claim: &ClaimRequest) -> Result<(), StoreError> {
    let until = to_millis(leases::expiry(claim.now, claim.lease));
    tx.execute(
        "UPDATE source_leases SET worker = $2, tick = $3, expires_at = $4, process = $5
         WHERE source = $1",
        &[
            &claim.source.as_str(),
            &claim.worker,
            &claim.tick.map(to_millis),
            &until,
            &claim.process,
        ],
    )
    .map_err(pg("hold source lease"))?;
    tx.execute(
        "UPDATE host_leases SET worker = $2, expires_at = $3, process = $4
         WHERE host = ANY($1)",
        &[&claim.hosts, &claim.worker, &until, &claim.process],
    )
    .map_err(pg("hold host leases"))?;
    Ok(())
}

pub(super) fn renew(
    tx: &mut Transaction<'_>,
    worker: &str,
    hosts: &[HostTurn],
    until: DateTime<Utc>,
) -> Result<Vec<SourceId>, StoreError> {
    let until = to_millis(until);
    tx.execute(
        "UPDATE host_leases SET expires_at = $2 WHERE worker = $1",
        &[&worker, &until],
    )
    .map_err(pg("renew host leases"))?;
    for turn in hosts {
        tx.execute(
            "UPDATE host_leases SET next_request_at = coalesce($3, next_request_at)
             WHERE host = $1 AND worker = $2",
            &[&turn.host, &worker, &turn.not_before.map(to_millis)],
        )
        .map_err(pg("renew host leases"))?;
    }
    Ok(tx
        .query(
            "UPDATE source_leases SET expires_at = $2 WHERE worker = $1 RETURNING source",
            &[&worker, &until],
        )
        .map_err(pg("renew source leases"))?
        .iter()
        .map(|r| SourceId(r.get(0)))
        .collect())
}

pub(super) fn release(
    tx: &mut Transaction<'_>,
    source: &SourceId,
    worker: &str,
    finished: Option<DateTime<Utc>>,
    free: &[HostTurn],
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE source_leases SET worker = NULL, expires_at = NULL,
             done_tick = coalesce($3, done_tick)
         WHERE source = $1 AND worker = $2",
        &[&source.as_str(), &worker, &finished.map(to_millis)],
    )
    .map_err(pg("release source lease"))?;
    for turn in free {
        tx.execute(
            "UPDATE host_leases SET worker = NULL, expires_at = NULL,
                 next_request_at = coalesce($3, next_request_at)
             WHERE host = $1 AND worker = $2",
            &[&turn.host, &worker, &turn.not_before.map(to_millis)],
        )
        .map_err(pg("release host lease"))?;
    }
    Ok(())
}

pub(super) fn held(tx: &mut Transaction<'_>, now: DateTime<Utc>) -> Result<Vec<Lease>, StoreError> {
    Ok(tx
        .query(
            "SELECT source, worker, expires_at, process FROM source_leases
             WHERE worker IS NOT NULL AND expires_at > $1 ORDER BY source",
            &[&to_millis(now)],
        )
        .map_err(pg("read leases"))?
        .iter()
        .map(|r| Lease {
            source: SourceId(r.get(0)),
            worker: r.get(1),
            expires_at: from_millis(r.get(2)),
            process: r.get(3),
        })
        .collect())
}
