//! Lenient date and time parsing for source answers, and source ids that arrive as numbers
//! or strings. Sources write dates in many spellings; parse all of them and never lose
//! precision of a 64-bit id.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Deserializer};

/// Parses `yyyy-MM-dd`, `dd.MM.yyyy`, and any date-time below, keeping only the date.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%d.%m.%Y") {
        return Some(d);
    }
    parse_datetime(s).map(|(dt, _)| dt.date())
}

/// Parses a date-time in the spellings sources use: `T` or space between date and time,
/// seconds optional, any number of fraction digits, an optional `Z` or `±hh:mm` offset,
/// unpadded fields (`2023-9-1T8:0:0`), `dd.MM.yyyy HH:mm`, and a bare date (midnight).
/// Returns the date-time as written and the offset when one was given.
pub fn parse_datetime(s: &str) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some((dt.naive_local(), Some(*dt.offset())));
    }
    let (body, offset) = split_offset(s);
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
        "%d.%m.%Y %H:%M:%S",
        "%d.%m.%Y %H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(body, fmt) {
            return Some((dt, offset));
        }
    }
    if let Some(d) =
        NaiveDate::parse_from_str(body, "%Y-%m-%d").ok().or_else(|| NaiveDate::parse_from_str(body, "%d.%m.%Y").ok())
    {
        return Some((d.and_time(NaiveTime::MIN), offset));
    }
    None
}

/// A date-time as the school's local time: values with an offset are converted to the
/// school's offset, values without one are taken as already local.
pub fn parse_local_datetime(s: &str, school_offset: FixedOffset) -> Option<NaiveDateTime> {
    let (dt, offset) = parse_datetime(s)?;
    Some(match offset {
        Some(off) => (dt - off).and_utc().with_timezone(&school_offset).naive_local(),
        None => dt,
    })
}

fn split_offset(s: &str) -> (&str, Option<FixedOffset>) {
    if let Some(body) = s.strip_suffix('Z') {
        return (body, FixedOffset::east_opt(0));
    }
    // ±hh:mm after the time part. The tail is taken by `get`, which refuses a cut inside a
    // character: a source may send «1 сентября 2025 г.» where a date was due.
    if s.len() > 16 {
        if let Some(tail) = s.get(s.len() - 6..) {
            let b = tail.as_bytes();
            let digits = |i: usize| b[i].is_ascii_digit() && b[i + 1].is_ascii_digit();
            if matches!(b[0], b'+' | b'-') && digits(1) && b[3] == b':' && digits(4) {
                let sign = if b[0] == b'-' { -1 } else { 1 };
                let number = |i: usize| i32::from(b[i] - b'0') * 10 + i32::from(b[i + 1] - b'0');
                let offset = FixedOffset::east_opt(sign * (number(1) * 3600 + number(4) * 60));
                return (&s[..s.len() - 6], offset);
            }
        }
    }
    (s, None)
}

/// An id as sources send it: a JSON number (exact, up to 64 bits) or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SourceId(pub String);

