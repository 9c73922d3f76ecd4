//! The API routes: the synthetic world written the way «Моя школа» writes it (API.md).

use std::collections::{BTreeSet, HashMap};
use std::ops::RangeInclusive;
use std::sync::Arc;

use axum::extract::{Extension, RawQuery, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use ejgate_sdk::synth::{School, SchoolLookup, SynthAttendanceStatus, SynthMark, SynthPerson, World, WorldLookup};
use ejgate_sdk::time::parse_date;
use serde_json::{json, Value};

use ejgate_sdk::emulator::mesh::{self, kind_name, query, ymd, Query};

use super::gate::json_ok;
use super::{guid_person, person_guid, profile_id, EmulatorState, FamilyAccount, Viewer};

/// The body of a refused refresh (SOURCES.md: HTTP 499, text).
const REFRESH_FAILED: &str = "Something went wrong";

pub(crate) fn routes() -> Router<EmulatorState> {
    // myschool.mosreg.ru: the platform's staff lists, and the profiles
    mesh::core_routes()
        .route("/acl/api/users/profile_info", get(profile_info))
        .route("/core/api/profiles", get(profiles))
        // authedu.mosreg.ru
        .route("/api/family/web/v1/profile", get(family_profile))
        .route("/api/eventcalendar/v1/api/events", get(events))
        .route("/api/family/web/v1/marks", get(family_marks))
        // api.myschool.mosreg.ru
        .route("/family/mobile/v1/profile", get(family_profile))
        .route("/family/mobile/v1/marks", get(family_marks))
        .route("/family/mobile/v1/subject_marks", get(subject_marks))
        .route("/family/mobile/v1/subject_marks/short", get(subject_marks))
}

/// The refresh lives outside the API gate: it takes an expired token.
pub(crate) fn refresh_routes() -> Router<EmulatorState> {
    Router::new().route("/v2/token/refresh", get(refresh))
}

fn bad(st: &EmulatorState, message: &str) -> Response {
    mesh::bad(st.inner.error_shape, message)
}

fn not_found(st: &EmulatorState, message: &str) -> Response {
    mesh::not_found(st.inner.error_shape, message)
}

fn forbidden(st: &EmulatorState) -> Response {
    mesh::forbidden(st.inner.error_shape)
}

/// `created_at`/`updated_at`: local, no zone.
fn local(dt: NaiveDateTime) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// A required date parameter (`YYYY-MM-DD`; other spellings tolerated).
fn date_param(st: &EmulatorState, q: &Query, name: &str) -> Result<NaiveDate, Response> {
    let v = q.get(name).ok_or_else(|| bad(st, &format!("Параметр {name} обязателен")))?;
    parse_date(v).ok_or_else(|| bad(st, &format!("Неверный формат даты {name}: {v}")))
}

fn range(st: &EmulatorState, q: &Query, from: &str, to: &str) -> Result<(NaiveDate, NaiveDate), Response> {
    Ok((date_param(st, q, from)?, date_param(st, q, to)?))
}

/// One page of a bare array: `page` 0 and 1 are the first; `per_page` is capped without a
/// word; past the end an empty array.
fn page(st: &EmulatorState, q: &Query, items: Vec<Value>) -> Response {
    json_ok(&Value::Array(mesh::page_of(st.inner.max_per_page, q, items).collect()))
}

fn school_ref(s: &School) -> Value {
    json!({"id": s.id, "name": s.full_name, "short_name": s.name})
}

fn profile_json(s: &School, p: &SynthPerson, kind: &str, class: Option<(u64, &str)>, memberships: Vec<Value>) -> Value {
    json!({
        "id": p.id,
        "type": kind,
        "user_id": p.user_id,
        "person_id": person_guid(p.id),
        "agree_pers_data": true,
        "user": {
            "last_name": p.last_name,
            "first_name": p.first_name,
            "middle_name": p.middle_name,
            "sex": kind_name(&p.sex),
            "birth_date": ymd(p.birth_date),
        },
        "school": school_ref(s),
        "class_unit": class.map(|(id, name)| json!({"id": id, "name": name})),
        "roles": [],
        "memberships": memberships,
    })
}

async fn profile_info(State(st): State<EmulatorState>, Extension(viewer): Extension<Viewer>) -> Response {
    let body = st.inner.world.read_indexed(|w, lookup| {
        if let Viewer::Family { account, children } = &viewer {
            let school = children.first().and_then(|c| lookup.school_of(w, *c)).map(|(s, _)| s);
            let kind = match account {
                FamilyAccount::Parent { .. } => "parent",
                FamilyAccount::Pupil { .. } => "student",
            };
            return json!([{"id": account.profile_id(), "type": kind, "school_id": school.map(|s| s.id),
                           "user_id": account.profile_id(), "roles": []}]);
        }
        // A parent profile first: the connector must pick the staff one.
        let mut list = vec![json!({"id": profile_id(0) - 50, "type": "parent", "school_id": null, "roles": []})];
        list.extend(w.schools.iter().enumerate().map(|(i, s)| {
            json!({"id": profile_id(i), "type": "school_admin", "school_id": s.id, "user_id": profile_id(i) - 1000,
                   "roles": [{"id": 7, "name": "school_admin"}], "school": school_ref(s)})
        }));
        Value::Array(list)
    });
    json_ok(&body)
}

/// `api/family/web/v1/profile` (web) and `family/mobile/v1/profile` (mobile) →
/// `{profile, children, hash}`: the account's own profile and the children it sees
/// (a pupil's account: himself, assumption). `children[].id` is the student id of the marks
/// calls, `contingent_guid` the person id of events.
async fn family_profile(State(st): State<EmulatorState>, Extension(viewer): Extension<Viewer>) -> Response {
    let body = st.inner.world.read_indexed(|w, lookup| {
        let (account, children): (Option<FamilyAccount>, &[u64]) = match &viewer {
            Viewer::Staff => (None, &[]),
            Viewer::Family { account, children } => (Some(*account), children),
        };
        let person = |id: u64| -> Option<(&School, &SynthPerson)> {
            w.schools.iter().find_map(|s| {
                s.students.iter().chain(&s.guardians).chain(&s.teachers).find(|p| p.id == id).map(|p| (s, p))
            })
        };
        let person_fields = |p: &SynthPerson| {
            json!({"last_name": p.last_name, "first_name": p.first_name, "middle_name": p.middle_name,
                   "birth_date": ymd(p.birth_date), "sex": kind_name(&p.sex), "user_id": p.user_id})
        };
        let profile = match account {
            Some(a) => {
                let mut v = person(a.profile_id()).map(|(_, p)| person_fields(p)).unwrap_or_else(|| json!({}));
                v["id"] = json!(a.profile_id());
                v["type"] = json!(match a {
                    FamilyAccount::Parent { .. } => "parent",
                    FamilyAccount::Pupil { .. } => "student",
                });
                v
            }
            None => json!({"id": profile_id(0), "type": "school_admin"}),
        };
        let list: Vec<Value> = children
            .iter()
            .filter_map(|&c| {
                let (s, lk) = lookup.school_of(w, c)?;
                let p = &s.students[*lk.students.get(&c)?];
                let active: Vec<u64> = lk
                    .enrollments_of(c)
                    .iter()
                    .map(|&i| &s.enrollments[i])
                    .filter(|e| e.active)
                    .map(|e| e.unit)
                    .collect();
                let class = s.classes.iter().find(|x| active.contains(&x.id));
                let since = lk.enrollments_of(c).iter().map(|&i| s.enrollments[i].from).min();
                let groups: Vec<Value> = s
                    .groups
                    .iter()
                    .filter(|g| active.contains(&g.id))
                    .map(|g| json!({"id": g.id, "name": g.name, "subject_id": g.subject_id, "is_fake": false}))
                    .collect();
                let mut v = person_fields(p);
                v["id"] = json!(p.id);
                v["type"] = json!("student");
                v["contingent_guid"] = json!(person_guid(p.id));
                v["class_name"] = json!(class.map(|x| x.name.as_str()));
                v["class_unit_id"] = json!(class.map(|x| x.id));
                v["class_level_id"] = json!(class.map(|x| x.grade));
                v["school"] = school_ref(s);
                v["groups"] = Value::Array(groups);
                v["representatives"] = json!([]);
                v["sections"] = json!([]);
                v["enrollment_date"] = json!(since.map(ymd));
                Some(v)
            })
            .collect();
        json!({"profile": profile, "children": list, "hash": format!("{:016x}", lookup.generation)})
    });
    json_ok(&body)
}

/// The pupil's memberships and current class.
fn memberships<'a>(s: &'a School, lk: &SchoolLookup, student: u64) -> (Vec<Value>, Option<(u64, &'a str)>) {
    let mut list = Vec::new();
    let mut current = None;
    for e in lk.enrollments_of(student).iter().map(|&i| &s.enrollments[i]) {
        let class = s.classes.iter().find(|c| c.id == e.unit);
        if let (true, Some(c)) = (e.active, class) {
            current = Some((c.id, c.name.as_str()));
        }
        list.push(json!({
            "unit_id": e.unit,
            "unit_type": if class.is_some() { "class_unit" } else { "group" },
            "active": e.active,
            "begin_date": ymd(e.from),
            "end_date": e.to.map(ymd),
        }));
    }
    (list, current)
}

/// `core/api/profiles?class_unit_id&types=student` (public) or `?school_id&types=…` (staff,
/// assumption): a bare array, paged.
async fn profiles(State(st): State<EmulatorState>, Extension(viewer): Extension<Viewer>, raw: RawQuery) -> Response {
    let q = query(&raw);
    if let Viewer::Family { children, .. } = &viewer {
        // A family reads the members of its children's classes (the public call), no more.
        let Some(class) = q.get("class_unit_id").and_then(|c| c.parse::<u64>().ok()) else { return forbidden(&st) };
        let theirs = st.inner.world.read_indexed(|w, lookup| {
            children.iter().any(|c| {
                lookup
                    .school_of(w, *c)
                    .is_some_and(|(s, lk)| lk.enrollments_of(*c).iter().any(|&i| s.enrollments[i].unit == class))
            })
        });
        if !theirs || q.contains_key("school_id") {
            return forbidden(&st);
        }
    }
    let types: BTreeSet<String> =
        q.get("types").map(|t| t.split(',').map(|x| x.trim().to_string()).collect()).unwrap_or_default();
    let class: Option<u64> = q.get("class_unit_id").and_then(|c| c.parse().ok());
    let school: Option<u64> = q.get("school_id").and_then(|c| c.parse().ok());
    if class.is_none() && school.is_none() {
        return bad(&st, "Параметр class_unit_id или school_id обязателен");
    }
    let items = st.inner.world.read_indexed(|w, lookup| {
        let mut out = Vec::new();
        for (s, lk) in w.schools.iter().zip(&lookup.schools) {
            let in_school = school.is_none_or(|id| id == s.id);
            let has_class = class.is_none_or(|c| s.classes.iter().any(|x| x.id == c));
            if !in_school || !has_class {
                continue;
            }
            if types.is_empty() || types.contains("student") {
                for p in &s.students {
                    let member =
                        class.is_none_or(|c| lk.enrollments_of(p.id).iter().any(|&i| s.enrollments[i].unit == c));
                    if member {
                        let (list, current) = memberships(s, lk, p.id);
                        out.push(profile_json(s, p, "student", current, list));
                    }
                }
            }
            if class.is_none() && (types.is_empty() || types.contains("teacher")) {
                for p in &s.teachers {
                    out.push(profile_json(s, p, "teacher", None, Vec::new()));
                }
            }
        }
        out
    });
    page(&st, &q, items)
}

fn absence_reason(s: SynthAttendanceStatus) -> (u8, bool) {
    match s {
        SynthAttendanceStatus::Ill => (1, true),
        SynthAttendanceStatus::AbsentExcused => (2, true),
        SynthAttendanceStatus::AbsentUnexcused => (3, true),
        SynthAttendanceStatus::Late => (4, false),
    }
}

/// The numeric reading of a five-point value for the `grade` object.
fn five(value: &str) -> Option<f64> {
    let d = value.chars().next()?.to_digit(10)? as f64;
    Some(if value.ends_with('+') {
        d + 0.25
    } else if value.ends_with('-') {
        d - 0.25
    } else {
        d
    })
}

fn grade_values(value: &str) -> [GradeValue<'_>; 1] {
    let five = five(value);
    [GradeValue {
        name: value,
        grade_system_id: 1,
        grade_system_type: "five",
        nmax: 5,
        grade: Grade { origin: value, five, hundred: five.map(|x| x * 20.0) },
    }]
}

/// `values[]` of a mark. Written through derived `Serialize` rather than `json!`: the
/// per-pupil answers are the emulator's hot path.
#[derive(serde::Serialize)]
struct GradeValue<'a> {
    name: &'a str,
    grade_system_id: u32,
    grade_system_type: &'a str,
    nmax: u32,
    grade: Grade<'a>,
}

