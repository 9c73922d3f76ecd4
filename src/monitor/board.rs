//! The deputy director's morning board (доска завуча): the findings by teacher, class and
//! rule with their clauses, in Russian; and the same findings as CSV.

use std::fmt::Write as _;

use super::engine::Report;

/// The board as text.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let period = if report.from == report.to {
        report.from.format("%d.%m.%Y").to_string()
    } else {
        format!("{}–{}", report.from.format("%d.%m.%Y"), report.to.format("%d.%m.%Y"))
    };
    let _ = writeln!(
        out,
        "Мониторинг ведения журнала: {}, {period} (источник {}, положение {}, время {})",
        report.school, report.source, report.profile, report.time_zone
    );
    if report.findings.is_empty() {
        let _ = writeln!(out, "Нарушений не найдено.");
    } else {
        let _ = writeln!(out, "Нарушений: {}", report.findings.len());
    }
    let mut teacher: Option<&Option<String>> = None;
    let mut class: Option<&Option<String>> = None;
    for f in &report.findings {
        if teacher != Some(&f.teacher) {
            let _ = writeln!(out, "\n{}", f.teacher.as_deref().unwrap_or("Учитель не указан"));
            teacher = Some(&f.teacher);
            class = None;
        }
        if class != Some(&f.class) {
            let _ = writeln!(out, "  {}", f.class.as_deref().unwrap_or("Класс не указан"));
            class = Some(&f.class);
        }
        let subject = f.subject.as_deref().map(|s| format!(" [{s}]")).unwrap_or_default();
        let _ = writeln!(out, "    {} (п. {}){subject}: {}", f.rule, f.clause, f.what);
        let _ = writeln!(out, "      основание: {}", f.evidence);
    }
    if !report.unchecked.is_empty() {
        let _ = writeln!(out, "\nНе может быть проверено по данным этого источника:");
        for u in &report.unchecked {
            let _ = writeln!(out, "  {} (п. {}): {}", u.rule, u.clause, u.reason);
        }
    }
    for n in &report.notices {
        let _ = writeln!(out, "\nПроект служебной записки ({}):\n{}", n.key, n.text);
    }
    out
}

/// The findings as CSV (a header and one row per finding; the last column holds the drafted
/// служебная записка of the finding that has one, M21).
pub fn csv(report: &Report) -> Result<Vec<u8>, csv::Error> {
    let notices: std::collections::HashMap<&str, &str> =
        report.notices.iter().map(|n| (n.key.as_str(), n.text.as_str())).collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "правило",
        "пункт",
        "серьёзность",
        "учитель",
        "класс",
        "предмет",
        "дата",
        "нарушение",
        "основание",
        "урок",
        "отметка",
        "ключ",
        "служебная записка",
    ])?;
    for f in &report.findings {
        w.write_record([
            f.rule.as_str(),
            f.clause.as_str(),
            f.severity.ru(),
            f.teacher.as_deref().unwrap_or(""),
            f.class.as_deref().unwrap_or(""),
            f.subject.as_deref().unwrap_or(""),
            &f.date.map(|d| d.to_string()).unwrap_or_default(),
            f.what.as_str(),
            f.evidence.as_str(),
            &f.lesson.map(|l| l.to_string()).unwrap_or_default(),
            &f.mark.map(|m| m.to_string()).unwrap_or_default(),
            f.key.as_str(),
            notices.get(f.key.as_str()).copied().unwrap_or(""),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The board as sheets: the findings, what could not be checked, the drafted служебные
/// записки (M21; a sheet only when there are some), and what was judged.
pub fn sheets(report: &Report) -> Vec<crate::report::table::Sheet> {
    use crate::report::table::{Cell, Sheet};
    let mut findings = Sheet::new(
        "Нарушения",
        &[
            "Правило",
            "Пункт положения",
            "Серьёзность",
            "Учитель",
            "Класс",
            "Предмет",
            "Дата",
            "Нарушение",
            "Основание",
            "Урок",
            "Отметка",
            "Ключ",
        ],
    );
    for f in &report.findings {
        findings.push(vec![
            Cell::text(&f.rule),
            Cell::text(&f.clause),
            Cell::text(f.severity.ru()),
            Cell::opt(f.teacher.as_deref()),
            Cell::opt(f.class.as_deref()),
            Cell::opt(f.subject.as_deref()),
            f.date.map(Cell::Date).unwrap_or(Cell::Empty),
            Cell::text(&f.what),
            Cell::text(&f.evidence),
            Cell::opt(f.lesson.map(|l| l.to_string()).as_deref()),
            Cell::opt(f.mark.map(|m| m.to_string()).as_deref()),
            Cell::text(&f.key),
        ]);
    }
    let mut unchecked = Sheet::new("Не проверено", &["Правило", "Пункт положения", "Причина", "Целиком"]);
    for u in &report.unchecked {
        unchecked.push(vec![
            Cell::text(&u.rule),
            Cell::text(&u.clause),
            Cell::text(&u.reason),
            Cell::text(if u.whole { "да" } else { "частично" }),
        ]);
    }
    // the notice's text is long and on several lines: the writer wraps it in a column 60
    // characters wide, the key's column as wide as the key
    let mut notices = Sheet::new("Служебные записки", &["Ключ нарушения", "Текст служебной записки"]);
    for n in &report.notices {
        notices.push(vec![Cell::text(&n.key), Cell::text(&n.text)]);
    }
    let mut about = Sheet::new("Сведения", &["Показатель", "Значение"]);
    for (k, v) in [
        ("Школа", report.school.clone()),
        ("Период", format!("{}–{}", report.from.format("%d.%m.%Y"), report.to.format("%d.%m.%Y"))),
        ("Источник (журнал)", report.source.clone()),
        ("Положение", report.profile.clone()),
        ("Часовой пояс школы", report.time_zone.clone()),
        ("Нарушений", report.findings.len().to_string()),
        ("Служебных записок", report.notices.len().to_string()),
    ] {
        about.push(vec![Cell::text(k), Cell::text(v)]);
    }
    let mut out = vec![findings, unchecked];
    if !notices.rows.is_empty() {
        out.push(notices);
    }
    out.push(about);
    out
}

/// The board as an XLSX workbook (the findings on the first sheet).
pub fn xlsx(report: &Report) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    crate::report::table::xlsx(&title(report), &sheets(report))
}

/// The board as a PDF/A-2u document, the same sheets as the workbook.
pub fn pdf(report: &Report) -> anyhow::Result<Vec<u8>> {
    crate::report::table::pdf(&title(report), &sheets(report))
}

fn title(report: &Report) -> String {
    format!("Мониторинг ведения журнала: {}", report.school)
}
