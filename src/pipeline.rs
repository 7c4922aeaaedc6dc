//! The one place that calls several stages in order: a source run (discover → fetch →
//! extract → classify → store), ingesting saved pages, re-extracting stored pages, and
//! the breakage check after a run. Stages never call each other; they meet here.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tracing::{Instrument, debug, error, info, info_span, warn};
use url::Url;

use crate::config::{ArticleRules, Config, Source, SourceKind};
use crate::fetch::{FetchError, FetchKind, Fetched, Fetcher, charset};
use crate::metrics::Metrics;
use crate::model::{
    Article, ArticleVisit, Candidate, CategoryId, Field, ItemId, Outcome, Page, PageFetch, RawPage,
    ReadFailure, SourceId, SourceRun, Validators, VisitReason,
};
use crate::store::{RawPageCursor, Store, StoreError};
use crate::{classify, extract, sources};

/// Fields whose presence is tracked per run for the breakage alarm.
const TRACKED_FIELDS: [Field; 6] = [
    Field::Title,
    Field::Published,
    Field::Authors,
    Field::Lead,
    Field::Body,
    Field::Image,
];
/// A run whose field coverage falls below this share of the recent normal raises the alarm.
const BREAKAGE_RATIO: f64 = 0.5;
/// How many past runs make up a source's recent normal.
const RECENT_RUNS: usize = 10;

/// Why a pipeline step failed as a whole (a single page failing is counted, not fatal).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Extract(#[from] extract::ExtractError),
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("a storage task stopped unexpectedly")]
    TaskPanicked,
}

/// What visiting one article link gave.
enum Visited {
    /// The article was recorded; `fetched` when its page was fetched.
    Stored {
        /// The tracked fields the article had.
        present: Vec<Field>,
        outcome: Outcome,
        fetched: bool,
    },
    /// A re-check answered 304: the item is as it was.
    NotModified(ItemId),
    /// The page answered 404 or 410 and is remembered as a dead link.
    Dead,
}

/// The shared parts every pipeline step uses.
#[derive(Clone)]
pub struct Pipeline {
    pub fetcher: Fetcher,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, PipelineError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| PipelineError::TaskPanicked)?
        .map_err(PipelineError::from)
}

/// How far a source run has got: listing pages and articles done, of those known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunProgress {
    pub done: u64,
    pub total: u64,
}

/// Told how far a source run has got, with its counts so far.
pub type Progress<'a> = &'a (dyn Fn(&SourceRun, RunProgress) + Sync);

impl Pipeline {
    /// One run of one source. Never fails as a whole: errors are counted in the
    /// returned run, which is also recorded in the store.
    pub async fn run_source(&self, config: &Config, source: &Source) -> SourceRun {
        self.run_source_reporting(config, source, &|_, _| {}).await
    }

    /// [`Pipeline::run_source`], telling `progress` how far it got: at the start, once
    /// the pages to fetch are known, and after each article.
    pub async fn run_source_reporting(
        &self,
        config: &Config,
        source: &Source,
        progress: Progress<'_>,
    ) -> SourceRun {
        let span = info_span!("crawl", source = %source.id);
        async {
            let started = Instant::now();
            let mut run = SourceRun {
                started_at: Some(Utc::now()),
                ..SourceRun::default()
            };
            progress(&run, RunProgress::default());
            if let Err(err) = self.crawl_into(config, source, &mut run, progress).await {
                run.errors += 1;
                run.last_error = Some(format!("{err:#}"));
                run.failure = Some(ReadFailure::Other(err.to_string()));
                error!(error = %err, "source run failed");
            }
            run.finished_at = Some(Utc::now());
            self.compare_with_history(source, &mut run).await;
            self.save_run(source, &run).await;
            info!(
                links = run.links_found,
                fetched = run.pages_fetched,
                not_modified = run.not_modified,
                new = run.new,
                updated = run.updated,
                duplicates = run.duplicates,
                dead_links = run.dead_links,
                errors = run.errors,
                failure = run.failure.as_ref().map(tracing::field::display),
                interrupted = run.interrupted,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "source run done"
            );
            run
        }
        .instrument(span)
        .await
    }

