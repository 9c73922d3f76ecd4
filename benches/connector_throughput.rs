//! Connector throughput (`cargo bench --bench connector_throughput`): each API connector
//! (Dnevnik, ЭПОС.Школа, КИАСУО, «Моя школа») does a full sync of the same synthetic school
//! (one school, same size and seed) from its own emulator, run as its own process on
//! loopback without a request limit, into a fresh SQLite store, and is compared with the
//! Dnevnik connector measured in the same run.
//!
//! The set of four runs `rounds` times (default 3), each round in a rotated order, and the
//! median per connector is reported. Two ratios to Dnevnik:
//!
//! - records/s ratio: (records read ÷ wall time) over Dnevnik's; this is the throughput the
//!   done-when of issue #3 asks about (target ≥ 0.5);
//! - school-time ratio: Dnevnik's wall time ÷ the connector's wall time for the same school
//!   (≥ 0.5 means it brings the school in at most twice Dnevnik's time). Comparable across
//!   connectors even when one exposes fewer kinds (КИАСУО reads fewer records).
//!
//! Options (arguments after `--`, or environment variables):
//!   `--size small|demo|large`   (`EJGATE_BENCH_SIZE`, default `large`: 40 classes, ~1,000 students)
//!   `--rounds N`                (`EJGATE_BENCH_ROUNDS`, default 3)
//!   `--seed N`                  (`EJGATE_BENCH_SEED`, default 1)
//!   `--systems a,b`             (`EJGATE_BENCH_SYSTEMS`, default all four; Dnevnik is always
//!                                measured: it is the yardstick)

use std::path::Path;
use std::process::Child;
use std::sync::Arc;

use ejgate::config::System;
use ejgate::store::{RunStatus, SqliteStore};
use ejgate::sync::{run_sync, SyncOptions};
use ejgate_dnevnik::{DnevnikConfig, DnevnikConnector};
use ejgate_epos::{EposConfig, EposConnector};
use ejgate_kiasuo::{KiasuoConfig, KiasuoConnector};
use ejgate_mosreg::{MosregBaseUrls, MosregConfig, MosregConnector};
use ejgate_sdk::connector::{Connector, SyncMode};
use secrecy::SecretString;

#[allow(dead_code)]
mod common;
use common::Emulator;

/// The token each emulator accepts (for КИАСУО: the first refresh token, 32 hex characters;
/// for «Моя школа»: a JWT-looking string).
const DNEVNIK_TOKEN: &str = "bench-token-0123456789abcdef";
const EPOS_TOKEN: &str = "bench-epos-session-3b9d7e1f0a2c";
const KIASUO_REFRESH: &str = "0f3c5a9e1b7d4c2a8e6f0b1d3c5a7e9f";
const MOSREG_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.YmVuY2gtc2lnbmF0dXJl";

/// The systems measured, Dnevnik (the yardstick) first.
const SYSTEMS: [System; 4] = [System::Dnevnik, System::Epos, System::Kiasuo, System::Mosreg];

/// The systems `--systems` names (Dnevnik, the yardstick, is always measured, first).
fn chosen_systems(list: &str) -> Vec<System> {
    let mut chosen = vec![System::Dnevnik];
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let system = SYSTEMS
            .into_iter()
            .find(|s| s.as_str() == name)
            .unwrap_or_else(|| panic!("--systems: unknown system {name:?} (dnevnik, epos, kiasuo, mosreg)"));
        if !chosen.contains(&system) {
            chosen.push(system);
        }
    }
    chosen
}

fn token(system: System) -> &'static str {
    match system {
        System::Dnevnik => DNEVNIK_TOKEN,
        System::Epos => EPOS_TOKEN,
        System::Kiasuo => KIASUO_REFRESH,
        System::Mosreg => MOSREG_TOKEN,
        System::Files => unreachable!("files are not served over HTTP"),
    }
}

