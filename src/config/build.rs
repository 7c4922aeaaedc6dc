//! Turns the raw files into runtime types, checking everything that can be checked
//! without a network and collecting every problem instead of stopping at the first.

use std::collections::HashMap;
use std::ops::DerefMut;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use regex::Regex;
use scraper::Selector;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};
use url::Url;

use super::diag::{SourceText, did_you_mean};
use super::file::{
    CategoriesFile, ExtractFile, FetchFile, LinksFile, RefreshFile, RuleFile, ServerFile,
    SettingsFile, SiteFile, Size, SourceFile, TestUrlFile,
};
use super::*;
use crate::model::ALL_CATEGORY;

/// Longest duration any setting may take; longer values are typos.
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Smallest and largest sane body limits.
const MIN_BODY_BYTES: u64 = 1024;
const MAX_BODY_BYTES: u64 = 1024 * 1024 * 1024;

pub(super) fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let root = path.parent().unwrap_or(Path::new("."));
    let mut diags = Diagnostics::default();
    let mut files = vec![path.to_owned()];
    let settings_src = SourceText {
        path: path.to_owned(),
        text,
    };
    let Some(raw) = parse::<SettingsFile>(&settings_src, &mut diags) else {
        return Err(ConfigError::Invalid(diags.into_vec()));
    };
    let settings = build_settings(&raw, root, &settings_src, &mut diags);

    let categories_path = root.join(raw.categories.get_ref());
    files.push(categories_path.clone());
    let categories = match read_file(&categories_path, &settings_src, &raw.categories, &mut diags) {
        Some(src) => parse::<CategoriesFile>(&src, &mut diags)
            .map(|f| build_categories(f, &src, &mut diags))
            .unwrap_or_default(),
        None => Vec::new(),
    };

    let mut sources = Vec::new();
    let mut seen_ids: HashMap<String, String> = HashMap::new();
    for source_path in source_paths(root, &raw.sources, &settings_src, &mut diags) {
        files.push(source_path.clone());
        let Some(src) = read_file(&source_path, &settings_src, &raw.sources, &mut diags) else {
            continue;
        };
        let Some(site) = parse::<SiteFile>(&src, &mut diags) else {
            continue;
        };
        let ctx = SiteContext {
            src: &src,
            categories: &categories,
            default_tz: settings.as_ref().map(|s| s.timezone),
        };
        sources.extend(build_site(site, &ctx, &mut seen_ids, &mut diags));
    }

    match settings {
        Some(settings) if diags.is_empty() => Ok(Config {
            settings,
            categories,
            sources,
            files,
            sources_dir: glob_prefix(&root.join(raw.sources.get_ref())),
        }),
        _ => Err(ConfigError::Invalid(diags.into_vec())),
    }
}

/// Most shape errors reported for one file; each one costs a parse of the file, so this
/// also bounds the work.
const MAX_SHAPE_ERRORS_PER_FILE: usize = 50;

/// Parses one TOML file, turning syntax and shape errors into diagnostics. Every syntax
/// error is reported. After a shape error the key or list element at fault is set aside
/// (a whole `[[array]]` table after a missing key) and the rest is checked again, so one
/// mistake does not hide the next. Errors are reported in file order, and what is left
/// once the faults are set aside is returned, so later checks still see the rest.
fn parse<T: DeserializeOwned>(src: &SourceText, diags: &mut Diagnostics) -> Option<T> {
    let (mut root, syntax_errors) = DeTable::parse_recoverable(&src.text);
    if !syntax_errors.is_empty() {
        for err in &syntax_errors {
            report_toml_error(src, err, None, None, diags);
        }
        return None;
    }
    let mut found = Vec::new();
    // Keys set aside for a wrong value, by the start of their table: the "missing key"
    // error that removing a required one brings is the same mistake, not a new one.
    let mut set_aside: Vec<(usize, String)> = Vec::new();
    // `[[array]]` tables with a fault, by where they start: every fault in one is
    // reported, then the whole table is left out, so that checks after parsing do not
    // report what a set-aside key left missing.
    let mut faulty_tables = Vec::new();
    let mut parsed = None;
    for _ in 0..MAX_SHAPE_ERRORS_PER_FILE {
        let err = match T::deserialize(toml::de::Deserializer::from(root.clone())) {
            Ok(value) => {
                parsed = Some(value);
                break;
            }
            Err(err) => err,
        };
        let at = err.span().map_or(0, |s| s.start);
        let place = locate(root.get_ref(), at);
        let missing = missing_key(err.message());
        if missing.is_none_or(|key| !set_aside.contains(&(at, key.to_owned()))) {
            let subject = place.as_ref().and_then(Place::subject);
            let home = unknown_name(err.message())
                .filter(|(field, _, _)| *field)
                .and_then(|(_, _, expected)| {
                    home_of_key::<T>(root.get_ref(), &place.as_ref()?.path, &expected)
                });
            found.push((err.clone(), subject, home));
        }
        let Some(place) = place else {
            break;
        };
        // Nothing can be removed to supply a missing key: its array table goes.
        let path = if missing.is_some() {
            place.owner.map(|owner| owner.path)
        } else {
            faulty_tables.extend(place.owner.map(|owner| owner.start));
            Some(place.path)
        };
        if let Some(Step::Key(key)) = path.as_ref().and_then(|p| p.last()) {
            set_aside.push((place.table_start, key.clone()));
        }
        if !path.is_some_and(|path| remove_at(root.get_mut(), &path)) {
            break;
        }
    }
    if parsed.is_some() && !faulty_tables.is_empty() {
        remove_tables(root.get_mut(), &faulty_tables);
        parsed = T::deserialize(toml::de::Deserializer::from(root)).ok();
    }
    found.sort_by_key(|(err, _, _)| err.span().map_or(0, |s| s.start));
    for (err, subject, home) in found {
        report_toml_error(src, &err, subject.as_deref(), home, diags);
    }
    parsed
}

