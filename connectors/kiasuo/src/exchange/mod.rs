//! КИАСУО exchange files (the secretary's unload and load): contingent, movement and final
//! marks, as XML or XLSX, in the layout of `mappings/kiasuo/exchange.toml` (EXCHANGE.md).
//!
//! Three layers, each usable alone:
//! - [`layout`]: which element, sheet and column holds which field (a mapping file);
//! - [`xml`] and [`xlsx`]: bytes ⇄ [`RawDoc`] (rows of named text cells, each with where
//!   it was read), with the problems of the file's form (encoding, well-formedness, root
//!   element, unknown elements or columns);
//! - [`typed`]: [`RawDoc`] ⇄ [`ExchangeFile`] (pupils, movements, final marks with parsed
//!   dates and codes), with every problem of content collected, not only the first.
//!
//! The store, canonical records and the import/export workflow are ejgate's (`src/kiasuo`):
//! this module knows files, not the store.

use std::fmt;
use std::path::Path;

pub mod layout;
pub mod typed;
pub mod xlsx;
pub mod xml;

pub use layout::Layout;
pub use typed::{
    AcademicYear, ClassRow, ContingentFile, ContingentPupil, ExchangeFile, FinalMarkRow, FinalMarksFile, Known, Marks,
    MovementFile, MovementKind, MovementRow, PeriodRef, PupilInfo,
};

/// Вид файла обмена
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExchangeKind {
    /// Контингент: classes and the pupils in them
    Contingent,
    /// Движение: arrivals, departures, transfers between classes
    Movement,
    /// Итоговые отметки: quarter, half-year and year marks
    FinalMarks,
}

impl ExchangeKind {
    pub const ALL: [ExchangeKind; 3] = [ExchangeKind::Contingent, ExchangeKind::Movement, ExchangeKind::FinalMarks];

    /// The name on the command line (`--what`).
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Contingent => "contingent",
            ExchangeKind::Movement => "movement",
            ExchangeKind::FinalMarks => "final-marks",
        }
    }

    pub fn parse(s: &str) -> Option<ExchangeKind> {
        ExchangeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Формат файла
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xml,
    Xlsx,
}

impl Format {
    /// The format a file name's extension names (`.xml`, `.xlsx`), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "xml" => Some(Format::Xml),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }

    /// The format of a file's content: an XLSX is a ZIP archive (`PK`), anything else is
    /// read as XML.
    pub fn sniff(bytes: &[u8]) -> Format {
        if bytes.starts_with(b"PK\x03\x04") {
            Format::Xlsx
        } else {
            Format::Xml
        }
    }
}

/// Where in a file a problem is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// The file as a whole (unreadable, empty).
    File,
    /// An XML element, with the line it starts on (1-based).
    Xml { line: usize, element: String },
    /// An XLSX cell or row: sheet, row (1-based, as Excel shows it), and the column (letter
    /// and header) when the problem is one cell's.
    Xlsx { sheet: String, row: u32, column: Option<String> },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File => f.write_str("file"),
            Location::Xml { line, element } => write!(f, "line {line}, <{element}>"),
            Location::Xlsx { sheet, row, column: Some(c) } => write!(f, "sheet «{sheet}», row {row}, column {c}"),
            Location::Xlsx { sheet, row, column: None } => write!(f, "sheet «{sheet}», row {row}"),
        }
    }
}

/// What kind of problem a file has: one code per rule, so that tests and people can tell
/// them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProblemCode {
    /// The bytes are not in the encoding the file declares (or UTF-8 when it declares none).
    Encoding,
    /// Not well-formed XML, or not a readable XLSX workbook.
    Malformed,
    /// The root element (XML) or the kind on the info sheet (XLSX) is not one of the layout's.
    WrongRoot,
    /// An element or column the layout does not know.
    UnknownField,
    /// A sheet or element section the layout requires is missing, or a field is given twice.
    Structure,
    /// A required field is missing or empty.
    MissingField,
    /// A date that is not ДД.ММ.ГГГГ or not a real day.
    BadDate,
    /// The academic year is missing or not «ГГГГ/ГГГГ».
    BadYear,
    /// A date (enrolment, movement, period) outside the file's academic year.
    OutsideYear,
    /// A value outside its code list (sex, movement kind).
    BadValue,
    /// A class name the file's class list and the store do not know.
    UnknownClass,
    /// A class listed twice (same id or same name).
    DuplicateClass,
    /// A pupil listed twice in a contingent.
    DuplicateStudent,
    /// A birth date after the enrolment date, or a date order that cannot be.
    Inconsistent,
    /// A final mark for a pupil neither the store nor the file knows.
    UnknownPupil,
    /// A pupil's name that differs from the store's for the same id.
    NameMismatch,
    /// A mark value the code table (`mappings/kiasuo/marks.toml`) does not know.
    UnknownMark,
    /// The same pupil, subject and period twice.
    DuplicateMark,
    /// The same period id with different names or dates, or a period without its dates.
    PeriodConflict,
    /// The file passes a limit of what ejgate reads (size, unpacked size, cells of a sheet,
    /// shared strings: `ejgate_sdk::limits`); nothing of it was parsed.
    TooLarge,
}

