//! # КИАСУО diary API emulator
//!
//! An HTTP server on loopback that serves a synthetic [`World`] through the КИАСУО diary API
//! as `connectors/kiasuo/API.md` describes it (the contract; `SOURCES.md`, КИАСУО section,
//! is the fact base under it). Same structure as the Dnevnik emulator: options, shared
//! state, a gate in front of every API answer, the answers (`handlers.rs`), and the control
//! surface under `/__emulator`.
//!
//! ## What is faithful (from the public material)
//!
//! - Paths `/diary/api/…` and the refresh at `/diary/refresh` (form `refresh-token=<rt>` or
//!   JSON `{"refresh-token": rt}`) → `{accessToken, refreshToken}`; `Authorization: Bearer`
//!   with a JWT-looking access token carrying `exp`; a 32-hex refresh token that rotates (an
//!   old one is refused after use).
//! - Errors as `{"msg": "..."}`; an HTML page for a proxy's 502.
//! - Every call takes `?id=<child id>`; field names of `user`, `study_periods`,
//!   `lesson_marks` (`slots`, or the older `marks` with [`EmulatorOptions::legacy_marks`]),
//!   `schedule`, `school_classes`, `student_marks`; attendance as mark values «Н», «Б», «У».
//! - Ids above 2^53: children, lessons and marks as JSON numbers, classes as strings.
//!
//! ## What is assumed (API.md marks these too)
//!
//! - The operator's account is a "parent" whose children are every pupil of every school of
//!   the world ([`Account`]: a parent with given children and a pupil's own account are
//!   served too; a pupil's names are at the top level of `user`); with
//!   [`EmulatorOptions::assumed_fields`] (on by default) `children[].school_class_id`
//!   carries the class id and a slot of `lesson_marks` carries `id` (the mark) and
//!   `lesson_event_id` — off, slots are what the public clients show; `lesson_marks[].id`
//!   and `student_marks` `lessons[].id` are subject ids; a cancelled lesson has
//!   `"cancelled": true`; lateness is the value «О».
//! - Faithful: weights are decimal strings (`"1.0"`), averages `["4.57", 5]` pairs, the
//!   schedule's lessons carry the pupil's slots (marks and «Н», «Б», «У»), and the keys of
//!   `student_marks` are `standard_mark_type` ids (`{id, text, short_text, order_by}`), not
//!   period ids.
//! - A child sees the lessons of its class and of the groups of its class it is enrolled in
//!   ([`crate::truth::Visibility`]).
//! - Status codes: 401 for a missing, unknown, expired or revoked token and for a refused
//!   refresh; 404 for an unknown child or class; 429 for the request limit (a token bucket
//!   per access token).
//! - The clock (`Date` header) is the world's today at 13:00 UTC (20:00 in Krasnoyarsk).
//!
//! ## Control surface (no token)
//!
//! `/__emulator/advance?days=N`, `/__emulator/truth[?since=SEQ]`,
//! `/__emulator/fail?mode=malformed|html502|truncated|unauthorized|off[&count=N]`,
//! `/__emulator/limit?rps=R`, `/__emulator/stats`, `/__emulator/login` (a person signed
//! in through Госуслуги: a new refresh token, the old session ended), and
//! `/__emulator/hold?mode=first-use|off`. `unauthorized` answers 401 and revokes the session,
//! so the refresh that follows is refused too. `first-use` holds every API request that
//! carries an access token no answered request has carried yet: the request stays open,
//! unanswered, until `off` releases it (`stats` counts them in `held` and `held_now`). Tests
//! use it to stop a client between a refresh and the first use of the access token it
//! brought.

mod control;
mod handlers;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use ejgate_sdk::emulator::{broken_answer, http_date, same_secret, ControlError, Emulator, Gate, Running};
use ejgate_sdk::synth::World;
use serde::{Deserialize, Serialize};

pub use ejgate_sdk::emulator::FailureMode;

pub(crate) use ejgate_sdk::emulator::JSON;

/// How the emulator behaves.
#[derive(Clone)]
pub struct EmulatorOptions {
    /// The refresh token the operator starts with (32 hex characters).
    pub refresh_token: String,
    /// How long an access token lives (КИАСУО: about an hour).
    pub access_lifetime: Duration,
    /// Requests per second per access token (burst the same); `None` or 0: no limit.
    pub request_limit: Option<u32>,
    /// Serve `lesson_marks` and the schedule's slots in the older form (`marks` with bare
    /// string values).
    pub legacy_marks: bool,
    /// Whose token the operator holds.
    pub account: Account,
    /// Serve the fields API.md assumes and no public client shows: `id` and
    /// `lesson_event_id` on the slots of `lesson_marks`, `school_class_id` on children.
    /// `false`: only what the clients show.
    pub assumed_fields: bool,
}

