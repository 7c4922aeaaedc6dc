//! Reading publication and update times from the text a page gives: ISO 8601 / RFC 3339,
//! RFC 2822, Unix epochs, the numeric forms Vietnamese news sites print
//! (`Thứ Sáu, 17/07/2020 21:54`, `21:54 17/07/2020 (GMT+7)`, `Ngày 17 tháng 7 năm 2020`)
//! and English month names (`July 17, 2020 9:54 PM`, `17 Jul 2020`).
//! A time without a zone is read in the source's zone. Dates printed relative to now
//! ("5 phút trước", "hôm qua 14:30", "2 hours ago") count back from the fetch time, in the
//! source's zone. Not here: finding the date on a page (see `meta`, `jsonld`,
//! `heuristics`).

use std::sync::LazyLock;

use chrono::{
    DateTime, Datelike, Days, Duration, FixedOffset, Months, NaiveDate, NaiveDateTime, NaiveTime,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use regex::Regex;

/// Dates before this year are taken for parsing mistakes (no news site predates it).
const MIN_YEAR: i32 = 1990;
/// How far in the future a date may be (clock skew, zone confusion) before it is rejected.
const MAX_FUTURE: Duration = Duration::days(1);

static ISO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(\d{4})-(\d{1,2})-(\d{1,2})(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2}|[+-]\d{2}\b)?)?",
    )
    .expect("literal regex compiles")
});
static DMY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4})\b")
        .expect("literal regex compiles")
});
static VI_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(\d{1,2})\s+tháng\s+(\d{1,2})\s*(?:,|năm)?\s*(\d{4})\b")
        .expect("literal regex compiles")
});
/// English month names or their abbreviations: "July 17, 2020", "17 Jul. 2020".
const MONTHS: &str = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?";
static MONTH_DAY_YEAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b{MONTHS}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b"
    ))
    .expect("literal regex compiles")
});
static DAY_MONTH_YEAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTHS},?\s+(\d{{4}})\b"
    ))
    .expect("literal regex compiles")
});
static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(\d{1,2})\s*(?::|h|g)\s*(\d{2})(?:\s*:\s*(\d{2}))?\s*(am|pm|sa|ch)?\b")
        .expect("literal regex compiles")
});
static GMT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:GMT|UTC)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?")
        .expect("literal regex compiles")
});
/// The units of a relative date, Vietnamese and English ("hôm" before "h").
const UNITS: &str = r"giây|phút|giờ|tiếng|ngày|hôm|tuần|tháng|năm|seconds?|secs?|minutes?|mins?|hours?|hrs?|h|days?|weeks?|months?|years?";
/// One amount of one unit: "5 phút", "một giờ", "an hour".
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i)(\d{{1,4}}|một|an?)\s*({UNITS})")).expect("literal regex compiles")
});
/// Amounts before now: "5 phút trước", "1 giờ 30 phút trước", "an hour ago".
static AGO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b((?:(?:\d{{1,4}}|một|an?)\s*(?:{UNITS})[\s,]*(?:(?:và|and)\s+)?)+)(?:trước|ago)\b"
    ))
    .expect("literal regex compiles")
});
/// The same said the other way round: "cách đây 15 phút".
static SINCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\bcách đây\s+((?:(?:\d{{1,4}}|một)\s*(?:{UNITS})\b[\s,]*)+)"
    ))
    .expect("literal regex compiles")
});
/// A day named relative to today, with or without a time: "hôm qua 14:30", "Today".
static DAY_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(hôm qua|hôm nay|yesterday|today)\b").expect("literal regex compiles")
});
static JUST_NOW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:vừa xong|vừa mới đăng|just now)\b").expect("literal regex compiles")
});
static EPOCH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d{9,10}$").expect("literal regex compiles"));

/// Parses a date as a page prints it. `format` is a chrono `strftime` pattern from the
/// source's config, tried first. Times without a zone are read in `tz`. Dates before 1990
/// or more than a day in the future are rejected with a warning giving the reason.
pub fn parse_date(text: &str, format: Option<&str>, tz: Tz) -> Option<DateTime<FixedOffset>> {
    let text = crate::text::normalize(text);
    if text.is_empty() {
        return None;
    }
    let parsed = format
        .and_then(|f| parse_with_format(&text, f, tz))
        .or_else(|| parse_any(&text, tz))?;
    plausible(parsed)
}

