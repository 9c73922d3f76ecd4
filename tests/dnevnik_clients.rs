//! A published Dnevnik.ru client against our emulator: `pydnevnikruapi` (PyPI, pinned in
//! `.ci/requirements.txt`, its code unchanged) reads the synthetic school through its own
//! read calls with a staff, a parent and a pupil token, and what it got is checked against
//! the world — names, marks, lessons, attendance — not against the emulator's code.
//!
//! (`dnevnikru`, the other package on PyPI, scrapes the web pages of schools.dnevnik.ru
//! with a login and password; it does not speak the v2 REST API, so it has no place here.)

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use chrono::NaiveDate;
use ejgate_dnevnik::emulator::{self, Account, EmulatorOptions};
use ejgate_sdk::synth::{SynthConfig, World};
use serde_json::{json, Value};

const STAFF: &str = "staff-token-8c1d";
const PARENT: &str = "parent-token-52e0";
const PUPIL: &str = "pupil-token-9a47";

/// Runs the client script over `calls` with `token`; returns call name → what it read.
async fn run_client(base: &str, token: &str, calls: Value) -> BTreeMap<String, Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/dnevnik_pydnevnikruapi.py");
    let plan = json!({"base": base, "token": token, "calls": calls}).to_string();
    let out = tokio::task::spawn_blocking(move || std::process::Command::new("python3").arg(script).arg(plan).output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("python3 is needed to run the published client: {e}"));
    assert!(
        out.status.success(),
        "the client script failed (pip install -r .ci/requirements.txt installs pydnevnikruapi): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    results
        .into_iter()
        .map(|(name, r)| match r.get("ok") {
            Some(v) => (name, v.clone()),
            None => panic!("the client's call {name} failed: {}", r["error"]),
        })
        .collect()
}

