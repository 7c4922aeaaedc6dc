//! The SQLite backend: opening the file (WAL, foreign keys, migrations by
//! `PRAGMA user_version`, indexes rebuilt on open), the connection lock, and the
//! [`Store`] impl that delegates to `items` and `fetch_state`. Every trait method runs in
//! one transaction.

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use flate2::read::ZlibDecoder;
use flate2::{Compress, Compression, FlushCompress, Status};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use url::Url;

use super::{Store, StoreError, fetch_state, items};
use crate::dedup::Bands;
use crate::model::{
    Article, CategoryId, Item, ItemId, Outcome, RawPage, SourceId, SourceRun, SourceState,
    Validators,
};

/// Schema migrations in order; migration N brings `user_version` to N.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_band_simhash.sql"),
    include_str!("migrations/0003_item_search.sql"),
];
/// The form of the text in the search index. Bump it when `text::search_terms` or the
/// indexed fields change: the next open then indexes every item again.
const SEARCH_INDEX_VERSION: &str = "1";
/// How long a writer waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite store. One connection behind a lock: SQLite serializes writers anyway,
/// and callers run store calls on blocking threads.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    pub(crate) near_duplicate_distance: u32,
    pub(crate) bands: Bands,
}

pub(crate) fn sql(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { what, source }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`: parent folder, WAL journal,
    /// pending migrations, and the near-duplicate index for `near_duplicate_distance`
    /// (rebuilt when the distance changed since the last open).
    pub fn open(path: &Path, near_duplicate_distance: u32) -> Result<SqliteStore, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Open {
                path: path.to_owned(),
                source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
            })?;
        }
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // WAL: readers do not block the writer, and a killed process loses at most the
        // transaction in flight. NORMAL sync is durable across process crashes in WAL.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        migrate(&mut conn)?;
        let bands = Bands::for_distance(near_duplicate_distance);
        rebuild_if_stale(&mut conn, "simhash_bands", &bands.layout(), |tx| {
            items::rebuild_bands(tx, bands)
        })?;
        rebuild_if_stale(
            &mut conn,
            "item_search",
            SEARCH_INDEX_VERSION,
            items::reindex_all,
        )?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            near_duplicate_distance,
            bands,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-done transaction behind (it is
        // rolled back on drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one immediate transaction and commits it.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql("begin transaction"))?;
        let out = f(&tx)?;
        tx.commit().map_err(sql("commit"))?;
        Ok(out)
    }

    /// Runs `f` in one read transaction.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(sql("begin transaction"))?;
        f(&tx)
    }

    /// The stored item nearest to `simhash` within the configured distance, earliest
    /// first among equals, found through the band index: `(id, distance)`.
    pub fn find_near_duplicate(&self, simhash: u64) -> Result<Option<(ItemId, u32)>, StoreError> {
        self.read(|tx| {
            Ok(
                items::near_duplicate(tx, self.bands, self.near_duplicate_distance, simhash)?
                    .map(|(_, id, d)| (id, d)),
            )
        })
    }

    /// Number of stored items.
    pub fn item_count(&self) -> Result<u64, StoreError> {
        self.read(|tx| {
            tx.query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(sql("count items"))
        })
    }

    /// `PRAGMA integrity_check`: "ok" or SQLite's list of problems.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("PRAGMA integrity_check")
            .map_err(sql("integrity check"))?;
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(sql("integrity check"))?
            .collect::<Result<_, _>>()
            .map_err(sql("integrity check"))?;
        Ok(rows.join("\n"))
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql("read schema version"))?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "schema version {version} is newer than this bantin understands ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(sql("begin migration"))?;
        tx.execute_batch(migration)
            .map_err(sql("apply migration"))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(sql("write schema version"))?;
        tx.commit().map_err(sql("commit migration"))?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    Ok(())
}

/// Rebuilds a derived index in one transaction when `meta` holds another `version` for
/// it under `key`, or none (a store from before the index, or a new layout). `rebuild`
/// clears and fills the index and says how many items it indexed.
fn rebuild_if_stale(
    conn: &mut Connection,
    key: &str,
    version: &str,
    rebuild: impl FnOnce(&Transaction<'_>) -> Result<usize, StoreError>,
) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql("begin transaction"))?;
    let stored: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(sql("read index version"))?;
    if stored.as_deref() == Some(version) {
        return Ok(());
    }
    // Every stored item is read again, in one transaction: a while on a large store, once.
    let stored_items: bool = tx
        .query_row("SELECT EXISTS (SELECT 1 FROM items)", [], |r| r.get(0))
        .map_err(sql("count items"))?;
    if stored_items {
        tracing::info!(index = key, version, "indexing every stored item");
    }
    let indexed = rebuild(&tx)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, version],
    )
    .map_err(sql("write index version"))?;
    tx.commit().map_err(sql("commit index"))?;
    if stored_items {
        tracing::info!(index = key, items = indexed, "index built");
    }
    Ok(())
}

thread_local! {
    /// One zlib compressor per thread, reset between uses: a fresh one allocates and
    /// clears several hundred KB of tables, which cost more than compressing an article.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), true));
}

/// zlib at a fast level: pages and articles are text and shrink about 4×.
pub(crate) fn compress(bytes: &[u8]) -> Vec<u8> {
    COMPRESSOR.with_borrow_mut(|zlib| {
        zlib.reset();
        // Deflate adds at most a few bytes per 16 KB block; the loop covers the rest.
        let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 64 + 64);
        loop {
            let read = zlib.total_in() as usize;
            let status = zlib
                .compress_vec(&bytes[read..], &mut out, FlushCompress::Finish)
                .expect("deflate into a Vec with spare room cannot fail");
            if status == Status::StreamEnd {
                return out;
            }
            out.reserve(out.capacity().max(64));
        }
    })
}

pub(crate) fn decompress(bytes: &[u8], what: &str) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    ZlibDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
    Ok(out)
}

pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Store for SqliteStore {
    fn record(
        &self,
        article: &Article,
        source: &SourceId,
        categories: &[CategoryId],
        raw: Option<&RawPage>,
    ) -> Result<Outcome, StoreError> {
        self.write(|tx| items::record(self, tx, article, source, categories, raw))
    }

    fn knows_url(&self, url: &Url) -> Result<bool, StoreError> {
        self.read(|tx| items::knows_url(tx, url))
    }

    fn item(&self, id: &ItemId) -> Result<Option<Item>, StoreError> {
        self.read(|tx| items::item(tx, id))
    }

    fn latest_items(&self, feed: &CategoryId, limit: usize) -> Result<Vec<Item>, StoreError> {
        self.read(|tx| items::latest(tx, feed, limit))
    }

    fn search_items(
        &self,
        feed: &CategoryId,
        words: &str,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        self.read(|tx| items::search(tx, feed, words, limit))
    }

    fn set_categories(&self, id: &ItemId, categories: &[CategoryId]) -> Result<(), StoreError> {
        self.write(|tx| items::set_categories(tx, id, categories))
    }

    fn validators(&self, url: &Url) -> Result<Option<Validators>, StoreError> {
        self.read(|tx| fetch_state::validators(tx, url))
    }

    fn save_validators(&self, url: &Url, validators: &Validators) -> Result<(), StoreError> {
        self.write(|tx| fetch_state::save_validators(tx, url, validators))
    }

    fn record_source_run(&self, source: &SourceId, run: &SourceRun) -> Result<(), StoreError> {
        self.write(|tx| fetch_state::record_run(tx, source, run))
    }

    fn source_states(&self) -> Result<Vec<SourceState>, StoreError> {
        self.read(fetch_state::states)
    }

    fn source_state(&self, source: &SourceId) -> Result<Option<SourceState>, StoreError> {
        self.read(|tx| fetch_state::state(tx, source))
    }

    fn raw_pages(
        &self,
        source: Option<&SourceId>,
        since: Option<DateTime<Utc>>,
        after: Option<&super::RawPageCursor>,
        limit: usize,
    ) -> Result<Vec<RawPage>, StoreError> {
        self.read(|tx| items::raw_pages(tx, source, since, after, limit))
    }

    fn prune(
        &self,
        retention_days: u32,
        raw_page_days: u32,
        keep_per_feed: usize,
        feeds: &[CategoryId],
    ) -> Result<usize, StoreError> {
        self.write(|tx| items::prune(tx, retention_days, raw_page_days, keep_per_feed, feeds))
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.lock()
            .query_row("SELECT 1", [], |_| Ok(()))
            .map_err(sql("ping"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_round_trips_empty_text_and_incompressible_bytes() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let noise: Vec<u8> = (0..1_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let text = "Công an nhân dân ".repeat(10_000).into_bytes();
        for input in [Vec::new(), text, noise] {
            let packed = compress(&input);
            assert_eq!(decompress(&packed, "test").unwrap(), input);
        }
        // The reused compressor starts clean each time.
        assert_eq!(compress(b"abc"), compress(b"abc"));
    }
}
