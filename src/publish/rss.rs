//! RSS 2.0 rendering with the `rss` crate: `atom:link rel="self"` (and `rel="hub"`),
//! `dc:creator` for authors (RSS `<author>` must be an e-mail address),
//! `content:encoded` for the body (closed by an "Also at" list of the story's other
//! addresses), an enclosure and `media:content` for the image.

use std::collections::BTreeMap;

use rss::extension::atom::{AtomExtension, Link};
use rss::extension::dublincore::DublinCoreExtension;
use rss::extension::{Extension, ExtensionMap};
use rss::{Category, Channel, Enclosure, Guid};

use super::{Entry, FeedFormat, FeedMeta, RenderContext, feed_updated, with_stylesheet};
use crate::model::Item;

const MEDIA_NAMESPACE: &str = "http://search.yahoo.com/mrss/";
const DCTERMS_NAMESPACE: &str = "http://purl.org/dc/terms/";

/// Renders a feed as RSS 2.0, items in the given order.
pub(super) fn render_rss(
    meta: &FeedMeta,
    items: &[Item],
    entries: &[Entry],
    ctx: &RenderContext,
) -> String {
    let mut links = vec![Link {
        href: meta.url(FeedFormat::Rss).to_string(),
        rel: "self".into(),
        mime_type: Some(FeedFormat::Rss.media_type().into()),
        ..Link::default()
    }];
    if let Some(hub) = &meta.websub_hub {
        links.push(Link {
            href: hub.to_string(),
            rel: "hub".into(),
            ..Link::default()
        });
    }
    let mut namespaces = BTreeMap::from([("dcterms".to_owned(), DCTERMS_NAMESPACE.to_owned())]);
    if entries.iter().any(|e| e.image.is_some()) {
        namespaces.insert("media".to_owned(), MEDIA_NAMESPACE.to_owned());
    }
    let channel = Channel {
        title: super::xml_clean(&meta.title),
        link: meta.site_url().to_string(),
        description: super::xml_clean(&meta.description),
        language: Some(meta.language.clone()),
        last_build_date: Some(feed_updated(items).to_rfc2822()),
        generator: Some(ctx.generator.clone()),
        docs: Some("https://www.rssboard.org/rss-specification".into()),
        ttl: meta.ttl_minutes.map(|m| m.to_string()),
        items: entries.iter().map(rss_item).collect(),
        atom_ext: Some(AtomExtension { links }),
        namespaces,
        ..Channel::default()
    };
    with_stylesheet(channel.to_string(), meta)
}

fn rss_item(entry: &Entry) -> rss::Item {
    let mut categories: Vec<Category> = entry
        .categories
        .iter()
        .map(|(_, label)| Category {
            name: label.clone(),
            domain: None,
        })
        .collect();
    categories.extend(entry.tags.iter().map(|t| Category {
        name: t.clone(),
        domain: None,
    }));
    let mut extensions = ExtensionMap::new();
    let mut enclosure = None;
    if let Some(image) = &entry.image {
        enclosure = Some(Enclosure {
            url: image.url.clone(),
            // The size is not known without fetching the image; RSS asks for a number.
            length: "0".into(),
            mime_type: image.media_type.into(),
        });
        let content = Extension {
            name: "media:content".into(),
            attrs: BTreeMap::from([
                ("url".to_owned(), image.url.clone()),
                ("medium".to_owned(), "image".to_owned()),
                ("type".to_owned(), image.media_type.to_owned()),
            ]),
            ..Extension::default()
        };
        extensions.insert(
            "media".into(),
            BTreeMap::from([("content".to_owned(), vec![content])]),
        );
    }
    // RSS has no "updated" of its own; Dublin Core terms carries it, in W3C-DTF.
    extensions.insert(
        "dcterms".into(),
        BTreeMap::from([(
            "modified".to_owned(),
            vec![Extension {
                name: "dcterms:modified".into(),
                value: Some(entry.updated.to_rfc3339()),
                ..Extension::default()
            }],
        )]),
    );
    let dublin_core = (!entry.authors.is_empty()).then(|| DublinCoreExtension {
        creators: entry.authors.clone(),
        ..DublinCoreExtension::default()
    });
    rss::Item {
        title: Some(entry.title.clone()),
        link: Some(entry.link.clone()),
        // RSS readers render a description as HTML; the lead is text, so it is escaped
        // (inside the CDATA section the rss crate writes).
        description: entry
            .summary
            .as_deref()
            .map(|lead| html_escape::encode_text(lead).into_owned()),
        categories,
        enclosure,
        guid: Some(Guid {
            value: entry.id.clone(),
            permalink: false,
        }),
        pub_date: Some(entry.published.to_rfc2822()),
        content: Some(entry.content_html_with_also_at()),
        extensions,
        dublin_core_ext: dublin_core,
        ..rss::Item::default()
    }
}
