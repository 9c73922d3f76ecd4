//! Tests of the synthetic school. They share a few generated worlds (generation in a debug
//! build takes a moment).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use chrono::{Datelike, Duration, NaiveDate};

use super::*;
use crate::model::{GroupKind, PeriodKind, Sex};

/// `small(7)`: simulated into March.
fn small() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| World::generate(SynthConfig::small(7)))
}

/// `small(7)` over the whole year.
fn small_year() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        World::generate(SynthConfig {
            simulate_until: NaiveDate::from_ymd_opt(2026, 6, 10).unwrap(),
            ..SynthConfig::small(7)
        })
    })
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Every live record's (kind, key) and its content as JSON.
fn snapshot(w: &World) -> BTreeMap<(EntityKind, String), String> {
    fn put<T: serde::Serialize>(m: &mut BTreeMap<(EntityKind, String), String>, k: EntityKind, key: String, v: &T) {
        assert!(m.insert((k, key), serde_json::to_string(v).unwrap()).is_none(), "duplicate key of {k}");
    }
    let mut m = BTreeMap::new();
    for s in &w.schools {
        put(&mut m, EntityKind::Organization, key::id(s.id), &(&s.name, &s.full_name, &s.municipality));
        put(&mut m, EntityKind::AcademicYear, key::id(s.year.id), &s.year);
        for p in &s.periods {
            put(&mut m, EntityKind::StudyPeriod, key::id(p.id), p);
        }
        for h in &s.holidays {
            put(&mut m, EntityKind::Holiday, key::id(h.id), h);
        }
        for x in &s.subjects {
            put(&mut m, EntityKind::Subject, key::id(x.id), x);
        }
        for p in s.teachers.iter().chain(&s.students).chain(&s.guardians) {
            put(&mut m, EntityKind::Person, key::id(p.id), p);
        }
        for &(g, st) in &s.guardianships {
            put(&mut m, EntityKind::Guardianship, key::guardianship(g, st), &(g, st));
        }
        for c in &s.classes {
            put(&mut m, EntityKind::Class, key::id(c.id), c);
        }
        for g in &s.groups {
            put(&mut m, EntityKind::Group, key::id(g.id), g);
        }
        for e in &s.enrollments {
            put(&mut m, EntityKind::Enrollment, key::enrollment(e.unit, e.student), e);
        }
        for l in &s.loads {
            put(&mut m, EntityKind::TeachingLoad, key::teaching_load(l.teacher, l.subject, l.unit), l);
        }
        for l in s.lessons.values() {
            put(&mut m, EntityKind::Lesson, key::id(l.id), l);
        }
        for x in s.works.values() {
            let k = if x.is_homework { EntityKind::Homework } else { EntityKind::Work };
            put(&mut m, k, key::id(x.id), x);
        }
        for x in s.marks.values() {
            put(&mut m, EntityKind::Mark, key::id(x.id), x);
        }
        for (&(st, sj, p), f) in &s.final_marks {
            put(&mut m, EntityKind::FinalMark, key::final_mark(st, sj, p), f);
        }
        for (&(l, st), a) in &s.attendance {
            put(&mut m, EntityKind::Attendance, key::attendance(l, st), a);
        }
    }
    m
}

/// The live keys the truth log says exist, replaying inserts and deletes.
fn replay(w: &World, upto: u64) -> BTreeSet<(EntityKind, String)> {
    let mut live = BTreeSet::new();
    for c in w.truth.iter().take_while(|c| c.seq <= upto) {
        match c.op {
            TruthOp::Insert => {
                assert!(live.insert((c.kind, c.key.clone())), "double insert {:?}", c)
            }
            TruthOp::Delete => {
                assert!(live.remove(&(c.kind, c.key.clone())), "delete of nothing {:?}", c)
            }
            TruthOp::Update => {
                assert!(live.contains(&(c.kind, c.key.clone())), "update of nothing {:?}", c)
            }
        }
    }
    live
}

fn without_config(w: &World) -> serde_json::Value {
    let mut v = serde_json::to_value(w).unwrap();
    v.as_object_mut().unwrap().remove("config");
    v
}

