//! Recording an article through dedup, for both backends: whether it is a new item, an
//! unchanged or updated one, another link of a stored story (a known link, a near
//! duplicate) or an alias of the article its canonical link names, and what each of
//! those writes. Each backend gives the reads and writes in its own SQL, as an
//! [`ItemSql`] impl on its transaction type; no decision lives in a backend. Reading
//! items for feeds and searches is the backends' own.

use chrono::Utc;
use url::Url;
use xxhash_rust::xxh3::xxh3_64;

use super::StoreError;
use super::article_plan::{self, ArticleStateSql};
use super::encoding::to_millis;
use crate::dedup::{self, Bands};
use crate::model::{Article, CategoryId, ItemId, Outcome, PageFetch, RawPage, SourceId};

/// A stable item id: the source that first found the story and a hash of its canonical
/// URL. It never changes when the article is updated.
pub fn item_id(source: &SourceId, key: &Url) -> ItemId {
    ItemId(format!(
        "{source}-{:016x}",
        xxh3_64(key.as_str().as_bytes())
    ))
}

/// A row of the band index that a lookup's probes found: `(rowid, SimHash, item id)`.
pub(super) type BandCandidate = (i64, u64, String);

/// The earliest-stored candidate whose SimHash is within `distance` bits of `hash`:
/// `(rowid, id, distance)`. Both backends' band lookups end here.
pub(super) fn earliest_within(
    hash: u64,
    distance: u32,
    candidates: impl IntoIterator<Item = BandCandidate>,
) -> Option<(i64, ItemId, u32)> {
    candidates
        .into_iter()
        .map(|(rowid, other, id)| (rowid, id, dedup::hamming(hash, other)))
        .filter(|&(_, _, d)| d <= distance)
        .min_by_key(|&(rowid, _, _)| rowid)
        .map(|(rowid, id, d)| (rowid, ItemId(id), d))
}

/// What dedup compares with: the band index layout and the largest SimHash distance
/// between two texts of one story.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DedupSettings {
    /// The layout of the SimHash band index.
    pub bands: Bands,
    /// The most bits two SimHashes of one story differ in.
    pub distance: u32,
}

/// One article being recorded, with what dedup computed about it.
pub(super) struct Recording<'a> {
    pub article: &'a Article,
    pub source: &'a SourceId,
    pub categories: &'a [CategoryId],
    pub hash: String,
    pub simhash: Option<u64>,
    /// When it is recorded (ms).
    pub now: i64,
}

/// An item as dedup compares it.
pub(super) struct StoredItem {
    pub rowid: i64,
    pub id: ItemId,
    pub content_hash: String,
    pub simhash: Option<u64>,
}

/// The item an address is a link of, with the content hash of the copy seen there.
pub(super) struct LinkedItem {
    pub rowid: i64,
    pub id: ItemId,
    pub link_hash: String,
}

