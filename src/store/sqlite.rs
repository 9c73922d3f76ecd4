//! The SQLite backend: the embedded default, one file per installation.
//!
//! - WAL journal, `synchronous = NORMAL` (a commit is durable once the WAL is synced at the
//!   next checkpoint; a power cut may lose the last commits but never corrupts the file, and
//!   the cursor is lost with the batch it belongs to, so the next run redoes that batch).
//! - Two pools on the same file: one writer connection (writes queue in-process instead of
//!   spinning on SQLite's busy handler; every write transaction is `BEGIN IMMEDIATE`, so a
//!   second process such as a CLI command waits for the lock up to the busy timeout rather
//!   than failing halfway) and a few read-only readers, which WAL lets run beside the writer.
//! - Bulk writes: `WITH v AS (VALUES (?,…),…) INSERT … SELECT … FROM v`, row values as
//!   anonymous `?` (see [`values_cte`] for why), in chunks whose sizes come from a fixed
//!   ladder ([`LADDER`]), so that only a handful of distinct SQL texts exist and all stay in
//!   sqlx's per-connection prepared-statement cache. A record's content is one `Arc<str>`
//!   bound to both its change row and its upsert, not two copies. The change rows of a chunk
//!   are written before its records, so `before` is read in SQL from the stored row.
//! - Id lists (deletes, `seen`, `existing`) go in as one JSON array of hex ids,
//!   `id IN (SELECT unhex(value) FROM json_each(?))`: one parameter, one fixed SQL text.
//!   Such lookups write the source check as `+source = ?` (the unary plus keeps SQLite from
//!   using the `(source, …)` coverage index, which would read every record of the source
//!   instead of probing the id index), and coverage joins are `CROSS JOIN`s so that SQLite
//!   keeps the small list of coverages as the outer loop.
//! - Throughput: against the raw ceiling of `benches/sync_throughput.rs` (the same record
//!   and change rows by plain prepared statements in one transaction) the store writes at
//!   about 0.7× for 200k–500k records in batches of 2,000–3,000
//!   (`sqlite_write_throughput_against_raw_rusqlite` in `tests/store_suite.rs`). The writer's WAL auto-checkpoint is raised to 10,000 pages
//!   (40 MiB): a first sync commits every few thousand records, and checkpointing every
//!   1,000 pages rewrote the same index pages into the database file over and over.
//!
//! Layout of values: see the migration (`migrations/sqlite`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Arguments, AssertSqlSafe, Row, SqliteConnection};
use uuid::Uuid;

use ejgate_sdk::model::{DateRange, EntityKind};

use super::{
    check_change_set, now_micros, ChangeOp, ChangeRow, ChangeSet, CursorUpdate, Existing, KindCount, RunId, RunStats,
    RunStatus, Store, StoreError, StoreResult, StoredRecord, SyncRun, Upsert,
};

const BACKEND: &str = "sqlite";
pub static COMMIT_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub static UPS_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

static MIGRATOR: Migrator = sqlx::migrate!("src/store/migrations/sqlite");

/// Rows per multi-row statement. A chunk of `n` rows is cut into the largest sizes first
/// (5000 rows = 4 × 1024 + 3 × 256 + 2 × 64 + …), so at most `LADDER.len()` distinct SQL
/// texts exist per statement kind. 1024 rows × 9 parameters stays under SQLite's
/// 32766-parameter limit.
const LADDER: [usize; 6] = [1024, 256, 64, 16, 4, 1];

/// Parameters per row of the change-row insert and of the record upsert.
const CHANGE_PARAMS: usize = 5;
const RECORD_PARAMS: usize = 9;
const _: () = assert!(CHANGE_PARAMS * LADDER[0] + 3 < 32766);
const _: () = assert!(RECORD_PARAMS * LADDER[0] + 2 < 32766);

/// How long a write waits for another process holding the database lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Readers beside the single writer.
const READERS: u32 = 4;

/// The SQLite store. Cheap to clone (pools are shared).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

fn db(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { backend: BACKEND, operation, source }
}

