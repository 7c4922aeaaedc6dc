//! Hostile servers and clients against bantin's outbound requests and its HTTP server:
//! hubs that redirect inward, oversized robots.txt, far-future Retry-After, temp files
//! left by a killed publisher, and slow clients that try to use up the server's sockets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bantin::config::Config;
use bantin::fetch::{FetchError, FetchKind, Fetcher};
use bantin::publish::{self, websub};
use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::support::feeds::{FeedEnv, article};
use crate::support::server::TestServer;
use crate::support::{Override, TestConfig, TestSite};

const SITE: &str = "tests/fixtures/sites/news";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// A second loopback address standing in for a host on the internal network.
const INTERNAL: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A fetcher that refuses private addresses except those listed.
fn guarded_fetcher(allowed: &[IpAddr], fetch: &str) -> Fetcher {
    let config = TestConfig::new()
        .fetch("allow_private_networks = false")
        .fetch(fetch)
        .load();
    Fetcher::with_allowed_addresses(&config.settings, allowed).expect("fetcher builds")
}

fn topic() -> Url {
    Url::parse("http://127.0.0.1:8080/feeds/all.rss").unwrap()
}

/// Regression: the hub client followed redirects, so a hub could make bantin POST to internal hosts.
#[tokio::test]
async fn websub_hub_redirecting_to_an_internal_address_is_not_followed() {
    let internal = TestSite::empty_on(INTERNAL).await;
    let hub = TestSite::empty().await;
    hub.set(
        "/hub",
        Override::status(307).header("location", internal.url("/admin").as_str()),
    );
    let err = websub::Hub::new(hub.url("/hub"), guarded_fetcher(&[LOOPBACK], ""))
        .with_retry(1, Duration::from_millis(1))
        .notify(&[topic()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, websub::WebSubError::Status { status, .. } if status == 307),
        "{err}"
    );
    assert_eq!(hub.requests_to("/hub").len(), 1);
    assert!(internal.requests().is_empty(), "the POST reached 127.0.0.2");
}

/// Regression: the hub client was built apart from the Fetcher and skipped the address guard.
#[tokio::test]
async fn websub_hub_at_a_private_address_is_refused_by_the_guard() {
    let hub = TestSite::empty().await;
    let err = websub::Hub::new(hub.url("/hub"), guarded_fetcher(&[], ""))
        .with_retry(3, Duration::from_millis(1))
        .notify(&[topic()])
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            websub::WebSubError::Request {
                source: FetchError::ForbiddenAddress { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(hub.requests().is_empty(), "the hub was asked");
}

/// A robots.txt larger than bantin reads: its rules first, then filler comments.
fn oversized_robots() -> Vec<u8> {
    let mut txt = b"User-agent: *\nDisallow: /private/\n".to_vec();
    while txt.len() < 700 * 1024 {
        txt.extend_from_slice(b"# a comment line that only makes the file longer\n");
    }
    txt
}

/// Regression: a robots.txt over 512 KiB failed to read and closed its whole host.
#[tokio::test]
async fn robots_txt_over_the_size_limit_is_read_up_to_it_not_refused() {
    let site = TestSite::serve(SITE).await;
    site.set("/robots.txt", Override::body(oversized_robots()));
    let fetcher = guarded_fetcher(&[LOOPBACK], "obey_robots = true");
    let page = fetcher
        .fetch(FetchKind::Listing, &site.url("/list/"), None, None)
        .await;
    assert!(page.is_ok(), "{}", page.unwrap_err());
    let private = fetcher
        .fetch(FetchKind::Article, &site.url("/private/x"), None, None)
        .await;
    assert!(
        matches!(private, Err(FetchError::RobotsDisallowed { .. })),
        "{private:?}"
    );
}

/// Regression: only seconds were capped; a `Retry-After` date in 2099 was honoured.
#[tokio::test]
async fn retry_after_as_a_far_future_http_date_is_capped_like_seconds() {
    let site = TestSite::empty().await;
    site.set(
        "/busy",
        Override::status(503).header("retry-after", "Thu, 01 Jan 2099 00:00:00 GMT"),
    );
    let fetcher = guarded_fetcher(&[LOOPBACK], "obey_robots = false");
    let asked = Utc::now();
    let err = fetcher
        .fetch(FetchKind::Article, &site.url("/busy"), None, None)
        .await
        .unwrap_err();
    let FetchError::RetryLater { until, .. } = err else {
        panic!("expected RetryLater, got {err}");
    };
    let cap = bantin::fetch::politeness::MAX_RETRY_AFTER;
    assert!(until <= Utc::now() + cap, "held back until {until}");
    assert!(until >= asked + cap - chrono::TimeDelta::minutes(1));
}

/// A process id that belonged to a process which has ended.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("true runs");
    let pid = child.id();
    child.wait().expect("true ends");
    pid
}

/// Regression: temp files left by a killed publish stayed in the feeds folder forever.
#[tokio::test]
async fn publish_removes_temp_files_of_dead_publishers_only() {
    let env = FeedEnv::new();
    let dir = &env.config.settings.feeds_dir;
    std::fs::create_dir_all(dir).unwrap();
    let mut live = Command::new("sleep").arg("60").spawn().expect("sleep runs");
    let stale = dir.join(format!(".all.json.{}.3.tmp", dead_pid()));
    let in_progress = dir.join(format!(".all.rss.{}.0.tmp", live.id()));
    let foreign = dir.join(".notes.123.tmp");
    for path in [&stale, &in_progress, &foreign] {
        std::fs::write(path, b"partial").unwrap();
    }
    publish::publish_all(&env.config, env.store.as_ref()).expect("publish");
    let _ = live.kill();
    let _ = live.wait();
    assert!(
        !stale.exists(),
        "the dead publisher's temp file is still there"
    );
    assert!(
        in_progress.exists(),
        "a live publisher's temp file was removed"
    );
    assert!(foreign.exists(), "a file of another pattern was removed");
}

/// Longest wait for the server to do something its timeouts promise within a second.
const LIVENESS: Duration = Duration::from_secs(20);

/// A server over a few published items with `[server]` settings changed by `edit`.
async fn server_with(edit: impl FnOnce(&mut Config)) -> TestServer {
    let env = FeedEnv::with(edit);
    for n in 0..3 {
        env.add(&article(n, "Tin", "2024-05-01T08:00:00+07:00"), &[]);
    }
    TestServer::start(env).await
}

async fn connect(server: &TestServer) -> TcpStream {
    let addr = (
        server.base.host_str().unwrap().to_owned(),
        server.base.port().unwrap(),
    );
    TcpStream::connect(addr).await.expect("server accepts")
}

/// Reads until the server closes the connection; `None` if it is still open after
/// `within`. Returns what was read.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&seen).into_owned())
}

