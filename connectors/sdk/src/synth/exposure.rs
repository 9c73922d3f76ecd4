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
    /// The live records per kind a complete sync of a world must hold (kinds without
    /// records left out)
    pub expected_counts: fn(&World) -> BTreeMap<EntityKind, u64>,
    /// Whether a net change of the world (kind, key) concerns a record the connector reads
    pub is_exposed: fn(&World, EntityKind, &str) -> bool,
}
