//! Slow clients against `bantin serve`: the server runs as its own process with an
//! open-files limit of 1,024 and its default `[server]` settings; 1,100 clients connect,
//! send half a request and fall silent. Meanwhile `/healthz` is asked over fresh
//! connections and `bantin publish` runs once. Prints healthz latency (p50, p99, max),
//! failed health checks, the publish's outcome, and what the server's connection cap
//! did (connections accepted, closed to make room, refused).
//!
//! `cargo bench --bench slow_clients -- [SLOW_CLIENTS] [--reconnect]` (default 1100;
//! with `--reconnect` a client connects again as soon as the server closes it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The server's open-files limit, as in the report of the attack.
const SERVER_FILES: u32 = 1024;
const HEALTH_CHECKS: usize = 200;
const HEALTH_CHECK_EVERY: Duration = Duration::from_millis(25);
/// A health check slower than this counts as failed.
const HEALTH_DEADLINE: Duration = Duration::from_secs(5);
/// What a slow client sends before falling silent.
const SLOW_HEAD: &[u8] = b"GET /feeds/all.rss HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Waiting: ";

#[derive(Default)]
struct Attack {
    connected: AtomicUsize,
    dropped: AtomicUsize,
    failed_connects: AtomicUsize,
    stop: CancellationToken,
}

fn write_config(dir: &Path, addr: SocketAddr) -> PathBuf {
    std::fs::create_dir_all(dir.join("sources")).expect("config folder");
    std::fs::write(dir.join("categories.toml"), "").expect("categories.toml");
    let toml = dir.join("bantin.toml");
    std::fs::write(
        &toml,
        format!("data_dir = \"data\"\nfeeds_dir = \"feeds\"\nlisten = \"{addr}\"\n"),
    )
    .expect("bantin.toml");
    toml
}

fn start_server(config: &Path, log: &Path) -> Child {
    Command::new("sh")
        .args([
            "-c",
            &format!("ulimit -n {SERVER_FILES} && exec \"$0\" --config \"$1\" serve"),
        ])
        .arg(env!("CARGO_BIN_EXE_bantin"))
        .arg(config)
        .env("RUST_LOG", "bantin=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("sh starts bantin serve")
}

/// `GET /healthz` over a fresh connection: its time, if it answered 200 in time.
async fn health_check(addr: SocketAddr) -> Option<Duration> {
    let start = Instant::now();
    let ask = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        stream.write_all(request).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        answer.starts_with(b"HTTP/1.1 200").then_some(())
    };
    tokio::time::timeout(HEALTH_DEADLINE, ask).await.ok()??;
    Some(start.elapsed())
}

async fn slow_client(addr: SocketAddr, attack: Arc<Attack>, reconnect: bool) {
    while !attack.stop.is_cancelled() {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            attack.failed_connects.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if stream.write_all(SLOW_HEAD).await.is_ok() {
            attack.connected.fetch_add(1, Ordering::Relaxed);
        }
        let mut buf = [0u8; 256];
        tokio::select! {
            _ = attack.stop.cancelled() => return,
            _ = stream.read(&mut buf) => {
                attack.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if !reconnect {
            attack.stop.cancelled().await;
            return;
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn wait_for_server(addr: SocketAddr, server: &mut Child) {
    let start = Instant::now();
    while health_check(addr).await.is_none() {
        assert!(server.try_wait().unwrap().is_none(), "bantin serve exited");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "bantin serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let clients: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(1100);
    let reconnect = args.iter().any(|a| a == "--reconnect");
    // This process holds every slow client's socket.
    rlimit::increase_nofile_limit(clients as u64 + 1024).expect("raise own open-files limit");

    let dir = tempfile::tempdir().expect("temp dir");
    let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let config = write_config(dir.path(), addr);
    let log = dir.path().join("serve.log");
    let mut server = start_server(&config, &log);
    wait_for_server(addr, &mut server).await;

    let attack = Arc::new(Attack::default());
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(slow_client(addr, attack.clone(), reconnect)))
        .collect();
    let settle = Instant::now();
    while attack.connected.load(Ordering::Relaxed) < clients && settle.elapsed().as_secs() < 30 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "{clients} slow clients connected in {} (reconnect: {reconnect}); {} closed by the server so far",
        ms(settle.elapsed()),
        attack.dropped.load(Ordering::Relaxed)
    );

    let publish = tokio::task::spawn_blocking({
        let config = config.clone();
        move || {
            std::thread::sleep(HEALTH_CHECK_EVERY * (HEALTH_CHECKS as u32 / 2));
            let start = Instant::now();
            let status = Command::new(env!("CARGO_BIN_EXE_bantin"))
                .args(["--config", config.to_str().expect("UTF-8 path"), "publish"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("bantin publish runs");
            (status, start.elapsed())
        }
    });
    let mut times = Vec::new();
    let mut failed = 0;
    for _ in 0..HEALTH_CHECKS {
        match health_check(addr).await {
            Some(t) => times.push(t),
            None => failed += 1,
        }
        tokio::time::sleep(HEALTH_CHECK_EVERY).await;
    }
    let (publish_status, publish_time) = publish.await.expect("publish task");

    attack.stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();

    times.sort();
    println!(
        "healthz under attack: {} answered, {failed} failed; p50 {}, p99 {}, max {}",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(times.last().copied().unwrap_or_default())
    );
    println!(
        "bantin publish during the attack: {publish_status} in {}",
        ms(publish_time)
    );
    println!(
        "slow clients: {} connections made, {} closed by the server, {} connects failed",
        attack.connected.load(Ordering::Relaxed),
        attack.dropped.load(Ordering::Relaxed),
        attack.failed_connects.load(Ordering::Relaxed)
    );
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    for line in log.lines().filter(|l| {
        l.contains("serving feeds") || l.contains("server stopped") || l.contains("ERROR")
    }) {
        println!("server: {line}");
    }
}
