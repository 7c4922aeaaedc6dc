//! Raw configuration as written in the TOML files. Every field keeps its position so
//! `build` can point at it; defaults live here, in one place.

use serde::Deserialize;
use toml::Spanned;

/// `config/bantin.toml`: the daemon's settings. Relative paths resolve against the
/// folder that holds this file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsFile {
    /// Where bantin keeps its state: absent (the SQLite file `bantin.sqlite3` in
    /// `data_dir`), "sqlite:PATH" (another SQLite file), or
    /// "postgres://user:password@host:port/db" (a PostgreSQL database several bantin
    /// processes can share).
    #[serde(default)]
    pub database_url: Option<Spanned<String>>,
    /// Folder for the SQLite database and other state.
    #[serde(default = "default_data_dir")]
    pub data_dir: Spanned<String>,
    /// Folder the feeds are published to.
    #[serde(default = "default_feeds_dir")]
    pub feeds_dir: Spanned<String>,
    /// Public address the server is reached at; used for self links in feeds.
    #[serde(default = "default_base_url")]
    pub base_url: Spanned<String>,
    /// Address the HTTP server listens on, e.g. "127.0.0.1:8080".
    #[serde(default = "default_listen")]
    pub listen: Spanned<String>,
    /// Time zone for dates that a page prints without one (IANA name).
    #[serde(default = "default_timezone")]
    pub timezone: Spanned<String>,
    /// How many items each feed carries, newest first.
    #[serde(default = "default_items_per_feed")]
    pub items_per_feed: Spanned<i64>,
    /// User-Agent header sent with every request; also the name matched in robots.txt.
    #[serde(default = "default_user_agent")]
    pub user_agent: Spanned<String>,
    /// Title of the feed of everything and of the index page.
    #[serde(default = "default_title")]
    pub title: Spanned<String>,
    /// Language of the feeds (BCP 47), e.g. "vi".
    #[serde(default = "default_language")]
    pub language: Spanned<String>,
    /// Glob of the source files.
    #[serde(default = "default_sources")]
    pub sources: Spanned<String>,
    /// The categories file.
    #[serde(default = "default_categories")]
    pub categories: Spanned<String>,
    /// Items older than this many days are deleted, unless still in a feed.
    #[serde(default = "default_retention_days")]
    pub retention_days: Spanned<i64>,
    /// Raw pages are kept this many days for `bantin reextract`.
    #[serde(default = "default_raw_page_days")]
    pub raw_page_days: Spanned<i64>,
    /// Two texts whose 64-bit SimHashes differ in at most this many bits are one story
    /// (0 to 8; unrelated texts differ in about 32). Each lookup probes the index about
    /// 66 times at 2 or 3 bits, 1,000 times at 4 or 5 and 11,000 times at 6 or 7.
    #[serde(default = "default_near_duplicate_distance")]
    pub near_duplicate_distance: Spanned<i64>,
    /// A WebSub hub to notify when a feed changes.
    #[serde(default)]
    pub websub_hub: Option<Spanned<String>>,
    /// Link an XSL stylesheet from the feeds so a browser shows a readable page.
    #[serde(default = "default_true")]
    pub stylesheet: bool,
    /// On SIGTERM or SIGINT, how long requests in flight may go on before they are
    /// dropped; then what was fetched is stored, the feeds are published and bantin
    /// exits. Keep the service manager's stop timeout a few seconds longer.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: Spanned<String>,
    #[serde(default)]
    pub fetch: FetchFile,
    #[serde(default)]
    pub server: ServerFile,
    #[serde(default)]
    pub workers: WorkersFile,
}

/// `[workers]`: how several `bantin run` processes on one database share the sources.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersFile {
    /// How long a worker's claim on a source (and on its hosts) holds without being
    /// renewed, e.g. "30s". A worker renews its claims every third of it while it runs;
    /// when a worker dies, another takes its sources over once this has passed.
    #[serde(default = "default_lease")]
    pub lease: Spanned<String>,
}

impl Default for WorkersFile {
    fn default() -> Self {
        toml::from_str("").expect("every [workers] key has a default")
    }
}

