//! Справка по итогам мониторинга ведения электронного журнала за месяц (REGULATIONS M20:
//! S0 4.2а, S1 6.3–6.4, S4 deputy 8–9): the findings of the month by rule — found, fixed,
//! fixed within a day (M17), still open — and every finding with when it was found and
//! fixed, for the deputy to sign and act on.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::table::{Cell, Sheet};
use super::teachers::{local_day, rule_order};
use crate::monitor::engine::{Report, Unchecked};
use crate::store::StoredFinding;

/// Итог по одному правилу.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleLine {
    pub rule: String,
    pub clause: String,
    /// Выявлено (the month's findings, fixed or not)
    pub found: u64,
    /// Устранено
    pub fixed: u64,
    /// Из них в течение суток после выявления
    pub fixed_within_day: u64,
    /// Не устранено
    pub open: u64,
}

/// Одно нарушение справки.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub rule: String,
    pub clause: String,
    pub teacher: Option<String>,
    pub class: Option<String>,
    pub subject: Option<String>,
    pub date: Option<NaiveDate>,
    pub what: String,
    /// Выявлено (the school's local time)
    pub found_at: NaiveDateTime,
    /// Устранено (local), if it was
    pub fixed_at: Option<NaiveDateTime>,
    pub key: String,
}

/// Справка.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spravka {
    pub school: String,
    pub profile: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub rules: Vec<RuleLine>,
    pub findings: Vec<Line>,
    pub unchecked: Vec<Unchecked>,
}

/// Whether a stored finding belongs to the month `from..=to`: its day is in the month, or
/// (reference data, no day) it was open at some time of the month.
fn of_month(f: &StoredFinding, from: NaiveDate, to: NaiveDate, zone: Tz) -> bool {
    match f.date {
        Some(d) => from <= d && d <= to,
        None => local_day(f.first_detected, zone) <= to && f.fixed_at.is_none_or(|x| local_day(x, zone) >= from),
    }
}

fn within_day(found: DateTime<Utc>, fixed: DateTime<Utc>) -> bool {
    fixed - found <= chrono::TimeDelta::days(1)
}

/// The справка for the month of this month's monitoring `report`, from the school's stored
/// findings (recorded by that run, so they are current).
pub fn build(report: &Report, stored: &[StoredFinding]) -> anyhow::Result<Spravka> {
    let zone: Tz =
        report.time_zone.parse().map_err(|_| anyhow::anyhow!("«{}» is not a time zone", report.time_zone))?;
    let (from, to) = (report.from, report.to);
    let mut rules: BTreeMap<(u32, String), RuleLine> = BTreeMap::new();
    let mut findings = Vec::new();
    for f in stored.iter().filter(|f| of_month(f, from, to, zone)) {
        let line = rules.entry(rule_order(&f.rule)).or_insert_with(|| RuleLine {
            rule: f.rule.clone(),
            clause: f.clause.clone(),
            found: 0,
            fixed: 0,
            fixed_within_day: 0,
            open: 0,
        });
        line.found += 1;
        match f.fixed_at {
            Some(x) => {
                line.fixed += 1;
                line.fixed_within_day += u64::from(within_day(f.first_detected, x));
            }
            None => line.open += 1,
        }
        findings.push(Line {
            rule: f.rule.clone(),
            clause: f.clause.clone(),
            teacher: f.teacher.clone(),
            class: f.class.clone(),
            subject: f.subject.clone(),
            date: f.date,
            what: f.what.clone(),
            found_at: f.first_detected.with_timezone(&zone).naive_local(),
            fixed_at: f.fixed_at.map(|x| x.with_timezone(&zone).naive_local()),
            key: f.key.clone(),
        });
    }
    findings.sort_by(|a, b| {
        (rule_order(&a.rule), &a.teacher, &a.class, a.date, &a.key).cmp(&(
            rule_order(&b.rule),
            &b.teacher,
            &b.class,
            b.date,
            &b.key,
        ))
    });
    Ok(Spravka {
        school: report.school.clone(),
        profile: report.profile.clone(),
        from,
        to,
        rules: rules.into_values().collect(),
        findings,
        unchecked: report.unchecked.clone(),
    })
}

/// The справка as sheets: the totals by rule, every finding, what could not be checked.
pub fn sheets(s: &Spravka) -> Vec<Sheet> {
    let mut totals = Sheet::new(
        "Итоги",
        &["Правило", "Пункт положения", "Выявлено", "Устранено", "Из них в течение суток", "Не устранено"],
    );
    for r in &s.rules {
        totals.push(vec![
            Cell::text(&r.rule),
            Cell::text(&r.clause),
            Cell::Int(r.found as i64),
            Cell::Int(r.fixed as i64),
            Cell::Int(r.fixed_within_day as i64),
            Cell::Int(r.open as i64),
        ]);
    }
    let sum = |f: fn(&RuleLine) -> u64| Cell::Int(s.rules.iter().map(f).sum::<u64>() as i64);
    totals.push(vec![
        Cell::text("Всего"),
        Cell::Empty,
        sum(|r| r.found),
        sum(|r| r.fixed),
        sum(|r| r.fixed_within_day),
        sum(|r| r.open),
    ]);
    let mut lines = Sheet::new(
        "Нарушения",
        &[
            "Правило",
            "Пункт положения",
            "Учитель",
            "Класс",
            "Предмет",
            "Дата",
            "Нарушение",
            "Выявлено",
            "Устранено",
            "Состояние",
            "Ключ",
        ],
    );
    for l in &s.findings {
        lines.push(vec![
            Cell::text(&l.rule),
            Cell::text(&l.clause),
            Cell::opt(l.teacher.as_deref()),
            Cell::opt(l.class.as_deref()),
            Cell::opt(l.subject.as_deref()),
            l.date.map(Cell::Date).unwrap_or(Cell::Empty),
            Cell::text(&l.what),
            Cell::DateTime(l.found_at),
            l.fixed_at.map(Cell::DateTime).unwrap_or(Cell::Empty),
            Cell::text(if l.fixed_at.is_some() { "устранено" } else { "не устранено" }),
            Cell::text(&l.key),
        ]);
    }
    let mut unchecked = Sheet::new("Не проверено", &["Правило", "Пункт положения", "Причина"]);
    for u in &s.unchecked {
        unchecked.push(vec![Cell::text(&u.rule), Cell::text(&u.clause), Cell::text(&u.reason)]);
    }
    let mut about = Sheet::new("Сведения", &["Показатель", "Значение"]);
    for (k, v) in [
        ("Документ", "Справка по итогам мониторинга ведения электронного журнала".to_string()),
        ("Школа", s.school.clone()),
        ("Месяц", super::month_name(s.from)),
        ("Период", format!("{}–{}", s.from.format("%d.%m.%Y"), s.to.format("%d.%m.%Y"))),
        ("Положение", s.profile.clone()),
    ] {
        about.push(vec![Cell::text(k), Cell::text(v)]);
    }
    vec![totals, lines, unchecked, about]
}
