//! What one system's API exposes of a synthetic school: each connector's `truth::TRUTH`.
//! The demo, the comparison of sources (сверка) and the acceptance kit read a connector's
//! ground truth through this one shape instead of calling each `truth` module by name.

use std::collections::BTreeMap;

use super::World;
use crate::model::EntityKind;

/// A connector's ground truth over a synthetic school (its README says why it is so).
#[derive(Debug, Clone, Copy)]
pub struct SystemTruth {
    /// The kinds the connector fills
    pub exposed: &'static [EntityKind],
    /// Fields of exposed kinds the system does not fill; a comparison with another source
    /// leaves them out
    pub not_exposed_fields: &'static [(EntityKind, &'static str)],
    /// Date-times the system gives to the minute only
    pub to_the_minute_fields: &'static [(EntityKind, &'static str)],
    /// Which records of the exposed kinds the system shows
    pub reach: Reach,
}

/// Which records of its exposed kinds a system shows.
#[derive(Debug, Clone, Copy)]
pub enum Reach {
    /// Every record, guardians excepted (persons these APIs do not list)
    AllButGuardians,
    /// Every record (an export carries the whole school)
    All,
    /// The system's own rule (КИАСУО: what the operator's children see)
    Own {
        /// The live records per kind a complete sync of a world must hold
        expected_counts: fn(&World) -> BTreeMap<EntityKind, u64>,
        /// Whether a net change of the world (kind, key) concerns a record it shows
        is_exposed: fn(&World, EntityKind, &str) -> bool,
    },
}

impl SystemTruth {
    /// The live records per kind a complete sync of `world` must hold (kinds without
    /// records left out).
    pub fn expected_counts(&self, world: &World) -> BTreeMap<EntityKind, u64> {
        match self.reach {
            Reach::AllButGuardians => world.counts_without_guardians(self.exposed),
            Reach::All => world.counts().into_iter().filter(|(k, n)| self.exposed.contains(k) && *n > 0).collect(),
            Reach::Own { expected_counts, .. } => expected_counts(world),
        }
    }

    /// Whether a net change of the world (kind, key) concerns a record the connector reads.
    pub fn is_exposed(&self, world: &World, kind: EntityKind, key: &str) -> bool {
        self.exposed.contains(&kind)
            && match self.reach {
                Reach::AllButGuardians => !(kind == EntityKind::Person && world.is_guardian(key)),
                Reach::All => true,
                Reach::Own { is_exposed, .. } => is_exposed(world, kind, key),
            }
    }
}