/// Whose token it is: what `user` answers and which children the data calls may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// A "parent" whose children are every pupil of the world (README: the operator
    /// account a school sets up).
    Operator,
    /// A parent with these children (pupil ids).
    Parent(Vec<u64>),
    /// A pupil's own account.
    Pupil(u64),
}

impl Account {
    /// Whether the account may read the diary of `child`.
    pub fn reads(&self, child: u64) -> bool {
        match self {
            Account::Operator => true,
            Account::Parent(children) => children.contains(&child),
            Account::Pupil(id) => *id == child,
        }
    }
}

impl EmulatorOptions {
    pub fn new(refresh_token: impl Into<String>) -> Self {
        EmulatorOptions {
            refresh_token: refresh_token.into(),
            access_lifetime: Duration::from_secs(3600),
            request_limit: None,
            legacy_marks: false,
            account: Account::Operator,
            assumed_fields: true,
        }
    }
}

impl std::fmt::Debug for EmulatorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorOptions")
            .field("refresh_token", &"[REDACTED]")
            .field("access_lifetime", &self.access_lifetime)
            .field("request_limit", &self.request_limit)
            .field("legacy_marks", &self.legacy_marks)
            .field("account", &self.account)
            .field("assumed_fields", &self.assumed_fields)
            .finish()
    }
}

/// Requests seen (`/__emulator/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EmulatorStats {
    /// Every request to an API route, refused ones included
    pub requests: u64,
    /// Answered with the request-limit error
    pub limited: u64,
    /// Broken on purpose by a failure mode
    pub failed: u64,
    /// Refresh requests received (granted, refused or still held)
    #[serde(default)]
    pub refresh_requests: u64,
    /// Refreshes granted
    pub refreshes: u64,
    /// Refreshes refused (an old, revoked or unknown refresh token)
    pub refused_refreshes: u64,
    /// Data calls refused for an expired access token
    pub expired: u64,
    /// API requests held by `hold?mode=first-use|all` so far
    pub held: u64,
    /// API requests held right now (open, unanswered)
    pub held_now: u64,
    /// Refreshes held by `hold?mode=refresh|refresh-answer` so far
    #[serde(default)]
    pub refresh_held: u64,
    /// Refreshes held right now
    #[serde(default)]
    pub refresh_held_now: u64,
}

/// Which API requests are held open, unanswered (`/__emulator/hold?mode=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hold {
    #[default]
    Off,
    /// Every request carrying an access token no request has carried through yet
    FirstUse,
    /// Every API request
    All,
}

/// Where a refresh is held open (`/__emulator/hold?mode=refresh|refresh-answer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshHold {
    #[default]
    Off,
    /// Before the refresh token is looked at: nothing rotated yet
    Before,
    /// After the rotation, before the answer: the source holds a new refresh token the
    /// client has not received
    Answer,
    /// The refreshes held before the rotation end with a proxy's 502, having changed
    /// nothing (as if they never reached the source); none is held from now on
    Drop,
}

/// The world served, with the lookups that keep per-pupil answers cheap.
pub use ejgate_sdk::synth::WorldCell;

/// The emulator's clock: the world's today at 13:00 UTC, as an HTTP date.
fn date_header(world: &WorldCell) -> HeaderValue {
    http_date(world.read(|w| w.today).and_hms_opt(13, 0, 0).expect("a valid time"))
}

#[derive(Default)]
struct Session {
    /// The one valid refresh token (`None`: revoked until a person signs in again).
    refresh: Option<String>,
    /// access token → its state
    access: HashMap<String, Access>,
}

#[derive(Debug, Clone, Copy)]
struct Access {
    /// seconds since the epoch
    exp: u64,
    /// A request carrying it has passed the gate (the hold no longer applies to it).
    used: bool,
}

