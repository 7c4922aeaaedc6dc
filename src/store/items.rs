//! Items in SQLite's SQL: the [`ItemSql`] and [`RetentionSql`] impls that `recording`
//! and `retention` decide over (items, their links, SimHash bands and categories, raw
//! pages), the full-text index, and reading items and raw pages.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};
use url::Url;

use super::StoreError;
use super::encoding::{
    compress, decode_article, decompress, encode_article, from_millis, sort_time, sql, to_millis,
};
use super::recording::{self, DedupSettings, ItemSql, LinkedItem, Recording, StoredItem};
use super::retention::RetentionSql;
use crate::dedup::Bands;
use crate::model::{ALL_CATEGORY, Article, CategoryId, Item, ItemId, RawPage, SourceId};
use crate::text::search_terms;

impl ItemSql for Transaction<'_> {
    fn begin_recording(&mut self, _key: &Url) -> Result<(), StoreError> {
        // Every write runs in an immediate transaction: SQLite serializes the writers,
        // and the connection's WAL settings already say how a commit waits for the disk.
        Ok(())
    }

    fn save_raw_page(&mut self, raw: &RawPage) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO raw_pages (url, source, fetched_at, html) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (url) DO UPDATE SET source = excluded.source,
                 fetched_at = excluded.fetched_at, html = excluded.html",
            params![
                raw.url.as_str(),
                raw.source.as_str(),
                to_millis(raw.fetched_at),
                compress(raw.html.as_bytes())
            ],
        )
        .map_err(sql("save raw page"))?;
        Ok(())
    }

    fn item_at_key(&mut self, key: &Url) -> Result<Option<StoredItem>, StoreError> {
        self.query_row(
            "SELECT rowid, id, content_hash, simhash FROM items WHERE key = ?1",
            [key.as_str()],
            |r| {
                Ok(StoredItem {
                    rowid: r.get(0)?,
                    id: ItemId(r.get(1)?),
                    content_hash: r.get(2)?,
                    simhash: r.get::<_, Option<i64>>(3)?.map(|h| h as u64),
                })
            },
        )
        .optional()
        .map_err(sql("look up item by key"))
    }

    fn item_linked_at(&mut self, key: &Url) -> Result<Option<LinkedItem>, StoreError> {
        self.query_row(
            "SELECT l.item, i.id, l.content_hash FROM item_links l
             JOIN items i ON i.rowid = l.item WHERE l.key = ?1",
            [key.as_str()],
            |r| {
                Ok(LinkedItem {
                    rowid: r.get(0)?,
                    id: ItemId(r.get(1)?),
                    link_hash: r.get(2)?,
                })
            },
        )
        .optional()
        .map_err(sql("look up item link"))
    }

    fn is_page_of(&mut self, key: &Url, rowid: i64) -> Result<bool, StoreError> {
        self.query_row(
            "SELECT EXISTS (SELECT 1 FROM article_state WHERE key = ?1 AND item = ?2 AND alias = 0)",
            params![key.as_str(), rowid],
            |r| r.get(0),
        )
        .map_err(sql("look up article state"))
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
        self.execute(
            "INSERT INTO items (id, key, source, url, title, sort_time, first_seen, updated_at,
                 content_hash, simhash, article)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10)",
            params![
                id.as_str(),
                key.as_str(),
                r.source.as_str(),
                article.url.as_str(),
                article.title,
                sort_time(article, r.now),
                r.now,
                r.hash,
                r.simhash.map(|h| h as i64),
                encode_article(article)?,
            ],
        )
        .map_err(sql("insert item"))?;
        let rowid = self.last_insert_rowid();
        index_for_search(self, rowid, article)?;
        Ok(rowid)
    }

    fn update_item(&mut self, r: &Recording<'_>, rowid: i64) -> Result<(), StoreError> {
        let article = r.article;
        // An edited page without a date keeps its place in the feeds (its first-seen time)
        // instead of moving to the top at every edit.
        self.execute(
            "UPDATE items SET url = ?2, title = ?3, sort_time = COALESCE(?4, sort_time),
                 updated_at = ?5, content_hash = ?6, simhash = ?7, article = ?8
             WHERE rowid = ?1",
            params![
                rowid,
                article.url.as_str(),
                article.title,
                article.published.map(|p| p.timestamp_millis()),
                r.now,
                r.hash,
                r.simhash.map(|h| h as i64),
                encode_article(article)?,
            ],
        )
        .map_err(sql("update item"))?;
        self.execute(
            "UPDATE item_links SET content_hash = ?2
             WHERE key = (SELECT key FROM items WHERE rowid = ?1)",
            params![rowid, r.hash],
        )
        .map_err(sql("update item link"))?;
        self.execute("DELETE FROM item_search WHERE rowid = ?1", [rowid])
            .map_err(sql("remove item from search"))?;
        index_for_search(self, rowid, article)
    }

    fn clear_bands(&mut self, rowid: i64) -> Result<(), StoreError> {
        self.execute("DELETE FROM simhash_bands WHERE item = ?1", [rowid])
            .map_err(sql("clear item bands"))?;
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
            "INSERT OR IGNORE INTO item_links (key, item, url, source, first_seen, content_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                key.as_str(),
                rowid,
                r.article.url.as_str(),
                r.source.as_str(),
                r.now,
                r.hash
            ],
        )
        .map_err(sql("insert item link"))?;
        Ok(())
    }

    fn update_link_hash(&mut self, key: &Url, hash: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE item_links SET content_hash = ?2 WHERE key = ?1",
            params![key.as_str(), hash],
        )
        .map_err(sql("update item link"))?;
        Ok(())
    }

    fn add_categories(&mut self, rowid: i64, categories: &[CategoryId]) -> Result<(), StoreError> {
        let mut stmt = self
            .prepare_cached(
                "INSERT OR IGNORE INTO item_categories (item, category) VALUES (?1, ?2)",
            )
            .map_err(sql("add item category"))?;
        for c in categories {
            stmt.execute(params![rowid, c.as_str()])
                .map_err(sql("add item category"))?;
        }
        Ok(())
    }

    fn item_rowid(&mut self, id: &ItemId) -> Result<Option<i64>, StoreError> {
        self.query_row(
            "SELECT rowid FROM items WHERE id = ?1",
            [id.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql("look up item"))
    }

    fn clear_categories(&mut self, rowid: i64) -> Result<(), StoreError> {
        self.execute("DELETE FROM item_categories WHERE item = ?1", [rowid])
            .map_err(sql("clear item categories"))?;
        Ok(())
    }
}

