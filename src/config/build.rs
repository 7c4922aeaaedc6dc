//! Turns the raw files into runtime types, checking everything that can be checked
//! without a network and collecting every problem instead of stopping at the first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use toml::Spanned;
use url::Url;

use super::diag::{SourceText, did_you_mean};
use super::file::{
    CategoriesFile, ExtractFile, FetchFile, LinksFile, RefreshFile, RuleFile, ServerFile,
    SettingsFile, SiteFile, SourceFile, TestUrlFile,
};
use super::shape::parse;
use super::values::{
    MAX_DURATION, cron_schedule, css, date_format, domains, duration, duration_any, http_url,
    in_range, regex, size, slug, time_zone,
};
use super::*;
use crate::model::ALL_CATEGORY;

pub(super) fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let root = path.parent().unwrap_or(Path::new("."));
    let mut diags = Diagnostics::default();
    let mut files = vec![path.to_owned()];
    let settings_src = SourceText {
        path: path.to_owned(),
        text,
    };
    let Some(parsed) = parse::<SettingsFile>(&settings_src, &mut diags) else {
        return Err(ConfigError::Invalid(diags.into_vec()));
    };
    let raw = parsed.value;
    let settings = build_settings(&raw, root, &settings_src, &mut diags);
    // The paths of the other files may be what the syntax error hid.
    if !parsed.whole {
        return Err(ConfigError::Invalid(diags.into_vec()));
    }

    let categories_path = root.join(raw.categories.get_ref());
    files.push(categories_path.clone());
    let before = diags.len();
    let categories = match read_file(&categories_path, &settings_src, &raw.categories, &mut diags) {
        Some(src) => parse::<CategoriesFile>(&src, &mut diags)
            .map(|f| build_categories(f.value, f.whole, &src, &mut diags))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    // A category left out for a mistake in its file is not also missing where it is used.
    let categories_known = diags.len() == before;

    let mut sources = Vec::new();
    let mut seen_ids: HashMap<String, String> = HashMap::new();
    for source_path in source_paths(root, &raw.sources, &settings_src, &mut diags) {
        files.push(source_path.clone());
        let Some(src) = read_file(&source_path, &settings_src, &raw.sources, &mut diags) else {
            continue;
        };
        let Some(site) = parse::<SiteFile>(&src, &mut diags) else {
            continue;
        };
        let ctx = SiteContext {
            src: &src,
            whole: site.whole,
            categories: &categories,
            categories_known,
            default_tz: settings.as_ref().map(|s| s.timezone),
        };
        sources.extend(build_site(site.value, &ctx, &mut seen_ids, &mut diags));
    }

    match settings {
        Some(settings) if diags.is_empty() => Ok(Config {
            settings,
            categories,
            sources,
            files,
            sources_dir: glob_prefix(&root.join(raw.sources.get_ref())),
        }),
        _ => Err(ConfigError::Invalid(diags.into_vec())),
    }
}

fn read_file(
    path: &Path,
    from: &SourceText,
    named_at: &Spanned<String>,
    diags: &mut Diagnostics,
) -> Option<SourceText> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(SourceText {
            path: path.to_owned(),
            text,
        }),
        Err(err) => {
            diags.error(
                from,
                named_at.span(),
                format!("cannot read {}: {err}", path.display()),
                Some("paths are relative to the folder that holds bantin.toml".into()),
            );
            None
        }
    }
}

