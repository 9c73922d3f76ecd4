//! The canonical store: one data-level trait, two backends (SQLite, PostgreSQL), each
//! owning its migrations and running them on connect.
//!
//! The store keeps the current content of every canonical record, an append-only change
//! log (insert, update, key change, delete as tombstone) with a monotonic sequence, the
//! sync runs, and the cursors of every (source, stream, scope). The sync engine is the only
//! writer of source data; it calls [`Store::apply`] once per batch, and the cursor it
//! passes moves in the same transaction, so a cursor never runs ahead of committed data.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use ejgate_sdk::model::{DateRange, EntityKind};

mod aggregates;
mod jobs;
mod postgres;
mod sqlite;

pub use aggregates::{AggregateRequest, SchoolAggregates, SpanAggregates};
pub use jobs::{JobClaim, JobEnd, JobRun, JobRunId, JobRunStatus, JobRunTotals, JobStore, JobTrigger, NewJobRun};
pub use postgres::export::{inspect_export_file as inspect_postgres_export, restore_export as restore_postgres_export};
pub use postgres::PostgresStore;
pub use sqlite::{inspect_file as inspect_sqlite_file, SqliteStore};

/// Errors of the store. Each names the backend and the operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store ({backend}): {operation}: {source}")]
    Database {
        backend: &'static str,
        operation: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("store ({backend}): migrations failed: {source}")]
    Migrate {
        backend: &'static str,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("store: unsupported URL «{0}»: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("store: {0}")]
    Invalid(String),
    /// The disk holding the store is full (the text names the file and what to do).
    #[error("store: {0}")]
    DiskFull(String),
    /// Another process holds the lease (see [`LeaseInfo`]'s text for what to do).
    #[error("{0}")]
    LeaseHeld(LeaseInfo),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Identifier of a sync run.
pub type RunId = i64;

/// What the store knows of one record, enough to diff against a fresh read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub kind: EntityKind,
    /// `Entity::natural_key()` of the stored content (a `natural_key` column): the engine
    /// compares it with the new content's to tell a key change from an update.
    pub natural_key: String,
    pub content_hash: [u8; 32],
    /// Set when the record is a tombstone (deleted at the source).
    pub deleted: bool,
}

/// The operation a change-log row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Insert,
    Update,
    /// An update that changed the record's business key (`Entity::natural_key`).
    KeyChange,
    /// The record was deleted at the source: it stays as a tombstone.
    Delete,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Insert => "insert",
            ChangeOp::Update => "update",
            ChangeOp::KeyChange => "key_change",
            ChangeOp::Delete => "delete",
        }
    }
    pub fn parse(s: &str) -> Option<ChangeOp> {
        [ChangeOp::Insert, ChangeOp::Update, ChangeOp::KeyChange, ChangeOp::Delete]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// A record to insert or update (a tombstone brought back to life is an insert).
#[derive(Debug, Clone)]
pub struct Upsert {
    pub op: ChangeOp,
    pub id: Uuid,
    pub kind: EntityKind,
    pub source_id: String,
    pub scope: String,
    pub date: Option<NaiveDate>,
    pub source_updated_at: Option<chrono::NaiveDateTime>,
    /// `Entity::content_json()`
    pub content: Vec<u8>,
    pub content_hash: [u8; 32],
    /// `Entity::natural_key()` of the new content; stored in the `natural_key` column.
    pub natural_key: String,
}

/// What one batch changes. Applied in one transaction by [`Store::apply`].
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    pub upserts: Vec<Upsert>,
    /// Records to turn into tombstones (their before-content goes to the change log).
    pub deletes: Vec<(Uuid, EntityKind)>,
    /// Records seen again unchanged: only `last_seen` moves (no change-log row).
    pub seen: Vec<Uuid>,
}

impl ChangeSet {
    pub fn change_count(&self) -> usize {
        self.upserts.len() + self.deletes.len()
    }
}

/// A cursor to commit with a batch.
#[derive(Debug, Clone)]
pub struct CursorUpdate {
    pub stream: String,
    pub scope: String,
    pub value: String,
}

