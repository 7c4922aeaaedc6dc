//! HTTP caching for feeds: the validators of each published document (its strong ETag,
//! Last-Modified from the newest item), `304 Not Modified` for If-None-Match /
//! If-Modified-Since, and the in-memory copy of the published documents, refreshed
//! when the store's publish generation moves.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use axum::http::{HeaderMap, HeaderValue, header};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::publish::strong_etag;
use crate::store::{Store, StoreError};

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
    /// A body rendered for one request, its ETag computed from it.
    pub fn new(body: Bytes, last_modified: Option<SystemTime>) -> Representation {
        let etag = strong_etag(&body);
        Representation::with_etag(body, etag, last_modified)
    }

    /// A body whose strong ETag is known already (a published document's).
    pub fn with_etag(
        body: Bytes,
        etag: String,
        last_modified: Option<SystemTime>,
    ) -> Representation {
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

/// The published documents as this server answers them: a copy in memory of what the
/// last publish stored, by name, replaced whole when the store's publish generation
/// moves. A request touches neither the store nor a lock; following the generation is
/// [`PublishedCache::follow`]'s job (one small read per interval), and a publisher in
/// this process calls [`PublishedCache::refresh`] after its publish.
///
/// Both backends serve this way, SQLite too: the documents are in the store either
/// way, so one code path answers the same bytes and ETags whichever process published
/// (a `bantin crawl` from cron, a daemon, another worker); the feeds folder is a copy
/// for static hosting, not what the server reads.
#[derive(Debug, Default)]
pub struct PublishedCache {
    /// Read on every request; replaced whole by the rare refresh.
    current: ArcSwap<Snapshot>,
    /// One refresh at a time, so an older snapshot never replaces a newer one.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Snapshot {
    /// `None` until the first load.
    generation: Option<u64>,
    documents: HashMap<Box<str>, Arc<Representation>>,
}

impl PublishedCache {
    /// The published document `name`, if the last publish made one. The first call
    /// loads the documents from `store`; later ones answer from memory.
    pub async fn get(
        &self,
        store: &Arc<dyn Store>,
        name: &str,
    ) -> Result<Option<Arc<Representation>>, StoreError> {
        if self.current.load().generation.is_none() {
            self.refresh(store).await?;
        }
        Ok(self.current.load().documents.get(name).cloned())
    }

    /// The publish generation this server answers, `None` before the first load.
    pub fn generation(&self) -> Option<u64> {
        self.current.load().generation
    }

    /// Reads the store's publish generation and, when it is not the one in memory,
    /// every published document. Returns whether the copy changed.
    pub async fn refresh(&self, store: &Arc<dyn Store>) -> Result<bool, StoreError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let held = self.current.load().generation;
        let generation = blocking(store, |s| s.publish_generation()).await?;
        if held == Some(generation) {
            return Ok(false);
        }
        let published = blocking(store, |s| s.published()).await?;
        let documents = published
            .documents
            .into_iter()
            .map(|doc| {
                let modified = doc.last_modified.map(SystemTime::from);
                let rep = Representation::with_etag(Bytes::from(doc.body), doc.etag, modified);
                (doc.name.into_boxed_str(), Arc::new(rep))
            })
            .collect();
        self.current.store(Arc::new(Snapshot {
            generation: Some(published.generation),
            documents,
        }));
        Ok(true)
    }

    /// Refreshes every `every` until `stop` is cancelled, so that a publish by another
    /// process is answered within one interval. A failed read is logged and tried again
    /// at the next tick; the copy in memory is answered meanwhile.
    pub async fn follow(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        every: std::time::Duration,
        stop: CancellationToken,
    ) {
        let mut failing = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            match self.refresh(&store).await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!("published feeds read again");
                }
                Ok(_) => {}
                Err(err) if !failing => {
                    failing = true;
                    tracing::warn!(error = %crate::error_chain(&err), "cannot read the published feeds; answering the last copy");
                }
                Err(_) => {}
            }
        }
    }
}

/// Runs a store call on a blocking thread.
async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    call: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || call(store.as_ref()))
        .await
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn brotli_is_preferred_then_gzip_and_a_refused_coding_is_never_sent() {
        assert_eq!(
            preferred_coding(&accepting("gzip, deflate, br")),
            Some(Coding::Brotli)
        );
        assert_eq!(
            preferred_coding(&accepting("br;q=0, gzip")),
            Some(Coding::Gzip)
        );
        assert_eq!(preferred_coding(&accepting("GZIP")), Some(Coding::Gzip));
        assert_eq!(preferred_coding(&accepting("gzip; q=0, deflate")), None);
        assert_eq!(preferred_coding(&HeaderMap::new()), None);
    }

    #[test]
    fn each_coding_decodes_to_the_body_and_has_its_own_tag() {
        use std::io::Read;
        let body = Bytes::from("<rss>Lực lượng Công an</rss>".repeat(200));
        let rep = Representation::new(body.clone(), None);
        let mut gunzipped = Vec::new();
        flate2::read::GzDecoder::new(&rep.encoded(Coding::Gzip)[..])
            .read_to_end(&mut gunzipped)
            .unwrap();
        let mut unbrotlied = Vec::new();
        brotli::Decompressor::new(&rep.encoded(Coding::Brotli)[..], 4096)
            .read_to_end(&mut unbrotlied)
            .unwrap();
        assert_eq!(gunzipped, body);
        assert_eq!(unbrotlied, body);
        let tags: Vec<_> = [None, Some(Coding::Gzip), Some(Coding::Brotli)]
            .map(|c| rep.etag_header(c).clone())
            .into();
        assert_ne!(tags[0], tags[1]);
        assert_ne!(tags[1], tags[2]);
        assert_eq!(
            tags[2],
            format!("\"{}-br\"", rep.etag.trim_matches('"')).as_str()
        );
    }

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
