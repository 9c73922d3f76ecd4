//! The structure of the synthetic schools: calendar, subjects, teachers and their loads,
//! classes, students, guardians, groups, enrollments and the weekly timetable.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate, NaiveTime};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::calendar::{bells, year_plan};
use super::curriculum::{Dept, Subj, ALL, DEPTS, MERGES};
use super::names;
use super::state::*;
use crate::model::{EntityKind, GroupKind, PeriodKind, Sex};

/// Hands out the world's ids.
pub(super) struct Ids<'a>(pub &'a mut u64);

impl Ids<'_> {
    pub(super) fn next(&mut self) -> u64 {
        let id = *self.0;
        *self.0 += 1;
        id
    }
}

/// Work types: (code, title, abbreviation, weight).
const WORK_TYPES: [(&str, &str, &str, u8); 8] = [
    ("lesson", "Работа на уроке", "Р/У", 1),
    ("written", "Письменная работа", "П/Р", 2),
    ("control", "Контрольная работа", "К/Р", 3),
    ("test", "Тест", "Тест", 2),
    ("internal_control", "ВШК", "ВШК", 3),
    ("independent", "Самостоятельная работа", "С/Р", 2),
    ("practical", "Практическая работа", "Пр/Р", 2),
    ("homework", "Домашнее задание", "Д/З", 1),
];

/// Makes the world's structure and logs it as inserted on `year_start`.
pub(super) fn build(config: SynthConfig) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut next_id = FIRST_ID;
    let (municipality, city) = names::place(&mut rng);
    let mut numbers: Vec<u32> = (1..=(config.schools.max(1) * 3 + 20)).collect();
    numbers.shuffle(&mut rng);
    let mut schools = Vec::new();
    for &number in numbers.iter().take(config.schools as usize) {
        let mut ids = Ids(&mut next_id);
        schools.push(build_school(&config, &mut rng, &mut ids, number, municipality, city));
    }
    if config.monitor {
        for school in &mut schools {
            break_reference_data(school);
        }
    }
    let mut truth = Vec::new();
    let at = config.year_start.and_time(NaiveTime::from_hms_opt(7, 0, 0).expect("valid time"));
    for school in &schools {
        let from = truth.len();
        log_structure(&mut truth, school, config.year_start, at);
        if config.monitor {
            tag_reference_data(&mut truth[from..], school);
        }
    }
    World { today: config.year_start, config, schools, truth, next_id, sim: SimState::default() }
}

/// The classes left without a class teacher when the world makes monitoring cases (M22):
/// every fifth class, the first included.
fn without_class_teacher(index: usize) -> bool {
    index.is_multiple_of(5)
}

/// M22 cases (`SynthConfig::monitor`): every fifth class without its class teacher, and the
/// first pupil of the last class enrolled in the class before it as well (a pupil in two
/// classes).
fn break_reference_data(s: &mut School) {
    for (i, c) in s.classes.iter_mut().enumerate() {
        if without_class_teacher(i) {
            c.homeroom_teacher = None;
        }
    }
    let n = s.classes.len();
    if n < 2 {
        return;
    }
    let (last, before) = (s.classes[n - 1].id, s.classes[n - 2].id);
    let Some(pupil) = s.enrollments.iter().find(|e| e.unit == last && e.active).map(|e| e.student) else {
        return;
    };
    let from = s.year.start;
    s.enrollments.push(SynthEnrollment { student: pupil, unit: before, active: true, from, to: None });
}

/// Tags the structural inserts that [`break_reference_data`] made.
fn tag_reference_data(truth: &mut [TruthChange], s: &School) {
    let n = s.classes.len();
    let mut keys: Vec<(EntityKind, String)> =
        s.classes.iter().filter(|c| c.homeroom_teacher.is_none()).map(|c| (EntityKind::Class, key::id(c.id))).collect();
    if n >= 2 {
        if let Some(e) = s.enrollments.last() {
            keys.push((EntityKind::Enrollment, key::enrollment(e.unit, e.student)));
        }
    }
    for c in truth.iter_mut() {
        if keys.iter().any(|(k, key)| *k == c.kind && *key == c.key) {
            c.injection = Some(Injection::Monitor { rule: MonitorRule::M22 });
        }
    }
}

