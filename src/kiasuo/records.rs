//! Exchange files ⇄ canonical records.
//!
//! Ids are those of the КИАСУО diary connector for the same source instance: persons, classes,
//! subjects and study periods by КИАСУО's ids; enrollments `{class}:{pupil}`; final marks
//! `{pupil}:{subject}:{period|year}`. Content is built the way the connector builds it
//! (grade from the class name, period kind and number from its name, mark scale and
//! numeric value from `mappings/kiasuo/marks.toml`), plus what only the files carry
//! (sex, birth date, enrolment dates and orders, subject names).
//!
//! Enrollment orders. The model keeps one `order` text per enrollment; a class enrollment
//! can have two (the one that brought the pupil in, the one that took them out). ejgate
//! writes the admission order alone as written («№ 12-у»), and when there is a withdrawal
//! or transfer-out order: «зачисление: № 12-у; выбытие: № 40-в» (or «выбытие: № 40-в»).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use uuid::Uuid;

use ejgate_kiasuo::exchange::typed::grade_of;
use ejgate_kiasuo::exchange::{
    AcademicYear, ClassRow, ContingentFile, ContingentPupil, ExchangeFile, ExchangeKind, FinalMarkRow, FinalMarksFile,
    Known, Marks, MovementFile, MovementKind, MovementRow, PeriodRef, PupilInfo,
};
use ejgate_sdk::model::{self as m, Entity, EntityKind, IdSpace, Record};

use crate::store::{Store, StoreResult};

const IN: &str = "зачисление: ";
const OUT: &str = "выбытие: ";

/// An enrollment's orders: (admission, withdrawal).
pub fn split_order(order: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(o) = order.map(str::trim).filter(|o| !o.is_empty()) else { return (None, None) };
    if !(o.starts_with(IN) || o.starts_with(OUT)) {
        return (Some(o.to_string()), None);
    }
    let (mut a, mut b) = (None, None);
    for part in o.split("; ") {
        if let Some(x) = part.strip_prefix(IN) {
            a = Some(x.trim().to_string());
        } else if let Some(x) = part.strip_prefix(OUT) {
            b = Some(x.trim().to_string());
        }
    }
    (a, b)
}

/// The `order` text of an enrollment with these orders.
pub fn join_order(admission: Option<String>, withdrawal: Option<String>) -> Option<String> {
    match (admission, withdrawal) {
        (None, None) => None,
        (Some(a), None) => Some(a),
        (None, Some(w)) => Some(format!("{OUT}{w}")),
        (Some(a), Some(w)) => Some(format!("{IN}{a}; {OUT}{w}")),
    }
}

/// One live record of the store, read back into the model.
#[derive(Debug, Clone)]
pub struct Item<T> {
    pub id: Uuid,
    pub source_id: String,
    pub value: T,
}

/// What one source holds of the kinds the exchange files touch.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub years: Vec<Item<m::AcademicYear>>,
    pub periods: Vec<Item<m::StudyPeriod>>,
    pub classes: Vec<Item<m::Class>>,
    pub persons: Vec<Item<m::Person>>,
    pub enrollments: Vec<Item<m::Enrollment>>,
    pub subjects: Vec<Item<m::Subject>>,
    pub final_marks: Vec<Item<m::FinalMark>>,
}

macro_rules! load_kind {
    ($store:expr, $source:expr, $kind:expr, $variant:ident) => {{
        let mut out = Vec::new();
        for r in $store.records($kind, Some($source), false).await? {
            let json = serde_json::to_vec(&r.content).expect("JSON values serialize");
            match Entity::from_content($kind, &json) {
                Ok(Entity::$variant(v)) => out.push(Item { id: r.id, source_id: r.source_id, value: v }),
                Ok(_) => {}
                Err(e) => tracing::warn!(kind = %$kind, source_id = %r.source_id, "a stored record does not read as its kind: {e}"),
            }
        }
        out
    }};
}

