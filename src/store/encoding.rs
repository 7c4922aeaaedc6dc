//! How values travel in and out of stored rows: error context for a failed SQLite
//! statement, zlib for stored articles and pages, articles as compressed JSON, and
//! timestamps as milliseconds. A leaf module: both backends use it and it uses none of
//! the store's other modules.

use std::cell::RefCell;
use std::io::Read;

use chrono::{DateTime, TimeZone, Utc};
use flate2::read::ZlibDecoder;
use flate2::{Compress, Compression, FlushCompress, Status};

use super::StoreError;
use crate::model::Article;

/// Wraps a SQLite error with what the statement was doing.
pub(crate) fn sql(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { what, source }
}

thread_local! {
    /// One zlib compressor per thread, reset between uses: a fresh one allocates and
    /// clears several hundred KB of tables, which cost more than compressing an article.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), true));
}

/// zlib at a fast level: pages and articles are text and shrink about 4×.
pub(crate) fn compress(bytes: &[u8]) -> Vec<u8> {
    COMPRESSOR.with_borrow_mut(|zlib| {
        zlib.reset();
        // Deflate adds at most a few bytes per 16 KB block; the loop covers the rest.
        let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 64 + 64);
        loop {
            let read = zlib.total_in() as usize;
            let status = zlib
                .compress_vec(&bytes[read..], &mut out, FlushCompress::Finish)
                .expect("deflate into a Vec with spare room cannot fail");
            if status == Status::StreamEnd {
                return out;
            }
            out.reserve(out.capacity().max(64));
        }
    })
}

pub(crate) fn decompress(bytes: &[u8], what: &str) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    ZlibDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
    Ok(out)
}

pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// An article as a stored blob: JSON, compressed.
pub(crate) fn encode_article(article: &Article) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(article)
        .map_err(|e| StoreError::Corrupt(format!("article cannot be encoded: {e}")))?;
    Ok(compress(&json))
}

/// The article stored as `blob` for item `id`.
pub(crate) fn decode_article(blob: &[u8], id: &str) -> Result<Article, StoreError> {
    let json = decompress(blob, id)?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt(format!("item {id}: {e}")))
}

/// The time feeds sort an item by, in milliseconds: published when known, else `now`.
pub(crate) fn sort_time(article: &Article, now: i64) -> i64 {
    article
        .published
        .map(|p| p.timestamp_millis())
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_round_trips_empty_text_and_incompressible_bytes() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let noise: Vec<u8> = (0..1_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let text = "Công an nhân dân ".repeat(10_000).into_bytes();
        for input in [Vec::new(), text, noise] {
            let packed = compress(&input);
            assert_eq!(decompress(&packed, "test").unwrap(), input);
        }
        // The reused compressor starts clean each time.
        assert_eq!(compress(b"abc"), compress(b"abc"));
    }
}
