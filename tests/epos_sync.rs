//! End to end: the ЭПОС.Школа emulator serving the synthetic school → the connector → the
//! sync engine → SQLite. The ground truth, the idempotent re-sync, the change log after the
//! school lives on, the 401/400 session errors and their message, broken answers, a token
//! expiring mid-run and the request limit are the acceptance kit's (`tests/acceptance.rs`,
//! `ejgate_epos::acceptance`); what is ЭПОС's own is here.

use std::collections::BTreeMap;
use std::time::Duration;

use ejgate::store::{RunStatus, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions, SyncReport};
use ejgate_epos::acceptance::EposSystem;
use ejgate_sdk::acceptance::EmulatedSystem;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{SynthConfig, World};

struct Harness {
    system: EposSystem,
    store: Box<dyn Store>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(config: SynthConfig) -> Harness {
        let system = EposSystem::start(World::generate(config)).await.expect("emulator starts");
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
        self.system.emulator.world().read(|w| ejgate_epos::truth::TRUTH.expected_counts(w))
    }

    async fn live_counts(&self) -> BTreeMap<EntityKind, u64> {
        self.store.live_counts(None).await.unwrap()
    }
}

#[tokio::test]
async fn an_expired_token_is_refused_with_400_until_the_operator_renews_it() {
    let h = Harness::new(SynthConfig::small(4)).await;
    let state = h.system.emulator.state();
    state.set_token_ttl(Some(Duration::from_millis(1)));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let failed = h.sync(SyncMode::Full).await;
    assert_eq!(failed.status, RunStatus::Failed);
    let error = failed.error.unwrap();
    assert!(error.contains("POST lms/api/sessions") && error.contains("HTTP 400"), "{error}");
    assert!(error.contains("Войдите в ЭЖД заново") && error.contains("EJGATE_EPOS_TOKEN"), "{error}");
    assert!(h.live_counts().await.is_empty());
    // The operator puts a fresh token in place (the emulator's token lives again).
    state.set_token_ttl(None);
    let next = h.sync(SyncMode::Full).await;
    assert_eq!(next.status, RunStatus::Succeeded, "{:?}", next.error);
    assert_eq!(h.live_counts().await, h.expected());
}
