//! Items in PostgreSQL's SQL: the [`ItemSql`] and [`RetentionSql`] impls that
//! `store::recording` and `store::retention` decide over (items, their links, SimHash
//! bands and categories, raw pages), the search words, and reading items and raw pages.

use chrono::{DateTime, Utc};
use postgres::{Row, Transaction};
use url::Url;

use super::pg;
use crate::dedup::Bands;
use crate::model::{ALL_CATEGORY, Article, CategoryId, Item, ItemId, RawPage, SourceId};
use crate::store::encoding::{
    compress, decode_article, decompress, encode_article, from_millis, sort_time, to_millis,
};
use crate::store::recording::{self, DedupSettings, ItemSql, LinkedItem, Recording, StoredItem};
use crate::store::retention::RetentionSql;
use crate::store::{RawPageCursor, StoreError};
use crate::text::search_terms;

impl ItemSql for Transaction<'_> {
    fn begin_recording(&mut self, key: &Url) -> Result<(), StoreError> {
        // Committed as SQLite's WAL store commits (`synchronous = NORMAL`): a server crash
        // may lose the last moment of recorded items, never half of one, and the run that
        // recorded them fetches them again, as its later state commits synchronously and
        // a synchronous commit makes every earlier one durable. Waiting for the disk at
        // each item held the store to the disk's flush rate (about 290 a second here).
        self.batch_execute("SET LOCAL synchronous_commit = off")
            .map_err(pg("relax item commit"))?;
        // Two workers recording the same story at once would both find no item; the
        // transaction-scoped lock on the key makes the second wait and see the first's.
        self.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&key.as_str()],
        )
        .map_err(pg("lock item key"))?;
        Ok(())
    }

    fn save_raw_page(&mut self, raw: &RawPage) -> Result<(), StoreError> {
        self.execute(
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

    fn item_at_key(&mut self, key: &Url) -> Result<Option<StoredItem>, StoreError> {
        let row = self
            .query_opt(
                "SELECT rowid, id, content_hash, simhash FROM items WHERE key = $1",
                &[&key.as_str()],
            )
            .map_err(pg("look up item by key"))?;
        Ok(row.map(|r| StoredItem {
            rowid: r.get(0),
            id: ItemId(r.get(1)),
            content_hash: r.get(2),
            simhash: r.get::<_, Option<i64>>(3).map(|h| h as u64),
        }))
    }

    fn item_linked_at(&mut self, key: &Url) -> Result<Option<LinkedItem>, StoreError> {
        let row = self
            .query_opt(
                "SELECT l.item, i.id, l.content_hash FROM item_links l
                 JOIN items i ON i.rowid = l.item WHERE l.key = $1",
                &[&key.as_str()],
            )
            .map_err(pg("look up item link"))?;
        Ok(row.map(|r| LinkedItem {
            rowid: r.get(0),
            id: ItemId(r.get(1)),
            link_hash: r.get(2),
        }))
    }

    fn is_page_of(&mut self, key: &Url, rowid: i64) -> Result<bool, StoreError> {
        let row = self
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM article_state
                     WHERE key = $1 AND item = $2 AND NOT alias)",
                &[&key.as_str(), &rowid],
            )
            .map_err(pg("look up article state"))?;
        Ok(row.get(0))
    }

    fn near_duplicate(
        &mut self,
        dedup: DedupSettings,
        hash: u64,
    ) -> Result<Option<(i64, ItemId, u32)>, StoreError> {
        near_duplicate(self, dedup.bands, dedup.distance, hash)
    }

    fn insert_item(
        &mut self,
        r: &Recording<'_>,
        id: &ItemId,
        key: &Url,
    ) -> Result<i64, StoreError> {
        let article = r.article;
        let row = self
            .query_one(
                "INSERT INTO items (id, key, source, url, title, sort_time, first_seen,
                     updated_at, content_hash, simhash, article, terms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11)
                 RETURNING rowid",
                &[
                    &id.as_str(),
                    &key.as_str(),
                    &r.source.as_str(),
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
        Ok(row.get(0))
    }

    fn update_item(&mut self, r: &Recording<'_>, rowid: i64) -> Result<(), StoreError> {
        let article = r.article;
        // An edited page without a date keeps its place in the feeds (its first-seen time).
        self.execute(
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
        self.execute(
            "UPDATE item_links SET content_hash = $2
             WHERE key = (SELECT key FROM items WHERE rowid = $1)",
            &[&rowid, &r.hash],
        )
        .map_err(pg("update item link"))?;
        Ok(())
    }

    fn clear_bands(&mut self, rowid: i64) -> Result<(), StoreError> {
        self.execute("DELETE FROM simhash_bands WHERE item = $1", &[&rowid])
            .map_err(pg("clear item bands"))?;
        Ok(())
    }

    fn insert_bands(
        &mut self,
        bands: Bands,
        rowid: i64,
        id: &ItemId,
        hash: u64,
    ) -> Result<(), StoreError> {
        insert_bands(self, bands, rowid, id.as_str(), hash)
    }

    fn insert_link(&mut self, key: &Url, rowid: i64, r: &Recording<'_>) -> Result<(), StoreError> {
        self.execute(
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

    fn update_link_hash(&mut self, key: &Url, hash: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE item_links SET content_hash = $2 WHERE key = $1",
            &[&key.as_str(), &hash],
        )
        .map_err(pg("update item link"))?;
        Ok(())
    }

    fn add_categories(&mut self, rowid: i64, categories: &[CategoryId]) -> Result<(), StoreError> {
        let names: Vec<&str> = categories.iter().map(CategoryId::as_str).collect();
        self.execute(
            "INSERT INTO item_categories (item, category)
             SELECT $1, c FROM unnest($2::text[]) AS c ON CONFLICT DO NOTHING",
            &[&rowid, &names],
        )
        .map_err(pg("add item category"))?;
        Ok(())
    }

    fn item_rowid(&mut self, id: &ItemId) -> Result<Option<i64>, StoreError> {
        let row = self
            .query_opt("SELECT rowid FROM items WHERE id = $1", &[&id.as_str()])
            .map_err(pg("look up item"))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn clear_categories(&mut self, rowid: i64) -> Result<(), StoreError> {
        self.execute("DELETE FROM item_categories WHERE item = $1", &[&rowid])
            .map_err(pg("clear item categories"))?;
        Ok(())
    }
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
    let candidates = rows
        .iter()
        .map(|row| (row.get(0), row.get::<_, i64>(1) as u64, row.get(2)));
    Ok(recording::earliest_within(hash, distance, candidates))
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

impl RetentionSql for Transaction<'_> {
    fn newest_in_feed(&mut self, feed: &CategoryId, limit: usize) -> Result<Vec<i64>, StoreError> {
        let query = format!(
            "SELECT i.rowid FROM {} ORDER BY i.sort_time DESC, i.rowid DESC LIMIT $2",
            feed_items(feed)
        );
        let rows = self
            .query(&query, &[&feed.as_str(), &(limit as i64)])
            .map_err(pg("read feed items"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn items_older_than(&mut self, cutoff: i64) -> Result<Vec<i64>, StoreError> {
        let rows = self
            .query(
                "SELECT rowid FROM items WHERE sort_time < $1 AND first_seen < $1",
                &[&cutoff],
            )
            .map_err(pg("find expired items"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn delete_items(&mut self, rowids: &[i64]) -> Result<usize, StoreError> {
        let n = self
            .execute("DELETE FROM items WHERE rowid = ANY($1)", &[&rowids])
            .map_err(pg("delete expired items"))?;
        Ok(n as usize)
    }

    fn delete_raw_pages(&mut self, cutoff: i64) -> Result<usize, StoreError> {
        let n = self
            .execute("DELETE FROM raw_pages WHERE fetched_at < $1", &[&cutoff])
            .map_err(pg("delete old raw pages"))?;
        Ok(n as usize)
    }
}
