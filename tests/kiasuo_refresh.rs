//! КИАСУО's refresh token rotates, and a refresh the source may have carried out must
//! complete and be written whatever happens to the rest of the run. Each test stops a
//! refresh at the source (the emulator's `hold?mode=refresh-answer`: rotated, not yet
//! answered), does something to the run, lets the answer go, and then checks that the token
//! file holds the refresh token the source accepts now and that the next run succeeds.
//! Ordered by events (the emulator's stats), never by sleeping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ejgate::store::{RunStatus, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions};
use ejgate_kiasuo::acceptance::{KiasuoSystem, REFRESH};
use ejgate_kiasuo::emulator::{FailureMode, Hold, RefreshHold};
use ejgate_kiasuo::{KiasuoConfig, KiasuoConnector};
use ejgate_sdk::acceptance::EmulatedSystem;
use ejgate_sdk::client::{ErrorKind, SourceError};
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::synth::{SynthConfig, World};

fn world() -> World {
    let mut config = SynthConfig::small(3);
    config.students_per_class = 2;
    config.simulate_until = chrono::NaiveDate::from_ymd_opt(2025, 10, 3).unwrap();
    World::generate(config)
}

/// Polls `done` until it holds (a generous deadline).
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn user(conn: &KiasuoConnector) -> Result<(), SourceError> {
    conn.client().get_json::<serde_json::Value>("data", "diary/api/user", &[("id", "0".to_string())]).await.map(|_| ())
}

/// A connector with its first access token already used (as in the middle of a run).
async fn connected(config: KiasuoConfig) -> Arc<KiasuoConnector> {
    let conn = Arc::new(KiasuoConnector::new(config).unwrap());
    user(&conn).await.expect("the first request authenticates");
    conn
}

/// The token the source accepts now is the one in the file, and a new run (a new connector
/// reading the file) syncs the whole ground truth.
async fn the_next_run_succeeds(system: &KiasuoSystem) {
    let current = system.emulator.state().current_refresh_token();
    assert_eq!(current, Some(system.persisted_refresh()), "the file holds the refresh token in force");
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("next.db").display())).await.unwrap();
    let options = SyncOptions { mode: SyncMode::Full, ..SyncOptions::default() };
    let report = run_sync(&store, system.connector().unwrap(), &options).await.unwrap();
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let expected = system.emulator.world().read(ejgate_kiasuo::truth::expected_counts);
    assert_eq!(store.live_counts(None).await.unwrap(), expected);
    assert_eq!(system.emulator.state().current_refresh_token(), Some(system.persisted_refresh()));
}

/// Makes the next request's access token be refused once (the client refreshes), with the
/// refresh held at the source after the rotation; returns the rotated token once the
/// refresh is held.
async fn start_a_held_refresh(
    system: &KiasuoSystem,
    conn: &Arc<KiasuoConnector>,
) -> (tokio::task::JoinHandle<Result<(), SourceError>>, String) {
    let state = system.emulator.state();
    state.set_refresh_hold(RefreshHold::Answer);
    state.set_failure(Some(FailureMode::Expired), Some(1));
    let asked = tokio::spawn({
        let conn = conn.clone();
        async move { user(&conn).await }
    });
    wait_until("a refresh held after the rotation", || state.stats().refresh_held_now == 1).await;
    let rotated = state.current_refresh_token().expect("a live session");
    assert_ne!(rotated, system.persisted_refresh(), "the source rotated; the file does not hold the new token yet");
    (asked, rotated)
}

#[tokio::test]
async fn another_request_failing_while_a_refresh_is_in_flight_loses_nothing() {
    let system = KiasuoSystem::start_with(world(), |_| {}).await.unwrap();
    let conn = connected(system.config()).await;
    let (asked, rotated) = start_a_held_refresh(&system, &conn).await;
    let state = system.emulator.state();

    // Another request of the run fails for good (its access token is still valid, so it
    // does not wait for the refresh): the run fails and drops the request that asked for
    // the refresh.
    state.set_failure(Some(FailureMode::Html502), None);
    let other = user(&conn).await.expect_err("the source keeps answering 502");
    assert_eq!(other.kind, ErrorKind::Server, "{other}");
    asked.abort();
    assert!(asked.await.unwrap_err().is_cancelled());
    drop(conn);

    // The source answers at last: the refresh reads the answer and writes the token.
    state.set_failure(None, None);
    state.set_refresh_hold(RefreshHold::Off);
    wait_until("the rotated token written", || system.persisted_refresh() == rotated).await;
    the_next_run_succeeds(&system).await;
}

