//! The answers of the API (API.md's endpoint table), built from a [`Served`] world.
//!
//! Wire structs name their fields exactly as the JSON keys (hence the mixed casing); big
//! lists are serialized item by item straight into the response buffer.

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::{Datelike, NaiveDate};
use ejgate_sdk::model::{GroupKind, PeriodKind, Sex};
use ejgate_sdk::synth::lookup::range_by;
use ejgate_sdk::synth::{
    School, SynthAttendanceStatus, SynthFinalMark, SynthLesson, SynthMark, SynthPeriod, SynthPerson, SynthSubject,
    SynthWork, FIRST_ID,
};
use serde::{Serialize, Serializer};
use serde_json::json;

use super::dates::{EndOfDay, Micros, Midnight, Ticks, UtcMillis};
use super::index::{Served, UnitRef};
use super::Forms;

/// The user behind the emulator's token: a district administrator (**assumption**: the
/// world has no such person; the ids sit just below the world's first id, still above 2^53).
pub const ADMIN_USER_ID: u64 = FIRST_ID - 2;
/// The person id of the emulator's administrator.
pub const ADMIN_PERSON_ID: u64 = FIRST_ID - 1;
/// `regionId` of every school (**assumption**: Московская область's code).
const REGION_ID: u32 = 50;

const EMPTY: &[u64] = &[];

/// An API error answer: `{"type": …, "description": …}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub description: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, description: impl Into<String>) -> Self {
        ApiError { status, kind, description: description.into() }
    }

    pub fn token_required() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "tokenRequired", "You must supply valid token to access method")
    }

    pub fn invalid_token() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalidToken", "Invalid token")
    }

    pub fn request_limit(status: StatusCode) -> Self {
        Self::new(status, "apiRequestLimit", "Превышен лимит запросов для данного токена")
    }

    pub fn method_not_supported() -> Self {
        Self::new(StatusCode::NOT_FOUND, "apiMethodNotSupported", "Method not supported")
    }

    pub fn unavailable(what: &str, id: u64) -> Self {
        Self::new(StatusCode::NOT_FOUND, "apiResourceUnavailable", format!("Resource unavailable: {what} {id}"))
    }

    pub fn parameter(name: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "parameterInvalid", format!("Parameter '{name}' is invalid"))
    }

    pub fn invalid_request(detail: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalidRequest", detail.to_owned())
    }

    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"type": self.kind, "description": self.description}))
            .expect("serializing into memory cannot fail")
    }
}

/// An id's string twin (`id_str`, `person_str`, …), written without an intermediate String.
#[derive(Debug, Clone, Copy)]
pub struct IdStr(pub u64);

impl Serialize for IdStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut n = self.0;
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        s.serialize_str(std::str::from_utf8(&buf[i..]).expect("ASCII digits"))
    }
}

/// Up to two ids (a lesson's teacher and substitute), as numbers or as strings.
#[derive(Debug, Clone, Copy)]
struct TwoIds {
    ids: [u64; 2],
    n: usize,
    strings: bool,
}

impl Serialize for TwoIds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ids = &self.ids[..self.n];
        if self.strings {
            s.collect_seq(ids.iter().map(|&i| IdStr(i)))
        } else {
            ids.serialize(s)
        }
    }
}

fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("serializing into memory cannot fail")
}

/// A JSON array written item by item into one buffer.
fn array<T: Serialize>(capacity: usize, items: impl IntoIterator<Item = T>) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity.max(2));
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &item).expect("serializing into memory cannot fail");
    }
    out.push(b']');
    out
}

/// «Иванов И. П.»
pub(crate) fn short_name(p: &SynthPerson) -> String {
    let mut s = p.last_name.clone();
    for name in [&p.first_name, &p.middle_name] {
        if let Some(c) = name.chars().next() {
            s.push(' ');
            s.push(c);
            s.push('.');
        }
    }
    s
}

fn sex(s: Sex) -> &'static str {
    match s {
        Sex::Male => "Male",
        Sex::Female => "Female",
    }
}

/// Work-type code of the synthetic world → Dnevnik `kind` and `kindId` (**assumption**:
/// the numbering of `kindId`).
pub fn work_kind(code: &str) -> Option<(&'static str, u32)> {
    Some(match code {
        "lesson" => ("LessonAnswer", 1),
        "written" => ("WrittenWork", 2),
        "control" => ("ControlWork", 3),
        "test" => ("Test", 4),
        "internal_control" => ("InternalControl", 5),
        "independent" => ("IndependentWork", 6),
        "practical" => ("PracticalWork", 7),
        "homework" => ("Homework", 8),
        _ => return None,
    })
}

fn period_type(kind: PeriodKind) -> &'static str {
    match kind {
        PeriodKind::Quarter => "Quarter",
        PeriodKind::Trimester => "Trimester",
        PeriodKind::HalfYear => "Semester",
        PeriodKind::Year => "Year",
        PeriodKind::Other => "Other",
    }
}

/// The period a day falls in; in a holiday between periods, the one before it.
fn period_of(school: &School, day: NaiveDate) -> Option<&SynthPeriod> {
    school
        .periods
        .iter()
        .find(|p| p.start <= day && day <= p.end)
        .or_else(|| school.periods.iter().filter(|p| p.start <= day).max_by_key(|p| p.start))
}

