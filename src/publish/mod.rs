//! Publishing: turns stored items into feed files. Rendering (`rss`, `atom`,
//! `json_feed`, `opml`) is pure — items in, text out, no I/O; [`publish_all`] reads the
//! store, renders every feed, stores the documents that changed (what every server
//! answers) and writes the feeds folder (`atomic_write`).
//! Telling a WebSub hub about changed feeds is `websub`'s job, called after publishing.
//! Serving the files over HTTP belongs to `serve`.

mod atom;
pub mod atomic_write;
mod json_feed;
mod opml;
mod rss;
pub mod websub;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use url::Url;

use crate::config::Config;
use crate::model::{ALL_CATEGORY, CategoryId, Item};
use crate::store::{DocumentVersion, PublishedDocument, Store, StoreError};

use atom::render_atom;
use json_feed::render_json_feed;
pub use opml::render_opml;
use rss::render_rss;

/// File name of the XSL stylesheet written next to the feeds when `stylesheet` is on.
pub const STYLESHEET_FILE: &str = "feed.xsl";
/// File name of the OPML list of every feed.
pub const OPML_FILE: &str = "feeds.opml";
/// The stylesheet that makes a feed opened in a browser readable.
pub const STYLESHEET_XSL: &str = include_str!("feed.xsl");
/// Longest `ttl` announced, so a rare schedule does not tell readers to stop polling.
const MAX_TTL_MINUTES: u32 = 24 * 60;

/// The formats every feed is published in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedFormat {
    Rss,
    Atom,
    Json,
}

impl FeedFormat {
    pub const ALL: [FeedFormat; 3] = [FeedFormat::Rss, FeedFormat::Atom, FeedFormat::Json];

    /// File extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            FeedFormat::Rss => "rss",
            FeedFormat::Atom => "atom",
            FeedFormat::Json => "json",
        }
    }

    pub fn from_extension(ext: &str) -> Option<FeedFormat> {
        FeedFormat::ALL.into_iter().find(|f| f.extension() == ext)
    }

    /// The media type, as sent in `Content-Type` and autodiscovery links.
    pub fn media_type(self) -> &'static str {
        match self {
            FeedFormat::Rss => "application/rss+xml",
            FeedFormat::Atom => "application/atom+xml",
            FeedFormat::Json => "application/feed+json",
        }
    }

    /// Human name, for pages.
    pub fn label(self) -> &'static str {
        match self {
            FeedFormat::Rss => "RSS",
            FeedFormat::Atom => "Atom",
            FeedFormat::Json => "JSON Feed",
        }
    }
}

/// What a feed says about itself, built from a config category (or from the settings
/// for the `all` feed).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedMeta {
    pub id: CategoryId,
    pub title: String,
    pub description: String,
    /// BCP 47 tag of the feed's language, e.g. `vi`.
    pub language: String,
    /// Public address of the server; feeds live under `<base_url>feeds/`.
    pub base_url: Url,
    /// How often sources are crawled, in minutes (RSS `ttl`, `Cache-Control`).
    pub ttl_minutes: Option<u32>,
    pub items_per_feed: usize,
    pub websub_hub: Option<Url>,
    /// Whether the feed links the XSL stylesheet.
    pub stylesheet: bool,
}

impl FeedMeta {
    /// `<id>.<ext>`, the file name under the feeds folder.
    pub fn file_name(&self, format: FeedFormat) -> String {
        format!("{}.{}", self.id, format.extension())
    }

    /// The public address of the feed in one format (its self link).
    pub fn url(&self, format: FeedFormat) -> Url {
        feeds_url(&self.base_url, &self.file_name(format))
    }

    /// The human page the feed belongs to.
    pub fn site_url(&self) -> &Url {
        &self.base_url
    }
}

/// `<base_url>feeds/<file>`.
pub fn feeds_url(base_url: &Url, file: &str) -> Url {
    let mut base = base_url.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join(&format!("feeds/{file}"))
        .expect("a feed file name joined to an http base URL is a valid URL")
}

/// Things every renderer needs beyond one feed's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderContext {
    /// `generator` of the feeds, e.g. `bantin 0.1.0`.
    pub generator: String,
    /// Category id -> title, for item categories.
    pub category_titles: BTreeMap<CategoryId, String>,
}

impl RenderContext {
    pub fn new(config: &Config) -> RenderContext {
        RenderContext {
            generator: generator(),
            category_titles: config
                .categories
                .iter()
                .map(|c| (c.id.clone(), c.title.clone()))
                .collect(),
        }
    }
}

