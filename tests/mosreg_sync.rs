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
    let saved = saved.trim();
    assert!(saved != TOKEN && saved.split('.').count() == 3, "the refreshed JWT was saved: {saved}");
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

/// What a stored record holds, by source id.
async fn stored(store: &dyn Store, kind: EntityKind) -> BTreeMap<String, serde_json::Value> {
    store.records(kind, None, false).await.unwrap().into_iter().map(|r| (r.source_id, r.content)).collect()
}

/// A parent's and a pupil's token (the confirmed access): no staff profile in
/// `profile_info`, so the connector reads the family profile's children through events,
/// family marks and subject marks — base URLs pasted with a path family or without the
/// trailing slash — and says plainly when the configuration asks for a whole school.
#[tokio::test]
async fn family_tokens_read_their_children() {
    use ejgate_mosreg::emulator::{self, EmulatorOptions, FamilyAccount};
    use ejgate_mosreg::{MosregBaseUrls, MosregConfig};
    const PARENT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwYXJlbnQifQ.cGFyZW50LXNpZw";
    const PUPIL: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwdXBpbCJ9.cHVwaWwtc2ln";
    let world = World::generate(SynthConfig::small(6));
    let s = &world.schools[0];
    let mut by_guardian: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for (g, st) in &s.guardianships {
        by_guardian.entry(*g).or_default().push(*st);
    }
    let (guardian, children) = by_guardian.iter().max_by_key(|(_, c)| c.len()).map(|(g, c)| (*g, c.clone())).unwrap();
    let pupil = children[0];
    let mut options = EmulatorOptions::new(TOKEN);
    options.family = vec![
        (PARENT.into(), FamilyAccount::Parent { guardian }),
        (PUPIL.into(), FamilyAccount::Pupil { student: pupil }),
    ];
    let emu = emulator::start(world, options, std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let root = emu.base_url();
    let trimmed = root.trim_end_matches('/').to_string();
    let config = |token: &str, urls: MosregBaseUrls| {
        let mut c = MosregConfig::new("mosreg-family", urls, token.into());
        c.retry = ejgate_sdk::acceptance::fast_retries();
        c
    };
    let pasted = MosregBaseUrls {
        web: format!("{root}api/family/web/v1/").parse().unwrap(),
        mobile: format!("{root}family/mobile/v1").parse().unwrap(),
        school: trimmed.parse().unwrap(),
    };
    for (token, urls, readers) in
        [(PARENT, pasted, children.clone()), (PUPIL, MosregBaseUrls::single(trimmed.parse().unwrap()), vec![pupil])]
    {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("m.db").display())).await.unwrap();
        let connector = Arc::new(MosregConnector::new(config(token, urls)).unwrap());
        let report = run_sync(&store, connector, &SyncOptions::default()).await.unwrap();
        assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
        let persons = stored(&store, EntityKind::Person).await;
        let mut want: Vec<String> = readers.iter().map(|c| c.to_string()).collect();
        want.sort();
        assert_eq!(persons.keys().cloned().collect::<Vec<_>>(), want, "only the children the token sees");

        let (marks, finals, attendance) = emu.world().read(|w| {
            let s = &w.schools[0];
            let today = w.today;
            let marks: BTreeMap<String, String> = s
                .marks
                .values()
                .filter(|m| readers.contains(&m.student) && s.lessons.get(&m.lesson).is_some_and(|l| l.date <= today))
                .map(|m| (m.id.to_string(), m.value.clone()))
                .collect();
            let mut finals: Vec<(String, String)> = s
                .final_marks
                .iter()
                .filter(|((st, _, _), _)| readers.contains(st))
                .map(|((st, _, _), f)| (st.to_string(), f.value.clone()))
                .collect();
            finals.sort();
            let attendance = s.attendance.keys().filter(|(_, st)| readers.contains(st)).count();
            (marks, finals, attendance)
        });
        let got = stored(&store, EntityKind::Mark).await;
        let values: BTreeMap<String, String> =
            got.iter().map(|(id, c)| (id.clone(), c["value"].as_str().unwrap().to_string())).collect();
        assert_eq!(values, marks, "every mark of the children, its value a string");
        let mut got_finals: Vec<(String, String)> = stored(&store, EntityKind::FinalMark)
            .await
            .iter()
            .map(|(id, c)| (id.split(':').next().unwrap().to_string(), c["value"].as_str().unwrap().to_string()))
            .collect();
        got_finals.sort();
        assert!(!finals.is_empty());
        assert_eq!(got_finals, finals, "final marks, their periods found by dates");
        assert_eq!(stored(&store, EntityKind::Attendance).await.len(), attendance);
        assert!(!stored(&store, EntityKind::StudyPeriod).await.is_empty(), "periods from the subject marks");
    }

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("x.db").display())).await.unwrap();
    let mut c = config(PARENT, MosregBaseUrls::single(root.parse().unwrap()));
    c.school_ids = vec![emu.world().read(|w| w.schools[0].id.to_string())];
    let report = run_sync(&store, Arc::new(MosregConnector::new(c).unwrap()), &SyncOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.unwrap();
    assert!(error.contains("parent") && error.contains("staff profile") && error.contains("whole school"), "{error}");
    emu.shutdown().await;
}