fn log_structure(truth: &mut Vec<TruthChange>, s: &School, day: NaiveDate, at: chrono::NaiveDateTime) {
    let mut push = |kind: EntityKind, key: String| {
        truth.push(TruthChange {
            seq: truth.len() as u64 + 1,
            day,
            at,
            school: s.id,
            kind,
            op: TruthOp::Insert,
            key,
            injection: None,
        })
    };
    push(EntityKind::Organization, key::id(s.id));
    push(EntityKind::AcademicYear, key::id(s.year.id));
    for p in &s.periods {
        push(EntityKind::StudyPeriod, key::id(p.id));
    }
    for h in &s.holidays {
        push(EntityKind::Holiday, key::id(h.id));
    }
    for x in &s.subjects {
        push(EntityKind::Subject, key::id(x.id));
    }
    for p in s.teachers.iter().chain(&s.students).chain(&s.guardians) {
        push(EntityKind::Person, key::id(p.id));
    }
    for &(g, st) in &s.guardianships {
        push(EntityKind::Guardianship, key::guardianship(g, st));
    }
    for c in &s.classes {
        push(EntityKind::Class, key::id(c.id));
    }
    for g in &s.groups {
        push(EntityKind::Group, key::id(g.id));
    }
    for e in &s.enrollments {
        push(EntityKind::Enrollment, key::enrollment(e.unit, e.student));
    }
    for l in &s.loads {
        push(EntityKind::TeachingLoad, key::teaching_load(l.teacher, l.subject, l.unit));
    }
}

/// Where a package of hours is taught: the class or one of its subgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum UnitRef {
    Class(usize),
    /// class, subject, subgroup number (1 or 2)
    Sub(usize, Subj, u8),
}

/// A subject's weekly lessons in a class: (subject, hours, [(unit, teacher)]).
type Item = (Subj, u8, Vec<(u64, usize)>);

/// Hours of one class (or subgroup) that one teacher teaches.
struct Package {
    class: usize,
    unit: UnitRef,
    /// `None`: the primary class teacher
    dept: Option<Dept>,
    items: Vec<(Subj, u8)>,
    /// The other subgroup's package (the two must have different teachers)
    pair: Option<usize>,
    teacher: usize,
}

impl Package {
    fn hours(&self) -> u32 {
        self.items.iter().map(|&(_, h)| h as u32).sum()
    }
}

struct TeacherPlan {
    dept: Option<Dept>,
    load: u32,
    homeroom: bool,
}

fn random_date(rng: &mut ChaCha8Rng, from: NaiveDate, days: i64) -> NaiveDate {
    from + Duration::days(rng.random_range(0..days.max(1)))
}

