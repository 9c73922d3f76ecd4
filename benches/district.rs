//! The district simulation (`cargo bench --bench district`): 200 small schools due at the
//! same minute, run by 4 `ejgate serve` workers on one PostgreSQL store.
//!
//! One `ejgate emulate dnevnik --size small` process serves the school; the configuration
//! has 200 sources on it (`school-001` … `school-200`), each with its own nightly job
//! (`sync --full`, 03:00 Asia/Krasnoyarsk), so each job is a first sync of a small school
//! into a source of its own. The workers' clocks start a few seconds before the slot
//! (`EJGATE_TEST_CLOCK_START`) and each runs one job at a time (`--jobs 1`).
//!
//! Printed: every job run once (succeeded, one sync run each); the makespan (slot → last
//! run finished); the single-job time (the median of a few jobs run alone with `ejgate jobs
//! run` on a store of their own) × 200 ÷ 4, and the efficiency (that ÷ makespan; the
//! issue's target is ≥ 0.8); the worst and median delay between the slot and a run's start;
//! the runs' mean time side by side and how busy the workers were (the runs' durations over
//! workers × makespan), which tells the scheduler's idle time from the runs' slowing down.
//!
//! Options (arguments after `--`, or environment variables):
//!   `--schools N`  (`EJGATE_BENCH_SCHOOLS`, default 200)
//!   `--workers W`  (`EJGATE_BENCH_WORKERS`, default 4)
//!   `--singles K`  (`EJGATE_BENCH_SINGLES`, default 5)
//! PostgreSQL: `EJGATE_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`); the
//! bench makes its own schemas and drops them.

// The CPU counters of the shared module are not used here.
#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use sqlx::{AssertSqlSafe, Connection};

use ejgate::store::{JobRunStatus, JobStore, PostgresStore, RunStatus, Store};

const TOKEN: &str = "bench-token-district-7c1d";

struct Schema {
    admin: String,
    name: String,
    url: String,
}

impl Schema {
    async fn create(admin: &str, name: &str) -> Schema {
        let mut conn = sqlx::PgConnection::connect(admin).await.expect("PostgreSQL at EJGATE_TEST_PG_URL");
        sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE"))).execute(&mut conn).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}"))).execute(&mut conn).await.unwrap();
        let sep = if admin.contains('?') { '&' } else { '?' };
        Schema {
            admin: admin.to_string(),
            name: name.to_string(),
            url: format!("{admin}{sep}options=-c%20search_path%3D{name}"),
        }
    }

    async fn drop(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)))
                .execute(&mut conn)
                .await;
        }
    }
}

/// `ejgate.toml` with `schools` sources on the emulator and a schedule of one job each.
fn write_setup(dir: &Path, store_url: &str, base_url: &str, schools: usize) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir.join("schedules")).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Several workers on one machine: each its own free port for its HTTP side.
    let mut config = format!("[store]\nurl = \"{store_url}\"\n[serve]\nlisten = \"127.0.0.1:0\"\n");
    let mut jobs = String::from("time_zone = \"Asia/Krasnoyarsk\"\n");
    for i in 1..=schools {
        config.push_str(&format!(
            "\n[[source]]\nname = \"school-{i:03}\"\nsystem = \"dnevnik\"\nbase_url = \"{base_url}\"\n\
             token_file = \"token\"\n"
        ));
        jobs.push_str(&format!(
            "\n[[job]]\nname = \"nightly-{i:03}\"\nkind = \"sync --full\"\ntarget = \"school-{i:03}\"\n\
             cron = \"0 3 * * *\"\ncatch_up = \"once\"\ntime_limit_minutes = 60\n"
        ));
    }
    std::fs::write(dir.join("ejgate.toml"), config).unwrap();
    std::fs::write(dir.join("schedules/district.toml"), jobs).unwrap();
    dir.join("ejgate.toml")
}

fn ejgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ejgate"))
}

fn seconds(d: TimeDelta) -> f64 {
    d.num_microseconds().unwrap_or(0) as f64 / 1e6
}

