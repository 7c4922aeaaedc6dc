//! Hostile sites: pages, feeds and sitemaps written to attack readers through bantin
//! (`tests/fixtures/hostile`), crawled from a real local server into a real store and
//! published; every feed is parsed back. One test per attack.

use std::sync::Arc;

use bantin::config::Config;
use bantin::daemon::Service;
use bantin::model::{CategoryId, Item};
use chrono::{Duration, Utc};
use scraper::{Html, Selector};

use crate::support::feeds::{FeedEnv, article};
use crate::support::{Override, TestConfig, TestSite};

const SITE: &str = "tests/fixtures/hostile";

/// The three published formats of the `all` feed, parsed back, and the stored items.
struct Published {
    rss: rss::Channel,
    atom: atom_syndication::Feed,
    json: serde_json::Value,
    items: Vec<Item>,
    /// The index page over the stored items.
    index: String,
}

impl Published {
    /// Every HTML body the feeds carry, in all three formats.
    fn bodies(&self) -> Vec<String> {
        let rss = self.rss.items.iter().filter_map(|i| i.content.clone());
        let atom = self
            .atom
            .entries
            .iter()
            .filter_map(|e| e.content.as_ref().and_then(|c| c.value.clone()));
        let json = self.json["items"]
            .as_array()
            .expect("JSON Feed items")
            .iter()
            .filter_map(|i| i["content_html"].as_str().map(str::to_owned));
        rss.chain(atom).chain(json).collect()
    }
}

/// A listing page at `/list` linking to `pages`.
fn listing_of(site: &TestSite, pages: &[&str]) -> String {
    let links: String = pages
        .iter()
        .map(|p| format!("<a class=\"story\" href=\"{p}\">{p}</a>"))
        .collect();
    site.set(
        "/list",
        Override::body(format!("<html><body>{links}</body></html>")),
    );
    format!(
        "[[source]]\nid = \"hostile\"\nkind = \"listing\"\nurls = [\"{}\"]\n\
         schedule = \"0 * * * *\"\n[source.links]\nselector = \"a.story\"\n",
        site.url("/list")
    )
}

fn source_of(site: &TestSite, kind: &str, path: &str) -> String {
    format!(
        "[[source]]\nid = \"hostile\"\nkind = \"{kind}\"\nurls = [\"{}\"]\n\
         schedule = \"0 * * * *\"\n",
        site.url(path)
    )
}

/// Crawls the one configured source, publishes, and reads the `all` feeds back.
async fn crawl_and_publish(source: &str) -> Published {
    let test = TestConfig::new().site("hostile", source);
    let config: Arc<Config> = Arc::new(test.load());
    let service = Service::open(&config).expect("store opens");
    let runs = service
        .crawl(&config, config.sources.clone(), |_, _| {})
        .await;
    assert!(runs.iter().all(|(_, r)| r.errors == 0), "{runs:?}");
    service.publish(&config).await.expect("publishes");
    let read = |ext: &str| std::fs::read(config.settings.feeds_dir.join(format!("all.{ext}")));
    let rss =
        rss::Channel::read_from(read("rss").expect("RSS written").as_slice()).expect("RSS parses");
    let atom = atom_syndication::Feed::read_from(read("atom").expect("Atom written").as_slice())
        .expect("Atom parses");
    let json = read("json").expect("JSON written");
    feed_rs::parser::parse(json.as_slice()).expect("JSON Feed parses");
    let items = service
        .store()
        .latest_items(&CategoryId::from("all"), 50)
        .expect("items readable");
    assert!(!items.is_empty(), "the crawl stored something");
    let index = bantin::serve::index::render_index(
        &config,
        &bantin::publish::feeds_for(&config),
        &items,
        &[],
        &std::collections::BTreeMap::new(),
    );
    Published {
        rss,
        atom,
        json: serde_json::from_slice(&json).expect("JSON"),
        items,
        index,
    }
}

/// Elements in `html` read as HTML, as a feed reader does.
fn elements(html: &str) -> Vec<String> {
    let doc = Html::parse_fragment(html);
    let any = Selector::parse("*").expect("literal selector parses");
    doc.select(&any)
        .map(|e| e.value().name().to_owned())
        .filter(|n| n != "html")
        .collect()
}

