//! The canonical model: what every connector turns its source's data into.
//!
//! Every record is one [`Entity`] plus its provenance ([`Record`]). Identifiers of records are
//! deterministic (UUIDv5 over source instance, kind and source id, see [`IdSpace`]), so a
//! resync never invents new ids. References between entities are canonical ids of the same
//! source instance. Dates and times are the school's local time (each organization carries
//! its IANA time zone): the regulations' deadlines ("marks by 16:00") are local.
//!
//! Field order matters: the content hash is taken over the JSON of the entity, and serde
//! writes struct fields in declaration order, so the hash is stable. No maps in entities.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The kinds of canonical records. The string form (`as_str`) is what the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// Организация (муниципалитет, школа)
    Organization,
    /// Учебный год
    AcademicYear,
    /// Учебный период (четверть, триместр, полугодие, год)
    StudyPeriod,
    /// Каникулы
    Holiday,
    /// Класс
    Class,
    /// Учебная группа, подгруппа, элективный курс, внеурочная деятельность, ГПД
    Group,
    /// Человек (ученик, сотрудник, законный представитель)
    Person,
    /// Законное представительство
    Guardianship,
    /// Зачисление ученика в класс или группу
    Enrollment,
    /// Предмет
    Subject,
    /// Учебная нагрузка (учитель, предмет, класс/группа, часов в неделю)
    TeachingLoad,
    /// Урок
    Lesson,
    /// Домашнее задание
    Homework,
    /// Работа на уроке (устная, письменная, контрольная, тест, ВШК)
    Work,
    /// Отметка
    Mark,
    /// Итоговая отметка (за период или за год)
    FinalMark,
    /// Посещаемость (отсутствие, опоздание)
    Attendance,
    /// Уведомление родителя о планируемом отсутствии
    AbsenceNotice,
    /// Ознакомление родителя с дневником
    Acknowledgement,
    /// Согласие на обработку персональных данных
    Consent,
    /// Активность пользователя
    UserActivity,
}

impl EntityKind {
    pub const ALL: [EntityKind; 21] = [
        EntityKind::Organization,
        EntityKind::AcademicYear,
        EntityKind::StudyPeriod,
        EntityKind::Holiday,
        EntityKind::Class,
        EntityKind::Group,
        EntityKind::Person,
        EntityKind::Guardianship,
        EntityKind::Enrollment,
        EntityKind::Subject,
        EntityKind::TeachingLoad,
        EntityKind::Lesson,
        EntityKind::Homework,
        EntityKind::Work,
        EntityKind::Mark,
        EntityKind::FinalMark,
        EntityKind::Attendance,
        EntityKind::AbsenceNotice,
        EntityKind::Acknowledgement,
        EntityKind::Consent,
        EntityKind::UserActivity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Organization => "organization",
            EntityKind::AcademicYear => "academic_year",
            EntityKind::StudyPeriod => "study_period",
            EntityKind::Holiday => "holiday",
            EntityKind::Class => "class",
            EntityKind::Group => "group",
            EntityKind::Person => "person",
            EntityKind::Guardianship => "guardianship",
            EntityKind::Enrollment => "enrollment",
            EntityKind::Subject => "subject",
            EntityKind::TeachingLoad => "teaching_load",
            EntityKind::Lesson => "lesson",
            EntityKind::Homework => "homework",
            EntityKind::Work => "work",
            EntityKind::Mark => "mark",
            EntityKind::FinalMark => "final_mark",
            EntityKind::Attendance => "attendance",
            EntityKind::AbsenceNotice => "absence_notice",
            EntityKind::Acknowledgement => "acknowledgement",
            EntityKind::Consent => "consent",
            EntityKind::UserActivity => "user_activity",
        }
    }

    pub fn parse(s: &str) -> Option<EntityKind> {
        EntityKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Makes the canonical ids of one source instance.
///
/// `id = UUIDv5(EJGATE_NAMESPACE, "{instance}/{kind}/{source_id}")`. The source id is kept
/// as a string because several systems use 64-bit or 16-digit ids.
#[derive(Debug, Clone)]
pub struct IdSpace {
    instance: String,
}

/// The namespace of ejgate's UUIDv5 ids (a fixed random UUID; never change it).
pub const EJGATE_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a57_9d4e_4b0a_a3c1_5e8f_0b7d_2c19);

