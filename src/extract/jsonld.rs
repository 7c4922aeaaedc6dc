//! schema.org JSON-LD: the `NewsArticle` / `Article` / `ReportageNewsArticle` (and kin)
//! object of a page, found at the top level, in arrays or inside `@graph`. Only reads
//! values; dates and URLs are interpreted by the caller.

use scraper::{Html, Node};
use serde_json::Value;

/// `@type`s that describe the article a page shows.
const ARTICLE_TYPES: &[&str] = &[
    "newsarticle",
    "article",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "opinionnewsarticle",
    "backgroundnewsarticle",
    "reviewnewsarticle",
    "blogposting",
    "liveblogposting",
    "socialmediaposting",
    "report",
    "techarticle",
];

/// How deep nested JSON is searched for the article object.
const MAX_DEPTH: usize = 6;

/// The fields bantin reads from a JSON-LD article object.
#[derive(Debug, Default)]
pub struct LdArticle {
    pub headline: Option<String>,
    pub published: Option<String>,
    pub modified: Option<String>,
    pub authors: Vec<String>,
    pub image: Option<String>,
    pub description: Option<String>,
    pub section: Option<String>,
    pub keywords: Vec<String>,
    /// The keywords were one string, split at its commas: a tag with a comma in it
    /// came apart.
    pub keywords_split: bool,
    pub language: Option<String>,
    pub url: Option<String>,
}

/// The page's first JSON-LD article object, if any. Scripts that are not valid JSON are
/// skipped.
pub fn read(html: &Html) -> Option<LdArticle> {
    for node in html.tree.root().descendants() {
        let Node::Element(el) = node.value() else {
            continue;
        };
        if el.name() != "script"
            || !el
                .attr("type")
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/ld+json"))
        {
            continue;
        }
        let text: String = node
            .children()
            .filter_map(|c| c.value().as_text().map(|t| t.to_string()))
            .collect();
        let Ok(value) = serde_json::from_str::<Value>(text.trim()) else {
            continue;
        };
        if let Some(obj) = find_article(&value, 0) {
            return Some(to_article(obj));
        }
    }
    None
}

fn find_article(value: &Value, depth: usize) -> Option<&Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    match value {
        Value::Array(items) => items.iter().find_map(|v| find_article(v, depth + 1)),
        Value::Object(map) => {
            if is_article(map.get("@type")) {
                return Some(value);
            }
            map.get("@graph")
                .and_then(|g| find_article(g, depth + 1))
                .or_else(|| {
                    map.get("mainEntity")
                        .and_then(|m| find_article(m, depth + 1))
                })
        }
        _ => None,
    }
}

fn is_article(kind: Option<&Value>) -> bool {
    let matches = |s: &str| ARTICLE_TYPES.contains(&s.to_ascii_lowercase().as_str());
    match kind {
        Some(Value::String(s)) => matches(s),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).any(matches),
        _ => false,
    }
}

fn to_article(obj: &Value) -> LdArticle {
    LdArticle {
        headline: string(obj.get("headline")).or_else(|| string(obj.get("name"))),
        published: string(obj.get("datePublished")).or_else(|| string(obj.get("dateCreated"))),
        modified: string(obj.get("dateModified")),
        authors: names(obj.get("author")),
        image: image(obj.get("image")).or_else(|| image(obj.get("thumbnailUrl"))),
        description: string(obj.get("description")),
        section: list(obj.get("articleSection")).into_iter().next(),
        keywords: keywords(obj.get("keywords")),
        keywords_split: matches!(obj.get("keywords"), Some(Value::String(_))),
        language: string(obj.get("inLanguage")),
        url: string(obj.get("url")).or_else(|| match obj.get("mainEntityOfPage") {
            Some(Value::Object(m)) => string(m.get("@id")).or_else(|| string(m.get("url"))),
            other => string(other),
        }),
    }
}

fn string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(a) => a.iter().find_map(|v| string(Some(v))),
        _ => None,
    }
}

fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|v| string(Some(v))).collect(),
        other => string(other).into_iter().collect(),
    }
}

fn keywords(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        other => list(other),
    }
}

/// Author names: strings, `Person` objects, or arrays of either. Organizations are the
/// publisher, not a byline.
fn names(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_owned()],
        Some(Value::Array(a)) => a.iter().flat_map(|v| names(Some(v))).collect(),
        Some(Value::Object(o)) => {
            let org = o
                .get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("organization"));
            if org {
                Vec::new()
            } else {
                string(o.get("name")).into_iter().collect()
            }
        }
        _ => Vec::new(),
    }
}

fn image(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Object(o) => string(o.get("url")).or_else(|| string(o.get("contentUrl"))),
        Value::Array(a) => a.iter().find_map(|v| image(Some(v))),
        other => string(Some(other)),
    }
}