#[tokio::test]
async fn markup_in_a_lead_reaches_no_feed_as_live_markup() {
    let site = TestSite::serve(SITE).await;
    let page = crawl_and_publish(&listing_of(&site, &["/pages/markup-in-lead.html"])).await;
    let feed = crawl_and_publish(&source_of(&site, "feed", "/feeds/hostile.xml")).await;
    for published in [&page, &feed] {
        for item in &published.rss.items {
            let description = item.description.as_deref().expect("the lead is published");
            // RSS readers render a description as HTML: the lead must stay text there.
            assert_eq!(elements(description), Vec::<String>::new(), "{description}");
        }
        for entry in &published.atom.entries {
            let summary = entry.summary.as_ref().expect("the lead is published");
            assert_eq!(summary.r#type, atom_syndication::TextType::Text);
        }
    }
    let page_lead = page.rss.items[0].description.as_deref().unwrap_or_default();
    assert!(
        page_lead.contains("&lt;"),
        "the markup is kept, as text: {page_lead}"
    );
}

#[tokio::test]
async fn unclosed_formatting_tags_do_not_multiply_a_stored_body() {
    let site = TestSite::serve(SITE).await;
    let sentences = 20_000;
    let body: String = (0..sentences)
        .map(|n| format!("<b><i><p>Câu thứ {n} trong bài viết về công an."))
        .collect();
    let page = format!(
        "<html><head><title>Bài lồng thẻ</title></head><body><article><h1>Bài lồng thẻ</h1>\
         <div class=\"date\">02/05/2024 08:15</div>{body}</article></body></html>"
    );
    site.set("/pages/nested.html", Override::body(page.clone()));
    let published = crawl_and_publish(&listing_of(&site, &["/pages/nested.html"])).await;
    let stored = &published.items[0].article;
    // Regression: every paragraph re-opened all the unclosed tags before it, so the
    // stored body held three `<b>` per paragraph (600 KB of page became 3.8 MB stored).
    let bold = |html: &str| html.matches("<b>").count();
    assert!(
        bold(&stored.body_html) < 2 * bold(&page),
        "{} <b> stored from a page of {}",
        bold(&stored.body_html),
        bold(&page)
    );
    assert_eq!(
        stored
            .body_text
            .matches(" trong bài viết về công an.")
            .count(),
        sentences,
        "no text is lost"
    );
}

#[tokio::test]
async fn deeply_nested_feed_content_is_stored_flattened_with_its_text() {
    let site = TestSite::serve(SITE).await;
    let depth = 20_000;
    let content = format!(
        "<p>Mở đầu.</p>{}<p>Đáy sâu nhất.</p>{}",
        "<blockquote>".repeat(depth),
        "</blockquote>".repeat(depth)
    );
    let feed = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>t</title><link>/</link>\
         <description>d</description><item><title>Tin lồng sâu</title><link>/tin/sau</link>\
         <pubDate>Wed, 01 May 2024 01:30:00 +0700</pubDate><description>{}</description>\
         </item></channel></rss>",
        html_escape::encode_text(&content)
    );
    site.set("/feeds/deep.xml", Override::body(feed));
    let published = crawl_and_publish(&source_of(&site, "feed", "/feeds/deep.xml")).await;
    let body = &published.items[0].article.body_html;
    let quotes = body.matches("<blockquote>").count();
    assert!(
        quotes <= bantin::extract::nesting::MAX_DEPTH,
        "{quotes} nested quotes stored"
    );
    for html in published.bodies() {
        assert!(html.contains("Đáy sâu nhất."), "the deepest text is kept");
    }
}

#[tokio::test]
async fn a_canonical_link_to_another_host_is_not_the_published_link() {
    let site = TestSite::serve(SITE).await;
    let published =
        crawl_and_publish(&listing_of(&site, &["/pages/phishing-canonical.html"])).await;
    let fetched = site.url("/pages/phishing-canonical.html");
    assert_eq!(published.items[0].article.canonical_url, None);
    assert_eq!(
        published.rss.items[0].link.as_deref(),
        Some(fetched.as_str())
    );
    assert_eq!(published.atom.entries[0].links[0].href, fetched.as_str());
    assert_eq!(published.json["items"][0]["url"], fetched.as_str());
    assert!(
        !published.index.contains("phish.example"),
        "{}",
        published.index
    );
    assert!(published.index.contains(fetched.as_str()));
}

