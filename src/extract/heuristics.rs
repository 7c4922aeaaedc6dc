//! Field guesses for pages without configured selectors: the title from `<h1>` agreeing
//! with `<title>`, and the visible lead, date line, byline, tags and breadcrumb. Which
//! block is the article is `main_text`'s job. Nothing here knows any site.

use std::sync::LazyLock;

use regex::Regex;
use scraper::Html;

use super::scan::{
    AttrExt, IdSet, MAX_BYLINE_CHARS, Scan, class_kinds, is_junk, is_junk_kinds, is_junk_tag,
    is_right_aligned_line, kind, outside_junk, text_of,
};
use crate::text::normalize;

/// A lead is at least a short sentence...
const MIN_LEAD_CHARS: u32 = 20;
/// ...and at most a few; a longer box is body text.
const MAX_LEAD_CHARS: u32 = 1500;
/// A lead is prose; a box this linked is a teaser list.
const MAX_LEAD_LINK_DENSITY: f32 = 0.3;
/// Characters of the description that the visible lead must contain: enough to tell
/// leads apart, few enough that a description cut short or re-punctuated still agrees.
const DESCRIPTION_PROBE_CHARS: usize = 30;
/// A date line is short; a longer date-classed box holds other text too.
const MAX_DATE_LINE_CHARS: usize = 80;
/// A tag is a few words; a longer link in a tag list is a headline.
const MAX_TAG_CHARS: usize = 60;

static UPDATED_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\W*(cập nhật|updated?|last updated|modified|aktualisiert)\b")
        .expect("literal regex compiles")
});

/// The page's `<h1>` that agrees with `<title>`, or `<title>` without its site suffix.
pub fn title(html: &Html, page_title: Option<&str>) -> Option<(String, ego_tree::NodeId)> {
    let h1s: Vec<(String, ego_tree::NodeId)> = html
        .tree
        .root()
        .descendants()
        .filter(|n| n.value().as_element().is_some_and(|e| e.name() == "h1"))
        .map(|n| (text_of(n, |_| false), n.id()))
        .filter(|(t, _)| !t.is_empty())
        .collect();
    if let Some(pt) = page_title {
        let lower = pt.to_lowercase();
        if let Some(h) = h1s
            .iter()
            .filter(|(t, _)| lower.contains(&t.to_lowercase()))
            .max_by_key(|(t, _)| t.len())
        {
            return Some(h.clone());
        }
    }
    h1s.into_iter().next()
}

/// `<title>` without a site name after " - ", " | ", " – " and the like.
pub fn strip_site_suffix(title: &str) -> String {
    for sep in [" | ", " - ", " – ", " — ", " :: ", " · ", " « ", " » "] {
        if let Some((head, _)) = title.rsplit_once(sep)
            && head.chars().count() >= 15
        {
            return head.trim().to_owned();
        }
    }
    title.trim().to_owned()
}

/// The visible standfirst: a block classed like a lead that agrees with the meta
/// description, or, without a description, the first such block.
pub fn lead(
    html: &Html,
    scan: &Scan,
    description: Option<&str>,
) -> Option<(String, ego_tree::NodeId)> {
    let probe = description.map(description_probe);
    let mut first = None;
    for node in html.tree.root().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        if matches!(el.name(), "meta" | "html" | "body" | "a" | "img") {
            continue;
        }
        let Some(s) = scan.stats.get(&node.id()) else {
            continue;
        };
        if s.text < MIN_LEAD_CHARS
            || s.text > MAX_LEAD_CHARS
            || s.link_density() > MAX_LEAD_LINK_DENSITY
        {
            continue;
        }
        if !scan.is(node.id(), el, kind::LEAD) {
            continue;
        }
        let text = text_of(node, |e| class_kinds(e, kind::SOFT_JUNK) != 0);
        if text.chars().count() < MIN_LEAD_CHARS as usize {
            continue;
        }
        match &probe {
            Some(p) if !p.is_empty() => {
                let lower = text.to_lowercase();
                if lower.contains(p.as_str()) {
                    return Some((text, node.id()));
                }
            }
            _ => {
                if first.is_none() {
                    first = Some((text, node.id()));
                }
            }
        }
    }
    first
}

