//! The SQLite backend: the embedded default, one file per installation.
//!
//! - WAL journal, `synchronous = NORMAL` (a commit is durable once the WAL is synced at the
//!   next checkpoint; a power cut may lose the last commits but never corrupts the file, and
//!   the cursor is lost with the batch it belongs to, so the next run redoes that batch).
//! - Two pools on the same file: one writer connection (writes queue in-process instead of
//!   spinning on SQLite's busy handler; every write transaction is `BEGIN IMMEDIATE`, so a
//!   second process such as a CLI command waits for the lock up to the busy timeout rather
//!   than failing halfway) and a few read-only readers, which WAL lets run beside the writer.
//! - Bulk writes (the records and change rows of upserts) go through SQLite's C interface
//!   on the writer's own connection, inside the transaction sqlx opened ([`write_upserts`]):
//!   one prepared statement per row kind, stepped once per row, as the raw ceiling of
//!   `benches/sync_throughput.rs` does. Change rows are written before their records, so
//!   `before` is read in SQL from the stored row.
//! - Id lists (deletes, `seen`, `existing`) go in as one JSON array of hex ids,
//!   `id IN (SELECT unhex(value) FROM json_each(?))`: one parameter, one fixed SQL text.
//!   Such lookups write the source check as `+source = ?` (the unary plus keeps SQLite from
//!   using the `(source, …)` coverage index, which would read every record of the source
//!   instead of probing the id index), and coverage joins are `CROSS JOIN`s so that SQLite
//!   keeps the small list of coverages as the outer loop.
//! - Throughput: the engine writes the chunks that have already been fetched together
//!   (up to 25,000 records per transaction; see `sync::GROUP_RECORDS` and `sync::WAITING_RECORDS`), because canonical
//!   ids are random and every commit rewrites the id-index pages its records touch. The
//!   WAL is checkpointed after every commit by a thread of its own ([`Checkpointer`]), not
//!   inside the writer's commits; the writer's own auto-checkpoint (25,000 pages) is only a
//!   safety mark.
//!
//! Layout of values: see the migration (`migrations/sqlite`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Arguments, AssertSqlSafe, Row, SqliteConnection};
use uuid::Uuid;

use ejgate_sdk::model::{DateRange, EntityKind};

use super::aggregates::{self, AggregateRequest, SchoolAggregates};
use super::{
    check_change_set, now_micros, ttl_millis, ApiToken, BackupAction, BackupOutcome, BackupTargetState, BackupUse,
    ChangeOp, ChangeRow, ChangeSet, CompromisedLogin, ContentRow, CursorUpdate, Existing, Inspection, KindCount,
    LeaseInfo, LeaseOutcome, LeaseRequest, PaperCopy, PaperCopyChange, RawRecord, RawRecordVisitor, RecordVisitor,
    RunError, RunErrorKind, RunId, RunStats, RunStatus, RunTotals, Store, StoreError, StoreResult, StoredFinding,
    StoredRecord, SyncRun, Upsert,
};

const BACKEND: &str = "sqlite";

/// The daemon's job runs (`super::JobStore`).
mod jobs;

static MIGRATOR: Migrator = sqlx::migrate!("src/store/migrations/sqlite");

/// The statement of [`Store::journal_aggregates`] (see `super::aggregates`): ?1 schools,
/// ?2 spans (disjoint pieces), ?3 sources, as JSON; ?4 the characters of a blank topic.
/// Ids are 16-byte BLOBs, references in the content hyphenated text: a lesson is joined by
/// the hex of its id.
const JOURNAL_AGGREGATES: &str = concat!(
    "
WITH schools AS MATERIALIZED (
    SELECT json_extract(value, '$.school') AS school, json_extract(value, '$.journal') AS journal,
           json_extract(value, '$.due') AS due, json_extract(value, '$.findings') AS findings
    FROM json_each(?1)
), spans AS MATERIALIZED (
    SELECT json_extract(value, '$.school') AS school, json_extract(value, '$.span') AS span,
           json_extract(value, '$.day_from') AS day_from, json_extract(value, '$.day_to') AS day_to
    FROM json_each(?2)
), sources AS MATERIALIZED (
    SELECT json_extract(value, '$.school') AS school, json_extract(value, '$.source') AS source FROM json_each(?3)
), lessons AS MATERIALIZED (
    SELECT k.school, s.span, k.journal AS source, lower(hex(r.id)) AS key, json_extract(r.content, '$.date') AS day,
           json_extract(r.content, '$.unit') AS unit, json_extract(r.content, '$.subject') AS subject,
           trim(coalesce(json_extract(r.content, '$.topic'), ''), ?4) <> '' AS topic, k.due
    FROM schools k
    JOIN records r ON r.source = k.journal AND r.kind = 'lesson' AND r.deleted_at IS NULL
    JOIN spans s ON s.school = k.school AND json_extract(r.content, '$.date') BETWEEN s.day_from AND s.day_to
    WHERE json_extract(r.content, '$.status') = 'held'
), marks AS (
    SELECT l.school, l.span, count(*) AS marks,
           count(*) FILTER (WHERE l.due IS NOT NULL AND json_extract(m.content, '$.entered_at') IS NOT NULL) AS judged,
           count(*) FILTER (WHERE json_extract(m.content, '$.entered_at')
                                  <= strftime('%Y-%m-%dT%H:%M:%S', l.day, '+' || l.due || ' seconds')) AS on_time
    FROM records m
    JOIN lessons l ON l.source = m.source AND l.key = replace(json_extract(m.content, '$.lesson'), '-', '')
    WHERE m.kind = 'mark' AND m.deleted_at IS NULL AND m.source IN (SELECT journal FROM schools)
    GROUP BY l.school, l.span
), homework AS (
    SELECT l.school, l.span, count(DISTINCT l.key) AS n
    FROM records h
    JOIN lessons l ON l.source = h.source AND l.key = replace(json_extract(h.content, '$.lesson'), '-', '')
    WHERE h.kind = 'homework' AND h.deleted_at IS NULL AND h.source IN (SELECT journal FROM schools)
    GROUP BY l.school, l.span
), enrolled AS MATERIALIZED (
    SELECT e.source, json_extract(e.content, '$.unit') AS unit, json_extract(e.content, '$.student') AS student
    FROM records e
    WHERE e.kind = 'enrollment' AND e.deleted_at IS NULL AND e.source IN (SELECT journal FROM schools)
      AND json_extract(e.content, '$.status') = 'active'
), pairs AS (
    SELECT school, span, count(*) AS n FROM (
        SELECT DISTINCT t.school, t.span, e.student, t.subject
        FROM (SELECT DISTINCT school, span, source, unit, subject FROM lessons WHERE subject IS NOT NULL) t
        JOIN enrolled e ON e.source = t.source AND e.unit = t.unit
    ) GROUP BY school, span
), events AS (
    SELECT r.source, json_extract(r.content, '$.person') AS person, json_extract(r.content, '$.date') AS day
    FROM records r
    WHERE r.kind = 'user_activity' AND r.deleted_at IS NULL AND r.source IN (SELECT source FROM sources)
    UNION ALL
    SELECT r.source, json_extract(r.content, '$.guardian'), substr(json_extract(r.content, '$.at'), 1, 10)
    FROM records r
    WHERE r.kind = 'acknowledgement' AND r.deleted_at IS NULL AND r.source IN (SELECT source FROM sources)
), reading AS (
    SELECT x.school, s.span, count(DISTINCT e.person) AS n
    FROM sources x
    JOIN events e ON e.source = x.source
    JOIN spans s ON s.school = x.school AND e.day BETWEEN s.day_from AND s.day_to
    WHERE EXISTS (SELECT 1 FROM records p WHERE p.id = unhex(replace(e.person, '-', '')) AND p.source = e.source
                  AND p.kind = 'person' AND p.deleted_at IS NULL
                  AND EXISTS (SELECT 1 FROM json_each(p.content, '$.roles') WHERE value = 'guardian'))
    GROUP BY x.school, s.span
), people AS (
    SELECT x.school, x.source,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM json_each(p.content, '$.roles') WHERE value = 'student'))
               AS students,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM json_each(p.content, '$.roles') WHERE value = 'staff'))
               AS staff,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM json_each(p.content, '$.roles') WHERE value = 'guardian'))
               AS guardians
    FROM sources x JOIN records p ON p.source = x.source AND p.kind = 'person' AND p.deleted_at IS NULL
    GROUP BY x.school, x.source
), found AS (
    SELECT k.school, f.rule,
           (SELECT min(s.span) FROM spans s WHERE s.school = k.school AND CASE WHEN f.date IS NOT NULL
                THEN f.date BETWEEN s.day_from AND s.day_to
                ELSE substr(f.first_detected, 1, 10) <= s.day_to
                     AND (f.fixed_at IS NULL OR substr(f.fixed_at, 1, 10) >= s.day_from) END) AS span
    FROM schools k JOIN findings f ON f.school = k.findings
)
",
    super::aggregates::counted_rows!()
);

