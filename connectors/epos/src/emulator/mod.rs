//! # ЭПОС.Школа emulator
//!
//! An HTTP server on loopback that serves a synthetic [`World`] through the ЭПОС.Школа API
//! as `connectors/epos/API.md` describes it (the contract; `SOURCES.md`, section ЭПОС.Школа,
//! is the fact base under it). Tests run the connector against it.
//!
//! ```no_run
//! # async fn demo(world: ejgate_sdk::synth::World) -> std::io::Result<()> {
//! use ejgate_epos::emulator::{start, EmulatorOptions};
//! let emu = start(world, EmulatorOptions::new("secret"), "127.0.0.1:0".parse().unwrap()).await?;
//! let base = emu.base_url(); // http://127.0.0.1:PORT/
//! # let _ = base;
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## What is faithful (from the public material)
//!
//! - Path families `lms/api`, `core/api`, `jersey/api`, `reports/api`; credentials in the
//!   headers `auth-token` + `profile-id` (plus an optional `pid` query) **or** the cookies
//!   `auth_token`, `profile_id`, `aid`.
//! - POST `lms/api/sessions` `{auth_token}` → profiles with `is_default`.
//! - Bare arrays without paging headers; `page`/`per_page`; the list ends with an **empty**
//!   page. Marks are filtered by their creation day, with `dd.MM.yyyy` request dates.
//! - Two date formats in one API: `date` `dd.MM.yyyy`, `created_at`/`updated_at`
//!   `dd.MM.yyyy HH:mm`; `academic_years` in `yyyy-MM-dd`; lessons with `date:[y,m,d]`,
//!   `time:[h,m,s]` and a local `iso_date_time` without zone; nullable `lesson_name`,
//!   `topic_name`, `homeworks_to_give`, `homeworks_to_verify`.
//! - Progress report averages and `final_mark` are strings or `null`; a subject without
//!   final marks comes with `"periods": []`.
//! - The lost-session body `{"code": N, "message": "Предыдущая сессия работы в ЭЖД
//!   завершена. Войдите в ЭЖД заново"}` with 401 (unknown token) and 400 (expired token).
//! - HTML error pages for a 502.
//!
//! ## What is assumed (API.md marks these too)
//!
//! - The staff endpoints (`core/api/schools/{id}`, `periods_schedules`, `subjects`,
//!   `class_units`, `groups`, `teacher_profiles`, `student_profiles` lists with
//!   `memberships`), the fields `student_profile_id` and `homework_id` on marks,
//!   `is_cancelled` and `replaced_teacher_id` on lessons, `control_form` on homework entries,
//!   `reason`/`comment`/`created_at` on attendances, and `subject_id`, period `id` and
//!   `year_mark` in the progress report.
//! - The session holds one `school_admin` profile per school of the world (ids just below
//!   the world's first id); the first is the default.
//! - The server caps `per_page` at [`EmulatorOptions::max_per_page`] (500) without saying
//!   so: a client that stops at a short page loses data. `page` 0 and 1 are both the first.
//! - The request limit: `R` requests per second per token, answered 429 `{code, message}`.
//! - The clock (`Date` header) is the world's today at 12:00 UTC.
//!
//! ## Control surface (no token)
//!
//! `/__emulator/advance?days=N`, `/__emulator/truth[?since=SEQ]`,
//! `/__emulator/fail?mode=malformed|html502|truncated|unauthorized|expired|off[&count=N]`,
//! `/__emulator/limit?rps=R`, `/__emulator/token?ttl=SECS` (restarts the token's life; 0 =
//! never expires), `/__emulator/stats`.

mod control;
mod gate;
mod handlers;

#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use axum::response::Response;
use axum::Router;
use chrono::NaiveDate;
use ejgate_sdk::emulator::mesh::{self, ErrorShape};
use ejgate_sdk::emulator::{ControlError, Emulator, Gate, Running};
use ejgate_sdk::synth::World;
use serde::Serialize;

pub(crate) use ejgate_sdk::emulator::mesh::Viewer;
pub use ejgate_sdk::emulator::mesh::{profile_id, FamilyAccount, PREVIOUS_YEAR_ID};
pub use ejgate_sdk::emulator::FailureMode;

/// How the emulator behaves.
#[derive(Clone)]
pub struct EmulatorOptions {
    /// The one valid staff session token.
    pub token: String,
    /// Family tokens: each a parent's or a pupil's session.
    pub family: Vec<(String, FamilyAccount)>,
    /// Serve everything under this path prefix (`/epos`): a deployment behind a path.
    pub path_prefix: Option<String>,
    /// Requests per second per token; `None` or 0: no limit.
    pub request_limit: Option<u32>,
    /// How long the token lives from the start (or the last `/__emulator/token`); after it
    /// every API answer is 400 with the lost-session body. `None`: forever.
    pub token_ttl: Option<Duration>,
    /// The largest page the server gives, whatever `per_page` asks.
    pub max_per_page: usize,
}

impl EmulatorOptions {
    pub fn new(token: impl Into<String>) -> Self {
        EmulatorOptions {
            token: token.into(),
            family: Vec::new(),
            path_prefix: None,
            request_limit: None,
            token_ttl: None,
            max_per_page: 500,
        }
    }
}

