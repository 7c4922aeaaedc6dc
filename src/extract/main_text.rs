//! Main-text detection: which blocks of a page hold the article text. Paragraphs are
//! scored by their text and commas and hand their score up to their ancestors (in the
//! manner of readability); the best block, weighed by link density and size, is taken with
//! the siblings that continue its text. It does not clean the blocks (`clean`) or guess
//! other fields (`heuristics`). Nothing here knows any site.

use ego_tree::{NodeId, NodeRef};
use scraper::{ElementRef, Html, Node};

use super::scan::{
    AttrExt, IdMap, MIN_PARAGRAPH_CHARS, Scan, is_media_box, is_related_box, kind, outside_junk,
};

/// A block with less text than this is scored down in proportion (a positive class on a
/// one-line box must not outweigh the paragraphs of the article).
const MIN_BLOCK_CHARS: f32 = 300.0;
/// How many ancestors a paragraph's score is handed up to.
const SCORE_ANCESTORS: usize = 5;
/// Characters of a paragraph worth one point of score: longer paragraphs weigh more.
const CHARS_PER_POINT: f32 = 100.0;
/// Most points a paragraph earns by length, so one huge block does not drown the rest.
const MAX_LENGTH_POINTS: f32 = 3.0;
/// Score a content-like class or id (`article`, `post-body`) adds to a block, and an
/// unlikely one (`sidebar`, `meta`) takes away.
const CLASS_POINTS: f32 = 25.0;
/// A parent scoring at least this share of its best child holds the same text split
/// over several children (a text block interrupted by a figure wrapper, say).
const PARENT_SHARE: f32 = 0.9;
/// A sibling scoring at least this share of the best block continues its text.
const SIBLING_SHARE: f32 = 0.2;
/// ...and at least this much in any case, so a page of tiny blocks takes no crumbs.
const MIN_SIBLING_SCORE: f32 = 10.0;
/// A sibling paragraph this long, with few links, is text whatever its score.
const MIN_SIBLING_PARAGRAPH_CHARS: u32 = 80;
/// Link density below which such a sibling paragraph reads as prose.
const MAX_SIBLING_LINK_DENSITY: f32 = 0.25;
/// The chosen blocks must hold this share of the page's prose (as 3/5), or they are one
/// section of a text split into several.
const MIN_PROSE_SHARE: (u32, u32) = (3, 5);
/// The wrapper then taken instead holds this share of the page's prose (as 4/5).
const WRAPPER_PROSE_SHARE: (u32, u32) = (4, 5);
/// ...and is mostly text, not a page of link lists.
const MAX_WRAPPER_LINK_DENSITY: f32 = 0.3;
/// Text outside links an article container must hold to be a second opinion at all.
const MIN_CONTAINER_CHARS: u32 = 200;
/// The container is taken over the scored blocks when it holds more than this many times
/// their text outside links: the scoring then found only a piece of the text.
const SECOND_OPINION_FACTOR: u32 = 2;

/// The blocks that hold the article text, in document order: the best-scoring block and
/// those of its siblings that look like more of the same text.
pub fn main_blocks(html: &Html, scan: &Scan) -> Vec<NodeId> {
    let scored = scored_blocks(html, scan);
    // A second opinion: the box the page itself marks as the article. The better of the
    // two by the text they hold outside links is taken.
    match article_container(html, scan) {
        Some(container) if is_better(scan, container, &scored) => vec![container],
        _ => scored,
    }
}

/// The first opinion: the best-scoring block and its continuing siblings. When they hold
/// too little of the page's prose, the same scoring blind to class names is asked too (a
/// content-like class on a short box outweighs the paragraphs of the text), and the
/// blocks holding more prose are taken.
fn scored_blocks(html: &Html, scan: &Scan) -> Vec<NodeId> {
    let blocks = best_blocks(html, scan, Classes::Weighed);
    if holds_prose_share(html, scan, &blocks, MIN_PROSE_SHARE) {
        return blocks;
    }
    let blind = best_blocks(html, scan, Classes::Ignored);
    if prose_of(scan, &blind) > prose_of(scan, &blocks) {
        blind
    } else {
        blocks
    }
}

