//! Sitemaps: a sitemap index leads to sitemaps, a sitemap lists URLs. News sitemaps'
//! `news:publication_date` and `news:title` are used when present, else `lastmod`.
//! Candidates come newest first, limited by the source's `max_age` and `max_articles`.
//! Gzipped sitemaps (`.xml.gz`) are read too.

use std::collections::VecDeque;
use std::io::Read;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use quick_xml::Reader;
use quick_xml::events::Event;
use url::Url;

use super::{Pass, absolute};
use crate::extract::dates::plausible;
use crate::text::normalize;

/// Sitemaps read in one pass (the index included): an index can list thousands.
const MAX_SITEMAPS_PER_PASS: usize = 50;
/// Largest uncompressed size of a gzipped sitemap (the protocol's own limit).
const MAX_SITEMAP_BYTES: u64 = 50 * 1024 * 1024;

/// A parsed sitemap document.
#[derive(Debug, PartialEq)]
pub enum Sitemap {
    /// `<sitemapindex>`: sitemaps with their `lastmod`.
    Index(Vec<(Url, Option<DateTime<FixedOffset>>)>),
    /// `<urlset>`.
    Urls(Vec<SitemapUrl>),
}

/// One `<url>` of a sitemap.
#[derive(Debug, Clone, PartialEq)]
pub struct SitemapUrl {
    pub url: Url,
    /// `news:publication_date`, else `lastmod`.
    pub published: Option<DateTime<FixedOffset>>,
    /// `news:title`.
    pub title: Option<String>,
}

pub(super) async fn discover(pass: &mut Pass<'_>) {
    let cutoff = pass
        .source
        .max_age
        .and_then(|age| chrono::Duration::from_std(age).ok())
        .map(|age| Utc::now() - age);
    let too_old = |d: &Option<DateTime<FixedOffset>>| matches!((d, cutoff), (Some(d), Some(c)) if d.with_timezone(&Utc) < c);
    let mut queue: VecDeque<Url> = pass.source.urls.iter().cloned().collect();
    let mut read = 0;
    let mut urls = Vec::new();
    while let Some(url) = queue.pop_front() {
        if read == MAX_SITEMAPS_PER_PASS {
            pass.unreadable(&url, "sitemap", "too many sitemaps in one pass".into());
            break;
        }
        read += 1;
        let Some(got) = pass.get(&url).await else {
            continue;
        };
        let parsed = gunzip(&got.body)
            .and_then(|xml| parse(&xml, &got.page.final_url, pass.source.timezone));
        match parsed {
            Ok(Sitemap::Index(mut children)) => {
                pass.read_whole_next_time(&url);
                children.sort_by_key(|c| std::cmp::Reverse(c.1));
                queue.extend(
                    children
                        .into_iter()
                        .filter(|(child, lastmod)| {
                            !too_old(lastmod)
                                && pass
                                    .source
                                    .allows_host(child.host_str().unwrap_or_default())
                        })
                        .map(|(child, _)| child),
                );
            }
            Ok(Sitemap::Urls(found)) => urls.extend(found),
            Err(reason) => pass.unreadable(&url, "sitemap", reason),
        }
    }
    urls.retain(|u| !too_old(&u.published));
    // Newest first; undated URLs last, in document order.
    urls.sort_by_key(|u| std::cmp::Reverse(u.published));
    for entry in urls {
        if pass.discovery.candidates.len() >= pass.source.max_articles {
            break;
        }
        let mut candidate = pass.candidate(entry.url);
        candidate.title = entry.title;
        candidate.published = entry.published;
        pass.push(candidate);
    }
}

fn gunzip(body: &[u8]) -> Result<Vec<u8>, String> {
    if !body.starts_with(&[0x1f, 0x8b]) {
        return Ok(body.to_vec());
    }
    let mut xml = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_SITEMAP_BYTES + 1)
        .read_to_end(&mut xml)
        .map_err(|e| format!("bad gzip data: {e}"))?;
    if xml.len() as u64 > MAX_SITEMAP_BYTES {
        return Err(format!("more than {MAX_SITEMAP_BYTES} bytes uncompressed"));
    }
    Ok(xml)
}

