//! Generic rules for pages without configured selectors: which block holds the article
//! text (text-density / link-density scoring of blocks, in the manner of readability),
//! the title from `<h1>` agreeing with `<title>`, and the visible lead, date line,
//! byline, tags and breadcrumb. Nothing here knows any site.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ego_tree::NodeRef;
use ego_tree::iter::Edge;
use regex::Regex;
use rustc_hash::FxBuildHasher;
use scraper::{ElementRef, Html, Node, node::Element};

use crate::text::normalize;

/// Elements whose content is never article text.
const JUNK_TAGS: &[&str] = &[
    "script", "style", "noscript", "template", "head", "nav", "aside", "footer", "button", "input",
    "select", "textarea", "object", "embed", "svg", "canvas", "dialog", "menu", "link", "meta",
    "title",
];

// Class patterns use ASCII word boundaries, `(?-u:\b)`: class names are ASCII, and a
// Unicode `\b` keeps the regex engine off its fast DFA.

/// Class or id words of boxes that are never article text, whatever their size.
const ALWAYS_JUNK_PATTERN: &str = r"(?i)comment|disqus|related|(?-u:\b)share|sharing|social|newsletter|subscri|advert|sponsor|outbrain|taboola|cookie|consent|breadcrumb|adsbygoogle|(?-u:\b)ads?(?-u:\b)|(?-u:\b)ad[-_]|[-_]ads?(?-u:\b)|banner|popup|modal|tin-?lien-?quan|xem-?them|doc-?them|tin-?khac|most-?(read|viewed|popular)|recommend|trending|(?-u:\b)navbar(?-u:\b)|(?-u:\b)nav(?-u:\b)|(?-u:\b)menu(?-u:\b)|pagination|(?-u:\b)pager(?-u:\b)|(?-u:\b)print(?-u:\b)|toolbar|signup|(?-u:\b)login(?-u:\b)";
/// Class or id words of boxes that are usually not article text; dropped only when they
/// are small next to the article.
const SOFT_JUNK_PATTERN: &str = r"(?i)sidebar|widget|footer|masthead|header|(?-u:\b)tags?(?-u:\b)|tag-?list|keyword|tu-?khoa|author|byline|(?-u:\b)meta(?-u:\b)|post-?meta|entry-?meta|dateline|location|stamp|rating|read-?more|more-?(news|stories|articles)|also-?read|next|prev|caption-?credit|hidden|(?-u:\b)hide(?-u:\b)|skip|promo|popular|sponsor|shopping|extra|tool|(?-u:\b)box-?date";
const POSITIVE_PATTERN: &str = r"(?i)article|body|content|entry|hentry|h-entry|main|page|post|text|blog|story|detail|news-?content|cms";
const NEGATIVE_PATTERN: &str = r"(?i)-ad-|hidden|^hid$|(?-u:\b)hid(?-u:\b)|combx|contact|foot|footnote|masthead|media|meta|outbrain|promo|scroll|shoutbox|skyscraper|sponsor|shopping|tags|widget|sidebar|title|date|author|thumb|list";
/// Headings of boxes that point elsewhere ("related", "read more"), in the languages
/// bantin meets.
static RELATED_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\W*(tin liên quan|bài liên quan|tin cùng chuyên mục|tin cùng chủ đề|tin khác|xem thêm|đọc thêm|có thể bạn quan tâm|tin mới|tin nổi bật|đọc nhiều|related|read more|read also|also read|see also|more from|more stories|you may also like|you might also like|recommended|popular|most read|trending|advertisement|quảng cáo|mehr zum thema|weitere artikel|lesen sie auch|das könnte sie auch interessieren)\b",
    )
    .expect("literal regex compiles")
});
const LEAD_CLASS_PATTERN: &str = r"(?i)sapo|(?-u:\b)lead(?-u:\b)|standfirst|description|(?-u:\b)des([^ki]|$)|summary|excerpt|(?-u:\b)intro|subtitle|subhead|teaser|chapeau|abstract|dek(?-u:\b)";
const AUTHOR_CLASS_PATTERN: &str = r"(?i)author|byline|writer|tac-?gia|(?-u:\b)by(?-u:\b)";
const DATE_CLASS_PATTERN: &str = r"(?i)date|time|publish|posted|(?-u:\b)ngay(?-u:\b)";
static UPDATED_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\W*(cập nhật|updated?|last updated|modified|aktualisiert)\b")
        .expect("literal regex compiles")
});
const TAG_CLASS_PATTERN: &str =
    r"(?i)(?-u:\b)tags?(?-u:\b)|tag-?list|tags?[-_]|keywords?(?-u:\b)|tu-?khoa";