fn build_school(
    cfg: &SynthConfig,
    rng: &mut ChaCha8Rng,
    ids: &mut Ids,
    number: u32,
    municipality: &str,
    city: &str,
) -> School {
    let plan = year_plan(cfg.year_start);
    let y = plan.quarters[1].0.year();
    let id = ids.next();
    let (name, full_name) = names::school_names(number);
    let year = SynthYear { id: ids.next(), name: format!("{}/{}", y, y + 1), start: cfg.year_start, end: plan.end };
    let periods: Vec<SynthPeriod> = plan
        .quarters
        .iter()
        .enumerate()
        .map(|(i, &(start, end))| SynthPeriod {
            id: ids.next(),
            kind: PeriodKind::Quarter,
            number: i as u8 + 1,
            name: format!("{} четверть", i + 1),
            start,
            end,
        })
        .collect();
    let holidays: Vec<SynthHoliday> = plan
        .holidays
        .iter()
        .map(|&(name, start, end)| SynthHoliday { id: ids.next(), name: name.into(), start, end })
        .collect();

    // Classes over grades: extra parallel classes go to the lower grades first.
    let n_classes = cfg.classes_per_school.max(1) as usize;
    let mut grades: Vec<u8> = Vec::new();
    for g in 1..=11u8 {
        let per = n_classes / 11 + usize::from((g as usize) <= n_classes % 11);
        grades.extend(std::iter::repeat_n(g, per));
    }
    let mut letters = Vec::with_capacity(grades.len());
    for (i, &g) in grades.iter().enumerate() {
        letters.push(grades[..i].iter().filter(|&&x| x == g).count());
    }
    let class_name = |c: usize| format!("{}{}", grades[c], names::class_letter(letters[c]));

    // Subjects the school teaches.
    let has_gpd = grades.iter().any(|&g| g <= 2);
    let used: Vec<Subj> = ALL
        .into_iter()
        .filter(|s| match s {
            Subj::AfterSchool => has_gpd,
            Subj::Chess => true,
            _ => grades.iter().any(|&g| s.hours(g) > 0),
        })
        .collect();
    let subjects: Vec<SynthSubject> = used
        .iter()
        .map(|s| SynthSubject { id: ids.next(), name: s.name().into(), knowledge_area: s.knowledge_area().into() })
        .collect();
    let subject_id: BTreeMap<Subj, u64> = used.iter().zip(&subjects).map(|(&s, x)| (s, x.id)).collect();
    let work_types: Vec<SynthWorkType> = WORK_TYPES
        .iter()
        .map(|&(code, title, abbr, weight)| SynthWorkType {
            id: ids.next(),
            code: code.into(),
            title: title.into(),
            abbr: abbr.into(),
            weight,
        })
        .collect();

    // Packages of hours.
    let mut packages: Vec<Package> = Vec::new();
    for (c, &g) in grades.iter().enumerate() {
        let taught: Vec<Subj> = ALL.into_iter().filter(|s| s.hours(g) > 0).collect();
        let own: Vec<(Subj, u8)> = taught.iter().filter(|s| s.dept(g).is_none()).map(|&s| (s, s.hours(g))).collect();
        if !own.is_empty() {
            packages.push(Package {
                class: c,
                unit: UnitRef::Class(c),
                dept: None,
                items: own,
                pair: None,
                teacher: 0,
            });
        }
        for d in DEPTS {
            let items: Vec<(Subj, u8)> =
                taught.iter().filter(|s| s.dept(g) == Some(d) && !s.split(g)).map(|&s| (s, s.hours(g))).collect();
            if !items.is_empty() {
                packages.push(Package {
                    class: c,
                    unit: UnitRef::Class(c),
                    dept: Some(d),
                    items,
                    pair: None,
                    teacher: 0,
                });
            }
        }
        for &s in taught.iter().filter(|s| s.split(g)) {
            let a = packages.len();
            for k in 1..=2u8 {
                packages.push(Package {
                    class: c,
                    unit: UnitRef::Sub(c, s, k),
                    dept: s.dept(g),
                    items: vec![(s, s.hours(g))],
                    pair: Some(if k == 1 { a + 1 } else { a }),
                    teacher: 0,
                });
            }
        }
    }

    // Small departments join their partners.
    let total = |packages: &[Package], d: Dept| -> u32 {
        packages.iter().filter(|p| p.dept == Some(d)).map(Package::hours).sum()
    };
    let mut merged = BTreeSet::new();
    for (from, to) in MERGES {
        let t = total(&packages, from);
        // Too few hours for one teacher, or for the two a subgroup subject needs.
        let pairs = packages.iter().any(|p| p.dept == Some(from) && p.pair.is_some());
        let small = t < 12 || (pairs && t < 24);
        if t > 0 && small && !merged.contains(&to) && !merged.contains(&from) {
            for p in packages.iter_mut().filter(|p| p.dept == Some(from)) {
                p.dept = Some(to);
            }
            merged.insert(from);
        }
    }

    // Teachers: one per primary class, then each department's.
    let mut teachers: Vec<TeacherPlan> = Vec::new();
    let mut primary_teacher: BTreeMap<usize, usize> = BTreeMap::new();
    for p in packages.iter_mut().filter(|p| p.dept.is_none()) {
        let t = *primary_teacher.entry(p.class).or_insert_with(|| {
            teachers.push(TeacherPlan { dept: None, load: 0, homeroom: true });
            teachers.len() - 1
        });
        p.teacher = t;
        teachers[t].load += p.items.iter().map(|&(_, h)| h as u32).sum::<u32>();
    }
    for d in DEPTS {
        let mine: Vec<usize> = (0..packages.len()).filter(|&i| packages[i].dept == Some(d)).collect();
        if mine.is_empty() {
            continue;
        }
        let hours: u32 = mine.iter().map(|&i| packages[i].hours()).sum();
        let pairs = mine.iter().any(|&i| packages[i].pair.is_some());
        let n = (hours.div_ceil(26) as usize).max(if pairs { 2 } else { 1 });
        let first = teachers.len();
        for _ in 0..n {
            teachers.push(TeacherPlan { dept: Some(d), load: 0, homeroom: false });
        }
        let mut order = mine.clone();
        order.sort_by_key(|&i| (std::cmp::Reverse(packages[i].hours()), i));
        let mut assigned: BTreeMap<usize, usize> = BTreeMap::new();
        for i in order {
            let avoid = packages[i].pair.and_then(|q| assigned.get(&q).copied());
            let t = (first..first + n)
                .filter(|&t| Some(t) != avoid)
                .min_by_key(|&t| (teachers[t].load, t))
                .expect("at least two teachers where subgroups exist");
            assigned.insert(i, t);
            packages[i].teacher = t;
            teachers[t].load += packages[i].hours();
        }
    }
    if teachers.is_empty() {
        teachers.push(TeacherPlan { dept: None, load: 0, homeroom: false });
    }

    // ГПД (grades 1–2) by the class teacher, one extracurricular course per school.
    let chess_class = [5u8, 6, 7, 4, 3].iter().find_map(|&g| grades.iter().position(|&x| x == g)).unwrap_or(0);
    let chess_teacher = (0..teachers.len())
        .filter(|&t| teachers[t].dept == Some(Dept::Math))
        .min_by_key(|&t| (teachers[t].load, t))
        .unwrap_or_else(|| primary_teacher.get(&chess_class).copied().unwrap_or(0));
    teachers[chess_teacher].load += 1;
    for (&c, &t) in &primary_teacher {
        if grades[c] <= 2 {
            teachers[t].load += 5;
        }
    }

    // Homeroom teachers: the primary class teacher, or the teacher with most hours in the class.
    let mut homeroom = vec![0usize; grades.len()];
    for (c, slot) in homeroom.iter_mut().enumerate() {
        if let Some(&t) = primary_teacher.get(&c) {
            *slot = t;
            continue;
        }
        let mut by_teacher: BTreeMap<usize, u32> = BTreeMap::new();
        for p in packages.iter().filter(|p| p.class == c) {
            *by_teacher.entry(p.teacher).or_default() += p.hours();
        }
        let mut cand: Vec<(u32, usize)> = by_teacher.iter().map(|(&t, &h)| (h, t)).collect();
        cand.sort_by_key(|&(h, t)| (std::cmp::Reverse(h), t));
        let t = cand
            .iter()
            .map(|&(_, t)| t)
            .find(|&t| !teachers[t].homeroom)
            .or_else(|| (0..teachers.len()).find(|&t| !teachers[t].homeroom))
            .or_else(|| cand.first().map(|&(_, t)| t))
            .unwrap_or(0);
        teachers[t].homeroom = true;
        *slot = t;
    }

    // Teachers as persons.
    let birth_from = NaiveDate::from_ymd_opt(y - 63, 1, 1).expect("valid date");
    let teacher_persons: Vec<SynthPerson> = teachers
        .iter()
        .map(|t| {
            let male_share = match t.dept {
                Some(Dept::Pe) => 0.6,
                Some(Dept::Tech) | Some(Dept::Phys) | Some(Dept::Inf) => 0.4,
                None => 0.03,
                _ => 0.12,
            };
            let sex = if rng.random_bool(male_share) { Sex::Male } else { Sex::Female };
            let last_name = names::surname(names::family(rng), sex);
            let first_name = match sex {
                Sex::Male => names::man_name(names::man(rng)).to_string(),
                Sex::Female => names::woman_name(rng).to_string(),
            };
            let middle_name = names::patronymic(names::man(rng), sex).to_string();
            SynthPerson {
                id: ids.next(),
                user_id: Some(ids.next()),
                last_name,
                first_name,
                middle_name,
                sex,
                birth_date: random_date(rng, birth_from, 365 * 40),
            }
        })
        .collect();
    let tid = |t: usize| teacher_persons[t].id;

    let classes: Vec<SynthClass> = (0..grades.len())
        .map(|c| SynthClass {
            id: ids.next(),
            name: class_name(c),
            grade: grades[c],
            homeroom_teacher: Some(tid(homeroom[c])),
        })
        .collect();

    // Groups.
    let mut groups: Vec<SynthGroup> = Vec::new();
    let mut unit_id: BTreeMap<UnitRef, u64> = BTreeMap::new();
    let mut gpd_group: BTreeMap<usize, u64> = BTreeMap::new();
    let mut chess_group = 0;
    for (c, &g) in grades.iter().enumerate() {
        unit_id.insert(UnitRef::Class(c), classes[c].id);
        for s in ALL.into_iter().filter(|s| s.hours(g) > 0 && s.split(g)) {
            let short = match s {
                Subj::English => "Английский язык",
                _ => s.name(),
            };
            for k in 1..=2u8 {
                let gid = ids.next();
                groups.push(SynthGroup {
                    id: gid,
                    class_id: classes[c].id,
                    name: format!("{} {short}, {k} подгруппа", class_name(c)),
                    kind: GroupKind::Subgroup,
                    subject_id: subject_id.get(&s).copied(),
                });
                unit_id.insert(UnitRef::Sub(c, s, k), gid);
            }
        }
        if g <= 2 {
            let gid = ids.next();
            groups.push(SynthGroup {
                id: gid,
                class_id: classes[c].id,
                name: format!("ГПД {}", class_name(c)),
                kind: GroupKind::AfterSchool,
                subject_id: subject_id.get(&Subj::AfterSchool).copied(),
            });
            gpd_group.insert(c, gid);
        }
        if c == chess_class {
            chess_group = ids.next();
            groups.push(SynthGroup {
                id: chess_group,
                class_id: classes[c].id,
                name: format!("Шахматы ({})", class_name(c)),
                kind: GroupKind::Extracurricular,
                subject_id: subject_id.get(&Subj::Chess).copied(),
            });
        }
    }

    // Students, their guardians and enrollments.
    let mut students = Vec::new();
    let mut guardians = Vec::new();
    let mut guardianships = Vec::new();
    let mut enrollments = Vec::new();
    let enroll = |enrollments: &mut Vec<SynthEnrollment>, unit: u64, student: u64| {
        enrollments.push(SynthEnrollment { student, unit, active: true, from: cfg.year_start, to: None })
    };
    for (c, &g) in grades.iter().enumerate() {
        let spc = cfg.students_per_class as i64;
        let n = (spc + rng.random_range(-3..=3i64)).max(1) as usize;
        struct Kid {
            sex: Sex,
            family: &'static str,
            first: &'static str,
            father: usize,
            birth: NaiveDate,
        }
        let born_from = NaiveDate::from_ymd_opt(y - g as i32 - 7, 12, 1).expect("valid date");
        let mut kids: Vec<Kid> = (0..n)
            .map(|_| {
                let sex = if rng.random_bool(0.5) { Sex::Male } else { Sex::Female };
                Kid {
                    sex,
                    family: names::family(rng),
                    first: names::child_name(rng, sex),
                    father: names::man(rng),
                    birth: random_date(rng, born_from, 365),
                }
            })
            .collect();
        let full = |k: &Kid| {
            (names::surname(k.family, k.sex), k.first.to_string(), names::patronymic(k.father, k.sex).to_string())
        };
        kids.sort_by_key(|k| full(k));
        let login_share = if g <= 4 { 0.3 } else { 0.95 };
        let mut class_students = Vec::new();
        for k in &kids {
            let (last_name, first_name, middle_name) = full(k);
            let sid = ids.next();
            let user_id = if rng.random_bool(login_share) { Some(ids.next()) } else { None };
            students.push(SynthPerson {
                id: sid,
                user_id,
                last_name,
                first_name,
                middle_name,
                sex: k.sex,
                birth_date: k.birth,
            });
            class_students.push(sid);
            // Guardians: both parents, the mother alone, or the father alone.
            let r: f64 = rng.random();
            let (mother, father) = if r < 0.65 {
                (true, true)
            } else if r < 0.93 {
                (true, false)
            } else {
                (false, true)
            };
            let parent_birth = |rng: &mut ChaCha8Rng| {
                let age = rng.random_range(22..=42);
                random_date(rng, NaiveDate::from_ymd_opt(k.birth.year() - age, 1, 1).expect("valid date"), 365)
            };
            if mother {
                let family = if father || rng.random_bool(0.85) { k.family } else { names::family(rng) };
                let p = SynthPerson {
                    id: ids.next(),
                    user_id: if rng.random_bool(0.85) { Some(ids.next()) } else { None },
                    last_name: names::surname(family, Sex::Female),
                    first_name: names::woman_name(rng).to_string(),
                    middle_name: names::patronymic(names::man(rng), Sex::Female).to_string(),
                    sex: Sex::Female,
                    birth_date: parent_birth(rng),
                };
                guardianships.push((p.id, sid));
                guardians.push(p);
            }
            if father {
                let p = SynthPerson {
                    id: ids.next(),
                    user_id: if rng.random_bool(0.8) { Some(ids.next()) } else { None },
                    last_name: names::surname(k.family, Sex::Male),
                    first_name: names::man_name(k.father).to_string(),
                    middle_name: names::patronymic(names::man(rng), Sex::Male).to_string(),
                    sex: Sex::Male,
                    birth_date: parent_birth(rng),
                };
                guardianships.push((p.id, sid));
                guardians.push(p);
            }
        }
        for &s in &class_students {
            enroll(&mut enrollments, classes[c].id, s);
        }
        // Subgroups split the alphabetical list in halves.
        let half = class_students.len().div_ceil(2);
        for s in ALL.into_iter().filter(|s| s.hours(g) > 0 && s.split(g)) {
            for (i, &st) in class_students.iter().enumerate() {
                let k = if i < half { 1 } else { 2 };
                enroll(&mut enrollments, unit_id[&UnitRef::Sub(c, s, k)], st);
            }
        }
        let mut optional = |enrollments: &mut Vec<SynthEnrollment>, unit: u64, share: f64| {
            let mut any = false;
            for &st in &class_students {
                if rng.random_bool(share) {
                    enroll(enrollments, unit, st);
                    any = true;
                }
            }
            if !any {
                enroll(enrollments, unit, class_students[0]);
            }
        };
        if let Some(&gid) = gpd_group.get(&c) {
            optional(&mut enrollments, gid, 0.6);
        }
        if c == chess_class {
            optional(&mut enrollments, chess_group, 0.5);
        }
    }

    // Loads.
    let mut loads: Vec<SynthLoad> = Vec::new();
    for p in &packages {
        for &(s, h) in &p.items {
            loads.push(SynthLoad {
                teacher: tid(p.teacher),
                subject: subject_id[&s],
                unit: unit_id[&p.unit],
                hours_per_week: h,
            });
        }
    }
    for (&c, &gid) in &gpd_group {
        loads.push(SynthLoad {
            teacher: tid(homeroom[c]),
            subject: subject_id[&Subj::AfterSchool],
            unit: gid,
            hours_per_week: 5,
        });
    }
    loads.push(SynthLoad {
        teacher: tid(chess_teacher),
        subject: subject_id[&Subj::Chess],
        unit: chess_group,
        hours_per_week: 1,
    });

    // The timetable.
    let mut tt = Timetable::new(teachers.len(), grades.len());
    let mut order: Vec<usize> = (0..grades.len()).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(grades[c]), c));
    for &c in &order {
        // Items: (subject, hours, [(unit, teacher)]); the two subgroups of a subject meet together.
        let mut items: Vec<Item> = Vec::new();
        for (i, p) in packages.iter().enumerate().filter(|(_, p)| p.class == c) {
            match p.pair {
                Some(q) if q < i => continue,
                Some(q) => {
                    let (s, h) = p.items[0];
                    items.push((
                        s,
                        h,
                        vec![(unit_id[&p.unit], p.teacher), (unit_id[&packages[q].unit], packages[q].teacher)],
                    ));
                }
                None => {
                    for &(s, h) in &p.items {
                        items.push((s, h, vec![(unit_id[&p.unit], p.teacher)]));
                    }
                }
            }
        }
        items.sort_by_key(|(s, h, _)| (std::cmp::Reverse(*h), *s));
        let total: u32 = items.iter().map(|(_, h, _)| *h as u32).sum();
        let max = if grades[c] <= 4 { 6 } else { 7 };
        tt.lay_out(c, total, max);
        for (s, h, parts) in &items {
            for _ in 0..*h {
                tt.place(rng, c, *s, parts);
            }
        }
    }
    tt.repair(grades.len());
    // ГПД after the class's lessons; the course on the lightest day its teacher is free.
    for (&c, &gid) in &gpd_group {
        for d in 0..5 {
            let n = tt.count[c][d] + 1;
            tt.add(c, d, n, Subj::AfterSchool, gid, homeroom[c]);
        }
    }
    let chess_count = tt.count[chess_class];
    let d = (0..5).min_by_key(|&d| (tt.is_busy(chess_teacher, d, chess_count[d] + 1), chess_count[d], d)).unwrap_or(0);
    tt.add(chess_class, d, chess_count[d] + 1, Subj::Chess, chess_group, chess_teacher);

    let mut timetable: Vec<SynthSlot> = tt
        .slots
        .iter()
        .map(|&(_, d, n, s, unit, t)| SynthSlot {
            unit,
            subject: subject_id[&s],
            teacher: tid(t),
            weekday: d + 1,
            number: n,
        })
        .collect();
    timetable.sort_by_key(|s| (s.weekday, s.number, s.unit));

    School {
        id,
        name,
        full_name,
        municipality: municipality.into(),
        city: city.into(),
        time_zone: cfg.time_zone.clone(),
        year,
        periods,
        holidays,
        subjects,
        work_types,
        bells: bells(),
        teachers: teacher_persons,
        students,
        guardians,
        guardianships,
        classes,
        groups,
        enrollments,
        loads,
        timetable,
        lessons: BTreeMap::new(),
        works: BTreeMap::new(),
        marks: BTreeMap::new(),
        final_marks: BTreeMap::new(),
        attendance: BTreeMap::new(),
    }
}

