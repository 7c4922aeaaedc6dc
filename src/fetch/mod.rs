//! Fetching pages over HTTP: one shared client with limits (timeouts, body cap,
//! redirects), the address guard, robots.txt, politeness, `Retry-After`, retries with
//! backoff, conditional GET and charset decoding. What to fetch is decided by `sources`
//! and `pipeline`; what a page means is `extract`'s business.

pub mod charset;
mod client;
pub mod guard;
pub mod politeness;
pub mod robots;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use url::Url;

pub use client::Fetcher;

use crate::model::{Page, ReadFailure, Validators};

/// What a request is for; `/metrics` counts requests by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FetchKind {
    /// A listing (category) page.
    Listing,
    /// An article page.
    Article,
    /// An RSS, Atom or JSON feed.
    Feed,
    /// A sitemap or sitemap index.
    Sitemap,
    /// A host's robots.txt.
    Robots,
}

impl FetchKind {
    /// The label value in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchKind::Listing => "listing",
            FetchKind::Article => "article",
            FetchKind::Feed => "feed",
            FetchKind::Sitemap => "sitemap",
            FetchKind::Robots => "robots",
        }
    }
}

/// Requests sent by one fetcher, by kind and answer (the HTTP status, or `error` when
/// no answer came). Every request, redirect hops and robots.txt included, is counted
/// here, in [`Fetcher`], and nowhere else.
#[derive(Debug, Default)]
pub struct FetchCounts {
    counts: Mutex<BTreeMap<(FetchKind, String), u64>>,
}

impl FetchCounts {
    fn record(&self, kind: FetchKind, status: Option<u16>) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry((kind, status)).or_default() += 1;
    }

    /// Every (kind, status) counted so far, in order.
    pub fn snapshot(&self) -> Vec<(FetchKind, String, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .map(|((kind, status), n)| (*kind, status.clone(), *n))
            .collect()
    }
}

/// What a GET brought back.
#[derive(Debug, Clone)]
// Each value is moved once from the fetcher to its caller; boxing the page buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Fetched {
    /// The validators matched: the page is as it was (304).
    NotModified,
    Page {
        page: Page,
        /// Validators of this answer, to send next time.
        validators: Validators,
        content_type: Option<String>,
        /// Size of the (decompressed) body.
        bytes: usize,
        /// The body as received, for parsers that read bytes (feeds, sitemaps).
        body: Bytes,
    },
}

/// Why a page could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("GET {url} refused: only http and https addresses are fetched")]
    UnsupportedScheme { url: Url },
    #[error("GET {url} answered {status}")]
    Status { url: Url, status: StatusCode },
    #[error("GET {url} sent more than {limit} bytes")]
    TooLarge { url: Url, limit: u64 },
    #[error("GET {url} took longer than {}", humantime::format_duration(*.after))]
    Timeout { url: Url, after: Duration },
    #[error("GET {url} failed")]
    Transport {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url} not sent: robots.txt disallows it")]
    RobotsDisallowed { url: Url },
    #[error("GET {url} not sent: its robots.txt could not be read ({reason})")]
    RobotsUnreachable { url: Url, reason: ReadFailure },
    #[error(
        "GET {url} refused: {addr} is a private, loopback or link-local address \
         (set allow_private_networks = true in [fetch] to allow it)"
    )]
    ForbiddenAddress { url: Url, addr: std::net::IpAddr },
    #[error("GET {url} refused: the host is outside the source's allowed domains")]
    ForeignHost { url: Url },
    #[error("GET {url} redirected more than {limit} times")]
    TooManyRedirects { url: Url, limit: usize },
    #[error("GET {url} answered a redirect without a usable Location")]
    BadRedirect { url: Url },
    #[error("GET {url} held back until {until} by the site's Retry-After")]
    RetryLater { url: Url, until: DateTime<Utc> },
    #[error("GET {url} not finished: bantin is shutting down")]
    ShuttingDown { url: Url },
    #[error(
        "GET {url} not sent: worker {worker} kept its host for longer than {}",
        humantime::format_duration(politeness::MAX_HOST_WAIT)
    )]
    HostHeld { url: Url, worker: String },
}

impl FetchError {
    /// Whether trying again soon may succeed: server errors, timeouts, broken
    /// connections. A `Retry-After` is not retried here: the store holds it.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => {
                matches!(status.as_u16(), 408 | 425 | 429 | 500 | 502 | 503 | 504)
            }
            FetchError::Timeout { .. } => true,
            FetchError::Transport { source, .. } => !source.is_builder(),
            _ => false,
        }
    }

    /// The URL the error is about, when there is one.
    pub fn url(&self) -> Option<&Url> {
        match self {
            FetchError::Client(_) => None,
            FetchError::UnsupportedScheme { url }
            | FetchError::Status { url, .. }
            | FetchError::TooLarge { url, .. }
            | FetchError::Timeout { url, .. }
            | FetchError::Transport { url, .. }
            | FetchError::RobotsDisallowed { url }
            | FetchError::RobotsUnreachable { url, .. }
            | FetchError::ForbiddenAddress { url, .. }
            | FetchError::ForeignHost { url }
            | FetchError::TooManyRedirects { url, .. }
            | FetchError::BadRedirect { url }
            | FetchError::RetryLater { url, .. }
            | FetchError::ShuttingDown { url }
            | FetchError::HostHeld { url, .. } => Some(url),
        }
    }

    /// The cause in a few words, for a source whose page this was.
    pub fn read_failure(&self) -> ReadFailure {
        match self {
            FetchError::Status { status, .. } => ReadFailure::Status(status.as_u16()),
            FetchError::Timeout { .. } => ReadFailure::Timeout,
            // A host that cannot be reached is named as such, not as a robots.txt problem.
            FetchError::RobotsUnreachable { reason, .. }
                if matches!(
                    reason,
                    ReadFailure::ConnectionRefused | ReadFailure::Dns | ReadFailure::Timeout
                ) =>
            {
                reason.clone()
            }
            FetchError::RobotsDisallowed { .. } | FetchError::RobotsUnreachable { .. } => {
                ReadFailure::Robots
            }
            FetchError::RetryLater { until, .. } => ReadFailure::RetryLater(*until),
            FetchError::Transport { source, .. } => transport_failure(source)
                .unwrap_or_else(|| ReadFailure::Other(crate::error_chain(self))),
            other => ReadFailure::Other(crate::error_chain(other)),
        }
    }
}

/// Connection refused or a failed name lookup, read from the causes of a transport
/// error (reqwest gives no kind for either).
fn transport_failure(error: &reqwest::Error) -> Option<ReadFailure> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return Some(ReadFailure::ConnectionRefused);
        }
        // hyper-util names a failed resolution "dns error"; the resolver's own
        // message is the system's "failed to lookup address information".
        let text = err.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return Some(ReadFailure::Dns);
        }
        cause = err.source();
    }
    None
}
