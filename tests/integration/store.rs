//! The store through the `Store` trait, on both backends (SQLite and PostgreSQL):
//! dedup outcomes, links, categories, fetch state, retention, search; and, on SQLite,
//! its schema migrations, re-extraction of stored pages, and surviving SIGKILL.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bantin::model::{
    CategoryId, Claim, ClaimRequest, HeldBack, HostSlot, HostTurn, Outcome, RawPage, ReadFailure,
    SlotRequest, SourceId, SourceRun, SourceSchedule, Validators,
};
use bantin::store::{Published, PublishedDocument, SqliteStore, Store};
use chrono::Utc;
use tempfile::TempDir;
use url::Url;

use crate::support::{Backend, TestConfig, TestStore, fixture_article, synthetic};

/// Runs each named test (a function over a [`Backend`]) once on SQLite and once on
/// PostgreSQL: one behaviour suite, both backends.
macro_rules! on_both_backends {
    (async $name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(crate::support::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(crate::support::Backend::Postgres).await
            }
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name(crate::support::Backend::Sqlite)
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                super::$name(crate::support::Backend::Postgres)
            })*
        }
    };
}

on_both_backends!(
    twenty_five_url_variants_are_one_item,
    changed_article_is_updated_with_the_same_id,
    same_text_at_two_sources_is_one_item_with_two_links,
    same_title_with_different_bodies_stays_two_items,
    latest_items_per_category_and_all,
    raw_pages_validators_and_source_runs_round_trip,
    schedule_state_and_retry_after_survive_reopening_the_store,
    prune_keeps_items_still_in_a_feed,
    reopening_keeps_data_and_schema,
    updated_item_is_found_by_its_new_words_not_its_old_ones,
    pruned_item_is_no_longer_found,
    search_is_per_feed_and_newest_first,
    search_finds_old_matches_past_the_newest_items_and_stops_at_the_limit,
    sigkill_during_ingest_loses_and_doubles_nothing,
    a_source_is_held_by_one_worker_until_its_lease_runs_out,
    a_finished_tick_is_done_and_its_host_keeps_the_next_request_time,
    renewal_keeps_a_lease_and_tells_of_one_taken_over,
    claims_at_once_grant_a_source_to_one_worker,
    host_slots_taken_at_once_are_one_delay_apart_and_wait_for_a_holder,
    a_host_slot_waits_for_the_request_in_flight_to_end
);
mod published {
    use super::*;
    on_both_backends!(
        published_documents_change_the_generation_only_when_they_change,
        publish_lock_is_held_by_one_store_at_a_time,
        concurrent_publishers_report_each_change_once,
    );
}

on_both_backends!(async reextract_over_several_batches_reextracts_every_page_once);

fn src(id: &str) -> SourceId {
    SourceId::from(id)
}

fn party_work() -> bantin::model::Article {
    fixture_article("classify/party-work-hoi-nghi-cong-tac-dang.json")
}

fn twenty_five_url_variants_are_one_item(backend: Backend) {
    let store = TestStore::new(backend);
    let base = "https://news.example.vn/xay-dung-dang/hoi-nghi-cong-tac-dang-i1001";
    let variants = [
        base.to_string(),
        format!("{base}/"),
        format!("{base}/#binh-luan"),
        format!("{base}/?utm_source=facebook&utm_medium=social"),
        format!("{base}/?utm_campaign=x&utm_content=y&utm_term=z"),
        format!("{base}/?fbclid=IwAR0abc"),
        format!("{base}/?gclid=Cj0K"),
        format!("{base}/?zarsrc=31&zalo_source=share"),
        format!("{base}/?_ga=2.123&mc_cid=9"),
        format!("{base}/amp/"),
        format!("{base}/?amp"),
        format!("{base}.amp"),
        format!("{base}/?amp=1&utm_source=zalo"),
        base.replace("https://news.", "https://www.news."),
        base.replace("https://news.", "https://amp.news."),
        base.replace("https://news.", "https://m.news."),
        base.replace("https://news.example.vn", "https://NEWS.Example.VN"),
        base.replace("https://news.example.vn", "https://news.example.vn:443"),
        base.replace("https://", "http://"),
        base.replace("https://news.example.vn", "http://www.news.example.vn:80"),
        format!("{base}//"),
        format!("{base}/?igshid=abc#top"),
        format!("{base}/?msclkid=1&yclid=2"),
        format!("{base}/?ref=home"),
        format!("{base}/?utm_source=rss#comments"),
    ];
    assert_eq!(variants.len(), 25);
    let mut outcomes = Vec::new();
    for variant in &variants {
        let mut article = party_work();
        article.url = Url::parse(variant).unwrap();
        outcomes.push(store.record(&article, &src("a"), &[], None).unwrap());
    }
    let Outcome::New(id) = &outcomes[0] else {
        panic!("first variant should be new: {:?}", outcomes[0]);
    };
    for (variant, outcome) in variants.iter().zip(&outcomes).skip(1) {
        assert_eq!(outcome, &Outcome::Unchanged(id.clone()), "{variant}");
    }
    assert_eq!(store.item_count(), 1);
}

