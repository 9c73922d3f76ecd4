//! Bounded memory on any input file: the limits every reader of a file (the files
//! connector's XLSX, CSV and XML; the КИАСУО exchange files) checks *before* it hands the
//! file to a parser that allocates by what the file says.
//!
//! What they stop (each measured before these checks, 2026-12):
//! - an 11 KB XLSX with one cell at `XFD1048576`: calamine builds a sheet as one grid over
//!   the box from the first to the last cell, 16,384 × 1,048,576 cells of 32 bytes (512 GiB);
//! - a 1 MB XLSX whose shared string is 1 GiB of text, and 2 MB of compressed whitespace
//!   that unpacks to 5 GB: the parts are unpacked and parsed whole (peaks of 3.7 and 5 GB);
//! - an `sst uniqueCount` of billions: calamine reserves that many strings up front.
//!
//! The limits, all far above what a school's export holds (a large school's whole year of
//! marks is about 300,000 rows):
//! - a file on disk: [`MAX_TEXT_FILE_BYTES`] for CSV and XML (read and decoded whole),
//!   [`MAX_XLSX_FILE_BYTES`] for an XLSX archive;
//! - an XLSX part unpacked: [`MAX_XLSX_PART_BYTES`] each, [`MAX_XLSX_TOTAL_BYTES`] all
//!   together, counted while unpacking (the sizes a ZIP declares are not trusted);
//! - a sheet: [`MAX_SHEET_CELLS`] cells in the box from its first to its last cell with a
//!   value (the grid the reader allocates);
//! - shared strings: [`MAX_SHARED_STRINGS`] of them, each at most [`MAX_CELL_CHARS`]
//!   characters (Excel's own limit for a cell).
//!
//! With them, reading any XLSX that passes stays under about 1 GiB of memory (by
//! construction, not measured on a file at every limit at once: the grid at most 4 M cells
//! × 32 bytes = 128 MiB, calamine's copy of it as values another 128 MiB, the shared strings
//! and a sheet's largest text at most their unpacked size, 128 MiB each). A refused file
//! costs the check only: the whole `ejgate kiasuo import` process peaked at 30–39 MiB on the
//! three hostile files of `tests/hostile_files.rs` (GNU time, 2026-12-04).

use std::io::{BufReader, Read};

/// CSV and XML files are read and decoded whole: at most this many bytes on disk.
pub const MAX_TEXT_FILE_BYTES: u64 = 128 << 20;
/// An XLSX archive: at most this many bytes on disk.
pub const MAX_XLSX_FILE_BYTES: u64 = 64 << 20;
/// One part of an XLSX archive, unpacked.
pub const MAX_XLSX_PART_BYTES: u64 = 128 << 20;
/// All parts of an XLSX archive, unpacked.
pub const MAX_XLSX_TOTAL_BYTES: u64 = 256 << 20;
/// Cells of a sheet's box (rows × columns from its first to its last cell with a value).
pub const MAX_SHEET_CELLS: u64 = 4_000_000;
/// Shared strings of a workbook (declared or found).
pub const MAX_SHARED_STRINGS: u64 = 2_000_000;
/// Characters of one cell's text: Excel's own limit.
pub const MAX_CELL_CHARS: usize = 32_767;

/// Characters of an id read from a file (a source's ids are numbers, GUIDs or codes of a
/// few dozen characters; a 5,000-digit «id» is a broken cell).
pub const MAX_ID_CHARS: usize = 64;
/// Characters of a person's name part, a class or subject name read from a file.
pub const MAX_NAME_CHARS: usize = 200;

/// What to do about an id that a spreadsheet turned into a number.
const ID_AS_TEXT: &str = "format the column as text (Формат ячеек → Текстовый), enter or paste the ids again and \
     save; a spreadsheet keeps 15 digits of a number";

