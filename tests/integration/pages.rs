//! Pages for people over real TCP on 127.0.0.1: a browser's `Accept` at a feed address
//! gets a readable page, a feed reader gets the feed as before; a merged story's other
//! addresses appear on the pages and in every feed format; the index tells the truth
//! about sources and items.

use bantin::model::SourceId;
use bantin::store::Store;
use reqwest::header;
use scraper::{Html, Selector};
use url::Url;

use crate::support::feeds::{FeedEnv, article, validate_rss};
use crate::support::server::TestServer;

/// What Chromium and Firefox send for a page.
pub const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";
pub const PARTY_TITLE: &str = "Đảng ủy Công an tỉnh tổng kết công tác Đảng";
pub const POLICE_TITLE: &str = "Bắt giữ nhóm đối tượng trộm cắp xe máy";
/// Where the party-work story was seen again, under another source; `&` must stay
/// escaped wherever it is written.
pub const COPY_URL: &str = "https://other.example/thoi-su/cong-tac-dang.html?id=7&from=rss";

/// Two items, the first also found at [`COPY_URL`] by source `other`.
pub async fn server() -> TestServer {
    let env = FeedEnv::new();
    let party = article(1, PARTY_TITLE, "2020-07-17T21:54:00+07:00");
    env.add(&party, &["party-work"]);
    let mut copy = party.clone();
    copy.url = Url::parse(COPY_URL).unwrap();
    env.store
        .record(&copy, &SourceId::from("other"), &[], None)
        .expect("copy recorded");
    env.add(
        &article(2, POLICE_TITLE, "2020-07-16T08:05:00+07:00"),
        &["police-activities"],
    );
    TestServer::start(env).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_gzip().build().unwrap()
}

async fn get(server: &TestServer, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut request = client().get(server.url(path));
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    request.send().await.expect("server answers")
}

async fn page(server: &TestServer, path: &str) -> Html {
    let response = get(server, path, Some(BROWSER_ACCEPT)).await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    Html::parse_document(&response.text().await.unwrap())
}

/// Whether `Vary` names `Accept` (not only `Accept-Encoding`).
fn varies_on_accept(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|name| name.trim().eq_ignore_ascii_case("accept"))
}

fn texts(html: &Html, css: &str) -> Vec<String> {
    let selector = Selector::parse(css).unwrap();
    html.select(&selector)
        .map(|e| e.text().collect::<String>().trim().to_owned())
        .collect()
}