/// The key named by serde's "missing field `key`".
fn missing_key(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split_once('`')
        .map(|(key, _)| key)
}

/// serde's "unknown field `key`, expected one of `a`, `b`" (or "unknown variant") as
/// whether it is a field, the name, and the names expected instead.
fn unknown_name(message: &str) -> Option<(bool, &str, Vec<&str>)> {
    let rest = message.trim().strip_prefix("unknown ")?;
    let (field, rest) = match rest.strip_prefix("field `") {
        Some(rest) => (true, rest),
        None => (false, rest.strip_prefix("variant `")?),
    };
    let (name, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((field, name, expected))
}

/// Where a key unknown in its table belongs instead, as a help line: a table inside
/// this one ("`pattern` belongs in [source.links]") or one that holds it ("`user_agent`
/// belongs at the top of the file"). Each guess is checked by reading a file holding
/// only the key there.
fn home_of_key<T: DeserializeOwned>(
    root: &DeTable<'_>,
    path: &[Step],
    expected_here: &[&str],
) -> Option<String> {
    let (Step::Key(key), parent) = path.split_last()? else {
        return None;
    };
    let value = value_at(root, path)?;
    let leaf = DeValue::Table(DeTable::from_iter([(
        Spanned::new(0..0, key.clone().into()),
        value.clone(),
    )]));
    let inside = expected_here.iter().flat_map(|name| {
        let mut at = parent.to_vec();
        at.push(Step::Key((*name).to_owned()));
        let list = DeValue::Array(DeArray::from_iter([Spanned::new(0..0, leaf.clone())]));
        [(at.clone(), leaf.clone()), (at, list)]
    });
    // The tables holding this one, nearest first: prefixes that end at a table.
    let around = (0..parent.len()).rev().filter_map(|len| {
        let at = &parent[..len];
        let is_table = at.is_empty() || value_at(root, at).is_some_and(|v| v.get_ref().is_table());
        is_table.then(|| (at.to_vec(), leaf.clone()))
    });
    inside.chain(around).find_map(|(at, value)| {
        let trial = skeleton(&at, value)?;
        // Only the key is there, so other required keys may be missing.
        let accepted = T::deserialize(toml::de::Deserializer::from(trial))
            .map_or_else(|err| err.message().starts_with("missing field"), |_| true);
        accepted.then(|| {
            let names: Vec<&str> = at
                .iter()
                .filter_map(|step| match step {
                    Step::Key(name) => Some(name.as_str()),
                    Step::Index(_) => None,
                })
                .collect();
            if names.is_empty() {
                format!("`{key}` belongs at the top of the file, before any [table]")
            } else {
                format!("`{key}` belongs in [{}]", names.join("."))
            }
        })
    })
}

/// A file holding only `value`, at `path`.
fn skeleton<'i>(path: &[Step], value: DeValue<'i>) -> Option<Spanned<DeTable<'i>>> {
    let mut inner = value;
    for step in path.iter().rev() {
        inner = match step {
            Step::Key(name) => DeValue::Table(DeTable::from_iter([(
                Spanned::new(0..0, name.clone().into()),
                Spanned::new(0..0, inner),
            )])),
            Step::Index(_) => DeValue::Array(DeArray::from_iter([Spanned::new(0..0, inner)])),
        };
    }
    match inner {
        DeValue::Table(table) => Some(Spanned::new(0..0, table)),
        _ => None,
    }
}