/// `[server]`: how long and how many clients the HTTP server waits for. Read at start.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// Longest a client may take to send a request's headers, e.g. "10s"; a slower
    /// client is disconnected.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: Spanned<String>,
    /// How long a kept-alive connection may stay without a request before it is closed;
    /// an answer must be read within it too.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Spanned<String>,
    /// Longest a request may take to answer; past it the client gets 503 and the work
    /// stops.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Spanned<String>,
    /// Most connections open at once. When full, the connection idle the longest is
    /// closed to make room. Left out: the open-files limit less a reserve for the store,
    /// publishing and fetching, at most 1024. A larger value is lowered to that at start.
    #[serde(default)]
    pub max_connections: Option<Spanned<i64>>,
}

impl Default for ServerFile {
    fn default() -> Self {
        toml::from_str("").expect("every [server] key has a default")
    }
}

/// `[fetch]`: limits and politeness for every request bantin makes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchFile {
    /// Whole-request time limit, e.g. "30s".
    #[serde(default = "default_timeout")]
    pub timeout: Spanned<String>,
    /// Time limit for opening a connection, e.g. "10s".
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Spanned<String>,
    /// Largest response body read, e.g. "5 MiB" or 5242880; longer bodies are cut off
    /// and reported.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: Spanned<Size>,
    /// Redirects followed before giving up.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: Spanned<i64>,
    /// Requests in flight at once to one host.
    #[serde(default = "default_per_host_concurrency")]
    pub per_host_concurrency: Spanned<i64>,
    /// Least time between two requests to one host, e.g. "1s".
    #[serde(default = "default_per_host_delay")]
    pub per_host_delay: Spanned<String>,
    /// Requests in flight at once in all.
    #[serde(default = "default_global_concurrency")]
    pub global_concurrency: Spanned<i64>,
    /// Read robots.txt and obey Disallow and Crawl-delay for our user agent.
    #[serde(default = "default_true")]
    pub obey_robots: bool,
    /// How long a host's robots.txt is trusted before it is fetched again.
    #[serde(default = "default_robots_ttl")]
    pub robots_ttl: Spanned<String>,
    /// Allow addresses in private, loopback and link-local ranges (tests, demo, intranets).
    #[serde(default)]
    pub allow_private_networks: bool,
    /// Apply a 429/503 `Retry-After` to the one "url" or the whole "host".
    #[serde(default = "default_retry_after_scope")]
    pub retry_after_scope: Spanned<String>,
    /// Retries of a failed request (with exponential backoff and jitter) before it counts
    /// as failed.
    #[serde(default = "default_max_retries")]
    pub max_retries: Spanned<i64>,
    /// First backoff after a failure; it doubles with each failure in a row.
    #[serde(default = "default_backoff_base")]
    pub backoff_base: Spanned<String>,
    /// Longest backoff.
    #[serde(default = "default_backoff_cap")]
    pub backoff_cap: Spanned<String>,
}

impl Default for FetchFile {
    fn default() -> Self {
        toml::from_str("").expect("every [fetch] key has a default")
    }
}

/// A byte size written as a number of bytes or as text with a unit ("5 MiB").
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(i64),
    Text(String),
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Size::Bytes(n) => write!(f, "{n}"),
            Size::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// `config/categories.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoriesFile {
    #[serde(default, rename = "category")]
    pub categories: Vec<CategoryFile>,
}

/// One `[[category]]`: a feed of its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryFile {
    /// Slug used in feed file names and URLs, e.g. "party-work".
    pub id: Spanned<String>,
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// An item belongs to the category when any one rule matches it.
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleFile>,
}

/// One `[[category.rule]]` of keyword terms.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// At least `min_hits` of these terms must occur (when the list is not empty).
    #[serde(default)]
    pub any: Vec<Spanned<String>>,
    /// Every one of these terms must occur.
    #[serde(default)]
    pub all: Vec<Spanned<String>>,
    /// None of these terms may occur.
    #[serde(default)]
    pub none: Vec<Spanned<String>>,
    /// Where to look: any of "title", "lead", "body".
    #[serde(default = "default_rule_fields")]
    pub fields: Spanned<Vec<String>>,
    /// Also match text written without Vietnamese diacritics ("cong tac dang").
    #[serde(default)]
    pub fold_diacritics: bool,
    /// How many occurrences of `any` terms are needed.
    #[serde(default = "default_min_hits")]
    pub min_hits: Spanned<i64>,
}