/// Outcome of a sync run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// The process died while the run was going; found and closed by a later start.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
    pub fn parse(s: &str) -> Option<RunStatus> {
        [RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed, RunStatus::Interrupted]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// What kind of failure ended a run: what a person (or the daemon) should do about it.
/// The source kinds are the SDK's [`ejgate_sdk::client::ErrorKind`]; the engine adds
/// `store` and `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunErrorKind {
    /// The source refused the credentials.
    Unauthorized,
    /// The source's request limit, still hit after the retries.
    RateLimited,
    /// The source answered with server errors (5xx, HTML error pages).
    Server,
    /// The source refused our request (another 4xx).
    Client,
    /// The source's answer has a shape we do not read (or too many of its records could not
    /// be read).
    Malformed,
    /// The connection broke or the answer was cut off.
    Transport,
    /// The source did not answer in time.
    Timeout,
    /// The configuration is wrong (URL, certificate, secret, a year the source does not serve).
    Config,
    /// The store failed (disk, database server).
    Store,
    /// A fault of ejgate itself: a connector panicked, or fetching ended with chunks missing.
    Internal,
    /// The run would delete more of a kind than `max_delete_percent` (`sync::DeleteLimit`).
    Deletes,
    /// SIGINT or SIGTERM stopped the run (it is `interrupted`, not failed).
    Stopped,
}

impl RunErrorKind {
    pub const ALL: [RunErrorKind; 12] = [
        RunErrorKind::Unauthorized,
        RunErrorKind::RateLimited,
        RunErrorKind::Server,
        RunErrorKind::Client,
        RunErrorKind::Malformed,
        RunErrorKind::Transport,
        RunErrorKind::Timeout,
        RunErrorKind::Config,
        RunErrorKind::Store,
        RunErrorKind::Internal,
        RunErrorKind::Deletes,
        RunErrorKind::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunErrorKind::Unauthorized => "unauthorized",
            RunErrorKind::RateLimited => "rate_limited",
            RunErrorKind::Server => "server",
            RunErrorKind::Client => "client",
            RunErrorKind::Malformed => "malformed",
            RunErrorKind::Transport => "transport",
            RunErrorKind::Timeout => "timeout",
            RunErrorKind::Config => "config",
            RunErrorKind::Store => "store",
            RunErrorKind::Internal => "internal",
            RunErrorKind::Deletes => "deletes",
            RunErrorKind::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<RunErrorKind> {
        RunErrorKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What to do, in plain words, for a person reading `ejgate status`.
    pub fn what_to_do(self) -> &'static str {
        match self {
            RunErrorKind::Unauthorized => {
                "renew the token: sign in to the source again, put the new token where the configuration names it, run the sync again"
            }
            RunErrorKind::RateLimited => {
                "wait for the source's request limit to reset and run again; if it keeps happening, lower requests_per_second"
            }
            RunErrorKind::Server | RunErrorKind::Transport | RunErrorKind::Timeout => {
                "the source is down or unreachable: nothing is needed from you, retry later (the next run picks up where this one stopped)"
            }
            RunErrorKind::Client => {
                "the source refused a request ejgate made: check base_url and the token's access, and report it if it persists"
            }
            RunErrorKind::Malformed => {
                "the source answered in a shape ejgate does not read: report it to ejgate's maintainers with this error"
            }
            RunErrorKind::Config => "fix the configuration as the error says, then run again",
            RunErrorKind::Store => "the store failed: check the disk or the database server, then run again",
            RunErrorKind::Internal => {
                "a fault in ejgate: report it to ejgate's maintainers with this error; the next run may succeed"
            }
            RunErrorKind::Deletes => {
                "check the source (an export cut short, an empty file); if the records are really gone, run `ejgate sync --allow-deletes`"
            }
            RunErrorKind::Stopped => "nothing: the next run goes on from what this one wrote",
        }
    }
}

impl From<ejgate_sdk::client::ErrorKind> for RunErrorKind {
    fn from(kind: ejgate_sdk::client::ErrorKind) -> RunErrorKind {
        use ejgate_sdk::client::ErrorKind as K;
        match kind {
            K::Unauthorized => RunErrorKind::Unauthorized,
            K::RateLimited => RunErrorKind::RateLimited,
            K::Server => RunErrorKind::Server,
            K::Client => RunErrorKind::Client,
            K::Malformed => RunErrorKind::Malformed,
            K::Transport => RunErrorKind::Transport,
            K::Timeout => RunErrorKind::Timeout,
            K::Config => RunErrorKind::Config,
        }
    }
}

impl std::fmt::Display for RunErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a run failed: the text a person reads, and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub kind: RunErrorKind,
    pub message: String,
}

impl RunError {
    pub fn new(kind: RunErrorKind, message: impl Into<String>) -> RunError {
        RunError { kind, message: message.into() }
    }
}

