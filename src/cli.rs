//! The command line: subcommands, their arguments, and what each one runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Config;

/// Turns news websites into clean, deduplicated RSS, Atom and JSON feeds per category.
#[derive(Debug, Parser)]
#[command(name = "bantin", version, about)]
pub struct Cli {
    /// The daemon's settings file; source and category files are found relative to it.
    #[arg(
        long,
        global = true,
        env = "BANTIN_CONFIG",
        default_value = "config/bantin.toml"
    )]
    pub config: PathBuf,
    /// Log format on stderr. Filter with RUST_LOG, e.g. RUST_LOG=bantin=debug.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines, coloured on a terminal.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration and print every problem with file:line:column.
    Check,
    /// Re-render every feed from the store; write the files that changed.
    Publish,
    /// Serve the feeds, the index page, /healthz and /metrics until stopped.
    Serve,
}

/// A command line that is well-formed for clap but asks for something impossible.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Starts `tracing`: human or JSON lines on stderr, filtered by `RUST_LOG`.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs one command to completion.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check => check(&cli.config),
        Command::Publish => publish(&cli.config),
        Command::Serve => serve(&cli.config),
    }
}

/// Reads and validates the configuration.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(path).with_context(|| format!("checking {}", path.display()))?;
    println!(
        "{}: ok ({} sources, {} categories)",
        path.display(),
        config.sources.len(),
        config.categories.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn open_store(config: &Config) -> anyhow::Result<crate::store::SqliteStore> {
    let path = config.database_path();
    crate::store::SqliteStore::open(&path, config.settings.near_duplicate_distance)
        .with_context(|| format!("opening the store at {}", path.display()))
}

fn publish(path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    let store = open_store(&config)?;
    let report = crate::publish::publish_all(&config, &store).with_context(|| {
        format!(
            "publishing feeds to {}",
            config.settings.feeds_dir.display()
        )
    })?;
    println!(
        "{}: {} feed(s) changed, {} file(s) already current",
        config.settings.feeds_dir.display(),
        report.changed.len(),
        report.unchanged_files
    );
    if !report.changed.is_empty() && config.settings.websub_hub.is_some() {
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        if let Err(error) =
            runtime.block_on(crate::publish::websub::notify_changes(&config, &report))
        {
            // The feeds are published; a hub that missed the news is worth a log line.
            tracing::error!(error = %crate::serve::error_chain(&error), "websub hub not notified");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(path: &Path) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    let store = std::sync::Arc::new(open_store(&config)?);
    crate::publish::publish_all(&config, store.as_ref()).with_context(|| {
        format!(
            "publishing feeds to {}",
            config.settings.feeds_dir.display()
        )
    })?;
    let listen = config.settings.listen;
    let state = crate::serve::AppState::new(
        std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(config)),
        store,
        std::sync::Arc::new(crate::serve::Metrics::new()),
    );
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        tokio::spawn(crate::serve::cancel_on_signal(shutdown.clone()));
        crate::serve::serve(listener, state, shutdown)
            .await
            .context("serving feeds")
    })?;
    Ok(ExitCode::SUCCESS)
}
