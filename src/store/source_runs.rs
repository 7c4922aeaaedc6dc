//! Source fetch state, for both backends: the HTTP validators of the listing, feed and
//! sitemap pages a source asked for, and its runs — what a run record keeps, how
//! failures in a row count, and what a source's state derives from its stored runs.
//! Each backend gives the reads and writes in its own SQL, as a [`FetchStateSql`] impl
//! on its transaction type; no decision lives in a backend.

use chrono::{DateTime, Utc};
use url::Url;

use super::StoreError;
use super::encoding::{from_millis, to_millis};
use crate::model::{SourceId, SourceRun, SourceState, Validators};

/// Runs kept per source.
pub const RECENT_RUNS: usize = 20;

/// A source's stored standing, as its row holds it (times in ms).
pub(super) struct StateRow {
    pub source: String,
    pub last_success: Option<i64>,
    pub failures: u32,
}

/// The reads and writes of fetch state, in one backend's SQL, within the transaction
/// the decisions run in. Times are milliseconds; runs are stored as JSON.
pub(super) trait FetchStateSql {
    fn validators(&mut self, url: &Url) -> Result<Option<Validators>, StoreError>;
    /// Saves a page's validators; `source` is the source that asked, when known (a page
    /// saved without one keeps the source it had).
    fn save_validators(
        &mut self,
        url: &Url,
        validators: &Validators,
        source: Option<&SourceId>,
        saved_at: i64,
    ) -> Result<(), StoreError>;
    /// Every stored validator of the pages `source` asked for, with those of `urls`
    /// (saved before validators named their source), by address as stored.
    fn source_validators(
        &mut self,
        source: &SourceId,
        urls: &[Url],
    ) -> Result<Vec<(String, Validators)>, StoreError>;
    fn insert_run(&mut self, source: &SourceId, finished: i64, run: &str)
    -> Result<(), StoreError>;
    /// Deletes all but the newest `keep` runs of `source`.
    fn trim_runs(&mut self, source: &SourceId, keep: usize) -> Result<(), StoreError>;
    /// A run finished at `at` without failing: no failures in a row any more.
    fn save_success(&mut self, source: &SourceId, at: i64) -> Result<(), StoreError>;
    /// A run failed: one more failure in a row.
    fn count_failure(&mut self, source: &SourceId) -> Result<(), StoreError>;
    /// The rows of every source that has run, or of `only`, by source id.
    fn state_rows(&mut self, only: Option<&SourceId>) -> Result<Vec<StateRow>, StoreError>;
    /// The newest `limit` runs of `source`, newest first.
    fn recent_runs(&mut self, source: &str, limit: usize) -> Result<Vec<String>, StoreError>;
}

/// Saves a page's validators, for no source in particular.
pub(super) fn save_validators(
    tx: &mut impl FetchStateSql,
    url: &Url,
    validators: &Validators,
) -> Result<(), StoreError> {
    tx.save_validators(url, validators, None, to_millis(Utc::now()))
}

/// Every stored validator of the pages `source` asked for, and of `urls`.
pub(super) fn source_validators(
    tx: &mut impl FetchStateSql,
    source: &SourceId,
    urls: &[Url],
) -> Result<Vec<(Url, Validators)>, StoreError> {
    Ok(parsed_validators(tx.source_validators(source, urls)?))
}

/// Stored validators by address; a row whose address no longer parses is left out: its
/// page is asked in full.
fn parsed_validators(rows: Vec<(String, Validators)>) -> Vec<(Url, Validators)> {
    rows.into_iter()
        .filter_map(|(url, validators)| Some((Url::parse(&url).ok()?, validators)))
        .collect()
}

/// Saves the validators of pages `source` asked for, all saved at one time.
pub(super) fn save_source_validators(
    tx: &mut impl FetchStateSql,
    source: &SourceId,
    validators: &[(Url, Validators)],
) -> Result<(), StoreError> {
    let now = to_millis(Utc::now());
    for (url, v) in validators {
        tx.save_validators(url, v, Some(source), now)?;
    }
    Ok(())
}

/// What recording a run writes, decided before anything is written.
#[derive(Debug, PartialEq, Eq)]
struct RunRecord {
    /// When it finished (ms); a run that did not say is recorded as finished now.
    finished: i64,
    json: String,
    failed: bool,
}

impl RunRecord {
    fn of(run: &SourceRun, now: DateTime<Utc>) -> Result<RunRecord, StoreError> {
        let json = serde_json::to_string(run)
            .map_err(|e| StoreError::Corrupt(format!("source run cannot be encoded: {e}")))?;
        Ok(RunRecord {
            finished: to_millis(run.finished_at.unwrap_or(now)),
            json,
            failed: run.failed(),
        })
    }
}

/// Records a finished run of `source`, keeping its [`RECENT_RUNS`] newest runs: a failed
/// one ([`SourceRun::failed`]) adds one to the failures in a row, any other resets them
/// and is the last success.
pub(super) fn record_run(
    tx: &mut impl FetchStateSql,
    source: &SourceId,
    run: &SourceRun,
) -> Result<(), StoreError> {
    let record = RunRecord::of(run, Utc::now())?;
    tx.insert_run(source, record.finished, &record.json)?;
    tx.trim_runs(source, RECENT_RUNS)?;
    if record.failed {
        tx.count_failure(source)
    } else {
        tx.save_success(source, record.finished)
    }
}

