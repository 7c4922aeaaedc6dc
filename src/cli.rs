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
    /// Show how an article is categorized: which rule matched which words, and why
    /// the others did not.
    Classify {
        /// A stored item id, or a JSON article file (`title`, `lead`, `body_text`).
        #[arg(long, value_name = "ID|FILE")]
        explain: String,
    },
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
        Command::Classify { explain } => classify_explain(&cli.config, &explain),
    }
}

/// Reads and validates the configuration.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

fn classify_explain(path: &Path, target: &str) -> anyhow::Result<ExitCode> {
    use crate::store::Store;
    let config = load_config(path).with_context(|| format!("loading {}", path.display()))?;
    let file = Path::new(target);
    let article = if file.is_file() {
        if file.extension().is_some_and(|e| e != "json") {
            return Err(UsageError(format!(
                "{target}: only JSON article files and stored item ids can be explained"
            ))
            .into());
        }
        let json = std::fs::read_to_string(file).with_context(|| format!("reading {target}"))?;
        crate::classify::article_from_json(&json)
            .with_context(|| format!("{target} is not a JSON article"))?
    } else {
        let db = config.database_path();
        let store = crate::store::SqliteStore::open(&db, config.settings.near_duplicate_distance)
            .with_context(|| format!("opening {}", db.display()))?;
        let id = crate::model::ItemId(target.to_owned());
        store
            .item(&id)?
            .ok_or_else(|| UsageError(format!("no file and no stored item {target:?}")))?
            .article
    };
    print!(
        "{}",
        crate::classify::render_explanation(&article, &config.categories)
    );
    Ok(ExitCode::SUCCESS)
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
