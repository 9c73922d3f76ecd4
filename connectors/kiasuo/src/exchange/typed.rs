//! Exchange files as values: pupils, movements and final marks with parsed dates and codes.
//! [`from_raw`] checks every row and collects every problem; [`to_raw`] writes the cells
//! back in the one form a reader accepts, so that export → import → export gives the same
//! file.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use ejgate_sdk::model::{MarkScale, Sex, SpecialFinal};

use super::layout::Layout;
use super::{ExchangeKind, Location, Problem, ProblemCode, RawCell, RawDoc, RawRow, RawSection};

/// Учебный год: 1 September of `start_year` to 31 August of the next year (ASSUMPTION: the
/// file names its year as «2025/2026»; dates inside the file must fall into it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AcademicYear {
    pub start_year: i32,
}

impl AcademicYear {
    /// «2025/2026» (the second year must follow the first).
    pub fn parse(s: &str) -> Option<AcademicYear> {
        let (a, b) = s.trim().split_once('/')?;
        let (a, b): (i32, i32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        (b == a + 1 && (1990..2200).contains(&a)).then_some(AcademicYear { start_year: a })
    }

    /// The academic year a date falls into.
    pub fn of_date(d: NaiveDate) -> AcademicYear {
        AcademicYear { start_year: if d.month() >= 9 { d.year() } else { d.year() - 1 } }
    }

    pub fn name(&self) -> String {
        format!("{}/{}", self.start_year, self.start_year + 1)
    }

    pub fn first_day(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.start_year, 9, 1).expect("1 September exists")
    }

    pub fn last_day(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.start_year + 1, 8, 31).expect("31 August exists")
    }

    pub fn contains(&self, d: NaiveDate) -> bool {
        self.first_day() <= d && d <= self.last_day()
    }
}

/// Reads a date written ДД.ММ.ГГГГ (two digits, two digits, four digits).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let mut parts = s.trim().split('.');
    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || d.len() != 2 || m.len() != 2 || y.len() != 4 {
        return None;
    }
    if !(d.chars().chain(m.chars()).chain(y.chars())).all(|c| c.is_ascii_digit()) {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// Writes a date as ДД.ММ.ГГГГ.
pub fn format_date(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

/// The grade a class name begins with («10Б» → 10), as the diary connector reads it.
pub fn grade_of(class_name: &str) -> Option<u8> {
    class_name.trim().chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().ok()
}

/// What the store already knows, for the checks that need it.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Class name → the class's source id.
    pub classes: BTreeMap<String, String>,
    /// Pupil source id → (last name, first name, middle name).
    pub pupils: BTreeMap<String, (String, String, Option<String>)>,
}

/// The mark code table (`mappings/kiasuo/marks.toml`), the same the diary connector reads
/// final marks with.
pub struct Marks {
    tables: crate::connector::Tables,
}

impl Marks {
    /// The built-in table, or `<dir>/kiasuo/marks.toml` when a mappings directory has it.
    pub fn load(mappings_dir: Option<&Path>) -> Result<Marks, String> {
        Ok(Marks { tables: crate::connector::Tables::load(mappings_dir)? })
    }

    /// Scale, numeric value and special meaning of a mark; `None` for a value the table
    /// does not know (a double mark is known when its parts are).
    pub fn read(&self, value: &str) -> Option<(MarkScale, Option<f64>, Option<SpecialFinal>)> {
        let mut warnings = Vec::new();
        let r = self.tables.mark(value, &mut warnings);
        warnings.is_empty().then_some(r)
    }
}

/// Ученик as the files describe a person.
#[derive(Debug, Clone, PartialEq)]
pub struct PupilInfo {
    /// КИАСУО's id of the pupil (kept as text: 64-bit ids)
    pub id: String,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub sex: Option<Sex>,
    pub birth_date: Option<NaiveDate>,
}

/// Класс in a contingent's class list.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassRow {
    pub id: String,
    pub name: String,
}

/// A pupil of a contingent, in the class they are in now.
#[derive(Debug, Clone, PartialEq)]
pub struct ContingentPupil {
    pub pupil: PupilInfo,
    /// The class's name
    pub class: String,
    /// Дата зачисления в класс (this academic year)
    pub enrolled_on: Option<NaiveDate>,
    /// Приказ о зачислении, as written
    pub order: Option<String>,
}

