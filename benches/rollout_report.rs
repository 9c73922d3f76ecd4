//! The district's quarterly rollout report (P10) over a 20-school district store holding a
//! whole academic year (`cargo bench --bench rollout_report --features acceptance`), on
//! PostgreSQL. The target: under 10 s on 2 cores.
//!
//! Set up (not timed): a synthetic world of N schools simulated over the whole year, each
//! school written into the store as a source of its own (the records a full sync brings),
//! every school with a regulation profile in the configuration.
//!
//! Timed, in the same run:
//! - the report: `rollout::build` for the second quarter (and the first, for the change)
//!   plus its XLSX, as `ejgate report rollout` does;
//! - the peer: reading the records the report read before the store counted for it
//!   (persons, periods, lessons, homework, marks, enrollments of every school) with
//!   `Store::records` and nothing else — the floor of that old path, which spent most of its
//!   time there. Printed: both times and their ratio (peer ÷ report: how many times faster
//!   the report is than merely loading what the old one loaded).
//!
//! Options (arguments after `--`, or environment variables):
//!   `--schools N` (`EJGATE_BENCH_SCHOOLS`, default 20)
//!   `--classes C` (`EJGATE_BENCH_CLASSES`, classes per school, default 22: the demo school)
//!   `--runs R`    (`EJGATE_BENCH_RUNS`, default 3; the median is printed)
//! PostgreSQL: `EJGATE_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`); the
//! bench makes its own schema and drops it.

use std::time::Instant;

use ejgate::report::{rollout, table};
use ejgate::store::{PostgresStore, Store};
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{SynthConfig, World};
use sqlx::AssertSqlSafe;

#[allow(dead_code)]
mod common;

#[tokio::main]
async fn main() {
    let schools = common::option("--schools", "EJGATE_BENCH_SCHOOLS", 20).max(1);
    let classes = common::option("--classes", "EJGATE_BENCH_CLASSES", 22).max(11) as u32;
    let runs = common::option("--runs", "EJGATE_BENCH_RUNS", 3).max(1);
    let (mut conn, schema, url) = common::pg_schema("ejgate_bench_rollout").await;

    let started = Instant::now();
    let world = World::generate(SynthConfig {
        schools: schools as u32,
        classes_per_school: classes,
        ..SynthConfig::demo(2026)
    });
    let generated = started.elapsed().as_secs_f64();
    let store = PostgresStore::open(&url).await.unwrap();
    let sources: Vec<String> = (1..=schools).map(|i| format!("school-{i:02}")).collect();
    let started = Instant::now();
    ejgate::report::synthetic::store_schools(&store, &world, &sources).await.unwrap();
    let loaded = started.elapsed().as_secs_f64();
    let counts = store.live_counts(None).await.unwrap();
    let records: u64 = counts.values().sum();

    let dir = tempfile::tempdir().unwrap();
    let regulations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("regulations");
    let profiles = ["s0-lyubinsky", "s1-kiasuo", "s2-dubrovskaya", "s3-molodechno", "s4-korolev"];
    std::fs::write(dir.path().join("token"), "unused").unwrap();
    std::fs::set_permissions(dir.path().join("token"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut text = format!("regulations_dir = \"{}\"\n[store]\nurl = \"{url}\"\n", regulations.display());
    for (i, source) in sources.iter().enumerate() {
        text.push_str(&format!(
            "\n[[source]]\nname = \"{source}\"\nsystem = \"dnevnik\"\nbase_url = \"http://127.0.0.1:9\"\n\
             token_file = \"token\"\n\n[[school]]\nname = \"Школа {}\"\nsources = [\"{source}\"]\nregulation = \"{}\"\n",
            i + 1,
            profiles[i % profiles.len()]
        ));
    }
    std::fs::write(dir.path().join("ejgate.toml"), text).unwrap();
    let config = ejgate::config::Config::load(&dir.path().join("ejgate.toml")).unwrap();
    let district = world.schools[0].municipality.clone();

    let mut report_times = Vec::new();
    let mut peer_times = Vec::new();
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let report =
            rollout::build(&store, &config, &district, &rollout::Quarter { number: 2, year: None }, chrono::Utc::now())
                .await
                .unwrap();
        let xlsx = table::xlsx("bench", &rollout::sheets(&report)).unwrap();
        report_times.push(t.elapsed().as_secs_f64());
        bytes = xlsx.len();
        assert_eq!(report.schools.len(), schools);

        let t = Instant::now();
        let mut read = 0usize;
        for source in &sources {
            for kind in [
                EntityKind::Person,
                EntityKind::StudyPeriod,
                EntityKind::Lesson,
                EntityKind::Homework,
                EntityKind::Mark,
                EntityKind::Enrollment,
            ] {
                read += store.records(kind, Some(source), false).await.unwrap().len();
            }
        }
        peer_times.push(t.elapsed().as_secs_f64());
        assert!(read > 0);
    }
    let (report, peer) = (common::median(report_times), common::median(peer_times));
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "rollout report: {schools} schools × {classes} classes, the whole year ({} marks, {} lessons, {records} records) \
         on PostgreSQL, {cores} CPU cores",
        counts.get(&EntityKind::Mark).copied().unwrap_or(0),
        counts.get(&EntityKind::Lesson).copied().unwrap_or(0),
    );
    println!("  set-up: world generated in {generated:.1} s, written into the store in {loaded:.1} s");
    println!("  report (build + XLSX of {bytes} bytes): {report:.2} s (median of {runs}); target < 10 s");
    println!(
        "  peer, loading the kinds the old path loaded with Store::records: {peer:.2} s; peer ÷ report = {:.1}",
        peer / report
    );
    store.close().await;
    let _ = sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&mut conn).await;
}
