//! The КИАСУО diary connector: plans a run and turns the diary API's answers into canonical
//! records. See API.md for every request it makes and README.md for what it reads.
//!
//! Chunks of a run (one store transaction each):
//! - `reference` (per school): study periods, classes, and the pupils (the operator
//!   account's children), all read while planning;
//! - `diary` (per class): `schedule` week by week over the run's date range from one
//!   pupil of each group set (pupils who see the same lessons: planning reads two weeks of
//!   each pupil whose set it does not know, and keeps the sets in the class's cursor);
//!   for every pupil, `lesson_marks` of the study periods the range touches (marks, and
//!   attendance written as the mark values «Н», «Б», «У»), and `student_marks` (final
//!   marks) in full runs and around a period's end (README). Full runs read the year;
//!   incremental runs re-read weeks from the stream's cursor minus `window_days` up to the
//!   source's today. The cursor is the source's today with the group sets.
//!
//! Credentials: a refresh token (32 hex characters) in a file. It rotates on every refresh;
//! the new one is written to the same file atomically (temp file, fsync, rename, 0600)
//! before the access token that came with it is used.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use ejgate_sdk::cadence::FinalMarksCadence;
use ejgate_sdk::client::{
    Authenticator, Classified, ClientConfig, ErrorClassifier, ErrorKind, RetryPolicy, SourceClient, SourceError,
};
use ejgate_sdk::connector::{Batch, Chunk, Connector, Plan, PlanContext, SyncMode};
use ejgate_sdk::mapping::CodeTable;
use ejgate_sdk::model::{self as m, Coverage, DateRange, Entity, EntityKind, IdSpace, Record};
use ejgate_sdk::read::{self, Skipped};
use ejgate_sdk::secret::{persist_atomically, SecretRef};
use ejgate_sdk::time::{parse_date, parse_datetime};

use crate::api;

const SYSTEM: &str = "kiasuo";

/// The source's clock: Krasnoyarsk, UTC+7 all year (ASSUMPTION for the `Date` header's use).
const SOURCE_UTC_OFFSET_HOURS: i64 = 7;

/// The settings of one КИАСУО source instance.
#[derive(Debug, Clone)]
pub struct KiasuoConfig {
    /// The source instance name (`kiasuo`, `school-3-krsk`): part of every canonical id.
    pub instance: String,
    /// `https://diaryapi.kiasuo.ru/` (before February 2025: `https://dnevnik.kiasuo.ru/`).
    pub base_url: Url,
    /// The file holding the refresh token. It is read at start and rewritten (atomically,
    /// 0600) with every new refresh token: it must be writable by ejgate.
    pub refresh_token_file: PathBuf,
    /// The source's request limit; the client stays under it.
    pub requests_per_second: Option<NonZeroU32>,
    /// How far back an incremental run re-reads the schedule.
    pub window_days: u32,
    /// When incremental runs read final marks (`student_marks`): a class's every
    /// `every` nights within `days` of a study period's end (before and after it); full
    /// runs and a class's first run always read them (README, `ejgate_sdk::cadence`).
    pub final_marks: FinalMarksCadence,
    /// Refresh the access token this long before its `exp` (capped at a quarter of its life).
    pub refresh_early: Duration,
    /// How long the answer of a refresh is waited for (at least `timeout`). It holds the only
    /// copy of the new refresh token, so it gets longer than a data request, and a refresh
    /// is never sent twice with the same token.
    pub refresh_timeout: Duration,
    /// A directory with code tables replacing the built-in ones (`<dir>/kiasuo/*.toml`).
    pub mappings_dir: Option<PathBuf>,
    pub timeout: Duration,
    pub extra_root_certificates: Vec<PathBuf>,
    pub retry: RetryPolicy,
    /// How many requests one chunk may have in flight.
    pub concurrency: usize,
    /// The schools to read, by name (`ou`) or by a class id; empty: every school the
    /// account's children are in. Naming a school with a pupil's token is refused: it
    /// reads that pupil only.
    pub schools: Vec<String>,
}