impl IdSpace {
    pub fn new(instance: impl Into<String>) -> Self {
        IdSpace { instance: instance.into() }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn id(&self, kind: EntityKind, source_id: &str) -> Uuid {
        let name = format!("{}/{}/{}", self.instance, kind.as_str(), source_id);
        Uuid::new_v5(&EJGATE_NAMESPACE, name.as_bytes())
    }
}

/// Одна запись канонической модели с её происхождением.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Canonical id: `IdSpace::id(kind, source_id)`.
    pub id: Uuid,
    /// The id the source gave the record, as a string.
    pub source_id: String,
    /// The reconciliation scope the record was read in (for example `group:1000012` for
    /// everything read per class, `school:1000001` for school-wide lists). A [`Coverage`]
    /// names scopes: a record disappears (becomes a tombstone) only when a batch that
    /// covers its kind, scope and date no longer contains it.
    pub scope: String,
    /// The date the source filters this record by in dated lists (lesson date, mark date);
    /// `None` for undated records.
    pub date: Option<NaiveDate>,
    /// When the source says it last changed the record, where it says so.
    pub source_updated_at: Option<NaiveDateTime>,
    pub entity: Entity,
}

impl Record {
    pub fn kind(&self) -> EntityKind {
        self.entity.kind()
    }
}

/// What a batch read completely: every record of `kinds` in `scope` (with a date inside
/// `range`, when there is one) that the source has. Records of the store in that coverage
/// that the batch did not bring have been deleted at the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub kinds: Vec<EntityKind>,
    pub scope: String,
    pub range: Option<DateRange>,
}

/// An inclusive range of dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DateRange {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Self {
        DateRange { from, to }
    }
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.from <= d && d <= self.to
    }

    /// The range cut into consecutive pieces of at most `days` days, without gaps (none
    /// when the range is empty): the date ranges of a connector's chunks.
    pub fn pieces(&self, days: u32) -> Vec<DateRange> {
        let mut out = Vec::new();
        let mut start = self.from;
        while start <= self.to {
            let end = (start + chrono::Days::new(days.max(1) as u64 - 1)).min(self.to);
            out.push(DateRange::new(start, end));
            start = end + chrono::Days::new(1);
        }
        out
    }

    /// For an academic year (учебный год): the last day its journal can still receive
    /// entries, the day before the same date a year after its start (31 August for a year
    /// that starts on 1 September). Marks go on being entered after the last lesson — late
    /// marks, retakes, corrections — so a source that lists marks by the day they were
    /// entered must be read up to this day (or today, if earlier), not to the year's end.
    pub fn entries_close(&self) -> NaiveDate {
        let next = self.from.checked_add_months(chrono::Months::new(12)).unwrap_or(self.to);
        (next - chrono::Days::new(1)).max(self.to)
    }
}

/// Every canonical entity. The kind is the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entity {
    Organization(Organization),
    AcademicYear(AcademicYear),
    StudyPeriod(StudyPeriod),
    Holiday(Holiday),
    Class(Class),
    Group(Group),
    Person(Person),
    Guardianship(Guardianship),
    Enrollment(Enrollment),
    Subject(Subject),
    TeachingLoad(TeachingLoad),
    Lesson(Lesson),
    Homework(Homework),
    Work(Work),
    Mark(Mark),
    FinalMark(FinalMark),
    Attendance(Attendance),
    AbsenceNotice(AbsenceNotice),
    Acknowledgement(Acknowledgement),
    Consent(Consent),
    UserActivity(UserActivity),
}

