//! A bound on how deeply HTML elements nest, applied while a page is parsed. The HTML
//! tree builder checks "is there a `<p>` in scope" by walking its stack of open elements
//! at every tag, and re-opens every unclosed `<b>`/`<i>` at every new block, so a page of
//! thousands of nested `<div>`s costs quadratic time and one of unclosed `<b><i><p>`
//! quadratic memory. Here a filter sits between html5ever's tokenizer and its tree
//! builder: it follows the nesting the tree builder builds with its main rules (implied
//! ends of `p`, `li`, `td`, ..., scopes, unclosed formatting elements) and leaves out the
//! tags past [`MAX_DEPTH`] (or past [`MAX_OPEN_FORMATTING`] unclosed formatting
//! elements), keeping their text: deep content is flattened, not lost. [`bound`] applies
//! the same filter to markup another parser will read (the sanitizer's). The same filter
//! lets a caller rewrite start tags on their way ([`parse_document_rewriting`]). Not here:
//! what is done with the parsed page.

use std::borrow::Cow;
use std::cell::RefCell;

use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Doctype, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use html5ever::tree_builder::{TreeBuilder, TreeBuilderOpts, TreeSink, create_element};
use html5ever::{LocalName, QualName, TokenizerResult, local_name, ns};
use rustc_hash::FxHashMap;
use scraper::{Html, HtmlTreeSink};

/// Elements open at once; deeper start tags are left out. Browsers flatten past 512
/// (Blink); real article pages stay well under 100.
pub const MAX_DEPTH: usize = 256;
/// Unclosed formatting elements (`<b>`, `<i>`, `<font>`, ...) at once. The tree builder
/// re-opens each of them in every following block, so this bounds how much larger the
/// parsed tree can be than the page.
pub const MAX_OPEN_FORMATTING: usize = 6;

/// Parses a whole page with the nesting bound, as `Html::parse_document` would.
pub fn parse_document(html: &str) -> Html {
    parse_document_rewriting(html, &|_| {})
}

/// Parses a whole page as [`parse_document`] does, with `rewrite` applied to every start
/// tag before the tree builder sees it.
pub fn parse_document_rewriting(html: &str, rewrite: &dyn Fn(&mut Tag)) -> Html {
    let builder = TreeBuilder::new(
        HtmlTreeSink::new(Html::new_document()),
        TreeBuilderOpts::default(),
    );
    parse_with(builder, TokenizerOpts::default(), html, rewrite)
}

/// Parses an HTML fragment (a feed entry's content) with the nesting bound, as
/// `Html::parse_fragment` would (in a `<body>`).
pub fn parse_fragment(html: &str) -> Html {
    let sink = HtmlTreeSink::new(Html::new_fragment());
    let body = QualName::new(None, ns!(html), local_name!("body"));
    let context = create_element(&sink, body, Vec::new());
    let builder = TreeBuilder::new_for_fragment(sink, context, None, TreeBuilderOpts::default());
    let opts = TokenizerOpts {
        initial_state: Some(builder.tokenizer_state_for_context_elem(false)),
        ..TokenizerOpts::default()
    };
    parse_with(builder, opts, html, &|_| {})
}

type Builder = TreeBuilder<ego_tree::NodeId, HtmlTreeSink>;

fn parse_with(
    builder: Builder,
    opts: TokenizerOpts,
    html: &str,
    rewrite: &dyn Fn(&mut Tag),
) -> Html {
    let tokenizer = Tokenizer::new(Bounded::new(builder, rewrite), opts);
    run(&tokenizer, html);
    tokenizer.sink.next.sink.finish()
}

fn run<S: TokenSink>(tokenizer: &Tokenizer<S>, html: &str) {
    let input = BufferQueue::default();
    input.push_back(html.into());
    // The tree builder pauses the tokenizer after each `</script>` (for a browser to run
    // it) and at a `<meta charset>` (the text is already decoded): feeding goes on.
    while !matches!(tokenizer.feed(&input), TokenizerResult::Done) {}
    tokenizer.end();
}

/// `html` with tags past the bounds left out; the same text when nothing was. For
/// markup read by a parser of its own (ammonia's).
pub fn bound(html: &str) -> Cow<'_, str> {
    // Fewer tags than the bound cannot nest past it.
    if html.bytes().filter(|b| *b == b'<').count() <= MAX_OPEN_FORMATTING {
        return Cow::Borrowed(html);
    }
    let tokenizer = Tokenizer::new(
        Bounded::new(Serializer::default(), &|_| {}),
        TokenizerOpts::default(),
    );
    run(&tokenizer, html);
    let Bounded { nesting, next, .. } = tokenizer.sink;
    if nesting.into_inner().flattened {
        Cow::Owned(next.out.into_inner())
    } else {
        Cow::Borrowed(html)
    }
}

/// Passes tokens on to `next`, leaving out the tags past the bounds and rewriting start
/// tags with `rewrite`.
struct Bounded<'r, S> {
    nesting: RefCell<Nesting>,
    next: S,
    rewrite: &'r dyn Fn(&mut Tag),
}

impl<'r, S> Bounded<'r, S> {
    fn new(next: S, rewrite: &'r dyn Fn(&mut Tag)) -> Self {
        Bounded {
            nesting: RefCell::default(),
            next,
            rewrite,
        }
    }
}