/// A connector of `system` against its emulator, with its settings' defaults (no request
/// limit). The run's requests are the sync report's (`Connector::requests_sent`).
fn connector(system: System, base_url: &str, kiasuo_token_file: &Path) -> Arc<dyn Connector> {
    let base: url::Url = base_url.parse().expect("the emulator's URL");
    match system {
        System::Dnevnik => {
            let c = DnevnikConfig::new("bench-dnevnik", base, SecretString::from(DNEVNIK_TOKEN));
            Arc::new(DnevnikConnector::new(c).unwrap())
        }
        System::Epos => {
            let c = EposConfig::new("bench-epos", base, SecretString::from(EPOS_TOKEN));
            Arc::new(EposConnector::new(c).unwrap())
        }
        System::Kiasuo => {
            // The connector reads the refresh token from the file and rewrites it on every
            // rotation, so the file always holds the one the emulator accepts next.
            let c = KiasuoConfig::new("bench-kiasuo", base, kiasuo_token_file);
            Arc::new(KiasuoConnector::new(c).unwrap())
        }
        System::Files => unreachable!("files are not served over HTTP"),
        System::Mosreg => {
            let c = MosregConfig::new("bench-mosreg", MosregBaseUrls::single(base), SecretString::from(MOSREG_TOKEN));
            Arc::new(MosregConnector::new(c).unwrap())
        }
    }
}

#[derive(Clone, Copy)]
struct Sample {
    records: u64,
    requests: u64,
    wall: f64,
    /// CPU seconds the emulator process spent serving the sync
    emulator_cpu: f64,
    /// CPU seconds this process (connector, sync engine, store) spent on it
    ejgate_cpu: f64,
}

