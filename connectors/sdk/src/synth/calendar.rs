//! The school calendar: quarters, holidays, public days off, bells, and which days are
//! school days.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};

use super::state::School;

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid calendar date")
}

/// The dates of an academic year starting on `year_start` (1 September of year Y):
/// quarters and the holidays between them, as Russian schools on quarters have them.
pub(super) struct YearPlan {
    pub end: NaiveDate,
    /// (start, end) of the four quarters
    pub quarters: [(NaiveDate, NaiveDate); 4],
    /// (name, start, end)
    pub holidays: [(&'static str, NaiveDate, NaiveDate); 3],
}

pub(super) fn year_plan(year_start: NaiveDate) -> YearPlan {
    let y = if year_start.month() >= 7 { year_start.year() } else { year_start.year() - 1 };
    let n = y + 1;
    YearPlan {
        end: ymd(n, 5, 26),
        quarters: [
            (year_start, ymd(y, 10, 24)),
            (ymd(y, 11, 3), ymd(y, 12, 28)),
            (ymd(n, 1, 12), ymd(n, 3, 20)),
            (ymd(n, 3, 30), ymd(n, 5, 26)),
        ],
        holidays: [
            ("Осенние каникулы", ymd(y, 10, 25), ymd(y, 11, 2)),
            ("Зимние каникулы", ymd(y, 12, 29), ymd(n, 1, 11)),
            ("Весенние каникулы", ymd(n, 3, 21), ymd(n, 3, 29)),
        ],
    }
}

/// Public days off during the school year (4 November, 23 February, 8 March, 1 and 9 May),
/// moved to the Monday when they fall on a weekend.
fn public_days_off(y: i32) -> Vec<NaiveDate> {
    [ymd(y, 11, 4), ymd(y + 1, 2, 23), ymd(y + 1, 3, 8), ymd(y + 1, 5, 1), ymd(y + 1, 5, 9)]
        .into_iter()
        .map(|d| match d.weekday() {
            Weekday::Sat => d + Duration::days(2),
            Weekday::Sun => d + Duration::days(1),
            _ => d,
        })
        .collect()
}

/// Звонки: eight lessons of 40 minutes from 8:30, breaks of 10–20 minutes.
pub(super) fn bells() -> Vec<(u8, NaiveTime, NaiveTime)> {
    const STARTS: [(u32, u32); 8] = [(8, 30), (9, 20), (10, 20), (11, 20), (12, 15), (13, 5), (13, 55), (14, 45)];
    STARTS
        .iter()
        .enumerate()
        .map(|(i, &(h, m))| {
            let start = NaiveTime::from_hms_opt(h, m, 0).expect("valid time");
            (i as u8 + 1, start, start + Duration::minutes(40))
        })
        .collect()
}

/// Which days of a school's year are school days, and the periods they belong to.
#[derive(Debug, Clone)]
pub(super) struct Calendar {
    start: NaiveDate,
    end: NaiveDate,
    /// Per day from `start` to `end`: a school day?
    school: Vec<bool>,
    /// Period index per day from `start` (None in holidays)
    period: Vec<Option<usize>>,
    /// The last school day of each period
    pub last_day: Vec<Option<NaiveDate>>,
}

impl Calendar {
    pub(super) fn new(school: &School) -> Calendar {
        let start = school.year.start;
        let end = school.year.end;
        let y = if start.month() >= 7 { start.year() } else { start.year() - 1 };
        let off = public_days_off(y);
        let len = (end - start).num_days().max(0) as usize + 1;
        let mut days = Vec::with_capacity(len);
        let mut period = Vec::with_capacity(len);
        let mut last_day = vec![None; school.periods.len()];
        for i in 0..len {
            let d = start + Duration::days(i as i64);
            let p = school.periods.iter().position(|p| p.start <= d && d <= p.end);
            let weekday = d.weekday().number_from_monday() <= 5;
            let holiday = school.holidays.iter().any(|h| h.start <= d && d <= h.end);
            let is = weekday && !holiday && !off.contains(&d) && p.is_some();
            if let (true, Some(p)) = (is, p) {
                last_day[p] = Some(d);
            }
            days.push(is);
            period.push(p);
        }
        Calendar { start, end, school: days, period, last_day }
    }

    fn index(&self, d: NaiveDate) -> Option<usize> {
        if d < self.start || d > self.end {
            return None;
        }
        Some((d - self.start).num_days() as usize)
    }

    pub(super) fn is_school_day(&self, d: NaiveDate) -> bool {
        self.index(d).map(|i| self.school[i]).unwrap_or(false)
    }

    /// The period (index into `School::periods`) whose dates contain `d`.
    pub(super) fn period_of(&self, d: NaiveDate) -> Option<usize> {
        self.index(d).and_then(|i| self.period[i])
    }

    /// The `n`-th school day after `d`; past the end of the year, `n` calendar days later.
    pub(super) fn school_days_after(&self, d: NaiveDate, n: u32) -> NaiveDate {
        if n == 0 {
            return d;
        }
        let mut left = n;
        let mut cur = d;
        while cur < self.end {
            cur += Duration::days(1);
            if self.is_school_day(cur) {
                left -= 1;
                if left == 0 {
                    return cur;
                }
            }
        }
        d + Duration::days(n as i64)
    }
}
