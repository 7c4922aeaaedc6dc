//! `TestSite`: a real axum server on 127.0.0.1 (port chosen by the OS) serving files of a
//! fixture folder, with per-path overrides and a log of every request it received.
//!
//! ```ignore
//! let site = TestSite::serve("tests/fixtures/sites/news").await;
//! site.set("/slow", Override::drip(Duration::from_secs(1)));
//! site.push("/flaky", Override::status(500)); // once, then the file
//! site.put("/edited/", "<html>…</html>"); // served like a file, from now on
//! let url = site.url("/list/");
//! assert_eq!(site.requests_to("/list/").len(), 1);
//! assert!(site.requests_to("/edited/")[0].is_conditional());
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream;
use url::Url;

/// Date every fixture file claims as its Last-Modified.
const FIXTURE_LAST_MODIFIED: &str = "Mon, 01 Jan 2024 00:00:00 GMT";
/// Chunk size of generated large bodies.
const HUGE_CHUNK_BYTES: usize = 64 * 1024;

/// A running test server. Stops when dropped.
pub struct TestSite {
    addr: SocketAddr,
    state: Arc<SiteState>,
    task: tokio::task::JoinHandle<()>,
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Request {
    /// Path and query, e.g. `/list/?page=2`.
    pub path: String,
    /// When the request arrived.
    pub at: Instant,
    pub headers: HeaderMap,
}

impl Request {
    /// The `If-None-Match` the request carried.
    pub fn if_none_match(&self) -> Option<&str> {
        self.headers.get(header::IF_NONE_MATCH)?.to_str().ok()
    }

    /// The `User-Agent` the request carried (tells bantin processes apart).
    pub fn user_agent(&self) -> Option<&str> {
        self.headers.get(header::USER_AGENT)?.to_str().ok()
    }

    /// Whether the request was conditional (`If-None-Match` or `If-Modified-Since`).
    pub fn is_conditional(&self) -> bool {
        self.headers.contains_key(header::IF_NONE_MATCH)
            || self.headers.contains_key(header::IF_MODIFIED_SINCE)
    }
}

/// How to answer requests for one path instead of (or on top of) the fixture file.
/// Fields left unset keep the file's answer.
#[derive(Debug, Clone, Default)]
pub struct Override {
    pub status: Option<StatusCode>,
    /// Headers added to (or replacing those of) the answer.
    pub headers: Vec<(String, String)>,
    /// Wait before answering.
    pub delay: Option<Duration>,
    pub body: Option<OverrideBody>,
    /// Apply to this many requests only, then fall through to the next override or the
    /// file. `None`: every request.
    pub times: Option<usize>,
    /// Answer only once this gate is open.
    pub gate: Option<Gate>,
}

/// Holds answers back until the test opens it ([`Override::behind`]).
#[derive(Debug, Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Gate(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Gate {
    /// Lets every answer held behind the gate go, now and later.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn passed(&self) {
        let mut open = self.0.subscribe();
        let _ = open.wait_for(|open| *open).await;
    }
}

/// A body an override sends.
#[derive(Debug, Clone)]
pub enum OverrideBody {
    Bytes(Vec<u8>),
    /// Never answer at all (not even headers).
    Never,
    /// One byte every `every`, `len` bytes in all.
    Drip {
        len: u64,
        every: Duration,
    },
    /// `len` bytes of filler, streamed; with `declare_length` a Content-Length is sent.
    Huge {
        len: u64,
        declare_length: bool,
    },
}

impl Override {
    pub fn status(code: u16) -> Self {
        Override {
            status: Some(StatusCode::from_u16(code).expect("valid status code")),
            ..Override::default()
        }
    }

    /// Answers 200 with this body.
    pub fn body(body: impl Into<Vec<u8>>) -> Self {
        Override {
            body: Some(OverrideBody::Bytes(body.into())),
            ..Override::default()
        }
    }