/// The weekly timetable being built: lessons laid out per class and day, how many lessons
/// each teacher has at each time.
struct Timetable {
    /// Per class and weekday: lessons that day
    count: Vec<[u8; 5]>,
    /// Per class and weekday: taken lesson numbers (bit n)
    taken: Vec<[u16; 5]>,
    /// Per class: lessons of a subject on a weekday
    subj_day: Vec<BTreeMap<(Subj, usize), u8>>,
    /// Per teacher, weekday and lesson number: lessons at that time (more than one: a conflict)
    busy: Vec<[[u8; 10]; 5]>,
    /// (class, weekday 0–4, number, subject, unit, teacher)
    slots: Vec<(usize, u8, u8, Subj, u64, usize)>,
}

impl Timetable {
    fn new(teachers: usize, classes: usize) -> Self {
        Timetable {
            count: vec![[0; 5]; classes],
            taken: vec![[0; 5]; classes],
            subj_day: vec![BTreeMap::new(); classes],
            busy: vec![[[0; 10]; 5]; teachers],
            slots: Vec::new(),
        }
    }

    fn is_busy(&self, t: usize, d: usize, n: u8) -> bool {
        self.busy[t][d][n as usize] > 0
    }

    /// Spreads `total` lessons over the week, heavier on Tuesday and Wednesday.
    fn lay_out(&mut self, c: usize, total: u32, max: u8) {
        const EXTRA: [usize; 5] = [1, 2, 0, 3, 4];
        let base = (total / 5) as u8;
        let mut count = [base; 5];
        for &d in EXTRA.iter().take((total % 5) as usize) {
            count[d] += 1;
        }
        for x in &mut count {
            *x = (*x).min(max);
        }
        self.count[c] = count;
    }

