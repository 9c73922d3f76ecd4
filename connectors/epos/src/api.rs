//! ЭПОС.Школа answers as the source writes them (API.md): parsed leniently — unknown fields
//! ignored, optional fields optional, nullable lists nullable, ids as exact strings
//! ([`SourceId`] keeps all 64 bits), dates left as text for `ejgate_sdk::time` (the API mixes
//! `yyyy-MM-dd`, `dd.MM.yyyy`, `dd.MM.yyyy HH:mm`, `[y, m, d]` and local ISO date-times).

use ejgate_sdk::read;
use ejgate_sdk::time::SourceId;
use serde::{Deserialize, Deserializer};

/// A list that may come as `null`.
fn nullable_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// The error body: `{"code": N, "message": "..."}`.
#[derive(Debug, Deserialize)]
pub struct ApiError {
    pub code: Option<serde_json::Value>,
    pub message: Option<String>,
}

/// The text of the session-expired answer (ЭЖД = электронный журнал и дневник).
pub const SESSION_ENDED: &str = "Предыдущая сессия работы в ЭЖД завершена. Войдите в ЭЖД заново";

/// The profile types of a family session (SOURCES.md: every public client is a pupil's or a
/// parent's app); any other type is taken for staff (the documented assumption).
pub const FAMILY_PROFILE_TYPES: [&str; 2] = ["student", "parent"];

