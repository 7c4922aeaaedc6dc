//! Fetch state in PostgreSQL: HTTP validators per listing, feed and sitemap URL (and the
//! source that asked) and each source's runs (last success, failures in a row, recent
//! runs for the breakage alarm).

use chrono::Utc;
use postgres::Transaction;
use url::Url;

use super::pg;
use crate::model::{SourceId, SourceRun, SourceState, Validators};
use crate::store::StoreError;
use crate::store::encoding::{from_millis, to_millis};
use crate::store::fetch_state::RECENT_RUNS;

pub(super) fn validators(
    tx: &mut Transaction<'_>,
    url: &Url,
) -> Result<Option<Validators>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT etag, last_modified FROM validators WHERE url = $1",
            &[&url.as_str()],
        )
        .map_err(pg("read validators"))?;
    Ok(row.map(|r| Validators {
        etag: r.get(0),
        last_modified: r.get(1),
    }))
}

/// Saves a page's validators; `source` is the source that asked, when known (a page
/// saved without one keeps the source it had).
pub(super) fn save_validators(
    tx: &mut Transaction<'_>,
    url: &Url,
    validators: &Validators,
    source: Option<&SourceId>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO validators (url, etag, last_modified, saved_at, source)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (url) DO UPDATE SET etag = excluded.etag,
             last_modified = excluded.last_modified, saved_at = excluded.saved_at,
             source = COALESCE(excluded.source, validators.source)",
        &[
            &url.as_str(),
            &validators.etag,
            &validators.last_modified,
            &to_millis(Utc::now()),
            &source.map(SourceId::as_str),
        ],
    )
    .map_err(pg("save validators"))?;
    Ok(())
}

/// Every stored validator of the pages `source` asked for, with those of its `urls`.
pub(super) fn source_validators(
    tx: &mut Transaction<'_>,
    source: &SourceId,
    urls: &[Url],
) -> Result<Vec<(Url, Validators)>, StoreError> {
    let urls: Vec<&str> = urls.iter().map(Url::as_str).collect();
    let rows = tx
        .query(
            "SELECT url, etag, last_modified FROM validators
             WHERE source = $1 OR url = ANY($2::text[])",
            &[&source.as_str(), &urls],
        )
        .map_err(pg("read validators"))?;
    // A row whose address no longer parses is left out: it is asked in full.
    Ok(rows
        .iter()
        .filter_map(|r| {
            let url = Url::parse(r.get(0)).ok()?;
            let validators = Validators {
                etag: r.get(1),
                last_modified: r.get(2),
            };
            Some((url, validators))
        })
        .collect())
}

pub(super) fn record_run(
    tx: &mut Transaction<'_>,
    source: &SourceId,
    run: &SourceRun,
) -> Result<(), StoreError> {
    let finished = to_millis(run.finished_at.unwrap_or_else(Utc::now));
    let json = serde_json::to_string(run)
        .map_err(|e| StoreError::Corrupt(format!("source run cannot be encoded: {e}")))?;
    tx.execute(
        "INSERT INTO source_runs (source, finished_at, run) VALUES ($1, $2, $3)",
        &[&source.as_str(), &finished, &json],
    )
    .map_err(pg("insert source run"))?;
    tx.execute(
        "DELETE FROM source_runs WHERE source = $1 AND rowid NOT IN
             (SELECT rowid FROM source_runs WHERE source = $1 ORDER BY rowid DESC LIMIT $2)",
        &[&source.as_str(), &(RECENT_RUNS as i64)],
    )
    .map_err(pg("trim source runs"))?;
    if !run.failed() {
        tx.execute(
            "INSERT INTO source_state (source, last_success, failures) VALUES ($1, $2, 0)
             ON CONFLICT (source) DO UPDATE SET last_success = excluded.last_success, failures = 0",
            &[&source.as_str(), &finished],
        )
    } else {
        tx.execute(
            "INSERT INTO source_state (source, last_success, failures) VALUES ($1, NULL, 1)
             ON CONFLICT (source) DO UPDATE SET failures = source_state.failures + 1",
            &[&source.as_str()],
        )
    }
    .map_err(pg("update source state"))?;
    Ok(())
}

/// The state of every source that has run, or of `only`.
pub(super) fn states(
    tx: &mut Transaction<'_>,
    only: Option<&SourceId>,
) -> Result<Vec<SourceState>, StoreError> {
    let rows = tx
        .query(
            "SELECT source, last_success, failures FROM source_state
             WHERE $1::text IS NULL OR source = $1 ORDER BY source",
            &[&only.map(SourceId::as_str)],
        )
        .map_err(pg("read source states"))?;
    let mut out = Vec::new();
    for row in rows {
        let (source, last_success, failures): (String, Option<i64>, i32) =
            (row.get(0), row.get(1), row.get(2));
        let recent_runs = tx
            .query(
                "SELECT run FROM source_runs WHERE source = $1 ORDER BY rowid DESC LIMIT $2",
                &[&source, &(RECENT_RUNS as i64)],
            )
            .map_err(pg("read source runs"))?
            .iter()
            .map(|r| {
                serde_json::from_str::<SourceRun>(r.get(0))
                    .map_err(|e| StoreError::Corrupt(format!("source run of {source}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(SourceState {
            source: Some(SourceId(source)),
            last_run: recent_runs.first().cloned(),
            last_success: last_success.map(from_millis),
            failures: failures.max(0) as u32,
            recent_runs,
        });
    }
    Ok(out)
}