/// `config/sources/<site>.toml`: one site, one or more sources. The file-level
/// `timezone`, `allowed_domains`, `language` and `[extract]` are defaults for its sources.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteFile {
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    #[serde(default)]
    pub allowed_domains: Vec<Spanned<String>>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub extract: ExtractFile,
    /// `[refresh]`: how the site's stored articles are re-checked, for every source.
    #[serde(default)]
    pub refresh: RefreshFile,
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceFile>,
}

/// One `[[source]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// Short stable name (a slug), used in item ids and logs.
    pub id: Spanned<String>,
    /// "listing" (category pages), "feed" (RSS/Atom/JSON Feed) or "sitemap".
    pub kind: Spanned<String>,
    /// Where the source starts: listing pages, feed or sitemap addresses.
    pub urls: Vec<Spanned<String>>,
    /// When to crawl: cron with 5 fields (minute first) or 6 (seconds first), in the
    /// source's time zone.
    pub schedule: Spanned<String>,
    /// Categories every item of this source belongs to.
    #[serde(default)]
    pub categories: Vec<Spanned<String>>,
    /// Time zone for dates printed without one; defaults to the site's, then bantin.toml's.
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    /// Hosts besides the source's own whose article links may be followed.
    #[serde(default)]
    pub allowed_domains: Vec<Spanned<String>>,
    #[serde(default)]
    pub language: Option<String>,
    /// Feed sources: fetch each entry's page for the full article.
    #[serde(default)]
    pub full_text: bool,
    /// Sitemap sources: ignore URLs older than this, e.g. "2d".
    #[serde(default)]
    pub max_age: Option<Spanned<String>>,
    /// Most article pages fetched in one run.
    #[serde(default = "default_max_articles")]
    pub max_articles: Spanned<i64>,
    #[serde(default)]
    pub links: LinksFile,
    #[serde(default)]
    pub extract: ExtractFile,
    /// `[source.refresh]`: overrides the site's `[refresh]` key by key.
    #[serde(default)]
    pub refresh: RefreshFile,
    /// Pages with known fields, checked by `bantin check --online`.
    #[serde(default)]
    pub test_urls: Vec<TestUrlFile>,
}

/// `[source.links]`: how a listing page's article links are found.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksFile {
    /// CSS selector of the article links (`a[href]` elements or elements holding them).
    pub selector: Option<Spanned<String>>,
    /// Regular expression an article URL must match.
    pub pattern: Option<Spanned<String>>,
    /// CSS selector of the "next page" link.
    pub next_page: Option<Spanned<String>>,
    /// Listing pages read per run, the first included.
    pub max_pages: Option<Spanned<i64>>,
}

/// `[refresh]` / `[source.refresh]`: a stored article is asked again (conditionally)
/// while it is young, because news sites edit stories for hours after they appear.
/// A key left out takes the site's value, then the default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshFile {
    /// How often a young article is asked again, e.g. "1h" (default "1h").
    pub every: Option<Spanned<String>>,
    /// How long an article stays young after it was published (first seen, if the
    /// page gives no date), e.g. "2d" (default "2d"); "0s" never re-checks.
    pub within: Option<Spanned<String>>,
}

/// `[extract]`: CSS selectors per field. A field without a selector, or whose selector
/// matches nothing, falls back to JSON-LD, meta tags and generic rules.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractFile {
    pub title: Option<Spanned<String>>,
    pub published: Option<Spanned<String>>,
    /// chrono `strftime` format of the published text, e.g. "%d/%m/%Y %H:%M".
    pub published_format: Option<Spanned<String>>,
    pub updated: Option<Spanned<String>>,
    pub updated_format: Option<Spanned<String>>,
    pub author: Option<Spanned<String>>,
    pub lead: Option<Spanned<String>>,
    pub body: Option<Spanned<String>>,
    pub image: Option<Spanned<String>>,
    pub tags: Option<Spanned<String>>,
    pub section: Option<Spanned<String>>,
    /// Elements removed before any field is read (related boxes, share bars, ...).
    #[serde(default)]
    pub remove: Vec<Spanned<String>>,
}

