//! Items in PostgreSQL: recording an article through dedup (canonical key, content
//! hash, SimHash bands), the search words, reading items for feeds and searches,
//! categories, raw pages and retention. The decisions are the SQLite backend's, in
//! PostgreSQL's SQL.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use postgres::{Row, Transaction};
use url::Url;

use super::{article_state, pg};
use crate::dedup::{self, Bands};
use crate::model::{
    ALL_CATEGORY, Article, CategoryId, Item, ItemId, Outcome, PageFetch, RawPage, SourceId,
};
use crate::store::encoding::{
    compress, decode_article, decompress, encode_article, from_millis, sort_time, to_millis,
};
use crate::store::items::{DedupSettings, item_id};
use crate::store::{RawPageCursor, StoreError};
use crate::text::search_terms;

/// One article being recorded, with what dedup computed about it.
struct Recording<'a> {
    article: &'a Article,
    source: &'a SourceId,
    categories: &'a [CategoryId],
    hash: String,
    simhash: Option<u64>,
    now: i64,
}

/// What recording an article does, decided before anything is written (as in SQLite).
enum Decision {
    New {
        key: Url,
    },
    Unchanged {
        rowid: i64,
        id: ItemId,
        reason: &'static str,
    },
    Updated {
        rowid: i64,
        id: ItemId,
    },
    Duplicate {
        rowid: i64,
        of: ItemId,
        key: Url,
        new_link: bool,
        reason: String,
    },
    Alias {
        rowid: i64,
        of: ItemId,
        reason: String,
    },
}

/// Records an article through dedup: new, unchanged, updated, duplicate or alias; with
/// `fetch`, its page's fetch state in the same transaction.
pub(super) fn record(
    tx: &mut Transaction<'_>,
    dedup: DedupSettings,
    article: &Article,
    source: &SourceId,
    categories: &[CategoryId],
    raw: Option<&RawPage>,
    fetch: Option<&PageFetch>,
) -> Result<Outcome, StoreError> {
    // Committed as SQLite's WAL store commits (`synchronous = NORMAL`): a server crash may
    // lose the last moment of recorded items, never half of one, and the run that
    // recorded them fetches them again, as its later state commits synchronously and a
    // synchronous commit makes every earlier one durable. Waiting for the disk at each
    // item held the store to the disk's flush rate (about 290 a second here).
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .map_err(pg("relax item commit"))?;
    if let Some(raw) = raw {
        save_raw_page(tx, raw)?;
    }
    let r = Recording {
        article,
        source,
        categories,
        hash: dedup::content_hash(article),
        simhash: dedup::body_simhash(&article.body_text),
        now: to_millis(Utc::now()),
    };
    // Two workers recording the same story at once would both find no item; the
    // transaction-scoped lock on the key makes the second wait and see the first's.
    let key = dedup::dedup_key(article);
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&key.as_str()],
    )
    .map_err(pg("lock item key"))?;
    let (outcome, rowid, alias) = match decide(tx, dedup, &r, key, fetch)? {
        Decision::New { key } => {
            let (outcome, rowid) = record_new(tx, dedup, &r, &key)?;
            (outcome, rowid, false)
        }
        Decision::Unchanged { rowid, id, reason } => {
            add_categories(tx, rowid, r.categories)?;
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
            let key = dedup::canonicalize(&r.article.url);
            insert_link(tx, &key, rowid, &r)?;
            add_categories(tx, rowid, r.categories)?;
            tracing::info!(item_id = %of, url = %r.article.url, source = %r.source, reason = %reason, "duplicate: alias of a stored item");
            (Outcome::Duplicate { of, reason }, rowid, true)
        }
    };
    if let Some(fetch) = fetch {
        let published = article.published.map(|p| p.with_timezone(&Utc));
        article_state::save_page(tx, fetch, source, rowid, alias, published)?;
    }
    Ok(outcome)
}