#[test]
fn deterministic_from_the_seed() {
    // Past the first quarter's final marks.
    let config = |seed| SynthConfig { simulate_until: date(2025, 11, 7), ..SynthConfig::small(seed) };
    let a = serde_json::to_string(&World::generate(config(7))).unwrap();
    let b = serde_json::to_string(&World::generate(config(7))).unwrap();
    assert!(a == b, "two generations of the same config differ");
    let c = serde_json::to_string(&World::generate(config(8))).unwrap();
    assert!(a != c, "a different seed gives the same world");
    // And the JSON reads back.
    let back: World = serde_json::from_str(&a).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), a);
}

#[test]
fn counts_equal_the_replayed_log() {
    for w in [small(), small_year()] {
        let live = replay(w, u64::MAX);
        let snap = snapshot(w);
        let snap_keys: BTreeSet<_> = snap.keys().cloned().collect();
        assert_eq!(live, snap_keys, "the log and the state disagree");
        let mut per_kind: BTreeMap<EntityKind, u64> = BTreeMap::new();
        for (k, _) in &live {
            *per_kind.entry(*k).or_default() += 1;
        }
        assert_eq!(w.counts(), per_kind);
        // seqs are 1, 2, 3, … and times never go back
        for (i, c) in w.truth.iter().enumerate() {
            assert_eq!(c.seq, i as u64 + 1);
            assert_eq!(c.at.date(), c.day);
        }
        assert!(w.truth.windows(2).all(|p| p[0].at <= p[1].at));
        // net changes from 0 are the live set, all inserts
        let net = w.net_changes_since(0);
        assert!(net.iter().all(|n| n.op == NetOp::Insert));
        assert_eq!(net.len(), live.len());
    }
}

#[test]
fn advance_continues_the_world() {
    // Across the end of the first quarter: final marks, late changes due in the holidays.
    let mut w = World::generate(SynthConfig { simulate_until: date(2025, 10, 21), ..SynthConfig::small(3) });
    let before = snapshot(&w);
    let seq = w.last_seq();
    let today = w.today;
    w.advance(5);
    assert_eq!(w.today, today + Duration::days(5));
    let after = snapshot(&w);
    let new: Vec<_> = w.truth.iter().filter(|c| c.seq > seq).collect();
    assert!(!new.is_empty());
    for c in &new {
        assert!(c.day > today && c.day <= w.today, "change dated outside the advanced days: {c:?}");
    }
    // The net changes are exactly the difference of the two states.
    let net: BTreeMap<(EntityKind, String), NetOp> =
        w.net_changes_since(seq).into_iter().map(|n| ((n.kind, n.key), n.op)).collect();
    for (k, v) in &after {
        match before.get(k) {
            None => assert_eq!(net.get(k), Some(&NetOp::Insert), "{k:?}"),
            Some(old) if old != v => assert_eq!(net.get(k), Some(&NetOp::Update), "{k:?}"),
            Some(_) => assert!(!net.contains_key(k) || net[k] == NetOp::Update, "{k:?}"),
        }
    }
    for k in before.keys().filter(|k| !after.contains_key(*k)) {
        assert_eq!(net.get(k), Some(&NetOp::Delete), "{k:?}");
    }
    for (k, op) in &net {
        match op {
            NetOp::Insert => assert!(!before.contains_key(k) && after.contains_key(k)),
            NetOp::Delete => assert!(before.contains_key(k) && !after.contains_key(k)),
            NetOp::Update => assert!(before.contains_key(k) && after.contains_key(k)),
        }
    }
    // Advancing is the same as generating further in one go.
    assert!(w.truth.iter().any(|c| c.seq > seq && c.kind == EntityKind::FinalMark));
    let direct = World::generate(SynthConfig { simulate_until: date(2025, 10, 26), ..SynthConfig::small(3) });
    assert!(without_config(&direct) == without_config(&w), "advance(5) differs from a longer generate");
}

