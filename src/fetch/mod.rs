//! Fetching pages over HTTP: one shared client with limits (timeouts, body cap,
//! redirects), the address guard, robots.txt, politeness, `Retry-After`, retries with
//! backoff, conditional GET and charset decoding. What to fetch is decided by `sources`
//! and `pipeline`; what a page means is `extract`'s business.

pub mod charset;
mod client;
pub mod guard;
pub mod politeness;
pub mod robots;

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use url::Url;

pub use client::Fetcher;

use crate::model::{Page, Validators};

/// What a GET brought back.
#[derive(Debug, Clone)]
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
    RobotsUnreachable { url: Url, reason: String },
    #[error("GET {url} refused: {addr} is a private, loopback or link-local address")]
    ForbiddenAddress { url: Url, addr: std::net::IpAddr },
    #[error("GET {url} refused: the host is outside the source's allowed domains")]
    ForeignHost { url: Url },
    #[error("GET {url} redirected more than {limit} times")]
    TooManyRedirects { url: Url, limit: usize },
    #[error("GET {url} answered a redirect without a usable Location")]
    BadRedirect { url: Url },
    #[error("GET {url} held back until {until} by the site's Retry-After")]
    RetryLater { url: Url, until: DateTime<Utc> },
}

impl FetchError {
    /// Whether trying again soon may succeed: server errors, timeouts, broken
    /// connections. A `Retry-After` is not retried here: the store holds it.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => matches!(
                status.as_u16(),
                408 | 425 | 429 | 500 | 502 | 503 | 504
            ),
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
            | FetchError::RetryLater { url, .. } => Some(url),
        }
    }
}
