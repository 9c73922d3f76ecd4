//! Lookups over a [`World`] for the emulators: who a pupil is, their marks, attendance and
//! enrollments, a unit's lessons, a lesson's works, marks and works by date. Built once
//! per change of the world ([`WorldCell::update`]), so that an API answer about one pupil
//! or one class costs what that pupil or class has, not what the whole school has: the
//! emulators must not be what makes a connector look slow in the throughput benchmark.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{NaiveDate, NaiveDateTime};

use super::{School, World};

/// What one school's answers look up.
#[derive(Debug, Default)]
pub struct SchoolLookup {
    /// Pupil id → index into `School::students`
    pub students: HashMap<u64, usize>,
    /// Pupil id → ids of their marks, ascending
    pub marks_by_student: HashMap<u64, Vec<u64>>,
    /// Pupil id → lesson ids of their attendance entries (keys of `School::attendance`),
    /// ascending
    pub attendance_by_student: HashMap<u64, Vec<u64>>,
    /// Pupil id → indexes into `School::enrollments`, ascending
    pub enrollments_by_student: HashMap<u64, Vec<usize>>,
    /// Class or group id → (date, lesson number, lesson id) of its lessons, sorted
    pub lessons_by_unit: HashMap<u64, Vec<(NaiveDate, u8, u64)>>,
    /// Lesson id → ids of its works (homework included), ascending
    pub works_by_lesson: HashMap<u64, Vec<u64>>,
    /// (entered at, mark id) of every mark, sorted
    pub marks_by_entered: Vec<(NaiveDateTime, u64)>,
    /// (date of the work's lesson, work id) of every work whose lesson exists, sorted
    pub works_by_lesson_date: Vec<(NaiveDate, u64)>,
}

impl SchoolLookup {
    pub fn build(school: &School) -> SchoolLookup {
        let mut lk = SchoolLookup {
            students: school.students.iter().enumerate().map(|(i, p)| (p.id, i)).collect(),
            ..SchoolLookup::default()
        };
        // BTreeMaps iterate by id, so every per-key list below comes out ascending.
        for mark in school.marks.values() {
            lk.marks_by_student.entry(mark.student).or_default().push(mark.id);
            lk.marks_by_entered.push((mark.entered_at, mark.id));
        }
        for &(lesson, student) in school.attendance.keys() {
            lk.attendance_by_student.entry(student).or_default().push(lesson);
        }
        for (i, e) in school.enrollments.iter().enumerate() {
            lk.enrollments_by_student.entry(e.student).or_default().push(i);
        }
        for lesson in school.lessons.values() {
            lk.lessons_by_unit.entry(lesson.unit).or_default().push((lesson.date, lesson.number, lesson.id));
        }
        for work in school.works.values() {
            lk.works_by_lesson.entry(work.lesson).or_default().push(work.id);
            if let Some(lesson) = school.lessons.get(&work.lesson) {
                lk.works_by_lesson_date.push((lesson.date, work.id));
            }
        }
        for lessons in lk.lessons_by_unit.values_mut() {
            lessons.sort_unstable();
        }
        for lessons in lk.attendance_by_student.values_mut() {
            lessons.sort_unstable();
        }
        lk.marks_by_entered.sort_unstable();
        lk.works_by_lesson_date.sort_unstable();
        lk
    }

