//! The control surface every emulator shares (`/__emulator/…`, no token): move the world,
//! read its truth, break answers, change the request limit, read the counters. A system adds
//! its own routes (token life, holds, sign-in) next to these.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::json;

use super::{json_bytes, Emulator, FailureMode, ServedWorld};
use crate::model::EntityKind;
use crate::synth::NetChange;

/// A control request the emulator cannot carry out; each system words the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError<'a> {
    /// The parameter is there but not what it should be.
    Invalid(&'a str),
    /// The parameter is required and missing.
    Missing(&'a str),
    /// The world could not be read or moved.
    Internal(String),
}

/// The query of a control request.
#[derive(Debug, Clone, Default)]
pub struct Params(Option<String>);

impl From<RawQuery> for Params {
    fn from(raw: RawQuery) -> Self {
        Params(raw.0)
    }
}

impl Params {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        let q = self.0.as_deref()?;
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// `name` as a number, when given.
    pub fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>, ControlError<'static>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| ControlError::Invalid(name)),
        }
    }
}

/// `advance`, `truth`, `fail`, `limit` and `stats`, GET or POST.
pub fn control_routes<S: Emulator>() -> Router<S> {
    Router::new()
        .route("/advance", get(advance::<S>).post(advance::<S>))
        .route("/truth", get(truth::<S>).post(truth::<S>))
        .route("/fail", get(fail::<S>).post(fail::<S>))
        .route("/limit", get(limit::<S>).post(limit::<S>))
        .route("/stats", get(stats::<S>).post(stats::<S>))
}

fn ymd(d: chrono::NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn json_answer(value: &impl Serialize) -> Result<Response, ControlError<'static>> {
    serde_json::to_vec(value).map(json_bytes).map_err(|e| ControlError::Internal(e.to_string()))
}

/// `advance?days=N` (1 by default) → `{today, last_seq}`; API answers wait meanwhile.
async fn advance<S: Emulator>(State(st): State<S>, raw: RawQuery) -> Response {
    let run = async {
        let days: u32 = Params::from(raw).number("days")?.unwrap_or(1);
        let moved = st.clone();
        let (today, last_seq) = tokio::task::spawn_blocking(move || moved.served().advance(days))
            .await
            .map_err(|e| ControlError::Internal(e.to_string()))?;
        json_answer(&json!({"today": ymd(today), "last_seq": last_seq}))
    };
    run.await.unwrap_or_else(|e| st.control_error(e))
}

#[derive(Serialize)]
struct Truth {
    today: String,
    last_seq: u64,
    counts: BTreeMap<EntityKind, u64>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
    changes: Vec<NetChange>,
}

/// `truth[?since=SEQ]` → `{today, last_seq, counts, changes}` and the system's extra fields.
async fn truth<S: Emulator>(State(st): State<S>, raw: RawQuery) -> Response {
    let run = async {
        let since: u64 = Params::from(raw).number("since")?.unwrap_or(0);
        let reader = st.clone();
        tokio::task::spawn_blocking(move || {
            let truth = reader.served().read(|w| Truth {
                today: ymd(w.today),
                last_seq: w.last_seq(),
                counts: w.counts(),
                extra: reader.truth_extra(w),
                changes: w.net_changes_since(since),
            });
            json_answer(&truth)
        })
        .await
        .map_err(|e| ControlError::Internal(e.to_string()))?
    };
    run.await.unwrap_or_else(|e| st.control_error(e))
}

/// `fail?mode=NAME|off[&count=N]` → `{mode, count}`.
async fn fail<S: Emulator>(State(st): State<S>, raw: RawQuery) -> Response {
    let run = || {
        let params = Params::from(raw);
        let mode = params
            .get("mode")
            .and_then(|m| FailureMode::parse(st.failure_modes(), &m))
            .ok_or(ControlError::Invalid("mode"))?;
        let count: Option<u64> = params.number("count")?;
        st.gate().set_failure(mode, count);
        let name = mode.map(|m| serde_json::to_value(m).expect("a mode serializes")).unwrap_or(json!("off"));
        json_answer(&json!({"mode": name, "count": count}))
    };
    run().unwrap_or_else(|e| st.control_error(e))
}

/// `limit?rps=R` (0 = off) → `{rps}`.
async fn limit<S: Emulator>(State(st): State<S>, raw: RawQuery) -> Response {
    let run = || {
        let rps: u32 = Params::from(raw).number("rps")?.ok_or(ControlError::Missing("rps"))?;
        st.gate().set_request_limit(Some(rps));
        json_answer(&json!({"rps": rps}))
    };
    run().unwrap_or_else(|e| st.control_error(e))
}

/// `stats` → the system's counters.
async fn stats<S: Emulator>(State(st): State<S>) -> Response {
    axum::Json(st.stats()).into_response()
}
