//! robots.txt: what a host lets our user agent fetch and how slowly. Rules are parsed
//! with `texting_robots` and cached per origin for `robots_ttl`. Fetching the file is
//! the client's job; this module decides what an answer means (RFC 9309).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use texting_robots::Robot;
use tokio::time::Instant;
use url::Url;

use crate::model::ReadFailure;

/// Largest part of a robots.txt read; the rest of a longer file is ignored, as RFC 9309
/// allows (it asks parsers to read at least 500 KiB).
pub const MAX_ROBOTS_BYTES: u64 = 512 * 1024;
/// How long an unreachable robots.txt keeps its host closed before it is asked again.
pub const UNREACHABLE_TTL: Duration = Duration::from_secs(60);

/// One host's rules for our user agent.
#[derive(Debug)]
pub enum RobotRules {
    /// No usable robots.txt (4xx): everything is allowed.
    AllowAll,
    /// robots.txt could not be read (5xx, network error): nothing is allowed for now.
    /// Holds the reason.
    Unreachable(ReadFailure),
    /// robots.txt lives at an address the guard refuses, so the host does too.
    Refused(std::net::IpAddr),
    Parsed(Robot),
}

impl RobotRules {
    /// Rules from a robots.txt answer. `agent` is the product token of our User-Agent.
    /// Only the first [`MAX_ROBOTS_BYTES`] count, up to their last whole line.
    pub fn from_answer(agent: &str, status: u16, body: &[u8]) -> Self {
        match status {
            200..=299 => Robot::new(agent, whole_lines_within_limit(body))
                .map(RobotRules::Parsed)
                .unwrap_or(RobotRules::AllowAll),
            400..=499 => RobotRules::AllowAll,
            _ => RobotRules::Unreachable(ReadFailure::Status(status)),
        }
    }

    pub fn allows(&self, url: &Url) -> bool {
        match self {
            RobotRules::AllowAll => true,
            RobotRules::Unreachable(_) | RobotRules::Refused(_) => false,
            RobotRules::Parsed(robot) => robot.allowed(url.as_str()),
        }
    }

    /// The host's `Crawl-delay` for us, if it sets one.
    pub fn crawl_delay(&self) -> Option<Duration> {
        match self {
            RobotRules::Parsed(robot) => robot
                .delay
                .filter(|d| d.is_finite() && *d > 0.0)
                // A crawl delay above a minute would stall a run; cap it.
                .map(|d| Duration::from_secs_f32(d.min(60.0))),
            _ => None,
        }
    }
}

/// The first [`MAX_ROBOTS_BYTES`] of `body`, without a line the limit may have cut in
/// two (half a path would be a different rule). The client stops reading at the limit,
/// so a body of exactly that size may be cut too.
fn whole_lines_within_limit(body: &[u8]) -> &[u8] {
    let limit = MAX_ROBOTS_BYTES as usize;
    if body.len() < limit {
        return body;
    }
    let prefix = &body[..limit];
    prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(prefix, |end| &prefix[..=end])
}

/// The product token robots.txt groups are matched against: "bantin" for
/// "bantin/0.1 (+https://...)".
pub fn agent_token(user_agent: &str) -> &str {
    user_agent
        .split(|c: char| c == '/' || c.is_whitespace())
        .next()
        .filter(|t| !t.is_empty())
        .unwrap_or(user_agent)
}

/// The robots.txt address of `url`'s origin.
pub fn robots_url(url: &Url) -> Url {
    let mut robots = url.clone();
    robots.set_path("/robots.txt");
    robots.set_query(None);
    robots.set_fragment(None);
    let _ = robots.set_username("");
    let _ = robots.set_password(None);
    robots
}

type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Arc<RobotRules>)>>>;

/// Rules per origin, each trusted until it expires.
#[derive(Debug)]
pub struct RobotsCache {
    ttl: Duration,
    slots: Mutex<HashMap<String, Slot>>,
}

impl RobotsCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::default(),
        }
    }

    /// The rules for `url`'s origin, calling `fetch` when none are cached or they expired.
    /// Concurrent callers for one origin wait for a single fetch.
    pub async fn rules<F, Fut>(&self, url: &Url, fetch: F) -> Arc<RobotRules>
    where
        F: FnOnce(Url) -> Fut,
        Fut: Future<Output = RobotRules>,
    {
        let origin = url.origin().ascii_serialization();
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .expect("robots cache lock is not poisoned");
            Arc::clone(slots.entry(origin).or_default())
        };
        let mut cached = slot.lock().await;
        if let Some((expires, rules)) = cached.as_ref()
            && *expires > Instant::now()
        {
            return Arc::clone(rules);
        }
        let rules = Arc::new(fetch(robots_url(url)).await);
        let ttl = match *rules {
            RobotRules::Unreachable(_) | RobotRules::Refused(_) => UNREACHABLE_TTL.min(self.ttl),
            _ => self.ttl,
        };
        *cached = Some((Instant::now() + ttl, Arc::clone(&rules)));
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL parses")
    }

    #[test]
    fn agent_token_is_the_product_name() {
        assert_eq!(agent_token("bantin/0.1 (+https://x)"), "bantin");
        assert_eq!(agent_token("bantin"), "bantin");
    }

    #[test]
    fn group_for_our_agent_wins_and_sets_crawl_delay() {
        let txt = b"User-agent: *\nDisallow: /\n\nUser-agent: bantin\nDisallow: /private/\nCrawl-delay: 2\n";
        let rules = RobotRules::from_answer("bantin", 200, txt);
        assert!(rules.allows(&url("http://a.test/news/1")));
        assert!(!rules.allows(&url("http://a.test/private/x")));
        assert_eq!(rules.crawl_delay(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn rules_past_the_size_limit_are_ignored_and_a_cut_line_is_dropped() {
        let mut txt = b"User-agent: *\nDisallow: /private/\n".to_vec();
        let cut_line = b"Disallow: /news/late\n";
        // The limit falls right after "Disallow: /", which would disallow everything.
        let filler = MAX_ROBOTS_BYTES as usize - "Disallow: /".len() - txt.len();
        txt.push(b'#');
        txt.resize(txt.len() + filler - 2, b'x');
        txt.push(b'\n');
        txt.extend_from_slice(cut_line);
        txt.extend_from_slice(b"Disallow: /beyond/\n");
        // What the client hands over: the body cut at the limit.
        txt.truncate(MAX_ROBOTS_BYTES as usize);
        let rules = RobotRules::from_answer("bantin", 200, &txt);
        assert!(!rules.allows(&url("http://a.test/private/x")));
        assert!(rules.allows(&url("http://a.test/news/1")));
        assert!(rules.allows(&url("http://a.test/beyond/x")));
    }

    #[test]
    fn missing_file_allows_and_server_error_closes() {
        assert!(RobotRules::from_answer("bantin", 404, b"").allows(&url("http://a.test/x")));
        assert!(!RobotRules::from_answer("bantin", 503, b"").allows(&url("http://a.test/x")));
    }

    #[test]
    fn robots_url_keeps_scheme_host_and_port() {
        assert_eq!(
            robots_url(&url("http://a.test:8080/x/y?q=1#f")).as_str(),
            "http://a.test:8080/robots.txt"
        );
    }
}
