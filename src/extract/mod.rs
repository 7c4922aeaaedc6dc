//! Extraction: one fetched page in, one [`Article`] out. Per field, the source's CSS
//! selector comes first, then JSON-LD, then OpenGraph / `article:*` / Dublin Core /
//! `<meta name>` tags, then generic heuristics; `Article::provenance` records which one
//! gave each field. Pure: no I/O, no async.

pub mod clean;
pub mod dates;
pub mod heuristics;
pub mod jsonld;
pub mod main_text;
pub mod meta;
pub mod nesting;
pub mod preview;
pub mod sanitize;
pub mod scan;
pub mod selectors;

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use scraper::Html;
use url::Url;

use crate::config::ArticleRules;
use crate::model::{Article, Field, Origin, Provenance};
use crate::text::normalize;
pub use dates::parse_date;
use jsonld::LdArticle;
use meta::PageMeta;
use scan::Scan;

/// Fewer characters of body text than this, on a page without JSON-LD article data, is
/// not an article (a section front, an error page, a login wall).
pub const MIN_BODY_CHARS: usize = 100;

/// Why a page gave no article.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("no article found at {url}")]
    NoArticle { url: Url },
}

const TITLE_KEYS: &[&str] = &["og:title", "twitter:title", "dc.title", "headline", "title"];
const PUBLISHED_KEYS: &[&str] = &[
    "article:published_time",
    "og:published_time",
    "datepublished",
    "article:published",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "date",
    "dc.date.issued",
    "dc.date",
    "dcterms.created",
    "sailthru.date",
    "parsely-pub-date",
    "its_publication",
];
const UPDATED_KEYS: &[&str] = &[
    "article:modified_time",
    "og:updated_time",
    "datemodified",
    "article_updatetime",
    "dcterms.modified",
    "last-modified",
];
const AUTHOR_KEYS: &[&str] = &[
    "article:author",
    "author",
    "dc.creator",
    "byl",
    "parsely-author",
    "sailthru.author",
    "its_author",
];
const LEAD_KEYS: &[&str] = &[
    "og:description",
    "description",
    "twitter:description",
    "dc.description",
];
const IMAGE_KEYS: &[&str] = &[
    "og:image:secure_url",
    "og:image",
    "og:image:url",
    "twitter:image",
    "twitter:image:src",
    "image",
    "thumbnailurl",
];
/// One tag per tag, exactly as written.
const EXACT_TAG_KEYS: &[&str] = &["article:tag"];
/// Tags joined with commas in one value.
const JOINED_TAG_KEYS: &[&str] = &["news_keywords", "keywords"];
const SECTION_KEYS: &[&str] = &["article:section", "section", "parsely-section"];
const LANGUAGE_KEYS: &[&str] = &["content-language", "og:locale", "language", "dc.language"];

/// What extraction is told about a page besides its HTML.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The address the page came from (after redirects); links resolve against it.
    pub url: &'a Url,
    /// The source's selectors; `ArticleRules::default()` for generic extraction.
    pub rules: &'a ArticleRules,
    /// The zone of dates the page prints without one.
    pub zone: Tz,
    /// When the page was fetched: dates the page prints relative to "now" count from here.
    pub fetched_at: DateTime<Utc>,
}

/// One parsed page and what is read from it once, shared by the field functions.
struct PageContext<'a> {
    doc: Html,
    meta: PageMeta,
    ld: Option<LdArticle>,
    scan: Scan,
    /// The address relative links resolve against: `<base href>`, else the page's.
    base: Url,
    input: &'a Input<'a>,
}

/// What the field functions find on the way: which step gave each field, and the
/// elements (title, lead, byline) the body must leave out.
#[derive(Default)]
struct Findings {
    provenance: Provenance,
    skip: scan::IdSet,
}

/// A field's value from the first step that gives one, and which step that was. Steps
/// are tried in the order written, and only until one gives a value.
struct Lookup<T>(Option<(T, Origin)>);

impl<T> Lookup<T> {
    fn new() -> Self {
        Lookup(None)
    }

    /// Tries `step` unless an earlier step gave a value.
    fn or(self, origin: Origin, step: impl FnOnce() -> Option<T>) -> Self {
        match self.0 {
            Some(_) => self,
            None => Lookup(step().map(|value| (value, origin))),
        }
    }

