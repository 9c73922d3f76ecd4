//! Findings that live (нарушения до устранения): each run's findings against the stored
//! ones. A new finding is written; one seen again unchanged writes nothing; one whose words
//! changed is rewritten; one fixed earlier and seen again is reopened; a stored open finding
//! the run looked for and no longer sees is marked fixed.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::engine::{Finding, Report, EVALUATED};
use crate::store::{Store, StoreResult, StoredFinding};

/// What one run changed in the stored findings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub new: usize,
    pub changed: usize,
    pub reopened: usize,
    pub fixed: usize,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        *self == Changes::default()
    }
}

fn same(stored: &StoredFinding, f: &Finding) -> bool {
    stored.rule == f.rule
        && stored.clause == f.clause
        && stored.severity == f.severity.as_str()
        && stored.teacher == f.teacher
        && stored.class == f.class
        && stored.subject == f.subject
        && stored.date == f.date
        && stored.lesson == f.lesson
        && stored.mark == f.mark
        && stored.what == f.what
        && stored.evidence == f.evidence
}

/// Whether the run of `report` looked where `stored` is: its rule was evaluated and its day
/// (if it has one) is inside the run's range. Only those can be found fixed.
fn looked_at(report: &Report, stored: &StoredFinding) -> bool {
    EVALUATED.contains(&stored.rule.as_str())
        && !report.unchecked.iter().any(|u| u.whole && u.rule == stored.rule)
        && stored.date.is_none_or(|d| report.from <= d && d <= report.to)
}

/// Records the report's findings for its school at `now`.
pub async fn record(store: &dyn Store, report: &Report, now: DateTime<Utc>) -> StoreResult<Changes> {
    // the stores keep microseconds
    let now = chrono::SubsecRound::trunc_subsecs(now, 6);
    let stored: std::collections::HashMap<String, StoredFinding> =
        store.findings(&report.school).await?.into_iter().map(|f| (f.key.clone(), f)).collect();
    let mut changes = Changes::default();
    let mut upserts = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in &report.findings {
        seen.insert(f.key.as_str());
        let first_detected = match stored.get(&f.key) {
            Some(s) if s.fixed_at.is_none() && same(s, f) => continue,
            Some(s) if s.fixed_at.is_some() => {
                changes.reopened += 1;
                s.first_detected
            }
            Some(s) => {
                changes.changed += 1;
                s.first_detected
            }
            None => {
                changes.new += 1;
                now
            }
        };
        upserts.push(StoredFinding {
            key: f.key.clone(),
            rule: f.rule.clone(),
            clause: f.clause.clone(),
            severity: f.severity.as_str().to_string(),
            teacher: f.teacher.clone(),
            class: f.class.clone(),
            subject: f.subject.clone(),
            date: f.date,
            lesson: f.lesson,
            mark: f.mark,
            what: f.what.clone(),
            evidence: f.evidence.clone(),
            first_detected,
            last_detected: now,
            fixed_at: None,
        });
    }
    let fixed: Vec<(String, DateTime<Utc>)> = stored
        .values()
        .filter(|s| s.fixed_at.is_none() && !seen.contains(s.key.as_str()) && looked_at(report, s))
        .map(|s| (s.key.clone(), now))
        .collect();
    changes.fixed = fixed.len();
    store.write_findings(&report.school, &upserts, &fixed).await?;
    Ok(changes)
}