/// Контингент
#[derive(Debug, Clone, PartialEq)]
pub struct ContingentFile {
    pub year: AcademicYear,
    pub classes: Vec<ClassRow>,
    pub pupils: Vec<ContingentPupil>,
}

/// Вид движения
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MovementKind {
    /// Прибытие: into a class of the school
    Arrival,
    /// Перевод: from one class to another
    Transfer,
    /// Выбытие: out of the school
    Departure,
}

/// One movement.
#[derive(Debug, Clone, PartialEq)]
pub struct MovementRow {
    pub pupil: PupilInfo,
    pub kind: MovementKind,
    /// Arrival, transfer: the first day in the new class; departure: the day of leaving.
    pub date: NaiveDate,
    pub from_class: Option<String>,
    pub to_class: Option<String>,
    /// Номер приказа, as written
    pub order: Option<String>,
}

/// Движение
#[derive(Debug, Clone, PartialEq)]
pub struct MovementFile {
    pub year: AcademicYear,
    pub rows: Vec<MovementRow>,
}

/// The period of a final mark.
#[derive(Debug, Clone, PartialEq)]
pub enum PeriodRef {
    /// Годовая отметка
    Year,
    /// Четверть, полугодие, триместр: КИАСУО's period id, its name and dates
    Period { id: String, name: String, start: NaiveDate, end: NaiveDate },
}

/// One final mark.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalMarkRow {
    pub pupil_id: String,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    /// The pupil's class (for the reader of the file; checked, not stored)
    pub class: Option<String>,
    pub subject_id: String,
    pub subject: String,
    pub period: PeriodRef,
    /// As entered: «5», «4», «осв», «н/а», «зч»
    pub mark: String,
}

/// Итоговые отметки
#[derive(Debug, Clone, PartialEq)]
pub struct FinalMarksFile {
    pub year: AcademicYear,
    pub rows: Vec<FinalMarkRow>,
}

/// Файл обмена
#[derive(Debug, Clone, PartialEq)]
pub enum ExchangeFile {
    Contingent(ContingentFile),
    Movement(MovementFile),
    FinalMarks(FinalMarksFile),
}

impl ExchangeFile {
    pub fn kind(&self) -> ExchangeKind {
        match self {
            ExchangeFile::Contingent(_) => ExchangeKind::Contingent,
            ExchangeFile::Movement(_) => ExchangeKind::Movement,
            ExchangeFile::FinalMarks(_) => ExchangeKind::FinalMarks,
        }
    }

    pub fn year(&self) -> AcademicYear {
        match self {
            ExchangeFile::Contingent(f) => f.year,
            ExchangeFile::Movement(f) => f.year,
            ExchangeFile::FinalMarks(f) => f.year,
        }
    }