    /// Adds a lesson outside the class's own grid (ГПД, courses).
    fn add(&mut self, c: usize, d: usize, n: u8, s: Subj, unit: u64, t: usize) {
        self.busy[t][d][n as usize] += 1;
        self.slots.push((c, d as u8, n, s, unit, t));
    }

    /// Puts one lesson of `s` for the class in the free cell that keeps the subject spread
    /// over the week and its teachers free.
    fn place(&mut self, rng: &mut ChaCha8Rng, c: usize, s: Subj, parts: &[(u64, usize)]) {
        let mut best: Option<(u32, usize, u8)> = None;
        for d in 0..5 {
            let same = self.subj_day[c].get(&(s, d)).copied().unwrap_or(0) as u32;
            for n in 1..=self.count[c][d] {
                if self.taken[c][d] & (1 << n) != 0 {
                    continue;
                }
                let conflict = parts.iter().any(|&(_, t)| self.is_busy(t, d, n));
                let cost = same * 10 + if conflict { 100 } else { 0 } + rng.random_range(0..4u32);
                if best.is_none_or(|(b, _, _)| cost < b) {
                    best = Some((cost, d, n));
                }
            }
        }
        let Some((_, d, n)) = best else {
            return; // more hours than cells: cannot happen with the curriculum's totals
        };
        self.taken[c][d] |= 1 << n;
        *self.subj_day[c].entry((s, d)).or_default() += 1;
        for &(unit, t) in parts {
            self.add(c, d, n, s, unit, t);
        }
    }

