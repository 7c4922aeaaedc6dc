//! A test configuration, a real SQLite store in a temporary folder, and articles to
//! publish.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bantin::config::{Config, Database};
use bantin::model::{Article, CategoryId, SourceId};
use bantin::store::SqliteStore;
use bantin::store::Store;
use chrono::DateTime;
use tempfile::TempDir;
use url::Url;

/// The test configuration with its state and feeds in a temporary folder.
pub struct FeedEnv {
    #[allow(dead_code)]
    pub dir: TempDir,
    pub config: Config,
    pub store: Arc<SqliteStore>,
}

impl FeedEnv {
    pub fn new() -> FeedEnv {
        FeedEnv::with(|_| {})
    }

    /// Like [`FeedEnv::new`], with settings changed by `edit` before the store opens.
    pub fn with(edit: impl FnOnce(&mut Config)) -> FeedEnv {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut config = Config::load(Path::new("tests/fixtures/publish/config/bantin.toml"))
            .expect("the test configuration is valid");
        config.settings.data_dir = dir.path().join("data");
        config.settings.feeds_dir = dir.path().join("feeds");
        edit(&mut config);
        let db = config.settings.data_dir.join("bantin.sqlite3");
        config.settings.database = Database::Sqlite(db.clone());
        let store = Arc::new(
            SqliteStore::open(&db, config.settings.near_duplicate_distance).expect("store opens"),
        );
        FeedEnv { dir, config, store }
    }

    /// Stores an article from source `news` in the given categories.
    pub fn add(&self, article: &Article, categories: &[&str]) {
        let categories: Vec<CategoryId> = categories.iter().map(|c| CategoryId::from(*c)).collect();
        self.store
            .record(article, &SourceId::from("news"), &categories, None)
            .expect("article stored");
    }

    pub fn feed_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.config.settings.feeds_dir.join(name)).expect("feed file")
    }
}

/// A complete article; `n` makes the URL, title and body distinct.
pub fn article(n: u32, title: &str, published: &str) -> Article {
    let body_text = format!(
        "{title}. Đoạn thứ {n}: nội dung bài viết số {n} về hoạt động của lực lượng. \
         Các chiến sĩ làm việc suốt đêm để bảo đảm an ninh trật tự cho người dân số {n}."
    );
    Article {
        url: Url::parse(&format!("https://news.example/tin-tuc/bai-{n}-i{n}00/")).unwrap(),
        canonical_url: None,
        title: title.to_owned(),
        published: Some(DateTime::parse_from_rfc3339(published).unwrap()),
        updated: None,
        authors: vec![format!("Phóng viên {n}")],
        lead: Some(format!("(CAO) Tóm tắt bài số {n}.")),
        // As stored: the text escaped, as the sanitizer leaves it.
        body_html: format!("<p>{}</p>", html_escape::encode_text(&body_text)),
        body_text,
        image: None,
        tags: Vec::new(),
        section: None,
        language: Some("vi".into()),
        provenance: BTreeMap::new(),
    }
}

/// Runs the `rss` crate's validation. It rejects `length="0"`, which the RSS Best
/// Practices Profile prescribes for an enclosure whose size is unknown (bantin never
/// downloads images), so enclosures are checked here and then set aside.
pub fn validate_rss(channel: &rss::Channel) {
    let mut channel = channel.clone();
    for item in &mut channel.items {
        if let Some(enclosure) = item.enclosure.take() {
            url::Url::parse(&enclosure.url).expect("enclosure url is absolute");
            assert!(enclosure.mime_type.starts_with("image/"));
            assert!(enclosure.length.parse::<u64>().is_ok());
        }
    }
    rss::validation::Validate::validate(&channel).expect("RSS validates");
}
