//! Per-field rules for a site's article pages. The generic extraction of each sampled
//! page is the reference: a field that JSON-LD or meta tags already give needs no
//! selector; for the others, selectors are written for the elements holding the value
//! and the simplest one that gives the same value on every page, through
//! `extract::article` itself, is kept. Then a `published_format` for a date line read
//! from its start, and a `remove` list of boxes inside the body (related links, share
//! bars) that change no field.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use chrono_tz::Tz;
use ego_tree::NodeId;
use scraper::{ElementRef, Html, Selector};
use url::Url;

use super::css;
use crate::config::{ArticleRules, Css};
use crate::extract::{self, parse_date};
use crate::model::{Article, Field, Origin};
use crate::text::normalize;

/// Longest text of an element taken for a date line or a byline.
const MAX_LINE_CHARS: usize = 80;
/// Characters of a body paragraph looked for in a container's text.
const PARAGRAPH_PROBE_CHARS: usize = 40;

/// Between the names of a list field (authors, tags) in its compared value.
const LIST_SEPARATOR: &str = "; ";

/// Date formats tried on a visible date line, most common on news sites first.
const DATE_FORMATS: &[&str] = &[
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y - %H:%M",
    "%d/%m/%Y, %H:%M",
    "%d/%m/%Y | %H:%M",
    "%H:%M %d/%m/%Y",
    "%H:%M, %d/%m/%Y",
    "%d-%m-%Y %H:%M",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%d %H:%M",
    "%B %d, %Y %I:%M %p",
    "%d %B %Y %H:%M",
];

/// One saved or fetched article page.
#[derive(Debug, Clone)]
pub struct Sample {
    pub url: Url,
    pub html: String,
    /// When the page was fetched (read, for a saved one): relative dates count from here.
    pub fetched_at: DateTime<Utc>,
}

impl Sample {
    /// The page extracted with `rules`, its dates read in `tz`.
    fn extract(&self, rules: &ArticleRules, tz: Tz) -> Result<Article, extract::ExtractError> {
        let input = extract::Input {
            url: &self.url,
            rules,
            zone: tz,
            fetched_at: self.fetched_at,
        };
        extract::article(&self.html, &input)
    }
}

/// The field's key in `Article::provenance`: page extraction records the body under
/// its text.
fn provenance_key(field: Field) -> Field {
    if field == Field::Body {
        Field::BodyText
    } else {
        field
    }
}

/// The field's value in an article, as text compared between extractions.
pub fn value(field: Field, a: &Article) -> Option<String> {
    let date = |d: Option<DateTime<FixedOffset>>| d.map(|d| d.to_rfc3339());
    let text = match field {
        Field::Title => Some(a.title.clone()),
        Field::Published => date(a.published),
        Field::Updated => date(a.updated),
        Field::Authors => Some(a.authors.join(LIST_SEPARATOR)),
        Field::Lead => a.lead.clone(),
        Field::Body | Field::BodyText => Some(a.body_text.clone()),
        Field::Image => a.image.as_ref().map(Url::to_string),
        Field::Tags => Some(a.tags.join(LIST_SEPARATOR)),
        Field::Section => a.section.clone(),
        Field::BodyHtml | Field::CanonicalUrl | Field::Language => None,
    };
    text.filter(|t| !t.is_empty())
}

fn set(field: Field, rules: &mut ArticleRules, css: Option<Css>) {
    if let Some(slot) = rules.selector_mut(field) {
        *slot = css;
    }
}

/// Where a suggested source gets a field from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// The configured CSS selector.
    Selector(String),
    /// JSON-LD or a meta tag, named ("json-ld", "og:image"); no selector needed.
    Page(String),
    /// The generic rules: no selector agrees with them on every page.
    Generic,
    /// No sampled page gives the field.
    Missing,
}

/// What was found for one field, and on how many pages the suggested rules give the
/// same value as the generic extraction.
#[derive(Debug, Clone)]
pub struct FieldGuess {
    pub field: Field,
    pub how: How,
    pub agree: usize,
}