    /// The value found, kept only if `keep` says so; no later step is tried.
    fn filter(self, keep: impl FnOnce(&T) -> bool) -> Self {
        Lookup(self.0.filter(|(value, _)| keep(value)))
    }

    fn map<U>(self, f: impl FnOnce(T) -> U) -> Lookup<U> {
        Lookup(self.0.map(|(value, origin)| (f(value), origin)))
    }

    /// The value found, its origin recorded as the provenance of `field`.
    fn record(self, field: Field, provenance: &mut Provenance) -> Option<T> {
        let (value, origin) = self.0?;
        provenance.insert(field, origin);
        Some(value)
    }
}

/// Extracts the article of one page.
pub fn article(html: &str, input: &Input<'_>) -> Result<Article, ExtractError> {
    let doc = nesting::parse_document(html);
    PageContext::new(doc, input)
        .article()
        .or_else(|no_article| thread(html, input).ok_or(no_article)?)
}

/// A forum thread's article: its posts are the text, in boxes classed as comments, which
/// are read as text when the page has nothing else. `None` without such boxes.
fn thread(html: &str, input: &Input<'_>) -> Option<Result<Article, ExtractError>> {
    let unclassed = std::cell::Cell::new(false);
    let doc = nesting::parse_document_rewriting(html, &|tag| {
        if scan::unclass_comments(tag) {
            unclassed.set(true);
        }
    });
    unclassed
        .get()
        .then(|| PageContext::new(doc, input).article())
}

impl PageContext<'_> {
    /// The article of the page, or why there is none.
    fn article(&self) -> Result<Article, ExtractError> {
        let mut found = Findings::default();
        let h1 = heuristics::title(&self.doc, self.meta.title.as_deref());
        found.skip.extend(h1.as_ref().map(|(_, id)| *id));
        let title = self.title(h1.as_ref().map(|(t, _)| t.as_str()), &mut found);
        let published = self.date(Field::Published, &mut found);
        let updated = self.date(Field::Updated, &mut found);
        let (blocks, body_origin) = self.body_blocks();
        let lead = self.lead(blocks.first().copied(), &mut found);
        let authors = self.authors(&blocks, &mut found);
        let body = clean::body(&self.doc, &self.scan, &blocks, &found.skip, &self.base);
        // A short text is still an article when something else says so: article data,
        // the operator's body selector, or a publication date on the page.
        let vouched = self.ld.is_some() || body_origin == Origin::Selector || published.is_some();
        if body.text.is_empty() || (!vouched && body.text.chars().count() < MIN_BODY_CHARS) {
            return Err(ExtractError::NoArticle {
                url: self.input.url.clone(),
            });
        }
        found.provenance.insert(Field::BodyHtml, body_origin);
        found.provenance.insert(Field::BodyText, body_origin);
        Ok(Article {
            url: self.input.url.clone(),
            canonical_url: self.canonical_url(&mut found),
            title,
            published,
            updated,
            authors,
            lead,
            body_html: body.html,
            body_text: body.text,
            image: self.image(h1.map(|(_, id)| id), &mut found),
            tags: self.tags(&mut found),
            section: self.section(&mut found),
            language: self.language(&mut found),
            provenance: found.provenance,
        })
    }
}

impl<'a> PageContext<'a> {
    /// Drops from the parsed page what the source's `remove` list names, and reads its
    /// metadata and JSON-LD.
    fn new(mut doc: Html, input: &'a Input<'a>) -> Self {
        selectors::remove(&mut doc, &input.rules.remove);
        let meta = PageMeta::read(&doc);
        let ld = jsonld::read(&doc);
        let base = meta
            .base
            .as_deref()
            .and_then(|b| input.url.join(b).ok())
            .unwrap_or_else(|| input.url.clone());
        let scan = Scan::new(&doc);
        PageContext {
            doc,
            meta,
            ld,
            scan,
            base,
            input,
        }
    }

    fn rules(&self) -> &ArticleRules {
        self.input.rules
    }

    /// The JSON-LD article's value `get` picks, if the page has one.
    fn ld_value<T: ?Sized>(&self, get: impl FnOnce(&LdArticle) -> Option<&T>) -> Option<&T> {
        self.ld.as_ref().and_then(get)
    }