const ARTICLE_BODY_PATTERN: &str = r"(?i)article-body";
const BREADCRUMB_CLASS_PATTERN: &str = r"(?i)breadcrumb";
/// Every class pattern, in [`kind`] bit order.
static CLASS_REGEXES: LazyLock<[Regex; kind::COUNT]> = LazyLock::new(|| {
    [
        ALWAYS_JUNK_PATTERN,
        SOFT_JUNK_PATTERN,
        POSITIVE_PATTERN,
        NEGATIVE_PATTERN,
        LEAD_CLASS_PATTERN,
        AUTHOR_CLASS_PATTERN,
        DATE_CLASS_PATTERN,
        TAG_CLASS_PATTERN,
        ARTICLE_BODY_PATTERN,
        BREADCRUMB_CLASS_PATTERN,
    ]
    .map(|p| Regex::new(p).expect("literal regex compiles"))
});
/// Bits of `CLASS_REGEXES` matches, in its order.
pub mod kind {
    pub const ALWAYS_JUNK: u16 = 1 << 0;
    pub const SOFT_JUNK: u16 = 1 << 1;
    pub const POSITIVE: u16 = 1 << 2;
    pub const NEGATIVE: u16 = 1 << 3;
    pub const LEAD: u16 = 1 << 4;
    pub const AUTHOR: u16 = 1 << 5;
    pub const DATE: u16 = 1 << 6;
    pub const TAG: u16 = 1 << 7;
    pub const ARTICLE_BODY: u16 = 1 << 8;
    pub const BREADCRUMB: u16 = 1 << 9;
    pub(super) const COUNT: usize = 10;
}
static RIGHT_ALIGNED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)text-align\s*:\s*right").expect("literal regex compiles"));
static DISPLAY_NONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)display\s*:\s*none|visibility\s*:\s*hidden").expect("literal regex compiles")
});

/// A byline is a short line; longer text is a paragraph that mentions a name.
pub const MAX_BYLINE_CHARS: usize = 80;
/// A paragraph shorter than this adds nothing to a block's score.
const MIN_PARAGRAPH_CHARS: u32 = 25;
/// A block with less text than this is scored down in proportion (a positive class on a
/// one-line box must not outweigh the paragraphs of the article).
const MIN_BLOCK_CHARS: f32 = 300.0;
/// How many ancestors a paragraph's score is handed up to.
const SCORE_ANCESTORS: usize = 5;

/// Text sizes of one element, junk subtrees left out.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Non-space characters of text.
    pub text: u32,
    /// Non-space characters inside links.
    pub links: u32,
    /// Commas in the text.
    pub commas: u32,
    /// Non-space characters of text nodes directly inside the element.
    pub own: u32,
    /// `<p>` elements inside.
    pub paragraphs: u32,
    /// Non-space characters of the paragraphs inside that read as prose: long enough and
    /// mostly outside links.
    pub prose: u32,
}

impl Stats {
    pub fn link_density(&self) -> f32 {
        if self.text == 0 {
            0.0
        } else {
            self.links as f32 / self.text as f32
        }
    }
}

/// One pass over a parsed page: text sizes of every element and the subtrees that are
/// junk.
pub struct Scan {
    pub stats: IdMap<Stats>,
    pub junk: IdSet,
    /// Per element, which [`kind`] patterns were tried on its class and id and which
    /// matched; filled as elements are asked about.
    kinds: RefCell<IdMap<(u16, u16)>>,
}

