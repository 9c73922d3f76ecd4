//! The КИАСУО diary connector: plans a run and turns the diary API's answers into canonical
//! records. See API.md for every request it makes and README.md for what it reads.
//!
//! Chunks of a run (one store transaction each):
//! - `reference` (per school): study periods, classes, and the pupils (the operator
//!   account's children), all read while planning;
//! - `diary` (per class): for every pupil of the class, `lesson_marks` of every study period
//!   (marks, and attendance written as the mark values «Н», «Б», «У»), `student_marks` (final
//!   marks), and `schedule` week by week over the run's date range (lessons and homework).
//!   Full runs read the year; incremental runs re-read weeks from the stream's cursor minus
//!   `window_days` up to the source's today (marks are read per period, whole, every run:
//!   a mark may be edited long after its lesson). The cursor is the source's today.
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

use ejgate_sdk::client::{
    Authenticator, Classified, ClientConfig, ErrorClassifier, ErrorKind, RetryPolicy, SourceClient, SourceError,
};
use ejgate_sdk::connector::{Batch, Chunk, Connector, Plan, PlanContext, SyncMode};
use ejgate_sdk::mapping::CodeTable;
use ejgate_sdk::model::{self as m, Coverage, DateRange, Entity, EntityKind, IdSpace, Record};
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
    /// Refresh the access token this long before its `exp` (capped at a quarter of its life).
    pub refresh_early: Duration,
    /// A directory with code tables replacing the built-in ones (`<dir>/kiasuo/*.toml`).
    pub mappings_dir: Option<PathBuf>,
    pub timeout: Duration,
    pub extra_root_certificates: Vec<PathBuf>,
    pub retry: RetryPolicy,
    /// How many requests one chunk may have in flight.
    pub concurrency: usize,
}

