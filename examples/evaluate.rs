//! Scores extraction against the shared corpus:
//! - `articles/`: per-field hit rate against the `.json` beside each page;
//! - `benchmark/zyte-article-extraction-benchmark`: mean precision, recall and F1 of the main
//!   text (see [`main_text`]) with the shingle metric of `benchmark/README.md`;
//! - `benchmark/trafilatura-eval`: share of `with` strings found and `without` strings absent
//!   in the same main text.
//!
//! Each benchmark is also scored on two halves split by a hash of the file name: rules are
//! tuned on half A, and half B estimates how they do on pages not seen while tuning.
//! `examples/trafilatura_compare.py` scores trafilatura on the same pages and halves.
//!
//! `cargo run --release --example evaluate -- [CORPUS_DIR] [-v]` (default `../shared/corpus`);
//! `-v` lists the misses; `--show FILE...` prints what is extracted from those pages.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use bantin::config::ArticleRules;
use bantin::extract;
use bantin::fetch::charset::decode_html;
use bantin::model::{Article, Field, Origin};
use regex::Regex;
use serde_json::Value;
use url::Url;

const HCM: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    if let Some(i) = args.iter().position(|a| a == "--show") {
        for file in &args[i + 1..] {
            show(Path::new(file));
        }
        return;
    }
    let corpus = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/corpus"));
    articles(&corpus.join("articles"), verbose);
    zyte(
        &corpus.join("benchmark/zyte-article-extraction-benchmark"),
        verbose,
    );
    trafilatura(&corpus.join("benchmark/trafilatura-eval"), verbose);
}

fn pages(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "html") {
                let json = p.with_extension("json");
                if let Ok(text) = std::fs::read_to_string(&json)
                    && let Ok(v) = serde_json::from_str(&text)
                {
                    out.push((p, v));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The half a page falls in: "A" or "B" by the FNV-1a hash of its file name's stem (a
/// hash that any language computes the same way).
fn half(path: &Path) -> &'static str {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let hash = stem.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    if hash % 2 == 0 { "A" } else { "B" }
}

/// The keys a page's score is added under: the whole set and its half.
fn groups(path: &Path) -> [&'static str; 2] {
    ["all", half(path)]
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    }
}

fn extract_file(path: &Path, url: &str) -> (Option<Article>, Duration, usize) {
    let bytes = std::fs::read(path).expect("corpus page is readable");
    let url =
        Url::parse(url).unwrap_or_else(|_| Url::parse("https://example.invalid/").expect("valid"));
    let start = Instant::now();
    let (html, _) = decode_html(&bytes, None);
    let input = extract::Input {
        url: &url,
        rules: &ArticleRules::default(),
        zone: HCM,
        fetched_at: chrono::Utc::now(),
    };
    let article = extract::article(&html, &input).ok();
    (article, start.elapsed(), bytes.len())
}

/// Prints the title and the main text extracted from one page.
fn show(path: &Path) {
    let url = std::fs::read_to_string(path.with_extension("json"))
        .ok()
        .and_then(|j| serde_json::from_str::<Value>(&j).ok())
        .and_then(|v| v["url"].as_str().map(str::to_owned))
        .unwrap_or_default();
    match extract_file(path, &url).0 {
        Some(a) => println!("# {}\n{}\n", a.title, main_text(&a)),
        None => println!("{}: no article", path.display()),
    }
}

fn articles(dir: &Path, verbose: bool) {
    let pages = pages(dir);
    if pages.is_empty() {
        return;
    }
    let mut hits: Vec<(&str, usize)> = Vec::new();
    let fields = [
        "url",
        "title",
        "published",
        "updated",
        "authors",
        "lead",
        "body_first",
        "body_last",
        "image",
        "tags",
    ];
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (path, expected) in &pages {
        let url = expected["url"].as_str().unwrap_or_default();
        let (article, _, _) = extract_file(path, url);
        let Some(a) = article else {
            println!("  {}: no article", path.display());
            continue;
        };
        let text = a.body_text.replace("\n\n", " ");
        let got: HashMap<&str, Value> = HashMap::from([
            (
                "url",
                a.canonical_url
                    .as_ref()
                    .map_or(Value::Null, |u| u.as_str().into()),
            ),
            ("title", a.title.clone().into()),
            (
                "published",
                a.published.map_or(Value::Null, |d| d.to_rfc3339().into()),
            ),
            (
                "updated",
                a.updated.map_or(Value::Null, |d| d.to_rfc3339().into()),
            ),
            ("authors", a.authors.clone().into()),
            ("lead", a.lead.clone().map_or(Value::Null, Into::into)),
            (
                "body_first",
                text.chars().take(80).collect::<String>().into(),
            ),
            ("body_last", {
                let n = text.chars().count();
                text.chars()
                    .skip(n.saturating_sub(80))
                    .collect::<String>()
                    .into()
            }),
            (
                "image",
                a.image.as_ref().map_or(Value::Null, |u| u.as_str().into()),
            ),
            ("tags", a.tags.clone().into()),
        ]);
        for f in fields {
            if got[f] == expected[f] {
                *counts.entry(f).or_default() += 1;
            } else if verbose {
                println!(
                    "  {} {f}:\n    want {}\n    got  {}",
                    path.strip_prefix(dir).unwrap_or(path).display(),
                    expected[f],
                    got[f]
                );
            }
        }
    }
    for f in fields {
        hits.push((f, counts.get(f).copied().unwrap_or(0)));
    }
    println!(
        "articles ({} pages, no selectors): per-field hits",
        pages.len()
    );
    for (f, n) in hits {
        println!(
            "  {f:<11} {n:>2}/{} ({:.0}%)",
            pages.len(),
            100.0 * n as f64 / pages.len() as f64
        );
    }
}

