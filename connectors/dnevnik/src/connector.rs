//! The Dnevnik.ru connector: plans a run and turns the v2 API's answers into canonical
//! records. See API.md for every request it makes and README.md for what it reads.
//!
//! Chunks of a run (one store transaction each):
//! - `school` (per school): the school, its year, periods, holidays, classes and groups,
//!   subjects and staff;
//! - `roster` (per school): students and their memberships, with one POST
//!   `edu-groups/students` for all groups and one `persons` list per class;
//! - `final_marks` (per class);
//! - `journal` (per class or group and date range): lessons with their works and homework,
//!   marks entered in the range, and attendance. Full runs read the year in pieces of
//!   `chunk_days`; incremental runs re-read from the stream's cursor minus `window_days`
//!   up to the source's today. The cursor is the last day read.
//! - `late_marks` (per class or group, once the year's last lesson is past): the marks
//!   entered after it, up to the source's today or the day before the next year starts
//!   ([`DateRange::entries_close`]), re-read on every run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

use ejgate_sdk::client::{
    Classified, ClientConfig, ErrorClassifier, ErrorKind, HeaderToken, RetryPolicy, SourceClient, SourceError,
};
use ejgate_sdk::connector::{Batch, Chunk, Connector, Plan, PlanContext, SyncMode};
use ejgate_sdk::mapping::CodeTable;
use ejgate_sdk::model::{self as m, Coverage, DateRange, Entity, EntityKind, IdSpace, Record};
use ejgate_sdk::time::{parse_date, parse_local_datetime};

use crate::api;

/// The settings of one Dnevnik source instance.
#[derive(Debug, Clone)]
pub struct DnevnikConfig {
    /// The source instance name (`dnevnik`, `school-16`): part of every canonical id.
    pub instance: String,
    /// `https://api.dnevnik.ru/v2/`, or `https://api.school.mosreg.ru/v2/` for the old
    /// Школьный портал МО.
    pub base_url: Url,
    pub token: SecretString,
    /// Where the token came from, for the message that asks for a new one.
    pub token_origin: String,
    /// The source's request limit; the client stays under it.
    pub requests_per_second: Option<NonZeroU32>,
    /// How far back an incremental run re-reads dated lists.
    pub window_days: u32,
    /// Size of one journal chunk (one transaction) in days.
    pub chunk_days: u32,
    /// Schools to read; empty = every school the token sees.
    pub school_ids: Vec<String>,
    /// A directory with code tables replacing the built-in ones.
    pub mappings_dir: Option<PathBuf>,
    pub timeout: Duration,
    pub extra_root_certificates: Vec<PathBuf>,
    pub retry: RetryPolicy,
    /// How many chunks may be fetched at once.
    pub concurrency: usize,
}

