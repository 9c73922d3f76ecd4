//! Отчёт о ходе внедрения электронных журналов за четверть (REGULATIONS P10; S0 plan 2.6,
//! stages 2.2–2.5): for every school of a district in the store — the systems connected,
//! the last successful sync, students, teachers and parents counted, the share of parents
//! reading the journal where the source tells it, journal completeness (lessons with their
//! topic and homework), timeliness of marks under the school's own regulation, marks per
//! student per subject, findings per rule; the district's totals, the change from the
//! previous quarter, and native charts in the XLSX (drawn again in the PDF).
//!
//! **Aggregates only** (K5): the municipal level sees no personal data. The store counts
//! ([`Store::journal_aggregates`], one statement for every school): no person's record, name,
//! id or finding's text is read out, let alone written.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use ejgate_sdk::model::{AcademicYear, DateRange, EntityKind, Organization, OrganizationKind, PeriodKind, StudyPeriod};
use serde::Serialize;
use uuid::Uuid;

use super::table::{Cell, ChartSpec, Sheet};
use crate::config::Config;
use crate::monitor::profile::Deadline;
use crate::store::{AggregateRequest, RunStatus, Store};

/// Which quarter: its number in the academic year, and the year («2025/2026»; the latest
/// the store holds when not given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarter {
    pub number: u8,
    pub year: Option<String>,
}

/// The figures of one school over one quarter.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// «2 четверть»
    pub period: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Уроков проведено
    pub lessons: u64,
    pub with_topic: u64,
    pub with_homework: u64,
    /// Отметок за уроки четверти
    pub marks: u64,
    /// Marks whose entry time the source gives and whose deadline the profile sets
    pub marks_judged: u64,
    /// Of those, entered by the deadline (the profile's M1)
    pub marks_on_time: u64,
    /// (student, subject) pairs that had lessons in the quarter
    pub student_subjects: u64,
    /// Guardians who read the journal in the quarter (activity or acknowledgement records);
    /// `None`: the source does not tell
    pub parents_reading: Option<u64>,
    /// Findings of monitoring about the quarter, by rule
    pub findings: BTreeMap<String, u64>,
}

impl Figures {
    pub fn findings_total(&self) -> u64 {
        self.findings.values().sum()
    }
    pub fn marks_per_student_subject(&self) -> Option<f64> {
        (self.student_subjects > 0).then(|| self.marks as f64 / self.student_subjects as f64)
    }
}

/// One school of the district.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchoolLine {
    pub school: String,
    pub municipality: Option<String>,
    /// The sources in the store that serve the school (its journal first)
    pub sources: Vec<String>,
    /// Their systems («dnevnik», «kiasuo»…), as the configuration names them
    pub systems: Vec<String>,
    /// The regulation profile monitoring judges it by
    pub profile: Option<String>,
    pub last_sync: Option<DateTime<Utc>>,
    pub students: u64,
    pub teachers: u64,
    /// `None`: none of its sources lists parents
    pub parents: Option<u64>,
    /// The quarter; `None` when the school's year has no such quarter
    pub quarter: Option<Figures>,
    pub previous: Option<Figures>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollout {
    pub district: String,
    pub year: String,
    pub quarter: u8,
    pub made_at: DateTime<Utc>,
    pub schools: Vec<SchoolLine>,
    /// The rules with findings in either quarter, in order
    pub rules: Vec<String>,
}

/// The records of a kind of every source, read into their entity type, by source: the
/// small reference kinds (periods, years) the report needs for every school, in one query.
async fn by_source<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    kind: EntityKind,
) -> anyhow::Result<HashMap<String, Vec<(Uuid, T)>>> {
    let mut out: HashMap<String, Vec<(Uuid, T)>> = HashMap::new();
    for r in store.records(kind, None, false).await? {
        let v = serde_json::from_value(r.content)
            .map_err(|e| anyhow::anyhow!("{kind} {} of source «{}» cannot be read: {e}", r.source_id, r.source))?;
        out.entry(r.source).or_default().push((r.id, v));
    }
    Ok(out)
}

