//! Cost of deeply nested HTML: extraction of one page plus publishing it in every feed
//! format, for pages of 10k, 20k, 40k and 100k nested `<div>`s and for a flat page of
//! the same byte size (as many empty `<div></div>`s side by side). Prints both times and
//! their ratio; linear work keeps the ratio near 1 (the goal is at most 2).
//!
//! `cargo bench --bench nesting`

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bantin::config::ArticleRules;
use bantin::model::{CategoryId, Item, ItemId, SourceId};
use bantin::publish::{self, FeedFormat, FeedMeta, RenderContext};
use chrono::Utc;
use url::Url;

/// Rounds per page; the best round counts (least disturbed by other work).
const ROUNDS: usize = 3;
const DEPTHS: [usize; 4] = [10_000, 20_000, 40_000, 100_000];

/// An article page with `middle` between its paragraphs.
fn page(middle: &str) -> String {
    let paragraphs: String = (0..20)
        .map(|n| {
            format!(
                "<p>Đoạn {n}: lực lượng Công an nhân dân bắt giữ đối tượng trong đêm, \
                 thu giữ nhiều tang vật.</p>"
            )
        })
        .collect();
    format!(
        "<html><head><title>Bài lồng sâu</title></head><body><article><h1>Bài lồng sâu</h1>\
         <div class=\"date\">02/05/2024 08:15</div>{paragraphs}{middle}</article></body></html>"
    )
}

fn nested(depth: usize) -> String {
    page(&format!(
        "{}<p>Đáy sâu nhất của bài viết.</p>{}",
        "<div>".repeat(depth),
        "</div>".repeat(depth)
    ))
}

/// As many bytes as `nested(depth)`, none of it nested.
fn flat(depth: usize) -> String {
    page(&format!(
        "{}<p>Đáy sâu nhất của bài viết.</p>",
        "<div></div>".repeat(depth)
    ))
}

fn meta() -> FeedMeta {
    FeedMeta {
        id: CategoryId::from("all"),
        title: "bantin".into(),
        description: "every category".into(),
        language: "vi".into(),
        base_url: Url::parse("http://127.0.0.1:8080/").expect("literal URL parses"),
        ttl_minutes: Some(20),
        items_per_feed: 50,
        websub_hub: None,
        stylesheet: false,
    }
}

/// Extracts `html` and renders it in the three feed formats.
fn extract_and_publish(html: &str, url: &Url, meta: &FeedMeta, ctx: &RenderContext) {
    let tz = chrono_tz::Asia::Ho_Chi_Minh;
    let input = bantin::extract::Input {
        url,
        rules: &ArticleRules::default(),
        zone: tz,
        fetched_at: Utc::now(),
    };
    let article = bantin::extract::article(html, &input).expect("the bench page is an article");
    let item = Item {
        id: ItemId::from("bench-1"),
        article,
        source: SourceId::from("bench"),
        categories: Vec::new(),
        first_seen: Utc::now(),
        updated_at: Utc::now(),
        links: Vec::new(),
    };
    for format in FeedFormat::ALL {
        std::hint::black_box(publish::render(
            format,
            meta,
            std::slice::from_ref(&item),
            ctx,
        ));
    }
}

fn best(f: impl Fn()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .expect("at least one round")
}

fn main() {
    let url = Url::parse("https://news.test/bai-long-sau").expect("literal URL parses");
    let meta = meta();
    let ctx = RenderContext {
        generator: publish::generator(),
        category_titles: BTreeMap::new(),
    };
    println!("extraction + publish (RSS, Atom, JSON), best of {ROUNDS} rounds, one thread");
    println!(
        "{:>8} {:>9} {:>11} {:>11} {:>7}",
        "depth", "bytes", "nested ms", "flat ms", "ratio"
    );
    for depth in DEPTHS {
        let (deep, wide) = (nested(depth), flat(depth));
        let nested_time = best(|| extract_and_publish(&deep, &url, &meta, &ctx));
        let flat_time = best(|| extract_and_publish(&wide, &url, &meta, &ctx));
        println!(
            "{depth:>8} {:>9} {:>11.1} {:>11.1} {:>6.2}x",
            deep.len(),
            nested_time.as_secs_f64() * 1e3,
            flat_time.as_secs_f64() * 1e3,
            nested_time.as_secs_f64() / flat_time.as_secs_f64()
        );
    }
}
