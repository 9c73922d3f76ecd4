//! The КИАСУО diary API's answers as the connector reads them (API.md is the contract).
//! Fields are lenient: ids arrive as numbers or strings ([`SourceId`]), optional fields
//! may be missing or `null`, and both the `slots` and the older `marks` form are accepted.

use ejgate_sdk::read;
use ejgate_sdk::time::SourceId;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

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

/// GET `/diary/api/user`. A parent's account lists its children; a pupil's has none and
/// is the pupil (ASSUMPTION, API.md: its own names, when given, are read from the top level).
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: SourceId,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    pub parent: bool,
    /// Read one by one ([`read::each`]): one unreadable child is skipped, not the account.
    #[serde(default, deserialize_with = "read::list")]
    pub children: Vec<Box<RawValue>>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub middle_name: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub school_class: Option<String>,
}

/// A child of the account.
#[derive(Debug, Clone, Deserialize)]
pub struct Child {
    pub id: SourceId,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub middle_name: Option<String>,
    /// The class name («5А»).
    #[serde(default, deserialize_with = "read::opt_text")]
    pub school_class: Option<String>,
    /// ASSUMPTION (API.md): the class id next to its name; without it the class is found by
    /// name in `school_classes`.
    #[serde(default)]
    pub school_class_id: Option<SourceId>,
}

/// GET `/diary/api/study_periods` → a list of these.
#[derive(Debug, Clone, Deserialize)]
pub struct StudyPeriod {
    pub id: SourceId,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub text: Option<String>,
    pub from: String,
    pub to: String,
}

/// GET `/diary/api/school_classes` → a list of these.
#[derive(Debug, Clone, Deserialize)]
pub struct SchoolClass {
    pub id: SourceId,
    #[serde(deserialize_with = "read::text")]
    pub name: String,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub ou: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub study_year: Option<String>,
}

/// A list answer whose elements are read one by one.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct RawList(#[serde(deserialize_with = "read::list")] pub Vec<Box<RawValue>>);

/// GET `/diary/api/lesson_marks/{period}`. `averages` (pairs like `["4.57", 5]`, or
/// `null`) are not read.
#[derive(Debug, Clone, Deserialize)]
pub struct LessonMarks {
    #[serde(default, deserialize_with = "read::list")]
    pub lessons: Vec<Box<RawValue>>,
}

/// One subject of `lesson_marks`. Its slots are read one by one.
#[derive(Debug, Clone, Deserialize)]
pub struct SubjectMarks {
    /// The subject's id (ASSUMPTION, API.md; the TypeScript library has it, the Go bot does
    /// not read it): without it the subject is known by its name.
    #[serde(default)]
    pub id: Option<SourceId>,
    #[serde(deserialize_with = "read::text")]
    pub subject: String,
    #[serde(default, deserialize_with = "read::list")]
    pub slots: Vec<Box<RawValue>>,
    /// The form before 2025-01.
    #[serde(default, deserialize_with = "read::list")]
    pub marks: Vec<Box<RawValue>>,
}

/// A mark (or an attendance value «Н», «Б», «У», «О») on a lesson: in `lesson_marks`
/// (`slots`, older `marks`) and in the schedule's lessons. The mark arrives as
/// `{"value": "5"}` (slots) or bare (older `marks`); numbers may come as strings.
#[derive(Debug, Clone, Deserialize)]
pub struct Slot {
    /// ASSUMPTION (API.md): the mark's id; the public clients show none.
    #[serde(default)]
    pub id: Option<SourceId>,
    /// ASSUMPTION (API.md): the lesson the slot belongs to; the public clients show none.
    #[serde(default)]
    pub lesson_event_id: Option<SourceId>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub lesson_date: Option<String>,
    #[serde(default)]
    pub mark: Option<MarkValue>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub text: Option<String>,
    /// Rails writes decimals as strings: `"1.0"`.
    #[serde(default, deserialize_with = "read::opt_number")]
    pub weight: Option<f64>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub remark: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub updated_at: Option<String>,
}

impl Slot {
    /// The value as written («5», «5/4», «Н»), trimmed; `None` when empty.
    pub fn value(&self) -> Option<&str> {
        let v = match self.mark.as_ref()? {
            MarkValue::Bare(s) => s.as_str(),
            MarkValue::Object { value } => value.as_deref()?,
        };
        Some(v.trim()).filter(|v| !v.is_empty())
    }

    /// The text that goes with it: `text` (slots) or `remark` (older marks).
    pub fn comment(&self) -> Option<String> {
        self.text.clone().or_else(|| self.remark.clone()).map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
    }
}

/// `{"value": "5"}`, `"5"` or `5`.
#[derive(Debug, Clone, Serialize)]
pub enum MarkValue {
    Bare(String),
    Object { value: Option<String> },
}