/// The suggested `[source.extract]`.
#[derive(Debug, Clone)]
pub struct ArticleGuess {
    /// Pages the fields were compared on.
    pub pages: usize,
    pub fields: Vec<FieldGuess>,
    pub published_format: Option<String>,
    pub remove: Vec<String>,
    /// Sampled pages that gave no article, with the reason.
    pub skipped: Vec<(Url, String)>,
}

/// Why no field could be suggested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoArticles {
    /// Each sampled page and why it gave no article.
    pub skipped: Vec<(Url, String)>,
}

/// A sampled page, parsed, with its generic extraction.
struct Page<'a> {
    sample: &'a Sample,
    doc: Html,
    generic: Article,
}

/// Suggests the extraction rules for pages like `samples`; `tz` is the site's zone.
pub fn guess(samples: &[Sample], tz: Tz) -> Result<ArticleGuess, NoArticles> {
    let mut skipped = Vec::new();
    let mut pages = Vec::new();
    for sample in samples {
        match sample.extract(&ArticleRules::default(), tz) {
            Ok(generic) => pages.push(Page {
                sample,
                doc: extract::nesting::parse_document(&sample.html),
                generic,
            }),
            Err(err) => skipped.push((sample.url.clone(), err.to_string())),
        }
    }
    if pages.is_empty() {
        return Err(NoArticles { skipped });
    }
    let mut rules = ArticleRules::default();
    let mut hows = Vec::new();
    for field in ArticleRules::SELECTOR_FIELDS {
        let (css, how) = choose(field, &pages, tz);
        set(field, &mut rules, css);
        hows.push((field, how));
    }
    rules.published_format = published_format(&rules, &pages, tz);
    let remove = removable_boxes(&mut rules, &pages, tz);
    let agreement = agreement(&rules, &pages, tz);
    let fields = hows
        .into_iter()
        .zip(agreement)
        .map(|((field, how), agree)| FieldGuess { field, how, agree })
        .collect();
    Ok(ArticleGuess {
        pages: pages.len(),
        fields,
        published_format: rules.published_format.clone(),
        remove,
        skipped,
    })
}

/// Per field, the pages where `rules` give the generic value.
fn agreement(rules: &ArticleRules, pages: &[Page], tz: Tz) -> Vec<usize> {
    let articles: Vec<Option<Article>> = pages
        .iter()
        .map(|p| p.sample.extract(rules, tz).ok())
        .collect();
    ArticleRules::SELECTOR_FIELDS
        .iter()
        .map(|&field| {
            pages
                .iter()
                .zip(&articles)
                .filter(|(p, a)| {
                    a.as_ref().map(|a| value(field, a)) == Some(value(field, &p.generic))
                })
                .count()
        })
        .collect()
}

/// The selector for a field, or why none is needed or found.
fn choose(field: Field, pages: &[Page], tz: Tz) -> (Option<Css>, How) {
    let with_value: Vec<&Page> = pages
        .iter()
        .filter(|p| value(field, &p.generic).is_some())
        .collect();
    let Some(first) = with_value.first() else {
        return (None, How::Missing);
    };
    let origins: Vec<Option<&Origin>> = with_value
        .iter()
        .map(|p| p.generic.provenance.get(&provenance_key(field)))
        .collect();
    if origins.iter().all(|o| o == &Some(&Origin::JsonLd)) {
        return (None, How::Page("json-ld".into()));
    }
    if origins
        .iter()
        .all(|o| matches!(o, Some(Origin::JsonLd | Origin::Meta)))
    {
        return (None, How::Page(meta_key(field, first, tz)));
    }
    for text in candidates(field, first, tz) {
        let Some(css) = css::compile(&text) else {
            continue;
        };
        let mut rules = ArticleRules::default();
        set(field, &mut rules, Some(css.clone()));
        if agreement_of(field, &rules, pages, tz) == pages.len() {
            return (Some(css), How::Selector(text));
        }
    }
    (None, How::Generic)
}