impl KiasuoConfig {
    pub fn new(instance: &str, base_url: Url, refresh_token_file: impl Into<PathBuf>) -> Self {
        KiasuoConfig {
            instance: instance.into(),
            base_url,
            refresh_token_file: refresh_token_file.into(),
            requests_per_second: None,
            window_days: 35,
            final_marks: FinalMarksCadence::default(),
            refresh_early: Duration::from_secs(60),
            refresh_timeout: Duration::from_secs(300),
            mappings_dir: None,
            timeout: Duration::from_secs(60),
            extra_root_certificates: Vec::new(),
            retry: RetryPolicy::default(),
            concurrency: 4,
            schools: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct MarkCode {
    scale: m::MarkScale,
    numeric: Option<f64>,
    special: Option<m::SpecialFinal>,
}

#[derive(Debug, Clone, Deserialize)]
struct AttendanceCode {
    status: m::AttendanceStatus,
    reason: Option<m::AbsenceReason>,
}

/// The code tables of `mappings/kiasuo/` (shared with the exchange files' final marks).
pub(crate) struct Tables {
    marks: CodeTable<MarkCode>,
    attendance: CodeTable<AttendanceCode>,
}

impl Tables {
    pub(crate) fn load(dir: Option<&std::path::Path>) -> Result<Self, String> {
        let dir = dir.map(|d| d.join("kiasuo"));
        let dir = dir.as_deref();
        Ok(Tables {
            marks: CodeTable::load(
                "kiasuo/marks",
                dir,
                "marks.toml",
                include_str!("../../../mappings/kiasuo/marks.toml"),
            )
            .map_err(|e| e.to_string())?,
            attendance: CodeTable::load(
                "kiasuo/attendance",
                dir,
                "attendance.toml",
                include_str!("../../../mappings/kiasuo/attendance.toml"),
            )
            .map_err(|e| e.to_string())?,
        })
    }

    /// A mark's scale, numeric value and special meaning; a double mark the table does not
    /// list («5/4») is read from its parts (the mean of their numeric values).
    pub(crate) fn mark(
        &self,
        value: &str,
        warnings: &mut Vec<String>,
    ) -> (m::MarkScale, Option<f64>, Option<m::SpecialFinal>) {
        if let Some(c) = self.marks.get(value) {
            return (c.scale, c.numeric, c.special);
        }
        if value.contains('/') && value != "н/а" {
            let parts: Vec<Option<&MarkCode>> = value.split('/').map(|p| self.marks.get(p.trim())).collect();
            if parts.iter().all(|p| p.is_some_and(|c| c.numeric.is_some())) {
                let nums: Vec<f64> = parts.iter().filter_map(|p| p.and_then(|c| c.numeric)).collect();
                return (m::MarkScale::Five, Some(nums.iter().sum::<f64>() / nums.len() as f64), None);
            }
        }
        self.marks.lookup(value, warnings);
        (m::MarkScale::Other, None, None)
    }
}

/// Classifies КИАСУО's `{"msg": "..."}` error bodies by status.
pub struct KiasuoErrors;

impl ErrorClassifier for KiasuoErrors {
    fn classify(&self, status: StatusCode, body: &[u8]) -> Option<Classified> {
        let err: api::ApiError = serde_json::from_slice(body).ok()?;
        let msg = err.msg?;
        let lower = msg.to_lowercase();
        let kind = match status.as_u16() {
            401 | 403 => ErrorKind::Unauthorized,
            429 | 433 => ErrorKind::RateLimited,
            _ if lower.contains("too many") || lower.contains("слишком много") => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::Client,
        };
        Some(Classified { kind, message: msg })
    }
}

struct AuthState {
    access: Option<SecretString>,
    /// `exp` of the access token (seconds since the epoch), when it is a JWT with one.
    exp: Option<i64>,
    issued: Option<SystemTime>,
    refresh: SecretString,
    /// How many refreshes succeeded: a request that waited for a refresh knows by it
    /// whether one happened meanwhile.
    generation: u64,
    /// Set when a refresh may have rotated the refresh token at the source without ejgate
    /// learning the new one, or when the token was refused: no refresh is sent again by
    /// this connector (the old token must not be presented twice).
    lost: Option<String>,
}

/// What the refresh needs, shared with the thread that carries it out.
struct BearerCore {
    instance: String,
    refresh_url: Url,
    file: PathBuf,
    /// The refresh's own timeout: its answer holds the only copy of the new refresh token,
    /// so it is waited for longer than any data request.
    refresh_timeout: Duration,
    roots: Vec<reqwest::Certificate>,
    state: Mutex<AuthState>,
    refreshes: std::sync::atomic::AtomicU64,
    /// Refresh requests sent (answered or not).
    sent: std::sync::atomic::AtomicU64,
}

/// A refresh under way: every request that needs it waits on `done`.
struct Flight {
    done: tokio::sync::watch::Receiver<Option<Result<(), String>>>,
}

impl Flight {
    fn running(&self) -> bool {
        self.done.borrow().is_none()
    }
}

/// The threads of every refresh this process started: [`wait_for_refreshes`] joins them.
static REFRESH_THREADS: Mutex<Vec<std::thread::JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits for every refresh still under way in this process. `ejgate` calls it before it
/// exits: a refresh may have rotated the refresh token at the source, and only that refresh
/// can write the new one (the run that asked for it may have ended long before).
pub fn wait_for_refreshes() {
    let threads = std::mem::take(&mut *REFRESH_THREADS.lock().unwrap_or_else(|e| e.into_inner()));
    for thread in threads {
        let _ = thread.join();
    }
}

/// Bearer access token, renewed with the rotating refresh token: before it expires (its
/// `exp`), and once after a 401. A 401 on the refresh itself is final.
///
/// A refresh runs on a thread of its own, one at a time (requests that need one while it
/// runs wait for the same one), and runs to its end whatever happens to the requests that
/// asked for it: a run that fails or is cancelled drops their futures, never the refresh.
/// Its answer is read with [`KiasuoConfig::refresh_timeout`], the new refresh token is
/// written to the file (atomically) before the new access token is handed out, and the
/// process waits for it before exiting ([`wait_for_refreshes`]).
pub struct RefreshingBearer {
    core: Arc<BearerCore>,
    early: Duration,
    flight: Mutex<Option<Flight>>,
}

impl RefreshingBearer {
    pub fn new(config: &KiasuoConfig) -> Result<Self, SourceError> {
        let fail = |d: String| SourceError::config(&config.instance, SYSTEM, d);
        let what = format!("source «{}» refresh token", config.instance);
        let refresh = SecretRef::file(&config.refresh_token_file).load(&what).map_err(|e| fail(e.to_string()))?;
        let refresh_url = normalize_base_url(&config.base_url)
            .join("diary/refresh")
            .map_err(|e| fail(format!("bad base URL: {e}")))?;
        let mut roots = Vec::new();
        for path in &config.extra_root_certificates {
            let pem = std::fs::read(path)
                .map_err(|e| fail(format!("cannot read the root certificate {}: {e}", path.display())))?;
            roots.extend(
                reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| fail(format!("{} is not a PEM certificate bundle: {e}", path.display())))?,
            );
        }
        let core = BearerCore {
            instance: config.instance.clone(),
            refresh_url,
            file: config.refresh_token_file.clone(),
            refresh_timeout: config.refresh_timeout.max(config.timeout),
            roots,
            state: Mutex::new(AuthState { access: None, exp: None, issued: None, refresh, generation: 0, lost: None }),
            refreshes: std::sync::atomic::AtomicU64::new(0),
            sent: std::sync::atomic::AtomicU64::new(0),
        };
        // The client is built once here, so that a bad certificate is a configuration error
        // at start and not at the first refresh.
        core.http().map_err(fail)?;
        Ok(RefreshingBearer { core: Arc::new(core), early: config.refresh_early, flight: Mutex::new(None) })
    }

    /// How many refreshes succeeded.
    pub fn refreshes(&self) -> u64 {
        self.core.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many refresh requests were sent (answered or not).
    pub fn refresh_requests(&self) -> u64 {
        self.core.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn hint(&self) -> String {
        self.core.hint()
    }

    fn expiring(&self, st: &AuthState) -> bool {
        let Some(exp) = st.exp else { return st.access.is_none() };
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let life = st
            .issued
            .and_then(|i| i.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map(|i| Duration::from_secs(exp.max(0) as u64).saturating_sub(i))
            .unwrap_or(self.early * 4);
        let early = self.early.min(life / 4);
        now + early >= Duration::from_secs(exp.max(0) as u64)
    }

    /// Refreshes unless one succeeded since the caller saw `generation`: joins the refresh
    /// under way, or starts one on its own thread. Dropping the returned future leaves the
    /// refresh running.
    async fn refresh_after(&self, generation: u64) -> Result<(), String> {
        let mut done = {
            let mut flight = self.flight.lock().unwrap_or_else(|e| e.into_inner());
            match flight.as_ref().filter(|f| f.running()) {
                Some(running) => running.done.clone(),
                None => {
                    if self.core.generation() != generation {
                        return Ok(());
                    }
                    let (tx, rx) = tokio::sync::watch::channel(None);
                    let core = self.core.clone();
                    let thread = std::thread::Builder::new()
                        .name("kiasuo-refresh".into())
                        .spawn(move || {
                            let _ = tx.send(Some(core.refresh_to_completion()));
                        })
                        .map_err(|e| format!("POST diary/refresh: cannot start the refresh ({e})"))?;
                    let mut threads = REFRESH_THREADS.lock().unwrap_or_else(|e| e.into_inner());
                    threads.retain(|t| !t.is_finished());
                    threads.push(thread);
                    *flight = Some(Flight { done: rx.clone() });
                    rx
                }
            }
        };
        let outcome = done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| "POST diary/refresh: the refresh ended without an outcome".to_string())?;
        outcome.clone().expect("waited for an outcome")
    }
}

impl BearerCore {
    fn hint(&self) -> String {
        format!(
            "КИАСУО refused the refresh token of source «{}». Logins go through Госуслуги: a person signs in to the КИАСУО diary, takes the new refresh token, puts it in {} and runs the sync again; nothing already synced is lost",
            self.instance,
            self.file.display()
        )
    }

    fn generation(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).generation
    }

    /// A client of its own per refresh (no pooled connection outlives the refresh's
    /// runtime).
    fn http(&self) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("ejgate/", env!("CARGO_PKG_VERSION")))
            .timeout(self.refresh_timeout)
            .pool_max_idle_per_host(0);
        for cert in &self.roots {
            builder = builder.add_root_certificate(cert.clone());
        }
        builder.build().map_err(|e| format!("cannot build the HTTP client: {e}"))
    }

    /// Runs on the refresh's own thread, with a runtime of its own: nothing the run does to
    /// its tasks reaches it.
    fn refresh_to_completion(&self) -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("POST diary/refresh: cannot start the refresh ({e})"))?;
        runtime.block_on(self.refresh_once())
    }

    /// No refresh is sent again by this connector: the source may hold a new refresh
    /// token we never received (presenting the old one again could only be refused), or
    /// refused the one we have.
    fn lose(&self, message: String) -> String {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).lost = Some(message.clone());
        message
    }

    /// POST `/diary/refresh` with the form body; persist the new refresh token; keep the
    /// new access token.
    async fn refresh_once(&self) -> Result<(), String> {
        let presented = {
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(lost) = &st.lost {
                return Err(lost.clone());
            }
            st.refresh.clone()
        };
        let unknown = |what: String| {
            format!(
                "POST diary/refresh: {what}: the source may have rotated the refresh token without ejgate receiving the new one. This run does not send the old one again; the next run tries it once, and if КИАСУО refuses it a person must sign in again"
            )
        };
        let form = format!("refresh-token={}", presented.expose_secret());
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answer = match self
            .http()?
            .post(self.refresh_url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
        {
            Ok(answer) => answer,
            // Nothing reached the source: the token is still the one in force.
            Err(e) if e.is_connect() => {
                return Err(format!("POST diary/refresh: cannot reach the source ({})", e.without_url()))
            }
            Err(e) if e.is_timeout() => {
                return Err(self.lose(unknown(format!("no answer within {} s", self.refresh_timeout.as_secs()))))
            }
            Err(e) => return Err(self.lose(unknown(format!("the request broke off ({})", e.without_url())))),
        };
        let status = answer.status();
        let body = match answer.bytes().await {
            Ok(body) => body,
            Err(e) => return Err(self.lose(unknown(format!("the answer was cut off ({})", e.without_url())))),
        };
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let msg = serde_json::from_slice::<api::ApiError>(&body).ok().and_then(|e| e.msg).unwrap_or_default();
            return Err(self.lose(format!(
                "POST diary/refresh: the refresh token was refused (HTTP {}{}): a new refresh token is needed",
                status.as_u16(),
                if msg.is_empty() { String::new() } else { format!(": {msg}") }
            )));
        }
        if !status.is_success() {
            return Err(self.lose(unknown(format!("HTTP {}", status.as_u16()))));
        }
        let pair: api::RefreshAnswer = match serde_json::from_slice(&body) {
            Ok(pair) => pair,
            Err(e) => return Err(self.lose(unknown(format!("the answer is not {{accessToken, refreshToken}} ({e})")))),
        };
        let new_refresh = SecretString::from(pair.refresh_token.trim().to_string());
        // The old refresh token is dead from now on: the new one goes to disk before the
        // access token that came with it is handed to any request.
        let written = persist_atomically(&self.file, &new_refresh);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.refresh = new_refresh;
        if let Err(e) = written {
            let message = format!(
                "cannot write the new refresh token to {}: {e} (the old one is no longer valid: a person must sign in again once the file is writable)",
                self.file.display()
            );
            st.lost = Some(message.clone());
            return Err(message);
        }
        st.exp = api::jwt_exp(&pair.access_token);
        st.issued = Some(SystemTime::now());
        st.access = Some(SecretString::from(pair.access_token));
        st.generation += 1;
        drop(st);
        self.refreshes.fetch_add(1, std::sync::atomic::Ordering::Release);
        tracing::debug!(source = %self.instance, "access token refreshed");
        Ok(())
    }
}

