//! The control surface (`/__emulator/…`, no token).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::{json_ok, msg, EmulatorState, FailureMode, Hold, RefreshHold};

pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/advance", get(advance).post(advance))
        .route("/truth", get(truth).post(truth))
        .route("/fail", get(fail).post(fail))
        .route("/limit", get(limit).post(limit))
        .route("/stats", get(stats).post(stats))
        .route("/login", get(login).post(login))
        .route("/hold", get(hold).post(hold))
        .route("/refresh_token", get(refresh_token).post(refresh_token))
}

fn param(raw: &RawQuery, name: &str) -> Option<String> {
    let q = raw.0.as_deref()?;
    url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn number<T: std::str::FromStr>(raw: &RawQuery, name: &str) -> Result<Option<T>, Response> {
    match param(raw, name) {
        None => Ok(None),
        Some(v) => {
            v.trim().parse().map(Some).map_err(|_| msg(StatusCode::BAD_REQUEST, &format!("bad parameter {name}")))
        }
    }
}

/// `advance?days=N` (1 by default) → `{today, last_seq}`.
async fn advance(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let days: u32 = match number(&raw, "days") {
        Ok(d) => d.unwrap_or(1),
        Err(r) => return r,
    };
    let cell = st.world();
    match tokio::task::spawn_blocking(move || cell.advance(days)).await {
        Ok((today, last_seq)) => json_ok(json!({"today": today, "last_seq": last_seq}).to_string().into_bytes()),
        Err(e) => msg(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `truth[?since=SEQ]` → `{today, last_seq, counts, expected, changes}`.
async fn truth(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let since: u64 = match number(&raw, "since") {
        Ok(s) => s.unwrap_or(0),
        Err(r) => return r,
    };
    let body = st.world().read(|w| {
        json!({
            "today": w.today,
            "last_seq": w.last_seq(),
            "counts": w.counts(),
            "expected": crate::truth::expected_counts(w),
            "changes": w.net_changes_since(since),
        })
        .to_string()
    });
    json_ok(body.into_bytes())
}

/// `fail?mode=malformed|html502|truncated|unauthorized|off[&count=N]`.
async fn fail(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let Some(mode) = param(&raw, "mode").and_then(|m| FailureMode::parse(&m)) else {
        return msg(StatusCode::BAD_REQUEST, "bad parameter mode");
    };
    let count: Option<u64> = match number(&raw, "count") {
        Ok(c) => c,
        Err(r) => return r,
    };
    st.set_failure(mode, count);
    let name = mode.map(|m| serde_json::to_value(m).expect("a mode serializes")).unwrap_or(json!("off"));
    json_ok(json!({"mode": name, "count": count}).to_string().into_bytes())
}

/// `limit?rps=R` (0 = off).
async fn limit(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    match number::<u32>(&raw, "rps") {
        Ok(Some(rps)) => {
            st.set_request_limit(Some(rps));
            json_ok(json!({ "rps": rps }).to_string().into_bytes())
        }
        Ok(None) => msg(StatusCode::BAD_REQUEST, "bad parameter rps"),
        Err(r) => r,
    }
}

async fn stats(State(st): State<EmulatorState>) -> Response {
    axum::Json(st.stats()).into_response()
}

/// `login` → `{"refreshToken": …}`: what a person gets after signing in through Госуслуги.
async fn login(State(st): State<EmulatorState>) -> Response {
    json_ok(json!({ "refreshToken": st.login() }).to_string().into_bytes())
}

/// `hold?mode=first-use|all|refresh|refresh-answer|drop-refresh|off` → `{mode, held, held_now,
/// refresh_held, refresh_held_now}`: hold the first use of every access token, or every API
/// request, or every refresh before it rotates anything, or after the rotation before its
/// answer (the request stays open, unanswered); `drop-refresh` ends the refreshes held
/// before the rotation with a 502, changing nothing; `off` releases everything held.
async fn hold(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let mode = param(&raw, "mode");
    match mode.as_deref() {
        Some("first-use") => st.set_hold(Hold::FirstUse),
        Some("all") => st.set_hold(Hold::All),
        Some("refresh") => st.set_refresh_hold(RefreshHold::Before),
        Some("refresh-answer") => st.set_refresh_hold(RefreshHold::Answer),
        Some("drop-refresh") => st.set_refresh_hold(RefreshHold::Drop),
        Some("off") => {
            st.set_hold(Hold::Off);
            st.set_refresh_hold(RefreshHold::Off);
        }
        _ => {
            return msg(StatusCode::BAD_REQUEST, "bad parameter mode (first-use, all, refresh, refresh-answer or off)")
        }
    }
    let stats = st.stats();
    json_ok(
        json!({
            "mode": mode,
            "held": stats.held,
            "held_now": stats.held_now,
            "refresh_held": stats.refresh_held,
            "refresh_held_now": stats.refresh_held_now,
        })
        .to_string()
        .into_bytes(),
    )
}

/// `refresh_token` → `{refreshToken}`: the refresh token the source accepts now (tests
/// compare it with the one the client stored), `null` when the session was revoked.
async fn refresh_token(State(st): State<EmulatorState>) -> Response {
    json_ok(json!({ "refreshToken": st.current_refresh_token() }).to_string().into_bytes())
}
