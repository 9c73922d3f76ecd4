//! Реестр бумажных копий (REGULATIONS A4, R4): `ejgate archive register add|set|list|export`.
//! Each printed and signed copy of a class journal, year-end book or сводная ведомость is
//! entered under the school's next number, with its sheets, who signed it, where it is
//! kept and when (and to whom) it was handed to the secretary. The register is exported
//! as CSV, XLSX or PDF through [`crate::report::table`].

use crate::report::table::{Cell, Sheet};
use crate::store::PaperCopy;

/// The register as one sheet.
pub fn sheet(copies: &[PaperCopy]) -> Sheet {
    let mut s = Sheet::new(
        "Реестр бумажных копий",
        &[
            "Школа",
            "№",
            "Класс",
            "Учебный год",
            "Документ",
            "Листов",
            "Подписал",
            "Место хранения",
            "Передан секретарю",
            "Кому передан",
            "Внесено",
            "Кем внесено",
        ],
    );
    for c in copies {
        s.push(vec![
            Cell::text(&c.school),
            Cell::Int(i64::from(c.number)),
            Cell::text(&c.class),
            Cell::text(&c.school_year),
            Cell::text(&c.title),
            Cell::Int(i64::from(c.sheets)),
            Cell::opt(c.signed_by.as_deref()),
            Cell::opt(c.kept_at.as_deref()),
            c.handed_on.map(Cell::Date).unwrap_or(Cell::Empty),
            Cell::opt(c.handed_to.as_deref()),
            Cell::DateTime(c.recorded_at.naive_utc()),
            Cell::text(&c.recorded_by),
        ]);
    }
    s
}

/// The register as text for a terminal, one line per copy.
pub fn render(copies: &[PaperCopy]) -> String {
    if copies.is_empty() {
        return "the register of paper copies is empty\n".to_string();
    }
    let mut out = String::new();
    for c in copies {
        out.push_str(&format!(
            "{} № {}: {} класс, {}, {}; листов: {}; подписал: {}; хранится: {}; секретарю: {}\n",
            c.school,
            c.number,
            c.class,
            c.school_year,
            c.title,
            c.sheets,
            c.signed_by.as_deref().unwrap_or("—"),
            c.kept_at.as_deref().unwrap_or("—"),
            match (c.handed_on, c.handed_to.as_deref()) {
                (Some(d), Some(to)) => format!("{} ({to})", d.format("%d.%m.%Y")),
                (Some(d), None) => d.format("%d.%m.%Y").to_string(),
                (None, _) => "не передан".to_string(),
            }
        ));
    }
    out
}
