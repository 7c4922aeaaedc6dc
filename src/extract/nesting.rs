//! A bound on how deeply HTML elements nest, applied to the markup before it is parsed.
//! The HTML tree builder checks "is there a `<p>` in scope" by walking its stack of open
//! elements at every tag, and re-opens every unclosed `<b>`/`<i>` at every new block, so
//! a page of thousands of nested `<div>`s costs quadratic time and one of unclosed
//! `<b><i><p>` quadratic memory. Here the page is tokenized once (html5ever's own
//! tokenizer), the nesting the tree builder will see is followed with its main rules
//! (implied ends of `p`, `li`, `td`, ..., scopes, unclosed formatting elements), and tags
//! past [`MAX_DEPTH`] (or past [`MAX_OPEN_FORMATTING`] unclosed formatting elements) are
//! left out while their text is kept: deep content is flattened, not lost. A page
//! within the bounds is returned as it came. Not here: parsing itself (`scraper`).

use std::borrow::Cow;
use std::cell::RefCell;

use html5ever::LocalName;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Doctype, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use rustc_hash::FxHashMap;
use scraper::Html;

/// Elements open at once; deeper start tags are left out. Browsers flatten past 512
/// (Blink); real article pages stay well under 100.
pub const MAX_DEPTH: usize = 256;
/// Unclosed formatting elements (`<b>`, `<i>`, `<font>`, ...) at once. The tree builder
/// re-opens each of them in every following block, so this bounds how much larger the
/// parsed tree can be than the page.
pub const MAX_OPEN_FORMATTING: usize = 6;

/// Parses a whole page with the nesting bound.
pub fn parse_document(html: &str) -> Html {
    Html::parse_document(&bound(html))
}

/// Parses an HTML fragment (a feed entry's content) with the nesting bound.
pub fn parse_fragment(html: &str) -> Html {
    Html::parse_fragment(&bound(html))
}

/// `html` with tags past the bounds left out; the same text when nothing was.
pub fn bound(html: &str) -> Cow<'_, str> {
    // Fewer tags than the bound cannot nest past it.
    if html.bytes().filter(|b| *b == b'<').count() <= MAX_OPEN_FORMATTING {
        return Cow::Borrowed(html);
    }
    let tokenizer = Tokenizer::new(Flattener::default(), TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(html.into());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    let state = tokenizer.sink.state.into_inner();
    if state.flattened {
        Cow::Owned(state.out)
    } else {
        Cow::Borrowed(html)
    }
}

/// Rewrites the token stream, following the nesting the tree builder will build.
#[derive(Default)]
struct Flattener {
    state: RefCell<Model>,
}

#[derive(Default)]
struct Model {
    out: String,
    /// Open elements, innermost last.
    open: Vec<Open>,
    /// How many of each element are open, so a search for one that is not ends at once.
    open_count: FxHashMap<LocalName, usize>,
    /// Unclosed formatting elements, oldest first.
    formatting: Vec<LocalName>,
    /// Start tags left out, by name, whose end tags are left out too.
    dropped: FxHashMap<LocalName, usize>,
    /// Open `<svg>`/`<math>` elements: inside them `<style>`/`<title>` are not raw text.
    foreign: usize,
    flattened: bool,
    /// Inside a raw text element (`<script>`, `<style>`, ...): text is written as is.
    raw_text: bool,
}

struct Open {
    name: LocalName,
    /// Active formatting elements when it opened (cells and captions forget those opened
    /// inside them).
    formatting: usize,
    /// Which searches stop at it ([`SPECIAL`], [`SCOPE_EDGE`], ...), worked out once.
    class: u8,
}

/// An end tag of an ordinary element does not close past it.
const SPECIAL: u8 = 1;
/// The edge of the spec's default scope.
const SCOPE_EDGE: u8 = 2;
/// Also an edge of list item scope.
const LIST_EDGE: u8 = 4;
/// Also an edge of button scope.
const BUTTON_EDGE: u8 = 8;
/// An edge of table scope.
const TABLE_EDGE: u8 = 16;

