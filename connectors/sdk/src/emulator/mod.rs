//! # The emulator scaffold
//!
//! What every API emulator (Dnevnik, ЭПОС.Школа, КИАСУО, «Моя школа») has in common, in one
//! place: the [`Gate`] state in front of the API (request counting, the per-token request
//! limit, the injected failures), the failure switches themselves ([`FailureMode`],
//! [`broken_answer`]: a cut body, a truncated transfer, or the system's own refusal), the
//! readers of credentials ([`header`], [`cookie`], [`query_value`], [`bearer`],
//! [`same_secret`]), the control surface under `/__emulator` ([`control_routes`]: `advance`,
//! `truth`, `fail`, `limit`, `stats`), the `Date` stamp on every answer, and the server's
//! start and stop on loopback ([`Running`]).
//!
//! Each system supplies only its own parts through [`Emulator`]: its handlers, the order of
//! its gate's checks, its token semantics, and its wire-level answers — error bodies, header
//! names, the request-limit answer, the HTML error page — which SOURCES.md says differ from
//! system to system. Nothing here knows a system's paths or texts.
//!
//! The shared part of the МЭШ platform (ЭПОС.Школа and «Моя школа») is [`mesh`].

mod control;
pub mod mesh;
mod request;

use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, DATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{NaiveDate, NaiveDateTime};
use futures::StreamExt as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::synth::World;

pub use control::{control_routes, ControlError, Params};
pub use request::{bearer, cookie, header, query_value, same_secret};

/// The content type of every JSON answer of the emulators.
pub const JSON: &str = "application/json; charset=utf-8";

/// The world an emulator serves, as the scaffold reads and moves it.
pub trait ServedWorld: Clone + Send + Sync + 'static {
    /// Reads the world.
    fn read<R>(&self, f: impl FnOnce(&World) -> R) -> R;

    /// Moves the world `days` school days on → (today, last change seq); blocking.
    fn advance(&self, days: u32) -> (NaiveDate, u64);
}

impl ServedWorld for crate::synth::WorldCell {
    fn read<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        crate::synth::WorldCell::read(self, f)
    }

    fn advance(&self, days: u32) -> (NaiveDate, u64) {
        crate::synth::WorldCell::advance(self, days)
    }
}

/// What a system supplies to the scaffold: its state (cheap to clone), its world, its
/// counters and its own answers.
pub trait Emulator: Clone + Send + Sync + 'static {
    /// What `/__emulator/stats` answers.
    type Stats: Serialize;
    /// The world served, with the system's own indexes.
    type Served: ServedWorld;

    /// Where the API sits under the server's root (`v2/`; empty: at the root).
    const BASE_PATH: &'static str = "";

    /// The gate state in front of the system's API.
    fn gate(&self) -> &Gate;

    /// The world served.
    fn served(&self) -> &Self::Served;

    /// The counters `/__emulator/stats` answers.
    fn stats(&self) -> Self::Stats;

    /// The names `fail?mode=` takes and the failure each stands for (`off` is always taken).
    fn failure_modes(&self) -> &'static [(&'static str, FailureMode)];

    /// The system's answer to a bad control request.
    fn control_error(&self, error: ControlError<'_>) -> Response;

    /// The emulator's clock: the `Date` header of every answer.
    fn date_header(&self) -> HeaderValue;

    /// Fields `/__emulator/truth` adds to `{today, last_seq, counts, changes}`.
    fn truth_extra(&self, _world: &World) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

/// How the next API answers are broken (`/__emulator/fail?mode=…`). Each system says which
/// it takes ([`Emulator::failure_modes`]) and answers the refusals in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// HTTP 200 JSON whose body is the real answer cut in the middle plus garbage: never
    /// valid JSON.
    Malformed,
    /// HTTP 502 `text/html`: the front proxy's error page (each system's own page).
    Html502,
    /// HTTP 200 whose `Content-Length` promises the whole answer; half of it comes, then
    /// the connection is aborted.
    Truncated,
    /// HTTP 401 as if the token had been refused (the system's body).
    Unauthorized,
    /// The system's answer to an expired token.
    Expired,
}

impl FailureMode {
    /// `malformed`, `html502`, `truncated`, `unauthorized`.
    pub const BASIC: &'static [(&'static str, FailureMode)] = &[
        ("malformed", FailureMode::Malformed),
        ("html502", FailureMode::Html502),
        ("truncated", FailureMode::Truncated),
        ("unauthorized", FailureMode::Unauthorized),
    ];

    /// The [`BASIC`](FailureMode::BASIC) four and `expired`.
    pub const WITH_EXPIRED: &'static [(&'static str, FailureMode)] = &[
        ("malformed", FailureMode::Malformed),
        ("html502", FailureMode::Html502),
        ("truncated", FailureMode::Truncated),
        ("unauthorized", FailureMode::Unauthorized),
        ("expired", FailureMode::Expired),
    ];

    /// `Some(None)` for `off`, `Some(Some(mode))` for a name in `names`, `None` otherwise.
    pub fn parse(names: &[(&str, FailureMode)], s: &str) -> Option<Option<FailureMode>> {
        if s == "off" {
            return Some(None);
        }
        names.iter().find(|(name, _)| *name == s).map(|(_, mode)| Some(*mode))
    }
}

