//! Dnevnik's own control route (`/__emulator/…`, no token), next to the shared ones
//! (`advance`, `truth`, `fail`, `limit`, `stats`): holding requests open.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use ejgate_sdk::emulator::{json_ok, ControlError, Emulator, Params};
use serde_json::json;

use super::EmulatorState;

pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new().route("/hold", get(hold).post(hold))
}

/// `hold?after=N` holds every API request after the next N open, unanswered;
/// `hold?mode=off` releases them and holds no more.
async fn hold(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let params = Params::from(raw);
    let after: Option<u64> = match params.number("after") {
        Ok(after) => after,
        Err(e) => return st.control_error(e),
    };
    let off = params.get("mode").as_deref() == Some("off");
    if after.is_none() && !off {
        return st.control_error(ControlError::Invalid("after"));
    }
    st.set_hold_after(if off { None } else { after });
    json_ok(&json!({"after": if off { None } else { after }}))
}
