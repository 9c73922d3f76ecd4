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
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use url::Url;

use ejgate_sdk::client::{
    Classified, ClientConfig, ErrorClassifier, ErrorKind, HeaderToken, Response, RetryPolicy, SourceClient, SourceError,
};
use ejgate_sdk::connector::{Batch, Chunk, Connector, Plan, PlanContext};
use ejgate_sdk::mapping::CodeTable;
use ejgate_sdk::model::{self as m, Coverage, DateRange, Entity, EntityKind, IdSpace, Record};
use ejgate_sdk::ranges::RangeLimit;
use ejgate_sdk::read::{self, Skipped};
use ejgate_sdk::time::{parse_date, parse_local_datetime};

use crate::api;

/// Days of journal a request asks for by default: the whole year (README).
pub const DEFAULT_REQUEST_DAYS: u32 = 366;

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
    /// Days of journal one request asks for (and one chunk holds) in a full run: by
    /// default the whole year (366), one request per class or group and list, since no
    /// public material limits the range; a range the source refuses is halved
    /// (`ejgate_sdk::ranges`). The source's `chunk_days` setting.
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
            chunk_days: DEFAULT_REQUEST_DAYS,
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
    /// Family token: each pupil read in this school and the ids of their groups.
    pupils: Vec<(String, Vec<String>)>,
    /// What planning found that a person should see (shown with the `school` chunk).
    notes: Vec<String>,
    /// Records planning could not read (shown with the `school` chunk).
    skipped: Vec<Skipped>,
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
    /// A family token's chunk of one pupil (marks and attendance), `group` unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    person: Option<String>,
    /// The last day of the marks read, when it is past `to`: the piece that ends with the
    /// year's last lesson reads the marks entered after it too (late marks, listed by the
    /// day they were entered), in the same request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    marks_to: Option<NaiveDate>,
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
            "invalidtoken" | "tokenrequired" | "outofscope" | "failed" => ErrorKind::Unauthorized,
            // The token is valid but this account may not read that resource (a parent's
            // token on a school-wide list): not a token to renew.
            "notowner" | "ownerforbidden" | "systemforbidden" | "accessdenied" => ErrorKind::Client,
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
    /// The longest request range the source takes (halved when it refuses one).
    ranges: RangeLimit,
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
            "Dnevnik refused the token of source «{}». Logins go through Госуслуги: sign in as the account this source reads (a school staff member for a whole school, a parent or a pupil for their own journal), obtain a new token, put it in {} and run the sync again; nothing already synced is lost",
            config.instance, config.token_origin
        );
        let auth = Arc::new(HeaderToken::new("access-token", config.token.clone(), hint));
        let client = SourceClient::new(client_config, auth, Arc::new(DnevnikErrors))?;
        Ok(DnevnikConnector {
            ids: IdSpace::new(config.instance.clone()),
            client,
            ranges: RangeLimit::new(config.chunk_days),
            config,
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

    /// GET a JSON array, read leniently: when the whole answer does not parse, every
    /// element is read on its own and the unreadable ones go to `skipped` (endpoint, field,
    /// excerpt); an answer that is not a JSON array at all fails as before.
    async fn get_list<T: DeserializeOwned>(
        &self,
        class: &str,
        path: &str,
        query: &[(&str, String)],
        skipped: &mut Vec<Skipped>,
    ) -> Result<Response<Vec<T>>, SourceError> {
        let raw = self.client.send(Method::GET, class, path, query, None).await?;
        let body = self.read_list(&Method::GET, path, &raw.body, skipped)?;
        Ok(Response { body, date: raw.date })
    }

    /// GET a dated list over `range` as [`Self::get_list`] does, one request per range the
    /// source takes (`path` and `query` of each); a range it refuses is halved.
    async fn get_dated<T: DeserializeOwned>(
        &self,
        range: DateRange,
        path: impl Fn(DateRange) -> String,
        query: impl Fn(DateRange) -> Vec<(&'static str, String)>,
        skipped: &mut Vec<Skipped>,
    ) -> Result<Vec<T>, SourceError> {
        let parts = self
            .ranges
            .read(range, |r| {
                let (path, query) = (path(r), query(r));
                async move {
                    let mut left_out = Vec::new();
                    let body = self.get_list::<T>("data", &path, &query, &mut left_out).await?.body;
                    Ok(vec![(body, left_out)])
                }
            })
            .await?;
        let mut out = Vec::new();
        for (body, left_out) in parts {
            out.extend(body);
            skipped.extend(left_out);
        }
        Ok(out)
    }

    /// POST a JSON body and read the array answer as [`Self::get_list`] does.
    async fn post_list<T: DeserializeOwned>(
        &self,
        class: &str,
        path: &str,
        body: &serde_json::Value,
        skipped: &mut Vec<Skipped>,
    ) -> Result<Vec<T>, SourceError> {
        let bytes = serde_json::to_vec(body).expect("request bodies serialize");
        let raw = self.client.send(Method::POST, class, path, &[], Some(bytes)).await?;
        self.read_list(&Method::POST, path, &raw.body, skipped)
    }

    fn read_list<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        body: &[u8],
        skipped: &mut Vec<Skipped>,
    ) -> Result<Vec<T>, SourceError> {
        // The whole answer in one pass first: the common case costs nothing extra.
        if let Ok(all) = serde_json::from_slice::<Vec<T>>(body) {
            return Ok(all);
        }
        let items: Vec<Box<RawValue>> = self.client.parse_body(method, path, body)?;
        Ok(read::each(&format!("{method} {}", path), &items, skipped))
    }

    /// An error of this source that is not an HTTP failure (a shape we cannot use).
    fn shape_error(&self, method: &str, endpoint: &str, detail: String, hint: &str) -> SourceError {
        SourceError {
            instance: self.config.instance.clone(),
            system: "dnevnik".into(),
            method: method.into(),
            endpoint: endpoint.into(),
            kind: ErrorKind::Malformed,
            detail,
            hint: Some(hint.into()),
        }
    }

    /// Classes and groups of an `edu-groups` list. `type` decides class vs subgroup
    /// (SOURCES.md): a `Subgroup`, or a group whose journal type is not a class's, is a
    /// group; a `Group` of the class journal type is a class unless its parent is itself a
    /// class of the list (then it is a study group of that class). A parent id alone (a
    /// class's parallel, its school) does not make a class a subgroup.
    fn place_groups(&self, groups: &[api::EduGroup], warnings: &mut Vec<String>) -> Vec<GroupInfo> {
        let kind_of = |g: &api::EduGroup, warnings: &mut Vec<String>| {
            let key =
                format!("{}/{}", g.kind.as_deref().unwrap_or("Group"), g.journaltype.as_deref().unwrap_or("Regular"));
            self.tables.groups.lookup(&key, warnings).copied()
        };
        let class_like = |g: &api::EduGroup, kind: Option<UnitKind>| match g.kind.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("subgroup") => false,
            Some(_) => matches!(kind, Some(UnitKind::Class) | None),
            // No `type` at all: the parent ids are all there is to go by.
            None => g.parent().is_none() && matches!(kind, Some(UnitKind::Class) | None),
        };
        let kinds: Vec<Option<UnitKind>> = groups.iter().map(|g| kind_of(g, warnings)).collect();
        let class_like_ids: HashSet<String> =
            groups.iter().zip(&kinds).filter(|(g, k)| class_like(g, **k)).filter_map(|(g, _)| g.id()).collect();
        let classes: HashSet<String> = groups
            .iter()
            .zip(&kinds)
            .filter(|(g, k)| class_like(g, **k))
            .filter(|(g, _)| g.parent().is_none_or(|p| !class_like_ids.contains(&p)))
            .filter_map(|(g, _)| g.id())
            .collect();
        groups
            .iter()
            .filter_map(|g| {
                let id = g.id()?;
                let is_class = classes.contains(&id);
                Some(GroupInfo {
                    parent: if is_class { None } else { g.parent().filter(|p| classes.contains(p)) },
                    kind: g.kind.clone(),
                    journal_type: g.journaltype.clone(),
                    name: g.name.clone().unwrap_or_default(),
                    grade: api::small(g.parallel),
                    subject: if g.subjects.len() == 1 { Some(g.subjects[0].0.clone()) } else { None },
                    is_class,
                    id,
                })
            })
            .collect()
    }

    async fn discover_school(&self, school: &str, access: &Access) -> Result<(SchoolInfo, u32), SourceError> {
        let profile =
            self.client.get_json::<serde_json::Value>("reference", &format!("schools/{school}"), &[]).await?.body;
        let parsed: api::SchoolProfile = serde_json::from_value(profile.clone()).map_err(|e| {
            SourceError::config(
                &self.config.instance,
                "dnevnik",
                format!("GET schools/{school}: unexpected answer: {e}"),
            )
        })?;
        let hours = parsed.time_zone.filter(|h| h.fract() == 0.0 && h.abs() <= 14.0).map(|h| h as i32);
        let offset =
            FixedOffset::east_opt(hours.unwrap_or(3) * 3600).unwrap_or(FixedOffset::east_opt(3 * 3600).unwrap());
        let mut skipped = Vec::new();
        let mut requests = 2;
        let mut pupils = Vec::new();
        let (groups, endpoint) = match access {
            Access::School => {
                let path = format!("schools/{school}/edu-groups");
                (self.get_list::<api::EduGroup>("reference", &path, &[], &mut skipped).await?.body, path)
            }
            Access::Family { pupils: all, .. } => {
                // A family token lists the groups of each pupil (subgroups too).
                let mut groups: Vec<api::EduGroup> = Vec::new();
                let mut seen = HashSet::new();
                for pupil in all.iter().filter(|p| p.schools.is_empty() || p.schools.iter().any(|s| s == school)) {
                    let path = format!("persons/{}/edu-groups", pupil.person);
                    let mine: Vec<api::EduGroup> = self.get_list("reference", &path, &[], &mut skipped).await?.body;
                    requests += 1;
                    pupils.push((pupil.person.clone(), mine.iter().filter_map(|g| g.id()).collect::<Vec<_>>()));
                    groups.extend(mine.into_iter().filter(|g| g.id().is_some_and(|id| seen.insert(id))));
                }
                (groups, "persons/{p}/edu-groups".to_string())
            }
        };
        let mut warnings: Vec<String> = Vec::new();
        let listed = groups;
        let groups = self.place_groups(&listed, &mut warnings);
        if !groups.iter().any(|g| g.is_class) {
            let listed: Vec<String> = listed
                .iter()
                .take(5)
                .map(|g| {
                    format!(
                        "{} (type {}, parent {})",
                        g.name.as_deref().unwrap_or("?"),
                        g.kind.as_deref().unwrap_or("none"),
                        g.parent().as_deref().unwrap_or("none")
                    )
                })
                .collect();
            return Err(self.shape_error(
                "GET",
                &endpoint,
                format!(
                    "school {school}: none of the {} groups listed can be placed as a class (every one is a Subgroup, or a group of another listed group){}",
                    groups.len(),
                    if listed.is_empty() { String::new() } else { format!(": {}", listed.join("; ")) }
                ),
                "Nothing of this school would be read. Check mappings/dnevnik/groups.toml (the type/journaltype codes of a class) against what the source sends",
            ));
        }
        let work_types: Vec<api::WorkType> =
            match self.get_list("reference", &format!("work-types/{school}"), &[], &mut skipped).await {
                Ok(r) => r.body,
                // A family token may not see the school's work types: marks then go without
                // their weights, said in the run.
                Err(e) if matches!(access, Access::Family { .. }) && e.kind == ErrorKind::Client => {
                    warnings.push(format!("{e}; marks of school {school} are stored without weights"));
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
        let work_types =
            work_types.into_iter().filter_map(|w| Some((api::pick(&w.id_str, &w.id)?, (w.kind, w.weight)))).collect();
        requests += 1;
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
        Ok((
            SchoolInfo { profile, offset, groups, period_group, year, work_types, pupils, notes: warnings, skipped },
            requests,
        ))
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
        let mut warnings = info.notes.clone();
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
                            number: api::small(p.number).unwrap_or(0),
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
        Batch { skipped: info.skipped.clone(), records, coverage, warnings, requests: 0 }
    }

    async fn fetch_school(&self, school: &str) -> Result<Batch, SourceError> {
        let info = self.school(school)?;
        let mut skipped = Vec::new();
        let subjects = self.get_list("reference", &format!("schools/{school}/subjects"), &[], &mut skipped).await?.body;
        let mut note = None;
        let teachers = match self.get_list("reference", &format!("schools/{school}/teachers"), &[], &mut skipped).await
        {
            Ok(r) => r.body,
            // A family token may not list the school's staff: lessons then name
            // teachers the store has no person for, said in the run.
            Err(e) if !info.pupils.is_empty() && e.kind == ErrorKind::Client => {
                note = Some(format!("{e}; the school's teachers are not stored"));
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let mut batch = self.school_batch(school, &info, subjects, teachers);
        if note.is_some() {
            // Not read, so not complete: nothing of the staff may be tombstoned.
            batch.coverage.retain(|c| !c.kinds.contains(&EntityKind::Person));
        }
        batch.warnings.extend(note);
        batch.skipped.extend(skipped);
        batch.requests = 2;
        Ok(batch)
    }

    /// Group id → (person id, active) of every membership, from one POST
    /// `edu-groups/students`; when the source refuses that batch endpoint, from the
    /// per-group lists (`persons?includeArchive=true` and `persons`: the difference is the
    /// archived members). Returns the memberships and the requests made.
    async fn memberships(
        &self,
        school: &str,
        info: &SchoolInfo,
        people: &mut HashMap<String, Vec<api::PersonItem>>,
        warnings: &mut Vec<String>,
        skipped: &mut Vec<Skipped>,
    ) -> Result<(Vec<(String, String, bool)>, u32), SourceError> {
        let group_ids: Vec<serde_json::Value> = info
            .groups
            .iter()
            .map(|g| {
                g.id.parse::<u64>()
                    .map(serde_json::Value::from)
                    .unwrap_or_else(|_| serde_json::Value::from(g.id.clone()))
            })
            .collect();
        let known: HashSet<&str> = info.groups.iter().map(|g| g.id.as_str()).collect();
        let batch = self
            .post_list::<api::GroupStudents>(
                "reference",
                "edu-groups/students",
                &serde_json::Value::Array(group_ids),
                skipped,
            )
            .await;
        let mut out = Vec::new();
        match batch {
            Ok(list) => {
                for membership in list {
                    let group = membership.group.0;
                    if !known.contains(group.as_str()) {
                        warnings.push(format!(
                            "edu-groups/students named group {group}, which schools/{school}/edu-groups does not list"
                        ));
                        continue;
                    }
                    for s in membership.students {
                        let archived = s.membershipstatus.as_deref().is_some_and(|st| {
                            st.eq_ignore_ascii_case("archive") || st.eq_ignore_ascii_case("archived")
                        });
                        out.push((group.clone(), s.person.0, !archived));
                    }
                }
                Ok((out, 1))
            }
            Err(e) if matches!(e.kind, ErrorKind::Client) => {
                warnings.push(format!("{e}; the memberships are read group by group instead"));
                let mut requests = 1;
                for g in &info.groups {
                    let all = match people.get(&g.id) {
                        Some(all) => all.iter().filter_map(|p| api::pick(&p.id_str, &p.id)).collect::<Vec<_>>(),
                        None => {
                            requests += 1;
                            let path = format!("edu-groups/{}/persons", g.id);
                            let list: Vec<api::PersonItem> = self
                                .get_list("reference", &path, &[("includeArchive", "true".into())], skipped)
                                .await?
                                .body;
                            list.iter().filter_map(|p| api::pick(&p.id_str, &p.id)).collect()
                        }
                    };
                    requests += 1;
                    let path = format!("edu-groups/{}/persons", g.id);
                    let active: Vec<api::PersonItem> = self.get_list("reference", &path, &[], skipped).await?.body;
                    let active: HashSet<String> = active.iter().filter_map(|p| api::pick(&p.id_str, &p.id)).collect();
                    for person in all {
                        let is_active = active.contains(&person);
                        out.push((g.id.clone(), person, is_active));
                    }
                }
                Ok((out, requests))
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch_roster(&self, school: &str) -> Result<Batch, SourceError> {
        let info = self.school(school)?;
        if !info.pupils.is_empty() {
            return self.fetch_family_roster(school, &info).await;
        }
        let scope_people = format!("school:{school}:students");
        let scope_roster = format!("school:{school}:roster");
        let mut skipped = Vec::new();
        let mut warnings = Vec::new();
        let mut requests = 0;
        let mut records = Vec::new();
        let mut seen_people = HashSet::new();
        let mut people: HashMap<String, Vec<api::PersonItem>> = HashMap::new();
        for class in info.groups.iter().filter(|g| g.is_class) {
            let list: Vec<api::PersonItem> = self
                .get_list(
                    "reference",
                    &format!("edu-groups/{}/persons", class.id),
                    &[("includeArchive", "true".into())],
                    &mut skipped,
                )
                .await?
                .body;
            requests += 1;
            people.insert(class.id.clone(), list);
        }
        for class in info.groups.iter().filter(|g| g.is_class) {
            for p in people.get(&class.id).into_iter().flatten() {
                let Some(pid) = api::pick(&p.id_str, &p.id) else { continue };
                if seen_people.insert(pid.clone()) {
                    records.push(self.record(
                        Entity::Person(person(
                            p.last_name.clone(),
                            p.first_name.clone(),
                            p.middle_name.clone(),
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
        let (memberships, more) = self.memberships(school, &info, &mut people, &mut warnings, &mut skipped).await?;
        requests += more;
        let classes: HashMap<&str, bool> = info.groups.iter().map(|g| (g.id.as_str(), g.is_class)).collect();
        for (group, student, active) in memberships {
            let is_class = classes.get(group.as_str()).copied().unwrap_or(false);
            records.push(self.enrollment(&group, is_class, &student, active, &scope_roster));
        }
        Ok(Batch {
            skipped,
            records,
            coverage: vec![
                Coverage { kinds: vec![EntityKind::Person], scope: scope_people, range: None },
                Coverage { kinds: vec![EntityKind::Enrollment], scope: scope_roster, range: None },
            ],
            warnings,
            requests,
        })
    }

    fn enrollment(&self, group: &str, is_class: bool, student: &str, active: bool, scope: &str) -> Record {
        self.record(
            Entity::Enrollment(m::Enrollment {
                student: self.id(EntityKind::Person, student),
                unit: self.unit_id(group, is_class),
                status: if active { m::EnrollmentStatus::Active } else { m::EnrollmentStatus::Archived },
                from: None,
                to: None,
                order: None,
            }),
            format!("{group}:{student}"),
            scope,
            None,
        )
    }

    /// A family token's roster: each pupil (`persons/{p}`) and the groups
    /// `persons/{p}/edu-groups` listed for them at planning.
    async fn fetch_family_roster(&self, school: &str, info: &SchoolInfo) -> Result<Batch, SourceError> {
        let scope = format!("school:{school}:family");
        let mut records = Vec::new();
        let mut skipped = Vec::new();
        let classes: HashMap<&str, bool> = info.groups.iter().map(|g| (g.id.as_str(), g.is_class)).collect();
        for (pupil, groups) in &info.pupils {
            let path = format!("persons/{pupil}");
            let raw = self.client.send(Method::GET, "reference", &path, &[], None).await?;
            match read::one::<api::PersonItem>(&format!("GET {}", path), &String::from_utf8_lossy(&raw.body)) {
                Ok(p) => records.push(self.record(
                    Entity::Person(person(
                        p.last_name,
                        p.first_name,
                        p.middle_name,
                        p.sex.as_deref(),
                        m::Role::Student,
                    )),
                    pupil.clone(),
                    &scope,
                    None,
                )),
                Err(s) => skipped.push(s),
            }
            for g in groups {
                let is_class = classes.get(g.as_str()).copied().unwrap_or(false);
                records.push(self.enrollment(g, is_class, pupil, true, &scope));
            }
        }
        Ok(Batch {
            skipped,
            records,
            coverage: vec![Coverage { kinds: vec![EntityKind::Person, EntityKind::Enrollment], scope, range: None }],
            warnings: Vec::new(),
            requests: info.pupils.len() as u32,
        })
    }

    /// Final marks of a class; with a family token, of one pupil in it
    /// (`persons/{p}/edu-groups/{g}/final-marks`, **assumption**: the same rows, the
    /// pupil's only).
    async fn fetch_final_marks(&self, school: &str, group: &str, pupil: Option<&str>) -> Result<Batch, SourceError> {
        let offset = self.school(school)?.offset;
        let (scope, path) = match pupil {
            None => (format!("group:{group}"), format!("edu-groups/{group}/final-marks")),
            Some(p) => (format!("group:{group}:person:{p}"), format!("persons/{p}/edu-groups/{group}/final-marks")),
        };
        let mut skipped = Vec::new();
        let rows: Vec<api::FinalMarksOfPerson> = self.get_list("data", &path, &[], &mut skipped).await?.body;
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
                        // the final mark's `date`: when it was set, school time (as a mark's)
                        entered_at: mark.date.as_deref().and_then(|d| parse_local_datetime(d, offset)),
                    }),
                    source_id,
                    &scope,
                    None,
                ));
            }
        }
        Ok(Batch {
            skipped,
            records,
            coverage: vec![Coverage { kinds: vec![EntityKind::FinalMark], scope, range: None }],
            warnings,
            requests: 1,
        })
    }

    /// Canonical lessons, works and homework of a `lessons/{from}/{to}` answer, and the
    /// date of each lesson (for the attendance read with it).
    #[allow(clippy::too_many_arguments)]
    fn lesson_records(
        &self,
        lessons: Vec<api::Lesson>,
        unit: uuid::Uuid,
        info: &SchoolInfo,
        scope: &str,
        endpoint: &str,
        records: &mut Vec<Record>,
        warnings: &mut Vec<String>,
        skipped: &mut Vec<Skipped>,
    ) -> HashMap<String, NaiveDate> {
        let mut lesson_dates: HashMap<String, NaiveDate> = HashMap::with_capacity(lessons.len());
        for l in lessons {
            let Some(lid) = api::pick(&l.id_str, &l.id) else {
                skipped.push(Skipped::new(endpoint, "id", "a lesson without id", &format!("{l:?}")));
                continue;
            };
            let Some(date) = l.date.as_deref().and_then(parse_date) else {
                skipped.push(Skipped::new(endpoint, "date", "no readable date", &format!("{l:?}")));
                continue;
            };
            lesson_dates.insert(lid.clone(), date);
            let teachers: Vec<String> = if l.teachers_str.is_empty() {
                l.teachers.iter().map(|t| t.0.clone()).collect()
            } else {
                l.teachers_str.clone()
            };
            let status = match l.status.as_deref() {
                Some(s) => self.tables.lesson_status.lookup(s, warnings).copied().unwrap_or(m::LessonStatus::Held),
                None => m::LessonStatus::Held,
            };
            let lesson_id = self.id(EntityKind::Lesson, &lid);
            records.push(self.record(
                Entity::Lesson(m::Lesson {
                    section: None,
                    unit,
                    subject: l.subject.as_ref().map(|s| self.id(EntityKind::Subject, &s.0)),
                    date,
                    number: api::small(l.number),
                    teacher: teachers.first().map(|t| self.id(EntityKind::Person, t)),
                    substitute: teachers.get(1).map(|t| self.id(EntityKind::Person, t)),
                    topic: l.title.filter(|t| !t.trim().is_empty()),
                    status,
                }),
                lid,
                scope,
                Some(date),
            ));
            for w in l.works {
                let Some(wid) = api::pick(&w.id_str, &w.id) else { continue };
                let work_type = w.work_type.as_ref().and_then(|t| info.work_types.get(&t.0));
                if w.kind.as_deref() == Some("Homework") {
                    records.push(self.record(
                        Entity::Homework(m::Homework {
                            attachments: w.files.iter().filter_map(attachment).collect(),
                            lesson: Some(lesson_id),
                            text: w.text.unwrap_or_default(),
                            entered_at: w.sent_date.as_deref().and_then(|s| parse_local_datetime(s, info.offset)),
                            due_date: w.target_date.as_deref().and_then(parse_date),
                        }),
                        wid,
                        scope,
                        Some(date),
                    ));
                } else {
                    let source_type =
                        w.kind.clone().or_else(|| work_type.and_then(|t| t.0.clone())).unwrap_or_default();
                    let kind =
                        self.tables.work_types.lookup(&source_type, warnings).copied().unwrap_or(m::WorkKind::Other);
                    records.push(self.record(
                        Entity::Work(m::Work {
                            lesson: Some(lesson_id),
                            kind,
                            source_type,
                            title: w.text.filter(|t| !t.trim().is_empty()),
                            weight: work_type.and_then(|t| t.1),
                        }),
                        wid,
                        scope,
                        Some(date),
                    ));
                }
            }
        }
        lesson_dates
    }

    /// Canonical attendance of lesson-log entries (absences and lateness; `Attend` is
    /// no record).
    #[allow(clippy::too_many_arguments)]
    fn attendance_records(
        &self,
        entries: Vec<api::LogEntry>,
        lesson_dates: &HashMap<String, NaiveDate>,
        info: &SchoolInfo,
        scope: &str,
        endpoint: &str,
        records: &mut Vec<Record>,
        warnings: &mut Vec<String>,
        skipped: &mut Vec<Skipped>,
    ) {
        for e in entries {
            let (Some(lesson), Some(person)) =
                (api::pick(&e.lesson_str, &e.lesson), api::pick(&e.person_str, &e.person))
            else {
                skipped.push(Skipped::new(
                    endpoint,
                    "lesson/person",
                    "an entry without lesson or person",
                    &format!("{e:?}"),
                ));
                continue;
            };
            let status_code = e.status.clone().unwrap_or_default();
            let Some(code) = self.tables.attendance.lookup(&status_code, warnings) else {
                // Unknown status: kept as an absence of unknown reason, never dropped.
                records.push(self.attendance_record(
                    &lesson,
                    &person,
                    m::AttendanceStatus::Absent,
                    None,
                    &e,
                    lesson_dates,
                    scope,
                    info,
                    warnings,
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
                lesson_dates,
                scope,
                info,
                warnings,
            ));
        }
    }

    async fn fetch_journal(&self, p: &JournalParams) -> Result<Batch, SourceError> {
        let info = self.school(&p.school)?;
        if let Some(pupil) = &p.person {
            return self.fetch_pupil_journal(p, pupil, &info).await;
        }
        let family = !info.pupils.is_empty();
        let scope = format!("group:{}", p.group);
        let mut skipped = Vec::new();
        let mut warnings = Vec::new();
        let ymd = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        let lessons: Vec<api::Lesson> = self
            .get_dated(
                DateRange::new(p.from, p.to),
                |r| format!("edu-groups/{}/lessons/{}/{}", p.group, ymd(r.from), ymd(r.to)),
                |_| Vec::new(),
                &mut skipped,
            )
            .await?;
        let unit = self.unit_id(&p.group, p.is_class);
        let mut records = Vec::with_capacity(lessons.len() * 3);
        let lesson_dates = self.lesson_records(
            lessons,
            unit,
            &info,
            &scope,
            "GET edu-groups/{g}/lessons",
            &mut records,
            &mut warnings,
            &mut skipped,
        );
        let range = Some(DateRange::new(p.from, p.to));
        if family {
            // A family token reads the group's lessons here and each pupil's marks and
            // attendance in the pupil's own chunks.
            return Ok(Batch {
                skipped,
                records,
                coverage: vec![Coverage {
                    kinds: vec![EntityKind::Lesson, EntityKind::Work, EntityKind::Homework],
                    scope,
                    range,
                }],
                warnings,
                requests: 1,
            });
        }
        let marks_to = p.marks_to.unwrap_or(p.to).max(p.to);
        let marks: Vec<api::Mark> = self
            .get_dated(
                DateRange::new(p.from, marks_to),
                |r| format!("edu-groups/{}/marks/{}/{}", p.group, ymd(r.from), ymd(r.to)),
                |_| Vec::new(),
                &mut skipped,
            )
            .await?;
        let entries: Vec<api::LogEntry> = self
            .get_dated(
                DateRange::new(p.from, p.to),
                |_| format!("lesson-log-entries/group/{}", p.group),
                |r| vec![("from", ymd(r.from)), ("to", ymd(r.to))],
                &mut skipped,
            )
            .await?;
        records.reserve(marks.len() + entries.len());
        records.extend(self.mark_records(marks, &info, &scope, &mut warnings, &mut skipped));
        self.attendance_records(
            entries,
            &lesson_dates,
            &info,
            &scope,
            "GET lesson-log-entries/group/{g}",
            &mut records,
            &mut warnings,
            &mut skipped,
        );
        Ok(Batch {
            skipped,
            records,
            coverage: vec![
                Coverage {
                    kinds: vec![EntityKind::Lesson, EntityKind::Work, EntityKind::Homework, EntityKind::Attendance],
                    scope: scope.clone(),
                    range,
                },
                Coverage { kinds: vec![EntityKind::Mark], scope, range: Some(DateRange::new(p.from, marks_to)) },
            ],
            warnings,
            requests: 3,
        })
    }

    /// A family token: one pupil's marks (`persons/{p}/schools/{s}/marks/{from}/{to}`, by
    /// the day entered like the group list, **assumption**) and attendance
    /// (`persons/{p}/lesson-log-entries?startDate&endDate`, an object with the entries and
    /// their lessons) in a date range.
    async fn fetch_pupil_journal(
        &self,
        p: &JournalParams,
        pupil: &str,
        info: &SchoolInfo,
    ) -> Result<Batch, SourceError> {
        let scope = format!("person:{pupil}");
        let (from, to) = (p.from.format("%Y-%m-%d").to_string(), p.to.format("%Y-%m-%d").to_string());
        let mut skipped = Vec::new();
        let mut warnings = Vec::new();
        let marks_to = p.marks_to.unwrap_or(p.to).max(p.to);
        let ymd = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        let marks: Vec<api::Mark> = self
            .get_dated(
                DateRange::new(p.from, marks_to),
                |r| format!("persons/{pupil}/schools/{}/marks/{}/{}", p.school, ymd(r.from), ymd(r.to)),
                |_| Vec::new(),
                &mut skipped,
            )
            .await?;
        let log_path = format!("persons/{pupil}/lesson-log-entries");
        let raw = self
            .client
            .send(Method::GET, "data", &log_path, &[("startDate", from.clone()), ("endDate", to.clone())], None)
            .await?;
        let log: api::PersonLog = self.client.parse_body(&Method::GET, &log_path, &raw.body)?;
        let endpoint = "GET persons/{p}/lesson-log-entries";
        let entries: Vec<api::LogEntry> = read::each(endpoint, &log.log_entries, &mut skipped);
        let lessons: Vec<api::Lesson> = read::each(endpoint, &log.lessons, &mut skipped);
        let lesson_dates: HashMap<String, NaiveDate> = lessons
            .iter()
            .filter_map(|l| Some((api::pick(&l.id_str, &l.id)?, l.date.as_deref().and_then(parse_date)?)))
            .collect();
        let mut records = Vec::with_capacity(marks.len() + entries.len());
        records.extend(self.mark_records(marks, info, &scope, &mut warnings, &mut skipped));
        self.attendance_records(
            entries,
            &lesson_dates,
            info,
            &scope,
            endpoint,
            &mut records,
            &mut warnings,
            &mut skipped,
        );
        Ok(Batch {
            skipped,
            records,
            coverage: vec![
                Coverage {
                    kinds: vec![EntityKind::Attendance],
                    scope: scope.clone(),
                    range: Some(DateRange::new(p.from, p.to)),
                },
                Coverage { kinds: vec![EntityKind::Mark], scope, range: Some(DateRange::new(p.from, marks_to)) },
            ],
            warnings,
            requests: 2,
        })
    }

    /// Canonical marks of a `marks/{from}/{to}` answer.
    fn mark_records(
        &self,
        marks: Vec<api::Mark>,
        info: &SchoolInfo,
        scope: &str,
        warnings: &mut Vec<String>,
        skipped: &mut Vec<Skipped>,
    ) -> Vec<Record> {
        let mut out = Vec::with_capacity(marks.len());
        for mk in marks {
            let (Some(mid), Some(person)) = (api::pick(&mk.id_str, &mk.id), api::pick(&mk.person_str, &mk.person))
            else {
                skipped.push(Skipped::new(
                    "GET …/marks",
                    "id/person",
                    "a mark without id or person",
                    &format!("{mk:?}"),
                ));
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
        let (from, to) = (p.from.format("%Y-%m-%d").to_string(), p.to.format("%Y-%m-%d").to_string());
        let (scope, path) = match &p.person {
            None => (format!("group:{}", p.group), format!("edu-groups/{}/marks/{from}/{to}", p.group)),
            Some(pupil) => {
                (format!("person:{pupil}"), format!("persons/{pupil}/schools/{}/marks/{from}/{to}", p.school))
            }
        };
        let mut skipped = Vec::new();
        let marks: Vec<api::Mark> = self.get_list("data", &path, &[], &mut skipped).await?.body;
        let mut warnings = Vec::new();
        let records = self.mark_records(marks, &info, &scope, &mut warnings, &mut skipped);
        Ok(Batch {
            skipped,
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

/// A homework attachment from a work's `files[]`: a file object (`{id, name, downloadUrl}`;
/// **assumption**: the field names of the file object are not public, so `name`/`fileName`/
/// `title` and `downloadUrl`/`url`/`link` are read) or a bare file id (kept as its name).
fn attachment(file: &serde_json::Value) -> Option<m::Attachment> {
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| file.get(*k).and_then(|v| v.as_str()).filter(|s| !s.trim().is_empty()).map(str::to_owned))
    };
    match file {
        serde_json::Value::Object(_) => {
            let url = text(&["downloadUrl", "url", "link", "href"]);
            let name = text(&["name", "fileName", "title"])
                .or_else(|| url.clone())
                .or_else(|| file.get("id").map(|v| v.to_string().trim_matches('"').to_owned()))?;
            Some(m::Attachment { name, url })
        }
        serde_json::Value::Number(n) => Some(m::Attachment { name: n.to_string(), url: None }),
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(m::Attachment { name: s.clone(), url: None }),
        _ => None,
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

impl DnevnikConnector {
    /// The chunks of one school (see the module doc); a family token's journal is its
    /// groups' lessons plus each pupil's own marks and attendance.
    fn plan_school(
        &self,
        ctx: &PlanContext,
        school: &str,
        info: &SchoolInfo,
        today: NaiveDate,
        chunks: &mut Vec<Chunk>,
    ) {
        let family = !info.pupils.is_empty();
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
            if family {
                for (pupil, groups) in info.pupils.iter().filter(|(_, groups)| groups.contains(&class.id)) {
                    let _ = groups;
                    chunks.push(Chunk {
                        stream: "final_marks".into(),
                        scope: format!("group:{}:person:{pupil}", class.id),
                        params: serde_json::json!({"school": school, "group": class.id, "person": pupil}),
                        cursor_after: None,
                    });
                }
            } else {
                chunks.push(Chunk {
                    stream: "final_marks".into(),
                    scope: format!("group:{}", class.id),
                    params: serde_json::json!({"school": school, "group": class.id}),
                    cursor_after: None,
                });
            }
        }
        let Some(year) = info.year else { return };
        let end = year.to.min(today);
        // (scope, group, is_class, pupil): the groups, then (family token) each pupil.
        let mut units: Vec<(String, String, bool, Option<String>)> =
            info.groups.iter().map(|g| (format!("group:{}", g.id), g.id.clone(), g.is_class, None)).collect();
        if family {
            units.extend(
                info.pupils.iter().map(|(p, _)| (format!("person:{p}"), String::new(), false, Some(p.clone()))),
            );
        }
        // Marks are listed by the day they were entered, and they are still entered after
        // the last lesson: those days are read too, every run, by the marks request of the
        // piece that ends with the year (no request of their own). A family token's group
        // chunks read no marks.
        let late = DateRange::new(year.to + chrono::Days::new(1), year.entries_close().min(today));
        for (scope, group, is_class, person) in units {
            let reads_marks = !family || person.is_some();
            let chunk =
                |stream: &str, range: DateRange, marks_to: Option<NaiveDate>, cursor_after: Option<String>| Chunk {
                    stream: stream.into(),
                    scope: scope.clone(),
                    params: serde_json::to_value(JournalParams {
                        school: school.to_string(),
                        group: group.clone(),
                        is_class,
                        from: range.from,
                        to: range.to,
                        person: person.clone(),
                        marks_to,
                    })
                    .expect("params serialize"),
                    cursor_after,
                };
            let pieces =
                ctx.dated_pieces("journal", &scope, year.from, end, self.config.window_days, self.config.chunk_days);
            let mut late_read = false;
            for piece in pieces {
                let marks_to = (reads_marks && late.from <= late.to && piece.to == year.to).then_some(late.to);
                late_read |= marks_to.is_some();
                chunks.push(chunk("journal", piece, marks_to, Some(piece.to.format("%Y-%m-%d").to_string())));
            }
            // No piece ends with the year (its cursor is past the window): the late days alone.
            if reads_marks && late.from <= late.to && !late_read {
                chunks.push(chunk("late_marks", late, None, None));
            }
        }
    }
}

/// What a token may read, from `users/me/context`.
#[derive(Debug, Clone)]
enum Access {
    /// A staff member (teacher, administrator): whole schools (**assumption**: the public
    /// clients do not say how far a staff token reaches; a district token sees several).
    School,
    /// A parent (their children) or a pupil (themselves): the confirmed person-scoped calls.
    Family { role: &'static str, pupils: Vec<Pupil> },
}

#[derive(Debug, Clone)]
struct Pupil {
    person: String,
    /// Schools the context names for the pupil (empty: every school of the token).
    schools: Vec<String>,
}

impl Access {
    fn of(context: &api::Context) -> Result<Access, String> {
        let has = |needle: &str| context.roles.iter().any(|r| r.to_ascii_lowercase().contains(needle));
        if has("staff") || has("administrator") || has("teacher") {
            return Ok(Access::School);
        }
        let children: Vec<Pupil> = context
            .children
            .iter()
            .filter_map(|c| {
                Some(Pupil { person: c.person()?, schools: c.school_ids.iter().map(|s| s.0.clone()).collect() })
            })
            .collect();
        if !children.is_empty() {
            return Ok(Access::Family { role: "parent", pupils: children });
        }
        if has("student") {
            if let Some(me) = context.person() {
                return Ok(Access::Family { role: "pupil", pupils: vec![Pupil { person: me, schools: Vec::new() }] });
            }
        }
        if has("parent") {
            return Err(format!(
                "the token is a parent's (roles {:?}) with no children listed: there is nothing it can read",
                context.roles
            ));
        }
        Err(format!("the token's roles {:?} are neither staff, nor a parent with children, nor a pupil: ejgate does not know what it may read", context.roles))
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

    fn client_stats(&self) -> Vec<std::sync::Arc<ejgate_sdk::client::ClientStats>> {
        vec![self.client.stats().clone()]
    }

    async fn plan(&self, ctx: &PlanContext) -> Result<Plan, SourceError> {
        let context = self.client.get_json::<api::Context>("reference", "users/me/context", &[]).await?;
        let now_utc: Option<NaiveDateTime> = context.date.map(|d: SystemTime| DateTime::<Utc>::from(d).naive_utc());
        let access = Access::of(&context.body).map_err(|detail| {
            self.shape_error("GET", "users/me/context", detail, "Give ejgate the token of a school staff member (a whole school), or of a parent or a pupil (their own journal)")
        })?;
        let mut school_ids: Vec<String> =
            context.body.schools.iter().filter_map(|s| api::pick(&s.id_str, &s.id)).collect();
        if school_ids.is_empty() {
            school_ids = context.body.school_ids.iter().map(|s| s.0.clone()).collect();
        }
        let mut notes = Vec::new();
        if let Access::Family { role, pupils } = &access {
            // The children's schools, in the context's order, then any other they name.
            for s in pupils.iter().flat_map(|p| &p.schools) {
                if !school_ids.contains(s) {
                    school_ids.push(s.clone());
                }
            }
            if !self.config.school_ids.is_empty() {
                return Err(SourceError::config(
                    &self.config.instance,
                    "dnevnik",
                    format!(
                        "the configuration asks for whole school(s) {:?}, but the token is a {role}'s (roles {:?}): it reads only {} pupil(s) of its own ({}). Ask the school for a staff member's token, or remove `schools` from this source to read the pupils' own journal",
                        self.config.school_ids,
                        context.body.roles,
                        pupils.len(),
                        pupils.iter().map(|p| p.person.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            notes.push(format!(
                "the token is a {role}'s (roles {:?}): this source reads the journal of {} pupil(s) only — their classes' lessons, their own marks, attendance and final marks — not the whole school",
                context.body.roles,
                pupils.len()
            ));
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
        if school_ids.is_empty() {
            return Err(self.shape_error(
                "GET",
                "users/me/context",
                format!("the token's account (roles {:?}) sees no school", context.body.roles),
                "Check that the token belongs to the account meant for this source",
            ));
        }
        let mut chunks = Vec::new();
        let mut source_now = None;
        for school in school_ids {
            let (mut info, _) = self.discover_school(&school, &access).await?;
            if matches!(access, Access::Family { .. }) && info.pupils.is_empty() {
                continue;
            }
            self.check_year(ctx.year, &school, info.year)?;
            info.notes.splice(0..0, notes.drain(..));
            let today = now_utc
                .map(|n| (n + info.offset).date())
                .unwrap_or_else(|| (Utc::now().naive_utc() + info.offset).date());
            source_now = source_now.or(now_utc.map(|n| n + info.offset));
            self.plan_school(ctx, &school, &info, today, &mut chunks);
            self.schools.lock().expect("school cache").insert(school.clone(), Arc::new(info));
        }
        Ok(Plan { source_now, chunks })
    }

    fn estimate_requests(&self, chunk: &Chunk) -> u64 {
        let ranges = |from: NaiveDate, to: NaiveDate| {
            ((to - from).num_days().max(0) as u64 + 1).div_ceil(u64::from(self.ranges.days()))
        };
        let journal = serde_json::from_value::<JournalParams>(chunk.params.clone()).ok();
        match (chunk.stream.as_str(), journal) {
            ("school", _) => 2,
            // The memberships batch and each class's persons.
            ("roster", _) => {
                let school = chunk.params.get("school").and_then(|v| v.as_str()).unwrap_or_default();
                let classes = self.school(school).map(|i| i.groups.iter().filter(|g| g.is_class).count()).unwrap_or(0);
                1 + classes as u64
            }
            ("journal", Some(p)) if p.person.is_some() => ranges(p.from, p.marks_to.unwrap_or(p.to).max(p.to)) + 1,
            ("journal", Some(p)) => 2 * ranges(p.from, p.to) + ranges(p.from, p.marks_to.unwrap_or(p.to).max(p.to)),
            _ => 1,
        }
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
            "final_marks" => {
                let pupil = chunk.params.get("person").and_then(|v| v.as_str());
                self.fetch_final_marks(&str_param("school"), &str_param("group"), pupil).await
            }
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
        // A valid token that may not read this: not a token to renew.
        for t in ["authorizationNotOwner", "notOwner", "ownerForbidden", "authorizationSystemForbidden"] {
            assert_eq!(c.classify(StatusCode::FORBIDDEN, &body(t)).unwrap().kind, ErrorKind::Client, "{t}");
        }
        assert_eq!(
            c.classify(StatusCode::INTERNAL_SERVER_ERROR, &body("apiServerError")).unwrap().kind,
            ErrorKind::Server
        );
        assert_eq!(c.classify(StatusCode::BAD_REQUEST, &body("parameterInvalid")).unwrap().kind, ErrorKind::Client);
        assert!(c.classify(StatusCode::BAD_GATEWAY, b"<html>").is_none());
    }

    fn connector() -> DnevnikConnector {
        DnevnikConnector::new(DnevnikConfig::new(
            "t",
            "http://127.0.0.1:9/v2/".parse().unwrap(),
            SecretString::from("x"),
        ))
        .unwrap()
    }

    #[test]
    fn type_decides_class_or_group_not_a_parent_id() {
        let groups: Vec<api::EduGroup> = serde_json::from_str(
            r#"[
                {"id": 1, "type": "Group", "journaltype": "Regular", "parentIds": [900], "name": "5А", "parallel": "5",
                 "subjects": [{"id": 7, "id_str": "7", "name": "Математика"}]},
                {"id": 2, "type": "Subgroup", "journalType": "Regular", "parentIds": [1], "name": "5А англ. 1"},
                {"id": 3, "type": "Group", "journaltype": "Regular", "parentIds": ["1"], "name": "5А проф."},
                {"id": 4, "type": "Group", "journaltype": "Elective", "parentIds": [], "name": "Шахматы"},
                {"id": 5, "name": "6Б"}
            ]"#,
        )
        .unwrap();
        let placed = connector().place_groups(&groups, &mut Vec::new());
        let got: Vec<(&str, bool, Option<&str>)> =
            placed.iter().map(|g| (g.id.as_str(), g.is_class, g.parent.as_deref())).collect();
        assert_eq!(
            got,
            [
                ("1", true, None),
                ("2", false, Some("1")),
                ("3", false, Some("1")),
                ("4", false, None),
                ("5", true, None)
            ]
        );
        assert_eq!((placed[0].grade, placed[0].subject.as_deref()), (Some(5), Some("7")));
        let all_sub: Vec<api::EduGroup> =
            serde_json::from_str(r#"[{"id": 1, "type": "Subgroup"}, {"id": 2, "type": "Subgroup", "parentIds": [1]}]"#)
                .unwrap();
        assert!(connector().place_groups(&all_sub, &mut Vec::new()).iter().all(|g| !g.is_class));
    }

    #[test]
    fn access_follows_the_roles_and_children() {
        let ctx = |json: &str| serde_json::from_str::<api::Context>(json).unwrap();
        assert!(matches!(Access::of(&ctx(r#"{"roles": ["EduStaff"], "children": []}"#)), Ok(Access::School)));
        let parent = Access::of(&ctx(
            r#"{"roles": ["EduParent"], "personId": 1, "children": [{"personId": 10, "personId_str": "10", "schoolIds": [5]}, {"personId": "11"}]}"#,
        ));
        match parent {
            Ok(Access::Family { role: "parent", pupils }) => {
                let got: Vec<(&str, Vec<String>)> =
                    pupils.iter().map(|p| (p.person.as_str(), p.schools.clone())).collect();
                assert_eq!(got, [("10", vec!["5".to_string()]), ("11", vec![])]);
            }
            other => panic!("{other:?}"),
        }
        match Access::of(&ctx(r#"{"roles": ["EduStudent"], "personId": 1000000000000000001}"#)) {
            Ok(Access::Family { role: "pupil", pupils }) => assert_eq!(pupils[0].person, "1000000000000000001"),
            other => panic!("{other:?}"),
        }
        let err = Access::of(&ctx(r#"{"roles": ["EduParent"], "children": null}"#)).unwrap_err();
        assert!(err.contains("no children"), "{err}");
        assert!(Access::of(&ctx(r#"{"roles": []}"#)).is_err());
    }

    #[test]
    fn files_become_attachments() {
        let files: Vec<serde_json::Value> = serde_json::from_str(
            r#"[{"id": 1, "name": "Карточка.pdf", "downloadUrl": "https://f/1"}, {"id": 2, "fileName": "a.docx"}, 77, "", null]"#,
        )
        .unwrap();
        let got: Vec<m::Attachment> = files.iter().filter_map(attachment).collect();
        assert_eq!(
            got,
            [
                m::Attachment { name: "Карточка.pdf".into(), url: Some("https://f/1".into()) },
                m::Attachment { name: "a.docx".into(), url: None },
                m::Attachment { name: "77".into(), url: None },
            ]
        );
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