macro_rules! entity_dispatch {
    ($self:ident, $v:ident => $e:expr) => {
        match $self {
            Entity::Organization($v) => $e,
            Entity::AcademicYear($v) => $e,
            Entity::StudyPeriod($v) => $e,
            Entity::Holiday($v) => $e,
            Entity::Class($v) => $e,
            Entity::Group($v) => $e,
            Entity::Person($v) => $e,
            Entity::Guardianship($v) => $e,
            Entity::Enrollment($v) => $e,
            Entity::Subject($v) => $e,
            Entity::TeachingLoad($v) => $e,
            Entity::Lesson($v) => $e,
            Entity::Homework($v) => $e,
            Entity::Work($v) => $e,
            Entity::Mark($v) => $e,
            Entity::FinalMark($v) => $e,
            Entity::Attendance($v) => $e,
            Entity::AbsenceNotice($v) => $e,
            Entity::Acknowledgement($v) => $e,
            Entity::Consent($v) => $e,
            Entity::UserActivity($v) => $e,
        }
    };
}

impl Entity {
    pub fn kind(&self) -> EntityKind {
        match self {
            Entity::Organization(_) => EntityKind::Organization,
            Entity::AcademicYear(_) => EntityKind::AcademicYear,
            Entity::StudyPeriod(_) => EntityKind::StudyPeriod,
            Entity::Holiday(_) => EntityKind::Holiday,
            Entity::Class(_) => EntityKind::Class,
            Entity::Group(_) => EntityKind::Group,
            Entity::Person(_) => EntityKind::Person,
            Entity::Guardianship(_) => EntityKind::Guardianship,
            Entity::Enrollment(_) => EntityKind::Enrollment,
            Entity::Subject(_) => EntityKind::Subject,
            Entity::TeachingLoad(_) => EntityKind::TeachingLoad,
            Entity::Lesson(_) => EntityKind::Lesson,
            Entity::Homework(_) => EntityKind::Homework,
            Entity::Work(_) => EntityKind::Work,
            Entity::Mark(_) => EntityKind::Mark,
            Entity::FinalMark(_) => EntityKind::FinalMark,
            Entity::Attendance(_) => EntityKind::Attendance,
            Entity::AbsenceNotice(_) => EntityKind::AbsenceNotice,
            Entity::Acknowledgement(_) => EntityKind::Acknowledgement,
            Entity::Consent(_) => EntityKind::Consent,
            Entity::UserActivity(_) => EntityKind::UserActivity,
        }
    }

    /// The entity's fields as JSON, without the kind tag: what the store keeps as content
    /// and what the content hash is taken over.
    pub fn content_json(&self) -> Vec<u8> {
        entity_dispatch!(self, v => serde_json::to_vec(v).expect("entities always serialize"))
    }

