//! Feeds: RSS 0.9x/1.0/2.0, Atom 1.0 and JSON Feed, parsed with `feed-rs`. Each entry
//! becomes a candidate carrying a complete [`Article`] (origin `feed`). The entry's
//! content is sanitized with the one article policy (`extract::sanitize`), which also
//! makes its links absolute; its dates pass the same plausibility check as page dates.
//! With `full_text = true` the article is only a hint and the pipeline fetches the
//! entry's page.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use feed_rs::model::{Entry, Feed, Text};
use scraper::Selector;
use url::Url;

use super::{Pass, absolute};
use crate::config::Source;
use crate::extract::dates::plausible;
use crate::extract::{nesting, sanitize};
use crate::model::{Article, Candidate, Field, Origin};
use crate::text::normalize;

static PARAGRAPH: LazyLock<Selector> = LazyLock::new(|| {
    Selector::parse("p, li, h1, h2, h3, h4, h5, h6, blockquote, figcaption, pre")
        .expect("literal selector parses")
});

pub(super) async fn discover(pass: &mut Pass<'_>) {
    for url in &pass.source.urls {
        let Some(got) = pass.get(url).await else {
            continue;
        };
        match entries(&got.body, &got.page.final_url, pass.source) {
            Ok(candidates) => {
                for candidate in candidates {
                    if pass.discovery.candidates.len() >= pass.source.max_articles {
                        break;
                    }
                    pass.push(candidate);
                }
            }
            Err(reason) => pass.unreadable(url, "feed", reason),
        }
    }
}

/// Parses a feed document into candidates with their articles, in feed order.
/// Entries without a usable link are left out.
pub fn entries(body: &[u8], feed_url: &Url, source: &Source) -> Result<Vec<Candidate>, String> {
    let feed = feed_rs::parser::Builder::new()
        .base_uri(Some(feed_url.as_str()))
        .build()
        .parse(body)
        .map_err(|e| e.to_string())?;
    Ok(feed
        .entries
        .iter()
        .filter_map(|entry| {
            let article = article(entry, &feed, feed_url, source)?;
            Some(Candidate {
                url: article.url.clone(),
                source: source.id.clone(),
                title: (!article.title.is_empty()).then(|| article.title.clone()),
                published: article.published,
                article: Some(article),
            })
        })
        .collect())
}

fn article(entry: &Entry, feed: &Feed, feed_url: &Url, source: &Source) -> Option<Article> {
    let link = entry
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .or_else(|| entry.links.first())
        .map(|l| l.href.as_str())
        .or_else(|| entry.id.starts_with("http").then_some(entry.id.as_str()))?;
    let url = absolute(feed_url, link)?;

    let title = entry.title.as_ref().map(plain).unwrap_or_default();
    let lead = entry.summary.as_ref().map(plain).filter(|s| !s.is_empty());
    let content_html = entry
        .content
        .as_ref()
        .and_then(|c| c.body.clone())
        .or_else(|| entry.summary.as_ref().map(as_html));
    let body_html = content_html
        .map(|html| sanitize::article_html(&html, &url))
        .unwrap_or_default();
    let body_text = html_text(&body_html);
    let authors: Vec<String> = entry
        .authors
        .iter()
        .map(|p| author_name(p.name.as_deref().unwrap_or_default()))
        .filter(|n| !n.is_empty())
        .collect();
    let tags: Vec<String> = entry
        .categories
        .iter()
        .map(|c| normalize(c.label.as_deref().unwrap_or(&c.term)))
        .filter(|t| !t.is_empty())
        .collect();
    let image = entry.media.iter().find_map(|m| {
        m.thumbnails
            .iter()
            .find_map(|t| absolute(&url, &t.image.uri))
            .or_else(|| {
                m.content
                    .iter()
                    .filter(|c| {
                        c.content_type
                            .as_ref()
                            .is_none_or(|t| t.to_string().starts_with("image/"))
                    })
                    .find_map(|c| c.url.as_ref().and_then(|u| absolute(&url, u.as_str())))
            })
    });
    // feed-rs keeps the instant but not the offset it was written with; the source's
    // zone gives readers the local time the site meant.
    let local = |d: chrono::DateTime<chrono::Utc>| {
        plausible(d.with_timezone(&source.timezone).fixed_offset())
    };
    let updated = entry.updated.and_then(local);
    let published = entry.published.and_then(local).or(updated);
    let language = entry
        .language
        .clone()
        .or_else(|| feed.language.clone())
        .or_else(|| source.language.clone());

    let mut provenance = BTreeMap::new();
    let present = [
        (Field::Title, !title.is_empty()),
        (Field::Published, published.is_some()),
        (Field::Updated, updated.is_some()),
        (Field::Authors, !authors.is_empty()),
        (Field::Lead, lead.is_some()),
        (Field::Body, !body_html.is_empty()),
        (Field::Image, image.is_some()),
        (Field::Tags, !tags.is_empty()),
    ];
    for (field, _) in present.iter().filter(|(_, here)| *here) {
        provenance.insert(*field, Origin::Feed);
    }
    Some(Article {
        url,
        canonical_url: None,
        title,
        published,
        updated,
        authors,
        lead,
        body_html,
        body_text,
        image,
        tags,
        section: None,
        language,
        provenance,
    })
}

/// An author's name; RSS writes `email (Name)`, of which the name is kept.
fn author_name(raw: &str) -> String {
    let raw = raw.trim();
    let name = match (raw.find('('), raw.ends_with(')')) {
        (Some(open), true) => &raw[open + 1..raw.len() - 1],
        _ => raw,
    };
    normalize(name)
}

fn is_html(text: &Text) -> bool {
    let t = text.content_type.to_string();
    t.contains("html")
}

/// A feed text as plain text (HTML texts lose their tags), NFC and single-spaced.
fn plain(text: &Text) -> String {
    if is_html(text) {
        normalize(&html_text(&text.content))
    } else {
        normalize(&text.content)
    }
}

/// A feed text as HTML.
fn as_html(text: &Text) -> String {
    if is_html(text) {
        text.content.clone()
    } else {
        html_escape::encode_text(&text.content).into_owned()
    }
}

/// Readable text of an HTML fragment: block elements as paragraphs separated by a blank
/// line, or the whole text when there are none.
fn html_text(html: &str) -> String {
    let doc = nesting::parse_fragment(html);
    let paragraphs: Vec<String> = doc
        .select(&PARAGRAPH)
        // Nested blocks (a <p> in a <blockquote>) are read once, at the innermost level.
        .filter(|el| el.select(&PARAGRAPH).all(|inner| inner.id() == el.id()))
        .map(|el| normalize(&el.text().collect::<String>()))
        .filter(|p| !p.is_empty())
        .collect();
    if paragraphs.is_empty() {
        normalize(&doc.root_element().text().collect::<String>())
    } else {
        paragraphs.join("\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_text_separates_paragraphs() {
        assert_eq!(
            html_text("<p>Một  <b>hai</b></p><p>ba</p>"),
            "Một hai\n\nba"
        );
        assert_eq!(html_text("chỉ chữ"), "chỉ chữ");
    }

    #[test]
    fn rss_author_keeps_the_name_of_email_and_name() {
        assert_eq!(author_name("pv@news.test (Phóng viên A)"), "Phóng viên A");
        assert_eq!(author_name("(Phóng viên A)"), "Phóng viên A");
        assert_eq!(author_name(" Phóng  viên A "), "Phóng viên A");
    }
}
