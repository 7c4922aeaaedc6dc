//! `bantin suggest` end to end on fixture sites of three templates served on 127.0.0.1:
//! the written site file passes `check`, and a crawl with it finds the list's articles
//! and their fields as a crawl with hand-written selectors does.

use std::collections::BTreeMap;
use std::path::Path;

use assert_cmd::Command;
use bantin::config::LinkRules;
use bantin::model::{Article, CategoryId};
use bantin::store::{SqliteStore, Store};
use url::Url;

use crate::support::{TestConfig, TestSite};

/// Each fixture site and its section page.
const SITES: &[(&str, &str)] = &[
    ("tinnhanh", "/thoi-su/"),
    ("nhipsong", "/tin-tuc/"),
    ("canhgiac", "/an-ninh/"),
];

/// Fields compared between the two crawls.
const FIELDS: &[&str] = &[
    "title",
    "published",
    "updated",
    "authors",
    "lead",
    "body",
    "image",
    "tags",
    "section",
];

fn fixture(site: &str) -> String {
    format!("tests/fixtures/suggest/{site}")
}

fn bantin(config: &Path) -> Command {
    let mut command = Command::cargo_bin("bantin").expect("the bantin binary is built");
    command.arg("--config").arg(config);
    command
}

/// Runs bantin with these arguments off the async runtime (the test site runs on it).
async fn run(config: &Path, args: &[&str]) -> std::process::Output {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || bantin(&config).args(&args).output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Crawls once with the configuration and returns the stored articles by address.
async fn crawl(config: &TestConfig) -> BTreeMap<Url, Article> {
    let root = config.write().join("bantin.toml");
    let out = run(&root, &["crawl"]).await;
    assert!(out.status.success(), "crawl: {}", text(&out.stdout));
    let store = SqliteStore::open(&config.dir().join("data/bantin.sqlite3"), 3).unwrap();
    store
        .latest_items(&CategoryId("all".into()), 1000)
        .unwrap()
        .into_iter()
        .map(|item| (item.article.url.clone(), item.article))
        .collect()
}

fn field(article: &Article, name: &str) -> Option<String> {
    let date = |d: Option<chrono::DateTime<chrono::FixedOffset>>| d.map(|d| d.to_rfc3339());
    match name {
        "title" => Some(article.title.clone()),
        "published" => date(article.published),
        "updated" => date(article.updated),
        "authors" => Some(article.authors.join("; ")),
        "lead" => article.lead.clone(),
        "body" => Some(article.body_text.clone()),
        "image" => article.image.as_ref().map(Url::to_string),
        "tags" => Some(article.tags.join("; ")),
        "section" => article.section.clone(),
        other => panic!("unknown field {other}"),
    }
}

/// Suggests a source for the site's section page, saved in a fresh configuration.
async fn suggested_config(site: &TestSite, name: &str, section: &str) -> (TestConfig, String) {
    let config = TestConfig::new();
    let root = config.write().to_owned();
    let file = root.join(format!("sources/{name}.toml"));
    let listing = site.url(section).to_string();
    let write = file.to_str().unwrap();
    let out = run(
        &root.join("bantin.toml"),
        &["suggest", &listing, "--id", name, "--write", write],
    )
    .await;
    assert!(out.status.success(), "suggest: {}", text(&out.stderr));
    let block = text(&out.stdout);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), block);
    (config, block)
}

/// The hand-written source of the site, pointed at the served section page.
fn hand_written_config(site: &TestSite, name: &str, section: &str) -> TestConfig {
    let path = format!("{}/hand-written.toml", fixture(name));
    let toml = std::fs::read_to_string(path).unwrap();
    TestConfig::new().site(
        "hand",
        &toml.replace("{listing}", site.url(section).as_str()),
    )
}

/// Article links on the section page that match the suggested URL pattern but are not
/// in the list (sidebar, footer, navigation).
fn pattern_only_links(name: &str, section: &str, block: &str, list: &[&Url]) -> usize {
    let doc: toml::Table = toml::from_str(block).unwrap();
    let pattern = doc["source"][0]["links"]["pattern"].as_str().unwrap();
    let html = std::fs::read_to_string(format!("{}{section}index.html", fixture(name))).unwrap();
    let rules = LinkRules {
        pattern: Some(regex::Regex::new(pattern).unwrap()),
        ..LinkRules::default()
    };
    let page = Url::parse(&format!("http://127.0.0.1{section}")).unwrap();
    let found = bantin::sources::listing_links(&html, &page, &rules).articles;
    found
        .iter()
        .filter(|(u, _)| !list.iter().any(|l| l.path() == u.path()))
        .count()
}

