//! The one sanitizing policy for article HTML, whatever it came from (a page's body
//! after cleaning, a feed entry's content): an `ammonia` allow-list of text structure,
//! links (`http`, `https`, `mailto`), images and the `<iframe>` players of video hosts.
//! Applied once, before an article is stored; publishing renders what the store holds.
//! The markup is bounded in nesting (`nesting`) before ammonia parses it.

use url::Url;

use super::nesting;

/// Hosts whose `<iframe>` players are kept in the body.
pub const VIDEO_HOSTS: &[&str] = &[
    "youtube.com",
    "youtube-nocookie.com",
    "youtu.be",
    "player.vimeo.com",
    "vimeo.com",
    "dailymotion.com",
    "geo.dailymotion.com",
];

/// Tags kept as they are (besides `img`, and `iframe` of video players).
pub const KEEP_TAGS: &[&str] = &[
    "p",
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
    "a",
    "strong",
    "b",
    "em",
    "i",
    "u",
    "s",
    "sub",
    "sup",
    "code",
    "br",
    "small",
    "mark",
    "q",
    "cite",
    "abbr",
];
/// `html` with everything outside the policy removed; relative addresses resolved
/// against `base`.
pub fn article_html(html: &str, base: &Url) -> String {
    policy(base).clean(&nesting::bound(html)).to_string()
}

/// The policy. `ammonia::Builder` cannot be cloned and the base differs per article, so
/// it is built for each call (a few small sets: nothing next to parsing the HTML).
fn policy(base: &Url) -> ammonia::Builder<'static> {
    let mut b = ammonia::Builder::empty();
    b.add_tags(KEEP_TAGS)
        .add_tags(["img", "iframe"])
        .add_tag_attributes("a", ["href", "title"])
        .add_tag_attributes("img", ["src", "alt", "title", "width", "height"])
        .add_tag_attributes("iframe", ["src", "width", "height", "allowfullscreen"])
        .add_tag_attributes("td", ["colspan", "rowspan"])
        .add_tag_attributes("th", ["colspan", "rowspan"])
        .add_tag_attributes("ol", ["start"])
        .add_url_schemes(["http", "https", "mailto"])
        .url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone()))
        .link_rel(Some("noopener noreferrer"))
        .attribute_filter(|element, attribute, value| {
            if element == "iframe" && attribute == "src" && !is_video_src(value) {
                None
            } else {
                Some(value.into())
            }
        });
    b
}

/// Whether an iframe address is a player of an allowed video host.
pub fn is_video_src(src: &str) -> bool {
    Url::parse(src).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some_and(|h| {
                VIDEO_HOSTS
                    .iter()
                    .any(|v| h == *v || h.strip_suffix(v).is_some_and(|r| r.ends_with('.')))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(html: &str) -> String {
        article_html(html, &Url::parse("https://news.test/a/b").unwrap())
    }

    #[test]
    fn video_players_survive_and_other_frames_do_not() {
        let out = clean(
            "<iframe src=\"https://www.youtube.com/embed/x1\" allowfullscreen></iframe>\
             <iframe src=\"https://evil.test/x\"></iframe>",
        );
        assert!(
            out.contains("src=\"https://www.youtube.com/embed/x1\""),
            "{out}"
        );
        assert!(!out.contains("evil.test"), "{out}");
    }

    #[test]
    fn active_content_is_removed_and_relative_links_resolved() {
        let out = clean(
            "<p onclick=\"x()\">a<script>alert(1)</script><a href=\"javascript:x()\">b</a>\
             <a href=\"/c\">c</a><img src=\"data:image/png;base64,AAAA\"></p>",
        );
        assert_eq!(
            out,
            "<p>a<a rel=\"noopener noreferrer\">b</a>\
             <a href=\"https://news.test/c\" rel=\"noopener noreferrer\">c</a><img></p>"
        );
    }
}