#[tokio::test]
async fn future_dates_in_a_feed_are_not_believed() {
    let site = TestSite::serve(SITE).await;
    let published = crawl_and_publish(&source_of(&site, "feed", "/feeds/hostile.xml")).await;
    let latest = Utc::now() + Duration::days(1);
    for item in &published.items {
        assert!(
            item.date() < latest,
            "{} dated {}",
            item.article.url,
            item.date()
        );
    }
}

#[tokio::test]
async fn future_dates_in_a_sitemap_are_not_believed() {
    let site = TestSite::serve(SITE).await;
    let published = crawl_and_publish(&source_of(&site, "sitemap", "/sitemaps/future.xml")).await;
    let item = &published.items[0];
    assert!(item.article.url.path().ends_with("undated.html"));
    assert!(
        item.date() < Utc::now() + Duration::days(1),
        "dated {}",
        item.date()
    );
}

#[tokio::test]
async fn video_players_and_good_image_sources_survive_publishing() {
    let site = TestSite::serve(SITE).await;
    let page = crawl_and_publish(&listing_of(&site, &["/pages/embeds.html"])).await;
    let image = site.url("/anh/hien-truong.jpg");
    for html in page.bodies() {
        assert!(
            html.contains("src=\"https://www.youtube.com/embed/dQw4w9WgXcQ\""),
            "{html}"
        );
        assert!(html.contains(&format!("src=\"{image}\"")), "{html}");
        assert!(!html.contains("ads.example") && !html.contains("javascript:"));
    }
    // A feed entry's player is kept by the same policy.
    let feed = crawl_and_publish(&source_of(&site, "feed", "/feeds/hostile.xml")).await;
    let with_player = feed
        .bodies()
        .into_iter()
        .filter(|h| h.contains("src=\"https://www.youtube.com/embed/abc123\""))
        .count();
    assert_eq!(with_player, 3, "one entry with a player, in three formats");
    assert!(feed.bodies().iter().all(|h| !h.contains("steal()")));
}

#[test]
fn an_image_address_with_an_ampersand_keeps_the_atom_feed_well_formed() {
    // Regression: the image's `media:content url` went out unescaped, so `&` in its
    // query made the Atom feed unreadable.
    let env = FeedEnv::new();
    let mut story = article(1, "Ảnh có tham số", "2024-05-02T08:15:00+07:00");
    story.image = Some(url::Url::parse("https://news.example/anh.jpg?w=640&h=360").unwrap());
    env.add(&story, &["police-activities"]);
    bantin::publish::publish_all(&env.config, env.store.as_ref()).expect("publish");
    let atom = atom_syndication::Feed::read_from(env.feed_text("all.atom").as_bytes())
        .expect("Atom parses");
    let media = &atom.entries[0].extensions["media"]["content"][0];
    assert_eq!(
        media.attrs["url"],
        "https://news.example/anh.jpg?w=640&h=360"
    );
}

/// Property tests: generated hostile pages through extraction, the feed sanitizer,
/// every feed format and the index page.
mod properties {
    use std::collections::BTreeMap;
    use std::path::Path;

    use bantin::config::{ArticleRules, Config};
    use bantin::model::{Article, Item, ItemId, SourceId};
    use bantin::publish::{self, FeedFormat, RenderContext};
    use chrono::Utc;
    use proptest::prelude::*;
    use scraper::Html;
    use url::Url;

    /// Cases per property: enough variety to find a hole, few enough for a debug build
    /// to finish in seconds.
    const CASES: u32 = 64;

