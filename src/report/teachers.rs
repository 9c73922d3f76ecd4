//! Отчёт о работе учителей с электронным журналом за месяц (REGULATIONS P2; S0 4.2в,
//! S2 3.2.9): per teacher, the lessons held and how many have their topic and homework,
//! the marks given, the findings of monitoring by rule and the ones fixed in the month.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use ejgate_sdk::model::{EntityKind, Homework, Lesson, LessonStatus, Mark, Person};
use serde::Serialize;
use uuid::Uuid;

use super::table::{Cell, Sheet};
use crate::monitor::engine::Report;
use crate::store::{Store, StoredFinding};

/// Строка отчёта: one teacher.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeacherRow {
    /// «Фамилия Имя Отчество»; findings without a teacher are under «Учитель не указан»
    pub teacher: String,
    /// Уроков проведено (the substitute's, where there was one)
    pub lessons: u64,
    /// Из них с темой
    pub with_topic: u64,
    /// Из них с домашним заданием
    pub with_homework: u64,
    /// Отметок выставлено на этих уроках
    pub marks: u64,
    /// Нарушений по правилам, found by this month's monitoring
    pub findings: BTreeMap<String, u64>,
    /// Нарушений всего
    pub findings_total: u64,
    /// Устранено за месяц (stored findings of the teacher fixed inside the month)
    pub fixed: u64,
}

/// Отчёт о работе учителей с журналом.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeachersReport {
    pub school: String,
    pub profile: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The rules with a column (those with findings this month), in order
    pub rules: Vec<String>,
    pub rows: Vec<TeacherRow>,
}

pub const NO_TEACHER: &str = "Учитель не указан";

/// The local day of an instant in the school's zone.
pub(crate) fn local_day(t: DateTime<Utc>, zone: Tz) -> NaiveDate {
    t.with_timezone(&zone).date_naive()
}

/// Builds the report from this month's monitoring `report` (of the journal `source`) and
/// the school's stored findings.
pub async fn build(
    store: &dyn Store,
    source: &str,
    report: &Report,
    stored: &[StoredFinding],
) -> anyhow::Result<TeachersReport> {
    let zone: Tz =
        report.time_zone.parse().map_err(|_| anyhow::anyhow!("«{}» is not a time zone", report.time_zone))?;
    let (from, to) = (report.from, report.to);
    let people: Vec<(Uuid, Person)> = super::load(store, EntityKind::Person, Some(source)).await?;
    let names = super::names(&people);
    let lessons: Vec<(Uuid, Lesson)> = super::load(store, EntityKind::Lesson, Some(source)).await?;
    let lessons: HashMap<Uuid, Lesson> =
        lessons.into_iter().filter(|(_, l)| l.status == LessonStatus::Held && from <= l.date && l.date <= to).collect();
    let homework: Vec<(Uuid, Homework)> = super::load(store, EntityKind::Homework, Some(source)).await?;
    let with_homework: HashSet<Uuid> = homework.iter().filter_map(|(_, h)| h.lesson).collect();
    let marks: Vec<(Uuid, Mark)> = super::load(store, EntityKind::Mark, Some(source)).await?;

    let mut rows: BTreeMap<String, TeacherRow> = BTreeMap::new();
    let teacher_of = |l: &Lesson| {
        l.substitute.or(l.teacher).and_then(|t| names.get(&t).cloned()).unwrap_or_else(|| NO_TEACHER.to_string())
    };
    let mut lesson_teacher: HashMap<Uuid, String> = HashMap::new();
    for (id, l) in &lessons {
        let name = teacher_of(l);
        let r = rows.entry(name.clone()).or_insert_with(|| empty(&name));
        r.lessons += 1;
        r.with_topic += u64::from(l.topic.as_deref().is_some_and(|t| !t.trim().is_empty()));
        r.with_homework += u64::from(with_homework.contains(id));
        lesson_teacher.insert(*id, name);
    }
    for (_, m) in &marks {
        if let Some(name) = m.lesson.and_then(|l| lesson_teacher.get(&l)) {
            rows.get_mut(name).expect("a row per lesson teacher").marks += 1;
        }
    }
    let mut rules: BTreeSet<String> = BTreeSet::new();
    for f in &report.findings {
        let name = f.teacher.clone().unwrap_or_else(|| NO_TEACHER.to_string());
        let r = rows.entry(name.clone()).or_insert_with(|| empty(&name));
        *r.findings.entry(f.rule.clone()).or_default() += 1;
        r.findings_total += 1;
        rules.insert(f.rule.clone());
    }
    for f in stored {
        let Some(fixed) = f.fixed_at else { continue };
        let day = local_day(fixed, zone);
        if day < from || day > to {
            continue;
        }
        let name = f.teacher.clone().unwrap_or_else(|| NO_TEACHER.to_string());
        rows.entry(name.clone()).or_insert_with(|| empty(&name)).fixed += 1;
    }
    let mut rules: Vec<String> = rules.into_iter().collect();
    rules.sort_by_key(|r| rule_order(r));
    // Teachers by name, the unnamed last.
    let mut rows: Vec<TeacherRow> = rows.into_values().collect();
    rows.sort_by(|a, b| (a.teacher == NO_TEACHER, &a.teacher).cmp(&(b.teacher == NO_TEACHER, &b.teacher)));
    Ok(TeachersReport { school: report.school.clone(), profile: report.profile.clone(), from, to, rules, rows })
}

