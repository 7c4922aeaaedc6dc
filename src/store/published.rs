//! Published documents in SQLite: the bytes and validators of the last publish and
//! the generation number that every publish changing them bumps.

use std::collections::BTreeMap;

use rusqlite::{Transaction, params};

use super::encoding::{from_millis, sql, to_millis};
use super::{DocumentVersion, Published, PublishedDocument, StoreError};

pub(crate) fn versions(
    tx: &Transaction<'_>,
) -> Result<BTreeMap<String, DocumentVersion>, StoreError> {
    let mut stmt = tx
        .prepare("SELECT name, etag, last_modified FROM published_documents")
        .map_err(sql("read published documents"))?;
    let rows = stmt
        .query_map([], |r| {
            let version = DocumentVersion {
                etag: r.get(1)?,
                last_modified: r.get::<_, Option<i64>>(2)?.map(from_millis),
            };
            Ok((r.get(0)?, version))
        })
        .map_err(sql("read published documents"))?;
    rows.collect::<Result<_, _>>()
        .map_err(sql("read published documents"))
}

pub(crate) fn save(
    tx: &Transaction<'_>,
    changed: &[PublishedDocument],
    removed: &[String],
) -> Result<u64, StoreError> {
    for doc in changed {
        tx.execute(
            "INSERT INTO published_documents (name, body, etag, last_modified)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET body = excluded.body, etag = excluded.etag,
                 last_modified = excluded.last_modified",
            params![
                doc.name,
                doc.body,
                doc.etag,
                doc.last_modified.map(to_millis)
            ],
        )
        .map_err(sql("save a published document"))?;
    }
    for name in removed {
        tx.execute("DELETE FROM published_documents WHERE name = ?1", [name])
            .map_err(sql("remove a published document"))?;
    }
    if !changed.is_empty() || !removed.is_empty() {
        tx.execute(
            "UPDATE publish_generation SET generation = generation + 1",
            [],
        )
        .map_err(sql("bump the publish generation"))?;
    }
    generation(tx)
}

pub(crate) fn generation(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    tx.query_row("SELECT generation FROM publish_generation", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|g| g.max(0) as u64)
    .map_err(sql("read the publish generation"))
}

pub(crate) fn documents(tx: &Transaction<'_>) -> Result<Published, StoreError> {
    let mut stmt = tx
        .prepare("SELECT name, body, etag, last_modified FROM published_documents")
        .map_err(sql("read published documents"))?;
    let documents = stmt
        .query_map([], |r| {
            Ok(PublishedDocument {
                name: r.get(0)?,
                body: r.get(1)?,
                etag: r.get(2)?,
                last_modified: r.get::<_, Option<i64>>(3)?.map(from_millis),
            })
        })
        .map_err(sql("read published documents"))?
        .collect::<Result<_, _>>()
        .map_err(sql("read published documents"))?;
    Ok(Published {
        generation: generation(tx)?,
        documents,
    })
}
