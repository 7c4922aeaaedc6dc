//! Turning the chosen article blocks into clean body HTML and readable text: junk boxes
//! dropped (share bars, related links, comments, ads, read-more teasers), lazy images
//! given a real `src`, relative URLs made absolute, wrappers unwrapped, and the result
//! sanitized with the one article policy (`sanitize`).

use ego_tree::NodeId;
use ego_tree::iter::Edge;
use scraper::{Html, Node, node::Element};
use url::Url;

use super::sanitize::{self, KEEP_TAGS, is_video_src};
use super::scan::{self, AttrExt, IdSet, Scan};
use crate::text::normalize;

/// Element nesting kept in the body HTML; deeper elements are unwrapped.
const MAX_NESTING: usize = 48;

/// A box with more of its text in links than this is a link box...
const MAX_BOX_LINK_DENSITY: f32 = 0.5;
/// ...unless it has at least this much text outside links: then it holds text of its own.
const MIN_UNLINKED_CHARS: u32 = 250;
/// A list with more of its text in links than this, and no paragraphs, is a link list...
const MAX_LIST_LINK_DENSITY: f32 = 0.25;
/// ...when it is shorter than this; a longer one is a part of the text (a reference list).
const MAX_LINK_LIST_CHARS: u32 = 600;
/// A box labelled "related", "read more" is longer than this only when it is the text.
const MAX_RELATED_BOX_CHARS: u32 = 1500;

/// A caption shorter than this may repeat ("Photo: Reuters") and is left to the other
/// rules.
const MIN_REPEATED_CHARS: u32 = 20;

/// Kept tags whose text is one line of body text (the text's leaf blocks).
const TEXT_BLOCKS: &[&str] = &[
    "p",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "pre",
    "td",
    "th",
    "caption",
    "figcaption",
    "dt",
    "dd",
];
/// Kept tags that only style text.
const INLINE_FORMATTING: &[&str] = &[
    "strong", "b", "em", "i", "u", "s", "sub", "sup", "small", "mark", "code",
];
/// Kept heading tags.
const HEADINGS: &[&str] = &["h2", "h3", "h4", "h5", "h6"];
/// Tags that end a line of text when they open or close, kept or unwrapped.
const BREAKING_TAGS: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "blockquote",
    "pre",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "td",
    "th",
    "caption",
    "figure",
    "figcaption",
    "dl",
    "dt",
    "dd",
    "hr",
    "div",
    "section",
    "article",
    "main",
    "header",
    "center",
    "address",
    "details",
    "summary",
    "form",
    "fieldset",
];

/// Sanitized body HTML and its text, paragraphs separated by a blank line.
pub struct Body {
    pub html: String,
    pub text: String,
}

/// Writes the clean body of `blocks`, leaving out `skip` (title, lead, byline elements
/// already taken as other fields).
pub fn body(html: &Html, scan: &Scan, blocks: &[NodeId], skip: &IdSet, base: &Url) -> Body {
    let mut w = Writer::default();
    let mut written = Written::default();
    let article_text: u32 = blocks.iter().map(|b| scan.get(*b).text).sum();
    for &block in blocks.iter().filter(|b| !skip.contains(b)) {
        let Some(root) = html.tree.get(block) else {
            continue;
        };
        let mut skipping: Option<NodeId> = None;
        for edge in root.traverse() {
            match edge {
                Edge::Open(node) => {
                    if skipping.is_some() {
                        continue;
                    }
                    match node.value() {
                        Node::Text(t) => w.text(t),
                        Node::Element(el) => {
                            let drop = node.id() != block
                                && (skip.contains(&node.id())
                                    || drops(el, node, scan, article_text)
                                    || (w.is_empty() && is_lead_media(node, scan)));
                            if drop || scan.junk.contains(&node.id()) || written.repeats(node, scan)
                            {
                                skipping = Some(node.id());
                                continue;
                            }
                            w.open(el, base);
                        }
                        _ => {}
                    }
                }
                Edge::Close(node) => {
                    if skipping == Some(node.id()) {
                        skipping = None;
                        continue;
                    }
                    if skipping.is_none()
                        && let Node::Element(el) = node.value()
                    {
                        w.close(el);
                    }
                }
            }
        }
        w.end_line();
        w.close_implicit();
    }
    // A heading with no text after it introduced a box that was dropped ("more from
    // this column:", "sources:").
    if let Some((html_len, lines)) = w.trailing_heading {
        w.html.truncate(html_len);
        w.lines.truncate(lines);
    }
    let html = sanitize::article_html(&w.html, base);
    Body {
        html,
        text: w.lines.join("\n\n"),
    }
}

