//! Final marks on the calendar's cadence (issue #16; `ejgate_sdk::cadence`, each
//! connector's README): incremental runs read a pupil's final marks only on some nights
//! around a study period's end, and a full run reads them all. These tests live through
//! that calendar night by night on the emulators of the three systems that read final
//! marks per pupil (ЭПОС.Школа, «Моя школа», КИАСУО), with an incremental sync each night
//! and no full run, and check what the READMEs state:
//! - the final marks set at the end of the second quarter (28–30 December in the synthetic
//!   calendar), and a final mark of that quarter changed at the source five nights after,
//!   are in the store once the cadence's nights have passed (`every` = 4);
//! - the marks of the closed quarter edited after its final marks (the generator's
//!   «edit after final») are in the store: the nightly window (35 days) covers them;
//! - a final mark changed at the source on a night outside every period's window (13
//!   January: 14 days after the quarter's end have passed) is **not** read by the nightly
//!   runs, and the next full run reads it: then every stored record holds the world's values.

use chrono::NaiveDate;
use ejgate::store::{RunStatus, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions};
use ejgate_sdk::acceptance::EmulatedSystem;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{NetOp, SynthConfig, World, WorldCell};

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

async fn sync(system: &dyn EmulatedSystem, store: &dyn Store, mode: SyncMode) {
    let connector = system.connector().expect("the connector builds");
    let report = run_sync(store, connector, &SyncOptions { mode, ..SyncOptions::default() }).await.expect("the run");
    assert_eq!(report.status, RunStatus::Succeeded, "{} {mode}: {:?}", system.system(), report.error);
}

/// Changes the value of one final mark of `period` (the first of the world's order) and
/// returns its key (student, subject, period).
fn change_a_final_mark(world: &WorldCell, period: usize) -> (u64, u64, Option<u64>) {
    world.update(|w| {
        let school = &mut w.schools[0];
        let period = Some(school.periods[period].id);
        let (key, mark) =
            school.final_marks.iter_mut().find(|(k, m)| k.2 == period && m.value == "4").expect("a final mark «4»");
        mark.value = "5".into();
        *key
    })
}

/// Records whose stored values differ from the world's: (final marks, others).
async fn stored_final_mark_values(system: &dyn EmulatedSystem, store: &dyn Store) -> (usize, usize) {
    let check = ejgate::acceptance::check_values(system, store).await;
    assert_eq!(check.unexpected_count, 0, "{}: no stored record the world lacks", system.system());
    let ids = |finals: bool| {
        check
            .mismatches
            .iter()
            .filter(|((k, _), _)| (*k == EntityKind::FinalMark) == finals)
            .flat_map(|(_, m)| m.examples.iter().map(|e| e.0.clone()))
            .collect::<std::collections::BTreeSet<String>>()
            .len()
    };
    (ids(true), ids(false))
}

async fn across_the_second_quarter_end(system: &dyn EmulatedSystem, world: WorldCell) {
    let name = system.system();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
    let store = SqliteStore::open(&url).await.expect("the store opens");
    sync(system, &store, SyncMode::Full).await;
    let before = system.last_seq();
    // 23 December to 6 January: the quarter ends on the 28th, its final marks come on the
    // 28th to the 30th; the cadence reads each pupil every 4 nights within 14 days of it.
    while system.read_world_today() < day("2026-01-06") {
        system.advance(1);
        if system.read_world_today() == day("2026-01-02") {
            change_a_final_mark(&world, 1);
        }
        sync(system, &store, SyncMode::Incremental).await;
    }
    let changes = system.exposed_changes_since(before);
    let finals = changes.iter().filter(|(k, _, op)| *k == EntityKind::FinalMark && *op == NetOp::Insert).count();
    assert!(finals > 100, "{name}: the quarter's final marks were set meanwhile ({finals})");
    let edited = changes.iter().filter(|(k, _, op)| *k == EntityKind::Mark && *op == NetOp::Update).count();
    assert!(edited > 0, "{name}: marks were edited meanwhile");

    // Counts: every final mark of the quarter is stored, and every edited mark.
    let live = store.live_counts(None).await.unwrap();
    assert_eq!(live, system.expected_now(), "{name}: the nightly runs alone hold the ground truth's records");
    // Values: every stored record holds the world's, the changed final mark too.
    assert_eq!(stored_final_mark_values(system, &store).await, (0, 0), "{name}: the nights read the changes");

    // Outside every period's window: a final mark changed then waits for the full run.
    system.advance(6);
    assert_eq!(system.read_world_today(), day("2026-01-12"));
    sync(system, &store, SyncMode::Incremental).await;
    let changed = change_a_final_mark(&world, 0);
    for _ in 0..4 {
        system.advance(1);
        sync(system, &store, SyncMode::Incremental).await;
    }
    assert_eq!(
        stored_final_mark_values(system, &store).await,
        (1, 0),
        "{name}: the final mark {changed:?} changed outside the cadence's nights is not read by the nightly runs"
    );
    sync(system, &store, SyncMode::Full).await;
    assert_eq!(stored_final_mark_values(system, &store).await, (0, 0), "{name}: the full run reads it");
}

trait Today {
    fn read_world_today(&self) -> NaiveDate;
}

impl<T: EmulatedSystem + ?Sized> Today for T {
    fn read_world_today(&self) -> NaiveDate {
        let mut today = NaiveDate::MIN;
        self.read_world(&mut |w| today = w.today);
        today
    }
}

fn world() -> World {
    World::generate(SynthConfig { simulate_until: day("2025-12-22"), ..SynthConfig::small(5) })
}

#[tokio::test]
async fn epos_reads_final_marks_on_the_cadence_its_readme_states() {
    let s = ejgate_epos::acceptance::EposSystem::start(world()).await.unwrap();
    across_the_second_quarter_end(&s, s.emulator.world()).await;
}

#[tokio::test]
async fn mosreg_reads_final_marks_on_the_cadence_its_readme_states() {
    let s = ejgate_mosreg::acceptance::MosregSystem::start(world()).await.unwrap();
    across_the_second_quarter_end(&s, s.emulator.world()).await;
}

#[tokio::test]
async fn kiasuo_reads_final_marks_on_the_cadence_its_readme_states() {
    let s = ejgate_kiasuo::acceptance::KiasuoSystem::start(world()).await.unwrap();
    across_the_second_quarter_end(&s, s.emulator.world()).await;
}