    /// Rebuilds an entity from its kind and the JSON of [`Entity::content_json`].
    pub fn from_content(kind: EntityKind, json: &[u8]) -> serde_json::Result<Entity> {
        Ok(match kind {
            EntityKind::Organization => Entity::Organization(serde_json::from_slice(json)?),
            EntityKind::AcademicYear => Entity::AcademicYear(serde_json::from_slice(json)?),
            EntityKind::StudyPeriod => Entity::StudyPeriod(serde_json::from_slice(json)?),
            EntityKind::Holiday => Entity::Holiday(serde_json::from_slice(json)?),
            EntityKind::Class => Entity::Class(serde_json::from_slice(json)?),
            EntityKind::Group => Entity::Group(serde_json::from_slice(json)?),
            EntityKind::Person => Entity::Person(serde_json::from_slice(json)?),
            EntityKind::Guardianship => Entity::Guardianship(serde_json::from_slice(json)?),
            EntityKind::Enrollment => Entity::Enrollment(serde_json::from_slice(json)?),
            EntityKind::Subject => Entity::Subject(serde_json::from_slice(json)?),
            EntityKind::TeachingLoad => Entity::TeachingLoad(serde_json::from_slice(json)?),
            EntityKind::Lesson => Entity::Lesson(serde_json::from_slice(json)?),
            EntityKind::Homework => Entity::Homework(serde_json::from_slice(json)?),
            EntityKind::Work => Entity::Work(serde_json::from_slice(json)?),
            EntityKind::Mark => Entity::Mark(serde_json::from_slice(json)?),
            EntityKind::FinalMark => Entity::FinalMark(serde_json::from_slice(json)?),
            EntityKind::Attendance => Entity::Attendance(serde_json::from_slice(json)?),
            EntityKind::AbsenceNotice => Entity::AbsenceNotice(serde_json::from_slice(json)?),
            EntityKind::Acknowledgement => Entity::Acknowledgement(serde_json::from_slice(json)?),
            EntityKind::Consent => Entity::Consent(serde_json::from_slice(json)?),
            EntityKind::UserActivity => Entity::UserActivity(serde_json::from_slice(json)?),
        })
    }

    /// The names of a kind's content fields: every key its [`Entity::content_json`] can
    /// have, in declaration order (optional ones left out when unset included). Read from
    /// serde's own list of the struct's fields: the type is asked to deserialize itself from
    /// a deserializer that keeps the list it is handed and stops there, so the names are
    /// the ones serialization writes (renames applied) and never drift from the types.
    /// The year-end bag's CSV columns (`archive`), known before the first record is read.
    pub fn content_fields(kind: EntityKind) -> &'static [&'static str] {
        fn fields_of<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
            struct Probe<'a>(&'a mut &'static [&'static str]);
            impl<'de> serde::Deserializer<'de> for Probe<'_> {
                type Error = serde::de::value::Error;
                fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                    Err(serde::de::Error::custom("not a struct"))
                }
                fn deserialize_struct<V: serde::de::Visitor<'de>>(
                    self,
                    _name: &'static str,
                    fields: &'static [&'static str],
                    _visitor: V,
                ) -> Result<V::Value, Self::Error> {
                    *self.0 = fields;
                    Err(serde::de::Error::custom("fields read"))
                }
                serde::forward_to_deserialize_any! {
                    bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
                    option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
                    ignored_any
                }
            }
            let mut fields: &'static [&'static str] = &[];
            let _ = T::deserialize(Probe(&mut fields));
            fields
        }
        match kind {
            EntityKind::Organization => fields_of::<Organization>(),
            EntityKind::AcademicYear => fields_of::<AcademicYear>(),
            EntityKind::StudyPeriod => fields_of::<StudyPeriod>(),
            EntityKind::Holiday => fields_of::<Holiday>(),
            EntityKind::Class => fields_of::<Class>(),
            EntityKind::Group => fields_of::<Group>(),
            EntityKind::Person => fields_of::<Person>(),
            EntityKind::Guardianship => fields_of::<Guardianship>(),
            EntityKind::Enrollment => fields_of::<Enrollment>(),
            EntityKind::Subject => fields_of::<Subject>(),
            EntityKind::TeachingLoad => fields_of::<TeachingLoad>(),
            EntityKind::Lesson => fields_of::<Lesson>(),
            EntityKind::Homework => fields_of::<Homework>(),
            EntityKind::Work => fields_of::<Work>(),
            EntityKind::Mark => fields_of::<Mark>(),
            EntityKind::FinalMark => fields_of::<FinalMark>(),
            EntityKind::Attendance => fields_of::<Attendance>(),
            EntityKind::AbsenceNotice => fields_of::<AbsenceNotice>(),
            EntityKind::Acknowledgement => fields_of::<Acknowledgement>(),
            EntityKind::Consent => fields_of::<Consent>(),
            EntityKind::UserActivity => fields_of::<UserActivity>(),
        }
    }

    /// The business key of the entity (what identifies it to a person: a class's name and
    /// year, a mark's student and lesson). When an update changes it, the change log calls
    /// the change a key change rather than an update.
    pub fn natural_key(&self) -> String {
        match self {
            Entity::Organization(o) => o.name.clone(),
            Entity::AcademicYear(y) => y.name.clone(),
            Entity::StudyPeriod(p) => format!("{:?}/{}", p.kind, p.number),
            Entity::Holiday(h) => format!("{}..{}", h.start, h.end),
            Entity::Class(c) => format!("{}/{}", c.academic_year.map(|y| y.to_string()).unwrap_or_default(), c.name),
            Entity::Group(g) => g.name.clone(),
            Entity::Person(p) => format!("{} {} {}", p.last_name, p.first_name, p.middle_name.as_deref().unwrap_or("")),
            Entity::Guardianship(g) => format!("{}/{}", g.guardian, g.student),
            Entity::Enrollment(e) => format!("{}/{}", e.student, e.unit),
            Entity::Subject(s) => s.normalized_name.clone(),
            Entity::TeachingLoad(t) => format!("{}/{}/{}", t.teacher, t.subject, t.unit),
            Entity::Lesson(l) => format!("{}/{}/{}", l.unit, l.date, l.number.unwrap_or(0)),
            Entity::Homework(h) => h.lesson.map(|l| l.to_string()).unwrap_or_default(),
            Entity::Work(w) => w.lesson.map(|l| l.to_string()).unwrap_or_default(),
            Entity::Mark(m) => format!(
                "{}/{}/{}",
                m.student,
                m.lesson.map(|l| l.to_string()).unwrap_or_default(),
                m.work.map(|w| w.to_string()).unwrap_or_default()
            ),
            Entity::FinalMark(f) => format!(
                "{}/{}/{}",
                f.student,
                f.subject,
                f.period.map(|p| p.to_string()).unwrap_or_else(|| "year".into())
            ),
            Entity::Attendance(a) => format!("{}/{}", a.student, a.lesson),
            Entity::AbsenceNotice(n) => format!("{}/{}", n.student, n.from),
            Entity::Acknowledgement(a) => format!("{}/{}/{}", a.guardian, a.student, a.at),
            Entity::Consent(c) => c.person.to_string(),
            Entity::UserActivity(u) => format!("{}/{}/{}", u.person, u.date, u.action),
        }
    }
}

