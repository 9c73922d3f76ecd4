//! The test-data writer (feature `emulator`): the synthetic school exported as files, in the
//! layout a mapping describes — what a school's system would leave in the export folder.
//!
//! The writer is driven by the mapping itself: each block's columns are written in the
//! block's format (XLSX with real date cells, CSV in Windows-1251 or UTF-8, XML), so every
//! layout the connector reads can also be produced. Errors can be planted for tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveDateTime};

use ejgate_sdk::model::{EntityKind, GroupKind, PeriodKind};
use ejgate_sdk::synth::{School, SynthAttendanceStatus, SynthPerson, World};

use crate::mapping::{Block, Encoding, Format, Mapping, Source, Ty, FLAT_CSV_MAPPING};

/// The built-in layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `mappings/files/default.toml`: XLSX reference lists, Windows-1251 CSV rosters, XML
    /// journal, XLSX final marks.
    Default,
    /// `mappings/files/flat-csv.toml`: one UTF-8 CSV per kind.
    FlatCsv,
}

impl Layout {
    pub fn mapping(self) -> Mapping {
        match self {
            Layout::Default => Mapping::default_layout(),
            Layout::FlatCsv => Mapping::parse("built-in mappings/files/flat-csv.toml", FLAT_CSV_MAPPING, Path::new(""))
                .expect("the built-in mapping is valid"),
        }
    }
}

/// How CSV text is encoded, overriding the block's `encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvText {
    Windows1251,
    /// UTF-8 with a BOM (what Excel's «CSV UTF-8» writes).
    Utf8Bom,
    /// UTF-8 without a BOM.
    Utf8,
}

/// A mistake planted into the export, for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plant {
    /// The first date cell of the first row of the first block of this kind becomes
    /// «31.02.2026» (no such day).
    BadDate(EntityKind),
    /// The first code cell of the first row of the first block of this kind becomes «ХЗ».
    UnknownCode(EntityKind),
    /// Every XML file is cut off at about 60 % of its length.
    TruncateXml,
}

/// Options of an export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    pub csv: Option<CsvText>,
    pub plant: Vec<Plant>,
}

/// Where a planted mistake went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planted {
    pub plant: Plant,
    pub file: String,
    /// The row (XLSX) or line (CSV, XML) it is on; `None` for a truncation.
    pub line: Option<usize>,
}

/// An export that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("export to {path}: {detail}")]
pub struct ExportError {
    pub path: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
enum W {
    Empty,
    Text(String),
    Int(i64),
    Bool(bool),
    Date(NaiveDate),
    DateTime(NaiveDateTime),
}

impl From<String> for W {
    fn from(s: String) -> W {
        W::Text(s)
    }
}
impl From<&str> for W {
    fn from(s: &str) -> W {
        W::Text(s.to_string())
    }
}
fn id(n: u64) -> W {
    W::Text(n.to_string())
}
fn opt_id(n: Option<u64>) -> W {
    n.map(id).unwrap_or(W::Empty)
}

type Row = BTreeMap<&'static str, W>;

fn person_row(p: &SynthPerson) -> Row {
    BTreeMap::from([
        ("source_id", id(p.id)),
        ("last_name", p.last_name.as_str().into()),
        ("first_name", p.first_name.as_str().into()),
        ("middle_name", if p.middle_name.is_empty() { W::Empty } else { p.middle_name.as_str().into() }),
        ("sex", if p.sex == ejgate_sdk::model::Sex::Male { "м" } else { "ж" }.into()),
        ("birth_date", W::Date(p.birth_date)),
    ])
}

fn group_kind(k: GroupKind) -> &'static str {
    match k {
        GroupKind::Subgroup => "подгруппа",
        GroupKind::StudyGroup => "учебная группа",
        GroupKind::Elective => "элективный курс",
        GroupKind::Extracurricular => "внеурочная деятельность",
        GroupKind::AfterSchool => "ГПД",
    }
}

fn period_kind(k: PeriodKind) -> &'static str {
    match k {
        PeriodKind::Quarter => "четверть",
        PeriodKind::Trimester => "триместр",
        PeriodKind::HalfYear => "полугодие",
        PeriodKind::Year => "год",
        PeriodKind::Other => "другой",
    }
}

fn attendance_code(s: SynthAttendanceStatus) -> &'static str {
    match s {
        SynthAttendanceStatus::AbsentUnexcused => "НП",
        SynthAttendanceStatus::AbsentExcused => "УП",
        SynthAttendanceStatus::Ill => "Б",
        SynthAttendanceStatus::Late => "ОП",
    }
}

