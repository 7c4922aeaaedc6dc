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

/// How SimHashes are indexed for lookup. A hash is cut into `count` contiguous bands and
/// each band's value is stored. Two hashes at most `distance` bits apart differ in at most
/// `distance / count` bits of some band (pigeonhole), so a lookup probes every band's
/// value with up to `flips = distance / count` of its bits flipped and finds every near
/// duplicate. Few wide bands mean more probes but almost no false candidates; many
/// narrow bands mean few probes but candidates that grow with the store. The layout is
/// chosen so the total stays small at `DESIGN_ITEMS`, which keeps lookup time flat
/// as the store grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bands {
    count: u32,
    flips: u32,
}

/// More bands than this would make each band too narrow to select anything.
const MAX_BANDS: u32 = 16;
/// Store size the band layout is chosen for: the expected candidates per lookup are
/// weighed at this many items.
const DESIGN_ITEMS: f64 = 1e8;

impl Bands {
    /// The cheapest layout that finds every hash within `distance` bits.
    pub fn for_distance(distance: u32) -> Bands {
        (1..=(distance + 1).min(MAX_BANDS))
            .map(|count| Bands {
                count,
                flips: distance / count,
            })
            .min_by(|a, b| a.cost().total_cmp(&b.cost()))
            .expect("at least one band count is tried")
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// Bits flipped per band when probing.
    pub fn flips(self) -> u32 {
        self.flips
    }

    /// Short description stored beside the index, so a store opened with another
    /// layout rebuilds it.
    pub fn layout(self) -> String {
        format!("{} bands, {} flips", self.count, self.flips)
    }

    /// Expected index probes plus false candidates per lookup at [`DESIGN_ITEMS`].
    fn cost(self) -> f64 {
        self.widths()
            .map(|(_, width)| {
                let probes = subsets(width, self.flips);
                probes + probes * DESIGN_ITEMS / 2f64.powi(width as i32)
            })
            .sum()
    }

    /// `(start bit, width)` of each band; the first `64 % count` bands are one bit wider.
    fn widths(self) -> impl Iterator<Item = (u32, u32)> {
        let base = 64 / self.count;
        let extra = 64 % self.count;
        let mut start = 0u32;
        (0..self.count).map(move |band| {
            let width = base + u32::from(band < extra);
            let range = (start, width);
            start += width;
            range
        })
    }

    /// `(band, value)` of each band of a hash: the rows stored for it.
    pub fn keys(self, hash: u64) -> impl Iterator<Item = (u32, u64)> {
        self.widths()
            .enumerate()
            .map(move |(band, (start, width))| (band as u32, (hash >> start) & low_bits(width)))
    }

    /// `(band, value)` rows to look up to find every hash within the distance of `hash`:
    /// each band's value with every combination of up to `flips` bits flipped.
    pub fn probes(self, hash: u64) -> Vec<(u32, u64)> {
        let mut probes = Vec::new();
        for ((band, value), (_, width)) in self.keys(hash).zip(self.widths()) {
            probes.extend(flip_masks(width, self.flips).map(|mask| (band, value ^ mask)));
        }
        probes
    }
}

fn low_bits(width: u32) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

/// Number of ways to pick at most `flips` of `width` bits.
fn subsets(width: u32, flips: u32) -> f64 {
    let mut total = 0.0;
    let mut choose = 1.0;
    for k in 0..=flips.min(width) {
        total += choose;
        choose = choose * f64::from(width - k) / f64::from(k + 1);
    }
    total
}

/// Every mask of at most `flips` set bits below bit `width`, the empty mask first.
fn flip_masks(width: u32, flips: u32) -> impl Iterator<Item = u64> {
    let mut masks = vec![0u64];
    // Each round sets one more bit above the highest one already set, so every
    // combination is made exactly once.
    let mut frontier = vec![(0u64, 0u32)];
    for _ in 0..flips {
        let mut next = Vec::new();
        for (mask, from) in frontier {
            for bit in from..width {
                let m = mask | 1 << bit;
                masks.push(m);
                next.push((m, bit + 1));
            }
        }
        frontier = next;
    }
    masks.into_iter()
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
    fn bands_cover_all_bits_and_probes_find_every_close_hash() {
        let h = 0x9E37_79B9_7F4A_7C15u64;
        for distance in 0..=8 {
            let bands = Bands::for_distance(distance);
            let rebuilt = bands
                .keys(h)
                .zip(bands.widths())
                .fold(0, |acc, ((_, value), (start, _))| acc | value << start);
            assert_eq!(rebuilt, h, "distance {distance}");
            // Flip `distance` bits, clustered or spread: some probe hits a stored key.
            for stride in [1, 9, 13] {
                let mut other = h;
                for i in 0..distance {
                    other ^= 1 << (i * stride % 64);
                }
                let stored: Vec<_> = bands.keys(h).collect();
                let hit = bands.probes(other).iter().any(|p| stored.contains(p));
                assert!(hit, "distance {distance}, stride {stride}");
            }
        }
    }

    #[test]
    fn default_distance_probes_two_wide_bands() {
        // 2 bands of 32 bits with one flip: 66 probes, and about 1.5 false candidates
        // per lookup even at 100M items, instead of N / 65,536 with 4 bands of 16 bits.
        let bands = Bands::for_distance(3);
        assert_eq!((bands.count(), bands.flips()), (2, 1));
        assert_eq!(bands.probes(0).len(), 66);
        let mut probes = bands.probes(0x0123_4567_89ab_cdef);
        probes.sort_unstable();
        probes.dedup();
        assert_eq!(probes.len(), 66, "no probe is made twice");
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
