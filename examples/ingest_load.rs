//! Records synthetic articles `0..COUNT` through `SqliteStore`, for the crash-safety
//! test (which kills this process at random moments and runs it again) and by hand:
//! `cargo run --release --example ingest_load -- DB [COUNT [BODY_WORDS]]`.

#[path = "../tests/integration/support/synthetic.rs"]
mod synthetic;

use std::path::PathBuf;

use bantin::model::{Outcome, SourceId};
use bantin::store::{SqliteStore, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let db = PathBuf::from(
        args.next()
            .ok_or("usage: ingest_load DB [COUNT [BODY_WORDS]]")?,
    );
    let count: u64 = args.next().map(|c| c.parse()).transpose()?.unwrap_or(5_000);
    let body_words: usize = args
        .next()
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(synthetic::TYPICAL_BODY_WORDS);
    let store = SqliteStore::open(&db, 3)?;
    let source = SourceId::from("load");
    let (mut new, mut unchanged) = (0u64, 0u64);
    for n in 0..count {
        match store.record(&synthetic::article(n, body_words), &source, &[], None)? {
            Outcome::New(_) => new += 1,
            Outcome::Unchanged(_) => unchanged += 1,
            other => return Err(format!("article {n}: unexpected {other:?}").into()),
        }
    }
    println!("new {new} unchanged {unchanged}");
    Ok(())
}
