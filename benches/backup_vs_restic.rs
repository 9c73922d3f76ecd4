//! The backup benchmark (`cargo bench --bench backup_vs_restic`): one store (a full sync of
//! one school year from the Dnevnik emulator; `EJGATE_BENCH_SIZE` small, demo or large,
//! default large) backed up by `ejgate backup` to two local targets (snapshot, zstd, age,
//! both copies written and read back) against `restic backup` of the same store file into
//! two repositories (Debian's restic; `restic init` not timed). Wall time of each, best of
//! three, their ratio, and the bytes each left on disk. Then the year-end bag of the same
//! store (`ejgate archive snapshot`: JSON Lines and CSV per entity, SHA-512 manifests,
//! minisign signature) against `bagit.py --sha512` bagging the same payload files (PyPI
//! bagit), best of three each.
//!
//! For profiling and repeated runs: `EJGATE_BENCH_STORE=PATH` syncs into that file and keeps
//! it, or reuses it when it is there (no emulator then); `EJGATE_BENCH_ONLY=bag` measures the
//! year-end bag alone.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use ejgate::backup::crypt::{Opening, Sealing};
use ejgate::backup::retention::Keep;
use ejgate::backup::target::{Place, Target};
use ejgate::backup::Backups;
use ejgate::store::SqliteStore;
use ejgate::sync::{run_sync, SyncOptions};
use ejgate_dnevnik::{DnevnikConfig, DnevnikConnector};
use ejgate_sdk::connector::SyncMode;
use secrecy::SecretString;

// Of the shared bench helpers, the emulator spawning and the CPU times are used here.
#[allow(dead_code)]
mod common;

const TOKEN: &str = "bench-token-0123456789abcdef";

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = e.metadata().unwrap();
        total += if meta.is_dir() { dir_bytes(&e.path()) } else { meta.len() };
    }
    total
}

