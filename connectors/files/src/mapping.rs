//! The mapping file: which export files hold which canonical entities, and how their
//! columns (or XML elements) fill the canonical fields. README.md documents it field by
//! field; `mappings/files/default.toml` is the layout the test-data writer produces.
//!
//! A mapping is checked completely when it is loaded: every mistake (an unknown key, a
//! field the kind does not have, a missing required field, a bad date format) is reported
//! with its line, all of them at once, before any file is read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::format::{Item, StrftimeItems};
use serde::Deserialize;
use toml::Spanned;

use ejgate_sdk::mapping::CodeTable;
use ejgate_sdk::model::{self as m, EntityKind};

/// How the bytes of a CSV (or XML) file are turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Encoding {
    /// A BOM decides; without one, valid UTF-8 is UTF-8 and anything else Windows-1251.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "utf-8")]
    Utf8,
    #[serde(rename = "windows-1251")]
    Windows1251,
}

/// What a code the code table does not know does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownCodes {
    /// The file is refused with the row and column of the code (the default: an export
    /// is a snapshot a person can fix and export again).
    #[default]
    Error,
    /// The record is written with an `Other` value and the run carries a warning (what the
    /// API connectors do).
    Warn,
}

/// The file formats, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xlsx,
    Csv,
    Xml,
}

impl Format {
    pub fn of(file: &str) -> Option<Format> {
        let lower = file.to_lowercase();
        if lower.ends_with(".xlsx") || lower.ends_with(".xlsm") {
            Some(Format::Xlsx)
        } else if lower.ends_with(".csv") || lower.ends_with(".txt") {
            Some(Format::Csv)
        } else if lower.ends_with(".xml") {
            Some(Format::Xml)
        } else {
            None
        }
    }
}

/// Which code table a code field is read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Attendance,
    Marks,
    WorkTypes,
    Groups,
    PeriodTypes,
}

/// The type of a canonical field: how a cell becomes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// The record's own id in the source (text; a number must be an exact integer).
    Id,
    /// The id of a record of another kind.
    Ref(EntityKind),
    /// The id of a class or a group (told apart by the export's class and group lists).
    Unit,
    Text,
    Date,
    DateTime,
    Int,
    Float,
    /// да/нет, true/false, 1/0
    Bool,
    Code(Table),
    /// student/ученик, staff/сотрудник/учитель, guardian/родитель
    Role,
    /// м/ж, male/female
    Sex,
}

/// A canonical field a block can fill.
#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
}

const fn f(name: &'static str, ty: Ty, required: bool) -> FieldDef {
    FieldDef { name, ty, required }
}

use EntityKind as K;

