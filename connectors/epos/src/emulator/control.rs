//! ЭПОС.Школа's own control routes (`/__emulator/…`, no token), next to the shared ones
//! (`advance`, `truth`, `fail`, `limit`, `stats`): the token's life.

use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use ejgate_sdk::emulator::{Emulator, Params};
use serde_json::json;

use super::gate::json_ok;
use super::EmulatorState;

pub(crate) fn routes() -> Router<EmulatorState> {
    Router::new().route("/token", get(token).post(token))
}

/// `token?ttl=SECS` (0 = forever): restarts the token's life.
async fn token(State(st): State<EmulatorState>, raw: RawQuery) -> Response {
    let ttl: u64 = match Params::from(raw).number("ttl") {
        Ok(ttl) => ttl.unwrap_or(0),
        Err(e) => return st.control_error(e),
    };
    st.set_token_ttl((ttl > 0).then(|| Duration::from_secs(ttl)));
    json_ok(&json!({"ttl": ttl}))
}
