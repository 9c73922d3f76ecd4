//! Сводные показатели журнала (journal aggregates): what the district's rollout report
//! (REGULATIONS P10) counts for each school, counted by the database in one statement for
//! every school at once, so that no record leaves the store ([`super::Store::journal_aggregates`]).
//!
//! The two backends run the same statement in their own SQL; this module holds what they
//! share: the parameters as JSON (a row per school, a row per piece of a span) and the
//! assembly of the rows the statement returns (`what`, school, span, key, count).

use std::collections::BTreeMap;

use ejgate_sdk::model::DateRange;
use serde_json::json;

use super::{StoreError, StoreResult};

/// The last part of both backends' journal-aggregates statement: one row per figure
/// (`figure, school, span, key, n`) from the CTEs each dialect writes its own way. The key
/// column's type is set by its first row (a text NULL, which both dialects read).
macro_rules! counted_rows {
    () => {
        "SELECT 'lessons', school, span, CAST(NULL AS TEXT), count(*) FROM lessons GROUP BY school, span
UNION ALL SELECT 'with_topic', school, span, NULL, count(*) FILTER (WHERE topic) FROM lessons GROUP BY school, span
UNION ALL SELECT 'marks', school, span, NULL, marks FROM marks
UNION ALL SELECT 'marks_judged', school, span, NULL, judged FROM marks
UNION ALL SELECT 'marks_on_time', school, span, NULL, on_time FROM marks
UNION ALL SELECT 'with_homework', school, span, NULL, n FROM homework
UNION ALL SELECT 'student_subjects', school, span, NULL, n FROM pairs
UNION ALL SELECT 'guardians_reading', school, span, NULL, n FROM reading
UNION ALL SELECT 'reading_told', x.school, NULL, NULL, count(*) FROM sources x
    WHERE EXISTS (SELECT 1 FROM records r WHERE r.source = x.source
                  AND r.kind IN ('user_activity', 'acknowledgement') AND r.deleted_at IS NULL)
    GROUP BY x.school
UNION ALL SELECT 'students', p.school, NULL, NULL, p.students FROM people p
    JOIN schools k ON k.school = p.school AND k.journal = p.source
UNION ALL SELECT 'staff', p.school, NULL, NULL, p.staff FROM people p
    JOIN schools k ON k.school = p.school AND k.journal = p.source
UNION ALL SELECT 'guardians', school, NULL, source, guardians FROM people WHERE guardians > 0
UNION ALL SELECT 'findings', school, span, rule, count(*) FROM found WHERE span IS NOT NULL
    GROUP BY school, span, rule
"
    };
}
pub(crate) use counted_rows;

/// What to count for one school (школа): its sources, the date spans (четверти) and the
/// deadline of its marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateRequest {
    /// The school's sources, its journal first: lessons, homework, marks and enrollments
    /// are counted in the journal, guardians and their reading in every source.
    pub sources: Vec<String>,
    /// The spans to count over. A day that lies in several spans counts in the first.
    pub spans: Vec<DateRange>,
    /// When a mark is due (срок выставления отметки), in seconds after the start (00:00) of
    /// its lesson's day, local time; `None`: marks are not judged.
    pub mark_due_seconds: Option<i64>,
    /// The school's name in the findings of monitoring (`None`: no findings counted).
    pub findings_school: Option<String>,
}

/// What the store counted for one school.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchoolAggregates {
    /// Учеников: people of the journal with the student role (live records)
    pub students: u64,
    /// Учителей (сотрудников): people of the journal with the staff role
    pub staff: u64,
    /// Родителей: the guardians of the source that lists the most; `None`: no source lists any
    pub guardians: Option<u64>,
    /// Whether a source tells who reads the journal (user activity or acknowledgement records)
    pub reading_told: bool,
    /// One per span of the request, in its order.
    pub spans: Vec<SpanAggregates>,
}

/// What the store counted for one school over one span.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanAggregates {
    /// Уроков проведено: held lessons whose day is in the span
    pub lessons: u64,
    /// Of those, with a topic that is not blank
    pub with_topic: u64,
    /// Of those, with at least one homework record
    pub with_homework: u64,
    /// Отметок: marks of those lessons
    pub marks: u64,
    /// Marks with an entry time, when the request sets a deadline
    pub marks_judged: u64,
    /// Of those, entered by the deadline
    pub marks_on_time: u64,
    /// (student, subject) pairs: active enrollments of a class or group that had a held
    /// lesson of the subject in the span
    pub student_subjects: u64,
    /// Guardians with user activity or an acknowledgement on a day of the span
    pub guardians_reading: u64,
    /// Findings of monitoring about the span (a day in it; without a day, open at some time
    /// of it), by rule
    pub findings: BTreeMap<String, u64>,
}

/// The parameters of the statement: `schools` (school, journal, due, findings) and
/// `spans` (school, span, day_from, day_to) as JSON arrays, and every source with its school.
/// A span's days already counted by an earlier span of the school are cut out, so each day
/// of a school falls in at most one piece (a lesson counts once, in the first span).
pub(crate) struct Params {
    pub schools: String,
    pub spans: String,
    pub sources: String,
    /// Each school's journal, once
    pub journals: Vec<String>,
}

