//! The store scenarios, run against both backends (atuin's `db_story.rs` pattern): every
//! scenario in `scenarios` is one test under `sqlite::` and one under `postgres::`.
//!
//! - SQLite: a fresh file in a temporary directory per test.
//! - PostgreSQL: the server at `EJGATE_TEST_PG_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/test`), each test in its own fresh schema
//!   (`ejgate_t_…`, selected with `options=-c search_path=…`, dropped at the end), so tests
//!   run in parallel. An unreachable server FAILS the PostgreSQL tests: CI starts one.

mod common;

use common::PgSchema;

use std::time::Duration;

use chrono::NaiveDate;
use serde_json::{json, Value};
use sqlx::Connection;
use tempfile::TempDir;
use uuid::Uuid;

use ejgate::store::{
    self, BackupAction, BackupOutcome, BackupUse, ChangeOp, ChangeRow, ChangeSet, CursorUpdate, JobClaim, JobEnd,
    JobRunStatus, JobTrigger, KindCount, LeaseOutcome, LeaseRequest, NewJobRun, PaperCopy, PaperCopyChange, RunError,
    RunErrorKind, RunStats, RunStatus, Store, StoreError, Upsert,
};
use ejgate_sdk::model::{DateRange, EntityKind, IdSpace};

const SRC: &str = "dnevnik-1";
const OTHER: &str = "epos-1";

// ---- environment -------------------------------------------------------------------------

/// One test's database: where it is, and how to look under the trait.
pub struct Env {
    url: String,
    kind: EnvKind,
}

enum EnvKind {
    Sqlite { _dir: TempDir },
    Postgres { _schema: PgSchema },
}

impl Env {
    pub async fn sqlite() -> Env {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        Env { url, kind: EnvKind::Sqlite { _dir: dir } }
    }

    pub async fn postgres() -> Env {
        let schema = PgSchema::create("ejgate_t").await;
        Env { url: schema.url.clone(), kind: EnvKind::Postgres { _schema: schema } }
    }

    pub async fn open(&self) -> Box<dyn Store> {
        store::open(&self.url).await.unwrap_or_else(|e| panic!("open {}: {e}", self.url))
    }

    /// Runs a statement under the trait (to break the store on purpose).
    pub async fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match &self.kind {
            EnvKind::Sqlite { .. } => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
            EnvKind::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
    }

    /// `last_seen` of a record as the database keeps it (not part of the trait).
    pub async fn last_seen(&self, id: Uuid) -> String {
        match &self.kind {
            EnvKind::Sqlite { .. } => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar("SELECT last_seen FROM records WHERE id = ?1")
                    .bind(id)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
            EnvKind::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar("SELECT last_seen::text FROM records WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
        }
    }
}

// ---- test data -----------------------------------------------------------------------------

fn id_of(source: &str, kind: EntityKind, source_id: &str) -> Uuid {
    IdSpace::new(source).id(kind, source_id)
}

fn date(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

/// An upsert of `source`'s record; the natural key is taken from the content's `key`.
fn upsert(
    source: &str,
    op: ChangeOp,
    kind: EntityKind,
    source_id: &str,
    scope: &str,
    day: Option<&str>,
    content: Value,
) -> Upsert {
    let bytes = serde_json::to_vec(&content).unwrap();
    Upsert {
        op,
        id: id_of(source, kind, source_id),
        kind,
        source_id: source_id.into(),
        scope: scope.into(),
        date: day.map(date),
        source_updated_at: None,
        content_hash: *blake3::hash(&bytes).as_bytes(),
        natural_key: content.get("key").and_then(Value::as_str).unwrap_or(source_id).to_string(),
        content: bytes,
    }
}

/// A mark of SRC in `group:1` on 2025-09-10.
fn mark(op: ChangeOp, source_id: &str, value: &str) -> Upsert {
    upsert(
        SRC,
        op,
        EntityKind::Mark,
        source_id,
        "group:1",
        Some("2025-09-10"),
        json!({"key": format!("student-{source_id}"), "value": value, "note": "«4+» ёж"}),
    )
}

fn content_of(u: &Upsert) -> Value {
    serde_json::from_slice(&u.content).unwrap()
}

fn inserts(upserts: Vec<Upsert>) -> ChangeSet {
    ChangeSet { upserts, ..Default::default() }
}

fn cursor(value: &str) -> CursorUpdate {
    CursorUpdate { stream: "marks".into(), scope: "group:1".into(), value: value.into() }
}

async fn all_changes(store: &dyn Store) -> Vec<ChangeRow> {
    store.changes_since(0, u32::MAX).await.unwrap()
}

async fn last_seq(store: &dyn Store) -> i64 {
    all_changes(store).await.last().map(|c| c.seq).unwrap_or(0)
}

fn count(kind: EntityKind, live: u64, tombstones: u64) -> KindCount {
    KindCount { kind, live, tombstones }
}

/// A connector whose fetches wait until the test opens the gate; `started` is notified
/// when the first fetch is asked for.
struct Gate {
    inner: std::sync::Arc<dyn ejgate_sdk::connector::Connector>,
    started: tokio::sync::Notify,
    open: tokio::sync::Semaphore,
}

impl Gate {
    fn new(inner: std::sync::Arc<dyn ejgate_sdk::connector::Connector>) -> std::sync::Arc<Gate> {
        std::sync::Arc::new(Gate { inner, started: tokio::sync::Notify::new(), open: tokio::sync::Semaphore::new(0) })
    }
}

#[async_trait::async_trait]
impl ejgate_sdk::connector::Connector for Gate {
    fn instance(&self) -> &str {
        self.inner.instance()
    }
    fn system(&self) -> &'static str {
        self.inner.system()
    }
    async fn plan(
        &self,
        ctx: &ejgate_sdk::connector::PlanContext,
    ) -> Result<ejgate_sdk::connector::Plan, ejgate_sdk::client::SourceError> {
        self.inner.plan(ctx).await
    }
    async fn fetch(
        &self,
        chunk: &ejgate_sdk::connector::Chunk,
    ) -> Result<ejgate_sdk::connector::Batch, ejgate_sdk::client::SourceError> {
        // notify_one keeps a permit if nobody waits yet.
        self.started.notify_one();
        let _pass = self.open.acquire().await.expect("the gate is never closed");
        self.inner.fetch(chunk).await
    }
}

// ---- the scenarios -------------------------------------------------------------------------

mod scenarios {
    use super::*;

    pub async fn migrations_are_idempotent(env: &Env) {
        let first = env.open().await;
        let run = first.begin_run(SRC, "full").await.unwrap();
        first.apply(run, SRC, &inserts(vec![mark(ChangeOp::Insert, "1", "5")]), &[]).await.unwrap();
        drop(first);

        // Opening again runs the migrations again: nothing to do, nothing lost.
        let second = env.open().await;
        let third = env.open().await;
        assert_eq!(second.counts(None).await.unwrap(), vec![count(EntityKind::Mark, 1, 0)]);
        second.apply(run, SRC, &inserts(vec![mark(ChangeOp::Insert, "2", "4")]), &[]).await.unwrap();
        assert_eq!(third.counts(Some(SRC)).await.unwrap(), vec![count(EntityKind::Mark, 2, 0)]);
    }

    pub async fn insert_then_counts(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "full").await.unwrap();
        let batch = vec![
            mark(ChangeOp::Insert, "1", "5"),
            mark(ChangeOp::Insert, "2", "4"),
            mark(ChangeOp::Insert, "3", "3"),
            upsert(SRC, ChangeOp::Insert, EntityKind::Lesson, "l1", "group:1", Some("2025-09-10"), json!({"n": 1})),
            upsert(SRC, ChangeOp::Insert, EntityKind::Lesson, "l2", "group:1", Some("2025-09-11"), json!({"n": 2})),
        ];
        store.apply(run, SRC, &inserts(batch.clone()), &[]).await.unwrap();
        let other = store.begin_run(OTHER, "full").await.unwrap();
        let subject =
            upsert(OTHER, ChangeOp::Insert, EntityKind::Subject, "s1", "school:1", None, json!({"name": "Алгебра"}));
        store.apply(other, OTHER, &inserts(vec![subject]), &[]).await.unwrap();

        assert_eq!(
            store.counts(Some(SRC)).await.unwrap(),
            vec![count(EntityKind::Lesson, 2, 0), count(EntityKind::Mark, 3, 0)]
        );
        assert_eq!(
            store.counts(None).await.unwrap(),
            vec![count(EntityKind::Subject, 1, 0), count(EntityKind::Lesson, 2, 0), count(EntityKind::Mark, 3, 0)]
        );
        assert_eq!(store.counts(Some("nobody")).await.unwrap(), vec![]);

        let log = store.changes_of_run(run).await.unwrap();
        assert_eq!(log.len(), 5);
        for (row, u) in log.iter().zip(&batch) {
            assert_eq!((row.op, row.id, row.kind, row.run_id), (ChangeOp::Insert, u.id, u.kind, run));
            assert_eq!(row.source, SRC);
            assert_eq!(row.source_id, u.source_id);
            assert_eq!(row.before, None);
            assert_eq!(row.after, Some(content_of(u)));
        }

        let marks = store.records(EntityKind::Mark, Some(SRC), false).await.unwrap();
        assert_eq!(marks.len(), 3);
        assert_eq!(marks[0].content, content_of(&batch[0]));
        assert_eq!(marks[0].date, Some(date("2025-09-10")));
        assert_eq!(marks[0].scope, "group:1");
        assert!(!marks[0].deleted);
    }

    pub async fn holds_source_tells_whether_a_source_has_records(env: &Env) {
        let store = env.open().await;
        assert!(!store.holds_source(SRC).await.unwrap(), "an empty store holds nothing");
        let run = store.begin_run(SRC, "full").await.unwrap();
        assert!(!store.holds_source(SRC).await.unwrap(), "a run alone is no record");
        let m = mark(ChangeOp::Insert, "1", "5");
        store.apply(run, SRC, &inserts(vec![m.clone()]), &[]).await.unwrap();
        assert!(store.holds_source(SRC).await.unwrap());
        assert!(!store.holds_source(OTHER).await.unwrap(), "another source's records do not count");
        // A tombstone is still a record of the source.
        let gone = ChangeSet { deletes: vec![(m.id, m.kind)], ..ChangeSet::default() };
        store.apply(run, SRC, &gone, &[]).await.unwrap();
        assert_eq!(store.counts(Some(SRC)).await.unwrap(), vec![count(EntityKind::Mark, 0, 1)]);
        assert!(store.holds_source(SRC).await.unwrap());
    }

    pub async fn update_logs_before_and_after(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "full").await.unwrap();
        let old = mark(ChangeOp::Insert, "1", "4");
        store.apply(run, SRC, &inserts(vec![old.clone()]), &[]).await.unwrap();
        let new = mark(ChangeOp::Update, "1", "5");
        store.apply(run, SRC, &inserts(vec![new.clone()]), &[]).await.unwrap();