    /// Ids of a pupil's marks.
    pub fn marks_of(&self, student: u64) -> &[u64] {
        self.marks_by_student.get(&student).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Lesson ids of a pupil's attendance entries.
    pub fn attendance_of(&self, student: u64) -> &[u64] {
        self.attendance_by_student.get(&student).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Indexes into `School::enrollments` of a pupil's enrollments.
    pub fn enrollments_of(&self, student: u64) -> &[usize] {
        self.enrollments_by_student.get(&student).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Ids of a lesson's works.
    pub fn works_of(&self, lesson: u64) -> &[u64] {
        self.works_by_lesson.get(&lesson).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Ids of a unit's lessons dated `from..=to`, by date and lesson number.
    pub fn lessons_of(&self, unit: u64, from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = u64> + '_ {
        let rows = self.lessons_by_unit.get(&unit).map(Vec::as_slice).unwrap_or(&[]);
        range_by(rows, |r| r.0, from, to).iter().map(|r| r.2)
    }

    /// Ids of the marks entered on days `from..=to`, by entry time.
    pub fn marks_entered(&self, from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = u64> + '_ {
        range_by(&self.marks_by_entered, |r| r.0.date(), from, to).iter().map(|r| r.1)
    }

    /// Ids of the works whose lesson is dated `from..=to`, by that date.
    pub fn works_dated(&self, from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = u64> + '_ {
        range_by(&self.works_by_lesson_date, |r| r.0, from, to).iter().map(|r| r.1)
    }
}

/// The rows of a list sorted by `key` whose key lies in `from..=to`.
pub fn range_by<T, K: Ord>(rows: &[T], key: impl Fn(&T) -> K, from: K, to: K) -> &[T] {
    let start = rows.partition_point(|r| key(r) < from);
    let end = rows.partition_point(|r| key(r) <= to);
    if start >= end {
        &[]
    } else {
        &rows[start..end]
    }
}

/// Lookups over every school of a world.
#[derive(Debug, Default)]
pub struct WorldLookup {
    /// Parallel to `World::schools`
    pub schools: Vec<SchoolLookup>,
    /// School id → index into `World::schools`
    pub school_by_id: HashMap<u64, usize>,
    /// Pupil id → index into `World::schools`
    pub school_of_student: HashMap<u64, usize>,
    /// Which state of the world these lookups describe: 0 at the start, one more after every
    /// [`WorldCell::update`]. What an emulator caches about the world is valid while this
    /// stays the same.
    pub generation: u64,
}

impl WorldLookup {
    pub fn build(world: &World) -> WorldLookup {
        let mut lookup = WorldLookup::default();
        for (i, school) in world.schools.iter().enumerate() {
            lookup.school_by_id.insert(school.id, i);
            lookup.school_of_student.extend(school.students.iter().map(|p| (p.id, i)));
            lookup.schools.push(SchoolLookup::build(school));
        }
        lookup
    }

    /// The school of a pupil, with its lookups.
    pub fn school_of<'w>(&'w self, world: &'w World, student: u64) -> Option<(&'w School, &'w SchoolLookup)> {
        let &i = self.school_of_student.get(&student)?;
        Some((&world.schools[i], &self.schools[i]))
    }

    /// The school with an id, with its lookups.
    pub fn school<'w>(&'w self, world: &'w World, id: u64) -> Option<(&'w School, &'w SchoolLookup)> {
        let &i = self.school_by_id.get(&id)?;
        Some((&world.schools[i], &self.schools[i]))
    }
}

/// The world with its lookups.
#[derive(Debug)]
struct Indexed {
    world: World,
    lookup: WorldLookup,
}

/// The world an emulator serves, shared by its handlers and its control surface. Cheap to
/// clone. Every change goes through [`WorldCell::update`], which rebuilds the lookups, so
/// an answer never reads stale ones.
#[derive(Clone)]
pub struct WorldCell(Arc<RwLock<Indexed>>);

impl std::fmt::Debug for WorldCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorldCell").finish_non_exhaustive()
    }
}

impl WorldCell {
    pub fn new(world: World) -> Self {
        let lookup = WorldLookup::build(&world);
        WorldCell(Arc::new(RwLock::new(Indexed { world, lookup })))
    }

