//! The command line: subcommands, their arguments, and what each one runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use tokio_util::sync::CancellationToken;

use crate::config::{Config, Source};
use crate::daemon::{self, Service};
use crate::model::{Outcome, SourceId, SourceRun};
use crate::pipeline::{self, RunProgress};

/// Turns news websites into clean, deduplicated RSS, Atom and JSON feeds per category.
#[derive(Debug, Parser)]
#[command(name = "bantin", version, about)]
pub struct Cli {
    /// The daemon's settings file; source and category files are found relative to it.
    #[arg(
        long,
        global = true,
        env = "BANTIN_CONFIG",
        default_value = "config/bantin.toml"
    )]
    pub config: PathBuf,
    /// Log format on stderr. Filter with RUST_LOG, e.g. RUST_LOG=bantin=debug.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines, coloured on a terminal.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration and print every problem with file:line:column.
    Check {
        /// Also fetch every source's `test_urls` and report each field that no longer
        /// matches its expected value (exit 1 when one does not).
        #[arg(long)]
        online: bool,
    },
    /// Run the daemon: every source on its schedule, live config reload, and the
    /// HTTP server, until SIGINT/SIGTERM.
    Run {
        /// Run every source once, publish, then only serve (no schedule).
        #[arg(long)]
        once: bool,
        /// Only serve, for a serving tier behind a load balancer: no crawling and no
        /// publishing. The feeds are those the crawling workers of the same
        /// `database_url` publish; a publish is answered here within a second.
        #[arg(long, conflicts_with = "once")]
        no_crawl: bool,
    },
    /// A complete offline tour: serve a bundled sample news site on 127.0.0.1, crawl it,
    /// publish the feeds and serve them. Needs no network.
    Demo {
        /// Where the feeds and the index page are served.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Where the sample site is served (a fixed port keeps item links and ids the
        /// same from run to run).
        #[arg(long, default_value = crate::demo::DEFAULT_SITE_LISTEN)]
        site_listen: std::net::SocketAddr,
        /// Keep the demo's configuration, database and feeds in this folder (default: a
        /// temporary folder removed on exit).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run one pass over the sources (all by default), publish the feeds, and exit.
    /// Exit code 1 when a source failed as a whole.
    Crawl {
        /// Only this source; repeat for several.
        #[arg(long = "source", value_name = "ID")]
        sources: Vec<String>,
        /// Re-check every young article now (conditionally), not only those due.
        #[arg(long)]
        refresh: bool,
    },
    /// Store saved HTML pages (files, or folders walked for *.html) through the same
    /// extract, dedup and classify steps as a crawl, then publish.
    Ingest {
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
        /// The original address of the page (only with a single file).
        #[arg(long)]
        url: Option<url::Url>,
        /// Apply this source's selectors, time zone and categories.
        #[arg(long, value_name = "ID")]
        source: Option<String>,
    },
    /// Extract and classify stored raw pages again (after a selector or keyword fix),
    /// updating items in place without fetching anything; then publish.
    Reextract {
        /// Only pages of this source.
        #[arg(long, value_name = "ID")]
        source: Option<String>,
        /// Only pages fetched since this date (YYYY-MM-DD or RFC 3339).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
    },
    /// Show how an article is categorized: which rule matched which words, and why
    /// the others did not.
    Classify {
        /// A stored item id, an item's guid as its feeds give it (`tag:...`), a saved
        /// HTML page (extracted first, with `--source`'s selectors when given), or a
        /// JSON article file (`title`, `lead`, `body_text`).
        #[arg(value_name = "ID|GUID|FILE")]
        target: String,
        /// Accepted for older scripts: explaining is what `classify` does.
        #[arg(long, hide = true)]
        explain: bool,
        /// Extract a saved HTML page with this source's selectors and time zone.
        #[arg(long, value_name = "ID")]
        source: Option<String>,
    },
    /// Re-render every feed from the store; write the files that changed.
    Publish,
    /// Serve the feeds, the index page, /healthz and /metrics until stopped.
    Serve,
    /// Copy the SQLite store into an empty PostgreSQL database and print how many rows
    /// moved per table. Items keep their ids and the feeds stay the same; then point
    /// `database_url` at the database. Stop the daemon first: what it stores meanwhile
    /// is not copied.
    Migrate {
        /// The PostgreSQL database, e.g. postgres://bantin:secret@db.internal/bantin.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Replace the bantin data the target database holds (refused without it).
        #[arg(long)]
        replace: bool,
    },
    /// Extract pages (saved files or addresses) and print each as one line of JSON,
    /// without storing anything.
    Preview(PreviewArgs),
    /// Propose a listing source for a new site: the section page's list of article
    /// links, next-page link and per-field selectors checked on a sample of its
    /// articles, printed as a commented `[[source]]` block. Exit 1 when the page has no
    /// recognisable list of articles.
    Suggest(SuggestArgs),
    /// Print a shell completion script, e.g.
    /// `bantin completions bash > /usr/share/bash-completion/completions/bantin`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `bantin man > /usr/share/man/man1/bantin.1`.
    Man,
}