/// Finds what the article is to the store (see the SQLite backend's `decide`).
fn decide(
    tx: &mut Transaction<'_>,
    dedup: DedupSettings,
    r: &Recording<'_>,
    key: Url,
    fetch: Option<&PageFetch>,
) -> Result<Decision, StoreError> {
    if let Some((rowid, id, stored_hash, stored_simhash)) = item_at_key(tx, &key)? {
        let own = match fetch {
            None => true,
            Some(f) => is_own_address(tx, &f.asked, &r.article.url, &key, rowid)?,
        };
        if own && stored_hash == r.hash {
            let reason = "same canonical url, same content hash";
            return Ok(Decision::Unchanged { rowid, id, reason });
        }
        if own {
            return Ok(Decision::Updated { rowid, id });
        }
        let near = match (r.simhash, stored_simhash) {
            (Some(a), Some(b)) => dedup::hamming(a, b) <= dedup.distance,
            _ => false,
        };
        if stored_hash == r.hash || near {
            let reason = format!("its canonical link names {id} and the texts match");
            return Ok(Decision::Alias {
                rowid,
                of: id,
                reason,
            });
        }
        let own_key = dedup::canonicalize(&r.article.url);
        if item_at_key(tx, &own_key)?.is_none() {
            tracing::warn!(url = %r.article.url, item_id = %id, canonical = %key,
                "page names another stored article as canonical but its text differs; stored as a separate item");
        }
        return decide(tx, dedup, r, own_key, None);
    }
    if let Some(row) = tx
        .query_opt(
            "SELECT l.item, i.id, l.content_hash FROM item_links l
             JOIN items i ON i.rowid = l.item WHERE l.key = $1",
            &[&key.as_str()],
        )
        .map_err(pg("look up item link"))?
    {
        let (rowid, of, link_hash): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
        let of = ItemId(of);
        if link_hash == r.hash {
            let reason = "known link of the item, same content hash";
            return Ok(Decision::Unchanged {
                rowid,
                id: of,
                reason,
            });
        }
        let reason = "known link of the item, its copy changed".to_owned();
        return Ok(Decision::Duplicate {
            rowid,
            of,
            key,
            new_link: false,
            reason,
        });
    }
    if let Some(h) = r.simhash
        && let Some((rowid, of, distance)) = near_duplicate(tx, dedup.bands, dedup.distance, h)?
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

/// An item's row as dedup reads it: `(rowid, id, content hash, simhash)`.
type StoredItem = (i64, ItemId, String, Option<u64>);

/// The item stored under `key`.
fn item_at_key(tx: &mut Transaction<'_>, key: &Url) -> Result<Option<StoredItem>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT rowid, id, content_hash, simhash FROM items WHERE key = $1",
            &[&key.as_str()],
        )
        .map_err(pg("look up item by key"))?;
    Ok(row.map(|r| {
        let simhash: Option<i64> = r.get(3);
        (
            r.get(0),
            ItemId(r.get(1)),
            r.get(2),
            simhash.map(|h| h as u64),
        )
    }))
}

/// Whether a page asked for at `asked` (answered from `fetched`) is the item at `key`.
fn is_own_address(
    tx: &mut Transaction<'_>,
    asked: &Url,
    fetched: &Url,
    key: &Url,
    rowid: i64,
) -> Result<bool, StoreError> {
    let asked = dedup::canonicalize(asked);
    if asked == *key || dedup::canonicalize(fetched) == *key {
        return Ok(true);
    }
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM article_state
                 WHERE key = $1 AND item = $2 AND NOT alias)",
            &[&asked.as_str(), &rowid],
        )
        .map_err(pg("look up article state"))?;
    Ok(row.get(0))
}

fn record_new(
    tx: &mut Transaction<'_>,
    dedup: DedupSettings,
    r: &Recording<'_>,
    key: &Url,
) -> Result<(Outcome, i64), StoreError> {
    let (article, source) = (r.article, r.source);
    let id = item_id(source, key);
    let row = tx
        .query_one(
            "INSERT INTO items (id, key, source, url, title, sort_time, first_seen, updated_at,
                 content_hash, simhash, article, terms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11)
             RETURNING rowid",
            &[
                &id.as_str(),
                &key.as_str(),
                &source.as_str(),
                &article.url.as_str(),
                &article.title,
                &sort_time(article, r.now),
                &r.now,
                &r.hash,
                &r.simhash.map(|h| h as i64),
                &encode_article(article)?,
                &terms_of(article),
            ],
        )
        .map_err(pg("insert item"))?;
    let rowid: i64 = row.get(0);
    insert_link(tx, key, rowid, r)?;
    if let Some(h) = r.simhash {
        insert_bands(tx, dedup.bands, rowid, id.as_str(), h)?;
    }
    add_categories(tx, rowid, r.categories)?;
    tracing::debug!(item_id = %id, url = %key, source = %source, reason = "no item at this canonical url and no near duplicate", "new");
    Ok((Outcome::New(id), rowid))
}

