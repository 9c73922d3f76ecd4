//! End to end: the «Моя школа» emulator serving the synthetic school → the connector → the
//! sync engine → SQLite. The ground truth, the idempotent re-sync, the change log after the
//! school lives on, broken answers, an ended session whose refresh is refused (with what to
//! renew), a failure in the middle of a run and the request limit are the acceptance kit's
//! (`tests/acceptance.rs`, `ejgate_mosreg::acceptance`); what is «Моя школа»'s own — the
//! token refresh — is here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ejgate::store::{RunStatus, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions, SyncReport};
use ejgate_mosreg::acceptance::{MosregSystem, TOKEN, TOKEN_ORIGIN};
use ejgate_mosreg::emulator::FailureMode;
use ejgate_mosreg::MosregConnector;
use ejgate_sdk::acceptance::EmulatedSystem;
use ejgate_sdk::connector::{Connector, SyncMode};
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{SynthConfig, World};

struct Harness {
    system: MosregSystem,
    store: Box<dyn Store>,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn new(config: SynthConfig) -> Harness {
        let system = MosregSystem::start(World::generate(config)).await.expect("emulator starts");
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
        let store: Box<dyn Store> = Box::new(SqliteStore::open(&url).await.expect("store opens"));
        Harness { system, store, dir }
    }

    async fn sync(&self, mode: SyncMode) -> SyncReport {
        self.sync_with(mode, self.system.connector().unwrap(), SyncOptions::default().concurrency).await
    }

    async fn sync_with(&self, mode: SyncMode, connector: Arc<dyn Connector>, concurrency: usize) -> SyncReport {
        run_sync(self.store.as_ref(), connector, &SyncOptions { mode, concurrency, ..SyncOptions::default() })
            .await
            .expect("the store records the run")
    }

    fn expected(&self) -> BTreeMap<EntityKind, u64> {
        self.system.emulator.world().read(|w| ejgate_mosreg::truth::TRUTH.expected_counts(w))
    }

    async fn live_counts(&self) -> BTreeMap<EntityKind, u64> {
        self.store.live_counts(None).await.unwrap()
    }
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_run_completes() {
    let h = Harness::new(SynthConfig::small(5)).await;
    let state = h.system.emulator.state();
    // One refused answer (the platform's 401 with «Предыдущая сессия … завершена»).
    state.set_failure(Some(FailureMode::Unauthorized), Some(1));
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(h.system.emulator.stats().refreshed, 1);
    assert_eq!(h.live_counts().await, h.expected());

    // Every token expires after 150 requests: the run refreshes as often as it must, and
    // the refreshed token lands in the token file before it is used.
    state.set_token_requests(Some(150));
    h.system.emulator.world().advance(2);
    let file: PathBuf = h.dir.path().join("mosreg.token");
    let mut config = h.system.config();
    config.token_file = Some(file.clone());
    let connector = Arc::new(MosregConnector::new(config).unwrap());
    let report = h.sync_with(SyncMode::Full, connector, SyncOptions::default().concurrency).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert!(h.system.emulator.stats().refreshed >= 3, "{:?}", h.system.emulator.stats());
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.trim().starts_with(TOKEN) && saved.trim() != TOKEN, "the refreshed token was saved");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(h.live_counts().await, h.expected());
}

#[tokio::test]
async fn a_token_that_ends_mid_run_stops_it_on_a_data_endpoint_naming_the_token_and_keeps_committed_batches() {
    let h = Harness::new(SynthConfig::small(4)).await;
    let state = h.system.emulator.state();
    // The token ends after 60 requests, and the refresh is refused.
    state.set_refresh_allowed(false);
    state.set_token_requests(Some(60));
    let report = h.sync_with(SyncMode::Full, h.system.connector().unwrap(), 1).await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.clone().unwrap();
    assert!(error.contains("GET api/") || error.contains("GET core/api/"), "a data endpoint: {error}");
    assert!(error.contains("aupd_token") && error.contains(TOKEN_ORIGIN), "{error}");
    assert!(!error.contains(TOKEN), "the token never shows");
    assert!(report.stats.inserted > 0, "batches before the failure were committed");
    let kept = h.live_counts().await;
    assert!(!kept.is_empty());

    // The operator signs in again.
    state.set_token_requests(None);
    state.set_refresh_allowed(true);
    state.renew_token();
    let next = h.sync(SyncMode::Incremental).await;
    assert_eq!(next.status, RunStatus::Succeeded, "{:?}", next.error);
    assert_eq!(h.live_counts().await, h.expected());
}
