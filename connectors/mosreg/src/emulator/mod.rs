//! # «Моя школа» emulator
//!
//! An HTTP server on loopback that serves a synthetic [`World`] through the «Моя школа»
//! API as `connectors/mosreg/API.md` describes it (the contract; `SOURCES.md`, section «Моя
//! школа», is the fact base under it). Tests and `ejgate emulate mosreg` run against it.
//!
//! ```no_run
//! # async fn demo(world: ejgate_sdk::synth::World) -> std::io::Result<()> {
//! use ejgate_mosreg::emulator::{start, EmulatorOptions};
//! let emu = start(world, EmulatorOptions::new("eyJ.secret.jwt"), "127.0.0.1:0".parse().unwrap()).await?;
//! let base = emu.base_url(); // http://127.0.0.1:PORT/ — all three hosts' path families
//! # let _ = base;
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## What is faithful (from the public material)
//!
//! - The three hosts' path families on one listener: `api/eventcalendar/…` and
//!   `api/family/web/v1/…` (authedu.mosreg.ru), `family/mobile/v1/…` (api.myschool.mosreg.ru),
//!   `acl/api/…`, `core/api/…`, `v2/token/refresh` (myschool.mosreg.ru).
//! - The JWT in any one of `Authorization: Bearer`, `Auth-Token`, cookie `aupd_token` or
//!   `aupdtoken`; `Profile-Id`/`profile-id`; a literal `pid=null` in a query is ignored.
//! - GET `v2/token/refresh` answers the new token as **plain text**; a refused refresh is
//!   HTTP 499 `Something went wrong` (text).
//! - A refused or expired token: 401 with «Предыдущая сессия работы в ЭЖД завершена. Войдите
//!   в ЭЖД заново».
//! - Wrapping per endpoint: `{payload}` (family marks, `subject_marks`),
//!   `{total_count, response, errors}` (events), bare arrays (`profile_info`,
//!   `core/api/profiles`, `core/api/academic_years`).
//! - Dates `YYYY-MM-DD`; `created_at`/`updated_at` without zone; events' `start_at` and
//!   `finish_at` with the school's offset; mark `value` a JSON **string**; `subject_marks`
//!   `average`, `value`, `fixed_value` strings.
//!
//! ## What is assumed (API.md marks these too)
//!
//! - A staff profile (`school_admin`) per school in `profile_info`, with `school_id`, and
//!   the staff endpoints (`core/api/schools/{id}`, `periods_schedules`, `subjects`,
//!   `class_units`, `groups`, `profiles?school_id&types=teacher`), `user.sex`,
//!   `user.birth_date` and `memberships` on profiles.
//! - Events: `teacher_id`, `lesson_number`, classroom jobs among the homework entries
//!   (`is_class_room_job`, `control_form`, `created_at`), `homework_entry_id` on marks, the
//!   ids of `absence_reason_id` (`mappings/mosreg/attendance.toml`). A pupil sees every lesson
//!   of every class and group he was ever a member of.
//! - The error JSON shape ([`ErrorShape`]: `{type, description, details}` by default).
//! - The request limit: `R` requests per second per token, answered 429.
//! - The clock (`Date` header) is the world's today at 12:00 UTC.
//!
//! ## Control surface (no token)
//!
//! `/__emulator/advance?days=N`, `/__emulator/truth[?since=SEQ]`,
//! `/__emulator/fail?mode=malformed|html502|truncated|unauthorized|off[&count=N]`,
//! `/__emulator/limit?rps=R`, `/__emulator/token?action=expire|renew|refuse_refresh|allow_refresh`,
//! `/__emulator/stats`.

mod control;
mod gate;
mod handlers;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use chrono::NaiveDate;
use ejgate_sdk::emulator::mesh;
use ejgate_sdk::emulator::{ControlError, Emulator, Gate, Running};
use ejgate_sdk::synth::World;
use serde::Serialize;

