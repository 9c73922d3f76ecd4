//! `ejgate serve` and `ejgate jobs run` as the real binary, against Dnevnik emulators on
//! loopback, on SQLite and on PostgreSQL.
//!
//! Time: the daemon's clock is started at a chosen instant with `EJGATE_TEST_CLOCK_START`
//! (`ejgate::daemon::clock`) and runs at the real pace from there, so an every-minute slot
//! comes a couple of real seconds after the start, and a restart "after downtime" is a
//! restart with a later instant. The tests wait on the store with deadlines, never for a
//! fixed time.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use common::{ejgate, start_emulator, PgSchema, TOKEN};
use ejgate::store::{JobRun, JobRunStatus, JobStore, JobTrigger, RunStatus, SqliteStore, Store};
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{SynthConfig, World};

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, h, m, s).unwrap()
}

/// A directory with `ejgate.toml` (the store URL and one Dnevnik source per `(name, base
/// URL)`, sharing one token file) and `schedules/jobs.toml` holding `jobs`.
fn setup(dir: &Path, store_url: &str, sources: &[(&str, String)], jobs: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::create_dir_all(dir.join("schedules")).unwrap();
    let token = dir.join("secrets/token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Several workers on one machine: each its own free port for its HTTP side.
    let mut config = format!("[store]\nurl = \"{store_url}\"\n[serve]\nlisten = \"127.0.0.1:0\"\n");
    for (name, base_url) in sources {
        config.push_str(&format!(
            "\n[[source]]\nname = \"{name}\"\nsystem = \"dnevnik\"\nbase_url = \"{base_url}\"\n\
             token_file = \"secrets/token\"\nconcurrency = 2\n"
        ));
    }
    std::fs::write(dir.join("ejgate.toml"), config).unwrap();
    std::fs::write(dir.join("schedules/jobs.toml"), format!("time_zone = \"UTC\"\n{jobs}")).unwrap();
    dir.join("ejgate.toml")
}

/// A `[[job]]` table.
fn job(name: &str, kind: &str, target: &str, cron: &str, catch_up: &str, extra: &str) -> String {
    format!(
        "\n[[job]]\nname = \"{name}\"\nkind = \"{kind}\"\ntarget = \"{target}\"\ncron = \"{cron}\"\n\
         catch_up = \"{catch_up}\"\ntime_limit_minutes = 10\n{extra}"
    )
}

/// `ejgate serve` with its clock started at `clock`; its log goes to `log` (a pipe nobody
/// reads would fill and stop it).
fn serve(config: &Path, clock: DateTime<Utc>, log: &Path, extra: &[&str]) -> Serving {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let child = ejgate()
        .arg("--config")
        .arg(config)
        .arg("serve")
        .args(extra)
        .env("EJGATE_TEST_CLOCK_START", clock.to_rfc3339())
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Serving(child)
}

/// A running `ejgate serve`, killed when dropped: a test that fails leaves none behind.
struct Serving(Child);

impl std::ops::Deref for Serving {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Serving {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until `check` gives a value, failing after `limit` with `what` and the log.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, log: &Path, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; the daemon's log:\n{}", log_of(log));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The runs of `job`, oldest slot first.
async fn runs_of(store: &dyn Store, job: &str) -> Vec<JobRun> {
    let mut runs = store.job_runs(Some(job), 100).await.unwrap();
    runs.reverse();
    runs
}

/// The run of `job` at `slot` once its status is `status`.
async fn run_at(store: &dyn Store, job: &str, slot: DateTime<Utc>, status: JobRunStatus) -> Option<JobRun> {
    runs_of(store, job).await.into_iter().find(|r| r.scheduled_at == slot && r.status == status)
}

fn kill(child: &Child, signal: &str) {
    assert!(Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success());
}

/// SIGTERM, and the exit status within `limit`.
async fn terminate(mut child: Serving, limit: Duration, log: &Path) -> std::process::ExitStatus {
    kill(&child, "-TERM");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "serve did not stop after SIGTERM:\n{}", log_of(log));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Live records per kind of one source.
async fn live(store: &dyn Store, source: &str) -> BTreeMap<EntityKind, u64> {
    store.live_counts(Some(source)).await.unwrap()
}

fn expected(world: &World) -> BTreeMap<EntityKind, u64> {
    ejgate_dnevnik::truth::TRUTH.expected_counts(world)
}

/// An every-minute schedule: the slots run on time; a restart within a slot's minute does
/// not run it again; after a kill -9 and a restart past three missed slots, the `once` job
/// runs once for them and the `skip` job records them skipped, and both go on at the next
/// slot. Each run is exactly one sync run of its source (none twice, none lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_minute_slots_run_on_time_and_a_kill_neither_repeats_nor_loses_one() {
    let world = World::generate(SynthConfig::small(31));
    let truth = expected(&world);
    let emulator = start_emulator(world, None).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ejgate.db");
    let url = format!("sqlite://{}", db.display());
    let sources = [("once-src", emulator.base_url()), ("skip-src", emulator.base_url())];
    let jobs = job("once-job", "sync --full", "once-src", "* * * * *", "once", "")
        + &job("skip-job", "sync --full", "skip-src", "* * * * *", "skip", "");
    let config = setup(dir.path(), &url, &sources, &jobs);
    let log = dir.path().join("serve.log");
    let limit = Duration::from_secs(120);

    // The store made before the daemon starts (two processes migrating a new SQLite file at
    // once collide). The 10:01 slot comes two seconds after the start.
    let store = SqliteStore::open(&url).await.unwrap();
    let mut child = serve(&config, at(10, 0, 58), &log, &[]);
    for name in ["once-job", "skip-job"] {
        let run =
            wait_for("the 10:01 runs", limit, &log, || run_at(&store, name, at(10, 1, 0), JobRunStatus::Succeeded))
                .await;
        let late = run.started_at.unwrap() - run.scheduled_at;
        assert!(
            late >= chrono::TimeDelta::zero() && late < chrono::TimeDelta::seconds(5),
            "{name} started {late} late"
        );
        assert_eq!(run.trigger, JobTrigger::Schedule);
        assert_eq!(run.sync_runs.len(), 1, "{run:?}");
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Back within the minute of 10:01: it is not run again; 10:02 runs ten seconds later.
    let mut child = serve(&config, at(10, 1, 50), &log, &[]);
    for name in ["once-job", "skip-job"] {
        wait_for("the 10:02 runs", limit, &log, || run_at(&store, name, at(10, 2, 0), JobRunStatus::Succeeded)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Down over 10:03, 10:04 and 10:05 (back at 10:05:40, past the 30 s grace).
    let child = serve(&config, at(10, 5, 40), &log, &[]);
    let caught_up =
        wait_for("the catch-up run", limit, &log, || run_at(&store, "once-job", at(10, 5, 0), JobRunStatus::Succeeded))
            .await;
    assert_eq!(caught_up.trigger, JobTrigger::CatchUp);
    let note = caught_up.note.clone().unwrap_or_default();
    assert!(
        note.starts_with("3 slots missed while no worker ran (2026-12-07 10:03 UTC to 2026-12-07 10:05 UTC)"),
        "{note}"
    );
    let skipped = run_at(&store, "skip-job", at(10, 5, 0), JobRunStatus::Skipped).await.expect("the skip recorded");
    assert!(skipped.sync_runs.is_empty() && skipped.note.unwrap_or_default().contains("skip"));
    for name in ["once-job", "skip-job"] {
        wait_for("the 10:06 runs", limit, &log, || run_at(&store, name, at(10, 6, 0), JobRunStatus::Succeeded)).await;
    }
    let status = terminate(child, Duration::from_secs(30), &log).await;
    assert!(status.success(), "{status:?}\n{}", log_of(&log));

    let slots = |runs: &[JobRun]| -> Vec<(DateTime<Utc>, JobRunStatus)> {
        runs.iter().map(|r| (r.scheduled_at, r.status)).collect()
    };
    let once = runs_of(&store, "once-job").await;
    let skip = runs_of(&store, "skip-job").await;
    use JobRunStatus::{Skipped, Succeeded};
    assert_eq!(
        slots(&once),
        vec![
            (at(10, 1, 0), Succeeded),
            (at(10, 2, 0), Succeeded),
            (at(10, 5, 0), Succeeded),
            (at(10, 6, 0), Succeeded)
        ]
    );
    assert_eq!(
        slots(&skip),
        vec![(at(10, 1, 0), Succeeded), (at(10, 2, 0), Succeeded), (at(10, 5, 0), Skipped), (at(10, 6, 0), Succeeded)]
    );
    // One sync run per run, whatever the unique key says: the sync runs of each source are
    // exactly those its job's runs list.
    let syncs = store.runs(100).await.unwrap();
    for (source, runs, n) in [("once-src", &once, 4), ("skip-src", &skip, 3)] {
        let mut of_source: Vec<i64> = syncs.iter().filter(|r| r.source == source).map(|r| r.id).collect();
        of_source.sort();
        let mut listed: Vec<i64> = runs.iter().flat_map(|r| r.sync_runs.clone()).collect();
        listed.sort();
        assert_eq!(of_source.len(), n, "{source}: {syncs:?}");
        assert_eq!(of_source, listed, "{source}");
        assert!(syncs.iter().filter(|r| r.source == source).all(|r| r.status == RunStatus::Succeeded));
        assert_eq!(live(&store, source).await, truth, "{source}");
    }

    // `ejgate jobs` shows the last runs.
    let out = ejgate().arg("--config").arg(&config).arg("jobs").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_string();
    assert!(line("once-job").ends_with("2026-12-07 10:06 UTC succeeded"), "{table}");
    emulator.shutdown().await;
}

/// SIGTERM while a scheduled sync is in the middle: the daemon exits within seconds, the
/// batches written stay, the job run and its sync run are recorded `interrupted`; the next
/// start takes the run up again and completes it: the store equals the ground truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_sync_loses_nothing_and_the_next_start_completes_the_job() {
    let world = World::generate(SynthConfig::small(32));
    let truth = expected(&world);
    let emulator = start_emulator(world, None).await;
    // Every request after the first 40 is held: the sync stops at a known point.
    emulator.state().set_hold_after(Some(40));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
    let config = setup(
        dir.path(),
        &url,
        &[("dn", emulator.base_url())],
        &job("nightly", "sync --full", "dn", "1 10 * * *", "skip", ""),
    );
    let log = dir.path().join("serve.log");
    let limit = Duration::from_secs(120);

    let store = SqliteStore::open(&url).await.unwrap();
    let child = serve(&config, at(10, 0, 59), &log, &[]);
    wait_for("a held request and a committed batch", limit, &log, || async {
        let committed = store.changes_since(0, 1).await.map(|c| !c.is_empty()).unwrap_or(false);
        (emulator.stats().held > 0 && committed).then_some(())
    })
    .await;
    let signalled = Instant::now();
    let status = terminate(child, Duration::from_secs(20), &log).await;
    assert!(status.success(), "{status:?}\n{}", log_of(&log));
    assert!(signalled.elapsed() < Duration::from_secs(20));

    let Some(run) = run_at(&store, "nightly", at(10, 1, 0), JobRunStatus::Interrupted).await else {
        panic!("{:?}\n{}", store.job_runs(None, 10).await.unwrap(), log_of(&log));
    };
    assert!(run.error.as_deref().unwrap_or_default().contains("SIGTERM"), "{run:?}");
    let syncs = store.runs(10).await.unwrap();
    assert_eq!(syncs.len(), 1);
    assert_eq!(syncs[0].status, RunStatus::Interrupted);
    assert_eq!(run.sync_runs, vec![syncs[0].id]);
    let written = store.changes_of_run(syncs[0].id).await.unwrap().len() as u64;
    assert!(written > 0);
    assert_eq!(syncs[0].stats.inserted, written, "the interrupted run's statistics are its own");

    // The next start (the slot's minute is long over for a cron that fires daily) resumes it.
    emulator.state().set_hold_after(None);
    let child = serve(&config, at(10, 3, 0), &log, &[]);
    let done =
        wait_for("the resumed run", limit, &log, || run_at(&store, "nightly", at(10, 1, 0), JobRunStatus::Succeeded))
            .await;
    assert_eq!(done.resumed, 1);
    assert_eq!(done.sync_runs.len(), 2, "{done:?}");
    assert_eq!(live(&store, "dn").await, truth);
    assert_eq!(store.job_runs(None, 10).await.unwrap().len(), 1, "no other run was made");
    let status = terminate(child, Duration::from_secs(20), &log).await;
    assert!(status.success());
    emulator.shutdown().await;
}

/// A second `ejgate serve` on the same SQLite store is refused, naming the first one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_one_sqlite_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
    let config = setup(dir.path(), &url, &[("dn", "http://127.0.0.1:9/".into())], "");
    let log = dir.path().join("serve.log");
    let store = SqliteStore::open(&url).await.unwrap();
    let first = serve(&config, at(10, 0, 0), &log, &[]);
    wait_for("the serve lease", Duration::from_secs(60), &log, || async {
        store.leases().await.unwrap().into_iter().find(|l| l.name == "serve").filter(|l| l.pid == first.id())
    })
    .await;

    let out = ejgate().arg("--config").arg(&config).arg("serve").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("another `ejgate serve` already serves this SQLite store: pid {}", first.id())),
        "{stderr}"
    );
    assert!(stderr.contains("PostgreSQL"), "{stderr}");

    let status = terminate(first, Duration::from_secs(20), &log).await;
    assert!(status.success());
    assert!(store.leases().await.unwrap().is_empty(), "the lease is given up on a clean stop");
}

/// Two `ejgate serve` workers on one PostgreSQL store share the jobs of three emulated
/// sources. The worker syncing the first source is killed (-9) mid-sync; the other takes
/// its run over and completes it. Every job runs its slot once, every sync run belongs to a
/// job run, and each source equals its emulator's ground truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_postgresql_share_the_jobs_and_take_over_a_killed_one() {
    let pg = PgSchema::create("ejgate_daemon").await;
    let mut emulators = Vec::new();
    let mut truths = Vec::new();
    for seed in [41, 42, 43] {
        let world = World::generate(SynthConfig::small(seed));
        truths.push(expected(&world));
        emulators.push(start_emulator(world, None).await);
    }
    emulators[0].state().set_hold_after(Some(40));
    let names = ["s1", "s2", "s3"];
    let sources: Vec<(&str, String)> = names.iter().zip(&emulators).map(|(n, e)| (*n, e.base_url())).collect();
    let jobs: String =
        names.iter().map(|n| job(&format!("job-{n}"), "sync --full", n, "1 10 * * *", "once", "")).collect();
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), &pg.url, &sources, &jobs);
    let log = dir.path().join("serve.log");
    let limit = Duration::from_secs(180);

    // The migrations once, before two processes start on the same schema.
    let store = ejgate::store::PostgresStore::open(&pg.url).await.unwrap();
    let workers = [serve(&config, at(10, 0, 58), &log, &[]), serve(&config, at(10, 0, 58), &log, &[])];
    let held = wait_for("job-s1 running, its requests held", limit, &log, || async {
        let run = run_at(&store, "job-s1", at(10, 1, 0), JobRunStatus::Running).await?;
        let committed = store.changes_since(0, 1).await.map(|c| !c.is_empty()).unwrap_or(false);
        (emulators[0].stats().held > 0 && committed).then_some(run)
    })
    .await;
    let [a, b] = workers;
    let (mut victim, survivor) = if Some(a.id()) == held.pid { (a, b) } else { (b, a) };
    assert_eq!(held.pid, Some(victim.id()));
    victim.kill().unwrap();
    victim.wait().unwrap();
    emulators[0].state().set_hold_after(None);

    let mut done = Vec::new();
    for name in names {
        let job = format!("job-{name}");
        done.push(
            wait_for("every run done", limit, &log, || run_at(&store, &job, at(10, 1, 0), JobRunStatus::Succeeded))
                .await,
        );
    }
    let survivor_pid = survivor.id();
    assert_eq!(done[0].resumed, 1, "the killed worker's run was taken over: {:?}", done[0]);
    let status = terminate(survivor, Duration::from_secs(30), &log).await;
    assert!(status.success());

    assert_eq!(store.job_runs(None, 100).await.unwrap().len(), 3, "one run per job");
    let syncs = store.runs(100).await.unwrap();
    for ((name, truth), run) in names.iter().zip(&truths).zip(&done) {
        // One sync run succeeded, the one the job run lists; any other is a sync the killed
        // worker had under way (closed as interrupted by the next one), one per takeover.
        let of_source: Vec<_> = syncs.iter().filter(|r| r.source == *name).collect();
        let succeeded: Vec<i64> = of_source.iter().filter(|r| r.status == RunStatus::Succeeded).map(|r| r.id).collect();
        assert_eq!(succeeded.len(), 1, "{name}: {of_source:?}");
        assert_eq!(run.sync_runs, succeeded, "{name}: {run:?}");
        let interrupted = of_source.iter().filter(|r| r.status == RunStatus::Interrupted).count();
        assert_eq!(interrupted + 1, of_source.len(), "{name}: {of_source:?}");
        // A run the killed worker had taken up but not yet begun syncing is resumed without
        // an interrupted sync run; s1 was killed mid-sync.
        assert!(interrupted as u32 <= run.resumed, "{name}: {run:?} {of_source:?}");
        if *name == "s1" {
            assert_eq!(interrupted, 1, "{of_source:?}");
        }
        if run.resumed > 0 {
            assert_eq!(run.pid, Some(survivor_pid), "{name}: the survivor took the run over");
        }
        assert_eq!(&live(&store, name).await, truth, "{name}");
    }
    for emulator in emulators {
        emulator.shutdown().await;
    }
}

