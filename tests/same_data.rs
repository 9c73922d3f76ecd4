//! The same synthetic school through all five connectors into one store (what `ejgate demo`
//! does): the canonical data of every entity each system shares with the others is
//! identical, entity by entity, whichever connector brought it.
//!
//! The files source carries every kind the school has (the default export layout), so it
//! is the yardstick: each API source is compared with it over the kinds that API exposes,
//! leaving out only the fields one of the two systems declares it does not fill
//! (`truth::NOT_EXPOSED_FIELDS`, explained in each connector's README). Where a system's
//! ground truth has as many records of a kind as the files source, the two must be
//! identical; where it sees fewer (КИАСУО is a parent's view), each of its records must
//! have an identical twin.

use std::sync::Arc;

use ejgate::compare::{compare, render};
use ejgate::config::System;
use ejgate::demo::{self, DemoOptions, ALL_SYSTEMS};
use ejgate::sources::{self, shared};
use ejgate::sync::{Progress, Quiet};
use ejgate_sdk::synth::{SynthConfig, World};

const SEED: u64 = 17;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_connectors_bring_identical_canonical_data() {
    let dir = tempfile::tempdir().unwrap();
    let report = demo::run(DemoOptions {
        dir: dir.path().to_path_buf(),
        seed: SEED,
        synth: SynthConfig::small(SEED),
        systems: ALL_SYSTEMS.to_vec(),
        progress: Arc::new(|_: &str| Arc::new(Quiet) as Arc<dyn Progress>),
    })
    .await
    .expect("the demo runs");
    assert_eq!(report.sources.len(), 5);
    assert!(report.matches_truth(), "{}", demo::render(&report));

    let store = ejgate::store::open(&report.store_url).await.unwrap();
    let world = World::generate(SynthConfig::small(SEED));
    let files_counts = sources::truth(System::Files).expected_counts(&world);
    for source in report.sources.iter().filter(|s| s.system != System::Files) {
        let (kinds, tolerances) = shared(source.system, System::Files);
        assert!(kinds.len() >= 8, "{}: {kinds:?}", source.name);
        let c = compare(store.as_ref(), &source.name, "files-demo", &kinds, &tolerances).await.unwrap();
        let expected = sources::truth(source.system).expected_counts(&world);
        for k in &c.kinds {
            // Nothing is compared vacuously: every shared kind has records on both sides.
            assert!(k.first > 0 && k.second > 0, "{}: {} is empty", source.name, k.kind);
            assert_eq!(k.only_first_count, 0, "{}: {} differs from files-demo{}", source.name, k.kind, render(&c));
            if expected.get(&k.kind) == files_counts.get(&k.kind) {
                assert_eq!(k.only_second_count, 0, "{}: {} differs from files-demo{}", source.name, k.kind, render(&c));
            }
        }
    }
}
