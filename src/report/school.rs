//! Отчёты школы (REGULATIONS P1, P3, P5–P9) from one school's journal in the store:
//!
//! - P1 [`progress`]: успеваемость и посещаемость по классам за период или год (S0 5.2,
//!   S1 7.2, S2 3.3.9);
//! - P3 [`activity`]: активность пользователей, where a source tells it (S4 sysadmin 3.5,
//!   S1 7.1), and the work in the journal that the journal itself shows;
//! - P5 [`missed`]: пропущенные уроки с темами и неудовлетворительные отметки с темами, по
//!   ученикам (S4 deputy 12);
//! - P6 [`completeness`]: заполнение журнала и выполнение программы: часы по нагрузке,
//!   по расписанию и проведённые (S4 deputy 9, 12);
//! - P7 [`control`]: результаты контрольных работ и работ ВШК (S4 deputy 10, 12);
//! - P8 [`forecast`]: прогноз итоговых отметок по текущим отметкам и их весам, группа
//!   риска, и точность прогноза на прошедших периодах (S1 2.7; S4 class teacher 8);
//! - P9 [`diary`]: выписка из дневника ученика за неделю для родителя (S4 1.6, deputy 13).
//!
//! A school's year is small enough to read whole (one query per kind, [`Journal::load`]);
//! each report is a pure function of the journal that builds [`Sheet`]s.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, Weekday};
use ejgate_sdk::model::{
    AbsenceReason, AcademicYear, Acknowledgement, Attendance, AttendanceStatus, Class, Enrollment, EnrollmentStatus,
    EntityKind, FinalMark, Group, Holiday, Homework, Lesson, LessonStatus, Mark, MarkScale, PeriodKind, Person, Role,
    SpecialFinal, StudyPeriod, Subject, TeachingLoad, UserActivity, Work, WorkKind,
};
use uuid::Uuid;

use super::table::{Cell, Sheet};
use crate::store::Store;

/// Журнал школы: every kind a school report reads, from the school's journal source
/// (activity and acknowledgements from every source of the school).
#[derive(Debug, Default)]
pub struct Journal {
    pub people: HashMap<Uuid, Person>,
    pub classes: HashMap<Uuid, Class>,
    pub groups: HashMap<Uuid, Group>,
    pub enrollments: Vec<Enrollment>,
    pub subjects: HashMap<Uuid, Subject>,
    pub loads: Vec<TeachingLoad>,
    pub lessons: HashMap<Uuid, Lesson>,
    pub homework: Vec<Homework>,
    pub works: HashMap<Uuid, Work>,
    pub marks: Vec<Mark>,
    pub finals: Vec<FinalMark>,
    pub attendance: Vec<Attendance>,
    pub periods: HashMap<Uuid, StudyPeriod>,
    pub years: Vec<AcademicYear>,
    pub holidays: Vec<Holiday>,
    pub activity: Vec<UserActivity>,
    pub acknowledgements: Vec<Acknowledgement>,
}

impl Journal {
    /// Reads the journal of `sources` (the journal first), one query per kind, with a
    /// progress bar over the kinds.
    pub async fn load(store: &dyn Store, sources: &[String]) -> anyhow::Result<Journal> {
        let journal = sources.first().map(String::as_str).ok_or_else(|| anyhow::anyhow!("the school has no source"))?;
        let bar = crate::progress::steps("журнал школы", 15 + 2 * sources.len() as u64);
        let mut j = Journal::default();
        macro_rules! read {
            ($kind:expr) => {{
                bar.set_message($kind.as_str());
                let v = super::load(store, $kind, Some(journal)).await?;
                bar.inc(1);
                v
            }};
        }
        j.people = read!(EntityKind::Person).into_iter().collect();
        j.classes = read!(EntityKind::Class).into_iter().collect();
        j.groups = read!(EntityKind::Group).into_iter().collect();
        j.enrollments = read!(EntityKind::Enrollment).into_iter().map(|(_, v)| v).collect();
        j.subjects = read!(EntityKind::Subject).into_iter().collect();
        j.loads = read!(EntityKind::TeachingLoad).into_iter().map(|(_, v)| v).collect();
        j.lessons = read!(EntityKind::Lesson).into_iter().collect();
        j.homework = read!(EntityKind::Homework).into_iter().map(|(_, v)| v).collect();
        j.works = read!(EntityKind::Work).into_iter().collect();
        j.marks = read!(EntityKind::Mark).into_iter().map(|(_, v)| v).collect();
        j.finals = read!(EntityKind::FinalMark).into_iter().map(|(_, v)| v).collect();
        j.attendance = read!(EntityKind::Attendance).into_iter().map(|(_, v)| v).collect();
        j.periods = read!(EntityKind::StudyPeriod).into_iter().collect();
        j.years = read!(EntityKind::AcademicYear).into_iter().map(|(_, v)| v).collect();
        j.holidays = read!(EntityKind::Holiday).into_iter().map(|(_, v)| v).collect();
        for source in sources {
            bar.set_message(format!("активность: {source}"));
            let a: Vec<(Uuid, UserActivity)> = super::load(store, EntityKind::UserActivity, Some(source)).await?;
            j.activity.extend(a.into_iter().map(|(_, v)| v));
            bar.inc(1);
            let a: Vec<(Uuid, Acknowledgement)> = super::load(store, EntityKind::Acknowledgement, Some(source)).await?;
            j.acknowledgements.extend(a.into_iter().map(|(_, v)| v));
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(j)
    }

    fn name(&self, id: Uuid) -> String {
        self.people.get(&id).map(super::full_name).unwrap_or_else(|| "(нет в списках)".to_string())
    }

    fn subject(&self, id: Option<Uuid>) -> String {
        id.and_then(|s| self.subjects.get(&s)).map(|s| s.name.clone()).unwrap_or_else(|| "(без предмета)".into())
    }

    fn unit(&self, id: Uuid) -> String {
        self.classes
            .get(&id)
            .map(|c| c.name.clone())
            .or_else(|| self.groups.get(&id).map(|g| g.name.clone()))
            .unwrap_or_else(|| "(класс не найден)".into())
    }

    /// The class of each student: their active enrollment in a class.
    fn class_of(&self) -> HashMap<Uuid, Uuid> {
        self.enrollments
            .iter()
            .filter(|e| e.status == EnrollmentStatus::Active && self.classes.contains_key(&e.unit))
            .map(|e| (e.student, e.unit))
            .collect()
    }

    /// The classes in order (grade, then name).
    fn class_order(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self.classes.keys().copied().collect();
        ids.sort_by(|a, b| {
            let (x, y) = (&self.classes[a], &self.classes[b]);
            (x.grade, &x.name).cmp(&(y.grade, &y.name))
        });
        ids
    }

    fn class_name(&self, class_of: &HashMap<Uuid, Uuid>, student: Uuid) -> String {
        class_of.get(&student).map(|c| self.unit(*c)).unwrap_or_else(|| "(не в классе)".into())
    }
}

/// Период отчёта: a study period of the school's latest year, or the whole year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// «2 четверть», «2025/2026 учебный год»
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The study period; `None`: the year (its final marks are the year marks)
    pub period: Option<Uuid>,
}