/// The reads and writes of recording, in one backend's SQL, within the transaction the
/// decisions run in. Items are named by rowid; addresses are canonical keys.
pub(super) trait ItemSql: ArticleStateSql {
    /// Readies the transaction for recording the story at `key`: another writer
    /// recording it waits until this transaction ends (where the backend does not
    /// serialize writers already), and the commit waits for the disk no more than
    /// SQLite's WAL commit does.
    fn begin_recording(&mut self, key: &Url) -> Result<(), StoreError>;
    /// Keeps a fetched page for re-extraction.
    fn save_raw_page(&mut self, raw: &RawPage) -> Result<(), StoreError>;
    fn item_at_key(&mut self, key: &Url) -> Result<Option<StoredItem>, StoreError>;
    fn item_linked_at(&mut self, key: &Url) -> Result<Option<LinkedItem>, StoreError>;
    /// Whether the fetch state knows `key` as the item's own page (not an alias).
    fn is_page_of(&mut self, key: &Url, rowid: i64) -> Result<bool, StoreError>;
    /// The earliest-stored item within `dedup.distance` bits of `hash`:
    /// `(rowid, id, distance)`.
    fn near_duplicate(
        &mut self,
        dedup: DedupSettings,
        hash: u64,
    ) -> Result<Option<(i64, ItemId, u32)>, StoreError>;
    /// Stores the article as a new item `id` under `key`, in the search index too.
    /// Returns its rowid.
    fn insert_item(&mut self, r: &Recording<'_>, id: &ItemId, key: &Url)
    -> Result<i64, StoreError>;
    /// Replaces the item's stored article, the content hash of its own link and its
    /// search words. An article without a date keeps the item's sort time.
    fn update_item(&mut self, r: &Recording<'_>, rowid: i64) -> Result<(), StoreError>;
    fn clear_bands(&mut self, rowid: i64) -> Result<(), StoreError>;
    fn insert_bands(
        &mut self,
        bands: Bands,
        rowid: i64,
        id: &ItemId,
        hash: u64,
    ) -> Result<(), StoreError>;
    /// Records `key` as an address of the item (kept when already recorded).
    fn insert_link(&mut self, key: &Url, rowid: i64, r: &Recording<'_>) -> Result<(), StoreError>;
    fn update_link_hash(&mut self, key: &Url, hash: &str) -> Result<(), StoreError>;
    fn add_categories(&mut self, rowid: i64, categories: &[CategoryId]) -> Result<(), StoreError>;
    fn item_rowid(&mut self, id: &ItemId) -> Result<Option<i64>, StoreError>;
    fn clear_categories(&mut self, rowid: i64) -> Result<(), StoreError>;
    fn replace_categories(
        &mut self,
        rowid: i64,
        categories: &[CategoryId],
    ) -> Result<(), StoreError> {
        self.clear_categories(rowid)?;
        self.add_categories(rowid, categories)
    }
}

/// What recording an article does, decided before anything is written.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// No stored story: a new item under `key`.
    New { key: Url },
    /// The item at the article's own address, same content.
    Unchanged {
        rowid: i64,
        id: ItemId,
        reason: &'static str,
    },
    /// The item at the article's own address, changed content: updated in place.
    Updated { rowid: i64, id: ItemId },
    /// The same story as `of` at another address `key`: a known link whose copy changed,
    /// or a near duplicate (`new_link`).
    Duplicate {
        rowid: i64,
        of: ItemId,
        key: Url,
        new_link: bool,
        reason: String,
    },
    /// A page at another address whose canonical link names `of` and whose text is
    /// `of`'s: its address becomes another link of `of`, never fetched again.
    Alias {
        rowid: i64,
        of: ItemId,
        reason: String,
    },
}

/// What the item stored at an article's canonical key is to the article.
#[derive(Debug, PartialEq, Eq)]
enum AtKey {
    /// Its own item, same content.
    Same,
    /// Its own item, changed content.
    Changed,
    /// Another article, which the page's text matches: the page is an alias of it.
    Alias,
    /// Another article with another text: the page is a story of its own.
    Other,
}

/// Records an article through dedup: new, unchanged, updated, duplicate or alias.
/// With `fetch`, the article is a page fetched from `fetch.asked`: its fetch state is
/// saved with it, and a canonical link naming another stored item merges only when the
/// texts are near duplicates (a page must not overwrite another article).
pub(super) fn record(
    tx: &mut impl ItemSql,
    dedup: DedupSettings,
    article: &Article,
    source: &SourceId,
    categories: &[CategoryId],
    raw: Option<&RawPage>,
    fetch: Option<&PageFetch>,
) -> Result<Outcome, StoreError> {
    if let Some(raw) = raw {
        tx.save_raw_page(raw)?;
    }
    let r = Recording {
        article,
        source,
        categories,
        hash: dedup::content_hash(article),
        simhash: dedup::body_simhash(&article.body_text),
        now: to_millis(Utc::now()),
    };
    let key = dedup::dedup_key(article);
    tx.begin_recording(&key)?;
    let (outcome, rowid, alias) = match decide(tx, dedup, &r, key, fetch)? {
        Decision::New { key } => {
            let (outcome, rowid) = record_new(tx, dedup, &r, &key)?;
            (outcome, rowid, false)
        }
        Decision::Unchanged { rowid, id, reason } => {
            tx.add_categories(rowid, r.categories)?;
            tracing::debug!(item_id = %id, url = %r.article.url, reason, "unchanged");
            (Outcome::Unchanged(id), rowid, false)
        }
        Decision::Updated { rowid, id } => {
            (record_updated(tx, dedup, &r, rowid, id)?, rowid, false)
        }
        Decision::Duplicate {
            rowid,
            of,
            key,
            new_link,
            reason,
        } => {
            let outcome = record_duplicate(tx, &r, rowid, of, &key, new_link, reason)?;
            (outcome, rowid, true)
        }
        Decision::Alias { rowid, of, reason } => {
            (record_alias(tx, &r, rowid, of, reason)?, rowid, true)
        }
    };
    if let Some(fetch) = fetch {
        let published = article.published.map(|p| p.with_timezone(&Utc));
        article_plan::save_page(tx, fetch, source, rowid, alias, published)?;
    }
    Ok(outcome)
}

/// Replaces the categories of item `id` (after re-classification), if it is stored.
pub(super) fn set_categories(
    tx: &mut impl ItemSql,
    id: &ItemId,
    categories: &[CategoryId],
) -> Result<(), StoreError> {
    match tx.item_rowid(id)? {
        Some(rowid) => tx.replace_categories(rowid, categories),
        None => Ok(()),
    }
}

/// Finds what the article is to the store. The item at `key` (the article's canonical
/// address) is its own when no fetch is given, or when the page was fetched from one of
/// that item's own addresses; otherwise the canonical link names another article.
fn decide(
    tx: &mut impl ItemSql,
    dedup: DedupSettings,
    r: &Recording<'_>,
    key: Url,
    fetch: Option<&PageFetch>,
) -> Result<Decision, StoreError> {
    if let Some(stored) = tx.item_at_key(&key)? {
        let own = match fetch {
            None => true,
            Some(f) => is_own_address(tx, &f.asked, &r.article.url, &key, stored.rowid)?,
        };
        let at_key = judge_item_at_key(&stored, own, &r.hash, r.simhash, dedup.distance);
        let StoredItem { rowid, id, .. } = stored;
        return Ok(match at_key {
            AtKey::Same => {
                let reason = "same canonical url, same content hash";
                Decision::Unchanged { rowid, id, reason }
            }
            AtKey::Changed => Decision::Updated { rowid, id },
            AtKey::Alias => {
                let reason = format!("its canonical link names {id} and the texts match");
                Decision::Alias {
                    rowid,
                    of: id,
                    reason,
                }
            }
            AtKey::Other => {
                let own_key = dedup::canonicalize(&r.article.url);
                // Warned once, when the separate item is made; its re-checks only update it.
                if tx.item_at_key(&own_key)?.is_none() {
                    tracing::warn!(url = %r.article.url, item_id = %id, canonical = %key,
                        "page names another stored article as canonical but its text differs; stored as a separate item");
                }
                return decide(tx, dedup, r, own_key, None);
            }
        });
    }
    if let Some(linked) = tx.item_linked_at(&key)? {
        return Ok(judge_known_link(linked, key, &r.hash));
    }
    if let Some(h) = r.simhash
        && let Some((rowid, of, distance)) = tx.near_duplicate(dedup, h)?
    {
        let reason = format!("near duplicate, SimHash distance {distance}");
        return Ok(Decision::Duplicate {
            rowid,
            of,
            key,
            new_link: true,
            reason,
        });
    }
    Ok(Decision::New { key })
}

/// What `stored`, the item at the article's canonical key, is to the article of content
/// hash `hash` and SimHash `simhash` (`own`: the page was fetched from one of the
/// item's own addresses).
fn judge_item_at_key(
    stored: &StoredItem,
    own: bool,
    hash: &str,
    simhash: Option<u64>,
    distance: u32,
) -> AtKey {
    let same = stored.content_hash == hash;
    if own {
        return if same { AtKey::Same } else { AtKey::Changed };
    }
    let near = match (simhash, stored.simhash) {
        (Some(a), Some(b)) => dedup::hamming(a, b) <= distance,
        _ => false,
    };
    if same || near {
        AtKey::Alias
    } else {
        AtKey::Other
    }
}

/// The article at `key`, a known link of `linked`: unchanged when its copy there is
/// the same, else a duplicate whose copy changed.
fn judge_known_link(linked: LinkedItem, key: Url, hash: &str) -> Decision {
    let LinkedItem {
        rowid,
        id,
        link_hash,
    } = linked;
    if link_hash == hash {
        let reason = "known link of the item, same content hash";
        return Decision::Unchanged { rowid, id, reason };
    }
    Decision::Duplicate {
        rowid,
        of: id,
        key,
        new_link: false,
        reason: "known link of the item, its copy changed".to_owned(),
    }
}

/// Whether a page asked for at `asked` (answered from `fetched`) is the item at `key`
/// (row `rowid`) itself: it was asked at or redirected to that address, or `asked` is
/// already known as that item's page.
fn is_own_address(
    tx: &mut impl ItemSql,
    asked: &Url,
    fetched: &Url,
    key: &Url,
    rowid: i64,
) -> Result<bool, StoreError> {
    let asked = dedup::canonicalize(asked);
    if asked == *key || dedup::canonicalize(fetched) == *key {
        return Ok(true);
    }
    tx.is_page_of(&asked, rowid)
}

fn record_new(
    tx: &mut impl ItemSql,
    dedup: DedupSettings,
    r: &Recording<'_>,
    key: &Url,
) -> Result<(Outcome, i64), StoreError> {
    let id = item_id(r.source, key);
    let rowid = tx.insert_item(r, &id, key)?;
    tx.insert_link(key, rowid, r)?;
    if let Some(h) = r.simhash {
        tx.insert_bands(dedup.bands, rowid, &id, h)?;
    }
    tx.add_categories(rowid, r.categories)?;
    tracing::debug!(item_id = %id, url = %key, source = %r.source, reason = "no item at this canonical url and no near duplicate", "new");
    Ok((Outcome::New(id), rowid))
}

fn record_updated(
    tx: &mut impl ItemSql,
    dedup: DedupSettings,
    r: &Recording<'_>,
    rowid: i64,
    id: ItemId,
) -> Result<Outcome, StoreError> {
    tx.update_item(r, rowid)?;
    tx.clear_bands(rowid)?;
    if let Some(h) = r.simhash {
        tx.insert_bands(dedup.bands, rowid, &id, h)?;
    }
    tx.replace_categories(rowid, r.categories)?;
    tracing::debug!(item_id = %id, url = %r.article.url, reason = "same canonical url, content hash changed", "updated");
    Ok(Outcome::Updated(id))
}

fn record_duplicate(
    tx: &mut impl ItemSql,
    r: &Recording<'_>,
    rowid: i64,
    of: ItemId,
    key: &Url,
    new_link: bool,
    reason: String,
) -> Result<Outcome, StoreError> {
    if new_link {
        tx.insert_link(key, rowid, r)?;
    } else {
        tx.update_link_hash(key, &r.hash)?;
    }
    tx.add_categories(rowid, r.categories)?;
    tracing::debug!(item_id = %of, url = %key, source = %r.source, reason = %reason, "duplicate");
    Ok(Outcome::Duplicate { of, reason })
}

fn record_alias(
    tx: &mut impl ItemSql,
    r: &Recording<'_>,
    rowid: i64,
    of: ItemId,
    reason: String,
) -> Result<Outcome, StoreError> {
    let key = dedup::canonicalize(&r.article.url);
    tx.insert_link(&key, rowid, r)?;
    tx.add_categories(rowid, r.categories)?;
    tracing::info!(item_id = %of, url = %r.article.url, source = %r.source, reason = %reason, "duplicate: alias of a stored item");
    Ok(Outcome::Duplicate { of, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "stored-hash";
    const SIMHASH: u64 = 0b1011_0110;

    #[test]
    fn the_earliest_stored_candidate_within_the_distance_is_the_duplicate() {
        let candidates = [
            (7, SIMHASH ^ 0b1, "later".to_owned()),
            (2, SIMHASH ^ 0b1111, "earliest, too far".to_owned()),
            (5, SIMHASH ^ 0b11, "earliest near".to_owned()),
        ];
        assert_eq!(
            earliest_within(SIMHASH, 3, candidates.clone()),
            Some((5, ItemId("earliest near".into()), 2))
        );
        assert_eq!(earliest_within(SIMHASH, 0, candidates), None);
    }

    fn stored() -> StoredItem {
        StoredItem {
            rowid: 7,
            id: ItemId("cand-7".into()),
            content_hash: HASH.into(),
            simhash: Some(SIMHASH),
        }
    }

    #[test]
    fn the_item_at_its_own_key_is_unchanged_or_updated_by_content_hash() {
        let near = Some(SIMHASH);
        assert_eq!(
            judge_item_at_key(&stored(), true, HASH, near, 3),
            AtKey::Same
        );
        assert_eq!(
            judge_item_at_key(&stored(), true, "edited", near, 3),
            AtKey::Changed
        );
    }

    #[test]
    fn another_article_named_canonical_is_merged_only_when_the_texts_match() {
        let far = Some(SIMHASH ^ 0b1111);
        let close = Some(SIMHASH ^ 0b111);
        let rows = [
            ("same content hash", HASH, far, AtKey::Alias),
            ("SimHash within the distance", "other", close, AtKey::Alias),
            ("SimHash past the distance", "other", far, AtKey::Other),
            ("no SimHash to compare", "other", None, AtKey::Other),
        ];
        for (case, hash, simhash, expected) in rows {
            assert_eq!(
                judge_item_at_key(&stored(), false, hash, simhash, 3),
                expected,
                "{case}"
            );
        }
    }

    #[test]
    fn a_known_link_is_unchanged_until_its_copy_changes() {
        let key = Url::parse("https://baomoi.com/tin-7").unwrap();
        let linked = || LinkedItem {
            rowid: 7,
            id: ItemId("cand-7".into()),
            link_hash: HASH.into(),
        };
        assert!(matches!(
            judge_known_link(linked(), key.clone(), HASH),
            Decision::Unchanged { rowid: 7, .. }
        ));
        assert!(matches!(
            judge_known_link(linked(), key.clone(), "edited"),
            Decision::Duplicate { rowid: 7, new_link: false, key: k, .. } if k == key
        ));
    }
}