impl DnevnikConfig {
    pub fn new(instance: &str, base_url: Url, token: SecretString) -> Self {
        DnevnikConfig {
            instance: instance.into(),
            base_url,
            token,
            token_origin: "the token file".into(),
            requests_per_second: None,
            window_days: 35,
            chunk_days: 31,
            school_ids: Vec::new(),
            mappings_dir: None,
            timeout: Duration::from_secs(60),
            extra_root_certificates: Vec::new(),
            retry: RetryPolicy::default(),
            concurrency: 4,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum UnitKind {
    Class,
    Subgroup,
    Elective,
    Extracurricular,
    AfterSchool,
    StudyGroup,
}

/// The code tables of `mappings/dnevnik/`.
struct Tables {
    attendance: CodeTable<AttendanceCode>,
    marks: CodeTable<MarkType>,
    work_types: CodeTable<m::WorkKind>,
    groups: CodeTable<UnitKind>,
    lesson_status: CodeTable<m::LessonStatus>,
}

impl Tables {
    fn load(dir: Option<&std::path::Path>) -> Result<Self, String> {
        let dir = dir.map(|d| d.join("dnevnik"));
        let dir = dir.as_deref();
        Ok(Tables {
            attendance: CodeTable::load(
                "dnevnik/attendance",
                dir,
                "attendance.toml",
                include_str!("../../../mappings/dnevnik/attendance.toml"),
            )
            .map_err(|e| e.to_string())?,
            marks: CodeTable::load(
                "dnevnik/marks",
                dir,
                "marks.toml",
                include_str!("../../../mappings/dnevnik/marks.toml"),
            )
            .map_err(|e| e.to_string())?,
            work_types: CodeTable::load(
                "dnevnik/work_types",
                dir,
                "work_types.toml",
                include_str!("../../../mappings/dnevnik/work_types.toml"),
            )
            .map_err(|e| e.to_string())?,
            groups: CodeTable::load(
                "dnevnik/groups",
                dir,
                "groups.toml",
                include_str!("../../../mappings/dnevnik/groups.toml"),
            )
            .map_err(|e| e.to_string())?,
            lesson_status: CodeTable::load(
                "dnevnik/lesson_status",
                dir,
                "lesson_status.toml",
                include_str!("../../../mappings/dnevnik/lesson_status.toml"),
            )
            .map_err(|e| e.to_string())?,
        })
    }
}

/// What planning learned of a school, reused by its chunks.
#[derive(Debug, Clone)]
struct SchoolInfo {
    profile: serde_json::Value,
    offset: FixedOffset,
    groups: Vec<GroupInfo>,
    period_group: Option<serde_json::Value>,
    year: Option<DateRange>,
    /// work-type id → (kind, weight)
    work_types: HashMap<String, (Option<String>, Option<f64>)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GroupInfo {
    id: String,
    parent: Option<String>,
    kind: Option<String>,
    journal_type: Option<String>,
    name: String,
    grade: Option<u8>,
    subject: Option<String>,
    is_class: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct JournalParams {
    school: String,
    group: String,
    is_class: bool,
    from: NaiveDate,
    to: NaiveDate,
}

/// Classifies Dnevnik's `{type, description}` error bodies; both families of spellings.
pub struct DnevnikErrors;

impl ErrorClassifier for DnevnikErrors {
    fn classify(&self, status: StatusCode, body: &[u8]) -> Option<Classified> {
        let err: api::ApiError = serde_json::from_slice(body).ok()?;
        let kind_text = err.kind?;
        let key = kind_text.to_ascii_lowercase();
        let key = key.strip_prefix("api").unwrap_or(&key);
        let key = key.strip_prefix("authorization").unwrap_or(key);
        let kind = match key {
            "requestlimit" => ErrorKind::RateLimited,
            "invalidtoken" | "tokenrequired" | "outofscope" | "notowner" | "ownerforbidden" | "systemforbidden"
            | "failed" => ErrorKind::Unauthorized,
            "servererror" => ErrorKind::Server,
            "httpsrequired" => ErrorKind::Config,
            _ if status.is_server_error() => ErrorKind::Server,
            _ => ErrorKind::Client,
        };
        let description = err.description.unwrap_or_default();
        Some(Classified { kind, message: format!("{kind_text}: {description}") })
    }
}

/// The Dnevnik.ru connector.
pub struct DnevnikConnector {
    config: DnevnikConfig,
    client: SourceClient,
    ids: IdSpace,
    tables: Tables,
    schools: Mutex<HashMap<String, Arc<SchoolInfo>>>,
}

impl DnevnikConnector {
    /// A run asked for a school year reads it only if it is the one the school's classes are
    /// in: `schools/{s}/edu-groups` lists the classes of one year (the current one), and no
    /// public client shows a parameter asking for another, so a past year is refused.
    fn check_year(
        &self,
        wanted: Option<ejgate_sdk::year::SchoolYear>,
        school: &str,
        year: Option<DateRange>,
    ) -> Result<(), SourceError> {
        use ejgate_sdk::year::SchoolYear;
        let Some(wanted) = wanted else { return Ok(()) };
        if year.is_some_and(|y| wanted.is(&y)) {
            return Ok(());
        }
        let served = year.map_or("no year (its classes have no reporting periods)".to_string(), |y| {
            SchoolYear::containing(y.from).to_string()
        });
        Err(wanted.not_served(
            &self.config.instance,
            "dnevnik",
            &served,
            &format!("school {school}: the API lists the classes of the current year only"),
        ))
    }

    pub fn new(config: DnevnikConfig) -> Result<Self, SourceError> {
        let tables = Tables::load(config.mappings_dir.as_deref())
            .map_err(|e| SourceError::config(&config.instance, "dnevnik", e))?;
        let mut client_config = ClientConfig::new(&config.instance, "dnevnik", config.base_url.clone());
        client_config.timeout = config.timeout;
        client_config.extra_root_certificates = config.extra_root_certificates.clone();
        client_config.default_rate = config.requests_per_second;
        client_config.retry = config.retry.clone();
        let hint = format!(
            "Dnevnik refused the token of source «{}». Logins go through Госуслуги: sign in as the school administrator, obtain a new token, put it in {} and run the sync again; nothing already synced is lost",
            config.instance, config.token_origin
        );
        let auth = Arc::new(HeaderToken::new("access-token", config.token.clone(), hint));
        let client = SourceClient::new(client_config, auth, Arc::new(DnevnikErrors))?;
        Ok(DnevnikConnector {
            ids: IdSpace::new(config.instance.clone()),
            config,
            client,
            tables,
            schools: Mutex::new(HashMap::new()),
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

    fn school(&self, school: &str) -> Result<Arc<SchoolInfo>, SourceError> {
        self.schools.lock().expect("school cache").get(school).cloned().ok_or_else(|| {
            SourceError::config(
                &self.config.instance,
                "dnevnik",
                format!("school {school} was not planned in this run"),
            )
        })
    }

    fn unit_id(&self, group: &str, is_class: bool) -> uuid::Uuid {
        self.id(if is_class { EntityKind::Class } else { EntityKind::Group }, group)
    }

    async fn discover_school(&self, school: &str) -> Result<(SchoolInfo, u32), SourceError> {
        let profile =
            self.client.get_json::<serde_json::Value>("reference", &format!("schools/{school}"), &[]).await?.body;
        let parsed: api::SchoolProfile = serde_json::from_value(profile.clone()).map_err(|e| {
            SourceError::config(
                &self.config.instance,
                "dnevnik",
                format!("GET schools/{school}: unexpected answer: {e}"),
            )
        })?;
        let offset = FixedOffset::east_opt(parsed.time_zone.unwrap_or(3) * 3600)
            .unwrap_or(FixedOffset::east_opt(3 * 3600).unwrap());
        let groups: Vec<api::EduGroup> =
            self.client.get_json("reference", &format!("schools/{school}/edu-groups"), &[]).await?.body;
        let mut warnings = Vec::new();
        let groups: Vec<GroupInfo> = groups
            .iter()
            .filter_map(|g| {
                let id = g.id()?;
                let key = format!(
                    "{}/{}",
                    g.kind.as_deref().unwrap_or("Group"),
                    g.journaltype.as_deref().unwrap_or("Regular")
                );
                let kind = self.tables.groups.lookup(&key, &mut warnings).copied();
                let is_class = g.parent().is_none() && matches!(kind, Some(UnitKind::Class) | None);
                Some(GroupInfo {
                    id,
                    parent: g.parent(),
                    kind: g.kind.clone(),
                    journal_type: g.journaltype.clone(),
                    name: g.name.clone().unwrap_or_default(),
                    grade: g.parallel,
                    subject: if g.subjects.len() == 1 { Some(g.subjects[0].0.clone()) } else { None },
                    is_class,
                })
            })
            .collect();
        let work_types: Vec<api::WorkType> =
            self.client.get_json("reference", &format!("work-types/{school}"), &[]).await?.body;
        let work_types =
            work_types.into_iter().filter_map(|w| Some((api::pick(&w.id_str, &w.id)?, (w.kind, w.weight)))).collect();
        let mut requests = 4;
        let (period_group, year) = match groups.iter().find(|g| g.is_class) {
            Some(class) => {
                requests += 1;
                let value = self
                    .client
                    .get_json::<serde_json::Value>(
                        "reference",
                        &format!("edu-groups/{}/reporting-period-group", class.id),
                        &[],
                    )
                    .await?
                    .body;
                let parsed: api::PeriodGroup = serde_json::from_value(value.clone()).map_err(|e| {
                    SourceError::config(
                        &self.config.instance,
                        "dnevnik",
                        format!("GET edu-groups/{}/reporting-period-group: unexpected answer: {e}", class.id),
                    )
                })?;
                let starts = parsed.reporting_periods.iter().filter_map(|p| p.start.as_deref().and_then(parse_date));
                let ends = parsed.reporting_periods.iter().filter_map(|p| p.finish.as_deref().and_then(parse_date));
                let year = match (starts.min(), ends.max()) {
                    (Some(from), Some(to)) => Some(DateRange::new(from, to)),
                    _ => None,
                };
                (Some(value), year)
            }
            None => (None, None),
        };
        Ok((SchoolInfo { profile, offset, groups, period_group, year, work_types }, requests))
    }

    fn school_batch(
        &self,
        school: &str,
        info: &SchoolInfo,
        subjects: Vec<api::SubjectItem>,
        teachers: Vec<api::Teacher>,
    ) -> Batch {
        let scope = format!("school:{school}");
        let staff_scope = format!("school:{school}:staff");
        let mut warnings = Vec::new();
        let mut records = Vec::new();
        let org_id = self.id(EntityKind::Organization, school);
        let profile: api::SchoolProfile = serde_json::from_value(info.profile.clone()).unwrap_or(api::SchoolProfile {
            id: None,
            id_str: None,
            name: None,
            full_name: None,
            city: None,
            municipality: None,
            time_zone: None,
        });
        records.push(self.record(
            Entity::Organization(m::Organization {
                kind: m::OrganizationKind::School,
                name: profile.name.clone().unwrap_or_default(),
                full_name: profile.full_name.clone(),
                municipality: profile.municipality.clone().or(profile.city.clone()),
                time_zone: Some(iana_zone(info.offset).to_string()),
                regulation_profile: None,
            }),
            school.to_string(),
            &scope,
            None,
        ));
        let mut year_id = None;
        if let Some(value) = &info.period_group {
            if let Ok(group) = serde_json::from_value::<api::PeriodGroup>(value.clone()) {
                if let (Some(gid), Some(year)) = (api::pick(&group.id_str, &group.id), info.year) {
                    let name = format!("{}/{}", year.from.format("%Y"), year.to.format("%Y"));
                    year_id = Some(self.id(EntityKind::AcademicYear, &gid));
                    records.push(self.record(
                        Entity::AcademicYear(m::AcademicYear {
                            organization: Some(org_id),
                            name,
                            start: year.from,
                            end: year.to,
                        }),
                        gid,
                        &scope,
                        None,
                    ));
                }
                for p in &group.reporting_periods {
                    let (Some(pid), Some(start), Some(end)) = (
                        api::pick(&p.id_str, &p.id),
                        p.start.as_deref().and_then(parse_date),
                        p.finish.as_deref().and_then(parse_date),
                    ) else {
                        warnings.push(format!("school {school}: a reporting period without id or dates was skipped"));
                        continue;
                    };
                    let kind = match p.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
                        Some("quarter") => m::PeriodKind::Quarter,
                        Some("trimester") => m::PeriodKind::Trimester,
                        Some("semester") | Some("halfyear") => m::PeriodKind::HalfYear,
                        Some("year") => m::PeriodKind::Year,
                        other => {
                            warnings.push(format!(
                                "school {school}: unknown reporting period type «{}»",
                                other.unwrap_or("")
                            ));
                            m::PeriodKind::Other
                        }
                    };
                    records.push(self.record(
                        Entity::StudyPeriod(m::StudyPeriod {
                            organization: Some(org_id),
                            academic_year: year_id,
                            kind,
                            number: p.number.unwrap_or(0),
                            name: p.name.clone().unwrap_or_default(),
                            start,
                            end,
                        }),
                        pid,
                        &scope,
                        None,
                    ));
                }
                for h in &group.holidays {
                    let (Some(hid), Some(start), Some(end)) = (
                        api::pick(&h.id_str, &h.id),
                        h.date_start.as_deref().and_then(parse_date),
                        h.date_finish.as_deref().and_then(parse_date),
                    ) else {
                        continue;
                    };
                    records.push(self.record(
                        Entity::Holiday(m::Holiday {
                            organization: Some(org_id),
                            name: h.name.clone().unwrap_or_default(),
                            start,
                            end,
                        }),
                        hid,
                        &scope,
                        None,
                    ));
                }
            }
        }
        for g in &info.groups {
            let key =
                format!("{}/{}", g.kind.as_deref().unwrap_or("Group"), g.journal_type.as_deref().unwrap_or("Regular"));
            let kind = self.tables.groups.get(&key).copied();
            if g.is_class {
                records.push(self.record(
                    Entity::Class(m::Class {
                        organization: Some(org_id),
                        academic_year: year_id,
                        name: g.name.clone(),
                        grade: g.grade,
                        homeroom_teacher: None,
                    }),
                    g.id.clone(),
                    &scope,
                    None,
                ));
            } else {
                let group_kind = match kind {
                    Some(UnitKind::Elective) => m::GroupKind::Elective,
                    Some(UnitKind::Extracurricular) => m::GroupKind::Extracurricular,
                    Some(UnitKind::AfterSchool) => m::GroupKind::AfterSchool,
                    Some(UnitKind::StudyGroup) | Some(UnitKind::Class) => m::GroupKind::StudyGroup,
                    Some(UnitKind::Subgroup) | None => m::GroupKind::Subgroup,
                };
                records.push(self.record(
                    Entity::Group(m::Group {
                        organization: Some(org_id),
                        class: g.parent.as_deref().map(|p| self.id(EntityKind::Class, p)),
                        kind: group_kind,
                        name: g.name.clone(),
                        subject: g.subject.as_deref().map(|s| self.id(EntityKind::Subject, s)),
                    }),
                    g.id.clone(),
                    &scope,
                    None,
                ));
            }
        }
        for s in subjects {
            let Some(sid) = api::pick(&s.id_str, &s.id) else { continue };
            let name = s.name.unwrap_or_default();
            records.push(self.record(
                Entity::Subject(m::Subject {
                    organization: Some(org_id),
                    normalized_name: m::normalize_name(&name),
                    name,
                    knowledge_area: s.knowledge_area,
                }),
                sid,
                &scope,
                None,
            ));
        }
        for t in teachers {
            let Some(tid) = api::pick(&t.id_str, &t.id) else { continue };
            records.push(self.record(
                Entity::Person(person(t.last_name, t.first_name, t.middle_name, t.sex.as_deref(), m::Role::Staff)),
                tid,
                &staff_scope,
                None,
            ));
        }
        let coverage = vec![
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
        ];
        Batch { skipped: Vec::new(), records, coverage, warnings, requests: 0 }
    }

    async fn fetch_school(&self, school: &str) -> Result<Batch, SourceError> {
        let info = self.school(school)?;
        let subjects = self.client.get_json("reference", &format!("schools/{school}/subjects"), &[]).await?.body;
        let teachers = self.client.get_json("reference", &format!("schools/{school}/teachers"), &[]).await?.body;
        let mut batch = self.school_batch(school, &info, subjects, teachers);
        batch.requests = 2;
        Ok(batch)
    }

    async fn fetch_roster(&self, school: &str) -> Result<Batch, SourceError> {
        let info = self.school(school)?;
        let scope_people = format!("school:{school}:students");
        let scope_roster = format!("school:{school}:roster");
        let group_ids: Vec<serde_json::Value> = info
            .groups
            .iter()
            .map(|g| {
                g.id.parse::<u64>()
                    .map(serde_json::Value::from)
                    .unwrap_or_else(|_| serde_json::Value::from(g.id.clone()))
            })
            .collect();
        let memberships: Vec<api::GroupStudents> =
            self.client.post_json("reference", "edu-groups/students", &group_ids).await?.body;
        let mut requests = 1;
        let mut records = Vec::new();
        let mut seen_people = HashSet::new();
        for class in info.groups.iter().filter(|g| g.is_class) {
            let people: Vec<api::PersonItem> = self
                .client
                .get_json(
                    "reference",
                    &format!("edu-groups/{}/persons", class.id),
                    &[("includeArchive", "true".into())],
                )
                .await?
                .body;
            requests += 1;
            for p in people {
                let Some(pid) = api::pick(&p.id_str, &p.id) else { continue };
                if seen_people.insert(pid.clone()) {
                    records.push(self.record(
                        Entity::Person(person(
                            p.last_name,
                            p.first_name,
                            p.middle_name,
                            p.sex.as_deref(),
                            m::Role::Student,
                        )),
                        pid,
                        &scope_people,
                        None,
                    ));
                }
            }
        }
        let classes: HashMap<&str, bool> = info.groups.iter().map(|g| (g.id.as_str(), g.is_class)).collect();
        let mut warnings = Vec::new();
        for membership in memberships {
            let group = membership.group.0;
            let Some(&is_class) = classes.get(group.as_str()) else {
                warnings.push(format!(
                    "edu-groups/students named group {group}, which schools/{school}/edu-groups does not list"
                ));
                continue;
            };
            for s in membership.students {
                let status = match s.membershipstatus.as_deref() {
                    Some(st) if st.eq_ignore_ascii_case("archive") || st.eq_ignore_ascii_case("archived") => {
                        m::EnrollmentStatus::Archived
                    }
                    _ => m::EnrollmentStatus::Active,
                };
                records.push(self.record(
                    Entity::Enrollment(m::Enrollment {
                        student: self.id(EntityKind::Person, &s.person.0),
                        unit: self.unit_id(&group, is_class),
                        status,
                        from: None,
                        to: None,
                        order: None,
                    }),
                    format!("{group}:{}", s.person.0),
                    &scope_roster,
                    None,
                ));
            }
        }
        Ok(Batch {
            skipped: Vec::new(),
            records,
            coverage: vec![
                Coverage { kinds: vec![EntityKind::Person], scope: scope_people, range: None },
                Coverage { kinds: vec![EntityKind::Enrollment], scope: scope_roster, range: None },
            ],
            warnings,
            requests,
        })
    }

    async fn fetch_final_marks(&self, group: &str) -> Result<Batch, SourceError> {
        let scope = format!("group:{group}");
        let rows: Vec<api::FinalMarksOfPerson> =
            self.client.get_json("data", &format!("edu-groups/{group}/final-marks"), &[]).await?.body;
        let mut warnings = Vec::new();
        let mut records = Vec::new();
        for row in rows {
            let Some(person) = api::pick(&row.person_str, &row.person) else { continue };
            let period = api::pick(&row.reporting_period_str, &row.reporting_period);
            for s in row.per_subject {
                let (Some(subject), Some(mark)) = (api::pick(&s.subject_str, &s.subject), s.final_mark) else {
                    continue;
                };
                let value = mark.value.unwrap_or_default();
                let (numeric, special) =
                    match mark.kind.as_deref().and_then(|k| self.tables.marks.lookup(k, &mut warnings)) {
                        Some(t) => (
                            t.values.get(&value.to_lowercase()).or(t.values.get(&value)).copied(),
                            t.special.get(&value.to_lowercase()).copied(),
                        ),
                        None => (None, None),
                    };
                let source_id = format!("{person}:{subject}:{}", period.as_deref().unwrap_or("year"));
                records.push(self.record(
                    Entity::FinalMark(m::FinalMark {
                        student: self.id(EntityKind::Person, &person),
                        subject: self.id(EntityKind::Subject, &subject),
                        period: period.as_deref().map(|p| self.id(EntityKind::StudyPeriod, p)),
                        value,
                        numeric: if special.is_some() { None } else { numeric },
                        special,
                    }),
                    source_id,
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

    async fn fetch_journal(&self, p: &JournalParams) -> Result<Batch, SourceError> {
        let info = self.school(&p.school)?;
        let scope = format!("group:{}", p.group);
        let (from, to) = (p.from.format("%Y-%m-%d").to_string(), p.to.format("%Y-%m-%d").to_string());
        let lessons: Vec<api::Lesson> =
            self.client.get_json("data", &format!("edu-groups/{}/lessons/{from}/{to}", p.group), &[]).await?.body;
        let marks: Vec<api::Mark> =
            self.client.get_json("data", &format!("edu-groups/{}/marks/{from}/{to}", p.group), &[]).await?.body;
        let entries: Vec<api::LogEntry> = self
            .client
            .get_json(
                "data",
                &format!("lesson-log-entries/group/{}", p.group),
                &[("from", from.clone()), ("to", to.clone())],
            )
            .await?
            .body;
        let unit = self.unit_id(&p.group, p.is_class);
        let mut warnings = Vec::new();
        let mut records = Vec::with_capacity(lessons.len() * 3 + marks.len() + entries.len());
        let mut lesson_dates: HashMap<String, NaiveDate> = HashMap::with_capacity(lessons.len());
        for l in lessons {
            let Some(lid) = api::pick(&l.id_str, &l.id) else { continue };
            let Some(date) = l.date.as_deref().and_then(parse_date) else {
                warnings.push(format!("lesson {lid}: no readable date; skipped"));
                continue;
            };
            lesson_dates.insert(lid.clone(), date);
            let teachers: Vec<String> = if l.teachers_str.is_empty() {
                l.teachers.iter().map(|t| t.0.clone()).collect()
            } else {
                l.teachers_str.clone()
            };
            let status = match l.status.as_deref() {
                Some(s) => self.tables.lesson_status.lookup(s, &mut warnings).copied().unwrap_or(m::LessonStatus::Held),
                None => m::LessonStatus::Held,
            };
            let lesson_id = self.id(EntityKind::Lesson, &lid);
            records.push(
                self.record(
                    Entity::Lesson(m::Lesson {
                        section: None,
                        unit,
                        subject: l
                            .subject
                            .as_ref()
                            .and_then(|s| api::pick(&s.id_str, &s.id))
                            .map(|s| self.id(EntityKind::Subject, &s)),
                        date,
                        number: l.number,
                        teacher: teachers.first().map(|t| self.id(EntityKind::Person, t)),
                        substitute: teachers.get(1).map(|t| self.id(EntityKind::Person, t)),
                        topic: l.title.filter(|t| !t.trim().is_empty()),
                        status,
                    }),
                    lid,
                    &scope,
                    Some(date),
                ),
            );
            for w in l.works {
                let Some(wid) = api::pick(&w.id_str, &w.id) else { continue };
                let work_type = w.work_type.as_ref().and_then(|t| info.work_types.get(&t.0));
                if w.kind.as_deref() == Some("Homework") {
                    records.push(self.record(
                        Entity::Homework(m::Homework {
                            attachments: Vec::new(),
                            lesson: Some(lesson_id),
                            text: w.text.unwrap_or_default(),
                            entered_at: w.sent_date.as_deref().and_then(|s| parse_local_datetime(s, info.offset)),
                            due_date: w.target_date.as_deref().and_then(parse_date),
                        }),
                        wid,
                        &scope,
                        Some(date),
                    ));
                } else {
                    let source_type =
                        w.kind.clone().or_else(|| work_type.and_then(|t| t.0.clone())).unwrap_or_default();
                    let kind = self
                        .tables
                        .work_types
                        .lookup(&source_type, &mut warnings)
                        .copied()
                        .unwrap_or(m::WorkKind::Other);
                    records.push(self.record(
                        Entity::Work(m::Work {
                            lesson: Some(lesson_id),
                            kind,
                            source_type,
                            title: w.text.filter(|t| !t.trim().is_empty()),
                            weight: work_type.and_then(|t| t.1),
                        }),
                        wid,
                        &scope,
                        Some(date),
                    ));
                }
            }
        }
        records.extend(self.mark_records(marks, &info, &scope, &mut warnings));
        for e in entries {
            let (Some(lesson), Some(person)) =
                (api::pick(&e.lesson_str, &e.lesson), api::pick(&e.person_str, &e.person))
            else {
                continue;
            };
            let status_code = e.status.clone().unwrap_or_default();
            let Some(code) = self.tables.attendance.lookup(&status_code, &mut warnings) else {
                // Unknown status: kept as an absence of unknown reason, never dropped.
                records.push(self.attendance_record(
                    &lesson,
                    &person,
                    m::AttendanceStatus::Absent,
                    None,
                    &e,
                    &lesson_dates,
                    &scope,
                    &info,
                    &mut warnings,
                ));
                continue;
            };
            let status = match code.status.as_str() {
                "present" => continue,
                "late" => m::AttendanceStatus::Late,
                _ => m::AttendanceStatus::Absent,
            };
            records.push(self.attendance_record(
                &lesson,
                &person,
                status,
                code.reason,
                &e,
                &lesson_dates,
                &scope,
                &info,
                &mut warnings,
            ));
        }
        let range = Some(DateRange::new(p.from, p.to));
        Ok(Batch {
            skipped: Vec::new(),
            records,
            coverage: vec![Coverage {
                kinds: vec![
                    EntityKind::Lesson,
                    EntityKind::Work,
                    EntityKind::Homework,
                    EntityKind::Mark,
                    EntityKind::Attendance,
                ],
                scope,
                range,
            }],
            warnings,
            requests: 3,
        })
    }

    /// Canonical marks of a `marks/{from}/{to}` answer.
    fn mark_records(
        &self,
        marks: Vec<api::Mark>,
        info: &SchoolInfo,
        scope: &str,
        warnings: &mut Vec<String>,
    ) -> Vec<Record> {
        let mut out = Vec::with_capacity(marks.len());
        for mk in marks {
            let (Some(mid), Some(person)) = (api::pick(&mk.id_str, &mk.id), api::pick(&mk.person_str, &mk.person))
            else {
                continue;
            };
            let entered_at = mk.date.as_deref().and_then(|d| parse_local_datetime(d, info.offset));
            let value = mk.value.clone().unwrap_or_default();
            let table = mk.kind.as_deref().and_then(|k| self.tables.marks.lookup(k, warnings));
            let numeric = table.and_then(|t| t.values.get(&value.to_lowercase()).or(t.values.get(&value)).copied());
            if table.is_some() && numeric.is_none() {
                warnings.push(format!(
                    "mark {mid}: value «{value}» is not on the {} scale",
                    mk.kind.as_deref().unwrap_or("?")
                ));
            }
            let weight = mk.work_type.as_ref().and_then(|t| info.work_types.get(&t.0)).and_then(|t| t.1);
            out.push(self.record(
                Entity::Mark(m::Mark {
                    comment: None,
                    is_point: false,
                    point_date: None,
                    student: self.id(EntityKind::Person, &person),
                    lesson: api::pick(&mk.lesson_str, &mk.lesson).map(|l| self.id(EntityKind::Lesson, &l)),
                    work: api::pick(&mk.work_str, &mk.work).map(|w| self.id(EntityKind::Work, &w)),
                    subject: None,
                    value,
                    numeric,
                    scale: table.map(|t| t.scale).unwrap_or(m::MarkScale::Other),
                    weight,
                    entered_at,
                    entered_by: None,
                }),
                mid,
                scope,
                entered_at.map(|d| d.date()),
            ));
        }
        out
    }

    /// Marks entered after the year's last lesson (`late_marks`, per class or group): the
    /// marks list only, for the days after the year's end up to the source's today.
    async fn fetch_late_marks(&self, p: &JournalParams) -> Result<Batch, SourceError> {
        let info = self.school(&p.school)?;
        let scope = format!("group:{}", p.group);
        let (from, to) = (p.from.format("%Y-%m-%d"), p.to.format("%Y-%m-%d"));
        let marks: Vec<api::Mark> =
            self.client.get_json("data", &format!("edu-groups/{}/marks/{from}/{to}", p.group), &[]).await?.body;
        let mut warnings = Vec::new();
        let records = self.mark_records(marks, &info, &scope, &mut warnings);
        Ok(Batch {
            skipped: Vec::new(),
            records,
            coverage: vec![Coverage {
                kinds: vec![EntityKind::Mark],
                scope,
                range: Some(DateRange::new(p.from, p.to)),
            }],
            warnings,
            requests: 1,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn attendance_record(
        &self,
        lesson: &str,
        person: &str,
        status: m::AttendanceStatus,
        reason: Option<m::AbsenceReason>,
        e: &api::LogEntry,
        lesson_dates: &HashMap<String, NaiveDate>,
        scope: &str,
        info: &SchoolInfo,
        warnings: &mut Vec<String>,
    ) -> Record {
        let date = lesson_dates.get(lesson).copied();
        if date.is_none() {
            warnings.push(format!(
                "attendance of lesson {lesson}: the lesson is not in the same range; kept without a date"
            ));
        }
        self.record(
            Entity::Attendance(m::Attendance {
                student: self.id(EntityKind::Person, person),
                lesson: self.id(EntityKind::Lesson, lesson),
                status,
                reason,
                source_status: e.status.clone().unwrap_or_default(),
                comment: e.comment.clone().filter(|c| !c.trim().is_empty()),
                entered_at: e.created_date.as_deref().and_then(|d| parse_local_datetime(d, info.offset)),
            }),
            format!("{lesson}:{person}"),
            scope,
            date,
        )
    }
}

fn person(
    last: Option<String>,
    first: Option<String>,
    middle: Option<String>,
    sex: Option<&str>,
    role: m::Role,
) -> m::Person {
    m::Person {
        last_name: last.unwrap_or_default(),
        first_name: first.unwrap_or_default(),
        middle_name: middle.filter(|s| !s.is_empty()),
        sex: match sex.map(str::to_ascii_lowercase).as_deref() {
            Some("male") => Some(m::Sex::Male),
            Some("female") => Some(m::Sex::Female),
            _ => None,
        },
        birth_date: None,
        roles: vec![role],
    }
}

/// Dnevnik gives a school's time zone as whole hours from UTC; this is the IANA zone of
/// Russia with that offset (no Russian zone observes daylight saving since 2014).
pub fn iana_zone(offset: FixedOffset) -> &'static str {
    match offset.local_minus_utc() / 3600 {
        2 => "Europe/Kaliningrad",
        3 => "Europe/Moscow",
        4 => "Europe/Samara",
        5 => "Asia/Yekaterinburg",
        6 => "Asia/Omsk",
        7 => "Asia/Krasnoyarsk",
        8 => "Asia/Irkutsk",
        9 => "Asia/Yakutsk",
        10 => "Asia/Vladivostok",
        11 => "Asia/Magadan",
        12 => "Asia/Kamchatka",
        _ => "Etc/UTC",
    }
}

#[async_trait]
impl Connector for DnevnikConnector {
    fn instance(&self) -> &str {
        &self.config.instance
    }

    fn system(&self) -> &'static str {
        "dnevnik"
    }

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan, SourceError> {
        let context = self.client.get_json::<api::Context>("reference", "users/me/context", &[]).await?;
        let now_utc: Option<NaiveDateTime> = context.date.map(|d: SystemTime| DateTime::<Utc>::from(d).naive_utc());
        let mut school_ids: Vec<String> =
            context.body.schools.iter().filter_map(|s| api::pick(&s.id_str, &s.id)).collect();
        if school_ids.is_empty() {
            school_ids = context.body.school_ids.iter().map(|s| s.0.clone()).collect();
        }
        if !self.config.school_ids.is_empty() {
            let missing: Vec<&String> = self.config.school_ids.iter().filter(|s| !school_ids.contains(s)).collect();
            if !missing.is_empty() {
                return Err(SourceError::config(
                    &self.config.instance,
                    "dnevnik",
                    format!("the token does not see the configured school(s) {missing:?}; it sees {school_ids:?}"),
                ));
            }
            school_ids.retain(|s| self.config.school_ids.contains(s));
        }
        let mut chunks = Vec::new();
        let mut source_now = None;
        for school in school_ids {
            let (info, _) = self.discover_school(&school).await?;
            self.check_year(ctx.year, &school, info.year)?;
            let today = now_utc
                .map(|n| (n + info.offset).date())
                .unwrap_or_else(|| (Utc::now().naive_utc() + info.offset).date());
            source_now = source_now.or(now_utc.map(|n| n + info.offset));
            chunks.push(Chunk {
                stream: "school".into(),
                scope: format!("school:{school}"),
                params: serde_json::json!({"school": school}),
                cursor_after: None,
            });
            chunks.push(Chunk {
                stream: "roster".into(),
                scope: format!("school:{school}"),
                params: serde_json::json!({"school": school}),
                cursor_after: None,
            });
            for class in info.groups.iter().filter(|g| g.is_class) {
                chunks.push(Chunk {
                    stream: "final_marks".into(),
                    scope: format!("group:{}", class.id),
                    params: serde_json::json!({"school": school, "group": class.id}),
                    cursor_after: None,
                });
            }
            if let Some(year) = info.year {
                let end = year.to.min(today);
                for g in &info.groups {
                    let scope = format!("group:{}", g.id);
                    let from = match (ctx.mode, ctx.cursor("journal", &scope).and_then(parse_date)) {
                        (SyncMode::Incremental, Some(cursor)) => {
                            let back = cursor.min(end) - chrono::Days::new(self.config.window_days as u64);
                            back.max(year.from)
                        }
                        _ => year.from,
                    };
                    let chunk = |stream: &str, range: DateRange, cursor_after: Option<String>| Chunk {
                        stream: stream.into(),
                        scope: scope.clone(),
                        params: serde_json::to_value(JournalParams {
                            school: school.clone(),
                            group: g.id.clone(),
                            is_class: g.is_class,
                            from: range.from,
                            to: range.to,
                        })
                        .expect("params serialize"),
                        cursor_after,
                    };
                    for piece in DateRange::new(from, end).pieces(self.config.chunk_days) {
                        chunks.push(chunk("journal", piece, Some(piece.to.format("%Y-%m-%d").to_string())));
                    }
                    // Marks are listed by the day they were entered, and they are still
                    // entered after the last lesson: read those days too, every run (one
                    // request per group; no cursor, the range is short).
                    let late = DateRange::new(year.to + chrono::Days::new(1), year.entries_close().min(today));
                    if late.from <= late.to {
                        chunks.push(chunk("late_marks", late, None));
                    }
                }
            }
            self.schools.lock().expect("school cache").insert(school.clone(), Arc::new(info));
        }
        Ok(Plan { source_now, chunks })
    }

    async fn fetch(&self, chunk: &Chunk) -> Result<Batch, SourceError> {
        let str_param = |name: &str| chunk.params.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let journal_params = || {
            serde_json::from_value::<JournalParams>(chunk.params.clone()).map_err(|e| {
                SourceError::config(&self.config.instance, "dnevnik", format!("bad {} chunk: {e}", chunk.stream))
            })
        };
        match chunk.stream.as_str() {
            "school" => self.fetch_school(&str_param("school")).await,
            "roster" => self.fetch_roster(&str_param("school")).await,
            "final_marks" => self.fetch_final_marks(&str_param("group")).await,
            "journal" => self.fetch_journal(&journal_params()?).await,
            "late_marks" => self.fetch_late_marks(&journal_params()?).await,
            other => Err(SourceError::config(&self.config.instance, "dnevnik", format!("unknown stream {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_of_error_types_classify_alike() {
        let c = DnevnikErrors;
        let body = |t: &str| format!(r#"{{"type":"{t}","description":"x"}}"#).into_bytes();
        for t in ["apiRequestLimit", "requestLimit"] {
            assert_eq!(c.classify(StatusCode::from_u16(433).unwrap(), &body(t)).unwrap().kind, ErrorKind::RateLimited);
        }
        for t in [
            "invalidToken",
            "authorizationInvalidToken",
            "tokenRequired",
            "authorizationTokenRequired",
            "authorizationFailed",
            "outOfScope",
        ] {
            assert_eq!(c.classify(StatusCode::UNAUTHORIZED, &body(t)).unwrap().kind, ErrorKind::Unauthorized, "{t}");
        }
        assert_eq!(
            c.classify(StatusCode::INTERNAL_SERVER_ERROR, &body("apiServerError")).unwrap().kind,
            ErrorKind::Server
        );
        assert_eq!(c.classify(StatusCode::BAD_REQUEST, &body("parameterInvalid")).unwrap().kind, ErrorKind::Client);
        assert!(c.classify(StatusCode::BAD_GATEWAY, b"<html>").is_none());
    }

    #[test]
    fn built_in_tables_load() {
        let t = Tables::load(None).unwrap();
        assert_eq!(t.attendance.get("ill").unwrap().reason, Some(m::AbsenceReason::Illness));
        assert_eq!(t.marks.get("mark5").unwrap().values.get("4+"), Some(&4.25));
        assert_eq!(t.work_types.get("ControlWork"), Some(&m::WorkKind::Control));
        assert_eq!(t.groups.get("Subgroup/Regular"), Some(&UnitKind::Subgroup));
    }
}
