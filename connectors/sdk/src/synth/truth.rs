//! Reading the world: live record counts and the truth log folded into net changes.

use std::collections::BTreeMap;

use super::state::{TruthOp, World};
use super::{NetChange, NetOp};
use crate::model::EntityKind;

pub(super) fn counts(world: &World) -> BTreeMap<EntityKind, u64> {
    let mut c: BTreeMap<EntityKind, u64> = BTreeMap::new();
    let mut add = |k: EntityKind, n: usize| *c.entry(k).or_default() += n as u64;
    for s in &world.schools {
        add(EntityKind::Organization, 1);
        add(EntityKind::AcademicYear, 1);
        add(EntityKind::StudyPeriod, s.periods.len());
        add(EntityKind::Holiday, s.holidays.len());
        add(EntityKind::Class, s.classes.len());
        add(EntityKind::Group, s.groups.len());
        add(EntityKind::Person, s.teachers.len() + s.students.len() + s.guardians.len());
        add(EntityKind::Guardianship, s.guardianships.len());
        add(EntityKind::Enrollment, s.enrollments.len());
        add(EntityKind::Subject, s.subjects.len());
        add(EntityKind::TeachingLoad, s.loads.len());
        add(EntityKind::Lesson, s.lessons.len());
        let homework = s.works.values().filter(|w| w.is_homework).count();
        add(EntityKind::Homework, homework);
        add(EntityKind::Work, s.works.len() - homework);
        add(EntityKind::Mark, s.marks.len());
        add(EntityKind::FinalMark, s.final_marks.len());
        add(EntityKind::Attendance, s.attendance.len());
    }
    c.retain(|_, n| *n > 0);
    c
}

pub(super) fn net_changes_since(world: &World, seq: u64) -> Vec<NetChange> {
    let start = world.truth.partition_point(|c| c.seq <= seq);
    // (kind, key) → (first op, last op)
    let mut fold: BTreeMap<(EntityKind, &str), (TruthOp, TruthOp)> = BTreeMap::new();
    for c in &world.truth[start..] {
        fold.entry((c.kind, c.key.as_str())).and_modify(|e| e.1 = c.op).or_insert((c.op, c.op));
    }
    fold.into_iter()
        .filter_map(|((kind, key), (first, last))| {
            let op = match (first, last) {
                (TruthOp::Insert, TruthOp::Delete) => return None,
                (TruthOp::Insert, _) => NetOp::Insert,
                (TruthOp::Update, TruthOp::Delete) => NetOp::Delete,
                (TruthOp::Update, _) => NetOp::Update,
                (TruthOp::Delete, TruthOp::Delete) => NetOp::Delete,
                (TruthOp::Delete, _) => NetOp::Update,
            };
            Some(NetChange { kind, key: key.to_string(), op })
        })
        .collect()
}