fn source_paths(
    root: &Path,
    pattern: &Spanned<String>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Vec<PathBuf> {
    let full = root.join(pattern.get_ref());
    match glob::glob(&full.to_string_lossy()) {
        Ok(paths) => {
            let mut paths: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
            paths.sort();
            paths
        }
        Err(err) => {
            diags.error(
                src,
                pattern.span(),
                format!("`sources` is not a valid glob pattern: {err}"),
                Some("write e.g. \"sources/*.toml\"".into()),
            );
            Vec::new()
        }
    }
}

/// The folder part of a glob pattern, before the first wildcard, if it exists.
fn glob_prefix(pattern: &Path) -> Option<PathBuf> {
    let mut dir = PathBuf::new();
    for part in pattern.components() {
        if part
            .as_os_str()
            .to_string_lossy()
            .contains(['*', '?', '[', '{'])
        {
            break;
        }
        dir.push(part);
    }
    dir.is_dir().then_some(dir)
}

fn build_settings(
    raw: &SettingsFile,
    root: &Path,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<Settings> {
    let before = diags.len();
    let base_url = http_url(&raw.base_url, "base_url", src, diags);
    let listen = match raw.listen.get_ref().parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            diags.error(
                src,
                raw.listen.span(),
                format!(
                    "`listen` = {:?} is not an address with a port",
                    raw.listen.get_ref()
                ),
                Some("write e.g. \"127.0.0.1:8080\" or \"[::]:8080\"".into()),
            );
            None
        }
    };
    let timezone = time_zone(&raw.timezone, src, diags);
    let items_per_feed = in_range(
        &raw.items_per_feed,
        "items_per_feed",
        1..=10_000,
        src,
        diags,
    );
    let retention_days = in_range(
        &raw.retention_days,
        "retention_days",
        1..=36_500,
        src,
        diags,
    );
    let raw_page_days = in_range(&raw.raw_page_days, "raw_page_days", 0..=36_500, src, diags);
    let distance = in_range(
        &raw.near_duplicate_distance,
        "near_duplicate_distance",
        0..=8,
        src,
        diags,
    );
    if raw.user_agent.get_ref().trim().is_empty() {
        diags.error(
            src,
            raw.user_agent.span(),
            "`user_agent` is empty",
            Some("write e.g. \"bantin/0.1 (+https://example.org/contact)\"".into()),
        );
    }
    let websub_hub = raw
        .websub_hub
        .as_ref()
        .and_then(|hub| http_url(hub, "websub_hub", src, diags));
    let shutdown_timeout = duration(&raw.shutdown_timeout, "shutdown_timeout", true, src, diags);
    let fetch = build_fetch(&raw.fetch, src, diags);
    let server = build_server(&raw.server, src, diags);
    let lease = worker_lease(&raw.workers.lease, src, diags);
    let data_dir = root.join(raw.data_dir.get_ref());
    let database =
        super::database::build_database(raw.database_url.as_ref(), &data_dir, root, src, diags);
    if diags.len() > before {
        return None;
    }
    Some(Settings {
        database: database?,
        data_dir,
        feeds_dir: root.join(raw.feeds_dir.get_ref()),
        base_url: base_url?,
        listen: listen?,
        timezone: timezone?,
        items_per_feed: items_per_feed? as usize,
        user_agent: raw.user_agent.get_ref().trim().to_owned(),
        title: raw.title.get_ref().clone(),
        language: raw.language.get_ref().clone(),
        retention_days: retention_days? as u32,
        raw_page_days: raw_page_days? as u32,
        near_duplicate_distance: distance? as u32,
        websub_hub,
        stylesheet: raw.stylesheet,
        shutdown_timeout: shutdown_timeout?,
        fetch: fetch?,
        server: server?,
        workers: WorkerSettings { lease: lease? },
    })
}

/// Shortest `[workers] lease`: a worker renews its claims every third of it, and a
/// store call may take a while on a busy database.
const MIN_LEASE: Duration = Duration::from_secs(1);

