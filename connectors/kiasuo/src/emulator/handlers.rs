//! The diary API's answers, built from the world under its read lock (API.md).

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};
use ejgate_sdk::synth::{School, SchoolLookup, SynthAttendanceStatus, SynthLesson, FIRST_ID};
use serde::Serialize;
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

/// `2025-09-01`: what `DAY` gives, without parsing the format for every value.
fn day(d: NaiveDate) -> String {
    d.to_string()
}

/// `2025-09-01T10:33:58`: what `%Y-%m-%dT%H:%M:%S` gives (whole seconds), likewise.
fn stamp(t: NaiveDateTime) -> String {
    format!("{}T{:02}:{:02}:{:02}", t.date(), t.hour(), t.minute(), t.second())
}

/// A slot of `lesson_marks`: a mark, or an attendance written as a mark value. Fields in
/// alphabetical order, as the `json!` objects this replaced wrote them.
#[derive(Serialize)]
#[serde(untagged)]
enum Slot<'a> {
    /// The current form: `mark: {value}`, `text`.
    Current {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        lesson_date: &'a str,
        lesson_event_id: u64,
        mark: MarkValue<'a>,
        text: Option<&'a str>,
        updated_at: String,
        /// Absent on an attendance.
        #[serde(skip_serializing_if = "Option::is_none")]
        weight: Option<Option<u8>>,
    },
    /// The older form: `mark` as a bare value, `remark`.
    Legacy {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        lesson_date: &'a str,
        lesson_event_id: u64,
        mark: &'a str,
        remark: Option<&'a str>,
        updated_at: String,
        weight: Option<u8>,
    },
}

#[derive(Serialize)]
struct MarkValue<'a> {
    value: &'a str,
}

#[derive(Serialize)]
struct Averages {
    for_class: Option<f64>,
    for_student: Option<f64>,
    predicted: Option<f64>,
}

/// A subject of `lesson_marks`, with its slots under `slots` (or `marks` in the older form).
#[derive(Serialize)]
struct SubjectSlots<'a> {
    averages: Averages,
    id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    marks: Option<Vec<Slot<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slots: Option<Vec<Slot<'a>>>,
    subject: String,
}

#[derive(Serialize)]
struct LessonMarks<'a> {
    lessons: Vec<SubjectSlots<'a>>,
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
        let dates: Vec<String> = lessons.iter().map(|l| day(l.date)).collect();
        let mut by_subject: BTreeMap<u64, Vec<Slot>> = BTreeMap::new();
        for (l, date) in lessons.iter().zip(&dates) {
            let slots = by_subject.entry(l.subject).or_default();
            for m in marks.get(&l.id).map(Vec::as_slice).unwrap_or_default() {
                let work = s.works.get(&m.work);
                let weight = work.and_then(|w| s.work_types.iter().find(|t| t.id == w.work_type)).map(|t| t.weight);
                let text = work.map(|w| w.text.as_str()).unwrap_or_default();
                let (id, lesson_event_id, updated_at) = (Some(m.id), l.id, stamp(m.entered_at));
                slots.push(if legacy {
                    Slot::Legacy {
                        id,
                        lesson_date: date,
                        lesson_event_id,
                        mark: &m.value,
                        remark: Some(text),
                        updated_at,
                        weight,
                    }
                } else {
                    let mark = MarkValue { value: &m.value };
                    Slot::Current {
                        id,
                        lesson_date: date,
                        lesson_event_id,
                        mark,
                        text: Some(text),
                        updated_at,
                        weight: Some(weight),
                    }
                });
            }
            if let Some(a) = s.attendance.get(&(l.id, child)) {
                let value = attendance_value(a.status);
                let (comment, updated_at) = (a.comment.as_deref(), stamp(a.entered_at));
                slots.push(if legacy {
                    Slot::Legacy {
                        id: None,
                        lesson_date: date,
                        lesson_event_id: l.id,
                        mark: value,
                        remark: comment,
                        updated_at,
                        weight: None,
                    }
                } else {
                    let mark = MarkValue { value };
                    Slot::Current {
                        id: None,
                        lesson_date: date,
                        lesson_event_id: l.id,
                        mark,
                        text: comment,
                        updated_at,
                        weight: None,
                    }
                });
            }
        }
        let lessons: Vec<SubjectSlots> = by_subject
            .into_iter()
            .map(|(subject, slots)| {
                let averages = Averages { for_class: None, for_student: None, predicted: None };
                let (marks, slots) = if legacy { (Some(slots), None) } else { (None, Some(slots)) };
                SubjectSlots { averages, id: subject, marks, slots, subject: subject_name(s, subject) }
            })
            .collect();
        Some(serde_json::to_vec(&LessonMarks { lessons }).expect("answers serialize"))
    });
    match body {
        Some(Some(b)) => json_ok(b),
        Some(None) => not_found("Период не найден"),
        None => not_found("Ученик не найден"),
    }
}

/// A lesson of `schedule`. Fields in alphabetical order, as the `json!` objects this
/// replaced wrote them.
#[derive(Serialize)]
struct ScheduleEvent<'a> {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cancelled: bool,
    color: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_homework_id: Option<u64>,
    from: Option<String>,
    homework_to_check_ids: [u64; 0],
    lesson_date: String,
    lesson_event_id: u64,
    lesson_number: u8,
    slots: [u64; 0],
    subject: String,
    teacher: Option<String>,
    theme: &'a Option<String>,
    to: Option<String>,
}

/// A homework of `schedule`.
#[derive(Serialize)]
struct ScheduleHomework<'a> {
    check_at: String,
    files: [u64; 0],
    id: u64,
    lesson_date: String,
    links: [u64; 0],
    text: &'a str,
}

#[derive(Serialize)]
struct Schedule<'a> {
    homeworks: Vec<ScheduleHomework<'a>>,
    schedule: Vec<ScheduleEvent<'a>>,
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
        let hour_minute = |t: NaiveTime| format!("{:02}:{:02}", t.hour(), t.minute());
        let bell = |n: u8| s.bells.iter().find(|b| b.0 == n).map(|b| (hour_minute(b.1), hour_minute(b.2)));
        let mut events = Vec::with_capacity(lessons.len());
        let mut homeworks = Vec::new();
        for l in &lessons {
            let (from, to) = bell(l.number).unzip();
            let homework = homework_of(l.id);
            if let Some(h) = homework {
                homeworks.push(ScheduleHomework {
                    check_at: day(h.target_date),
                    files: [],
                    id: h.id,
                    lesson_date: day(l.date),
                    links: [],
                    text: &h.text,
                });
            }
            events.push(ScheduleEvent {
                cancelled: l.cancelled,
                color: "#8fbc8f",
                created_homework_id: homework.map(|h| h.id),
                from,
                homework_to_check_ids: [],
                lesson_date: day(l.date),
                lesson_event_id: l.id,
                lesson_number: l.number,
                slots: [],
                subject: subject_name(s, l.subject),
                teacher: short_name(s, l.substitute.unwrap_or(l.teacher)),
                theme: &l.topic,
                to,
            });
        }
        serde_json::to_vec(&Schedule { homeworks, schedule: events }).expect("answers serialize")
    });
    match body {
        Some(b) => json_ok(b),
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
