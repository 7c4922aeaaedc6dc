//! Fetch state in SQLite: HTTP validators per listing, feed and sitemap URL (and the
//! source that asked) and each source's runs (last success,
//! failures in a row, recent runs for the breakage alarm).

use chrono::Utc;
use rusqlite::{OptionalExtension, Transaction, params};
use url::Url;

use super::StoreError;
use super::encoding::{from_millis, sql, to_millis};
use crate::model::{SourceId, SourceRun, SourceState, Validators};

/// Runs kept per source.
pub const RECENT_RUNS: usize = 20;

pub(crate) fn validators(
    tx: &Transaction<'_>,
    url: &Url,
) -> Result<Option<Validators>, StoreError> {
    tx.query_row(
        "SELECT etag, last_modified FROM validators WHERE url = ?1",
        [url.as_str()],
        |r| {
            Ok(Validators {
                etag: r.get(0)?,
                last_modified: r.get(1)?,
            })
        },
    )
    .optional()
    .map_err(sql("read validators"))
}

pub(crate) fn save_validators(
    tx: &Transaction<'_>,
    url: &Url,
    validators: &Validators,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO validators (url, etag, last_modified, saved_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (url) DO UPDATE SET etag = excluded.etag,
             last_modified = excluded.last_modified, saved_at = excluded.saved_at",
        params![
            url.as_str(),
            validators.etag,
            validators.last_modified,
            to_millis(Utc::now())
        ],
    )
    .map_err(sql("save validators"))?;
    Ok(())
}

/// Every stored validator of the pages `source` asked for, with those of its `urls`
/// (saved before validators named their source).
pub(crate) fn source_validators(
    tx: &Transaction<'_>,
    source: &SourceId,
    urls: &[Url],
) -> Result<Vec<(Url, Validators)>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT url, etag, last_modified FROM validators WHERE source = ?1
             UNION SELECT url, etag, last_modified FROM validators
             WHERE url IN (SELECT value FROM json_each(?2))",
        )
        .map_err(sql("read validators"))?;
    let urls = serde_json::to_string(&urls.iter().map(Url::as_str).collect::<Vec<_>>())
        .map_err(|e| StoreError::Corrupt(format!("addresses cannot be encoded: {e}")))?;
    let rows = stmt
        .query_map(params![source.as_str(), urls], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Validators {
                    etag: r.get(1)?,
                    last_modified: r.get(2)?,
                },
            ))
        })
        .map_err(sql("read validators"))?;
    let mut out = Vec::new();
    for row in rows {
        let (url, validators) = row.map_err(sql("read validators"))?;
        // A row whose address no longer parses is left out: it is asked in full.
        if let Ok(url) = Url::parse(&url) {
            out.push((url, validators));
        }
    }
    Ok(out)
}

/// Saves the validators of pages `source` asked for.
pub(crate) fn save_source_validators(
    tx: &Transaction<'_>,
    source: &SourceId,
    validators: &[(Url, Validators)],
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO validators (url, etag, last_modified, saved_at, source)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (url) DO UPDATE SET etag = excluded.etag,
                 last_modified = excluded.last_modified, saved_at = excluded.saved_at,
                 source = excluded.source",
        )
        .map_err(sql("save validators"))?;
    let now = to_millis(Utc::now());
    for (url, v) in validators {
        stmt.execute(params![
            url.as_str(),
            v.etag,
            v.last_modified,
            now,
            source.as_str()
        ])
        .map_err(sql("save validators"))?;
    }
    Ok(())
}

pub(crate) fn record_run(
    tx: &Transaction<'_>,
    source: &SourceId,
    run: &SourceRun,
) -> Result<(), StoreError> {
    let finished = to_millis(run.finished_at.unwrap_or_else(Utc::now));
    let json = serde_json::to_string(run)
        .map_err(|e| StoreError::Corrupt(format!("source run cannot be encoded: {e}")))?;
    tx.execute(
        "INSERT INTO source_runs (source, finished_at, run) VALUES (?1, ?2, ?3)",
        params![source.as_str(), finished, json],
    )
    .map_err(sql("insert source run"))?;
    tx.execute(
        "DELETE FROM source_runs WHERE source = ?1 AND rowid NOT IN
             (SELECT rowid FROM source_runs WHERE source = ?1 ORDER BY rowid DESC LIMIT ?2)",
        params![source.as_str(), RECENT_RUNS as i64],
    )
    .map_err(sql("trim source runs"))?;
    if run.succeeded() {
        tx.execute(
            "INSERT INTO source_state (source, last_success, failures) VALUES (?1, ?2, 0)
             ON CONFLICT (source) DO UPDATE SET last_success = excluded.last_success, failures = 0",
            params![source.as_str(), finished],
        )
    } else {
        tx.execute(
            "INSERT INTO source_state (source, last_success, failures) VALUES (?1, NULL, 1)
             ON CONFLICT (source) DO UPDATE SET failures = failures + 1",
            params![source.as_str()],
        )
    }
    .map_err(sql("update source state"))?;
    Ok(())
}

pub(crate) fn states(tx: &Transaction<'_>) -> Result<Vec<SourceState>, StoreError> {
    states_where(tx, None)
}

/// One source's state, if it has run.
pub(crate) fn state(
    tx: &Transaction<'_>,
    source: &SourceId,
) -> Result<Option<SourceState>, StoreError> {
    Ok(states_where(tx, Some(source))?.pop())
}

fn states_where(
    tx: &Transaction<'_>,
    only: Option<&SourceId>,
) -> Result<Vec<SourceState>, StoreError> {
    let rows: Vec<(String, Option<i64>, u32)> = {
        let mut stmt = tx
            .prepare(
                "SELECT source, last_success, failures FROM source_state
                 WHERE ?1 IS NULL OR source = ?1 ORDER BY source",
            )
            .map_err(sql("read source states"))?;
        stmt.query_map([only.map(SourceId::as_str)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(sql("read source states"))?
        .collect::<Result<_, _>>()
        .map_err(sql("read source states"))?
    };
    let mut stmt = tx
        .prepare("SELECT run FROM source_runs WHERE source = ?1 ORDER BY rowid DESC LIMIT ?2")
        .map_err(sql("read source runs"))?;
    let mut out = Vec::new();
    for (source, last_success, failures) in rows {
        let recent_runs = stmt
            .query_map(params![source, RECENT_RUNS as i64], |r| {
                r.get::<_, String>(0)
            })
            .map_err(sql("read source runs"))?
            .map(|json| {
                let json = json.map_err(sql("read source runs"))?;
                serde_json::from_str::<SourceRun>(&json)
                    .map_err(|e| StoreError::Corrupt(format!("source run of {source}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(SourceState {
            source: Some(SourceId(source)),
            last_run: recent_runs.first().cloned(),
            last_success: last_success.map(from_millis),
            failures,
            recent_runs,
        });
    }
    Ok(out)
}
