//! Publishing: every feed file parsed back with `rss` (and its validation),
//! `atom_syndication` and `feed-rs`, stable ids across updates, writes only on change,
//! and WebSub notifications to a hub on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use bantin::publish::{self, websub};
use chrono::{DateTime, FixedOffset};
use url::Url;

use crate::support::feeds::validate_rss;
use crate::support::feeds::{FeedEnv, article};

const VIETNAMESE_TITLE: &str =
    "Đảng ủy Công an Trung ương học tập, quán triệt Nghị quyết — “đổi mới” & <chỉnh đốn>";

/// Two items: a Vietnamese one with an image and tags, and an older plain one.
fn env_with_items() -> FeedEnv {
    let env = FeedEnv::new();
    let mut first = article(1, VIETNAMESE_TITLE, "2020-07-17T21:54:00+07:00");
    first.image = Some(Url::parse("https://news.example/anh/chi-bo.png").unwrap());
    first.tags = vec!["Xây dựng Đảng".into()];
    first.authors = vec!["Nguyễn Văn Hùng".into(), "Trần Thị Mỹ Dung".into()];
    first.body_html =
        "<p>Đồng chí Bí thư phát biểu.</p><figure><img src=\"https://news.example/anh/chi-bo.png\"><figcaption>Quang cảnh hội nghị</figcaption></figure>".into();
    env.add(&first, &["party-work"]);
    let second = article(2, "Bắt giữ đối tượng trộm cắp", "2020-07-16T08:05:00+07:00");
    env.add(&second, &["police-activities"]);
    publish::publish_all(&env.config, env.store.as_ref()).expect("publish");
    env
}

fn at(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap()
}

#[test]
fn rss_feed_parses_validates_and_carries_every_field() {
    let env = env_with_items();
    let text = env.feed_text("all.rss");
    let channel = rss::Channel::read_from(text.as_bytes()).expect("RSS parses");
    validate_rss(&channel);
    assert_eq!(channel.title, "Báo Công an nhân dân — bantin");
    assert_eq!(channel.link, "http://127.0.0.1:8080/");
    assert_eq!(channel.language.as_deref(), Some("vi"));
    assert_eq!(channel.ttl.as_deref(), Some("20"));
    assert!(channel.generator.as_deref().unwrap().starts_with("bantin "));
    assert!(channel.last_build_date.is_some());
    let links = channel.atom_ext.as_ref().expect("atom:link").links.clone();
    assert_eq!(links[0].rel, "self");
    assert_eq!(links[0].href, "http://127.0.0.1:8080/feeds/all.rss");
    assert!(text.contains("<?xml-stylesheet type=\"text/xsl\" href=\"feed.xsl\"?>"));

    assert_eq!(channel.items.len(), 2);
    let item = &channel.items[0];
    assert_eq!(item.title.as_deref(), Some(VIETNAMESE_TITLE));
    assert_eq!(
        item.link.as_deref(),
        Some("https://news.example/tin-tuc/bai-1-i100/")
    );
    let guid = item.guid.as_ref().unwrap();
    assert!(guid.value.starts_with("tag:127.0.0.1,"), "{}", guid.value);
    assert!(!guid.permalink);
    assert_eq!(
        item.pub_date.as_deref(),
        Some("Fri, 17 Jul 2020 21:54:00 +0700")
    );
    assert_eq!(item.description.as_deref(), Some("(CAO) Tóm tắt bài số 1."));
    assert!(
        item.content
            .as_deref()
            .unwrap()
            .contains("<figcaption>Quang cảnh hội nghị</figcaption>")
    );
    let creators = &item.dublin_core_ext.as_ref().unwrap().creators;
    assert_eq!(creators, &["Nguyễn Văn Hùng", "Trần Thị Mỹ Dung"]);
    assert!(
        item.author.is_none(),
        "RSS <author> must be an e-mail address"
    );
    let categories: Vec<&str> = item.categories.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(categories, ["Công tác Đảng", "Xây dựng Đảng"]);
    let enclosure = item.enclosure.as_ref().unwrap();
    assert_eq!(enclosure.url, "https://news.example/anh/chi-bo.png");
    assert_eq!(enclosure.mime_type, "image/png");
    let media = &item.extensions["media"]["content"][0];
    assert_eq!(media.attrs["url"], "https://news.example/anh/chi-bo.png");
    assert_eq!(media.attrs["medium"], "image");
    assert_eq!(
        item.extensions["dcterms"]["modified"][0].value.as_deref(),
        Some("2020-07-17T21:54:00+07:00")
    );
    // Older item second: newest first.
    assert_eq!(
        channel.items[1].pub_date.as_deref(),
        Some("Thu, 16 Jul 2020 08:05:00 +0700")
    );
}

