//! Storage: the one place bantin keeps state. The pipeline talks to the [`Store`]
//! trait only; [`open`] picks the backend the configured database names: SQLite (the
//! default, embedded) or PostgreSQL (one database shared by several processes).

mod article_plan;
mod article_state;
mod encoding;
mod fetch_state;
mod items;
mod lease_state;
mod leases;
mod postgresql;
mod published;
mod publishing;
mod recording;
mod retention;
mod schedule_state;
mod schema;
mod source_runs;
mod sqlite;

pub use article_plan::{DEAD_LINK_FIRST_BACKOFF, DEAD_LINK_MAX_BACKOFF, dead_link_backoff};
pub use leases::expiry as lease_expiry;
pub use postgresql::{CopyCounts, MigrateError, PostgresStore, redact_password};
pub use recording::item_id;
pub use sqlite::SqliteStore;

use std::time::Duration;

use chrono::{DateTime, Utc};
use url::Url;

use crate::config::Database;

use crate::model::{
    Article, ArticlePlan, Candidate, CategoryId, Claim, ClaimRequest, DeadLink, HeldBack, HostSlot,
    HostTurn, Item, ItemId, Lease, Outcome, PageFetch, RawPage, SlotRequest, SourceId, SourceRun,
    SourceSchedule, SourceState, Validators,
};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {path}")]
    Open {
        path: std::path::PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database operation failed: {what}")]
    Sqlite {
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot use the PostgreSQL database {url}")]
    OpenPostgres {
        url: String,
        #[source]
        source: postgres::Error,
    },
    #[error("cannot connect to the PostgreSQL database {url}")]
    Pool {
        url: String,
        #[source]
        source: r2d2::Error,
    },
    #[error("no PostgreSQL connection free")]
    Checkout(#[source] r2d2::Error),
    #[error("database operation failed: {what}")]
    Postgres {
        what: &'static str,
        #[source]
        source: postgres::Error,
    },
    #[error("cannot take the publish lock {path}")]
    Lock {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// A place in the order raw pages are read in (fetch time, then address): a batch read
/// with this cursor starts at the first page after the one it was taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPageCursor {
    pub fetched_at: DateTime<Utc>,
    pub url: Url,
}

impl RawPageCursor {
    /// The cursor just past `page`.
    pub fn after(page: &RawPage) -> RawPageCursor {
        RawPageCursor {
            fetched_at: page.fetched_at,
            url: page.url.clone(),
        }
    }
}

/// A document as published under `/feeds/` (a feed, the OPML list, the stylesheet):
/// the bytes every server answers, with their validators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedDocument {
    /// Its name under `/feeds/`, e.g. `all.rss`.
    pub name: String,
    pub body: Vec<u8>,
    /// Strong ETag, quoted.
    pub etag: String,
    /// `Last-Modified`, when the document has a time.
    pub last_modified: Option<DateTime<Utc>>,
}

/// The validators of a stored published document, to tell whether a publish changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentVersion {
    pub etag: String,
    pub last_modified: Option<DateTime<Utc>>,
}

/// Every published document, as of one publish generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    pub generation: u64,
    pub documents: Vec<PublishedDocument>,
}

/// Held by the one publisher of a database, from [`Store::lock_publishing`]; others
/// wait until it is dropped (or its process dies).
pub struct PublishLock {
    /// Kept for what dropping it does: closing the file or the session frees the lock.
    _held: HeldLock,
}

// Never read: held for their drop.
#[allow(dead_code)]
enum HeldLock {
    /// An exclusive lock on a file beside the SQLite database, released when closed.
    File(std::fs::File),
    /// A PostgreSQL session holding an advisory lock.
    Postgres(Box<postgresql::PublishSession>),
}

/// Everything the pipeline, publishing and serving need from storage. Every method is
/// one transaction; all are blocking (call them from `spawn_blocking` in async code).
pub trait Store: Send + Sync {
    /// Stores an extracted article through dedup: a new item, an update of the item at
    /// the same canonical URL, nothing (unchanged), or another link of a near-duplicate
    /// item. `categories` are the article's categories; a duplicate adds them to the
    /// existing item. `raw` is the page it came from, kept for re-extraction.
    fn record(
        &self,
        article: &Article,
        source: &SourceId,
        categories: &[CategoryId],
        raw: Option<&RawPage>,
    ) -> Result<Outcome, StoreError>;

    /// Like [`Store::record`], for an article page fetched from `fetch.asked`: its fetch
    /// state is saved in the same transaction (next re-check, validators, or that the
    /// address is an alias of a stored item). A page whose canonical link names another
    /// stored article merges into it only when the texts are near duplicates; otherwise
    /// it is a separate item and a warning is logged.
    fn record_fetched(
        &self,
        article: &Article,
        source: &SourceId,
        categories: &[CategoryId],
        raw: Option<&RawPage>,
        fetch: &PageFetch,
    ) -> Result<Outcome, StoreError>;

