//! The pages for people as a real browser renders them: headless Chromium (Debian
//! `chromium`) loads the index and a feed address from a server on 127.0.0.1 with its
//! own `Accept`, and the DOM it built is read back: titles are text inside links, not
//! escaped XML.

use std::time::Duration;

use scraper::{Html, Selector};

use crate::pages::{COPY_URL, PARTY_TITLE, POLICE_TITLE, server};

/// Liveness only: a cold Chromium start on a loaded 2-core machine takes seconds.
const BROWSER_DEADLINE: Duration = Duration::from_secs(180);

/// The DOM Chromium built for `url`, serialized (`--dump-dom`).
async fn rendered_dom(url: &str) -> Html {
    let profile = tempfile::tempdir().expect("temporary profile folder");
    let run = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-proxy-server",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(BROWSER_DEADLINE, run).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!(
            "cannot start chromium ({e}); this test needs a real browser: \
             apt-get install -y chromium"
        ),
        Err(_) => panic!("chromium did not render {url} within {BROWSER_DEADLINE:?}"),
    };
    assert!(
        output.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Html::parse_document(&String::from_utf8_lossy(&output.stdout))
}

fn link_texts(dom: &Html, css: &str) -> Vec<(String, String)> {
    let selector = Selector::parse(css).unwrap();
    dom.select(&selector)
        .map(|a| {
            (
                a.text().collect::<String>().trim().to_owned(),
                a.value().attr("href").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn chromium_renders_a_feed_address_as_a_page_with_linked_titles() {
    let server = server().await;
    let dom = rendered_dom(&server.url("/feeds/party-work.rss")).await;
    // A feed shown raw would be one `<pre>` of escaped XML and no such elements.
    let items = link_texts(&dom, "li.item > a:first-child");
    assert_eq!(
        items,
        vec![(
            PARTY_TITLE.to_owned(),
            "https://news.example/tin-tuc/bai-1-i100/".to_owned()
        )],
        "{}",
        dom.html()
    );
    let subscribe: Vec<String> = link_texts(&dom, "ul.subscribe a")
        .into_iter()
        .map(|(_, href)| href)
        .collect();
    assert_eq!(
        subscribe,
        ["rss", "atom", "json"].map(|ext| server.url(&format!("/feeds/party-work.{ext}")))
    );
    let also_at = link_texts(&dom, "li.item .also-at a");
    assert_eq!(also_at, vec![(COPY_URL.to_owned(), COPY_URL.to_owned())]);
}

#[tokio::test]
async fn chromium_renders_the_index_with_feeds_and_latest_items() {
    let server = server().await;
    let dom = rendered_dom(&server.url("/")).await;
    let titles: Vec<String> = link_texts(&dom, "li.item > a:first-child")
        .into_iter()
        .map(|(title, _)| title)
        .collect();
    assert_eq!(titles, vec![PARTY_TITLE, POLICE_TITLE], "{}", dom.html());
    let feeds = link_texts(&dom, "section.feed h3 a");
    assert_eq!(feeds.len(), 1 + server.env.config.categories.len());
    assert_eq!(feeds[0].1, server.url("/feeds/all.rss"));
    assert_eq!(feeds[0].0, server.env.config.settings.title);
}