/// The visible standfirst without a lead class: a paragraph between the page's start and
/// the body that agrees with the meta description (often cut short there). `body` is the
/// body's first block; a paragraph inside the body is its text, not a standfirst.
pub fn standfirst(
    html: &Html,
    scan: &Scan,
    description: &str,
    body: ego_tree::NodeId,
) -> Option<(String, ego_tree::NodeId)> {
    let probe = description_probe(description);
    if probe.is_empty() {
        return None;
    }
    let around_body: IdSet = html
        .tree
        .get(body)
        .into_iter()
        .flat_map(|b| b.ancestors())
        .map(|a| a.id())
        .collect();
    for node in outside_junk(html.tree.root(), scan) {
        if node.id() == body {
            return None;
        }
        let Some(el) = node.value().as_element() else {
            continue;
        };
        let s = scan.get(node.id());
        // A paragraph: a heading under the title is a subtitle, not the article's text.
        if el.name() == "p"
            && (MIN_LEAD_CHARS..=MAX_LEAD_CHARS).contains(&s.text)
            && s.link_density() <= MAX_LEAD_LINK_DENSITY
            && !around_body.contains(&node.id())
        {
            let text = text_of(node, |_| false);
            if text.to_lowercase().contains(&probe) {
                return Some((text, node.id()));
            }
        }
    }
    None
}

/// The start of a description that a visible lead must contain, lower-cased.
fn description_probe(description: &str) -> String {
    normalize(description)
        .trim_end_matches(['.', '…'])
        .chars()
        .take(DESCRIPTION_PROBE_CHARS)
        .collect::<String>()
        .to_lowercase()
}

/// A date from `time[datetime]`, or the text of a short date-classed element. With
/// `updated`, only lines labelled as an update count; without, those are skipped.
pub fn date_text(html: &Html, scan: &Scan, updated: bool) -> Option<String> {
    if !updated {
        for node in html.tree.root().descendants() {
            if let Some(el) = node.value().as_element()
                && el.name() == "time"
                && let Some(dt) = el.attribute("datetime")
            {
                return Some(dt.to_owned());
            }
        }
    }
    for node in html.tree.root().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        if matches!(el.name(), "html" | "body" | "script" | "style") {
            continue;
        }
        if !scan.is(node.id(), el, kind::DATE)
            || is_junk_tag(el)
            || is_junk_kinds(
                el,
                scan.kinds(node.id(), el, kind::ALWAYS_JUNK | kind::ARTICLE_BODY),
            )
        {
            continue;
        }
        let text = text_of(node, |_| false);
        if text.is_empty() || text.chars().count() > MAX_DATE_LINE_CHARS {
            continue;
        }
        if UPDATED_LABEL.is_match(&text) == updated {
            return Some(text);
        }
    }
    None
}

/// Elements after the page's first `<h1>` in which a date line is looked for by its shape.
const DATE_LINE_REACH: usize = 40;

/// A date line known by its shape where no class names it: among the first elements after
/// the title, a short line whose whole text `parses` as a date. With `updated`, only a
/// line labelled as an update counts; without, those are skipped.
pub fn date_line_by_shape(
    html: &Html,
    scan: &Scan,
    updated: bool,
    parses: impl Fn(&str) -> bool,
) -> Option<(String, ego_tree::NodeId)> {
    let mut nodes = html.tree.root().descendants();
    let title = nodes.find(|n| n.value().as_element().is_some_and(|e| e.name() == "h1"))?;
    nodes
        .filter(|n| n.value().is_element() && !n.ancestors().any(|a| a.id() == title.id()))
        .take(DATE_LINE_REACH)
        .filter(|n| {
            let s = scan.get(n.id());
            s.text > 0
                && (s.text as usize) <= MAX_DATE_LINE_CHARS
                && !std::iter::once(*n)
                    .chain(n.ancestors())
                    .any(|a| scan.junk.contains(&a.id()))
        })
        .map(|n| (text_of(n, |_| false), n.id()))
        .find(|(t, _)| UPDATED_LABEL.is_match(t) == updated && parses(t))
}

/// Bylines: author-classed elements, `rel=author` links, or a short right-aligned line at
/// the end of the article blocks.
pub fn authors(
    html: &Html,
    scan: &Scan,
    blocks: &[ego_tree::NodeId],
) -> Option<(String, ego_tree::NodeId)> {
    for node in html.tree.root().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        if matches!(el.name(), "html" | "body" | "meta" | "link") {
            continue;
        }
        let by_class = { scan.is(node.id(), el, kind::AUTHOR) };
        let by_attr = el.attribute("rel").is_some_and(|r| r == "author")
            || el.attribute("itemprop").is_some_and(|r| r == "author");
        if !(by_class || by_attr) {
            continue;
        }
        let text = text_of(node, |_| false);
        if !text.is_empty() && text.chars().count() <= MAX_BYLINE_CHARS {
            return Some((text, node.id()));
        }
    }
    let last = blocks
        .iter()
        .rev()
        .filter_map(|id| html.tree.get(*id))
        .flat_map(|b| b.descendants().collect::<Vec<_>>().into_iter().rev())
        .find(|n| {
            n.value()
                .as_element()
                .is_some_and(|e| !is_junk(e) && is_right_aligned_line(e, scan.get(n.id())))
        })?;
    Some((text_of(last, |_| false), last.id()))
}

