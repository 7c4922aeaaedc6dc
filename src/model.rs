//! Plain data shared by the pipeline stages. No behaviour beyond small helpers:
//! stages exchange these types and `pipeline.rs` strings them together.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id_type!(
    /// A source's short stable name from config, e.g. `cand-xay-dung-dang`.
    SourceId
);
id_type!(
    /// A category slug from config, e.g. `party-work`; `all` is the feed of everything.
    CategoryId
);
id_type!(
    /// A stored item's stable id; it never changes when the article is updated.
    ItemId
);

/// The id of the feed that holds every item.
pub const ALL_CATEGORY: &str = "all";

/// An article address found by a source, before its page is fetched.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Absolute article URL as found (fragment removed).
    pub url: Url,
    pub source: SourceId,
    /// Title the listing, feed or sitemap gave, if any.
    pub title: Option<String>,
    /// Publication time the feed or sitemap gave, if any.
    pub published: Option<DateTime<FixedOffset>>,
    /// A complete article taken from a feed entry: no page fetch is needed unless the
    /// source asks for the full text.
    pub article: Option<Article>,
}

/// A fetched and decoded HTML page.
#[derive(Debug, Clone)]
pub struct Page {
    /// The address that was asked for.
    pub url: Url,
    /// The address after redirects; this is what is stored.
    pub final_url: Url,
    pub fetched_at: DateTime<Utc>,
    /// The page decoded to UTF-8.
    pub html: String,
}

/// Which extraction step produced a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The source's configured CSS selector.
    Selector,
    /// JSON-LD `NewsArticle` / `Article` data.
    JsonLd,
    /// OpenGraph, `article:*`, Dublin Core or `<meta name>` tags.
    Meta,
    /// Generic rules: `<h1>`, text density, visible date lines.
    Heuristic,
    /// The entry of an RSS / Atom / JSON feed.
    Feed,
}

/// A field of an article, by the name that config keys, provenance, field coverage and
/// messages use (`title`, `body_text`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    // Declared in the alphabetical order of their names: maps keyed by field list them
    // in that order, as they did when they were keyed by name.
    Authors,
    /// The body as a whole, HTML and text: what rules match, feeds give and the
    /// breakage alarm tracks.
    Body,
    BodyHtml,
    BodyText,
    CanonicalUrl,
    Image,
    Language,
    Lead,
    Published,
    Section,
    Tags,
    Title,
    Updated,
}

impl Field {
    /// Every field, in name order.
    pub const ALL: [Field; 13] = [
        Field::Authors,
        Field::Body,
        Field::BodyHtml,
        Field::BodyText,
        Field::CanonicalUrl,
        Field::Image,
        Field::Language,
        Field::Lead,
        Field::Published,
        Field::Section,
        Field::Tags,
        Field::Title,
        Field::Updated,
    ];

    /// The field's name, e.g. `body_text`.
    pub fn name(self) -> &'static str {
        match self {
            Field::Authors => "authors",
            Field::Body => "body",
            Field::BodyHtml => "body_html",
            Field::BodyText => "body_text",
            Field::CanonicalUrl => "canonical_url",
            Field::Image => "image",
            Field::Language => "language",
            Field::Lead => "lead",
            Field::Published => "published",
            Field::Section => "section",
            Field::Tags => "tags",
            Field::Title => "title",
            Field::Updated => "updated",
        }
    }

    /// The field named `name`, if there is one.
    pub fn named(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which extraction step gave each field of an article.
pub type Provenance = BTreeMap<Field, Origin>;

/// One article's fields, as extracted from a page or a feed entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Article {
    /// The address the page was fetched from (after redirects).
    pub url: Url,
    /// `<link rel=canonical>` or `og:url`, when the page gives one.
    pub canonical_url: Option<Url>,
    pub title: String,
    pub published: Option<DateTime<FixedOffset>>,
    pub updated: Option<DateTime<FixedOffset>>,
    pub authors: Vec<String>,
    /// The standfirst (sapo) shown above the body.
    pub lead: Option<String>,
    /// Sanitized HTML with absolute URLs.
    pub body_html: String,
    /// Readable text, paragraphs separated by a blank line.
    pub body_text: String,
    pub image: Option<Url>,
    pub tags: Vec<String>,
    pub section: Option<String>,
    /// BCP 47 language tag, e.g. `vi`.
    pub language: Option<String>,
    /// Where each field's value came from.
    pub provenance: Provenance,
}

