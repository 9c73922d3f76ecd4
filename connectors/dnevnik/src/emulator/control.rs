//! The control surface (`/__emulator/…`, no token): move the world, read its truth, break
//! answers, change the request limit, read the counters.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::NetChange;
use serde::Serialize;
use serde_json::json;

use super::dates::Day;
use super::gate::{json_ok, FailureMode};
use super::wire::ApiError;
use super::EmulatorState;

pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/advance", get(advance).post(advance))
        .route("/truth", get(truth).post(truth))
        .route("/fail", get(fail).post(fail))
        .route("/limit", get(limit).post(limit))
        .route("/stats", get(stats).post(stats))
        .route("/hold", get(hold).post(hold))
}

fn param(raw: &RawQuery, name: &str) -> Option<String> {
    let q = raw.0.as_deref()?;
    url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn number<T: std::str::FromStr>(raw: &RawQuery, name: &str) -> Result<Option<T>, ApiError> {
    match param(raw, name) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| ApiError::parameter(name)),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "apiServerError", e.to_string())
}

/// `advance?days=N` (1 by default) → `{today, last_seq}`; blocks API answers meanwhile.
async fn advance(State(st): State<EmulatorState>, raw: RawQuery) -> Result<Response, ApiError> {
    let days: u32 = number(&raw, "days")?.unwrap_or(1);
    let cell = st.world();
    let (today, last_seq) = tokio::task::spawn_blocking(move || cell.advance(days)).await.map_err(internal)?;
    Ok(json_ok(serde_json::to_vec(&json!({"today": Day(today), "last_seq": last_seq})).map_err(internal)?))
}

#[derive(Serialize)]
struct Truth {
    today: Day,
    last_seq: u64,
    counts: BTreeMap<EntityKind, u64>,
    changes: Vec<NetChange>,
}

/// `truth[?since=SEQ]` → `{today, last_seq, counts, changes}`.
async fn truth(State(st): State<EmulatorState>, raw: RawQuery) -> Result<Response, ApiError> {
    let since: u64 = number(&raw, "since")?.unwrap_or(0);
    let cell = st.world();
    let body = tokio::task::spawn_blocking(move || {
        let truth = cell.read(|w| Truth {
            today: Day(w.today),
            last_seq: w.last_seq(),
            counts: w.counts(),
            changes: w.net_changes_since(since),
        });
        serde_json::to_vec(&truth)
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    Ok(json_ok(body))
}

/// `fail?mode=malformed|html502|truncated|unauthorized|off[&count=N]`.
async fn fail(State(st): State<EmulatorState>, raw: RawQuery) -> Result<Response, ApiError> {
    let mode = param(&raw, "mode").and_then(|m| FailureMode::parse(&m)).ok_or_else(|| ApiError::parameter("mode"))?;
    let count: Option<u64> = number(&raw, "count")?;
    st.set_failure(mode, count);
    let mode_name = mode.map(|m| serde_json::to_value(m).expect("a mode serializes"));
    Ok(json_ok(
        serde_json::to_vec(&json!({"mode": mode_name.unwrap_or(json!("off")), "count": count})).map_err(internal)?,
    ))
}

/// `limit?rps=R` (0 = off).
async fn limit(State(st): State<EmulatorState>, raw: RawQuery) -> Result<Response, ApiError> {
    let rps: u32 = number(&raw, "rps")?.ok_or_else(|| ApiError::parameter("rps"))?;
    st.set_request_limit(Some(rps));
    Ok(json_ok(serde_json::to_vec(&json!({"rps": rps})).map_err(internal)?))
}

/// `hold?after=N` holds every API request after the next N open, unanswered;
/// `hold?mode=off` releases them and holds no more.
async fn hold(State(st): State<EmulatorState>, raw: RawQuery) -> Result<Response, ApiError> {
    let after: Option<u64> = number(&raw, "after")?;
    let off = param(&raw, "mode").as_deref() == Some("off");
    if after.is_none() && !off {
        return Err(ApiError::parameter("after"));
    }
    st.set_hold_after(if off { None } else { after });
    Ok(json_ok(serde_json::to_vec(&json!({"after": if off { None } else { after }})).map_err(internal)?))
}

/// `stats` → `{requests, limited, failed, held}`.
async fn stats(State(st): State<EmulatorState>) -> Response {
    axum::Json(st.stats()).into_response()
}
