//! Finding a section page's main list of article links: anchors are grouped by the
//! repeated structure they sit in, and the group with many links, title-length texts,
//! addresses of one shape and a place in the main content (not nav, aside, footer or a
//! "most read" box) wins. Then a selector, a URL pattern and the next-page link are
//! written for it, each checked with the listing code a crawl uses.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;
use scraper::{ElementRef, Html, Selector};
use url::Url;

use super::css;
use crate::config::LinkRules;
use crate::sources::listing_links;
use crate::text::normalize;

/// Fewer distinct article links than this is not a list.
const MIN_LIST_LINKS: usize = 3;
/// Link texts shorter than this on average are menu entries or page numbers, not titles.
const MIN_TITLE_CHARS: f64 = 15.0;
/// Title length past which a longer text says nothing more.
const FULL_TITLE_CHARS: f64 = 60.0;
/// Share of a group's addresses that must have one shape (segments, digits, extension).
const MIN_SHAPE_SHARE: f64 = 0.6;
/// How much less a group in nav, aside, footer or a "most read" box counts.
const BOILERPLATE_FACTOR: f64 = 0.1;
/// How much more a group inside main, article or a content box counts.
const MAIN_CONTENT_FACTOR: f64 = 1.5;

static ANCHOR: LazyLock<Selector> =
    LazyLock::new(|| Selector::parse("a[href]").expect("literal selector parses"));

/// Texts of "next page" links, lower case.
const NEXT_TEXTS: &[&str] = &[
    "›",
    "»",
    ">",
    ">>",
    "next",
    "next page",
    "older",
    "sau",
    "trang sau",
    "tiếp",
    "trang tiếp",
    "xem tiếp",
    "tiếp theo",
];

/// The main list of a listing page, as rules a crawl applies.
#[derive(Debug, Clone)]
pub struct ListGuess {
    /// CSS selector of the list's links.
    pub selector: String,
    /// Regular expression the list's article addresses match.
    pub pattern: String,
    /// CSS selector of the "next page" link, when the page has one.
    pub next_page: Option<String>,
    /// The article addresses the rules find on the page, in page order.
    pub articles: Vec<Url>,
    /// Same-site links outside the list (navigation, sidebar, footer), left out.
    pub left_out: usize,
}

/// Why a page has no list to suggest.
#[derive(Debug, Clone, PartialEq)]
pub struct NoList {
    /// Distinct links of the best group found, if any.
    pub best_links: usize,
    /// Mean length of that group's link texts.
    pub best_title_chars: usize,
}

impl NoList {
    /// The failure, told by the group that came closest.
    fn of(closest: Option<&Group>) -> NoList {
        NoList {
            best_links: closest.map_or(0, |g| g.urls.len()),
            best_title_chars: closest.map_or(0, |g| g.title_chars.round() as usize),
        }
    }
}

/// Anchors sharing one place in the page's structure.
struct Group<'a> {
    anchors: Vec<ElementRef<'a>>,
    urls: Vec<Url>,
    title_chars: f64,
    score: f64,
}

/// Finds the main list of article links on a listing page.
pub fn find(html: &str, page_url: &Url) -> Result<ListGuess, NoList> {
    let doc = crate::extract::nesting::parse_document(html);
    let groups = groups(&doc, page_url);
    let best = groups
        .iter()
        .filter(|g| g.urls.len() >= MIN_LIST_LINKS && g.title_chars >= MIN_TITLE_CHARS)
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .filter(|g| g.score > 0.0);
    let Some(best) = best else {
        return Err(NoList::of(groups.iter().max_by_key(|g| g.urls.len())));
    };
    let container = common_ancestor(&best.anchors);
    let in_container = |a: &ElementRef| a.ancestors().any(|n| n.id() == container.id());
    let inside: HashSet<Url> = same_site_links(&doc, page_url)
        .filter(|(a, _)| in_container(a))
        .map(|(_, u)| u)
        .collect();
    let left_out: HashSet<Url> = same_site_links(&doc, page_url)
        .filter(|(a, u)| !in_container(a) && !inside.contains(u))
        .map(|(_, u)| u)
        .collect();
    let pattern = url_pattern(&best.urls);
    let (selector, articles) = list_selector(html, page_url, &container, best, &pattern, &inside)
        .ok_or_else(|| NoList::of(Some(best)))?;
    Ok(ListGuess {
        selector,
        next_page: next_page(&doc, html, page_url),
        left_out: left_out.len(),
        articles,
        pattern,
    })
}