impl Scan {
    pub fn new(html: &Html) -> Scan {
        let mut stats = IdMap::default();
        let mut junk = IdSet::default();
        let mut kinds = IdMap::default();
        // (node, stats, is link) of the open elements; skipped subtrees push nothing.
        let mut stack: Vec<(ego_tree::NodeId, Stats, bool)> = Vec::new();
        let mut skip: Option<ego_tree::NodeId> = None;
        let mut links_open = 0u32;
        // Junk-classed boxes are judged once the page's size is known: a wrapper whose
        // class happens to say "advert" may hold the whole article.
        let mut boxes = Vec::new();
        for edge in html.tree.root().traverse() {
            match edge {
                Edge::Open(node) => {
                    if skip.is_some() {
                        continue;
                    }
                    match node.value() {
                        Node::Element(el) => {
                            if is_junk_tag(el) {
                                junk.insert(node.id());
                                skip = Some(node.id());
                                continue;
                            }
                            let (tried, k) = junk_kinds(el);
                            kinds.insert(node.id(), (tried, k));
                            if is_junk_kinds(el, k) {
                                boxes.push((node.id(), class_kinds(el, kind::POSITIVE) != 0));
                            }
                            let is_link = el.name() == "a";
                            links_open += u32::from(is_link);
                            stack.push((node.id(), Stats::default(), is_link));
                        }
                        Node::Text(t) => {
                            let (n, commas) = count(t);
                            if let Some((_, s, _)) = stack.last_mut() {
                                s.text += n;
                                s.own += n;
                                s.commas += commas;
                                if links_open > 0 {
                                    s.links += n;
                                }
                            }
                        }
                        _ => {}
                    }
                }
                Edge::Close(node) => {
                    if skip == Some(node.id()) {
                        skip = None;
                        continue;
                    }
                    if skip.is_some() || !node.value().is_element() {
                        continue;
                    }
                    let Some((id, mut s, is_link)) = stack.pop() else {
                        continue;
                    };
                    links_open -= u32::from(is_link);
                    if let Some(el) = node.value().as_element()
                        && el.name() == "p"
                    {
                        s.paragraphs += 1;
                        if s.text >= MIN_PARAGRAPH_CHARS && s.links * 2 < s.text {
                            s.prose = s.text;
                        }
                    }
                    stats.insert(id, s);
                    if let Some((_, parent, _)) = stack.last_mut() {
                        parent.text += s.text;
                        parent.links += s.links;
                        parent.commas += s.commas;
                        parent.paragraphs += s.paragraphs;
                        parent.prose += s.prose;
                    }
                }
            }
        }
        let total = html
            .tree
            .root()
            .children()
            .filter_map(|c| stats.get(&c.id()))
            .map(|s: &Stats| s.text)
            .sum::<u32>();
        for (id, text_class) in boxes {
            // A content-classed box of several paragraphs ("entry share") is the text
            // with a sharing widget attached, not the widget.
            let text_box = |s: &Stats| {
                text_class && s.paragraphs >= 3 && s.link_density() < 0.3 && s.text >= 500
            };
            if let Some(s) = stats.get(&id).copied()
                && s.text * 2 < total
                && !text_box(&s)
            {
                let ancestors: Vec<_> = html
                    .tree
                    .get(id)
                    .into_iter()
                    .flat_map(|n| n.ancestors())
                    .map(|a| a.id())
                    .collect();
                // Prose of a box inside a junk box was taken out with the outer box.
                if !ancestors.iter().any(|a| junk.contains(a)) {
                    for a in &ancestors {
                        if let Some(st) = stats.get_mut(a) {
                            st.prose = st.prose.saturating_sub(s.prose);
                        }
                    }
                }
                junk.insert(id);
            }
        }
        Scan {
            stats,
            junk,
            kinds: RefCell::new(kinds),
        }
    }

