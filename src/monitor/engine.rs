//! The monitoring engine: one school's journal over a range of days, judged by its
//! regulation profile in the school's local time.
//!
//! Evidence of when something was entered comes from the source's record where it has
//! one (a mark's or a homework's `entered_at`, taken as the school's local time), else from
//! the sync that first saw it: then an entry is late for certain only when the sync before
//! that one started after the deadline and did not have it; otherwise the entry is counted
//! as undetermined and said so, never judged on a guess.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use ejgate_sdk::model::{
    Class, DateRange, EnrollmentStatus, EntityKind, FinalMark, Group, Homework, Lesson, LessonStatus, Mark,
    Organization, OrganizationKind, Person, SpecialFinal, StudyPeriod, Subject, TeachingLoad, Work, WorkKind,
};

use super::profile::{Deadline, Profile, Rule, Severity};
use crate::store::{RunStatus, Store, StoreError, SyncRun};

/// Нарушение: one finding of one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Stable across runs: the rule and the ids of what it is about.
    pub key: String,
    pub rule: String,
    pub clause: String,
    pub severity: Severity,
    pub teacher: Option<String>,
    pub class: Option<String>,
    pub subject: Option<String>,
    /// The lesson's day (or the period's last day), where there is one.
    pub date: Option<NaiveDate>,
    pub lesson: Option<Uuid>,
    pub mark: Option<Uuid>,
    /// What is wrong, in Russian.
    pub what: String,
    /// What the finding rests on and how precise it is, in Russian.
    pub evidence: String,
}

/// A rule of the profile this run could not judge, and why (never passed silently).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unchecked {
    pub rule: String,
    pub clause: String,
    pub reason: String,
    /// The rule as a whole could not be judged (false: only some entries, counted in the reason).
    pub whole: bool,
}

/// Итог проверки одной школы.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub school: String,
    pub source: String,
    pub profile: String,
    pub time_zone: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub findings: Vec<Finding>,
    pub unchecked: Vec<Unchecked>,
}

/// The rules this version evaluates.
pub const EVALUATED: &[&str] = &["M1", "M3", "M4", "M5", "M6", "M10", "M12", "M22"];

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Data(String),
}

struct Rec<T> {
    id: Uuid,
    v: T,
}

async fn load<T: DeserializeOwned>(
    store: &dyn Store,
    kind: EntityKind,
    source: &str,
) -> Result<Vec<Rec<T>>, MonitorError> {
    store
        .records(kind, Some(source), false)
        .await?
        .into_iter()
        .map(|r| {
            serde_json::from_value(r.content).map(|v| Rec { id: r.id, v }).map_err(|e| {
                MonitorError::Data(format!("{kind} {} of source «{source}» cannot be read: {e}", r.source_id))
            })
        })
        .collect()
}

/// When an entry was made, as far as the data tells.
enum EnteredAt {
    /// The source's own record (local time of the school).
    Source(NaiveDateTime),
    /// First seen by the sync at `seen` (local); the sync before it started at `previous`.
    Sync {
        seen: NaiveDateTime,
        previous: Option<NaiveDateTime>,
    },
    Unknown,
}

fn ru_dt(t: NaiveDateTime) -> String {
    t.format("%d.%m.%Y %H:%M").to_string()
}