#[async_trait]
impl Authenticator for RefreshingBearer {
    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, String> {
        // Twice at most: a token that expires again right after its refresh is used anyway
        // (the source answers 401 and `renew` refreshes once more).
        let mut access = None;
        for _ in 0..2 {
            let generation = {
                let st = self.core.state.lock().unwrap_or_else(|e| e.into_inner());
                if !self.expiring(&st) {
                    access = st.access.clone();
                    break;
                }
                st.generation
            };
            self.refresh_after(generation).await.map_err(|e| format!("{e}. {}", self.hint()))?;
            access = self.core.state.lock().unwrap_or_else(|e| e.into_inner()).access.clone();
        }
        let access = access.ok_or_else(|| format!("no access token. {}", self.hint()))?;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", access.expose_secret()))
            .map_err(|_| "the access token holds characters that cannot go into an HTTP header".to_string())?;
        value.set_sensitive(true);
        Ok(request.header(AUTHORIZATION, value))
    }

    async fn renew(&self) -> Result<bool, String> {
        // A renewal that finds a refresh under way waits for that one: a second refresh
        // would only spend the rotating token again.
        self.refresh_after(self.core.generation()).await?;
        Ok(true)
    }

    fn unauthorized_hint(&self) -> String {
        self.hint()
    }
}

/// The base URL as operators paste it — `https://diaryapi.kiasuo.ru`, `…/diary`,
/// `…/diary/api/` — reduced to the host's root (or the proxy path before `diary`), with a
/// trailing `/`: requests then join `diary/api/…` and `diary/refresh` to it.
pub fn normalize_base_url(url: &Url) -> Url {
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    let mut path = base.path().trim_end_matches('/').to_string();
    if path.ends_with("/diary/api") {
        path.truncate(path.len() - "/api".len());
    }
    if path.ends_with("/diary") {
        path.truncate(path.len() - "/diary".len());
    }
    base.set_path(&format!("{path}/"));
    base
}

/// A pupil as planning found it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pupil {
    id: String,
    last_name: String,
    first_name: String,
    middle_name: Option<String>,
    class: String,
}

/// What planning learned of a school, reused by its chunks.
#[derive(Debug, Clone)]
struct SchoolInfo {
    periods: Vec<api::StudyPeriod>,
    classes: Vec<api::SchoolClass>,
    pupils: Vec<Pupil>,
    /// Records of planning's answers that could not be read, and what the account reads
    /// of the school: given with the school's reference batch.
    skipped: Vec<Skipped>,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DiaryParams {
    school: String,
    class: String,
    from: NaiveDate,
    to: NaiveDate,
    /// The pupils who see the same lessons (planning's grouping): the schedule of the first
    /// of each group is read. A pupil in none is read alone.
    #[serde(default)]
    groups: Vec<Vec<String>>,
    /// Whether final marks (`student_marks`) are read in this run (README: the calendar).
    #[serde(default)]
    finals: bool,
}

/// The cursor of a class's `diary` stream: the source's day read up to, and the pupils
/// who saw the same lessons (an older cursor is the day alone).
#[derive(Debug, Serialize, Deserialize)]
struct DiaryCursor {
    to: NaiveDate,
    #[serde(default)]
    groups: Vec<Vec<String>>,
}

impl DiaryCursor {
    fn parse(text: &str) -> Option<Self> {
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text).ok()
        } else {
            parse_date(text).map(|to| DiaryCursor { to, groups: Vec::new() })
        }
    }
}

/// The weeks planning reads of every pupil to learn its groups: the last two weeks up to
/// `end` whose school days (Monday to Friday) all lie in a study period (a group whose
/// lessons fall on a day off in one shows in the other); failing those, the last weeks
/// with any school day in one; failing that, the week of `end`.
fn probe_weeks(periods: &[api::StudyPeriod], year_from: NaiveDate, end: NaiveDate) -> Vec<NaiveDate> {
    let spans: Vec<(NaiveDate, NaiveDate)> =
        periods.iter().filter_map(|p| parse_date(&p.from).zip(parse_date(&p.to))).collect();
    let mut full = Vec::new();
    let mut partial = Vec::new();
    let mut monday = monday_of(end);
    while monday + chrono::Days::new(6) >= year_from && full.len() < 2 {
        let friday = monday + chrono::Days::new(4);
        if friday <= end && spans.iter().any(|(f, t)| *f <= monday && friday <= *t) {
            full.push(monday);
        } else if spans.iter().any(|(f, t)| *f <= friday.min(end) && monday <= *t) {
            partial.push(monday);
        }
        monday = monday - chrono::Days::new(7);
    }
    full.extend(partial);
    full.truncate(2);
    if full.is_empty() {
        full.push(monday_of(end));
    }
    full
}

/// What the token is, as `user` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Account {
    /// `parent: true`: reads its children (every pupil, for the operator account README
    /// describes)
    Parent { children: usize },
    /// `parent: false` and no children: the pupil reads its own diary
    Pupil,
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Account::Parent { children } => write!(f, "a parent's account with {children} children"),
            Account::Pupil => f.write_str("a pupil's own account"),
        }
    }
}

/// The КИАСУО diary connector.
pub struct KiasuoConnector {
    config: KiasuoConfig,
    /// `config.base_url` without `diary/` (the address files are served from).
    base: Url,
    client: SourceClient,
    auth: Arc<RefreshingBearer>,
    ids: IdSpace,
    tables: Tables,
    schools: Mutex<HashMap<String, Arc<SchoolInfo>>>,
    /// The weeks planning read to group the pupils, (pupil, Monday) → the answer: the
    /// fetch uses them instead of asking again.
    probes: Mutex<HashMap<(String, NaiveDate), api::Schedule>>,
}

/// A lesson of the schedule, as the marks of `lesson_marks` are linked to it.
struct Placed {
    lesson: String,
    number: Option<u8>,
    /// The pupil's mark values in the schedule's slots of this lesson.
    values: Vec<String>,
}

/// The Monday of `date`'s ISO week.
fn monday_of(date: NaiveDate) -> NaiveDate {
    date - chrono::Days::new(date.weekday().num_days_from_monday() as u64)
}

/// What the schedules read so far show.
#[derive(Default)]
struct Seen {
    events: BTreeMap<String, api::LessonEvent>,
    homework_items: Vec<(api::HomeworkItem, Option<String>)>,
    /// (the pupil whose schedule it is, subject name, date) → the lessons of that subject
    /// that day, with that pupil's mark values.
    placed: HashMap<(String, String, NaiveDate), Vec<Placed>>,
    /// (the pupil whose schedule it is, lesson, slot) of the «Н», «Б», «У» values shown.
    schedule_attendance: Vec<(String, String, api::Slot)>,
    /// The (pupil, Monday) weeks whose schedule was read from that pupil itself.
    own: std::collections::HashSet<(String, NaiveDate)>,
}

impl Seen {
    /// Takes in `viewer`'s schedule of the week of `monday`.
    fn absorb(
        &mut self,
        tables: &Tables,
        viewer: &str,
        monday: NaiveDate,
        s: &api::Schedule,
        skipped: &mut Vec<Skipped>,
    ) {
        const SCHEDULE: &str = "GET diary/api/schedule";
        self.own.insert((viewer.to_string(), monday));
        let mut lesson_of_homework: HashMap<String, String> = HashMap::new();
        for e in read::each::<api::LessonEvent>(SCHEDULE, &s.schedule, skipped) {
            let Some(date) = parse_date(&e.lesson_date) else {
                skipped.push(Skipped::new(SCHEDULE, "lesson_date", "not a date", &e.lesson_date));
                continue;
            };
            let lesson = e.lesson_event_id.0.clone();
            if let Some(h) = &e.created_homework_id {
                lesson_of_homework.insert(h.0.clone(), lesson.clone());
            }
            let slots: Vec<api::Slot> = read::each(SCHEDULE, &e.slots, skipped)
                .into_iter()
                .chain(read::each(SCHEDULE, &e.marks, skipped))
                .collect();
            let mut values = Vec::new();
            for slot in slots {
                let Some(value) = slot.value().map(str::to_string) else { continue };
                if tables.attendance.get(&value).is_some() {
                    self.schedule_attendance.push((viewer.to_string(), lesson.clone(), slot));
                }
                values.push(value);
            }
            let number = e.lesson_number.filter(|n| (0.0..=255.0).contains(n)).map(|n| n as u8);
            let subject = norm(e.subject.as_deref().unwrap_or_default());
            let at = self.placed.entry((viewer.to_string(), subject, date)).or_default();
            if !at.iter().any(|l| l.lesson == lesson) {
                at.push(Placed { lesson: lesson.clone(), number, values });
            }
            self.events.entry(lesson).or_insert(e);
        }
        for h in read::each::<api::HomeworkItem>(SCHEDULE, &s.homeworks, skipped) {
            let lesson = lesson_of_homework.get(&h.id.0).cloned();
            self.homework_items.push((h, lesson));
        }
    }
}