fn empty(name: &str) -> TeacherRow {
    TeacherRow {
        teacher: name.to_string(),
        lessons: 0,
        with_topic: 0,
        with_homework: 0,
        marks: 0,
        findings: BTreeMap::new(),
        findings_total: 0,
        fixed: 0,
    }
}

/// M2 before M10: rules by their number.
pub(crate) fn rule_order(rule: &str) -> (u32, String) {
    (rule.trim_start_matches(|c: char| !c.is_ascii_digit()).parse().unwrap_or(u32::MAX), rule.to_string())
}

/// The report as sheets: the teachers, then what was judged.
pub fn sheets(r: &TeachersReport) -> Vec<Sheet> {
    let mut headings: Vec<String> = [
        "Учитель",
        "Уроков проведено",
        "С темой",
        "Доля с темой",
        "С домашним заданием",
        "Доля с заданием",
        "Отметок выставлено",
        "Нарушений всего",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    headings.extend(r.rules.iter().map(|rule| format!("Нарушений {rule}")));
    headings.push("Устранено за месяц".into());
    let mut sheet = Sheet { name: "Учителя".into(), headings, rows: Vec::new(), charts: Vec::new() };
    for t in &r.rows {
        let mut row = vec![
            Cell::text(&t.teacher),
            Cell::Int(t.lessons as i64),
            Cell::Int(t.with_topic as i64),
            Cell::share(t.with_topic, t.lessons),
            Cell::Int(t.with_homework as i64),
            Cell::share(t.with_homework, t.lessons),
            Cell::Int(t.marks as i64),
            Cell::Int(t.findings_total as i64),
        ];
        row.extend(r.rules.iter().map(|rule| Cell::Int(t.findings.get(rule).copied().unwrap_or(0) as i64)));
        row.push(Cell::Int(t.fixed as i64));
        sheet.push(row);
    }
    let mut about = Sheet::new("Сведения", &["Показатель", "Значение"]);
    for (k, v) in [
        ("Отчёт", "Работа учителей с электронным журналом (P2)".to_string()),
        ("Школа", r.school.clone()),
        ("Месяц", super::month_name(r.from)),
        ("Период", format!("{}–{}", r.from.format("%d.%m.%Y"), r.to.format("%d.%m.%Y"))),
        ("Положение", r.profile.clone()),
    ] {
        about.push(vec![Cell::text(k), Cell::text(v)]);
    }
    vec![sheet, about]
}
