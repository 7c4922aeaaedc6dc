//! The offline tour of `bantin demo`: a small sample news site embedded in the binary
//! (pages of bantin's own, in the markup of the cand.com.vn template the shipped config
//! describes), served on 127.0.0.1, and a configuration that points bantin at it.
//! The demo command runs them together; crawling, publishing and serving the feeds are
//! the pipeline's, the publisher's and the server's.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use include_dir::{Dir, include_dir};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Config;
use crate::daemon::{self, DaemonError, RunOptions, Service};
use crate::publish;

/// The sample site's pages: `site/<path>/index.html` is served at `/<path>/`.
static SITE: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/demo/site");
const ROBOTS_TXT: &str = include_str!("../demo/robots.txt");
/// The shipped categories, used as they are.
pub const SHIPPED_CATEGORIES: &str = include_str!("../config/categories.toml");
/// The shipped cand.com.vn site file, whose selectors the demo sources reuse.
const SHIPPED_CAND: &str = include_str!("../config/sources/cand.toml");
/// Written in the sample pages where the site's own address belongs; replaced when served.
const PLACEHOLDER_ORIGIN: &str = "http://bantin-demo.invalid";
/// How often the demo sources are crawled (cron with seconds).
pub const DEMO_SCHEDULE: &str = "*/30 * * * * *";

/// The sample site's sections and the category each one's items go to (none: the
/// keyword rules decide).
pub const DEMO_SECTIONS: [(&str, &str, Option<&str>); 3] = [
    ("demo-xay-dung-dang", "Xay-dung-Dang/", Some("party-work")),
    (
        "demo-hoat-dong-ll-cand",
        "Hoat-dong-LL-CAND/",
        Some("police-activities"),
    ),
    ("demo-tin-tong-hop", "Tin-tong-hop/", None),
];

/// One file of the sample site, ready to send.
struct Page {
    body: Vec<u8>,
    content_type: &'static str,
    etag: String,
    last_modified: SystemTime,
}

/// Serves the sample site on `listener` until `shutdown` is cancelled: 200 with the page
/// (ETag and Last-Modified set, conditional requests answered 304), 301 to add a missing
/// trailing slash, 404 for anything else.
pub async fn serve_site(listener: TcpListener, shutdown: CancellationToken) -> io::Result<()> {
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let pages = Arc::new(site_pages(&format!("http://{host}")));
    let app = Router::new().fallback(answer).with_state(pages);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Every page of the sample site by URL path, with the placeholder origin replaced.
fn site_pages(origin: &str) -> HashMap<String, Page> {
    let mut pages = HashMap::new();
    let mut dirs = vec![&SITE];
    while let Some(dir) = dirs.pop() {
        dirs.extend(dir.dirs());
        for file in dir.files() {
            let rel = file.path().to_string_lossy().replace('\\', "/");
            let url_path = match rel.strip_suffix("index.html") {
                Some(dir_path) => format!("/{dir_path}"),
                None => format!("/{rel}"),
            };
            let modified = file
                .metadata()
                .map_or(SystemTime::UNIX_EPOCH, |m| m.modified());
            pages.insert(url_path, page(&rel, file.contents(), modified, origin));
        }
    }
    let robots_modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    pages.insert(
        "/robots.txt".into(),
        page("robots.txt", ROBOTS_TXT.as_bytes(), robots_modified, origin),
    );
    pages
}

fn page(name: &str, contents: &[u8], modified: SystemTime, origin: &str) -> Page {
    let content_type = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("css") => "text/css; charset=utf-8",
        Some("xml") => "application/xml; charset=utf-8",
        _ => "application/octet-stream",
    };
    let body = match std::str::from_utf8(contents) {
        Ok(text) if !content_type.starts_with("application/octet") => {
            text.replace(PLACEHOLDER_ORIGIN, origin).into_bytes()
        }
        _ => contents.to_vec(),
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    Page {
        etag: format!("\"{:016x}\"", hasher.finish()),
        body,
        content_type,
        last_modified: modified,
    }
}

async fn answer(
    State(pages): State<Arc<HashMap<String, Page>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let path = uri.path();
    let Some(page) = pages.get(path) else {
        let with_slash = format!("{path}/");
        if pages.contains_key(&with_slash) {
            return (
                StatusCode::MOVED_PERMANENTLY,
                [(header::LOCATION, with_slash)],
            )
                .into_response();
        }
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found",
        )
            .into_response();
    };
    let last_modified = httpdate::fmt_http_date(page.last_modified);
    let not_modified = match headers.get(header::IF_NONE_MATCH) {
        Some(tags) => tags.to_str().is_ok_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == page.etag || t.trim() == "*")
        }),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| {
                // HTTP dates have whole seconds.
                let modified =
                    httpdate::parse_http_date(&last_modified).unwrap_or(page.last_modified);
                modified <= since
            }),
    };
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = if method == Method::HEAD {
            Body::empty()
        } else {
            Body::from(page.body.clone())
        };
        let mut response = Response::new(body);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(page.content_type),
        );
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, page.body.len().into());
        response
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&page.etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&last_modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `bantin.toml` of the demo: state and feeds in `data/` and `feeds/` next to it, the
/// server on `listen`, fetching allowed to reach the sample site on a private address
/// without delays.
pub fn demo_settings(listen: SocketAddr) -> String {
    format!(
        "# Written by `bantin demo`: the sample site on 127.0.0.1, crawled every 30 seconds.\n\
         data_dir = \"data\"\n\
         feeds_dir = \"feeds\"\n\
         base_url = \"http://{listen}/\"\n\
         listen = \"{listen}\"\n\
         timezone = \"Asia/Ho_Chi_Minh\"\n\
         title = \"bantin demo\"\n\
         language = \"vi\"\n\
         sources = \"sources/*.toml\"\n\
         categories = \"categories.toml\"\n\
         \n\
         [fetch]\n\
         allow_private_networks = true\n\
         per_host_delay = \"0s\"\n\
         obey_robots = true\n\
         timeout = \"10s\"\n"
    )
}