/// POST `lms/api/sessions`.
#[derive(Debug, Deserialize)]
pub struct Session {
    pub id: Option<SourceId>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub profiles: Vec<Profile>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Profile {
    pub id: SourceId,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub school_id: Option<SourceId>,
    pub school_shortname: Option<String>,
    #[serde(default)]
    pub is_default: bool,
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

/// A person: a teacher or a pupil profile (`core/api/teacher_profiles`,
/// `core/api/student_profiles`, `core/api/student_profiles/{id}`).
#[derive(Debug, Clone, Deserialize)]
pub struct PersonItem {
    pub id: SourceId,
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub middle_name: Option<String>,
    pub sex: Option<String>,
    pub birth_date: Option<String>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub memberships: Vec<Membership>,
    /// A pupil's current class (`class_unit{id, name, class_level_id}`, МЭШ shape).
    pub class_unit: Option<ClassUnit>,
    pub class_unit_id: Option<SourceId>,
    /// A pupil's groups (`groups[{id, name, subject_id}]`): his lessons are read by these.
    #[serde(default, deserialize_with = "nullable_vec")]
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Membership {
    pub unit_id: SourceId,
    #[serde(default)]
    pub active: bool,
    pub begin_date: Option<String>,
    pub end_date: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClassUnit {
    pub id: SourceId,
    pub name: Option<String>,
    pub class_level_id: Option<u8>,
    pub mentor_id: Option<SourceId>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    pub id: SourceId,
    pub name: Option<String>,
    pub class_unit_id: Option<SourceId>,
    pub subject_id: Option<SourceId>,
    pub group_type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct IdOnly {
    pub id: SourceId,
}

#[derive(Debug, Deserialize)]
pub struct ScheduleItem {
    pub id: SourceId,
    pub teacher_id: Option<SourceId>,
    pub replaced_teacher_id: Option<SourceId>,
    pub subject_id: Option<SourceId>,
    pub subject_name: Option<String>,
    pub group_id: Option<SourceId>,
    /// The lesson's own topic (тема урока); `null` or `""`: no topic.
    pub lesson_name: Option<String>,
    /// The section of the thematic plan the lesson belongs to (раздел), not its topic.
    pub topic_name: Option<String>,
    /// `[y, m, d]`
    #[serde(default, deserialize_with = "nullable_vec")]
    pub date: Vec<u32>,
    pub iso_date_time: Option<String>,
    pub study_ordinal: Option<u8>,
    #[serde(default)]
    pub is_cancelled: bool,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub homeworks_to_give: Vec<IdOnly>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub homeworks_to_verify: Vec<IdOnly>,
}

#[derive(Debug, Deserialize)]
pub struct StudentHomework {
    pub id: Option<SourceId>,
    pub created_at: Option<String>,
    pub homework_entry: Option<HomeworkEntry>,
}

#[derive(Debug, Deserialize)]
pub struct HomeworkEntry {
    pub id: Option<SourceId>,
    pub description: Option<String>,
    pub control_form: Option<ControlForm>,
    pub homework: Option<Homework>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub attachments: Vec<AttachmentItem>,
}

/// `homework_entry.attachments[]`.
#[derive(Debug, Deserialize)]
pub struct AttachmentItem {
    pub id: Option<SourceId>,
    pub file_file_name: Option<String>,
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ControlForm {
    pub id: Option<SourceId>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "read::opt_number")]
    pub weight: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct Homework {
    pub id: SourceId,
    #[serde(default)]
    pub is_class_room_job: bool,
    pub date_prepared_for: Option<String>,
    pub date_assigned_on: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Mark {
    pub id: SourceId,
    /// The value, a string: `"5"`, `"4+"` (a number is read as its text).
    #[serde(default, deserialize_with = "read::opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "read::opt_number")]
    pub weight: Option<f64>,
    pub grade_system_type: Option<String>,
    /// The lesson date, `dd.MM.yyyy`.
    pub date: Option<String>,
    /// `dd.MM.yyyy HH:mm`
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub teacher_id: Option<SourceId>,
    pub subject_id: Option<SourceId>,
    pub student_profile_id: Option<SourceId>,
    pub schedule_lesson_id: Option<SourceId>,
    pub homework_id: Option<SourceId>,
    /// The teacher's comment.
    pub comment: Option<String>,
    /// «Точка»: to be corrected by `point_date` (`dd.MM.yyyy`).
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
pub struct StudentProfile {
    pub id: Option<SourceId>,
    #[serde(default, deserialize_with = "nullable_vec", alias = "attendance")]
    pub attendances: Vec<AttendanceItem>,
}

#[derive(Debug, Deserialize)]
pub struct AttendanceItem {
    pub schedule_lesson_id: SourceId,
    /// The reason's id (МЭШ: 1 «н», 2 «б», …), through `mappings/epos/attendance.toml`.
    pub absence_reason_id: Option<SourceId>,
    pub comment: Option<String>,
    pub created_at: Option<String>,
}

/// `reports/api/progress/json`: no subject or period ids (SOURCES.md); joined by the
/// subject's name and the period's dates or name.
#[derive(Debug, Deserialize)]
pub struct ProgressSubject {
    pub subject_name: Option<String>,
    #[serde(default, deserialize_with = "nullable_vec")]
    pub periods: Vec<ProgressPeriod>,
}

#[derive(Debug, Deserialize)]
pub struct ProgressPeriod {
    pub name: Option<String>,
    /// `dd.MM.yyyy`
    pub start: Option<String>,
    pub end: Option<String>,
    /// `yyyy-MM-dd`
    pub start_iso: Option<String>,
    pub end_iso: Option<String>,
    /// A string or `null` (a number is read as its text).
    #[serde(default, deserialize_with = "read::opt_text")]
    pub avg_five: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub final_mark: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_lists_and_string_averages_parse() {
        let s: ScheduleItem = serde_json::from_str(
            r#"{"id": 1750000000000000123, "lesson_name": null, "topic_name": null, "date": [2025, 9, 1],
                "time": [8, 30, 0], "iso_date_time": "2025-09-01T08:30:00.000", "homeworks_to_give": null,
                "homeworks_to_verify": [{"id": 5}]}"#,
        )
        .unwrap();
        assert_eq!(s.id.0, "1750000000000000123");
        assert!(s.homeworks_to_give.is_empty());
        assert_eq!(s.homeworks_to_verify[0].id.0, "5");
        let p: Vec<ProgressSubject> = serde_json::from_str(
            r#"[{"subject_name": "Алгебра", "periods": []},
                {"subject_name": "Физика", "periods": [{"name": "1 четверть", "avg_five": "4.50", "final_mark": null}]}]"#,
        )
        .unwrap();
        assert!(p[0].periods.is_empty());
        assert_eq!(p[1].periods[0].avg_five.as_deref(), Some("4.50"));
        assert!(p[1].periods[0].final_mark.is_none());
    }
}
