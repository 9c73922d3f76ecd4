//! The sync benchmark (`cargo bench --bench sync_throughput`), every figure from one run:
//!
//! 1. end-to-end records/s of a full sync of one large school year (40 classes, about
//!    1,000 students) from the Dnevnik emulator, run as its own process on loopback
//!    without a request limit, into a fresh SQLite store;
//! 2. store-write records/s: records over the time spent in the store (diff reads and
//!    transactions);
//! 3. the raw SQLite ceiling: the same record rows and change-log rows inserted by plain
//!    prepared statements in one transaction (rusqlite), and the store's ratio to it;
//! 4. peak memory (VmHWM, reset between schools) while three schools are synced one
//!    after another into one store: it must not grow with the number of schools;
//! 5. with the emulator's request limit on (and the client told the same limit): wall
//!    time against requests made ÷ allowed rate.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ejgate::store::SqliteStore;
use ejgate::sync::{run_sync, SyncOptions};
use ejgate_dnevnik::{DnevnikConfig, DnevnikConnector};
use ejgate_sdk::connector::SyncMode;
use secrecy::SecretString;

#[allow(dead_code)]
mod common;
use common::Emulator;

const TOKEN: &str = "bench-token-0123456789abcdef";

fn emulator(args: &[&str]) -> Emulator {
    common::ready(common::spawn("dnevnik", TOKEN, args))
}

fn connector(base_url: &str, school: Option<String>, rps: Option<u32>) -> Arc<DnevnikConnector> {
    let mut c = DnevnikConfig::new("bench", base_url.parse().unwrap(), SecretString::from(TOKEN));
    c.school_ids = school.into_iter().collect();
    c.requests_per_second = rps.and_then(std::num::NonZeroU32::new);
    Arc::new(DnevnikConnector::new(c).unwrap())
}

