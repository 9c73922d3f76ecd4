//! The API routes (API.md's table, 1–16): parse the request, read the world under the read
//! lock only while the answer is serialized, answer the bytes.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDate;

use axum::Extension;

use super::dates::parse_request_date;
use super::gate::{json_ok, Caller};
use super::index::Served;
use super::people::{self, View};
use super::wire::{self, ApiError};
use super::{EmulatorState, Forms};

type ApiResult = Result<Response, ApiError>;

/// The API routes, relative to a prefix (`/v2`, `/v2.0`): API.md's table, and the other
/// read calls of the public clients (the Python `pydnevnikruapi`'s among them).
pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/users/me", get(me))
        .route("/users/me/context", get(context))
        .route("/users/me/edu-groups", get(my_edu_groups))
        .route("/users/me/schools", get(my_schools))
        .route("/schools", get(schools_many))
        .route("/schools/person-schools", get(person_schools))
        .route("/schools/{s}", get(school))
        .route("/schools/{s}/edu-groups", get(school_edu_groups))
        .route("/schools/{s}/teachers", get(teachers))
        .route("/schools/{s}/subjects", get(subjects))
        .route("/persons/{p}", get(person))
        .route("/persons/{p}/edu-groups", get(person_edu_groups))
        .route("/persons/{p}/edu-groups/{g}/final-marks", get(person_final_marks))
        .route("/persons/{p}/schools/{s}/marks/{from}/{to}", get(person_marks))
        .route("/persons/{p}/lesson-log-entries", get(person_log_entries))
        .route("/edu-groups", get(edu_groups_query).post(edu_groups_batch))
        .route("/edu-groups/students", post(groups_students))
        .route("/edu-groups/{g}", get(edu_group))
        .route("/edu-groups/{g}/persons", get(persons))
        .route("/edu-groups/{g}/students", get(persons))
        .route("/edu-groups/{g}/subjects", get(group_subjects))
        .route("/edu-groups/{g}/reporting-periods", get(reporting_periods))
        .route("/edu-groups/{g}/reporting-period-group", get(reporting_period_group))
        .route("/edu-groups/{g}/lessons/{from}/{to}", get(lessons))
        .route("/edu-groups/{g}/subjects/{s}/lessons/{from}/{to}", get(subject_lessons))
        .route("/edu-groups/{g}/marks/{from}/{to}", get(marks))
        .route("/edu-groups/{g}/subjects/{s}/marks/{from}/{to}", get(subject_marks))
        .route("/edu-groups/{g}/final-marks", get(final_marks))
        .route("/work-types/{s}", get(work_types))
        .route("/lessons/{l}", get(one_lesson))
        .route("/lessons/{l}/works", get(lesson_works))
        .route("/lessons/{l}/marks", get(lesson_marks))
        .route("/lessons/{l}/log-entries", get(lesson_log_entries))
        .route("/works", get(works_query))
        .route("/lesson-log-entries", get(log_entries_query))
        .route("/lesson-log-entries/group/{g}", get(log_entries))
        .route("/lesson-log-entries/statuses", get(log_statuses))
        .route("/marks/values", get(mark_values))
        .route("/lessons/many", post(lessons_many))
        .route("/works/many", post(works_many))
}

impl EmulatorState {
    /// Runs `f` over the served world with what the caller may see.
    fn seen<R>(&self, caller: Caller, f: impl FnOnce(&Served, &View) -> Result<R, ApiError>) -> Result<R, ApiError> {
        let served = self.inner.world.read_served();
        let view = View::of(&served, caller.0);
        f(&served, &view)
    }

    fn forms(&self) -> Forms {
        self.inner.forms
    }

    /// Refuses a date range longer than `max_range_days` (an emulator option).
    fn check_range(&self, from: NaiveDate, to: NaiveDate) -> Result<(), ApiError> {
        match self.inner.max_range_days {
            Some(max) if (to - from).num_days() + 1 > i64::from(max) => Err(ApiError::parameter("endDate")),
            _ => Ok(()),
        }
    }
}