fn changed_article_is_updated_with_the_same_id(backend: Backend) {
    let store = TestStore::new(backend);
    let article = party_work();
    let Outcome::New(id) = store.record(&article, &src("a"), &[], None).unwrap() else {
        panic!("first record is new");
    };
    let before = store.item(&id).unwrap().unwrap();
    let mut changed = article.clone();
    changed.title.push_str(" (cập nhật)");
    changed
        .body_text
        .push_str("\n\nHội nghị cũng đã thông qua chương trình công tác quý II.");
    assert_eq!(
        store.record(&changed, &src("a"), &[], None).unwrap(),
        Outcome::Updated(id.clone())
    );
    let after = store.item(&id).unwrap().unwrap();
    assert_eq!(after.article.title, changed.title);
    assert_eq!(after.article.body_text, changed.body_text);
    assert_eq!(after.first_seen, before.first_seen);
    assert!(after.updated_at >= before.updated_at);
    assert_eq!(store.item_count(), 1);
}

fn same_text_at_two_sources_is_one_item_with_two_links(backend: Backend) {
    let store = TestStore::new(backend);
    let original = party_work();
    let Outcome::New(id) = store
        .record(
            &original,
            &src("cand"),
            &[CategoryId::from("party-work")],
            None,
        )
        .unwrap()
    else {
        panic!("first record is new");
    };
    // A republished copy: another site, its own lead prefix, a byline appended.
    let mut copy = original.clone();
    copy.url = Url::parse("https://other.example.com/thoi-su/cong-tac-dang-123.html").unwrap();
    copy.lead = copy.lead.map(|l| l.replace("(CAO)", "TTO -"));
    copy.body_text.push_str("\n\nNguyễn Hà - Minh Anh");
    let outcome = store
        .record(&copy, &src("other"), &[CategoryId::from("politics")], None)
        .unwrap();
    let Outcome::Duplicate { of, reason } = outcome else {
        panic!("copy should be a duplicate: {outcome:?}");
    };
    assert_eq!(of, id);
    assert!(reason.contains("near duplicate"), "{reason}");
    let item = store.item(&id).unwrap().unwrap();
    assert_eq!(item.links, vec![copy.url.clone()]);
    assert_eq!(item.source, src("cand"));
    assert_eq!(
        item.categories,
        vec![CategoryId::from("party-work"), CategoryId::from("politics")]
    );
    assert!(store.knows_url(&copy.url).unwrap());
    assert_eq!(store.item_count(), 1);
    // Seeing the copy again changes nothing.
    assert_eq!(
        store.record(&copy, &src("other"), &[], None).unwrap(),
        Outcome::Unchanged(id)
    );
}

fn same_title_with_different_bodies_stays_two_items(backend: Backend) {
    let store = TestStore::new(backend);
    let first = party_work();
    let mut second = fixture_article("classify/police-bat-giu-doi-tuong-cuop.json");
    second.title = first.title.clone();
    let a = store.record(&first, &src("a"), &[], None).unwrap();
    let b = store.record(&second, &src("a"), &[], None).unwrap();
    assert!(matches!(a, Outcome::New(_)), "{a:?}");
    assert!(matches!(b, Outcome::New(_)), "{b:?}");
    assert_ne!(a, b);
    assert_eq!(store.item_count(), 2);
}

fn latest_items_per_category_and_all(backend: Backend) {
    let store = TestStore::new(backend);
    let party = CategoryId::from("party-work");
    for n in 0..5 {
        let cats = if n % 2 == 0 {
            vec![party.clone()]
        } else {
            vec![]
        };
        store
            .record(&synthetic::article(n, 80), &src("a"), &cats, None)
            .unwrap();
    }
    assert_eq!(store.latest_items(&party, 10).unwrap().len(), 3);
    let all = store.latest_items(&CategoryId::from("all"), 10).unwrap();
    assert_eq!(all.len(), 5);
    // Without published dates, newest stored first.
    assert_eq!(all[0].article.url, synthetic::article(4, 80).url);
}

fn raw_pages_validators_and_source_runs_round_trip(backend: Backend) {
    let store = TestStore::new(backend);
    let article = party_work();
    let raw = RawPage {
        url: article.url.clone(),
        source: src("cand"),
        fetched_at: Utc::now(),
        // Large and hard to compress, so compression needs more room than the input.
        html: (0..400_000u64)
            .map(|n| {
                char::from_u32(0x1EA0 + (n.wrapping_mul(2_654_435_761) >> 7) as u32 % 90).unwrap()
            })
            .collect(),
    };
    store
        .record(&article, &src("cand"), &[], Some(&raw))
        .unwrap();
    let pages = store.raw_pages(Some(&src("cand")), None, None, 10).unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].html, raw.html);
    assert!(
        store
            .raw_pages(Some(&src("other")), None, None, 10)
            .unwrap()
            .is_empty()
    );

    let listing = Url::parse("https://news.example.vn/xay-dung-dang/").unwrap();
    assert_eq!(store.validators(&listing).unwrap(), None);
    let v = Validators {
        etag: Some("\"abc\"".into()),
        last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
    };
    store.save_validators(&listing, &v).unwrap();
    assert_eq!(store.validators(&listing).unwrap(), Some(v));

    let failed = SourceRun {
        errors: 3,
        failure: Some(ReadFailure::ConnectionRefused),
        ..SourceRun::default()
    };
    let ok = SourceRun {
        new: 2,
        finished_at: Some(Utc::now()),
        ..SourceRun::default()
    };
    store.record_source_run(&src("cand"), &ok).unwrap();
    store.record_source_run(&src("cand"), &failed).unwrap();
    store.record_source_run(&src("cand"), &failed).unwrap();
    let states = store.source_states().unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].failures, 2);
    assert!(states[0].last_success.is_some());
    assert_eq!(states[0].recent_runs.len(), 3);
    assert_eq!(states[0].last_run.as_ref(), Some(&failed));

    store.record_source_run(&src("other"), &ok).unwrap();
    assert_eq!(store.source_states().unwrap().len(), 2);
    let one = store
        .source_state(&src("cand"))
        .unwrap()
        .expect("cand has run");
    assert_eq!(
        one, states[0],
        "one source's state is the same as in the full list"
    );
    assert!(store.source_state(&src("never-ran")).unwrap().is_none());
}

