//! Published documents in SQLite's SQL: the bytes and validators of the last publish and
//! the publish generation, the [`PublishedSql`] impl that `publishing` decides over.

use std::collections::BTreeMap;

use rusqlite::{Transaction, params};

use super::encoding::{from_millis, sql, to_millis};
use super::publishing::PublishedSql;
use super::{DocumentVersion, PublishedDocument, StoreError};

impl PublishedSql for Transaction<'_> {
    fn published_versions(&mut self) -> Result<BTreeMap<String, DocumentVersion>, StoreError> {
        let mut stmt = self
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

    fn save_document(&mut self, doc: &PublishedDocument) -> Result<(), StoreError> {
        self.execute(
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
        Ok(())
    }

    fn remove_document(&mut self, name: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM published_documents WHERE name = ?1", [name])
            .map_err(sql("remove a published document"))?;
        Ok(())
    }

    fn bump_generation(&mut self) -> Result<(), StoreError> {
        self.execute(
            "UPDATE publish_generation SET generation = generation + 1",
            [],
        )
        .map_err(sql("bump the publish generation"))?;
        Ok(())
    }

    fn stored_generation(&mut self) -> Result<i64, StoreError> {
        self.query_row("SELECT generation FROM publish_generation", [], |r| {
            r.get(0)
        })
        .map_err(sql("read the publish generation"))
    }

    fn documents(&mut self) -> Result<Vec<PublishedDocument>, StoreError> {
        let mut stmt = self
            .prepare("SELECT name, body, etag, last_modified FROM published_documents")
            .map_err(sql("read published documents"))?;
        stmt.query_map([], |r| {
            Ok(PublishedDocument {
                name: r.get(0)?,
                body: r.get(1)?,
                etag: r.get(2)?,
                last_modified: r.get::<_, Option<i64>>(3)?.map(from_millis),
            })
        })
        .map_err(sql("read published documents"))?
        .collect::<Result<_, _>>()
        .map_err(sql("read published documents"))
    }
}
