//! Выгрузка хранилища PostgreSQL: the backup of a PostgreSQL store, one consistent export
//! taken in a single `REPEATABLE READ, READ ONLY` transaction (every table, the row counts
//! and the consistency check see one snapshot, while syncs go on writing), and its restore
//! into a fresh schema or database.
//!
//! *Why not `pg_dump`*: a dump names its schema, and `pg_restore` cannot put it under
//! another name, while a restore drill goes into a new schema beside the running one; and
//! `pg_dump` must be at least the server's major version, one more thing to keep in step on
//! a school's machine. The export holds the same data in PostgreSQL's own `COPY` text
//! format, which `psql`'s `\copy … from` reads back too.
//!
//! The file (before zstd and age):
//! - line 1: `EJGATE-POSTGRES-EXPORT 1`;
//! - line 2: the header, one line of JSON: the schema version (the newest migration) and,
//!   per table in an order that loads (a table after those its foreign keys name), its
//!   columns and rows;
//! - per table, its rows in `COPY … TO STDOUT` text format (one line a row: tabs between
//!   columns, `\N` for NULL, backslash escapes), then a line `\.`.
//!
//! Dates and times are written with `DateStyle = ISO, YMD`, `TimeZone = UTC` and
//! `extra_float_digits = 3`, so the text reads back to the same values on any server.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::str::FromStr;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

use super::{db, tables_of_schema, PostgresStore, BACKEND, MIGRATOR};
use crate::store::{Inspection, StoreError, StoreResult};

/// The first line of an export.
pub const MAGIC: &str = "EJGATE-POSTGRES-EXPORT 1";

/// The session settings the text of dates, times and floats depends on.
const SETTINGS: [&str; 4] = [
    "SET LOCAL datestyle = 'ISO, YMD'",
    "SET LOCAL timezone = 'UTC'",
    "SET LOCAL extra_float_digits = 3",
    "SET LOCAL bytea_output = 'hex'",
];

/// The second line of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub schema_version: i64,
    pub tables: Vec<TableHeader>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableHeader {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: u64,
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn copy_columns(t: &TableHeader) -> String {
    t.columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")
}

fn io<'a>(what: &str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    let what = what.to_string();
    move |e| StoreError::Invalid(format!("{what} {}: {e}", path.display()))
}

/// The store's tables (the migrations' bookkeeping left out) in an order that loads: each
/// after the tables its foreign keys name, otherwise by name.
async fn load_order(conn: &mut PgConnection) -> StoreResult<Vec<String>> {
    let names = tables_of_schema(conn, "export: list the tables").await?;
    let edges: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.relname::text, b.relname::text FROM pg_constraint c JOIN pg_class a ON a.oid = c.conrelid \
         JOIN pg_class b ON b.oid = c.confrelid JOIN pg_namespace n ON n.oid = a.relnamespace \
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db("export: read the foreign keys"))?;
    let mut order: Vec<String> = Vec::new();
    let mut left = names;
    while !left.is_empty() {
        let ready = left.iter().position(|t| {
            edges
                .iter()
                .filter(|(from, to)| from == t && to != t)
                .all(|(_, to)| order.contains(to) || !left.contains(to))
        });
        // A cycle of foreign keys (there is none in ejgate's schema): the rest by name.
        let i = ready.unwrap_or(0);
        order.push(left.remove(i));
    }
    Ok(order)
}

/// The columns of a table a `COPY` writes (generated columns are computed, not loaded).
async fn columns(conn: &mut PgConnection, table: &str) -> StoreResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() \
         AND table_name = $1 AND is_generated = 'NEVER' ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .map_err(db("export: read the columns"))
}