/// Captions written so far: a caption that repeats an earlier one word for word (the same
/// line under every picture of a set) is left out.
#[derive(Default)]
struct Written {
    /// The first caption of each text.
    captions: std::collections::HashMap<String, NodeId>,
    /// Whether each parent asked about is a box that only shows a picture, worked out
    /// once per parent: a text of many paragraphs has one parent for all of them.
    media_boxes: scan::IdMap<bool>,
}

impl Written {
    /// Whether `node` is a caption repeating one written before; if not, it is counted as
    /// written.
    fn repeats(&mut self, node: ego_tree::NodeRef<'_, Node>, scan: &Scan) -> bool {
        if scan.get(node.id()).text < MIN_REPEATED_CHARS || !self.is_caption(node, scan) {
            return false;
        }
        let first = *self
            .captions
            .entry(scan::text_of(node, |_| false))
            .or_insert(node.id());
        // A paragraph inside a caption holds the same words, not again.
        first != node.id() && !node.ancestors().any(|a| a.id() == first)
    }

    /// A picture's caption: a `figcaption`, or the text beside the picture in a box that
    /// only shows it.
    fn is_caption(&mut self, node: ego_tree::NodeRef<'_, Node>, scan: &Scan) -> bool {
        let Some(el) = node.value().as_element() else {
            return false;
        };
        if el.name() == "figcaption" {
            return true;
        }
        let Some(parent) = node.parent() else {
            return false;
        };
        matches!(el.name(), "p" | "div" | "span")
            && *self
                .media_boxes
                .entry(parent.id())
                .or_insert_with(|| scan::is_media_box(parent, scan.get(parent.id())))
    }
}

/// A captioned picture or a gallery before any text: the page's lead media, shown in a
/// box of its own above the text; its captions are not the article's text.
fn is_lead_media(node: ego_tree::NodeRef<'_, Node>, scan: &Scan) -> bool {
    let s = scan.get(node.id());
    s.text > 0 && s.prose == 0 && (scan::is_media_box(node, s) || scan::is_gallery(node, scan))
}

fn drops(el: &Element, node: ego_tree::NodeRef<'_, Node>, scan: &Scan, article_text: u32) -> bool {
    let name = el.name();
    if matches!(
        name,
        "header" | "form" | "iframe" | "video" | "audio" | "source" | "h1"
    ) {
        return !(name == "iframe" && el.attribute("src").is_some_and(is_video_src));
    }
    let s = scan.get(node.id());
    if scan.is_soft_junk(node.id(), el) && s.text * 2 < article_text.max(1) {
        return true;
    }
    if matches!(name, "p" | "div") && scan::is_right_aligned_line(el, s) {
        return true;
    }
    if scan::is_marked_date_line(el, s) || scan::is_tag_list(node, s) {
        return true;
    }
    if matches!(name, "p" | "div" | "span" | "small" | "figcaption" | "cite")
        && scan::is_credit(node, scan)
    {
        return true;
    }
    let container = matches!(
        name,
        "div" | "section" | "ul" | "ol" | "table" | "dl" | "p" | "span" | "center"
    );
    if container && s.text > 0 {
        let ld = s.link_density();
        // A box of paragraphs with a link list inside is kept and the list dropped on
        // its own.
        if (ld > MAX_BOX_LINK_DENSITY && s.text - s.links < MIN_UNLINKED_CHARS)
            || (ld > MAX_LIST_LINK_DENSITY
                && matches!(name, "ul" | "ol")
                && s.paragraphs == 0
                && s.text < MAX_LINK_LIST_CHARS)
        {
            return true;
        }
        if (s.text < MAX_RELATED_BOX_CHARS && scan::is_related_box(node, scan))
            || scan::is_ad_label(node, s)
            || scan::is_share_box(node, scan)
            || scan::is_call_to_action(node, scan)
        {
            return true;
        }
    }
    // A heading that points elsewhere ("See also: <a>another story</a>"), or that heads
    // a list of links to other pages ("More on this").
    matches!(name, "h2" | "h3" | "h4" | "h5" | "h6")
        && scan::is_related_box(node, scan)
        && (s.link_density() > MAX_BOX_LINK_DENSITY || heads_links(node, scan))
}

