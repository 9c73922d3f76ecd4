//! The ЭПОС.Школа connector: plans a run and turns the API's answers into canonical records.
//! See API.md for every request it makes and README.md for what it reads.
//!
//! The operator supplies a session token (login is Госуслуги, done by a person). The
//! connector opens the session with POST `lms/api/sessions`, takes the default profile (a
//! staff profile of one school, see README.md) and sends `auth-token` and `profile-id`
//! headers from then on. It never calls `DELETE lms/api/sessions` (that logs the token out).
//!
//! Chunks of a run (one store transaction each):
//! - `school`: the school, its year, periods, holidays, classes, groups, subjects and staff;
//! - `students`: the pupils and their class and group memberships;
//! - `journal` (per date range, by lesson date): lessons with their homework and classroom
//!   jobs, joined by the lessons' `homeworks_to_give` ids;
//! - `marks` (per date range, by the day the mark was **created**), up to the day before
//!   the next year starts ([`DateRange::entries_close`]): marks are created after the
//!   last lesson too;
//! - `student` (per pupil): attendance and final marks.
//!
//! Full runs read the year in pieces of `chunk_days`; incremental runs re-read dated lists
//! from the stream's cursor minus `window_days` up to the source's today.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use reqwest::header::{HeaderName, HeaderValue};
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
use ejgate_sdk::time::{parse_date, parse_datetime};
use serde_json::value::RawValue;

use crate::api;

const SYSTEM: &str = "epos";

/// The settings of one ЭПОС.Школа source instance.
#[derive(Debug, Clone)]
pub struct EposConfig {
    /// The source instance name (`epos`, `perm-school-16`): part of every canonical id.
    pub instance: String,
    /// `https://school.permkrai.ru/`.
    pub base_url: Url,
    /// The session token (the `auth_token` cookie of a signed-in staff user).
    pub token: SecretString,
    /// Where the token came from (a file, an environment variable), for the message that
    /// asks for a new one.
    pub token_origin: String,
    /// The school's offset from UTC in hours (Perm: +5): turns the source's `Date` header
    /// into its local "now".
    pub utc_offset_hours: i32,
    /// The source's request limit; the client stays under it.
    pub requests_per_second: Option<NonZeroU32>,
    /// How far back an incremental run re-reads dated lists.
    pub window_days: u32,
    /// Size of one journal or marks chunk (one transaction) in days.
    pub chunk_days: u32,
    /// When incremental runs read a pupil's final marks (the progress report): every
    /// `every` nights within `days` of a study period's end, and a pupil's first run; full
    /// runs always (README, `ejgate_sdk::cadence`).
    pub final_marks: FinalMarksCadence,
    /// A directory with code tables replacing the built-in ones (`<dir>/epos/*.toml`).
    pub mappings_dir: Option<PathBuf>,
    /// The schools the configuration asks for (the source's `schools` setting). Set, the
    /// token must be a staff profile of one of them: a pupil's or parent's token then stops
    /// the run with a message saying so, instead of reading only the children.
    pub school_ids: Vec<String>,
    pub timeout: Duration,
    pub extra_root_certificates: Vec<PathBuf>,
    pub retry: RetryPolicy,
}

impl EposConfig {
    pub fn new(instance: &str, base_url: Url, token: SecretString) -> Self {
        EposConfig {
            instance: instance.into(),
            base_url,
            token,
            token_origin:
                "the token file named by this source's `token_file` setting (or its token environment variable)".into(),
            utc_offset_hours: 5,
            requests_per_second: None,
            window_days: 35,
            chunk_days: 31,
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
    values: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    special: std::collections::BTreeMap<String, m::SpecialFinal>,
}

/// The code tables of `mappings/epos/`.
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
            concat!("epos/", $name),
            $dir,
            concat!($name, ".toml"),
            include_str!(concat!("../../../mappings/epos/", $name, ".toml")),
        )
        .map_err(|e| e.to_string())?
    };
}

