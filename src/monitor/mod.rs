//! Monitoring of the journal against the school's regulation (мониторинг ведения журнала):
//! the regulation profiles of `regulations/`, the engine that judges a school's journal by
//! its profile, the findings kept until fixed, and the deputy director's board.

pub mod board;
pub mod engine;
pub mod findings;
pub mod profile;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use ejgate_sdk::model::{DateRange, EntityKind, PeriodKind, StudyPeriod};

use crate::config::Config;
use crate::store::Store;

/// The days a board covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// One day (the default: yesterday).
    Day,
    /// The week (Monday to Sunday) of the day.
    Week,
    /// The calendar month of the day.
    Month,
    /// The school's quarter (четверть) holding the day, as its study periods say; the
    /// calendar quarter where the source has no quarters.
    Quarter,
}

impl Span {
    pub fn range(self, day: NaiveDate) -> DateRange {
        match self {
            Span::Day => DateRange::new(day, day),
            Span::Week => {
                let monday = day - Days::new(u64::from(day.weekday().num_days_from_monday()));
                DateRange::new(monday, monday + Days::new(6))
            }
            Span::Month => {
                let first = day.with_day(1).expect("every month has a first day");
                let next = first.checked_add_months(chrono::Months::new(1)).expect("in range");
                DateRange::new(first, next - Days::new(1))
            }
            Span::Quarter => {
                let first = NaiveDate::from_ymd_opt(day.year(), day.month0() / 3 * 3 + 1, 1).expect("a valid month");
                let next = first.checked_add_months(chrono::Months::new(3)).expect("in range");
                DateRange::new(first, next - Days::new(1))
            }
        }
    }

    /// The range, with a quarter taken from the source's study periods where it has one
    /// holding the day (a school's quarter is not the calendar's).
    pub async fn range_in(self, store: &dyn Store, source: &str, day: NaiveDate) -> anyhow::Result<DateRange> {
        if self != Span::Quarter {
            return Ok(self.range(day));
        }
        let periods: Vec<(uuid::Uuid, StudyPeriod)> =
            crate::report::load(store, EntityKind::StudyPeriod, Some(source)).await?;
        Ok(periods
            .iter()
            .filter(|(_, p)| p.kind == PeriodKind::Quarter && p.start <= day && day <= p.end)
            .map(|(_, p)| DateRange::new(p.start, p.end))
            .next()
            .unwrap_or_else(|| self.range(day)))
    }
}

/// Monitors one `[[school]]` of the configuration: judges its journal source by its
/// profile over the span around `day` (yesterday in the school's zone when not given),
/// and records the findings (unless `record` is false).
pub async fn run(
    config: &Config,
    store: &dyn Store,
    school: &str,
    day: Option<NaiveDate>,
    span: Span,
    now: DateTime<Utc>,
    record: bool,
) -> anyhow::Result<(engine::Report, findings::Changes)> {
    let Some(school_config) = config.schools.iter().find(|s| s.name == school) else {
        let names: Vec<&str> = config.schools.iter().map(|s| s.name.as_str()).collect();
        anyhow::bail!(
            "there is no [[school]] named «{school}» in the configuration ({}): add one with its sources and regulation",
            if names.is_empty() { "none configured".to_string() } else { names.join(", ") }
        );
    };
    let Some(regulation) = &school_config.regulation else {
        anyhow::bail!(
            "school «{school}» names no regulation profile: add regulation = \"…\" (a file of {} without .toml) to its [[school]]",
            config.regulations_dir().display()
        );
    };
    let profile = profile::load(&config.regulations_dir(), regulation)?;
    let source = school_config.journal_source();
    let (_, zone) = engine::school_zone(store, source).await?;
    let day = day.unwrap_or_else(|| now.with_timezone(&zone).date_naive() - Days::new(1));
    let range = span.range_in(store, source, day).await?;
    let report = engine::evaluate(store, school, source, &profile, range, now).await?;
    let changes = if record { findings::record(store, &report, now).await? } else { findings::Changes::default() };
    Ok((report, changes))
}
