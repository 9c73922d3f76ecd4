//! The living school: day by day, lessons with topics, works, homework, marks and
//! attendance; final marks at the end of each quarter; reasons of absences given later;
//! and the injected breaches of the regulations.
//!
//! Every day of every school draws from its own random stream (seeded from the world's seed,
//! the school and the date), and everything carried between days lives in the world
//! ([`SimState`]), so `advance` continues exactly as one longer `generate` would have.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::calendar::Calendar;
use super::curriculum::Subj;
use super::generate::Ids;
use super::state::*;
use crate::model::{EntityKind, GroupKind};

/// Simulates the days after `world.today` up to and including `until`.
pub(super) fn run(world: &mut World, first: NaiveDate, until: NaiveDate) {
    let mut ctxs: Vec<SchoolCtx> =
        world.schools.iter().enumerate().map(|(i, s)| SchoolCtx::new(s, i, world.config.seed, world.today)).collect();
    let mut day = first;
    while day <= until {
        simulate_day(world, &mut ctxs, day);
        world.today = day;
        day += Duration::days(1);
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn mix(a: u64, b: u64, c: u64) -> u64 {
    splitmix(splitmix(splitmix(a) ^ b) ^ c)
}

/// A roughly normal number (mean 0, deviation 1) from plain arithmetic, so that it is the
/// same on every platform.
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let s: f64 = (0..4).map(|_| rng.random::<f64>()).sum();
    (s - 2.0) * 3f64.sqrt()
}

/// About one lesson in this many gets a monitoring case of each kind (one written or control
/// work in five: they are rarer).
const MONITOR_EVERY: u64 = 25;

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnitKind {
    Class,
    Subgroup,
    AfterSchool,
    Extracurricular,
}

struct StudentInfo {
    id: u64,
    ability: f64,
    /// How often the student misses school (1 = average)
    absence: f64,
    /// Освобождён от физической культуры
    pe_exempt: bool,
}

struct UnitInfo {
    class: usize,
    grade: u8,
    kind: UnitKind,
    /// Student indexes
    members: Vec<usize>,
}

impl UnitInfo {
    /// Lessons of the unit get marks (not in grade 1, not the ГПД or courses).
    fn graded(&self) -> bool {
        matches!(self.kind, UnitKind::Class | UnitKind::Subgroup) && self.grade >= 2
    }
}

struct ClassInfo {
    id: u64,
    grade: u8,
    students: Vec<usize>,
    /// Graded subjects of the class and its subgroups, in the school's order
    subjects: Vec<u64>,
    /// The last lesson number per weekday
    last_number: [u8; 5],
}

#[derive(Clone, Copy)]
struct Slot {
    unit: u64,
    subject: u64,
    teacher: u64,
    number: u8,
}

/// A period's marks summed per (student, subject).
type FinalCache = (usize, HashMap<(u64, u64), Acc>);

#[derive(Clone, Copy, Default)]
struct Acc {
    weight: u32,
    weighted: u32,
    n: u32,
}

/// What the simulation of one school knows besides its state: lookups and counters that
/// are rebuilt from the state at the start of every run.
struct SchoolCtx {
    index: usize,
    cal: Calendar,
    students: Vec<StudentInfo>,
    student_idx: HashMap<u64, usize>,
    /// Student index → class index
    class_of: Vec<Option<usize>>,
    subj: HashMap<u64, Subj>,
    subject_idx: HashMap<u64, usize>,
    units: HashMap<u64, UnitInfo>,
    classes: Vec<ClassInfo>,
    slots: [Vec<Slot>; 5],
    work_type: HashMap<&'static str, u64>,
    weight: HashMap<u64, u32>,
    /// (unit, subject) → (lessons per week, weekdays with a lesson)
    weekly: HashMap<(u64, u64), (u32, [bool; 5])>,
    subject_teachers: HashMap<u64, Vec<u64>>,
    teachers: Vec<u64>,
    /// (unit, subject) → lessons held so far
    held: HashMap<(u64, u64), u32>,
    /// The period whose marks `mark_counts` counts
    cur_period: Option<usize>,
    /// Marks per (student index, subject index) in lessons of `cur_period`
    mark_counts: Vec<u16>,
    /// The first lesson id of each day
    lesson_first: BTreeMap<NaiveDate, u64>,
    /// (period index, accumulated marks per (student, subject)); dropped on any mark change
    final_cache: Option<FinalCache>,
}

const CODES: [&str; 8] =
    ["lesson", "written", "control", "test", "internal_control", "independent", "practical", "homework"];

impl SchoolCtx {
    fn new(s: &School, index: usize, seed: u64, today: NaiveDate) -> SchoolCtx {
        let cal = Calendar::new(s);
        let mut students = Vec::with_capacity(s.students.len());
        let mut student_idx = HashMap::new();
        for p in &s.students {
            let mut r = ChaCha8Rng::seed_from_u64(mix(seed, p.id, 0x7A17));
            let ability = (3.9 + 0.55 * normal(&mut r)).clamp(2.6, 4.95);
            let mut absence = 0.4 + 1.3 * r.random::<f64>();
            if r.random_bool(0.06) {
                absence *= 2.5;
            }
            let pe_exempt = r.random_bool(0.015);
            student_idx.insert(p.id, students.len());
            students.push(StudentInfo { id: p.id, ability, absence, pe_exempt });
        }
        let subj: HashMap<u64, Subj> =
            s.subjects.iter().map(|x| (x.id, Subj::from_name(&x.name).unwrap_or(Subj::Russian))).collect();
        let subject_idx: HashMap<u64, usize> = s.subjects.iter().enumerate().map(|(i, x)| (x.id, i)).collect();
        let class_idx: HashMap<u64, usize> = s.classes.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        let mut units: HashMap<u64, UnitInfo> = HashMap::new();
        for (i, c) in s.classes.iter().enumerate() {
            units.insert(c.id, UnitInfo { class: i, grade: c.grade, kind: UnitKind::Class, members: Vec::new() });
        }
        for g in &s.groups {
            let Some(&ci) = class_idx.get(&g.class_id) else { continue };
            let kind = match g.kind {
                GroupKind::AfterSchool => UnitKind::AfterSchool,
                GroupKind::Extracurricular | GroupKind::Elective => UnitKind::Extracurricular,
                GroupKind::Subgroup | GroupKind::StudyGroup => UnitKind::Subgroup,
            };
            units.insert(g.id, UnitInfo { class: ci, grade: s.classes[ci].grade, kind, members: Vec::new() });
        }
        let mut classes: Vec<ClassInfo> = s
            .classes
            .iter()
            .map(|c| ClassInfo {
                id: c.id,
                grade: c.grade,
                students: Vec::new(),
                subjects: Vec::new(),
                last_number: [0; 5],
            })
            .collect();
        for e in s.enrollments.iter().filter(|e| e.active) {
            let (Some(u), Some(&st)) = (units.get_mut(&e.unit), student_idx.get(&e.student)) else {
                continue;
            };
            u.members.push(st);
            if u.kind == UnitKind::Class {
                classes[u.class].students.push(st);
            }
        }
        let mut slots: [Vec<Slot>; 5] = Default::default();
        let mut weekly: HashMap<(u64, u64), (u32, [bool; 5])> = HashMap::new();
        let mut class_subjects: Vec<Vec<u64>> = vec![Vec::new(); classes.len()];
        for t in &s.timetable {
            let wd = t.weekday as usize;
            if !(1..=5).contains(&wd) {
                continue;
            }
            slots[wd - 1].push(Slot { unit: t.unit, subject: t.subject, teacher: t.teacher, number: t.number });
            let w = weekly.entry((t.unit, t.subject)).or_insert((0, [false; 5]));
            w.0 += 1;
            w.1[wd - 1] = true;
            if let Some(u) = units.get(&t.unit) {
                let c = &mut classes[u.class];
                if u.kind == UnitKind::Class || u.kind == UnitKind::Subgroup {
                    c.last_number[wd - 1] = c.last_number[wd - 1].max(t.number);
                }
                if u.graded() && subj.get(&t.subject).is_some_and(|x| x.graded()) {
                    class_subjects[u.class].push(t.subject);
                }
            }
        }
        let mut class_of = vec![None; students.len()];
        for (ci, c) in classes.iter().enumerate() {
            for &st in &c.students {
                class_of[st] = Some(ci);
            }
        }
        for (c, mut list) in classes.iter_mut().zip(class_subjects) {
            list.sort_by_key(|x| subject_idx.get(x).copied().unwrap_or(usize::MAX));
            list.dedup();
            c.subjects = list;
        }
        for day in &mut slots {
            day.sort_by_key(|x| (x.number, x.unit));
        }
        let work_type: HashMap<&'static str, u64> = CODES
            .iter()
            .filter_map(|&code| s.work_types.iter().find(|w| w.code == code).map(|w| (code, w.id)))
            .collect();
        let weight = s.work_types.iter().map(|w| (w.id, w.weight as u32)).collect();
        let mut subject_teachers: HashMap<u64, Vec<u64>> = HashMap::new();
        for l in &s.loads {
            let v = subject_teachers.entry(l.subject).or_default();
            if !v.contains(&l.teacher) {
                v.push(l.teacher);
            }
        }
        let mut held: HashMap<(u64, u64), u32> = HashMap::new();
        let mut lesson_first = BTreeMap::new();
        for l in s.lessons.values() {
            lesson_first.entry(l.date).or_insert(l.id);
            if !l.cancelled {
                *held.entry((l.unit, l.subject)).or_default() += 1;
            }
        }
        let mut ctx = SchoolCtx {
            index,
            cal,
            students,
            student_idx,
            class_of,
            subj,
            subject_idx,
            units,
            classes,
            slots,
            work_type,
            weight,
            weekly,
            subject_teachers,
            teachers: s.teachers.iter().map(|t| t.id).collect(),
            held,
            cur_period: None,
            mark_counts: Vec::new(),
            lesson_first,
            final_cache: None,
        };
        ctx.reset_counts(ctx.cal.period_of(today));
        if let Some(p) = ctx.cur_period {
            for m in s.marks.values() {
                let Some(l) = s.lessons.get(&m.lesson) else { continue };
                if ctx.cal.period_of(l.date) == Some(p) {
                    ctx.count_mark(m.student, l.subject, 1);
                }
            }
        }
        ctx
    }

    fn reset_counts(&mut self, period: Option<usize>) {
        self.cur_period = period;
        self.mark_counts = vec![0; self.students.len() * self.subject_idx.len().max(1)];
    }

    fn count_index(&self, student: u64, subject: u64) -> Option<usize> {
        let st = *self.student_idx.get(&student)?;
        let sj = *self.subject_idx.get(&subject)?;
        Some(st * self.subject_idx.len() + sj)
    }

    fn count_mark(&mut self, student: u64, subject: u64, delta: i32) {
        if let Some(i) = self.count_index(student, subject) {
            self.mark_counts[i] = (self.mark_counts[i] as i32 + delta).max(0) as u16;
        }
    }

    fn marks_of(&self, student: u64, subject: u64) -> u16 {
        self.count_index(student, subject).map(|i| self.mark_counts[i]).unwrap_or(0)
    }

    fn code(&self, code: &str) -> u64 {
        self.work_type.get(code).copied().unwrap_or(0)
    }
}

fn simulate_day(world: &mut World, ctxs: &mut [SchoolCtx], day: NaiveDate) {
    let World { config, schools, truth, next_id, sim, .. } = world;
    let mut buf: Vec<TruthChange> = Vec::new();
    let mut due = sim.pending.remove(&day).unwrap_or_default();
    // Within a day: marks and reasons first, final marks after them, edits last.
    due.sort_by_key(|p| match p {
        Pending::FinalMarks { .. } => 1,
        Pending::EditAfterFinal { .. } => 2,
        _ => 0,
    });
    for (school, x) in schools.iter_mut().zip(ctxs.iter_mut()) {
        let rng = ChaCha8Rng::seed_from_u64(mix(config.seed, x.index as u64 + 1, day.num_days_from_ce() as u64));
        let id = school.id;
        let mut d = Day { cfg: config, s: school, x, ids: Ids(&mut *next_id), sim: &mut *sim, buf: &mut buf, day, rng };
        for p in due.iter().filter(|p| p.school() == id) {
            d.pending(p.clone());
        }
        if d.x.cal.is_school_day(day) {
            d.school_day();
        }
        while let Some(more) = d.sim.pending.remove(&day) {
            for p in more {
                d.pending(p);
            }
        }
    }
    buf.sort_by_key(|c| c.at);
    for mut c in buf {
        c.seq = truth.len() as u64 + 1;
        truth.push(c);
    }
}

/// What a student's school day is like.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Today {
    Present,
    Late,
    /// Absent all day: the status entered, and the one it is corrected to later (if any)
    Absent(SynthAttendanceStatus, Option<SynthAttendanceStatus>),
    /// Skips the lesson with this number (прогул)
    Skips(u8),
}