/// Parses a sitemap or sitemap index. Relative `loc`s are resolved against `base`;
/// dates without a zone are read in `tz`.
pub fn parse(xml: &[u8], base: &Url, tz: Tz) -> Result<Sitemap, String> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut root: Option<String> = None;
    let mut current = Fields::default();
    let mut index = Vec::new();
    let mut urls = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("XML error at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                root.get_or_insert_with(|| name.clone());
                path.push(name);
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(t) => text.push_str(&t.into_inner()),
            Event::GeneralRef(r) => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    text.push(c);
                } else {
                    text.push_str(match r.xml10_content().as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let value = normalize(&text);
                text.clear();
                match (name.as_str(), path.last().map(String::as_str)) {
                    ("loc", Some("url" | "sitemap")) => current.loc = Some(value),
                    ("lastmod", Some("url" | "sitemap")) => current.lastmod = Some(value),
                    ("publication_date", Some("news")) => current.news_date = Some(value),
                    ("title", Some("news")) => current.news_title = Some(value),
                    ("sitemap", _) => {
                        let f = std::mem::take(&mut current);
                        if let Some(loc) = f.loc.as_deref().and_then(|l| absolute(base, l)) {
                            index.push((loc, f.lastmod.as_deref().and_then(|d| w3c_date(d, tz))));
                        }
                    }
                    ("url", _) => {
                        let f = std::mem::take(&mut current);
                        if let Some(loc) = f.loc.as_deref().and_then(|l| absolute(base, l)) {
                            let published = f
                                .news_date
                                .as_deref()
                                .and_then(|d| w3c_date(d, tz))
                                .or_else(|| f.lastmod.as_deref().and_then(|d| w3c_date(d, tz)));
                            urls.push(SitemapUrl {
                                url: loc,
                                published,
                                title: f.news_title.filter(|t| !t.is_empty()),
                            });
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    match root.as_deref() {
        Some("sitemapindex") => Ok(Sitemap::Index(index)),
        Some("urlset") => Ok(Sitemap::Urls(urls)),
        Some(other) => Err(format!(
            "root element <{other}> is not urlset or sitemapindex"
        )),
        None => Err("no XML element".into()),
    }
}

#[derive(Default)]
struct Fields {
    loc: Option<String>,
    lastmod: Option<String>,
    news_date: Option<String>,
    news_title: Option<String>,
}

/// A W3C datetime (the sitemap date format): `2024-05-01`, `2024-05-01T10:00+07:00`,
/// `2024-05-01T10:00:00Z`, `2024-05-01T10:00:00.5+07:00`; a date or time without a zone
/// is read in `tz`. Implausible dates (in the future, before 1990) are none, as on pages.
fn w3c_date(text: &str, tz: Tz) -> Option<DateTime<FixedOffset>> {
    read_w3c_date(text, tz).and_then(plausible)
}

fn read_w3c_date(text: &str, tz: Tz) -> Option<DateTime<FixedOffset>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(text) {
        return Some(d);
    }
    if let Ok(d) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M%:z") {
        return Some(d);
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists"))
        })
        .ok()?;
    tz.from_local_datetime(&local)
        .earliest()
        .map(|d| d.fixed_offset())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TZ: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    #[test]
    fn w3c_dates_in_every_precision() {
        let cases = [
            ("2024-05-01T10:00:00+07:00", "2024-05-01T10:00:00+07:00"),
            ("2024-05-01T03:00:00Z", "2024-05-01T03:00:00+00:00"),
            ("2024-05-01T10:00+07:00", "2024-05-01T10:00:00+07:00"),
            (
                "2024-05-01T10:00:00.5+07:00",
                "2024-05-01T10:00:00.500+07:00",
            ),
            ("2024-05-01", "2024-05-01T00:00:00+07:00"),
            ("2024-05-01T10:00:00", "2024-05-01T10:00:00+07:00"),
        ];
        for (text, want) in cases {
            let got = w3c_date(text, TZ).unwrap_or_else(|| panic!("{text} parses"));
            assert_eq!(
                got.to_rfc3339(),
                DateTime::parse_from_rfc3339(want).unwrap().to_rfc3339(),
                "{text}"
            );
        }
        assert_eq!(w3c_date("hôm qua", TZ), None);
    }

    #[test]
    fn news_sitemap_gives_title_and_publication_date() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>https://news.test/a?x=1&amp;y=2</loc><lastmod>2024-05-02</lastmod>
    <news:news><news:publication><news:name>T</news:name><news:language>vi</news:language></news:publication>
      <news:publication_date>2024-05-01T08:30:00+07:00</news:publication_date>
      <news:title>Đảng viên &amp; nhân dân</news:title></news:news></url>
  <url><loc>/b</loc></url>
</urlset>"#;
        let base = Url::parse("https://news.test/sitemap.xml").unwrap();
        let Sitemap::Urls(urls) = parse(xml.as_bytes(), &base, TZ).unwrap() else {
            panic!("a urlset is read as URLs");
        };
        assert_eq!(urls.len(), 2);
        assert_eq!(urls[0].url.as_str(), "https://news.test/a?x=1&y=2");
        assert_eq!(urls[0].title.as_deref(), Some("Đảng viên & nhân dân"));
        assert_eq!(
            urls[0].published.unwrap().to_rfc3339(),
            "2024-05-01T08:30:00+07:00"
        );
        assert_eq!(urls[1].url.as_str(), "https://news.test/b");
        assert_eq!(urls[1].published, None);
    }

    #[test]
    fn non_sitemap_xml_is_an_error() {
        let base = Url::parse("https://news.test/").unwrap();
        assert!(parse(b"<rss><channel/></rss>", &base, TZ).is_err());
    }
}