/// The value at `path`, if there is one.
fn value_at<'a, 'i>(table: &'a DeTable<'i>, path: &[Step]) -> Option<&'a Spanned<DeValue<'i>>> {
    let (Step::Key(name), rest) = path.split_first()? else {
        return None;
    };
    let mut value = table.iter().find(|(key, _)| key.get_ref() == name)?.1;
    for step in rest {
        value = match (value.get_ref(), step) {
            (DeValue::Table(table), Step::Key(name)) => {
                table.iter().find(|(key, _)| key.get_ref() == name)?.1
            }
            (DeValue::Array(items), Step::Index(i)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// `subject` names the value an error is about, such as "`urls`"; `home` is where an
/// unknown key belongs, when it belongs somewhere else.
fn report_toml_error(
    src: &SourceText,
    err: &toml::de::Error,
    subject: Option<&str>,
    home: Option<String>,
    diags: &mut Diagnostics,
) {
    let span = err.span().unwrap_or(0..0);
    let (message, help) = subject
        .and_then(|subject| explain_wrong_type(subject, err.message()))
        .unwrap_or_else(|| explain_toml_error(err.message()));
    diags.error(src, span, message, home.or(help));
}

/// serde's "invalid type: string \"many\", expected i64" as "`key` must be a whole
/// number, not the string \"many\"", where `subject` is "`key`".
fn explain_wrong_type(subject: &str, message: &str) -> Option<(String, Option<String>)> {
    let caps = Regex::new(r"^invalid type: (\w+) (.*), expected (.*?)\.?$")
        .expect("literal regex compiles")
        .captures(message.trim())?;
    let found = match &caps[1] {
        "string" => format!("the string {}", &caps[2]),
        "integer" | "floating" => format!("the number {}", caps[2].trim_matches('`')),
        "boolean" => format!("`{}`", caps[2].trim_matches('`')),
        other => format!("{other} {}", &caps[2]),
    };
    let expected = match &caps[3] {
        "i64" | "u64" | "i32" | "u32" | "usize" | "u16" | "u8" => "a whole number",
        "a string" => "a string in quotes",
        "a boolean" => "true or false",
        "a sequence" => "a list such as [\"a\", \"b\"]",
        other => other,
    };
    Some((format!("{subject} must be {expected}, not {found}"), None))
}

/// One step from a table down to a value: a key, or an index into an array.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// The key, value or table header that starts last at or before a byte of the file.
struct Place {
    /// Where it is, from the top of the file.
    path: Vec<Step>,
    /// The `[[array]]` table it belongs to, if any.
    owner: Option<Owner>,
    /// Where the table holding it starts (0 for the top level).
    table_start: usize,
}

/// One table of an `[[array]]`, such as one `[[source]]`.
#[derive(Clone)]
struct Owner {
    path: Vec<Step>,
    /// Where its header starts: the same after other tables were set aside.
    start: usize,
}

impl Place {
    /// How a message names the value here: "`key`", or "each entry of `key`".
    fn subject(&self) -> Option<String> {
        match self.path.as_slice() {
            [.., Step::Key(key)] => Some(format!("`{key}`")),
            [.., Step::Key(key), Step::Index(_)] => Some(format!("each entry of `{key}`")),
            _ => None,
        }
    }
}

/// Finds the place an error at byte `at` points to. An array table's span covers only
/// its header line, so position, not span containment, says which table a later key
/// belongs to.
fn locate(root: &DeTable<'_>, at: usize) -> Option<Place> {
    let mut walk = Walk {
        at,
        path: Vec::new(),
        best: None,
    };
    walk.table(root, None, 0);
    walk.best.map(|(_, place)| place)
}

struct Walk {
    at: usize,
    path: Vec<Step>,
    best: Option<(usize, Place)>,
}

impl Walk {
    fn table(&mut self, table: &DeTable<'_>, owner: Option<&Owner>, table_start: usize) {
        for (key, value) in table.iter() {
            self.path.push(Step::Key(key.get_ref().to_string()));
            self.note(key.span().start, owner, table_start);
            self.value(value, owner, table_start);
            self.path.pop();
        }
    }

    fn value(&mut self, value: &Spanned<DeValue<'_>>, owner: Option<&Owner>, table_start: usize) {
        let start = value.span().start;
        self.note(start, owner, table_start);
        match value.get_ref() {
            DeValue::Table(table) => self.table(table, owner, start),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Step::Index(i));
                    let own = item.get_ref().is_table().then(|| Owner {
                        path: self.path.clone(),
                        start: item.span().start,
                    });
                    self.value(item, own.as_ref().or(owner), table_start);
                    self.path.pop();
                }
            }
            _ => {}
        }
    }

    fn note(&mut self, start: usize, owner: Option<&Owner>, table_start: usize) {
        if start <= self.at && self.best.as_ref().is_none_or(|(best, _)| start >= *best) {
            let place = Place {
                path: self.path.clone(),
                owner: owner.cloned(),
                table_start,
            };
            self.best = Some((start, place));
        }
    }
}

/// Removes the key or array element at `path`; false when there is none.
fn remove_at(table: &mut DeTable<'_>, path: &[Step]) -> bool {
    match path {
        [Step::Key(name)] => {
            let key = table.keys().find(|key| key.get_ref() == name).cloned();
            key.is_some_and(|key| table.remove(&key).is_some())
        }
        [Step::Key(name), rest @ ..] => table
            .iter_mut()
            .find(|(key, _)| key.get_ref() == name)
            .is_some_and(|(_, value)| remove_in_value(value.get_mut(), rest)),
        _ => false,
    }
}

/// Removes every `[[array]]` table whose header starts at one of `starts`.
fn remove_tables(table: &mut DeTable<'_>, starts: &[usize]) {
    for (_, value) in table.iter_mut() {
        remove_tables_in(value.get_mut(), starts);
    }
}

fn remove_tables_in(value: &mut DeValue<'_>, starts: &[usize]) {
    match value {
        DeValue::Table(table) => remove_tables(table, starts),
        DeValue::Array(items) => {
            let old = std::mem::replace(items, DeArray::new());
            for item in old.iter() {
                if !(item.get_ref().is_table() && starts.contains(&item.span().start)) {
                    items.push(item.clone());
                }
            }
            for item in items.deref_mut().iter_mut() {
                remove_tables_in(item.get_mut(), starts);
            }
        }
        _ => {}
    }
}

fn remove_in_value(value: &mut DeValue<'_>, path: &[Step]) -> bool {
    match (value, path) {
        (DeValue::Table(table), _) => remove_at(table, path),
        (DeValue::Array(items), [Step::Index(hit)]) => {
            let old = std::mem::replace(items, DeArray::new());
            for (i, item) in old.iter().enumerate() {
                if i != *hit {
                    items.push(item.clone());
                }
            }
            true
        }
        (DeValue::Array(items), [Step::Index(i), rest @ ..]) => items
            .deref_mut()
            .get_mut(*i)
            .is_some_and(|item| remove_in_value(item.get_mut(), rest)),
        _ => false,
    }
}

/// Rewrites serde's messages into bantin's style, with a suggestion where one exists.
fn explain_toml_error(message: &str) -> (String, Option<String>) {
    let message = message.trim().trim_end_matches('.').to_owned();
    if let Some((field, wrong, expected)) =
        unknown_name(&message).filter(|(_, _, expected)| !expected.is_empty())
    {
        // serde's fields are keys; its variants are the values a setting takes.
        let what = if field { "key" } else { "value" };
        let help = match did_you_mean(wrong, expected.iter().copied()) {
            Some(right) => format!("did you mean `{right}`?"),
            None => format!("known {what}s here: {}", expected.join(", ")),
        };
        return (format!("unknown {what} `{wrong}`"), Some(help));
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return (
            format!("missing required key {rest}"),
            Some(format!("add {rest} to this table")),
        );
    }
    (message, None)
}

fn read_file(
    path: &Path,
    from: &SourceText,
    named_at: &Spanned<String>,
    diags: &mut Diagnostics,
) -> Option<SourceText> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(SourceText {
            path: path.to_owned(),
            text,
        }),
        Err(err) => {
            diags.error(
                from,
                named_at.span(),
                format!("cannot read {}: {err}", path.display()),
                Some("paths are relative to the folder that holds bantin.toml".into()),
            );
            None
        }
    }
}