fn schedule_state_and_retry_after_survive_reopening_the_store(backend: Backend) {
    let now = Utc::now();
    let later = now + chrono::Duration::minutes(10);
    let failed = SourceRun {
        failure: Some(ReadFailure::Status(500)),
        finished_at: Some(now),
        ..SourceRun::default()
    };
    let held = |key: &str, until| HeldBack {
        key: key.into(),
        until,
    };
    let test = TestStore::new(backend);
    {
        let store = &test;
        assert_eq!(
            store.source_schedule(&src("cand")).unwrap(),
            SourceSchedule::default()
        );
        store.record_source_run(&src("cand"), &failed).unwrap();
        store.record_source_run(&src("cand"), &failed).unwrap();
        store
            .save_next_due(&src("cand"), later, Some(Duration::from_secs(600)))
            .unwrap();
        store
            .save_held_back(&[
                held("127.0.0.1:8080", later),
                held(
                    "http://127.0.0.1:8080/gone",
                    now - chrono::Duration::seconds(1),
                ),
            ])
            .unwrap();
        // An earlier time for the same key does not shorten the hold-back.
        store
            .save_held_back(&[held("127.0.0.1:8080", now)])
            .unwrap();
    }
    let store = test.reopen(3);
    let schedule = store.source_schedule(&src("cand")).unwrap();
    assert_eq!(schedule.failures, 2);
    assert_eq!(schedule.backoff, Some(Duration::from_secs(600)));
    assert_eq!(
        schedule.next_due.map(|t| t.timestamp_millis()),
        Some(later.timestamp_millis())
    );
    assert_eq!(
        schedule.last_finished.map(|t| t.timestamp_millis()),
        Some(now.timestamp_millis())
    );
    let kept = store.held_back().unwrap();
    assert_eq!(kept.len(), 1, "passed hold-backs are forgotten: {kept:?}");
    assert_eq!(kept[0].key, "127.0.0.1:8080");
    assert_eq!(kept[0].until.timestamp_millis(), later.timestamp_millis());
}

fn prune_keeps_items_still_in_a_feed(backend: Backend) {
    let store = TestStore::new(backend);
    let party = CategoryId::from("party-work");
    let old = chrono::DateTime::parse_from_rfc3339("2001-01-01T08:00:00+07:00").unwrap();
    for n in 0..6 {
        let mut article = synthetic::article(n, 80);
        article.published = Some(old + chrono::Duration::days(n as i64));
        let cats = if n < 3 { vec![party.clone()] } else { vec![] };
        store.record(&article, &src("a"), &cats, None).unwrap();
    }
    // Stored just now, so retention by age alone keeps everything.
    assert_eq!(
        store
            .prune(30, 30, 1, std::slice::from_ref(&party))
            .unwrap(),
        0
    );
    // Pretend they were stored long ago too.
    store.execute("UPDATE items SET first_seen = 0");
    assert_eq!(
        store
            .prune(30, 30, 1, std::slice::from_ref(&party))
            .unwrap(),
        4
    );
    let kept: Vec<_> = store
        .latest_items(&CategoryId::from("all"), 10)
        .unwrap()
        .into_iter()
        .map(|i| i.article.url)
        .collect();
    // The newest of all (5) and the newest party-work item (2) stay.
    assert_eq!(
        kept,
        vec![synthetic::article(5, 80).url, synthetic::article(2, 80).url]
    );
}

fn reopening_keeps_data_and_schema(backend: Backend) {
    let test = TestStore::new(backend);
    let id = match test.record(&party_work(), &src("a"), &[], None).unwrap() {
        Outcome::New(id) => id,
        other => panic!("{other:?}"),
    };
    // A different distance rebuilds the band index; the copy is still found.
    let store = test.reopen(5);
    assert!(store.item(&id).unwrap().is_some());
    let mut copy = party_work();
    copy.url = Url::parse("https://other.example.com/copy.html").unwrap();
    assert!(matches!(
        store.record(&copy, &src("b"), &[], None).unwrap(),
        Outcome::Duplicate { .. }
    ));
    test.assert_consistent();
}

#[test]
fn store_from_the_first_schema_migrates_and_still_finds_copies() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("bantin.sqlite3");
    {
        let store = SqliteStore::open(&path, 3).unwrap();
        store.record(&party_work(), &src("a"), &[], None).unwrap();
    }
    // Put the band index back the way schema version 1 kept it, without search.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER items_leave_search;
         DROP TABLE item_search;
         DROP TABLE simhash_bands;
         CREATE TABLE simhash_bands (band INTEGER NOT NULL, value INTEGER NOT NULL,
             item INTEGER NOT NULL REFERENCES items (rowid) ON DELETE CASCADE,
             PRIMARY KEY (band, value, item)) WITHOUT ROWID;
         UPDATE meta SET value = '4' WHERE key = 'simhash_bands';
         DROP TABLE article_state;
         DROP INDEX validators_source;
         ALTER TABLE validators DROP COLUMN source;
         PRAGMA user_version = 1;",
    )
    .unwrap();
    conn.execute_batch(crate::support::UNDO_SCHEDULE_STATE)
        .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path, 3).unwrap();
    let mut copy = party_work();
    copy.url = Url::parse("https://other.example.com/copy.html").unwrap();
    assert!(matches!(
        store.record(&copy, &src("b"), &[], None).unwrap(),
        Outcome::Duplicate { .. }
    ));
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