    /// `h1` is the heading the generic rules take for the title.
    fn title(&self, h1: Option<&str>, found: &mut Findings) -> String {
        Lookup::new()
            .or(Origin::Selector, || {
                selectors::text(&self.doc, self.rules().title.as_ref())
            })
            .or(Origin::JsonLd, || {
                self.ld_value(|l| l.headline.as_deref()).map(normalize)
            })
            .or(Origin::Meta, || {
                // The heading, when the shared title is the heading plus decoration.
                self.meta
                    .first(TITLE_KEYS)
                    .map(normalize)
                    .map(|t| match h1 {
                        Some(h) if t.contains(h) => h.to_owned(),
                        _ => t,
                    })
            })
            .or(Origin::Heuristic, || h1.map(str::to_owned))
            .or(Origin::Heuristic, || {
                self.meta
                    .title
                    .as_deref()
                    .map(heuristics::strip_site_suffix)
            })
            .filter(|t| !t.is_empty())
            .record(Field::Title, &mut found.provenance)
            .unwrap_or_default()
    }

    /// `field` is [`Field::Published`] or [`Field::Updated`].
    fn date(&self, field: Field, found: &mut Findings) -> Option<DateTime<FixedOffset>> {
        let rules = self.rules();
        let updated = field == Field::Updated;
        let (css, format, ld, keys) = if updated {
            let ld = self.ld_value(|l| l.modified.as_deref());
            (&rules.updated, &rules.updated_format, ld, UPDATED_KEYS)
        } else {
            let ld = self.ld_value(|l| l.published.as_deref());
            (
                &rules.published,
                &rules.published_format,
                ld,
                PUBLISHED_KEYS,
            )
        };
        let parse = |text: &str, format: Option<&str>| self.parse_date(text, format);
        // Looked for whichever step gives the date: the body leaves the line out either way.
        let parses = |t: &str| parse(t, None).is_some();
        let by_shape = heuristics::date_line_by_shape(&self.doc, &self.scan, updated, parses);
        found.skip.extend(by_shape.as_ref().map(|(_, id)| *id));
        Lookup::new()
            .or(Origin::Selector, || {
                selectors::date_text(&self.doc, css.as_ref())
                    .and_then(|t| parse(&t, format.as_deref()))
            })
            .or(Origin::JsonLd, || ld.and_then(|t| parse(t, None)))
            .or(Origin::Meta, || {
                self.meta.first(keys).and_then(|t| parse(t, None))
            })
            .or(Origin::Heuristic, || {
                heuristics::date_text(&self.doc, &self.scan, updated).and_then(|t| parse(&t, None))
            })
            .or(Origin::Heuristic, || {
                by_shape.and_then(|(t, _)| parse(&t, None))
            })
            // The same instant, shown in the source's zone, as readers of the page see it.
            .map(|d| d.with_timezone(&self.input.zone).fixed_offset())
            .record(field, &mut found.provenance)
    }

    /// A date as the page prints it, absolute or relative to the fetch.
    fn parse_date(&self, text: &str, format: Option<&str>) -> Option<DateTime<FixedOffset>> {
        let (zone, fetched_at) = (self.input.zone, self.input.fetched_at);
        parse_date(text, format, zone).or_else(|| dates::parse_relative(text, zone, fetched_at))
    }

    /// `body` is the body's first block, before which an unclassed standfirst stands.
    fn lead(&self, body: Option<ego_tree::NodeId>, found: &mut Findings) -> Option<String> {
        let ld = self.ld_value(|l| l.description.as_deref());
        let description = ld.or_else(|| self.meta.first(LEAD_KEYS));
        let (lead, element) = Lookup::new()
            .or(Origin::Selector, || {
                selectors::text_element(&self.doc, self.rules().lead.as_ref())
                    .map(|(t, el)| (t, Some(el.id())))
            })
            .or(Origin::Heuristic, || {
                // The visible standfirst is complete where descriptions are often cut short.
                heuristics::lead(&self.doc, &self.scan, description).map(|(t, id)| (t, Some(id)))
            })
            .or(Origin::Heuristic, || {
                heuristics::standfirst(&self.doc, &self.scan, description?, body?)
                    .map(|(t, id)| (t, Some(id)))
            })
            .or(Origin::JsonLd, || ld.map(|t| (normalize(t), None)))
            .or(Origin::Meta, || {
                self.meta.first(LEAD_KEYS).map(|t| (normalize(t), None))
            })
            .record(Field::Lead, &mut found.provenance)?;
        found.skip.extend(element);
        Some(lead)
    }