/// Every value of a query parameter (`eduGroups=1&eduGroups=2`, `lessons[]=1`, or one
/// comma-separated value), as ids.
fn query_ids(raw: &RawQuery, name: &str) -> Result<Vec<u64>, ApiError> {
    let mut out = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.0.as_deref().unwrap_or("").as_bytes()) {
        let k = k.to_ascii_lowercase();
        if k == name.to_ascii_lowercase() || k == format!("{}[]", name.to_ascii_lowercase()) {
            for part in v.split(',').filter(|p| !p.trim().is_empty()) {
                out.push(id(part, name)?);
            }
        }
    }
    Ok(out)
}

fn id(s: &str, name: &str) -> Result<u64, ApiError> {
    s.trim().parse().map_err(|_| ApiError::parameter(name))
}

fn date(s: &str, name: &str) -> Result<NaiveDate, ApiError> {
    parse_request_date(s).map(|d| d.date()).ok_or_else(|| ApiError::parameter(name))
}

/// Query parameters with lowercased names (clients vary the casing).
fn query(raw: &RawQuery) -> HashMap<String, String> {
    raw.0
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned())).collect()
        })
        .unwrap_or_default()
}

type Who = Extension<Caller>;

async fn me(State(st): State<EmulatorState>, Extension(c): Who) -> ApiResult {
    Ok(json_ok(st.seen(c, |w, v| Ok(people::me(w, v)))?))
}

async fn context(State(st): State<EmulatorState>, Extension(c): Who) -> ApiResult {
    Ok(json_ok(st.seen(c, |w, v| Ok(people::context(w, v)))?))
}

/// `users/me/edu-groups`: a pupil's classes and groups; nobody else's (**assumption**).
async fn my_edu_groups(State(st): State<EmulatorState>, Extension(c): Who) -> ApiResult {
    let forms = st.forms();
    Ok(json_ok(st.seen(c, |w, v| match v.account {
        super::Account::Pupil(p) => people::person_edu_groups(w, p, forms),
        _ => Ok(b"[]".to_vec()),
    })?))
}

/// `users/me/schools`: the ids of the caller's schools (**assumption**: bare ids).
async fn my_schools(State(st): State<EmulatorState>, Extension(c): Who) -> ApiResult {
    Ok(json_ok(st.seen(c, |w, v| {
        let ids: Vec<u64> = if v.staff() {
            w.world.schools.iter().map(|x| x.id).collect()
        } else {
            v.schools.iter().map(|&si| w.world.schools[si].id).collect()
        };
        Ok(serde_json::to_vec(&ids).expect("ids serialize"))
    })?))
}

async fn person_schools(State(st): State<EmulatorState>, Extension(c): Who) -> ApiResult {
    Ok(json_ok(st.seen(c, |w, v| Ok(people::person_schools(w, v)))?))
}

async fn schools_many(State(st): State<EmulatorState>, Extension(c): Who, raw: RawQuery) -> ApiResult {
    let ids = query_ids(&raw, "schools")?;
    Ok(json_ok(st.seen(c, |w, v| {
        for s in &ids {
            v.school(w, *s)?;
        }
        Ok(wire::schools_many(w, &ids))
    })?))
}

async fn person(State(st): State<EmulatorState>, Extension(c): Who, Path(p): Path<String>) -> ApiResult {
    let p = id(&p, "person")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.person(p)?;
        people::person(w, p)
    })?))
}

async fn person_edu_groups(State(st): State<EmulatorState>, Extension(c): Who, Path(p): Path<String>) -> ApiResult {
    let p = id(&p, "person")?;
    let forms = st.forms();
    Ok(json_ok(st.seen(c, |w, v| {
        v.person(p)?;
        people::person_edu_groups(w, p, forms)
    })?))
}