impl Article {
    /// Whether the article has a value for `field`.
    pub fn has(&self, field: Field) -> bool {
        match field {
            Field::Authors => !self.authors.is_empty(),
            Field::Body | Field::BodyText => !self.body_text.is_empty(),
            Field::BodyHtml => !self.body_html.is_empty(),
            Field::CanonicalUrl => self.canonical_url.is_some(),
            Field::Image => self.image.is_some(),
            Field::Language => self.language.is_some(),
            Field::Lead => self.lead.is_some(),
            Field::Published => self.published.is_some(),
            Field::Section => self.section.is_some(),
            Field::Tags => !self.tags.is_empty(),
            Field::Title => !self.title.is_empty(),
            Field::Updated => self.updated.is_some(),
        }
    }
}

/// What the store did with an article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A story not seen before.
    New(ItemId),
    /// A known item whose title or body changed: same id, new `updated`.
    Updated(ItemId),
    /// A known item, nothing changed.
    Unchanged(ItemId),
    /// The same story as an existing item at another address; the address was recorded
    /// as another link of that item.
    Duplicate { of: ItemId, reason: String },
}

/// A stored story, as publishing and serving see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: ItemId,
    pub article: Article,
    /// The source that first found the story.
    pub source: SourceId,
    pub categories: Vec<CategoryId>,
    /// When bantin first stored the story.
    pub first_seen: DateTime<Utc>,
    /// When the stored content last changed.
    pub updated_at: DateTime<Utc>,
    /// Every other address the story was seen at.
    pub links: Vec<Url>,
}

impl Item {
    /// The time feeds sort and date the item by: published when known, else first seen.
    pub fn date(&self) -> DateTime<FixedOffset> {
        self.article
            .published
            .unwrap_or_else(|| self.first_seen.fixed_offset())
    }
}

/// HTTP validators of a listing, feed or sitemap URL, for conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Why a run asks for an article page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitReason {
    /// An address never asked for.
    New,
    /// A dead link whose backoff has passed.
    DeadRetry,
    /// A young stored article whose re-check is due.
    Due,
    /// The listing shows a stored article under another title than before.
    TitleChanged,
}

/// One article link a run acts on, as the store planned it.
#[derive(Debug, Clone)]
pub struct ArticleVisit {
    pub candidate: Candidate,
    pub reason: VisitReason,
    /// The stored item a re-check is about.
    pub item: Option<ItemId>,
    /// The stored page's validators, sent with a re-check.
    pub validators: Option<Validators>,
}

/// What the store decided about a source's article links for one run.
#[derive(Debug, Clone, Default)]
pub struct ArticlePlan {
    /// Links to fetch (or record), new ones first in the order found, then re-checks.
    pub visits: Vec<ArticleVisit>,
    /// Listed links known to be dead and still in their backoff (not asked).
    pub dead_links: u64,
}

/// How a fetched article page was asked for, recorded with its item so the next
/// re-check and aliases are known.
#[derive(Debug, Clone)]
pub struct PageFetch {
    /// The address asked for (before redirects).
    pub asked: Url,
    /// When the answer came; the next re-check counts from here.
    pub fetched_at: DateTime<Utc>,
    /// Validators of the answer, sent with the next re-check.
    pub validators: Validators,
    /// The title the listing, feed or sitemap gave.
    pub listed_title: Option<String>,
    /// How often the page is asked again while young; `None`: never (feed entries).
    pub every: Option<std::time::Duration>,
}

/// A dead article link's standing after a 404 or 410.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLink {
    /// 404 or 410 answers in a row.
    pub failures: u32,
    /// Not asked again before this.
    pub retry_at: DateTime<Utc>,
}

/// A fetched article page kept for `bantin reextract`.
#[derive(Debug, Clone)]
pub struct RawPage {
    /// The address after redirects.
    pub url: Url,
    pub source: SourceId,
    pub fetched_at: DateTime<Utc>,
    pub html: String,
}

/// Why a source's listing, feed or sitemap could not be read, for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum ReadFailure {
    /// Nothing listens at the address.
    ConnectionRefused,
    /// The host name did not resolve.
    Dns,
    /// No complete answer within the fetch timeout.
    Timeout,
    /// The server answered this HTTP status.
    Status(u16),
    /// robots.txt disallows the page, or could not be read.
    Robots,
    /// The site's `Retry-After` holds the page back until this time.
    RetryLater(DateTime<Utc>),
    /// Anything else (a refused address, a body too large, a broken page, the store).
    Other(String),
}