/// Pages where `rules` give the generic value of `field`.
fn agreement_of(field: Field, rules: &ArticleRules, pages: &[Page], tz: Tz) -> usize {
    let index = ArticleRules::SELECTOR_FIELDS
        .iter()
        .position(|f| *f == field)
        .expect("only fields with a selector are suggested");
    agreement(rules, pages, tz)[index]
}

/// A date as the page prints it, read in `tz`, as the generic extraction's value is kept.
fn date_value(text: &str, format: Option<&str>, tz: Tz) -> Option<String> {
    parse_date(text, format, tz).map(|d| d.with_timezone(&tz).fixed_offset().to_rfc3339())
}

/// The meta tag (`og:image`, `article:published_time`) that holds the page's value.
fn meta_key(field: Field, page: &Page, tz: Tz) -> String {
    static META: std::sync::LazyLock<Selector> = std::sync::LazyLock::new(|| {
        Selector::parse("meta[content]").expect("literal selector parses")
    });
    let origin = page.generic.provenance.get(&provenance_key(field));
    if origin == Some(&Origin::JsonLd) {
        return "json-ld".into();
    }
    let want = value(field, &page.generic).unwrap_or_default();
    let first_item = want
        .split(LIST_SEPARATOR)
        .next()
        .unwrap_or_default()
        .to_owned();
    page.doc
        .select(&META)
        .find_map(|m| {
            let el = m.value();
            let key = el
                .attr("property")
                .or_else(|| el.attr("name"))
                .or_else(|| el.attr("itemprop"))?;
            let content = el.attr("content")?;
            let holds = match field {
                Field::Published | Field::Updated => {
                    date_value(content, None, tz).as_deref() == Some(want.as_str())
                }
                Field::Image => page
                    .sample
                    .url
                    .join(content)
                    .is_ok_and(|u| u.as_str() == want),
                _ => normalize(content).contains(&first_item),
            };
            holds.then(|| key.to_owned())
        })
        .unwrap_or_else(|| "meta tags".into())
}

/// Selectors for the elements holding the page's value of `field`, most stable first.
fn candidates(field: Field, page: &Page, tz: Tz) -> Vec<String> {
    let want = value(field, &page.generic).unwrap_or_default();
    let found = targets(field, page, &want, tz);
    // A text is best named by its outermost box (`div.sapo`, not the `b` inside);
    // a date, an image, tags or a body by the smallest element that holds it.
    let targets = match field {
        Field::Title | Field::Lead | Field::Section | Field::Authors => found,
        _ => deepest(found),
    };
    let mut out = Vec::new();
    for el in &targets {
        out.extend(css::forms(el));
        if matches!(field, Field::Image | Field::Body)
            && let Some(parent) = el.parent().and_then(ElementRef::wrap)
        {
            out.extend(css::forms(&parent));
        }
        if field == Field::Tags
            && let Some(parent) = el.parent().and_then(ElementRef::wrap)
        {
            out.extend(css::forms(&parent).into_iter().map(|f| format!("{f} a")));
        }
    }
    css::dedup(out)
}

/// The elements whose content is the page's value of `field`.
fn targets<'a>(field: Field, page: &'a Page, want: &str, tz: Tz) -> Vec<ElementRef<'a>> {
    let text = |e: &ElementRef| normalize(&e.text().collect::<String>());
    // Only what the page shows: `<head>` holds the `<title>`, which is no selector's job.
    let elements = page
        .doc
        .root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
        .filter(|e| {
            e.ancestors()
                .filter_map(ElementRef::wrap)
                .any(|a| a.value().name() == "body")
        });
    match field {
        Field::Title | Field::Lead | Field::Section => {
            elements.filter(|e| text(e) == want).collect()
        }
        Field::Tags | Field::Authors => {
            let first = want.split(LIST_SEPARATOR).next().unwrap_or_default();
            elements
                .filter(|e| {
                    let t = text(e);
                    t.contains(first)
                        && t.chars().count() <= first.chars().count() + MAX_LINE_CHARS / 2
                })
                .collect()
        }
        Field::Published | Field::Updated => elements
            .filter(|e| {
                let attr = e
                    .value()
                    .attr("datetime")
                    .or_else(|| e.value().attr("content"));
                let line = attr.map(str::to_owned).unwrap_or_else(|| text(e));
                line.chars().count() <= MAX_LINE_CHARS
                    && date_value(&line, None, tz).as_deref() == Some(want)
            })
            .collect(),
        Field::Image => elements
            .filter(|e| {
                e.value().name() == "img"
                    && ["src", "data-src", "data-original"].iter().any(|a| {
                        e.value()
                            .attr(a)
                            .and_then(|v| page.sample.url.join(v.trim()).ok())
                            .is_some_and(|u| u.as_str() == want)
                    })
            })
            .collect(),
        // The body (no other field is asked for).
        _ => {
            let paragraphs: Vec<&str> = want.split("\n\n").collect();
            let probe = |p: &str| p.chars().take(PARAGRAPH_PROBE_CHARS).collect::<String>();
            let (head, tail) = (
                probe(paragraphs[0]),
                probe(paragraphs[paragraphs.len() - 1]),
            );
            elements
                .filter(|e| {
                    let t = text(e);
                    t.contains(&normalize(&head)) && t.contains(&normalize(&tail))
                })
                .collect()
        }
    }
}