#[test]
fn every_injection_appears_over_a_year() {
    let w = small_year();
    let tags: Vec<Injection> = w.truth.iter().filter_map(|c| c.injection).collect();
    for i in [
        Injection::LateMark,
        Injection::BackdatedMark,
        Injection::DeletedUnsatisfactoryMark,
        Injection::EditAfterFinal,
        Injection::MissingTopic,
        Injection::MissingHomework,
    ] {
        assert!(tags.contains(&i), "no {i:?} in a year");
    }
    // Tags sit where they should.
    for c in w.truth.iter().filter(|c| c.injection.is_some()) {
        let (kind, op) = match c.injection.unwrap() {
            Injection::LateMark | Injection::BackdatedMark => (EntityKind::Mark, TruthOp::Insert),
            Injection::DeletedUnsatisfactoryMark => (EntityKind::Mark, TruthOp::Delete),
            Injection::EditAfterFinal => (EntityKind::Mark, TruthOp::Update),
            Injection::MissingTopic | Injection::MissingHomework => (EntityKind::Lesson, TruthOp::Insert),
            Injection::Monitor { .. } => continue,
        };
        assert_eq!((c.kind, c.op), (kind, op), "{c:?}");
    }
    // A topic is missing on lessons so tagged (unless entered later); homework likewise.
    for s in &w.schools {
        let with_homework: BTreeSet<u64> = s.works.values().filter(|x| x.is_homework).map(|x| x.lesson).collect();
        for c in w.truth.iter().filter(|c| c.school == s.id && c.op == TruthOp::Insert && c.kind == EntityKind::Lesson)
        {
            let l = &s.lessons[&c.key.parse::<u64>().unwrap()];
            if c.injection == Some(Injection::MissingHomework) {
                assert!(!with_homework.contains(&l.id));
            }
        }
    }
}

#[test]
fn changes_stay_inside_the_reread_window() {
    for w in [small(), small_year()] {
        let mut inserted: BTreeMap<(EntityKind, &str), NaiveDate> = BTreeMap::new();
        for c in &w.truth {
            let k = (c.kind, c.key.as_str());
            match c.op {
                TruthOp::Insert => {
                    inserted.insert(k, c.day);
                }
                TruthOp::Update | TruthOp::Delete => {
                    if matches!(c.kind, EntityKind::Mark | EntityKind::Attendance) {
                        let d = (c.day - inserted[&k]).num_days();
                        assert!((1..=21).contains(&d), "{c:?} touches a record {d} days old");
                    }
                }
            }
        }
        for s in &w.schools {
            for m in s.marks.values() {
                let day = inserted[&(EntityKind::Mark, key::id(m.id).as_str())];
                assert_eq!(m.entered_at.date(), day, "a mark dated other than its entry");
                let lesson = &s.lessons[&m.lesson];
                assert!(lesson.date <= day && !lesson.cancelled);
            }
            for c in w.truth.iter().filter(|c| c.kind == EntityKind::Lesson && c.op == TruthOp::Update) {
                if let Some(l) = s.lessons.get(&c.key.parse::<u64>().unwrap()) {
                    let d = (c.day - l.date).num_days();
                    assert!((1..=5).contains(&d), "topic entered {d} days after the lesson");
                }
            }
        }
    }
}

#[test]
fn final_marks_after_the_first_quarter() {
    let w = small();
    let s = &w.schools[0];
    let q1 = s.periods.iter().find(|p| p.number == 1).unwrap();
    let q1_marks: Vec<_> = s.final_marks.iter().filter(|(k, _)| k.2 == Some(q1.id)).collect();
    assert!(!q1_marks.is_empty());
    let allowed = ["2", "3", "4", "5", "н/а", "осв"];
    for (_, f) in &q1_marks {
        assert!(allowed.contains(&f.value.as_str()), "{}", f.value);
        let d = f.entered_at.date();
        assert!(d >= date(2025, 10, 24) && d <= date(2025, 10, 26), "{d}");
    }
    let na = q1_marks.iter().filter(|(_, f)| f.value == "н/а").count();
    assert!(na * 10 < q1_marks.len(), "too many н/а: {na} of {}", q1_marks.len());
    // No final marks for grade 1, the ГПД or the course.
    let grade1: BTreeSet<u64> = s.classes.iter().filter(|c| c.grade == 1).map(|c| c.id).collect();
    let grade1_students: BTreeSet<u64> =
        s.enrollments.iter().filter(|e| grade1.contains(&e.unit)).map(|e| e.student).collect();
    let ungraded: BTreeSet<u64> =
        s.groups.iter().filter(|g| g.kind != GroupKind::Subgroup).filter_map(|g| g.subject_id).collect();
    for k in s.final_marks.keys() {
        assert!(!grade1_students.contains(&k.0));
        assert!(!ungraded.contains(&k.1));
    }
    // Year marks only after the year.
    assert!(s.final_marks.keys().all(|k| k.2.is_some()));
    let y = &small_year().schools[0];
    assert!(y.final_marks.keys().any(|k| k.2.is_none()));
}