pub(crate) use ejgate_sdk::emulator::mesh::Viewer;
pub use ejgate_sdk::emulator::mesh::{profile_id, ErrorShape, FamilyAccount, PREVIOUS_YEAR_ID};
pub use ejgate_sdk::emulator::FailureMode;

/// The contingent GUID of a person (the id events are asked for with), derived from the
/// world id so that every run sees the same one.
pub fn person_guid(id: u64) -> String {
    format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", 0x6d6f_7372u32, (id >> 48) & 0xffff, 0, 0, id & 0xffff_ffff_ffff)
}

/// The person id a contingent GUID of [`person_guid`] stands for; `None` for any other GUID.
pub fn guid_person(guid: &str) -> Option<u64> {
    let parts: Vec<&str> = guid.split('-').collect();
    let [_, high, _, _, low] = parts.as_slice() else { return None };
    let id = (u64::from_str_radix(high, 16).ok()? << 48) | u64::from_str_radix(low, 16).ok()?;
    (person_guid(id) == guid).then_some(id)
}

/// A valid JWT-shaped token (three base64url parts) carrying `subject`: what the refresh
/// issues (SOURCES.md: a refreshed token is a new JWT).
pub fn jwt(subject: &str) -> String {
    fn b64url(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
    let payload = serde_json::json!({ "sub": subject, "iss": "emulator" }).to_string();
    format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url(payload.as_bytes()),
        b64url(format!("sig:{subject}").as_bytes())
    )
}

/// How the emulator behaves.
#[derive(Clone)]
pub struct EmulatorOptions {
    /// The staff token valid at the start (what the operator supplies).
    pub token: String,
    /// Family tokens: each a parent's or a pupil's session.
    pub family: Vec<(String, FamilyAccount)>,
    /// Requests per second per token; `None` or 0: no limit.
    pub request_limit: Option<u32>,
    /// A token expires after this many API requests (`None`: never by use).
    pub token_requests: Option<u64>,
    /// Whether GET `v2/token/refresh` issues a new token (else 499 `Something went wrong`).
    pub refresh_allowed: bool,
    /// The largest page the server gives, whatever `per_page` asks.
    pub max_per_page: usize,
    pub error_shape: ErrorShape,
}

impl EmulatorOptions {
    pub fn new(token: impl Into<String>) -> Self {
        EmulatorOptions {
            token: token.into(),
            family: Vec::new(),
            request_limit: None,
            token_requests: None,
            refresh_allowed: true,
            max_per_page: 500,
            error_shape: ErrorShape::default(),
        }
    }
}

impl std::fmt::Debug for EmulatorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorOptions")
            .field("token", &"[REDACTED]")
            .field("family", &self.family.iter().map(|(_, a)| a).collect::<Vec<_>>())
            .field("request_limit", &self.request_limit)
            .field("token_requests", &self.token_requests)
            .field("refresh_allowed", &self.refresh_allowed)
            .field("max_per_page", &self.max_per_page)
            .field("error_shape", &self.error_shape)
            .finish()
    }
}

/// API requests seen (`/__emulator/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct EmulatorStats {
    pub requests: u64,
    pub limited: u64,
    pub failed: u64,
    pub refreshed: u64,
    pub refused_refreshes: u64,
}

/// The world served, with the lookups that keep per-pupil answers cheap.
pub use ejgate_sdk::synth::WorldCell;

/// The tokens the server knows: each with the API requests made with it and whether it
/// has expired.
#[derive(Debug, Default)]
pub(crate) struct TokenBook {
    pub(crate) tokens: HashMap<String, TokenLife>,
    pub(crate) issued: u64,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TokenLife {
    pub(crate) requests: u64,
    pub(crate) expired: bool,
    /// Whose token it is (`None`: the staff token); a refreshed token keeps it.
    pub(crate) account: Option<FamilyAccount>,
}

/// What the server makes of a presented token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Valid(Option<FamilyAccount>),
    Expired,
    Unknown,
}

