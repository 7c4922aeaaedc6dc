//! Keyword rules: whole-word, case-insensitive matching of NFC terms against an
//! article's title, lead and body, optionally without diacritics.

use crate::config::Rule;
use crate::model::{Article, CategoryId, Field};
use crate::text::{fold_diacritics, normalize};

/// How often one term occurred in one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermHit {
    pub term: String,
    pub field: Field,
    pub count: usize,
}

/// What one rule of one category found in an article, and why it did or did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub category: CategoryId,
    /// Position of the rule within its category, from 0.
    pub rule: usize,
    pub matched: bool,
    /// Occurrences of the rule's `any` terms.
    pub any_hits: Vec<TermHit>,
    /// `min_hits`, the occurrences of `any` terms the rule needs.
    pub needed: usize,
    /// `all` terms that did not occur.
    pub missing: Vec<String>,
    /// `none` terms that occurred and so blocked the rule.
    pub blocked_by: Vec<TermHit>,
    /// One line for a person: why it matched or failed.
    pub reason: String,
}

/// The text of one field, prepared for matching once per rule setting.
pub(crate) struct FieldText {
    field: Field,
    exact: String,
    folded: String,
}

/// Lower-cased NFC text of each field of the article.
pub(crate) fn field_texts(article: &Article) -> Vec<FieldText> {
    [
        (Field::Title, article.title.as_str()),
        (Field::Lead, article.lead.as_deref().unwrap_or("")),
        (Field::Body, article.body_text.as_str()),
    ]
    .into_iter()
    .map(|(field, text)| {
        let exact = normalize(text).to_lowercase();
        let folded = fold_diacritics(&exact);
        FieldText {
            field,
            exact,
            folded,
        }
    })
    .collect()
}

/// Occurrences of `term` in `text` as a whole word or phrase: the characters around it
/// are not letters or digits, so "đảng" does not match inside "đảngviên" nor "an" inside
/// "ban".
pub(crate) fn count_whole(text: &str, term: &str) -> usize {
    if term.is_empty() {
        return 0;
    }
    let mut count = 0;
    let mut from = 0;
    while let Some(pos) = text[from..].find(term) {
        let start = from + pos;
        let end = start + term.len();
        let before_ok = text[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let after_ok = text[end..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric());
        if before_ok && after_ok {
            count += 1;
            from = end;
        } else {
            from = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    count
}

fn hits(rule: &Rule, terms: &[String], texts: &[FieldText]) -> Vec<TermHit> {
    let mut out = Vec::new();
    // Spellings that fold to one term ("đảng ủy", "đảng uỷ") are counted once.
    let mut seen = std::collections::HashSet::new();
    let prepared: Vec<(&String, String)> = terms
        .iter()
        .filter_map(|term| {
            let key = if rule.fold_diacritics {
                fold_diacritics(term)
            } else {
                term.clone()
            };
            seen.insert(key.clone()).then_some((term, key))
        })
        .collect();
    for text in texts.iter().filter(|t| rule.fields.contains(&t.field)) {
        for (term, key) in &prepared {
            let haystack = if rule.fold_diacritics {
                &text.folded
            } else {
                &text.exact
            };
            let count = count_whole(haystack, key);
            if count > 0 {
                out.push(TermHit {
                    term: (*term).clone(),
                    field: text.field,
                    count,
                });
            }
        }
    }
    out
}

/// Evaluates one rule against prepared field texts.
pub(crate) fn evaluate(
    category: &CategoryId,
    index: usize,
    rule: &Rule,
    texts: &[FieldText],
) -> RuleMatch {
    let any_hits = hits(rule, &rule.any, texts);
    let total: usize = any_hits.iter().map(|h| h.count).sum();
    let any_ok = rule.any.is_empty() || total >= rule.min_hits;
    let all_hits = hits(rule, &rule.all, texts);
    let missing: Vec<String> = rule
        .all
        .iter()
        .filter(|t| !all_hits.iter().any(|h| &h.term == *t))
        .cloned()
        .collect();
    let blocked_by = hits(rule, &rule.none, texts);
    let matched = any_ok && missing.is_empty() && blocked_by.is_empty();
    let reason = if !blocked_by.is_empty() {
        format!(
            "blocked by {}",
            blocked_by
                .iter()
                .map(describe)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else if !missing.is_empty() {
        format!("missing required {}", quoted(&missing))
    } else if !any_ok {
        format!("{total} of {} needed `any` hits", rule.min_hits)
    } else if rule.any.is_empty() {
        "all required terms present".to_owned()
    } else {
        format!("{total} `any` hit(s), {} needed", rule.min_hits)
    };
    RuleMatch {
        category: category.clone(),
        rule: index,
        matched,
        any_hits,
        needed: rule.min_hits,
        missing,
        blocked_by,
        reason,
    }
}

fn quoted(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `"term" in title ×2`.
pub fn describe(hit: &TermHit) -> String {
    format!("\"{}\" in {} ×{}", hit.term, hit.field, hit.count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_match_whole_words_only() {
        assert_eq!(count_whole("ban kỷ luật và bàn thắng", "an"), 0);
        assert_eq!(count_whole("công an, an ninh", "an"), 2);
        assert_eq!(count_whole("đảngviên đảng viên", "đảng viên"), 1);
        assert_eq!(count_whole("cướp giật; cướp", "cướp"), 2);
    }

    #[test]
    fn folded_text_matches_folded_terms() {
        let folded = fold_diacritics("công tác đảng");
        assert_eq!(count_whole(&folded, &fold_diacritics("công tác đảng")), 1);
        assert_eq!(
            count_whole("cong tac dang", &fold_diacritics("công tác đảng")),
            1
        );
    }
}
