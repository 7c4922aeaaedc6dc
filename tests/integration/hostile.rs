//! Hostile sites: pages, feeds and sitemaps written to attack readers through bantin
//! (`tests/fixtures/hostile`), crawled from a real local server into a real store and
//! published; every feed is parsed back. One test per attack.

use std::sync::Arc;

use bantin::config::Config;
use bantin::daemon::Service;
use bantin::model::{CategoryId, Item};
use chrono::{Duration, Utc};
use scraper::{Html, Selector};

use crate::support::{Override, TestConfig, TestSite};

const SITE: &str = "tests/fixtures/hostile";

/// The three published formats of the `all` feed, parsed back, and the stored items.
struct Published {
    rss: rss::Channel,
    atom: atom_syndication::Feed,
    json: serde_json::Value,
    items: Vec<Item>,
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
    site.set("/list", Override::body(format!("<html><body>{links}</body></html>")));
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
    let rss = rss::Channel::read_from(read("rss").expect("RSS written").as_slice())
        .expect("RSS parses");
    let atom = atom_syndication::Feed::read_from(read("atom").expect("Atom written").as_slice())
        .expect("Atom parses");
    let json = read("json").expect("JSON written");
    feed_rs::parser::parse(json.as_slice()).expect("JSON Feed parses");
    let items = service
        .store()
        .latest_items(&CategoryId::from("all"), 50)
        .expect("items readable");
    assert!(!items.is_empty(), "the crawl stored something");
    Published {
        rss,
        atom,
        json: serde_json::from_slice(&json).expect("JSON"),
        items,
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
    assert!(page_lead.contains("&lt;"), "the markup is kept, as text: {page_lead}");
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
        stored.body_text.matches(" trong bài viết về công an.").count(),
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
}

#[tokio::test]
async fn future_dates_in_a_feed_are_not_believed() {
    let site = TestSite::serve(SITE).await;
    let published = crawl_and_publish(&source_of(&site, "feed", "/feeds/hostile.xml")).await;
    let latest = Utc::now() + Duration::days(1);
    for item in &published.items {
        assert!(item.date() < latest, "{} dated {}", item.article.url, item.date());
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