    const TAGS: &[&str] = &[
        "div",
        "p",
        "b",
        "i",
        "a",
        "img",
        "iframe",
        "script",
        "style",
        "svg",
        "math",
        "object",
        "embed",
        "form",
        "input",
        "table",
        "td",
        "tr",
        "li",
        "ul",
        "blockquote",
        "title",
        "textarea",
        "noscript",
        "template",
        "span",
        "figure",
        "video",
        "base",
        "meta",
        "link",
        "select",
        "option",
        "plaintext",
        "xmp",
    ];
    const ATTRIBUTES: &[&str] = &[
        "href",
        "src",
        "data-src",
        "srcset",
        "onerror",
        "onclick",
        "onload",
        "style",
        "action",
        "formaction",
        "xlink:href",
        "background",
        "poster",
        "content",
        "rel",
        "http-equiv",
    ];
    const SCHEMES: &[&str] = &[
        "javascript:",
        "JaVaScRiPt:",
        " javascript:",
        "java\tscript:",
        "vbscript:",
        "data:text/html,",
        "data:image/svg+xml,",
        "data:image/png;base64,",
        "http://",
        "https://",
        "mailto:",
        "ftp://",
        "file://",
        "//",
        "/",
        "",
    ];

    fn attribute_value() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => (prop::sample::select(SCHEMES), "[a-z0-9()/.:<>\"'&;= ]{0,30}")
                .prop_map(|(scheme, rest)| format!("{scheme}{rest}")),
            1 => "[\\x00-\\x1f\\x7f-\\u{9f}a-z<>\"']{0,20}",
            1 => (1usize..20_000).prop_map(|n| "x".repeat(n)),
        ]
    }

    /// Tags that carry addresses often, any tag otherwise.
    fn tag() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            3 => prop::sample::select(&["a", "img", "iframe"][..]),
            2 => prop::sample::select(TAGS),
        ]
    }

    fn start_tag() -> impl Strategy<Value = String> {
        (
            tag(),
            prop::collection::vec((prop::sample::select(ATTRIBUTES), attribute_value()), 0..6),
            any::<bool>(),
        )
            .prop_map(|(tag, attributes, self_closing)| {
                let attributes: String = attributes
                    .iter()
                    .map(|(name, value)| format!(" {name}=\"{value}\""))
                    .collect();
                let end = if self_closing { "/>" } else { ">" };
                format!("<{tag}{attributes}{end}")
            })
    }

    /// A piece of a hostile page: a tag (closed or not), text with control characters
    /// and entities, or a long run of nesting.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => start_tag(),
            2 => tag().prop_map(|t| format!("</{t}>")),
            3 => "[a-zA-Zà-ỹ0-9 &;#<>\\x00-\\x1f\\u{7f}-\\u{9f}\\u{fffe}]{0,60}",
            1 => (tag(), 1usize..3_000)
                .prop_map(|(t, n)| format!("<{t}>").repeat(n)),
        ]
    }

    fn page() -> impl Strategy<Value = String> {
        (
            attribute_value(),
            attribute_value(),
            prop::collection::vec(piece(), 0..60),
        )
            .prop_map(|(description, canonical, pieces)| {
                format!(
                    "<html><head><title>Tiêu đề</title>\
                     <meta name=\"description\" content=\"{description}\">\
                     <link rel=\"canonical\" href=\"{canonical}\"></head><body><article>\
                     <h1>Tiêu đề bài viết</h1><div class=\"date\">02/05/2024 08:15</div>\
                     <p>Đoạn mở đầu đủ dài để trang được đọc như một bài báo của lực lượng \
                     Công an nhân dân trong tuần qua.</p>{}</article></body></html>",
                    pieces.concat()
                )
            })
    }

    fn item(n: usize, article: Article) -> Item {
        Item {
            id: ItemId(format!("hostile-{n}")),
            article,
            source: SourceId::from("hostile"),
            categories: Vec::new(),
            first_seen: Utc::now(),
            updated_at: Utc::now(),
            links: Vec::new(),
        }
    }

    /// The page extracted, and the same markup as a feed entry's content (sanitized by
    /// the one policy) with the raw markup as its lead and title.
    fn items_of(html: &str) -> Vec<Item> {
        let url = Url::parse("https://news.test/bai-viet").expect("literal URL parses");
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        let mut items = Vec::new();
        let input = bantin::extract::Input {
            url: &url,
            rules: &ArticleRules::default(),
            zone: tz,
            fetched_at: chrono::Utc::now(),
        };
        if let Ok(article) = bantin::extract::article(html, &input) {
            items.push(item(0, article));
        }
        let feed_entry = Article {
            url: url.join("/tu-nguon-tin").expect("literal path joins"),
            canonical_url: None,
            title: html.chars().take(200).collect(),
            published: None,
            updated: None,
            authors: vec![html.chars().take(50).collect()],
            lead: Some(html.to_owned()),
            body_html: bantin::extract::sanitize::article_html(html, &url),
            body_text: String::new(),
            image: None,
            tags: Vec::new(),
            section: None,
            language: None,
            provenance: BTreeMap::new(),
        };
        items.push(item(1, feed_entry));
        items
    }

    /// What makes HTML active, as a reader renders it: script elements, event handler
    /// attributes, script and data addresses (data only in an image's `src`).
    fn active_content(html: &str) -> Option<String> {
        let doc = Html::parse_document(html);
        for node in doc.tree.nodes() {
            let Some(el) = node.value().as_element() else {
                continue;
            };
            if matches!(el.name(), "script" | "object" | "embed" | "base") {
                return Some(format!("<{}>", el.name()));
            }
            for (name, value) in el.attrs() {
                let squeezed: String = value
                    .chars()
                    .filter(|c| !c.is_whitespace() && !c.is_control())
                    .collect::<String>()
                    .to_ascii_lowercase();
                let data_image = el.name() == "img" && name == "src";
                if name.starts_with("on")
                    || squeezed.starts_with("javascript:")
                    || squeezed.starts_with("vbscript:")
                    || (squeezed.starts_with("data:") && !data_image)
                {
                    return Some(format!("<{} {name}=\"{value}\">", el.name()));
                }
            }
        }
        None
    }

    /// Every HTML text a feed carries (RSS description and content, Atom html content,
    /// JSON Feed content_html), each parsed back from the published bytes.
    fn published_html(items: &[Item]) -> Vec<String> {
        let config = Config::load(Path::new("tests/fixtures/publish/config/bantin.toml"))
            .expect("the test configuration is valid");
        let meta = &publish::feeds_for(&config)[0];
        let ctx = RenderContext::new(&config);
        let text = |format| {
            let text = publish::render(format, meta, items, &ctx);
            if format != FeedFormat::Json {
                assert_well_formed(&text);
            }
            text
        };
        let rss = rss::Channel::read_from(text(FeedFormat::Rss).as_bytes()).expect("RSS parses");
        let atom = atom_syndication::Feed::read_from(text(FeedFormat::Atom).as_bytes())
            .expect("Atom parses");
        let json: serde_json::Value =
            serde_json::from_str(&text(FeedFormat::Json)).expect("JSON Feed parses");
        let mut html: Vec<String> = rss
            .items
            .iter()
            .flat_map(|i| [i.description.clone(), i.content.clone()])
            .flatten()
            .collect();
        for entry in &atom.entries {
            assert!(
                entry
                    .summary
                    .as_ref()
                    .is_none_or(|s| s.r#type == atom_syndication::TextType::Text)
            );
            html.extend(entry.content.as_ref().and_then(|c| c.value.clone()));
        }
        for entry in json["items"].as_array().expect("JSON Feed items") {
            html.extend(entry["content_html"].as_str().map(str::to_owned));
        }
        html.push(bantin::serve::index::render_index(
            &config,
            &publish::feeds_for(&config),
            items,
            &[],
            &BTreeMap::new(),
        ));
        html
    }

    /// Reads every event of an XML document and every attribute value in it: any syntax
    /// error or bad escape fails.
    fn assert_well_formed(xml: &str) {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(xml);
        reader.config_mut().check_end_names = true;
        loop {
            match reader.read_event() {
                Ok(Event::Eof) => return,
                Ok(Event::Start(tag) | Event::Empty(tag)) => {
                    for attribute in tag.attributes() {
                        let attribute = attribute.expect("attribute well-formed");
                        attribute
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .unwrap_or_else(|e| panic!("attribute value: {e}"));
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("not well-formed XML at {}: {e}", reader.buffer_position()),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

        #[test]
        fn hostile_pages_publish_well_formed_feeds_without_active_content(html in page()) {
            let items = items_of(&html);
            for published in published_html(&items) {
                prop_assert_eq!(active_content(&published), None, "in {}", published);
            }
        }
    }
}
