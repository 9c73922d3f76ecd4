//! What of the synthetic world the КИАСУО diary API exposes, for comparing a sync with the
//! ground truth, and who sees what (the emulator serves by the same rules; API.md).
//!
//! The diary is a parent's view: with the operator's account every pupil is a "child"
//! (README.md). Not exposed: teachers and guardians as persons (a lesson names its teacher
//! as text only), guardianships, enrollments (a child's class is all there is; subgroups are
//! invisible), groups, subjects as records, teaching loads, works, holidays, the
//! organization and the academic year as records, absence notices, acknowledgements,
//! consents, user activity.

use std::collections::{BTreeMap, HashMap, HashSet};

use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{Reach, School, SynthEnrollment, SynthLesson, SystemTruth, World};

/// The kinds the connector fills.
pub const EXPOSED: [EntityKind; 8] = [
    EntityKind::StudyPeriod,
    EntityKind::Class,
    EntityKind::Person,
    EntityKind::Lesson,
    EntityKind::Homework,
    EntityKind::Mark,
    EntityKind::FinalMark,
    EntityKind::Attendance,
];

/// Fields of exposed kinds that the system does not fill (README.md says why); a
/// comparison with another source leaves them out.
pub const NOT_EXPOSED_FIELDS: &[(EntityKind, &str)] = &[
    // The organization and the academic year are not records of this API.
    (EntityKind::StudyPeriod, "organization"),
    (EntityKind::StudyPeriod, "academic_year"),
    (EntityKind::Class, "organization"),
    (EntityKind::Class, "academic_year"),
    // Teachers are not persons here (a lesson names its teacher as text).
    (EntityKind::Class, "homeroom_teacher"),
    (EntityKind::Lesson, "teacher"),
    (EntityKind::Lesson, "substitute"),
    // Subgroups are invisible: a subgroup's lesson is a lesson of the class.
    (EntityKind::Lesson, "unit"),
    // Subjects are referenced by id but are not records of this API.
    (EntityKind::Lesson, "subject"),
    (EntityKind::Mark, "subject"),
    (EntityKind::FinalMark, "subject"),
    (EntityKind::Person, "sex"),
    (EntityKind::Person, "birth_date"),
    (EntityKind::Homework, "entered_at"),
    // `student_marks` gives a period mark without the time it was set.
    (EntityKind::FinalMark, "entered_at"),
    (EntityKind::Mark, "work"),
    (EntityKind::Mark, "entered_by"),
    // The system has them, but the emulator does not serve them nor the connector read them
    // yet (issue #14: the synthetic world carries them since this session).
    (EntityKind::Lesson, "section"),
    (EntityKind::Homework, "attachments"),
    (EntityKind::Mark, "comment"),
    (EntityKind::Mark, "is_point"),
    (EntityKind::Mark, "point_date"),
];

/// What the connector exposes, in the shape the demo, the comparison and the acceptance kit read.
pub const TRUTH: SystemTruth = SystemTruth {
    exposed: &EXPOSED,
    not_exposed_fields: NOT_EXPOSED_FIELDS,
    to_the_minute_fields: &[],
    reach: Reach::Own { expected_counts, is_exposed },
};

/// Who sees what in one school: every pupil with a class is a child of the operator's
/// account; a child sees the lessons of its class and of the groups of that class it is
/// enrolled in.
#[derive(Debug, Default)]
pub struct Visibility {
    /// pupil → class
    pub class_of: BTreeMap<u64, u64>,
    /// group → its class
    group_class: HashMap<u64, u64>,
    /// (group, pupil) enrolled
    group_members: HashSet<(u64, u64)>,
    classes: HashSet<u64>,
}

impl Visibility {
    pub fn of(school: &School) -> Visibility {
        let classes: HashSet<u64> = school.classes.iter().map(|c| c.id).collect();
        let group_class: HashMap<u64, u64> = school.groups.iter().map(|g| (g.id, g.class_id)).collect();
        let mut class_of = BTreeMap::new();
        let mut group_members = HashSet::new();
        for e in &school.enrollments {
            if classes.contains(&e.unit) {
                class_of.entry(e.student).or_insert(e.unit);
            } else if group_class.contains_key(&e.unit) {
                group_members.insert((e.unit, e.student));
            }
        }
        Visibility { class_of, group_class, group_members, classes }
    }

    /// Whether `pupil` sees lessons of `unit` (a class or a group).
    pub fn sees_unit(&self, pupil: u64, unit: u64) -> bool {
        let Some(&class) = self.class_of.get(&pupil) else { return false };
        if unit == class {
            return true;
        }
        self.group_class.get(&unit) == Some(&class) && self.group_members.contains(&(unit, pupil))
    }

