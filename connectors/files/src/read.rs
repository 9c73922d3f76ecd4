//! Readers: an export file → the raw cells of the fields each mapping block names, with
//! where every cell was (file, sheet, row or line, column). No value is interpreted here;
//! `build.rs` turns cells into canonical values and reports what is wrong with them.
//!
//! XLSX through calamine; CSV through `csv` after decoding the bytes (UTF-8, Windows-1251,
//! a BOM decides when there is one); XML through quick-xml's pull parser (no tree is built).

use std::io::Cursor;
use std::path::Path;

use calamine::{Data, Reader, Xlsx};
use chrono::NaiveDateTime;

use crate::mapping::{Block, Encoding, Source};

/// A cell's value as the file holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Empty,
    Text(String),
    Int(i64),
    Number(f64),
    Bool(bool),
    DateTime(NaiveDateTime),
}

/// One cell of a mapped field, with its column for messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub value: Value,
    /// «Дата» (column C), <Дата>, @id, or «constant»
    pub column: String,
}

/// One row (CSV, XLSX) or record element (XML).
#[derive(Debug, Clone)]
pub struct RawRow {
    /// The row number in the sheet (XLSX) or the line in the file (CSV, XML), 1-based.
    pub line: usize,
    /// One cell per field of the block, in the block's field order.
    pub cells: Vec<Cell>,
}

/// The rows one block read from one file.
#[derive(Debug, Clone)]
pub struct BlockRows {
    /// The block's index in `Mapping::blocks`.
    pub block: usize,
    pub sheet: Option<String>,
    pub rows: Vec<RawRow>,
}

/// Something wrong in an export file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file, relative to the export directory.
    pub file: String,
    pub sheet: Option<String>,
    /// The row (XLSX) or line (CSV, XML), when the problem has one.
    pub line: Option<usize>,
    /// `row` for spreadsheets, `line` for text files.
    pub line_word: &'static str,
    pub column: Option<String>,
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(s) = &self.sheet {
            write!(f, ", sheet «{s}»")?;
        }
        if let Some(l) = self.line {
            write!(f, ", {} {l}", self.line_word)?;
        }
        if let Some(c) = &self.column {
            write!(f, ", column {c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Where errors of one file (and sheet) go.
pub(crate) struct Place<'a> {
    pub file: &'a str,
    pub sheet: Option<&'a str>,
    pub line_word: &'static str,
}

impl Place<'_> {
    pub fn error(&self, line: Option<usize>, column: Option<&str>, message: impl Into<String>) -> FileError {
        FileError {
            file: self.file.to_string(),
            sheet: self.sheet.map(str::to_string),
            line,
            line_word: self.line_word,
            column: column.map(str::to_string),
            message: message.into(),
        }
    }
}

/// Reads every block of `blocks` (indices into the mapping, all naming this file) from the
/// file at `path`. Returns the rows and every problem found (not only the first).
pub fn read_file(path: &Path, rel: &str, blocks: &[(usize, &Block)]) -> (Vec<BlockRows>, Vec<FileError>) {
    let place = Place { file: rel, sheet: None, line_word: "line" };
    let Some(first) = blocks.first() else { return (Vec::new(), Vec::new()) };
    // Bounded memory whatever the file holds: its size, and for a workbook what it unpacks
    // to, are checked before a parser allocates by what the file says.
    use ejgate_sdk::limits;
    let (max, what) = match first.1.format {
        crate::mapping::Format::Xlsx => (limits::MAX_XLSX_FILE_BYTES, "an XLSX workbook"),
        crate::mapping::Format::Csv => (limits::MAX_TEXT_FILE_BYTES, "a CSV file"),
        crate::mapping::Format::Xml => (limits::MAX_TEXT_FILE_BYTES, "an XML file"),
    };
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) => return (Vec::new(), vec![place.error(None, None, format!("cannot read the file: {e}"))]),
    };
    if let Err(e) = limits::check_file_size(len, max, what) {
        return (Vec::new(), vec![place.error(None, None, e)]);
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return (Vec::new(), vec![place.error(None, None, format!("cannot read the file: {e}"))]),
    };
    if first.1.format == crate::mapping::Format::Xlsx {
        if let Err(e) = limits::check_xlsx(&bytes) {
            return (Vec::new(), vec![place.error(None, None, e)]);
        }
    }
    match first.1.format {
        crate::mapping::Format::Xlsx => read_xlsx(bytes, rel, blocks),
        crate::mapping::Format::Csv => {
            let mut out = Vec::new();
            let mut errors = Vec::new();
            for (i, b) in blocks {
                match read_csv(&bytes, rel, *i, b) {
                    Ok(r) => out.push(r),
                    Err(mut e) => errors.append(&mut e),
                }
            }
            (out, errors)
        }
        crate::mapping::Format::Xml => read_xml(&bytes, rel, blocks),
    }
}