/// Titles of the items of `feed` holding every word of `words`, newest first.
fn search(store: &dyn Store, feed: &str, words: &str) -> Vec<String> {
    store
        .search_items(&CategoryId::from(feed), words, 100)
        .unwrap()
        .into_iter()
        .map(|i| i.article.title)
        .collect()
}

fn updated_item_is_found_by_its_new_words_not_its_old_ones(backend: Backend) {
    let store = TestStore::new(backend);
    let article = party_work();
    store.record(&article, &src("a"), &[], None).unwrap();
    assert_eq!(search(&*store, "all", "thông qua"), Vec::<String>::new());
    assert_eq!(search(&*store, "all", "Nam Sơn"), [article.title.as_str()]);
    // Re-extracted with other text at the same address: an update in place.
    let mut changed = article.clone();
    changed.title = "Hội nghị thông qua chương trình quý II".to_owned();
    changed.lead = Some("(CAO) Chương trình mới.".to_owned());
    changed.body_text = "Hội nghị cũng đã thông qua chương trình công tác quý II.".to_owned();
    assert!(matches!(
        store.record(&changed, &src("a"), &[], None).unwrap(),
        Outcome::Updated(_)
    ));
    assert_eq!(search(&*store, "all", "thong qua"), [changed.title.clone()]);
    assert_eq!(search(&*store, "all", "Nam Sơn"), Vec::<String>::new());
    store.assert_consistent();
}

fn pruned_item_is_no_longer_found(backend: Backend) {
    let store = TestStore::new(backend);
    let old = chrono::DateTime::parse_from_rfc3339("2001-01-01T08:00:00+07:00").unwrap();
    // Stored oldest story last, so retention deletes the last rowids.
    for n in 0..3 {
        let mut article = synthetic::article(n, 80);
        article.title = format!("Bài số {n} về công tác Đảng");
        article.published = Some(old - chrono::Duration::days(n as i64));
        store.record(&article, &src("a"), &[], None).unwrap();
    }
    assert_eq!(search(&*store, "all", "cong tac dang").len(), 3);
    store.execute("UPDATE items SET first_seen = 0");
    assert_eq!(store.prune(30, 30, 1, &[]).unwrap(), 2);
    assert_eq!(
        search(&*store, "all", "cong tac dang"),
        ["Bài số 0 về công tác Đảng"]
    );
    // The next item takes a deleted item's rowid: it is found by its own words only.
    let mut next = synthetic::article(10, 80);
    next.title = "Tin mới".to_owned();
    store.record(&next, &src("a"), &[], None).unwrap();
    assert_eq!(search(&*store, "all", "tin moi"), ["Tin mới"]);
    assert_eq!(search(&*store, "all", "bai so 1"), Vec::<String>::new());
    assert_eq!(search(&*store, "all", "bai so 2"), Vec::<String>::new());
}

fn search_is_per_feed_and_newest_first(backend: Backend) {
    let store = TestStore::new(backend);
    let party = CategoryId::from("party-work");
    let day = chrono::DateTime::parse_from_rfc3339("2020-07-17T08:00:00+07:00").unwrap();
    for n in 0..4u64 {
        let mut article = synthetic::article(n, 80);
        article.title = format!("Công an tỉnh, tin {n}");
        article.published = Some(day + chrono::Duration::hours(n as i64));
        let cats = if n % 2 == 0 {
            vec![party.clone()]
        } else {
            vec![]
        };
        store.record(&article, &src("a"), &cats, None).unwrap();
    }
    assert_eq!(
        search(&*store, "party-work", "CONG AN TINH"),
        ["Công an tỉnh, tin 2", "Công an tỉnh, tin 0"]
    );
    assert_eq!(search(&*store, "all", "công an tỉnh").len(), 4);
    // Whole words: "tin" is not a prefix search for "tinh".
    assert_eq!(search(&*store, "all", "tin 3"), ["Công an tỉnh, tin 3"]);
    assert_eq!(search(&*store, "all", "tinh 3 \" OR * NEAR(").len(), 0);
    assert_eq!(search(&*store, "all", "\" * ( -").len(), 4);
}

/// Titles of the newest `limit` items of `feed` holding every word of `words`.
fn search_up_to(store: &dyn Store, feed: &str, words: &str, limit: usize) -> Vec<String> {
    let found = store.search_items(&CategoryId::from(feed), words, limit);
    found
        .unwrap()
        .into_iter()
        .map(|i| i.article.title)
        .collect()
}

