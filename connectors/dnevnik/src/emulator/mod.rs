//! # Dnevnik.ru REST v2 emulator
//!
//! An HTTP server on loopback that serves a synthetic [`World`] through the Dnevnik.ru REST v2
//! API as `connectors/dnevnik/API.md` describes it (the contract; `SOURCES.md`, Dnevnik
//! section, is the fact base under it). Tests, the benchmark and `ejgate demo` run against it.
//!
//! ```no_run
//! # async fn demo(world: ejgate_sdk::synth::World) -> std::io::Result<()> {
//! use ejgate_dnevnik::emulator::{start, EmulatorOptions};
//! let emu = start(world, EmulatorOptions::new("secret"), "127.0.0.1:0".parse().unwrap()).await?;
//! let base = emu.base_url(); // http://127.0.0.1:PORT/v2/
//! # let _ = base;
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## What is faithful (from the public material)
//!
//! - Both prefixes `/v2/` and `/v2.0/`; token in header `Access-Token` or query
//!   `access_token`; the exact `tokenRequired`, `invalidToken` and `apiRequestLimit` bodies.
//! - Paths, field names and their mixed casing: camelCase mostly, PascalCase
//!   `schools/{s}/teachers`, lowercase `studyyear`, `membershipstatus` and `journaltype` in
//!   lists (`journalType` in `edu-groups/{g}`), hyphenated `per-subject-final-marks` and
//!   `final-mark`; `_str` twins of ids where API.md lists them, none in the lean objects of
//!   `edu-groups/students` and `lesson.works[].tasks`. Ids are above 2^53.
//! - Response dates: lesson `date` and work `targetDate` `yyyy-MM-ddT00:00:00`; mark `date`
//!   with 7 fraction digits; log `createdDate` with 6; homework `sentDate` in UTC ending `Z`;
//!   reporting-period `start`/`finish` datetimes; `timeZone` an integer number of hours.
//! - Request dates in every spelling clients send (see [`dates::parse_request_date`]); a bad
//!   one answers 400 `parameterInvalid`. Ranges are inclusive by day.
//! - Marks are listed by the day they were **entered**, lessons and attendance by lesson date.
//! - HTML error pages (`text/html`, `<div class="error__description"><p>…`) for a 502.
//!
//! ## What is assumed (the public material is silent; API.md marks these too)
//!
//! - The request-limit status is 429 unless [`EmulatorOptions::limit_status`] says otherwise
//!   (real clients retry on 429 and 433). The limit is a token bucket per token: `R` requests
//!   per second with a burst of `R`.
//! - `schools/{s}/edu-groups` lists classes and their groups; group kinds map to
//!   `type`/`journaltype` as: class → `Group`/`Regular`, subgroup → `Subgroup`/`Regular`,
//!   study group → `Group`/`Regular`, elective → `Group`/`Elective`, extracurricular →
//!   `Group`/`Extracurricular`, ГПД → `Group`/`ExtendedDay`. `fullName` = `name`,
//!   `timetable` is `null`, `parallel` is the grade.
//! - Work-type `kind` codes and their `kindId` numbers (1–8 in API.md's order); a lesson's
//!   default work is `DefaultNewLessonWork`; a work's `createdBy` is whoever conducted the
//!   lesson (the substitute when there is one); `tasks` is always empty; `files` are
//!   objects `{id, id_str, name, downloadUrl}`;
//!   `periodNumber`/`periodType` are those of the period holding the lesson date.
//! - Lesson `status` is `Canceled` or `Conducted` (never `NotConducted`); `teachers[1]` is the
//!   substitute.
//! - Attendance: the world stores only absences and lateness, so no `Attend` entries are
//!   served; `from` and `to` are required, `subject` optional.
//! - `final-marks` answers `[]` for a group that is not a class, and covers everyone ever
//!   enrolled in the class (archived pupils too). The final mark's `date` has 7 fraction
//!   digits like a mark's.
//! - `users/me/context` of the main token is a district administrator (made-up name, ids
//!   just below the world's first id) who sees every school of the world; `eduGroups` and
//!   `groupIds` are all classes. More tokens may be a parent's or a pupil's
//!   ([`EmulatorOptions::with_account`]): they see their pupils' data, and get 403
//!   `authorizationNotOwner` for school-wide lists (see `people.rs`).
//! - Besides the calls our connector makes, the read calls of the public clients are served
//!   (`users/me`, `schools/person-schools`, `persons/{p}/…`, `lessons/{l}/…`, `works?lesson=`,
//!   …: API.md). [`Forms`] switches on the other forms the clients disagree on.
//! - `regionId` is 50; `fgosSubjectId` is `null`; a period's `year` is the study year's
//!   first calendar year; a half-year period's type is `Semester`; holidays end at 23:59:59.
//! - `marks/values` lists `mark5`, `markdismiss` and `markna` only.
//! - The clock (`Date` header) is the world's today at 20:00 in `config.time_zone`
//!   (chrono-tz; a zone name chrono-tz does not know falls back to a fixed UTC+3).
//! - Unknown ids in batch bodies are left out of the answer; a non-numeric id in a path is
//!   400 `parameterInvalid`; an unknown one is 404 `apiResourceUnavailable`; an unknown path
//!   or method is 404 `apiMethodNotSupported` (no token needed for that answer).
//!
//! ## Control surface (no token)
//!
//! `/__emulator/advance?days=N`, `/__emulator/truth[?since=SEQ]`,
//! `/__emulator/fail?mode=malformed|html502|truncated|unauthorized|off[&count=N]`,
//! `/__emulator/limit?rps=R`, `/__emulator/stats`: see API.md. How failures are made: see
//! [`FailureMode`]. Failures and the request limit apply only to API routes, after the token
//! check; a limited request does not use up an injected failure.
//!
//! ## Speed
//!
//! Indexes per class and group (lessons by date, marks by entry time, attendance by lesson
//! date, members) are built at start and after every change of the world; every list is a
//! range lookup serialized item by item straight into the response bytes, under the read
//! lock only for that time. Ids and dates are formatted in stack buffers. Measured on the
//! benchmark school (`SynthConfig::large`, 2 busy cores, release): about 360,000 lessons,
//! marks and attendance entries fetched month by month per class and group over HTTP at
//! roughly 250,000–340,000 records/s with the client's JSON parse included (the ignored test
//! `throughput_on_the_benchmark_school`).