/// Whether class and id names weigh in a block's score.
#[derive(Clone, Copy, PartialEq)]
enum Classes {
    Weighed,
    Ignored,
}

/// The best-scoring block and its continuing siblings, or the wrapper of most of the
/// page's prose when they are one section of it.
fn best_blocks(html: &Html, scan: &Scan, classes: Classes) -> Vec<NodeId> {
    let scores = Scores::of(html, scan, classes);
    let Some((top, top_score)) = scores.best(html) else {
        return Vec::new();
    };
    let top = scores.widen(html, top, top_score);
    let blocks = continuing_siblings(html, scan, &scores, top, top_score);
    wrapper_of_prose(html, scan, top, &blocks).map_or(blocks, |a| vec![a])
}

/// Characters of prose in `blocks`.
fn prose_of(scan: &Scan, blocks: &[NodeId]) -> u32 {
    blocks.iter().map(|b| scan.get(*b).prose).sum()
}

/// Characters of prose on the whole page.
fn page_prose(html: &Html, scan: &Scan) -> u32 {
    html.tree
        .root()
        .children()
        .map(|c| scan.get(c.id()).prose)
        .sum()
}

/// Whether `blocks` hold at least the `(num, den)` share of the page's prose.
fn holds_prose_share(html: &Html, scan: &Scan, blocks: &[NodeId], (num, den): (u32, u32)) -> bool {
    prose_of(scan, blocks) * den >= page_prose(html, scan) * num
}

/// The element the page marks as its article text: `itemprop="articleBody"`, else the
/// `<article>` holding the most text outside links, else `<main>`; junk subtrees never
/// count.
fn article_container(html: &Html, scan: &Scan) -> Option<NodeId> {
    let mut best: [Option<(u32, NodeId)>; 3] = [None; 3];
    for node in html.tree.root().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        let rank = if el.attribute("itemprop") == Some("articleBody") {
            0
        } else if el.name() == "article" {
            1
        } else if el.name() == "main" {
            2
        } else {
            continue;
        };
        if node.ancestors().any(|a| scan.junk.contains(&a.id())) || scan.junk.contains(&node.id()) {
            continue;
        }
        let text = scan.get(node.id()).unlinked();
        if best[rank].is_none_or(|(t, _)| text > t) {
            best[rank] = Some((text, node.id()));
        }
    }
    best.into_iter()
        .flatten()
        .find(|(text, _)| *text >= MIN_CONTAINER_CHARS)
        .map(|(_, id)| id)
}

/// Whether the article container holds clearly more text than the scored blocks, and
/// reads as text rather than a list of links.
fn is_better(scan: &Scan, container: NodeId, scored: &[NodeId]) -> bool {
    let c = scan.get(container);
    let unlinked: u32 = scored.iter().map(|b| scan.get(*b).unlinked()).sum();
    c.unlinked() > unlinked * SECOND_OPINION_FACTOR && c.link_density() < MAX_WRAPPER_LINK_DENSITY
}

/// Raw block scores: paragraph scores handed up to their ancestors.
struct Scores<'a> {
    raw: IdMap<f32>,
    scan: &'a Scan,
}