    /// The elements the body is made of, and whether the source's selector found them.
    fn body_blocks(&self) -> (Vec<ego_tree::NodeId>, Origin) {
        let configured: Vec<_> = self
            .rules()
            .body
            .as_ref()
            .map(|css| self.doc.select(&css.selector).map(|e| e.id()).collect())
            .unwrap_or_default();
        if configured.is_empty() {
            let blocks = main_text::main_blocks(&self.doc, &self.scan);
            (blocks, Origin::Heuristic)
        } else {
            (configured, Origin::Selector)
        }
    }

    /// `blocks` are the body's elements, near which a byline is looked for.
    fn authors(&self, blocks: &[ego_tree::NodeId], found: &mut Findings) -> Vec<String> {
        let byline = heuristics::authors(&self.doc, &self.scan, blocks);
        // The byline stays out of the body even when another step names the authors.
        found.skip.extend(byline.as_ref().map(|(_, id)| *id));
        let non_empty = |names: Vec<String>| (!names.is_empty()).then_some(names);
        Lookup::new()
            .or(Origin::Selector, || {
                non_empty(selectors::texts(&self.doc, self.rules().author.as_ref()))
            })
            .or(Origin::JsonLd, || {
                self.ld.as_ref().and_then(|l| non_empty(l.authors.clone()))
            })
            .or(Origin::Meta, || {
                let names = self.meta.all(AUTHOR_KEYS).iter();
                // A profile address is not a name.
                non_empty(names.filter(|a| Url::parse(a).is_err()).cloned().collect())
            })
            .or(Origin::Heuristic, || byline.map(|(text, _)| vec![text]))
            .map(|names| split_authors(&names))
            .filter(|names| !names.is_empty())
            .record(Field::Authors, &mut found.provenance)
            .unwrap_or_default()
    }

    /// `after` is the title's element: the generic image is the first one below it.
    fn image(&self, after: Option<ego_tree::NodeId>, found: &mut Findings) -> Option<Url> {
        let base = &self.base;
        Lookup::new()
            .or(Origin::Selector, || {
                selectors::first(&self.doc, self.rules().image.as_ref())
                    .and_then(|el| selected_image(el, base))
            })
            .or(Origin::JsonLd, || {
                self.ld_value(|l| l.image.as_deref())
                    .and_then(|i| clean::web_url(base, i))
            })
            .or(Origin::Meta, || {
                self.meta
                    .first(IMAGE_KEYS)
                    .and_then(|i| clean::web_url(base, i))
            })
            .or(Origin::Heuristic, || {
                first_image(&self.doc, &self.scan, after, base)
            })
            .record(Field::Image, &mut found.provenance)
    }

    /// Tags written one by one come before tags split from a joined string, in which a
    /// tag with a comma comes apart.
    fn tags(&self, found: &mut Findings) -> Vec<String> {
        let non_empty = |tags: Vec<String>| (!tags.is_empty()).then_some(tags);
        let ld_keywords = |split: bool| {
            let ld = self.ld.as_ref().filter(|l| l.keywords_split == split);
            ld.and_then(|l| non_empty(l.keywords.clone()))
        };
        let tags = Lookup::new()
            .or(Origin::Selector, || {
                non_empty(selectors::texts(&self.doc, self.rules().tags.as_ref()))
            })
            .or(Origin::JsonLd, || ld_keywords(false))
            .or(Origin::Meta, || {
                non_empty(self.meta.all(EXACT_TAG_KEYS).to_vec())
            })
            .or(Origin::JsonLd, || ld_keywords(true))
            .or(Origin::Meta, || {
                let joined = self.meta.all(JOINED_TAG_KEYS).iter();
                non_empty(
                    joined
                        .flat_map(|t| t.split(','))
                        .map(str::to_owned)
                        .collect(),
                )
            })
            .or(Origin::Heuristic, || {
                non_empty(heuristics::tags(&self.doc, &self.scan))
            })
            .record(Field::Tags, &mut found.provenance)
            .unwrap_or_default();
        dedup(tags.iter().map(|t| normalize(t)))
    }