#[derive(serde::Serialize)]
struct Grade<'a> {
    origin: &'a str,
    five: Option<f64>,
    hundred: Option<f64>,
}

/// A mark inside an event (`marks[]`).
#[derive(serde::Serialize)]
struct EventMarkOut<'a> {
    id: u64,
    value: &'a str,
    values: [GradeValue<'a>; 1],
    weight: u8,
    comment_exists: bool,
    criteria: Option<()>,
    is_exam: bool,
    is_point: bool,
    point_date: Option<String>,
    control_form_name: Option<&'a str>,
    homework_entry_id: u64,
}

/// `{payload: …}`.
#[derive(serde::Serialize)]
struct Payload<T> {
    payload: T,
}

/// A mark of `api/family/web/v1/marks`.
#[derive(serde::Serialize)]
struct FamilyMarkOut<'a> {
    id: u64,
    value: &'a str,
    values: [GradeValue<'a>; 1],
    weight: u8,
    control_form_name: Option<&'a str>,
    comment: Option<&'a str>,
    comment_exists: bool,
    criteria: Option<()>,
    original_grade_system_type: &'a str,
    created_at: String,
    updated_at: String,
    date: String,
    subject_id: u64,
    subject_name: Option<&'a str>,
    is_exam: bool,
    is_point: bool,
    point_date: Option<String>,
}