/// SQLite's result code for a full disk (SQLITE_FULL).
const SQLITE_FULL: i32 = 13;

/// How long a write waits for another process holding the database lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Readers beside the single writer.
const READERS: u32 = 4;

/// The SQLite store. Cheap to clone (pools are shared).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The database file (empty for an in-memory store).
    path: std::path::PathBuf,
    writer: SqlitePool,
    reader: SqlitePool,
    /// `None` for an in-memory store (no WAL).
    checkpointer: Option<Arc<Checkpointer>>,
}

/// Copies the WAL into the database file on its own connection and thread (a PASSIVE
/// checkpoint after each commit), so the writer's commits do not wait for that copy and
/// its fsyncs: in a first sync of a large school, checkpoints inside the writer's commits
/// took about a tenth of the writer's time (perf, 2026-11-23). A PASSIVE checkpoint never
/// blocks the writer or a reader; the writer wraps the WAL round once a checkpoint has
/// copied all of it. The writer's own auto-checkpoint stays on at a higher mark, in case
/// this thread falls behind.
#[derive(Debug)]
struct Checkpointer {
    wake: std::sync::mpsc::SyncSender<()>,
}

impl Checkpointer {
    fn start(path: &std::path::Path) -> StoreResult<Self> {
        let conn = rusqlite::Connection::open(path).map_err(|e| db("open the checkpoint connection")(raw(e)))?;
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("ejgate-sqlite-checkpoint".into())
            .spawn(move || {
                // Ends when the store (every clone of it) is dropped.
                while woken.recv().is_ok() {
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        // A full disk is the writer's to report (once, with the file).
                        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DiskFull => {
                            tracing::debug!("SQLite WAL checkpoint: the disk is full")
                        }
                        Err(e) => tracing::warn!("SQLite WAL checkpoint: {e}"),
                        Ok(()) => {}
                    }
                }
            })
            .map_err(|e| StoreError::Invalid(format!("cannot start the SQLite checkpoint thread: {e}")))?;
        Ok(Checkpointer { wake })
    }

    /// Asks for a checkpoint; one already asked for and not yet begun covers this one.
    fn poke(&self) {
        let _ = self.wake.try_send(());
    }
}

/// A database error of `operation`; a copy may be used for every column of a row.
fn db(operation: &'static str) -> impl Fn(sqlx::Error) -> StoreError + Copy {
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
        let base_path = base.get_filename().to_path_buf();
        if !in_memory {
            create_private(&base_path)?;
        }

        let write_options = base
            .clone()
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // 64 MiB page cache for the writer: bulk loads touch the id index at random.
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // See the module documentation (throughput) and `Checkpointer`: 25,000 pages
            // (100 MiB) is only the mark at which the writer checkpoints by itself.
            .pragma("wal_autocheckpoint", "25000")
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
        // Held from the first connection on: switching a new file to WAL takes a lock that
        // SQLite's busy handler does not wait for, so concurrent openers failed with
        // «database is locked» before they came to the migrations.
        let migrating = if in_memory { None } else { Some(MigrationLock::take(&base_path).await?) };
        let writer = writer_pool.connect_with(write_options).await.map_err(db("open"))?;

        MIGRATOR.run(&writer).await.map_err(|source| StoreError::Migrate { backend: BACKEND, source })?;
        drop(migrating);

        let reader = if in_memory {
            writer.clone()
        } else {
            // Readers map the file too: a year of a school's marks read for monitoring went
            // through read() calls and SQLite's small page cache, a copy of every page (the
            // kernel's copy and the page cache were a sixth of the read, perf 2026-12-06).
            let read_options = base.read_only(true).busy_timeout(BUSY_TIMEOUT).pragma("mmap_size", "1073741824");
            SqlitePoolOptions::new().max_connections(READERS).connect_lazy_with(read_options)
        };
        let checkpointer = if in_memory { None } else { Some(Arc::new(Checkpointer::start(base_path.as_path())?)) };
        if !in_memory {
            keep_reserve(&base_path);
        }
        Ok(SqliteStore { path: base_path, writer, reader, checkpointer })
    }

    /// Closes both pools (waits for connections in use to be returned).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        match self.writer.begin_with("BEGIN IMMEDIATE").await {
            // After a write that failed with SQLITE_FULL or an I/O error, SQLite rolls the
            // transaction back by itself; sqlx's rollback then fails and its count of open
            // transactions stays at one, and every later BEGIN on the connection failed
            // («attempted to call begin_with at non-zero transaction depth»), the failed run
            // included. The connection is replaced (a file store only: an in-memory store
            // lives in its connection).
            Err(sqlx::Error::InvalidSavePointStatement) if self.checkpointer.is_some() => {
                let stale = self.writer.acquire().await.map_err(db("begin transaction: replace the connection"))?;
                stale.close().await.map_err(db("begin transaction: close the stale connection"))?;
                self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db("begin transaction"))
            }
            other => other.map_err(db("begin transaction")),
        }
    }

    /// A write that failed because the disk is full, said so with the store's file.
    fn disk_full(&self, e: StoreError) -> StoreError {
        match &e {
            StoreError::Database { source: sqlx::Error::Database(d), .. }
                if d.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| c & 0xff == SQLITE_FULL) =>
            {
                StoreError::DiskFull(format!(
                    "the disk holding the SQLite store {} is full (df -h {}); free space on it and run again — the \
                     batch being written was rolled back, nothing committed is lost",
                    self.path.display(),
                    self.path.parent().map(|p| p.display().to_string()).unwrap_or_else(|| ".".into())
                ))
            }
            _ => e,
        }
    }
}

/// Bytes kept free beside the store for the writes that close a run on a full disk.
const RESERVE_BYTES: usize = 512 * 1024;

/// The reserve file beside a store.
fn reserve_path(db: &std::path::Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push("-reserve");
    name.into()
}

/// Keeps a file of [`RESERVE_BYTES`] beside the store (written, not sparse, so its blocks
/// are really taken). When the disk fills during a run, the write that records the run's
/// failure needs a few pages too: the store gives the reserve up for it
/// ([`SqliteStore::finish_run`]), and the next open takes it again. Without it, a full disk
/// left the run `running`. Best effort: on a disk already full there is no reserve to keep.
fn keep_reserve(db: &std::path::Path) {
    let path = reserve_path(db);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() as usize >= RESERVE_BYTES) {
        return;
    }
    if std::fs::write(&path, vec![0u8; RESERVE_BYTES]).is_err() {
        let _ = std::fs::remove_file(&path);
    }
}

