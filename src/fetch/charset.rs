//! Decoding a page's bytes to text: byte-order mark, then the HTTP `Content-Type`
//! charset, then `<meta charset>` / `http-equiv`, then UTF-8. Invalid bytes become
//! U+FFFD; nothing here fails.

use std::sync::LazyLock;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use regex::bytes::Regex;

/// How far into a page `<meta charset>` is looked for (the HTML spec says 1024 bytes;
/// real pages put long `<head>` scripts first, so read further).
const META_PRESCAN_BYTES: usize = 8192;

static META_CHARSET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)<meta\s[^>]*?charset\s*=\s*["']?\s*([a-z0-9_\-:.]+)"#)
        .expect("literal regex compiles")
});

/// Decodes an HTML page. `content_type` is the HTTP header value, if any.
pub fn decode_html(bytes: &[u8], content_type: Option<&str>) -> (String, &'static Encoding) {
    let encoding = detect(bytes, content_type);
    let (text, _, _) = encoding.decode(bytes);
    (text.into_owned(), encoding)
}

/// Picks the encoding of a page.
pub fn detect(bytes: &[u8], content_type: Option<&str>) -> &'static Encoding {
    if let Some((bom, _)) = Encoding::for_bom(bytes) {
        return bom;
    }
    let header = content_type.and_then(charset_param).and_then(label);
    let meta = meta_charset(bytes);
    match (header, meta) {
        (Some(h), Some(m)) if h != m => {
            // A server default often contradicts the page; the bytes decide which is right.
            let valid_utf8 = std::str::from_utf8(bytes).is_ok();
            if (h == UTF_8 || m == UTF_8) && valid_utf8 {
                UTF_8
            } else if h == UTF_8 {
                m
            } else {
                h
            }
        }
        (Some(h), _) => h,
        (None, Some(m)) => m,
        (None, None) if std::str::from_utf8(bytes).is_ok() => UTF_8,
        (None, None) => WINDOWS_1252,
    }
}

fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']))
    })
}

fn meta_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(META_PRESCAN_BYTES)];
    let caps = META_CHARSET.captures(head)?;
    label(std::str::from_utf8(&caps[1]).ok()?)
}

fn label(name: &str) -> Option<&'static Encoding> {
    let encoding = Encoding::for_label(name.trim().as_bytes())?;
    // A page that names UTF-16 in ASCII bytes cannot be UTF-16 (HTML spec rule).
    Some(if encoding.name().starts_with("UTF-16") {
        UTF_8
    } else {
        encoding
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Đảng viên" as windows-1258 writes it: Đ, a + combining hook above, ê.
    fn windows_1258_page() -> Vec<u8> {
        let mut page = b"<html><head><meta charset=\"windows-1258\"></head><body>".to_vec();
        page.extend_from_slice(&[0xD0, b'a', 0xD2, b'n', b'g', b' ', b'v', b'i', 0xEA, b'n']);
        page.extend_from_slice(b"</body></html>");
        page
    }

    #[test]
    fn meta_charset_decodes_windows_1258() {
        let (text, enc) = decode_html(&windows_1258_page(), None);
        assert_eq!(enc.name(), "windows-1258", "{text}");
        let text = crate::text::normalize(&text);
        assert!(text.contains("Đảng viên"), "{text:?}");
    }

    #[test]
    fn header_wins_over_meta_when_both_plausible() {
        // Neither is UTF-8 and the bytes are not UTF-8: nothing overrules the header.
        let (_, enc) = decode_html(
            &windows_1258_page(),
            Some("text/html; charset=windows-1252"),
        );
        assert_eq!(enc.name(), "windows-1252");
    }

    #[test]
    fn wrong_utf8_header_falls_back_to_meta() {
        let (text, enc) = decode_html(&windows_1258_page(), Some("text/html; charset=utf-8"));
        assert_eq!(enc.name(), "windows-1258");
        assert!(crate::text::normalize(&text).contains("Đảng viên"));
    }

    #[test]
    fn wrong_latin1_header_with_utf8_bytes_and_meta_is_utf8() {
        let page = "<meta charset=utf-8><p>Công an nhân dân</p>".as_bytes();
        let (text, enc) = decode_html(page, Some("text/html; charset=iso-8859-1"));
        assert_eq!(enc, UTF_8);
        assert!(text.contains("Công an nhân dân"));
    }

    #[test]
    fn bom_wins() {
        let mut page = vec![0xEF, 0xBB, 0xBF];
        page.extend_from_slice("<meta charset=windows-1252>Đ".as_bytes());
        assert_eq!(detect(&page, Some("text/html; charset=latin1")), UTF_8);
    }

    #[test]
    fn invalid_bytes_never_fail() {
        let (text, _) = decode_html(
            &[0x3C, 0xFF, 0xFE, 0x00, 0xC3],
            Some("text/html; charset=utf-8"),
        );
        assert!(text.contains('\u{FFFD}'));
    }
}
