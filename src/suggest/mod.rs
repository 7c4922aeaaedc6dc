//! `bantin suggest`: a source's configuration proposed for a new site. The section page
//! (fetched, or a saved file) gives the main list of article links (`listing`); a sample
//! of its articles (fetched through the one `Fetcher`, or saved pages beside the file)
//! gives per-field selectors checked against the generic extraction (`fields`); `render`
//! writes the commented `[[source]]` block. Nothing is stored.

mod css;
mod fields;
mod listing;
mod render;

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use url::Url;

pub use fields::{ArticleGuess, FieldGuess, How, Sample};
pub use listing::ListGuess;
pub use render::source_block;

use crate::fetch::{FetchError, FetchKind, Fetched, Fetcher};
use crate::model::Page;

/// Article pages sampled when the command line does not say.
pub const DEFAULT_SAMPLE_ARTICLES: usize = 5;

/// What `suggest` found for one section page.
#[derive(Debug, Clone)]
pub struct Suggestion {
    /// The source id the block is written with.
    pub id: String,
    /// The section page's address.
    pub listing_url: Url,
    pub list: ListGuess,
    pub articles: ArticleGuess,
}

/// Where the section page comes from.
#[derive(Debug, Clone)]
pub enum Input<'a> {
    /// Fetched with `fetcher`, like its article pages.
    Address { url: Url, fetcher: &'a Fetcher },
    /// A saved page; its article pages are saved beside it, named after the last part of
    /// their address. `url` is the address it was saved from (else its canonical link).
    File { path: PathBuf, url: Option<Url> },
}

/// Why no configuration could be suggested.
#[derive(Debug, thiserror::Error)]
pub enum SuggestError {
    #[error(
        "{url} has no recognisable list of articles: the largest group of links has \
         {best_links} link(s) with texts of {best_title_chars} characters on average \
         (a list needs at least 3 links with titles, outside navigation, sidebar and \
         footer); give the address of a section page that lists articles"
    )]
    NoList {
        url: Url,
        best_links: usize,
        best_title_chars: usize,
    },
    #[error("none of the {tried} sampled article page(s) gave an article: {reasons}")]
    NoArticles { tried: usize, reasons: String },
    #[error(
        "{path} names no address of its own (no <link rel=canonical> or og:url); \
         give the address it was saved from with --url"
    )]
    NoAddress { path: PathBuf },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot fetch the section page")]
    Fetch(#[source] FetchError),
}

/// Reads the section page and `articles` of its article pages and suggests the source.
/// `tz` reads dates printed without one.
pub async fn suggest(
    input: &Input<'_>,
    articles: usize,
    id: Option<String>,
    tz: Tz,
) -> Result<Suggestion, SuggestError> {
    let (html, listing_url) = match input {
        Input::Address { url, fetcher } => fetch(fetcher, FetchKind::Listing, url)
            .await
            .map(|page| (page.html, page.final_url))
            .map_err(SuggestError::Fetch)?,
        Input::File { path, url } => read_listing(path, url.as_ref())?,
    };
    let list = listing::find(&html, &listing_url).map_err(|e| SuggestError::NoList {
        url: listing_url.clone(),
        best_links: e.best_links,
        best_title_chars: e.best_title_chars,
    })?;
    let wanted: Vec<Url> = list.articles.iter().take(articles).cloned().collect();
    let (samples, mut failed) = match input {
        Input::Address { fetcher, .. } => fetch_samples(fetcher, &wanted).await,
        Input::File { path, .. } => read_samples(path, &wanted),
    };
    let guessed = tokio::task::spawn_blocking(move || fields::guess(&samples, tz))
        .await
        .expect("suggesting fields does not panic");
    let mut articles = guessed.map_err(|no| {
        failed.extend(no.skipped);
        SuggestError::NoArticles {
            tried: wanted.len(),
            reasons: failed
                .iter()
                .map(|(u, why)| format!("{u}: {why}"))
                .collect::<Vec<_>>()
                .join("; "),
        }
    })?;
    articles.skipped.extend(failed);
    Ok(Suggestion {
        id: id.unwrap_or_else(|| source_id(&listing_url)),
        listing_url,
        list,
        articles,
    })
}

async fn fetch(fetcher: &Fetcher, kind: FetchKind, url: &Url) -> Result<Page, FetchError> {
    match fetcher.fetch(kind, url, None, None).await? {
        Fetched::Page { page, .. } => Ok(page),
        Fetched::NotModified => unreachable!("no validators were sent"),
    }
}

