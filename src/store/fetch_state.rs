//! Fetch state in SQLite's SQL: HTTP validators per listing, feed and sitemap URL (and
//! the source that asked) and each source's runs and standing. What a run record keeps
//! and what a source's state derives is decided in `source_runs`, over the
//! [`FetchStateSql`] impl here.

use rusqlite::{OptionalExtension, Transaction, params};
use url::Url;

use super::StoreError;
use super::encoding::sql;
use super::source_runs::{FetchStateSql, StateRow};
use crate::model::{SourceId, Validators};

impl FetchStateSql for Transaction<'_> {
    fn validators(&mut self, url: &Url) -> Result<Option<Validators>, StoreError> {
        self.query_row(
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

    fn save_validators(
        &mut self,
        url: &Url,
        validators: &Validators,
        source: Option<&SourceId>,
        saved_at: i64,
    ) -> Result<(), StoreError> {
        self.prepare_cached(
            "INSERT INTO validators (url, etag, last_modified, saved_at, source)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (url) DO UPDATE SET etag = excluded.etag,
                 last_modified = excluded.last_modified, saved_at = excluded.saved_at,
                 source = COALESCE(excluded.source, validators.source)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                url.as_str(),
                validators.etag,
                validators.last_modified,
                saved_at,
                source.map(SourceId::as_str)
            ])
        })
        .map_err(sql("save validators"))?;
        Ok(())
    }

    fn source_validators(
        &mut self,
        source: &SourceId,
        urls: &[Url],
    ) -> Result<Vec<(String, Validators)>, StoreError> {
        let urls = serde_json::to_string(&urls.iter().map(Url::as_str).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(format!("addresses cannot be encoded: {e}")))?;
        let mut stmt = self
            .prepare_cached(
                "SELECT url, etag, last_modified FROM validators WHERE source = ?1
                 UNION SELECT url, etag, last_modified FROM validators
                 WHERE url IN (SELECT value FROM json_each(?2))",
            )
            .map_err(sql("read validators"))?;
        stmt.query_map(params![source.as_str(), urls], |r| {
            let validators = Validators {
                etag: r.get(1)?,
                last_modified: r.get(2)?,
            };
            Ok((r.get(0)?, validators))
        })
        .map_err(sql("read validators"))?
        .collect::<Result<_, _>>()
        .map_err(sql("read validators"))
    }

    fn insert_run(
        &mut self,
        source: &SourceId,
        finished: i64,
        run: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO source_runs (source, finished_at, run) VALUES (?1, ?2, ?3)",
            params![source.as_str(), finished, run],
        )
        .map_err(sql("insert source run"))?;
        Ok(())
    }

    fn trim_runs(&mut self, source: &SourceId, keep: usize) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM source_runs WHERE source = ?1 AND rowid NOT IN
                 (SELECT rowid FROM source_runs WHERE source = ?1 ORDER BY rowid DESC LIMIT ?2)",
            params![source.as_str(), keep as i64],
        )
        .map_err(sql("trim source runs"))?;
        Ok(())
    }

    fn save_success(&mut self, source: &SourceId, at: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO source_state (source, last_success, failures) VALUES (?1, ?2, 0)
             ON CONFLICT (source) DO UPDATE SET last_success = excluded.last_success, failures = 0",
            params![source.as_str(), at],
        )
        .map_err(sql("update source state"))?;
        Ok(())
    }

    fn count_failure(&mut self, source: &SourceId) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO source_state (source, last_success, failures) VALUES (?1, NULL, 1)
             ON CONFLICT (source) DO UPDATE SET failures = failures + 1",
            params![source.as_str()],
        )
        .map_err(sql("update source state"))?;
        Ok(())
    }

    fn state_rows(&mut self, only: Option<&SourceId>) -> Result<Vec<StateRow>, StoreError> {
        let mut stmt = self
            .prepare(
                "SELECT source, last_success, failures FROM source_state
                 WHERE ?1 IS NULL OR source = ?1 ORDER BY source",
            )
            .map_err(sql("read source states"))?;
        stmt.query_map([only.map(SourceId::as_str)], |r| {
            Ok(StateRow {
                source: r.get(0)?,
                last_success: r.get(1)?,
                failures: r.get(2)?,
            })
        })
        .map_err(sql("read source states"))?
        .collect::<Result<_, _>>()
        .map_err(sql("read source states"))
    }

    fn recent_runs(&mut self, source: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .prepare_cached(
                "SELECT run FROM source_runs WHERE source = ?1 ORDER BY rowid DESC LIMIT ?2",
            )
            .map_err(sql("read source runs"))?;
        stmt.query_map(params![source, limit as i64], |r| r.get(0))
            .map_err(sql("read source runs"))?
            .collect::<Result<_, _>>()
            .map_err(sql("read source runs"))
    }
}