fn record_updated(
    tx: &mut Transaction<'_>,
    dedup: DedupSettings,
    r: &Recording<'_>,
    rowid: i64,
    id: ItemId,
) -> Result<Outcome, StoreError> {
    let article = r.article;
    // An edited page without a date keeps its place in the feeds (its first-seen time).
    tx.execute(
        "UPDATE items SET url = $2, title = $3, sort_time = COALESCE($4, sort_time),
             updated_at = $5, content_hash = $6, simhash = $7, article = $8, terms = $9
         WHERE rowid = $1",
        &[
            &rowid,
            &article.url.as_str(),
            &article.title,
            &article.published.map(|p| p.timestamp_millis()),
            &r.now,
            &r.hash,
            &r.simhash.map(|h| h as i64),
            &encode_article(article)?,
            &terms_of(article),
        ],
    )
    .map_err(pg("update item"))?;
    tx.execute(
        "UPDATE item_links SET content_hash = $2
         WHERE key = (SELECT key FROM items WHERE rowid = $1)",
        &[&rowid, &r.hash],
    )
    .map_err(pg("update item link"))?;
    tx.execute("DELETE FROM simhash_bands WHERE item = $1", &[&rowid])
        .map_err(pg("clear item bands"))?;
    if let Some(h) = r.simhash {
        insert_bands(tx, dedup.bands, rowid, id.as_str(), h)?;
    }
    replace_categories(tx, rowid, r.categories)?;
    tracing::debug!(item_id = %id, url = %article.url, reason = "same canonical url, content hash changed", "updated");
    Ok(Outcome::Updated(id))
}

fn record_duplicate(
    tx: &mut Transaction<'_>,
    r: &Recording<'_>,
    rowid: i64,
    of: ItemId,
    key: &Url,
    new_link: bool,
    reason: String,
) -> Result<Outcome, StoreError> {
    if new_link {
        insert_link(tx, key, rowid, r)?;
    } else {
        tx.execute(
            "UPDATE item_links SET content_hash = $2 WHERE key = $1",
            &[&key.as_str(), &r.hash],
        )
        .map_err(pg("update item link"))?;
    }
    add_categories(tx, rowid, r.categories)?;
    tracing::debug!(item_id = %of, url = %key, source = %r.source, reason = %reason, "duplicate");
    Ok(Outcome::Duplicate { of, reason })
}

/// The distinct search words of an article's title, lead, body text, authors and tags,
/// as [`search_terms`] gives them: the same words the SQLite index holds.
pub(super) fn terms_of(article: &Article) -> Vec<String> {
    let a = article;
    let text = search_terms(&format!(
        "{}\n{}\n{}\n{}\n{}",
        a.title,
        a.lead.as_deref().unwrap_or(""),
        a.body_text,
        a.authors.join("\n"),
        a.tags.join("\n")
    ));
    let mut terms: Vec<String> = text
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// Empties the near-duplicate index and fills it again in `bands`' layout.
pub(super) fn rebuild_bands(tx: &mut Transaction<'_>, bands: Bands) -> Result<usize, StoreError> {
    tx.execute("DELETE FROM simhash_bands", &[])
        .map_err(pg("clear band index"))?;
    let rows = tx
        .query(
            "SELECT rowid, id, simhash FROM items WHERE simhash IS NOT NULL",
            &[],
        )
        .map_err(pg("read simhashes"))?;
    for row in &rows {
        let (rowid, id, hash): (i64, String, i64) = (row.get(0), row.get(1), row.get(2));
        insert_bands(tx, bands, rowid, &id, hash as u64)?;
    }
    Ok(rows.len())
}

/// Computes every stored item's search words again. Returns how many items.
pub(super) fn reindex_all(tx: &mut Transaction<'_>) -> Result<usize, StoreError> {
    let rows = tx
        .query("SELECT rowid, id, article FROM items", &[])
        .map_err(pg("read items to index"))?;
    for row in &rows {
        let (rowid, id, blob): (i64, String, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
        let terms = terms_of(&decode_article(&blob, &id)?);
        tx.execute(
            "UPDATE items SET terms = $2 WHERE rowid = $1",
            &[&rowid, &terms],
        )
        .map_err(pg("index item for search"))?;
    }
    Ok(rows.len())
}

/// Records `key` as an address of the item at `rowid` (kept when already recorded).
fn insert_link(
    tx: &mut Transaction<'_>,
    key: &Url,
    rowid: i64,
    r: &Recording<'_>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO item_links (key, item, url, source, first_seen, content_hash)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        &[
            &key.as_str(),
            &rowid,
            &r.article.url.as_str(),
            &r.source.as_str(),
            &r.now,
            &r.hash,
        ],
    )
    .map_err(pg("insert item link"))?;
    Ok(())
}

