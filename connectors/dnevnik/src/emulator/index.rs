//! The world as served: the synthetic [`World`] plus indexes built once (at start and after
//! every change of the world), so that every list the API answers is a range lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::http::HeaderValue;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;
use ejgate_sdk::synth::{School, SynthClass, SynthGroup, SynthLesson, World};

/// The school time zone used when a configured name is not an IANA zone: Moscow, UTC+3
/// (no daylight saving since 2014).
const FALLBACK_OFFSET_HOURS: i64 = 3;

/// A class or a group.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UnitRef {
    /// Index into `School::classes`
    Class(usize),
    /// Index into `School::groups`
    Group(usize),
}

/// What the API lists about one class or group, sorted for range lookups.
#[derive(Debug)]
pub(crate) struct UnitIndex {
    /// Index into `World::schools`
    pub school: usize,
    pub unit: UnitRef,
    /// (lesson date, lesson number, lesson id), sorted
    pub lessons: Vec<(NaiveDate, u8, u64)>,
    /// (entered at, mark id, the work's work type) of marks on this unit's lessons, sorted
    pub marks: Vec<(NaiveDateTime, u64, u64)>,
    /// (lesson date, lesson id, student id) of attendance entries, sorted
    pub attendance: Vec<(NaiveDate, u64, u64)>,
    /// (student id, active) of everyone ever enrolled, sorted by student, one row each
    pub members: Vec<(u64, bool)>,
}

/// Per-school facts derived from the configuration.
#[derive(Debug)]
pub(crate) struct SchoolIndex {
    pub tz: Option<Tz>,
    /// Student id → index into `School::students`
    pub students: HashMap<u64, usize>,
}

/// The indexes over a world.
#[derive(Debug)]
pub(crate) struct Index {
    /// School id → index into `World::schools`
    pub schools: HashMap<u64, usize>,
    /// Parallel to `World::schools`
    pub school_info: Vec<SchoolIndex>,
    /// Class or group id → its lists
    pub units: HashMap<u64, UnitIndex>,
    /// Lesson id → its works (homework included), by id
    pub lesson_works: HashMap<u64, Vec<u64>>,
    /// Lesson id → index into `World::schools`
    pub lesson_school: HashMap<u64, usize>,
    /// Student id → (unit, active) of every class and group they were ever in
    pub student_units: HashMap<u64, Vec<(u64, bool)>>,
    /// Student id → (entered at, mark id, the work's work type), sorted
    pub student_marks: HashMap<u64, Vec<(NaiveDateTime, u64, u64)>>,
    /// Student id → (lesson date, lesson id), sorted
    pub student_attendance: HashMap<u64, Vec<(NaiveDate, u64)>>,
    /// Lesson id → its marks, by id
    pub lesson_marks: HashMap<u64, Vec<u64>>,
    /// Person id → (school index, the person is a guardian)
    pub people: HashMap<u64, (usize, bool)>,
}

/// The world with its indexes; what the handlers read under the lock.
#[derive(Debug)]
pub(crate) struct Served {
    pub world: World,
    pub index: Index,
}

impl Served {
    pub fn new(world: World) -> Self {
        let index = Index::build(&world);
        Served { world, index }
    }

    pub fn school(&self, id: u64) -> Option<(usize, &School)> {
        let &i = self.index.schools.get(&id)?;
        Some((i, &self.world.schools[i]))
    }

    pub fn unit(&self, id: u64) -> Option<(&UnitIndex, &School)> {
        let u = self.index.units.get(&id)?;
        Some((u, &self.world.schools[u.school]))
    }

    /// A lesson by id: (school index, school, lesson).
    pub fn lesson(&self, id: u64) -> Option<(usize, &School, &SynthLesson)> {
        let &si = self.index.lesson_school.get(&id)?;
        let school = &self.world.schools[si];
        Some((si, school, school.lessons.get(&id)?))
    }