#[tokio::test]
async fn suggested_sources_pass_check_and_crawl_like_hand_written_ones() {
    let mut table = vec![format!(
        "| field | {} |",
        SITES.iter().map(|s| s.0).collect::<Vec<_>>().join(" | ")
    )];
    let mut cells: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for (name, section) in SITES {
        let site = TestSite::serve(fixture(name)).await;
        let (suggested, block) = suggested_config(&site, name, section).await;
        let check = run(&suggested.write().join("bantin.toml"), &["check"]).await;
        assert!(
            check.status.success(),
            "{name}: check: {}\n{block}",
            text(&check.stderr)
        );

        let got = crawl(&suggested).await;
        let want = crawl(&hand_written_config(&site, name, section)).await;
        let urls: Vec<&Url> = got.keys().collect();
        let paths = |urls: &[&Url]| urls.iter().map(|u| u.path().to_owned()).collect::<Vec<_>>();
        assert_eq!(
            paths(&urls),
            paths(&want.keys().collect::<Vec<_>>()),
            "{name}: the list's articles\n{block}"
        );
        assert!(
            !want.is_empty(),
            "{name}: the hand-written crawl finds articles"
        );
        assert!(
            pattern_only_links(name, section, &block, &urls) > 0,
            "{name}: the page links articles outside the list, which the selector leaves out"
        );
        for f in FIELDS {
            let agree = want
                .iter()
                .filter(|(url, a)| field(&got[*url], f) == field(a, f))
                .count();
            cells.insert((name, f), (agree, want.len()));
        }
    }
    for f in FIELDS {
        let row: Vec<String> = SITES
            .iter()
            .map(|(name, _)| {
                let (agree, of) = cells[&(*name, *f)];
                format!("{agree}/{of}")
            })
            .collect();
        table.push(format!("| {f} | {} |", row.join(" | ")));
    }
    let table = table.join("\n");
    println!("field agreement, suggested vs hand-written config:\n{table}");
    for ((name, f), (agree, of)) in &cells {
        assert_eq!(agree, of, "{name} {f}\n{table}");
    }
}

/// Suggests from the saved section page of a site (articles read from files beside it)
/// and from its address, and returns both blocks.
async fn saved_and_fetched(name: &str, section: &str, give_url: bool) -> (String, String) {
    let site = TestSite::serve(fixture(name)).await;
    let (_, fetched) = suggested_config(&site, name, section).await;
    let config = TestConfig::new();
    let root = config.write().join("bantin.toml");
    let saved = format!("{}{section}index.html", fixture(name));
    let address = site.url(section).to_string();
    let mut args = vec!["suggest", saved.as_str(), "--id", name];
    if give_url {
        args.extend(["--url", address.as_str()]);
    }
    let out = run(&root, &args).await;
    assert!(out.status.success(), "{name}: {}", text(&out.stderr));
    (text(&out.stdout), fetched)
}

#[tokio::test]
async fn saved_section_page_gives_the_rules_its_address_gives() {
    let rules = |block: &str| {
        let doc: toml::Table = toml::from_str(block).unwrap();
        let source = doc["source"][0].clone();
        (source["links"].clone(), source["extract"].clone())
    };
    // tinnhanh names its address in a canonical link and saves articles as `slug.html`;
    // nhipsong needs --url and has them as `slug/index.html`.
    for ((name, section), give_url) in SITES[..2].iter().zip([false, true]) {
        let (from_file, fetched) = saved_and_fetched(name, section, give_url).await;
        assert_eq!(rules(&from_file), rules(&fetched), "{name}: {from_file}");
        assert!(
            from_file.contains("and 5 of its article page(s)"),
            "{name}: {from_file}"
        );
    }
}

#[tokio::test]
async fn page_without_a_list_of_articles_exits_1_with_the_reason() {
    let site = TestSite::serve(fixture("no-list")).await;
    let config = TestConfig::new();
    let root = config.write().join("bantin.toml");
    let out = run(&root, &["suggest", site.url("/").as_str()]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("has no recognisable list of articles"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing to paste: {}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn suggest_with_a_bad_id_or_sample_size_is_bad_usage() {
    let config = TestConfig::new();
    let root = config.write().join("bantin.toml");
    let page = format!("{}/thoi-su/index.html", fixture("tinnhanh"));
    let bad_id = run(&root, &["suggest", &page, "--id", "Tin Nhanh"]).await;
    assert_eq!(bad_id.status.code(), Some(2), "{}", text(&bad_id.stderr));
    assert!(text(&bad_id.stderr).contains("is not a slug"));
    let none = run(&root, &["suggest", &page, "--articles", "0"]).await;
    assert_eq!(none.status.code(), Some(2), "{}", text(&none.stderr));
}
