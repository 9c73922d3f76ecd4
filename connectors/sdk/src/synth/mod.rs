//! The synthetic school: a deterministic, living Russian school year that every emulator
//! serves and every acceptance test checks against.

mod calendar;
mod curriculum;
#[cfg(feature = "acceptance")]
pub mod expected;
mod exposure;
mod generate;
pub mod lookup;
mod names;
mod simulate;
pub mod state;
mod truth;

#[cfg(test)]
mod tests;

pub use exposure::{Reach, SystemTruth};
pub use lookup::{SchoolLookup, WorldCell, WorldLookup};
pub use state::*;

use std::collections::BTreeMap;

use crate::model::EntityKind;

/// A change of the world between two points, with the intermediate steps folded
/// (insert then delete is nothing; insert then update is an insert; …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct NetChange {
    pub kind: EntityKind,
    pub key: String,
    pub op: NetOp,
}

/// The folded operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetOp {
    Insert,
    Update,
    Delete,
}

impl World {
    /// Makes the world from its configuration and simulates it up to `simulate_until`.
    pub fn generate(config: SynthConfig) -> World {
        let start = config.year_start;
        let until = config.simulate_until.max(start);
        let mut world = generate::build(config);
        simulate::run(&mut world, start, until);
        world
    }

    /// Simulates the next `days` days (weekends and holidays included: nothing happens on
    /// them but the date moves).
    pub fn advance(&mut self, days: u32) {
        if days == 0 {
            return;
        }
        let first = self.today + chrono::Duration::days(1);
        let until = self.today + chrono::Duration::days(days as i64);
        simulate::run(self, first, until);
    }

    /// The sequence number of the last truth change (0 when there is none).
    pub fn last_seq(&self) -> u64 {
        self.truth.last().map(|c| c.seq).unwrap_or(0)
    }

    /// Live records per canonical kind, over all schools. Kinds with no live record (final
    /// marks before the first quarter ends, kinds the world never makes) are left out.
    pub fn counts(&self) -> BTreeMap<EntityKind, u64> {
        truth::counts(self)
    }

    /// What an API that lists a school's pupils and staff but not their parents exposes
    /// (Dnevnik, ЭПОС.Школа, «Моя школа»): the live records of `kinds`, the guardians left
    /// out of the persons.
    pub fn counts_without_guardians(&self, kinds: &[EntityKind]) -> BTreeMap<EntityKind, u64> {
        let all = self.counts();
        let guardians: u64 = self.schools.iter().map(|s| s.guardians.len() as u64).sum();
        kinds
            .iter()
            .filter_map(|k| {
                let n = all.get(k).copied().unwrap_or(0);
                let n = if *k == EntityKind::Person { n - guardians } else { n };
                (n > 0).then_some((*k, n))
            })
            .collect()
    }

    /// Whether `key` (a person's key in the truth log) is a guardian.
    pub fn is_guardian(&self, key: &str) -> bool {
        self.schools.iter().any(|s| s.guardians.iter().any(|g| g.id.to_string() == key))
    }

    /// The changes after `seq`, folded per (kind, key).
    pub fn net_changes_since(&self, seq: u64) -> Vec<NetChange> {
        truth::net_changes_since(self, seq)
    }
}