        let log = store.changes_of_run(run).await.unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[1].op, ChangeOp::Update);
        assert_eq!(log[1].before, Some(content_of(&old)));
        assert_eq!(log[1].after, Some(content_of(&new)));

        let stored = store.records(EntityKind::Mark, Some(SRC), true).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].content, content_of(&new));
        let existing = store.existing(SRC, &[new.id], &[]).await.unwrap();
        assert_eq!(existing[&new.id].content_hash, new.content_hash);
        assert_eq!(existing[&new.id].natural_key, new.natural_key);
        assert_eq!(existing[&new.id].kind, EntityKind::Mark);
        assert!(!existing[&new.id].deleted);
        assert_eq!(store.counts(Some(SRC)).await.unwrap(), vec![count(EntityKind::Mark, 1, 0)]);
    }

    pub async fn unchanged_seen_logs_nothing(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "full").await.unwrap();
        let m = mark(ChangeOp::Insert, "1", "4");
        store.apply(run, SRC, &inserts(vec![m.clone()]), &[]).await.unwrap();
        let seq = last_seq(&*store).await;
        let before = env.last_seen(m.id).await;

        tokio::time::sleep(Duration::from_millis(5)).await;
        let seen = ChangeSet { seen: vec![m.id, Uuid::from_u128(42)], ..Default::default() };
        store.apply(run, SRC, &seen, &[]).await.unwrap();

        assert!(store.changes_since(seq, 100).await.unwrap().is_empty(), "seen wrote change rows");
        let after = env.last_seen(m.id).await;
        assert!(after > before, "last_seen did not move: {before} → {after}");
        let stored = store.records(EntityKind::Mark, None, true).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].content, content_of(&m));
    }

    pub async fn delete_makes_tombstone_and_logs_before(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "full").await.unwrap();
        let keep = mark(ChangeOp::Insert, "1", "4");
        let gone = mark(ChangeOp::Insert, "2", "2");
        store.apply(run, SRC, &inserts(vec![keep.clone(), gone.clone()]), &[]).await.unwrap();
        let del = ChangeSet { deletes: vec![(gone.id, EntityKind::Mark)], ..Default::default() };
        store.apply(run, SRC, &del, &[]).await.unwrap();

        assert_eq!(store.counts(Some(SRC)).await.unwrap(), vec![count(EntityKind::Mark, 1, 1)]);
        let live = store.records(EntityKind::Mark, Some(SRC), false).await.unwrap();
        assert_eq!(live.iter().map(|r| r.id).collect::<Vec<_>>(), vec![keep.id]);
        let all = store.records(EntityKind::Mark, Some(SRC), true).await.unwrap();
        assert_eq!(all.len(), 2);
        let tomb = all.iter().find(|r| r.id == gone.id).unwrap();
        assert!(tomb.deleted);
        assert_eq!(tomb.content, content_of(&gone), "a tombstone keeps its last content");

        let log = store.changes_of_run(run).await.unwrap();
        let last = log.last().unwrap();
        assert_eq!((last.op, last.id, last.kind), (ChangeOp::Delete, gone.id, EntityKind::Mark));
        assert_eq!(last.source_id, "2");
        assert_eq!(last.before, Some(content_of(&gone)));
        assert_eq!(last.after, None);

        let existing = store.existing(SRC, &[gone.id, keep.id], &[]).await.unwrap();
        assert!(existing[&gone.id].deleted);
        assert!(!existing[&keep.id].deleted);

        // Deleting a tombstone again does nothing.
        let seq = last_seq(&*store).await;
        store.apply(run, SRC, &del, &[]).await.unwrap();
        assert!(store.changes_since(seq, 10).await.unwrap().is_empty());
        assert_eq!(store.counts(Some(SRC)).await.unwrap(), vec![count(EntityKind::Mark, 1, 1)]);
    }

    pub async fn reinsert_over_tombstone(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "full").await.unwrap();
        let first = mark(ChangeOp::Insert, "1", "4");
        store.apply(run, SRC, &inserts(vec![first.clone()]), &[]).await.unwrap();
        let del = ChangeSet { deletes: vec![(first.id, EntityKind::Mark)], ..Default::default() };
        store.apply(run, SRC, &del, &[]).await.unwrap();
        assert_eq!(store.counts(None).await.unwrap(), vec![count(EntityKind::Mark, 0, 1)]);

        let back = mark(ChangeOp::Insert, "1", "5");
        store.apply(run, SRC, &inserts(vec![back.clone()]), &[]).await.unwrap();
        assert_eq!(store.counts(None).await.unwrap(), vec![count(EntityKind::Mark, 1, 0)]);
        let stored = store.records(EntityKind::Mark, Some(SRC), false).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert!(!stored[0].deleted);
        assert_eq!(stored[0].content, content_of(&back));

        let log = store.changes_of_run(run).await.unwrap();
        let ops: Vec<ChangeOp> = log.iter().map(|c| c.op).collect();
        assert_eq!(ops, vec![ChangeOp::Insert, ChangeOp::Delete, ChangeOp::Insert]);
        // The documented choice: an insert logs no before, the deleted content is in the
        // delete row.
        assert_eq!(log[1].before, Some(content_of(&first)));
        assert_eq!(log[2].before, None);
        assert_eq!(log[2].after, Some(content_of(&back)));
        assert!(!store.existing(SRC, &[back.id], &[]).await.unwrap()[&back.id].deleted);
    }

    pub async fn key_change_is_logged_as_such(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "full").await.unwrap();
        let old = upsert(
            SRC,
            ChangeOp::Insert,
            EntityKind::Class,
            "c1",
            "school:1",
            None,
            json!({"key": "2025/5А", "name": "5А"}),
        );
        store.apply(run, SRC, &inserts(vec![old.clone()]), &[]).await.unwrap();
        let new = upsert(
            SRC,
            ChangeOp::KeyChange,
            EntityKind::Class,
            "c1",
            "school:1",
            None,
            json!({"key": "2025/5Б", "name": "5Б"}),
        );
        assert_eq!(old.id, new.id);
        store.apply(run, SRC, &inserts(vec![new.clone()]), &[]).await.unwrap();

        let log = store.changes_of_run(run).await.unwrap();
        assert_eq!(log[1].op, ChangeOp::KeyChange);
        assert_eq!(log[1].before, Some(content_of(&old)));
        assert_eq!(log[1].after, Some(content_of(&new)));
        let existing = store.existing(SRC, &[new.id], &[]).await.unwrap();
        assert_eq!(existing[&new.id].natural_key, "2025/5Б");
    }

    pub async fn cursor_moves_only_with_a_committed_apply(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "incremental").await.unwrap();
        let key = ("marks".to_string(), "group:1".to_string());
        assert!(store.cursors(SRC).await.unwrap().is_empty());

        store.apply(run, SRC, &inserts(vec![mark(ChangeOp::Insert, "1", "5")]), &[cursor("c1")]).await.unwrap();
        assert_eq!(store.cursors(SRC).await.unwrap()[&key], "c1");

        // A batch that fails leaves the cursor where it was.
        let bad = ChangeSet {
            upserts: vec![mark(ChangeOp::Insert, "2", "4")],
            deletes: vec![(Uuid::from_u128(7), EntityKind::Mark)],
            ..Default::default()
        };
        let err = store.apply(run, SRC, &bad, &[cursor("c2")]).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert_eq!(store.cursors(SRC).await.unwrap()[&key], "c1");

        // An empty batch still commits its cursor; other sources' cursors are apart.
        store.apply(run, SRC, &ChangeSet::default(), &[cursor("c3")]).await.unwrap();
        let other = store.begin_run(OTHER, "incremental").await.unwrap();
        store.apply(other, OTHER, &ChangeSet::default(), &[cursor("x1")]).await.unwrap();
        let mine = store.cursors(SRC).await.unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[&key], "c3");
        assert_eq!(store.cursors(OTHER).await.unwrap()[&key], "x1");
    }

    pub async fn failed_apply_writes_nothing(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "full").await.unwrap();
        let existing = mark(ChangeOp::Insert, "0", "3");
        store.apply(run, SRC, &inserts(vec![existing.clone()]), &[cursor("c1")]).await.unwrap();
        let counts = store.counts(None).await.unwrap();
        let log_len = all_changes(&*store).await.len();

        let check_untouched = || async {
            assert_eq!(store.counts(None).await.unwrap(), counts);
            assert_eq!(all_changes(&*store).await.len(), log_len);
            let stored = store.records(EntityKind::Mark, None, true).await.unwrap();
            assert_eq!(stored.len(), 1);
            assert_eq!(stored[0].content, content_of(&existing));
            let key = ("marks".to_string(), "group:1".to_string());
            assert_eq!(store.cursors(SRC).await.unwrap()[&key], "c1");
        };

        // Many valid rows (several multi-row statements), an update, then a content the
        // database refuses (not JSON) in the very last row.
        let mut upserts: Vec<Upsert> = (1..=2500).map(|i| mark(ChangeOp::Insert, &i.to_string(), "5")).collect();
        upserts.push(mark(ChangeOp::Update, "0", "2"));
        let mut broken = mark(ChangeOp::Insert, "broken", "5");
        broken.content = b"{\"value\": 5".to_vec();
        upserts.push(broken);
        let err = store.apply(run, SRC, &inserts(upserts.clone()), &[cursor("c2")]).await.unwrap_err();
        assert!(matches!(err, StoreError::Database { .. }), "{err}");
        check_untouched().await;

        // Valid upserts, then a delete of a record the store does not have.
        upserts.pop();
        let unknown = ChangeSet {
            upserts: upserts.clone(),
            deletes: vec![(existing.id, EntityKind::Mark), (Uuid::from_u128(99), EntityKind::Mark)],
            seen: vec![existing.id],
        };
        let err = store.apply(run, SRC, &unknown, &[cursor("c3")]).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        check_untouched().await;

        // Refused before writing: the same id twice, an upsert with the op delete.
        let twice = inserts(vec![mark(ChangeOp::Insert, "7", "5"), mark(ChangeOp::Insert, "7", "4")]);
        assert!(matches!(store.apply(run, SRC, &twice, &[cursor("c4")]).await, Err(StoreError::Invalid(_))));
        let upserted_and_deleted = ChangeSet {
            upserts: vec![mark(ChangeOp::Update, "0", "5")],
            deletes: vec![(existing.id, EntityKind::Mark)],
            ..Default::default()
        };
        assert!(matches!(store.apply(run, SRC, &upserted_and_deleted, &[]).await, Err(StoreError::Invalid(_))));
        let delete_op = inserts(vec![mark(ChangeOp::Delete, "0", "5")]);
        assert!(matches!(store.apply(run, SRC, &delete_op, &[]).await, Err(StoreError::Invalid(_))));
        check_untouched().await;

        // A run that does not exist (the change log's foreign key).
        let err = store
            .apply(run + 1000, SRC, &inserts(vec![mark(ChangeOp::Insert, "8", "5")]), &[cursor("c5")])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Database { .. }), "{err}");
        check_untouched().await;

        // The store is still usable, and the same batch without the broken row goes in.
        store.apply(run, SRC, &inserts(upserts), &[cursor("c6")]).await.unwrap();
        assert_eq!(store.counts(None).await.unwrap(), vec![count(EntityKind::Mark, 2501, 0)]);
        assert_eq!(all_changes(&*store).await.len(), log_len + 2501);
        let key = ("marks".to_string(), "group:1".to_string());
        assert_eq!(store.cursors(SRC).await.unwrap()[&key], "c6");
    }

    pub async fn existing_by_ids_and_coverage(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "full").await.unwrap();
        let m = |sid: &str, scope: &str, day: &str| {
            upsert(SRC, ChangeOp::Insert, EntityKind::Mark, sid, scope, Some(day), json!({"v": sid}))
        };
        let sep01 = m("sep01", "group:1", "2025-09-01");
        let sep15 = m("sep15", "group:1", "2025-09-15");
        let sep30 = m("sep30", "group:1", "2025-09-30");
        let oct01 = m("oct01", "group:1", "2025-10-01");
        let aug31 = m("aug31", "group:1", "2025-08-31");
        let g2 = m("g2", "group:2", "2025-09-15");
        let lesson = upsert(SRC, ChangeOp::Insert, EntityKind::Lesson, "l1", "group:1", Some("2025-09-15"), json!({}));
        let enrollment = upsert(SRC, ChangeOp::Insert, EntityKind::Enrollment, "e1", "group:1", None, json!({}));
        let all = vec![
            sep01.clone(),
            sep15.clone(),
            sep30.clone(),
            oct01.clone(),
            aug31.clone(),
            g2.clone(),
            lesson.clone(),
            enrollment.clone(),
        ];
        store.apply(run, SRC, &inserts(all), &[]).await.unwrap();
        let other_run = store.begin_run(OTHER, "full").await.unwrap();
        let foreign =
            upsert(OTHER, ChangeOp::Insert, EntityKind::Mark, "sep15", "group:1", Some("2025-09-15"), json!({}));
        store.apply(other_run, OTHER, &inserts(vec![foreign.clone()]), &[]).await.unwrap();
        store
            .apply(run, SRC, &ChangeSet { deletes: vec![(sep01.id, EntityKind::Mark)], ..Default::default() }, &[])
            .await
            .unwrap();

        let ids_of = |map: &std::collections::HashMap<Uuid, ejgate::store::Existing>| {
            let mut v: Vec<Uuid> = map.keys().copied().collect();
            v.sort();
            v
        };
        let sorted = |mut v: Vec<Uuid>| {
            v.sort();
            v
        };
        let september = Some(DateRange::new(date("2025-09-01"), date("2025-09-30")));

        // Coverage: kind, scope and the inclusive date range; tombstones included.
        let got = store.existing(SRC, &[], &[(vec![EntityKind::Mark], "group:1".into(), september)]).await.unwrap();
        assert_eq!(ids_of(&got), sorted(vec![sep01.id, sep15.id, sep30.id]));
        assert!(got[&sep01.id].deleted);
        assert!(!got[&sep15.id].deleted);
        assert_eq!(got[&sep15.id].content_hash, sep15.content_hash);
        assert_eq!(got[&sep15.id].kind, EntityKind::Mark);

        // Ids alone; unknown ids and other sources' records are not there.
        let got = store.existing(SRC, &[oct01.id, g2.id, Uuid::from_u128(5), foreign.id], &[]).await.unwrap();
        assert_eq!(ids_of(&got), sorted(vec![oct01.id, g2.id]));

        // Both together (a record in both is there once); several coverages, one without
        // a range (records without a date included), several kinds in one coverage.
        let got = store
            .existing(
                SRC,
                &[oct01.id, sep15.id],
                &[
                    (vec![EntityKind::Mark], "group:1".into(), september),
                    (vec![EntityKind::Lesson, EntityKind::Enrollment], "group:1".into(), None),
                    (
                        vec![EntityKind::Mark],
                        "group:2".into(),
                        Some(DateRange::new(date("2025-09-16"), date("2025-09-30"))),
                    ),
                ],
            )
            .await
            .unwrap();
        assert_eq!(ids_of(&got), sorted(vec![sep01.id, sep15.id, sep30.id, oct01.id, lesson.id, enrollment.id]));

        // Nothing asked, nothing returned; another source sees only its own.
        assert!(store.existing(SRC, &[], &[]).await.unwrap().is_empty());
        let got =
            store.existing(OTHER, &[sep15.id], &[(vec![EntityKind::Mark], "group:1".into(), september)]).await.unwrap();
        assert_eq!(ids_of(&got), vec![foreign.id]);
    }

    pub async fn change_seq_strictly_increases_across_runs(env: &Env) {
        let store = env.open().await;
        let r1 = store.begin_run(SRC, "full").await.unwrap();
        let batch: Vec<Upsert> = (1..=3).map(|i| mark(ChangeOp::Insert, &i.to_string(), "5")).collect();
        store.apply(r1, SRC, &inserts(batch.clone()), &[]).await.unwrap();
        store.finish_run(r1, RunStatus::Succeeded, None, &RunStats::default()).await.unwrap();

        let r2 = store.begin_run(SRC, "incremental").await.unwrap();
        let second = ChangeSet {
            upserts: vec![mark(ChangeOp::Update, "1", "4"), mark(ChangeOp::Update, "2", "3")],
            deletes: vec![(batch[2].id, EntityKind::Mark)],
            seen: vec![],
        };
        store.apply(r2, SRC, &second, &[]).await.unwrap();
        let r3 = store.begin_run(OTHER, "full").await.unwrap();
        let foreign = upsert(OTHER, ChangeOp::Insert, EntityKind::Subject, "s", "school:1", None, json!({}));
        store.apply(r3, OTHER, &inserts(vec![foreign]), &[]).await.unwrap();

        let log = all_changes(&*store).await;
        assert_eq!(log.len(), 7);
        assert!(log.windows(2).all(|w| w[0].seq < w[1].seq), "seq not strictly increasing");
        let runs: Vec<i64> = log.iter().map(|c| c.run_id).collect();
        assert_eq!(runs, vec![r1, r1, r1, r2, r2, r2, r3]);
        assert!(log.windows(2).all(|w| w[0].at <= w[1].at));

        // Paging by seq.
        let page = store.changes_since(log[2].seq, 2).await.unwrap();
        assert_eq!(page, log[3..5].to_vec());
        assert!(store.changes_since(log[6].seq, 10).await.unwrap().is_empty());
    }

    pub async fn concurrent_applies_keep_batches_whole_in_the_log(env: &Env) {
        let store: std::sync::Arc<dyn Store> = env.open().await.into();
        let mut tasks = Vec::new();
        for w in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let source = format!("src-{w}");
                let run = store.begin_run(&source, "full").await.unwrap();
                for b in 0..5 {
                    let batch: Vec<Upsert> = (0..50)
                        .map(|i| {
                            upsert(
                                &source,
                                ChangeOp::Insert,
                                EntityKind::Mark,
                                &format!("{b}-{i}"),
                                "g",
                                None,
                                json!({"b": b}),
                            )
                        })
                        .collect();
                    store.apply(run, &source, &inserts(batch), &[]).await.unwrap();
                }
                run
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let log = all_changes(&*store).await;
        assert_eq!(log.len(), 4 * 5 * 50);
        assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
        // Each batch of 50 is contiguous in seq order.
        for chunk in log.chunks(50) {
            assert!(chunk.iter().all(|c| c.run_id == chunk[0].run_id && c.after == chunk[0].after));
        }
    }

    pub async fn begin_run_interrupts_a_stale_running_run(env: &Env) {
        let store = env.open().await;
        let stale = store.begin_run(SRC, "full").await.unwrap();
        let other = store.begin_run(OTHER, "full").await.unwrap();
        let fresh = store.begin_run(SRC, "incremental").await.unwrap();
        assert!(fresh > stale);

        let runs = store.runs(10).await.unwrap();
        let get = |id| runs.iter().find(|r| r.id == id).unwrap().clone();
        let s = get(stale);
        assert_eq!(s.status, RunStatus::Interrupted);
        assert!(s.finished_at.is_some());
        assert!(s.error.is_some());
        assert_eq!(get(other).status, RunStatus::Running);
        assert_eq!(get(fresh).status, RunStatus::Running);
        assert_eq!(get(fresh).finished_at, None);

        // A finished run stays as it was.
        store.finish_run(fresh, RunStatus::Succeeded, None, &RunStats::default()).await.unwrap();
        store.begin_run(SRC, "incremental").await.unwrap();
        let runs = store.runs(10).await.unwrap();
        assert_eq!(runs.iter().find(|r| r.id == fresh).unwrap().status, RunStatus::Succeeded);
        assert_eq!(runs.iter().find(|r| r.id == stale).unwrap().status, RunStatus::Interrupted);
    }

    fn lease_request<'a>(host: &'a str, pid: u32, ttl: Duration) -> LeaseRequest<'a> {
        LeaseRequest { name: "source:dnevnik-1", host, pid, ttl, replace: None }
    }

    pub async fn a_lease_has_one_holder_until_released_or_expired(env: &Env) {
        let a = env.open().await;
        let b = env.open().await;
        let hour = Duration::from_secs(3600);
        let LeaseOutcome::Acquired { lease: first, took_over: None } =
            a.acquire_lease(&lease_request("host-a", 101, hour)).await.unwrap()
        else {
            panic!("a free lease is taken")
        };
        assert!(first.expires_at > first.acquired_at);

        // A second holder is refused and told who holds the lease and since when.
        let LeaseOutcome::Held(held) = b.acquire_lease(&lease_request("host-b", 202, hour)).await.unwrap() else {
            panic!("a held lease is refused")
        };
        assert_eq!((held.host.as_str(), held.pid, held.acquired_at), ("host-a", 101, first.acquired_at));
        let text = StoreError::LeaseHeld(held).to_string();
        assert!(text.contains("pid 101") && text.contains("«host-a»"), "{text}");
        assert!(a.renew_lease("source:dnevnik-1", first.token, hour).await.unwrap());
        // Another name is another lease.
        let other = LeaseRequest { name: "source:epos-1", ..lease_request("host-b", 202, hour) };
        assert!(matches!(b.acquire_lease(&other).await.unwrap(), LeaseOutcome::Acquired { .. }));

        // Released, it is free at once.
        a.release_lease("source:dnevnik-1", first.token).await.unwrap();
        let LeaseOutcome::Acquired { lease: second, took_over: None } =
            b.acquire_lease(&lease_request("host-b", 202, Duration::ZERO)).await.unwrap()
        else {
            panic!("a released lease is free")
        };
        // The first holder's token no longer renews or releases anything.
        assert!(!a.renew_lease("source:dnevnik-1", first.token, hour).await.unwrap());
        a.release_lease("source:dnevnik-1", first.token).await.unwrap();
        assert_eq!(b.leases().await.unwrap().iter().filter(|l| l.name == "source:dnevnik-1").count(), 1);

        // Expired (time to live zero: it expires as it is taken; no waiting), it is taken
        // over, and the taker learns whose it was; the old holder's renewal finds it gone.
        let LeaseOutcome::Acquired { lease: third, took_over: Some(old) } =
            a.acquire_lease(&lease_request("host-a", 303, hour)).await.unwrap()
        else {
            panic!("an expired lease is taken over")
        };
        assert_eq!((old.host.as_str(), old.pid, old.token), ("host-b", 202, second.token));
        assert!(!b.renew_lease("source:dnevnik-1", second.token, hour).await.unwrap());

        // A holder known to be gone is replaced by naming its holding, before it expires;
        // naming another holding does not.
        let wrong = LeaseRequest { replace: Some(second.token), ..lease_request("host-b", 404, hour) };
        assert!(matches!(b.acquire_lease(&wrong).await.unwrap(), LeaseOutcome::Held(_)));
        let replace = LeaseRequest { replace: Some(third.token), ..lease_request("host-b", 404, hour) };
        let LeaseOutcome::Acquired { lease: fourth, took_over: Some(old) } = b.acquire_lease(&replace).await.unwrap()
        else {
            panic!("a named holding is replaced")
        };
        assert_eq!(old.pid, 303);
        let leases = a.leases().await.unwrap();
        let l = leases.iter().find(|l| l.name == "source:dnevnik-1").unwrap();
        assert_eq!((l.token, l.pid, l.host.as_str()), (fourth.token, 404, "host-b"));
        // Both takeovers are recorded (for `/metrics`); the fresh and the released ones are not.
        assert_eq!(b.lease_takeovers().await.unwrap(), vec![("source:dnevnik-1".to_string(), 2)]);
    }

    pub async fn concurrent_lease_requests_have_one_winner(env: &Env) {
        let mut tasks = Vec::new();
        for w in 0..8u32 {
            // A store handle each, as separate processes would have.
            let store = env.open().await;
            tasks.push(tokio::spawn(async move {
                let host = format!("host-{w}");
                store.acquire_lease(&lease_request(&host, w, Duration::from_secs(3600))).await.unwrap()
            }));
        }
        let mut winners = Vec::new();
        let mut refused = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                LeaseOutcome::Acquired { lease, took_over } => {
                    assert_eq!(took_over, None);
                    winners.push(lease)
                }
                LeaseOutcome::Held(held) => refused.push(held),
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        assert_eq!(refused.len(), 7);
        // Every refusal names the winner (the row it lost to).
        assert!(refused.iter().all(|h| h.token == winners[0].token && h.pid == winners[0].pid));
    }

    /// Two syncs of one source at once: the second is refused before it opens a run, the
    /// first is neither closed as interrupted nor disturbed, and the change log holds each
    /// record once. Before the lease both ran, both exited 0, and every id was inserted twice.
    pub async fn two_syncs_of_one_source_one_is_refused(env: &Env) {
        use ejgate::sync::{run_sync, SyncOptions};
        use ejgate_sdk::connector::SyncMode;
        let world = ejgate_sdk::synth::World::generate(ejgate_sdk::synth::SynthConfig::small(7));
        let emulator = common::start_emulator(world, None).await;
        let first_store = env.open().await;
        let second_store = env.open().await;
        let gate = Gate::new(common::dnevnik_connector(&emulator, "dnevnik-one"));
        let options = SyncOptions { mode: SyncMode::Full, ..SyncOptions::default() };
        let first = {
            let gate = gate.clone();
            let options = options.clone();
            tokio::spawn(async move { run_sync(first_store.as_ref(), gate, &options).await })
        };
        // The first sync has planned and asked for its first chunk: it holds the lease and
        // its run is open. Its fetches wait at the gate.
        gate.started.notified().await;

        let refused =
            run_sync(second_store.as_ref(), common::dnevnik_connector(&emulator, "dnevnik-one"), &options).await;
        let Err(StoreError::LeaseHeld(held)) = refused else {
            panic!("the second sync is refused, got {:?}", refused.map(|r| r.status))
        };
        assert_eq!((held.name.as_str(), held.pid), ("source:dnevnik-one", std::process::id()));
        // The first run is still running, not closed as interrupted by the second.
        let runs = second_store.runs(10).await.unwrap();
        assert_eq!(runs.len(), 1, "the refused sync opened no run: {runs:?}");
        assert_eq!(runs[0].status, RunStatus::Running);
        let status = ejgate::status::status(second_store.as_ref(), &["dnevnik-one".into()], 10).await.unwrap();
        let text = ejgate::status::render(&status);
        assert!(text.contains("in progress: pid"), "{text}");

        gate.open.add_permits(1_000_000);
        let report = first.await.unwrap().unwrap();
        assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
        assert!(report.stats.inserted > 0);

        // Each record was inserted once.
        let log = all_changes(second_store.as_ref()).await;
        let mut ids = std::collections::HashSet::new();
        assert!(log.iter().all(|c| c.op != ChangeOp::Insert || ids.insert(c.id)), "an id inserted twice");
        assert_eq!(log.len() as u64, report.stats.inserted);
        // The lease was given up: the next sync runs, and finds nothing to change.
        let again = run_sync(second_store.as_ref(), common::dnevnik_connector(&emulator, "dnevnik-one"), &options)
            .await
            .unwrap();
        assert_eq!((again.status, again.stats.inserted + again.stats.updated), (RunStatus::Succeeded, 0));
        assert!(second_store.runs(10).await.unwrap().iter().all(|r| r.status == RunStatus::Succeeded));
    }

    pub async fn runs_list_newest_first_and_stats_round_trip(env: &Env) {
        let store = env.open().await;
        let a = store.begin_run("a", "full").await.unwrap();
        let b = store.begin_run("b", "incremental").await.unwrap();
        let c = store.begin_run("c", "full").await.unwrap();
        let stats = RunStats {
            chunks: 3,
            requests: 17,
            records_read: 1234,
            inserted: 1000,
            updated: 200,
            deleted: 34,
            warnings: vec!["неизвестный вид работы «ВПР»".into(), "w2".into()],
            skipped: 7,
            skipped_by_stream: [("marks".to_string(), 5), ("roster".to_string(), 2)].into_iter().collect(),
            rate_limited: 4,
            limit_waits: 9,
            limit_wait_ms: 2500,
            planned_requests: 21,
            deferred_chunks: 2,
        };
        let failure = RunError::new(RunErrorKind::Server, "источник ответил 503");
        store.finish_run(b, RunStatus::Failed, Some(&failure), &stats).await.unwrap();
        store.finish_run(a, RunStatus::Succeeded, None, &RunStats::default()).await.unwrap();

        let runs = store.runs(10).await.unwrap();
        assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![c, b, a]);
        let rb = &runs[1];
        assert_eq!((rb.source.as_str(), rb.mode.as_str()), ("b", "incremental"));
        assert_eq!(rb.status, RunStatus::Failed);
        assert_eq!(rb.error.as_deref(), Some("источник ответил 503"));
        assert_eq!(rb.error_kind, Some(RunErrorKind::Server));
        assert_eq!(rb.stats, stats);
        assert!(rb.finished_at.unwrap() >= rb.started_at);
        assert_eq!(runs[0].status, RunStatus::Running);
        assert_eq!(runs[0].stats, RunStats::default());
        assert_eq!(runs[2].status, RunStatus::Succeeded);
        assert_eq!(runs[2].error, None);
        assert_eq!(runs[2].error_kind, None);

        assert_eq!(store.runs(2).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), vec![c, b]);
        assert!(store.finish_run(c + 100, RunStatus::Failed, None, &stats).await.is_err());
    }

    pub async fn every_error_kind_is_kept_with_its_run(env: &Env) {
        let store = env.open().await;
        let mut runs = Vec::new();
        for kind in RunErrorKind::ALL {
            let run = store.begin_run(SRC, "incremental").await.unwrap();
            let failure = RunError::new(kind, format!("отказ: {kind}"));
            store.finish_run(run, RunStatus::Failed, Some(&failure), &RunStats::default()).await.unwrap();
            runs.push((run, kind));
        }
        let stored = store.runs(20).await.unwrap();
        for (run, kind) in runs {
            let r = stored.iter().find(|r| r.id == run).unwrap();
            assert_eq!(r.error_kind, Some(kind), "run {run}");
            assert_eq!(r.error.as_deref(), Some(format!("отказ: {}", kind.as_str()).as_str()));
        }
        // The kind names are the ones the daemon and `status --json` read.
        let names: Vec<&str> = RunErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "unauthorized",
                "rate_limited",
                "server",
                "client",
                "malformed",
                "transport",
                "timeout",
                "config",
                "store",
                "internal",
                "deletes",
                "stopped"
            ]
        );
        // A run that is interrupted has no kind.
        let stale = store.begin_run(OTHER, "full").await.unwrap();
        store.begin_run(OTHER, "full").await.unwrap();
        let stored = store.runs(30).await.unwrap();
        assert_eq!(stored.iter().find(|r| r.id == stale).unwrap().error_kind, None);
    }

    pub async fn changes_of_run_keeps_its_own_rows_in_order(env: &Env) {
        let store = env.open().await;
        let r1 = store.begin_run(SRC, "full").await.unwrap();
        let r2 = store.begin_run(OTHER, "full").await.unwrap();
        let order = ["z", "a", "m"];
        let first: Vec<Upsert> = order.iter().map(|s| mark(ChangeOp::Insert, s, "5")).collect();
        store.apply(r1, SRC, &inserts(first.clone()), &[]).await.unwrap();
        let foreign = upsert(OTHER, ChangeOp::Insert, EntityKind::Subject, "s", "school:1", None, json!({}));
        store.apply(r2, OTHER, &inserts(vec![foreign]), &[]).await.unwrap();
        let later = ChangeSet {
            upserts: vec![mark(ChangeOp::Update, "m", "4"), mark(ChangeOp::Insert, "b", "3")],
            deletes: vec![(first[0].id, EntityKind::Mark), (first[1].id, EntityKind::Mark)],
            seen: vec![],
        };
        store.apply(r1, SRC, &later, &[]).await.unwrap();

        let log = store.changes_of_run(r1).await.unwrap();
        let got: Vec<(ChangeOp, &str)> = log.iter().map(|c| (c.op, c.source_id.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (ChangeOp::Insert, "z"),
                (ChangeOp::Insert, "a"),
                (ChangeOp::Insert, "m"),
                (ChangeOp::Update, "m"),
                (ChangeOp::Insert, "b"),
                (ChangeOp::Delete, "z"),
                (ChangeOp::Delete, "a"),
            ]
        );
        assert!(log.iter().all(|c| c.run_id == r1 && c.source == SRC));
        assert_eq!(store.changes_of_run(r2).await.unwrap().len(), 1);
        assert!(store.changes_of_run(r2 + 100).await.unwrap().is_empty());
    }

    pub async fn records_are_ordered_by_source_id(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "full").await.unwrap();
        let sids = ["b", "a", "10", "9", "Я", "B", "a-1", "ё"];
        let subjects: Vec<Upsert> = sids
            .iter()
            .map(|s| upsert(SRC, ChangeOp::Insert, EntityKind::Subject, s, "school:1", None, json!({"name": s})))
            .collect();
        let lesson = upsert(SRC, ChangeOp::Insert, EntityKind::Lesson, "0", "group:1", Some("2025-09-01"), json!({}));
        let mut batch = subjects.clone();
        batch.push(lesson);
        store.apply(run, SRC, &inserts(batch), &[]).await.unwrap();
        let other = store.begin_run(OTHER, "full").await.unwrap();
        let foreign = upsert(OTHER, ChangeOp::Insert, EntityKind::Subject, "a", "school:1", None, json!({"name": "a"}));
        store.apply(other, OTHER, &inserts(vec![foreign]), &[]).await.unwrap();
        store
            .apply(
                run,
                SRC,
                &ChangeSet { deletes: vec![(subjects[0].id, EntityKind::Subject)], ..Default::default() },
                &[],
            )
            .await
            .unwrap();

        // Byte order of the UTF-8 text on both backends (so «Я» U+042F before «ё» U+0451).
        let got: Vec<String> = store
            .records(EntityKind::Subject, Some(SRC), true)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.source_id)
            .collect();
        assert_eq!(got, vec!["10", "9", "B", "a", "a-1", "b", "Я", "ё"]);
        let live: Vec<String> = store
            .records(EntityKind::Subject, Some(SRC), false)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.source_id)
            .collect();
        assert_eq!(live, vec!["10", "9", "B", "a", "a-1", "Я", "ё"]);
        let everyone: Vec<(String, String)> = store
            .records(EntityKind::Subject, None, false)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.source_id, r.source))
            .collect();
        assert_eq!(everyone.len(), 8);
        assert_eq!(everyone[3], ("a".into(), SRC.into()));
        assert_eq!(everyone[4], ("a".into(), OTHER.into()));
        assert!(store.records(EntityKind::Mark, None, true).await.unwrap().is_empty());
    }

    /// Monitoring's read: the live records of one source and kind, their content the stored
    /// JSON text, first-seen times when asked for, and a visitor can stop the read.
    pub async fn visit_records_hands_over_live_contents_and_first_seen(env: &Env) {
        use std::collections::BTreeMap;
        use std::ops::ControlFlow;

        let store = env.open().await;
        let subject = |sid: &str, op: ChangeOp, content: Value| {
            upsert(SRC, op, EntityKind::Subject, sid, "school:1", None, content)
        };
        let first = store.begin_run(SRC, "full").await.unwrap();
        let mut batch: Vec<Upsert> = ["a", "b", "c"]
            .iter()
            .map(|s| subject(s, ChangeOp::Insert, json!({"name": s, "note": "«4+» \"ёж\"\n"})))
            .collect();
        batch.push(upsert(SRC, ChangeOp::Insert, EntityKind::Lesson, "a", "group:1", Some("2025-09-01"), json!({})));
        store.apply(first, SRC, &inserts(batch), &[]).await.unwrap();
        let other = store.begin_run(OTHER, "full").await.unwrap();
        let foreign = upsert(OTHER, ChangeOp::Insert, EntityKind::Subject, "a", "school:1", None, json!({"name": "x"}));
        store.apply(other, OTHER, &inserts(vec![foreign]), &[]).await.unwrap();
        // Later (the store's clock has whole microseconds; a commit takes longer): b deleted,
        // c changed, d new.
        let second = store.begin_run(SRC, "full").await.unwrap();
        let changes = ChangeSet {
            upserts: vec![
                subject("c", ChangeOp::Update, json!({"name": "c", "n": 2})),
                subject("d", ChangeOp::Insert, json!({"name": "d"})),
            ],
            deletes: vec![(id_of(SRC, EntityKind::Subject, "b"), EntityKind::Subject)],
            ..Default::default()
        };
        store.apply(second, SRC, &changes, &[]).await.unwrap();

        type Seen = BTreeMap<String, (Uuid, Value, Option<chrono::DateTime<chrono::Utc>>)>;
        let visit = |first_seen: bool| {
            let store = &store;
            async move {
                let mut got: Seen = BTreeMap::new();
                store
                    .visit_records(EntityKind::Subject, SRC, first_seen, &mut |row: store::ContentRow<'_>| {
                        let content: Value = serde_json::from_str(row.content).expect("the content is JSON text");
                        got.insert(row.source_id.to_string(), (row.id, content, row.first_seen));
                        ControlFlow::Continue(())
                    })
                    .await
                    .unwrap();
                got
            }
        };
        let got = visit(true).await;
        assert_eq!(got.keys().map(String::as_str).collect::<Vec<_>>(), ["a", "c", "d"]);
        for (sid, (id, _, _)) in &got {
            assert_eq!(*id, id_of(SRC, EntityKind::Subject, sid));
        }
        assert_eq!(got["a"].1, json!({"name": "a", "note": "«4+» \"ёж\"\n"}));
        assert_eq!(got["c"].1, json!({"name": "c", "n": 2}));
        // First seen by the run that inserted the record, kept by an update.
        let seen = |sid: &str| got[sid].2.expect("asked for");
        assert_eq!(seen("a"), seen("c"));
        assert!(seen("a") < seen("d"), "{} < {}", seen("a"), seen("d"));
        let by_query = store.first_seen(EntityKind::Subject, SRC).await.unwrap();
        for (id, _, at) in got.values() {
            assert_eq!(Some(by_query[id]), *at);
        }

        let without = visit(false).await;
        assert_eq!(without.len(), 3);
        assert!(without.values().all(|(_, _, at)| at.is_none()));

        let mut calls = 0;
        store
            .visit_records(EntityKind::Subject, SRC, false, &mut |_: store::ContentRow<'_>| {
                calls += 1;
                ControlFlow::Break(())
            })
            .await
            .unwrap();
        assert_eq!(calls, 1, "Break ends the read");
        let mut none = 0;
        store
            .visit_records(EntityKind::Mark, SRC, true, &mut |_: store::ContentRow<'_>| {
                none += 1;
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert_eq!(none, 0);
    }

    /// The year-end bag's read path: the live rows of one source, in `records`' order, the
    /// content as JSON text holding the value stored, the date range applied (undated rows
    /// kept), and `Break` stopping the read.
    pub async fn raw_records_stream_the_live_rows_in_order(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "full").await.unwrap();
        let marks = [
            ("m3", Some("2025-09-10"), json!({"value": "5", "numeric": 5.0, "note": "«кавычки» \"и\" \\"})),
            ("m1", Some("2025-08-31"), json!({"value": "4"})),
            ("m2", None, json!({"value": "3", "nested": {"b": [1, 2], "a": null}})),
            ("m4", Some("2026-08-31"), json!({"value": "2"})),
            ("m5", Some("2026-09-01"), json!({"value": "1"})),
            ("m0", Some("2025-09-01"), json!({"value": "зч"})),
        ];
        let batch: Vec<Upsert> = marks
            .iter()
            .map(|(sid, day, content)| {
                upsert(SRC, ChangeOp::Insert, EntityKind::Mark, sid, "group:1", *day, content.clone())
            })
            .collect();
        store.apply(run, SRC, &inserts(batch.clone()), &[]).await.unwrap();
        let other = store.begin_run(OTHER, "full").await.unwrap();
        let foreign = upsert(OTHER, ChangeOp::Insert, EntityKind::Mark, "m9", "group:1", None, json!({"value": "5"}));
        store.apply(other, OTHER, &inserts(vec![foreign]), &[]).await.unwrap();
        // m0 deleted: a tombstone is not a live row.
        store
            .apply(run, SRC, &ChangeSet { deletes: vec![(batch[5].id, EntityKind::Mark)], ..Default::default() }, &[])
            .await
            .unwrap();

        let year = Some((date("2025-09-01"), date("2026-08-31")));
        let mut got = Vec::new();
        let n = store
            .each_raw_record(EntityKind::Mark, SRC, year, &mut |r| {
                let content: Value = serde_json::from_str(r.content).expect("the content is JSON text");
                got.push((
                    r.id,
                    r.source.to_string(),
                    r.source_id.to_string(),
                    r.scope.to_string(),
                    r.date.map(str::to_string),
                    content,
                ));
                std::ops::ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert_eq!(n, 3);
        let want: Vec<_> = [2usize, 0, 3]
            .iter()
            .map(|&i| {
                let (sid, day, content) = &marks[i];
                (
                    id_of(SRC, EntityKind::Mark, sid),
                    SRC.to_string(),
                    sid.to_string(),
                    "group:1".to_string(),
                    day.map(str::to_string),
                    content.clone(),
                )
            })
            .collect();
        assert_eq!(got, want, "m2 (undated), m3, m4 (the year's last day); not m1, m5 (outside), m0 (deleted)");

        // No range: every live row of the source.
        let mut sids = Vec::new();
        store
            .each_raw_record(EntityKind::Mark, SRC, None, &mut |r| {
                sids.push(r.source_id.to_string());
                std::ops::ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert_eq!(sids, ["m1", "m2", "m3", "m4", "m5"]);
        // Break stops the read after the row it was given.
        let mut seen = 0;
        let n = store
            .each_raw_record(EntityKind::Mark, SRC, None, &mut |_| {
                seen += 1;
                if seen == 2 {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            })
            .await
            .unwrap();
        assert_eq!((n, seen), (2, 2));
        let none =
            store.each_raw_record(EntityKind::Lesson, SRC, year, &mut |_| std::ops::ControlFlow::Continue(())).await;
        assert_eq!(none.unwrap(), 0);
    }

    pub async fn big_batches_cross_statement_boundaries(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "full").await.unwrap();
        let n = 5_000;
        let first: Vec<Upsert> = (0..n)
            .map(|i| {
                upsert(
                    SRC,
                    ChangeOp::Insert,
                    EntityKind::Mark,
                    &format!("m{i:05}"),
                    &format!("group:{}", i % 7),
                    Some("2025-09-10"),
                    json!({"i": i, "value": "5"}),
                )
            })
            .collect();
        store.apply(run, SRC, &inserts(first.clone()), &[cursor("p1")]).await.unwrap();
        assert_eq!(store.counts(None).await.unwrap(), vec![count(EntityKind::Mark, n as u64, 0)]);
        let log = store.changes_of_run(run).await.unwrap();
        assert_eq!(log.len(), n);
        assert!(log.iter().zip(&first).all(|(c, u)| c.id == u.id && c.op == ChangeOp::Insert));

        // Update every third, delete every seventh (not already updated), the rest seen.
        let mut second = ChangeSet::default();
        for (i, u) in first.iter().enumerate() {
            if i % 3 == 0 {
                let mut v = content_of(u);
                v["value"] = json!("4");
                let mut up = upsert(SRC, ChangeOp::Update, u.kind, &u.source_id, &u.scope, Some("2025-09-10"), v);
                up.op = ChangeOp::Update;
                second.upserts.push(up);
            } else if i % 7 == 0 {
                second.deletes.push((u.id, u.kind));
            } else {
                second.seen.push(u.id);
            }
        }
        let run2 = store.begin_run(SRC, "full").await.unwrap();
        store.apply(run2, SRC, &second, &[cursor("p2")]).await.unwrap();
        let deleted = second.deletes.len() as u64;
        assert_eq!(store.counts(None).await.unwrap(), vec![count(EntityKind::Mark, n as u64 - deleted, deleted)]);
        let log = store.changes_of_run(run2).await.unwrap();
        assert_eq!(log.len(), second.upserts.len() + second.deletes.len());
        for (c, u) in log.iter().zip(&second.upserts) {
            assert_eq!((c.id, c.op), (u.id, ChangeOp::Update));
            let before = c.before.as_ref().unwrap();
            assert_eq!(before["value"], "5");
            assert_eq!(before["i"], c.after.as_ref().unwrap()["i"]);
        }
        let deletes = &log[second.upserts.len()..];
        assert!(deletes.iter().zip(&second.deletes).all(|(c, (id, _))| c.id == *id && c.op == ChangeOp::Delete));
        let key = ("marks".to_string(), "group:1".to_string());
        assert_eq!(store.cursors(SRC).await.unwrap()[&key], "p2");
    }

    pub async fn run_totals_add_up_runs_and_last_runs_are_the_newest_finished(env: &Env) {
        let store = env.open().await;
        store.ping().await.unwrap();
        assert!(store.run_totals().await.unwrap().is_empty());
        let stats = |requests: u64, inserted: u64, waits: u64| RunStats {
            requests,
            records_read: inserted + 1,
            inserted,
            updated: 2,
            deleted: 1,
            rate_limited: waits / 2,
            limit_waits: waits,
            limit_wait_ms: waits * 100,
            ..RunStats::default()
        };
        let failure = RunError::new(RunErrorKind::Server, "HTTP 502");
        let mut finished = Vec::new();
        for (source, mode, status, s) in [
            (SRC, "full", RunStatus::Succeeded, stats(10, 100, 4)),
            (SRC, "incremental", RunStatus::Succeeded, stats(3, 5, 0)),
            (SRC, "incremental", RunStatus::Succeeded, stats(4, 6, 2)),
            (SRC, "incremental", RunStatus::Failed, stats(7, 0, 0)),
            (OTHER, "full", RunStatus::Succeeded, stats(1, 1, 0)),
        ] {
            let run = store.begin_run(source, mode).await.unwrap();
            let error = (status == RunStatus::Failed).then_some(&failure);
            store.finish_run(run, status, error, &s).await.unwrap();
            finished.push(run);
        }
        // A run still going counts as running, with nothing in its sums yet.
        let going = store.begin_run(OTHER, "incremental").await.unwrap();

        let totals = store.run_totals().await.unwrap();
        let find = |source: &str, mode: &str, status: RunStatus| {
            totals.iter().find(|t| t.source == source && t.mode == mode && t.status == status).unwrap().clone()
        };
        let inc = find(SRC, "incremental", RunStatus::Succeeded);
        assert_eq!((inc.runs, inc.requests, inc.records_read, inc.inserted), (2, 7, 13, 11));
        assert_eq!((inc.updated, inc.deleted, inc.rate_limited, inc.limit_waits, inc.limit_wait_ms), (4, 2, 1, 2, 200));
        let runs = store.runs(10).await.unwrap();
        let finished_at = |id| runs.iter().find(|r| r.id == id).unwrap().finished_at;
        assert_eq!(inc.last_finished_at, finished_at(finished[2]));
        assert_eq!(find(SRC, "full", RunStatus::Succeeded).limit_wait_ms, 400);
        assert_eq!(find(SRC, "incremental", RunStatus::Failed).requests, 7);
        let running = find(OTHER, "incremental", RunStatus::Running);
        assert_eq!((running.runs, running.requests, running.last_finished_at), (1, 0, None));
        assert_eq!(totals.len(), 5);

        // The newest finished run per source: the failure of SRC, the full run of OTHER
        // (its newer run is still going).
        let last = store.last_finished_runs().await.unwrap();
        assert_eq!(
            last.iter().map(|r| (r.source.as_str(), r.id)).collect::<Vec<_>>(),
            vec![(SRC, finished[3]), (OTHER, finished[4])]
        );
        assert_eq!(last[0].error_kind, Some(RunErrorKind::Server));
        store.finish_run(going, RunStatus::Interrupted, None, &RunStats::default()).await.unwrap();
        assert_eq!(store.last_finished_runs().await.unwrap()[1].id, going);
    }

    pub async fn job_run_totals_add_up_the_job_runs(env: &Env) {
        use ejgate::store::{JobClaim, JobEnd, JobRunStatus, JobTrigger, NewJobRun};
        let store = env.open().await;
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-12-07T02:00:00Z").unwrap().to_utc();
        let claim = JobClaim { token: Uuid::new_v4(), host: "host-a", pid: 7 };
        // Three slots of «nightly»: one succeeds after a retry, one fails, one is skipped.
        let mut ids = Vec::new();
        for (i, status) in [JobRunStatus::Due, JobRunStatus::Due, JobRunStatus::Skipped].into_iter().enumerate() {
            let slot = t0 + chrono::TimeDelta::days(i as i64);
            let new = NewJobRun {
                job: "nightly",
                scheduled_at: slot,
                trigger: JobTrigger::Schedule,
                status,
                due_at: slot,
                note: None,
            };
            ids.push(store.insert_job_run(&new).await.unwrap().unwrap().id);
        }
        let end = |status, retry_at, at| JobEnd { status, error: None, error_kind: None, retry_at, at };
        store.start_job_run(ids[0], &claim, t0).await.unwrap().unwrap();
        let retry = t0 + chrono::TimeDelta::minutes(5);
        assert!(store.finish_job_run(ids[0], claim.token, &end(JobRunStatus::Failed, Some(retry), t0)).await.unwrap());
        store.start_job_run(ids[0], &claim, retry).await.unwrap().unwrap();
        let done = retry + chrono::TimeDelta::minutes(1);
        assert!(store.finish_job_run(ids[0], claim.token, &end(JobRunStatus::Succeeded, None, done)).await.unwrap());
        let day2 = t0 + chrono::TimeDelta::days(1);
        store.start_job_run(ids[1], &claim, day2).await.unwrap().unwrap();
        assert!(store.finish_job_run(ids[1], claim.token, &end(JobRunStatus::Failed, None, day2)).await.unwrap());

        let totals = store.job_run_totals().await.unwrap();
        let of = |status| totals.iter().find(|t| t.job == "nightly" && t.status == status).unwrap();
        let ok = of(JobRunStatus::Succeeded);
        assert_eq!((ok.runs, ok.retries, ok.resumed, ok.last_finished_at), (1, 1, 0, Some(done)));
        assert_eq!((of(JobRunStatus::Failed).runs, of(JobRunStatus::Failed).retries), (1, 0));
        assert_eq!((of(JobRunStatus::Skipped).runs, of(JobRunStatus::Skipped).last_finished_at), (1, None));
        assert_eq!(totals.len(), 3);
    }

    pub async fn api_tokens_keep_their_hash_and_revocation(env: &Env) {
        let store = env.open().await;
        let (h1, h2, h3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        store.create_api_token("grafana", &h1).await.unwrap();
        store.create_api_token("ivanova", &h2).await.unwrap();
        let e = store.create_api_token("grafana", &h3).await.unwrap_err().to_string();
        assert!(e.contains("«grafana» is in force") && e.contains("ejgate token revoke grafana"), "{e}");
        assert_eq!(store.api_token_by_hash(&h1).await.unwrap().unwrap().name, "grafana");
        assert_eq!(store.api_token_by_hash(&h3).await.unwrap(), None, "the refused one was not kept");

        assert!(store.revoke_api_token("grafana").await.unwrap());
        assert!(!store.revoke_api_token("grafana").await.unwrap());
        assert!(!store.revoke_api_token("nobody").await.unwrap());
        assert_eq!(store.api_token_by_hash(&h1).await.unwrap(), None, "revoked");
        let listed = store.api_tokens().await.unwrap();
        assert_eq!(
            listed.iter().map(|t| (t.name.as_str(), t.revoked_at.is_some())).collect::<Vec<_>>(),
            vec![("grafana", true), ("ivanova", false)]
        );
        // A revoked name can be given to a new token; the old hash stays shut.
        store.create_api_token("grafana", &h3).await.unwrap();
        assert_eq!(store.api_token_by_hash(&h3).await.unwrap().unwrap().name, "grafana");
        assert_eq!(store.api_token_by_hash(&h1).await.unwrap(), None);
        assert!(store.api_tokens().await.unwrap().iter().all(|t| t.revoked_at.is_none()));
    }

    fn slot(h: u32, m: u32) -> chrono::DateTime<chrono::Utc> {
        use chrono::TimeZone;
        chrono::Utc.with_ymd_and_hms(2026, 12, 7, h, m, 0).unwrap()
    }

    fn new_run(job: &str, at: chrono::DateTime<chrono::Utc>, trigger: JobTrigger) -> NewJobRun<'_> {
        NewJobRun { job, scheduled_at: at, trigger, status: JobRunStatus::Due, due_at: at, note: None }
    }

    /// The daemon's job runs: a slot is recorded once; only the worker whose claim (job
    /// lease token) the row holds may add to it or close it; a retry goes back to `due`
    /// with its next attempt; an interrupted or taken-over row counts as resumed.
    pub async fn job_runs_are_recorded_once_and_closed_by_their_claim_holder(env: &Env) {
        let store = env.open().await;
        let claim = |token: Uuid| JobClaim { token, host: "host-a", pid: 7 };
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());

        // The first time a job is seen is where its slots start; later starts keep it.
        assert_eq!(store.schedule_anchor("nightly", slot(9, 30)).await.unwrap(), slot(9, 30));
        assert_eq!(store.schedule_anchor("nightly", slot(9, 45)).await.unwrap(), slot(9, 30));

        let first = store.insert_job_run(&new_run("nightly", slot(10, 0), JobTrigger::Schedule)).await.unwrap();
        let first = first.expect("a new slot is recorded");
        assert_eq!((first.status, first.attempt, first.resumed), (JobRunStatus::Due, 1, 0));
        let again = NewJobRun { status: JobRunStatus::Skipped, ..new_run("nightly", slot(10, 0), JobTrigger::CatchUp) };
        assert_eq!(store.insert_job_run(&again).await.unwrap(), None, "the same slot is not recorded twice");
        // The newest slot is the anchor; a manual run is not a slot.
        store.insert_job_run(&new_run("nightly", slot(11, 0), JobTrigger::Manual)).await.unwrap().unwrap();
        assert_eq!(store.schedule_anchor("nightly", slot(12, 0)).await.unwrap(), slot(10, 0));

        // Due only from its time.
        assert!(store.open_job_runs(slot(9, 59), 10).await.unwrap().is_empty());
        assert_eq!(
            store.open_job_runs(slot(10, 0), 10).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![first.id]
        );
        assert_eq!(store.start_job_run(first.id, &claim(a), slot(9, 59)).await.unwrap(), None, "not before its time");

        let run = store.start_job_run(first.id, &claim(a), slot(10, 0)).await.unwrap().unwrap();
        assert_eq!((run.status, run.claim, run.pid, run.resumed), (JobRunStatus::Running, Some(a), Some(7), 0));
        // Taken over (its worker's lease expired): the new claim holds it.
        let run = store.start_job_run(first.id, &claim(b), slot(10, 5)).await.unwrap().unwrap();
        assert_eq!((run.claim, run.resumed), (Some(b), 1));
        let end = |status, retry_at| JobEnd {
            status,
            error: Some("boom"),
            error_kind: Some(RunErrorKind::Server),
            retry_at,
            at: slot(10, 6),
        };
        assert!(!store.add_job_sync_run(first.id, a, 3).await.unwrap(), "the old claim adds nothing");
        assert!(!store.finish_job_run(first.id, a, &end(JobRunStatus::Succeeded, None)).await.unwrap());
        assert!(store.add_job_sync_run(first.id, b, 3).await.unwrap());

        // Failed with a retry left: due again later, next attempt, no claim.
        assert!(store.finish_job_run(first.id, b, &end(JobRunStatus::Failed, Some(slot(10, 21)))).await.unwrap());
        let run = store.job_runs(Some("nightly"), 10).await.unwrap().into_iter().find(|r| r.id == first.id).unwrap();
        assert_eq!((run.status, run.attempt, run.claim, run.due_at), (JobRunStatus::Due, 2, None, slot(10, 21)));
        assert_eq!((run.error.as_deref(), run.error_kind), (Some("boom"), Some(RunErrorKind::Server)));
        assert!(store.open_job_runs(slot(10, 20), 10).await.unwrap().iter().all(|r| r.id != first.id));
        let run = store.start_job_run(first.id, &claim(c), slot(10, 21)).await.unwrap().unwrap();
        assert_eq!((run.attempt, run.resumed), (2, 1), "a retry is not a resumption");
        assert!(store.add_job_sync_run(first.id, c, 9).await.unwrap());
        let ok =
            JobEnd { status: JobRunStatus::Succeeded, error: None, error_kind: None, retry_at: None, at: slot(10, 22) };
        assert!(store.finish_job_run(first.id, c, &ok).await.unwrap());
        assert!(!store.finish_job_run(first.id, c, &ok).await.unwrap(), "a closed run is not closed again");
        assert_eq!(store.start_job_run(first.id, &claim(a), slot(10, 30)).await.unwrap(), None, "nor taken up");
        let run = store.job_runs(Some("nightly"), 10).await.unwrap().into_iter().find(|r| r.id == first.id).unwrap();
        assert_eq!((run.status, run.sync_runs.clone(), run.error), (JobRunStatus::Succeeded, vec![3, 9], None));
        assert_eq!((run.started_at, run.finished_at), (Some(slot(10, 21)), Some(slot(10, 22))));

        // Interrupted: open again at once, and taken up as resumed.
        let weekly = store.insert_job_run(&new_run("weekly", slot(10, 0), JobTrigger::CatchUp)).await.unwrap().unwrap();
        store.start_job_run(weekly.id, &claim(a), slot(10, 0)).await.unwrap().unwrap();
        let stop = JobEnd {
            status: JobRunStatus::Interrupted,
            error: Some("stopped by SIGTERM"),
            error_kind: Some(RunErrorKind::Stopped),
            retry_at: None,
            at: slot(10, 1),
        };
        assert!(store.finish_job_run(weekly.id, a, &stop).await.unwrap());
        let open: Vec<_> = store.open_job_runs(slot(10, 1), 10).await.unwrap();
        assert!(open.iter().any(|r| r.id == weekly.id && r.status == JobRunStatus::Interrupted), "{open:?}");
        assert_eq!(store.start_job_run(weekly.id, &claim(b), slot(10, 2)).await.unwrap().unwrap().resumed, 1);

        // The newest run of each job (by slot), and a job's runs newest first.
        let last = store.last_job_runs().await.unwrap();
        let last: Vec<(&str, chrono::DateTime<chrono::Utc>)> =
            last.iter().map(|r| (r.job.as_str(), r.scheduled_at)).collect();
        assert_eq!(last, vec![("nightly", slot(11, 0)), ("weekly", slot(10, 0))]);
        let slots: Vec<_> = store.job_runs(Some("nightly"), 10).await.unwrap().iter().map(|r| r.scheduled_at).collect();
        assert_eq!(slots, vec![slot(11, 0), slot(10, 0)]);
        assert_eq!(store.job_runs(None, 10).await.unwrap().len(), 3);
    }

    /// Two workers recording the same slot at once: one row.
    pub async fn concurrent_records_of_a_slot_make_one_row(env: &Env) {
        let (a, b) = (env.open().await, env.open().await);
        for minute in 0..10 {
            let new = new_run("nightly", slot(10, minute), JobTrigger::Schedule);
            let (x, y) = tokio::join!(a.insert_job_run(&new), b.insert_job_run(&new));
            assert_eq!(x.unwrap().is_some() as u8 + y.unwrap().is_some() as u8, 1, "minute {minute}");
        }
        assert_eq!(a.job_runs(None, 100).await.unwrap().len(), 10);
    }

    /// Сводные показатели журнала (P10): a small journal written by hand, each figure
    /// counted here from the records the test wrote. SRC is the school's journal (people,
    /// lessons, homework, marks, enrollments, an acknowledgement), OTHER lists its guardians
    /// and their activity. Spans: the second quarter first, then the first (a day counts in
    /// the first span that holds it; a finding without a day counts in the first span it was
    /// open in).
    pub async fn journal_aggregates_count_the_journal_in_the_store(env: &Env) {
        use ejgate::store::{AggregateRequest, SchoolAggregates, SpanAggregates, StoredFinding};
        let store = env.open().await;
        let person = |source: &str, key: &str, roles: &[&str]| {
            upsert(
                source,
                ChangeOp::Insert,
                EntityKind::Person,
                key,
                "",
                None,
                json!({"last_name": key, "roles": roles}),
            )
        };
        let pid = |source: &str, key: &str| id_of(source, EntityKind::Person, key).to_string();
        let unit = |key: &str| id_of(SRC, EntityKind::Class, key).to_string();
        let subject = |key: &str| id_of(SRC, EntityKind::Subject, key).to_string();
        let lid = |key: &str| id_of(SRC, EntityKind::Lesson, key).to_string();
        let lesson = |key: &str, u: &str, subj: Option<&str>, day: &str, topic: Value, status: &str| {
            upsert(
                SRC,
                ChangeOp::Insert,
                EntityKind::Lesson,
                key,
                "",
                Some(day),
                json!({"unit": unit(u), "subject": subj.map(subject), "date": day, "topic": topic, "status": status}),
            )
        };
        let homework = |key: &str, l: &str| {
            upsert(SRC, ChangeOp::Insert, EntityKind::Homework, key, "", None, json!({"lesson": lid(l), "text": "§1"}))
        };
        let mark = |key: &str, st: &str, l: &str, at: Option<&str>| {
            upsert(
                SRC,
                ChangeOp::Insert,
                EntityKind::Mark,
                key,
                "",
                None,
                json!({"student": pid(SRC, st), "lesson": lid(l), "value": "5", "entered_at": at}),
            )
        };
        let enrol = |key: &str, st: &str, u: &str, status: &str| {
            upsert(
                SRC,
                ChangeOp::Insert,
                EntityKind::Enrollment,
                key,
                "",
                None,
                json!({"student": pid(SRC, st), "unit": unit(u), "status": status}),
            )
        };
        let journal = vec![
            person(SRC, "s1", &["student"]),
            person(SRC, "s2", &["student"]),
            person(SRC, "s3", &["student"]),
            person(SRC, "s4", &["student"]),
            person(SRC, "t1", &["staff"]),
            person(SRC, "g1", &["guardian"]),
            enrol("e1", "s1", "u1", "active"),
            enrol("e2", "s2", "u1", "active"),
            enrol("e3", "s3", "u1", "archived"),
            enrol("e4", "s3", "u2", "active"),
            enrol("e5", "s1", "u2", "active"),
            lesson("L1", "u1", Some("a"), "2025-11-10", json!("Дроби"), "held"),
            lesson("L2", "u1", Some("b"), "2025-11-11", json!("  "), "held"),
            lesson("L3", "u2", Some("a"), "2025-12-01", Value::Null, "held"),
            lesson("L4", "u1", Some("a"), "2025-11-12", json!("Отменённый"), "cancelled"),
            lesson("L5", "u1", Some("a"), "2025-09-15", json!("Натуральные числа"), "held"),
            lesson("L6", "u1", Some("b"), "2026-01-20", json!("После четверти"), "held"),
            lesson("L7", "u2", None, "2025-12-02", json!("\u{a0}\t"), "held"),
            homework("H1", "L1"),
            homework("H2", "L1"),
            homework("H3", "L3"),
            homework("H4", "L4"),
            homework("H5", "L5"),
            mark("M1", "s1", "L1", Some("2025-11-10T15:59:59")),
            mark("M2", "s2", "L1", Some("2025-11-10T16:00:00")),
            mark("M3", "s1", "L2", Some("2025-11-11T16:00:00.500")),
            mark("M4", "s3", "L3", Some("2025-12-02T09:00:00")),
            mark("M5", "s1", "L3", None),
            mark("M6", "s1", "L4", Some("2025-11-12T10:00:00")),
            mark("M7", "s2", "L5", Some("2025-09-15T10:00:00")),
            mark("M8", "s2", "L1", Some("2025-11-10T10:00:00")),
            upsert(
                SRC,
                ChangeOp::Insert,
                EntityKind::Acknowledgement,
                "A1",
                "",
                None,
                json!({"guardian": pid(SRC, "g1"), "student": pid(SRC, "s1"), "at": "2025-10-01T20:00:00"}),
            ),
        ];
        let gone: Vec<(Uuid, EntityKind)> =
            journal.iter().filter(|u| u.source_id == "s4" || u.source_id == "M8").map(|u| (u.id, u.kind)).collect();
        let run = store.begin_run(SRC, "full").await.unwrap();
        store.apply(run, SRC, &inserts(journal), &[]).await.unwrap();
        store.apply(run, SRC, &ChangeSet { deletes: gone, ..Default::default() }, &[]).await.unwrap();
        let activity = |key: &str, who: &str, day: &str| {
            upsert(
                OTHER,
                ChangeOp::Insert,
                EntityKind::UserActivity,
                key,
                "",
                None,
                json!({"person": pid(OTHER, who), "date": day, "action": "login", "count": 1}),
            )
        };
        let other = vec![
            person(OTHER, "g2", &["guardian"]),
            person(OTHER, "g3", &["guardian"]),
            person(OTHER, "t2", &["staff"]),
            activity("U1", "g2", "2025-11-20"),
            activity("U2", "g2", "2025-11-21"),
            activity("U3", "t2", "2025-11-20"),
        ];
        let run = store.begin_run(OTHER, "full").await.unwrap();
        store.apply(run, OTHER, &inserts(other), &[]).await.unwrap();
        let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
        let finding = |key: &str, rule: &str, day: Option<&str>, first: &str, fixed: Option<&str>| StoredFinding {
            key: key.into(),
            rule: rule.into(),
            clause: "S1 5.5".into(),
            severity: "medium".into(),
            teacher: None,
            class: None,
            subject: None,
            date: day.map(date),
            lesson: None,
            mark: None,
            what: "что".into(),
            evidence: "чем".into(),
            first_detected: at(first),
            last_detected: at(first),
            fixed_at: fixed.map(at),
        };
        let findings = [
            finding("f1", "M1", Some("2025-11-10"), "2025-11-11T08:00:00Z", None),
            finding("f2", "M1", Some("2025-09-20"), "2025-09-21T08:00:00Z", Some("2025-09-22T08:00:00Z")),
            finding("f3", "M3", Some("2025-11-11"), "2025-11-12T08:00:00Z", None),
            finding("f4", "M22", None, "2025-09-05T08:00:00Z", None),
            finding("f5", "M22", None, "2025-09-02T08:00:00Z", Some("2025-10-01T08:00:00Z")),
            finding("f6", "M1", Some("2026-02-01"), "2026-02-02T08:00:00Z", None),
        ];
        store.write_findings("Школа 1", &findings, &[]).await.unwrap();
        store.write_findings("Школа 2", &findings[..1], &[]).await.unwrap();

        let q2 = DateRange::new(date("2025-11-05"), date("2025-12-28"));
        let q1 = DateRange::new(date("2025-09-01"), date("2025-10-26"));
        let requests = [
            AggregateRequest {
                sources: vec![SRC.into(), OTHER.into()],
                spans: vec![q2, q1],
                mark_due_seconds: Some(16 * 3600),
                findings_school: Some("Школа 1".into()),
            },
            AggregateRequest {
                sources: vec![OTHER.into()],
                spans: vec![],
                mark_due_seconds: None,
                findings_school: None,
            },
            AggregateRequest {
                sources: vec!["nobody".into()],
                spans: vec![q1],
                mark_due_seconds: None,
                findings_school: Some("Школа 3".into()),
            },
        ];
        let got = store.journal_aggregates(&requests).await.unwrap();
        let rules = |r: &[(&str, u64)]| r.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        // Q2: held L1, L2, L3, L7; topic only L1 (L2 and L7 blank); homework at L1 and L3;
        // marks M1–M5 (M6 of a cancelled lesson, M8 deleted), M5 without a time, on time M1
        // and M2 (16:00:00 is on time, 16:00:00.5 is not); pairs (s1,a) (s2,a) (s1,b) (s2,b)
        // (s3,a) — s3 left u1, L7 has no subject; g2 read (t2 is staff).
        let second = SpanAggregates {
            lessons: 4,
            with_topic: 1,
            with_homework: 2,
            marks: 5,
            marks_judged: 4,
            marks_on_time: 2,
            student_subjects: 5,
            guardians_reading: 1,
            findings: rules(&[("M1", 1), ("M3", 1), ("M22", 1)]),
        };
        let first = SpanAggregates {
            lessons: 1,
            with_topic: 1,
            with_homework: 1,
            marks: 1,
            marks_judged: 1,
            marks_on_time: 1,
            student_subjects: 2,
            guardians_reading: 1,
            findings: rules(&[("M1", 1), ("M22", 1)]),
        };
        assert_eq!(
            got[0],
            SchoolAggregates {
                students: 3,
                staff: 1,
                guardians: Some(2),
                reading_told: true,
                spans: vec![second, first]
            }
        );
        assert_eq!(
            got[1],
            SchoolAggregates { students: 0, staff: 1, guardians: Some(2), reading_told: true, spans: vec![] }
        );
        assert_eq!(got[2], SchoolAggregates { spans: vec![SpanAggregates::default()], ..Default::default() });
        assert_eq!(got.len(), 3);
        assert!(store.journal_aggregates(&[]).await.unwrap().is_empty());
    }

    /// The store's own inspection (what a backup's manifest keeps and a restore is checked
    /// against): rows per table, the newest migration, and what the consistency check finds
    /// once a change-log row has lost its record and a cursor was written outside every run;
    /// the backup-usage log keeps who, when, why.
    pub async fn inspect_counts_rows_and_the_consistency_check_finds_breakage(env: &Env) {
        let store = env.open().await;
        let run = store.begin_run(SRC, "full").await.unwrap();
        let batch = vec![mark(ChangeOp::Insert, "1", "5"), mark(ChangeOp::Insert, "2", "4")];
        store.apply(run, SRC, &inserts(batch), &[cursor("c1")]).await.unwrap();
        store.finish_run(run, RunStatus::Succeeded, None, &RunStats::default()).await.unwrap();
        let i = store.inspect().await.unwrap();
        for (table, n) in [("records", 2), ("changes", 2), ("cursors", 1), ("sync_runs", 1), ("backup_log", 0)] {
            assert_eq!(i.tables.get(table), Some(&n), "{table}: {:?}", i.tables);
        }
        assert!(i.problems.is_empty(), "{:?}", i.problems);
        // The newest migration: the largest version among the backend's migration files.
        let dir = format!("{}/src/store/migrations/{}", env!("CARGO_MANIFEST_DIR"), store.backend());
        let newest = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().into_string().unwrap().split('_').next()?.parse::<i64>().ok())
            .max()
            .unwrap();
        assert_eq!(i.schema_version, newest);

        env.exec("DELETE FROM records WHERE source_id = '1'").await;
        env.exec("UPDATE cursors SET updated_at = '2000-01-01T00:00:00.000000Z'").await;
        let problems = store.inspect().await.unwrap().problems;
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("(mark 1 of dnevnik-1) has no record")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("outside every run of its source")), "{problems:?}");

        let entry = BackupUse {
            at: ejgate::store::now_micros(),
            action: BackupAction::Restore,
            backup_id: Some("20261205T120000.000Z".into()),
            who: "директор".into(),
            why: Some("проверка восстановления".into()),
            outcome: BackupOutcome::Ok,
            detail: "restored into /tmp/x.db".into(),
        };
        store.log_backup_use(&entry).await.unwrap();
        assert_eq!(store.backup_uses(10).await.unwrap(), vec![entry]);
    }

    /// The register of paper copies (A4, R4): numbers per school from 1, in the order the
    /// copies were entered (two writers at once get different numbers), changes of who
    /// signed, where kept and the hand-over to the secretary, a missing number refused.
    pub async fn the_register_of_paper_copies_numbers_per_school(env: &Env) {
        let (a, b) = (env.open().await, env.open().await);
        let copy = |school: &str, class: &str, sheets: u32| PaperCopy {
            school: school.into(),
            number: 99,
            class: class.into(),
            school_year: "2025/2026".into(),
            title: "копия журнала, 1 четверть".into(),
            sheets,
            signed_by: None,
            kept_at: Some("кабинет 12, шкаф 3".into()),
            handed_on: None,
            handed_to: None,
            recorded_at: ejgate::store::now_micros(),
            recorded_by: "секретарь".into(),
        };
        assert_eq!(a.add_paper_copy(&copy("МБОУ СОШ № 7", "5А", 12)).await.unwrap(), 1);
        assert_eq!(a.add_paper_copy(&copy("МБОУ СОШ № 7", "5Б", 10)).await.unwrap(), 2);
        assert_eq!(a.add_paper_copy(&copy("Школа 2", "1А", 4)).await.unwrap(), 1);
        // Two writers at once: two numbers, no refusal.
        let (six_a, six_b) = (copy("МБОУ СОШ № 7", "6А", 8), copy("МБОУ СОШ № 7", "6Б", 9));
        let (x, y) = tokio::join!(a.add_paper_copy(&six_a), b.add_paper_copy(&six_b));
        let mut numbers = vec![x.unwrap(), y.unwrap()];
        numbers.sort();
        assert_eq!(numbers, [3, 4]);
        let handed = date("2026-11-06");
        let change = PaperCopyChange {
            signed_by: Some("И. П. Сидорова".into()),
            handed_on: Some(handed),
            handed_to: Some("О. В. Петрова".into()),
            ..Default::default()
        };
        assert!(a.set_paper_copy("МБОУ СОШ № 7", 2, &change).await.unwrap());
        assert!(!a.set_paper_copy("МБОУ СОШ № 7", 40, &change).await.unwrap());
        assert!(!a.set_paper_copy("Школа 3", 2, &change).await.unwrap());
        let school = b.paper_copies(Some("МБОУ СОШ № 7")).await.unwrap();
        assert_eq!(school.iter().map(|c| c.number).collect::<Vec<_>>(), [1, 2, 3, 4]);
        let second = &school[1];
        assert_eq!((second.class.as_str(), second.sheets), ("5Б", 10));
        assert_eq!(second.signed_by.as_deref(), Some("И. П. Сидорова"));
        assert_eq!(second.handed_on, Some(handed));
        assert_eq!(second.handed_to.as_deref(), Some("О. В. Петрова"));
        // what was not changed stays
        assert_eq!(second.kept_at.as_deref(), Some("кабинет 12, шкаф 3"));
        assert_eq!(school[0].signed_by, None);
        assert_eq!(school[0].recorded_by, "секретарь");
        // the time it was entered, to the microsecond
        let entered = copy("Школа 4", "2А", 3);
        a.add_paper_copy(&entered).await.unwrap();
        assert_eq!(b.paper_copies(Some("Школа 4")).await.unwrap()[0].recorded_at, entered.recorded_at);
        assert_eq!(b.paper_copies(None).await.unwrap().len(), 6);
        assert_eq!(b.paper_copies(Some("Школа 2")).await.unwrap()[0].class, "1А");
    }
}