/// `bantin <version>`.
pub fn generator() -> String {
    format!("bantin {}", env!("CARGO_PKG_VERSION"))
}

/// The `all` feed first, then one feed per configured category.
pub fn feeds_for(config: &Config) -> Vec<FeedMeta> {
    let settings = &config.settings;
    let ttl_minutes = ttl_minutes(config);
    let meta = |id: CategoryId, title: String, description: String| FeedMeta {
        id,
        title,
        description,
        language: settings.language.clone(),
        base_url: settings.base_url.clone(),
        ttl_minutes,
        items_per_feed: settings.items_per_feed,
        websub_hub: settings.websub_hub.clone(),
        stylesheet: settings.stylesheet,
    };
    let mut feeds = vec![meta(
        CategoryId::from(ALL_CATEGORY),
        settings.title.clone(),
        format!("{}: every category", settings.title),
    )];
    feeds.extend(config.categories.iter().map(|c| {
        meta(
            c.id.clone(),
            format!("{} — {}", c.title, settings.title),
            c.description.clone(),
        )
    }));
    feeds
}

/// The shortest gap between two runs of any source's schedule, in minutes. Measured from
/// a fixed instant so the value (and so the feed text) does not depend on when it is
/// rendered.
pub fn ttl_minutes(config: &Config) -> Option<u32> {
    let from = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("2024-01-01T00:00:00Z exists");
    config
        .sources
        .iter()
        .filter_map(|source| {
            let from = from.with_timezone(&source.timezone);
            let runs: Vec<_> = source.schedule.after(&from).take(200).collect();
            runs.windows(2).map(|w| (w[1] - w[0]).num_minutes()).min()
        })
        .min()
        .map(|m| m.clamp(1, i64::from(MAX_TTL_MINUTES)) as u32)
}

/// What [`publish_all`] changed. "Changed" is measured against the documents stored by
/// the last publish, whichever process made it, so a change is reported (and told to a
/// WebSub hub) once, by the worker that published it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishReport {
    /// Feeds with at least one document changed.
    pub changed: Vec<ChangedFeed>,
    /// Documents whose content was already current.
    pub unchanged_files: usize,
    /// Whether the OPML list changed.
    pub opml_changed: bool,
    /// Feed files of categories no longer configured, removed from the feeds folder.
    pub removed: Vec<PathBuf>,
    /// The publish generation now current in the store.
    pub generation: u64,
}

/// One feed whose documents changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangedFeed {
    pub id: CategoryId,
    /// Public addresses of the changed documents (the WebSub topics).
    pub urls: Vec<Url>,
    /// Their files in the feeds folder.
    pub files: Vec<PathBuf>,
}

impl PublishReport {
    /// Every changed feed address, for WebSub.
    pub fn changed_urls(&self) -> Vec<Url> {
        self.changed
            .iter()
            .flat_map(|c| c.urls.iter().cloned())
            .collect()
    }

    /// Counts a changed document of feed `id`, published at `url` and written to `path`.
    fn add_change(&mut self, id: CategoryId, url: Url, path: PathBuf) {
        if self.changed.last().is_none_or(|c| c.id != id) {
            self.changed.push(ChangedFeed {
                id,
                urls: Vec::new(),
                files: Vec::new(),
            });
        }
        let feed = self.changed.last_mut().expect("pushed just above");
        feed.urls.push(url);
        feed.files.push(path);
    }
}