#[test]
fn names_are_russian() {
    let w = small();
    let cyrillic = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap()) || "ёЁ- ".contains(c))
    };
    for s in &w.schools {
        assert!(s.name.starts_with("МБОУ СОШ № "));
        for p in s.teachers.iter().chain(&s.students).chain(&s.guardians) {
            assert!(cyrillic(&p.last_name) && cyrillic(&p.first_name) && cyrillic(&p.middle_name), "{p:?}");
            match p.sex {
                Sex::Female => assert!(p.middle_name.ends_with("на"), "{p:?}"),
                Sex::Male => assert!(p.middle_name.ends_with("ич"), "{p:?}"),
            }
            let invariable = ["о", "х", "м"].iter().any(|e| p.last_name.ends_with(e));
            if p.sex == Sex::Female && !invariable {
                assert!(p.last_name.ends_with('а') || p.last_name.ends_with('я'), "{p:?}");
            }
        }
        // A daughter carries her father's name.
        let by_id: BTreeMap<u64, &SynthPerson> = s.guardians.iter().map(|g| (g.id, g)).collect();
        for st in &s.students {
            for &(g, _) in s.guardianships.iter().filter(|(_, x)| *x == st.id) {
                let g = by_id[&g];
                if g.sex == Sex::Male {
                    let stem = |s: &str| s.replace('ё', "е").chars().take(2).collect::<String>();
                    assert_eq!(stem(&st.middle_name), stem(&g.first_name), "{st:?} {g:?}");
                }
            }
        }
    }
}

#[test]
fn the_school_is_shaped_like_a_school() {
    let w = small();
    let s = &w.schools[0];
    let grades: BTreeSet<u8> = s.classes.iter().map(|c| c.grade).collect();
    assert_eq!(grades, (1..=11).collect());
    assert_eq!(s.classes[4].name, "5А");
    let codes: Vec<(&str, u8)> = s.work_types.iter().map(|t| (t.code.as_str(), t.weight)).collect();
    assert_eq!(
        codes,
        [
            ("lesson", 1),
            ("written", 2),
            ("control", 3),
            ("test", 2),
            ("internal_control", 3),
            ("independent", 2),
            ("practical", 2),
            ("homework", 1)
        ]
    );
    assert_eq!(s.periods.len(), 4);
    assert!(s.periods.iter().all(|p| p.kind == PeriodKind::Quarter));
    assert_eq!(s.periods[0].name, "1 четверть");
    assert_eq!(s.year.name, "2025/2026");
    // Loads agree with the timetable.
    let mut slots: BTreeMap<(u64, u64, u64), u8> = BTreeMap::new();
    for t in &s.timetable {
        *slots.entry((t.teacher, t.subject, t.unit)).or_default() += 1;
    }
    let loads: BTreeMap<(u64, u64, u64), u8> =
        s.loads.iter().map(|l| ((l.teacher, l.subject, l.unit), l.hours_per_week)).collect();
    assert_eq!(slots, loads);
    // Lessons per day within limits; every class has its homeroom teacher among the teachers.
    let teacher_ids: BTreeSet<u64> = s.teachers.iter().map(|t| t.id).collect();
    for c in &s.classes {
        assert!(c.homeroom_teacher.is_some_and(|t| teacher_ids.contains(&t)));
        let units: BTreeSet<u64> = std::iter::once(c.id)
            .chain(s.groups.iter().filter(|g| g.class_id == c.id && g.kind == GroupKind::Subgroup).map(|g| g.id))
            .collect();
        for d in 1..=5 {
            let numbers: BTreeSet<u8> =
                s.timetable.iter().filter(|t| t.weekday == d && units.contains(&t.unit)).map(|t| t.number).collect();
            let max = if c.grade <= 4 { 6 } else { 7 };
            assert!(numbers.len() <= max && numbers.iter().all(|&n| n as usize <= max));
        }
    }
    // Subgroups and groups.
    for g in &s.groups {
        assert!(s.enrollments.iter().any(|e| e.unit == g.id));
    }
    assert!(s.groups.iter().any(|g| g.kind == GroupKind::AfterSchool));
    assert_eq!(s.groups.iter().filter(|g| g.kind == GroupKind::Extracurricular).count(), 1);
    assert!(s.groups.iter().any(|g| g.name.ends_with("1 подгруппа")));
    // Marks and homework happen; grade 1 has neither marks nor homework.
    assert!(s.marks.len() > 1000);
    let grade1: BTreeSet<u64> = s.classes.iter().filter(|c| c.grade == 1).map(|c| c.id).collect();
    assert!(s.marks.values().all(|m| !grade1.contains(&s.lessons[&m.lesson].unit)));
    let homework = s.works.values().filter(|x| x.is_homework).count();
    assert!(homework > 1000);
    // No lessons on weekends or in holidays.
    for l in s.lessons.values() {
        assert!(l.date.weekday().number_from_monday() <= 5);
        assert!(s.holidays.iter().all(|h| l.date < h.start || l.date > h.end));
    }
}

