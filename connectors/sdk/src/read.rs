//! Tolerant reading of source answers (issue #14, item 2): the places where the sources and
//! their public clients disagree are read in every form seen, and a record that still cannot
//! be read is skipped with a warning — never a failed run, never a silent loss.
//!
//! - [`SourceId`](crate::time::SourceId) reads an id from a number, a string or an object
//!   that carries it (`{"id": 1, "id_str": "1", "name": …}`): Dnevnik's typed clients give
//!   `group`, `person` and `subjects[]` as objects where our first reading expected ids.
//! - [`Number`] and the `number`/`opt_number` field readers take a number or a string
//!   (`"1.0"`, `"4,5"`): Rails writes decimals as strings (КИАСУО), МЭШ sends averages and
//!   mark values as strings.
//! - [`each`] reads the elements of a JSON array one at a time: an element that does not
//!   parse becomes a [`Skipped`] naming the endpoint, the field (the path inside the
//!   element, from `serde_path_to_error`) and an excerpt of the element; the others are kept.
//!
//! The engine counts the skipped records per stream and fails the run when a stream's
//! skipped share passes its threshold (a source whose shape we do not read at all must not
//! look like an empty school).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// At most this many characters of a skipped element are quoted in its warning.
const EXCERPT_CHARS: usize = 160;

/// A source record that could not be read and was left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The request it came from (`GET edu-groups/{g}/marks`).
    pub endpoint: String,
    /// Where in the record the reading failed (`students[3].person`, `weight`), or `-`.
    pub field: String,
    /// What was wrong (serde's message, or the connector's own).
    pub reason: String,
    /// The start of the record as the source sent it.
    pub excerpt: String,
}

impl Skipped {
    pub fn new(endpoint: &str, field: &str, reason: impl Into<String>, excerpt: &str) -> Skipped {
        Skipped { endpoint: endpoint.into(), field: field.into(), reason: reason.into(), excerpt: excerpt_of(excerpt) }
    }
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: a record was skipped: field `{}`: {}; the record: {}",
            self.endpoint, self.field, self.reason, self.excerpt
        )
    }
}

/// The first [`EXCERPT_CHARS`] characters of `text` (whole characters: source texts are
/// Cyrillic, and a cut inside a character would panic), with `…` when cut.
pub fn excerpt_of(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Reads one JSON value into `T` (which may borrow from it); on failure says where inside
/// the value it failed.
pub fn one<'a, T: Deserialize<'a>>(endpoint: &str, json: &'a str) -> Result<T, Skipped> {
    let mut de = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path.is_empty() || path == "." { "-".to_string() } else { path };
        Skipped::new(endpoint, &field, e.into_inner().to_string(), json)
    })
}

/// Reads every element of a JSON array into `T` on its own: the ones that parse are
/// returned in order, the others are pushed to `skipped`.
pub fn each<T: DeserializeOwned>(endpoint: &str, items: &[Box<RawValue>], skipped: &mut Vec<Skipped>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match one(endpoint, item.get()) {
            Ok(v) => out.push(v),
            Err(s) => skipped.push(s),
        }
    }
    out
}

/// A number a source may send as a JSON number or as a string (`"1.0"`, `"4,5"`, `" 5 "`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Serialize)]
pub struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number (or a string holding one)")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Number, E> {
                parse_number(v).map(Number).ok_or_else(|| E::custom(format!("«{}» is not a number", excerpt_of(v))))
            }
        }
        d.deserialize_any(V)
    }
}

/// A decimal written by a person or a Rails server: `1`, `1.0`, `4,5`, ` -2 `. Not `NaN`,
/// not `inf`, not empty.
pub fn parse_number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b',' | b'-' | b'+' | b'e' | b'E')) {
        return None;
    }
    s.replace(',', ".").parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `#[serde(deserialize_with = "read::number")]`: a number or a string holding one.
pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Number::deserialize(d).map(|n| n.0)
}

/// `#[serde(default, deserialize_with = "read::opt_number")]`: a number, a string holding
/// one, or nothing (`null`, `""`, a blank string).
pub fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(Number),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Num(n)) => Ok(Some(n.0)),
        Some(Raw::Text(t)) if t.trim().is_empty() => Ok(None),
        Some(Raw::Text(t)) => Err(serde::de::Error::custom(format!("«{}» is not a number", excerpt_of(&t)))),
    }
}

