//! Listing pages: article links found by CSS selector and/or URL pattern, and the
//! "next page" link followed up to the source's page limit.

use std::collections::HashSet;
use std::sync::LazyLock;

use scraper::{ElementRef, Selector};
use url::Url;

use super::{Pass, absolute};
use crate::config::LinkRules;
use crate::extract::nesting;
use crate::text::normalize;

static ANCHOR: LazyLock<Selector> =
    LazyLock::new(|| Selector::parse("a[href]").expect("literal selector parses"));
static BASE: LazyLock<Selector> =
    LazyLock::new(|| Selector::parse("base[href]").expect("literal selector parses"));

/// What a listing page links to.
#[derive(Debug, Default, PartialEq)]
pub struct ListingLinks {
    /// Article URLs (absolute, no fragment) with the link text, in page order.
    pub articles: Vec<(Url, Option<String>)>,
    pub next_page: Option<Url>,
}

pub(super) async fn discover(pass: &mut Pass<'_>) {
    let rules = &pass.source.links;
    for start in &pass.source.urls {
        let mut visited = HashSet::new();
        let mut next = Some(start.clone());
        while let Some(url) = next.take() {
            if visited.len() >= rules.max_pages || !visited.insert(url.clone()) {
                break;
            }
            let Some(got) = pass.get(&url).await else {
                break;
            };
            let found = links(&got.page.html, &got.page.final_url, rules);
            for (article, title) in found.articles {
                let mut candidate = pass.candidate(article);
                candidate.title = title;
                pass.push(candidate);
            }
            next = found.next_page;
        }
    }
}

/// Finds the article links and the next-page link of a listing page. Links are made
/// absolute against `page_url` (or the page's `<base href>`).
pub fn links(html: &str, page_url: &Url, rules: &LinkRules) -> ListingLinks {
    let doc = nesting::parse_document(html);
    let base = doc
        .select(&BASE)
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|href| page_url.join(href).ok())
        .unwrap_or_else(|| page_url.clone());
    let anchors: Vec<ElementRef> = match &rules.selector {
        Some(css) => doc
            .select(&css.selector)
            .flat_map(|el| {
                if el.value().name() == "a" && el.value().attr("href").is_some() {
                    vec![el]
                } else {
                    el.select(&ANCHOR).collect()
                }
            })
            .collect(),
        None => doc.select(&ANCHOR).collect(),
    };
    let mut seen = HashSet::new();
    let articles = anchors
        .into_iter()
        .filter_map(|a| {
            let url = absolute(&base, a.value().attr("href")?)?;
            let matches = rules
                .pattern
                .as_ref()
                .is_none_or(|re| re.is_match(url.as_str()));
            (matches && seen.insert(url.clone())).then(|| (url, link_text(&a)))
        })
        .collect();
    let next_page = rules.next_page.as_ref().and_then(|css| {
        doc.select(&css.selector).find_map(|el| {
            let href = el
                .value()
                .attr("href")
                .or_else(|| el.select(&ANCHOR).next()?.value().attr("href"))?;
            absolute(&base, href).filter(|u| u != page_url)
        })
    });
    ListingLinks {
        articles,
        next_page,
    }
}

fn link_text(a: &ElementRef) -> Option<String> {
    let text = normalize(&a.text().collect::<String>());
    let text = if text.is_empty() {
        normalize(a.value().attr("title").unwrap_or_default())
    } else {
        text
    };
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Css;

    fn css(text: &str) -> Css {
        Css {
            text: text.into(),
            selector: Selector::parse(text).expect("test selector parses"),
        }
    }

    #[test]
    fn selector_and_pattern_pick_article_links_and_next_page() {
        let html = r##"<html><body>
            <div class="list"><article><a href="/tin-a-i12345/">  Tin   A </a></article>
            <article><a href="https://other.test/x-i99999/">B</a></article>
            <article><h3><a href="/tin-c-i23456/#top" title="Tin C"></a></h3></article>
            <article><a href="/tin-a-i12345/">again</a></article>
            <article><a href="/gioi-thieu/">About</a></article></div>
            <a href="/tin-d-i34567/">outside the list</a>
            <ul class="pages"><a class="next" href="page-2/">›</a></ul>
        </body></html>"##;
        let rules = LinkRules {
            selector: Some(css("div.list article")),
            pattern: Some(regex::Regex::new(r"-i\d{5,}/?$").unwrap()),
            next_page: Some(css("ul.pages a.next")),
            max_pages: 2,
        };
        let base = Url::parse("http://news.test/thoi-su/").unwrap();
        let found = links(html, &base, &rules);
        let urls: Vec<&str> = found.articles.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://news.test/tin-a-i12345/",
                "https://other.test/x-i99999/",
                "http://news.test/tin-c-i23456/",
            ]
        );
        assert_eq!(found.articles[0].1.as_deref(), Some("Tin A"));
        assert_eq!(found.articles[2].1.as_deref(), Some("Tin C"));
        assert_eq!(
            found.next_page.unwrap().as_str(),
            "http://news.test/thoi-su/page-2/"
        );
    }
}
