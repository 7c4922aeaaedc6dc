//! The store's decisions about article pages, for both backends: which links a run
//! fetches (new ones, dead links past their backoff, stored articles re-titled or due
//! for a re-check), when a fetched page is asked again, and how long a dead link
//! waits. Each backend gives the reads and writes these need in its own SQL, as an
//! [`ArticleStateSql`] impl on its transaction type; no rule lives in a backend.
//! Recording the article itself is `recording`'s job.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use url::Url;
use xxhash_rust::xxh3::xxh3_64;

use super::StoreError;
use super::encoding::{from_millis, to_millis};
use crate::dedup::canonicalize;
use crate::model::{
    ArticlePlan, ArticleVisit, Candidate, DeadLink, ItemId, PageFetch, SourceId, Validators,
    VisitReason,
};

/// Wait before a dead link is asked again the first time; it doubles with each 404/410.
pub const DEAD_LINK_FIRST_BACKOFF: Duration = Duration::from_secs(3600);
/// Longest wait between two requests for a dead link.
pub const DEAD_LINK_MAX_BACKOFF: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the store knows about one article address (its row in `article_state`).
pub(super) struct KnownArticle {
    /// The item whose page it is: `(rowid, id)`; `None` for a dead link.
    pub item: Option<(i64, ItemId)>,
    /// Another address of the item, never asked again.
    pub alias: bool,
    /// When the article was published, else first fetched (ms).
    pub born: Option<i64>,
    pub validators: Validators,
    /// The title a listing last showed for it.
    pub listed_title: Option<String>,
    /// When it is re-checked next (ms), if it is.
    pub next_check: Option<i64>,
    /// When a dead link may be asked again (ms).
    pub retry_at: Option<i64>,
}

/// A young stored article of a source whose re-check is due.
pub(super) struct DueArticle {
    /// The address asked for, as stored.
    pub url: String,
    pub item: ItemId,
    pub validators: Validators,
}

/// The fetch state saved for an article page after it was fetched.
pub(super) struct PageState<'a> {
    /// The canonical form of `fetch.asked`.
    pub key: &'a Url,
    pub fetch: &'a PageFetch,
    pub source: &'a SourceId,
    /// The rowid of the item the page is.
    pub item: i64,
    pub alias: bool,
    /// The article's published time (ms); the first fetch time stands in for a page
    /// stored without one.
    pub published: Option<i64>,
    pub next_check: Option<i64>,
}