    /// The class a unit is or belongs to, and its group when it is a group.
    pub fn class_of(school: &School, unit: UnitRef) -> (Option<&SynthClass>, Option<&SynthGroup>) {
        match unit {
            UnitRef::Class(c) => (Some(&school.classes[c]), None),
            UnitRef::Group(g) => {
                let group = &school.groups[g];
                (school.classes.iter().find(|c| c.id == group.class_id), Some(group))
            }
        }
    }

    /// A local school time in UTC.
    pub fn to_utc(&self, school: usize, local: NaiveDateTime) -> NaiveDateTime {
        to_utc(self.index.school_info[school].tz, local)
    }

    /// Hours from UTC of a school on a day (`timeZone` of `schools/{s}`).
    pub fn utc_offset_hours(&self, school: usize, day: NaiveDate) -> i32 {
        match self.index.school_info[school].tz {
            Some(tz) => tz.offset_from_utc_date(&day).fix().local_minus_utc() / 3600,
            None => FALLBACK_OFFSET_HOURS as i32,
        }
    }

    /// The emulator's clock: the world's today at 20:00 school time, as an HTTP date.
    pub fn date_header(&self) -> HeaderValue {
        let local = self.world.today.and_time(NaiveTime::from_hms_opt(20, 0, 0).expect("20:00"));
        let utc = to_utc(self.world.config.time_zone.parse().ok(), local);
        let text = utc.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        HeaderValue::from_str(&text).expect("an HTTP date is a valid header value")
    }
}

fn to_utc(tz: Option<Tz>, local: NaiveDateTime) -> NaiveDateTime {
    match tz.and_then(|tz| tz.from_local_datetime(&local).earliest()) {
        Some(t) => t.naive_utc(),
        None => local - chrono::Duration::hours(FALLBACK_OFFSET_HOURS),
    }
}

impl Index {
    pub fn build(world: &World) -> Index {
        let mut schools = HashMap::with_capacity(world.schools.len());
        let mut school_info = Vec::with_capacity(world.schools.len());
        let mut units: HashMap<u64, UnitIndex> = HashMap::new();
        let mut lesson_works: HashMap<u64, Vec<u64>> = HashMap::new();
        let mut lesson_school: HashMap<u64, usize> = HashMap::new();
        let mut student_units: HashMap<u64, Vec<(u64, bool)>> = HashMap::new();
        let mut student_marks: HashMap<u64, Vec<(NaiveDateTime, u64, u64)>> = HashMap::new();
        let mut student_attendance: HashMap<u64, Vec<(NaiveDate, u64)>> = HashMap::new();
        let mut lesson_marks: HashMap<u64, Vec<u64>> = HashMap::new();
        let mut people: HashMap<u64, (usize, bool)> = HashMap::new();

        for (si, school) in world.schools.iter().enumerate() {
            schools.insert(school.id, si);
            school_info.push(SchoolIndex {
                tz: school.time_zone.parse().ok(),
                students: school.students.iter().enumerate().map(|(i, p)| (p.id, i)).collect(),
            });
            let new_unit = |unit| UnitIndex {
                school: si,
                unit,
                lessons: Vec::new(),
                marks: Vec::new(),
                attendance: Vec::new(),
                members: Vec::new(),
            };
            for (i, class) in school.classes.iter().enumerate() {
                units.insert(class.id, new_unit(UnitRef::Class(i)));
            }
            for (i, group) in school.groups.iter().enumerate() {
                units.insert(group.id, new_unit(UnitRef::Group(i)));
            }
            for p in school.students.iter().chain(&school.teachers) {
                people.insert(p.id, (si, false));
            }
            for p in &school.guardians {
                people.insert(p.id, (si, true));
            }
            for lesson in school.lessons.values() {
                lesson_school.insert(lesson.id, si);
                if let Some(u) = units.get_mut(&lesson.unit) {
                    u.lessons.push((lesson.date, lesson.number, lesson.id));
                }
            }
            for work in school.works.values() {
                lesson_works.entry(work.lesson).or_default().push(work.id);
            }
            for mark in school.marks.values() {
                let Some(lesson) = school.lessons.get(&mark.lesson) else {
                    continue;
                };
                let work_type = school.works.get(&mark.work).map(|w| w.work_type).unwrap_or(0);
                student_marks.entry(mark.student).or_default().push((mark.entered_at, mark.id, work_type));
                lesson_marks.entry(mark.lesson).or_default().push(mark.id);
                if let Some(u) = units.get_mut(&lesson.unit) {
                    u.marks.push((mark.entered_at, mark.id, work_type));
                }
            }
            for &(lesson_id, student) in school.attendance.keys() {
                let Some(lesson) = school.lessons.get(&lesson_id) else {
                    continue;
                };
                student_attendance.entry(student).or_default().push((lesson.date, lesson_id));
                if let Some(u) = units.get_mut(&lesson.unit) {
                    u.attendance.push((lesson.date, lesson_id, student));
                }
            }
            for e in &school.enrollments {
                if let Some(u) = units.get_mut(&e.unit) {
                    u.members.push((e.student, e.active));
                }
                student_units.entry(e.student).or_default().push((e.unit, e.active));
            }
        }
        for u in units.values_mut() {
            u.lessons.sort_unstable();
            u.marks.sort_unstable();
            u.attendance.sort_unstable();
            // One row per student: active when any of their enrollments in the unit is.
            u.members.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            u.members.dedup_by_key(|m| m.0);
        }
        for v in student_marks.values_mut() {
            v.sort_unstable();
        }
        for v in student_attendance.values_mut() {
            v.sort_unstable();
        }
        for v in student_units.values_mut() {
            // One row per unit: active when any enrollment in it is.
            v.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            v.dedup_by_key(|m| m.0);
        }
        Index {
            schools,
            school_info,
            units,
            lesson_works,
            lesson_school,
            student_units,
            student_marks,
            student_attendance,
            lesson_marks,
            people,
        }
    }
}