impl Snapshot {
    pub async fn load(store: &dyn Store, source: &str) -> StoreResult<Snapshot> {
        Ok(Snapshot {
            years: load_kind!(store, source, EntityKind::AcademicYear, AcademicYear),
            periods: load_kind!(store, source, EntityKind::StudyPeriod, StudyPeriod),
            classes: load_kind!(store, source, EntityKind::Class, Class),
            persons: load_kind!(store, source, EntityKind::Person, Person),
            enrollments: load_kind!(store, source, EntityKind::Enrollment, Enrollment),
            subjects: load_kind!(store, source, EntityKind::Subject, Subject),
            final_marks: load_kind!(store, source, EntityKind::FinalMark, FinalMark),
        })
    }

    /// What the checks of an import need: class names and pupils.
    pub fn known(&self) -> Known {
        Known {
            classes: self.classes.iter().map(|c| (c.value.name.clone(), c.source_id.clone())).collect(),
            pupils: self
                .persons
                .iter()
                .filter(|p| p.value.roles.contains(&m::Role::Student))
                .map(|p| {
                    (
                        p.source_id.clone(),
                        (p.value.last_name.clone(), p.value.first_name.clone(), p.value.middle_name.clone()),
                    )
                })
                .collect(),
        }
    }

    /// The academic year the data is of: the academic-year record, else the first study
    /// period, else the earliest enrolment date.
    pub fn academic_year(&self) -> Option<AcademicYear> {
        let first = self
            .years
            .iter()
            .map(|y| y.value.start)
            .min()
            .or_else(|| self.periods.iter().map(|p| p.value.start).min())
            .or_else(|| self.enrollments.iter().filter_map(|e| e.value.from).min())?;
        Some(AcademicYear::of_date(first))
    }
}

fn pupil_info(source_id: &str, p: &m::Person) -> PupilInfo {
    PupilInfo {
        id: source_id.to_string(),
        last_name: p.last_name.clone(),
        first_name: p.first_name.clone(),
        middle_name: p.middle_name.clone(),
        sex: p.sex,
        birth_date: p.birth_date,
    }
}

/// Class facts by canonical id: (source id, name, grade).
fn classes_by_id(snap: &Snapshot) -> HashMap<Uuid, (&str, &str, u8)> {
    snap.classes
        .iter()
        .map(|c| (c.id, (c.source_id.as_str(), c.value.name.as_str(), c.value.grade.unwrap_or(0))))
        .collect()
}

/// The class a pupil is in now (an active class enrollment, the latest), else the last
/// one they left.
fn class_of_pupils(snap: &Snapshot) -> HashMap<Uuid, Uuid> {
    let classes = classes_by_id(snap);
    let mut best: HashMap<Uuid, (bool, Option<NaiveDate>, Option<NaiveDate>, Uuid)> = HashMap::new();
    for e in snap.enrollments.iter().map(|e| &e.value).filter(|e| classes.contains_key(&e.unit)) {
        let key = (e.status == m::EnrollmentStatus::Active, e.from, e.to, e.unit);
        let slot = best.entry(e.student).or_insert(key);
        if key > *slot {
            *slot = key;
        }
    }
    best.into_iter().map(|(s, k)| (s, k.3)).collect()
}

/// Sort key of a pupil: class (grade, name), name, id.
type PupilKey = (u8, String, String, String, String, String);

fn pupil_key(class: Option<(u8, &str)>, p: &PupilInfo) -> PupilKey {
    let (g, c) = class.unwrap_or((u8::MAX, ""));
    (
        g,
        c.to_string(),
        p.last_name.clone(),
        p.first_name.clone(),
        p.middle_name.clone().unwrap_or_default(),
        p.id.clone(),
    )
}

