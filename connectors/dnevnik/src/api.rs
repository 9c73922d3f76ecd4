//! Dnevnik.ru v2 answers as the source writes them (API.md): parsed leniently — unknown
//! fields ignored, optional fields optional, ids as exact strings (the `_str` twin first),
//! both spellings where clients disagree (`journaltype`/`journalType`, `regionid`/`regionId`).

use ejgate_sdk::read;
use ejgate_sdk::time::SourceId;
use serde::Deserialize;

/// Picks the `_str` twin when present, else the numeric id.
pub fn pick(id_str: &Option<String>, id: &Option<SourceId>) -> Option<String> {
    id_str.clone().filter(|s| !s.is_empty()).or_else(|| id.as_ref().map(|i| i.0.clone()))
}

/// The JSON error body: `{"type": "...", "description": "..."}`.
#[derive(Debug, Deserialize)]
pub struct ApiError {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub description: Option<String>,
}

/// `users/me/context`: who the token is, and what it may read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    pub person_id: Option<SourceId>,
    #[serde(rename = "personId_str")]
    pub person_id_str: Option<String>,
    /// `EduStudent`, `EduParent`, `EduStaff`, `OrganizationStaff`, `EduSchoolAdministrator`, …
    #[serde(default, deserialize_with = "read::list")]
    pub roles: Vec<String>,
    #[serde(default, deserialize_with = "read::list")]
    pub schools: Vec<ContextSchool>,
    #[serde(default, deserialize_with = "read::list")]
    pub school_ids: Vec<SourceId>,
    #[serde(default, deserialize_with = "read::list")]
    pub group_ids: Vec<SourceId>,
    /// A parent's children (empty for others).
    #[serde(default, deserialize_with = "read::list")]
    pub children: Vec<ContextChild>,
}

impl Context {
    pub fn person(&self) -> Option<String> {
        pick(&self.person_id_str, &self.person_id)
    }
}

/// An element of the context's `children[]`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextChild {
    pub person_id: Option<SourceId>,
    #[serde(rename = "personId_str")]
    pub person_id_str: Option<String>,
    /// Some spellings carry the id as `id`.
    pub id: Option<SourceId>,
    #[serde(default, deserialize_with = "read::list")]
    pub school_ids: Vec<SourceId>,
    #[serde(default, deserialize_with = "read::list")]
    pub group_ids: Vec<SourceId>,
}

impl ContextChild {
    pub fn person(&self) -> Option<String> {
        pick(&self.person_id_str, &self.person_id).or_else(|| self.id.as_ref().map(|i| i.0.clone()))
    }
}