fn mood(value: &str) -> &'static str {
    match value.as_bytes().first() {
        Some(b'5' | b'4') => "Good",
        Some(b'3') => "Average",
        Some(b'2' | b'1') => "Bad",
        _ => "NotSet",
    }
}

fn attendance_status(s: SynthAttendanceStatus) -> &'static str {
    match s {
        SynthAttendanceStatus::AbsentUnexcused => "Absent",
        SynthAttendanceStatus::AbsentExcused => "Pass",
        SynthAttendanceStatus::Ill => "Ill",
        SynthAttendanceStatus::Late => "Late",
    }
}

fn final_mark_type(value: &str) -> &'static str {
    match value {
        "осв" => "markdismiss",
        "н/а" => "markna",
        _ => "mark5",
    }
}

// ---------------------------------------------------------------- 1. users/me/context

pub fn context(s: &Served) -> Vec<u8> {
    let classes = |school: &School| school.classes.iter().map(|c| c.id).collect::<Vec<_>>();
    let schools: Vec<_> = s
        .world
        .schools
        .iter()
        .map(|school| {
            json!({
                "id": school.id, "id_str": IdStr(school.id), "name": school.name,
                "type": "School", "groupIds": classes(school),
            })
        })
        .collect();
    let edu_groups: Vec<_> = s
        .world
        .schools
        .iter()
        .flat_map(|school| &school.classes)
        .map(|c| json!({"id": c.id, "id_str": IdStr(c.id), "name": c.name}))
        .collect();
    let group_ids: Vec<u64> = s.world.schools.iter().flat_map(classes).collect();
    let school_ids: Vec<u64> = s.world.schools.iter().map(|school| school.id).collect();
    to_vec(&json!({
        "userId": ADMIN_USER_ID, "userId_str": IdStr(ADMIN_USER_ID),
        "personId": ADMIN_PERSON_ID, "personId_str": IdStr(ADMIN_PERSON_ID),
        "firstName": "Ирина", "lastName": "Соколова", "middleName": "Викторовна",
        "shortName": "Соколова И. В.",
        "roles": ["EduSchoolAdministrator", "OrganizationStaff"],
        "schools": schools,
        "eduGroups": edu_groups,
        "schoolIds": school_ids,
        "groupIds": group_ids,
        "children": [],
    }))
}

// ---------------------------------------------------------------- 2. schools/{s}

pub fn school(s: &Served, id: u64) -> Result<Vec<u8>, ApiError> {
    Ok(to_vec(&school_json(s, id)?))
}

/// `schools?schools=…`: several profiles; unknown ids are left out.
pub fn schools_many(s: &Served, ids: &[u64]) -> Vec<u8> {
    to_vec(&ids.iter().filter_map(|id| school_json(s, *id).ok()).collect::<Vec<_>>())
}

fn school_json(s: &Served, id: u64) -> Result<serde_json::Value, ApiError> {
    let (si, school) = s.school(id).ok_or_else(|| ApiError::unavailable("school", id))?;
    Ok(json!({
        "id": school.id, "id_str": IdStr(school.id),
        "name": school.name, "fullName": school.full_name,
        "city": school.city, "municipality": school.municipality,
        "regionId": REGION_ID, "markType": "Mark5",
        "timeZone": s.utc_offset_hours(si, s.world.today),
        "uses_avg": true, "uses_weighted_avg": true, "educationType": "Regular",
    }))
}

// ---------------------------------------------------------------- 3. edu-groups

/// A class's `subjects[]`: subject objects, as the typed clients model them
/// (`EduGroup.subjects: list[Subject]`), or bare ids ([`Forms::bare_ids`]).
#[derive(Serialize)]
#[serde(untagged)]
enum SubjectsJson<'a> {
    Objects(Vec<SubjectJson<'a>>),
    Ids(Vec<u64>),
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub(crate) struct SubjectJson<'a> {
    id: u64,
    id_str: IdStr,
    name: &'a str,
    knowledgeArea: &'a str,
    fgosSubjectId: Option<u64>,
}

pub(crate) fn subject_json(x: &SynthSubject) -> SubjectJson<'_> {
    SubjectJson { id: x.id, id_str: IdStr(x.id), name: &x.name, knowledgeArea: &x.knowledge_area, fgosSubjectId: None }
}

/// The made-up id of a grade's parallel, which [`Forms::classes_with_parent`] gives
/// classes as a parent: a group no list holds.
pub const PARALLEL_ID_BASE: u64 = FIRST_ID - 1000;

#[allow(non_snake_case)]
#[derive(Serialize)]
pub(crate) struct EduGroupJson<'a> {
    id: u64,
    id_str: IdStr,
    parentIds: Vec<u64>,
    parentIds_str: Vec<IdStr>,
    r#type: &'static str,
    name: &'a str,
    fullName: &'a str,
    parallel: u8,
    status: &'static str,
    studyyear: i32,
    subjects: SubjectsJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    journaltype: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    journalType: Option<&'static str>,
    timetable: Option<u64>,
    educationType: &'static str,
}

