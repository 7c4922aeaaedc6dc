//! CSS selectors that name an element the way an operator would write them: by tag and
//! class, `itemprop`, id, or inside a classed ancestor. Also tells whether an element
//! sits in a page's navigation, sidebar or footer. Only writes selectors; whether one
//! gives the right value is for the caller to check.

use std::sync::LazyLock;

use regex::Regex;
use scraper::{ElementRef, Selector};

/// Class and id words of boxes that are not the page's own content, English and
/// Vietnamese without accents (đọc / xem nhiều: most read, nổi bật: featured, liên quan:
/// related, chia sẻ: share, tin khác: other news). Not "widget": templates name their
/// main list so too (`box-widget-loaded`), and a sidebar's widgets sit in an `aside`.
static BOILERPLATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(^|[-_ ])(nav|navbar|menu|sidebar|side|aside|footer|most|popular|trending|related|breadcrumbs?|share|social|top-?news|hot|doc-?nhieu|xem-?nhieu|noi-?bat|lien-?quan|chia-?se|tin-?khac)($|[-_ ])",
    )
    .expect("literal regex compiles")
});

/// Tags of boxes that are not the page's own content.
// `header` is left out: list items and articles have their own.
const BOILERPLATE_TAGS: &[&str] = &["nav", "aside", "footer"];

/// Tags too common to name an element alone.
const GENERIC_TAGS: &[&str] = &[
    "div", "span", "p", "a", "li", "ul", "ol", "section", "img", "b", "strong", "i", "em", "small",
    "font",
];

/// How many ancestors are looked at for a classed one to name an element inside it.
const MAX_CONTEXT_DEPTH: usize = 4;

/// A class or id that reads as a name, not one generated per page or build: CSS-safe
/// characters only, no long digit runs.
fn is_usable_name(name: &str) -> bool {
    static USABLE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[A-Za-z_][A-Za-z0-9_-]{0,39}$").expect("literal regex compiles")
    });
    static GENERATED: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\d{3,}").expect("literal regex compiles"));
    USABLE.is_match(name) && !GENERATED.is_match(name)
}

/// The element's usable classes, in the order written.
pub fn classes<'a>(el: &ElementRef<'a>) -> Vec<&'a str> {
    el.value().classes().filter(|c| is_usable_name(c)).collect()
}

/// Selectors for the element alone, most stable first: `tag.class`, `tag[itemprop]`,
/// `tag#id`, and the bare tag when it is rare enough to mean something (`h1`, `time`).
pub fn own_forms(el: &ElementRef) -> Vec<String> {
    let tag = el.value().name();
    let mut forms: Vec<String> = classes(el)
        .into_iter()
        .map(|c| format!("{tag}.{c}"))
        .collect();
    if let Some(prop) = el.value().attr("itemprop").filter(|p| is_usable_name(p)) {
        forms.push(format!("{tag}[itemprop=\"{prop}\"]"));
    }
    if let Some(id) = el.value().id().filter(|id| is_usable_name(id)) {
        forms.push(format!("{tag}#{id}"));
    }
    if !GENERIC_TAGS.contains(&tag) {
        forms.push(tag.to_owned());
    }
    forms
}

/// Selectors for the element: its own forms, then its tag inside each of its nearest
/// classed (or id'd) ancestors.
pub fn forms(el: &ElementRef) -> Vec<String> {
    let mut out = own_forms(el);
    let tag = el.value().name();
    let leaf = classes(el)
        .first()
        .map_or_else(|| tag.to_owned(), |c| format!("{tag}.{c}"));
    let ancestors = el
        .ancestors()
        .filter_map(ElementRef::wrap)
        .filter(|a| !matches!(a.value().name(), "html" | "body"))
        .take(MAX_CONTEXT_DEPTH);
    for ancestor in ancestors {
        out.extend(
            own_forms(&ancestor)
                .into_iter()
                .map(|c| format!("{c} {leaf}")),
        );
    }
    dedup(out)
}

/// Whether the element is inside a `nav`, `aside` or `footer`, or a box whose
/// class or id says navigation, sidebar, "most read", related links or footer.
pub fn in_boilerplate(el: &ElementRef) -> bool {
    std::iter::once(*el)
        .chain(el.ancestors().filter_map(ElementRef::wrap))
        .any(|e| {
            BOILERPLATE_TAGS.contains(&e.value().name())
                || e.value().classes().any(|c| BOILERPLATE.is_match(c))
                || e.value().id().is_some_and(|id| BOILERPLATE.is_match(id))
        })
}

/// Whether the element is inside `main`, an `article` or a box whose class or id says
/// main content or list.
pub fn in_main_content(el: &ElementRef) -> bool {
    static MAIN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(^|[-_])(main|content|list|listing|stream|timeline)($|[-_])")
            .expect("literal regex compiles")
    });
    el.ancestors().filter_map(ElementRef::wrap).any(|e| {
        matches!(e.value().name(), "main" | "article")
            || e.value().attr("role") == Some("main")
            || e.value().classes().any(|c| MAIN.is_match(c))
            || e.value().id().is_some_and(|id| MAIN.is_match(id))
    })
}

/// `text` compiled, when it is valid CSS.
pub fn compile(text: &str) -> Option<crate::config::Css> {
    Selector::parse(text)
        .ok()
        .map(|selector| crate::config::Css {
            text: text.to_owned(),
            selector,
        })
}

/// The strings in first-seen order, repeats left out.
pub fn dedup(items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use scraper::Html;

    fn first<'a>(doc: &'a Html, css: &str) -> ElementRef<'a> {
        doc.select(&Selector::parse(css).unwrap()).next().unwrap()
    }

    #[test]
    fn forms_name_class_itemprop_id_then_context() {
        let doc = Html::parse_document(
            r#"<div class="post-head"><h1 class="title x12345" itemprop="headline" id="t">T</h1><span>s</span></div>"#,
        );
        let h1 = first(&doc, "h1");
        assert_eq!(
            forms(&h1),
            [
                "h1.title",
                "h1[itemprop=\"headline\"]",
                "h1#t",
                "h1",
                "div.post-head h1.title"
            ]
        );
        let span = first(&doc, "span");
        assert_eq!(forms(&span), ["div.post-head span"]);
    }

    #[test]
    fn boilerplate_is_nav_aside_footer_or_a_box_named_so() {
        let doc = Html::parse_document(
            r#"<main><div class="box-most-read"><a id="m">x</a></div><div class="list"><a id="l">y</a></div></main><footer><a id="f">z</a></footer>"#,
        );
        assert!(in_boilerplate(&first(&doc, "#m")));
        assert!(in_boilerplate(&first(&doc, "#f")));
        assert!(!in_boilerplate(&first(&doc, "#l")));
        assert!(in_main_content(&first(&doc, "#l")));
    }
}