/// The fields of each kind that can be read from files; `None` for kinds no export carries.
pub fn fields_of(kind: EntityKind) -> Option<&'static [FieldDef]> {
    const ORG: &[FieldDef] = &[
        f("source_id", Ty::Id, true),
        f("name", Ty::Text, true),
        f("full_name", Ty::Text, false),
        f("municipality", Ty::Text, false),
        f("time_zone", Ty::Text, false),
    ];
    const YEAR: &[FieldDef] = &[
        f("source_id", Ty::Id, true),
        f("organization", Ty::Ref(K::Organization), false),
        f("name", Ty::Text, true),
        f("start", Ty::Date, true),
        f("end", Ty::Date, true),
    ];
    const PERIOD: &[FieldDef] = &[
        f("source_id", Ty::Id, true),
        f("organization", Ty::Ref(K::Organization), false),
        f("academic_year", Ty::Ref(K::AcademicYear), false),
        f("kind", Ty::Code(Table::PeriodTypes), true),
        f("number", Ty::Int, true),
        f("name", Ty::Text, true),
        f("start", Ty::Date, true),
        f("end", Ty::Date, true),
    ];
    const HOLIDAY: &[FieldDef] = &[
        f("source_id", Ty::Id, true),
        f("organization", Ty::Ref(K::Organization), false),
        f("name", Ty::Text, true),
        f("start", Ty::Date, true),
        f("end", Ty::Date, true),
    ];
    const CLASS: &[FieldDef] = &[
        f("source_id", Ty::Id, true),
        f("organization", Ty::Ref(K::Organization), false),
        f("academic_year", Ty::Ref(K::AcademicYear), false),
        f("name", Ty::Text, true),
        f("grade", Ty::Int, false),
        f("homeroom_teacher", Ty::Ref(K::Person), false),
    ];
    const GROUP: &[FieldDef] = &[
        f("source_id", Ty::Id, true),
        f("organization", Ty::Ref(K::Organization), false),
        f("class", Ty::Ref(K::Class), false),
        f("kind", Ty::Code(Table::Groups), true),
        f("name", Ty::Text, true),
        f("subject", Ty::Ref(K::Subject), false),
    ];
    const PERSON: &[FieldDef] = &[
        f("source_id", Ty::Id, true),
        f("role", Ty::Role, true),
        f("last_name", Ty::Text, true),
        f("first_name", Ty::Text, true),
        f("middle_name", Ty::Text, false),
        f("sex", Ty::Sex, false),
        f("birth_date", Ty::Date, false),
    ];
    const GUARDIANSHIP: &[FieldDef] =
        &[f("guardian", Ty::Ref(K::Person), true), f("student", Ty::Ref(K::Person), true)];
    const ENROLLMENT: &[FieldDef] = &[
        f("student", Ty::Ref(K::Person), true),
        f("unit", Ty::Unit, true),
        f("active", Ty::Bool, false),
        f("from", Ty::Date, false),
        f("to", Ty::Date, false),
        f("order", Ty::Text, false),
    ];
    const SUBJECT: &[FieldDef] = &[
        f("source_id", Ty::Id, true),
        f("organization", Ty::Ref(K::Organization), false),
        f("name", Ty::Text, true),
        f("knowledge_area", Ty::Text, false),
    ];
    const LOAD: &[FieldDef] = &[
        f("teacher", Ty::Ref(K::Person), true),
        f("subject", Ty::Ref(K::Subject), true),
        f("unit", Ty::Unit, true),
        f("hours_per_week", Ty::Float, true),
    ];
    const LESSON: &[FieldDef] = &[
        f("source_id", Ty::Id, true),
        f("unit", Ty::Unit, true),
        f("subject", Ty::Ref(K::Subject), false),
        f("date", Ty::Date, true),
        f("number", Ty::Int, false),
        f("teacher", Ty::Ref(K::Person), false),
        f("substitute", Ty::Ref(K::Person), false),
        f("topic", Ty::Text, false),
        f("section", Ty::Text, false),
        f("cancelled", Ty::Bool, false),
    ];
    const HOMEWORK: &[FieldDef] = &[
        f("source_id", Ty::Id, true),
        f("lesson", Ty::Ref(K::Lesson), false),
        f("text", Ty::Text, false),
        f("entered_at", Ty::DateTime, false),
        f("due_date", Ty::Date, false),
    ];
    const WORK: &[FieldDef] = &[
        f("source_id", Ty::Id, true),
        f("lesson", Ty::Ref(K::Lesson), false),
        f("type", Ty::Code(Table::WorkTypes), true),
        f("title", Ty::Text, false),
        f("weight", Ty::Float, false),
    ];
    const MARK: &[FieldDef] = &[
        f("source_id", Ty::Id, true),
        f("student", Ty::Ref(K::Person), true),
        f("lesson", Ty::Ref(K::Lesson), false),
        f("work", Ty::Ref(K::Work), false),
        f("subject", Ty::Ref(K::Subject), false),
        f("value", Ty::Text, true),
        f("scale", Ty::Code(Table::Marks), false),
        f("weight", Ty::Float, false),
        f("entered_at", Ty::DateTime, false),
        f("entered_by", Ty::Ref(K::Person), false),
        f("comment", Ty::Text, false),
        f("is_point", Ty::Bool, false),
        f("point_date", Ty::Date, false),
    ];
    const FINAL: &[FieldDef] = &[
        f("student", Ty::Ref(K::Person), true),
        f("subject", Ty::Ref(K::Subject), true),
        f("period", Ty::Ref(K::StudyPeriod), false),
        f("value", Ty::Text, true),
        // When the period mark was set: exact evidence for M11 (period marks on time); the
        // built-in layouts have no such column, a school's mapping may name one.
        f("entered_at", Ty::DateTime, false),
    ];
    const ATTENDANCE: &[FieldDef] = &[
        f("student", Ty::Ref(K::Person), true),
        f("lesson", Ty::Ref(K::Lesson), true),
        f("code", Ty::Code(Table::Attendance), true),
        f("comment", Ty::Text, false),
        f("entered_at", Ty::DateTime, false),
    ];
    Some(match kind {
        K::Organization => ORG,
        K::AcademicYear => YEAR,
        K::StudyPeriod => PERIOD,
        K::Holiday => HOLIDAY,
        K::Class => CLASS,
        K::Group => GROUP,
        K::Person => PERSON,
        K::Guardianship => GUARDIANSHIP,
        K::Enrollment => ENROLLMENT,
        K::Subject => SUBJECT,
        K::TeachingLoad => LOAD,
        K::Lesson => LESSON,
        K::Homework => HOMEWORK,
        K::Work => WORK,
        K::Mark => MARK,
        K::FinalMark => FINAL,
        K::Attendance => ATTENDANCE,
        _ => return None,
    })
}

