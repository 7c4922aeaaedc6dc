//! What ships around the binary: the container image, the systemd unit, shell
//! completions, the manual page and the configuration reference. `docker build` and
//! systemd are not available to the tests, so the files are checked for the points
//! that matter to an operator.

use std::collections::BTreeSet;

use assert_cmd::Command;
use bantin::config::file::{
    CategoryFile, ExtractFile, FetchFile, LinksFile, RefreshFile, RuleFile, ServerFile,
    SettingsFile, SiteFile, SourceFile, TestUrlFile, WorkersFile,
};
use serde::de::{self, Deserialize, Visitor};

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The instructions of a Dockerfile, continuation lines joined.
fn instructions(dockerfile: &str) -> Vec<String> {
    dockerfile
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn dockerfile_builds_in_stages_and_runs_the_daemon_as_a_user_with_data_and_healthcheck() {
    let lines = instructions(&read("Dockerfile"));
    let starting = |word: &str| -> Vec<&String> {
        lines
            .iter()
            .filter(|l| l.split_whitespace().next() == Some(word))
            .collect()
    };
    let stages = starting("FROM");
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("COPY --from=")),
        "the runtime stage copies the binary from the build stage"
    );
    let last_stage = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let runtime = &lines[last_stage..];
    let user = runtime
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets a USER");
    assert!(!["root", "0"].contains(&user.trim()), "runs as {user}");
    assert!(
        runtime
            .iter()
            .any(|l| l.starts_with("VOLUME") && l.contains("/data")),
        "/data is a volume"
    );
    let health = runtime
        .iter()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("a HEALTHCHECK");
    assert!(health.contains("/healthz"), "{health}");
    let cmd = runtime
        .iter()
        .filter(|l| l.starts_with("CMD") || l.starts_with("ENTRYPOINT"))
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(cmd.contains("bantin") && cmd.contains("\"run\""), "{cmd}");
}

/// `Key=value` lines of the unit file.
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn systemd_unit_is_sandboxed_keeps_state_and_outwaits_the_shutdown_deadline() {
    let unit = read("packaging/bantin.service");
    let dynamic = unit_value(&unit, "DynamicUser") == Some("yes");
    let user = unit_value(&unit, "User").is_some_and(|u| u != "root");
    assert!(dynamic || user, "DynamicUser=yes or a dedicated User=");
    assert_eq!(unit_value(&unit, "ProtectSystem"), Some("strict"));
    assert!(unit_value(&unit, "StateDirectory").is_some_and(|d| !d.is_empty()));
    let exec = unit_value(&unit, "ExecStart").expect("ExecStart");
    assert!(exec.ends_with(" run"), "{exec}");
    let stop = unit_value(&unit, "TimeoutStopSec").expect("TimeoutStopSec");
    let stop = humantime::parse_duration(stop)
        .or_else(|_| stop.parse::<u64>().map(std::time::Duration::from_secs))
        .expect("TimeoutStopSec is a duration");
    let config = bantin::config::Config::load(std::path::Path::new("config/bantin.toml"))
        .expect("the shipped configuration is valid");
    assert!(
        stop > config.settings.shutdown_timeout,
        "TimeoutStopSec {stop:?} must outlast shutdown_timeout {:?}",
        config.settings.shutdown_timeout
    );
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef bantin"),
        ("fish", "complete -c bantin"),
    ] {
        let out = Command::new(assert_cmd::cargo::cargo_bin!("bantin"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell} script lacks {marker:?}");
        for command in ["crawl", "serve", "check"] {
            assert!(script.contains(command), "{shell} script lacks {command}");
        }
    }
}

#[test]
fn man_page_documents_the_commands_and_options() {
    let out = Command::new(assert_cmd::cargo::cargo_bin!("bantin"))
        .arg("man")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH bantin 1"), "a section 1 man page");
    for word in ["\\-\\-config", "crawl", "serve", "completions"] {
        assert!(page.contains(word), "the man page lacks {word}");
    }
}

/// The field names serde expects for `T`: a deserializer that only asks for a struct
/// and keeps the field list it is given.
fn fields_of<'de, T: Deserialize<'de>>() -> BTreeSet<String> {
    struct Recorder(Vec<&'static str>);
    #[derive(Debug)]
    struct Done;
    impl std::fmt::Display for Done {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fields recorded")
        }
    }
    impl std::error::Error for Done {}
    impl de::Error for Done {
        fn custom<M: std::fmt::Display>(_: M) -> Done {
            Done
        }
    }
    impl<'de> de::Deserializer<'de> for &mut Recorder {
        type Error = Done;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Done> {
            Err(Done)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Done> {
            self.0.extend(fields);
            Err(Done)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }
    let mut recorder = Recorder(Vec::new());
    let _ = T::deserialize(&mut recorder);
    recorder.0.into_iter().map(str::to_owned).collect()
}

/// `(key, example)` of each row of the table under `heading` in the reference.
fn documented(reference: &str, heading: &str) -> Vec<(String, String)> {
    let start = reference
        .lines()
        .position(|l| l.trim_start_matches('#').trim() == heading)
        .unwrap_or_else(|| panic!("no heading {heading:?} in docs/configuration.md"));
    let cell = |c: &str| c.trim().trim_matches('`').to_owned();
    reference
        .lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
            assert_eq!(
                cells.len(),
                5,
                "key, type, default, example, meaning: {row}"
            );
            assert!(
                cells.iter().all(|c| !c.trim().is_empty()),
                "empty cell: {row}"
            );
            (cell(cells[0]), cell(cells[3]))
        })
        .collect()
}

