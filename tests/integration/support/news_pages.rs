//! Generated news pages for tests and benchmarks of many sources: source `n` has a
//! listing page at [`listing_path`] that links its articles, and article `(n, k)` is a
//! page of synthetic text, different from every other (no two are near duplicates).
//! Both use the markup the listing sources in tests select: `div.list article.story`,
//! article links ending in `-iNNNNN/`.

use super::synthetic;

/// Where source `n`'s listing is.
pub fn listing_path(n: usize) -> String {
    format!("/list-{n}/")
}

/// Where article `k` of source `n` is.
pub fn article_path(n: usize, k: usize) -> String {
    format!("/tin-tuc/bai-{n}-{k}-i{:05}/", n * 100 + k)
}

/// Source `n`'s listing, linking its `articles` articles.
pub fn listing(n: usize, articles: usize) -> String {
    let stories: String = (0..articles)
        .map(|k| {
            format!(
                "<article class=\"story\"><h3><a href=\"{}\">Tin {n}-{k}</a></h3></article>",
                article_path(n, k)
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Tin {n}</title>\
         </head><body><div class=\"list\">{stories}</div></body></html>"
    )
}

/// Article `k` of source `n`, dated today.
pub fn article(n: usize, k: usize) -> String {
    let text = synthetic::article((n * 100 + k) as u64, 150);
    let date = chrono::Utc::now().format("%d/%m/%Y 08:00");
    let body: String = text
        .body_text
        .split('\n')
        .map(|p| format!("<p>{p}</p>"))
        .collect();
    format!(
        "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         </head><body><article><h1 class=\"title\">{title}</h1><div class=\"date\">{date}</div>\
         <p class=\"lead\">{lead}</p><div class=\"body\">{body}</div></article></body></html>",
        title = text.title,
        lead = text.lead.unwrap_or_default(),
    )
}

/// A listing source named `id` reading `listing_url` on `schedule`.
pub fn source_toml(id: &str, listing_url: &str, schedule: &str) -> String {
    format!(
        "[[source]]\nid = \"{id}\"\nkind = \"listing\"\nurls = [\"{listing_url}\"]\n\
         schedule = \"{schedule}\"\n\n[source.links]\nselector = \"div.list article.story\"\n\
         pattern = \"-i\\\\d{{5}}/?$\"\n\n"
    )
}