/// The contingent: every class, and every pupil with an active class enrollment, in it.
pub fn export_contingent(snap: &Snapshot, year: AcademicYear) -> ContingentFile {
    let classes = classes_by_id(snap);
    let mut class_rows: Vec<(u8, String, String)> =
        snap.classes.iter().map(|c| (c.value.grade.unwrap_or(0), c.value.name.clone(), c.source_id.clone())).collect();
    class_rows.sort();
    let persons: HashMap<Uuid, &Item<m::Person>> = snap.persons.iter().map(|p| (p.id, p)).collect();
    let mut current: BTreeMap<Uuid, &m::Enrollment> = BTreeMap::new();
    for e in snap.enrollments.iter().map(|e| &e.value) {
        if e.status != m::EnrollmentStatus::Active || !classes.contains_key(&e.unit) {
            continue;
        }
        let slot = current.entry(e.student).or_insert(e);
        let name = |x: &m::Enrollment| classes[&x.unit].1.to_string();
        if (e.from, name(e)) > (slot.from, name(slot)) {
            *slot = e;
        }
    }
    let mut pupils: Vec<(PupilKey, ContingentPupil)> = current
        .values()
        .filter_map(|e| {
            let p = persons.get(&e.student)?;
            let (_, class, grade) = classes[&e.unit];
            let info = pupil_info(&p.source_id, &p.value);
            let key = pupil_key(Some((grade, class)), &info);
            let row = ContingentPupil {
                pupil: info,
                class: class.to_string(),
                enrolled_on: e.from,
                order: split_order(e.order.as_deref()).0,
            };
            Some((key, row))
        })
        .collect();
    pupils.sort_by(|a, b| a.0.cmp(&b.0));
    ContingentFile {
        year,
        classes: class_rows.into_iter().map(|(_, name, id)| ClassRow { id, name }).collect(),
        pupils: pupils.into_iter().map(|x| x.1).collect(),
    }
}