/// What of an event is the pupil's own: attendance, then (when expanded) marks.
#[derive(serde::Serialize)]
struct PupilPart<'a> {
    absence_reason_id: Option<u8>,
    is_missed_lesson: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    marks: Option<Vec<EventMarkOut<'a>>>,
}

/// The work type (title, weight) of a mark.
fn mark_form<'a>(s: &'a School, m: &SynthMark) -> (Option<&'a str>, u8) {
    let work = s.works.get(&m.work);
    let t = work.and_then(|wk| s.work_types.iter().find(|t| t.id == wk.work_type));
    (t.map(|t| t.title.as_str()), t.map(|t| t.weight).unwrap_or(1))
}

/// The pupil's school with its lookups, by contingent GUID.
fn pupil_by_guid<'a>(w: &'a World, lookup: &'a WorldLookup, guid: &str) -> Option<(&'a School, &'a SchoolLookup, u64)> {
    let id = guid_person(guid)?;
    lookup.school_of(w, id).map(|(s, lk)| (s, lk, id))
}

/// The pupil's school with its lookups, by person id.
fn pupil_by_id<'a>(w: &'a World, lookup: &'a WorldLookup, id: &str) -> Option<(&'a School, &'a SchoolLookup, u64)> {
    let id: u64 = id.parse().ok()?;
    lookup.school_of(w, id).map(|(s, lk)| (s, lk, id))
}