/// Adds the item at `rowid` to the search index: its title, lead, body text, authors and
/// tags as [`search_terms`] gives them.
fn index_for_search(tx: &Transaction<'_>, rowid: i64, article: &Article) -> Result<(), StoreError> {
    let a = article;
    let text = search_terms(&format!(
        "{}\n{}\n{}\n{}\n{}",
        a.title,
        a.lead.as_deref().unwrap_or(""),
        a.body_text,
        a.authors.join("\n"),
        a.tags.join("\n")
    ));
    tx.prepare_cached("INSERT INTO item_search (rowid, text) VALUES (?1, ?2)")
        .and_then(|mut stmt| stmt.execute(params![rowid, text]))
        .map_err(sql("index item for search"))?;
    Ok(())
}

/// Empties the near-duplicate index and fills it again in `bands`' layout. Returns how
/// many items it holds.
pub(crate) fn rebuild_bands(tx: &Transaction<'_>, bands: Bands) -> Result<usize, StoreError> {
    tx.execute("DELETE FROM simhash_bands", [])
        .map_err(sql("clear band index"))?;
    let hashes: Vec<(i64, String, i64)> = {
        let mut stmt = tx
            .prepare("SELECT rowid, id, simhash FROM items WHERE simhash IS NOT NULL")
            .map_err(sql("read simhashes"))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(sql("read simhashes"))?
            .collect::<Result<_, _>>()
            .map_err(sql("read simhashes"))?
    };
    for (rowid, id, hash) in &hashes {
        insert_bands(tx, bands, *rowid, id, *hash as u64)?;
    }
    Ok(hashes.len())
}

/// Empties the search index and indexes every stored item again. Returns how many.
pub(crate) fn reindex_all(tx: &Transaction<'_>) -> Result<usize, StoreError> {
    tx.execute(
        "INSERT INTO item_search (item_search) VALUES ('delete-all')",
        [],
    )
    .map_err(sql("clear search index"))?;
    let mut stmt = tx
        .prepare("SELECT rowid, id, article FROM items")
        .map_err(sql("read items to index"))?;
    let mut rows = stmt.query([]).map_err(sql("read items to index"))?;
    let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, String, Vec<u8>)> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    };
    let mut count = 0;
    while let Some(row) = rows.next().map_err(sql("read items to index"))? {
        let (rowid, id, blob) = read(row).map_err(sql("read items to index"))?;
        index_for_search(tx, rowid, &decode_article(&blob, &id)?)?;
        count += 1;
    }
    Ok(count)
}