/// `camel`: `journalType` (as `edu-groups/{g}` spells it) instead of `journaltype`.
pub(crate) fn edu_group<'a>(school: &'a School, unit: UnitRef, camel: bool, forms: Forms) -> EduGroupJson<'a> {
    let (class, group) = Served::class_of(school, unit);
    let (id, name, parents, kind, journal) = match group {
        None => {
            let c = class.expect("a class unit has its class");
            let parents = if forms.classes_with_parent { vec![PARALLEL_ID_BASE + c.grade as u64] } else { vec![] };
            (c.id, c.name.as_str(), parents, "Group", "Regular")
        }
        Some(g) => {
            let (kind, journal) = match g.kind {
                GroupKind::Subgroup => ("Subgroup", "Regular"),
                GroupKind::StudyGroup => ("Group", "Regular"),
                GroupKind::Elective => ("Group", "Elective"),
                GroupKind::Extracurricular => ("Group", "Extracurricular"),
                GroupKind::AfterSchool => ("Group", "ExtendedDay"),
            };
            (g.id, g.name.as_str(), vec![g.class_id], kind, journal)
        }
    };
    let kind = if forms.all_subgroups { "Subgroup" } else { kind };
    let mut subjects: Vec<u64> = school.loads.iter().filter(|l| l.unit == id).map(|l| l.subject).collect();
    subjects.extend(group.and_then(|g| g.subject_id));
    subjects.sort_unstable();
    subjects.dedup();
    let subjects = if forms.bare_ids {
        SubjectsJson::Ids(subjects)
    } else {
        SubjectsJson::Objects(
            subjects.iter().filter_map(|id| school.subjects.iter().find(|x| x.id == *id)).map(subject_json).collect(),
        )
    };
    EduGroupJson {
        id,
        id_str: IdStr(id),
        parentIds_str: parents.iter().map(|&p| IdStr(p)).collect(),
        parentIds: parents,
        r#type: kind,
        name,
        fullName: name,
        parallel: class.map(|c| c.grade).unwrap_or(0),
        status: "Active",
        studyyear: school.year.start.year(),
        subjects,
        journaltype: (!camel).then_some(journal),
        journalType: camel.then_some(journal),
        timetable: None,
        educationType: "Regular",
    }
}

pub fn school_edu_groups(s: &Served, id: u64, forms: Forms) -> Result<Vec<u8>, ApiError> {
    let (_, school) = s.school(id).ok_or_else(|| ApiError::unavailable("school", id))?;
    let units = (0..school.classes.len()).map(UnitRef::Class).chain((0..school.groups.len()).map(UnitRef::Group));
    Ok(array(256 * (school.classes.len() + school.groups.len()), units.map(|u| edu_group(school, u, false, forms))))
}

pub fn one_edu_group(s: &Served, id: u64, forms: Forms) -> Result<Vec<u8>, ApiError> {
    let (u, school) = s.unit(id).ok_or_else(|| ApiError::unavailable("eduGroup", id))?;
    Ok(to_vec(&edu_group(school, u.unit, true, forms)))
}

/// Several classes or groups by id (GET `edu-groups?eduGroups=…`, POST `edu-groups`);
/// unknown ids are left out.
pub fn edu_groups_many(s: &Served, ids: &[u64], forms: Forms) -> Vec<u8> {
    let list = ids.iter().filter_map(|id| s.unit(*id)).map(|(u, school)| edu_group(school, u.unit, false, forms));
    array(256 * ids.len(), list)
}

// ---------------------------------------------------------------- 4. edu-groups/students

/// `group` / `person` of the batch answer: a full object (the typed clients'
/// `StudentsWrapper{EduGroup group; Student{Person person}}`) or a bare id.
#[derive(Serialize)]
#[serde(untagged)]
enum Either<T> {
    Object(T),
    Id(u64),
}

#[derive(Serialize)]
struct MemberJson<'a> {
    person: Either<PersonJson<'a>>,
    membershipstatus: &'static str,
}

#[derive(Serialize)]
struct GroupMembersJson<'a> {
    group: Either<EduGroupJson<'a>>,
    students: Vec<MemberJson<'a>>,
}

/// `group` and `person` as full objects ([`Forms::bare_ids`]: bare ids); unknown group ids
/// are left out.
pub fn groups_students(s: &Served, ids: &[u64], forms: Forms) -> Vec<u8> {
    let groups = ids.iter().filter_map(|&id| {
        let (u, school) = s.unit(id)?;
        let positions = &s.index.school_info[u.school].students;
        let students = u
            .members
            .iter()
            .map(|&(person, active)| MemberJson {
                person: match positions.get(&person).filter(|_| !forms.bare_ids) {
                    Some(&i) => Either::Object(person_json(&school.students[i])),
                    None => Either::Id(person),
                },
                membershipstatus: if active { "Active" } else { "Archive" },
            })
            .collect();
        let group =
            if forms.bare_ids { Either::Id(id) } else { Either::Object(edu_group(school, u.unit, false, forms)) };
        Some(GroupMembersJson { group, students })
    });
    array(256 * ids.len(), groups)
}

// ---------------------------------------------------------------- 5. edu-groups/{g}/persons