/// The failure injection in force.
#[derive(Debug, Default)]
struct FailState {
    mode: Option<FailureMode>,
    /// API answers still to break; `None` = until `mode=off`
    remaining: Option<u64>,
}

impl FailState {
    /// The failure for the next API answer, counting it down.
    fn take(&mut self) -> Option<FailureMode> {
        let mode = self.mode?;
        match self.remaining.as_mut() {
            None => Some(mode),
            Some(0) => {
                self.mode = None;
                None
            }
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.mode = None;
                    self.remaining = None;
                }
                Some(mode)
            }
        }
    }
}

type Limiter = DefaultKeyedRateLimiter<String>;

fn make_limiter(rps: Option<u32>) -> Option<Arc<Limiter>> {
    let rps = NonZeroU32::new(rps?)?;
    Some(Arc::new(RateLimiter::keyed(Quota::per_second(rps))))
}

/// What stands in front of every API answer, whatever the system: the request counters,
/// the per-key request limit (a token bucket of `R` requests per second, burst `R`) and the
/// injected failures.
#[derive(Debug, Default)]
pub struct Gate {
    limiter: RwLock<Option<Arc<Limiter>>>,
    fail: Mutex<FailState>,
    requests: AtomicU64,
    limited: AtomicU64,
    failed: AtomicU64,
}

/// The gate's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GateCounts {
    /// Every request to an API route, refused ones included
    pub requests: u64,
    /// Answered with the request-limit error
    pub limited: u64,
    /// Broken on purpose by a failure mode
    pub failed: u64,
}

impl Gate {
    /// A gate with `rps` requests per second per key (`None` or 0: no limit).
    pub fn new(rps: Option<u32>) -> Self {
        Gate { limiter: RwLock::new(make_limiter(rps)), ..Gate::default() }
    }

    /// Counts an API request (call first, for every request, refused ones too).
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the request limit refuses a request made with `key` now (counted as limited).
    pub fn over_limit(&self, key: &str) -> bool {
        let limiter = self.limiter.read().unwrap_or_else(|e| e.into_inner()).clone();
        let over = limiter.is_some_and(|l| l.check_key(&key.to_string()).is_err());
        if over {
            self.limited.fetch_add(1, Ordering::Relaxed);
        }
        over
    }

    /// Sets the per-key request limit (`None` or 0: off); the buckets start full.
    pub fn set_request_limit(&self, rps: Option<u32>) {
        *self.limiter.write().unwrap_or_else(|e| e.into_inner()) = make_limiter(rps);
    }

    /// Breaks the next `count` API answers (all of them when `None`) that way; `None` mode
    /// turns failures off.
    pub fn set_failure(&self, mode: Option<FailureMode>, count: Option<u64>) {
        *self.fail.lock().unwrap_or_else(|e| e.into_inner()) = FailState { mode, remaining: mode.and(count) };
    }

    /// The failure due for this API answer, if any (counted as failed).
    pub fn take_failure(&self) -> Option<FailureMode> {
        let mode = self.fail.lock().unwrap_or_else(|e| e.into_inner()).take();
        if mode.is_some() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        mode
    }