    /// Reads the world (under the read lock: keep it short).
    pub fn read<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        f(&self.0.read().unwrap_or_else(|e| e.into_inner()).world)
    }

    /// Reads the world with its lookups.
    pub fn read_indexed<R>(&self, f: impl FnOnce(&World, &WorldLookup) -> R) -> R {
        let guard = self.0.read().unwrap_or_else(|e| e.into_inner());
        f(&guard.world, &guard.lookup)
    }

    /// Changes the world (tests: delete a record, …), then rebuilds the lookups.
    pub fn update<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut guard = self.0.write().unwrap_or_else(|e| e.into_inner());
        let result = f(&mut guard.world);
        let generation = guard.lookup.generation + 1;
        guard.lookup = WorldLookup { generation, ..WorldLookup::build(&guard.world) };
        result
    }

    /// Simulates the next `days` days; returns the new today and the last truth sequence.
    pub fn advance(&self, days: u32) -> (NaiveDate, u64) {
        self.update(|w| {
            w.advance(days);
            (w.today, w.last_seq())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::SynthConfig;

    /// Every lookup gives what a scan of the school gives.
    #[test]
    fn lookups_agree_with_a_scan_of_the_school() {
        let world = World::generate(SynthConfig::small(5));
        let lookup = WorldLookup::build(&world);
        let school = &world.schools[0];
        let lk = &lookup.schools[0];
        // A pupil with marks (first-graders get none).
        let pupil = school.marks.values().nth(100).expect("marks").student;
        let scanned: Vec<u64> = school.marks.values().filter(|m| m.student == pupil).map(|m| m.id).collect();
        assert!(!scanned.is_empty());
        assert_eq!(lk.marks_of(pupil), scanned.as_slice());
        let scanned: Vec<u64> = school.attendance.keys().filter(|k| k.1 == pupil).map(|k| k.0).collect();
        assert_eq!(lk.attendance_of(pupil), scanned.as_slice());
        let lesson = *school.lessons.keys().nth(10).unwrap();
        let scanned: Vec<u64> = school.works.values().filter(|w| w.lesson == lesson).map(|w| w.id).collect();
        assert_eq!(lk.works_of(lesson), scanned.as_slice());

        let class = school.classes[0].id;
        let (from, to) = (school.year.start + chrono::Days::new(20), school.year.start + chrono::Days::new(40));
        let mut scanned: Vec<_> =
            school.lessons.values().filter(|l| l.unit == class && l.date >= from && l.date <= to).collect();
        scanned.sort_by_key(|l| (l.date, l.number, l.id));
        let scanned: Vec<u64> = scanned.iter().map(|l| l.id).collect();
        assert!(!scanned.is_empty());
        assert_eq!(lk.lessons_of(class, from, to).collect::<Vec<_>>(), scanned);

        let mut scanned: Vec<u64> = school
            .marks
            .values()
            .filter(|m| m.entered_at.date() >= from && m.entered_at.date() <= to)
            .map(|m| m.id)
            .collect();
        let mut got: Vec<u64> = lk.marks_entered(from, to).collect();
        scanned.sort_unstable();
        got.sort_unstable();
        assert!(!got.is_empty());
        assert_eq!(got, scanned);

        assert_eq!(lookup.school_of(&world, pupil).map(|(s, _)| s.id), Some(school.id));
        assert!(lookup.school_of(&world, 1).is_none());
    }

    /// The cell rebuilds its lookups when the world changes.
    #[test]
    fn an_update_rebuilds_the_lookups() {
        let cell = WorldCell::new(World::generate(SynthConfig::small(5)));
        let (pupil, mark) = cell.read(|w| {
            let m = w.schools[0].marks.values().next().unwrap();
            (m.student, m.id)
        });
        assert!(cell.read_indexed(|_, lk| lk.schools[0].marks_of(pupil).contains(&mark)));
        assert_eq!(cell.read_indexed(|_, lk| lk.generation), 0);
        cell.update(|w| w.schools[0].marks.remove(&mark));
        assert!(!cell.read_indexed(|_, lk| lk.schools[0].marks_of(pupil).contains(&mark)));
        assert_eq!(cell.read_indexed(|_, lk| lk.generation), 1, "a cache keyed by generation sees the change");
    }
}
