//! Live reload over a configuration in a temporary folder: a valid edit is swapped in,
//! an invalid one is logged with file:line:column and the running configuration stays.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bantin::config::Config;
use bantin::reload::{Reloader, watch_config};
use tokio_util::sync::CancellationToken;

fn source(id: &str, schedule: &str) -> String {
    format!(
        "[[source]]\nid = \"{id}\"\nkind = \"listing\"\nurls = [\"http://127.0.0.1:9/{id}/\"]\n\
         schedule = \"{schedule}\"\n[source.links]\npattern = \"-i\\\\d+/$\"\n\n"
    )
}

/// A configuration folder with one source, `a`, in `sources/site.toml`.
fn write_config(dir: &Path) -> Arc<Config> {
    std::fs::create_dir_all(dir.join("sources")).unwrap();
    std::fs::write(
        dir.join("bantin.toml"),
        "data_dir = \"data\"\nfeeds_dir = \"feeds\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("categories.toml"),
        "[[category]]\nid = \"news\"\ntitle = \"News\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("sources/site.toml"), source("a", "*/15 * * * *")).unwrap();
    Arc::new(Config::load(&dir.join("bantin.toml")).unwrap())
}

fn ids(config: &Config) -> Vec<String> {
    config.sources.iter().map(|s| s.id.to_string()).collect()
}

/// Log lines written on this thread while the guard lives.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || logs.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn valid_edit_is_swapped_in() {
    let dir = tempfile::tempdir().unwrap();
    let initial = write_config(dir.path());
    let shutdown = CancellationToken::new();
    let (mut rx, task) =
        watch_config(&dir.path().join("bantin.toml"), initial, shutdown.clone()).unwrap();

    std::fs::write(
        dir.path().join("sources/site.toml"),
        source("a", "*/15 * * * *") + &source("b", "*/5 * * * *"),
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&rx.borrow_and_update()), ["a", "b"]);

    // A new source file in the sources folder is picked up too.
    std::fs::write(
        dir.path().join("sources/other.toml"),
        source("c", "*/5 * * * *"),
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), rx.changed())
        .await
        .unwrap()
        .unwrap();
    let mut now = ids(&rx.borrow());
    now.sort();
    assert_eq!(now, ["a", "b", "c"]);

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn invalid_edit_keeps_the_running_config_and_logs_where() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let initial = write_config(dir.path());
    let shutdown = CancellationToken::new();
    let (mut rx, task) =
        watch_config(&dir.path().join("bantin.toml"), initial, shutdown.clone()).unwrap();

    // Line 5, column 12: the schedule's value.
    std::fs::write(
        dir.path().join("sources/site.toml"),
        source("a", "every minute"),
    )
    .unwrap();
    let limit = tokio::time::Instant::now() + Duration::from_secs(20);
    while !logs.text().contains("running configuration stays") {
        assert!(
            tokio::time::Instant::now() < limit,
            "no error logged: {}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = logs.text();
    assert!(text.contains("ERROR"), "{text}");
    assert!(
        text.contains("site.toml:5:12: schedule \"every minute\""),
        "{text}"
    );
    assert!(
        !rx.has_changed().unwrap(),
        "an invalid configuration was published"
    );
    assert_eq!(rx.borrow().sources[0].schedule_text, "*/15 * * * *");

    // Fixing the file is picked up.
    std::fs::write(
        dir.path().join("sources/site.toml"),
        source("a", "*/10 * * * *"),
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rx.borrow().sources[0].schedule_text, "*/10 * * * *");

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn reload_publishes_only_valid_configs() {
    // Capturing here too: a log callsite first hit on a thread without a subscriber is
    // cached as disabled, which would hide the other test's lines.
    let logs = Logs::default();
    let _guard = logs.capture();
    let dir = tempfile::tempdir().unwrap();
    let reloader = Reloader::new(&dir.path().join("bantin.toml"), write_config(dir.path()));
    let rx = reloader.subscribe();

    std::fs::write(
        dir.path().join("categories.toml"),
        "[[category]]\nid = \"Not A Slug\"\ntitle = \"X\"\n",
    )
    .unwrap();
    assert!(!reloader.reload("test").await);
    assert!(
        logs.text().contains("categories.toml:2:6"),
        "{}",
        logs.text()
    );
    assert!(!rx.has_changed().unwrap());
    assert_eq!(reloader.current().categories[0].id.as_str(), "news");

    std::fs::write(
        dir.path().join("categories.toml"),
        "[[category]]\nid = \"news\"\ntitle = \"News\"\n[[category]]\nid = \"sport\"\ntitle = \"Sport\"\n",
    )
    .unwrap();
    assert!(reloader.reload("test").await);
    assert!(rx.has_changed().unwrap());
    assert_eq!(reloader.current().categories.len(), 2);
}

#[tokio::test]
async fn first_source_file_in_an_empty_sources_folder_is_picked_up() {
    // Only the sources folder is watched here: no configuration file lives in it yet.
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    std::fs::create_dir(dir.path().join("sites")).unwrap();
    let settings = dir.path().join("bantin.toml");
    std::fs::write(
        &settings,
        "data_dir = \"data\"\nfeeds_dir = \"feeds\"\nsources = \"sites/*.toml\"\n",
    )
    .unwrap();
    let initial = Arc::new(Config::load(&settings).unwrap());
    assert!(ids(&initial).is_empty());
    let shutdown = CancellationToken::new();
    let (mut rx, task) = watch_config(&settings, initial, shutdown.clone()).unwrap();

    std::fs::write(dir.path().join("sites/a.toml"), source("a", "*/5 * * * *")).unwrap();
    tokio::time::timeout(Duration::from_secs(20), rx.changed())
        .await
        .expect("the new source file is seen")
        .unwrap();
    assert_eq!(ids(&rx.borrow()), ["a"]);

    shutdown.cancel();
    task.await.unwrap();
}