/// One problem of an exchange file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub location: Location,
    pub code: ProblemCode,
    pub message: String,
}

impl Problem {
    pub fn new(location: Location, code: ProblemCode, message: impl Into<String>) -> Self {
        Problem { location, code, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Sorts problems by where they are (line, sheet and row), keeping the order of those at
/// the same place.
pub fn sort_problems(problems: &mut [Problem]) {
    problems.sort_by(|a, b| a.location.cmp(&b.location));
}

/// A raw cell: one field's text and where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct RawCell {
    pub field: String,
    pub value: String,
    pub location: Location,
}

/// A raw row: one XML row element or one sheet row.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRow {
    pub location: Location,
    pub cells: Vec<RawCell>,
}

impl RawRow {
    /// The cell of a field, if the row has it (and it is not blank).
    pub fn cell(&self, field: &str) -> Option<&RawCell> {
        self.cells.iter().find(|c| c.field == field && !c.value.trim().is_empty())
    }
}

/// A section: the rows of one XML container element or one sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSection {
    /// The layout's section key (`classes`, `pupils`, `movements`, `marks`).
    pub key: String,
    pub rows: Vec<RawRow>,
}

/// A file as rows of named text cells, before the content is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDoc {
    pub kind: ExchangeKind,
    /// The academic year as written, and where.
    pub year: Option<(String, Location)>,
    /// Where the year belongs when it is missing (the root element, the info sheet).
    pub year_location: Location,
    pub sections: Vec<RawSection>,
}

impl RawDoc {
    pub fn section(&self, key: &str) -> &[RawRow] {
        self.sections.iter().find(|s| s.key == key).map(|s| s.rows.as_slice()).unwrap_or(&[])
    }
}

/// Reads a file's form (encoding, well-formedness, layout). `None` when the form is too
/// broken to read rows at all; the problems found so far are returned either way.
pub fn read_raw(bytes: &[u8], format: Format, layout: &Layout) -> (Option<RawDoc>, Vec<Problem>) {
    // Bounded memory whatever the file holds: the limits are checked before a parser
    // allocates by what the file says.
    let limit = match format {
        Format::Xml => ejgate_sdk::limits::check_file_size(
            bytes.len() as u64,
            ejgate_sdk::limits::MAX_TEXT_FILE_BYTES,
            "an XML file",
        ),
        Format::Xlsx => ejgate_sdk::limits::check_xlsx(bytes),
    };
    if let Err(e) = limit {
        return (None, vec![Problem::new(Location::File, ProblemCode::TooLarge, e)]);
    }
    match format {
        Format::Xml => xml::read(bytes, layout),
        Format::Xlsx => xlsx::read(bytes, layout),
    }
}

/// Writes a file. The same file value always gives the same bytes.
pub fn write(file: &ExchangeFile, layout: &Layout, format: Format) -> Result<Vec<u8>, String> {
    let raw = typed::to_raw(file, layout);
    match format {
        Format::Xml => Ok(xml::write(&raw, layout)),
        Format::Xlsx => xlsx::write(&raw, layout),
    }
}

/// Reads and checks a whole file: every problem of form and content, sorted by place.
/// A file with any problem gives no value.
pub fn parse(
    bytes: &[u8],
    format: Format,
    layout: &Layout,
    known: &Known,
    marks: &Marks,
) -> Result<ExchangeFile, Vec<Problem>> {
    let (raw, mut problems) = read_raw(bytes, format, layout);
    let Some(raw) = raw else {
        sort_problems(&mut problems);
        return Err(problems);
    };
    match typed::from_raw(&raw, layout, known, marks) {
        Ok(file) if problems.is_empty() => Ok(file),
        Ok(_) => {
            sort_problems(&mut problems);
            Err(problems)
        }
        Err(more) => {
            problems.extend(more);
            sort_problems(&mut problems);
            Err(problems)
        }
    }
}
