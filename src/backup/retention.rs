//! Хранение резервных копий: which backups a target keeps.
//!
//! A target keeps, of the backups it holds:
//! - the newest `keep_last` (at least one);
//! - the newest of each of the last `keep_monthly` calendar months that have backups;
//! - the newest of each of the last `keep_yearly` school years (1 September – 31 August)
//!   that have backups: that backup holds the year's journal as it was closed, with its
//!   final marks;
//! - and, whatever `keep_yearly` says, the newest of every school year that ended less than
//!   [`MIN_YEARS`] years ago. REGULATIONS A3 keeps journals 5 years and сводные ведомости
//!   итоговых отметок 25 years; a year's last backup holds both, so it is kept for the
//!   longer period. `keep_yearly` below 25 is refused when the configuration loads.
//!
//! Everything else is deleted, manifest first (a backup without its manifest is not listed,
//! so a deletion cut short never leaves a backup that looks complete without its data).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Utc};

/// The years a school year's last backup is kept at the least (A3: 25 years).
pub const MIN_YEARS: i32 = 25;

/// How many backups a target keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub last: u32,
    pub monthly: u32,
    pub yearly: u32,
}

impl Default for Keep {
    fn default() -> Keep {
        Keep { last: 10, monthly: 12, yearly: MIN_YEARS as u32 }
    }
}

/// The school year a moment belongs to, by its first calendar year (2025 for 2025/2026).
pub fn school_year(t: DateTime<Utc>) -> i32 {
    if t.month() >= 9 {
        t.year()
    } else {
        t.year() - 1
    }
}

/// The ids of the backups (id, created at) to delete at `now`.
pub fn to_delete(backups: &[(String, DateTime<Utc>)], keep: Keep, now: DateTime<Utc>) -> Vec<String> {
    let mut newest_of_month: BTreeMap<(i32, u32), (&str, DateTime<Utc>)> = BTreeMap::new();
    let mut newest_of_year: BTreeMap<i32, (&str, DateTime<Utc>)> = BTreeMap::new();
    for (id, at) in backups {
        let month = newest_of_month.entry((at.year(), at.month())).or_insert((id, *at));
        if *at > month.1 {
            *month = (id, *at);
        }
        let year = newest_of_year.entry(school_year(*at)).or_insert((id, *at));
        if *at > year.1 {
            *year = (id, *at);
        }
    }
    let mut kept: BTreeSet<&str> = BTreeSet::new();
    let mut by_age: Vec<&(String, DateTime<Utc>)> = backups.iter().collect();
    by_age.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
    kept.extend(by_age.iter().take(keep.last.max(1) as usize).map(|(id, _)| id.as_str()));
    kept.extend(newest_of_month.values().rev().take(keep.monthly as usize).map(|(id, _)| *id));
    kept.extend(newest_of_year.values().rev().take(keep.yearly as usize).map(|(id, _)| *id));
    // A school year Y/Y+1 ends on 31 August of Y+1.
    let current = school_year(now);
    kept.extend(newest_of_year.iter().filter(|(year, _)| current - **year < MIN_YEARS).map(|(_, (id, _))| *id));
    backups.iter().filter(|(id, _)| !kept.contains(id.as_str())).map(|(id, _)| id.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn keeps_the_newest_of_months_and_school_years_and_a3_years() {
        let backups: Vec<(String, DateTime<Utc>)> = [
            ("nov-a", "2026-11-01T00:00:00Z"),
            ("nov-b", "2026-11-20T00:00:00Z"),
            ("oct-a", "2026-10-05T00:00:00Z"),
            ("oct-b", "2026-10-25T00:00:00Z"),
            // School year 2025/2026: its newest is aug.
            ("jun", "2026-06-10T00:00:00Z"),
            ("aug", "2026-08-30T00:00:00Z"),
            // School year 1990/1991, over 25 years ago, and a year before it.
            ("old-a", "1991-05-01T00:00:00Z"),
            ("old-b", "1989-12-01T00:00:00Z"),
        ]
        .into_iter()
        .map(|(id, t)| (id.to_string(), at(t)))
        .collect();
        let now = at("2026-12-05T12:00:00Z");
        // One month, two school years: nov-b (newest, month, year 2026), aug (year 2025);
        // 1990 and 1989 are beyond keep_yearly and beyond A3's 25 years.
        let mut gone = to_delete(&backups, Keep { last: 1, monthly: 1, yearly: 2 }, now);
        gone.sort();
        assert_eq!(gone, ["jun", "nov-a", "oct-a", "oct-b", "old-a", "old-b"]);
        // Two months keep oct-b as well.
        let mut gone = to_delete(&backups, Keep { last: 1, monthly: 2, yearly: 2 }, now);
        gone.sort();
        assert_eq!(gone, ["jun", "nov-a", "oct-a", "old-a", "old-b"]);
        // keep_yearly counts school years that have backups (as restic's --keep-yearly):
        // 25 of them reach back past 1989, whose backups stay.
        let mut gone = to_delete(&backups, Keep { last: 1, monthly: 1, yearly: 25 }, now);
        gone.sort();
        assert_eq!(gone, ["jun", "nov-a", "oct-a", "oct-b"]);
        // The newest three are kept whatever their months.
        let mut gone = to_delete(&backups, Keep { last: 3, monthly: 1, yearly: 2 }, now);
        gone.sort();
        assert_eq!(gone, ["jun", "oct-a", "old-a", "old-b"]);
    }

    #[test]
    fn a_year_within_a3_is_kept_even_when_keep_yearly_is_smaller() {
        let backups: Vec<(String, DateTime<Utc>)> =
            [("y2010", "2011-03-01T00:00:00Z"), ("now", "2026-12-01T00:00:00Z")]
                .into_iter()
                .map(|(id, t)| (id.to_string(), at(t)))
                .collect();
        // keep_yearly 1 would drop 2010/2011, which ended 15 years ago: A3 keeps it.
        assert!(to_delete(&backups, Keep { last: 1, monthly: 1, yearly: 1 }, at("2026-12-05T00:00:00Z")).is_empty());
        // 30 years later it goes.
        assert_eq!(to_delete(&backups, Keep { last: 1, monthly: 1, yearly: 1 }, at("2056-12-05T00:00:00Z")), ["y2010"]);
    }
}
