//! Sources: where article addresses come from. A listing page (links by CSS selector
//! and/or URL pattern, following "next page"), a feed (RSS, Atom, JSON Feed; entries
//! become articles directly), a sitemap (index → sitemaps → URLs, newest first), or saved
//! HTML files. Fetching goes through the shared `Fetcher`, every page conditionally when
//! the store holds its validators; deciding which article links to fetch (the store's
//! plan) and fetching them is the pipeline's job.

mod feed;
mod files;
mod listing;
mod sitemap;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use bytes::Bytes;
use tracing::warn;
use url::Url;

pub use feed::entries as feed_entries;
pub use files::files;
pub use listing::{ListingLinks, links as listing_links};
pub use sitemap::{Sitemap, SitemapUrl, parse as parse_sitemap};

use crate::config::{Source, SourceKind};
use crate::dedup::canonicalize;
use crate::fetch::{FetchError, FetchKind, Fetched, Fetcher};
use crate::model::{Candidate, Page, ReadFailure, SourceId, Validators};

/// What one pass over a source found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Article candidates, unique by canonical URL, in the order found (sitemaps:
    /// newest first).
    pub candidates: Vec<Candidate>,
    /// Listing, feed and sitemap pages fetched (answered 200).
    pub pages_fetched: u64,
    /// Listing, feed and sitemap pages answered 304 Not Modified.
    pub not_modified: u64,
    /// Validators to send next time, per requested URL.
    pub validators: Vec<(Url, Validators)>,
    /// Pages that failed, as text for the operator; the pass went on without them.
    pub errors: Vec<String>,
    /// Shutdown stopped the pass before every page was asked.
    pub interrupted: bool,
}

/// Why a source gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source {id}: no page could be read")]
    Unreachable {
        id: SourceId,
        #[source]
        error: Box<FetchError>,
    },
    #[error("source {id}: {url} is not a readable {what}: {reason}")]
    Unreadable {
        id: SourceId,
        url: Box<Url>,
        what: &'static str,
        reason: String,
    },
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is neither a file nor a folder")]
    NotFound { path: PathBuf },
}

impl SourceError {
    /// Why the source could not be read, in a few words.
    pub fn read_failure(&self) -> ReadFailure {
        match self {
            SourceError::Unreachable { error, .. } => error.read_failure(),
            other => ReadFailure::Other(other.to_string()),
        }
    }
}

/// Reads a source's listing pages, feeds or sitemaps and returns the article
/// candidates. `validators` are those stored from earlier passes, per URL: every page
/// of the pass that has some (listing page 2.., sitemaps named by an index) is asked
/// conditionally. Fails only
/// when the source gave nothing and at least one page failed; otherwise failed pages
/// are listed in `Discovery::errors`.
pub async fn discover(
    source: &Source,
    fetcher: &Fetcher,
    validators: &HashMap<Url, Validators>,
) -> Result<Discovery, SourceError> {
    let mut pass = Pass {
        source,
        fetcher,
        validators,
        discovery: Discovery::default(),
        seen: HashSet::new(),
        first_error: None,
    };
    match source.kind {
        SourceKind::Listing => listing::discover(&mut pass).await,
        SourceKind::Feed => feed::discover(&mut pass).await,
        SourceKind::Sitemap => sitemap::discover(&mut pass).await,
    }
    let Pass {
        discovery,
        first_error,
        ..
    } = pass;
    match first_error {
        Some(error) if discovery.candidates.is_empty() && discovery.not_modified == 0 => Err(error),
        _ => Ok(discovery),
    }
}

/// One pass over a source: counts, validators, errors and candidates found so far.
struct Pass<'a> {
    source: &'a Source,
    fetcher: &'a Fetcher,
    validators: &'a HashMap<Url, Validators>,
    discovery: Discovery,
    /// Canonical URLs of the candidates.
    seen: HashSet<Url>,
    first_error: Option<SourceError>,
}

/// A fetched listing, feed or sitemap page.
struct Got {
    page: Page,
    body: Bytes,
}

impl Pass<'_> {
    /// Fetches `url` conditionally, within the source's hosts. `None` when it is
    /// unchanged (304) or failed (recorded).
    async fn get(&mut self, url: &Url) -> Option<Got> {
        let known = self.validators.get(url);
        let kind = match self.source.kind {
            SourceKind::Listing => FetchKind::Listing,
            SourceKind::Feed => FetchKind::Feed,
            SourceKind::Sitemap => FetchKind::Sitemap,
        };
        match self
            .fetcher
            .fetch(kind, url, known, Some(self.source))
            .await
        {
            Ok(Fetched::NotModified) => {
                self.discovery.not_modified += 1;
                if let Some(v) = known {
                    self.discovery.validators.push((url.clone(), v.clone()));
                }
                None
            }
            Ok(Fetched::Page {
                page,
                validators,
                body,
                ..
            }) => {
                self.discovery.pages_fetched += 1;
                if validators != Validators::default() {
                    self.discovery.validators.push((url.clone(), validators));
                }
                Some(Got { page, body })
            }
            Err(FetchError::ShuttingDown { .. }) => {
                self.discovery.interrupted = true;
                None
            }
            Err(error) => {
                warn!(source = %self.source.id, url = %url, error = %error, "source page skipped");
                self.fail(SourceError::Unreachable {
                    id: self.source.id.clone(),
                    error: Box::new(error),
                });
                None
            }
        }
    }

    /// Keeps no validators for `url`, so the next pass asks for it whole: a page whose
    /// links are known only from its body (a sitemap index), whose 304 would leave
    /// them unread while the pages they lead to change.
    fn read_whole_next_time(&mut self, url: &Url) {
        self.discovery.validators.retain(|(known, _)| known != url);
        self.discovery
            .validators
            .push((url.clone(), Validators::default()));
    }

    fn unreadable(&mut self, url: &Url, what: &'static str, reason: String) {
        warn!(source = %self.source.id, url = %url, error = %reason, "source page unreadable");
        self.fail(SourceError::Unreadable {
            id: self.source.id.clone(),
            url: Box::new(url.clone()),
            what,
            reason,
        });
    }

    fn fail(&mut self, error: SourceError) {
        let text = match &error {
            SourceError::Unreachable { error, .. } => crate::error_chain(error.as_ref()),
            other => other.to_string(),
        };
        self.discovery.errors.push(text);
        self.first_error.get_or_insert(error);
    }

    /// Adds a candidate unless its host is outside the source or its canonical URL was
    /// already found in this pass. Returns whether it was added.
    fn push(&mut self, candidate: Candidate) -> bool {
        let url = &candidate.url;
        if !matches!(url.scheme(), "http" | "https")
            || !self.source.allows_host(url.host_str().unwrap_or_default())
        {
            return false;
        }
        if !self.seen.insert(canonicalize(url)) {
            return false;
        }
        self.discovery.candidates.push(candidate);
        true
    }

    fn candidate(&self, url: Url) -> Candidate {
        Candidate {
            url,
            source: self.source.id.clone(),
            title: None,
            published: None,
            article: None,
        }
    }
}

/// `href` resolved against `base`, without fragment; `None` for non-web links.
fn absolute(base: &Url, href: &str) -> Option<Url> {
    let mut url = base.join(href.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    url.set_fragment(None);
    Some(url)
}