impl<'a> Scores<'a> {
    fn of(html: &Html, scan: &'a Scan, classes: Classes) -> Scores<'a> {
        let mut raw: IdMap<f32> = IdMap::default();
        for node in outside_junk(html.tree.root(), scan) {
            if let Some(score) = paragraph_score(node, scan) {
                hand_up(&mut raw, scan, node, score, classes);
            }
        }
        Scores { raw, scan }
    }

    /// A block's score weighed by its link density and its size.
    fn adjusted(&self, id: NodeId) -> f32 {
        let Some(raw) = self.raw.get(&id) else {
            return 0.0;
        };
        let s = self.scan.get(id);
        raw * (1.0 - s.link_density()) * (s.text as f32 / MIN_BLOCK_CHARS).sqrt().min(1.0)
    }

    /// The best-scoring block below `<body>`.
    fn best(&self, html: &Html) -> Option<(NodeId, f32)> {
        self.raw
            .keys()
            .map(|id| (*id, self.adjusted(*id)))
            .filter(|(id, _)| html.tree.get(*id).is_some_and(is_below_body))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
    }

    /// `top`, or the outermost ancestor that holds the same text: an only child's parent,
    /// or a parent scoring nearly as well.
    fn widen(&self, html: &Html, mut top: NodeId, top_score: f32) -> NodeId {
        while let Some(parent) = html.tree.get(top).and_then(|n| n.parent()) {
            if !is_below_body(parent) {
                break;
            }
            // Empty boxes beside the text (spacers, ad slots not yet filled) do not count.
            let only_child = parent
                .children()
                .filter(|c| c.value().is_element() && self.scan.get(c.id()).text > 0)
                .count()
                == 1;
            if only_child || self.adjusted(parent.id()) >= top_score * PARENT_SHARE {
                top = parent.id();
            } else {
                break;
            }
        }
        top
    }
}

/// The score a paragraph-like element earns by itself, if it is one.
fn paragraph_score(node: NodeRef<'_, Node>, scan: &Scan) -> Option<f32> {
    let el = node.value().as_element()?;
    let s = scan.stats.get(&node.id())?;
    let paragraph_like = match el.name() {
        "p" | "pre" | "td" | "blockquote" => true,
        "div" | "section" | "article" => s.own >= MIN_PARAGRAPH_CHARS,
        _ => false,
    };
    let len = if el.name() == "p" { s.text } else { s.own };
    (paragraph_like && len >= MIN_PARAGRAPH_CHARS)
        .then(|| 1.0 + s.commas as f32 + (len as f32 / CHARS_PER_POINT).min(MAX_LENGTH_POINTS))
}

/// Adds a paragraph's score to its ancestors, less at each level up.
fn hand_up(
    raw: &mut IdMap<f32>,
    scan: &Scan,
    node: NodeRef<'_, Node>,
    score: f32,
    classes: Classes,
) {
    for (level, a) in node.ancestors().take(SCORE_ANCESTORS).enumerate() {
        let Some(ael) = a.value().as_element() else {
            break;
        };
        let entry = raw.entry(a.id()).or_insert_with(|| {
            let by_class = match classes {
                Classes::Weighed => {
                    class_weight(scan.kinds(a.id(), ael, kind::POSITIVE | kind::NEGATIVE))
                }
                Classes::Ignored => 0.0,
            };
            tag_weight(ael.name()) + by_class
        });
        let divider = match level {
            0 => 1.0,
            1 => 2.0,
            n => n as f32 * 3.0,
        };
        *entry += score / divider;
    }
}

fn is_below_body(node: NodeRef<'_, Node>) -> bool {
    node.value()
        .as_element()
        .is_some_and(|e| !matches!(e.name(), "html" | "body"))
}

/// `top` with those of its siblings that continue its text, in document order.
fn continuing_siblings(
    html: &Html,
    scan: &Scan,
    scores: &Scores,
    top: NodeId,
    top_score: f32,
) -> Vec<NodeId> {
    let node = html.tree.get(top).expect("scored ids are in the tree");
    let Some(parent) = node.parent() else {
        return vec![top];
    };
    let threshold = (top_score * SIBLING_SHARE).max(MIN_SIBLING_SCORE);
    let top_class = node.value().as_element().and_then(|e| e.attribute("class"));
    let mut blocks = Vec::new();
    // Where the text itself is a run of pictures (a slideshow), pictures are the text.
    let mut before_top = !is_media_box(node, scan.get(top));
    for sibling in parent.children() {
        if sibling.id() == top {
            blocks.push(top);
            before_top = false;
            continue;
        }
        let Some(el) = sibling.value().as_element() else {
            continue;
        };
        if scan.junk.contains(&sibling.id()) {
            continue;
        }
        // A rule drawn after the text sets off its back matter ("About the company").
        if !before_top && blocks.contains(&top) && opens_with_rule(sibling) {
            break;
        }
        let s = scan.get(sibling.id());
        let same_class = top_class.is_some() && el.attribute("class") == top_class;
        // A picture with its caption above the text is the page's lead image, shown in
        // a box of its own; the text starts after it.
        if before_top && !same_class && is_media_box(sibling, s) {
            continue;
        }
        let mut score = scores.adjusted(sibling.id());
        if same_class {
            score += top_score * SIBLING_SHARE;
        }
        let ld = s.link_density();
        let is_p = el.name() == "p";
        let keep = score >= threshold
            || (is_p && s.text >= MIN_SIBLING_PARAGRAPH_CHARS && ld < MAX_SIBLING_LINK_DENSITY)
            || (is_p && s.text > 0 && ld == 0.0 && ends_sentence(sibling));
        if keep {
            blocks.push(sibling.id());
        }
    }
    keep_later_sections(html, scan, top, &mut blocks);
    blocks
}

/// After the best block, a heading followed by prose starts another section of the same
/// text (a story told under subheadings, each section its own box): when the text is
/// itself prose, the heading and its prose are kept, however short the section. The
/// sections must follow the text without a gap: a box of other text between (comments,
/// a teaser) ends the article, and so does a box that points elsewhere ("Related").
fn keep_later_sections(html: &Html, scan: &Scan, top: NodeId, blocks: &mut Vec<NodeId>) {
    let Some(node) = html.tree.get(top).filter(|n| is_prose_box(*n, scan)) else {
        return;
    };
    let later: Vec<NodeRef<'_, Node>> = node
        .next_siblings()
        .filter(|n| n.value().is_element() && scan.get(n.id()).text > 0)
        .collect();
    let mut kept = Vec::new();
    let mut i = 0;
    while let Some(sibling) = later.get(i) {
        i += 1;
        if blocks.contains(&sibling.id()) {
            continue;
        }
        if scan.junk.contains(&sibling.id()) || is_related_box(*sibling, scan) {
            break;
        }
        if is_prose_box(*sibling, scan) && starts_with_heading(*sibling) {
            kept.push(sibling.id());
        } else if is_heading(*sibling)
            && let Some(next) = later.get(i)
            && (blocks.contains(&next.id()) || is_prose_box(*next, scan))
        {
            kept.extend([sibling.id(), next.id()]);
            i += 1;
        } else {
            break;
        }
    }
    blocks.extend(kept);
    blocks.sort_by_key(|id| sibling_index(html, *id));
    blocks.dedup();
}

/// Whether the first thing shown in `node` is a horizontal rule.
fn opens_with_rule(node: NodeRef<'_, Node>) -> bool {
    node.descendants()
        .find(|n| match n.value() {
            Node::Text(t) => !t.trim().is_empty(),
            Node::Element(e) => matches!(e.name(), "hr" | "img"),
            _ => false,
        })
        .is_some_and(|n| n.value().as_element().is_some_and(|e| e.name() == "hr"))
}

/// Document order among siblings.
fn sibling_index(html: &Html, id: NodeId) -> usize {
    html.tree.get(id).map_or(0, |n| n.prev_siblings().count())
}

fn is_heading(node: NodeRef<'_, Node>) -> bool {
    node.value()
        .as_element()
        .is_some_and(|e| matches!(e.name(), "h2" | "h3" | "h4" | "h5" | "h6"))
}

/// Whether the first text inside `node` is in a heading.
fn starts_with_heading(node: NodeRef<'_, Node>) -> bool {
    node.descendants()
        .find(|n| n.value().as_text().is_some_and(|t| !t.trim().is_empty()))
        .is_some_and(|t| {
            t.ancestors()
                .take_while(|a| a.id() != node.id())
                .any(is_heading)
        })
}

/// A box of prose: most of its text in readable paragraphs, few links.
fn is_prose_box(node: NodeRef<'_, Node>, scan: &Scan) -> bool {
    let s = scan.get(node.id());
    s.prose >= MIN_PARAGRAPH_CHARS
        && s.prose * 2 >= s.text
        && s.link_density() < MAX_SIBLING_LINK_DENSITY
}

/// Blocks holding too little of the page's prose are one section of a text split into
/// several (a landing page of modules): the smallest wrapper of most of the prose is
/// the text.
fn wrapper_of_prose(html: &Html, scan: &Scan, top: NodeId, blocks: &[NodeId]) -> Option<NodeId> {
    if holds_prose_share(html, scan, blocks, MIN_PROSE_SHARE) {
        return None;
    }
    let page_prose = page_prose(html, scan);
    let (num, den) = WRAPPER_PROSE_SHARE;
    html.tree
        .get(top)?
        .ancestors()
        .take_while(|a| is_below_body(*a))
        .find(|a| scan.get(a.id()).prose * den >= page_prose * num)
        .filter(|a| scan.get(a.id()).link_density() < MAX_WRAPPER_LINK_DENSITY)
        .map(|a| a.id())
}

fn ends_sentence(node: NodeRef<'_, Node>) -> bool {
    let text: String = ElementRef::wrap(node)
        .map(|e| e.text().collect())
        .unwrap_or_default();
    let t = text.trim_end();
    t.ends_with('.') || t.contains(". ")
}

fn tag_weight(name: &str) -> f32 {
    match name {
        "div" | "article" | "section" | "main" => 5.0,
        "pre" | "td" | "blockquote" => 3.0,
        "address" | "ol" | "ul" | "dl" | "dd" | "dt" | "li" | "form" => -3.0,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" => -5.0,
        _ => 0.0,
    }
}

fn class_weight(kinds: u16) -> f32 {
    let mut w = 0.0;
    if kinds & kind::POSITIVE != 0 {
        w += CLASS_POINTS;
    }
    if kinds & kind::NEGATIVE != 0 {
        w -= CLASS_POINTS;
    }
    w
}

#[cfg(test)]
pub(super) mod tests {
    use crate::extract::ExtractError;
    use crate::extract::tests::generic;