impl<S: TokenSink> TokenSink for Bounded<'_, S> {
    type Handle = S::Handle;

    fn process_token(&self, mut token: Token, line: u64) -> TokenSinkResult<S::Handle> {
        if let Token::TagToken(tag) = &mut token {
            if tag.kind == TagKind::StartTag {
                (self.rewrite)(tag);
            }
            let mut nesting = self.nesting.borrow_mut();
            let admitted = match tag.kind {
                TagKind::StartTag => nesting.start(tag),
                TagKind::EndTag => nesting.end(tag),
            };
            if !admitted {
                return TokenSinkResult::Continue;
            }
        }
        self.next.process_token(token, line)
    }

    fn end(&self) {
        self.next.end();
    }

    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        self.next
            .adjusted_current_node_present_but_not_in_html_namespace()
    }
}

/// Writes tokens back out as HTML.
#[derive(Default)]
struct Serializer {
    out: RefCell<String>,
    /// Inside a raw text element (`<script>`, `<style>`, ...): text is written as is.
    raw_text: std::cell::Cell<bool>,
}

impl TokenSink for Serializer {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut out = self.out.borrow_mut();
        match token {
            Token::TagToken(tag) => {
                write_tag(&mut out, &tag);
                self.raw_text.set(false);
                if tag.kind == TagKind::StartTag {
                    return self.enter(&tag.name);
                }
            }
            Token::CharacterTokens(text) if self.raw_text.get() => out.push_str(&text),
            Token::CharacterTokens(text) => out.push_str(&html_escape::encode_text(&text)),
            Token::DoctypeToken(d) => write_doctype(&mut out, &d),
            // Comments carry nothing an article needs; NUL is dropped by the parser too.
            Token::CommentToken(_)
            | Token::NullCharacterToken
            | Token::EOFToken
            | Token::ParseError(_) => {}
        }
        TokenSinkResult::Continue
    }
}

impl Serializer {
    /// Switches the tokenizer to raw text where the tree builder would.
    fn enter(&self, name: &str) -> TokenSinkResult<()> {
        if name == "plaintext" {
            self.raw_text.set(true);
            return TokenSinkResult::Plaintext;
        }
        match raw_text_kind(name) {
            Some(kind) => {
                // Entities in RCDATA are decoded by the tokenizer, so it is escaped again.
                self.raw_text.set(kind != RawKind::Rcdata);
                TokenSinkResult::RawData(kind)
            }
            None => TokenSinkResult::Continue,
        }
    }
}

/// Kept so the page is parsed in the same (quirks or standards) mode.
fn write_doctype(out: &mut String, d: &Doctype) {
    out.push_str("<!DOCTYPE");
    if let Some(name) = &d.name {
        out.push_str(&format!(" {name}"));
    }
    match (&d.public_id, &d.system_id) {
        (Some(public), Some(system)) => out.push_str(&format!(" PUBLIC \"{public}\" \"{system}\"")),
        (Some(public), None) => out.push_str(&format!(" PUBLIC \"{public}\"")),
        (None, Some(system)) => out.push_str(&format!(" SYSTEM \"{system}\"")),
        (None, None) => {}
    }
    out.push('>');
}

fn write_tag(out: &mut String, tag: &Tag) {
    out.push('<');
    if tag.kind == TagKind::EndTag {
        out.push('/');
    }
    out.push_str(&tag.name);
    for attr in &tag.attrs {
        out.push(' ');
        out.push_str(&attr.name.local);
        out.push_str("=\"");
        out.push_str(&html_escape::encode_double_quoted_attribute(&attr.value));
        out.push('"');
    }
    if tag.self_closing {
        out.push_str(" /");
    }
    out.push('>');
}

/// The nesting the tree builder builds, as far as bounding it needs.
#[derive(Default)]
struct Nesting {
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

impl Nesting {
    /// Follows a start tag; whether it is kept.
    fn start(&mut self, tag: &Tag) -> bool {
        let name = &tag.name;
        let n: &str = name;
        // Void elements hold nothing, raw text holds no elements: neither nests deeper.
        if matches!(n, "html" | "head" | "body")
            || is_void(n)
            || (self.foreign == 0 && (n == "plaintext" || raw_text_kind(n).is_some()))
        {
            return true;
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
            *self.dropped.entry(name.clone()).or_default() += 1;
            self.flattened = true;
            return false;
        }
        if tag.self_closing && self.foreign > 0 {
            return true;
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
            self.formatting.push(name.clone());
        }
        true
    }

    /// Follows an end tag; whether it is kept (not when its start tag was left out).
    fn end(&mut self, tag: &Tag) -> bool {
        let n: &str = &tag.name;
        if let Some(count) = self.dropped.get_mut(&tag.name)
            && *count > 0
        {
            *count -= 1;
            return false;
        }
        if is_formatting(n)
            && let Some(i) = self.formatting.iter().rposition(|f| f == &tag.name)
        {
            self.formatting.remove(i);
        }
        if !matches!(n, "html" | "head" | "body")
            && let Some(i) = self.find_open(n)
        {
            self.pop_to(i);
        }
        true
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
    fn parsing_within_the_bound_builds_the_same_tree_as_scraper() {
        let page = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>a &amp; b</title>\
                    <script>x<y</script>\
                    </head><body><p>một<p>hai<table><tr><td>1<td>2</table><svg><title>t\
                    </title><circle/></svg><b><i>đậm</b>nghiêng</i><ul><li>a<li>b</ul></body>";
        assert_eq!(
            parse_document(page).html(),
            Html::parse_document(page).html()
        );
        let fragment = "<p>một<b>hai</p><td>ô</td><script>s()</script>ba";
        assert_eq!(
            parse_fragment(fragment).html(),
            Html::parse_fragment(fragment).html()
        );
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
