//! Scheduling state in PostgreSQL: when each source is next due and the backoff after
//! its failures, and the `Retry-After` hold-backs per URL or host. Kept in the database
//! every worker shares, so that the claims of a later multi-worker scheduler can start
//! from it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::Transaction;

use super::pg;
use crate::model::{HeldBack, SourceId, SourceSchedule};
use crate::store::StoreError;
use crate::store::encoding::{from_millis, to_millis};

pub(super) fn schedule(
    tx: &mut Transaction<'_>,
    source: &SourceId,
) -> Result<SourceSchedule, StoreError> {
    let state = tx
        .query_opt(
            "SELECT failures, next_due, backoff_ms FROM source_state WHERE source = $1",
            &[&source.as_str()],
        )
        .map_err(pg("read source schedule"))?;
    let last_finished: Option<i64> = tx
        .query_opt(
            "SELECT finished_at FROM source_runs WHERE source = $1 ORDER BY rowid DESC LIMIT 1",
            &[&source.as_str()],
        )
        .map_err(pg("read source schedule"))?
        .map(|r| r.get(0));
    let (failures, next_due, backoff_ms): (i32, Option<i64>, Option<i64>) = state
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .unwrap_or_default();
    Ok(SourceSchedule {
        next_due: next_due.map(from_millis),
        failures: failures.max(0) as u32,
        backoff: backoff_ms.map(|ms| Duration::from_millis(ms.max(0) as u64)),
        last_finished: last_finished.map(from_millis),
    })
}

pub(super) fn save_next_due(
    tx: &mut Transaction<'_>,
    source: &SourceId,
    next_due: DateTime<Utc>,
    backoff: Option<Duration>,
) -> Result<(), StoreError> {
    let backoff_ms = backoff.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    tx.execute(
        "INSERT INTO source_state (source, failures, next_due, backoff_ms) VALUES ($1, 0, $2, $3)
         ON CONFLICT (source) DO UPDATE SET next_due = excluded.next_due,
             backoff_ms = excluded.backoff_ms",
        &[&source.as_str(), &to_millis(next_due), &backoff_ms],
    )
    .map_err(pg("save source schedule"))?;
    Ok(())
}

pub(super) fn held_back(tx: &mut Transaction<'_>) -> Result<Vec<HeldBack>, StoreError> {
    let rows = tx
        .query(
            "SELECT key, until FROM held_back WHERE until > $1 ORDER BY key",
            &[&to_millis(Utc::now())],
        )
        .map_err(pg("read hold-backs"))?;
    Ok(rows
        .iter()
        .map(|r| HeldBack {
            key: r.get(0),
            until: from_millis(r.get(1)),
        })
        .collect())
}

/// The latest `Retry-After` in force at `now` for any of `keys` (URLs or hosts).
pub(super) fn held_back_until(
    tx: &mut Transaction<'_>,
    keys: &[&str],
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let until: Option<i64> = tx
        .query_one(
            "SELECT max(until) FROM held_back WHERE key = ANY($1) AND until > $2",
            &[&keys, &to_millis(now)],
        )
        .map_err(pg("read hold-back"))?
        .get(0);
    Ok(until.map(from_millis))
}

pub(super) fn save_held_back(
    tx: &mut Transaction<'_>,
    held: &[HeldBack],
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM held_back WHERE until <= $1",
        &[&to_millis(Utc::now())],
    )
    .map_err(pg("forget passed hold-backs"))?;
    for HeldBack { key, until } in held {
        tx.execute(
            "INSERT INTO held_back (key, until) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET until = GREATEST(held_back.until, excluded.until)",
            &[key, &to_millis(*until)],
        )
        .map_err(pg("save hold-back"))?;
    }
    Ok(())
}
