//! A source's configured CSS selectors: the `remove` list (applied to the page before
//! anything else) and the per-field selectors. Only finds elements and their text; the
//! caller decides what a value means.

use scraper::{ElementRef, Html};

use super::scan::text_of;
use crate::config::Css;

/// Detaches every element matched by a `remove` selector.
pub fn remove(html: &mut Html, remove: &[Css]) {
    for css in remove {
        let ids: Vec<_> = html.select(&css.selector).map(|e| e.id()).collect();
        for id in ids {
            if let Some(mut node) = html.tree.get_mut(id) {
                node.detach();
            }
        }
    }
}

/// The first element a selector matches.
pub fn first<'a>(html: &'a Html, css: Option<&Css>) -> Option<ElementRef<'a>> {
    html.select(&css?.selector).next()
}

/// The normalized text of the first match that has any.
pub fn text(html: &Html, css: Option<&Css>) -> Option<String> {
    text_element(html, css).map(|(text, _)| text)
}

/// The first match that has any text, with that text normalized.
pub fn text_element<'a>(html: &'a Html, css: Option<&Css>) -> Option<(String, ElementRef<'a>)> {
    let css = css?;
    html.select(&css.selector)
        .map(|e| (text_of(*e, |_| false), e))
        .find(|(t, _)| !t.is_empty())
}

/// The normalized texts of every match, empty ones left out.
pub fn texts(html: &Html, css: Option<&Css>) -> Vec<String> {
    let Some(css) = css else {
        return Vec::new();
    };
    html.select(&css.selector)
        .map(|e| text_of(*e, |_| false))
        .filter(|t| !t.is_empty())
        .collect()
}

/// A machine-readable date of the first match (`datetime` or `content`), else its text.
pub fn date_text(html: &Html, css: Option<&Css>) -> Option<String> {
    let el = first(html, css)?;
    el.value()
        .attr("datetime")
        .or_else(|| el.value().attr("content"))
        .map(str::to_owned)
        .or_else(|| Some(text_of(*el, |_| false)))
        .filter(|t| !t.is_empty())
}
