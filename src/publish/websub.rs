//! WebSub publisher side: after a feed changes, tell the hub (a `hub.mode=publish` POST
//! per changed feed address), retrying with backoff. Feeds carry the `rel="hub"` links;
//! subscriptions are the hub's business. The POST goes through the process's one
//! [`Fetcher`], so the hub passes the same address guard as every page.

use std::time::Duration;

use url::Url;

use super::PublishReport;
use crate::config::Config;
use crate::fetch::{FetchError, Fetcher};

/// Attempts per topic before giving up.
pub const DEFAULT_ATTEMPTS: u32 = 4;
/// Wait before the second attempt; doubled for each further one.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(2);

/// Why the hub was not told.
#[derive(Debug, thiserror::Error)]
pub enum WebSubError {
    #[error("the hub answered {status} for {topic}")]
    Status {
        topic: Url,
        status: reqwest::StatusCode,
    },
    #[error("POST to the hub for {topic} failed")]
    Request {
        topic: Url,
        #[source]
        source: FetchError,
    },
}

impl WebSubError {
    /// Whether bantin itself refused the request: asking again changes nothing.
    fn is_refusal(&self) -> bool {
        matches!(
            self,
            WebSubError::Request {
                source: FetchError::ForbiddenAddress { .. } | FetchError::UnsupportedScheme { .. },
                ..
            }
        )
    }
}

/// A WebSub hub to notify.
#[derive(Debug, Clone)]
pub struct Hub {
    fetcher: Fetcher,
    url: Url,
    attempts: u32,
    backoff: Duration,
}

impl Hub {
    /// The hub at `url`, reached through `fetcher`.
    pub fn new(url: Url, fetcher: Fetcher) -> Hub {
        Hub {
            fetcher,
            url,
            attempts: DEFAULT_ATTEMPTS,
            backoff: DEFAULT_BACKOFF,
        }
    }

    /// Changes how often and how patiently a failed notification is retried.
    pub fn with_retry(mut self, attempts: u32, backoff: Duration) -> Hub {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    /// Notifies the hub of every topic; stops at the first topic that fails every
    /// attempt.
    pub async fn notify(&self, topics: &[Url]) -> Result<(), WebSubError> {
        for topic in topics {
            self.notify_one(topic).await?;
        }
        Ok(())
    }

    async fn notify_one(&self, topic: &Url) -> Result<(), WebSubError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("hub.mode", "publish")
            .append_pair("hub.url", topic.as_str())
            .finish();
        let mut delay = self.backoff;
        let mut attempt = 1;
        loop {
            let error = match self.fetcher.post_form(&self.url, body.clone()).await {
                Ok(status) if status.is_success() => {
                    tracing::info!(hub = %self.url, url = %topic, status = %status, "websub hub notified");
                    return Ok(());
                }
                Ok(status) => WebSubError::Status {
                    topic: topic.clone(),
                    status,
                },
                Err(source) => WebSubError::Request {
                    topic: topic.clone(),
                    source,
                },
            };
            if attempt >= self.attempts || error.is_refusal() {
                return Err(error);
            }
            tracing::warn!(hub = %self.url, url = %topic, attempt, error = %error, "websub notification failed, retrying");
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }
}

/// Tells the configured hub (if any) about every feed `report` says changed.
pub async fn notify_changes(
    fetcher: &Fetcher,
    config: &Config,
    report: &PublishReport,
) -> Result<(), WebSubError> {
    let Some(hub) = &config.settings.websub_hub else {
        return Ok(());
    };
    let topics = report.changed_urls();
    if topics.is_empty() {
        return Ok(());
    }
    Hub::new(hub.clone(), fetcher.clone()).notify(&topics).await
}