    /// Records a finished run in the store and in the metrics.
    async fn save_run(&self, source: &Source, run: &SourceRun) {
        let store = self.store.clone();
        let (id, recorded) = (source.id.clone(), run.clone());
        if let Err(err) = blocking(move || store.record_source_run(&id, &recorded)).await {
            error!(error = %err, "cannot record the source run");
        }
        if let Some(at) = run.finished_at {
            self.metrics.set_last_run(at);
            if !run.failed() {
                self.metrics.record_success(&source.id, at);
            }
        }
    }

    async fn crawl_into(
        &self,
        config: &Config,
        source: &Source,
        run: &mut SourceRun,
        progress: Progress<'_>,
    ) -> Result<(), PipelineError> {
        let store = self.store.clone();
        let (id, urls) = (source.id.clone(), source.urls.clone());
        let validators: HashMap<Url, Validators> =
            blocking(move || store.source_validators(&id, &urls))
                .await?
                .into_iter()
                .collect();

        let discovery = sources::discover(source, &self.fetcher, &validators).await;
        let discovery = match discovery {
            Ok(d) => d,
            Err(err) => {
                self.metrics.record_error(&source.id);
                run.errors += 1;
                run.last_error = Some(crate::error_chain(&err));
                run.failure = Some(err.read_failure());
                warn!(error = %err, "discovery failed");
                return Ok(());
            }
        };
        run.links_found = discovery.candidates.len() as u64;
        run.listings_read = discovery.pages_fetched;
        run.interrupted = discovery.interrupted;
        run.pages_fetched += discovery.pages_fetched;
        run.not_modified += discovery.not_modified;
        run.errors += discovery.errors.len() as u64;
        run.last_error = discovery.errors.last().cloned().or(run.last_error.take());
        let fresh_validators = discovery.validators;
        let visits = self.plan_visits(source, discovery.candidates, run).await?;
        debug!(visits = visits.len(), "article links to visit");
        let listings = run.listings_read + discovery.not_modified;
        let so_far = RunProgress {
            done: listings,
            total: listings + visits.len() as u64,
        };
        progress(run, so_far);
        self.visit_all(config, source, visits, run, (progress, so_far))
            .await;
        // Only a run that visited every link keeps the listings' validators: after a
        // kill or a shutdown mid-run, the next run must read the listings again rather
        // than hear 304 and never visit the links left over.
        if !run.interrupted {
            let (store, id) = (self.store.clone(), source.id.clone());
            blocking(move || store.save_source_validators(&id, &fresh_validators)).await?;
        }
        Ok(())
    }

    /// The article links a run acts on: feed entries that carry their article (recorded
    /// again, nothing fetched; dedup tells unchanged from updated), then what the store
    /// planned for the links to pages (new, dead past backoff, re-checks), at most
    /// `max_articles`.
    async fn plan_visits(
        &self,
        source: &Source,
        candidates: Vec<Candidate>,
        run: &mut SourceRun,
    ) -> Result<Vec<ArticleVisit>, PipelineError> {
        let (entries, pages): (Vec<Candidate>, Vec<Candidate>) = candidates
            .into_iter()
            .partition(|c| c.article.is_some() && !source.full_text);
        let store = self.store.clone();
        let (id, within) = (source.id.clone(), source.refresh.within);
        let plan = blocking(move || store.plan_articles(&id, pages, within, Utc::now())).await?;
        run.dead_links += plan.dead_links;
        let entries = entries.into_iter().map(|candidate| ArticleVisit {
            candidate,
            reason: VisitReason::New,
            item: None,
            validators: None,
        });
        Ok(entries
            .chain(plan.visits)
            .take(source.max_articles)
            .collect())
    }

