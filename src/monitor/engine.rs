//! The monitoring engine: one school's journal over a range of days, judged by its
//! regulation profile in the school's local time.
//!
//! Evidence of when something was entered comes from the source's record where it has
//! one (a mark's or a homework's `entered_at`, taken as the school's local time), else from
//! the sync that first saw it: then an entry is late for certain only when the sync before
//! that one started after the deadline and did not have it; otherwise the entry is counted
//! as undetermined and said so, never judged on a guess. A period mark (M11) without the
//! source's time is judged by the sync that first saw it bounded by the last full sync
//! before that one (only a full run reads every final mark).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use ejgate_sdk::model::{
    AttendanceStatus, Class, DateRange, Enrollment, EnrollmentStatus, EntityKind, FinalMark, Group, GroupKind,
    LessonStatus, Organization, OrganizationKind, Person, SpecialFinal, StudyPeriod, Subject, TeachingLoad, WorkKind,
};

use super::profile::{Deadline, PeriodDeadline, Profile, Rule, Severity};
use crate::store::{ContentRow, RunStatus, Store, StoreError, SyncRun};

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
    &["M1", "M2", "M3", "M4", "M5", "M6", "M7", "M8", "M9", "M10", "M11", "M12", "M19", "M21", "M22"];

/// Why a rule cannot be checked with the data any source gives (REGULATIONS.md): «нельзя
/// проверить по данным этого источника, потому что …».
fn cannot_check(rule: &str) -> Option<&'static str> {
    Some(match rule {
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

/// A record as the engine holds it: its id, what its rules read of it, and when the store
/// first saw it (where the read asked for it).
struct Rec<T> {
    id: Uuid,
    v: T,
    seen: Option<DateTime<Utc>>,
}

/// What [`evaluate`] reads from the store for a profile, and nothing more: the live records
/// of each kind its rules use ([`Store::visit_records`]; the flag: with their first-seen
/// times, the evidence of when an entry was made where the source does not say), and
/// whether it reads the change log's corrections and deletions of marks ([`Store::edits`]).
/// Besides these it reads a few rows: the source's organization (the time zone), the sync
/// runs and the compromised-login reports. The bench's peer reads exactly this list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reads {
    pub kinds: Vec<(EntityKind, bool)>,
    pub mark_edits: bool,
}

impl Reads {
    /// Whether the kind is read, and whether with its first-seen times.
    fn of(&self, kind: EntityKind) -> Option<bool> {
        self.kinds.iter().find(|(k, _)| *k == kind).map(|(_, seen)| *seen)
    }
}

/// The reads of [`evaluate`] under `profile` (see [`Reads`]): the kinds only the rules of the
/// profile need, so that a profile without M2 never reads a year of attendance.
pub fn reads(profile: &Profile) -> Reads {
    use EntityKind as K;
    let has = |ids: &[&str]| profile.rules.iter().any(|r| ids.contains(&r.id.as_str()));
    let with_deadline = |id: &str, after_lessons_too: bool| {
        profile.rules.iter().any(|r| {
            r.id == id
                && r.params.deadline.is_some_and(|d| after_lessons_too || !matches!(d, Deadline::AfterLessons { .. }))
        })
    };
    // The names in findings (teacher, class or group, subject) and the lessons every rule of
    // a journal's entries hangs on.
    let mut kinds =
        vec![(K::Person, false), (K::Class, false), (K::Group, false), (K::Subject, false), (K::Lesson, false)];
    if has(&["M10", "M11", "M22"]) {
        kinds.push((K::TeachingLoad, false));
    }
    if has(&["M5", "M6", "M7"]) {
        kinds.push((K::Work, false));
    }
    if has(&["M1", "M5", "M6", "M7", "M9", "M10", "M19"]) {
        kinds.push((K::Mark, true));
    }
    if with_deadline("M4", false) {
        kinds.push((K::Homework, true));
    }
    if with_deadline("M2", true) {
        kinds.push((K::Attendance, true));
    }
    if has(&["M9", "M10", "M11", "M12"]) {
        kinds.push((K::StudyPeriod, false));
        kinds.push((K::FinalMark, has(&["M9", "M11"])));
    }
    let two_classes =
        profile.rules.iter().any(|r| r.id == "M22" && r.params.checks.iter().any(|c| c == "student_in_two_classes"));
    // M11 names the teacher and the class of a late period mark: the pupil's class from the
    // enrollments, the subject's teacher in it from the teaching loads.
    if has(&["M10", "M11"]) || two_classes {
        kinds.push((K::Enrollment, false));
    }
    Reads { kinds, mark_edits: has(&["M7", "M8", "M9"]) }
}

/// Every live record of `kind` from `source`, each content's JSON text parsed once, straight
/// into `T` ([`Store::visit_records`]): for the big kinds `T` is a view of only the fields
/// the rules use (the rest of the text is skipped, not built), and no `serde_json::Value`
/// is made on the way. With `seen`, each record carries its first-seen time from the same
/// row (no second query, no map to look it up in).
async fn load<T: DeserializeOwned + Send>(
    store: &dyn Store,
    kind: EntityKind,
    source: &str,
    seen: bool,
) -> Result<Vec<Rec<T>>, MonitorError> {
    let mut out = Vec::new();
    let mut failed = None;
    store
        .visit_records(kind, source, seen, &mut |row: ContentRow<'_>| match serde_json::from_str::<T>(row.content) {
            Ok(v) => {
                out.push(Rec { id: row.id, v, seen: row.first_seen });
                ControlFlow::Continue(())
            }
            Err(e) => {
                failed = Some(MonitorError::Data(format!(
                    "{kind} {} of source «{source}» cannot be read: {e}",
                    row.source_id
                )));
                ControlFlow::Break(())
            }
        })
        .await?;
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// [`load`] of a kind the plan reads; nothing for one it does not.
async fn load_planned<T: DeserializeOwned + Send>(
    store: &dyn Store,
    plan: &Reads,
    kind: EntityKind,
    source: &str,
) -> Result<Vec<Rec<T>>, MonitorError> {
    match plan.of(kind) {
        Some(seen) => load(store, kind, source, seen).await,
        None => Ok(Vec::new()),
    }
}

/// Урок, as the rules read it: the topic only as whether one is written (M3).
#[derive(Debug, Clone, Copy, Deserialize)]
struct LessonView {
    unit: Uuid,
    subject: Option<Uuid>,
    date: NaiveDate,
    number: Option<u8>,
    teacher: Option<Uuid>,
    substitute: Option<Uuid>,
    topic: Option<Written>,
    status: LessonStatus,
}

impl LessonView {
    fn has_topic(&self) -> bool {
        self.topic.is_some_and(|t| t.0)
    }
}

/// Whether a text is written (not blank), read from its JSON string without keeping it.
#[derive(Debug, Clone, Copy)]
struct Written(bool);

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Written, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Written;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a text")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Written, E> {
                Ok(Written(!v.trim().is_empty()))
            }
        }
        d.deserialize_str(V)
    }
}