/// An FTS5 query requiring every word of `words` (in [`search_terms`] form), each as a
/// whole word; `None` when there is no word. Each word is a quoted string, so nothing a
/// reader types is read as FTS5 syntax.
fn match_query(words: &str) -> Option<String> {
    let terms = search_terms(words);
    if terms.is_empty() {
        return None;
    }
    Some(
        terms
            .split(' ')
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn insert_bands(
    tx: &Transaction<'_>,
    bands: Bands,
    rowid: i64,
    id: &str,
    hash: u64,
) -> Result<(), StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO simhash_bands (band, value, item, simhash, item_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sql("insert simhash band"))?;
    for (band, value) in bands.keys(hash) {
        stmt.execute(params![band, value as i64, rowid, hash as i64, id])
            .map_err(sql("insert simhash band"))?;
    }
    Ok(())
}

/// The earliest-stored item whose SimHash is within `distance` bits of `hash`, found by
/// probing the band index (see [`Bands`]): `(rowid, id, distance)`.
pub(crate) fn near_duplicate(
    tx: &Transaction<'_>,
    bands: Bands,
    distance: u32,
    hash: u64,
) -> Result<Option<(i64, ItemId, u32)>, StoreError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT item, simhash, item_id FROM simhash_bands WHERE band = ?1 AND value = ?2",
        )
        .map_err(sql("look up simhash band"))?;
    let mut candidates = Vec::new();
    for (band, value) in bands.probes(hash) {
        let rows = stmt
            .query_map(params![band, value as i64], |row| {
                Ok((row.get(0)?, row.get::<_, i64>(1)? as u64, row.get(2)?))
            })
            .map_err(sql("look up simhash band"))?;
        for row in rows {
            candidates.push(row.map_err(sql("look up simhash band"))?);
        }
    }
    Ok(recording::earliest_within(hash, distance, candidates))
}

const ITEM_COLUMNS: &str = "i.rowid, i.id, i.source, i.first_seen, i.updated_at, i.article";