    fn section(&self, found: &mut Findings) -> Option<String> {
        Lookup::new()
            .or(Origin::Selector, || {
                selectors::text(&self.doc, self.rules().section.as_ref())
            })
            .or(Origin::JsonLd, || {
                self.ld_value(|l| l.section.as_deref()).map(normalize)
            })
            .or(Origin::Meta, || {
                self.meta.first(SECTION_KEYS).map(normalize)
            })
            .or(Origin::Heuristic, || {
                heuristics::section(&self.doc, &self.scan)
            })
            .record(Field::Section, &mut found.provenance)
    }

    fn language(&self, found: &mut Findings) -> Option<String> {
        Lookup::new()
            .or(Origin::Heuristic, || {
                self.meta.lang.as_deref().filter(|l| !l.trim().is_empty())
            })
            .or(Origin::JsonLd, || self.ld_value(|l| l.language.as_deref()))
            .or(Origin::Meta, || self.meta.first(LANGUAGE_KEYS))
            .map(|l| l.trim().replace('_', "-"))
            .record(Field::Language, &mut found.provenance)
    }

    /// The page's own address for itself, if it is on the page's site.
    fn canonical_url(&self, found: &mut Findings) -> Option<Url> {
        let base = &self.base;
        let web_url = |raw: Option<&str>| raw.and_then(|c| clean::web_url(base, c));
        Lookup::new()
            .or(Origin::Heuristic, || {
                web_url(self.meta.canonical.as_deref())
            })
            .or(Origin::Meta, || web_url(self.meta.first(&["og:url"])))
            .or(Origin::JsonLd, || {
                web_url(self.ld_value(|l| l.url.as_deref()))
            })
            .filter(|u| on_own_site(u, self.input.url))
            .record(Field::CanonicalUrl, &mut found.provenance)
    }
}

/// The image a selector points at: an `<img>` (or the first one inside the element),
/// else the element's `content`, `href` or `src` (a `<meta>`, `<link>` or `<source>`).
fn selected_image(el: scraper::ElementRef<'_>, base: &Url) -> Option<Url> {
    let img = if el.value().name() == "img" {
        Some(el)
    } else {
        el.descendants()
            .filter_map(scraper::ElementRef::wrap)
            .find(|e| e.value().name() == "img")
    };
    img.and_then(|i| clean::image_src(i.value(), base))
        .or_else(|| {
            ["content", "href", "src"]
                .iter()
                .find_map(|a| el.value().attr(a))
                .and_then(|v| clean::web_url(base, v))
        })
}

/// Whether a page's declared canonical address is on the site the page came from: the
/// same host, or one a subdomain of the other (`www.`, `m.`, `amp.` variants). Anything
/// else would let a page make feeds link readers to a host of its choosing. A saved file
/// (no web address of its own) may name any web address.
fn on_own_site(declared: &Url, page: &Url) -> bool {
    if !matches!(page.scheme(), "http" | "https") {
        return true;
    }
    match (declared.host_str(), page.host_str()) {
        (Some(d), Some(p)) => {
            let within = |inner: &str, outer: &str| {
                inner
                    .strip_suffix(outer)
                    .is_some_and(|rest| rest.ends_with('.'))
            };
            d == p || within(d, p) || within(p, d)
        }
        _ => false,
    }
}

/// The first sizeable image after the title.
fn first_image(
    doc: &Html,
    scan: &Scan,
    after: Option<ego_tree::NodeId>,
    base: &Url,
) -> Option<Url> {
    let mut seen_title = after.is_none();
    for node in doc.tree.root().descendants() {
        if Some(node.id()) == after {
            seen_title = true;
        }
        let Some(el) = node.value().as_element() else {
            continue;
        };
        if !seen_title || el.name() != "img" || scan.junk.contains(&node.id()) {
            continue;
        }
        let small = ["width", "height"].iter().any(|a| {
            el.attr(a)
                .and_then(|v| v.trim_end_matches("px").parse::<u32>().ok())
                .is_some_and(|v| v < 100)
        });
        let decorative = scan::class_id(el).to_ascii_lowercase().contains("logo")
            || el
                .attr("src")
                .is_some_and(|s| s.contains("logo") || s.contains("icon"));
        if small || decorative {
            continue;
        }
        if let Some(u) = clean::image_src(el, base) {
            return Some(u);
        }
    }
    None
}