pub(crate) struct Inner {
    pub(crate) world: WorldCell,
    pub(crate) legacy_marks: bool,
    access_lifetime: Mutex<Duration>,
    session: Mutex<Session>,
    gate: Gate,
    refresh_requests: AtomicU64,
    refreshes: AtomicU64,
    refused: AtomicU64,
    expired: AtomicU64,
    counter: AtomicU64,
    hold: tokio::sync::watch::Sender<Hold>,
    held: AtomicU64,
    held_now: Arc<AtomicU64>,
    refresh_hold: tokio::sync::watch::Sender<RefreshHold>,
    refresh_held: AtomicU64,
    refresh_held_now: Arc<AtomicU64>,
    account: Account,
    assumed_fields: bool,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// The shared state of an emulator. Cheap to clone.
#[derive(Clone)]
pub struct EmulatorState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for EmulatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorState").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl EmulatorState {
    pub fn new(world: World, options: &EmulatorOptions) -> Self {
        EmulatorState {
            inner: Arc::new(Inner {
                world: WorldCell::new(world),
                legacy_marks: options.legacy_marks,
                access_lifetime: Mutex::new(options.access_lifetime),
                session: Mutex::new(Session { refresh: Some(options.refresh_token.clone()), access: HashMap::new() }),
                gate: Gate::new(options.request_limit),
                refresh_requests: AtomicU64::new(0),
                refreshes: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                expired: AtomicU64::new(0),
                counter: AtomicU64::new(1),
                hold: tokio::sync::watch::Sender::new(Hold::Off),
                held: AtomicU64::new(0),
                held_now: Arc::new(AtomicU64::new(0)),
                refresh_hold: tokio::sync::watch::Sender::new(RefreshHold::Off),
                refresh_held: AtomicU64::new(0),
                refresh_held_now: Arc::new(AtomicU64::new(0)),
                account: options.account.clone(),
                assumed_fields: options.assumed_fields,
            }),
        }
    }

    pub fn world(&self) -> WorldCell {
        self.inner.world.clone()
    }

    pub fn stats(&self) -> EmulatorStats {
        let i = &self.inner;
        let held_now = i.held_now.load(Ordering::SeqCst);
        let held = i.held.load(Ordering::SeqCst);
        let refresh_held_now = i.refresh_held_now.load(Ordering::SeqCst);
        let refresh_held = i.refresh_held.load(Ordering::SeqCst);
        let c = i.gate.counts();
        EmulatorStats {
            requests: c.requests,
            limited: c.limited,
            failed: c.failed,
            refresh_requests: i.refresh_requests.load(Ordering::SeqCst),
            refreshes: i.refreshes.load(Ordering::Relaxed),
            refused_refreshes: i.refused.load(Ordering::Relaxed),
            expired: i.expired.load(Ordering::Relaxed),
            held,
            held_now,
            refresh_held,
            refresh_held_now,
        }
    }

    /// Which API requests are held from now on (`Off` lets the held ones go on).
    pub fn set_hold(&self, hold: Hold) {
        self.inner.hold.send_replace(hold);
    }

    /// Where refreshes are held from now on (`Off` lets the held ones go on).
    pub fn set_refresh_hold(&self, hold: RefreshHold) {
        self.inner.refresh_hold.send_replace(hold);
    }

    /// The account the token belongs to.
    pub fn account(&self) -> &Account {
        &self.inner.account
    }

    /// Whether the fields API.md assumes are served.
    pub fn assumed_fields(&self) -> bool {
        self.inner.assumed_fields
    }

    /// `true`: from now on every API request carrying an access token that no request has
    /// carried through the gate yet is held open, unanswered; `false`: the held requests go
    /// on and nothing more is held.
    pub fn set_hold_first_use(&self, on: bool) {
        self.set_hold(if on { Hold::FirstUse } else { Hold::Off });
    }

    /// Whether first uses are being held.
    pub fn holds_first_use(&self) -> bool {
        *self.inner.hold.borrow() == Hold::FirstUse
    }

    /// Breaks the next `count` API answers (all when `None`); `None` mode: off.
    pub fn set_failure(&self, mode: Option<FailureMode>, count: Option<u64>) {
        self.inner.gate.set_failure(mode, count);
    }

    /// Sets the per-token request limit (`None` or 0: off).
    pub fn set_request_limit(&self, rps: Option<u32>) {
        self.inner.gate.set_request_limit(rps);
    }

    /// Sets the lifetime of access tokens issued from now on.
    pub fn set_access_lifetime(&self, lifetime: Duration) {
        *self.inner.access_lifetime.lock().unwrap_or_else(|e| e.into_inner()) = lifetime;
    }

    /// A person signed in through Госуслуги: a new refresh token; the old session (its
    /// refresh and access tokens) ends.
    pub fn login(&self) -> String {
        let token = self.random_hex();
        let mut s = self.inner.session.lock().unwrap_or_else(|e| e.into_inner());
        s.refresh = Some(token.clone());
        s.access.clear();
        token
    }

    /// The refresh token the emulator accepts now (tests compare it with the persisted one).
    pub fn current_refresh_token(&self) -> Option<String> {
        self.inner.session.lock().unwrap_or_else(|e| e.into_inner()).refresh.clone()
    }