/// Reads a date printed relative to `now` ("5 phút trước", "cách đây 2 giờ", "3 ngày
/// trước", "hôm qua 14:30", "hôm nay 08:15", "vừa xong", "5 minutes ago", "yesterday") in
/// `tz`, to the minute: the page counted from when it was served, which is `now`.
pub fn parse_relative(text: &str, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<FixedOffset>> {
    let text = crate::text::normalize(text);
    let now = now.with_timezone(&tz);
    let date = if let Some(c) = AGO.captures(&text).or_else(|| SINCE.captures(&text)) {
        count_back(now, &c[1])?.fixed_offset()
    } else if JUST_NOW.is_match(&text) {
        now.fixed_offset()
    } else if let Some(c) = DAY_WORD.captures(&text) {
        let word = c[1].to_lowercase();
        let days_back = u64::from(matches!(word.as_str(), "hôm qua" | "yesterday"));
        let day = now.date_naive().checked_sub_days(Days::new(days_back))?;
        let rest = format!(
            "{} | {}",
            &text[..c.get(0)?.start()],
            &text[c.get(0)?.end()..]
        );
        let time = time_of_day(&rest).unwrap_or(NaiveTime::MIN);
        return plausible(local(day.and_time(time), tz)?);
    } else {
        return None;
    };
    plausible(date.with_second(0)?.with_nanosecond(0)?)
}

/// `now` less every amount in `amounts` ("1 giờ 30 phút").
fn count_back(now: DateTime<Tz>, amounts: &str) -> Option<DateTime<Tz>> {
    AMOUNT.captures_iter(amounts).try_fold(now, |then, c| {
        let amount: u32 = match c[1].to_lowercase().as_str() {
            "một" | "a" | "an" => 1,
            digits => digits.parse().ok()?,
        };
        let unit = c[2].to_lowercase();
        match unit.as_str() {
            "tháng" | "month" | "months" => then.checked_sub_months(Months::new(amount)),
            "năm" | "year" | "years" => then.checked_sub_months(Months::new(amount * 12)),
            _ => then.checked_sub_signed(unit_length(&unit)? * i32::try_from(amount).ok()?),
        }
    })
}

/// How long one of a relative date's units (below a month) is.
fn unit_length(unit: &str) -> Option<Duration> {
    Some(match unit {
        "giây" | "second" | "seconds" | "sec" | "secs" => Duration::seconds(1),
        "phút" | "minute" | "minutes" | "min" | "mins" => Duration::minutes(1),
        "giờ" | "tiếng" | "hour" | "hours" | "hr" | "hrs" | "h" => Duration::hours(1),
        "ngày" | "hôm" | "day" | "days" => Duration::days(1),
        "tuần" | "week" | "weeks" => Duration::weeks(1),
        _ => return None,
    })
}

/// `date` unless it is before 1990 or more than a day in the future, which no real
/// publication or update time is; the check every date a source gives passes (pages,
/// feeds, sitemaps), so a `2099` cannot pin an item at the top of every feed.
pub fn plausible(date: DateTime<FixedOffset>) -> Option<DateTime<FixedOffset>> {
    if date.year() < MIN_YEAR {
        tracing::warn!(date = %date.to_rfc3339(), "date rejected: before {MIN_YEAR}");
        return None;
    }
    if date.with_timezone(&Utc) > Utc::now() + MAX_FUTURE {
        tracing::warn!(date = %date.to_rfc3339(), "date rejected: in the future");
        return None;
    }
    Some(date)
}

fn parse_with_format(text: &str, format: &str, tz: Tz) -> Option<DateTime<FixedOffset>> {
    if let Ok(d) = DateTime::parse_from_str(text, format) {
        return Some(d);
    }
    if let Ok((n, _)) = NaiveDateTime::parse_and_remainder(text, format) {
        return local(n, tz);
    }
    if let Ok((d, _)) = NaiveDate::parse_and_remainder(text, format) {
        return local(d.and_time(NaiveTime::MIN), tz);
    }
    None
}

fn parse_any(text: &str, tz: Tz) -> Option<DateTime<FixedOffset>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(text) {
        return Some(d);
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(text) {
        return Some(d);
    }
    if EPOCH.is_match(text) {
        let secs: i64 = text.parse().ok()?;
        let utc = DateTime::from_timestamp(secs, 0)?;
        return Some(utc.with_timezone(&tz).fixed_offset());
    }
    if let Some(c) = ISO.captures(text) {
        let date = ymd(&c[1], &c[2], &c[3])?;
        let time = match (c.get(4), c.get(5)) {
            (Some(h), Some(m)) => hms(h.as_str(), m.as_str(), c.get(6).map(|s| s.as_str()))?,
            _ => NaiveTime::MIN,
        };
        let naive = date.and_time(time);
        return match c.get(7) {
            Some(zone) => with_offset(naive, offset_of(zone.as_str())?),
            None => local(naive, tz),
        };
    }
    let date = if let Some(c) = DMY.captures(text) {
        Some((ymd(&c[3], &c[2], &c[1])?, c.get(0)?.range()))
    } else if let Some(c) = VI_WORDS.captures(text) {
        Some((ymd(&c[3], &c[2], &c[1])?, c.get(0)?.range()))
    } else if let Some(c) = MONTH_DAY_YEAR.captures(text) {
        Some((ymd(&c[3], &month_number(&c[1])?, &c[2])?, c.get(0)?.range()))
    } else if let Some(c) = DAY_MONTH_YEAR.captures(text) {
        Some((ymd(&c[3], &month_number(&c[2])?, &c[1])?, c.get(0)?.range()))
    } else {
        None
    };
    let (date, span) = date?;
    // The time may come before or after the date; search outside the date itself so
    // "17.07.2020" is not read as a time.
    let rest = format!("{} | {}", &text[..span.start], &text[span.end..]);
    let time = time_of_day(&rest).unwrap_or(NaiveTime::MIN);
    let naive = date.and_time(time);
    match GMT.captures(&rest) {
        Some(c) => {
            let hours: i32 = c[2].parse().ok()?;
            let minutes: i32 = c.get(3).map_or(Some(0), |m| m.as_str().parse().ok())?;
            let secs = (hours * 3600 + minutes * 60) * if &c[1] == "-" { -1 } else { 1 };
            with_offset(naive, FixedOffset::east_opt(secs)?)
        }
        None => local(naive, tz),
    }
}

/// The first time of day in `text`: "21:54", "21h54", "9:54 pm", "10:05 SA".
fn time_of_day(text: &str) -> Option<NaiveTime> {
    let c = TIME.captures(text)?;
    let mut t = hms(&c[1], &c[2], c.get(3).map(|s| s.as_str()))?;
    let meridiem = c.get(4).map(|m| m.as_str().to_lowercase());
    match meridiem.as_deref() {
        Some("pm" | "ch") if t.hour() < 12 => t += Duration::hours(12),
        Some("am" | "sa") if t.hour() == 12 => t -= Duration::hours(12),
        _ => {}
    }
    Some(t)
}

/// "jul" (any case) as "7".
fn month_number(abbreviation: &str) -> Option<String> {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = abbreviation.to_ascii_lowercase();
    NAMES
        .iter()
        .position(|name| *name == lower)
        .map(|i| (i + 1).to_string())
}

fn ymd(y: &str, m: &str, d: &str) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

fn hms(h: &str, m: &str, s: Option<&str>) -> Option<NaiveTime> {
    NaiveTime::from_hms_opt(
        h.parse().ok()?,
        m.parse().ok()?,
        s.map_or(Some(0), |s| s.parse().ok())?,
    )
}

fn offset_of(zone: &str) -> Option<FixedOffset> {
    let zone = zone.to_ascii_uppercase();
    if matches!(zone.as_str(), "Z" | "UTC" | "GMT") {
        return FixedOffset::east_opt(0);
    }
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let digits: String = zone.chars().filter(char::is_ascii_digit).collect();
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn with_offset(naive: NaiveDateTime, offset: FixedOffset) -> Option<DateTime<FixedOffset>> {
    offset.from_local_datetime(&naive).single()
}

fn local(naive: NaiveDateTime, tz: Tz) -> Option<DateTime<FixedOffset>> {
    // In a DST gap there is no such local time; the earliest reading of an ambiguous
    // time is as good as any.
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|d| d.fixed_offset())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    #[test]
    fn parses_every_form_seen_on_news_sites() {
        let rows: &[(&str, Option<&str>, &str)] = &[
            (
                "Thứ Sáu, 17/07/2020 21:54",
                None,
                "2020-07-17T21:54:00+07:00",
            ),
            (
                "Thứ Sáu, 17/07/2020 21:54 |",
                None,
                "2020-07-17T21:54:00+07:00",
            ),
            (
                "Thứ Bảy, 18/07/2015, 08:00",
                None,
                "2015-07-18T08:00:00+07:00",
            ),
            ("17/07/2020 - 21:54", None, "2020-07-17T21:54:00+07:00"),
            ("21:54 17/07/2020", None, "2020-07-17T21:54:00+07:00"),
            (
                "17/07/2020 21:54 (GMT+7)",
                None,
                "2020-07-17T21:54:00+07:00",
            ),
            (
                "21:54 17/07/2020 (GMT+7)",
                None,
                "2020-07-17T21:54:00+07:00",
            ),
            (
                "Thứ ba, 14/3/2023, 10:05 (GMT+7)",
                None,
                "2023-03-14T10:05:00+07:00",
            ),
            (
                "Cập nhật: 17-07-2020 21:54",
                None,
                "2020-07-17T21:54:00+07:00",
            ),
            (
                "Thứ Hai, 05-06-2023, 05:30",
                None,
                "2023-06-05T05:30:00+07:00",
            ),
            (
                "Ngày 17 tháng 7 năm 2020",
                None,
                "2020-07-17T00:00:00+07:00",
            ),
            (
                "17 tháng 7, 2020 | 21h54",
                None,
                "2020-07-17T21:54:00+07:00",
            ),
            (
                "2020-07-17T21:54:00+07:00",
                None,
                "2020-07-17T21:54:00+07:00",
            ),
            (
                "2023-01-09T07:45:00+0700",
                None,
                "2023-01-09T07:45:00+07:00",
            ),
            ("2021-11-02T06:30:00", None, "2021-11-02T06:30:00+07:00"),
            ("2022-12-20T07:30:00Z", None, "2022-12-20T07:30:00+00:00"),
            (
                "2022-12-20T07:30:00.123Z",
                None,
                "2022-12-20T07:30:00.123+00:00",
            ),
            ("2020-07-17 21:54", None, "2020-07-17T21:54:00+07:00"),
            ("2020-07-17", None, "2020-07-17T00:00:00+07:00"),
            (
                "Fri, 17 Jul 2020 14:54:00 +0000",
                None,
                "2020-07-17T14:54:00+00:00",
            ),
            (
                "Fri, 17 Jul 2020 21:54:00 GMT",
                None,
                "2020-07-17T21:54:00+00:00",
            ),
            ("1678763100", None, "2023-03-14T10:05:00+07:00"),
            (
                "Published July 17, 2020 at 9:54 pm",
                None,
                "2020-07-17T21:54:00+07:00",
            ),
            ("Jul. 17th, 2020", None, "2020-07-17T00:00:00+07:00"),
            (
                "17 July 2020, 21:54 GMT+1",
                None,
                "2020-07-17T21:54:00+01:00",
            ),
            (
                "Friday 17th of July 2020",
                None,
                "2020-07-17T00:00:00+07:00",
            ),
            (
                "17.07.2020 | 21:54",
                Some("%d.%m.%Y | %H:%M"),
                "2020-07-17T21:54:00+07:00",
            ),
        ];
        for (text, format, expected) in rows {
            let got = parse_date(text, *format, HCM).map(|d| d.to_rfc3339());
            assert_eq!(got.as_deref(), Some(*expected), "{text}");
        }
    }

    #[test]
    fn result_keeps_the_offset_when_converted_to_local_time() {
        let d = parse_date("2022-12-20T07:30:00Z", None, HCM).expect("parses");
        assert_eq!(
            d.with_timezone(&HCM).fixed_offset().to_rfc3339(),
            "2022-12-20T14:30:00+07:00"
        );
    }

    #[test]
    fn rejects_dates_before_1990_and_in_the_future() {
        assert_eq!(parse_date("17/07/1989 21:54", None, HCM), None);
        assert_eq!(parse_date("17/07/2999 21:54", None, HCM), None);
        assert_eq!(parse_date("2999-01-01T00:00:00Z", None, HCM), None);
    }

    #[test]
    fn relative_dates_count_back_from_the_fetch_time_in_the_source_zone() {
        // 09:00:37 in Ho Chi Minh City.
        let now = "2024-03-05T02:00:37Z".parse().expect("valid RFC 3339");
        let rows: &[(&str, &str)] = &[
            ("5 phút trước", "2024-03-05T08:55:00+07:00"),
            ("2 giờ trước", "2024-03-05T07:00:00+07:00"),
            ("Khoảng 1 tiếng trước", "2024-03-05T08:00:00+07:00"),
            ("3 ngày trước", "2024-03-02T09:00:00+07:00"),
            ("1 tuần trước", "2024-02-27T09:00:00+07:00"),
            ("2 tháng trước", "2024-01-05T09:00:00+07:00"),
            ("Cập nhật 10 giây trước", "2024-03-05T09:00:00+07:00"),
            ("Cách đây 15 phút", "2024-03-05T08:45:00+07:00"),
            ("1 giờ 30 phút trước", "2024-03-05T07:30:00+07:00"),
            ("cách đây 2 giờ, 5 phút", "2024-03-05T06:55:00+07:00"),
            ("2 hôm trước", "2024-03-03T09:00:00+07:00"),
            ("2 hours and 10 minutes ago", "2024-03-05T06:50:00+07:00"),
            ("vừa xong", "2024-03-05T09:00:00+07:00"),
            ("hôm qua 14:30", "2024-03-04T14:30:00+07:00"),
            ("Hôm qua lúc 14h30", "2024-03-04T14:30:00+07:00"),
            ("Hôm nay, 08:15", "2024-03-05T08:15:00+07:00"),
            ("08:15 hôm nay", "2024-03-05T08:15:00+07:00"),
            ("5 minutes ago", "2024-03-05T08:55:00+07:00"),
            ("an hour ago", "2024-03-05T08:00:00+07:00"),
            ("3 days ago", "2024-03-02T09:00:00+07:00"),
            ("yesterday", "2024-03-04T00:00:00+07:00"),
            ("Yesterday at 2:30 pm", "2024-03-04T14:30:00+07:00"),
            ("Today 8:15 AM", "2024-03-05T08:15:00+07:00"),
        ];
        for (text, expected) in rows {
            let got = parse_relative(text, HCM, now).map(|d| d.to_rfc3339());
            assert_eq!(got.as_deref(), Some(*expected), "{text}");
        }
    }

    #[test]
    fn yesterday_is_the_day_before_in_the_source_zone_not_in_utc() {
        // 01:30 on 5 March in Ho Chi Minh City, still 4 March in UTC.
        let now = "2024-03-04T18:30:00Z".parse().expect("valid RFC 3339");
        let got = parse_relative("hôm qua 23:10", HCM, now).map(|d| d.to_rfc3339());
        assert_eq!(got.as_deref(), Some("2024-03-04T23:10:00+07:00"));
        let got = parse_relative("20 phút trước", HCM, now).map(|d| d.to_rfc3339());
        assert_eq!(got.as_deref(), Some("2024-03-05T01:10:00+07:00"));
    }

    #[test]
    fn text_without_a_relative_date_is_none() {
        let now = Utc::now();
        for text in [
            "trước đó",
            "5 phút",
            "Thứ Hai",
            "17/07/2020 21:54",
            "Chia sẻ",
            "",
        ] {
            assert_eq!(parse_relative(text, HCM, now), None, "{text}");
        }
    }

    #[test]
    fn rejects_text_without_a_date() {
        assert_eq!(parse_date("Chia sẻ", None, HCM), None);
        assert_eq!(parse_date("", None, HCM), None);
        assert_eq!(parse_date("31/02/2020", None, HCM), None);
    }
}
