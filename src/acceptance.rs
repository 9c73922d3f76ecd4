//! The connector acceptance kit's runner (issue #3, item 8): one set of checks every
//! connector must pass, run against its emulated system.
//!
//! The kit is in two parts. Its **contract** is in the SDK
//! (`ejgate_sdk::acceptance::EmulatedSystem`): what every connector crate implements over
//! its emulator (the synthetic school served, a connector pointed at it, advancing the
//! school, the ground truth of what the system exposes, the failures it can show). The
//! **runner** is here, because the checks need the store and the sync engine, which live in
//! this package and which the SDK cannot depend on. The runner takes `&dyn EmulatedSystem`,
//! so it knows no connector; `tests/acceptance.rs` runs it once per connector.
//!
//! Behind the `acceptance` feature (tests; production builds do not carry it).
//!
//! The checks, in order, each one of them able to fail (counts must be non-empty, the
//! failures must really happen):
//!
//! - **(a) ground truth** — a full sync into an empty store succeeds without warnings and
//!   holds exactly the expected live records per kind; every kind the connector claims to
//!   fill has records; and every stored record holds the values the world says it must
//!   ([`check_values`]: field by field against `ejgate_sdk::synth::expected`, leaving out
//!   only the fields the system's `SystemTruth` declares not exposed), so a connector that
//!   stored every mark as «5» fails here although its counts are right.
//! - **(b) idempotence** — an incremental and then a full re-sync without change read
//!   records and write nothing (no insert, update or delete, no change-log row).
//! - **(c) changes** — after the school lives six more days, an incremental sync logs
//!   exactly the generator's net changes of exposed records (insert / update / delete per
//!   kind and source id; inserts and deletes among them), and the store matches the truth.
//! - **(d) failures**, each the system declares, one at a time after a day of school life:
//!   - from the first request: the run fails; its error names the source (`source «…» (…)`),
//!     the endpoint or file and what went wrong, and shows no token; the store records the
//!     run as failed with that error; the live records are exactly those before the run;
//!     if the source stays dead until the operator signs in again, one more run fails and
//!     then the operator renews; then the next run completes and matches the truth;
//!   - in the middle of a full sync into an empty store (after N requests, one chunk at a
//!     time): the run fails naming a data endpoint; the batches committed before stay and the
//!     change log holds exactly them; the next run completes;
//!   - the request limit: a sync runs into it (the system counts refused requests) and
//!     completes without an error, matching the truth.
//! - **(e) after the year** ([`after_the_year`], on a second system whose school is
//!   simulated past its last lesson) — a full sync into an empty store matches the truth,
//!   marks entered after the last lesson included, and an incremental re-sync writes
//!   nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ejgate_sdk::acceptance::{EmulatedSystem, Failure, FailureCase};
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::NetOp;

use crate::store::{ChangeOp, RunStatus, SqliteStore, Store};
use crate::sync::{run_sync, SyncOptions, SyncReport};

/// How many days the school lives before check (c).
pub const ADVANCE_DAYS: u32 = 6;

/// What a kit run checked, for the test's output and for asserting coverage.
#[derive(Debug, Default)]
pub struct KitReport {
    pub system: String,
    /// Each passed check, in order (`(a) ground truth: 15 kinds, 2345 records`).
    pub passed: Vec<String>,
    /// The failures exercised.
    pub failures: Vec<Failure>,
}

/// A fresh SQLite store in its own temporary directory.
struct TempStore {
    store: Box<dyn Store>,
    _dir: tempfile::TempDir,
}

impl TempStore {
    async fn new() -> TempStore {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
        let store: Box<dyn Store> = Box::new(SqliteStore::open(&url).await.expect("the store opens"));
        TempStore { store, _dir: dir }
    }
}