/// The synthetic world an emulator serves, shared between the server and its owner.
///
/// Every change goes through [`WorldCell::update`] (or [`WorldCell::advance`]), which
/// rebuilds the indexes and the emulator clock, so the API never serves stale indexes.
#[derive(Clone)]
pub struct WorldCell {
    pub(crate) served: Arc<RwLock<Served>>,
    /// The `Date` header value; apart from the world so that answers which need no data
    /// do not wait for the world lock.
    pub(crate) date: Arc<Mutex<HeaderValue>>,
}

impl std::fmt::Debug for WorldCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorldCell").finish_non_exhaustive()
    }
}

impl WorldCell {
    pub(crate) fn new(world: World) -> Self {
        let served = Served::new(world);
        let date = served.date_header();
        WorldCell { served: Arc::new(RwLock::new(served)), date: Arc::new(Mutex::new(date)) }
    }

    /// Reads the world (under the read lock: keep it short).
    pub fn read<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        f(&self.read_served().world)
    }

    /// Changes the world, then rebuilds the indexes and the clock (under the write lock).
    pub fn update<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut served = self.served.write().unwrap_or_else(|e| e.into_inner());
        let result = f(&mut served.world);
        served.index = Index::build(&served.world);
        *self.date.lock().unwrap_or_else(|e| e.into_inner()) = served.date_header();
        result
    }

    /// Simulates the next `days` days; returns the new today and the last truth sequence.
    pub fn advance(&self, days: u32) -> (NaiveDate, u64) {
        self.update(|w| {
            w.advance(days);
            (w.today, w.last_seq())
        })
    }

    pub(crate) fn read_served(&self) -> std::sync::RwLockReadGuard<'_, Served> {
        self.served.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn date_header(&self) -> HeaderValue {
        self.date.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl ejgate_sdk::emulator::ServedWorld for WorldCell {
    fn read<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        WorldCell::read(self, f)
    }

    fn advance(&self, days: u32) -> (NaiveDate, u64) {
        WorldCell::advance(self, days)
    }
}