/// `api/eventcalendar/v1/api/events?person_ids&begin_date&end_date&expand=…` →
/// `{total_count, response, errors}`.
async fn events(State(st): State<EmulatorState>, Extension(viewer): Extension<Viewer>, raw: RawQuery) -> Response {
    let q = query(&raw);
    let (from, to) = match range(&st, &q, "begin_date", "end_date") {
        Ok(r) => r,
        Err(e) => return e,
    };
    let Some(person_ids) = q.get("person_ids") else {
        return bad(&st, "Параметр person_ids обязателен");
    };
    let expand: BTreeSet<&str> = q.get("expand").map(|e| e.split(',').map(str::trim).collect()).unwrap_or_default();
    let body = st.inner.world.read_indexed(|w, lookup| {
        // Every event is written straight into the answer: the emulator serves hundreds of
        // thousands of event copies in a full sync, and its CPU is taken from the connector
        // it shares the machine with in tests and benchmarks.
        let mut events = EventsBody::default();
        for guid in person_ids.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            let Some((s, lk, student)) = pupil_by_guid(w, lookup, guid) else { continue };
            if !viewer.sees(student) {
                // Another family's child: nothing (assumption: the calendar shows none).
                continue;
            }
            pupil_events(&st, lookup.generation, s, lk, student, from..=to, &expand, &mut events);
        }
        let mut body = format!("{{\"total_count\":{},\"response\":[", events.count).into_bytes();
        body.reserve(events.bytes.len() + 24);
        body.extend_from_slice(&events.bytes);
        body.extend_from_slice(b"],\"errors\":null}");
        body
    });
    ([(CONTENT_TYPE, super::gate::JSON)], body).into_response()
}

