//! Fetch state in PostgreSQL's SQL: HTTP validators per listing, feed and sitemap URL
//! (and the source that asked) and each source's runs and standing. What a run record
//! keeps and what a source's state derives is decided in `store::source_runs`, over the
//! [`FetchStateSql`] impl here.

use postgres::Transaction;
use url::Url;

use super::pg;
use crate::model::{SourceId, Validators};
use crate::store::StoreError;
use crate::store::source_runs::{FetchStateSql, StateRow};

impl FetchStateSql for Transaction<'_> {
    fn validators(&mut self, url: &Url) -> Result<Option<Validators>, StoreError> {
        let row = self
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

    fn save_validators(
        &mut self,
        url: &Url,
        validators: &Validators,
        source: Option<&SourceId>,
        saved_at: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO validators (url, etag, last_modified, saved_at, source)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (url) DO UPDATE SET etag = excluded.etag,
                 last_modified = excluded.last_modified, saved_at = excluded.saved_at,
                 source = COALESCE(excluded.source, validators.source)",
            &[
                &url.as_str(),
                &validators.etag,
                &validators.last_modified,
                &saved_at,
                &source.map(SourceId::as_str),
            ],
        )
        .map_err(pg("save validators"))?;
        Ok(())
    }

    fn source_validators(
        &mut self,
        source: &SourceId,
        urls: &[Url],
    ) -> Result<Vec<(String, Validators)>, StoreError> {
        let urls: Vec<&str> = urls.iter().map(Url::as_str).collect();
        let rows = self
            .query(
                "SELECT url, etag, last_modified FROM validators
                 WHERE source = $1 OR url = ANY($2::text[])",
                &[&source.as_str(), &urls],
            )
            .map_err(pg("read validators"))?;
        Ok(rows
            .iter()
            .map(|r| {
                let validators = Validators {
                    etag: r.get(1),
                    last_modified: r.get(2),
                };
                (r.get(0), validators)
            })
            .collect())
    }

    fn insert_run(
        &mut self,
        source: &SourceId,
        finished: i64,
        run: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO source_runs (source, finished_at, run) VALUES ($1, $2, $3)",
            &[&source.as_str(), &finished, &run],
        )
        .map_err(pg("insert source run"))?;
        Ok(())
    }

    fn trim_runs(&mut self, source: &SourceId, keep: usize) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM source_runs WHERE source = $1 AND rowid NOT IN
                 (SELECT rowid FROM source_runs WHERE source = $1 ORDER BY rowid DESC LIMIT $2)",
            &[&source.as_str(), &(keep as i64)],
        )
        .map_err(pg("trim source runs"))?;
        Ok(())
    }

    fn save_success(&mut self, source: &SourceId, at: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO source_state (source, last_success, failures) VALUES ($1, $2, 0)
             ON CONFLICT (source) DO UPDATE SET last_success = excluded.last_success, failures = 0",
            &[&source.as_str(), &at],
        )
        .map_err(pg("update source state"))?;
        Ok(())
    }

    fn count_failure(&mut self, source: &SourceId) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO source_state (source, last_success, failures) VALUES ($1, NULL, 1)
             ON CONFLICT (source) DO UPDATE SET failures = source_state.failures + 1",
            &[&source.as_str()],
        )
        .map_err(pg("update source state"))?;
        Ok(())
    }

    fn state_rows(&mut self, only: Option<&SourceId>) -> Result<Vec<StateRow>, StoreError> {
        let rows = self
            .query(
                "SELECT source, last_success, failures FROM source_state
                 WHERE $1::text IS NULL OR source = $1 ORDER BY source",
                &[&only.map(SourceId::as_str)],
            )
            .map_err(pg("read source states"))?;
        Ok(rows
            .iter()
            .map(|r| StateRow {
                source: r.get(0),
                last_success: r.get(1),
                failures: r.get::<_, i32>(2).max(0) as u32,
            })
            .collect())
    }

    fn recent_runs(&mut self, source: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let rows = self
            .query(
                "SELECT run FROM source_runs WHERE source = $1 ORDER BY rowid DESC LIMIT $2",
                &[&source, &(limit as i64)],
            )
            .map_err(pg("read source runs"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
