//! The state of a synthetic world: system-neutral, the single source every emulator serves.
//!
//! Ids are one 64-bit counter for the whole world, started above 2^53 so that clients which
//! read ids as JSON doubles break the way they break on the real systems (Dnevnik's `_str`
//! twins exist for this). The truth log keys records by their *canonical source id*: the
//! string a connector must put in `Record::source_id` (see [`key`]).

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Serialize};

use crate::model::{EntityKind, GroupKind, PeriodKind, Sex};

/// The first id the world hands out (above 2^53 on purpose).
pub const FIRST_ID: u64 = 1_750_000_000_000_000_000;

/// How a synthetic world is made. Everything follows from these numbers and the seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthConfig {
    pub seed: u64,
    /// Number of schools in the world (one municipality).
    pub schools: u32,
    /// Classes per school, spread over grades 1–11 (at least 11: one per grade).
    pub classes_per_school: u32,
    /// Average class size (the generator varies it by ±3).
    pub students_per_class: u32,
    /// 1 September of the academic year.
    pub year_start: NaiveDate,
    /// The world is simulated from `year_start` up to and including this day at generation.
    pub simulate_until: NaiveDate,
    pub time_zone: String,
    pub rates: InjectionRates,
    /// Make the school break every rule the monitoring engine checks, with the moments on
    /// both sides of each deadline (see [`MonitorRule`]); off by default, so that worlds
    /// made before it existed stay what they were.
    #[serde(default)]
    pub monitor: bool,
}

impl SynthConfig {
    /// A small school for tests: 11 classes of about 8 students, simulated into March.
    pub fn small(seed: u64) -> Self {
        SynthConfig {
            seed,
            schools: 1,
            classes_per_school: 11,
            students_per_class: 8,
            year_start: NaiveDate::from_ymd_opt(2025, 9, 1).unwrap(),
            simulate_until: NaiveDate::from_ymd_opt(2026, 3, 6).unwrap(),
            time_zone: "Europe/Moscow".into(),
            rates: InjectionRates::default(),
            monitor: false,
        }
    }

    /// A whole academic year of a typical school (demo): 22 classes of about 25.
    pub fn demo(seed: u64) -> Self {
        SynthConfig {
            classes_per_school: 22,
            students_per_class: 25,
            simulate_until: NaiveDate::from_ymd_opt(2026, 5, 31).unwrap(),
            ..SynthConfig::small(seed)
        }
    }

    /// The benchmark school: 40 classes, about 1,000 students, the whole year.
    pub fn large(seed: u64) -> Self {
        SynthConfig { classes_per_school: 40, students_per_class: 25, ..SynthConfig::demo(seed) }
    }
}

/// How often the world breaks the regulations. Probabilities per opportunity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InjectionRates {
    /// A lesson's marks entered 1–5 school days after the lesson (per lesson).
    pub late_mark: f64,
    /// A mark entered today into a lesson 3–14 days back (per lesson day, per class).
    pub backdated_mark: f64,
    /// An unsatisfactory mark («2», «1») deleted within 21 days (per such mark).
    pub deleted_unsatisfactory: f64,
    /// A mark of a closed period edited after the period's final marks (per class, per period end).
    pub edit_after_final: f64,
    /// A lesson held without a topic (per lesson); half of them get the topic later.
    pub missing_topic: f64,
    /// A lesson that should have homework without it (per lesson).
    pub missing_homework: f64,
    /// Monitoring worlds only (`SynthConfig::monitor`): a class whose period marks are a
    /// monitoring case of M11, entered on a set day around the period's end (see
    /// [`MONITOR_FINAL_DAYS`]) instead of in the usual days (per class, per period end).
    #[serde(default = "default_monitor_final_marks")]
    pub monitor_final_marks: f64,
}

fn default_monitor_final_marks() -> f64 {
    0.5
}

impl Default for InjectionRates {
    fn default() -> Self {
        InjectionRates {
            late_mark: 0.03,
            backdated_mark: 0.02,
            deleted_unsatisfactory: 0.05,
            edit_after_final: 0.2,
            missing_topic: 0.02,
            missing_homework: 0.05,
            monitor_final_marks: default_monitor_final_marks(),
        }
    }
}

