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

use super::{json_ok, msg, Account, EmulatorState};
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

/// Ids of `standard_mark_type`: the periods' types from this one on, in period order.
const FIRST_MARK_TYPE: u64 = 101;
/// The year mark's type.
const YEAR_MARK_TYPE: u64 = 131;
/// An examination mark's type (listed; the synthetic school gives no such marks).
const EXAM_MARK_TYPE: u64 = 132;

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
    // ASSUMPTION (API.md): a child the account does not hold is unknown to it.
    if !st.inner.account.reads(id) {
        return None;
    }
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
    let account = st.inner.account.clone();
    let assumed = st.inner.assumed_fields;
    let body = st.world().read(|w| {
        let mut children = Vec::new();
        let mut own = None;
        for s in &w.schools {
            let v = Visibility::of(s);
            for p in &s.students {
                let Some(&class) = v.class_of.get(&p.id) else { continue };
                if !account.reads(p.id) {
                    continue;
                }
                let class_name = s.classes.iter().find(|c| c.id == class).map(|c| c.name.clone()).unwrap_or_default();
                let age = w.today.years_since(p.birth_date).unwrap_or(0);
                let mut child = json!({
                    "id": p.id,
                    "first_name": p.first_name,
                    "last_name": p.last_name,
                    "middle_name": p.middle_name,
                    "school_class": class_name,
                    "age": age,
                    "username": p.user_id.map(|u| format!("u{u}")),
                });
                if assumed {
                    child["school_class_id"] = json!(class.to_string());
                }
                if account == Account::Pupil(p.id) {
                    own = Some(child);
                } else {
                    children.push(child);
                }
            }
        }
        match (&account, own) {
            // ASSUMPTION (API.md): a pupil's account is the pupil, named at the top level.
            (Account::Pupil(_), Some(mut me)) => {
                me["parent"] = json!(false);
                me["children"] = json!([]);
                me.to_string()
            }
            (Account::Pupil(id), None) => {
                json!({"id": id, "username": format!("u{id}"), "parent": false, "children": []}).to_string()
            }
            _ => json!({"id": OPERATOR_USER_ID, "username": "operator", "parent": true, "children": children})
                .to_string(),
        }
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

/// A slot: a mark, or an attendance written as a mark value, in `lesson_marks` and in the
/// schedule's lessons. Fields in alphabetical order.
#[derive(Serialize)]
struct Slot<'a> {
    /// ASSUMPTION (API.md): the mark's id (no public client shows one).
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    lesson_date: &'a str,
    /// ASSUMPTION (API.md): the lesson (no public client shows it on a slot).
    #[serde(skip_serializing_if = "Option::is_none")]
    lesson_event_id: Option<u64>,
    mark: MarkValue<'a>,
    /// The older form's comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    remark: Option<Option<&'a str>>,
    /// The current form's comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<Option<&'a str>>,
    updated_at: String,
    /// A decimal, which Rails writes as a string (`"1.0"`); absent on an attendance in the
    /// current form, `null` in the older one.
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<Option<String>>,
}

/// `{"value": "5"}` (current form) or `"5"` (older form).
#[derive(Serialize)]
#[serde(untagged)]
enum MarkValue<'a> {
    Object { value: &'a str },
    Bare(&'a str),
}

/// Averages are `[text, rounded]` pairs like `["4.57", 5]`, or `null`.
#[derive(Serialize)]
struct Averages {
    for_class: Option<(String, u32)>,
    for_student: Option<(String, u32)>,
    predicted: Option<(String, u32)>,
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

/// How slots are written.
#[derive(Clone, Copy)]
struct SlotForm {
    legacy: bool,
    /// Serve the assumed `id` and `lesson_event_id`.
    assumed: bool,
    /// Name the lesson on the slot (not inside the schedule's own lessons).
    with_lesson: bool,
}

/// The marks of `child`, by lesson.
fn marks_by_lesson<'a>(
    s: &'a School,
    lk: &SchoolLookup,
    child: u64,
) -> HashMap<u64, Vec<&'a ejgate_sdk::synth::SynthMark>> {
    let mut marks: HashMap<u64, Vec<&ejgate_sdk::synth::SynthMark>> = HashMap::new();
    for m in lk.marks_of(child).iter().filter_map(|id| s.marks.get(id)) {
        marks.entry(m.lesson).or_default().push(m);
    }
    marks
}

/// The slots of `child` on lesson `l`: its marks, then its attendance.
fn slots_of<'a>(
    s: &'a School,
    l: &SynthLesson,
    child: u64,
    marks: &[&'a ejgate_sdk::synth::SynthMark],
    date: &'a str,
    form: SlotForm,
) -> Vec<Slot<'a>> {
    let comment = |text: Option<&'a str>| if form.legacy { (Some(text), None) } else { (None, Some(text)) };
    let lesson_event_id = (form.assumed && form.with_lesson).then_some(l.id);
    let mut slots = Vec::with_capacity(marks.len() + 1);
    for m in marks {
        let work = s.works.get(&m.work);
        let weight = work
            .and_then(|w| s.work_types.iter().find(|t| t.id == w.work_type))
            .map(|t| format!("{:.1}", t.weight as f64));
        let text = work.map(|w| w.text.as_str()).unwrap_or_default();
        let (remark, text) = comment(Some(text));
        slots.push(Slot {
            id: form.assumed.then_some(m.id),
            lesson_date: date,
            lesson_event_id,
            mark: if form.legacy { MarkValue::Bare(&m.value) } else { MarkValue::Object { value: &m.value } },
            remark,
            text,
            updated_at: stamp(m.entered_at),
            weight: Some(weight),
        });
    }
    if let Some(a) = s.attendance.get(&(l.id, child)) {
        let value = attendance_value(a.status);
        let (remark, text) = comment(a.comment.as_deref());
        slots.push(Slot {
            id: None,
            lesson_date: date,
            lesson_event_id,
            mark: if form.legacy { MarkValue::Bare(value) } else { MarkValue::Object { value } },
            remark,
            text,
            updated_at: stamp(a.entered_at),
            weight: form.legacy.then_some(None),
        });
    }
    slots
}