#[test]
fn atom_feed_parses_and_carries_every_field() {
    let env = env_with_items();
    let text = env.feed_text("party-work.atom");
    let feed = atom_syndication::Feed::read_from(text.as_bytes()).expect("Atom parses");
    assert_eq!(
        feed.title.value,
        "Công tác Đảng — Báo Công an nhân dân — bantin"
    );
    assert_eq!(feed.id, "http://127.0.0.1:8080/feeds/party-work.atom");
    assert_eq!(feed.lang.as_deref(), Some("vi"));
    assert!(
        feed.generator
            .as_ref()
            .unwrap()
            .value
            .starts_with("bantin ")
    );
    let self_link = feed.links.iter().find(|l| l.rel == "self").unwrap();
    assert_eq!(
        self_link.href,
        "http://127.0.0.1:8080/feeds/party-work.atom"
    );
    assert!(feed.links.iter().all(|l| l.rel != "hub"));

    assert_eq!(feed.entries.len(), 1, "only the party-work item");
    let entry = &feed.entries[0];
    assert_eq!(entry.title.value, VIETNAMESE_TITLE);
    assert!(entry.id.starts_with("tag:127.0.0.1,"));
    assert_eq!(entry.published, Some(at("2020-07-17T21:54:00+07:00")));
    assert_eq!(
        entry.published.unwrap().offset().local_minus_utc(),
        7 * 3600
    );
    assert_eq!(entry.updated, at("2020-07-17T21:54:00+07:00"));
    let authors: Vec<&str> = entry.authors.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(authors, ["Nguyễn Văn Hùng", "Trần Thị Mỹ Dung"]);
    assert_eq!(
        entry.summary.as_ref().unwrap().value,
        "(CAO) Tóm tắt bài số 1."
    );
    let content = entry.content.as_ref().unwrap();
    assert_eq!(content.content_type.as_deref(), Some("html"));
    assert!(
        content
            .value
            .as_deref()
            .unwrap()
            .contains("Đồng chí Bí thư phát biểu.")
    );
    assert_eq!(entry.categories[0].term, "party-work");
    assert_eq!(entry.categories[0].label.as_deref(), Some("Công tác Đảng"));
    let enclosure = entry.links.iter().find(|l| l.rel == "enclosure").unwrap();
    assert_eq!(enclosure.href, "https://news.example/anh/chi-bo.png");
    assert_eq!(enclosure.mime_type.as_deref(), Some("image/png"));
    assert!(entry.extensions.contains_key("media"));
}

#[test]
fn every_published_feed_parses_with_feed_rs() {
    let env = env_with_items();
    for feed in publish::feeds_for(&env.config) {
        for format in publish::FeedFormat::ALL {
            let name = feed.file_name(format);
            let text = env.feed_text(&name);
            let parsed = feed_rs::parser::parse(text.as_bytes())
                .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
            assert!(parsed.title.is_some(), "{name} has a title");
            for entry in &parsed.entries {
                assert!(
                    entry.id.starts_with("tag:127.0.0.1,"),
                    "{name}: {}",
                    entry.id
                );
                assert!(entry.published.is_some(), "{name} entry has a date");
                assert!(entry.title.is_some(), "{name} entry has a title");
            }
        }
    }
    let all = feed_rs::parser::parse(env.feed_text("all.json").as_bytes()).unwrap();
    assert_eq!(all.entries.len(), 2);
    let entry = &all.entries[0];
    assert_eq!(entry.title.as_ref().unwrap().content, VIETNAMESE_TITLE);
    assert_eq!(
        entry.published.unwrap().to_rfc3339(),
        "2020-07-17T14:54:00+00:00"
    );
    assert_eq!(entry.authors[0].name.as_deref(), Some("Nguyễn Văn Hùng"));
    assert_eq!(
        entry.summary.as_ref().unwrap().content,
        "(CAO) Tóm tắt bài số 1."
    );
    assert!(
        entry
            .content
            .as_ref()
            .unwrap()
            .body
            .as_deref()
            .unwrap()
            .contains("Quang cảnh hội nghị")
    );
    let json: serde_json::Value = serde_json::from_str(&env.feed_text("all.json")).unwrap();
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(json["feed_url"], "http://127.0.0.1:8080/feeds/all.json");
    assert_eq!(
        json["items"][0]["date_published"],
        "2020-07-17T21:54:00+07:00"
    );
    assert_eq!(
        json["items"][0]["image"],
        "https://news.example/anh/chi-bo.png"
    );
    assert_eq!(json["items"][0]["attachments"][0]["mime_type"], "image/png");
    assert_eq!(json["items"][0]["tags"][0], "Công tác Đảng");
}