    /// Whether any pupil sees lessons of `unit`.
    pub fn unit_seen(&self, unit: u64) -> bool {
        if self.classes.contains(&unit) {
            return self.class_of.values().any(|c| *c == unit);
        }
        match self.group_class.get(&unit) {
            Some(class) => self.group_members.iter().any(|(g, p)| *g == unit && self.class_of.get(p) == Some(class)),
            None => false,
        }
    }
}

/// What one child sees, by the rule of [`Visibility`], from that child's enrollments alone
/// (the emulator answers per child and must not scan the school for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildView {
    /// The child's class: the first class it is enrolled in
    pub class: u64,
    /// The class, then the groups of that class the child is enrolled in
    pub units: Vec<u64>,
}

impl ChildView {
    /// `enrollments`: the child's, in the school's order. `None`: the child has no class.
    pub fn of<'a>(school: &School, enrollments: impl IntoIterator<Item = &'a SynthEnrollment>) -> Option<ChildView> {
        let enrollments: Vec<&SynthEnrollment> = enrollments.into_iter().collect();
        let class = enrollments.iter().map(|e| e.unit).find(|u| school.classes.iter().any(|c| c.id == *u))?;
        let mut units = vec![class];
        for e in &enrollments {
            let in_class = school.groups.iter().any(|g| g.id == e.unit && g.class_id == class);
            if in_class && !units.contains(&e.unit) {
                units.push(e.unit);
            }
        }
        Some(ChildView { class, units })
    }
}

/// Whether a lesson's date lies in one of the school's study periods (`lesson_marks` is read
/// per period).
pub fn in_a_period(school: &School, lesson: &SynthLesson) -> bool {
    school.periods.iter().any(|p| p.start <= lesson.date && lesson.date <= p.end)
}

/// The live records per kind a complete КИАСУО sync of `world` must hold.
pub fn expected_counts(world: &World) -> BTreeMap<EntityKind, u64> {
    let mut c: BTreeMap<EntityKind, u64> = EXPOSED.iter().map(|k| (*k, 0)).collect();
    let mut add = |k: EntityKind, n: usize| *c.get_mut(&k).expect("an exposed kind") += n as u64;
    for s in &world.schools {
        let v = Visibility::of(s);
        add(EntityKind::StudyPeriod, s.periods.len());
        add(EntityKind::Class, s.classes.len());
        add(EntityKind::Person, v.class_of.len());
        let seen: HashSet<u64> = s.lessons.values().filter(|l| v.unit_seen(l.unit)).map(|l| l.id).collect();
        add(EntityKind::Lesson, seen.len());
        add(EntityKind::Homework, s.works.values().filter(|w| w.is_homework && seen.contains(&w.lesson)).count());
        let marked = |student: u64, lesson: u64| {
            s.lessons.get(&lesson).is_some_and(|l| v.sees_unit(student, l.unit) && in_a_period(s, l))
        };
        add(EntityKind::Mark, s.marks.values().filter(|m| marked(m.student, m.lesson)).count());
        add(EntityKind::Attendance, s.attendance.keys().filter(|(lesson, student)| marked(*student, *lesson)).count());
        add(
            EntityKind::FinalMark,
            s.final_marks.keys().filter(|(student, _, _)| v.class_of.contains_key(student)).count(),
        );
    }
    c.retain(|_, n| *n > 0);
    c
}

/// Whether a truth change concerns something the connector reads (teachers and guardians
/// are persons the API does not expose).
pub fn is_exposed(world: &World, kind: EntityKind, key: &str) -> bool {
    if !EXPOSED.contains(&kind) {
        return false;
    }
    if kind == EntityKind::Person {
        return world.schools.iter().any(|s| s.students.iter().any(|p| p.id.to_string() == key));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use ejgate_sdk::synth::SynthConfig;

    /// The per-child view the emulator answers with agrees with the school-wide rule the
    /// ground truth is computed by, for every pupil and every unit.
    #[test]
    fn a_childs_view_follows_the_visibility_rule() {
        let world = World::generate(SynthConfig::small(9));
        let school = &world.schools[0];
        let rule = Visibility::of(school);
        let units: Vec<u64> = school.classes.iter().map(|c| c.id).chain(school.groups.iter().map(|g| g.id)).collect();
        let mut with_groups = 0;
        for p in &school.students {
            let view = ChildView::of(school, school.enrollments.iter().filter(|e| e.student == p.id));
            assert_eq!(view.as_ref().map(|v| v.class), rule.class_of.get(&p.id).copied());
            for &u in &units {
                let sees = view.as_ref().is_some_and(|v| v.units.contains(&u));
                assert_eq!(sees, rule.sees_unit(p.id, u), "pupil {} unit {u}", p.id);
            }
            with_groups += view.is_some_and(|v| v.units.len() > 1) as usize;
        }
        assert!(with_groups > 0, "some pupils are in groups: the test covers groups");
    }
}
