//! Routes and handlers. Feed file names are checked against the configured feed ids
//! before any path is built, so `..` or encoded separators never reach the file system.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::Poll;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_util::future::{BoxFuture, Either};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tower::Service;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;

use super::AppState;
use super::caching::{Representation, preferred_coding, tag_encoding};
use super::counting::{CountRequestsLayer, Counted, Route};
use super::index::render_index;
use super::pages::{FeedPage, ItemView, prefers_html};
use crate::config::Config;
use crate::error_chain;
use crate::model::{ALL_CATEGORY, CategoryId, SourceState};
use crate::publish::{self, FeedFormat, FeedMeta, OPML_FILE, RenderContext, STYLESHEET_FILE};
use crate::store::{Store, StoreError};
use crate::text::search_terms;

/// Most items a `?limit=` may ask for.
const MAX_LIMIT: usize = 1000;
/// Latest items listed on the index page.
const INDEX_ITEMS: usize = 30;

/// The state handlers get: one shared copy, so a request clones one pointer rather
/// than every part of [`AppState`].
type Shared = Arc<AppState>;

/// The route of the feeds, as `/metrics` counts it.
const FEED_ROUTE: &str = "/feeds/{file}";

/// The whole server: a GET or HEAD of a feed goes straight to [`feed`], every other
/// request through the router. Feeds answered from memory are nearly all the traffic,
/// and the router's matching, request extensions and boxed layers would be a fifth of
/// what such an answer costs.
#[derive(Clone)]
pub(super) struct App {
    state: Shared,
    router: Router,
}

impl App {
    pub(super) fn new(state: AppState) -> App {
        let state: Shared = Arc::new(state);
        App {
            router: router(state.clone()),
            state,
        }
    }
}

impl Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        Counted<BoxFuture<'static, Result<Response, Infallible>>>,
        <Router as Service<Request>>::Future,
    >;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        // Neither the feed handler nor the router ever waits to take a request.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if !reads_a_feed(&request) {
            return Either::Right(self.router.call(request));
        }
        let state = self.state.clone();
        let metrics = state.metrics.clone();
        let answer = Box::pin(async move { Ok(feed(State(state), request).await) });
        Either::Left(Counted::new(Route::Named(FEED_ROUTE), metrics, answer))
    }
}

/// A GET or HEAD of one name under `/feeds/`, as the router's feed route matches it.
fn reads_a_feed(request: &Request) -> bool {
    (request.method() == Method::GET || request.method() == Method::HEAD)
        && request
            .uri()
            .path()
            .strip_prefix("/feeds/")
            .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

fn router(state: Shared) -> Router {
    let deadline = state.config.load().settings.server.request_timeout;
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(fallback)
        .layer(CompressionLayer::new())
        .layer(middleware::map_response(
            |mut response: Response| async move {
                tag_encoding(response.headers_mut());
                response
            },
        ))
        // Past the deadline the handler is dropped, and with it any work it started;
        // counted like any other answer.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            deadline,
        ))
        // GET and HEAD of a feed never get here (see [`App`]): this route answers the
        // other methods with the router's 405 and `Allow`. Feeds sit outside the layers
        // above: a feed is compressed once per version, and only its work in the store
        // has a deadline (`within_deadline`).
        .route(FEED_ROUTE, get(feed))
        .layer(CountRequestsLayer {
            metrics: state.metrics.clone(),
        })
        .with_state(state)
}

