//! A night's sync inside the source's request budget (issue #16), on the Dnevnik emulator:
//! request ranges the source refuses are halved, a run says up front how many requests it
//! plans, and a run over its `max_requests` reads the reference lists and the most recent
//! journal, leaves the rest for a later run and says which.

mod common;

use std::sync::Arc;

use chrono::NaiveDate;
use common::Harness;
use ejgate::store::RunStatus;
use ejgate::sync::{run_sync, Estimate, Progress, SyncOptions};
use ejgate_dnevnik::emulator::EmulatorOptions;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{SynthConfig, World};

#[tokio::test]
async fn a_range_the_source_refuses_is_asked_again_in_halves_and_the_year_is_read_whole() {
    // The connector asks for the whole year (its default); this source takes 40 days at most.
    let mut options = EmulatorOptions::new(common::TOKEN);
    options.max_range_days = Some(40);
    let h = Harness::with_options(World::generate(SynthConfig::small(3)), options).await;
    let report = h.sync(SyncMode::Full).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(h.live_counts().await, h.expected(), "the store holds the ground truth");
    // Refused ranges are counted: more requests than the 3 per group of one range.
    let groups = h.emulator.world().read(|w| (w.schools[0].classes.len() + w.schools[0].groups.len()) as u64);
    assert!(report.stats.requests > 3 * groups * 2, "{} requests for {groups} groups", report.stats.requests);
    // Once halved, the length is kept: each group's lists are not refused one by one
    // (the year of 6 months needs ranges of at most 40 days: ≥ 5 per list).
    assert!(report.stats.requests < 3 * groups * 12, "{} requests for {groups} groups", report.stats.requests);
}

/// Keeps what the run said up front.
#[derive(Default)]
struct Said(std::sync::Mutex<Option<Estimate>>);

impl Progress for Said {
    fn estimated(&self, estimate: &Estimate) {
        *self.0.lock().unwrap() = Some(estimate.clone());
    }
}

#[tokio::test]
async fn a_run_over_its_budget_reads_the_most_recent_journal_and_says_what_it_leaves() {
    let h = Harness::new(SynthConfig::small(4)).await;
    let (groups, last_day) =
        h.emulator.world().read(|w| (w.schools[0].classes.len() + w.schools[0].groups.len(), w.today));
    // Month pieces: the year (September to 6 March) is 7 pieces a group, 3 requests each.
    let connector = h.connector(|c| c.chunk_days = 31);
    let said = Arc::new(Said::default());
    let budget = 3 * 2 * groups as u64 + 120;
    let options = SyncOptions {
        mode: SyncMode::Full,
        max_requests: Some(budget),
        requests_per_second: std::num::NonZeroU32::new(3),
        progress: said.clone(),
        ..SyncOptions::default()
    };
    let report = run_sync(h.store.as_ref(), connector, &options).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let estimate = said.0.lock().unwrap().clone().expect("the run said what it plans before fetching");
    // Said up front, and kept: the run stays within its budget.
    assert!(estimate.requests() <= budget && report.stats.requests <= budget, "{estimate:?} {}", report.stats.requests);
    assert_eq!(report.stats.planned_requests, estimate.requests());
    let secs = estimate.duration.expect("a duration at 3 requests/s").as_secs_f64();
    assert!((secs - estimate.requests() as f64 / 3.0).abs() < 1.0, "{secs}");
    // What is left is the older journal, named.
    let journal = estimate.deferred.iter().find(|d| d.0 == "journal").expect("journal chunks are left");
    assert!(journal.1 >= groups as u64, "{journal:?}");
    assert!(report.stats.deferred_chunks > 0);
    assert!(report.stats.warnings.iter().any(|w| w.contains("left for a later run") && w.contains("journal")));
    // The most recent month of every group is read, the first month of none.
    let lessons = h.store.records(EntityKind::Lesson, None, false).await.unwrap();
    let stored: std::collections::BTreeSet<String> = lessons.iter().map(|l| l.source_id.clone()).collect();
    let first_month_end = NaiveDate::from_ymd_opt(2025, 10, 1).unwrap();
    let recent_from = last_day - chrono::Days::new(20);
    let (recent, early): (Vec<String>, Vec<String>) = h.emulator.world().read(|w| {
        let s = &w.schools[0];
        (
            s.lessons.values().filter(|l| l.date >= recent_from).map(|l| l.id.to_string()).collect(),
            s.lessons.values().filter(|l| l.date <= first_month_end).map(|l| l.id.to_string()).collect(),
        )
    });
    assert!(!recent.is_empty() && !early.is_empty());
    assert!(recent.iter().all(|id| stored.contains(id)), "every lesson of the last weeks is read");
    assert!(early.iter().all(|id| !stored.contains(id)), "the first month is left for later");
    // The reference lists are read whatever the budget.
    assert!(!h.store.records(EntityKind::Person, None, false).await.unwrap().is_empty());
}