/// Link texts of a tag list.
pub fn tags(html: &Html, scan: &Scan) -> Vec<String> {
    for node in html.tree.root().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        if matches!(el.name(), "html" | "body" | "meta" | "a") {
            continue;
        }
        if !scan.is(node.id(), el, kind::TAG) {
            continue;
        }
        let tags: Vec<String> = node
            .descendants()
            .filter(|n| n.value().as_element().is_some_and(|e| e.name() == "a"))
            .map(|n| text_of(n, |_| false))
            .filter(|t| !t.is_empty() && !t.ends_with(':') && t.chars().count() <= MAX_TAG_CHARS)
            .collect();
        if !tags.is_empty() {
            return tags;
        }
    }
    Vec::new()
}

/// The last link of the breadcrumb trail.
pub fn section(html: &Html, scan: &Scan) -> Option<String> {
    for node in html.tree.root().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        let crumb = scan.is(node.id(), el, kind::BREADCRUMB)
            || el
                .attribute("itemtype")
                .is_some_and(|t| t.ends_with("BreadcrumbList"));
        if !crumb {
            continue;
        }
        let last = node
            .descendants()
            .filter(|n| n.value().as_element().is_some_and(|e| e.name() == "a"))
            .map(|n| text_of(n, |_| false))
            .filter(|t| !t.is_empty())
            .last();
        if last.is_some() {
            return last;
        }
    }
    trail_by_shape(html)
}

/// Most links a breadcrumb trail holds; a menu holds more.
const MAX_CRUMBS: usize = 5;
/// Longest text of a breadcrumb trail, separators included.
const MAX_TRAIL_CHARS: usize = 150;
/// What trails put between their links ("Trang chủ » Thời sự", "Home › News").
const CRUMB_SEPARATORS: &[char] = &['»', '›', '>', '→', '/'];