    /// The cost of two cells of class `c`: teacher conflicts there (heavy) and the
    /// subject repeated on their days.
    fn cost(&self, c: usize, cells: [(usize, u8); 2], teachers: &[usize]) -> u32 {
        let mut cost = 0;
        for &t in teachers {
            for &(d, n) in &cells {
                cost += 100 * (self.busy[t][d][n as usize].saturating_sub(1) as u32);
            }
        }
        let days = if cells[0].0 == cells[1].0 { &cells[..1] } else { &cells[..] };
        for &(d, _) in days {
            for (&(_, sd), &k) in &self.subj_day[c] {
                if sd == d {
                    cost += 10 * (k.saturating_sub(1) as u32);
                }
            }
        }
        cost
    }

    /// Moves the lessons of cell `a` to cell `b` and back.
    fn swap(&mut self, c: usize, a: (usize, u8), b: (usize, u8), sa: &[usize], sb: &[usize]) {
        for (from, to, list) in [(a, b, sa), (b, a, sb)] {
            for (j, &i) in list.iter().enumerate() {
                let (_, _, _, s, _, t) = self.slots[i];
                self.busy[t][from.0][from.1 as usize] -= 1;
                self.busy[t][to.0][to.1 as usize] += 1;
                self.slots[i].1 = to.0 as u8;
                self.slots[i].2 = to.1;
                // A cell holds one subject (both subgroups of it, at most): count it once.
                if j == 0 {
                    if let Some(k) = self.subj_day[c].get_mut(&(s, from.0)) {
                        *k -= 1;
                    }
                    *self.subj_day[c].entry((s, to.0)).or_default() += 1;
                }
            }
        }
    }