impl Span {
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.from <= d && d <= self.to
    }
}

/// The span `spec` names: a period's number in the latest year («2»: the second quarter, or
/// trimester, or half-year, whichever the school has), or «год» for the whole year.
pub fn span(j: &Journal, spec: &str) -> anyhow::Result<Span> {
    let year =
        j.years.iter().max_by_key(|y| y.start).ok_or_else(|| anyhow::anyhow!("the journal has no academic year"))?;
    let spec = spec.trim().to_lowercase();
    if spec == "год" || spec == "year" {
        return Ok(Span {
            name: format!("{} учебный год", year.name), from: year.start, to: year.end, period: None
        });
    }
    let mut periods: Vec<(&Uuid, &StudyPeriod)> = j
        .periods
        .iter()
        .filter(|(_, p)| p.kind != PeriodKind::Year && year.start <= p.start && p.end <= year.end)
        .collect();
    periods.sort_by_key(|(_, p)| (p.kind != PeriodKind::Quarter, p.start));
    let number: Option<u8> = spec.parse().ok();
    let found = periods.iter().find(|(_, p)| Some(p.number) == number || p.name.to_lowercase() == spec);
    match found {
        Some((id, p)) => Ok(Span { name: p.name.clone(), from: p.start, to: p.end, period: Some(**id) }),
        None => anyhow::bail!(
            "the year {} has no period «{spec}»: give one of {} or «год»",
            year.name,
            periods.iter().map(|(_, p)| format!("{} ({})", p.number, p.name)).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The study periods of the latest year (and the year itself) that ended on a day in
/// `from..to` (`to` excluded), as spans: what a monthly report job writes P1 for.
pub fn ended_between(j: &Journal, from: NaiveDate, to: NaiveDate) -> Vec<Span> {
    let Some(year) = j.years.iter().max_by_key(|y| y.start) else { return Vec::new() };
    let mut spans: Vec<Span> = j
        .periods
        .iter()
        .filter(|(_, p)| p.kind != PeriodKind::Year && year.start <= p.start && p.end <= year.end)
        .filter(|(_, p)| from <= p.end && p.end < to)
        .map(|(id, p)| Span { name: p.name.clone(), from: p.start, to: p.end, period: Some(*id) })
        .collect();
    spans.sort_by_key(|s| s.to);
    if from <= year.end && year.end < to {
        spans.push(Span {
            name: format!("{} учебный год", year.name), from: year.start, to: year.end, period: None
        });
    }
    spans
}

/// The final marks of the span: the period's, or for the year the year marks (no period,
/// or a period of the kind «год»).
fn finals_of<'a>(j: &'a Journal, span: &Span) -> impl Iterator<Item = &'a FinalMark> + 'a {
    let period = span.period;
    j.finals.iter().filter(move |f| match period {
        Some(p) => f.period == Some(p),
        None => f.period.is_none_or(|p| j.periods.get(&p).is_some_and(|x| x.kind == PeriodKind::Year)),
    })
}

/// A mark's place on the five-point scale: 5, 4, 3 or 2 (1 counts as 2); `None` for marks
/// off that scale or without a number. «4+» (4.25) is a 4, «5−» (4.75) a 5, «3−» (2.75) a 3.
fn five(numeric: Option<f64>, scale: MarkScale) -> Option<u8> {
    let n = numeric?;
    match scale {
        MarkScale::Five => Some(if n >= 4.5 {
            5
        } else if n >= 3.5 {
            4
        } else if n >= 2.5 {
            3
        } else {
            2
        }),
        _ => None,
    }
}

/// Неудовлетворительная отметка: below 3 on the five-point scale, below 3 on the ten-point one.
fn unsatisfactory(m: &Mark) -> bool {
    match (m.scale, m.numeric) {
        (MarkScale::Five, Some(n)) => n < 2.5,
        (MarkScale::Ten, Some(n)) => n < 3.0,
        _ => false,
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn about(rows: &[(&str, String)]) -> Sheet {
    let mut s = Sheet::new("Сведения", &["Показатель", "Значение"]);
    for (k, v) in rows {
        s.push(vec![Cell::text(*k), Cell::text(v)]);
    }
    s
}

fn period_text(span: &Span) -> String {
    format!("{}: {}–{}", span.name, span.from.format("%d.%m.%Y"), span.to.format("%d.%m.%Y"))
}

// ---- P1 -------------------------------------------------------------------------------

/// Успеваемость ученика по итоговым отметкам периода.
#[derive(Debug, Default, Clone, Copy)]
struct Standing {
    graded: bool,
    passing: bool,
    excellent: bool,
    good: bool,
    one_three: bool,
    failing: bool,
    not_certified: bool,
}

fn standing(finals: &[&FinalMark]) -> Standing {
    let mut s = Standing { graded: !finals.is_empty(), ..Standing::default() };
    let mut values = Vec::new();
    for f in finals {
        match f.special {
            Some(SpecialFinal::NotCertified) => s.not_certified = true,
            Some(SpecialFinal::Fail) => s.failing = true,
            Some(SpecialFinal::Exempt | SpecialFinal::Pass) => {}
            None => match f.numeric {
                Some(n) if n < 2.5 => s.failing = true,
                Some(n) => values.push(n.round() as u8),
                None => {}
            },
        }
    }
    s.passing = s.graded && !s.failing && !s.not_certified;
    let any = !values.is_empty();
    s.excellent = s.passing && any && values.iter().all(|v| *v >= 5);
    s.good = s.passing && any && values.iter().all(|v| *v >= 4) && values.contains(&4);
    s.one_three = s.passing && values.iter().filter(|v| **v == 3).count() == 1 && values.iter().all(|v| *v >= 3);
    s
}

/// P1: успеваемость и посещаемость по классам за период (или год).
pub fn progress(j: &Journal, span: &Span, school: &str) -> Vec<Sheet> {
    let class_of = j.class_of();
    let mut finals: HashMap<Uuid, Vec<&FinalMark>> = HashMap::new();
    let mut numeric: HashMap<Uuid, Vec<f64>> = HashMap::new();
    for f in finals_of(j, span) {
        finals.entry(f.student).or_default().push(f);
        if let (None, Some(n), Some(c)) = (f.special, f.numeric, class_of.get(&f.student)) {
            numeric.entry(*c).or_default().push(n);
        }
    }
    let mut marks_sheet = Sheet::new(
        "Успеваемость",
        &[
            "Класс",
            "Учеников",
            "Аттестовано",
            "Успевают",
            "На «5»",
            "На «4» и «5»",
            "С одной «3»",
            "Неуспевающие",
            "Не аттестованы",
            "Успеваемость",
            "Качество знаний",
            "Средний балл",
        ],
    );
    let mut att_sheet = Sheet::new(
        "Посещаемость",
        &[
            "Класс",
            "Учеников",
            "Пропущено уроков",
            "По болезни",
            "По уважительной причине",
            "По неуважительной причине",
            "Причина не указана",
            "Опозданий",
            "Пропущено уроков на ученика",
        ],
    );
    // Absences of each student on lessons of the span.
    let mut absences: HashMap<Uuid, [u64; 5]> = HashMap::new();
    for a in &j.attendance {
        let Some(l) = j.lessons.get(&a.lesson) else { continue };
        if !span.contains(l.date) {
            continue;
        }
        let e = absences.entry(a.student).or_default();
        match (a.status, a.reason) {
            (AttendanceStatus::Late, _) => e[4] += 1,
            (AttendanceStatus::Absent, Some(AbsenceReason::Illness)) => e[0] += 1,
            (AttendanceStatus::Absent, Some(AbsenceReason::Excused)) => e[1] += 1,
            (AttendanceStatus::Absent, Some(AbsenceReason::Unexcused)) => e[2] += 1,
            (AttendanceStatus::Absent, None) => e[3] += 1,
        }
    }
    let mut totals = [0u64; 8];
    let mut att_totals = [0u64; 6];
    let mut all_numeric = Vec::new();
    let push_marks = |name: &str, c: &[u64; 8], nums: &[f64], sheet: &mut Sheet| {
        sheet.push(vec![
            Cell::text(name),
            Cell::Int(c[0] as i64),
            Cell::Int(c[1] as i64),
            Cell::Int(c[2] as i64),
            Cell::Int(c[3] as i64),
            Cell::Int(c[4] as i64),
            Cell::Int(c[5] as i64),
            Cell::Int(c[6] as i64),
            Cell::Int(c[7] as i64),
            Cell::share(c[2], c[1]),
            Cell::share(c[3] + c[4], c[1]),
            mean(nums).map(|m| Cell::Num(round2(m))).unwrap_or(Cell::Empty),
        ]);
    };
    let push_att = |name: &str, students: u64, a: &[u64; 6], sheet: &mut Sheet| {
        let missed = a[0] + a[1] + a[2] + a[3];
        sheet.push(vec![
            Cell::text(name),
            Cell::Int(students as i64),
            Cell::Int(missed as i64),
            Cell::Int(a[0] as i64),
            Cell::Int(a[1] as i64),
            Cell::Int(a[2] as i64),
            Cell::Int(a[3] as i64),
            Cell::Int(a[4] as i64),
            if students > 0 { Cell::Num(round2(missed as f64 / students as f64)) } else { Cell::Empty },
        ]);
    };
    let mut att_students = 0;
    for class in j.class_order() {
        let students: Vec<Uuid> = class_of.iter().filter(|(_, c)| **c == class).map(|(s, _)| *s).collect();
        let mut c = [0u64; 8];
        c[0] = students.len() as u64;
        let mut a = [0u64; 6];
        for s in &students {
            let st = standing(finals.get(s).map(Vec::as_slice).unwrap_or(&[]));
            let flags = [
                st.graded && !st.not_certified,
                st.passing,
                st.excellent,
                st.good,
                st.one_three,
                st.failing,
                st.not_certified,
            ];
            for (i, f) in flags.iter().enumerate() {
                c[i + 1] += u64::from(*f);
            }
            if let Some(x) = absences.get(s) {
                for (a, x) in a.iter_mut().zip(x) {
                    *a += x;
                }
            }
        }
        let nums = numeric.get(&class).cloned().unwrap_or_default();
        all_numeric.extend(nums.iter().copied());
        let name = j.unit(class);
        push_marks(&name, &c, &nums, &mut marks_sheet);
        push_att(&name, students.len() as u64, &a, &mut att_sheet);
        for (t, c) in totals.iter_mut().zip(c) {
            *t += c;
        }
        for (t, a) in att_totals.iter_mut().zip(a) {
            *t += a;
        }
        att_students += students.len() as u64;
    }
    push_marks("Итого по школе", &totals, &all_numeric, &mut marks_sheet);
    push_att("Итого по школе", att_students, &att_totals, &mut att_sheet);
    let info = about(&[
        ("Отчёт", "Итоги успеваемости и посещаемости по классам (P1)".into()),
        ("Школа", school.into()),
        ("Период", period_text(span)),
        (
            "Как считается",
            "по итоговым отметкам периода (за год — годовым); успевают — без «2» и «н/а»; качество знаний — \
             доля аттестованных на «4» и «5»; пропуски — по отметкам посещаемости за уроки периода"
                .into(),
        ),
    ]);
    vec![marks_sheet, att_sheet, info]
}

// ---- P3 -------------------------------------------------------------------------------

/// The text of the report when no source of the school tells user activity.
pub const NO_ACTIVITY: &str =
    "Источники школы не сообщают активность пользователей (в хранилище нет записей активности)";
/// The same for parents' acknowledgements of the diary.
pub const NO_ACKNOWLEDGEMENTS: &str = "Источники школы не сообщают ознакомление родителей с дневником";

/// P3: активность пользователей за период, где источники её сообщают, и работа сотрудников
/// в журнале, которую показывает сам журнал (отметки, их время и автор).
pub fn activity(j: &Journal, span: &Span, school: &str) -> Vec<Sheet> {
    let role_name = |id: Uuid| {
        let roles = j.people.get(&id).map(|p| p.roles.clone()).unwrap_or_default();
        roles
            .iter()
            .map(|r| match r {
                Role::Student => "ученик",
                Role::Staff => "сотрудник",
                Role::Guardian => "родитель",
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut users = Sheet::new("Активность", &["Пользователь", "Роль", "Дней с активностью", "Действий"]);
    let mut per: BTreeMap<String, (String, BTreeSet<NaiveDate>, u64)> = BTreeMap::new();
    for a in j.activity.iter().filter(|a| span.contains(a.date)) {
        let e = per.entry(j.name(a.person)).or_insert_with(|| (role_name(a.person), BTreeSet::new(), 0));
        e.1.insert(a.date);
        e.2 += u64::from(a.count);
    }
    if j.activity.is_empty() {
        users.push(vec![Cell::text(NO_ACTIVITY), Cell::Empty, Cell::Empty, Cell::Empty]);
    }
    for (name, (role, days, n)) in per {
        users.push(vec![Cell::text(name), Cell::text(role), Cell::Int(days.len() as i64), Cell::Int(n as i64)]);
    }
    let mut acks = Sheet::new("Ознакомление родителей", &["Родитель", "Ученик", "Ознакомлений", "Последнее"]);
    let mut per: BTreeMap<(String, String), (u64, NaiveDateTime)> = BTreeMap::new();
    for a in j.acknowledgements.iter().filter(|a| span.contains(a.at.date())) {
        let e = per.entry((j.name(a.guardian), j.name(a.student))).or_insert((0, a.at));
        e.0 += 1;
        e.1 = e.1.max(a.at);
    }
    if j.acknowledgements.is_empty() {
        acks.push(vec![Cell::text(NO_ACKNOWLEDGEMENTS), Cell::Empty, Cell::Empty, Cell::Empty]);
    }
    for ((g, s), (n, last)) in per {
        acks.push(vec![Cell::text(g), Cell::text(s), Cell::Int(n as i64), Cell::DateTime(last)]);
    }
    // The journal's own evidence: marks entered by each person in the span.
    let mut work = Sheet::new(
        "Работа в журнале",
        &["Сотрудник", "Отметок выставлено", "Дней, когда выставлялись отметки", "Последняя отметка"],
    );
    let mut per: BTreeMap<String, (u64, BTreeSet<NaiveDate>, NaiveDateTime)> = BTreeMap::new();
    for m in &j.marks {
        let (Some(by), Some(at)) = (m.entered_by, m.entered_at) else { continue };
        if !span.contains(at.date()) {
            continue;
        }
        let e = per.entry(j.name(by)).or_insert((0, BTreeSet::new(), at));
        e.0 += 1;
        e.1.insert(at.date());
        e.2 = e.2.max(at);
    }
    for (name, (n, days, last)) in per {
        work.push(vec![Cell::text(name), Cell::Int(n as i64), Cell::Int(days.len() as i64), Cell::DateTime(last)]);
    }
    let info = about(&[
        ("Отчёт", "Активность пользователей (P3)".into()),
        ("Школа", school.into()),
        ("Период", period_text(span)),
        (
            "Источники",
            if j.activity.is_empty() {
                format!("{NO_ACTIVITY}; лист «Работа в журнале» — по времени и автору отметок в самом журнале")
            } else {
                "записи активности источников; лист «Работа в журнале» — по времени и автору отметок".into()
            },
        ),
    ]);
    vec![users, acks, work, info]
}

// ---- P5 -------------------------------------------------------------------------------

fn reason_text(a: &Attendance) -> &'static str {
    match (a.status, a.reason) {
        (AttendanceStatus::Late, _) => "опоздание",
        (_, Some(AbsenceReason::Illness)) => "по болезни",
        (_, Some(AbsenceReason::Excused)) => "по уважительной причине",
        (_, Some(AbsenceReason::Unexcused)) => "без уважительной причины",
        (_, None) => "причина не указана",
    }
}

/// P5: пропущенные уроки с их темами и неудовлетворительные отметки с темами уроков, по
/// ученикам (опоздания не считаются пропуском).
pub fn missed(j: &Journal, span: &Span, school: &str) -> Vec<Sheet> {
    let class_of = j.class_of();
    let topic =
        |l: &Lesson| l.topic.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| "(тема не записана)".into());
    let mut absences = Sheet::new("Пропуски", &["Класс", "Ученик", "Дата", "Урок", "Предмет", "Тема урока", "Причина"]);
    let mut rows = Vec::new();
    let mut per: BTreeMap<(String, String), [u64; 3]> = BTreeMap::new();
    for a in j.attendance.iter().filter(|a| a.status == AttendanceStatus::Absent) {
        let Some(l) = j.lessons.get(&a.lesson) else { continue };
        if !span.contains(l.date) {
            continue;
        }
        let (class, name) = (j.class_name(&class_of, a.student), j.name(a.student));
        let e = per.entry((class.clone(), name.clone())).or_default();
        e[0] += 1;
        e[1] += u64::from(a.reason != Some(AbsenceReason::Illness) && a.reason != Some(AbsenceReason::Excused));
        rows.push((class, name, l.date, l.number.unwrap_or(0), j.subject(l.subject), topic(l), reason_text(a)));
    }
    rows.sort();
    for (class, name, date, number, subject, topic, reason) in rows {
        absences.push(vec![
            Cell::text(class),
            Cell::text(name),
            Cell::Date(date),
            if number > 0 { Cell::Int(i64::from(number)) } else { Cell::Empty },
            Cell::text(subject),
            Cell::text(topic),
            Cell::text(reason),
        ]);
    }
    let mut bad = Sheet::new(
        "Неудовлетворительные отметки",
        &["Класс", "Ученик", "Дата", "Предмет", "Тема урока", "Работа", "Отметка"],
    );
    let mut rows = Vec::new();
    for m in j.marks.iter().filter(|m| unsatisfactory(m)) {
        let Some(l) = m.lesson.and_then(|l| j.lessons.get(&l)) else { continue };
        if !span.contains(l.date) {
            continue;
        }
        let (class, name) = (j.class_name(&class_of, m.student), j.name(m.student));
        per.entry((class.clone(), name.clone())).or_default()[2] += 1;
        let work = m
            .work
            .and_then(|w| j.works.get(&w))
            .map(|w| w.title.clone().unwrap_or_else(|| w.source_type.clone()))
            .unwrap_or_default();
        rows.push((class, name, l.date, j.subject(m.subject.or(l.subject)), topic(l), work, m.value.clone()));
    }
    rows.sort();
    for (class, name, date, subject, topic, work, value) in rows {
        bad.push(vec![
            Cell::text(class),
            Cell::text(name),
            Cell::Date(date),
            Cell::text(subject),
            Cell::text(topic),
            Cell::text(work),
            Cell::text(value),
        ]);
    }
    let mut students = Sheet::new(
        "По ученикам",
        &["Класс", "Ученик", "Пропущено уроков", "Из них без уважительной причины", "Неудовлетворительных отметок"],
    );
    for ((class, name), c) in per {
        students.push(vec![
            Cell::text(class),
            Cell::text(name),
            Cell::Int(c[0] as i64),
            Cell::Int(c[1] as i64),
            Cell::Int(c[2] as i64),
        ]);
    }
    let info = about(&[
        ("Отчёт", "Пропущенные уроки и неудовлетворительные отметки с темами (P5)".into()),
        ("Школа", school.into()),
        ("Период", period_text(span)),
        ("Неудовлетворительная отметка", "ниже «3» по пятибалльной шкале (1, 2, 2+, 2−)".into()),
    ]);
    vec![students, absences, bad, info]
}

// ---- P6 -------------------------------------------------------------------------------

/// Учебных недель в периоде: school days (Monday to Friday outside the holidays) over 5.
pub fn study_weeks(j: &Journal, span: &Span) -> f64 {
    let mut days = 0u32;
    let mut d = span.from;
    while d <= span.to {
        let weekday = !matches!(d.weekday(), Weekday::Sat | Weekday::Sun);
        if weekday && !j.holidays.iter().any(|h| h.start <= d && d <= h.end) {
            days += 1;
        }
        d = d.checked_add_days(Days::new(1)).expect("a next day");
    }
    f64::from(days) / 5.0
}

/// P6: заполнение журнала и выполнение программы по классам (группам) и предметам: часы по
/// нагрузке, уроки по расписанию и проведённые, темы, домашние задания, отметки на ученика.
pub fn completeness(j: &Journal, span: &Span, school: &str) -> Vec<Sheet> {
    let weeks = study_weeks(j, span);
    #[derive(Default)]
    struct Line {
        hours: f64,
        teachers: BTreeSet<String>,
        scheduled: u64,
        held: u64,
        topic: u64,
        homework: u64,
        marks: u64,
    }
    let mut lines: BTreeMap<(Uuid, Uuid), Line> = BTreeMap::new();
    for l in &j.loads {
        let e = lines.entry((l.unit, l.subject)).or_default();
        e.hours += l.hours_per_week;
        e.teachers.insert(j.name(l.teacher));
    }
    let with_homework: HashSet<Uuid> = j.homework.iter().filter_map(|h| h.lesson).collect();
    let mut marks_of: HashMap<Uuid, u64> = HashMap::new();
    for m in &j.marks {
        if let Some(l) = m.lesson {
            *marks_of.entry(l).or_default() += 1;
        }
    }
    for (id, l) in &j.lessons {
        let Some(subject) = l.subject else { continue };
        if !span.contains(l.date) {
            continue;
        }
        let e = lines.entry((l.unit, subject)).or_default();
        e.scheduled += 1;
        if l.status == LessonStatus::Held {
            e.held += 1;
            e.topic += u64::from(l.topic.as_deref().is_some_and(|t| !t.trim().is_empty()));
            e.homework += u64::from(with_homework.contains(id));
            e.marks += marks_of.get(id).copied().unwrap_or(0);
        }
    }
    let mut students: HashMap<Uuid, u64> = HashMap::new();
    for e in j.enrollments.iter().filter(|e| e.status == EnrollmentStatus::Active) {
        *students.entry(e.unit).or_default() += 1;
    }
    let mut sheet = Sheet::new(
        "Выполнение программы",
        &[
            "Класс (группа)",
            "Предмет",
            "Учитель",
            "Часов в неделю",
            "Часов по нагрузке за период",
            "Уроков по расписанию",
            "Проведено",
            "Выполнение плана",
            "Выполнение расписания",
            "С темой",
            "Доля уроков с темой",
            "С домашним заданием",
            "Доля уроков с ДЗ",
            "Отметок",
            "Учеников",
            "Отметок на ученика",
        ],
    );
    let mut order: Vec<((Uuid, Uuid), Line)> = lines.into_iter().collect();
    order.sort_by_key(|((u, s), _)| (j.unit(*u), j.subject(Some(*s))));
    let mut t = (0.0f64, 0u64, 0u64, 0u64, 0u64, 0u64);
    for ((unit, subject), l) in order {
        let planned = (l.hours * weeks).round();
        let n = students.get(&unit).copied().unwrap_or(0);
        t = (t.0 + planned, t.1 + l.scheduled, t.2 + l.held, t.3 + l.topic, t.4 + l.homework, t.5 + l.marks);
        sheet.push(vec![
            Cell::text(j.unit(unit)),
            Cell::text(j.subject(Some(subject))),
            Cell::text(l.teachers.into_iter().collect::<Vec<_>>().join(", ")),
            Cell::Num(l.hours),
            Cell::Num(planned),
            Cell::Int(l.scheduled as i64),
            Cell::Int(l.held as i64),
            if planned > 0.0 { Cell::Share(l.held as f64 / planned) } else { Cell::Empty },
            Cell::share(l.held, l.scheduled),
            Cell::Int(l.topic as i64),
            Cell::share(l.topic, l.held),
            Cell::Int(l.homework as i64),
            Cell::share(l.homework, l.held),
            Cell::Int(l.marks as i64),
            Cell::Int(n as i64),
            if n > 0 { Cell::Num(round2(l.marks as f64 / n as f64)) } else { Cell::Empty },
        ]);
    }
    sheet.push(vec![
        Cell::text("Итого по школе"),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Num(t.0),
        Cell::Int(t.1 as i64),
        Cell::Int(t.2 as i64),
        if t.0 > 0.0 { Cell::Share(t.2 as f64 / t.0) } else { Cell::Empty },
        Cell::share(t.2, t.1),
        Cell::Int(t.3 as i64),
        Cell::share(t.3, t.2),
        Cell::Int(t.4 as i64),
        Cell::share(t.4, t.2),
        Cell::Int(t.5 as i64),
        Cell::Empty,
        Cell::Empty,
    ]);
    let info = about(&[
        ("Отчёт", "Заполнение журнала и выполнение учебного плана (P6)".into()),
        ("Школа", school.into()),
        ("Период", period_text(span)),
        ("Учебных недель", format!("{weeks:.1} (учебные дни с понедельника по пятницу вне каникул, делённые на 5)")),
        (
            "Как считается",
            "часов по нагрузке — часов в неделю × учебных недель; уроков по расписанию — все уроки периода в \
             журнале (проведённые, отменённые, запланированные); выполнение — проведено к часам по нагрузке и к \
             расписанию"
                .into(),
        ),
    ]);
    vec![sheet, info]
}

// ---- P7 -------------------------------------------------------------------------------

/// P7: результаты контрольных работ и работ внутришкольного контроля (ВШК) за период.
pub fn control(j: &Journal, span: &Span, school: &str) -> Vec<Sheet> {
    let mut marks_of: HashMap<Uuid, Vec<&Mark>> = HashMap::new();
    for m in &j.marks {
        if let Some(w) = m.work {
            marks_of.entry(w).or_default().push(m);
        }
    }
    let mut rows = Vec::new();
    for (id, w) in &j.works {
        if !matches!(w.kind, WorkKind::Control | WorkKind::InternalControl) {
            continue;
        }
        let Some(l) = w.lesson.and_then(|l| j.lessons.get(&l)) else { continue };
        if !span.contains(l.date) {
            continue;
        }
        rows.push((l.date, j.unit(l.unit), j.subject(l.subject), l.number, *id, w, l));
    }
    rows.sort_by(|a, b| (a.0, &a.1, &a.2, a.3).cmp(&(b.0, &b.1, &b.2, b.3)));
    let mut sheet = Sheet::new(
        "Контрольные работы",
        &[
            "Дата",
            "Класс (группа)",
            "Предмет",
            "Учитель",
            "Работа",
            "Вид",
            "Писали",
            "«5»",
            "«4»",
            "«3»",
            "«2»",
            "Успеваемость",
            "Качество",
            "Средний балл",
        ],
    );
    for (date, unit, subject, _, id, w, l) in rows {
        let marks = marks_of.get(&id).map(Vec::as_slice).unwrap_or(&[]);
        let mut c = [0u64; 4];
        let mut nums = Vec::new();
        for m in marks {
            if let Some(v) = five(m.numeric, m.scale) {
                c[(5 - v) as usize] += 1;
                nums.push(m.numeric.unwrap_or(0.0));
            }
        }
        let wrote = c.iter().sum::<u64>();
        sheet.push(vec![
            Cell::Date(date),
            Cell::text(unit),
            Cell::text(subject),
            Cell::text(l.substitute.or(l.teacher).map(|t| j.name(t)).unwrap_or_default()),
            Cell::text(w.title.clone().unwrap_or_else(|| w.source_type.clone())),
            Cell::text(if w.kind == WorkKind::Control { "контрольная" } else { "ВШК" }),
            Cell::Int(wrote as i64),
            Cell::Int(c[0] as i64),
            Cell::Int(c[1] as i64),
            Cell::Int(c[2] as i64),
            Cell::Int(c[3] as i64),
            Cell::share(c[0] + c[1] + c[2], wrote),
            Cell::share(c[0] + c[1], wrote),
            mean(&nums).map(|m| Cell::Num(round2(m))).unwrap_or(Cell::Empty),
        ]);
    }
    let info = about(&[
        ("Отчёт", "Результаты контрольных работ и ВШК (P7)".into()),
        ("Школа", school.into()),
        ("Период", period_text(span)),
        (
            "Как считается",
            "успеваемость — доля «3», «4», «5»; качество — доля «4» и «5»; «4+» — «4», «5−» — «5»".into(),
        ),
    ]);
    vec![sheet, info]
}

// ---- P8 -------------------------------------------------------------------------------

/// Прогноз итоговой отметки одного ученика по одному предмету.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub student: Uuid,
    pub subject: Uuid,
    /// Отметок к дате прогноза
    pub marks: u64,
    /// Средний взвешенный балл (weights of the marks, 1 where none)
    pub mean: Option<f64>,
    /// The forecast: 2–5, or `None` («н/а»: fewer than [`MIN_MARKS`] marks)
    pub value: Option<u8>,
}

/// Fewer marks than this and the forecast is «н/а» (not certified).
pub const MIN_MARKS: u64 = 2;
/// The risk of «н/а»: fewer marks than this by the date (S1 5.2: at least 3 at 1 hour a week).
pub const FEW_MARKS: u64 = 3;

impl Forecast {
    /// В группе риска: the forecast is «2» or «н/а», or the marks are too few.
    pub fn at_risk(&self) -> bool {
        self.value.is_none_or(|v| v <= 2) || self.marks < FEW_MARKS
    }
}

/// The forecasts of the span as of `as_of`: for every student and subject taught to the
/// student's classes and groups in the span up to that day, the weighted mean of the marks
/// of lessons up to that day, rounded half up to 2–5.
pub fn forecasts(j: &Journal, span: &Span, as_of: NaiveDate) -> Vec<Forecast> {
    let upto = |d: NaiveDate| span.contains(d) && d <= as_of;
    let mut taught: HashSet<(Uuid, Uuid)> = HashSet::new();
    for l in j.lessons.values().filter(|l| l.status == LessonStatus::Held && upto(l.date)) {
        if let Some(s) = l.subject {
            taught.insert((l.unit, s));
        }
    }
    let mut pairs: BTreeMap<(Uuid, Uuid), (f64, f64, u64)> = BTreeMap::new();
    for e in j.enrollments.iter().filter(|e| e.status == EnrollmentStatus::Active) {
        for (unit, subject) in &taught {
            if *unit == e.unit {
                pairs.entry((e.student, *subject)).or_default();
            }
        }
    }
    for m in &j.marks {
        let Some(l) = m.lesson.and_then(|l| j.lessons.get(&l)) else { continue };
        let (Some(n), Some(subject)) = (m.numeric, m.subject.or(l.subject)) else { continue };
        if !upto(l.date) || m.scale != MarkScale::Five {
            continue;
        }
        let w = m.weight.unwrap_or(1.0);
        let e = pairs.entry((m.student, subject)).or_default();
        e.0 += w * n;
        e.1 += w;
        e.2 += 1;
    }
    pairs
        .into_iter()
        .map(|((student, subject), (sum, weight, n))| {
            let mean = (weight > 0.0).then(|| sum / weight);
            let value = mean.filter(|_| n >= MIN_MARKS).map(|m| ((m + 0.5).floor() as i64).clamp(2, 5) as u8);
            Forecast { student, subject, marks: n, mean, value }
        })
        .collect()
}

/// Точность прогноза за один прошедший период: forecasts made `days_before` its end, set
/// against the final marks given.
#[derive(Debug, Clone, PartialEq)]
pub struct Backtest {
    pub period: String,
    pub days_before: u64,
    /// Pairs with a final mark that is a number or «н/а»
    pub pairs: u64,
    pub exact: u64,
    pub within_one: u64,
    /// Finals «2» or «н/а»
    pub failing: u64,
    /// Of those, in the forecast's group at risk
    pub failing_flagged: u64,
}

/// Back-tests the forecast on every period of the latest year whose final marks are in the
/// journal: forecasts `days_before` each period's end against the period's final marks.
pub fn backtest(j: &Journal, days_before: &[u64]) -> Vec<Backtest> {
    let Some(year) = j.years.iter().max_by_key(|y| y.start) else { return Vec::new() };
    let mut periods: Vec<(&Uuid, &StudyPeriod)> = j
        .periods
        .iter()
        .filter(|(_, p)| p.kind != PeriodKind::Year && year.start <= p.start && p.end <= year.end)
        .collect();
    periods.sort_by_key(|(_, p)| p.start);
    let mut out = Vec::new();
    for (id, p) in periods {
        let finals: HashMap<(Uuid, Uuid), &FinalMark> =
            j.finals.iter().filter(|f| f.period == Some(*id)).map(|f| ((f.student, f.subject), f)).collect();
        if finals.is_empty() {
            continue;
        }
        let span = Span { name: p.name.clone(), from: p.start, to: p.end, period: Some(*id) };
        for &days in days_before {
            let as_of = p.end.checked_sub_days(Days::new(days)).unwrap_or(p.start);
            let fc: HashMap<(Uuid, Uuid), Forecast> =
                forecasts(j, &span, as_of).into_iter().map(|f| ((f.student, f.subject), f)).collect();
            let mut b = Backtest {
                period: p.name.clone(),
                days_before: days,
                pairs: 0,
                exact: 0,
                within_one: 0,
                failing: 0,
                failing_flagged: 0,
            };
            for (key, f) in &finals {
                let actual: Option<u8> = match (f.special, f.numeric) {
                    (Some(SpecialFinal::NotCertified), _) => None,
                    (None, Some(n)) => Some(n.round() as u8),
                    _ => continue,
                };
                let forecast = fc.get(key);
                let predicted = forecast.and_then(|f| f.value);
                b.pairs += 1;
                b.exact += u64::from(predicted == actual);
                b.within_one += u64::from(match (predicted, actual) {
                    (Some(x), Some(y)) => x.abs_diff(y) <= 1,
                    (None, None) => true,
                    _ => false,
                });
                if actual.is_none_or(|v| v <= 2) {
                    b.failing += 1;
                    b.failing_flagged += u64::from(forecast.is_none_or(Forecast::at_risk));
                }
            }
            out.push(b);
        }
    }
    out
}

/// The days before a period's end the back-test forecasts at.
pub const BACKTEST_DAYS: [u64; 2] = [14, 0];

/// P8: прогноз итоговых отметок периода на дату, группа риска, точность прогноза на
/// прошедших периодах года.
pub fn forecast(j: &Journal, span: &Span, as_of: NaiveDate, school: &str) -> Vec<Sheet> {
    let class_of = j.class_of();
    let headings =
        ["Класс", "Ученик", "Предмет", "Отметок", "Средний взвешенный балл", "Прогноз", "Группа риска", "Почему"];
    let mut all = Sheet::new("Прогноз", &headings);
    let mut risk = Sheet::new("Группа риска", &headings);
    let mut rows: Vec<(String, String, String, Forecast)> = forecasts(j, span, as_of)
        .into_iter()
        .map(|f| (j.class_name(&class_of, f.student), j.name(f.student), j.subject(Some(f.subject)), f))
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
    for (class, name, subject, f) in rows {
        let why = match f.value {
            None => format!("мало отметок для аттестации: {}", f.marks),
            Some(v) if v <= 2 => "прогноз «2»".to_string(),
            Some(_) if f.marks < FEW_MARKS => format!("мало отметок: {}", f.marks),
            Some(_) => String::new(),
        };
        let row = vec![
            Cell::text(class),
            Cell::text(name),
            Cell::text(subject),
            Cell::Int(f.marks as i64),
            f.mean.map(|m| Cell::Num(round2(m))).unwrap_or(Cell::Empty),
            Cell::text(f.value.map(|v| v.to_string()).unwrap_or_else(|| "н/а".into())),
            Cell::text(if f.at_risk() { "да" } else { "" }),
            Cell::text(why),
        ];
        if f.at_risk() {
            risk.push(row.clone());
        }
        all.push(row);
    }
    let mut accuracy = Sheet::new(
        "Точность прогноза",
        &[
            "Период",
            "Прогноз за дней до конца периода",
            "Итоговых отметок",
            "Прогноз совпал",
            "Точность",
            "Ошибка не больше 1 балла",
            "Итоговых «2» и «н/а»",
            "Из них в группе риска прогноза",
        ],
    );
    for b in backtest(j, &BACKTEST_DAYS) {
        accuracy.push(vec![
            Cell::text(&b.period),
            Cell::Int(b.days_before as i64),
            Cell::Int(b.pairs as i64),
            Cell::Int(b.exact as i64),
            Cell::share(b.exact, b.pairs),
            Cell::share(b.within_one, b.pairs),
            Cell::Int(b.failing as i64),
            Cell::Int(b.failing_flagged as i64),
        ]);
    }
    let info = about(&[
        ("Отчёт", "Прогноз итоговых отметок и группа риска (P8)".into()),
        ("Школа", school.into()),
        ("Период", period_text(span)),
        ("Прогноз на дату", as_of.format("%d.%m.%Y").to_string()),
        (
            "Как считается",
            format!(
                "средний взвешенный балл отметок за уроки периода до даты прогноза (веса работ; «4+» = 4,25), \
                 округлённый до целого; меньше {MIN_MARKS} отметок — «н/а»; группа риска — прогноз «2» или «н/а» \
                 или меньше {FEW_MARKS} отметок; точность — прогноз за {} и за {} дней до конца каждого \
                 прошедшего периода против выставленных итоговых отметок",
                BACKTEST_DAYS[0], BACKTEST_DAYS[1]
            ),
        ),
    ]);
    vec![all, risk, accuracy, info]
}

// ---- P9 -------------------------------------------------------------------------------

/// The student a name names: «Фамилия Имя [Отчество]» or its beginning, case and «ё»
/// folded; refused when none or several match (naming them with their classes).
pub fn find_student(j: &Journal, name: &str) -> anyhow::Result<Uuid> {
    let fold = |s: &str| s.to_lowercase().replace('ё', "е").split_whitespace().collect::<Vec<_>>().join(" ");
    let wanted = fold(name);
    let class_of = j.class_of();
    let mut found: Vec<(Uuid, String)> = j
        .people
        .iter()
        .filter(|(_, p)| p.roles.contains(&Role::Student))
        .map(|(id, p)| (*id, super::full_name(p)))
        .filter(|(_, n)| {
            let n = fold(n);
            n == wanted || n.starts_with(&format!("{wanted} "))
        })
        .collect();
    found.sort_by(|a, b| a.1.cmp(&b.1));
    match found.len() {
        1 => Ok(found[0].0),
        0 => anyhow::bail!("no student «{name}» in the journal: give the last and first name as the journal has them"),
        _ => anyhow::bail!(
            "several students match «{name}»: {}; give the full name",
            found
                .iter()
                .map(|(id, n)| format!("{n} ({})", j.class_name(&class_of, *id)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The Monday and Sunday of the week of `day`.
pub fn week_of(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let monday = day.checked_sub_days(Days::new(u64::from(day.weekday().num_days_from_monday()))).expect("a Monday");
    (monday, monday.checked_add_days(Days::new(6)).expect("a Sunday"))
}

const WEEKDAYS: [&str; 7] = ["понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"];

/// P9: выписка из электронного дневника ученика за неделю (для родителя без интернета):
/// held lessons of the student's classes and groups, with topic, homework, the student's
/// marks and attendance.
pub fn diary(j: &Journal, student: Uuid, day: NaiveDate, school: &str) -> Vec<Sheet> {
    let (monday, sunday) = week_of(day);
    let enrolled = |unit: Uuid, d: NaiveDate| {
        j.enrollments.iter().any(|e| {
            e.student == student
                && e.unit == unit
                && e.from.is_none_or(|f| f <= d)
                && e.to.is_none_or(|t| d <= t)
                && (e.status == EnrollmentStatus::Active || e.to.is_some())
        })
    };
    let mut homework: HashMap<Uuid, Vec<&str>> = HashMap::new();
    for h in &j.homework {
        if let Some(l) = h.lesson {
            homework.entry(l).or_default().push(h.text.as_str());
        }
    }
    let mut marks: HashMap<Uuid, Vec<&str>> = HashMap::new();
    for m in j.marks.iter().filter(|m| m.student == student) {
        if let Some(l) = m.lesson {
            marks.entry(l).or_default().push(m.value.as_str());
        }
    }
    let attendance: HashMap<Uuid, &Attendance> =
        j.attendance.iter().filter(|a| a.student == student).map(|a| (a.lesson, a)).collect();
    let mut lessons: Vec<(&Uuid, &Lesson)> = j
        .lessons
        .iter()
        .filter(|(_, l)| {
            l.status == LessonStatus::Held && monday <= l.date && l.date <= sunday && enrolled(l.unit, l.date)
        })
        .collect();
    lessons.sort_by_key(|(_, l)| (l.date, l.number, j.subject(l.subject)));
    let mut sheet = Sheet::new(
        "Дневник",
        &["Дата", "День недели", "Урок", "Предмет", "Тема урока", "Домашнее задание", "Отметки", "Посещаемость"],
    );
    for (id, l) in lessons {
        let mut hw = homework.get(id).cloned().unwrap_or_default();
        hw.sort_unstable();
        let mut mk = marks.get(id).cloned().unwrap_or_default();
        mk.sort_unstable();
        sheet.push(vec![
            Cell::Date(l.date),
            Cell::text(WEEKDAYS[l.date.weekday().num_days_from_monday() as usize]),
            l.number.map(|n| Cell::Int(i64::from(n))).unwrap_or(Cell::Empty),
            Cell::text(j.subject(l.subject)),
            Cell::opt(l.topic.as_deref()),
            Cell::text(hw.join("; ")),
            Cell::text(mk.join(" ")),
            Cell::text(attendance.get(id).map(|a| reason_text(a)).unwrap_or("")),
        ]);
    }
    let class_of = j.class_of();
    let info = about(&[
        ("Выписка", "из электронного дневника за неделю (P9)".into()),
        ("Школа", school.into()),
        ("Ученик", j.name(student)),
        ("Класс", j.class_name(&class_of, student)),
        ("Неделя", format!("{}–{}", monday.format("%d.%m.%Y"), sunday.format("%d.%m.%Y"))),
        ("Подпись родителя", String::new()),
    ]);
    vec![sheet, info]
}