/// Creates a missing database file with mode 0600 before SQLite opens it: the store holds
/// pupils' personal data, and SQLite creates its files with the process's umask (0644 for
/// most: readable by every user of the machine). The WAL and shared-memory files SQLite
/// makes beside it take the database file's mode. An existing file keeps its mode (its
/// owner chose it).
/// Held while a process connects to and migrates the store. Two processes opening a new store at once (two
/// `ejgate serve`, or `ejgate serve` and a sync started by hand) both ran the migrations —
/// sqlx takes no migration lock on SQLite — and one failed with «table sync_runs already
/// exists». The lock is an advisory `flock` on the store's directory: not on the database
/// file, because closing any other descriptor of that file in this process would drop the
/// POSIX locks SQLite holds on it; and nothing is left behind in the directory.
struct MigrationLock(#[allow(dead_code)] std::fs::File);

impl MigrationLock {
    async fn take(db: &std::path::Path) -> StoreResult<MigrationLock> {
        let dir = match db.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(dir) => dir.to_path_buf(),
            None => std::path::PathBuf::from("."),
        };
        tokio::task::spawn_blocking(move || {
            let cannot = |e: std::io::Error| {
                StoreError::Invalid(format!(
                    "cannot lock the directory {} of the SQLite store while migrating it: {e}",
                    dir.display()
                ))
            };
            let file = std::fs::File::open(&dir).map_err(cannot)?;
            file.lock().map_err(cannot)?;
            Ok(MigrationLock(file))
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("the migration lock's task failed: {e}")))?
    }
}

fn create_private(path: &std::path::Path) -> StoreResult<()> {
    if path.as_os_str().is_empty() {
        return Err(StoreError::Invalid(
            "the store URL names no file: use sqlite://PATH (sqlite://ejgate.db beside the configuration)".into(),
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(StoreError::Invalid(format!(
                "the directory {} of the SQLite store does not exist: create it (mkdir -p {}) or correct store.url",
                dir.display(),
                dir.display()
            )));
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Invalid(format!("cannot create the SQLite store {}: {e}", path.display()))),
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

// ---- SQL texts ----------------------------------------------------------------------------

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

/// A failure of the raw write path, as a database error of sqlx (what every other
/// statement of the store reports).
#[derive(Debug)]
struct RawError(rusqlite::Error, String);

impl std::fmt::Display for RawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for RawError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl sqlx::error::DatabaseError for RawError {
    fn message(&self) -> &str {
        &self.1
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        match &self.0 {
            rusqlite::Error::SqliteFailure(e, _) => Some(e.extended_code.to_string().into()),
            _ => None,
        }
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        match &self.0 {
            rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                sqlx::error::ErrorKind::CheckViolation
            }
            _ => sqlx::error::ErrorKind::Other,
        }
    }
}

fn raw(e: rusqlite::Error) -> sqlx::Error {
    let message = e.to_string();
    sqlx::Error::Database(Box::new(RawError(e, message)))
}

const INSERT_CHANGE_SQL: &str = "INSERT INTO changes (run_id, at, kind, id, source, source_id, op, before, after) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'insert', NULL, ?7)";

/// `before` is the stored content, read before the record is overwritten.
const UPDATE_CHANGE_SQL: &str = "INSERT INTO changes (run_id, at, kind, id, source, source_id, op, before, after) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?8, (SELECT r.content FROM records r WHERE r.id = ?4), ?7)";

const UPSERT_RECORD_SQL: &str = "INSERT INTO records (id, kind, source, source_id, scope, natural_key, date, \
     content, content_hash, source_updated_at, first_seen, last_seen, deleted_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, NULL) \
     ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, source_id = excluded.source_id, \
     scope = excluded.scope, natural_key = excluded.natural_key, date = excluded.date, \
     content = excluded.content, content_hash = excluded.content_hash, \
     source_updated_at = excluded.source_updated_at, last_seen = excluded.last_seen, deleted_at = NULL";

/// The text sqlx writes for a `NaiveDate` (`%F`). Display gives the same text without
/// parsing a format string for every row (it showed in the write path's profile).
fn sqlx_date_text(d: NaiveDate) -> String {
    d.to_string()
}

/// The text sqlx writes for a `NaiveDateTime` (`%F %T%.f`), by Display likewise.
fn sqlx_datetime_text(t: NaiveDateTime) -> String {
    t.to_string()
}

/// Writes the change rows and records of the upserts through SQLite's C interface on the
/// writer's own connection, inside the transaction sqlx opened: one prepared statement
/// per row kind, each row bound and stepped directly. This is the raw ceiling's way of
/// writing; sqlx's per-value argument encoding and its worker-thread round trip made the
/// multi-row statements used before about half as fast.
async fn write_upserts(
    conn: &mut SqliteConnection,
    run: RunId,
    source: &str,
    at: &str,
    upserts: &[Upsert],
) -> StoreResult<()> {
    let write = |conn: &rusqlite::Connection| -> rusqlite::Result<()> {
        let mut insert_change = conn.prepare(INSERT_CHANGE_SQL)?;
        let mut update_change = conn.prepare(UPDATE_CHANGE_SQL)?;
        let mut upsert_record = conn.prepare(UPSERT_RECORD_SQL)?;
        for u in upserts {
            // check_change_set made sure it is UTF-8.
            let content = std::str::from_utf8(&u.content).unwrap_or_default();
            let kind = u.kind.as_str();
            let id = &u.id.as_bytes()[..];
            match u.op {
                ChangeOp::Insert => {
                    insert_change.execute(rusqlite::params![run, at, kind, id, source, u.source_id, content])?
                }
                op => update_change.execute(rusqlite::params![
                    run,
                    at,
                    kind,
                    id,
                    source,
                    u.source_id,
                    content,
                    op.as_str()
                ])?,
            };
            upsert_record.execute(rusqlite::params![
                id,
                kind,
                source,
                u.source_id,
                u.scope,
                u.natural_key,
                // The texts sqlx writes for these types, so that both paths store the same.
                u.date.map(sqlx_date_text),
                content,
                &u.content_hash[..],
                u.source_updated_at.map(sqlx_datetime_text),
                at,
            ])?;
        }
        Ok(())
    };
    on_raw(conn, "apply: lock the writer connection", write)
        .await?
        .map_err(|e| db("apply: write records and change rows")(raw(e)))
}

/// The current records of a kind, read through SQLite's C interface on a reader
/// connection: one prepared statement stepped row by row, the JSON parsed as it comes.
/// sqlx's decoding and its worker thread's row-by-row hand-over took about nine tenths of
/// a year-end snapshot (2026-12-06). A source, when given, is matched by the
/// `records_coverage` index (a `?2 IS NULL OR source = ?2` condition is not: it scanned the
/// whole table).
async fn read_records(
    conn: &mut SqliteConnection,
    kind: EntityKind,
    source: Option<&str>,
    include_deleted: bool,
) -> StoreResult<Vec<StoredRecord>> {
    // Byte order of the UTF-8 text (SQLite's BINARY collation), the same order the
    // PostgreSQL backend gets with COLLATE "C".
    let sql = format!(
        "SELECT id, source, source_id, scope, date, content, deleted_at IS NOT NULL FROM records \
         WHERE kind = ?1 AND {} AND (?3 OR deleted_at IS NULL) ORDER BY source_id, source",
        if source.is_some() { "source = ?2" } else { "?2 IS NULL" }
    );
    let read = |conn: &rusqlite::Connection| -> rusqlite::Result<StoreResult<Vec<StoredRecord>>> {
        let mut statement = conn.prepare(&sql)?;
        let mut rows = statement.query(rusqlite::params![kind.as_str(), source, include_deleted])?;
        let mut out = Vec::new();
        let read = step_rows(&mut rows, |row| {
            // Columns 0–5 are those of `each_raw_record`'s statement.
            let r = raw_row(row, kind)?;
            let c = Columns { row, kind };
            out.push(StoredRecord {
                id: r.id,
                kind,
                source: r.source.to_owned(),
                source_id: r.source_id.to_owned(),
                scope: r.scope.to_owned(),
                date: r.date.map(|d| d.parse::<NaiveDate>().map_err(|e| c.invalid("date", &e))).transpose()?,
                content: parse_json(r.content)?,
                deleted: c.value(6, "deletion")?.as_i64().map_err(|e| c.invalid("deletion", &e))? != 0,
            });
            Ok(std::ops::ControlFlow::Continue(()))
        })?;
        Ok(read.map(|_| out))
    };
    on_raw(conn, "read records: lock the reader connection", read).await?.map_err(|e| db("read records")(raw(e)))?
}

/// Runs `work` on the SQLite handle of a pooled connection, through SQLite's C interface, on
/// this thread (letting a multi-threaded runtime move its other tasks meanwhile). The outer
/// error is the lock's; the inner result is `work`'s.
async fn on_raw<T>(
    conn: &mut SqliteConnection,
    lock: &'static str,
    work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
) -> StoreResult<rusqlite::Result<T>> {
    let mut handle = conn.lock_handle().await.map_err(db(lock))?;
    let raw_handle = handle.as_raw_handle();
    let run = || {
        // SAFETY: the handle is sqlx's open connection, locked for us (its worker thread
        // waits), and used only on this thread until `handle` is dropped below; the
        // `Connection` made from it does not close it when dropped. Both crates link the
        // same libsqlite3-sys.
        let conn = unsafe { rusqlite::Connection::from_handle(raw_handle.as_ptr()) }?;
        work(&conn)
    };
    // The work is CPU work on this thread; on a multi-threaded runtime, let the other
    // tasks (a sync's fetcher) move to another thread meanwhile.
    let result = match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(run),
        _ => run(),
    };
    drop(handle);
    Ok(result)
}

/// The columns of a stored record's row, read as SQLite holds them (text lent, not copied);
/// a column that is not what the store writes is named with the record's kind.
struct Columns<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    kind: EntityKind,
}