/// Regression: with no header-read timeout, half a request held a connection forever.
#[tokio::test]
async fn client_sending_its_headers_too_slowly_is_disconnected() {
    let server = server_with(|c| {
        c.settings.server.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let mut slow = connect(&server).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1")
        .await
        .unwrap();
    let answer = read_until_closed(&mut slow, LIVENESS).await;
    assert!(answer.is_some(), "half a request kept its connection open");
}

/// Regression: a connection that sent nothing was never closed.
#[tokio::test]
async fn silent_client_is_disconnected_after_the_header_read_timeout() {
    let server = server_with(|c| {
        c.settings.server.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let mut silent = connect(&server).await;
    let answer = read_until_closed(&mut silent, LIVENESS).await;
    assert!(
        answer.is_some(),
        "a connection that sent nothing stayed open"
    );
}

/// Regression: idle kept-alive connections were never closed.
#[tokio::test]
async fn kept_alive_connection_is_closed_after_the_idle_timeout() {
    let server = server_with(|c| {
        c.settings.server.header_read_timeout = Duration::from_secs(3600);
        c.settings.server.idle_timeout = Duration::from_millis(500);
    })
    .await;
    let mut client = connect(&server).await;
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut client, LIVENESS).await;
    let answer = answer.expect("an idle kept-alive connection stayed open");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Regression: connections had no cap, so slow clients used up the open files.
#[tokio::test]
async fn full_server_closes_its_longest_idle_connection_for_a_new_client() {
    let server = server_with(|c| {
        c.settings.server.header_read_timeout = Duration::from_secs(3600);
        c.settings.server.max_connections = Some(4);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&server).await;
        // One partial request each, so every connection is surely accepted in order.
        stream.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        idle.push(stream);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let health = tokio::time::timeout(LIVENESS, reqwest::get(server.url("/healthz")))
        .await
        .expect("a new client is answered while the server is full")
        .unwrap();
    assert_eq!(health.status(), 200);
    let oldest = read_until_closed(&mut idle[0], LIVENESS).await;
    assert!(oldest.is_some(), "the longest-idle connection was kept");
    for stream in &mut idle[2..] {
        let newer = read_until_closed(stream, Duration::from_millis(200)).await;
        assert!(newer.is_none(), "a newer idle connection was closed first");
    }
}

/// A draining server does not wait out a slow client's header-read timeout.
#[tokio::test]
async fn shutdown_does_not_wait_for_slow_clients() {
    let env = FeedEnv::with(|c| c.settings.server.header_read_timeout = Duration::from_secs(3600));
    let state = bantin::serve::AppState::new(
        Arc::new(arc_swap::ArcSwap::from_pointee(env.config.clone())),
        env.store.clone(),
        Arc::new(bantin::metrics::Metrics::new()),
    );
    let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(bantin::serve::serve(listener, state, shutdown.clone()));
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(SLOW_HEAD).await.unwrap();
    assert_eq!(healthz_status(addr).await, Some(200), "the server is up");
    shutdown.cancel();
    let stopped = tokio::time::timeout(LIVENESS, server).await;
    assert!(
        stopped.is_ok(),
        "the server waited for a client that never finished"
    );
}

/// Regression: a filtered feed request had no deadline and ran as long as its work took.
#[tokio::test]
async fn filtered_feed_past_the_request_deadline_answers_503() {
    let env = FeedEnv::with(|c| c.settings.server.request_timeout = Duration::from_millis(1));
    for n in 0..300 {
        env.add(&article(n, "Tin", "2024-05-01T08:00:00+07:00"), &[]);
    }
    let server = TestServer::start(env).await;
    let answer = reqwest::get(server.url("/feeds/all.rss?limit=1000"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
}

/// What a slow client sends before falling silent: a request line and a header, no end.
const SLOW_HEAD: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Waiting: ";

/// One slow client: connects, sends partial headers and falls silent until the server
/// closes the connection or `stop`. Counts itself in `attack` at each step.
async fn slow_client(addr: SocketAddr, attack: Arc<Attack>) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    if stream.write_all(SLOW_HEAD).await.is_err() {
        return;
    }
    attack.waiting.fetch_add(1, Ordering::SeqCst);
    let mut buf = [0u8; 256];
    tokio::select! {
        _ = attack.stop.cancelled() => {}
        _ = stream.read(&mut buf) => {
            attack.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Counts of a slow-client attack in progress.
#[derive(Default)]
struct Attack {
    /// Clients that sent their partial headers.
    waiting: AtomicUsize,
    /// Clients whose connection the server closed.
    dropped: AtomicUsize,
    stop: CancellationToken,
}

/// `GET /healthz` over a fresh connection; the status, or `None` past `LIVENESS`.
async fn healthz_status(addr: SocketAddr) -> Option<u16> {
    let ask = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        stream.write_all(request).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer);
        text.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(LIVENESS, ask).await.ok().flatten()
}

/// `bantin run` started through a shell that lowers its open-files limit to `files`.
struct LimitedDaemon {
    child: Child,
    log: PathBuf,
}

impl LimitedDaemon {
    fn start(config: &Path, files: u32) -> LimitedDaemon {
        let log = config.with_file_name("daemon.log");
        let child = Command::new("sh")
            .args([
                "-c",
                &format!("ulimit -n {files} && exec \"$0\" --config \"$1\" run"),
            ])
            .arg(assert_cmd::cargo::cargo_bin!("bantin"))
            .arg(config)
            .env("RUST_LOG", "bantin=info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("sh starts bantin");
        LimitedDaemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LimitedDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `done` holds, polling; panics with `what` and the log past `LIVENESS`.
async fn wait_until(daemon: &LimitedDaemon, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < LIVENESS * 3,
            "timed out waiting for {what}\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Regression: more slow clients than open files made `/healthz` time out and every publish fail.
#[tokio::test]
async fn slow_clients_beyond_the_open_files_limit_leave_healthz_and_publishing_working() {
    const FILES: u32 = 256;
    const SLOW_CLIENTS: usize = 300;
    const CAP: usize = 64;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = SocketAddr::from((LOOPBACK, port));
    let config = TestConfig::new().settings(&format!(
        "listen = \"{addr}\"\n\n[server]\nmax_connections = {CAP}\nheader_read_timeout = \"60s\"\n"
    ));
    config.load();
    let toml = config.dir().join("bantin.toml");
    let daemon = LimitedDaemon::start(&toml, FILES);
    wait_until(&daemon, "the server", async || {
        healthz_status(addr).await == Some(200)
    })
    .await;

    let attack = Arc::new(Attack::default());
    let clients: Vec<_> = (0..SLOW_CLIENTS)
        .map(|_| tokio::spawn(slow_client(addr, attack.clone())))
        .collect();
    // All in, and the server holds no more of them than its cap.
    wait_until(&daemon, "the attack to settle", async || {
        attack.waiting.load(Ordering::SeqCst) == SLOW_CLIENTS
            && attack.dropped.load(Ordering::SeqCst) >= SLOW_CLIENTS - CAP
    })
    .await;
    for _ in 0..10 {
        let status = healthz_status(addr).await;
        assert_eq!(status, Some(200), "healthz under attack\n{}", daemon.log());
    }
    // A new title is published by the daemon itself, which needs files to write.
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("title = \"Vẫn xuất bản\"\n{text}")).unwrap();
    let rss = config.dir().join("feeds/all.rss");
    wait_until(&daemon, "the daemon's publish", async || {
        std::fs::read_to_string(&rss).is_ok_and(|t| t.contains("Vẫn xuất bản"))
    })
    .await;
    let publish = Command::new(assert_cmd::cargo::cargo_bin!("bantin"))
        .args(["--config", toml.to_str().unwrap(), "publish"])
        .output()
        .unwrap();
    assert!(publish.status.success(), "{publish:?}");
    attack.stop.cancel();
    for client in clients {
        let _ = client.await;
    }
}