/// `ejgate jobs run NAME` runs the job now through the daemon's path and records it; a
/// failed run with retries left is recorded `due` for its retry, the delay later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_records_the_run_and_its_retry() {
    let world = World::generate(SynthConfig::small(33));
    let truth = expected(&world);
    let emulator = start_emulator(world, None).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
    let jobs = job("nightly", "sync", "dn", "0 2 * * *", "once", "retry = { attempts = 1, delay_minutes = 15 }\n");
    let config = setup(dir.path(), &url, &[("dn", emulator.base_url())], &jobs);

    let out = ejgate().arg("--config").arg(&config).args(["jobs", "run", "nightly"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("job «nightly» run #1 succeeded in ") && stdout.contains("dn #1 succeeded"), "{stdout}");
    let store = SqliteStore::open(&url).await.unwrap();
    let runs = store.job_runs(Some("nightly"), 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].trigger, runs[0].status, runs[0].sync_runs.clone()),
        (JobTrigger::Manual, JobRunStatus::Succeeded, vec![1])
    );
    assert_eq!(live(&store, "dn").await, truth);

    emulator.state().set_failure(Some(ejgate_dnevnik::emulator::FailureMode::Unauthorized), None);
    let out = ejgate().arg("--config").arg(&config).args(["jobs", "run", "nightly"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("job «nightly» run #2 failed: dn: run #2 failed") && stderr.contains("retry at"),
        "{stderr}"
    );
    let run = store.job_runs(Some("nightly"), 1).await.unwrap().remove(0);
    assert_eq!((run.status, run.attempt), (JobRunStatus::Due, 2), "{run:?}");
    assert_eq!(run.due_at - run.finished_at.unwrap(), chrono::TimeDelta::minutes(15));
    assert_eq!(run.error_kind, Some(ejgate::store::RunErrorKind::Unauthorized));

    // An unknown job is named with the known ones.
    let out = ejgate().arg("--config").arg(&config).args(["jobs", "run", "weekly"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("no job named «weekly» in the schedules (jobs: nightly)"),
        "{stderr}"
    );
    emulator.shutdown().await;
}

/// The time limit stops a run as SIGTERM stops a sync (the sync run `interrupted` with what
/// it wrote) and records the job run `timed_out`. Through the library, with a job whose
/// limit is two seconds (the schedule files allow whole minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_limit_stops_the_run_and_records_it_timed_out() {
    let emulator = start_emulator(World::generate(SynthConfig::small(34)), None).await;
    emulator.state().set_hold_after(Some(40));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
    let config_path = setup(
        dir.path(),
        &url,
        &[("dn", emulator.base_url())],
        &job("nightly", "sync --full", "dn", "0 2 * * *", "once", ""),
    );
    let config = ejgate::config::Config::load(&config_path).unwrap();
    let mut state = ejgate::daemon::DaemonState::open(config, &dir.path().join("schedules")).await.unwrap();
    let mut jobs = (*state.jobs).clone();
    jobs[0].time_limit = Duration::from_secs(2);
    state.jobs = std::sync::Arc::new(jobs);

    let started = Instant::now();
    let report = ejgate::daemon::run_now(&state, "nightly", &ejgate::stop::Stop::default()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2) && started.elapsed() < Duration::from_secs(30));
    assert_eq!(report.status, JobRunStatus::TimedOut, "{report:?}");
    assert!(report.error.as_deref().unwrap_or_default().starts_with("the job's time limit"), "{report:?}");
    let run = state.store.job_runs(Some("nightly"), 1).await.unwrap().remove(0);
    assert_eq!(run.status, JobRunStatus::TimedOut);
    let sync = &state.store.runs(1).await.unwrap()[0];
    assert_eq!(sync.status, RunStatus::Interrupted);
    assert!(sync.error.as_deref().unwrap_or_default().contains("time limit"), "{sync:?}");
    emulator.shutdown().await;
}

