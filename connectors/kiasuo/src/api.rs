//! The КИАСУО diary API's answers as the connector reads them (API.md is the contract).
//! Fields are lenient: ids arrive as numbers or strings ([`SourceId`]), optional fields
//! may be missing or `null`, and both the `slots` and the older `marks` form are accepted.

use ejgate_sdk::time::SourceId;
use serde::{Deserialize, Deserializer, Serialize};

/// `{"msg": "..."}`: the only JSON error shape the source is known to answer.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiError {
    pub msg: Option<String>,
}

/// POST `/diary/refresh` → the new pair. The refresh token rotates.
#[derive(Debug, Clone, Deserialize)]
pub struct RefreshAnswer {
    #[serde(rename = "accessToken")]
    pub access_token: String,
    #[serde(rename = "refreshToken")]
    pub refresh_token: String,
}

/// GET `/diary/api/user`.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: SourceId,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub parent: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub children: Vec<Child>,
}

/// A child of the account: with the operator's account (README.md), every pupil.
#[derive(Debug, Clone, Deserialize)]
pub struct Child {
    pub id: SourceId,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub middle_name: Option<String>,
    /// The class name («5А»).
    #[serde(default)]
    pub school_class: Option<String>,
    /// ASSUMPTION (API.md): the class id next to its name.
    #[serde(default)]
    pub school_class_id: Option<SourceId>,
    #[serde(default)]
    pub age: Option<serde_json::Value>,
}

/// GET `/diary/api/study_periods` → a list of these.
#[derive(Debug, Clone, Deserialize)]
pub struct StudyPeriod {
    pub id: SourceId,
    #[serde(default)]
    pub text: Option<String>,
    pub from: String,
    pub to: String,
}

/// GET `/diary/api/school_classes` → a list of these.
#[derive(Debug, Clone, Deserialize)]
pub struct SchoolClass {
    pub id: SourceId,
    pub name: String,
    #[serde(default)]
    pub ou: Option<String>,
    #[serde(default)]
    pub study_year: Option<String>,
}

/// GET `/diary/api/lesson_marks/{period}`.
#[derive(Debug, Clone, Deserialize)]
pub struct LessonMarks {
    #[serde(default, deserialize_with = "null_as_default")]
    pub lessons: Vec<SubjectMarks>,
}

/// One subject of `lesson_marks`; `id` is the subject's id (ASSUMPTION, API.md).
#[derive(Debug, Clone, Deserialize)]
pub struct SubjectMarks {
    pub id: SourceId,
    pub subject: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub slots: Vec<Slot>,
    /// The form before 2025-01.
    #[serde(default, deserialize_with = "null_as_default")]
    pub marks: Vec<Slot>,
}

/// A mark (or an attendance value «Н», «Б», «У», «О») on a lesson. The mark arrives as
/// `{"value": "5"}` (slots) or as a bare string (older `marks`).
#[derive(Debug, Clone, Deserialize)]
pub struct Slot {
    /// ASSUMPTION (API.md): the mark's id; attendance values have none.
    #[serde(default)]
    pub id: Option<SourceId>,
    /// ASSUMPTION (API.md): the lesson the slot belongs to.
    #[serde(default)]
    pub lesson_event_id: Option<SourceId>,
    pub lesson_date: String,
    #[serde(default)]
    pub mark: Option<MarkValue>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    pub remark: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl Slot {
    pub fn value(&self) -> Option<&str> {
        match self.mark.as_ref()? {
            MarkValue::Bare(s) => Some(s.as_str()),
            MarkValue::Object { value } => value.as_deref(),
        }
    }
}

/// `{"value": "5"}` or `"5"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MarkValue {
    Bare(String),
    Object {
        #[serde(default, deserialize_with = "string_or_number")]
        value: Option<String>,
    },
}