/// The reads and writes of article fetch state, in one backend's SQL, within the
/// transaction the decisions run in. Addresses are canonical keys.
pub(super) trait ArticleStateSql {
    fn article_state(&mut self, key: &Url) -> Result<Option<KnownArticle>, StoreError>;
    /// Whether `key` is a link of a stored item.
    fn is_linked(&mut self, key: &Url) -> Result<bool, StoreError>;
    fn save_listed_title(&mut self, key: &Url, title: &str) -> Result<(), StoreError>;
    /// `source`'s stored pages (not aliases) born after `young_since` whose re-check is
    /// due at `now_ms`, earliest first.
    fn due_articles(
        &mut self,
        source: &SourceId,
        young_since: i64,
        now_ms: i64,
    ) -> Result<Vec<DueArticle>, StoreError>;
    /// Saves a fetched page's state; it is no dead link any more.
    fn save_page_state(&mut self, page: &PageState<'_>) -> Result<(), StoreError>;
    /// Dead answers in a row so far (0 for an address not known dead).
    fn dead_failures(&mut self, key: &Url) -> Result<u32, StoreError>;
    /// Saves that `url` (key `key`) answered `status` and is a dead link; it is no
    /// item's page any more.
    fn save_dead_link(
        &mut self,
        key: &Url,
        url: &Url,
        source: &SourceId,
        status: u16,
        dead: &DeadLink,
    ) -> Result<(), StoreError>;
    fn dead_link(&mut self, key: &Url) -> Result<Option<DeadLink>, StoreError>;
    /// Moves `key`'s next re-check to `at_ms`, if it is re-checked at all.
    fn set_next_check(&mut self, key: &Url, at_ms: i64) -> Result<(), StoreError>;
    /// Makes the re-check of `source`'s stored pages born after `young_since` due at
    /// `now_ms`. Returns how many.
    fn make_due(
        &mut self,
        source: &SourceId,
        young_since: i64,
        now_ms: i64,
    ) -> Result<usize, StoreError>;
    /// Forgets dead links whose backoff ended before `cutoff` (ms): were one listed
    /// again, it would simply be asked again. Returns how many.
    fn forget_dead_links(&mut self, cutoff: i64) -> Result<usize, StoreError>;
}

/// The time a plan is made at, and the age limit of the articles it re-checks (ms).
#[derive(Debug, Clone, Copy)]
struct PlanTime {
    now_ms: i64,
    /// An article born after this is young enough to be re-checked.
    young_since: i64,
}

impl PlanTime {
    fn at(now: DateTime<Utc>, within: Duration) -> PlanTime {
        let now_ms = to_millis(now);
        PlanTime {
            now_ms,
            young_since: now_ms.saturating_sub(within.as_millis() as i64),
        }
    }
}

/// What a run does with one listed link whose address the store knows.
#[derive(Debug, PartialEq, Eq)]
enum Listed {
    /// Not asked: an alias, a stored page not due, or an item stored from a file.
    Skip,
    /// A dead link still in its backoff: not asked, counted.
    DeadWaiting,
    Visit(VisitReason),
}

/// Decides what a run of `source` does with the links it found and with its stored
/// articles: new links and dead links past their backoff are fetched; a stored article
/// is re-checked when the listing shows it under a new title, or when it is younger
/// than `within` and its re-check is due. Also records the titles the listing showed.
pub(super) fn plan(
    tx: &mut impl ArticleStateSql,
    source: &SourceId,
    candidates: Vec<Candidate>,
    within: Duration,
    now: DateTime<Utc>,
) -> Result<ArticlePlan, StoreError> {
    let time = PlanTime::at(now, within);
    let mut plan = ArticlePlan::default();
    let mut planned = HashSet::new();
    for candidate in candidates {
        let key = canonicalize(&candidate.url);
        let known = tx.article_state(&key)?;
        let listed = match &known {
            // A stored item's address without fetch state (ingested from a file) is
            // known and not fetched.
            None if tx.is_linked(&key)? => Listed::Skip,
            None => Listed::Visit(VisitReason::New),
            Some(k) => {
                let title = candidate.title.as_deref();
                if let Some(title) = title.filter(|t| is_new_listed_title(k, t)) {
                    tx.save_listed_title(&key, title)?;
                }
                judge_known(k, title, time)
            }
        };
        let reason = match listed {
            Listed::Skip => continue,
            Listed::DeadWaiting => {
                plan.dead_links += 1;
                continue;
            }
            Listed::Visit(reason) => reason,
        };
        planned.insert(key);
        let (item, validators) = known
            .and_then(|k| k.item.map(|(_, id)| (id, k.validators)))
            .unzip();
        plan.visits.push(ArticleVisit {
            candidate,
            reason,
            item,
            validators,
        });
    }
    for visit in due_visits(tx, source, time)? {
        if planned.insert(canonicalize(&visit.candidate.url)) {
            plan.visits.push(visit);
        }
    }
    Ok(plan)
}

/// Whether `title`, shown by a listing, is one to remember for the stored article `k`.
fn is_new_listed_title(k: &KnownArticle, title: &str) -> bool {
    k.item.is_some() && !k.alias && k.listed_title.as_deref() != Some(title)
}

/// What a run does with a listed link the store knows as `k`, shown under `title`.
fn judge_known(k: &KnownArticle, title: Option<&str>, time: PlanTime) -> Listed {
    if k.alias {
        return Listed::Skip;
    }
    if k.item.is_none() {
        return match k.retry_at {
            Some(t) if t > time.now_ms => Listed::DeadWaiting,
            _ => Listed::Visit(VisitReason::DeadRetry),
        };
    }
    // A first title seen for an article stored without one is no change.
    if let (Some(title), Some(before)) = (title, k.listed_title.as_deref())
        && title != before
    {
        return Listed::Visit(VisitReason::TitleChanged);
    }
    let young = k.born.is_some_and(|b| b > time.young_since);
    let due = k.next_check.is_some_and(|t| t <= time.now_ms);
    if young && due {
        Listed::Visit(VisitReason::Due)
    } else {
        Listed::Skip
    }
}

/// A source's young stored articles whose re-check is due, earliest first.
fn due_visits(
    tx: &mut impl ArticleStateSql,
    source: &SourceId,
    time: PlanTime,
) -> Result<Vec<ArticleVisit>, StoreError> {
    let due = tx.due_articles(source, time.young_since, time.now_ms)?;
    due.into_iter()
        .map(|d| {
            let url = Url::parse(&d.url)
                .map_err(|e| StoreError::Corrupt(format!("article address {}: {e}", d.url)))?;
            Ok(ArticleVisit {
                candidate: Candidate {
                    url,
                    source: source.clone(),
                    title: None,
                    published: None,
                    article: None,
                },
                reason: VisitReason::Due,
                item: Some(d.item),
                validators: Some(d.validators),
            })
        })
        .collect()
}

/// Records that the page asked for at `fetch.asked` is the page of the item at `item`
/// (`alias`: another address of it, never asked again), with its next re-check.
pub(super) fn save_page(
    tx: &mut impl ArticleStateSql,
    fetch: &PageFetch,
    source: &SourceId,
    item: i64,
    alias: bool,
    published: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let key = canonicalize(&fetch.asked);
    let first_time = tx.article_state(&key)?.is_none_or(|k| k.item.is_none());
    let next_check = next_check_after_fetch(fetch, &key, alias, first_time);
    tx.save_page_state(&PageState {
        key: &key,
        fetch,
        source,
        item,
        alias,
        published: published.map(to_millis),
        next_check: next_check.map(to_millis),
    })
}

/// When a fetched page is asked again. A page asked for the first time is re-checked
/// between half an `every` and one `every` after it was fetched (spread by address, so
/// articles found together are not all asked again at once); later re-checks follow
/// each `every`. An alias, or a page without `every`, is not asked again.
fn next_check_after_fetch(
    fetch: &PageFetch,
    key: &Url,
    alias: bool,
    first_time: bool,
) -> Option<DateTime<Utc>> {
    let every = fetch.every.filter(|_| !alias)?;
    Some(if first_time {
        fetch.fetched_at + first_recheck_after(key, every)
    } else {
        fetch.fetched_at + every
    })
}

fn first_recheck_after(key: &Url, every: Duration) -> chrono::TimeDelta {
    let half = (every.as_millis() / 2).max(1) as u64;
    let spread = xxh3_64(key.as_str().as_bytes()) % half;
    chrono::TimeDelta::milliseconds((half + spread) as i64)
}

/// A re-check answered 304 (or failed for a reason that may pass): ask again after
/// `every`.
pub(super) fn reschedule(
    tx: &mut impl ArticleStateSql,
    url: &Url,
    every: Duration,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.set_next_check(&canonicalize(url), to_millis(now + every))
}

/// An article address answered 404 or 410: it is not asked again before a backoff that
/// starts at [`DEAD_LINK_FIRST_BACKOFF`] and doubles with each dead answer in a row, up
/// to [`DEAD_LINK_MAX_BACKOFF`]. A stored article's page that died keeps its item.
pub(super) fn mark_dead(
    tx: &mut impl ArticleStateSql,
    url: &Url,
    source: &SourceId,
    status: u16,
    now: DateTime<Utc>,
) -> Result<DeadLink, StoreError> {
    let key = canonicalize(url);
    let dead = next_dead_link(tx.dead_failures(&key)?, now);
    tx.save_dead_link(&key, url, source, status, &dead)?;
    Ok(dead)
}

/// A dead link's standing after one more dead answer than `failures`.
fn next_dead_link(failures: u32, now: DateTime<Utc>) -> DeadLink {
    let failures = failures.saturating_add(1);
    DeadLink {
        failures,
        retry_at: now + dead_link_backoff(failures),
    }
}

/// The wait after the `failures`-th dead answer in a row.
pub fn dead_link_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    DEAD_LINK_FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(DEAD_LINK_MAX_BACKOFF)
}