/// The demo's source file: one listing source per section of the sample site at
/// `site`, with the `[extract]` selectors and link rules of the shipped cand.com.vn file.
pub fn demo_sources(site: &Url) -> String {
    let shipped: toml::Table =
        toml::from_str(SHIPPED_CAND).expect("the shipped config/sources/cand.toml is valid TOML");
    let links = shipped
        .get("source")
        .and_then(|s| s.as_array())
        .and_then(|s| s.first())
        .and_then(|s| s.get("links"))
        .and_then(|l| l.as_table())
        .cloned()
        .expect("the shipped cand.toml has a listing source with [source.links]");
    let mut file = toml::Table::new();
    file.insert("timezone".into(), "Asia/Ho_Chi_Minh".into());
    file.insert("language".into(), "vi".into());
    if let Some(extract) = shipped.get("extract") {
        file.insert("extract".into(), extract.clone());
    }
    let sources = DEMO_SECTIONS
        .iter()
        .map(|(id, path, category)| {
            let url = site
                .join(path)
                .expect("a section path joins onto a base URL");
            let mut source = toml::Table::new();
            source.insert("id".into(), (*id).into());
            source.insert("kind".into(), "listing".into());
            source.insert("urls".into(), vec![toml::Value::from(url.as_str())].into());
            source.insert("schedule".into(), DEMO_SCHEDULE.into());
            if let Some(category) = category {
                source.insert(
                    "categories".into(),
                    vec![toml::Value::from(*category)].into(),
                );
            }
            let mut links = links.clone();
            links.insert("max_pages".into(), 3.into());
            source.insert("links".into(), links.into());
            toml::Value::Table(source)
        })
        .collect::<Vec<_>>();
    file.insert("source".into(), sources.into());
    format!(
        "# Written by `bantin demo`: the sections of the sample site at {site}, read with the\n\
         # selectors of config/sources/cand.toml.\n\n{}",
        toml::to_string(&file).expect("a TOML table serializes")
    )
}