    /// Visits the article links, a few at a time, and counts what each gave in `run`.
    async fn visit_all(
        &self,
        config: &Config,
        source: &Source,
        visits: Vec<ArticleVisit>,
        run: &mut SourceRun,
        (progress, mut so_far): (Progress<'_>, RunProgress),
    ) {
        let mut coverage: BTreeMap<Field, u64> = BTreeMap::new();
        let mut extracted = 0u64;
        let concurrency = config.settings.fetch.global_concurrency.max(1);
        let mut results = futures_util::stream::iter(visits)
            .map(|visit| self.visit_link(config, source, visit))
            .buffer_unordered(concurrency);
        while let Some(result) = results.next().await {
            so_far.done += 1;
            let outcome = match result {
                Ok(Visited::Stored {
                    present,
                    outcome,
                    fetched,
                }) => {
                    run.pages_fetched += u64::from(fetched);
                    extracted += 1;
                    for field in present {
                        *coverage.entry(field).or_default() += 1;
                    }
                    outcome
                }
                Ok(Visited::NotModified(id)) => Outcome::Unchanged(id),
                Ok(Visited::Dead) => {
                    run.dead_links += 1;
                    progress(run, so_far);
                    continue;
                }
                Err((_, PipelineError::Fetch(FetchError::ShuttingDown { .. }))) => {
                    run.interrupted = true;
                    progress(run, so_far);
                    continue;
                }
                Err((url, err)) => {
                    run.errors += 1;
                    run.last_error = Some(format!("{url}: {err:#}"));
                    self.metrics.record_error(&source.id);
                    warn!(url = %url, error = %err, "article skipped");
                    progress(run, so_far);
                    continue;
                }
            };
            self.metrics.record_outcome(&outcome);
            match outcome {
                Outcome::New(_) => run.new += 1,
                Outcome::Updated(_) => run.updated += 1,
                Outcome::Unchanged(_) => run.unchanged += 1,
                Outcome::Duplicate { .. } => run.duplicates += 1,
            }
            progress(run, so_far);
        }
        if extracted > 0 {
            run.field_coverage = TRACKED_FIELDS
                .into_iter()
                .map(|f| {
                    let n = coverage.get(&f).copied().unwrap_or(0);
                    (f, n as f64 / extracted as f64)
                })
                .collect();
        }
    }

    /// Fetches (unless a feed entry already is the article), extracts, classifies and
    /// stores one article link. A re-check is a conditional GET: 304 leaves the item as
    /// it is. A 404 or 410 is remembered as a dead link.
    async fn visit_link(
        &self,
        config: &Config,
        source: &Source,
        visit: ArticleVisit,
    ) -> Result<Visited, (Url, PipelineError)> {
        let url = visit.candidate.url.clone();
        let fail = |e: PipelineError| (url.clone(), e);
        if let (Some(article), false) = (&visit.candidate.article, source.full_text) {
            return self
                .record_entry(config, source, article.clone())
                .await
                .map_err(fail);
        }
        if visit.reason != VisitReason::New {
            debug!(url = %url, reason = ?visit.reason, "asking for a known article again");
        }
        let answer = self
            .fetcher
            .fetch(
                FetchKind::Article,
                &url,
                visit.validators.as_ref(),
                Some(source),
            )
            .await;
        let every = source.refresh.every;
        match answer {
            Ok(Fetched::Page {
                page, validators, ..
            }) => {
                let fetch = PageFetch {
                    asked: url.clone(),
                    fetched_at: page.fetched_at,
                    validators,
                    listed_title: visit.candidate.title.clone(),
                    every: Some(every),
                };
                self.store_page(config, source, &visit.candidate, page, fetch)
                    .await
                    .map_err(fail)
            }
            Ok(Fetched::NotModified) => {
                let id = visit
                    .item
                    .expect("only a stored article's re-check sends validators");
                self.reschedule(&url, every).await.map_err(fail)?;
                Ok(Visited::NotModified(id))
            }
            Err(FetchError::Status { status, .. }) if matches!(status.as_u16(), 404 | 410) => self
                .remember_dead(&url, source, status.as_u16())
                .await
                .map_err(fail),
            Err(err) => {
                if visit.item.is_some() {
                    self.reschedule(&url, every).await.map_err(fail)?;
                }
                Err(fail(err.into()))
            }
        }
    }

    /// Records a feed entry that carries its article; nothing is fetched.
    async fn record_entry(
        &self,
        config: &Config,
        source: &Source,
        article: Article,
    ) -> Result<Visited, PipelineError> {
        let categories = classify::categorize(&article, &source.categories, &config.categories);
        let present = present_fields(&article).collect();
        let outcome = self
            .record(article, source.id.clone(), categories, None)
            .await?;
        Ok(Visited::Stored {
            present,
            outcome,
            fetched: false,
        })
    }

    /// Remembers that `url` answered `status` (404 or 410), with its backoff.
    async fn remember_dead(
        &self,
        url: &Url,
        source: &Source,
        status: u16,
    ) -> Result<Visited, PipelineError> {
        let store = self.store.clone();
        let (dead_url, id) = (url.clone(), source.id.clone());
        let dead =
            blocking(move || store.mark_dead_link(&dead_url, &id, status, Utc::now())).await?;
        warn!(url = %url, status, failures = dead.failures, retry_at = %dead.retry_at,
            "dead link; not asked again before retry_at");
        Ok(Visited::Dead)
    }

    /// Extracts a fetched article page and records it with how it was asked for.
    async fn store_page(
        &self,
        config: &Config,
        source: &Source,
        candidate: &Candidate,
        page: Page,
        fetch: PageFetch,
    ) -> Result<Visited, PipelineError> {
        let article = extract_page(&page, source).await?;
        let article = merge_feed_hints(article, candidate);
        let raw = RawPage {
            url: page.final_url.clone(),
            source: source.id.clone(),
            fetched_at: page.fetched_at,
            html: page.html,
        };
        let categories = classify::categorize(&article, &source.categories, &config.categories);
        let store = self.store.clone();
        let present = present_fields(&article).collect();
        let id = source.id.clone();
        let outcome =
            blocking(move || store.record_fetched(&article, &id, &categories, Some(&raw), &fetch))
                .await?;
        Ok(Visited::Stored {
            present,
            outcome,
            fetched: true,
        })
    }

    /// Moves a stored article's next re-check to one `every` from now.
    async fn reschedule(&self, url: &Url, every: Duration) -> Result<(), PipelineError> {
        let store = self.store.clone();
        let url = url.clone();
        blocking(move || store.reschedule_article(&url, every, Utc::now())).await
    }

    /// Stores one article through dedup.
    pub async fn record(
        &self,
        article: Article,
        source: SourceId,
        categories: Vec<CategoryId>,
        raw: Option<RawPage>,
    ) -> Result<Outcome, PipelineError> {
        let store = self.store.clone();
        blocking(move || store.record(&article, &source, &categories, raw.as_ref())).await
    }

    /// Compares a run with the source's recent history: a run answered 304 throughout
    /// keeps the last known link and dead-link counts, and the breakage alarm flags a likely site
    /// redesign (no links where there used to be some, or a field that most articles
    /// had and this run's articles lack).
    async fn compare_with_history(&self, source: &Source, run: &mut SourceRun) {
        let store = self.store.clone();
        let id = source.id.clone();
        let state = match blocking(move || store.source_state(&id)).await {
            Ok(Some(state)) => state,
            Ok(None) => return,
            Err(err) => {
                warn!(error = %err, "cannot read source history");
                return;
            }
        };
        let recent: Vec<&SourceRun> = state.recent_runs.iter().take(RECENT_RUNS).collect();
        if run.listings_read == 0 && run.not_modified > 0 && !run.failed() {
            // Unchanged pages give what they gave last time: the same links, dead ones
            // included, and the same problem.
            if let Some(known) = last_known(&recent) {
                run.links_found = known.links_found;
                run.dead_links = known.dead_links;
                run.breakage = known.breakage.clone();
            }
        } else {
            run.breakage = breakage(source, run, &recent);
        }
        for problem in &run.breakage {
            error!(problem = %problem, "source looks broken");
            run.last_error = Some(problem.clone());
        }
    }
}

/// The newest run that read (or was told 304 about) its source.
fn last_known<'a>(recent: &[&'a SourceRun]) -> Option<&'a SourceRun> {
    recent
        .iter()
        .copied()
        .find(|r| r.failure.is_none() && !r.interrupted)
}

