//! Tables as a person reads them: one [`Sheet`] per table, written as an XLSX workbook
//! (rust_xlsxwriter: a bold header row that stays in view, a filter on every column,
//! widths from the longest value, dates as dates, shares as percentages, native charts)
//! or as CSV. Every report of ejgate builds its sheets and leaves the writing here.

use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime};
use rust_xlsxwriter::{Chart, ChartType, DocProperties, ExcelDateTime, Format, FormatBorder, Workbook, XlsxError};

/// One cell's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Int(i64),
    Num(f64),
    /// A share between 0 and 1, shown as a percentage.
    Share(f64),
    Date(NaiveDate),
    DateTime(NaiveDateTime),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    /// A text or nothing.
    pub fn opt(s: Option<&str>) -> Cell {
        s.map(|s| Cell::Text(s.to_string())).unwrap_or(Cell::Empty)
    }

    /// A share of `part` in `whole`; nothing when the whole is zero.
    pub fn share(part: u64, whole: u64) -> Cell {
        if whole == 0 {
            Cell::Empty
        } else {
            Cell::Share(part as f64 / whole as f64)
        }
    }

    /// The cell as CSV writes it (dates ISO, shares as a fraction with 4 decimals).
    pub fn plain(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Num(n) => format_number(*n),
            Cell::Share(s) => format!("{s:.4}"),
            Cell::Date(d) => d.to_string(),
            Cell::DateTime(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        }
    }

    /// Characters a person sees in the spreadsheet (for the column width).
    fn shown_len(&self) -> usize {
        match self {
            Cell::Empty => 0,
            Cell::Text(s) => s.lines().map(|l| l.chars().count()).max().unwrap_or(0),
            Cell::Int(i) => i.to_string().len(),
            Cell::Num(n) => format!("{n:.2}").len(),
            Cell::Share(_) => 7,
            Cell::Date(_) => 10,
            Cell::DateTime(_) => 16,
        }
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n:.2}")
    }
}

/// A native chart of a sheet: categories from one column, a series per value column, over
/// every data row.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    pub title: String,
    /// The column of the categories (the names along the axis)
    pub categories: usize,
    /// The columns of the series
    pub values: Vec<usize>,
    /// Bars across (true) or columns up
    pub horizontal: bool,
    /// Rows counted from the first data row, when not all of them (a totals row left out)
    pub rows: Option<usize>,
}

impl ChartSpec {
    /// The data rows of `sheet` the chart covers, counted from the first.
    pub fn row_count(&self, sheet: &Sheet) -> usize {
        self.rows.unwrap_or(sheet.rows.len()).min(sheet.rows.len())
    }
}

/// One table: a header row and data rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sheet {
    /// The sheet's name in the workbook (at most 31 characters, no `[]:*?/\`)
    pub name: String,
    pub headings: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub charts: Vec<ChartSpec>,
}

impl Sheet {
    pub fn new(name: &str, headings: &[&str]) -> Sheet {
        Sheet {
            name: name.to_string(),
            headings: headings.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            charts: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.headings.len(), "a row of «{}» has as many cells as headings", self.name);
        self.rows.push(row);
    }

    /// The sheet as CSV (a header and one line per row).
    pub fn csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.headings)?;
        for row in &self.rows {
            w.write_record(row.iter().map(Cell::plain))?;
        }
        w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
    }

    /// Column widths in characters: the longest of the heading and the values (a long
    /// text wraps at 60), at least 8.
    fn widths(&self) -> Vec<f64> {
        (0..self.headings.len())
            .map(|c| {
                let longest = self
                    .rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(Cell::shown_len)
                    .chain([self.headings[c].chars().count()])
                    .max()
                    .unwrap_or(0);
                (longest as f64 + 2.0).clamp(8.0, 60.0)
            })
            .collect()
    }
}

/// The lines a text takes in a wrapped column `width` characters wide (its own lines, each
/// broken at the width; a few characters of the width go to the cell's margins).
fn wrapped_lines(s: &str, width: f64) -> usize {
    let fits = (width - 2.0).max(1.0) as usize;
    s.lines().map(|l| l.chars().count().div_ceil(fits).max(1)).sum::<usize>().max(1)
}

