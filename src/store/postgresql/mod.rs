//! The PostgreSQL backend, for several bantin processes sharing one database: the
//! connection pool, versioned migrations run on open under an advisory lock, and the
//! [`Store`] impl that runs, each in one transaction, the shared decisions of
//! `store::recording`, `store::article_plan`, `store::source_runs` and
//! `store::publishing` over this backend's SQL (`items`, `article_state`,
//! `fetch_state`, `published`) and the reads and writes of `items`, `schedule_state`
//! and `lease_state` (the same split as the SQLite backend's). `copy` fills an empty
//! database from a SQLite store (`bantin migrate`).
//!
//! Client: the blocking `postgres` crate with an `r2d2` pool. The `Store` trait is
//! blocking (called from `spawn_blocking`), so a blocking client fits it without a
//! second runtime hop per call, and r2d2 is the small, well-kept pool made for it;
//! sqlx or tokio-postgres would push async into a seam that is sync on purpose.

mod article_state;
mod copy;
mod fetch_state;
mod items;
mod lease_state;
mod published;
mod schedule_state;

pub use copy::CopyCounts;
pub use published::PublishSession;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::{NoTls, Transaction};
use r2d2_postgres::PostgresConnectionManager;
use url::Url;

use super::publishing::PublishedSql;
use super::recording::DedupSettings;
use super::schema::{self, Migration};
use super::source_runs::FetchStateSql;
use super::sqlite::SEARCH_INDEX_VERSION;
use super::{
    DocumentVersion, HeldLock, PublishLock, Published, PublishedDocument, RawPageCursor, Store,
    StoreError,
};
use super::{article_plan, publishing, recording, retention, source_runs};
use crate::dedup::Bands;
use crate::model::{
    Article, ArticlePlan, Candidate, CategoryId, Claim, ClaimRequest, DeadLink, HeldBack, HostSlot,
    HostTurn, Item, ItemId, Lease, Outcome, PageFetch, RawPage, SlotRequest, SourceId, SourceRun,
    SourceSchedule, SourceState, Validators,
};

/// Schema migrations by number (see `schema` for gaps). `schema_version` holds the
/// highest applied, the `schema_migrations` table each one applied. Files are numbered
/// after the SQLite migration they match: migration 1 is the whole schema of SQLite's
/// first five.
const MIGRATIONS: &[Migration] = &[
    Migration {
        number: 1,
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        number: 6,
        sql: include_str!("migrations/0006_leases.sql"),
    },
    Migration {
        number: 7,
        sql: include_str!("migrations/0007_published_documents.sql"),
    },
    Migration {
        number: 9,
        sql: include_str!("migrations/0009_lease_process.sql"),
    },
    Migration {
        number: 10,
        sql: include_str!("migrations/0010_host_requests.sql"),
    },
];
/// The advisory lock key held while migrating or rebuilding an index, so workers that
/// start together apply each migration once ("bantin" in ASCII).
const SCHEMA_LOCK: i64 = 0x6261_6e74_696e;
/// Connections per process: the pipeline's store calls run on a few blocking threads.
const POOL_SIZE: u32 = 8;
/// How long a store call waits for a free connection (or for the server) before failing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Wraps a PostgreSQL error with what the statement was doing.
pub(crate) fn pg(what: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
    move |source| StoreError::Postgres { what, source }
}

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// The PostgreSQL store: a pool of connections to one database.
pub struct PostgresStore {
    /// Always `Some` until dropped: taken in `drop` to close the connections off any
    /// async thread.
    pool: Option<Pool>,
    dedup: DedupSettings,
}

