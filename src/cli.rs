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
    /// Extract saved pages and print each as one line of JSON.
    Preview(PreviewArgs),
}

#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// Saved HTML files (or page addresses) to extract.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<String>,
    /// The address the saved files were downloaded from; relative links resolve against it.
    #[arg(long)]
    pub url: Option<url::Url>,
    /// Apply this source's selectors and time zone from the configuration.
    #[arg(long, value_name = "ID")]
    pub source: Option<String>,
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
        Command::Preview(args) => preview(&cli.config, &args),
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

fn preview(config_path: &Path, args: &PreviewArgs) -> anyhow::Result<ExitCode> {
    let (rules, tz) = match &args.source {
        Some(id) => {
            let config = load_config(config_path)
                .with_context(|| format!("loading {}", config_path.display()))?;
            let source = config.source(id).ok_or_else(|| {
                UsageError(format!("no source {id:?} in {}", config_path.display()))
            })?;
            (source.extract.clone(), source.timezone)
        }
        None => match Config::load(config_path) {
            Ok(config) => (Default::default(), config.settings.timezone),
            Err(_) => (Default::default(), chrono_tz::Asia::Ho_Chi_Minh),
        },
    };
    let mut out = std::io::stdout().lock();
    let failed =
        crate::extract::preview::preview_all(&args.inputs, args.url.as_ref(), &rules, tz, &mut out);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