/// `cargo test --release -p ejgate-sdk synth::tests::large -- --ignored --nocapture`
#[test]
#[ignore]
fn large_generation_time() {
    let t = std::time::Instant::now();
    let w = World::generate(SynthConfig::large(1));
    let elapsed = t.elapsed();
    println!("large(1): {elapsed:?}, truth {} changes", w.truth.len());
    for (k, n) in w.counts() {
        println!("  {k}: {n}");
    }
    let tags: BTreeMap<String, usize> = w.truth.iter().filter_map(|c| c.injection).fold(BTreeMap::new(), |mut m, i| {
        *m.entry(format!("{i:?}")).or_default() += 1;
        m
    });
    println!("  injections: {tags:?}");
    let s = &w.schools[0];
    println!("  teachers {}, students {}, guardians {}", s.teachers.len(), s.students.len(), s.guardians.len());
}

/// A look at a `demo` school: loads, timetable conflicts, mark and attendance figures, a day
/// of lessons. `cargo test -p ejgate-sdk synth::tests::print_demo_report -- --ignored --nocapture`
#[test]
#[ignore]
fn print_demo_report() {
    let w = World::generate(SynthConfig::demo(1));
    let s = &w.schools[0];
    let mut load: BTreeMap<u64, u32> = BTreeMap::new();
    for l in &s.loads {
        *load.entry(l.teacher).or_default() += l.hours_per_week as u32;
    }
    let subj_name: BTreeMap<u64, &str> = s.subjects.iter().map(|x| (x.id, x.name.as_str())).collect();
    for t in &s.teachers {
        let subs: BTreeSet<&str> =
            s.loads.iter().filter(|l| l.teacher == t.id).map(|l| subj_name[&l.subject]).collect();
        println!("{} {} {} {:?}: {} h {:?}", t.last_name, t.first_name, t.middle_name, t.sex, load[&t.id], subs);
    }
    let mut busy: BTreeMap<(u64, u8, u8), u32> = BTreeMap::new();
    for t in &s.timetable {
        *busy.entry((t.teacher, t.weekday, t.number)).or_default() += 1;
    }
    println!("teacher conflicts: {}", busy.values().filter(|&&n| n > 1).count());
    let mut vals: BTreeMap<&str, u32> = BTreeMap::new();
    for m in s.marks.values() {
        *vals.entry(m.value.as_str()).or_default() += 1;
    }
    println!("marks {vals:?}");
    let mut fv: BTreeMap<&str, u32> = BTreeMap::new();
    for f in s.final_marks.values() {
        *fv.entry(f.value.as_str()).or_default() += 1;
    }
    println!("finals {fv:?}");
    let mut av: BTreeMap<String, u32> = BTreeMap::new();
    for a in s.attendance.values() {
        *av.entry(format!("{:?}", a.status)).or_default() += 1;
    }
    println!("attendance {av:?}");
    let mut ops: BTreeMap<String, u32> = BTreeMap::new();
    for c in &w.truth {
        *ops.entry(format!("{} {:?}", c.kind, c.op)).or_default() += 1;
    }
    println!("ops {ops:?}");
    for c in s.classes.iter().take(30).step_by(3) {
        let lessons: Vec<_> = s.lessons.values().filter(|l| l.unit == c.id && l.date == date(2025, 11, 12)).collect();
        for l in lessons {
            let hw: Vec<_> = s
                .works
                .values()
                .filter(|x| x.lesson == l.id)
                .map(|x| (x.is_homework, x.text.as_str(), x.target_date))
                .collect();
            println!("{} {} {} {:?} {:?}", c.name, l.number, subj_name[&l.subject], l.topic, hw);
        }
    }
    for g in &s.groups {
        println!("group {} {:?}", g.name, g.kind);
    }
    for p in s.students.iter().take(10) {
        println!("{} {} {} {}", p.last_name, p.first_name, p.middle_name, p.birth_date);
    }
    println!("{:?}", s.periods);
    println!("{:?}", s.holidays);
}

