//! The API routes: the synthetic world written the way ЭПОС.Школа writes it (API.md).

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use ejgate_sdk::synth::{School, SchoolLookup, SynthAttendanceStatus, SynthPerson, World};
use ejgate_sdk::time::parse_date;
use serde_json::{json, Value};

use ejgate_sdk::emulator::mesh::{self, kind_name, query, ymd, Query};

use super::gate::{error, json_ok, session_ended};
use super::{profile_id, EmulatorState, FamilyAccount, Viewer, SHAPE};

pub(crate) fn routes() -> Router<EmulatorState> {
    mesh::core_routes()
        .route("/lms/api/sessions", post(sessions))
        .route("/core/api/teacher_profiles", get(teachers))
        .route("/core/api/student_profiles", get(students))
        .route("/core/api/student_profiles/{id}", get(student))
        .route("/core/api/marks", get(marks))
        .route("/core/api/student_homeworks", get(homeworks))
        .route("/jersey/api/schedule_items", get(schedule_items))
        .route("/reports/api/progress/json", get(progress))
}

fn bad(message: &str) -> Response {
    mesh::bad(SHAPE, message)
}

fn forbidden() -> Response {
    mesh::forbidden(SHAPE)
}

fn staff_only(viewer: &Viewer) -> Result<(), Response> {
    mesh::staff_only(SHAPE, viewer)
}

/// The pupil a request names with `student_profile_id`, when the viewer may see him.
fn pupil_param(q: &Query, viewer: &Viewer) -> Result<Option<u64>, Response> {
    let Some(raw) = q.get("student_profile_id") else { return Ok(None) };
    let id: u64 = raw.parse().map_err(|_| bad(&format!("Неверный student_profile_id: {raw}")))?;
    if !viewer.sees(id) {
        return Err(forbidden());
    }
    Ok(Some(id))
}

