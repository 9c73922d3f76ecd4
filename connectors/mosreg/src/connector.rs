//! The «Моя школа» connector: plans a run and turns the API's answers into canonical
//! records. See API.md for every request it makes and README.md for what it reads.
//!
//! The operator supplies the JWT (login is Госуслуги, done by a person; the token is the
//! `aupd_token` cookie of a signed-in staff user). The connector sends it as
//! `Authorization: Bearer`, with `Profile-Id` (the staff profile from
//! `acl/api/users/profile_info`) and `X-Mes-Subsystem`. When a data call is refused (401/403
//! or the «Предыдущая сессия … завершена» body) it refreshes the token once with GET
//! `v2/token/refresh` (plain-text answer) and retries; when the refresh fails too, the run
//! stops with a message naming the token to renew.
//!
//! Three hosts (each base URL configurable): `authedu.mosreg.ru` (events, family marks),
//! `api.myschool.mosreg.ru` (`subject_marks`), `myschool.mosreg.ru` (`acl/api`, `core/api`,
//! the refresh).
//!
//! Chunks of a run (one store transaction each):
//! - `school`: the school, its year, periods, holidays, classes, groups, subjects and staff;
//! - `students`: the pupils (per class `core/api/profiles`) and their memberships;
//! - `journal` (per date range, by lesson date): every pupil's events — lessons, homework,
//!   classroom jobs, marks, attendance — joined with the family marks (`created_at`);
//! - `student` (per pupil): period and year marks from `subject_marks`.
//!
//! Full runs read the year in pieces of `chunk_days`; incremental runs re-read the journal
//! from the stream's cursor minus `window_days` up to the source's today.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use url::Url;

use ejgate_sdk::cadence::FinalMarksCadence;
use ejgate_sdk::client::{
    Authenticator, Classified, ClientConfig, ErrorClassifier, ErrorKind, RetryPolicy, SourceClient, SourceError,
};
use ejgate_sdk::connector::{Batch, Chunk, Connector, Plan, PlanContext, SyncMode};
use ejgate_sdk::mapping::CodeTable;
use ejgate_sdk::model::{self as m, Coverage, DateRange, Entity, EntityKind, IdSpace, Record};
use ejgate_sdk::ranges::RangeLimit;
use ejgate_sdk::read::{self, Skipped};
use ejgate_sdk::time::{parse_date, parse_datetime, SourceId};

use crate::api;

const SYSTEM: &str = "mosreg";

/// The three hosts of «Моя школа». Each ends with `/`; request paths are relative to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MosregBaseUrls {
    /// `https://authedu.mosreg.ru/`: `api/eventcalendar/…`, `api/family/web/v1/…`.
    pub web: Url,
    /// `https://api.myschool.mosreg.ru/`: `family/mobile/v1/…` (no `api/` prefix).
    pub mobile: Url,
    /// `https://myschool.mosreg.ru/`: `acl/api/…`, `core/api/…`, `v2/token/refresh`.
    pub school: Url,
}

impl MosregBaseUrls {
    /// The production hosts.
    pub fn production() -> Self {
        MosregBaseUrls {
            web: Url::parse("https://authedu.mosreg.ru/").expect("a valid URL"),
            mobile: Url::parse("https://api.myschool.mosreg.ru/").expect("a valid URL"),
            school: Url::parse("https://myschool.mosreg.ru/").expect("a valid URL"),
        }
    }

    /// All three path families under one base URL (how the emulator serves them).
    pub fn single(base: Url) -> Self {
        MosregBaseUrls { web: base.clone(), mobile: base.clone(), school: base }
    }

    /// Each base URL as [`api_root`] reads it.
    pub fn normalized(&self) -> Self {
        MosregBaseUrls {
            web: api_root(self.web.clone()),
            mobile: api_root(self.mobile.clone()),
            school: api_root(self.school.clone()),
        }
    }
}

/// The root of a host's API as an operator may paste it: with or without the trailing `/`,
/// with or without a path prefix (МЭШ's mobile host is `school.mos.ru/api`), even with one
/// of the path families (`…/api/family/web/v1/`) left on; request paths join the result.
pub fn api_root(mut url: Url) -> Url {
    let path = url.path().trim_end_matches('/').to_string();
    let mut root = path.as_str();
    for family in [
        "api/eventcalendar/v1/api",
        "api/family/web/v1",
        "family/mobile/v1",
        "acl/api",
        "core/api",
        "v2/token",
        "lms/api",
    ] {
        if let Some(rest) = root.strip_suffix(family) {
            if rest.is_empty() || rest.ends_with('/') {
                root = rest.trim_end_matches('/');
                break;
            }
        }
    }
    url.set_path(&format!("{root}/"));
    url.set_query(None);
    url
}

/// Days of journal a request asks for by default in a full run (README).
pub const DEFAULT_REQUEST_DAYS: u32 = 92;

/// The settings of one «Моя школа» source instance.
#[derive(Debug, Clone)]
pub struct MosregConfig {
    /// The source instance name (`mosreg`, `school-16-mosreg`): part of every canonical id.
    pub instance: String,
    pub base_urls: MosregBaseUrls,
    /// The JWT (the `aupd_token` cookie of a signed-in staff user).
    pub token: SecretString,
    /// Where the token came from (a file, an environment variable), for the message that
    /// asks for a new one.
    pub token_origin: String,
    /// When set, a refreshed token is written here (atomically, 0600) before it is used, so
    /// the next run starts with it.
    pub token_file: Option<PathBuf>,
    /// Try GET `v2/token/refresh` once when the token is refused (on МЭШ the refresh is said
    /// not to extend `exp`; then the operator must supply a new token).
    pub refresh: bool,
    /// `acl/api/users/profile_info` types that count as a staff profile able to read a whole
    /// school (assumption: the platform's staff view uses the same paths).
    pub staff_profile_types: Vec<String>,
    /// The school's offset from UTC in hours (Moscow region: +3): turns the source's `Date`
    /// header into its local "now".
    pub utc_offset_hours: i32,
    /// The source's request limit; the client stays under it.
    pub requests_per_second: Option<NonZeroU32>,
    /// How far back an incremental run re-reads the journal.
    pub window_days: u32,
    /// Days of journal one request (and one chunk) asks for in a full run: 92 by default,
    /// about a quarter — one range of the whole year would be one batch of the whole
    /// school's year (README); a range the source refuses is asked again in halves
    /// (`ejgate_sdk::ranges`). The source's `chunk_days` setting.
    pub chunk_days: u32,
    /// Pupils whose events are read at the same time inside one journal chunk.
    pub pupils_in_parallel: usize,
    /// When incremental runs read a pupil's final marks (`subject_marks`): every `every`
    /// nights within `days` of a study period's end, and a pupil's first run; full runs
    /// always (README, `ejgate_sdk::cadence`).
    pub final_marks: FinalMarksCadence,
    /// A directory with code tables replacing the built-in ones (`<dir>/mosreg/*.toml`).
    pub mappings_dir: Option<PathBuf>,
    /// The schools the configuration asks for (the source's `schools` setting). Set, the
    /// token must have a staff profile of one of them: a parent's or pupil's token then
    /// stops the run with a message saying so, instead of reading only the children.
    pub school_ids: Vec<String>,
    pub timeout: Duration,
    pub extra_root_certificates: Vec<PathBuf>,
    pub retry: RetryPolicy,
}