/// Whether the element after `node` is mostly links.
fn heads_links(node: ego_tree::NodeRef<'_, Node>, scan: &Scan) -> bool {
    node.next_siblings()
        .find(|n| n.value().is_element())
        .is_some_and(|next| scan.get(next.id()).link_density() > MAX_LIST_LINK_DENSITY)
}

/// Builds the body HTML and its text lines in one walk.
#[derive(Default)]
struct Writer {
    html: String,
    lines: Vec<String>,
    line: String,
    /// What each open element wrote as its tag (`None` when unwrapped).
    open: Vec<Option<&'static str>>,
    /// Text blocks open among the written tags.
    text_blocks: usize,
    /// Written tags open (for the nesting cap).
    written: usize,
    implicit_p: bool,
    /// Headings open among the written tags.
    headings: usize,
    /// Where the body stood (HTML length, lines) before the headings that no text has
    /// followed yet.
    trailing_heading: Option<(usize, usize)>,
}

impl Writer {
    /// Whether no text has been written yet.
    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.line.trim().is_empty()
    }

    fn text(&mut self, t: &str) {
        if t.trim().is_empty() {
            if !self.html.ends_with(' ') && !self.html.ends_with('>') {
                self.html.push(' ');
            }
            self.line.push(' ');
            return;
        }
        self.ensure_block();
        let n = normalize(t);
        if t.starts_with(char::is_whitespace) {
            self.html.push(' ');
        }
        self.html.push_str(&html_escape::encode_text(&n));
        if t.ends_with(char::is_whitespace) {
            self.html.push(' ');
        }
        self.line.push_str(t);
    }

    /// Text directly in a wrapper gets a paragraph of its own.
    fn ensure_block(&mut self) {
        if self.text_blocks == 0 && !self.implicit_p {
            self.html.push_str("<p>");
            self.implicit_p = true;
        }
    }

    fn close_implicit(&mut self) {
        if self.implicit_p {
            self.html.push_str("</p>");
            self.implicit_p = false;
        }
    }

    fn end_line(&mut self) {
        let line = normalize(&self.line);
        if !line.is_empty() {
            self.lines.push(line);
            if self.headings == 0 {
                self.trailing_heading = None;
            }
        }
        self.line.clear();
    }

    fn open(&mut self, el: &Element, base: &Url) {
        let name = el.name();
        let breaking = BREAKING_TAGS.contains(&name);
        if breaking {
            self.end_line();
            self.close_implicit();
        }
        let tag: Option<&'static str> = match name {
            "img" => {
                if let Some(src) = image_src(el, base) {
                    self.ensure_block();
                    let alt = el.attribute("alt").map(normalize).unwrap_or_default();
                    self.html.push_str(&format!(
                        "<img src=\"{}\" alt=\"{}\">",
                        html_escape::encode_double_quoted_attribute(src.as_str()),
                        html_escape::encode_double_quoted_attribute(&alt)
                    ));
                }
                None
            }
            "iframe" => {
                if let Some(src) = el.attribute("src").and_then(|s| web_url(base, s)) {
                    self.html.push_str(&format!(
                        "<iframe src=\"{}\" allowfullscreen></iframe>",
                        html_escape::encode_double_quoted_attribute(src.as_str())
                    ));
                }
                None
            }
            "br" => {
                if self.text_blocks > 0 || self.implicit_p {
                    self.html.push_str("<br>");
                }
                self.line.push(' ');
                None
            }
            "hr" => {
                self.html.push_str("<hr>");
                None
            }
            _ => KEEP_TAGS
                .iter()
                .find(|t| **t == name)
                .copied()
                .filter(|t| self.written < MAX_NESTING && !self.redundant(t)),
        };
        if let Some(t) = tag {
            if !breaking {
                self.ensure_block();
            }
            if HEADINGS.contains(&t) {
                self.headings += 1;
                self.trailing_heading
                    .get_or_insert((self.html.len(), self.lines.len()));
            }
            self.html.push('<');
            self.html.push_str(t);
            if t == "a"
                && let Some(href) = el.attribute("href").and_then(|h| base.join(h.trim()).ok())
                && matches!(href.scheme(), "http" | "https" | "mailto")
            {
                self.html.push_str(" href=\"");
                self.html
                    .push_str(&html_escape::encode_double_quoted_attribute(href.as_str()));
                self.html.push('"');
            }
            for attr in ["colspan", "rowspan"] {
                if matches!(t, "td" | "th")
                    && let Some(v) = el
                        .attribute(attr)
                        .filter(|v| v.chars().all(|c| c.is_ascii_digit()))
                {
                    self.html.push_str(&format!(" {attr}=\"{v}\""));
                }
            }
            self.html.push('>');
            self.written += 1;
            if TEXT_BLOCKS.contains(&t) {
                self.text_blocks += 1;
            }
        }
        if !matches!(name, "img" | "iframe" | "br" | "hr") {
            self.open.push(tag);
        }
    }

    /// Whether `tag` is inline formatting already open, which adds nothing: the parser
    /// re-opens every unclosed `<b>`/`<i>` in each following paragraph, so a page of
    /// unclosed ones would otherwise be stored many times its size.
    fn redundant(&self, tag: &str) -> bool {
        INLINE_FORMATTING.contains(&tag) && self.open.contains(&Some(tag))
    }

    fn close(&mut self, el: &Element) {
        let name = el.name();
        if matches!(name, "img" | "iframe" | "br" | "hr") {
            return;
        }
        let breaking = BREAKING_TAGS.contains(&name);
        if breaking {
            self.end_line();
            self.close_implicit();
        }
        if let Some(Some(t)) = self.open.pop() {
            self.html.push_str("</");
            self.html.push_str(t);
            self.html.push('>');
            self.written -= 1;
            if TEXT_BLOCKS.contains(&t) {
                self.text_blocks -= 1;
            }
            if HEADINGS.contains(&t) {
                self.headings -= 1;
            }
        }
    }
}

