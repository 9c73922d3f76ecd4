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
    Attendance, AttendanceStatus, Class, DateRange, EnrollmentStatus, EntityKind, FinalMark, Group, GroupKind,
    Homework, Lesson, LessonStatus, Mark, Organization, OrganizationKind, Person, SpecialFinal, StudyPeriod, Subject,
    TeachingLoad, Work, WorkKind,
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
    /// Drafted written notices (M21: служебная записка of an outage), one per finding.
    pub notices: Vec<Notice>,
}

/// A drafted written notice (служебная записка) for a finding: the text a teacher signs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    /// The finding's key.
    pub key: String,
    pub text: String,
}

/// The rules this version evaluates.
pub const EVALUATED: &[&str] =
    &["M1", "M2", "M3", "M4", "M5", "M6", "M7", "M8", "M9", "M10", "M12", "M19", "M21", "M22"];

/// Why a rule cannot be checked with the data any source gives (REGULATIONS.md): «нельзя
/// проверить по данным этого источника, потому что …».
fn cannot_check(rule: &str) -> Option<&'static str> {
    Some(match rule {
        "M11" => {
            "источник не сообщает, когда выставлена итоговая отметка, а синхронизация, впервые увидевшая её, не \
             говорит, было ли это до срока (итоговые отметки выставляются в последние дни периода)"
        }
        "M13" => {
            "источник не сообщает, когда классный руководитель внёс причину пропуска: видно только текущее \
             состояние отметки посещаемости"
        }
        "M14" => "источник не передаёт приказы о движении учащихся и отметок о проверке данных класса",
        "M15" => "источник не передаёт табель замен и время записи замены или отмены урока",
        "M16" => "источник не передаёт дату публикации расписания, только уроки",
        "M17" => "источник не передаёт сообщения об ошибках и время их получения",
        "M18" => "источник не передаёт входы пользователей и просмотры журнала родителями",
        "M20" => {
            "это обязанность заместителя директора (справка, контроль исправлений), а не запись журнала; \
             устранение нарушений ejgate отмечает сам (нарушения, не найденные при повторной проверке, \
             помечаются устранёнными)"
        }
        _ => return None,
    })
}

/// Hours of the school day in which an outage of the journal is one (M21): the seed names
/// none; lessons, the marks and the homework of the day fall in 08:00–18:00, Monday to
/// Saturday (six-day weeks are common).
const SCHOOL_HOURS: (u32, u32) = (8, 18);

/// A source outage (M21): consecutive failed syncs for the source's unavailability
/// (server errors, broken connections, timeouts), from the first of them to the next
/// successful sync.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outage {
    /// The first failed sync's start (local time of the school).
    pub from: NaiveDateTime,
    /// The next successful sync's start (`None`: not yet).
    pub to: Option<NaiveDateTime>,
    /// The last successful sync before it (the source answered then).
    pub last_good: Option<NaiveDateTime>,
    /// The failed syncs, their local starts.
    pub failed: Vec<NaiveDateTime>,
    /// The last failure's text.
    pub error: String,
}

/// The outages of `source` in its sync runs, in local time of `zone`, oldest first. Failures
/// that are not the source's unavailability (credentials, configuration, the store, a
/// shape we do not read) neither begin nor end one.
pub fn outages(runs: &[SyncRun], source: &str, zone: Tz) -> Vec<Outage> {
    use crate::store::RunErrorKind as K;
    let mut runs: Vec<&SyncRun> = runs.iter().filter(|r| r.source == source).collect();
    runs.sort_by_key(|r| (r.started_at, r.id));
    let local = |t: DateTime<Utc>| t.with_timezone(&zone).naive_local();
    let mut out = Vec::new();
    let mut last_good = None;
    let mut open: Option<Outage> = None;
    for r in runs {
        match r.status {
            RunStatus::Succeeded => {
                if let Some(mut o) = open.take() {
                    o.to = Some(local(r.started_at));
                    out.push(o);
                }
                last_good = Some(local(r.started_at));
            }
            RunStatus::Failed if matches!(r.error_kind, Some(K::Server | K::Transport | K::Timeout)) => {
                let o = open.get_or_insert_with(|| Outage {
                    from: local(r.started_at),
                    to: None,
                    last_good,
                    failed: Vec::new(),
                    error: String::new(),
                });
                o.failed.push(local(r.started_at));
                o.error = r.error.clone().unwrap_or_default();
            }
            _ => {}
        }
    }
    out.extend(open);
    out
}

