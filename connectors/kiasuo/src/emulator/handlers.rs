//! The diary API's answers, built from the world under its read lock (API.md).

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{NaiveDate, Weekday};
use ejgate_sdk::synth::{School, SchoolLookup, SynthAttendanceStatus, SynthLesson, FIRST_ID};
use serde_json::{json, Value};

use super::{json_ok, msg, EmulatorState};
use crate::truth::{ChildView, Visibility};

pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/user", get(user))
        .route("/study_periods", get(study_periods))
        .route("/school_classes", get(school_classes))
        .route("/lesson_marks/{period}", get(lesson_marks))
        .route("/schedule", get(schedule))
        .route("/student_marks/{class}", get(student_marks))
}

type Params = Query<HashMap<String, String>>;

/// The operator account's id (just below the world's ids).
pub const OPERATOR_USER_ID: u64 = FIRST_ID - 100;

const DAY: &str = "%Y-%m-%d";
const STAMP: &str = "%Y-%m-%dT%H:%M:%S";

fn not_found(what: &str) -> Response {
    msg(StatusCode::NOT_FOUND, what)
}

/// The child the `id` parameter names: its school with its lookups, what it sees, its id.
fn with_child<R>(
    st: &EmulatorState,
    q: &HashMap<String, String>,
    f: impl FnOnce(&School, &SchoolLookup, &ChildView, u64) -> R,
) -> Option<R> {
    let id: u64 = q.get("id")?.trim().parse().ok()?;
    st.world().read_indexed(|w, lookup| {
        let (s, lk) = lookup.school_of(w, id)?;
        let view = ChildView::of(s, lk.enrollments_of(id).iter().map(|&i| &s.enrollments[i]))?;
        Some(f(s, lk, &view, id))
    })
}

fn attendance_value(status: SynthAttendanceStatus) -> &'static str {
    match status {
        SynthAttendanceStatus::AbsentUnexcused => "Н",
        SynthAttendanceStatus::Ill => "Б",
        SynthAttendanceStatus::AbsentExcused => "У",
        SynthAttendanceStatus::Late => "О",
    }
}

fn short_name(s: &School, id: u64) -> Option<String> {
    let p = s.teachers.iter().find(|t| t.id == id)?;
    let initial = |n: &str| n.chars().next().map(|c| format!("{c}.")).unwrap_or_default();
    Some(format!("{} {} {}", p.last_name, initial(&p.first_name), initial(&p.middle_name)).trim().to_string())
}

fn subject_name(s: &School, id: u64) -> String {
    s.subjects.iter().find(|x| x.id == id).map(|x| x.name.clone()).unwrap_or_default()
}

async fn user(State(st): State<EmulatorState>) -> Response {
    let body = st.world().read(|w| {
        let mut children = Vec::new();
        for s in &w.schools {
            let v = Visibility::of(s);
            for p in &s.students {
                let Some(&class) = v.class_of.get(&p.id) else { continue };
                let class_name = s.classes.iter().find(|c| c.id == class).map(|c| c.name.clone()).unwrap_or_default();
                let age = w.today.years_since(p.birth_date).unwrap_or(0);
                children.push(json!({
                    "id": p.id,
                    "first_name": p.first_name,
                    "last_name": p.last_name,
                    "middle_name": p.middle_name,
                    "school_class": class_name,
                    "school_class_id": class.to_string(),
                    "age": age,
                    "username": p.user_id.map(|u| format!("u{u}")),
                }));
            }
        }
        json!({"id": OPERATOR_USER_ID, "username": "operator", "parent": true, "children": children}).to_string()
    });
    json_ok(body.into_bytes())
}

async fn study_periods(State(st): State<EmulatorState>, Query(q): Params) -> Response {
    let body = with_child(&st, &q, |s, _, _, _| {
        let list: Vec<Value> = s
                .periods
                .iter()
                .map(|p| json!({"id": p.id, "text": p.name, "from": p.start.format(DAY).to_string(), "to": p.end.format(DAY).to_string()}))
                .collect();
        Value::Array(list).to_string()
    });
    match body {
        Some(b) => json_ok(b.into_bytes()),
        None => not_found("Ученик не найден"),
    }
}

