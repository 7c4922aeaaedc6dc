//! The shared HTTP client. Redirects are followed here, hop by hop, so that every hop
//! passes the same checks as the first request: scheme, host scope, address guard,
//! robots.txt, politeness and limits.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::Utc;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use tokio_util::sync::CancellationToken;
use tracing::debug;
use url::{Host, Url};

use super::charset::decode_html;
use super::guard::{AddressPolicy, GuardedResolver, RefusedAddress};
use super::politeness::{NotSent, Politeness, SharedHosts, backoff, parse_retry_after};
use super::robots::{MAX_ROBOTS_BYTES, RobotRules, RobotsCache, agent_token};
use super::{FetchCounts, FetchError, FetchKind, Fetched};
use crate::config::{FetchSettings, Settings, Source};
use crate::model::{HeldBack, HostTurn, Page, Validators};

/// Redirects followed when reading robots.txt.
const MAX_ROBOTS_REDIRECTS: usize = 5;

/// The one HTTP client of a bantin process. Cheap to clone; clones share connections,
/// robots.txt cache and politeness state.
#[derive(Clone, Debug)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    settings: FetchSettings,
    robots_agent: String,
    policy: Arc<AddressPolicy>,
    robots: RobotsCache,
    politeness: Politeness,
    counts: Arc<FetchCounts>,
    /// Where each `Retry-After` hold-back is kept, as soon as it is learnt.
    keeper: OnceLock<HoldBackKeeper>,
    /// Cancelled at shutdown: no request starts any more.
    halted: CancellationToken,
    /// Cancelled at the shutdown deadline: requests in flight are dropped.
    abandoned: CancellationToken,
}

/// Stores `Retry-After` hold-backs for the next process.
struct HoldBackKeeper(Box<dyn Fn(HeldBack) + Send + Sync>);

impl std::fmt::Debug for HoldBackKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HoldBackKeeper")
    }
}

/// How much of a response body is read, and what happens past that.
#[derive(Clone, Copy, Debug)]
enum BodyLimit {
    /// A longer body fails the request ([`FetchError::TooLarge`]).
    Refuse(u64),
    /// A longer body is cut at this many bytes (robots.txt: RFC 9309 parses a prefix).
    Truncate(u64),
}