/// Writes the sheets as one workbook (`title` goes into the document's properties).
pub fn xlsx(title: &str, sheets: &[Sheet]) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    // A fixed creation time: the same data gives the same bytes.
    let created = ExcelDateTime::from_ymd(2025, 1, 1)?;
    wb.set_properties(&DocProperties::new().set_title(title).set_author("ejgate").set_creation_datetime(&created));
    let header = Format::new().set_bold().set_text_wrap().set_border_bottom(FormatBorder::Thin);
    let wrap = Format::new().set_text_wrap();
    let date = Format::new().set_num_format("dd.mm.yyyy");
    let datetime = Format::new().set_num_format("dd.mm.yyyy hh:mm");
    let share = Format::new().set_num_format("0.0%");
    let number = Format::new().set_num_format("0.00");
    for sheet in sheets {
        let ws = wb.add_worksheet();
        ws.set_name(&sheet.name)?;
        let widths = sheet.widths();
        for (c, h) in sheet.headings.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, h, &header)?;
            ws.set_column_width(c as u16, widths[c])?;
        }
        for (r, row) in sheet.rows.iter().enumerate() {
            let r = r as u32 + 1;
            // a text of several lines (a служебная записка) gets a row tall enough for its
            // lines wrapped at the column's width: spreadsheets do not grow a row written
            // without a height
            let tall = row
                .iter()
                .zip(&widths)
                .filter_map(|(cell, width)| match cell {
                    Cell::Text(s) if s.contains('\n') => Some(wrapped_lines(s, *width)),
                    _ => None,
                })
                .max();
            if let Some(lines) = tall {
                ws.set_row_height(r, 15.0 * lines as f64)?;
            }
            for (c, cell) in row.iter().enumerate() {
                let c = c as u16;
                match cell {
                    Cell::Empty => {}
                    Cell::Text(s) if s.contains('\n') || s.chars().count() > 60 => {
                        ws.write_string_with_format(r, c, s, &wrap)?;
                    }
                    Cell::Text(s) => {
                        ws.write_string(r, c, s)?;
                    }
                    Cell::Int(i) => {
                        ws.write_number(r, c, *i as f64)?;
                    }
                    Cell::Num(n) if n.fract() == 0.0 => {
                        ws.write_number(r, c, *n)?;
                    }
                    Cell::Num(n) => {
                        ws.write_number_with_format(r, c, *n, &number)?;
                    }
                    Cell::Share(s) => {
                        ws.write_number_with_format(r, c, *s, &share)?;
                    }
                    Cell::Date(d) => {
                        ws.write_datetime_with_format(r, c, d, &date)?;
                    }
                    Cell::DateTime(t) => {
                        ws.write_datetime_with_format(r, c, t, &datetime)?;
                    }
                }
            }
        }
        ws.set_freeze_panes(1, 0)?;
        if !sheet.headings.is_empty() {
            ws.autofilter(0, 0, sheet.rows.len() as u32, sheet.headings.len() as u16 - 1)?;
        }
        for (i, spec) in sheet.charts.iter().enumerate() {
            let rows = spec.row_count(sheet);
            if rows == 0 {
                continue;
            }
            let mut chart = Chart::new(if spec.horizontal { ChartType::Bar } else { ChartType::Column });
            chart.title().set_name(&spec.title);
            for v in &spec.values {
                chart
                    .add_series()
                    .set_name((sheet.name.as_str(), 0, *v as u16))
                    .set_categories((
                        sheet.name.as_str(),
                        1,
                        spec.categories as u16,
                        rows as u32,
                        spec.categories as u16,
                    ))
                    .set_values((sheet.name.as_str(), 1, *v as u16, rows as u32, *v as u16));
            }
            chart.set_width(720).set_height(360);
            // Below the table, one under the other.
            ws.insert_chart(sheet.rows.len() as u32 + 3 + i as u32 * 20, 0, &chart)?;
        }
    }
    wb.save_to_buffer()
}

/// Writes `bytes` to `path`, naming the file when it cannot.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// The sheets as plain text for a terminal: each sheet's name, then its rows with the
/// headings, one value per line.
pub fn text(title: &str, sheets: &[Sheet]) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{title}\n");
    for sheet in sheets {
        let _ = writeln!(out, "\n{}", sheet.name);
        if sheet.rows.is_empty() {
            let _ = writeln!(out, "  (нет строк)");
        }
        for row in &sheet.rows {
            let mut first = true;
            for (h, cell) in sheet.headings.iter().zip(row) {
                let value = match cell {
                    Cell::Share(s) => format!("{:.1} %", s * 100.0),
                    Cell::Date(d) => d.format("%d.%m.%Y").to_string(),
                    Cell::DateTime(t) => t.format("%d.%m.%Y %H:%M").to_string(),
                    other => other.plain(),
                };
                if value.is_empty() {
                    continue;
                }
                let _ = writeln!(out, "{}{h}: {value}", if first { "  • " } else { "    " });
                first = false;
            }
        }
    }
    out
}

/// The sheets as JSON, for other programs: `{"title", "sheets": [{"name", "headings",
/// "rows"}]}`, each row an array beside the headings (a sheet may repeat a heading), numbers
/// as numbers (shares as fractions 0–1), dates ISO (`2025-11-03`, `2025-11-03T14:05:00`),
/// an empty cell `null`.
pub fn json(title: &str, sheets: &[Sheet]) -> serde_json::Value {
    use serde_json::{json, Value};
    let cell = |c: &Cell| match c {
        Cell::Empty => Value::Null,
        Cell::Text(s) => Value::String(s.clone()),
        Cell::Int(i) => json!(i),
        Cell::Num(n) | Cell::Share(n) => serde_json::Number::from_f64(*n).map(Value::Number).unwrap_or(Value::Null),
        Cell::Date(d) => Value::String(d.format("%Y-%m-%d").to_string()),
        Cell::DateTime(t) => Value::String(t.format("%Y-%m-%dT%H:%M:%S").to_string()),
    };
    json!({
        "title": title,
        "sheets": sheets
            .iter()
            .map(|s| json!({
                "name": s.name,
                "headings": s.headings,
                "rows": s.rows.iter().map(|r| r.iter().map(cell).collect::<Vec<_>>()).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>(),
    })
}

/// Writes the sheets as one PDF/A-2u document (fonts embedded, text extractable): the
/// title, then each sheet as a heading and a table whose header repeats on each page, laid
/// out with the default template of the paper copies (`templates/paper.toml`).
pub fn pdf(title: &str, sheets: &[Sheet]) -> anyhow::Result<Vec<u8>> {
    let template = crate::documents::template::Template::builtin();
    crate::documents::sheets_pdf(title, sheets, &template, chrono::Utc::now().date_naive())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_follow_the_longest_value_within_bounds() {
        let mut s = Sheet::new("Лист", &["№", "Очень длинный заголовок столбца"]);
        s.push(vec![Cell::Int(1), Cell::text("коротко")]);
        s.push(vec![Cell::Int(2), Cell::text("д".repeat(200))]);
        let w = s.widths();
        assert_eq!(w[0], 8.0);
        assert_eq!(w[1], 60.0);
        assert_eq!(Cell::share(1, 0), Cell::Empty);
        assert_eq!(Cell::share(1, 4).plain(), "0.2500");
    }
}
