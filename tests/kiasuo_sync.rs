//! End to end: the КИАСУО emulator serving the synthetic school → the connector (Bearer
//! access token renewed with a rotating refresh token) → the sync engine → SQLite. The
//! ground truth, the idempotent re-sync, the change log after the school lives on, broken
//! answers, the refused refresh token (dead until the operator signs in again), a failure
//! in the middle of a run and the request limit are the acceptance kit's
//! (`tests/acceptance.rs`, `ejgate_kiasuo::acceptance`); what is КИАСУО's own is here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ejgate::store::{RunStatus, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions, SyncReport};
use ejgate_kiasuo::acceptance::{KiasuoSystem, REFRESH};
use ejgate_kiasuo::emulator::EmulatorOptions;
use ejgate_sdk::acceptance::EmulatedSystem;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{SynthConfig, World};

struct Harness {
    system: KiasuoSystem,
    store: Box<dyn Store>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(config: SynthConfig, tweak: impl FnOnce(&mut EmulatorOptions)) -> Harness {
        let system = KiasuoSystem::start_with(World::generate(config), tweak).await.expect("emulator starts");
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
        let store: Box<dyn Store> = Box::new(SqliteStore::open(&url).await.expect("store opens"));
        Harness { system, store, _dir: dir }
    }

    async fn sync(&self, mode: SyncMode) -> SyncReport {
        run_sync(self.store.as_ref(), self.system.connector().unwrap(), &SyncOptions { mode, ..SyncOptions::default() })
            .await
            .expect("the store records the run")
    }

    fn expected(&self) -> BTreeMap<EntityKind, u64> {
        self.system.emulator.world().read(ejgate_kiasuo::truth::expected_counts)
    }

    async fn live_counts(&self) -> BTreeMap<EntityKind, u64> {
        self.store.live_counts(None).await.unwrap()
    }
}

#[tokio::test]
async fn every_run_rotates_the_refresh_token_and_the_file_holds_the_one_in_force() {
    let h = Harness::new(SynthConfig::small(7), |_| {}).await;
    let first = h.sync(SyncMode::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    assert_eq!(h.live_counts().await, h.expected());
    // The refresh token rotated, and the file holds the one the source accepts now.
    assert_ne!(h.system.persisted_refresh(), REFRESH);
    assert_eq!(Some(h.system.persisted_refresh()), h.system.emulator.state().current_refresh_token());
    // The next run starts from the persisted token, rotates it again, and still holds it.
    let before = h.system.persisted_refresh();
    let again = h.sync(SyncMode::Incremental).await;
    assert_eq!(again.status, RunStatus::Succeeded, "{:?}", again.error);
    assert_ne!(h.system.persisted_refresh(), before);
    assert_eq!(Some(h.system.persisted_refresh()), h.system.emulator.state().current_refresh_token());
}

#[tokio::test]
async fn an_access_token_expiring_mid_sync_is_refreshed_and_the_newest_refresh_token_is_persisted() {
    let h = Harness::new(SynthConfig::small(5), |o| o.access_lifetime = Duration::from_secs(1)).await;
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(h.live_counts().await, h.expected());
    let stats = h.system.emulator.stats();
    assert!(stats.refreshes >= 2, "the access token was renewed during the run: {stats:?}");
    assert_eq!(stats.refused_refreshes, 0, "never a stale refresh token: {stats:?}");
    assert_eq!(Some(h.system.persisted_refresh()), h.system.emulator.state().current_refresh_token());
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
