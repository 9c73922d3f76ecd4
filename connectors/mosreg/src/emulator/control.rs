//! The control surface (`/__emulator/…`, no token): move the world, read its truth, break
//! answers, change the request limit and the token's life, read the counters.

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

use super::gate::{json_ok, FailureMode};
use super::EmulatorState;

pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/advance", get(advance).post(advance))
        .route("/truth", get(truth).post(truth))
        .route("/fail", get(fail).post(fail))
        .route("/limit", get(limit).post(limit))
        .route("/token", get(token).post(token))
        .route("/stats", get(stats).post(stats))
}

fn bad(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": message}))).into_response()
}

fn param(raw: &RawQuery, name: &str) -> Option<String> {
    let q = raw.0.as_deref()?;
    url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn number<T: std::str::FromStr>(raw: &RawQuery, name: &str) -> Result<Option<T>, Response> {
    match param(raw, name) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| bad(&format!("bad parameter {name}"))),
    }
}

/// `advance?days=N` (1 by default) → `{today, last_seq}`.
async fn advance(State(st): State<EmulatorState>, raw: RawQuery) -> Result<Response, Response> {
    let days: u32 = number(&raw, "days")?.unwrap_or(1);
    let cell = st.world();
    let (today, last_seq) = tokio::task::spawn_blocking(move || cell.advance(days))
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())?;
    Ok(json_ok(&json!({"today": today.format("%Y-%m-%d").to_string(), "last_seq": last_seq})))
}

#[derive(Serialize)]
struct Truth {
    today: String,
    last_seq: u64,
    counts: BTreeMap<EntityKind, u64>,
    /// What a complete «Моя школа» sync holds (the kinds the API exposes).
    exposed_counts: BTreeMap<EntityKind, u64>,
    changes: Vec<NetChange>,
}

/// `truth[?since=SEQ]` → `{today, last_seq, counts, exposed_counts, changes}`.
async fn truth(State(st): State<EmulatorState>, raw: RawQuery) -> Result<Response, Response> {
    let since: u64 = number(&raw, "since")?.unwrap_or(0);
    let truth = st.world().read(|w| Truth {
        today: w.today.format("%Y-%m-%d").to_string(),
        last_seq: w.last_seq(),
        counts: w.counts(),
        exposed_counts: crate::truth::TRUTH.expected_counts(w),
        changes: w.net_changes_since(since),
    });
    Ok(axum::Json(truth).into_response())
}

/// `fail?mode=malformed|html502|truncated|unauthorized|off[&count=N]`.
async fn fail(State(st): State<EmulatorState>, raw: RawQuery) -> Result<Response, Response> {
    let mode = param(&raw, "mode").and_then(|m| FailureMode::parse(&m)).ok_or_else(|| bad("bad parameter mode"))?;
    let count: Option<u64> = number(&raw, "count")?;
    st.set_failure(mode, count);
    let name = mode.map(|m| serde_json::to_value(m).expect("a mode serializes")).unwrap_or(json!("off"));
    Ok(json_ok(&json!({"mode": name, "count": count})))
}

/// `limit?rps=R` (0 = off).
async fn limit(State(st): State<EmulatorState>, raw: RawQuery) -> Result<Response, Response> {
    let rps: u32 = number(&raw, "rps")?.ok_or_else(|| bad("rps is required"))?;
    st.set_request_limit(Some(rps));
    Ok(json_ok(&json!({"rps": rps})))
}

/// `token?action=expire|renew|refuse_refresh|allow_refresh` and/or `requests=N` (tokens
/// expire after N API requests; 0 = never).
async fn token(State(st): State<EmulatorState>, raw: RawQuery) -> Result<Response, Response> {
    let action = param(&raw, "action");
    match action.as_deref() {
        None => {}
        Some("expire") => st.expire_tokens(),
        Some("renew") => st.renew_token(),
        Some("refuse_refresh") => st.set_refresh_allowed(false),
        Some("allow_refresh") => st.set_refresh_allowed(true),
        Some(_) => return Err(bad("bad parameter action")),
    }
    let requests: Option<u64> = number(&raw, "requests")?;
    if let Some(n) = requests {
        st.set_token_requests((n > 0).then_some(n));
    }
    Ok(json_ok(&json!({"action": action, "requests": requests})))
}

/// `stats` → `{requests, limited, failed, refreshed, refused_refreshes}`.
async fn stats(State(st): State<EmulatorState>) -> Response {
    axum::Json(st.stats()).into_response()
}