/// The rows of one block: every record of its kind (persons: of the block's role).
fn rows(s: &School, block: &Block) -> Vec<Row> {
    use EntityKind as K;
    let org = id(s.id);
    match block.kind {
        K::Organization => vec![BTreeMap::from([
            ("source_id", id(s.id)),
            ("name", s.name.as_str().into()),
            ("full_name", s.full_name.as_str().into()),
            ("municipality", s.municipality.as_str().into()),
            ("time_zone", s.time_zone.as_str().into()),
        ])],
        K::AcademicYear => vec![BTreeMap::from([
            ("source_id", id(s.year.id)),
            ("organization", org),
            ("name", s.year.name.as_str().into()),
            ("start", W::Date(s.year.start)),
            ("end", W::Date(s.year.end)),
        ])],
        K::StudyPeriod => s
            .periods
            .iter()
            .map(|p| {
                BTreeMap::from([
                    ("source_id", id(p.id)),
                    ("organization", org.clone()),
                    ("academic_year", id(s.year.id)),
                    ("kind", period_kind(p.kind).into()),
                    ("number", W::Int(p.number as i64)),
                    ("name", p.name.as_str().into()),
                    ("start", W::Date(p.start)),
                    ("end", W::Date(p.end)),
                ])
            })
            .collect(),
        K::Holiday => s
            .holidays
            .iter()
            .map(|h| {
                BTreeMap::from([
                    ("source_id", id(h.id)),
                    ("organization", org.clone()),
                    ("name", h.name.as_str().into()),
                    ("start", W::Date(h.start)),
                    ("end", W::Date(h.end)),
                ])
            })
            .collect(),
        K::Subject => s
            .subjects
            .iter()
            .map(|x| {
                BTreeMap::from([
                    ("source_id", id(x.id)),
                    ("organization", org.clone()),
                    ("name", x.name.as_str().into()),
                    ("knowledge_area", x.knowledge_area.as_str().into()),
                ])
            })
            .collect(),
        K::Class => s
            .classes
            .iter()
            .map(|c| {
                BTreeMap::from([
                    ("source_id", id(c.id)),
                    ("organization", org.clone()),
                    ("academic_year", id(s.year.id)),
                    ("name", c.name.as_str().into()),
                    ("grade", W::Int(c.grade as i64)),
                    ("homeroom_teacher", opt_id(c.homeroom_teacher)),
                ])
            })
            .collect(),
        K::Group => s
            .groups
            .iter()
            .map(|g| {
                BTreeMap::from([
                    ("source_id", id(g.id)),
                    ("organization", org.clone()),
                    ("class", id(g.class_id)),
                    ("kind", group_kind(g.kind).into()),
                    ("name", g.name.as_str().into()),
                    ("subject", opt_id(g.subject_id)),
                ])
            })
            .collect(),
        K::Person => {
            let role = match block.source("role") {
                Some(Source::Const(r)) => r.to_lowercase(),
                _ => String::new(),
            };
            let (list, role_text) = match role.as_str() {
                "staff" | "сотрудник" | "учитель" | "teacher" => (&s.teachers, "staff"),
                "guardian" | "родитель" | "parent" => (&s.guardians, "guardian"),
                _ => (&s.students, "student"),
            };
            list.iter()
                .map(|p| {
                    let mut r = person_row(p);
                    r.insert("role", role_text.into());
                    r
                })
                .collect()
        }
        K::Guardianship => {
            s.guardianships.iter().map(|(g, st)| BTreeMap::from([("guardian", id(*g)), ("student", id(*st))])).collect()
        }
        K::Enrollment => s
            .enrollments
            .iter()
            .map(|e| {
                BTreeMap::from([
                    ("student", id(e.student)),
                    ("unit", id(e.unit)),
                    ("active", W::Bool(e.active)),
                    ("from", W::Date(e.from)),
                    ("to", e.to.map(W::Date).unwrap_or(W::Empty)),
                ])
            })
            .collect(),
        K::TeachingLoad => s
            .loads
            .iter()
            .map(|l| {
                BTreeMap::from([
                    ("teacher", id(l.teacher)),
                    ("subject", id(l.subject)),
                    ("unit", id(l.unit)),
                    ("hours_per_week", W::Int(l.hours_per_week as i64)),
                ])
            })
            .collect(),
        K::Lesson => s
            .lessons
            .values()
            .map(|l| {
                BTreeMap::from([
                    ("source_id", id(l.id)),
                    ("unit", id(l.unit)),
                    ("subject", id(l.subject)),
                    ("date", W::Date(l.date)),
                    ("number", W::Int(l.number as i64)),
                    ("teacher", id(l.teacher)),
                    ("substitute", opt_id(l.substitute)),
                    ("topic", l.topic.clone().map(W::Text).unwrap_or(W::Empty)),
                    ("section", l.section.clone().map(W::Text).unwrap_or(W::Empty)),
                    ("cancelled", W::Bool(l.cancelled)),
                ])
            })
            .collect(),
        K::Work => {
            let types: BTreeMap<u64, (&str, u8)> =
                s.work_types.iter().map(|t| (t.id, (t.title.as_str(), t.weight))).collect();
            s.works
                .values()
                .filter(|w| !w.is_homework)
                .map(|w| {
                    let t = types.get(&w.work_type);
                    BTreeMap::from([
                        ("source_id", id(w.id)),
                        ("lesson", id(w.lesson)),
                        ("type", t.map(|t| W::Text(t.0.to_string())).unwrap_or(W::Empty)),
                        ("title", if w.text.trim().is_empty() { W::Empty } else { w.text.as_str().into() }),
                        ("weight", t.map(|t| W::Int(t.1 as i64)).unwrap_or(W::Empty)),
                    ])
                })
                .collect()
        }
        K::Homework => s
            .works
            .values()
            .filter(|w| w.is_homework)
            .map(|w| {
                BTreeMap::from([
                    ("source_id", id(w.id)),
                    ("lesson", id(w.lesson)),
                    ("text", w.text.as_str().into()),
                    ("entered_at", W::DateTime(w.created_at)),
                    ("due_date", W::Date(w.target_date)),
                ])
            })
            .collect(),
        K::Mark => {
            let weights: BTreeMap<u64, u8> = s.work_types.iter().map(|t| (t.id, t.weight)).collect();
            s.marks
                .values()
                .map(|mk| {
                    let work = s.works.get(&mk.work);
                    let weight = work.and_then(|w| weights.get(&w.work_type)).copied().unwrap_or(1);
                    BTreeMap::from([
                        ("source_id", id(mk.id)),
                        ("student", id(mk.student)),
                        ("lesson", id(mk.lesson)),
                        ("work", id(mk.work)),
                        ("subject", opt_id(s.lessons.get(&mk.lesson).map(|l| l.subject))),
                        ("value", mk.value.as_str().into()),
                        ("scale", "five".into()),
                        ("weight", W::Int(weight as i64)),
                        ("entered_at", W::DateTime(mk.entered_at)),
                        ("entered_by", id(mk.entered_by)),
                        ("comment", mk.comment.clone().map(W::Text).unwrap_or(W::Empty)),
                        ("is_point", if mk.is_point { W::Bool(true) } else { W::Empty }),
                        ("point_date", mk.point_date.map(W::Date).unwrap_or(W::Empty)),
                    ])
                })
                .collect()
        }
        K::FinalMark => s
            .final_marks
            .iter()
            .map(|((student, subject, period), f)| {
                BTreeMap::from([
                    ("student", id(*student)),
                    ("subject", id(*subject)),
                    ("period", opt_id(*period)),
                    ("value", f.value.as_str().into()),
                    ("entered_at", W::DateTime(f.entered_at)),
                ])
            })
            .collect(),
        K::Attendance => s
            .attendance
            .iter()
            .map(|((lesson, student), a)| {
                BTreeMap::from([
                    ("student", id(*student)),
                    ("lesson", id(*lesson)),
                    ("code", attendance_code(a.status).into()),
                    ("comment", a.comment.clone().map(W::Text).unwrap_or(W::Empty)),
                    ("entered_at", W::DateTime(a.entered_at)),
                ])
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The written columns of a block (constants are not written): (field, header, type).
fn columns(block: &Block) -> Vec<(&'static str, String, Ty)> {
    block
        .fields
        .iter()
        .filter_map(|(d, src)| match src {
            Source::Column(c) => Some((d.name, c.clone(), d.ty)),
            Source::Const(_) => None,
        })
        .collect()
}

fn text_of(w: &W, block: &Block) -> String {
    match w {
        W::Empty => String::new(),
        W::Text(s) => s.clone(),
        W::Int(n) => n.to_string(),
        W::Bool(b) => if *b { "да" } else { "нет" }.into(),
        W::Date(d) => d.format(&block.date_formats[0]).to_string(),
        W::DateTime(d) => d.format(&block.datetime_formats[0]).to_string(),
    }
}

/// Applies the plants that target `block` to its first row.
fn plant(rows: &mut [Row], block: &Block, plants: &[Plant], done: &mut Vec<Plant>) -> Vec<Plant> {
    let mut applied = Vec::new();
    let Some(first) = rows.first_mut() else { return applied };
    let cols = columns(block);
    for p in plants {
        if done.contains(p) {
            continue;
        }
        let target = match p {
            Plant::BadDate(k) if *k == block.kind => {
                cols.iter().find(|(_, _, t)| matches!(t, Ty::Date | Ty::DateTime)).map(|c| (c.0, "31.02.2026"))
            }
            Plant::UnknownCode(k) if *k == block.kind => {
                cols.iter().find(|(_, _, t)| matches!(t, Ty::Code(_))).map(|c| (c.0, "ХЗ"))
            }
            _ => None,
        };
        if let Some((field, value)) = target {
            first.insert(field, W::Text(value.into()));
            done.push(p.clone());
            applied.push(p.clone());
        }
    }
    applied
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> ExportError {
    ExportError { path: path.display().to_string(), detail: e.to_string() }
}

/// Writes the synthetic school into `dir` in a built-in layout.
pub fn export_world(world: &World, dir: &Path, layout: Layout) -> Result<Vec<PathBuf>, ExportError> {
    export_world_with(world, dir, &layout.mapping(), &ExportOptions::default()).map(|(files, _)| files)
}

/// Writes the synthetic school into `dir` as `mapping` lays it out. Every block's `file`
/// must be a plain name (no glob). Returns the files written and where plants went.
pub fn export_world_with(
    world: &World,
    dir: &Path,
    mapping: &Mapping,
    options: &ExportOptions,
) -> Result<(Vec<PathBuf>, Vec<Planted>), ExportError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    // file → blocks, files in the order the mapping first names them (plants go to the
    // first block of their kind in mapping order)
    let mut files: Vec<(&str, Vec<&Block>)> = Vec::new();
    for b in &mapping.blocks {
        match files.iter_mut().find(|(f, _)| *f == b.file) {
            Some((_, list)) => list.push(b),
            None => files.push((b.file.as_str(), vec![b])),
        }
    }
    let mut written = Vec::new();
    let mut planted = Vec::new();
    let mut done = Vec::new();
    for (name, blocks) in files {
        let path = dir.join(name);
        // Every school's rows, then the plants.
        let mut tables: Vec<(&Block, Vec<Row>, Vec<Plant>)> = Vec::new();
        for b in blocks {
            let mut rows: Vec<Row> = world.schools.iter().flat_map(|s| rows(s, b)).collect();
            let applied = plant(&mut rows, b, &options.plant, &mut done);
            tables.push((b, rows, applied));
        }
        let lines = match tables[0].0.format {
            Format::Csv => write_csv(&path, &tables[0], options.csv)?,
            Format::Xlsx => write_xlsx(&path, &tables)?,
            Format::Xml => write_xml(&path, &tables, options.plant.contains(&Plant::TruncateXml))?,
        };
        for ((_, _, applied), line) in tables.iter().zip(lines) {
            for p in applied {
                planted.push(Planted { plant: p.clone(), file: name.to_string(), line });
            }
        }
        if tables[0].0.format == Format::Xml && options.plant.contains(&Plant::TruncateXml) {
            planted.push(Planted { plant: Plant::TruncateXml, file: name.to_string(), line: None });
        }
        written.push(path);
    }
    Ok((written, planted))
}

/// Returns, per table, the line of its first data row.
fn write_csv(
    path: &Path,
    table: &(&Block, Vec<Row>, Vec<Plant>),
    csv: Option<CsvText>,
) -> Result<Vec<Option<usize>>, ExportError> {
    let (block, rows, _) = table;
    let cols = columns(block);
    let mut w = csv::WriterBuilder::new().delimiter(block.delimiter).from_writer(Vec::new());
    w.write_record(cols.iter().map(|c| c.1.as_str())).map_err(|e| io_err(path, e))?;
    for r in rows {
        w.write_record(cols.iter().map(|c| text_of(r.get(c.0).unwrap_or(&W::Empty), block)))
            .map_err(|e| io_err(path, e))?;
    }
    let text = String::from_utf8(w.into_inner().map_err(|e| io_err(path, e))?).map_err(|e| io_err(path, e))?;
    let mode = csv.unwrap_or(match block.encoding {
        Encoding::Utf8 => CsvText::Utf8Bom,
        Encoding::Auto | Encoding::Windows1251 => CsvText::Windows1251,
    });
    let bytes = match mode {
        CsvText::Windows1251 => {
            let (b, _, unmappable) = encoding_rs::WINDOWS_1251.encode(&text);
            if unmappable {
                return Err(io_err(path, "a character has no Windows-1251 code"));
            }
            b.into_owned()
        }
        CsvText::Utf8Bom => [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat(),
        CsvText::Utf8 => text.into_bytes(),
    };
    std::fs::write(path, bytes).map_err(|e| io_err(path, e))?;
    Ok(vec![Some(2)])
}

fn write_xlsx(path: &Path, tables: &[(&Block, Vec<Row>, Vec<Plant>)]) -> Result<Vec<Option<usize>>, ExportError> {
    use rust_xlsxwriter::{Format as XFormat, Workbook};
    let x = |e: rust_xlsxwriter::XlsxError| io_err(path, e);
    let mut book = Workbook::new();
    let date = XFormat::new().set_num_format("dd.mm.yyyy");
    let datetime = XFormat::new().set_num_format("dd.mm.yyyy hh:mm:ss");
    let mut lines = Vec::new();
    for (i, (block, rows, _)) in tables.iter().enumerate() {
        let sheet = book.add_worksheet();
        sheet.set_name(block.sheet.clone().unwrap_or_else(|| format!("Лист{}", i + 1))).map_err(x)?;
        let cols = columns(block);
        for (c, col) in cols.iter().enumerate() {
            sheet.write_string(0, c as u16, &col.1).map_err(x)?;
        }
        for (r, row) in rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, col) in cols.iter().enumerate() {
                let c = c as u16;
                match row.get(col.0).unwrap_or(&W::Empty) {
                    W::Empty => {}
                    W::Text(s) => {
                        sheet.write_string(r, c, s).map_err(x)?;
                    }
                    W::Int(n) => {
                        sheet.write_number(r, c, *n as f64).map_err(x)?;
                    }
                    W::Bool(b) => {
                        sheet.write_string(r, c, if *b { "да" } else { "нет" }).map_err(x)?;
                    }
                    W::Date(d) => {
                        sheet.write_datetime_with_format(r, c, d, &date).map_err(x)?;
                    }
                    W::DateTime(d) => {
                        sheet.write_datetime_with_format(r, c, d, &datetime).map_err(x)?;
                    }
                }
            }
        }
        lines.push(Some(2));
    }
    book.save(path).map_err(x)?;
    Ok(lines)
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

fn write_xml(
    path: &Path,
    tables: &[(&Block, Vec<Row>, Vec<Plant>)],
    truncate: bool,
) -> Result<Vec<Option<usize>>, ExportError> {
    let root = tables[0].0.element.first().cloned().unwrap_or_else(|| "Выгрузка".into());
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!("<{root}>\n"));
    let mut line = 3;
    let mut lines = Vec::new();
    for (block, rows, _) in tables {
        if block.element.first() != Some(&root) {
            return Err(io_err(path, "every block of one XML file must share the root element"));
        }
        let middle = &block.element[1..block.element.len().saturating_sub(1)];
        let record = block.element.last().cloned().unwrap_or_default();
        for m in middle {
            out.push_str(&format!("<{m}>\n"));
            line += 1;
        }
        lines.push(Some(line));
        let cols = columns(block);
        for row in rows {
            out.push_str(&format!("<{record}"));
            for (field, name, _) in cols.iter().filter(|c| c.1.starts_with('@')) {
                let v = text_of(row.get(field).unwrap_or(&W::Empty), block);
                out.push_str(&format!(" {}=\"{}\"", &name[1..], escape(&v)));
            }
            out.push('>');
            for (field, name, _) in cols.iter().filter(|c| !c.1.starts_with('@')) {
                let v = text_of(row.get(field).unwrap_or(&W::Empty), block);
                if !v.is_empty() {
                    out.push_str(&format!("<{name}>{}</{name}>", escape(&v)));
                }
            }
            out.push_str(&format!("</{record}>\n"));
            line += 1;
        }
        for m in middle.iter().rev() {
            out.push_str(&format!("</{m}>\n"));
            line += 1;
        }
    }
    out.push_str(&format!("</{root}>\n"));
    let mut bytes = out.into_bytes();
    if truncate {
        let mut cut = bytes.len() * 6 / 10;
        while cut > 0 && (bytes[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        bytes.truncate(cut);
    }
    std::fs::write(path, bytes).map_err(|e| io_err(path, e))?;
    Ok(lines)
}
