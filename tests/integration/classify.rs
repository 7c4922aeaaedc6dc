//! Keyword categories with the shipped `config/categories.toml` and with small rules.

use std::path::Path;

use bantin::classify::{categorize, explain};
use bantin::config::{Category, Config, RULE_FIELDS, Rule};
use bantin::model::CategoryId;

use crate::support::fixture_article;

fn shipped_categories() -> Vec<Category> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/bantin.toml");
    Config::load(&path)
        .expect("shipped config loads")
        .categories
}

fn classify(fixture: &str) -> Vec<String> {
    let article = fixture_article(&format!("classify/{fixture}"));
    categorize(&article, &[], &shipped_categories())
        .into_iter()
        .map(|c| c.0)
        .collect()
}

#[test]
fn party_work_story_is_party_work_and_not_police_activities() {
    assert_eq!(
        classify("party-work-hoi-nghi-cong-tac-dang.json"),
        ["party-work"]
    );
}

#[test]
fn arrest_traffic_and_rescue_stories_are_police_activities() {
    for fixture in [
        "police-bat-giu-doi-tuong-cuop.json",
        "police-csgt-nong-do-con.json",
        "police-giai-cuu-dam-chay.json",
    ] {
        assert_eq!(classify(fixture), ["police-activities"], "{fixture}");
    }
}

#[test]
fn football_report_with_security_and_discipline_words_has_no_category() {
    assert!(classify("other-bong-da.json").is_empty());
}

#[test]
fn source_categories_come_first_and_are_not_repeated() {
    let article = fixture_article("classify/police-csgt-nong-do-con.json");
    let got = categorize(
        &article,
        &[
            CategoryId::from("ha-noi"),
            CategoryId::from("police-activities"),
        ],
        &shipped_categories(),
    );
    assert_eq!(
        got,
        [
            CategoryId::from("ha-noi"),
            CategoryId::from("police-activities")
        ]
    );
}

fn one_rule(rule: Rule) -> Vec<Category> {
    vec![Category {
        id: CategoryId::from("test"),
        title: "Test".into(),
        description: String::new(),
        rules: vec![rule],
    }]
}

fn rule(any: &[&str], fold: bool) -> Rule {
    Rule {
        any: any.iter().map(|s| s.to_string()).collect(),
        all: vec![],
        none: vec![],
        fields: RULE_FIELDS.to_vec(),
        fold_diacritics: fold,
        min_hits: 1,
    }
}

#[test]
fn folded_rule_matches_text_written_without_diacritics() {
    let mut article = fixture_article("classify/other-bong-da.json");
    article.title = "Nang cao hieu qua CONG TAC DANG o co so".into();
    assert_eq!(
        categorize(&article, &[], &one_rule(rule(&["công tác đảng"], true))).len(),
        1
    );
    assert!(categorize(&article, &[], &one_rule(rule(&["công tác đảng"], false))).is_empty());
}

#[test]
fn decomposed_text_matches_composed_terms() {
    use unicode_normalization::UnicodeNormalization;
    let mut article = fixture_article("classify/other-bong-da.json");
    article.title = "Hội nghị Đảng ủy".nfd().collect();
    assert_eq!(
        categorize(&article, &[], &one_rule(rule(&["đảng ủy"], false))).len(),
        1
    );
}

#[test]
fn terms_inside_other_words_do_not_match() {
    // "an" occurs inside "ban" and "sân"; only "an ninh" is the word.
    let article = fixture_article("classify/other-bong-da.json");
    let mut r = rule(&["an"], false);
    r.min_hits = 2;
    assert!(categorize(&article, &[], &one_rule(r)).is_empty());
}

#[test]
fn explain_names_matched_missing_and_blocking_words() {
    let article = fixture_article("classify/other-bong-da.json");
    let mut r = rule(&["hiệp hai"], false);
    r.all = vec!["thủ môn".into(), "trọng tài".into()];
    r.none = vec!["ban kỷ luật".into()];
    let m = &explain(&article, &one_rule(r))[0];
    assert!(!m.matched);
    assert_eq!(m.any_hits[0].term, "hiệp hai");
    assert_eq!(m.missing, ["trọng tài"]);
    assert_eq!(m.blocked_by[0].term, "ban kỷ luật");
    assert!(m.reason.contains("blocked by"), "{}", m.reason);
}