/// Events as written, without what differs between pupils (attendance and marks), by
/// (lesson, with homework): every pupil of a class gets the same lesson, so it is written
/// once per state of the world (`generation`) instead of once per pupil. Each entry is a
/// JSON object without its closing brace.
#[derive(Debug, Default)]
pub(crate) struct EventCache {
    generation: u64,
    events: HashMap<(u64, bool), Arc<[u8]>>,
}

/// The events of an answer as they are written: complete JSON objects, comma-separated.
#[derive(Default)]
struct EventsBody {
    count: usize,
    bytes: Vec<u8>,
}

/// One pupil's events on `days`, each a complete JSON object, appended to `out`.
#[allow(clippy::too_many_arguments)]
fn pupil_events(
    st: &EmulatorState,
    generation: u64,
    s: &School,
    lk: &SchoolLookup,
    student: u64,
    days: RangeInclusive<NaiveDate>,
    expand: &BTreeSet<&str>,
    out: &mut EventsBody,
) {
    let (from, to) = (*days.start(), *days.end());
    // Every unit the pupil was ever a member of (assumption: the calendar keeps them).
    let units: BTreeSet<u64> = lk.enrollments_of(student).iter().map(|&i| s.enrollments[i].unit).collect();
    let mut lessons: Vec<_> =
        units.iter().flat_map(|&u| lk.lessons_of(u, from, to)).filter_map(|id| s.lessons.get(&id)).collect();
    lessons.sort_by_key(|l| (l.date, l.number, l.id));
    let with_homework = expand.contains("homework");
    let ids: BTreeSet<u64> = lessons.iter().map(|l| l.id).collect();
    let mut marks: HashMap<u64, Vec<&SynthMark>> = HashMap::new();
    if expand.contains("marks") {
        for m in lk.marks_of(student).iter().filter_map(|id| s.marks.get(id)).filter(|m| ids.contains(&m.lesson)) {
            marks.entry(m.lesson).or_default().push(m);
        }
    }
    for l in lessons {
        if out.count > 0 {
            out.bytes.push(b',');
        }
        out.count += 1;
        out.bytes.extend_from_slice(&shared_event(st, generation, s, lk, l, with_homework));
        let (absence_reason_id, is_missed_lesson) = match s.attendance.get(&(l.id, student)) {
            Some(a) if expand.contains("absence_reason_id") => {
                let (reason, missed) = absence_reason(a.status);
                (Some(reason), missed)
            }
            _ => (None, false),
        };
        let marks = expand.contains("marks").then(|| {
            marks
                .get(&l.id)
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(|m| {
                    let (form, weight) = mark_form(s, m);
                    EventMarkOut {
                        id: m.id,
                        value: &m.value,
                        values: grade_values(&m.value),
                        weight,
                        comment_exists: m.comment.is_some(),
                        criteria: None,
                        is_exam: false,
                        is_point: m.is_point,
                        point_date: m.point_date.map(ymd),
                        control_form_name: form,
                        homework_entry_id: m.work,
                    }
                })
                .collect()
        });
        // `{…shared` + `,` + the pupil's object without its `{`.
        out.bytes.push(b',');
        let own_start = out.bytes.len();
        serde_json::to_writer(&mut out.bytes, &PupilPart { absence_reason_id, is_missed_lesson, marks })
            .expect("a JSON value serializes");
        out.bytes.remove(own_start);
    }
}

