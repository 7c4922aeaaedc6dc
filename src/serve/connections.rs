//! Accepting and keeping connections: the server's defence against slow and idle
//! clients. Every connection gets hyper's header-read timeout, an idle timeout between
//! requests and a place under the connection cap; when the cap is reached, the
//! connection idle the longest (a slow client still sending its headers, or a kept-alive
//! one between requests) is closed to make room. What a request does is `routes`'.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use super::App;
use crate::config::ServerSettings;

/// Open files kept free of connections for everything else the process does (the
/// store, publishing's temporary files, outbound fetches, the configuration watcher):
/// a quarter of the open-files limit, up to this many.
const RESERVED_FILES: u64 = 256;
/// The connection cap when `max_connections` is not set and the open-files limit
/// allows it.
const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Fewest connections the cap is lowered to, however small the open-files limit.
const MIN_CONNECTIONS: usize = 16;
/// How long a new connection waits for the place of the connection closed for it.
const EVICTION_WAIT: Duration = Duration::from_secs(1);
/// Pause after a failed accept (out of open files, say) so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Serves `app` on `listener`, at most `cap` connections at once, until `shutdown` is
/// cancelled, then stops accepting, lets requests in flight finish and returns.
pub async fn serve(
    listener: TcpListener,
    app: App,
    settings: &ServerSettings,
    cap: usize,
    shutdown: CancellationToken,
) {
    let connections = Arc::new(Connections::new(cap));
    let http = Arc::new(http_builder(settings));
    let tasks = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let Some(place) = connections.admit().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tasks.spawn(serve_connection(
            stream,
            app.clone(),
            place,
            http.clone(),
            settings.clone(),
            shutdown.clone(),
        ));
        // Lets the new connection read the request it may have sent already before the
        // next one can push it out as the longest idle; under a flood of connections
        // accepting would otherwise outrun every connection's first read.
        tokio::task::yield_now().await;
    }
    tasks.close();
    tasks.wait().await;
    let stats = &connections.stats;
    info!(
        accepted = stats.accepted.load(Ordering::Relaxed),
        closed_for_room = stats.evicted.load(Ordering::Relaxed),
        refused = stats.refused.load(Ordering::Relaxed),
        "server stopped"
    );
}

/// The connection cap: `configured`, or [`DEFAULT_MAX_CONNECTIONS`], lowered so that
/// a reserve of the process's open-files limit (see [`RESERVED_FILES`]) stays free.
pub fn connection_cap(configured: Option<usize>) -> usize {
    let wanted = configured.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    let room = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| {
            let reserve = (soft / 4).min(RESERVED_FILES);
            usize::try_from(soft - reserve).unwrap_or(usize::MAX)
        });
    match room {
        Some(room) if room < wanted => {
            let cap = room.max(MIN_CONNECTIONS);
            if configured.is_some() {
                warn!(
                    max_connections = wanted,
                    cap, "max_connections lowered to fit the open-files limit"
                );
            }
            cap
        }
        _ => wanted,
    }
}