/// Turns the bytes of a text file into text: a BOM decides; else `encoding`; `Auto`
/// takes valid UTF-8 as UTF-8 and anything else as Windows-1251 (the other encoding Russian
/// school systems export in). `declared` is an XML declaration's encoding.
pub fn decode(bytes: &[u8], encoding: Encoding, declared: Option<&str>) -> Result<String, String> {
    if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, bad) = enc.decode_without_bom_handling(&bytes[bom..]);
        if bad {
            return Err(format!("the file starts with a {} BOM but is not valid {}", enc.name(), enc.name()));
        }
        return Ok(text.into_owned());
    }
    let declared = declared.and_then(|d| encoding_rs::Encoding::for_label(d.as_bytes()));
    let utf8 = |bytes: &[u8]| {
        std::str::from_utf8(bytes).map(str::to_string).map_err(|e| {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
            format!(
                "line {line}: the file is not valid UTF-8 (byte {at}); if it was saved in Windows-1251, set encoding = \"windows-1251\" (or \"auto\") in the mapping"
            )
        })
    };
    match (encoding, declared) {
        (Encoding::Utf8, _) => utf8(bytes),
        (Encoding::Windows1251, _) => Ok(encoding_rs::WINDOWS_1251.decode_without_bom_handling(bytes).0.into_owned()),
        (Encoding::Auto, Some(enc)) if enc != encoding_rs::UTF_8 => {
            Ok(enc.decode_without_bom_handling(bytes).0.into_owned())
        }
        (Encoding::Auto, _) => match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Ok(encoding_rs::WINDOWS_1251.decode_without_bom_handling(bytes).0.into_owned()),
        },
    }
}

fn norm_header(s: &str) -> String {
    s.trim().trim_start_matches('\u{feff}').to_lowercase().split_whitespace().collect::<Vec<_>>().join(" ")
}

fn text_value(s: &str) -> Value {
    let t = s.trim();
    if t.is_empty() {
        Value::Empty
    } else {
        Value::Text(t.to_string())
    }
}

/// A found column (index, description for messages) or a constant's value.
type ColumnOrConst<'b> = Result<(usize, String), &'b str>;

/// Finds the header of every column field; constants become fixed cells.
fn columns<'b>(
    block: &'b Block,
    headers: &[String],
    describe: impl Fn(usize) -> String,
) -> Result<Vec<ColumnOrConst<'b>>, Vec<String>> {
    let normalized: Vec<String> = headers.iter().map(|h| norm_header(h)).collect();
    let mut missing = Vec::new();
    let cols = block
        .fields
        .iter()
        .map(|(_, src)| match src {
            Source::Column(name) => match normalized.iter().position(|h| *h == norm_header(name)) {
                Some(i) => Ok((i, format!("«{name}» ({})", describe(i)))),
                None => {
                    missing.push(name.clone());
                    Err(name.as_str())
                }
            },
            Source::Const(v) => Err(v.as_str()),
        })
        .collect();
    if missing.is_empty() {
        Ok(cols)
    } else {
        Err(missing)
    }
}

fn missing_message(missing: &[String], headers: &[String]) -> String {
    let found: Vec<&str> = headers.iter().map(|h| h.trim()).filter(|h| !h.is_empty()).collect();
    format!(
        "no column {} in the header (it has: {})",
        missing.iter().map(|m| format!("«{m}»")).collect::<Vec<_>>().join(", "),
        found.join(", ")
    )
}