/// The whole synthetic world.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    pub config: SynthConfig,
    /// The last simulated day (its data exists; the next `advance(1)` makes the day after).
    pub today: NaiveDate,
    pub schools: Vec<School>,
    /// Every change ever made, in order: the ground truth.
    pub truth: Vec<TruthChange>,
    /// The next id to hand out.
    pub next_id: u64,
    /// What the simulation carries from one day to the next (scheduled changes, illness
    /// spells): not served by any emulator.
    #[serde(default)]
    pub sim: SimState,
}

/// The simulation's memory between days: changes planned for later days and running
/// illness spells. Part of the world so that `advance` continues exactly where
/// `generate` stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimState {
    /// Changes due on a day, in the order they were planned.
    #[serde(with = "entries")]
    pub pending: BTreeMap<NaiveDate, Vec<Pending>>,
    /// Student → school days of illness still to come.
    pub illness: BTreeMap<u64, u8>,
}

/// A change planned for a later day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Pending {
    /// A lesson's marks, entered late (injection `LateMark`).
    LateMarks { school: u64, lesson: u64, marks: Vec<PlannedMark> },
    /// The class teacher gives the reason of an absence (regulation M13).
    AttendanceReason {
        school: u64,
        student: u64,
        lessons: Vec<u64>,
        status: SynthAttendanceStatus,
        comment: Option<String>,
    },
    /// A topic entered after the lesson.
    LessonTopic { school: u64, lesson: u64, topic: String },
    /// Marks entered at an exact moment of a later day, on one side of a deadline
    /// (`SynthConfig::monitor`).
    MarksAt { school: u64, lesson: u64, marks: Vec<PlannedMark>, at: NaiveDateTime, rule: MonitorRule },
    /// A lesson's attendance entered at an exact moment of a later day (`SynthConfig::monitor`).
    AttendanceAt { school: u64, lesson: u64, entries: Vec<(u64, SynthAttendance)> },
    /// An unsatisfactory mark corrected (to «3») on a set day (`SynthConfig::monitor`: M8's
    /// 21 days, 14 or 30 days after the lesson).
    CorrectMark { school: u64, mark: u64 },
    /// A homework entered at an exact moment of a later day (`SynthConfig::monitor`).
    HomeworkAt { school: u64, work: SynthWork },
    /// An unsatisfactory mark deleted (injection `DeletedUnsatisfactoryMark`).
    DeleteMark { school: u64, mark: u64 },
    /// A class's final marks of a period (and the year marks after the last one); `rule`:
    /// a monitoring case (M11), its period marks tagged with it in the truth log.
    FinalMarks {
        school: u64,
        class: u64,
        period: u64,
        #[serde(default)]
        rule: Option<MonitorRule>,
    },
    /// A mark of a closed period edited (injection `EditAfterFinal`).
    EditAfterFinal { school: u64, class: u64, period: u64 },
}

impl Pending {
    pub fn school(&self) -> u64 {
        match self {
            Pending::LateMarks { school, .. }
            | Pending::AttendanceReason { school, .. }
            | Pending::LessonTopic { school, .. }
            | Pending::MarksAt { school, .. }
            | Pending::HomeworkAt { school, .. }
            | Pending::AttendanceAt { school, .. }
            | Pending::CorrectMark { school, .. }
            | Pending::DeleteMark { school, .. }
            | Pending::FinalMarks { school, .. }
            | Pending::EditAfterFinal { school, .. } => *school,
        }
    }
}

/// A mark decided on the lesson day but entered later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedMark {
    pub student: u64,
    pub work: u64,
    pub value: String,
}

/// Maps whose keys are not strings serialize as a list of `[key, value]` pairs, so that the
/// world can be written as JSON.
mod entries {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?.into_iter().collect())
    }
}