/// Runs every check of the kit against `system`; panics (with what differs) on the first
/// that fails.
pub async fn run(system: &dyn EmulatedSystem) -> KitReport {
    let mut report = KitReport { system: system.system().to_string(), ..KitReport::default() };
    let declared = system.failures();
    assert!(
        declared.iter().any(|c| c.failure.fails_the_run() && c.after_requests == 0),
        "{}: the system declares no failure to check",
        system.system()
    );

    let main = TempStore::new().await;
    let store = main.store.as_ref();
    ground_truth(system, store, &mut report).await;
    idempotence(system, store, &mut report).await;
    changes(system, store, &mut report).await;
    for case in &declared {
        if !case.failure.fails_the_run() {
            request_limit(system, store, case, &mut report).await;
        } else if case.after_requests == 0 {
            failure_at_start(system, store, case, &mut report).await;
        }
    }
    for case in declared.iter().filter(|c| c.failure.fails_the_run() && c.after_requests > 0) {
        failure_mid_run(system, case, &mut report).await;
    }
    report
}

async fn sync(system: &dyn EmulatedSystem, store: &dyn Store, mode: SyncMode, concurrency: usize) -> SyncReport {
    let connector = system.connector().unwrap_or_else(|e| panic!("{}: the connector builds: {e}", system.system()));
    run_sync(store, connector, &SyncOptions { mode, concurrency, ..SyncOptions::default() })
        .await
        .expect("the store records the run")
}

async fn sync_ok(system: &dyn EmulatedSystem, store: &dyn Store, mode: SyncMode, what: &str) -> SyncReport {
    let report = sync(system, store, mode, SyncOptions::default().concurrency).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{}: {what}: {:?}", system.system(), report.error);
    report
}

async fn live_counts(store: &dyn Store) -> BTreeMap<EntityKind, u64> {
    store.live_counts(None).await.expect("counts")
}

async fn assert_matches_truth(system: &dyn EmulatedSystem, store: &dyn Store, what: &str) {
    let expected = system.expected_now();
    assert!(!expected.is_empty(), "{}: {what}: the ground truth is empty", system.system());
    let live = live_counts(store).await;
    if live != expected {
        let differing: Vec<_> = expected
            .keys()
            .chain(live.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| live.get(k) != expected.get(k))
            .map(|k| format!("{k}: stored {:?}, expected {:?}", live.get(k), expected.get(k)))
            .collect();
        panic!("{}: {what}: the store differs from the ground truth: {differing:?}", system.system());
    }
}

/// The requests `ejgate status` shows for a run (its stored statistics) are the requests
/// the emulated source answered during it: planning's, retries and refreshes included
/// (issue #16).
async fn status_counts_what_the_source_answered(
    system: &dyn EmulatedSystem,
    store: &dyn Store,
    run: crate::store::RunId,
    answered: u64,
    what: &str,
) {
    // A system without requests (files) has nothing to compare.
    if system.requests() == 0 {
        return;
    }
    assert!(answered > 0, "{}: {what}: the source answered requests", system.system());
    let status = crate::status::status(store, &[], 50).await.expect("the status");
    let shown = status.runs.iter().find(|r| r.run.id == run).expect("the run is in the status");
    assert_eq!(
        shown.run.stats.requests,
        answered,
        "{}: {what}: `ejgate status` shows the requests the source answered",
        system.system()
    );
}

/// (a) A sync into an empty store reproduces the ground truth for every exposed kind.
async fn ground_truth(system: &dyn EmulatedSystem, store: &dyn Store, report: &mut KitReport) {
    let name = system.system();
    assert!(live_counts(store).await.is_empty(), "{name}: the store starts empty");
    let expected = system.expected_now();
    let claimed: BTreeSet<EntityKind> = system.truth().exposed.iter().copied().collect();
    let with_records: BTreeSet<EntityKind> = expected.iter().filter(|(_, n)| **n > 0).map(|(k, _)| *k).collect();
    assert!(!claimed.is_empty(), "{name}: the connector fills no kind");
    assert_eq!(with_records, claimed, "{name}: every kind the connector fills has records in the school");

    let asked = system.requests();
    let first = sync_ok(system, store, SyncMode::Full, "(a) the first full sync").await;
    status_counts_what_the_source_answered(system, store, first.run, system.requests() - asked, "(a)").await;
    if !system.warnings_expected() {
        assert!(first.stats.warnings.is_empty(), "{name}: the code tables know every code: {:?}", first.stats.warnings);
    }
    assert_eq!(first.stats.inserted, expected.values().sum::<u64>(), "{name}: every record inserted once");
    assert_matches_truth(system, store, "(a) after the first full sync").await;
    report.passed.push(format!(
        "(a) ground truth: {} kinds, {} records",
        expected.len(),
        expected.values().sum::<u64>()
    ));
    let values = check_values(system, store).await;
    assert!(values.passed(), "{name}: (a) the stored values differ from the ground truth:\n{}", values.render());
    report.passed.push(format!(
        "(a) values: {} records compared field by field ({} fields not exposed: {})",
        values.compared,
        values.not_exposed.len(),
        values.not_exposed.join(", ")
    ));
}