static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\w+").expect("literal regex compiles"));

/// The multiset of 4-token shingles of a text.
fn shingles(text: &str) -> HashMap<Vec<&str>, usize> {
    let tokens: Vec<&str> = WORD.find_iter(text).map(|m| m.as_str()).collect();
    let mut out = HashMap::new();
    if tokens.is_empty() {
        return out;
    }
    if tokens.len() < 4 {
        out.insert(tokens, 1);
        return out;
    }
    for w in tokens.windows(4) {
        *out.entry(w.to_vec()).or_insert(0) += 1;
    }
    out
}

/// (precision, recall) of one page, each `None` where the README leaves the page out.
fn score(predicted: &str, truth: &str) -> (Option<f64>, Option<f64>) {
    let p = shingles(predicted);
    let t = shingles(truth);
    let tp: usize = p
        .iter()
        .map(|(k, n)| (*n).min(t.get(k).copied().unwrap_or(0)))
        .sum();
    let fp = p.values().sum::<usize>() - tp;
    let fn_ = t.values().sum::<usize>() - tp;
    let total = (tp + fp + fn_) as f64;
    if fp == 0 && fn_ == 0 {
        return (Some(1.0), Some(1.0));
    }
    let (tp, fp, fn_) = (tp as f64 / total, fp as f64 / total, fn_ as f64 / total);
    let precision = (tp + fp > 0.0).then(|| tp / (tp + fp));
    let recall = (tp + fn_ > 0.0).then(|| tp / (tp + fn_));
    (precision, recall)
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn zyte(dir: &Path, verbose: bool) {
    let pages = pages(dir);
    if pages.is_empty() {
        return;
    }
    let mut scores: HashMap<&str, (Vec<f64>, Vec<f64>)> = HashMap::new();
    let mut elapsed = Duration::ZERO;
    let mut bytes = 0;
    let mut worst = Vec::new();
    for (path, expected) in &pages {
        let url = expected["url"].as_str().unwrap_or_default();
        let (article, took, size) = extract_file(path, url);
        elapsed += took;
        bytes += size;
        let text = article.as_ref().map(main_text).unwrap_or_default();
        let (p, r) = score(&text, expected["articleBody"].as_str().unwrap_or_default());
        for g in groups(path) {
            let (ps, rs) = scores.entry(g).or_default();
            ps.extend(p);
            rs.extend(r);
        }
        worst.push((
            p.unwrap_or(0.0),
            r.unwrap_or(0.0),
            half(path),
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ));
    }
    println!(
        "zyte-article-extraction-benchmark ({} pages): {:.0} pages/s {:.1} MB/s (decode+extract, one thread)",
        pages.len(),
        pages.len() as f64 / elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
    for g in ["all", "A", "B"] {
        let (ps, rs) = scores.remove(g).unwrap_or_default();
        let (p, r) = (mean(&ps), mean(&rs));
        println!(
            "  {g:<3} ({} pages): precision {p:.3} recall {r:.3} F1 {:.3}",
            rs.len(),
            f1(p, r)
        );
    }
    if verbose {
        worst.sort_by(|a, b| (a.0 + a.1).total_cmp(&(b.0 + b.1)));
        for (p, r, h, f) in worst.iter().take(200) {
            println!("  P {p:.2} R {r:.2} {h} {f}");
        }
    }
}

/// The article's text as bantin publishes it from the page, scored alike on both
/// benchmarks: the standfirst when it was read from the page's own text (published as the
/// item's summary) followed by the body (the item's content). A summary only the page's
/// metadata gives (og:description, JSON-LD) is not text of the page, and trafilatura's
/// output leaves it out too; the title is the item's title, not its content.
fn main_text(a: &Article) -> String {
    let from_page = matches!(
        a.provenance.get(&Field::Lead),
        Some(Origin::Heuristic | Origin::Selector)
    );
    match a.lead.as_deref().filter(|_| from_page) {
        Some(lead) => format!("{lead}\n\n{}", a.body_text),
        None => a.body_text.clone(),
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn trafilatura(dir: &Path, verbose: bool) {
    let pages = pages(dir);
    if pages.is_empty() {
        return;
    }
    // Per group: with found, with total, without absent, without total.
    let mut counts: HashMap<&str, [usize; 4]> = HashMap::new();
    for (path, expected) in &pages {
        let url = expected["url"].as_str().unwrap_or_default();
        let (article, _, _) = extract_file(path, url);
        let text = squash(&article.as_ref().map(main_text).unwrap_or_default());
        let strings = |k: &str| -> Vec<String> {
            expected[k]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str()).map(squash).collect())
                .unwrap_or_default()
        };
        let mut add = |i: usize, hit: bool| {
            for g in groups(path) {
                let c = counts.entry(g).or_default();
                c[i] += usize::from(hit);
                c[i + 1] += 1;
            }
        };
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        for s in strings("with") {
            let hit = text.contains(&s);
            add(0, hit);
            if !hit && verbose {
                println!("  missing in {} {file}: {s}", half(path));
            }
        }
        for s in strings("without") {
            let hit = !text.contains(&s);
            add(2, hit);
            if !hit && verbose {
                println!("  unwanted in {} {file}: {s}", half(path));
            }
        }
    }
    println!("trafilatura-eval ({} pages):", pages.len());
    for g in ["all", "A", "B"] {
        let [found, with_total, absent, without_total] = counts.get(g).copied().unwrap_or_default();
        let r = found as f64 / with_total.max(1) as f64;
        let p = absent as f64 / without_total.max(1) as f64;
        println!(
            "  {g:<3}: precision {p:.3} recall {r:.3} F1 {:.3}",
            f1(p, r)
        );
    }
}