fn source_paths(
    root: &Path,
    pattern: &Spanned<String>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Vec<PathBuf> {
    let full = root.join(pattern.get_ref());
    match glob::glob(&full.to_string_lossy()) {
        Ok(paths) => {
            let mut paths: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
            paths.sort();
            paths
        }
        Err(err) => {
            diags.error(
                src,
                pattern.span(),
                format!("`sources` is not a valid glob pattern: {err}"),
                Some("write e.g. \"sources/*.toml\"".into()),
            );
            Vec::new()
        }
    }
}

/// The folder part of a glob pattern, before the first wildcard, if it exists.
fn glob_prefix(pattern: &Path) -> Option<PathBuf> {
    let mut dir = PathBuf::new();
    for part in pattern.components() {
        if part
            .as_os_str()
            .to_string_lossy()
            .contains(['*', '?', '[', '{'])
        {
            break;
        }
        dir.push(part);
    }
    dir.is_dir().then_some(dir)
}

fn build_settings(
    raw: &SettingsFile,
    root: &Path,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<Settings> {
    let before = diags.len();
    let base_url = http_url(&raw.base_url, "base_url", src, diags);
    let listen = match raw.listen.get_ref().parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            diags.error(
                src,
                raw.listen.span(),
                format!(
                    "`listen` = {:?} is not an address with a port",
                    raw.listen.get_ref()
                ),
                Some("write e.g. \"127.0.0.1:8080\" or \"[::]:8080\"".into()),
            );
            None
        }
    };
    let timezone = time_zone(&raw.timezone, src, diags);
    let items_per_feed = in_range(
        &raw.items_per_feed,
        "items_per_feed",
        1..=10_000,
        src,
        diags,
    );
    let retention_days = in_range(
        &raw.retention_days,
        "retention_days",
        1..=36_500,
        src,
        diags,
    );
    let raw_page_days = in_range(&raw.raw_page_days, "raw_page_days", 0..=36_500, src, diags);
    let distance = in_range(
        &raw.near_duplicate_distance,
        "near_duplicate_distance",
        0..=8,
        src,
        diags,
    );
    if raw.user_agent.get_ref().trim().is_empty() {
        diags.error(
            src,
            raw.user_agent.span(),
            "`user_agent` is empty",
            Some("write e.g. \"bantin/0.1 (+https://example.org/contact)\"".into()),
        );
    }
    let websub_hub = raw
        .websub_hub
        .as_ref()
        .and_then(|hub| http_url(hub, "websub_hub", src, diags));
    let shutdown_timeout = duration(&raw.shutdown_timeout, "shutdown_timeout", true, src, diags);
    let fetch = build_fetch(&raw.fetch, src, diags);
    let server = build_server(&raw.server, src, diags);
    let data_dir = root.join(raw.data_dir.get_ref());
    let database = super::database::build_database(
        raw.database_url.as_ref(),
        &data_dir,
        root,
        src,
        diags,
    );
    if diags.len() > before {
        return None;
    }
    Some(Settings {
        database: database?,
        data_dir,
        feeds_dir: root.join(raw.feeds_dir.get_ref()),
        base_url: base_url?,
        listen: listen?,
        timezone: timezone?,
        items_per_feed: items_per_feed? as usize,
        user_agent: raw.user_agent.get_ref().trim().to_owned(),
        title: raw.title.get_ref().clone(),
        language: raw.language.get_ref().clone(),
        retention_days: retention_days? as u32,
        raw_page_days: raw_page_days? as u32,
        near_duplicate_distance: distance? as u32,
        websub_hub,
        stylesheet: raw.stylesheet,
        shutdown_timeout: shutdown_timeout?,
        fetch: fetch?,
        server: server?,
    })
}

/// Most connections `max_connections` may name; each needs an open file.
const MAX_CONNECTIONS: i64 = 1 << 20;

