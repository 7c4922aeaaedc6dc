//! Per-article fetch state in PostgreSQL: which article addresses were asked for, what
//! each turned out to be (an item's page, an alias, a dead link), its validators, and
//! when it may be asked again. The rules are the SQLite backend's.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::Transaction;
use url::Url;

use super::pg;
use crate::dedup::canonicalize;
use crate::model::{
    ArticlePlan, ArticleVisit, Candidate, DeadLink, ItemId, PageFetch, SourceId, Validators,
    VisitReason,
};
use crate::store::StoreError;
use crate::store::article_state::{dead_link_backoff, first_recheck_after};
use crate::store::encoding::{from_millis, to_millis};

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

fn known(tx: &mut Transaction<'_>, key: &Url) -> Result<Option<Known>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT s.item, i.id, s.alias, s.born, s.etag, s.last_modified,
                 s.listed_title, s.next_check, s.retry_at
             FROM article_state s LEFT JOIN items i ON i.rowid = s.item WHERE s.key = $1",
            &[&key.as_str()],
        )
        .map_err(pg("read article state"))?;
    Ok(row.map(|r| {
        let item = match (r.get::<_, Option<i64>>(0), r.get::<_, Option<String>>(1)) {
            (Some(rowid), Some(id)) => Some((rowid, ItemId(id))),
            _ => None,
        };
        Known {
            item,
            alias: r.get(2),
            born: r.get(3),
            validators: Validators {
                etag: r.get(4),
                last_modified: r.get(5),
            },
            listed_title: r.get(6),
            next_check: r.get(7),
            retry_at: r.get(8),
        }
    }))
}

/// Decides what a run of `source` does with the links it found and its stored articles.
pub(super) fn plan(
    tx: &mut Transaction<'_>,
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
pub(super) fn is_linked(tx: &mut Transaction<'_>, key: &Url) -> Result<bool, StoreError> {
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM item_links WHERE key = $1)",
            &[&key.as_str()],
        )
        .map_err(pg("look up url"))?;
    Ok(row.get(0))
}

/// Why a listed link that is a stored article's page is asked again, if it is.
fn stored_visit(
    tx: &mut Transaction<'_>,
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
            "UPDATE article_state SET listed_title = $2 WHERE key = $1",
            &[&key.as_str(), title],
        )
        .map_err(pg("save listed title"))?;
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
    tx: &mut Transaction<'_>,
    source: &SourceId,
    young_since: i64,
    now_ms: i64,
) -> Result<Vec<ArticleVisit>, StoreError> {
    let rows = tx
        .query(
            "SELECT s.url, i.id, s.etag, s.last_modified FROM article_state s
             JOIN items i ON i.rowid = s.item
             WHERE s.source = $1 AND s.next_check <= $2 AND NOT s.alias AND s.born > $3
             ORDER BY s.next_check",
            &[&source.as_str(), &now_ms, &young_since],
        )
        .map_err(pg("read due re-checks"))?;
    rows.iter()
        .map(|r| {
            let url: String = r.get(0);
            let url = Url::parse(&url)
                .map_err(|e| StoreError::Corrupt(format!("article address {url}: {e}")))?;
            Ok(ArticleVisit {
                candidate: Candidate {
                    url,
                    source: source.clone(),
                    title: None,
                    published: None,
                    article: None,
                },
                reason: VisitReason::Due,
                item: Some(ItemId(r.get(1))),
                validators: Some(Validators {
                    etag: r.get(2),
                    last_modified: r.get(3),
                }),
            })
        })
        .collect()
}

/// Records that the page asked for at `fetch.asked` is `item`'s page (`alias`: another
/// address of it, never asked again), with its next re-check.
pub(super) fn save_page(
    tx: &mut Transaction<'_>,
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
         VALUES ($1, $2, $3, $4, $5, COALESCE($6::bigint, $7::bigint), $8, $9, $10, $11)
         ON CONFLICT (key) DO UPDATE SET item = excluded.item, alias = excluded.alias,
             born = COALESCE($6::bigint, article_state.born, $7::bigint), etag = excluded.etag,
             last_modified = excluded.last_modified,
             listed_title = COALESCE(excluded.listed_title, article_state.listed_title),
             next_check = excluded.next_check, dead_status = NULL, dead_failures = 0,
             retry_at = NULL",
        &[
            &key.as_str(),
            &fetch.asked.as_str(),
            &source.as_str(),
            &item,
            &alias,
            &published.map(to_millis),
            &to_millis(now),
            &fetch.validators.etag,
            &fetch.validators.last_modified,
            &fetch.listed_title,
            &next_check.map(to_millis),
        ],
    )
    .map_err(pg("save article state"))?;
    Ok(())
}

