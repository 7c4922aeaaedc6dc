//! JSON Feed 1.1 (<https://jsonfeed.org/version/1.1>) rendering with serde. JSON Feed has
//! no related links: the story's other addresses close `content_html` and `content_text`.

use serde::Serialize;

use super::{Entry, FeedFormat, FeedMeta};

const VERSION: &str = "https://jsonfeed.org/version/1.1";

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: String,
    feed_url: String,
    description: &'a str,
    language: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub>,
    items: Vec<JsonItem<'a>>,
}

#[derive(Serialize)]
struct Hub {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    id: &'a str,
    url: &'a str,
    title: &'a str,
    content_html: String,
    content_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment<'a>>,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Attachment<'a> {
    url: &'a str,
    mime_type: &'a str,
}

/// Renders a feed as JSON Feed 1.1, items in the given order.
pub(super) fn render_json_feed(meta: &FeedMeta, entries: &[Entry]) -> String {
    let title = super::xml_clean(&meta.title);
    let description = super::xml_clean(&meta.description);
    let feed = JsonFeed {
        version: VERSION,
        title: &title,
        home_page_url: meta.site_url().to_string(),
        feed_url: meta.url(FeedFormat::Json).to_string(),
        description: &description,
        language: &meta.language,
        hubs: meta
            .websub_hub
            .iter()
            .map(|hub| Hub {
                kind: "WebSub",
                url: hub.to_string(),
            })
            .collect(),
        items: entries.iter().map(json_item).collect(),
    };
    let mut text = serde_json::to_string_pretty(&feed).expect("a JSON Feed always serializes");
    text.push('\n');
    text
}

fn json_item(entry: &Entry) -> JsonItem<'_> {
    JsonItem {
        id: &entry.id,
        url: &entry.link,
        title: &entry.title,
        content_html: entry.content_html_with_also_at(),
        content_text: entry.content_text_with_also_at(),
        summary: entry.summary.as_deref(),
        image: entry.image.as_ref().map(|i| i.url.as_str()),
        date_published: entry.published.to_rfc3339(),
        date_modified: entry.updated.to_rfc3339(),
        authors: entry.authors.iter().map(|name| Author { name }).collect(),
        tags: entry
            .categories
            .iter()
            .map(|(_, label)| label.as_str())
            .chain(entry.tags.iter().map(String::as_str))
            .collect(),
        language: entry.language.as_deref(),
        attachments: entry
            .image
            .iter()
            .map(|i| Attachment {
                url: &i.url,
                mime_type: i.media_type,
            })
            .collect(),
    }
}