/// Examples kept per differing field.
pub const VALUE_EXAMPLES: usize = 5;

/// One field of one kind that differs from the ground truth.
#[derive(Debug, Clone, Default)]
pub struct FieldMismatch {
    /// How many records differ in this field.
    pub count: u64,
    /// (source id, expected, stored), the first [`VALUE_EXAMPLES`].
    pub examples: Vec<(String, String, String)>,
}

/// What the value check found: every stored record compared field by field with the
/// record the synthetic world says it must be.
#[derive(Debug, Clone, Default)]
pub struct ValueCheck {
    /// Stored records compared.
    pub compared: u64,
    /// Stored records the world has no record for (kind, source id), the first few, and
    /// their count.
    pub unexpected: Vec<(EntityKind, String)>,
    pub unexpected_count: u64,
    /// (kind, field) → how it differs.
    pub mismatches: BTreeMap<(EntityKind, String), FieldMismatch>,
    /// The fields left out (`kind.field`): those the system does not expose (its
    /// `SystemTruth`) and the source's own codes.
    pub not_exposed: Vec<String>,
}

impl ValueCheck {
    pub fn passed(&self) -> bool {
        self.compared > 0 && self.unexpected_count == 0 && self.mismatches.is_empty()
    }

    /// What differs, for a person: per kind and field, the count and the first examples.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for ((kind, field), m) in &self.mismatches {
            out.push_str(&format!("  {kind}.{field}: {} record(s) differ\n", m.count));
            for (id, expected, stored) in &m.examples {
                out.push_str(&format!("    {kind} {id}: expected {expected}, stored {stored}\n"));
            }
        }
        if self.unexpected_count > 0 {
            out.push_str(&format!(
                "  {} stored record(s) the world does not have, e.g. {:?}\n",
                self.unexpected_count, self.unexpected
            ));
        }
        if self.compared == 0 {
            out.push_str("  no record compared\n");
        }
        out
    }
}

/// A full sync of `connector` (pointed at `system`) into a fresh store, then the value check
/// (for a test that a wrong connector fails it: a wrapper around the system's connector).
pub async fn values_after_a_full_sync(
    system: &dyn EmulatedSystem,
    connector: std::sync::Arc<dyn ejgate_sdk::Connector>,
) -> ValueCheck {
    let fresh = TempStore::new().await;
    let store = fresh.store.as_ref();
    let options = SyncOptions { mode: SyncMode::Full, ..SyncOptions::default() };
    let run = run_sync(store, connector, &options).await.expect("the store records the run");
    assert_eq!(run.status, RunStatus::Succeeded, "{}: the full sync: {:?}", system.system(), run.error);
    check_values(system, store).await
}

/// Two portable field values are the same: numbers by value (`1` and `1.0`), a missing
/// field as `null` (fields left out of the content when unset).
fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-9,
            _ => x == y,
        },
        _ => a == b,
    }
}