async fn school_classes(State(st): State<EmulatorState>, Query(q): Params) -> Response {
    let body = with_child(&st, &q, |s, _, _, _| {
        let list: Vec<Value> = s
            .classes
            .iter()
            .map(|c| json!({"id": c.id.to_string(), "name": c.name, "ou": s.name, "study_year": s.year.name}))
            .collect();
        Value::Array(list).to_string()
    });
    match body {
        Some(b) => json_ok(b.into_bytes()),
        None => not_found("Ученик не найден"),
    }
}

/// The lessons a child sees dated `from..=to`, by date and lesson number.
fn visible_lessons<'a>(
    s: &'a School,
    lk: &SchoolLookup,
    view: &ChildView,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<&'a SynthLesson> {
    let mut lessons: Vec<&SynthLesson> =
        view.units.iter().flat_map(|&u| lk.lessons_of(u, from, to)).filter_map(|id| s.lessons.get(&id)).collect();
    lessons.sort_by_key(|l| (l.date, l.number, l.id));
    lessons
}

async fn lesson_marks(State(st): State<EmulatorState>, Path(period): Path<String>, Query(q): Params) -> Response {
    let legacy = st.inner.legacy_marks;
    let body = with_child(&st, &q, |s, lk, view, child| {
        let period: u64 = period.trim().parse().ok()?;
        let p = s.periods.iter().find(|x| x.id == period)?;
        let lessons = visible_lessons(s, lk, view, p.start, p.end);
        let mut marks: HashMap<u64, Vec<&ejgate_sdk::synth::SynthMark>> = HashMap::new();
        for m in lk.marks_of(child).iter().filter_map(|id| s.marks.get(id)) {
            marks.entry(m.lesson).or_default().push(m);
        }
        let mut by_subject: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
        for l in lessons {
            let slots = by_subject.entry(l.subject).or_default();
            let date = l.date.format(DAY).to_string();
            for m in marks.get(&l.id).map(Vec::as_slice).unwrap_or_default() {
                let work = s.works.get(&m.work);
                let weight = work.and_then(|w| s.work_types.iter().find(|t| t.id == w.work_type)).map(|t| t.weight);
                let text = work.map(|w| w.text.clone()).unwrap_or_default();
                let updated = m.entered_at.format(STAMP).to_string();
                slots.push(if legacy {
                        json!({"id": m.id, "lesson_event_id": l.id, "lesson_date": date, "mark": m.value, "weight": weight, "remark": text, "updated_at": updated})
                    } else {
                        json!({"id": m.id, "lesson_event_id": l.id, "lesson_date": date, "mark": {"value": m.value}, "text": text, "weight": weight, "updated_at": updated})
                    });
            }
            if let Some(a) = s.attendance.get(&(l.id, child)) {
                let value = attendance_value(a.status);
                let updated = a.entered_at.format(STAMP).to_string();
                slots.push(if legacy {
                        json!({"lesson_event_id": l.id, "lesson_date": date, "mark": value, "weight": null, "remark": a.comment, "updated_at": updated})
                    } else {
                        json!({"lesson_event_id": l.id, "lesson_date": date, "mark": {"value": value}, "text": a.comment, "updated_at": updated})
                    });
            }
        }
        let lessons: Vec<Value> = by_subject
            .into_iter()
            .map(|(subject, slots)| {
                let averages = json!({"for_student": null, "for_class": null, "predicted": null});
                if legacy {
                    json!({"id": subject, "subject": subject_name(s, subject), "marks": slots, "averages": averages})
                } else {
                    json!({"id": subject, "subject": subject_name(s, subject), "slots": slots, "averages": averages})
                }
            })
            .collect();
        Some(json!({ "lessons": lessons }).to_string())
    });
    match body {
        Some(Some(b)) => json_ok(b.into_bytes()),
        Some(None) => not_found("Период не найден"),
        None => not_found("Ученик не найден"),
    }
}