struct Day<'a> {
    cfg: &'a SynthConfig,
    s: &'a mut School,
    x: &'a mut SchoolCtx,
    ids: Ids<'a>,
    sim: &'a mut SimState,
    buf: &'a mut Vec<TruthChange>,
    day: NaiveDate,
    rng: ChaCha8Rng,
}

impl Day<'_> {
    fn log(&mut self, kind: EntityKind, op: TruthOp, key: String, at: NaiveDateTime, injection: Option<Injection>) {
        debug_assert_eq!(at.date(), self.day);
        self.buf.push(TruthChange { seq: 0, day: self.day, at, school: self.s.id, kind, op, key, injection });
    }

    /// A random moment of today in [from, to).
    fn time(&mut self, from: NaiveTime, to: NaiveTime) -> NaiveDateTime {
        let span = (to - from).num_seconds().max(1);
        self.day.and_time(from) + Duration::seconds(self.rng.random_range(0..span))
    }

    fn schedule(&mut self, date: NaiveDate, p: Pending) {
        self.sim.pending.entry(date).or_default().push(p);
    }

    fn bell(&self, number: u8) -> (NaiveTime, NaiveTime) {
        match self.s.bells.iter().find(|b| b.0 == number) {
            Some(&(_, a, b)) => (a, b),
            None => {
                let a = hm(8, 30) + Duration::minutes(50 * (number as i64 - 1).clamp(0, 12));
                (a, a + Duration::minutes(40))
            }
        }
    }

    fn subj(&self, subject: u64) -> Subj {
        self.x.subj.get(&subject).copied().unwrap_or(Subj::Russian)
    }

    // ----- marks -----

    fn mark_value(&mut self, student: usize, subject: Subj, harder: bool) -> String {
        let ability = self.x.students[student].ability;
        let x = ability + subject.mark_bias() - if harder { 0.3 } else { 0.0 } + 0.75 * normal(&mut self.rng);
        let d = ((x + 0.5).floor() as i32).clamp(2, 5);
        if d == 2 && self.rng.random_bool(0.04) {
            return "1".into();
        }
        let r: f64 = self.rng.random();
        let suffix = match d {
            5 if r < 0.08 => "-",
            5 if r < 0.10 => "+",
            3 | 4 if r < 0.12 => "+",
            3 | 4 if r < 0.24 => "-",
            2 if r < 0.06 => "+",
            2 if r < 0.08 => "-",
            _ => "",
        };
        format!("{d}{suffix}")
    }

    fn insert_mark(
        &mut self,
        lesson: u64,
        mark: PlannedMark,
        at: NaiveDateTime,
        by: u64,
        injection: Option<Injection>,
    ) {
        let PlannedMark { student, work, value } = mark;
        let Some((date, subject)) = self.s.lessons.get(&lesson).map(|l| (l.date, l.subject)) else {
            return;
        };
        let id = self.ids.next();
        let unsatisfactory = value.starts_with('1') || value.starts_with('2');
        // Comments and «точки» come from a hash of the mark's id, not from the day's random
        // stream, so that the rest of the world stays what it was before they existed.
        let h = mix(self.cfg.seed, id, 0xC0_4417);
        let comment = mark_comment(h, &value);
        let is_point = unsatisfactory && (h >> 32).is_multiple_of(3);
        let point_date = is_point.then(|| date + Duration::days(7 + ((h >> 40) % 8) as i64));
        self.s.marks.insert(
            id,
            SynthMark {
                id,
                student,
                lesson,
                work,
                value,
                entered_at: at,
                entered_by: by,
                comment,
                is_point,
                point_date,
            },
        );
        self.log(EntityKind::Mark, TruthOp::Insert, key::id(id), at, injection);
        self.x.final_cache = None;
        if self.x.cur_period.is_some() && self.x.cal.period_of(date) == self.x.cur_period {
            self.x.count_mark(student, subject, 1);
        }
        if unsatisfactory && self.cfg.monitor && mix(self.cfg.seed, id, 0x4D38).is_multiple_of(MONITOR_EVERY / 5) {
            let days = MONITOR_CORRECTION_DAYS[(mix(self.cfg.seed, id, 0x4D39) % 2) as usize];
            let when = (date + Duration::days(i64::from(days))).max(self.day + Duration::days(1));
            let school = self.s.id;
            self.schedule(when, Pending::CorrectMark { school, mark: id });
            return;
        }
        if unsatisfactory && self.rng.random_bool(self.cfg.rates.deleted_unsatisfactory) {
            let when = self.day + Duration::days(self.rng.random_range(1..=20));
            let school = self.s.id;
            self.schedule(when, Pending::DeleteMark { school, mark: id });
        }
    }

    /// An attendance entry made at its own moment, a monitoring case (M2).
    fn insert_attendance(&mut self, lesson: u64, student: u64, a: SynthAttendance) {
        let at = a.entered_at;
        self.s.attendance.insert((lesson, student), a);
        let injection = Some(Injection::Monitor { rule: MonitorRule::M2 });
        self.log(EntityKind::Attendance, TruthOp::Insert, key::attendance(lesson, student), at, injection);
    }

    fn insert_homework(&mut self, work: SynthWork, injection: Option<Injection>) {
        let (wid, at) = (work.id, work.created_at);
        self.s.works.insert(wid, work);
        self.log(EntityKind::Homework, TruthOp::Insert, key::id(wid), at, injection);
    }

    /// Where the world makes monitoring cases (`SynthConfig::monitor`): for about one lesson
    /// in `every` (chosen by a hash of the lesson and `salt`, not by the day's random stream),
    /// the moment among `moments` (days after the lesson, hour, minute) its entries are made at.
    fn monitor_moment(&self, lesson: u64, salt: u64, every: u64, moments: &[(u32, u32, u32)]) -> Option<NaiveDateTime> {
        if !self.cfg.monitor {
            return None;
        }
        let h = mix(self.cfg.seed, lesson, salt);
        if !h.is_multiple_of(every) {
            return None;
        }
        let (days, hour, minute) = moments[((h >> 20) % moments.len() as u64) as usize];
        Some((self.day + Duration::days(i64::from(days))).and_time(hm(hour, minute)))
    }

    /// Whether a class's period marks at a period's end are a monitoring case (M11): in a
    /// monitoring world, for the share `rates.monitor_final_marks` of the classes, chosen by a
    /// hash of the class and the period (not by the day's random stream).
    fn monitor_final_marks(&self, class: u64, period: u64) -> bool {
        if !self.cfg.monitor {
            return false;
        }
        let h = mix(self.cfg.seed, class, 0x4D3B ^ period);
        ((h % 10_000) as f64) < self.cfg.rates.monitor_final_marks * 10_000.0
    }

    // ----- pending changes -----

    fn pending(&mut self, p: Pending) {
        match p {
            Pending::LateMarks { lesson, marks, .. } => {
                let Some(by) = self.s.lessons.get(&lesson).map(|l| l.substitute.unwrap_or(l.teacher)) else {
                    return;
                };
                let at = self.time(hm(14, 0), hm(21, 0));
                for (i, m) in marks.into_iter().enumerate() {
                    let at = at + Duration::seconds(i as i64 * 7);
                    self.insert_mark(lesson, m, at, by, Some(Injection::LateMark));
                }
            }
            Pending::MarksAt { lesson, marks, at, rule, .. } => {
                let Some(by) = self.s.lessons.get(&lesson).map(|l| l.substitute.unwrap_or(l.teacher)) else {
                    return;
                };
                for m in marks {
                    self.insert_mark(lesson, m, at, by, Some(Injection::Monitor { rule }));
                }
            }
            Pending::CorrectMark { mark, .. } => {
                let Some(m) = self.s.marks.get_mut(&mark) else { return };
                if !(m.value.starts_with('1') || m.value.starts_with('2')) {
                    return;
                }
                m.value = "3".into();
                let at = self.time(hm(9, 0), hm(20, 0));
                self.x.final_cache = None;
                self.log(
                    EntityKind::Mark,
                    TruthOp::Update,
                    key::id(mark),
                    at,
                    Some(Injection::Monitor { rule: MonitorRule::M8 }),
                );
            }
            Pending::AttendanceAt { lesson, entries, .. } => {
                for (student, a) in entries {
                    self.insert_attendance(lesson, student, a);
                }
            }
            Pending::HomeworkAt { work, .. } => {
                self.insert_homework(work, Some(Injection::Monitor { rule: MonitorRule::M4 }))
            }
            Pending::AttendanceReason { student, lessons, status, comment, .. } => {
                let at = self.time(hm(9, 0), hm(18, 0));
                for (i, l) in lessons.into_iter().enumerate() {
                    let Some(a) = self.s.attendance.get_mut(&(l, student)) else { continue };
                    if a.status == status && a.comment == comment {
                        continue;
                    }
                    a.status = status;
                    a.comment = comment.clone();
                    let at = at + Duration::seconds(i as i64 * 3);
                    self.log(EntityKind::Attendance, TruthOp::Update, key::attendance(l, student), at, None);
                }
            }
            Pending::LessonTopic { lesson, topic, .. } => {
                let at = self.time(hm(15, 0), hm(21, 0));
                let Some(l) = self.s.lessons.get_mut(&lesson) else { return };
                if l.topic.as_deref() == Some(topic.as_str()) {
                    return;
                }
                l.topic = Some(topic);
                self.log(EntityKind::Lesson, TruthOp::Update, key::id(lesson), at, None);
            }
            Pending::DeleteMark { mark, .. } => {
                let Some(m) = self.s.marks.get(&mark) else { return };
                if !(m.value.starts_with('1') || m.value.starts_with('2')) {
                    return;
                }
                let m = self.s.marks.remove(&mark).expect("present");
                let at = self.time(hm(9, 0), hm(20, 0));
                self.log(
                    EntityKind::Mark,
                    TruthOp::Delete,
                    key::id(mark),
                    at,
                    Some(Injection::DeletedUnsatisfactoryMark),
                );
                self.x.final_cache = None;
                if let Some(l) = self.s.lessons.get(&m.lesson) {
                    if self.x.cur_period.is_some() && self.x.cal.period_of(l.date) == self.x.cur_period {
                        let subject = l.subject;
                        self.x.count_mark(m.student, subject, -1);
                    }
                }
            }
            Pending::FinalMarks { class, period, rule, .. } => self.final_marks(class, period, rule),
            Pending::EditAfterFinal { class, period, .. } => self.edit_after_final(class, period),
        }
    }

    fn final_acc(&mut self, pi: usize) -> &HashMap<(u64, u64), Acc> {
        if self.x.final_cache.as_ref().is_none_or(|(p, _)| *p != pi) {
            let (start, end) = (self.s.periods[pi].start, self.s.periods[pi].end);
            let mut acc: HashMap<(u64, u64), Acc> = HashMap::new();
            if let Some((_, &from)) = self.x.lesson_first.range(start..).next() {
                for m in self.s.marks.range(from..).map(|(_, m)| m) {
                    let Some(l) = self.s.lessons.get(&m.lesson) else { continue };
                    if l.date < start || l.date > end {
                        continue;
                    }
                    let Some(d) = m.value.chars().next().and_then(|c| c.to_digit(10)) else {
                        continue;
                    };
                    let w =
                        self.s.works.get(&m.work).and_then(|w| self.x.weight.get(&w.work_type)).copied().unwrap_or(1);
                    let a = acc.entry((m.student, l.subject)).or_default();
                    a.weight += w;
                    a.weighted += w * d;
                    a.n += 1;
                }
            }
            self.x.final_cache = Some((pi, acc));
        }
        &self.x.final_cache.as_ref().expect("just built").1
    }

    /// The class's final marks of a period (and, after the last period, of the year); the
    /// period marks of a monitoring case tagged with its `rule` (M11).
    fn final_marks(&mut self, class: u64, period: u64, rule: Option<MonitorRule>) {
        let Some(pi) = self.s.periods.iter().position(|p| p.id == period) else { return };
        let Some(ci) = self.x.classes.iter().position(|c| c.id == class) else { return };
        let subjects = self.x.classes[ci].subjects.clone();
        let students: Vec<(u64, bool)> = self.x.classes[ci]
            .students
            .iter()
            .map(|&i| (self.x.students[i].id, self.x.students[i].pe_exempt))
            .collect();
        let mut values = Vec::new();
        {
            let acc = self.final_acc(pi);
            for &subject in &subjects {
                for &(st, _) in &students {
                    values.push(acc.get(&(st, subject)).copied().unwrap_or_default());
                }
            }
        }
        let last = pi + 1 == self.s.periods.len();
        let mut latest = self.day.and_time(hm(0, 0));
        let mut k = 0;
        for &subject in &subjects {
            let is_pe = self.subj(subject) == Subj::Pe;
            let at = self.time(hm(10, 0), hm(19, 0));
            for (i, &(st, exempt)) in students.iter().enumerate() {
                let a = values[k];
                k += 1;
                let value = if exempt && is_pe {
                    "осв".to_string()
                } else if a.n < 2 {
                    "н/а".to_string()
                } else {
                    ((2 * a.weighted + a.weight) / (2 * a.weight)).clamp(2, 5).to_string()
                };
                let key_t = (st, subject, Some(period));
                if self.s.final_marks.contains_key(&key_t) {
                    continue;
                }
                let at = at + Duration::seconds(i as i64 * 5);
                latest = latest.max(at);
                self.s.final_marks.insert(key_t, SynthFinalMark { value, entered_at: at });
                let injection = rule.map(|rule| Injection::Monitor { rule });
                self.log(
                    EntityKind::FinalMark,
                    TruthOp::Insert,
                    key::final_mark(st, subject, Some(period)),
                    at,
                    injection,
                );
            }
        }
        if last {
            let periods: Vec<u64> = self.s.periods.iter().map(|p| p.id).collect();
            let base = (latest + Duration::minutes(20)).min(self.day.and_time(hm(23, 0)));
            let mut i = 0;
            for &subject in &subjects {
                for &(st, _) in &students {
                    let key_t = (st, subject, None);
                    if self.s.final_marks.contains_key(&key_t) {
                        continue;
                    }
                    let quarter: Vec<&str> = periods
                        .iter()
                        .filter_map(|&p| self.s.final_marks.get(&(st, subject, Some(p))).map(|f| f.value.as_str()))
                        .collect();
                    let nums: Vec<u32> = quarter.iter().filter_map(|v| v.parse::<u32>().ok()).collect();
                    let value = if !nums.is_empty() {
                        let sum: u32 = nums.iter().sum();
                        let n = nums.len() as u32;
                        ((2 * sum + n) / (2 * n)).clamp(2, 5).to_string()
                    } else if quarter.contains(&"осв") {
                        "осв".to_string()
                    } else {
                        "н/а".to_string()
                    };
                    let at = base + Duration::seconds(i);
                    i += 1;
                    self.s.final_marks.insert(key_t, SynthFinalMark { value, entered_at: at });
                    self.log(EntityKind::FinalMark, TruthOp::Insert, key::final_mark(st, subject, None), at, None);
                }
            }
        }
        if self.rng.random_bool(self.cfg.rates.edit_after_final) {
            let when = self.day + Duration::days(self.rng.random_range(1..=7));
            let school = self.s.id;
            self.schedule(when, Pending::EditAfterFinal { school, class, period });
        }
    }

    /// Changes a mark of the closed period that was entered within the last 21 days.
    fn edit_after_final(&mut self, class: u64, period: u64) {
        let Some(p) = self.s.periods.iter().find(|p| p.id == period) else { return };
        let (start, end) = (p.start, p.end);
        let Some(ci) = self.x.classes.iter().position(|c| c.id == class) else { return };
        let cutoff = self.day - Duration::days(21);
        let mut candidates = Vec::new();
        for (&id, m) in self.s.marks.iter().rev() {
            if m.entered_at.date() < cutoff {
                break;
            }
            let Some(l) = self.s.lessons.get(&m.lesson) else { continue };
            if l.date >= start && l.date <= end && self.x.units.get(&l.unit).is_some_and(|u| u.class == ci) {
                candidates.push(id);
            }
        }
        let Some(&id) = candidates.choose(&mut self.rng) else { return };
        let old = self.s.marks[&id].value.clone();
        let value = changed_value(&mut self.rng, &old);
        let at = self.time(hm(9, 0), hm(20, 0));
        if let Some(m) = self.s.marks.get_mut(&id) {
            m.value = value;
        }
        self.x.final_cache = None;
        self.log(EntityKind::Mark, TruthOp::Update, key::id(id), at, Some(Injection::EditAfterFinal));
    }

    // ----- a school day -----

    fn student_day(&mut self, i: usize) -> Today {
        let st = &self.x.students[i];
        let (id, absence) = (st.id, st.absence);
        if let Some(left) = self.sim.illness.get_mut(&id) {
            *left -= 1;
            if *left == 0 {
                self.sim.illness.remove(&id);
            }
            return Today::Absent(SynthAttendanceStatus::Ill, None);
        }
        let season = match self.day.month() {
            9 => 0.6,
            10 => 1.0,
            11 => 1.2,
            12 => 1.3,
            1 => 1.4,
            2 => 1.5,
            3 => 1.1,
            4 => 0.9,
            _ => 0.7,
        };
        let r: f64 = self.rng.random();
        let ill = 0.0075 * season * absence;
        let excused = ill + 0.004 * absence;
        let unexcused = excused + 0.003 * absence;
        let skips = unexcused + 0.004 * absence;
        let late = skips + 0.01;
        use SynthAttendanceStatus::*;
        if r < ill {
            let len: u8 = self.rng.random_range(2..=7);
            self.sim.illness.insert(id, len - 1);
            if self.rng.random_bool(0.4) {
                Today::Absent(AbsentUnexcused, Some(Ill))
            } else {
                Today::Absent(Ill, None)
            }
        } else if r < excused {
            Today::Absent(AbsentExcused, None)
        } else if r < unexcused {
            let later = match self.rng.random_range(0..4) {
                0 => Some(AbsentExcused),
                1 => Some(Ill),
                _ => None,
            };
            Today::Absent(AbsentUnexcused, later)
        } else if r < skips {
            Today::Skips(0) // the number is chosen by the caller
        } else if r < late {
            Today::Late
        } else {
            Today::Present
        }
    }

    fn school_day(&mut self) {
        let day = self.day;
        let weekday = day.weekday().number_from_monday() as usize;
        if weekday > 5 {
            return;
        }
        let period = self.x.cal.period_of(day);
        if period != self.x.cur_period {
            self.x.reset_counts(period);
        }
        let period_end = period.map(|p| self.s.periods[p].end).unwrap_or(day);

        // Who is at school today.
        let n_students = self.x.students.len();
        let mut today = Vec::with_capacity(n_students);
        for i in 0..n_students {
            let mut t = self.student_day(i);
            if t == Today::Skips(0) {
                let ci = self.x.class_of[i];
                let last = ci.map(|c| self.x.classes[c].last_number[weekday - 1]).unwrap_or(0);
                let grade = ci.map(|c| self.x.classes[c].grade).unwrap_or(0);
                t = if last == 0 || grade < 5 { Today::Present } else { Today::Skips(self.rng.random_range(1..=last)) };
            }
            today.push(t);
        }
        let mut seen_first = vec![false; n_students];
        let mut corrections: BTreeMap<usize, Vec<u64>> = BTreeMap::new();

        let slots = self.x.slots[weekday - 1].clone();
        let school = self.s.id;
        for slot in slots {
            let Some((grade, graded, members)) =
                self.x.units.get(&slot.unit).map(|u| (u.grade, u.graded(), u.members.clone()))
            else {
                continue;
            };
            let subj = self.subj(slot.subject);
            let (start, end) = self.bell(slot.number);
            let lesson_start = day.and_time(start);
            let lesson_end = day.and_time(end);
            let id = self.ids.next();
            self.x.lesson_first.entry(day).or_insert(id);

            let cancelled = self.rng.random_bool(0.004);
            let substitute = if !cancelled && self.rng.random_bool(0.015) {
                let same: Vec<u64> = self
                    .x
                    .subject_teachers
                    .get(&slot.subject)
                    .map(|v| v.iter().copied().filter(|&t| t != slot.teacher).collect())
                    .unwrap_or_default();
                let pool: Vec<u64> = if same.is_empty() {
                    self.x.teachers.iter().copied().filter(|&t| t != slot.teacher).collect()
                } else {
                    same
                };
                pool.choose(&mut self.rng).copied()
            } else {
                None
            };
            let by = substitute.unwrap_or(slot.teacher);

            // Topic.
            let held = self.x.held.get(&(slot.unit, slot.subject)).copied().unwrap_or(0);
            let per_week = self.x.weekly.get(&(slot.unit, slot.subject)).map(|w| w.0).unwrap_or(1);
            let (mut topic, theme) = subj.lesson_topic(grade, held, per_week);
            if !cancelled {
                self.x.held.insert((slot.unit, slot.subject), held + 1);
            }

            // An extra work besides the default one.
            let mut extra: Option<&'static str> = None;
            if graded && !cancelled {
                let closing = (period_end - day).num_days() <= 10;
                for &(code, p) in subj.work_chances() {
                    let p = if code == "control" && closing { p * 3.0 } else { p };
                    if self.rng.random_bool(p.min(1.0)) {
                        extra = Some(code);
                        break;
                    }
                }
            }
            if extra == Some("control") {
                topic = format!("Контрольная работа по теме «{theme}»");
            }

            // Injections on the lesson.
            let mut injection = None;
            let mut lesson_topic = Some(topic.clone());
            if !cancelled && self.rng.random_bool(self.cfg.rates.missing_topic) {
                injection = Some(Injection::MissingTopic);
                lesson_topic = None;
                if self.rng.random_bool(0.5) {
                    let when = day + Duration::days(self.rng.random_range(1..=5));
                    self.schedule(when, Pending::LessonTopic { school, lesson: id, topic: topic.clone() });
                }
            }
            let wants_homework = graded && !cancelled && grade >= 2 && self.rng.random_bool(subj.homework_chance());
            let mut homework = wants_homework;
            if wants_homework && self.rng.random_bool(self.cfg.rates.missing_homework) && injection.is_none() {
                injection = Some(Injection::MissingHomework);
                homework = false;
            }

            self.s.lessons.insert(
                id,
                SynthLesson {
                    id,
                    unit: slot.unit,
                    subject: slot.subject,
                    teacher: slot.teacher,
                    substitute,
                    date: day,
                    number: slot.number,
                    topic: lesson_topic,
                    cancelled,
                    section: Some(theme.to_string()),
                },
            );
            self.log(EntityKind::Lesson, TruthOp::Insert, key::id(id), lesson_start, injection);
            if cancelled {
                continue;
            }

            // Works.
            let default_work = self.ids.next();
            self.s.works.insert(
                default_work,
                SynthWork {
                    id: default_work,
                    lesson: id,
                    work_type: self.x.code("lesson"),
                    is_homework: false,
                    text: "Работа на уроке".into(),
                    created_at: lesson_start,
                    target_date: day,
                    attachments: Vec::new(),
                },
            );
            self.log(EntityKind::Work, TruthOp::Insert, key::id(default_work), lesson_start, None);
            let extra_work = extra.map(|code| {
                let wid = self.ids.next();
                let text = self.work_text(code, subj, theme);
                self.s.works.insert(
                    wid,
                    SynthWork {
                        id: wid,
                        lesson: id,
                        work_type: self.x.code(code),
                        is_homework: false,
                        text,
                        created_at: lesson_start,
                        target_date: day,
                        attachments: Vec::new(),
                    },
                );
                self.log(EntityKind::Work, TruthOp::Insert, key::id(wid), lesson_start, None);
                (wid, code)
            });
            if homework {
                let wid = self.ids.next();
                let text = subj.homework(&mut self.rng, theme);
                let created_at = if self.rng.random_bool(0.8) {
                    lesson_end - Duration::seconds(self.rng.random_range(0..600))
                } else {
                    self.time(end, hm(20, 0).max(end + Duration::minutes(1)))
                };
                let due = self.due_date(slot.unit, slot.subject);
                let mut work = SynthWork {
                    id: wid,
                    lesson: id,
                    work_type: self.x.code("homework"),
                    is_homework: true,
                    text,
                    created_at,
                    target_date: due,
                    attachments: homework_attachments(mix(self.cfg.seed, wid, 0xA77A), wid),
                };
                match self.monitor_moment(id, 0x4D34, MONITOR_EVERY, &MONITOR_HOMEWORK_MOMENTS) {
                    Some(at) if at.date() > day => {
                        work.created_at = at;
                        self.schedule(at.date(), Pending::HomeworkAt { school, work });
                    }
                    Some(at) => {
                        work.created_at = at;
                        self.insert_homework(work, Some(Injection::Monitor { rule: MonitorRule::M4 }));
                    }
                    None => self.insert_homework(work, None),
                }
            }

            // Attendance.
            let attendance_case = self.monitor_moment(id, 0x4D32, MONITOR_EVERY, &MONITOR_ATTENDANCE_MOMENTS);
            let mut deferred = Vec::new();
            let mut eligible = Vec::new();
            for &m in &members {
                let st_id = self.x.students[m].id;
                let entered = match today[m] {
                    Today::Absent(status, later) => {
                        if later.is_some() {
                            corrections.entry(m).or_default().push(id);
                        }
                        Some(status)
                    }
                    Today::Skips(n) if n == slot.number => Some(SynthAttendanceStatus::AbsentUnexcused),
                    Today::Late if !seen_first[m] => Some(SynthAttendanceStatus::Late),
                    _ => None,
                };
                seen_first[m] = true;
                if let Some(status) = entered {
                    let at = lesson_start + Duration::seconds(self.rng.random_range(180..900));
                    let comment = match status {
                        SynthAttendanceStatus::AbsentExcused => Some("заявление родителей".to_string()),
                        _ => None,
                    };
                    match attendance_case {
                        Some(at) if at.date() > day => {
                            deferred.push((st_id, SynthAttendance { status, comment, entered_at: at }))
                        }
                        Some(at) => {
                            self.insert_attendance(id, st_id, SynthAttendance { status, comment, entered_at: at })
                        }
                        None => {
                            self.s.attendance.insert((id, st_id), SynthAttendance { status, comment, entered_at: at });
                            self.log(EntityKind::Attendance, TruthOp::Insert, key::attendance(id, st_id), at, None);
                        }
                    }
                }
                let away = matches!(today[m], Today::Absent(..) | Today::Skips(_));
                let exempt = subj == Subj::Pe && self.x.students[m].pe_exempt;
                if !away && !exempt {
                    eligible.push(m);
                }
            }
            if let Some(at) = attendance_case.filter(|_| !deferred.is_empty()) {
                self.schedule(at.date(), Pending::AttendanceAt { school, lesson: id, entries: deferred });
            }
            if !graded || eligible.is_empty() {
                continue;
            }

            // Marks.
            let mut planned: Vec<(usize, u64, bool)> = Vec::new(); // (student, work, harder)
            match extra_work {
                Some((wid, "control" | "internal_control" | "written" | "test")) => {
                    for &m in &eligible {
                        planned.push((m, wid, true));
                    }
                }
                Some((wid, _)) => {
                    for &m in &eligible {
                        if self.rng.random_bool(0.6) {
                            planned.push((m, wid, false));
                        }
                    }
                }
                None => {
                    let share = self.rng.random_range(0.20..0.35);
                    let k = (share * eligible.len() as f64 + self.rng.random::<f64>()).floor() as usize;
                    let mut keyed: Vec<(f64, usize)> = eligible
                        .iter()
                        .map(|&m| {
                            let have = self.x.marks_of(self.x.students[m].id, slot.subject) as f64;
                            (have + 1.5 * self.rng.random::<f64>(), m)
                        })
                        .collect();
                    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    for &(_, m) in keyed.iter().take(k) {
                        planned.push((m, default_work, false));
                    }
                    planned.sort_by_key(|p| p.0);
                }
            }
            if planned.is_empty() {
                continue;
            }
            let marks: Vec<PlannedMark> = planned
                .iter()
                .map(|&(m, work, harder)| PlannedMark {
                    student: self.x.students[m].id,
                    work,
                    value: self.mark_value(m, subj, harder),
                })
                .collect();
            // Monitoring cases: a written or control work's marks around the 3rd or 7th day,
            // other lessons' marks around 16:00, 19:00 or midnight.
            let case = match extra_work {
                Some((_, code @ ("written" | "control" | "test" | "internal_control" | "independent"))) => {
                    // ВШК works are rare (a few a term): every other one is a case
                    let (rule, every) = match code {
                        "internal_control" => (MonitorRule::M6, 2),
                        _ => (MonitorRule::M5, MONITOR_EVERY / 5),
                    };
                    self.monitor_moment(id, 0x4D35, every, &MONITOR_WORK_MOMENTS).map(|at| (at, rule))
                }
                _ => self
                    .monitor_moment(id, 0x4D31, MONITOR_EVERY, &MONITOR_MARK_MOMENTS)
                    .map(|at| (at, MonitorRule::M1)),
            };
            if let Some((at, rule)) = case {
                if at.date() > day {
                    self.schedule(at.date(), Pending::MarksAt { school, lesson: id, marks, at, rule });
                } else {
                    for m in marks {
                        self.insert_mark(id, m, at, by, Some(Injection::Monitor { rule }));
                    }
                }
                continue;
            }
            if self.rng.random_bool(self.cfg.rates.late_mark) {
                let later = self.x.cal.school_days_after(day, self.rng.random_range(1..=5));
                self.schedule(later, Pending::LateMarks { school, lesson: id, marks });
                continue;
            }
            let at = if self.rng.random_bool(0.7) {
                self.time(end, hm(16, 0).max(end + Duration::minutes(5)))
            } else {
                self.time(hm(16, 0).max(end), hm(21, 0))
            };
            for (i, m) in marks.into_iter().enumerate() {
                let at = at + Duration::seconds(i as i64 * 9);
                self.insert_mark(id, m, at, by, None);
            }
        }

        // The class teacher gives the reasons of absences a few days later.
        for (m, lessons) in corrections {
            if let Today::Absent(_, Some(status)) = today[m] {
                let comment = match status {
                    SynthAttendanceStatus::Ill => Some("справка".to_string()),
                    SynthAttendanceStatus::AbsentExcused => Some("заявление родителей".to_string()),
                    _ => None,
                };
                let when = day + Duration::days(self.rng.random_range(1..=5));
                let student = self.x.students[m].id;
                self.schedule(when, Pending::AttendanceReason { school, student, lessons, status, comment });
            }
        }

        // Back-dated marks.
        for ci in 0..self.x.classes.len() {
            if self.x.classes[ci].grade >= 2 && self.rng.random_bool(self.cfg.rates.backdated_mark) {
                self.backdated_mark(ci);
            }
        }

        // The end of a quarter: each class's final marks today or in the next two days; in a
        // monitoring world, some classes' on a set day around the period's end (M11), the
        // days of `MONITOR_FINAL_DAYS` taken in turn so that each is met at every period end.
        if let Some(p) = period {
            if self.x.cal.last_day[p] == Some(day) {
                let period = self.s.periods[p].id;
                let end = self.s.periods[p].end;
                let mut cases = p;
                for ci in 0..self.x.classes.len() {
                    if self.x.classes[ci].subjects.is_empty() {
                        continue;
                    }
                    let r: f64 = self.rng.random();
                    let offset = if r < 0.5 {
                        0
                    } else if r < 0.8 {
                        1
                    } else {
                        2
                    };
                    let class = self.x.classes[ci].id;
                    if self.monitor_final_marks(class, period) {
                        let days = MONITOR_FINAL_DAYS[cases % MONITOR_FINAL_DAYS.len()];
                        cases += 1;
                        let rule = Some(MonitorRule::M11);
                        self.schedule(
                            end + Duration::days(i64::from(days)),
                            Pending::FinalMarks { school, class, period, rule },
                        );
                        continue;
                    }
                    self.schedule(
                        day + Duration::days(offset),
                        Pending::FinalMarks { school, class, period, rule: None },
                    );
                }
            }
        }
    }

    fn work_text(&mut self, code: &str, subj: Subj, theme: &str) -> String {
        match code {
            "control" => format!("Контрольная работа по теме «{theme}»"),
            "internal_control" => "ВШК: административная контрольная работа".into(),
            "written" => match subj {
                Subj::Russian => ["Диктант", "Изложение", "Словарный диктант"]
                    .choose(&mut self.rng)
                    .copied()
                    .unwrap_or("Диктант")
                    .into(),
                Subj::Literature => "Сочинение".into(),
                _ => format!("Письменная работа по теме «{theme}»"),
            },
            "test" => format!("Тест по теме «{theme}»"),
            "independent" => format!("Самостоятельная работа по теме «{theme}»"),
            "practical" => {
                let n = self.rng.random_range(1..=12);
                match subj {
                    Subj::Physics | Subj::Chemistry | Subj::Biology => {
                        format!("Лабораторная работа № {n}")
                    }
                    _ => format!("Практическая работа № {n}"),
                }
            }
            _ => "Работа на уроке".into(),
        }
    }

    /// When homework set today is due: mostly the next lesson of the subject, else in 2–7 days.
    fn due_date(&mut self, unit: u64, subject: u64) -> NaiveDate {
        let days = self.x.weekly.get(&(unit, subject)).map(|w| w.1).unwrap_or([false; 5]);
        if self.rng.random_bool(0.8) {
            let mut d = self.day;
            for _ in 0..40 {
                d += Duration::days(1);
                let wd = d.weekday().number_from_monday() as usize;
                if wd <= 5 && days[wd - 1] && self.x.cal.is_school_day(d) {
                    return d;
                }
            }
        }
        let d = self.day + Duration::days(self.rng.random_range(2..=7));
        // On the next school day from then (past the year's end: the next weekday).
        let mut next = d;
        for _ in 0..30 {
            if self.x.cal.is_school_day(next) {
                return next;
            }
            next += Duration::days(1);
        }
        let mut next = d;
        while next.weekday().number_from_monday() > 5 {
            next += Duration::days(1);
        }
        next
    }

    /// A mark entered today into a lesson of the class 3–14 days back.
    fn backdated_mark(&mut self, ci: usize) {
        for _ in 0..4 {
            let date = self.day - Duration::days(self.rng.random_range(3..=14));
            let Some(&from) = self.x.lesson_first.get(&date) else { continue };
            let to =
                self.x.lesson_first.range(date + Duration::days(1)..).next().map(|(_, &id)| id).unwrap_or(u64::MAX);
            let lessons: Vec<u64> = self
                .s
                .lessons
                .range(from..to)
                .filter(|(_, l)| !l.cancelled && self.x.units.get(&l.unit).is_some_and(|u| u.class == ci && u.graded()))
                .map(|(&id, _)| id)
                .collect();
            let Some(&lesson) = lessons.choose(&mut self.rng) else { continue };
            let l = &self.s.lessons[&lesson];
            let (unit, subject, by) = (l.unit, l.subject, l.substitute.unwrap_or(l.teacher));
            let subj = self.subj(subject);
            let marked: Vec<u64> =
                self.s.marks.range(lesson..).filter(|(_, m)| m.lesson == lesson).map(|(_, m)| m.student).collect();
            let candidates: Vec<usize> = self.x.units[&unit]
                .members
                .iter()
                .copied()
                .filter(|&m| {
                    let st = &self.x.students[m];
                    let absent = self
                        .s
                        .attendance
                        .get(&(lesson, st.id))
                        .is_some_and(|a| a.status != SynthAttendanceStatus::Late);
                    let exempt = subj == Subj::Pe && st.pe_exempt;
                    !(absent || exempt || marked.contains(&st.id))
                })
                .collect();
            let Some(&m) = candidates.choose(&mut self.rng) else { continue };
            let Some(work) =
                self.s.works.range(lesson..).find(|(_, w)| w.lesson == lesson && !w.is_homework).map(|(&id, _)| id)
            else {
                continue;
            };
            let value = self.mark_value(m, subj, false);
            let at = self.time(hm(14, 0), hm(20, 0));
            let student = self.x.students[m].id;
            let mark = PlannedMark { student, work, value };
            self.insert_mark(lesson, mark, at, by, Some(Injection::BackdatedMark));
            return;
        }
    }
}