// More items than a search reads in time order for one result (PostgreSQL reads the
// newest first and turns to its index when they hold too few matches).
fn search_finds_old_matches_past_the_newest_items_and_stops_at_the_limit(backend: Backend) {
    let store = TestStore::new(backend);
    let party = CategoryId::from("party-work");
    let day = chrono::DateTime::parse_from_rfc3339("2020-07-17T08:00:00+07:00").unwrap();
    for n in 0..60u64 {
        let mut article = synthetic::article(n, 20);
        let rare = if n < 2 { " hiếm có" } else { "" };
        article.title = format!("Tin chung số {n}{rare}");
        article.published = Some(day + chrono::Duration::hours(n as i64));
        let cats = if n % 2 == 0 {
            vec![party.clone()]
        } else {
            vec![]
        };
        store.record(&article, &src("a"), &cats, None).unwrap();
    }
    assert_eq!(
        search_up_to(&*store, "all", "hiem co", 1),
        ["Tin chung số 1 hiếm có"]
    );
    assert_eq!(
        search_up_to(&*store, "all", "hiem co", 5),
        ["Tin chung số 1 hiếm có", "Tin chung số 0 hiếm có"]
    );
    assert_eq!(
        search_up_to(&*store, "party-work", "hiem", 1),
        ["Tin chung số 0 hiếm có"]
    );
    assert_eq!(
        search_up_to(&*store, "all", "tin chung", 3),
        ["Tin chung số 59", "Tin chung số 58", "Tin chung số 57"]
    );
    assert_eq!(
        search_up_to(&*store, "party-work", "tin chung", 2),
        ["Tin chung số 58", "Tin chung số 56"]
    );
    assert_eq!(
        search_up_to(&*store, "all", "khong ai co", 3),
        Vec::<String>::new()
    );
}

#[test]
fn store_at_schema_2_migrates_and_indexes_existing_items() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("bantin.sqlite3");
    {
        let store = SqliteStore::open(&path, 3).unwrap();
        store.record(&party_work(), &src("a"), &[], None).unwrap();
        let mut other = synthetic::article(1, 80);
        other.title = "Khánh thành cầu Rồng".to_owned();
        store.record(&other, &src("a"), &[], None).unwrap();
    }
    // Take the store back to schema version 2, before search.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER items_leave_search;
         DROP TABLE item_search;
         DELETE FROM meta WHERE key = 'item_search';
         DROP TABLE article_state;
         DROP INDEX validators_source;
         ALTER TABLE validators DROP COLUMN source;
         PRAGMA user_version = 2;",
    )
    .unwrap();
    conn.execute_batch(crate::support::UNDO_SCHEDULE_STATE)
        .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path, 3).unwrap();
    assert_eq!(
        search(&store, "all", "khanh thanh rong"),
        ["Khánh thành cầu Rồng"]
    );
    assert_eq!(
        search(&store, "all", &party_work().title),
        [party_work().title]
    );
    // Retention keeps the index in step after the migration too.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE items SET first_seen = 0, sort_time = 0", [])
        .unwrap();
    assert_eq!(store.prune(30, 30, 0, &[]).unwrap(), 2);
    assert_eq!(
        search(&store, "all", "khanh thanh rong"),
        Vec::<String>::new()
    );
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

async fn reextract_over_several_batches_reextracts_every_page_once(backend: Backend) {
    use bantin::pipeline::{REEXTRACT_BATCH_PAGES, ReextractCounts, reextract};
    let database = TestStore::new(backend);
    let test = TestConfig::new().settings(&database.settings_line());
    let config = test.load();
    let service = bantin::daemon::Service::open(&config).expect("store opens");
    let store = service.store();
    let files = src(bantin::pipeline::FILES_SOURCE);
    let pages = 2 * REEXTRACT_BATCH_PAGES as u64 + 7;
    // Ten pages share each fetch time, so batches end inside a group of equal times.
    let start = Utc::now() - chrono::Duration::hours(1);
    let fetched_at = |n: u64| start + chrono::Duration::seconds((n / 10) as i64);
    let title = |n: u64| format!("Tiêu đề đã sửa của bài số {n}");
    for n in 0..pages {
        let mut article = synthetic::article(n, 120);
        let html = format!(
            "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{t}</title></head>\
             <body><article><h1>{t}</h1><p>{}</p></article></body></html>",
            article.body_text,
            t = title(n)
        );
        // What an older extractor made of the page.
        article.title = format!("Tiêu đề cũ {n}");
        let raw = RawPage {
            url: article.url.clone(),
            source: files.clone(),
            fetched_at: fetched_at(n),
            html,
        };
        let outcome = store.record(&article, &files, &[], Some(&raw)).unwrap();
        assert!(matches!(outcome, Outcome::New(_)), "{outcome:?}");
    }

    let counts = reextract(&service.pipeline, &config, None, None)
        .await
        .unwrap();
    assert_eq!(
        counts,
        ReextractCounts {
            pages,
            updated: pages,
            ..ReextractCounts::default()
        }
    );
    let mut titles: Vec<String> = store
        .latest_items(&CategoryId::from("all"), 10 * pages as usize)
        .unwrap()
        .into_iter()
        .map(|i| i.article.title)
        .collect();
    let mut expected: Vec<String> = (0..pages).map(title).collect();
    titles.sort();
    expected.sort();
    assert_eq!(titles, expected);

    // Only pages fetched since a time, the bound inside a group: the group from its start.
    let since = fetched_at(95);
    let counts = reextract(&service.pipeline, &config, None, Some(since))
        .await
        .unwrap();
    let later = (0..pages).filter(|n| fetched_at(*n) >= since).count() as u64;
    assert_eq!(
        counts,
        ReextractCounts {
            pages: later,
            unchanged: later,
            ..ReextractCounts::default()
        }
    );
}