impl From<ejgate_sdk::client::SourceError> for RunError {
    fn from(e: ejgate_sdk::client::SourceError) -> RunError {
        RunError { kind: e.kind.into(), message: e.to_string() }
    }
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> RunError {
        RunError { kind: RunErrorKind::Store, message: e.to_string() }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Statistics of a run, kept with it as JSON. Fields missing from an older row read as
/// their default, so fields can be added without a migration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunStats {
    pub chunks: u64,
    pub requests: u64,
    pub records_read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Distinct warnings, at most 200 (the first ones); the skipped records are among them.
    pub warnings: Vec<String>,
    /// Source records that could not be read and were left out (exact, even when their
    /// warnings passed the cap).
    pub skipped: u64,
    /// The same, per stream (streams with none left out).
    pub skipped_by_stream: BTreeMap<String, u64>,
    /// Answers of the source that said its request limit was reached (429 and the
    /// systems' own limit bodies).
    pub rate_limited: u64,
    /// Requests that waited for the request limit before they were sent, and how long
    /// they waited in all (milliseconds).
    pub limit_waits: u64,
    pub limit_wait_ms: u64,
    /// The requests the run planned before it fetched (planning's own and the chunks'
    /// estimates, `Connector::estimate_requests`), after fitting the plan into
    /// `max_requests`.
    pub planned_requests: u64,
    /// Chunks the plan left for a later run to stay within `max_requests`.
    pub deferred_chunks: u64,
}

/// One sync run as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRun {
    pub id: RunId,
    pub source: String,
    pub mode: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    pub error: Option<String>,
    /// The kind of `error` (what to do about it); `None` for runs without an error, and
    /// for failed runs recorded before kinds were kept.
    pub error_kind: Option<RunErrorKind>,
    pub stats: RunStats,
}

/// A login reported compromised (M19): operations under it from `at` on are invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompromisedLogin {
    /// The source's person id or the person's full name (the sources model no logins).
    pub login: String,
    pub at: DateTime<Utc>,
    pub reported_at: DateTime<Utc>,
}

/// One change-log row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRow {
    pub seq: i64,
    pub run_id: RunId,
    pub at: DateTime<Utc>,
    pub kind: EntityKind,
    pub id: Uuid,
    pub source: String,
    pub source_id: String,
    pub op: ChangeOp,
    /// JSON content before the change (`None` for inserts, including an insert that brings
    /// a tombstone back: the tombstone's content is the `before` of its `delete` row)
    pub before: Option<serde_json::Value>,
    /// JSON content after the change (`None` for deletes)
    pub after: Option<serde_json::Value>,
}

/// Live and tombstoned records of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    pub kind: EntityKind,
    pub live: u64,
    pub tombstones: u64,
}

/// A monitoring finding as the store keeps it (нарушение).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFinding {
    pub key: String,
    pub rule: String,
    pub clause: String,
    /// low, medium, high
    pub severity: String,
    pub teacher: Option<String>,
    pub class: Option<String>,
    pub subject: Option<String>,
    pub date: Option<NaiveDate>,
    pub lesson: Option<Uuid>,
    pub mark: Option<Uuid>,
    pub what: String,
    pub evidence: String,
    pub first_detected: DateTime<Utc>,
    pub last_detected: DateTime<Utc>,
    pub fixed_at: Option<DateTime<Utc>>,
}

/// A current record as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub id: Uuid,
    pub kind: EntityKind,
    pub source: String,
    pub source_id: String,
    pub scope: String,
    pub date: Option<NaiveDate>,
    pub content: serde_json::Value,
    pub deleted: bool,
}

/// One live record as [`Store::visit_records`] hands it over: the content is the stored
/// JSON text itself (borrowed from the database's row), never a `serde_json::Value`, so the
/// reader parses it straight into the few fields it uses.
#[derive(Debug, Clone, Copy)]
pub struct ContentRow<'a> {
    pub id: Uuid,
    /// For the reader's error messages.
    pub source_id: &'a str,
    /// The content's JSON text (PostgreSQL: the text of the JSONB value).
    pub content: &'a str,
    /// When the store first saw the record (the write time of the sync batch that brought
    /// it); `None` unless asked for.
    pub first_seen: Option<DateTime<Utc>>,
}