    /// Decides which of the article links a run of `source` found are fetched, and adds
    /// the source's stored articles younger than `within` (by published time, else
    /// first seen) whose re-check is due at `now`. See [`ArticlePlan`].
    fn plan_articles(
        &self,
        source: &SourceId,
        candidates: Vec<Candidate>,
        within: Duration,
        now: DateTime<Utc>,
    ) -> Result<ArticlePlan, StoreError>;

    /// A re-check of `url` answered 304 or failed for a reason that may pass: its next
    /// re-check is `every` after `now`.
    fn reschedule_article(
        &self,
        url: &Url,
        every: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// `url` answered 404 or 410: it is not asked again before a backoff that grows with
    /// each dead answer in a row (see [`dead_link_backoff`]).
    fn mark_dead_link(
        &self,
        url: &Url,
        source: &SourceId,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<DeadLink, StoreError>;

    /// `url`'s standing as a dead link, if it is one.
    fn dead_link(&self, url: &Url) -> Result<Option<DeadLink>, StoreError>;

    /// When the article page at `url` is re-checked next, if it is.
    fn next_check(&self, url: &Url) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Makes the re-check of every article of `source` younger than `within` due at
    /// `now`. Returns how many.
    fn refresh_now(
        &self,
        source: &SourceId,
        within: Duration,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError>;

    /// Whether an article at this address (canonicalized) is stored already.
    fn knows_url(&self, url: &Url) -> Result<bool, StoreError>;

    fn item(&self, id: &ItemId) -> Result<Option<Item>, StoreError>;

    /// The newest items of a category (or of all items for [`crate::model::ALL_CATEGORY`]),
    /// newest first by published time, else first-seen time.
    fn latest_items(&self, feed: &CategoryId, limit: usize) -> Result<Vec<Item>, StoreError>;

    /// The newest items of a feed (as [`Store::latest_items`]) that contain every word of
    /// `words`, as typed by a reader. Words are compared whole, in lower case and without
    /// diacritics ("dang" finds "Đảng", "Đảng" finds "dang"); a word is a run of letters
    /// and digits, so punctuation, quotes and operators in `words` only separate words.
    /// Without any word, the newest items.
    fn search_items(
        &self,
        feed: &CategoryId,
        words: &str,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError>;

    /// Replaces an item's categories (after re-classification).
    fn set_categories(&self, id: &ItemId, categories: &[CategoryId]) -> Result<(), StoreError>;

    fn validators(&self, url: &Url) -> Result<Option<Validators>, StoreError>;
    fn save_validators(&self, url: &Url, validators: &Validators) -> Result<(), StoreError>;
    /// The validators of every listing, feed and sitemap page `source` asked for, and of
    /// `urls` (its start addresses).
    fn source_validators(
        &self,
        source: &SourceId,
        urls: &[Url],
    ) -> Result<Vec<(Url, Validators)>, StoreError>;
    /// Saves validators of pages `source` asked for.
    fn save_source_validators(
        &self,
        source: &SourceId,
        validators: &[(Url, Validators)],
    ) -> Result<(), StoreError>;

    /// Records a finished source run; a failed one ([`SourceRun::failed`]) adds one to
    /// the source's failures in a row, any other resets them.
    fn record_source_run(&self, source: &SourceId, run: &SourceRun) -> Result<(), StoreError>;
    fn source_states(&self) -> Result<Vec<SourceState>, StoreError>;
    /// One source's state, if it has run.
    fn source_state(&self, source: &SourceId) -> Result<Option<SourceState>, StoreError>;

    /// When a source may run next, its failures in a row and its backoff: what the
    /// scheduler starts from (after a restart too). Default for a source never run.
    fn source_schedule(&self, source: &SourceId) -> Result<SourceSchedule, StoreError>;
    /// Records that `source` is not due before `next_due`, and the backoff (after
    /// failures) that put it there.
    fn save_next_due(
        &self,
        source: &SourceId,
        next_due: DateTime<Utc>,
        backoff: Option<std::time::Duration>,
    ) -> Result<(), StoreError>;

    /// The `Retry-After` hold-backs still in force.
    fn held_back(&self) -> Result<Vec<HeldBack>, StoreError>;
    /// Remembers hold-backs (a later time wins over an earlier one for the same key) and
    /// forgets those that have passed.
    fn save_held_back(&self, held: &[HeldBack]) -> Result<(), StoreError>;

    /// Up to `limit` stored raw pages, oldest first (by fetch time, then address),
    /// optionally of one source and fetched since a time, starting just after `after`.
    /// Reading a large store is a loop of such batches, each resuming after the last
    /// page of the one before (see [`RawPageCursor`]), so memory stays bounded.
    fn raw_pages(
        &self,
        source: Option<&SourceId>,
        since: Option<DateTime<Utc>>,
        after: Option<&RawPageCursor>,
        limit: usize,
    ) -> Result<Vec<RawPage>, StoreError>;

    /// Deletes items older than `retention_days` that are not among the newest
    /// `keep_per_feed` of any of `feeds` or of `all`, dead links whose backoff ended
    /// more than `retention_days` ago, and raw pages older than `raw_page_days`.
    /// Returns how many items were deleted.
    fn prune(
        &self,
        retention_days: u32,
        raw_page_days: u32,
        keep_per_feed: usize,
        feeds: &[CategoryId],
    ) -> Result<usize, StoreError>;

    /// Cheap check that the database answers (for `/healthz`).
    fn ping(&self) -> Result<(), StoreError>;

    // Published documents: what every server answers at `/feeds/`, whichever process
    // published it.

    /// Waits until no other publisher (in this process or another) holds the publish
    /// lock, and holds it until the returned value is dropped: publishes of one
    /// database never interleave.
    fn lock_publishing(&self) -> Result<PublishLock, StoreError>;
    /// The validators of each published document, by name.
    fn published_versions(
        &self,
    ) -> Result<std::collections::BTreeMap<String, DocumentVersion>, StoreError>;
    /// Stores the documents a publish changed and forgets those it `removed`, with a
    /// new publish generation when either is not empty, all in one transaction.
    /// Returns the generation now current.
    fn save_published(
        &self,
        lock: &PublishLock,
        changed: &[PublishedDocument],
        removed: &[String],
    ) -> Result<u64, StoreError>;
    /// The current publish generation: one small read, for servers polling for a
    /// newer publish.
    fn publish_generation(&self) -> Result<u64, StoreError>;
    /// Every published document and their generation, read in one snapshot.
    fn published(&self) -> Result<Published, StoreError>;

    // Leases: which worker runs which source, and holds which host meanwhile, so that
    // several workers on one database never run a source twice at once and never ask
    // one host at once. Every worker calls these the same way on both backends.

    /// Claims a run of `claim.source` for `claim.worker`: granted when no other worker
    /// holds the source or one of its hosts (a lease past its expiry is held by nobody)
    /// and no run for `claim.tick` or a later tick finished. A granted claim holds the
    /// source and its hosts until `claim.now + claim.lease`.
    fn claim_source(&self, claim: &ClaimRequest) -> Result<Claim, StoreError>;
    /// Extends every lease `worker` holds to `until`, and records when each of `hosts`
    /// (held by it) may be asked next. Returns the sources it still holds: one missing
    /// was taken over by another worker after its lease ran out.
    fn renew_leases(
        &self,
        worker: &str,
        hosts: &[HostTurn],
        until: DateTime<Utc>,
    ) -> Result<Vec<SourceId>, StoreError>;
    /// Ends `worker`'s run of `source`: `finished` is the tick it finished (`None`: it
    /// stopped short, and the tick may be run again). `free` are the hosts it no longer
    /// holds, each with when it may be asked next.
    fn release_source(
        &self,
        source: &SourceId,
        worker: &str,
        finished: Option<DateTime<Utc>>,
        free: &[HostTurn],
    ) -> Result<(), StoreError>;
    /// The sources held by a worker at `now`, by source id.
    fn leases(&self, now: DateTime<Utc>) -> Result<Vec<Lease>, StoreError>;
    /// Ends every lease `worker` holds as `process` as if it had run out, for a worker
    /// that found that process dead.
    fn expire_leases(&self, worker: &str, process: &str) -> Result<(), StoreError>;
    /// A slot for one request by `request.worker` to `request.host`, a host none of its
    /// runs holds: the host's next free time (the next request to it, by any worker,
    /// waits `request.delay` after it); or the worker that holds the host now; or the
    /// end of a `Retry-After` stored for the host or the address, before which no
    /// worker gets a slot; or, when as many requests as `request.concurrency` are in
    /// flight on the host, the earliest one's end. A slot's request counts as in flight
    /// until [`Store::end_host_request`], or its time plus `request.hold`.
    fn take_host_slot(&self, request: &SlotRequest) -> Result<HostSlot, StoreError>;
    /// The request a host slot was given for (its `ticket`) ended.
    fn end_host_request(&self, ticket: i64) -> Result<(), StoreError>;
}

/// Opens the store `database` names: the SQLite file, or the PostgreSQL database (its
/// schema migrated either way). `near_duplicate_distance` is the dedup setting.
pub fn open(
    database: &Database,
    near_duplicate_distance: u32,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(match database {
        Database::Sqlite(path) => {
            std::sync::Arc::new(SqliteStore::open(path, near_duplicate_distance)?)
        }
        Database::Postgres(url) => {
            std::sync::Arc::new(PostgresStore::open(url, near_duplicate_distance)?)
        }
    })
}
