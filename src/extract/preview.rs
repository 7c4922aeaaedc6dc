//! `bantin preview`: one page in (read or fetched by the caller), one JSON object out.

use std::io::Write;

use chrono_tz::Tz;
use url::Url;

use super::{ExtractError, article};
use crate::config::ArticleRules;

/// Why one preview input gave no output.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error("cannot write the preview")]
    Write(#[source] std::io::Error),
}

/// Extracts one decoded page (links resolve against `url`) and writes it as one line
/// of JSON.
pub fn preview_one(
    html: &str,
    url: &Url,
    rules: &ArticleRules,
    tz: Tz,
    out: &mut impl Write,
) -> Result<(), PreviewError> {
    let article = article(html, url, rules, tz)?;
    let line = serde_json::to_string(&article).expect("an Article always serializes to JSON");
    writeln!(out, "{line}").map_err(PreviewError::Write)
}