/// Школа
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct School {
    pub id: u64,
    /// «МБОУ СОШ № 16»
    pub name: String,
    pub full_name: String,
    pub municipality: String,
    pub city: String,
    pub time_zone: String,
    pub year: SynthYear,
    pub periods: Vec<SynthPeriod>,
    pub holidays: Vec<SynthHoliday>,
    pub subjects: Vec<SynthSubject>,
    pub work_types: Vec<SynthWorkType>,
    /// Звонки: lesson number → (start, end)
    pub bells: Vec<(u8, NaiveTime, NaiveTime)>,
    pub teachers: Vec<SynthPerson>,
    pub students: Vec<SynthPerson>,
    pub guardians: Vec<SynthPerson>,
    /// (guardian, student)
    pub guardianships: Vec<(u64, u64)>,
    pub classes: Vec<SynthClass>,
    pub groups: Vec<SynthGroup>,
    pub enrollments: Vec<SynthEnrollment>,
    pub loads: Vec<SynthLoad>,
    pub timetable: Vec<SynthSlot>,
    pub lessons: BTreeMap<u64, SynthLesson>,
    /// Works, homework included (`is_homework`).
    pub works: BTreeMap<u64, SynthWork>,
    pub marks: BTreeMap<u64, SynthMark>,
    /// Key: (student, subject, period id; `None` = year). JSON: a list of `[key, value]`.
    #[serde(with = "entries")]
    pub final_marks: BTreeMap<(u64, u64, Option<u64>), SynthFinalMark>,
    /// Key: (lesson, student). JSON: a list of `[key, value]`.
    #[serde(with = "entries")]
    pub attendance: BTreeMap<(u64, u64), SynthAttendance>,
}