fn http_builder(settings: &ServerSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// One connection, until it ends, is closed for room, stays idle too long, or drains
/// after `shutdown`.
async fn serve_connection(
    stream: TcpStream,
    app: App,
    place: Place,
    http: Arc<auto::Builder<TokioExecutor>>,
    settings: ServerSettings,
    shutdown: CancellationToken,
) {
    let activity = place.activity.clone();
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let request_guard = activity.start_request();
        let app = app.clone();
        async move {
            let response = app.oneshot(request.map(axum::body::Body::new)).await;
            drop(request_guard);
            response
        }
    });
    let connection = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
    let activity = &place.activity;
    // Made once per connection, not once per request: a request wakes none of these,
    // the idle check looks at the request times only when its timer fires.
    let closed_for_room = activity.close.cancelled();
    let stopping = shutdown.cancelled();
    let idle_check = tokio::time::sleep_until(activity.next_idle_check(&settings));
    tokio::pin!(connection, closed_for_room, stopping, idle_check);
    let mut draining = false;
    loop {
        tokio::select! {
            biased;
            ended = connection.as_mut() => {
                if let Err(err) = ended {
                    debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            _ = &mut closed_for_room => {
                debug!("closed an idle connection to make room for a new one");
                return;
            }
            _ = idle_check.as_mut() => {
                if activity.idle_too_long(&settings) {
                    debug!("closed a connection idle for too long");
                    return;
                }
                idle_check.as_mut().reset(activity.next_idle_check(&settings));
            }
            // A connection without a request in flight has nothing to finish: a slow
            // client must not hold shutdown up until its header-read timeout.
            _ = &mut stopping, if !draining => {
                if activity.in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}

/// Counts of what the connection cap did.
#[derive(Debug, Default)]
struct ConnectionStats {
    accepted: AtomicU64,
    /// Idle or slow connections closed to make room for a new one.
    evicted: AtomicU64,
    /// New connections turned away because every open one was busy.
    refused: AtomicU64,
}

/// The open connections and their places under the cap.
struct Connections {
    places: Arc<Semaphore>,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
    stats: ConnectionStats,
}

/// What one connection is doing, as the cap and the idle timeout see it. A request
/// counts as in flight until its answer's headers are ready; sending the body does not,
/// so a client that reads too slowly is as idle as one that writes too slowly.
struct Activity {
    in_flight: AtomicUsize,
    /// Whether a request has started; before that the header-read timeout is its limit.
    served: AtomicBool,
    /// When it last had no request in flight: its accept, or its last answer.
    idle_since: Mutex<Instant>,
    close: CancellationToken,
}

/// A connection's place under the cap, given back when the connection ends.
struct Place {
    id: u64,
    activity: Arc<Activity>,
    connections: Arc<Connections>,
    _permit: OwnedSemaphorePermit,
}

/// Marks a request in flight on its connection until dropped.
struct RequestGuard(Arc<Activity>);

impl Connections {
    fn new(cap: usize) -> Connections {
        Connections {
            places: Arc::new(Semaphore::new(cap)),
            open: Mutex::default(),
            next_id: AtomicU64::new(0),
            stats: ConnectionStats::default(),
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.open
            .lock()
            .expect("connection table lock is not poisoned")
    }

    /// A place for a new connection: a free one, or the place of the connection idle the
    /// longest, closed for it. `None` when every open connection is busy.
    async fn admit(self: &Arc<Self>) -> Option<Place> {
        let permit = match self.places.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) if self.close_longest_idle() => {
                tokio::time::timeout(EVICTION_WAIT, self.places.clone().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            Err(_) => None,
        };
        let Some(permit) = permit else {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            debug!("refused a connection: every open connection is busy");
            return None;
        };
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since: Mutex::new(Instant::now()),
            close: CancellationToken::new(),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open().insert(id, activity.clone());
        Some(Place {
            id,
            activity,
            connections: self.clone(),
            _permit: permit,
        })
    }

    /// Closes the connection without a request in flight that has waited the longest;
    /// false when there is none.
    fn close_longest_idle(&self) -> bool {
        let open = self.open();
        let longest = open
            .values()
            .filter(|a| a.in_flight.load(Ordering::SeqCst) == 0 && !a.close.is_cancelled())
            .min_by_key(|a| a.idle_since());
        let Some(activity) = longest else {
            return false;
        };
        activity.close.cancel();
        let evicted = self.stats.evicted.fetch_add(1, Ordering::Relaxed);
        if evicted == 0 {
            warn!("connection cap reached: closing idle connections to make room");
        }
        true
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.connections.open().remove(&self.id);
    }
}

impl Activity {
    fn idle_since(&self) -> Instant {
        *self
            .idle_since
            .lock()
            .expect("idle time lock is not poisoned")
    }

    fn start_request(self: &Arc<Self>) -> RequestGuard {
        self.served.store(true, Ordering::SeqCst);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        RequestGuard(self.clone())
    }

    /// How long the connection may stay without a request: a first request must come
    /// within the header-read timeout (hyper's own timer starts only once it knows the
    /// protocol), later ones within the idle timeout.
    fn allowed_idle(&self, settings: &ServerSettings) -> Duration {
        if self.served.load(Ordering::SeqCst) {
            settings.idle_timeout
        } else {
            settings.header_read_timeout
        }
    }

    /// When to look again whether the connection has been idle too long. Requests do
    /// not wake the connection, so it looks at least once per the shorter of the two
    /// limits: a request that came and went between two looks is then timed by the
    /// idle timeout, not by the longer header-read timeout armed before it.
    fn next_idle_check(&self, settings: &ServerSettings) -> Instant {
        let look = settings.idle_timeout.min(settings.header_read_timeout);
        let now = Instant::now();
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return now + look;
        }
        (self.idle_since() + self.allowed_idle(settings)).min(now + look)
    }

    fn idle_too_long(&self, settings: &ServerSettings) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
            && self.idle_since().elapsed() >= self.allowed_idle(settings)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        // The time is set first, so a connection seen idle never has a stale time.
        *self
            .0
            .idle_since
            .lock()
            .expect("idle time lock is not poisoned") = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