impl MosregConfig {
    pub fn new(instance: &str, base_urls: MosregBaseUrls, token: SecretString) -> Self {
        MosregConfig {
            instance: instance.into(),
            base_urls,
            token,
            token_origin:
                "the token file named by this source's `token_file` setting (or its token environment variable)".into(),
            token_file: None,
            refresh: true,
            staff_profile_types: vec!["school_admin".into(), "admin".into(), "staff".into()],
            utc_offset_hours: 3,
            requests_per_second: None,
            window_days: 35,
            chunk_days: DEFAULT_REQUEST_DAYS,
            pupils_in_parallel: 4,
            final_marks: FinalMarksCadence::default(),
            mappings_dir: None,
            school_ids: Vec::new(),
            timeout: Duration::from_secs(60),
            extra_root_certificates: Vec::new(),
            retry: RetryPolicy::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct AttendanceCode {
    status: String,
    reason: Option<m::AbsenceReason>,
}

#[derive(Debug, Clone, Deserialize)]
struct MarkType {
    scale: m::MarkScale,
    #[serde(default)]
    values: BTreeMap<String, f64>,
    #[serde(default)]
    special: BTreeMap<String, m::SpecialFinal>,
}

/// The code tables of `mappings/mosreg/`.
struct Tables {
    attendance: CodeTable<AttendanceCode>,
    marks: CodeTable<MarkType>,
    work_types: CodeTable<m::WorkKind>,
    groups: CodeTable<m::GroupKind>,
    period_types: CodeTable<m::PeriodKind>,
}

macro_rules! table {
    ($dir:expr, $name:literal) => {
        CodeTable::load(
            concat!("mosreg/", $name),
            $dir,
            concat!($name, ".toml"),
            include_str!(concat!("../../../mappings/mosreg/", $name, ".toml")),
        )
        .map_err(|e| e.to_string())?
    };
}

impl Tables {
    fn load(dir: Option<&std::path::Path>) -> Result<Self, String> {
        let dir = dir.map(|d| d.join("mosreg"));
        let dir = dir.as_deref();
        Ok(Tables {
            attendance: table!(dir, "attendance"),
            marks: table!(dir, "marks"),
            work_types: table!(dir, "work_types"),
            groups: table!(dir, "groups"),
            period_types: table!(dir, "period_types"),
        })
    }
}

/// The session shared by the three hosts: the JWT (replaced by a refresh), the chosen
/// profile, and how to refresh.
pub struct MosregSession {
    token: RwLock<SecretString>,
    /// Bumped by every successful refresh: a request refused with an older token does not
    /// refresh again.
    generation: AtomicU64,
    refresh_lock: tokio::sync::Mutex<()>,
    profile: Mutex<Option<String>>,
    refresh_url: Option<Url>,
    token_file: Option<PathBuf>,
    http: reqwest::Client,
    hint: String,
}

impl MosregSession {
    fn set_profile(&self, id: &str) {
        *self.profile.lock().expect("profile") = Some(id.to_string());
    }

    fn bearer(&self) -> Result<HeaderValue, String> {
        let token = self.token.read().expect("token");
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| "the token holds characters that cannot go into an HTTP header".to_string())?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// GET `v2/token/refresh` with the current token; the answer is the new token as plain
    /// text. Persisted (when a file is configured) before it is used.
    async fn refresh(&self) -> Result<bool, String> {
        let Some(url) = &self.refresh_url else { return Ok(false) };
        let seen = self.generation.load(Ordering::SeqCst);
        let _one_at_a_time = self.refresh_lock.lock().await;
        if self.generation.load(Ordering::SeqCst) != seen {
            // Another request refreshed the token while this one waited.
            return Ok(true);
        }
        let response = self
            .http
            .get(url.clone())
            .header(AUTHORIZATION, self.bearer()?)
            .send()
            .await
            .map_err(|e| format!("GET v2/token/refresh: cannot reach the source ({})", e.without_url()))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| format!("GET v2/token/refresh: {}", e.without_url()))?;
        let text = body.trim().trim_matches('"').to_string();
        if !status.is_success() {
            let shown: String = text.chars().take(200).collect();
            return Err(format!("GET v2/token/refresh answered HTTP {}: «{shown}»", status.as_u16()));
        }
        // A JWT is three base64url parts; anything else (an HTML page, JSON) is not a token.
        let looks_like_token =
            !text.is_empty() && !text.contains(char::is_whitespace) && !text.starts_with('<') && !text.starts_with('{');
        if !looks_like_token {
            return Err("GET v2/token/refresh answered HTTP 200 without a token in its body".into());
        }
        let fresh = SecretString::from(text);
        if let Some(path) = &self.token_file {
            ejgate_sdk::secret::persist_atomically(path, &fresh).map_err(|e| {
                format!("the refreshed token could not be written to {}: {e}; the old one stays", path.display())
            })?;
        }
        *self.token.write().expect("token") = fresh;
        self.generation.fetch_add(1, Ordering::SeqCst);
        tracing::info!("«Моя школа»: the token was refreshed");
        Ok(true)
    }
}

/// The credentials of one host: the shared session plus the host's own headers.
struct HostAuth {
    session: Arc<MosregSession>,
    /// `X-Mes-Subsystem`: `familyweb` (web), `familymp` (mobile).
    subsystem: Option<&'static str>,
    extra: &'static [(&'static str, &'static str)],
}

#[async_trait]
impl Authenticator for HostAuth {
    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, String> {
        let mut request = request.header(AUTHORIZATION, self.session.bearer()?);
        if let Some(profile) = self.session.profile.lock().expect("profile").clone() {
            let value = HeaderValue::from_str(&profile).map_err(|_| "bad profile id".to_string())?;
            request = request.header(HeaderName::from_static("profile-id"), value);
        }
        if let Some(sub) = self.subsystem {
            request = request.header(HeaderName::from_static("x-mes-subsystem"), HeaderValue::from_static(sub));
        }
        for (k, v) in self.extra {
            request = request.header(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        Ok(request)
    }

    async fn renew(&self) -> Result<bool, String> {
        self.session.refresh().await
    }

    fn unauthorized_hint(&self) -> String {
        self.session.hint.clone()
    }
}

/// Classifies «Моя школа» error bodies in either shape (`{type, description, details}` or
/// `{code, message}`): the session-ended message is a refused token whatever the status.
pub struct MosregErrors;

impl ErrorClassifier for MosregErrors {
    fn classify(&self, status: StatusCode, body: &[u8]) -> Option<Classified> {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        if !value.is_object() {
            return None;
        }
        let err: api::ApiError = serde_json::from_value(value).ok()?;
        let kind = match status.as_u16() {
            _ if err.is_session_end() => ErrorKind::Unauthorized,
            401 | 403 => ErrorKind::Unauthorized,
            429 | 433 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::Client,
        };
        Some(Classified { kind, message: err.text() })
    }
}

/// What planning learned of the school, reused by its chunks.
#[derive(Debug)]
struct SchoolInfo {
    school: String,
    year_id: String,
    year_name: String,
    year: DateRange,
    classes: HashSet<String>,
    /// Study periods: (id, start, end), to place `subject_marks` periods.
    periods: Vec<(String, NaiveDate, NaiveDate)>,
    /// Pupils: (profile id, contingent GUID).
    pupils: Vec<(String, String)>,
    /// With a family token: the profile's kind and the children it sees.
    family: Option<(String, Vec<api::Child>)>,
    /// The classes and study periods as the plan read them, handed to the school chunk so
    /// that it does not ask for them again (taken once; a retried chunk asks).
    reference: Mutex<Option<(Vec<api::ClassUnit>, Vec<api::PeriodItem>)>>,
    /// The class lists as the plan read them, handed to the students chunk likewise: a
    /// run reads each class list once.
    roster: Mutex<Option<Vec<api::Profile>>>,
}

/// The source id of a study period a family token knows only by its dates.
fn family_period_id(year_id: &str, start: NaiveDate, end: NaiveDate) -> String {
    format!("{year_id}:{}:{}", ymd(start), ymd(end))
}

/// The family profile types of `profile_info` (SOURCES.md: the confirmed access).
const FAMILY_PROFILE_TYPES: [&str; 2] = ["parent", "student"];

#[derive(Debug, Serialize, Deserialize)]
struct RangeParams {
    from: NaiveDate,
    to: NaiveDate,
}

/// The events endpoint: a pupil's lessons with their homework, marks and absence.
const EVENTS: &str = "api/eventcalendar/v1/api/events";

/// A journal chunk as it is read: its records by source id (every pupil of a class sees
/// the same lesson and homework, so each is kept once), their scope and the warnings.
struct JournalRecords {
    scope: String,
    warnings: Vec<String>,
    lessons: BTreeMap<String, Record>,
    tasks: BTreeMap<String, Record>,
    marks: BTreeMap<String, Record>,
    attendance: BTreeMap<String, Record>,
}

/// A lesson as its first copy placed it: what the pupils' later copies need.
struct SeenLesson {
    id: uuid::Uuid,
    date: NaiveDate,
    subject: Option<uuid::Uuid>,
    /// The raw homework of the first copy; a copy with other homework is read again. Kept
    /// as its own text, so that the answer it came from can go as soon as it is read.
    homework: Option<Box<str>>,
}

/// The «Моя школа» connector.
pub struct MosregConnector {
    config: MosregConfig,
    web: SourceClient,
    mobile: SourceClient,
    school: SourceClient,
    session: Arc<MosregSession>,
    ids: IdSpace,
    tables: Tables,
    info: Mutex<Option<Arc<SchoolInfo>>>,
    /// The longest request range the source takes (halved when it refuses one).
    ranges: RangeLimit,
    /// One journal chunk is read at a time (its pupils in parallel): the sync engine asks
    /// for several chunks at once, and the three or four quarter-long chunks of a full run,
    /// read together, all ended together, so the store had nothing to write while the
    /// whole year was read and then wrote it all while nothing was read. One at a time,
    /// the store writes each chunk while the next is read; the requests in flight stay
    /// `pupils_in_parallel`.
    journal_turn: tokio::sync::Semaphore,
}

fn sid(id: &Option<SourceId>) -> Option<String> {
    id.as_ref().map(|i| i.0.clone())
}

fn ymd(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A date-time the source writes in local time without a zone (`created_at`).
fn local_dt(s: Option<&str>) -> Option<NaiveDateTime> {
    s.and_then(parse_datetime).map(|(dt, _)| dt)
}

/// The hint when the token is refused and refreshing did not help.
fn refused_hint(instance: &str, origin: &str) -> String {
    format!(
        "«Моя школа» refused the JWT of source «{instance}» and refreshing it (GET v2/token/refresh) did not help. Logins go through Госуслуги: sign in to authedu.mosreg.ru as the school's staff user, copy the value of the `aupd_token` cookie (the JWT) into {origin} and run the sync again; nothing already synced is lost"
    )
}

impl MosregConnector {
    pub fn new(mut config: MosregConfig) -> Result<Self, SourceError> {
        config.base_urls = config.base_urls.normalized();
        let fail = |detail: String| SourceError::config(&config.instance, SYSTEM, detail);
        let tables = Tables::load(config.mappings_dir.as_deref()).map_err(&fail)?;
        let mut http = reqwest::Client::builder()
            .user_agent(concat!("ejgate/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout);
        for path in &config.extra_root_certificates {
            let pem = std::fs::read(path)
                .map_err(|e| fail(format!("cannot read the root certificate {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| fail(format!("{} is not a PEM certificate bundle: {e}", path.display())))?;
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().map_err(|e| fail(format!("cannot build the HTTP client: {e}")))?;
        let refresh_url = if config.refresh {
            Some(config.base_urls.school.join("v2/token/refresh").map_err(|e| fail(format!("bad base URL: {e}")))?)
        } else {
            None
        };
        let session = Arc::new(MosregSession {
            token: RwLock::new(config.token.clone()),
            generation: AtomicU64::new(0),
            refresh_lock: tokio::sync::Mutex::new(()),
            profile: Mutex::new(None),
            refresh_url,
            token_file: config.token_file.clone(),
            http,
            hint: refused_hint(&config.instance, &config.token_origin),
        });
        let client = |base: &Url, subsystem: Option<&'static str>, extra: &'static [(&'static str, &'static str)]| {
            let mut c = ClientConfig::new(&config.instance, SYSTEM, base.clone());
            c.timeout = config.timeout;
            c.extra_root_certificates = config.extra_root_certificates.clone();
            c.default_rate = config.requests_per_second;
            c.retry = config.retry.clone();
            SourceClient::new(
                c,
                Arc::new(HostAuth { session: session.clone(), subsystem, extra }),
                Arc::new(MosregErrors),
            )
        };
        let web = client(&config.base_urls.web, Some("familyweb"), &[])?;
        let mobile = client(&config.base_urls.mobile, Some("familymp"), &[("client-type", "diary-mobile")])?;
        // `partner-source-id: MOBILE` is what the clients send with `profile_info`.
        let school = client(&config.base_urls.school, None, &[("partner-source-id", "MOBILE")])?;
        Ok(MosregConnector {
            ids: IdSpace::new(config.instance.clone()),
            ranges: RangeLimit::new(config.chunk_days),
            config,
            web,
            mobile,
            school,
            session,
            tables,
            info: Mutex::new(None),
            journal_turn: tokio::sync::Semaphore::new(1),
        })
    }

    /// The clients of the three hosts (web, mobile, school), for statistics.
    pub fn clients(&self) -> [&SourceClient; 3] {
        [&self.web, &self.mobile, &self.school]
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

    fn info(&self) -> Result<Arc<SchoolInfo>, SourceError> {
        self.info
            .lock()
            .expect("school info")
            .clone()
            .ok_or_else(|| SourceError::config(&self.config.instance, SYSTEM, "the school was not planned in this run"))
    }

    fn source_error(&self, endpoint: &str, kind: ErrorKind, detail: String, hint: Option<String>) -> SourceError {
        SourceError {
            instance: self.config.instance.clone(),
            system: SYSTEM.into(),
            method: "GET".into(),
            endpoint: endpoint.into(),
            kind,
            detail,
            hint,
        }
    }

    fn malformed(&self, endpoint: &str, detail: String) -> SourceError {
        self.source_error(endpoint, ErrorKind::Malformed, detail, None)
    }

    /// Reads a bare-array list page by page until a page comes back **empty**: a short page
    /// is not the end (the source may cap `per_page` below what was asked).
    async fn paged<T: serde::de::DeserializeOwned>(
        &self,
        client: &SourceClient,
        path: &str,
        query: &[(&str, String)],
        per_page: u32,
        requests: &mut u32,
    ) -> Result<Vec<T>, SourceError> {
        let mut out = Vec::new();
        let mut page = 1u32;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("page", page.to_string()));
            q.push(("per_page", per_page.to_string()));
            let items: Vec<T> = client.get_json("data", path, &q).await?.body;
            *requests += 1;
            if items.is_empty() {
                return Ok(out);
            }
            out.extend(items);
            page += 1;
            if page > 100_000 {
                return Err(self.malformed(path, "the list never ends (100,000 pages)".into()));
            }
        }
    }

    /// The pupils of the school: `core/api/profiles?class_unit_id&types=student` per class,
    /// deduplicated (a pupil who changed class is listed by both).
    async fn pupils(&self, classes: &[String], requests: &mut u32) -> Result<Vec<api::Profile>, SourceError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for class in classes {
            let list: Vec<api::Profile> = self
                .paged(
                    &self.school,
                    "core/api/profiles",
                    &[("class_unit_id", class.clone()), ("types", "student".into())],
                    200,
                    requests,
                )
                .await?;
            for p in list {
                if seen.insert(p.id.0.clone()) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    fn unit(&self, info: &SchoolInfo, unit: &str) -> uuid::Uuid {
        let kind = if info.classes.contains(unit) { EntityKind::Class } else { EntityKind::Group };
        self.id(kind, unit)
    }

    async fn fetch_school(&self) -> Result<Batch, SourceError> {
        let info = self.info()?;
        let s = &info.school;
        let scope = format!("school:{s}");
        let staff_scope = format!("school:{s}:staff");
        let mut warnings = Vec::new();
        let mut requests = 0;
        let c = &self.school;
        let school: api::School = c.get_json("reference", &format!("core/api/schools/{s}"), &[]).await?.body;
        let sq = [("school_id", s.clone())];
        let planned = info.reference.lock().expect("planned reference").take();
        let (classes, periods) = match planned {
            Some(read) => read,
            None => {
                let periods: Vec<api::PeriodItem> = c
                    .get_json(
                        "reference",
                        "core/api/periods_schedules",
                        &[("school_id", s.clone()), ("academic_year_id", info.year_id.clone())],
                    )
                    .await?
                    .body;
                let classes: Vec<api::ClassUnit> = c.get_json("reference", "core/api/class_units", &sq).await?.body;
                requests += 2;
                (classes, periods)
            }
        };
        let subjects: Vec<api::Subject> = c.get_json("reference", "core/api/subjects", &sq).await?.body;
        let groups: Vec<api::Group> = c.get_json("reference", "core/api/groups", &sq).await?.body;
        requests += 3;
        let teachers: Vec<api::Profile> = self
            .paged(c, "core/api/profiles", &[("school_id", s.clone()), ("types", "teacher".into())], 200, &mut requests)
            .await?;

        let org = self.id(EntityKind::Organization, s);
        let year = self.id(EntityKind::AcademicYear, &info.year_id);
        let mut records = vec![
            self.record(
                Entity::Organization(m::Organization {
                    kind: m::OrganizationKind::School,
                    name: school.short_name.clone().or(school.name.clone()).unwrap_or_default(),
                    full_name: school.name.clone(),
                    municipality: school.municipality_name.clone().or(school.city.clone()),
                    time_zone: school.time_zone.clone(),
                    regulation_profile: None,
                }),
                s.clone(),
                &scope,
                None,
            ),
            self.record(
                Entity::AcademicYear(m::AcademicYear {
                    organization: Some(org),
                    name: info.year_name.clone(),
                    start: info.year.from,
                    end: info.year.to,
                }),
                info.year_id.clone(),
                &scope,
                None,
            ),
        ];
        for p in periods {
            let (Some(start), Some(end)) =
                (p.begin_date.as_deref().and_then(parse_date), p.end_date.as_deref().and_then(parse_date))
            else {
                warnings.push(format!("period {}: no dates; left out", p.id));
                continue;
            };
            let kind = p.kind.clone().unwrap_or_default();
            let entity = if kind.eq_ignore_ascii_case("vacation") {
                Entity::Holiday(m::Holiday { organization: Some(org), name: p.name.unwrap_or_default(), start, end })
            } else {
                Entity::StudyPeriod(m::StudyPeriod {
                    organization: Some(org),
                    academic_year: Some(year),
                    kind: self
                        .tables
                        .period_types
                        .lookup(&kind, &mut warnings)
                        .copied()
                        .unwrap_or(m::PeriodKind::Other),
                    number: p.number.unwrap_or(0),
                    name: p.name.unwrap_or_default(),
                    start,
                    end,
                })
            };
            records.push(self.record(entity, p.id.0, &scope, None));
        }
        for c in classes {
            records.push(self.record(
                Entity::Class(m::Class {
                    organization: Some(org),
                    academic_year: Some(year),
                    name: c.name.unwrap_or_default(),
                    grade: c.class_level_id,
                    homeroom_teacher: sid(&c.mentor_id).map(|t| self.id(EntityKind::Person, &t)),
                }),
                c.id.0,
                &scope,
                None,
            ));
        }
        for g in groups {
            let kind = self
                .tables
                .groups
                .lookup(g.group_type.as_deref().unwrap_or(""), &mut warnings)
                .copied()
                .unwrap_or(m::GroupKind::Subgroup);
            records.push(self.record(
                Entity::Group(m::Group {
                    organization: Some(org),
                    class: sid(&g.class_unit_id).map(|c| self.id(EntityKind::Class, &c)),
                    kind,
                    name: g.name.unwrap_or_default(),
                    subject: sid(&g.subject_id).map(|x| self.id(EntityKind::Subject, &x)),
                }),
                g.id.0,
                &scope,
                None,
            ));
        }
        for x in subjects {
            let name = x.name.unwrap_or_default();
            records.push(self.record(
                Entity::Subject(m::Subject {
                    organization: Some(org),
                    normalized_name: m::normalize_name(&name),
                    name,
                    knowledge_area: x.knowledge_area.filter(|k| !k.is_empty()),
                }),
                x.id.0,
                &scope,
                None,
            ));
        }
        for t in teachers {
            let id = t.id.0.clone();
            records.push(self.record(Entity::Person(person(t, m::Role::Staff)), id, &staff_scope, None));
        }
        Ok(Batch {
            skipped: Vec::new(),
            records,
            coverage: vec![
                Coverage {
                    kinds: vec![
                        EntityKind::Organization,
                        EntityKind::AcademicYear,
                        EntityKind::StudyPeriod,
                        EntityKind::Holiday,
                        EntityKind::Class,
                        EntityKind::Group,
                        EntityKind::Subject,
                    ],
                    scope,
                    range: None,
                },
                Coverage { kinds: vec![EntityKind::Person], scope: staff_scope, range: None },
            ],
            warnings,
            requests,
        })
    }

    async fn fetch_students(&self) -> Result<Batch, SourceError> {
        let info = self.info()?;
        let scope = format!("school:{}:students", info.school);
        let mut requests = 0;
        let planned = info.roster.lock().expect("planned roster").take();
        let pupils = match planned {
            Some(pupils) => pupils,
            None => {
                let mut classes: Vec<String> = info.classes.iter().cloned().collect();
                classes.sort();
                self.pupils(&classes, &mut requests).await?
            }
        };
        let mut records = Vec::new();
        for mut p in pupils {
            let id = p.id.0.clone();
            let memberships = std::mem::take(&mut p.memberships);
            let student = self.id(EntityKind::Person, &id);
            records.push(self.record(Entity::Person(person(p, m::Role::Student)), id.clone(), &scope, None));
            for ms in memberships {
                let unit = ms.unit_id.0;
                records.push(self.record(
                    Entity::Enrollment(m::Enrollment {
                        student,
                        unit: self.unit(&info, &unit),
                        status: if ms.active { m::EnrollmentStatus::Active } else { m::EnrollmentStatus::Archived },
                        from: ms.begin_date.as_deref().and_then(parse_date),
                        to: ms.end_date.as_deref().and_then(parse_date),
                        order: None,
                    }),
                    format!("{unit}:{id}"),
                    &scope,
                    None,
                ));
            }
        }
        Ok(Batch {
            skipped: Vec::new(),
            records,
            coverage: vec![Coverage { kinds: vec![EntityKind::Person, EntityKind::Enrollment], scope, range: None }],
            warnings: Vec::new(),
            requests,
        })
    }

    /// One pupil's events (the raw bodies, one per request range, read in steps by
    /// [`Self::fetch_journal`]) and family marks over the range; a range the source refuses
    /// is asked again in halves.
    async fn pupil_journal(
        &self,
        pupil: &str,
        guid: &str,
        p: &RangeParams,
    ) -> Result<(Vec<Bytes>, Vec<api::FamilyMark>), SourceError> {
        let range = DateRange::new(p.from, p.to);
        let events = self
            .ranges
            .read(range, |r| async move {
                let body = self
                    .web
                    .send(
                        Method::GET,
                        "data",
                        EVENTS,
                        &[
                            ("person_ids", guid.to_string()),
                            ("begin_date", ymd(r.from)),
                            ("end_date", ymd(r.to)),
                            ("expand", "marks,homework,absence_reason_id,health_status,nonattendance_reason_id".into()),
                        ],
                        None,
                    )
                    .await?
                    .body;
                Ok(vec![body])
            })
            .await?;
        let marks = self
            .ranges
            .read(range, |r| async move {
                let marks: api::Payload<api::FamilyMark> = self
                    .web
                    .get_json(
                        "data",
                        "api/family/web/v1/marks",
                        &[("student_id", pupil.to_string()), ("from", ymd(r.from)), ("to", ymd(r.to))],
                    )
                    .await?
                    .body;
                Ok(marks.payload)
            })
            .await?;
        Ok((events, marks))
    }

    /// The events of one answer: in one pass when the whole answer reads (the common case
    /// costs nothing extra), otherwise one event at a time, the unreadable ones pushed to
    /// `skipped` (endpoint, field, excerpt) and the others kept. An answer that is not a
    /// JSON events list at all (HTML, a truncated body) fails as before.
    fn events<'a>(&self, body: &'a [u8], skipped: &mut Vec<Skipped>) -> Result<Vec<api::Event<'a>>, SourceError> {
        // Read as text: one UTF-8 check of the whole body instead of one per string and per
        // raw field (every lesson comes once per pupil: the events are most of the bytes).
        if let Ok(Ok(all)) = std::str::from_utf8(body).map(serde_json::from_str::<api::Events>) {
            return Ok(all.response.unwrap_or_default());
        }
        let raw: api::RawEvents = self.web.parse_body(&Method::GET, EVENTS, body)?;
        let endpoint = format!("GET {EVENTS}");
        let mut out = Vec::new();
        for event in raw.response.unwrap_or_default() {
            match read::one::<api::Event>(&endpoint, event.get()) {
                Ok(e) => out.push(e),
                Err(s) => skipped.push(s),
            }
        }
        Ok(out)
    }

    /// The lesson, works and homework of a lesson's first copy; `None` when the lesson
    /// cannot be placed (no date or no class), with a warning.
    fn first_copy(
        &self,
        info: &SchoolInfo,
        lesson_id: &str,
        ev: api::LessonEvent,
        homework: Option<&RawValue>,
        out: &mut JournalRecords,
    ) -> Option<SeenLesson> {
        let Some(date) = ev.start_at.as_deref().and_then(parse_datetime).map(|(dt, _)| dt.date()) else {
            out.warnings.push(format!("event {lesson_id}: no start_at; left out"));
            return None;
        };
        let Some(unit) = sid(&ev.group_id) else {
            out.warnings.push(format!("event {lesson_id}: no group_id; left out"));
            return None;
        };
        let id = self.id(EntityKind::Lesson, lesson_id);
        let subject = sid(&ev.subject_id).map(|x| self.id(EntityKind::Subject, &x));
        out.lessons.insert(
            lesson_id.to_string(),
            self.record(
                Entity::Lesson(m::Lesson {
                    section: None,
                    unit: self.unit(info, &unit),
                    subject,
                    date,
                    number: ev.lesson_number,
                    teacher: sid(&ev.teacher_id).map(|t| self.id(EntityKind::Person, &t)),
                    substitute: sid(&ev.replaced_teacher_id).map(|t| self.id(EntityKind::Person, &t)),
                    topic: ev.lesson_theme.filter(|t| !t.trim().is_empty()),
                    status: if ev.cancelled { m::LessonStatus::Cancelled } else { m::LessonStatus::Held },
                }),
                lesson_id.to_string(),
                &out.scope,
                Some(date),
            ),
        );
        let lesson = SeenLesson { id, date, subject, homework: homework.map(|h| h.get().into()) };
        self.add_tasks(ev.homework, &lesson, out);
        Some(lesson)
    }

    /// The homework and classroom jobs of a lesson not yet taken.
    fn add_tasks(&self, homework: Option<api::EventHomework>, lesson: &SeenLesson, out: &mut JournalRecords) {
        for entry in homework.map(|h| h.entries).unwrap_or_default() {
            let hid = entry.homework_entry_id.0.clone();
            if out.tasks.contains_key(&hid) {
                continue;
            }
            let entity = if entry.is_class_room_job {
                let form = entry.control_form;
                let source_type = form.as_ref().and_then(|f| f.name.clone()).unwrap_or_default();
                let kind = self
                    .tables
                    .work_types
                    .lookup(&source_type, &mut out.warnings)
                    .copied()
                    .unwrap_or(m::WorkKind::Other);
                Entity::Work(m::Work {
                    lesson: Some(lesson.id),
                    kind,
                    source_type,
                    title: entry.description.filter(|t| !t.trim().is_empty()),
                    weight: form.and_then(|f| f.weight),
                })
            } else {
                Entity::Homework(m::Homework {
                    attachments: Vec::new(),
                    lesson: Some(lesson.id),
                    text: entry.description.unwrap_or_default(),
                    entered_at: local_dt(entry.created_at.as_deref()),
                    due_date: entry.date_prepared_for.as_deref().and_then(parse_date),
                })
            };
            out.tasks.insert(hid.clone(), self.record(entity, hid, &out.scope, Some(lesson.date)));
        }
    }

    async fn fetch_journal(&self, p: &RangeParams) -> Result<Batch, SourceError> {
        let _turn = self.journal_turn.acquire().await.expect("the journal semaphore is never closed");
        let info = self.info()?;
        // Each pupil's answers are read as they arrive and then dropped: a month of events
        // of a whole school, kept until the last pupil's came, was about a gigabyte per
        // chunk in flight.
        let mut answers = futures::stream::iter(info.pupils.clone())
            .map(|(pupil, guid)| async move {
                let (events, marks) = self.pupil_journal(&pupil, &guid, p).await?;
                Ok::<_, SourceError>((pupil, events, marks))
            })
            .buffer_unordered(self.config.pupils_in_parallel.max(1));
        let mut requests = 0;
        let mut out = JournalRecords {
            scope: format!("journal:{}", info.school),
            warnings: Vec::new(),
            lessons: BTreeMap::new(),
            tasks: BTreeMap::new(),
            marks: BTreeMap::new(),
            attendance: BTreeMap::new(),
        };
        // Lessons by source id as their first copy placed them (`None`: left out).
        let mut seen: HashMap<String, Option<SeenLesson>> = HashMap::new();
        let mut skipped = Vec::new();
        // How the records skipped below name where they came from (made once, not per event).
        let endpoint = format!("GET {EVENTS}");
        while let Some((pupil, bodies, family)) = answers.try_next().await? {
            requests += 1 + bodies.len() as u32;
            let pupil = pupil.as_str();
            let student = self.id(EntityKind::Person, pupil);
            let created: HashMap<&str, &api::FamilyMark> = family.iter().map(|f| (f.id.0.as_str(), f)).collect();
            for body in &bodies {
                for ev in self.events(body, &mut skipped)? {
                    let lesson_id = ev.id.0.clone();
                    if !seen.contains_key(&lesson_id) {
                        let placed = match ev.lesson() {
                            Ok(first) => self.first_copy(&info, &lesson_id, first, ev.homework, &mut out),
                            Err(e) => {
                                // Left unplaced: the next copy of the lesson is not tried, as
                                // every copy carries the same lesson part.
                                skipped.push(Skipped::new(
                                    &endpoint,
                                    "-",
                                    format!("event {lesson_id} of pupil {pupil}: {e}"),
                                    "",
                                ));
                                None
                            }
                        };
                        seen.insert(lesson_id.clone(), placed);
                    }
                    let Some(Some(lesson)) = seen.get(&lesson_id) else { continue };
                    if ev.homework.map(RawValue::get) != lesson.homework.as_deref() {
                        // This pupil's homework differs from the first copy's: read it too.
                        match ev.homework.map(|raw| read::one::<Option<api::EventHomework>>(&endpoint, raw.get())) {
                            Some(Ok(homework)) => self.add_tasks(homework, lesson, &mut out),
                            Some(Err(s)) => skipped.push(s),
                            None => self.add_tasks(None, lesson, &mut out),
                        }
                    }
                    for mk in ev.marks {
                        let value = mk.value.clone().unwrap_or_default();
                        let system = mk
                            .values
                            .first()
                            .and_then(|v| v.grade_system_type.clone())
                            .unwrap_or_else(|| "five".into());
                        let table = self.tables.marks.lookup(&system, &mut out.warnings);
                        let numeric = table.and_then(|t| t.values.get(&value.to_lowercase()).copied());
                        if table.is_some() && numeric.is_none() {
                            out.warnings.push(format!("mark {}: value «{value}» is not on the {system} scale", mk.id));
                        }
                        let family = created.get(mk.id.0.as_str());
                        if family.is_none() {
                            out.warnings.push(format!(
                                "mark {}: not in the family marks of pupil {pupil}; kept without its entry time",
                                mk.id
                            ));
                        }
                        let mut record = self.record(
                            Entity::Mark(m::Mark {
                                comment: family.and_then(|f| f.comment.clone()).filter(|c| !c.trim().is_empty()),
                                is_point: mk.is_point,
                                point_date: mk.point_date.as_deref().and_then(parse_date),
                                student,
                                lesson: Some(lesson.id),
                                work: sid(&mk.homework_entry_id).map(|w| self.id(EntityKind::Work, &w)),
                                subject: lesson.subject,
                                value,
                                numeric,
                                scale: table.map(|t| t.scale).unwrap_or(m::MarkScale::Other),
                                weight: mk.weight,
                                entered_at: family.and_then(|f| local_dt(f.created_at.as_deref())),
                                entered_by: None,
                            }),
                            mk.id.0.clone(),
                            &out.scope,
                            Some(lesson.date),
                        );
                        record.source_updated_at = family.and_then(|f| local_dt(f.updated_at.as_deref()));
                        out.marks.insert(mk.id.0, record);
                    }
                    if let Some(reason) = sid(&ev.absence_reason_id) {
                        let (status, reason_kind) = match self.tables.attendance.lookup(&reason, &mut out.warnings) {
                            Some(c) if c.status == "late" => (m::AttendanceStatus::Late, None),
                            Some(c) => (m::AttendanceStatus::Absent, c.reason),
                            None => (m::AttendanceStatus::Absent, None),
                        };
                        let key = format!("{lesson_id}:{pupil}");
                        out.attendance.insert(
                            key.clone(),
                            self.record(
                                Entity::Attendance(m::Attendance {
                                    student,
                                    lesson: lesson.id,
                                    status,
                                    reason: reason_kind,
                                    source_status: reason,
                                    comment: None,
                                    entered_at: None,
                                }),
                                key,
                                &out.scope,
                                Some(lesson.date),
                            ),
                        );
                    } else if ev.is_missed_lesson {
                        out.warnings
                            .push(format!("event {lesson_id}: pupil {pupil} missed it without a reason id; left out"));
                    }
                }
            }
        }
        let JournalRecords { scope, warnings, lessons, tasks, marks, attendance } = out;
        let records =
            lessons.into_values().chain(tasks.into_values()).chain(marks.into_values()).chain(attendance.into_values());
        Ok(Batch {
            skipped,
            records: records.collect(),
            coverage: vec![Coverage {
                kinds: vec![
                    EntityKind::Lesson,
                    EntityKind::Work,
                    EntityKind::Homework,
                    EntityKind::Mark,
                    EntityKind::Attendance,
                ],
                scope,
                range: Some(DateRange::new(p.from, p.to)),
            }],
            warnings,
            requests,
        })
    }

    /// With a family token (a parent's or a pupil's): the children the family profile
    /// lists are read through the public calls (events, family marks, subject marks),
    /// nothing of the rest of the school.
    async fn plan_family(
        &self,
        ctx: &PlanContext,
        profile: &api::ProfileInfo,
        kind: String,
    ) -> Result<Plan, SourceError> {
        const FAMILY: &str = "api/family/web/v1/profile";
        self.session.set_profile(&profile.id.0);
        let family: api::FamilyProfile = self.web.get_json("auth", FAMILY, &[]).await?.body;
        let children = family.children;
        if children.is_empty() {
            return Err(self.source_error(
                FAMILY,
                ErrorKind::Config,
                format!("the {kind} profile {} lists no child: there is nothing to read", profile.id),
                None,
            ));
        }
        let mut pupils = Vec::new();
        for c in &children {
            match &c.contingent_guid {
                Some(guid) if !guid.is_empty() => pupils.push((c.id.0.clone(), guid.clone())),
                _ => {
                    return Err(self.malformed(
                        FAMILY,
                        format!("child {} has no contingent_guid: his events cannot be asked for", c.id),
                    ))
                }
            }
        }
        let years = self.school.get_json::<Vec<api::AcademicYear>>("reference", "core/api/academic_years", &[]).await?;
        let (source_now, today) = self.source_now(years.date);
        let year = choose_year(&years.body, ctx.year).map_err(|served| match ctx.year {
            Some(wanted) => {
                wanted.not_served(&self.config.instance, SYSTEM, &served, "it is not among core/api/academic_years")
            }
            None => self.malformed("core/api/academic_years", "no academic year".into()),
        })?;
        let (Some(from), Some(to)) =
            (year.begin_date.as_deref().and_then(parse_date), year.end_date.as_deref().and_then(parse_date))
        else {
            return Err(self.malformed("core/api/academic_years", format!("year {} has no dates", year.id)));
        };
        let key = format!("family-{}", profile.id);
        let info = SchoolInfo {
            school: key.clone(),
            year_id: year.id.0.clone(),
            year_name: year.name.clone().unwrap_or_else(|| format!("{}/{}", from.format("%Y"), to.format("%Y"))),
            year: DateRange::new(from, to),
            classes: children.iter().filter_map(|c| sid(&c.class_unit_id)).collect(),
            periods: Vec::new(),
            pupils: pupils.clone(),
            family: Some((kind, children)),
            reference: Mutex::new(None),
            roster: Mutex::new(None),
        };
        *self.info.lock().expect("school info") = Some(Arc::new(info));
        let scope = format!("school:{key}");
        let mut chunks = vec![Chunk {
            stream: "family".into(),
            scope: scope.clone(),
            params: serde_json::json!({}),
            cursor_after: None,
        }];
        chunks.extend(self.journal_chunks(ctx, &scope, from, to.min(today)));
        for (p, _) in pupils {
            chunks.push(Chunk {
                stream: "student".into(),
                scope: format!("student:{p}"),
                params: serde_json::json!({ "student": p }),
                cursor_after: None,
            });
        }
        Ok(Plan { source_now, chunks })
    }

    /// The source's local now (from its `Date` header) and today.
    fn source_now(&self, date: Option<SystemTime>) -> (Option<NaiveDateTime>, NaiveDate) {
        let now_utc: Option<NaiveDateTime> = date.map(|d: SystemTime| DateTime::<Utc>::from(d).naive_utc());
        let offset =
            FixedOffset::east_opt(self.config.utc_offset_hours * 3600).unwrap_or(FixedOffset::east_opt(0).unwrap());
        let source_now = now_utc.map(|n| n + offset);
        let today = source_now.unwrap_or_else(|| Utc::now().naive_utc() + offset).date();
        (source_now, today)
    }

    /// The journal's chunks from the year's start (or the cursor less the window) to `end`.
    fn journal_chunks(&self, ctx: &PlanContext, scope: &str, from: NaiveDate, end: NaiveDate) -> Vec<Chunk> {
        ctx.dated_pieces("journal", scope, from, end, self.config.window_days, self.config.chunk_days)
            .into_iter()
            .map(|piece| Chunk {
                stream: "journal".into(),
                scope: scope.to_string(),
                params: serde_json::to_value(RangeParams { from: piece.from, to: piece.to }).expect("params"),
                cursor_after: Some(ymd(piece.to)),
            })
            .collect()
    }

    /// With a family token: the children's school (as their profile names it), the year,
    /// the study periods and subjects of their subject marks (period ids made from their
    /// dates), their classes and groups, the children and their memberships.
    async fn fetch_family(&self) -> Result<Batch, SourceError> {
        let info = self.info()?;
        let (kind, children) = info.family.as_ref().ok_or_else(|| {
            SourceError::config(&self.config.instance, SYSTEM, "the family roster was planned without a family")
        })?;
        let scope = format!("school:{}", info.school);
        let mut warnings = vec![format!(
            "«Моя школа»: the token is a {kind} profile: only the {} child(ren) it sees are read, not the whole school (a school needs a staff profile)",
            children.len()
        )];
        let mut requests = 0;
        let year = self.id(EntityKind::AcademicYear, &info.year_id);
        let mut records = BTreeMap::new();
        let mut orgs = BTreeMap::new();
        for c in children {
            let id = c.id.0.clone();
            let school_source = c.school.as_ref().and_then(|s| sid(&s.id)).unwrap_or_else(|| info.school.clone());
            let org = self.id(EntityKind::Organization, &school_source);
            orgs.entry(school_source.clone()).or_insert_with(|| {
                let s = c.school.clone();
                self.record(
                    Entity::Organization(m::Organization {
                        kind: m::OrganizationKind::School,
                        name: s.as_ref().and_then(|s| s.short_name.clone().or(s.name.clone())).unwrap_or_default(),
                        full_name: s.and_then(|s| s.name),
                        municipality: None,
                        time_zone: None,
                        regulation_profile: None,
                    }),
                    school_source.clone(),
                    &scope,
                    None,
                )
            });
            let class = sid(&c.class_unit_id);
            if let Some(class) = &class {
                records.entry(("class", class.clone())).or_insert_with(|| {
                    self.record(
                        Entity::Class(m::Class {
                            organization: Some(org),
                            academic_year: Some(year),
                            name: c.class_name.clone().unwrap_or_default(),
                            grade: c.class_level_id,
                            homeroom_teacher: None,
                        }),
                        class.clone(),
                        &scope,
                        None,
                    )
                });
            }
            for g in c.groups.iter().filter(|g| g.is_fake != Some(true)) {
                records.entry(("group", g.id.0.clone())).or_insert_with(|| {
                    self.record(
                        Entity::Group(m::Group {
                            organization: Some(org),
                            class: class.as_ref().map(|x| self.id(EntityKind::Class, x)),
                            kind: m::GroupKind::Subgroup,
                            name: g.name.clone().unwrap_or_default(),
                            subject: sid(&g.subject_id).map(|x| self.id(EntityKind::Subject, &x)),
                        }),
                        g.id.0.clone(),
                        &scope,
                        None,
                    )
                });
            }
            let student = self.id(EntityKind::Person, &id);
            let person = m::Person {
                last_name: c.last_name.clone().unwrap_or_default(),
                first_name: c.first_name.clone().unwrap_or_default(),
                middle_name: c.middle_name.clone().filter(|s| !s.is_empty()),
                sex: match c.sex.as_deref().map(str::to_lowercase).as_deref() {
                    Some("male") | Some("m") | Some("м") => Some(m::Sex::Male),
                    Some("female") | Some("f") | Some("ж") => Some(m::Sex::Female),
                    _ => None,
                },
                birth_date: c.birth_date.as_deref().and_then(parse_date),
                roles: vec![m::Role::Student],
            };
            records.insert(("person", id.clone()), self.record(Entity::Person(person), id.clone(), &scope, None));
            let units = class
                .iter()
                .cloned()
                .chain(c.groups.iter().filter(|g| g.is_fake != Some(true)).map(|g| g.id.0.clone()));
            for unit in units {
                let key = format!("{unit}:{id}");
                records.insert(
                    ("enrollment", key.clone()),
                    self.record(
                        Entity::Enrollment(m::Enrollment {
                            student,
                            unit: self.unit(&info, &unit),
                            status: m::EnrollmentStatus::Active,
                            from: None,
                            to: None,
                            order: None,
                        }),
                        key,
                        &scope,
                        None,
                    ),
                );
            }
            // Subjects and study periods: from the child's subject marks (they name both).
            let marks: api::Payload<api::SubjectMarks> = self
                .mobile
                .get_json("data", "family/mobile/v1/subject_marks", &[("student_id", id.clone())])
                .await?
                .body;
            requests += 1;
            for subj in marks.payload {
                if let (Some(sid_), Some(name)) = (sid(&subj.subject_id), subj.subject_name.clone()) {
                    records.entry(("subject", sid_.clone())).or_insert_with(|| {
                        self.record(
                            Entity::Subject(m::Subject {
                                organization: Some(org),
                                normalized_name: m::normalize_name(&name),
                                name,
                                knowledge_area: None,
                            }),
                            sid_,
                            &scope,
                            None,
                        )
                    });
                }
                for p in subj.periods {
                    let start = p.start_iso.as_deref().or(p.start.as_deref()).and_then(parse_date);
                    let end = p.end_iso.as_deref().or(p.end.as_deref()).and_then(parse_date);
                    let (Some(start), Some(end)) = (start, end) else { continue };
                    let pid = family_period_id(&info.year_id, start, end);
                    let name = p.title.clone().unwrap_or_default();
                    let lower = name.to_lowercase();
                    let kind = if lower.contains("четверт") {
                        m::PeriodKind::Quarter
                    } else if lower.contains("триместр") {
                        m::PeriodKind::Trimester
                    } else if lower.contains("полугод") {
                        m::PeriodKind::HalfYear
                    } else {
                        m::PeriodKind::Other
                    };
                    let number =
                        name.chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap_or(0);
                    records.entry(("period", pid.clone())).or_insert_with(|| {
                        self.record(
                            Entity::StudyPeriod(m::StudyPeriod {
                                organization: Some(org),
                                academic_year: Some(year),
                                kind,
                                number,
                                name,
                                start,
                                end,
                            }),
                            pid,
                            &scope,
                            None,
                        )
                    });
                }
            }
        }
        if orgs.len() > 1 {
            warnings.push(format!("«Моя школа»: the children go to {} schools; each is kept", orgs.len()));
        }
        let first_org = orgs.keys().next().cloned().unwrap_or_else(|| info.school.clone());
        let mut out: Vec<Record> = orgs.into_values().collect();
        out.push(self.record(
            Entity::AcademicYear(m::AcademicYear {
                organization: Some(self.id(EntityKind::Organization, &first_org)),
                name: info.year_name.clone(),
                start: info.year.from,
                end: info.year.to,
            }),
            info.year_id.clone(),
            &scope,
            None,
        ));
        out.extend(records.into_values());
        Ok(Batch {
            skipped: Vec::new(),
            records: out,
            coverage: vec![Coverage {
                kinds: vec![
                    EntityKind::Organization,
                    EntityKind::AcademicYear,
                    EntityKind::StudyPeriod,
                    EntityKind::Class,
                    EntityKind::Group,
                    EntityKind::Subject,
                    EntityKind::Person,
                    EntityKind::Enrollment,
                ],
                scope,
                range: None,
            }],
            warnings,
            requests,
        })
    }

    async fn fetch_student(&self, student: &str) -> Result<Batch, SourceError> {
        let info = self.info()?;
        let scope = format!("student:{student}");
        let mut warnings = Vec::new();
        let subjects: api::Payload<api::SubjectMarks> = self
            .mobile
            .get_json("data", "family/mobile/v1/subject_marks", &[("student_id", student.to_string())])
            .await?
            .body;
        let student_id = self.id(EntityKind::Person, student);
        let five = self.tables.marks.get("five");
        let final_mark = |value: String, period: Option<uuid::Uuid>, subject: uuid::Uuid| {
            let lower = value.to_lowercase();
            let special = five.and_then(|t| t.special.get(&lower).copied());
            Entity::FinalMark(m::FinalMark {
                student: student_id,
                subject,
                period,
                // A special final (осв, н/а, зачёт) has no numeric value, as from every system.
                numeric: if special.is_some() { None } else { five.and_then(|t| t.values.get(&lower).copied()) },
                special,
                entered_at: None,
                value,
            })
        };
        let mut records = Vec::new();
        for subj in subjects.payload {
            let Some(subject) = sid(&subj.subject_id) else {
                warnings.push(format!(
                    "subject_marks of pupil {student}: subject «{}» has no id; its final marks are left out",
                    subj.subject_name.unwrap_or_default()
                ));
                continue;
            };
            let subject_uuid = self.id(EntityKind::Subject, &subject);
            for p in subj.periods {
                let Some(value) = p.fixed_value.filter(|v| !v.trim().is_empty()) else { continue };
                // `subject_marks` names no period id: the period is found by its dates.
                let start = p.start_iso.as_deref().or(p.start.as_deref()).and_then(parse_date);
                let end = p.end_iso.as_deref().or(p.end.as_deref()).and_then(parse_date);
                let found = match (&info.family, start, end) {
                    // A family token has no period list: the period's id is made from its dates.
                    (Some(_), Some(s), Some(e)) => Some(family_period_id(&info.year_id, s, e)),
                    _ => info
                        .periods
                        .iter()
                        .find(|(_, s, e)| Some(*s) == start && Some(*e) == end)
                        .map(|(id, _, _)| id.clone()),
                };
                let Some(period) = found else {
                    warnings.push(format!(
                        "subject_marks of pupil {student}: no study period runs {}..{}; the mark of «{}» is left out",
                        start.map(ymd).unwrap_or_default(),
                        end.map(ymd).unwrap_or_default(),
                        p.title.unwrap_or_default()
                    ));
                    continue;
                };
                records.push(self.record(
                    final_mark(value, Some(self.id(EntityKind::StudyPeriod, &period)), subject_uuid),
                    format!("{student}:{subject}:{period}"),
                    &scope,
                    None,
                ));
            }
            if let Some(value) = subj.year_mark.filter(|v| !v.trim().is_empty()) {
                records.push(self.record(
                    final_mark(value, None, subject_uuid),
                    format!("{student}:{subject}:year"),
                    &scope,
                    None,
                ));
            }
        }
        Ok(Batch {
            skipped: Vec::new(),
            records,
            coverage: vec![Coverage { kinds: vec![EntityKind::FinalMark], scope, range: None }],
            warnings,
            requests: 1,
        })
    }
}

fn person(p: api::Profile, role: m::Role) -> m::Person {
    let u = p.user.unwrap_or(api::User {
        last_name: None,
        first_name: None,
        middle_name: None,
        sex: None,
        birth_date: None,
    });
    m::Person {
        last_name: u.last_name.unwrap_or_default(),
        first_name: u.first_name.unwrap_or_default(),
        middle_name: u.middle_name.filter(|s| !s.is_empty()),
        sex: match u.sex.map(|s| s.to_lowercase()).as_deref() {
            Some("male") | Some("m") | Some("м") => Some(m::Sex::Male),
            Some("female") | Some("f") | Some("ж") => Some(m::Sex::Female),
            _ => None,
        },
        birth_date: u.birth_date.as_deref().and_then(parse_date),
        roles: vec![role],
    }
}

/// The academic year to read: the one marked `current_year`, else the last one listed.
/// The year to read: the one asked for (the school year its first day falls in, or its
/// name), else the one marked current, else the last. `Err` says which years the source
/// serves.
fn choose_year(
    years: &[api::AcademicYear],
    wanted: Option<ejgate_sdk::year::SchoolYear>,
) -> Result<&api::AcademicYear, String> {
    use ejgate_sdk::year::SchoolYear;
    let school_year = |y: &api::AcademicYear| {
        y.begin_date
            .as_deref()
            .and_then(parse_date)
            .map(SchoolYear::containing)
            .or_else(|| y.name.as_deref().and_then(|n| SchoolYear::parse(n).ok()))
    };
    let found = match wanted {
        Some(wanted) => years.iter().find(|y| school_year(y) == Some(wanted)),
        None => years.iter().find(|y| y.current_year).or(years.last()),
    };
    found.ok_or_else(|| {
        let served: Vec<String> = years.iter().filter_map(school_year).map(|y| y.to_string()).collect();
        if served.is_empty() {
            "no year".to_string()
        } else {
            served.join(", ")
        }
    })
}

/// The staff profile to read the school with: the first of a staff type with a school.
fn choose_profile<'a>(profiles: &'a [api::ProfileInfo], staff_types: &[String]) -> Option<&'a api::ProfileInfo> {
    profiles.iter().find(|p| {
        p.school_id.is_some()
            && p.kind.as_deref().is_some_and(|k| staff_types.iter().any(|t| t.eq_ignore_ascii_case(k)))
    })
}

#[async_trait]
impl Connector for MosregConnector {
    fn instance(&self) -> &str {
        &self.config.instance
    }

    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn client_stats(&self) -> Vec<std::sync::Arc<ejgate_sdk::client::ClientStats>> {
        self.clients().iter().map(|c| c.stats().clone()).collect()
    }

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan, SourceError> {
        const PROFILE_INFO: &str = "acl/api/users/profile_info";
        let profiles: Vec<api::ProfileInfo> = self.school.get_json("auth", PROFILE_INFO, &[]).await?.body;
        if profiles.is_empty() {
            // The clients read an empty list as an ended session.
            return Err(self.source_error(
                PROFILE_INFO,
                ErrorKind::Unauthorized,
                "the token has no profile (an empty profile_info list: the session has ended)".into(),
                Some(self.session.hint.clone()),
            ));
        }
        let family = profiles.iter().find_map(|p| {
            let kind = p.kind.as_deref().unwrap_or("").to_lowercase();
            FAMILY_PROFILE_TYPES.contains(&kind.as_str()).then_some((p, kind))
        });
        let staff = choose_profile(&profiles, &self.config.staff_profile_types);
        if let (None, Some((p, kind))) = (staff, family) {
            if !self.config.school_ids.is_empty() {
                return Err(SourceError {
                    hint: Some(format!(
                        "a {kind} token reads only the children its family profile lists; a whole school needs a staff profile (an assumption: no public client shows one). Sign in as the school's staff user and supply that `aupd_token` in {}, or remove `schools` from this source to read the children only",
                        self.config.token_origin
                    )),
                    ..self.source_error(
                        PROFILE_INFO,
                        ErrorKind::Config,
                        format!(
                            "the configuration asks for the whole school {} but the token is a {kind}'s (profile {}), not a staff profile",
                            self.config.school_ids.join(", "),
                            p.id
                        ),
                        None,
                    )
                });
            }
            return self.plan_family(ctx, p, kind).await;
        }
        let profile = staff.ok_or_else(|| {
            let types: Vec<String> = profiles.iter().map(|p| p.kind.clone().unwrap_or_else(|| "-".into())).collect();
            SourceError {
                hint: Some(format!(
                    "ejgate reads a whole school with a staff profile: sign in as the school's administrator and supply that token in {}, or add the type to staff_profile_types",
                    self.config.token_origin
                )),
                ..self.source_error(
                    PROFILE_INFO,
                    ErrorKind::Config,
                    format!("the token has no staff profile of a school (profile types: {})", types.join(", ")),
                    None,
                )
            }
        })?;
        self.session.set_profile(&profile.id.0);
        let school = sid(&profile.school_id).expect("chosen profiles have a school");
        if !self.config.school_ids.is_empty() && !self.config.school_ids.contains(&school) {
            return Err(self.source_error(
                PROFILE_INFO,
                ErrorKind::Config,
                format!(
                    "the token's staff profile is of school {school}, not of {} the configuration asks for",
                    self.config.school_ids.join(", ")
                ),
                None,
            ));
        }
        let years = self.school.get_json::<Vec<api::AcademicYear>>("reference", "core/api/academic_years", &[]).await?;
        let now_utc: Option<NaiveDateTime> = years.date.map(|d: SystemTime| DateTime::<Utc>::from(d).naive_utc());
        let offset =
            FixedOffset::east_opt(self.config.utc_offset_hours * 3600).unwrap_or(FixedOffset::east_opt(0).unwrap());
        let source_now = now_utc.map(|n| n + offset);
        let today = source_now.unwrap_or_else(|| Utc::now().naive_utc() + offset).date();
        let year = choose_year(&years.body, ctx.year).map_err(|served| match ctx.year {
            Some(wanted) => {
                wanted.not_served(&self.config.instance, SYSTEM, &served, "it is not among core/api/academic_years")
            }
            None => self.malformed("core/api/academic_years", "no academic year".into()),
        })?;
        let (Some(from), Some(to)) =
            (year.begin_date.as_deref().and_then(parse_date), year.end_date.as_deref().and_then(parse_date))
        else {
            return Err(self.malformed("core/api/academic_years", format!("year {} has no dates", year.id)));
        };
        let sq = [("school_id", school.clone())];
        let classes: Vec<api::ClassUnit> = self.school.get_json("reference", "core/api/class_units", &sq).await?.body;
        let periods: Vec<api::PeriodItem> = self
            .school
            .get_json(
                "reference",
                "core/api/periods_schedules",
                &[("school_id", school.clone()), ("academic_year_id", year.id.0.clone())],
            )
            .await?
            .body;
        let mut class_ids: Vec<String> = classes.iter().map(|c| c.id.0.clone()).collect();
        class_ids.sort();
        let mut requests = 0;
        let pupils = self.pupils(&class_ids, &mut requests).await?;
        let mut pupil_ids = Vec::new();
        for p in &pupils {
            match &p.person_id {
                Some(guid) if !guid.is_empty() => pupil_ids.push((p.id.0.clone(), guid.clone())),
                _ => {
                    return Err(self.malformed(
                        "core/api/profiles",
                        format!("pupil profile {} has no person_id: its events cannot be asked for", p.id),
                    ))
                }
            }
        }
        let info = SchoolInfo {
            school: school.clone(),
            year_id: year.id.0.clone(),
            year_name: year.name.clone().unwrap_or_else(|| format!("{}/{}", from.format("%Y"), to.format("%Y"))),
            year: DateRange::new(from, to),
            classes: class_ids.into_iter().collect(),
            periods: periods
                .iter()
                .filter(|p| !p.kind.as_deref().unwrap_or("").eq_ignore_ascii_case("vacation"))
                .filter_map(|p| {
                    Some((
                        p.id.0.clone(),
                        p.begin_date.as_deref().and_then(parse_date)?,
                        p.end_date.as_deref().and_then(parse_date)?,
                    ))
                })
                .collect(),
            pupils: pupil_ids,
            family: None,
            reference: Mutex::new(Some((classes, periods))),
            roster: Mutex::new(Some(pupils)),
        };
        *self.info.lock().expect("school info") = Some(Arc::new(info));

        let scope = format!("school:{school}");
        let mut chunks = vec![
            Chunk { stream: "school".into(), scope: scope.clone(), params: serde_json::json!({}), cursor_after: None },
            Chunk {
                stream: "students".into(),
                scope: scope.clone(),
                params: serde_json::json!({}),
                cursor_after: None,
            },
        ];
        let end = to.min(today);
        for piece in ctx.dated_pieces("journal", &scope, from, end, self.config.window_days, self.config.chunk_days) {
            chunks.push(Chunk {
                stream: "journal".into(),
                scope: scope.clone(),
                params: serde_json::to_value(RangeParams { from: piece.from, to: piece.to }).expect("params"),
                cursor_after: Some(ymd(piece.to)),
            });
        }
        // Final marks on the calendar's cadence: a pupil's chunk is planned when they are due.
        let info = self.info()?;
        let period_ends: Vec<NaiveDate> = info.periods.iter().map(|(_, _, end)| *end).collect();
        for (p, _) in &info.pupils {
            let scope = format!("student:{p}");
            let due = ctx.mode == SyncMode::Full
                || period_ends.is_empty()
                || ctx.cursor("student", &scope).is_none()
                || self.config.final_marks.due(&period_ends, today, p);
            if due {
                chunks.push(Chunk {
                    stream: "student".into(),
                    scope,
                    params: serde_json::json!({ "student": p }),
                    // The day they were last read: a pupil without one is read in the next run.
                    cursor_after: Some(ymd(today)),
                });
            }
        }
        Ok(Plan { source_now, chunks })
    }

    fn estimate_requests(&self, chunk: &Chunk) -> u64 {
        let pupils = self.info().map(|i| i.pupils.len() as u64).unwrap_or(0);
        match (chunk.stream.as_str(), serde_json::from_value::<RangeParams>(chunk.params.clone())) {
            // Per pupil and request range: events and family marks.
            ("journal", Ok(r)) => {
                2 * pupils * ((r.to - r.from).num_days().max(0) as u64 + 1).div_ceil(u64::from(self.ranges.days()))
            }
            // Its profile, subjects, groups and the teachers' pages.
            ("school", _) => 5,
            _ => 1,
        }
    }

    async fn fetch(&self, chunk: &Chunk) -> Result<Batch, SourceError> {
        let range = || {
            serde_json::from_value::<RangeParams>(chunk.params.clone()).map_err(|e| {
                SourceError::config(&self.config.instance, SYSTEM, format!("bad {} chunk: {e}", chunk.stream))
            })
        };
        match chunk.stream.as_str() {
            "school" => self.fetch_school().await,
            "students" => self.fetch_students().await,
            "family" => self.fetch_family().await,
            "journal" => self.fetch_journal(&range()?).await,
            "student" => {
                let student = chunk.params.get("student").and_then(|v| v.as_str()).unwrap_or_default().to_string();
                self.fetch_student(&student).await
            }
            other => Err(SourceError::config(&self.config.instance, SYSTEM, format!("unknown stream {other}"))),
        }
    }
}

#[cfg(test)]
mod tests;
