//! The monitoring engine over a whole academic year (`cargo bench --bench monitor --features
//! acceptance`): the large synthetic school on SQLite (issue #18's target: under 1 s on 2
//! cores) and a 20-school district on PostgreSQL.
//!
//! Set up (not timed): a synthetic world that breaks every rule the engine checks
//! (`SynthConfig::monitor`), simulated over the whole year, written into the store as one
//! source per school (the records a full sync brings).
//!
//! Timed, in the same run:
//! - the engine: `engine::evaluate` of the whole year (1 September – 31 May) under each
//!   seed profile (S0–S4) for the large school; for the district, every school under its
//!   profile (round robin S0–S4), one after the other;
//! - the peer, per profile: reading the rows the engine reads under that profile and
//!   nothing else — the floor any judgement over the store pays. It makes the same store
//!   calls the engine makes (`engine::reads`: `Store::visit_records` of each kind the
//!   profile's rules use, with the first-seen times where the engine asks for them, and
//!   `Store::edits` of the marks where it reads corrections) and touches each row's content
//!   (sums its length) without parsing it; the engine parses the same texts into the
//!   fields its rules use and judges them. Left out of the peer: the few rows of the
//!   organization, the sync runs and the compromised logins the engine also reads. The
//!   peer reads the kinds one after another; the engine reads the marks on a task of its
//!   own beside the other kinds (two cores), which the peer does not. Printed: both times
//!   and their ratio.
//!
//! Options (arguments after `--`, or environment variables):
//!   `--schools N` (`EJGATE_BENCH_SCHOOLS`, default 20: the district)
//!   `--classes C` (`EJGATE_BENCH_CLASSES`, classes per district school, default 22: the demo school)
//!   `--runs R`    (`EJGATE_BENCH_RUNS`, default 3; the median is printed)
//! PostgreSQL: `EJGATE_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`); the
//! bench makes its own schema and drops it. `--schools 0` skips the district.

use std::ops::ControlFlow;
use std::time::Instant;

use chrono::{NaiveDate, TimeZone, Utc};
use ejgate::monitor::{engine, profile};
use ejgate::store::{ContentRow, PostgresStore, SqliteStore, Store};
use ejgate_sdk::model::{DateRange, EntityKind};
use ejgate_sdk::synth::{SynthConfig, World};
use sqlx::AssertSqlSafe;

#[allow(dead_code)]
mod common;

const PROFILES: [&str; 5] = ["s0-lyubinsky", "s1-kiasuo", "s2-dubrovskaya", "s3-molodechno", "s4-korolev"];

/// The peer: the rows `engine::evaluate` reads under `profile` (`engine::reads`), through the
/// same store calls, each content touched but not parsed. Returns the bytes of content read.
async fn peer(store: &dyn Store, source: &str, profile: &profile::Profile) -> usize {
    let reads = engine::reads(profile);
    let mut bytes = 0;
    for (kind, seen) in reads.kinds {
        store
            .visit_records(kind, source, seen, &mut |row: ContentRow<'_>| {
                bytes += row.content.len();
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
    }
    if reads.mark_edits {
        bytes += store.edits(source, EntityKind::Mark).await.unwrap().len();
    }
    bytes
}

fn year() -> DateRange {
    DateRange::new(NaiveDate::from_ymd_opt(2025, 9, 1).unwrap(), NaiveDate::from_ymd_opt(2026, 5, 31).unwrap())
}

#[tokio::main]
async fn main() {
    let schools = common::option("--schools", "EJGATE_BENCH_SCHOOLS", 20);
    let classes = common::option("--classes", "EJGATE_BENCH_CLASSES", 22).max(11) as u32;
    let runs = common::option("--runs", "EJGATE_BENCH_RUNS", 3).max(1);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let regulations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("regulations");
    let profiles: Vec<profile::Profile> = PROFILES.iter().map(|p| profile::load(&regulations, p).unwrap()).collect();
    let now = Utc.with_ymd_and_hms(2026, 6, 15, 0, 0, 0).unwrap();

    // The large school on SQLite.
    let started = Instant::now();
    let world = World::generate(SynthConfig { monitor: true, ..SynthConfig::large(2026) });
    let generated = started.elapsed().as_secs_f64();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("large.db").display())).await.unwrap();
    let started = Instant::now();
    ejgate::report::synthetic::store_world(&store, "large", &world).await.unwrap();
    let loaded = started.elapsed().as_secs_f64();
    let counts = store.live_counts(None).await.unwrap();
    let records: u64 = counts.values().sum();
    println!(
        "monitor, large school: {} classes, the whole year ({} marks, {} lessons, {records} records) on SQLite, {cores} CPU cores",
        world.schools[0].classes.len(),
        counts.get(&EntityKind::Mark).copied().unwrap_or(0),
        counts.get(&EntityKind::Lesson).copied().unwrap_or(0),
    );
    println!("  set-up: world generated in {generated:.1} s, written into the store in {loaded:.1} s");
    for profile in &profiles {
        let mut times = Vec::new();
        let mut peers = Vec::new();
        let mut found = 0;
        let mut bytes = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let report = engine::evaluate(&store, "large", "large", profile, year(), now).await.unwrap();
            times.push(t.elapsed().as_secs_f64());
            found = report.findings.len();
            let t = Instant::now();
            bytes = peer(&store, "large", profile).await;
            assert!(bytes > 0);
            peers.push(t.elapsed().as_secs_f64());
        }
        let (t, p) = (common::median(times), common::median(peers));
        println!(
            "  {:<15} whole year: {t:.3} s (median of {runs}), {found} findings; target < 1 s; peer, reading what \
             the engine reads ({:.0} MB): {p:.3} s; engine ÷ peer = {:.2}",
            profile.name,
            bytes as f64 / 1e6,
            t / p
        );
    }
    store.close().await;
    drop(world);

    if schools == 0 {
        return;
    }
    // The district on PostgreSQL.
    let (mut conn, schema, url) = common::pg_schema("ejgate_bench_monitor").await;
    let started = Instant::now();
    let world = World::generate(SynthConfig {
        schools: schools as u32,
        classes_per_school: classes,
        monitor: true,
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
    drop(world);
    println!(
        "monitor, district: {schools} schools × {classes} classes, the whole year ({} marks, {records} records) on PostgreSQL",
        counts.get(&EntityKind::Mark).copied().unwrap_or(0),
    );
    println!("  set-up: world generated in {generated:.1} s, written into the store in {loaded:.1} s");
    let mut engine_times = Vec::new();
    let mut peer_times = Vec::new();
    let mut found = 0;
    for _ in 0..runs {
        let t = Instant::now();
        found = 0;
        for (i, source) in sources.iter().enumerate() {
            let report =
                engine::evaluate(&store, source, source, &profiles[i % profiles.len()], year(), now).await.unwrap();
            found += report.findings.len();
        }
        engine_times.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for (i, source) in sources.iter().enumerate() {
            assert!(peer(&store, source, &profiles[i % profiles.len()]).await > 0);
        }
        peer_times.push(t.elapsed().as_secs_f64());
    }
    let (e, p) = (common::median(engine_times), common::median(peer_times));
    println!(
        "  every school under its profile, whole year: {e:.2} s (median of {runs}; {:.3} s a school), {found} findings",
        e / schools as f64
    );
    println!("  peer, reading what the engine reads: {p:.2} s; engine ÷ peer = {:.2}", e / p);
    store.close().await;
    let _ = sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))).execute(&mut conn).await;
}
