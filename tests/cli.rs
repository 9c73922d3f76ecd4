//! The `ejgate` binary as a person uses it: the demo, a sync killed in the middle, and a
//! sync at trace level that must not show the token.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ejgate, start_emulator, TOKEN};
use ejgate::store::{RunStatus, SqliteStore, Store};
use ejgate_sdk::synth::{SynthConfig, World};

/// chmod 600: a token file others can read is refused.
fn private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Writes a configuration for one Dnevnik source at `base_url` into `dir`.
fn write_config(dir: &Path, base_url: &str, extra: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::write(dir.join("secrets/token"), format!("{TOKEN}\n")).unwrap();
    private(&dir.join("secrets/token"));
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
    // The emulator holds every request after the first few: the sync stops at a known
    // point, with batches committed and more to come, whatever the machine's speed (no
    // timer races the sync). Then the process is killed without warning.
    let dir = tempfile::tempdir().unwrap();
    let (emulator, config, mut child, store) = sync_in_the_middle(world, dir.path()).await;
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
    // As in the kill test above: the signal lands with batches committed and more to come.
    let dir = tempfile::tempdir().unwrap();
    let (emulator, config, mut child, store) = sync_in_the_middle(world, dir.path()).await;

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

/// Starts `ejgate sync --full --quiet` of `world` against a Dnevnik emulator that holds every
/// request after the first 40, and returns once a request is held and a batch is committed:
/// the sync is in the middle, with more to come.
async fn sync_in_the_middle(
    world: World,
    dir: &Path,
) -> (ejgate_dnevnik::emulator::EmulatorHandle, std::path::PathBuf, std::process::Child, SqliteStore) {
    const HOLD_AFTER: u64 = 40;
    let emulator = start_emulator(world, None).await;
    emulator.state().set_hold_after(Some(HOLD_AFTER));
    let config = write_config(dir, &emulator.base_url(), "concurrency = 2\n");
    let db_url = format!("sqlite://{}", dir.join("ejgate.db").display());
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
    (emulator, config, child, store)
}

/// A second SIGTERM (or Ctrl-C) while the first one's clean stop is still under way ends the
/// process at once. The clean stop is kept from finishing here: the test holds the store's
/// write lock, so the interrupted run cannot be recorded; the second signal must not wait
/// for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_while_the_first_stop_waits_for_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (emulator, _config, mut child, store) =
        sync_in_the_middle(World::generate(SynthConfig::small(24)), dir.path()).await;

    // The store's write lock, held by this test until the end.
    let mut lock = rusqlite::Connection::open(dir.path().join("ejgate.db")).unwrap();
    lock.busy_timeout(Duration::from_secs(60)).unwrap();
    let tx = lock.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();

    let pid = child.id().to_string();
    let kill = |signal: &str| {
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    };
    kill("-TERM");
    // The first signal is taken (the process says so) before the second is sent.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(n > 0, "stderr ended before the first signal was taken:\n{seen}");
        seen.push_str(&line);
        if line.starts_with("SIGTERM: ") {
            break;
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "the clean stop cannot finish while the store is locked:\n{seen}");
    kill("-INT");
    let status = child.wait().unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("SIGINT again: stopping at once"), "{seen}");
    // It ended without the store: the run is left for the next run to close.
    tx.rollback().unwrap();
    drop(lock);
    let runs = store.runs(1).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Running, "{:?}", runs[0]);
    emulator.shutdown().await;
}