fn read_csv(bytes: &[u8], rel: &str, index: usize, block: &Block) -> Result<BlockRows, Vec<FileError>> {
    let place = Place { file: rel, sheet: None, line_word: "line" };
    let text = decode(bytes, block.encoding, None).map_err(|e| vec![place.error(None, None, e)])?;
    // The csv reader takes an unclosed quote's field to the end of the file without a word,
    // and every field after it as missing: it had been reported as «the cell is empty».
    if let Some(line) = unclosed_quote(&text, block.delimiter) {
        return Err(vec![place.error(
            Some(line),
            None,
            "a quote («\"») opens a field here and is never closed: the rest of the file would read as that one \
             cell; close the quote (a quote inside a quoted field is written twice: «\"\"»)",
        )]);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(block.delimiter)
        .from_reader(text.as_bytes());
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut cols = None;
    let mut header_fields = 0;
    let mut lines = LineCounter::new(text.as_bytes());
    for (n, record) in reader.records().enumerate() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line() as usize);
                errors.push(place.error(line, None, format!("not readable as CSV: {e}")));
                continue;
            }
        };
        let line = match record.position() {
            Some(p) => lines.at(p.byte() as usize),
            None => n + 1,
        };
        if (n as u32) + 1 < block.header_row {
            continue;
        }
        let Some(cols) = &cols else {
            let headers: Vec<String> = record.iter().map(str::to_string).collect();
            match columns(block, &headers, |i| format!("column {}", i + 1)) {
                Ok(c) => {
                    cols = Some(c);
                    header_fields = headers.len();
                }
                Err(missing) => {
                    errors.push(place.error(Some(line), None, missing_message(&missing, &headers)));
                    return Err(errors);
                }
            }
            continue;
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        // More fields than the header has: a value holding the delimiter without quotes
        // («Иванова; Мария»), and every field after it one column off. Refused, naming the
        // line: read as it is, the row would put its values under the wrong columns. Empty
        // fields past the header (a trailing delimiter, as spreadsheets write) are harmless.
        if let Some(extra) = record.iter().skip(header_fields).find(|f| !f.trim().is_empty()) {
            errors.push(place.error(
                Some(line),
                None,
                format!(
                    "the line has {} fields, the header {header_fields} (the first extra one: «{}»): a value holding \
                     the delimiter «{}» must be in quotes",
                    record.len(),
                    excerpt(extra),
                    block.delimiter as char
                ),
            ));
            continue;
        }
        let cells = cols
            .iter()
            .map(|c| match c {
                Ok((i, desc)) => Cell { value: text_value(record.get(*i).unwrap_or("")), column: desc.clone() },
                Err(v) => Cell { value: text_value(v), column: "(constant)".into() },
            })
            .collect();
        rows.push(RawRow { line, cells });
    }
    if cols.is_none() {
        errors.push(place.error(None, None, format!("no header row (row {} of the file)", block.header_row)));
    }
    if errors.is_empty() {
        Ok(BlockRows { block: index, sheet: None, rows })
    } else {
        Err(errors)
    }
}

/// The line of a quote that opens a CSV field and is never closed, if any: a quote opens a
/// quoted field only as its first character, `""` inside it is a quote, and a quote ends it
/// (the csv reader's rules).
fn unclosed_quote(text: &str, delimiter: u8) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut line = 1;
    let mut field_start = true;
    let mut open: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match open {
            Some(_) if b == b'"' && bytes.get(i + 1) == Some(&b'"') => i += 1,
            Some(_) if b == b'"' => {
                open = None;
                field_start = false;
            }
            Some(_) => {}
            None if b == b'"' && field_start => open = Some(line),
            None => field_start = b == delimiter || b == b'\n' || b == b'\r',
        }
        if b == b'\n' {
            line += 1;
        }
        i += 1;
    }
    open
}

/// The line a CSV record starts on, from its byte offset. The csv reader's own line
/// numbers run one behind after every `\r\n` (it ends a record at `\r` and counts the `\n`
/// with the next one): a Windows file's errors named the line before.
struct LineCounter<'a> {
    bytes: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter { bytes, at: 0, line: 1 }
    }

    /// The line of the record at byte `offset` (offsets only grow).
    fn at(&mut self, offset: usize) -> usize {
        // A record's offset may point at the line break before it.
        let mut start = offset.min(self.bytes.len());
        while start < self.bytes.len() && matches!(self.bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        if start >= self.at {
            self.line += self.bytes[self.at..start].iter().filter(|b| **b == b'\n').count();
            self.at = start;
        }
        self.line
    }
}