/// What a run lacks compared with the recent yield of its source (empty when healthy):
/// links found on listings that answered 200, fields present on the articles that were
/// extracted, however many other articles failed or were dead. Runs answered 304, runs
/// that could not read the source and runs cut short by shutdown say nothing about the
/// pages and raise nothing.
pub fn breakage(source: &Source, run: &SourceRun, recent: &[&SourceRun]) -> Vec<String> {
    let mut problems = Vec::new();
    if run.failed() || run.interrupted {
        return problems;
    }
    let read: Vec<&SourceRun> = recent
        .iter()
        .copied()
        .filter(|r| r.listings_read > 0 && !r.interrupted)
        .collect();
    if run.listings_read > 0 && run.links_found == 0 && !read.is_empty() {
        let usual = read.iter().map(|r| r.links_found).sum::<u64>() / read.len() as u64;
        if usual > 0 {
            problems.push(format!(
                "found no article links (usually {usual}); {}",
                links_hint(source)
            ));
        }
    }
    let measured: Vec<&SourceRun> = recent
        .iter()
        .copied()
        .filter(|r| !r.field_coverage.is_empty())
        .collect();
    if run.field_coverage.is_empty() || measured.len() < 2 {
        return problems;
    }
    problems.extend(TRACKED_FIELDS.into_iter().filter_map(|field| {
        let usual = measured
            .iter()
            .map(|r| r.field_coverage.get(&field).copied().unwrap_or(0.0))
            .sum::<f64>()
            / measured.len() as f64;
        let now = run.field_coverage.get(&field).copied().unwrap_or(0.0);
        (usual >= 0.6 && now < usual * BREAKAGE_RATIO).then(|| {
            let selector = source
                .extract
                .selector(field)
                .map_or("(none: fallbacks only)", |c| c.text.as_str());
            format!(
                "only {:.0}% of articles had `{field}` (usually {:.0}%); check extract.{} {selector:?}",
                now * 100.0,
                usual * 100.0,
                ArticleRules::selector_key(field)
            )
        })
    }));
    problems
}

