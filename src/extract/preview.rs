//! `bantin preview`: pages in (saved files, or pages the command line fetched), one JSON
//! object per page out. Fetching stays with the caller; this module only reads files.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use url::Url;

use super::{ExtractError, article};
use crate::config::ArticleRules;
use crate::fetch::charset::decode_html;

/// Why one preview input gave no output.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error("cannot write the preview")]
    Write(#[source] std::io::Error),
}

/// A page to preview, decoded, with the address its relative links resolve against.
pub struct Input {
    pub html: String,
    pub url: Url,
}

/// Reads a saved page. `url` is the address it was downloaded from; without it the
/// file's own `file://` URL is used.
pub fn read_input(input: &str, url: Option<&Url>) -> Result<Input, PreviewError> {
    let path = Path::new(input);
    let bytes = std::fs::read(path).map_err(|source| PreviewError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (html, _) = decode_html(&bytes, None);
    let url = match url {
        Some(u) => u.clone(),
        None => std::path::absolute(path)
            .ok()
            .and_then(|p| Url::from_file_path(p).ok())
            .unwrap_or_else(|| Url::parse("file:///").expect("literal URL parses")),
    };
    Ok(Input { html, url })
}

/// Extracts one input and writes it as one line of JSON.
pub fn preview_one(
    input: &Input,
    rules: &ArticleRules,
    tz: Tz,
    out: &mut impl Write,
) -> Result<(), PreviewError> {
    let article = article(&input.html, &input.url, rules, tz)?;
    let line = serde_json::to_string(&article).expect("an Article always serializes to JSON");
    writeln!(out, "{line}").map_err(PreviewError::Write)
}
