//! Reading one TOML file into its raw structs: every syntax error, and every shape error
//! (a wrong type, an unknown or missing key) found by setting the faulty part aside and
//! reading the rest again. What the values mean is checked later, in `build`.

use std::ops::DerefMut;

use regex::Regex;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::diag::{Diagnostics, SourceText, did_you_mean};

/// Most shape errors reported for one file; each one costs a parse of the file, so this
/// also bounds the work.
const MAX_SHAPE_ERRORS_PER_FILE: usize = 50;

/// Parses one TOML file, turning syntax and shape errors into diagnostics. Every syntax
/// error is reported. After a shape error the key or list element at fault is set aside
/// (a whole `[[array]]` table after a missing key) and the rest is checked again, so one
/// mistake does not hide the next. Errors are reported in file order, and what is left
/// once the faults are set aside is returned, so later checks still see the rest. After
/// a syntax error the rest of the file is still read, but what the error made unreadable
/// is not also reported missing.
pub(super) fn parse<T: DeserializeOwned>(
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<Parsed<T>> {
    let (mut root, syntax_errors) = DeTable::parse_recoverable(&src.text);
    for err in &syntax_errors {
        let span = err.span().unwrap_or(0..0);
        let message = err.message().trim().trim_end_matches('.');
        diags.error(src, span, message, Some(syntax_help(message)));
    }
    let whole = syntax_errors.is_empty();
    // The parser stands in a value where it could not read one; its shape error is the
    // syntax error again.
    let unreadable: Vec<_> = syntax_errors.iter().filter_map(|e| e.span()).collect();
    let overlaps_unreadable = |span: Option<std::ops::Range<usize>>| {
        span.is_some_and(|s| {
            unreadable
                .iter()
                .any(|u| s.start < u.end.max(u.start + 1) && u.start < s.end.max(s.start + 1))
        })
    };
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
        let reported = match missing {
            Some(key) => whole && !set_aside.contains(&(at, key.to_owned())),
            None => !overlaps_unreadable(err.span()),
        };
        if reported {
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
    parsed.map(|value| Parsed { value, whole })
}

/// A file read into its raw struct.
pub(super) struct Parsed<T> {
    pub value: T,
    /// False when a syntax error left part of the file unread: a key missing from
    /// `value` may then be written in the file, so checks that something is absent
    /// would only repeat the syntax error.
    pub whole: bool,
}

/// What to write instead, for a TOML syntax error.
fn syntax_help(message: &str) -> String {
    if message.contains("must be quoted") {
        "write text in double quotes (\"like this\"); true, false and numbers go without".into()
    } else if message.contains("string") {
        "close the string with the quote it opened with, on the same line; write a \\ as \\\\"
            .into()
    } else {
        "each line is `key = value` or a [table] header; text goes in double quotes, lists in [ ]"
            .into()
    }
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
    let help = match expected {
        "a whole number" => "write the number without quotes, e.g. 20",
        "a string in quotes" => "put the value in double quotes",
        "true or false" => "write true or false, without quotes",
        _ => "write a value of the type this key takes; see the README's configuration reference",
    };
    Some((
        format!("{subject} must be {expected}, not {found}"),
        Some(help.into()),
    ))
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
    let help = "see the README's configuration reference for the keys of this table".into();
    (message, Some(help))
}
