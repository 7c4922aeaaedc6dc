//! Retention, for both backends: which items are old enough to delete (none still among
//! the newest of a feed), and what ages out with them (raw pages, long-dead links).
//! Each backend gives the SQL as a [`RetentionSql`] impl on its transaction type.

use std::collections::HashSet;

use chrono::{Duration, Utc};

use super::StoreError;
use super::article_plan::ArticleStateSql;
use super::encoding::to_millis;
use crate::model::{ALL_CATEGORY, CategoryId};

/// The reads and deletes of retention, in one backend's SQL. Items are named by rowid;
/// times are milliseconds.
pub(super) trait RetentionSql: ArticleStateSql {
    /// The rowids of the newest `limit` items of `feed` (of every item for
    /// [`ALL_CATEGORY`]), in feed order.
    fn newest_in_feed(&mut self, feed: &CategoryId, limit: usize) -> Result<Vec<i64>, StoreError>;
    /// The items whose sort time and first-seen time are both before `cutoff`: an old
    /// article stored only lately is kept for the full period too, else the next crawl
    /// would fetch and store it again.
    fn items_older_than(&mut self, cutoff: i64) -> Result<Vec<i64>, StoreError>;
    /// Deletes the items (with their links, bands and categories). Returns how many.
    fn delete_items(&mut self, rowids: &[i64]) -> Result<usize, StoreError>;
    /// Deletes raw pages fetched before `cutoff`. Returns how many.
    fn delete_raw_pages(&mut self, cutoff: i64) -> Result<usize, StoreError>;
}

/// Deletes items older than `retention_days` that are not among the newest
/// `keep_per_feed` of any of `feeds` or of `all`, dead links whose backoff ended more
/// than `retention_days` ago, and raw pages older than `raw_page_days`. Returns how
/// many items were deleted.
pub(super) fn prune(
    tx: &mut impl RetentionSql,
    retention_days: u32,
    raw_page_days: u32,
    keep_per_feed: usize,
    feeds: &[CategoryId],
) -> Result<usize, StoreError> {
    let now = Utc::now();
    let cutoff = to_millis(now - Duration::days(i64::from(retention_days)));
    let all = CategoryId(ALL_CATEGORY.into());
    let mut protected = HashSet::new();
    for feed in feeds.iter().chain(std::iter::once(&all)) {
        protected.extend(tx.newest_in_feed(feed, keep_per_feed)?);
    }
    let mut expired = tx.items_older_than(cutoff)?;
    expired.retain(|rowid| !protected.contains(rowid));
    let deleted = tx.delete_items(&expired)?;
    let raw_cutoff = to_millis(now - Duration::days(i64::from(raw_page_days)));
    let raw_pages = tx.delete_raw_pages(raw_cutoff)?;
    let dead_links = tx.forget_dead_links(cutoff)?;
    tracing::info!(items = deleted, raw_pages, dead_links, "store pruned");
    Ok(deleted)
}