/// The reader of [`Store::visit_records`]: called once per record; `Break` ends the read.
pub type RecordVisitor<'v> = &'v mut (dyn FnMut(ContentRow<'_>) -> std::ops::ControlFlow<()> + Send);

/// One live record's row as the store holds it, lent to the callback of
/// [`Store::each_raw_record`] for the time of the call: the content is the stored JSON text,
/// never parsed (the year-end bag writes it as it is, `archive`).
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub id: Uuid,
    pub source: &'a str,
    pub source_id: &'a str,
    pub scope: &'a str,
    /// `YYYY-MM-DD`.
    pub date: Option<&'a str>,
    /// The content's JSON text: SQLite keeps the bytes the sync wrote (the entity's fields
    /// in declaration order, compact); PostgreSQL gives its JSONB as text (`{"a": 1, …}`,
    /// keys ordered by length, then bytes). The same value either way.
    pub content: &'a str,
}

/// The callback of [`Store::each_raw_record`]: called once per record; `Break` ends the read.
pub type RawRecordVisitor<'v> = &'v mut (dyn for<'r> FnMut(RawRecord<'r>) -> std::ops::ControlFlow<()> + Send);

/// A lease as the store keeps it: one holder at a time for a named piece of work
/// (`source:<name>` for a source's syncs and imports; the daemon's jobs use the same
/// table). The holder renews it while it works; a process that died stops renewing, and
/// once `expires_at` has passed another one may take it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    pub name: String,
    /// Proves the holding: renewing and releasing need it. Not a secret (it guards
    /// against mistakes, not attacks), but never shown.
    #[serde(skip)]
    pub token: Uuid,
    /// The holder's host name and process id.
    pub host: String,
    pub pid: u32,
    pub acquired_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Display for LeaseInfo {
    /// The refusal a second writer sees: who holds the lease, since when, and what to do.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "«{}» is held by another ejgate process: pid {} on host «{}», since {} (last renewed {}); \
             only one process may write a source at a time. Wait for that one to finish; if it is \
             gone (killed, the machine lost), its lease expires at {} and the next run takes over",
            self.name,
            self.pid,
            self.host,
            self.acquired_at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.renewed_at.format("%H:%M:%S UTC"),
            self.expires_at.format("%Y-%m-%d %H:%M:%S UTC"),
        )
    }
}

/// The outcome of [`Store::acquire_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The caller holds the lease now; `took_over` is the expired (or given-up) holding it
    /// replaced, if there was one.
    Acquired { lease: LeaseInfo, took_over: Option<LeaseInfo> },
    /// Someone else holds it.
    Held(LeaseInfo),
}

/// Who asks for a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest<'a> {
    pub name: &'a str,
    pub host: &'a str,
    pub pid: u32,
    /// How long the lease lasts without a renewal.
    pub ttl: std::time::Duration,
    /// Take the lease over from this holding even if it has not expired (the caller found
    /// its process gone, for example a process of this host that no longer runs).
    pub replace: Option<Uuid>,
}

/// Milliseconds of a lease's time to live, as the backends store it.
pub(crate) fn ttl_millis(ttl: std::time::Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

/// What was done with the backups (a row of the backup-usage log, A9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupAction {
    Backup,
    Verify,
    Pull,
    Restore,
    /// A backup deleted by the retention rules of a target.
    Prune,
}

impl BackupAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupAction::Backup => "backup",
            BackupAction::Verify => "verify",
            BackupAction::Pull => "pull",
            BackupAction::Restore => "restore",
            BackupAction::Prune => "prune",
        }
    }
    pub fn parse(s: &str) -> Option<BackupAction> {
        [BackupAction::Backup, BackupAction::Verify, BackupAction::Pull, BackupAction::Restore, BackupAction::Prune]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

/// How a use of the backups ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupOutcome {
    Ok,
    /// Done, but not everywhere (a backup target was down).
    Degraded,
    Failed,
}

impl BackupOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupOutcome::Ok => "ok",
            BackupOutcome::Degraded => "degraded",
            BackupOutcome::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<BackupOutcome> {
        [BackupOutcome::Ok, BackupOutcome::Degraded, BackupOutcome::Failed].into_iter().find(|o| o.as_str() == s)
    }
    /// An outcome read back from the store (both backends): an unknown word is named.
    pub(crate) fn from_store(s: &str) -> StoreResult<BackupOutcome> {
        Self::parse(s).ok_or_else(|| StoreError::Invalid(format!("unknown backup outcome «{s}» in the store")))
    }
}

/// Использование резервной копии: one row of the backup-usage log (REGULATIONS A9): who
/// did what with which backup, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupUse {
    pub at: DateTime<Utc>,
    pub action: BackupAction,
    pub backup_id: Option<String>,
    /// The OS user, or the name given with `--who`.
    pub who: String,
    pub why: Option<String>,
    pub outcome: BackupOutcome,
    /// What was done where (targets written, problems found); never a secret.
    pub detail: String,
}