/// Writes the demo configuration (`bantin.toml`, `categories.toml`, `sources/demo.toml`)
/// into `dir` and answers the path of its `bantin.toml`; state and feeds go to
/// `dir/data` and `dir/feeds`.
pub fn write_demo_config(dir: &Path, site: &Url, listen: SocketAddr) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("sources"))?;
    let settings = dir.join("bantin.toml");
    std::fs::write(&settings, demo_settings(listen))?;
    std::fs::write(dir.join("categories.toml"), SHIPPED_CATEGORIES)?;
    std::fs::write(dir.join("sources/demo.toml"), demo_sources(site))?;
    Ok(settings)
}

/// Where the sample site is served when the demo is not told: a fixed port, so that item
/// links and ids (made from the article addresses) stay the same from run to run.
pub const DEFAULT_SITE_LISTEN: &str = "127.0.0.1:8081";

/// `bantin demo`: serves the bundled sample site on `site_listen`, writes a configuration
/// for it into `dir`, crawls it once, publishes, prints where to look, then runs as the
/// daemon (the sample site is crawled again every 30 seconds) until `shutdown`. The site
/// is served for as long as the demo runs.
pub async fn run(
    dir: &Path,
    listen: SocketAddr,
    site_listen: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    let listener = daemon::bind(listen).await?;
    let listen = listener.local_addr().unwrap_or(listen);
    let site_listener = daemon::bind(site_listen).await?;
    let site_addr = site_listener.local_addr().unwrap_or(site_listen);
    let site =
        Url::parse(&format!("http://{site_addr}/")).expect("a socket address makes a valid URL");
    let site_task = tokio::spawn(serve_site(site_listener, shutdown.clone()));

    let config_path =
        write_demo_config(dir, &site, listen).map_err(|source| DaemonError::Demo {
            dir: dir.to_owned(),
            source,
        })?;
    let config = Arc::new(
        Config::load(&config_path).map_err(|err| DaemonError::DemoConfig(err.to_string()))?,
    );
    let service = Service::open(&config)?;
    println!("Sample site:   {site}");
    println!("Configuration: {}", config_path.display());
    // One source after the other: a story listed in two sections then always gets its
    // id from the same one, so ids are the same from run to run.
    let mut runs = Vec::new();
    for source in &config.sources {
        let one = vec![source.clone()];
        runs.extend(service.crawl(&config, one, |_, _| {}).await);
    }
    for (id, run) in &runs {
        println!(
            "  crawled {id}: {} links, {} new, {} duplicates, {} errors",
            run.links_found, run.new, run.duplicates, run.errors
        );
    }
    service.publish(&config).await?;
    println!("\nListening on http://{listen}/  (index page)");
    for feed in publish::feeds_for(&config) {
        println!(
            "  {:<20} {}",
            feed.id.as_str(),
            feed.url(publish::FeedFormat::Rss)
        );
    }
    println!("Press Ctrl-C to stop.\n");
    let result = daemon::run_with(
        service,
        listener,
        &config_path,
        config,
        RunOptions::default(),
        shutdown,
    )
    .await;
    let _ = site_task.await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_is_served_with_the_real_origin() {
        let pages = site_pages("http://127.0.0.1:1234");
        assert!(pages.len() >= 20, "{} pages", pages.len());
        for (path, page) in &pages {
            let text = String::from_utf8_lossy(&page.body);
            assert!(!text.contains(PLACEHOLDER_ORIGIN), "{path}");
        }
        assert!(pages.contains_key("/Xay-dung-Dang/"));
        assert!(pages.contains_key("/Xay-dung-Dang/page-2/"));
        assert!(pages.contains_key("/robots.txt"));
    }

    #[test]
    fn pages_are_addressed_like_the_real_site() {
        let pattern = regex::Regex::new(r"-i\d{5,}/?$").unwrap();
        let articles = site_pages("http://x")
            .into_keys()
            .filter(|p| pattern.is_match(p))
            .count();
        assert!((12..=16).contains(&articles), "{articles} articles");
    }
}