fn class_of(name: &str) -> u8 {
    let mut class = 0;
    for (bit, member) in [
        (SPECIAL, is_special(name)),
        (
            SCOPE_EDGE,
            matches!(
                name,
                "applet"
                    | "caption"
                    | "html"
                    | "table"
                    | "td"
                    | "th"
                    | "marquee"
                    | "object"
                    | "template"
                    | "svg"
                    | "math"
            ),
        ),
        (LIST_EDGE, matches!(name, "ol" | "ul" | "dl")),
        (BUTTON_EDGE, name == "button"),
        (TABLE_EDGE, matches!(name, "html" | "table" | "template")),
    ] {
        if member {
            class |= bit;
        }
    }
    class
}

impl TokenSink for Flattener {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut m = self.state.borrow_mut();
        match token {
            Token::TagToken(tag) if tag.kind == TagKind::StartTag => return m.start(tag),
            Token::TagToken(tag) => m.end(&tag),
            Token::CharacterTokens(text) => m.text(&text),
            Token::DoctypeToken(d) => m.doctype(&d),
            // Comments carry nothing an article needs; NUL is dropped by the parser too.
            Token::CommentToken(_)
            | Token::NullCharacterToken
            | Token::EOFToken
            | Token::ParseError(_) => {}
        }
        TokenSinkResult::Continue
    }
}

impl Model {
    /// Kept so the page is parsed in the same (quirks or standards) mode.
    fn doctype(&mut self, d: &Doctype) {
        self.out.push_str("<!DOCTYPE");
        if let Some(name) = &d.name {
            self.out.push_str(&format!(" {name}"));
        }
        match (&d.public_id, &d.system_id) {
            (Some(public), Some(system)) => self
                .out
                .push_str(&format!(" PUBLIC \"{public}\" \"{system}\"")),
            (Some(public), None) => self.out.push_str(&format!(" PUBLIC \"{public}\"")),
            (None, Some(system)) => self.out.push_str(&format!(" SYSTEM \"{system}\"")),
            (None, None) => {}
        }
        self.out.push('>');
    }

    fn text(&mut self, text: &str) {
        if self.raw_text {
            self.out.push_str(text);
        } else {
            self.out.push_str(&html_escape::encode_text(text));
        }
    }

    fn start(&mut self, tag: Tag) -> TokenSinkResult<()> {
        let name = tag.name.clone();
        let n: &str = &name;
        if matches!(n, "html" | "head" | "body") || is_void(n) {
            self.write(&tag);
            return TokenSinkResult::Continue;
        }
        if self.foreign == 0 && n == "plaintext" {
            self.write(&tag);
            self.raw_text = true;
            return TokenSinkResult::Plaintext;
        }
        if self.foreign == 0
            && let Some(kind) = raw_text_kind(n)
        {
            // Raw text holds no elements: it never nests deeper.
            self.write(&tag);
            return self.enter_raw_text(kind);
        }
        self.close_implied(n);
        let formatting = is_formatting(n);
        if n == "a"
            && let Some(i) = self.formatting.iter().rposition(|f| &**f == "a")
        {
            // A new link closes the one still open.
            self.formatting.remove(i);
        }
        if self.open.len() >= MAX_DEPTH
            || (formatting && self.formatting.len() >= MAX_OPEN_FORMATTING)
        {
            *self.dropped.entry(name).or_default() += 1;
            self.flattened = true;
            return TokenSinkResult::Continue;
        }
        self.write(&tag);
        if tag.self_closing && self.foreign > 0 {
            return TokenSinkResult::Continue;
        }
        if matches!(n, "svg" | "math") {
            self.foreign += 1;
        }
        self.open.push(Open {
            name: name.clone(),
            formatting: self.formatting.len(),
            class: class_of(n),
        });
        *self.open_count.entry(name.clone()).or_default() += 1;
        if formatting {
            self.formatting.push(name);
        }
        TokenSinkResult::Continue
    }

    fn enter_raw_text(&mut self, kind: RawKind) -> TokenSinkResult<()> {
        // Entities in RCDATA are decoded by the tokenizer, so its text is escaped again.
        self.raw_text = kind != RawKind::Rcdata;
        TokenSinkResult::RawData(kind)
    }

