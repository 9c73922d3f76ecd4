//! Документы для печати: the PDF engine of ejgate's paper copies (REGULATIONS A1, A2, P4)
//! and of any report that offers `--format pdf`.
//!
//! Every PDF is PDF/A-2u (archival, every glyph mapped to Unicode so that the Cyrillic
//! text can be searched and extracted), with its fonts embedded (subsets of DejaVu Sans
//! Condensed, compiled into the binary, see [`fonts`]). The PDF is written by
//! [krilla](https://docs.rs/krilla) 0.7 without its default features (no shaping, no
//! raster images), whose validator refuses to write a file that breaks PDF/A-2u; it adds
//! 20 crates to the build, and the glyph metrics come from skrifa, which krilla uses
//! anyway. The layout ([`layout`]: pages with mirrored margins, headings, wrapped
//! paragraphs, tables whose header repeats on each page, page and sheet numbers) is our
//! own small layer.
//!
//! *Not the typst compiler*: typst would have given templates in its markup, but an
//! earlier attempt with it added 187 crates and about 100 minutes of build on the project's
//! two cores, which does not fit CI's hour. The school's part of the layout (margins, type
//! sizes, column widths) and every fixed Russian text are in a TOML template instead
//! ([`template`], default `templates/paper.toml`).

pub mod fonts;
pub mod layout;
pub mod template;

use crate::report::table::{Cell, ChartSpec, Sheet};
use layout::{Align, BarChart, Column, Layout, Series, Table};
use template::Template;

/// A cell's text as printed (dates `dd.mm.yyyy`, shares in per cent).
fn printed(cell: &Cell) -> String {
    match cell {
        Cell::Share(s) => format!("{:.1} %", s * 100.0),
        Cell::Date(d) => d.format("%d.%m.%Y").to_string(),
        Cell::DateTime(t) => t.format("%d.%m.%Y %H:%M").to_string(),
        other => other.plain(),
    }
}

/// A chart of a sheet as the PDF draws it: the same categories, series and rows as the
/// XLSX's native chart ([`crate::report::table::xlsx`]), always with bars across (every
/// chart of the reports has them so); the values of a series are shares when every value
/// it has is one.
pub fn chart_of(sheet: &Sheet, spec: &ChartSpec) -> BarChart {
    let rows = &sheet.rows[..spec.row_count(sheet)];
    let value = |cell: Option<&Cell>| match cell {
        Some(Cell::Int(i)) => Some(*i as f64),
        Some(Cell::Num(n) | Cell::Share(n)) => Some(*n),
        _ => None,
    };
    let cells = || spec.values.iter().flat_map(|c| rows.iter().filter_map(move |r| r.get(*c)));
    let percent = cells().any(|c| matches!(c, Cell::Share(_)))
        && cells().all(|c| matches!(c, Cell::Share(_) | Cell::Empty | Cell::Text(_)));
    BarChart {
        title: spec.title.clone(),
        categories: rows.iter().map(|r| r.get(spec.categories).map(printed).unwrap_or_default()).collect(),
        series: spec
            .values
            .iter()
            .map(|c| Series {
                name: sheet.headings.get(*c).cloned().unwrap_or_default(),
                values: rows.iter().map(|r| value(r.get(*c))).collect(),
            })
            .collect(),
        percent,
    }
}

/// Report sheets as one PDF/A-2u document: the title, then each sheet as a heading, a
/// table (columns as wide as their longest value allows, header repeated on each page;
/// landscape when a sheet has more than six columns) and the sheet's charts, drawn as the
/// XLSX has them natively.
pub fn sheets_pdf(
    title: &str,
    sheets: &[Sheet],
    template: &Template,
    date: chrono::NaiveDate,
) -> anyhow::Result<Vec<u8>> {
    // A table of more than six columns is printed across the page (landscape).
    let mut page = template.page.clone();
    if sheets.iter().any(|s| s.headings.len() > 6) && page.width_mm < page.height_mm {
        std::mem::swap(&mut page.width_mm, &mut page.height_mm);
    }
    let mut doc = Layout::new(&page);
    doc.set_header(title);
    doc.title(title);
    for sheet in sheets {
        doc.heading(&sheet.name, 1);
        let rows: Vec<Vec<String>> = sheet.rows.iter().map(|r| r.iter().map(printed).collect()).collect();
        // Widths by the longest value of each column (4 to 40 characters), scaled to the page.
        let longest: Vec<f32> = (0..sheet.headings.len())
            .map(|c| {
                rows.iter()
                    .filter_map(|r| r.get(c))
                    .chain([&sheet.headings[c]])
                    .map(|t| t.chars().count())
                    .max()
                    .unwrap_or(0)
                    .clamp(4, 40) as f32
            })
            .collect();
        let total: f32 = longest.iter().sum::<f32>().max(1.0);
        let width = doc.width();
        let columns = longest.iter().map(|l| Column { width: width * l / total, align: Align::Left }).collect();
        if rows.is_empty() {
            doc.paragraph("(нет строк)");
        }
        doc.table(&Table { columns, header: sheet.headings.clone(), rows });
        for spec in &sheet.charts {
            if spec.row_count(sheet) > 0 {
                doc.bar_chart(&chart_of(sheet, spec));
            }
        }
    }
    doc.finish(title, &template.texts.footer, date)
}
