//! The connector acceptance kit (issue #3, item 8), run against every connector: the
//! contract is `ejgate_sdk::acceptance`, each connector crate implements it over its
//! emulator (feature `acceptance`), and `ejgate::acceptance::run` checks (a) the ground
//! truth, (b) an idempotent re-sync, (c) exactly the generator's changes, (d) every failure
//! the system can show, (e) a school read after its year is over. Connector-specific behaviour stays in `tests/<system>_sync.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use ejgate::acceptance::{self, KitReport};
use ejgate_sdk::acceptance::{EmulatedSystem, Failure};
use ejgate_sdk::client::SourceError;
use ejgate_sdk::connector::{Batch, Chunk, Connector, Plan, PlanContext};
use ejgate_sdk::model::{Entity, EntityKind};
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

/// A connector that stores every mark as «5», around a real one: its counts are right, its
/// values are not.
struct EveryMarkFive(Arc<dyn Connector>);

#[async_trait]
impl Connector for EveryMarkFive {
    fn instance(&self) -> &str {
        self.0.instance()
    }
    fn system(&self) -> &'static str {
        self.0.system()
    }
    async fn plan(&self, ctx: &PlanContext) -> Result<Plan, SourceError> {
        self.0.plan(ctx).await
    }
    async fn fetch(&self, chunk: &Chunk) -> Result<Batch, SourceError> {
        let mut batch = self.0.fetch(chunk).await?;
        for r in &mut batch.records {
            if let Entity::Mark(m) = &mut r.entity {
                m.value = "5".into();
            }
        }
        Ok(batch)
    }
}

/// The kit checks values, not counts: the same sync through a connector that maps every
/// mark to «5» fails the value check on `mark.value` alone, naming records with their
/// expected and stored values; the real connector passes it.
#[tokio::test]
async fn the_value_check_fails_for_a_connector_that_stores_every_mark_as_five() {
    let system = ejgate_dnevnik::acceptance::DnevnikSystem::start(World::generate(SynthConfig::small(7)))
        .await
        .expect("the system starts");
    let honest = acceptance::values_after_a_full_sync(&system, system.connector().unwrap()).await;
    assert!(honest.passed(), "{}", honest.render());

    let mut not_five = 0;
    system.read_world(&mut |w| {
        not_five = w.schools.iter().flat_map(|s| s.marks.values()).filter(|m| m.value != "5").count()
    });
    assert!(not_five > 100, "the school has marks other than «5»: {not_five}");
    let wrong =
        acceptance::values_after_a_full_sync(&system, Arc::new(EveryMarkFive(system.connector().unwrap()))).await;
    assert!(!wrong.passed());
    assert_eq!(wrong.compared, honest.compared, "the same records, so the counts alone pass");
    let fields: Vec<_> = wrong.mismatches.keys().cloned().collect();
    assert_eq!(fields, vec![(EntityKind::Mark, "value".to_string())], "{}", wrong.render());
    let m = &wrong.mismatches[&(EntityKind::Mark, "value".to_string())];
    assert_eq!(m.count, not_five as u64);
    assert_eq!(m.examples.len(), acceptance::VALUE_EXAMPLES);
    for (_, expected, stored) in &m.examples {
        assert_eq!(stored, "\"5\"");
        assert_ne!(expected, "\"5\"");
    }
    let text = wrong.render();
    assert!(text.contains("mark.value: ") && text.contains("stored \"5\""), "{text}");
}

/// Each connector's README lists, in its table "Fields this system does not expose", exactly
/// the fields its `src/truth.rs` declares (the value check leaves out those and no others).
#[test]
fn every_readme_lists_the_fields_its_truth_declares_not_exposed() {
    let systems: [(&str, &ejgate_sdk::synth::SystemTruth); 5] = [
        ("dnevnik", &ejgate_dnevnik::truth::TRUTH),
        ("epos", &ejgate_epos::truth::TRUTH),
        ("kiasuo", &ejgate_kiasuo::truth::TRUTH),
        ("mosreg", &ejgate_mosreg::truth::TRUTH),
        ("files", &ejgate_files::truth::TRUTH),
    ];
    for (system, truth) in systems {
        let path = format!("{}/connectors/{system}/README.md", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("the README");
        let section = text
            .split("## Fields this system does not expose")
            .nth(1)
            .unwrap_or_else(|| panic!("{path}: no section «Fields this system does not expose»"));
        let section = section.split("\n## ").next().unwrap_or_default();
        let mut listed = std::collections::BTreeSet::new();
        for row in section.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| kind")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            for kind in cells[1].split(',').map(str::trim) {
                let kind = EntityKind::parse(kind).unwrap_or_else(|| panic!("{path}: no kind «{kind}»"));
                for field in cells[2].split(',').map(str::trim) {
                    listed.insert((kind, field.to_string()));
                }
            }
        }
        let declared: std::collections::BTreeSet<(EntityKind, String)> =
            truth.not_exposed_fields.iter().map(|(k, f)| (*k, f.to_string())).collect();
        assert_eq!(listed, declared, "{path}: the table and src/truth.rs");
    }
}
