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