/// What every pupil's event for lesson `l` shares, written once per state of the world.
fn shared_event(
    st: &EmulatorState,
    generation: u64,
    s: &School,
    lk: &SchoolLookup,
    l: &ejgate_sdk::synth::SynthLesson,
    with_homework: bool,
) -> Arc<[u8]> {
    {
        let mut cache = st.inner.events.lock().unwrap_or_else(|e| e.into_inner());
        if cache.generation != generation {
            *cache = EventCache { generation, events: HashMap::new() };
        }
        if let Some(ev) = cache.events.get(&(l.id, with_homework)) {
            return ev.clone();
        }
    }
    // Written outside the lock: two requests may both write it; either copy is the same.
    let mut written =
        serde_json::to_vec(&write_shared_event(s, lk, l, with_homework)).expect("a JSON value serializes");
    written.pop(); // the closing brace: the pupil's fields follow
    let written: Arc<[u8]> = written.into();
    let mut cache = st.inner.events.lock().unwrap_or_else(|e| e.into_inner());
    if cache.generation == generation {
        cache.events.insert((l.id, with_homework), written.clone());
    }
    written
}

fn write_shared_event(s: &School, lk: &SchoolLookup, l: &ejgate_sdk::synth::SynthLesson, with_homework: bool) -> Value {
    let tz: Option<chrono_tz::Tz> = s.time_zone.parse().ok();
    let stamp = |dt: NaiveDateTime| -> String {
        match tz.and_then(|tz| tz.from_local_datetime(&dt).earliest()) {
            Some(z) => z.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            None => format!("{}+03:00", dt.format("%Y-%m-%dT%H:%M:%S")),
        }
    };
    let subject = s.subjects.iter().find(|x| x.id == l.subject).map(|x| x.name.as_str());
    let class = {
        let class = s.groups.iter().find(|g| g.id == l.unit).map(|g| g.class_id).unwrap_or(l.unit);
        s.classes.iter().find(|c| c.id == class).map(|c| (c.id, c.name.as_str()))
    };
    let unit_name = s
        .classes
        .iter()
        .find(|c| c.id == l.unit)
        .map(|c| c.name.as_str())
        .or_else(|| s.groups.iter().find(|g| g.id == l.unit).map(|g| g.name.as_str()));
    let bell = s.bells.iter().find(|b| b.0 == l.number);
    let (start, end) = bell.map(|b| (b.1, b.2)).unwrap_or((NaiveTime::MIN, NaiveTime::MIN));
    let mut ev = json!({
        "id": l.id,
        "source": "PLAN",
        "source_id": l.id.to_string(),
        "start_at": stamp(l.date.and_time(start)),
        "finish_at": stamp(l.date.and_time(end)),
        "subject_id": l.subject,
        "subject_name": subject,
        "lesson_theme": l.topic,
        "lesson_name": subject,
        "lesson_type": "NORMAL",
        "lesson_number": l.number,
        "teacher_id": l.teacher,
        "room_name": null,
        "group_id": l.unit,
        "group_name": unit_name,
        "class_unit_ids": class.map(|c| vec![c.0]).unwrap_or_default(),
        "class_unit_name": class.map(|c| c.1),
        "cancelled": l.cancelled,
        "replaced": l.substitute.is_some(),
        "replaced_teacher_id": l.substitute,
        "nonattendance_reason_id": null,
        "health_status": null,
        "created_at": local(l.date.and_time(NaiveTime::MIN)),
        "updated_at": local(l.date.and_time(NaiveTime::MIN)),
    });
    // Keys typed clients index (SOURCES.md): sent, mostly empty, as the real calendar does.
    let extra = [
        ("type", json!("LESSON")),
        ("title", json!(subject)),
        ("is_all_day", json!(false)),
        ("materials", json!([])),
        ("is_metagroup", json!(false)),
    ];
    for (key, value) in extra {
        ev[key] = value;
    }
    for key in [
        "description",
        "author_id",
        "registration_start_at",
        "registration_end_at",
        "room_number",
        "lesson_education_type",
        "course_lesson_type",
        "esz_field_id",
        "activities",
        "link_to_join",
        "control",
        "student_count",
        "journal_fill",
        "comment_count",
        "comments",
    ] {
        ev[key] = Value::Null;
    }
    if with_homework {
        let list: Vec<_> = lk.works_of(l.id).iter().filter_map(|id| s.works.get(id)).collect();
        let entries: Vec<Value> = list
            .iter()
            .map(|wk| {
                let form = s.work_types.iter().find(|t| t.id == wk.work_type);
                json!({
                    "homework_entry_id": wk.id,
                    "date_assigned_on": ymd(l.date),
                    "date_prepared_for": ymd(wk.target_date),
                    "description": wk.text,
                    "attachments": [],
                    "is_class_room_job": !wk.is_homework,
                    "control_form": form.map(|t| json!({"id": t.id, "name": t.title, "weight": t.weight})),
                    "created_at": local(wk.created_at),
                })
            })
            .collect();
        let descriptions: Vec<&str> = list.iter().filter(|wk| wk.is_homework).map(|wk| wk.text.as_str()).collect();
        ev["homework"] = json!({"presence_status_id": null, "total_count": entries.len(), "execute_count": null,
                                "descriptions": descriptions, "materials": {}, "entries": entries});
    }
    ev
}