    /// Which of the `bits` patterns an element's class or id matches.
    pub fn kinds(&self, id: ego_tree::NodeId, el: &Element, bits: u16) -> u16 {
        let (tried, matched) = self.kinds.borrow().get(&id).copied().unwrap_or((0, 0));
        let untried = bits & !tried;
        if untried == 0 {
            return matched & bits;
        }
        let matched = matched | class_kinds(el, untried);
        self.kinds
            .borrow_mut()
            .insert(id, (tried | untried, matched));
        matched & bits
    }

    /// Whether an element's class or id matches one of the `bits` patterns.
    pub fn is(&self, id: ego_tree::NodeId, el: &Element, bits: u16) -> bool {
        self.kinds(id, el, bits) != 0
    }

    /// Usually not article text (a sidebar, a byline box, a tag list); the caller drops
    /// it when it is small next to the article.
    pub fn is_soft_junk(&self, id: ego_tree::NodeId, el: &Element) -> bool {
        !matches!(el.name(), "html" | "body" | "article" | "main")
            && self.is(id, el, kind::SOFT_JUNK)
    }

    pub fn get(&self, id: ego_tree::NodeId) -> Stats {
        self.stats.get(&id).copied().unwrap_or_default()
    }
}

fn count(text: &str) -> (u32, u32) {
    let mut n = 0u32;
    let mut commas = 0u32;
    for c in text.chars() {
        if !c.is_whitespace() {
            n += 1;
            if matches!(c, ',' | '،' | '，' | '、') {
                commas += 1;
            }
        }
    }
    (n, commas)
}

/// Attribute lookup by plain string comparison. `Element::attr` interns the name as an
/// atom on every call, which costs more than scanning an element's few attributes.
pub trait AttrExt {
    fn attribute(&self, name: &str) -> Option<&str>;
}