/// A mark as written («5», «4+», «зч», «н/а»), kept inline up to 23 bytes so that a year of
/// marks is read without an allocation for each; a longer text (no journal writes one) goes
/// to the heap.
#[derive(Debug, Clone)]
enum MarkText {
    Inline { len: u8, bytes: [u8; 23] },
    Heap(Box<str>),
}

impl MarkText {
    fn new(s: &str) -> MarkText {
        match u8::try_from(s.len()) {
            Ok(len) if s.len() <= 23 => {
                let mut bytes = [0; 23];
                bytes[..s.len()].copy_from_slice(s.as_bytes());
                MarkText::Inline { len, bytes }
            }
            _ => MarkText::Heap(s.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied whole from a `str` by `new`.
            MarkText::Inline { len, bytes } => std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default(),
            MarkText::Heap(s) => s,
        }
    }
}

impl std::fmt::Display for MarkText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MarkText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MarkText, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = MarkText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mark as written")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MarkText, E> {
                Ok(MarkText::new(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// Отметка, as the rules read it (the model's `Mark` without its scale, weight, comment,
/// «точка»).
#[derive(Debug, Clone, Deserialize)]
struct MarkView {
    student: Uuid,
    lesson: Option<Uuid>,
    work: Option<Uuid>,
    subject: Option<Uuid>,
    value: MarkText,
    /// M8: unsatisfactory below 2.5.
    numeric: Option<f64>,
    entered_at: Option<NaiveDateTime>,
    entered_by: Option<Uuid>,
}

/// Работа: only its kind (M5, M6, M7's long checking).
#[derive(Debug, Clone, Copy, Deserialize)]
struct WorkView {
    kind: WorkKind,
}

/// Домашнее задание: its lesson and entry time (M4), not its text.
#[derive(Debug, Clone, Copy, Deserialize)]
struct HomeworkView {
    lesson: Option<Uuid>,
    entered_at: Option<NaiveDateTime>,
}

/// Посещаемость (M2).
#[derive(Debug, Clone, Copy, Deserialize)]
struct AttendanceView {
    student: Uuid,
    lesson: Uuid,
    status: AttendanceStatus,
    entered_at: Option<NaiveDateTime>,
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

/// A count and its noun in the form the number takes in Russian, `forms` being the forms
/// for 1, for 2–4 and for 5–20: «1 отметка», «3 отметки», «12 отметок», «21 отметка».
fn ru_count(n: usize, forms: [&str; 3]) -> String {
    let form = match (n % 10, n % 100) {
        (_, 11..=14) => forms[2],
        (1, _) => forms[0],
        (2..=4, _) => forms[1],
        _ => forms[2],
    };
    format!("{n} {form}")
}

/// «отметка» counted ([`ru_count`]).
const MARKS: [&str; 3] = ["отметка", "отметки", "отметок"];
/// «дней» after «позже», «не позднее» (the genitive: «позже 21 дня», «позже 3 дней»).
const DAYS_GENITIVE: [&str; 3] = ["дня", "дней", "дней"];

/// The local instant a deadline for the entries of `day` ends (the last moment still on time).
fn deadline_of(deadline: &Deadline, day: NaiveDate) -> Option<NaiveDateTime> {
    match deadline {
        Deadline::SameDay { by } => Some(day.and_time(*by)),
        Deadline::Days { days } => day.checked_add_days(Days::new(u64::from(*days)))?.and_hms_opt(23, 59, 59),
        Deadline::AfterLessons { .. } => None,
    }
}

/// The deadline of [`deadline_of`] in words, for a finding: made only for a late entry (a
/// year of marks judged on time costs no text).
fn deadline_words(deadline: &Deadline, day: NaiveDate) -> String {
    match deadline {
        Deadline::SameDay { by } => format!("{} {}", ru_d(day), by.format("%H:%M")),
        Deadline::Days { days } => match day.checked_add_days(Days::new(u64::from(*days))) {
            Some(last) => format!("конец дня {}", ru_d(last)),
            None => String::new(),
        },
        Deadline::AfterLessons { .. } => String::new(),
    }
}

/// The local instant the period marks of a period that ends on `end` are due by (M11): the
/// last moment still on time.
///
/// - `days_after_end` (S2 3.4.7 «не позднее 2-х дней после окончания учебного периода»): to
///   the end of the `days`-th day after the period's last day.
/// - `last_week` (S4 2.11, учитель 11 «своевременно в течение последней недели каждого
///   учебного периода до начала каникулярного периода»): the last week is the 7 days that
///   end on the period's last day, and the holidays begin the day after it, so a period mark
///   is due by the end of the period's last day; one entered after it is late. One entered
///   before the last week is **not** a finding: the clause asks for the marks in time
///   («своевременно … до начала каникулярного периода») and sets no earliest day, and the
///   harm of an early period mark (marks of the period entered or changed after it) is
///   S4's own M9 (учитель 1: no edits after the period marks), judged on its own.
fn period_due(deadline: &PeriodDeadline, end: NaiveDate) -> Option<NaiveDateTime> {
    match deadline {
        PeriodDeadline::DaysAfterEnd { days } => {
            end.checked_add_days(Days::new(u64::from(*days)))?.and_hms_opt(23, 59, 59)
        }
        PeriodDeadline::LastWeek => end.and_hms_opt(23, 59, 59),
    }
}

/// [`period_due`] in words, for a finding.
fn period_due_words(deadline: &PeriodDeadline, end: NaiveDate) -> String {
    match deadline {
        PeriodDeadline::DaysAfterEnd { days } => match end.checked_add_days(Days::new(u64::from(*days))) {
            Some(last) => {
                format!(
                    "не позднее {} после окончания периода {}: до конца дня {}",
                    ru_count(*days as usize, DAYS_GENITIVE),
                    ru_d(end),
                    ru_d(last)
                )
            }
            None => String::new(),
        },
        PeriodDeadline::LastWeek => format!(
            "в последнюю неделю периода ({}–{}), до начала каникул",
            ru_d(end.checked_sub_days(Days::new(6)).unwrap_or(end)),
            ru_d(end)
        ),
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
    /// The starts of the source's successful runs, local, sorted.
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
        // `runs` holds the start of every successful run of the source, sorted: the run that
        // wrote `seen` is the latest start before it, the previous sync the one before that
        // (a binary search: this is asked for each entry without a time of its own).
        let before = self.runs.partition_point(|r| *r < seen_local);
        let prev = before.checked_sub(2).map(|i| self.runs[i]);
        EnteredAt::Sync { seen: seen_local, previous: prev }
    }

    /// When a period mark was entered, as far as the syncs tell (M11), for a source that
    /// gives no time of its own (all but Dnevnik): the sync that first saw it,
    /// bounded by the last **full** sync before that one (`full`: their local starts,
    /// sorted). Only a full run reads every final mark of the source; incremental runs of
    /// ЭПОС, «Моя школа» and КИАСУО read a pupil's final marks every few nights around a
    /// period's end (`ejgate_sdk::cadence`), so an incremental run that did not have a mark
    /// may just not have read it, and bounding by it could claim a violation not proven.
    fn entered_by_full_syncs(&self, first_seen: Option<&DateTime<Utc>>, full: &[NaiveDateTime]) -> EnteredAt {
        let Some(seen) = first_seen else { return EnteredAt::Unknown };
        let seen = self.local(*seen);
        // the run that wrote it: the latest successful start before `seen`
        let writer = self.runs.partition_point(|r| *r < seen).checked_sub(1).map_or(seen, |i| self.runs[i]);
        let previous = full.partition_point(|f| *f < writer).checked_sub(1).map(|i| full[i]);
        EnteredAt::Sync { seen, previous }
    }
}

/// A correction or deletion of a mark from the change log (M7–M9).
struct MarkEdit {
    id: Uuid,
    /// The mark as it was before the change.
    mark: MarkView,
    /// The value after a correction (`None`: deleted).
    after: Option<MarkText>,
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
    let read = |v: &serde_json::Value| -> Result<MarkView, MonitorError> {
        MarkView::deserialize(v)
            .map_err(|e| MonitorError::Data(format!("a change of a mark of source «{source}» cannot be read: {e}")))
    };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(before) = r.before.as_ref() else { continue };
        let mark = read(before)?;
        let after = r.after.as_ref().map(read).transpose()?;
        let corrected = after.as_ref().is_some_and(|a| a.value.as_str() != mark.value.as_str());
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
    // `Store::records`, ordered by source id: of several schools in a source, the same one
    // every time (a few rows; the records the rules read go through `load`).
    let orgs = store
        .records(EntityKind::Organization, Some(source), false)
        .await?
        .into_iter()
        .map(|r| {
            Organization::deserialize(&r.content).map_err(|e| {
                MonitorError::Data(format!("organization {} of source «{source}» cannot be read: {e}", r.source_id))
            })
        })
        .collect::<Result<Vec<Organization>, MonitorError>>()?;
    let zone_name =
        orgs.iter().filter(|o| o.kind == OrganizationKind::School).find_map(|o| o.time_zone.clone()).ok_or_else(
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
    let mut starts: Vec<NaiveDateTime> = runs
        .iter()
        .filter(|r| r.source == source && r.status == RunStatus::Succeeded)
        .map(|r| r.started_at.with_timezone(&zone).naive_local())
        .collect();
    starts.sort();
    let ctx = Ctx { zone, runs: starts };
    let now_local = ctx.local(now);

    // Everything the profile's rules read, read once up front (`reads`): several rules share
    // the marks, the study periods, the period marks.
    let plan = reads(profile);
    // The marks, most of a year's records, are read and parsed by a task of their own while
    // this one reads the other kinds (on a multi-threaded runtime, on another core).
    let marks = plan.of(EntityKind::Mark).map(|seen| {
        let (store, source) = (store.shared(), source.to_owned());
        tokio::spawn(async move { load::<MarkView>(store.as_ref(), EntityKind::Mark, &source, seen).await })
    });
    let people: HashMap<Uuid, Person> = load_planned(store, &plan, EntityKind::Person, source)
        .await?
        .into_iter()
        .map(|r: Rec<Person>| (r.id, r.v))
        .collect();
    let classes: Vec<Rec<Class>> = load_planned(store, &plan, EntityKind::Class, source).await?;
    let groups: Vec<Rec<Group>> = load_planned(store, &plan, EntityKind::Group, source).await?;
    let subjects: Vec<Rec<Subject>> = load_planned(store, &plan, EntityKind::Subject, source).await?;
    let loads: Vec<Rec<TeachingLoad>> = load_planned(store, &plan, EntityKind::TeachingLoad, source).await?;
    let lessons: HashMap<Uuid, LessonView> = load_planned(store, &plan, EntityKind::Lesson, source)
        .await?
        .into_iter()
        .map(|r: Rec<LessonView>| (r.id, r.v))
        .collect();
    let works: HashMap<Uuid, WorkKind> = load_planned(store, &plan, EntityKind::Work, source)
        .await?
        .into_iter()
        .map(|r: Rec<WorkView>| (r.id, r.v.kind))
        .collect();
    let homework: Vec<Rec<HomeworkView>> = load_planned(store, &plan, EntityKind::Homework, source).await?;
    let attendance: Vec<Rec<AttendanceView>> = load_planned(store, &plan, EntityKind::Attendance, source).await?;
    let periods: Vec<Rec<StudyPeriod>> = load_planned(store, &plan, EntityKind::StudyPeriod, source).await?;
    let finals: Vec<Rec<FinalMark>> = load_planned(store, &plan, EntityKind::FinalMark, source).await?;
    let enrollments: Vec<Rec<Enrollment>> = load_planned(store, &plan, EntityKind::Enrollment, source).await?;
    // The change log's corrections and deletions of marks (M7–M9).
    let edits: Vec<MarkEdit> = if plan.mark_edits { mark_edits(store, source).await? } else { Vec::new() };
    let marks: Vec<Rec<MarkView>> = match marks {
        Some(task) => task
            .await
            .map_err(|e| MonitorError::Data(format!("reading the marks of source «{source}» failed: {e}")))??,
        None => Vec::new(),
    };

    let person_name = |id: Option<Uuid>| id.and_then(|id| people.get(&id)).map(crate::report::full_name);
    let unit_names: HashMap<Uuid, String> = classes
        .iter()
        .map(|c| (c.id, c.v.name.clone()))
        .chain(groups.iter().map(|g| (g.id, g.v.name.clone())))
        .collect();
    let subject_names: HashMap<Uuid, String> = subjects.iter().map(|s| (s.id, s.v.name.clone())).collect();
    let lesson_teacher = |l: &LessonView| l.substitute.or(l.teacher);

    let mut findings = Vec::new();
    let mut notices = Vec::new();
    let mut unchecked = Vec::new();
    let mut add_unchecked = |rule: &Rule, reason: String, whole: bool| {
        unchecked.push(Unchecked { rule: rule.id.clone(), clause: rule.clause.clone(), reason, whole })
    };
    let finding = |rule: &Rule,
                   key: String,
                   lesson: Option<(&Uuid, &LessonView)>,
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
    let in_range = |l: &LessonView| range.contains(l.date) && l.status != LessonStatus::Cancelled;

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
                    if rule.id != "M1" && !m.v.work.and_then(|w| works.get(&w)).is_some_and(|k| kinds.contains(k)) {
                        continue;
                    }
                    let Some(due) = deadline_of(&deadline, lesson.date) else { continue };
                    if now_local <= due {
                        continue;
                    }
                    match judge(&ctx.entered(m.v.entered_at, m.seen.as_ref()), due) {
                        Verdict::OnTime => {}
                        Verdict::Undetermined => undetermined += 1,
                        Verdict::Late(evidence) => findings.push(finding(
                            rule,
                            format!("{}:mark:{}", rule.id, m.id),
                            Some((lid, lesson)),
                            Some(m.id),
                            m.v.entered_by,
                            format!(
                                "отметка «{}» за урок {} выставлена позже срока ({})",
                                m.v.value,
                                ru_d(lesson.date),
                                deadline_words(&deadline, lesson.date)
                            ),
                            evidence,
                        )),
                    }
                }
                if undetermined > 0 {
                    add_unchecked(
                        rule,
                        format!(
                            "{}: источник не сообщает время внесения, а синхронизации шли реже срока — \
                             своевременность не установлена",
                            ru_count(undetermined, MARKS)
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
                        .unwrap_or_else(|| lesson.date.and_hms_opt(23, 59, 59).expect("valid"));
                    if now_local <= due || lesson.has_topic() {
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
                let mut undetermined = 0usize;
                for h in &homework {
                    let Some((lid, lesson)) = h.v.lesson.and_then(|l| lessons.get_key_value(&l)) else { continue };
                    let Some(due) = deadline_of(&deadline, lesson.date) else { continue };
                    if !in_range(lesson) || now_local <= due {
                        continue;
                    }
                    match judge(&ctx.entered(h.v.entered_at, h.seen.as_ref()), due) {
                        Verdict::OnTime => {}
                        Verdict::Undetermined => undetermined += 1,
                        Verdict::Late(evidence) => findings.push(finding(
                            rule,
                            format!("M4:homework:{}", h.id),
                            Some((lid, lesson)),
                            None,
                            None,
                            format!(
                                "домашнее задание к уроку {} внесено позже срока ({})",
                                ru_d(lesson.date),
                                deadline_words(&deadline, lesson.date)
                            ),
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
                let exempt: BTreeSet<(Uuid, Uuid, Uuid)> = finals
                    .iter()
                    .filter(|f| f.v.special == Some(SpecialFinal::Exempt))
                    .filter_map(|f| f.v.period.map(|p| (f.v.student, f.v.subject, p)))
                    .collect();
                let mut students: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
                for e in &enrollments {
                    if e.v.status == EnrollmentStatus::Active {
                        students.entry(e.v.unit).or_default().push(e.v.student);
                    }
                }
                let closed: Vec<&Rec<StudyPeriod>> =
                    periods.iter().filter(|p| range.contains(p.v.end) && now_local.date() > p.v.end).collect();
                // marks per (student, subject, unit) in each closed period, in one pass over
                // the marks (not one per period)
                let mut counts: Vec<HashMap<(Uuid, Uuid, Uuid), u32>> = vec![HashMap::new(); closed.len()];
                if !closed.is_empty() {
                    for m in &marks {
                        let Some(lesson) = m.v.lesson.and_then(|l| lessons.get(&l)) else { continue };
                        let Some(subject) = m.v.subject.or(lesson.subject) else { continue };
                        for (period, counts) in closed.iter().zip(counts.iter_mut()) {
                            if period.v.start <= lesson.date && lesson.date <= period.v.end {
                                *counts.entry((m.v.student, subject, lesson.unit)).or_default() += 1;
                            }
                        }
                    }
                }
                for (period, counts) in closed.iter().zip(&counts) {
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
            "M11" => {
                let Some(deadline) = rule.params.period_deadline else { continue };
                // The full runs that read the whole source: succeeded, none of their planned
                // chunks left for later (`deferred_chunks`). Assumption: a full run reads the
                // current year (a `--year` run of a past year is full too, and rare).
                let mut full: Vec<NaiveDateTime> = runs
                    .iter()
                    .filter(|r| {
                        r.source == source
                            && r.status == RunStatus::Succeeded
                            && r.mode == "full"
                            && r.stats.deferred_chunks == 0
                    })
                    .map(|r| ctx.local(r.started_at))
                    .collect();
                full.sort();
                let by_id: HashMap<Uuid, &StudyPeriod> = periods.iter().map(|r| (r.id, &r.v)).collect();
                // the pupil's units (class, subgroups) and the subject's teacher in them
                let mut units_of: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
                for e in enrollments.iter().filter(|e| e.v.status == EnrollmentStatus::Active) {
                    units_of.entry(e.v.student).or_default().push(e.v.unit);
                }
                let teacher_of: HashMap<(Uuid, Uuid), Uuid> =
                    loads.iter().map(|l| ((l.v.unit, l.v.subject), l.v.teacher)).collect();
                let class_names: HashMap<Uuid, &str> = classes.iter().map(|c| (c.id, c.v.name.as_str())).collect();
                let (mut undetermined, mut timed) = (0usize, 0usize);
                // the year marks (no period) have no deadline of their own in the seeds
                for f in &finals {
                    let Some(period) = f.v.period.and_then(|p| by_id.get(&p)) else { continue };
                    let Some(due) = period_due(&deadline, period.end) else { continue };
                    if !range.contains(period.end) || now_local <= due {
                        continue;
                    }
                    // the source's time where it gives one (Dnevnik), else the syncs
                    let entered = match f.v.entered_at {
                        Some(t) => {
                            timed += 1;
                            EnteredAt::Source(t)
                        }
                        None => ctx.entered_by_full_syncs(f.seen.as_ref(), &full),
                    };
                    let evidence = match entered {
                        EnteredAt::Source(t) if t <= due => continue,
                        EnteredAt::Source(t) => {
                            format!("выставлена {} по записи источника (точно до минуты)", ru_dt(t))
                        }
                        EnteredAt::Sync { seen, .. } if seen <= due => continue,
                        EnteredAt::Sync { seen, previous: Some(prev) } if prev > due => format!(
                            "источник не сообщает, когда выставлена итоговая отметка; впервые получена синхронизацией \
                             {}, а полная синхронизация {} (уже после срока; полная читает все итоговые отметки) её не \
                             имела; точность — до интервала между ними",
                            ru_dt(seen),
                            ru_dt(prev)
                        ),
                        _ => {
                            undetermined += 1;
                            continue;
                        }
                    };
                    let units = units_of.get(&f.v.student).map(Vec::as_slice).unwrap_or_default();
                    let teacher = units.iter().find_map(|u| teacher_of.get(&(*u, f.v.subject)).copied());
                    let class = units.iter().find_map(|u| class_names.get(u)).map(|n| n.to_string());
                    let subject = subject_names.get(&f.v.subject).cloned();
                    findings.push(Finding {
                        key: format!("M11:final:{}", f.id),
                        rule: rule.id.clone(),
                        clause: rule.clause.clone(),
                        severity: rule.severity,
                        teacher: person_name(teacher),
                        class,
                        subject: subject.clone(),
                        date: Some(period.end),
                        lesson: None,
                        mark: Some(f.id),
                        what: format!(
                            "{}: итоговая отметка «{}» по предмету «{}» за {} выставлена позже срока ({})",
                            person_name(Some(f.v.student)).unwrap_or_else(|| f.v.student.to_string()),
                            f.v.value,
                            subject.unwrap_or_default(),
                            period.name,
                            period_due_words(&deadline, period.end)
                        ),
                        evidence,
                    });
                }
                if undetermined > 0 && timed == 0 && full.is_empty() {
                    add_unchecked(
                        rule,
                        "нельзя проверить по данным этого источника, потому что он не сообщает, когда выставлена \
                         итоговая отметка, а полных синхронизаций (только они читают все итоговые отметки) ещё не \
                         было: неполная синхронизация читает итоговые отметки не каждую ночь, и та, что впервые \
                         увидела отметку, не говорит, когда её выставили"
                            .into(),
                        true,
                    );
                } else if undetermined > 0 {
                    add_unchecked(
                        rule,
                        format!(
                            "{}: источник не сообщает время выставления, а ни одна полная синхронизация после срока \
                             не показала, что отметки ещё не было, — своевременность не установлена",
                            ru_count(undetermined, ["итоговая отметка", "итоговые отметки", "итоговых отметок"])
                        ),
                        false,
                    );
                }
            }
            "M12" => {
                let periods: HashMap<Uuid, &StudyPeriod> = periods.iter().map(|r| (r.id, &r.v)).collect();
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
                    if m.v.work.and_then(|w| works.get(&w)).is_some_and(|k| long_checking.contains(k)) {
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
                        format!(
                            "{}: источник не сообщает время внесения — выставление задним числом не проверено",
                            ru_count(untimed, MARKS)
                        ),
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
                let unsatisfactory = |m: &MarkView| m.numeric.is_some_and(|n| n < 2.5);
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
                    let deadline = Deadline::Days { days };
                    let Some(due) = deadline_of(&deadline, lesson.date) else { continue };
                    match judge(&ctx.entered(None, Some(&e.at)), due) {
                        Verdict::OnTime => {}
                        Verdict::Undetermined => undetermined += 1,
                        Verdict::Late(evidence) => {
                            let key = format!("M8:late_correction:{}", e.id);
                            let what = format!(
                                "неудовлетворительная отметка за урок {} исправлена позже {} ({}): {}",
                                ru_d(lesson.date),
                                ru_count(days as usize, DAYS_GENITIVE),
                                deadline_words(&deadline, lesson.date),
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
                            "{}: источник не сообщает время исправления, а синхронизации шли реже срока — \
                             уложились ли в {}, не установлено",
                            ru_count(
                                undetermined,
                                [
                                    "исправление неудовлетворительной отметки",
                                    "исправления неудовлетворительных отметок",
                                    "исправлений неудовлетворительных отметок"
                                ]
                            ),
                            ru_count(days as usize, ["день", "дня", "дней"]) // «уложились ли в 21 день»
                        ),
                        false,
                    );
                }
            }
            "M9" => {
                let all_runs = ctx.all_runs(&runs, source);
                // (student, subject, period) → the run that first brought the period mark
                let mut closed: HashMap<(Uuid, Uuid, Uuid), usize> = HashMap::new();
                for f in &finals {
                    let (Some(p), Some(t)) = (f.v.period, f.seen) else { continue };
                    closed.insert((f.v.student, f.v.subject, p), run_index(&all_runs, ctx.local(t)));
                }
                if closed.is_empty() {
                    continue;
                }
                let period_of =
                    |d: NaiveDate| periods.iter().filter(move |p| p.v.start <= d && d <= p.v.end).map(|p| p.id);
                // every change of a mark: its insert (first seen), corrections and deletions, in
                // that order (a later one's finding replaces an earlier one's); the words of
                // the change are made only for a finding
                enum Change<'a> {
                    Entered(&'a MarkText),
                    Edit(&'a MarkEdit),
                }
                let events = marks
                    .iter()
                    .filter_map(|m| m.seen.map(|t| (m.id, &m.v, t, Change::Entered(&m.v.value))))
                    .chain(edits.iter().map(|e| (e.id, &e.mark, e.at, Change::Edit(e))));
                let mut by_mark: BTreeMap<Uuid, Finding> = BTreeMap::new();
                for (id, m, at, change) in events {
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
                            let words = match &change {
                                Change::Entered(value) => format!("выставлена отметка «{value}»"),
                                Change::Edit(e) => e.words(),
                            };
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
                        let evidence = match ctx.entered(m.v.entered_at, m.seen.as_ref()) {
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
                let mut undetermined = 0usize;
                for a in &attendance {
                    let Some((lid, lesson)) = lessons.get_key_value(&a.v.lesson) else { continue };
                    let Some(due) = deadline_of(&deadline, lesson.date) else { continue };
                    if !in_range(lesson) || now_local <= due {
                        continue;
                    }
                    match judge(&ctx.entered(a.v.entered_at, a.seen.as_ref()), due) {
                        Verdict::OnTime => {}
                        Verdict::Undetermined => undetermined += 1,
                        Verdict::Late(evidence) => findings.push(finding(
                            rule,
                            format!("M2:attendance:{}", a.id),
                            Some((lid, lesson)),
                            None,
                            None,
                            format!(
                                "{}: {} на уроке {} отмечено позже срока ({})",
                                person_name(Some(a.v.student)).unwrap_or_else(|| a.v.student.to_string()),
                                match a.v.status {
                                    AttendanceStatus::Absent => "отсутствие",
                                    AttendanceStatus::Late => "опоздание",
                                },
                                ru_d(lesson.date),
                                deadline_words(&deadline, lesson.date)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_the_russian_form_of_their_number() {
        let cases = [
            (0, "0 отметок"),
            (1, "1 отметка"),
            (2, "2 отметки"),
            (4, "4 отметки"),
            (5, "5 отметок"),
            (11, "11 отметок"),
            (12, "12 отметок"),
            (14, "14 отметок"),
            (21, "21 отметка"),
            (22, "22 отметки"),
            (25, "25 отметок"),
            (101, "101 отметка"),
            (111, "111 отметок"),
            (112, "112 отметок"),
        ];
        for (n, said) in cases {
            assert_eq!(ru_count(n, MARKS), said);
        }
        assert_eq!(ru_count(21, DAYS_GENITIVE), "21 дня");
        assert_eq!(ru_count(2, DAYS_GENITIVE), "2 дней");
    }
}