/// Checks an id read from a file as text: not longer than [`MAX_ID_CHARS`], and not a
/// number in exponent form (`1.75E+18`: what a spreadsheet shows, and writes into CSV, for
/// a long id it has rounded).
pub fn check_id_text(id: &str) -> Result<(), String> {
    let id = id.trim();
    if id.chars().count() > MAX_ID_CHARS {
        return Err(format!(
            "the id «{}…» is {} characters long, more than the {MAX_ID_CHARS} an id may have",
            id.chars().take(20).collect::<String>(),
            id.chars().count()
        ));
    }
    if is_exponent_number(id) {
        return Err(format!(
            "the id «{id}» is a number in exponent form: the spreadsheet has rounded it; {ID_AS_TEXT}"
        ));
    }
    Ok(())
}

/// Checks an id a spreadsheet stored as a number: it must be an exact integer a spreadsheet
/// can hold (at most 2^53, no fraction). Returns the id's text.
pub fn id_from_number(x: f64) -> Result<String, String> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if x.is_finite() && x.fract() == 0.0 && x.abs() <= EXACT {
        return Ok(format!("{}", x as i64));
    }
    Err(format!("the id {x:e} is a number that cannot be exact (more than 2^53 or a fraction); {ID_AS_TEXT}"))
}

/// Checks a name part or a name (of a class, a subject): not longer than [`MAX_NAME_CHARS`].
pub fn check_name_text(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(format!(
            "the name «{}…» is {n} characters long, more than the {MAX_NAME_CHARS} a name may have",
            name.chars().take(20).collect::<String>()
        ));
    }
    Ok(())
}

/// `1.75E+18`, `2e5`, `-3.1E-2`: a decimal number with an exponent.
fn is_exponent_number(s: &str) -> bool {
    let Some((mantissa, exponent)) = s.split_once(['e', 'E']) else { return false };
    let mantissa = mantissa.strip_prefix(['+', '-']).unwrap_or(mantissa);
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    let (whole, fraction) = mantissa.split_once(['.', ',']).unwrap_or((mantissa, ""));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !exponent.is_empty()
        && exponent.bytes().all(|b| b.is_ascii_digit())
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// Refuses a file larger than `max` bytes before it is read. `what` names the kind of file.
pub fn check_file_size(len: u64, max: u64, what: &str) -> Result<(), String> {
    if len > max {
        return Err(format!(
            "the file is {:.1} MiB, more than the {} ejgate reads of {what}; split the export (one class \
             or one period a file) or check that it is the right file",
            len as f64 / (1 << 20) as f64,
            mib(max)
        ));
    }
    Ok(())
}

/// Counts the bytes read through it and fails past a limit: a part's unpacked size is
/// known only by unpacking it, and a parser reading from this never holds more than the
/// limit.
struct Counted<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other(TooLarge));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct TooLarge;
impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("past the limit")
    }
}
impl std::error::Error for TooLarge {}

/// Checks an XLSX archive against the limits above without building anything from it:
/// every part is unpacked as a stream (counted), every sheet's cells are scanned for the
/// box they span, and the shared strings are counted and measured. The error says which
/// limit, where, and what to do.
pub fn check_xlsx(bytes: &[u8]) -> Result<(), String> {
    check_file_size(bytes.len() as u64, MAX_XLSX_FILE_BYTES, "an XLSX workbook")?;
    let mut zip = match zip::ZipArchive::new(std::io::Cursor::new(bytes)) {
        Ok(z) => z,
        // Not a ZIP: the reader says so in its own words.
        Err(_) => return Ok(()),
    };
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = match zip.by_index(i) {
            Ok(e) => e,
            Err(_) => continue,
        };
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_else(|_| format!("part {i}"));
        if entry.size() > MAX_XLSX_PART_BYTES {
            return Err(part_too_large(&name, entry.size()));
        }
        let limit = MAX_XLSX_PART_BYTES.min(MAX_XLSX_TOTAL_BYTES - total);
        let mut counted = Counted { inner: entry, read: 0, limit };
        let lower = name.to_ascii_lowercase();
        let scanned = if lower.starts_with("xl/worksheets/") && lower.ends_with(".xml") {
            scan_sheet(&mut counted, &name)
        } else if lower.ends_with("sharedstrings.xml") {
            scan_shared_strings(&mut counted)
        } else {
            std::io::copy(&mut counted, &mut std::io::sink()).map(|_| ()).map_err(|e| e.to_string())
        };
        let read = counted.read;
        if read > limit {
            return Err(if read > MAX_XLSX_PART_BYTES {
                part_too_large(&name, read)
            } else {
                format!(
                    "the workbook unpacks to more than {} (at part {name}); a school's export is far \
                     smaller — is it the right file?",
                    mib(MAX_XLSX_TOTAL_BYTES)
                )
            });
        }
        // A damaged part is the reader's to report; only the limits are checked here.
        if let Err(e) = scanned {
            if let Some(limit) = e.strip_prefix("limit: ") {
                return Err(limit.to_string());
            }
        }
        total += read;
    }
    Ok(())
}

