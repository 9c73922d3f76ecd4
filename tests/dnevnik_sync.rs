//! End to end: the Dnevnik emulator serving the synthetic school → the connector → the
//! sync engine → SQLite. The ground truth, the idempotent re-sync, the change log after the
//! school lives on, broken answers, a failure in the middle of a run and the request limit
//! are the acceptance kit's (`tests/acceptance.rs`); what is Dnevnik's own is here.

mod common;

use std::collections::BTreeSet;

use common::Harness;
use ejgate::store::RunStatus;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::synth::SynthConfig;

#[tokio::test]
async fn ids_above_two_to_the_53_survive_exactly() {
    let h = Harness::new(SynthConfig::small(2)).await;
    assert_eq!(h.sync(SyncMode::Full).await.status, RunStatus::Succeeded);
    let marks = h.store.records(ejgate_sdk::model::EntityKind::Mark, None, false).await.unwrap();
    let world_ids: BTreeSet<String> =
        h.emulator.world().read(|w| w.schools.iter().flat_map(|s| s.marks.keys().map(|k| k.to_string())).collect());
    let stored: BTreeSet<String> = marks.iter().map(|m| m.source_id.clone()).collect();
    assert!(world_ids.iter().all(|id| id.parse::<u64>().unwrap() > (1u64 << 53)));
    assert_eq!(stored, world_ids);
}