/// The movement of the year, derived from class enrollments: a pupil whose class
/// enrollment ends on a day and another begins the next day was transferred; an
/// enrollment that begins after 1 September without such a predecessor is an arrival; an
/// archived one that ends without a successor is a departure.
pub fn export_movement(snap: &Snapshot, year: AcademicYear) -> MovementFile {
    let classes = classes_by_id(snap);
    let persons: HashMap<Uuid, &Item<m::Person>> = snap.persons.iter().map(|p| (p.id, p)).collect();
    let mut by_pupil: BTreeMap<Uuid, Vec<&m::Enrollment>> = BTreeMap::new();
    for e in snap.enrollments.iter().map(|e| &e.value).filter(|e| classes.contains_key(&e.unit)) {
        by_pupil.entry(e.student).or_default().push(e);
    }
    let mut rows: Vec<((NaiveDate, MovementKind, PupilKey, String), MovementRow)> = Vec::new();
    for (student, list) in &by_pupil {
        let Some(p) = persons.get(student) else { continue };
        let info = pupil_info(&p.source_id, &p.value);
        let key = pupil_key(None, &info);
        let name = |e: &m::Enrollment| classes[&e.unit].1.to_string();
        for e in list {
            let predecessor = e
                .from
                .and_then(|f| list.iter().find(|x| x.unit != e.unit && x.to.and_then(|t| t.succ_opt()) == Some(f)));
            let successor =
                e.to.and_then(|t| t.succ_opt())
                    .and_then(|n| list.iter().find(|x| x.unit != e.unit && x.from == Some(n)));
            let (admission, withdrawal) = split_order(e.order.as_deref());
            if let (Some(prev), Some(from)) = (predecessor, e.from) {
                let order = admission.clone().or_else(|| split_order(prev.order.as_deref()).1);
                let row = MovementRow {
                    pupil: info.clone(),
                    kind: MovementKind::Transfer,
                    date: from,
                    from_class: Some(name(prev)),
                    to_class: Some(name(e)),
                    order,
                };
                rows.push(((from, MovementKind::Transfer, key.clone(), name(e)), row));
            } else if let Some(from) = e.from.filter(|f| *f > year.first_day()) {
                let row = MovementRow {
                    pupil: info.clone(),
                    kind: MovementKind::Arrival,
                    date: from,
                    from_class: None,
                    to_class: Some(name(e)),
                    order: admission.clone(),
                };
                rows.push(((from, MovementKind::Arrival, key.clone(), name(e)), row));
            }
            if e.status == m::EnrollmentStatus::Archived && successor.is_none() {
                if let Some(to) = e.to {
                    let row = MovementRow {
                        pupil: info.clone(),
                        kind: MovementKind::Departure,
                        date: to,
                        from_class: Some(name(e)),
                        to_class: None,
                        order: withdrawal.clone(),
                    };
                    rows.push(((to, MovementKind::Departure, key.clone(), name(e)), row));
                }
            }
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    MovementFile { year, rows: rows.into_iter().map(|x| x.1).collect() }
}

/// Every final mark of the source, with its pupil, subject and period.
pub fn export_final_marks(snap: &Snapshot, year: AcademicYear) -> FinalMarksFile {
    let classes = classes_by_id(snap);
    let class_of = class_of_pupils(snap);
    let persons: HashMap<Uuid, &Item<m::Person>> = snap.persons.iter().map(|p| (p.id, p)).collect();
    let subjects: HashMap<Uuid, &Item<m::Subject>> = snap.subjects.iter().map(|s| (s.id, s)).collect();
    let periods: HashMap<Uuid, &Item<m::StudyPeriod>> = snap.periods.iter().map(|p| (p.id, p)).collect();
    type Key = (PupilKey, String, String, NaiveDate, String);
    let mut rows: Vec<(Key, FinalMarkRow)> = Vec::new();
    for fm in &snap.final_marks {
        let f = &fm.value;
        let Some(p) = persons.get(&f.student) else { continue };
        let parts: Vec<&str> = fm.source_id.split(':').collect();
        let (subject_id, subject) = match subjects.get(&f.subject) {
            Some(s) => (s.source_id.clone(), s.value.name.clone()),
            // The diary connector writes no subject records: the id is in the mark's key.
            None if parts.len() == 3 => (parts[1].to_string(), parts[1].to_string()),
            None => continue,
        };
        let period = match f.period {
            None => PeriodRef::Year,
            Some(id) => match periods.get(&id) {
                Some(p) => PeriodRef::Period {
                    id: p.source_id.clone(),
                    name: p.value.name.clone(),
                    start: p.value.start,
                    end: p.value.end,
                },
                None => continue,
            },
        };
        let class = class_of.get(&f.student).and_then(|c| classes.get(c)).map(|c| (c.2, c.1));
        let info = pupil_info(&p.source_id, &p.value);
        let (pstart, pid) = match &period {
            PeriodRef::Year => (NaiveDate::MAX, String::new()),
            PeriodRef::Period { id, start, .. } => (*start, id.clone()),
        };
        let key = (pupil_key(class, &info), subject.clone(), subject_id.clone(), pstart, pid);
        rows.push((
            key,
            FinalMarkRow {
                pupil_id: info.id,
                last_name: info.last_name,
                first_name: info.first_name,
                middle_name: info.middle_name,
                class: class.map(|c| c.1.to_string()),
                subject_id,
                subject,
                period,
                mark: f.value.clone(),
            },
        ));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    FinalMarksFile { year, rows: rows.into_iter().map(|x| x.1).collect() }
}

/// A record built from a file, with a line a person reads in a dry run.
pub struct Built {
    pub record: Record,
    pub describe: String,
}

struct Builder<'a> {
    ids: IdSpace,
    scope: String,
    snap: &'a Snapshot,
    out: Vec<Built>,
}

impl Builder<'_> {
    fn push(&mut self, source_id: String, entity: Entity, describe: String) {
        let record = Record {
            id: self.ids.id(entity.kind(), &source_id),
            source_id,
            scope: self.scope.clone(),
            date: None,
            source_updated_at: None,
            entity,
        };
        self.out.push(Built { record, describe });
    }

    fn person(&mut self, p: &PupilInfo) {
        let existing = self.snap.persons.iter().find(|x| x.source_id == p.id);
        let mut roles = existing.map(|x| x.value.roles.clone()).unwrap_or_default();
        if !roles.contains(&m::Role::Student) {
            roles.push(m::Role::Student);
        }
        roles.sort();
        roles.dedup();
        let person = m::Person {
            last_name: p.last_name.clone(),
            first_name: p.first_name.clone(),
            middle_name: p.middle_name.clone(),
            sex: p.sex,
            birth_date: p.birth_date,
            roles,
        };
        let describe =
            format!("{} {} {} ({})", p.last_name, p.first_name, p.middle_name.as_deref().unwrap_or(""), p.id)
                .replace("  (", " (");
        self.push(p.id.clone(), Entity::Person(person), describe);
    }

    fn class(&mut self, id: &str, name: &str) {
        let existing = self.snap.classes.iter().find(|x| x.source_id == id).map(|x| &x.value);
        let class = m::Class {
            organization: existing.and_then(|c| c.organization),
            academic_year: existing.and_then(|c| c.academic_year),
            name: name.to_string(),
            grade: grade_of(name),
            homeroom_teacher: existing.and_then(|c| c.homeroom_teacher),
        };
        self.push(id.to_string(), Entity::Class(class), format!("{name} ({id})"));
    }
}

/// Period kind and number from its name, as the diary connector reads them; `index` is
/// the period's place among the file's periods when the name has no number.
fn period_kind_number(name: &str, index: usize) -> (m::PeriodKind, u8) {
    let lower = name.to_lowercase();
    let kind = if lower.contains("четверт") {
        m::PeriodKind::Quarter
    } else if lower.contains("полугод") {
        m::PeriodKind::HalfYear
    } else if lower.contains("триместр") {
        m::PeriodKind::Trimester
    } else {
        m::PeriodKind::Other
    };
    let number = name.chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap_or(index as u8 + 1);
    (kind, number)
}

/// The records a checked file brings, for source instance `source`.
pub fn import_records(file: &ExchangeFile, source: &str, snap: &Snapshot, marks: &Marks) -> Vec<Built> {
    let mut b =
        Builder { ids: IdSpace::new(source), scope: format!("kiasuo-exchange:{}", file.kind()), snap, out: Vec::new() };
    let class_id_by_name: HashMap<String, String> =
        snap.classes.iter().map(|c| (c.value.name.trim().to_lowercase(), c.source_id.clone())).collect();
    let enrollment_of = |key: &str| snap.enrollments.iter().find(|e| e.source_id == key).map(|e| e.value.clone());
    match file {
        ExchangeFile::Contingent(f) => {
            let mut class_ids = class_id_by_name.clone();
            for c in &f.classes {
                b.class(&c.id, &c.name);
                class_ids.insert(c.name.trim().to_lowercase(), c.id.clone());
            }
            let class_names: HashMap<String, String> =
                class_ids.iter().map(|(n, id)| (id.clone(), n.clone())).collect();
            for p in &f.pupils {
                b.person(&p.pupil);
                let Some(class_id) = class_ids.get(&p.class.trim().to_lowercase()).cloned() else { continue };
                let student = b.ids.id(EntityKind::Person, &p.pupil.id);
                let unit = b.ids.id(EntityKind::Class, &class_id);
                // The contingent says where the pupil is now: another class they are still
                // active in is left the day before (or at an unknown date).
                for e in snap.enrollments.iter().filter(|e| {
                    e.value.student == student
                        && e.value.unit != unit
                        && e.value.status == m::EnrollmentStatus::Active
                        && snap.classes.iter().any(|c| c.id == e.value.unit)
                }) {
                    let mut old = e.value.clone();
                    old.status = m::EnrollmentStatus::Archived;
                    old.to = old.to.or(p.enrolled_on.and_then(|d| d.pred_opt()));
                    let other =
                        e.source_id.split(':').next().and_then(|c| class_names.get(c)).cloned().unwrap_or_default();
                    b.push(e.source_id.clone(), Entity::Enrollment(old), format!("{} leaves {}", p.pupil.id, other));
                }
                let enrollment = m::Enrollment {
                    student,
                    unit,
                    status: m::EnrollmentStatus::Active,
                    from: p.enrolled_on,
                    to: None,
                    order: join_order(p.order.clone(), None),
                };
                let describe = format!("{} {} in {}", p.pupil.last_name, p.pupil.first_name, p.class);
                b.push(format!("{class_id}:{}", p.pupil.id), Entity::Enrollment(enrollment), describe);
            }
        }
        ExchangeFile::Movement(f) => {
            let known: std::collections::HashSet<&str> = snap.persons.iter().map(|p| p.source_id.as_str()).collect();
            let mut created = std::collections::HashSet::new();
            let mut work: BTreeMap<String, (m::Enrollment, String)> = BTreeMap::new();
            let mut order_of_keys = Vec::new();
            let mut rows: Vec<&MovementRow> = f.rows.iter().collect();
            rows.sort_by_key(|r| r.date);
            for r in rows {
                // A pupil the store knows keeps the store's person record: the contingent
                // is where persons are kept up to date.
                if !known.contains(r.pupil.id.as_str()) && created.insert(r.pupil.id.clone()) {
                    b.person(&r.pupil);
                }
                let student = b.ids.id(EntityKind::Person, &r.pupil.id);
                let class_id = |name: &Option<String>| {
                    name.as_ref().and_then(|n| class_id_by_name.get(&n.trim().to_lowercase())).cloned()
                };
                let mut touch = |class: String, change: &dyn Fn(&mut m::Enrollment), describe: String| {
                    let key = format!("{class}:{}", r.pupil.id);
                    let entry = work.entry(key.clone()).or_insert_with(|| {
                        order_of_keys.push(key.clone());
                        let e = enrollment_of(&key).unwrap_or(m::Enrollment {
                            student,
                            unit: IdSpace::new(source).id(EntityKind::Class, &class),
                            status: m::EnrollmentStatus::Active,
                            from: None,
                            to: None,
                            order: None,
                        });
                        (e, String::new())
                    });
                    change(&mut entry.0);
                    entry.1 = describe;
                };
                let who = format!("{} {}", r.pupil.last_name, r.pupil.first_name);
                let date = r.date;
                let order = r.order.clone();
                let arrive = |e: &mut m::Enrollment| {
                    let (_, out) = split_order(e.order.as_deref());
                    e.status = m::EnrollmentStatus::Active;
                    e.from = Some(date);
                    e.to = None;
                    e.order = join_order(order.clone(), out);
                };
                let leave = |last_day: NaiveDate| {
                    let order = order.clone();
                    move |e: &mut m::Enrollment| {
                        let (adm, _) = split_order(e.order.as_deref());
                        e.status = m::EnrollmentStatus::Archived;
                        e.to = Some(last_day);
                        e.order = join_order(adm, order.clone());
                    }
                };
                match r.kind {
                    MovementKind::Arrival => {
                        if let Some(c) = class_id(&r.to_class) {
                            touch(c, &arrive, format!("{who} arrives in {}", r.to_class.as_deref().unwrap_or("")));
                        }
                    }
                    MovementKind::Departure => {
                        if let Some(c) = class_id(&r.from_class) {
                            touch(c, &leave(date), format!("{who} leaves {}", r.from_class.as_deref().unwrap_or("")));
                        }
                    }
                    MovementKind::Transfer => {
                        let last_day = date.pred_opt().unwrap_or(date);
                        let (from, to) = (r.from_class.as_deref().unwrap_or(""), r.to_class.as_deref().unwrap_or(""));
                        if let Some(c) = class_id(&r.from_class) {
                            touch(c, &leave(last_day), format!("{who} leaves {from} for {to}"));
                        }
                        if let Some(c) = class_id(&r.to_class) {
                            touch(c, &arrive, format!("{who} moves from {from} to {to}"));
                        }
                    }
                }
            }
            for key in order_of_keys {
                let (e, describe) = work.remove(&key).expect("every touched key is in the map");
                b.push(key, Entity::Enrollment(e), describe);
            }
        }
        ExchangeFile::FinalMarks(f) => {
            let mut subjects: BTreeMap<&str, &str> = BTreeMap::new();
            let mut periods: BTreeMap<&str, (&str, NaiveDate, NaiveDate)> = BTreeMap::new();
            for r in &f.rows {
                subjects.insert(&r.subject_id, &r.subject);
                if let PeriodRef::Period { id, name, start, end } = &r.period {
                    periods.insert(id, (name, *start, *end));
                }
            }
            for (id, name) in &subjects {
                let existing = snap.subjects.iter().find(|x| x.source_id == *id).map(|x| &x.value);
                let s = m::Subject {
                    organization: existing.and_then(|s| s.organization),
                    name: name.to_string(),
                    normalized_name: m::normalize_name(name),
                    knowledge_area: existing.and_then(|s| s.knowledge_area.clone()),
                };
                b.push(id.to_string(), Entity::Subject(s), format!("{name} ({id})"));
            }
            let mut by_start: Vec<(&&str, &(&str, NaiveDate, NaiveDate))> = periods.iter().collect();
            by_start.sort_by_key(|(id, p)| (p.1, **id));
            for (index, (id, (name, start, end))) in by_start.into_iter().enumerate() {
                let existing = snap.periods.iter().find(|x| x.source_id == **id).map(|x| &x.value);
                let (kind, number) = period_kind_number(name, index);
                let p = m::StudyPeriod {
                    organization: existing.and_then(|p| p.organization),
                    academic_year: existing.and_then(|p| p.academic_year),
                    kind,
                    number,
                    name: name.to_string(),
                    start: *start,
                    end: *end,
                };
                b.push(id.to_string(), Entity::StudyPeriod(p), format!("{name} ({id})"));
            }
            for r in &f.rows {
                let (_, numeric, special) = marks.read(&r.mark).unwrap_or((m::MarkScale::Other, None, None));
                let period_id = match &r.period {
                    PeriodRef::Year => None,
                    PeriodRef::Period { id, .. } => Some(id.as_str()),
                };
                let fm = m::FinalMark {
                    student: b.ids.id(EntityKind::Person, &r.pupil_id),
                    subject: b.ids.id(EntityKind::Subject, &r.subject_id),
                    period: period_id.map(|p| b.ids.id(EntityKind::StudyPeriod, p)),
                    value: r.mark.clone(),
                    numeric,
                    special,
                    entered_at: None,
                };
                let period_name = match &r.period {
                    PeriodRef::Year => "год".to_string(),
                    PeriodRef::Period { name, .. } => name.clone(),
                };
                let describe =
                    format!("{} {}: {}, {} — «{}»", r.last_name, r.first_name, r.subject, period_name, r.mark);
                b.push(
                    format!("{}:{}:{}", r.pupil_id, r.subject_id, period_id.unwrap_or("year")),
                    Entity::FinalMark(fm),
                    describe,
                );
            }
        }
    }
    b.out
}

/// The file to export of a kind.
pub fn export_file(kind: ExchangeKind, snap: &Snapshot, year: AcademicYear) -> ExchangeFile {
    match kind {
        ExchangeKind::Contingent => ExchangeFile::Contingent(export_contingent(snap, year)),
        ExchangeKind::Movement => ExchangeFile::Movement(export_movement(snap, year)),
        ExchangeKind::FinalMarks => ExchangeFile::FinalMarks(export_final_marks(snap, year)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_round_trip_through_the_one_order_field() {
        for (a, w) in [
            (None, None),
            (Some("№ 12-у".to_string()), None),
            (None, Some("№ 40-в".to_string())),
            (Some("№ 1".to_string()), Some("№ 2".to_string())),
        ] {
            assert_eq!(split_order(join_order(a.clone(), w.clone()).as_deref()), (a, w));
        }
        assert_eq!(split_order(Some("Приказ 5 от 01.09.2025")), (Some("Приказ 5 от 01.09.2025".into()), None));
    }
}
