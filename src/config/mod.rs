//! Configuration: the raw TOML structs (`file`), reading a file into them past shape
//! errors (`shape`), checking single values (`values`), turning the files into runtime
//! types while collecting every problem (`build`), and reporting problems (`diag`).
//! Nothing here touches the network.

mod build;
mod database;
pub mod diag;
pub mod file;
mod shape;
mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use regex::Regex;
use scraper::Selector;
use url::Url;

use crate::model::{CategoryId, Field, SourceId};
pub use diag::{Diagnostic, Diagnostics};
pub use values::is_slug;

/// Everything bantin runs on, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub categories: Vec<Category>,
    pub sources: Vec<Source>,
    /// Every file the configuration was read from (watched for live reload).
    pub files: Vec<PathBuf>,
    /// The folder the `sources` glob looks in, where a new source file may appear.
    pub sources_dir: Option<PathBuf>,
}

/// The database bantin keeps its state in (`database_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An embedded SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

/// `bantin.toml`, built.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: Database,
    pub data_dir: PathBuf,
    pub feeds_dir: PathBuf,
    pub base_url: Url,
    pub listen: SocketAddr,
    pub timezone: Tz,
    pub items_per_feed: usize,
    pub user_agent: String,
    pub title: String,
    pub language: String,
    pub retention_days: u32,
    pub raw_page_days: u32,
    pub near_duplicate_distance: u32,
    pub websub_hub: Option<Url>,
    pub stylesheet: bool,
    /// How long requests in flight may go on after a shutdown signal.
    pub shutdown_timeout: Duration,
    pub fetch: FetchSettings,
    pub server: ServerSettings,
    pub workers: WorkerSettings,
}

/// `[workers]`, built.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How long a claim on a source holds without a renewal.
    pub lease: Duration,
}

/// `[server]`, built.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    /// As configured; the server lowers it to what the open-files limit allows.
    pub max_connections: Option<usize>,
}

/// `[fetch]`, built.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_body_bytes: u64,
    pub max_redirects: usize,
    pub per_host_concurrency: usize,
    pub per_host_delay: Duration,
    pub global_concurrency: usize,
    pub obey_robots: bool,
    pub robots_ttl: Duration,
    pub allow_private_networks: bool,
    pub retry_after_scope: RetryAfterScope,
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
}

/// What a `Retry-After` answer holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfterScope {
    Url,
    Host,
}

/// A category and the keyword rules that put items into it.
#[derive(Debug, Clone)]
pub struct Category {
    pub id: CategoryId,
    pub title: String,
    pub description: String,
    pub rules: Vec<Rule>,
}

/// Keyword terms matched against an article's text. Terms are NFC and lower case.
#[derive(Debug, Clone)]
pub struct Rule {
    pub any: Vec<String>,
    pub all: Vec<String>,
    pub none: Vec<String>,
    /// Where the terms are looked for: some of [`RULE_FIELDS`].
    pub fields: Vec<Field>,
    pub fold_diacritics: bool,
    pub min_hits: usize,
}

/// The parts of an article a keyword rule can look at.
pub const RULE_FIELDS: [Field; 3] = [Field::Title, Field::Lead, Field::Body];

/// One source of article URLs, built.
#[derive(Debug, Clone)]
pub struct Source {
    pub id: SourceId,
    pub kind: SourceKind,
    pub urls: Vec<Url>,
    pub schedule: cron::Schedule,
    /// The schedule as written, for logs and pages.
    pub schedule_text: String,
    pub categories: Vec<CategoryId>,
    pub timezone: Tz,
    /// Hosts whose article links may be followed: the source URLs' hosts and the
    /// configured allowed domains (a domain also allows its subdomains).
    pub allowed_domains: Vec<String>,
    pub language: Option<String>,
    pub full_text: bool,
    pub max_age: Option<Duration>,
    pub max_articles: usize,
    pub links: LinkRules,
    pub extract: ArticleRules,
    pub refresh: Refresh,
    pub test_urls: Vec<TestUrl>,
    /// The file the source is written in.
    pub file: PathBuf,
}

/// How a source's stored articles are re-checked: every `every` while younger than
/// `within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refresh {
    /// How often a young article is asked again.
    pub every: Duration,
    /// How long after it was published (first seen, without a date) an article is young.
    pub within: Duration,
}

impl Default for Refresh {
    fn default() -> Self {
        Refresh {
            every: Duration::from_secs(3600),
            within: Duration::from_secs(2 * 24 * 3600),
        }
    }
}

/// Where a source's article URLs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Listing,
    Feed,
    Sitemap,
}

/// A compiled CSS selector with the text it was written as.
#[derive(Debug, Clone)]
pub struct Css {
    pub text: String,
    pub selector: Selector,
}