#[test]
fn vietnamese_text_round_trips_exactly_through_every_parser() {
    let env = env_with_items();
    let rss = rss::Channel::read_from(env.feed_text("all.rss").as_bytes()).unwrap();
    let atom = atom_syndication::Feed::read_from(env.feed_text("all.atom").as_bytes()).unwrap();
    let json = feed_rs::parser::parse(env.feed_text("all.json").as_bytes()).unwrap();
    let via_feed_rs = feed_rs::parser::parse(env.feed_text("all.atom").as_bytes()).unwrap();
    assert_eq!(rss.items[0].title.as_deref(), Some(VIETNAMESE_TITLE));
    assert_eq!(atom.entries[0].title.value, VIETNAMESE_TITLE);
    assert_eq!(
        json.entries[0].title.as_ref().unwrap().content,
        VIETNAMESE_TITLE
    );
    assert_eq!(
        via_feed_rs.entries[0].title.as_ref().unwrap().content,
        VIETNAMESE_TITLE
    );
    assert_eq!(atom.title.value, "Báo Công an nhân dân — bantin");
}

#[test]
fn control_characters_and_script_in_a_body_do_not_break_the_feeds() {
    let env = FeedEnv::new();
    let mut evil = article(
        3,
        "Tiêu đề\u{0}có\u{1B}ký tự điều khiển",
        "2021-01-02T03:04:05+07:00",
    );
    // Sanitized as the pipeline does before storing; control characters stay for
    // publishing to remove.
    evil.body_html = bantin::extract::sanitize::article_html(
        "<p>Trước\u{8}\u{B}sau]]></p><script>alert('x')</script><p onclick=\"steal()\">Cuối\u{FFFE}</p>",
        &evil.url,
    );
    evil.body_text = "Trước\u{8}sau".into();
    evil.lead = Some("Lead\u{1F} với <b>thẻ</b> & ký hiệu".into());
    env.add(&evil, &["police-activities"]);
    publish::publish_all(&env.config, env.store.as_ref()).unwrap();

    let rss_text = env.feed_text("all.rss");
    let atom_text = env.feed_text("all.atom");
    let json_text = env.feed_text("all.json");
    for text in [&rss_text, &atom_text, &json_text] {
        assert!(
            !text.chars().any(|c| c < ' ' && !"\t\n\r".contains(c)),
            "control character left"
        );
        assert!(!text.contains('\u{FFFE}'));
        assert!(!text.contains("alert("), "script kept");
        assert!(!text.contains("steal()"), "event handler kept");
    }
    let channel = rss::Channel::read_from(rss_text.as_bytes()).expect("RSS still parses");
    validate_rss(&channel);
    let item = &channel.items[0];
    assert_eq!(item.title.as_deref(), Some("Tiêu đềcóký tự điều khiển"));
    assert_eq!(
        item.content.as_deref(),
        Some("<p>Trướcsau]]&gt;</p><p>Cuối</p>")
    );
    assert_eq!(
        item.description.as_deref(),
        Some("Lead với &lt;b&gt;thẻ&lt;/b&gt; &amp; ký hiệu")
    );
    let atom = atom_syndication::Feed::read_from(atom_text.as_bytes()).expect("Atom still parses");
    assert_eq!(
        atom.entries[0].content.as_ref().unwrap().value.as_deref(),
        Some("<p>Trướcsau]]&gt;</p><p>Cuối</p>")
    );
    feed_rs::parser::parse(json_text.as_bytes()).expect("JSON still parses");
    feed_rs::parser::parse(atom_text.as_bytes()).expect("Atom parses with feed-rs");
}

#[test]
fn republishing_unchanged_items_writes_nothing() {
    use std::os::unix::fs::MetadataExt;
    let env = env_with_items();
    let path = env.config.settings.feeds_dir.join("all.rss");
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    // Every write is a new file renamed into place, so an unchanged inode means the
    // file was not written again.
    let inodes = || {
        let mut files: Vec<_> = std::fs::read_dir(&env.config.settings.feeds_dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.metadata().unwrap().ino())
            })
            .collect();
        files.sort();
        files
    };
    let written = inodes();
    assert!(written.len() >= 9, "{written:?}");
    let report = publish::publish_all(&env.config, env.store.as_ref()).unwrap();
    assert!(report.changed.is_empty(), "{report:?}");
    assert!(!report.opml_changed);
    assert_eq!(inodes(), written);
    // The file's time is the newest item's stored time, not the write time.
    let newest = env
        .store
        .latest_items(&"all".into(), 50)
        .unwrap()
        .iter()
        .map(|i| i.updated_at)
        .max()
        .unwrap();
    assert_eq!(
        DateTime::<chrono::Utc>::from(before).timestamp_millis(),
        newest.timestamp_millis()
    );
}

