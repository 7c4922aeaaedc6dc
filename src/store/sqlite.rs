//! The SQLite backend: opening the file (WAL, foreign keys, numbered migrations, indexes
//! rebuilt on open), the connection lock, the publish lock (a file beside the
//! database), and the [`Store`] impl that runs, each in one transaction, the shared
//! decisions of `recording`, `article_plan`, `source_runs` and `publishing` over this
//! backend's SQL (`items`, `article_state`, `fetch_state`, `published`) and the reads
//! and writes of `items`, `schedule_state` and `lease_state`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use url::Url;

use super::encoding::sql;
use super::publishing::PublishedSql;
use super::recording::DedupSettings;
use super::schema::{self, Migration};
use super::source_runs::FetchStateSql;
use super::{
    DocumentVersion, HeldLock, PublishLock, Published, PublishedDocument, Store, StoreError,
    article_plan, items, lease_state, publishing, recording, retention, schedule_state,
    source_runs,
};
use crate::dedup::Bands;
use crate::model::{
    Article, ArticlePlan, Candidate, CategoryId, Claim, ClaimRequest, DeadLink, HeldBack, HostSlot,
    HostTurn, Item, ItemId, Lease, Outcome, PageFetch, RawPage, SlotRequest, SourceId, SourceRun,
    SourceSchedule, SourceState, Validators,
};

/// Schema migrations by number (see `schema` for gaps). `user_version` holds the
/// highest applied, the `schema_migrations` table each one applied.
const MIGRATIONS: &[Migration] = &[
    migration(1, include_str!("migrations/0001_initial.sql")),
    migration(2, include_str!("migrations/0002_band_simhash.sql")),
    migration(3, include_str!("migrations/0003_item_search.sql")),
    migration(4, include_str!("migrations/0004_article_state.sql")),
    migration(5, include_str!("migrations/0005_schedule_state.sql")),
    migration(6, include_str!("migrations/0006_leases.sql")),
    migration(7, include_str!("migrations/0007_published_documents.sql")),
    migration(9, include_str!("migrations/0009_lease_process.sql")),
    migration(10, include_str!("migrations/0010_host_requests.sql")),
];

const fn migration(number: u32, sql: &'static str) -> Migration {
    Migration { number, sql }
}
/// The form of the text in the search index (of both backends). Bump it when `text::search_terms` or the
/// indexed fields change: the next open then indexes every item again.
pub(super) const SEARCH_INDEX_VERSION: &str = "1";
/// How long a writer waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The SQLite store. One connection behind a lock: SQLite serializes writers anyway,
/// and callers run store calls on blocking threads.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    dedup: DedupSettings,
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
            dedup: DedupSettings {
                bands,
                distance: near_duplicate_distance,
            },
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
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let mut tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql("begin transaction"))?;
        let out = f(&mut tx)?;
        tx.commit().map_err(sql("commit"))?;
        Ok(out)
    }

    /// Runs `f` in one read transaction.
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let mut tx = conn.transaction().map_err(sql("begin transaction"))?;
        f(&mut tx)
    }

    /// The stored item nearest to `simhash` within the configured distance, earliest
    /// first among equals, found through the band index: `(id, distance)`.
    pub fn find_near_duplicate(&self, simhash: u64) -> Result<Option<(ItemId, u32)>, StoreError> {
        self.read(|tx| {
            let DedupSettings { bands, distance } = self.dedup;
            Ok(items::near_duplicate(tx, bands, distance, simhash)?.map(|(_, id, d)| (id, d)))
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
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql("begin migration"))?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql("read schema version"))?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (number INTEGER PRIMARY KEY)")
        .map_err(sql("create migration record"))?;
    let recorded: BTreeSet<u32> = tx
        .prepare("SELECT number FROM schema_migrations")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
        .map_err(sql("read migration record"))?;
    let version = u32::try_from(version).unwrap_or(u32::MAX);
    let plan = schema::plan(MIGRATIONS, version, &recorded)?;
    for number in plan.record {
        record_migration(&tx, number)?;
    }
    for m in &plan.pending {
        tx.execute_batch(m.sql).map_err(sql("apply migration"))?;
        record_migration(&tx, m.number)?;
        tracing::info!(version = m.number, "database schema migrated");
    }
    tx.pragma_update(None, "user_version", i64::from(schema::latest(MIGRATIONS)))
        .map_err(sql("write schema version"))?;
    tx.commit().map_err(sql("commit migration"))
}

fn record_migration(tx: &Transaction<'_>, number: u32) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO schema_migrations (number) VALUES (?1)",
        [number],
    )
    .map(drop)
    .map_err(sql("record migration"))
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

impl Store for SqliteStore {
    fn record(
        &self,
        article: &Article,
        source: &SourceId,
        categories: &[CategoryId],
        raw: Option<&RawPage>,
    ) -> Result<Outcome, StoreError> {
        self.write(|tx| recording::record(tx, self.dedup, article, source, categories, raw, None))
    }

    fn record_fetched(
        &self,
        article: &Article,
        source: &SourceId,
        categories: &[CategoryId],
        raw: Option<&RawPage>,
        fetch: &PageFetch,
    ) -> Result<Outcome, StoreError> {
        self.write(|tx| {
            let dedup = self.dedup;
            recording::record(tx, dedup, article, source, categories, raw, Some(fetch))
        })
    }

    fn plan_articles(
        &self,
        source: &SourceId,
        candidates: Vec<Candidate>,
        within: Duration,
        now: DateTime<Utc>,
    ) -> Result<ArticlePlan, StoreError> {
        self.write(|tx| article_plan::plan(tx, source, candidates, within, now))
    }