/// When a mark of a lesson is due under the profile's M1, in seconds after the start of
/// the lesson's day; `None` when the deadline depends on the day's timetable.
fn due_seconds(deadline: &Deadline) -> Option<i64> {
    use chrono::Timelike;
    match deadline {
        Deadline::SameDay { by } => Some(i64::from(by.num_seconds_from_midnight())),
        Deadline::Days { days } => Some(i64::from(*days) * 86_400 + 86_399),
        Deadline::AfterLessons { .. } => None,
    }
}

/// A school found in the store: the config's `[[school]]` name (or the source's school
/// name when no `[[school]]` names the source), its sources with the journal first.
struct Found {
    name: String,
    config_name: Option<String>,
    sources: Vec<String>,
    org: Organization,
}

fn matches_district(org: &Organization, district: &str) -> bool {
    let d = district.trim().to_lowercase();
    d == "все" || d == "all" || org.municipality.as_deref().is_some_and(|m| m.trim().to_lowercase() == d)
}

/// The quarter `number` of the year, and the quarter before it (of the same or an earlier
/// year), from a source's periods.
fn quarters(
    periods: &[(Uuid, StudyPeriod)],
    years: &[(Uuid, AcademicYear)],
    quarter: &Quarter,
) -> (Option<StudyPeriod>, Option<StudyPeriod>, Option<String>) {
    let year = match &quarter.year {
        Some(name) => years.iter().find(|(_, y)| &y.name == name),
        None => years.iter().max_by_key(|(_, y)| y.start),
    };
    let Some((year_id, year)) = year else { return (None, None, None) };
    let mut qs: Vec<&StudyPeriod> = periods.iter().map(|(_, p)| p).filter(|p| p.kind == PeriodKind::Quarter).collect();
    qs.sort_by_key(|p| p.start);
    let this = qs.iter().position(|p| {
        p.number == quarter.number
            && (p.academic_year == Some(*year_id) || (year.start <= p.start && p.end <= year.end))
    });
    let Some(i) = this else { return (None, None, Some(year.name.clone())) };
    (Some(qs[i].clone()), i.checked_sub(1).map(|j| qs[j].clone()), Some(year.name.clone()))
}

/// What each school is, and what the store is to count for it.
struct Plan {
    found: Found,
    profile: Option<String>,
    systems: Vec<String>,
    last_sync: Option<DateTime<Utc>>,
    this: Option<StudyPeriod>,
    previous: Option<StudyPeriod>,
}