    pub fn counts(&self) -> GateCounts {
        GateCounts {
            requests: self.requests.load(Ordering::Relaxed),
            limited: self.limited.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// The answer to an API request broken by `mode`: `Malformed` and `Truncated` run the
/// handler and break its answer; the others are the system's `refusal` (its HTML page, its
/// token errors), without running the handler.
pub async fn broken_answer(
    mode: FailureMode,
    req: Request,
    next: Next,
    refusal: impl FnOnce(FailureMode) -> Response,
) -> Response {
    match mode {
        FailureMode::Malformed => {
            let body = full_body(next.run(req).await).await;
            let mut broken = body[..body.len() / 2].to_vec();
            // No bracket or quote: the document can never be closed by the garbage.
            broken.extend_from_slice(b"\xef\xbf\xbd<<garbage after a cut>>");
            (StatusCode::OK, [(CONTENT_TYPE, JSON)], broken).into_response()
        }
        FailureMode::Truncated => truncated(full_body(next.run(req).await).await),
        other => refusal(other),
    }
}

/// The whole body of an answer.
pub async fn full_body(resp: Response) -> Bytes {
    axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap_or_default()
}

/// A 200 that promises `body.len()` bytes, sends half, then aborts the connection: the body
/// stream yields an error, on which hyper drops the connection without completing the message.
fn truncated(body: Bytes) -> Response {
    let full = body.len();
    let part = body.slice(..full / 2);
    let stream = futures::stream::iter([Ok::<Bytes, io::Error>(part)]).chain(futures::stream::once(async {
        // Let the first half reach the socket before the abort.
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(io::Error::new(io::ErrorKind::ConnectionAborted, "emulated truncated answer"))
    }));
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(full));
    resp
}

/// A 200 JSON answer from ready bytes.
pub fn json_bytes(body: Vec<u8>) -> Response {
    ([(CONTENT_TYPE, JSON)], body).into_response()
}

/// A JSON answer with a status.
pub fn json_status(status: StatusCode, value: &serde_json::Value) -> Response {
    (status, [(CONTENT_TYPE, JSON)], value.to_string()).into_response()
}

/// A 200 JSON answer.
pub fn json_ok(value: &serde_json::Value) -> Response {
    json_bytes(serde_json::to_vec(value).expect("JSON serializes"))
}

/// `at` (UTC) as an HTTP date header (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(at: NaiveDateTime) -> HeaderValue {
    HeaderValue::from_str(&at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()).expect("an HTTP date is a header value")
}

async fn stamp_date<S: Emulator>(State(st): State<S>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(DATE, st.date_header());
    resp
}

/// The whole app of an emulator: the system's `app` (its API routes, gated, and its
/// fallback), the shared control routes plus the system's `control` under `/__emulator`, and
/// the `Date` stamp on every answer.
pub fn app<S: Emulator>(state: S, app: Router<S>, control: Router<S>) -> Router {
    app.nest("/__emulator", control_routes::<S>().merge(control))
        .layer(middleware::from_fn_with_state(state.clone(), stamp_date::<S>))
        .with_state(state)
}

/// A running emulator: its state, and its server on a socket until [`Running::shutdown`].
#[derive(Debug)]
pub struct Running<S> {
    /// Where it listens.
    pub addr: SocketAddr,
    state: S,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl<S: Emulator> Running<S> {
    /// Binds `addr` (port 0: any free port) and serves `app` over `state` in a spawned task
    /// (`TCP_NODELAY` on every connection).
    pub async fn start(state: S, app: Router, addr: SocketAddr) -> io::Result<Running<S>> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Running { addr, state, stop, task })
    }

    /// `http://ADDR/` and the API's path ([`Emulator::BASE_PATH`]).
    pub fn base_url(&self) -> String {
        format!("http://{}/{}", self.addr, S::BASE_PATH)
    }

    /// `http://ADDR/` (the control surface lives at `__emulator/…` under it).
    pub fn root_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The world served; change it only through its `update` / `advance`.
    pub fn world(&self) -> S::Served {
        self.state.served().clone()
    }

    pub fn state(&self) -> &S {
        &self.state
    }

    pub fn stats(&self) -> S::Stats {
        self.state.stats()
    }

    /// Stops accepting, lets answers in flight finish (5 s at most), and stops. Dropping the
    /// handle instead leaves the server running until the runtime ends.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_count_runs_down() {
        let mut f = FailState { mode: Some(FailureMode::Html502), remaining: Some(2) };
        assert_eq!(f.take(), Some(FailureMode::Html502));
        assert_eq!(f.take(), Some(FailureMode::Html502));
        assert_eq!(f.take(), None);
        let mut f = FailState { mode: Some(FailureMode::Malformed), remaining: None };
        for _ in 0..5 {
            assert_eq!(f.take(), Some(FailureMode::Malformed));
        }
        let mut f = FailState { mode: Some(FailureMode::Malformed), remaining: Some(0) };
        assert_eq!(f.take(), None);
    }

    #[test]
    fn the_gate_counts_failures_and_limits() {
        let gate = Gate::new(Some(1));
        assert!(!gate.over_limit("a"));
        assert!(gate.over_limit("a"));
        assert!(!gate.over_limit("b"));
        gate.set_failure(Some(FailureMode::Expired), Some(1));
        assert_eq!(gate.take_failure(), Some(FailureMode::Expired));
        assert_eq!(gate.take_failure(), None);
        gate.count_request();
        assert_eq!(gate.counts(), GateCounts { requests: 1, limited: 1, failed: 1 });
        gate.set_request_limit(Some(0));
        assert!(!gate.over_limit("a"));
    }

    #[test]
    fn modes_parse_by_the_system_names() {
        let names = [("unauthorized", FailureMode::Unauthorized), ("expired", FailureMode::Unauthorized)];
        assert_eq!(FailureMode::parse(&names, "expired"), Some(Some(FailureMode::Unauthorized)));
        assert_eq!(FailureMode::parse(&names, "off"), Some(None));
        assert_eq!(FailureMode::parse(&names, "html502"), None);
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        let at = NaiveDate::from_ymd_opt(2025, 9, 1).unwrap().and_hms_opt(12, 0, 0).unwrap();
        assert_eq!(http_date(at), "Mon, 01 Sep 2025 12:00:00 GMT");
    }
}