/// Why publishing stopped.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot read the items of feed {feed}")]
    ReadItems {
        feed: CategoryId,
        #[source]
        source: StoreError,
    },
    #[error("cannot store the published documents")]
    Store(#[source] StoreError),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One rendered document and the feed it belongs to (none for the OPML list and the
/// stylesheet).
struct Rendered {
    feed: Option<(CategoryId, Url)>,
    doc: PublishedDocument,
}

/// Renders every feed from the store under the store's publish lock, so that two
/// processes never publish at once; writes the feeds folder, then stores the documents
/// that changed with a new publish generation, which every server follows.
pub fn publish_all(config: &Config, store: &dyn Store) -> Result<PublishReport, PublishError> {
    let dir = &config.settings.feeds_dir;
    std::fs::create_dir_all(dir).map_err(|source| PublishError::Write {
        path: dir.clone(),
        source,
    })?;
    match atomic_write::remove_stale_temp_files(dir) {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "removed temp files of an interrupted publish"),
        Err(err) => {
            tracing::warn!(error = %err, "cannot clear old temp files from the feeds folder")
        }
    }
    let lock = store.lock_publishing().map_err(PublishError::Store)?;
    let stored = store.published_versions().map_err(PublishError::Store)?;
    let feeds = feeds_for(config);
    let rendered = render_documents(config, store, &feeds, &stored)?;
    let removed: Vec<String> = stored
        .keys()
        .filter(|name| !rendered.iter().any(|r| &r.doc.name == *name))
        .cloned()
        .collect();
    let mut report = PublishReport::default();
    let mut changed_docs = Vec::new();
    for Rendered { feed, doc } in rendered {
        let path = dir.join(&doc.name);
        let modified = doc.last_modified.map(SystemTime::from);
        atomic_write::write_if_changed(&path, &doc.body, modified).map_err(|source| {
            PublishError::Write {
                path: path.clone(),
                source,
            }
        })?;
        if stored.get(&doc.name).is_some_and(|v| v.etag == doc.etag) {
            report.unchanged_files += 1;
            continue;
        }
        match feed {
            Some((id, url)) => report.add_change(id, url, path),
            None => report.opml_changed |= doc.name == OPML_FILE,
        }
        changed_docs.push(doc);
    }
    report.generation = store
        .save_published(&lock, &changed_docs, &removed)
        .map_err(PublishError::Store)?;
    drop(lock);
    for feed in &report.changed {
        tracing::info!(category = %feed.id, files = feed.files.len(), "feed published");
    }
    report.removed = remove_dropped_feeds(dir, &feeds)?;
    Ok(report)
}

/// Every document of a publish: the stylesheet (when on), each feed in each format,
/// the OPML list. A feed's time is its newest item's; a document without items of its
/// own keeps the time it last changed at.
fn render_documents(
    config: &Config,
    store: &dyn Store,
    feeds: &[FeedMeta],
    stored: &BTreeMap<String, DocumentVersion>,
) -> Result<Vec<Rendered>, PublishError> {
    let now = Utc::now();
    let fixed = |name: &str, body: String| {
        let etag = strong_etag(body.as_bytes());
        let last_modified = match stored.get(name) {
            Some(v) if v.etag == etag => v.last_modified,
            _ => Some(now),
        };
        Rendered {
            feed: None,
            doc: PublishedDocument {
                name: name.to_owned(),
                etag,
                body: body.into_bytes(),
                last_modified,
            },
        }
    };
    let ctx = RenderContext::new(config);
    let mut out = Vec::new();
    if config.settings.stylesheet {
        out.push(fixed(STYLESHEET_FILE, STYLESHEET_XSL.to_owned()));
    }
    for meta in feeds {
        let items = store
            .latest_items(&meta.id, meta.items_per_feed)
            .map_err(|source| PublishError::ReadItems {
                feed: meta.id.clone(),
                source,
            })?;
        let entries = entries(&items, meta, &ctx);
        for format in FeedFormat::ALL {
            let body = render_entries(format, meta, &items, &entries, &ctx).into_bytes();
            out.push(Rendered {
                feed: Some((meta.id.clone(), meta.url(format))),
                doc: PublishedDocument {
                    name: meta.file_name(format),
                    etag: strong_etag(&body),
                    body,
                    last_modified: newest_change(&items),
                },
            });
        }
    }
    out.push(fixed(OPML_FILE, render_opml(&config.settings.title, feeds)));
    Ok(out)
}

/// `"<length>-<FNV-1a 64>"` of a document: equal bodies, equal tags, in every process
/// and across restarts.
pub fn strong_etag(body: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in body {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{:x}-{hash:016x}\"", body.len())
}