#[derive(Debug, Deserialize)]
pub struct ContextSchool {
    pub id: Option<SourceId>,
    #[serde(rename = "id_str")]
    pub id_str: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchoolProfile {
    pub id: Option<SourceId>,
    #[serde(rename = "id_str")]
    pub id_str: Option<String>,
    pub name: Option<String>,
    pub full_name: Option<String>,
    pub city: Option<String>,
    pub municipality: Option<String>,
    /// Hours from UTC (a number or a string holding one).
    #[serde(default, deserialize_with = "read::opt_number")]
    pub time_zone: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct EduGroup {
    pub id: Option<SourceId>,
    #[serde(rename = "id_str")]
    pub id_str: Option<String>,
    #[serde(default, rename = "parentIds", deserialize_with = "read::list")]
    pub parent_ids: Vec<SourceId>,
    #[serde(default, rename = "parentIds_str", deserialize_with = "read::list")]
    pub parent_ids_str: Vec<String>,
    /// `Group` or `Subgroup`: decides class vs subgroup (SOURCES.md), not `parentIds`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "read::opt_number")]
    pub parallel: Option<f64>,
    /// Subject objects in the typed clients (`{id, id_str, name, …}`), ids elsewhere:
    /// [`SourceId`] reads both.
    #[serde(default, deserialize_with = "read::list")]
    pub subjects: Vec<SourceId>,
    #[serde(alias = "journalType")]
    pub journaltype: Option<String>,
}

impl EduGroup {
    pub fn id(&self) -> Option<String> {
        pick(&self.id_str, &self.id)
    }
    pub fn parent(&self) -> Option<String> {
        self.parent_ids_str.first().cloned().or_else(|| self.parent_ids.first().map(|p| p.0.clone()))
    }
}

/// An element of POST `edu-groups/students`: `group` and `person` are full objects in the
/// typed clients, bare ids elsewhere ([`SourceId`] reads both).
#[derive(Debug, Deserialize)]
pub struct GroupStudents {
    pub group: SourceId,
    #[serde(default, deserialize_with = "read::list")]
    pub students: Vec<Membership>,
}

#[derive(Debug, Deserialize)]
pub struct Membership {
    pub person: SourceId,
    #[serde(alias = "membershipStatus")]
    pub membershipstatus: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonItem {
    pub id: Option<SourceId>,
    #[serde(rename = "id_str")]
    pub id_str: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub middle_name: Option<String>,
    pub sex: Option<String>,
}

/// `schools/{s}/teachers` answers in PascalCase.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Teacher {
    pub id: Option<SourceId>,
    #[serde(rename = "IdStr")]
    pub id_str: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub middle_name: Option<String>,
    pub sex: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectItem {
    pub id: Option<SourceId>,
    #[serde(rename = "id_str")]
    pub id_str: Option<String>,
    pub name: Option<String>,
    pub knowledge_area: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeriodGroup {
    pub id: Option<SourceId>,
    #[serde(rename = "id_str")]
    pub id_str: Option<String>,
    #[serde(default)]
    pub reporting_periods: Vec<ReportingPeriod>,
    #[serde(default)]
    pub holidays: Vec<HolidayItem>,
}

#[derive(Debug, Deserialize)]
pub struct ReportingPeriod {
    pub id: Option<SourceId>,
    #[serde(rename = "id_str")]
    pub id_str: Option<String>,
    pub start: Option<String>,
    pub finish: Option<String>,
    #[serde(default, deserialize_with = "read::opt_number")]
    pub number: Option<f64>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HolidayItem {
    pub id: Option<SourceId>,
    #[serde(rename = "id_str")]
    pub id_str: Option<String>,
    pub date_start: Option<String>,
    pub date_finish: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct WorkType {
    pub id: Option<SourceId>,
    #[serde(rename = "id_str")]
    pub id_str: Option<String>,
    pub kind: Option<String>,
    pub title: Option<String>,
    #[serde(default, deserialize_with = "read::opt_number")]
    pub weight: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct Lesson {
    pub id: Option<SourceId>,
    #[serde(rename = "id_str")]
    pub id_str: Option<String>,
    /// The topic.
    pub title: Option<String>,
    pub date: Option<String>,
    #[serde(default, deserialize_with = "read::opt_number")]
    pub number: Option<f64>,
    /// An object in every client; an id is read too.
    pub subject: Option<SourceId>,
    pub status: Option<String>,
    /// Work objects (as `works/many` answers them).
    #[serde(default, deserialize_with = "read::list")]
    pub works: Vec<Work>,
    #[serde(default, deserialize_with = "read::list")]
    pub teachers: Vec<SourceId>,
    #[serde(default, deserialize_with = "read::list")]
    pub teachers_str: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Work {
    pub id: Option<SourceId>,
    #[serde(rename = "id_str")]
    pub id_str: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub work_type: Option<SourceId>,
    pub text: Option<String>,
    pub target_date: Option<String>,
    pub sent_date: Option<String>,
    /// Attached files: ids or file objects (`{id, name, downloadUrl, …}`).
    #[serde(default, deserialize_with = "read::list")]
    pub files: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct Mark {
    pub id: Option<SourceId>,
    #[serde(rename = "id_str")]
    pub id_str: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub value: Option<String>,
    pub person: Option<SourceId>,
    #[serde(rename = "person_str")]
    pub person_str: Option<String>,
    pub work: Option<SourceId>,
    pub work_str: Option<String>,
    pub lesson: Option<SourceId>,
    #[serde(rename = "lesson_str")]
    pub lesson_str: Option<String>,
    pub date: Option<String>,
    #[serde(rename = "workType")]
    pub work_type: Option<SourceId>,
}

#[derive(Debug, Deserialize)]
pub struct FinalMarksOfPerson {
    pub person: Option<SourceId>,
    #[serde(rename = "person_str")]
    pub person_str: Option<String>,
    #[serde(rename = "reportingPeriod")]
    pub reporting_period: Option<SourceId>,
    #[serde(rename = "reportingPeriod_str")]
    pub reporting_period_str: Option<String>,
    #[serde(default, rename = "per-subject-final-marks", deserialize_with = "read::list")]
    pub per_subject: Vec<SubjectFinalMark>,
}

#[derive(Debug, Deserialize)]
pub struct SubjectFinalMark {
    pub subject: Option<SourceId>,
    pub subject_str: Option<String>,
    #[serde(rename = "final-mark")]
    pub final_mark: Option<FinalMarkValue>,
}

#[derive(Debug, Deserialize)]
pub struct FinalMarkValue {
    #[serde(default, deserialize_with = "read::opt_text")]
    pub value: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// When it was set (school time), as a mark's `date`
    pub date: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub person: Option<SourceId>,
    #[serde(rename = "person_str")]
    pub person_str: Option<String>,
    pub lesson: Option<SourceId>,
    #[serde(rename = "lesson_str")]
    pub lesson_str: Option<String>,
    pub comment: Option<String>,
    pub status: Option<String>,
    pub created_date: Option<String>,
}

/// `persons/{p}/lesson-log-entries`: an object with the entries and their lessons.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonLog {
    #[serde(default, deserialize_with = "read::list")]
    pub log_entries: Vec<Box<serde_json::value::RawValue>>,
    #[serde(default, deserialize_with = "read::list")]
    pub lessons: Vec<Box<serde_json::value::RawValue>>,
}

/// A number read by [`read::opt_number`] as a small whole number (`parallel`, `number`).
pub fn small(n: Option<f64>) -> Option<u8> {
    n.filter(|v| v.fract() == 0.0 && (0.0..=255.0).contains(v)).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_twins_win_over_numbers_in_every_casing() {
        let p: PersonItem =
            serde_json::from_str(r#"{"id": 1, "id_str": "1750000000000000001", "firstName": "Анна"}"#).unwrap();
        assert_eq!(pick(&p.id_str, &p.id).as_deref(), Some("1750000000000000001"));
        let e: LogEntry = serde_json::from_str(r#"{"person": 1, "person_str": "7", "lesson": 2, "lesson_str": "8", "createdDate": "2025-09-01T10:00:00.123456"}"#).unwrap();
        assert_eq!(pick(&e.person_str, &e.person).as_deref(), Some("7"));
        assert_eq!(pick(&e.lesson_str, &e.lesson).as_deref(), Some("8"));
        let t: Teacher = serde_json::from_str(r#"{"Id": 5, "IdStr": "15", "LastName": "Петров"}"#).unwrap();
        assert_eq!(pick(&t.id_str, &t.id).as_deref(), Some("15"));
        let g: EduGroup =
            serde_json::from_str(r#"{"id": 3, "id_str": "3", "journalType": "Elective", "parentIds": [9]}"#).unwrap();
        assert_eq!(g.journaltype.as_deref(), Some("Elective"));
        assert_eq!(g.parent().as_deref(), Some("9"));
    }
}
