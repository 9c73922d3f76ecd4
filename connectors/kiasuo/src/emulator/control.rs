//! КИАСУО's own control routes (`/__emulator/…`, no token), next to the shared ones
//! (`advance`, `truth`, `fail`, `limit`, `stats`): sign-in, holds, the refresh token in force.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use ejgate_sdk::emulator::Params;
use serde_json::json;

use super::{json_ok, msg, EmulatorState, Hold, RefreshHold};

pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new()
        .route("/login", get(login).post(login))
        .route("/hold", get(hold).post(hold))
        .route("/refresh_token", get(refresh_token).post(refresh_token))
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
    let mode = Params::from(raw).get("mode");
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