#[derive(Debug, clap::Args)]
pub struct PreviewArgs {
    /// Saved HTML files (or page addresses) to extract.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<String>,
    /// The address the saved files were downloaded from; relative links resolve against it.
    #[arg(long)]
    pub url: Option<url::Url>,
    /// Apply this source's selectors and time zone from the configuration. Without it,
    /// the source whose addresses or allowed domains match the page's address is applied.
    #[arg(long, value_name = "ID", conflicts_with = "no_source")]
    pub source: Option<String>,
    /// Apply no source: the generic extraction, in the configured default time zone.
    #[arg(long)]
    pub no_source: bool,
}

#[derive(Debug, clap::Args)]
pub struct SuggestArgs {
    /// A section page's address, or a saved section page with its article pages saved
    /// beside it (each named after the last part of its address).
    #[arg(value_name = "URL|FILE")]
    pub input: String,
    /// How many of the list's articles are read to choose the selectors.
    #[arg(long, value_name = "N", default_value_t = crate::suggest::DEFAULT_SAMPLE_ARTICLES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=50))]
    pub articles: usize,
    /// The source id (a slug); default: the site's host and section.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Also save the block as a site file (e.g. config/sources/new-site.toml); an
    /// existing file is not replaced.
    #[arg(long, value_name = "PATH")]
    pub write: Option<PathBuf>,
    /// The address a saved section page was downloaded from (default: its canonical link).
    #[arg(long)]
    pub url: Option<url::Url>,
}

/// A command line that is well-formed for clap but asks for something impossible.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Command {
    /// The log level when `RUST_LOG` does not say: the demo prints its own summary on
    /// stdout, so its log shows only what went wrong.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Demo { .. } => "warn",
            _ => "info",
        }
    }
}