/// One `[[source.test_urls]]`: a page and the values it must give.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestUrlFile {
    pub url: Spanned<String>,
    pub title: Option<String>,
    /// RFC 3339, e.g. "2020-07-17T21:54:00+07:00".
    pub published: Option<String>,
    #[serde(default)]
    pub authors: Option<Vec<String>>,
    /// Text the lead must start with.
    pub lead_starts_with: Option<String>,
    /// Text the body must start with.
    pub body_starts_with: Option<String>,
}

fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}
fn default_true() -> bool {
    true
}
fn default_data_dir() -> Spanned<String> {
    spanned("data".into())
}
fn default_feeds_dir() -> Spanned<String> {
    spanned("feeds".into())
}
fn default_base_url() -> Spanned<String> {
    spanned("http://127.0.0.1:8080/".into())
}
fn default_listen() -> Spanned<String> {
    spanned("127.0.0.1:8080".into())
}
fn default_timezone() -> Spanned<String> {
    spanned("Asia/Ho_Chi_Minh".into())
}
fn default_items_per_feed() -> Spanned<i64> {
    spanned(50)
}
fn default_user_agent() -> Spanned<String> {
    spanned(concat!("bantin/", env!("CARGO_PKG_VERSION")).into())
}
fn default_title() -> Spanned<String> {
    spanned("bantin".into())
}
fn default_language() -> Spanned<String> {
    spanned("vi".into())
}
fn default_sources() -> Spanned<String> {
    spanned("sources/*.toml".into())
}
fn default_categories() -> Spanned<String> {
    spanned("categories.toml".into())
}
fn default_retention_days() -> Spanned<i64> {
    spanned(365)
}
fn default_raw_page_days() -> Spanned<i64> {
    spanned(30)
}
fn default_near_duplicate_distance() -> Spanned<i64> {
    spanned(3)
}
fn default_lease() -> Spanned<String> {
    spanned("30s".into())
}
fn default_shutdown_timeout() -> Spanned<String> {
    spanned("10s".into())
}
fn default_timeout() -> Spanned<String> {
    spanned("30s".into())
}
fn default_connect_timeout() -> Spanned<String> {
    spanned("10s".into())
}
fn default_max_body_bytes() -> Spanned<Size> {
    spanned(Size::Text("10 MiB".into()))
}
fn default_max_redirects() -> Spanned<i64> {
    spanned(5)
}
fn default_per_host_concurrency() -> Spanned<i64> {
    spanned(2)
}
fn default_per_host_delay() -> Spanned<String> {
    spanned("1s".into())
}
fn default_global_concurrency() -> Spanned<i64> {
    spanned(16)
}
fn default_robots_ttl() -> Spanned<String> {
    spanned("1h".into())
}
fn default_retry_after_scope() -> Spanned<String> {
    spanned("host".into())
}
fn default_max_retries() -> Spanned<i64> {
    spanned(2)
}
fn default_backoff_base() -> Spanned<String> {
    spanned("1s".into())
}
fn default_backoff_cap() -> Spanned<String> {
    spanned("1h".into())
}
fn default_header_read_timeout() -> Spanned<String> {
    spanned("10s".into())
}
fn default_idle_timeout() -> Spanned<String> {
    spanned("60s".into())
}
fn default_request_timeout() -> Spanned<String> {
    spanned("30s".into())
}
fn default_rule_fields() -> Spanned<Vec<String>> {
    spanned(vec!["title".into(), "lead".into(), "body".into()])
}
fn default_min_hits() -> Spanned<i64> {
    spanned(1)
}
fn default_max_articles() -> Spanned<i64> {
    spanned(200)
}