impl<'de> Deserialize<'de> for MarkValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Object {
            #[serde(default, deserialize_with = "read::opt_text")]
            value: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Object(Object),
            #[serde(deserialize_with = "read::text")]
            Bare(String),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Object(o) => MarkValue::Object { value: o.value },
            Raw::Bare(s) => MarkValue::Bare(s),
        })
    }
}

/// GET `/diary/api/schedule?year=&week=`: lessons and homework read one by one.
#[derive(Debug, Clone, Deserialize)]
pub struct Schedule {
    #[serde(default, deserialize_with = "read::list")]
    pub schedule: Vec<Box<RawValue>>,
    #[serde(default, deserialize_with = "read::list")]
    pub homeworks: Vec<Box<RawValue>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LessonEvent {
    pub lesson_event_id: SourceId,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub teacher: Option<String>,
    pub lesson_date: String,
    #[serde(default, deserialize_with = "read::opt_number")]
    pub lesson_number: Option<f64>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub theme: Option<String>,
    /// An id, or (the TypeScript library's model) the homework object.
    #[serde(default)]
    pub created_homework_id: Option<SourceId>,
    /// ASSUMPTION (API.md): `true` for a cancelled lesson; absent otherwise.
    #[serde(default, deserialize_with = "flag")]
    pub cancelled: bool,
    /// The pupil's marks and attendance on this lesson (older form: `marks`).
    #[serde(default, deserialize_with = "read::list")]
    pub slots: Vec<Box<RawValue>>,
    #[serde(default, deserialize_with = "read::list")]
    pub marks: Vec<Box<RawValue>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HomeworkItem {
    pub id: SourceId,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub lesson_date: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub check_at: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub text: Option<String>,
    /// `[{url (relative to the host), title, …}]`
    #[serde(default, deserialize_with = "read::list")]
    pub files: Vec<Link>,
    /// `[{url, title}]`
    #[serde(default, deserialize_with = "read::list")]
    pub links: Vec<Link>,
}

/// A homework file or link.
#[derive(Debug, Clone, Deserialize)]
pub struct Link {
    #[serde(default, deserialize_with = "read::opt_text")]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub name: Option<String>,
}

/// GET `/diary/api/student_marks/{classId}`: final marks.
#[derive(Debug, Clone, Deserialize)]
pub struct StudentMarks {
    #[serde(default, deserialize_with = "read::list")]
    pub lessons: Vec<Box<RawValue>>,
    /// What each key of `marks` is (a period's or the year's mark), by name.
    #[serde(default, deserialize_with = "read::list")]
    pub standard_mark_type: Vec<Box<RawValue>>,
}

/// One subject's final marks: `marks` maps a `standard_mark_type` id to the value, a
/// number or a string («осв»).
#[derive(Debug, Clone, Deserialize)]
pub struct FinalMarks {
    /// The subject's id (ASSUMPTION, API.md); without it the subject is known by its name.
    #[serde(default)]
    pub id: Option<SourceId>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub marks: std::collections::BTreeMap<String, serde_json::Value>,
}

/// A kind of final mark: `{id, text, short_text, order_by}` (older answers: `name`).
#[derive(Debug, Clone, Deserialize)]
pub struct MarkType {
    pub id: SourceId,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub text: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "read::opt_text")]
    pub short_text: Option<String>,
}

impl MarkType {
    pub fn label(&self) -> Option<&str> {
        self.text.as_deref().or(self.name.as_deref()).or(self.short_text.as_deref()).map(str::trim)
    }
}