async fn person_final_marks(
    State(st): State<EmulatorState>,
    Extension(c): Who,
    Path((p, g)): Path<(String, String)>,
) -> ApiResult {
    let (p, g) = (id(&p, "person")?, id(&g, "eduGroup")?);
    Ok(json_ok(st.seen(c, |w, v| {
        v.person(p)?;
        v.unit(g)?;
        wire::final_marks(w, g, Some(p))
    })?))
}

async fn person_marks(
    State(st): State<EmulatorState>,
    Extension(c): Who,
    Path((p, s, from, to)): Path<(String, String, String, String)>,
) -> ApiResult {
    let (p, s) = (id(&p, "person")?, id(&s, "school")?);
    let (from, to) = (date(&from, "startDate")?, date(&to, "endDate")?);
    Ok(json_ok(st.seen(c, |w, v| {
        v.person(p)?;
        wire::person_marks(w, p, s, from, to)
    })?))
}

/// `startDate` and `endDate` are required (**assumption**; `from`/`to` are read too).
async fn person_log_entries(
    State(st): State<EmulatorState>,
    Extension(c): Who,
    Path(p): Path<String>,
    raw: RawQuery,
) -> ApiResult {
    let p = id(&p, "person")?;
    let q = query(&raw);
    let pick = |a: &str, b: &str| q.get(a).or(q.get(b)).map(String::as_str).unwrap_or("").to_owned();
    let from = date(&pick("startdate", "from"), "startDate")?;
    let to = date(&pick("enddate", "to"), "endDate")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.person(p)?;
        Ok(wire::person_log_entries(w, p, from, to))
    })?))
}

async fn edu_groups_query(State(st): State<EmulatorState>, Extension(c): Who, raw: RawQuery) -> ApiResult {
    let ids = query_ids(&raw, "eduGroups")?;
    let forms = st.forms();
    Ok(json_ok(st.seen(c, |w, v| {
        for g in &ids {
            v.unit(*g)?;
        }
        Ok(wire::edu_groups_many(w, &ids, forms))
    })?))
}

async fn edu_groups_batch(State(st): State<EmulatorState>, Extension(c): Who, body: Bytes) -> ApiResult {
    let forms = st.forms();
    if forms.refuse_batch {
        return Err(ApiError::method_not_supported());
    }
    let ids = wire::batch_ids(&body, "eduGroups")?;
    Ok(json_ok(st.seen(c, |w, v| {
        for g in &ids {
            v.unit(*g)?;
        }
        Ok(wire::edu_groups_many(w, &ids, forms))
    })?))
}

async fn group_subjects(State(st): State<EmulatorState>, Extension(c): Who, Path(g): Path<String>) -> ApiResult {
    let g = id(&g, "eduGroup")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.unit(g)?;
        wire::group_subjects(w, g)
    })?))
}

async fn reporting_periods(State(st): State<EmulatorState>, Extension(c): Who, Path(g): Path<String>) -> ApiResult {
    let g = id(&g, "eduGroup")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.unit(g)?;
        wire::reporting_periods(w, g)
    })?))
}

async fn subject_lessons(
    State(st): State<EmulatorState>,
    Extension(c): Who,
    Path((g, s, from, to)): Path<(String, String, String, String)>,
) -> ApiResult {
    let (g, s) = (id(&g, "eduGroup")?, id(&s, "subject")?);
    let (from, to) = (date(&from, "startDate")?, date(&to, "endDate")?);
    Ok(json_ok(st.seen(c, |w, v| {
        v.unit(g)?;
        wire::lessons(w, g, Some(s), from, to)
    })?))
}

async fn subject_marks(
    State(st): State<EmulatorState>,
    Extension(c): Who,
    Path((g, s, from, to)): Path<(String, String, String, String)>,
) -> ApiResult {
    let (g, s) = (id(&g, "eduGroup")?, id(&s, "subject")?);
    let (from, to) = (date(&from, "startDate")?, date(&to, "endDate")?);
    Ok(json_ok(st.seen(c, |w, v| {
        v.school_wide()?;
        wire::marks(w, g, Some(s), from, to)
    })?))
}