fn worker_lease(
    raw: &Spanned<String>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<Duration> {
    let lease = duration(raw, "lease", false, src, diags)?;
    if lease < MIN_LEASE {
        diags.error(
            src,
            raw.span(),
            format!("`lease` = {:?} is shorter than 1s", raw.get_ref()),
            Some("workers renew their claims every third of the lease: write e.g. \"30s\"".into()),
        );
        return None;
    }
    Some(lease)
}

/// Most connections `max_connections` may name; each needs an open file.
const MAX_CONNECTIONS: i64 = 1 << 20;

fn build_server(
    raw: &ServerFile,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<ServerSettings> {
    let header_read_timeout = duration(
        &raw.header_read_timeout,
        "header_read_timeout",
        false,
        src,
        diags,
    );
    let idle_timeout = duration(&raw.idle_timeout, "idle_timeout", false, src, diags);
    let request_timeout = duration(&raw.request_timeout, "request_timeout", false, src, diags);
    let max_connections = match &raw.max_connections {
        Some(max) => {
            Some(in_range(max, "max_connections", 1..=MAX_CONNECTIONS, src, diags)? as usize)
        }
        None => None,
    };
    Some(ServerSettings {
        header_read_timeout: header_read_timeout?,
        idle_timeout: idle_timeout?,
        request_timeout: request_timeout?,
        max_connections,
    })
}

fn build_fetch(
    raw: &FetchFile,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<FetchSettings> {
    let timeout = duration(&raw.timeout, "timeout", false, src, diags);
    let connect_timeout = duration(&raw.connect_timeout, "connect_timeout", false, src, diags);
    let max_body_bytes = size(&raw.max_body_bytes, src, diags);
    let max_redirects = in_range(&raw.max_redirects, "max_redirects", 0..=20, src, diags);
    let per_host = in_range(
        &raw.per_host_concurrency,
        "per_host_concurrency",
        1..=64,
        src,
        diags,
    );
    let per_host_delay = duration(&raw.per_host_delay, "per_host_delay", true, src, diags);
    let global = in_range(
        &raw.global_concurrency,
        "global_concurrency",
        1..=1024,
        src,
        diags,
    );
    let robots_ttl = duration(&raw.robots_ttl, "robots_ttl", false, src, diags);
    let max_retries = in_range(&raw.max_retries, "max_retries", 0..=10, src, diags);
    let backoff_base = duration(&raw.backoff_base, "backoff_base", false, src, diags);
    let backoff_cap = duration(&raw.backoff_cap, "backoff_cap", false, src, diags);
    let retry_after_scope = match raw.retry_after_scope.get_ref().as_str() {
        "url" => Some(RetryAfterScope::Url),
        "host" => Some(RetryAfterScope::Host),
        other => {
            diags.error(
                src,
                raw.retry_after_scope.span(),
                format!("`retry_after_scope` = {other:?} is not known"),
                Some("write \"url\" or \"host\"".into()),
            );
            None
        }
    };
    Some(FetchSettings {
        timeout: timeout?,
        connect_timeout: connect_timeout?,
        max_body_bytes: max_body_bytes?,
        max_redirects: max_redirects? as usize,
        per_host_concurrency: per_host? as usize,
        per_host_delay: per_host_delay?,
        global_concurrency: global? as usize,
        obey_robots: raw.obey_robots,
        robots_ttl: robots_ttl?,
        allow_private_networks: raw.allow_private_networks,
        retry_after_scope: retry_after_scope?,
        max_retries: max_retries? as u32,
        backoff_base: backoff_base?,
        backoff_cap: backoff_cap?,
    })
}

fn build_categories(
    file: CategoriesFile,
    whole: bool,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Vec<Category> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for raw in file.categories {
        let id_ok = slug(&raw.id, "category id", src, diags);
        if raw.id.get_ref() == ALL_CATEGORY {
            diags.error(
                src,
                raw.id.span(),
                "category id `all` is reserved for the feed of everything",
                Some("choose another id; every item is in `all` already".into()),
            );
            continue;
        }
        if let Some(first) = seen.get(raw.id.get_ref()) {
            let (line, _) = src.line_col(*first);
            diags.error(
                src,
                raw.id.span(),
                format!("category id `{}` is defined twice", raw.id.get_ref()),
                Some(format!(
                    "the first definition is on line {line}; rename one"
                )),
            );
            continue;
        }
        seen.insert(raw.id.get_ref().clone(), raw.id.span().start);
        let rules: Vec<Rule> = raw
            .rules
            .into_iter()
            .filter_map(|r| build_rule(r, whole, src, diags))
            .collect();
        if id_ok {
            out.push(Category {
                id: CategoryId(raw.id.into_inner()),
                title: raw.title,
                description: raw.description,
                rules,
            });
        }
    }
    out
}

fn build_rule(
    raw: RuleFile,
    whole: bool,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<Rule> {
    let terms = |list: Vec<Spanned<String>>, diags: &mut Diagnostics| -> Vec<String> {
        list.into_iter()
            .filter_map(|t| {
                let term = crate::text::normalize(t.get_ref()).to_lowercase();
                if term.is_empty() {
                    diags.error(src, t.span(), "empty keyword", Some("remove it".into()));
                    None
                } else {
                    Some(term)
                }
            })
            .collect()
    };
    // Terms written but all empty were reported as such, not also as missing.
    let terms_written = !raw.any.is_empty() || !raw.all.is_empty();
    let any = terms(raw.any, diags);
    let all = terms(raw.all, diags);
    let none = terms(raw.none, diags);
    let mut fields = Vec::new();
    for name in raw.fields.get_ref() {
        match Field::named(name).filter(|f| RULE_FIELDS.contains(f)) {
            Some(field) => fields.push(field),
            None => {
                let other = name.as_str();
                let help = did_you_mean(other, RULE_FIELDS.map(Field::name))
                    .map(|r| format!("did you mean \"{r}\"?"))
                    .unwrap_or_else(|| "use \"title\", \"lead\" or \"body\"".into());
                diags.error(
                    src,
                    raw.fields.span(),
                    format!("unknown rule field {other:?}"),
                    Some(help),
                );
            }
        }
    }
    let min_hits = in_range(&raw.min_hits, "min_hits", 1..=100, src, diags)?;
    if any.is_empty() && all.is_empty() {
        if terms_written || !whole {
            return None;
        }
        diags.error(
            src,
            raw.fields.span(),
            "this rule has no `any` or `all` terms, so it can never match",
            Some("add e.g. any = [\"công tác đảng\"]".into()),
        );
        return None;
    }
    Some(Rule {
        any,
        all,
        none,
        fields,
        fold_diacritics: raw.fold_diacritics,
        min_hits: min_hits as usize,
    })
}

struct SiteContext<'a> {
    src: &'a SourceText,
    /// Whether the whole file could be read (see [`super::shape::Parsed::whole`]).
    whole: bool,
    categories: &'a [Category],
    /// Whether `categories` is every category the categories file defines.
    categories_known: bool,
    default_tz: Option<Tz>,
}

fn build_site(
    mut site: SiteFile,
    ctx: &SiteContext<'_>,
    seen_ids: &mut HashMap<String, String>,
    diags: &mut Diagnostics,
) -> Vec<Source> {
    let src = ctx.src;
    let defaults = SiteDefaults {
        tz: site
            .timezone
            .as_ref()
            .and_then(|tz| time_zone(tz, src, diags)),
        domains: domains(&site.allowed_domains, src, diags),
        rules: build_extract(&site.extract, src, diags),
        refresh: build_refresh(&site.refresh, Refresh::default(), src, diags),
    };
    let mut out = Vec::new();
    for raw in std::mem::take(&mut site.sources) {
        let before = diags.len();
        let id_ok = slug(&raw.id, "source id", src, diags);
        if id_ok {
            let (line, _) = src.line_col(raw.id.span().start);
            let here = format!("{}:{line}", src.path.display());
            if let Some(first) = seen_ids.insert(raw.id.get_ref().clone(), here) {
                diags.error(
                    src,
                    raw.id.span(),
                    format!("source id `{}` is used twice", raw.id.get_ref()),
                    Some(format!(
                        "it is first used at {first}; source ids must be unique"
                    )),
                );
            }
        }
        if let Some(source) = build_source(raw, &site, &defaults, ctx, diags)
            && diags.len() == before
        {
            out.push(source);
        }
    }
    out
}

/// What a site file's top-level keys give each of its sources.
struct SiteDefaults {
    tz: Option<Tz>,
    domains: Vec<String>,
    rules: ArticleRules,
    refresh: Refresh,
}

fn build_source(
    raw: SourceFile,
    site: &SiteFile,
    defaults: &SiteDefaults,
    ctx: &SiteContext<'_>,
    diags: &mut Diagnostics,
) -> Option<Source> {
    let src = ctx.src;
    let kind = match raw.kind.get_ref().as_str() {
        "listing" => Some(SourceKind::Listing),
        "feed" => Some(SourceKind::Feed),
        "sitemap" => Some(SourceKind::Sitemap),
        other => {
            let help = did_you_mean(other, ["listing", "feed", "sitemap"])
                .map(|r| format!("did you mean \"{r}\"?"))
                .unwrap_or_else(|| "use \"listing\", \"feed\" or \"sitemap\"".into());
            diags.error(
                src,
                raw.kind.span(),
                format!("unknown source kind {other:?}"),
                Some(help),
            );
            None
        }
    };
    if raw.urls.is_empty() && ctx.whole {
        diags.error(
            src,
            raw.id.span(),
            format!("source `{}` has no `urls`", raw.id.get_ref()),
            Some("add urls = [\"https://example.org/section/\"]".into()),
        );
    }
    let urls: Vec<Url> = raw
        .urls
        .iter()
        .filter_map(|u| http_url(u, "urls", src, diags))
        .collect();
    let schedule = cron_schedule(&raw.schedule, src, diags);
    let mut categories = Vec::new();
    for c in &raw.categories {
        if ctx.categories.iter().any(|k| k.id.as_str() == c.get_ref()) {
            categories.push(CategoryId(c.get_ref().clone()));
        } else if c.get_ref() != ALL_CATEGORY && ctx.categories_known {
            let known = ctx.categories.iter().map(|k| k.id.as_str());
            let help = match did_you_mean(c.get_ref(), known) {
                Some(r) => format!("did you mean \"{r}\"?"),
                None => "define it in categories.toml or remove it".into(),
            };
            diags.error(
                src,
                c.span(),
                format!(
                    "category `{}` is not defined in categories.toml",
                    c.get_ref()
                ),
                Some(help),
            );
        }
    }
    let timezone = match &raw.timezone {
        Some(tz) => time_zone(tz, src, diags),
        None => defaults.tz.or(ctx.default_tz),
    };
    let mut allowed_domains: Vec<String> = urls
        .iter()
        .filter_map(|u| u.host_str())
        .map(|h| h.trim_start_matches("www.").to_ascii_lowercase())
        .collect();
    allowed_domains.extend(defaults.domains.iter().cloned());
    allowed_domains.extend(domains(&raw.allowed_domains, src, diags));
    allowed_domains.sort();
    allowed_domains.dedup();
    let max_age = raw.max_age.as_ref().and_then(|a| {
        duration_any(
            a,
            "max_age",
            Duration::from_secs(3650 * 24 * 3600),
            src,
            diags,
        )
    });
    let max_articles = in_range(&raw.max_articles, "max_articles", 1..=100_000, src, diags);
    let links = build_links(&raw.links, src, diags);
    // An invalid selector or pattern is reported as such, not also as missing.
    let links_written = raw.links.selector.is_some() || raw.links.pattern.is_some();
    if kind == Some(SourceKind::Listing) && !links_written && ctx.whole {
        diags.error(
            src,
            raw.kind.span(),
            format!(
                "listing source `{}` has no way to find article links",
                raw.id.get_ref()
            ),
            Some("add [source.links] with selector = \"...\" and/or pattern = \"...\"".into()),
        );
    }
    let extract = build_extract(&raw.extract, src, diags).or(&defaults.rules);
    let refresh = build_refresh(&raw.refresh, defaults.refresh, src, diags);
    let test_urls = raw
        .test_urls
        .iter()
        .filter_map(|t| build_test_url(t, src, diags))
        .collect();
    Some(Source {
        id: SourceId(raw.id.get_ref().clone()),
        kind: kind?,
        urls,
        schedule: schedule?,
        schedule_text: raw.schedule.get_ref().clone(),
        categories,
        timezone: timezone?,
        allowed_domains,
        language: raw.language.clone().or_else(|| site.language.clone()),
        full_text: raw.full_text,
        max_age,
        max_articles: max_articles? as usize,
        links,
        extract,
        refresh,
        test_urls,
        file: src.path.clone(),
    })
}

/// `[refresh]` keys over `inherited`: each key written replaces the inherited value.
fn build_refresh(
    raw: &RefreshFile,
    inherited: Refresh,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Refresh {
    let every = raw
        .every
        .as_ref()
        .and_then(|e| duration(e, "every", false, src, diags));
    let within = raw
        .within
        .as_ref()
        .and_then(|w| duration_any(w, "within", MAX_DURATION, src, diags));
    Refresh {
        every: every.unwrap_or(inherited.every),
        within: within.unwrap_or(inherited.within),
    }
}

fn build_links(raw: &LinksFile, src: &SourceText, diags: &mut Diagnostics) -> LinkRules {
    LinkRules {
        selector: raw.selector.as_ref().and_then(|s| css(s, src, diags)),
        pattern: raw.pattern.as_ref().and_then(|p| regex(p, src, diags)),
        next_page: raw.next_page.as_ref().and_then(|s| css(s, src, diags)),
        max_pages: raw
            .max_pages
            .as_ref()
            .and_then(|m| in_range(m, "max_pages", 1..=1000, src, diags))
            .map_or(DEFAULT_MAX_PAGES, |m| m as usize),
    }
}

fn build_extract(raw: &ExtractFile, src: &SourceText, diags: &mut Diagnostics) -> ArticleRules {
    let mut sel = |s: &Option<Spanned<String>>| s.as_ref().and_then(|s| css(s, src, diags));
    ArticleRules {
        title: sel(&raw.title),
        published: sel(&raw.published),
        updated: sel(&raw.updated),
        author: sel(&raw.author),
        lead: sel(&raw.lead),
        body: sel(&raw.body),
        image: sel(&raw.image),
        tags: sel(&raw.tags),
        section: sel(&raw.section),
        published_format: raw
            .published_format
            .as_ref()
            .and_then(|f| date_format(f, src, diags)),
        updated_format: raw
            .updated_format
            .as_ref()
            .and_then(|f| date_format(f, src, diags)),
        remove: raw
            .remove
            .iter()
            .filter_map(|s| css(s, src, diags))
            .collect(),
    }
}

impl ArticleRules {
    /// Field by field: this source's selector, else the site's.
    fn or(self, site: &ArticleRules) -> ArticleRules {
        ArticleRules {
            title: self.title.or_else(|| site.title.clone()),
            published: self.published.or_else(|| site.published.clone()),
            published_format: self
                .published_format
                .or_else(|| site.published_format.clone()),
            updated: self.updated.or_else(|| site.updated.clone()),
            updated_format: self.updated_format.or_else(|| site.updated_format.clone()),
            author: self.author.or_else(|| site.author.clone()),
            lead: self.lead.or_else(|| site.lead.clone()),
            body: self.body.or_else(|| site.body.clone()),
            image: self.image.or_else(|| site.image.clone()),
            tags: self.tags.or_else(|| site.tags.clone()),
            section: self.section.or_else(|| site.section.clone()),
            remove: site.remove.iter().cloned().chain(self.remove).collect(),
        }
    }
}

fn build_test_url(raw: &TestUrlFile, src: &SourceText, diags: &mut Diagnostics) -> Option<TestUrl> {
    let url = http_url(&raw.url, "url", src, diags)?;
    let published = match &raw.published {
        Some(p) => match chrono::DateTime::parse_from_rfc3339(p) {
            Ok(d) => Some(d),
            Err(err) => {
                diags.error(
                    src,
                    raw.url.span(),
                    format!("test url `published` = {p:?} is not RFC 3339: {err}"),
                    Some("write e.g. \"2020-07-17T21:54:00+07:00\"".into()),
                );
                return None;
            }
        },
        None => None,
    };
    Some(TestUrl {
        url,
        title: raw.title.clone(),
        published,
        authors: raw.authors.clone(),
        lead_starts_with: raw.lead_starts_with.clone(),
        body_starts_with: raw.body_starts_with.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_prefix_is_the_folder_before_the_first_wildcard() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sites")).unwrap();
        let sites = dir.path().join("sites");
        assert_eq!(glob_prefix(&sites.join("*.toml")), Some(sites.clone()));
        assert_eq!(glob_prefix(&sites.join("[a-z]*/x.toml")), Some(sites));
        assert_eq!(glob_prefix(&dir.path().join("missing/*.toml")), None);
    }
}