impl SqliteStore {
    /// Opens (creating if missing) the database a `sqlite://PATH` URL names and runs the
    /// migrations. `sqlite:///abs/path.db` is absolute, `sqlite://rel.db` relative to the
    /// working directory; `sqlite::memory:` is a private in-memory store (tests, demos).
    pub async fn open(url: &str) -> StoreResult<Self> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("bad SQLite URL «{url}»: {e}")))?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");

        let write_options = base
            .clone()
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // 64 MiB page cache for the writer: bulk loads touch the id index at random.
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // See the module documentation (throughput).
            .pragma("wal_autocheckpoint", "10000")
            // Checkpoints read the WAL back through the map instead of read() calls.
            .pragma("mmap_size", "268435456");
        let write_options = if in_memory {
            write_options
        } else {
            write_options.journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal)
        };

        let mut writer_pool = SqlitePoolOptions::new().max_connections(1).min_connections(1);
        if in_memory {
            // The in-memory database lives as long as a connection to it.
            writer_pool = writer_pool.idle_timeout(None).max_lifetime(None);
        }
        let writer = writer_pool.connect_with(write_options).await.map_err(db("open"))?;

        MIGRATOR.run(&writer).await.map_err(|source| StoreError::Migrate { backend: BACKEND, source })?;

        let reader = if in_memory {
            writer.clone()
        } else {
            let read_options = base.read_only(true).busy_timeout(BUSY_TIMEOUT);
            SqlitePoolOptions::new().max_connections(READERS).connect_lazy_with(read_options)
        };
        Ok(SqliteStore { writer, reader })
    }

    /// Closes both pools (waits for connections in use to be returned).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db("begin transaction"))
    }
}

// ---- value conversions ------------------------------------------------------------------

/// `2026-09-01T08:30:00.000000Z`: fixed width, so text order is time order.
fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn parse_ts(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Invalid(format!("bad timestamp «{s}» in the store: {e}")))
}

fn parse_kind(s: &str) -> StoreResult<EntityKind> {
    EntityKind::parse(s).ok_or_else(|| StoreError::Invalid(format!("unknown kind «{s}» in the store")))
}

fn parse_uuid(b: &[u8]) -> StoreResult<Uuid> {
    Uuid::from_slice(b).map_err(|e| StoreError::Invalid(format!("bad record id in the store: {e}")))
}

fn parse_json(s: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Invalid(format!("bad JSON in the store: {e}")))
}

/// A JSON array of the ids as 32 hex digits, for `json_each` + `unhex`.
fn hex_id_array(ids: impl IntoIterator<Item = Uuid>) -> String {
    let mut out = String::from("[");
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(id.simple().encode_lower(&mut Uuid::encode_buffer()));
        out.push('"');
    }
    out.push(']');
    out
}

fn add<'t, T>(args: &mut SqliteArguments, value: T) -> StoreResult<()>
where
    T: sqlx::Encode<'t, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    args.add(value).map_err(|e| StoreError::Invalid(format!("cannot bind a value: {e}")))
}

/// Cuts `0..n` into chunks whose sizes come from [`LADDER`].
fn ladder_chunks(n: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for size in LADDER {
        while n - start >= size {
            out.push(start..start + size);
            start += size;
        }
    }
    out
}

// ---- SQL texts ----------------------------------------------------------------------------

/// `WITH v(columns) AS (VALUES (?,…),(?,…),…)` for `rows` rows of `columns`.
///
/// Parameters: the rows' values are anonymous `?`, numbered 1…n by their place; the few
/// values shared by all rows (run, time, source) are bound once, after them, as `?n+1`…
/// and written after the `VALUES` so that SQLite numbers them as sqlx expects. Not
/// numbering the row values matters: sqlx asks SQLite for every parameter's name before
/// binding it, and SQLite finds a name by a linear scan of the named parameters, so a
/// 1024-row statement with numbered parameters spent most of its time in that scan.
fn values_cte(columns: &[&str], rows: usize) -> String {
    let row = format!("({})", vec!["?"; columns.len()].join(","));
    let mut sql = String::with_capacity(64 + rows * (row.len() + 1));
    let _ = write!(sql, "WITH v({}) AS (VALUES ", columns.join(", "));
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&row);
    }
    sql.push_str(") ");
    sql
}