// ---- wiring: every scenario against every backend -----------------------------------

macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let env = super::Env::sqlite().await;
                    super::scenarios::$name(&env).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let env = super::Env::postgres().await;
                    super::scenarios::$name(&env).await;
                }
            )*
        }
    };
}

store_suite!(
    migrations_are_idempotent,
    insert_then_counts,
    holds_source_tells_whether_a_source_has_records,
    update_logs_before_and_after,
    unchanged_seen_logs_nothing,
    delete_makes_tombstone_and_logs_before,
    reinsert_over_tombstone,
    key_change_is_logged_as_such,
    cursor_moves_only_with_a_committed_apply,
    failed_apply_writes_nothing,
    existing_by_ids_and_coverage,
    change_seq_strictly_increases_across_runs,
    concurrent_applies_keep_batches_whole_in_the_log,
    begin_run_interrupts_a_stale_running_run,
    runs_list_newest_first_and_stats_round_trip,
    every_error_kind_is_kept_with_its_run,
    changes_of_run_keeps_its_own_rows_in_order,
    records_are_ordered_by_source_id,
    visit_records_hands_over_live_contents_and_first_seen,
    raw_records_stream_the_live_rows_in_order,
    big_batches_cross_statement_boundaries,
    a_lease_has_one_holder_until_released_or_expired,
    concurrent_lease_requests_have_one_winner,
    two_syncs_of_one_source_one_is_refused,
    run_totals_add_up_runs_and_last_runs_are_the_newest_finished,
    api_tokens_keep_their_hash_and_revocation,
    job_run_totals_add_up_the_job_runs,
    job_runs_are_recorded_once_and_closed_by_their_claim_holder,
    concurrent_records_of_a_slot_make_one_row,
    inspect_counts_rows_and_the_consistency_check_finds_breakage,
    journal_aggregates_count_the_journal_in_the_store,
    the_register_of_paper_copies_numbers_per_school,
);

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for url in ["mysql://localhost/db", "store.db", ""] {
        assert!(matches!(store::open(url).await, Err(StoreError::UnsupportedUrl(_))), "{url}");
    }
}

