//! End to end: the КИАСУО emulator serving the synthetic school → the connector (Bearer
//! access token renewed with a rotating refresh token) → the sync engine → SQLite, checked
//! against the generator's ground truth.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ejgate::store::{ChangeOp, RunStatus, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions, SyncReport};
use ejgate_kiasuo::emulator::{self, EmulatorHandle, EmulatorOptions, FailureMode};
use ejgate_kiasuo::{KiasuoConfig, KiasuoConnector};
use ejgate_sdk::client::RetryPolicy;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{NetOp, SynthConfig, World};

const REFRESH: &str = "0f3c5a9e1b7d4c2a8e6f0b1d3c5a7e9f";

struct Harness {
    emulator: EmulatorHandle,
    store: Box<dyn Store>,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn new(config: SynthConfig, tweak: impl FnOnce(&mut EmulatorOptions)) -> Harness {
        let world = World::generate(config);
        let mut options = EmulatorOptions::new(REFRESH);
        tweak(&mut options);
        let emulator =
            emulator::start(world, options, SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("emulator starts");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kiasuo.refresh"), format!("{REFRESH}\n")).unwrap();
        let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
        let store: Box<dyn Store> = Box::new(SqliteStore::open(&url).await.expect("store opens"));
        Harness { emulator, store, dir }
    }

    fn refresh_file(&self) -> PathBuf {
        self.dir.path().join("kiasuo.refresh")
    }

    fn connector(&self) -> Arc<KiasuoConnector> {
        let mut c = KiasuoConfig::new("kiasuo-test", self.emulator.base_url().parse().unwrap(), self.refresh_file());
        c.retry = RetryPolicy {
            max_attempts: 3,
            max_rate_limited_attempts: 50,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(200),
        };
        Arc::new(KiasuoConnector::new(c).expect("connector builds"))
    }

    async fn sync(&self, mode: SyncMode) -> SyncReport {
        run_sync(self.store.as_ref(), self.connector(), &SyncOptions { mode, ..SyncOptions::default() })
            .await
            .expect("the store records the run")
    }

    fn expected(&self) -> BTreeMap<EntityKind, u64> {
        self.emulator.world().read(ejgate_kiasuo::truth::expected_counts)
    }

    async fn live_counts(&self) -> BTreeMap<EntityKind, u64> {
        self.store.counts(None).await.unwrap().into_iter().filter(|c| c.live > 0).map(|c| (c.kind, c.live)).collect()
    }

    fn persisted_refresh(&self) -> String {
        std::fs::read_to_string(self.refresh_file()).unwrap().trim().to_string()
    }
}

#[tokio::test]
async fn a_full_sync_reproduces_the_ground_truth_and_a_resync_writes_nothing() {
    let h = Harness::new(SynthConfig::small(7), |_| {}).await;
    let first = h.sync(SyncMode::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    let expected = h.expected();
    assert_eq!(expected.len(), ejgate_kiasuo::truth::EXPOSED.len(), "every exposed kind has records: {expected:?}");
    assert_eq!(h.live_counts().await, expected);
    // The refresh token rotated, and the file holds the one the source accepts now.
    assert_ne!(h.persisted_refresh(), REFRESH);
    assert_eq!(Some(h.persisted_refresh()), h.emulator.state().current_refresh_token());

    for mode in [SyncMode::Incremental, SyncMode::Full] {
        let again = h.sync(mode).await;
        assert_eq!(again.status, RunStatus::Succeeded, "{:?}", again.error);
        assert!(again.stats.records_read > 0);
        assert_eq!((again.stats.inserted, again.stats.updated, again.stats.deleted), (0, 0, 0), "{mode}");
        assert!(h.store.changes_of_run(again.run).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn after_the_school_lives_on_the_change_log_holds_exactly_the_generators_changes() {
    let h = Harness::new(SynthConfig::small(11), |_| {}).await;
    assert_eq!(h.sync(SyncMode::Full).await.status, RunStatus::Succeeded);
    let world = h.emulator.world();
    let before = world.read(|w| w.last_seq());
    world.advance(6);
    let expected: BTreeSet<(String, String, &str)> = world.read(|w| {
        w.net_changes_since(before)
            .into_iter()
            .filter(|c| ejgate_kiasuo::truth::is_exposed(w, c.kind, &c.key))
            .map(|c| {
                let op = match c.op {
                    NetOp::Insert => "insert",
                    NetOp::Update => "update",
                    NetOp::Delete => "delete",
                };
                (c.kind.as_str().to_string(), c.key, op)
            })
            .collect()
    });
    assert!(expected.len() > 50, "six school days bring changes: {}", expected.len());
    assert!(expected.iter().any(|c| c.2 == "delete"), "the generator deletes unsatisfactory marks");

    let report = h.sync(SyncMode::Incremental).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let logged: BTreeSet<(String, String, &str)> = h
        .store
        .changes_of_run(report.run)
        .await
        .unwrap()
        .into_iter()
        .map(|c| {
            let op = match c.op {
                ChangeOp::Insert => "insert",
                ChangeOp::Update | ChangeOp::KeyChange => "update",
                ChangeOp::Delete => "delete",
            };
            (c.kind.as_str().to_string(), c.source_id, op)
        })
        .collect();
    let missing: Vec<_> = expected.difference(&logged).take(10).collect();
    let extra: Vec<_> = logged.difference(&expected).take(10).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}\nextra {extra:?}");
    assert_eq!(h.live_counts().await, h.expected());
}

#[tokio::test]
async fn a_broken_answer_fails_the_run_with_the_source_and_endpoint_and_the_next_run_completes() {
    let h = Harness::new(SynthConfig::small(3), |_| {}).await;
    assert_eq!(h.sync(SyncMode::Full).await.status, RunStatus::Succeeded);
    let cases = [
        (FailureMode::Malformed, "JSON"),
        (FailureMode::Html502, "HTML page (HTTP 502)"),
        (FailureMode::Truncated, "cut off"),
        (FailureMode::Unauthorized, "refresh token was refused"),
    ];
    for (mode, what) in cases {
        h.emulator.world().advance(1);
        h.emulator.state().set_failure(Some(mode), None);
        let failed = h.sync(SyncMode::Incremental).await;
        assert_eq!(failed.status, RunStatus::Failed, "{mode:?}");
        let error = failed.error.clone().unwrap();
        assert!(error.contains("source «kiasuo-test» (kiasuo)"), "{mode:?}: {error}");
        assert!(error.contains("GET diary/api/user"), "{mode:?} names the endpoint: {error}");
        assert!(error.contains(what), "{mode:?}: {error}");
        assert!(!error.contains(&h.persisted_refresh()), "never prints a token");
        h.emulator.state().set_failure(None, None);
        if mode == FailureMode::Unauthorized {
            assert!(
                error.contains("Госуслуги") && error.contains("kiasuo.refresh"),
                "tells the operator what to renew: {error}"
            );
            // The session is dead until a person signs in again and supplies a new token.
            let still = h.sync(SyncMode::Incremental).await;
            assert_eq!(still.status, RunStatus::Failed);
            let fresh = h.emulator.state().login();
            std::fs::write(h.refresh_file(), fresh).unwrap();
        }
        let next = h.sync(SyncMode::Incremental).await;
        assert_eq!(next.status, RunStatus::Succeeded, "{mode:?}: {:?}", next.error);
        assert_eq!(h.live_counts().await, h.expected(), "{mode:?}");
    }
}

#[tokio::test]
async fn an_access_token_expiring_mid_sync_is_refreshed_and_the_newest_refresh_token_is_persisted() {
    let h = Harness::new(SynthConfig::small(5), |o| o.access_lifetime = Duration::from_secs(1)).await;
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(h.live_counts().await, h.expected());
    let stats = h.emulator.stats();
    assert!(stats.refreshes >= 2, "the access token was renewed during the run: {stats:?}");
    assert_eq!(stats.refused_refreshes, 0, "never a stale refresh token: {stats:?}");
    assert_eq!(Some(h.persisted_refresh()), h.emulator.state().current_refresh_token());
}

#[tokio::test]
async fn the_request_limit_is_absorbed_without_an_error_for_the_user() {
    // A short school year so far (into October) and small classes: few requests, so the
    // limit can be low enough to be reached for sure.
    let mut config = SynthConfig::small(9);
    config.students_per_class = 3;
    config.simulate_until = chrono::NaiveDate::from_ymd_opt(2025, 10, 10).unwrap();
    let h = Harness::new(config, |o| o.request_limit = Some(40)).await;
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert!(h.emulator.stats().limited > 0, "the emulator's limit was reached");
    assert_eq!(h.live_counts().await, h.expected());
}

#[tokio::test]
async fn the_older_marks_form_syncs_the_same_records() {
    let mut config = SynthConfig::small(4);
    config.students_per_class = 3;
    config.simulate_until = chrono::NaiveDate::from_ymd_opt(2025, 11, 14).unwrap();
    let h = Harness::new(config, |o| o.legacy_marks = true).await;
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let expected = h.expected();
    assert!(expected.get(&EntityKind::Mark).is_some_and(|n| *n > 0) && expected.contains_key(&EntityKind::Attendance));
    assert_eq!(h.live_counts().await, expected);
}

#[tokio::test]
async fn two_schools_seen_through_one_account_are_told_apart() {
    let mut config = SynthConfig::small(6);
    config.schools = 2;
    config.students_per_class = 2;
    config.simulate_until = chrono::NaiveDate::from_ymd_opt(2025, 10, 3).unwrap();
    let h = Harness::new(config, |_| {}).await;
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(h.live_counts().await, h.expected());
    let periods = h.store.records(EntityKind::StudyPeriod, None, false).await.unwrap();
    let scopes: BTreeSet<&str> = periods.iter().map(|r| r.scope.as_str()).collect();
    assert_eq!(scopes.len(), 2, "one reference scope per school: {scopes:?}");
}