async fn one_lesson(State(st): State<EmulatorState>, Extension(c): Who, Path(l): Path<String>) -> ApiResult {
    let l = id(&l, "lesson")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.lesson(w, l)?;
        wire::one_lesson(w, l)
    })?))
}

async fn lesson_works(State(st): State<EmulatorState>, Extension(c): Who, Path(l): Path<String>) -> ApiResult {
    let l = id(&l, "lesson")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.lesson(w, l)?;
        wire::lesson_works(w, l)
    })?))
}

/// `works?lesson=`.
async fn works_query(State(st): State<EmulatorState>, Extension(c): Who, raw: RawQuery) -> ApiResult {
    let l = id(query(&raw).get("lesson").map(String::as_str).unwrap_or(""), "lesson")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.lesson(w, l)?;
        wire::lesson_works(w, l)
    })?))
}

async fn lesson_marks(State(st): State<EmulatorState>, Extension(c): Who, Path(l): Path<String>) -> ApiResult {
    let l = id(&l, "lesson")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.lesson(w, l)?;
        wire::lesson_marks(w, l, v.only())
    })?))
}

async fn lesson_log_entries(State(st): State<EmulatorState>, Extension(c): Who, Path(l): Path<String>) -> ApiResult {
    let l = id(&l, "lesson")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.lesson(w, l)?;
        Ok(wire::lessons_log_entries(w, &[l], v.only()))
    })?))
}

/// `lesson-log-entries?lessons=…`.
async fn log_entries_query(State(st): State<EmulatorState>, Extension(c): Who, raw: RawQuery) -> ApiResult {
    let ids = query_ids(&raw, "lessons")?;
    Ok(json_ok(st.seen(c, |w, v| {
        for l in &ids {
            v.lesson(w, *l)?;
        }
        Ok(wire::lessons_log_entries(w, &ids, v.only()))
    })?))
}

async fn school(State(st): State<EmulatorState>, Extension(c): Who, Path(s): Path<String>) -> ApiResult {
    let s = id(&s, "school")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.school(w, s)?;
        wire::school(w, s)
    })?))
}

async fn school_edu_groups(State(st): State<EmulatorState>, Extension(c): Who, Path(s): Path<String>) -> ApiResult {
    let s = id(&s, "school")?;
    let forms = st.forms();
    Ok(json_ok(st.seen(c, |w, v| {
        v.school_wide()?;
        wire::school_edu_groups(w, s, forms)
    })?))
}

async fn teachers(State(st): State<EmulatorState>, Extension(c): Who, Path(s): Path<String>) -> ApiResult {
    let s = id(&s, "school")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.school(w, s)?;
        wire::teachers(w, s)
    })?))
}

async fn subjects(State(st): State<EmulatorState>, Extension(c): Who, Path(s): Path<String>) -> ApiResult {
    let s = id(&s, "school")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.school(w, s)?;
        wire::subjects(w, s)
    })?))
}

async fn work_types(State(st): State<EmulatorState>, Extension(c): Who, Path(s): Path<String>) -> ApiResult {
    let s = id(&s, "school")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.school(w, s)?;
        wire::work_types(w, s)
    })?))
}

async fn groups_students(State(st): State<EmulatorState>, Extension(c): Who, body: Bytes) -> ApiResult {
    let forms = st.forms();
    if forms.refuse_batch {
        return Err(ApiError::method_not_supported());
    }
    let ids = wire::batch_ids(&body, "eduGroups")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.school_wide()?;
        Ok(wire::groups_students(w, &ids, forms))
    })?))
}