#[allow(non_snake_case)]
#[derive(Serialize)]
pub(crate) struct PersonJson<'a> {
    id: u64,
    id_str: IdStr,
    userId: Option<u64>,
    userId_str: Option<IdStr>,
    firstName: &'a str,
    lastName: &'a str,
    middleName: &'a str,
    shortName: String,
    sex: &'static str,
}

pub(crate) fn person_json(p: &SynthPerson) -> PersonJson<'_> {
    PersonJson {
        id: p.id,
        id_str: IdStr(p.id),
        userId: p.user_id,
        userId_str: p.user_id.map(IdStr),
        firstName: &p.first_name,
        lastName: &p.last_name,
        middleName: &p.middle_name,
        shortName: short_name(p),
        sex: sex(p.sex),
    }
}

pub fn persons(s: &Served, id: u64, include_archive: bool) -> Result<Vec<u8>, ApiError> {
    let (u, school) = s.unit(id).ok_or_else(|| ApiError::unavailable("eduGroup", id))?;
    let positions = &s.index.school_info[u.school].students;
    let people = u
        .members
        .iter()
        .filter(|&&(_, active)| active || include_archive)
        .filter_map(|(student, _)| positions.get(student).map(|&i| &school.students[i]))
        .map(person_json);
    Ok(array(256 * u.members.len(), people))
}

// ---------------------------------------------------------------- 6. schools/{s}/teachers

#[allow(non_snake_case)]
#[derive(Serialize)]
struct TeacherJson<'a> {
    Id: u64,
    IdStr: IdStr,
    UserId: Option<u64>,
    UserIdStr: Option<IdStr>,
    FirstName: &'a str,
    LastName: &'a str,
    MiddleName: &'a str,
    ShortName: String,
    Sex: &'static str,
    Subjects: String,
}

pub fn teachers(s: &Served, id: u64) -> Result<Vec<u8>, ApiError> {
    let (_, school) = s.school(id).ok_or_else(|| ApiError::unavailable("school", id))?;
    let subject_names: HashMap<u64, &str> = school.subjects.iter().map(|x| (x.id, x.name.as_str())).collect();
    let list = school.teachers.iter().map(|t| {
        let mut taught: Vec<&str> = Vec::new();
        for load in school.loads.iter().filter(|l| l.teacher == t.id) {
            if let Some(&name) = subject_names.get(&load.subject) {
                if !taught.contains(&name) {
                    taught.push(name);
                }
            }
        }
        TeacherJson {
            Id: t.id,
            IdStr: IdStr(t.id),
            UserId: t.user_id,
            UserIdStr: t.user_id.map(IdStr),
            FirstName: &t.first_name,
            LastName: &t.last_name,
            MiddleName: &t.middle_name,
            ShortName: short_name(t),
            Sex: sex(t.sex),
            Subjects: taught.join(", "),
        }
    });
    Ok(array(320 * school.teachers.len(), list))
}

// ---------------------------------------------------------------- 7. schools/{s}/subjects

pub fn subjects(s: &Served, id: u64) -> Result<Vec<u8>, ApiError> {
    let (_, school) = s.school(id).ok_or_else(|| ApiError::unavailable("school", id))?;
    let list = school.subjects.iter().map(|x| {
        json!({"id": x.id, "id_str": IdStr(x.id), "name": x.name,
               "knowledgeArea": x.knowledge_area, "fgosSubjectId": null})
    });
    Ok(array(128 * school.subjects.len(), list))
}

/// `edu-groups/{g}/subjects`: the subjects taught in a class or group (**assumption**: the
/// whole year's, where the real list covers the current period only).
pub fn group_subjects(s: &Served, id: u64) -> Result<Vec<u8>, ApiError> {
    let (_, school) = s.unit(id).ok_or_else(|| ApiError::unavailable("eduGroup", id))?;
    let mut ids: Vec<u64> = school.loads.iter().filter(|l| l.unit == id).map(|l| l.subject).collect();
    ids.sort_unstable();
    ids.dedup();
    let list = ids.iter().filter_map(|i| school.subjects.iter().find(|x| x.id == *i)).map(subject_json);
    Ok(array(128 * ids.len(), list))
}

// ---------------------------------------------------------------- 8. reporting-period-group

fn periods_json(school: &School) -> Vec<serde_json::Value> {
    let study_year = school.year.start.year();
    school
        .periods
        .iter()
        .map(|p| {
            json!({
                "id": p.id, "id_str": IdStr(p.id),
                "start": Midnight(p.start), "finish": EndOfDay(p.end),
                "number": p.number, "type": period_type(p.kind), "name": p.name,
                "year": study_year,
            })
        })
        .collect()
}

/// `edu-groups/{g}/reporting-periods`: the periods alone.
pub fn reporting_periods(s: &Served, id: u64) -> Result<Vec<u8>, ApiError> {
    let (_, school) = s.unit(id).ok_or_else(|| ApiError::unavailable("eduGroup", id))?;
    Ok(to_vec(&periods_json(school)))
}

