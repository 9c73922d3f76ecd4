//! XLSX exchange files: written with rust_xlsxwriter, read with calamine.
//!
//! Workbook: an info sheet (kind and academic year: label in column A, value in B), then
//! one sheet per section with Russian headers in row 1 and one row per record. Every cell
//! is written as text (ids are 64-bit and would lose digits as Excel numbers; dates are
//! ДД.ММ.ГГГГ). The reader also accepts what a person typing into Excel produces: numbers
//! for ids, real date cells for dates, columns in any order.
//!
//! Determinism: the document's creation time is fixed ([`FIXED_CREATED`]) and the ZIP
//! entries carry rust_xlsxwriter's fixed timestamp, so the same rows give the same bytes.

use std::collections::HashMap;
use std::io::Cursor;

use calamine::{open_workbook_from_rs, Data, Reader, Xlsx};
use chrono::NaiveDate;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, FormatBorder, Workbook};

use super::layout::Layout;
use super::typed::format_date;
use super::{Location, Problem, ProblemCode, RawCell, RawDoc, RawRow, RawSection};

/// The creation time written into every workbook (a real one would make two exports of the
/// same data differ).
pub const FIXED_CREATED: (u16, u8, u8) = (2025, 1, 1);

/// Spreadsheet column letters: 0 → A, 25 → Z, 26 → AA.
pub fn column_letter(mut col: u32) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).expect("ASCII")
}

/// Writes rows as a workbook. The same rows always give the same bytes.
pub fn write(raw: &RawDoc, layout: &Layout) -> Result<Vec<u8>, String> {
    let fail = |e: rust_xlsxwriter::XlsxError| format!("cannot build the XLSX workbook: {e}");
    let kind = layout.kind(raw.kind);
    let mut wb = Workbook::new();
    let created = ExcelDateTime::from_ymd(FIXED_CREATED.0, FIXED_CREATED.1, FIXED_CREATED.2).map_err(fail)?;
    wb.set_properties(
        &DocProperties::new().set_title(&kind.title).set_author("ejgate").set_creation_datetime(&created),
    );
    let bold = Format::new().set_bold().set_border_bottom(FormatBorder::Thin);
    {
        let ws = wb.add_worksheet();
        ws.set_name(&layout.info_sheet).map_err(fail)?;
        ws.write_string_with_format(0, 0, &layout.info_kind_label, &bold).map_err(fail)?;
        ws.write_string(0, 1, &kind.title).map_err(fail)?;
        ws.write_string_with_format(1, 0, &layout.info_year_label, &bold).map_err(fail)?;
        if let Some((year, _)) = &raw.year {
            ws.write_string(1, 1, year).map_err(fail)?;
        }
        ws.set_column_width(0, 16).map_err(fail)?;
        ws.set_column_width(1, 20).map_err(fail)?;
    }
    for section in &kind.sections {
        let ws = wb.add_worksheet();
        ws.set_name(&section.sheet).map_err(fail)?;
        for (c, col) in section.columns.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, &col.header, &bold).map_err(fail)?;
            ws.set_column_width(c as u16, col.width.unwrap_or(16.0)).map_err(fail)?;
        }
        ws.set_freeze_panes(1, 0).map_err(fail)?;
        for (r, row) in raw.section(&section.key).iter().enumerate() {
            for (c, col) in section.columns.iter().enumerate() {
                if let Some(cell) = row.cell(&col.field) {
                    ws.write_string(r as u32 + 1, c as u16, cell.value.trim()).map_err(fail)?;
                }
            }
        }
    }
    wb.save_to_buffer().map_err(fail)
}

/// A cell's text as a person means it: integers without «.0», date cells as ДД.ММ.ГГГГ.
fn cell_text(d: &Data) -> Result<Option<String>, String> {
    Ok(match d {
        Data::Empty => None,
        Data::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Data::Int(i) => Some(i.to_string()),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
        // No value of an exchange file is a number this large but an id the spreadsheet
        // has rounded (`1.75E+18`): taken as it is, it was imported as a new pupil.
        Data::Float(f) if f.abs() >= 1e15 => return ejgate_sdk::limits::id_from_number(*f).map(Some),
        Data::Float(f) => Some(f.to_string()),
        Data::Bool(b) => Some(b.to_string()),
        Data::DateTime(dt) => {
            let days = dt.as_f64().floor() as i64;
            let base = NaiveDate::from_ymd_opt(1899, 12, 30).expect("Excel's day zero");
            Some(
                base.checked_add_signed(chrono::Duration::days(days))
                    .map(format_date)
                    .unwrap_or_else(|| dt.as_f64().to_string()),
            )
        }
        Data::DateTimeIso(s) => Some(
            NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
                .map(format_date)
                .unwrap_or_else(|_| s.clone()),
        ),
        Data::DurationIso(s) => Some(s.clone()),
        Data::Error(e) => return Err(format!("the cell holds the Excel error {e}")),
    })
}