/// Runs `work` within the server's request deadline; past it the work is dropped (and
/// with it what it started, see `render_filtered`) and the answer is 503, as the
/// timeout layer answers for the other routes.
async fn within_deadline(
    state: &AppState,
    work: impl std::future::Future<Output = Response>,
) -> Response {
    let deadline = state.config.load().settings.server.request_timeout;
    match tokio::time::timeout(deadline, work).await {
        Ok(response) => response,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Why a request could not be answered; mapped to a status in [`error_response`].
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("store unavailable")]
    Store(#[from] StoreError),
    #[error("background task failed")]
    Task(#[from] tokio::task::JoinError),
    /// The request was gone before its work was done; nobody reads this answer.
    #[error("request abandoned")]
    Abandoned,
}

fn error_response(error: ServeError) -> Response {
    let status = match error {
        ServeError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        ServeError::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ServeError::Abandoned => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    tracing::error!(error = %error, source = ?std::error::Error::source(&error), "request failed");
    (status, format!("{error}\n")).into_response()
}

async fn fallback(method: Method) -> Response {
    if method == Method::GET || method == Method::HEAD {
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    } else {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "method not allowed\n",
        )
            .into_response()
    }
}

/// `?limit=N&q=words` on a feed.
#[derive(Debug, Default, Deserialize)]
struct FeedQuery {
    limit: Option<usize>,
    q: Option<String>,
}

impl FeedQuery {
    /// How many items to show: `?limit=`, else the feed's length, within bounds.
    fn limit(&self, meta: &FeedMeta) -> usize {
        self.limit
            .unwrap_or(meta.items_per_feed)
            .clamp(1, MAX_LIMIT)
    }

    /// The words of `?q=`; a `q` without letters or digits has none to search for.
    fn words(&self) -> Option<&str> {
        self.q.as_deref().filter(|q| !search_terms(q).is_empty())
    }
}

/// What a name under `/feeds/` refers to.
enum FeedFile<'a> {
    Feed(&'a FeedMeta, FeedFormat),
    Opml,
    Stylesheet,
}

impl FeedFile<'_> {
    fn content_type(&self) -> &'static str {
        match self {
            FeedFile::Opml => "text/x-opml; charset=utf-8",
            FeedFile::Stylesheet => "text/xsl; charset=utf-8",
            FeedFile::Feed(_, FeedFormat::Rss) => "application/rss+xml; charset=utf-8",
            FeedFile::Feed(_, FeedFormat::Atom) => "application/atom+xml; charset=utf-8",
            FeedFile::Feed(_, FeedFormat::Json) => "application/feed+json; charset=utf-8",
        }
    }
}

fn resolve<'a>(config: &Config, feeds: &'a [FeedMeta], name: &str) -> Option<FeedFile<'a>> {
    if name == OPML_FILE {
        return Some(FeedFile::Opml);
    }
    if name == STYLESHEET_FILE && config.settings.stylesheet {
        return Some(FeedFile::Stylesheet);
    }
    let (stem, ext) = name.rsplit_once('.')?;
    let format = FeedFormat::from_extension(ext)?;
    feeds
        .iter()
        .find(|meta| meta.id.as_str() == stem)
        .map(|meta| FeedFile::Feed(meta, format))
}

