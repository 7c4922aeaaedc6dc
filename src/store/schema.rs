//! Which schema migrations a database still needs, for both backends. Migrations are
//! numbered, and the numbers may have gaps (two lines of work each take a number, and
//! either may land first), so a database records the numbers it has applied, not only
//! the highest: a migration numbered below one already applied is still applied when
//! it arrives. Running the SQL is each backend's job.

use std::collections::BTreeSet;

use super::StoreError;

/// One schema migration: its number (from its file name) and its SQL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub number: u32,
    pub sql: &'static str,
}

/// What a database's migration does: numbers to record as applied already (a database
/// from before numbers were recorded), then the migrations to apply, in order.
#[derive(Debug)]
pub(crate) struct Plan {
    pub record: Vec<u32>,
    pub pending: Vec<Migration>,
}

/// The plan for a database whose highest number is `version` and which lists
/// `recorded` as applied. Only recorded numbers up to `version` count, so a database
/// taken back to an older version (by setting it) migrates forward again; a database
/// that never recorded numbers has everything up to `version`. A number this bantin
/// does not know means a newer bantin migrated the database: refused.
pub(crate) fn plan(
    known: &[Migration],
    version: u32,
    recorded: &BTreeSet<u32>,
) -> Result<Plan, StoreError> {
    let newest_known = latest(known);
    let unknown = recorded
        .iter()
        .copied()
        .chain(std::iter::once(version))
        .filter(|n| *n > newest_known || (*n > 0 && !known.iter().any(|m| m.number == *n)))
        .max();
    if let Some(unknown) = unknown {
        return Err(StoreError::Corrupt(format!(
            "schema version {unknown} is newer than this bantin understands ({newest_known})"
        )));
    }
    let applied = |n: u32| n <= version && (recorded.is_empty() || recorded.contains(&n));
    let record = if recorded.is_empty() {
        known
            .iter()
            .map(|m| m.number)
            .filter(|n| *n <= version)
            .collect()
    } else {
        Vec::new()
    };
    Ok(Plan {
        record,
        pending: known
            .iter()
            .filter(|m| !applied(m.number))
            .copied()
            .collect(),
    })
}

/// The highest migration number of `known`: what a migrated database's version says.
pub(crate) fn latest(known: &[Migration]) -> u32 {
    known.iter().map(|m| m.number).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[Migration] = &[
        Migration { number: 1, sql: "" },
        Migration { number: 2, sql: "" },
        Migration { number: 5, sql: "" },
        Migration { number: 7, sql: "" },
    ];

    fn numbers(version: u32, recorded: &[u32]) -> Vec<u32> {
        plan(KNOWN, version, &recorded.iter().copied().collect())
            .unwrap()
            .pending
            .iter()
            .map(|m| m.number)
            .collect()
    }

    #[test]
    fn pending_migrations_fill_gaps_and_follow_the_version() {
        assert_eq!(numbers(0, &[]), [1, 2, 5, 7], "a new database");
        assert_eq!(
            numbers(5, &[]),
            [7],
            "a database from before numbers were recorded"
        );
        assert_eq!(
            numbers(7, &[1, 2, 7]),
            [5],
            "a migration that landed after a later one"
        );
        assert_eq!(
            numbers(1, &[1, 2, 5, 7]),
            [2, 5, 7],
            "taken back to version 1"
        );
        assert!(numbers(7, &[1, 2, 5, 7]).is_empty(), "current");
    }

    #[test]
    fn a_database_from_before_the_record_records_what_its_version_covers() {
        let legacy = plan(KNOWN, 5, &BTreeSet::new()).unwrap();
        assert_eq!(legacy.record, [1, 2, 5]);
        assert!(plan(KNOWN, 5, &[1].into()).unwrap().record.is_empty());
    }

    #[test]
    fn a_database_migrated_by_a_newer_bantin_is_refused() {
        assert!(plan(KNOWN, 8, &BTreeSet::new()).is_err());
        assert!(plan(KNOWN, 7, &[1, 2, 5, 7, 8].into()).is_err());
    }
}
