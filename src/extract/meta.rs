//! What a page says about itself in `<head>`: `<meta>` tags (OpenGraph, `article:*`,
//! Dublin Core, Twitter, plain `name=`), `<link rel=canonical>`, `<title>`, `<html lang>`
//! and `<base href>`. Not here: reading the values as dates or URLs.

use std::collections::HashMap;

use scraper::{Html, Node};

/// Head metadata of one page. Keys are lower-cased `property`, `name`, `itemprop` or
/// `http-equiv` values; values keep page order.
#[derive(Debug, Default)]
pub struct PageMeta {
    tags: HashMap<String, Vec<String>>,
    pub canonical: Option<String>,
    pub title: Option<String>,
    pub lang: Option<String>,
    pub base: Option<String>,
}

impl PageMeta {
    /// Reads every `<meta>`, `<link rel=canonical>`, `<base>`, the first `<title>` and
    /// the root's `lang`.
    pub fn read(html: &Html) -> PageMeta {
        let mut meta = PageMeta::default();
        for node in html.tree.root().descendants() {
            let Node::Element(el) = node.value() else {
                continue;
            };
            match el.name() {
                "html" => {
                    meta.lang = meta.lang.take().or_else(|| {
                        el.attr("lang")
                            .or_else(|| el.attr("xml:lang"))
                            .map(str::to_owned)
                    })
                }
                "meta" => {
                    let Some(content) = el.attr("content") else {
                        continue;
                    };
                    let content = content.trim();
                    if content.is_empty() {
                        continue;
                    }
                    for key in ["property", "name", "itemprop", "http-equiv"] {
                        if let Some(k) = el.attr(key) {
                            meta.tags
                                .entry(k.trim().to_ascii_lowercase())
                                .or_default()
                                .push(content.to_owned());
                        }
                    }
                }
                "link" => {
                    let rel = el.attr("rel").unwrap_or("");
                    if rel
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("canonical"))
                        && meta.canonical.is_none()
                    {
                        meta.canonical = el.attr("href").map(|h| h.trim().to_owned());
                    }
                }
                "base" if meta.base.is_none() => {
                    meta.base = el.attr("href").map(|h| h.trim().to_owned());
                }
                "title" if meta.title.is_none() => {
                    let text: String = node
                        .children()
                        .filter_map(|c| c.value().as_text().map(|t| t.to_string()))
                        .collect();
                    meta.title = Some(crate::text::normalize(&text));
                }
                _ => {}
            }
        }
        meta
    }

    /// The first non-empty value among `keys`, in the order given.
    pub fn first(&self, keys: &[&str]) -> Option<&str> {
        keys.iter()
            .filter_map(|k| self.tags.get(*k))
            .flat_map(|v| v.iter())
            .map(String::as_str)
            .next()
    }

    /// Every value of the first key among `keys` that has any.
    pub fn all(&self, keys: &[&str]) -> &[String] {
        keys.iter()
            .find_map(|k| self.tags.get(*k))
            .map_or(&[], Vec::as_slice)
    }
}