async fn feed(State(state): State<Shared>, request: Request) -> Response {
    // Read from the request itself rather than by the `Path` and `Query` extractors,
    // which allocate even when there is no query: this path answers most requests.
    let name = request.uri().path().trim_start_matches("/feeds/");
    let query = match request.uri().query() {
        None => FeedQuery::default(),
        Some(_) => match Query::<FeedQuery>::try_from_uri(request.uri()) {
            Ok(Query(query)) => query,
            Err(rejection) => return rejection.into_response(),
        },
    };
    let headers = request.headers();
    let (config, derived) = state.current();
    let Some(file) = resolve(&config, &derived.feeds, name) else {
        return (StatusCode::NOT_FOUND, "no such feed\n").into_response();
    };
    let answer = Answer {
        content_type: file.content_type(),
        cache_control: derived.cache_control.clone(),
        // A feed answers by `Accept` too (a page for browsers), so caches key on it.
        vary: match &file {
            FeedFile::Feed(..) => "accept, accept-encoding",
            FeedFile::Opml | FeedFile::Stylesheet => "accept-encoding",
        },
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let filtered = query.limit.is_some() || query.words().is_some();
    // The paths that work in the store are boxed, so the future of the cached answer
    // stays small.
    match file {
        FeedFile::Feed(meta, _) if prefers_html(accept) => {
            let page = feed_page(&state, &config, meta.clone(), query, headers);
            Box::pin(within_deadline(&state, page)).await
        }
        FeedFile::Feed(meta, format) if filtered => {
            let work = async {
                match render_filtered(&state, &config, meta.clone(), format, query).await {
                    Ok(rep) => answer.respond(&rep, headers),
                    Err(e) => error_response(e),
                }
            };
            Box::pin(within_deadline(&state, work)).await
        }
        // The name was matched against fixed names and configured ids above.
        _ => match state.published.get(&state.store, name).await {
            Ok(Some(rep)) => answer.respond(&rep, headers),
            Ok(None) => (StatusCode::NOT_FOUND, "feed not published yet\n").into_response(),
            Err(e) => error_response(e.into()),
        },
    }
}

async fn render_filtered(
    state: &AppState,
    config: &Arc<Config>,
    meta: FeedMeta,
    format: FeedFormat,
    query: FeedQuery,
) -> Result<Arc<Representation>, ServeError> {
    let work = FilteredFeed {
        limit: query.limit(&meta),
        words: query.words().unwrap_or_default().to_owned(),
        meta,
        format,
        ctx: RenderContext::new(config),
    };
    let store = state.store.clone();
    // Dropping this future (the client left, or the deadline passed) cancels the token,
    // and the blocking work stops at its next step instead of running on for nobody.
    let abandoned = CancellationToken::new();
    let _cancel_on_drop = abandoned.clone().drop_guard();
    let rep =
        tokio::task::spawn_blocking(move || work.render(store.as_ref(), &abandoned)).await??;
    Ok(Arc::new(rep))
}

/// The page a browser gets at a feed's address: the feed's latest items, or those
/// `?q=` finds, read from the store for each request.
async fn feed_page(
    state: &AppState,
    config: &Arc<Config>,
    meta: FeedMeta,
    query: FeedQuery,
    request: &HeaderMap,
) -> Response {
    let limit = query.limit(&meta);
    let words = query.words().map(str::to_owned);
    let store = state.store.clone();
    let config = config.clone();
    let page = tokio::task::spawn_blocking(move || -> Result<String, StoreError> {
        let items = match &words {
            Some(words) => store.search_items(&meta.id, words, limit)?,
            None => store.latest_items(&meta.id, limit)?,
        };
        let ctx = RenderContext::new(&config);
        let page = FeedPage {
            meta: &meta,
            query: words.as_deref(),
            view: ItemView {
                timezone: config.settings.timezone,
                ctx: &ctx,
                with_lead: true,
            },
        };
        Ok(page.render(&items))
    })
    .await
    .map_err(ServeError::from)
    .and_then(|page| page.map_err(ServeError::from));
    let answer = Answer {
        content_type: "text/html; charset=utf-8",
        // Rendered from the store on each request: revalidated every time (its tag
        // still saves sending the same page again).
        cache_control: HeaderValue::from_static("no-cache"),
        vary: "accept, accept-encoding",
    };
    match page {
        Ok(page) => answer.respond(&Representation::new(Bytes::from(page), None), request),
        Err(e) => error_response(e),
    }
}

/// A feed filtered by `?limit=` and `?q=`, rendered from the store.
struct FilteredFeed {
    meta: FeedMeta,
    format: FeedFormat,
    words: String,
    limit: usize,
    ctx: RenderContext,
}

impl FilteredFeed {
    /// Searches and renders, checking before each step that the request still waits.
    fn render(
        &self,
        store: &dyn Store,
        abandoned: &CancellationToken,
    ) -> Result<Representation, ServeError> {
        still_wanted(abandoned)?;
        // The whole store is searched, through its full-text index.
        let items = store.search_items(&self.meta.id, &self.words, self.limit)?;
        still_wanted(abandoned)?;
        let body = publish::render(self.format, &self.meta, &items, &self.ctx);
        let modified = publish::newest_change(&items).map(Into::into);
        Ok(Representation::new(Bytes::from(body), modified))
    }
}

/// Fails with [`ServeError::Abandoned`] once the request that wanted this work is gone.
fn still_wanted(abandoned: &CancellationToken) -> Result<(), ServeError> {
    if abandoned.is_cancelled() {
        Err(ServeError::Abandoned)
    } else {
        Ok(())
    }
}

/// The headers of an answer from a [`Representation`] that do not come from it.
struct Answer {
    content_type: &'static str,
    cache_control: HeaderValue,
    vary: &'static str,
}

impl Answer {
    /// 304 when the client's copy is current, else the body, compressed (once per
    /// version) when the client takes gzip or Brotli.
    fn respond(self, rep: &Representation, request: &HeaderMap) -> Response {
        let coding = preferred_coding(request).filter(|_| rep.body.len() >= MIN_COMPRESS_BYTES);
        let not_modified = rep.not_modified(request);
        // Built in place, headers reserved at once: a 304 from memory is little more
        // than this.
        let mut response = match (not_modified, coding) {
            (true, _) => Response::new(Body::empty()),
            (false, None) => Response::new(Body::from(rep.body.clone())),
            (false, Some(coding)) => Response::new(Body::from(rep.encoded(coding))),
        };
        let headers = response.headers_mut();
        headers.reserve(6);
        // A 304 carries the tag of the plain body, as the client's copy may be either.
        headers.insert(
            header::ETAG,
            rep.etag_header(coding.filter(|_| !not_modified)).clone(),
        );
        if let Some(lm) = rep.last_modified_header() {
            headers.insert(header::LAST_MODIFIED, lm.clone());
        }
        headers.insert(header::CACHE_CONTROL, self.cache_control);
        headers.insert(header::VARY, HeaderValue::from_static(self.vary));
        if not_modified {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            return response;
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        if let Some(coding) = coding {
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(coding.name()),
            );
        }
        response
    }
}

/// Bodies shorter than this are sent as they are.
const MIN_COMPRESS_BYTES: usize = 1024;

async fn index(State(state): State<Shared>) -> Response {
    let (config, derived) = state.current();
    let store = state.store.clone();
    let loaded = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        let items = store.latest_items(&CategoryId::from(ALL_CATEGORY), INDEX_ITEMS)?;
        let sources = store.source_states()?;
        Ok((items, sources))
    })
    .await
    .map_err(ServeError::from)
    .and_then(|r| r.map_err(ServeError::from));
    match loaded {
        Ok((items, sources)) => Html(render_index(
            &config,
            &derived.feeds,
            &items,
            &sources,
            &state.next_runs(),
        ))
        .into_response(),
        Err(e) => error_response(e),
    }
}