fn ru_d(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

/// The local instant (exclusive upper bound when `inclusive` is false) a deadline ends.
fn deadline_of(deadline: &Deadline, day: NaiveDate) -> Option<(NaiveDateTime, String)> {
    match deadline {
        Deadline::SameDay { by } => Some((day.and_time(*by), format!("{} {}", ru_d(day), by.format("%H:%M")))),
        Deadline::Days { days } => {
            let last = day.checked_add_days(Days::new(u64::from(*days)))?;
            Some((last.and_hms_opt(23, 59, 59)?, format!("конец дня {}", ru_d(last))))
        }
        Deadline::AfterLessons { .. } => None,
    }
}

/// Late, on time, or not known, with the words of the evidence.
enum Verdict {
    Late(String),
    OnTime,
    Undetermined,
}

fn judge(entered: &EnteredAt, due: NaiveDateTime) -> Verdict {
    match entered {
        EnteredAt::Source(t) if *t > due => {
            Verdict::Late(format!("внесено {} по записи источника (точно до минуты)", ru_dt(*t)))
        }
        EnteredAt::Source(_) => Verdict::OnTime,
        EnteredAt::Sync { seen, .. } if *seen <= due => Verdict::OnTime,
        EnteredAt::Sync { seen, previous: Some(prev) } if *prev > due => Verdict::Late(format!(
            "источник не сообщает время внесения; впервые получено синхронизацией {}, предыдущая синхронизация {} \
             (уже после срока) этой записи не имела",
            ru_dt(*seen),
            ru_dt(*prev)
        )),
        _ => Verdict::Undetermined,
    }
}

struct Ctx {
    zone: Tz,
    runs: Vec<NaiveDateTime>,
}

impl Ctx {
    fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.zone).naive_local()
    }

    fn entered(&self, own: Option<NaiveDateTime>, first_seen: Option<&DateTime<Utc>>) -> EnteredAt {
        if let Some(t) = own {
            return EnteredAt::Source(t);
        }
        let Some(seen) = first_seen else { return EnteredAt::Unknown };
        let seen_local = self.local(*seen);
        // `runs` holds the start of every successful run of the source: the run that wrote
        // `seen` is the latest start before it, the previous sync the one before that.
        let mut starts: Vec<NaiveDateTime> = self.runs.iter().copied().filter(|r| *r < seen_local).collect();
        starts.sort();
        let prev = starts.len().checked_sub(2).map(|i| starts[i]);
        EnteredAt::Sync { seen: seen_local, previous: prev }
    }
}

/// The school's time zone as the journal source's organization record gives it.
pub async fn school_zone(store: &dyn Store, source: &str) -> Result<(String, Tz), MonitorError> {
    let orgs: Vec<Rec<Organization>> = load(store, EntityKind::Organization, source).await?;
    let zone_name =
        orgs.iter().filter(|o| o.v.kind == OrganizationKind::School).find_map(|o| o.v.time_zone.clone()).ok_or_else(
            || {
                MonitorError::Data(format!(
                    "the store holds no school with a time_zone from source «{source}»: sync it first (deadlines are \
                 judged in the school's local time)"
                ))
            },
        )?;
    let zone: Tz = zone_name.parse().map_err(|_| {
        MonitorError::Data(format!("source «{source}»: the school's time zone «{zone_name}» is not an IANA name"))
    })?;
    Ok((zone_name, zone))
}

