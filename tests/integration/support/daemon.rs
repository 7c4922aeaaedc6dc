//! A bantin process for tests that run the binary as an operator would: started on a
//! free port, polled over HTTP until it has done something, stopped with a signal.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest wait for something the daemon should do within a few ticks.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Copies a fixture folder, e.g. into a temporary one a test may edit.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `bantin run` (or another long-running command) as a child process, its stderr in a
/// log file, its stdout read line by line, its server at `base`. Killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    pub base: String,
    pub stdout: StdoutLines,
}

/// A child's stdout, read on a thread so that a test can wait for a line with a deadline.
pub struct StdoutLines(mpsc::Receiver<String>);

impl StdoutLines {
    fn of(child: &mut Child) -> StdoutLines {
        let out = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        StdoutLines(rx)
    }

    /// The lines printed up to and with the first that contains `what`; panics if none
    /// comes within [`PATIENCE`].
    pub fn until(&self, what: &str) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(what);
                    lines.push(line);
                    if found {
                        return lines;
                    }
                }
                Err(_) => panic!("no line with {what:?} on stdout; got {lines:#?}"),
            }
        }
    }
}

impl Daemon {
    pub fn start(config: &Path, port: u16, log: PathBuf) -> Daemon {
        Daemon::start_with(config, port, log, &[])
    }

    /// `bantin run` with `args` after it.
    pub fn start_with(config: &Path, port: u16, log: PathBuf, args: &[&str]) -> Daemon {
        Daemon::command(config, port, log, &[&["run"], args].concat())
    }

    /// `bantin --config <config>` with `args` (the command and its options), serving on
    /// `port` if the command serves.
    pub fn command(config: &Path, port: u16, log: PathBuf, args: &[&str]) -> Daemon {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin!("bantin"));
        command
            .args(["--config", config.to_str().unwrap()])
            .args(args)
            .env("RUST_LOG", "bantin=info");
        Daemon::spawn(command, port, log)
    }

    /// Starts `command` (a `bantin` command line), its server expected on `port`.
    pub fn spawn(mut command: Command, port: u16, log: PathBuf) -> Daemon {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("bantin starts");
        Daemon {
            stdout: StdoutLines::of(&mut child),
            child,
            log,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = reqwest::get(format!("{}{path}", self.base)).await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// Waits until `path` answers 200 with a body for which `ok` holds.
    pub async fn wait_for(&self, path: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        let mut last = None;
        loop {
            if let Some((status, body)) = self.get(path).await {
                if status == 200 && ok(&body) {
                    return body;
                }
                last = Some((status, body));
            }
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {what} at {path}; last answer: {last:?}\ndaemon log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn stop(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.wait_exit().await
    }

    /// Sends a signal by name, e.g. `TERM`.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([format!("-{name}").as_str(), &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits (up to [`PATIENCE`]) for the process to exit.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < PATIENCE, "did not stop:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The item titles of an RSS document.
pub fn titles(rss: &str) -> Vec<String> {
    rss::Channel::read_from(rss.as_bytes())
        .expect("served RSS parses")
        .items()
        .iter()
        .filter_map(|i| i.title().map(str::to_owned))
        .collect()
}

/// The value of an unlabelled (or fully labelled) sample in Prometheus text.
pub fn metric(text: &str, sample: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {sample} in:\n{text}"))
        .parse()
        .expect("a counter is a whole number")
}
