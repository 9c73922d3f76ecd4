//! The API routes: the synthetic world written the way ЭПОС.Школа writes it (API.md).

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use ejgate_sdk::synth::{School, SchoolLookup, SynthAttendanceStatus, SynthPerson, World};
use ejgate_sdk::time::parse_date;
use serde_json::{json, Value};

use super::gate::{error, json_ok, session_ended};
use super::{profile_id, EmulatorState, PREVIOUS_YEAR_ID};

pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/lms/api/sessions", post(sessions))
        .route("/core/api/academic_years", get(academic_years))
        .route("/core/api/schools/{id}", get(school))
        .route("/core/api/periods_schedules", get(periods))
        .route("/core/api/subjects", get(subjects))
        .route("/core/api/class_units", get(class_units))
        .route("/core/api/groups", get(groups))
        .route("/core/api/teacher_profiles", get(teachers))
        .route("/core/api/student_profiles", get(students))
        .route("/core/api/student_profiles/{id}", get(student))
        .route("/core/api/marks", get(marks))
        .route("/core/api/student_homeworks", get(homeworks))
        .route("/jersey/api/schedule_items", get(schedule_items))
        .route("/reports/api/progress/json", get(progress))
}

type Query = HashMap<String, String>;

fn query(raw: &RawQuery) -> Query {
    raw.0.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

fn bad(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

fn dmy(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

fn dmy_hm(dt: NaiveDateTime) -> String {
    dt.format("%d.%m.%Y %H:%M").to_string()
}

fn ymd(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn kind_name<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A required date parameter in either spelling.
fn date_param(q: &Query, name: &str) -> Result<NaiveDate, Response> {
    let v = q.get(name).ok_or_else(|| bad(&format!("Параметр {name} обязателен")))?;
    parse_date(v).ok_or_else(|| bad(&format!("Неверный формат даты {name}: {v}")))
}

/// The school a request names with `school_id`.
fn with_school<R>(
    st: &EmulatorState,
    q: &Query,
    f: impl FnOnce(&World, &School, &SchoolLookup) -> R,
) -> Result<R, Response> {
    let id = q.get("school_id").ok_or_else(|| bad("Параметр school_id обязателен"))?;
    let not_found = || error(StatusCode::NOT_FOUND, "Школа не найдена");
    let id: u64 = id.parse().map_err(|_| not_found())?;
    st.inner.world.read_indexed(|w, lookup| match lookup.school(w, id) {
        Some((s, lk)) => Ok(f(w, s, lk)),
        None => Err(not_found()),
    })
}

/// The rows of one page: `page` 0 and 1 are the first; `per_page` is capped without a
/// word; past the end none. Rows are sliced before they are written, so a page costs what
/// it holds.
fn page_of<T>(st: &EmulatorState, q: &Query, rows: impl IntoIterator<Item = T>) -> impl Iterator<Item = T> {
    let per_page =
        q.get("per_page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(50).clamp(1, st.inner.max_per_page);
    let page = q.get("page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).max(1);
    rows.into_iter().skip((page - 1).saturating_mul(per_page)).take(per_page)
}

/// A bare JSON array: the answer of a paged list (past the end an empty one).
fn json_array(items: Vec<Value>) -> Response {
    json_ok(&Value::Array(items))
}

fn person_json(p: &SynthPerson) -> Value {
    json!({
        "id": p.id,
        "user_id": p.user_id,
        "last_name": p.last_name,
        "first_name": p.first_name,
        "middle_name": p.middle_name,
        "sex": kind_name(&p.sex),
        "birth_date": dmy(p.birth_date),
    })
}

async fn sessions(State(st): State<EmulatorState>, body: Bytes) -> Response {
    let token = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("auth_token").and_then(|t| t.as_str()).map(str::to_string));
    let Some(token) = token else { return bad("auth_token обязателен") };
    if token.as_bytes() != st.inner.token.as_bytes() {
        return session_ended(StatusCode::UNAUTHORIZED);
    }
    if st.inner.token_expired() {
        return session_ended(StatusCode::BAD_REQUEST);
    }
    let profiles: Vec<Value> = st.inner.world.read(|w| {
        w.schools
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "id": profile_id(i),
                    "type": "school_admin",
                    "roles": [],
                    "user_id": profile_id(i) - 1000,
                    "school_id": s.id,
                    "school_shortname": s.name,
                    "subject_ids": [],
                    "is_default": i == 0,
                })
            })
            .collect()
    });
    json_ok(&json!({
        "id": profile_id(0) - 2000,
        "authentication_token": "[same as the auth_token sent]",
        "guid": "00000000-0000-4000-8000-000000000000",
        "profiles": profiles,
    }))
}

async fn academic_years(State(st): State<EmulatorState>) -> Response {
    let body = st.inner.world.read(|w| {
        let Some(s) = w.schools.first() else { return json!([]) };
        let y = &s.year;
        let prev_start = y.start.with_year(y.start.year() - 1).unwrap_or(y.start);
        let prev_end = y.end.with_year(y.end.year() - 1).unwrap_or(y.end);
        json!([
            {"id": PREVIOUS_YEAR_ID, "name": format!("{}/{}", prev_start.year(), prev_end.year()),
             "begin_date": ymd(prev_start), "end_date": ymd(prev_end), "calendar_id": 1, "current_year": false},
            {"id": y.id, "name": y.name, "begin_date": ymd(y.start), "end_date": ymd(y.end),
             "calendar_id": 1, "current_year": true},
        ])
    });
    json_ok(&body)
}

async fn school(State(st): State<EmulatorState>, Path(id): Path<String>) -> Response {
    let body = st.inner.world.read(|w| {
        w.schools.iter().find(|s| s.id.to_string() == id).map(|s| {
            json!({"id": s.id, "name": s.full_name, "short_name": s.name, "municipality_name": s.municipality,
                   "city": s.city, "time_zone": s.time_zone})
        })
    });
    match body {
        Some(b) => json_ok(&b),
        None => error(StatusCode::NOT_FOUND, "Школа не найдена"),
    }
}

async fn periods(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let q = query(&raw);
    let r = with_school(&st, &q, |_, s, _| {
        let mut out: Vec<Value> = s
            .periods
            .iter()
            .map(|p| {
                json!({"id": p.id, "name": p.name, "type": kind_name(&p.kind), "number": p.number,
                       "begin_date": dmy(p.start), "end_date": dmy(p.end)})
            })
            .collect();
        out.extend(s.holidays.iter().map(|h| {
            json!({"id": h.id, "name": h.name, "type": "vacation", "number": null,
                   "begin_date": dmy(h.start), "end_date": dmy(h.end)})
        }));
        Value::Array(out)
    });
    r.map(|v| json_ok(&v)).unwrap_or_else(|e| e)
}

async fn subjects(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let q = query(&raw);
    with_school(&st, &q, |_, s, _| {
        json_ok(&Value::Array(
            s.subjects
                .iter()
                .map(|x| json!({"id": x.id, "name": x.name, "knowledge_area": x.knowledge_area}))
                .collect(),
        ))
    })
    .unwrap_or_else(|e| e)
}

async fn class_units(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let q = query(&raw);
    with_school(&st, &q, |_, s, _| {
        json_ok(&Value::Array(
            s.classes
                .iter()
                .map(
                    |c| json!({"id": c.id, "name": c.name, "class_level_id": c.grade, "mentor_id": c.homeroom_teacher}),
                )
                .collect(),
        ))
    })
    .unwrap_or_else(|e| e)
}

async fn groups(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let q = query(&raw);
    with_school(&st, &q, |_, s, _| {
        json_ok(&Value::Array(
            s.groups
                .iter()
                .map(|g| {
                    json!({"id": g.id, "name": g.name, "class_unit_id": g.class_id, "subject_id": g.subject_id,
                           "group_type": kind_name(&g.kind)})
                })
                .collect(),
        ))
    })
    .unwrap_or_else(|e| e)
}

async fn teachers(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let q = query(&raw);
    let items = with_school(&st, &q, |_, s, _| page_of(&st, &q, &s.teachers).map(person_json).collect::<Vec<_>>());
    match items {
        Ok(items) => json_array(items),
        Err(e) => e,
    }
}

fn student_json(s: &School, lk: &SchoolLookup, p: &SynthPerson) -> Value {
    let mut v = person_json(p);
    let class = lk
        .enrollments_of(p.id)
        .iter()
        .map(|&i| &s.enrollments[i])
        .find(|e| e.active && s.classes.iter().any(|c| c.id == e.unit))
        .map(|e| e.unit);
    v["class_unit_id"] = json!(class);
    v
}

async fn students(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let q = query(&raw);
    let items = with_school(&st, &q, |_, s, lk| {
        let classes: HashSet<u64> = s.classes.iter().map(|c| c.id).collect();
        page_of(&st, &q, &s.students)
            .map(|p| {
                let memberships: Vec<Value> = lk
                    .enrollments_of(p.id)
                    .iter()
                    .map(|&i| {
                        let e = &s.enrollments[i];
                        json!({
                            "unit_id": e.unit,
                            "unit_type": if classes.contains(&e.unit) { "class_unit" } else { "group" },
                            "active": e.active,
                            "begin_date": dmy(e.from),
                            "end_date": e.to.map(dmy),
                        })
                    })
                    .collect();
                let mut v = student_json(s, lk, p);
                v["memberships"] = Value::Array(memberships);
                v
            })
            .collect::<Vec<_>>()
    });
    match items {
        Ok(items) => json_array(items),
        Err(e) => e,
    }
}

fn attendance_code(s: SynthAttendanceStatus) -> &'static str {
    match s {
        SynthAttendanceStatus::AbsentUnexcused => "НП",
        SynthAttendanceStatus::AbsentExcused => "УП",
        SynthAttendanceStatus::Ill => "Б",
        SynthAttendanceStatus::Late => "ОП",
    }
}

