//! Insert + dedup-check throughput of the store, near-duplicate lookup and search time
//! as the store grows: `cargo bench --bench store -- [MAX_ITEMS] [--postgres URL]`
//! (default 1,000,000 items, on SQLite; with `--postgres`, on an empty PostgreSQL
//! database at URL, whose tables the run leaves behind; peak RSS is then bantin's
//! alone, not the server's). Reports at 10k, 100k and 1M items: items/s and CPU time per item for the
//! last stretch, near-duplicate lookup time (mean of 1,000 queries, after 1,000 unmeasured), search time (mean
//! of 100 queries of each kind, newest 50 of `all`), database size and peak RSS.

#[path = "../tests/integration/support/synthetic.rs"]
mod synthetic;

use std::time::{Duration, Instant};

use bantin::dedup::simhash;
use bantin::model::ItemId;
use bantin::model::{CategoryId, Outcome, SourceId};
use bantin::store::{PostgresStore, SqliteStore, Store, StoreError};

const CHECKPOINTS: &[u64] = &[10_000, 100_000, 1_000_000];
const LOOKUPS: u64 = 1_000;
/// Lookups run before the measured ones, not counted.
const WARM_UP_LOOKUPS: u64 = 1_000;
const SEARCHES: u64 = 100;
/// Items a search returns, as a feed of the default length would.
const SEARCH_LIMIT: usize = 50;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) this process has used so far: unlike wall time, this
/// barely changes when other work shares the machine.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

/// The store under measurement.
enum Bench {
    Sqlite(SqliteStore, std::path::PathBuf),
    Postgres(PostgresStore, String),
}

impl Bench {
    fn store(&self) -> &dyn Store {
        match self {
            Bench::Sqlite(s, _) => s,
            Bench::Postgres(s, _) => s,
        }
    }

    fn find_near_duplicate(&self, h: u64) -> Result<Option<(ItemId, u32)>, StoreError> {
        match self {
            Bench::Sqlite(s, _) => s.find_near_duplicate(h),
            Bench::Postgres(s, _) => s.find_near_duplicate(h),
        }
    }

    fn size_mib(&self) -> Result<f64, Box<dyn std::error::Error>> {
        let bytes = match self {
            Bench::Sqlite(_, path) => std::fs::metadata(path)?.len() as f64,
            Bench::Postgres(_, url) => {
                let mut client = postgres::Client::connect(url, postgres::NoTls)?;
                let row = client.query_one("SELECT pg_database_size(current_database())", &[])?;
                row.get::<_, i64>(0) as f64
            }
        };
        Ok(bytes / (1024.0 * 1024.0))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let postgres_url = args
        .iter()
        .position(|a| a == "--postgres")
        .and_then(|i| args.get(i + 1).cloned());
    let max: u64 = args
        .iter()
        .filter(|a| Some(*a) != postgres_url.as_ref())
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let dir = tempfile::TempDir::new()?;
    let bench = match postgres_url {
        Some(url) => Bench::Postgres(PostgresStore::open(&url, 3)?, url),
        None => {
            let db = dir.path().join("bench.sqlite3");
            Bench::Sqlite(SqliteStore::open(&db, 3)?, db)
        }
    };
    let store = bench.store();
    let source = SourceId::from("bench");
    let bands = bantin::dedup::Bands::for_distance(3);
    println!(
        "near-duplicate distance 3: {}, {} probes per lookup",
        bands.layout(),
        bands.probes(0).len()
    );
    println!(
        "search: common = one word nearly every item holds; 5 words = the first 5 words of a \
         stored title (each in nearly every item too); none = a word no item holds"
    );
    println!(
        "{:>9} {:>10} {:>14} {:>14} {:>14} {:>13} {:>13} {:>13} {:>10} {:>10}",
        "items",
        "items/s",
        "CPU ms/item",
        "lookup hit µs",
        "lookup miss µs",
        "common ms",
        "5 words ms",
        "none ms",
        "db MiB",
        "peak MiB"
    );
    let all = CategoryId::from("all");
    let mut stored = 0u64;
    for &checkpoint in CHECKPOINTS.iter().filter(|&&c| c <= max) {
        let start = Instant::now();
        let cpu_start = cpu_seconds();
        let from = stored;
        while stored < checkpoint {
            let outcome = store.record(
                &synthetic::article(stored, synthetic::TYPICAL_BODY_WORDS),
                &source,
                &[],
                None,
            )?;
            assert!(
                matches!(outcome, Outcome::New(_)),
                "item {stored}: {outcome:?}"
            );
            stored += 1;
        }
        let rate = (stored - from) as f64 / start.elapsed().as_secs_f64();
        let cpu_ms_per_item = (cpu_seconds() - cpu_start) * 1e3 / (stored - from) as f64;

        // Unmeasured lookups first: the inserts left the cache full of their own pages
        // (on PostgreSQL, dirty ones each lookup would write back), which a store
        // taking a few items a minute between lookups does not see.
        for q in 0..WARM_UP_LOOKUPS {
            bench.find_near_duplicate(simhash(
                &synthetic::article(u64::MAX / 2 - q, 60).body_text,
            ))?;
        }
        // Near-duplicate queries: a stored item's SimHash with 2 bits flipped (found),
        // and a fresh text's (not found).
        let (mut hit, mut miss) = (Duration::ZERO, Duration::ZERO);
        for q in 0..LOOKUPS {
            let k = q.wrapping_mul(2_654_435_761) % stored;
            let h = simhash(&synthetic::article(k, synthetic::TYPICAL_BODY_WORDS).body_text)
                ^ (1 << (q % 64))
                ^ (1 << ((q * 7 + 3) % 64));
            let t = Instant::now();
            let found = bench.find_near_duplicate(h)?;
            hit += t.elapsed();
            assert!(found.is_some(), "stored item {k} not found");
            let fresh = simhash(&synthetic::article(u64::MAX - q, 60).body_text);
            let t = Instant::now();
            bench.find_near_duplicate(fresh)?;
            miss += t.elapsed();
        }
        // Searches over the whole store, each the mean of SEARCHES queries.
        let search_ms = |query: &dyn Fn(u64) -> String, at_least: usize| {
            let mut total = Duration::ZERO;
            for q in 0..SEARCHES {
                let words = query(q);
                let t = Instant::now();
                let found = store.search_items(&all, &words, SEARCH_LIMIT)?;
                total += t.elapsed();
                assert!(found.len() >= at_least, "{words:?}: {} found", found.len());
            }
            Ok::<_, Box<dyn std::error::Error>>(total.as_secs_f64() * 1e3 / SEARCHES as f64)
        };
        let common = search_ms(&|_| "an".to_owned(), SEARCH_LIMIT)?;
        let title = search_ms(
            &|q| {
                let k = q.wrapping_mul(2_654_435_761) % stored;
                let title = synthetic::article(k, 0).title;
                title
                    .split([' ', '-'])
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" ")
            },
            1,
        )?;
        let none = search_ms(&|q| format!("khongco{q}"), 0)?;
        let db_mib = bench.size_mib()?;
        println!(
            "{:>9} {:>10.0} {:>14.2} {:>14.1} {:>14.1} {:>13.2} {:>13.2} {:>13.2} {:>10.0} {:>10.0}",
            stored,
            rate,
            cpu_ms_per_item,
            hit.as_secs_f64() * 1e6 / LOOKUPS as f64,
            miss.as_secs_f64() * 1e6 / LOOKUPS as f64,
            common,
            title,
            none,
            db_mib,
            peak_rss_mib()
        );
    }
    Ok(())
}