impl fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFailure::ConnectionRefused => f.write_str("connection refused"),
            ReadFailure::Dns => f.write_str("the host name does not resolve (DNS)"),
            ReadFailure::Timeout => f.write_str("timed out"),
            ReadFailure::Status(status) => write!(f, "answered {status}"),
            ReadFailure::Robots => f.write_str("robots.txt does not allow it"),
            ReadFailure::RetryLater(until) => {
                write!(f, "held back by the site's Retry-After until {until}")
            }
            ReadFailure::Other(text) => f.write_str(text),
        }
    }
}

/// What one run of a source did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceRun {
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Article links the listing, feed or sitemap gave; after a run answered 304
    /// throughout, the count of the last run that read them.
    pub links_found: u64,
    /// Pages fetched (listings, feeds, sitemaps and articles).
    pub pages_fetched: u64,
    /// Listing, feed and sitemap pages that answered 200 (the rest of `pages_fetched`
    /// are articles).
    #[serde(default)]
    pub listings_read: u64,
    /// Listing, feed and sitemap requests answered 304 Not Modified (a stored article's
    /// re-check answered 304 counts as `unchanged`).
    pub not_modified: u64,
    pub new: u64,
    pub updated: u64,
    pub duplicates: u64,
    pub unchanged: u64,
    /// Timeouts, 5xx answers, unreadable pages: what may pass, not dead links.
    pub errors: u64,
    /// Article links that answered 404 or 410 in this run, or are known dead and wait
    /// for their backoff.
    #[serde(default)]
    pub dead_links: u64,
    /// The last error of the run, if any, for the operator.
    pub last_error: Option<String>,
    /// Why no listing, feed or sitemap page of the source could be read (or the store
    /// failed); see [`SourceRun::failed`]. `None` for a run that read its source.
    #[serde(default)]
    pub failure: Option<ReadFailure>,
    /// Shutdown cut the run short: what it lacks says nothing about the site.
    #[serde(default)]
    pub interrupted: bool,
    /// What the breakage alarm found (no links, a field gone), naming the selector to
    /// check; empty for a healthy run.
    #[serde(default)]
    pub breakage: Vec<String>,
    /// Share (0..=1) of the run's extracted articles that had each field, e.g.
    /// "published" -> 0.98; tells a site redesign from a quiet day.
    pub field_coverage: BTreeMap<Field, f64>,
}

impl SourceRun {
    /// The one rule for a failed run, used by the scheduler's backoff, the stored
    /// failure count (`/healthz`, `/metrics`) and `crawl`'s exit code: the source could
    /// not be read at all. Failed or dead article pages do not fail a run that read its
    /// listing: a working site with a few broken links is not down; nor does a site
    /// that asked to wait (`Retry-After`) fail: it is waited for, not backed off.
    pub fn failed(&self) -> bool {
        self.failure
            .as_ref()
            .is_some_and(|f| !matches!(f, ReadFailure::RetryLater(_)))
    }
}

/// A source's standing across runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    pub source: Option<SourceId>,
    pub last_run: Option<SourceRun>,
    pub last_success: Option<DateTime<Utc>>,
    /// Failed runs in a row.
    pub failures: u32,
    /// Recent runs, newest first, for the breakage alarm.
    pub recent_runs: Vec<SourceRun>,
}

/// Failed runs in a row after which a source counts as unhealthy.
pub const UNHEALTHY_AFTER_FAILURES: u32 = 3;

impl SourceState {
    /// A source is unhealthy after several failed runs in a row, or when its last run
    /// raised the breakage alarm (a likely site redesign).
    pub fn is_healthy(&self) -> bool {
        self.failures < UNHEALTHY_AFTER_FAILURES
            && self.last_run.as_ref().is_none_or(|r| r.breakage.is_empty())
    }
}

/// A `Retry-After` answer remembered: no request to `key` (a URL, or a whole host as
/// `host:port`) before `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    pub key: String,
    pub until: DateTime<Utc>,
}

/// When the scheduler runs a source next, kept in the store so that a restart keeps a
/// failing source backing off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceSchedule {
    /// The next run is not before this time.
    pub next_due: Option<DateTime<Utc>>,
    /// Failed runs in a row (see [`SourceRun::failed`]).
    pub failures: u32,
    /// The backoff that pushed `next_due` back; `None` while the source is healthy.
    pub backoff: Option<std::time::Duration>,
    /// When the last run finished.
    pub last_finished: Option<DateTime<Utc>>,
}

