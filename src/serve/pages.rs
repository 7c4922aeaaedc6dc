//! Pages for people: the page a browser gets at a feed's own address, and the parts it
//! shares with the index page (page head, item list). Every text from a page, the store
//! or the config is escaped, and only `http`/`https` addresses become links, so nothing
//! a site wrote can become markup or script. Plain HTML and a little CSS, no JavaScript.
//!
//! Deciding who gets a page and who gets the feed is [`prefers_html`]'s job; serving the
//! feed bytes stays with `routes` and `caching`.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use url::Url;

use crate::model::Item;
use crate::publish::{self, FeedFormat, FeedMeta, RenderContext};

pub(super) const STYLE: &str = "body{font:1.05rem/1.55 system-ui,sans-serif;max-width:46rem;\
margin:0 auto;padding:1rem;color:#222}h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}\
section.feed{border-top:1px solid #ddd;padding:.5rem 0}code{word-break:break-all;\
font-size:.85rem;background:#f3f3f3;padding:0 .2rem}ul{padding-left:1.1rem}\
li{margin:.4rem 0}time,.meta{color:#666;font-size:.9rem}table{border-collapse:collapse;\
width:100%}td,th{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #eee}\
p.lead{margin:.2rem 0}";

/// Whether a request's `Accept` asks for a page rather than a feed.
///
/// One address serves both, by content negotiation (`Vary: Accept`): a person who clicks
/// a feed link, or pastes the address a reader was given, sees a page, and the address
/// they copy from it is the one readers subscribe to. Browsers name `text/html` first
/// (Chromium, Firefox and Safari send `text/html,...,application/xml;q=0.9,*/*;q=0.8`);
/// feed readers name feed types, `*/*`, or nothing. So a page is served only when
/// `text/html` is named with a weight above every feed, XML and JSON type named, and a
/// reader that names no `text/html` gets exactly the feed it got before. XSL is no
/// alternative: browsers do not apply it to `application/rss+xml` and are dropping XSLT.
pub fn prefers_html(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let mut html = 0.0f32;
    let mut feed = 0.0f32;
    // `mime` parses each media range and its parameters; a range it cannot parse is
    // ignored, as RFC 9110 lets a server do.
    for range in accept
        .split(',')
        .filter_map(|r| r.trim().parse::<mime::Mime>().ok())
    {
        let weight = range
            .get_param("q")
            .and_then(|q| q.as_str().parse::<f32>().ok())
            .unwrap_or(1.0);
        let sub = range.subtype().as_str();
        let suffix = range.suffix().map(|s| s.as_str());
        if (range.type_() == mime::TEXT && sub == "html") || sub == "xhtml" {
            html = html.max(weight);
        } else if sub == "xml" || sub == "json" || matches!(suffix, Some("xml" | "json")) {
            feed = feed.max(weight);
        }
    }
    html > 0.0 && html > feed
}

/// `href` for an address a page may link: only `http` and `https`, escaped.
fn href(url: &Url) -> Option<String> {
    publish::is_linkable(url).then(|| attr(url.as_str()).into_owned())
}

/// Everything that is the same at the top of every page: doctype, language, title,
/// style and a `<link rel="alternate">` per feed format of each of `feeds`.
pub(super) fn write_head(out: &mut String, language: &str, title: &str, feeds: &[FeedMeta]) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n",
        attr(language),
        text(title)
    );
    for feed in feeds {
        for format in FeedFormat::ALL {
            let _ = writeln!(
                out,
                "<link rel=\"alternate\" type=\"{}\" title=\"{} ({})\" href=\"{}\">",
                format.media_type(),
                attr(&feed.title),
                format.label(),
                attr(feed.url(format).as_str())
            );
        }
    }
    out.push_str("</head>\n<body>\n");
}

/// The feed's three addresses, each linked and written out to copy into a reader.
pub(super) fn write_subscribe_links(out: &mut String, feed: &FeedMeta) {
    out.push_str("<ul class=\"subscribe\">\n");
    for format in FeedFormat::ALL {
        let url = feed.url(format);
        let _ = writeln!(
            out,
            "<li><a href=\"{}\">{}</a> <code>{}</code></li>",
            attr(url.as_str()),
            format.label(),
            text(url.as_str())
        );
    }
    out.push_str("</ul>\n");
}

/// How items are shown: dates in the configured zone, categories by title.
pub(super) struct ItemView<'a> {
    pub timezone: Tz,
    pub ctx: &'a RenderContext,
    /// Whether each item shows its lead (the feed page) or only its title line (index).
    pub with_lead: bool,
}