/// A worker on another host died while running a job: its lease is not the lease of a
/// process this host can see is gone, so the run waits until the lease expires, and then
/// a worker takes it over and completes it. (The dead worker is made by hand: its lease,
/// four seconds long, and the row it had taken up.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_worker_of_another_host_is_taken_over_once_its_lease_expires() {
    use ejgate::store::{JobClaim, LeaseOutcome, LeaseRequest, NewJobRun};
    let pg = PgSchema::create("ejgate_daemon_expiry").await;
    let world = World::generate(SynthConfig::small(44));
    let truth = expected(&world);
    let emulator = start_emulator(world, None).await;
    let dir = tempfile::tempdir().unwrap();
    let config = setup(
        dir.path(),
        &pg.url,
        &[("dn", emulator.base_url())],
        &job("nightly", "sync --full", "dn", "1 10 * * *", "once", ""),
    );
    let log = dir.path().join("serve.log");

    let store = ejgate::store::PostgresStore::open(&pg.url).await.unwrap();
    let request = LeaseRequest {
        name: "job:nightly",
        host: "worker-elsewhere",
        pid: 4242,
        ttl: Duration::from_secs(4),
        replace: None,
    };
    let LeaseOutcome::Acquired { lease, .. } = store.acquire_lease(&request).await.unwrap() else { panic!("free") };
    let new = NewJobRun {
        job: "nightly",
        scheduled_at: at(10, 1, 0),
        trigger: JobTrigger::Schedule,
        status: JobRunStatus::Due,
        due_at: at(10, 1, 0),
        note: None,
    };
    let row = store.insert_job_run(&new).await.unwrap().unwrap();
    let claim = JobClaim { token: lease.token, host: "worker-elsewhere", pid: 4242 };
    store.start_job_run(row.id, &claim, at(10, 1, 0)).await.unwrap().unwrap();

    let child = serve(&config, at(10, 2, 0), &log, &[]);
    let done = wait_for("the run taken over", Duration::from_secs(120), &log, || {
        run_at(&store, "nightly", at(10, 1, 0), JobRunStatus::Succeeded)
    })
    .await;
    assert_eq!((done.resumed, done.pid), (1, Some(child.id())), "{done:?}");
    let syncs = store.runs(10).await.unwrap();
    assert_eq!(syncs.len(), 1);
    assert!(syncs[0].started_at >= lease.expires_at, "taken over only once the lease expired: {syncs:?} {lease:?}");
    assert!(
        log_of(&log).contains("took over «job:nightly» from pid 4242 on host «worker-elsewhere»"),
        "{}",
        log_of(&log)
    );
    assert_eq!(live(&store, "dn").await, truth);
    let status = terminate(child, Duration::from_secs(20), &log).await;
    assert!(status.success());
    emulator.shutdown().await;
}