fn build_server(
    raw: &ServerFile,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<ServerSettings> {
    let header_read_timeout = duration(
        &raw.header_read_timeout,
        "header_read_timeout",
        false,
        src,
        diags,
    );
    let idle_timeout = duration(&raw.idle_timeout, "idle_timeout", false, src, diags);
    let request_timeout = duration(&raw.request_timeout, "request_timeout", false, src, diags);
    let max_connections = match &raw.max_connections {
        Some(max) => {
            Some(in_range(max, "max_connections", 1..=MAX_CONNECTIONS, src, diags)? as usize)
        }
        None => None,
    };
    Some(ServerSettings {
        header_read_timeout: header_read_timeout?,
        idle_timeout: idle_timeout?,
        request_timeout: request_timeout?,
        max_connections,
    })
}

fn build_fetch(
    raw: &FetchFile,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<FetchSettings> {
    let timeout = duration(&raw.timeout, "timeout", false, src, diags);
    let connect_timeout = duration(&raw.connect_timeout, "connect_timeout", false, src, diags);
    let max_body_bytes = size(&raw.max_body_bytes, src, diags);
    let max_redirects = in_range(&raw.max_redirects, "max_redirects", 0..=20, src, diags);
    let per_host = in_range(
        &raw.per_host_concurrency,
        "per_host_concurrency",
        1..=64,
        src,
        diags,
    );
    let per_host_delay = duration(&raw.per_host_delay, "per_host_delay", true, src, diags);
    let global = in_range(
        &raw.global_concurrency,
        "global_concurrency",
        1..=1024,
        src,
        diags,
    );
    let robots_ttl = duration(&raw.robots_ttl, "robots_ttl", false, src, diags);
    let max_retries = in_range(&raw.max_retries, "max_retries", 0..=10, src, diags);
    let backoff_base = duration(&raw.backoff_base, "backoff_base", false, src, diags);
    let backoff_cap = duration(&raw.backoff_cap, "backoff_cap", false, src, diags);
    let retry_after_scope = match raw.retry_after_scope.get_ref().as_str() {
        "url" => Some(RetryAfterScope::Url),
        "host" => Some(RetryAfterScope::Host),
        other => {
            diags.error(
                src,
                raw.retry_after_scope.span(),
                format!("`retry_after_scope` = {other:?} is not known"),
                Some("write \"url\" or \"host\"".into()),
            );
            None
        }
    };
    Some(FetchSettings {
        timeout: timeout?,
        connect_timeout: connect_timeout?,
        max_body_bytes: max_body_bytes?,
        max_redirects: max_redirects? as usize,
        per_host_concurrency: per_host? as usize,
        per_host_delay: per_host_delay?,
        global_concurrency: global? as usize,
        obey_robots: raw.obey_robots,
        robots_ttl: robots_ttl?,
        allow_private_networks: raw.allow_private_networks,
        retry_after_scope: retry_after_scope?,
        max_retries: max_retries? as u32,
        backoff_base: backoff_base?,
        backoff_cap: backoff_cap?,
    })
}

fn build_categories(
    file: CategoriesFile,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Vec<Category> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for raw in file.categories {
        let id_ok = slug(&raw.id, "category id", src, diags);
        if raw.id.get_ref() == ALL_CATEGORY {
            diags.error(
                src,
                raw.id.span(),
                "category id `all` is reserved for the feed of everything",
                Some("choose another id; every item is in `all` already".into()),
            );
            continue;
        }
        if let Some(first) = seen.get(raw.id.get_ref()) {
            let (line, _) = src.line_col(*first);
            diags.error(
                src,
                raw.id.span(),
                format!("category id `{}` is defined twice", raw.id.get_ref()),
                Some(format!(
                    "the first definition is on line {line}; rename one"
                )),
            );
            continue;
        }
        seen.insert(raw.id.get_ref().clone(), raw.id.span().start);
        let rules: Vec<Rule> = raw
            .rules
            .into_iter()
            .filter_map(|r| build_rule(r, src, diags))
            .collect();
        if id_ok {
            out.push(Category {
                id: CategoryId(raw.id.into_inner()),
                title: raw.title,
                description: raw.description,
                rules,
            });
        }
    }
    out
}

fn build_rule(raw: RuleFile, src: &SourceText, diags: &mut Diagnostics) -> Option<Rule> {
    let terms = |list: Vec<Spanned<String>>, diags: &mut Diagnostics| -> Vec<String> {
        list.into_iter()
            .filter_map(|t| {
                let term = crate::text::normalize(t.get_ref()).to_lowercase();
                if term.is_empty() {
                    diags.error(src, t.span(), "empty keyword", Some("remove it".into()));
                    None
                } else {
                    Some(term)
                }
            })
            .collect()
    };
    let any = terms(raw.any, diags);
    let all = terms(raw.all, diags);
    let none = terms(raw.none, diags);
    let mut fields = Vec::new();
    for name in raw.fields.get_ref() {
        match name.as_str() {
            "title" => fields.push(TextField::Title),
            "lead" => fields.push(TextField::Lead),
            "body" => fields.push(TextField::Body),
            other => {
                let help = did_you_mean(other, ["title", "lead", "body"])
                    .map(|r| format!("did you mean \"{r}\"?"))
                    .unwrap_or_else(|| "use \"title\", \"lead\" or \"body\"".into());
                diags.error(
                    src,
                    raw.fields.span(),
                    format!("unknown rule field {other:?}"),
                    Some(help),
                );
            }
        }
    }
    let min_hits = in_range(&raw.min_hits, "min_hits", 1..=100, src, diags)?;
    if any.is_empty() && all.is_empty() {
        diags.error(
            src,
            raw.fields.span(),
            "this rule has no `any` or `all` terms, so it can never match",
            Some("add e.g. any = [\"công tác đảng\"]".into()),
        );
        return None;
    }
    Some(Rule {
        any,
        all,
        none,
        fields,
        fold_diacritics: raw.fold_diacritics,
        min_hits: min_hits as usize,
    })
}

struct SiteContext<'a> {
    src: &'a SourceText,
    categories: &'a [Category],
    default_tz: Option<Tz>,
}

fn build_site(
    mut site: SiteFile,
    ctx: &SiteContext<'_>,
    seen_ids: &mut HashMap<String, String>,
    diags: &mut Diagnostics,
) -> Vec<Source> {
    let src = ctx.src;
    let defaults = SiteDefaults {
        tz: site
            .timezone
            .as_ref()
            .and_then(|tz| time_zone(tz, src, diags)),
        domains: domains(&site.allowed_domains, src, diags),
        rules: build_extract(&site.extract, src, diags),
        refresh: build_refresh(&site.refresh, Refresh::default(), src, diags),
    };
    let mut out = Vec::new();
    for raw in std::mem::take(&mut site.sources) {
        let before = diags.len();
        let id_ok = slug(&raw.id, "source id", src, diags);
        if id_ok {
            let (line, _) = src.line_col(raw.id.span().start);
            let here = format!("{}:{line}", src.path.display());
            if let Some(first) = seen_ids.insert(raw.id.get_ref().clone(), here) {
                diags.error(
                    src,
                    raw.id.span(),
                    format!("source id `{}` is used twice", raw.id.get_ref()),
                    Some(format!(
                        "it is first used at {first}; source ids must be unique"
                    )),
                );
            }
        }
        if let Some(source) = build_source(raw, &site, &defaults, ctx, diags)
            && diags.len() == before
        {
            out.push(source);
        }
    }
    out
}

/// What a site file's top-level keys give each of its sources.
struct SiteDefaults {
    tz: Option<Tz>,
    domains: Vec<String>,
    rules: ArticleRules,
    refresh: Refresh,
}

fn build_source(
    raw: SourceFile,
    site: &SiteFile,
    defaults: &SiteDefaults,
    ctx: &SiteContext<'_>,
    diags: &mut Diagnostics,
) -> Option<Source> {
    let src = ctx.src;
    let kind = match raw.kind.get_ref().as_str() {
        "listing" => Some(SourceKind::Listing),
        "feed" => Some(SourceKind::Feed),
        "sitemap" => Some(SourceKind::Sitemap),
        other => {
            let help = did_you_mean(other, ["listing", "feed", "sitemap"])
                .map(|r| format!("did you mean \"{r}\"?"))
                .unwrap_or_else(|| "use \"listing\", \"feed\" or \"sitemap\"".into());
            diags.error(
                src,
                raw.kind.span(),
                format!("unknown source kind {other:?}"),
                Some(help),
            );
            None
        }
    };
    if raw.urls.is_empty() {
        diags.error(
            src,
            raw.id.span(),
            format!("source `{}` has no `urls`", raw.id.get_ref()),
            Some("add urls = [\"https://example.org/section/\"]".into()),
        );
    }
    let urls: Vec<Url> = raw
        .urls
        .iter()
        .filter_map(|u| http_url(u, "urls", src, diags))
        .collect();
    let schedule = cron_schedule(&raw.schedule, src, diags);
    let mut categories = Vec::new();
    for c in &raw.categories {
        if ctx.categories.iter().any(|k| k.id.as_str() == c.get_ref()) {
            categories.push(CategoryId(c.get_ref().clone()));
        } else if c.get_ref() != ALL_CATEGORY {
            let known = ctx.categories.iter().map(|k| k.id.as_str());
            let help = match did_you_mean(c.get_ref(), known) {
                Some(r) => format!("did you mean \"{r}\"?"),
                None => "define it in categories.toml or remove it".into(),
            };
            diags.error(
                src,
                c.span(),
                format!(
                    "category `{}` is not defined in categories.toml",
                    c.get_ref()
                ),
                Some(help),
            );
        }
    }
    let timezone = match &raw.timezone {
        Some(tz) => time_zone(tz, src, diags),
        None => defaults.tz.or(ctx.default_tz),
    };
    let mut allowed_domains: Vec<String> = urls
        .iter()
        .filter_map(|u| u.host_str())
        .map(|h| h.trim_start_matches("www.").to_ascii_lowercase())
        .collect();
    allowed_domains.extend(defaults.domains.iter().cloned());
    allowed_domains.extend(domains(&raw.allowed_domains, src, diags));
    allowed_domains.sort();
    allowed_domains.dedup();
    let max_age = raw.max_age.as_ref().and_then(|a| {
        duration_any(
            a,
            "max_age",
            Duration::from_secs(3650 * 24 * 3600),
            src,
            diags,
        )
    });
    let max_articles = in_range(&raw.max_articles, "max_articles", 1..=100_000, src, diags);
    let links = build_links(&raw.links, src, diags);
    if kind == Some(SourceKind::Listing) && links.selector.is_none() && links.pattern.is_none() {
        diags.error(
            src,
            raw.kind.span(),
            format!(
                "listing source `{}` has no way to find article links",
                raw.id.get_ref()
            ),
            Some("add [source.links] with selector = \"...\" and/or pattern = \"...\"".into()),
        );
    }
    let extract = build_extract(&raw.extract, src, diags).or(&defaults.rules);
    let refresh = build_refresh(&raw.refresh, defaults.refresh, src, diags);
    let test_urls = raw
        .test_urls
        .iter()
        .filter_map(|t| build_test_url(t, src, diags))
        .collect();
    Some(Source {
        id: SourceId(raw.id.get_ref().clone()),
        kind: kind?,
        urls,
        schedule: schedule?,
        schedule_text: raw.schedule.get_ref().clone(),
        categories,
        timezone: timezone?,
        allowed_domains,
        language: raw.language.clone().or_else(|| site.language.clone()),
        full_text: raw.full_text,
        max_age,
        max_articles: max_articles? as usize,
        links,
        extract,
        refresh,
        test_urls,
        file: src.path.clone(),
    })
}

/// `[refresh]` keys over `inherited`: each key written replaces the inherited value.
fn build_refresh(
    raw: &RefreshFile,
    inherited: Refresh,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Refresh {
    let every = raw
        .every
        .as_ref()
        .and_then(|e| duration(e, "every", false, src, diags));
    let within = raw
        .within
        .as_ref()
        .and_then(|w| duration_any(w, "within", MAX_DURATION, src, diags));
    Refresh {
        every: every.unwrap_or(inherited.every),
        within: within.unwrap_or(inherited.within),
    }
}

fn build_links(raw: &LinksFile, src: &SourceText, diags: &mut Diagnostics) -> LinkRules {
    LinkRules {
        selector: raw.selector.as_ref().and_then(|s| css(s, src, diags)),
        pattern: raw.pattern.as_ref().and_then(|p| regex(p, src, diags)),
        next_page: raw.next_page.as_ref().and_then(|s| css(s, src, diags)),
        max_pages: raw
            .max_pages
            .as_ref()
            .and_then(|m| in_range(m, "max_pages", 1..=1000, src, diags))
            .map_or(DEFAULT_MAX_PAGES, |m| m as usize),
    }
}

fn build_extract(raw: &ExtractFile, src: &SourceText, diags: &mut Diagnostics) -> ArticleRules {
    let mut sel = |s: &Option<Spanned<String>>| s.as_ref().and_then(|s| css(s, src, diags));
    ArticleRules {
        title: sel(&raw.title),
        published: sel(&raw.published),
        updated: sel(&raw.updated),
        author: sel(&raw.author),
        lead: sel(&raw.lead),
        body: sel(&raw.body),
        image: sel(&raw.image),
        tags: sel(&raw.tags),
        section: sel(&raw.section),
        published_format: raw
            .published_format
            .as_ref()
            .and_then(|f| date_format(f, src, diags)),
        updated_format: raw
            .updated_format
            .as_ref()
            .and_then(|f| date_format(f, src, diags)),
        remove: raw
            .remove
            .iter()
            .filter_map(|s| css(s, src, diags))
            .collect(),
    }
}

impl ArticleRules {
    /// Field by field: this source's selector, else the site's.
    fn or(self, site: &ArticleRules) -> ArticleRules {
        ArticleRules {
            title: self.title.or_else(|| site.title.clone()),
            published: self.published.or_else(|| site.published.clone()),
            published_format: self
                .published_format
                .or_else(|| site.published_format.clone()),
            updated: self.updated.or_else(|| site.updated.clone()),
            updated_format: self.updated_format.or_else(|| site.updated_format.clone()),
            author: self.author.or_else(|| site.author.clone()),
            lead: self.lead.or_else(|| site.lead.clone()),
            body: self.body.or_else(|| site.body.clone()),
            image: self.image.or_else(|| site.image.clone()),
            tags: self.tags.or_else(|| site.tags.clone()),
            section: self.section.or_else(|| site.section.clone()),
            remove: site.remove.iter().cloned().chain(self.remove).collect(),
        }
    }
}

fn build_test_url(raw: &TestUrlFile, src: &SourceText, diags: &mut Diagnostics) -> Option<TestUrl> {
    let url = http_url(&raw.url, "url", src, diags)?;
    let published = match &raw.published {
        Some(p) => match chrono::DateTime::parse_from_rfc3339(p) {
            Ok(d) => Some(d),
            Err(err) => {
                diags.error(
                    src,
                    raw.url.span(),
                    format!("test url `published` = {p:?} is not RFC 3339: {err}"),
                    Some("write e.g. \"2020-07-17T21:54:00+07:00\"".into()),
                );
                return None;
            }
        },
        None => None,
    };
    Some(TestUrl {
        url,
        title: raw.title.clone(),
        published,
        authors: raw.authors.clone(),
        lead_starts_with: raw.lead_starts_with.clone(),
        body_starts_with: raw.body_starts_with.clone(),
    })
}

fn http_url(
    raw: &Spanned<String>,
    key: &str,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<Url> {
    let text = raw.get_ref().trim();
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        Ok(url) => {
            diags.error(
                src,
                raw.span(),
                format!("`{key}` {text:?} uses the scheme `{}`", url.scheme()),
                Some("only http:// and https:// addresses can be fetched".into()),
            );
            None
        }
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            diags.error(
                src,
                raw.span(),
                format!("`{key}` {text:?} is a relative URL"),
                Some(format!(
                    "write the absolute address, e.g. \"https://example.org/{}\"",
                    text.trim_start_matches('/')
                )),
            );
            None
        }
        Err(err) => {
            diags.error(
                src,
                raw.span(),
                format!("`{key}` {text:?} is not a valid URL: {err}"),
                Some("write an absolute address such as \"https://example.org/news/\"".into()),
            );
            None
        }
    }
}

fn css(raw: &Spanned<String>, src: &SourceText, diags: &mut Diagnostics) -> Option<Css> {
    let text = raw.get_ref();
    match Selector::parse(text) {
        Ok(selector) => Some(Css {
            text: text.clone(),
            selector,
        }),
        Err(_) => {
            let help = if text.contains("..") {
                format!(
                    "a class is written with one dot: \"{}\"",
                    text.replace("..", ".")
                )
            } else if text.trim().is_empty() {
                "write a selector such as \"div.article-body\", or remove the key".into()
            } else {
                "write a CSS selector such as \"div.detail-content-body\" or \"h1.title\"".into()
            };
            diags.error(
                src,
                raw.span(),
                format!("selector {text:?} is not valid CSS"),
                Some(help),
            );
            None
        }
    }
}

fn regex(raw: &Spanned<String>, src: &SourceText, diags: &mut Diagnostics) -> Option<Regex> {
    match Regex::new(raw.get_ref()) {
        Ok(re) => Some(re),
        Err(err) => {
            let detail = err.to_string();
            let last = detail.lines().last().unwrap_or("").trim().to_owned();
            diags.error(
                src,
                raw.span(),
                format!(
                    "pattern {:?} is not a valid regular expression: {last}",
                    raw.get_ref()
                ),
                Some(
                    "escape literal characters such as . ( [ with a backslash (\"\\\\.\" in TOML)"
                        .into(),
                ),
            );
            None
        }
    }
}

/// Accepts standard 5-field cron (minute first) by adding a seconds field.
pub fn parse_schedule(text: &str) -> Result<cron::Schedule, cron::error::Error> {
    let fields = text.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {}", text.trim())
    } else {
        text.trim().to_owned()
    };
    cron::Schedule::from_str(&full)
}

