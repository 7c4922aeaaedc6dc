//! `bantin preview`: one page in (read or fetched by the caller), one JSON object out.

use std::io::Write;

use super::{ExtractError, Input, article};

/// Why one preview input gave no output.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error("cannot write the preview")]
    Write(#[source] std::io::Error),
}

/// Extracts one decoded page and writes it as one line of JSON.
pub fn preview_one(
    html: &str,
    input: &Input<'_>,
    out: &mut impl Write,
) -> Result<(), PreviewError> {
    let article = article(html, input)?;
    let line = serde_json::to_string(&article).expect("an Article always serializes to JSON");
    writeln!(out, "{line}").map_err(PreviewError::Write)
}
