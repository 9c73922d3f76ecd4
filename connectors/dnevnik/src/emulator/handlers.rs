//! The API routes (API.md's table, 1–16): parse the request, read the world under the read
//! lock only while the answer is serialized, answer the bytes.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDate;

use super::dates::parse_request_date;
use super::gate::json_ok;
use super::index::Served;
use super::wire::{self, ApiError};
use super::EmulatorState;

type ApiResult = Result<Response, ApiError>;

/// The API routes, relative to a prefix (`/v2`, `/v2.0`).
pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/users/me/context", get(context))
        .route("/schools/{s}", get(school))
        .route("/schools/{s}/edu-groups", get(school_edu_groups))
        .route("/schools/{s}/teachers", get(teachers))
        .route("/schools/{s}/subjects", get(subjects))
        .route("/edu-groups/students", post(groups_students))
        .route("/edu-groups/{g}", get(edu_group))
        .route("/edu-groups/{g}/persons", get(persons))
        .route("/edu-groups/{g}/reporting-period-group", get(reporting_period_group))
        .route("/edu-groups/{g}/lessons/{from}/{to}", get(lessons))
        .route("/edu-groups/{g}/marks/{from}/{to}", get(marks))
        .route("/edu-groups/{g}/final-marks", get(final_marks))
        .route("/work-types/{s}", get(work_types))
        .route("/lesson-log-entries/group/{g}", get(log_entries))
        .route("/lesson-log-entries/statuses", get(log_statuses))
        .route("/marks/values", get(mark_values))
        .route("/lessons/many", post(lessons_many))
        .route("/works/many", post(works_many))
}

impl EmulatorState {
    /// Runs `f` over the served world under the read lock.
    fn with<R>(&self, f: impl FnOnce(&Served) -> R) -> R {
        f(&self.inner.world.read_served())
    }
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

async fn context(State(st): State<EmulatorState>) -> Response {
    json_ok(st.with(wire::context))
}

async fn school(State(st): State<EmulatorState>, Path(s): Path<String>) -> ApiResult {
    let s = id(&s, "school")?;
    Ok(json_ok(st.with(|w| wire::school(w, s))?))
}

async fn school_edu_groups(State(st): State<EmulatorState>, Path(s): Path<String>) -> ApiResult {
    let s = id(&s, "school")?;
    Ok(json_ok(st.with(|w| wire::school_edu_groups(w, s))?))
}

async fn teachers(State(st): State<EmulatorState>, Path(s): Path<String>) -> ApiResult {
    let s = id(&s, "school")?;
    Ok(json_ok(st.with(|w| wire::teachers(w, s))?))
}

async fn subjects(State(st): State<EmulatorState>, Path(s): Path<String>) -> ApiResult {
    let s = id(&s, "school")?;
    Ok(json_ok(st.with(|w| wire::subjects(w, s))?))
}

async fn work_types(State(st): State<EmulatorState>, Path(s): Path<String>) -> ApiResult {
    let s = id(&s, "school")?;
    Ok(json_ok(st.with(|w| wire::work_types(w, s))?))
}

async fn groups_students(State(st): State<EmulatorState>, body: Bytes) -> ApiResult {
    let ids = wire::batch_ids(&body, "eduGroups")?;
    Ok(json_ok(st.with(|w| wire::groups_students(w, &ids))))
}

async fn edu_group(State(st): State<EmulatorState>, Path(g): Path<String>) -> ApiResult {
    let g = id(&g, "eduGroup")?;
    Ok(json_ok(st.with(|w| wire::one_edu_group(w, g))?))
}

async fn persons(State(st): State<EmulatorState>, Path(g): Path<String>, raw: RawQuery) -> ApiResult {
    let g = id(&g, "eduGroup")?;
    let archive = query(&raw).get("includearchive").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    Ok(json_ok(st.with(|w| wire::persons(w, g, archive))?))
}

async fn reporting_period_group(State(st): State<EmulatorState>, Path(g): Path<String>) -> ApiResult {
    let g = id(&g, "eduGroup")?;
    Ok(json_ok(st.with(|w| wire::reporting_period_group(w, g))?))
}

async fn lessons(State(st): State<EmulatorState>, Path((g, from, to)): Path<(String, String, String)>) -> ApiResult {
    let (g, from, to) = (id(&g, "eduGroup")?, date(&from, "startDate")?, date(&to, "endDate")?);
    Ok(json_ok(st.with(|w| wire::lessons(w, g, from, to))?))
}

async fn marks(State(st): State<EmulatorState>, Path((g, from, to)): Path<(String, String, String)>) -> ApiResult {
    let (g, from, to) = (id(&g, "eduGroup")?, date(&from, "startDate")?, date(&to, "endDate")?);
    Ok(json_ok(st.with(|w| wire::marks(w, g, from, to))?))
}

async fn final_marks(State(st): State<EmulatorState>, Path(g): Path<String>) -> ApiResult {
    let g = id(&g, "eduGroup")?;
    Ok(json_ok(st.with(|w| wire::final_marks(w, g))?))
}

/// `from` and `to` are required; `subject` is optional (all subjects without it).
async fn log_entries(State(st): State<EmulatorState>, Path(g): Path<String>, raw: RawQuery) -> ApiResult {
    let g = id(&g, "eduGroup")?;
    let q = query(&raw);
    let from = date(q.get("from").map(String::as_str).unwrap_or(""), "from")?;
    let to = date(q.get("to").map(String::as_str).unwrap_or(""), "to")?;
    let subject = match q.get("subject").filter(|v| !v.is_empty()) {
        Some(v) => Some(id(v, "subject")?),
        None => None,
    };
    Ok(json_ok(st.with(|w| wire::log_entries(w, g, subject, from, to))?))
}

async fn log_statuses() -> Response {
    json_ok(wire::log_statuses())
}

async fn mark_values() -> Response {
    json_ok(wire::mark_values())
}

async fn lessons_many(State(st): State<EmulatorState>, body: Bytes) -> ApiResult {
    let ids = wire::batch_ids(&body, "lessons")?;
    Ok(json_ok(st.with(|w| wire::lessons_many(w, &ids))))
}

async fn works_many(State(st): State<EmulatorState>, body: Bytes) -> ApiResult {
    let ids = wire::batch_ids(&body, "works")?;
    Ok(json_ok(st.with(|w| wire::works_many(w, &ids))))
}