fn insert_bands(
    tx: &mut Transaction<'_>,
    bands: Bands,
    rowid: i64,
    id: &str,
    hash: u64,
) -> Result<(), StoreError> {
    let stmt = tx
        .prepare(
            "INSERT INTO simhash_bands (band, value, item, simhash, item_id)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .map_err(pg("insert simhash band"))?;
    for (band, value) in bands.keys(hash) {
        tx.execute(
            &stmt,
            &[&(band as i32), &(value as i64), &rowid, &(hash as i64), &id],
        )
        .map_err(pg("insert simhash band"))?;
    }
    Ok(())
}

/// The earliest-stored item whose SimHash is within `distance` bits of `hash`, found by
/// probing the band index in one query (an index lookup per probe, no scan):
/// `(rowid, id, distance)`.
pub(super) fn near_duplicate(
    tx: &mut Transaction<'_>,
    bands: Bands,
    distance: u32,
    hash: u64,
) -> Result<Option<(i64, ItemId, u32)>, StoreError> {
    let (probe_bands, probe_values): (Vec<i32>, Vec<i64>) = bands
        .probes(hash)
        .into_iter()
        .map(|(band, value)| (band as i32, value as i64))
        .unzip();
    let rows = tx
        .query(
            "SELECT b.item, b.simhash, b.item_id
             FROM unnest($1::int[], $2::bigint[]) AS p (band, value)
             JOIN simhash_bands b ON b.band = p.band AND b.value = p.value",
            &[&probe_bands, &probe_values],
        )
        .map_err(pg("look up simhash band"))?;
    let mut best: Option<(i64, ItemId, u32)> = None;
    for row in rows {
        let (rowid, other): (i64, i64) = (row.get(0), row.get(1));
        let d = dedup::hamming(hash, other as u64);
        if d <= distance && best.as_ref().is_none_or(|(r, _, _)| rowid < *r) {
            best = Some((rowid, ItemId(row.get(2)), d));
        }
    }
    Ok(best)
}

fn add_categories(
    tx: &mut Transaction<'_>,
    rowid: i64,
    categories: &[CategoryId],
) -> Result<(), StoreError> {
    let names: Vec<&str> = categories.iter().map(CategoryId::as_str).collect();
    tx.execute(
        "INSERT INTO item_categories (item, category)
         SELECT $1, c FROM unnest($2::text[]) AS c ON CONFLICT DO NOTHING",
        &[&rowid, &names],
    )
    .map_err(pg("add item category"))?;
    Ok(())
}

fn replace_categories(
    tx: &mut Transaction<'_>,
    rowid: i64,
    categories: &[CategoryId],
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM item_categories WHERE item = $1", &[&rowid])
        .map_err(pg("clear item categories"))?;
    add_categories(tx, rowid, categories)
}

pub(super) fn set_categories(
    tx: &mut Transaction<'_>,
    id: &ItemId,
    categories: &[CategoryId],
) -> Result<(), StoreError> {
    let row = tx
        .query_opt("SELECT rowid FROM items WHERE id = $1", &[&id.as_str()])
        .map_err(pg("look up item"))?;
    match row {
        Some(row) => replace_categories(tx, row.get(0), categories),
        None => Ok(()),
    }
}

const ITEM_COLUMNS: &str = "i.rowid, i.id, i.source, i.first_seen, i.updated_at, i.article";

fn load_item(tx: &mut Transaction<'_>, row: &Row) -> Result<Item, StoreError> {
    let (rowid, id, source): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
    let (first_seen, updated_at, blob): (i64, i64, Vec<u8>) = (row.get(3), row.get(4), row.get(5));
    let article = decode_article(&blob, &id)?;
    let categories = tx
        .query(
            "SELECT category FROM item_categories WHERE item = $1 ORDER BY category",
            &[&rowid],
        )
        .map_err(pg("read item categories"))?
        .iter()
        .map(|r| CategoryId(r.get(0)))
        .collect();
    let links = tx
        .query(
            "SELECT l.url FROM item_links l JOIN items i ON i.rowid = l.item
             WHERE l.item = $1 AND l.key <> i.key ORDER BY l.first_seen, l.key",
            &[&rowid],
        )
        .map_err(pg("read item links"))?
        .iter()
        .filter_map(|r| Url::parse(r.get(0)).ok())
        .collect();
    Ok(Item {
        id: ItemId(id),
        article,
        source: SourceId(source),
        categories,
        first_seen: from_millis(first_seen),
        updated_at: from_millis(updated_at),
        links,
    })
}

fn load_items(tx: &mut Transaction<'_>, rows: Vec<Row>) -> Result<Vec<Item>, StoreError> {
    rows.iter().map(|row| load_item(tx, row)).collect()
}

pub(super) fn item(tx: &mut Transaction<'_>, id: &ItemId) -> Result<Option<Item>, StoreError> {
    let row = tx
        .query_opt(
            &format!("SELECT {ITEM_COLUMNS} FROM items i WHERE i.id = $1"),
            &[&id.as_str()],
        )
        .map_err(pg("read item"))?;
    row.map(|row| load_item(tx, &row)).transpose()
}

/// The `FROM` clause of a feed's items: every item for `all`, else those in the
/// category given as `$1`.
fn feed_items(feed: &CategoryId) -> &'static str {
    if feed.as_str() == ALL_CATEGORY {
        "items i WHERE $1::text IS NOT NULL"
    } else {
        "items i JOIN item_categories c ON c.item = i.rowid AND c.category = $1 WHERE TRUE"
    }
}