/// The student's average of the numeric marks among `slots`, as the pair the API writes.
fn average(slots: &[Slot]) -> Option<(String, u32)> {
    let values: Vec<f64> = slots
        .iter()
        .filter_map(|slot| match slot.mark {
            MarkValue::Object { value } | MarkValue::Bare(value) => value.parse::<f64>().ok(),
        })
        .collect();
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    Some((format!("{mean:.2}"), mean.round() as u32))
}

async fn lesson_marks(State(st): State<EmulatorState>, Path(period): Path<String>, Query(q): Params) -> Response {
    let form = SlotForm { legacy: st.inner.legacy_marks, assumed: st.inner.assumed_fields, with_lesson: true };
    let body = with_child(&st, &q, |s, lk, view, child| {
        let period: u64 = period.trim().parse().ok()?;
        let p = s.periods.iter().find(|x| x.id == period)?;
        let lessons = visible_lessons(s, lk, view, p.start, p.end);
        let marks = marks_by_lesson(s, lk, child);
        let dates: Vec<String> = lessons.iter().map(|l| day(l.date)).collect();
        let mut by_subject: BTreeMap<u64, Vec<Slot>> = BTreeMap::new();
        for (l, date) in lessons.iter().zip(&dates) {
            let of_lesson = marks.get(&l.id).map(Vec::as_slice).unwrap_or_default();
            by_subject.entry(l.subject).or_default().extend(slots_of(s, l, child, of_lesson, date, form));
        }
        let lessons: Vec<SubjectSlots> = by_subject
            .into_iter()
            .map(|(subject, slots)| {
                let averages = Averages { for_class: None, for_student: average(&slots), predicted: None };
                let (marks, slots) = if form.legacy { (Some(slots), None) } else { (None, Some(slots)) };
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
    /// The older form's slots.
    #[serde(skip_serializing_if = "Option::is_none")]
    marks: Option<Vec<Slot<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slots: Option<Vec<Slot<'a>>>,
    subject: String,
    teacher: Option<String>,
    theme: &'a Option<String>,
    to: Option<String>,
}

/// A homework's file: `url` relative to the host (SOURCES.md), `title` its name.
#[derive(Serialize)]
struct HomeworkFile<'a> {
    title: &'a str,
    url: &'a str,
}

/// The path of an absolute URL (`https://host/a/b` → `/a/b`): files are served by the host.
fn relative(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    }
}

/// A homework of `schedule`.
#[derive(Serialize)]
struct ScheduleHomework<'a> {
    check_at: String,
    files: Vec<HomeworkFile<'a>>,
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
    let form = SlotForm { legacy: st.inner.legacy_marks, assumed: st.inner.assumed_fields, with_lesson: false };
    let body = with_child(&st, &q, |s, lk, view, child| {
        let lessons = visible_lessons(s, lk, view, monday, sunday);
        let marks = marks_by_lesson(s, lk, child);
        let dates: Vec<String> = lessons.iter().map(|l| day(l.date)).collect();
        // A lesson's homework: the last one given (highest id), as before the lookups.
        let homework_of =
            |lesson: u64| lk.works_of(lesson).iter().rev().filter_map(|id| s.works.get(id)).find(|x| x.is_homework);
        let hour_minute = |t: NaiveTime| format!("{:02}:{:02}", t.hour(), t.minute());
        let bell = |n: u8| s.bells.iter().find(|b| b.0 == n).map(|b| (hour_minute(b.1), hour_minute(b.2)));
        let mut events = Vec::with_capacity(lessons.len());
        let mut homeworks = Vec::new();
        for (l, date) in lessons.iter().zip(&dates) {
            let (from, to) = bell(l.number).unzip();
            let of_lesson = marks.get(&l.id).map(Vec::as_slice).unwrap_or_default();
            let slots = slots_of(s, l, child, of_lesson, date, form);
            let (marks, slots) = if form.legacy { (Some(slots), None) } else { (None, Some(slots)) };
            let homework = homework_of(l.id);
            if let Some(h) = homework {
                homeworks.push(ScheduleHomework {
                    check_at: day(h.target_date),
                    files: h
                        .attachments
                        .iter()
                        .map(|a| HomeworkFile { title: &a.name, url: relative(&a.url) })
                        .collect(),
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
                marks,
                slots,
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
        // The keys of `marks` are ids of `standard_mark_type` (SOURCES.md), not period ids:
        // which period a type is for is told by its name only.
        let type_of_period = |period: Option<u64>| match period {
            Some(p) => s.periods.iter().position(|x| x.id == p).map(|i| FIRST_MARK_TYPE + i as u64),
            None => Some(YEAR_MARK_TYPE),
        };
        let mut by_subject: BTreeMap<u64, serde_json::Map<String, Value>> = BTreeMap::new();
        for ((student, subject, period), f) in s.final_marks.range((child, 0, None)..) {
            if *student != child {
                break;
            }
            let Some(key) = type_of_period(*period) else { continue };
            // Numbers as numbers, the rest («осв», «н/а») as text.
            let value = f.value.parse::<u32>().map(Value::from).unwrap_or_else(|_| Value::from(f.value.clone()));
            by_subject.entry(*subject).or_default().insert(key.to_string(), value);
        }
        let lessons: Vec<Value> = by_subject
            .into_iter()
            .map(|(subject, marks)| {
                json!({"id": subject, "subject": subject_name(s, subject), "color": "#8fbc8f", "marks": marks})
            })
            .collect();
        let mut types: Vec<Value> = s
            .periods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let short: String = p.name.chars().take(3).collect();
                json!({"id": FIRST_MARK_TYPE + i as u64, "text": p.name, "short_text": short, "order_by": i + 1})
            })
            .collect();
        types.push(json!({"id": YEAR_MARK_TYPE, "text": "Годовая", "short_text": "Год", "order_by": 90}));
        types.push(json!({"id": EXAM_MARK_TYPE, "text": "Экзамен", "short_text": "Экз", "order_by": 91}));
        Some(json!({"lessons": lessons, "standard_mark_type": types}).to_string())
    });
    match body {
        Some(Some(b)) => json_ok(b.into_bytes()),
        Some(None) => not_found("Класс не найден"),
        None => not_found("Ученик не найден"),
    }
}
