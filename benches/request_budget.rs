//! Requests per run (`cargo bench --bench request_budget --features acceptance`): each API
//! connector (Dnevnik, ЭПОС.Школа, КИАСУО, «Моя школа») syncs the demo school (22 classes,
//! about 560 pupils, the whole year; `SynthConfig::demo`) from its emulator into a fresh
//! SQLite store: a full year, then a nightly (incremental) sync with no change at the
//! source, then a nightly sync after one more school day. For each it prints the requests
//! the emulator answered and the run counted (they must agree: the run counts every request,
//! planning and retries included), the figure before issue #16 where the issue gives one,
//! and the hours at 3 requests/s for one school and for 30 schools on one token.
//!
//! Options (arguments after `--`, or environment variables):
//!   `--size small|demo|large`   (`EJGATE_BENCH_SIZE`, default `demo`)
//!   `--seed N`                  (`EJGATE_BENCH_SEED`, default 1)
//!   `--until YYYY-MM-DD`        (`EJGATE_BENCH_UNTIL`: simulate the school up to this day
//!                               instead of the size's default, e.g. a mid-year night)

use std::sync::Arc;

use ejgate::store::{RunStatus, SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions};
use ejgate_sdk::acceptance::EmulatedSystem;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::synth::{SynthConfig, World};

/// Requests before issue #16 on the demo school (the table): full year, nightly.
fn before(system: &str) -> Option<(u64, u64)> {
    match system {
        "dnevnik" => Some((2_488, 661)),
        "epos" => Some((1_919, 1_253)),
        "kiasuo" => Some((24_775, 6_196)),
        "mosreg" => Some((10_796, 2_914)),
        _ => None,
    }
}

struct Row {
    system: &'static str,
    /// (label, requests the emulator answered, requests the run counted)
    runs: Vec<(&'static str, u64, u64)>,
}

fn option(name: &str, env: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).or_else(|| std::env::var(env).ok())
}

/// Requests the system answered, refreshes of credentials included.
fn answered(system: &dyn EmulatedSystem, extra: &dyn Fn() -> u64) -> u64 {
    system.requests() + extra()
}

async fn measure(system: &dyn EmulatedSystem, extra: &dyn Fn() -> u64) -> Row {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
    let store: Box<dyn Store> = Box::new(SqliteStore::open(&url).await.expect("the store opens"));
    let mut runs = Vec::new();
    for (label, mode, advance) in [
        ("full year", SyncMode::Full, 0),
        ("nightly, no change", SyncMode::Incremental, 0),
        ("nightly, one day later", SyncMode::Incremental, 1),
    ] {
        if advance > 0 {
            system.advance(advance);
        }
        let connector = system.connector().expect("the connector builds");
        let before = answered(system, extra);
        let report = run_sync(store.as_ref(), connector, &SyncOptions { mode, ..SyncOptions::default() })
            .await
            .expect("the store records the run");
        assert_eq!(report.status, RunStatus::Succeeded, "{} {label}: {:?}", system.system(), report.error);
        runs.push((label, answered(system, extra) - before, report.stats.requests));
    }
    Row { system: system.system(), runs }
}

fn hours(requests: u64, schools: u64) -> f64 {
    (requests * schools) as f64 / 3.0 / 3600.0
}

#[tokio::main]
async fn main() {
    let seed: u64 = option("--seed", "EJGATE_BENCH_SEED").and_then(|s| s.parse().ok()).unwrap_or(1);
    let size = option("--size", "EJGATE_BENCH_SIZE").unwrap_or_else(|| "demo".into());
    let mut config = match size.as_str() {
        "small" => SynthConfig::small(seed),
        "large" => SynthConfig::large(seed),
        _ => SynthConfig::demo(seed),
    };
    if let Some(until) = option("--until", "EJGATE_BENCH_UNTIL").and_then(|d| d.parse().ok()) {
        config.simulate_until = until;
    }
    println!(
        "request budget: school «{size}» (seed {seed}), simulated until {}; hours at 3 requests/s",
        config.simulate_until
    );
    let world = || World::generate(config.clone());
    let mut rows = Vec::new();
    {
        let s = ejgate_dnevnik::acceptance::DnevnikSystem::start(world()).await.unwrap();
        rows.push(measure(&s, &|| 0).await);
    }
    {
        let s = ejgate_epos::acceptance::EposSystem::start(world()).await.unwrap();
        rows.push(measure(&s, &|| 0).await);
    }
    {
        let s = Arc::new(ejgate_kiasuo::acceptance::KiasuoSystem::start(world()).await.unwrap());
        let refreshes = s.clone();
        rows.push(measure(s.as_ref(), &move || refreshes.emulator.stats().refresh_requests).await);
    }
    {
        let s = ejgate_mosreg::acceptance::MosregSystem::start(world()).await.unwrap();
        rows.push(measure(&s, &|| 0).await);
    }
    println!(
        "{:<8} {:<24} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "system", "run", "answered", "counted", "before", "h/school", "h/30 sch."
    );
    for row in &rows {
        for (i, (label, answered, counted)) in row.runs.iter().enumerate() {
            let was = before(row.system).and_then(|(full, nightly)| match i {
                0 => Some(full),
                1 => Some(nightly),
                _ => None,
            });
            println!(
                "{:<8} {:<24} {:>9} {:>9} {:>9} {:>9.2} {:>10.1}{}",
                row.system,
                label,
                answered,
                counted,
                was.map_or("—".to_string(), |w| w.to_string()),
                hours(*answered, 1),
                hours(*answered, 30),
                if answered == counted { "" } else { "   (counts differ)" }
            );
        }
    }
}