/// A cell's text cut for a message.
fn excerpt(s: &str) -> String {
    let t = s.trim();
    match t.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &t[..at]),
        None => t.to_string(),
    }
}

/// `0` → `A`, `26` → `AA`.
pub fn column_letter(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

fn read_xlsx(bytes: Vec<u8>, rel: &str, blocks: &[(usize, &Block)]) -> (Vec<BlockRows>, Vec<FileError>) {
    let place = Place { file: rel, sheet: None, line_word: "row" };
    let mut workbook: Xlsx<_> = match calamine::open_workbook_from_rs(Cursor::new(bytes)) {
        Ok(w) => w,
        Err(e) => return (Vec::new(), vec![place.error(None, None, format!("not readable as an XLSX workbook: {e}"))]),
    };
    let sheets = workbook.sheet_names();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (index, block) in blocks {
        let sheet = match &block.sheet {
            Some(s) => match sheets.iter().find(|n| n.trim().eq_ignore_ascii_case(s.trim()) || n.trim() == s.trim()) {
                Some(n) => n.clone(),
                None => {
                    errors.push(place.error(
                        None,
                        None,
                        format!("no sheet «{s}» (the workbook has: {})", sheets.join(", ")),
                    ));
                    continue;
                }
            },
            None => match sheets.first() {
                Some(n) => n.clone(),
                None => {
                    errors.push(place.error(None, None, "the workbook has no sheet"));
                    continue;
                }
            },
        };
        let place = Place { file: rel, sheet: Some(&sheet), line_word: "row" };
        let range = match workbook.worksheet_range(&sheet) {
            Ok(r) => r,
            Err(e) => {
                errors.push(place.error(None, None, format!("cannot read the sheet: {e}")));
                continue;
            }
        };
        let (row0, col0) = range.start().unwrap_or((0, 0));
        let header_index = (block.header_row as usize).saturating_sub(1).saturating_sub(row0 as usize);
        let all: Vec<&[Data]> = range.rows().collect();
        let Some(header) = all.get(header_index) else {
            errors.push(place.error(Some(block.header_row as usize), None, "the sheet has no header row"));
            continue;
        };
        let headers: Vec<String> = header.iter().map(|d| d.to_string()).collect();
        let cols = match columns(block, &headers, |i| column_letter(col0 as usize + i)) {
            Ok(c) => c,
            Err(missing) => {
                errors.push(place.error(Some(block.header_row as usize), None, missing_message(&missing, &headers)));
                continue;
            }
        };
        let mut rows = Vec::new();
        for (i, row) in all.iter().enumerate().skip(header_index + 1) {
            let line = row0 as usize + i + 1;
            if row.iter().all(|d| matches!(d, Data::Empty) || matches!(d, Data::String(s) if s.trim().is_empty())) {
                continue;
            }
            let mut cells = Vec::with_capacity(cols.len());
            for c in &cols {
                let cell = match c {
                    Ok((j, desc)) => {
                        let value = match row.get(*j).unwrap_or(&Data::Empty) {
                            Data::Empty => Value::Empty,
                            Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => text_value(s),
                            Data::Int(n) => Value::Int(*n),
                            Data::Float(x) => Value::Number(*x),
                            Data::Bool(b) => Value::Bool(*b),
                            Data::DateTime(d) => match d.as_datetime() {
                                Some(dt) => Value::DateTime(dt),
                                None => {
                                    errors.push(place.error(Some(line), Some(desc), "the date cell is out of range"));
                                    Value::Empty
                                }
                            },
                            Data::Error(e) => {
                                errors.push(place.error(
                                    Some(line),
                                    Some(desc),
                                    format!("the cell holds the spreadsheet error {e}"),
                                ));
                                Value::Empty
                            }
                        };
                        Cell { value, column: desc.clone() }
                    }
                    Err(v) => Cell { value: text_value(v), column: "(constant)".into() },
                };
                cells.push(cell);
            }
            rows.push(RawRow { line, cells });
        }
        out.push(BlockRows { block: *index, sheet: Some(sheet.clone()), rows });
    }
    (out, errors)
}

/// The encoding an XML declaration names, if any (read before decoding: it is ASCII).
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).to_string();
    let decl = head.strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let at = decl.find("encoding")?;
    let rest = decl[at + 8..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next()?;
    // The quote may be any character (`encoding=«utf-8»`): skip it whole.
    let rest = &rest[quote.len_utf8()..];
    Some(rest[..rest.find(quote)?].to_string())
}

