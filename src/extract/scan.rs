//! One pass over a parsed page shared by every generic rule: the text sizes of each
//! element (text, link text, commas, paragraphs, prose), the subtrees that are never
//! article text (junk tags, hidden elements, junk-classed boxes), and the class/id word
//! patterns that the rules ask about. It decides nothing about which block is the
//! article (`main_text`) or what a field is (`heuristics`). Nothing here knows any site.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ego_tree::iter::Edge;
use ego_tree::{NodeId, NodeRef};
use html5ever::tokenizer::Tag;
use regex::Regex;
use rustc_hash::FxBuildHasher;
use scraper::{Html, Node, node::Element};

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
/// Class or id words of a comment's box. A forum thread's posts are all in such boxes.
static COMMENT_CLASS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)comment").expect("literal regex compiles"));
/// Class or id words of boxes that are usually not article text; dropped only when they
/// are small next to the article.
const SOFT_JUNK_PATTERN: &str = r"(?i)sidebar|widget|footer|masthead|header|(?-u:\b)tags?(?-u:\b)|tag-?list|keyword|tu-?khoa|author|byline|(?-u:\b)meta(?-u:\b)|post-?meta|entry-?meta|dateline|location|stamp|rating|read-?more|more-?(news|stories|articles)|also-?read|(?-u:\b)(next|prev|previous)(?-u:\b)|caption-?credit|hidden|(?-u:\b)hide(?-u:\b)|skip|promo|popular|sponsor|shopping|extra|tool|(?-u:\b)box-?date";
const POSITIVE_PATTERN: &str = r"(?i)article|body|content|entry|hentry|h-entry|main|page|post|text|blog|story|detail|news-?content|cms";
const NEGATIVE_PATTERN: &str = r"(?i)-ad-|hidden|^hid$|(?-u:\b)hid(?-u:\b)|combx|contact|foot|footnote|masthead|media|meta|outbrain|promo|scroll|shoutbox|skyscraper|sponsor|shopping|tags|widget|sidebar|title|date|author|thumb|list";
/// Headings of boxes that point elsewhere ("related", "read more"), in the languages
/// bantin meets.
static RELATED_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\W*(tin liên quan|bài liên quan|tin cùng chuyên mục|tin cùng chủ đề|tin khác|xem thêm|đọc thêm|có thể bạn quan tâm|tin mới|tin nổi bật|đọc nhiều|related|read more|read also|also read|see also|more from|more stories|you may also like|you might also like|recommended|popular|most read|trending|advertisement|quảng cáo|mehr zum thema|weitere artikel|lesen sie auch|schon gelesen|das könnte sie auch interessieren|auch interessant|siehe auch|lee también|lea también|te puede interesar|le puede interesar|ver también|vea también|leia também|veja também|lire aussi|à lire aussi|voir aussi|leggi anche)\b|^\W*mira\s*:",
    )
    .expect("literal regex compiles")
});
/// Class or id words of a heading over links to other pages ("related-posts-title").
static RELATED_HEADING_CLASS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)related|recommend|more-?(news|stories|articles|posts)|most-?(read|viewed|popular)|trending|also-?(like|read)",
    )
    .expect("literal regex compiles")
});
/// The first words of a call to the reader to subscribe, download the app or support the
/// publication, in the languages bantin meets.
static CALL_TO_ACTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\W*(subscribe|sign up|abonnieren|jetzt abonnieren|abonnez-vous|suscr[íi]bete|inscr[íi]bete|download (the|our)|(do you )?(like|enjoy|enjoyed|love) (this|our) (article|story|magazine|newsletter|journalism)|gefällt (dir|ihnen) (unser|dieser|diese|das)|support (us|our|independent)|unterstütze|apoya (el|nuestro)|ap[óo]yanos)\b",
    )
    .expect("literal regex compiles")
});
/// Where a link shares the page (on a social network, by mail) or sends the reader to an
/// app store: links of a share bar or an app promotion, not of the text.
static SHARE_OR_APP_LINK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(mailto:\?|whatsapp:|fb-messenger:|sms:|(https?:)?//([a-z0-9-]+\.)*(facebook\.com/(sharer|share\.php|dialog/(share|send|feed))|(twitter|x)\.com/(intent|share)|linkedin\.com/(sharearticle|cws/share)|pinterest\.[a-z.]+/pin/create|reddit\.com/submit|api\.whatsapp\.com/send|wa\.me/|(t|telegram)\.me/share|plus\.google\.com/share|tumblr\.com/share|xing\.com/spi/shares|vk\.com/share|getpocket\.com/save|(apps|itunes)\.apple\.com/|play\.google\.com/store))",
    )
    .expect("literal regex compiles")
});
/// A tag list is a line or a few; a longer box holds text that links to tags.
const MAX_TAG_LIST_CHARS: u32 = 600;
/// A share bar or an app promotion is a line or two; a longer box holds text too.
const MAX_SHARE_BOX_CHARS: u32 = 300;
/// A call to action is a paragraph or two; a longer box is text that mentions one.
const MAX_CALL_TO_ACTION_CHARS: u32 = 600;
/// The whole text of an ad slot that shows only its label, in the languages bantin meets.
static AD_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\W*(advert|advertisement|advertising|ad|ads|anzeige|werbung|publicidad|publicité|pubblicità|quảng cáo|sponsored)\W*$",
    )
    .expect("literal regex compiles")
});
/// The whole text of a picture's credit line ("Photo: A. Lens", "Foto: dpa", "Image
/// copyright Agency"), in the languages bantin meets.
static CREDIT_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\W*((photos?|fotos?|images?|pictures?|bild|bilder|credits?|crédits?( photos?)?|crédito|ảnh)\s*:|(photo|image|picture|bild) (copyright|credit)|©|copyright\b)",
    )
    .expect("literal regex compiles")
});
/// A credit line is short; a longer line is a caption that names its photographer.
const MAX_CREDIT_CHARS: u32 = 80;
/// An ad label is a word or two; longer text is not only a label.
const MAX_AD_LABEL_CHARS: u32 = 16;
const LEAD_CLASS_PATTERN: &str = r"(?i)sapo|(?-u:\b)lead(?-u:\b)|standfirst|description|(?-u:\b)des([^ki]|$)|summary|excerpt|(?-u:\b)intro|subtitle|subhead|teaser|chapeau|abstract|preface|(?-u:\b)ingress|dek(?-u:\b)";
const AUTHOR_CLASS_PATTERN: &str = r"(?i)author|byline|writer|tac-?gia|(?-u:\b)by(?-u:\b)";
const DATE_CLASS_PATTERN: &str = r"(?i)date|time|publish|posted|(?-u:\b)ngay(?-u:\b)";
const TAG_CLASS_PATTERN: &str =
    r"(?i)(?-u:\b)tags?(?-u:\b)|tag-?list|tags?[-_]|keywords?(?-u:\b)|tu-?khoa";