    /// Swaps lessons inside each class while that removes teacher conflicts (or repeats of a
    /// subject on a day) without adding any.
    fn repair(&mut self, classes: usize) {
        for _ in 0..4 {
            let mut improved = false;
            for c in 0..classes {
                let mut cells: BTreeMap<(usize, u8), Vec<usize>> = BTreeMap::new();
                for (i, x) in self.slots.iter().enumerate().filter(|(_, x)| x.0 == c) {
                    cells.entry((x.1 as usize, x.2)).or_default().push(i);
                }
                let keys: Vec<(usize, u8)> = cells.keys().copied().collect();
                for i in 0..keys.len() {
                    for j in i + 1..keys.len() {
                        let (a, b) = (keys[i], keys[j]);
                        let (sa, sb) = (cells[&a].clone(), cells[&b].clone());
                        let mut teachers: Vec<usize> = sa.iter().chain(&sb).map(|&k| self.slots[k].5).collect();
                        teachers.sort_unstable();
                        teachers.dedup();
                        let before = self.cost(c, [a, b], &teachers);
                        if before == 0 {
                            continue;
                        }
                        self.swap(c, a, b, &sa, &sb);
                        if self.cost(c, [a, b], &teachers) < before {
                            cells.insert(a, sb);
                            cells.insert(b, sa);
                            improved = true;
                        } else {
                            self.swap(c, b, a, &sa, &sb);
                        }
                    }
                }
            }
            if !improved {
                break;
            }
        }
    }
}
