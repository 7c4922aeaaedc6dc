//! Copying a SQLite store into an empty PostgreSQL database (`bantin migrate`): every
//! table the two backends share, row for row, with the same row ids, so items keep
//! their ids and links, and the feeds published from the copy are the same bytes. Rows
//! stream from SQLite into a binary `COPY` per table, so memory stays bounded however
//! large the store; the whole copy is one transaction, so a failed copy leaves the
//! target as it was.

use postgres::Transaction;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use rusqlite::types::Value;

use super::items::terms_of;
use super::pg;
use crate::store::StoreError;
use crate::store::encoding::{decode_article, sql};

/// The tables copied, parents before children. The search words (`items.terms`) are
/// computed on the way, as SQLite keeps them in an index of its own.
const TABLES: &[&str] = &[
    "items",
    "item_links",
    "item_categories",
    "simhash_bands",
    "raw_pages",
    "validators",
    "source_state",
    "source_runs",
    "meta",
    "article_state",
    "held_back",
    "published_documents",
    "publish_generation",
];
/// Tables that hold something of a store's own: a target with rows in any of them is
/// not empty. (`meta` and `publish_generation` are written when a database is created.)
const CONTENT_TABLES: &[&str] = &[
    "items",
    "raw_pages",
    "validators",
    "source_state",
    "source_runs",
    "article_state",
    "held_back",
    "published_documents",
];
/// Tables whose row ids come from a sequence, moved past the copied ids.
const IDENTITY_TABLES: &[&str] = &["items", "source_runs"];

/// How many rows of each table were copied, in copy order.
pub type CopyCounts = Vec<(&'static str, u64)>;

/// Whether the target holds a store's data already (see [`CONTENT_TABLES`]).
pub(super) fn holds_data(tx: &mut Transaction<'_>) -> Result<bool, StoreError> {
    for table in CONTENT_TABLES {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {table})");
        let any: bool = tx
            .query_one(&sql, &[])
            .map_err(pg("look for stored rows"))?
            .get(0);
        if any {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Copies every table of `from` into the target of `tx`, after emptying the target's
/// copies of them.
pub(super) fn copy_all(
    from: &rusqlite::Connection,
    tx: &mut Transaction<'_>,
) -> Result<CopyCounts, StoreError> {
    tx.batch_execute(&format!("TRUNCATE {} CASCADE", TABLES.join(", ")))
        .map_err(pg("empty the target tables"))?;
    let mut counts = Vec::new();
    for table in TABLES {
        counts.push((*table, copy_table(from, tx, table)?));
    }
    for table in IDENTITY_TABLES {
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'rowid'),
                           COALESCE((SELECT max(rowid) FROM {table}), 0) + 1, false)"
        );
        tx.execute(&sql, &[])
            .map_err(pg("move a row id sequence"))?;
    }
    Ok(counts)
}

/// Copies one table: the target's columns (and their types) say what to read.
fn copy_table(
    from: &rusqlite::Connection,
    tx: &mut Transaction<'_>,
    table: &str,
) -> Result<u64, StoreError> {
    let target = tx
        .prepare(&format!("SELECT * FROM {table} LIMIT 0"))
        .map_err(pg("read a table's columns"))?;
    let columns: Vec<(String, Type)> = target
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), c.type_().clone()))
        .collect();
    // Every column but the search words, which SQLite does not keep in the table.
    let read: Vec<&str> = columns
        .iter()
        .filter(|(_, ty)| *ty != Type::TEXT_ARRAY)
        .map(|(name, _)| name.as_str())
        .collect();
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let types: Vec<Type> = columns.iter().map(|(_, ty)| ty.clone()).collect();
    let copy = tx
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN (FORMAT binary)",
            names.join(", ")
        ))
        .map_err(pg("start copying a table"))?;
    let mut writer = BinaryCopyInWriter::new(copy, &types);
    let mut stmt = from
        .prepare(&format!("SELECT {} FROM {table}", read.join(", ")))
        .map_err(sql("read a table to copy"))?;
    let mut rows = stmt.query([]).map_err(sql("read a table to copy"))?;
    while let Some(row) = rows.next().map_err(sql("read a table to copy"))? {
        let mut values = Vec::with_capacity(columns.len());
        let mut read_index = 0;
        for (name, ty) in &columns {
            if *ty == Type::TEXT_ARRAY {
                values.push(search_words(row)?);
                continue;
            }
            let value: Value = row.get(read_index).map_err(sql("read a value to copy"))?;
            read_index += 1;
            values.push(convert(value, ty, table, name)?);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        writer.write(&refs).map_err(pg("copy a row"))?;
    }
    writer.finish().map_err(pg("finish copying a table"))
}

/// The search words of the item in `row` (a row of `items`, read with `id` and
/// `article` among its columns).
fn search_words(row: &rusqlite::Row<'_>) -> Result<Box<dyn ToSql + Sync>, StoreError> {
    let id: String = row.get("id").map_err(sql("read an item to copy"))?;
    let blob: Vec<u8> = row.get("article").map_err(sql("read an item to copy"))?;
    Ok(Box::new(terms_of(&decode_article(&blob, &id)?)))
}

/// A SQLite value as the PostgreSQL column type `ty` takes it.
fn convert(
    value: Value,
    ty: &Type,
    table: &str,
    column: &str,
) -> Result<Box<dyn ToSql + Sync>, StoreError> {
    let mismatch = |value: &Value| {
        StoreError::Corrupt(format!(
            "{table}.{column} holds {value:?}, which does not fit PostgreSQL's {ty}"
        ))
    };
    Ok(match (value, ty) {
        (Value::Null, &Type::INT8) => Box::new(None::<i64>),
        (Value::Null, &Type::INT4) => Box::new(None::<i32>),
        (Value::Null, &Type::BOOL) => Box::new(None::<bool>),
        (Value::Null, &Type::TEXT) => Box::new(None::<String>),
        (Value::Null, &Type::BYTEA) => Box::new(None::<Vec<u8>>),
        (Value::Integer(n), &Type::INT8) => Box::new(n),
        (Value::Integer(n), &Type::INT4) => {
            Box::new(i32::try_from(n).map_err(|_| mismatch(&Value::Integer(n)))?)
        }
        (Value::Integer(n), &Type::BOOL) => Box::new(n != 0),
        (Value::Text(text), &Type::TEXT) => Box::new(text),
        (Value::Blob(bytes), &Type::BYTEA) => Box::new(bytes),
        (value, _) => return Err(mismatch(&value)),
    })
}
