//! «Моя школа»'s own control routes (`/__emulator/…`, no token), next to the shared ones
//! (`advance`, `truth`, `fail`, `limit`, `stats`): the token's life and the refresh.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use ejgate_sdk::emulator::{ControlError, Emulator, Params};
use serde_json::json;

use super::gate::json_ok;
use super::EmulatorState;

pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new().route("/token", get(token).post(token))
}

/// `token?action=expire|renew|refuse_refresh|allow_refresh` and/or `requests=N` (tokens
/// expire after N API requests; 0 = never).
async fn token(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let params = Params::from(raw);
    let action = params.get("action");
    match action.as_deref() {
        None => {}
        Some("expire") => st.expire_tokens(),
        Some("renew") => st.renew_token(),
        Some("refuse_refresh") => st.set_refresh_allowed(false),
        Some("allow_refresh") => st.set_refresh_allowed(true),
        Some(_) => return st.control_error(ControlError::Invalid("action")),
    }
    let requests: Option<u64> = match params.number("requests") {
        Ok(n) => n,
        Err(e) => return st.control_error(e),
    };
    if let Some(n) = requests {
        st.set_token_requests((n > 0).then_some(n));
    }
    json_ok(&json!({"action": action, "requests": requests}))
}
