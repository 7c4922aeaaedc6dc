//! The index page for people: every feed with copyable links, the latest items, and
//! each source's last successful crawl; `<link rel="alternate">` tags let browsers and
//! readers discover the feeds. Plain HTML and a little CSS, no JavaScript.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

use crate::config::Config;
use std::collections::BTreeMap;

use crate::model::{Item, SourceId, SourceRun, SourceState};
use crate::publish::{self, FeedFormat, OPML_FILE};

const STYLE: &str = "body{font:1.05rem/1.55 system-ui,sans-serif;max-width:46rem;margin:0 auto;\
padding:1rem;color:#222}h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}\
section.feed{border-top:1px solid #ddd;padding:.5rem 0}code{word-break:break-all;\
font-size:.85rem;background:#f3f3f3;padding:0 .2rem}ul{padding-left:1.1rem}\
li{margin:.4rem 0}time,.meta{color:#666;font-size:.9rem}table{border-collapse:collapse;\
width:100%}td,th{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #eee}";

/// A source's health for people: unhealthy (and why), failing to be read or waiting
/// for a site's `Retry-After` (and why), or ok with the last error of a page.
fn health_cell(state: Option<&SourceState>) -> String {
    let last_run = state.and_then(|s| s.last_run.as_ref());
    let failure = last_run.and_then(|r| r.failure.as_ref());
    let detail = failure
        .map(|f| format!("not read: {f}"))
        .or_else(|| last_run.and_then(|r| r.last_error.clone()));
    match (state, failure, detail) {
        (Some(s), _, detail) if !s.is_healthy() => format!(
            "<strong>unhealthy</strong>: {}",
            text(detail.as_deref().unwrap_or("failing"))
        ),
        (_, Some(_), Some(detail)) => {
            let standing = if last_run.is_some_and(SourceRun::failed) {
                "failing"
            } else {
                "waiting"
            };
            format!("{standing}: {}", text(&detail))
        }
        (_, _, Some(detail)) => format!("ok (last error: {})", text(&detail)),
        (_, _, None) => "ok".to_owned(),
    }
}

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
    let tz = settings.timezone;
    let when = |t: DateTime<Utc>| t.with_timezone(&tz).format("%d/%m/%Y %H:%M").to_string();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n",
        attr(&settings.language),
        text(&settings.title)
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
    let _ = write!(
        out,
        "</head>\n<body>\n<h1>{}</h1>\n<p>Subscribe to a feed by copying its address into \
         your feed reader. <a href=\"{}\">All feeds as OPML</a>.</p>\n<h2>Feeds</h2>\n",
        text(&settings.title),
        attr(publish::feeds_url(&settings.base_url, OPML_FILE).as_str())
    );
    for feed in feeds {
        let _ = write!(
            out,
            "<section class=\"feed\">\n<h3>{}</h3>\n<p>{}</p>\n<ul>\n",
            text(&feed.title),
            text(&feed.description)
        );
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
        out.push_str("</ul>\n</section>\n");
    }
    out.push_str("<h2>Latest items</h2>\n");
    if items.is_empty() {
        out.push_str("<p>No items yet.</p>\n");
    } else {
        out.push_str("<ul>\n");
        for item in items {
            let date = item.date();
            let link = item
                .article
                .canonical_url
                .as_ref()
                .unwrap_or(&item.article.url);
            let _ = writeln!(
                out,
                "<li><a href=\"{}\">{}</a><br><time datetime=\"{}\">{}</time> \
                 <span class=\"meta\">· {}</span></li>",
                attr(link.as_str()),
                text(&item.article.title),
                attr(&date.to_rfc3339()),
                text(&when(date.with_timezone(&Utc))),
                text(item.source.as_str())
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str(
        "<h2>Sources</h2>\n<table>\n<tr><th>Source</th><th>Health</th><th>Last run</th>\
         <th>Next run</th><th>Links / new</th><th>Last successful crawl</th></tr>\n",
    );
    for source in &config.sources {
        let state = sources
            .iter()
            .find(|s| s.source.as_ref() == Some(&source.id));
        let last_run = state.and_then(|s| s.last_run.as_ref());
        let never = || "never".to_owned();
        let health = health_cell(state);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{health}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            text(source.id.as_str()),
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
            last_run.map_or_else(
                || "—".to_owned(),
                |r| format!("{} / {}", r.links_found, r.new)
            ),
            text(&state.and_then(|s| s.last_success).map_or_else(never, when)),
        );
    }
    let _ = write!(
        out,
        "</table>\n<p class=\"meta\">{} · <a href=\"/healthz\">health</a> · \
         <a href=\"/metrics\">metrics</a></p>\n</body>\n</html>\n",
        text(&publish::generator())
    );
    out
}