#[tokio::test]
async fn sqlite_in_memory_store_works() {
    let store = store::open("sqlite::memory:").await.unwrap();
    let run = store.begin_run(SRC, "full").await.unwrap();
    store.apply(run, SRC, &inserts(vec![mark(ChangeOp::Insert, "1", "5")]), &[cursor("c")]).await.unwrap();
    assert_eq!(store.counts(None).await.unwrap(), vec![count(EntityKind::Mark, 1, 0)]);
    assert_eq!(store.changes_of_run(run).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_file_is_in_wal_mode() {
    let env = Env::sqlite().await;
    let _store = env.open().await;
    let mut conn = sqlx::SqliteConnection::connect(&env.url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    assert_eq!(mode, "wal");
}

/// The store holds pupils' personal data: a new SQLite file and its WAL are created 0600
/// (they were 0644, readable by every user of the machine).
#[cfg(unix)]
#[tokio::test]
async fn a_new_sqlite_store_and_its_wal_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::sqlite().await;
    let store = env.open().await;
    let run = store.begin_run(SRC, "full").await.unwrap();
    store.apply(run, SRC, &inserts(vec![mark(ChangeOp::Insert, "1", "5")]), &[]).await.unwrap();
    let path = env.url.strip_prefix("sqlite://").unwrap();
    for file in [path.to_string(), format!("{path}-wal")] {
        let mode = std::fs::metadata(&file).unwrap_or_else(|e| panic!("{file}: {e}")).permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

#[tokio::test]
async fn a_sqlite_store_in_a_missing_directory_or_without_a_path_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir");
    let e = store::open(&format!("sqlite://{}/ejgate.db", missing.display())).await.err().unwrap().to_string();
    assert!(e.contains(&missing.display().to_string()) && e.contains("mkdir -p"), "{e}");
    let e = store::open("sqlite://").await.err().unwrap().to_string();
    assert!(e.contains("names no file"), "{e}");
}

/// PostgreSQL on a wrong port had taken 30 s to say «pool timed out», with no host or port;
/// a missing database read «… at line 948». Now both are one line naming the place, at once.
#[tokio::test]
async fn postgres_connection_errors_name_the_host_the_port_and_what_to_do() {
    let admin_url =
        std::env::var("EJGATE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    // Port 1 on loopback: nothing listens there, the OS refuses at once.
    let e = store::open("postgres://postgres@127.0.0.1:1/test").await.err().unwrap().to_string();
    assert!(e.contains("127.0.0.1:1") && e.contains("refused") && e.contains("pg_isready"), "{e}");

    let base = admin_url.rsplit_once('/').unwrap().0;
    let e = store::open(&format!("{base}/ejgate_no_such_database")).await.err().unwrap().to_string();
    assert!(e.contains("«ejgate_no_such_database»") && e.contains("does not exist") && e.contains("createdb"), "{e}");
    assert!(!e.contains(" line "), "{e}");
}