fn hrefs(html: &Html, css: &str) -> Vec<String> {
    let selector = Selector::parse(css).unwrap();
    html.select(&selector)
        .filter_map(|e| e.value().attr("href").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn feed_readers_get_the_published_bytes_and_validators_unchanged() {
    let server = server().await;
    let readers = [
        None,
        Some("*/*"),
        Some(
            "application/rss+xml, application/rdf+xml;q=0.8, application/atom+xml;q=0.6, application/xml;q=0.4, text/xml;q=0.4",
        ),
        Some("application/atom+xml, text/html;q=0.5"),
        Some("application/feed+json, application/json"),
    ];
    for file in ["all.rss", "party-work.atom", "police-activities.json"] {
        let published = std::fs::read(server.env.config.settings.feeds_dir.join(file)).unwrap();
        let mut etags = Vec::new();
        for accept in readers {
            let response = get(&server, &format!("/feeds/{file}"), accept).await;
            assert_eq!(response.status(), 200, "{file} {accept:?}");
            assert!(varies_on_accept(&response), "{file} {accept:?}");
            let etag = response.headers()[header::ETAG].clone();
            let body = response.bytes().await.unwrap();
            assert_eq!(body.as_ref(), published.as_slice(), "{file} {accept:?}");
            let again = client()
                .get(server.url(&format!("/feeds/{file}")))
                .header(header::IF_NONE_MATCH, etag.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), 304, "{file} {accept:?}");
            etags.push(etag);
        }
        assert!(etags.windows(2).all(|w| w[0] == w[1]), "{file}: {etags:?}");
    }
}

#[tokio::test]
async fn a_browser_at_a_feed_address_gets_a_page_with_its_items_and_subscribe_links() {
    let server = server().await;
    let response = get(&server, "/feeds/party-work.rss", Some(BROWSER_ACCEPT)).await;
    assert!(varies_on_accept(&response));
    let html = page(&server, "/feeds/party-work.rss").await;
    let meta = &server.env.config.categories[0];
    assert_eq!(
        texts(&html, "h1")[0],
        format!("{} — {}", meta.title, server.env.config.settings.title)
    );
    assert!(texts(&html, "body > p").contains(&meta.description));
    let items = texts(&html, "li.item > a:first-child");
    assert_eq!(items, vec![PARTY_TITLE.to_owned()]);
    assert_eq!(
        hrefs(&html, "li.item > a:first-child"),
        vec!["https://news.example/tin-tuc/bai-1-i100/".to_owned()]
    );
    let item_text = texts(&html, "li.item").join(" ");
    for expected in [
        "17/07/2020 21:54",
        "Phóng viên 1",
        "Công tác Đảng",
        "(CAO) Tóm tắt bài số 1.",
    ] {
        assert!(item_text.contains(expected), "{expected} in {item_text}");
    }
    let subscribe: Vec<String> = ["rss", "atom", "json"]
        .iter()
        .map(|ext| server.url(&format!("/feeds/party-work.{ext}")))
        .collect();
    assert_eq!(hrefs(&html, "ul.subscribe a"), subscribe);
    assert_eq!(texts(&html, "ul.subscribe code"), subscribe);
    let search = Selector::parse("form input[type=search][name=q]").unwrap();
    assert_eq!(html.select(&search).count(), 1);
}

#[tokio::test]
async fn the_search_box_on_a_feed_page_finds_items_by_word() {
    let server = server().await;
    let html = page(&server, "/feeds/all.atom?q=tr%E1%BB%99m").await;
    assert_eq!(
        texts(&html, "li.item > a:first-child"),
        vec![POLICE_TITLE.to_owned()]
    );
    let search = Selector::parse("input[name=q]").unwrap();
    let shown = html.select(&search).next().unwrap().value().attr("value");
    assert_eq!(shown, Some("trộm"));
    let none = page(&server, "/feeds/all.atom?q=kh%C3%B4ngc%C3%B3").await;
    assert!(texts(&none, "li.item").is_empty());
    assert_eq!(
        texts(&none, "body > p").last().unwrap(),
        "No item holds all these words."
    );
    let all = page(&server, "/feeds/all.atom").await;
    assert_eq!(texts(&all, "li.item > a:first-child").len(), 2);
}

#[tokio::test]
async fn nothing_a_site_wrote_becomes_markup_on_a_feed_page() {
    let env = FeedEnv::new();
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let mut story = article(1, hostile, "2020-07-17T21:54:00+07:00");
    story.lead = Some(format!("\"><b>{hostile}"));
    story.authors = vec![hostile.to_owned()];
    env.add(&story, &["party-work"]);
    let server = TestServer::start(env).await;
    let html = page(&server, "/feeds/all.rss?q=%22%3E%3Cscript%3E%20alert").await;
    let active = Selector::parse("script, img, b, [onerror]").unwrap();
    assert_eq!(html.select(&active).count(), 0, "{}", html.html());
    assert_eq!(
        texts(&html, "li.item > a:first-child"),
        vec![hostile.to_owned()]
    );
    let search = Selector::parse("input[name=q]").unwrap();
    let shown = html.select(&search).next().unwrap().value().attr("value");
    assert_eq!(shown, Some("\"><script> alert"));
}

#[tokio::test]
async fn a_merged_story_shows_its_other_address_in_every_feed_and_page() {
    let server = server().await;
    let feeds = &server.env.config.settings.feeds_dir;
    let atom = atom_syndication::Feed::read_from(
        std::fs::read(feeds.join("party-work.atom"))
            .unwrap()
            .as_slice(),
    )
    .expect("Atom parses");
    let related: Vec<&str> = atom.entries[0]
        .links
        .iter()
        .filter(|l| l.rel == "related")
        .map(|l| l.href.as_str())
        .collect();
    assert_eq!(related, vec![COPY_URL]);

    let rss_text = server.env.feed_text("party-work.rss");
    let channel = rss::Channel::read_from(rss_text.as_bytes()).expect("RSS parses");
    validate_rss(&channel);
    let content = Html::parse_fragment(channel.items[0].content().unwrap());
    assert_eq!(hrefs(&content, "ul a"), vec![COPY_URL.to_owned()]);
    assert!(content.html().contains("Also at:"));

    let json: serde_json::Value =
        serde_json::from_str(&server.env.feed_text("party-work.json")).unwrap();
    let item = &json["items"][0];
    let content = Html::parse_fragment(item["content_html"].as_str().unwrap());
    assert_eq!(hrefs(&content, "ul a"), vec![COPY_URL.to_owned()]);
    assert!(
        item["content_text"]
            .as_str()
            .unwrap()
            .ends_with(&format!("Also at:\n- {COPY_URL}"))
    );

    for path in ["/feeds/party-work.rss", "/"] {
        let html = page(&server, path).await;
        assert_eq!(
            hrefs(&html, "li.item .also-at a"),
            vec![COPY_URL.to_owned()],
            "{path}"
        );
    }
    // The item without another address lists none.
    let police = server.env.feed_text("police-activities.json");
    assert!(!police.contains("Also at"), "{police}");
}

#[tokio::test]
async fn the_index_shows_categories_per_item_and_a_source_not_run_yet() {
    let server = server().await;
    let html = page(&server, "/").await;
    let items = texts(&html, "li.item");
    assert!(
        items[0].starts_with(PARTY_TITLE) && items[0].contains("Công tác Đảng"),
        "{items:?}"
    );
    assert!(
        items[1].contains("Hoạt động của lực lượng Công an"),
        "{items:?}"
    );
    assert!(!items.iter().any(|i| i.contains("· news")), "{items:?}");
    assert_eq!(texts(&html, "td.health"), vec!["not run yet".to_owned()]);
    let health = get(&server, "/healthz", None).await.text().await.unwrap();
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["sources"][0]["standing"], "not_run", "{health}");
    let feed_links = hrefs(&html, "section.feed h3 a");
    assert_eq!(feed_links[0], server.url("/feeds/all.rss"));
}