/// The sampled article pages, one after the other through the fetcher's politeness;
/// pages that fail are listed with the reason.
async fn fetch_samples(fetcher: &Fetcher, urls: &[Url]) -> (Vec<Sample>, Vec<(Url, String)>) {
    let (mut samples, mut failed) = (Vec::new(), Vec::new());
    for url in urls {
        match fetch(fetcher, FetchKind::Article, url).await {
            Ok(page) => samples.push(Sample {
                url: page.final_url,
                html: page.html,
                fetched_at: page.fetched_at,
            }),
            Err(err) => failed.push((url.clone(), crate::error_chain(&err))),
        }
    }
    (samples, failed)
}

fn read_listing(path: &Path, url: Option<&Url>) -> Result<(String, Url), SuggestError> {
    let html = read(path)?;
    let url = match url {
        Some(url) => url.clone(),
        None => {
            let doc = crate::extract::nesting::parse_document(&html);
            let meta = crate::extract::meta::PageMeta::read(&doc);
            meta.canonical
                .as_deref()
                .or_else(|| meta.first(&["og:url"]))
                .and_then(|u| Url::parse(u).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| SuggestError::NoAddress {
                    path: path.to_owned(),
                })?
        }
    };
    Ok((html, url))
}

/// The saved article pages beside the section page, for the addresses that have one.
fn read_samples(listing: &Path, urls: &[Url]) -> (Vec<Sample>, Vec<(Url, String)>) {
    let dir = listing.parent().unwrap_or(Path::new("."));
    let (mut samples, mut failed) = (Vec::new(), Vec::new());
    for url in urls {
        let files: Vec<PathBuf> = saved_names(url).iter().map(|n| dir.join(n)).collect();
        // When no file is there, the error names the first one looked for.
        let file = files.iter().find(|f| f.is_file()).or(files.first());
        match file.map(|f| read(f)) {
            Some(Ok(html)) => samples.push(Sample {
                url: url.clone(),
                html,
                fetched_at: chrono::Utc::now(),
            }),
            Some(Err(err)) => failed.push((url.clone(), crate::error_chain(&err))),
            None => failed.push((url.clone(), "no file name in the address".into())),
        }
    }
    (samples, failed)
}

/// The files a page may be saved as, beside its section page: the last part of its
/// address (with `.html` when it has no extension), or a folder of that name holding
/// `index.html`, as a mirrored site has it (`/tin/bai-1/` → `bai-1.html`,
/// `bai-1/index.html`).
fn saved_names(url: &Url) -> Vec<String> {
    let Some(last) = url
        .path_segments()
        .and_then(|mut s| s.rfind(|s| !s.is_empty()))
    else {
        return Vec::new();
    };
    if last.contains('.') {
        vec![last.to_owned()]
    } else {
        vec![format!("{last}.html"), format!("{last}/index.html")]
    }
}

fn read(path: &Path) -> Result<String, SuggestError> {
    let bytes = std::fs::read(path).map_err(|source| SuggestError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(crate::fetch::charset::decode_html(&bytes, None).0)
}

/// A source id from the address: host (without `www.`) and first path segment, as a
/// slug (`https://www.cand.com.vn/thoi-su/` → `cand-com-vn-thoi-su`).
pub fn source_id(url: &Url) -> String {
    let host = url.host_str().unwrap_or("site").trim_start_matches("www.");
    let section = url
        .path_segments()
        .and_then(|mut s| s.find(|s| !s.is_empty()))
        .unwrap_or_default();
    let words = crate::text::fold_diacritics(&format!("{host} {section}")).to_lowercase();
    let slug = words
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    slug.chars()
        .take(64)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_id_is_host_and_section_as_a_slug() {
        let url = Url::parse("https://www.cand.com.vn/Thoi-su/tin-1.html").unwrap();
        assert_eq!(source_id(&url), "cand-com-vn-thoi-su");
        let root = Url::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(source_id(&root), "127-0-0-1");
    }

    #[test]
    fn saved_article_is_named_after_the_last_part_of_its_address_or_a_folder() {
        let names = |u: &str| saved_names(&Url::parse(u).unwrap());
        assert_eq!(names("http://x.test/tin/bai-1.html"), ["bai-1.html"]);
        assert_eq!(
            names("http://x.test/tin/bai-1/"),
            ["bai-1.html", "bai-1/index.html"]
        );
    }
}