#[test]
fn several_schools_share_the_counter_and_the_municipality() {
    let w = World::generate(SynthConfig {
        schools: 3,
        classes_per_school: 12,
        students_per_class: 4,
        simulate_until: date(2025, 9, 12),
        ..SynthConfig::small(11)
    });
    assert_eq!(w.schools.len(), 3);
    let names: BTreeSet<&str> = w.schools.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), 3);
    assert!(w.schools.iter().all(|s| s.municipality == w.schools[0].municipality));
    assert_eq!(w.schools.iter().map(|s| s.classes.len()).sum::<usize>(), 36);
    // Every id is handed out once, from FIRST_ID up.
    let mut ids = BTreeSet::new();
    for s in &w.schools {
        let persons = s.teachers.iter().chain(&s.students).chain(&s.guardians);
        let all = [s.id, s.year.id]
            .into_iter()
            .chain(s.periods.iter().map(|p| p.id))
            .chain(s.subjects.iter().map(|x| x.id))
            .chain(persons.flat_map(|p| std::iter::once(p.id).chain(p.user_id)))
            .chain(s.classes.iter().map(|c| c.id))
            .chain(s.groups.iter().map(|g| g.id))
            .chain(s.lessons.keys().copied())
            .chain(s.works.keys().copied())
            .chain(s.marks.keys().copied());
        for id in all {
            assert!(id >= FIRST_ID && id < w.next_id);
            assert!(ids.insert(id), "id {id} handed out twice");
        }
    }
    assert_eq!(w.counts()[&EntityKind::Organization], 3);
    assert_eq!(replay(&w, u64::MAX).len() as u64, w.counts().values().sum::<u64>());
}

#[test]
fn a_monitoring_world_enters_some_classes_period_marks_on_each_day_around_the_end() {
    let config = SynthConfig { monitor: true, simulate_until: date(2026, 1, 10), ..SynthConfig::small(7) };
    let w = World::generate(config.clone());
    let s = &w.schools[0];
    let tag = Some(Injection::Monitor { rule: MonitorRule::M11 });
    let tagged: Vec<&TruthChange> = w.truth.iter().filter(|c| c.injection == tag).collect();
    // period marks only (not the year's), inserted
    assert!(tagged
        .iter()
        .all(|c| c.kind == EntityKind::FinalMark && c.op == TruthOp::Insert && !c.key.ends_with(":year")));
    // at each of the first two periods' ends, cases on every day of MONITOR_FINAL_DAYS, on
    // that day only; a class's period marks are all a case or none
    for p in s.periods.iter().filter(|p| p.end < w.today) {
        let of_period: Vec<&&TruthChange> = tagged.iter().filter(|c| c.key.ends_with(&format!(":{}", p.id))).collect();
        let days: BTreeSet<i64> = of_period.iter().map(|c| (c.day - p.end).num_days()).collect();
        assert_eq!(days, MONITOR_FINAL_DAYS.iter().map(|d| i64::from(*d)).collect(), "{}", p.name);
        let class_of: BTreeMap<u64, u64> = s
            .enrollments
            .iter()
            .filter(|e| e.active && s.classes.iter().any(|c| c.id == e.unit))
            .map(|e| (e.student, e.unit))
            .collect();
        let cases: BTreeSet<u64> =
            of_period.iter().map(|c| class_of[&c.key.split(':').next().unwrap().parse::<u64>().unwrap()]).collect();
        for c in w.truth.iter().filter(|c| c.kind == EntityKind::FinalMark && c.key.ends_with(&format!(":{}", p.id))) {
            let class = class_of[&c.key.split(':').next().unwrap().parse::<u64>().unwrap()];
            assert_eq!(c.injection == tag, cases.contains(&class), "{c:?}");
        }
        assert!(cases.len() >= MONITOR_FINAL_DAYS.len(), "{}: {} classes", p.name, cases.len());
    }
    // the rate is the share of classes: none at 0, and none in a world not made for monitoring
    let mut none = config;
    none.rates.monitor_final_marks = 0.0;
    let w0 = World::generate(none);
    assert!(!w0.truth.iter().any(|c| c.injection == tag));
    assert!(!small().truth.iter().any(|c| c.injection == tag));
}
