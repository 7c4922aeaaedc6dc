//! Categories: an item's categories are its source's categories plus those whose keyword
//! rules match the article. Pure functions over the article and the built config; no
//! storage.

mod rules;

pub use rules::{RuleMatch, TermHit, describe};

use crate::config::Category;
use crate::model::{Article, CategoryId};

/// The article's categories: `source_categories`, then every category with a matching
/// rule, in config order, without repeats.
pub fn categorize(
    article: &Article,
    source_categories: &[CategoryId],
    categories: &[Category],
) -> Vec<CategoryId> {
    let texts = rules::field_texts(article);
    let mut out: Vec<CategoryId> = Vec::new();
    for id in source_categories {
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    for category in categories {
        if out.contains(&category.id) {
            continue;
        }
        let matched = category
            .rules
            .iter()
            .enumerate()
            .any(|(i, rule)| rules::evaluate(&category.id, i, rule, &texts).matched);
        if matched {
            out.push(category.id.clone());
        }
    }
    out
}

/// Every rule of every category evaluated against the article: which terms it found
/// where, and why it matched or not.
pub fn explain(article: &Article, categories: &[Category]) -> Vec<RuleMatch> {
    let texts = rules::field_texts(article);
    categories
        .iter()
        .flat_map(|c| {
            let texts = &texts;
            c.rules
                .iter()
                .enumerate()
                .map(move |(i, rule)| rules::evaluate(&c.id, i, rule, texts))
        })
        .collect()
}

/// An article from a JSON file: a full extracted [`Article`], or just `title`, `lead`
/// and `body_text` (with an optional `url`).
pub fn article_from_json(json: &str) -> Result<Article, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct ArticleText {
        url: Option<url::Url>,
        #[serde(default)]
        canonical_url: Option<url::Url>,
        title: String,
        #[serde(default)]
        lead: Option<String>,
        #[serde(default)]
        body_text: String,
        #[serde(default)]
        body_html: String,
    }
    let t: ArticleText = serde_json::from_str(json)?;
    Ok(Article {
        url: t
            .url
            .unwrap_or_else(|| url::Url::parse("file:///article.json").expect("valid URL")),
        canonical_url: t.canonical_url,
        title: t.title,
        published: None,
        updated: None,
        authors: vec![],
        lead: t.lead,
        body_html: t.body_html,
        body_text: t.body_text,
        image: None,
        tags: vec![],
        section: None,
        language: None,
        provenance: Default::default(),
    })
}

/// A person's report of [`explain`]: the resulting categories, then each rule with the
/// words it found and why it matched or failed.
pub fn render_explanation(article: &Article, categories: &[Category]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let result = categorize(article, &[], categories);
    let _ = writeln!(out, "title: {}", article.title);
    let _ = writeln!(
        out,
        "categories from rules: {}",
        if result.is_empty() {
            "(none; the item goes into `all` only)".to_owned()
        } else {
            result
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let rules = categories.iter().flat_map(|c| c.rules.iter());
    for (m, rule) in explain(article, categories).iter().zip(rules) {
        let fields: Vec<&str> = rule.fields.iter().map(|f| f.name()).collect();
        let _ = writeln!(
            out,
            "\n{} rule {} [{}{}]: {} — {}",
            m.category,
            m.rule + 1,
            fields.join(", "),
            if rule.fold_diacritics {
                ", without diacritics"
            } else {
                ""
            },
            if m.matched { "MATCH" } else { "no match" },
            m.reason
        );
        for hit in &m.any_hits {
            let _ = writeln!(out, "    any:  {}", describe(hit));
        }
        for term in &m.missing {
            let _ = writeln!(out, "    all:  \"{term}\" not found");
        }
        for hit in &m.blocked_by {
            let _ = writeln!(out, "    none: {}", describe(hit));
        }
    }
    out
}
