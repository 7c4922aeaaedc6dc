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

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use scraper::Html;
use url::Url;

use crate::config::ArticleRules;
use crate::model::{Article, Origin};
use crate::text::normalize;
pub use dates::parse_date;
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
const TAG_KEYS: &[&str] = &["article:tag", "news_keywords", "keywords"];
const SECTION_KEYS: &[&str] = &["article:section", "section", "parsely-section"];
const LANGUAGE_KEYS: &[&str] = &["content-language", "og:locale", "language", "dc.language"];

/// Extracts the article of one page. `url` is the address the page came from; `tz` is the
/// zone of dates the page prints without one.
pub fn article(
    html: &str,
    url: &Url,
    rules: &ArticleRules,
    tz: Tz,
) -> Result<Article, ExtractError> {
    let mut doc = nesting::parse_document(html);
    selectors::remove(&mut doc, &rules.remove);
    let doc = doc;
    let meta = PageMeta::read(&doc);
    let ld = jsonld::read(&doc);
    let base = meta
        .base
        .as_deref()
        .and_then(|b| url.join(b).ok())
        .unwrap_or_else(|| url.clone());
    let scan = Scan::new(&doc);
    let mut provenance = BTreeMap::new();
    let mut skip = scan::IdSet::default();

    // Title.
    let h1 = heuristics::title(&doc, meta.title.as_deref());
    if let Some((_, id)) = &h1 {
        skip.insert(*id);
    }
    let title = if let Some(t) = selectors::text(&doc, rules.title.as_ref()) {
        pick(&mut provenance, "title", Origin::Selector);
        t
    } else if let Some(t) = ld
        .as_ref()
        .and_then(|l| l.headline.as_deref())
        .map(normalize)
    {
        pick(&mut provenance, "title", Origin::JsonLd);
        t
    } else if let Some(t) = meta.first(TITLE_KEYS).map(normalize) {
        pick(&mut provenance, "title", Origin::Meta);
        match &h1 {
            Some((h, _)) if t.contains(h.as_str()) => h.clone(),
            _ => t,
        }
    } else if let Some((t, _)) = &h1 {
        pick(&mut provenance, "title", Origin::Heuristic);
        t.clone()
    } else if let Some(t) = meta.title.as_deref().map(heuristics::strip_site_suffix) {
        pick(&mut provenance, "title", Origin::Heuristic);
        t
    } else {
        String::new()
    };

    // Dates.
    let published = date_field(
        (&doc, &scan),
        rules.published.as_ref(),
        rules.published_format.as_deref(),
        ld.as_ref().and_then(|l| l.published.as_deref()),
        meta.first(PUBLISHED_KEYS),
        false,
        tz,
    );
    if let Some((_, o)) = published {
        pick(&mut provenance, "published", o);
    }
    let updated = date_field(
        (&doc, &scan),
        rules.updated.as_ref(),
        rules.updated_format.as_deref(),
        ld.as_ref().and_then(|l| l.modified.as_deref()),
        meta.first(UPDATED_KEYS),
        true,
        tz,
    );
    if let Some((_, o)) = updated {
        pick(&mut provenance, "updated", o);
    }

    // Lead.
    let description = ld
        .as_ref()
        .and_then(|l| l.description.as_deref())
        .or_else(|| meta.first(LEAD_KEYS));
    let lead = if let Some((t, el)) = selectors::text_element(&doc, rules.lead.as_ref()) {
        pick(&mut provenance, "lead", Origin::Selector);
        skip.insert(el.id());
        Some(t)
    } else if let Some((t, id)) = heuristics::lead(&doc, &scan, description) {
        // The visible standfirst is complete where descriptions are often cut short.
        pick(&mut provenance, "lead", Origin::Heuristic);
        skip.insert(id);
        Some(t)
    } else if let Some(t) = ld.as_ref().and_then(|l| l.description.as_deref()) {
        pick(&mut provenance, "lead", Origin::JsonLd);
        Some(normalize(t))
    } else if let Some(t) = meta.first(LEAD_KEYS) {
        pick(&mut provenance, "lead", Origin::Meta);
        Some(normalize(t))
    } else {
        None
    };

    // Body blocks.
    let configured_body: Vec<_> = rules
        .body
        .as_ref()
        .map(|css| doc.select(&css.selector).map(|e| e.id()).collect())
        .unwrap_or_default();
    let (blocks, body_origin) = if configured_body.is_empty() {
        (main_text::main_blocks(&doc, &scan), Origin::Heuristic)
    } else {
        (configured_body, Origin::Selector)
    };

    // Authors.
    let mut authors = selectors::texts(&doc, rules.author.as_ref());
    if !authors.is_empty() {
        pick(&mut provenance, "authors", Origin::Selector);
    } else if let Some(l) = ld.as_ref().filter(|l| !l.authors.is_empty()) {
        authors = l.authors.clone();
        pick(&mut provenance, "authors", Origin::JsonLd);
    } else if !meta.all(AUTHOR_KEYS).is_empty() {
        authors = meta
            .all(AUTHOR_KEYS)
            .iter()
            .filter(|a| Url::parse(a).is_err())
            .cloned()
            .collect();
        pick(&mut provenance, "authors", Origin::Meta);
    }
    let byline = heuristics::authors(&doc, &scan, &blocks);
    if let Some((text, id)) = byline {
        skip.insert(id);
        if authors.is_empty() {
            authors = vec![text];
            pick(&mut provenance, "authors", Origin::Heuristic);
        }
    }
    let authors = split_authors(&authors);
    if authors.is_empty() {
        provenance.remove("authors");
    }

    // Body.
    let body = clean::body(&doc, &scan, &blocks, &skip, &base);
    // A short text is still an article when something else says so: article data,
    // the operator's body selector, or a publication date on the page.
    let vouched = ld.is_some() || body_origin == Origin::Selector || published.is_some();
    if body.text.is_empty() || (!vouched && body.text.chars().count() < MIN_BODY_CHARS) {
        return Err(ExtractError::NoArticle { url: url.clone() });
    }
    provenance.insert("body_html".into(), body_origin);
    provenance.insert("body_text".into(), body_origin);

    // Image.
    let image = if let Some(el) = selectors::first(&doc, rules.image.as_ref()) {
        let img = if el.value().name() == "img" {
            Some(el)
        } else {
            el.descendants()
                .filter_map(scraper::ElementRef::wrap)
                .find(|e| e.value().name() == "img")
        };
        img.and_then(|i| clean::image_src(i.value(), &base))
            .or_else(|| {
                ["content", "href", "src"]
                    .iter()
                    .find_map(|a| el.value().attr(a))
                    .and_then(|v| clean::web_url(&base, v))
            })
            .map(|u| (u, Origin::Selector))
    } else {
        None
    }
    .or_else(|| {
        ld.as_ref()
            .and_then(|l| l.image.as_deref())
            .and_then(|i| clean::web_url(&base, i))
            .map(|u| (u, Origin::JsonLd))
    })
    .or_else(|| {
        meta.first(IMAGE_KEYS)
            .and_then(|i| clean::web_url(&base, i))
            .map(|u| (u, Origin::Meta))
    })
    .or_else(|| {
        first_image(&doc, &scan, h1.as_ref().map(|h| h.1), &base).map(|u| (u, Origin::Heuristic))
    });
    let image = image.map(|(u, o)| {
        pick(&mut provenance, "image", o);
        u
    });

    // Tags.
    let mut tags = selectors::texts(&doc, rules.tags.as_ref());
    if !tags.is_empty() {
        pick(&mut provenance, "tags", Origin::Selector);
    } else if let Some(l) = ld.as_ref().filter(|l| !l.keywords.is_empty()) {
        tags = l.keywords.clone();
        pick(&mut provenance, "tags", Origin::JsonLd);
    } else if !meta.all(TAG_KEYS).is_empty() {
        tags = meta
            .all(TAG_KEYS)
            .iter()
            .flat_map(|t| t.split(','))
            .map(str::to_owned)
            .collect();
        pick(&mut provenance, "tags", Origin::Meta);
    } else {
        tags = heuristics::tags(&doc, &scan);
        if !tags.is_empty() {
            pick(&mut provenance, "tags", Origin::Heuristic);
        }
    }
    let tags = dedup(tags.iter().map(|t| normalize(t)));

    // Section.
    let section = if let Some(s) = selectors::text(&doc, rules.section.as_ref()) {
        pick(&mut provenance, "section", Origin::Selector);
        Some(s)
    } else if let Some(s) = ld.as_ref().and_then(|l| l.section.as_deref()) {
        pick(&mut provenance, "section", Origin::JsonLd);
        Some(normalize(s))
    } else if let Some(s) = meta.first(SECTION_KEYS) {
        pick(&mut provenance, "section", Origin::Meta);
        Some(normalize(s))
    } else if let Some(s) = heuristics::section(&doc, &scan) {
        pick(&mut provenance, "section", Origin::Heuristic);
        Some(s)
    } else {
        None
    };

    // Language.
    let language = if let Some(l) = meta.lang.as_deref().filter(|l| !l.trim().is_empty()) {
        pick(&mut provenance, "language", Origin::Heuristic);
        Some(l)
    } else if let Some(l) = ld.as_ref().and_then(|l| l.language.as_deref()) {
        pick(&mut provenance, "language", Origin::JsonLd);
        Some(l)
    } else if let Some(l) = meta.first(LANGUAGE_KEYS) {
        pick(&mut provenance, "language", Origin::Meta);
        Some(l)
    } else {
        None
    }
    .map(|l| l.trim().replace('_', "-"));

    // Canonical URL.
    let canonical_url = meta
        .canonical
        .as_deref()
        .and_then(|c| clean::web_url(&base, c))
        .map(|u| (u, Origin::Heuristic))
        .or_else(|| {
            meta.first(&["og:url"])
                .and_then(|c| clean::web_url(&base, c))
                .map(|u| (u, Origin::Meta))
        })
        .or_else(|| {
            ld.as_ref()
                .and_then(|l| l.url.as_deref())
                .and_then(|c| clean::web_url(&base, c))
                .map(|u| (u, Origin::JsonLd))
        })
        .filter(|(u, _)| on_own_site(u, url))
        .map(|(u, o)| {
            pick(&mut provenance, "canonical_url", o);
            u
        });

    if title.is_empty() {
        provenance.remove("title");
    }
    if lead.is_none() {
        provenance.remove("lead");
    }
    Ok(Article {
        url: url.clone(),
        canonical_url,
        title,
        published: published.map(|(d, _)| d),
        updated: updated.map(|(d, _)| d),
        authors,
        lead,
        body_html: body.html,
        body_text: body.text,
        image,
        tags,
        section,
        language,
        provenance,
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

fn pick(provenance: &mut BTreeMap<String, Origin>, field: &str, origin: Origin) {
    provenance.insert(field.to_owned(), origin);
}

/// `page` is the parsed page and its scan.
fn date_field(
    (doc, scan): (&Html, &Scan),
    css: Option<&crate::config::Css>,
    format: Option<&str>,
    ld: Option<&str>,
    meta: Option<&str>,
    updated: bool,
    tz: Tz,
) -> Option<(DateTime<FixedOffset>, Origin)> {
    selectors::date_text(doc, css)
        .and_then(|t| parse_date(&t, format, tz))
        .map(|d| (d, Origin::Selector))
        .or_else(|| {
            ld.and_then(|t| parse_date(t, None, tz))
                .map(|d| (d, Origin::JsonLd))
        })
        .or_else(|| {
            meta.and_then(|t| parse_date(t, None, tz))
                .map(|d| (d, Origin::Meta))
        })
        .or_else(|| {
            heuristics::date_text(doc, scan, updated)
                .and_then(|t| parse_date(&t, None, tz))
                .map(|d| (d, Origin::Heuristic))
        })
        // The same instant, shown in the source's zone, as readers of the page see it.
        .map(|(d, o)| (d.with_timezone(&tz).fixed_offset(), o))
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