/// The lessons a schedule shows (their ids, sorted): pupils with the same set in a week
/// are in the same groups.
fn lessons_of(s: &api::Schedule) -> Vec<String> {
    let mut ignored = Vec::new();
    let mut ids: Vec<String> = read::each::<api::LessonEvent>("GET diary/api/schedule", &s.schedule, &mut ignored)
        .into_iter()
        .map(|e| e.lesson_event_id.0)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Lower case, `ё` as `е`, single spaces, no final dot: names compared across answers.
fn norm(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .replace('ё', "е")
        .trim_end_matches('.')
        .to_string()
}

/// The kind and number of a study period or a final-mark type named like «1 четверть»,
/// «II полугодие», «3 триместр».
fn period_kind_and_number(name: &str) -> Option<(m::PeriodKind, u8)> {
    let lower = norm(name);
    let kind = if lower.contains("четв") {
        m::PeriodKind::Quarter
    } else if lower.contains("полугод") {
        m::PeriodKind::HalfYear
    } else if lower.contains("триместр") {
        m::PeriodKind::Trimester
    } else {
        return None;
    };
    let number = lower.split(|c: char| !c.is_alphanumeric()).find_map(|w| match w {
        "i" => Some(1),
        "ii" => Some(2),
        "iii" => Some(3),
        "iv" => Some(4),
        w => w.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok(),
    })?;
    Some((kind, number))
}

/// Which final mark a `standard_mark_type` is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FinalKind {
    Period(String),
    Year,
    Unknown(String),
}

/// A `standard_mark_type` by its name: the study period of the same name, or of the same
/// kind and number; the year («Годовая», «Год»); anything else is not a period's mark.
fn final_kind(label: &str, periods: &[api::StudyPeriod]) -> FinalKind {
    let wanted = norm(label);
    if let Some(p) = periods.iter().find(|p| p.text.as_deref().is_some_and(|t| norm(t) == wanted)) {
        return FinalKind::Period(p.id.0.clone());
    }
    if let Some(kn) = period_kind_and_number(label) {
        let same = periods.iter().find(|p| p.text.as_deref().and_then(period_kind_and_number) == Some(kn));
        return match same {
            Some(p) => FinalKind::Period(p.id.0.clone()),
            None => FinalKind::Unknown(label.to_string()),
        };
    }
    if wanted.contains("год") {
        return FinalKind::Year;
    }
    FinalKind::Unknown(label.to_string())
}

impl KiasuoConnector {
    pub fn new(config: KiasuoConfig) -> Result<Self, SourceError> {
        let tables = Tables::load(config.mappings_dir.as_deref())
            .map_err(|e| SourceError::config(&config.instance, SYSTEM, e))?;
        let base = normalize_base_url(&config.base_url);
        let mut client_config = ClientConfig::new(&config.instance, SYSTEM, base.clone());
        client_config.timeout = config.timeout;
        client_config.extra_root_certificates = config.extra_root_certificates.clone();
        client_config.default_rate = config.requests_per_second;
        client_config.retry = config.retry.clone();
        let auth = Arc::new(RefreshingBearer::new(&config)?);
        let client = SourceClient::new(client_config, auth.clone(), Arc::new(KiasuoErrors))?;
        Ok(KiasuoConnector {
            ids: IdSpace::new(config.instance.clone()),
            config,
            base,
            client,
            auth,
            tables,
            schools: Mutex::new(HashMap::new()),
            probes: Mutex::new(HashMap::new()),
        })
    }

    pub fn client(&self) -> &SourceClient {
        &self.client
    }

    /// How many times this connector refreshed its access token.
    pub fn refreshes(&self) -> u64 {
        self.auth.refreshes()
    }

    fn id(&self, kind: EntityKind, source_id: &str) -> uuid::Uuid {
        self.ids.id(kind, source_id)
    }

    fn record(&self, entity: Entity, source_id: String, scope: &str, date: Option<NaiveDate>) -> Record {
        Record {
            id: self.id(entity.kind(), &source_id),
            source_id,
            scope: scope.to_string(),
            date,
            source_updated_at: None,
            entity,
        }
    }

    fn fail(&self, detail: String) -> SourceError {
        SourceError::config(&self.config.instance, SYSTEM, detail)
    }

    fn school(&self, school: &str) -> Result<Arc<SchoolInfo>, SourceError> {
        self.schools
            .lock()
            .expect("school cache")
            .get(school)
            .cloned()
            .ok_or_else(|| self.fail(format!("school {school} was not planned in this run")))
    }