impl<'r> Columns<'r, '_> {
    fn invalid(&self, what: &str, e: &dyn std::fmt::Display) -> StoreError {
        StoreError::Invalid(format!("bad {what} of a {} record in the store: {e}", self.kind))
    }

    fn value(&self, i: usize, what: &str) -> StoreResult<rusqlite::types::ValueRef<'r>> {
        self.row.get_ref(i).map_err(|e| self.invalid(what, &e))
    }

    fn text(&self, i: usize, what: &str) -> StoreResult<&'r str> {
        self.value(i, what)?.as_str().map_err(|e| self.invalid(what, &e))
    }

    fn id(&self, i: usize) -> StoreResult<Uuid> {
        parse_uuid(self.value(i, "id")?.as_blob().map_err(|e| self.invalid("id", &e))?)
    }
}

/// Steps `rows` to the end or until `each` breaks, handing each row to `each`; the count of
/// rows handed over. The outer error is SQLite's, the inner one the store's (a bad row).
fn step_rows(
    rows: &mut rusqlite::Rows<'_>,
    mut each: impl FnMut(&rusqlite::Row<'_>) -> StoreResult<std::ops::ControlFlow<()>>,
) -> rusqlite::Result<StoreResult<u64>> {
    let mut n = 0;
    while let Some(row) = rows.next()? {
        n += 1;
        match each(row) {
            Ok(std::ops::ControlFlow::Continue(())) => {}
            Ok(std::ops::ControlFlow::Break(())) => break,
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(n))
}

/// A row of `visit_records`' statement (id, source id, content, first seen).
fn content_row<'r>(row: &'r rusqlite::Row<'_>, kind: EntityKind, first_seen: bool) -> StoreResult<ContentRow<'r>> {
    let c = Columns { row, kind };
    Ok(ContentRow {
        id: c.id(0)?,
        source_id: c.text(1, "source id")?,
        content: c.text(2, "content")?,
        first_seen: if first_seen { Some(parse_ts(c.text(3, "first-seen time")?)?) } else { None },
    })
}

/// [`Store::visit_records`] on a reader connection: one prepared statement stepped row by
/// row, each row's content handed over as the text SQLite holds (no copy, no parse). No
/// ORDER BY: the `records_coverage` index finds the source's records of the kind, and
/// sorting a year of marks by source id cost more than the rest of the read.
async fn visit_records(
    conn: &mut SqliteConnection,
    kind: EntityKind,
    source: &str,
    first_seen: bool,
    visit: RecordVisitor<'_>,
) -> StoreResult<()> {
    const SQL: &str = "SELECT id, source_id, content, first_seen FROM records \
         WHERE source = ?1 AND kind = ?2 AND deleted_at IS NULL";
    let read = |conn: &rusqlite::Connection| -> rusqlite::Result<StoreResult<u64>> {
        let mut statement = conn.prepare(SQL)?;
        let mut rows = statement.query(rusqlite::params![source, kind.as_str()])?;
        step_rows(&mut rows, |row| Ok(visit(content_row(row, kind, first_seen)?)))
    };
    on_raw(conn, "visit records: lock the reader connection", read)
        .await?
        .map_err(|e| db("visit records")(raw(e)))?
        .map(|_| ())
}

/// A row of `each_raw_record`'s statement, its text lent from SQLite's.
fn raw_row<'r>(row: &'r rusqlite::Row<'_>, kind: EntityKind) -> StoreResult<RawRecord<'r>> {
    let c = Columns { row, kind };
    Ok(RawRecord {
        id: c.id(0)?,
        source: c.text(1, "source")?,
        source_id: c.text(2, "source id")?,
        scope: c.text(3, "scope")?,
        date: match c.value(4, "date")? {
            rusqlite::types::ValueRef::Null => None,
            _ => Some(c.text(4, "date")?),
        },
        content: c.text(5, "content")?,
    })
}

/// [`Store::each_raw_record`]: the rows straight from SQLite's statement to `each`, the
/// text columns lent as SQLite holds them (no copy, no JSON parse). In source-id order
/// without a sort: the `records_export` index (migration 20261208200001) is walked.
async fn each_raw_record(
    conn: &mut SqliteConnection,
    kind: EntityKind,
    source: &str,
    dated_within: Option<(NaiveDate, NaiveDate)>,
    each: RawRecordVisitor<'_>,
) -> StoreResult<u64> {
    // Dates are `YYYY-MM-DD` text: their byte order is the dates' order. The order is
    // `read_records`' (source_id, source; one source here).
    const SQL: &str = "SELECT id, source, source_id, scope, date, content FROM records \
         WHERE kind = ?1 AND source = ?2 AND deleted_at IS NULL \
         AND (?3 IS NULL OR date IS NULL OR date BETWEEN ?3 AND ?4) ORDER BY source_id";
    let (from, to) = (dated_within.map(|d| d.0.to_string()), dated_within.map(|d| d.1.to_string()));
    let read = |conn: &rusqlite::Connection| -> rusqlite::Result<StoreResult<u64>> {
        let mut statement = conn.prepare(SQL)?;
        let mut rows = statement.query(rusqlite::params![kind.as_str(), source, from, to])?;
        step_rows(&mut rows, |row| Ok(each(raw_row(row, kind)?)))
    };
    on_raw(conn, "read raw records: lock the reader connection", read)
        .await?
        .map_err(|e| db("read raw records")(raw(e)))?
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
    let get = db("read change rows");
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

const LEASE_COLUMNS: &str = "name, token, host, pid, acquired_at, renewed_at, expires_at";

fn lease_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<LeaseInfo> {
    let get = db("read leases");
    let pid: i64 = row.try_get(3).map_err(get)?;
    Ok(LeaseInfo {
        name: row.try_get(0).map_err(get)?,
        token: parse_uuid(row.try_get(1).map_err(get)?)?,
        host: row.try_get(2).map_err(get)?,
        pid: u32::try_from(pid).unwrap_or(0),
        acquired_at: parse_ts(row.try_get(4).map_err(get)?)?,
        renewed_at: parse_ts(row.try_get(5).map_err(get)?)?,
        expires_at: parse_ts(row.try_get(6).map_err(get)?)?,
    })
}

/// `now + ttl`, saturating far in the future.
fn expiry(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    now.checked_add_signed(chrono::TimeDelta::milliseconds(ttl_millis(ttl))).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn sync_run(row: &sqlx::sqlite::SqliteRow) -> StoreResult<SyncRun> {
    let get = db("read runs");
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
        error_kind: match row.try_get::<Option<&str>, _>(8).map_err(get)? {
            None => None,
            Some(kind) => Some(
                RunErrorKind::parse(kind)
                    .ok_or_else(|| StoreError::Invalid(format!("unknown error kind «{kind}» in the store")))?,
            ),
        },
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

    fn shared(&self) -> Arc<dyn Store> {
        Arc::new(self.clone())
    }

    async fn acquire_lease(&self, request: &LeaseRequest<'_>) -> StoreResult<LeaseOutcome> {
        // `BEGIN IMMEDIATE` takes the database's write lock: the read and the write below
        // are one step for every other process.
        let mut tx = self.write_tx().await?;
        let now = now_micros();
        let current = sqlx::query(AssertSqlSafe(format!("SELECT {LEASE_COLUMNS} FROM leases WHERE name = ?1")))
            .bind(request.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("acquire lease: read it"))?
            .as_ref()
            .map(lease_row)
            .transpose()?;
        if let Some(held) = &current {
            if held.expires_at > now && request.replace != Some(held.token) {
                return Ok(LeaseOutcome::Held(held.clone()));
            }
        }
        let lease = LeaseInfo {
            name: request.name.to_string(),
            token: Uuid::new_v4(),
            host: request.host.to_string(),
            pid: request.pid,
            acquired_at: now,
            renewed_at: now,
            expires_at: expiry(now, request.ttl),
        };
        sqlx::query(
            "INSERT INTO leases (name, token, host, pid, acquired_at, renewed_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6) ON CONFLICT (name) DO UPDATE SET token = excluded.token, \
             host = excluded.host, pid = excluded.pid, acquired_at = excluded.acquired_at, \
             renewed_at = excluded.renewed_at, expires_at = excluded.expires_at",
        )
        .bind(&lease.name)
        .bind(&lease.token.as_bytes()[..])
        .bind(&lease.host)
        .bind(i64::from(lease.pid))
        .bind(ts(now))
        .bind(ts(lease.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(db("acquire lease"))?;
        if let Some(old) = &current {
            sqlx::query(
                "INSERT INTO lease_takeovers (name, at, old_host, old_pid, old_renewed_at, new_host, new_pid) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(&lease.name)
            .bind(ts(now))
            .bind(&old.host)
            .bind(i64::from(old.pid))
            .bind(ts(old.renewed_at))
            .bind(&lease.host)
            .bind(i64::from(lease.pid))
            .execute(&mut *tx)
            .await
            .map_err(db("acquire lease: record the takeover"))?;
        }
        tx.commit().await.map_err(db("acquire lease: commit"))?;
        Ok(LeaseOutcome::Acquired { lease, took_over: current })
    }

    async fn renew_lease(&self, name: &str, token: Uuid, ttl: Duration) -> StoreResult<bool> {
        let now = now_micros();
        let done = sqlx::query("UPDATE leases SET renewed_at = ?1, expires_at = ?2 WHERE name = ?3 AND token = ?4")
            .bind(ts(now))
            .bind(ts(expiry(now, ttl)))
            .bind(name)
            .bind(&token.as_bytes()[..])
            .execute(&self.writer)
            .await
            .map_err(db("renew lease"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn release_lease(&self, name: &str, token: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM leases WHERE name = ?1 AND token = ?2")
            .bind(name)
            .bind(&token.as_bytes()[..])
            .execute(&self.writer)
            .await
            .map_err(db("release lease"))?;
        Ok(())
    }

    async fn inspect(&self) -> StoreResult<Inspection> {
        if self.checkpointer.is_none() {
            return Err(StoreError::Invalid("an in-memory store has no file to inspect".into()));
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || inspect_file(&path))
            .await
            .map_err(|e| StoreError::Invalid(format!("inspecting the store failed: {e}")))?
    }

    async fn snapshot_into(&self, path: &std::path::Path) -> StoreResult<Inspection> {
        if self.checkpointer.is_none() {
            return Err(StoreError::Invalid("an in-memory store cannot be backed up".into()));
        }
        let from = self.path.clone();
        let into = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            // A connection of its own, outside the pools: VACUUM INTO reads the whole
            // database in one read transaction (a consistent snapshot in WAL mode, beside
            // the writer) and never takes the write lock.
            let conn = rusqlite::Connection::open_with_flags(
                &from,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| db("snapshot: open the store")(raw(e)))?;
            conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| db("snapshot: busy timeout")(raw(e)))?;
            let into = into
                .to_str()
                .ok_or_else(|| StoreError::Invalid(format!("the snapshot path {} is not UTF-8", into.display())))?;
            conn.execute("VACUUM INTO ?1", [into]).map_err(|e| db("snapshot: VACUUM INTO")(raw(e)))?;
            // The copy is one self-contained file (a rollback journal, not WAL): it is read
            // read-only by its checks and restored as it is.
            let copy = rusqlite::Connection::open(into).map_err(|e| db("snapshot: open the copy")(raw(e)))?;
            copy.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
                .map_err(|e| db("snapshot: journal mode of the copy")(raw(e)))?;
            drop(copy);
            inspect_file(std::path::Path::new(into))
        })
        .await
        .map_err(|e| StoreError::Invalid(format!("the snapshot failed: {e}")))?
    }

    async fn log_backup_use(&self, entry: &BackupUse) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO backup_log (at, action, backup_id, who, why, outcome, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(ts(entry.at))
        .bind(entry.action.as_str())
        .bind(&entry.backup_id)
        .bind(&entry.who)
        .bind(&entry.why)
        .bind(entry.outcome.as_str())
        .bind(&entry.detail)
        .execute(&mut *tx)
        .await
        .map_err(db("write the backup-usage log"))?;
        tx.commit().await.map_err(db("write the backup-usage log: commit")).map_err(|e| self.disk_full(e))
    }

    async fn add_paper_copy(&self, copy: &PaperCopy) -> StoreResult<u32> {
        let mut tx = self.write_tx().await?;
        let (number,): (i64,) = sqlx::query_as(
            "INSERT INTO paper_register (school, number, class, school_year, title, sheets, signed_by, kept_at, \
             handed_on, handed_to, recorded_at, recorded_by) \
             SELECT ?1, COALESCE(MAX(number), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 \
             FROM paper_register WHERE school = ?1 RETURNING number",
        )
        .bind(&copy.school)
        .bind(&copy.class)
        .bind(&copy.school_year)
        .bind(&copy.title)
        .bind(i64::from(copy.sheets))
        .bind(&copy.signed_by)
        .bind(&copy.kept_at)
        .bind(copy.handed_on.map(|d| d.to_string()))
        .bind(&copy.handed_to)
        .bind(ts(copy.recorded_at))
        .bind(&copy.recorded_by)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("enter a paper copy in the register"))?;
        tx.commit().await.map_err(db("enter a paper copy in the register: commit")).map_err(|e| self.disk_full(e))?;
        Ok(number as u32)
    }

    async fn set_paper_copy(&self, school: &str, number: u32, change: &PaperCopyChange) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE paper_register SET sheets = COALESCE(?3, sheets), signed_by = COALESCE(?4, signed_by), \
             kept_at = COALESCE(?5, kept_at), handed_on = COALESCE(?6, handed_on), \
             handed_to = COALESCE(?7, handed_to) WHERE school = ?1 AND number = ?2",
        )
        .bind(school)
        .bind(i64::from(number))
        .bind(change.sheets.map(i64::from))
        .bind(&change.signed_by)
        .bind(&change.kept_at)
        .bind(change.handed_on.map(|d| d.to_string()))
        .bind(&change.handed_to)
        .execute(&mut *tx)
        .await
        .map_err(db("change the register of paper copies"))?;
        tx.commit().await.map_err(db("change the register of paper copies: commit")).map_err(|e| self.disk_full(e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn paper_copies(&self, school: Option<&str>) -> StoreResult<Vec<PaperCopy>> {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(
            String,
            i64,
            String,
            String,
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            String,
        )> = sqlx::query_as(
            "SELECT school, number, class, school_year, title, sheets, signed_by, kept_at, handed_on, handed_to, \
             recorded_at, recorded_by FROM paper_register WHERE ?1 IS NULL OR school = ?1 ORDER BY school, number",
        )
        .bind(school)
        .fetch_all(&self.reader)
        .await
        .map_err(db("read the register of paper copies"))?;
        rows.into_iter()
            .map(|r| {
                let handed_on = match r.8 {
                    None => None,
                    Some(d) => Some(d.parse().map_err(|e| {
                        StoreError::Invalid(format!("bad date «{d}» in the register of paper copies: {e}"))
                    })?),
                };
                Ok(PaperCopy {
                    school: r.0,
                    number: r.1 as u32,
                    class: r.2,
                    school_year: r.3,
                    title: r.4,
                    sheets: r.5 as u32,
                    signed_by: r.6,
                    kept_at: r.7,
                    handed_on,
                    handed_to: r.9,
                    recorded_at: parse_ts(&r.10)?,
                    recorded_by: r.11,
                })
            })
            .collect()
    }

    async fn backup_uses(&self, limit: u32) -> StoreResult<Vec<BackupUse>> {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(String, String, Option<String>, String, Option<String>, String, String)> = sqlx::query_as(
            "SELECT at, action, backup_id, who, why, outcome, detail FROM backup_log ORDER BY id DESC LIMIT ?1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db("read the backup-usage log"))?;
        rows.into_iter()
            .map(|(at, action, backup_id, who, why, outcome, detail)| {
                Ok(BackupUse {
                    at: parse_ts(&at)?,
                    action: BackupAction::parse(&action)
                        .ok_or_else(|| StoreError::Invalid(format!("unknown backup action «{action}» in the store")))?,
                    backup_id,
                    who,
                    why,
                    outcome: BackupOutcome::from_store(&outcome)?,
                    detail,
                })
            })
            .collect()
    }

    async fn record_backup_targets(
        &self,
        at: DateTime<Utc>,
        backup_id: &str,
        targets: &[(String, Option<String>)],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for (target, error) in targets {
            sqlx::query(
                "INSERT INTO backup_targets (target, last_attempt_at, last_success_at, last_error, last_backup_id) \
                 VALUES (?1, ?2, CASE WHEN ?3 IS NULL THEN ?2 END, ?3, ?4) ON CONFLICT (target) DO UPDATE SET \
                 last_attempt_at = excluded.last_attempt_at, \
                 last_success_at = coalesce(excluded.last_success_at, backup_targets.last_success_at), \
                 last_error = excluded.last_error, last_backup_id = excluded.last_backup_id",
            )
            .bind(target)
            .bind(ts(at))
            .bind(error)
            .bind(backup_id)
            .execute(&mut *tx)
            .await
            .map_err(db("record the backup targets"))?;
        }
        tx.commit().await.map_err(db("record the backup targets: commit")).map_err(|e| self.disk_full(e))
    }

    async fn backup_targets(&self) -> StoreResult<Vec<BackupTargetState>> {
        let rows: Vec<(String, String, Option<String>, Option<String>, String)> = sqlx::query_as(
            "SELECT target, last_attempt_at, last_success_at, last_error, last_backup_id FROM backup_targets \
             ORDER BY target",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db("read the backup targets"))?;
        rows.into_iter()
            .map(|(target, attempt, success, last_error, last_backup_id)| {
                Ok(BackupTargetState {
                    target,
                    last_attempt_at: parse_ts(&attempt)?,
                    last_success_at: success.as_deref().map(parse_ts).transpose()?,
                    last_error,
                    last_backup_id,
                })
            })
            .collect()
    }

    async fn backup_run_totals(&self) -> StoreResult<Vec<(BackupOutcome, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT outcome, count(*) FROM backup_log WHERE action = 'backup' GROUP BY outcome ORDER BY outcome",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db("count the backup runs"))?;
        rows.into_iter().map(|(o, n)| BackupOutcome::from_store(&o).map(|outcome| (outcome, n as u64))).collect()
    }

    async fn leases(&self) -> StoreResult<Vec<LeaseInfo>> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT {LEASE_COLUMNS} FROM leases ORDER BY name")))
            .fetch_all(&self.reader)
            .await
            .map_err(db("read leases"))?;
        rows.iter().map(lease_row).collect()
    }

    async fn begin_run(&self, source: &str, mode: &str) -> StoreResult<RunId> {
        // A full disk is said so, with the store's file.
        let result: StoreResult<RunId> = async {
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
        .await;
        result.map_err(|e| self.disk_full(e))
    }

    async fn finish_run(
        &self,
        run: RunId,
        status: RunStatus,
        error: Option<&RunError>,
        stats: &RunStats,
    ) -> StoreResult<()> {
        // A full disk is said so, with the store's file.
        let result: StoreResult<()> = async {
            let stats =
                serde_json::to_string(stats).map_err(|e| StoreError::Invalid(format!("run statistics: {e}")))?;
            let mut tx = self.write_tx().await?;
            let done = sqlx::query(
                "UPDATE sync_runs SET status = ?1, finished_at = ?2, error = ?3, stats = ?4, \
                 error_kind = ?6 WHERE id = ?5",
            )
            .bind(status.as_str())
            .bind(ts(now_micros()))
            .bind(error.map(|e| e.message.as_str()))
            .bind(stats)
            .bind(run)
            .bind(error.map(|e| e.kind.as_str()))
            .execute(&mut *tx)
            .await
            .map_err(db("finish run"))?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Invalid(format!("finish run: there is no run {run}")));
            }
            tx.commit().await.map_err(db("finish run: commit"))
        }
        .await;
        match result.map_err(|e| self.disk_full(e)) {
            // The disk is full: give the reserve up so that the run is recorded, not left
            // `running` (once: `finish_run` calls itself only with the reserve gone).
            Err(StoreError::DiskFull(_)) if std::fs::remove_file(reserve_path(&self.path)).is_ok() => {
                tracing::debug!("the disk is full: the store's reserve was given up to record the run");
                self.finish_run(run, status, error, stats).await
            }
            other => other,
        }
    }

    async fn runs(&self, limit: u32) -> StoreResult<Vec<SyncRun>> {
        let rows = sqlx::query(
            "SELECT id, source, mode, started_at, finished_at, status, error, stats, error_kind \
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

    async fn holds_source(&self, source: &str) -> StoreResult<bool> {
        // The writer, as `existing`: the engine asks before it writes.
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM records WHERE source = ?1)")
            .bind(source)
            .fetch_one(&self.writer)
            .await
            .map_err(db("look for records of the source"))
    }

    async fn apply(&self, run: RunId, source: &str, changes: &ChangeSet, cursors: &[CursorUpdate]) -> StoreResult<()> {
        // A full disk is said so, with the store's file.
        let result: StoreResult<()> = async {
            check_change_set(changes)?;
            let at = ts(now_micros());
            let mut tx = self.write_tx().await?;

            if !changes.upserts.is_empty() {
                write_upserts(&mut tx, run, source, &at, &changes.upserts).await?;
            }
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
            tx.commit().await.map_err(db("apply: commit"))?;
            if let Some(c) = &self.checkpointer {
                c.poke();
            }
            Ok(())
        }
        .await;
        result.map_err(|e| self.disk_full(e))
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

    async fn edits(&self, source: &str, kind: EntityKind) -> StoreResult<Vec<ChangeRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CHANGE_COLUMNS} FROM changes WHERE source = ?1 AND kind = ?2 AND op <> 'insert' ORDER BY seq"
        )))
        .bind(source)
        .bind(kind.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(db("read the edits of a source"))?;
        rows.iter().map(change_row).collect()
    }

    async fn journal_aggregates(&self, requests: &[AggregateRequest]) -> StoreResult<Vec<SchoolAggregates>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let p = aggregates::params(requests)?;
        let rows: Vec<aggregates::Row> = sqlx::query_as(JOURNAL_AGGREGATES)
            .bind(p.schools)
            .bind(p.spans)
            .bind(p.sources)
            .bind(aggregates::BLANK)
            .fetch_all(&self.reader)
            .await
            .map_err(db("count the journal"))?;
        aggregates::assemble(requests, rows)
    }

    async fn first_seen(&self, kind: EntityKind, source: &str) -> StoreResult<HashMap<Uuid, DateTime<Utc>>> {
        let rows: Vec<(Vec<u8>, String)> =
            sqlx::query_as("SELECT id, first_seen FROM records WHERE kind = ?1 AND source = ?2 AND deleted_at IS NULL")
                .bind(kind.as_str())
                .bind(source)
                .fetch_all(&self.reader)
                .await
                .map_err(db("read when records were first seen"))?;
        rows.iter().map(|(id, at)| Ok((parse_uuid(id)?, parse_ts(at)?))).collect()
    }

    async fn findings(&self, school: &str) -> StoreResult<Vec<StoredFinding>> {
        let rows = sqlx::query("SELECT key, rule, clause, severity, teacher, class, subject, date, lesson, mark, what, evidence, first_detected, last_detected, fixed_at FROM findings WHERE school = ?1 ORDER BY key")
            .bind(school)
            .fetch_all(&self.reader)
            .await
            .map_err(db("read findings"))?;
        rows.iter()
            .map(|row| {
                let get = db("read findings");
                let uuid = |b: Option<Vec<u8>>| b.map(|b| parse_uuid(&b)).transpose();
                let date: Option<String> = row.try_get(7).map_err(get)?;
                let fixed: Option<String> = row.try_get(14).map_err(get)?;
                Ok(StoredFinding {
                    key: row.try_get(0).map_err(get)?,
                    rule: row.try_get(1).map_err(get)?,
                    clause: row.try_get(2).map_err(get)?,
                    severity: row.try_get(3).map_err(get)?,
                    teacher: row.try_get(4).map_err(get)?,
                    class: row.try_get(5).map_err(get)?,
                    subject: row.try_get(6).map_err(get)?,
                    date: date
                        .map(|d| d.parse().map_err(|e| StoreError::Invalid(format!("bad finding date «{d}»: {e}"))))
                        .transpose()?,
                    lesson: uuid(row.try_get(8).map_err(get)?)?,
                    mark: uuid(row.try_get(9).map_err(get)?)?,
                    what: row.try_get(10).map_err(get)?,
                    evidence: row.try_get(11).map_err(get)?,
                    first_detected: parse_ts(row.try_get(12).map_err(get)?)?,
                    last_detected: parse_ts(row.try_get(13).map_err(get)?)?,
                    fixed_at: fixed.as_deref().map(parse_ts).transpose()?,
                })
            })
            .collect()
    }

    async fn report_compromised(
        &self,
        school: &str,
        login: &str,
        at: DateTime<Utc>,
        reported_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT OR IGNORE INTO compromised_logins (school, login, at, reported_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(school)
        .bind(login)
        .bind(ts(at))
        .bind(ts(reported_at))
        .execute(&mut *tx)
        .await
        .map_err(db("record a compromised login"))?;
        tx.commit().await.map_err(db("record a compromised login"))?;
        Ok(())
    }

    async fn compromised(&self, school: &str) -> StoreResult<Vec<CompromisedLogin>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT login, at, reported_at FROM compromised_logins WHERE school = ?1 ORDER BY at, login",
        )
        .bind(school)
        .fetch_all(&self.reader)
        .await
        .map_err(db("read compromised logins"))?;
        rows.into_iter()
            .map(|(login, at, reported_at)| {
                Ok(CompromisedLogin { login, at: parse_ts(&at)?, reported_at: parse_ts(&reported_at)? })
            })
            .collect()
    }

    async fn write_findings(
        &self,
        school: &str,
        upserts: &[StoredFinding],
        fixed: &[(String, DateTime<Utc>)],
    ) -> StoreResult<()> {
        if upserts.is_empty() && fixed.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for f in upserts {
            sqlx::query(
                "INSERT OR REPLACE INTO findings (school, key, rule, clause, severity, teacher, class, subject, date, \
                 lesson, mark, what, evidence, first_detected, last_detected, fixed_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )
            .bind(school)
            .bind(&f.key)
            .bind(&f.rule)
            .bind(&f.clause)
            .bind(&f.severity)
            .bind(&f.teacher)
            .bind(&f.class)
            .bind(&f.subject)
            .bind(f.date.map(|d| d.to_string()))
            .bind(f.lesson.map(|u| u.as_bytes().to_vec()))
            .bind(f.mark.map(|u| u.as_bytes().to_vec()))
            .bind(&f.what)
            .bind(&f.evidence)
            .bind(ts(f.first_detected))
            .bind(ts(f.last_detected))
            .bind(f.fixed_at.map(ts))
            .execute(&mut *tx)
            .await
            .map_err(db("write a finding"))?;
        }
        for (key, at) in fixed {
            sqlx::query("UPDATE findings SET fixed_at = ?3 WHERE school = ?1 AND key = ?2 AND fixed_at IS NULL")
                .bind(school)
                .bind(key)
                .bind(ts(*at))
                .execute(&mut *tx)
                .await
                .map_err(db("mark a finding fixed"))?;
        }
        tx.commit().await.map_err(db("commit findings"))?;
        Ok(())
    }

    async fn records(
        &self,
        kind: EntityKind,
        source: Option<&str>,
        include_deleted: bool,
    ) -> StoreResult<Vec<StoredRecord>> {
        let mut conn = self.reader.acquire().await.map_err(db("read records: open a reader"))?;
        read_records(&mut conn, kind, source, include_deleted).await
    }

    async fn visit_records(
        &self,
        kind: EntityKind,
        source: &str,
        first_seen: bool,
        visit: RecordVisitor<'_>,
    ) -> StoreResult<()> {
        let mut conn = self.reader.acquire().await.map_err(db("visit records: open a reader"))?;
        visit_records(&mut conn, kind, source, first_seen, visit).await
    }

    async fn each_raw_record(
        &self,
        kind: EntityKind,
        source: &str,
        dated_within: Option<(NaiveDate, NaiveDate)>,
        each: RawRecordVisitor<'_>,
    ) -> StoreResult<u64> {
        let mut conn = self.reader.acquire().await.map_err(db("read raw records: open a reader"))?;
        each_raw_record(&mut conn, kind, source, dated_within, each).await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1 FROM sync_runs LIMIT 1").fetch_optional(&self.reader).await.map_err(db("ping"))?;
        Ok(())
    }

    async fn run_totals(&self) -> StoreResult<Vec<RunTotals>> {
        let rows = sqlx::query(
            "SELECT source, mode, status, count(*), \
             coalesce(sum(json_extract(stats, '$.requests')), 0), \
             coalesce(sum(json_extract(stats, '$.records_read')), 0), \
             coalesce(sum(json_extract(stats, '$.inserted')), 0), \
             coalesce(sum(json_extract(stats, '$.updated')), 0), \
             coalesce(sum(json_extract(stats, '$.deleted')), 0), \
             coalesce(sum(json_extract(stats, '$.rate_limited')), 0), \
             coalesce(sum(json_extract(stats, '$.limit_waits')), 0), \
             coalesce(sum(json_extract(stats, '$.limit_wait_ms')), 0), \
             max(finished_at) \
             FROM sync_runs GROUP BY source, mode, status ORDER BY source, mode, status",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db("add up runs"))?;
        rows.iter()
            .map(|row| {
                let get = db("add up runs");
                let n = |i: usize| -> StoreResult<u64> { Ok(row.try_get::<i64, _>(i).map_err(get)?.max(0) as u64) };
                let status: &str = row.try_get(2).map_err(get)?;
                let last: Option<&str> = row.try_get(12).map_err(get)?;
                Ok(RunTotals {
                    source: row.try_get(0).map_err(get)?,
                    mode: row.try_get(1).map_err(get)?,
                    status: RunStatus::parse(status)
                        .ok_or_else(|| StoreError::Invalid(format!("unknown run status «{status}» in the store")))?,
                    runs: n(3)?,
                    requests: n(4)?,
                    records_read: n(5)?,
                    inserted: n(6)?,
                    updated: n(7)?,
                    deleted: n(8)?,
                    rate_limited: n(9)?,
                    limit_waits: n(10)?,
                    limit_wait_ms: n(11)?,
                    last_finished_at: last.map(parse_ts).transpose()?,
                })
            })
            .collect()
    }

    async fn last_finished_runs(&self) -> StoreResult<Vec<SyncRun>> {
        let rows = sqlx::query(
            "SELECT id, source, mode, started_at, finished_at, status, error, stats, error_kind FROM sync_runs \
             WHERE id IN (SELECT max(id) FROM sync_runs WHERE status <> 'running' GROUP BY source) ORDER BY source",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db("read the last runs"))?;
        rows.iter().map(sync_run).collect()
    }

    async fn lease_takeovers(&self) -> StoreResult<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, count(*) FROM lease_takeovers GROUP BY name ORDER BY name")
                .fetch_all(&self.reader)
                .await
                .map_err(db("count lease takeovers"))?;
        Ok(rows.into_iter().map(|(name, n)| (name, n.max(0) as u64)).collect())
    }

    async fn create_api_token(&self, name: &str, hash: &[u8; 32]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let in_force: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM api_tokens WHERE name = ?1 AND revoked_at IS NULL")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("create API token: look for its name"))?;
        if in_force.is_some() {
            return Err(StoreError::Invalid(format!(
                "an API token named «{name}» is in force: revoke it first (`ejgate token revoke {name}`) or choose \
                 another name"
            )));
        }
        sqlx::query(
            "INSERT INTO api_tokens (name, hash, created_at, revoked_at) VALUES (?1, ?2, ?3, NULL) \
             ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at, \
             revoked_at = NULL",
        )
        .bind(name)
        .bind(&hash[..])
        .bind(ts(now_micros()))
        .execute(&mut *tx)
        .await
        .map_err(db("create API token"))?;
        tx.commit().await.map_err(db("create API token: commit"))
    }

    async fn revoke_api_token(&self, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = ?1 WHERE name = ?2 AND revoked_at IS NULL")
            .bind(ts(now_micros()))
            .bind(name)
            .execute(&self.writer)
            .await
            .map_err(db("revoke API token"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn api_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT name, created_at, revoked_at FROM api_tokens ORDER BY name")
                .fetch_all(&self.reader)
                .await
                .map_err(db("list API tokens"))?;
        rows.into_iter()
            .map(|(name, created, revoked)| {
                Ok(ApiToken {
                    name,
                    created_at: parse_ts(&created)?,
                    revoked_at: revoked.as_deref().map(parse_ts).transpose()?,
                })
            })
            .collect()
    }

    async fn api_token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<ApiToken>> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT name, created_at FROM api_tokens WHERE hash = ?1 AND revoked_at IS NULL")
                .bind(&hash[..])
                .fetch_optional(&self.reader)
                .await
                .map_err(db("look up API token"))?;
        row.map(|(name, created)| Ok(ApiToken { name, created_at: parse_ts(&created)?, revoked_at: None })).transpose()
    }
}

/// The first column of every row of a query, as text.
fn strings(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare(sql)?;
    let rows = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>();
    rows
}

/// Inspects a SQLite store file without changing it (a backup's snapshot, a restored file):
/// rows per table, schema version and the consistency checks, in one read transaction.
pub fn inspect_file(path: &std::path::Path) -> StoreResult<Inspection> {
    let fail = |what: &'static str| move |e: rusqlite::Error| db(what)(raw(e));
    let mut conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail("inspect: open"))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail("inspect: busy timeout"))?;
    let tx = conn.transaction().map_err(fail("inspect: begin"))?;
    let names = strings(
        &tx,
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         AND name NOT LIKE '\\_sqlx%' ESCAPE '\\' ORDER BY name",
    )
    .map_err(fail("inspect: list the tables"))?;
    let mut tables = std::collections::BTreeMap::new();
    for name in names {
        // Names come from the schema itself; quoted as identifiers.
        let n: i64 = tx
            .query_row(&format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\"")), [], |r| r.get(0))
            .map_err(fail("inspect: count rows"))?;
        tables.insert(name, n as u64);
    }
    let schema_version: i64 = tx
        .query_row("SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success", [], |r| r.get(0))
        .map_err(fail("inspect: read the schema version"))?;
    let mut problems = Vec::new();
    for sql in super::CONSISTENCY_CHECKS {
        problems.extend(strings(&tx, sql).map_err(fail("inspect: consistency check"))?);
    }
    Ok(Inspection { tables, schema_version, problems })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Several openers of one new store at once (each its own descriptor of the directory,
    /// as two processes have): every one opens it, the migrations ran once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_new_store_opened_by_several_at_once_is_migrated_once() {
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join(format!("new-{round}.db")).display());
            let opens = (0..6).map(|_| {
                let url = url.clone();
                tokio::spawn(async move { SqliteStore::open(&url).await })
            });
            let stores: Vec<SqliteStore> = futures::future::join_all(opens)
                .await
                .into_iter()
                .map(|joined| joined.unwrap().unwrap_or_else(|e| panic!("round {round}: {e}")))
                .collect();
            let applied: i64 =
                sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&stores[0].writer).await.unwrap();
            assert_eq!(applied as usize, MIGRATOR.iter().count(), "round {round}");
        }
    }

    /// The write path's texts are the ones sqlx writes for the same values (`%F`,
    /// `%F %T%.f`), fractions of a second included, so both paths store the same.
    #[test]
    fn date_texts_match_the_ones_sqlx_writes() {
        let d = NaiveDate::from_ymd_opt(2025, 9, 1).unwrap();
        assert_eq!(sqlx_date_text(d), d.format("%F").to_string());
        for (h, m, s, nanos) in [(8, 30, 0, 0), (23, 59, 59, 120_000_000), (0, 0, 1, 123_456_000), (12, 5, 7, 1)] {
            let t = d.and_hms_nano_opt(h, m, s, nanos).unwrap();
            assert_eq!(sqlx_datetime_text(t), t.format("%F %T%.f").to_string(), "{t:?}");
        }
    }
}