/// Вид организации
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrganizationKind {
    /// Муниципалитет (орган управления образованием)
    Municipality,
    /// Школа (образовательная организация)
    School,
}

/// Организация
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub kind: OrganizationKind,
    /// Краткое наименование
    pub name: String,
    /// Полное наименование
    pub full_name: Option<String>,
    /// Муниципалитет (name, as the source writes it)
    pub municipality: Option<String>,
    /// IANA time zone of the school (`Europe/Moscow`, `Asia/Krasnoyarsk`); deadlines are local.
    pub time_zone: Option<String>,
    /// The regulation profile the school follows (`regulations/*.toml`), set by configuration.
    pub regulation_profile: Option<String>,
}

/// Учебный год
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcademicYear {
    pub organization: Option<Uuid>,
    /// «2025/2026»
    pub name: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// Вид учебного периода
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// Четверть
    Quarter,
    /// Триместр
    Trimester,
    /// Полугодие
    HalfYear,
    /// Год
    Year,
    /// A kind the code table does not know (kept as the source wrote it)
    Other,
}

/// Учебный период
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyPeriod {
    pub organization: Option<Uuid>,
    pub academic_year: Option<Uuid>,
    pub kind: PeriodKind,
    /// Номер периода в году (1–4 for quarters)
    pub number: u8,
    /// «1 четверть»
    pub name: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// Каникулы
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holiday {
    pub organization: Option<Uuid>,
    pub name: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// Класс
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Class {
    pub organization: Option<Uuid>,
    pub academic_year: Option<Uuid>,
    /// «5А»
    pub name: String,
    /// Параллель (1–11)
    pub grade: Option<u8>,
    /// Классный руководитель
    pub homeroom_teacher: Option<Uuid>,
}

/// Вид учебной группы (REGULATIONS R3: subgroups, electives, extracurricular, ГПД)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// Подгруппа класса (иностранный язык, труд, информатика)
    Subgroup,
    /// Учебная группа из нескольких классов
    StudyGroup,
    /// Элективный курс
    Elective,
    /// Внеурочная деятельность
    Extracurricular,
    /// Группа продлённого дня (ГПД)
    AfterSchool,
}

/// Учебная группа
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub organization: Option<Uuid>,
    /// The class the group was split from, if any
    pub class: Option<Uuid>,
    pub kind: GroupKind,
    pub name: String,
    pub subject: Option<Uuid>,
}

