//! The suggested source as a commented `[[source]]` block: ready to paste into a site
//! file, or saved as one. Every value goes through the `toml` crate's quoting, so a
//! regular expression or a selector with quotes stays valid TOML.

use std::fmt::Write;

use super::{FieldGuess, How, Suggestion};
use crate::config::ArticleRules;

/// Listing pages a suggested source reads per run: the list's first page and the next.
const SUGGESTED_MAX_PAGES: usize = 2;
/// How often a suggested source is crawled (cron, minute first).
const SUGGESTED_SCHEDULE: &str = "*/30 * * * *";

/// The `[[source]]` block for a suggestion, with a comment line per decision.
pub fn source_block(s: &Suggestion) -> String {
    let mut out = String::new();
    let pages = s.articles.pages;
    let _ = writeln!(
        out,
        "# Suggested by `bantin suggest` from {} and {pages} of its article page(s).",
        s.listing_url
    );
    for (url, why) in &s.articles.skipped {
        let _ = writeln!(out, "# Not sampled: {url}: {why}");
    }
    let _ = writeln!(out, "\n[[source]]");
    let _ = writeln!(out, "id = {}", quoted(&s.id));
    let _ = writeln!(out, "kind = \"listing\"");
    let _ = writeln!(out, "urls = [{}]", quoted(s.listing_url.as_str()));
    let _ = writeln!(out, "schedule = {}", quoted(SUGGESTED_SCHEDULE));
    let _ = writeln!(
        out,
        "# Categories are for you to choose: ids from categories.toml every item of this\n\
         # source belongs to (keyword rules still apply without any)."
    );
    let _ = writeln!(out, "categories = []");
    links(&mut out, s);
    extract(&mut out, s);
    out
}

fn links(out: &mut String, s: &Suggestion) {
    let list = &s.list;
    let _ = writeln!(out, "\n[source.links]");
    let _ = writeln!(
        out,
        "# {} article link(s) in the list; {} other link(s) on the page (navigation,\n\
         # sidebar, footer) left out.",
        list.articles.len(),
        list.left_out
    );
    let _ = writeln!(out, "selector = {}", quoted(&list.selector));
    let _ = writeln!(out, "pattern = {}", quoted(&list.pattern));
    match &list.next_page {
        Some(next) => {
            let _ = writeln!(out, "next_page = {}", quoted(next));
            let _ = writeln!(out, "# Listing pages read per run, following next_page.");
            let _ = writeln!(out, "max_pages = {SUGGESTED_MAX_PAGES}");
        }
        None => {
            let _ = writeln!(out, "# No next-page link found: only this page is read.");
        }
    }
}

fn extract(out: &mut String, s: &Suggestion) {
    let a = &s.articles;
    let _ = writeln!(out, "\n[source.extract]");
    for guess in &a.fields {
        let _ = writeln!(out, "# {}", agreement_line(guess, a.pages));
        if let How::Selector(css) = &guess.how {
            let _ = writeln!(
                out,
                "{} = {}",
                ArticleRules::selector_key(guess.field),
                quoted(css)
            );
            if guess.field == crate::model::Field::Published
                && let Some(format) = &a.published_format
            {
                let _ = writeln!(out, "published_format = {}", quoted(format));
            }
        }
    }
    if a.remove.is_empty() {
        let _ = writeln!(
            out,
            "# No related-links or share boxes found inside the body."
        );
    } else {
        let _ = writeln!(
            out,
            "# Boxes inside the body that are not the article (related links, share bars)."
        );
        let list: Vec<String> = a.remove.iter().map(|r| quoted(r)).collect();
        let _ = writeln!(out, "remove = [{}]", list.join(", "));
    }
}

/// `title 5/5 selector h1.title`, `image 5/5 og:image`.
fn agreement_line(guess: &FieldGuess, pages: usize) -> String {
    let field = ArticleRules::selector_key(guess.field);
    let agree = guess.agree;
    match &guess.how {
        How::Selector(css) => format!("{field} {agree}/{pages} selector {css}"),
        How::Page(from) => format!("{field} {agree}/{pages} {from}"),
        How::Generic => format!(
            "{field} {agree}/{pages} generic extraction (no selector gives its value on every page)"
        ),
        How::Missing => format!("{field} 0/{pages} not found on the sampled pages"),
    }
}

fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_read_back_as_written() {
        for text in [
            r"^https?://[^/]+/tin/[^/]+\-\d+\.html$",
            r#"a[rel="next"]"#,
            "it's",
        ] {
            let doc: toml::Table = toml::from_str(&format!("v = {}", quoted(text))).unwrap();
            assert_eq!(doc["v"].as_str(), Some(text));
        }
    }
}