/// The schools of the district with what the store is to count for each (one request per
/// school, in the plans' order), and the academic year's name.
async fn plan(
    store: &dyn Store,
    config: &Config,
    district: &str,
    quarter: &Quarter,
) -> anyhow::Result<(Vec<Plan>, Vec<AggregateRequest>, Option<String>)> {
    // Every school in the store, one per [[school]] (its sources together) or per source.
    let orgs: Vec<crate::store::StoredRecord> = store.records(EntityKind::Organization, None, false).await?;
    let mut found: Vec<Found> = Vec::new();
    let mut municipalities = BTreeSet::new();
    for r in &orgs {
        let org: Organization = serde_json::from_value(r.content.clone()).map_err(|e| {
            anyhow::anyhow!("organization {} of source «{}» cannot be read: {e}", r.source_id, r.source)
        })?;
        if org.kind != OrganizationKind::School {
            continue;
        }
        if let Some(m) = &org.municipality {
            municipalities.insert(m.clone());
        }
        if !matches_district(&org, district) {
            continue;
        }
        let school = config.schools.iter().find(|s| s.sources.contains(&r.source));
        match school {
            Some(s) => {
                if found.iter().any(|f| f.config_name.as_deref() == Some(s.name.as_str())) {
                    continue;
                }
                let sources = s.sources_journal_first();
                found.push(Found { name: s.name.clone(), config_name: Some(s.name.clone()), sources, org });
            }
            None => {
                found.push(Found { name: org.name.clone(), config_name: None, sources: vec![r.source.clone()], org })
            }
        }
    }
    if found.is_empty() {
        anyhow::bail!(
            "the store holds no school of district «{district}»: the districts in it are {} (or give «все» for every school)",
            if municipalities.is_empty() {
                "none".to_string()
            } else {
                municipalities.iter().map(|m| format!("«{m}»")).collect::<Vec<_>>().join(", ")
            }
        );
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));

    let runs = store.runs(u32::MAX / 2).await?;
    let periods: HashMap<String, Vec<(Uuid, StudyPeriod)>> = by_source(store, EntityKind::StudyPeriod).await?;
    let years: HashMap<String, Vec<(Uuid, AcademicYear)>> = by_source(store, EntityKind::AcademicYear).await?;
    let mut year_name: Option<String> = quarter.year.clone();
    let mut plans = Vec::new();
    let mut requests = Vec::new();
    for f in found {
        let journal = f.sources[0].as_str();
        let profile = f
            .config_name
            .as_deref()
            .and_then(|n| config.schools.iter().find(|s| s.name == n))
            .and_then(|s| s.regulation.clone());
        let deadline = match &profile {
            Some(p) => crate::monitor::profile::load(&config.regulations_dir(), p)
                .map_err(|e| anyhow::anyhow!("school «{}»: {e}", f.name))?
                .rules
                .iter()
                .find(|r| r.id == "M1")
                .and_then(|r| r.params.deadline),
            None => None,
        };
        let systems: Vec<String> = f
            .sources
            .iter()
            .map(|s| {
                config
                    .sources
                    .iter()
                    .find(|c| &c.name == s)
                    .map(|c| c.system.as_str().to_string())
                    .unwrap_or_else(|| "нет в конфигурации".to_string())
            })
            .collect();
        let last_sync = runs
            .iter()
            .filter(|r| f.sources.contains(&r.source) && r.status == RunStatus::Succeeded)
            .filter_map(|r| r.finished_at)
            .max();
        let none = Vec::new();
        let (this, previous, year) = quarters(
            periods.get(journal).unwrap_or(&none),
            years.get(journal).map(Vec::as_slice).unwrap_or(&[]),
            quarter,
        );
        if year_name.is_none() {
            year_name = year;
        }
        requests.push(AggregateRequest {
            sources: f.sources.clone(),
            spans: this.iter().chain(previous.iter()).map(|p| DateRange::new(p.start, p.end)).collect(),
            mark_due_seconds: deadline.as_ref().and_then(due_seconds),
            findings_school: f.config_name.clone(),
        });
        plans.push(Plan { found: f, profile, systems, last_sync, this, previous });
    }

    Ok((plans, requests, year_name))
}

/// What [`build`] asks the store to count ([`Store::journal_aggregates`]) for the schools
/// of `district` and `quarter`: for a benchmark that times the counting on its own.
pub async fn aggregate_requests(
    store: &dyn Store,
    config: &Config,
    district: &str,
    quarter: &Quarter,
) -> anyhow::Result<Vec<AggregateRequest>> {
    Ok(plan(store, config, district, quarter).await?.1)
}