/// What to look at when a source that answered gave no links.
fn links_hint(source: &Source) -> String {
    match source.kind {
        SourceKind::Listing => {
            let selector = source
                .links
                .selector
                .as_ref()
                .map_or("(none)", |c| c.text.as_str());
            format!("check links.selector {selector:?}")
        }
        SourceKind::Feed => "check that the feed still has entries".to_owned(),
        SourceKind::Sitemap => {
            "check that the sitemap still lists articles within max_age".to_owned()
        }
    }
}

fn present_fields(article: &Article) -> impl Iterator<Item = Field> + '_ {
    TRACKED_FIELDS.into_iter().filter(|f| article.has(*f))
}

/// Fills fields the page lacked from what the feed or sitemap said about it.
fn merge_feed_hints(mut article: Article, candidate: &Candidate) -> Article {
    if article.published.is_none() {
        article.published = candidate.published;
    }
    if article.title.is_empty()
        && let Some(title) = &candidate.title
    {
        article.title = title.clone();
    }
    article
}

/// Extraction runs on the blocking pool: parsing is CPU work and the parsed document
/// is not `Send`.
async fn extract_page(page: &Page, source: &Source) -> Result<Article, PipelineError> {
    let reading = Reading {
        rules: source.extract.clone(),
        zone: source.timezone,
        fetched_at: page.fetched_at,
    };
    extract_blocking(page.html.as_str().into(), page.final_url.clone(), reading).await
}