pub(crate) struct Inner {
    pub(crate) world: WorldCell,
    pub(crate) initial_token: String,
    pub(crate) max_per_page: usize,
    pub(crate) error_shape: ErrorShape,
    token_requests: Mutex<Option<u64>>,
    refresh_allowed: Mutex<bool>,
    pub(crate) tokens: Mutex<TokenBook>,
    pub(crate) gate: Gate,
    pub(crate) refreshed: AtomicU64,
    pub(crate) refused_refreshes: AtomicU64,
    /// Events as written for every pupil (see [`handlers::EventCache`])
    pub(crate) events: Mutex<handlers::EventCache>,
}

impl Inner {
    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, TokenBook> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks a token for an API request and counts the request against its life.
    pub(crate) fn use_token(&self, token: &str) -> TokenCheck {
        let limit = *self.token_requests.lock().unwrap_or_else(|e| e.into_inner());
        let mut book = self.lock_tokens();
        let Some(life) = book.tokens.get_mut(token) else { return TokenCheck::Unknown };
        if life.expired {
            return TokenCheck::Expired;
        }
        life.requests += 1;
        if limit.is_some_and(|n| life.requests >= n) {
            // This answer still goes through; the next one is refused.
            life.expired = true;
        }
        TokenCheck::Valid(life.account)
    }

    /// The viewer of a family account (its children from the world's guardianships) or
    /// of the staff token.
    pub(crate) fn viewer(&self, account: Option<FamilyAccount>) -> Viewer {
        self.world.read(|w| Viewer::of(w, account))
    }

    /// GET `v2/token/refresh`: a known token (expired or not) buys a new one, unless
    /// refreshing is refused.
    pub(crate) fn refresh(&self, token: &str) -> Option<String> {
        let allowed = *self.refresh_allowed.lock().unwrap_or_else(|e| e.into_inner());
        let mut book = self.lock_tokens();
        let Some(account) = book.tokens.get(token).map(|l| l.account).filter(|_| allowed) else {
            self.refused_refreshes.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        book.issued += 1;
        let fresh = jwt(&format!("refreshed-{}", book.issued));
        book.tokens.insert(fresh.clone(), TokenLife { account, ..TokenLife::default() });
        self.refreshed.fetch_add(1, Ordering::Relaxed);
        Some(fresh)
    }
}

/// The shared state of an emulator. Cheap to clone.
#[derive(Clone)]
pub struct EmulatorState {
    pub(crate) inner: Arc<Inner>,
}

impl EmulatorState {
    pub fn new(world: World, options: &EmulatorOptions) -> Self {
        let mut book = TokenBook::default();
        book.tokens.insert(options.token.clone(), TokenLife::default());
        for (token, account) in &options.family {
            book.tokens.insert(token.clone(), TokenLife { account: Some(*account), ..TokenLife::default() });
        }
        EmulatorState {
            inner: Arc::new(Inner {
                world: WorldCell::new(world),
                initial_token: options.token.clone(),
                max_per_page: options.max_per_page.max(1),
                error_shape: options.error_shape,
                token_requests: Mutex::new(options.token_requests),
                refresh_allowed: Mutex::new(options.refresh_allowed),
                tokens: Mutex::new(book),
                gate: Gate::new(options.request_limit),
                refreshed: AtomicU64::new(0),
                refused_refreshes: AtomicU64::new(0),
                events: Mutex::new(handlers::EventCache::default()),
            }),
        }
    }

    pub fn world(&self) -> WorldCell {
        self.inner.world.clone()
    }

    pub fn stats(&self) -> EmulatorStats {
        let i = &self.inner;
        let c = i.gate.counts();
        EmulatorStats {
            requests: c.requests,
            limited: c.limited,
            failed: c.failed,
            refreshed: i.refreshed.load(Ordering::Relaxed),
            refused_refreshes: i.refused_refreshes.load(Ordering::Relaxed),
        }
    }