/// Builds the report over the schools of `district` (a municipality as the sources name
/// it, or «все») for `quarter`. `config` tells which sources make one school, their
/// systems and each school's regulation.
pub async fn build(
    store: &dyn Store,
    config: &Config,
    district: &str,
    quarter: &Quarter,
    now: DateTime<Utc>,
) -> anyhow::Result<Rollout> {
    let (plans, requests, year_name) = plan(store, config, district, quarter).await?;
    // Everything counted by the store, for every school in one statement.
    let counted = store.journal_aggregates(&requests).await?;
    let mut lines = Vec::new();
    let mut rules: BTreeSet<String> = BTreeSet::new();
    for (plan, counts) in plans.into_iter().zip(counted) {
        let spans: Vec<&StudyPeriod> = plan.this.iter().chain(plan.previous.iter()).collect();
        let mut figures: Vec<Figures> = spans
            .iter()
            .zip(&counts.spans)
            .map(|(p, a)| Figures {
                period: p.name.clone(),
                from: p.start,
                to: p.end,
                lessons: a.lessons,
                with_topic: a.with_topic,
                with_homework: a.with_homework,
                marks: a.marks,
                marks_judged: a.marks_judged,
                marks_on_time: a.marks_on_time,
                student_subjects: a.student_subjects,
                parents_reading: counts.reading_told.then_some(a.guardians_reading),
                findings: a.findings.clone(),
            })
            .collect();
        for fig in &figures {
            rules.extend(fig.findings.keys().cloned());
        }
        let previous = if plan.previous.is_some() && figures.len() == 2 { figures.pop() } else { None };
        let quarter_figures = if plan.this.is_some() { figures.pop() } else { None };
        lines.push(SchoolLine {
            school: plan.found.name,
            municipality: plan.found.org.municipality.clone(),
            sources: plan.found.sources.clone(),
            systems: plan.systems,
            profile: plan.profile,
            last_sync: plan.last_sync,
            students: counts.students,
            teachers: counts.staff,
            parents: counts.guardians,
            quarter: quarter_figures,
            previous,
        });
    }
    let mut rules: Vec<String> = rules.into_iter().collect();
    rules.sort_by_key(|r| super::teachers::rule_order(r));
    Ok(Rollout {
        district: district.to_string(),
        year: year_name.unwrap_or_default(),
        quarter: quarter.number,
        made_at: now,
        schools: lines,
        rules,
    })
}

fn share(part: u64, whole: u64) -> Cell {
    Cell::share(part, whole)
}

fn opt_num(v: Option<f64>) -> Cell {
    v.map(Cell::Num).unwrap_or(Cell::Empty)
}

/// Sums of a district: the figures of every school's quarter (or previous quarter) added up.
fn total(lines: &[&Figures]) -> Figures {
    let mut t = Figures::default();
    let mut any_reading = false;
    for f in lines {
        t.lessons += f.lessons;
        t.with_topic += f.with_topic;
        t.with_homework += f.with_homework;
        t.marks += f.marks;
        t.marks_judged += f.marks_judged;
        t.marks_on_time += f.marks_on_time;
        t.student_subjects += f.student_subjects;
        if let Some(r) = f.parents_reading {
            any_reading = true;
            t.parents_reading = Some(t.parents_reading.unwrap_or(0) + r);
        }
        for (k, v) in &f.findings {
            *t.findings.entry(k.clone()).or_default() += v;
        }
    }
    if !any_reading {
        t.parents_reading = None;
    }
    t
}

/// The district totals of the quarter and of the previous one.
pub fn totals(r: &Rollout) -> (Figures, Figures) {
    let q: Vec<&Figures> = r.schools.iter().filter_map(|s| s.quarter.as_ref()).collect();
    let p: Vec<&Figures> = r.schools.iter().filter_map(|s| s.previous.as_ref()).collect();
    (total(&q), total(&p))
}

const NOT_TOLD: &str = "источник не сообщает";

