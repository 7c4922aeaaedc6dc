//! Published documents in PostgreSQL: the bytes and validators of the last publish and
//! the publish generation in this backend's SQL (the [`PublishedSql`] impl that
//! `store::publishing` decides over), and the advisory lock that lets one worker at a
//! time publish.

use std::collections::BTreeMap;

use postgres::Transaction;

use super::{Pool, off_async, pg};
use crate::store::encoding::{from_millis, to_millis};
use crate::store::publishing::PublishedSql;
use crate::store::{DocumentVersion, PublishedDocument, StoreError};

/// The advisory lock key held for the whole of a publish ("publish" in ASCII).
const PUBLISH_LOCK: i64 = 0x70_7562_6c69_7368;

/// A connection holding the publish lock (a session lock, so it is held across the
/// publish's several transactions); the lock goes with the session if the process
/// dies, and is released when this is dropped.
pub struct PublishSession {
    conn: Option<r2d2::PooledConnection<r2d2_postgres::PostgresConnectionManager<postgres::NoTls>>>,
}

impl PublishSession {
    /// Waits for the publish lock on a connection of `pool`.
    pub(super) fn lock(pool: &Pool) -> Result<PublishSession, StoreError> {
        off_async(|| {
            let mut conn = pool.get().map_err(StoreError::Checkout)?;
            conn.execute("SELECT pg_advisory_lock($1)", &[&PUBLISH_LOCK])
                .map_err(pg("take the publish lock"))?;
            Ok(PublishSession { conn: Some(conn) })
        })
    }
}

impl Drop for PublishSession {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        off_async(move || {
            if let Err(err) = conn.execute("SELECT pg_advisory_unlock($1)", &[&PUBLISH_LOCK]) {
                // The pool drops a broken connection, and the lock with its session.
                tracing::warn!(error = %err, "cannot release the publish lock");
            }
        });
    }
}

impl PublishedSql for Transaction<'_> {
    fn published_versions(&mut self) -> Result<BTreeMap<String, DocumentVersion>, StoreError> {
        let rows = self
            .query(
                "SELECT name, etag, last_modified FROM published_documents",
                &[],
            )
            .map_err(pg("read published documents"))?;
        Ok(rows
            .iter()
            .map(|r| {
                let version = DocumentVersion {
                    etag: r.get(1),
                    last_modified: r.get::<_, Option<i64>>(2).map(from_millis),
                };
                (r.get(0), version)
            })
            .collect())
    }

    fn save_document(&mut self, doc: &PublishedDocument) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO published_documents (name, body, etag, last_modified)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET body = excluded.body, etag = excluded.etag,
                 last_modified = excluded.last_modified",
            &[
                &doc.name,
                &doc.body,
                &doc.etag,
                &doc.last_modified.map(to_millis),
            ],
        )
        .map_err(pg("save a published document"))?;
        Ok(())
    }

    fn remove_document(&mut self, name: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM published_documents WHERE name = $1", &[&name])
            .map_err(pg("remove a published document"))?;
        Ok(())
    }

    fn bump_generation(&mut self) -> Result<(), StoreError> {
        self.execute(
            "UPDATE publish_generation SET generation = generation + 1",
            &[],
        )
        .map_err(pg("bump the publish generation"))?;
        Ok(())
    }

    fn stored_generation(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .query_one("SELECT generation FROM publish_generation", &[])
            .map_err(pg("read the publish generation"))?
            .get(0))
    }

    fn documents(&mut self) -> Result<Vec<PublishedDocument>, StoreError> {
        Ok(self
            .query(
                "SELECT name, body, etag, last_modified FROM published_documents",
                &[],
            )
            .map_err(pg("read published documents"))?
            .iter()
            .map(|r| PublishedDocument {
                name: r.get(0),
                body: r.get(1),
                etag: r.get(2),
                last_modified: r.get::<_, Option<i64>>(3).map(from_millis),
            })
            .collect())
    }
}