impl std::fmt::Debug for EmulatorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorOptions")
            .field("token", &"[REDACTED]")
            .field("family", &self.family.iter().map(|(_, a)| a).collect::<Vec<_>>())
            .field("path_prefix", &self.path_prefix)
            .field("request_limit", &self.request_limit)
            .field("token_ttl", &self.token_ttl)
            .field("max_per_page", &self.max_per_page)
            .finish()
    }
}

/// API requests seen (`/__emulator/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct EmulatorStats {
    pub requests: u64,
    pub limited: u64,
    pub failed: u64,
}

/// The world served, with the lookups that keep per-pupil answers cheap.
pub use ejgate_sdk::synth::WorldCell;

pub(crate) struct Inner {
    pub(crate) world: WorldCell,
    pub(crate) token: String,
    pub(crate) family: Vec<(String, FamilyAccount)>,
    pub(crate) max_per_page: usize,
    token_life: Mutex<(Instant, Option<Duration>)>,
    pub(crate) gate: Gate,
}

impl Inner {
    pub(crate) fn token_expired(&self) -> bool {
        let (born, ttl) = *self.token_life.lock().unwrap_or_else(|e| e.into_inner());
        ttl.is_some_and(|ttl| born.elapsed() > ttl)
    }

    /// The viewer a token stands for (compared in constant time); `None`: an unknown token.
    pub(crate) fn viewer(&self, token: &str) -> Option<Viewer> {
        use ejgate_sdk::emulator::same_secret;
        if same_secret(token.as_bytes(), self.token.as_bytes()) {
            return Some(Viewer::Staff);
        }
        let account = self.family.iter().find(|(t, _)| same_secret(t.as_bytes(), token.as_bytes()))?.1;
        Some(self.world.read(|w| Viewer::of(w, Some(account))))
    }
}

/// The shared state of an emulator. Cheap to clone.
#[derive(Clone)]
pub struct EmulatorState {
    pub(crate) inner: Arc<Inner>,
}

impl EmulatorState {
    pub fn new(world: World, options: &EmulatorOptions) -> Self {
        EmulatorState {
            inner: Arc::new(Inner {
                world: WorldCell::new(world),
                token: options.token.clone(),
                family: options.family.clone(),
                max_per_page: options.max_per_page.max(1),
                token_life: Mutex::new((Instant::now(), options.token_ttl)),
                gate: Gate::new(options.request_limit),
            }),
        }
    }

    pub fn world(&self) -> WorldCell {
        self.inner.world.clone()
    }

    pub fn stats(&self) -> EmulatorStats {
        let c = self.inner.gate.counts();
        EmulatorStats { requests: c.requests, limited: c.limited, failed: c.failed }
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

    /// Restarts the token's life with a new time to live (`None`: forever).
    pub fn set_token_ttl(&self, ttl: Option<Duration>) {
        *self.inner.token_life.lock().unwrap_or_else(|e| e.into_inner()) = (Instant::now(), ttl);
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
        FailureMode::WITH_EXPIRED
    }

    fn control_error(&self, error: ControlError<'_>) -> Response {
        use axum::http::StatusCode;
        match error {
            ControlError::Invalid(name) => gate::error(StatusCode::BAD_REQUEST, &format!("bad parameter {name}")),
            ControlError::Missing(name) => gate::error(StatusCode::BAD_REQUEST, &format!("{name} is required")),
            ControlError::Internal(e) => gate::error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    }

    fn date_header(&self) -> HeaderValue {
        self.inner.world.read(mesh::noon_date)
    }
}

impl mesh::Platform for EmulatorState {
    fn error_shape(&self) -> ErrorShape {
        SHAPE
    }

    fn max_per_page(&self) -> usize {
        self.inner.max_per_page
    }

    /// `dd.MM.yyyy`, like every `date` of ЭПОС.Школа.
    fn period_date(&self, day: NaiveDate) -> String {
        day.format("%d.%m.%Y").to_string()
    }
}

/// The emulator's routes: the API, the control surface under `/__emulator`, a JSON 404 for
/// anything else; a `Date` header on every answer.
pub fn router(state: EmulatorState) -> Router {
    let api = handlers::routes()
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), gate::api_gate))
        .fallback(gate::not_found);
    ejgate_sdk::emulator::app(state, api, control::routes())
}

/// A running emulator: `addr`, `base_url()`, `world()`, `state()`, `stats()`, `shutdown()`.
pub type EmulatorHandle = Running<EmulatorState>;

/// Binds `addr` (port 0: any free port) and serves `world` in a spawned task.
pub async fn start(world: World, options: EmulatorOptions, addr: SocketAddr) -> io::Result<EmulatorHandle> {
    let state = EmulatorState::new(world, &options);
    let app = match options.path_prefix.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        Some(prefix) => Router::new().nest(&format!("/{prefix}"), router(state.clone())),
        None => router(state.clone()),
    };
    Running::start(state, app, addr).await
}

/// The error body shape of ЭПОС.Школа: `{code, message}`.
pub(crate) const SHAPE: ErrorShape = ErrorShape::CodeMessage;