/// Writes `count` saved article pages (synthetic, distinct stories) into `dir`.
fn write_saved_pages(dir: &Path, count: u64) {
    for n in 0..count {
        let a = synthetic::article(n, 120);
        let paragraphs: String = a
            .body_text
            .split('\n')
            .map(|p| format!("<p>{p}</p>"))
            .collect();
        let page = format!(
            "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{t}</title>\
             <link rel=\"canonical\" href=\"{u}\"></head><body><article><h1>{t}</h1>\
             <time datetime=\"2024-05-02T08:15:00+07:00\">02/05/2024 08:15</time>\
             <p class=\"sapo\">{l}</p><div class=\"content\">{paragraphs}</div></article></body></html>",
            t = a.title,
            u = a.url,
            l = a.lead.unwrap_or_default(),
        );
        std::fs::write(dir.join(format!("bai-{n:05}.html")), page).unwrap();
    }
}

fn sigkill_during_ingest_loses_and_doubles_nothing(backend: Backend) {
    const COUNT: u64 = 5000;
    let store = TestStore::new(backend);
    let test = crate::support::TestConfig::new().settings(&store.settings_line());
    test.load();
    let config = test.dir().join("bantin.toml");
    let pages = TempDir::new().unwrap();
    write_saved_pages(pages.path(), COUNT);
    let ingest = || {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin!("bantin"));
        command
            .args(["--config", config.to_str().unwrap(), "ingest"])
            .arg(pages.path())
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null());
        command
    };
    for _ in 0..3 {
        let mut child = ingest().spawn().expect("bantin ingest starts");
        std::thread::sleep(Duration::from_millis(rand::random_range(300..3000)));
        assert!(
            child.try_wait().unwrap().is_none(),
            "ingest is still running when it is killed"
        );
        // Child::kill sends SIGKILL on Unix.
        child.kill().expect("SIGKILL delivered");
        child.wait().unwrap();
    }
    let out = ingest()
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    store.assert_consistent();
    assert_eq!(store.item_count(), COUNT);
    for n in [0, 1, 2499, 4999] {
        assert!(store.knows_url(&synthetic::article(n, 10).url).unwrap());
    }
    let distinct = store.count("SELECT count(DISTINCT key) FROM items");
    assert_eq!(distinct, COUNT as i64);
    let links = store.count("SELECT count(*) FROM item_links");
    assert_eq!(links, COUNT as i64);
}

#[test]
fn workers_opening_a_new_postgres_database_at_once_migrate_it_once() {
    let test = TestStore::new(Backend::Postgres);
    test.execute(
        "DROP TABLE schema_version, schema_migrations; DROP TABLE items CASCADE;
        DROP TABLE item_links, item_categories, simhash_bands, raw_pages, validators,
        source_state, source_runs, meta, article_state, held_back, source_leases, host_leases,
        published_documents, publish_generation, host_requests",
    );
    let opened: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..6)
            .map(|_| s.spawn(|| bantin::store::open(&test.database, 3).map(|_| ())))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for result in &opened {
        assert!(result.is_ok(), "{result:?}");
    }
    let version = "SELECT max(version)::bigint FROM schema_version";
    assert_eq!(test.count("SELECT count(*)::bigint FROM schema_version"), 1);
    let migrations = test.count("SELECT count(*) FROM schema_migrations");
    assert_eq!(
        test.count(version),
        test.count("SELECT max(number)::bigint FROM schema_migrations"),
    );
    assert_eq!(
        test.count(version),
        TestStore::new(Backend::Postgres).count(version),
        "at the version a store opened alone reaches"
    );
    assert!(
        migrations >= 3,
        "each migration recorded once: {migrations}"
    );
    assert_eq!(test.count("SELECT count(*) FROM publish_generation"), 1);
}

fn document(name: &str, body: &str) -> PublishedDocument {
    PublishedDocument {
        name: name.to_owned(),
        body: body.as_bytes().to_vec(),
        etag: bantin::publish::strong_etag(body.as_bytes()),
        last_modified: Some(chrono::DateTime::from_timestamp_millis(1_714_000_000_000).unwrap()),
    }
}

fn published_documents_change_the_generation_only_when_they_change(backend: Backend) {
    let test = TestStore::new(backend);
    assert_eq!(
        test.published().unwrap(),
        Published::default(),
        "nothing yet"
    );
    let lock = test.lock_publishing().unwrap();
    let (rss, opml) = (
        document("all.rss", "<rss/>"),
        document("feeds.opml", "<opml/>"),
    );
    let first = test
        .save_published(&lock, &[rss.clone(), opml.clone()], &[])
        .unwrap();
    assert_eq!(
        test.save_published(&lock, &[], &[]).unwrap(),
        first,
        "no change, same generation"
    );
    let newer = document("all.rss", "<rss>new</rss>");
    let second = test
        .save_published(
            &lock,
            std::slice::from_ref(&newer),
            &["feeds.opml".to_owned()],
        )
        .unwrap();
    drop(lock);
    assert!(second > first, "{first} then {second}");
    // Another process sees the same documents and generation.
    let other = test.reopen(3);
    assert_eq!(other.publish_generation().unwrap(), second);
    assert_eq!(
        other.published().unwrap(),
        Published {
            generation: second,
            documents: vec![newer.clone()],
        }
    );
    let versions = other.published_versions().unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions["all.rss"].etag, newer.etag);
    assert_eq!(versions["all.rss"].last_modified, newer.last_modified);
}