fn cron_schedule(
    raw: &Spanned<String>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<cron::Schedule> {
    let text = raw.get_ref();
    let help = Some(
        "write 5 fields \"minute hour day month weekday\", e.g. \"*/15 * * * *\", \
         or 6 with seconds first, e.g. \"0 */15 * * * *\""
            .into(),
    );
    let fields = text.split_whitespace().count();
    if !(5..=7).contains(&fields) {
        diags.error(
            src,
            raw.span(),
            format!("schedule {text:?} has {fields} field(s), cron needs 5 or 6"),
            help,
        );
        return None;
    }
    match parse_schedule(text) {
        Ok(s) => Some(s),
        Err(err) => {
            // The parser's message quotes the expression with a caret line; keep the reason.
            let detail = err.to_string();
            let reason = detail.lines().last().unwrap_or_default().trim().to_owned();
            diags.error(
                src,
                raw.span(),
                format!("schedule {text:?} is not a cron expression: {reason}"),
                help,
            );
            None
        }
    }
}

fn time_zone(raw: &Spanned<String>, src: &SourceText, diags: &mut Diagnostics) -> Option<Tz> {
    match raw.get_ref().parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
            let help = match did_you_mean(raw.get_ref(), names) {
                Some(r) => format!("did you mean \"{r}\"?"),
                None => "use an IANA time zone name such as \"Asia/Ho_Chi_Minh\"".into(),
            };
            diags.error(
                src,
                raw.span(),
                format!("unknown time zone {:?}", raw.get_ref()),
                Some(help),
            );
            None
        }
    }
}