pub fn reporting_period_group(s: &Served, id: u64) -> Result<Vec<u8>, ApiError> {
    let (_, school) = s.unit(id).ok_or_else(|| ApiError::unavailable("eduGroup", id))?;
    let group_id = school.year.id;
    let periods = periods_json(school);
    let holidays: Vec<_> = school
        .holidays
        .iter()
        .map(|h| {
            json!({
                "id": h.id, "reportingPeriodGroupId": group_id,
                "dateStart": Midnight(h.start), "dateFinish": EndOfDay(h.end),
                "name": h.name, "description": null,
            })
        })
        .collect();
    Ok(to_vec(&json!({
        "id": group_id, "id_str": IdStr(group_id),
        "reportingPeriods": periods, "holidays": holidays,
    })))
}

// ---------------------------------------------------------------- 9. work-types/{s}

pub fn work_types(s: &Served, id: u64) -> Result<Vec<u8>, ApiError> {
    let (_, school) = s.school(id).ok_or_else(|| ApiError::unavailable("school", id))?;
    let list = school.work_types.iter().map(|t| {
        let (kind, kind_id) = work_kind(&t.code).unwrap_or(("Other", 0));
        json!({
            "id": t.id, "id_str": IdStr(t.id), "schoolId": school.id,
            "kind": kind, "kindId": kind_id, "title": t.title, "abbr": t.abbr,
            "weight": t.weight,
        })
    });
    Ok(array(192 * school.work_types.len(), list))
}

// ---------------------------------------------------------------- 10. lessons and works

#[allow(non_snake_case)]
#[derive(Serialize)]
struct WorkJson<'a> {
    id: u64,
    id_str: IdStr,
    r#type: &'a str,
    workType: u64,
    markType: &'static str,
    markCount: u8,
    lesson: u64,
    lesson_str: IdStr,
    displayInJournal: bool,
    status: &'static str,
    eduGroup: u64,
    text: &'a str,
    periodNumber: Option<u8>,
    periodType: Option<&'static str>,
    subjectId: u64,
    targetDate: Midnight,
    sentDate: Option<UtcMillis>,
    createdBy: u64,
    files: Vec<FileJson<'a>>,
    tasks: &'static [u64],
    isImportant: bool,
}

/// A file attached to a homework (**assumption**: the swagger's example shows `files` as
/// ids; the typed clients do not show the file object, so its fields are our guess —
/// `{id, id_str, name, downloadUrl}` — and a reader accepts ids too).
#[derive(Serialize)]
#[allow(non_snake_case)]
struct FileJson<'a> {
    id: u64,
    id_str: IdStr,
    name: &'a str,
    downloadUrl: &'a str,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct SubjectRefJson<'a> {
    id: u64,
    id_str: IdStr,
    name: &'a str,
    knowledgeArea: &'a str,
}

#[allow(non_snake_case)]
#[derive(Serialize)]
struct LessonJson<'a> {
    id: u64,
    id_str: IdStr,
    title: Option<&'a str>,
    date: Midnight,
    number: u8,
    subject: SubjectRefJson<'a>,
    group: u64,
    group_str: IdStr,
    status: &'static str,
    works: Vec<WorkJson<'a>>,
    teachers: TwoIds,
    teachers_str: TwoIds,
    resultPlaceId: Option<u64>,
}

fn work_json<'a>(
    s: &'a Served,
    si: usize,
    school: &'a School,
    lesson: &'a SynthLesson,
    work: &'a SynthWork,
) -> WorkJson<'a> {
    let work_type = school.work_types.iter().find(|t| t.id == work.work_type);
    let kind = work_type.map(|t| work_kind(&t.code).map(|k| k.0).unwrap_or(t.code.as_str()));
    let r#type = if work.is_homework {
        "Homework"
    } else if work_type.is_some_and(|t| t.code == "lesson") {
        "DefaultNewLessonWork"
    } else {
        kind.unwrap_or("LessonAnswer")
    };
    let period = period_of(school, lesson.date);
    WorkJson {
        id: work.id,
        id_str: IdStr(work.id),
        r#type,
        workType: work.work_type,
        markType: "Mark5",
        markCount: 1,
        lesson: lesson.id,
        lesson_str: IdStr(lesson.id),
        displayInJournal: true,
        status: "Sent",
        eduGroup: lesson.unit,
        text: &work.text,
        periodNumber: period.map(|p| p.number),
        periodType: period.map(|p| period_type(p.kind)),
        subjectId: lesson.subject,
        targetDate: Midnight(work.target_date),
        sentDate: work.is_homework.then(|| UtcMillis(s.to_utc(si, work.created_at))),
        createdBy: lesson.substitute.unwrap_or(lesson.teacher),
        // A file id of our own: the work's id with the file's place in the upper bits.
        files: work
            .attachments
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let id = work.id.wrapping_add((i as u64 + 1) << 40);
                FileJson { id, id_str: IdStr(id), name: &a.name, downloadUrl: &a.url }
            })
            .collect(),
        tasks: EMPTY,
        isImportant: false,
    }
}