/// The elements that hold no other element of the list.
fn deepest(elements: Vec<ElementRef<'_>>) -> Vec<ElementRef<'_>> {
    let ids: HashSet<NodeId> = elements.iter().map(|e| e.id()).collect();
    elements
        .into_iter()
        .filter(|e| !e.descendants().skip(1).any(|d| ids.contains(&d.id())))
        .collect()
}

/// A strftime format that reads the chosen published element's date line from its
/// start on every page, to the generic value; none when the element carries a
/// machine-readable date (`datetime`, `content`) or no format fits.
fn published_format(rules: &ArticleRules, pages: &[Page], tz: Tz) -> Option<String> {
    let css = rules.published.as_ref()?;
    let lines: Vec<(String, Option<String>)> = pages
        .iter()
        .map(|p| {
            let el = p.doc.select(&css.selector).next()?;
            let machine = el
                .value()
                .attr("datetime")
                .or_else(|| el.value().attr("content"));
            if machine.is_some() {
                return None;
            }
            Some((
                normalize(&el.text().collect::<String>()),
                value(Field::Published, &p.generic),
            ))
        })
        .collect::<Option<_>>()?;
    DATE_FORMATS
        .iter()
        .find(|format| {
            lines.iter().all(|(line, want)| {
                NaiveDateTime::parse_and_remainder(line, format).is_ok()
                    && date_value(line, Some(format), tz) == *want
            })
        })
        .map(|f| (*f).to_owned())
}

/// Selectors of boxes inside the body container that the generic body leaves out
/// (related links, share bars), each kept only when removing it changes no field on
/// any page. Adds them to `rules` and returns them.
fn removable_boxes(rules: &mut ArticleRules, pages: &[Page], tz: Tz) -> Vec<String> {
    let mut found = Vec::new();
    for page in pages {
        let body = page.generic.body_text.as_str();
        let container = match &rules.body {
            Some(css) => page.doc.select(&css.selector).next(),
            None => deepest(targets(Field::Body, page, body, tz))
                .into_iter()
                .next(),
        };
        if let Some(container) = container {
            collect_boxes(&container, body, &mut found);
        }
    }
    let baseline = agreement(rules, pages, tz);
    let mut kept = Vec::new();
    for text in css::dedup(found) {
        let Some(css) = css::compile(&text) else {
            continue;
        };
        let mut trial = rules.clone();
        trial.remove.push(css);
        let after = agreement(&trial, pages, tz);
        if after.iter().zip(&baseline).all(|(a, b)| a >= b) {
            *rules = trial;
            kept.push(text);
        }
    }
    kept
}

/// The outermost classed boxes under `container` whose text the body does not hold,
/// or that hold only links and icons.
fn collect_boxes(container: &ElementRef, body: &str, found: &mut Vec<String>) {
    for child in container.children().filter_map(ElementRef::wrap) {
        let text = normalize(&child.text().collect::<String>());
        let probe: String = text.chars().take(PARAGRAPH_PROBE_CHARS).collect();
        let outside_body = if text.is_empty() {
            child
                .descendants()
                .filter_map(ElementRef::wrap)
                .any(|e| matches!(e.value().name(), "a" | "button"))
        } else {
            !body.contains(&probe)
        };
        let named = css::own_forms(&child)
            .into_iter()
            .find(|f| f.contains('.') || f.contains('#'));
        match named {
            Some(form) if outside_body => found.push(form),
            _ if !outside_body => collect_boxes(&child, body, found),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An article page: JSON-LD headline, og:image, a visible date line, a related box.
    fn page(n: u32) -> Sample {
        let paragraphs: String = (0..4)
            .map(|i| {
                format!(
                    "<p>Đoạn {i} của bài {n}: lực lượng chức năng phường {n} đã làm việc \
                     với người dân về trật tự đô thị trong {i} ngày liên tiếp.</p>"
                )
            })
            .collect();
        let html = format!(
            r#"<html><head><meta property="og:image" content="/anh/{n}.jpg">
            <script type="application/ld+json">{{"@type":"NewsArticle","headline":"Tin số {n} về trật tự đô thị"}}</script>
            </head><body><div class="wrap"><h1 class="headline">Tin số {n} về trật tự đô thị</h1>
            <div class="date-line">1{n}/11/2026 - 08:3{n}</div>
            <div class="story-body">{paragraphs}
            <div class="related"><a href="/x/{n}">Tin khác cùng chuyên mục số {n}</a></div>
            </div></div></body></html>"#
        );
        Sample {
            url: Url::parse(&format!("http://news.test/tin/{n}.html")).unwrap(),
            html,
            fetched_at: Utc::now(),
        }
    }

    #[test]
    fn page_data_needs_no_selector_and_other_fields_get_one_that_agrees_everywhere() {
        let samples: Vec<Sample> = (1..=3).map(page).collect();
        let guess = guess(&samples, chrono_tz::Asia::Ho_Chi_Minh).unwrap();
        let how = |f: Field| {
            let g = guess.fields.iter().find(|g| g.field == f).unwrap();
            assert_eq!(g.agree, 3, "{f:?}: {g:?}");
            g.how.clone()
        };
        assert_eq!(how(Field::Title), How::Page("json-ld".into()));
        assert_eq!(how(Field::Image), How::Page("og:image".into()));
        assert_eq!(how(Field::Published), How::Selector("div.date-line".into()));
        assert_eq!(guess.published_format.as_deref(), Some("%d/%m/%Y - %H:%M"));
        assert_eq!(how(Field::Body), How::Selector("div.story-body".into()));
        assert_eq!(guess.remove, ["div.related"]);
    }

    #[test]
    fn a_title_only_in_the_head_gets_no_selector() {
        // Regression: `head`, whose text is the `<title>`, was suggested as the selector.
        let samples: Vec<Sample> = (1..=2)
            .map(|n| {
                let mut sample = page(n);
                sample.html = sample
                    .html
                    .replace("<head>", &format!("<head><title>Bài {n} về phố</title>"))
                    .replace(r#"<h1 class="headline">"#, "<h2>");
                sample.html = sample.html.replace(
                    &format!(r#""headline":"Tin số {n} về trật tự đô thị""#),
                    r#""x":1"#,
                );
                sample
            })
            .collect();
        let guess = guess(&samples, chrono_tz::Asia::Ho_Chi_Minh).unwrap();
        let title = guess
            .fields
            .iter()
            .find(|g| g.field == Field::Title)
            .unwrap();
        assert_eq!(title.how, How::Generic, "{title:?}");
    }

    #[test]
    fn pages_without_an_article_are_no_articles() {
        let empty = Sample {
            url: Url::parse("http://news.test/").unwrap(),
            html: "<html><body><p>Trang chủ</p></body></html>".into(),
            fetched_at: Utc::now(),
        };
        let err = guess(&[empty], chrono_tz::Asia::Ho_Chi_Minh).unwrap_err();
        assert_eq!(err.skipped.len(), 1);
    }
}