/// A trail known by its shape when its class does not say "breadcrumb": a short box
/// of 2 to [`MAX_CRUMBS`] links, the first to the site's home page, separated by
/// arrows or slashes. Its last link is the section.
fn trail_by_shape(html: &Html) -> Option<String> {
    html.tree.root().descendants().find_map(|node| {
        let el = node.value().as_element()?;
        if !matches!(el.name(), "div" | "nav" | "p" | "span" | "ol" | "ul") {
            return None;
        }
        let links: Vec<_> = node
            .children()
            .flat_map(|c| std::iter::once(c).chain(c.children()))
            .filter(|n| n.value().as_element().is_some_and(|e| e.name() == "a"))
            .collect();
        let first_is_home = links.first().is_some_and(|a| {
            a.value()
                .as_element()
                .and_then(|e| e.attr("href"))
                .is_some_and(|h| {
                    h.trim() == "/" || h.trim().trim_end_matches('/').matches('/').count() == 2
                })
        });
        let separated = || {
            node.children().any(|c| {
                c.value()
                    .as_text()
                    .is_some_and(|t| t.trim().chars().any(|ch| CRUMB_SEPARATORS.contains(&ch)))
            })
        };
        // The whole text is read last: it is the costly check, and most boxes fail sooner.
        if !(2..=MAX_CRUMBS).contains(&links.len())
            || !first_is_home
            || !separated()
            || text_of(node, |_| false).chars().count() > MAX_TRAIL_CHARS
        {
            return None;
        }
        let last = text_of(*links.last()?, |_| false);
        Some(normalize(&last)).filter(|t| !t.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::tests::generic;

    /// The published date generic extraction reads from `body`, a page without metadata.
    fn published_of(body: &str) -> Option<String> {
        let page = format!("<html><body><div>{body}</div></body></html>");
        let article = generic(&page).expect("an article");
        article.published.map(|d| d.to_rfc3339())
    }

    const STORY: &str = "<p>Lực lượng chức năng đã kiểm tra, phát hiện và xử lý nhiều trường \
        hợp vi phạm trên các tuyến đường trong đêm qua, theo báo cáo của Công an thành phố.</p>";

    #[test]
    fn a_date_line_without_a_date_class_is_known_by_its_shape() {
        let page = format!(
            "<h1>Xử lý vi phạm trong đêm</h1><div class=\"x9\"><span>Thứ Ba, 05/03/2024 08:15</span>\
             </div>{STORY}{STORY}"
        );
        assert_eq!(
            published_of(&page).as_deref(),
            Some("2024-03-05T08:15:00+07:00")
        );
    }

    #[test]
    fn a_date_inside_the_text_is_not_a_date_line() {
        let page = format!(
            "<h1>Xử lý vi phạm trong đêm</h1>{STORY}<p>Từ ngày 05/03/2024 08:15, lực lượng \
             chức năng đã ra quân trên toàn địa bàn thành phố và các huyện ngoại thành.</p>{STORY}"
        );
        assert_eq!(published_of(&page), None);
    }

    #[test]
    fn a_preface_classed_box_that_agrees_with_the_description_is_the_lead() {
        let html = Html::parse_document(
            "<html><head><meta name=\"description\" content=\"A quiet season for the \
             river ferry comes to its end.\"></head><body><h1>Ferry season ends</h1>\
             <div class=\"t-preface\">A quiet season for the river ferry comes to its end, \
             after the new bridge opened.</div><p>Body text.</p></body></html>",
        );
        let scan = Scan::new(&html);
        let found = lead(
            &html,
            &scan,
            Some("A quiet season for the river ferry comes to its end."),
        );
        assert_eq!(
            found.map(|(text, _)| text).as_deref(),
            Some(
                "A quiet season for the river ferry comes to its end, after the new bridge opened."
            )
        );
    }

    /// Lead and body text generic extraction reads from a whole page.
    fn lead_and_body(page: &str) -> (Option<String>, String) {
        let article = generic(page).expect("an article");
        (article.lead, article.body_text)
    }

    #[test]
    fn an_unclassed_paragraph_over_the_body_that_the_description_begins_is_the_lead() {
        let standfirst = "A quiet season for the river ferry comes to its end, after the new \
            bridge opened downstream and the last crossing was made on Sunday.";
        let page = format!(
            "<html><head><meta name=\"description\" content=\"A quiet season for the river \
             ferry comes to its end, after the...\"></head><body><header><h1>Ferry season \
             ends</h1><div><p>{standfirst}</p></div></header><div class=\"x\">{STORY}{STORY}\
             {STORY}</div></body></html>"
        );
        let (lead, body) = lead_and_body(&page);
        assert_eq!(lead.as_deref(), Some(standfirst));
        assert!(!body.contains("river ferry"), "{body}");
    }

    #[test]
    fn a_date_line_known_by_its_shape_is_left_out_of_the_body() {
        let page = format!(
            "<html><head><meta property=\"article:published_time\" content=\"2024-03-05T08:15:00\
             +07:00\"></head><body><h1>Xử lý vi phạm trong đêm</h1><div class=\"x\"><p>Thứ Ba, \
             05/03/2024 08:15</p>{STORY}{STORY}</div></body></html>"
        );
        let (_, body) = lead_and_body(&page);
        assert!(body.starts_with("Lực lượng"), "{body}");
    }

    #[test]
    fn a_first_body_paragraph_the_description_repeats_stays_in_the_body() {
        let page = format!(
            "<html><head><meta name=\"description\" content=\"Lực lượng chức năng đã kiểm \
             tra, phát hiện\"></head><body><h1>Xử lý vi phạm trong đêm</h1><div \
             class=\"x\">{STORY}{STORY}{STORY}</div></body></html>"
        );
        let (_, body) = lead_and_body(&page);
        assert_eq!(body.matches("Lực lượng chức năng").count(), 3, "{body}");
    }

    fn section_of(body: &str) -> Option<String> {
        let html = Html::parse_document(&format!("<html><body>{body}</body></html>"));
        section(&html, &Scan::new(&html))
    }

    #[test]
    fn a_trail_without_a_breadcrumb_class_is_known_by_its_shape() {
        let page = r#"<div class="duong-dan"><a href="/">Trang chủ</a> » <a href="/an-ninh/">An ninh</a></div>
            <h1>Tiêu đề</h1>"#;
        assert_eq!(section_of(page).as_deref(), Some("An ninh"));
        let absolute = r#"<p><a href="https://bao.example/">Home</a> › <a href="/news/">News</a> › <a href="/news/world/">World</a></p>"#;
        assert_eq!(section_of(absolute).as_deref(), Some("World"));
    }

    #[test]
    fn a_menu_or_a_link_list_is_not_a_trail() {
        let menu = r#"<div><a href="/">Trang chủ</a> / <a href="/a/">A</a> / <a href="/b/">B</a> /
            <a href="/c/">C</a> / <a href="/d/">D</a> / <a href="/e/">E</a></div>"#;
        assert_eq!(section_of(menu), None, "too many links for a trail");
        let unseparated = r#"<div><a href="/">Trang chủ</a> <a href="/an-ninh/">An ninh</a></div>"#;
        assert_eq!(
            section_of(unseparated),
            None,
            "no separator between the links"
        );
        let not_from_home = r#"<div><a href="/a/">A</a> » <a href="/b/">B</a></div>"#;
        assert_eq!(
            section_of(not_from_home),
            None,
            "a trail starts at the home page"
        );
    }
}
