//! School years (учебный год): 1 September to 31 August. A run reads the current one unless
//! it is asked for another (`ejgate sync --year 2024/2025`, `year = "2024/2025"` in the
//! source's configuration); each connector picks the requested year from what its source
//! serves, or fails saying plainly that the source does not serve it.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::client::SourceError;
use crate::model::DateRange;

/// A school year, by the calendar year it starts in (2024 is «2024/2025»).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchoolYear {
    pub start_year: i32,
}

impl SchoolYear {
    pub fn new(start_year: i32) -> SchoolYear {
        SchoolYear { start_year }
    }

    /// The school year a date falls in (September starts a new one).
    pub fn containing(date: NaiveDate) -> SchoolYear {
        SchoolYear::new(if date.month() >= 9 { date.year() } else { date.year() - 1 })
    }

    /// 1 September.
    pub fn start(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.start_year, 9, 1).expect("a school year's start is a date")
    }

    /// 31 August of the next calendar year.
    pub fn end(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.start_year + 1, 8, 31).expect("a school year's end is a date")
    }

    pub fn range(&self) -> DateRange {
        DateRange::new(self.start(), self.end())
    }

    /// Whether a source's year (its first and last day, as the source gives them) is this
    /// one: the year its first day falls in (sources start a year on 1 September, or on the
    /// first school day after it).
    pub fn is(&self, source_year: &DateRange) -> bool {
        SchoolYear::containing(source_year.from) == *self
    }

    /// Reads «2024/2025», «2024-2025», «2024/25» or «2024–2025» (the second year must follow
    /// the first).
    pub fn parse(text: &str) -> Result<SchoolYear, String> {
        let bad = || {
            format!("«{text}» is not a school year: write it as 2024/2025 (the year it starts, a slash, the next one)")
        };
        let t = text.trim();
        let (a, b) = t.split_once(['/', '-', '–']).ok_or_else(bad)?;
        let (a, b) = (a.trim(), b.trim());
        if a.len() != 4 || !a.bytes().all(|c| c.is_ascii_digit()) || !b.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let start: i32 = a.parse().map_err(|_| bad())?;
        let next: i32 = match b.len() {
            4 => b.parse().map_err(|_| bad())?,
            2 => start / 100 * 100 + b.parse::<i32>().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        if next != start + 1 && !(b.len() == 2 && next + 100 == start + 1) {
            return Err(format!("«{text}»: the second year must follow the first (2024/2025)"));
        }
        if !(1990..=2200).contains(&start) {
            return Err(format!("«{text}»: a school year between 1990/1991 and 2200/2201"));
        }
        Ok(SchoolYear::new(start))
    }

    /// The error of a connector whose source does not serve this year. `served` names what it
    /// serves (`2025/2026`, or a list), `why` says why it cannot serve another (the API has no
    /// year parameter, the year is not in its list of years).
    pub fn not_served(&self, instance: &str, system: &str, served: &str, why: &str) -> SourceError {
        let mut e = SourceError::config(
            instance,
            system,
            format!("the source does not serve {self}: it serves {served} ({why})"),
        );
        e.hint = Some(format!(
            "leave out --year (and `year` in the source's configuration) to read the year the source serves, or ask \
             for one of {served}"
        ));
        e
    }
}

impl std::fmt::Display for SchoolYear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.start_year, self.start_year + 1)
    }
}

impl std::str::FromStr for SchoolYear {
    type Err = String;
    fn from_str(s: &str) -> Result<SchoolYear, String> {
        SchoolYear::parse(s)
    }
}

impl Serialize for SchoolYear {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SchoolYear {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        SchoolYear::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn years_are_read_in_the_usual_spellings_and_run_september_to_august() {
        for text in ["2024/2025", " 2024-2025 ", "2024/25", "2024–2025"] {
            assert_eq!(SchoolYear::parse(text), Ok(SchoolYear::new(2024)), "{text}");
        }
        assert_eq!(SchoolYear::parse("1999/00"), Ok(SchoolYear::new(1999)));
        for bad in ["2024", "2024/2026", "24/25", "2025/2024", "двадцать/2025", "2024/2025/2026", "", "2024/"] {
            assert!(SchoolYear::parse(bad).is_err(), "{bad}");
        }
        let y = SchoolYear::new(2024);
        assert_eq!((y.start(), y.end()), (date("2024-09-01"), date("2025-08-31")));
        assert_eq!(y.to_string(), "2024/2025");
        assert_eq!(SchoolYear::containing(date("2025-08-31")), y);
        assert_eq!(SchoolYear::containing(date("2025-09-01")), SchoolYear::new(2025));
        assert!(y.is(&DateRange::new(date("2024-09-02"), date("2025-05-31"))));
        assert!(!y.is(&DateRange::new(date("2025-09-01"), date("2026-05-31"))));
        let e = y.not_served("k", "kiasuo", "2025/2026", "the API has no year parameter").to_string();
        assert!(e.contains("the source does not serve 2024/2025: it serves 2025/2026"), "{e}");
    }
}