/// Change rows of `rows` upserts, in their order. Row values: kind, id, source_id, op,
/// content; then run, at, source once. `before` is read here, before the records are
/// overwritten, and only for ops other than insert.
fn upsert_changes_sql(rows: usize) -> String {
    let mut sql = values_cte(&["kind", "id", "source_id", "op", "content"], rows);
    let n = CHANGE_PARAMS * rows;
    let _ = write!(
        sql,
        "INSERT INTO changes (run_id, at, kind, id, source, source_id, op, before, after) \
         SELECT ?{run}, ?{at}, v.kind, v.id, ?{source}, v.source_id, v.op, \
         CASE v.op WHEN 'insert' THEN NULL \
         ELSE (SELECT r.content FROM records r WHERE r.id = v.id) END, v.content FROM v",
        run = n + 1,
        at = n + 2,
        source = n + 3,
    );
    sql
}

/// Upserts of `rows` records. Row values: id, kind, source_id, scope, natural_key, date,
/// content, content_hash, source_updated_at; then source, at once.
fn upsert_records_sql(rows: usize) -> String {
    let mut sql = values_cte(
        &["id", "kind", "source_id", "scope", "natural_key", "date", "content", "content_hash", "source_updated_at"],
        rows,
    );
    let n = RECORD_PARAMS * rows;
    // `WHERE true`: SQLite's parser needs it between `SELECT … FROM v` and `ON CONFLICT`.
    let _ = write!(
        sql,
        "INSERT INTO records (id, kind, source, source_id, scope, natural_key, date, content, \
         content_hash, source_updated_at, first_seen, last_seen, deleted_at) \
         SELECT v.id, v.kind, ?{source}, v.source_id, v.scope, v.natural_key, v.date, v.content, \
         v.content_hash, v.source_updated_at, ?{at}, ?{at}, NULL FROM v WHERE true \
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, source_id = excluded.source_id, \
         scope = excluded.scope, natural_key = excluded.natural_key, date = excluded.date, \
         content = excluded.content, content_hash = excluded.content_hash, \
         source_updated_at = excluded.source_updated_at, last_seen = excluded.last_seen, \
         deleted_at = NULL",
        source = n + 1,
        at = n + 2,
    );
    sql
}

/// Ids of a JSON hex array (?2) that the source (?1) has no record of.
const UNKNOWN_IDS_SQL: &str = "SELECT j.value FROM json_each(?2) AS j \
     WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = unhex(j.value) AND +r.source = ?1)";

/// Delete rows for the live records among the ids (?4), in the order given.
const DELETE_CHANGES_SQL: &str = "INSERT INTO changes \
     (run_id, at, kind, id, source, source_id, op, before, after) \
     SELECT ?1, ?2, r.kind, r.id, r.source, r.source_id, 'delete', r.content, NULL \
     FROM json_each(?4) AS j CROSS JOIN records r ON r.id = unhex(j.value) \
     WHERE +r.source = ?3 AND r.deleted_at IS NULL ORDER BY j.key";

const TOMBSTONE_SQL: &str = "UPDATE records SET deleted_at = ?1 \
     WHERE +source = ?2 AND deleted_at IS NULL AND id IN (SELECT unhex(value) FROM json_each(?3))";

const SEEN_SQL: &str = "UPDATE records SET last_seen = ?1 \
     WHERE +source = ?2 AND id IN (SELECT unhex(value) FROM json_each(?3))";

const CURSOR_SQL: &str = "INSERT INTO cursors (source, stream, scope, value, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (source, stream, scope) \
     DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

const CHANGE_COLUMNS: &str = "seq, run_id, at, kind, id, source, source_id, op, before, after";

// ---- apply ---------------------------------------------------------------------------------

/// Bind values shared between a record's change row and its upsert (no second copy).
struct Prepared {
    kind: Arc<str>,
    op: Arc<str>,
    source_id: Arc<str>,
    content: Arc<str>,
}