/// `true`/`false`, or `1`/`0`, `"true"`; `null` is `false`.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Bool(b)) => b,
        Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|v| v != 0.0),
        Some(serde_json::Value::String(s)) => matches!(s.trim(), "true" | "1" | "t"),
        _ => false,
    })
}

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
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

    fn slots(json: &str) -> (Vec<Slot>, Vec<read::Skipped>) {
        let answer: LessonMarks = serde_json::from_str(json).unwrap();
        let mut skipped = Vec::new();
        let subjects: Vec<SubjectMarks> = read::each("GET lesson_marks/1", &answer.lessons, &mut skipped);
        let mut out = Vec::new();
        for s in &subjects {
            out.extend(read::each::<Slot>("GET lesson_marks/1", &s.slots, &mut skipped));
            out.extend(read::each::<Slot>("GET lesson_marks/1", &s.marks, &mut skipped));
        }
        (out, skipped)
    }

    #[test]
    fn both_mark_forms_string_numbers_and_big_ids_parse() {
        let answer: LessonMarks = serde_json::from_str(
            r#"{"lessons":[{"id":1750000000000000123,"subject":"Алгебра","slots":[{"lesson_date":"2025-09-02","mark":{"value":"5/4"},"text":"Контрольная","updated_at":"2025-09-02T10:00:00+07:00"}],"averages":{"for_student":["4.57",5],"for_class":null}}]}"#,
        )
        .unwrap();
        let mut skipped = Vec::new();
        let subjects: Vec<SubjectMarks> = read::each("x", &answer.lessons, &mut skipped);
        assert_eq!(subjects[0].id.as_ref().unwrap().0, "1750000000000000123");
        let (new, skipped) = slots(
            r#"{"lessons":[{"subject":"Алгебра","slots":[{"lesson_date":"2025-09-02","mark":{"value":"5/4"},"text":"Контрольная"}],"averages":{"for_student":["4.57",5]}}]}"#,
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!((new[0].value(), new[0].comment().as_deref()), (Some("5/4"), Some("Контрольная")));
        let (old, skipped) = slots(
            r#"{"lessons":[{"id":7,"subject":"Алгебра","marks":[{"lesson_date":"2024-09-02","mark":"Н","weight":"1.0","remark":"ОРВИ","slot":{"text":"x"}},{"lesson_date":"2024-09-03","mark":"4","weight":2}]}]}"#,
        );
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!((old[0].value(), old[0].weight, old[0].comment().as_deref()), (Some("Н"), Some(1.0), Some("ОРВИ")));
        assert_eq!((old[1].value(), old[1].weight), (Some("4"), Some(2.0)));
        let (n, _) =
            slots(r#"{"lessons":[{"id":7,"subject":"x","slots":[{"lesson_date":"2024-09-02","mark":{"value":5}}]}]}"#);
        assert_eq!(n[0].value(), Some("5"));
    }

    #[test]
    fn one_unreadable_slot_is_skipped_with_its_field_and_the_others_are_kept() {
        let (read, skipped) = slots(
            r#"{"lessons":[{"subject":"Физика","marks":[{"lesson_date":"2024-09-02","mark":"5","weight":"тяжёлый"},{"lesson_date":"2024-09-03","mark":"4","weight":"0.5"}]}]}"#,
        );
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].weight, Some(0.5));
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].field, "weight");
        assert!(skipped[0].excerpt.contains("тяжёлый"));
    }

    #[test]
    fn schedule_lessons_homework_and_final_marks_parse_in_the_clients_forms() {
        let s: Schedule = serde_json::from_str(
            r##"{"schedule":[{"lesson_event_id":"88001","subject":"Физика","lesson_date":"2025-09-02","lesson_number":"3","created_homework_id":{"id":5},"homework_to_check_ids":[4],"slots":[{"lesson_date":"2025-09-02","mark":{"value":"Б"}}],"color":"#fff"}],"homeworks":[{"id":5,"lesson_date":"2025-09-02","check_at":"2025-09-04","text":"§5","files":[{"url":"/uploads/hw/5/task.pdf","title":"task.pdf"}],"links":[{"url":"https://example.org/a","title":"Видео"}]}]}"##,
        )
        .unwrap();
        let mut skipped = Vec::new();
        let e: Vec<LessonEvent> = read::each("x", &s.schedule, &mut skipped);
        assert_eq!((e[0].lesson_event_id.0.as_str(), e[0].lesson_number), ("88001", Some(3.0)));
        assert_eq!(e[0].created_homework_id.as_ref().unwrap().0, "5");
        let h: Vec<HomeworkItem> = read::each("x", &s.homeworks, &mut skipped);
        assert_eq!(h[0].files[0].url.as_deref(), Some("/uploads/hw/5/task.pdf"));
        assert_eq!(h[0].links[0].title.as_deref(), Some("Видео"));
        assert!(skipped.is_empty(), "{skipped:?}");
        let f: StudentMarks = serde_json::from_str(
            r##"{"lessons":[{"id":3,"subject":"Физика","color":"#fff","marks":{"17":5,"18":"осв"}}],"standard_mark_type":[{"id":17,"order_by":1,"text":"1 четверть","short_text":"1 ч"},{"id":18,"text":"Годовая"}]}"##,
        )
        .unwrap();
        let types: Vec<MarkType> = read::each("x", &f.standard_mark_type, &mut skipped);
        assert_eq!(types.iter().map(|t| t.label().unwrap()).collect::<Vec<_>>(), ["1 четверть", "Годовая"]);
        let lessons: Vec<FinalMarks> = read::each("x", &f.lessons, &mut skipped);
        assert_eq!(value_text(&lessons[0].marks["17"]).as_deref(), Some("5"));
        assert_eq!(value_text(&lessons[0].marks["18"]).as_deref(), Some("осв"));
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
