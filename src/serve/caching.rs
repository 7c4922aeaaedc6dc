//! HTTP caching for feeds: strong ETags from the content, Last-Modified from the newest
//! item, `304 Not Modified` for If-None-Match / If-Modified-Since, and an in-memory copy
//! of each published file, dropped when the file is replaced.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use axum::http::{HeaderMap, HeaderValue, header};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// A content coding a feed is sent in, compressed once per version (see
/// [`Representation::encoded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Brotli,
}

impl Coding {
    const ALL: [Coding; 2] = [Coding::Gzip, Coding::Brotli];

    /// The name in `Accept-Encoding` and `Content-Encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn compress(self, body: &[u8]) -> Bytes {
        use std::io::Write;
        let mut out = Vec::with_capacity(body.len() / 4);
        match self {
            Coding::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(&mut out, flate2::Compression::default());
                encoder
                    .write_all(body)
                    .expect("writing into memory cannot fail");
                encoder.finish().expect("finishing into memory cannot fail");
            }
            Coding::Brotli => {
                let mut encoder =
                    brotli::CompressorWriter::new(&mut out, 4096, BROTLI_QUALITY, BROTLI_WINDOW);
                encoder
                    .write_all(body)
                    .expect("writing into memory cannot fail");
            }
        }
        Bytes::from(out)
    }
}

/// Brotli's middle quality: within a few percent of its best on feeds, at a small
/// part of the time (the best, 11, takes about a second for a large feed).
const BROTLI_QUALITY: u32 = 5;
/// Brotli's window, 4 MiB (log2), larger than any feed.
const BROTLI_WINDOW: u32 = 22;

/// The coding to send a body in for a request's `Accept-Encoding`: Brotli (smaller)
/// when the client takes it, else gzip, else none. A coding with `q=0` is refused.
pub fn preferred_coding(request: &HeaderMap) -> Option<Coding> {
    let accepted = |coding: Coding| {
        request
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|offer| {
                let mut parts = offer.split(';').map(str::trim);
                parts
                    .next()
                    .is_some_and(|c| c.eq_ignore_ascii_case(coding.name()))
                    && parts.all(|p| p.replace(' ', "") != "q=0")
            })
    };
    [Coding::Brotli, Coding::Gzip]
        .into_iter()
        .find(|c| accepted(*c))
}

/// A body with its validators.
#[derive(Debug, Clone)]
pub struct Representation {
    pub body: Bytes,
    /// Strong ETag, quoted.
    pub etag: String,
    pub last_modified: Option<SystemTime>,
    /// The body in each [`Coding`], made on first demand and kept with this version, so a
    /// poll by a feed reader does not compress the feed again.
    encoded: [std::sync::OnceLock<Bytes>; 2],
    /// The validators as header values, made once per version rather than per request.
    etag_header: HeaderValue,
    encoded_etag_headers: [HeaderValue; 2],
    last_modified_header: Option<HeaderValue>,
}

impl Representation {
    pub fn new(body: Bytes, last_modified: Option<SystemTime>) -> Representation {
        let etag = strong_etag(&body);
        let header = |text: &str| HeaderValue::from_str(text).expect("validators are ASCII");
        Representation {
            etag_header: header(&etag),
            encoded_etag_headers: Coding::ALL.map(|c| header(&encoded_etag(&etag, c.name()))),
            last_modified_header: last_modified.map(|lm| header(&http_date(lm))),
            body,
            etag,
            last_modified,
            encoded: Default::default(),
        }
    }

    /// The `ETag` header of this version, plain or of its body in `coding`.
    pub fn etag_header(&self, coding: Option<Coding>) -> &HeaderValue {
        match coding {
            Some(coding) => &self.encoded_etag_headers[coding.index()],
            None => &self.etag_header,
        }
    }

    /// The `Last-Modified` header, when the version has a modification time.
    pub fn last_modified_header(&self) -> Option<&HeaderValue> {
        self.last_modified_header.as_ref()
    }

    /// The body compressed in `coding` (compressed once per version).
    pub fn encoded(&self, coding: Coding) -> Bytes {
        self.encoded[coding.index()]
            .get_or_init(|| coding.compress(&self.body))
            .clone()
    }

    /// Whether the request's conditional headers say the client's copy is current.
    /// If-None-Match wins over If-Modified-Since (RFC 9110, 13.2.2).
    pub fn not_modified(&self, request: &HeaderMap) -> bool {
        if let Some(inm) = request.get(header::IF_NONE_MATCH) {
            return inm
                .to_str()
                .is_ok_and(|value| etag_matches(value, &self.etag));
        }
        let Some(ims) = request
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
        else {
            return false;
        };
        self.last_modified
            .is_some_and(|lm| DateTime::<Utc>::from(lm).timestamp() <= ims.timestamp())
    }
}

/// `"<length>-<FNV-1a 64>"` of the body: equal bodies, equal tags, across restarts.
pub fn strong_etag(body: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in body {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{:x}-{hash:016x}\"", body.len())
}

/// Compressed responses carry the tag with `-gzip` / `-br` added (a different
/// representation needs a different strong tag); a client sending that tag back still
/// matches the plain one.
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let ours = etag.trim_matches('"');
    if_none_match.split(',').map(str::trim).any(|candidate| {
        if candidate == "*" {
            return true;
        }
        let tag = candidate.trim_start_matches("W/").trim_matches('"');
        let tag = tag
            .strip_suffix("-gzip")
            .or_else(|| tag.strip_suffix("-br"))
            .unwrap_or(tag);
        tag == ours
    })
}