    /// Answers 302 to `location`.
    pub fn redirect(location: &str) -> Self {
        Override::status(302).header("location", location)
    }

    /// Never answers.
    pub fn never() -> Self {
        Override {
            body: Some(OverrideBody::Never),
            ..Override::default()
        }
    }

    /// Sends a 1 MiB body one byte every `every`.
    pub fn drip(every: Duration) -> Self {
        Override {
            body: Some(OverrideBody::Drip {
                len: 1 << 20,
                every,
            }),
            ..Override::default()
        }
    }

    /// Streams `len` bytes without a Content-Length.
    pub fn huge(len: u64) -> Self {
        Override {
            body: Some(OverrideBody::Huge {
                len,
                declare_length: false,
            }),
            ..Override::default()
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Answers once `gate` is open.
    pub fn behind(mut self, gate: &Gate) -> Self {
        self.gate = Some(gate.clone());
        self
    }
}

#[derive(Debug)]
struct SiteState {
    root: Option<PathBuf>,
    overrides: Mutex<HashMap<String, Vec<Override>>>,
    /// Pages put by the test, served like files (before the fixture folder's).
    pages: Mutex<HashMap<String, Vec<u8>>>,
    log: Mutex<Vec<Request>>,
}

impl TestSite {
    /// Serves the files under `dir` (relative to the crate root or absolute).
    /// `/a/` serves `a/index.html`; `/a` serves `a` or `a/index.html`.
    pub async fn serve(dir: impl AsRef<Path>) -> TestSite {
        let dir = dir.as_ref();
        let root = if dir.is_absolute() {
            dir.to_owned()
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
        };
        assert!(root.is_dir(), "fixture folder {} exists", root.display());
        Self::start(Some(root)).await
    }

    /// A server with no files: every path is 404 unless overridden.
    pub async fn empty() -> TestSite {
        Self::start(None).await
    }

    /// Like [`TestSite::empty`], listening on another loopback address such as
    /// 127.0.0.2 (a stand-in for an internal host).
    pub async fn empty_on(ip: std::net::IpAddr) -> TestSite {
        Self::start_on(None, ip).await
    }

    async fn start(root: Option<PathBuf>) -> TestSite {
        Self::start_on(root, std::net::Ipv4Addr::LOCALHOST.into()).await
    }

    async fn start_on(root: Option<PathBuf>, ip: std::net::IpAddr) -> TestSite {
        let state = Arc::new(SiteState {
            root,
            overrides: Mutex::default(),
            pages: Mutex::default(),
            log: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("bind a loopback address");
        let addr = listener.local_addr().expect("listener has an address");
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("test server runs");
        });
        TestSite { addr, state, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` + `path`.
    pub fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{}", self.addr, path)).expect("test URL parses")
    }

    /// Replaces every override of `path` with this one.
    pub fn set(&self, path: &str, o: Override) {
        self.overrides().insert(path.to_owned(), vec![o]);
    }

    /// Adds an override after those already set for `path` (use `.times(n)` on the
    /// earlier ones to make a sequence).
    pub fn push(&self, path: &str, o: Override) {
        self.overrides().entry(path.to_owned()).or_default().push(o);
    }

    /// Serves `body` at `path` (an HTML page) from now on, like a fixture file: with an
    /// ETag of its content and a Last-Modified, answering 304 to a matching
    /// If-None-Match. Putting a new body edits the page.
    pub fn put(&self, path: &str, body: impl Into<Vec<u8>>) {
        let mut pages = self.state.pages.lock().expect("pages lock");
        pages.insert(path.to_owned(), body.into());
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.log.lock().expect("log lock").clone()
    }

    /// Requests whose path (without query) is `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.split('?').next() == Some(path))
            .collect()
    }

    /// Requests whose path starts with `prefix`, e.g. every article under `/tin-tuc/`.
    pub fn requests_under(&self, prefix: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }

    fn overrides(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Override>>> {
        self.state.overrides.lock().expect("overrides lock")
    }
}

impl Drop for TestSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(state): State<Arc<SiteState>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    state.log.lock().expect("log lock").push(Request {
        path: uri
            .path_and_query()
            .map_or(path.clone(), |p| p.as_str().to_owned()),
        at: Instant::now(),
        headers: headers.clone(),
    });
    let chosen = {
        let mut overrides = state.overrides.lock().expect("overrides lock");
        overrides.get_mut(&path).and_then(|list| {
            let i = list.iter().position(|o| o.times != Some(0))?;
            let o = list[i].clone();
            if let Some(n) = list[i].times.as_mut() {
                *n -= 1;
            }
            Some(o)
        })
    };
    let o = chosen.unwrap_or_default();
    if let Some(gate) = &o.gate {
        gate.passed().await;
    }
    if let Some(delay) = o.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = match &o.body {
        Some(OverrideBody::Never) => std::future::pending().await,
        Some(body) => generated(body),
        None => {
            let put = state.pages.lock().expect("pages lock").get(&path).cloned();
            match put {
                Some(bytes) => served(bytes, "text/html", &headers),
                None => file(state.root.as_deref(), &path, &headers),
            }
        }
    };
    if let Some(status) = o.status {
        *response.status_mut() = status;
    }
    for (name, value) in &o.headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
            HeaderValue::from_str(value).expect("valid header value"),
        );
    }
    response
}