/// GET `/diary/api/schedule?year=&week=`.
#[derive(Debug, Clone, Deserialize)]
pub struct Schedule {
    #[serde(default, deserialize_with = "null_as_default")]
    pub schedule: Vec<LessonEvent>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub homeworks: Vec<HomeworkItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LessonEvent {
    pub lesson_event_id: SourceId,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub teacher: Option<String>,
    pub lesson_date: String,
    #[serde(default)]
    pub lesson_number: Option<u8>,
    #[serde(default)]
    pub theme: Option<String>,
    #[serde(default)]
    pub created_homework_id: Option<SourceId>,
    /// ASSUMPTION (API.md): `true` for a cancelled lesson; absent otherwise.
    #[serde(default)]
    pub cancelled: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HomeworkItem {
    pub id: SourceId,
    #[serde(default)]
    pub lesson_date: Option<String>,
    #[serde(default)]
    pub check_at: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

/// GET `/diary/api/student_marks/{classId}`.
#[derive(Debug, Clone, Deserialize)]
pub struct StudentMarks {
    #[serde(default, deserialize_with = "null_as_default")]
    pub lessons: Vec<FinalMarks>,
}

/// One subject's final marks: `marks` maps a mark type (a study period id, or `year`) to
/// the value, a number or a string. `id` is the subject id (ASSUMPTION, API.md).
#[derive(Debug, Clone, Deserialize)]
pub struct FinalMarks {
    pub id: SourceId,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub marks: std::collections::BTreeMap<String, serde_json::Value>,
}

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// A JSON value of `student_marks` as the text of a mark (`5` → «5»).
pub fn value_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) if s.trim().is_empty() => None,
        serde_json::Value::String(s) => Some(s.trim().to_string()),
        other => Some(other.to_string()),
    }
}

/// The `exp` (seconds since the epoch) of a JWT, read without checking the signature;
/// `None` when the token is not a JWT or has no `exp`.
pub fn jwt_exp(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64url_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_i64()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url.
pub fn base64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + 3);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Base64url with or without padding (standard `+/` accepted too).
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_mark_forms_and_big_ids_parse() {
        let new: LessonMarks = serde_json::from_str(
            r#"{"lessons":[{"id":1750000000000000123,"subject":"Алгебра","slots":[{"id":"1750000000000000999","lesson_date":"2025-09-02","mark":{"value":"5/4"},"updated_at":"2025-09-02T10:00:00"}],"averages":{"for_student":["4.57",5],"for_class":null}}]}"#,
        )
        .unwrap();
        assert_eq!(new.lessons[0].id.0, "1750000000000000123");
        assert_eq!(new.lessons[0].slots[0].value(), Some("5/4"));
        assert_eq!(new.lessons[0].slots[0].id.as_ref().unwrap().0, "1750000000000000999");
        let old: LessonMarks = serde_json::from_str(
            r#"{"lessons":[{"id":7,"subject":"Алгебра","marks":[{"lesson_date":"2024-09-02","mark":"Н","weight":1,"remark":null}]}]}"#,
        )
        .unwrap();
        assert_eq!(old.lessons[0].marks[0].value(), Some("Н"));
        let n: LessonMarks = serde_json::from_str(
            r#"{"lessons":[{"id":7,"subject":"x","slots":[{"lesson_date":"2024-09-02","mark":{"value":5}}]}]}"#,
        )
        .unwrap();
        assert_eq!(n.lessons[0].slots[0].value(), Some("5"));
    }

    #[test]
    fn jwt_exp_is_read_and_base64_round_trips() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"{\"exp\":1700000000}"] {
            assert_eq!(base64url_decode(&base64url_encode(data)).unwrap(), data);
        }
        let token = format!(
            "{}.{}.sig",
            base64url_encode(b"{\"alg\":\"HS256\"}"),
            base64url_encode(b"{\"sub\":\"1\",\"exp\":1700000123}")
        );
        assert_eq!(jwt_exp(&token), Some(1_700_000_123));
        assert_eq!(jwt_exp("0123456789abcdef"), None);
    }

    #[test]
    fn final_mark_values_are_text() {
        assert_eq!(value_text(&serde_json::json!(5)).as_deref(), Some("5"));
        assert_eq!(value_text(&serde_json::json!("осв")).as_deref(), Some("осв"));
        assert_eq!(value_text(&serde_json::json!(null)), None);
    }
}