use bantin::store::Store;

#[test]
fn updated_article_keeps_its_id_and_bumps_updated() {
    let env = env_with_items();
    let atom = |env: &FeedEnv| {
        atom_syndication::Feed::read_from(env.feed_text("all.atom").as_bytes()).unwrap()
    };
    let old = atom(&env)
        .entries
        .into_iter()
        .find(|e| e.title.value == VIETNAMESE_TITLE)
        .unwrap();
    let mut changed = article(1, VIETNAMESE_TITLE, "2020-07-17T21:54:00+07:00");
    changed.updated = Some(at("2020-07-18T09:00:00+07:00"));
    changed.body_text.push_str(" Cập nhật thêm thông tin.");
    changed
        .body_html
        .push_str("<p>Cập nhật thêm thông tin.</p>");
    env.add(&changed, &["party-work"]);
    let report = publish::publish_all(&env.config, env.store.as_ref()).unwrap();
    assert!(report.changed.iter().any(|c| c.id.as_str() == "all"));
    let new = atom(&env)
        .entries
        .into_iter()
        .find(|e| e.title.value == VIETNAMESE_TITLE)
        .unwrap();
    assert_eq!(new.id, old.id);
    assert_eq!(new.updated, at("2020-07-18T09:00:00+07:00"));
    assert_eq!(new.published, old.published);
}

