//! Speed of extraction against bare HTML parsing with the same parser, over the pages of
//! `../shared/corpus/benchmark/zyte-article-extraction-benchmark` (or the folder given as
//! the first argument). Prints pages/s and MB/s for both and their ratio.
//!
//! `cargo bench --bench extract [-- DIR]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bantin::config::ArticleRules;
use bantin::fetch::charset::decode_html;
use url::Url;

/// Rounds over the page set; the best round of each counts (least disturbed by other
/// work).
const ROUNDS: usize = 9;

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from("../shared/corpus/benchmark/zyte-article-extraction-benchmark")
        });
    let mut pages: Vec<(String, Url)> = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no pages in {}", dir.display());
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "html") {
            let bytes = std::fs::read(&p).expect("page is readable");
            let url = std::fs::read_to_string(p.with_extension("json"))
                .ok()
                .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
                .and_then(|v| v["url"].as_str().and_then(|u| Url::parse(u).ok()))
                .unwrap_or_else(|| Url::parse("https://example.invalid/").expect("valid"));
            pages.push((decode_html(&bytes, None).0, url));
        }
    }
    let bytes: usize = pages.iter().map(|(h, _)| h.len()).sum();
    let rules = ArticleRules::default();
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let fetched_at = chrono::Utc::now();
    let parse = || {
        for (html, _) in &pages {
            std::hint::black_box(scraper::Html::parse_document(html));
        }
    };
    let extract = || {
        for (html, url) in &pages {
            let input = bantin::extract::Input {
                url,
                rules: &rules,
                zone: tz,
                fetched_at,
            };
            let _ = std::hint::black_box(bantin::extract::article(html, &input));
        }
    };
    // The two take turns within each round, so a busy spell of the machine slows both.
    let timed = |f: &dyn Fn()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let (mut parse_best, mut extract_best) = (Duration::MAX, Duration::MAX);
    for _ in 0..ROUNDS {
        parse_best = parse_best.min(timed(&parse));
        extract_best = extract_best.min(timed(&extract));
    }
    let (parse, extract) = (parse_best, extract_best);
    let report = |name: &str, d: Duration| {
        println!(
            "{name:<16} {:>7.1} pages/s {:>6.1} MB/s",
            pages.len() as f64 / d.as_secs_f64(),
            bytes as f64 / 1e6 / d.as_secs_f64()
        );
    };
    println!(
        "{} pages, {:.1} MB, best of {ROUNDS} rounds, one thread",
        pages.len(),
        bytes as f64 / 1e6
    );
    report("parse (scraper)", parse);
    report("full extraction", extract);
    println!(
        "extraction / parse time: {:.2}x",
        extract.as_secs_f64() / parse.as_secs_f64()
    );
}
