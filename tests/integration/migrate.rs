//! `bantin migrate --to postgres://...`: a store crawled into SQLite, copied into an
//! empty PostgreSQL database, publishes the same feeds from there, byte for byte; a
//! target holding data is refused unless `--replace`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::backend::TestDatabase;
use crate::support::daemon::copy_dir;
use crate::support::{TestConfig, TestSite, news_listing_source};

const CATEGORIES: &str = r#"
[[category]]
id = "party-work"
title = "Công tác Đảng"

[[category.rule]]
any = ["chi bộ", "đảng viên"]
fields = ["title"]
"#;

fn config(site: &TestSite, settings: &str) -> TestConfig {
    let source = news_listing_source(&site.url("/list/"), "0 0 * * * *");
    let config = TestConfig::new()
        .settings(settings)
        .categories(CATEGORIES)
        .site("news", &source);
    config.write();
    config
}

fn bantin(config: &TestConfig, args: &[&str]) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin!("bantin"))
        .args([
            "--config",
            config.dir().join("bantin.toml").to_str().unwrap(),
        ])
        .args(args)
        .output()
        .unwrap()
}

/// Every file of a feeds folder, by name.
fn feed_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Rows per table as `bantin migrate` printed them.
fn printed_counts(stdout: &[u8]) -> BTreeMap<String, i64> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (table, rows, unit) = (words.next()?, words.next()?, words.next()?);
            (unit == "rows").then(|| (table.to_owned(), rows.parse().unwrap()))
        })
        .collect()
}

// Multi-threaded: the site keeps answering while the test waits for a command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrated_store_publishes_the_same_feeds_from_postgres() {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sites/news"),
        copy.path(),
    );
    let site = TestSite::serve(copy.path()).await;
    let sqlite = config(&site, "");
    let crawl = bantin(&sqlite, &["crawl"]);
    assert!(crawl.status.success(), "{crawl:?}");

    let database = TestDatabase::create();
    let migrate = bantin(&sqlite, &["migrate", "--to", &database.url]);
    assert!(migrate.status.success(), "{migrate:?}");
    let counts = printed_counts(&migrate.stdout);
    let file = rusqlite::Connection::open(sqlite.dir().join("data/bantin.sqlite3")).unwrap();
    for table in [
        "items",
        "item_links",
        "item_categories",
        "simhash_bands",
        "raw_pages",
    ]
    .into_iter()
    .chain(["validators", "source_state", "source_runs", "article_state"])
    .chain(["held_back", "published_documents", "meta"])
    {
        let rows: i64 = file
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(counts.get(table), Some(&rows), "{table}: {counts:?}");
    }
    assert!(counts["items"] >= 10, "{counts:?}");

    // The same configuration on the copy: the feeds it publishes are the same bytes.
    let postgres = config(&site, &format!("database_url = {:?}", database.url));
    let publish = bantin(&postgres, &["publish"]);
    assert!(publish.status.success(), "{publish:?}");
    let from_sqlite = feed_files(&sqlite.dir().join("feeds"));
    let from_postgres = feed_files(&postgres.dir().join("feeds"));
    assert_eq!(
        from_sqlite.keys().collect::<Vec<_>>(),
        from_postgres.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &from_sqlite {
        assert!(
            bytes == &from_postgres[name],
            "{name} differs after the move"
        );
    }

    // The copy holds data now: a second copy is refused, unless told to replace it.
    let again = bantin(&sqlite, &["migrate", "--to", &database.url]);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--replace"));
    let replaced = bantin(&sqlite, &["migrate", "--to", &database.url, "--replace"]);
    assert!(replaced.status.success(), "{replaced:?}");
    assert_eq!(printed_counts(&replaced.stdout), counts);
}