/// Reads a workbook. An unreadable workbook, a missing info sheet or an unknown kind stop
/// the reading (`None`); unknown columns, missing sheets and error cells are reported and
/// the rest is read.
pub fn read(bytes: &[u8], layout: &Layout) -> (Option<RawDoc>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut wb: Xlsx<_> = match open_workbook_from_rs(Cursor::new(bytes.to_vec())) {
        Ok(wb) => wb,
        Err(e) => {
            problems.push(Problem::new(
                Location::File,
                ProblemCode::Malformed,
                format!("not a readable XLSX workbook: {e}"),
            ));
            return (None, problems);
        }
    };
    let names = wb.sheet_names();
    let at = |sheet: &str, row: u32, column: Option<String>| Location::Xlsx { sheet: sheet.to_string(), row, column };
    let info = match names.iter().find(|n| n.trim() == layout.info_sheet) {
        Some(n) => n.clone(),
        None => {
            problems.push(Problem::new(
                Location::File,
                ProblemCode::WrongRoot,
                format!(
                    "no sheet «{}» naming the kind of file (the workbook has {}): not an exchange file of this layout",
                    layout.info_sheet,
                    names.iter().map(|n| format!("«{n}»")).collect::<Vec<_>>().join(", ")
                ),
            ));
            return (None, problems);
        }
    };
    let range = match wb.worksheet_range(&info) {
        Ok(r) => r,
        Err(e) => {
            problems.push(Problem::new(
                at(&info, 1, None),
                ProblemCode::Malformed,
                format!("cannot read the sheet: {e}"),
            ));
            return (None, problems);
        }
    };
    let (r0, c0) = range.start().unwrap_or((0, 0));
    let mut kind_cell = None;
    let mut year_cell = None;
    for (i, r) in range.rows().enumerate() {
        let row = r0 + i as u32 + 1;
        let label = r.first().and_then(|d| cell_text(d).ok().flatten());
        let value = r.get(1).and_then(|d| cell_text(d).ok().flatten());
        let loc = at(&info, row, Some(column_letter(c0 + 1)));
        match label.as_deref().map(str::trim) {
            Some(l) if l == layout.info_kind_label.trim() => kind_cell = Some((value, loc)),
            Some(l) if l == layout.info_year_label.trim() => year_cell = Some((value, loc)),
            _ => {}
        }
    }
    let kind = match &kind_cell {
        Some((Some(title), loc)) => match layout.kind_of_title(title) {
            Some(k) => k,
            None => {
                let titles: Vec<String> =
                    super::ExchangeKind::ALL.iter().map(|k| format!("«{}»", layout.kind(*k).title)).collect();
                problems.push(Problem::new(
                    loc.clone(),
                    ProblemCode::WrongRoot,
                    format!("the kind «{title}» is none of {}", titles.join(", ")),
                ));
                return (None, problems);
            }
        },
        _ => {
            problems.push(Problem::new(
                at(&info, 1, None),
                ProblemCode::WrongRoot,
                format!("the sheet names no kind: «{}» in column A, the kind in column B", layout.info_kind_label),
            ));
            return (None, problems);
        }
    };
    let year_location = year_cell.as_ref().map(|c| c.1.clone()).unwrap_or_else(|| at(&info, 2, None));
    let year = year_cell.and_then(|(v, loc)| v.map(|v| (v, loc)));
    let kl = layout.kind(kind);
    let mut sections = Vec::new();
    for section in &kl.sections {
        let mut rows = Vec::new();
        let sheet = names.iter().find(|n| n.trim() == section.sheet.trim()).cloned();
        let range = match sheet.as_ref().map(|s| (s, wb.worksheet_range(s))) {
            Some((_, Ok(r))) => r,
            Some((s, Err(e))) => {
                problems.push(Problem::new(
                    at(s, 1, None),
                    ProblemCode::Malformed,
                    format!("cannot read the sheet: {e}"),
                ));
                sections.push(RawSection { key: section.key.clone(), rows });
                continue;
            }
            None => {
                problems.push(Problem::new(
                    Location::File,
                    ProblemCode::Structure,
                    format!("the sheet «{}» is missing", section.sheet),
                ));
                sections.push(RawSection { key: section.key.clone(), rows });
                continue;
            }
        };
        let sheet = sheet.expect("found above");
        let (r0, c0) = range.start().unwrap_or((0, 0));
        let mut iter = range.rows();
        let mut fields: HashMap<usize, (String, String)> = HashMap::new();
        // Columns with a header of any kind (an unknown one is reported once, above its cells).
        let mut headed = std::collections::HashSet::new();
        if let Some(header) = iter.next() {
            for (i, d) in header.iter().enumerate() {
                let col = c0 + i as u32;
                let Ok(Some(h)) = cell_text(d) else { continue };
                headed.insert(i);
                let letter = column_letter(col);
                match section.columns.iter().find(|c| c.header.trim() == h.trim()) {
                    Some(c) if fields.values().any(|(f, _)| *f == c.field) => problems.push(Problem::new(
                        at(&sheet, r0 + 1, Some(format!("{letter} «{h}»"))),
                        ProblemCode::Structure,
                        format!("the column «{h}» is given twice"),
                    )),
                    Some(c) => {
                        fields.insert(i, (c.field.clone(), format!("{letter} «{h}»")));
                    }
                    None => problems.push(Problem::new(
                        at(&sheet, r0 + 1, Some(format!("{letter} «{h}»"))),
                        ProblemCode::UnknownField,
                        format!("unknown column «{h}»"),
                    )),
                }
            }
        }
        for (i, r) in iter.enumerate() {
            let row_no = r0 + i as u32 + 2;
            let mut cells = Vec::new();
            for (j, d) in r.iter().enumerate() {
                let Some((field, column)) = fields.get(&j) else {
                    // A value in a column without a header: a row with more cells than the
                    // sheet's columns (a value typed one column off). It had been dropped
                    // without a word.
                    if !headed.contains(&j) {
                        if let Ok(Some(value)) = cell_text(d) {
                            let letter = column_letter(c0 + j as u32);
                            problems.push(Problem::new(
                                at(&sheet, row_no, Some(letter.clone())),
                                ProblemCode::UnknownField,
                                format!(
                                    "a value in column {letter}, which has no header: «{}»; put it under its column",
                                    value.chars().take(40).collect::<String>()
                                ),
                            ));
                        }
                    }
                    continue;
                };
                let loc = at(&sheet, row_no, Some(column.clone()));
                match cell_text(d) {
                    Ok(Some(value)) => cells.push(RawCell { field: field.clone(), value, location: loc }),
                    Ok(None) => {}
                    Err(e) => problems.push(Problem::new(loc, ProblemCode::Structure, e)),
                }
            }
            if !cells.is_empty() {
                rows.push(RawRow { location: at(&sheet, row_no, None), cells });
            }
        }
        sections.push(RawSection { key: section.key.clone(), rows });
    }
    (Some(RawDoc { kind, year, year_location, sections }), problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::ExchangeKind;

    #[test]
    fn column_letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
        assert_eq!(column_letter(52), "BA");
    }

    /// A value typed in a column without a header (a row one cell longer than the sheet's
    /// columns) had been dropped without a word; it is a problem naming the sheet, the row
    /// and the column. A column with an unknown header is reported once, at its header.
    #[test]
    fn a_value_in_a_column_without_a_header_is_reported_with_its_row() {
        let layout = Layout::default_layout();
        let kind = layout.kind(ExchangeKind::Contingent);
        let mut wb = Workbook::new();
        let info = wb.add_worksheet();
        info.set_name(&layout.info_sheet).unwrap();
        info.write_string(0, 0, &layout.info_kind_label).unwrap();
        info.write_string(0, 1, &kind.title).unwrap();
        info.write_string(1, 0, &layout.info_year_label).unwrap();
        info.write_string(1, 1, "2025/2026").unwrap();
        let section = &kind.sections[0];
        let ws = wb.add_worksheet();
        ws.set_name(&section.sheet).unwrap();
        let n = section.columns.len() as u16;
        for (c, col) in section.columns.iter().enumerate() {
            ws.write_string(0, c as u16, &col.header).unwrap();
            ws.write_string(1, c as u16, "1").unwrap();
            ws.write_string(2, c as u16, "1").unwrap();
        }
        ws.write_string(2, n, "Мария").unwrap();
        let bytes = wb.save_to_buffer().unwrap();
        let (_, problems) = read(&bytes, &layout);
        let letter = column_letter(n as u32);
        let p = problems
            .iter()
            .find(|p| p.code == ProblemCode::UnknownField)
            .unwrap_or_else(|| panic!("no problem for the extra cell: {problems:?}"));
        assert_eq!(p.location, Location::Xlsx { sheet: section.sheet.clone(), row: 3, column: Some(letter.clone()) });
        assert!(p.message.contains(&format!("column {letter}, which has no header: «Мария»")), "{}", p.message);
        assert_eq!(problems.iter().filter(|p| p.code == ProblemCode::UnknownField).count(), 1, "{problems:?}");
    }

    /// A 19-digit id Excel stored as a number (`1.75E+18`) had been read as
    /// 1750000000000000000, a new pupil; it is refused with what to do. Numbers a
    /// spreadsheet keeps exactly still read as integers.
    #[test]
    fn a_number_too_large_to_be_exact_is_refused_as_a_rounded_id() {
        let e = cell_text(&Data::Float(1.75e18)).unwrap_err();
        assert!(e.contains("1.75e18") && e.contains("format the column as text"), "{e}");
        assert_eq!(cell_text(&Data::Float(123_456_789.0)), Ok(Some("123456789".into())));
        assert_eq!(cell_text(&Data::Float(4.5)), Ok(Some("4.5".into())));
        assert_eq!(cell_text(&Data::Int(1_750_000_000_000_000_000)), Ok(Some("1750000000000000000".into())));
    }
}
