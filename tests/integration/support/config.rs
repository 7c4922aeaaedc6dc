//! Configurations for tests: `bantin.toml`, `categories.toml` and source files written
//! to a temporary folder and read with `Config::load`, like an operator's.
//!
//! ```ignore
//! let config = TestConfig::new()
//!     .fetch("timeout = \"1s\"")
//!     .site("news", &format!("[[source]]\nid = \"news\"\nkind = \"listing\"\nurls = [\"{}\"]\nschedule = \"0 * * * *\"\n", site.url("/list/")));
//! let cfg = config.load();
//! ```

use std::path::Path;

use bantin::config::Config;
use tempfile::TempDir;

/// `[fetch]` keys every test starts from: fast, and local addresses allowed.
const TEST_FETCH: &[(&str, &str)] = &[
    ("timeout", "\"5s\""),
    ("connect_timeout", "\"2s\""),
    ("max_body_bytes", "\"2 MiB\""),
    ("max_redirects", "5"),
    ("per_host_concurrency", "4"),
    ("per_host_delay", "\"0s\""),
    ("global_concurrency", "16"),
    ("obey_robots", "true"),
    ("robots_ttl", "\"1h\""),
    ("allow_private_networks", "true"),
    ("retry_after_scope", "\"url\""),
    ("max_retries", "0"),
    ("backoff_base", "\"10ms\""),
    ("backoff_cap", "\"100ms\""),
];

/// A configuration folder being written; kept on disk while this value lives.
pub struct TestConfig {
    dir: TempDir,
    fetch: Vec<(String, String)>,
    settings: String,
    user_agent: String,
    sites: Vec<(String, String)>,
    categories: String,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TestConfig {
    pub fn new() -> Self {
        TestConfig {
            dir: tempfile::tempdir().expect("temp dir"),
            fetch: TEST_FETCH
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            settings: String::new(),
            user_agent: "bantin-test/0.1".into(),
            sites: Vec::new(),
            categories: String::new(),
        }
    }

    /// Sets `[fetch]` keys, one `key = value` per line, over the test defaults.
    pub fn fetch(mut self, lines: &str) -> Self {
        for line in lines.lines().filter(|l| !l.trim().is_empty()) {
            let (key, value) = line.split_once('=').expect("fetch line is key = value");
            let (key, value) = (key.trim().to_owned(), value.trim().to_owned());
            match self.fetch.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => self.fetch.push((key, value)),
            }
        }
        self
    }

    /// Adds top-level `bantin.toml` lines, e.g. `listen = "127.0.0.1:9000"`.
    pub fn settings(mut self, lines: &str) -> Self {
        self.settings.push_str(lines);
        self.settings.push('\n');
        self
    }

    /// Sets `user_agent` (a site's request log then tells processes apart).
    pub fn user_agent(mut self, agent: &str) -> Self {
        self.user_agent = agent.to_owned();
        self
    }

    /// Adds `sources/<name>.toml` with this text.
    pub fn site(mut self, name: &str, toml: &str) -> Self {
        self.sites.push((name.to_owned(), toml.to_owned()));
        self
    }

    /// Sets the text of `categories.toml`.
    pub fn categories(mut self, toml: &str) -> Self {
        self.categories = toml.to_owned();
        self
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the files and loads them; panics with every diagnostic when invalid.
    pub fn load(&self) -> Config {
        let root = self.write();
        match Config::load(&root.join("bantin.toml")) {
            Ok(config) => config,
            Err(bantin::config::ConfigError::Invalid(diags)) => {
                panic!("test config is invalid: {diags:#?}")
            }
            Err(err) => panic!("test config: {err}"),
        }
    }

    /// Writes the files (valid or not) and returns the folder holding `bantin.toml`.
    pub fn write(&self) -> &Path {
        let root = self.dir.path();
        let sources = root.join("sources");
        std::fs::create_dir_all(&sources).expect("create sources dir");
        let mut settings = format!(
            "data_dir = \"data\"\nfeeds_dir = \"feeds\"\nsources = \"sources/*.toml\"\ncategories = \"categories.toml\"\nuser_agent = {:?}\n",
            self.user_agent
        );
        settings.push_str(&self.settings);
        settings.push_str("\n[fetch]\n");
        for (k, v) in &self.fetch {
            settings.push_str(&format!("{k} = {v}\n"));
        }
        std::fs::write(root.join("bantin.toml"), settings).expect("write bantin.toml");
        std::fs::write(root.join("categories.toml"), &self.categories)
            .expect("write categories.toml");
        for (name, text) in &self.sites {
            std::fs::write(sources.join(format!("{name}.toml")), text).expect("write source");
        }
        root
    }
}

/// The `news` listing source of the fixture news site whose list page is `listing`:
/// its stories' links by selector and URL pattern, on `schedule`.
pub fn news_listing_source(listing: &url::Url, schedule: &str) -> String {
    format!(
        r#"
[[source]]
id = "news"
kind = "listing"
urls = ["{listing}"]
schedule = "{schedule}"

[source.links]
selector = "div.list article.story"
pattern = "-i\\d{{5}}/?$"
"#
    )
}
