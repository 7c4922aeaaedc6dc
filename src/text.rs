//! Text normalization shared by every stage: Unicode NFC, collapsed whitespace, and
//! Vietnamese diacritic folding for accent-insensitive matching, and the word form search
//! indexes and queries share.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// NFC, control characters dropped, runs of whitespace collapsed to one space, trimmed.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    let mut push = |c: char| {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if !c.is_control() && !is_invisible(c) {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    };
    // Extracted text is almost always NFC already; the quick check skips recomposing it,
    // and ASCII needs no check.
    if text.is_ascii() || is_nfc_quick(text.chars()) == IsNormalized::Yes {
        text.chars().for_each(&mut push);
    } else {
        text.nfc().for_each(&mut push);
    }
    out
}

/// Zero-width and byte-order characters that carry no text.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
    )
}

/// Removes diacritics ("Công tác Đảng" -> "Cong tac Dang"); đ/Đ, which Unicode does not
/// decompose, become d/D.
pub fn fold_diacritics(text: &str) -> String {
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' => 'd',
            'Đ' => 'D',
            other => other,
        })
        .nfc()
        .collect()
}

/// The words of `text` as search matches them: lower case, without diacritics, only
/// letters and digits, separated by single spaces ("Đảng ủy, (CAO)" -> "dang uy cao").
/// The search index stores this form and a query is put into it too, so "dang" finds
/// "Đảng" and the index and the query never disagree on where a word ends.
pub fn search_terms(text: &str) -> String {
    let folded = fold_diacritics(&text.to_lowercase());
    let mut out = String::with_capacity(folded.len());
    for word in folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_composes_and_collapses_whitespace() {
        let decomposed = "Đa\u{300}ng\u{0000}  \n\t vie\u{302}n\u{200B}";
        assert_eq!(normalize(decomposed), "Đàng viên");
    }

    #[test]
    fn fold_diacritics_strips_vietnamese_marks() {
        assert_eq!(
            fold_diacritics("Công tác Đảng, đảng viên"),
            "Cong tac Dang, dang vien"
        );
        assert_eq!(
            fold_diacritics("Phòng cháy chữa cháy"),
            "Phong chay chua chay"
        );
    }

    #[test]
    fn search_terms_are_folded_lower_case_words() {
        assert_eq!(
            search_terms("ĐẢNG ủy, (CAO) -- \"Công-an\" NEAR(x*)"),
            "dang uy cao cong an near x"
        );
        assert_eq!(search_terms(" * - () \""), "");
    }
}