    /// A homework file's address: relative ones are served by the host.
    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            self.base.join(url).map(String::from).unwrap_or_else(|_| url.to_string())
        } else {
            url.to_string()
        }
    }

    fn fetch_reference(&self, school: &str, scope: &str) -> Result<Batch, SourceError> {
        let info = self.school(school)?;
        let mut records = Vec::new();
        for (i, p) in info.periods.iter().enumerate() {
            let (Some(start), Some(end)) = (parse_date(&p.from), parse_date(&p.to)) else { continue };
            let name = p.text.clone().unwrap_or_else(|| format!("{} период", i + 1));
            let lower = name.to_lowercase();
            let kind = if lower.contains("четверт") {
                m::PeriodKind::Quarter
            } else if lower.contains("полугод") {
                m::PeriodKind::HalfYear
            } else if lower.contains("триместр") {
                m::PeriodKind::Trimester
            } else {
                m::PeriodKind::Other
            };
            let number = period_kind_and_number(&name).map_or(i as u8 + 1, |(_, n)| n);
            let entity = Entity::StudyPeriod(m::StudyPeriod {
                organization: None,
                academic_year: None,
                kind,
                number,
                name,
                start,
                end,
            });
            records.push(self.record(entity, p.id.0.clone(), scope, None));
        }
        for c in &info.classes {
            let grade = c.name.chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().ok();
            let entity = Entity::Class(m::Class {
                organization: None,
                academic_year: None,
                name: c.name.clone(),
                grade,
                homeroom_teacher: None,
            });
            records.push(self.record(entity, c.id.0.clone(), scope, None));
        }
        for p in &info.pupils {
            let entity = Entity::Person(m::Person {
                last_name: p.last_name.clone(),
                first_name: p.first_name.clone(),
                middle_name: p.middle_name.clone(),
                sex: None,
                birth_date: None,
                roles: vec![m::Role::Student],
            });
            records.push(self.record(entity, p.id.clone(), scope, None));
        }
        Ok(Batch {
            skipped: info.skipped.clone(),
            records,
            coverage: vec![Coverage {
                kinds: vec![EntityKind::StudyPeriod, EntityKind::Class, EntityKind::Person],
                scope: scope.to_string(),
                range: None,
            }],
            warnings: info.warnings.clone(),
            requests: 0,
        })
    }

    async fn fetch_diary(&self, p: &DiaryParams, scope: &str) -> Result<Batch, SourceError> {
        let info = self.school(&p.school)?;
        let pupils: Vec<&Pupil> = info.pupils.iter().filter(|x| x.class == p.class).collect();
        let class_uuid = self.id(EntityKind::Class, &p.class);
        let mut warnings = Vec::new();
        let mut skipped = Vec::new();
        let mut requests = 0u32;
        let mut records = Vec::new();
        let concurrency = self.config.concurrency.max(1);

        // Lessons and homework, per ISO week, from one pupil of each group set (the pupils
        // who see the same lessons, as planning found them): read first, since the marks are
        // linked to lessons through them.
        let first_monday = monday_of(p.from);
        let mut weeks = Vec::new();
        let mut monday = first_monday;
        while monday <= p.to {
            weeks.push(monday);
            monday = monday + chrono::Days::new(7);
        }
        let range = DateRange::new(first_monday, weeks.last().copied().unwrap_or(first_monday) + chrono::Days::new(6));
        // pupil → the pupil whose schedule stands for it.
        let mut rep_of: HashMap<String, String> = HashMap::new();
        let mut reps: Vec<String> = Vec::new();
        for group in &p.groups {
            let members: Vec<&String> = group.iter().filter(|x| pupils.iter().any(|y| y.id == **x)).collect();
            let Some(rep) = members.first() else { continue };
            for x in &members {
                rep_of.entry((*x).clone()).or_insert_with(|| (*rep).clone());
            }
            reps.push((*rep).clone());
        }
        for x in &pupils {
            if !rep_of.contains_key(&x.id) {
                rep_of.insert(x.id.clone(), x.id.clone());
                reps.push(x.id.clone());
            }
        }
        let mut seen = Seen::default();
        // The weeks planning read for its grouping are not asked again.
        let probed: Vec<(String, NaiveDate, api::Schedule)> = {
            let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
            let mut taken = Vec::new();
            for x in &pupils {
                for w in &weeks {
                    if let Some(s) = probes.remove(&(x.id.clone(), *w)) {
                        taken.push((x.id.clone(), *w, s));
                    }
                }
            }
            taken
        };
        let have: std::collections::HashSet<(String, NaiveDate)> =
            probed.iter().map(|(x, w, _)| (x.clone(), *w)).collect();
        let mut jobs: Vec<(String, NaiveDate)> = Vec::new();
        for w in &weeks {
            for rep in &reps {
                if !have.contains(&(rep.clone(), *w)) {
                    jobs.push((rep.clone(), *w));
                }
            }
        }
        let schedules = self.schedules(jobs, concurrency).await?;
        requests += schedules.len() as u32;
        for (viewer, monday, s) in probed.into_iter().chain(schedules) {
            seen.absorb(&self.tables, &viewer, monday, &s, &mut skipped);
        }

        // Marks and attendance, per pupil and study period, of the periods the weeks touch
        // (a closed period's marks are read again by full runs); and the subject ids by name.
        let periods: Vec<&api::StudyPeriod> = info
            .periods
            .iter()
            .filter(|x| {
                parse_date(&x.from).zip(parse_date(&x.to)).is_some_and(|(f, t)| f <= range.to && range.from <= t)
            })
            .collect();
        let periods_range = periods
            .iter()
            .filter_map(|x| parse_date(&x.from).zip(parse_date(&x.to)))
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
            .map(|(f, t)| DateRange::new(f, t));
        let mut jobs: Vec<(String, String)> = Vec::new();
        for x in &pupils {
            for per in &periods {
                jobs.push((x.id.clone(), per.id.0.clone()));
            }
        }
        let answers: Vec<(String, String, api::LessonMarks)> = futures::stream::iter(jobs)
            .map(|(pupil, period)| async move {
                let path = format!("diary/api/lesson_marks/{period}");
                let r = self.client.get_json::<api::LessonMarks>("data", &path, &[("id", pupil.clone())]).await?;
                Ok::<_, SourceError>((pupil, period, r.body))
            })
            .buffered(concurrency)
            .try_collect()
            .await?;
        requests += answers.len() as u32;

        // A pupil's own week is read where its group's schedule cannot place a mark: the
        // lesson a slot names is not among those read (the pupil left its group), or the
        // subject has no lesson, or several, that day (the pupil's own slots tell which).
        let mut own_jobs: Vec<(String, NaiveDate)> = Vec::new();
        for (pupil, period, answer) in &answers {
            let endpoint = format!("GET diary/api/lesson_marks/{period}");
            let mut ignored = Vec::new();
            for subj in read::each::<api::SubjectMarks>(&endpoint, &answer.lessons, &mut ignored) {
                let slots: Vec<api::Slot> = read::each(&endpoint, &subj.slots, &mut ignored)
                    .into_iter()
                    .chain(read::each(&endpoint, &subj.marks, &mut ignored))
                    .collect();
                for slot in slots {
                    let Some(date) = slot.lesson_date.as_deref().and_then(parse_date) else { continue };
                    if slot.value().is_none() || !range.contains(date) {
                        continue;
                    }
                    let week = (pupil.clone(), monday_of(date));
                    if seen.own.contains(&week) || own_jobs.contains(&week) {
                        continue;
                    }
                    let placeable = match &slot.lesson_event_id {
                        Some(l) => seen.events.contains_key(&l.0),
                        None => {
                            let rep = rep_of.get(pupil).unwrap_or(pupil);
                            seen.placed.get(&(rep.clone(), norm(&subj.subject), date)).is_some_and(|l| l.len() == 1)
                        }
                    };
                    if !placeable {
                        own_jobs.push(week);
                    }
                }
            }
        }
        let own = self.schedules(own_jobs, concurrency).await?;
        requests += own.len() as u32;
        for (viewer, monday, s) in own {
            seen.absorb(&self.tables, &viewer, monday, &s, &mut skipped);
        }
        let Seen { events, homework_items, mut placed, schedule_attendance, own } = seen;
        for lessons in placed.values_mut() {
            lessons.sort_by_key(|l| (l.number, l.lesson.clone()));
        }
        // The schedule that places a pupil's mark: its own week where it was read, else its
        // group's.
        let viewer = |pupil: &String, date: NaiveDate| -> String {
            if own.contains(&(pupil.clone(), monday_of(date))) {
                pupil.clone()
            } else {
                rep_of.get(pupil).cloned().unwrap_or_else(|| pupil.clone())
            }
        };
        let mut subject_by_name: HashMap<String, String> = HashMap::new();
        let mut marks: BTreeMap<String, Record> = BTreeMap::new();
        let mut attendance: BTreeMap<String, Record> = BTreeMap::new();
        // Whether every mark and attendance read named its lesson: then they are known
        // whatever the weeks read, and the read covers them all.
        let mut all_linked = true;
        // (lesson, pupil) → marks placed so far (a mark without an id is keyed by its place).
        let mut in_lesson: HashMap<(String, String), usize> = HashMap::new();
        // Schedule lessons whose mark values were taken by a mark already (double lessons).
        let mut taken: HashMap<(String, String), Vec<String>> = HashMap::new();
        for (pupil, period, answer) in &answers {
            let endpoint = format!("GET diary/api/lesson_marks/{period}");
            let student = self.id(EntityKind::Person, pupil);
            for subj in read::each::<api::SubjectMarks>(&endpoint, &answer.lessons, &mut skipped) {
                let subject_key =
                    subj.id.as_ref().map(|i| i.0.clone()).unwrap_or_else(|| format!("name:{}", subj.subject.trim()));
                subject_by_name.entry(norm(&subj.subject)).or_insert_with(|| subject_key.clone());
                let subject = self.id(EntityKind::Subject, &subject_key);
                let slots: Vec<api::Slot> = read::each(&endpoint, &subj.slots, &mut skipped)
                    .into_iter()
                    .chain(read::each(&endpoint, &subj.marks, &mut skipped))
                    .collect();
                for slot in slots {
                    let Some(value) = slot.value().map(str::to_string) else { continue };
                    let Some(date) = slot.lesson_date.as_deref().and_then(parse_date) else {
                        let at = slot.lesson_date.clone().unwrap_or_default();
                        skipped.push(Skipped::new(
                            &endpoint,
                            "lesson_date",
                            "not a date",
                            &format!("«{value}» on «{at}»"),
                        ));
                        continue;
                    };
                    let lesson = match &slot.lesson_event_id {
                        Some(l) => Some(l.0.clone()),
                        None => {
                            all_linked = false;
                            let key = (viewer(pupil, date), norm(&subj.subject), date);
                            match placed.get(&key).map(Vec::as_slice).unwrap_or_default() {
                                [] => None,
                                [one] => Some(one.lesson.clone()),
                                many => {
                                    // Two lessons of the subject that day: the one whose
                                    // schedule slots show this value and have not given it
                                    // to another mark yet.
                                    let used = taken.entry((pupil.clone(), value.clone())).or_default();
                                    let pick = many
                                        .iter()
                                        .find(|l| l.values.contains(&value) && !used.contains(&l.lesson))
                                        .or_else(|| many.iter().find(|l| l.values.contains(&value)))
                                        .unwrap_or(&many[0]);
                                    used.push(pick.lesson.clone());
                                    Some(pick.lesson.clone())
                                }
                            }
                        }
                    };
                    let Some(lesson) = lesson else {
                        if range.contains(date) {
                            skipped.push(Skipped::new(
                                &endpoint,
                                "lesson_date",
                                format!("the schedule shows no lesson of «{}» on {date}", subj.subject.trim()),
                                &format!("«{value}» of pupil {pupil}"),
                            ));
                        }
                        // Outside the weeks read, it is read with them (a full run reads them all).
                        continue;
                    };
                    let entered_at = slot.updated_at.as_deref().and_then(parse_datetime).map(|(dt, _)| dt);
                    if let Some(code) = self.tables.attendance.get(&value) {
                        let key = format!("{lesson}:{pupil}");
                        let entity = Entity::Attendance(m::Attendance {
                            student,
                            lesson: self.id(EntityKind::Lesson, &lesson),
                            status: code.status,
                            reason: code.reason,
                            source_status: value.clone(),
                            comment: slot.comment(),
                            entered_at,
                        });
                        attendance.insert(key.clone(), self.record(entity, key, scope, Some(date)));
                        continue;
                    }
                    let (scale, numeric, _) = self.tables.mark(&value, &mut warnings);
                    let place = in_lesson.entry((lesson.clone(), pupil.clone())).or_default();
                    *place += 1;
                    // ASSUMPTION (API.md): a mark without an id is keyed by its place among
                    // the pupil's marks of the lesson.
                    let key = match &slot.id {
                        Some(id) => id.0.clone(),
                        None => format!("{lesson}:{pupil}:{place}"),
                    };
                    let entity = Entity::Mark(m::Mark {
                        comment: None,
                        is_point: false,
                        point_date: None,
                        student,
                        lesson: Some(self.id(EntityKind::Lesson, &lesson)),
                        work: None,
                        subject: Some(subject),
                        value: value.clone(),
                        numeric,
                        scale,
                        weight: slot.weight,
                        entered_at,
                        entered_by: None,
                    });
                    marks.insert(key.clone(), self.record(entity, key, scope, Some(date)));
                }
            }
        }
        // Attendance the schedule shows that `lesson_marks` did not (on the days of a study
        // period read: `lesson_marks` is read per period).
        let in_a_period = |d: NaiveDate| {
            periods
                .iter()
                .any(|p| parse_date(&p.from).is_some_and(|f| f <= d) && parse_date(&p.to).is_some_and(|t| d <= t))
        };
        for (pupil, lesson, slot) in schedule_attendance {
            let key = format!("{lesson}:{pupil}");
            if attendance.contains_key(&key) {
                continue;
            }
            let (Some(value), Some(e)) = (slot.value(), events.get(&lesson)) else { continue };
            if !parse_date(&e.lesson_date).is_some_and(in_a_period) {
                continue;
            }
            let Some(code) = self.tables.attendance.get(value) else { continue };
            let entity = Entity::Attendance(m::Attendance {
                student: self.id(EntityKind::Person, &pupil),
                lesson: self.id(EntityKind::Lesson, &lesson),
                status: code.status,
                reason: code.reason,
                source_status: value.to_string(),
                comment: slot.comment(),
                entered_at: slot.updated_at.as_deref().and_then(parse_datetime).map(|(dt, _)| dt),
            });
            attendance.insert(key.clone(), self.record(entity, key, scope, parse_date(&e.lesson_date)));
        }
        records.extend(marks.into_values());
        records.extend(attendance.into_values());

        for (lesson, e) in &events {
            let Some(date) = parse_date(&e.lesson_date) else { continue };
            let subject = e
                .subject
                .as_deref()
                .and_then(|n| subject_by_name.get(&norm(n)))
                .map(|id| self.id(EntityKind::Subject, id));
            let entity = Entity::Lesson(m::Lesson {
                section: None,
                unit: class_uuid,
                subject,
                date,
                number: e.lesson_number.filter(|n| (0.0..=255.0).contains(n)).map(|n| n as u8),
                teacher: None,
                substitute: None,
                topic: e.theme.clone().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
                status: if e.cancelled { m::LessonStatus::Cancelled } else { m::LessonStatus::Held },
            });
            records.push(self.record(entity, lesson.clone(), scope, Some(date)));
        }
        let mut homework: BTreeMap<String, Record> = BTreeMap::new();
        for (h, lesson) in homework_items {
            let text = h.text.as_deref().map(str::trim).unwrap_or_default();
            if text.is_empty() || text == "Без задания" {
                continue;
            }
            let event = lesson.as_ref().and_then(|l| events.get(l));
            let date = event
                .and_then(|l| parse_date(&l.lesson_date))
                .or_else(|| h.lesson_date.as_deref().and_then(parse_date));
            let attachments = h
                .files
                .iter()
                .chain(&h.links)
                .filter_map(|f| {
                    let url = f.url.as_deref().map(str::trim).filter(|u| !u.is_empty()).map(|u| self.absolute(u));
                    let name = f
                        .title
                        .clone()
                        .or_else(|| f.name.clone())
                        .map(|t| t.trim().to_string())
                        .filter(|t| !t.is_empty())
                        .or_else(|| url.as_deref().and_then(|u| u.rsplit('/').next()).map(str::to_string))?;
                    Some(m::Attachment { name, url })
                })
                .collect();
            let entity = Entity::Homework(m::Homework {
                attachments,
                lesson: lesson.as_ref().map(|l| self.id(EntityKind::Lesson, l)),
                text: text.to_string(),
                entered_at: None,
                due_date: h.check_at.as_deref().and_then(parse_date),
            });
            homework.insert(h.id.0.clone(), self.record(entity, h.id.0.clone(), scope, date));
        }
        records.extend(homework.into_values());

        // Final marks, per pupil, when planning's calendar asks for them (README).
        let pupil_ids: Vec<String> = if p.finals { pupils.iter().map(|x| x.id.clone()).collect() } else { Vec::new() };
        let finals: Vec<(String, api::StudentMarks)> = futures::stream::iter(pupil_ids)
            .map(|pupil| async move {
                let path = format!("diary/api/student_marks/{}", p.class);
                let r = self.client.get_json::<api::StudentMarks>("data", &path, &[("id", pupil.clone())]).await?;
                Ok::<_, SourceError>((pupil, r.body))
            })
            .buffered(concurrency)
            .try_collect()
            .await?;
        requests += finals.len() as u32;
        let endpoint = format!("GET diary/api/student_marks/{}", p.class);
        let period_ids: std::collections::HashSet<&str> = info.periods.iter().map(|x| x.id.0.as_str()).collect();
        for (pupil, answer) in &finals {
            let types: HashMap<String, FinalKind> =
                read::each::<api::MarkType>(&endpoint, &answer.standard_mark_type, &mut skipped)
                    .into_iter()
                    .map(|t| {
                        let kind = match t.label() {
                            Some(label) => final_kind(label, &info.periods),
                            None => FinalKind::Unknown(t.id.0.clone()),
                        };
                        (t.id.0, kind)
                    })
                    .collect();
            for subj in read::each::<api::FinalMarks>(&endpoint, &answer.lessons, &mut skipped) {
                let subject_key = match (&subj.id, subj.subject.as_deref()) {
                    (Some(id), _) => id.0.clone(),
                    (None, Some(name)) => {
                        subject_by_name.get(&norm(name)).cloned().unwrap_or_else(|| format!("name:{}", name.trim()))
                    }
                    (None, None) => {
                        skipped.push(Skipped::new(
                            &endpoint,
                            "lessons[].subject",
                            "no subject",
                            &format!("{:?}", subj.marks),
                        ));
                        continue;
                    }
                };
                for (mark_type, v) in &subj.marks {
                    let Some(value) = api::value_text(v) else { continue };
                    let kind = match types.get(mark_type) {
                        Some(kind) => kind.clone(),
                        // Older answers and our first guess: the key is the period's id.
                        None if period_ids.contains(mark_type.as_str()) => FinalKind::Period(mark_type.clone()),
                        None if mark_type == "year" => FinalKind::Year,
                        None => FinalKind::Unknown(mark_type.clone()),
                    };
                    let period = match kind {
                        FinalKind::Period(p) => Some(p),
                        FinalKind::Year => None,
                        FinalKind::Unknown(name) => {
                            let w = format!(
                                "{endpoint}: final marks of type «{name}» are neither a study period's nor the year's; they are left out"
                            );
                            if !warnings.contains(&w) {
                                warnings.push(w);
                            }
                            continue;
                        }
                    };
                    let (_, numeric, special) = self.tables.mark(&value, &mut warnings);
                    let key = format!("{pupil}:{subject_key}:{}", period.as_deref().unwrap_or("year"));
                    let entity = Entity::FinalMark(m::FinalMark {
                        student: self.id(EntityKind::Person, pupil),
                        subject: self.id(EntityKind::Subject, &subject_key),
                        period: period.as_ref().map(|x| self.id(EntityKind::StudyPeriod, x)),
                        value,
                        numeric,
                        special,
                        entered_at: None,
                    });
                    records.push(self.record(entity, key, scope, None));
                }
            }
        }

        let mut coverage = vec![Coverage {
            kinds: vec![EntityKind::Lesson, EntityKind::Homework],
            scope: scope.to_string(),
            range: Some(range),
        }];
        // Marks of the periods read (every mark named its lesson), or of the weeks read
        // (marks are placed through the schedule, so only those of the weeks read are kept).
        if let Some(periods_range) = periods_range {
            coverage.push(Coverage {
                kinds: vec![EntityKind::Mark, EntityKind::Attendance],
                scope: scope.to_string(),
                range: Some(if all_linked { periods_range } else { range }),
            });
        }
        if p.finals {
            coverage.push(Coverage { kinds: vec![EntityKind::FinalMark], scope: scope.to_string(), range: None });
        }
        Ok(Batch { skipped, records, coverage, warnings, requests })
    }

    /// The schedules of these (pupil, Monday) weeks.
    async fn schedules(
        &self,
        jobs: Vec<(String, NaiveDate)>,
        concurrency: usize,
    ) -> Result<Vec<(String, NaiveDate, api::Schedule)>, SourceError> {
        futures::stream::iter(jobs)
            .map(|(pupil, monday)| async move {
                let week = monday.iso_week();
                let query =
                    [("id", pupil.clone()), ("year", week.year().to_string()), ("week", week.week().to_string())];
                let r = self.client.get_json::<api::Schedule>("data", "diary/api/schedule", &query).await?;
                Ok::<_, SourceError>((pupil, monday, r.body))
            })
            .buffered(concurrency)
            .try_collect()
            .await
    }

    /// The children the token reads: a parent's children, or the pupil itself.
    fn children_of(
        &self,
        user: &api::User,
        skipped: &mut Vec<Skipped>,
    ) -> Result<(Account, Vec<api::Child>), SourceError> {
        const USER: &str = "GET diary/api/user";
        if !user.children.is_empty() || user.parent {
            let children: Vec<api::Child> = read::each(USER, &user.children, skipped);
            if children.is_empty() {
                let unread = if skipped.is_empty() {
                    String::new()
                } else {
                    format!(" ({} could not be read: {})", skipped.len(), skipped[0])
                };
                return Err(self.fail(format!(
                    "the token is a parent's account with no children to read{unread}: there is nothing to sync"
                )));
            }
            return Ok((Account::Parent { children: children.len() }, children));
        }
        // A pupil's own account (ASSUMPTION, API.md): its data calls name its own id.
        let child = api::Child {
            id: user.id.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone().or_else(|| user.username.clone()),
            middle_name: user.middle_name.clone(),
            school_class: user.school_class.clone(),
            school_class_id: None,
        };
        Ok((Account::Pupil, vec![child]))
    }
}