impl AttrExt for Element {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attrs().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// Whether the element's class or id matches `re` (each read on its own, nothing
/// allocated).
pub fn class_is(el: &Element, re: &Regex) -> bool {
    el.attrs()
        .any(|(k, v)| (k == "class" || k == "id") && !v.is_empty() && re.is_match(v))
}

/// A map keyed by node. Node ids are small indexes, so Fx hashing is enough, and the
/// default SipHash would be the larger cost of the per-node maps.
pub type IdMap<V> = HashMap<ego_tree::NodeId, V, FxBuildHasher>;
/// A set of nodes, hashed like [`IdMap`].
pub type IdSet = HashSet<ego_tree::NodeId, FxBuildHasher>;

/// Which of the `bits` patterns an element's class or id matches.
fn class_kinds(el: &Element, bits: u16) -> u16 {
    if !el.attrs().any(|(k, _)| k == "class" || k == "id") {
        return 0;
    }
    (0..kind::COUNT)
        .filter(|i| bits & (1 << i) != 0 && class_is(el, &CLASS_REGEXES[*i]))
        .fold(0, |acc, i| acc | (1 << i))
}

/// Class and id of an element, joined for pattern matching.
pub fn class_id(el: &Element) -> String {
    let mut s = String::new();
    if let Some(c) = el.attribute("class") {
        s.push_str(c);
    }
    if let Some(i) = el.attribute("id") {
        s.push(' ');
        s.push_str(i);
    }
    s
}

/// Never article text: a junk tag or a hidden element.
pub fn is_junk_tag(el: &Element) -> bool {
    let name = el.name();
    JUNK_TAGS.contains(&name)
        || el.attribute("hidden").is_some()
        || el.attribute("aria-hidden").is_some_and(|v| v == "true") && name != "span" && name != "i"
        || el
            .attribute("style")
            .is_some_and(|s| DISPLAY_NONE.is_match(s))
}

/// Never article text: a junk tag, a hidden element, or an always-junk box.
pub fn is_junk(el: &Element) -> bool {
    is_junk_tag(el) || is_junk_kinds(el, junk_kinds(el).1)
}

/// (tried, matched) of the always-junk pattern and, where it matches, of the
/// article-body exception.
fn junk_kinds(el: &Element) -> (u16, u16) {
    let k = class_kinds(el, kind::ALWAYS_JUNK);
    if k == 0 {
        (kind::ALWAYS_JUNK, 0)
    } else {
        let both = kind::ALWAYS_JUNK | kind::ARTICLE_BODY;
        (both, k | class_kinds(el, kind::ARTICLE_BODY))
    }
}

/// An always-junk box by its class (the tag not considered).
fn is_junk_kinds(el: &Element, kinds: u16) -> bool {
    !matches!(el.name(), "html" | "body" | "article" | "main")
        && kinds & kind::ALWAYS_JUNK != 0
        && kinds & kind::ARTICLE_BODY == 0
}

/// A box that points elsewhere: its first words are "related", "read more", ... Text of
/// junk boxes inside (an ad slot labelled "Advertisement") does not count.
pub fn is_related_box(node: NodeRef<'_, Node>, scan: &Scan) -> bool {
    let mut skipping: Option<ego_tree::NodeId> = None;
    for edge in node.traverse().take(80) {
        match edge {
            Edge::Open(n) if skipping.is_none() => {
                if scan.junk.contains(&n.id()) {
                    skipping = Some(n.id());
                } else if let Some(t) = n.value().as_text() {
                    let t = t.trim();
                    if !t.is_empty() {
                        return RELATED_LABEL.is_match(t);
                    }
                }
            }
            Edge::Close(n) if skipping == Some(n.id()) => skipping = None,
            _ => {}
        }
    }
    false
}

/// A short right-aligned line: a byline printed at the end of the text.
pub fn is_right_aligned_line(el: &Element, stats: Stats) -> bool {
    (el.attribute("align")
        .is_some_and(|a| a.eq_ignore_ascii_case("right"))
        || el
            .attribute("style")
            .is_some_and(|s| RIGHT_ALIGNED.is_match(s)))
        && stats.text > 0
        && (stats.text as usize) <= MAX_BYLINE_CHARS
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
        w += 25.0;
    }
    if kinds & kind::NEGATIVE != 0 {
        w -= 25.0;
    }
    w
}