mod control;
pub mod dates;
mod gate;
mod handlers;
mod index;
mod people;
mod wire;

#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::Router;
use ejgate_sdk::emulator::{ControlError, Emulator, Gate, Running};
use ejgate_sdk::synth::World;
use serde::Serialize;

pub use ejgate_sdk::emulator::FailureMode;
pub use index::WorldCell;
pub use wire::{ADMIN_PERSON_ID, ADMIN_USER_ID};

/// Whose account a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    /// A district administrator: every school of the world (the main token).
    Staff,
    /// A parent, by the guardian's person id: their children (the world's guardianships).
    Parent(u64),
    /// A pupil, by the student's person id: themselves.
    Pupil(u64),
}

/// Forms of the answers where the public clients disagree or the source varies; the
/// defaults are what the typed clients model. Tests switch the others on to check that a
/// reader takes every form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forms {
    /// Every JSON number of an API answer written as a string (`"5"`, `"1000…"`), and the
    /// `_str`/`Str` twins left out.
    pub numbers_as_strings: bool,
    /// `edu-groups/students` and a class's `subjects` with bare ids instead of objects.
    pub bare_ids: bool,
    /// POST `edu-groups/students` (and POST `edu-groups`) answer 404 `apiMethodNotSupported`.
    pub refuse_batch: bool,
    /// Classes carry a parent id (their parallel's: a group the lists do not hold).
    pub classes_with_parent: bool,
    /// Every class and group is typed `Subgroup` (no class can be placed).
    pub all_subgroups: bool,
}

/// How the emulator behaves.
#[derive(Clone)]
pub struct EmulatorOptions {
    /// The main token: a district administrator ([`Account::Staff`]).
    pub token: String,
    /// More tokens and whose they are (parents, pupils).
    pub accounts: Vec<(String, Account)>,
    /// Requests per second per token (burst the same); `None` or 0: no limit.
    pub request_limit: Option<u32>,
    /// The HTTP status of the request-limit answer (429 by default; 433 is the other one
    /// clients know).
    pub limit_status: u16,
    pub forms: Forms,
    /// The longest date range (days, both ends included) the dated lists take: a longer one
    /// is answered 400 `parameterInvalid` (`None`: any range). No public material states
    /// a limit; tests use it to show that a connector halves a range the source refuses.
    pub max_range_days: Option<u32>,
}

impl EmulatorOptions {
    /// No request limit, limit status 429, the typed clients' forms.
    pub fn new(token: impl Into<String>) -> Self {
        EmulatorOptions {
            token: token.into(),
            accounts: Vec::new(),
            request_limit: None,
            limit_status: 429,
            forms: Forms::default(),
            max_range_days: None,
        }
    }

    /// Adds a token of a parent or a pupil.
    pub fn with_account(mut self, token: impl Into<String>, account: Account) -> Self {
        self.accounts.push((token.into(), account));
        self
    }
}

impl std::fmt::Debug for EmulatorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorOptions")
            .field("token", &"[REDACTED]")
            .field("accounts", &self.accounts.iter().map(|(_, a)| a).collect::<Vec<_>>())
            .field("request_limit", &self.request_limit)
            .field("limit_status", &self.limit_status)
            .finish()
    }
}

