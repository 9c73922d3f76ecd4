//! КИАСУО's refresh token rotates: once the source has answered a refresh, the old refresh
//! token is dead. ejgate writes the new one to the token file (atomically, 0600) before it
//! uses the access token that came with it. This test kills a real `ejgate sync` process
//! with SIGKILL in exactly that gap — after the source rotated the refresh token, before
//! the first request with the new access token was answered — and shows that the next run
//! still authenticates, and that it would not had the token not been written.
//!
//! The other points around a refresh are killed too: before the source rotated (the stored
//! token is still the one in force) and after it rotated but before its answer arrived (the
//! residual risk: the new token never reached ejgate; the next run asks for a new sign-in).
//!
//! The gap is made wide by the emulator, not by ejgate: `hold?mode=first-use` keeps the first
//! request carrying a fresh access token open and unanswered, and its stats tell the test
//! when the refresh is done and that request has arrived.

#![cfg(unix)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ejgate::store::{RunStatus, SqliteStore, Store};
use ejgate_kiasuo::emulator::{self, EmulatorOptions, EmulatorStats, RefreshHold};
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{SynthConfig, World};

/// The refresh token the person took from the diary (the emulator's first one).
const ORIGINAL: &str = "9d1e7a3c5b0f42e68a4c1f3b7d9e2a05";

/// `DIR/ejgate.toml` with one КИАСУО source at `base_url` and its refresh token in
/// `DIR/secrets/kiasuo.refresh`, left readable by all (0644) as a careless operator might
/// (and allowed by `allow_readable_token_file`, else the sync refuses the file): the file
/// ejgate writes back must be 0600 all the same.
fn write_config(dir: &Path, base_url: &str, refresh: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    let token = dir.join("secrets/kiasuo.refresh");
    std::fs::write(&token, format!("{refresh}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = dir.join("ejgate.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\nurl = \"sqlite://ejgate.db\"\n\n[[source]]\nname = \"kiasuo\"\nsystem = \"kiasuo\"\nbase_url = \"{base_url}\"\ntoken_file = \"secrets/kiasuo.refresh\"\nallow_readable_token_file = true\n"
        ),
    )
    .unwrap();
    path
}

fn token_file(dir: &Path) -> PathBuf {
    dir.join("secrets/kiasuo.refresh")
}

fn persisted(dir: &Path) -> String {
    std::fs::read_to_string(token_file(dir)).unwrap().trim().to_string()
}

fn ejgate(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ejgate"));
    c.arg("--config").arg(config);
    c
}

/// `ejgate --config CONFIG sync --quiet`, run to its end off the runtime's threads (the
/// emulator answers on them meanwhile).
async fn sync(config: &Path) -> Output {
    let mut c = ejgate(config);
    c.args(["sync", "--quiet"]);
    tokio::task::spawn_blocking(move || c.output().unwrap()).await.unwrap()
}

async fn live_counts(db: &Path) -> BTreeMap<EntityKind, u64> {
    let store = SqliteStore::open(&format!("sqlite://{}", db.display())).await.unwrap();
    store.live_counts(None).await.unwrap()
}

