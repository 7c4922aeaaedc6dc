//! `bantin preview`: pages in (saved files, or addresses once fetched), one JSON object per
//! page out. Reading the inputs is kept apart from extracting them so the same loop serves
//! files and fetched pages.

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
    #[error(
        "cannot preview {url}: previewing an address needs the fetcher, which this command does not call yet; save the page and pass the file with --url {url}"
    )]
    Fetch { url: Url },
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

/// Reads one command-line input: an `http(s)://` address or a saved file. `url` is the
/// address a saved file was downloaded from; without it the file's own `file://` URL is
/// used.
pub fn read_input(input: &str, url: Option<&Url>) -> Result<Input, PreviewError> {
    if let Ok(address) = Url::parse(input)
        && matches!(address.scheme(), "http" | "https")
    {
        return fetch_input(&address);
    }
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

/// Fetches a page for preview. The HTTP client lives in `fetch`; this is where preview
/// will call it.
pub fn fetch_input(url: &Url) -> Result<Input, PreviewError> {
    Err(PreviewError::Fetch { url: url.clone() })
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

/// Previews every input in order, printing each failure to stderr and going on. Returns
/// how many failed.
pub fn preview_all(
    inputs: &[String],
    url: Option<&Url>,
    rules: &ArticleRules,
    tz: Tz,
    out: &mut impl Write,
) -> usize {
    let mut failed = 0;
    for input in inputs {
        let result = read_input(input, url).and_then(|page| preview_one(&page, rules, tz, out));
        if let Err(err) = result {
            failed += 1;
            let mut msg = format!("error: {input}: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("{msg}");
        }
    }
    failed
}