pub(crate) fn params(requests: &[AggregateRequest]) -> StoreResult<Params> {
    let mut schools = Vec::new();
    let mut spans = Vec::new();
    let mut sources = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let Some(journal) = r.sources.first() else {
            return Err(StoreError::Invalid(format!("aggregates: school {i} of the request names no source")));
        };
        schools
            .push(json!({"school": i, "journal": journal, "due": r.mark_due_seconds, "findings": r.findings_school}));
        for source in &r.sources {
            sources.push(json!({"school": i, "source": source}));
        }
        for (n, piece) in pieces(&r.spans) {
            spans.push(json!({"school": i, "span": n, "day_from": piece.from, "day_to": piece.to}));
        }
    }
    let mut journals: Vec<String> = requests.iter().filter_map(|r| r.sources.first().cloned()).collect();
    journals.sort();
    journals.dedup();
    Ok(Params {
        journals,
        schools: serde_json::Value::Array(schools).to_string(),
        spans: serde_json::Value::Array(spans).to_string(),
        sources: serde_json::Value::Array(sources).to_string(),
    })
}

/// Each span minus the days of the spans before it, as disjoint pieces with the span's index.
fn pieces(spans: &[DateRange]) -> Vec<(usize, DateRange)> {
    let mut out: Vec<(usize, DateRange)> = Vec::new();
    for (n, span) in spans.iter().enumerate() {
        if span.from > span.to {
            continue;
        }
        let mut left = vec![*span];
        for (_, taken) in &out {
            left = left
                .into_iter()
                .flat_map(|p| {
                    let mut keep = Vec::new();
                    if taken.to < p.from || p.to < taken.from {
                        keep.push(p);
                    } else {
                        if p.from < taken.from {
                            keep.push(DateRange::new(p.from, taken.from.pred_opt().expect("a day before")));
                        }
                        if taken.to < p.to {
                            keep.push(DateRange::new(taken.to.succ_opt().expect("a day after"), p.to));
                        }
                    }
                    keep
                })
                .collect();
        }
        out.extend(left.into_iter().map(|p| (n, p)));
    }
    out
}

/// A row of the statement: what is counted, the school, the span (for the counts per
/// span), a key (the rule of a finding, the source of a guardian count), the count.
pub(crate) type Row = (String, i64, Option<i64>, Option<String>, i64);

/// Puts the statement's rows together, one [`SchoolAggregates`] per request.
pub(crate) fn assemble(requests: &[AggregateRequest], rows: Vec<Row>) -> StoreResult<Vec<SchoolAggregates>> {
    let mut out: Vec<SchoolAggregates> = requests
        .iter()
        .map(|r| SchoolAggregates { spans: vec![SpanAggregates::default(); r.spans.len()], ..Default::default() })
        .collect();
    for (what, school, span, key, n) in rows {
        let bad = || StoreError::Invalid(format!("aggregates: a row «{what}» of school {school} span {span:?}"));
        let s = out.get_mut(usize::try_from(school).map_err(|_| bad())?).ok_or_else(bad)?;
        let n = n.max(0) as u64;
        match what.as_str() {
            "students" => s.students = n,
            "staff" => s.staff = n,
            "guardians" => s.guardians = Some(s.guardians.unwrap_or(0).max(n)),
            "reading_told" => s.reading_told = n > 0,
            _ => {
                let i = span.and_then(|i| usize::try_from(i).ok()).ok_or_else(bad)?;
                let f = s.spans.get_mut(i).ok_or_else(bad)?;
                match what.as_str() {
                    "lessons" => f.lessons = n,
                    "with_topic" => f.with_topic = n,
                    "with_homework" => f.with_homework = n,
                    "marks" => f.marks = n,
                    "marks_judged" => f.marks_judged = n,
                    "marks_on_time" => f.marks_on_time = n,
                    "student_subjects" => f.student_subjects = n,
                    "guardians_reading" => f.guardians_reading = n,
                    "findings" => {
                        *f.findings.entry(key.ok_or_else(bad)?).or_default() += n;
                    }
                    _ => return Err(bad()),
                }
            }
        }
    }
    Ok(out)
}

/// Characters a topic may consist of and still be blank (what `str::trim` removes, for the
/// characters a journal puts there: spaces, tabs, line breaks, no-break spaces).
pub(crate) const BLANK: &str = " \t\n\r\u{0b}\u{0c}\u{a0}";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_later_span_loses_the_days_of_an_earlier_one() {
        let spans = [
            DateRange::new(d("2026-11-05"), d("2026-12-28")),
            DateRange::new(d("2026-09-01"), d("2026-11-10")),
            DateRange::new(d("2026-10-01"), d("2026-12-31")),
        ];
        assert_eq!(
            pieces(&spans),
            vec![
                (0, spans[0]),
                (1, DateRange::new(d("2026-09-01"), d("2026-11-04"))),
                (2, DateRange::new(d("2026-12-29"), d("2026-12-31"))),
            ]
        );
    }
}
