//! Published documents, for both backends: a publish stores the documents it changed
//! and forgets those it removed, and the publish generation moves exactly when it did
//! either, so servers polling the generation fetch a publish once. Each backend gives
//! the reads and writes in its own SQL, as a [`PublishedSql`] impl on its transaction
//! type. The publish lock is each backend's own.

use std::collections::BTreeMap;

use super::{DocumentVersion, Published, PublishedDocument, StoreError};

/// The reads and writes of published documents, in one backend's SQL, within the
/// transaction the decisions run in.
pub(super) trait PublishedSql {
    /// The validators of each stored document, by name.
    fn published_versions(&mut self) -> Result<BTreeMap<String, DocumentVersion>, StoreError>;
    /// Stores a document, replacing the one of its name.
    fn save_document(&mut self, doc: &PublishedDocument) -> Result<(), StoreError>;
    fn remove_document(&mut self, name: &str) -> Result<(), StoreError>;
    fn bump_generation(&mut self) -> Result<(), StoreError>;
    /// The generation as stored.
    fn stored_generation(&mut self) -> Result<i64, StoreError>;
    fn documents(&mut self) -> Result<Vec<PublishedDocument>, StoreError>;
}

/// Stores the documents a publish `changed` and forgets those it `removed`, with a new
/// generation when either is not empty. Returns the generation now current.
pub(super) fn save(
    tx: &mut impl PublishedSql,
    changed: &[PublishedDocument],
    removed: &[String],
) -> Result<u64, StoreError> {
    for doc in changed {
        tx.save_document(doc)?;
    }
    for name in removed {
        tx.remove_document(name)?;
    }
    if moves_generation(changed, removed) {
        tx.bump_generation()?;
    }
    generation(tx)
}

/// Whether a publish is a new generation: it changed or removed a document.
fn moves_generation(changed: &[PublishedDocument], removed: &[String]) -> bool {
    !changed.is_empty() || !removed.is_empty()
}

/// The current publish generation.
pub(super) fn generation(tx: &mut impl PublishedSql) -> Result<u64, StoreError> {
    Ok(tx.stored_generation()?.max(0) as u64)
}

/// Every published document with their generation, read in the caller's one snapshot.
pub(super) fn published(tx: &mut impl PublishedSql) -> Result<Published, StoreError> {
    Ok(Published {
        documents: tx.documents()?,
        generation: generation(tx)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed() -> PublishedDocument {
        PublishedDocument {
            name: "all.rss".into(),
            body: b"<rss/>".to_vec(),
            etag: "\"1\"".into(),
            last_modified: None,
        }
    }

    #[test]
    fn a_publish_that_changed_or_removed_a_document_moves_the_generation() {
        assert!(moves_generation(&[feed()], &[]));
        assert!(moves_generation(&[], &["old.rss".into()]));
        assert!(moves_generation(&[feed()], &["old.rss".into()]));
    }

    #[test]
    fn a_publish_that_changed_nothing_keeps_the_generation() {
        assert!(!moves_generation(&[], &[]));
    }
}