async fn edu_group(State(st): State<EmulatorState>, Extension(c): Who, Path(g): Path<String>) -> ApiResult {
    let g = id(&g, "eduGroup")?;
    let forms = st.forms();
    Ok(json_ok(st.seen(c, |w, v| {
        v.unit(g)?;
        wire::one_edu_group(w, g, forms)
    })?))
}

async fn persons(
    State(st): State<EmulatorState>,
    Extension(c): Who,
    Path(g): Path<String>,
    raw: RawQuery,
) -> ApiResult {
    let g = id(&g, "eduGroup")?;
    let archive = query(&raw).get("includearchive").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    Ok(json_ok(st.seen(c, |w, v| {
        v.school_wide()?;
        wire::persons(w, g, archive)
    })?))
}

async fn reporting_period_group(
    State(st): State<EmulatorState>,
    Extension(c): Who,
    Path(g): Path<String>,
) -> ApiResult {
    let g = id(&g, "eduGroup")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.unit(g)?;
        wire::reporting_period_group(w, g)
    })?))
}

async fn lessons(
    State(st): State<EmulatorState>,
    Extension(c): Who,
    Path((g, from, to)): Path<(String, String, String)>,
) -> ApiResult {
    let (g, from, to) = (id(&g, "eduGroup")?, date(&from, "startDate")?, date(&to, "endDate")?);
    st.check_range(from, to)?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.unit(g)?;
        wire::lessons(w, g, None, from, to)
    })?))
}

async fn marks(
    State(st): State<EmulatorState>,
    Extension(c): Who,
    Path((g, from, to)): Path<(String, String, String)>,
) -> ApiResult {
    let (g, from, to) = (id(&g, "eduGroup")?, date(&from, "startDate")?, date(&to, "endDate")?);
    st.check_range(from, to)?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.school_wide()?;
        wire::marks(w, g, None, from, to)
    })?))
}

async fn final_marks(State(st): State<EmulatorState>, Extension(c): Who, Path(g): Path<String>) -> ApiResult {
    let g = id(&g, "eduGroup")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.school_wide()?;
        wire::final_marks(w, g, None)
    })?))
}

/// `from` and `to` are required; `subject` is optional (all subjects without it).
async fn log_entries(
    State(st): State<EmulatorState>,
    Extension(c): Who,
    Path(g): Path<String>,
    raw: RawQuery,
) -> ApiResult {
    let g = id(&g, "eduGroup")?;
    let q = query(&raw);
    let from = date(q.get("from").map(String::as_str).unwrap_or(""), "from")?;
    let to = date(q.get("to").map(String::as_str).unwrap_or(""), "to")?;
    st.check_range(from, to)?;
    let subject = match q.get("subject").filter(|v| !v.is_empty()) {
        Some(v) => Some(id(v, "subject")?),
        None => None,
    };
    Ok(json_ok(st.seen(c, |w, v| {
        v.school_wide()?;
        wire::log_entries(w, g, subject, from, to)
    })?))
}

async fn log_statuses() -> Response {
    json_ok(wire::log_statuses())
}

async fn mark_values() -> Response {
    json_ok(wire::mark_values())
}

/// The body: a bare JSON array of ids, `{"lessons": […]}`, or a form `lessons=1&lessons=2`
/// (what `pydnevnikruapi` posts).
async fn lessons_many(State(st): State<EmulatorState>, Extension(c): Who, body: Bytes) -> ApiResult {
    let ids = wire::batch_ids(&body, "lessons")?;
    Ok(json_ok(st.seen(c, |w, v| {
        for l in &ids {
            v.lesson(w, *l)?;
        }
        Ok(wire::lessons_many(w, &ids))
    })?))
}

async fn works_many(State(st): State<EmulatorState>, Extension(c): Who, body: Bytes) -> ApiResult {
    let ids = wire::batch_ids(&body, "works")?;
    Ok(json_ok(st.seen(c, |w, v| {
        v.school_wide()?;
        Ok(wire::works_many(w, &ids))
    })?))
}