/// Removes the feed files (`<category>.rss|atom|json`) of categories that are no longer
/// among `feeds`, so that a removed category stops being served.
fn remove_dropped_feeds(dir: &Path, feeds: &[FeedMeta]) -> Result<Vec<PathBuf>, PublishError> {
    let io = |source| PublishError::Write {
        path: dir.to_owned(),
        source,
    };
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|e| e.to_str()),
        ) else {
            continue;
        };
        let is_feed = FeedFormat::from_extension(ext).is_some()
            && !stem.is_empty()
            && stem
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if is_feed && !feeds.iter().any(|f| f.id.as_str() == stem) {
            std::fs::remove_file(&path).map_err(|source| PublishError::Write {
                path: path.clone(),
                source,
            })?;
            tracing::info!(category = stem, file = %path.display(), "feed of a removed category removed");
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Renders one feed in one format.
pub fn render(format: FeedFormat, meta: &FeedMeta, items: &[Item], ctx: &RenderContext) -> String {
    render_entries(format, meta, items, &entries(items, meta, ctx), ctx)
}

fn render_entries(
    format: FeedFormat,
    meta: &FeedMeta,
    items: &[Item],
    entries: &[Entry],
    ctx: &RenderContext,
) -> String {
    match format {
        FeedFormat::Rss => render_rss(meta, items, entries, ctx),
        FeedFormat::Atom => render_atom(meta, items, entries, ctx),
        FeedFormat::Json => render_json_feed(meta, entries),
    }
}

/// When the newest stored change among `items` happened: the feed's last-build /
/// `updated` time and its HTTP `Last-Modified`. Not the render time, so re-rendering the
/// same items gives the same text.
pub fn newest_change(items: &[Item]) -> Option<DateTime<Utc>> {
    items.iter().map(|i| i.updated_at.max(i.first_seen)).max()
}

/// The feed-level updated time: the newest change, or the Unix epoch for an empty feed
/// (a fixed value, so an empty feed is not rewritten on every run).
fn feed_updated(items: &[Item]) -> DateTime<FixedOffset> {
    newest_change(items)
        .unwrap_or(DateTime::UNIX_EPOCH)
        .fixed_offset()
}

/// An item as the renderers see it: every text cleaned of characters XML cannot carry,
/// times with their real offset. The body is the stored one: it was sanitized, once,
/// before it was stored, so rendering (on every publish and filtered request) is only
/// writing it out.
struct Entry {
    /// Stable `tag:` URI; never changes when the article is updated.
    id: String,
    link: String,
    title: String,
    published: DateTime<FixedOffset>,
    updated: DateTime<FixedOffset>,
    authors: Vec<String>,
    /// The lead, plain text.
    summary: Option<String>,
    content_html: String,
    content_text: String,
    image: Option<Image>,
    /// (term, label) of bantin categories.
    categories: Vec<(String, String)>,
    tags: Vec<String>,
    language: Option<String>,
    /// The other addresses the same story was seen at (another source, another URL).
    also_at: Vec<Url>,
}

struct Image {
    url: String,
    media_type: &'static str,
}

impl Entry {
    fn from_item(item: &Item, meta: &FeedMeta, ctx: &RenderContext) -> Entry {
        let article = &item.article;
        let published = item.date();
        let offset = *published.offset();
        let seen_update =
            (item.updated_at > item.first_seen).then(|| item.updated_at.with_timezone(&offset));
        // The page's own "updated" line wins; else an update bantin saw.
        let updated = article
            .updated
            .or(seen_update)
            .unwrap_or(published)
            .max(published);
        let summary = article
            .lead
            .as_deref()
            .map(xml_clean)
            .filter(|s| !s.trim().is_empty());
        Entry {
            id: tag_uri(meta, item),
            link: article
                .canonical_url
                .as_ref()
                .unwrap_or(&article.url)
                .to_string(),
            title: xml_clean(&article.title),
            published,
            updated,
            authors: article
                .authors
                .iter()
                .map(|a| xml_clean(a))
                .filter(|a| !a.trim().is_empty())
                .collect(),
            summary,
            content_html: xml_clean(&article.body_html),
            content_text: xml_clean(&article.body_text),
            image: article.image.as_ref().map(|url| Image {
                url: url.to_string(),
                media_type: image_media_type(url),
            }),
            categories: item
                .categories
                .iter()
                .map(|c| {
                    let label = ctx
                        .category_titles
                        .get(c)
                        .cloned()
                        .unwrap_or_else(|| c.to_string());
                    (c.to_string(), xml_clean(&label))
                })
                .collect(),
            tags: article.tags.iter().map(|t| xml_clean(t)).collect(),
            language: article.language.as_deref().map(xml_clean),
            also_at: item.links.clone(),
        }
    }

    /// The body closed by an "Also at" list of the story's other addresses, for formats
    /// with no link relation to carry them (RSS, JSON Feed): merging duplicates must not
    /// hide a source from a reader.
    fn content_html_with_also_at(&self) -> String {
        let mut html = self.content_html.clone();
        html.push_str(&also_at_html(&self.also_at));
        html
    }

    /// The text body closed by the same list, one address a line.
    fn content_text_with_also_at(&self) -> String {
        let mut text = self.content_text.clone();
        if !self.also_at.is_empty() {
            text.push_str("\n\nAlso at:");
            for url in &self.also_at {
                let _ = write!(text, "\n- {url}");
            }
        }
        text
    }
}

/// Whether an address may become a link on a page or in a feed's HTML: `http` and
/// `https` only, never `javascript:` or `data:`.
pub fn is_linkable(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
}

/// "Also at" and a list of the other addresses a merged story was seen at (empty when
/// there are none), as feeds close an item's content and the pages for people show
/// it.
pub fn also_at_html(links: &[Url]) -> String {
    let links: Vec<&Url> = links.iter().filter(|u| is_linkable(u)).collect();
    if links.is_empty() {
        return String::new();
    }
    let mut html = String::from("<div class=\"also-at\"><p>Also at:</p><ul>");
    for url in links {
        let _ = write!(
            html,
            "<li><a href=\"{}\">{}</a></li>",
            html_escape::encode_double_quoted_attribute(url.as_str()),
            html_escape::encode_text(url.as_str())
        );
    }
    html.push_str("</ul></div>");
    html
}

fn entries(items: &[Item], meta: &FeedMeta, ctx: &RenderContext) -> Vec<Entry> {
    items
        .iter()
        .map(|item| Entry::from_item(item, meta, ctx))
        .collect()
}

/// `tag:<host>,<first-seen date>:<item id>` (RFC 4151): minted by this publisher, fixed
/// at first sight, so updates of the article keep it.
fn tag_uri(meta: &FeedMeta, item: &Item) -> String {
    let host = meta.base_url.host_str().unwrap_or("localhost");
    let id: String = item
        .id
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._~:/".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "tag:{host},{}:{id}",
        item.first_seen.date_naive().format("%Y-%m-%d")
    )
}