/// Роль человека в школе
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Ученик
    Student,
    /// Сотрудник (учитель, администрация)
    Staff,
    /// Законный представитель
    Guardian,
}

/// Пол
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

/// Человек
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Фамилия
    pub last_name: String,
    /// Имя
    pub first_name: String,
    /// Отчество
    pub middle_name: Option<String>,
    pub sex: Option<Sex>,
    pub birth_date: Option<NaiveDate>,
    /// Sorted, without duplicates.
    pub roles: Vec<Role>,
}

/// Законное представительство
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guardianship {
    pub guardian: Uuid,
    pub student: Uuid,
}

/// Состояние зачисления
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentStatus {
    /// Обучается
    Active,
    /// Выбыл (в архиве)
    Archived,
}

/// Зачисление ученика в класс или группу
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    pub student: Uuid,
    /// The class or group (a canonical id of a `class` or `group` record)
    pub unit: Uuid,
    pub status: EnrollmentStatus,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Приказ (order number and date as written), where the source gives it
    pub order: Option<String>,
}

/// Предмет
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub organization: Option<Uuid>,
    /// As the source writes it
    pub name: String,
    /// Lower-cased, spaces folded, «ё» as «е»: the same subject from two systems compares equal
    pub normalized_name: String,
    /// Образовательная область
    pub knowledge_area: Option<String>,
}

/// Учебная нагрузка
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeachingLoad {
    pub teacher: Uuid,
    pub subject: Uuid,
    pub unit: Uuid,
    /// Часов в неделю
    pub hours_per_week: f64,
}

/// Состояние урока
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LessonStatus {
    /// Запланирован
    Planned,
    /// Проведён
    Held,
    /// Отменён
    Cancelled,
}

/// Урок
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lesson {
    /// The class or group the lesson is for
    pub unit: Uuid,
    pub subject: Option<Uuid>,
    pub date: NaiveDate,
    /// Номер урока в расписании дня
    pub number: Option<u8>,
    pub teacher: Option<Uuid>,
    /// Замещающий учитель
    pub substitute: Option<Uuid>,
    /// Тема урока
    pub topic: Option<String>,
    /// Раздел тематического планирования, к которому относится урок (ЭПОС's `topic_name`):
    /// not the lesson's topic — a lesson with a section and no topic has no topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    pub status: LessonStatus,
}

/// Домашнее задание
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Homework {
    /// The lesson it was given at
    pub lesson: Option<Uuid>,
    pub text: String,
    /// Когда задание внесено в журнал
    pub entered_at: Option<NaiveDateTime>,
    /// К какому сроку
    pub due_date: Option<NaiveDate>,
    /// Прикреплённые файлы и ссылки
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

/// Вложение к домашнему заданию: файл или ссылка
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Имя файла или заголовок ссылки
    pub name: String,
    /// Where the source serves it (absolute, or as the source gave it)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Вид работы
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    /// Работа на уроке / ответ
    Oral,
    /// Письменная работа
    Written,
    /// Контрольная работа
    Control,
    /// Тест
    Test,
    /// Работа в рамках внутришкольного контроля (ВШК)
    InternalControl,
    /// Самостоятельная работа
    Independent,
    /// Практическая или лабораторная работа
    Practical,
    /// A source work type the code table does not map (reported at sync)
    Other,
}

