//! Per-article fetch state in SQLite: which article addresses were asked for, what each
//! turned out to be (an item's page, an alias of an item, a dead link), the validators of
//! its last answer, and when it may be asked again. The store, not a task's memory,
//! decides what a run fetches. Recording the article itself is `items`' job; `items`
//! saves a fetched page's state here in the same transaction, and this module uses
//! none of `items`.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};
use url::Url;
use xxhash_rust::xxh3::xxh3_64;

use super::StoreError;
use super::encoding::{from_millis, sql, to_millis};
use crate::dedup::canonicalize;
use crate::model::{
    ArticlePlan, ArticleVisit, Candidate, DeadLink, ItemId, PageFetch, SourceId, Validators,
    VisitReason,
};

/// Wait before a dead link is asked again the first time; it doubles with each 404/410.
pub const DEAD_LINK_FIRST_BACKOFF: Duration = Duration::from_secs(3600);
/// Longest wait between two requests for a dead link.
pub const DEAD_LINK_MAX_BACKOFF: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the store knows about one article address.
struct Known {
    item: Option<(i64, ItemId)>,
    alias: bool,
    born: Option<i64>,
    validators: Validators,
    listed_title: Option<String>,
    next_check: Option<i64>,
    retry_at: Option<i64>,
}

fn known(tx: &Transaction<'_>, key: &Url) -> Result<Option<Known>, StoreError> {
    tx.prepare_cached(
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
            Ok(Known {
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

/// Decides what a run of `source` does with the links it found and with its stored
/// articles: new links and dead links past their backoff are fetched; a stored article
/// is re-checked when the listing shows it under a new title, or when it is younger
/// than `within` and its re-check is due. Also records the titles the listing showed.
pub(crate) fn plan(
    tx: &Transaction<'_>,
    source: &SourceId,
    candidates: Vec<Candidate>,
    within: Duration,
    now: DateTime<Utc>,
) -> Result<ArticlePlan, StoreError> {
    let now_ms = to_millis(now);
    let young_since = now_ms.saturating_sub(within.as_millis() as i64);
    let mut plan = ArticlePlan::default();
    let mut planned = HashSet::new();
    for candidate in candidates {
        let key = canonicalize(&candidate.url);
        let (reason, stored) = match known(tx, &key)? {
            // A stored item's address without fetch state (ingested from a file) is
            // known and not fetched.
            None if is_linked(tx, &key)? => continue,
            None => (VisitReason::New, None),
            Some(k) if k.alias => continue,
            Some(Known {
                item: None,
                retry_at,
                ..
            }) => {
                if retry_at.is_some_and(|t| t > now_ms) {
                    plan.dead_links += 1;
                    continue;
                }
                (VisitReason::DeadRetry, None)
            }
            Some(k) => match stored_visit(tx, &key, &k, &candidate, young_since, now_ms)? {
                Some(reason) => (reason, k.item.map(|(_, id)| (id, k.validators))),
                None => continue,
            },
        };
        planned.insert(key);
        let (item, validators) = stored.unzip();
        plan.visits.push(ArticleVisit {
            candidate,
            reason,
            item,
            validators,
        });
    }
    for visit in due(tx, source, young_since, now_ms)? {
        if planned.insert(canonicalize(&visit.candidate.url)) {
            plan.visits.push(visit);
        }
    }
    Ok(plan)
}

/// Whether the canonical address `key` is a link of a stored item.
pub(crate) fn is_linked(tx: &Transaction<'_>, key: &Url) -> Result<bool, StoreError> {
    tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM item_links WHERE key = ?1)",
        [key.as_str()],
        |r| r.get(0),
    )
    .map_err(sql("look up url"))
}

/// Why a listed link that is a stored article's page is asked again, if it is.
fn stored_visit(
    tx: &Transaction<'_>,
    key: &Url,
    known: &Known,
    candidate: &Candidate,
    young_since: i64,
    now_ms: i64,
) -> Result<Option<VisitReason>, StoreError> {
    if let Some(title) = &candidate.title
        && known.listed_title.as_ref() != Some(title)
    {
        tx.execute(
            "UPDATE article_state SET listed_title = ?2 WHERE key = ?1",
            params![key.as_str(), title],
        )
        .map_err(sql("save listed title"))?;
        // A first title seen for an article stored without one is no change.
        if known.listed_title.is_some() {
            return Ok(Some(VisitReason::TitleChanged));
        }
    }
    let young = known.born.is_some_and(|b| b > young_since);
    let due = known.next_check.is_some_and(|t| t <= now_ms);
    Ok((young && due).then_some(VisitReason::Due))
}

/// A source's young stored articles whose re-check is due, earliest first.
fn due(
    tx: &Transaction<'_>,
    source: &SourceId,
    young_since: i64,
    now_ms: i64,
) -> Result<Vec<ArticleVisit>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT s.url, i.id, s.etag, s.last_modified FROM article_state s
             JOIN items i ON i.rowid = s.item
             WHERE s.source = ?1 AND s.next_check <= ?2 AND s.alias = 0 AND s.born > ?3
             ORDER BY s.next_check",
        )
        .map_err(sql("read due re-checks"))?;
    let rows = stmt
        .query_map(params![source.as_str(), now_ms, young_since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                Validators {
                    etag: r.get(2)?,
                    last_modified: r.get(3)?,
                },
            ))
        })
        .map_err(sql("read due re-checks"))?;
    let mut out = Vec::new();
    for row in rows {
        let (url, id, validators) = row.map_err(sql("read due re-checks"))?;
        let url = Url::parse(&url)
            .map_err(|e| StoreError::Corrupt(format!("article address {url}: {e}")))?;
        out.push(ArticleVisit {
            candidate: Candidate {
                url,
                source: source.clone(),
                title: None,
                published: None,
                article: None,
            },
            reason: VisitReason::Due,
            item: Some(ItemId(id)),
            validators: Some(validators),
        });
    }
    Ok(out)
}