fn load_item(tx: &Transaction<'_>, row: &rusqlite::Row<'_>) -> Result<Item, StoreError> {
    let read =
        |r: &rusqlite::Row<'_>| -> rusqlite::Result<(i64, String, String, i64, i64, Vec<u8>)> {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        };
    let (rowid, id, source, first_seen, updated_at, blob) = read(row).map_err(sql("read item"))?;
    let article = decode_article(&blob, &id)?;
    let mut stmt = tx
        .prepare_cached("SELECT category FROM item_categories WHERE item = ?1 ORDER BY category")
        .map_err(sql("read item categories"))?;
    let categories = stmt
        .query_map([rowid], |r| r.get::<_, String>(0).map(CategoryId))
        .map_err(sql("read item categories"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql("read item categories"))?;
    let mut stmt = tx
        .prepare_cached(
            "SELECT l.url FROM item_links l JOIN items i ON i.rowid = l.item
             WHERE l.item = ?1 AND l.key <> i.key ORDER BY l.first_seen, l.key",
        )
        .map_err(sql("read item links"))?;
    let links = stmt
        .query_map([rowid], |r| r.get::<_, String>(0))
        .map_err(sql("read item links"))?
        .filter_map(|u| u.ok().and_then(|u| Url::parse(&u).ok()))
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

pub(crate) fn item(tx: &Transaction<'_>, id: &ItemId) -> Result<Option<Item>, StoreError> {
    let mut stmt = tx
        .prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM items i WHERE i.id = ?1"
        ))
        .map_err(sql("read item"))?;
    let mut rows = stmt.query([id.as_str()]).map_err(sql("read item"))?;
    match rows.next().map_err(sql("read item"))? {
        Some(row) => load_item(tx, row).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn latest(
    tx: &Transaction<'_>,
    feed: &CategoryId,
    limit: usize,
) -> Result<Vec<Item>, StoreError> {
    let query = if feed.as_str() == ALL_CATEGORY {
        format!(
            "SELECT {ITEM_COLUMNS} FROM items i WHERE ?1 = ?1
             ORDER BY i.sort_time DESC, i.rowid DESC LIMIT ?2"
        )
    } else {
        format!(
            "SELECT {ITEM_COLUMNS} FROM items i
             JOIN item_categories c ON c.item = i.rowid AND c.category = ?1
             ORDER BY i.sort_time DESC, i.rowid DESC LIMIT ?2"
        )
    };
    let mut stmt = tx.prepare(&query).map_err(sql("read latest items"))?;
    let mut rows = stmt
        .query(params![feed.as_str(), limit as i64])
        .map_err(sql("read latest items"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql("read latest items"))? {
        out.push(load_item(tx, row)?);
    }
    Ok(out)
}

pub(crate) fn search(
    tx: &Transaction<'_>,
    feed: &CategoryId,
    words: &str,
    limit: usize,
) -> Result<Vec<Item>, StoreError> {
    let Some(query) = match_query(words) else {
        return latest(tx, feed, limit);
    };
    // The matches are a set to test the feed's items against, newest first, until
    // `limit` are found (`+` keeps SQLite from reading every match's row and sorting
    // them, which took most of a second for a word in nearly every one of 100k items).
    let all = feed.as_str() == ALL_CATEGORY;
    let in_feed = if all {
        ""
    } else {
        "JOIN item_categories c ON c.item = i.rowid AND c.category = ?3"
    };
    let sql_text = format!(
        "SELECT {ITEM_COLUMNS} FROM items i {in_feed}
         WHERE +i.rowid IN (SELECT rowid FROM item_search WHERE item_search MATCH ?1)
         ORDER BY i.sort_time DESC, i.rowid DESC LIMIT ?2"
    );
    let mut stmt = tx.prepare_cached(&sql_text).map_err(sql("search items"))?;
    let limit = limit as i64;
    let mut rows = if all {
        stmt.query(params![query, limit])
    } else {
        stmt.query(params![query, limit, feed.as_str()])
    }
    .map_err(sql("search items"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql("search items"))? {
        out.push(load_item(tx, row)?);
    }
    Ok(out)
}

pub(crate) fn raw_pages(
    tx: &Transaction<'_>,
    source: Option<&SourceId>,
    since: Option<DateTime<Utc>>,
    after: Option<&super::RawPageCursor>,
    limit: usize,
) -> Result<Vec<RawPage>, StoreError> {
    // Keyset paging: `fetched_at >= ?2` is a range on the `fetched_at` index, so each
    // batch starts where the last one ended instead of skipping over what came before
    // (OFFSET would make reading a large store quadratic). The bound is always a number:
    // `?2 IS NULL OR ...` would hide the range from the planner. Past the bound, a row
    // is after the cursor when it was fetched later, or at the same time with a greater
    // address.
    let from = since
        .map(to_millis)
        .into_iter()
        .chain(after.map(|c| to_millis(c.fetched_at)))
        .max()
        .unwrap_or(i64::MIN);
    let mut stmt = tx
        .prepare(
            "SELECT url, source, fetched_at, html FROM raw_pages
             WHERE fetched_at >= ?2 AND (?1 IS NULL OR source = ?1)
                 AND (?3 IS NULL OR fetched_at > ?3 OR url > ?4)
             ORDER BY fetched_at, url
             LIMIT ?5",
        )
        .map_err(sql("read raw pages"))?;
    let rows = stmt
        .query_map(
            params![
                source.map(SourceId::as_str),
                from,
                after.map(|c| to_millis(c.fetched_at)),
                after.map(|c| c.url.as_str()),
                i64::try_from(limit).unwrap_or(i64::MAX),
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            },
        )
        .map_err(sql("read raw pages"))?;
    let mut out = Vec::new();
    for row in rows {
        let (url, source, fetched_at, blob) = row.map_err(sql("read raw pages"))?;
        let html = String::from_utf8(decompress(&blob, &url)?)
            .map_err(|e| StoreError::Corrupt(format!("raw page {url}: {e}")))?;
        let url = Url::parse(&url)
            .map_err(|e| StoreError::Corrupt(format!("raw page address {url}: {e}")))?;
        out.push(RawPage {
            url,
            source: SourceId(source),
            fetched_at: from_millis(fetched_at),
            html,
        });
    }
    Ok(out)
}

impl RetentionSql for Transaction<'_> {
    fn newest_in_feed(&mut self, feed: &CategoryId, limit: usize) -> Result<Vec<i64>, StoreError> {
        let query = if feed.as_str() == ALL_CATEGORY {
            "SELECT i.rowid FROM items i WHERE ?1 = ?1
             ORDER BY i.sort_time DESC, i.rowid DESC LIMIT ?2"
        } else {
            "SELECT i.rowid FROM items i
             JOIN item_categories c ON c.item = i.rowid AND c.category = ?1
             ORDER BY i.sort_time DESC, i.rowid DESC LIMIT ?2"
        };
        let mut stmt = self.prepare_cached(query).map_err(sql("read feed items"))?;
        stmt.query_map(params![feed.as_str(), limit as i64], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(sql("read feed items"))
    }

    fn items_older_than(&mut self, cutoff: i64) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self
            .prepare("SELECT rowid FROM items WHERE sort_time < ?1 AND first_seen < ?1")
            .map_err(sql("find expired items"))?;
        stmt.query_map([cutoff], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(sql("find expired items"))
    }

    fn delete_items(&mut self, rowids: &[i64]) -> Result<usize, StoreError> {
        let mut stmt = self
            .prepare_cached("DELETE FROM items WHERE rowid = ?1")
            .map_err(sql("delete expired item"))?;
        let mut deleted = 0;
        for rowid in rowids {
            deleted += stmt.execute([rowid]).map_err(sql("delete expired item"))?;
        }
        Ok(deleted)
    }

    fn delete_raw_pages(&mut self, cutoff: i64) -> Result<usize, StoreError> {
        self.execute("DELETE FROM raw_pages WHERE fetched_at < ?1", [cutoff])
            .map_err(sql("delete old raw pages"))
    }
}