/// Учебный год
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthYear {
    pub id: u64,
    /// «2025/2026»
    pub name: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// Учебный период (the generator makes quarters)
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthPeriod {
    pub id: u64,
    pub kind: PeriodKind,
    pub number: u8,
    /// «1 четверть»
    pub name: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// Каникулы
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthHoliday {
    pub id: u64,
    /// «Осенние каникулы»
    pub name: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// Предмет
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthSubject {
    pub id: u64,
    /// «Русский язык»
    pub name: String,
    /// «Филология»
    pub knowledge_area: String,
}

/// Вид работы, with its weight
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthWorkType {
    pub id: u64,
    /// A stable code (`lesson`, `written`, `control`, `test`, `internal_control`,
    /// `independent`, `practical`, `homework`): what each emulator turns into its own names.
    pub code: String,
    /// «Контрольная работа»
    pub title: String,
    /// «К/Р»
    pub abbr: String,
    pub weight: u8,
}

/// Человек
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthPerson {
    pub id: u64,
    /// A user account id where the person has a login (students in grades 1–4 may not)
    pub user_id: Option<u64>,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
}

/// Класс
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthClass {
    pub id: u64,
    /// «5А»
    pub name: String,
    pub grade: u8,
    /// Классный руководитель; `None` only where the world breaks M22 on purpose
    pub homeroom_teacher: Option<u64>,
}

/// Подгруппа, elective, extracurricular or ГПД group
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthGroup {
    pub id: u64,
    pub class_id: u64,
    /// «5А Английский язык, 1 подгруппа»
    pub name: String,
    pub kind: GroupKind,
    pub subject_id: Option<u64>,
}

/// Зачисление ученика в класс или группу
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthEnrollment {
    pub student: u64,
    /// A class id or a group id
    pub unit: u64,
    pub active: bool,
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
}

/// Учебная нагрузка
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthLoad {
    pub teacher: u64,
    pub subject: u64,
    /// A class id or a group id
    pub unit: u64,
    pub hours_per_week: u8,
}

/// A slot of the weekly timetable
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthSlot {
    /// A class id or a group id
    pub unit: u64,
    pub subject: u64,
    pub teacher: u64,
    /// 1 = Monday … 6 = Saturday
    pub weekday: u8,
    pub number: u8,
}

/// Урок
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthLesson {
    pub id: u64,
    /// A class id or a group id
    pub unit: u64,
    pub subject: u64,
    pub teacher: u64,
    pub substitute: Option<u64>,
    pub date: NaiveDate,
    pub number: u8,
    /// Тема урока; `None` when the teacher did not enter it (yet)
    pub topic: Option<String>,
    pub cancelled: bool,
    /// Раздел тематического планирования the lesson belongs to (the theme of its topic):
    /// every lesson has one, a lesson without a topic too.
    #[serde(default)]
    pub section: Option<String>,
}

/// Работа на уроке или домашнее задание
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthWork {
    pub id: u64,
    pub lesson: u64,
    pub work_type: u64,
    pub is_homework: bool,
    /// Title of a work, or the text of a homework
    pub text: String,
    pub created_at: NaiveDateTime,
    /// Due date of a homework; the lesson date for a work
    pub target_date: NaiveDate,
    /// Files attached to a homework (some homeworks have one)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<SynthAttachment>,
}

/// Вложение к домашнему заданию
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynthAttachment {
    /// File name as the teacher uploaded it («Карточка.pdf»)
    pub name: String,
    /// Where the file is served (an absolute URL of the system's file storage)
    pub url: String,
}

/// Отметка
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthMark {
    pub id: u64,
    pub student: u64,
    pub lesson: u64,
    pub work: u64,
    /// «5», «4+», «3-», «2»
    pub value: String,
    pub entered_at: NaiveDateTime,
    pub entered_by: u64,
    /// Комментарий учителя к отметке (some marks have one)
    #[serde(default)]
    pub comment: Option<String>,
    /// «Точка»: an unsatisfactory mark the pupil is to correct by `point_date`
    #[serde(default)]
    pub is_point: bool,
    /// Срок исправления «точки»
    #[serde(default)]
    pub point_date: Option<NaiveDate>,
}

/// Итоговая отметка
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthFinalMark {
    /// «5», «4», «3», «2», or special «осв», «н/а»
    pub value: String,
    pub entered_at: NaiveDateTime,
}

/// Отметка посещаемости
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SynthAttendanceStatus {
    /// Отсутствовал, причина не уважительная (НП) or not yet given
    AbsentUnexcused,
    /// Отсутствовал по уважительной причине (УП)
    AbsentExcused,
    /// Болел (Б)
    Ill,
    /// Опоздал
    Late,
}

/// Посещаемость
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthAttendance {
    pub status: SynthAttendanceStatus,
    pub comment: Option<String>,
    pub entered_at: NaiveDateTime,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruthOp {
    Insert,
    Update,
    Delete,
}

/// Which rule a change breaks on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Injection {
    LateMark,
    BackdatedMark,
    DeletedUnsatisfactoryMark,
    EditAfterFinal,
    MissingTopic,
    MissingHomework,
    /// A case made for the monitoring engine (`SynthConfig::monitor`): an entry at a moment
    /// on one side of a deadline (late or a near miss, depending on the profile), or a
    /// reference-data breach; tagged with the rule it was made for.
    Monitor {
        rule: MonitorRule,
    },
}

/// The rule (REGULATIONS.md) a monitoring case was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MonitorRule {
    /// Marks of a lesson entered at an exact moment around 16:00, 19:00 or midnight of the
    /// lesson's day or of the next two days.
    M1,
    /// A lesson's attendance entered at an exact moment around midnight after the lesson's
    /// day or the next two days.
    M2,
    /// A homework entered at an exact moment around 19:00 or the lesson day's midnight.
    M4,
    /// Marks of a written work entered around midnight after the 3rd or the 7th day.
    M5,
    /// Marks of a ВШК control work entered around midnight after the 3rd or the 7th day.
    M6,
    /// An unsatisfactory mark corrected 14 or 30 days after its lesson (S2 3.4.8: within 21 days).
    M8,
    /// A class's period marks entered on a set day around the period's end (see
    /// [`MONITOR_FINAL_DAYS`]).
    M11,
    /// A class without a class teacher, or a pupil in two classes.
    M22,
}

/// The moments a lesson's marks are entered at, as (days after the lesson, hour, minute),
/// when the world makes monitoring cases: both sides of 16:00 (S1 5.5) and 19:00 (S3 3.4.2)
/// of the lesson's day, and of midnight after the lesson's day (same day: S2 3.4.5, S4 2.8)
/// and after the next two days (one day: S2 3.4.4; two days: S0 4.2а).
pub const MONITOR_MARK_MOMENTS: [(u32, u32, u32); 12] = [
    (0, 15, 59),
    (0, 16, 0),
    (0, 16, 1),
    (0, 18, 59),
    (0, 19, 0),
    (0, 19, 1),
    (0, 23, 59),
    (1, 0, 1),
    (1, 23, 59),
    (2, 0, 1),
    (2, 23, 59),
    (3, 0, 1),
];

/// The moments a lesson's attendance is entered at: both sides of midnight after the
/// lesson's day (S4 2.8) and after the next two days (S2 3.4.4: one day; S0 4.2а: two).
pub const MONITOR_ATTENDANCE_MOMENTS: [(u32, u32, u32); 6] =
    [(0, 23, 59), (1, 0, 1), (1, 23, 59), (2, 0, 1), (2, 23, 59), (3, 0, 1)];

/// Days after the lesson an unsatisfactory mark is corrected on: inside and outside S2 3.4.8's
/// 21 days, far enough from the limit that weekly syncs tell them apart.
pub const MONITOR_CORRECTION_DAYS: [u32; 2] = [14, 30];

/// The moments marks of a written or control work are entered at: both sides of midnight
/// after the 3rd day (ВШК: S4 учитель 9) and after the 7th (S2 3.4.6, S3 3.4.3, S4 учитель 10).
pub const MONITOR_WORK_MOMENTS: [(u32, u32, u32); 4] = [(3, 23, 59), (4, 0, 1), (7, 23, 59), (8, 0, 1)];

/// The days after a study period's last day a class's period marks are entered on, when
/// they are a monitoring case (M11): both sides of the end of the period's last day (S4 2.11,
/// учитель 11: in the period's last week, before the holidays) and of the end of the 2nd day
/// after it (S2 3.4.7: «не позднее 2-х дней после окончания учебного периода»).
pub const MONITOR_FINAL_DAYS: [u32; 4] = [0, 1, 2, 3];

/// The moments a homework is entered at: both sides of 19:00 and of midnight.
pub const MONITOR_HOMEWORK_MOMENTS: [(u32, u32, u32); 5] =
    [(0, 18, 59), (0, 19, 0), (0, 19, 1), (0, 23, 59), (1, 0, 1)];

/// One change of the world, keyed as a connector must key it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthChange {
    pub seq: u64,
    /// The simulated day the change was made on
    pub day: NaiveDate,
    pub at: NaiveDateTime,
    pub school: u64,
    pub kind: EntityKind,
    pub op: TruthOp,
    /// The canonical source id (see [`key`])
    pub key: String,
    pub injection: Option<Injection>,
}

/// The canonical source ids of synthetic records: the strings every connector must produce
/// as `Record::source_id` for records that came from the synthetic world.
pub mod key {
    /// organization, academic_year, study_period, holiday, class, group, person, subject,
    /// lesson, work, homework, mark: the id itself
    pub fn id(id: u64) -> String {
        id.to_string()
    }
    /// guardianship
    pub fn guardianship(guardian: u64, student: u64) -> String {
        format!("{guardian}:{student}")
    }
    /// enrollment: unit (class or group) and student
    pub fn enrollment(unit: u64, student: u64) -> String {
        format!("{unit}:{student}")
    }
    /// teaching_load
    pub fn teaching_load(teacher: u64, subject: u64, unit: u64) -> String {
        format!("{teacher}:{subject}:{unit}")
    }
    /// final_mark: `period` `None` is the year mark
    pub fn final_mark(student: u64, subject: u64, period: Option<u64>) -> String {
        match period {
            Some(p) => format!("{student}:{subject}:{p}"),
            None => format!("{student}:{subject}:year"),
        }
    }
    /// attendance
    pub fn attendance(lesson: u64, student: u64) -> String {
        format!("{lesson}:{student}")
    }
}
