//! What of the synthetic world the «Моя школа» API exposes, for comparing a sync with the
//! ground truth. Not exposed through the endpoints the connector reads (README.md):
//! guardians and guardianships, teaching loads, absence notices, acknowledgements,
//! consents (`agree_pers_data` exists, the world keeps none), user activity.

use std::collections::BTreeMap;

use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::World;

/// The kinds the connector fills.
pub const EXPOSED: [EntityKind; 15] = [
    EntityKind::Organization,
    EntityKind::AcademicYear,
    EntityKind::StudyPeriod,
    EntityKind::Holiday,
    EntityKind::Class,
    EntityKind::Group,
    EntityKind::Person,
    EntityKind::Enrollment,
    EntityKind::Subject,
    EntityKind::Lesson,
    EntityKind::Homework,
    EntityKind::Work,
    EntityKind::Mark,
    EntityKind::FinalMark,
    EntityKind::Attendance,
];

/// The live records per kind a complete «Моя школа» sync of `world` must hold.
pub fn expected_counts(world: &World) -> BTreeMap<EntityKind, u64> {
    let all = world.counts();
    let guardians: u64 = world.schools.iter().map(|s| s.guardians.len() as u64).sum();
    EXPOSED
        .iter()
        .filter_map(|k| {
            let n = all.get(k).copied().unwrap_or(0);
            let n = if *k == EntityKind::Person { n - guardians } else { n };
            (n > 0).then_some((*k, n))
        })
        .collect()
}

/// Whether a truth change concerns something the connector reads (guardians are persons
/// the API does not expose).
pub fn is_exposed(world: &World, kind: EntityKind, key: &str) -> bool {
    if !EXPOSED.contains(&kind) {
        return false;
    }
    if kind == EntityKind::Person {
        return !world.schools.iter().any(|s| s.guardians.iter().any(|g| g.id.to_string() == key));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use ejgate_sdk::synth::SynthConfig;

    #[test]
    fn guardians_are_not_counted_and_every_exposed_kind_has_records() {
        let w = World::generate(SynthConfig::small(2));
        let c = expected_counts(&w);
        assert_eq!(c.len(), EXPOSED.len(), "{c:?}");
        let people = w.counts()[&EntityKind::Person];
        assert!(c[&EntityKind::Person] < people);
        let guardian = w.schools[0].guardians[0].id.to_string();
        assert!(!is_exposed(&w, EntityKind::Person, &guardian));
        assert!(is_exposed(&w, EntityKind::Mark, "1"));
        assert!(!is_exposed(&w, EntityKind::Guardianship, "1:2"));
    }
}