fn duration(
    raw: &Spanned<String>,
    key: &str,
    zero_ok: bool,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<Duration> {
    let d = duration_any(raw, key, MAX_DURATION, src, diags)?;
    if d.is_zero() && !zero_ok {
        diags.error(
            src,
            raw.span(),
            format!("`{key}` must be longer than zero"),
            Some("write e.g. \"30s\"".into()),
        );
        return None;
    }
    Some(d)
}

fn duration_any(
    raw: &Spanned<String>,
    key: &str,
    max: Duration,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<Duration> {
    match humantime::parse_duration(raw.get_ref()) {
        Ok(d) if d <= max => Some(d),
        Ok(_) => {
            diags.error(
                src,
                raw.span(),
                format!(
                    "`{key}` = {:?} is longer than {}",
                    raw.get_ref(),
                    humantime::format_duration(max)
                ),
                Some("durations this long are almost always a typo".into()),
            );
            None
        }
        Err(err) => {
            diags.error(
                src,
                raw.span(),
                format!("`{key}` = {:?} is not a duration ({err})", raw.get_ref()),
                Some(
                    "write a number with a unit: \"500ms\", \"30s\", \"5m\", \"2h\", \"1d\"".into(),
                ),
            );
            None
        }
    }
}

fn size(raw: &Spanned<Size>, src: &SourceText, diags: &mut Diagnostics) -> Option<u64> {
    let bytes = match raw.get_ref() {
        Size::Bytes(n) => u64::try_from(*n).ok(),
        Size::Text(t) => t.parse::<bytesize::ByteSize>().ok().map(|b| b.as_u64()),
    };
    match bytes {
        Some(b) if (MIN_BODY_BYTES..=MAX_BODY_BYTES).contains(&b) => Some(b),
        _ => {
            diags.error(
                src,
                raw.span(),
                format!(
                    "`max_body_bytes` = {} is not a size between 1 KiB and 1 GiB",
                    raw.get_ref()
                ),
                Some("write e.g. \"10 MiB\" or 10485760".into()),
            );
            None
        }
    }
}

fn in_range(
    raw: &Spanned<i64>,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<i64> {
    if range.contains(raw.get_ref()) {
        Some(*raw.get_ref())
    } else {
        diags.error(
            src,
            raw.span(),
            format!("`{key}` = {} is out of range", raw.get_ref()),
            Some(format!(
                "use a number from {} to {}",
                range.start(),
                range.end()
            )),
        );
        None
    }
}

fn slug(raw: &Spanned<String>, what: &str, src: &SourceText, diags: &mut Diagnostics) -> bool {
    let id = raw.get_ref();
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        let suggestion: String = crate::text::fold_diacritics(id)
            .to_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        diags.error(
            src,
            raw.span(),
            format!("{what} {id:?} is not a slug"),
            Some(format!(
                "use lower-case letters, digits and dashes, e.g. \"{}\"",
                if suggestion.is_empty() {
                    "my-source".into()
                } else {
                    suggestion
                }
            )),
        );
    }
    ok
}

fn domains(raw: &[Spanned<String>], src: &SourceText, diags: &mut Diagnostics) -> Vec<String> {
    raw.iter()
        .filter_map(|d| {
            let text = d
                .get_ref()
                .trim()
                .trim_start_matches("www.")
                .to_ascii_lowercase();
            if text.is_empty() || text.contains(['/', ':', ' ']) {
                diags.error(
                    src,
                    d.span(),
                    format!("allowed domain {:?} is not a host name", d.get_ref()),
                    Some("write only the host, e.g. \"img.example.org\"".into()),
                );
                None
            } else {
                Some(text)
            }
        })
        .collect()
}

fn date_format(raw: &Spanned<String>, src: &SourceText, diags: &mut Diagnostics) -> Option<String> {
    use chrono::format::{Item, StrftimeItems};
    if StrftimeItems::new(raw.get_ref()).any(|i| matches!(i, Item::Error)) {
        diags.error(
            src,
            raw.span(),
            format!(
                "date format {:?} is not a valid strftime format",
                raw.get_ref()
            ),
            Some("write e.g. \"%d/%m/%Y %H:%M\"".into()),
        );
        return None;
    }
    Some(raw.get_ref().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_prefix_is_the_folder_before_the_first_wildcard() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sites")).unwrap();
        let sites = dir.path().join("sites");
        assert_eq!(glob_prefix(&sites.join("*.toml")), Some(sites.clone()));
        assert_eq!(glob_prefix(&sites.join("[a-z]*/x.toml")), Some(sites));
        assert_eq!(glob_prefix(&dir.path().join("missing/*.toml")), None);
    }
}
