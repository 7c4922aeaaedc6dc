//! WebSub publisher side: after a feed changes, tell the hub (a `hub.mode=publish` POST
//! per changed feed address), retrying with backoff. Feeds carry the `rel="hub"` links;
//! subscriptions are the hub's business.

use std::time::Duration;

use url::Url;

use super::PublishReport;
use crate::config::Config;

/// Attempts per topic before giving up.
pub const DEFAULT_ATTEMPTS: u32 = 4;
/// Wait before the second attempt; doubled for each further one.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the hub was not told.
#[derive(Debug, thiserror::Error)]
pub enum WebSubError {
    #[error("the hub answered {status} for {topic}")]
    Status {
        topic: Url,
        status: reqwest::StatusCode,
    },
    #[error("POST to the hub for {topic} failed")]
    Transport {
        topic: Url,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// A WebSub hub to notify.
#[derive(Debug, Clone)]
pub struct Hub {
    client: reqwest::Client,
    url: Url,
    attempts: u32,
    backoff: Duration,
}

impl Hub {
    pub fn new(url: Url, user_agent: &str) -> Result<Hub, WebSubError> {
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(WebSubError::Client)?;
        Ok(Hub {
            client,
            url,
            attempts: DEFAULT_ATTEMPTS,
            backoff: DEFAULT_BACKOFF,
        })
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
            let result = self
                .client
                .post(self.url.clone())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.clone())
                .send()
                .await;
            let error = match result {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(hub = %self.url, url = %topic, status = %response.status(), "websub hub notified");
                    return Ok(());
                }
                Ok(response) => WebSubError::Status {
                    topic: topic.clone(),
                    status: response.status(),
                },
                Err(source) => WebSubError::Transport {
                    topic: topic.clone(),
                    source,
                },
            };
            if attempt >= self.attempts {
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
pub async fn notify_changes(config: &Config, report: &PublishReport) -> Result<(), WebSubError> {
    let Some(hub) = &config.settings.websub_hub else {
        return Ok(());
    };
    let topics = report.changed_urls();
    if topics.is_empty() {
        return Ok(());
    }
    Hub::new(hub.clone(), &config.settings.user_agent)?
        .notify(&topics)
        .await
}
