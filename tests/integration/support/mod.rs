//! Helpers shared by the integration tests: a real HTTP server on 127.0.0.1 serving a
//! fixture folder ([`TestSite`]), configurations written to a temporary folder, feed
//! parsing, synthetic articles and a running bantin server.

#![allow(dead_code)]

pub mod backend;
mod config;
pub mod daemon;
pub mod feeds;
pub mod news_pages;
pub mod pages;
pub mod server;
mod site;
pub mod synthetic;

pub use backend::{Backend, TestStore};
pub use config::{TestConfig, news_listing_source};
#[allow(unused_imports)]
pub use site::{Gate, Override, OverrideBody, Request, TestSite};

use std::path::Path;

use bantin::model::Article;
use url::Url;

/// Takes back what the scheduling-state and lease migrations (0005, 0006) added, for
/// tests that take a store back to an older schema.
pub const UNDO_SCHEDULE_STATE: &str = "ALTER TABLE source_state DROP COLUMN next_due;
     ALTER TABLE source_state DROP COLUMN backoff_ms;
     DROP TABLE held_back;
     DROP TABLE source_leases;
     DROP TABLE host_leases;";

/// An article JSON file under `tests/fixtures/` (`url`, `title`, `lead`, `body_text`).
pub fn fixture_article(path: &str) -> Article {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    let text = std::fs::read_to_string(&full).expect("fixture exists");
    let v: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let mut article = synthetic::article(0, 0);
    article.url = Url::parse(&s("url")).expect("fixture url is valid");
    article.title = s("title");
    article.lead = Some(s("lead"));
    article.body_text = s("body_text");
    article.body_html = format!("<p>{}</p>", article.body_text);
    article
}