/// Работа
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Work {
    pub lesson: Option<Uuid>,
    pub kind: WorkKind,
    /// The source's own name of the work type, as written
    pub source_type: String,
    pub title: Option<String>,
    /// Вес
    pub weight: Option<f64>,
}

/// Шкала отметок
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkScale {
    /// Пятибалльная (with + and −)
    Five,
    /// Десятибалльная
    Ten,
    /// Зачёт / незачёт
    PassFail,
    Other,
}

/// Отметка
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    pub student: Uuid,
    pub lesson: Option<Uuid>,
    pub work: Option<Uuid>,
    pub subject: Option<Uuid>,
    /// As entered: «4+», «5», «зч»
    pub value: String,
    /// The numeric value the code table gives it (4+ → 4.25 … as the table says)
    pub numeric: Option<f64>,
    pub scale: MarkScale,
    pub weight: Option<f64>,
    /// Когда выставлена
    pub entered_at: Option<NaiveDateTime>,
    /// Кем выставлена
    pub entered_by: Option<Uuid>,
    /// Комментарий учителя к отметке
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// «Точка»: отметка, которую ученик должен исправить к сроку `point_date` (МЭШ-style
    /// systems); the fields are left out of the content when unset, so the hashes of records
    /// stored before they existed do not change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_point: bool,
    /// Срок исправления «точки»
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_date: Option<NaiveDate>,
}

/// Особая итоговая отметка
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecialFinal {
    /// Освобождён (ОСВ)
    Exempt,
    /// Не аттестован (Н/А)
    NotCertified,
    /// Зачёт
    Pass,
    /// Незачёт
    Fail,
}

/// Итоговая отметка
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalMark {
    pub student: Uuid,
    pub subject: Uuid,
    /// The study period; `None` is the year mark
    pub period: Option<Uuid>,
    pub value: String,
    pub numeric: Option<f64>,
    pub special: Option<SpecialFinal>,
    /// Когда выставлена (school time), where the source says (Dnevnik's final mark `date`);
    /// monitoring judges the period marks' deadline (M11) by it, else by the syncs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_at: Option<NaiveDateTime>,
}

/// Вид отметки посещаемости
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttendanceStatus {
    /// Отсутствовал
    Absent,
    /// Опоздал
    Late,
}

/// Причина отсутствия
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbsenceReason {
    /// По уважительной причине (УП)
    Excused,
    /// По неуважительной причине (НП)
    Unexcused,
    /// По болезни (Б)
    Illness,
}

/// Посещаемость
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attendance {
    pub student: Uuid,
    pub lesson: Uuid,
    pub status: AttendanceStatus,
    pub reason: Option<AbsenceReason>,
    /// The source's own status code, as written (kept so that nothing is lost in mapping)
    pub source_status: String,
    pub comment: Option<String>,
    pub entered_at: Option<NaiveDateTime>,
}

/// Уведомление о планируемом отсутствии (REGULATIONS K9)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbsenceNotice {
    pub student: Uuid,
    pub guardian: Option<Uuid>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub reason: Option<String>,
    pub submitted_at: Option<NaiveDateTime>,
}

/// Ознакомление с дневником (REGULATIONS K6)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub guardian: Uuid,
    pub student: Uuid,
    pub at: NaiveDateTime,
}

/// Согласие на обработку персональных данных (REGULATIONS K4)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    pub person: Uuid,
    pub given: bool,
    pub date: Option<NaiveDate>,
}

