//! Past years (issue #14, item 5): a run asked for a school year reads that year where the
//! source serves it, and fails saying so where it does not. The synthetic school has one
//! year, 2025/2026: asked for explicitly, each API connector reads the whole of it; asked
//! for 2023/2024, each fails with a `config` error that names the year and what the source
//! serves, and writes nothing.
#![cfg(feature = "acceptance")]

use ejgate::store::{RunErrorKind, RunStatus, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions};
use ejgate_sdk::acceptance::EmulatedSystem;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::synth::{SynthConfig, World};
use ejgate_sdk::year::SchoolYear;

async fn check<S: EmulatedSystem>() {
    let system = S::start(World::generate(SynthConfig::small(5))).await.expect("the system starts");
    let name = system.system();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.unwrap();
    let store: &dyn Store = &store;
    let run = |year: SchoolYear| {
        // An incremental run asked for a year reads that year whole.
        let options = SyncOptions { mode: SyncMode::Incremental, year: Some(year), ..SyncOptions::default() };
        let connector = system.connector().unwrap();
        async move { run_sync(store, connector, &options).await.unwrap() }
    };

    // 2023/2024: no system serves it (ЭПОС.Школа's and «Моя школа»'s emulators list
    // 2024/2025 among their academic years, as the real systems list past years).
    let past = run(SchoolYear::new(2023)).await;
    assert_eq!(past.status, RunStatus::Failed, "{name}: 2023/2024 is not served");
    assert_eq!(past.error_kind, Some(RunErrorKind::Config), "{name}: {:?}", past.error);
    let error = past.error.unwrap();
    assert!(error.contains("the source does not serve 2023/2024: it serves "), "{name}: {error}");
    assert!(error.contains("2025/2026"), "{name}: the error names the year the source serves: {error}");
    assert!(store.live_counts(None).await.unwrap().is_empty(), "{name}: nothing is written");

    let current = run(SchoolYear::new(2025)).await;
    assert_eq!(current.status, RunStatus::Succeeded, "{name}: {:?}", current.error);
    let expected = (&system as &dyn EmulatedSystem).expected_now();
    assert_eq!(store.live_counts(None).await.unwrap(), expected, "{name}: the whole year is read");
    assert_eq!(store.runs(1).await.unwrap()[0].mode, "full", "{name}: a year's run is a full run");
}

#[tokio::test]
async fn dnevnik_reads_the_year_it_serves_and_refuses_another() {
    check::<ejgate_dnevnik::acceptance::DnevnikSystem>().await;
}

#[tokio::test]
async fn epos_reads_the_year_it_serves_and_refuses_another() {
    check::<ejgate_epos::acceptance::EposSystem>().await;
}

#[tokio::test]
async fn kiasuo_reads_the_year_it_serves_and_refuses_another() {
    check::<ejgate_kiasuo::acceptance::KiasuoSystem>().await;
}

#[tokio::test]
async fn mosreg_reads_the_year_it_serves_and_refuses_another() {
    check::<ejgate_mosreg::acceptance::MosregSystem>().await;
}
