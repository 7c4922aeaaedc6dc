//! OPML 2.0 list of every published feed, so a reader can subscribe to all at once.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::{FeedFormat, FeedMeta, xml_clean};

/// Renders the OPML list: one outline per feed, pointing at its RSS and its page.
pub fn render_opml(title: &str, feeds: &[FeedMeta]) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let title = xml_clean(title);
    let result: std::io::Result<()> = (|| {
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let mut opml = BytesStart::new("opml");
        opml.push_attribute(("version", "2.0"));
        w.write_event(Event::Start(opml))?;
        w.write_event(Event::Start(BytesStart::new("head")))?;
        w.create_element("title")
            .write_text_content(BytesText::new(&title))?;
        w.write_event(Event::End(BytesEnd::new("head")))?;
        w.write_event(Event::Start(BytesStart::new("body")))?;
        for feed in feeds {
            let text = xml_clean(&feed.title);
            let description = xml_clean(&feed.description);
            let mut outline = BytesStart::new("outline");
            outline.push_attribute(("type", "rss"));
            outline.push_attribute(("text", text.as_str()));
            outline.push_attribute(("title", text.as_str()));
            outline.push_attribute(("description", description.as_str()));
            outline.push_attribute(("language", feed.language.as_str()));
            outline.push_attribute(("xmlUrl", feed.url(FeedFormat::Rss).as_str()));
            outline.push_attribute(("htmlUrl", feed.site_url().as_str()));
            w.write_event(Event::Empty(outline))?;
        }
        w.write_event(Event::End(BytesEnd::new("body")))?;
        w.write_event(Event::End(BytesEnd::new("opml")))?;
        Ok(())
    })();
    result.expect("writing OPML into memory cannot fail");
    let mut text = String::from_utf8(w.into_inner()).expect("quick-xml writes UTF-8");
    text.push('\n');
    text
}