/// The state of every source that has run, or of `only`, by source id.
pub(super) fn states(
    tx: &mut impl FetchStateSql,
    only: Option<&SourceId>,
) -> Result<Vec<SourceState>, StoreError> {
    let mut out = Vec::new();
    for row in tx.state_rows(only)? {
        let runs = tx.recent_runs(&row.source, RECENT_RUNS)?;
        out.push(derive_state(row, &runs)?);
    }
    Ok(out)
}

/// One source's state, if it has run.
pub(super) fn state(
    tx: &mut impl FetchStateSql,
    source: &SourceId,
) -> Result<Option<SourceState>, StoreError> {
    Ok(states(tx, Some(source))?.pop())
}

/// A source's state from its row and its stored runs (newest first): the last run is
/// the newest.
fn derive_state(row: StateRow, runs: &[String]) -> Result<SourceState, StoreError> {
    let recent_runs = runs
        .iter()
        .map(|json| {
            serde_json::from_str::<SourceRun>(json)
                .map_err(|e| StoreError::Corrupt(format!("source run of {}: {e}", row.source)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SourceState {
        source: Some(SourceId(row.source)),
        last_run: recent_runs.first().cloned(),
        last_success: row.last_success.map(from_millis),
        failures: row.failures,
        recent_runs,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::ReadFailure;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, hour, 0, 0).unwrap()
    }

    fn row() -> StateRow {
        StateRow {
            source: "cand".into(),
            last_success: Some(to_millis(at(9))),
            failures: 2,
        }
    }

    #[test]
    fn a_run_without_its_finish_time_is_recorded_as_finished_now() {
        let finished = SourceRun {
            finished_at: Some(at(8)),
            ..SourceRun::default()
        };
        assert_eq!(
            RunRecord::of(&finished, at(12)).unwrap().finished,
            to_millis(at(8))
        );
        let unfinished = SourceRun::default();
        assert_eq!(
            RunRecord::of(&unfinished, at(12)).unwrap().finished,
            to_millis(at(12))
        );
    }

    #[test]
    fn only_a_run_that_could_not_read_its_source_counts_as_a_failure() {
        let down = SourceRun {
            failure: Some(ReadFailure::Timeout),
            ..SourceRun::default()
        };
        let waiting = SourceRun {
            failure: Some(ReadFailure::RetryLater(at(13))),
            ..SourceRun::default()
        };
        assert!(RunRecord::of(&down, at(12)).unwrap().failed);
        assert!(!RunRecord::of(&waiting, at(12)).unwrap().failed);
        assert!(!RunRecord::of(&SourceRun::default(), at(12)).unwrap().failed);
    }

    #[test]
    fn a_recorded_run_reads_back_as_the_same_run() {
        let run = SourceRun {
            finished_at: Some(at(8)),
            links_found: 7,
            last_error: Some("GET http://127.0.0.1/ answered 503".into()),
            ..SourceRun::default()
        };
        let stored = RunRecord::of(&run, at(12)).unwrap().json;
        let state = derive_state(row(), &[stored]).unwrap();
        assert_eq!(state.recent_runs, vec![run]);
    }

    #[test]
    fn a_state_takes_its_newest_run_as_the_last_run() {
        let newest = SourceRun {
            links_found: 3,
            ..SourceRun::default()
        };
        let older = SourceRun {
            links_found: 5,
            ..SourceRun::default()
        };
        let runs = [&newest, &older].map(|r| serde_json::to_string(r).unwrap());
        let state = derive_state(row(), &runs).unwrap();
        assert_eq!(state.last_run, Some(newest));
        assert_eq!(state.recent_runs.len(), 2);
        assert_eq!(state.source, Some(SourceId("cand".into())));
        assert_eq!(state.last_success, Some(at(9)));
        assert_eq!(state.failures, 2);
    }

    #[test]
    fn a_state_of_a_source_without_stored_runs_has_no_last_run() {
        let state = derive_state(row(), &[]).unwrap();
        assert_eq!(state.last_run, None);
        assert!(state.recent_runs.is_empty());
    }

    #[test]
    fn an_unreadable_stored_run_is_reported_corrupt_naming_its_source() {
        let err = derive_state(row(), &["{not json".into()]).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(msg) if msg.contains("source run of cand")),
            "{err}"
        );
    }

    #[test]
    fn validators_stored_under_an_address_that_no_longer_parses_are_left_out() {
        let v = Validators {
            etag: Some("\"v1\"".into()),
            last_modified: None,
        };
        let rows = vec![
            ("http://127.0.0.1/listing".to_owned(), v.clone()),
            ("not an address".to_owned(), v.clone()),
        ];
        let url = Url::parse("http://127.0.0.1/listing").unwrap();
        assert_eq!(parsed_validators(rows), vec![(url, v)]);
    }
}