impl ItemView<'_> {
    /// A time as people here read it, e.g. `17/07/2020 21:54`.
    pub fn when(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.timezone)
            .format("%d/%m/%Y %H:%M")
            .to_string()
    }

    /// The items as a list: title (linked), date, authors, categories, lead, and the
    /// other addresses the same story was seen at.
    pub fn write_items(&self, out: &mut String, items: &[Item]) {
        if items.is_empty() {
            out.push_str("<p>No items yet.</p>\n");
            return;
        }
        out.push_str("<ul class=\"items\">\n");
        for item in items {
            self.write_item(out, item);
        }
        out.push_str("</ul>\n");
    }

    fn write_item(&self, out: &mut String, item: &Item) {
        let article = &item.article;
        let link = article.canonical_url.as_ref().unwrap_or(&article.url);
        let title = text(&article.title);
        out.push_str("<li class=\"item\">");
        match href(link) {
            Some(href) => {
                let _ = write!(out, "<a href=\"{href}\">{title}</a>");
            }
            None => out.push_str(&title),
        }
        let date = item.date();
        let _ = write!(
            out,
            "<br><time datetime=\"{}\">{}</time>",
            attr(&date.to_rfc3339()),
            text(&self.when(date.with_timezone(&Utc)))
        );
        if !article.authors.is_empty() {
            let _ = write!(
                out,
                " <span class=\"meta author\">· {}</span>",
                text(&article.authors.join(", "))
            );
        }
        let categories: Vec<&str> = item
            .categories
            .iter()
            .map(|c| {
                self.ctx
                    .category_titles
                    .get(c)
                    .map_or(c.as_str(), String::as_str)
            })
            .collect();
        if !categories.is_empty() {
            let _ = write!(
                out,
                " <span class=\"meta categories\">· {}</span>",
                text(&categories.join(", "))
            );
        }
        if self.with_lead
            && let Some(lead) = article.lead.as_deref().filter(|l| !l.trim().is_empty())
        {
            let _ = write!(out, "<p class=\"lead\">{}</p>", text(lead));
        }
        out.push_str(&publish::also_at_html(&item.links));
        out.push_str("</li>\n");
    }
}

/// What a feed page shows besides the feed itself.
pub(super) struct FeedPage<'a> {
    pub meta: &'a FeedMeta,
    /// The words searched for (`?q=`), shown back in the search box.
    pub query: Option<&'a str>,
    pub view: ItemView<'a>,
}

impl FeedPage<'_> {
    /// The page a browser gets at a feed's address.
    pub fn render(&self, items: &[Item]) -> String {
        let meta = self.meta;
        let mut out = String::new();
        write_head(
            &mut out,
            &meta.language,
            &meta.title,
            std::slice::from_ref(meta),
        );
        let _ = write!(
            out,
            "<p class=\"meta\"><a href=\"{}\">All feeds</a></p>\n<h1>{}</h1>\n<p>{}</p>\n\
             <h2>Subscribe</h2>\n<p>Copy an address into your feed reader.</p>\n",
            attr(meta.site_url().as_str()),
            text(&meta.title),
            text(&meta.description)
        );
        write_subscribe_links(&mut out, meta);
        // An empty action keeps the page's own address; the browser's `Accept` brings
        // the search back to this page, a reader's to the filtered feed.
        let _ = write!(
            out,
            "<form method=\"get\" action=\"\" role=\"search\">\n<label>Search this feed \
             <input type=\"search\" name=\"q\" value=\"{}\"></label>\n\
             <button type=\"submit\">Search</button>\n</form>\n<h2>{}</h2>\n",
            attr(self.query.unwrap_or_default()),
            if self.query.is_some() {
                "Found"
            } else {
                "Latest items"
            }
        );
        if self.query.is_some() && items.is_empty() {
            out.push_str("<p>No item holds all these words.</p>\n");
        } else {
            self.view.write_items(&mut out, items);
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::prefers_html;

    #[test]
    fn browsers_get_pages_and_readers_get_feeds() {
        let rows = [
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                true,
            ),
            (Some("text/html"), true),
            (None, false),
            (Some("*/*"), false),
            (
                Some("application/rss+xml, application/atom+xml;q=0.9, */*;q=0.1"),
                false,
            ),
            (Some("application/atom+xml, text/html;q=0.5"), false),
            (Some("application/feed+json"), false),
            (Some("text/html;q=0, */*"), false),
            (Some("not a media type"), false),
        ];
        for (accept, page) in rows {
            assert_eq!(prefers_html(accept), page, "Accept: {accept:?}");
        }
    }
}