/// Запись реестра бумажных копий (REGULATIONS A4, R4): one printed and signed copy, numbered
/// per school.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaperCopy {
    pub school: String,
    /// Номер по реестру, per school from 1; given by the store when the copy is added.
    pub number: u32,
    pub class: String,
    /// «2025/2026»
    pub school_year: String,
    /// What the copy is: «копия журнала, 1 четверть», «книга за год», «сводная ведомость».
    pub title: String,
    /// Листов
    pub sheets: u32,
    /// Кем подписана (заверена)
    pub signed_by: Option<String>,
    /// Место хранения
    pub kept_at: Option<String>,
    /// Передана секретарю (R4): the day, and to whom.
    pub handed_on: Option<chrono::NaiveDate>,
    pub handed_to: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: String,
}

/// A change of a register entry: each field that is `Some` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaperCopyChange {
    pub sheets: Option<u32>,
    pub signed_by: Option<String>,
    pub kept_at: Option<String>,
    pub handed_on: Option<chrono::NaiveDate>,
    pub handed_to: Option<String>,
}

/// Место хранения копий: what the newest backup run did on one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupTargetState {
    pub target: String,
    pub last_attempt_at: DateTime<Utc>,
    /// When a run last wrote it and read it back (`None`: never).
    pub last_success_at: Option<DateTime<Utc>>,
    /// Why the last try failed (`None`: it wrote it).
    pub last_error: Option<String>,
    pub last_backup_id: String,
}

/// What a store holds, table by table, and what its own consistency check finds: the
/// figures a backup's manifest keeps and a restore is checked against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspection {
    /// Rows per table (the migrations' own bookkeeping left out).
    pub tables: BTreeMap<String, u64>,
    /// The newest migration applied.
    pub schema_version: i64,
    /// Problems found: a change-log row whose record or run is missing, a record without
    /// its change-log rows, a cursor written outside every run of its source. Empty when
    /// the store is consistent.
    pub problems: Vec<String>,
}

/// The store's own consistency checks (SQL both backends run): each query lists problems
/// as text, at most 20 rows each.
pub(crate) const CONSISTENCY_CHECKS: [&str; 4] = [
    // Records are never deleted (tombstones stay): every change row's record is there.
    "SELECT 'change-log row ' || c.seq || ' (' || c.kind || ' ' || c.source_id || ' of ' || c.source || \
     ') has no record' FROM changes c WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = c.id) \
     ORDER BY c.seq LIMIT 20",
    "SELECT 'change-log row ' || c.seq || ' names run ' || c.run_id || ', which the store does not hold' \
     FROM changes c WHERE NOT EXISTS (SELECT 1 FROM sync_runs s WHERE s.id = c.run_id) ORDER BY c.seq LIMIT 20",
    // Every record came in through an upsert, which writes its change row first.
    "SELECT 'record ' || r.kind || ' ' || r.source_id || ' of ' || r.source || ' has no change-log row' \
     FROM records r WHERE r.id NOT IN (SELECT id FROM changes) ORDER BY r.source, r.kind, r.source_id LIMIT 20",
    // A cursor commits with its batch, inside a run of its source: one written outside
    // every run is ahead of the data the store holds.
    "SELECT 'cursor ' || c.source || '/' || c.stream || '/' || c.scope || ' was written at ' || c.updated_at || \
     ', outside every run of its source' FROM cursors c WHERE NOT EXISTS (SELECT 1 FROM sync_runs s \
     WHERE s.source = c.source AND s.started_at <= c.updated_at \
     AND (s.finished_at IS NULL OR s.finished_at >= c.updated_at)) ORDER BY 1 LIMIT 20",
];

