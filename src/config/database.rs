//! `database_url`: which store bantin keeps its state in. Parsing only; opening the
//! database is the store's job.

use std::path::Path;

use toml::Spanned;

use super::Database;
use super::diag::{Diagnostics, SourceText};

/// File name of the SQLite database in `data_dir` when `database_url` is absent.
pub const SQLITE_FILE: &str = "bantin.sqlite3";

/// Builds `database_url`: absent means the SQLite file in `data_dir`; `sqlite:PATH` a
/// SQLite file (relative to the configuration folder `root`); `postgres://...` or
/// `postgresql://...` a PostgreSQL database.
pub(super) fn build_database(
    raw: Option<&Spanned<String>>,
    data_dir: &Path,
    root: &Path,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<Database> {
    let Some(raw) = raw else {
        return Some(Database::Sqlite(data_dir.join(SQLITE_FILE)));
    };
    let value = raw.get_ref().trim();
    let mut fail = |message: String, help: &str| {
        diags.error(src, raw.span(), message, Some(help.to_owned()));
        None
    };
    if let Some(path) = value.strip_prefix("sqlite:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return fail(
                "`database_url` = \"sqlite:\" names no file".into(),
                "write e.g. \"sqlite:data/bantin.sqlite3\", or leave `database_url` out",
            );
        }
        return Some(Database::Sqlite(root.join(path)));
    }
    if value.starts_with("postgres://") || value.starts_with("postgresql://") {
        // The URL parser names what is wrong (a port that is not a number, say); the
        // PostgreSQL parser then checks its own parameters.
        let problem = match url::Url::parse(value) {
            Err(e) => Some(e.to_string()),
            Ok(_) => value
                .parse::<postgres::Config>()
                .err()
                .map(|e| e.to_string()),
        };
        return match problem {
            None => Some(Database::Postgres(value.to_owned())),
            Some(problem) => fail(
                format!("`database_url` is not a PostgreSQL connection URL: {problem}"),
                "write e.g. \"postgres://bantin:PASSWORD@db.example.org:5432/bantin\"",
            ),
        };
    }
    fail(
        format!(
            "`database_url` = {:?} names neither SQLite nor PostgreSQL",
            crate::store::redact_password(value)
        ),
        "write \"sqlite:PATH\" (the default, a file) or \"postgres://user:password@host/db\"",
    )
}