/// The blocks that hold the article text, in document order: the best-scoring block and
/// those of its siblings that look like more of the same text.
pub fn main_blocks(html: &Html, scan: &Scan) -> Vec<ego_tree::NodeId> {
    let mut scores: IdMap<f32> = IdMap::default();
    let mut skipping: Option<ego_tree::NodeId> = None;
    for edge in html.tree.root().traverse() {
        let node = match edge {
            Edge::Open(n) if skipping.is_none() => n,
            Edge::Close(n) if skipping == Some(n.id()) => {
                skipping = None;
                continue;
            }
            _ => continue,
        };
        if scan.junk.contains(&node.id()) {
            skipping = Some(node.id());
            continue;
        }
        let Some(el) = node.value().as_element() else {
            continue;
        };
        let Some(s) = scan.stats.get(&node.id()) else {
            continue;
        };
        let paragraph_like = match el.name() {
            "p" | "pre" | "td" | "blockquote" => true,
            "div" | "section" | "article" => s.own >= MIN_PARAGRAPH_CHARS,
            _ => false,
        };
        if !paragraph_like {
            continue;
        }
        let len = if el.name() == "p" { s.text } else { s.own };
        if len < MIN_PARAGRAPH_CHARS {
            continue;
        }
        let score = 1.0 + s.commas as f32 + (len as f32 / 100.0).min(3.0);
        let mut ancestor = node.parent();
        let mut level = 0usize;
        while let Some(a) = ancestor {
            if level >= SCORE_ANCESTORS {
                break;
            }
            let Some(ael) = a.value().as_element() else {
                break;
            };
            let entry = scores.entry(a.id()).or_insert_with(|| {
                tag_weight(ael.name())
                    + class_weight(scan.kinds(a.id(), ael, kind::POSITIVE | kind::NEGATIVE))
            });
            let divider = match level {
                0 => 1.0,
                1 => 2.0,
                n => n as f32 * 3.0,
            };
            *entry += score / divider;
            ancestor = a.parent();
            level += 1;
        }
    }
    let adjusted = |id: ego_tree::NodeId, raw: f32| {
        let s = scan.get(id);
        raw * (1.0 - s.link_density()) * (s.text as f32 / MIN_BLOCK_CHARS).sqrt().min(1.0)
    };
    let Some((mut top, top_score)) = scores
        .iter()
        .map(|(id, raw)| (*id, adjusted(*id, *raw)))
        .filter(|(id, _)| {
            html.tree
                .get(*id)
                .and_then(|n| n.value().as_element())
                .is_some_and(|e| !matches!(e.name(), "html" | "body"))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
    else {
        return Vec::new();
    };
    // A parent that scores nearly as well holds the same text split over several
    // children (a text block interrupted by a figure wrapper, say).
    loop {
        let node = html.tree.get(top).expect("scored ids are in the tree");
        let Some(parent) = node.parent() else { break };
        if parent
            .value()
            .as_element()
            .is_none_or(|e| matches!(e.name(), "html" | "body"))
        {
            break;
        }
        let only_child = parent.children().filter(|c| c.value().is_element()).count() == 1;
        let parent_score = scores
            .get(&parent.id())
            .map_or(0.0, |raw| adjusted(parent.id(), *raw));
        if only_child || parent_score >= top_score * 0.9 {
            top = parent.id();
        } else {
            break;
        }
    }
    let node = html.tree.get(top).expect("scored ids are in the tree");
    let Some(parent) = node.parent() else {
        return vec![top];
    };
    let threshold = (top_score * 0.2).max(10.0);
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
        let s = scan.get(sibling.id());
        // A picture with its caption above the text is the page's lead image, shown in
        // a box of its own; the text starts after it.
        if before_top && el.attribute("class") != top_class && is_media_box(sibling, s) {
            continue;
        }
        let mut score = scores
            .get(&sibling.id())
            .map_or(0.0, |raw| adjusted(sibling.id(), *raw));
        if top_class.is_some() && el.attribute("class") == top_class {
            score += top_score * 0.2;
        }
        let ld = s.link_density();
        let keep = score >= threshold
            || (el.name() == "p" && s.text >= 80 && ld < 0.25)
            || (el.name() == "p" && s.text > 0 && ld == 0.0 && ends_sentence(sibling));
        if keep {
            blocks.push(sibling.id());
        }
    }
    wrapper_of_prose(html, scan, top, &blocks).map_or(blocks, |a| vec![a])
}

/// Blocks holding under 60% of the page's prose are one section of a text split into
/// several (a landing page of modules): the smallest wrapper of 80% of the prose is
/// the text.
fn wrapper_of_prose(
    html: &Html,
    scan: &Scan,
    top: ego_tree::NodeId,
    blocks: &[ego_tree::NodeId],
) -> Option<ego_tree::NodeId> {
    let page_prose: u32 = html
        .tree
        .root()
        .children()
        .map(|c| scan.get(c.id()).prose)
        .sum();
    let prose: u32 = blocks.iter().map(|b| scan.get(*b).prose).sum();
    if prose * 5 >= page_prose * 3 {
        return None;
    }
    html.tree
        .get(top)?
        .ancestors()
        .take_while(|a| {
            a.value()
                .as_element()
                .is_some_and(|e| !matches!(e.name(), "html" | "body"))
        })
        .find(|a| scan.get(a.id()).prose * 5 >= page_prose * 4)
        .filter(|a| scan.get(a.id()).link_density() < 0.3)
        .map(|a| a.id())
}

/// Longest caption a picture box may carry and still be only a picture.
const MAX_CAPTION_CHARS: u32 = 300;

/// A box that shows a picture (or video) with at most a one-paragraph caption.
fn is_media_box(node: NodeRef<'_, Node>, s: Stats) -> bool {
    s.text <= MAX_CAPTION_CHARS
        && s.paragraphs <= 1
        && node.descendants().any(|n| {
            n.value()
                .as_element()
                .is_some_and(|e| matches!(e.name(), "img" | "picture" | "video" | "iframe"))
        })
}

fn ends_sentence(node: NodeRef<'_, Node>) -> bool {
    let text: String = ElementRef::wrap(node)
        .map(|e| e.text().collect())
        .unwrap_or_default();
    let t = text.trim_end();
    t.ends_with('.') || t.contains(". ")
}

/// Normalized text of an element, skipping descendants `skip` says to.
pub fn text_of(node: NodeRef<'_, Node>, skip: impl Fn(&Element) -> bool) -> String {
    let mut out = String::new();
    let mut skipping: Option<ego_tree::NodeId> = None;
    for edge in node.traverse() {
        match edge {
            Edge::Open(n) if skipping.is_none() => match n.value() {
                Node::Element(el) if n.id() != node.id() && (skip(el) || is_junk(el)) => {
                    skipping = Some(n.id())
                }
                Node::Element(el) if el.name() == "br" => out.push(' '),
                Node::Text(t) => out.push_str(t),
                _ => {}
            },
            Edge::Close(n) if skipping == Some(n.id()) => skipping = None,
            _ => {}
        }
    }
    normalize(&out)
}

/// The page's `<h1>` that agrees with `<title>`, or `<title>` without its site suffix.
pub fn title(html: &Html, page_title: Option<&str>) -> Option<(String, ego_tree::NodeId)> {
    let h1s: Vec<(String, ego_tree::NodeId)> = html
        .tree
        .root()
        .descendants()
        .filter(|n| n.value().as_element().is_some_and(|e| e.name() == "h1"))
        .map(|n| (text_of(n, |_| false), n.id()))
        .filter(|(t, _)| !t.is_empty())
        .collect();
    if let Some(pt) = page_title {
        let lower = pt.to_lowercase();
        if let Some(h) = h1s
            .iter()
            .filter(|(t, _)| lower.contains(&t.to_lowercase()))
            .max_by_key(|(t, _)| t.len())
        {
            return Some(h.clone());
        }
    }
    h1s.into_iter().next()
}

/// `<title>` without a site name after " - ", " | ", " – " and the like.
pub fn strip_site_suffix(title: &str) -> String {
    for sep in [" | ", " - ", " – ", " — ", " :: ", " · ", " « ", " » "] {
        if let Some((head, _)) = title.rsplit_once(sep)
            && head.chars().count() >= 15
        {
            return head.trim().to_owned();
        }
    }
    title.trim().to_owned()
}

/// The visible standfirst: a block classed like a lead that agrees with the meta
/// description, or, without a description, the first such block.
pub fn lead(
    html: &Html,
    scan: &Scan,
    description: Option<&str>,
) -> Option<(String, ego_tree::NodeId)> {
    let probe: Option<String> = description.map(|d| {
        normalize(d)
            .trim_end_matches(['.', '…'])
            .chars()
            .take(30)
            .collect::<String>()
            .to_lowercase()
    });
    let mut first = None;
    for node in html.tree.root().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        if matches!(el.name(), "meta" | "html" | "body" | "a" | "img") {
            continue;
        }
        let Some(s) = scan.stats.get(&node.id()) else {
            continue;
        };
        if s.text < 20 || s.text > 1500 || s.link_density() > 0.3 {
            continue;
        }
        if !scan.is(node.id(), el, kind::LEAD) {
            continue;
        }
        let text = text_of(node, |e| class_kinds(e, kind::SOFT_JUNK) != 0);
        if text.chars().count() < 20 {
            continue;
        }
        match &probe {
            Some(p) if !p.is_empty() => {
                let lower = text.to_lowercase();
                if lower.contains(p.as_str()) {
                    return Some((text, node.id()));
                }
            }
            _ => {
                if first.is_none() {
                    first = Some((text, node.id()));
                }
            }
        }
    }
    first
}