#[derive(Serialize)]
struct Health {
    /// `ok`, `degraded` (some source failing) or `unavailable` (store down).
    status: &'static str,
    /// This worker's id, when it runs the scheduler.
    #[serde(skip_serializing_if = "Option::is_none")]
    worker: Option<String>,
    store: StoreHealth,
    published: PublishedHealth,
    sources: Vec<SourceHealth>,
    unhealthy_sources: Vec<String>,
}

/// Which publish this server answers, beside the newest the store holds: a server
/// behind stays behind until it reads the store again (once a second).
#[derive(Serialize)]
struct PublishedHealth {
    served_generation: Option<u64>,
    stored_generation: Option<u64>,
}

#[derive(Serialize)]
struct LeaseHealth {
    worker: String,
    expires: String,
}

#[derive(Serialize)]
struct StoreHealth {
    reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct SourceHealth {
    id: String,
    /// `not_run`, `ok`, `waiting`, `failing` or `broken` (see [`super::Standing`]).
    standing: &'static str,
    last_success: Option<String>,
    last_run: Option<String>,
    next_run: Option<String>,
    last_error: Option<String>,
    /// Why the last run could not read the source (connection refused, timeout, 404…).
    failure: Option<String>,
    /// The worker running the source now, and until when its lease holds.
    lease: Option<LeaseHealth>,
    /// What the breakage alarm found on the last run.
    breakage: Vec<String>,
    links_found: Option<u64>,
    /// Article links of the last run that answered 404/410 or wait for their backoff.
    dead_links: Option<u64>,
    failures: u32,
    healthy: bool,
}

async fn healthz(State(state): State<Shared>) -> Response {
    let config = state.config.load_full();
    let next_runs = state.next_runs();
    let store = state.store.clone();
    let checked = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
        store.ping()?;
        let leases = store.leases(chrono::Utc::now())?;
        Ok((store.source_states()?, leases, store.publish_generation()?))
    })
    .await;
    let (store_health, (states, leases, stored_generation)) = match checked {
        Ok(Ok(found)) => (
            StoreHealth {
                reachable: true,
                error: None,
            },
            (found.0, found.1, Some(found.2)),
        ),
        Ok(Err(e)) => (
            StoreHealth {
                reachable: false,
                error: Some(error_chain(&e)),
            },
            Default::default(),
        ),
        Err(e) => (
            StoreHealth {
                reachable: false,
                error: Some(e.to_string()),
            },
            Default::default(),
        ),
    };
    let sources: Vec<SourceHealth> = config
        .sources
        .iter()
        .map(|source| {
            let state = states
                .iter()
                .find(|s| s.source.as_ref() == Some(&source.id));
            let failures = state.map_or(0, |s| s.failures);
            let last_run = state.and_then(|s| s.last_run.as_ref());
            SourceHealth {
                id: source.id.to_string(),
                standing: super::Standing::of(state).name(),
                last_success: state.and_then(|s| s.last_success).map(|t| t.to_rfc3339()),
                last_run: last_run.and_then(|r| r.finished_at).map(|t| t.to_rfc3339()),
                next_run: next_runs.get(&source.id).map(|t| t.to_rfc3339()),
                last_error: last_run.and_then(|r| r.last_error.clone()),
                failure: last_run.and_then(|r| r.failure.as_ref().map(ToString::to_string)),
                breakage: last_run.map(|r| r.breakage.clone()).unwrap_or_default(),
                lease: leases
                    .iter()
                    .find(|l| l.source == source.id)
                    .map(|l| LeaseHealth {
                        worker: l.worker.clone(),
                        expires: l.expires_at.to_rfc3339(),
                    }),
                links_found: last_run.map(|r| r.links_found),
                dead_links: last_run.map(|r| r.dead_links),
                failures,
                healthy: state.is_none_or(SourceState::is_healthy),
            }
        })
        .collect();
    let unhealthy_sources: Vec<String> = sources
        .iter()
        .filter(|s| !s.healthy)
        .map(|s| s.id.clone())
        .collect();
    let (status, code) = if !store_health.reachable {
        ("unavailable", StatusCode::SERVICE_UNAVAILABLE)
    } else if !unhealthy_sources.is_empty() {
        ("degraded", StatusCode::OK)
    } else {
        ("ok", StatusCode::OK)
    };
    let health = Health {
        status,
        worker: state
            .schedule
            .as_ref()
            .and_then(|s| s.worker_id().map(str::to_owned)),
        store: store_health,
        published: PublishedHealth {
            served_generation: state.published.generation(),
            stored_generation,
        },
        sources,
        unhealthy_sources,
    };
    (code, axum::Json(health)).into_response()
}