fn publish_lock_is_held_by_one_store_at_a_time(backend: Backend) {
    let test = TestStore::new(backend);
    let other = test.reopen(3);
    let events = std::sync::Mutex::new(Vec::new());
    let held = test.lock_publishing().unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let _lock = other.lock_publishing().unwrap();
            events.lock().unwrap().push("second publisher in");
        });
        // Time for the second publisher to get in, were the lock not held.
        std::thread::sleep(Duration::from_millis(500));
        events.lock().unwrap().push("first publisher out");
        drop(held);
        waiter.join().unwrap();
    });
    assert_eq!(
        events.into_inner().unwrap(),
        ["first publisher out", "second publisher in"]
    );
}

fn concurrent_publishers_report_each_change_once(backend: Backend) {
    let test = TestStore::new(backend);
    let env = crate::support::feeds::FeedEnv::new();
    let mut config = env.config.clone();
    config.settings.database = test.database.clone();
    test.record(&party_work(), &src("a"), &[], None).unwrap();
    let reports: Vec<_> = std::thread::scope(|s| {
        let publishers: Vec<_> = (0..4)
            .map(|_| {
                let (store, config) = (test.reopen(3), &config);
                s.spawn(move || bantin::publish::publish_all(config, store.as_ref()).unwrap())
            })
            .collect();
        publishers.into_iter().map(|p| p.join().unwrap()).collect()
    });
    // Under the lock each publisher sees what the one before it stored.
    let changed = reports.iter().filter(|r| !r.changed.is_empty()).count();
    assert_eq!(changed, 1, "{reports:#?}");
    assert!(reports.iter().all(|r| r.generation == 1), "{reports:#?}");
}

const LEASE: Duration = Duration::from_secs(30);

/// A claim by `worker` on source `source` (host `news:80`) for `tick`, made at `now`.
fn claim(
    source: &str,
    worker: &str,
    tick: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
) -> ClaimRequest {
    ClaimRequest {
        source: src(source),
        hosts: vec!["news:80".into()],
        worker: worker.into(),
        tick: Some(tick),
        lease: LEASE,
        now,
        process: None,
        dead_processes: Vec::new(),
    }
}

/// A slot request by `worker` for a page on host `cdn:80`, at `now`.
fn slot(worker: &str, delay: Duration, now: chrono::DateTime<Utc>) -> SlotRequest {
    SlotRequest {
        host: "cdn:80".into(),
        url: "http://cdn/page".into(),
        worker: worker.into(),
        delay,
        concurrency: 8,
        hold: Duration::from_secs(60),
        now,
        dead_processes: Vec::new(),
    }
}

fn granted(answer: Claim) -> Vec<HostTurn> {
    match answer {
        Claim::Granted { hosts } => hosts,
        other => panic!("not granted: {other:?}"),
    }
}

fn a_source_is_held_by_one_worker_until_its_lease_runs_out(backend: Backend) {
    let store = TestStore::new(backend);
    let now = Utc::now();
    let expired = now + chrono::Duration::seconds(31);
    granted(store.claim_source(&claim("a", "w1", now, now)).unwrap());
    for other in ["a", "b"] {
        let answer = store.claim_source(&claim(other, "w2", now, now)).unwrap();
        assert!(
            matches!(&answer, Claim::Busy { worker, .. } if worker == "w1"),
            "source {other} of w1's host: {answer:?}"
        );
    }
    let leases = store.leases(now).unwrap();
    assert_eq!(leases.len(), 1);
    assert_eq!(
        (leases[0].source.as_str(), leases[0].worker.as_str()),
        ("a", "w1")
    );

    assert!(
        store.leases(expired).unwrap().is_empty(),
        "w1 died: nobody holds a"
    );
    let turns = granted(store.claim_source(&claim("a", "w2", now, expired)).unwrap());
    assert_eq!(turns.len(), 1);
    assert!(turns[0].abandoned, "w1 left without releasing: {turns:?}");
    assert_eq!(store.leases(expired).unwrap()[0].worker, "w2");
}

fn a_finished_tick_is_done_and_its_host_keeps_the_next_request_time(backend: Backend) {
    let store = TestStore::new(backend);
    let now = Utc::now();
    let next_tick = now + chrono::Duration::minutes(1);
    let free_at = now + chrono::Duration::seconds(3);
    granted(store.claim_source(&claim("a", "w1", now, now)).unwrap());
    let turn = HostTurn {
        host: "news:80".into(),
        not_before: Some(free_at),
        abandoned: false,
    };
    store
        .release_source(&src("a"), "w1", Some(now), &[turn])
        .unwrap();
    assert_eq!(
        store.claim_source(&claim("a", "w2", now, now)).unwrap(),
        Claim::Done,
        "w1 ran this tick"
    );
    let turns = granted(
        store
            .claim_source(&claim("a", "w2", next_tick, now))
            .unwrap(),
    );
    assert!(!turns[0].abandoned);
    assert_eq!(
        turns[0].not_before.map(|t| t.timestamp_millis()),
        Some(free_at.timestamp_millis()),
        "w2 waits out w1's delay"
    );

    // A run stopped short leaves its tick to be run again.
    let host = HostTurn {
        not_before: None,
        ..turns[0].clone()
    };
    store
        .release_source(&src("a"), "w2", None, &[host])
        .unwrap();
    granted(
        store
            .claim_source(&claim("a", "w1", next_tick, now))
            .unwrap(),
    );
}

