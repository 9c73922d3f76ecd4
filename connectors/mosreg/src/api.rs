//! «Моя школа» answers as the source writes them (API.md): parsed leniently — unknown fields
//! ignored, optional fields optional, nullable lists nullable, ids as exact strings
//! ([`SourceId`] keeps all 64 bits; contingent GUIDs stay strings), dates left as text for
//! `ejgate_sdk::time` (`YYYY-MM-DD`, `created_at` without zone, events with an offset).
//!
//! Wrapping differs per endpoint: `{payload}` (family marks, `subject_marks`),
//! `{total_count, response, errors}` (events), bare arrays (`profile_info`, `core/api/…`).

use ejgate_sdk::time::SourceId;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A list that may come as `null`.
fn nullable_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A value the API writes as a JSON string (`"5"`, `"4.57"`); a number is accepted too and
/// written back as its text, so a mark never changes its spelling between runs.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
        Some(other) => Some(other.to_string()),
    })
}

/// The session-expired message of the platform (ЭЖД = электронный журнал и дневник).
pub const SESSION_ENDED: &str = "Предыдущая сессия работы в ЭЖД завершена. Войдите в ЭЖД заново";

/// The plain-text body of a failed token refresh (HTTP 499).
pub const REFRESH_FAILED: &str = "Something went wrong";

/// An error body. The shape is not confirmed (SOURCES.md): `{type, description, details}`
/// or `{code, message}`; both are read.
#[derive(Debug, Default, Deserialize)]
pub struct ApiError {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub description: Option<String>,
    pub details: Option<serde_json::Value>,
    pub code: Option<serde_json::Value>,
    pub message: Option<String>,
}

impl ApiError {
    /// The human message, whichever shape carried it.
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.kind {
            parts.push(t.clone());
        }
        if let Some(c) = &self.code {
            parts.push(format!("code {}", c.as_str().map(str::to_string).unwrap_or_else(|| c.to_string())));
        }
        if let Some(d) = self.description.as_ref().or(self.message.as_ref()) {
            parts.push(d.clone());
        }
        parts.join(": ")
    }

    /// Whether the body says the session (the JWT) is over.
    pub fn is_session_end(&self) -> bool {
        let text = format!(
            "{} {} {}",
            self.description.as_deref().unwrap_or(""),
            self.message.as_deref().unwrap_or(""),
            self.kind.as_deref().unwrap_or("")
        )
        .to_lowercase();
        text.contains("сессия") || text.contains("войдите") || text.contains("token") || text.contains("unauthorized")
    }
}

/// `api/family/web/v1/profile` (mobile twin `family/mobile/v1/profile`):
/// `{profile, children, hash}`.
#[derive(Debug, Clone, Deserialize)]
pub struct FamilyProfile {
    pub profile: Option<ProfileInfo>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub children: Vec<Child>,
}