/// `#[serde(default, deserialize_with = "read::text")]`: a text a source may send as a
/// string or as a number (a mark `value` of `5` where clients expect `"5"`); `null` is empty.
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(opt_text(d)?.unwrap_or_default())
}

/// `#[serde(default, deserialize_with = "read::opt_text")]`: a string or a number as text,
/// or nothing.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Int(i64),
        Uint(u64),
        Float(f64),
        Bool(bool),
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|r| match r {
        Raw::Text(t) => t,
        Raw::Int(v) => v.to_string(),
        Raw::Uint(v) => v.to_string(),
        Raw::Float(v) => v.to_string(),
        Raw::Bool(v) => v.to_string(),
    }))
}

/// `#[serde(default, deserialize_with = "read::list")]`: a list that a source may send as
/// `null` (read as empty).
pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::SourceId;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Slot {
        id: SourceId,
        #[serde(deserialize_with = "number")]
        weight: f64,
        #[serde(default, deserialize_with = "opt_number")]
        average: Option<f64>,
        #[serde(default, deserialize_with = "text")]
        value: String,
        #[serde(default, deserialize_with = "list")]
        files: Vec<String>,
    }

    #[test]
    fn numbers_come_as_numbers_or_strings() {
        let s: Slot =
            serde_json::from_str(r#"{"id": 7, "weight": "1.0", "average": "4,57", "value": 5, "files": null}"#)
                .unwrap();
        assert_eq!(
            s,
            Slot { id: SourceId("7".into()), weight: 1.0, average: Some(4.57), value: "5".into(), files: vec![] }
        );
        let s: Slot = serde_json::from_str(r#"{"id": "8", "weight": 2, "average": "", "value": "4+"}"#).unwrap();
        assert_eq!((s.weight, s.average, s.value.as_str()), (2.0, None, "4+"));
        let s: Slot = serde_json::from_str(r#"{"id": "8", "weight": 0.5, "average": null}"#).unwrap();
        assert_eq!((s.weight, s.average), (0.5, None));
        assert!(serde_json::from_str::<Slot>(r#"{"id": 1, "weight": "один"}"#).is_err());
        assert!(serde_json::from_str::<Slot>(r#"{"id": 1, "weight": "NaN"}"#).is_err());
        assert!(serde_json::from_str::<Slot>(r#"{"id": 1, "weight": 1, "average": "x"}"#).is_err());
    }

    #[test]
    fn ids_come_as_numbers_strings_or_objects() {
        let ids: Vec<SourceId> = serde_json::from_str(
            r#"[1000012, "1000013", {"id": 1000014, "name": "5А"}, {"id": 1.0, "id_str": "1000015"}, {"Id": 9, "IdStr": "9"}]"#,
        )
        .unwrap();
        let ids: Vec<&str> = ids.iter().map(|i| i.0.as_str()).collect();
        assert_eq!(ids, ["1000012", "1000013", "1000014", "1000015", "9"]);
        assert!(serde_json::from_str::<SourceId>(r#"{"name": "без id"}"#).is_err());
        assert!(serde_json::from_str::<SourceId>(r#""""#).is_err());
    }

    #[test]
    fn one_bad_element_is_skipped_with_its_field_and_an_excerpt() {
        let items: Vec<Box<RawValue>> = serde_json::from_str(
            r#"[{"id": 1, "weight": 1}, {"id": 2, "weight": "тяжёлый"}, {"weight": 1}, {"id": 4, "weight": "2.5"}]"#,
        )
        .unwrap();
        let mut skipped = Vec::new();
        let read: Vec<Slot> = each("GET lesson_marks/1", &items, &mut skipped);
        assert_eq!(read.iter().map(|s| s.id.0.as_str()).collect::<Vec<_>>(), ["1", "4"]);
        assert_eq!(skipped.len(), 2);
        assert_eq!(skipped[0].endpoint, "GET lesson_marks/1");
        assert_eq!(skipped[0].field, "weight");
        assert!(skipped[0].reason.contains("тяжёлый"), "{}", skipped[0].reason);
        assert!(skipped[0].excerpt.contains(r#""id": 2"#));
        assert!(skipped[1].reason.contains("missing field `id`"), "{}", skipped[1].reason);
        let shown = skipped[0].to_string();
        assert!(shown.starts_with("GET lesson_marks/1: a record was skipped: field `weight`"), "{shown}");
    }

    #[test]
    fn excerpts_cut_whole_characters() {
        let long = "Ж".repeat(500);
        let e = excerpt_of(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
        assert_eq!(excerpt_of("  коротко "), "коротко");
    }
}
