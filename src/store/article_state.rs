//! Per-article fetch state in SQLite's SQL: the `article_state` rows (an item's page,
//! an alias of an item, a dead link), their validators and next re-checks. What a run
//! fetches and when a page is asked again is decided in `article_plan`, over the
//! [`ArticleStateSql`] impl here.

use rusqlite::{OptionalExtension, Transaction, params};
use url::Url;

use super::StoreError;
use super::article_plan::{ArticleStateSql, DueArticle, KnownArticle, PageState};
use super::encoding::{from_millis, sql, to_millis};
use crate::model::{DeadLink, ItemId, SourceId, Validators};

impl ArticleStateSql for Transaction<'_> {
    fn article_state(&mut self, key: &Url) -> Result<Option<KnownArticle>, StoreError> {
        self.prepare_cached(
            "SELECT s.item, i.id, s.alias, s.born, s.etag, s.last_modified,
                 s.listed_title, s.next_check, s.retry_at
             FROM article_state s LEFT JOIN items i ON i.rowid = s.item WHERE s.key = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row([key.as_str()], |r| {
                let item = match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<String>>(1)?) {
                    (Some(rowid), Some(id)) => Some((rowid, ItemId(id))),
                    _ => None,
                };
                Ok(KnownArticle {
                    item,
                    alias: r.get(2)?,
                    born: r.get(3)?,
                    validators: Validators {
                        etag: r.get(4)?,
                        last_modified: r.get(5)?,
                    },
                    listed_title: r.get(6)?,
                    next_check: r.get(7)?,
                    retry_at: r.get(8)?,
                })
            })
            .optional()
        })
        .map_err(sql("read article state"))
    }

    fn is_linked(&mut self, key: &Url) -> Result<bool, StoreError> {
        self.query_row(
            "SELECT EXISTS (SELECT 1 FROM item_links WHERE key = ?1)",
            [key.as_str()],
            |r| r.get(0),
        )
        .map_err(sql("look up url"))
    }

    fn save_listed_title(&mut self, key: &Url, title: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE article_state SET listed_title = ?2 WHERE key = ?1",
            params![key.as_str(), title],
        )
        .map_err(sql("save listed title"))?;
        Ok(())
    }

    fn due_articles(
        &mut self,
        source: &SourceId,
        young_since: i64,
        now_ms: i64,
    ) -> Result<Vec<DueArticle>, StoreError> {
        let mut stmt = self
            .prepare_cached(
                "SELECT s.url, i.id, s.etag, s.last_modified FROM article_state s
                 JOIN items i ON i.rowid = s.item
                 WHERE s.source = ?1 AND s.next_check <= ?2 AND s.alias = 0 AND s.born > ?3
                 ORDER BY s.next_check",
            )
            .map_err(sql("read due re-checks"))?;
        stmt.query_map(params![source.as_str(), now_ms, young_since], |r| {
            Ok(DueArticle {
                url: r.get(0)?,
                item: ItemId(r.get(1)?),
                validators: Validators {
                    etag: r.get(2)?,
                    last_modified: r.get(3)?,
                },
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(sql("read due re-checks"))
    }

    fn save_page_state(&mut self, page: &PageState<'_>) -> Result<(), StoreError> {
        let fetch = page.fetch;
        self.execute(
            "INSERT INTO article_state (key, url, source, item, alias, born, etag, last_modified,
                 listed_title, next_check)
             VALUES (?1, ?2, ?3, ?4, ?5, COALESCE(?6, ?7), ?8, ?9, ?10, ?11)
             ON CONFLICT (key) DO UPDATE SET item = excluded.item, alias = excluded.alias,
                 born = COALESCE(?6, article_state.born, ?7), etag = excluded.etag,
                 last_modified = excluded.last_modified,
                 listed_title = COALESCE(excluded.listed_title, article_state.listed_title),
                 next_check = excluded.next_check, dead_status = NULL, dead_failures = 0,
                 retry_at = NULL",
            params![
                page.key.as_str(),
                fetch.asked.as_str(),
                page.source.as_str(),
                page.item,
                page.alias,
                page.published,
                to_millis(fetch.fetched_at),
                fetch.validators.etag,
                fetch.validators.last_modified,
                fetch.listed_title,
                page.next_check,
            ],
        )
        .map_err(sql("save article state"))?;
        Ok(())
    }

    fn dead_failures(&mut self, key: &Url) -> Result<u32, StoreError> {
        self.query_row(
            "SELECT dead_failures FROM article_state WHERE key = ?1",
            [key.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map(Option::unwrap_or_default)
        .map_err(sql("read dead link"))
    }

    fn save_dead_link(
        &mut self,
        key: &Url,
        url: &Url,
        source: &SourceId,
        status: u16,
        dead: &DeadLink,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO article_state (key, url, source, dead_status, dead_failures, retry_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (key) DO UPDATE SET item = NULL, next_check = NULL,
                 dead_status = excluded.dead_status, dead_failures = excluded.dead_failures,
                 retry_at = excluded.retry_at",
            params![
                key.as_str(),
                url.as_str(),
                source.as_str(),
                status,
                dead.failures,
                to_millis(dead.retry_at),
            ],
        )
        .map_err(sql("save dead link"))?;
        Ok(())
    }

    fn dead_link(&mut self, key: &Url) -> Result<Option<DeadLink>, StoreError> {
        self.query_row(
            "SELECT dead_failures, retry_at FROM article_state
             WHERE key = ?1 AND item IS NULL AND retry_at IS NOT NULL",
            [key.as_str()],
            |r| {
                Ok(DeadLink {
                    failures: r.get(0)?,
                    retry_at: from_millis(r.get(1)?),
                })
            },
        )
        .optional()
        .map_err(sql("read dead link"))
    }

    fn set_next_check(&mut self, key: &Url, at_ms: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE article_state SET next_check = ?2 WHERE key = ?1 AND next_check IS NOT NULL",
            params![key.as_str(), at_ms],
        )
        .map_err(sql("reschedule re-check"))?;
        Ok(())
    }

    fn make_due(
        &mut self,
        source: &SourceId,
        young_since: i64,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        self.execute(
            "UPDATE article_state SET next_check = ?2
             WHERE source = ?1 AND item IS NOT NULL AND alias = 0 AND next_check IS NOT NULL
                 AND born > ?3",
            params![source.as_str(), now_ms, young_since],
        )
        .map_err(sql("make re-checks due"))
    }

    fn forget_dead_links(&mut self, cutoff: i64) -> Result<usize, StoreError> {
        self.execute(
            "DELETE FROM article_state WHERE item IS NULL AND retry_at < ?1",
            [cutoff],
        )
        .map_err(sql("forget old dead links"))
    }
}