fn generated(body: &OverrideBody) -> Response {
    let builder = Response::builder().header(header::CONTENT_TYPE, "text/html");
    match body.clone() {
        OverrideBody::Bytes(bytes) => builder.body(Body::from(bytes)),
        OverrideBody::Never => unreachable!("never-answering bodies are handled before"),
        OverrideBody::Drip { len, every } => {
            let drip = stream::unfold(0u64, move |sent| async move {
                if sent == len {
                    return None;
                }
                tokio::time::sleep(every).await;
                Some((Ok::<_, Infallible>(Bytes::from_static(b"x")), sent + 1))
            });
            builder.body(Body::from_stream(drip))
        }
        OverrideBody::Huge {
            len,
            declare_length,
        } => {
            let chunks = stream::unfold(0u64, move |sent| async move {
                let n = (len - sent).min(HUGE_CHUNK_BYTES as u64);
                (n > 0).then(|| {
                    let chunk = Bytes::from(vec![b'x'; n as usize]);
                    (Ok::<_, Infallible>(chunk), sent + n)
                })
            });
            let builder = if declare_length {
                builder.header(header::CONTENT_LENGTH, len)
            } else {
                builder
            };
            builder.body(Body::from_stream(chunks))
        }
    }
    .expect("generated response builds")
}

fn file(root: Option<&Path>, path: &str, request: &HeaderMap) -> Response {
    let Some(file) = root.and_then(|root| locate(root, path)) else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("not found"))
            .expect("404 builds");
    };
    let bytes = std::fs::read(&file).expect("fixture file is readable");
    served(bytes, content_type(&file), request)
}

/// A page answered as a static file server would: ETag of its content, a fixed
/// Last-Modified, 304 when the request's If-None-Match matches.
fn served(bytes: Vec<u8>, content_type: &str, request: &HeaderMap) -> Response {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, FIXTURE_LAST_MODIFIED);
    let matches = request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    if matches {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .expect("304 builds");
    }
    builder
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .expect("file response builds")
}

fn locate(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.trim_start_matches('/');
    if relative.split('/').any(|part| part == "..") {
        return None;
    }
    let direct = root.join(relative);
    if direct.is_file() {
        return Some(direct);
    }
    let index = direct.join("index.html");
    index.is_file().then_some(index)
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html",
        Some("xml") => "application/xml",
        Some("rss") => "application/rss+xml",
        Some("atom") => "application/atom+xml",
        Some("json") => "application/feed+json",
        Some("txt") => "text/plain",
        _ => "application/octet-stream",
    }
}