fn lesson_json<'a>(s: &'a Served, si: usize, school: &'a School, lesson: &'a SynthLesson) -> LessonJson<'a> {
    let subject = school.subjects.iter().find(|x| x.id == lesson.subject);
    let works = s
        .index
        .lesson_works
        .get(&lesson.id)
        .map(|ids| {
            ids.iter().filter_map(|w| school.works.get(w)).map(|w| work_json(s, si, school, lesson, w)).collect()
        })
        .unwrap_or_default();
    let (ids, n) = match lesson.substitute {
        Some(sub) => ([lesson.teacher, sub], 2),
        None => ([lesson.teacher, 0], 1),
    };
    LessonJson {
        id: lesson.id,
        id_str: IdStr(lesson.id),
        title: lesson.topic.as_deref(),
        date: Midnight(lesson.date),
        number: lesson.number,
        subject: SubjectRefJson {
            id: lesson.subject,
            id_str: IdStr(lesson.subject),
            name: subject.map(|x| x.name.as_str()).unwrap_or(""),
            knowledgeArea: subject.map(|x| x.knowledge_area.as_str()).unwrap_or(""),
        },
        group: lesson.unit,
        group_str: IdStr(lesson.unit),
        status: if lesson.cancelled { "Canceled" } else { "Conducted" },
        works,
        teachers: TwoIds { ids, n, strings: false },
        teachers_str: TwoIds { ids, n, strings: true },
        resultPlaceId: None,
    }
}

/// A group's lessons dated in [from, to]; with `subject`, of that subject only.
pub fn lessons(s: &Served, id: u64, subject: Option<u64>, from: NaiveDate, to: NaiveDate) -> Result<Vec<u8>, ApiError> {
    let (u, school) = s.unit(id).ok_or_else(|| ApiError::unavailable("eduGroup", id))?;
    let rows = range_by(&u.lessons, |r| r.0, from, to);
    let list = rows
        .iter()
        .filter_map(|(_, _, l)| school.lessons.get(l))
        .filter(|l| subject.is_none_or(|x| l.subject == x))
        .map(|l| lesson_json(s, u.school, school, l));
    Ok(array(1200 * rows.len(), list))
}

/// `lessons/{l}`.
pub fn one_lesson(s: &Served, id: u64) -> Result<Vec<u8>, ApiError> {
    let (si, school, l) = s.lesson(id).ok_or_else(|| ApiError::unavailable("lesson", id))?;
    Ok(to_vec(&lesson_json(s, si, school, l)))
}

/// `works?lesson=`, `lessons/{l}/works`: the lesson's works, homework included.
pub fn lesson_works(s: &Served, id: u64) -> Result<Vec<u8>, ApiError> {
    let (si, school, l) = s.lesson(id).ok_or_else(|| ApiError::unavailable("lesson", id))?;
    let ids = s.index.lesson_works.get(&id).map(Vec::as_slice).unwrap_or_default();
    let list = ids.iter().filter_map(|w| school.works.get(w)).map(|w| work_json(s, si, school, l, w));
    Ok(array(600 * ids.len(), list))
}

/// `lessons/many`: unknown ids are left out.
pub fn lessons_many(s: &Served, ids: &[u64]) -> Vec<u8> {
    let list = ids.iter().filter_map(|id| s.lesson(*id)).map(|(si, school, l)| lesson_json(s, si, school, l));
    array(1200 * ids.len(), list)
}

/// `works/many`: unknown ids are left out.
pub fn works_many(s: &Served, ids: &[u64]) -> Vec<u8> {
    let list = ids.iter().filter_map(|id| {
        s.world.schools.iter().enumerate().find_map(|(si, school)| {
            let work = school.works.get(id)?;
            let lesson = school.lessons.get(&work.lesson)?;
            Some(work_json(s, si, school, lesson, work))
        })
    });
    array(600 * ids.len(), list)
}

// ---------------------------------------------------------------- 11. marks

#[allow(non_snake_case)]
#[derive(Serialize)]
struct MarkJson<'a> {
    id: u64,
    id_str: IdStr,
    r#type: &'static str,
    value: &'a str,
    textValue: &'a str,
    person: u64,
    person_str: IdStr,
    work: u64,
    work_str: IdStr,
    lesson: u64,
    lesson_str: IdStr,
    number: u8,
    date: Ticks,
    workType: u64,
    mood: &'static str,
    use_avg_calc: bool,
}

fn mark_json(m: &SynthMark, work_type: u64) -> MarkJson<'_> {
    MarkJson {
        id: m.id,
        id_str: IdStr(m.id),
        r#type: "mark5",
        value: &m.value,
        textValue: &m.value,
        person: m.student,
        person_str: IdStr(m.student),
        work: m.work,
        work_str: IdStr(m.work),
        lesson: m.lesson,
        lesson_str: IdStr(m.lesson),
        number: 0,
        date: Ticks(m.entered_at),
        workType: work_type,
        mood: mood(&m.value),
        use_avg_calc: true,
    }
}

/// Marks on a group's lessons entered in [from, to]; with `subject`, of that subject only.
pub fn marks(s: &Served, id: u64, subject: Option<u64>, from: NaiveDate, to: NaiveDate) -> Result<Vec<u8>, ApiError> {
    let (u, school) = s.unit(id).ok_or_else(|| ApiError::unavailable("eduGroup", id))?;
    let rows = range_by(&u.marks, |r| r.0.date(), from, to);
    let list = rows
        .iter()
        .filter_map(|&(_, m, work_type)| Some((school.marks.get(&m)?, work_type)))
        .filter(|(m, _)| subject.is_none_or(|x| school.lessons.get(&m.lesson).is_some_and(|l| l.subject == x)))
        .map(|(m, work_type)| mark_json(m, work_type));
    Ok(array(420 * rows.len(), list))
}