/// The store, as the rest of ejgate sees it: operations on data, not SQL. The daemon's job
/// runs are its part [`JobStore`].
#[async_trait]
pub trait Store: JobStore + Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Another handle on the same store (shares its pools), for tasks of their own such as
    /// a lease's heartbeat.
    fn shared(&self) -> std::sync::Arc<dyn Store>;

    /// Takes the lease `request.name` if nobody holds it, its holding has expired, or it is
    /// the holding `request.replace` names; otherwise tells who holds it. Atomic: of two
    /// callers at once, one gets it.
    async fn acquire_lease(&self, request: &LeaseRequest<'_>) -> StoreResult<LeaseOutcome>;

    /// Moves the lease's expiry to now + `ttl`. `false` when the caller no longer holds it
    /// (it expired and was taken over).
    async fn renew_lease(&self, name: &str, token: Uuid, ttl: std::time::Duration) -> StoreResult<bool>;

    /// Gives the lease up (nothing happens if the caller no longer holds it).
    async fn release_lease(&self, name: &str, token: Uuid) -> StoreResult<()>;

    /// Every lease held or left behind (expired ones included), by name.
    async fn leases(&self) -> StoreResult<Vec<LeaseInfo>>;

    /// Open a run in state `running`. Runs of this source still `running` from a process
    /// that died are closed as `interrupted` first: the caller holds the source's lease
    /// (see [`crate::lease`]), so no other process is writing the source, and a `running`
    /// run of it is one whose process stopped.
    async fn begin_run(&self, source: &str, mode: &str) -> StoreResult<RunId>;

    /// Close a run with its outcome, the error that ended it (its text and kind) and its
    /// statistics.
    async fn finish_run(
        &self,
        run: RunId,
        status: RunStatus,
        error: Option<&RunError>,
        stats: &RunStats,
    ) -> StoreResult<()>;

    /// The newest runs first.
    async fn runs(&self, limit: u32) -> StoreResult<Vec<SyncRun>>;

    /// All committed cursors of a source: (stream, scope) → value.
    async fn cursors(&self, source: &str) -> StoreResult<HashMap<(String, String), String>>;

    /// What the store has of a source's records: those with the given ids, and every record
    /// (live or tombstone) inside the coverages (kind ∈ kinds, scope equal, date inside the
    /// range when one is given). One query per call, not one per record.
    async fn existing(
        &self,
        source: &str,
        ids: &[Uuid],
        coverages: &[(Vec<EntityKind>, String, Option<DateRange>)],
    ) -> StoreResult<HashMap<Uuid, Existing>>;

    /// Whether the store holds any record (live or tombstone) of the source.
    async fn holds_source(&self, source: &str) -> StoreResult<bool>;

    /// Apply one batch in one transaction: upserts, tombstones, change-log rows (before =
    /// the stored content, after = the new content), `last_seen` of unchanged records, and
    /// the cursor. Either all of it commits or none.
    ///
    /// In detail, in this order:
    /// - every upsert writes one change row (in the order of `changes.upserts`) and then
    ///   the record: `first_seen` is kept, `last_seen` set, `deleted_at` cleared. An
    ///   [`ChangeOp::Insert`] logs `before = None` without looking at the stored row (so a
    ///   tombstone brought back logs `None`: the deleted content is in the `delete` row);
    ///   [`ChangeOp::Update`] and [`ChangeOp::KeyChange`] log the stored content.
    /// - every delete of a live record writes a `delete` row (before = stored content) and
    ///   turns the record into a tombstone; a delete of a record that is already a
    ///   tombstone does nothing; a delete of a record this source does not have fails the
    ///   whole batch ([`StoreError::Invalid`]).
    /// - `seen` records get `last_seen`; unknown ids are ignored.
    /// - the cursors are stored (several chunks may commit together, each with its cursor).
    ///
    /// The batch is refused before anything is written ([`StoreError::Invalid`]) when an id
    /// appears twice among upserts and deletes, an upsert has the op `delete`, or a content
    /// is not UTF-8. A content that is not JSON fails in the database and rolls back.
    async fn apply(&self, run: RunId, source: &str, changes: &ChangeSet, cursors: &[CursorUpdate]) -> StoreResult<()>;

    /// Live and tombstone counts per kind (kinds with no records are left out).
    async fn counts(&self, source: Option<&str>) -> StoreResult<Vec<KindCount>>;

    /// Live records per kind, kinds without live records left out: the form the ground
    /// truth of a synthetic school is given in.
    async fn live_counts(&self, source: Option<&str>) -> StoreResult<BTreeMap<EntityKind, u64>> {
        Ok(self.counts(source).await?.into_iter().filter(|c| c.live > 0).map(|c| (c.kind, c.live)).collect())
    }

    /// Change-log rows with `seq > after_seq`, oldest first, at most `limit`.
    async fn changes_since(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<ChangeRow>>;

    /// The change-log rows written by one run, oldest first.
    async fn changes_of_run(&self, run: RunId) -> StoreResult<Vec<ChangeRow>>;

    /// The change-log rows of one source and kind that are not inserts (updates, key
    /// changes, deletes), oldest first: monitoring's evidence of corrected and deleted
    /// records (M7–M9). One query, on a partial index of those rows.
    async fn edits(&self, source: &str, kind: EntityKind) -> StoreResult<Vec<ChangeRow>>;

    /// Current records of a kind (tombstones included when asked), ordered by source id.
    async fn records(
        &self,
        kind: EntityKind,
        source: Option<&str>,
        include_deleted: bool,
    ) -> StoreResult<Vec<StoredRecord>>;

    /// Hands every live record of one kind from one source to `visit`, one row at a time and
    /// in no set order, with the time the store first saw it when `first_seen` is set:
    /// monitoring's read of a year of marks. One query; no row is collected and no content
    /// is parsed by the store, so a reader that needs a few fields of each record pays for
    /// one parse of the text into those fields (where [`Store::records`] builds a
    /// `serde_json::Value` of every content, and [`Store::first_seen`] is a second query
    /// and a map).
    async fn visit_records(
        &self,
        kind: EntityKind,
        source: &str,
        first_seen: bool,
        visit: RecordVisitor<'_>,
    ) -> StoreResult<()>;

    /// The live records of a kind from one source, in the order of [`Store::records`]
    /// (by source id), streamed one row at a time to `each` without parsing the content:
    /// the year-end bag's read path (`archive::snapshot`), in memory one row whatever the
    /// size of the school. `dated_within`: only records dated inside the range (inclusive)
    /// and the undated ones. `each` may block for a while (it writes the bag); it stops the
    /// read by returning `Break`. The count of rows handed to `each`.
    async fn each_raw_record(
        &self,
        kind: EntityKind,
        source: &str,
        dated_within: Option<(NaiveDate, NaiveDate)>,
        each: RawRecordVisitor<'_>,
    ) -> StoreResult<u64>;

    /// Сводные показатели журнала: for each school of `requests`, the people, lessons, topics,
    /// homework, marks (and how many were entered by the deadline), student-subject pairs,
    /// guardians reading and findings that the district's rollout report (P10) shows,
    /// counted by the database over live records in one statement for all the schools
    /// (no record is read out). One [`SchoolAggregates`] per request, in its order.
    async fn journal_aggregates(&self, requests: &[AggregateRequest]) -> StoreResult<Vec<SchoolAggregates>>;

    /// When the store first saw each current record of a kind from a source (the write time
    /// of the sync batch that brought it): monitoring's evidence of when something was
    /// entered, where the source does not say. One query per kind.
    async fn first_seen(&self, kind: EntityKind, source: &str) -> StoreResult<HashMap<Uuid, DateTime<Utc>>>;

    /// Every stored finding of a school, fixed ones included, by key.
    async fn findings(&self, school: &str) -> StoreResult<Vec<StoredFinding>>;

    /// Writes findings (inserted or replaced by key) and marks others fixed, in one
    /// transaction.
    async fn write_findings(
        &self,
        school: &str,
        upserts: &[StoredFinding],
        fixed: &[(String, DateTime<Utc>)],
    ) -> StoreResult<()>;

    /// Records a login reported compromised at `at` (M19); the same report again changes nothing.
    async fn report_compromised(
        &self,
        school: &str,
        login: &str,
        at: DateTime<Utc>,
        reported_at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// The school's compromised-login reports, oldest first.
    async fn compromised(&self, school: &str) -> StoreResult<Vec<CompromisedLogin>>;

    /// Rows per table, the schema version and the store's own consistency check.
    async fn inspect(&self) -> StoreResult<Inspection>;

    /// Writes a consistent copy of the whole store into a new file at `path`, while syncs
    /// may be writing, and inspects that copy (SQLite: `VACUUM INTO`, a snapshot of one read
    /// transaction, a database file; PostgreSQL: an export of one `REPEATABLE READ`
    /// transaction, [`postgres::export`]).
    async fn snapshot_into(&self, path: &std::path::Path) -> StoreResult<Inspection>;

    /// Appends a row to the backup-usage log.
    async fn log_backup_use(&self, entry: &BackupUse) -> StoreResult<()>;

    /// The backup-usage log, newest first.
    async fn backup_uses(&self, limit: u32) -> StoreResult<Vec<BackupUse>>;

    /// Records what a backup run did on each target: `(target, None)` written, `(target,
    /// Some(error))` not; a target's last success stays when it was not written.
    async fn record_backup_targets(
        &self,
        at: DateTime<Utc>,
        backup_id: &str,
        targets: &[(String, Option<String>)],
    ) -> StoreResult<()>;

    /// Every target a backup run has tried, by name.
    async fn backup_targets(&self) -> StoreResult<Vec<BackupTargetState>>;

    /// Backup runs by outcome, from the backup-usage log.
    async fn backup_run_totals(&self) -> StoreResult<Vec<(BackupOutcome, u64)>>;

    /// Enters a paper copy in the register under the school's next number (the `number`
    /// given is ignored) and returns that number.
    async fn add_paper_copy(&self, copy: &PaperCopy) -> StoreResult<u32>;

    /// Changes an entry of the register; `false` when the school has no entry of that number.
    async fn set_paper_copy(&self, school: &str, number: u32, change: &PaperCopyChange) -> StoreResult<bool>;

    /// The register of one school (or of all), by school and number.
    async fn paper_copies(&self, school: Option<&str>) -> StoreResult<Vec<PaperCopy>>;
    // ---- what the daemon reads and keeps besides the data: health, metrics, API tokens ----

    /// One cheap query: the store answers and its tables are there (`/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// The runs added up per (source, mode, status).
    async fn run_totals(&self) -> StoreResult<Vec<RunTotals>>;

    /// The newest finished run (not `running`) of each source, by source.
    async fn last_finished_runs(&self) -> StoreResult<Vec<SyncRun>>;

    /// How many times each lease was taken over from a holder that stopped renewing it (or
    /// whose process was gone), by lease name; [`Store::acquire_lease`] records each one.
    async fn lease_takeovers(&self) -> StoreResult<Vec<(String, u64)>>;

    /// Keeps a new API token's hash under `name`. Refused ([`StoreError::Invalid`]) when a
    /// token of that name is in force; a revoked one of that name is replaced.
    async fn create_api_token(&self, name: &str, hash: &[u8; 32]) -> StoreResult<()>;

    /// Revokes the token `name`; `false` when there is none in force by that name.
    async fn revoke_api_token(&self, name: &str) -> StoreResult<bool>;

    /// Every token, revoked ones included, by name.
    async fn api_tokens(&self) -> StoreResult<Vec<ApiToken>>;

    /// The token in force whose hash this is.
    async fn api_token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<ApiToken>>;
}

/// The runs of one (source, mode, status), added up: what `/metrics` exports, read from the
/// runs table at every scrape so that the numbers are the store's, the same from every
/// worker and across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunTotals {
    pub source: String,
    pub mode: String,
    pub status: RunStatus,
    pub runs: u64,
    /// Sums of the runs' [`RunStats`].
    pub requests: u64,
    pub records_read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub rate_limited: u64,
    pub limit_waits: u64,
    pub limit_wait_ms: u64,
    /// When the newest of these runs finished.
    pub last_finished_at: Option<DateTime<Utc>>,
}

/// A bearer token of the JSON API as the store keeps it: its name and dates; the token
/// itself is never stored, only its BLAKE3 hash (`daemon::tokens`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Set once the token is revoked: it no longer opens the API.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The current time as the store keeps it: UTC, whole microseconds (PostgreSQL's
/// precision), so that a value written and read back compares equal on both backends.
pub fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    let micros = now.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(now)
}