/// Evaluates the profile's rules over `range` for the school whose journal is `source`.
/// `now` decides which deadlines have passed.
pub async fn evaluate(
    store: &dyn Store,
    school: &str,
    source: &str,
    profile: &Profile,
    range: DateRange,
    now: DateTime<Utc>,
) -> Result<Report, MonitorError> {
    let (zone_name, zone) = school_zone(store, source).await?;
    let runs: Vec<SyncRun> = store.runs(u32::MAX / 2).await?;
    let ctx = Ctx {
        zone,
        runs: runs
            .iter()
            .filter(|r| r.source == source && r.status == RunStatus::Succeeded)
            .map(|r| r.started_at.with_timezone(&zone).naive_local())
            .collect(),
    };
    let now_local = ctx.local(now);

    let people: HashMap<Uuid, Person> =
        load(store, EntityKind::Person, source).await?.into_iter().map(|r| (r.id, r.v)).collect();
    let classes: Vec<Rec<Class>> = load(store, EntityKind::Class, source).await?;
    let groups: Vec<Rec<Group>> = load(store, EntityKind::Group, source).await?;
    let subjects: Vec<Rec<Subject>> = load(store, EntityKind::Subject, source).await?;
    let loads: Vec<Rec<TeachingLoad>> = load(store, EntityKind::TeachingLoad, source).await?;
    let lessons: HashMap<Uuid, Lesson> =
        load(store, EntityKind::Lesson, source).await?.into_iter().map(|r| (r.id, r.v)).collect();
    let works: HashMap<Uuid, Work> =
        load(store, EntityKind::Work, source).await?.into_iter().map(|r| (r.id, r.v)).collect();

    let person_name = |id: Option<Uuid>| id.and_then(|id| people.get(&id)).map(crate::report::full_name);
    let unit_names: HashMap<Uuid, String> = classes
        .iter()
        .map(|c| (c.id, c.v.name.clone()))
        .chain(groups.iter().map(|g| (g.id, g.v.name.clone())))
        .collect();
    let subject_names: HashMap<Uuid, String> = subjects.iter().map(|s| (s.id, s.v.name.clone())).collect();
    let lesson_teacher = |l: &Lesson| l.substitute.or(l.teacher);

    let mut findings = Vec::new();
    let mut unchecked = Vec::new();
    let mut add_unchecked = |rule: &Rule, reason: String, whole: bool| {
        unchecked.push(Unchecked { rule: rule.id.clone(), clause: rule.clause.clone(), reason, whole })
    };
    let finding = |rule: &Rule,
                   key: String,
                   lesson: Option<(&Uuid, &Lesson)>,
                   mark: Option<Uuid>,
                   teacher: Option<Uuid>,
                   what: String,
                   evidence: String| {
        let l = lesson.map(|(_, l)| l);
        Finding {
            key,
            rule: rule.id.clone(),
            clause: rule.clause.clone(),
            severity: rule.severity,
            teacher: person_name(teacher.or_else(|| l.and_then(lesson_teacher))),
            class: l.and_then(|l| unit_names.get(&l.unit).cloned()),
            subject: l.and_then(|l| l.subject).and_then(|s| subject_names.get(&s).cloned()),
            date: l.map(|l| l.date),
            lesson: lesson.map(|(id, _)| *id),
            mark,
            what,
            evidence,
        }
    };
    let in_range = |l: &Lesson| range.contains(l.date) && l.status != LessonStatus::Cancelled;

    let needs_marks = profile.rules.iter().any(|r| matches!(r.id.as_str(), "M1" | "M5" | "M6" | "M10"));
    let marks: Vec<Rec<Mark>> = if needs_marks { load(store, EntityKind::Mark, source).await? } else { Vec::new() };
    let mark_seen = if needs_marks { store.first_seen(EntityKind::Mark, source).await? } else { HashMap::new() };

    for rule in &profile.rules {
        match rule.id.as_str() {
            "M1" | "M5" | "M6" => {
                let kinds: Vec<WorkKind> = rule
                    .params
                    .kinds
                    .iter()
                    .filter_map(|k| serde_json::from_value(serde_json::Value::String(k.clone())).ok())
                    .collect();
                let deadline = match (rule.id.as_str(), rule.params.deadline, rule.params.days) {
                    ("M1", Some(d), _) => d,
                    (_, _, Some(days)) => Deadline::Days { days },
                    _ => continue,
                };
                if rule.id != "M1" && works.is_empty() {
                    add_unchecked(rule, "источник не передаёт виды работ (письменная, контрольная, ВШК): нельзя отличить письменные работы".into(), true);
                    continue;
                }
                let mut undetermined = 0usize;
                for m in &marks {
                    let Some((lid, lesson)) = m.v.lesson.and_then(|l| lessons.get_key_value(&l)) else { continue };
                    if !in_range(lesson) {
                        continue;
                    }
                    let work_kind = m.v.work.and_then(|w| works.get(&w)).map(|w| w.kind);
                    if rule.id != "M1" && !work_kind.is_some_and(|k| kinds.contains(&k)) {
                        continue;
                    }
                    let Some((due, due_words)) = deadline_of(&deadline, lesson.date) else { continue };
                    if now_local <= due {
                        continue;
                    }
                    match judge(&ctx.entered(m.v.entered_at, mark_seen.get(&m.id)), due) {
                        Verdict::OnTime => {}
                        Verdict::Undetermined => undetermined += 1,
                        Verdict::Late(evidence) => findings.push(finding(
                            rule,
                            format!("{}:mark:{}", rule.id, m.id),
                            Some((lid, lesson)),
                            Some(m.id),
                            m.v.entered_by,
                            format!(
                                "отметка «{}» за урок {} выставлена позже срока ({due_words})",
                                m.v.value,
                                ru_d(lesson.date)
                            ),
                            evidence,
                        )),
                    }
                }
                if undetermined > 0 {
                    add_unchecked(
                        rule,
                        format!(
                            "{undetermined} отметок: источник не сообщает время внесения, а синхронизации шли реже срока — \
                             своевременность не установлена"
                        ),
                        false,
                    );
                }
            }
            "M3" => {
                for (lid, lesson) in &lessons {
                    if !in_range(lesson) || lesson.status != LessonStatus::Held {
                        continue;
                    }
                    let due = rule
                        .params
                        .deadline
                        .and_then(|d| deadline_of(&d, lesson.date))
                        .map(|(t, _)| t)
                        .unwrap_or_else(|| lesson.date.and_hms_opt(23, 59, 59).expect("valid"));
                    if now_local <= due || lesson.topic.as_deref().is_some_and(|t| !t.trim().is_empty()) {
                        continue;
                    }
                    findings.push(finding(
                        rule,
                        format!("M3:lesson:{lid}"),
                        Some((lid, lesson)),
                        None,
                        None,
                        format!(
                            "урок {}{}: тема не записана",
                            ru_d(lesson.date),
                            lesson.number.map(|n| format!(", {n}-й")).unwrap_or_default()
                        ),
                        "по данным последней синхронизации тема урока пуста".into(),
                    ));
                }
                if rule.params.other.get("ktp").and_then(|v| v.as_bool()) == Some(true) {
                    add_unchecked(
                        rule,
                        "соответствие темы календарно-тематическому планированию: источник не передаёт КТП".into(),
                        false,
                    );
                }
            }
            "M4" => {
                let Some(deadline) = rule.params.deadline else { continue };
                if matches!(deadline, Deadline::AfterLessons { .. }) {
                    add_unchecked(
                        rule,
                        "срок «в течение часа после окончания занятий» требует времени окончания уроков, а источник \
                         передаёт только номера уроков (нет расписания звонков)"
                            .into(),
                        true,
                    );
                    continue;
                }
                let homework: Vec<Rec<Homework>> = load(store, EntityKind::Homework, source).await?;
                let seen = store.first_seen(EntityKind::Homework, source).await?;
                let mut undetermined = 0usize;
                for h in &homework {
                    let Some((lid, lesson)) = h.v.lesson.and_then(|l| lessons.get_key_value(&l)) else { continue };
                    let Some((due, due_words)) = deadline_of(&deadline, lesson.date) else { continue };
                    if !in_range(lesson) || now_local <= due {
                        continue;
                    }
                    match judge(&ctx.entered(h.v.entered_at, seen.get(&h.id)), due) {
                        Verdict::OnTime => {}
                        Verdict::Undetermined => undetermined += 1,
                        Verdict::Late(evidence) => findings.push(finding(
                            rule,
                            format!("M4:homework:{}", h.id),
                            Some((lid, lesson)),
                            None,
                            None,
                            format!("домашнее задание к уроку {} внесено позже срока ({due_words})", ru_d(lesson.date)),
                            evidence,
                        )),
                    }
                }
                if undetermined > 0 {
                    add_unchecked(
                        rule,
                        format!("{undetermined} заданий: время внесения не установлено (источник его не сообщает)"),
                        false,
                    );
                }
            }
            "M10" => {
                if loads.is_empty() {
                    add_unchecked(
                        rule,
                        "источник не передаёт учебную нагрузку (часов в неделю по предмету)".into(),
                        true,
                    );
                    continue;
                }
                let periods: Vec<Rec<StudyPeriod>> = load(store, EntityKind::StudyPeriod, source).await?;
                let enrollments: Vec<Rec<ejgate_sdk::model::Enrollment>> =
                    load(store, EntityKind::Enrollment, source).await?;
                let mut students: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
                for e in &enrollments {
                    if e.v.status == EnrollmentStatus::Active {
                        students.entry(e.v.unit).or_default().push(e.v.student);
                    }
                }
                for period in periods.iter().filter(|p| range.contains(p.v.end) && now_local.date() > p.v.end) {
                    let span = DateRange::new(period.v.start, period.v.end);
                    // marks per (student, subject, unit) in the period
                    let mut counts: HashMap<(Uuid, Uuid, Uuid), u32> = HashMap::new();
                    for m in &marks {
                        let Some(lesson) = m.v.lesson.and_then(|l| lessons.get(&l)) else { continue };
                        let Some(subject) = m.v.subject.or(lesson.subject) else { continue };
                        if span.contains(lesson.date) {
                            *counts.entry((m.v.student, subject, lesson.unit)).or_default() += 1;
                        }
                    }
                    for load in &loads {
                        let hours = load.v.hours_per_week.ceil().max(1.0) as usize;
                        let Some(need) = rule.params.min_marks.get(hours.min(rule.params.min_marks.len()) - 1).copied()
                        else {
                            continue;
                        };
                        for student in students.get(&load.v.unit).into_iter().flatten() {
                            let have = counts.get(&(*student, load.v.subject, load.v.unit)).copied().unwrap_or(0);
                            if have < need {
                                findings.push(Finding {
                                    key: format!("M10:{}:{student}:{}:{}", period.id, load.v.subject, load.v.unit),
                                    rule: rule.id.clone(),
                                    clause: rule.clause.clone(),
                                    severity: rule.severity,
                                    teacher: person_name(Some(load.v.teacher)),
                                    class: unit_names.get(&load.v.unit).cloned(),
                                    subject: subject_names.get(&load.v.subject).cloned(),
                                    date: Some(period.v.end),
                                    lesson: None,
                                    mark: None,
                                    what: format!(
                                        "{}: {} — {have} отметок за {}, нужно не менее {need} при {} ч в неделю",
                                        person_name(Some(*student)).unwrap_or_else(|| student.to_string()),
                                        subject_names.get(&load.v.subject).cloned().unwrap_or_default(),
                                        period.v.name,
                                        load.v.hours_per_week
                                    ),
                                    evidence: format!(
                                        "отметки уроков {}–{} по данным последней синхронизации",
                                        ru_d(period.v.start),
                                        ru_d(period.v.end)
                                    ),
                                });
                            }
                        }
                    }
                }
            }
            "M12" => {
                let periods: HashMap<Uuid, StudyPeriod> =
                    load(store, EntityKind::StudyPeriod, source).await?.into_iter().map(|r| (r.id, r.v)).collect();
                let finals: Vec<Rec<FinalMark>> = load(store, EntityKind::FinalMark, source).await?;
                for f in &finals {
                    let Some(special) = f.v.special else { continue };
                    let name = match special {
                        SpecialFinal::Exempt => "exempt",
                        SpecialFinal::NotCertified => "not_certified",
                        SpecialFinal::Pass => "pass",
                        SpecialFinal::Fail => "fail",
                    };
                    let end = f.v.period.and_then(|p| periods.get(&p)).map(|p| p.end);
                    if end.is_some_and(|e| !range.contains(e)) || rule.params.allowed.iter().any(|a| a == name) {
                        continue;
                    }
                    findings.push(Finding {
                        key: format!("M12:final:{}", f.id),
                        rule: rule.id.clone(),
                        clause: rule.clause.clone(),
                        severity: rule.severity,
                        teacher: None,
                        class: None,
                        subject: subject_names.get(&f.v.subject).cloned(),
                        date: end,
                        lesson: None,
                        mark: Some(f.id),
                        what: format!(
                            "{}: итоговая отметка «{}» не допускается положением",
                            person_name(Some(f.v.student)).unwrap_or_default(),
                            f.v.value
                        ),
                        evidence: "итоговая отметка по данным последней синхронизации".into(),
                    });
                }
            }
            "M22" => {
                let check = |c: &str| rule.params.checks.iter().any(|x| x == c);
                let base = |key: String, class: Option<String>, subject: Option<String>, what: String| Finding {
                    key,
                    rule: rule.id.clone(),
                    clause: rule.clause.clone(),
                    severity: rule.severity,
                    teacher: None,
                    class,
                    subject,
                    date: None,
                    lesson: None,
                    mark: None,
                    what,
                    evidence: "справочники по данным последней синхронизации".into(),
                };
                if check("class_teacher") {
                    for c in classes.iter().filter(|c| c.v.homeroom_teacher.is_none()) {
                        findings.push(base(
                            format!("M22:class_teacher:{}", c.id),
                            Some(c.v.name.clone()),
                            None,
                            format!("у класса {} не указан классный руководитель", c.v.name),
                        ));
                    }
                }
                if check("subject_teacher") {
                    let taught: BTreeSet<Uuid> = loads.iter().map(|l| l.v.subject).collect();
                    let with_teacher: BTreeSet<(Uuid, Uuid)> = lessons
                        .values()
                        .filter(|l| lesson_teacher(l).is_some())
                        .filter_map(|l| l.subject.map(|s| (s, l.unit)))
                        .collect();
                    let mut pairs: BTreeMap<(Uuid, Uuid), ()> = BTreeMap::new();
                    for l in lessons.values().filter(|l| in_range(l)) {
                        if let Some(s) = l.subject {
                            if !taught.contains(&s) && !with_teacher.contains(&(s, l.unit)) {
                                pairs.insert((s, l.unit), ());
                            }
                        }
                    }
                    for (s, unit) in pairs.keys() {
                        let subject = subject_names.get(s).cloned();
                        findings.push(base(
                            format!("M22:subject_teacher:{s}:{unit}"),
                            unit_names.get(unit).cloned(),
                            subject.clone(),
                            format!(
                                "предмет «{}» ведётся без учителя: нет ни нагрузки, ни учителя урока",
                                subject.unwrap_or_default()
                            ),
                        ));
                    }
                }
                if check("student_in_two_classes") {
                    let class_ids: BTreeSet<Uuid> = classes.iter().map(|c| c.id).collect();
                    let enrollments: Vec<Rec<ejgate_sdk::model::Enrollment>> =
                        load(store, EntityKind::Enrollment, source).await?;
                    let mut by_student: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
                    for e in enrollments
                        .iter()
                        .filter(|e| e.v.status == EnrollmentStatus::Active && class_ids.contains(&e.v.unit))
                    {
                        by_student.entry(e.v.student).or_default().insert(e.v.unit);
                    }
                    for (student, units) in by_student.iter().filter(|(_, u)| u.len() > 1) {
                        let names: Vec<String> = units.iter().filter_map(|u| unit_names.get(u).cloned()).collect();
                        findings.push(base(
                            format!("M22:student_in_two_classes:{student}"),
                            names.first().cloned(),
                            None,
                            format!(
                                "{} числится сразу в классах {}",
                                person_name(Some(*student)).unwrap_or_else(|| student.to_string()),
                                names.join(", ")
                            ),
                        ));
                    }
                }
            }
            _ => add_unchecked(rule, "это правило ещё не проверяется этой версией ejgate".into(), true),
        }
    }
    findings.sort_by(|a, b| {
        (&a.teacher, &a.class, &a.rule, a.date, &a.key).cmp(&(&b.teacher, &b.class, &b.rule, b.date, &b.key))
    });
    Ok(Report {
        school: school.to_string(),
        source: source.to_string(),
        profile: profile.name.clone(),
        time_zone: zone_name,
        from: range.from,
        to: range.to,
        findings,
        unchecked,
    })
}