const ARTICLE_BODY_PATTERN: &str = r"(?i)article-body";
const BREADCRUMB_CLASS_PATTERN: &str = r"(?i)breadcrumb";
/// Class or id words of a picture's credit line.
const CREDIT_CLASS_PATTERN: &str = r"(?i)credit|copyright";
/// Class or id words of boxes that show pictures one after another.
const GALLERY_CLASS_PATTERN: &str = r"(?i)gallery|slideshow|carousel|slider|lightbox";
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
        GALLERY_CLASS_PATTERN,
        CREDIT_CLASS_PATTERN,
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
    pub const GALLERY: u16 = 1 << 10;
    pub const CREDIT: u16 = 1 << 11;
    pub(super) const COUNT: usize = 12;
}
static RIGHT_ALIGNED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)text-align\s*:\s*right").expect("literal regex compiles"));
static DISPLAY_NONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)display\s*:\s*none|visibility\s*:\s*hidden").expect("literal regex compiles")
});

/// Longest caption one picture of a box that only shows pictures may carry.
const MAX_CAPTION_CHARS: u32 = 300;
/// A byline is a short line; longer text is a paragraph that mentions a name.
pub const MAX_BYLINE_CHARS: usize = 80;
/// A paragraph shorter than this adds nothing to a block's score and is not prose.
pub const MIN_PARAGRAPH_CHARS: u32 = 25;
/// A junk-classed box with a content class and this many paragraphs is the text with a
/// widget attached...
const MIN_TEXT_BOX_PARAGRAPHS: u32 = 3;
/// ...when its text is mostly outside links...
const MAX_TEXT_BOX_LINK_DENSITY: f32 = 0.3;
/// ...and it holds at least this much text.
const MIN_TEXT_BOX_CHARS: u32 = 500;

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
    /// Adds a child's sizes (its own text is not the parent's own).
    fn add(&mut self, child: &Stats) {
        self.text += child.text;
        self.links += child.links;
        self.commas += child.commas;
        self.paragraphs += child.paragraphs;
        self.prose += child.prose;
    }

    /// Characters of text outside links.
    pub fn unlinked(&self) -> u32 {
        self.text - self.links
    }

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
        let mut scan = Scan {
            stats: IdMap::default(),
            junk: IdSet::default(),
            kinds: RefCell::new(IdMap::default()),
        };
        let (boxes, related_headings) = scan.measure(html);
        scan.judge_boxes(html, boxes);
        // A box a "related" heading opens points elsewhere, however much text its
        // teasers show and whatever its class says ("post"), unless it holds the title.
        for heading in related_headings {
            if let Some(b) = scan.box_opened_by(html, heading) {
                scan.mark_junk(html, b);
            }
        }
        scan
    }

    /// Fills the text sizes of every element, marks junk tags, and returns the
    /// junk-classed boxes (with whether they also have a content class), to be judged
    /// once the page's size is known: a wrapper whose class happens to say "advert" may
    /// hold the whole article.
    /// Also returns the headings whose class says they head links elsewhere
    /// ("related-title"): the box each opens is junk, whatever its own class.
    fn measure(&mut self, html: &Html) -> (Vec<(NodeId, bool)>, Vec<NodeId>) {
        let kinds = self.kinds.get_mut();
        // (node, stats, is link) of the open elements; skipped subtrees push nothing.
        let mut stack: Vec<(NodeId, Stats, bool)> = Vec::new();
        let mut skip: Option<NodeId> = None;
        let mut links_open = 0u32;
        let mut boxes = Vec::new();
        let mut related_headings = Vec::new();
        for edge in html.tree.root().traverse() {
            match edge {
                Edge::Open(node) if skip.is_none() => match node.value() {
                    Node::Element(el) => {
                        if is_junk_tag(el) {
                            self.junk.insert(node.id());
                            skip = Some(node.id());
                            continue;
                        }
                        let (tried, k) = junk_kinds(el);
                        kinds.insert(node.id(), (tried, k));
                        if is_junk_kinds(el, k) {
                            boxes.push((node.id(), class_kinds(el, kind::POSITIVE) != 0));
                        }
                        if is_related_heading(el) {
                            related_headings.push(node.id());
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
                },
                Edge::Close(node) if skip == Some(node.id()) => skip = None,
                Edge::Close(node) if skip.is_none() && node.value().is_element() => {
                    let Some((id, mut s, is_link)) = stack.pop() else {
                        continue;
                    };
                    links_open -= u32::from(is_link);
                    if node.value().as_element().is_some_and(|e| e.name() == "p") {
                        s.paragraphs += 1;
                        if s.text >= MIN_PARAGRAPH_CHARS && s.links * 2 < s.text {
                            s.prose = s.text;
                        }
                    }
                    self.stats.insert(id, s);
                    if let Some((_, parent, _)) = stack.last_mut() {
                        parent.add(&s);
                    }
                }
                _ => {}
            }
        }
        (boxes, related_headings)
    }

    /// The smallest box around `heading` holding more than it, when the heading is the
    /// first text of that box and the box does not hold the page's title.
    fn box_opened_by(&self, html: &Html, heading: NodeId) -> Option<NodeId> {
        let node = html.tree.get(heading)?;
        let own = self.get(heading).text;
        if own == 0 {
            return None;
        }
        let outer = node.ancestors().find(|a| self.get(a.id()).text > own)?;
        let first_text = outer
            .descendants()
            .find(|n| n.value().as_text().is_some_and(|t| !t.trim().is_empty()))?;
        let opens = first_text.ancestors().any(|a| a.id() == heading);
        let below_body = outer
            .value()
            .as_element()
            .is_some_and(|e| !matches!(e.name(), "html" | "body"));
        let holds_title = outer
            .descendants()
            .any(|n| n.value().as_element().is_some_and(|e| e.name() == "h1"));
        (opens && below_body && !holds_title).then(|| outer.id())
    }

    /// Marks as junk the junk-classed boxes that are small next to the page, and takes
    /// their prose out of their ancestors' count.
    fn judge_boxes(&mut self, html: &Html, boxes: Vec<(NodeId, bool)>) {
        let total = html
            .tree
            .root()
            .children()
            .map(|c| self.get(c.id()).text)
            .sum::<u32>();
        for (id, text_class) in boxes {
            let s = self.get(id);
            // A content-classed box of several paragraphs ("entry share") is the text
            // with a sharing widget attached, not the widget.
            let text_box = text_class
                && s.paragraphs >= MIN_TEXT_BOX_PARAGRAPHS
                && s.link_density() < MAX_TEXT_BOX_LINK_DENSITY
                && s.text >= MIN_TEXT_BOX_CHARS;
            if !self.stats.contains_key(&id) || s.text * 2 >= total || text_box {
                continue;
            }
            self.mark_junk(html, id);
        }
    }

    /// Marks `id` as junk and takes its prose out of its ancestors' count.
    fn mark_junk(&mut self, html: &Html, id: NodeId) {
        let prose = self.get(id).prose;
        let ancestors: Vec<NodeId> = html
            .tree
            .get(id)
            .into_iter()
            .flat_map(|n| n.ancestors())
            .map(|a| a.id())
            .collect();
        // Prose of a box inside a junk box was taken out with the outer box.
        if !ancestors.iter().any(|a| self.junk.contains(a)) {
            for a in &ancestors {
                if let Some(st) = self.stats.get_mut(a) {
                    st.prose = st.prose.saturating_sub(prose);
                }
            }
        }
        self.junk.insert(id);
    }

    /// Which of the `bits` patterns an element's class or id matches.
    pub fn kinds(&self, id: NodeId, el: &Element, bits: u16) -> u16 {
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
    pub fn is(&self, id: NodeId, el: &Element, bits: u16) -> bool {
        self.kinds(id, el, bits) != 0
    }

    /// Usually not article text (a sidebar, a byline box, a tag list); the caller drops
    /// it when it is small next to the article.
    pub fn is_soft_junk(&self, id: NodeId, el: &Element) -> bool {
        !matches!(el.name(), "html" | "body" | "article" | "main")
            && self.is(id, el, kind::SOFT_JUNK)
    }

    pub fn get(&self, id: NodeId) -> Stats {
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

/// Takes the comment words out of a start tag's class and id, so the box reads as text;
/// says whether there were any.
pub fn unclass_comments(tag: &mut Tag) -> bool {
    let before = tag.attrs.len();
    tag.attrs
        .retain(|a| !(&*a.name.local == "id" && COMMENT_CLASS.is_match(&a.value)));
    let mut changed = tag.attrs.len() != before;
    for attr in tag.attrs.iter_mut().filter(|a| &*a.name.local == "class") {
        if COMMENT_CLASS.is_match(&attr.value) {
            let kept: Vec<&str> = attr
                .value
                .split_ascii_whitespace()
                .filter(|c| !COMMENT_CLASS.is_match(c))
                .collect();
            attr.value = kept.join(" ").into();
            changed = true;
        }
    }
    changed
}

/// Whether the element's class or id matches `re` (each read on its own, nothing
/// allocated).
pub fn class_is(el: &Element, re: &Regex) -> bool {
    el.attrs()
        .any(|(k, v)| (k == "class" || k == "id") && !v.is_empty() && re.is_match(v))
}

/// A map keyed by node. Node ids are small indexes, so Fx hashing is enough, and the
/// default SipHash would be the larger cost of the per-node maps.
pub type IdMap<V> = HashMap<NodeId, V, FxBuildHasher>;
/// A set of nodes, hashed like [`IdMap`].
pub type IdSet = HashSet<NodeId, FxBuildHasher>;

/// Which of the `bits` patterns an element's class or id matches.
pub(super) fn class_kinds(el: &Element, bits: u16) -> u16 {
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
pub(super) fn is_junk_kinds(el: &Element, kinds: u16) -> bool {
    !matches!(el.name(), "html" | "body" | "article" | "main")
        && kinds & kind::ALWAYS_JUNK != 0
        && kinds & kind::ARTICLE_BODY == 0
}

/// A box that points elsewhere: its first words are "related", "read more", ...
pub fn is_related_box(node: NodeRef<'_, Node>, scan: &Scan) -> bool {
    first_text(node, scan).is_some_and(|t| RELATED_LABEL.is_match(t))
}

/// A short box that calls on the reader to subscribe, download the app or support the
/// publication.
pub fn is_call_to_action(node: NodeRef<'_, Node>, scan: &Scan) -> bool {
    scan.get(node.id()).text <= MAX_CALL_TO_ACTION_CHARS
        && first_text(node, scan).is_some_and(|t| CALL_TO_ACTION.is_match(t))
}

/// A short box whose links all share the page or lead to an app store: a share bar or an
/// app promotion, whatever its class.
pub fn is_share_box(node: NodeRef<'_, Node>, scan: &Scan) -> bool {
    if scan.get(node.id()).text > MAX_SHARE_BOX_CHARS {
        return false;
    }
    let hrefs: Vec<&str> = node
        .descendants()
        .filter_map(|n| n.value().as_element().filter(|e| e.name() == "a"))
        .filter_map(|a| a.attribute("href").map(str::trim))
        .collect();
    // Links that go nowhere (a menu's "#", a script) do not make it text.
    let nowhere = |h: &&str| h.starts_with('#') || h.starts_with("javascript:");
    hrefs.iter().any(|h| SHARE_OR_APP_LINK.is_match(h))
        && hrefs
            .iter()
            .all(|h| nowhere(h) || SHARE_OR_APP_LINK.is_match(h))
}

/// The nodes under `root` (itself included) in page order, leaving out junk subtrees.
pub fn outside_junk<'a>(
    root: NodeRef<'a, Node>,
    scan: &'a Scan,
) -> impl Iterator<Item = NodeRef<'a, Node>> {
    let mut edges = root.traverse();
    let mut skipping: Option<NodeId> = None;
    std::iter::from_fn(move || {
        loop {
            match edges.next()? {
                Edge::Open(n) if skipping.is_none() => {
                    if scan.junk.contains(&n.id()) {
                        skipping = Some(n.id());
                    } else {
                        return Some(n);
                    }
                }
                Edge::Close(n) if skipping == Some(n.id()) => skipping = None,
                _ => {}
            }
        }
    })
}

/// The box's first words, the text of junk boxes inside (an ad slot labelled
/// "Advertisement") left out; `None` when its first elements hold none.
fn first_text<'a>(node: NodeRef<'a, Node>, scan: &Scan) -> Option<&'a str> {
    let mut skipping: Option<NodeId> = None;
    for edge in node.traverse().take(80) {
        match edge {
            Edge::Open(n) if skipping.is_none() => {
                if scan.junk.contains(&n.id()) {
                    skipping = Some(n.id());
                } else if let Some(t) = n.value().as_text() {
                    let t = t.trim();
                    if !t.is_empty() {
                        return Some(t);
                    }
                }
            }
            Edge::Close(n) if skipping == Some(n.id()) => skipping = None,
            _ => {}
        }
    }
    None
}

/// A heading whose class or id says it heads links to other pages.
fn is_related_heading(el: &Element) -> bool {
    matches!(el.name(), "h2" | "h3" | "h4" | "h5" | "h6") && class_is(el, &RELATED_HEADING_CLASS)
}

/// A box that shows pictures (or a video), each with at most a short caption: a photo
/// with its caption, or a gallery whose text is only its captions and buttons.
pub fn is_media_box(node: NodeRef<'_, Node>, s: Stats) -> bool {
    let pictures = pictures(node);
    pictures > 0 && s.paragraphs <= pictures && s.text <= MAX_CAPTION_CHARS * pictures
}

/// Pictures, videos and frames inside `node`.
fn pictures(node: NodeRef<'_, Node>) -> u32 {
    node.descendants()
        .filter(|n| {
            n.value()
                .as_element()
                .is_some_and(|e| matches!(e.name(), "img" | "video" | "iframe"))
        })
        .count() as u32
}

/// A box classed as a gallery that shows pictures and no prose: its text is captions,
/// counters and buttons, however many pictures it loads later.
pub fn is_gallery(node: NodeRef<'_, Node>, scan: &Scan) -> bool {
    let s = scan.get(node.id());
    s.prose == 0
        && node
            .value()
            .as_element()
            .is_some_and(|el| scan.is(node.id(), el, kind::GALLERY))
        && pictures(node) > 0
}

/// A box whose whole text is an ad slot's label ("Advertisement", "Anzeige").
pub fn is_ad_label(node: NodeRef<'_, Node>, stats: Stats) -> bool {
    stats.text > 0
        && stats.text <= MAX_AD_LABEL_CHARS
        && AD_LABEL.is_match(&text_of(node, |_| false))
}

/// A picture's credit line: a short box classed as a credit, or whose whole text reads
/// as one. A caption that ends with its credit is a caption, and is not one.
pub fn is_credit(node: NodeRef<'_, Node>, scan: &Scan) -> bool {
    let s = scan.get(node.id());
    if s.text == 0 || s.text > MAX_CREDIT_CHARS || pictures(node) > 0 {
        return false;
    }
    let Some(el) = node.value().as_element() else {
        return false;
    };
    scan.is(node.id(), el, kind::CREDIT) || CREDIT_LINE.is_match(&text_of(node, |_| false))
}

/// A short line the page marks up as the article's date (`itemprop="datePublished"`).
pub fn is_marked_date_line(el: &Element, stats: Stats) -> bool {
    stats.text > 0
        && (stats.text as usize) <= MAX_BYLINE_CHARS
        && el
            .attribute("itemprop")
            .is_some_and(|p| matches!(p.trim(), "datePublished" | "dateModified" | "dateCreated"))
}

/// A short box of two or more links the page marks as its tags (`rel="tag"`), however it
/// is classed.
pub fn is_tag_list(node: NodeRef<'_, Node>, stats: Stats) -> bool {
    if stats.text == 0 || stats.text > MAX_TAG_LIST_CHARS || stats.link_density() <= 0.5 {
        return false;
    }
    let links: Vec<&Element> = node
        .descendants()
        .skip(1)
        .filter_map(|n| n.value().as_element().filter(|e| e.name() == "a"))
        .collect();
    // One tag link is a word of the text that links to its tag page.
    links.len() >= 2
        && links.iter().all(|a| {
            a.attribute("rel")
                .is_some_and(|r| r.split_ascii_whitespace().any(|w| w == "tag"))
        })
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

/// Normalized text of an element, skipping descendants `skip` says to.
pub fn text_of(node: NodeRef<'_, Node>, skip: impl Fn(&Element) -> bool) -> String {
    let mut out = String::new();
    let mut skipping: Option<NodeId> = None;
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