fn restic(repo: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("restic")
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env("RESTIC_PASSWORD", "bench-restic-password")
        .env("RESTIC_CACHE_DIR", repo.with_extension("cache"))
        .output()
        .expect("restic runs (apt-get install restic)");
    assert!(out.status.success(), "restic {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[tokio::main]
async fn main() {
    let size = std::env::var("EJGATE_BENCH_SIZE").unwrap_or_else(|_| "large".into());
    let dir = tempfile::tempdir().unwrap();
    let db = std::env::var_os("EJGATE_BENCH_STORE").map_or_else(|| dir.path().join("store.db"), Into::into);
    let reuse = db.exists();
    let store = SqliteStore::open(&format!("sqlite://{}", db.display())).await.unwrap();
    if !reuse {
        let emulator = common::ready(common::spawn("dnevnik", TOKEN, &["--size", &size, "--seed", "1"]));
        let connector = Arc::new(
            DnevnikConnector::new(DnevnikConfig::new(
                "bench",
                emulator.base_url.parse().unwrap(),
                SecretString::from(TOKEN),
            ))
            .unwrap(),
        );
        let report =
            run_sync(&store, connector, &SyncOptions { mode: SyncMode::Full, ..SyncOptions::default() }).await.unwrap();
        assert!(report.error.is_none(), "{:?}", report.error);
        println!("synced: {} records", report.stats.records_read);
    }
    let store_bytes = std::fs::metadata(&db).unwrap().len();
    let bag_only = std::env::var("EJGATE_BENCH_ONLY").is_ok_and(|v| v == "bag");

    let identity = age::x25519::Identity::generate();
    let mut ours = Vec::new();
    let mut ours_bytes = 0;
    for round in 0..if bag_only { 0 } else { 3 } {
        let targets: Vec<Target> = ["a", "b"]
            .iter()
            .map(|t| {
                let path = dir.path().join(format!("ours-{round}-{t}"));
                std::fs::create_dir_all(&path).unwrap();
                Target::new(t, Place::Local(path), Keep::default()).unwrap()
            })
            .collect();
        let backups =
            Backups { targets, sealing: Sealing::Recipients(vec![identity.to_public()]), opening: Opening::default() };
        let started = Instant::now();
        let r = ejgate::backup::backup(&store, &backups, "bench", Some("benchmark")).await.unwrap();
        ours.push(started.elapsed().as_secs_f64());
        assert_eq!(r.outcome, ejgate::store::BackupOutcome::Ok);
        ours_bytes = dir_bytes(&dir.path().join(format!("ours-{round}-a")));
    }

    let mut theirs = Vec::new();
    let mut theirs_bytes = 0;
    for round in 0..if bag_only { 0 } else { 3 } {
        let repos: Vec<_> = ["a", "b"].iter().map(|t| dir.path().join(format!("restic-{round}-{t}"))).collect();
        for r in &repos {
            restic(r, &["init", "--quiet"]);
        }
        let started = Instant::now();
        for r in &repos {
            restic(r, &["backup", "--quiet", db.to_str().unwrap()]);
        }
        theirs.push(started.elapsed().as_secs_f64());
        theirs_bytes = dir_bytes(&repos[0]);
    }
    // The year-end bag against bagit.py on the same payload.
    let key = minisign::KeyPair::generate_unencrypted_keypair().unwrap().sk;
    let sources = vec![("bench".to_string(), "dnevnik".to_string())];
    let (mut bag_ours, mut bag_theirs) = (Vec::new(), Vec::new());
    let (mut cpu_ours, mut cpu_theirs) = (Vec::new(), Vec::new());
    let mut payload = 0;
    for round in 0..3 {
        let out = dir.path().join(format!("bags-{round}"));
        let cpu = common::own_cpu_seconds();
        let started = Instant::now();
        let r = ejgate::archive::snapshot(
            &store,
            "bench",
            &sources,
            ejgate_sdk::year::SchoolYear::new(2025),
            &out,
            &key,
            None,
        )
        .await
        .unwrap();
        bag_ours.push(started.elapsed().as_secs_f64());
        cpu_ours.push(common::own_cpu_seconds() - cpu);
        payload = r.payload_bytes;
        // bagit.py bags a directory in place: the same payload files, fresh.
        let theirs_dir = dir.path().join(format!("bagit-{round}"));
        std::fs::create_dir_all(&theirs_dir).unwrap();
        for e in std::fs::read_dir(r.bag.join("data")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), theirs_dir.join(e.file_name())).unwrap();
        }
        let cpu = common::children_cpu_seconds();
        let started = Instant::now();
        let out = Command::new("bagit.py")
            .args(["--sha512", "--quiet"])
            .arg(&theirs_dir)
            .output()
            .expect("bagit.py runs (pip install bagit)");
        bag_theirs.push(started.elapsed().as_secs_f64());
        cpu_theirs.push(common::children_cpu_seconds() - cpu);
        assert!(out.status.success(), "bagit.py: {}", String::from_utf8_lossy(&out.stderr));
    }
    // How much of ours is reading the store (what bagit.py does not do: it is given the
    // payload files): every kind's live rows of the year streamed as the snapshot reads them
    // (the raw JSON text, not parsed), and nothing done with them.
    let mut reading = Vec::new();
    let year = ejgate_sdk::year::SchoolYear::new(2025);
    for _ in 0..3 {
        let started = Instant::now();
        let mut n = 0;
        for kind in ejgate_sdk::model::EntityKind::ALL {
            n += ejgate::store::Store::each_raw_record(
                &store,
                kind,
                "bench",
                Some((year.start(), year.end())),
                &mut |_| std::ops::ControlFlow::Continue(()),
            )
            .await
            .unwrap();
        }
        reading.push(started.elapsed().as_secs_f64());
        assert!(n > 0);
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "year-end bag: ejgate archive snapshot (export, manifests, signature) {:.2} s best of 3 ({bag_ours:.2?}); \
         bagit.py --sha512 of the same {:.1} MiB payload {:.2} s best of 3 ({bag_theirs:.2?}); ratio {:.2}",
        best(&bag_ours),
        payload as f64 / 1048576.0,
        best(&bag_theirs),
        best(&bag_ours) / best(&bag_theirs)
    );
    println!(
        "  of which reading the store's records: {:.2} s best of 3 ({reading:.2?}); ours less the reading {:.2} s, \
         ratio to bagit.py {:.2}",
        best(&reading),
        best(&bag_ours) - best(&reading),
        (best(&bag_ours) - best(&reading)) / best(&bag_theirs)
    );
    println!(
        "  CPU time (user + system, all threads; bagit.py with its launcher): ours {:.2} s best of 3 ({cpu_ours:.2?}), \
         bagit.py {:.2} s ({cpu_theirs:.2?}); ratio {:.2}",
        best(&cpu_ours),
        best(&cpu_theirs),
        best(&cpu_ours) / best(&cpu_theirs)
    );
    println!("store: {:.1} MiB ({size} school)", store_bytes as f64 / 1048576.0);
    if bag_only {
        return;
    }
    let (o, t) = (best(&ours), best(&theirs));
    println!(
        "ejgate backup (snapshot, zstd, age, 2 targets written and read back): {o:.2} s best of 3 ({ours:.2?}); \
         {:.1} MiB per target",
        ours_bytes as f64 / 1048576.0
    );
    println!(
        "restic backup into 2 repositories: {t:.2} s best of 3 ({theirs:.2?}); {:.1} MiB per repository",
        theirs_bytes as f64 / 1048576.0
    );
    println!("ratio ejgate / restic: {:.2}", o / t);
}