async fn student(State(st): State<EmulatorState>, Path(id): Path<String>, raw: RawQuery) -> Response {
    let q = query(&raw);
    let with_attendance =
        ["with_attendance", "with_attendances"].iter().any(|k| q.get(*k).is_some_and(|v| v == "true"));
    let body = st.inner.world.read_indexed(|w, lookup| {
        let id: u64 = id.parse().ok()?;
        let (s, lk) = lookup.school_of(w, id)?;
        let p = &s.students[*lk.students.get(&id)?];
        let mut v = student_json(s, lk, p);
        if with_attendance {
            let list: Vec<Value> = lk
                .attendance_of(p.id)
                .iter()
                .filter_map(|lesson| {
                    let a = s.attendance.get(&(*lesson, p.id))?;
                    let date = s.lessons.get(lesson).map(|l| dmy(l.date));
                    Some(json!({"schedule_lesson_id": lesson, "date": date, "reason": attendance_code(a.status),
                                "comment": a.comment, "created_at": dmy_hm(a.entered_at)}))
                })
                .collect();
            v["attendances"] = Value::Array(list);
        }
        Some(v)
    });
    match body {
        Some(b) => json_ok(&b),
        None => error(StatusCode::NOT_FOUND, "Профиль ученика не найден"),
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

async fn marks(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let q = query(&raw);
    let (from, to) = match (date_param(&q, "created_at_from"), date_param(&q, "created_at_to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let items = st.inner.world.read_indexed(|w, lookup| {
        // By school, then by mark id: the order the real API keeps between pages.
        let mut rows: Vec<(&School, u64)> = Vec::new();
        for (s, lk) in w.schools.iter().zip(&lookup.schools) {
            if q.get("school_id").is_some_and(|id| *id != s.id.to_string()) {
                continue;
            }
            let first = rows.len();
            rows.extend(lk.marks_entered(from, to).map(|id| (s, id)));
            rows[first..].sort_unstable_by_key(|r| r.1);
        }
        page_of(&st, &q, rows)
            .filter_map(|(s, id)| {
                let m = s.marks.get(&id)?;
                let lesson = s.lessons.get(&m.lesson);
                let work = s.works.get(&m.work);
                let weight = work
                    .and_then(|wk| s.work_types.iter().find(|t| t.id == wk.work_type))
                    .map(|t| t.weight)
                    .unwrap_or(1);
                let five = five(&m.value);
                Some(json!({
                    "id": m.id,
                    "name": m.value,
                    "weight": weight,
                    "values": [{"name": m.value, "nmax": 5,
                                "grade": {"origin": m.value, "five": five, "hundred": five.map(|f| f * 20.0)}}],
                    "grade_system_type": "five",
                    "date": lesson.map(|l| dmy(l.date)),
                    "created_at": dmy_hm(m.entered_at),
                    "updated_at": dmy_hm(m.entered_at),
                    "teacher_id": m.entered_by,
                    "subject_id": lesson.map(|l| l.subject),
                    "group_id": lesson.map(|l| l.unit),
                    "control_form_id": work.map(|wk| wk.work_type),
                    "comment": null,
                    "is_exam": false,
                    "is_point": false,
                    "point_date": null,
                    "schedule_lesson_id": m.lesson,
                    "student_profile_id": m.student,
                    "homework_id": m.work,
                }))
            })
            .collect::<Vec<_>>()
    });
    json_array(items)
}

async fn homeworks(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let q = query(&raw);
    let (from, to) = match (date_param(&q, "begin_date"), date_param(&q, "end_date")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let items = with_school(&st, &q, |_, s, lk| {
        let mut ids: Vec<u64> = lk.works_dated(from, to).collect();
        ids.sort_unstable();
        page_of(&st, &q, ids)
            .filter_map(|id| {
                let wk = s.works.get(&id)?;
                let l = s.lessons.get(&wk.lesson)?;
                let form = s.work_types.iter().find(|t| t.id == wk.work_type);
                let subject = s.subjects.iter().find(|x| x.id == l.subject).map(|x| x.name.as_str());
                Some(json!({
                    "id": wk.id,
                    "created_at": dmy_hm(wk.created_at),
                    "homework_entry_id": wk.id,
                    "homework_entry": {
                        "id": wk.id,
                        "homework_id": wk.id,
                        "description": wk.text,
                        "duration": 15,
                        "control_form": form.map(|t| json!({"id": wk.work_type, "name": t.title, "weight": t.weight})),
                        "homework": {
                            "id": wk.id,
                            "is_class_room_job": !wk.is_homework,
                            "date_prepared_for": dmy(wk.target_date),
                            "date_assigned_on": dmy(l.date),
                            "subject": {"id": l.subject, "name": subject},
                        },
                        "attachments": [],
                    },
                }))
            })
            .collect::<Vec<_>>()
    });
    match items {
        Ok(items) => json_array(items),
        Err(e) => e,
    }
}

async fn schedule_items(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let q = query(&raw);
    let (from, to) = match (date_param(&q, "from"), date_param(&q, "to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let Some(units) = q.get("group_id") else { return bad("Параметр group_id обязателен") };
    let units: HashSet<u64> = units.split(',').filter_map(|u| u.trim().parse().ok()).collect();
    let items = st.inner.world.read_indexed(|w, lookup| {
        let mut rows = Vec::new();
        for (s, lk) in w.schools.iter().zip(&lookup.schools) {
            let mut lessons: Vec<_> =
                units.iter().flat_map(|&u| lk.lessons_of(u, from, to)).filter_map(|id| s.lessons.get(&id)).collect();
            lessons.sort_by_key(|l| (l.date, l.number, l.id));
            rows.extend(lessons.into_iter().map(|l| (s, lk, l)));
        }
        let mut out = Vec::new();
        for (s, lk, l) in page_of(&st, &q, rows) {
            let given: Vec<Value> = lk.works_of(l.id).iter().map(|id| json!({"id": id})).collect();
            let subject = s.subjects.iter().find(|x| x.id == l.subject).map(|x| x.name.as_str());
            let bell = s.bells.iter().find(|b| b.0 == l.number);
            let time = bell.map(|b| b.1).unwrap_or_default();
            let duration = bell.map(|b| (b.2 - b.1).num_minutes()).unwrap_or(40);
            out.push(json!({
                "id": l.id,
                "teacher_id": l.teacher,
                "replaced_teacher_id": l.substitute,
                "subject_id": l.subject,
                "subject_name": subject,
                "group_id": l.unit,
                "lesson_name": null,
                "topic_name": l.topic,
                "date": [l.date.year(), l.date.month(), l.date.day()],
                "time": [time.hour(), time.minute(), time.second()],
                "iso_date_time": l.date.and_time(time).format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
                "duration": duration,
                "day_number": l.date.weekday().number_from_monday(),
                "study_ordinal": l.number,
                "room_name": null,
                "is_cancelled": l.cancelled,
                "homeworks_to_give": if given.is_empty() { Value::Null } else { Value::Array(given) },
                "homeworks_to_verify": null,
            }));
        }
        out
    });
    json_array(items)
}

async fn progress(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let q = query(&raw);
    let Some(student) = q.get("student_profile_id").and_then(|v| v.parse::<u64>().ok()) else {
        return bad("Параметр student_profile_id обязателен");
    };
    let body = st.inner.world.read_indexed(|w, lookup| {
        let (s, lk) = lookup.school_of(w, student)?;
        // (subject, period) → (sum, count) of the pupil's marks
        let mut sums: HashMap<(u64, u64), (f64, u32)> = HashMap::new();
        for m in lk.marks_of(student).iter().filter_map(|id| s.marks.get(id)) {
            let (Some(l), Some(v)) = (s.lessons.get(&m.lesson), five(&m.value)) else { continue };
            if let Some(p) = s.periods.iter().find(|p| l.date >= p.start && l.date <= p.end) {
                let e = sums.entry((l.subject, p.id)).or_default();
                e.0 += v;
                e.1 += 1;
            }
        }
        let finals: BTreeMap<(u64, Option<u64>), &str> = s
            .final_marks
            .range((student, 0, None)..=(student, u64::MAX, Some(u64::MAX)))
            .map(|((_, subject, period), f)| ((*subject, *period), f.value.as_str()))
            .collect();
        let list: Vec<Value> = s
            .subjects
            .iter()
            .map(|x| {
                let has_any = finals.keys().any(|(subj, _)| *subj == x.id);
                let periods: Vec<Value> = if has_any {
                    s.periods
                        .iter()
                        .map(|p| {
                            let avg = sums.get(&(x.id, p.id)).map(|(sum, n)| sum / *n as f64);
                            json!({
                                "id": p.id, "name": p.name, "start": dmy(p.start), "end": dmy(p.end),
                                "start_iso": ymd(p.start), "end_iso": ymd(p.end),
                                "avg_five": avg.map(|a| format!("{a:.2}")),
                                "avg_hundred": avg.map(|a| format!("{:.2}", a * 20.0)),
                                "avg_original": avg.map(|a| format!("{a:.2}")),
                                "final_mark": finals.get(&(x.id, Some(p.id))),
                                "marks": [],
                            })
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                json!({"subject_id": x.id, "subject_name": x.name, "periods": periods,
                       "year_mark": finals.get(&(x.id, None))})
            })
            .collect();
        Some(Value::Array(list))
    });
    match body {
        Some(b) => json_ok(&b),
        None => error(StatusCode::NOT_FOUND, "Профиль ученика не найден"),
    }
}