/// A worker's claim on one run of a source: the source's due tick, and the hosts of its
/// start URLs, which the worker holds for as long as it runs any source of theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    pub source: SourceId,
    /// Hosts (`host:port`) of the source's start URLs, sorted, without repeats.
    pub hosts: Vec<String>,
    /// The claiming worker's id.
    pub worker: String,
    /// The scheduled tick the run is for: a tick some worker finished is not run again.
    /// `None` for a run asked for by hand (`bantin crawl`), which is for no tick.
    pub tick: Option<DateTime<Utc>>,
    /// How long the claim holds without a renewal.
    pub lease: std::time::Duration,
    pub now: DateTime<Utc>,
    /// The claiming process as [`crate::schedule`] names it on this machine (boot,
    /// process namespace, pid, start time), stored with the lease so that a worker on
    /// the same machine can tell that the holder died; `None` where it is not known.
    pub process: Option<String>,
    /// Processes of this machine the claimer found dead: a lease one of them holds is
    /// held by nobody, as if it had run out.
    pub dead_processes: Vec<String>,
}

/// What a claim got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The worker runs the source now; it holds the source and every host of it.
    Granted { hosts: Vec<HostTurn> },
    /// Another worker holds the source or one of its hosts until `until` (unless it
    /// renews), as `process` (see [`ClaimRequest::process`]) when that is known.
    Busy {
        worker: String,
        until: DateTime<Utc>,
        process: Option<String>,
    },
    /// A run for this tick (or a later one) already finished.
    Done,
}

/// A host handed from one worker to the next: no request to it before `not_before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTurn {
    /// `host:port`.
    pub host: String,
    /// When the previous holder's politeness lets the host be asked again.
    pub not_before: Option<DateTime<Utc>>,
    /// The previous holder let its lease run out (it died) rather than releasing it:
    /// when it last asked the host is not known.
    pub abandoned: bool,
}

/// A source a worker holds, as `/healthz` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub source: SourceId,
    pub worker: String,
    pub expires_at: DateTime<Utc>,
    /// The holding process (see [`ClaimRequest::process`]), if known.
    pub process: Option<String>,
}

/// A request for one slot of a host that no run of the asking worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRequest {
    /// `host:port`.
    pub host: String,
    /// The address asked for: a `Retry-After` stored for it holds it back too.
    pub url: String,
    /// The asking worker's id.
    pub worker: String,
    /// How long the host's next request, by any worker, waits after this one.
    pub delay: std::time::Duration,
    /// How many requests may be in flight on the host at once, across workers.
    pub concurrency: usize,
    /// How long after its slot's time a request counts as in flight at most, when its
    /// worker does not say it ended (it died).
    pub hold: std::time::Duration,
    pub now: DateTime<Utc>,
    /// Processes of this machine the asker found dead (see
    /// [`ClaimRequest::dead_processes`]).
    pub dead_processes: Vec<String>,
}

/// What a request to a host that no run of this worker holds got from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSlot {
    /// The request may start at this time; the host's next request, by any worker, not
    /// before one delay after it. It counts as in flight until its worker ends
    /// `ticket` ([`crate::store::Store::end_host_request`]).
    At { at: DateTime<Utc>, ticket: i64 },
    /// As many requests as the host's concurrency allows are in flight (the earliest,
    /// by `worker`, counts until `until` unless it ends sooner).
    Full {
        worker: String,
        until: DateTime<Utc>,
    },
    /// Another worker holds the host (it runs a source of it) until `until`, unless it
    /// renews, as `process` when that is known.
    Held {
        worker: String,
        until: DateTime<Utc>,
        process: Option<String>,
    },
    /// A `Retry-After` some worker stored holds the host (or the address) back until
    /// `until`: no slot is given before then.
    HeldBack { until: DateTime<Utc> },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_their_serde_names_in_name_order() {
        for field in Field::ALL {
            let json = serde_json::to_string(&field).expect("a field serializes");
            assert_eq!(json, format!("\"{field}\""));
            assert_eq!(Field::named(field.name()), Some(field));
        }
        let names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "maps keyed by field list them by name");
        let mut ordered = Field::ALL;
        ordered.sort();
        assert_eq!(ordered, Field::ALL);
    }
}
