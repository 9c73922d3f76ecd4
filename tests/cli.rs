//! The `ejgate` binary as a person uses it: the demo, a sync killed in the middle, and a
//! sync at trace level that must not show the token.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{start_emulator, TOKEN};
use ejgate::store::{RunStatus, SqliteStore, Store};
use ejgate_sdk::synth::{SynthConfig, World};

fn ejgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ejgate"))
}

/// Writes a configuration for one Dnevnik source at `base_url` into `dir`.
fn write_config(dir: &Path, base_url: &str, extra: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::write(dir.join("secrets/token"), format!("{TOKEN}\n")).unwrap();
    let path = dir.join("ejgate.toml");
    std::fs::write(
        &path,
        format!(
            "[store]\nurl = \"sqlite://ejgate.db\"\n\n[[source]]\nname = \"dn\"\nsystem = \"dnevnik\"\nbase_url = \"{base_url}\"\ntoken_file = \"secrets/token\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_demo_fills_the_store_and_status_counts_equal_the_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let out = ejgate().args(["demo", "--size", "small", "--seed", "4", "--dir"]).arg(&demo_dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("matches the generator's ground truth"), "{stdout}");

    let out = ejgate().arg("--config").arg(demo_dir.join("ejgate.toml")).args(["status", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let world = World::generate(SynthConfig::small(4));
    let systems = [
        ("dnevnik-demo", ejgate_dnevnik::truth::TRUTH.expected_counts(&world)),
        ("epos-demo", ejgate_epos::truth::TRUTH.expected_counts(&world)),
        ("kiasuo-demo", ejgate_kiasuo::truth::expected_counts(&world)),
        ("mosreg-demo", ejgate_mosreg::truth::TRUTH.expected_counts(&world)),
        ("files-demo", ejgate_files::truth::TRUTH.expected_counts(&world)),
    ];
    for (source, expected) in systems {
        let counts = status["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["source"] == source)
            .unwrap_or_else(|| panic!("status lists {source}"))["counts"]
            .as_array()
            .unwrap();
        for (kind, n) in expected {
            let live = counts.iter().find(|c| c["kind"] == kind.as_str()).map(|c| c["live"].as_u64().unwrap());
            assert_eq!(live, Some(n), "{source}: {kind}");
        }
    }
    let runs = status["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 5);
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    let token = std::fs::read_to_string(demo_dir.join("secrets/dnevnik.token")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(demo_dir.join("secrets/dnevnik.token")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the token file is private");
    }
    assert!(!stdout.contains(token.trim()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_in_the_middle_loses_nothing_and_the_next_run_completes() {
    let world = World::generate(SynthConfig::small(21));
    let expected = ejgate_dnevnik::truth::TRUTH.expected_counts(&world);
    // The emulator answers the first HOLD_AFTER requests and holds every later one open:
    // the sync stops at a known point, with batches committed and more to come, whatever
    // the machine's speed (no timer races the sync).
    const HOLD_AFTER: u64 = 40;
    let emulator = start_emulator(world, None).await;
    emulator.state().set_hold_after(Some(HOLD_AFTER));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator.base_url(), "concurrency = 2\n");
    let db_url = format!("sqlite://{}", dir.path().join("ejgate.db").display());

    let mut child = ejgate()
        .arg("--config")
        .arg(&config)
        .args(["sync", "--full", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until a request is held and what came before it is committed, then kill the
    // process without warning.
    let deadline = Instant::now() + Duration::from_secs(120);
    while emulator.stats().held == 0 {
        assert!(child.try_wait().unwrap().is_none(), "the sync ended before the hold: raise HOLD_AFTER");
        assert!(Instant::now() < deadline, "the sync made no {HOLD_AFTER} requests in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = SqliteStore::open(&db_url).await.unwrap();
    while store.changes_since(0, 1).await.map(|c| c.len()).unwrap_or(0) == 0 {
        assert!(child.try_wait().unwrap().is_none(), "the held sync ended on its own");
        assert!(Instant::now() < deadline, "nothing was committed before the hold: raise HOLD_AFTER");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = common::live_counts(&store).await;
    assert!(partial.values().sum::<u64>() < expected.values().sum::<u64>(), "the kill landed before the end");
    emulator.state().set_hold_after(None);

    let out = ejgate().arg("--config").arg(&config).args(["sync", "--quiet"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::live_counts(&store).await, expected);
    let runs = store.runs(5).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert_eq!(runs[1].status, RunStatus::Interrupted, "the killed run is recorded as interrupted");
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_at_trace_level_never_shows_the_token() {
    let emulator = start_emulator(World::generate(SynthConfig::small(8)), None).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator.base_url(), "");
    let out = ejgate()
        .arg("--config")
        .arg(&config)
        .args(["sync", "--full", "--quiet"])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all = [out.stdout, out.stderr].concat();
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("users/me/context"), "trace output shows the requests");
    assert!(text.len() > 10_000, "trace output is verbose: {} bytes", text.len());
    assert!(!text.contains(TOKEN), "the token leaked into the logs");
    let db = std::fs::read(dir.path().join("ejgate.db")).unwrap();
    assert!(!db.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()), "the token leaked into the store");

    // A refused token: the error still does not show it.
    emulator.state().set_failure(Some(ejgate_dnevnik::emulator::FailureMode::Unauthorized), None);
    let out =
        ejgate().arg("--config").arg(&config).args(["sync", "--quiet"]).env("RUST_LOG", "trace").output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Госуслуги") && text.contains("secrets/token"), "{text}");
    assert!(!text.contains(TOKEN));
    emulator.shutdown().await;
}

/// SIGTERM in the middle of a sync (a service manager stopping it): the group being written
/// commits, the run is recorded as interrupted with its statistics, and the process exits
/// within seconds; the next run completes. Before, the process ended where it stood: the
/// run stayed `running` until the next one, with +0 shown for what it had written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_the_middle_of_a_sync_leaves_an_interrupted_run_with_its_statistics() {
    let world = World::generate(SynthConfig::small(22));
    let expected = ejgate_dnevnik::truth::TRUTH.expected_counts(&world);
    // As in the kill test above: the emulator holds every request after the first 40, so
    // the signal lands with batches committed and more to come.
    const HOLD_AFTER: u64 = 40;
    let emulator = start_emulator(world, None).await;
    emulator.state().set_hold_after(Some(HOLD_AFTER));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator.base_url(), "concurrency = 2\n");
    let db_url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
    let mut child = ejgate()
        .arg("--config")
        .arg(&config)
        .args(["sync", "--full", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while emulator.stats().held == 0 {
        assert!(child.try_wait().unwrap().is_none(), "the sync ended before the hold: raise HOLD_AFTER");
        assert!(Instant::now() < deadline, "the sync made no {HOLD_AFTER} requests in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = SqliteStore::open(&db_url).await.unwrap();
    while store.changes_since(0, 1).await.map(|c| c.len()).unwrap_or(0) == 0 {
        assert!(child.try_wait().unwrap().is_none(), "the held sync ended on its own");
        assert!(Instant::now() < deadline, "nothing was committed before the hold: raise HOLD_AFTER");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let signalled = Instant::now();
    let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        // A generous bound: the stop itself is one commit and a run row.
        assert!(signalled.elapsed() < Duration::from_secs(20), "the sync did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted") && stderr.contains("SIGTERM"), "{stderr}");

    let runs = store.runs(5).await.unwrap();
    let run = &runs[0];
    assert_eq!(run.status, RunStatus::Interrupted, "{run:?}");
    assert!(run.finished_at.is_some() && run.error.as_deref().unwrap_or("").contains("SIGTERM"), "{run:?}");
    // The statistics are the run's: what its change log holds.
    let written = store.changes_of_run(run.id).await.unwrap().len() as u64;
    assert!(written > 0);
    assert_eq!(run.stats.inserted + run.stats.updated + run.stats.deleted, written, "{:?}", run.stats);
    assert!(run.stats.requests > 0 && run.stats.records_read >= written);

    emulator.state().set_hold_after(None);
    let out = ejgate().arg("--config").arg(&config).args(["sync", "--quiet"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(common::live_counts(&store).await, expected);
    emulator.shutdown().await;
}

/// A tmpfs of a few MiB mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` when this process may not mount (not root).
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A full disk had ended the sync with «attempted to call begin_with at non-zero transaction
/// depth» and left a `running` run (SQLite rolls a transaction back by itself on SQLITE_FULL,
/// and sqlx's count of open transactions went out of step). Now: one line naming the disk
/// and the store's file, the run recorded as failed, and the committed batches kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_as_such_and_leaves_no_running_run() {
    let Some(disk) = SmallDisk::mount("3m") else {
        // Mounting a tmpfs needs root (CI runs as root); say so rather than pass silently.
        eprintln!("SKIPPED a_full_disk_is_reported_as_such_and_leaves_no_running_run: cannot mount a tmpfs (not root)");
        return;
    };
    let emulator = start_emulator(World::generate(SynthConfig::small(23)), None).await;
    let dir = tempfile::tempdir().unwrap();
    let store_path = disk.dir.path().join("ejgate.db");
    let config = write_config(dir.path(), &emulator.base_url(), "");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("sqlite://ejgate.db", &format!("sqlite://{}", store_path.display()))).unwrap();

    let out = ejgate().arg("--config").arg(&config).args(["sync", "--full", "--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the sync cannot fit in 3 MiB");
    assert!(stderr.contains("is full") && stderr.contains(&store_path.display().to_string()), "{stderr}");
    assert!(!stderr.contains("transaction depth"), "{stderr}");
    assert_eq!(stderr.matches("is full").count(), 1, "said once:\n{stderr}");

    let store = SqliteStore::open(&format!("sqlite://{}", store_path.display())).await.unwrap();
    let runs = store.runs(5).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Failed, "{:?}", runs[0]);
    assert!(runs[0].error.as_deref().unwrap_or("").contains("is full"), "{:?}", runs[0].error);
    drop(store);
    emulator.shutdown().await;
}