/// A pupil's marks in a school entered in [from, to] (`persons/{p}/schools/{s}/marks/…`,
/// by the day entered like the group list: **assumption**).
pub fn person_marks(
    s: &Served,
    person: u64,
    school_id: u64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<u8>, ApiError> {
    let (si, school) = s.school(school_id).ok_or_else(|| ApiError::unavailable("school", school_id))?;
    let rows = s.index.student_marks.get(&person).map(Vec::as_slice).unwrap_or_default();
    let rows = range_by(rows, |r| r.0.date(), from, to);
    let _ = si;
    let list = rows.iter().filter_map(|&(_, m, wt)| Some(mark_json(school.marks.get(&m)?, wt)));
    Ok(array(420 * rows.len(), list))
}

/// Marks of one lesson (`lessons/{l}/marks`); `only` keeps those of the given pupils.
pub fn lesson_marks(s: &Served, lesson: u64, only: Option<&[u64]>) -> Result<Vec<u8>, ApiError> {
    let (_, school, _) = s.lesson(lesson).ok_or_else(|| ApiError::unavailable("lesson", lesson))?;
    let ids = s.index.lesson_marks.get(&lesson).map(Vec::as_slice).unwrap_or_default();
    let list = ids
        .iter()
        .filter_map(|m| school.marks.get(m))
        .filter(|m| only.is_none_or(|o| o.contains(&m.student)))
        .map(|m| mark_json(m, school.works.get(&m.work).map(|w| w.work_type).unwrap_or(0)));
    Ok(array(420 * ids.len(), list))
}

// ---------------------------------------------------------------- 12. final-marks

#[derive(Serialize)]
#[allow(non_snake_case)]
struct FinalMarkJson<'a> {
    value: &'a str,
    textValue: &'a str,
    r#type: &'static str,
    date: Ticks,
}

#[derive(Serialize)]
struct SubjectFinalJson<'a> {
    subject: u64,
    subject_str: IdStr,
    #[serde(rename = "final-mark")]
    final_mark: FinalMarkJson<'a>,
}

#[allow(non_snake_case)]
#[derive(Serialize)]
struct FinalMarksJson<'a> {
    person: u64,
    person_str: IdStr,
    group: u64,
    group_str: IdStr,
    reportingPeriod: Option<u64>,
    reportingPeriod_str: Option<IdStr>,
    #[serde(rename = "per-subject-final-marks")]
    per_subject: Vec<SubjectFinalJson<'a>>,
}

/// Final marks of everyone ever enrolled in the class (active and archived: **assumption**,
/// so that a pupil who left still has their marks served). A group answers `[]`.
pub fn final_marks(s: &Served, id: u64, only: Option<u64>) -> Result<Vec<u8>, ApiError> {
    let (u, school) = s.unit(id).ok_or_else(|| ApiError::unavailable("eduGroup", id))?;
    if !matches!(u.unit, UnitRef::Class(_)) {
        return Ok(b"[]".to_vec());
    }
    // Periods in order, the year last.
    let period_rank = |p: Option<u64>| match p {
        Some(p) => school.periods.iter().position(|x| x.id == p).unwrap_or(usize::MAX - 1),
        None => usize::MAX,
    };
    let mut entries: Vec<FinalMarksJson<'_>> = Vec::new();
    for &(student, _) in u.members.iter().filter(|(p, _)| only.is_none_or(|o| o == *p)) {
        let mut rows: Vec<(Option<u64>, u64, &SynthFinalMark)> = school
            .final_marks
            .range((student, 0, None)..=(student, u64::MAX, Some(u64::MAX)))
            .map(|(&(_, subject, period), m)| (period, subject, m))
            .collect();
        rows.sort_by_key(|&(period, subject, _)| (period_rank(period), period, subject));
        for chunk in rows.chunk_by(|a, b| a.0 == b.0) {
            let period = chunk[0].0;
            entries.push(FinalMarksJson {
                person: student,
                person_str: IdStr(student),
                group: id,
                group_str: IdStr(id),
                reportingPeriod: period,
                reportingPeriod_str: period.map(IdStr),
                per_subject: chunk
                    .iter()
                    .map(|&(_, subject, m)| SubjectFinalJson {
                        subject,
                        subject_str: IdStr(subject),
                        final_mark: FinalMarkJson {
                            value: &m.value,
                            textValue: &m.value,
                            r#type: final_mark_type(&m.value),
                            date: Ticks(m.entered_at),
                        },
                    })
                    .collect(),
            });
        }
    }
    Ok(array(600 * entries.len(), entries))
}

// ---------------------------------------------------------------- 13. lesson-log-entries

#[allow(non_snake_case)]
#[derive(Serialize)]
struct LogEntryJson<'a> {
    person: u64,
    person_str: IdStr,
    lesson: u64,
    lesson_str: IdStr,
    comment: Option<&'a str>,
    status: &'static str,
    createdDate: Micros,
}