/// Reads a saved page from disk and decodes it.
pub fn read_saved_page(path: &Path) -> Result<String, PipelineError> {
    let bytes = std::fs::read(path).map_err(|source| PipelineError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(charset::decode_html(&bytes, None).0)
}

/// The address a saved page stands for: the one given, else `file://` of its path.
pub fn saved_page_url(path: &Path, given: Option<&Url>) -> Url {
    if let Some(url) = given {
        return url.clone();
    }
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    Url::from_file_path(&absolute)
        .unwrap_or_else(|_| Url::parse("file:///unknown").expect("literal URL parses"))
}

/// The source id of pages ingested without `--source`.
pub const FILES_SOURCE: &str = "files";

/// How a page is extracted, owned so that it can move to the blocking pool.
#[derive(Clone)]
struct Reading {
    rules: ArticleRules,
    zone: chrono_tz::Tz,
    fetched_at: DateTime<Utc>,
}

/// How a page of `source` fetched at `fetched_at` is read, and the categories and id
/// its item gets; without a source, generic rules in the configured default zone.
fn reading_of(
    config: &Config,
    source: Option<&Source>,
    fetched_at: DateTime<Utc>,
) -> (Reading, Vec<CategoryId>, SourceId) {
    let (rules, zone, categories, id) = match source {
        Some(s) => (
            s.extract.clone(),
            s.timezone,
            s.categories.clone(),
            s.id.clone(),
        ),
        None => (
            ArticleRules::default(),
            config.settings.timezone,
            Vec::new(),
            SourceId::from(FILES_SOURCE),
        ),
    };
    let reading = Reading {
        rules,
        zone,
        fetched_at,
    };
    (reading, categories, id)
}

async fn extract_blocking(
    html: Arc<str>,
    url: Url,
    reading: Reading,
) -> Result<Article, PipelineError> {
    tokio::task::spawn_blocking(move || {
        let input = extract::Input {
            url: &url,
            rules: &reading.rules,
            zone: reading.zone,
            fetched_at: reading.fetched_at,
        };
        extract::article(&html, &input)
    })
    .await
    .map_err(|_| PipelineError::TaskPanicked)?
    .map_err(PipelineError::from)
}

/// `bantin ingest` of one saved page: extract, classify and store it like a crawled one.
pub async fn ingest_file(
    pipeline: &Pipeline,
    config: &Config,
    file: &Path,
    url: Option<&Url>,
    source: Option<&Source>,
) -> Result<Outcome, PipelineError> {
    let html: Arc<str> = read_saved_page(file)?.into();
    let fetched_at = Utc::now();
    let (reading, source_categories, source_id) = reading_of(config, source, fetched_at);
    let base = saved_page_url(file, url);
    let mut article = extract_blocking(html.clone(), base, reading.clone()).await?;
    // Without --url, the page's own canonical link is its address; links and images
    // inside it must resolve against that, not against the file.
    if url.is_none()
        && let Some(canonical) = article.canonical_url.clone()
        && matches!(canonical.scheme(), "http" | "https")
    {
        article = extract_blocking(html.clone(), canonical, reading).await?;
    }
    let categories = classify::categorize(&article, &source_categories, &config.categories);
    let raw = RawPage {
        url: article.url.clone(),
        source: source_id.clone(),
        fetched_at,
        html: html.to_string(),
    };
    pipeline
        .record(article, source_id, categories, Some(raw))
        .await
}

/// What `bantin reextract` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReextractCounts {
    pub pages: u64,
    pub new: u64,
    pub updated: u64,
    /// Items whose text is unchanged but whose categories changed (a keyword rule or a
    /// source's categories were edited): their feeds change.
    pub recategorized: u64,
    /// Items with the same text and the same categories.
    pub unchanged: u64,
    pub duplicates: u64,
    pub failed: u64,
}

/// How many stored pages `reextract` reads at a time: enough to keep the store's
/// round trips cheap, few enough that memory does not grow with the store (a page is
/// tens to hundreds of KB of HTML).
pub const REEXTRACT_BATCH_PAGES: usize = 64;

/// Extracts and classifies stored raw pages again with the current configuration and
/// updates their items in place; nothing is fetched. Pages are read in batches of
/// [`REEXTRACT_BATCH_PAGES`], oldest first.
pub async fn reextract(
    pipeline: &Pipeline,
    config: &Config,
    source: Option<SourceId>,
    since: Option<DateTime<Utc>>,
) -> Result<ReextractCounts, PipelineError> {
    let mut counts = ReextractCounts::default();
    let mut after: Option<RawPageCursor> = None;
    loop {
        let store = pipeline.store.clone();
        let (source, cursor) = (source.clone(), after.take());
        let batch = blocking(move || {
            store.raw_pages(
                source.as_ref(),
                since,
                cursor.as_ref(),
                REEXTRACT_BATCH_PAGES,
            )
        })
        .await?;
        let complete = batch.len() == REEXTRACT_BATCH_PAGES;
        after = batch.last().map(RawPageCursor::after);
        for page in batch {
            reextract_page(pipeline, config, page, &mut counts).await?;
        }
        if !complete {
            return Ok(counts);
        }
    }
}

