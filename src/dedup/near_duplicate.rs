//! Near-duplicate text: a 64-bit SimHash over normalized word shingles, the banding
//! that lets a store find candidates without scanning every item, and the content hash
//! that tells an unchanged page from a changed one. Pure functions; the index itself
//! lives in the store.

use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use crate::model::Article;
use crate::text::normalize;

/// Words per shingle: three-word shingles keep word order without being brittle.
const SHINGLE_WORDS: usize = 3;
/// Bodies with fewer shingles than this are too short for their SimHash to say that
/// two texts are the same story (a caption, a one-line brief).
pub const MIN_SHINGLES: usize = 40;

/// Lower-case, diacritic-free words of a text. Each character is decomposed and only its
/// base kept, which equals folding the NFC text and makes a page served with decomposed
/// or missing tone marks hash like its clean copy.
fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        let mut base = None;
        if c.is_ascii() {
            base = Some(c);
        } else {
            unicode_normalization::char::decompose_canonical(c, |d| {
                if base.is_none() && !unicode_normalization::char::is_combining_mark(d) {
                    base = Some(d);
                }
            });
        }
        match base {
            Some(b) if b.is_alphanumeric() => {
                let b = match b {
                    'đ' | 'Đ' => 'd',
                    other => other,
                };
                word.extend(b.to_lowercase());
            }
            // A lone combining mark belongs to the word around it.
            None => {}
            Some(_) if !word.is_empty() => words.push(std::mem::take(&mut word)),
            Some(_) => {}
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Number of word shingles of a text (how much evidence its SimHash carries).
pub fn shingle_count(text: &str) -> usize {
    words(text).len().saturating_sub(SHINGLE_WORDS - 1)
}

/// 64-bit SimHash of the text's three-word shingles. Texts that differ in a few words
/// have hashes a few bits apart; unrelated texts differ in about 32 bits.
pub fn simhash(text: &str) -> u64 {
    simhash_of_words(&words(text))
}

/// SimHash of a body that has at least [`MIN_SHINGLES`] shingles, else `None`: short
/// texts carry too little to call two of them the same story.
pub fn body_simhash(text: &str) -> Option<u64> {
    let words = words(text);
    (words.len().saturating_sub(SHINGLE_WORDS - 1) >= MIN_SHINGLES)
        .then(|| simhash_of_words(&words))
}

fn simhash_of_words(words: &[String]) -> u64 {
    let mut weights = [0i32; 64];
    let mut feed = |h: u64| {
        for (bit, w) in weights.iter_mut().enumerate() {
            if h >> bit & 1 == 1 {
                *w += 1;
            } else {
                *w -= 1;
            }
        }
    };
    if words.len() < SHINGLE_WORDS {
        feed(xxh3_64(words.join(" ").as_bytes()));
    } else {
        let mut buf = String::new();
        for window in words.windows(SHINGLE_WORDS) {
            buf.clear();
            for (i, w) in window.iter().enumerate() {
                if i > 0 {
                    buf.push(' ');
                }
                buf.push_str(w);
            }
            feed(xxh3_64(buf.as_bytes()));
        }
    }
    weights
        .iter()
        .enumerate()
        .filter(|(_, w)| **w > 0)
        .fold(0u64, |acc, (bit, _)| acc | 1 << bit)
}

/// Number of differing bits.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Hash of what a reader sees (title, lead, body text, NFC and whitespace-normalized):
/// equal hashes mean the page did not change.
pub fn content_hash(article: &Article) -> String {
    let mut text = normalize(&article.title);
    text.push('\n');
    text.push_str(&normalize(article.lead.as_deref().unwrap_or("")));
    text.push('\n');
    text.push_str(&normalize(&article.body_text));
    format!("{:032x}", xxh3_128(text.as_bytes()))
}

/// How SimHashes are split into bands for lookup. With `distance + 1` disjoint bands,
/// two hashes at most `distance` bits apart agree exactly on at least one band
/// (pigeonhole), so looking up each band's value finds every near duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bands {
    count: u32,
}

/// More bands than this would make each band too narrow to select anything.
const MAX_BANDS: u32 = 16;