/// Same-site web links of the page (not the page itself), with their anchors.
fn same_site_links<'a>(
    doc: &'a Html,
    page_url: &Url,
) -> impl Iterator<Item = (ElementRef<'a>, Url)> + use<'a> {
    let page_url = page_url.clone();
    doc.select(&ANCHOR).filter_map(move |a| {
        let mut url = page_url.join(a.value().attr("href")?.trim()).ok()?;
        url.set_fragment(None);
        let web = matches!(url.scheme(), "http" | "https");
        (web && url.host_str() == page_url.host_str() && url != page_url).then_some((a, url))
    })
}

/// The page's links grouped by the chain of tags and first classes above them, scored.
fn groups<'a>(doc: &'a Html, page_url: &Url) -> Vec<Group<'a>> {
    let mut by_path: HashMap<String, Vec<(ElementRef<'a>, Url)>> = HashMap::new();
    let mut order = Vec::new();
    for (a, url) in same_site_links(doc, page_url) {
        let key = structure_path(&a);
        if !by_path.contains_key(&key) {
            order.push(key.clone());
        }
        by_path.entry(key).or_default().push((a, url));
    }
    order
        .into_iter()
        .filter_map(|key| by_path.remove(&key))
        .map(score)
        .collect()
}

fn structure_path(a: &ElementRef) -> String {
    let mut parts: Vec<String> = std::iter::once(*a)
        .chain(a.ancestors().filter_map(ElementRef::wrap))
        .map(|e| match css::classes(&e).first() {
            Some(class) => format!("{}.{class}", e.value().name()),
            None => e.value().name().to_owned(),
        })
        .collect();
    parts.reverse();
    parts.join(">")
}

fn score(links: Vec<(ElementRef<'_>, Url)>) -> Group<'_> {
    let mut urls: Vec<Url> = Vec::new();
    let mut longest: HashMap<Url, usize> = HashMap::new();
    for (a, url) in &links {
        let chars = normalize(&a.text().collect::<String>()).chars().count();
        let entry = longest.entry(url.clone()).or_default();
        *entry = (*entry).max(chars);
        if !urls.contains(url) {
            urls.push(url.clone());
        }
    }
    let title_chars = longest.values().sum::<usize>() as f64 / urls.len().max(1) as f64;
    let mut shapes: HashMap<(usize, bool, String), usize> = HashMap::new();
    for url in &urls {
        *shapes.entry(shape(url)).or_default() += 1;
    }
    let shape_share = shapes.values().copied().max().unwrap_or(0) as f64 / urls.len().max(1) as f64;
    let anchors: Vec<ElementRef> = links.into_iter().map(|(a, _)| a).collect();
    let first = anchors[0];
    let place = if css::in_boilerplate(&first) {
        BOILERPLATE_FACTOR
    } else if css::in_main_content(&first) {
        MAIN_CONTENT_FACTOR
    } else {
        1.0
    };
    let shaped = if shape_share >= MIN_SHAPE_SHARE {
        shape_share
    } else {
        0.0
    };
    let score =
        urls.len() as f64 * (title_chars.min(FULL_TITLE_CHARS) / FULL_TITLE_CHARS) * shaped * place;
    Group {
        anchors,
        urls,
        title_chars,
        score,
    }
}

/// An address's shape: path segments, whether the last holds a digit, its extension.
fn shape(url: &Url) -> (usize, bool, String) {
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let last = segments.last().copied().unwrap_or_default();
    let extension = last.rsplit_once('.').map(|(_, e)| e.to_owned());
    (
        segments.len(),
        last.contains(|c: char| c.is_ascii_digit()),
        extension.unwrap_or_default(),
    )
}

/// The deepest element holding every anchor of the group.
fn common_ancestor<'a>(anchors: &[ElementRef<'a>]) -> ElementRef<'a> {
    let chain = |a: &ElementRef<'a>| -> Vec<ElementRef<'a>> {
        a.ancestors().filter_map(ElementRef::wrap).collect()
    };
    let mut common = chain(&anchors[0]);
    for a in &anchors[1..] {
        let ids: HashSet<_> = chain(a).iter().map(|e| e.id()).collect();
        common.retain(|e| ids.contains(&e.id()));
    }
    *common.first().expect("every anchor is inside <html>")
}

/// The simplest selector that, with `pattern`, finds every link of the group and only
/// links also found inside its container, checked with the crawl's own link finding.
fn list_selector(
    html: &str,
    page_url: &Url,
    container: &ElementRef,
    group: &Group,
    pattern: &str,
    inside: &HashSet<Url>,
) -> Option<(String, Vec<Url>)> {
    let pattern = Regex::new(pattern).ok()?;
    let item = child_towards(container, &group.anchors[0]);
    let mut candidates = Vec::new();
    for item_form in css::own_forms(&item) {
        candidates.push(item_form.clone());
        for container_form in css::forms(container) {
            candidates.push(format!("{container_form} {item_form}"));
        }
    }
    for container_form in css::forms(container) {
        candidates.push(format!("{container_form} a"));
    }
    css::dedup(candidates).into_iter().find_map(|text| {
        let rules = LinkRules {
            selector: Some(css::compile(&text)?),
            pattern: Some(pattern.clone()),
            ..LinkRules::default()
        };
        let found: Vec<Url> = listing_links(html, page_url, &rules)
            .articles
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        let complete = group.urls.iter().all(|u| found.contains(u));
        let clean = found.iter().all(|u| inside.contains(u));
        (complete && clean).then_some((text, found))
    })
}