async fn refresh_status(base_url: &str, refresh: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base_url}diary/refresh"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("refresh-token={refresh}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_between_the_refresh_and_the_first_use_of_the_access_token_authenticates_next_time() {
    let mut synth = SynthConfig::small(17);
    synth.students_per_class = 3;
    synth.simulate_until = chrono::NaiveDate::from_ymd_opt(2025, 10, 17).unwrap();
    let world = World::generate(synth);
    let expected = ejgate_kiasuo::truth::expected_counts(&world);
    assert!(expected.get(&EntityKind::Mark).is_some_and(|n| *n > 0), "{expected:?}");
    let emulator = emulator::start(world, EmulatorOptions::new(ORIGINAL), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("emulator starts");
    let base_url = emulator.base_url();
    let state = emulator.state().clone();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &base_url, ORIGINAL);

    // 1. The first request with a freshly refreshed access token will be held, unanswered.
    state.set_hold_first_use(true);
    let stderr = std::fs::File::create(dir.path().join("killed.stderr")).unwrap();
    let mut child =
        ejgate(&config).args(["sync", "--full", "--quiet"]).stdout(Stdio::null()).stderr(stderr).spawn().unwrap();

    // 2. Wait until the source has rotated the refresh token and the first use has arrived.
    let deadline = Instant::now() + Duration::from_secs(120);
    let at_kill: EmulatorStats = loop {
        let stats = state.stats();
        if stats.refreshes >= 1 && stats.held_now >= 1 {
            break stats;
        }
        assert!(child.try_wait().unwrap().is_none(), "the sync ended before it was held: {stats:?}");
        assert!(Instant::now() < deadline, "no refresh and held first use in time: {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(at_kill.refreshes, 1, "{at_kill:?}");
    let rotated = state.current_refresh_token().expect("a live session");
    assert_ne!(rotated, ORIGINAL, "the source rotated the refresh token");

    // 3. SIGKILL, no chance to clean up.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    // The kill landed in the gap: one refresh granted, and every data request the process
    // made was held — none was answered.
    let killed = state.stats();
    assert_eq!(killed.refreshes, 1, "{killed:?}");
    assert!(killed.held >= 1 && killed.requests == killed.held, "no data request was answered: {killed:?}");

    // 4. The file already held the new refresh token when the access token was first used,
    // private, and the original one is dead at the source.
    assert_eq!(persisted(dir.path()), rotated, "the rotated refresh token was persisted before the first use");
    let mode = std::fs::metadata(token_file(dir.path())).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token file is private: {mode:o}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("secrets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "kiasuo.refresh")
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left: {leftovers:?}");
    assert_eq!(refresh_status(&base_url, ORIGINAL).await, 401, "the original refresh token is refused");
    assert_eq!(state.current_refresh_token().as_deref(), Some(rotated.as_str()), "a refused refresh changes nothing");
    let killed_stderr = std::fs::read_to_string(dir.path().join("killed.stderr")).unwrap();
    assert!(!killed_stderr.contains(&rotated) && !killed_stderr.contains(ORIGINAL), "no token in the output");

    // 5. Release the held request (its client is gone) and hold nothing more.
    state.set_hold_first_use(false);

    // 6. Had the token not been persisted, the next run would hold the original, dead one:
    // it fails and tells the operator what to renew. (A second installation with the same
    // source, so that the killed one's directory stays exactly as the kill left it.)
    let stale_dir = tempfile::tempdir().unwrap();
    let stale_config = write_config(stale_dir.path(), &base_url, ORIGINAL);
    let stale = sync(&stale_config).await;
    assert!(!stale.status.success(), "a dead refresh token cannot authenticate");
    let text = String::from_utf8_lossy(&stale.stderr);
    assert!(text.contains("refresh token was refused"), "{text}");
    assert!(text.contains("Госуслуги") && text.contains("secrets/kiasuo.refresh"), "says what to renew: {text}");
    assert!(!text.contains(ORIGINAL) && !text.contains(&rotated), "no token in the error: {text}");
    assert_eq!(persisted(stale_dir.path()), ORIGINAL, "a refused refresh does not touch the file");
    assert_eq!(state.current_refresh_token().as_deref(), Some(rotated.as_str()));

    // 7. The next run of the killed installation, on its file as the kill left it,
    // authenticates and syncs the whole ground truth.
    let before = state.stats();
    let next = sync(&config).await;
    assert!(
        next.status.success(),
        "the next run authenticates with the persisted token:\n{}",
        String::from_utf8_lossy(&next.stderr)
    );
    let after = state.stats();
    assert!(after.refreshes > before.refreshes, "it refreshed with the persisted token: {after:?}");
    assert_eq!(after.refused_refreshes, before.refused_refreshes, "and was never refused: {after:?}");
    assert_eq!(live_counts(&dir.path().join("ejgate.db")).await, expected);
    assert_eq!(state.current_refresh_token(), Some(persisted(dir.path())), "the newest token is on disk again");
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("ejgate.db").display())).await.unwrap();
    assert_eq!(store.runs(1).await.unwrap()[0].status, RunStatus::Succeeded);
    emulator.shutdown().await;
}

/// Starts `ejgate sync --full` against a fresh emulator whose refreshes are held at `hold`,
/// waits until the first refresh is held there, and SIGKILLs the process. Returns the
/// emulator, its base URL, the installation's directory and its configuration.
async fn killed_while_a_refresh_is_held(hold: RefreshHold) -> (emulator::EmulatorHandle, tempfile::TempDir, PathBuf) {
    let mut synth = SynthConfig::small(23);
    synth.students_per_class = 2;
    synth.simulate_until = chrono::NaiveDate::from_ymd_opt(2025, 10, 3).unwrap();
    let emulator =
        emulator::start(World::generate(synth), EmulatorOptions::new(ORIGINAL), SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("emulator starts");
    let dir = tempfile::tempdir().unwrap();
    // The base URL as an operator pastes it from the diary's address bar, with `/diary`.
    let config = write_config(dir.path(), &format!("{}diary", emulator.base_url()), ORIGINAL);
    let state = emulator.state().clone();
    state.set_refresh_hold(hold);
    let mut child = ejgate(&config)
        .args(["sync", "--full", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = state.stats();
        if stats.refresh_held_now >= 1 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the sync ended before its refresh was held: {stats:?}");
        assert!(Instant::now() < deadline, "no held refresh in time: {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(9));
    (emulator, dir, config)
}

/// Lets the held refreshes go: before the rotation they end changing nothing (the killed
/// client's request is as if it never arrived); after it they are answered to nobody.
async fn release(state: &emulator::EmulatorState) {
    state.set_refresh_hold(RefreshHold::Drop);
    let deadline = Instant::now() + Duration::from_secs(60);
    while state.stats().refresh_held_now > 0 {
        assert!(Instant::now() < deadline, "held refreshes never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    state.set_refresh_hold(RefreshHold::Off);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_before_the_source_rotated_keeps_a_token_the_source_accepts() {
    let (emulator, dir, config) = killed_while_a_refresh_is_held(RefreshHold::Before).await;
    let state = emulator.state().clone();
    assert_eq!(state.stats().refreshes, 0, "nothing was rotated");
    assert_eq!(persisted(dir.path()), ORIGINAL);
    assert_eq!(state.current_refresh_token().as_deref(), Some(ORIGINAL), "the stored token is the one in force");
    release(&state).await;
    assert_eq!(state.current_refresh_token().as_deref(), Some(ORIGINAL));
    let next = sync(&config).await;
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
    assert_eq!(state.current_refresh_token(), Some(persisted(dir.path())));
    emulator.shutdown().await;
}

/// The residual risk, shown honestly: killed after the source rotated the refresh token and
/// before its answer arrived, ejgate never learned the new token. The file keeps the last one
/// the source delivered, and the next run says plainly that a person must sign in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_after_the_rotation_and_before_the_answer_asks_for_a_new_sign_in() {
    let (emulator, dir, config) = killed_while_a_refresh_is_held(RefreshHold::Answer).await;
    let state = emulator.state().clone();
    assert_eq!(persisted(dir.path()), ORIGINAL, "the last token the source delivered");
    assert_ne!(state.current_refresh_token().as_deref(), Some(ORIGINAL), "rotated at the source, never delivered");
    state.set_refresh_hold(RefreshHold::Off);
    let next = sync(&config).await;
    assert!(!next.status.success());
    let text = String::from_utf8_lossy(&next.stderr);
    assert!(text.contains("refresh token was refused") && text.contains("Госуслуги"), "{text}");
    assert_eq!(persisted(dir.path()), ORIGINAL, "a refused refresh does not touch the file");
    emulator.shutdown().await;
}