/// Appends the content coding to the ETag of a compressed response, unless the
/// response was compressed ahead and carries its tag already.
pub fn tag_encoding(headers: &mut HeaderMap) {
    let Some(encoding) = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let Some(etag) = headers.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let tagged_already = etag
        .trim_end_matches('"')
        .strip_suffix(encoding)
        .is_some_and(|tag| tag.ends_with('-'));
    if tagged_already {
        return;
    }
    let tagged = encoded_etag(etag, encoding);
    if let Ok(value) = HeaderValue::from_str(&tagged) {
        headers.insert(header::ETAG, value);
    }
}

/// `"<tag>-<encoding>"`, the strong tag of a compressed representation.
fn encoded_etag(etag: &str, encoding: &str) -> String {
    format!("\"{}-{encoding}\"", etag.trim_matches('"'))
}

/// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(time: SystemTime) -> String {
    DateTime::<Utc>::from(time)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Parses an IMF-fixdate (RFC 2822 shape with `GMT`); other legacy shapes are ignored.
pub fn parse_http_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Published files kept in memory, by folder and name. A request for a cached file
/// touches neither the file system nor a lock: whoever replaces a file says so with
/// [`FileCache::forget`] — the daemon's publisher after each publish, the feeds-folder
/// watcher ([`FileCache::watch`]) under `bantin serve`. Only a miss reads the disk.
#[derive(Debug, Default)]
pub struct FileCache {
    /// Read on every request; replaced whole (copy on write) by the rare writer.
    files: ArcSwap<HashMap<Box<str>, CachedFile>>,
    /// Bumped by every [`FileCache::forget`]; a file read from disk is kept only if no
    /// forget came while it was read, so a publish never leaves an old copy behind.
    generation: Mutex<u64>,
}

#[derive(Debug, Clone)]
struct CachedFile {
    dir: PathBuf,
    rep: Arc<Representation>,
}

impl FileCache {
    /// The current content of `name` in `dir`, or `None` when there is no such file.
    pub async fn get(&self, dir: &Path, name: &str) -> io::Result<Option<Arc<Representation>>> {
        if let Some(file) = self.files.load().get(name)
            && file.dir == dir
        {
            return Ok(Some(file.rep.clone()));
        }
        let seen = *self.lock();
        let path = dir.join(name);
        let (body, modified) = match read_file(&path).await {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let rep = Arc::new(Representation::new(Bytes::from(body), modified));
        let generation = self.lock();
        if *generation == seen {
            let mut files = HashMap::clone(&self.files.load());
            let file = CachedFile {
                dir: dir.to_owned(),
                rep: rep.clone(),
            };
            files.insert(name.into(), file);
            self.files.store(Arc::new(files));
        }
        Ok(Some(rep))
    }

    /// Drops the copy of the file at `path` (it was replaced or removed); the next
    /// request reads it again.
    pub fn forget(&self, path: &Path) {
        let mut generation = self.lock();
        *generation += 1;
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        if self.files.load().contains_key(name) {
            let mut files = HashMap::clone(&self.files.load());
            files.remove(name);
            self.files.store(Arc::new(files));
        }
    }

    /// Drops every copy, when the watcher may have missed a change.
    pub fn forget_all(&self) {
        let mut generation = self.lock();
        *generation += 1;
        self.files.store(Arc::default());
    }

    /// Watches `dir` and forgets each file that changes there, for a server whose
    /// feeds another process publishes. Watching stops when the watcher is dropped.
    pub fn watch(self: &Arc<Self>, dir: &Path) -> notify::Result<RecommendedWatcher> {
        let cache = Arc::downgrade(self);
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            let Some(cache) = cache.upgrade() else { return };
            match event {
                // Reading a file (a cache miss does) is no change; forgetting on it
                // would empty the cache on every read.
                Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
                Ok(event) if event.need_rescan() => cache.forget_all(),
                Ok(event) => event.paths.iter().for_each(|path| cache.forget(path)),
                Err(err) => {
                    tracing::warn!(error = %err, "feeds folder watch failed; cache cleared");
                    cache.forget_all();
                }
            }
        })?;
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A file's content and modification time, read off the async threads.
async fn read_file(path: &Path) -> io::Result<(Vec<u8>, Option<SystemTime>)> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::ErrorKind::NotFound.into());
        }
        let mut body = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        std::io::Read::read_to_end(&mut file, &mut body)?;
        Ok((body, meta.modified().ok()))
    })
    .await
    .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_matching_accepts_lists_weak_and_encoded_variants() {
        let tag = strong_etag(b"feed");
        let bare = tag.trim_matches('"');
        assert!(etag_matches(&tag, &tag));
        assert!(etag_matches(&format!("\"x\", {tag}"), &tag));
        assert!(etag_matches(&format!("W/{tag}"), &tag));
        assert!(etag_matches(&format!("\"{bare}-gzip\""), &tag));
        assert!(etag_matches("*", &tag));
        assert!(!etag_matches("\"other\"", &tag));
    }

    #[test]
    fn http_dates_round_trip() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").map(|d| d.timestamp()),
            Some(784_111_777)
        );
    }
}