/// `api/family/web/v1/marks?student_id&from&to` (and the mobile twin) → `{payload}`, by the
/// lesson day.
async fn family_marks(
    State(st): State<EmulatorState>,
    Extension(viewer): Extension<Viewer>,
    raw: RawQuery,
) -> Response {
    let q = query(&raw);
    let (from, to) = match range(&st, &q, "from", "to") {
        Ok(r) => r,
        Err(e) => return e,
    };
    let Some(student) = q.get("student_id") else {
        return bad(&st, "Параметр student_id обязателен");
    };
    let body = st.inner.world.read_indexed(|w, lookup| {
        let (s, lk, student) = pupil_by_id(w, lookup, student)?;
        if !viewer.sees(student) {
            return Some(Err(()));
        }
        let subjects: HashMap<u64, &str> = s.subjects.iter().map(|x| (x.id, x.name.as_str())).collect();
        let payload: Vec<FamilyMarkOut> = lk
            .marks_of(student)
            .iter()
            .filter_map(|id| s.marks.get(id))
            .filter_map(|m| {
                let l = s.lessons.get(&m.lesson)?;
                if l.date < from || l.date > to {
                    return None;
                }
                let (form, weight) = mark_form(s, m);
                Some(FamilyMarkOut {
                    id: m.id,
                    value: &m.value,
                    values: grade_values(&m.value),
                    weight,
                    control_form_name: form,
                    comment: m.comment.as_deref(),
                    comment_exists: m.comment.is_some(),
                    criteria: None,
                    original_grade_system_type: "five",
                    created_at: local(m.entered_at),
                    updated_at: local(m.entered_at),
                    date: ymd(l.date),
                    subject_id: l.subject,
                    subject_name: subjects.get(&l.subject).copied(),
                    is_exam: false,
                    is_point: m.is_point,
                    point_date: m.point_date.map(ymd),
                })
            })
            .collect();
        Some(Ok(serde_json::to_vec(&Payload { payload }).expect("a JSON value serializes")))
    });
    match body {
        Some(Err(())) => forbidden(&st),
        Some(Ok(b)) => ([(CONTENT_TYPE, super::gate::JSON)], b).into_response(),
        None => not_found(&st, "Ученик не найден"),
    }
}