impl Sample {
    fn records_per_s(&self) -> f64 {
        self.records as f64 / self.wall
    }
    fn requests_per_s(&self) -> f64 {
        self.requests as f64 / self.wall
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// `--name value` from the arguments, else the environment variable, else the default.
fn option(args: &[String], name: &str, env: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var(env).ok())
        .unwrap_or_else(|| default.to_string())
}

async fn sync_once(system: System, emulator: &Emulator, dir: &Path, label: &str, kiasuo_token_file: &Path) -> Sample {
    let db = dir.join(format!("{}-{label}.db", system.as_str()));
    let store = SqliteStore::open(&format!("sqlite://{}", db.display())).await.unwrap();
    let conn = connector(system, &emulator.base_url, kiasuo_token_file);
    let options = SyncOptions { mode: SyncMode::Full, ..SyncOptions::default() };
    let (emulator_before, own_before) = (emulator.cpu_seconds(), common::own_cpu_seconds());
    let report = run_sync(&store, conn, &options).await.unwrap();
    let (emulator_cpu, ejgate_cpu) = (emulator.cpu_seconds() - emulator_before, common::own_cpu_seconds() - own_before);
    assert!(report.error.is_none(), "{}: {:?}", system.as_str(), report.error);
    assert_eq!(report.status, RunStatus::Succeeded, "{}", system.as_str());
    assert!(report.stats.records_read > 0, "{}: no records", system.as_str());
    drop(store);
    let _ = std::fs::remove_file(&db);
    Sample {
        records: report.stats.records_read,
        requests: report.stats.requests,
        wall: report.elapsed.as_secs_f64(),
        emulator_cpu,
        ejgate_cpu,
    }
}

#[tokio::main]
async fn main() {
    // `RUST_LOG=ejgate::sync=debug` shows when each group of chunks is written.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    }
    let args: Vec<String> = std::env::args().collect();
    let size = option(&args, "--size", "EJGATE_BENCH_SIZE", "large");
    let rounds: usize = option(&args, "--rounds", "EJGATE_BENCH_ROUNDS", "3").parse().expect("--rounds N");
    let seed: u64 = option(&args, "--seed", "EJGATE_BENCH_SEED", "1").parse().expect("--seed N");
    assert!(["small", "demo", "large"].contains(&size.as_str()), "--size small|demo|large");
    assert!(rounds >= 1, "--rounds ≥ 1");
    let systems = chosen_systems(&option(&args, "--systems", "EJGATE_BENCH_SYSTEMS", "dnevnik,epos,kiasuo,mosreg"));

    let dir = tempfile::tempdir().unwrap();
    let kiasuo_token_file = dir.path().join("kiasuo.refresh");
    std::fs::write(&kiasuo_token_file, format!("{KIASUO_REFRESH}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kiasuo_token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // The four emulators, each its own process, generating the same school at once.
    let seed_arg = seed.to_string();
    let args = ["--size", size.as_str(), "--schools", "1", "--seed", seed_arg.as_str()];
    let children: Vec<Child> = systems.iter().map(|&s| common::spawn(s.as_str(), token(s), &args)).collect();
    let emulators: Vec<Emulator> = children.into_iter().map(common::ready).collect();

    println!("\nejgate connector throughput: one {size} school (seed {seed}), full sync from each emulator on loopback, no request limit, fresh SQLite store each; {rounds} round(s)");
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); systems.len()];
    for round in 0..rounds {
        // Interleaved: each round starts one system later.
        let order: Vec<usize> = (0..systems.len()).map(|i| (i + round) % systems.len()).collect();
        let mut this_round: Vec<Option<Sample>> = vec![None; systems.len()];
        for &i in &order {
            let s = sync_once(systems[i], &emulators[i], dir.path(), &format!("r{round}"), &kiasuo_token_file).await;
            this_round[i] = Some(s);
            samples[i].push(s);
        }
        let dnevnik = this_round[0].unwrap();
        println!(
            "\n  round {} (order: {})",
            round + 1,
            order.iter().map(|&i| systems[i].as_str()).collect::<Vec<_>>().join(", ")
        );
        for &i in &order {
            let s = this_round[i].unwrap();
            println!(
                "    {:<8} {:>9} records {:>6} requests {:>7.2} s (CPU: emulator {:.2} s, ejgate {:.2} s) {:>9.0} records/s {:>7.0} requests/s   records/s ÷ Dnevnik {:.2}   Dnevnik time ÷ time {:.2}",
                systems[i].as_str(),
                s.records,
                s.requests,
                s.wall,
                s.emulator_cpu,
                s.ejgate_cpu,
                s.records_per_s(),
                s.requests_per_s(),
                s.records_per_s() / dnevnik.records_per_s(),
                dnevnik.wall / s.wall,
            );
        }
    }

    // Medians per connector over the rounds.
    struct Median {
        records: u64,
        requests: u64,
        wall: f64,
        records_per_s: f64,
        requests_per_s: f64,
    }
    let medians: Vec<Median> = samples
        .iter()
        .map(|v| Median {
            records: median(v.iter().map(|s| s.records as f64).collect()) as u64,
            requests: median(v.iter().map(|s| s.requests as f64).collect()) as u64,
            wall: median(v.iter().map(|s| s.wall).collect()),
            records_per_s: median(v.iter().map(Sample::records_per_s).collect()),
            requests_per_s: median(v.iter().map(Sample::requests_per_s).collect()),
        })
        .collect();
    let d = &medians[0];
    println!("\n  median of {rounds} round(s):");
    println!(
        "    {:<8} {:>9} {:>8} {:>8} {:>10} {:>10}   {:>22}   {:>22}",
        "",
        "records",
        "requests",
        "wall s",
        "records/s",
        "requests/s",
        "records/s ÷ Dnevnik's",
        "Dnevnik's time ÷ time"
    );
    for (i, m) in medians.iter().enumerate() {
        println!(
            "    {:<8} {:>9} {:>8} {:>8.2} {:>10.0} {:>10.0}   {:>22.2}   {:>22.2}",
            systems[i].as_str(),
            m.records,
            m.requests,
            m.wall,
            m.records_per_s,
            m.requests_per_s,
            m.records_per_s / d.records_per_s,
            d.wall / m.wall,
        );
    }
    println!("\n  records/s ÷ Dnevnik's: throughput ratio (the done-when's measure, target ≥ 0.5).");
    println!("  Dnevnik's time ÷ time: the same school brought in relative to Dnevnik (comparable when a");
    println!("  system exposes fewer kinds, as КИАСУО does; ≥ 0.5 = at most twice Dnevnik's wall time).");
    println!("\n  verdict (medians, target ≥ 0.5× Dnevnik):");
    for (i, m) in medians.iter().enumerate().skip(1) {
        let ratio = m.records_per_s / d.records_per_s;
        let time_ratio = d.wall / m.wall;
        println!(
            "    {:<8} records/s ratio {:.2} {}; school-time ratio {:.2} {}",
            systems[i].as_str(),
            ratio,
            if ratio >= 0.5 { "≥ 0.5: MET" } else { "< 0.5: NOT MET" },
            time_ratio,
            if time_ratio >= 0.5 { "≥ 0.5: MET" } else { "< 0.5: NOT MET" },
        );
    }
    drop(emulators);
}
