//! The `bantin` binary: parse the command line, start logging, run the command, and
//! map the outcome to an exit code (0 ok, 1 runtime failure, 2 bad usage or config).

use std::process::ExitCode;

use bantin::cli::{self, Cli, UsageError};
use bantin::config::ConfigError;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging(cli.log_format, cli.command.default_log_level());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            if let Some(ConfigError::Invalid(diags)) = err.downcast_ref::<ConfigError>() {
                for diag in diags {
                    eprintln!("{diag}");
                }
                eprintln!("{} problem(s) found; nothing was run", diags.len());
                return ExitCode::from(2);
            }
            if let Some(ConfigError::Unreadable { .. }) = err.downcast_ref::<ConfigError>() {
                eprintln!("error: {err:#}");
                eprintln!(
                    "  help: name the settings file with --config PATH or the BANTIN_CONFIG \
                     environment variable (default: config/bantin.toml, relative to the \
                     current folder)"
                );
                return ExitCode::from(2);
            }
            eprintln!("error: {err:#}");
            if err.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
