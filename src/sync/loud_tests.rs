//! A run never succeeds with data missing: a connector that panics, and records a connector
//! could not read (issue #14, item 2).

use std::sync::Arc;

use async_trait::async_trait;
use ejgate_sdk::client::SourceError;
use ejgate_sdk::connector::{Batch, Chunk, Connector, Plan, PlanContext, SyncMode};
use ejgate_sdk::model::{Entity, EntityKind, IdSpace, Record, Subject};
use ejgate_sdk::read::Skipped;

use super::{run_sync, SkipLimit, SyncOptions};
use crate::store::{testing, RunErrorKind, RunStatus, Store};

/// What the test connector does with one chunk.
#[derive(Clone)]
enum Step {
    /// `records` subjects and `skipped` unreadable records.
    Read {
        records: usize,
        skipped: usize,
    },
    Panic,
}

/// A connector over a list of steps: one chunk per step, in stream `stream`.
struct Scripted {
    stream: &'static str,
    steps: Vec<Step>,
    panic_in_plan: bool,
}

#[async_trait]
impl Connector for Scripted {
    fn instance(&self) -> &str {
        "scripted"
    }
    fn system(&self) -> &'static str {
        "test"
    }
    async fn plan(&self, _: &PlanContext) -> Result<Plan, SourceError> {
        if self.panic_in_plan {
            panic!("the school list ended early");
        }
        let chunks = (0..self.steps.len())
            .map(|i| Chunk {
                stream: self.stream.into(),
                scope: format!("chunk:{i}"),
                params: serde_json::json!(i),
                cursor_after: Some(format!("done {i}")),
            })
            .collect();
        Ok(Plan { source_now: None, chunks })
    }
    async fn fetch(&self, chunk: &Chunk) -> Result<Batch, SourceError> {
        let i = chunk.params.as_u64().unwrap() as usize;
        let ids = IdSpace::new("scripted");
        match self.steps[i] {
            Step::Panic => {
                let date = "1 сентября 2025";
                // The bug the issue found: a byte slice through a Cyrillic character.
                let _ = &date[..3];
                unreachable!()
            }
            Step::Read { records, skipped } => Ok(Batch {
                records: (0..records)
                    .map(|n| {
                        let source_id = format!("{i}-{n}");
                        Record {
                            id: ids.id(EntityKind::Subject, &source_id),
                            source_id,
                            scope: chunk.scope.clone(),
                            date: None,
                            source_updated_at: None,
                            entity: Entity::Subject(Subject {
                                organization: None,
                                name: format!("Предмет {n}"),
                                normalized_name: format!("предмет {n}"),
                                knowledge_area: None,
                            }),
                        }
                    })
                    .collect(),
                skipped: (0..skipped)
                    .map(|n| {
                        Skipped::new(
                            &format!("GET subjects/{i}"),
                            "name",
                            "invalid type: integer `7`, expected a string",
                            &format!(r#"{{"id": {n}, "name": 7}}"#),
                        )
                    })
                    .collect(),
                requests: 1,
                ..Batch::default()
            }),
        }
    }
}

async fn sync(store: &dyn Store, connector: Scripted) -> super::SyncReport {
    // One chunk at a time: what comes before the panicking chunk is written before it.
    let options = SyncOptions { mode: SyncMode::Full, concurrency: 1, ..SyncOptions::default() };
    run_sync(store, Arc::new(connector), &options).await.unwrap()
}

#[tokio::test]
async fn a_panic_in_a_fetch_fails_the_run_and_keeps_what_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await;
    let steps = vec![
        Step::Read { records: 3, skipped: 0 },
        Step::Read { records: 2, skipped: 0 },
        Step::Panic,
        Step::Read { records: 4, skipped: 0 },
    ];
    let report = sync(&store, Scripted { stream: "subjects", steps, panic_in_plan: false }).await;

    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.error_kind, Some(RunErrorKind::Internal));
    let error = report.error.unwrap();
    assert!(error.contains("panicked fetching subjects chunk:2"), "{error}");
    assert!(error.contains("byte index 3 is not a char boundary"), "{error}");
    // The two chunks before the panic were committed, with their cursors; nothing after.
    assert_eq!(store.live_counts(Some("scripted")).await.unwrap().get(&EntityKind::Subject), Some(&5));
    let cursors = store.cursors("scripted").await.unwrap();
    assert_eq!(cursors.len(), 2, "{cursors:?}");
    assert!(cursors.contains_key(&("subjects".to_string(), "chunk:1".to_string())));
    let runs = store.runs(1).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Failed);
}

#[tokio::test]
async fn a_panic_while_planning_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await;
    let report = sync(&store, Scripted { stream: "subjects", steps: vec![], panic_in_plan: true }).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.error_kind, Some(RunErrorKind::Internal));
    let error = report.error.unwrap();
    assert!(error.contains("panicked while planning") && error.contains("the school list ended early"), "{error}");
}

#[tokio::test]
async fn a_few_unreadable_records_are_warnings_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await;
    // 300 unreadable of 6,300 (4.8 %): under the 5 % default; more than the warnings cap.
    let steps = vec![Step::Read { records: 3_000, skipped: 100 }, Step::Read { records: 3_000, skipped: 200 }];
    let report = sync(&store, Scripted { stream: "subjects", steps, panic_in_plan: false }).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(report.stats.skipped, 300);
    assert_eq!(report.stats.skipped_by_stream.get("subjects"), Some(&300));
    assert_eq!(report.stats.warnings.len(), 200, "the warnings stay capped");
    assert!(report.stats.warnings[0].starts_with("GET subjects/0: a record was skipped: field `name`"));
    let stored = &store.runs(1).await.unwrap()[0];
    assert_eq!((stored.stats.skipped, stored.status), (300, RunStatus::Succeeded));

    // One bad record of three never fails a run (a third is far above the share).
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await;
    let steps = vec![Step::Read { records: 2, skipped: 1 }];
    let report = sync(&store, Scripted { stream: "subjects", steps, panic_in_plan: false }).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(report.stats.skipped, 1);
}

#[tokio::test]
async fn a_stream_past_its_skipped_share_fails_the_run_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await;
    // 6 unreadable of 16 over two chunks (37.5 %).
    let steps = vec![Step::Read { records: 10, skipped: 0 }, Step::Read { records: 0, skipped: 6 }];
    let report = sync(&store, Scripted { stream: "marks", steps, panic_in_plan: false }).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.error_kind, Some(RunErrorKind::Malformed));
    let error = report.error.unwrap();
    assert!(error.contains("stream «marks»: 6 of 16 records (37.5 %) could not be read"), "{error}");
    assert!(error.contains("the 5.0 % allowed"), "{error}");
    assert!(error.contains("the first: GET subjects/1: a record was skipped: field `name`"), "{error}");
    // What was read is written all the same.
    assert_eq!(store.live_counts(Some("scripted")).await.unwrap().get(&EntityKind::Subject), Some(&10));
}

#[test]
fn the_skip_limit_needs_both_the_share_and_the_count() {
    let limit = SkipLimit::default();
    assert!(!limit.exceeded(2, 1), "one of three");
    assert!(!limit.exceeded(0, 4), "four, even if all");
    assert!(limit.exceeded(0, 5));
    assert!(limit.exceeded(95, 6), "6 of 101 is 5.9 %");
    assert!(!limit.exceeded(200, 10), "10 of 210 is 4.8 %");
    assert!(!limit.exceeded(0, 0));
    let strict = SkipLimit { max_share: 0.0, min_count: 1 };
    assert!(strict.exceeded(1_000_000, 1));
}