fn log_entry_json(s: &Served, si: usize, lesson: u64, student: u64) -> Option<LogEntryJson<'_>> {
    let a = s.world.schools[si].attendance.get(&(lesson, student))?;
    Some(LogEntryJson {
        person: student,
        person_str: IdStr(student),
        lesson,
        lesson_str: IdStr(lesson),
        comment: a.comment.as_deref(),
        status: attendance_status(a.status),
        createdDate: Micros(a.entered_at),
    })
}

pub fn log_entries(
    s: &Served,
    id: u64,
    subject: Option<u64>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<u8>, ApiError> {
    let (u, school) = s.unit(id).ok_or_else(|| ApiError::unavailable("eduGroup", id))?;
    let rows = range_by(&u.attendance, |r| r.0, from, to);
    let list = rows.iter().filter_map(|&(_, lesson, student)| {
        if let Some(subject) = subject {
            if school.lessons.get(&lesson)?.subject != subject {
                return None;
            }
        }
        log_entry_json(s, u.school, lesson, student)
    });
    Ok(array(220 * rows.len(), list))
}

/// Entries of some lessons (`lessons/{l}/log-entries`, `lesson-log-entries?lessons=`);
/// `only` keeps those of the given pupils.
pub fn lessons_log_entries(s: &Served, lessons: &[u64], only: Option<&[u64]>) -> Vec<u8> {
    let mut list = Vec::new();
    for &lesson in lessons {
        let Some((si, school, _)) = s.lesson(lesson) else { continue };
        for (&(_, student), _) in school.attendance.range((lesson, 0)..=(lesson, u64::MAX)) {
            if only.is_none_or(|o| o.contains(&student)) {
                list.extend(log_entry_json(s, si, lesson, student));
            }
        }
    }
    to_vec(&list)
}

/// `persons/{p}/lesson-log-entries?startDate&endDate`: `{logEntries, lessons}`, the
/// pupil's entries of lessons dated in [from, to] and those lessons.
pub fn person_log_entries(s: &Served, person: u64, from: NaiveDate, to: NaiveDate) -> Vec<u8> {
    let rows = s.index.student_attendance.get(&person).map(Vec::as_slice).unwrap_or_default();
    let rows = range_by(rows, |r| r.0, from, to);
    let mut entries = Vec::with_capacity(rows.len());
    let mut lessons = Vec::with_capacity(rows.len());
    for &(_, lesson) in rows {
        let Some((si, school, l)) = s.lesson(lesson) else { continue };
        entries.extend(log_entry_json(s, si, lesson, person));
        lessons.push(lesson_json(s, si, school, l));
    }
    to_vec(&json!({"logEntries": entries, "lessons": lessons}))
}

// ---------------------------------------------------------------- 14, 15: code lists

pub fn log_statuses() -> Vec<u8> {
    to_vec(&["Attend", "Absent", "Ill", "Late", "Pass"])
}

pub fn mark_values() -> Vec<u8> {
    let mark5: Vec<String> = (1..=5).flat_map(|n| [format!("{n}-"), format!("{n}"), format!("{n}+")]).collect();
    to_vec(&json!({"mark5": mark5, "markdismiss": ["осв"], "markna": ["н/а"]}))
}

/// The ids of a batch request body: a bare array of numbers or numeric strings, an object
/// holding such an array under `key` (old clients: `{"lessons": […]}`), or a form
/// (`lessons=1&lessons=2`, what a Python client posting `data={"lessons": […]}` sends).
pub fn batch_ids(body: &[u8], key: &str) -> Result<Vec<u64>, ApiError> {
    let bad = || ApiError::invalid_request("The body must be a JSON array of ids");
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        let mut out = Vec::new();
        for pair in url::form_urlencoded::parse(body) {
            let k = pair.0.to_ascii_lowercase();
            if k == key.to_ascii_lowercase() || k == format!("{}[]", key.to_ascii_lowercase()) {
                out.push(pair.1.trim().parse().map_err(|_| ApiError::invalid_request("Ids must be integers"))?);
            }
        }
        return if out.is_empty() { Err(bad()) } else { Ok(out) };
    };
    let items = match &value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(map) => match map.get(key) {
            Some(serde_json::Value::Array(items)) => items,
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    items
        .iter()
        .map(|v| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(|| ApiError::invalid_request("Ids must be integers"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_twins_are_exact() {
        for n in [0, 7, 10, 9_007_199_254_740_993, FIRST_ID + 1, u64::MAX] {
            assert_eq!(serde_json::to_string(&IdStr(n)).unwrap(), format!("\"{n}\""));
        }
    }

    #[test]
    fn moods_and_kinds() {
        assert_eq!(mood("5-"), "Good");
        assert_eq!(mood("4+"), "Good");
        assert_eq!(mood("3"), "Average");
        assert_eq!(mood("2"), "Bad");
        assert_eq!(mood("1+"), "Bad");
        assert_eq!(mood("осв"), "NotSet");
        assert_eq!(work_kind("internal_control"), Some(("InternalControl", 5)));
        assert_eq!(work_kind("practical"), Some(("PracticalWork", 7)));
        assert_eq!(work_kind("independent"), Some(("IndependentWork", 6)));
        assert_eq!(work_kind("written"), Some(("WrittenWork", 2)));
        assert_eq!(work_kind("test"), Some(("Test", 4)));
        assert_eq!(work_kind("nope"), None);
    }
}
