//! The connector acceptance kit (issue #3, item 8), run against every connector: the
//! contract is `ejgate_sdk::acceptance`, each connector crate implements it over its
//! emulator (feature `acceptance`), and `ejgate::acceptance::run` checks (a) the ground
//! truth, (b) an idempotent re-sync, (c) exactly the generator's changes, (d) every failure
//! the system can show, (e) a school read after its year is over. Connector-specific behaviour stays in `tests/<system>_sync.rs`.

use ejgate::acceptance::{self, KitReport};
use ejgate_sdk::acceptance::{EmulatedSystem, Failure};
use ejgate_sdk::synth::{SynthConfig, World};

async fn kit<S: EmulatedSystem>(seed: u64) -> KitReport {
    let system = S::start(World::generate(SynthConfig::small(seed))).await.expect("the system starts");
    let report = acceptance::run(&system).await;
    for line in &report.passed {
        println!("{}: {line}", report.system);
    }
    // Every failure the system declares was exercised.
    let mut declared: Vec<Failure> = system.failures().into_iter().map(|c| c.failure).collect();
    let mut exercised = report.failures.clone();
    declared.sort();
    exercised.sort();
    assert_eq!(exercised, declared);

    let ended = SynthConfig { simulate_until: acceptance::after_the_year_day(), ..SynthConfig::small(seed) };
    let system = S::start(World::generate(ended)).await.expect("the system starts");
    println!("{}: {}", report.system, acceptance::after_the_year(&system).await);
    report
}

#[tokio::test]
async fn dnevnik_passes_the_acceptance_kit() {
    kit::<ejgate_dnevnik::acceptance::DnevnikSystem>(7).await;
}

#[tokio::test]
async fn epos_passes_the_acceptance_kit() {
    kit::<ejgate_epos::acceptance::EposSystem>(7).await;
}

#[tokio::test]
async fn kiasuo_passes_the_acceptance_kit() {
    kit::<ejgate_kiasuo::acceptance::KiasuoSystem>(7).await;
}

#[tokio::test]
async fn mosreg_passes_the_acceptance_kit() {
    kit::<ejgate_mosreg::acceptance::MosregSystem>(7).await;
}

#[tokio::test]
async fn files_passes_the_acceptance_kit() {
    kit::<ejgate_files::acceptance::FilesSystem>(7).await;
}