/// One HTTP exchange, before it is interpreted.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Fetcher {
    /// A fetcher with the limits of `[fetch]` and the configured User-Agent.
    pub fn new(settings: &Settings) -> Result<Fetcher, FetchError> {
        Self::with_allowed_addresses(settings, &[])
    }

    /// Like [`Fetcher::new`], also allowing these single addresses when private networks
    /// are not allowed (a local server next to public sites, e.g. in tests).
    pub fn with_allowed_addresses(
        settings: &Settings,
        allowed: &[IpAddr],
    ) -> Result<Fetcher, FetchError> {
        let fetch = &settings.fetch;
        let policy = Arc::new(AddressPolicy {
            allow_private: fetch.allow_private_networks,
            allowed: allowed.to_vec(),
        });
        let client = reqwest::Client::builder()
            .user_agent(&settings.user_agent)
            .connect_timeout(fetch.connect_timeout)
            .timeout(fetch.timeout)
            // Redirects are followed by hand so that each hop is checked.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, past the address guard.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: Arc::clone(&policy),
            }))
            .build()
            .map_err(FetchError::Client)?;
        Ok(Fetcher {
            inner: Arc::new(Inner {
                client,
                robots_agent: agent_token(&settings.user_agent).to_owned(),
                policy,
                robots: RobotsCache::new(fetch.robots_ttl),
                politeness: Politeness::new(fetch),
                settings: fetch.clone(),
                counts: Arc::default(),
                keeper: OnceLock::new(),
                halted: CancellationToken::new(),
                abandoned: CancellationToken::new(),
            }),
        })
    }

    /// The requests this fetcher (and its clones) sent, for `/metrics`.
    pub fn counts(&self) -> Arc<FetchCounts> {
        Arc::clone(&self.inner.counts)
    }

    /// Honours hold-backs kept by an earlier process, and hands every new one to
    /// `keep` (which stores it) the moment a site sends it. Set once; later calls only
    /// restore.
    pub fn keep_held_back(
        &self,
        kept: Vec<HeldBack>,
        keep: impl Fn(HeldBack) + Send + Sync + 'static,
    ) {
        self.inner.politeness.restore(kept);
        let _ = self.inner.keeper.set(HoldBackKeeper(Box::new(keep)));
    }

    /// Honours hold-backs another worker stored since this one started.
    pub fn honour_held_back(&self, held: Vec<HeldBack>) {
        self.inner.politeness.restore(held);
    }

    /// Shares hosts with the other workers of a store from now on (see
    /// [`SharedHosts`]); set once.
    pub fn share_hosts(&self, shared: Box<dyn SharedHosts>) {
        self.inner.politeness.share_hosts(shared);
    }

    /// Takes a host over from the worker that held it before (see
    /// [`Politeness::take_over`]).
    pub fn take_over_host(&self, turn: &HostTurn) {
        self.inner
            .politeness
            .take_over(&turn.host, turn.not_before, turn.abandoned);
    }

    /// What the worker that takes `host` next must respect of this one's requests.
    pub fn host_turn(&self, host: &str) -> HostTurn {
        HostTurn {
            host: host.to_owned(),
            not_before: self.inner.politeness.next_start_at(host),
            abandoned: false,
        }
    }

    /// Shutdown: from now on no request starts (each answers
    /// [`FetchError::ShuttingDown`]); requests in flight get `grace` to finish, then are
    /// dropped the same way.
    pub fn shut_down(&self, grace: Duration) {
        self.inner.halted.cancel();
        let abandoned = self.inner.abandoned.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            abandoned.cancel();
        });
    }

    /// GETs a page. `validators` become If-None-Match / If-Modified-Since; `scope` is the
    /// source whose hosts this request and its redirects may reach (`None`: any host the
    /// address guard permits). Failures that may pass (5xx, timeouts, broken
    /// connections) are retried with exponential backoff and jitter.
    pub async fn fetch(
        &self,
        kind: FetchKind,
        url: &Url,
        validators: Option<&Validators>,
        scope: Option<&Source>,
    ) -> Result<Fetched, FetchError> {
        let settings = &self.inner.settings;
        let mut attempt = 0;
        loop {
            match self.fetch_once(kind, url, validators, scope).await {
                Err(err) if err.is_retryable() && attempt < settings.max_retries => {
                    let wait = backoff(attempt, settings.backoff_base, settings.backoff_cap);
                    debug!(url = %url, error = %err, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.inner.halted.cancelled() => {}
                    }
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn fetch_once(
        &self,
        kind: FetchKind,
        url: &Url,
        validators: Option<&Validators>,
        scope: Option<&Source>,
    ) -> Result<Fetched, FetchError> {
        let settings = &self.inner.settings;
        let mut current = url.clone();
        for hop in 0..=settings.max_redirects {
            // Checked before robots.txt too, whose failure would otherwise be cached.
            if self.inner.halted.is_cancelled() {
                return Err(FetchError::ShuttingDown { url: current });
            }
            self.check_target(&current, scope)?;
            if let Some(until) = self.inner.politeness.held_back_until(&current) {
                return Err(FetchError::RetryLater {
                    url: current,
                    until,
                });
            }
            let crawl_delay = if settings.obey_robots {
                let rules = self.robots(&current).await;
                match &*rules {
                    RobotRules::Unreachable(reason) => {
                        return Err(FetchError::RobotsUnreachable {
                            url: current,
                            reason: reason.clone(),
                        });
                    }
                    RobotRules::Refused(addr) => {
                        return Err(FetchError::ForbiddenAddress {
                            url: current,
                            addr: *addr,
                        });
                    }
                    r if !r.allows(&current) => {
                        return Err(FetchError::RobotsDisallowed { url: current });
                    }
                    r => r.crawl_delay(),
                }
            } else {
                None
            };
            let mut headers = HeaderMap::new();
            if let (0, Some(v)) = (hop, validators) {
                conditional_headers(v, &mut headers);
            }
            let limit = BodyLimit::Refuse(settings.max_body_bytes);
            let answer = self
                .send(kind, &current, headers, limit, crawl_delay)
                .await?;
            match answer.status {
                s if s.is_redirection() && s != StatusCode::NOT_MODIFIED => {
                    current = next_hop(&current, &answer.headers)?;
                }
                // Only validators sent on this request make a 304 mean "unchanged"; any
                // other 304 is a broken answer, reported like any failing status below.
                StatusCode::NOT_MODIFIED if hop == 0 && validators.is_some() => {
                    return Ok(Fetched::NotModified);
                }
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                    let until = header_str(&answer.headers, header::RETRY_AFTER)
                        .and_then(|v| parse_retry_after(v, Utc::now()));
                    return Err(match until {
                        Some(until) => {
                            let held = self.inner.politeness.hold_back(&current, until);
                            if let Some(keeper) = self.inner.keeper.get() {
                                (keeper.0)(held);
                            }
                            FetchError::RetryLater {
                                url: current,
                                until,
                            }
                        }
                        None => FetchError::Status {
                            url: current,
                            status: answer.status,
                        },
                    });
                }
                s if !s.is_success() => {
                    return Err(FetchError::Status {
                        url: current,
                        status: s,
                    });
                }
                _ => return Ok(page(url, current, answer)),
            }
        }
        Err(FetchError::TooManyRedirects {
            url: url.clone(),
            limit: settings.max_redirects,
        })
    }

    /// POSTs a form (`application/x-www-form-urlencoded`) and returns the answer's
    /// status. The address guard applies as to a GET; a redirect is not followed but
    /// returned (a hub has no reason to move a POST, and following one would send it
    /// where the guard never looked). robots.txt and crawl politeness govern crawling,
    /// not notifications, so they do not hold a POST back.
    pub async fn post_form(&self, url: &Url, form: String) -> Result<StatusCode, FetchError> {
        self.check_target(url, None)?;
        let after = self.inner.settings.timeout;
        let request = self
            .inner
            .client
            .post(url.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send();
        match tokio::time::timeout(after, request).await {
            Ok(Ok(response)) => Ok(response.status()),
            Ok(Err(source)) => Err(self.transport_error(url, source)),
            Err(_) => Err(FetchError::Timeout {
                url: url.clone(),
                after,
            }),
        }
    }

    /// Refuses what no request may reach: other schemes, hosts outside the source,
    /// refused IP literals. Names are checked after resolution by the resolver.
    fn check_target(&self, url: &Url, scope: Option<&Source>) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(FetchError::UnsupportedScheme { url: url.clone() });
        }
        let ip = match url.host() {
            Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        if let Some(addr) = ip.filter(|ip| !self.inner.policy.permits(*ip)) {
            return Err(FetchError::ForbiddenAddress {
                url: url.clone(),
                addr,
            });
        }
        if let Some(source) = scope
            && !source.allows_host(url.host_str().unwrap_or_default())
        {
            return Err(FetchError::ForeignHost { url: url.clone() });
        }
        Ok(())
    }

    async fn robots(&self, url: &Url) -> Arc<RobotRules> {
        self.inner
            .robots
            .rules(url, |robots_url| self.fetch_robots(robots_url))
            .await
    }

    async fn fetch_robots(&self, robots_url: Url) -> RobotRules {
        let mut current = robots_url;
        for _ in 0..=MAX_ROBOTS_REDIRECTS {
            if let Err(err) = self.check_target(&current, None) {
                return robots_failure(&err);
            }
            let limit = BodyLimit::Truncate(MAX_ROBOTS_BYTES);
            let answer = match self
                .send(FetchKind::Robots, &current, HeaderMap::new(), limit, None)
                .await
            {
                Ok(answer) => answer,
                Err(err) => {
                    debug!(url = %current, error = %err, "robots.txt unreachable");
                    return robots_failure(&err);
                }
            };
            if answer.status.is_redirection() {
                match next_hop(&current, &answer.headers) {
                    Ok(next) => current = next,
                    Err(_) => return RobotRules::AllowAll,
                }
                continue;
            }
            return RobotRules::from_answer(
                &self.inner.robots_agent,
                answer.status.as_u16(),
                &answer.body,
            );
        }
        // RFC 9309: more than five redirects may be treated as "not found".
        RobotRules::AllowAll
    }

    /// One request and its body, under the politeness gates, the total timeout and
    /// shutdown; counted by kind and answer.
    async fn send(
        &self,
        kind: FetchKind,
        url: &Url,
        headers: HeaderMap,
        limit: BodyLimit,
        crawl_delay: Option<Duration>,
    ) -> Result<Answer, FetchError> {
        let inner = &self.inner;
        let shutting_down = || FetchError::ShuttingDown { url: url.clone() };
        let _permit = tokio::select! {
            permit = inner.politeness.acquire(url, crawl_delay) => {
                permit.map_err(|not_sent| match not_sent {
                    NotSent::HostHeld { worker } => FetchError::HostHeld {
                        url: url.clone(),
                        worker,
                    },
                    NotSent::HeldBack { until } => FetchError::RetryLater {
                        url: url.clone(),
                        until,
                    },
                })?
            }
            _ = inner.halted.cancelled() => return Err(shutting_down()),
        };
        // A request that was queued when shutdown began must not start after it.
        if inner.halted.is_cancelled() {
            return Err(shutting_down());
        }
        let after = inner.settings.timeout;
        let answer = tokio::select! {
            answer = tokio::time::timeout(after, self.exchange(url, headers, limit)) => {
                answer.unwrap_or_else(|_| Err(FetchError::Timeout { url: url.clone(), after }))
            }
            _ = inner.abandoned.cancelled() => Err(shutting_down()),
        };
        match &answer {
            Ok(answer) => inner.counts.record(kind, Some(answer.status.as_u16())),
            Err(FetchError::ShuttingDown { .. }) => {}
            Err(_) => inner.counts.record(kind, None),
        }
        answer
    }

    async fn exchange(
        &self,
        url: &Url,
        headers: HeaderMap,
        limit: BodyLimit,
    ) -> Result<Answer, FetchError> {
        let transport = |source: reqwest::Error| self.transport_error(url, source);
        let mut response = self
            .inner
            .client
            .get(url.clone())
            .headers(headers)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = if status.is_success() {
            let (max, refuse) = match limit {
                BodyLimit::Refuse(max) => (max, true),
                BodyLimit::Truncate(max) => (max, false),
            };
            let too_large = || FetchError::TooLarge {
                url: url.clone(),
                limit: max,
            };
            if refuse && response.content_length().is_some_and(|n| n > max) {
                return Err(too_large());
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = response.chunk().await.map_err(transport)? {
                let room = max as usize - body.len();
                if chunk.len() > room {
                    if refuse {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk[..room]);
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            body.freeze()
        } else {
            Bytes::new()
        };
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    fn transport_error(&self, url: &Url, source: reqwest::Error) -> FetchError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&source);
        while let Some(err) = cause {
            if let Some(refused) = err.downcast_ref::<RefusedAddress>() {
                return FetchError::ForbiddenAddress {
                    url: url.clone(),
                    addr: refused.addr,
                };
            }
            cause = err.source();
        }
        if source.is_timeout() {
            return FetchError::Timeout {
                url: url.clone(),
                after: self.inner.settings.timeout,
            };
        }
        FetchError::Transport {
            url: url.clone(),
            source,
        }
    }
}

fn robots_failure(err: &FetchError) -> RobotRules {
    match err {
        FetchError::ForbiddenAddress { addr, .. } => RobotRules::Refused(*addr),
        other => RobotRules::Unreachable(other.read_failure()),
    }
}

fn conditional_headers(validators: &Validators, headers: &mut HeaderMap) {
    let pairs = [
        (header::IF_NONE_MATCH, &validators.etag),
        (header::IF_MODIFIED_SINCE, &validators.last_modified),
    ];
    for (name, value) in pairs {
        if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    }
}

fn next_hop(current: &Url, headers: &HeaderMap) -> Result<Url, FetchError> {
    let mut next = header_str(headers, header::LOCATION)
        .and_then(|location| current.join(location).ok())
        .ok_or_else(|| FetchError::BadRedirect {
            url: current.clone(),
        })?;
    next.set_fragment(None);
    Ok(next)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn page(asked: &Url, final_url: Url, answer: Answer) -> Fetched {
    let content_type = header_str(&answer.headers, header::CONTENT_TYPE).map(str::to_owned);
    let (html, _) = decode_html(&answer.body, content_type.as_deref());
    let validators = Validators {
        etag: header_str(&answer.headers, header::ETAG).map(str::to_owned),
        last_modified: header_str(&answer.headers, header::LAST_MODIFIED).map(str::to_owned),
    };
    Fetched::Page {
        page: Page {
            url: asked.clone(),
            final_url,
            fetched_at: Utc::now(),
            html,
        },
        validators,
        content_type,
        bytes: answer.body.len(),
        body: answer.body,
    }
}
