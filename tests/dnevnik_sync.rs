//! End to end: the Dnevnik emulator serving the synthetic school → the connector → the
//! sync engine → SQLite, checked against the generator's ground truth.

mod common;

use std::collections::BTreeSet;

use common::{Harness, TOKEN};
use ejgate::store::{ChangeOp, RunStatus};
use ejgate_dnevnik::emulator::FailureMode;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::synth::{NetOp, SynthConfig};

#[tokio::test]
async fn a_full_sync_reproduces_the_ground_truth_and_a_resync_writes_nothing() {
    let h = Harness::new(SynthConfig::small(7)).await;
    let first = h.sync(SyncMode::Full).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    let expected = h.expected();
    assert!(expected.values().all(|n| *n > 0), "every exposed entity has records: {expected:?}");
    assert_eq!(h.live_counts().await, expected);

    for mode in [SyncMode::Incremental, SyncMode::Full] {
        let again = h.sync(mode).await;
        assert_eq!(again.status, RunStatus::Succeeded, "{:?}", again.error);
        assert!(again.stats.records_read > 0);
        assert_eq!((again.stats.inserted, again.stats.updated, again.stats.deleted), (0, 0, 0), "{mode}");
        assert!(h.store.changes_of_run(again.run).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn after_the_school_lives_on_the_change_log_holds_exactly_the_generators_changes() {
    let h = Harness::new(SynthConfig::small(11)).await;
    assert_eq!(h.sync(SyncMode::Full).await.status, RunStatus::Succeeded);
    let world = h.emulator.world();
    let before = world.read(|w| w.last_seq());
    world.advance(6);
    let expected: BTreeSet<(String, String, &str)> = world.read(|w| {
        w.net_changes_since(before)
            .into_iter()
            .filter(|c| ejgate_dnevnik::truth::is_exposed(w, c.kind, &c.key))
            .map(|c| {
                let op = match c.op {
                    NetOp::Insert => "insert",
                    NetOp::Update => "update",
                    NetOp::Delete => "delete",
                };
                (c.kind.as_str().to_string(), c.key, op)
            })
            .collect()
    });
    assert!(expected.len() > 50, "six school days bring changes: {}", expected.len());
    assert!(expected.iter().any(|c| c.2 == "delete"), "the generator deletes unsatisfactory marks");

    let report = h.sync(SyncMode::Incremental).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let logged: BTreeSet<(String, String, &str)> = h
        .store
        .changes_of_run(report.run)
        .await
        .unwrap()
        .into_iter()
        .map(|c| {
            let op = match c.op {
                ChangeOp::Insert => "insert",
                ChangeOp::Update | ChangeOp::KeyChange => "update",
                ChangeOp::Delete => "delete",
            };
            (c.kind.as_str().to_string(), c.source_id, op)
        })
        .collect();
    let missing: Vec<_> = expected.difference(&logged).take(10).collect();
    let extra: Vec<_> = logged.difference(&expected).take(10).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}\nextra {extra:?}");
    assert_eq!(h.live_counts().await, h.expected());
}

#[tokio::test]
async fn a_broken_answer_fails_the_run_with_the_source_and_endpoint_and_the_next_run_completes() {
    let h = Harness::new(SynthConfig::small(3)).await;
    assert_eq!(h.sync(SyncMode::Full).await.status, RunStatus::Succeeded);
    let committed = h.live_counts().await;
    let cases = [
        (FailureMode::Malformed, "not the JSON"),
        (FailureMode::Html502, "HTML page (HTTP 502)"),
        (FailureMode::Truncated, "cut off"),
        (FailureMode::Unauthorized, "invalidToken"),
    ];
    for (mode, what) in cases {
        h.emulator.world().advance(1);
        h.emulator.state().set_failure(Some(mode), None);
        let failed = h.sync(SyncMode::Incremental).await;
        assert_eq!(failed.status, RunStatus::Failed, "{mode:?}");
        let error = failed.error.clone().unwrap();
        assert!(error.contains("source «dnevnik-test» (dnevnik)"), "{mode:?}: {error}");
        assert!(error.contains("GET users/me/context"), "{mode:?} names the endpoint: {error}");
        assert!(error.contains(what), "{mode:?}: {error}");
        assert!(!error.contains(TOKEN));
        if mode == FailureMode::Unauthorized {
            assert!(error.contains("Госуслуги"), "tells the operator what to renew: {error}");
        }
        let runs = h.store.runs(1).await.unwrap();
        assert_eq!(runs[0].status, RunStatus::Failed);
        assert_eq!(runs[0].error.as_deref(), Some(error.as_str()));
        let after = h.live_counts().await;
        for (kind, n) in &committed {
            assert!(after.get(kind).copied().unwrap_or(0) >= *n - (*n / 20), "{mode:?}: {kind} lost records");
        }

        h.emulator.state().set_failure(None, None);
        let next = h.sync(SyncMode::Incremental).await;
        assert_eq!(next.status, RunStatus::Succeeded, "{mode:?}: {:?}", next.error);
        assert_eq!(h.live_counts().await, h.expected(), "{mode:?}");
    }
}

#[tokio::test]
async fn a_failure_in_the_middle_keeps_the_committed_batches_and_their_cursors() {
    let h = Harness::new(SynthConfig::small(5)).await;
    // Let planning and a few chunks through, then break every answer.
    let connector = h.connector(|c| c.concurrency = 1);
    let store = h.store.as_ref();
    let state = h.emulator.state().clone();
    let watcher = tokio::spawn(async move {
        loop {
            if state.stats().requests >= 80 {
                state.set_failure(Some(FailureMode::Html502), None);
                break;
            }
            tokio::task::yield_now().await;
        }
    });
    let report = ejgate::sync::run_sync(
        store,
        connector,
        &ejgate::sync::SyncOptions { mode: SyncMode::Full, concurrency: 1, ..Default::default() },
    )
    .await
    .unwrap();
    watcher.await.unwrap();
    assert_eq!(report.status, RunStatus::Failed);
    assert!(report.error.as_ref().unwrap().contains("HTML page"), "{:?}", report.error);
    assert!(report.stats.inserted > 0, "batches before the failure were committed");
    let cursors = h.store.cursors("dnevnik-test").await.unwrap();
    assert!(!cursors.is_empty(), "committed batches moved their cursors");
    let written = h.store.changes_since(0, u32::MAX).await.unwrap().len() as u64;
    assert_eq!(written, report.stats.inserted, "exactly the committed batches are in the change log");

    h.emulator.state().set_failure(None, None);
    let next = h.sync(SyncMode::Incremental).await;
    assert_eq!(next.status, RunStatus::Succeeded, "{:?}", next.error);
    assert_eq!(h.live_counts().await, h.expected());
}

#[tokio::test]
async fn the_request_limit_is_absorbed_without_an_error_for_the_user() {
    // The client is not told the limit here, so it runs into it and must back off.
    let h = Harness::with_limit(SynthConfig::small(9), Some(60)).await;
    let report = h.sync_with(SyncMode::Full, |c| c.concurrency = 4).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert!(h.emulator.stats().limited > 0, "the emulator's limit was reached");
    assert_eq!(h.live_counts().await, h.expected());
}

#[tokio::test]
async fn ids_above_two_to_the_53_survive_exactly() {
    let h = Harness::new(SynthConfig::small(2)).await;
    assert_eq!(h.sync(SyncMode::Full).await.status, RunStatus::Succeeded);
    let marks = h.store.records(ejgate_sdk::model::EntityKind::Mark, None, false).await.unwrap();
    let world_ids: BTreeSet<String> =
        h.emulator.world().read(|w| w.schools.iter().flat_map(|s| s.marks.keys().map(|k| k.to_string())).collect());
    let stored: BTreeSet<String> = marks.iter().map(|m| m.source_id.clone()).collect();
    assert!(world_ids.iter().all(|id| id.parse::<u64>().unwrap() > (1u64 << 53)));
    assert_eq!(stored, world_ids);
}