struct Open {
    block: usize,
    depth: usize,
    line: usize,
    cells: Vec<Option<Cell>>,
    child: Option<(String, String)>,
}

fn read_xml(bytes: &[u8], rel: &str, blocks: &[(usize, &Block)]) -> (Vec<BlockRows>, Vec<FileError>) {
    use quick_xml::events::Event;

    let place = Place { file: rel, sheet: None, line_word: "line" };
    let encoding = blocks.first().map(|b| b.1.encoding).unwrap_or_default();
    let text = match decode(bytes, encoding, declared_encoding(bytes).as_deref()) {
        Ok(t) => t,
        Err(e) => return (Vec::new(), vec![place.error(None, None, e)]),
    };
    let mut out: Vec<BlockRows> =
        blocks.iter().map(|(i, _)| BlockRows { block: *i, sheet: None, rows: Vec::new() }).collect();
    let mut errors = Vec::new();
    let mut reader = quick_xml::Reader::from_str(&text);
    // Line counting: newlines up to `counted`.
    let (mut counted, mut line) = (0usize, 1usize);
    let mut line_at = |pos: usize| {
        let pos = pos.min(text.len());
        if pos > counted {
            line += text.as_bytes()[counted..pos].iter().filter(|b| **b == b'\n').count();
            counted = pos;
        }
        line
    };
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut open: Option<Open> = None;

    let matches = |stack: &[(String, usize)], path: &[String]| {
        stack.len() == path.len() && stack.iter().zip(path).all(|((a, _), b)| a == b)
    };
    let start_record = |e: &quick_xml::events::BytesStart, stack: &[(String, usize)], line: usize| -> Option<Open> {
        let (k, block) = blocks.iter().enumerate().find(|(_, (_, b))| matches(stack, &b.element))?;
        let mut cells: Vec<Option<Cell>> = vec![None; block.1.fields.len()];
        for attr in e.attributes().flatten() {
            let name = format!("@{}", attr.key.local_name().as_ref());
            let value =
                attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).map(|v| v.to_string()).unwrap_or_default();
            for (j, (_, src)) in block.1.fields.iter().enumerate() {
                if matches!(src, Source::Column(c) if *c == name) {
                    cells[j] = Some(Cell { value: text_value(&value), column: name.clone() });
                }
            }
        }
        Some(Open { block: k, depth: stack.len(), line, cells, child: None })
    };
    let finish = |o: Open, out: &mut Vec<BlockRows>| {
        let block = blocks[o.block].1;
        let cells = o
            .cells
            .into_iter()
            .zip(&block.fields)
            .map(|(c, (_, src))| match (c, src) {
                (Some(c), _) => c,
                (None, Source::Const(v)) => Cell { value: text_value(v), column: "(constant)".into() },
                (None, Source::Column(name)) => Cell {
                    value: Value::Empty,
                    column: if name.starts_with('@') { name.clone() } else { format!("<{name}>") },
                },
            })
            .collect();
        out[o.block].rows.push(RawRow { line: o.line, cells });
    };
    let store_child = |o: &mut Open, name: &str, text: &str| {
        let block = blocks[o.block].1;
        for (j, (_, src)) in block.fields.iter().enumerate() {
            if matches!(src, Source::Column(c) if c == name) {
                o.cells[j] = Some(Cell { value: text_value(text), column: format!("<{name}>") });
            }
        }
    };
    loop {
        let before = reader.buffer_position() as usize;
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                let at = line_at(reader.error_position() as usize);
                errors.push(place.error(Some(at), None, format!("not well-formed XML: {e}")));
                break;
            }
        };
        let here = line_at(before + leading_ws(&text, before));
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                stack.push((name.clone(), here));
                match &mut open {
                    None => open = start_record(&e, &stack, here),
                    Some(o) if stack.len() == o.depth + 1 => o.child = Some((name, String::new())),
                    Some(_) => {}
                }
            }
            Event::Empty(e) => {
                let name = e.local_name().as_ref().to_string();
                match &mut open {
                    None => {
                        stack.push((name, here));
                        if let Some(o) = start_record(&e, &stack, here) {
                            finish(o, &mut out);
                        }
                        stack.pop();
                    }
                    Some(o) if stack.len() == o.depth => store_child(o, &name, ""),
                    Some(_) => {}
                }
            }
            Event::Text(t) => {
                if let Some(Open { child: Some((_, buf)), .. }) = &mut open {
                    buf.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(Open { child: Some((_, buf)), .. }) = &mut open {
                    buf.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(Open { child: Some((_, buf)), .. }) = &mut open {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => buf.push(c),
                        _ => match quick_xml::escape::resolve_predefined_entity(&r) {
                            Some(s) => buf.push_str(s),
                            None => errors.push(place.error(Some(here), None, format!("unknown entity &{};", &*r))),
                        },
                    }
                }
            }
            Event::End(_) => {
                let depth = stack.len();
                stack.pop();
                if let Some(o) = &mut open {
                    if depth == o.depth + 1 {
                        if let Some((name, buf)) = o.child.take() {
                            store_child(o, &name, &buf);
                        }
                    } else if depth == o.depth {
                        let o = open.take().expect("open record");
                        finish(o, &mut out);
                    }
                }
            }
            Event::Eof => {
                if let Some((name, opened)) = stack.last() {
                    errors.push(place.error(
                        Some(line_at(text.len())),
                        None,
                        format!("the file ends inside <{name}> opened on line {opened}: it is cut off (an interrupted export or copy?)"),
                    ));
                }
                break;
            }
            _ => {}
        }
    }
    (out, errors)
}