impl std::fmt::Display for SourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SourceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SourceId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an id (integer, string, or an object with `id`)")
            }
            fn visit_u64<E>(self, v: u64) -> Result<SourceId, E> {
                Ok(SourceId(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<SourceId, E> {
                Ok(SourceId(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<SourceId, E> {
                Ok(SourceId(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<SourceId, E> {
                // A float id has lost precision above 2^53: refuse rather than guess.
                if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
                    Ok(SourceId(format!("{}", v as i64)))
                } else {
                    Err(E::custom(format!("the id {v} is not an exact integer")))
                }
            }
            /// An object that carries the id (`{"id": 1, "id_str": "1", "name": …}`, or
            /// PascalCase `{"Id", "IdStr"}`): the typed clients of Dnevnik give `group`,
            /// `person` and `subjects[]` as objects. The `_str` twin wins (it keeps all
            /// 64 bits); other keys are ignored.
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SourceId, A::Error> {
                let mut id_str: Option<SourceId> = None;
                let mut id: Option<SourceId> = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "id_str" | "IdStr" | "idStr" => id_str = map.next_value::<Option<SourceId>>()?,
                        "id" | "Id" => id = map.next_value::<Option<SourceId>>()?,
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                id_str.or(id).ok_or_else(|| serde::de::Error::custom("an object without `id` where an id was expected"))
            }
        }
        let id = d.deserialize_any(V)?;
        if id.0.trim().is_empty() {
            return Err(serde::de::Error::custom("an empty id"));
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        parse_datetime(s).unwrap().0
    }

    #[test]
    fn every_spelling_parses() {
        let base = NaiveDate::from_ymd_opt(2025, 9, 1).unwrap();
        assert_eq!(dt("2025-09-01T08:00:00"), base.and_hms_opt(8, 0, 0).unwrap());
        assert_eq!(dt("2025-09-01 08:00:00"), base.and_hms_opt(8, 0, 0).unwrap());
        assert_eq!(dt("2025-09-01T08:00"), base.and_hms_opt(8, 0, 0).unwrap());
        assert_eq!(dt("2025-9-1T8:0:0"), base.and_hms_opt(8, 0, 0).unwrap());
        assert_eq!(dt("2025-09-01T08:00:00.1234567"), base.and_hms_nano_opt(8, 0, 0, 123_456_700).unwrap());
        assert_eq!(parse_datetime("2025-09-01T08:00:00.123Z").unwrap().1, FixedOffset::east_opt(0));
        assert_eq!(parse_datetime("2025-09-01T08:00:00+03:00").unwrap().1, FixedOffset::east_opt(3 * 3600));
        assert_eq!(dt("01.09.2025 08:00"), base.and_hms_opt(8, 0, 0).unwrap());
        assert_eq!(parse_date("01.09.2025"), Some(base));
        assert_eq!(parse_date("2025-09-01T00:00:00"), Some(base));
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn utc_times_become_school_time() {
        let msk = FixedOffset::east_opt(3 * 3600).unwrap();
        let local = parse_local_datetime("2025-09-01T09:30:00.000Z", msk).unwrap();
        assert_eq!(local, NaiveDate::from_ymd_opt(2025, 9, 1).unwrap().and_hms_opt(12, 30, 0).unwrap());
        let same = parse_local_datetime("2025-09-01T09:30:00", msk).unwrap();
        assert_eq!(same.to_string(), "2025-09-01 09:30:00");
    }

    #[test]
    fn ids_keep_all_64_bits() {
        let ids: Vec<SourceId> = serde_json::from_str(r#"[1750000000000000123, "42", -7]"#).unwrap();
        assert_eq!(ids[0].0, "1750000000000000123");
        assert_eq!(ids[1].0, "42");
        assert_eq!(ids[2].0, "-7");
        assert!(serde_json::from_str::<SourceId>("1.75e18").is_err());
    }

    #[test]
    fn a_cyrillic_or_odd_tail_is_no_date_and_no_panic() {
        // Each of these once cut a character in two, or read a digit that was not there.
        for s in [
            "2025-09-01 я08:00",
            "1 сентября 2025 г.",
            "2025-09-01T08:00:00+03:0я",
            "2025-09-01T08:00:00+0З:00",
            "дата: 01.09.2025 г",
        ] {
            assert_eq!(parse_datetime(s), None, "{s}");
        }
        assert_eq!(parse_datetime("2025-09-01T08:00:00-02:30").unwrap().1, FixedOffset::west_opt(9000));
    }

    /// Properties over random inputs (the generator of `crate::fuzz`, fixed seeds): no
    /// string makes a date reader panic, and every spelling of a valid date-time reads
    /// back as the value written.
    #[test]
    fn no_string_panics_and_valid_dates_round_trip() {
        use crate::fuzz;
        use chrono::{Datelike, Timelike};
        use rand::RngExt;
        let msk = FixedOffset::east_opt(3 * 3600).unwrap();
        let read_all = |s: &str| {
            let _ = parse_date(s);
            let _ = parse_datetime(s);
            let _ = parse_local_datetime(s, msk);
        };
        let mut rng = fuzz::rng(14);
        let mut cases = 0u64;
        for _ in 0..30_000 {
            read_all(&fuzz::text(&mut rng, 40));
            cases += 1;
        }
        let valid =
            ["2025-09-01T08:00:00+03:00", "2025-09-01 08:00:00.123", "01.09.2025 08:00", "2025-09-01T08:00:00Z"];
        for _ in 0..30_000 {
            let base = valid[rng.random_range(0..valid.len())];
            read_all(&fuzz::mutate_text(&mut rng, base));
            cases += 1;
        }
        for _ in 0..10_000 {
            let date = NaiveDate::from_ymd_opt(rng.random_range(1900..2101), rng.random_range(1..13), 1).unwrap()
                + chrono::Duration::days(rng.random_range(0..28));
            let time =
                NaiveTime::from_hms_opt(rng.random_range(0..24), rng.random_range(0..60), rng.random_range(0..60))
                    .unwrap();
            let at = date.and_time(time);
            let minutes = at.date().and_hms_opt(time.hour(), time.minute(), 0).unwrap();
            assert_eq!(parse_date(&date.format("%Y-%m-%d").to_string()), Some(date));
            assert_eq!(parse_date(&date.format("%d.%m.%Y").to_string()), Some(date));
            assert_eq!(dt(&at.format("%Y-%m-%dT%H:%M:%S").to_string()), at);
            assert_eq!(dt(&at.format("%Y-%m-%d %H:%M:%S").to_string()), at);
            assert_eq!(dt(&at.format("%d.%m.%Y %H:%M").to_string()), minutes);
            assert_eq!(
                dt(&format!(
                    "{}-{}-{}T{}:{}:{}",
                    date.year(),
                    date.month(),
                    date.day(),
                    time.hour(),
                    time.minute(),
                    time.second()
                )),
                at
            );
            let offset = FixedOffset::east_opt(rng.random_range(-12..15) * 3600).unwrap();
            let zoned = at.and_local_timezone(offset).unwrap();
            assert_eq!(parse_datetime(&zoned.to_rfc3339()), Some((at, Some(offset))));
            assert_eq!(parse_datetime(&zoned.format("%Y-%m-%d %H:%M:%S%:z").to_string()), Some((at, Some(offset))));
            cases += 8;
        }
        eprintln!("date readers: {cases} cases");
        assert_eq!(cases, 140_000);
    }
}
