//! A bantin server on 127.0.0.1:0 over published feeds and a real store.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bantin::metrics::Metrics;
use bantin::publish;
use bantin::serve::{self, AppState};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::feeds::FeedEnv;

pub struct TestServer {
    pub base: Url,
    pub env: FeedEnv,
    shutdown: CancellationToken,
}

impl TestServer {
    /// Publishes `env`'s items (with `base_url` set to the server's address) and serves.
    pub async fn start(mut env: FeedEnv) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        env.config.settings.base_url = base.clone();
        publish::publish_all(&env.config, env.store.as_ref()).expect("publish");
        let state = AppState::new(
            Arc::new(ArcSwap::from_pointee(env.config.clone())),
            env.store.clone(),
            Arc::new(Metrics::new()),
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(serve::serve(listener, state, shutdown.clone()));
        TestServer {
            base,
            env,
            shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    /// Sends `request_line` as-is over a fresh TCP connection and returns the status.
    pub async fn raw_status(&self, request_line: &str) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = format!(
            "{}:{}",
            self.base.host_str().unwrap(),
            self.base.port().unwrap()
        );
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("{request_line}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8_lossy(&response);
        text.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