    /// Ends the session: every access token and the refresh token are refused.
    /// The server's clock passes the expiry of every access token issued so far (tests use
    /// it instead of waiting out a lifetime).
    pub fn expire_access_tokens(&self) {
        let now = unix_now();
        let mut s = self.inner.session.lock().unwrap_or_else(|e| e.into_inner());
        for a in s.access.values_mut() {
            a.exp = a.exp.min(now);
        }
    }

    pub fn revoke(&self) {
        let mut s = self.inner.session.lock().unwrap_or_else(|e| e.into_inner());
        s.refresh = None;
        s.access.clear();
    }

    fn random_hex(&self) -> String {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        format!("{:016x}{:016x}", splitmix(nanos ^ n.rotate_left(32)), splitmix(n ^ 0x5151_aaaa_0f0f_1234))
    }

    /// Rotates the refresh token → (access token, new refresh token); `None` when `presented`
    /// is not the current refresh token.
    fn refresh(&self, presented: &str) -> Option<(String, String)> {
        let new_refresh = self.random_hex();
        let lifetime = *self.inner.access_lifetime.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = self.inner.session.lock().unwrap_or_else(|e| e.into_inner());
        let current = s.refresh.as_deref()?;
        if !same_secret(current.as_bytes(), presented.as_bytes()) {
            return None;
        }
        let now = unix_now();
        let exp = now + lifetime.as_secs().max(1);
        let jti = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let header = base64url_encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = base64url_encode(
            serde_json::json!({"sub": "operator", "iat": now, "exp": exp, "jti": jti}).to_string().as_bytes(),
        );
        let signature = base64url_encode(self.random_hex().as_bytes());
        let access = format!("{header}.{payload}.{signature}");
        s.access.retain(|_, a| a.exp + 60 > now);
        s.access.insert(access.clone(), Access { exp, used: false });
        s.refresh = Some(new_refresh.clone());
        Some((access, new_refresh))
    }
}

/// Unpadded base64url (RFC 4648 §5), as JWT segments are written.
fn base64url_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `{"msg": "..."}` with a status.
pub(crate) fn msg(status: StatusCode, text: &str) -> Response {
    (status, [(CONTENT_TYPE, JSON)], serde_json::json!({ "msg": text }).to_string()).into_response()
}

pub(crate) use ejgate_sdk::emulator::json_bytes as json_ok;

/// Token, expiry, request limit and injected failures, in that order, for every API route.
async fn api_gate(State(st): State<EmulatorState>, req: Request, next: Next) -> Response {
    let inner = &st.inner;
    inner.gate.count_request();
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return msg(StatusCode::UNAUTHORIZED, "Missing Authorization Header");
    };
    let access = inner.session.lock().unwrap_or_else(|e| e.into_inner()).access.get(&token).copied();
    match access {
        None => return msg(StatusCode::UNAUTHORIZED, "Invalid token"),
        Some(a) if a.exp <= unix_now() => {
            inner.expired.fetch_add(1, Ordering::Relaxed);
            return msg(StatusCode::UNAUTHORIZED, "Token has expired");
        }
        Some(a) => hold_request(&st, &token, !a.used).await,
    }
    if inner.gate.over_limit(&token) {
        return msg(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
    }
    let Some(mode) = inner.gate.take_failure() else {
        return next.run(req).await;
    };
    broken_answer(mode, req, next, |mode| match mode {
        FailureMode::Expired => msg(StatusCode::UNAUTHORIZED, "Token has expired"),
        FailureMode::Html502 => html_502(),
        _ => {
            st.revoke();
            msg(StatusCode::UNAUTHORIZED, "Token has been revoked")
        }
    })
    .await
}

/// Counts a held request while it is held (also when its client goes away).
struct HeldNow(Arc<AtomicU64>);