/// M21: the outages of `source` during school hours of `range` (local time of `zone`), each a
/// finding with its drafted служебная записка to the school's system administrator.
#[allow(clippy::too_many_arguments)]
pub fn outage_findings(
    runs: &[SyncRun],
    source: &str,
    zone: Tz,
    zone_name: &str,
    school: &str,
    rule: &Rule,
    range: DateRange,
    now_local: NaiveDateTime,
) -> (Vec<Finding>, Vec<Notice>) {
    let mut findings = Vec::new();
    let mut notices = Vec::new();
    for o in outages(runs, source, zone) {
        let to = o.to.unwrap_or(now_local);
        let Some((a, b)) = in_school_hours(o.from, to, range) else { continue };
        let key = format!("M21:outage:{}", o.from.format("%Y-%m-%dT%H:%M:%S"));
        let until = o.to.map(ru_dt).unwrap_or_else(|| "сих пор (удачной синхронизации ещё не было)".into());
        let failed: Vec<String> = o.failed.iter().map(|t| t.format("%d.%m %H:%M").to_string()).collect();
        findings.push(Finding {
            key: key.clone(),
            rule: rule.id.clone(),
            clause: rule.clause.clone(),
            severity: rule.severity,
            teacher: None,
            class: None,
            subject: None,
            date: Some(a.date()),
            lesson: None,
            mark: None,
            what: format!(
                "электронный журнал был недоступен в учебное время: с {} до {} ({} неудачных синхронизаций подряд); \
                 нужна служебная записка системному администратору",
                ru_dt(o.from),
                until,
                o.failed.len()
            ),
            evidence: format!(
                "журнал синхронизаций ejgate: неудачные попытки {} (последняя ошибка: {}); {}; точность — \
                 до интервала между синхронизациями",
                failed.join(", "),
                o.error,
                o.last_good
                    .map(|t| format!("предыдущая удачная синхронизация {}", ru_dt(t)))
                    .unwrap_or_else(|| "удачных синхронизаций до неё не было".into())
            ),
        });
        notices.push(Notice {
            key,
            text: format!(
                "Системному администратору {school}\n\
                 от учителя ______________________ (Ф. И. О.)\n\n\
                 СЛУЖЕБНАЯ ЗАПИСКА\n\n\
                 Сообщаю, что {} с {} по {} (местное время, {zone_name}) электронный журнал был недоступен: \
                 {} попыток обращения к нему завершились ошибкой ({}). В это время выставить оценки и \
                 записать домашние задания в электронный журнал было технически невозможно; записи будут \
                 внесены после восстановления его работы.\n\n\
                 Основание: {} («{}»).\n\n\
                 Дата ______________          Подпись ______________\n",
                ru_d(a.date()),
                a.format("%H:%M"),
                if b.date() == a.date() { b.format("%H:%M").to_string() } else { ru_dt(b) },
                o.failed.len(),
                o.error,
                rule.clause,
                rule.text
            ),
        });
    }
    (findings, notices)
}

/// The school-hours part of `[from, to)` on the days of `range`: (first, last) local moments,
/// or `None` when the interval misses every school day's hours.
fn in_school_hours(from: NaiveDateTime, to: NaiveDateTime, range: DateRange) -> Option<(NaiveDateTime, NaiveDateTime)> {
    use chrono::Datelike;
    let mut day = from.date().max(range.from);
    let mut hit: Option<(NaiveDateTime, NaiveDateTime)> = None;
    while day <= to.date().min(range.to) {
        if day.weekday() != chrono::Weekday::Sun {
            let open = day.and_hms_opt(SCHOOL_HOURS.0, 0, 0).expect("valid");
            let close = day.and_hms_opt(SCHOOL_HOURS.1, 0, 0).expect("valid");
            let (a, b) = (from.max(open), to.min(close));
            if a < b {
                hit = Some(hit.map_or((a, b), |(x, _)| (x, b)));
            }
        }
        day = day.succ_opt().expect("in range");
    }
    hit
}

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
    /// The starts of every run of the source (whatever its outcome), sorted, local.
    fn all_runs(&self, runs: &[SyncRun], source: &str) -> Vec<NaiveDateTime> {
        let mut v: Vec<NaiveDateTime> =
            runs.iter().filter(|r| r.source == source).map(|r| self.local(r.started_at)).collect();
        v.sort();
        v
    }

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