/// Records that the page asked for at `fetch.asked` is `item`'s page (`alias`: another
/// address of it, never asked again). A page asked for the first time is re-checked
/// between half an `every` and one `every` after it was fetched (spread by address, so articles
/// found together are not all asked again at once); later re-checks follow each
/// `every`.
pub(crate) fn save_page(
    tx: &Transaction<'_>,
    fetch: &PageFetch,
    source: &SourceId,
    item: i64,
    alias: bool,
    published: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let now = fetch.fetched_at;
    let key = canonicalize(&fetch.asked);
    let first_time = known(tx, &key)?.is_none_or(|k| k.item.is_none());
    let next_check = match fetch.every {
        Some(every) if !alias && first_time => Some(now + first_recheck_after(&key, every)),
        Some(every) if !alias => Some(now + every),
        _ => None,
    };
    tx.execute(
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
            key.as_str(),
            fetch.asked.as_str(),
            source.as_str(),
            item,
            alias,
            published.map(to_millis),
            to_millis(now),
            fetch.validators.etag,
            fetch.validators.last_modified,
            fetch.listed_title,
            next_check.map(to_millis),
        ],
    )
    .map_err(sql("save article state"))?;
    Ok(())
}

pub(super) fn first_recheck_after(key: &Url, every: Duration) -> chrono::TimeDelta {
    let half = (every.as_millis() / 2).max(1) as u64;
    let spread = xxh3_64(key.as_str().as_bytes()) % half;
    chrono::TimeDelta::milliseconds((half + spread) as i64)
}

/// A re-check answered 304 (or failed for a reason that may pass): ask again after
/// `every`.
pub(crate) fn reschedule(
    tx: &Transaction<'_>,
    url: &Url,
    every: Duration,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE article_state SET next_check = ?2 WHERE key = ?1 AND next_check IS NOT NULL",
        params![canonicalize(url).as_str(), to_millis(now + every)],
    )
    .map_err(sql("reschedule re-check"))?;
    Ok(())
}

/// An article address answered 404 or 410: it is not asked again before a backoff that
/// starts at [`DEAD_LINK_FIRST_BACKOFF`] and doubles with each dead answer in a row, up
/// to [`DEAD_LINK_MAX_BACKOFF`]. A stored article's page that died keeps its item.
pub(crate) fn mark_dead(
    tx: &Transaction<'_>,
    url: &Url,
    source: &SourceId,
    status: u16,
    now: DateTime<Utc>,
) -> Result<DeadLink, StoreError> {
    let key = canonicalize(url);
    let failures = known_failures(tx, &key)? + 1;
    let retry_at = now + dead_link_backoff(failures);
    tx.execute(
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
            failures,
            to_millis(retry_at),
        ],
    )
    .map_err(sql("save dead link"))?;
    Ok(DeadLink { failures, retry_at })
}

fn known_failures(tx: &Transaction<'_>, key: &Url) -> Result<u32, StoreError> {
    tx.query_row(
        "SELECT dead_failures FROM article_state WHERE key = ?1",
        [key.as_str()],
        |r| r.get(0),
    )
    .optional()
    .map(Option::unwrap_or_default)
    .map_err(sql("read dead link"))
}

/// The wait after the `failures`-th dead answer in a row.
pub fn dead_link_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    DEAD_LINK_FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(DEAD_LINK_MAX_BACKOFF)
}

/// A dead link's standing, if the address is known dead.
pub(crate) fn dead_link(tx: &Transaction<'_>, url: &Url) -> Result<Option<DeadLink>, StoreError> {
    tx.query_row(
        "SELECT dead_failures, retry_at FROM article_state
         WHERE key = ?1 AND item IS NULL AND retry_at IS NOT NULL",
        [canonicalize(url).as_str()],
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

/// Forgets dead links not asked for since before `cutoff` (no listing has shown them
/// since): were one listed again, it would simply be asked again. Returns how many.
pub(crate) fn forget_dead_links(
    tx: &Transaction<'_>,
    cutoff: DateTime<Utc>,
) -> Result<usize, StoreError> {
    tx.execute(
        "DELETE FROM article_state WHERE item IS NULL AND retry_at < ?1",
        [to_millis(cutoff)],
    )
    .map_err(sql("forget old dead links"))
}

/// Makes every young article of `source` due now (`bantin crawl --refresh`). Returns how
/// many.
pub(crate) fn refresh_now(
    tx: &Transaction<'_>,
    source: &SourceId,
    within: Duration,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let now_ms = to_millis(now);
    tx.execute(
        "UPDATE article_state SET next_check = ?2
         WHERE source = ?1 AND item IS NOT NULL AND alias = 0 AND next_check IS NOT NULL
             AND born > ?3",
        params![
            source.as_str(),
            now_ms,
            now_ms.saturating_sub(within.as_millis() as i64)
        ],
    )
    .map_err(sql("make re-checks due"))
}

/// When `url`'s next re-check is due, if it is re-checked.
pub(crate) fn next_check(
    tx: &Transaction<'_>,
    url: &Url,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(known(tx, &canonicalize(url))?
        .and_then(|k| k.next_check)
        .map(from_millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_link_backoff_doubles_from_an_hour_to_a_week() {
        let hours = |n: u32| dead_link_backoff(n).as_secs() / 3600;
        assert_eq!(
            (1..=9).map(hours).collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 32, 64, 128, 168]
        );
        assert_eq!(dead_link_backoff(1000), DEAD_LINK_MAX_BACKOFF);
    }
}