/// Compares every live record the connector stored with its expected twin computed from the
/// world (`ejgate_sdk::synth::expected`), field by field. The fields the system's
/// `SystemTruth` declares not exposed are left out, and so are the source's own codes
/// (`compare::SOURCE_CODES`); references are compared by the kind and source id of what they
/// point at (`compare::RefForm::SourceId`), date-times the system gives to the minute to the
/// minute. Which records exist is check (a)'s counts; this checks what they hold.
pub async fn check_values(system: &dyn EmulatedSystem, store: &dyn Store) -> ValueCheck {
    use crate::compare::{Portable, RefForm, SourceRecords, SOURCE_CODES};
    use ejgate_sdk::model::IdSpace;
    use ejgate_sdk::synth::expected::ExpectedRecords;

    let truth = system.truth();
    let mut expected = ExpectedRecords::default();
    let ids = IdSpace::new(system.instance());
    system.read_world(&mut |w| expected = ExpectedRecords::of(w, &ids));
    let want = SourceRecords::of_records(expected.records.values());
    let stored = SourceRecords::load(store, system.instance()).await.expect("the stored records");
    let left_out: BTreeSet<(EntityKind, &'static str)> =
        truth.not_exposed_fields.iter().chain(SOURCE_CODES).copied().collect();
    let to_the_minute: BTreeSet<(EntityKind, &'static str)> = truth.to_the_minute_fields.iter().copied().collect();
    let mut pw = Portable::new(&want, &left_out, &to_the_minute, RefForm::SourceId);
    let mut ps = Portable::new(&stored, &left_out, &to_the_minute, RefForm::SourceId);

    let mut check =
        ValueCheck { not_exposed: left_out.iter().map(|(k, f)| format!("{k}.{f}")).collect(), ..ValueCheck::default() };
    let mut rows: Vec<(EntityKind, &str, &serde_json::Value)> = stored.iter().collect();
    rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (kind, source_id, content) in rows {
        let Some(twin) = expected.get(kind, source_id) else {
            check.unexpected_count += 1;
            if check.unexpected.len() < VALUE_EXAMPLES {
                check.unexpected.push((kind, source_id.to_string()));
            }
            continue;
        };
        check.compared += 1;
        let twin = serde_json::from_slice(&twin.entity.content_json()).expect("content is JSON");
        let want_fields = pw.fields(kind, &twin);
        let got_fields = ps.fields(kind, content);
        let names: BTreeSet<&String> = want_fields.keys().chain(got_fields.keys()).collect();
        for name in names {
            let null = serde_json::Value::Null;
            let (w, g) = (want_fields.get(name).unwrap_or(&null), got_fields.get(name).unwrap_or(&null));
            if same_value(w, g) {
                continue;
            }
            let m = check.mismatches.entry((kind, name.clone())).or_default();
            m.count += 1;
            if m.examples.len() < VALUE_EXAMPLES {
                m.examples.push((source_id.to_string(), w.to_string(), g.to_string()));
            }
        }
    }
    check
}

/// (b) A re-sync without change writes nothing.
async fn idempotence(system: &dyn EmulatedSystem, store: &dyn Store, report: &mut KitReport) {
    let name = system.system();
    for mode in [SyncMode::Incremental, SyncMode::Full] {
        let again = sync_ok(system, store, mode, "(b) a re-sync").await;
        assert!(again.stats.records_read > 0, "{name}: the {mode} re-sync read records");
        assert_eq!(
            (again.stats.inserted, again.stats.updated, again.stats.deleted),
            (0, 0, 0),
            "{name}: a {mode} re-sync without change writes nothing"
        );
        let logged = store.changes_of_run(again.run).await.expect("the change log");
        assert!(logged.is_empty(), "{name}: a {mode} re-sync logs no change: {:?}", &logged[..logged.len().min(5)]);
    }
    report.passed.push("(b) re-sync (incremental, full) writes nothing".into());
}

fn op_name(op: NetOp) -> &'static str {
    match op {
        NetOp::Insert => "insert",
        NetOp::Update => "update",
        NetOp::Delete => "delete",
    }
}

/// (c) After the school advances, exactly the generator's changes are logged.
async fn changes(system: &dyn EmulatedSystem, store: &dyn Store, report: &mut KitReport) {
    let name = system.system();
    let before = system.last_seq();
    system.advance(ADVANCE_DAYS);
    let expected: BTreeSet<(EntityKind, String, &str)> =
        system.exposed_changes_since(before).into_iter().map(|(k, key, op)| (k, key, op_name(op))).collect();
    assert!(expected.len() > 50, "{name}: {ADVANCE_DAYS} school days bring changes: {}", expected.len());
    for op in ["insert", "delete"] {
        assert!(expected.iter().any(|c| c.2 == op), "{name}: the generator's changes include a {op}");
    }

    let asked = system.requests();
    let run = sync_ok(system, store, SyncMode::Incremental, "(c) the sync after the school lived on").await;
    status_counts_what_the_source_answered(system, store, run.run, system.requests() - asked, "(c)").await;
    let logged: BTreeSet<(EntityKind, String, &str)> = store
        .changes_of_run(run.run)
        .await
        .expect("the change log")
        .into_iter()
        .map(|c| {
            let op = match c.op {
                ChangeOp::Insert => "insert",
                ChangeOp::Update | ChangeOp::KeyChange => "update",
                ChangeOp::Delete => "delete",
            };
            (c.kind, c.source_id, op)
        })
        .collect();
    let missing: Vec<_> = expected.difference(&logged).take(10).collect();
    let extra: Vec<_> = logged.difference(&expected).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: change log vs generator\nmissing {missing:?}\nextra {extra:?}"
    );
    assert_matches_truth(system, store, "(c) after the incremental sync").await;
    report
        .passed
        .push(format!("(c) {ADVANCE_DAYS} days later: exactly the generator's {} changes logged", expected.len()));
}

