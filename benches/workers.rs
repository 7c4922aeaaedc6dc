//! Crawl throughput of 1, 2 and 4 `bantin run` workers sharing one PostgreSQL database,
//! on a local site that answers every request after 100 ms: one source per host (a
//! port of 127.0.0.1 each), so per-host politeness is not the limit; each worker may
//! have a few requests in flight at once (`global_concurrency`), as a worker on a
//! machine of its own would. Prints articles/s per worker count and the scaling ratio
//! against one worker (the goal: 4 workers at least 3× one).
//!
//! `cargo bench --bench workers -- [SOURCES] [--postgres URL]` (default 48 sources of
//! 10 articles, on `postgres://bantin:bantin@127.0.0.1:5432/postgres`, a role that may
//! create databases: each measurement gets a database of its own, dropped after it).

#[path = "../tests/integration/support/news_pages.rs"]
mod news_pages;
// Shared with the tests; the pages need only part of it.
#[allow(dead_code)]
#[path = "../tests/integration/support/synthetic.rs"]
mod synthetic;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{Html, IntoResponse, Response};

const DEFAULT_POSTGRES: &str = "postgres://bantin:bantin@127.0.0.1:5432/postgres";
const DEFAULT_SOURCES: usize = 48;
const ARTICLES_PER_SOURCE: usize = 10;
/// How long the site takes to answer any request.
const ANSWER_DELAY: Duration = Duration::from_millis(100);
/// Requests in flight at once per worker.
const GLOBAL_CONCURRENCY: usize = 4;
const WORKER_COUNTS: [usize; 3] = [1, 2, 4];
/// Longest a measurement may take before the bench gives up.
const PATIENCE: Duration = Duration::from_secs(300);

/// The pages of one host, and when the site was first asked anything.
struct HostPages {
    pages: HashMap<String, String>,
    first_request: Arc<Mutex<Option<Instant>>>,
}

async fn answer(State(host): State<Arc<HostPages>>, uri: Uri) -> Response {
    host.first_request
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    tokio::time::sleep(ANSWER_DELAY).await;
    match host.pages.get(uri.path()) {
        Some(page) => Html(page.clone()).into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// Serves source `n`'s listing and articles on a port of its own, for every `n`.
async fn serve_hosts(sources: usize, first_request: &Arc<Mutex<Option<Instant>>>) -> Vec<u16> {
    let mut ports = Vec::new();
    for n in 0..sources {
        let mut pages = HashMap::new();
        pages.insert(
            news_pages::listing_path(n),
            news_pages::listing(n, ARTICLES_PER_SOURCE),
        );
        for k in 0..ARTICLES_PER_SOURCE {
            pages.insert(news_pages::article_path(n, k), news_pages::article(n, k));
        }
        let host = Arc::new(HostPages {
            pages,
            first_request: first_request.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.push(listener.local_addr().unwrap().port());
        let app = Router::new().fallback(answer).with_state(host);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    }
    ports
}

/// A worker's configuration folder: its own port and feeds, the shared database and
/// sources.
fn write_config(dir: &Path, listen_port: u16, database: &str, ports: &[u16]) {
    std::fs::create_dir_all(dir.join("sources")).unwrap();
    let settings = format!(
        "database_url = {database:?}\nlisten = \"127.0.0.1:{listen_port}\"\n\
         user_agent = \"bantin-bench\"\nworkers = {{ lease = \"10s\" }}\n\n[fetch]\n\
         allow_private_networks = true\nobey_robots = false\nper_host_delay = \"0s\"\n\
         per_host_concurrency = 2\nglobal_concurrency = {GLOBAL_CONCURRENCY}\nmax_retries = 0\n"
    );
    std::fs::write(dir.join("bantin.toml"), settings).unwrap();
    std::fs::write(dir.join("categories.toml"), "").unwrap();
    let sources: String = ports
        .iter()
        .enumerate()
        .map(|(n, port)| {
            let url = format!("http://127.0.0.1:{port}{}", news_pages::listing_path(n));
            news_pages::source_toml(&format!("src-{n}"), &url, "*/10 * * * * *")
        })
        .collect();
    std::fs::write(dir.join("sources/bench.toml"), sources).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A database of its own for one measurement, dropped with this value.
struct BenchDatabase {
    admin: String,
    name: String,
    url: String,
}

impl BenchDatabase {
    fn create(admin: &str, name: &str) -> BenchDatabase {
        let mut client = postgres::Client::connect(admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e}"));
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let mut url = url::Url::parse(admin).unwrap();
        url.set_path(name);
        BenchDatabase {
            admin: admin.to_owned(),
            name: name.to_owned(),
            url: url.to_string(),
        }
    }

    /// Stored items, once the schema exists.
    fn items(&self) -> i64 {
        postgres::Client::connect(&self.url, postgres::NoTls)
            .ok()
            .and_then(|mut c| c.query_one("SELECT count(*) FROM items", &[]).ok())
            .map_or(0, |row| row.get(0))
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Crawls every source with `workers` processes; returns the seconds from the site's
/// first request to the last article stored.
fn measure(workers: usize, sources: usize, admin: &str, rt: &tokio::runtime::Runtime) -> f64 {
    let db = BenchDatabase::create(admin, &format!("bantin_bench_workers_{workers}"));
    let first_request = Arc::new(Mutex::new(None));
    let ports = rt.block_on(serve_hosts(sources, &first_request));
    let dirs = tempfile::tempdir().unwrap();
    let mut children: Vec<Child> = (0..workers)
        .map(|w| {
            let dir = dirs.path().join(format!("worker-{w}"));
            write_config(&dir, free_port(), &db.url, &ports);
            Command::new(env!("CARGO_BIN_EXE_bantin"))
                .args(["--config", dir.join("bantin.toml").to_str().unwrap(), "run"])
                .env("RUST_LOG", "bantin=warn")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("log")).unwrap())
                .spawn()
                .expect("bantin starts")
        })
        .collect();
    let total = (sources * ARTICLES_PER_SOURCE) as i64;
    let start = Instant::now();
    while db.items() < total {
        assert!(
            start.elapsed() < PATIENCE,
            "{workers} workers stored {} of {total}",
            db.items()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = Instant::now();
    for child in &mut children {
        let _ = Command::new("kill").arg(child.id().to_string()).status();
    }
    for child in &mut children {
        let _ = child.wait();
    }
    let first = first_request.lock().unwrap().expect("the site was asked");
    (done - first).as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let admin = args
        .iter()
        .position(|a| a == "--postgres")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| DEFAULT_POSTGRES.to_owned());
    let sources = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(DEFAULT_SOURCES);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let articles = (sources * ARTICLES_PER_SOURCE) as f64;
    println!(
        "{sources} sources on {sources} hosts, {ARTICLES_PER_SOURCE} articles each, every answer after {} ms, {GLOBAL_CONCURRENCY} requests in flight per worker",
        ANSWER_DELAY.as_millis()
    );
    println!("workers  seconds  articles/s  × one worker");
    let mut one = None;
    for workers in WORKER_COUNTS {
        let seconds = measure(workers, sources, &admin, &rt);
        let rate = articles / seconds;
        let base = *one.get_or_insert(rate);
        println!(
            "{workers:>7}  {seconds:>7.2}  {rate:>10.1}  {:>11.2}",
            rate / base
        );
    }
}