/// `family/mobile/v1/subject_marks?student_id` → `{payload}` with string averages and marks.
async fn subject_marks(
    State(st): State<EmulatorState>,
    Extension(viewer): Extension<Viewer>,
    raw: RawQuery,
) -> Response {
    let q = query(&raw);
    let Some(student) = q.get("student_id") else {
        return bad(&st, "Параметр student_id обязателен");
    };
    let body = st.inner.world.read_indexed(|w, lookup| {
        let (s, lk, student) = pupil_by_id(w, lookup, student)?;
        if !viewer.sees(student) {
            return Some(Err(()));
        }
        // (subject, period) → (sum, count) of the pupil's marks
        let mut sums: HashMap<(u64, u64), (f64, u32)> = HashMap::new();
        let mut by_subject: HashMap<u64, (f64, u32)> = HashMap::new();
        for m in lk.marks_of(student).iter().filter_map(|id| s.marks.get(id)) {
            let (Some(l), Some(v)) = (s.lessons.get(&m.lesson), five(&m.value)) else { continue };
            if let Some(p) = s.periods.iter().find(|p| l.date >= p.start && l.date <= p.end) {
                let e = sums.entry((l.subject, p.id)).or_default();
                e.0 += v;
                e.1 += 1;
            }
            let e = by_subject.entry(l.subject).or_default();
            e.0 += v;
            e.1 += 1;
        }
        let finals: HashMap<(u64, Option<u64>), &str> = s
            .final_marks
            .range((student, 0, None)..=(student, u64::MAX, Some(u64::MAX)))
            .map(|((_, subject, period), f)| ((*subject, *period), f.value.as_str()))
            .collect();
        let avg = |(sum, n): (f64, u32)| format!("{:.2}", sum / n as f64);
        let list: Vec<Value> = s
            .subjects
            .iter()
            .filter(|x| by_subject.contains_key(&x.id) || finals.keys().any(|(subj, _)| *subj == x.id))
            .map(|x| {
                let periods: Vec<Value> = s
                    .periods
                    .iter()
                    .filter(|p| sums.contains_key(&(x.id, p.id)) || finals.contains_key(&(x.id, Some(p.id))))
                    .map(|p| {
                        let sum = sums.get(&(x.id, p.id)).copied();
                        json!({
                            "title": p.name, "start": p.start.format("%d.%m.%Y").to_string(),
                            "end": p.end.format("%d.%m.%Y").to_string(), "start_iso": ymd(p.start), "end_iso": ymd(p.end),
                            "value": sum.map(avg), "fixed_value": finals.get(&(x.id, Some(p.id))),
                            "count": sum.map(|s| s.1).unwrap_or(0), "target": null, "marks": [],
                        })
                    })
                    .collect();
                json!({
                    "subject_id": x.id, "subject_name": x.name,
                    "average": by_subject.get(&x.id).copied().map(avg),
                    "average_by_all": by_subject.get(&x.id).copied().map(avg),
                    "dynamic": "NONE", "year_mark": finals.get(&(x.id, None)), "periods": periods,
                })
            })
            .collect();
        Some(Ok(json!({"payload": list})))
    });
    match body {
        Some(Err(())) => forbidden(&st),
        Some(Ok(b)) => json_ok(&b),
        None => not_found(&st, "Ученик не найден"),
    }
}

/// GET `v2/token/refresh` → the new token as **plain text**; refused: 499 `Something went wrong`.
async fn refresh(State(st): State<EmulatorState>, req: Request) -> Response {
    let presented = super::gate::token(&req);
    let known = presented.and_then(|t| {
        let book = st.inner.tokens.lock().unwrap_or_else(|e| e.into_inner());
        book.tokens.keys().find(|k| k.as_bytes() == t.as_bytes()).cloned()
    });
    match known.and_then(|t| st.inner.refresh(&t)) {
        Some(fresh) => ([(CONTENT_TYPE, "text/plain; charset=utf-8")], fresh).into_response(),
        None => (
            StatusCode::from_u16(499).expect("a valid status"),
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            REFRESH_FAILED,
        )
            .into_response(),
    }
}