/// The teacher's comment on a mark, for about one mark in fifteen (`h`: a hash of the mark).
fn mark_comment(h: u64, value: &str) -> Option<String> {
    if !h.is_multiple_of(15) {
        return None;
    }
    let good: &[&str] = &["Молодец!", "Отличная работа", "Хороший ответ"];
    let poor: &[&str] =
        &["Ошибки в вычислениях", "Не выполнено задание 3", "Работа выполнена не полностью", "Неаккуратное оформление"];
    let list = if value.starts_with('5') { good } else { poor };
    Some(list[((h >> 8) % list.len() as u64) as usize].to_string())
}

/// Files attached to a homework, for about one homework in eight (`h`: a hash of it).
fn homework_attachments(h: u64, work: u64) -> Vec<SynthAttachment> {
    if !h.is_multiple_of(8) {
        return Vec::new();
    }
    let files: &[(&str, &str)] = &[
        ("Карточка.pdf", "card.pdf"),
        ("Рабочий лист.docx", "worksheet.docx"),
        ("Презентация к уроку.pptx", "slides.pptx"),
        ("Задания для повторения.pdf", "revision.pdf"),
    ];
    let n = 1 + (h >> 16).is_multiple_of(4) as usize;
    (0..n)
        .map(|i| {
            let (name, file) = files[((h >> 8) as usize + i) % files.len()];
            SynthAttachment {
                name: name.to_string(),
                url: format!("https://files.school.example/homework/{work}/{file}"),
            }
        })
        .collect()
}

/// Another value for an edited mark.
fn changed_value(rng: &mut ChaCha8Rng, old: &str) -> String {
    let d = old.chars().next().and_then(|c| c.to_digit(10)).unwrap_or(3);
    let options: &[&str] = match d {
        1 | 2 => &["3", "3-"],
        3 => &["4", "3+", "4-"],
        4 => &["5", "4+", "5-"],
        _ => &["4", "5-", "4+"],
    };
    let choices: Vec<&str> = options.iter().copied().filter(|&v| v != old).collect();
    choices.choose(rng).copied().unwrap_or("4").to_string()
}