/// The error of a failed run says what the case expects and shows no secret; the store's
/// run log holds the same.
async fn check_error(system: &dyn EmulatedSystem, store: &dyn Store, case: &FailureCase, failed: &SyncReport) {
    let name = system.system();
    let f = case.failure;
    assert_eq!(failed.status, RunStatus::Failed, "{name}: {f:?} fails the run");
    let error = failed.error.clone().unwrap_or_else(|| panic!("{name}: {f:?}: a failed run has an error"));
    let source = format!("source «{}» ({name})", system.instance());
    assert!(error.contains(&source), "{name}: {f:?}: the error names the source: {error}");
    assert!(
        case.endpoints.iter().any(|e| error.contains(e.as_str())),
        "{name}: {f:?}: the error names the endpoint (one of {:?}): {error}",
        case.endpoints
    );
    for text in &case.expect {
        assert!(error.contains(text.as_str()), "{name}: {f:?}: the error says «{text}»: {error}");
    }
    for secret in system.secrets() {
        assert!(!error.contains(&secret), "{name}: {f:?}: the error never shows a token: {error}");
    }
    let runs = store.runs(1).await.expect("the run log");
    assert_eq!(runs.first().map(|r| r.id), Some(failed.run), "{name}: {f:?}: the run is in the run log");
    assert_eq!(runs[0].status, RunStatus::Failed, "{name}: {f:?}: the run is recorded as failed");
    assert_eq!(runs[0].error.as_deref(), Some(error.as_str()), "{name}: {f:?}: the run log keeps the error");
}

/// After a failure: switched off (and, when the source needs it, the operator signs in
/// again), the next run completes and the store matches the truth.
async fn recover(system: &dyn EmulatedSystem, store: &dyn Store, case: &FailureCase) {
    let name = system.system();
    let f = case.failure;
    system.clear();
    if case.needs_operator {
        let still = sync(system, store, SyncMode::Incremental, SyncOptions::default().concurrency).await;
        assert_eq!(still.status, RunStatus::Failed, "{name}: {f:?}: the source refuses until the operator renews");
        system.operator_renews();
    }
    sync_ok(system, store, SyncMode::Incremental, &format!("{f:?}: the next run")).await;
    assert_matches_truth(system, store, &format!("{f:?}: after the next run")).await;
}

/// (d) A failure from the first request of a run.
async fn failure_at_start(system: &dyn EmulatedSystem, store: &dyn Store, case: &FailureCase, report: &mut KitReport) {
    let f = case.failure;
    // A day of school life, so that the failed run has something it must not half-write
    // and the next run something to bring.
    system.advance(1);
    let committed = live_counts(store).await;
    assert!(!committed.is_empty(), "{}: {f:?}: the store holds an earlier sync", system.system());
    system.inject(f);
    let failed = sync(system, store, SyncMode::Incremental, SyncOptions::default().concurrency).await;
    check_error(system, store, case, &failed).await;
    assert_eq!(live_counts(store).await, committed, "{}: {f:?}: the failed run lost or wrote nothing", system.system());
    recover(system, store, case).await;
    report.failures.push(f);
    report.passed.push(format!(
        "(d) {f:?}: run failed naming the source and {}, nothing committed lost, next run completed{}",
        case.endpoints.join(" | "),
        if case.needs_operator { " after the operator renewed" } else { "" }
    ));
}

