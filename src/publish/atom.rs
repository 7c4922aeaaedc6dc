//! Atom 1.0 rendering with the `atom_syndication` crate: self and hub links, HTML
//! content, the lead as summary, the image as `rel="enclosure"` and `media:content`,
//! the story's other addresses as `rel="related"`.

use std::collections::BTreeMap;

use atom_syndication::extension::{Extension, ExtensionMap};
use atom_syndication::{
    Category, Content, Entry as AtomEntry, Feed, Generator, Link, Person, Text, WriteConfig,
};

use super::{Entry, FeedFormat, FeedMeta, RenderContext, feed_updated, with_stylesheet};
use crate::model::Item;

const MEDIA_NAMESPACE: &str = "http://search.yahoo.com/mrss/";

/// Renders a feed as Atom 1.0, entries in the given order.
pub(super) fn render_atom(
    meta: &FeedMeta,
    items: &[Item],
    entries: &[Entry],
    ctx: &RenderContext,
) -> String {
    let mut links = vec![
        Link {
            href: meta.url(FeedFormat::Atom).to_string(),
            rel: "self".into(),
            mime_type: Some(FeedFormat::Atom.media_type().into()),
            ..Link::default()
        },
        Link {
            href: meta.site_url().to_string(),
            rel: "alternate".into(),
            mime_type: Some("text/html".into()),
            ..Link::default()
        },
    ];
    if let Some(hub) = &meta.websub_hub {
        links.push(Link {
            href: hub.to_string(),
            rel: "hub".into(),
            ..Link::default()
        });
    }
    let mut namespaces = BTreeMap::new();
    if entries.iter().any(|e| e.image.is_some()) {
        namespaces.insert("media".to_owned(), MEDIA_NAMESPACE.to_owned());
    }
    let feed = Feed {
        title: Text::plain(super::xml_clean(&meta.title)),
        id: meta.url(FeedFormat::Atom).to_string(),
        updated: feed_updated(items),
        // Atom requires an author on every entry; the feed's stands in for entries
        // whose page named none.
        authors: vec![Person {
            name: super::xml_clean(&meta.title),
            uri: Some(meta.site_url().to_string()),
            ..Person::default()
        }],
        generator: Some(Generator {
            value: ctx.generator.clone(),
            uri: None,
            version: None,
        }),
        links,
        subtitle: Some(Text::plain(super::xml_clean(&meta.description))),
        entries: entries.iter().map(atom_entry).collect(),
        namespaces,
        lang: Some(meta.language.clone()),
        ..Feed::default()
    };
    let xml = feed
        .write_with_config(Vec::new(), WriteConfig::default())
        .expect("writing Atom into memory cannot fail");
    let xml = String::from_utf8(xml).expect("atom_syndication writes UTF-8");
    with_stylesheet(xml, meta)
}

fn atom_entry(entry: &Entry) -> AtomEntry {
    let mut links = vec![Link {
        href: entry.link.clone(),
        rel: "alternate".into(),
        mime_type: Some("text/html".into()),
        ..Link::default()
    }];
    // The same story at other addresses: merging duplicates keeps every source in view.
    links.extend(entry.also_at.iter().map(|url| Link {
        href: url.to_string(),
        rel: "related".into(),
        mime_type: Some("text/html".into()),
        ..Link::default()
    }));
    let mut extensions = ExtensionMap::new();
    if let Some(image) = &entry.image {
        links.push(Link {
            href: image.url.clone(),
            rel: "enclosure".into(),
            mime_type: Some(image.media_type.into()),
            ..Link::default()
        });
        let content = Extension {
            name: "media:content".into(),
            // atom_syndication writes extension attributes as given, unescaped: an
            // image address with `&` in its query would make the feed malformed XML.
            attrs: BTreeMap::from([
                (
                    "url".to_owned(),
                    quick_xml::escape::escape(&image.url).into_owned(),
                ),
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
    let mut categories: Vec<Category> = entry
        .categories
        .iter()
        .map(|(term, label)| Category {
            term: term.clone(),
            scheme: None,
            label: Some(label.clone()),
        })
        .collect();
    categories.extend(entry.tags.iter().map(|t| Category {
        term: t.clone(),
        scheme: None,
        label: None,
    }));
    AtomEntry {
        title: Text::plain(entry.title.clone()),
        id: entry.id.clone(),
        updated: entry.updated,
        authors: entry
            .authors
            .iter()
            .map(|name| Person {
                name: name.clone(),
                ..Person::default()
            })
            .collect(),
        categories,
        links,
        published: Some(entry.published),
        summary: entry.summary.clone().map(Text::plain),
        content: Some(Content {
            value: Some(entry.content_html.clone()),
            content_type: Some("html".into()),
            lang: entry.language.clone(),
            ..Content::default()
        }),
        extensions,
        ..AtomEntry::default()
    }
}