/// Runs database work where the blocking client may run. The `postgres` crate drives
/// each connection with a runtime of its own, which cannot start on a thread that is
/// driving async tasks; bantin's async code mostly calls the store from
/// `spawn_blocking`, but not everywhere (opening the store, a few quick reads).
fn off_async<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => work(),
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        // A single-threaded runtime cannot hand its thread over: another thread works.
        Ok(_) => std::thread::scope(|s| {
            s.spawn(work)
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing a connection blocks on the client's runtime too.
        if let Some(pool) = self.pool.take() {
            off_async(move || drop(pool));
        }
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host/db`), applies
    /// pending migrations, and builds the near-duplicate index for
    /// `near_duplicate_distance` when its layout changed since the last open.
    pub fn open(url: &str, near_duplicate_distance: u32) -> Result<PostgresStore, StoreError> {
        let shown = redact_password(url);
        let config: postgres::Config = url.parse().map_err(|source| StoreError::OpenPostgres {
            url: shown.clone(),
            source,
        })?;
        let pool = off_async(|| {
            r2d2::Pool::builder()
                .max_size(POOL_SIZE)
                .min_idle(Some(1))
                .connection_timeout(CONNECT_TIMEOUT)
                .build(PostgresConnectionManager::new(config, NoTls))
        })
        .map_err(|source| StoreError::Pool { url: shown, source })?;
        let bands = Bands::for_distance(near_duplicate_distance);
        let store = PostgresStore {
            pool: Some(pool),
            dedup: DedupSettings {
                bands,
                distance: near_duplicate_distance,
            },
        };
        store.write(migrate)?;
        store.write(|tx| {
            rebuild_if_stale(tx, "simhash_bands", &bands.layout(), |tx| {
                items::rebuild_bands(tx, bands)
            })
        })?;
        store.write(|tx| {
            rebuild_if_stale(tx, "item_search", SEARCH_INDEX_VERSION, items::reindex_all)
        })?;
        Ok(store)
    }

    fn pool(&self) -> &Pool {
        self.pool
            .as_ref()
            .expect("the pool is only taken when the store is dropped")
    }

    /// Runs `f` in one transaction and commits it.
    fn write<T: Send>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        off_async(|| {
            let mut conn = self.pool().get().map_err(StoreError::Checkout)?;
            let mut tx = conn.transaction().map_err(pg("begin transaction"))?;
            let out = f(&mut tx)?;
            tx.commit().map_err(pg("commit"))?;
            Ok(out)
        })
    }

    /// Runs `f` in one read-only transaction (one snapshot for all its reads).
    fn read<T: Send>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        off_async(|| {
            let mut conn = self.pool().get().map_err(StoreError::Checkout)?;
            let mut tx = conn
                .build_transaction()
                .read_only(true)
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .start()
                .map_err(pg("begin transaction"))?;
            f(&mut tx)
        })
    }

    /// The stored item nearest to `simhash` within the configured distance, earliest
    /// first among equals, found through the band index: `(id, distance)`.
    pub fn find_near_duplicate(&self, simhash: u64) -> Result<Option<(ItemId, u32)>, StoreError> {
        self.read(|tx| {
            let DedupSettings { bands, distance } = self.dedup;
            Ok(items::near_duplicate(tx, bands, distance, simhash)?.map(|(_, id, d)| (id, d)))
        })
    }

    /// Copies the SQLite store `from` into this database, which must hold no store
    /// data unless `replace` (then its data is replaced), in one transaction. Returns
    /// the rows copied per table; [`MigrateError::NotEmpty`] when the target holds data.
    pub fn copy_from_sqlite(
        &self,
        from: &super::SqliteStore,
        replace: bool,
    ) -> Result<CopyCounts, MigrateError> {
        self.write(|tx| {
            if !replace && copy::holds_data(tx)? {
                return Ok(Err(MigrateError::NotEmpty));
            }
            // One read transaction: a consistent copy even if a crawl is writing.
            from.read(|source| copy::copy_all(source, tx)).map(Ok)
        })?
    }

    /// Number of stored items.
    pub fn item_count(&self) -> Result<u64, StoreError> {
        self.read(|tx| {
            let n: i64 = tx
                .query_one("SELECT count(*) FROM items", &[])
                .map_err(pg("count items"))?
                .get(0);
            Ok(n as u64)
        })
    }
}

/// Why a copy into PostgreSQL did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("the target database holds bantin data already")]
    NotEmpty,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `url` with its password replaced, for messages and logs.
pub fn redact_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Applies pending migrations in this transaction, under the schema lock: a worker
/// starting while another migrates waits, then finds the schema current.
fn migrate(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .map_err(pg("take the schema lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS schema_migrations (number INTEGER PRIMARY KEY);",
    )
    .map_err(pg("create schema version table"))?;
    let version: Option<i32> = tx
        .query_opt("SELECT version FROM schema_version", &[])
        .map_err(pg("read schema version"))?
        .map(|r| r.get(0));
    let version = u32::try_from(version.unwrap_or(0)).unwrap_or(u32::MAX);
    let recorded: BTreeSet<u32> = tx
        .query("SELECT number FROM schema_migrations", &[])
        .map_err(pg("read migration record"))?
        .iter()
        .map(|r| r.get::<_, i32>(0).max(0) as u32)
        .collect();
    let plan = schema::plan(MIGRATIONS, version, &recorded)?;
    for number in plan.record {
        record_migration(tx, number)?;
    }
    for m in &plan.pending {
        tx.batch_execute(m.sql).map_err(pg("apply migration"))?;
        record_migration(tx, m.number)?;
        tracing::info!(version = m.number, "database schema migrated");
    }
    let latest = schema::latest(MIGRATIONS) as i32;
    tx.execute("DELETE FROM schema_version", &[])
        .map_err(pg("write schema version"))?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES ($1)",
        &[&latest],
    )
    .map_err(pg("write schema version"))?;
    Ok(())
}

fn record_migration(tx: &mut Transaction<'_>, number: u32) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO schema_migrations (number) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&(number as i32)],
    )
    .map(drop)
    .map_err(pg("record migration"))
}

/// Rebuilds a derived index when `meta` holds another `version` for it under `key`, or
/// none, under the schema lock so two workers do not rebuild it at once. `rebuild`
/// clears and fills the index and says how many items it indexed.
fn rebuild_if_stale(
    tx: &mut Transaction<'_>,
    key: &str,
    version: &str,
    rebuild: impl FnOnce(&mut Transaction<'_>) -> Result<usize, StoreError>,
) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .map_err(pg("take the schema lock"))?;
    let stored: Option<String> = tx
        .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
        .map_err(pg("read index version"))?
        .map(|r| r.get(0));
    if stored.as_deref() == Some(version) {
        return Ok(());
    }
    let indexed = rebuild(tx)?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &version],
    )
    .map_err(pg("write index version"))?;
    if indexed > 0 {
        tracing::info!(index = key, items = indexed, "index built");
    }
    Ok(())
}

impl Store for PostgresStore {
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
        self.read(schedule_state::held_back)
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
        after: Option<&RawPageCursor>,
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
        self.read(|tx| {
            tx.execute("SELECT 1", &[]).map_err(pg("ping"))?;
            Ok(())
        })
    }

    fn lock_publishing(&self) -> Result<PublishLock, StoreError> {
        Ok(PublishLock {
            _held: HeldLock::Postgres(Box::new(PublishSession::lock(self.pool())?)),
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
