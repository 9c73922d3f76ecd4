//! End to end: the «Моя школа» emulator serving the synthetic school → the connector → the
//! sync engine → SQLite, checked against the generator's ground truth. The harness is
//! inside this file (tests/common is Dnevnik's).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ejgate::store::{ChangeOp, RunStatus, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions, SyncReport};
use ejgate_mosreg::emulator::{self, EmulatorHandle, EmulatorOptions, FailureMode};
use ejgate_mosreg::{MosregBaseUrls, MosregConfig, MosregConnector};
use ejgate_sdk::client::RetryPolicy;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{NetOp, SynthConfig, World};
use secrecy::SecretString;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtb3NyZWcifQ.bW9zcmVnLXNpZ25hdHVyZQ";
const INSTANCE: &str = "mosreg-test";
const ORIGIN: &str = "/etc/ejgate/mosreg.token (EJGATE_MOSREG_TOKEN)";

struct Harness {
    emulator: EmulatorHandle,
    store: Box<dyn Store>,
    dir: tempfile::TempDir,
}

impl Harness {
    async fn new(config: SynthConfig) -> Harness {
        let world = World::generate(config);
        let emulator = emulator::start(world, EmulatorOptions::new(TOKEN), SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("emulator starts");
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
        let store: Box<dyn Store> = Box::new(SqliteStore::open(&url).await.expect("store opens"));
        Harness { emulator, store, dir }
    }

    fn config(&self) -> MosregConfig {
        let base = MosregBaseUrls::single(self.emulator.base_url().parse().unwrap());
        let mut c = MosregConfig::new(INSTANCE, base, SecretString::from(TOKEN));
        c.token_origin = ORIGIN.into();
        c.retry = RetryPolicy {
            max_attempts: 3,
            max_rate_limited_attempts: 50,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(200),
        };
        c
    }

    fn connector(&self) -> Arc<MosregConnector> {
        Arc::new(MosregConnector::new(self.config()).expect("connector builds"))
    }

    async fn sync(&self, mode: SyncMode) -> SyncReport {
        self.sync_with(mode, self.connector()).await
    }

    async fn sync_with(&self, mode: SyncMode, connector: Arc<MosregConnector>) -> SyncReport {
        run_sync(self.store.as_ref(), connector, &SyncOptions { mode, ..SyncOptions::default() })
            .await
            .expect("the store records the run")
    }

    fn expected(&self) -> BTreeMap<EntityKind, u64> {
        self.emulator.world().read(ejgate_mosreg::truth::expected_counts)
    }

    async fn live_counts(&self) -> BTreeMap<EntityKind, u64> {
        self.store.counts(None).await.unwrap().into_iter().filter(|c| c.live > 0).map(|c| (c.kind, c.live)).collect()
    }
}

#[tokio::test]
async fn a_full_sync_reproduces_the_ground_truth_and_a_resync_writes_nothing() {
    let h = Harness::new(SynthConfig::small(7)).await;
    let first = h.sync(SyncMode::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    assert!(first.stats.warnings.is_empty(), "the code tables know every code: {:?}", first.stats.warnings);
    let expected = h.expected();
    assert_eq!(expected.len(), ejgate_mosreg::truth::EXPOSED.len(), "every exposed kind has records: {expected:?}");
    assert_eq!(h.live_counts().await, expected);

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
    let h = Harness::new(SynthConfig::small(11)).await;
    assert_eq!(h.sync(SyncMode::Full).await.status, RunStatus::Succeeded);
    let world = h.emulator.world();
    let before = world.read(|w| w.last_seq());
    world.advance(6);
    let expected: BTreeSet<(String, String, &str)> = world.read(|w| {
        w.net_changes_since(before)
            .into_iter()
            .filter(|c| ejgate_mosreg::truth::is_exposed(w, c.kind, &c.key))
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
    let h = Harness::new(SynthConfig::small(3)).await;
    assert_eq!(h.sync(SyncMode::Full).await.status, RunStatus::Succeeded);
    let mut committed = h.live_counts().await;
    let cases = [
        (FailureMode::Html502, "HTML page (HTTP 502)", "502 Bad Gateway"),
        (FailureMode::Malformed, "JSON", "Nothing of this batch was written"),
        (FailureMode::Truncated, "cut off", ""),
    ];
    for (mode, what, message) in cases {
        h.emulator.world().advance(1);
        h.emulator.state().set_failure(Some(mode), None);
        let failed = h.sync(SyncMode::Incremental).await;
        assert_eq!(failed.status, RunStatus::Failed, "{mode:?}");
        let error = failed.error.clone().unwrap();
        assert!(error.contains(&format!("source «{INSTANCE}» (mosreg)")), "{mode:?}: {error}");
        assert!(error.contains("GET acl/api/users/profile_info"), "{mode:?} names the endpoint: {error}");
        assert!(error.contains(what) && error.contains(message), "{mode:?}: {error}");
        assert!(!error.contains(TOKEN), "the token never shows");
        let runs = h.store.runs(1).await.unwrap();
        assert_eq!(runs[0].error.as_deref(), Some(error.as_str()));
        assert_eq!(h.live_counts().await, committed, "{mode:?}: a failed plan writes nothing");

        h.emulator.state().set_failure(None, None);
        let next = h.sync(SyncMode::Incremental).await;
        assert_eq!(next.status, RunStatus::Succeeded, "{mode:?}: {:?}", next.error);
        assert_eq!(h.live_counts().await, h.expected(), "{mode:?}");
        committed = h.live_counts().await;
    }
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_and_the_run_completes() {
    let h = Harness::new(SynthConfig::small(5)).await;
    // One refused answer (the platform's 401 with «Предыдущая сессия … завершена»).
    h.emulator.state().set_failure(Some(FailureMode::Unauthorized), Some(1));
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(h.emulator.stats().refreshed, 1);
    assert_eq!(h.live_counts().await, h.expected());

    // Every token expires after 150 requests: the run refreshes as often as it must, and
    // the refreshed token lands in the token file before it is used.
    h.emulator.state().set_token_requests(Some(150));
    h.emulator.world().advance(2);
    let file: PathBuf = h.dir.path().join("mosreg.token");
    let mut config = h.config();
    config.token_file = Some(file.clone());
    let report = h.sync_with(SyncMode::Full, Arc::new(MosregConnector::new(config).unwrap())).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert!(h.emulator.stats().refreshed >= 3, "{:?}", h.emulator.stats());
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
async fn a_refused_refresh_stops_the_run_naming_the_token_to_renew_and_keeps_committed_batches() {
    let h = Harness::new(SynthConfig::small(4)).await;
    h.emulator.state().set_refresh_allowed(false);
    h.emulator.state().expire_tokens();
    let failed = h.sync(SyncMode::Full).await;
    assert_eq!(failed.status, RunStatus::Failed);
    let error = failed.error.unwrap();
    assert!(error.contains(&format!("source «{INSTANCE}» (mosreg)")), "{error}");
    assert!(error.contains("GET acl/api/users/profile_info") && error.contains("HTTP 401"), "{error}");
    assert!(error.contains("Войдите в ЭЖД заново"), "{error}");
    assert!(error.contains("HTTP 499") && error.contains("Something went wrong"), "the refresh's answer: {error}");
    assert!(error.contains("aupd_token") && error.contains("Госуслуги") && error.contains(ORIGIN), "{error}");
    assert!(error.contains("nothing already synced is lost"), "{error}");
    assert!(!error.contains(TOKEN), "the token never shows");
    assert!(h.live_counts().await.is_empty());

    // The operator signs in again; then the token ends in the middle of a run.
    h.emulator.state().renew_token();
    h.emulator.state().set_token_requests(Some(60));
    let report = run_sync(
        h.store.as_ref(),
        h.connector(),
        &SyncOptions { mode: SyncMode::Full, concurrency: 1, ..Default::default() },
    )
    .await
    .unwrap();
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.clone().unwrap();
    assert!(error.contains("GET api/") || error.contains("GET core/api/"), "a data endpoint: {error}");
    assert!(error.contains("aupd_token") && error.contains(ORIGIN), "{error}");
    assert!(report.stats.inserted > 0, "batches before the failure were committed");
    let kept = h.live_counts().await;
    assert!(!kept.is_empty());

    h.emulator.state().set_token_requests(None);
    h.emulator.state().renew_token();
    let next = h.sync(SyncMode::Incremental).await;
    assert_eq!(next.status, RunStatus::Succeeded, "{:?}", next.error);
    assert_eq!(h.live_counts().await, h.expected());
}

#[tokio::test]
async fn the_per_token_request_limit_is_absorbed_without_an_error_for_the_user() {
    // The client is not told the limit, so it runs into the 429s and must back off.
    let h = Harness::new(SynthConfig::small(9)).await;
    h.emulator.state().set_request_limit(Some(40));
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert!(h.emulator.stats().limited > 0, "the emulator's limit was reached");
    assert_eq!(h.live_counts().await, h.expected());
}