impl PostgresStore {
    /// Writes the export of the whole store into a new file at `path`; the inspection is of
    /// the same snapshot as the data.
    pub(super) async fn export_into(&self, path: &Path) -> StoreResult<Inspection> {
        let mut tx = self.pool.begin().await.map_err(db("export: begin"))?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db("export: repeatable read"))?;
        for s in SETTINGS {
            sqlx::query(s).execute(&mut *tx).await.map_err(db("export: session settings"))?;
        }
        let inspection = super::inspect_in(&mut tx).await?;
        let mut header = Header { schema_version: inspection.schema_version, tables: Vec::new() };
        for name in load_order(&mut tx).await? {
            let rows = inspection.tables.get(&name).copied().unwrap_or(0);
            let columns = columns(&mut tx, &name).await?;
            header.tables.push(TableHeader { name, columns, rows });
        }
        let file = std::fs::File::create(path).map_err(io("export: cannot create", path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut write = |bytes: &[u8]| out.write_all(bytes).map_err(io("export: cannot write", path));
        write(format!("{MAGIC}\n").as_bytes())?;
        write(&serde_json::to_vec(&header).map_err(|e| StoreError::Invalid(format!("export header: {e}")))?)?;
        write(b"\n")?;
        for t in &header.tables {
            let sql = format!("COPY {} ({}) TO STDOUT", quote(&t.name), copy_columns(t));
            let mut stream = tx.copy_out_raw(&sql).await.map_err(db("export: COPY TO STDOUT"))?;
            let mut lines = 0u64;
            while let Some(chunk) = stream.try_next().await.map_err(db("export: COPY TO STDOUT"))? {
                lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
                write(&chunk)?;
            }
            drop(stream);
            // COPY reads the transaction's snapshot, as the count did.
            if lines != t.rows {
                return Err(StoreError::Invalid(format!(
                    "export: table {} gave {lines} rows to COPY and {} to count(*) in one snapshot",
                    t.name, t.rows
                )));
            }
            write(b"\\.\n")?;
        }
        let file = out.into_inner().map_err(|e| io("export: cannot write", path)(e.into_error()))?;
        file.sync_all().map_err(io("export: cannot sync", path))?;
        tx.commit().await.map_err(db("export: end the transaction"))?;
        Ok(inspection)
    }
}

/// Reads the first two lines of an export.
fn read_header(reader: &mut impl BufRead, path: &Path) -> StoreResult<Header> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(io("cannot read", path))?;
    if line.trim_end() != MAGIC {
        return Err(StoreError::Invalid(format!("{} is not an ejgate PostgreSQL export", path.display())));
    }
    line.clear();
    reader.read_line(&mut line).map_err(io("cannot read", path))?;
    serde_json::from_str(&line)
        .map_err(|e| StoreError::Invalid(format!("{}: the export's header cannot be read: {e}", path.display())))
}