#[tokio::test]
async fn a_run_cancelled_in_the_middle_of_a_refresh_loses_nothing() {
    let system = KiasuoSystem::start_with(world(), |_| {}).await.unwrap();
    let state = system.emulator.state();
    state.set_refresh_hold(RefreshHold::Answer);
    let connector = system.connector().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cancelled.db").display());
    let run = tokio::spawn(async move {
        let store = SqliteStore::open(&url).await.unwrap();
        run_sync(&store, connector, &SyncOptions { mode: SyncMode::Full, ..SyncOptions::default() }).await
    });
    wait_until("the run's first refresh held", || state.stats().refresh_held_now == 1).await;
    let rotated = state.current_refresh_token().unwrap();
    assert_ne!(rotated, REFRESH);
    // The run is cancelled: its future (and the connector with it) is dropped.
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    state.set_refresh_hold(RefreshHold::Off);
    wait_until("the rotated token written", || system.persisted_refresh() == rotated).await;
    the_next_run_succeeds(&system).await;
}

#[tokio::test]
async fn a_refresh_answer_slower_than_a_request_timeout_is_still_read() {
    let system = KiasuoSystem::start_with(world(), |_| {}).await.unwrap();
    let mut config = system.config();
    config.timeout = Duration::from_secs(1);
    config.refresh_timeout = Duration::from_secs(120);
    let conn = connected(config).await;
    let (asked, rotated) = start_a_held_refresh(&system, &conn).await;
    let state = system.emulator.state();

    // While the refresh waits for its answer, a data request times out: more than a
    // request's timeout has passed.
    state.set_hold(Hold::All);
    let other = user(&conn).await.expect_err("held until it times out");
    assert_eq!(other.kind, ErrorKind::Timeout, "{other}");
    state.set_hold(Hold::Off);

    state.set_refresh_hold(RefreshHold::Off);
    asked.await.unwrap().expect("the refresh's answer was read, and the request went through with the new token");
    assert_eq!(system.persisted_refresh(), rotated);
    assert_eq!(state.stats().refresh_requests, 2, "one refresh at the start, one now: never re-sent");
    drop(conn);
    the_next_run_succeeds(&system).await;
}

#[tokio::test]
async fn concurrent_refused_requests_share_one_refresh() {
    let system = KiasuoSystem::start_with(world(), |_| {}).await.unwrap();
    let conn = connected(system.config()).await;
    let state = system.emulator.state();
    let before = state.stats();
    state.set_refresh_hold(RefreshHold::Before);
    state.set_failure(Some(FailureMode::Expired), Some(4));
    let asked: Vec<_> = (0..4)
        .map(|_| {
            let conn = conn.clone();
            tokio::spawn(async move { user(&conn).await })
        })
        .collect();
    wait_until("four 401s and a refresh held", || {
        let s = state.stats();
        s.failed - before.failed == 4 && s.refresh_held_now == 1
    })
    .await;
    state.set_refresh_hold(RefreshHold::Off);
    for a in asked {
        a.await.unwrap().expect("renewed and retried");
    }
    let after = state.stats();
    assert_eq!(after.refresh_requests - before.refresh_requests, 1, "one refresh for four 401s: {after:?}");
    assert_eq!(state.current_refresh_token(), Some(system.persisted_refresh()));
}

/// The residual risk, shown: an answer that never arrives within `refresh_timeout` leaves
/// the source with a token ejgate never received. ejgate does not present the old token
/// again in that run, says so, and the next run (which tries the stored one once) asks a
/// person to sign in.
#[tokio::test]
async fn a_refresh_answer_that_never_comes_is_reported_and_the_old_token_is_not_sent_again() {
    let system = KiasuoSystem::start_with(world(), |_| {}).await.unwrap();
    let mut config = system.config();
    config.timeout = Duration::from_secs(1);
    config.refresh_timeout = Duration::from_secs(2);
    let conn = connected(config).await;
    let state = system.emulator.state();
    let stored = system.persisted_refresh();
    state.set_refresh_hold(RefreshHold::Answer);
    state.set_failure(Some(FailureMode::Expired), Some(1));
    let err = user(&conn).await.expect_err("no refresh answer within 2 s");
    let text = err.to_string();
    assert!(text.contains("may have rotated the refresh token"), "{text}");
    assert!(text.contains("Госуслуги"), "{text}");
    let requests = state.stats().refresh_requests;

    state.set_failure(Some(FailureMode::Expired), Some(1));
    let again = user(&conn).await.expect_err("the old token is not presented again");
    assert!(again.to_string().contains("may have rotated"), "{again}");
    assert_eq!(state.stats().refresh_requests, requests, "no second refresh with the old token");
    state.set_failure(None, None);
    state.set_refresh_hold(RefreshHold::Off);
    drop(conn);

    assert_eq!(system.persisted_refresh(), stored, "the file still holds the token ejgate last received");
    assert_ne!(state.current_refresh_token(), Some(stored), "the source rotated it: the residual risk");
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("next.db").display())).await.unwrap();
    let report = run_sync(&store, system.connector().unwrap(), &SyncOptions::default()).await.unwrap();
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.unwrap_or_default();
    assert!(error.contains("refresh token was refused") && error.contains("Госуслуги"), "{error}");
}