    /// How many rows the file holds.
    pub fn rows(&self) -> usize {
        match self {
            ExchangeFile::Contingent(f) => f.classes.len() + f.pupils.len(),
            ExchangeFile::Movement(f) => f.rows.len(),
            ExchangeFile::FinalMarks(f) => f.rows.len(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Writing

struct RowWriter {
    cells: Vec<RawCell>,
}

impl RowWriter {
    fn new() -> Self {
        RowWriter { cells: Vec::new() }
    }
    fn put(mut self, field: &str, value: Option<String>) -> Self {
        if let Some(v) = value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
            self.cells.push(RawCell { field: field.into(), value: v, location: Location::File });
        }
        self
    }
    fn row(self) -> RawRow {
        RawRow { location: Location::File, cells: self.cells }
    }
}

fn sex_code(layout: &Layout, sex: Option<Sex>) -> Option<String> {
    sex.map(|s| match s {
        Sex::Male => layout.values.male.clone(),
        Sex::Female => layout.values.female.clone(),
    })
}

fn pupil_cells(w: RowWriter, layout: &Layout, p: &PupilInfo) -> RowWriter {
    w.put("pupil_id", Some(p.id.clone()))
        .put("last_name", Some(p.last_name.clone()))
        .put("first_name", Some(p.first_name.clone()))
        .put("middle_name", p.middle_name.clone())
        .put("sex", sex_code(layout, p.sex))
        .put("birth_date", p.birth_date.map(format_date))
}

/// The cells of a file, in the order given (callers sort: see ejgate's export).
pub fn to_raw(file: &ExchangeFile, layout: &Layout) -> RawDoc {
    let section = |key: &str, rows: Vec<RawRow>| RawSection { key: key.into(), rows };
    let sections = match file {
        ExchangeFile::Contingent(f) => vec![
            section(
                "classes",
                f.classes
                    .iter()
                    .map(|c| {
                        RowWriter::new()
                            .put("class_id", Some(c.id.clone()))
                            .put("class_name", Some(c.name.clone()))
                            .row()
                    })
                    .collect(),
            ),
            section(
                "pupils",
                f.pupils
                    .iter()
                    .map(|p| {
                        pupil_cells(RowWriter::new(), layout, &p.pupil)
                            .put("class", Some(p.class.clone()))
                            .put("enrolled_on", p.enrolled_on.map(format_date))
                            .put("order", p.order.clone())
                            .row()
                    })
                    .collect(),
            ),
        ],
        ExchangeFile::Movement(f) => vec![section(
            "movements",
            f.rows
                .iter()
                .map(|r| {
                    let v = &layout.values;
                    let kind = match r.kind {
                        MovementKind::Arrival => &v.arrival,
                        MovementKind::Departure => &v.departure,
                        MovementKind::Transfer => &v.transfer,
                    };
                    pupil_cells(RowWriter::new(), layout, &r.pupil)
                        .put("movement", Some(kind.clone()))
                        .put("date", Some(format_date(r.date)))
                        .put("from_class", r.from_class.clone())
                        .put("to_class", r.to_class.clone())
                        .put("order", r.order.clone())
                        .row()
                })
                .collect(),
        )],
        ExchangeFile::FinalMarks(f) => vec![section(
            "marks",
            f.rows
                .iter()
                .map(|r| {
                    let w = RowWriter::new()
                        .put("pupil_id", Some(r.pupil_id.clone()))
                        .put("last_name", Some(r.last_name.clone()))
                        .put("first_name", Some(r.first_name.clone()))
                        .put("middle_name", r.middle_name.clone())
                        .put("class", r.class.clone())
                        .put("subject_id", Some(r.subject_id.clone()))
                        .put("subject", Some(r.subject.clone()));
                    let w = match &r.period {
                        PeriodRef::Year => w.put("period", Some(layout.values.year_period.clone())),
                        PeriodRef::Period { id, name, start, end } => w
                            .put("period_id", Some(id.clone()))
                            .put("period", Some(name.clone()))
                            .put("period_start", Some(format_date(*start)))
                            .put("period_end", Some(format_date(*end))),
                    };
                    w.put("mark", Some(r.mark.clone())).row()
                })
                .collect(),
        )],
    };
    RawDoc {
        kind: file.kind(),
        year: Some((file.year().name(), Location::File)),
        year_location: Location::File,
        sections,
    }
}

// ---------------------------------------------------------------------------------------
// Reading and checking

/// Reads the cells of one row, recording problems.
struct Cells<'a> {
    row: &'a RawRow,
    layout: &'a Layout,
    kind: ExchangeKind,
    section: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl Cells<'_> {
    /// How a field is named where the row came from: `<Фамилия>` in XML, «Фамилия» in XLSX.
    fn name(&self, field: &str) -> String {
        let col =
            self.layout.kind(self.kind).sections.iter().find(|s| s.key == self.section).and_then(|s| s.column(field));
        match (col, &self.row.location) {
            (Some(c), Location::Xlsx { .. }) => format!("column «{}»", c.header),
            (Some(c), _) => format!("<{}>", c.xml),
            (None, _) => field.to_string(),
        }
    }

    fn cell(&self, field: &str) -> Option<&RawCell> {
        self.row.cell(field)
    }

    fn at(&self, field: &str) -> Location {
        self.cell(field).map(|c| c.location.clone()).unwrap_or_else(|| self.row.location.clone())
    }

    fn problem(&mut self, field: &str, code: ProblemCode, message: String) {
        let location = self.at(field);
        self.problems.push(Problem::new(location, code, message));
    }

    fn text(&self, field: &str) -> Option<String> {
        self.cell(field).map(|c| c.value.trim().to_string())
    }

    fn required(&mut self, field: &str) -> Option<String> {
        let v = self.text(field);
        let Some(value) = v else {
            let name = self.name(field);
            self.problem(field, ProblemCode::MissingField, format!("the required field {name} is missing or empty"));
            return None;
        };
        // Ids are text of a bounded length (a rounded `1.75E+18` or a 5,000-digit cell is
        // refused with what to do); names are bounded too.
        let check = if field.ends_with("_id") {
            ejgate_sdk::limits::check_id_text(&value)
        } else if field.ends_with("name") {
            ejgate_sdk::limits::check_name_text(&value)
        } else {
            Ok(())
        };
        if let Err(e) = check {
            let name = self.name(field);
            self.problem(field, ProblemCode::BadValue, format!("{name}: {e}"));
            return None;
        }
        Some(value)
    }

    fn date(&mut self, field: &str, value: Option<String>) -> Option<NaiveDate> {
        let v = value?;
        let d = parse_date(&v);
        if d.is_none() {
            let name = self.name(field);
            self.problem(field, ProblemCode::BadDate, format!("{name}: «{v}» is not a date ДД.ММ.ГГГГ"));
        }
        d
    }

    fn in_year(&mut self, field: &str, d: Option<NaiveDate>, year: Option<AcademicYear>) {
        if let (Some(d), Some(y)) = (d, year) {
            if !y.contains(d) {
                let name = self.name(field);
                self.problem(
                    field,
                    ProblemCode::OutsideYear,
                    format!(
                        "{name}: {} is outside the academic year {} ({} – {})",
                        format_date(d),
                        y.name(),
                        format_date(y.first_day()),
                        format_date(y.last_day())
                    ),
                );
            }
        }
    }

    fn sex(&mut self) -> Option<Sex> {
        let v = self.text("sex")?;
        let values = &self.layout.values;
        if v.eq_ignore_ascii_case(&values.male) || v.to_lowercase() == values.male.to_lowercase() {
            Some(Sex::Male)
        } else if v.to_lowercase() == values.female.to_lowercase() {
            Some(Sex::Female)
        } else {
            let (m, f) = (values.male.clone(), values.female.clone());
            let name = self.name("sex");
            self.problem("sex", ProblemCode::BadValue, format!("{name}: «{v}» is neither «{m}» nor «{f}»"));
            None
        }
    }

    /// The person columns shared by contingent and movement rows.
    fn pupil(&mut self) -> Option<PupilInfo> {
        let id = self.required("pupil_id");
        let last = self.required("last_name");
        let first = self.required("first_name");
        let middle = self.text("middle_name");
        let sex = self.sex();
        let birth = self.text("birth_date");
        let birth = self.date("birth_date", birth);
        Some(PupilInfo { id: id?, last_name: last?, first_name: first?, middle_name: middle, sex, birth_date: birth })
    }

    fn check_name(&mut self, known: &Known, id: &str, last: &str, first: &str, middle: Option<&str>) {
        if let Some((l, f, m)) = known.pupils.get(id) {
            if l != last || f != first || m.as_deref() != middle {
                let message = format!(
                    "pupil {id} is «{} {} {}» here but «{} {} {}» in the store",
                    last,
                    first,
                    middle.unwrap_or(""),
                    l,
                    f,
                    m.as_deref().unwrap_or("")
                );
                self.problem("last_name", ProblemCode::NameMismatch, message.replace("  »", " »").replace(" »", "»"));
            }
        }
    }
}

fn read_year(raw: &RawDoc, problems: &mut Vec<Problem>) -> Option<AcademicYear> {
    match &raw.year {
        Some((text, loc)) => {
            let y = AcademicYear::parse(text);
            if y.is_none() {
                problems.push(Problem::new(
                    loc.clone(),
                    ProblemCode::BadYear,
                    format!("the academic year «{text}» is not ГГГГ/ГГГГ (for example 2025/2026)"),
                ));
            }
            y
        }
        None => {
            problems.push(Problem::new(
                raw.year_location.clone(),
                ProblemCode::BadYear,
                "the academic year is missing (for example 2025/2026)",
            ));
            None
        }
    }
}

fn norm(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Checks a raw file and turns it into values. Every problem of every row is returned.
pub fn from_raw(raw: &RawDoc, layout: &Layout, known: &Known, marks: &Marks) -> Result<ExchangeFile, Vec<Problem>> {
    let mut problems = Vec::new();
    let year = read_year(raw, &mut problems);
    let file = match raw.kind {
        ExchangeKind::Contingent => contingent(raw, layout, known, year, &mut problems).map(ExchangeFile::Contingent),
        ExchangeKind::Movement => movement(raw, layout, known, year, &mut problems).map(ExchangeFile::Movement),
        ExchangeKind::FinalMarks => {
            final_marks(raw, layout, known, year, marks, &mut problems).map(ExchangeFile::FinalMarks)
        }
    };
    match file {
        Some(f) if problems.is_empty() => Ok(f),
        _ => Err(problems),
    }
}

fn contingent(
    raw: &RawDoc,
    layout: &Layout,
    known: &Known,
    year: Option<AcademicYear>,
    problems: &mut Vec<Problem>,
) -> Option<ContingentFile> {
    let kind = ExchangeKind::Contingent;
    let mut classes = Vec::new();
    let mut class_ids: HashMap<String, Location> = HashMap::new();
    let mut class_names: HashMap<String, Location> = HashMap::new();
    for row in raw.section("classes") {
        let mut c = Cells { row, layout, kind, section: "classes", problems };
        let id = c.required("class_id");
        let name = c.required("class_name");
        if let Some(n) = &name {
            if !grade_of(n).is_some_and(|g| (1..=11).contains(&g)) {
                let field = c.name("class_name");
                c.problem(
                    "class_name",
                    ProblemCode::BadValue,
                    format!("{field}: «{n}» does not begin with a grade 1–11"),
                );
            }
        }
        if let Some(id) = &id {
            if let Some(first) = class_ids.get(id) {
                let m = format!("the class id {id} is listed twice (first at {first})");
                c.problem("class_id", ProblemCode::DuplicateClass, m);
            } else {
                class_ids.insert(id.clone(), c.at("class_id"));
            }
        }
        if let Some(n) = &name {
            if let Some(first) = class_names.get(&norm(n)) {
                let m = format!("the class «{n}» is listed twice (first at {first})");
                c.problem("class_name", ProblemCode::DuplicateClass, m);
            } else {
                class_names.insert(norm(n), c.at("class_name"));
            }
        }
        if let (Some(id), Some(name)) = (id, name) {
            classes.push(ClassRow { id, name });
        }
    }
    let known_class =
        |name: &str| class_names.contains_key(&norm(name)) || known.classes.keys().any(|k| norm(k) == norm(name));
    let mut pupils = Vec::new();
    let mut seen: HashMap<String, Location> = HashMap::new();
    for row in raw.section("pupils") {
        let mut c = Cells { row, layout, kind, section: "pupils", problems };
        let pupil = c.pupil();
        let class = c.required("class");
        if let Some(name) = &class {
            if !known_class(name) {
                let field = c.name("class");
                c.problem(
                    "class",
                    ProblemCode::UnknownClass,
                    format!("{field}: the class «{name}» is neither in the file's class list nor in the store"),
                );
            }
        }
        let enrolled = c.text("enrolled_on");
        let enrolled = c.date("enrolled_on", enrolled);
        c.in_year("enrolled_on", enrolled, year);
        let order = c.text("order");
        if let Some(p) = &pupil {
            if let (Some(b), Some(e)) = (p.birth_date, enrolled) {
                if b >= e {
                    let m = format!(
                        "the birth date {} is not before the enrolment date {}",
                        format_date(b),
                        format_date(e)
                    );
                    c.problem("birth_date", ProblemCode::Inconsistent, m);
                }
            }
            if let Some(first) = seen.get(&p.id) {
                let m = format!("the pupil {} is listed twice (first at {first})", p.id);
                c.problem("pupil_id", ProblemCode::DuplicateStudent, m);
            } else {
                seen.insert(p.id.clone(), c.at("pupil_id"));
            }
        }
        if let (Some(pupil), Some(class)) = (pupil, class) {
            pupils.push(ContingentPupil { pupil, class, enrolled_on: enrolled, order });
        }
    }
    Some(ContingentFile { year: year?, classes, pupils })
}

fn movement(
    raw: &RawDoc,
    layout: &Layout,
    known: &Known,
    year: Option<AcademicYear>,
    problems: &mut Vec<Problem>,
) -> Option<MovementFile> {
    let kind = ExchangeKind::Movement;
    let v = &layout.values;
    let mut rows = Vec::new();
    for row in raw.section("movements") {
        let mut c = Cells { row, layout, kind, section: "movements", problems };
        let pupil = c.pupil();
        if let Some(p) = &pupil {
            c.check_name(known, &p.id, &p.last_name, &p.first_name, p.middle_name.as_deref());
        }
        let mkind = c.required("movement").and_then(|m| {
            let l = m.to_lowercase();
            if l == v.arrival.to_lowercase() {
                Some(MovementKind::Arrival)
            } else if l == v.departure.to_lowercase() {
                Some(MovementKind::Departure)
            } else if l == v.transfer.to_lowercase() {
                Some(MovementKind::Transfer)
            } else {
                let field = c.name("movement");
                let msg = format!("{field}: «{m}» is none of «{}», «{}», «{}»", v.arrival, v.departure, v.transfer);
                c.problem("movement", ProblemCode::BadValue, msg);
                None
            }
        });
        let date = c.required("date");
        let date = c.date("date", date);
        c.in_year("date", date, year);
        let class = |c: &mut Cells, field: &str, needed: bool| {
            let value = if needed { c.required(field) } else { c.text(field) };
            if let Some(name) = &value {
                if !known.classes.keys().any(|k| norm(k) == norm(name)) {
                    let f = c.name(field);
                    c.problem(
                        field,
                        ProblemCode::UnknownClass,
                        format!("{f}: the store knows no class «{name}» (import the contingent first)"),
                    );
                }
            }
            value
        };
        let (from, to) = match mkind {
            Some(MovementKind::Arrival) => (class(&mut c, "from_class", false), class(&mut c, "to_class", true)),
            Some(MovementKind::Departure) => (class(&mut c, "from_class", true), class(&mut c, "to_class", false)),
            Some(MovementKind::Transfer) => (class(&mut c, "from_class", true), class(&mut c, "to_class", true)),
            None => (None, None),
        };
        if mkind == Some(MovementKind::Transfer) {
            if let (Some(a), Some(b)) = (&from, &to) {
                if norm(a) == norm(b) {
                    let m = format!("a transfer from «{a}» to the same class");
                    c.problem("to_class", ProblemCode::Inconsistent, m);
                }
            }
        }
        let order = c.text("order");
        if let (Some(pupil), Some(kind), Some(date)) = (pupil, mkind, date) {
            // An arrival's «from» and a departure's «to» (another school) are not kept.
            let (from_class, to_class) = match kind {
                MovementKind::Arrival => (None, to),
                MovementKind::Departure => (from, None),
                MovementKind::Transfer => (from, to),
            };
            rows.push(MovementRow { pupil, kind, date, from_class, to_class, order });
        }
    }
    Some(MovementFile { year: year?, rows })
}

fn final_marks(
    raw: &RawDoc,
    layout: &Layout,
    known: &Known,
    year: Option<AcademicYear>,
    marks: &Marks,
    problems: &mut Vec<Problem>,
) -> Option<FinalMarksFile> {
    let kind = ExchangeKind::FinalMarks;
    let mut rows = Vec::new();
    let mut periods: HashMap<String, (String, NaiveDate, NaiveDate, Location)> = HashMap::new();
    let mut seen: HashMap<(String, String, String), Location> = HashMap::new();
    for row in raw.section("marks") {
        let mut c = Cells { row, layout, kind, section: "marks", problems };
        let pupil_id = c.required("pupil_id");
        let last = c.required("last_name");
        let first = c.required("first_name");
        let middle = c.text("middle_name");
        if let Some(id) = &pupil_id {
            if !known.pupils.contains_key(id) {
                let m = format!(
                    "a mark for the pupil {id} ({} {}), whom the store does not know (import the contingent or movement first)",
                    last.as_deref().unwrap_or("?"),
                    first.as_deref().unwrap_or("?")
                );
                c.problem("pupil_id", ProblemCode::UnknownPupil, m);
            } else if let (Some(l), Some(f)) = (&last, &first) {
                c.check_name(known, id, l, f, middle.as_deref());
            }
        }
        let class = c.text("class");
        if let Some(name) = &class {
            if !known.classes.keys().any(|k| norm(k) == norm(name)) {
                let f = c.name("class");
                c.problem("class", ProblemCode::UnknownClass, format!("{f}: the store knows no class «{name}»"));
            }
        }
        let subject_id = c.required("subject_id");
        let subject = c.required("subject");
        let period_name = c.required("period");
        let period = match period_name {
            None => None,
            Some(p) if p.to_lowercase() == layout.values.year_period.to_lowercase() => Some(PeriodRef::Year),
            Some(name) => {
                let id = c.required("period_id");
                let start = c.required("period_start");
                let start = c.date("period_start", start);
                let end = c.required("period_end");
                let end = c.date("period_end", end);
                c.in_year("period_start", start, year);
                c.in_year("period_end", end, year);
                if let (Some(s), Some(e)) = (start, end) {
                    if s > e {
                        let m = format!(
                            "the period «{name}» ends ({}) before it starts ({})",
                            format_date(e),
                            format_date(s)
                        );
                        c.problem("period_end", ProblemCode::Inconsistent, m);
                    }
                }
                match (id, start, end) {
                    (Some(id), Some(start), Some(end)) => {
                        if let Some((n, s, e, first)) = periods.get(&id) {
                            if *n != name || *s != start || *e != end {
                                let m = format!(
                                    "the period {id} is «{name}» {} – {} here but «{n}» {} – {} at {first}",
                                    format_date(start),
                                    format_date(end),
                                    format_date(*s),
                                    format_date(*e)
                                );
                                c.problem("period_id", ProblemCode::PeriodConflict, m);
                            }
                        } else {
                            periods.insert(id.clone(), (name.clone(), start, end, c.at("period_id")));
                        }
                        Some(PeriodRef::Period { id, name, start, end })
                    }
                    _ => None,
                }
            }
        };
        let mark = c.required("mark");
        if let Some(m) = &mark {
            if marks.read(m).is_none() {
                let f = c.name("mark");
                c.problem(
                    "mark",
                    ProblemCode::UnknownMark,
                    format!("{f}: «{m}» is not a mark the code table mappings/kiasuo/marks.toml knows"),
                );
            }
        }
        if let (Some(p), Some(s), Some(per)) = (&pupil_id, &subject_id, &period) {
            let key = (
                p.clone(),
                s.clone(),
                match per {
                    PeriodRef::Year => String::new(),
                    PeriodRef::Period { id, .. } => id.clone(),
                },
            );
            if let Some(first) = seen.get(&key) {
                let m =
                    format!("a second mark of the pupil {p} in the subject {s} for the same period (first at {first})");
                c.problem("pupil_id", ProblemCode::DuplicateMark, m);
            } else {
                seen.insert(key, c.at("pupil_id"));
            }
        }
        if let (
            Some(pupil_id),
            Some(last_name),
            Some(first_name),
            Some(subject_id),
            Some(subject),
            Some(period),
            Some(mark),
        ) = (pupil_id, last, first, subject_id, subject, period, mark)
        {
            rows.push(FinalMarkRow {
                pupil_id,
                last_name,
                first_name,
                middle_name: middle,
                class,
                subject_id,
                subject,
                period,
                mark,
            });
        }
    }
    Some(FinalMarksFile { year: year?, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_years_read_strictly() {
        assert_eq!(parse_date("01.09.2025"), NaiveDate::from_ymd_opt(2025, 9, 1));
        for bad in ["1.09.2025", "31.02.2026", "2025-09-01", "01.09.25", "01.09.2025.1", "аа.09.2025"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        let y = AcademicYear::parse("2025/2026").unwrap();
        assert!(y.contains(NaiveDate::from_ymd_opt(2026, 5, 31).unwrap()));
        assert!(!y.contains(NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()));
        assert_eq!(AcademicYear::parse("2025/2027"), None);
        assert_eq!(AcademicYear::of_date(NaiveDate::from_ymd_opt(2026, 1, 9).unwrap()), y);
    }

    #[test]
    fn marks_know_the_tables_values_and_double_marks() {
        let m = Marks::load(None).unwrap();
        assert!(m.read("5").is_some() && m.read("н/а").is_some() && m.read("осв").is_some());
        assert!(m.read("5+/4-").is_some());
        assert!(m.read("6").is_none() && m.read("Ж").is_none());
    }
}
