//! # The МЭШ platform, shared by the ЭПОС.Школа and «Моя школа» emulators
//!
//! Both systems run on the Moscow МЭШ platform (SOURCES.md, sections ЭПОС.Школа and «Моя
//! школа»): the same `core/api` staff lists, the same profiles of parents and pupils, the same
//! lost-session text, the same nginx in front. What is common is here; each emulator
//! configures its hosts, paths, credentials and the differences (error body shape, date
//! formats, which family endpoints exist) through [`Platform`].

use std::collections::HashMap;

use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{Datelike, NaiveDate, NaiveTime};
use serde_json::{json, Value};

use super::{http_date, json_ok, json_status, Emulator};
use crate::synth::{School, SchoolLookup, World, WorldCell, FIRST_ID};

/// The platform's lost-session message (SOURCES.md, ЭПОС.Школа «Refused token» and «Моя
/// школа» «Expiry»), written here from the evidence, not taken from a connector.
pub const SESSION_ENDED: &str = "Предыдущая сессия работы в ЭЖД завершена. Войдите в ЭЖД заново";

/// The id of the staff profile for the school at `index` in the world (ids just below the
/// world's first id).
pub fn profile_id(index: usize) -> u64 {
    FIRST_ID - 100 - index as u64
}

/// The id of the made-up previous academic year (`current_year: false`).
pub const PREVIOUS_YEAR_ID: u64 = FIRST_ID - 200;

/// Whether `p` is the staff profile of one of the world's schools.
pub fn is_staff_profile(world: &World, p: &str) -> bool {
    (0..world.schools.len()).any(|i| profile_id(i).to_string() == p)
}

/// A family account: the token of a parent's or a pupil's profile (the access every public
/// client has, SOURCES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyAccount {
    /// A parent's profile (`type: "parent"`, profile id = the guardian's person id): sees
    /// the guardian's children.
    Parent { guardian: u64 },
    /// A pupil's profile (`type: "student"`, profile id = the pupil's id, which is the
    /// `student_profile_id`): sees the pupil.
    Pupil { student: u64 },
}

impl FamilyAccount {
    /// The profile id the session gives this account.
    pub fn profile_id(self) -> u64 {
        match self {
            FamilyAccount::Parent { guardian } => guardian,
            FamilyAccount::Pupil { student } => student,
        }
    }
}

/// Who a request is made by, as the gate resolved its token (handed to the handlers as a
/// request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// The staff token: every school of the world (assumption: a staff profile reads a
    /// whole school).
    Staff,
    /// A family token: only these pupils (the children the profile sees).
    Family { account: FamilyAccount, children: Vec<u64> },
}

impl Viewer {
    /// The viewer of a family account (its children from the world's guardianships), or of
    /// the staff token (`None`).
    pub fn of(world: &World, account: Option<FamilyAccount>) -> Viewer {
        let Some(account) = account else { return Viewer::Staff };
        let children = match account {
            FamilyAccount::Pupil { student } => vec![student],
            FamilyAccount::Parent { guardian } => {
                let mut c: Vec<u64> = world
                    .schools
                    .iter()
                    .flat_map(|s| s.guardianships.iter().filter(|(g, _)| *g == guardian).map(|(_, st)| *st))
                    .collect();
                c.sort_unstable();
                c.dedup();
                c
            }
        };
        Viewer::Family { account, children }
    }

    /// Whether the viewer may read pupil `student`'s data.
    pub fn sees(&self, student: u64) -> bool {
        match self {
            Viewer::Staff => true,
            Viewer::Family { children, .. } => children.contains(&student),
        }
    }
}

/// The shape of the platform's JSON error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorShape {
    /// `{"type": …, "description": …, "details": null}`
    #[default]
    TypeDescription,
    /// `{"code": N, "message": …}`
    CodeMessage,
}