/// The report as sheets: the schools with the district's total and charts, the change from
/// the previous quarter, findings per rule, and what the report is.
pub fn sheets(r: &Rollout) -> Vec<Sheet> {
    let (tq, tp) = totals(r);
    let mut schools = Sheet::new(
        "Школы",
        &[
            "Школа",
            "Муниципалитет",
            "Системы",
            "Последняя успешная синхронизация (UTC)",
            "Учеников",
            "Учителей",
            "Родителей",
            "Родителей, читающих журнал",
            "Доля родителей, читающих журнал",
            "Уроков проведено",
            "Доля уроков с темой",
            "Доля уроков с домашним заданием",
            "Доля отметок, выставленных в срок",
            "Отметок на ученика по предмету",
            "Нарушений",
        ],
    );
    let reading = |n: Option<u64>, parents: Option<u64>| match n {
        Some(n) => (Cell::Int(n as i64), parents.map(|p| share(n, p)).unwrap_or(Cell::Empty)),
        None => (Cell::text(NOT_TOLD), Cell::Empty),
    };
    for s in &r.schools {
        let q = s.quarter.as_ref();
        let (read_n, read_share) = reading(q.and_then(|q| q.parents_reading), s.parents);
        schools.push(vec![
            Cell::text(&s.school),
            Cell::opt(s.municipality.as_deref()),
            Cell::text(s.systems.join(", ")),
            s.last_sync.map(|t| Cell::DateTime(t.naive_utc())).unwrap_or(Cell::text("не было")),
            Cell::Int(s.students as i64),
            Cell::Int(s.teachers as i64),
            s.parents.map(|p| Cell::Int(p as i64)).unwrap_or(Cell::text(NOT_TOLD)),
            read_n,
            read_share,
            q.map(|q| Cell::Int(q.lessons as i64)).unwrap_or(Cell::text("нет такой четверти")),
            q.map(|q| share(q.with_topic, q.lessons)).unwrap_or(Cell::Empty),
            q.map(|q| share(q.with_homework, q.lessons)).unwrap_or(Cell::Empty),
            q.map(|q| share(q.marks_on_time, q.marks_judged)).unwrap_or(Cell::Empty),
            opt_num(q.and_then(Figures::marks_per_student_subject).map(|v| (v * 100.0).round() / 100.0)),
            q.map(|q| Cell::Int(q.findings_total() as i64)).unwrap_or(Cell::Empty),
        ]);
    }
    let parents: Option<u64> = r.schools.iter().filter_map(|s| s.parents).reduce(|a, b| a + b);
    let (read_n, read_share) = reading(tq.parents_reading, parents);
    schools.push(vec![
        Cell::text("Итого по району"),
        Cell::Empty,
        Cell::text(format!("школ: {}", r.schools.len())),
        r.schools
            .iter()
            .filter_map(|s| s.last_sync)
            .min()
            .map(|t| Cell::DateTime(t.naive_utc()))
            .unwrap_or(Cell::Empty),
        Cell::Int(r.schools.iter().map(|s| s.students).sum::<u64>() as i64),
        Cell::Int(r.schools.iter().map(|s| s.teachers).sum::<u64>() as i64),
        parents.map(|p| Cell::Int(p as i64)).unwrap_or(Cell::text(NOT_TOLD)),
        read_n,
        read_share,
        Cell::Int(tq.lessons as i64),
        share(tq.with_topic, tq.lessons),
        share(tq.with_homework, tq.lessons),
        share(tq.marks_on_time, tq.marks_judged),
        opt_num(tq.marks_per_student_subject().map(|v| (v * 100.0).round() / 100.0)),
        Cell::Int(tq.findings_total() as i64),
    ]);
    let n = r.schools.len();
    schools.charts.push(ChartSpec {
        title: "Заполнение журнала: доля уроков с темой и с домашним заданием".into(),
        categories: 0,
        values: vec![10, 11],
        horizontal: true,
        rows: Some(n),
    });
    schools.charts.push(ChartSpec {
        title: "Отметок на ученика по предмету".into(),
        categories: 0,
        values: vec![13],
        horizontal: true,
        rows: Some(n),
    });

    let mut change = Sheet::new(
        "Динамика",
        &[
            "Школа",
            "Доля уроков с темой: прошлая четверть",
            "Доля уроков с темой",
            "Изменение, п.п.",
            "Доля уроков с ДЗ: прошлая четверть",
            "Доля уроков с ДЗ",
            "Изменение, п.п.",
            "Отметок на ученика по предмету: прошлая четверть",
            "Отметок на ученика по предмету",
            "Изменение",
            "Нарушений: прошлая четверть",
            "Нарушений",
            "Изменение",
        ],
    );
    let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
    let points = |now: Option<f64>, before: Option<f64>| match (now, before) {
        (Some(a), Some(b)) => Cell::Num(((a - b) * 1000.0).round() / 10.0),
        _ => Cell::Empty,
    };
    let diff = |now: Option<f64>, before: Option<f64>| match (now, before) {
        (Some(a), Some(b)) => Cell::Num(((a - b) * 100.0).round() / 100.0),
        _ => Cell::Empty,
    };
    let mut change_row = |name: &str, q: Option<&Figures>, p: Option<&Figures>| {
        let topic = |f: Option<&Figures>| f.and_then(|f| ratio(f.with_topic, f.lessons));
        let hw = |f: Option<&Figures>| f.and_then(|f| ratio(f.with_homework, f.lessons));
        let per = |f: Option<&Figures>| f.and_then(Figures::marks_per_student_subject);
        let fnd = |f: Option<&Figures>| f.map(|f| f.findings_total() as f64);
        let round2 = |v: Option<f64>| v.map(|v| (v * 100.0).round() / 100.0);
        change.push(vec![
            Cell::text(name),
            topic(p).map(Cell::Share).unwrap_or(Cell::Empty),
            topic(q).map(Cell::Share).unwrap_or(Cell::Empty),
            points(topic(q), topic(p)),
            hw(p).map(Cell::Share).unwrap_or(Cell::Empty),
            hw(q).map(Cell::Share).unwrap_or(Cell::Empty),
            points(hw(q), hw(p)),
            opt_num(round2(per(p))),
            opt_num(round2(per(q))),
            diff(per(q), per(p)),
            opt_num(fnd(p)),
            opt_num(fnd(q)),
            diff(fnd(q), fnd(p)),
        ]);
    };
    for s in &r.schools {
        change_row(&s.school, s.quarter.as_ref(), s.previous.as_ref());
    }
    let has_previous = r.schools.iter().any(|s| s.previous.is_some());
    change_row("Итого по району", Some(&tq), has_previous.then_some(&tp));
    change.charts.push(ChartSpec {
        title: "Доля уроков с темой: прошлая и эта четверть".into(),
        categories: 0,
        values: vec![1, 2],
        horizontal: true,
        rows: Some(n),
    });

    let mut headings = vec!["Школа".to_string()];
    headings.extend(r.rules.iter().cloned());
    headings.push("Всего".into());
    let mut findings = Sheet { name: "Нарушения".into(), headings, rows: Vec::new(), charts: Vec::new() };
    for s in &r.schools {
        let q = s.quarter.as_ref();
        let mut row = vec![Cell::text(&s.school)];
        row.extend(
            r.rules.iter().map(|rule| Cell::Int(q.and_then(|q| q.findings.get(rule)).copied().unwrap_or(0) as i64)),
        );
        row.push(Cell::Int(q.map(Figures::findings_total).unwrap_or(0) as i64));
        findings.push(row);
    }
    let mut row = vec![Cell::text("Итого по району")];
    row.extend(r.rules.iter().map(|rule| Cell::Int(tq.findings.get(rule).copied().unwrap_or(0) as i64)));
    row.push(Cell::Int(tq.findings_total() as i64));
    findings.push(row);
    if !r.rules.is_empty() {
        findings.charts.push(ChartSpec {
            title: "Нарушения по правилам".into(),
            categories: 0,
            values: (1..=r.rules.len()).collect(),
            horizontal: true,
            rows: Some(n),
        });
    }

    let mut about = Sheet::new("Сведения", &["Показатель", "Значение"]);
    let period = r
        .schools
        .iter()
        .find_map(|s| s.quarter.as_ref())
        .map(|q| format!("{}: {}–{}", q.period, q.from.format("%d.%m.%Y"), q.to.format("%d.%m.%Y")))
        .unwrap_or_default();
    for (k, v) in [
        ("Отчёт", "О ходе внедрения электронных журналов (P10)".to_string()),
        ("Район", r.district.clone()),
        ("Учебный год", r.year.clone()),
        ("Четверть", format!("{} ({period})", r.quarter)),
        ("Школ", r.schools.len().to_string()),
        ("Сформирован (UTC)", r.made_at.format("%d.%m.%Y %H:%M").to_string()),
        (
            "Персональные данные",
            "не выводятся: только сводные показатели по школам (муниципальный уровень видит агрегаты)".to_string(),
        ),
        (
            "Своевременность",
            "доля отметок, внесённых к сроку положения школы (правило M1), среди отметок со временем внесения"
                .to_string(),
        ),
        ("Нарушения", "по данным мониторинга ведения журнала (ejgate monitor), за дни четверти".to_string()),
    ] {
        about.push(vec![Cell::text(k), Cell::text(v)]);
    }
    vec![schools, change, findings, about]
}