/// A child of the family profile: `id` is the student id of the marks calls,
/// `contingent_guid` the person id of events.
#[derive(Debug, Clone, Deserialize)]
pub struct Child {
    pub id: SourceId,
    pub contingent_guid: Option<String>,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub birth_date: Option<String>,
    pub sex: Option<String>,
    pub class_name: Option<String>,
    pub class_unit_id: Option<SourceId>,
    pub class_level_id: Option<u8>,
    pub school: Option<ChildSchool>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub groups: Vec<ChildGroup>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChildSchool {
    pub id: Option<SourceId>,
    pub name: Option<String>,
    pub short_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChildGroup {
    pub id: SourceId,
    pub name: Option<String>,
    pub subject_id: Option<SourceId>,
    #[serde(default)]
    pub is_fake: Option<bool>,
}

/// `acl/api/users/profile_info`: a bare array.
#[derive(Debug, Clone, Deserialize)]
pub struct ProfileInfo {
    pub id: SourceId,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The staff profile's school (assumption).
    pub school_id: Option<SourceId>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AcademicYear {
    pub id: SourceId,
    pub name: Option<String>,
    pub begin_date: Option<String>,
    pub end_date: Option<String>,
    #[serde(default)]
    pub current_year: bool,
}

#[derive(Debug, Deserialize)]
pub struct School {
    pub id: Option<SourceId>,
    pub name: Option<String>,
    pub short_name: Option<String>,
    pub municipality_name: Option<String>,
    pub city: Option<String>,
    pub time_zone: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PeriodItem {
    pub id: SourceId,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub number: Option<u8>,
    pub begin_date: Option<String>,
    pub end_date: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Subject {
    pub id: SourceId,
    pub name: Option<String>,
    pub knowledge_area: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ClassUnit {
    pub id: SourceId,
    pub name: Option<String>,
    pub class_level_id: Option<u8>,
    pub mentor_id: Option<SourceId>,
}

#[derive(Debug, Deserialize)]
pub struct Group {
    pub id: SourceId,
    pub name: Option<String>,
    pub class_unit_id: Option<SourceId>,
    pub subject_id: Option<SourceId>,
    pub group_type: Option<String>,
}

/// `core/api/profiles`: a bare array of these.
#[derive(Debug, Deserialize)]
pub struct Profile {
    pub id: SourceId,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub user_id: Option<SourceId>,
    /// The contingent GUID: the person id events are asked for with.
    pub person_id: Option<String>,
    pub agree_pers_data: Option<bool>,
    pub user: Option<User>,
    pub class_unit: Option<Named>,
    /// The pupil's class and group memberships (assumption: staff view).
    #[serde(default, deserialize_with = "nullable_vec")]
    pub memberships: Vec<Membership>,
}

#[derive(Debug, Deserialize)]
pub struct User {
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    /// Assumption (the family profile's `children[]` carry both).
    pub sex: Option<String>,
    pub birth_date: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Named {
    pub id: SourceId,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Membership {
    pub unit_id: SourceId,
    #[serde(default)]
    pub active: bool,
    pub begin_date: Option<String>,
    pub end_date: Option<String>,
}

/// `api/eventcalendar/v1/api/events`. Events are asked for per pupil, so every lesson
/// arrives once per pupil of its class with the same subject, topic and homework; only the
/// marks and the absence differ. The answer is read in one pass ([`Event`]: the pupil's part
/// typed, the lesson's part kept raw and read once per lesson); when that fails, the
/// connector reads it again as [`RawEvents`], one event at a time, and skips the unreadable
/// ones with a warning.
#[derive(Debug, Deserialize)]
pub struct Events<'a> {
    pub total_count: Option<u64>,
    #[serde(borrow, default)]
    pub response: Option<Vec<Event<'a>>>,
    pub errors: Option<serde_json::Value>,
}

/// The events answer with each event as its raw JSON (borrowed from the body): the slow
/// path, for an answer in which some event does not read as an [`Event`].
#[derive(Debug, Deserialize)]
pub struct RawEvents<'a> {
    #[serde(borrow, default)]
    pub response: Option<Vec<&'a RawValue>>,
}

/// One pupil's copy of an event. The pupil's part (marks, absence) is read in every copy;
/// the lesson's part is the same in every copy, so its fields are only delimited here
/// (borrowed, no allocation) and read by [`Event::lesson`] for the first copy of a lesson.
/// The homework is kept raw too: a copy whose homework differs from the first copy's (an
/// individual assignment) is read again, the others are not.
#[derive(Debug, Deserialize)]
pub struct Event<'a> {
    /// The lesson's id (the same in every pupil's copy).
    pub id: SourceId,
    #[serde(default)]
    pub is_missed_lesson: bool,
    pub absence_reason_id: Option<SourceId>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub marks: Vec<EventMark>,
    #[serde(borrow, default)]
    pub homework: Option<&'a RawValue>,
    #[serde(borrow, default)]
    source: Option<&'a RawValue>,
    #[serde(borrow, default)]
    start_at: Option<&'a RawValue>,
    #[serde(borrow, default)]
    finish_at: Option<&'a RawValue>,
    #[serde(borrow, default)]
    subject_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    subject_name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    lesson_theme: Option<&'a RawValue>,
    #[serde(borrow, default)]
    lesson_name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    group_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cancelled: Option<&'a RawValue>,
    #[serde(borrow, default)]
    replaced_teacher_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    teacher_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    lesson_number: Option<&'a RawValue>,
    #[serde(borrow, default)]
    created_at: Option<&'a RawValue>,
    #[serde(borrow, default)]
    updated_at: Option<&'a RawValue>,
}

impl Event<'_> {
    /// The lesson's part of this copy; the error names the field that does not read.
    pub fn lesson(&self) -> Result<LessonEvent, String> {
        fn field<T: serde::de::DeserializeOwned>(name: &str, raw: Option<&RawValue>) -> Result<Option<T>, String> {
            raw.map(|r| serde_json::from_str::<Option<T>>(r.get()).map_err(|e| format!("field `{name}`: {e}")))
                .transpose()
                .map(Option::flatten)
        }
        Ok(LessonEvent {
            source: field("source", self.source)?,
            start_at: field("start_at", self.start_at)?,
            finish_at: field("finish_at", self.finish_at)?,
            subject_id: field("subject_id", self.subject_id)?,
            subject_name: field("subject_name", self.subject_name)?,
            lesson_theme: field("lesson_theme", self.lesson_theme)?,
            lesson_name: field("lesson_name", self.lesson_name)?,
            group_id: field("group_id", self.group_id)?,
            cancelled: field("cancelled", self.cancelled)?.unwrap_or(false),
            replaced_teacher_id: field("replaced_teacher_id", self.replaced_teacher_id)?,
            teacher_id: field("teacher_id", self.teacher_id)?,
            lesson_number: field("lesson_number", self.lesson_number)?,
            homework: field("homework", self.homework)?,
            created_at: field("created_at", self.created_at)?,
            updated_at: field("updated_at", self.updated_at)?,
        })
    }
}

/// The lesson's part of an event: the same for every pupil who has the lesson.
#[derive(Debug, Deserialize)]
pub struct LessonEvent {
    pub source: Option<String>,
    /// With an offset: `2025-09-01T08:30:00+03:00`.
    pub start_at: Option<String>,
    pub finish_at: Option<String>,
    pub subject_id: Option<SourceId>,
    pub subject_name: Option<String>,
    pub lesson_theme: Option<String>,
    pub lesson_name: Option<String>,
    /// The class or group of the lesson.
    pub group_id: Option<SourceId>,
    #[serde(default)]
    pub cancelled: bool,
    pub replaced_teacher_id: Option<SourceId>,
    /// Assumption (staff view): the lesson's teacher and its number in the day.
    pub teacher_id: Option<SourceId>,
    pub lesson_number: Option<u8>,
    pub homework: Option<EventHomework>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct EventHomework {
    pub total_count: Option<u64>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub entries: Vec<HomeworkEntry>,
}

#[derive(Debug, Deserialize)]
pub struct HomeworkEntry {
    pub homework_entry_id: SourceId,
    pub date_assigned_on: Option<String>,
    pub date_prepared_for: Option<String>,
    pub description: Option<String>,
    /// Assumption (the ЭПОС platform's field): a classroom job, not a homework.
    #[serde(default)]
    pub is_class_room_job: bool,
    /// Assumption: the control form of a classroom job.
    pub control_form: Option<ControlForm>,
    /// Assumption: when the entry was made (`yyyy-MM-ddTHH:mm:ss`, no zone).
    pub created_at: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ControlForm {
    pub id: Option<SourceId>,
    pub name: Option<String>,
    pub weight: Option<f64>,
}

/// A mark inside an event.
#[derive(Debug, Deserialize)]
pub struct EventMark {
    pub id: SourceId,
    /// A JSON **string**: `"5"`, `"4+"`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub value: Option<String>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub values: Vec<GradeValue>,
    #[serde(default, deserialize_with = "ejgate_sdk::read::opt_number")]
    pub weight: Option<f64>,
    pub control_form_name: Option<String>,
    /// Assumption: the classroom job (homework entry) the mark is for.
    pub homework_entry_id: Option<SourceId>,
    /// «Точка»: to be corrected by `point_date`.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub is_point: bool,
    pub point_date: Option<String>,
}

/// A flag a source may send as `true`, `null`, `1` or `"true"`.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Bool(b)) => b,
        Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|v| v != 0.0),
        Some(serde_json::Value::String(s)) => matches!(s.trim().to_lowercase().as_str(), "true" | "1"),
        _ => false,
    })
}

#[derive(Debug, Deserialize)]
pub struct GradeValue {
    pub name: Option<String>,
    pub grade_system_id: Option<SourceId>,
    pub grade_system_type: Option<String>,
    pub nmax: Option<f64>,
    pub grade: Option<Grade>,
}

#[derive(Debug, Deserialize)]
pub struct Grade {
    #[serde(default, deserialize_with = "lenient_string")]
    pub origin: Option<String>,
    pub five: Option<f64>,
    pub hundred: Option<f64>,
}

/// `{"payload": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Payload<T> {
    #[serde(default = "Vec::new", deserialize_with = "nullable_vec")]
    pub payload: Vec<T>,
}

/// `api/family/web/v1/marks` (and its mobile twin).
#[derive(Debug, Deserialize)]
pub struct FamilyMark {
    pub id: SourceId,
    #[serde(default, deserialize_with = "lenient_string")]
    pub value: Option<String>,
    pub weight: Option<f64>,
    pub control_form_name: Option<String>,
    /// `yyyy-MM-ddTHH:mm:ss`, no zone.
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    /// `YYYY-MM-DD`: the lesson day.
    pub date: Option<String>,
    pub subject_id: Option<SourceId>,
    /// The teacher's comment (events say only `comment_exists`).
    pub comment: Option<String>,
}

/// `family/mobile/v1/subject_marks`.
#[derive(Debug, Deserialize)]
pub struct SubjectMarks {
    pub subject_id: Option<SourceId>,
    pub subject_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub average: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub year_mark: Option<String>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub periods: Vec<SubjectPeriod>,
}

#[derive(Debug, Deserialize)]
pub struct SubjectPeriod {
    pub title: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub start_iso: Option<String>,
    pub end_iso: Option<String>,
    /// The average, a string.
    #[serde(default, deserialize_with = "lenient_string")]
    pub value: Option<String>,
    /// The period mark, a string or `null`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub fixed_value: Option<String>,
    pub count: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mark_values_are_strings_and_numbers_are_tolerated() {
        let m: EventMark = serde_json::from_str(
            r#"{"id": 1750000000000000123, "value": "4+", "values": [{"name": "4+", "grade_system_type": "five",
                "nmax": 5, "grade": {"origin": "4+", "five": 4.25, "hundred": 85.0}}], "weight": 2,
                "control_form_name": "Контрольная работа", "comment_exists": false}"#,
        )
        .unwrap();
        assert_eq!(m.id.0, "1750000000000000123");
        assert_eq!(m.value.as_deref(), Some("4+"));
        assert_eq!(m.values[0].grade.as_ref().unwrap().five, Some(4.25));
        let m: EventMark = serde_json::from_str(r#"{"id": "7", "value": 5, "values": null}"#).unwrap();
        assert_eq!(m.value.as_deref(), Some("5"));
        assert!(m.values.is_empty());
    }

    #[test]
    fn each_endpoint_keeps_its_wrapping() {
        let e: Events = serde_json::from_str(
            r#"{"total_count": 1, "response": [{"id": 5, "start_at": "2025-09-01T08:30:00+03:00",
                "homework": {"entries": [{"homework_entry_id": 9, "description": "№ 5"}]}, "marks": null}],
                "errors": null}"#,
        )
        .unwrap();
        let event = &e.response.as_ref().unwrap()[0];
        let lesson = event.lesson().unwrap();
        assert_eq!(lesson.homework.as_ref().unwrap().entries[0].homework_entry_id.0, "9");
        assert_eq!(lesson.start_at.as_deref(), Some("2025-09-01T08:30:00+03:00"));
        assert!(!lesson.cancelled && lesson.subject_id.is_none());
        assert_eq!(event.id.0, "5");
        assert!(event.marks.is_empty());
        let homework: EventHomework = serde_json::from_str(event.homework.unwrap().get()).unwrap();
        assert_eq!(homework.entries[0].description.as_deref(), Some("№ 5"));
        let none: Events = serde_json::from_str(r#"{"response": null}"#).unwrap();
        assert!(none.response.is_none());
        let p: Payload<SubjectMarks> = serde_json::from_str(
            r#"{"payload": [{"subject_id": 3, "average": "4.57", "year_mark": null,
                "periods": [{"start_iso": "2025-09-01", "end_iso": "2025-10-24", "value": "4.50", "fixed_value": "5"}]}]}"#,
        )
        .unwrap();
        assert_eq!(p.payload[0].periods[0].fixed_value.as_deref(), Some("5"));
        assert!(p.payload[0].year_mark.is_none());
        let bare: Vec<ProfileInfo> =
            serde_json::from_str(r#"[{"id": 1, "type": "school_admin", "school_id": 2}]"#).unwrap();
        assert_eq!(bare[0].school_id.as_ref().unwrap().0, "2");
        assert!(
            serde_json::from_str::<Payload<FamilyMark>>(r#"[{"id": 1}]"#).is_err(),
            "a bare array is not a payload"
        );
    }

    #[test]
    fn both_error_shapes_are_read() {
        let a: ApiError = serde_json::from_str(&format!(
            r#"{{"type": "authorization", "description": "{SESSION_ENDED}", "details": null}}"#
        ))
        .unwrap();
        assert!(a.is_session_end());
        assert!(a.text().contains("Войдите в ЭЖД заново"));
        let b: ApiError = serde_json::from_str(r#"{"code": 400, "message": "Неверный параметр begin_date"}"#).unwrap();
        assert!(!b.is_session_end());
        assert_eq!(b.text(), "code 400: Неверный параметр begin_date");
    }
}