fn renewal_keeps_a_lease_and_tells_of_one_taken_over(backend: Backend) {
    let store = TestStore::new(backend);
    let now = Utc::now();
    let secs = chrono::Duration::seconds;
    granted(store.claim_source(&claim("a", "w1", now, now)).unwrap());
    let kept = store.renew_leases("w1", &[], now + secs(60)).unwrap();
    assert_eq!(kept, vec![src("a")]);
    let answer = store
        .claim_source(&claim("a", "w2", now, now + secs(40)))
        .unwrap();
    assert!(matches!(answer, Claim::Busy { .. }), "renewed: {answer:?}");

    granted(
        store
            .claim_source(&claim("a", "w2", now, now + secs(61)))
            .unwrap(),
    );
    let kept = store.renew_leases("w1", &[], now + secs(120)).unwrap();
    assert!(kept.is_empty(), "w2 took a over: {kept:?}");
    assert_eq!(store.leases(now + secs(62)).unwrap()[0].worker, "w2");
}

fn claims_at_once_grant_a_source_to_one_worker(backend: Backend) {
    let store = TestStore::new(backend);
    let now = Utc::now();
    let host = HostTurn {
        host: "news:80".into(),
        not_before: None,
        abandoned: false,
    };
    // A race is won by chance: many rounds, each on free rows, as after any run.
    for round in 0..10 {
        let tick = now + chrono::Duration::minutes(round);
        let start = std::sync::Barrier::new(8);
        let answers: Vec<(String, Claim)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..8)
                .map(|n| {
                    let (store, start) = (store.store.clone(), &start);
                    let (source, worker) = (["a", "b"][n % 2], format!("w{n}"));
                    s.spawn(move || {
                        // A connection each, then all claim at the same moment.
                        store.ping().unwrap();
                        start.wait();
                        let answer = store.claim_source(&claim(source, &worker, tick, now));
                        (source.to_owned(), answer.unwrap())
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let winners: Vec<_> = answers
            .iter()
            .filter(|(_, a)| matches!(a, Claim::Granted { .. }))
            .collect();
        assert_eq!(winners.len(), 1, "one worker holds the host: {answers:?}");
        let holder = &store.leases(now).unwrap()[0];
        store
            .release_source(
                &holder.source,
                &holder.worker,
                None,
                std::slice::from_ref(&host),
            )
            .unwrap();
    }
}

fn host_slots_taken_at_once_are_one_delay_apart_and_wait_for_a_holder(backend: Backend) {
    let store = TestStore::new(backend);
    // Times are stored in milliseconds.
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let delay = Duration::from_secs(1);
    let start = std::sync::Barrier::new(8);
    let mut slots: Vec<i64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|n| {
                let (store, start) = (store.store.clone(), &start);
                s.spawn(move || {
                    store.ping().unwrap();
                    start.wait();
                    store.take_host_slot(&slot(&format!("w{n}"), delay, now))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| match w.join().unwrap().unwrap() {
                HostSlot::At { at, .. } => (at - now).num_milliseconds(),
                held => panic!("nobody holds the host: {held:?}"),
            })
            .collect()
    });
    slots.sort();
    assert_eq!(slots, (0..8).map(|n| n * 1000).collect::<Vec<_>>());

    // While a worker runs a source of the host, the host is its alone.
    let claim = ClaimRequest {
        hosts: vec!["cdn:80".into()],
        ..claim("a", "w1", now, now)
    };
    granted(store.claim_source(&claim).unwrap());
    let answer = store.take_host_slot(&slot("w2", delay, now)).unwrap();
    assert!(
        matches!(&answer, HostSlot::Held { worker, .. } if worker == "w1"),
        "{answer:?}"
    );
}

fn a_host_slot_waits_for_the_request_in_flight_to_end(backend: Backend) {
    let store = TestStore::new(backend);
    let now = Utc::now();
    // One request at a time: the next slot waits until the one in flight ends, or its
    // hold runs out (its worker died).
    let one_at_a_time = |worker: &str, now| SlotRequest {
        host: "one:80".into(),
        concurrency: 1,
        delay: Duration::ZERO,
        ..slot(worker, Duration::ZERO, now)
    };
    let HostSlot::At { ticket, .. } = store.take_host_slot(&one_at_a_time("w1", now)).unwrap()
    else {
        panic!("the host is free");
    };
    let answer = store.take_host_slot(&one_at_a_time("w2", now)).unwrap();
    assert!(
        matches!(&answer, HostSlot::Full { worker, .. } if worker == "w1"),
        "{answer:?}"
    );
    store.end_host_request(ticket).unwrap();
    let answer = store.take_host_slot(&one_at_a_time("w2", now)).unwrap();
    assert!(
        matches!(answer, HostSlot::At { .. }),
        "w1's request ended: {answer:?}"
    );
    let answer = store.take_host_slot(&one_at_a_time("w3", now)).unwrap();
    assert!(matches!(answer, HostSlot::Full { .. }), "{answer:?}");
    let later = now + chrono::Duration::seconds(61);
    let answer = store.take_host_slot(&one_at_a_time("w3", later)).unwrap();
    assert!(matches!(answer, HostSlot::At { .. }), "w2 died: {answer:?}");
}