/// A token file other users can read had been accepted without a word. It is refused with
/// the `chmod` to run, on one line, once, without colour codes in redirected output; with
/// `allow_readable_token_file = true` it is a warning and the sync goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_others_can_read_is_refused_with_the_chmod_to_run() {
    use std::os::unix::fs::PermissionsExt;
    let emulator = start_emulator(World::generate(SynthConfig::small(9)), None).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator.base_url(), "");
    let token = dir.path().join("secrets/token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = ejgate().arg("--config").arg(&config).args(["sync", "--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let chmod = format!("run `chmod 600 {}`", token.display());
    assert!(stderr.contains(&chmod) && stderr.contains("mode 0644"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
    assert_eq!(stderr.matches(&chmod).count(), 1, "said once:\n{stderr}");
    assert!(!stderr.contains('\x1b'), "no colour codes in redirected output:\n{stderr:?}");
    assert_eq!(emulator.stats().requests, 0, "nothing was asked of the source");

    // Allowed: a warning (no colour either), and the sync runs.
    let text = std::fs::read_to_string(&config).unwrap() + "allow_readable_token_file = true\n";
    std::fs::write(&config, text).unwrap();
    let out = ejgate().arg("--config").arg(&config).args(["sync", "--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("WARN") && stderr.contains("allowed by allow_readable_token_file"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "no colour codes in redirected output:\n{stderr:?}");

    // Made private as told: no word about it.
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = ejgate().arg("--config").arg(&config).args(["sync", "--quiet"]).output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("token file"));
    emulator.shutdown().await;
}

/// A failed run had printed its error twice (a log line, then the plain line) with colour
/// codes in redirected output. At the default verbosity it is said once, without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_says_its_error_once_without_colour_codes() {
    let emulator = start_emulator(World::generate(SynthConfig::small(10)), None).await;
    emulator.state().set_failure(Some(ejgate_dnevnik::emulator::FailureMode::Unauthorized), None);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator.base_url(), "");
    let out = ejgate().arg("--config").arg(&config).args(["sync", "--quiet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("run #1 failed").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("Госуслуги").count(), 1, "the error is said once:\n{stderr}");
    assert!(!stderr.contains("ERROR") && !stderr.contains("WARN"), "no log line repeats it:\n{stderr}");
    assert!(!stderr.contains('\x1b'), "no colour codes in redirected output:\n{stderr:?}");
    emulator.shutdown().await;
}

/// sqlx warns of every statement slower than a second, with its whole SQL: at the default
/// verbosity these had filled the output of a busy PostgreSQL store. They show with `-v`
/// only. A statement is made slow for sure: this test locks the table `ejgate status` reads
/// and lets go once the server shows the statement waiting for more than 1.5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_slow_statement_warnings_show_only_when_asked_for() {
    use sqlx::{AssertSqlSafe, Connection};
    let admin =
        std::env::var("EJGATE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let suffix = format!("{}_{}", std::process::id(), chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0));
    let schema = format!("ejgate_cli_{suffix}");
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL at EJGATE_TEST_PG_URL");
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut conn).await.unwrap();
    let _drop = DropSchema { admin: admin.clone(), schema: schema.clone() };
    let sep = if admin.contains('?') { '&' } else { '?' };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ejgate.toml");
    std::fs::write(&config, "[store]\nurl = \"sqlite://unused.db\"\n").unwrap();

    let slow_status = |verbose: bool, app: &str| {
        let url = format!("{admin}{sep}options=-c%20search_path%3D{schema}&application_name={app}");
        let mut cmd = ejgate();
        cmd.arg("--config").arg(&config).env("EJGATE_STORE_URL", &url).env_remove("RUST_LOG");
        if verbose {
            cmd.arg("-v");
        }
        cmd.arg("status").stdout(Stdio::null()).stderr(Stdio::piped());
        cmd
    };
    // The tables, made by a first run.
    let out = slow_status(false, "ejgate_first").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut outputs = Vec::new();
    for (verbose, app) in [(false, format!("ejgate_quiet_{suffix}")), (true, format!("ejgate_verbose_{suffix}"))] {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query(AssertSqlSafe(format!("LOCK TABLE {schema}.sync_runs IN ACCESS EXCLUSIVE MODE")))
            .execute(&mut *tx)
            .await
            .unwrap();
        let child = slow_status(verbose, &app).spawn().unwrap();
        let mut watch = sqlx::PgConnection::connect(&admin).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' \
                 AND clock_timestamp() - query_start > interval '1.5 seconds'",
            )
            .bind(&app)
            .fetch_one(&mut watch)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "`ejgate status` never waited on the locked table");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tx.commit().await.unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    assert!(!outputs[0].contains("slow statement"), "quiet at the default verbosity:\n{}", outputs[0]);
    assert!(outputs[1].contains("slow statement"), "shown with -v (the test can see it):\n{}", outputs[1]);
}

/// A test's PostgreSQL schema, dropped when the test ends (also when it panics).
struct DropSchema {
    admin: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin)
            .args(["-q", "-c", &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn jobs_check_refuses_a_broken_schedule_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9/", "");
    let schedules = dir.path().join("schedules");
    std::fs::create_dir(&schedules).unwrap();
    std::fs::write(
        schedules.join("school.toml"),
        "time_zone = \"Europe/Moscow\"\n\n[[job]]\nname = \"nightly\"\nkind = \"sync\"\ntarget = \"dn\"\n\
         cron = \"0 2 * * *\"\ncatch_up = \"once\"\ntime_limit_minutes = 120\n",
    )
    .unwrap();
    let ok = ejgate().arg("--config").arg(&config).args(["jobs", "check"]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert_eq!(String::from_utf8_lossy(&ok.stdout), format!("{}: 1 job checked\n", schedules.display()));
    let listed = ejgate().arg("--config").arg(&config).arg("jobs").output().unwrap();
    assert!(listed.status.success());
    let table = String::from_utf8_lossy(&listed.stdout);
    assert!(table.lines().nth(1).unwrap().starts_with("nightly  sync  source dn  0 2 * * *  Europe/Moscow"), "{table}");

    std::fs::write(
        schedules.join("broken.toml"),
        "time_zone = \"Europe/Moskva\"\n\n[[job]]\nname = \"weekly\"\nkind = \"sync --full\"\ntarget = \"dn\"\n\
         cron = \"0 2 * * 8\"\ncatch_up = \"once\"\ntime_limit_minutes = 120\n",
    )
    .unwrap();
    let refused = ejgate().arg("--config").arg(&config).args(["jobs", "check"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let broken = schedules.join("broken.toml");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(lines[0].starts_with(&format!("{}:1: unknown time zone «Europe/Moskva»", broken.display())), "{stderr}");
    assert!(lines[1].starts_with(&format!("{}:7: cron «0 2 * * 8» is not valid", broken.display())), "{stderr}");
    assert_eq!(lines[2], format!("error: 2 schedule errors refused in {}", schedules.display()));
}
