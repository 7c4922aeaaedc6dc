//! Live configuration: watches every configuration file and the sources folder, and
//! listens for SIGHUP; on either it reads and validates the configuration again. A
//! valid configuration is published on a `watch` channel for the scheduler and the
//! server; an invalid one is logged, every problem with file:line:column, and the
//! running configuration stays. What a new configuration changes is up to the
//! receivers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::{Config, ConfigError};

/// Quiet time after the last file event before the configuration is read again, so an
/// editor's save (write, rename, chmod) or a `git pull` touching several files makes
/// one reload.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Why live reload could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot watch the configuration files")]
    Watch(#[source] notify::Error),
    #[error("cannot listen for SIGHUP")]
    Signal(#[source] std::io::Error),
}

/// Reads the configuration at `path` again on demand and publishes it when valid.
#[derive(Debug, Clone)]
pub struct Reloader {
    path: PathBuf,
    tx: Arc<watch::Sender<Arc<Config>>>,
}

impl Reloader {
    /// A reloader for the configuration at `path`, starting from `initial`.
    pub fn new(path: &Path, initial: Arc<Config>) -> Self {
        let (tx, _) = watch::channel(initial);
        Self {
            path: path.to_owned(),
            tx: Arc::new(tx),
        }
    }

    /// A receiver of every configuration published from now on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.tx.subscribe()
    }

    /// The configuration in force.
    pub fn current(&self) -> Arc<Config> {
        self.tx.borrow().clone()
    }

    /// Reads and validates the configuration; publishes it and answers true when it is
    /// valid, logs every problem and keeps the running one otherwise. `why` is logged.
    pub async fn reload(&self, why: &str) -> bool {
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || Config::load(&path)).await;
        match loaded {
            Ok(Ok(config)) => {
                info!(
                    trigger = why,
                    sources = config.sources.len(),
                    categories = config.categories.len(),
                    "configuration reloaded"
                );
                self.tx.send_replace(Arc::new(config));
                true
            }
            Ok(Err(ConfigError::Invalid(diags))) => {
                for d in &diags {
                    error!(
                        file = %d.file.display(),
                        line = d.line,
                        column = d.column,
                        help = d.help.as_deref().unwrap_or(""),
                        "{}:{}:{}: {}",
                        d.file.display(),
                        d.line,
                        d.column,
                        d.message
                    );
                }
                error!(
                    trigger = why,
                    problems = diags.len(),
                    "configuration invalid; the running configuration stays"
                );
                false
            }
            Ok(Err(err @ ConfigError::Unreadable { .. })) => {
                let cause = std::error::Error::source(&err)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                error!(trigger = why, error = %err, %cause,
                    "configuration unreadable; the running configuration stays");
                false
            }
            Err(join) => {
                error!(trigger = why, error = %join, "configuration reload failed");
                false
            }
        }
    }
}

/// Starts live reload of the configuration at `path` (already loaded as `initial`):
/// file changes (debounced) and SIGHUP re-read it until `shutdown` is cancelled. Returns
/// the receiver of the live configuration and the watching task. Needs a tokio runtime.
pub fn watch_config(
    path: &Path,
    initial: Arc<Config>,
    shutdown: CancellationToken,
) -> Result<(watch::Receiver<Arc<Config>>, JoinHandle<()>), ReloadError> {
    let reloader = Reloader::new(path, initial);
    let rx = reloader.subscribe();
    let (events_tx, events) = mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // The receiver is gone only when the task ended; nothing left to tell.
        let _ = events_tx.send(event);
    })
    .map_err(ReloadError::Watch)?;
    let sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(ReloadError::Signal)?;
    let mut watch = FileWatch {
        watcher,
        dirs: BTreeSet::new(),
    };
    watch.follow(&reloader.current());
    let task = tokio::spawn(watch_loop(reloader, watch, events, sighup, shutdown));
    Ok((rx, task))
}

/// The folders being watched and the watcher itself (dropping it stops watching).
struct FileWatch {
    watcher: notify::RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
}

impl FileWatch {
    /// Watches the folders of every file of `config` and its sources folder, and stops
    /// watching folders no longer needed. Folders are watched rather than files so an
    /// editor that saves by renaming a new file over the old one is still seen.
    fn follow(&mut self, config: &Config) {
        let mut wanted: BTreeSet<PathBuf> = config
            .files
            .iter()
            .filter_map(|f| f.parent().map(absolute))
            .collect();
        wanted.extend(config.sources_dir.as_deref().map(absolute));
        for gone in self.dirs.difference(&wanted) {
            let _ = self.watcher.unwatch(gone);
        }
        for dir in wanted.difference(&self.dirs) {
            match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => debug!(dir = %dir.display(), "watching configuration folder"),
                Err(err) => {
                    warn!(dir = %dir.display(), error = %err, "cannot watch configuration folder")
                }
            }
        }
        self.dirs = wanted;
    }
}

async fn watch_loop(
    reloader: Reloader,
    mut watch: FileWatch,
    mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    mut sighup: tokio::signal::unix::Signal,
    shutdown: CancellationToken,
) {
    loop {
        let trigger = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = sighup.recv() => "SIGHUP",
            event = events.recv() => {
                let Some(event) = event else { return };
                if !is_relevant(event, &reloader.current()) {
                    continue;
                }
                // Wait for the files to settle. Only changes to configuration files
                // restart the wait: a log file or reader in the same folder must not
                // hold the reload back forever.
                let quiet = tokio::time::sleep(DEBOUNCE);
                tokio::pin!(quiet);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = &mut quiet => break,
                        more = events.recv() => match more {
                            None => return,
                            Some(more) => {
                                if is_relevant(more, &reloader.current()) {
                                    quiet.as_mut().reset(tokio::time::Instant::now() + DEBOUNCE);
                                }
                            }
                        },
                    }
                }
                "file change"
            }
        };
        if reloader.reload(trigger).await {
            watch.follow(&reloader.current());
        }
    }
}

/// Whether a file event may change the configuration: a change to one of its files, or
/// a TOML file appearing or going in a watched folder (a new or removed source file).
fn is_relevant(event: notify::Result<notify::Event>, config: &Config) -> bool {
    let event = match event {
        Ok(event) => event,
        Err(err) => {
            warn!(error = %err, "configuration watch error");
            return false;
        }
    };
    if matches!(event.kind, EventKind::Access(_)) {
        return false;
    }
    let known: BTreeSet<PathBuf> = config.files.iter().map(|f| absolute(f)).collect();
    event
        .paths
        .iter()
        .any(|p| known.contains(&absolute(p)) || p.extension().is_some_and(|ext| ext == "toml"))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