/// A date from `time[datetime]`, or the text of a short date-classed element. With
/// `updated`, only lines labelled as an update count; without, those are skipped.
pub fn date_text(html: &Html, scan: &Scan, updated: bool) -> Option<String> {
    if !updated {
        for node in html.tree.root().descendants() {
            if let Some(el) = node.value().as_element()
                && el.name() == "time"
                && let Some(dt) = el.attribute("datetime")
            {
                return Some(dt.to_owned());
            }
        }
    }
    for node in html.tree.root().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        if matches!(el.name(), "html" | "body" | "script" | "style") {
            continue;
        }
        if !scan.is(node.id(), el, kind::DATE)
            || is_junk_tag(el)
            || is_junk_kinds(
                el,
                scan.kinds(node.id(), el, kind::ALWAYS_JUNK | kind::ARTICLE_BODY),
            )
        {
            continue;
        }
        let text = text_of(node, |_| false);
        if text.is_empty() || text.chars().count() > 80 {
            continue;
        }
        if UPDATED_LABEL.is_match(&text) == updated {
            return Some(text);
        }
    }
    None
}

/// Bylines: author-classed elements, `rel=author` links, or a short right-aligned line at
/// the end of the article blocks.
pub fn authors(
    html: &Html,
    scan: &Scan,
    blocks: &[ego_tree::NodeId],
) -> Option<(String, ego_tree::NodeId)> {
    for node in html.tree.root().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        if matches!(el.name(), "html" | "body" | "meta" | "link") {
            continue;
        }
        let by_class = { scan.is(node.id(), el, kind::AUTHOR) };
        let by_attr = el.attribute("rel").is_some_and(|r| r == "author")
            || el.attribute("itemprop").is_some_and(|r| r == "author");
        if !(by_class || by_attr) {
            continue;
        }
        let text = text_of(node, |_| false);
        if !text.is_empty() && text.chars().count() <= MAX_BYLINE_CHARS {
            return Some((text, node.id()));
        }
    }
    let last = blocks
        .iter()
        .rev()
        .filter_map(|id| html.tree.get(*id))
        .flat_map(|b| b.descendants().collect::<Vec<_>>().into_iter().rev())
        .find(|n| {
            n.value()
                .as_element()
                .is_some_and(|e| !is_junk(e) && is_right_aligned_line(e, scan.get(n.id())))
        })?;
    Some((text_of(last, |_| false), last.id()))
}