/// API requests seen (`/__emulator/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct EmulatorStats {
    /// Every request to an API route, refused ones included
    pub requests: u64,
    /// Answered with the request-limit error
    pub limited: u64,
    /// Broken on purpose by a failure mode
    pub failed: u64,
    /// Held open, unanswered, by `hold?after=N` so far
    #[serde(default)]
    pub held: u64,
}

pub(crate) struct Inner {
    pub(crate) world: WorldCell,
    /// Every token with its account, the main one first.
    pub(crate) accounts: Vec<(String, Account)>,
    pub(crate) forms: Forms,
    pub(crate) max_range_days: Option<u32>,
    pub(crate) limit_status: StatusCode,
    pub(crate) gate: Gate,
    /// Requests let through the token and the request limit, the number `hold` counts by
    admitted: AtomicU64,
    held: AtomicU64,
    /// `Some(n)`: every admitted request after the n-th is held open until this turns `None`
    /// (`hold?after=N` / `hold?mode=off`). Tests use it to stop a sync at a known point
    /// instead of racing it with a timer.
    hold_after: tokio::sync::watch::Sender<Option<u64>>,
}

/// The shared state of an emulator: its world, token, limiter, failure injection and
/// counters. Cheap to clone.
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
    /// Indexes the world (this takes a moment for a big one). Fails on a `limit_status`
    /// that is not an HTTP status.
    pub fn new(world: World, options: &EmulatorOptions) -> io::Result<Self> {
        let limit_status = StatusCode::from_u16(options.limit_status).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("limit_status {} is not an HTTP status", options.limit_status),
            )
        })?;
        Ok(EmulatorState {
            inner: Arc::new(Inner {
                world: WorldCell::new(world),
                accounts: std::iter::once((options.token.clone(), Account::Staff))
                    .chain(options.accounts.iter().cloned())
                    .collect(),
                forms: options.forms,
                max_range_days: options.max_range_days,
                limit_status,
                gate: Gate::new(options.request_limit),
                admitted: AtomicU64::new(0),
                held: AtomicU64::new(0),
                hold_after: tokio::sync::watch::Sender::new(None),
            }),
        })
    }

    /// The world served.
    pub fn world(&self) -> WorldCell {
        self.inner.world.clone()
    }

    pub fn stats(&self) -> EmulatorStats {
        let c = self.inner.gate.counts();
        EmulatorStats {
            requests: c.requests,
            limited: c.limited,
            failed: c.failed,
            held: self.inner.held.load(Ordering::SeqCst),
        }
    }

    /// Holds every API request admitted from now on after the first `after` ones open and
    /// unanswered; `None` releases what is held and holds no more.
    pub fn set_hold_after(&self, after: Option<u64>) {
        self.inner.admitted.store(0, Ordering::SeqCst);
        self.inner.hold_after.send_replace(after);
    }

    /// Breaks the next `count` API answers (all of them when `None`) that way; `None` mode
    /// turns failures off.
    pub fn set_failure(&self, mode: Option<FailureMode>, count: Option<u64>) {
        self.inner.gate.set_failure(mode, count);
    }

    /// Sets the per-token request limit (`None` or 0: off); the buckets start full.
    pub fn set_request_limit(&self, rps: Option<u32>) {
        self.inner.gate.set_request_limit(rps);
    }
}

impl Emulator for EmulatorState {
    type Stats = EmulatorStats;
    type Served = WorldCell;

    const BASE_PATH: &'static str = "v2/";

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
        FailureMode::BASIC
    }

    fn control_error(&self, error: ControlError<'_>) -> Response {
        match error {
            ControlError::Invalid(name) | ControlError::Missing(name) => wire::ApiError::parameter(name),
            ControlError::Internal(e) => wire::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "apiServerError", e),
        }
        .into_response()
    }

    fn date_header(&self) -> HeaderValue {
        self.inner.world.date_header()
    }
}

/// The emulator's routes: the API under `/v2` and `/v2.0`, the control surface under
/// `/__emulator`, `apiMethodNotSupported` for anything else; a `Date` header on every answer.
pub fn router(state: EmulatorState) -> Router {
    let api = handlers::routes()
        .method_not_allowed_fallback(gate::not_supported)
        .route_layer(middleware::from_fn_with_state(state.clone(), gate::api_gate));
    let app = Router::new().nest("/v2", api.clone()).nest("/v2.0", api).fallback(gate::not_supported);
    ejgate_sdk::emulator::app(state, app, control::routes())
}

/// A running emulator: `addr`, `base_url()`, `world()`, `state()`, `stats()`, `shutdown()`.
pub type EmulatorHandle = Running<EmulatorState>;

/// Indexes the world, binds `addr` (port 0: any free port) and serves in a spawned task.
pub async fn start(world: World, options: EmulatorOptions, addr: SocketAddr) -> io::Result<EmulatorHandle> {
    let state =
        tokio::task::spawn_blocking(move || EmulatorState::new(world, &options)).await.map_err(io::Error::other)??;
    Running::start(state.clone(), router(state), addr).await
}