/// Checks what [`Store::apply`] refuses before it writes anything (shared by the backends).
pub(crate) fn check_change_set(changes: &ChangeSet) -> StoreResult<()> {
    let mut ids = std::collections::HashSet::with_capacity(changes.change_count());
    for u in &changes.upserts {
        if u.op == ChangeOp::Delete {
            return Err(StoreError::Invalid(format!(
                "upsert of {} {} ({}) has the op «delete»: put it in `deletes`",
                u.kind, u.source_id, u.id
            )));
        }
        if std::str::from_utf8(&u.content).is_err() {
            return Err(StoreError::Invalid(format!(
                "content of {} {} ({}) is not UTF-8 JSON",
                u.kind, u.source_id, u.id
            )));
        }
        if !ids.insert(u.id) {
            return Err(StoreError::Invalid(format!(
                "record {} ({} {}) appears twice in one batch",
                u.id, u.kind, u.source_id
            )));
        }
    }
    for (id, kind) in &changes.deletes {
        if !ids.insert(*id) {
            return Err(StoreError::Invalid(format!("record {id} ({kind}) appears twice in one batch")));
        }
    }
    Ok(())
}

/// Opens the store a URL names: `sqlite://PATH` (created if missing, WAL) or
/// `postgres://…`. Runs the backend's migrations.
pub async fn open(url: &str) -> StoreResult<Box<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Box::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Box::new(PostgresStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}

/// Test support: a fresh SQLite store and records written into it as one run.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use ejgate_sdk::model::Record;

    pub async fn sqlite(dir: &std::path::Path) -> SqliteStore {
        SqliteStore::open(&format!("sqlite://{}", dir.join("ejgate.db").display())).await.unwrap()
    }

    /// Writes new records of `source` as one full run.
    pub async fn put(store: &dyn Store, source: &str, records: Vec<Record>) {
        let run = store.begin_run(source, "full").await.unwrap();
        let changes =
            ChangeSet { upserts: records.into_iter().map(crate::sync::canonical).collect(), ..Default::default() };
        store.apply(run, source, &changes, &[]).await.unwrap();
    }
}
