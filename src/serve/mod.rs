//! The HTTP server (axum): published feeds with caching headers, filtered feeds
//! rendered from the store, the human index page, `/healthz` and `/metrics`. It reads
//! the feeds folder and the store; it never crawls or writes.

pub mod caching;
pub mod index;
pub mod metrics;
mod routes;

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::Store;
use caching::FileCache;
pub use metrics::Metrics;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The running configuration; live reload swaps it and the next request sees it.
    pub config: Arc<ArcSwap<Config>>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    files: Arc<FileCache>,
}

impl AppState {
    pub fn new(
        config: Arc<ArcSwap<Config>>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> AppState {
        AppState {
            config,
            store,
            metrics,
            files: Arc::new(FileCache::default()),
        }
    }
}

/// Every route of the server, with compression and request counting.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

/// Serves until `shutdown` is cancelled, then stops accepting and lets requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving feeds");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