/// A JSON error answer in `shape` (`kind` is the `type` of the first shape).
pub fn error(shape: ErrorShape, status: StatusCode, kind: &str, message: &str) -> Response {
    let body = match shape {
        ErrorShape::TypeDescription => serde_json::json!({ "type": kind, "description": message, "details": null }),
        ErrorShape::CodeMessage => serde_json::json!({ "code": status.as_u16(), "message": message }),
    };
    json_status(status, &body)
}

/// The lost-session answer with `status`.
pub fn session_ended(shape: ErrorShape, status: StatusCode) -> Response {
    error(shape, status, "authorization", SESSION_ENDED)
}

/// The platform's nginx page for a 502.
pub fn html_502() -> Response {
    const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"ru\">\n<head><meta charset=\"utf-8\">\
<title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n\
<hr><center>nginx</center>\n</body>\n</html>\n";
    (StatusCode::BAD_GATEWAY, [(CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// The emulators' clock: the world's today at 12:00 UTC.
pub fn noon_date(world: &World) -> HeaderValue {
    http_date(world.today.and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon")))
}

/// What a МЭШ emulator configures for the shared parts.
pub trait Platform: Emulator<Served = WorldCell> {
    /// The shape of its JSON error bodies.
    fn error_shape(&self) -> ErrorShape;

    /// The largest page the server gives, whatever `per_page` asks.
    fn max_per_page(&self) -> usize;

    /// How the dates of `periods_schedules` are written.
    fn period_date(&self, day: NaiveDate) -> String;
}

/// A request's query parameters (the last value of each name).
pub type Query = HashMap<String, String>;

/// The query of a request as a map.
pub fn query(raw: &RawQuery) -> Query {
    raw.0.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

/// A serializable code (an enum of the synthetic world) as its JSON name.
pub fn kind_name<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `yyyy-MM-dd`.
pub fn ymd(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// 400 `parameterInvalid`.
pub fn bad(shape: ErrorShape, message: &str) -> Response {
    error(shape, StatusCode::BAD_REQUEST, "parameterInvalid", message)
}

/// 404 `resourceNotFound`.
pub fn not_found(shape: ErrorShape, message: &str) -> Response {
    error(shape, StatusCode::NOT_FOUND, "resourceNotFound", message)
}

/// A family profile asking for what only staff sees (assumption: status and text).
pub fn forbidden(shape: ErrorShape) -> Response {
    error(shape, StatusCode::FORBIDDEN, "accessDenied", "Доступ запрещён")
}

/// The school-wide lists are the staff profile's (assumption, both API.md files).
pub fn staff_only(shape: ErrorShape, viewer: &Viewer) -> Result<(), Response> {
    match viewer {
        Viewer::Staff => Ok(()),
        Viewer::Family { .. } => Err(forbidden(shape)),
    }
}

/// The rows of one page: `page` 0 and 1 are the first; `per_page` (50 by default) is capped
/// at `max` without a word; past the end none. Rows are sliced before they are written, so a
/// page costs what it holds.
pub fn page_of<T>(max: usize, q: &Query, rows: impl IntoIterator<Item = T>) -> impl Iterator<Item = T> {
    let per_page = q.get("per_page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(50).clamp(1, max.max(1));
    let page = q.get("page").and_then(|v| v.parse::<usize>().ok()).unwrap_or(1).max(1);
    rows.into_iter().skip((page - 1).saturating_mul(per_page)).take(per_page)
}

/// The school a request names with `school_id` (400 without one, 404 for an unknown one).
pub fn with_school<S: Platform, R>(
    st: &S,
    q: &Query,
    f: impl FnOnce(&World, &School, &SchoolLookup) -> R,
) -> Result<R, Response> {
    let shape = st.error_shape();
    let id = q.get("school_id").ok_or_else(|| bad(shape, "Параметр school_id обязателен"))?;
    let id: u64 = id.parse().map_err(|_| not_found(shape, "Школа не найдена"))?;
    st.served().read_indexed(|w, lookup| match lookup.school(w, id) {
        Some((s, lk)) => Ok(f(w, s, lk)),
        None => Err(not_found(shape, "Школа не найдена")),
    })
}

/// The staff lists of `core/api` both systems serve alike: `academic_years`,
/// `schools/{id}`, `periods_schedules`, `subjects`, `class_units`, `groups` (behind the
/// system's gate, which puts the [`Viewer`] in the request).
pub fn core_routes<S: Platform>() -> Router<S> {
    Router::new()
        .route("/core/api/academic_years", get(academic_years::<S>))
        .route("/core/api/schools/{id}", get(school::<S>))
        .route("/core/api/periods_schedules", get(periods::<S>))
        .route("/core/api/subjects", get(subjects::<S>))
        .route("/core/api/class_units", get(class_units::<S>))
        .route("/core/api/groups", get(groups::<S>))
}

/// The current year of the world and a made-up previous one.
async fn academic_years<S: Platform>(State(st): State<S>) -> Response {
    let body = st.served().read(|w| {
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

async fn school<S: Platform>(
    State(st): State<S>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
) -> Response {
    let shape = st.error_shape();
    if let Err(e) = staff_only(shape, &viewer) {
        return e;
    }
    let body = st.served().read(|w| {
        w.schools.iter().find(|s| s.id.to_string() == id).map(|s| {
            json!({"id": s.id, "name": s.full_name, "short_name": s.name, "municipality_name": s.municipality,
                   "city": s.city, "time_zone": s.time_zone})
        })
    });
    match body {
        Some(b) => json_ok(&b),
        None => not_found(shape, "Школа не найдена"),
    }
}

/// A staff list of one school: `rows` of the school named by `school_id`.
fn school_list<S: Platform>(
    st: &S,
    viewer: &Viewer,
    raw: &RawQuery,
    rows: impl FnOnce(&School) -> Vec<Value>,
) -> Response {
    let run = || {
        staff_only(st.error_shape(), viewer)?;
        with_school(st, &query(raw), |_, s, _| json_ok(&Value::Array(rows(s))))
    };
    run().unwrap_or_else(|e| e)
}

async fn periods<S: Platform>(State(st): State<S>, Extension(viewer): Extension<Viewer>, raw: RawQuery) -> Response {
    school_list(&st, &viewer, &raw, |s| {
        let day = |d| st.period_date(d);
        let mut out: Vec<Value> = s
            .periods
            .iter()
            .map(|p| {
                json!({"id": p.id, "name": p.name, "type": kind_name(&p.kind), "number": p.number,
                       "begin_date": day(p.start), "end_date": day(p.end)})
            })
            .collect();
        out.extend(s.holidays.iter().map(|h| {
            json!({"id": h.id, "name": h.name, "type": "vacation", "number": null,
                   "begin_date": day(h.start), "end_date": day(h.end)})
        }));
        out
    })
}

async fn subjects<S: Platform>(State(st): State<S>, Extension(viewer): Extension<Viewer>, raw: RawQuery) -> Response {
    school_list(&st, &viewer, &raw, |s| {
        s.subjects.iter().map(|x| json!({"id": x.id, "name": x.name, "knowledge_area": x.knowledge_area})).collect()
    })
}

async fn class_units<S: Platform>(
    State(st): State<S>,
    Extension(viewer): Extension<Viewer>,
    raw: RawQuery,
) -> Response {
    school_list(&st, &viewer, &raw, |s| {
        s.classes
            .iter()
            .map(|c| json!({"id": c.id, "name": c.name, "class_level_id": c.grade, "mentor_id": c.homeroom_teacher}))
            .collect()
    })
}

async fn groups<S: Platform>(State(st): State<S>, Extension(viewer): Extension<Viewer>, raw: RawQuery) -> Response {
    school_list(&st, &viewer, &raw, |s| {
        s.groups
            .iter()
            .map(|g| {
                json!({"id": g.id, "name": g.name, "class_unit_id": g.class_id, "subject_id": g.subject_id,
                       "group_type": kind_name(&g.kind)})
            })
            .collect()
    })
}