impl Bands {
    /// Bands that find every hash within `distance` bits.
    pub fn for_distance(distance: u32) -> Bands {
        Bands {
            count: (distance + 1).clamp(1, MAX_BANDS),
        }
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// `(band, value)` of each band of a hash. Bands are contiguous bit ranges; the
    /// first `64 % count` bands are one bit wider.
    pub fn keys(self, hash: u64) -> impl Iterator<Item = (u32, u64)> {
        let base = 64 / self.count;
        let extra = 64 % self.count;
        let mut start = 0u32;
        (0..self.count).map(move |band| {
            let width = base + u32::from(band < extra);
            let mask = if width == 64 {
                u64::MAX
            } else {
                (1u64 << width) - 1
            };
            let value = (hash >> start) & mask;
            start += width;
            (band, value)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORY: &str = "Chiều 17/7, tại Hà Nội, Cục Công tác đảng và công tác chính trị tổ chức \
        hội nghị tổng kết phong trào thi đua vì an ninh Tổ quốc giai đoạn 2015 đến 2020 và sơ kết \
        công tác sáu tháng đầu năm. Thứ trưởng dự và phát biểu chỉ đạo tại hội nghị. Trong năm năm \
        qua, đảng ủy và lãnh đạo cục đã quán triệt thực hiện nghiêm túc các nghị quyết, chỉ thị của \
        Đảng, Nhà nước và Bộ Công an, thường xuyên quan tâm lãnh đạo, chỉ đạo các phong trào thi đua.";

    fn fixture_body() -> String {
        let json =
            include_str!("../../tests/fixtures/classify/party-work-hoi-nghi-cong-tac-dang.json");
        let v: serde_json::Value = serde_json::from_str(json).expect("fixture is JSON");
        v["body_text"]
            .as_str()
            .expect("fixture has body_text")
            .to_owned()
    }

    #[test]
    fn republished_copy_is_near_and_other_text_is_far() {
        let body = fixture_body();
        let copy = format!("{body}\n\nNguyễn Hà - Minh Anh");
        assert!(hamming(simhash(&body), simhash(&copy)) <= 3);
        let other = "Đội khách chơi đầy hưng phấn trong những phút đầu và sớm có bàn mở tỷ số \
            từ một pha phản công nhanh bên cánh trái sau đó đội chủ nhà vùng lên trong hiệp hai \
            và ghi liền ba bàn để giành chiến thắng xứng đáng trước đối thủ cùng hạng";
        assert!(hamming(simhash(&body), simhash(other)) > 10);
    }

    #[test]
    fn simhash_ignores_unicode_form_case_and_spacing() {
        use unicode_normalization::UnicodeNormalization;
        let nfd: String = STORY.nfd().collect();
        let spaced = nfd.to_uppercase().replace(' ', "  \n");
        assert_eq!(simhash(STORY), simhash(&spaced));
    }

    #[test]
    fn bands_cover_all_bits_and_catch_every_close_hash() {
        for distance in [0, 3, 5, 7] {
            let bands = Bands::for_distance(distance);
            let h = 0x9E37_79B9_7F4A_7C15u64;
            let rebuilt = bands
                .keys(h)
                .scan(0u32, |start, (band, value)| {
                    let width = 64 / bands.count() + u32::from(band < 64 % bands.count());
                    let shifted = value << *start;
                    *start += width;
                    Some(shifted)
                })
                .fold(0, |a, b| a | b);
            assert_eq!(rebuilt, h, "distance {distance}");
            // Flip `distance` bits spread over the word: some band still agrees.
            let mut other = h;
            for i in 0..distance {
                other ^= 1 << (i * 9 % 64);
            }
            let agree = bands.keys(h).zip(bands.keys(other)).any(|(a, b)| a == b);
            assert!(agree, "distance {distance}");
        }
    }

    #[test]
    fn content_hash_changes_with_body_not_with_spacing() {
        let article = crate::dedup::tests::article("https://example.org/a", "Tiêu đề", STORY);
        let mut spaced = article.clone();
        spaced.body_text = STORY.replace(". ", ".\n\n ");
        assert_eq!(content_hash(&article), content_hash(&spaced));
        let mut changed = article.clone();
        changed.body_text.push_str(" Thêm một câu.");
        assert_ne!(content_hash(&article), content_hash(&changed));
    }
}