fn ids(v: &Value, key: &str) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| match &x[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn num(v: &Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not an id: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pydnevnikruapi_reads_the_synthetic_school() {
    let world = World::generate(SynthConfig::small(1));
    let s = &world.schools[0];
    let from = s.year.start;
    // Five weeks of the year (the small world is simulated up to its today).
    let to = (from + chrono::Days::new(34)).min(world.today);
    let in_range = |d: NaiveDate| from <= d && d <= to;
    // A class with marks (first-graders get none).
    let class = s
        .classes
        .iter()
        .max_by_key(|c| {
            s.marks.values().filter(|m| s.lessons[&m.lesson].unit == c.id && in_range(m.entered_at.date())).count()
        })
        .unwrap();
    // A pupil of the class with marks in the range, their lesson with most to show, a parent.
    let members: Vec<u64> =
        s.enrollments.iter().filter(|e| e.unit == class.id && e.active).map(|e| e.student).collect();
    let class_lessons: Vec<u64> =
        s.lessons.values().filter(|l| l.unit == class.id && in_range(l.date)).map(|l| l.id).collect();
    let marked = |l: u64| s.marks.values().filter(|m| m.lesson == l).count();
    let lesson =
        *class_lessons.iter().max_by_key(|l| (marked(**l), s.attendance.keys().any(|(x, _)| x == *l))).unwrap();
    let student = s.marks.values().find(|m| m.lesson == lesson && members.contains(&m.student)).unwrap().student;
    let guardian = s.guardianships.iter().find(|(_, c)| *c == student).unwrap().0;
    let children: BTreeSet<String> =
        s.guardianships.iter().filter(|(g, _)| *g == guardian).map(|(_, c)| c.to_string()).collect();
    let other_lesson = *class_lessons.iter().find(|l| **l != lesson).unwrap();

    let options = EmulatorOptions::new(STAFF)
        .with_account(PARENT, Account::Parent(guardian))
        .with_account(PUPIL, Account::Pupil(student));
    let emu = emulator::start(world.clone(), options, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let base = emu.base_url();
    let (f, t) = (from.to_string(), to.to_string());
    let subject = s.lessons[&lesson].subject;

    let got = run_client(
        &base,
        STAFF,
        json!([
            ["context", "get_context"],
            ["me", "get_info"],
            ["person_schools", "get_school"],
            ["school", "get_school_profile", s.id],
            ["class_pupils", "get_groups_pupils", class.id],
            ["group", "get_group_info", class.id],
            ["person", "get_person_info", student],
            ["person_groups", "get_person_groups", student],
            ["lessons", "get_group_lessons_info", class.id, f, t],
            ["group_marks", "get_group_marks_period", class.id, f, t],
            ["person_marks", "get_person_marks", student, s.id, f, t],
            ["lesson", "get_lesson_info", lesson],
            ["lessons_many", "get_many_lessons_info", [lesson, other_lesson]],
            ["works", "get_lesson_works", lesson],
            ["lesson_marks", "get_marks_by_lesson", lesson],
            ["lesson_log", "get_lesson_log", lesson],
            ["person_log", "get_person_lesson_logs", student, f, t],
            ["group_log", "get_group_lesson_log", class.id, subject, f, t],
            ["statuses", "get_lesson_log_statuses"],
            ["subjects", "get_school_subjects", s.id],
            ["teachers", "get_school_teachers", s.id],
            ["work_types", "get_work_types", s.id],
            ["periods", "get_group_reports", class.id],
            ["final_marks", "get_group_marks", class.id],
        ]),
    )
    .await;

    let world_names = |p: &ejgate_sdk::synth::SynthPerson| (p.last_name.clone(), p.first_name.clone());
    assert_eq!(got["context"]["schools"][0]["name"], s.name);
    assert_eq!(got["person_schools"][0]["name"], s.name);
    assert_eq!(got["school"]["fullName"], s.full_name);
    let pupils: BTreeSet<(String, String)> = got["class_pupils"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["lastName"].as_str().unwrap().into(), p["firstName"].as_str().unwrap().into()))
        .collect();
    let expected: BTreeSet<(String, String)> =
        s.students.iter().filter(|p| members.contains(&p.id)).map(world_names).collect();
    assert_eq!(pupils, expected);
    assert_eq!(got["group"]["name"], class.name);
    let me = s.students.iter().find(|p| p.id == student).unwrap();
    assert_eq!(
        (got["person"]["lastName"].as_str(), got["person"]["middleName"].as_str()),
        (Some(&*me.last_name), Some(&*me.middle_name))
    );
    let units: BTreeSet<String> =
        s.enrollments.iter().filter(|e| e.student == student && e.active).map(|e| e.unit.to_string()).collect();
    assert_eq!(ids(&got["person_groups"], "id"), units);

    // Lessons: ids and topics.
    let titles: BTreeMap<String, Value> =
        got["lessons"].as_array().unwrap().iter().map(|l| (num(&l["id"]).to_string(), l["title"].clone())).collect();
    let expected: BTreeMap<String, Value> = class_lessons
        .iter()
        .map(|l| (l.to_string(), s.lessons[l].topic.clone().map(Value::from).unwrap_or(Value::Null)))
        .collect();
    assert_eq!(titles, expected);

    // Marks: who got which value, by the day entered.
    let values = |v: &Value| -> BTreeMap<String, (u64, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| (num(&m["id"]).to_string(), (num(&m["person"]), m["value"].as_str().unwrap().to_owned())))
            .collect()
    };
    let world_values = |keep: &dyn Fn(&ejgate_sdk::synth::SynthMark) -> bool| -> BTreeMap<String, (u64, String)> {
        s.marks.values().filter(|m| keep(m)).map(|m| (m.id.to_string(), (m.student, m.value.clone()))).collect()
    };
    let group_marks = world_values(&|m| s.lessons[&m.lesson].unit == class.id && in_range(m.entered_at.date()));
    assert!(!group_marks.is_empty());
    assert_eq!(values(&got["group_marks"]), group_marks);
    assert_eq!(values(&got["person_marks"]), world_values(&|m| m.student == student && in_range(m.entered_at.date())));
    assert_eq!(values(&got["lesson_marks"]), world_values(&|m| m.lesson == lesson));

    // One lesson, several, its works.
    let l = &s.lessons[&lesson];
    assert_eq!(got["lesson"]["title"], l.topic.clone().map(Value::from).unwrap_or(Value::Null));
    let subject_name = &s.subjects.iter().find(|x| x.id == l.subject).unwrap().name;
    assert_eq!(got["lesson"]["subject"]["name"], *subject_name);
    assert_eq!(ids(&got["lessons_many"], "id"), BTreeSet::from([lesson.to_string(), other_lesson.to_string()]));
    let works: BTreeMap<String, String> = got["works"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (num(&w["id"]).to_string(), w["text"].as_str().unwrap().to_owned()))
        .collect();
    let expected: BTreeMap<String, String> =
        s.works.values().filter(|w| w.lesson == lesson).map(|w| (w.id.to_string(), w.text.clone())).collect();
    assert_eq!(works, expected);

    // Attendance: of the lesson, of the pupil, of the class in a subject.
    let persons = |v: &Value| -> BTreeSet<String> {
        v.as_array().unwrap().iter().map(|e| num(&e["person"]).to_string()).collect()
    };
    let expected: BTreeSet<String> =
        s.attendance.keys().filter(|(x, _)| *x == lesson).map(|(_, p)| p.to_string()).collect();
    assert_eq!(persons(&got["lesson_log"]), expected);
    let lessons_of = |v: &Value| -> BTreeSet<String> {
        v.as_array().unwrap().iter().map(|e| num(&e["lesson"]).to_string()).collect()
    };
    let expected: BTreeSet<String> = s
        .attendance
        .keys()
        .filter(|(x, p)| *p == student && in_range(s.lessons[x].date))
        .map(|(x, _)| x.to_string())
        .collect();
    assert_eq!(lessons_of(&got["person_log"]["logEntries"]), expected);
    let expected: BTreeSet<String> = s
        .attendance
        .keys()
        .filter(|(x, _)| {
            s.lessons[x].unit == class.id && s.lessons[x].subject == subject && in_range(s.lessons[x].date)
        })
        .map(|(x, _)| x.to_string())
        .collect();
    assert_eq!(lessons_of(&got["group_log"]), expected);
    // SOURCES.md: the swagger's example of the statuses.
    assert_eq!(got["statuses"], json!(["Attend", "Absent", "Ill", "Late", "Pass"]));

    // Reference lists.
    let names = |v: &Value, key: &str| -> BTreeSet<String> {
        v.as_array().unwrap().iter().map(|x| x[key].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&got["subjects"], "name"), s.subjects.iter().map(|x| x.name.clone()).collect());
    assert_eq!(names(&got["teachers"], "LastName"), s.teachers.iter().map(|x| x.last_name.clone()).collect());
    assert_eq!(names(&got["work_types"], "title"), s.work_types.iter().map(|x| x.title.clone()).collect());
    assert_eq!(names(&got["periods"], "name"), s.periods.iter().map(|x| x.name.clone()).collect());
    let finals: BTreeSet<(String, String, String)> = got["final_marks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            let person = num(&row["person"]).to_string();
            row["per-subject-final-marks"].as_array().unwrap().iter().map(move |x| {
                (person.clone(), num(&x["subject"]).to_string(), x["final-mark"]["value"].as_str().unwrap().to_owned())
            })
        })
        .collect();
    let ever: BTreeSet<u64> = s.enrollments.iter().filter(|e| e.unit == class.id).map(|e| e.student).collect();
    let expected: BTreeSet<(String, String, String)> = s
        .final_marks
        .iter()
        .filter(|((p, _, _), _)| ever.contains(p))
        .map(|((p, subj, _), m)| (p.to_string(), subj.to_string(), m.value.clone()))
        .collect();
    assert_eq!(finals, expected);

    // A parent: their children, their marks; the class list is not theirs to read.
    let got = run_client(
        &base,
        PARENT,
        json!([
            ["context", "get_context"],
            ["child_marks", "get_person_marks", student, s.id, f, t],
            ["child", "get_person_info", student],
            ["school_groups", "get_school_groups", s.id],
        ]),
    )
    .await;
    assert_eq!(ids(&got["context"]["children"], "personId"), children);
    assert_eq!(values(&got["child_marks"]), world_values(&|m| m.student == student && in_range(m.entered_at.date())));
    assert_eq!(got["child"]["firstName"], me.first_name);
    assert!(got["school_groups"].get("type").is_some(), "a parent read the school's groups: {}", got["school_groups"]);

    // A pupil: themselves.
    let got = run_client(&base, PUPIL, json!([["context", "get_context"], ["me", "get_info"]])).await;
    assert_eq!(got["context"]["personId"].as_u64(), Some(student));
    assert_eq!(got["context"]["roles"], json!(["EduStudent"]));
    assert_eq!(got["me"]["lastName"], me.last_name);
    emu.shutdown().await;
}