/// How a listing page's article links are found.
#[derive(Debug, Clone)]
pub struct LinkRules {
    pub selector: Option<Css>,
    pub pattern: Option<Regex>,
    pub next_page: Option<Css>,
    pub max_pages: usize,
}

impl Default for LinkRules {
    fn default() -> Self {
        Self {
            selector: None,
            pattern: None,
            next_page: None,
            max_pages: DEFAULT_MAX_PAGES,
        }
    }
}

/// Listing pages read per run when a source does not say.
pub const DEFAULT_MAX_PAGES: usize = 1;

/// Per-field selectors of a source; all optional.
#[derive(Debug, Clone, Default)]
pub struct ArticleRules {
    pub title: Option<Css>,
    pub published: Option<Css>,
    pub published_format: Option<String>,
    pub updated: Option<Css>,
    pub updated_format: Option<String>,
    pub author: Option<Css>,
    pub lead: Option<Css>,
    pub body: Option<Css>,
    pub image: Option<Css>,
    pub tags: Option<Css>,
    pub section: Option<Css>,
    pub remove: Vec<Css>,
}

impl ArticleRules {
    /// The `[extract]` key of `field`'s selector: `author` for [`Field::Authors`], `body`
    /// for the body's HTML and text.
    pub fn selector_key(field: Field) -> &'static str {
        match field {
            Field::Authors => "author",
            Field::BodyHtml | Field::BodyText => "body",
            other => other.name(),
        }
    }

    /// The fields `[extract]` names a selector for, in the order a site file lists them.
    pub const SELECTOR_FIELDS: [Field; 9] = [
        Field::Title,
        Field::Published,
        Field::Updated,
        Field::Authors,
        Field::Lead,
        Field::Body,
        Field::Image,
        Field::Tags,
        Field::Section,
    ];

    /// Where the selector for `field` is kept; `None` for a field no selector gives.
    pub fn selector_mut(&mut self, field: Field) -> Option<&mut Option<Css>> {
        Some(match field {
            Field::Title => &mut self.title,
            Field::Published => &mut self.published,
            Field::Updated => &mut self.updated,
            Field::Authors => &mut self.author,
            Field::Lead => &mut self.lead,
            Field::Body | Field::BodyHtml | Field::BodyText => &mut self.body,
            Field::Image => &mut self.image,
            Field::Tags => &mut self.tags,
            Field::Section => &mut self.section,
            Field::CanonicalUrl | Field::Language => return None,
        })
    }

    /// The selector configured for `field`, if any.
    pub fn selector(&self, field: Field) -> Option<&Css> {
        let css = match field {
            Field::Title => &self.title,
            Field::Published => &self.published,
            Field::Updated => &self.updated,
            Field::Authors => &self.author,
            Field::Lead => &self.lead,
            Field::Body | Field::BodyHtml | Field::BodyText => &self.body,
            Field::Image => &self.image,
            Field::Tags => &self.tags,
            Field::Section => &self.section,
            Field::CanonicalUrl | Field::Language => &None,
        };
        css.as_ref()
    }
}

/// A page with known values, checked by `bantin check --online`.
#[derive(Debug, Clone)]
pub struct TestUrl {
    pub url: Url,
    pub title: Option<String>,
    pub published: Option<chrono::DateTime<chrono::FixedOffset>>,
    pub authors: Option<Vec<String>>,
    pub lead_starts_with: Option<String>,
    pub body_starts_with: Option<String>,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} problem(s) in the configuration", .0.len())]
    Invalid(Vec<Diagnostic>),
}

impl Config {
    /// Reads and validates `bantin.toml` and the source and category files it names.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        build::load(path)
    }

    /// The source with this id.
    pub fn source(&self, id: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.id.as_str() == id)
    }

    /// The source a page at `url` belongs to: the first whose own addresses are on the
    /// page's host and lead to it (the same path or a parent), else the first whose
    /// allowed domains hold the host.
    pub fn source_for(&self, url: &Url) -> Option<&Source> {
        let host = url.host_str()?;
        let leads_to =
            |start: &Url| start.host_str() == Some(host) && url.path().starts_with(start.path());
        self.sources
            .iter()
            .find(|s| s.urls.iter().any(leads_to))
            .or_else(|| self.sources.iter().find(|s| s.allows_host(host)))
    }

    /// The database, as shown to people (a PostgreSQL password hidden).
    pub fn database_name(&self) -> String {
        match &self.settings.database {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres(url) => crate::store::redact_password(url),
        }
    }
}

impl Source {
    /// Whether an article link to this host may be followed.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches("www.").to_ascii_lowercase();
        self.allowed_domains.iter().any(|d| {
            host == *d
                || host
                    .strip_suffix(d.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        })
    }
}
