//! Checks the shipped category rules against a folder of saved article pages with
//! expected categories (`<page>.html` next to `<page>.json` holding `categories`):
//! `cargo run --example classify_corpus -- DIR [config/bantin.toml]`.
//!
//! Title, lead and body are taken with a few common news-site selectors; this is a
//! rough stand-in for the extract stage, good enough to see which words rules hit.

use std::path::{Path, PathBuf};

use bantin::config::Config;
use bantin::model::CategoryId;
use scraper::{Html, Selector};

const TITLE: &str = "h1";
const LEAD: &str = ".box-des-detail, .desnews, .article__sapo, p.description";
const BODY: &str = ".detail-content-body, .post-content, .article__body, article.fck_detail";

fn text_of(doc: &Html, css: &str) -> String {
    let selector = Selector::parse(css).expect("selector is valid");
    doc.select(&selector)
        .next()
        .map(|e| e.text().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn pages(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("folder is readable")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            pages(&path, out);
        } else if path.extension().is_some_and(|e| e == "html")
            && path.with_extension("json").exists()
        {
            out.push(path);
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: classify_corpus DIR [CONFIG]")?);
    let config = Config::load(Path::new(
        &args.next().unwrap_or("config/bantin.toml".into()),
    ))?;
    let mut files = Vec::new();
    pages(&dir, &mut files);
    files.sort();
    let mut wrong = 0;
    for path in &files {
        let (html, _) = bantin::fetch::charset::decode_html(&std::fs::read(path)?, None);
        let doc = Html::parse_document(&html);
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path.with_extension("json"))?)?;
        let json = serde_json::json!({
            "title": text_of(&doc, TITLE),
            "lead": text_of(&doc, LEAD),
            "body_text": text_of(&doc, BODY),
        });
        let article = bantin::classify::article_from_json(&json.to_string())?;
        let got = bantin::classify::categorize(&article, &[], &config.categories);
        let mut want: Vec<CategoryId> = expected["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().map(CategoryId::from))
            .collect();
        want.sort();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let ok = got_sorted == want;
        wrong += usize::from(!ok);
        println!(
            "{} {}: got [{}] want [{}]",
            if ok { "ok  " } else { "FAIL" },
            path.strip_prefix(&dir).unwrap_or(path).display(),
            got.iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            want.iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        );
        if !ok || std::env::var_os("EXPLAIN").is_some() {
            println!(
                "{}",
                bantin::classify::render_explanation(&article, &config.categories)
            );
        }
    }
    println!(
        "{} of {} pages as expected",
        files.len() - wrong,
        files.len()
    );
    Ok(())
}