    fn end(&mut self, tag: &Tag) {
        self.raw_text = false;
        let n: &str = &tag.name;
        if let Some(count) = self.dropped.get_mut(&tag.name)
            && *count > 0
        {
            *count -= 1;
            return;
        }
        if is_formatting(n)
            && let Some(i) = self.formatting.iter().rposition(|f| f == &tag.name)
        {
            self.formatting.remove(i);
        }
        if matches!(n, "html" | "head" | "body") {
            self.write(tag);
            return;
        }
        if let Some(i) = self.find_open(n) {
            self.pop_to(i);
        }
        self.write(tag);
    }

    /// Where `name` is open, searching inward-out and stopping at a scope boundary (and,
    /// for an ordinary element, at any special element, as the tree builder does).
    fn find_open(&self, name: &str) -> Option<usize> {
        if self
            .open_count
            .get(&LocalName::from(name))
            .is_none_or(|n| *n == 0)
        {
            return None;
        }
        let mut edges = scope_of(name);
        if !is_special(name) && !is_formatting(name) {
            edges |= SPECIAL;
        }
        for (i, open) in self.open.iter().enumerate().rev() {
            if &*open.name == name {
                return Some(i);
            }
            if open.class & edges != 0 {
                return None;
            }
        }
        None
    }

    /// Closes `open[i]` and everything inside it.
    fn pop_to(&mut self, i: usize) {
        for open in self.open.drain(i..).rev() {
            if let Some(n) = self.open_count.get_mut(&open.name) {
                *n -= 1;
            }
            if matches!(&*open.name, "svg" | "math") {
                self.foreign -= 1;
            }
            if matches!(
                &*open.name,
                "td" | "th" | "caption" | "applet" | "object" | "marquee" | "template"
            ) {
                self.formatting.truncate(open.formatting);
            }
        }
    }

    /// The end tags the tree builder implies before a start tag.
    fn close_implied(&mut self, name: &str) {
        if closes_p(name) || is_heading(name) {
            self.close("p");
        }
        let same_kind: &[&str] = match name {
            "li" => &["li"],
            "dd" | "dt" => &["dd", "dt"],
            "td" | "th" => &["td", "th"],
            "tr" => &["tr"],
            "tbody" | "thead" | "tfoot" => &["tbody", "thead", "tfoot"],
            "option" | "optgroup" => &["option"],
            _ => &[],
        };
        for open in same_kind {
            self.close(open);
        }
        // A heading directly inside another heading closes it.
        if is_heading(name) && self.open.last().is_some_and(|o| is_heading(&o.name)) {
            self.pop_to(self.open.len() - 1);
        }
    }

    /// Closes the innermost open `name` in its scope, if there is one.
    fn close(&mut self, name: &str) {
        if let Some(i) = self.find_open(name) {
            self.pop_to(i);
        }
    }

    fn write(&mut self, tag: &Tag) {
        self.out.push('<');
        if tag.kind == TagKind::EndTag {
            self.out.push('/');
        }
        self.out.push_str(&tag.name);
        for attr in &tag.attrs {
            self.out.push(' ');
            self.out.push_str(&attr.name.local);
            self.out.push_str("=\"");
            self.out
                .push_str(&html_escape::encode_double_quoted_attribute(&attr.value));
            self.out.push('"');
        }
        if tag.self_closing {
            self.out.push_str(" /");
        }
        self.out.push('>');
    }
}

/// How the tokenizer reads the content of an HTML element, if not as markup.
fn raw_text_kind(name: &str) -> Option<RawKind> {
    match name {
        "script" => Some(RawKind::ScriptData),
        "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => Some(RawKind::Rawtext),
        "title" | "textarea" => Some(RawKind::Rcdata),
        _ => None,
    }
}

/// The edges of the scope an open element is looked for in.
fn scope_of(name: &str) -> u8 {
    match name {
        "li" | "dd" | "dt" => SCOPE_EDGE | LIST_EDGE,
        "p" => SCOPE_EDGE | BUTTON_EDGE,
        "td" | "th" | "tr" | "tbody" | "thead" | "tfoot" => TABLE_EDGE,
        _ => SCOPE_EDGE,
    }
}

fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "keygen"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
            | "basefont"
            | "bgsound"
            | "frame"
            | "image"
    )
}