/// A correction or deletion of a mark from the change log (M7–M9).
struct MarkEdit {
    id: Uuid,
    /// The mark as it was before the change.
    mark: Mark,
    /// The value after a correction (`None`: deleted).
    after: Option<String>,
    /// When the store wrote the change (the sync that saw it).
    at: DateTime<Utc>,
    corrected: bool,
    deleted: bool,
}

impl MarkEdit {
    fn words(&self) -> String {
        match &self.after {
            Some(v) if self.corrected => format!("«{}» изменена на «{v}»", self.mark.value),
            Some(_) => format!("изменена запись отметки «{}»", self.mark.value),
            None => format!("удалена отметка «{}»", self.mark.value),
        }
    }

    fn evidence(&self, ctx: &Ctx) -> String {
        format!(
            "журнал изменений ejgate: изменение получено синхронизацией {} (источник не сообщает время исправления)",
            ru_dt(ctx.local(self.at))
        )
    }
}

/// The source's mark corrections and deletions, oldest first (one query, `Store::edits`).
async fn mark_edits(store: &dyn Store, source: &str) -> Result<Vec<MarkEdit>, MonitorError> {
    let rows = store.edits(source, EntityKind::Mark).await?;
    let read = |v: &serde_json::Value| -> Result<Mark, MonitorError> {
        serde_json::from_value(v.clone())
            .map_err(|e| MonitorError::Data(format!("a change of a mark of source «{source}» cannot be read: {e}")))
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(before) = r.before.as_ref() else { continue };
        let mark = read(before)?;
        let after = r.after.as_ref().map(read).transpose()?;
        let corrected = after.as_ref().is_some_and(|a| a.value != mark.value);
        out.push(MarkEdit {
            id: r.id,
            after: after.map(|a| a.value),
            mark,
            at: r.at,
            corrected,
            deleted: r.op == crate::store::ChangeOp::Delete,
        });
    }
    Ok(out)
}