/// Rows per table and the schema version of an export file, counted from its data (the
/// consistency check needs a database: it runs on restore).
pub fn inspect_export_file(path: &Path) -> StoreResult<Inspection> {
    let file = std::fs::File::open(path).map_err(io("cannot open", path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let header = read_header(&mut reader, path)?;
    let mut tables = std::collections::BTreeMap::new();
    let mut line = Vec::new();
    for t in &header.tables {
        let mut rows = 0u64;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(io("cannot read", path))? == 0 {
                return Err(StoreError::Invalid(format!(
                    "{}: the data of table {} is cut short",
                    path.display(),
                    t.name
                )));
            }
            if line == b"\\.\n" {
                break;
            }
            rows += 1;
        }
        tables.insert(t.name.clone(), rows);
    }
    Ok(Inspection { tables, schema_version: header.schema_version, problems: Vec::new() })
}

/// Loads an export into a fresh schema (the first of the URL's `search_path`) or a fresh
/// database: the migrations up to the export's schema version, every table's rows in one
/// transaction, the identity sequences set past the loaded ids, then the newer migrations.
/// A schema that holds any table is refused: a restore never writes over a store.
pub async fn restore_export(url: &str, path: &Path) -> StoreResult<()> {
    let options =
        PgConnectOptions::from_str(url).map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?;
    let pool = PgPoolOptions::new().max_connections(1).connect_with(options).await.map_err(db("restore: connect"))?;
    let schema: Option<String> =
        sqlx::query_scalar("SELECT current_schema()::text").fetch_one(&pool).await.map_err(db("restore: schema"))?;
    let Some(schema) = schema else {
        return Err(StoreError::Invalid(
            "restore: the URL's search_path names no schema that exists: create the schema first".into(),
        ));
    };
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema = $1")
        .bind(&schema)
        .fetch_one(&pool)
        .await
        .map_err(db("restore: list the tables"))?;
    if held > 0 {
        return Err(StoreError::Invalid(format!(
            "restore: schema «{schema}» holds {held} table(s): a restore makes a fresh store; name a new schema \
             (?options=-c%20search_path%3DNAME) or a new database (the running store is never overwritten)"
        )));
    }
    let file = std::fs::File::open(path).map_err(io("cannot open", path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let header = read_header(&mut reader, path)?;
    let newest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    if !MIGRATOR.iter().any(|m| m.version == header.schema_version) {
        return Err(StoreError::Invalid(format!(
            "restore: the backup's schema version {} is not one this ejgate knows (its newest is {newest}): restore it \
             with the ejgate version that made it, or a newer one",
            header.schema_version
        )));
    }
    MIGRATOR
        .run_to(header.schema_version, &pool)
        .await
        .map_err(|source| StoreError::Migrate { backend: BACKEND, source })?;
    let mut tx = pool.begin().await.map_err(db("restore: begin"))?;
    for s in SETTINGS {
        sqlx::query(s).execute(&mut *tx).await.map_err(db("restore: session settings"))?;
    }
    for t in &header.tables {
        let now = columns(&mut tx, &t.name).await?;
        if now != t.columns {
            return Err(StoreError::Invalid(format!(
                "restore: table {} has columns {:?} at schema version {}, the backup {:?}",
                t.name, now, header.schema_version, t.columns
            )));
        }
        let sql = format!("COPY {} ({}) FROM STDIN", quote(&t.name), copy_columns(t));
        let mut copy = tx.copy_in_raw(&sql).await.map_err(db("restore: COPY FROM STDIN"))?;
        let mut chunk = Vec::with_capacity(1 << 20);
        let mut ended = false;
        let mut line = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(io("cannot read", path))? == 0 {
                break;
            }
            if line == b"\\.\n" {
                ended = true;
                break;
            }
            chunk.extend_from_slice(&line);
            if chunk.len() >= 1 << 20 {
                copy.send(std::mem::take(&mut chunk)).await.map_err(db("restore: COPY data"))?;
            }
        }
        if !ended {
            copy.abort("the export is cut short").await.ok();
            return Err(StoreError::Invalid(format!("{}: the data of table {} is cut short", path.display(), t.name)));
        }
        if !chunk.is_empty() {
            copy.send(chunk).await.map_err(db("restore: COPY data"))?;
        }
        let rows = copy.finish().await.map_err(db("restore: COPY FROM STDIN"))?;
        if rows != t.rows {
            return Err(StoreError::Invalid(format!(
                "restore: table {} took {rows} rows, the backup lists {}",
                t.name, t.rows
            )));
        }
        // Identity and serial columns go on after the highest id loaded.
        let sequences: Vec<(String, String)> = sqlx::query_as(
            "SELECT column_name::text, pg_get_serial_sequence(quote_ident($1), column_name) FROM \
             information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 \
             AND pg_get_serial_sequence(quote_ident($1), column_name) IS NOT NULL",
        )
        .bind(&t.name)
        .fetch_all(&mut *tx)
        .await
        .map_err(db("restore: find the sequences"))?;
        for (column, sequence) in sequences {
            let sql = format!(
                "SELECT setval($1::regclass, coalesce(max({c}), 1), max({c}) IS NOT NULL) FROM {t}",
                c = quote(&column),
                t = quote(&t.name)
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&sequence)
                .execute(&mut *tx)
                .await
                .map_err(db("restore: set a sequence"))?;
        }
    }
    tx.commit().await.map_err(db("restore: commit"))?;
    MIGRATOR.run(&pool).await.map_err(|source| StoreError::Migrate { backend: BACKEND, source })?;
    pool.close().await;
    Ok(())
}
