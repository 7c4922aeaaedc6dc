//! Synthetic Vietnamese-looking articles of realistic length for load tests and
//! benchmarks: article `n` is always the same text, and different `n` are unrelated
//! texts (far apart in SimHash).

use bantin::model::Article;
use url::Url;

const SYLLABLES: &[&str] = &[
    "công",
    "an",
    "nhân",
    "dân",
    "đảng",
    "bộ",
    "tỉnh",
    "huyện",
    "xã",
    "phường",
    "điều",
    "tra",
    "vụ",
    "án",
    "giao",
    "thông",
    "người",
    "dân",
    "cán",
    "chiến",
    "sĩ",
    "lực",
    "lượng",
    "thành",
    "phố",
    "hội",
    "nghị",
    "tổ",
    "chức",
    "thực",
    "hiện",
    "nhiệm",
    "kết",
    "quả",
    "phong",
    "trào",
    "thi",
    "đua",
    "an",
    "ninh",
    "trật",
    "tự",
    "kinh",
    "tế",
    "xã",
    "văn",
    "hóa",
    "giáo",
    "dục",
    "y",
    "tế",
    "môi",
    "trường",
    "đất",
    "nước",
    "năm",
    "tháng",
    "ngày",
    "sáng",
    "chiều",
    "tối",
    "mới",
    "cũ",
    "lớn",
    "nhỏ",
    "cao",
    "thấp",
    "nhanh",
    "chậm",
    "xe",
    "đường",
    "cầu",
    "sông",
    "núi",
    "biển",
    "rừng",
    "làng",
    "chợ",
    "trường",
    "học",
    "bệnh",
    "viện",
    "nhà",
    "máy",
    "cửa",
    "hàng",
    "tiền",
    "vàng",
    "đô",
    "la",
    "hàng",
    "hóa",
    "lao",
    "động",
    "việc",
    "làm",
    "đời",
    "sống",
    "gia",
    "đình",
    "trẻ",
    "em",
];

/// A small deterministic generator (SplitMix64) so texts do not depend on a crate's
/// random stream.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn words(&mut self, n: usize) -> String {
        let mut out = String::with_capacity(n * 6);
        for i in 0..n {
            if i > 0 {
                out.push(if i % 23 == 0 { '\n' } else { ' ' });
            }
            // Two syllables per word keeps the vocabulary near 10,000 words.
            let a = SYLLABLES[(self.next() % SYLLABLES.len() as u64) as usize];
            let b = SYLLABLES[(self.next() % SYLLABLES.len() as u64) as usize];
            out.push_str(a);
            out.push('-');
            out.push_str(b);
        }
        out
    }
}

/// Words in a typical news story body (about 5 KB of text).
pub const TYPICAL_BODY_WORDS: usize = 450;

/// Article number `n`: a 12-word title, a 40-word lead and a body of `body_words`.
pub fn article(n: u64, body_words: usize) -> Article {
    let mut mix = Mix(n.wrapping_mul(0xA24B_AED4_963E_E407) ^ 0x5851_F42D_4C95_7F2D);
    let title = mix.words(12);
    let lead = mix.words(40);
    let body_text = mix.words(body_words);
    Article {
        url: Url::parse(&format!("https://news.example.vn/tin-tuc/bai-{n}-i{n}/"))
            .expect("synthetic URL is valid"),
        canonical_url: None,
        title,
        published: None,
        updated: None,
        authors: vec![],
        lead: Some(lead),
        body_html: format!("<p>{}</p>", body_text.replace('\n', "</p><p>")),
        body_text,
        image: None,
        tags: vec![],
        section: None,
        language: Some("vi".into()),
        provenance: Default::default(),
    }
}