impl Tables {
    fn load(dir: Option<&std::path::Path>) -> Result<Self, String> {
        let dir = dir.map(|d| d.join("epos"));
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

/// The session: the operator's token and the profile chosen from POST `lms/api/sessions`.
/// Sent as the `auth-token` and `profile-id` headers (marked sensitive: never printed).
pub struct EposSession {
    token: SecretString,
    profile: Mutex<Option<String>>,
    hint: String,
}

impl EposSession {
    fn set_profile(&self, id: &str) {
        *self.profile.lock().expect("profile") = Some(id.to_string());
    }
}

#[async_trait]
impl Authenticator for EposSession {
    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, String> {
        let mut token = HeaderValue::from_str(self.token.expose_secret())
            .map_err(|_| "the token holds characters that cannot go into an HTTP header".to_string())?;
        token.set_sensitive(true);
        let mut request = request.header(HeaderName::from_static("auth-token"), token);
        if let Some(profile) = self.profile.lock().expect("profile").clone() {
            let value = HeaderValue::from_str(&profile).map_err(|_| "bad profile id".to_string())?;
            request = request.header(HeaderName::from_static("profile-id"), value);
        }
        Ok(request)
    }

    fn unauthorized_hint(&self) -> String {
        self.hint.clone()
    }
}

/// Classifies ЭПОС's `{code, message}` error bodies. The lost-session answer comes with 401
/// **or 400**: it is recognised by its message, not only by the status.
pub struct EposErrors;

impl ErrorClassifier for EposErrors {
    fn classify(&self, status: StatusCode, body: &[u8]) -> Option<Classified> {
        let err: api::ApiError = serde_json::from_slice(body).ok()?;
        let message = err.message.unwrap_or_default();
        let lower = message.to_lowercase();
        let lost_session = lower.contains("сессия") || lower.contains("войдите") || lower.contains("session");
        let kind = match status.as_u16() {
            _ if lost_session => ErrorKind::Unauthorized,
            401 | 403 => ErrorKind::Unauthorized,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::Client,
        };
        let code = err.code.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
        Some(Classified { kind, message: format!("code {code}: {message}") })
    }
}

/// What planning learned of the school (or the family), reused by its chunks.
#[derive(Debug)]
struct SchoolInfo {
    /// The part of every scope: the school id (staff) or `family-<profile>`.
    key: String,
    /// The school (a staff profile's; a family profile's own school, when it names one).
    school: Option<String>,
    year_id: String,
    year_name: String,
    year: DateRange,
    classes: HashSet<String>,
    groups: HashSet<String>,
    /// Subject ids by normalized name: the progress report names subjects, never ids.
    subjects: HashMap<String, String>,
    /// Subject names by id (a family token's subjects come from its lessons).
    subject_names: HashMap<String, String>,
    /// Study periods (id, name, start, end), to place the progress report's periods; empty
    /// with a family token (no period list): their ids are then made from their dates.
    periods: Vec<(String, String, NaiveDate, NaiveDate)>,
    /// With a family token: the profile and the children it sees.
    family: Option<Family>,
    /// The lists planning read, handed to the school and students chunks so that a run
    /// reads each once (taken once; a retried chunk asks again).
    planned: Mutex<Option<PlannedLists>>,
    planned_students: Mutex<Option<Vec<api::PersonItem>>>,
}

/// A staff profile's reference lists as planning read them.
#[derive(Debug)]
struct PlannedLists {
    periods: Vec<api::PeriodItem>,
    subjects: Vec<api::Subject>,
    classes: Vec<api::ClassUnit>,
    groups: Vec<api::Group>,
}

/// A pupil's or parent's session: it reads the children its profile sees, nothing more.
#[derive(Debug, Clone)]
struct Family {
    /// `student` or `parent`
    kind: String,
    profile: String,
    school_name: Option<String>,
    children: Vec<api::PersonItem>,
}

impl Family {
    /// The classes and groups a child's lessons are read by.
    fn units(child: &api::PersonItem) -> Vec<String> {
        let mut units: Vec<String> = child
            .class_unit
            .as_ref()
            .map(|c| c.id.0.clone())
            .or_else(|| sid(&child.class_unit_id))
            .into_iter()
            .chain(child.groups.iter().map(|g| g.id.0.clone()))
            .chain(child.memberships.iter().filter(|m| m.active).map(|m| m.unit_id.0.clone()))
            .collect();
        units.sort();
        units.dedup();
        units
    }
}

/// The source id of a study period a family token knows only by its dates.
fn family_period_id(year_id: &str, start: NaiveDate, end: NaiveDate) -> String {
    format!("{year_id}:{}:{}", start.format("%Y-%m-%d"), end.format("%Y-%m-%d"))
}

/// The API root of a base URL as an operator may paste it: with or without the trailing
/// `/`, with or without a path prefix of the deployment, even with one of the API's path
/// families (`…/core/api/`) left on; requests are joined to the result.
pub fn api_root(mut url: Url) -> Url {
    let path = url.path().trim_end_matches('/').to_string();
    let mut root = path.as_str();
    for family in ["core/api", "jersey/api", "reports/api", "lms/api", "acl/api", "notification/api"] {
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

#[derive(Debug, Serialize, Deserialize)]
struct RangeParams {
    from: NaiveDate,
    to: NaiveDate,
}

/// The ЭПОС.Школа connector.
pub struct EposConnector {
    config: EposConfig,
    client: SourceClient,
    session: Arc<EposSession>,
    ids: IdSpace,
    tables: Tables,
    info: Mutex<Option<Arc<SchoolInfo>>>,
}

fn fmt_dmy(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

fn sid(id: &Option<ejgate_sdk::time::SourceId>) -> Option<String> {
    id.as_ref().map(|i| i.0.clone())
}

/// A date-time the source writes in local time (`dd.MM.yyyy HH:mm`, ISO without zone).
fn local_dt(s: Option<&str>) -> Option<NaiveDateTime> {
    s.and_then(parse_datetime).map(|(dt, _)| dt)
}

impl EposConnector {
    pub fn new(config: EposConfig) -> Result<Self, SourceError> {
        let tables = Tables::load(config.mappings_dir.as_deref())
            .map_err(|e| SourceError::config(&config.instance, SYSTEM, e))?;
        let mut client_config = ClientConfig::new(&config.instance, SYSTEM, api_root(config.base_url.clone()));
        client_config.timeout = config.timeout;
        client_config.extra_root_certificates = config.extra_root_certificates.clone();
        client_config.default_rate = config.requests_per_second;
        client_config.retry = config.retry.clone();
        let hint = format!(
            "ЭПОС.Школа refused the session token of source «{}» (it lives about an hour). Logins go through Госуслуги: sign in to ЭПОС.Школа as the school's staff user, copy the value of the `auth_token` cookie into {} and run the sync again; nothing already synced is lost",
            config.instance, config.token_origin
        );
        let session = Arc::new(EposSession { token: config.token.clone(), profile: Mutex::new(None), hint });
        let client = SourceClient::new(client_config, session.clone(), Arc::new(EposErrors))?;
        Ok(EposConnector {
            ids: IdSpace::new(config.instance.clone()),
            config,
            client,
            session,
            tables,
            info: Mutex::new(None),
        })
    }

    pub fn client(&self) -> &SourceClient {
        &self.client
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

    fn source_error(&self, endpoint: &str, kind: ErrorKind, detail: String) -> SourceError {
        SourceError {
            instance: self.config.instance.clone(),
            system: SYSTEM.into(),
            method: "GET".into(),
            endpoint: endpoint.into(),
            kind,
            detail,
            hint: None,
        }
    }

    fn malformed(&self, endpoint: &str, detail: String) -> SourceError {
        self.source_error(endpoint, ErrorKind::Malformed, detail)
    }

    /// Reads a bare-array list page by page until a page comes back **empty**: a short page
    /// is not the end (the source may cap `per_page` below what was asked). An element that
    /// cannot be read is left out into `skipped`, naming the endpoint and the field.
    async fn paged<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        per_page: u32,
        requests: &mut u32,
        skipped: &mut Vec<Skipped>,
    ) -> Result<Vec<T>, SourceError> {
        let mut out = Vec::new();
        let mut page = 1u32;
        let endpoint = format!("GET {path}");
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("page", page.to_string()));
            q.push(("per_page", per_page.to_string()));
            let items: Vec<Box<RawValue>> = self.client.get_json("data", path, &q).await?.body;
            *requests += 1;
            if items.is_empty() {
                return Ok(out);
            }
            out.extend(read::each(&endpoint, &items, skipped));
            page += 1;
            if page > 100_000 {
                return Err(self.malformed(path, "the list never ends (100,000 pages)".into()));
            }
        }
    }

    fn unit(&self, info: &SchoolInfo, unit: &str) -> uuid::Uuid {
        let kind = if info.classes.contains(unit) { EntityKind::Class } else { EntityKind::Group };
        self.id(kind, unit)
    }

    /// The staff profile's school: a school id planning checked.
    fn staff_school(&self, info: &SchoolInfo) -> Result<String, SourceError> {
        info.school
            .clone()
            .ok_or_else(|| SourceError::config(&self.config.instance, SYSTEM, "the profile has no school"))
    }

    async fn fetch_school(&self) -> Result<Batch, SourceError> {
        let info = self.info()?;
        let s = &self.staff_school(&info)?;
        let mut skipped = Vec::new();
        let scope = format!("school:{s}");
        let staff_scope = format!("school:{s}:staff");
        let mut warnings = Vec::new();
        let mut requests = 0;
        let school: api::School = self.client.get_json("data", &format!("core/api/schools/{s}"), &[]).await?.body;
        let sq = [("school_id", s.clone())];
        requests += 1;
        let planned = info.planned.lock().expect("planned lists").take();
        let PlannedLists { periods, subjects, classes, groups } = match planned {
            Some(lists) => lists,
            None => {
                requests += 4;
                PlannedLists {
                    periods: self
                        .client
                        .get_json(
                            "data",
                            "core/api/periods_schedules",
                            &[("school_id", s.clone()), ("academic_year_id", info.year_id.clone())],
                        )
                        .await?
                        .body,
                    subjects: self.client.get_json("data", "core/api/subjects", &sq).await?.body,
                    classes: self.client.get_json("data", "core/api/class_units", &sq).await?.body,
                    groups: self.client.get_json("data", "core/api/groups", &sq).await?.body,
                }
            }
        };
        let teachers: Vec<api::PersonItem> =
            self.paged("core/api/teacher_profiles", &sq, 200, &mut requests, &mut skipped).await?;

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
            if kind.eq_ignore_ascii_case("vacation") {
                records.push(self.record(
                    Entity::Holiday(m::Holiday {
                        organization: Some(org),
                        name: p.name.unwrap_or_default(),
                        start,
                        end,
                    }),
                    p.id.0,
                    &scope,
                    None,
                ));
            } else {
                let kind =
                    self.tables.period_types.lookup(&kind, &mut warnings).copied().unwrap_or(m::PeriodKind::Other);
                records.push(self.record(
                    Entity::StudyPeriod(m::StudyPeriod {
                        organization: Some(org),
                        academic_year: Some(year),
                        kind,
                        number: p.number.unwrap_or(0),
                        name: p.name.unwrap_or_default(),
                        start,
                        end,
                    }),
                    p.id.0,
                    &scope,
                    None,
                ));
            }
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
            skipped,
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
        let school = self.staff_school(&info)?;
        let scope = format!("school:{school}:students");
        let mut requests = 0;
        let mut skipped = Vec::new();
        let planned = info.planned_students.lock().expect("planned students").take();
        let students: Vec<api::PersonItem> = match planned {
            Some(students) => students,
            None => {
                self.paged(
                    "core/api/student_profiles",
                    &[("school_id", school.clone())],
                    200,
                    &mut requests,
                    &mut skipped,
                )
                .await?
            }
        };
        let mut records = Vec::new();
        for mut st in students {
            let id = st.id.0.clone();
            let memberships = std::mem::take(&mut st.memberships);
            let student = self.id(EntityKind::Person, &id);
            records.push(self.record(Entity::Person(person(st, m::Role::Student)), id.clone(), &scope, None));
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
            skipped,
            records,
            coverage: vec![Coverage { kinds: vec![EntityKind::Person, EntityKind::Enrollment], scope, range: None }],
            warnings: Vec::new(),
            requests,
        })
    }

    /// With a family token: what the children's profiles show of their school — the school
    /// (its short name), the year, the study periods of the progress report (ids made from
    /// their dates), the children's classes and groups, the subjects of their lessons, the
    /// children and their memberships.
    async fn fetch_family(&self) -> Result<Batch, SourceError> {
        let info = self.info()?;
        let family = info.family.as_ref().ok_or_else(|| {
            SourceError::config(&self.config.instance, SYSTEM, "the family roster was planned without a family")
        })?;
        let scope = format!("school:{}", info.key);
        let mut warnings = vec![format!(
            "ЭПОС.Школа: the token is a {} profile ({}): only the {} pupil(s) it sees are read, not the whole school (a school needs a staff profile)",
            family.kind,
            family.profile,
            family.children.len()
        )];
        let mut requests = 0;
        let org_source = info.school.clone().unwrap_or_else(|| info.key.clone());
        let org = self.id(EntityKind::Organization, &org_source);
        let year = self.id(EntityKind::AcademicYear, &info.year_id);
        let mut records = vec![
            self.record(
                Entity::Organization(m::Organization {
                    kind: m::OrganizationKind::School,
                    name: family.school_name.clone().unwrap_or_default(),
                    full_name: None,
                    municipality: None,
                    time_zone: None,
                    regulation_profile: None,
                }),
                org_source,
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
        // The study periods: the first child's progress report lists them by name and dates.
        let mut periods: HashMap<String, Record> = HashMap::new();
        if let Some(child) = family.children.first() {
            let progress = self.progress(&child.id.0, &info).await?;
            requests += 1;
            for p in progress.iter().flat_map(|s| &s.periods) {
                let Some((start, end)) = period_dates(p) else { continue };
                if start == info.year.from && end == info.year.to {
                    continue; // the year itself: its mark is the year mark
                }
                let id = family_period_id(&info.year_id, start, end);
                let name = p.name.clone().unwrap_or_default();
                let kind = period_kind_by_name(&name);
                periods.entry(id.clone()).or_insert_with(|| {
                    self.record(
                        Entity::StudyPeriod(m::StudyPeriod {
                            organization: Some(org),
                            academic_year: Some(year),
                            kind,
                            number: name
                                .chars()
                                .take_while(|c| c.is_ascii_digit())
                                .collect::<String>()
                                .parse()
                                .unwrap_or(0),
                            name,
                            start,
                            end,
                        }),
                        id,
                        &scope,
                        None,
                    )
                });
            }
        }
        let mut periods: Vec<Record> = periods.into_values().collect();
        periods.sort_by_key(|r| r.source_id.clone());
        records.extend(periods);
        let mut subjects: Vec<(&String, &String)> = info.subjects.iter().collect();
        subjects.sort();
        let mut seen_subjects = HashSet::new();
        for (_, id) in subjects {
            if !seen_subjects.insert(id.clone()) {
                continue;
            }
            let name = info.subject_names.get(id).cloned().unwrap_or_default();
            records.push(self.record(
                Entity::Subject(m::Subject {
                    organization: Some(org),
                    normalized_name: m::normalize_name(&name),
                    name,
                    knowledge_area: None,
                }),
                id.clone(),
                &scope,
                None,
            ));
        }
        let mut units_seen = HashSet::new();
        for child in &family.children {
            let id = child.id.0.clone();
            let student = self.id(EntityKind::Person, &id);
            if let Some(c) = &child.class_unit {
                if units_seen.insert(c.id.0.clone()) {
                    records.push(self.record(
                        Entity::Class(m::Class {
                            organization: Some(org),
                            academic_year: Some(year),
                            name: c.name.clone().unwrap_or_default(),
                            grade: c.class_level_id,
                            homeroom_teacher: sid(&c.mentor_id).map(|t| self.id(EntityKind::Person, &t)),
                        }),
                        c.id.0.clone(),
                        &scope,
                        None,
                    ));
                }
            }
            let class = child.class_unit.as_ref().map(|c| self.id(EntityKind::Class, &c.id.0));
            for g in &child.groups {
                if units_seen.insert(g.id.0.clone()) {
                    let kind = g
                        .group_type
                        .as_deref()
                        .and_then(|t| self.tables.groups.lookup(t, &mut warnings).copied())
                        .unwrap_or(m::GroupKind::Subgroup);
                    records.push(self.record(
                        Entity::Group(m::Group {
                            organization: Some(org),
                            class: sid(&g.class_unit_id).map(|c| self.id(EntityKind::Class, &c)).or(class),
                            kind,
                            name: g.name.clone().unwrap_or_default(),
                            subject: sid(&g.subject_id).map(|x| self.id(EntityKind::Subject, &x)),
                        }),
                        g.id.0.clone(),
                        &scope,
                        None,
                    ));
                }
            }
            records.push(self.record(
                Entity::Person(person(child.clone(), m::Role::Student)),
                id.clone(),
                &scope,
                None,
            ));
            for unit in Family::units(child) {
                records.push(self.record(
                    Entity::Enrollment(m::Enrollment {
                        student,
                        unit: self.unit(&info, &unit),
                        status: m::EnrollmentStatus::Active,
                        from: None,
                        to: None,
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

    /// The lessons of a range: the whole school's classes and groups (staff), or each
    /// child's own (family, with `student_profile_id`), each lesson once.
    async fn lessons(
        &self,
        info: &SchoolInfo,
        from: NaiveDate,
        to: NaiveDate,
        requests: &mut u32,
        skipped: &mut Vec<Skipped>,
    ) -> Result<Vec<api::ScheduleItem>, SourceError> {
        let mut asks: Vec<(Option<String>, Vec<String>)> = match &info.family {
            None => {
                let mut units: Vec<String> = info.classes.iter().chain(info.groups.iter()).cloned().collect();
                units.sort();
                vec![(None, units)]
            }
            Some(f) => f.children.iter().map(|c| (Some(c.id.0.clone()), Family::units(c))).collect(),
        };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (pupil, units) in asks.drain(..) {
            if units.is_empty() {
                continue;
            }
            let mut q = vec![
                ("from", from.format("%Y-%m-%d").to_string()),
                ("to", to.format("%Y-%m-%d").to_string()),
                ("group_id", units.join(",")),
                ("with_lesson_info", "1".into()),
                ("with_group_class_subject_info", "true".into()),
            ];
            if let Some(p) = pupil {
                q.push(("student_profile_id", p));
            }
            let lessons: Vec<api::ScheduleItem> =
                self.paged("jersey/api/schedule_items", &q, 100, requests, skipped).await?;
            out.extend(lessons.into_iter().filter(|l| seen.insert(l.id.0.clone())));
        }
        Ok(out)
    }

    async fn fetch_journal(&self, p: &RangeParams) -> Result<Batch, SourceError> {
        let info = self.info()?;
        let scope = format!("journal:{}", info.key);
        let mut warnings = Vec::new();
        let mut skipped = Vec::new();
        let mut requests = 0;
        let lessons = self.lessons(&info, p.from, p.to, &mut requests, &mut skipped).await?;
        let dates = [("begin_date", fmt_dmy(p.from)), ("end_date", fmt_dmy(p.to))];
        let mut homeworks: Vec<api::StudentHomework> = Vec::new();
        let mut homework_seen = HashSet::new();
        let filters: Vec<(&str, String)> = match (&info.family, &info.school) {
            (Some(f), _) => f.children.iter().map(|c| ("student_profile_id", c.id.0.clone())).collect(),
            (None, Some(school)) => vec![("school_id", school.clone())],
            (None, None) => Vec::new(),
        };
        for filter in filters {
            let q = [filter, dates[0].clone(), dates[1].clone()];
            let list: Vec<api::StudentHomework> =
                self.paged("core/api/student_homeworks", &q, 200, &mut requests, &mut skipped).await?;
            // Each child has his own copy of a class's homework: kept once, by the homework.
            homeworks.extend(list.into_iter().filter(|h| {
                let id = h.homework_entry.as_ref().and_then(|e| e.homework.as_ref()).map(|hw| hw.id.0.clone());
                id.is_none_or(|id| homework_seen.insert(id))
            }));
        }
        let mut records = Vec::new();
        // homework id → (lesson id, lesson date): the join by `homeworks_to_give`.
        let mut given: HashMap<String, (String, NaiveDate)> = HashMap::new();
        for l in lessons {
            let date = match l.date.as_slice() {
                [y, mo, d] => NaiveDate::from_ymd_opt(*y as i32, *mo, *d),
                _ => None,
            }
            .or_else(|| local_dt(l.iso_date_time.as_deref()).map(|d| d.date()));
            let Some(date) = date else {
                warnings.push(format!("lesson {}: no date; left out", l.id));
                continue;
            };
            let Some(unit) = sid(&l.group_id) else {
                warnings.push(format!("lesson {}: no group_id; left out", l.id));
                continue;
            };
            for h in &l.homeworks_to_give {
                given.insert(h.id.0.clone(), (l.id.0.clone(), date));
            }
            let filled = |t: Option<String>| t.filter(|t| !t.trim().is_empty());
            records.push(self.record(
                Entity::Lesson(m::Lesson {
                    unit: self.unit(&info, &unit),
                    subject: sid(&l.subject_id).map(|x| self.id(EntityKind::Subject, &x)),
                    date,
                    number: l.study_ordinal,
                    teacher: sid(&l.teacher_id).map(|t| self.id(EntityKind::Person, &t)),
                    substitute: sid(&l.replaced_teacher_id).map(|t| self.id(EntityKind::Person, &t)),
                    // `lesson_name` is the lesson's topic; `topic_name` only its section: a
                    // lesson without `lesson_name` has no topic, whatever its section.
                    topic: filled(l.lesson_name),
                    section: filled(l.topic_name),
                    status: if l.is_cancelled { m::LessonStatus::Cancelled } else { m::LessonStatus::Held },
                }),
                l.id.0,
                &scope,
                Some(date),
            ));
        }
        for sh in homeworks {
            let Some(entry) = sh.homework_entry else { continue };
            let Some(hw) = entry.homework else { continue };
            let hid = hw.id.0.clone();
            let assigned = hw.date_assigned_on.as_deref().and_then(parse_date);
            let (lesson, date) = match given.get(&hid) {
                Some((l, d)) => (Some(self.id(EntityKind::Lesson, l)), Some(*d)),
                None => {
                    warnings.push(format!("homework {hid}: no lesson of the range gives it; kept without a lesson"));
                    (None, assigned)
                }
            };
            if hw.is_class_room_job {
                let form = entry.control_form;
                let source_type = form.as_ref().and_then(|f| f.name.clone()).unwrap_or_default();
                let kind =
                    self.tables.work_types.lookup(&source_type, &mut warnings).copied().unwrap_or(m::WorkKind::Other);
                records.push(self.record(
                    Entity::Work(m::Work {
                        lesson,
                        kind,
                        source_type,
                        title: entry.description.filter(|t| !t.trim().is_empty()),
                        weight: form.and_then(|f| f.weight),
                    }),
                    hid,
                    &scope,
                    date,
                ));
            } else {
                let attachments = entry
                    .attachments
                    .into_iter()
                    .filter_map(|a| {
                        let name = a.file_file_name.filter(|n| !n.trim().is_empty()).or_else(|| sid(&a.id))?;
                        Some(m::Attachment { name, url: a.path.filter(|p| !p.trim().is_empty()) })
                    })
                    .collect();
                records.push(self.record(
                    Entity::Homework(m::Homework {
                        attachments,
                        lesson,
                        text: entry.description.unwrap_or_default(),
                        entered_at: local_dt(sh.created_at.as_deref()),
                        due_date: hw.date_prepared_for.as_deref().and_then(parse_date),
                    }),
                    hid,
                    &scope,
                    date,
                ));
            }
        }
        Ok(Batch {
            skipped,
            records,
            coverage: vec![Coverage {
                kinds: vec![EntityKind::Lesson, EntityKind::Work, EntityKind::Homework],
                scope,
                range: Some(DateRange::new(p.from, p.to)),
            }],
            warnings,
            requests,
        })
    }

    async fn fetch_marks(&self, p: &RangeParams) -> Result<Batch, SourceError> {
        let info = self.info()?;
        let scope = format!("marks:{}", info.key);
        let mut warnings = Vec::new();
        let mut skipped = Vec::new();
        let mut requests = 0;
        let dates = [("created_at_from", fmt_dmy(p.from)), ("created_at_to", fmt_dmy(p.to))];
        // (the pupil asked for, when a family token asks per child; the marks)
        let mut lists: Vec<(Option<String>, Vec<api::Mark>)> = Vec::new();
        match (&info.family, &info.school) {
            (Some(f), _) => {
                for c in &f.children {
                    let q = [dates[0].clone(), dates[1].clone(), ("student_profile_id", c.id.0.clone())];
                    let marks = self.paged("core/api/marks", &q, 1000, &mut requests, &mut skipped).await?;
                    lists.push((Some(c.id.0.clone()), marks));
                }
            }
            (None, school) => {
                let mut q = dates.to_vec();
                q.extend(school.clone().map(|s| ("school_id", s)));
                lists.push((None, self.paged("core/api/marks", &q, 1000, &mut requests, &mut skipped).await?));
            }
        }
        let mut records = Vec::new();
        for (asked, marks) in lists {
            for mk in marks {
                let Some(student) = sid(&mk.student_profile_id).or_else(|| asked.clone()) else {
                    warnings.push(format!("mark {}: no student_profile_id; left out", mk.id));
                    continue;
                };
                let entered_at = local_dt(mk.created_at.as_deref());
                let value = mk.name.clone().unwrap_or_default();
                let system = mk.grade_system_type.clone().unwrap_or_else(|| "five".into());
                let table = self.tables.marks.lookup(&system, &mut warnings);
                let numeric = table.and_then(|t| t.values.get(&value.to_lowercase()).copied());
                if table.is_some() && numeric.is_none() {
                    warnings.push(format!("mark {}: value «{value}» is not on the {system} scale", mk.id));
                }
                records.push(self.record(
                    Entity::Mark(m::Mark {
                        comment: mk.comment.filter(|c| !c.trim().is_empty()),
                        is_point: mk.is_point,
                        point_date: mk.point_date.as_deref().and_then(parse_date),
                        student: self.id(EntityKind::Person, &student),
                        lesson: sid(&mk.schedule_lesson_id).map(|l| self.id(EntityKind::Lesson, &l)),
                        work: sid(&mk.homework_id).map(|w| self.id(EntityKind::Work, &w)),
                        subject: sid(&mk.subject_id).map(|x| self.id(EntityKind::Subject, &x)),
                        value,
                        numeric,
                        scale: table.map(|t| t.scale).unwrap_or(m::MarkScale::Other),
                        weight: mk.weight,
                        entered_at,
                        entered_by: sid(&mk.teacher_id).map(|t| self.id(EntityKind::Person, &t)),
                    }),
                    mk.id.0,
                    &scope,
                    entered_at.map(|d| d.date()),
                ));
            }
        }
        Ok(Batch {
            skipped,
            records,
            coverage: vec![Coverage {
                kinds: vec![EntityKind::Mark],
                scope,
                range: Some(DateRange::new(p.from, p.to)),
            }],
            warnings,
            requests,
        })
    }

    /// `reports/api/progress/json` of one pupil.
    async fn progress(&self, student: &str, info: &SchoolInfo) -> Result<Vec<api::ProgressSubject>, SourceError> {
        Ok(self
            .client
            .get_json(
                "data",
                "reports/api/progress/json",
                &[
                    ("student_profile_id", student.to_string()),
                    ("academic_year_id", info.year_id.clone()),
                    ("hide_half_years", "true".into()),
                ],
            )
            .await?
            .body)
    }

    async fn fetch_student(&self, student: &str, finals: bool) -> Result<Batch, SourceError> {
        let info = self.info()?;
        let scope = format!("student:{student}");
        let mut warnings = Vec::new();
        let profile: api::StudentProfile = self
            .client
            .get_json("data", &format!("core/api/student_profiles/{student}"), &[("with_attendance", "true".into())])
            .await?
            .body;
        let progress = if finals { self.progress(student, &info).await? } else { Vec::new() };
        let student_id = self.id(EntityKind::Person, student);
        let mut records = Vec::new();
        for a in profile.attendances {
            let lesson = a.schedule_lesson_id.0;
            let reason_code = sid(&a.absence_reason_id).unwrap_or_default();
            let (status, reason) = if reason_code.is_empty() {
                (m::AttendanceStatus::Absent, None)
            } else {
                match self.tables.attendance.lookup(&reason_code, &mut warnings) {
                    Some(c) if c.status == "late" => (m::AttendanceStatus::Late, None),
                    Some(c) => (m::AttendanceStatus::Absent, c.reason),
                    None => (m::AttendanceStatus::Absent, None),
                }
            };
            records.push(self.record(
                Entity::Attendance(m::Attendance {
                    student: student_id,
                    lesson: self.id(EntityKind::Lesson, &lesson),
                    status,
                    reason,
                    source_status: reason_code,
                    comment: a.comment.filter(|c| !c.trim().is_empty()),
                    entered_at: local_dt(a.created_at.as_deref()),
                }),
                format!("{lesson}:{student}"),
                &scope,
                None,
            ));
        }
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
        for subj in progress {
            let name = subj.subject_name.clone().unwrap_or_default();
            let finals: Vec<&api::ProgressPeriod> =
                subj.periods.iter().filter(|p| p.final_mark.as_deref().is_some_and(|v| !v.trim().is_empty())).collect();
            if finals.is_empty() {
                continue;
            }
            // No subject id in the report: the subject is the one of that name in the
            // schedule (or the school's list).
            let Some(subject) = info.subjects.get(&m::normalize_name(&name)).cloned() else {
                warnings.push(format!(
                    "reports/api/progress/json of pupil {student}: no subject is named «{name}»; its {} final mark(s) are left out",
                    finals.len()
                ));
                continue;
            };
            let subject_uuid = self.id(EntityKind::Subject, &subject);
            for p in finals {
                let value = p.final_mark.clone().unwrap_or_default();
                let dates = period_dates(p);
                let period_name = p.name.clone().unwrap_or_default();
                // The year's own row carries the year mark.
                if dates == Some((info.year.from, info.year.to)) {
                    records.push(self.record(
                        final_mark(value, None, subject_uuid),
                        format!("{student}:{subject}:year"),
                        &scope,
                        None,
                    ));
                    continue;
                }
                let period = match (&info.family, dates) {
                    (Some(_), Some((start, end))) => Some(family_period_id(&info.year_id, start, end)),
                    _ => info
                        .periods
                        .iter()
                        .find(|(_, _, s, e)| dates == Some((*s, *e)))
                        .or_else(|| info.periods.iter().find(|(_, n, _, _)| n.trim() == period_name.trim()))
                        .map(|(id, _, _, _)| id.clone()),
                };
                let Some(period) = period else {
                    warnings.push(format!(
                        "reports/api/progress/json of pupil {student}: no study period «{period_name}»; the final mark of «{name}» is left out"
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
        }
        Ok(Batch {
            skipped: Vec::new(),
            records,
            coverage: vec![Coverage {
                kinds: if finals {
                    vec![EntityKind::Attendance, EntityKind::FinalMark]
                } else {
                    vec![EntityKind::Attendance]
                },
                scope,
                range: None,
            }],
            warnings,
            requests: 1 + u32::from(finals),
        })
    }
}

/// A period's kind as its name says it («1 четверть», «2 триместр», «1 полугодие»): the
/// progress report gives no type.
fn period_kind_by_name(name: &str) -> m::PeriodKind {
    let lower = name.to_lowercase();
    if lower.contains("четверт") {
        m::PeriodKind::Quarter
    } else if lower.contains("триместр") {
        m::PeriodKind::Trimester
    } else if lower.contains("полугод") {
        m::PeriodKind::HalfYear
    } else {
        m::PeriodKind::Other
    }
}

/// A progress period's dates: `start_iso`/`end_iso`, else `start`/`end`.
fn period_dates(p: &api::ProgressPeriod) -> Option<(NaiveDate, NaiveDate)> {
    let start = p.start_iso.as_deref().or(p.start.as_deref()).and_then(parse_date)?;
    let end = p.end_iso.as_deref().or(p.end.as_deref()).and_then(parse_date)?;
    Some((start, end))
}

fn person(p: api::PersonItem, role: m::Role) -> m::Person {
    m::Person {
        last_name: p.last_name.unwrap_or_default(),
        first_name: p.first_name.unwrap_or_default(),
        middle_name: p.middle_name.filter(|s| !s.is_empty()),
        sex: match p.sex.map(|s| s.to_lowercase()).as_deref() {
            Some("male") | Some("m") | Some("м") => Some(m::Sex::Male),
            Some("female") | Some("f") | Some("ж") => Some(m::Sex::Female),
            _ => None,
        },
        birth_date: p.birth_date.as_deref().and_then(parse_date),
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

#[async_trait]
impl Connector for EposConnector {
    fn instance(&self) -> &str {
        &self.config.instance
    }

    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn client_stats(&self) -> Vec<std::sync::Arc<ejgate_sdk::client::ClientStats>> {
        vec![self.client.stats().clone()]
    }

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan, SourceError> {
        const SESSIONS: &str = "lms/api/sessions";
        let body = serde_json::json!({ "auth_token": self.config.token.expose_secret() });
        let session: api::Session = self.client.post_json("auth", SESSIONS, &body).await?.body;
        let profile = session
            .profiles
            .iter()
            .find(|p| p.is_default)
            .or(session.profiles.first())
            .cloned()
            .ok_or_else(|| self.malformed(SESSIONS, "the session has no profile".into()))?;
        self.session.set_profile(&profile.id.0);
        let kind = profile.kind.clone().unwrap_or_default().to_lowercase();
        let is_family = api::FAMILY_PROFILE_TYPES.contains(&kind.as_str());
        if is_family && !self.config.school_ids.is_empty() {
            return Err(SourceError {
                hint: Some(format!(
                    "a {kind} token reads only the children its profile sees; a whole school needs a staff profile of that school (an assumption: no public client shows one). Supply a staff user's `auth_token` in {}, or remove `schools` from this source to read the children only",
                    self.config.token_origin
                )),
                ..self.source_error(
                    SESSIONS,
                    ErrorKind::Config,
                    format!(
                        "the configuration asks for the whole school {} but the token is a {kind}'s (profile {}), not a staff profile",
                        self.config.school_ids.join(", "),
                        profile.id
                    ),
                )
            });
        }
        let school = sid(&profile.school_id);
        if !is_family {
            let Some(school) = &school else {
                return Err(self.malformed(SESSIONS, format!("profile {} ({kind}) has no school_id", profile.id)));
            };
            if !self.config.school_ids.is_empty() && !self.config.school_ids.contains(school) {
                return Err(self.source_error(
                    SESSIONS,
                    ErrorKind::Config,
                    format!(
                        "the token's staff profile is of school {school}, not of {} the configuration asks for",
                        self.config.school_ids.join(", ")
                    ),
                ));
            }
        }
        let years = self.client.get_json::<Vec<api::AcademicYear>>("data", "core/api/academic_years", &[]).await?;
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
        let mut requests = 0;
        let mut skipped = Vec::new();
        let mut info = SchoolInfo {
            key: school.clone().unwrap_or_default(),
            school: school.clone(),
            year_id: year.id.0.clone(),
            year_name: year.name.clone().unwrap_or_else(|| format!("{}/{}", from.format("%Y"), to.format("%Y"))),
            year: DateRange::new(from, to),
            classes: HashSet::new(),
            groups: HashSet::new(),
            subjects: HashMap::new(),
            subject_names: HashMap::new(),
            periods: Vec::new(),
            family: None,
            planned: Mutex::new(None),
            planned_students: Mutex::new(None),
        };
        let pupils: Vec<String> = if is_family {
            // A pupil's profile is his own student profile; a parent's lists the children
            // it sees with `core/api/student_profiles` (no school filter).
            let children: Vec<api::PersonItem> = if kind == "student" {
                vec![
                    self.client.get_json("data", &format!("core/api/student_profiles/{}", profile.id), &[]).await?.body,
                ]
            } else {
                self.paged("core/api/student_profiles", &[], 200, &mut requests, &mut skipped).await?
            };
            if children.is_empty() {
                return Err(self.source_error(
                    "core/api/student_profiles",
                    ErrorKind::Config,
                    format!("the {kind} profile {} sees no pupil: there is nothing to read", profile.id),
                ));
            }
            for c in &children {
                info.classes.extend(c.class_unit.as_ref().map(|u| u.id.0.clone()).or_else(|| sid(&c.class_unit_id)));
                info.groups.extend(c.groups.iter().map(|g| g.id.0.clone()));
            }
            info.key = format!("family-{}", profile.id);
            let family = Family {
                kind: kind.clone(),
                profile: profile.id.0.clone(),
                school_name: profile.school_shortname.clone(),
                children,
            };
            info.family = Some(family);
            // The subjects (their names join the progress report) are the ones of the
            // children's lessons over the year.
            for l in self.lessons(&info, from, to.min(today.max(from)), &mut requests, &mut skipped).await? {
                if let (Some(id), Some(name)) = (sid(&l.subject_id), l.subject_name) {
                    info.subjects.insert(m::normalize_name(&name), id.clone());
                    info.subject_names.insert(id, name);
                }
            }
            info.family.as_ref().map(|f| f.children.iter().map(|c| c.id.0.clone()).collect()).unwrap_or_default()
        } else {
            let school = school.clone().unwrap_or_default();
            let sq = [("school_id", school.clone())];
            let classes: Vec<api::ClassUnit> = self.client.get_json("data", "core/api/class_units", &sq).await?.body;
            let groups: Vec<api::Group> = self.client.get_json("data", "core/api/groups", &sq).await?.body;
            let subjects: Vec<api::Subject> = self.client.get_json("data", "core/api/subjects", &sq).await?.body;
            let periods: Vec<api::PeriodItem> = self
                .client
                .get_json(
                    "data",
                    "core/api/periods_schedules",
                    &[("school_id", school.clone()), ("academic_year_id", year.id.0.clone())],
                )
                .await?
                .body;
            let students: Vec<api::PersonItem> =
                self.paged("core/api/student_profiles", &sq, 200, &mut requests, &mut skipped).await?;
            info.classes = classes.iter().map(|c| c.id.0.clone()).collect();
            info.groups = groups.iter().map(|g| g.id.0.clone()).collect();
            for x in &subjects {
                if let Some(name) = &x.name {
                    info.subjects.insert(m::normalize_name(name), x.id.0.clone());
                    info.subject_names.insert(x.id.0.clone(), name.clone());
                }
            }
            info.periods = periods
                .iter()
                .filter(|p| !p.kind.as_deref().unwrap_or("").eq_ignore_ascii_case("vacation"))
                .filter_map(|p| {
                    Some((
                        p.id.0.clone(),
                        p.name.clone().unwrap_or_default(),
                        p.begin_date.as_deref().and_then(parse_date)?,
                        p.end_date.as_deref().and_then(parse_date)?,
                    ))
                })
                .collect();
            let ids = students.iter().map(|s| s.id.0.clone()).collect();
            info.planned = Mutex::new(Some(PlannedLists { periods, subjects, classes, groups }));
            info.planned_students = Mutex::new(Some(students));
            ids
        };
        if !skipped.is_empty() {
            // A pupil whose profile cannot be read cannot be planned: the run must not look
            // complete without him.
            return Err(self.malformed("core/api/student_profiles", skipped[0].to_string()));
        }
        let scope = format!("school:{}", info.key);
        let family = info.family.is_some();
        *self.info.lock().expect("school info") = Some(Arc::new(info));

        let mut chunks = if family {
            vec![Chunk {
                stream: "family".into(),
                scope: scope.clone(),
                params: serde_json::json!({}),
                cursor_after: None,
            }]
        } else {
            vec![
                Chunk {
                    stream: "school".into(),
                    scope: scope.clone(),
                    params: serde_json::json!({}),
                    cursor_after: None,
                },
                Chunk {
                    stream: "students".into(),
                    scope: scope.clone(),
                    params: serde_json::json!({}),
                    cursor_after: None,
                },
            ]
        };
        let year = DateRange::new(from, to);
        for stream in ["journal", "marks"] {
            // Marks are listed by the day they were created, and they are still created
            // after the last lesson: their stream runs on to the day the year's journal
            // closes (or today).
            let end = if stream == "marks" { year.entries_close() } else { to }.min(today);
            for piece in ctx.dated_pieces(stream, &scope, from, end, self.config.window_days, self.config.chunk_days) {
                chunks.push(Chunk {
                    stream: stream.into(),
                    scope: scope.clone(),
                    params: serde_json::to_value(RangeParams { from: piece.from, to: piece.to }).expect("params"),
                    cursor_after: Some(piece.to.format("%Y-%m-%d").to_string()),
                });
            }
        }
        // Final marks on the calendar's cadence (a family token's study periods come from
        // the progress report itself: its few pupils are read every run).
        let period_ends: Vec<NaiveDate> = self.info()?.periods.iter().map(|(_, _, _, end)| *end).collect();
        for st in pupils {
            let scope = format!("student:{st}");
            let finals = ctx.mode == SyncMode::Full
                || family
                || period_ends.is_empty()
                || ctx.cursor("student", &scope).is_none()
                || self.config.final_marks.due(&period_ends, today, &st);
            chunks.push(Chunk {
                stream: "student".into(),
                scope,
                params: serde_json::json!({ "student": st, "finals": finals }),
                // Kept once final marks were read: a pupil without one is read in full.
                cursor_after: finals.then(|| today.format("%Y-%m-%d").to_string()),
            });
        }
        Ok(Plan { source_now, chunks })
    }

    fn estimate_requests(&self, chunk: &Chunk) -> u64 {
        let classes = self.info().map(|i| i.classes.len().max(1) as u64).unwrap_or(1);
        let weeks = serde_json::from_value::<RangeParams>(chunk.params.clone())
            .map(|r| ((r.to - r.from).num_days().max(0) as u64 + 1).div_ceil(7))
            .unwrap_or(1);
        match chunk.stream.as_str() {
            // Its profile and the teachers' pages.
            "school" => 3,
            // Pages of about 30 lessons a class a week (100 a page) and their homework (200).
            "journal" => 2 + (weeks * classes * 30).div_ceil(100) + (weeks * classes * 30).div_ceil(200),
            // About 100 marks a class a week, 1,000 a page.
            "marks" => 1 + (weeks * classes * 100).div_ceil(1000),
            "student" => 1 + u64::from(chunk.params.get("finals").and_then(|v| v.as_bool()).unwrap_or(true)),
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
            "marks" => self.fetch_marks(&range()?).await,
            "student" => {
                let student = chunk.params.get("student").and_then(|v| v.as_str()).unwrap_or_default().to_string();
                // Chunks planned before the cadence carry no `finals`: read them.
                let finals = chunk.params.get("finals").and_then(|v| v.as_bool()).unwrap_or(true);
                self.fetch_student(&student, finals).await
            }
            other => Err(SourceError::config(&self.config.instance, SYSTEM, format!("unknown stream {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lost_session_is_read_from_the_body_with_401_and_400() {
        let c = EposErrors;
        let body = format!(r#"{{"code": 401, "message": "{}"}}"#, api::SESSION_ENDED).into_bytes();
        for status in [StatusCode::UNAUTHORIZED, StatusCode::BAD_REQUEST] {
            assert_eq!(c.classify(status, &body).unwrap().kind, ErrorKind::Unauthorized, "{status}");
        }
        let other = br#"{"code": 400, "message": "Invalid parameter created_at_from"}"#;
        assert_eq!(c.classify(StatusCode::BAD_REQUEST, other).unwrap().kind, ErrorKind::Client);
        assert_eq!(
            c.classify(StatusCode::TOO_MANY_REQUESTS, br#"{"code": 429, "message": "x"}"#).unwrap().kind,
            ErrorKind::RateLimited
        );
        assert_eq!(
            c.classify(StatusCode::BAD_GATEWAY, br#"{"code": 502, "message": "x"}"#).unwrap().kind,
            ErrorKind::Server
        );
        assert!(c.classify(StatusCode::BAD_GATEWAY, b"<html>").is_none());
    }

    #[test]
    fn a_base_url_is_read_with_or_without_its_slash_prefix_and_path_family() {
        for (pasted, root) in [
            ("https://school.permkrai.ru", "https://school.permkrai.ru/"),
            ("https://school.permkrai.ru/", "https://school.permkrai.ru/"),
            ("https://host/epos", "https://host/epos/"),
            ("https://host/epos/core/api/", "https://host/epos/"),
            ("https://host/jersey/api", "https://host/"),
            ("https://host/my-core/api", "https://host/my-core/api/"),
        ] {
            assert_eq!(api_root(pasted.parse().unwrap()).as_str(), root, "{pasted}");
        }
    }

    #[test]
    fn string_and_number_forms_read_alike() {
        let m: api::Mark = serde_json::from_str(
            r#"{"id": "17", "name": 5, "weight": "2", "is_point": "true", "point_date": "10.10.2025", "comment": "Молодец"}"#,
        )
        .unwrap();
        assert_eq!((m.name.as_deref(), m.weight, m.is_point), (Some("5"), Some(2.0), true));
        let p: api::ProgressPeriod =
            serde_json::from_str(r#"{"name": "1 четверть", "final_mark": 4, "avg_five": 4.5}"#).unwrap();
        assert_eq!((p.final_mark.as_deref(), p.avg_five.as_deref()), (Some("4"), Some("4.5")));
        assert_eq!(period_kind_by_name("2 четверть"), m::PeriodKind::Quarter);
    }

    #[test]
    fn the_current_year_wins_else_the_last() {
        let y = |id: &str, current: bool| api::AcademicYear {
            id: ejgate_sdk::time::SourceId(id.into()),
            name: None,
            begin_date: None,
            end_date: None,
            current_year: current,
        };
        assert_eq!(choose_year(&[y("1", false), y("2", true), y("3", false)], None).unwrap().id.0, "2");
        assert_eq!(choose_year(&[y("1", false), y("3", false)], None).unwrap().id.0, "3");
        assert!(choose_year(&[], None).is_err());
    }

    #[test]
    fn a_year_asked_for_is_found_by_its_dates_or_name_or_refused() {
        use ejgate_sdk::year::SchoolYear;
        let y = |id: &str, begin: Option<&str>, name: Option<&str>, current: bool| api::AcademicYear {
            id: ejgate_sdk::time::SourceId(id.into()),
            name: name.map(str::to_string),
            begin_date: begin.map(str::to_string),
            end_date: None,
            current_year: current,
        };
        let years = [
            y("10", Some("2023-09-01"), None, false),
            y("11", None, Some("2024/2025"), false),
            y("12", Some("2025-09-01"), Some("2025/2026"), true),
        ];
        assert_eq!(choose_year(&years, Some(SchoolYear::new(2023))).unwrap().id.0, "10");
        assert_eq!(choose_year(&years, Some(SchoolYear::new(2024))).unwrap().id.0, "11");
        assert_eq!(choose_year(&years, Some(SchoolYear::new(2025))).unwrap().id.0, "12");
        assert_eq!(choose_year(&years, Some(SchoolYear::new(2022))).unwrap_err(), "2023/2024, 2024/2025, 2025/2026");
    }

    #[test]
    fn built_in_tables_load() {
        let t = Tables::load(None).unwrap();
        // SOURCES.md: МЭШ's 1 «н» (no valid reason) and 2 «б» (illness).
        assert_eq!(t.attendance.get("1").unwrap().reason, Some(m::AbsenceReason::Unexcused));
        assert_eq!(t.attendance.get("2").unwrap().reason, Some(m::AbsenceReason::Illness));
        assert_eq!(t.attendance.get("4").unwrap().status, "late");
        assert_eq!(t.marks.get("five").unwrap().values.get("4+"), Some(&4.25));
        assert_eq!(t.work_types.get("Контрольная работа"), Some(&m::WorkKind::Control));
        assert_eq!(t.groups.get("elective"), Some(&m::GroupKind::Elective));
        assert_eq!(t.period_types.get("quarter"), Some(&m::PeriodKind::Quarter));
    }
}