fn leading_ws(text: &str, from: usize) -> usize {
    text.as_bytes()[from.min(text.len())..].iter().take_while(|b| b.is_ascii_whitespace()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
    }

    #[test]
    fn an_unclosed_quote_is_found_at_its_line() {
        assert_eq!(unclosed_quote("a;b\n1;\"x\n2;y\n", b';'), Some(2));
        assert_eq!(unclosed_quote("a;b\n1;\"x;\"\"y\"\"\n2;y\n", b';'), Some(2), "a doubled quote does not close");
        assert_eq!(unclosed_quote("a;b\n1;\"x\n\"\n2;\"\"\n", b';'), None, "a field over two lines, closed");
        assert_eq!(unclosed_quote("a;b\r\n1;\"x;\"\"q\"\"\";z\r\n", b';'), None);
        assert_eq!(unclosed_quote("a;b\n1;x\"y\n", b';'), None, "a quote inside a field is a character");
        assert_eq!(unclosed_quote("a,b\n1,2\n3,\"4", b','), Some(3));
    }

    #[test]
    fn csv_lines_are_counted_alike_with_crlf_and_lf() {
        let block = crate::mapping::Mapping::default_layout()
            .blocks
            .into_iter()
            .find(|b| b.file == "students.csv")
            .expect("the roster block");
        for eol in ["\n", "\r\n"] {
            let header = "Код;Фамилия;Имя;Отчество;Пол;Дата рождения";
            let text = [header, "1;А;Б;В;м;01.01.2015", "", "2;Г;Д;Е;ж;02.02.2015;лишнее"].join(eol) + eol;
            let errors = read_csv(text.as_bytes(), "students.csv", 0, &block).unwrap_err();
            assert_eq!(errors[0].line, Some(4), "{eol:?}: {errors:?}");
        }
    }

    #[test]
    fn encodings_are_told_apart() {
        let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode("Фамилия;Имя");
        assert_eq!(decode(&cp1251, Encoding::Auto, None).unwrap(), "Фамилия;Имя");
        assert_eq!(decode(&cp1251, Encoding::Windows1251, None).unwrap(), "Фамилия;Имя");
        let e = decode(&cp1251, Encoding::Utf8, None).unwrap_err();
        assert!(e.contains("line 1") && e.contains("windows-1251"), "{e}");
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice("Фамилия".as_bytes());
        assert_eq!(decode(&bom, Encoding::Windows1251, None).unwrap(), "Фамилия", "a BOM wins over the setting");
        assert_eq!(
            declared_encoding(b"<?xml version=\"1.0\" encoding=\"windows-1251\"?><a/>").as_deref(),
            Some("windows-1251")
        );
    }
}