fn is_formatting(name: &str) -> bool {
    matches!(
        name,
        "a" | "b"
            | "big"
            | "code"
            | "em"
            | "font"
            | "i"
            | "nobr"
            | "s"
            | "small"
            | "strike"
            | "strong"
            | "tt"
            | "u"
    )
}

/// Start tags that close an open `<p>`.
fn closes_p(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "center"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "header"
            | "hgroup"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "p"
            | "search"
            | "section"
            | "summary"
            | "ul"
            | "pre"
            | "listing"
            | "form"
            | "plaintext"
            | "table"
            | "xmp"
            | "li"
            | "dd"
            | "dt"
    )
}

/// The spec's "special" elements: an end tag of an ordinary element does not close
/// past them.
fn is_special(name: &str) -> bool {
    closes_p(name)
        || matches!(
            name,
            "applet"
                | "body"
                | "button"
                | "caption"
                | "colgroup"
                | "frameset"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "head"
                | "html"
                | "iframe"
                | "marquee"
                | "noembed"
                | "noframes"
                | "noscript"
                | "object"
                | "script"
                | "select"
                | "style"
                | "tbody"
                | "td"
                | "template"
                | "textarea"
                | "tfoot"
                | "th"
                | "thead"
                | "title"
                | "tr"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(tag: &str, depth: usize) -> String {
        format!(
            "{}deep{}",
            format!("<{tag}>").repeat(depth),
            format!("</{tag}>").repeat(depth)
        )
    }

    fn depth(html: &Html) -> usize {
        html.tree
            .nodes()
            .map(|n| n.ancestors().count())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn pages_within_the_bound_come_back_unchanged() {
        let page = "<!DOCTYPE html><p>một<p>hai<ul><li>a<li>b</ul><table><tr><td>1<td>2\
                    <tr><td>3</table><!-- c --><script>if (a<b) x()</script>";
        assert!(matches!(bound(page), Cow::Borrowed(_)));
        let paragraphs = format!("{}</div>", "<div><p>một đoạn".repeat(MAX_DEPTH / 2));
        assert!(matches!(bound(&paragraphs), Cow::Borrowed(_)));
    }

    #[test]
    fn deep_nesting_is_flattened_and_its_text_kept() {
        let page = nested("div", 10 * MAX_DEPTH);
        let doc = parse_document(&page);
        assert!(depth(&doc) <= MAX_DEPTH + 4, "depth {}", depth(&doc));
        assert!(doc.root_element().text().any(|t| t == "deep"));
    }

    #[test]
    fn ends_of_ordinary_elements_do_not_close_past_blocks() {
        // Regression: `</span>` cannot close a span outside a div; counting it as closed
        // let the real tree grow without bound.
        let page = "<span><div>x</span>".repeat(4 * MAX_DEPTH);
        let doc = parse_document(&page);
        assert!(depth(&doc) <= MAX_DEPTH + 4, "depth {}", depth(&doc));
    }

    #[test]
    fn unclosed_formatting_elements_do_not_multiply() {
        // Distinct attributes, so the parser's limit of three identical ones does not
        // apply.
        let page: String = (0..400)
            .map(|n| format!("<b class=\"{n}\"><i class=\"{n}\"><p>x"))
            .collect();
        let doc = parse_document(&page);
        let nodes = doc.tree.nodes().count();
        assert!(nodes < 20 * 400, "{nodes} nodes");
        let text: String = doc.root_element().text().collect();
        assert_eq!(text, "x".repeat(400));
    }

    #[test]
    fn script_text_and_attributes_survive_a_rewrite() {
        let page = format!(
            "{}<script type=\"application/ld+json\">{{\"a\":\"x&amp;y<b>\"}}</script>\
             <img alt=\"a &quot;b&quot; &amp; c\"><title>&lt;t&gt;</title>",
            "<div>".repeat(MAX_DEPTH + 1)
        );
        let out = bound(&page);
        assert!(out.contains("{\"a\":\"x&amp;y<b>\"}</script>"), "{out}");
        assert!(out.contains("alt=\"a &quot;b&quot; &amp; c\""), "{out}");
        assert!(out.contains("<title>&lt;t&gt;</title>"), "{out}");
    }
}
