//! A synthetic school written straight into the store as one source's full sync, without
//! an emulator: the records a complete sync of a system exposing everything would store
//! ([`ExpectedRecords`]). For the reports' tests and benchmarks, whose expected figures
//! come from the same world; behind the `acceptance` feature.

use ejgate_sdk::model::IdSpace;
use ejgate_sdk::synth::expected::ExpectedRecords;
use ejgate_sdk::synth::World;

use crate::store::{ChangeSet, RunStats, RunStatus, Store};

/// Writes every live record of `world` as the source `source` (its id space), in batches,
/// as one succeeded full run.
pub async fn store_world(store: &dyn Store, source: &str, world: &World) -> anyhow::Result<()> {
    let expected = ExpectedRecords::of(world, &IdSpace::new(source));
    let run = store.begin_run(source, "full").await?;
    let mut upserts: Vec<_> = expected.records.into_values().map(crate::sync::canonical).collect();
    let total = upserts.len() as u64;
    while !upserts.is_empty() {
        let batch = upserts.split_off(upserts.len().saturating_sub(20_000));
        store.apply(run, source, &ChangeSet { upserts: batch, deletes: vec![], seen: vec![] }, &[]).await?;
    }
    store
        .finish_run(
            run,
            RunStatus::Succeeded,
            None,
            &RunStats { records_read: total, inserted: total, ..Default::default() },
        )
        .await?;
    Ok(())
}

/// Writes each school of `world` as a source of its own (`sources[i]` for school `i`): a
/// district of schools on separate systems.
pub async fn store_schools(store: &dyn Store, world: &World, sources: &[String]) -> anyhow::Result<()> {
    anyhow::ensure!(sources.len() == world.schools.len(), "one source per school of the world");
    for (school, source) in world.schools.iter().zip(sources) {
        let one = World {
            config: world.config.clone(),
            today: world.today,
            schools: vec![school.clone()],
            truth: Vec::new(),
            next_id: world.next_id,
            sim: Default::default(),
        };
        store_world(store, source, &one).await?;
    }
    Ok(())
}