fn part_too_large(name: &str, size: u64) -> String {
    format!(
        "the part {name} of the workbook unpacks to more than {} ({} MiB or more); a school's export \
         is far smaller — is it the right file? (a sheet of white space or one huge text)",
        mib(MAX_XLSX_PART_BYTES),
        size >> 20
    )
}

/// `XFD1048576` → (row 1048575, column 16383), 0-based.
fn cell_position(r: &[u8]) -> Option<(u64, u64)> {
    let letters = r.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    if letters == 0 || letters > 3 {
        return None;
    }
    let mut col = 0u64;
    for b in &r[..letters] {
        col = col * 26 + u64::from(b.to_ascii_uppercase() - b'A') + 1;
    }
    let row: u64 = std::str::from_utf8(&r[letters..]).ok()?.parse().ok()?;
    Some((row.checked_sub(1)?, col - 1))
}

/// The box of a sheet's cells with a value, as calamine places them (`r`, or the next
/// column of the row).
fn scan_sheet(part: &mut impl Read, name: &str) -> Result<(), String> {
    use quick_xml::events::Event;
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(part));
    let mut buf = Vec::new();
    let (mut row, mut col) = (0u64, 0u64);
    let mut current: Option<(u64, u64)> = None;
    let mut valued = false;
    let (mut min_r, mut max_r, mut min_c, mut max_c) = (u64::MAX, 0u64, u64::MAX, 0u64);
    loop {
        buf.clear();
        let event = xml.read_event_into(&mut buf).map_err(|e| e.to_string())?;
        match event {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "row" => {
                if let Ok(Some(r)) = e.try_get_attribute("r") {
                    if let Ok(n) = r.value.trim().parse::<u64>() {
                        row = n.saturating_sub(1);
                    }
                }
                col = 0;
            }
            Event::End(e) if e.local_name().as_ref() == "row" => {
                row += 1;
                col = 0;
            }
            Event::Start(e) if e.local_name().as_ref() == "c" => {
                let pos = match e.try_get_attribute("r") {
                    Ok(Some(r)) => cell_position(r.value.as_bytes()).unwrap_or((row, col)),
                    _ => (row, col),
                };
                col = pos.1;
                current = Some(pos);
                valued = false;
            }
            Event::Empty(e) if e.local_name().as_ref() == "c" => {
                if let Ok(Some(r)) = e.try_get_attribute("r") {
                    if let Some((_, c)) = cell_position(r.value.as_bytes()) {
                        col = c;
                    }
                }
                col += 1;
            }
            Event::Start(e) | Event::Empty(e) if current.is_some() && matches!(e.local_name().as_ref(), "v" | "is") => {
                valued = true;
            }
            Event::End(e) if e.local_name().as_ref() == "c" => {
                if let (Some((r, c)), true) = (current.take(), valued) {
                    min_r = min_r.min(r);
                    max_r = max_r.max(r);
                    min_c = min_c.min(c);
                    max_c = max_c.max(c);
                    let grid = (max_r - min_r + 1).saturating_mul(max_c - min_c + 1);
                    if grid > MAX_SHEET_CELLS {
                        return Err(format!(
                            "limit: the sheet {name} spans {} rows × {} columns ({grid} cells, up to cell {}{}), \
                             more than the {MAX_SHEET_CELLS} cells ejgate reads from one sheet; \
                             is there a stray value far below or right of the table? Delete the rows and \
                             columns after the table and save again",
                            max_r - min_r + 1,
                            max_c - min_c + 1,
                            column_letters(c),
                            r + 1,
                        ));
                    }
                }
                col += 1;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(())
}

/// `0` → `A`, `16383` → `XFD`.
fn column_letters(mut i: u64) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// Counts the shared strings (declared and found) and measures each one.
fn scan_shared_strings(part: &mut impl Read) -> Result<(), String> {
    use quick_xml::events::Event;
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(part));
    let mut buf = Vec::new();
    let mut found = 0u64;
    // Characters of the string being read (a string may be split into runs).
    let mut chars = 0usize;
    loop {
        buf.clear();
        match xml.read_event_into(&mut buf).map_err(|e| e.to_string())? {
            Event::Start(e) if e.local_name().as_ref() == "sst" => {
                for attr in ["count", "uniqueCount"] {
                    if let Ok(Some(v)) = e.try_get_attribute(attr) {
                        let n = v.value.trim().parse::<u64>().ok();
                        if n.is_some_and(|n| n > MAX_SHARED_STRINGS) {
                            return Err(format!(
                                "limit: the workbook declares {} shared strings, more than the {MAX_SHARED_STRINGS} \
                                 ejgate reads; is it the right file?",
                                n.unwrap_or_default()
                            ));
                        }
                    }
                }
            }
            Event::Start(e) if e.local_name().as_ref() == "si" => {
                found += 1;
                chars = 0;
                if found > MAX_SHARED_STRINGS {
                    return Err(format!(
                        "limit: the workbook has more than {MAX_SHARED_STRINGS} shared strings; is it the right file?"
                    ));
                }
            }
            Event::Text(t) => {
                chars += t.chars().count();
                if chars > MAX_CELL_CHARS {
                    return Err(format!(
                        "limit: shared string {found} of the workbook is longer than {MAX_CELL_CHARS} characters \
                         (Excel's own limit for a cell); is it the right file?"
                    ));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_exponent_form_or_too_long_are_refused() {
        for bad in ["1.75E+18", "1,75E+18", "2e5", "-3.1E-2", "1E18"] {
            let e = check_id_text(bad).unwrap_err();
            assert!(e.contains("format the column as text"), "{bad}: {e}");
        }
        for good in ["1750000000000000000", "a1e5-b", "E18", "1.75E", "12-E5", "f47ac10b-58cc-4372-a567-0e02b2c3d479"] {
            assert_eq!(check_id_text(good), Ok(()), "{good}");
        }
        assert!(check_id_text(&"7".repeat(5000)).unwrap_err().contains("5000 characters"));
        assert_eq!(id_from_number(1_234_567.0), Ok("1234567".into()));
        assert_eq!(id_from_number(9_007_199_254_740_992.0), Ok("9007199254740992".into()));
        assert!(id_from_number(1.75e18).unwrap_err().contains("1.75e18"));
        assert!(id_from_number(12.5).is_err());
        assert!(check_name_text(&"Я".repeat(201)).is_err());
        assert!(check_name_text("Мария-Анна").is_ok());
    }

    #[test]
    fn cell_positions_and_letters() {
        assert_eq!(cell_position(b"A1"), Some((0, 0)));
        assert_eq!(cell_position(b"XFD1048576"), Some((1_048_575, 16_383)));
        assert_eq!(cell_position(b"AA10"), Some((9, 26)));
        assert_eq!(cell_position(b"1"), None);
        assert_eq!(column_letters(16_383), "XFD");
        assert_eq!(column_letters(26), "AA");
    }

    #[test]
    fn a_small_file_passes_and_a_large_one_is_refused_by_its_size() {
        assert!(check_file_size(10, MAX_TEXT_FILE_BYTES, "a CSV file").is_ok());
        let e = check_file_size(MAX_TEXT_FILE_BYTES + 1, MAX_TEXT_FILE_BYTES, "a CSV file").unwrap_err();
        assert!(e.contains("128 MiB") && e.contains("a CSV file"), "{e}");
    }
}
