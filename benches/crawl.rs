//! Crawl throughput: one listing source over a generated site of N articles served on
//! 127.0.0.1 by an in-process server, through the whole pipeline (fetch, extract,
//! classify, SQLite store) and a publish at the end. Prints articles per second and CPU
//! seconds per 1,000 articles.
//!
//! `cargo bench --bench crawl -- [ARTICLES]` (default 2000).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Path;
use axum::response::Html;
use axum::routing::get;
use bantin::config::Config;
use bantin::daemon::Service;

fn article_page(n: u32) -> String {
    let body: String = (0..8)
        .map(|p| {
            format!(
                "<p>Đoạn {p} của bài {n}: lực lượng Công an phường đã phối hợp với người dân \
                 tuần tra, kiểm soát địa bàn số {n}, ghi nhận kết quả cụ thể trong đợt cao điểm \
                 thứ {p}, góp phần giữ vững an ninh trật tự tại khu dân cư {n}-{p}.</p>"
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html><html lang=\"vi\"><head><meta charset=\"utf-8\"><title>Bài số {n} | Báo</title>\
         <meta property=\"og:image\" content=\"/img/{n}.jpg\"></head><body><header><nav>\
         <a href=\"/\">Trang chủ</a></nav></header><article><h1>Bắt giữ đối tượng trong vụ việc số {n}</h1>\
         <div class=\"date\">Thứ Sáu, 17/07/2020 21:54</div><p class=\"sapo\">(CAO) Tóm tắt bài {n}.</p>\
         <div class=\"content\">{body}<p style=\"text-align:right\"><strong>Phóng viên {n}</strong></p></div>\
         </article><aside><h3>Tin liên quan</h3><ul><li><a href=\"/a/1/\">Bài 1</a></li></ul></aside>\
         <footer>Báo mẫu</footer></body></html>"
    )
}

fn listing(count: u32) -> String {
    let links: String = (0..count)
        .map(|n| {
            format!(
                "<li><a href=\"/a/{n}-i{:06}/\">Bài {n}</a></li>",
                100_000 + n
            )
        })
        .collect();
    format!("<!DOCTYPE html><html><body><ul class=\"list\">{links}</ul></body></html>")
}

/// User and system CPU seconds of this process so far (Linux `/proc`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

#[tokio::main]
async fn main() {
    let count: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let app = Router::new()
        .route("/list/", get(move || async move { Html(listing(count)) }))
        .route(
            "/a/{slug}/",
            get(|Path(slug): Path<String>| async move {
                let n = slug
                    .split('-')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Html(article_page(n))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sources")).unwrap();
    std::fs::write(
        dir.path().join("bantin.toml"),
        "[fetch]\nallow_private_networks = true\nper_host_delay = \"0s\"\nper_host_concurrency = 8\nglobal_concurrency = 8\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("categories.toml"),
        bantin::demo::SHIPPED_CATEGORIES,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sources/bench.toml"),
        format!(
            "[[source]]\nid = \"bench\"\nkind = \"listing\"\nurls = [\"http://{site}/list/\"]\n\
             schedule = \"0 * * * *\"\nmax_articles = {count}\n[source.links]\npattern = \"-i\\\\d{{6}}/$\"\n"
        ),
    )
    .unwrap();
    let config =
        Arc::new(Config::load(&dir.path().join("bantin.toml")).expect("bench config is valid"));
    let service = Service::open(&config).unwrap();

    let (cpu0, start) = (cpu_seconds(), Instant::now());
    let runs = service
        .crawl(&config, config.sources.clone(), |_, _| {})
        .await;
    service.publish(&config).await.unwrap();
    let (cpu, wall) = (cpu_seconds() - cpu0, start.elapsed().as_secs_f64());
    let run = &runs[0].1;
    println!(
        "crawl of {count} articles: {} new, {} errors, {:.1} s wall, {:.0} articles/s, {:.1} CPU s per 1,000 articles",
        run.new,
        run.errors,
        wall,
        f64::from(count) / wall,
        cpu / f64::from(count) * 1000.0
    );
}