/// A dead link's standing, if the address is known dead.
pub(super) fn dead_link(
    tx: &mut impl ArticleStateSql,
    url: &Url,
) -> Result<Option<DeadLink>, StoreError> {
    tx.dead_link(&canonicalize(url))
}

/// Whether an article at this address is stored already.
pub(super) fn knows_url(tx: &mut impl ArticleStateSql, url: &Url) -> Result<bool, StoreError> {
    tx.is_linked(&canonicalize(url))
}

/// Makes every young article of `source` due now (`bantin crawl --refresh`). Returns how
/// many.
pub(super) fn refresh_now(
    tx: &mut impl ArticleStateSql,
    source: &SourceId,
    within: Duration,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let time = PlanTime::at(now, within);
    tx.make_due(source, time.young_since, time.now_ms)
}

/// When `url`'s next re-check is due, if it is re-checked.
pub(super) fn next_check(
    tx: &mut impl ArticleStateSql,
    url: &Url,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(tx
        .article_state(&canonicalize(url))?
        .and_then(|k| k.next_check)
        .map(from_millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;
    const NOW: PlanTime = PlanTime {
        now_ms: 100 * HOUR_MS,
        young_since: 50 * HOUR_MS,
    };

    /// A stored article's page, young, re-checked later than `NOW`, listed as "Tin".
    fn stored() -> KnownArticle {
        KnownArticle {
            item: Some((1, ItemId("cand-1".into()))),
            alias: false,
            born: Some(90 * HOUR_MS),
            validators: Validators::default(),
            listed_title: Some("Tin".into()),
            next_check: Some(101 * HOUR_MS),
            retry_at: None,
        }
    }

    fn dead(retry_at: i64) -> KnownArticle {
        KnownArticle {
            item: None,
            retry_at: Some(retry_at),
            ..stored()
        }
    }

    #[test]
    fn known_links_are_skipped_retried_or_rechecked_by_their_state() {
        let due = |next_check, born| KnownArticle {
            next_check: Some(next_check),
            born: Some(born),
            ..stored()
        };
        let rows: [(&str, KnownArticle, Option<&str>, Listed); 10] = [
            (
                "alias",
                KnownArticle {
                    alias: true,
                    ..due(0, 90 * HOUR_MS)
                },
                None,
                Listed::Skip,
            ),
            (
                "dead, in backoff",
                dead(101 * HOUR_MS),
                None,
                Listed::DeadWaiting,
            ),
            (
                "dead, backoff over",
                dead(100 * HOUR_MS),
                None,
                Listed::Visit(VisitReason::DeadRetry),
            ),
            ("not due", stored(), None, Listed::Skip),
            ("same title, not due", stored(), Some("Tin"), Listed::Skip),
            (
                "new title",
                stored(),
                Some("Tin mới"),
                Listed::Visit(VisitReason::TitleChanged),
            ),
            (
                "first title seen",
                KnownArticle {
                    listed_title: None,
                    ..stored()
                },
                Some("Tin"),
                Listed::Skip,
            ),
            (
                "young and due",
                due(100 * HOUR_MS, 90 * HOUR_MS),
                None,
                Listed::Visit(VisitReason::Due),
            ),
            (
                "due but old",
                due(100 * HOUR_MS, 50 * HOUR_MS),
                None,
                Listed::Skip,
            ),
            (
                "due, born unknown",
                KnownArticle {
                    born: None,
                    ..due(0, 0)
                },
                None,
                Listed::Skip,
            ),
        ];
        for (case, known, title, expected) in rows {
            assert_eq!(judge_known(&known, title, NOW), expected, "{case}");
        }
    }

    #[test]
    fn only_a_stored_page_remembers_a_title_it_did_not_have() {
        assert!(is_new_listed_title(&stored(), "Tin mới"));
        assert!(!is_new_listed_title(&stored(), "Tin"));
        let untitled = KnownArticle {
            listed_title: None,
            ..stored()
        };
        assert!(is_new_listed_title(&untitled, "Tin"));
        let alias = KnownArticle {
            alias: true,
            ..stored()
        };
        assert!(!is_new_listed_title(&alias, "Tin mới"));
        assert!(!is_new_listed_title(&dead(0), "Tin mới"));
    }

    fn fetch(every: Option<Duration>) -> PageFetch {
        PageFetch {
            asked: Url::parse("https://cand.com.vn/tin-1").unwrap(),
            fetched_at: from_millis(NOW.now_ms),
            validators: Validators::default(),
            listed_title: None,
            every,
        }
    }

    #[test]
    fn a_first_recheck_is_spread_over_the_second_half_of_the_interval() {
        let every = Duration::from_secs(3600);
        let page = fetch(Some(every));
        let fetched = page.fetched_at;
        for n in 0..50 {
            let key = Url::parse(&format!("https://cand.com.vn/tin-{n}")).unwrap();
            let next = next_check_after_fetch(&page, &key, false, true).unwrap();
            let wait = (next - fetched).num_milliseconds();
            assert!((HOUR_MS / 2..HOUR_MS).contains(&wait), "{key}: {wait} ms");
        }
        let key = canonicalize(&page.asked);
        let later = next_check_after_fetch(&page, &key, false, false).unwrap();
        assert_eq!((later - fetched).num_milliseconds(), HOUR_MS);
    }

    #[test]
    fn an_alias_or_a_page_without_interval_is_never_rechecked() {
        let page = fetch(Some(Duration::from_secs(3600)));
        let key = canonicalize(&page.asked);
        assert_eq!(next_check_after_fetch(&page, &key, true, true), None);
        assert_eq!(next_check_after_fetch(&page, &key, true, false), None);
        assert_eq!(
            next_check_after_fetch(&fetch(None), &key, false, true),
            None
        );
    }

    #[test]
    fn each_dead_answer_counts_one_more_and_waits_its_backoff() {
        let now = from_millis(NOW.now_ms);
        let first = next_dead_link(0, now);
        assert_eq!(first.failures, 1);
        assert_eq!(first.retry_at, now + DEAD_LINK_FIRST_BACKOFF);
        let third = next_dead_link(2, now);
        assert_eq!(third.failures, 3);
        assert_eq!(third.retry_at, now + dead_link_backoff(3));
    }

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