impl KiasuoConfig {
    pub fn new(instance: &str, base_url: Url, refresh_token_file: impl Into<PathBuf>) -> Self {
        KiasuoConfig {
            instance: instance.into(),
            base_url,
            refresh_token_file: refresh_token_file.into(),
            requests_per_second: None,
            window_days: 35,
            refresh_early: Duration::from_secs(60),
            mappings_dir: None,
            timeout: Duration::from_secs(60),
            extra_root_certificates: Vec::new(),
            retry: RetryPolicy::default(),
            concurrency: 4,
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
}

/// Bearer access token, renewed with the rotating refresh token: before it expires (its
/// `exp`), and once after a 401. A 401 on the refresh itself is final.
pub struct RefreshingBearer {
    instance: String,
    refresh_url: Url,
    file: PathBuf,
    early: Duration,
    http: reqwest::Client,
    state: tokio::sync::Mutex<AuthState>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl RefreshingBearer {
    pub fn new(config: &KiasuoConfig) -> Result<Self, SourceError> {
        let fail = |d: String| SourceError::config(&config.instance, SYSTEM, d);
        let what = format!("source «{}» refresh token", config.instance);
        let refresh = SecretRef::file(&config.refresh_token_file).load(&what).map_err(|e| fail(e.to_string()))?;
        let refresh_url = config.base_url.join("diary/refresh").map_err(|e| fail(format!("bad base URL: {e}")))?;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("ejgate/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout);
        for path in &config.extra_root_certificates {
            let pem = std::fs::read(path)
                .map_err(|e| fail(format!("cannot read the root certificate {}: {e}", path.display())))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| fail(format!("{} is not a PEM certificate bundle: {e}", path.display())))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(RefreshingBearer {
            instance: config.instance.clone(),
            refresh_url,
            file: config.refresh_token_file.clone(),
            early: config.refresh_early,
            http: builder.build().map_err(|e| fail(format!("cannot build the HTTP client: {e}")))?,
            state: tokio::sync::Mutex::new(AuthState { access: None, exp: None, issued: None, refresh }),
            refreshes: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// How many refreshes succeeded.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn hint(&self) -> String {
        format!(
            "КИАСУО refused the refresh token of source «{}». Logins go through Госуслуги: a person signs in to the КИАСУО diary, takes the new refresh token, puts it in {} and runs the sync again; nothing already synced is lost",
            self.instance,
            self.file.display()
        )
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

    /// POST `/diary/refresh` with the form body; persist the new refresh token; keep the
    /// new access token. The caller holds the state lock.
    async fn refresh(&self, st: &mut AuthState) -> Result<(), String> {
        let form = format!("refresh-token={}", st.refresh.expose_secret());
        let answer = self
            .http
            .post(self.refresh_url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| format!("POST diary/refresh: cannot reach the source ({})", e.without_url()))?;
        let status = answer.status();
        let body = answer.bytes().await.map_err(|e| format!("POST diary/refresh: the answer was cut off ({e})"))?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let msg = serde_json::from_slice::<api::ApiError>(&body).ok().and_then(|e| e.msg).unwrap_or_default();
            return Err(format!(
                "POST diary/refresh: the refresh token was refused (HTTP {}{}): a new refresh token is needed",
                status.as_u16(),
                if msg.is_empty() { String::new() } else { format!(": {msg}") }
            ));
        }
        if !status.is_success() {
            return Err(format!("POST diary/refresh: HTTP {}", status.as_u16()));
        }
        let pair: api::RefreshAnswer = serde_json::from_slice(&body)
            .map_err(|e| format!("POST diary/refresh: the answer is not {{accessToken, refreshToken}} ({e})"))?;
        let new_refresh = SecretString::from(pair.refresh_token.trim().to_string());
        // The old refresh token is dead from now on: the new one goes to disk before anything
        // else, or the installation loses access.
        persist_atomically(&self.file, &new_refresh).map_err(|e| {
            format!(
                "cannot write the new refresh token to {}: {e} (the old one is no longer valid)",
                self.file.display()
            )
        })?;
        st.refresh = new_refresh;
        st.exp = api::jwt_exp(&pair.access_token);
        st.issued = Some(SystemTime::now());
        st.access = Some(SecretString::from(pair.access_token));
        self.refreshes.fetch_add(1, std::sync::atomic::Ordering::Release);
        tracing::debug!(source = %self.instance, "access token refreshed");
        Ok(())
    }
}

#[async_trait]
impl Authenticator for RefreshingBearer {
    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, String> {
        let mut st = self.state.lock().await;
        if self.expiring(&st) {
            self.refresh(&mut st).await.map_err(|e| format!("{e}. {}", self.hint()))?;
        }
        let access = st.access.as_ref().expect("an access token after a refresh");
        let mut value = HeaderValue::from_str(&format!("Bearer {}", access.expose_secret()))
            .map_err(|_| "the access token holds characters that cannot go into an HTTP header".to_string())?;
        value.set_sensitive(true);
        Ok(request.header(AUTHORIZATION, value))
    }

    async fn renew(&self) -> Result<bool, String> {
        // A renewal that waited while another one refreshed uses that one's token: a second
        // refresh would only spend the rotating token again.
        let seen = self.refreshes.load(std::sync::atomic::Ordering::Acquire);
        let mut st = self.state.lock().await;
        if self.refreshes.load(std::sync::atomic::Ordering::Acquire) != seen {
            return Ok(true);
        }
        self.refresh(&mut st).await?;
        Ok(true)
    }

    fn unauthorized_hint(&self) -> String {
        self.hint()
    }
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
}

#[derive(Debug, Serialize, Deserialize)]
struct DiaryParams {
    school: String,
    class: String,
    from: NaiveDate,
    to: NaiveDate,
}

/// The КИАСУО diary connector.
pub struct KiasuoConnector {
    config: KiasuoConfig,
    client: SourceClient,
    auth: Arc<RefreshingBearer>,
    ids: IdSpace,
    tables: Tables,
    schools: Mutex<HashMap<String, Arc<SchoolInfo>>>,
}

impl KiasuoConnector {
    pub fn new(config: KiasuoConfig) -> Result<Self, SourceError> {
        let tables = Tables::load(config.mappings_dir.as_deref())
            .map_err(|e| SourceError::config(&config.instance, SYSTEM, e))?;
        let mut client_config = ClientConfig::new(&config.instance, SYSTEM, config.base_url.clone());
        client_config.timeout = config.timeout;
        client_config.extra_root_certificates = config.extra_root_certificates.clone();
        client_config.default_rate = config.requests_per_second;
        client_config.retry = config.retry.clone();
        let auth = Arc::new(RefreshingBearer::new(&config)?);
        let client = SourceClient::new(client_config, auth.clone(), Arc::new(KiasuoErrors))?;
        Ok(KiasuoConnector {
            ids: IdSpace::new(config.instance.clone()),
            config,
            client,
            auth,
            tables,
            schools: Mutex::new(HashMap::new()),
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

    fn school(&self, school: &str) -> Result<Arc<SchoolInfo>, SourceError> {
        self.schools.lock().expect("school cache").get(school).cloned().ok_or_else(|| {
            SourceError::config(&self.config.instance, SYSTEM, format!("school {school} was not planned in this run"))
        })
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
            let number =
                name.chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap_or(i as u8 + 1);
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
            skipped: Vec::new(),
            records,
            coverage: vec![Coverage {
                kinds: vec![EntityKind::StudyPeriod, EntityKind::Class, EntityKind::Person],
                scope: scope.to_string(),
                range: None,
            }],
            warnings: Vec::new(),
            requests: 0,
        })
    }

    async fn fetch_diary(&self, p: &DiaryParams, scope: &str) -> Result<Batch, SourceError> {
        let info = self.school(&p.school)?;
        let pupils: Vec<&Pupil> = info.pupils.iter().filter(|x| x.class == p.class).collect();
        let class_uuid = self.id(EntityKind::Class, &p.class);
        let mut warnings = Vec::new();
        let mut requests = 0u32;
        let mut records = Vec::new();
        let concurrency = self.config.concurrency.max(1);

        // Marks and attendance, per pupil and period; and the subject ids by name.
        let mut jobs: Vec<(String, String)> = Vec::new();
        for x in &pupils {
            for per in &info.periods {
                jobs.push((x.id.clone(), per.id.0.clone()));
            }
        }
        let answers: Vec<(String, api::LessonMarks)> = futures::stream::iter(jobs)
            .map(|(pupil, period)| async move {
                let path = format!("diary/api/lesson_marks/{period}");
                let r = self.client.get_json::<api::LessonMarks>("data", &path, &[("id", pupil.clone())]).await?;
                Ok::<_, SourceError>((pupil, r.body))
            })
            .buffered(concurrency)
            .try_collect()
            .await?;
        requests += answers.len() as u32;
        let mut subject_by_name: HashMap<String, String> = HashMap::new();
        let mut marks: BTreeMap<String, Record> = BTreeMap::new();
        let mut attendance: BTreeMap<String, Record> = BTreeMap::new();
        for (pupil, answer) in &answers {
            let student = self.id(EntityKind::Person, pupil);
            for subj in &answer.lessons {
                subject_by_name.entry(subj.subject.trim().to_string()).or_insert_with(|| subj.id.0.clone());
                let subject = self.id(EntityKind::Subject, &subj.id.0);
                for slot in subj.slots.iter().chain(subj.marks.iter()) {
                    let Some(value) = slot.value().map(str::trim).filter(|v| !v.is_empty()) else { continue };
                    let date = parse_date(&slot.lesson_date);
                    let lesson_id = slot.lesson_event_id.as_ref().map(|l| l.0.clone());
                    let entered_at = slot.updated_at.as_deref().and_then(parse_datetime).map(|(dt, _)| dt);
                    if let Some(code) = self.tables.attendance.get(value) {
                        let Some(lesson_id) = lesson_id else {
                            warnings.push(format!(
                                "an attendance value «{value}» of {} has no lesson id; skipped",
                                slot.lesson_date
                            ));
                            continue;
                        };
                        let key = format!("{lesson_id}:{pupil}");
                        let entity = Entity::Attendance(m::Attendance {
                            student,
                            lesson: self.id(EntityKind::Lesson, &lesson_id),
                            status: code.status,
                            reason: code.reason,
                            source_status: value.to_string(),
                            comment: slot.text.clone().or_else(|| slot.remark.clone()).filter(|t| !t.trim().is_empty()),
                            entered_at,
                        });
                        attendance.insert(key.clone(), self.record(entity, key, scope, date));
                        continue;
                    }
                    let (scale, numeric, _) = self.tables.mark(value, &mut warnings);
                    // ASSUMPTION (API.md): a mark without an id is keyed by its place.
                    let key = match (&slot.id, &lesson_id) {
                        (Some(id), _) => id.0.clone(),
                        (None, Some(l)) => format!("{l}:{pupil}:{value}"),
                        (None, None) => format!("{}:{}:{pupil}:{value}", subj.id.0, slot.lesson_date),
                    };
                    let entity = Entity::Mark(m::Mark {
                        comment: None,
                        is_point: false,
                        point_date: None,
                        student,
                        lesson: lesson_id.as_ref().map(|l| self.id(EntityKind::Lesson, l)),
                        work: None,
                        subject: Some(subject),
                        value: value.to_string(),
                        numeric,
                        scale,
                        weight: slot.weight,
                        entered_at,
                        entered_by: None,
                    });
                    marks.insert(key.clone(), self.record(entity, key, scope, date));
                }
            }
        }
        records.extend(marks.into_values());
        records.extend(attendance.into_values());

        // Final marks, per pupil.
        let pupil_ids: Vec<String> = pupils.iter().map(|x| x.id.clone()).collect();
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
        let periods: std::collections::HashSet<&str> = info.periods.iter().map(|x| x.id.0.as_str()).collect();
        for (pupil, answer) in &finals {
            for subj in &answer.lessons {
                for (mark_type, v) in &subj.marks {
                    let Some(value) = api::value_text(v) else { continue };
                    let period = if periods.contains(mark_type.as_str()) {
                        Some(mark_type.clone())
                    } else if mark_type == "year" {
                        None
                    } else {
                        let w = format!("student_marks: unknown mark type «{mark_type}»; skipped");
                        if !warnings.contains(&w) {
                            warnings.push(w);
                        }
                        continue;
                    };
                    let (_, numeric, special) = self.tables.mark(&value, &mut warnings);
                    let key = format!("{pupil}:{}:{}", subj.id.0, period.as_deref().unwrap_or("year"));
                    let entity = Entity::FinalMark(m::FinalMark {
                        student: self.id(EntityKind::Person, pupil),
                        subject: self.id(EntityKind::Subject, &subj.id.0),
                        period: period.as_ref().map(|x| self.id(EntityKind::StudyPeriod, x)),
                        value,
                        numeric,
                        special,
                    });
                    records.push(self.record(entity, key, scope, None));
                }
            }
        }

        // Lessons and homework, per pupil and ISO week.
        let first_monday = p.from - chrono::Days::new(p.from.weekday().num_days_from_monday() as u64);
        let mut weeks = Vec::new();
        let mut monday = first_monday;
        while monday <= p.to {
            weeks.push(monday);
            monday = monday + chrono::Days::new(7);
        }
        let range = DateRange::new(first_monday, weeks.last().copied().unwrap_or(first_monday) + chrono::Days::new(6));
        let mut jobs: Vec<(String, NaiveDate)> = Vec::new();
        for x in &pupils {
            for w in &weeks {
                jobs.push((x.id.clone(), *w));
            }
        }
        let schedules: Vec<api::Schedule> = futures::stream::iter(jobs)
            .map(|(pupil, monday)| async move {
                let week = monday.iso_week();
                let query = [("id", pupil), ("year", week.year().to_string()), ("week", week.week().to_string())];
                let r = self.client.get_json::<api::Schedule>("data", "diary/api/schedule", &query).await?;
                Ok::<_, SourceError>(r.body)
            })
            .buffered(concurrency)
            .try_collect()
            .await?;
        requests += schedules.len() as u32;
        let mut lessons: BTreeMap<String, Record> = BTreeMap::new();
        let mut homework: BTreeMap<String, Record> = BTreeMap::new();
        for s in &schedules {
            let mut lesson_of_homework: HashMap<&str, &api::LessonEvent> = HashMap::new();
            for e in &s.schedule {
                let Some(date) = parse_date(&e.lesson_date) else {
                    warnings.push(format!(
                        "lesson {} has no readable date «{}»; skipped",
                        e.lesson_event_id, e.lesson_date
                    ));
                    continue;
                };
                if let Some(h) = &e.created_homework_id {
                    lesson_of_homework.insert(h.0.as_str(), e);
                }
                let subject = e
                    .subject
                    .as_deref()
                    .and_then(|n| subject_by_name.get(n.trim()))
                    .map(|id| self.id(EntityKind::Subject, id));
                let entity = Entity::Lesson(m::Lesson {
                    section: None,
                    unit: class_uuid,
                    subject,
                    date,
                    number: e.lesson_number,
                    teacher: None,
                    substitute: None,
                    topic: e.theme.clone().filter(|t| !t.trim().is_empty()),
                    status: if e.cancelled == Some(true) { m::LessonStatus::Cancelled } else { m::LessonStatus::Held },
                });
                let key = e.lesson_event_id.0.clone();
                lessons.insert(key.clone(), self.record(entity, key, scope, Some(date)));
            }
            for h in &s.homeworks {
                let text = h.text.as_deref().map(str::trim).unwrap_or_default();
                if text.is_empty() || text == "Без задания" {
                    continue;
                }
                let lesson = lesson_of_homework.get(h.id.0.as_str());
                let date = lesson
                    .and_then(|l| parse_date(&l.lesson_date))
                    .or_else(|| h.lesson_date.as_deref().and_then(parse_date));
                let entity = Entity::Homework(m::Homework {
                    attachments: Vec::new(),
                    lesson: lesson.map(|l| self.id(EntityKind::Lesson, &l.lesson_event_id.0)),
                    text: text.to_string(),
                    entered_at: None,
                    due_date: h.check_at.as_deref().and_then(parse_date),
                });
                homework.insert(h.id.0.clone(), self.record(entity, h.id.0.clone(), scope, date));
            }
        }
        records.extend(lessons.into_values());
        records.extend(homework.into_values());

        Ok(Batch {
            skipped: Vec::new(),
            records,
            coverage: vec![
                Coverage {
                    kinds: vec![EntityKind::Lesson, EntityKind::Homework],
                    scope: scope.to_string(),
                    range: Some(range),
                },
                Coverage {
                    kinds: vec![EntityKind::Mark, EntityKind::Attendance, EntityKind::FinalMark],
                    scope: scope.to_string(),
                    range: None,
                },
            ],
            warnings,
            requests,
        })
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

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan, SourceError> {
        let user = self.client.get_json::<api::User>("reference", "diary/api/user", &[("id", "0".to_string())]).await?;
        let now_utc: Option<NaiveDateTime> = user.date.map(|d: SystemTime| DateTime::<Utc>::from(d).naive_utc());
        let source_now =
            now_utc.unwrap_or_else(|| Utc::now().naive_utc()) + chrono::Duration::hours(SOURCE_UTC_OFFSET_HOURS);
        let today = source_now.date();
        let mut children = user.body.children;
        children.sort_by(|a, b| a.id.cmp(&b.id));

        // Schools: the class lists seen from the children (each school's list once).
        let mut schools: Vec<(Vec<api::SchoolClass>, Vec<Pupil>, String)> = Vec::new();
        let mut school_of_class: HashMap<String, usize> = HashMap::new();
        for child in children {
            let known = child.school_class_id.as_ref().and_then(|c| school_of_class.get(&c.0).copied());
            let (school, class_id) = match known {
                Some(s) => (s, child.school_class_id.clone().map(|c| c.0)),
                None => {
                    let list = self
                        .client
                        .get_json::<Vec<api::SchoolClass>>(
                            "reference",
                            "diary/api/school_classes",
                            &[("id", child.id.0.clone())],
                        )
                        .await?
                        .body;
                    let class_id = child.school_class_id.clone().map(|c| c.0).or_else(|| {
                        let name = child.school_class.as_deref()?.trim();
                        list.iter().find(|c| c.name.trim() == name).map(|c| c.id.0.clone())
                    });
                    let existing = list.iter().find_map(|c| school_of_class.get(&c.id.0).copied());
                    let index = existing.unwrap_or_else(|| {
                        schools.push((Vec::new(), Vec::new(), child.id.0.clone()));
                        schools.len() - 1
                    });
                    for c in list {
                        if school_of_class.insert(c.id.0.clone(), index).is_none() {
                            schools[index].0.push(c);
                        }
                    }
                    (index, class_id)
                }
            };
            let Some(class) = class_id else {
                tracing::warn!(source = %self.config.instance, child = %child.id, "a child without a class is skipped");
                continue;
            };
            schools[school].1.push(Pupil {
                id: child.id.0.clone(),
                last_name: child.last_name.unwrap_or_default(),
                first_name: child.first_name.unwrap_or_default(),
                middle_name: child.middle_name.filter(|m| !m.trim().is_empty()),
                class,
            });
        }

        let mut chunks = Vec::new();
        for (classes, pupils, first_child) in schools {
            let Some(key) = classes.iter().map(|c| c.id.0.clone()).min_by(|a, b| (a.len(), a).cmp(&(b.len(), b)))
            else {
                continue;
            };
            let periods = self
                .client
                .get_json::<Vec<api::StudyPeriod>>("reference", "diary/api/study_periods", &[("id", first_child)])
                .await?
                .body;
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
                for class in &classes {
                    if !pupils.iter().any(|p| p.class == class.id.0) {
                        continue;
                    }
                    let scope = format!("class:{}", class.id.0);
                    let from = match (ctx.mode, ctx.cursor("diary", &scope).and_then(parse_date)) {
                        (SyncMode::Incremental, Some(cursor)) => {
                            (cursor.min(end) - chrono::Days::new(self.config.window_days as u64)).max(year.from)
                        }
                        _ => year.from,
                    };
                    if from > end {
                        continue;
                    }
                    let params = DiaryParams { school: key.clone(), class: class.id.0.clone(), from, to: end };
                    chunks.push(Chunk {
                        stream: "diary".into(),
                        scope,
                        params: serde_json::to_value(params).expect("params serialize"),
                        cursor_after: Some(end.format("%Y-%m-%d").to_string()),
                    });
                }
            }
            self.schools.lock().expect("school cache").insert(key, Arc::new(SchoolInfo { periods, classes, pupils }));
        }
        Ok(Plan { source_now: Some(source_now), chunks })
    }

    async fn fetch(&self, chunk: &Chunk) -> Result<Batch, SourceError> {
        match chunk.stream.as_str() {
            "reference" => {
                let school = chunk.params.get("school").and_then(|v| v.as_str()).unwrap_or_default();
                self.fetch_reference(school, &chunk.scope)
            }
            "diary" => {
                let params: DiaryParams = serde_json::from_value(chunk.params.clone())
                    .map_err(|e| SourceError::config(&self.config.instance, SYSTEM, format!("bad diary chunk: {e}")))?;
                self.fetch_diary(&params, &chunk.scope).await
            }
            other => Err(SourceError::config(&self.config.instance, SYSTEM, format!("unknown stream {other}"))),
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