pub(super) fn latest(
    tx: &mut Transaction<'_>,
    feed: &CategoryId,
    limit: usize,
) -> Result<Vec<Item>, StoreError> {
    let query = format!(
        "SELECT {ITEM_COLUMNS} FROM {} ORDER BY i.sort_time DESC, i.rowid DESC LIMIT $2",
        feed_items(feed)
    );
    let rows = tx
        .query(&query, &[&feed.as_str(), &(limit as i64)])
        .map_err(pg("read latest items"))?;
    load_items(tx, rows)
}

/// How many of a feed's newest items a search reads in time order, per item asked for,
/// before it turns to the GIN index: a word this common among recent items fills the
/// page from them at once.
const RECENT_PER_RESULT: usize = 40;

/// The newest items of a feed holding every word of `words` (in [`search_terms`] form)
/// among their search words: whole words, newest first.
///
/// Two plans, chosen here rather than by the planner: its estimate for a word it has no
/// statistics for is a fixed share of the table, so it would walk every item in time
/// order looking for a word none holds (1.4 s at 1M items). The recent items are read
/// first; if they hold fewer matches than asked for, the matches come from the GIN index
/// and only they are sorted.
pub(super) fn search(
    tx: &mut Transaction<'_>,
    feed: &CategoryId,
    words: &str,
    limit: usize,
) -> Result<Vec<Item>, StoreError> {
    let terms = search_terms(words);
    if terms.is_empty() {
        return latest(tx, feed, limit);
    }
    let terms: Vec<&str> = terms.split(' ').collect();
    let window = limit.saturating_mul(RECENT_PER_RESULT);
    let recent = format!(
        "WITH recent AS (SELECT i.rowid, i.sort_time, i.terms FROM {}
             ORDER BY i.sort_time DESC, i.rowid DESC LIMIT $4)
         SELECT {ITEM_COLUMNS} FROM recent r JOIN items i ON i.rowid = r.rowid
         WHERE r.terms @> $3::text[] ORDER BY r.sort_time DESC, r.rowid DESC LIMIT $2",
        feed_items(feed)
    );
    let limit = limit as i64;
    let rows = tx
        .query(&recent, &[&feed.as_str(), &limit, &terms, &(window as i64)])
        .map_err(pg("search recent items"))?;
    if rows.len() as i64 == limit {
        return load_items(tx, rows);
    }
    let in_feed = if feed.as_str() == ALL_CATEGORY {
        "WHERE $1::text IS NOT NULL"
    } else {
        "JOIN item_categories c ON c.item = m.rowid AND c.category = $1"
    };
    // MATERIALIZED keeps the matches a set read through the index, not a filter on a
    // walk in time order.
    let indexed = format!(
        "WITH matching AS MATERIALIZED (
             SELECT rowid, sort_time FROM items WHERE terms @> $3::text[]),
         newest AS MATERIALIZED (SELECT m.rowid, m.sort_time FROM matching m {in_feed}
             ORDER BY m.sort_time DESC, m.rowid DESC LIMIT $2)
         SELECT {ITEM_COLUMNS} FROM newest n JOIN items i ON i.rowid = n.rowid
         ORDER BY n.sort_time DESC, n.rowid DESC"
    );
    let rows = tx
        .query(&indexed, &[&feed.as_str(), &limit, &terms])
        .map_err(pg("search items"))?;
    load_items(tx, rows)
}