/// Starts `tracing`: human or JSON lines on stderr, filtered by `RUST_LOG`, else at
/// `default_level`.
pub fn init_logging(format: LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check { online: false } => check(&cli.config),
        Command::Check { online: true } => check_online(&cli.config).await,
        Command::Run { once, no_crawl } => {
            let options = daemon::RunOptions { once, no_crawl };
            run_daemon(&cli.config, options).await
        }
        Command::Demo {
            listen,
            site_listen,
            dir,
        } => {
            let temp = tempfile::Builder::new().prefix("bantin-demo-").tempdir()?;
            let dir = dir.unwrap_or_else(|| temp.path().to_owned());
            let token = CancellationToken::new();
            daemon::cancel_on_signals(token.clone());
            crate::demo::run(&dir, listen, site_listen, token).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Crawl { sources, refresh } => crawl(&cli.config, &sources, refresh).await,
        Command::Ingest { paths, url, source } => {
            ingest(&cli.config, &paths, url.as_ref(), source.as_deref()).await
        }
        Command::Reextract { source, since } => {
            reextract(&cli.config, source.as_deref(), since.as_deref()).await
        }
        Command::Classify { target, source, .. } => {
            classify_explain(&cli.config, &target, source.as_deref())
        }
        Command::Preview(args) => preview(&cli.config, &args).await,
        Command::Suggest(args) => suggest(&cli.config, &args).await,
        Command::Publish => publish(&cli.config).await,
        Command::Serve => serve(&cli.config).await,
        Command::Migrate { to, replace } => migrate(&cli.config, &to, replace),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "bantin", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .context("writing the manual page")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run_daemon(path: &Path, options: daemon::RunOptions) -> anyhow::Result<ExitCode> {
    let config = Arc::new(load_config(path)?);
    let service = Service::open(&config).context("opening the store")?;
    let listener = daemon::bind(config.settings.listen).await?;
    print_listening(&listener, &config);
    let token = CancellationToken::new();
    daemon::cancel_on_signals(token.clone());
    daemon::run_with(service, listener, path, config, options, token).await?;
    Ok(ExitCode::SUCCESS)
}

/// The address a server command listens on, on stdout, so the operator (or a script)
/// knows where to look even with port 0.
fn print_listening(listener: &tokio::net::TcpListener, config: &Config) {
    match listener.local_addr() {
        Ok(addr) => println!(
            "listening on http://{addr}/ (feeds published as {})",
            config.settings.base_url
        ),
        Err(err) => eprintln!("warning: cannot tell the listening address: {err}"),
    }
}

/// Reads and validates the configuration.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}

fn classify_explain(path: &Path, target: &str, source: Option<&str>) -> anyhow::Result<ExitCode> {
    let config = load_config(path)?;
    let source = source
        .map(|id| chosen_sources(&config, &[id.to_owned()]))
        .transpose()?
        .and_then(|mut s| s.pop());
    let file = Path::new(target);
    let article = if file.is_file() {
        article_from_file(file, source.as_ref(), &config)?
    } else {
        stored_article(&config, target)?
    };
    print!(
        "{}",
        crate::classify::render_explanation(&article, &config.categories)
    );
    Ok(ExitCode::SUCCESS)
}

/// The article in a saved HTML page (extracted as `preview` would) or a JSON file.
fn article_from_file(
    file: &Path,
    source: Option<&Source>,
    config: &Config,
) -> anyhow::Result<crate::model::Article> {
    let name = file.display();
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("json") => {
            let json = std::fs::read_to_string(file).with_context(|| format!("reading {name}"))?;
            Ok(crate::classify::article_from_json(&json)
                .with_context(|| format!("{name} is not a JSON article"))?)
        }
        Some("html" | "htm") => {
            let html = pipeline::read_saved_page(file)?;
            let url = pipeline::saved_page_url(file, None);
            let (rules, tz) = match source {
                Some(s) => (s.extract.clone(), s.timezone),
                None => (Default::default(), config.settings.timezone),
            };
            let input = crate::extract::Input {
                url: &url,
                rules: &rules,
                zone: tz,
                fetched_at: chrono::Utc::now(),
            };
            Ok(crate::extract::article(&html, &input).with_context(|| {
                format!("extracting {name}; `bantin preview {name}` shows what was found")
            })?)
        }
        _ => Err(UsageError(format!(
            "{name}: classify reads saved HTML pages (*.html, *.htm) and JSON articles (*.json)"
        ))
        .into()),
    }
}

/// The stored article of an item, by its id or by the guid its feeds give it
/// (`tag:<host>,<date>:<item id>`).
fn stored_article(config: &Config, target: &str) -> anyhow::Result<crate::model::Article> {
    let distance = config.settings.near_duplicate_distance;
    let store = crate::store::open(&config.settings.database, distance)
        .with_context(|| format!("opening {}", config.database_name()))?;
    let id = target
        .strip_prefix("tag:")
        .and_then(|rest| rest.rsplit_once(':'))
        .map_or(target, |(_, id)| id);
    let item = store.item(&crate::model::ItemId(id.to_owned()))?;
    Ok(item
        .ok_or_else(|| {
            UsageError(format!(
                "{target:?} is neither a file nor a stored item id or guid; \
                 item ids are shown by `bantin ingest` and in the feeds"
            ))
        })?
        .article)
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    checked_config(path)?;
    Ok(ExitCode::SUCCESS)
}

/// The configuration at `path`, loaded and validated, with the one-line summary printed.
fn checked_config(path: &Path) -> anyhow::Result<Config> {
    let config = load_config(path).with_context(|| format!("checking {}", path.display()))?;
    println!(
        "{}: ok ({} sources, {} categories)",
        path.display(),
        config.sources.len(),
        config.categories.len()
    );
    Ok(config)
}

/// The sources named on the command line (all when none), or a usage error naming the
/// unknown ones.
fn chosen_sources(config: &Config, ids: &[String]) -> anyhow::Result<Vec<Source>> {
    if ids.is_empty() {
        return Ok(config.sources.clone());
    }
    ids.iter()
        .map(|id| {
            config.source(id).cloned().ok_or_else(|| {
                let known: Vec<&str> = config.sources.iter().map(|s| s.id.as_str()).collect();
                UsageError(format!(
                    "no source `{id}`; known sources: {}",
                    known.join(", ")
                ))
                .into()
            })
        })
        .collect()
}

async fn crawl(path: &Path, ids: &[String], refresh: bool) -> anyhow::Result<ExitCode> {
    let config = Arc::new(load_config(path)?);
    let sources = chosen_sources(&config, ids)?;
    let service = Service::open(&config).context("opening the store")?;
    if refresh {
        let now = chrono::Utc::now();
        for source in &sources {
            service
                .store()
                .refresh_now(&source.id, source.refresh.within, now)
                .with_context(|| format!("making the young articles of {} due", source.id))?;
        }
    }
    // A signal ends the pass as it ends the daemon: within shutdown_timeout, with what
    // was fetched stored and published.
    let stop = CancellationToken::new();
    daemon::cancel_on_signals(stop.clone());
    tokio::spawn(daemon::stop_fetching_on(
        stop.clone(),
        service.pipeline.fetcher.clone(),
        config.settings.shutdown_timeout,
    ));
    let display = CrawlDisplay::new(&sources);
    let pass = service
        .crawl_reporting(
            &config,
            sources,
            &|id, run, at| display.update(id, run, at),
            |id, run| display.finish(id, run),
            &stop,
        )
        .await;
    display.clear();
    service
        .publish(&config)
        .await
        .context("publishing the feeds")?;
    print_summary(&pass);
    // A source another worker was running is not a failure: it is being read.
    let failed = pass.runs.iter().filter(|(_, r)| r.failed()).count();
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// How `crawl` shows each source's run as it goes: on a terminal a bar per source
/// (pages done of those known, new, updated, errors, elapsed); elsewhere plain lines,
/// one when a source knows its pages and one when it is done.
enum CrawlDisplay {
    Bars {
        multi: indicatif::MultiProgress,
        bars: HashMap<SourceId, indicatif::ProgressBar>,
    },
    Lines(Mutex<HashMap<SourceId, LineState>>),
}

/// What the plain display knows of one source's run.
struct LineState {
    started: Instant,
    at: RunProgress,
}

impl CrawlDisplay {
    fn new(sources: &[Source]) -> CrawlDisplay {
        use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
        if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            return CrawlDisplay::Lines(Mutex::default());
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        let style = ProgressStyle::with_template(
            "{prefix:<28} {bar:24} {pos:>4}/{len:<4} pages  {msg}  {elapsed}",
        )
        .expect("literal progress template is valid");
        let bars = sources
            .iter()
            .map(|s| {
                let bar = multi.add(ProgressBar::new(0));
                bar.set_style(style.clone());
                bar.set_prefix(s.id.to_string());
                bar.enable_steady_tick(std::time::Duration::from_millis(250));
                (s.id.clone(), bar)
            })
            .collect();
        CrawlDisplay::Bars { multi, bars }
    }

    fn update(&self, id: &SourceId, run: &SourceRun, at: RunProgress) {
        match self {
            CrawlDisplay::Bars { bars, .. } => {
                if let Some(bar) = bars.get(id) {
                    bar.set_length(at.total);
                    bar.set_position(at.done);
                    bar.set_message(run_counts(run));
                }
            }
            CrawlDisplay::Lines(states) => {
                let mut states = states.lock().expect("no panic while the lock is held");
                let state = states.entry(id.clone()).or_insert(LineState {
                    started: Instant::now(),
                    at,
                });
                if state.at.total == 0 && at.total > 0 {
                    println!("[{id}] {} page(s) to read", at.total);
                }
                state.at = at;
            }
        }
    }

    fn finish(&self, id: &SourceId, run: &SourceRun) {
        let outcome = match &run.failure {
            Some(failure) => format!("not read: {failure}"),
            None => run_counts(run),
        };
        match self {
            CrawlDisplay::Bars { bars, .. } => {
                if let Some(bar) = bars.get(id) {
                    bar.finish_with_message(outcome);
                }
            }
            CrawlDisplay::Lines(states) => {
                let states = states.lock().expect("no panic while the lock is held");
                let (at, elapsed) = states
                    .get(id)
                    .map_or((RunProgress::default(), Default::default()), |s| {
                        (s.at, s.started.elapsed())
                    });
                println!(
                    "[{id}] done, {}/{} pages, {outcome}, {:.1}s",
                    at.done,
                    at.total,
                    elapsed.as_secs_f64()
                );
            }
        }
    }

    fn clear(&self) {
        if let CrawlDisplay::Bars { multi, .. } = self {
            multi.clear().ok();
        }
    }
}

fn run_counts(run: &SourceRun) -> String {
    format!(
        "{} new, {} updated, {} errors",
        run.new, run.updated, run.errors
    )
}

fn print_summary(pass: &daemon::CrawlPass) {
    let runs = &pass.runs;
    println!(
        "{:<30} {:>6} {:>7} {:>5} {:>5} {:>7} {:>5} {:>5} {:>6}",
        "source", "links", "fetched", "304", "new", "updated", "dups", "dead", "errors"
    );
    for (id, r) in runs {
        println!(
            "{:<30} {:>6} {:>7} {:>5} {:>5} {:>7} {:>5} {:>5} {:>6}",
            id.as_str(),
            r.links_found,
            r.pages_fetched,
            r.not_modified,
            r.new,
            r.updated,
            r.duplicates,
            r.dead_links,
            r.errors
        );
        if let Some(failure) = &r.failure {
            println!("  source not read: {failure}");
        }
        for problem in &r.breakage {
            println!("  looks broken: {problem}");
        }
        if let Some(err) = r.last_error.as_ref().filter(|e| !r.breakage.contains(e)) {
            println!("  last error: {err}");
        }
    }
    for (id, not_run) in &pass.held {
        println!("{:<30} not run here: {not_run}", id.as_str());
    }
}

async fn ingest(
    path: &Path,
    paths: &[PathBuf],
    url: Option<&url::Url>,
    source_id: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let config = Arc::new(load_config(path)?);
    let source = source_id
        .map(|id| chosen_sources(&config, &[id.to_owned()]))
        .transpose()?;
    let source = source.and_then(|mut s| s.pop());
    let files = crate::sources::files(paths).context("listing the files to ingest")?;
    if files.is_empty() {
        let given: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(UsageError(format!(
            "no HTML files in {}: folders are searched for *.html and *.htm; \
             name saved pages or a folder holding them",
            given.join(", ")
        ))
        .into());
    }
    if url.is_some() && files.len() != 1 {
        return Err(UsageError("--url needs exactly one file".into()).into());
    }
    let service = Service::open(&config).context("opening the store")?;
    let mut failed = 0;
    for file in &files {
        let result =
            pipeline::ingest_file(&service.pipeline, &config, file, url, source.as_ref()).await;
        match result {
            Ok(outcome) => println!("{}: {}", file.display(), describe_outcome(&outcome)),
            Err(err) => {
                failed += 1;
                println!("{}: failed: {err:#}", file.display());
            }
        }
    }
    service
        .publish(&config)
        .await
        .context("publishing the feeds")?;
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::New(id) => format!("new {id}"),
        Outcome::Updated(id) => format!("updated {id}"),
        Outcome::Unchanged(id) => format!("unchanged {id}"),
        Outcome::Duplicate { of, reason } => format!("duplicate of {of} ({reason})"),
    }
}

async fn reextract(
    path: &Path,
    source: Option<&str>,
    since: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let config = Arc::new(load_config(path)?);
    if let Some(id) = source {
        chosen_sources(&config, &[id.to_owned()])?;
    }
    let since = since.map(parse_since).transpose()?;
    let service = Service::open(&config).context("opening the store")?;
    let counts = pipeline::reextract(
        &service.pipeline,
        &config,
        source.map(SourceId::from),
        since,
    )
    .await
    .context("re-extracting stored pages")?;
    println!(
        "{} pages: {} updated, {} re-categorized, {} unchanged, {} new, {} duplicates, {} failed",
        counts.pages,
        counts.updated,
        counts.recategorized,
        counts.unchanged,
        counts.new,
        counts.duplicates,
        counts.failed
    );
    service
        .publish(&config)
        .await
        .context("publishing the feeds")?;
    Ok(ExitCode::SUCCESS)
}

fn parse_since(text: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.to_utc());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| UsageError(format!("--since {text:?}: write YYYY-MM-DD or RFC 3339")).into())
}
async fn preview(config_path: &Path, args: &PreviewArgs) -> anyhow::Result<ExitCode> {
    let (named, config) = match (&args.source, Config::load(config_path)) {
        (Some(_), Err(err)) => return Err(err.into()),
        (Some(id), Ok(config)) => {
            let source = chosen_sources(&config, std::slice::from_ref(id))?.remove(0);
            (Some(source), Ok(config))
        }
        (None, config) => (None, config),
    };
    let mut fetcher = None;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for input in &args.inputs {
        let address = match url::Url::parse(input) {
            Ok(address) if matches!(address.scheme(), "http" | "https") => Some(address),
            _ => None,
        };
        let source = match (&named, &config) {
            (Some(source), _) => Some(source.clone()),
            (None, Ok(config)) if !args.no_source => {
                matching_source(config, input, address.as_ref().or(args.url.as_ref()))
            }
            _ => None,
        };
        let page = match address {
            Some(address) => {
                let settings = match &config {
                    Ok(config) => &config.settings,
                    Err(_) => {
                        return Err(UsageError(format!(
                            "previewing {input} needs a valid configuration for its fetch limits; run `bantin check`"
                        ))
                        .into());
                    }
                };
                if fetcher.is_none() {
                    fetcher = Some(crate::fetch::Fetcher::new(settings)?);
                }
                let fetcher = fetcher.as_ref().expect("set just above");
                fetch_preview_page(fetcher, &address, source.as_ref()).await
            }
            None => saved_preview_page(input, args.url.as_ref()),
        };
        let zone = match (&source, &config) {
            (Some(s), _) => s.timezone,
            (None, Ok(config)) => config.settings.timezone,
            (None, Err(_)) => chrono_tz::Asia::Ho_Chi_Minh,
        };
        let rules = source.map(|s| s.extract).unwrap_or_default();
        let previewed = page.and_then(|(html, url, fetched_at)| {
            let input = crate::extract::Input {
                url: &url,
                rules: &rules,
                zone,
                fetched_at,
            };
            Ok(crate::extract::preview::preview_one(
                &html, &input, &mut out,
            )?)
        });
        if let Err(err) = previewed {
            failed += 1;
            eprintln!("error: {input}: {err:#}");
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A page to preview, with the address it stands for and when it was fetched.
type PreviewPage = (String, url::Url, chrono::DateTime<chrono::Utc>);

/// The source a previewed page at `address` is read with, said on stderr so that the
/// JSON on stdout stays clean.
fn matching_source(config: &Config, input: &str, address: Option<&url::Url>) -> Option<Source> {
    let Some(address) = address else {
        eprintln!("note: {input}: generic extraction (no address to match a source; give --url)");
        return None;
    };
    match config.source_for(address) {
        Some(source) => {
            eprintln!(
                "note: {input}: extracted with source {} from {} (--no-source for the generic result)",
                source.id,
                source.file.display()
            );
            Some(source.clone())
        }
        None => {
            eprintln!("note: {input}: generic extraction (no source matches {address})");
            None
        }
    }
}

async fn fetch_preview_page(
    fetcher: &crate::fetch::Fetcher,
    address: &url::Url,
    source: Option<&Source>,
) -> anyhow::Result<PreviewPage> {
    use crate::fetch::{FetchKind, Fetched};
    match fetcher
        .fetch(FetchKind::Article, address, None, source)
        .await?
    {
        Fetched::Page { page, .. } => Ok((page.html, page.final_url, page.fetched_at)),
        Fetched::NotModified => unreachable!("no validators were sent"),
    }
}

/// A saved page; it counts as fetched now.
fn saved_preview_page(input: &str, url: Option<&url::Url>) -> anyhow::Result<PreviewPage> {
    let path = Path::new(input);
    let html = pipeline::read_saved_page(path)?;
    let url = pipeline::saved_page_url(path, url);
    Ok((html, url, chrono::Utc::now()))
}

async fn suggest(config_path: &Path, args: &SuggestArgs) -> anyhow::Result<ExitCode> {
    use crate::suggest::Input;
    if let Some(id) = args.id.as_deref().filter(|id| !crate::config::is_slug(id)) {
        return Err(UsageError(format!(
            "--id {id:?} is not a slug: use lower-case letters, digits and dashes"
        ))
        .into());
    }
    if let Some(path) = args.write.as_ref().filter(|p| p.exists()) {
        return Err(UsageError(format!(
            "--write {}: the file exists; choose another path or remove it first",
            path.display()
        ))
        .into());
    }
    let config = Config::load(config_path);
    let tz = config
        .as_ref()
        .map_or(chrono_tz::Asia::Ho_Chi_Minh, |c| c.settings.timezone);
    let fetcher;
    let input = match url::Url::parse(&args.input) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            if args.url.is_some() {
                return Err(UsageError("--url is for a saved page, not an address".into()).into());
            }
            let Ok(config) = &config else {
                return Err(UsageError(format!(
                    "suggesting from {url} needs a valid configuration for its fetch limits; run `bantin check`"
                ))
                .into());
            };
            fetcher = crate::fetch::Fetcher::new(&config.settings)?;
            Input::Address {
                url,
                fetcher: &fetcher,
            }
        }
        _ => Input::File {
            path: PathBuf::from(&args.input),
            url: args.url.clone(),
        },
    };
    let suggestion = crate::suggest::suggest(&input, args.articles, args.id.clone(), tz).await?;
    let block = crate::suggest::source_block(&suggestion);
    print!("{block}");
    if let Some(path) = &args.write {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, block.as_bytes()))
            .with_context(|| format!("saving the suggestion to {}", path.display()))?;
        eprintln!(
            "saved to {}: choose its categories, then run `bantin check`",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn publish(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Arc::new(load_config(path)?);
    let service = Service::open(&config).context("opening the store")?;
    let report = service.publish(&config).await.with_context(|| {
        format!(
            "publishing feeds to {}",
            config.settings.feeds_dir.display()
        )
    })?;
    println!(
        "{}: {} feed(s) changed, {} file(s) already current, {} file(s) of removed categories removed",
        config.settings.feeds_dir.display(),
        report.changed.len(),
        report.unchanged_files,
        report.removed.len()
    );
    Ok(ExitCode::SUCCESS)
}

async fn serve(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Arc::new(load_config(path)?);
    let service = Service::open(&config).context("opening the store")?;
    let listener = daemon::bind(config.settings.listen).await?;
    print_listening(&listener, &config);
    service.publish(&config).await.with_context(|| {
        format!(
            "publishing feeds to {}",
            config.settings.feeds_dir.display()
        )
    })?;
    // Another process (`bantin crawl` from cron, `bantin publish`) publishes into the
    // store; the server follows the store's publish generation.
    let state = crate::serve::AppState::new(
        Arc::new(arc_swap::ArcSwap::from(config.clone())),
        service.store(),
        service.pipeline.metrics.clone(),
    )
    .with_published(service.published.clone());
    let token = CancellationToken::new();
    daemon::cancel_on_signals(token.clone());
    crate::serve::serve(listener, state, token)
        .await
        .context("serving feeds")?;
    Ok(ExitCode::SUCCESS)
}

/// `bantin migrate`: the configured SQLite store copied into the PostgreSQL `to`.
fn migrate(path: &Path, to: &str, replace: bool) -> anyhow::Result<ExitCode> {
    use crate::config::Database;
    use crate::store::{MigrateError, PostgresStore, SqliteStore, redact_password};
    let config = load_config(path)?;
    let Database::Sqlite(file) = &config.settings.database else {
        return Err(UsageError(format!(
            "`database_url` names PostgreSQL ({}) already; migrate copies a SQLite store",
            config.database_name()
        ))
        .into());
    };
    if !to.starts_with("postgres://") && !to.starts_with("postgresql://") {
        return Err(UsageError(format!(
            "--to {to:?} is not a PostgreSQL URL; write postgres://user:password@host/db"
        ))
        .into());
    }
    if !file.is_file() {
        return Err(UsageError(format!("no store at {}: nothing to copy", file.display())).into());
    }
    let shown = redact_password(to);
    let distance = config.settings.near_duplicate_distance;
    let from =
        SqliteStore::open(file, distance).with_context(|| format!("opening {}", file.display()))?;
    let target = PostgresStore::open(to, distance).with_context(|| format!("opening {shown}"))?;
    let counts = match target.copy_from_sqlite(&from, replace) {
        Err(MigrateError::NotEmpty) => {
            return Err(UsageError(format!(
                "{shown} holds bantin data already: nothing was copied; \
                 copy into an empty database, or add --replace to replace its data"
            ))
            .into());
        }
        copied => copied.with_context(|| format!("copying {} into {shown}", file.display()))?,
    };
    for (table, rows) in &counts {
        println!("{table:<20} {rows:>10} rows");
    }
    println!(
        "copied {} into {shown}; now point `database_url` in {} at it",
        file.display(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `bantin check --online`: the offline check, then every `test_urls` page fetched and
/// extracted with its source's rules and compared with the expected values.
async fn check_online(path: &Path) -> anyhow::Result<ExitCode> {
    use crate::fetch::{FetchKind, Fetched, Fetcher};
    let config = checked_config(path)?;
    let fetcher = Fetcher::new(&config.settings)?;
    let (mut pages, mut mismatches) = (0, 0);
    for source in &config.sources {
        for test in &source.test_urls {
            pages += 1;
            let problems = match fetcher
                .fetch(FetchKind::Article, &test.url, None, Some(source))
                .await
            {
                Ok(Fetched::Page { page, .. }) => {
                    let input = crate::extract::Input {
                        url: &page.final_url,
                        rules: &source.extract,
                        zone: source.timezone,
                        fetched_at: page.fetched_at,
                    };
                    match crate::extract::article(&page.html, &input) {
                        Ok(article) => test_url_mismatches(test, &article),
                        Err(err) => vec![err.to_string()],
                    }
                }
                Ok(Fetched::NotModified) => unreachable!("no validators were sent"),
                Err(err) => vec![err.to_string()],
            };
            for problem in &problems {
                println!("{}: {}: {problem}", source.id, test.url);
            }
            mismatches += problems.len();
        }
    }
    println!("{pages} test page(s) checked, {mismatches} mismatch(es)");
    Ok(if mismatches == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Each expected value of a test page that the extracted article does not meet.
fn test_url_mismatches(
    test: &crate::config::TestUrl,
    article: &crate::model::Article,
) -> Vec<String> {
    use crate::model::Field;
    let mut problems = Vec::new();
    let mut differs = |field: Field, got: String, want: String| {
        problems.push(format!("`{field}` is {got:?}, expected {want:?}"));
    };
    if let Some(want) = &test.title
        && article.title != *want
    {
        differs(Field::Title, article.title.clone(), want.clone());
    }
    if let Some(want) = test.published
        && article.published != Some(want)
    {
        let got = article
            .published
            .map(|d| d.to_rfc3339())
            .unwrap_or_default();
        differs(Field::Published, got, want.to_rfc3339());
    }
    if let Some(want) = &test.authors
        && article.authors != *want
    {
        differs(Field::Authors, article.authors.join(", "), want.join(", "));
    }
    let lead = article.lead.clone().unwrap_or_default();
    if let Some(want) = &test.lead_starts_with
        && !lead.starts_with(want.as_str())
    {
        differs(
            Field::Lead,
            lead.chars().take(60).collect(),
            format!("{want}…"),
        );
    }
    if let Some(want) = &test.body_starts_with
        && !article.body_text.starts_with(want.as_str())
    {
        differs(
            Field::Body,
            article.body_text.chars().take(60).collect(),
            format!("{want}…"),
        );
    }
    problems
}