/// The child of `container` on the way down to `descendant`.
fn child_towards<'a>(container: &ElementRef<'a>, descendant: &ElementRef<'a>) -> ElementRef<'a> {
    std::iter::once(*descendant)
        .chain(descendant.ancestors().filter_map(ElementRef::wrap))
        .find(|e| e.parent().map(|p| p.id()) == Some(container.id()))
        .unwrap_or(*descendant)
}

/// A regular expression over the list's addresses: segments every address shares kept
/// as written, the others generalized (digits, a slug ending in an id, an extension).
pub fn url_pattern(urls: &[Url]) -> String {
    let paths: Vec<Vec<&str>> = urls
        .iter()
        .map(|u| u.path().trim_matches('/').split('/').collect())
        .collect();
    let depth = paths[0].len();
    let slash = if urls.iter().all(|u| u.path().ends_with('/')) {
        "/"
    } else {
        ""
    };
    let body = if paths.iter().all(|p| p.len() == depth) {
        (0..depth)
            .map(|i| segment_pattern(&paths.iter().map(|p| p[i]).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
            .join("/")
    } else {
        let shared: Vec<String> = (0..depth)
            .map_while(|i| {
                let first = paths[0][i];
                paths
                    .iter()
                    .all(|p| p.get(i) == Some(&first) && p.len() > i + 1)
                    .then(|| regex::escape(first))
            })
            .collect();
        shared
            .into_iter()
            .chain(["[^?#]+".to_owned()])
            .collect::<Vec<_>>()
            .join("/")
    };
    let query = if urls.iter().any(|u| u.query().is_some()) {
        r"(\?.*)?"
    } else {
        ""
    };
    format!(r"^https?://[^/]+/{body}{slash}{query}$")
}

fn segment_pattern(values: &[&str]) -> String {
    static ENDS_IN_ID: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[^/]*([-_.][a-z]{0,3})\d+(\.[A-Za-z0-9]+)?$").expect("literal regex compiles")
    });
    if values.iter().all(|v| *v == values[0]) {
        return regex::escape(values[0]);
    }
    if values
        .iter()
        .all(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
    {
        return r"\d+".into();
    }
    let extension = values[0].rsplit_once('.').map(|(_, e)| e);
    let extension = extension.filter(|e| values.iter().all(|v| v.ends_with(&format!(".{e}"))));
    let dot_ext = extension.map_or(String::new(), |e| format!(r"\.{}", regex::escape(e)));
    let id_prefix = ENDS_IN_ID.captures(values[0]).map(|c| c[1].to_owned());
    if let Some(prefix) = id_prefix.filter(|p| {
        values
            .iter()
            .all(|v| ENDS_IN_ID.captures(v).is_some_and(|c| c[1] == *p.as_str()))
    }) {
        return format!(r"[^/]+{}\d+{dot_ext}", regex::escape(&prefix));
    }
    match extension {
        Some(_) => format!(r"[^/]+{dot_ext}"),
        None => "[^/]+".into(),
    }
}

/// The simplest selector of the page's "next page" link that the crawl's link finding
/// follows to the same address.
fn next_page(doc: &Html, html: &str, page_url: &Url) -> Option<String> {
    let (anchor, target) = same_site_links(doc, page_url).find(|(a, _)| is_next_link(a))?;
    let mut candidates = Vec::new();
    if anchor
        .value()
        .attr("rel")
        .is_some_and(|r| r.split_whitespace().any(|w| w == "next"))
    {
        candidates.push("a[rel=\"next\"]".to_owned());
    }
    candidates.extend(css::forms(&anchor));
    if let Some(parent) = anchor.parent().and_then(ElementRef::wrap) {
        for form in css::forms(&parent) {
            candidates.push(format!("{form} a"));
            candidates.push(format!("{form} a:last-child"));
        }
    }
    css::dedup(candidates).into_iter().find(|text| {
        let Some(css) = css::compile(text) else {
            return false;
        };
        let rules = LinkRules {
            next_page: Some(css),
            ..LinkRules::default()
        };
        listing_links(html, page_url, &rules).next_page.as_ref() == Some(&target)
    })
}

fn is_next_link(a: &ElementRef) -> bool {
    let rel_next = a
        .value()
        .attr("rel")
        .is_some_and(|r| r.split_whitespace().any(|w| w == "next"));
    let named_next = a
        .value()
        .classes()
        .chain(a.value().id())
        .any(|c| c.to_ascii_lowercase().contains("next"));
    let text = normalize(&a.text().collect::<String>()).to_lowercase();
    // "Trang sau ›": the words without the arrow.
    let words = text.trim_matches(|c: char| c.is_whitespace() || c == '›' || c == '»');
    rel_next || named_next || NEXT_TEXTS.contains(&text.as_str()) || NEXT_TEXTS.contains(&words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(paths: &[&str]) -> Vec<Url> {
        paths
            .iter()
            .map(|p| Url::parse(&format!("http://news.test{p}")).unwrap())
            .collect()
    }

    #[test]
    fn url_pattern_keeps_shared_segments_and_generalizes_the_rest() {
        let rows: &[(&[&str], &str)] = &[
            (
                &["/thoi-su/tin-a-123.html", "/thoi-su/tin-bb-4567.html"],
                r"^https?://[^/]+/thoi\-su/[^/]+\-\d+\.html$",
            ),
            (
                &["/2020/07/17/tin-a/", "/2020/07/18/tin-b/"],
                r"^https?://[^/]+/2020/07/\d+/[^/]+/$",
            ),
            (
                &["/tin-a-i12345/", "/tin-b-i23456/"],
                r"^https?://[^/]+/[^/]+\-i\d+/$",
            ),
            (
                &["/news/a.html", "/news/world/b.html"],
                r"^https?://[^/]+/news/[^?#]+$",
            ),
        ];
        for (paths, want) in rows {
            let urls = urls(paths);
            let pattern = url_pattern(&urls);
            assert_eq!(&pattern, want, "{paths:?}");
            let re = Regex::new(&pattern).unwrap();
            assert!(urls.iter().all(|u| re.is_match(u.as_str())), "{pattern}");
        }
    }

    #[test]
    fn main_list_wins_over_a_longer_most_read_box_and_the_menu() {
        let item = |n: u32| {
            format!(
                r#"<li class="item"><a href="/tin/bai-so-{n}.html">Bài viết số {n} về một chuyện dài</a></li>"#
            )
        };
        let list: String = (1..=4).map(item).collect();
        let most: String = (10..=16).map(item).collect();
        let html = format!(
            r#"<nav><a href="/a/">Thời sự</a><a href="/b/">Kinh tế</a><a href="/c/">Thể thao</a></nav>
            <div class="content"><ul class="stories">{list}</ul></div>
            <div class="box-most-read"><ul class="stories">{most}</ul></div>
            <div class="pages"><a href="/tin/">1</a><a class="next-page" href="/tin/?p=2">Trang sau</a></div>"#
        );
        let page = Url::parse("http://news.test/tin/").unwrap();
        let guess = find(&html, &page).unwrap();
        assert_eq!(
            guess.articles,
            urls(&[
                "/tin/bai-so-1.html",
                "/tin/bai-so-2.html",
                "/tin/bai-so-3.html",
                "/tin/bai-so-4.html"
            ])
        );
        assert_eq!(guess.selector, "div.content ul.stories li.item");
        assert_eq!(guess.next_page.as_deref(), Some("a.next-page"));
    }

    #[test]
    fn list_in_a_box_named_widget_wins_over_the_aside() {
        // Regression: cand.com.vn's list sits in `div.box-widget-loaded`, taken for a sidebar.
        let item = |n: u32| {
            format!(
                r#"<article><h3><a href="/tin/bai-so-{n}-i{n}/">Bài viết số {n} về một chuyện dài</a></h3></article>"#
            )
        };
        let list: String = (1..=4).map(item).collect();
        let aside: String = (5..=12).map(|n| format!(r#"<li><a href="/tin/bai-so-{n}-i{n}/">Bài viết số {n} về một chuyện dài</a></li>"#)).collect();
        let html = format!(
            r#"<main><div class="box-widget-loaded">{list}</div></main><aside><ul>{aside}</ul></aside>"#
        );
        let page = Url::parse("http://news.test/tin/").unwrap();
        let guess = find(&html, &page).unwrap();
        assert_eq!(guess.articles.len(), 4, "{guess:?}");
    }

    #[test]
    fn a_page_of_menus_has_no_list() {
        let html = r#"<nav><a href="/a/">Thời sự</a><a href="/b/">Kinh tế</a><a href="/c/">Thể thao</a></nav><p>Trang không tồn tại.</p>"#;
        let page = Url::parse("http://news.test/404").unwrap();
        let err = find(html, &page).unwrap_err();
        assert_eq!(err.best_links, 3);
    }
}