/// Every key of `T` is documented under `heading`, nothing else is, and the examples
/// together make a value `T` accepts.
fn check_table<T: for<'de> Deserialize<'de>>(reference: &str, heading: &str) {
    let rows = documented(reference, heading);
    let keys: BTreeSet<String> = rows.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        fields_of::<T>(),
        "documented keys vs. the structs under {heading:?}"
    );
    let example: String = rows.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    if let Err(err) = toml::from_str::<T>(&example) {
        panic!("the examples under {heading:?} are rejected: {err}\n{example}");
    }
}

#[test]
fn configuration_reference_documents_every_key_of_every_file() {
    let reference = read("docs/configuration.md");
    check_table::<SettingsFile>(&reference, "`bantin.toml`");
    check_table::<FetchFile>(&reference, "`[fetch]`");
    check_table::<ServerFile>(&reference, "`[server]`");
    check_table::<WorkersFile>(&reference, "`[workers]`");
    check_table::<CategoryFile>(&reference, "`categories.toml`: `[[category]]`");
    check_table::<RuleFile>(&reference, "`[[category.rule]]`");
    check_table::<SiteFile>(&reference, "`sources/<site>.toml`");
    check_table::<SourceFile>(&reference, "`[[source]]`");
    check_table::<LinksFile>(&reference, "`[source.links]`");
    check_table::<ExtractFile>(&reference, "`[extract]` and `[source.extract]`");
    check_table::<RefreshFile>(&reference, "`[refresh]` and `[source.refresh]`");
    check_table::<TestUrlFile>(&reference, "`[[source.test_urls]]`");
}

/// A service of `deploy/compose.yaml`, as far as the tests look.
#[derive(Debug, serde::Deserialize)]
struct ComposeService {
    build: Option<ComposeBuild>,
    #[serde(default)]
    environment: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    volumes: Vec<String>,
    #[serde(default)]
    ports: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
struct ComposeBuild {
    context: String,
    dockerfile: String,
}

#[derive(Debug, serde::Deserialize)]
struct Compose {
    services: std::collections::BTreeMap<String, ComposeService>,
}

#[test]
fn compose_runs_two_workers_from_the_dockerfile_on_its_postgres() {
    let compose: Compose =
        serde_norway::from_str(&read("deploy/compose.yaml")).expect("compose.yaml is YAML");
    let postgres = &compose.services["postgres"].environment;
    let workers: Vec<(&String, &ComposeService)> = compose
        .services
        .iter()
        .filter(|(_, s)| s.build.is_some())
        .collect();
    assert!(workers.len() >= 2, "two workers at least: {workers:?}");

    // The settings every worker mounts, loaded beside the shipped sources and
    // categories as in the image.
    let etc = tempfile::tempdir().unwrap();
    crate::support::daemon::copy_dir(std::path::Path::new("config"), etc.path());
    std::fs::copy("deploy/workers.toml", etc.path().join("workers.toml")).unwrap();
    let config = bantin::config::Config::load(&etc.path().join("workers.toml"))
        .expect("deploy/workers.toml is a valid configuration");
    let bantin::config::Database::Postgres(url) = &config.settings.database else {
        panic!(
            "the workers share PostgreSQL: {:?}",
            config.settings.database
        );
    };
    let url = url::Url::parse(url).unwrap();
    assert_eq!(
        url.host_str(),
        Some("postgres"),
        "the compose service's name"
    );
    assert_eq!(url.username(), postgres["POSTGRES_USER"]);
    assert_eq!(url.password(), Some(postgres["POSTGRES_PASSWORD"].as_str()));
    assert_eq!(url.path(), format!("/{}", postgres["POSTGRES_DB"]));

    let listen_port = config.settings.listen.port();
    let mut host_ports = BTreeSet::new();
    for (name, worker) in workers {
        let build = worker.build.as_ref().unwrap();
        let dockerfile = std::path::Path::new("deploy")
            .join(&build.context)
            .join(&build.dockerfile);
        assert_eq!(
            std::fs::canonicalize(&dockerfile).unwrap(),
            std::fs::canonicalize("Dockerfile").unwrap(),
            "{name} is built from the repository's Dockerfile"
        );
        let settings = &worker.environment["BANTIN_CONFIG"];
        assert!(
            worker
                .volumes
                .contains(&format!("./workers.toml:{settings}:ro")),
            "{name} reads the shared settings: {worker:?}"
        );
        let [port] = worker.ports.as_slice() else {
            panic!("{name} publishes one port: {worker:?}");
        };
        let (host, container) = port.split_once(':').expect("HOST:CONTAINER");
        assert_eq!(container.parse::<u16>().unwrap(), listen_port, "{name}");
        assert!(
            host_ports.insert(host.to_owned()),
            "{name} has a port of its own"
        );
    }
}
