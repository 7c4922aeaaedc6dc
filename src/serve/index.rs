//! The index page for people: every feed (linked to its page) with copyable addresses,
//! the latest items with their categories and other addresses, and each source's
//! standing, runs and last known link count; `<link rel="alternate">` tags let browsers
//! and readers discover the feeds. The parts shared with the feed pages live in `pages`.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

use super::Standing;
use super::pages::{ItemView, write_head, write_subscribe_links};
use crate::config::Config;
use crate::model::{Item, SourceId, SourceState};
use crate::publish::{self, FeedFormat, OPML_FILE, RenderContext};

/// Renders the index page. `next_runs` are the scheduler's next run per source (empty
/// when no scheduler runs).
pub fn render_index(
    config: &Config,
    feeds: &[publish::FeedMeta],
    items: &[Item],
    sources: &[SourceState],
    next_runs: &BTreeMap<SourceId, DateTime<Utc>>,
) -> String {
    let settings = &config.settings;
    let ctx = RenderContext::new(config);
    let view = ItemView {
        timezone: settings.timezone,
        ctx: &ctx,
        with_lead: false,
    };
    let mut out = String::new();
    write_head(&mut out, &settings.language, &settings.title, feeds);
    let _ = write!(
        out,
        "<h1>{}</h1>\n<p>Open a feed to read it here, or subscribe by copying its address \
         into your feed reader. <a href=\"{}\">All feeds as OPML</a>.</p>\n<h2>Feeds</h2>\n",
        text(&settings.title),
        attr(publish::feeds_url(&settings.base_url, OPML_FILE).as_str())
    );
    for feed in feeds {
        // The feed's own address: a browser gets its page there (see `pages`).
        let _ = write!(
            out,
            "<section class=\"feed\">\n<h3><a href=\"{}\">{}</a></h3>\n<p>{}</p>\n",
            attr(feed.url(FeedFormat::Rss).as_str()),
            text(&feed.title),
            text(&feed.description)
        );
        write_subscribe_links(&mut out, feed);
        out.push_str("</section>\n");
    }
    out.push_str("<h2>Latest items</h2>\n");
    view.write_items(&mut out, items);
    write_sources(&mut out, config, sources, next_runs, &view);
    let _ = write!(
        out,
        "<p class=\"meta\">{} · <a href=\"/healthz\">health</a> · \
         <a href=\"/metrics\">metrics</a></p>\n</body>\n</html>\n",
        text(&publish::generator())
    );
    out
}

/// The sources table: standing, last and next run, the last known link count.
fn write_sources(
    out: &mut String,
    config: &Config,
    sources: &[SourceState],
    next_runs: &BTreeMap<SourceId, DateTime<Utc>>,
    view: &ItemView<'_>,
) {
    out.push_str(
        "<h2>Sources</h2>\n<table>\n<tr><th>Source</th><th>Health</th><th>Last run</th>\
         <th>Next run</th><th>Links / new</th><th>Last successful crawl</th></tr>\n",
    );
    let when = |t: DateTime<Utc>| view.when(t);
    let never = || "never".to_owned();
    for source in &config.sources {
        let state = sources
            .iter()
            .find(|s| s.source.as_ref() == Some(&source.id));
        let last_run = state.and_then(|s| s.last_run.as_ref());
        let standing = Standing::of(state);
        // After a run answered 304 throughout, `links_found` is the count of the last
        // run that read the source, so the column never drops to 0 for a quiet site.
        let links = last_run.map_or_else(
            || "—".to_owned(),
            |r| format!("{} / {}", r.links_found, r.new),
        );
        let mut health = text(&standing.to_string()).into_owned();
        if state.is_some_and(|s| !super::source_is_healthy(s)) {
            health = format!("<strong>{health}</strong>");
        }
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"health {}\">{health}</td><td>{}</td><td>{}</td>\
             <td>{links}</td><td>{}</td></tr>",
            text(source.id.as_str()),
            standing.name(),
            text(
                &last_run
                    .and_then(|r| r.finished_at)
                    .map_or_else(never, when)
            ),
            text(
                &next_runs
                    .get(&source.id)
                    .copied()
                    .map_or_else(|| "—".to_owned(), when)
            ),
            text(&state.and_then(|s| s.last_success).map_or_else(never, when)),
        );
    }
    out.push_str("</table>\n");
}