    fn reschedule_article(
        &self,
        url: &Url,
        every: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(|tx| article_plan::reschedule(tx, url, every, now))
    }

    fn mark_dead_link(
        &self,
        url: &Url,
        source: &SourceId,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<DeadLink, StoreError> {
        self.write(|tx| article_plan::mark_dead(tx, url, source, status, now))
    }

    fn dead_link(&self, url: &Url) -> Result<Option<DeadLink>, StoreError> {
        self.read(|tx| article_plan::dead_link(tx, url))
    }

    fn next_check(&self, url: &Url) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(|tx| article_plan::next_check(tx, url))
    }

    fn refresh_now(
        &self,
        source: &SourceId,
        within: Duration,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.write(|tx| article_plan::refresh_now(tx, source, within, now))
    }

    fn knows_url(&self, url: &Url) -> Result<bool, StoreError> {
        self.read(|tx| article_plan::knows_url(tx, url))
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
        self.write(|tx| recording::set_categories(tx, id, categories))
    }

    fn validators(&self, url: &Url) -> Result<Option<Validators>, StoreError> {
        self.read(|tx| tx.validators(url))
    }

    fn save_validators(&self, url: &Url, validators: &Validators) -> Result<(), StoreError> {
        self.write(|tx| source_runs::save_validators(tx, url, validators))
    }

    fn source_validators(
        &self,
        source: &SourceId,
        urls: &[Url],
    ) -> Result<Vec<(Url, Validators)>, StoreError> {
        self.read(|tx| source_runs::source_validators(tx, source, urls))
    }

    fn save_source_validators(
        &self,
        source: &SourceId,
        validators: &[(Url, Validators)],
    ) -> Result<(), StoreError> {
        self.write(|tx| source_runs::save_source_validators(tx, source, validators))
    }

    fn record_source_run(&self, source: &SourceId, run: &SourceRun) -> Result<(), StoreError> {
        self.write(|tx| source_runs::record_run(tx, source, run))
    }

    fn source_states(&self) -> Result<Vec<SourceState>, StoreError> {
        self.read(|tx| source_runs::states(tx, None))
    }

    fn source_state(&self, source: &SourceId) -> Result<Option<SourceState>, StoreError> {
        self.read(|tx| source_runs::state(tx, source))
    }

    fn source_schedule(&self, source: &SourceId) -> Result<SourceSchedule, StoreError> {
        self.read(|tx| schedule_state::schedule(tx, source))
    }

    fn save_next_due(
        &self,
        source: &SourceId,
        next_due: DateTime<Utc>,
        backoff: Option<Duration>,
    ) -> Result<(), StoreError> {
        self.write(|tx| schedule_state::save_next_due(tx, source, next_due, backoff))
    }

    fn held_back(&self) -> Result<Vec<HeldBack>, StoreError> {
        self.read(|tx| schedule_state::held_back(tx))
    }

    fn save_held_back(&self, held: &[HeldBack]) -> Result<(), StoreError> {
        if held.is_empty() {
            return Ok(());
        }
        self.write(|tx| schedule_state::save_held_back(tx, held))
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
        self.write(|tx| retention::prune(tx, retention_days, raw_page_days, keep_per_feed, feeds))
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.lock()
            .query_row("SELECT 1", [], |_| Ok(()))
            .map_err(sql("ping"))
    }

    fn lock_publishing(&self) -> Result<PublishLock, StoreError> {
        // A file lock, not a lock in memory: `bantin crawl` from cron and a running
        // daemon are two processes publishing from one file.
        let mut name = self.path.clone().into_os_string();
        name.push(".publish-lock");
        let path = PathBuf::from(name);
        let io = |source| StoreError::Lock {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(PublishLock {
            _held: HeldLock::File(file),
        })
    }

    fn published_versions(&self) -> Result<BTreeMap<String, DocumentVersion>, StoreError> {
        self.read(|tx| tx.published_versions())
    }

    fn save_published(
        &self,
        _lock: &PublishLock,
        changed: &[PublishedDocument],
        removed: &[String],
    ) -> Result<u64, StoreError> {
        self.write(|tx| publishing::save(tx, changed, removed))
    }

    fn publish_generation(&self) -> Result<u64, StoreError> {
        self.read(|tx| publishing::generation(tx))
    }

    fn published(&self) -> Result<Published, StoreError> {
        self.read(|tx| publishing::published(tx))
    }

    fn claim_source(&self, claim: &ClaimRequest) -> Result<Claim, StoreError> {
        self.write(|tx| lease_state::claim(tx, claim))
    }

    fn renew_leases(
        &self,
        worker: &str,
        hosts: &[HostTurn],
        until: DateTime<Utc>,
    ) -> Result<Vec<SourceId>, StoreError> {
        self.write(|tx| lease_state::renew(tx, worker, hosts, until))
    }

    fn release_source(
        &self,
        source: &SourceId,
        worker: &str,
        finished: Option<DateTime<Utc>>,
        free: &[HostTurn],
    ) -> Result<(), StoreError> {
        self.write(|tx| lease_state::release(tx, source, worker, finished, free))
    }

    fn leases(&self, now: DateTime<Utc>) -> Result<Vec<Lease>, StoreError> {
        self.read(|tx| lease_state::held(tx, now))
    }

    fn expire_leases(&self, worker: &str, process: &str) -> Result<(), StoreError> {
        self.write(|tx| lease_state::expire(tx, worker, process))
    }

    fn take_host_slot(&self, request: &SlotRequest) -> Result<HostSlot, StoreError> {
        self.write(|tx| lease_state::host_slot(tx, request))
    }

    fn end_host_request(&self, ticket: i64) -> Result<(), StoreError> {
        self.write(|tx| lease_state::end_host_request(tx, ticket))
    }
}