async fn metrics(State(state): State<Shared>) -> Response {
    let store = state.store.clone();
    let states = tokio::task::spawn_blocking(move || store.source_states())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let mut body = state.metrics.render();
    body.push_str(&crate::metrics::render_sources(&states, &state.next_runs()));
    body.push_str(&crate::metrics::render_publish_generation(
        state.published.generation(),
    ));
    if let Some(schedule) = &state.schedule {
        body.push_str(&crate::metrics::render_leases(schedule.lease_counts()));
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[test]
    fn filtered_feed_work_stops_once_its_request_is_gone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("bantin.db"), 3).expect("store opens");
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/publish/config/bantin.toml"
        );
        let config = Config::load(std::path::Path::new(fixture)).expect("fixture config loads");
        let work = FilteredFeed {
            meta: publish::feeds_for(&config).remove(0),
            format: FeedFormat::Rss,
            words: "tin".into(),
            limit: 10,
            ctx: RenderContext::new(&config),
        };
        let abandoned = CancellationToken::new();
        let rep = work
            .render(&store, &abandoned)
            .expect("a wanted feed renders");
        assert!(rep.body.starts_with(b"<?xml"));
        abandoned.cancel();
        let gone = work.render(&store, &abandoned);
        assert!(matches!(gone, Err(ServeError::Abandoned)), "{gone:?}");
    }
}
