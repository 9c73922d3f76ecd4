//! Reports (отчёты) over the store, in Russian: the deputy's monthly report per teacher
//! (P2) and справка of findings and fixes (M20), exports of canonical entities (P11, CSV,
//! XLSX and a OneRoster 1.2 bundle), the district's quarterly rollout report (P10), and the
//! school's own reports ([`school`]: P1, P3, P5–P9).
//! Each report builds [`table::Sheet`]s; [`table`] writes them as XLSX or CSV.

pub mod export;
pub mod oneroster;
pub mod rollout;
pub mod school;
pub mod spravka;
#[cfg(feature = "acceptance")]
pub mod synthetic;
pub mod table;
pub mod teachers;

use std::collections::HashMap;

use ejgate_sdk::model::{EntityKind, Person};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::store::Store;

/// The records of a kind from a source (or every source), read into their entity type.
pub async fn load<T: DeserializeOwned>(
    store: &dyn Store,
    kind: EntityKind,
    source: Option<&str>,
) -> anyhow::Result<Vec<(Uuid, T)>> {
    store
        .records(kind, source, false)
        .await?
        .into_iter()
        .map(|r| {
            serde_json::from_value(r.content)
                .map(|v| (r.id, v))
                .map_err(|e| anyhow::anyhow!("{kind} {} of source «{}» cannot be read: {e}", r.source_id, r.source))
        })
        .collect()
}

/// «Фамилия Имя Отчество», as monitoring names people.
pub fn full_name(p: &Person) -> String {
    [Some(p.last_name.as_str()), Some(p.first_name.as_str()), p.middle_name.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// People by id, named.
pub fn names(people: &[(Uuid, Person)]) -> HashMap<Uuid, String> {
    people.iter().map(|(id, p)| (*id, full_name(p))).collect()
}

/// The Russian name of a month: «ноябрь 2026».
pub fn month_name(d: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    const MONTHS: [&str; 12] = [
        "январь",
        "февраль",
        "март",
        "апрель",
        "май",
        "июнь",
        "июль",
        "август",
        "сентябрь",
        "октябрь",
        "ноябрь",
        "декабрь",
    ];
    format!("{} {}", MONTHS[d.month0() as usize], d.year())
}

/// What a `report` job of `ejgate serve` writes (into [`Config::reports_dir`], a folder per
/// day): for each school of the target that names a regulation, the report per teacher
/// (P2), the справка (M20) and the users' activity (P3) of the last whole month, after
/// monitoring that month, and the progress and attendance (P1) of every study period (and
/// of the year) that ended since the first of that month, so that a monthly job writes each
/// period's report once, in the month after it ends; and,
/// for the target `all`, the district's rollout report (P10) of every school in the store
/// for the last quarter that has ended (the current one before the first ends). Returns
/// the files written.
pub async fn job(
    config: &crate::config::Config,
    store: &dyn Store,
    target: &crate::schedule::Target,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    use crate::schedule::Target;
    use chrono::{Datelike, Days};
    let dir = config.reports_dir().join(now.format("%Y-%m-%d").to_string());
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    // One workbook into the day's folder.
    let mut write = |name: String, title: String, sheets: &[table::Sheet]| -> anyhow::Result<()> {
        let path = dir.join(name);
        table::write_file(&path, &table::xlsx(&title, sheets)?)?;
        written.push(path);
        Ok(())
    };
    let safe = |s: &str| s.chars().map(|c| if c.is_alphanumeric() || c == '-' { c } else { '_' }).collect::<String>();
    let schools = config.schools.iter().filter(|s| s.regulation.is_some()).filter(|s| match target {
        Target::All => true,
        Target::School(name) => &s.name == name,
        Target::Source(name) => s.sources.contains(name),
    });
    for school in schools {
        // the last whole month in the school's zone
        let (_, zone) = crate::monitor::engine::school_zone(store, school.journal_source()).await?;
        let today = now.with_timezone(&zone).date_naive();
        let last_month = today.with_day(1).expect("a first day") - Days::new(1);
        let (board, _) =
            crate::monitor::run(config, store, &school.name, Some(last_month), crate::monitor::Span::Month, now, true)
                .await?;
        let stored = store.findings(&school.name).await?;
        let month = last_month.format("%Y-%m");
        let teachers = teachers::build(store, school.journal_source(), &board, &stored).await?;
        write(
            format!("{}-учителя-{month}.xlsx", safe(&school.name)),
            format!("Работа учителей с электронным журналом: {}", school.name),
            &teachers::sheets(&teachers),
        )?;
        let spravka = spravka::build(&board, &stored)?;
        write(
            format!("{}-справка-{month}.xlsx", safe(&school.name)),
            format!("Справка по итогам мониторинга: {}", school.name),
            &spravka::sheets(&spravka),
        )?;

        // P3 for the month, P1 for the periods that ended since its first day.
        let j = school::Journal::load(store, &school.sources_journal_first()).await?;
        let first = last_month.with_day(1).expect("a first day");
        let month_span = school::Span { name: month_name(last_month), from: first, to: last_month, period: None };
        write(
            format!("{}-активность-{month}.xlsx", safe(&school.name)),
            format!("Активность пользователей: {}, {}", school.name, month_span.name),
            &school::activity(&j, &month_span, &school.name),
        )?;
        for span in school::ended_between(&j, first, today) {
            write(
                format!("{}-успеваемость-{}.xlsx", safe(&school.name), safe(&span.name)),
                format!("Итоги успеваемости и посещаемости: {}, {}", school.name, span.name),
                &school::progress(&j, &span, &school.name),
            )?;
        }
    }
    if *target == Target::All {
        // the quarter: the last one ended before today in the store's latest year
        let periods: Vec<(uuid::Uuid, ejgate_sdk::model::StudyPeriod)> =
            load(store, EntityKind::StudyPeriod, None).await?;
        let today = now.date_naive();
        let quarters = periods.iter().map(|(_, p)| p).filter(|p| p.kind == ejgate_sdk::model::PeriodKind::Quarter);
        let ended = quarters.clone().filter(|p| p.end < today).max_by_key(|p| p.end);
        let current = quarters.clone().find(|p| p.start <= today && today <= p.end);
        if let Some(q) = ended.or(current) {
            let quarter = rollout::Quarter { number: q.number, year: None };
            let report = rollout::build(store, config, "все", &quarter, now).await?;
            write(
                format!("внедрение-{}-четверть-{}.xlsx", safe(&report.year), q.number),
                format!("О ходе внедрения электронных журналов: {} четверть", q.number),
                &rollout::sheets(&report),
            )?;
        }
    }
    if written.is_empty() {
        anyhow::bail!(
            "target {target}: no [[school]] names a regulation and the target is not `all`: nothing to report \
             (add regulation = \"…\" to a school, or use target = \"all\" for the district's report)"
        );
    }
    Ok(written)
}