    /// The body text generic extraction gives for `html`, or why there is none.
    pub(in crate::extract) fn body_text(html: &str) -> Result<String, ExtractError> {
        generic(html).map(|a| a.body_text)
    }

    const PARAGRAPH: &str = "<p>The council opened the new river bridge on Monday morning, after \
        three years of work, two floods and one long argument about its colour.</p>";

    #[test]
    fn later_section_after_a_heading_is_kept() {
        let html = format!(
            "<html><body><article><h1>Council opens the bridge</h1>\
             <div class=\"a1\">{PARAGRAPH}{PARAGRAPH}{PARAGRAPH}{PARAGRAPH}</div>\
             <h2>What comes next</h2><div class=\"a2\"><p>Tolls start in May; river towns ride free.</p></div>\
             </article><footer><p>Copyright, the news example company.</p></footer></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(text.contains("What comes next"), "heading kept: {text}");
        assert!(
            text.ends_with("river towns ride free."),
            "section kept: {text}"
        );
    }

    #[test]
    fn sections_beside_empty_boxes_are_all_kept() {
        // Each section holds an empty row beside its text: the text was not widened to its
        // section, and the sections after the best one were dropped.
        let section = |last: &str| {
            format!(
                "<section class=\"part\"><div class=\"wrap\"><div class=\"row\"></div>\
                 <div class=\"row\"><div class=\"col\">{PARAGRAPH}{PARAGRAPH}{PARAGRAPH}{PARAGRAPH}<p>{last}</p>\
                 </div></div></div></section>"
            )
        };
        let html = format!(
            "<html><body>{}{}</body></html>",
            section("The first part ends here, at the river."),
            section("The second part ends here, at the toll gate.")
        );
        let text = body_text(&html).expect("an article");
        assert!(text.contains("at the river."), "{text}");
        assert!(text.ends_with("at the toll gate."), "{text}");
    }

    #[test]
    fn a_short_box_with_a_content_class_does_not_outweigh_the_text() {
        // The content class made one paragraph near the title the best block, and the
        // text below, in boxes without names, was lost.
        let line = |n: u32| {
            format!(
                "<p>Part {n} of the story tells how the bridge was planned by the council and \
                 built by the river towns over three long and wet years of work.</p>"
            )
        };
        let links: String = (0..30)
            .map(|n| format!("<a href=\"/s/{n}\">Another story number {n}</a> "))
            .collect();
        let html = format!(
            "<html><body><div><div class=\"post-text\">{PARAGRAPH}</div></div>\
             <div class=\"region\"><div><div>{}{}{}{}</div></div></div>\
             <div class=\"more\">{links}</div></body></html>",
            line(1),
            line(2),
            line(3),
            line(4)
        );
        let text = body_text(&html).expect("an article");
        assert!(text.contains("Part 1 of the story"), "{text}");
        assert!(text.contains("Part 4 of the story"), "{text}");
    }

    #[test]
    fn text_in_a_preview_classed_box_is_not_taken_for_a_pager() {
        // Regression: "preview" matched the "prev" of previous-page links, and the first
        // lines shown before a paywall were dropped.
        let html = format!(
            "<html><body><article><h1>Council opens the bridge</h1><div class=\"story\">\
             {PARAGRAPH}{PARAGRAPH}<div class=\"paywall-preview\"><p>Subscribers read on: \
             the bridge cost twice the first estimate.</p></div></div></article></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(text.ends_with("twice the first estimate."), "{text}");
    }

    #[test]
    fn box_opened_by_a_related_heading_is_left_out() {
        // The teasers under "Você pode gostar..." outscored the short post, whose box
        // class they share, and the body was mostly other posts.
        let teaser = |n: u32| {
            format!(
                "<article class=\"post\"><p>Teaser {n}: another long post about the river, \
                 the bridge, the towns, the tolls, and the people who cross it every day.</p>\
                 </article>"
            )
        };
        let teasers: String = (1..=5).map(teaser).collect();
        let html = format!(
            "<html><body><div class=\"columns\"><article class=\"post\"><h1>Council opens \
             the bridge</h1>{PARAGRAPH}</article><article class=\"post\">\
             <h3 class=\"relatedpoststitle\">Você pode gostar...</h3>{teasers}</article>\
             </div></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(text.contains("The council opened"), "{text}");
        assert!(!text.contains("Teaser"), "{text}");
    }

    #[test]
    fn a_related_heading_above_the_title_does_not_drop_the_article() {
        // A "trending" strip heads the same box as the story: the box is the article.
        let html = format!(
            "<html><body><div class=\"page\"><h2 class=\"trending-title\">Trending</h2>\
             <h1>Council opens the bridge</h1>{PARAGRAPH}{PARAGRAPH}</div></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(text.contains("The council opened"), "{text}");
    }

    #[test]
    fn back_matter_after_a_rule_is_left_out() {
        // The press release's "about the company" box, set off by a rule, was kept as
        // more of the text because it shares the text box's class.
        let html = format!(
            "<html><body><div class=\"text\"><h1>Council opens the bridge</h1>{PARAGRAPH}\
             {PARAGRAPH}{PARAGRAPH}</div><div class=\"text\"><div><hr><p>Example Bridges is a \
             global builder of bridges, tunnels and ferries, with offices in twelve countries \
             and about one thousand people.</p></div></div></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(text.contains("The council opened"), "{text}");
        assert!(!text.contains("Example Bridges"), "{text}");
    }

    #[test]
    fn short_news_article_in_plain_text_boxes_is_found() {
        // The story is plain text in spans, which the paragraph scoring does not see; a
        // teaser box of paragraphs outside the article would be taken without the
        // article container as a second opinion.
        let line = "<span>Firefighters rescued seven people from a burning house on Lach \
            Tray street before dawn on Sunday, the city police said.</span><br>";
        let html = format!(
            "<html><body><div class=\"entry-content\"><p>News, weather, sport, culture, \
             and more, every day.</p></div><article><h1>Seven rescued from a fire</h1>\
             <div>{line}{line}{line}</div></article></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(
            text.starts_with("Firefighters rescued seven people"),
            "{text}"
        );
        assert!(!text.contains("weather, sport"), "{text}");
    }
}