fn save_raw_page(tx: &mut Transaction<'_>, raw: &RawPage) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO raw_pages (url, source, fetched_at, html) VALUES ($1, $2, $3, $4)
         ON CONFLICT (url) DO UPDATE SET source = excluded.source,
             fetched_at = excluded.fetched_at, html = excluded.html",
        &[
            &raw.url.as_str(),
            &raw.source.as_str(),
            &to_millis(raw.fetched_at),
            &compress(raw.html.as_bytes()),
        ],
    )
    .map_err(pg("save raw page"))?;
    Ok(())
}

/// A batch of raw pages after `after` (keyset paging on `(fetched_at, url)`).
pub(super) fn raw_pages(
    tx: &mut Transaction<'_>,
    source: Option<&SourceId>,
    since: Option<DateTime<Utc>>,
    after: Option<&RawPageCursor>,
    limit: usize,
) -> Result<Vec<RawPage>, StoreError> {
    let since = since.map_or(i64::MIN, to_millis);
    // The cursor compares as a row, which the `(fetched_at, url)` index serves.
    let (after_ms, after_url) = after.map_or((i64::MIN, ""), |c| {
        (to_millis(c.fetched_at), c.url.as_str())
    });
    let rows = tx
        .query(
            "SELECT url, source, fetched_at, html FROM raw_pages
             WHERE fetched_at >= $2 AND ($1::text IS NULL OR source = $1)
                 AND (fetched_at, url) > ($3, $4)
             ORDER BY fetched_at, url
             LIMIT $5",
            &[
                &source.map(SourceId::as_str),
                &since,
                &after_ms,
                &after_url,
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )
        .map_err(pg("read raw pages"))?;
    rows.iter()
        .map(|row| {
            let (url, source, fetched_at): (String, String, i64) =
                (row.get(0), row.get(1), row.get(2));
            let html = String::from_utf8(decompress(row.get(3), &url)?)
                .map_err(|e| StoreError::Corrupt(format!("raw page {url}: {e}")))?;
            let url = Url::parse(&url)
                .map_err(|e| StoreError::Corrupt(format!("raw page address {url}: {e}")))?;
            Ok(RawPage {
                url,
                source: SourceId(source),
                fetched_at: from_millis(fetched_at),
                html,
            })
        })
        .collect()
}

/// Retention, as in SQLite: old items not among any feed's newest `keep_per_feed`, old
/// raw pages and long-dead links.
pub(super) fn prune(
    tx: &mut Transaction<'_>,
    retention_days: u32,
    raw_page_days: u32,
    keep_per_feed: usize,
    feeds: &[CategoryId],
) -> Result<usize, StoreError> {
    let now = Utc::now();
    let cutoff = to_millis(now - Duration::days(i64::from(retention_days)));
    let mut protected: HashSet<i64> = HashSet::new();
    let all = CategoryId(ALL_CATEGORY.into());
    for feed in feeds.iter().chain(std::iter::once(&all)) {
        let query = format!(
            "SELECT i.rowid FROM {} ORDER BY i.sort_time DESC, i.rowid DESC LIMIT $2",
            feed_items(feed)
        );
        let rows = tx
            .query(&query, &[&feed.as_str(), &(keep_per_feed as i64)])
            .map_err(pg("read feed items"))?;
        protected.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
    }
    // An old article stored only today is kept for the full period too.
    let expired: Vec<i64> = tx
        .query(
            "SELECT rowid FROM items WHERE sort_time < $1 AND first_seen < $1",
            &[&cutoff],
        )
        .map_err(pg("find expired items"))?
        .iter()
        .map(|r| r.get(0))
        .filter(|r| !protected.contains(r))
        .collect();
    let deleted = tx
        .execute("DELETE FROM items WHERE rowid = ANY($1)", &[&expired])
        .map_err(pg("delete expired items"))? as usize;
    let raw_cutoff = to_millis(now - Duration::days(i64::from(raw_page_days)));
    let raw_deleted = tx
        .execute(
            "DELETE FROM raw_pages WHERE fetched_at < $1",
            &[&raw_cutoff],
        )
        .map_err(pg("delete old raw pages"))?;
    let dead_links = article_state::forget_dead_links(tx, from_millis(cutoff))?;
    tracing::info!(
        items = deleted,
        raw_pages = raw_deleted,
        dead_links,
        "store pruned"
    );
    Ok(deleted)
}