/// Peak resident memory (VmHWM) in MiB since the last reset.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Inserts the rows of `from` (records and changes) into a fresh database with the same
/// schema, by prepared statements in one transaction. Returns (records, seconds).
fn raw_ceiling(from: &std::path::Path, to: &std::path::Path) -> (u64, f64) {
    type RecordRow = (
        Vec<u8>,
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        String,
        Vec<u8>,
        Option<String>,
        String,
        String,
        Option<String>,
    );
    type ChangeRow = (i64, i64, String, String, Vec<u8>, String, String, String, Option<String>, Option<String>);
    let src = rusqlite::Connection::open(from).unwrap();
    let records: Vec<RecordRow> = src
        .prepare("SELECT id, kind, source, source_id, scope, natural_key, date, content, content_hash, source_updated_at, first_seen, last_seen, deleted_at FROM records")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let changes: Vec<ChangeRow> = src
        .prepare("SELECT seq, run_id, at, kind, id, source, source_id, op, before, after FROM changes")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut dst = rusqlite::Connection::open(to).unwrap();
    // The store's own settings (src/store/sqlite.rs), so that the ratio measures the
    // store's work, not a difference in configuration.
    dst.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536; \
         PRAGMA temp_store=memory; PRAGMA wal_autocheckpoint=25000; PRAGMA mmap_size=268435456;",
    )
    .unwrap();
    for entry in std::fs::read_dir("src/store/migrations/sqlite").unwrap() {
        dst.execute_batch(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
    }
    dst.execute("INSERT INTO sync_runs (id, source, mode, started_at, status) VALUES (1, 'bench', 'full', '2026-01-01T00:00:00.000000Z', 'running')", []).unwrap();
    let started = Instant::now();
    let tx = dst.transaction().unwrap();
    {
        let mut insert_change = tx
            .prepare("INSERT INTO changes (seq, run_id, at, kind, id, source, source_id, op, before, after) VALUES (?1, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
            .unwrap();
        for c in &changes {
            insert_change.execute(rusqlite::params![c.0, c.1, c.2, c.3, c.4, c.5, c.6, c.7, c.8, c.9]).unwrap();
        }
        let mut insert_record = tx
            .prepare("INSERT INTO records (id, kind, source, source_id, scope, natural_key, date, content, content_hash, source_updated_at, first_seen, last_seen, deleted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)")
            .unwrap();
        for r in &records {
            insert_record
                .execute(rusqlite::params![r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11, r.12])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    (records.len() as u64, started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();

    // 1–3: one large school year.
    let large = emulator(&["--size", "large", "--schools", "3", "--seed", "1"]);
    let db = dir.path().join("large.db");
    let store = SqliteStore::open(&format!("sqlite://{}", db.display())).await.unwrap();
    let schools: Vec<String> = {
        let ctx: serde_json::Value = reqwest::Client::new()
            .get(format!("{}users/me/context", large.base_url))
            .header("Access-Token", TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ctx["schools"].as_array().unwrap().iter().map(|s| s["id_str"].as_str().unwrap().to_string()).collect()
    };
    reset_peak_rss();
    let options = SyncOptions { mode: SyncMode::Full, ..SyncOptions::default() };
    let (emulator_before, own_before) = (large.cpu_seconds(), common::own_cpu_seconds());
    let report = run_sync(&store, connector(&large.base_url, Some(schools[0].clone()), None), &options).await.unwrap();
    let (emulator_cpu, ejgate_cpu) = (large.cpu_seconds() - emulator_before, common::own_cpu_seconds() - own_before);
    assert!(report.error.is_none(), "{:?}", report.error);
    let mut peaks = vec![peak_rss_mib()];
    let records = report.stats.records_read;
    let e2e = records as f64 / report.elapsed.as_secs_f64();
    let store_rate = records as f64 / report.store_time.as_secs_f64();
    // Keep school 1's rows for the ceiling, measured last: loading a million rows into this
    // process would raise the memory baseline of the schools that follow.
    let school_one = dir.path().join("school-one.db");
    rusqlite::Connection::open(&db).unwrap().execute("VACUUM INTO ?1", [school_one.to_str().unwrap()]).unwrap();

    // 4: two more schools, one after another, into the same store.
    for school in &schools[1..] {
        reset_peak_rss();
        let r = run_sync(&store, connector(&large.base_url, Some(school.clone()), None), &options).await.unwrap();
        assert!(r.error.is_none(), "{:?}", r.error);
        peaks.push(peak_rss_mib());
    }
    drop(large);
    let (ceiling_records, ceiling_secs) = raw_ceiling(&school_one, &dir.path().join("ceiling.db"));
    let ceiling = ceiling_records as f64 / ceiling_secs;

    // 5: the request limit.
    let rate = 100u32;
    let limited = emulator(&["--size", "small", "--seed", "2", "--request-limit", &rate.to_string()]);
    let db2 = dir.path().join("limited.db");
    let store2 = SqliteStore::open(&format!("sqlite://{}", db2.display())).await.unwrap();
    let conn = connector(&limited.base_url, None, Some(rate));
    let started = Instant::now();
    let r = run_sync(&store2, conn.clone(), &options).await.unwrap();
    let wall = started.elapsed();
    assert!(r.error.is_none(), "{:?}", r.error);
    let made = conn.client().stats().requests.load(Ordering::Relaxed);
    let limited_answers = conn.client().stats().rate_limited.load(Ordering::Relaxed);
    let floor = Duration::from_secs_f64(made as f64 / rate as f64);

    println!("\nejgate sync benchmark (Dnevnik emulator on loopback, SQLite)");
    println!(
        "  large school year: {records} records, {} requests, {:.2} s",
        report.stats.requests,
        report.elapsed.as_secs_f64()
    );
    println!("  end-to-end            {:>10.0} records/s   (target ≥ 50,000)", e2e);
    println!("  CPU                   emulator {emulator_cpu:.2} s, ejgate {ejgate_cpu:.2} s (2 cores: both at once)");
    println!(
        "  store write           {:>10.0} records/s   ({:.2} s in the store)",
        store_rate,
        report.store_time.as_secs_f64()
    );
    println!("  raw SQLite ceiling    {:>10.0} records/s   ({ceiling_records} records + as many change rows, one transaction, {ceiling_secs:.2} s)", ceiling);
    println!("  store write / ceiling {:>10.2}              (target ≥ 0.5)", store_rate / ceiling);
    println!(
        "  peak memory per school, one after another: {} MiB",
        peaks.iter().map(|p| format!("{p:.0}")).collect::<Vec<_>>().join(", ")
    );
    println!(
        "  request limit {rate}/s: {made} requests in {:.2} s; requests ÷ rate = {:.2} s; ratio {:.3} (target ≤ 1.2); {limited_answers} limit answers; run {}",
        wall.as_secs_f64(),
        floor.as_secs_f64(),
        wall.as_secs_f64() / floor.as_secs_f64(),
        r.status.as_str()
    );
}