/// Re-extracts one stored page and records the result in `counts`.
async fn reextract_page(
    pipeline: &Pipeline,
    config: &Config,
    page: RawPage,
    counts: &mut ReextractCounts,
) -> Result<(), PipelineError> {
    counts.pages += 1;
    let source = config.source(page.source.as_str());
    let (reading, source_categories, source_id) = reading_of(config, source, page.fetched_at);
    let article = match extract_blocking(page.html.into(), page.url.clone(), reading).await {
        Ok(article) => article,
        Err(err) => {
            counts.failed += 1;
            warn!(url = %page.url, error = %err, "re-extraction failed");
            return Ok(());
        }
    };
    let categories = classify::categorize(&article, &source_categories, &config.categories);
    let outcome = pipeline
        .record(article, source_id, categories.clone(), None)
        .await?;
    match outcome {
        Outcome::New(_) => counts.new += 1,
        Outcome::Updated(_) => counts.updated += 1,
        Outcome::Unchanged(id) => {
            if recategorize(pipeline, id, categories).await? {
                counts.recategorized += 1;
            } else {
                counts.unchanged += 1;
            }
        }
        Outcome::Duplicate { .. } => counts.duplicates += 1,
    }
    Ok(())
}

/// Gives an item whose text did not change its categories as the rules now say (an
/// update already replaced them); true when they differ from those stored.
async fn recategorize(
    pipeline: &Pipeline,
    id: ItemId,
    categories: Vec<CategoryId>,
) -> Result<bool, PipelineError> {
    let store = pipeline.store.clone();
    blocking(move || {
        let stored = store.item(&id)?.map(|item| item.categories);
        let changed = stored.is_none_or(|mut stored| {
            let mut now = categories.clone();
            stored.sort();
            now.sort();
            stored != now
        });
        if changed {
            store.set_categories(&id, &categories)?;
        }
        Ok(changed)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run that read its listing (200), found `links` and extracted articles with
    /// this field coverage.
    fn run_with(links: u64, coverage: &[(Field, f64)]) -> SourceRun {
        SourceRun {
            links_found: links,
            listings_read: 1,
            field_coverage: coverage.iter().copied().collect(),
            ..SourceRun::default()
        }
    }

    fn fixture_config() -> Config {
        Config::load(std::path::Path::new(
            "tests/fixtures/config/valid/bantin.toml",
        ))
        .expect("the fixture config is valid")
    }

    /// A run that read its listing and found 30 links, 27 of them dead or failing.
    fn run_with_dead_links() -> SourceRun {
        SourceRun {
            errors: 27,
            ..run_with(30, &[(Field::Title, 1.0), (Field::Body, 1.0)])
        }
    }

    #[test]
    fn breakage_counts_runs_with_failed_articles_in_the_usual_link_yield() {
        // Regression: only runs without errors made the baseline, so a site with a few
        // dead links on every listing never raised the alarm.
        let config = fixture_config();
        let source = &config.sources[0];
        let before = [run_with_dead_links(), run_with_dead_links()];
        let recent: Vec<&SourceRun> = before.iter().collect();
        let renamed = SourceRun {
            listings_read: 1,
            ..SourceRun::default()
        };
        let problems = breakage(source, &renamed, &recent);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("found no article links (usually 30); check links.selector"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_feed_without_entries_is_not_told_to_check_a_selector() {
        let config = fixture_config();
        let feed = Source {
            kind: SourceKind::Feed,
            ..config.sources[0].clone()
        };
        let before = [run_with_dead_links(), run_with_dead_links()];
        let recent: Vec<&SourceRun> = before.iter().collect();
        let empty = SourceRun {
            listings_read: 1,
            ..SourceRun::default()
        };
        assert_eq!(
            breakage(&feed, &empty, &recent),
            ["found no article links (usually 30); check that the feed still has entries"]
        );
    }

    #[test]
    fn breakage_says_nothing_about_listings_that_were_not_read() {
        let config = fixture_config();
        let source = &config.sources[0];
        let before = [run_with_dead_links(), run_with_dead_links()];
        let recent: Vec<&SourceRun> = before.iter().collect();
        let not_modified = SourceRun {
            not_modified: 1,
            ..SourceRun::default()
        };
        let unreachable = SourceRun {
            errors: 1,
            failure: Some(ReadFailure::ConnectionRefused),
            ..SourceRun::default()
        };
        let interrupted = SourceRun {
            listings_read: 1,
            interrupted: true,
            ..SourceRun::default()
        };
        for run in [not_modified, unreachable, interrupted] {
            assert_eq!(
                breakage(source, &run, &recent),
                Vec::<String>::new(),
                "{run:?}"
            );
        }
    }

    #[test]
    fn a_run_answered_304_takes_after_the_last_run_that_read_the_source() {
        let read = run_with_dead_links();
        let not_modified = SourceRun {
            links_found: 30,
            not_modified: 1,
            ..SourceRun::default()
        };
        let unreachable = SourceRun {
            failure: Some(ReadFailure::Timeout),
            ..SourceRun::default()
        };
        let held_back = SourceRun {
            failure: Some(ReadFailure::RetryLater(Utc::now())),
            ..SourceRun::default()
        };
        assert_eq!(last_known(&[&not_modified, &read]), Some(&not_modified));
        assert_eq!(last_known(&[&unreachable, &held_back, &read]), Some(&read));
        assert_eq!(last_known(&[]), None);
    }

    #[test]
    fn breakage_names_a_field_most_articles_suddenly_lack_and_its_selector() {
        let config = fixture_config();
        let source = &config.sources[0];
        let usual = [
            (Field::Title, 1.0),
            (Field::Body, 0.95),
            (Field::Image, 0.3),
        ];
        // Most of the usual runs' linked articles failed: the extracted ones still set
        // the usual coverage.
        let with_errors = |links| SourceRun {
            errors: 15,
            ..run_with(links, &usual)
        };
        let before = [with_errors(20), with_errors(18)];
        // Answered 304: says nothing about the pages, so it must not lower the usual.
        let not_modified = SourceRun {
            not_modified: 1,
            ..SourceRun::default()
        };
        let recent: Vec<&SourceRun> = before.iter().chain([&not_modified]).collect();

        let healthy = run_with(
            19,
            &[(Field::Title, 1.0), (Field::Body, 0.9), (Field::Image, 0.0)],
        );
        assert!(
            breakage(source, &healthy, &recent).is_empty(),
            "a field that is usually rare may vanish"
        );

        let broken = run_with(
            19,
            &[(Field::Title, 1.0), (Field::Body, 0.1), (Field::Image, 0.3)],
        );
        let problems = breakage(source, &broken, &recent);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("only 10% of articles had `body` (usually 95%)"),
            "{problems:?}"
        );
        assert!(
            problems[0].contains("div.detail-content-body"),
            "names the selector: {problems:?}"
        );

        // One earlier run is too little history to call anything broken.
        assert!(breakage(source, &broken, &recent[..1]).is_empty());
    }

    #[test]
    fn breakage_names_the_author_selector_by_its_config_key() {
        // Regression: the alarm said `check extract.authors`, a key no config has.
        let config = fixture_config();
        let source = Source {
            extract: ArticleRules {
                author: Some(crate::config::Css {
                    text: "div.byline".into(),
                    selector: scraper::Selector::parse("div.byline").expect("valid CSS"),
                }),
                ..ArticleRules::default()
            },
            ..config.sources[0].clone()
        };
        let usual = run_with(20, &[(Field::Authors, 1.0)]);
        let before = [usual.clone(), usual];
        let recent: Vec<&SourceRun> = before.iter().collect();
        let problems = breakage(&source, &run_with(20, &[(Field::Authors, 0.0)]), &recent);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].ends_with("check extract.author \"div.byline\""),
            "{problems:?}"
        );
    }
}