/// The image's media type guessed from its file extension (JPEG when it says nothing).
fn image_media_type(url: &Url) -> &'static str {
    let path = url.path().to_ascii_lowercase();
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "svg" => "image/svg+xml",
        _ => "image/jpeg",
    }
}

/// Drops every character XML 1.0 forbids (C0 controls other than tab, newline and
/// carriage return; U+FFFE, U+FFFF) and the C1 controls, which XML allows but validators
/// reject.
pub fn xml_clean(text: &str) -> String {
    text.chars().filter(|&c| xml_allowed(c)).collect()
}

fn xml_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r')
        || (c >= ' ' && !('\u{7F}'..='\u{9F}').contains(&c) && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Puts `<?xml-stylesheet?>` right after the XML declaration.
fn with_stylesheet(xml: String, meta: &FeedMeta) -> String {
    if !meta.stylesheet {
        return xml;
    }
    let pi = format!("<?xml-stylesheet type=\"text/xsl\" href=\"{STYLESHEET_FILE}\"?>");
    match xml.find("?>") {
        Some(end) if xml.starts_with("<?xml") => {
            let mut out = String::with_capacity(xml.len() + pi.len() + 1);
            out.push_str(&xml[..end + 2]);
            out.push('\n');
            out.push_str(&pi);
            out.push_str(&xml[end + 2..]);
            out
        }
        _ => format!("{pi}\n{xml}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_clean_drops_forbidden_characters_only() {
        let dirty = "Công\u{0}an\u{8}\u{1F} nhân\tdân\n\u{FFFE}\u{85}🚓";
        assert_eq!(xml_clean(dirty), "Côngan nhân\tdân\n🚓");
    }

    #[test]
    fn feeds_url_keeps_a_base_path() {
        let base = Url::parse("https://example.org/news").unwrap();
        assert_eq!(
            feeds_url(&base, "all.rss").as_str(),
            "https://example.org/news/feeds/all.rss"
        );
    }

    #[test]
    fn stylesheet_goes_after_the_declaration() {
        let meta = FeedMeta {
            id: CategoryId::from("all"),
            title: String::new(),
            description: String::new(),
            language: "vi".into(),
            base_url: Url::parse("http://127.0.0.1/").unwrap(),
            ttl_minutes: None,
            items_per_feed: 1,
            websub_hub: None,
            stylesheet: true,
        };
        let out = with_stylesheet("<?xml version=\"1.0\"?><rss/>".into(), &meta);
        assert_eq!(
            out,
            "<?xml version=\"1.0\"?>\n<?xml-stylesheet type=\"text/xsl\" href=\"feed.xsl\"?><rss/>"
        );
    }
}
