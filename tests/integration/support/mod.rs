//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod synthetic;

use std::path::Path;

use bantin::model::Article;
use url::Url;

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