/// The real address of an image: lazy-loading attributes first, then a `src` that is
/// not a placeholder, then `srcset`; the first that is a web address wins, so a hostile
/// lazy attribute does not cost the image its good `src`.
pub fn image_src(el: &Element, base: &Url) -> Option<Url> {
    let lazy = [
        "data-src",
        "data-original",
        "data-lazy-src",
        "data-lazy",
        "data-url",
        "data-full-src",
        "data-hi-res-src",
    ]
    .iter()
    .filter_map(|a| el.attribute(a).map(str::to_owned));
    let src = el
        .attribute("src")
        .filter(|s| !s.trim_start().starts_with("data:"))
        .map(str::to_owned);
    let srcset = ["data-srcset", "srcset", "data-lazy-srcset"]
        .iter()
        .filter_map(|a| el.attribute(a))
        .filter_map(largest_in_srcset);
    lazy.chain(src)
        .chain(srcset)
        .find_map(|candidate| web_url(base, &candidate))
}

/// `raw` resolved against `base`, if it is a web address: a `data:` or `javascript:`
/// value in an image or frame attribute is never passed on to feed readers.
pub fn web_url(base: &Url, raw: &str) -> Option<Url> {
    let url = base.join(raw.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

fn largest_in_srcset(srcset: &str) -> Option<String> {
    srcset
        .split(',')
        .filter_map(|c| {
            let mut parts = c.split_whitespace();
            let url = parts.next()?;
            let size = parts
                .next()
                .and_then(|d| d.trim_end_matches(['w', 'x']).parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((url.to_owned(), size))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(u, _)| u)
}

#[cfg(test)]
mod tests {
    use crate::extract::main_text::tests::body_text;

    const PARAGRAPH: &str = "<p>The council opened the new river bridge on Monday morning, after \
        three years of work, two floods and one long argument about its colour.</p>";

    #[test]
    fn gallery_above_the_text_is_not_body_text() {
        // One picture loaded of nine, and more caption text than one picture carries: only
        // the gallery class says that these are captions.
        let caption = "<div class=\"cap\">The mayor cuts the ribbon on the new bridge on Monday, \
            watched by the builders, the river towns and a brass band from the school.</div>";
        let html = format!(
            "<html><body><article><div class=\"story\">\
             <div class=\"photo-gallery\"><ul><li><img src=\"/a.jpg\">{caption}</li></ul>\
             <div class=\"controls\"><span>Photo: A. Lens</span><span>Image 1 of 9</span>\
             <span>Caption</span><span>Close</span></div>{caption}{caption}</div>\
             {PARAGRAPH}{PARAGRAPH}</div></article></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(text.starts_with("The council opened"), "{text}");
        assert!(!text.contains("ribbon"), "{text}");
    }

    #[test]
    fn captioned_picture_above_the_text_is_left_out_but_one_between_paragraphs_stays() {
        let figure = |caption: &str| {
            format!("<figure><img src=\"/b.jpg\"><figcaption>{caption}</figcaption></figure>")
        };
        let html = format!(
            "<html><body><article><div class=\"story\">{}{PARAGRAPH}{}{PARAGRAPH}\
             </div></article></body></html>",
            figure("Crowds on the bridge at the opening."),
            figure("The old ferry, now retired.")
        );
        let text = body_text(&html).expect("an article");
        assert!(text.starts_with("The council opened"), "{text}");
        assert!(text.contains("The old ferry, now retired."), "{text}");
    }

    #[test]
    fn a_caption_repeated_under_each_picture_is_kept_once_and_repeated_lines_of_text_stay() {
        let picture = |n: u32| {
            format!(
                "<div class=\"wp-caption\"><img src=\"/{n}.jpg\"><p>The opening of the river \
                 bridge festival, Monday</p></div>"
            )
        };
        let step = "<p>Drink water 30 minutes before you set out.</p>";
        let html = format!(
            "<html><body><article><div class=\"story\">{}{PARAGRAPH}{}{step}{PARAGRAPH}{}\
             {step}</div></article></body></html>",
            picture(1),
            picture(2),
            picture(3)
        );
        let text = body_text(&html).expect("an article");
        assert_eq!(text.matches("bridge festival").count(), 1, "{text}");
        assert_eq!(text.matches("Drink water").count(), 2, "{text}");
    }

    #[test]
    fn marked_date_lines_and_tag_lists_are_dropped_but_a_tag_link_in_the_text_stays() {
        let html = format!(
            "<html><body><article><div class=\"story\">\
             <span itemprop=\"datePublished\">Monday, 4 March 2024, 08:15</span>{PARAGRAPH}\
             <p>The toll pays for the <a rel=\"tag\" href=\"/tag/bridges\">bridges</a> of the \
             county, and for nothing else, the council says.</p>\
             <strong>Tags <a rel=\"tag\" href=\"/tag/a\">river bridge</a>, \
             <a rel=\"tag\" href=\"/tag/b\">council</a></strong></div></article></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(!text.contains("4 March 2024"), "{text}");
        assert!(!text.contains("Tags"), "{text}");
        assert!(text.contains("for the bridges of the county"), "{text}");
    }

    #[test]
    fn share_bars_and_app_promotions_are_dropped_by_their_links() {
        let html = format!(
            "<html><body><article><div class=\"story\">{PARAGRAPH}\
             <div><strong>Share this story?</strong><a href=\"https://www.facebook.com/sharer.php\
             ?u=x\"><i></i></a><a href=\"whatsapp://send?text=x\"><i></i></a></div>\
             {PARAGRAPH}<p>Get the news first in our apps for <a href=\"https://apps.apple.com/\
             app/id1\">iOS</a> and <a href=\"https://play.google.com/store/apps/details?id=x\">\
             Android</a>.</p><p>The bridge has its own <a href=\"https://bridge.example/\">site\
             </a>, and <a href=\"https://twitter.com/intent/tweet\">a share link</a>.</p>\
             </div></article></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(!text.contains("Share this story"), "{text}");
        assert!(!text.contains("our apps"), "{text}");
        assert!(text.contains("its own site"), "a link of the text: {text}");
    }

    #[test]
    fn calls_to_subscribe_or_support_and_see_also_headings_are_dropped() {
        let html = format!(
            "<html><body><article><div class=\"story\">{PARAGRAPH}\
             <h3>See also: <a href=\"/other\">Ferry retires after 80 years</a></h3>{PARAGRAPH}\
             <h4>More stories</h4><ul><li>1 May: <a href=\"/a\">Tolls rise again on the old \
             road</a></li></ul><h4>Popular tolls</h4><p>Most drivers pay by card.</p>\
             <p>Subscribe now to our <a href=\"/print\">print edition</a> for the full story.</p>\
             <p><strong>Do you like our journalism? Support us with a small gift.</strong></p>\
             <p>Subscribers to the toll pass pay half.</p></div></article></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(!text.contains("Ferry retires"), "{text}");
        assert!(!text.contains("More stories"), "{text}");
        assert!(
            text.contains("Popular tolls"),
            "a heading of the text: {text}"
        );
        assert!(!text.contains("full story"), "{text}");
        assert!(!text.contains("small gift"), "{text}");
        assert!(
            text.ends_with("Subscribers to the toll pass pay half."),
            "{text}"
        );
    }

    #[test]
    fn credit_lines_are_dropped_and_captions_kept() {
        let html = format!(
            "<html><body><article><div class=\"story\">{PARAGRAPH}\
             <figure><img src=\"/c.jpg\"><figcaption><span>Tolls start in May.</span>\
             <span class=\"media__credit\">A. Lens / Agency</span></figcaption></figure>\
             <p>Foto: B. Blende</p>{PARAGRAPH}\
             <figure><img src=\"/d.jpg\"><figcaption>The old ferry. Ảnh: C. Ống</figcaption></figure>\
             </div></article></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(text.contains("Tolls start in May."), "{text}");
        assert!(!text.contains("A. Lens"), "a credit by its class: {text}");
        assert!(!text.contains("B. Blende"), "a credit by its words: {text}");
        assert!(
            text.ends_with("The old ferry. Ảnh: C. Ống"),
            "a caption with its credit: {text}"
        );
    }

    #[test]
    fn box_headed_already_read_is_dropped() {
        let html = format!(
            "<html><body><article><div class=\"story\">{PARAGRAPH}\
             <div class=\"box\"><h3>Schon gelesen?</h3><p><a href=\"/x\">Die Brücke</a>: \
             was Pendler ab Mai wissen müssen, wenn sie täglich über den Fluss fahren.</p></div>{PARAGRAPH}\
             </div></article></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(!text.contains("Schon gelesen"), "{text}");
        assert!(!text.contains("Pendler"), "{text}");
    }

    #[test]
    fn ad_slot_showing_only_its_label_is_dropped() {
        let html = format!(
            "<html><body><article><div class=\"story\">{PARAGRAPH}\
             <center class=\"x7Kq\"><span>Anzeige</span></center>{PARAGRAPH}\
             </div></article></body></html>"
        );
        let text = body_text(&html).expect("an article");
        assert!(!text.contains("Anzeige"), "{text}");
        assert!(text.ends_with("about its colour."), "{text}");
    }
}