/// (d) A failure in the middle of a full sync into an empty store.
async fn failure_mid_run(system: &dyn EmulatedSystem, case: &FailureCase, report: &mut KitReport) {
    let name = system.system();
    let f = case.failure;
    let fresh = TempStore::new().await;
    let store = fresh.store.as_ref();
    let target = system.requests() + case.after_requests;
    let done = AtomicBool::new(false);
    let run = async {
        let r = sync(system, store, SyncMode::Full, 1).await;
        done.store(true, Ordering::SeqCst);
        r
    };
    let switch = async {
        loop {
            if done.load(Ordering::SeqCst) {
                return false;
            }
            if system.requests() >= target {
                system.inject(f);
                return true;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let (failed, switched) = tokio::join!(run, switch);
    assert!(switched, "{name}: {f:?}: the run made {} requests before its end", case.after_requests);
    check_error(system, store, case, &failed).await;
    assert!(failed.stats.inserted > 0, "{name}: {f:?}: batches before the failure were committed");
    let written = store.changes_since(0, u32::MAX).await.expect("the change log").len() as u64;
    assert_eq!(written, failed.stats.inserted, "{name}: {f:?}: exactly the committed batches are in the change log");
    let live: u64 = live_counts(store).await.values().sum();
    assert_eq!(live, failed.stats.inserted, "{name}: {f:?}: the committed records stay");
    recover(system, store, case).await;
    report.failures.push(f);
    report.passed.push(format!(
        "(d) {f:?} after {} requests: {} committed records kept, next run completed",
        case.after_requests, failed.stats.inserted
    ));
}

/// (d) The request limit is absorbed: the connector backs off and the run completes.
async fn request_limit(system: &dyn EmulatedSystem, store: &dyn Store, case: &FailureCase, report: &mut KitReport) {
    let name = system.system();
    let f = case.failure;
    system.advance(1);
    let limited = system.limited();
    system.inject(f);
    let run = sync(system, store, SyncMode::Full, SyncOptions::default().concurrency).await;
    system.clear();
    assert_eq!(run.status, RunStatus::Succeeded, "{name}: {f:?} is absorbed without an error: {:?}", run.error);
    let refused = system.limited() - limited;
    assert!(refused > 0, "{name}: {f:?}: the run reached the limit");
    assert_matches_truth(system, store, &format!("{f:?}: after the run")).await;
    report.failures.push(f);
    report.passed.push(format!("(d) {f:?}: {refused} refused requests absorbed, run completed"));
}

/// The day the kit's school is read after its year: three weeks after the last lesson
/// of the synthetic calendar (26 May 2026), so that marks entered after the last lesson
/// exist.
pub fn after_the_year_day() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 6, 15).expect("a date")
}

/// (e) A school whose year is over, served by a second system (the test starts it with a
/// world simulated past the last lesson, to [`after_the_year_day`]): a full sync into an
/// empty store reproduces the ground truth, the marks entered after the year's last lesson
/// included (a source that lists marks by the day they were entered must be read past the
/// year's end), and an incremental re-sync writes nothing.
pub async fn after_the_year(system: &dyn EmulatedSystem) -> String {
    let name = system.system();
    let mut late = 0;
    system.read_world(&mut |w| {
        late = w
            .schools
            .iter()
            .map(|s| s.marks.values().filter(|m| m.entered_at.date() > s.year.end).count())
            .sum::<usize>()
    });
    assert!(late > 0, "{name}: (e) the school has marks entered after its last lesson");
    let fresh = TempStore::new().await;
    let store = fresh.store.as_ref();
    sync_ok(system, store, SyncMode::Full, "(e) a full sync after the year").await;
    assert_matches_truth(system, store, "(e) after a full sync after the year").await;
    let again = sync_ok(system, store, SyncMode::Incremental, "(e) an incremental re-sync after the year").await;
    assert_eq!(
        (again.stats.inserted, again.stats.updated, again.stats.deleted),
        (0, 0, 0),
        "{name}: (e) an incremental re-sync after the year writes nothing"
    );
    format!("(e) after the year: ground truth, {late} marks entered after the last lesson among them")
}