#[async_trait]
impl Connector for KiasuoConnector {
    fn instance(&self) -> &str {
        &self.config.instance
    }

    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn requests_sent(&self) -> Option<u64> {
        Some(self.client.stats().requests.load(std::sync::atomic::Ordering::Relaxed) + self.auth.refresh_requests())
    }

    fn client_stats(&self) -> Vec<std::sync::Arc<ejgate_sdk::client::ClientStats>> {
        vec![self.client.stats().clone()]
    }

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan, SourceError> {
        self.probes.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let user = self.client.get_json::<api::User>("reference", "diary/api/user", &[("id", "0".to_string())]).await?;
        let now_utc: Option<NaiveDateTime> = user.date.map(|d: SystemTime| DateTime::<Utc>::from(d).naive_utc());
        let source_now =
            now_utc.unwrap_or_else(|| Utc::now().naive_utc()) + chrono::Duration::hours(SOURCE_UTC_OFFSET_HOURS);
        let today = source_now.date();
        let mut plan_skipped = Vec::new();
        let (account, mut children) = self.children_of(&user.body, &mut plan_skipped)?;
        children.sort_by(|a, b| a.id.cmp(&b.id));

        // Schools: the class lists seen from the children (each school's list once).
        struct Found {
            classes: Vec<api::SchoolClass>,
            pupils: Vec<Pupil>,
            first_child: String,
            skipped: Vec<Skipped>,
        }
        let mut schools: Vec<Found> = Vec::new();
        let mut school_of_class: HashMap<String, usize> = HashMap::new();
        let mut classless = 0usize;
        for child in children {
            let known = child.school_class_id.as_ref().and_then(|c| school_of_class.get(&c.0).copied());
            let (school, class_id) = match known {
                Some(s) => (s, child.school_class_id.clone().map(|c| c.0)),
                None => {
                    let raw = self
                        .client
                        .get_json::<api::RawList>(
                            "reference",
                            "diary/api/school_classes",
                            &[("id", child.id.0.clone())],
                        )
                        .await?
                        .body;
                    let mut list_skipped = Vec::new();
                    let list: Vec<api::SchoolClass> =
                        read::each("GET diary/api/school_classes", &raw.0, &mut list_skipped);
                    let class_id = child.school_class_id.clone().map(|c| c.0).or_else(|| {
                        let name = norm(child.school_class.as_deref()?);
                        list.iter().find(|c| norm(&c.name) == name).map(|c| c.id.0.clone())
                    });
                    let existing = list.iter().find_map(|c| school_of_class.get(&c.id.0).copied());
                    let index = existing.unwrap_or_else(|| {
                        schools.push(Found {
                            classes: Vec::new(),
                            pupils: Vec::new(),
                            first_child: child.id.0.clone(),
                            skipped: Vec::new(),
                        });
                        schools.len() - 1
                    });
                    schools[index].skipped.extend(list_skipped);
                    for c in list {
                        if school_of_class.insert(c.id.0.clone(), index).is_none() {
                            schools[index].classes.push(c);
                        }
                    }
                    (index, class_id)
                }
            };
            let Some(class) = class_id else {
                classless += 1;
                schools[school].skipped.push(Skipped::new(
                    "GET diary/api/user",
                    "children[].school_class",
                    format!(
                        "class «{}» is not among the school's classes",
                        child.school_class.as_deref().unwrap_or("")
                    ),
                    &format!("child {}", child.id),
                ));
                continue;
            };
            schools[school].pupils.push(Pupil {
                id: child.id.0.clone(),
                last_name: child.last_name.unwrap_or_default(),
                first_name: child.first_name.unwrap_or_default(),
                middle_name: child.middle_name.filter(|m| !m.trim().is_empty()),
                class,
            });
        }
        if schools.iter().all(|s| s.pupils.is_empty()) {
            return Err(self.fail(format!(
                "the token is {account}, and none of them could be placed in a class ({classless} without one): there is nothing to sync"
            )));
        }

        // The configuration may name the schools to read (their name, `ou`, or a class id).
        let name_of = |f: &Found| f.classes.iter().find_map(|c| c.ou.clone()).unwrap_or_default();
        if !self.config.schools.is_empty() {
            let seen: Vec<String> = schools.iter().map(name_of).collect();
            for wanted in &self.config.schools {
                let found = schools
                    .iter()
                    .any(|s| norm(&name_of(s)) == norm(wanted) || s.classes.iter().any(|c| c.id.0 == *wanted));
                if !found {
                    return Err(self.fail(format!(
                        "the configuration asks for school «{wanted}», but the token is {account} and sees only {}: a whole school is read through an operator account whose children are all its pupils (README)",
                        if seen.is_empty() { "no school".to_string() } else { seen.iter().map(|s| format!("«{s}»")).collect::<Vec<_>>().join(", ") }
                    )));
                }
            }
            if account == Account::Pupil {
                return Err(self.fail(format!(
                    "the configuration asks for the whole school ({}), but the token is {account}: it reads that pupil's diary only. A whole school is read through an operator account whose children are all its pupils (README); remove `schools` to sync this pupil",
                    self.config.schools.join(", ")
                )));
            }
            schools.retain(|s| {
                self.config
                    .schools
                    .iter()
                    .any(|w| norm(&name_of(s)) == norm(w) || s.classes.iter().any(|c| c.id.0 == *w))
            });
        }

        let mut chunks = Vec::new();
        let school_count = schools.len();
        for (i, found) in schools.into_iter().enumerate() {
            let Found { classes, pupils, first_child, mut skipped } = found;
            let Some(key) = classes.iter().map(|c| c.id.0.clone()).min_by(|a, b| (a.len(), a).cmp(&(b.len(), b)))
            else {
                continue;
            };
            let raw = self
                .client
                .get_json::<api::RawList>("reference", "diary/api/study_periods", &[("id", first_child)])
                .await?
                .body;
            let periods: Vec<api::StudyPeriod> = read::each("GET diary/api/study_periods", &raw.0, &mut skipped);
            if i == 0 {
                skipped.append(&mut plan_skipped);
            }
            let mut warnings = Vec::new();
            if !self.config.schools.is_empty() {
                if let Account::Parent { .. } = account {
                    warnings.push(format!(
                        "school «{}»: the token is {account}; ejgate reads the {} of them in this school, not pupils the account does not list (a whole school needs an operator account whose children are all its pupils, README)",
                        classes.iter().find_map(|c| c.ou.clone()).unwrap_or_default(),
                        pupils.len()
                    ));
                }
            }
            let from = periods.iter().filter_map(|p| parse_date(&p.from)).min();
            let to = periods.iter().filter_map(|p| parse_date(&p.to)).max();
            let year = from.zip(to).map(|(f, t)| DateRange::new(f, t));
            // The diary API has no year parameter: it gives the current year's study periods
            // (and classes) only, so a run asked for another year is refused.
            if let Some(wanted) = ctx.year.filter(|w| !year.is_some_and(|y| w.is(&y))) {
                let served = year.map_or("no year (no study periods)".into(), |y| {
                    ejgate_sdk::year::SchoolYear::containing(y.from).to_string()
                });
                return Err(wanted.not_served(
                    &self.config.instance,
                    SYSTEM,
                    &served,
                    "the diary API gives the current year's study periods only",
                ));
            }
            let school_scope = format!("school:{key}");
            chunks.push(Chunk {
                stream: "reference".into(),
                scope: school_scope,
                params: serde_json::json!({"school": key}),
                cursor_after: None,
            });
            if let Some(year) = year {
                let end = year.to.min(today);
                let probe = probe_weeks(&periods, year.from, end);
                let period_ends: Vec<NaiveDate> = periods.iter().filter_map(|p| parse_date(&p.to)).collect();
                // (class, scope, from, groups known from the last run, whether final marks are read)
                let mut planned: Vec<(String, String, NaiveDate, Vec<Vec<String>>, bool)> = Vec::new();
                let mut to_probe: Vec<(String, NaiveDate)> = Vec::new();
                for class in &classes {
                    let members: Vec<&str> =
                        pupils.iter().filter(|p| p.class == class.id.0).map(|p| p.id.as_str()).collect();
                    if members.is_empty() {
                        continue;
                    }
                    let scope = format!("class:{}", class.id.0);
                    let cursor = match ctx.mode {
                        SyncMode::Incremental => ctx.cursor("diary", &scope).and_then(DiaryCursor::parse),
                        SyncMode::Full => None,
                    };
                    let from = match &cursor {
                        Some(c) => (c.to.min(end) - chrono::Days::new(self.config.window_days as u64)).max(year.from),
                        None => year.from,
                    };
                    if from > end {
                        continue;
                    }
                    let finals = cursor.is_none() || self.config.final_marks.due(&period_ends, today, &class.id.0);
                    let groups: Vec<Vec<String>> = cursor
                        .map(|c| c.groups)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|g| g.into_iter().filter(|x| members.contains(&x.as_str())).collect::<Vec<_>>())
                        .filter(|g| !g.is_empty())
                        .collect();
                    for x in members {
                        if !groups.iter().flatten().any(|y| y == x) {
                            to_probe.extend(probe.iter().map(|w| (x.to_string(), *w)));
                        }
                    }
                    planned.push((class.id.0.clone(), scope, from, groups, finals));
                }
                // One week of each pupil whose groups are not known: pupils who see the same
                // lessons that week share a schedule (its answers are kept for the fetch).
                let probed = self.schedules(to_probe, self.config.concurrency.max(1)).await?;
                let mut seen_by: BTreeMap<String, Vec<String>> = BTreeMap::new();
                {
                    let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
                    for (pupil, monday, s) in probed {
                        seen_by.entry(pupil.clone()).or_default().extend(lessons_of(&s));
                        probes.insert((pupil, monday), s);
                    }
                }
                let mut found: BTreeMap<(String, Vec<String>), Vec<String>> = BTreeMap::new();
                for (pupil, mut lessons) in seen_by {
                    let class = pupils.iter().find(|p| p.id == pupil).map(|p| p.class.clone()).unwrap_or_default();
                    lessons.sort();
                    lessons.dedup();
                    if lessons.is_empty() {
                        // No lesson those weeks: nothing tells its groups, so it is read alone.
                        lessons.push(format!("alone:{pupil}"));
                    }
                    found.entry((class, lessons)).or_default().push(pupil);
                }
                for (class, scope, from, mut groups, finals) in planned {
                    groups.extend(found.iter().filter(|((c, _), _)| *c == class).map(|(_, g)| g.clone()));
                    for g in &mut groups {
                        g.sort();
                    }
                    groups.sort();
                    let cursor = DiaryCursor { to: end, groups: groups.clone() };
                    let params = DiaryParams { school: key.clone(), class, from, to: end, groups, finals };
                    chunks.push(Chunk {
                        stream: "diary".into(),
                        scope,
                        params: serde_json::to_value(params).expect("params serialize"),
                        cursor_after: Some(serde_json::to_string(&cursor).expect("cursors serialize")),
                    });
                }
            }
            let info = SchoolInfo { periods, classes, pupils, skipped, warnings };
            self.schools.lock().expect("school cache").insert(key, Arc::new(info));
        }
        tracing::debug!(source = %self.config.instance, %account, schools = school_count, "planned");
        Ok(Plan { source_now: Some(source_now), chunks })
    }

    fn estimate_requests(&self, chunk: &Chunk) -> u64 {
        let Ok(p) = serde_json::from_value::<DiaryParams>(chunk.params.clone()) else { return 1 };
        let days = (p.to - p.from).num_days().max(0) as u64 + 1;
        let weeks = days.div_ceil(7);
        let pupils = p.groups.iter().map(|g| g.len() as u64).sum::<u64>();
        // One schedule per group set and week; `lesson_marks` per pupil and period (a
        // quarter is about 60 days); final marks per pupil when due.
        p.groups.len() as u64 * weeks + pupils * days.div_ceil(60) + if p.finals { pupils } else { 0 }
    }

    async fn fetch(&self, chunk: &Chunk) -> Result<Batch, SourceError> {
        match chunk.stream.as_str() {
            "reference" => {
                let school = chunk.params.get("school").and_then(|v| v.as_str()).unwrap_or_default();
                self.fetch_reference(school, &chunk.scope)
            }
            "diary" => {
                let params: DiaryParams = serde_json::from_value(chunk.params.clone())
                    .map_err(|e| self.fail(format!("bad diary chunk: {e}")))?;
                self.fetch_diary(&params, &chunk.scope).await
            }
            other => Err(self.fail(format!("unknown stream {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_tables_load_and_read_double_marks_and_attendance() {
        let t = Tables::load(None).unwrap();
        let mut w = Vec::new();
        assert_eq!(t.mark("5/4", &mut w), (m::MarkScale::Five, Some(4.5), None));
        assert_eq!(t.mark("4+", &mut w).1, Some(4.25));
        assert_eq!(t.mark("5+/4-", &mut w), (m::MarkScale::Five, Some(4.5), None));
        assert_eq!(t.mark("н/а", &mut w).2, Some(m::SpecialFinal::NotCertified));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(t.mark("Ж", &mut w).0, m::MarkScale::Other);
        assert_eq!(w.len(), 1);
        for (v, reason) in
            [("Н", m::AbsenceReason::Unexcused), ("Б", m::AbsenceReason::Illness), ("У", m::AbsenceReason::Excused)]
        {
            let c = t.attendance.get(v).unwrap();
            assert_eq!((c.status, c.reason), (m::AttendanceStatus::Absent, Some(reason)));
        }
        assert_eq!(t.attendance.get("О").unwrap().status, m::AttendanceStatus::Late);
        assert!(t.attendance.get("5").is_none());
    }

    #[test]
    fn final_mark_types_are_read_by_their_names() {
        let period = |id: &str, text: &str| api::StudyPeriod {
            id: ejgate_sdk::time::SourceId(id.into()),
            text: Some(text.into()),
            from: "2025-09-01".into(),
            to: "2025-10-26".into(),
        };
        let periods = [period("71", "1 четверть"), period("72", "2 четверть"), period("81", "1 полугодие")];
        assert_eq!(final_kind("1 четверть", &periods), FinalKind::Period("71".into()));
        assert_eq!(final_kind("II четверть", &periods), FinalKind::Period("72".into()));
        assert_eq!(final_kind("2 четв.", &periods), FinalKind::Period("72".into()));
        assert_eq!(final_kind("1 Полугодие", &periods), FinalKind::Period("81".into()));
        assert_eq!(final_kind("Годовая", &periods), FinalKind::Year);
        assert_eq!(final_kind("Год", &periods), FinalKind::Year);
        // A half-year's name holds «год» too, and is not the year's.
        assert_eq!(final_kind("2 полугодие", &periods), FinalKind::Unknown("2 полугодие".into()));
        assert_eq!(final_kind("Экзамен", &periods), FinalKind::Unknown("Экзамен".into()));
    }

    #[test]
    fn the_base_url_is_read_with_or_without_diary() {
        for pasted in [
            "https://diaryapi.kiasuo.ru",
            "https://diaryapi.kiasuo.ru/",
            "https://diaryapi.kiasuo.ru/diary",
            "https://diaryapi.kiasuo.ru/diary/",
            "https://diaryapi.kiasuo.ru/diary/api/",
            "https://diaryapi.kiasuo.ru/diary?id=0",
        ] {
            let base = normalize_base_url(&Url::parse(pasted).unwrap());
            assert_eq!(base.as_str(), "https://diaryapi.kiasuo.ru/", "{pasted}");
            assert_eq!(base.join("diary/refresh").unwrap().as_str(), "https://diaryapi.kiasuo.ru/diary/refresh");
        }
        let proxied = normalize_base_url(&Url::parse("http://127.0.0.1:8080/kiasuo/diary").unwrap());
        assert_eq!(proxied.as_str(), "http://127.0.0.1:8080/kiasuo/");
    }

    #[test]
    fn msg_errors_classify_by_status() {
        let c = KiasuoErrors;
        let e = c.classify(StatusCode::UNAUTHORIZED, br#"{"msg":"Token has expired"}"#).unwrap();
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert_eq!(e.message, "Token has expired");
        assert_eq!(c.classify(StatusCode::TOO_MANY_REQUESTS, br#"{"msg":"x"}"#).unwrap().kind, ErrorKind::RateLimited);
        assert_eq!(c.classify(StatusCode::INTERNAL_SERVER_ERROR, br#"{"msg":"x"}"#).unwrap().kind, ErrorKind::Server);
        assert_eq!(c.classify(StatusCode::NOT_FOUND, br#"{"msg":"x"}"#).unwrap().kind, ErrorKind::Client);
        assert!(c.classify(StatusCode::BAD_GATEWAY, b"<html>").is_none());
    }
}