impl Drop for HeldNow {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Holds a request while `hold?mode=all` is on, or while `hold?mode=first-use` is on and it
/// carries a fresh access token (`first_use`); then marks the token used. A request whose
/// client went away is dropped here and no longer counts as held now.
async fn hold_request(st: &EmulatorState, token: &str, first_use: bool) {
    let inner = &st.inner;
    let mut hold = inner.hold.subscribe();
    let mode = *hold.borrow_and_update();
    if mode == Hold::All || (mode == Hold::FirstUse && first_use) {
        // `held` before `held_now`, and `stats` reads them the other way round: a snapshot
        // showing a request held now also counts it in `held`.
        inner.held.fetch_add(1, Ordering::SeqCst);
        inner.held_now.fetch_add(1, Ordering::SeqCst);
        let _held_now = HeldNow(inner.held_now.clone());
        // The sender lives in `inner`, which outlives this request: `wait_for` ends only
        // with the hold switched.
        let _ = hold.wait_for(|now| *now != mode).await;
    }
    if first_use {
        if let Some(a) = inner.session.lock().unwrap_or_else(|e| e.into_inner()).access.get_mut(token) {
            a.used = true;
        }
    }
}

/// Holds a refresh while `at` is the refresh hold in force; `false` when it was let go
/// with [`RefreshHold::Drop`].
async fn hold_refresh(st: &EmulatorState, at: RefreshHold) -> bool {
    let inner = &st.inner;
    let mut hold = inner.refresh_hold.subscribe();
    if *hold.borrow_and_update() != at {
        return true;
    }
    inner.refresh_held.fetch_add(1, Ordering::SeqCst);
    inner.refresh_held_now.fetch_add(1, Ordering::SeqCst);
    let _held_now = HeldNow(inner.refresh_held_now.clone());
    let released = hold.wait_for(|now| *now != at).await.map(|now| *now);
    !matches!(released, Ok(RefreshHold::Drop))
}

fn html_502() -> Response {
    const PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    (StatusCode::BAD_GATEWAY, [(CONTENT_TYPE, "text/html")], PAGE).into_response()
}

/// POST `/diary/refresh`: form `refresh-token=<rt>` or JSON `{"refresh-token": rt}`.
async fn refresh(State(st): State<EmulatorState>, req: Request) -> Response {
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024).await.unwrap_or_default();
    let presented = if is_json {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("refresh-token").and_then(|t| t.as_str()).map(str::to_string))
    } else {
        url::form_urlencoded::parse(&body).find(|(k, _)| k == "refresh-token").map(|(_, v)| v.into_owned())
    };
    let Some(presented) = presented.filter(|t| !t.is_empty()) else {
        return msg(StatusCode::BAD_REQUEST, "refresh-token is required");
    };
    st.inner.refresh_requests.fetch_add(1, Ordering::SeqCst);
    if !hold_refresh(&st, RefreshHold::Before).await {
        return html_502();
    }
    let rotated = st.refresh(presented.trim());
    if rotated.is_some() {
        hold_refresh(&st, RefreshHold::Answer).await;
    }
    match rotated {
        Some((access, refresh)) => {
            st.inner.refreshes.fetch_add(1, Ordering::Relaxed);
            json_ok(serde_json::json!({"accessToken": access, "refreshToken": refresh}).to_string().into_bytes())
        }
        None => {
            st.inner.refused.fetch_add(1, Ordering::Relaxed);
            msg(StatusCode::UNAUTHORIZED, "Invalid refresh token")
        }
    }
}

async fn not_found() -> Response {
    msg(StatusCode::NOT_FOUND, "Not Found")
}

/// The emulator's routes.
pub fn router(state: EmulatorState) -> Router {
    let api = handlers::routes().route_layer(middleware::from_fn_with_state(state.clone(), api_gate));
    let app =
        Router::new().nest("/diary/api", api).route("/diary/refresh", axum::routing::post(refresh)).fallback(not_found);
    ejgate_sdk::emulator::app(state, app, control::routes())
}

/// A running emulator: `addr`, `base_url()`, `world()`, `state()`, `stats()`, `shutdown()`.
pub type EmulatorHandle = Running<EmulatorState>;

/// Binds `addr` (port 0: any free port) and serves in a spawned task.
pub async fn start(world: World, options: EmulatorOptions, addr: SocketAddr) -> io::Result<EmulatorHandle> {
    let state = EmulatorState::new(world, &options);
    Running::start(state.clone(), router(state), addr).await
}

impl Emulator for EmulatorState {
    type Stats = EmulatorStats;
    type Served = WorldCell;

    fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    fn served(&self) -> &WorldCell {
        &self.inner.world
    }

    fn stats(&self) -> EmulatorStats {
        EmulatorState::stats(self)
    }

    fn failure_modes(&self) -> &'static [(&'static str, FailureMode)] {
        FailureMode::WITH_EXPIRED
    }

    fn control_error(&self, error: ControlError<'_>) -> Response {
        match error {
            ControlError::Invalid(name) | ControlError::Missing(name) => {
                msg(StatusCode::BAD_REQUEST, &format!("bad parameter {name}"))
            }
            ControlError::Internal(e) => msg(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    }

    fn date_header(&self) -> HeaderValue {
        date_header(&self.inner.world)
    }

    fn truth_extra(&self, world: &World) -> serde_json::Map<String, serde_json::Value> {
        let mut extra = serde_json::Map::new();
        extra.insert("expected".into(), serde_json::json!(crate::truth::expected_counts(world)));
        extra
    }
}

#[cfg(test)]
mod tests;
