//! When an incremental run reads what changes rarely: final marks (итоговые отметки).
//!
//! Every system but Dnevnik reads final marks one pupil at a time (ЭПОС's progress report,
//! «Моя школа»'s subject marks, КИАСУО's `student_marks`): read every night they are a
//! request per pupil, the largest part of a night without change. They change around the
//! end of a study period (teachers set quarter marks in its last days and the first days
//! after it) and rarely otherwise, so an incremental run reads them
//! - on the nights within `days` of a study period's end, before or after it (the year's
//!   marks come with the last period's end): each unit (a pupil or a class) every `every`
//!   nights, the units spread over those nights by a stable hash of their id, so a final
//!   mark set or changed then is seen within `every` nights and each such night reads about
//!   1/`every` of the pupils;
//! - for a unit the source instance has not read yet (its first run);
//!
//! and not at all otherwise: the weekly full run (`ejgate sync --full`, the shipped
//! schedules) reads every pupil's final marks, so a final mark changed outside those nights
//! is seen by the next full run. Each connector's README states this.

use chrono::{Datelike, NaiveDate};

/// The calendar cadence of final-mark reads in incremental runs (see the module's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalMarksCadence {
    /// Nights before and after a study period's end on which final marks are read.
    pub days: u32,
    /// Each unit is read every this many of those nights (1: every night).
    pub every: u32,
}

impl Default for FinalMarksCadence {
    fn default() -> Self {
        FinalMarksCadence { days: 14, every: 4 }
    }
}

impl FinalMarksCadence {
    /// Whether `today` is within `days` of one of `period_ends`.
    pub fn in_window(&self, period_ends: &[NaiveDate], today: NaiveDate) -> bool {
        period_ends.iter().any(|end| (today - *end).num_days().unsigned_abs() <= u64::from(self.days))
    }

    /// Whether an incremental run on `today` reads the final marks of `unit` (a pupil's or
    /// a class's source id). A full run, and a unit read for the first time, read them
    /// regardless: the caller decides those.
    pub fn due(&self, period_ends: &[NaiveDate], today: NaiveDate, unit: &str) -> bool {
        if !self.in_window(period_ends, today) {
            return false;
        }
        let every = u64::from(self.every.max(1));
        let day = u64::try_from(today.num_days_from_ce()).unwrap_or_default();
        (day + stable_hash(unit)).is_multiple_of(every)
    }

    /// The share of units an incremental run on `today` reads (for estimates: 0 outside the
    /// window, 1/`every` inside it).
    pub fn share(&self, period_ends: &[NaiveDate], today: NaiveDate) -> f64 {
        if self.in_window(period_ends, today) {
            1.0 / f64::from(self.every.max(1))
        } else {
            0.0
        }
    }
}

/// FNV-1a: the same for an id on every machine and every build (std's hasher is not
/// promised to be), so a pupil's nights do not move between runs.
fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn around_a_period_end_each_unit_is_read_every_few_nights_and_never_otherwise() {
        let c = FinalMarksCadence { days: 14, every: 4 };
        let ends = [day("2025-10-26"), day("2025-12-28")];
        let units: Vec<String> = (0..400).map(|i| format!("pupil-{i}")).collect();
        // Far from any end: nobody.
        assert!(units.iter().all(|u| !c.due(&ends, day("2025-11-20"), u)));
        // Inside the window (14 days before the end to 14 after, 29 nights): every unit is
        // read on some night of every 4 consecutive ones, and each night reads about a quarter.
        let window: Vec<NaiveDate> = (0..29).map(|i| day("2025-10-12") + chrono::Days::new(i)).collect();
        for u in &units {
            for four in window.windows(4) {
                assert_eq!(four.iter().filter(|d| c.due(&ends, **d, u)).count(), 1, "{u} {four:?}");
            }
        }
        for d in &window {
            let n = units.iter().filter(|u| c.due(&ends, *d, u)).count();
            assert!((60..=140).contains(&n), "{d}: {n} of 400");
        }
        assert!(!c.in_window(&ends, day("2025-10-11")));
        assert!(!c.in_window(&ends, day("2025-11-10")));
        assert!(c.in_window(&ends, day("2025-11-09")));
        // Every night: everyone inside the window.
        let nightly = FinalMarksCadence { days: 14, every: 1 };
        assert!(units.iter().all(|u| nightly.due(&ends, day("2025-10-30"), u)));
        assert_eq!(c.share(&ends, day("2025-10-30")), 0.25);
        assert_eq!(c.share(&ends, day("2025-11-20")), 0.0);
    }
}