/// Where a field's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A column by its header text (CSV, XLSX), or a child element (`Тема`) or an attribute
    /// (`@id`) of the record element (XML).
    Column(String),
    /// The same value for every row (`{ value = "staff" }`).
    Const(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SourceSpec {
    Column(String),
    Const { value: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    name: Option<String>,
    #[allow(dead_code)]
    description: Option<String>,
    date_formats: Option<Vec<Spanned<String>>>,
    datetime_formats: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    encoding: Encoding,
    delimiter: Option<Spanned<String>>,
    #[serde(default)]
    unknown_codes: UnknownCodes,
    #[serde(default)]
    tables: TablesFile,
    #[serde(default, rename = "entity")]
    entities: Vec<BlockFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TablesFile {
    attendance: Option<String>,
    marks: Option<String>,
    work_types: Option<String>,
    groups: Option<String>,
    period_types: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockFile {
    kind: Spanned<String>,
    file: Spanned<String>,
    sheet: Option<Spanned<String>>,
    element: Option<Spanned<String>>,
    header_row: Option<u32>,
    encoding: Option<Encoding>,
    delimiter: Option<Spanned<String>>,
    date_formats: Option<Vec<Spanned<String>>>,
    datetime_formats: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    optional: bool,
    fields: BTreeMap<String, Spanned<SourceSpec>>,
}

/// One `[[entity]]` block: one kind read from the files one glob names.
#[derive(Debug, Clone)]
pub struct Block {
    /// The block's position in the mapping (1-based) and its line, for messages.
    pub index: usize,
    pub line: usize,
    pub kind: EntityKind,
    /// A glob relative to the export directory (`marks-*.csv`).
    pub file: String,
    pub format: Format,
    /// XLSX: the sheet (`None`: the first sheet).
    pub sheet: Option<String>,
    /// XML: the path of the record element from the root (`Журнал/Уроки/Урок`).
    pub element: Vec<String>,
    /// CSV, XLSX: the 1-based row holding the headers.
    pub header_row: u32,
    pub encoding: Encoding,
    pub delimiter: u8,
    pub date_formats: Vec<String>,
    pub datetime_formats: Vec<String>,
    /// A glob that matches no file is not an error.
    pub optional: bool,
    /// Canonical field → where it comes from, in the order of the kind's field list.
    pub fields: Vec<(FieldDef, Source)>,
}

impl Block {
    pub fn source(&self, field: &str) -> Option<&Source> {
        self.fields.iter().find(|(d, _)| d.name == field).map(|(_, s)| s)
    }
}

/// The code tables a mapping reads codes with.
#[derive(Debug, Clone)]
pub struct Tables {
    pub attendance: CodeTable<AttendanceCode>,
    pub marks: CodeTable<MarkType>,
    pub work_types: CodeTable<m::WorkKind>,
    pub groups: CodeTable<m::GroupKind>,
    pub period_types: CodeTable<m::PeriodKind>,
}

/// An attendance code: `status` is `absent` or `late`.
#[derive(Debug, Clone, Deserialize)]
pub struct AttendanceCode {
    pub status: String,
    pub reason: Option<m::AbsenceReason>,
}

/// A mark scale: numeric reading of each value, special final marks.
#[derive(Debug, Clone, Deserialize)]
pub struct MarkType {
    pub scale: m::MarkScale,
    #[serde(default)]
    pub values: BTreeMap<String, f64>,
    #[serde(default)]
    pub special: BTreeMap<String, m::SpecialFinal>,
}

impl Tables {
    pub fn get(&self, t: Table, code: &str) -> bool {
        match t {
            Table::Attendance => self.attendance.get(code).is_some(),
            Table::Marks => self.marks.get(code).is_some(),
            Table::WorkTypes => self.work_types.get(code).is_some(),
            Table::Groups => self.groups.get(code).is_some(),
            Table::PeriodTypes => self.period_types.get(code).is_some(),
        }
    }

    pub fn name(&self, t: Table) -> &str {
        match t {
            Table::Attendance => &self.attendance.name,
            Table::Marks => &self.marks.name,
            Table::WorkTypes => &self.work_types.name,
            Table::Groups => &self.groups.name,
            Table::PeriodTypes => &self.period_types.name,
        }
    }
}

/// A checked mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub name: String,
    /// Where the mapping was read from, for messages.
    pub origin: String,
    pub unknown_codes: UnknownCodes,
    pub tables: Tables,
    pub blocks: Vec<Block>,
}

/// A mapping that cannot be used: every problem, each with its line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("mapping {origin}: {}", problems.join("; "))]
pub struct MappingError {
    pub origin: String,
    pub problems: Vec<String>,
}

/// The built-in default layout (`mappings/files/default.toml`).
pub const DEFAULT_MAPPING: &str = include_str!("../../../mappings/files/default.toml");
/// A second layout: everything as UTF-8 CSV with ISO dates (`mappings/files/flat-csv.toml`).
pub const FLAT_CSV_MAPPING: &str = include_str!("../../../mappings/files/flat-csv.toml");

const DEFAULT_DATE_FORMATS: [&str; 2] = ["%d.%m.%Y", "%Y-%m-%d"];
const DEFAULT_DATETIME_FORMATS: [&str; 4] =
    ["%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"];

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

fn format_ok(f: &str) -> bool {
    !f.is_empty() && StrftimeItems::new(f).all(|i| !matches!(i, Item::Error))
}

macro_rules! table {
    ($base:expr, $spec:expr, $name:literal, $problems:expr) => {{
        let default = include_str!(concat!("../../../mappings/files/", $name, ".toml"));
        let loaded = match &$spec {
            Some(file) => {
                let path = $base.join(file);
                match std::fs::read_to_string(&path) {
                    Ok(text) => CodeTable::from_toml(concat!("files/", $name), &path.display().to_string(), &text),
                    Err(e) => {
                        $problems.push(format!("[tables] {}: cannot read {}: {e}", $name, path.display()));
                        CodeTable::from_toml(concat!("files/", $name), "built-in", default)
                    }
                }
            }
            None => CodeTable::from_toml(concat!("files/", $name), "built-in", default),
        };
        match loaded {
            Ok(t) => Some(t),
            Err(e) => {
                $problems.push(e.to_string());
                None
            }
        }
    }};
}

impl Mapping {
    /// Reads a mapping file; code tables named in `[tables]` are relative to its folder.
    pub fn load(path: &Path) -> Result<Mapping, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|e| MappingError {
            origin: path.display().to_string(),
            problems: vec![format!("cannot read it: {e}")],
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Mapping::parse(&path.display().to_string(), &text, &base)
    }

    /// Parses and checks a mapping. `base` is the folder code-table paths are relative to.
    pub fn parse(origin: &str, text: &str, base: &Path) -> Result<Mapping, MappingError> {
        let err = |problems: Vec<String>| MappingError { origin: origin.to_string(), problems };
        let file: MappingFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| format!("line {}: ", line_of(text, s.start))).unwrap_or_default();
            err(vec![format!("{line}{}", e.message().trim())])
        })?;
        let mut problems = Vec::new();
        let at = |s: std::ops::Range<usize>| format!("line {}", line_of(text, s.start));

        let formats = |list: &Option<Vec<Spanned<String>>>, default: &[&str], problems: &mut Vec<String>| match list {
            None => default.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            Some(list) => {
                for f in list {
                    if !format_ok(f.get_ref()) {
                        problems.push(format!("{}: «{}» is not a chrono date format", at(f.span()), f.get_ref()));
                    }
                }
                list.iter().map(|f| f.get_ref().clone()).collect()
            }
        };
        let delimiter = |d: &Option<Spanned<String>>, default: u8, problems: &mut Vec<String>| match d {
            None => default,
            Some(d) => {
                let s = d.get_ref();
                let c = if s == "\\t" || s == "tab" { "\t" } else { s.as_str() };
                if c.len() == 1 {
                    c.as_bytes()[0]
                } else {
                    problems.push(format!("{}: the delimiter must be one ASCII character, not «{s}»", at(d.span())));
                    default
                }
            }
        };
        let date_formats = formats(&file.date_formats, &DEFAULT_DATE_FORMATS, &mut problems);
        let datetime_formats = formats(&file.datetime_formats, &DEFAULT_DATETIME_FORMATS, &mut problems);
        let default_delimiter = delimiter(&file.delimiter, b';', &mut problems);

        let t = &file.tables;
        let tables = (
            table!(base, t.attendance, "attendance", problems),
            table!(base, t.marks, "marks", problems),
            table!(base, t.work_types, "work_types", problems),
            table!(base, t.groups, "groups", problems),
            table!(base, t.period_types, "period_types", problems),
        );

        if file.entities.is_empty() {
            problems.push("no [[entity]] block: the mapping reads nothing".into());
        }
        let mut blocks = Vec::new();
        for (i, b) in file.entities.into_iter().enumerate() {
            let line = line_of(text, b.kind.span().start);
            let here = format!("[[entity]] #{} (line {line})", i + 1);
            let Some(kind) = EntityKind::parse(b.kind.get_ref()) else {
                problems.push(format!("line {line}: unknown kind «{}»", b.kind.get_ref()));
                continue;
            };
            let Some(defs) = fields_of(kind) else {
                problems.push(format!("line {line}: kind «{kind}» cannot be read from export files"));
                continue;
            };
            let name = b.file.get_ref().clone();
            let Some(format) = Format::of(&name) else {
                problems.push(format!(
                    "{}: «{name}»: the file must end in .xlsx, .csv (or .txt) or .xml",
                    at(b.file.span())
                ));
                continue;
            };
            if name.starts_with('/') || name.split(['/', '\\']).any(|p| p == "..") {
                problems.push(format!("{}: «{name}» must stay inside the export directory", at(b.file.span())));
            }
            if let (Some(s), false) = (&b.sheet, format == Format::Xlsx) {
                problems.push(format!("{}: `sheet` is for .xlsx files only", at(s.span())));
            }
            let element: Vec<String> = match (&b.element, format) {
                (Some(e), Format::Xml) => {
                    let parts: Vec<String> =
                        e.get_ref().split('/').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
                    if parts.is_empty() {
                        problems.push(format!("{}: `element` is empty", at(e.span())));
                    }
                    parts
                }
                (Some(e), _) => {
                    problems.push(format!("{}: `element` is for .xml files only", at(e.span())));
                    Vec::new()
                }
                (None, Format::Xml) => {
                    problems.push(format!("{here}: an .xml file needs `element` (the path of the record element)"));
                    Vec::new()
                }
                (None, _) => Vec::new(),
            };
            let mut fields = Vec::new();
            for (key, spec) in &b.fields {
                let fline = line_of(text, spec.span().start);
                let Some(def) = defs.iter().find(|d| d.name == key) else {
                    let known: Vec<&str> = defs.iter().map(|d| d.name).collect();
                    problems.push(format!(
                        "line {fline}: unknown field «{key}» for kind «{kind}» (known: {})",
                        known.join(", ")
                    ));
                    continue;
                };
                let source = match spec.get_ref() {
                    SourceSpec::Column(c) if c.trim().is_empty() => {
                        problems.push(format!("line {fline}: field «{key}»: the column name is empty"));
                        continue;
                    }
                    SourceSpec::Column(c) => Source::Column(c.trim().to_string()),
                    SourceSpec::Const { value } => Source::Const(value.clone()),
                };
                if format != Format::Xml {
                    if let Source::Column(c) = &source {
                        if c.starts_with('@') {
                            problems.push(format!("line {fline}: field «{key}»: `@attribute` columns are for XML"));
                        }
                    }
                }
                fields.push((*def, source));
            }
            for d in defs.iter().filter(|d| d.required) {
                if !fields.iter().any(|(f, _)| f.name == d.name) {
                    problems.push(format!("{here}: kind «{kind}» needs the field «{}»", d.name));
                }
            }
            fields.sort_by_key(|(d, _)| defs.iter().position(|x| x.name == d.name));
            blocks.push(Block {
                index: i + 1,
                line,
                kind,
                file: name,
                format,
                sheet: b.sheet.map(|s| s.into_inner()),
                element,
                header_row: b.header_row.unwrap_or(1).max(1),
                encoding: b.encoding.unwrap_or(file.encoding),
                delimiter: delimiter(&b.delimiter, default_delimiter, &mut problems),
                date_formats: b
                    .date_formats
                    .as_ref()
                    .map(|_| formats(&b.date_formats, &[], &mut problems))
                    .unwrap_or_else(|| date_formats.clone()),
                datetime_formats: b
                    .datetime_formats
                    .as_ref()
                    .map(|_| formats(&b.datetime_formats, &[], &mut problems))
                    .unwrap_or_else(|| datetime_formats.clone()),
                optional: b.optional,
                fields,
            });
        }
        match tables {
            (Some(attendance), Some(marks), Some(work_types), Some(groups), Some(period_types))
                if problems.is_empty() =>
            {
                Ok(Mapping {
                    name: file.name.unwrap_or_else(|| origin.to_string()),
                    origin: origin.to_string(),
                    unknown_codes: file.unknown_codes,
                    tables: Tables { attendance, marks, work_types, groups, period_types },
                    blocks,
                })
            }
            _ => Err(err(problems)),
        }
    }

    /// The built-in default layout.
    pub fn default_layout() -> Mapping {
        Mapping::parse("built-in mappings/files/default.toml", DEFAULT_MAPPING, &PathBuf::new())
            .expect("the built-in mapping is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Mapping, MappingError> {
        Mapping::parse("test.toml", text, Path::new("."))
    }

    #[test]
    fn the_built_in_layouts_are_valid() {
        let d = Mapping::default_layout();
        assert!(d.blocks.len() >= 17, "{}", d.blocks.len());
        let flat = parse(FLAT_CSV_MAPPING).unwrap();
        assert!(flat.blocks.iter().all(|b| b.format == Format::Csv));
    }

    #[test]
    fn an_unknown_field_is_reported_with_its_line() {
        let text = "[[entity]]\nkind = \"subject\"\nfile = \"s.csv\"\n[entity.fields]\nsource_id = \"ID\"\nname = \"Название\"\ncolour = \"Цвет\"\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains("line 7") && e.contains("unknown field «colour»") && e.contains("test.toml"), "{e}");
    }

    #[test]
    fn unknown_keys_kinds_missing_fields_and_bad_formats_are_all_reported() {
        let e = parse("[[entity]]\nkind = \"subject\"\nfile = \"s.csv\"\nshet = \"x\"\n[entity.fields]\n").unwrap_err();
        assert!(e.to_string().contains("line 4") && e.to_string().contains("shet"), "{e}");
        let text = "date_formats = [\"%d.%\"]\n[[entity]]\nkind = \"lesons\"\nfile = \"l.csv\"\nfields = {}\n[[entity]]\nkind = \"mark\"\nfile = \"m.xml\"\nfields = { source_id = \"@id\" }\n";
        let e = parse(text).unwrap_err();
        let all = e.problems.join("\n");
        assert!(all.contains("line 1") && all.contains("«%d.%»"), "{all}");
        assert!(all.contains("line 3: unknown kind «lesons»"), "{all}");
        assert!(all.contains("needs `element`"), "{all}");
        assert!(all.contains("needs the field «student»") && all.contains("needs the field «value»"), "{all}");
    }

    #[test]
    fn constants_and_columns_are_told_apart() {
        let text = "[[entity]]\nkind = \"person\"\nfile = \"t.csv\"\ndelimiter = \",\"\n[entity.fields]\nsource_id = \"ID\"\nrole = { value = \"staff\" }\nlast_name = \"Фамилия\"\nfirst_name = \"Имя\"\n";
        let m = parse(text).unwrap();
        let b = &m.blocks[0];
        assert_eq!(b.source("role"), Some(&Source::Const("staff".into())));
        assert_eq!(b.source("last_name"), Some(&Source::Column("Фамилия".into())));
        assert_eq!(b.delimiter, b',');
        assert_eq!(b.fields[0].0.name, "source_id");
    }
}