/// How many of the sorted run starts are at or before `t`: the run that wrote at `t`.
fn run_index(starts: &[NaiveDateTime], t: NaiveDateTime) -> usize {
    starts.partition_point(|s| *s <= t)
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
    let mut notices = Vec::new();
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

    let needs_marks =
        profile.rules.iter().any(|r| matches!(r.id.as_str(), "M1" | "M5" | "M6" | "M7" | "M8" | "M9" | "M10" | "M19"));
    // The change log's corrections and deletions of marks (M7–M9), read once.
    let needs_edits = profile.rules.iter().any(|r| matches!(r.id.as_str(), "M7" | "M8" | "M9"));
    let edits: Vec<MarkEdit> = if needs_edits { mark_edits(store, source).await? } else { Vec::new() };
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
                    add_unchecked(rule, "нельзя проверить по данным этого источника, потому что он не передаёт виды работ (письменная, контрольная, ВШК)".into(), true);
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
                        "нельзя проверить по данным этого источника, потому что срок «в течение часа после окончания \
                         занятий» требует времени окончания уроков, а источник передаёт только номера уроков (нет \
                         расписания звонков)"
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
                        "нельзя проверить по данным этого источника, потому что он не передаёт учебную нагрузку (часов в неделю по предмету)".into(),
                        true,
                    );
                    continue;
                }
                let periods: Vec<Rec<StudyPeriod>> = load(store, EntityKind::StudyPeriod, source).await?;
                let enrollments: Vec<Rec<ejgate_sdk::model::Enrollment>> =
                    load(store, EntityKind::Enrollment, source).await?;
                // Units whose pupils get marks: not the clubs and ГПД (внеурочная деятельность
                // is not marked), not the 1st grade (безотметочное обучение) nor its subgroups.
                let grade: HashMap<Uuid, Option<u8>> = classes.iter().map(|c| (c.id, c.v.grade)).collect();
                let first_grade = |class: Option<Uuid>| class.and_then(|c| grade.get(&c).copied().flatten()) == Some(1);
                let mut ungraded: BTreeSet<Uuid> =
                    classes.iter().filter(|c| first_grade(Some(c.id))).map(|c| c.id).collect();
                for g in &groups {
                    let club =
                        matches!(g.v.kind, GroupKind::Extracurricular | GroupKind::Elective | GroupKind::AfterSchool);
                    if club || first_grade(g.v.class) {
                        ungraded.insert(g.id);
                    }
                }
                // A pupil exempt from the subject in the period («освобождён») needs no marks.
                let exempt: BTreeSet<(Uuid, Uuid, Uuid)> = load::<FinalMark>(store, EntityKind::FinalMark, source)
                    .await?
                    .into_iter()
                    .filter(|f| f.v.special == Some(SpecialFinal::Exempt))
                    .filter_map(|f| f.v.period.map(|p| (f.v.student, f.v.subject, p)))
                    .collect();
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
                    for load in loads.iter().filter(|l| !ungraded.contains(&l.v.unit)) {
                        let hours = load.v.hours_per_week.ceil().max(1.0) as usize;
                        let Some(need) = rule.params.min_marks.get(hours.min(rule.params.min_marks.len()) - 1).copied()
                        else {
                            continue;
                        };
                        for student in students
                            .get(&load.v.unit)
                            .into_iter()
                            .flatten()
                            .filter(|s| !exempt.contains(&(**s, load.v.subject, period.id)))
                        {
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
                let cannot = |what: &str| {
                    format!(
                        "{what}: нельзя проверить по данным этого источника, потому что {}",
                        match what {
                            "классные руководители" =>
                                "ни у одного класса источник не называет классного руководителя (он их не передаёт)",
                            "учителя предметов" =>
                                "источник не передаёт ни учебную нагрузку, ни учителя урока",
                            _ => "источник не передаёт зачисления учеников в классы",
                        }
                    )
                };
                let no_class_teachers = !classes.is_empty() && classes.iter().all(|c| c.v.homeroom_teacher.is_none());
                if check("class_teacher") && no_class_teachers {
                    add_unchecked(rule, cannot("классные руководители"), false);
                } else if check("class_teacher") {
                    for c in classes.iter().filter(|c| c.v.homeroom_teacher.is_none()) {
                        findings.push(base(
                            format!("M22:class_teacher:{}", c.id),
                            Some(c.v.name.clone()),
                            None,
                            format!("у класса {} не указан классный руководитель", c.v.name),
                        ));
                    }
                }
                let no_teachers = loads.is_empty() && lessons.values().all(|l| lesson_teacher(l).is_none());
                if check("subject_teacher") && no_teachers {
                    add_unchecked(rule, cannot("учителя предметов"), false);
                } else if check("subject_teacher") {
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
                    if enrollments.is_empty() {
                        add_unchecked(rule, cannot("ученики в двух классах"), false);
                    }
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
            "M7" => {
                let forbidden = |k: &str| rule.params.other.get(k).and_then(|v| v.as_str()) == Some("forbidden");
                let long_checking: Vec<WorkKind> = rule
                    .params
                    .other
                    .get("long_checking")
                    .and_then(|v| v.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .filter_map(|k| serde_json::from_value(serde_json::Value::String(k.to_string())).ok())
                    .collect();
                // the earliest day a mark went into each work (the lesson where the source names no work)
                let mut first_day: HashMap<Uuid, NaiveDate> = HashMap::new();
                for m in &marks {
                    let Some(at) = m.v.entered_at else { continue };
                    let Some(unit) = m.v.work.or(m.v.lesson) else { continue };
                    let d = first_day.entry(unit).or_insert(at.date());
                    *d = (*d).min(at.date());
                }
                let mut untimed = 0usize;
                for m in &marks {
                    let Some((lid, lesson)) = m.v.lesson.and_then(|l| lessons.get_key_value(&l)) else { continue };
                    if !in_range(lesson) {
                        continue;
                    }
                    let Some(at) = m.v.entered_at else {
                        untimed += 1;
                        continue;
                    };
                    if at.date() < lesson.date {
                        findings.push(finding(
                            rule,
                            format!("M7:future:{}", m.id),
                            Some((lid, lesson)),
                            Some(m.id),
                            m.v.entered_by,
                            format!(
                                "отметка «{}» выставлена {} на будущую дату — урок {}",
                                m.v.value,
                                ru_dt(at),
                                ru_d(lesson.date)
                            ),
                            format!("внесено {} по записи источника", ru_dt(at)),
                        ));
                        continue;
                    }
                    if !forbidden("back_dating") || at.date() == lesson.date {
                        continue;
                    }
                    let work_kind = m.v.work.and_then(|w| works.get(&w)).map(|w| w.kind);
                    if work_kind.is_some_and(|k| long_checking.contains(&k)) {
                        continue;
                    }
                    let Some(first) = m.v.work.or(m.v.lesson).and_then(|u| first_day.get(&u)) else { continue };
                    if *first < at.date() {
                        findings.push(finding(
                            rule,
                            format!("M7:backdated:{}", m.id),
                            Some((lid, lesson)),
                            Some(m.id),
                            m.v.entered_by,
                            format!(
                                "отметка «{}» выставлена задним числом: {} за урок {}, работа которого была оценена ещё {}",
                                m.v.value,
                                ru_dt(at),
                                ru_d(lesson.date),
                                ru_d(*first)
                            ),
                            format!("время внесения отметок этой работы по записи источника: первая {}, эта {}", ru_d(*first), ru_dt(at)),
                        ));
                    }
                }
                if untimed > 0 && forbidden("back_dating") {
                    add_unchecked(
                        rule,
                        format!("{untimed} отметок: источник не сообщает время внесения — выставление задним числом не проверено"),
                        false,
                    );
                }
                if forbidden("corrections") {
                    let mut by_mark: BTreeMap<Uuid, &MarkEdit> = BTreeMap::new();
                    for e in edits.iter().filter(|e| e.corrected || e.deleted) {
                        by_mark.insert(e.id, e);
                    }
                    for e in by_mark.values() {
                        let Some((lid, lesson)) = e.mark.lesson.and_then(|l| lessons.get_key_value(&l)) else {
                            continue;
                        };
                        if !range.contains(lesson.date) {
                            continue;
                        }
                        findings.push(finding(
                            rule,
                            format!("M7:correction:{}", e.id),
                            Some((lid, lesson)),
                            Some(e.id),
                            e.mark.entered_by,
                            format!("отметка за урок {} исправлена: {}", ru_d(lesson.date), e.words()),
                            e.evidence(&ctx),
                        ));
                    }
                }
            }
            "M8" => {
                let days = rule.params.days.unwrap_or(21);
                // «1», «2», «2+», «2-» (numeric below 2.5; «3-» is a satisfactory mark)
                let unsatisfactory = |m: &Mark| m.numeric.is_some_and(|n| n < 2.5);
                let mut by_mark: BTreeMap<String, Finding> = BTreeMap::new();
                let mut undetermined = 0usize;
                for e in edits.iter().filter(|e| unsatisfactory(&e.mark)) {
                    let Some((lid, lesson)) = e.mark.lesson.and_then(|l| lessons.get_key_value(&l)) else { continue };
                    if !range.contains(lesson.date) {
                        continue;
                    }
                    if e.deleted {
                        let key = format!("M8:deleted:{}", e.id);
                        let what = format!(
                            "неудовлетворительная отметка «{}» за урок {} удалена (её можно исправить, удалять нельзя)",
                            e.mark.value,
                            ru_d(lesson.date)
                        );
                        by_mark.insert(
                            key.clone(),
                            finding(
                                rule,
                                key,
                                Some((lid, lesson)),
                                Some(e.id),
                                e.mark.entered_by,
                                what,
                                e.evidence(&ctx),
                            ),
                        );
                        continue;
                    }
                    if !e.corrected {
                        continue;
                    }
                    let Some((due, due_words)) = deadline_of(&Deadline::Days { days }, lesson.date) else { continue };
                    match judge(&ctx.entered(None, Some(&e.at)), due) {
                        Verdict::OnTime => {}
                        Verdict::Undetermined => undetermined += 1,
                        Verdict::Late(evidence) => {
                            let key = format!("M8:late_correction:{}", e.id);
                            let what = format!(
                                "неудовлетворительная отметка за урок {} исправлена позже {days} дней ({due_words}): {}",
                                ru_d(lesson.date),
                                e.words()
                            );
                            by_mark.insert(
                                key.clone(),
                                finding(rule, key, Some((lid, lesson)), Some(e.id), e.mark.entered_by, what, evidence),
                            );
                        }
                    }
                }
                findings.extend(by_mark.into_values());
                if undetermined > 0 {
                    add_unchecked(
                        rule,
                        format!(
                            "{undetermined} исправлений неудовлетворительных отметок: источник не сообщает время исправления, \
                             а синхронизации шли реже срока — уложились ли в {days} дней, не установлено"
                        ),
                        false,
                    );
                }
            }
            "M9" => {
                let periods: Vec<Rec<StudyPeriod>> = load(store, EntityKind::StudyPeriod, source).await?;
                let finals: Vec<Rec<FinalMark>> = load(store, EntityKind::FinalMark, source).await?;
                let final_seen = store.first_seen(EntityKind::FinalMark, source).await?;
                let all_runs = ctx.all_runs(&runs, source);
                // (student, subject, period) → the run that first brought the period mark
                let mut closed: HashMap<(Uuid, Uuid, Uuid), usize> = HashMap::new();
                for f in &finals {
                    let (Some(p), Some(t)) = (f.v.period, final_seen.get(&f.id)) else { continue };
                    closed.insert((f.v.student, f.v.subject, p), run_index(&all_runs, ctx.local(*t)));
                }
                let period_of =
                    |d: NaiveDate| periods.iter().filter(move |p| p.v.start <= d && d <= p.v.end).map(|p| p.id);
                // every change of a mark: its insert (first seen), corrections and deletions
                let mut events: Vec<(Uuid, &Mark, DateTime<Utc>, String)> = marks
                    .iter()
                    .filter_map(|m| {
                        mark_seen.get(&m.id).map(|t| (m.id, &m.v, *t, format!("выставлена отметка «{}»", m.v.value)))
                    })
                    .collect();
                events.extend(edits.iter().map(|e| (e.id, &e.mark, e.at, e.words())));
                let mut by_mark: BTreeMap<Uuid, Finding> = BTreeMap::new();
                for (id, m, at, words) in events {
                    let Some((lid, lesson)) = m.lesson.and_then(|l| lessons.get_key_value(&l)) else { continue };
                    let Some(subject) = m.subject.or(lesson.subject) else { continue };
                    if !range.contains(lesson.date) {
                        continue;
                    }
                    let r = run_index(&all_runs, ctx.local(at));
                    for p in period_of(lesson.date) {
                        let Some(&rf) = closed.get(&(m.student, subject, p)) else { continue };
                        if r > rf {
                            let evidence = format!(
                                "изменение получено синхронизацией {}, а итоговая отметка — более ранней синхронизацией {}",
                                ru_dt(ctx.local(at)),
                                all_runs.get(rf.saturating_sub(1)).map(|t| ru_dt(*t)).unwrap_or_default()
                            );
                            let what = format!(
                                "{}: после выставления итоговой отметки за период изменён журнал за урок {}: {words}",
                                person_name(Some(m.student)).unwrap_or_default(),
                                ru_d(lesson.date)
                            );
                            by_mark.insert(
                                id,
                                finding(
                                    rule,
                                    format!("M9:mark:{id}"),
                                    Some((lid, lesson)),
                                    Some(id),
                                    m.entered_by,
                                    what,
                                    evidence,
                                ),
                            );
                        }
                    }
                }
                findings.extend(by_mark.into_values());
            }
            "M19" => {
                let reports = store.compromised(school).await?;
                if reports.is_empty() {
                    continue;
                }
                if !marks.is_empty() && marks.iter().all(|m| m.v.entered_by.is_none()) {
                    add_unchecked(
                        rule,
                        "нельзя проверить по данным этого источника, потому что он не сообщает, кто выставил отметку \
                         (а логинов источники не передают)"
                            .into(),
                        true,
                    );
                    continue;
                }
                let space = ejgate_sdk::model::IdSpace::new(source);
                let mut undetermined = 0usize;
                for report in &reports {
                    let wanted = report.login.trim().to_lowercase();
                    let by_id = space.id(EntityKind::Person, report.login.trim());
                    let who: BTreeSet<Uuid> = people
                        .iter()
                        .filter(|(id, p)| **id == by_id || crate::report::full_name(p).to_lowercase() == wanted)
                        .map(|(id, _)| *id)
                        .collect();
                    if who.is_empty() {
                        add_unchecked(
                            rule,
                            format!(
                                "логин «{}» не найден: источник не ведёт логинов, а ни код человека, ни Ф. И. О. в источнике \
                                 с ним не совпадают",
                                report.login
                            ),
                            false,
                        );
                        continue;
                    }
                    let from = ctx.local(report.at);
                    for m in marks.iter().filter(|m| m.v.entered_by.is_some_and(|b| who.contains(&b))) {
                        let Some((lid, lesson)) = m.v.lesson.and_then(|l| lessons.get_key_value(&l)) else { continue };
                        if !range.contains(lesson.date) {
                            continue;
                        }
                        let evidence = match ctx.entered(m.v.entered_at, mark_seen.get(&m.id)) {
                            EnteredAt::Source(t) if t >= from => format!("внесено {} по записи источника", ru_dt(t)),
                            EnteredAt::Source(_) => continue,
                            EnteredAt::Sync { seen, .. } if seen < from => continue,
                            EnteredAt::Sync { seen, previous: Some(prev) } if prev >= from => format!(
                                "впервые получено синхронизацией {}; предыдущая синхронизация {} (уже после сообщения) его не имела",
                                ru_dt(seen),
                                ru_dt(prev)
                            ),
                            _ => {
                                undetermined += 1;
                                continue;
                            }
                        };
                        findings.push(finding(
                            rule,
                            format!("M19:{}:{}", report.login.trim(), m.id),
                            Some((lid, lesson)),
                            Some(m.id),
                            m.v.entered_by,
                            format!(
                                "отметка «{}» за урок {} выставлена под логином «{}», о компрометации которого сообщено \
                                 (операции с {} недействительны)",
                                m.v.value,
                                ru_d(lesson.date),
                                report.login.trim(),
                                ru_dt(from)
                            ),
                            evidence,
                        ));
                    }
                }
                if undetermined > 0 {
                    add_unchecked(
                        rule,
                        format!("{undetermined} отметок под скомпрометированными логинами: не установлено, до или после сообщения они внесены"),
                        false,
                    );
                }
                add_unchecked(
                    rule,
                    "посещаемость, темы уроков и домашние задания источник не связывает с тем, кто их внёс: под \
                     скомпрометированным логином проверены только отметки; срок сообщения (рабочий день) не проверяется — \
                     момент, когда о нарушении стало известно, знает только школа"
                        .into(),
                    false,
                );
            }
            "M2" => {
                let Some(deadline) = rule.params.deadline else { continue };
                let attendance: Vec<Rec<Attendance>> = load(store, EntityKind::Attendance, source).await?;
                let seen = store.first_seen(EntityKind::Attendance, source).await?;
                let mut undetermined = 0usize;
                for a in &attendance {
                    let Some((lid, lesson)) = lessons.get_key_value(&a.v.lesson) else { continue };
                    let Some((due, due_words)) = deadline_of(&deadline, lesson.date) else { continue };
                    if !in_range(lesson) || now_local <= due {
                        continue;
                    }
                    match judge(&ctx.entered(a.v.entered_at, seen.get(&a.id)), due) {
                        Verdict::OnTime => {}
                        Verdict::Undetermined => undetermined += 1,
                        Verdict::Late(evidence) => findings.push(finding(
                            rule,
                            format!("M2:attendance:{}", a.id),
                            Some((lid, lesson)),
                            None,
                            None,
                            format!(
                                "{}: {} на уроке {} отмечено позже срока ({due_words})",
                                person_name(Some(a.v.student)).unwrap_or_else(|| a.v.student.to_string()),
                                match a.v.status {
                                    AttendanceStatus::Absent => "отсутствие",
                                    AttendanceStatus::Late => "опоздание",
                                },
                                ru_d(lesson.date)
                            ),
                            evidence,
                        )),
                    }
                }
                if undetermined > 0 {
                    add_unchecked(
                        rule,
                        format!("{undetermined} отметок посещаемости: время внесения не установлено (источник его не сообщает)"),
                        false,
                    );
                }
                add_unchecked(
                    rule,
                    "пропуск, не отмеченный вовсе, по данным не виден: источник передаёт только отсутствия и опоздания, \
                     а не отметку «присутствовал»"
                        .into(),
                    false,
                );
            }
            "M21" => {
                let (f, n) = outage_findings(&runs, source, ctx.zone, &zone_name, school, rule, range, now_local);
                findings.extend(f);
                notices.extend(n);
            }
            id => match cannot_check(id) {
                Some(reason) => add_unchecked(
                    rule,
                    format!("нельзя проверить по данным этого источника, потому что {reason}"),
                    true,
                ),
                None => add_unchecked(rule, "это правило ещё не проверяется этой версией ejgate".into(), true),
            },
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
        notices,
    })
}