#[test]
fn opml_lists_every_feed_and_the_stylesheet_is_written() {
    let env = env_with_items();
    let opml = env.feed_text("feeds.opml");
    let doc = opml.parse::<String>().unwrap();
    for id in ["all", "party-work", "police-activities"] {
        assert!(
            doc.contains(&format!("xmlUrl=\"http://127.0.0.1:8080/feeds/{id}.rss\"")),
            "{id} missing"
        );
    }
    let mut reader = quick_xml::Reader::from_str(&opml);
    let mut outlines = 0;
    loop {
        match reader.read_event().expect("OPML is well-formed XML") {
            quick_xml::events::Event::Empty(e) if e.name().into_inner() == "outline" => {
                outlines += 1
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(outlines, 3);
    let xsl = env.feed_text("feed.xsl");
    assert!(xsl.contains("xsl:stylesheet"));
}

/// The fetcher of `config`, also allowed to reach 127.0.0.1 where the test hubs listen.
fn local_fetcher(config: &bantin::config::Config) -> bantin::fetch::Fetcher {
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    bantin::fetch::Fetcher::with_allowed_addresses(&config.settings, &[loopback])
        .expect("fetcher builds")
}

/// A WebSub hub on 127.0.0.1 that answers 500 to its first request, then 204, and
/// keeps every body it got.
async fn flaky_hub() -> (Url, Arc<Mutex<Vec<String>>>) {
    let bodies = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = bodies.clone();
    let app = Router::new().route(
        "/hub",
        post(move |body: String| {
            let seen = seen.clone();
            async move {
                let mut seen = seen.lock().unwrap();
                seen.push(body);
                if seen.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (Url::parse(&format!("http://{addr}/hub")).unwrap(), bodies)
}

#[tokio::test]
async fn websub_hub_is_linked_and_notified_with_retry_after_a_change() {
    let (hub, bodies) = flaky_hub().await;
    let env = FeedEnv::with(|c| c.settings.websub_hub = Some(hub.clone()));
    publish::publish_all(&env.config, env.store.as_ref()).unwrap();
    env.add(
        &article(5, "Tin mới", "2022-05-05T05:05:05+07:00"),
        &["party-work"],
    );
    let report = publish::publish_all(&env.config, env.store.as_ref()).unwrap();
    let rss = rss::Channel::read_from(env.feed_text("all.rss").as_bytes()).unwrap();
    assert!(
        rss.atom_ext
            .unwrap()
            .links
            .iter()
            .any(|l| l.rel == "hub" && l.href == hub.as_str())
    );
    let atom = atom_syndication::Feed::read_from(env.feed_text("all.atom").as_bytes()).unwrap();
    assert!(
        atom.links
            .iter()
            .any(|l| l.rel == "hub" && l.href == hub.as_str())
    );
    let json: serde_json::Value = serde_json::from_str(&env.feed_text("all.json")).unwrap();
    assert_eq!(json["hubs"][0]["type"], "WebSub");

    let topics = report.changed_urls();
    assert_eq!(topics.len(), 6, "all and party-work, three formats each");
    websub::Hub::new(hub, local_fetcher(&env.config))
        .with_retry(3, Duration::from_millis(10))
        .notify(&topics)
        .await
        .expect("hub notified");
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), topics.len() + 1, "the first POST was retried");
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(
        bodies[1],
        "hub.mode=publish&hub.url=http%3A%2F%2F127.0.0.1%3A8080%2Ffeeds%2Fall.rss"
    );
}

#[tokio::test]
async fn websub_gives_up_after_the_last_attempt() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/hub", post(|| async { StatusCode::BAD_GATEWAY }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let hub = Url::parse(&format!("http://{addr}/hub")).unwrap();
    let topic = Url::parse("http://127.0.0.1:8080/feeds/all.rss").unwrap();
    let err = websub::Hub::new(hub, local_fetcher(&FeedEnv::new().config))
        .with_retry(2, Duration::from_millis(1))
        .notify(&[topic])
        .await
        .unwrap_err();
    assert!(matches!(err, websub::WebSubError::Status { status, .. } if status == 502));
}

/// Every format rendered from two fixed items, compared with the reviewed snapshot: a
/// snapshot change is a change in what feed readers receive.
#[test]
fn rendered_feeds_match_their_reviewed_snapshots() {
    use bantin::model::{CategoryId, Item, ItemId, SourceId};
    use bantin::publish::{FeedFormat, RenderContext};

    let env = FeedEnv::new();
    let mut first = article(1, VIETNAMESE_TITLE, "2020-07-17T21:54:00+07:00");
    first.image = Some(Url::parse("https://news.example/anh/chi-bo.png").unwrap());
    first.tags = vec!["Xây dựng Đảng".into()];
    first.updated = Some(at("2020-07-18T06:30:00+07:00"));
    let item = |id: &str, article, category: &str| Item {
        id: ItemId(id.into()),
        article,
        source: SourceId::from("news"),
        categories: vec![CategoryId::from(category)],
        first_seen: at("2020-07-18T00:00:00Z").to_utc(),
        updated_at: at("2020-07-18T00:00:00Z").to_utc(),
        links: Vec::new(),
    };
    let mut items = [
        item("news-0000000000000001", first, "party-work"),
        item(
            "news-0000000000000002",
            article(2, "Bắt giữ đối tượng trộm cắp", "2020-07-16T08:05:00+07:00"),
            "police-activities",
        ),
    ];
    // The second story was also found at another address, which every format shows.
    items[1].links = vec![Url::parse("https://other.example/bat-giu?id=2&from=rss").unwrap()];
    let ctx = RenderContext {
        // The version changes with every release; the snapshot should not.
        generator: "bantin".into(),
        ..RenderContext::new(&env.config)
    };
    let all = &publish::feeds_for(&env.config)[0];
    for format in FeedFormat::ALL {
        let text = publish::render(format, all, &items, &ctx);
        let readable = match format {
            FeedFormat::Json => text,
            FeedFormat::Rss | FeedFormat::Atom => indent_xml(&text),
        };
        insta::assert_snapshot!(format!("all.{}", format.extension()), readable);
    }
}

/// The same XML with each element that holds other elements on its own lines, text
/// left exactly as written, so a snapshot diff shows what changed.
fn indent_xml(xml: &str) -> String {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut writer = quick_xml::Writer::new(Vec::new());
    let mut depth = 0usize;
    // Whether the last thing written closed an element (so an end tag starts a new line).
    let mut after_close = false;
    loop {
        let event = reader.read_event().expect("the feed is well-formed XML");
        let newline = |writer: &mut quick_xml::Writer<Vec<u8>>, depth: usize| {
            let out = writer.get_mut();
            if !out.is_empty() {
                out.push(b'\n');
                out.extend(std::iter::repeat_n(b' ', 2 * depth));
            }
        };
        match &event {
            Event::Eof => break,
            Event::Text(t) if t.xml10_content().trim().is_empty() => continue,
            Event::Start(_) => {
                newline(&mut writer, depth);
                depth += 1;
                after_close = false;
            }
            Event::End(_) => {
                depth -= 1;
                if after_close {
                    newline(&mut writer, depth);
                }
                after_close = true;
            }
            Event::Empty(_) | Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {
                newline(&mut writer, depth);
                after_close = true;
            }
            _ => after_close = false,
        }
        writer.write_event(event).expect("writing to a Vec");
    }
    String::from_utf8(writer.into_inner()).expect("the feed is UTF-8")
}
