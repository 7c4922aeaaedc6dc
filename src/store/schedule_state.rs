//! Scheduling state in SQLite: when each source is next due and the backoff after its
//! failures, and the `Retry-After` hold-backs per URL or host, so that a restart
//! neither retries a failing source early nor asks a host that said to wait. The
//! failure count itself is kept with the runs (`fetch_state`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

use super::StoreError;
use super::encoding::{from_millis, sql, to_millis};
use crate::model::{HeldBack, SourceId, SourceSchedule};

pub(crate) fn schedule(
    tx: &Transaction<'_>,
    source: &SourceId,
) -> Result<SourceSchedule, StoreError> {
    let state: Option<(u32, Option<i64>, Option<i64>)> = tx
        .query_row(
            "SELECT failures, next_due, backoff_ms FROM source_state WHERE source = ?1",
            [source.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(sql("read source schedule"))?;
    let last_finished: Option<i64> = tx
        .query_row(
            "SELECT finished_at FROM source_runs WHERE source = ?1 ORDER BY rowid DESC LIMIT 1",
            [source.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("read source schedule"))?;
    let (failures, next_due, backoff_ms) = state.unwrap_or_default();
    Ok(SourceSchedule {
        next_due: next_due.map(from_millis),
        failures,
        backoff: backoff_ms.map(|ms| Duration::from_millis(ms.max(0) as u64)),
        last_finished: last_finished.map(from_millis),
    })
}

pub(crate) fn save_next_due(
    tx: &Transaction<'_>,
    source: &SourceId,
    next_due: DateTime<Utc>,
    backoff: Option<Duration>,
) -> Result<(), StoreError> {
    let backoff_ms = backoff.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    tx.execute(
        "INSERT INTO source_state (source, failures, next_due, backoff_ms) VALUES (?1, 0, ?2, ?3)
         ON CONFLICT (source) DO UPDATE SET next_due = excluded.next_due,
             backoff_ms = excluded.backoff_ms",
        params![source.as_str(), to_millis(next_due), backoff_ms],
    )
    .map_err(sql("save source schedule"))?;
    Ok(())
}

pub(crate) fn held_back(tx: &Transaction<'_>) -> Result<Vec<HeldBack>, StoreError> {
    let mut stmt = tx
        .prepare("SELECT key, until FROM held_back WHERE until > ?1 ORDER BY key")
        .map_err(sql("read hold-backs"))?;
    stmt.query_map([to_millis(Utc::now())], |r| {
        Ok(HeldBack {
            key: r.get(0)?,
            until: from_millis(r.get(1)?),
        })
    })
    .map_err(sql("read hold-backs"))?
    .collect::<Result<_, _>>()
    .map_err(sql("read hold-backs"))
}

/// The latest `Retry-After` in force at `now` for any of `keys` (URLs or hosts).
pub(crate) fn held_back_until(
    tx: &Transaction<'_>,
    keys: &[&str],
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let mut latest = None;
    for key in keys {
        let until: Option<i64> = tx
            .query_row(
                "SELECT until FROM held_back WHERE key = ?1 AND until > ?2",
                params![key, to_millis(now)],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("read hold-back"))?;
        latest = latest.max(until.map(from_millis));
    }
    Ok(latest)
}

pub(crate) fn save_held_back(tx: &Transaction<'_>, held: &[HeldBack]) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM held_back WHERE until <= ?1",
        [to_millis(Utc::now())],
    )
    .map_err(sql("forget passed hold-backs"))?;
    for HeldBack { key, until } in held {
        tx.execute(
            "INSERT INTO held_back (key, until) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET until = max(until, excluded.until)",
            params![key, to_millis(*until)],
        )
        .map_err(sql("save hold-back"))?;
    }
    Ok(())
}