/// Link texts of a tag list.
pub fn tags(html: &Html, scan: &Scan) -> Vec<String> {
    for node in html.tree.root().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        if matches!(el.name(), "html" | "body" | "meta" | "a") {
            continue;
        }
        if !scan.is(node.id(), el, kind::TAG) {
            continue;
        }
        let tags: Vec<String> = node
            .descendants()
            .filter(|n| n.value().as_element().is_some_and(|e| e.name() == "a"))
            .map(|n| text_of(n, |_| false))
            .filter(|t| !t.is_empty() && !t.ends_with(':') && t.chars().count() <= 60)
            .collect();
        if !tags.is_empty() {
            return tags;
        }
    }
    Vec::new()
}

/// The last link of the breadcrumb trail.
pub fn section(html: &Html, scan: &Scan) -> Option<String> {
    for node in html.tree.root().descendants() {
        let Some(el) = node.value().as_element() else {
            continue;
        };
        let crumb = scan.is(node.id(), el, kind::BREADCRUMB)
            || el
                .attribute("itemtype")
                .is_some_and(|t| t.ends_with("BreadcrumbList"));
        if !crumb {
            continue;
        }
        let last = node
            .descendants()
            .filter(|n| n.value().as_element().is_some_and(|e| e.name() == "a"))
            .map(|n| text_of(n, |_| false))
            .filter(|t| !t.is_empty())
            .last();
        if last.is_some() {
            return last;
        }
    }
    None
}