/// Активность пользователя (REGULATIONS P3)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserActivity {
    pub person: Uuid,
    pub date: NaiveDate,
    pub action: String,
    pub count: u32,
}

/// Folds a subject name for comparison across systems: lower case, «ё» → «е», runs of
/// white space to one space, trimmed.
pub fn normalize_name(name: &str) -> String {
    let lower = name.to_lowercase().replace('ё', "е");
    lower.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct_per_instance_and_kind() {
        let a = IdSpace::new("dnevnik-1");
        let b = IdSpace::new("dnevnik-2");
        assert_eq!(a.id(EntityKind::Mark, "1"), a.id(EntityKind::Mark, "1"));
        assert_ne!(a.id(EntityKind::Mark, "1"), b.id(EntityKind::Mark, "1"));
        assert_ne!(a.id(EntityKind::Mark, "1"), a.id(EntityKind::Lesson, "1"));
        assert_eq!(a.id(EntityKind::Mark, "1").get_version_num(), 5);
    }

    #[test]
    fn pieces_cover_the_range_without_gaps() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let p = DateRange::new(d("2025-09-01"), d("2025-10-15")).pieces(31);
        assert_eq!(
            p,
            vec![DateRange::new(d("2025-09-01"), d("2025-10-01")), DateRange::new(d("2025-10-02"), d("2025-10-15"))]
        );
        assert!(DateRange::new(d("2025-09-02"), d("2025-09-01")).pieces(31).is_empty());
        assert_eq!(DateRange::new(d("2025-09-01"), d("2025-09-03")).pieces(0).len(), 3);
    }

    #[test]
    fn a_years_journal_takes_entries_until_the_next_year_starts() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(DateRange::new(d("2025-09-01"), d("2026-05-26")).entries_close(), d("2026-08-31"));
        // The same when the summer is in a leap year.
        assert_eq!(DateRange::new(d("2027-09-01"), d("2028-05-31")).entries_close(), d("2028-08-31"));
        // A "year" longer than twelve months (a source's odd data) closes at its own end.
        assert_eq!(DateRange::new(d("2025-09-01"), d("2026-09-30")).entries_close(), d("2026-09-30"));
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in EntityKind::ALL {
            assert_eq!(EntityKind::parse(k.as_str()), Some(k));
        }
    }

    #[test]
    fn content_round_trips() {
        let e = Entity::Subject(Subject {
            organization: None,
            name: "Русский  язык".into(),
            normalized_name: normalize_name("Русский  язык"),
            knowledge_area: None,
        });
        let json = e.content_json();
        assert_eq!(Entity::from_content(EntityKind::Subject, &json).unwrap(), e);
        assert_eq!(normalize_name(" Естествознание  Ёж "), "естествознание еж");
    }

    #[test]
    fn content_fields_are_every_key_the_content_can_have() {
        // A mark with every optional field set has each of its keys in the list, in order;
        // the optional ones left out when unset are listed too.
        let mark = Mark {
            student: Uuid::nil(),
            lesson: None,
            work: None,
            subject: None,
            value: "5".into(),
            numeric: Some(5.0),
            scale: MarkScale::Five,
            weight: None,
            entered_at: None,
            entered_by: None,
            comment: Some("к сроку".into()),
            is_point: true,
            point_date: NaiveDate::from_ymd_opt(2025, 10, 1),
        };
        let json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&Entity::Mark(mark).content_json()).unwrap();
        let written: Vec<&str> = json.keys().map(String::as_str).collect();
        let mut listed = Entity::content_fields(EntityKind::Mark).to_vec();
        assert_eq!(listed.len(), 13);
        listed.sort_unstable();
        assert_eq!(written, listed, "serde_json's map is sorted by key");
        assert_eq!(&Entity::content_fields(EntityKind::Subject)[..2], ["organization", "name"]);
        for k in EntityKind::ALL {
            assert!(!Entity::content_fields(k).is_empty(), "{k:?}");
        }
    }
}