/// One name per author: bylines joined with ",", ";", " - ", " và ", " and ", "&" are
/// split; "By", "Theo", "Tác giả:" and trailing dashes are dropped.
pub fn split_authors(raw: &[String]) -> Vec<String> {
    let names = raw.iter().flat_map(|a| {
        let a = normalize(a);
        let parts: Vec<String> = a
            .split([',', ';', '&', '|'])
            .flat_map(|p| p.split(" - ").map(str::to_owned).collect::<Vec<_>>())
            .flat_map(|p| p.split(" – ").map(str::to_owned).collect::<Vec<_>>())
            .flat_map(|p| p.split(" và ").map(str::to_owned).collect::<Vec<_>>())
            .flat_map(|p| p.split(" and ").map(str::to_owned).collect::<Vec<_>>())
            .collect();
        parts
            .into_iter()
            .filter_map(|p| {
                let mut p = p
                    .trim()
                    .trim_matches(['-', '–', '—', ':', '.', ' '])
                    .trim()
                    .to_owned();
                for prefix in [
                    "By ",
                    "by ",
                    "BY ",
                    "Theo ",
                    "Tác giả:",
                    "Tác giả ",
                    "Bài và ảnh:",
                    "Bài, ảnh:",
                    "Bài:",
                    "Von ",
                ] {
                    if let Some(rest) = p.strip_prefix(prefix) {
                        p = rest.trim().to_owned();
                    }
                }
                (!p.is_empty() && p.chars().count() <= scan::MAX_BYLINE_CHARS).then_some(p)
            })
            .collect::<Vec<_>>()
    });
    dedup(names)
}

fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    items
        .filter(|t| !t.is_empty() && seen.insert(t.to_lowercase()))
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// What generic extraction gives for `page` (no selectors, dates in Vietnam's zone),
    /// or why it gives nothing.
    pub(in crate::extract) fn generic(page: &str) -> Result<Article, ExtractError> {
        let url = Url::parse("https://news.example/story").expect("valid");
        let input = Input {
            url: &url,
            rules: &ArticleRules::default(),
            zone: chrono_tz::Asia::Ho_Chi_Minh,
            fetched_at: Utc::now(),
        };
        article(page, &input)
    }

    fn body_of(page: &str) -> Result<String, ExtractError> {
        generic(page).map(|a| a.body_text)
    }

    const POST: &str = "Since the update my phone no longer reaches the app store over mobile \
        data, although every other app works and the setting for it is switched on.";
    const REPLY: &str = "Same here after the update, and switching mobile data off and on \
        again made no difference, so it looks like a fault in this version.";

    #[test]
    fn a_forum_thread_whose_posts_are_classed_as_comments_is_read() {
        let page = format!(
            "<html><body><h2>App store over mobile data</h2>\
             <div class=\"ForumComment\" id=\"CommentFirst\"><p>{POST}</p><p>{POST}</p></div>\
             <div class=\"ForumComment\"><p>{REPLY}</p></div>\
             <div class=\"ForumComment\"><p>{REPLY}</p></div>\
             <div class=\"ForumComment\"><p>{REPLY}</p></div></body></html>"
        );
        let body = body_of(&page).expect("the thread is read");
        assert!(body.contains("app store over mobile"), "{body}");
    }

    #[test]
    fn an_article_with_comments_keeps_them_out_of_its_body() {
        let page = format!(
            "<html><body><h1>App store over mobile data</h1><article><p>{POST}</p><p>{POST}</p>\
             </article><div class=\"comments\">{}</div></body></html>",
            format!("<div class=\"comment\"><p>{REPLY}</p></div>").repeat(4)
        );
        let body = body_of(&page).expect("an article");
        assert!(!body.contains("Same here"), "{body}");
    }
}