#[tokio::main]
async fn main() {
    let schools = common::option("--schools", "EJGATE_BENCH_SCHOOLS", 200).max(1);
    let workers = common::option("--workers", "EJGATE_BENCH_WORKERS", 4).max(1);
    let singles = common::option("--singles", "EJGATE_BENCH_SINGLES", 5).clamp(1, schools);
    let admin =
        std::env::var("EJGATE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let emulator = common::ready(common::spawn("dnevnik", TOKEN, &["--size", "small", "--seed", "7"]));

    // The single-job time: a few jobs run alone, on a store of their own.
    let dir = tempfile::tempdir().unwrap();
    let alone = Schema::create(&admin, &format!("ejgate_bench_alone_{}", std::process::id())).await;
    let config = write_setup(dir.path(), &alone.url, &emulator.base_url, schools);
    let mut single = Vec::new();
    for i in 1..=singles {
        let out =
            ejgate().arg("--config").arg(&config).args(["jobs", "run", &format!("nightly-{i:03}")]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    {
        let store = PostgresStore::open(&alone.url).await.unwrap();
        for run in store.job_runs(None, 1000).await.unwrap() {
            single.push(seconds(run.finished_at.unwrap() - run.started_at.unwrap()));
        }
        store.close().await;
    }
    alone.drop().await;
    let single = common::median(single);

    // The district: every worker's clock starts five seconds before 03:00 in Krasnoyarsk.
    let district = Schema::create(&admin, &format!("ejgate_bench_district_{}", std::process::id())).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_setup(dir.path(), &district.url, &emulator.base_url, schools);
    let store = PostgresStore::open(&district.url).await.unwrap();
    let slot = Utc.with_ymd_and_hms(2026, 12, 6, 20, 0, 0).unwrap();
    let clock_start: DateTime<Utc> = slot - TimeDelta::seconds(5);
    let started = Instant::now();
    let mut children: Vec<Child> = (0..workers)
        .map(|_| {
            ejgate()
                .arg("--config")
                .arg(&config)
                .args(["serve", "--jobs", "1"])
                .env("EJGATE_TEST_CLOCK_START", clock_start.to_rfc3339())
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = started + Duration::from_secs(3600);
    let runs = loop {
        let runs = store.job_runs(None, 10_000).await.unwrap();
        if runs.len() == schools && runs.iter().all(|r| r.status.is_final()) {
            break runs;
        }
        assert!(Instant::now() < deadline, "the district did not finish in an hour");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for child in &mut children {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    }
    for child in &mut children {
        let _ = child.wait();
    }
    let syncs = store.runs(10_000).await.unwrap();
    let succeeded = runs.iter().filter(|r| r.status == JobRunStatus::Succeeded && r.sync_runs.len() == 1).count();
    let sync_ok = syncs.iter().filter(|r| r.status == RunStatus::Succeeded).count();
    let last = runs.iter().filter_map(|r| r.finished_at).max().unwrap();
    let makespan = seconds(last - slot);
    let delays: Vec<f64> = runs.iter().filter_map(|r| r.started_at).map(|s| seconds(s - slot)).collect();
    let worst = delays.iter().copied().fold(0.0, f64::max);
    let ideal = single * schools as f64 / workers as f64;
    // How busy the workers were: the runs' own durations over workers × makespan. Near 1, the
    // scheduler kept every worker at work and a longer makespan is the runs being slower
    // side by side (CPU, the emulator, the store) than alone.
    let busy: f64 = runs.iter().filter_map(|r| Some(seconds(r.finished_at? - r.started_at?))).sum();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("district: {schools} small schools due at 03:00 Asia/Krasnoyarsk, {workers} workers on PostgreSQL, {cores} CPU cores");
    println!(
        "  job runs: {} recorded, {succeeded} succeeded with one sync run each; {} sync runs, {sync_ok} succeeded",
        runs.len(),
        syncs.len()
    );
    println!("  single job alone: {single:.2} s (median of {singles}); × {schools} ÷ {workers} = {ideal:.1} s");
    println!("  makespan (slot → last run finished): {makespan:.1} s; efficiency {:.2}", ideal / makespan);
    println!("  delay slot → start: worst {worst:.1} s, median {:.1} s", common::median(delays.clone()));
    println!(
        "  run time side by side: mean {:.2} s ({:.1} × alone); workers busy {:.0} % of the makespan",
        busy / runs.len() as f64,
        busy / runs.len() as f64 / single,
        busy * 100.0 / (workers as f64 * makespan)
    );
    store.close().await;
    district.drop().await;
    drop(emulator);
}
