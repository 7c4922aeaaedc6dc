//! HTTP caching for feeds: strong ETags from the content, Last-Modified from the newest
//! item, `304 Not Modified` for If-None-Match / If-Modified-Since, and an in-memory copy
//! of each published file that is reloaded when the file on disk is replaced.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderValue, header};
use bytes::Bytes;
use chrono::{DateTime, Utc};

/// A body with its validators.
#[derive(Debug, Clone)]
pub struct Representation {
    pub body: Bytes,
    /// Strong ETag, quoted.
    pub etag: String,
    pub last_modified: Option<SystemTime>,
    /// The body gzip-compressed, made on first demand and kept with this version, so a
    /// poll by a feed reader does not compress the feed again.
    gzip: std::sync::OnceLock<Bytes>,
}

impl Representation {
    pub fn new(body: Bytes, last_modified: Option<SystemTime>) -> Representation {
        let etag = strong_etag(&body);
        Representation {
            body,
            etag,
            last_modified,
            gzip: std::sync::OnceLock::new(),
        }
    }

    /// The gzip-compressed body (compressed once per version).
    pub fn gzip(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                use std::io::Write;
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder
                    .write_all(&self.body)
                    .expect("writing into memory cannot fail");
                Bytes::from(encoder.finish().expect("finishing into memory cannot fail"))
            })
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

/// Appends the content coding to the ETag of a compressed response.
pub fn tag_encoding(headers: &mut HeaderMap) {
    let Some(encoding) = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return;
    };
    let Some(etag) = headers.get(header::ETAG).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let tagged = format!("\"{}-{encoding}\"", etag.trim_matches('"'));
    if let Ok(value) = HeaderValue::from_str(&tagged) {
        headers.insert(header::ETAG, value);
    }
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

/// Published files kept in memory, keyed by path, checked against the file's inode,
/// size and modification time on every request (files are replaced by rename, so a
/// new version always has a new inode).
#[derive(Debug, Default)]
pub struct FileCache {
    files: Mutex<HashMap<PathBuf, (FileStamp, Arc<Representation>)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileCache {
    /// The current content of `path`, or `None` when there is no such file.
    pub async fn get(&self, path: &Path) -> io::Result<Option<Arc<Representation>>> {
        let meta = match tokio::fs::metadata(path).await {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let stamp = FileStamp {
            inode: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        };
        if let Some((cached, rep)) = self.lock().get(path)
            && *cached == stamp
        {
            return Ok(Some(rep.clone()));
        }
        let body = match tokio::fs::read(path).await {
            Ok(body) => body,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let rep = Arc::new(Representation::new(Bytes::from(body), stamp.modified));
        self.lock().insert(path.to_owned(), (stamp, rep.clone()));
        Ok(Some(rep))
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (FileStamp, Arc<Representation>)>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }
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