/// A re-check answered 304 (or failed for a reason that may pass): ask again after
/// `every`.
pub(super) fn reschedule(
    tx: &mut Transaction<'_>,
    url: &Url,
    every: Duration,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE article_state SET next_check = $2 WHERE key = $1 AND next_check IS NOT NULL",
        &[&canonicalize(url).as_str(), &to_millis(now + every)],
    )
    .map_err(pg("reschedule re-check"))?;
    Ok(())
}

/// An article address answered 404 or 410: not asked again before its backoff.
pub(super) fn mark_dead(
    tx: &mut Transaction<'_>,
    url: &Url,
    source: &SourceId,
    status: u16,
    now: DateTime<Utc>,
) -> Result<DeadLink, StoreError> {
    let key = canonicalize(url);
    let stored: Option<i32> = tx
        .query_opt(
            "SELECT dead_failures FROM article_state WHERE key = $1",
            &[&key.as_str()],
        )
        .map_err(pg("read dead link"))?
        .map(|r| r.get(0));
    let failures = stored.unwrap_or_default().max(0) as u32 + 1;
    let retry_at = now + dead_link_backoff(failures);
    tx.execute(
        "INSERT INTO article_state (key, url, source, dead_status, dead_failures, retry_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (key) DO UPDATE SET item = NULL, next_check = NULL,
             dead_status = excluded.dead_status, dead_failures = excluded.dead_failures,
             retry_at = excluded.retry_at",
        &[
            &key.as_str(),
            &url.as_str(),
            &source.as_str(),
            &i32::from(status),
            &(failures as i32),
            &to_millis(retry_at),
        ],
    )
    .map_err(pg("save dead link"))?;
    Ok(DeadLink { failures, retry_at })
}

/// A dead link's standing, if the address is known dead.
pub(super) fn dead_link(
    tx: &mut Transaction<'_>,
    url: &Url,
) -> Result<Option<DeadLink>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT dead_failures, retry_at FROM article_state
             WHERE key = $1 AND item IS NULL AND retry_at IS NOT NULL",
            &[&canonicalize(url).as_str()],
        )
        .map_err(pg("read dead link"))?;
    Ok(row.map(|r| DeadLink {
        failures: r.get::<_, i32>(0).max(0) as u32,
        retry_at: from_millis(r.get(1)),
    }))
}

/// Forgets dead links not asked for since before `cutoff`. Returns how many.
pub(super) fn forget_dead_links(
    tx: &mut Transaction<'_>,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    tx.execute(
        "DELETE FROM article_state WHERE item IS NULL AND retry_at < $1",
        &[&to_millis(cutoff)],
    )
    .map_err(pg("forget old dead links"))
}

/// Makes every young article of `source` due now. Returns how many.
pub(super) fn refresh_now(
    tx: &mut Transaction<'_>,
    source: &SourceId,
    within: Duration,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let now_ms = to_millis(now);
    let young_since = now_ms.saturating_sub(within.as_millis() as i64);
    let n = tx
        .execute(
            "UPDATE article_state SET next_check = $2
             WHERE source = $1 AND item IS NOT NULL AND NOT alias AND next_check IS NOT NULL
                 AND born > $3",
            &[&source.as_str(), &now_ms, &young_since],
        )
        .map_err(pg("make re-checks due"))?;
    Ok(n as usize)
}

/// When `url`'s next re-check is due, if it is re-checked.
pub(super) fn next_check(
    tx: &mut Transaction<'_>,
    url: &Url,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(known(tx, &canonicalize(url))?
        .and_then(|k| k.next_check)
        .map(from_millis))
}