fn dmy(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

fn dmy_hm(dt: NaiveDateTime) -> String {
    dt.format("%d.%m.%Y %H:%M").to_string()
}

/// A required date parameter in either spelling.
fn date_param(q: &Query, name: &str) -> Result<NaiveDate, Response> {
    let v = q.get(name).ok_or_else(|| bad(&format!("Параметр {name} обязателен")))?;
    parse_date(v).ok_or_else(|| bad(&format!("Неверный формат даты {name}: {v}")))
}

fn with_school<R>(
    st: &EmulatorState,
    q: &Query,
    f: impl FnOnce(&World, &School, &SchoolLookup) -> R,
) -> Result<R, Response> {
    mesh::with_school(st, q, f)
}

fn page_of<T>(st: &EmulatorState, q: &Query, rows: impl IntoIterator<Item = T>) -> impl Iterator<Item = T> {
    mesh::page_of(mesh::Platform::max_per_page(st), q, rows)
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
    let Some(viewer) = st.inner.viewer(&token) else { return session_ended(StatusCode::UNAUTHORIZED) };
    if st.inner.token_expired() {
        return session_ended(StatusCode::BAD_REQUEST);
    }
    let profiles: Vec<Value> = st.inner.world.read_indexed(|w, lookup| match &viewer {
        Viewer::Staff => w
            .schools
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
            .collect(),
        Viewer::Family { account, children } => {
            let school = children.first().and_then(|c| lookup.school_of(w, *c)).map(|(s, _)| s);
            let (kind, user_id) = match *account {
                FamilyAccount::Parent { guardian } => (
                    "parent",
                    school.and_then(|s| s.guardians.iter().find(|g| g.id == guardian)).and_then(|g| g.user_id),
                ),
                FamilyAccount::Pupil { student } => (
                    "student",
                    school.and_then(|s| s.students.iter().find(|p| p.id == student)).and_then(|p| p.user_id),
                ),
            };
            vec![json!({
                "id": account.profile_id(),
                "type": kind,
                "roles": [],
                "user_id": user_id,
                "school_id": school.map(|s| s.id),
                "school_shortname": school.map(|s| s.name.as_str()),
                "subject_ids": [],
                "is_default": true,
            })]
        }
    });
    json_ok(&json!({
        "id": profile_id(0) - 2000,
        "authentication_token": "[same as the auth_token sent]",
        "guid": "00000000-0000-4000-8000-000000000000",
        "profiles": profiles,
    }))
}

async fn teachers(State(st): State<EmulatorState>, Extension(viewer): Extension<Viewer>, raw: RawQuery) -> Response {
    if let Err(e) = staff_only(&viewer) {
        return e;
    }
    let q = query(&raw);
    let items = with_school(&st, &q, |_, s, _| page_of(&st, &q, &s.teachers).map(person_json).collect::<Vec<_>>());
    match items {
        Ok(items) => json_array(items),
        Err(e) => e,
    }
}

/// A pupil's profile: the person, the current class (`class_unit_id` and `class_unit{id,
/// name, class_level_id}`) and the groups he is in (`groups[{id, name, subject_id}]`: the
/// МЭШ student profile's shape; the family reads its lessons by these ids).
fn student_json(s: &School, lk: &SchoolLookup, p: &SynthPerson) -> Value {
    let mut v = person_json(p);
    let active: Vec<u64> =
        lk.enrollments_of(p.id).iter().map(|&i| &s.enrollments[i]).filter(|e| e.active).map(|e| e.unit).collect();
    let class = s.classes.iter().find(|c| active.contains(&c.id));
    v["class_unit_id"] = json!(class.map(|c| c.id));
    v["class_unit"] = json!(class.map(|c| json!({"id": c.id, "name": c.name, "class_level_id": c.grade})));
    v["school_id"] = json!(s.id);
    v["groups"] = Value::Array(
        s.groups
            .iter()
            .filter(|g| active.contains(&g.id))
            .map(|g| json!({"id": g.id, "name": g.name, "subject_id": g.subject_id}))
            .collect(),
    );
    v
}

/// `core/api/student_profiles?school_id` (staff, assumption: the school's pupils with their
/// memberships, paged) or, for a family profile, without `school_id`: the children the
/// profile sees (assumption from the МЭШ clients' `student_profiles` call).
async fn students(State(st): State<EmulatorState>, Extension(viewer): Extension<Viewer>, raw: RawQuery) -> Response {
    let q = query(&raw);
    if let Viewer::Family { children, .. } = &viewer {
        if q.contains_key("school_id") {
            return forbidden();
        }
        let items: Vec<Value> = st.inner.world.read_indexed(|w, lookup| {
            let list: Vec<Value> = children
                .iter()
                .filter_map(|c| {
                    let (s, lk) = lookup.school_of(w, *c)?;
                    Some(student_json(s, lk, &s.students[*lk.students.get(c)?]))
                })
                .collect();
            page_of(&st, &q, list).collect()
        });
        return json_array(items);
    }
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

/// `absence_reason_id` (SOURCES.md: МЭШ 1 «н» without a valid reason, 2 «б» illness; 3
/// excused and 4 late are assumptions, `mappings/epos/attendance.toml`).
fn absence_reason_id(s: SynthAttendanceStatus) -> u8 {
    match s {
        SynthAttendanceStatus::AbsentUnexcused => 1,
        SynthAttendanceStatus::Ill => 2,
        SynthAttendanceStatus::AbsentExcused => 3,
        SynthAttendanceStatus::Late => 4,
    }
}

async fn student(
    State(st): State<EmulatorState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    raw: RawQuery,
) -> Response {
    let q = query(&raw);
    let with_attendance =
        ["with_attendance", "with_attendances"].iter().any(|k| q.get(*k).is_some_and(|v| v == "true"));
    if id.parse::<u64>().is_ok_and(|id| !viewer.sees(id)) {
        return forbidden();
    }
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
                    Some(json!({"schedule_lesson_id": lesson, "date": date,
                                "absence_reason_id": absence_reason_id(a.status),
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

async fn marks(State(st): State<EmulatorState>, Extension(viewer): Extension<Viewer>, raw: RawQuery) -> Response {
    let q = query(&raw);
    let (from, to) = match (date_param(&q, "created_at_from"), date_param(&q, "created_at_to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let pupil = match pupil_param(&q, &viewer) {
        Ok(p) => p,
        Err(e) => return e,
    };
    if pupil.is_none() && viewer != Viewer::Staff {
        return bad("Параметр student_profile_id обязателен");
    }
    let items = st.inner.world.read_indexed(|w, lookup| {
        // By school, then by mark id: the order the real API keeps between pages.
        let mut rows: Vec<(&School, u64)> = Vec::new();
        for (s, lk) in w.schools.iter().zip(&lookup.schools) {
            if q.get("school_id").is_some_and(|id| *id != s.id.to_string()) {
                continue;
            }
            let first = rows.len();
            match pupil {
                Some(p) => rows.extend(
                    lk.marks_of(p)
                        .iter()
                        .filter(|id| {
                            s.marks.get(id).is_some_and(|m| m.entered_at.date() >= from && m.entered_at.date() <= to)
                        })
                        .map(|id| (s, *id)),
                ),
                None => rows.extend(lk.marks_entered(from, to).map(|id| (s, id))),
            }
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
                    "comment": m.comment,
                    "is_exam": false,
                    "is_point": m.is_point,
                    "point_date": m.point_date.map(dmy),
                    "schedule_lesson_id": m.lesson,
                    "student_profile_id": m.student,
                    "homework_id": m.work,
                }))
            })
            .collect::<Vec<_>>()
    });
    json_array(items)
}

/// `core/api/student_homeworks?student_profile_id` (public: one pupil's homework) or
/// `?school_id` (staff, assumption: one item per homework of the school).
async fn homeworks(State(st): State<EmulatorState>, Extension(viewer): Extension<Viewer>, raw: RawQuery) -> Response {
    let q = query(&raw);
    let (from, to) = match (date_param(&q, "begin_date"), date_param(&q, "end_date")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let pupil = match pupil_param(&q, &viewer) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let q = match pupil {
        // The pupil names his school.
        Some(p) => {
            let mut q = q;
            let school = st.inner.world.read_indexed(|w, lookup| lookup.school_of(w, p).map(|(s, _)| s.id));
            q.insert("school_id".into(), school.map(|s| s.to_string()).unwrap_or_default());
            q
        }
        None if viewer != Viewer::Staff => return bad("Параметр student_profile_id обязателен"),
        None => q,
    };
    let items = with_school(&st, &q, |_, s, lk| {
        let units: Option<HashSet<u64>> =
            pupil.map(|p| lk.enrollments_of(p).iter().map(|&i| s.enrollments[i].unit).collect());
        let mut ids: Vec<u64> = lk
            .works_dated(from, to)
            .filter(|id| {
                let unit = s.works.get(id).and_then(|wk| s.lessons.get(&wk.lesson)).map(|l| l.unit);
                units.as_ref().is_none_or(|u| unit.is_some_and(|x| u.contains(&x)))
            })
            .collect();
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
                        "attachments": wk.attachments.iter().enumerate().map(|(i, a)| json!({
                            "id": i + 1, "file_file_name": a.name, "path": a.url, "file_file_size": null,
                        })).collect::<Vec<_>>(),
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

async fn schedule_items(
    State(st): State<EmulatorState>,
    Extension(viewer): Extension<Viewer>,
    raw: RawQuery,
) -> Response {
    let q = query(&raw);
    let (from, to) = match (date_param(&q, "from"), date_param(&q, "to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let Some(units) = q.get("group_id") else { return bad("Параметр group_id обязателен") };
    let mut units: HashSet<u64> = units.split(',').filter_map(|u| u.trim().parse().ok()).collect();
    if let Viewer::Family { children, .. } = &viewer {
        // A family profile sees the lessons of its children's classes and groups only.
        let theirs: HashSet<u64> = st.inner.world.read_indexed(|w, lookup| {
            children
                .iter()
                .filter_map(|c| lookup.school_of(w, *c).map(|(s, lk)| (s, lk, *c)))
                .flat_map(|(s, lk, c)| lk.enrollments_of(c).iter().map(|&i| s.enrollments[i].unit).collect::<Vec<_>>())
                .collect()
        });
        units.retain(|u| theirs.contains(u));
    }
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
                // The lesson's own topic; `topic_name` is the section of the thematic plan.
                "lesson_name": l.topic,
                "topic_name": l.section,
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

async fn progress(State(st): State<EmulatorState>, Extension(viewer): Extension<Viewer>, raw: RawQuery) -> Response {
    let q = query(&raw);
    let Some(student) = q.get("student_profile_id").and_then(|v| v.parse::<u64>().ok()) else {
        return bad("Параметр student_profile_id обязателен");
    };
    if !viewer.sees(student) {
        return forbidden();
    }
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
        // No subject or period ids here (SOURCES.md): a client joins by the subject's name and
        // the period's name and dates. The year mark comes as one more period spanning the
        // year (assumption, API.md).
        let period = |name: &str, start: NaiveDate, end: NaiveDate, avg: Option<f64>, fin: Option<&&str>| {
            json!({
                "name": name, "start": dmy(start), "end": dmy(end),
                "start_iso": ymd(start), "end_iso": ymd(end),
                "avg_five": avg.map(|a| format!("{a:.2}")),
                "avg_hundred": avg.map(|a| format!("{:.2}", a * 20.0)),
                "avg_original": avg.map(|a| format!("{a:.2}")),
                "final_mark": fin,
                "marks": [],
            })
        };
        let list: Vec<Value> = s
            .subjects
            .iter()
            .map(|x| {
                let has_any = finals.keys().any(|(subj, _)| *subj == x.id);
                let mut periods: Vec<Value> = Vec::new();
                if has_any {
                    for p in &s.periods {
                        let avg = sums.get(&(x.id, p.id)).map(|(sum, n)| sum / *n as f64);
                        periods.push(period(&p.name, p.start, p.end, avg, finals.get(&(x.id, Some(p.id)))));
                    }
                    if let Some(year) = finals.get(&(x.id, None)) {
                        periods.push(period("Год", s.year.start, s.year.end, None, Some(year)));
                    }
                }
                json!({"subject_name": x.name, "periods": periods})
            })
            .collect();
        Some(Value::Array(list))
    });
    match body {
        Some(b) => json_ok(&b),
        None => error(StatusCode::NOT_FOUND, "Профиль ученика не найден"),
    }
}