async fn schedule(State(st): State<EmulatorState>, Query(q): Params) -> Response {
    let year: Option<i32> = q.get("year").and_then(|y| y.trim().parse().ok());
    let week: Option<u32> = q.get("week").and_then(|y| y.trim().parse().ok());
    let Some(monday) = year.zip(week).and_then(|(y, w)| NaiveDate::from_isoywd_opt(y, w, Weekday::Mon)) else {
        return msg(StatusCode::BAD_REQUEST, "year and week are required");
    };
    let sunday = monday + chrono::Days::new(6);
    let body = with_child(&st, &q, |s, lk, view, _| {
        let lessons = visible_lessons(s, lk, view, monday, sunday);
        // A lesson's homework: the last one given (highest id), as before the lookups.
        let homework_of =
            |lesson: u64| lk.works_of(lesson).iter().rev().filter_map(|id| s.works.get(id)).find(|x| x.is_homework);
        let bell = |n: u8| {
            s.bells
                .iter()
                .find(|b| b.0 == n)
                .map(|b| (b.1.format("%H:%M").to_string(), b.2.format("%H:%M").to_string()))
        };
        let mut events = Vec::new();
        let mut homeworks = Vec::new();
        for l in &lessons {
            let (from, to) = bell(l.number).unzip();
            let teacher = short_name(s, l.substitute.unwrap_or(l.teacher));
            let mut e = json!({
                "lesson_event_id": l.id,
                "subject": subject_name(s, l.subject),
                "teacher": teacher,
                "lesson_date": l.date.format(DAY).to_string(),
                "lesson_number": l.number,
                "from": from,
                "to": to,
                "theme": l.topic,
                "homework_to_check_ids": [],
                "slots": [],
                "color": "#8fbc8f",
            });
            if l.cancelled {
                e["cancelled"] = json!(true);
            }
            if let Some(h) = homework_of(l.id) {
                e["created_homework_id"] = json!(h.id);
                homeworks.push(json!({
                    "id": h.id,
                    "lesson_date": l.date.format(DAY).to_string(),
                    "check_at": h.target_date.format(DAY).to_string(),
                    "text": h.text,
                    "files": [],
                    "links": [],
                }));
            }
            events.push(e);
        }
        json!({"schedule": events, "homeworks": homeworks}).to_string()
    });
    match body {
        Some(b) => json_ok(b.into_bytes()),
        None => not_found("Ученик не найден"),
    }
}

async fn student_marks(State(st): State<EmulatorState>, Path(class): Path<String>, Query(q): Params) -> Response {
    let body = with_child(&st, &q, |s, _, view, child| {
        if class.trim() != view.class.to_string() {
            return None;
        }
        let mut by_subject: BTreeMap<u64, serde_json::Map<String, Value>> = BTreeMap::new();
        for ((student, subject, period), f) in s.final_marks.range((child, 0, None)..) {
            if *student != child {
                break;
            }
            let key = period.map(|p| p.to_string()).unwrap_or_else(|| "year".into());
            let value = f.value.parse::<u32>().map(Value::from).unwrap_or_else(|_| Value::from(f.value.clone()));
            by_subject.entry(*subject).or_default().insert(key, value);
        }
        let lessons: Vec<Value> = by_subject
            .into_iter()
            .map(|(subject, marks)| json!({"id": subject, "subject": subject_name(s, subject), "marks": marks}))
            .collect();
        let mut types: Vec<Value> = s.periods.iter().map(|p| json!({"id": p.id.to_string(), "name": p.name})).collect();
        types.push(json!({"id": "year", "name": "Год"}));
        Some(json!({"lessons": lessons, "standard_mark_type": types}).to_string())
    });
    match body {
        Some(Some(b)) => json_ok(b.into_bytes()),
        Some(None) => not_found("Класс не найден"),
        None => not_found("Ученик не найден"),
    }
}