/// One `Arc<str>` per kind or op name, cloned into the arguments without allocating.
#[derive(Default)]
struct Names(HashMap<&'static str, Arc<str>>);

impl Names {
    fn get(&mut self, name: &'static str) -> Arc<str> {
        self.0.entry(name).or_insert_with(|| Arc::from(name)).clone()
    }
}

async fn write_upserts(
    conn: &mut SqliteConnection,
    run: RunId,
    source: &str,
    at: &str,
    upserts: &[Upsert],
) -> StoreResult<()> {
    let mut names = Names::default();
    let source: Arc<str> = Arc::from(source);
    let at: Arc<str> = Arc::from(at);
    for range in ladder_chunks(upserts.len()) {
        let chunk = &upserts[range];
        let prepared: Vec<Prepared> = chunk
            .iter()
            .map(|u| Prepared {
                kind: names.get(u.kind.as_str()),
                op: names.get(u.op.as_str()),
                source_id: Arc::from(u.source_id.as_str()),
                // check_change_set made sure it is UTF-8.
                content: Arc::from(std::str::from_utf8(&u.content).unwrap_or_default()),
            })
            .collect();

        let mut args = SqliteArguments::default();
        args.reserve(CHANGE_PARAMS * chunk.len() + 3, 0);
        for (u, p) in chunk.iter().zip(&prepared) {
            add(&mut args, p.kind.clone())?;
            add(&mut args, u.id)?;
            add(&mut args, p.source_id.clone())?;
            add(&mut args, p.op.clone())?;
            add(&mut args, p.content.clone())?;
        }
        add(&mut args, run)?;
        add(&mut args, at.clone())?;
        add(&mut args, source.clone())?;
        sqlx::query_with(AssertSqlSafe(upsert_changes_sql(chunk.len())), args)
            .execute(&mut *conn)
            .await
            .map_err(db("apply: write change rows of upserts"))?;

        let mut args = SqliteArguments::default();
        args.reserve(RECORD_PARAMS * chunk.len() + 2, 0);
        for (u, p) in chunk.iter().zip(prepared) {
            add(&mut args, u.id)?;
            add(&mut args, p.kind)?;
            add(&mut args, p.source_id)?;
            add(&mut args, Arc::<str>::from(u.scope.as_str()))?;
            add(&mut args, Arc::<str>::from(u.natural_key.as_str()))?;
            add(&mut args, u.date)?;
            add(&mut args, p.content)?;
            add(&mut args, &u.content_hash[..])?;
            add(&mut args, u.source_updated_at)?;
        }
        add(&mut args, source.clone())?;
        add(&mut args, at.clone())?;
        sqlx::query_with(AssertSqlSafe(upsert_records_sql(chunk.len())), args)
            .execute(&mut *conn)
            .await
            .map_err(db("apply: upsert records"))?;
    }
    Ok(())
}

async fn write_deletes(
    conn: &mut SqliteConnection,
    run: RunId,
    source: &str,
    at: &str,
    deletes: &[(Uuid, EntityKind)],
) -> StoreResult<()> {
    let ids = hex_id_array(deletes.iter().map(|(id, _)| *id));
    let unknown: Vec<String> = sqlx::query_scalar(UNKNOWN_IDS_SQL)
        .bind(source)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(db("apply: check deleted records"))?;
    if let Some(first) = unknown.first() {
        return Err(StoreError::Invalid(format!(
            "delete of {} record(s) that source «{source}» does not have in the store \
             (first: {first}); nothing of the batch was written",
            unknown.len()
        )));
    }
    sqlx::query(DELETE_CHANGES_SQL)
        .bind(run)
        .bind(at)
        .bind(source)
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .map_err(db("apply: write change rows of deletes"))?;
    sqlx::query(TOMBSTONE_SQL)
        .bind(at)
        .bind(source)
        .bind(&ids)
        .execute(&mut *conn)
        .await
        .map_err(db("apply: write tombstones"))?;
    Ok(())
}

/// id, kind, natural_key, content_hash, deleted
type ExistingRow = (Vec<u8>, String, String, Vec<u8>, bool);

// ---- row decoding ----------------------------------------------------------------------

fn change_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<ChangeRow> {
    let get = |e: sqlx::Error| StoreError::Database { backend: BACKEND, operation: "read change rows", source: e };
    let op: &str = row.try_get(7).map_err(get)?;
    let before: Option<&str> = row.try_get(8).map_err(get)?;
    let after: Option<&str> = row.try_get(9).map_err(get)?;
    Ok(ChangeRow {
        seq: row.try_get(0).map_err(get)?,
        run_id: row.try_get(1).map_err(get)?,
        at: parse_ts(row.try_get(2).map_err(get)?)?,
        kind: parse_kind(row.try_get(3).map_err(get)?)?,
        id: parse_uuid(row.try_get(4).map_err(get)?)?,
        source: row.try_get(5).map_err(get)?,
        source_id: row.try_get(6).map_err(get)?,
        op: ChangeOp::parse(op).ok_or_else(|| StoreError::Invalid(format!("unknown change op «{op}» in the store")))?,
        before: before.map(parse_json).transpose()?,
        after: after.map(parse_json).transpose()?,
    })
}

fn sync_run(row: &sqlx::sqlite::SqliteRow) -> StoreResult<SyncRun> {
    let get = |e: sqlx::Error| StoreError::Database { backend: BACKEND, operation: "read runs", source: e };
    let status: &str = row.try_get(5).map_err(get)?;
    let finished: Option<&str> = row.try_get(4).map_err(get)?;
    let stats: &str = row.try_get(7).map_err(get)?;
    Ok(SyncRun {
        id: row.try_get(0).map_err(get)?,
        source: row.try_get(1).map_err(get)?,
        mode: row.try_get(2).map_err(get)?,
        started_at: parse_ts(row.try_get(3).map_err(get)?)?,
        finished_at: finished.map(parse_ts).transpose()?,
        status: RunStatus::parse(status)
            .ok_or_else(|| StoreError::Invalid(format!("unknown run status «{status}» in the store")))?,
        error: row.try_get(6).map_err(get)?,
        stats: serde_json::from_str(stats)
            .map_err(|e| StoreError::Invalid(format!("bad run statistics in the store: {e}")))?,
    })
}

// ---- the trait ----------------------------------------------------------------------------

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn begin_run(&self, source: &str, mode: &str) -> StoreResult<RunId> {
        let now = ts(now_micros());
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE sync_runs SET status = 'interrupted', finished_at = ?1, \
             error = coalesce(error, 'the process running it stopped before it finished') \
             WHERE source = ?2 AND status = 'running'",
        )
        .bind(&now)
        .bind(source)
        .execute(&mut *tx)
        .await
        .map_err(db("begin run: close interrupted runs"))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sync_runs (source, mode, started_at, status, stats) \
             VALUES (?1, ?2, ?3, 'running', ?4) RETURNING id",
        )
        .bind(source)
        .bind(mode)
        .bind(&now)
        .bind(serde_json::to_string(&RunStats::default()).unwrap_or_else(|_| "{}".into()))
        .fetch_one(&mut *tx)
        .await
        .map_err(db("begin run"))?;
        tx.commit().await.map_err(db("begin run: commit"))?;
        Ok(id)
    }

    async fn finish_run(
        &self,
        run: RunId,
        status: RunStatus,
        error: Option<&str>,
        stats: &RunStats,
    ) -> StoreResult<()> {
        let stats = serde_json::to_string(stats).map_err(|e| StoreError::Invalid(format!("run statistics: {e}")))?;
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE sync_runs SET status = ?1, finished_at = ?2, error = ?3, stats = ?4 \
             WHERE id = ?5",
        )
        .bind(status.as_str())
        .bind(ts(now_micros()))
        .bind(error)
        .bind(stats)
        .bind(run)
        .execute(&mut *tx)
        .await
        .map_err(db("finish run"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("finish run: there is no run {run}")));
        }
        tx.commit().await.map_err(db("finish run: commit"))
    }

    async fn runs(&self, limit: u32) -> StoreResult<Vec<SyncRun>> {
        let rows = sqlx::query(
            "SELECT id, source, mode, started_at, finished_at, status, error, stats \
             FROM sync_runs ORDER BY id DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db("list runs"))?;
        rows.iter().map(sync_run).collect()
    }

    async fn cursors(&self, source: &str) -> StoreResult<HashMap<(String, String), String>> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT stream, scope, value FROM cursors WHERE source = ?1")
                .bind(source)
                .fetch_all(&self.reader)
                .await
                .map_err(db("read cursors"))?;
        Ok(rows.into_iter().map(|(stream, scope, value)| ((stream, scope), value)).collect())
    }

    async fn existing(
        &self,
        source: &str,
        ids: &[Uuid],
        coverages: &[(Vec<EntityKind>, String, Option<DateRange>)],
    ) -> StoreResult<HashMap<Uuid, Existing>> {
        // One statement: the ids branch, then one branch for coverages without a date range
        // and one for those with a range (so the date goes into the index search). Each
        // coverage is expanded to one (kind, scope[, from, to]) row per kind.
        let mut sql = String::from(
            "SELECT r.id, r.kind, r.natural_key, r.content_hash, r.deleted_at IS NOT NULL FROM records r \
             WHERE +r.source = ?1 AND r.id IN (SELECT unhex(value) FROM json_each(?2))",
        );
        let mut args = SqliteArguments::default();
        add(&mut args, source)?;
        add(&mut args, hex_id_array(ids.iter().copied()))?;
        let mut n = 2;

        let open: Vec<(EntityKind, &str)> = coverages
            .iter()
            .filter(|(_, _, range)| range.is_none())
            .flat_map(|(kinds, scope, _)| kinds.iter().map(move |k| (*k, scope.as_str())))
            .collect();
        let ranged: Vec<(EntityKind, &str, NaiveDate, NaiveDate)> = coverages
            .iter()
            .filter_map(|(kinds, scope, range)| range.map(|r| (kinds, scope, r)))
            .flat_map(|(kinds, scope, r)| kinds.iter().map(move |k| (*k, scope.as_str(), r.from, r.to)))
            .collect();

        if !open.is_empty() {
            sql.push_str(
                " UNION ALL SELECT r.id, r.kind, r.natural_key, r.content_hash, r.deleted_at IS NOT NULL \
                 FROM (VALUES ",
            );
            for (i, (kind, scope)) in open.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                let _ = write!(sql, "(?{},?{})", n + 1, n + 2);
                n += 2;
                add(&mut args, kind.as_str())?;
                add(&mut args, *scope)?;
            }
            sql.push_str(
                ") AS c CROSS JOIN records r ON r.source = ?1 AND r.kind = c.column1 \
                 AND r.scope = c.column2",
            );
        }
        if !ranged.is_empty() {
            sql.push_str(
                " UNION ALL SELECT r.id, r.kind, r.natural_key, r.content_hash, r.deleted_at IS NOT NULL \
                 FROM (VALUES ",
            );
            for (i, (kind, scope, from, to)) in ranged.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                let _ = write!(sql, "(?{},?{},?{},?{})", n + 1, n + 2, n + 3, n + 4);
                n += 4;
                add(&mut args, kind.as_str())?;
                add(&mut args, *scope)?;
                add(&mut args, *from)?;
                add(&mut args, *to)?;
            }
            sql.push_str(
                ") AS c CROSS JOIN records r ON r.source = ?1 AND r.kind = c.column1 \
                 AND r.scope = c.column2 AND r.date BETWEEN c.column3 AND c.column4",
            );
        }

        // On the writer connection, not a reader: this is the sync engine's read before its
        // write, and the writer's page cache stays warm across its own commits, while a
        // reader drops its whole cache after every commit and reads the id index back from
        // the WAL page by page (half the time of a first sync in small batches).
        let rows: Vec<ExistingRow> = sqlx::query_as_with(AssertSqlSafe(sql), args)
            .fetch_all(&self.writer)
            .await
            .map_err(db("read existing records"))?;
        let mut out = HashMap::with_capacity(rows.len());
        for (id, kind, natural_key, hash, deleted) in rows {
            let id = parse_uuid(&id)?;
            let content_hash: [u8; 32] = hash
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Invalid(format!("content hash of {id} is not 32 bytes")))?;
            out.insert(id, Existing { kind: parse_kind(&kind)?, natural_key, content_hash, deleted });
        }
        Ok(out)
    }

    async fn apply(&self, run: RunId, source: &str, changes: &ChangeSet, cursors: &[CursorUpdate]) -> StoreResult<()> {
        check_change_set(changes)?;
        let at = ts(now_micros());
        let mut tx = self.write_tx().await?;

        let t = std::time::Instant::now();
        if !changes.upserts.is_empty() {
            write_upserts(&mut tx, run, source, &at, &changes.upserts).await?;
        }
        UPS_US.fetch_add(t.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        if !changes.deletes.is_empty() {
            write_deletes(&mut tx, run, source, &at, &changes.deletes).await?;
        }
        if !changes.seen.is_empty() {
            sqlx::query(SEEN_SQL)
                .bind(&at)
                .bind(source)
                .bind(hex_id_array(changes.seen.iter().copied()))
                .execute(&mut *tx)
                .await
                .map_err(db("apply: mark records seen"))?;
        }
        for c in cursors {
            sqlx::query(CURSOR_SQL)
                .bind(source)
                .bind(&c.stream)
                .bind(&c.scope)
                .bind(&c.value)
                .bind(&at)
                .execute(&mut *tx)
                .await
                .map_err(db("apply: store the cursor"))?;
        }
        // Dropping `tx` on any error above rolls the whole batch back.
        let t = std::time::Instant::now();
        let r = tx.commit().await.map_err(db("apply: commit"));
        COMMIT_US.fetch_add(t.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        r
    }

    async fn counts(&self, source: Option<&str>) -> StoreResult<Vec<KindCount>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT kind, sum(deleted_at IS NULL), sum(deleted_at IS NOT NULL) FROM records \
             WHERE ?1 IS NULL OR source = ?1 GROUP BY kind",
        )
        .bind(source)
        .fetch_all(&self.reader)
        .await
        .map_err(db("count records"))?;
        let mut out = rows
            .into_iter()
            .map(|(kind, live, tombstones)| {
                Ok(KindCount {
                    kind: parse_kind(&kind)?,
                    live: live.max(0) as u64,
                    tombstones: tombstones.max(0) as u64,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|c| c.kind);
        Ok(out)
    }

    async fn changes_since(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<ChangeRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        )))
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db("read change rows"))?;
        rows.iter().map(change_row).collect()
    }

    async fn changes_of_run(&self, run: RunId) -> StoreResult<Vec<ChangeRow>> {
        let rows =
            sqlx::query(AssertSqlSafe(format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE run_id = ?1 ORDER BY seq")))
                .bind(run)
                .fetch_all(&self.reader)
                .await
                .map_err(db("read change rows of a run"))?;
        rows.iter().map(change_row).collect()
    }

    async fn records(
        &self,
        kind: EntityKind,
        source: Option<&str>,
        include_deleted: bool,
    ) -> StoreResult<Vec<StoredRecord>> {
        // Byte order of the UTF-8 text (SQLite's BINARY collation), the same order the
        // PostgreSQL backend gets with COLLATE "C".
        let rows = sqlx::query(
            "SELECT id, kind, source, source_id, scope, date, content, deleted_at IS NOT NULL \
             FROM records WHERE kind = ?1 AND (?2 IS NULL OR source = ?2) \
             AND (?3 OR deleted_at IS NULL) ORDER BY source_id, source",
        )
        .bind(kind.as_str())
        .bind(source)
        .bind(include_deleted)
        .fetch_all(&self.reader)
        .await
        .map_err(db("read records"))?;
        rows.iter()
            .map(|row| {
                let get =
                    |e: sqlx::Error| StoreError::Database { backend: BACKEND, operation: "read records", source: e };
                let content: &str = row.try_get(6).map_err(get)?;
                Ok(StoredRecord {
                    id: parse_uuid(row.try_get(0).map_err(get)?)?,
                    kind: parse_kind(row.try_get(1).map_err(get)?)?,
                    source: row.try_get(2).map_err(get)?,
                    source_id: row.try_get(3).map_err(get)?,
                    scope: row.try_get(4).map_err(get)?,
                    date: row.try_get(5).map_err(get)?,
                    content: parse_json(content)?,
                    deleted: row.try_get(7).map_err(get)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_covers_every_row_once_with_few_sizes() {
        for n in [0, 1, 3, 4, 5, 1023, 1024, 1025, 5000, 12345] {
            let chunks = ladder_chunks(n);
            let mut next = 0;
            for c in &chunks {
                assert_eq!(c.start, next);
                assert!(LADDER.contains(&c.len()));
                next = c.end;
            }
            assert_eq!(next, n);
        }
    }
}
