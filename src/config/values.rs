//! Checks of single values (URLs, selectors, patterns, schedules, time zones, durations,
//! sizes, ranges, slugs, host names, date formats): each turns what was written into its
//! runtime type or records why it cannot, with what to write instead.

use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use regex::Regex;
use scraper::Selector;
use toml::Spanned;
use url::Url;

use super::Css;
use super::diag::{Diagnostics, SourceText, did_you_mean};
use super::file::Size;

/// Longest duration any setting may take; longer values are typos.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Smallest and largest sane body limits.
const MIN_BODY_BYTES: u64 = 1024;
const MAX_BODY_BYTES: u64 = 1024 * 1024 * 1024;

pub(super) fn http_url(
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

pub(super) fn css(raw: &Spanned<String>, src: &SourceText, diags: &mut Diagnostics) -> Option<Css> {
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

pub(super) fn regex(
    raw: &Spanned<String>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<Regex> {
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

pub(super) fn cron_schedule(
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

pub(super) fn time_zone(
    raw: &Spanned<String>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<Tz> {
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

pub(super) fn duration(
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

pub(super) fn duration_any(
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

pub(super) fn size(raw: &Spanned<Size>, src: &SourceText, diags: &mut Diagnostics) -> Option<u64> {
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

pub(super) fn in_range(
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

/// Whether `id` is a slug: lower-case letters, digits and dashes, at most 64.
pub fn is_slug(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub(super) fn slug(
    raw: &Spanned<String>,
    what: &str,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> bool {
    let id = raw.get_ref();
    let ok = is_slug(id);
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

pub(super) fn domains(
    raw: &[Spanned<String>],
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Vec<String> {
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

pub(super) fn date_format(
    raw: &Spanned<String>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<String> {
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