    /// Breaks the next `count` API answers (all of them when `None`) that way; `None` mode
    /// turns failures off.
    pub fn set_failure(&self, mode: Option<FailureMode>, count: Option<u64>) {
        self.inner.gate.set_failure(mode, count);
    }

    /// Sets the per-token request limit (`None` or 0: off).
    pub fn set_request_limit(&self, rps: Option<u32>) {
        self.inner.gate.set_request_limit(rps);
    }

    /// Every token known so far expires now (the session ended).
    pub fn expire_tokens(&self) {
        for life in self.inner.lock_tokens().tokens.values_mut() {
            life.expired = true;
        }
    }

    /// Tokens expire after `requests` API requests each (`None`: never by use).
    pub fn set_token_requests(&self, requests: Option<u64>) {
        *self.inner.token_requests.lock().unwrap_or_else(|e| e.into_inner()) = requests;
    }

    /// Whether GET `v2/token/refresh` gives new tokens (else 499).
    pub fn set_refresh_allowed(&self, allowed: bool) {
        *self.inner.refresh_allowed.lock().unwrap_or_else(|e| e.into_inner()) = allowed;
    }

    /// The operator signed in again: the initial token is valid and fresh once more.
    pub fn renew_token(&self) {
        let token = self.inner.initial_token.clone();
        let mut book = self.inner.lock_tokens();
        book.tokens.insert(token, TokenLife::default());
        for life in book.tokens.values_mut().filter(|l| l.account.is_some()) {
            *life = TokenLife { account: life.account, ..TokenLife::default() };
        }
    }
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
        &[
            ("malformed", FailureMode::Malformed),
            ("html502", FailureMode::Html502),
            ("truncated", FailureMode::Truncated),
            ("unauthorized", FailureMode::Unauthorized),
            ("expired", FailureMode::Unauthorized),
        ]
    }

    fn control_error(&self, error: ControlError<'_>) -> Response {
        use axum::response::IntoResponse;
        let bad = |message: String| (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"error": message})));
        match error {
            ControlError::Invalid(name) => bad(format!("bad parameter {name}")).into_response(),
            ControlError::Missing(name) => bad(format!("{name} is required")).into_response(),
            ControlError::Internal(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
        }
    }

    fn date_header(&self) -> HeaderValue {
        self.inner.world.read(mesh::noon_date)
    }

    fn truth_extra(&self, world: &World) -> serde_json::Map<String, serde_json::Value> {
        // What a complete «Моя школа» sync holds (the kinds the API exposes).
        let exposed = crate::truth::TRUTH.expected_counts(world);
        let mut extra = serde_json::Map::new();
        extra.insert("exposed_counts".into(), serde_json::to_value(exposed).expect("counts serialize"));
        extra
    }
}

impl mesh::Platform for EmulatorState {
    fn error_shape(&self) -> ErrorShape {
        self.inner.error_shape
    }

    fn max_per_page(&self) -> usize {
        self.inner.max_per_page
    }

    /// `yyyy-MM-dd`, like every date of «Моя школа».
    fn period_date(&self, day: NaiveDate) -> String {
        mesh::ymd(day)
    }
}

/// The emulator's routes: the API, the refresh, the control surface under `/__emulator`, a
/// JSON 404 for anything else; a `Date` header on every answer.
pub fn router(state: EmulatorState) -> Router {
    let api = handlers::routes()
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), gate::api_gate))
        .merge(handlers::refresh_routes())
        .fallback(gate::not_found);
    ejgate_sdk::emulator::app(state, api, control::routes())
}

/// A running emulator: `addr`, `base_url()`, `world()`, `state()`, `stats()`, `shutdown()`.
pub type EmulatorHandle = Running<EmulatorState>;

/// Binds `addr` (port 0: any free port) and serves `world` in a spawned task.
pub async fn start(world: World, options: EmulatorOptions, addr: SocketAddr) -> io::Result<EmulatorHandle> {
    let state = EmulatorState::new(world, &options);
    Running::start(state.clone(), router(state), addr).await
}
