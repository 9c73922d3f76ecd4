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
//!   `--keep NAME` (`EJGATE_BENCH_KEEP`): the store goes into the schema NAME and stays there;
//!                 a later run with the same NAME finds the district in it and measures at
//!                 once (setting the 20-school store up takes minutes). Without it the bench
//!                 makes a schema of its own and drops it.
//! PostgreSQL: `EJGATE_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`).

use std::time::Instant;

use ejgate::report::{rollout, table};
use ejgate::store::{PostgresStore, Store};
use ejgate_sdk::model::{EntityKind, Organization};
use ejgate_sdk::synth::{SynthConfig, World};
use sqlx::AssertSqlSafe;

#[allow(dead_code)]
mod common;

#[tokio::main]
async fn main() {
    let schools = common::option("--schools", "EJGATE_BENCH_SCHOOLS", 20).max(1);
    let classes = common::option("--classes", "EJGATE_BENCH_CLASSES", 22).max(11) as u32;
    let runs = common::option("--runs", "EJGATE_BENCH_RUNS", 3).max(1);
    let keep = common::text_option("--keep", "EJGATE_BENCH_KEEP");
    let (mut conn, schema, url) = match &keep {
        Some(name) => common::pg_named_schema(name).await,
        None => common::pg_schema("ejgate_bench_rollout").await,
    };
    let store = PostgresStore::open(&url).await.unwrap();
    let sources: Vec<String> = (1..=schools).map(|i| format!("school-{i:02}")).collect();
    let held = store.live_counts(Some(&sources[0])).await.unwrap().values().sum::<u64>() > 0;
    let set_up = if held {
        format!("the store kept in schema {schema} (--keep)")
    } else {
        let started = Instant::now();
        let world = World::generate(SynthConfig {
            schools: schools as u32,
            classes_per_school: classes,
            ..SynthConfig::demo(2026)
        });
        let generated = started.elapsed().as_secs_f64();
        let started = Instant::now();
        ejgate::report::synthetic::store_schools(&store, &world, &sources).await.unwrap();
        let loaded = started.elapsed().as_secs_f64();
        format!("world generated in {generated:.1} s, written into the store in {loaded:.1} s")
    };
    let counts = store.live_counts(None).await.unwrap();
    let records: u64 = counts.values().sum();
    // The district the synthetic schools are in, as the store has it.
    let district = store
        .records(EntityKind::Organization, Some(&sources[0]), false)
        .await
        .unwrap()
        .into_iter()
        .find_map(|r| serde_json::from_value::<Organization>(r.content).ok()?.municipality)
        .expect("the first school names its municipality");

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

    let mut report_times = Vec::new();
    let (mut build_times, mut xlsx_times, mut pdf_times) = (Vec::new(), Vec::new(), Vec::new());
    let (mut plan_times, mut count_times) = (Vec::new(), Vec::new());
    let quarter = rollout::Quarter { number: 2, year: None };
    let mut peer_times = Vec::new();
    let (mut bytes, mut pdf_bytes) = (0, 0);
    for _ in 0..runs {
        let t = Instant::now();
        let report = rollout::build(&store, &config, &district, &quarter, chrono::Utc::now()).await.unwrap();
        build_times.push(t.elapsed().as_secs_f64());
        let x = Instant::now();
        let sheets = rollout::sheets(&report);
        let xlsx = table::xlsx("bench", &sheets).unwrap();
        xlsx_times.push(x.elapsed().as_secs_f64());
        report_times.push(t.elapsed().as_secs_f64());
        bytes = xlsx.len();
        assert_eq!(report.schools.len(), schools);
        // The PDF with the same charts (not part of the target's figure: the command
        // writes one format per run).
        let p = Instant::now();
        pdf_bytes = table::pdf("bench", &sheets).unwrap().len();
        pdf_times.push(p.elapsed().as_secs_f64());
        // The phases of rollout::build on their own: what it reads to plan (schools,
        // periods, runs, profiles), then the store's one counting statement.
        let p = Instant::now();
        let requests = rollout::aggregate_requests(&store, &config, &district, &quarter).await.unwrap();
        plan_times.push(p.elapsed().as_secs_f64());
        let p = Instant::now();
        assert_eq!(store.journal_aggregates(&requests).await.unwrap().len(), schools);
        count_times.push(p.elapsed().as_secs_f64());

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
    println!("  set-up: {set_up}");
    println!("  report (build + XLSX of {bytes} bytes): {report:.2} s (median of {runs}); target < 10 s");
    println!(
        "    of it: rollout::build {:.2} s, sheets and XLSX {:.3} s (medians)",
        common::median(build_times),
        common::median(xlsx_times)
    );
    println!(
        "    rollout::build's phases timed apart: reading what to count {:.3} s, Store::journal_aggregates {:.2} s \
         (medians)",
        common::median(plan_times),
        common::median(count_times)
    );
    println!("  the same report as PDF with its charts ({pdf_bytes} bytes): {:.3} s", common::median(pdf_times));
    println!(
        "  peer, loading the kinds the old path loaded with Store::records: {peer:.2} s; peer ÷ report = {:.1}",
        peer / report
    );
    store.close().await;
    if keep.is_none() {
        let _ = sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&mut conn).await;
    }
}
