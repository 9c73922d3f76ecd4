//! Backups end to end, with outside tools as judges: the `ejgate` binary backs a synced
//! store up to a local directory and to a WebDAV server on loopback (`rclone serve webdav`,
//! Debian's rclone); `age -d` (Debian's age) opens a backup with an identity file from
//! `age-keygen`; `ejgate restore` reproduces the store row by row; a target that is down
//! degrades the run and the next run fills the gap; a backup taken while a sync writes
//! restores to a consistent store; the key and the passphrase never show.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{ejgate, output_text, start_emulator, TOKEN};
use ejgate_sdk::synth::{SynthConfig, World};
use sha2::{Digest, Sha256};

/// `rclone serve webdav` over a directory, on a loopback port; stopped when dropped.
struct WebDav {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl WebDav {
    fn start(dir: &Path) -> WebDav {
        std::fs::create_dir_all(dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut w = WebDav { dir: dir.to_path_buf(), port, child: None };
        w.restart();
        w
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/backups/", self.port)
    }

    /// Starts the server (again, on the same port) and waits until it answers.
    fn restart(&mut self) {
        let config = self.dir.with_extension("rclone.conf");
        std::fs::write(&config, "").unwrap();
        let child = Command::new("rclone")
            .args(["serve", "webdav"])
            .arg(&self.dir)
            .args(["--addr", &format!("127.0.0.1:{}", self.port), "--user", "archivist", "--pass", "dav-secret-3141"])
            .env("RCLONE_CONFIG", &config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rclone runs (apt-get install rclone)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "rclone serve webdav did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

impl Drop for WebDav {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A directory with a Dnevnik source, a store, two backup targets (a local directory and
/// the WebDAV server) and `backup_extra` in `[backup]`.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(base_url: &str, dav: &WebDav, source_extra: &str, backup_extra: &str) -> Setup {
        Setup::with_store("sqlite://ejgate.db", base_url, dav, source_extra, backup_extra)
    }

    fn with_store(store: &str, base_url: &str, dav: &WebDav, source_extra: &str, backup_extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("secrets")).unwrap();
        std::fs::create_dir_all(p.join("usb")).unwrap();
        std::fs::write(p.join("secrets/token"), TOKEN).unwrap();
        std::fs::write(p.join("secrets/dav.pass"), "dav-secret-3141").unwrap();
        for f in ["secrets/token", "secrets/dav.pass"] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let config = p.join("ejgate.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\nurl = \"{store}\"\n\n[[source]]\nname = \"dn\"\nsystem = \"dnevnik\"\n\
                 base_url = \"{base_url}\"\ntoken_file = \"secrets/token\"\n{source_extra}\n\n[backup]\n{backup_extra}\n\n\
                 [[backup.target]]\nname = \"usb\"\npath = \"usb\"\n\n[[backup.target]]\nname = \"nas\"\n\
                 webdav = \"{}\"\nusername = \"archivist\"\npassword_file = \"secrets/dav.pass\"\n",
                dav.url()
            ),
        )
        .unwrap();
        Setup { dir, config }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> Output {
        ejgate().arg("--config").arg(&self.config).args(args).output().unwrap()
    }

    fn sync(&self) {
        let out = self.run(&["sync", "--full", "--quiet"]);
        assert!(out.status.success(), "{}", output_text(&out));
    }
}

/// A fresh age identity (`age-keygen`): its file and public key.
fn age_identity(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("director.key");
    let out = Command::new("age-keygen").arg("-o").arg(&key).output().expect("age-keygen runs (apt-get install age)");
    assert!(out.status.success(), "{}", output_text(&out));
    let out = Command::new("age-keygen").arg("-y").arg(&key).output().unwrap();
    (key, String::from_utf8(out.stdout).unwrap().trim().to_string())
}

/// The backup ids a directory holds (its manifests).
fn backup_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_prefix("ejgate-")?.strip_suffix(".manifest.json").map(str::to_string)
            })
            .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn manifest(dir: &Path, id: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(format!("ejgate-{id}.manifest.json"))).unwrap()).unwrap()
}

/// Every row of every table of a SQLite file, by table, in primary-key order.
fn rows(db: &Path) -> BTreeMap<String, Vec<Vec<String>>> {
    // Read-write: a store left in WAL mode by a process that ended is read with its WAL.
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let n = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap().column_count();
        let order: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        let mut st = conn.prepare(&format!("SELECT * FROM \"{t}\" ORDER BY {}", order.join(", "))).unwrap();
        let all: Vec<Vec<String>> = st
            .query_map([], |r| {
                (0..n).map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}"))).collect()
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.insert(t, all);
    }
    out
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// A backup sealed to an age recipient: `age -d` with the identity file opens it into the
/// store's snapshot (its sha256 is the manifest's); `ejgate restore` reproduces the store
/// row by row; both targets hold identical copies; the log lists the backup and, in the
/// restored store, the pull and the restore; the identity never shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_opens_a_backup_and_restore_reproduces_the_store_row_by_row() {
    let emulator = start_emulator(World::generate(SynthConfig::small(31)), None).await;
    let dav_dir = tempfile::tempdir().unwrap();
    let dav = WebDav::start(&dav_dir.path().join("root"));
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = age_identity(keys.path());
    let s = Setup::new(&emulator.base_url(), &dav, "", &format!("recipients = [\"{public}\"]\n"));
    s.sync();

    let out = s.run(&["backup", "--why", "monthly backup (A6)", "--who", "archivist"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let usb = s.path("usb");
    let nas = dav.dir.join("backups");
    let ids = backup_ids(&usb);
    assert_eq!(ids.len(), 1, "{}", output_text(&out));
    assert_eq!(backup_ids(&nas), ids, "the WebDAV target holds the same backup");
    let id = &ids[0];
    let m = manifest(&usb, id);
    assert_eq!(m, manifest(&nas, id));
    assert_eq!(m["who"], "archivist");
    assert_eq!(m["why"], "monthly backup (A6)");
    assert_eq!(m["store_kind"], "sqlite");
    let data = format!("ejgate-{id}.sqlite.zst.age");
    assert_eq!(std::fs::read(usb.join(&data)).unwrap(), std::fs::read(nas.join(&data)).unwrap());
    assert_eq!(m["file_sha256"], sha256_file(&usb.join(&data)));
    // No temporary file is left behind.
    for d in [&usb, &nas] {
        let names: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    // age -d (the outside tool) with the identity file, then zstd -d.
    let work = tempfile::tempdir().unwrap();
    let zst = work.path().join("snapshot.zst");
    let out =
        Command::new("age").arg("-d").arg("-i").arg(&key).arg("-o").arg(&zst).arg(usb.join(&data)).output().unwrap();
    assert!(out.status.success(), "age -d: {}", output_text(&out));
    let plain = work.path().join("snapshot.sqlite");
    let out = Command::new("zstd").arg("-d").arg("-q").arg(&zst).arg("-o").arg(&plain).output().unwrap();
    assert!(out.status.success(), "zstd -d: {}", output_text(&out));
    assert_eq!(m["plaintext_sha256"], sha256_file(&plain));

    // The store as it is now, but for the backup-usage log and the targets' state (their
    // rows for this backup were written after the snapshot).
    let original = rows(&s.path("ejgate.db"));
    let without_log = |mut r: BTreeMap<String, Vec<Vec<String>>>| {
        r.remove("backup_log");
        r.remove("backup_targets");
        r
    };
    assert!(original["records"].len() > 100 && !original["changes"].is_empty());
    let opened = rows(&plain);
    assert_eq!(without_log(opened.clone()), without_log(original.clone()), "what age opened is the store");
    for (table, n) in m["tables"].as_object().unwrap() {
        assert_eq!(opened[table].len() as u64, n.as_u64().unwrap(), "manifest's rows of {table}");
    }

    let restored = s.path("restored.db");
    let into = format!("sqlite://{}", restored.display());
    let out = s.run(&["restore", id, "--into", &into, "--identity", key.to_str().unwrap(), "--why", "drill"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let back = rows(&restored);
    assert_eq!(without_log(back.clone()), without_log(original.clone()), "the restore reproduces the store");
    // The restored log: the original's rows at the snapshot (none), then the pull and the restore.
    let actions: Vec<&str> = back["backup_log"].iter().map(|r| r[2].as_str()).collect();
    assert_eq!(actions, ["Text(\"pull\")", "Text(\"restore\")"], "{back:?}");
    // A second restore into the same file is refused: a restore makes a fresh store.
    let again = s.run(&["restore", id, "--into", &into, "--identity", key.to_str().unwrap()]);
    assert!(!again.status.success() && output_text(&again).contains("the file exists"), "{}", output_text(&again));

    let verify = s.run(&["backup", "verify", id, "--identity", key.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", output_text(&verify));
    assert!(output_text(&verify).contains("content opened"), "{}", output_text(&verify));
    let log = s.run(&["backup", "log"]);
    let log_text = output_text(&log);
    assert!(log.status.success(), "{log_text}");
    assert!(
        log_text.contains("backup ") && log_text.contains("verify ") && log_text.contains("archivist"),
        "{log_text}"
    );
    assert!(log_text.contains("monthly backup (A6)"), "{log_text}");

    // The identity's secret never shows: not in output, not in the manifest.
    let secret = std::fs::read_to_string(&key).unwrap();
    let secret = secret.lines().find(|l| l.starts_with("AGE-SECRET-KEY-")).unwrap();
    for shown in [output_text(&out), output_text(&verify), log_text, m.to_string()] {
        assert!(!shown.contains(secret));
    }
}

/// What `/metrics` of `ejgate serve` shows now for this setup's store and configuration.
async fn scrape(s: &Setup) -> String {
    let config = ejgate::config::Config::load(&s.config).unwrap();
    let store = ejgate::store::open(&config.store_url()).await.unwrap();
    use ejgate::daemon::metrics::{render, Format};
    render(store.as_ref(), &config, &[], Format::Prometheus).await.unwrap()
}

/// The lines of `metrics` that start with `name` (its samples).
fn samples<'a>(metrics: &'a str, name: &str) -> Vec<&'a str> {
    metrics.lines().filter(|l| l.starts_with(name)).collect()
}

/// One target down: the other is written, the run exits 2 naming the target and what to
/// do, `/metrics` flags the run degraded and the target down, and `ejgate status` alerts;
/// the next run with both up writes both, copies the missing backup, and clears the flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_down_degrades_the_run_and_the_next_run_fills_the_gap() {
    let emulator = start_emulator(World::generate(SynthConfig::small(32)), None).await;
    let dav_dir = tempfile::tempdir().unwrap();
    let mut dav = WebDav::start(&dav_dir.path().join("root"));
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = age_identity(keys.path());
    let s = Setup::new(&emulator.base_url(), &dav, "", &format!("recipients = [\"{public}\"]\n"));
    s.sync();
    let usb = s.path("usb");
    let nas = dav.dir.join("backups");

    dav.stop();
    let out = s.run(&["backup"]);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let shown = output_text(&out);
    assert!(shown.contains("nas") && shown.contains("NOT WRITTEN") && shown.contains("degraded"), "{shown}");
    assert!(shown.contains("run `ejgate backup` again"), "{shown}");
    let first = backup_ids(&usb);
    assert_eq!(first.len(), 1);
    assert!(backup_ids(&nas).is_empty());
    let m = scrape(&s).await;
    assert_eq!(
        samples(&m, "ejgate_backup_runs_total"),
        [
            "ejgate_backup_runs_total{outcome=\"ok\"} 0",
            "ejgate_backup_runs_total{outcome=\"degraded\"} 1",
            "ejgate_backup_runs_total{outcome=\"failed\"} 0"
        ],
        "{m}"
    );
    assert_eq!(samples(&m, "ejgate_backup_degraded"), ["ejgate_backup_degraded 1"], "{m}");
    assert_eq!(
        samples(&m, "ejgate_backup_target_up"),
        ["ejgate_backup_target_up{target=\"nas\"} 0", "ejgate_backup_target_up{target=\"usb\"} 1"],
        "{m}"
    );
    let success = samples(&m, "ejgate_backup_target_last_success_timestamp_seconds");
    assert_eq!(success.len(), 1, "only usb was ever written: {m}");
    assert!(success[0].starts_with("ejgate_backup_target_last_success_timestamp_seconds{target=\"usb\"}"), "{m}");
    let status = s.run(&["status"]);
    let shown = output_text(&status);
    assert!(
        shown.contains("backup target «nas» was not written") && shown.contains("Its last backup written: never"),
        "{shown}"
    );

    dav.restart();
    let out = s.run(&["backup"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let both = backup_ids(&usb);
    assert_eq!(both.len(), 2);
    assert_eq!(backup_ids(&nas), both, "the gap is filled");
    assert!(output_text(&out).contains(&format!("gap filled: {}", first[0])), "{}", output_text(&out));
    let m = scrape(&s).await;
    assert_eq!(
        samples(&m, "ejgate_backup_runs_total"),
        [
            "ejgate_backup_runs_total{outcome=\"ok\"} 1",
            "ejgate_backup_runs_total{outcome=\"degraded\"} 1",
            "ejgate_backup_runs_total{outcome=\"failed\"} 0"
        ],
        "{m}"
    );
    assert_eq!(samples(&m, "ejgate_backup_degraded"), ["ejgate_backup_degraded 0"], "{m}");
    assert_eq!(
        samples(&m, "ejgate_backup_target_up"),
        ["ejgate_backup_target_up{target=\"nas\"} 1", "ejgate_backup_target_up{target=\"usb\"} 1"],
        "{m}"
    );
    assert_eq!(samples(&m, "ejgate_backup_target_last_success_timestamp_seconds").len(), 2, "{m}");
    assert!(!output_text(&s.run(&["status"])).contains("backup target «nas»"));
    for id in &both {
        let data = format!("ejgate-{id}.sqlite.zst.age");
        assert_eq!(std::fs::read(usb.join(&data)).unwrap(), std::fs::read(nas.join(&data)).unwrap());
        let v = s.run(&["backup", "verify", id, "--identity", key.to_str().unwrap()]);
        assert!(v.status.success(), "{}", output_text(&v));
    }

    // A damaged copy is found and named.
    let data = nas.join(format!("ejgate-{}.sqlite.zst.age", both[1]));
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&data, bytes).unwrap();
    let v = s.run(&["backup", "verify", &both[1]]);
    assert!(!v.status.success(), "{}", output_text(&v));
    assert!(output_text(&v).contains("nas: BAD") && output_text(&v).contains("damaged"), "{}", output_text(&v));

    let log = s.run(&["backup", "log", "--json"]);
    let uses: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    let outcomes: Vec<(&str, &str)> = uses
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["action"].as_str().unwrap(), u["outcome"].as_str().unwrap()))
        .collect();
    // Newest first.
    assert_eq!(outcomes[outcomes.len() - 1], ("backup", "degraded"));
    assert!(outcomes.contains(&("backup", "ok")) && outcomes[0] == ("verify", "failed"), "{outcomes:?}");
}

/// Backups taken while a sync writes (the sync paced by its request limit) restore to
/// stores that pass their consistency check; at least one was taken wholly inside the sync
/// and holds less than the finished store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_a_sync_writes_restores_consistently() {
    let emulator = start_emulator(World::generate(SynthConfig::small(33)), None).await;
    let dav_dir = tempfile::tempdir().unwrap();
    let dav = WebDav::start(&dav_dir.path().join("root"));
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = age_identity(keys.path());
    let s = Setup::new(
        &emulator.base_url(),
        &dav,
        "requests_per_second = 15\nconcurrency = 2",
        &format!("recipients = [\"{public}\"]\nkeep_last = 1000\n"),
    );
    let mut sync = ejgate()
        .arg("--config")
        .arg(&s.config)
        .args(["sync", "--full", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The sync has committed its first batch (the store exists, migrated).
    let deadline = Instant::now() + Duration::from_secs(300);
    let committed = || {
        rusqlite::Connection::open_with_flags(s.path("ejgate.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT count(*) FROM changes", [], |r| r.get::<_, i64>(0)))
            .is_ok_and(|n| n > 0)
    };
    while !committed() {
        assert!(sync.try_wait().unwrap().is_none(), "the sync ended before the test saw a commit: slow it down");
        assert!(Instant::now() < deadline, "the sync committed nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Backups while the sync runs: those that ended before it did were taken inside it.
    let mut inside = Vec::new();
    while sync.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the sync did not end");
        let out = s.run(&["backup", "--why", "during a sync"]);
        assert!(out.status.success(), "{}", output_text(&out));
        if sync.try_wait().unwrap().is_none() {
            for id in backup_ids(&s.path("usb")) {
                if !inside.contains(&id) {
                    inside.push(id);
                }
            }
        }
    }
    assert!(sync.wait().unwrap().success());
    assert!(!inside.is_empty(), "no backup ended before the sync: raise the pacing");
    let finished = rows(&s.path("ejgate.db"))["changes"].len();
    let mut smaller = 0;
    // The first, a middle one and the last taken inside the sync.
    let picked: Vec<&String> = {
        let mut p = vec![&inside[0], &inside[inside.len() / 2], &inside[inside.len() - 1]];
        p.dedup();
        p
    };
    for (i, id) in picked.into_iter().enumerate() {
        let restored = s.path(&format!("restored-{i}.db"));
        let into = format!("sqlite://{}", restored.display());
        // restore checks the rows against the manifest and runs the consistency check.
        let out = s.run(&["restore", id, "--into", &into, "--identity", key.to_str().unwrap()]);
        assert!(out.status.success(), "{}", output_text(&out));
        assert!(output_text(&out).contains("consistency check passes"), "{}", output_text(&out));
        let changes = rows(&restored)["changes"].len();
        if changes < finished {
            smaller += 1;
        }
    }
    assert!(smaller > 0, "every backup holds the finished store: none was taken while the sync wrote");
}

/// The director's passphrase (A8): a backup sealed with it restores with it alone; it never
/// shows, even at debug level, and is not in the manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passphrase_backup_restores_and_the_passphrase_never_shows() {
    const PASSPHRASE: &str = "correct horse battery staple 9417";
    let emulator = start_emulator(World::generate(SynthConfig::small(34)), None).await;
    let dav_dir = tempfile::tempdir().unwrap();
    let dav = WebDav::start(&dav_dir.path().join("root"));
    let s = Setup::new(&emulator.base_url(), &dav, "", "passphrase_env = \"EJGATE_TEST_BACKUP_PASSPHRASE\"\n");
    s.sync();
    let run = |args: &[&str]| {
        ejgate()
            .arg("--config")
            .arg(&s.config)
            .arg("-vv")
            .args(args)
            .env("EJGATE_TEST_BACKUP_PASSPHRASE", PASSPHRASE)
            .output()
            .unwrap()
    };
    let out = run(&["backup"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let id = backup_ids(&s.path("usb")).pop().unwrap();
    let m = manifest(&s.path("usb"), &id);
    assert_eq!(m["encryption"], "age-scrypt");
    let restored = s.path("restored.db");
    let restore = run(&["restore", &id, "--into", &format!("sqlite://{}", restored.display())]);
    assert!(restore.status.success(), "{}", output_text(&restore));
    let log = run(&["backup", "log"]);
    for shown in [output_text(&out), output_text(&restore), output_text(&log), m.to_string()] {
        assert!(!shown.contains(PASSPHRASE) && !shown.contains("dav-secret-3141"), "{shown}");
    }
    // A wrong passphrase does not open it, and nothing is written.
    let wrong = s.path("wrong.db");
    let out = ejgate()
        .arg("--config")
        .arg(&s.config)
        .args(["restore", &id, "--into", &format!("sqlite://{}", wrong.display())])
        .env("EJGATE_TEST_BACKUP_PASSPHRASE", "not the passphrase")
        .output()
        .unwrap();
    assert!(!out.status.success() && !wrong.exists(), "{}", output_text(&out));
    assert!(output_text(&out).contains("passphrase does not open"), "{}", output_text(&out));
}

/// Every row of every table of the PostgreSQL schema a store URL selects (the migrations'
/// bookkeeping left out), each row as PostgreSQL writes it as text, in text order.
async fn pg_rows(url: &str) -> BTreeMap<String, Vec<String>> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() \
         AND table_name NOT LIKE '\\_sqlx%' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let sql = format!("SELECT x::text FROM \"{t}\" x ORDER BY 1");
        let all: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap();
        out.insert(t, all);
    }
    out
}

/// A PostgreSQL store (its own schema on the test server): `ejgate backup` writes one
/// consistent export to both targets; `age -d` and `zstd -d` open it to the manifest's
/// sha256; `ejgate restore --into` a fresh schema reproduces every table row by row, the
/// identity sequences go on after the restored ids, a second restore into the same schema
/// is refused, and `backup verify` opens and counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_backs_up_and_restores_row_by_row_into_a_fresh_schema() {
    let emulator = start_emulator(World::generate(SynthConfig::small(35)), None).await;
    let dav_dir = tempfile::tempdir().unwrap();
    let dav = WebDav::start(&dav_dir.path().join("root"));
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = age_identity(keys.path());
    let source = common::PgSchema::create("bkp_src").await;
    let s = Setup::with_store(&source.url, &emulator.base_url(), &dav, "", &format!("recipients = [\"{public}\"]\n"));
    s.sync();

    let out = s.run(&["backup", "--why", "monthly backup (A6)", "--who", "archivist"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let usb = s.path("usb");
    let nas = dav.dir.join("backups");
    let ids = backup_ids(&usb);
    assert_eq!(ids.len(), 1, "{}", output_text(&out));
    assert_eq!(backup_ids(&nas), ids);
    let id = &ids[0];
    let m = manifest(&usb, id);
    assert_eq!(m["store_kind"], "postgres");
    let data = format!("ejgate-{id}.postgres.zst.age");
    assert_eq!(std::fs::read(usb.join(&data)).unwrap(), std::fs::read(nas.join(&data)).unwrap());

    // The outside tools open it: age -d, zstd -d; the export's rows per table are the
    // manifest's and the store's.
    let work = tempfile::tempdir().unwrap();
    let zst = work.path().join("export.zst");
    let out =
        Command::new("age").arg("-d").arg("-i").arg(&key).arg("-o").arg(&zst).arg(usb.join(&data)).output().unwrap();
    assert!(out.status.success(), "age -d: {}", output_text(&out));
    let plain = work.path().join("export");
    let out = Command::new("zstd").arg("-d").arg("-q").arg(&zst).arg("-o").arg(&plain).output().unwrap();
    assert!(out.status.success(), "zstd -d: {}", output_text(&out));
    assert_eq!(m["plaintext_sha256"], sha256_file(&plain));
    let original = pg_rows(&source.url).await;
    assert!(original["records"].len() > 100 && !original["changes"].is_empty());
    let text = std::fs::read_to_string(&plain).unwrap();
    assert_eq!(text.lines().next(), Some("EJGATE-POSTGRES-EXPORT 1"));
    for (table, n) in m["tables"].as_object().unwrap() {
        if table != "backup_log" && table != "backup_targets" {
            assert_eq!(original[table].len() as u64, n.as_u64().unwrap(), "manifest's rows of {table}");
        }
    }

    // The backup-usage log and the targets' state got their rows for this backup after the
    // snapshot.
    let without_log = |mut r: BTreeMap<String, Vec<String>>| {
        r.remove("backup_log");
        r.remove("backup_targets");
        r
    };
    let target = common::PgSchema::create("bkp_dst").await;
    let out = s.run(&["restore", id, "--into", &target.url, "--identity", key.to_str().unwrap(), "--why", "drill"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let back = pg_rows(&target.url).await;
    assert_eq!(without_log(back.clone()), without_log(original.clone()), "the restore reproduces the store");
    let actions: Vec<bool> =
        back["backup_log"].iter().map(|r| r.contains(",pull,") || r.contains(",restore,")).collect();
    assert_eq!(actions, [true, true], "{:?}", back["backup_log"]);
    // The restored store goes on: its next change-log row and run come after the restored ones.
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&target.url).await.unwrap();
        let max_run: i64 = sqlx::query_scalar("SELECT max(id) FROM sync_runs").fetch_one(&mut conn).await.unwrap();
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO sync_runs (source, mode, status, started_at) VALUES ('x', 'full', 'running', now()) RETURNING id",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(next, max_run + 1);
    }
    let again = s.run(&["restore", id, "--into", &target.url, "--identity", key.to_str().unwrap()]);
    assert!(
        !again.status.success() && output_text(&again).contains("a restore makes a fresh store"),
        "{}",
        output_text(&again)
    );
    // A SQLite target is refused for a PostgreSQL backup.
    let wrong = s.path("wrong.db");
    let out = s.run(&[
        "restore",
        id,
        "--into",
        &format!("sqlite://{}", wrong.display()),
        "--identity",
        key.to_str().unwrap(),
    ]);
    assert!(!out.status.success() && !wrong.exists(), "{}", output_text(&out));

    let verify = s.run(&["backup", "verify", id, "--identity", key.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", output_text(&verify));
    assert!(output_text(&verify).contains("content opened"), "{}", output_text(&verify));
}

/// Backups of a PostgreSQL store taken while a sync writes into it: each restores into a
/// fresh schema whose consistency check passes (the restore runs it), and one taken inside
/// the sync holds less than the finished store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_backup_taken_while_a_sync_writes_restores_consistently() {
    use sqlx::Connection;
    let emulator = start_emulator(World::generate(SynthConfig::small(36)), None).await;
    let dav_dir = tempfile::tempdir().unwrap();
    let dav = WebDav::start(&dav_dir.path().join("root"));
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = age_identity(keys.path());
    let source = common::PgSchema::create("bkp_live").await;
    let s = Setup::with_store(
        &source.url,
        &emulator.base_url(),
        &dav,
        "requests_per_second = 15\nconcurrency = 2",
        &format!("recipients = [\"{public}\"]\nkeep_last = 1000\n"),
    );
    let mut sync = ejgate()
        .arg("--config")
        .arg(&s.config)
        .args(["sync", "--full", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let n: Option<i64> = async {
            let mut conn = sqlx::PgConnection::connect(&source.url).await.ok()?;
            sqlx::query_scalar("SELECT count(*) FROM changes").fetch_one(&mut conn).await.ok()
        }
        .await;
        if n.is_some_and(|n| n > 0) {
            break;
        }
        assert!(sync.try_wait().unwrap().is_none(), "the sync ended before the test saw a commit: slow it down");
        assert!(Instant::now() < deadline, "the sync committed nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut inside = Vec::new();
    while sync.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the sync did not end");
        let out = s.run(&["backup", "--why", "during a sync"]);
        assert!(out.status.success(), "{}", output_text(&out));
        if sync.try_wait().unwrap().is_none() {
            for id in backup_ids(&s.path("usb")) {
                if !inside.contains(&id) {
                    inside.push(id);
                }
            }
        }
    }
    assert!(sync.wait().unwrap().success());
    assert!(!inside.is_empty(), "no backup ended before the sync: raise the pacing");
    let finished = pg_rows(&source.url).await["changes"].len();
    let mut smaller = 0;
    let picked: Vec<&String> = {
        let mut p = vec![&inside[0], &inside[inside.len() - 1]];
        p.dedup();
        p
    };
    for id in picked {
        let target = common::PgSchema::create("bkp_live_dst").await;
        let out = s.run(&["restore", id, "--into", &target.url, "--identity", key.to_str().unwrap()]);
        assert!(out.status.success(), "{}", output_text(&out));
        assert!(output_text(&out).contains("consistency check passes"), "{}", output_text(&out));
        if pg_rows(&target.url).await["changes"].len() < finished {
            smaller += 1;
        }
    }
    assert!(smaller > 0, "every backup holds the finished store: none was taken while the sync wrote");
}

/// The schedule's backup job through `ejgate jobs run` (the daemon's own path): both
/// targets written, the backup-usage log names the job; with the WebDAV target down the
/// job run fails (retried, alerted) and its next run fills the gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_job_writes_both_targets_and_the_log() {
    let emulator = start_emulator(World::generate(SynthConfig::small(37)), None).await;
    let dav_dir = tempfile::tempdir().unwrap();
    let mut dav = WebDav::start(&dav_dir.path().join("root"));
    let keys = tempfile::tempdir().unwrap();
    let (_, public) = age_identity(keys.path());
    let s = Setup::new(&emulator.base_url(), &dav, "", &format!("recipients = [\"{public}\"]\n"));
    std::fs::create_dir_all(s.path("schedules")).unwrap();
    std::fs::write(
        s.path("schedules/archive.toml"),
        "time_zone = \"Europe/Moscow\"\n\n[[job]]\nname = \"monthly-backup\"\nkind = \"backup\"\ntarget = \"all\"\n\
         cron = \"30 3 1 * *\"\ncatch_up = \"once\"\ntime_limit_minutes = 60\n\
         retry = { attempts = 1, delay_minutes = 60 }\n",
    )
    .unwrap();
    s.sync();
    let usb = s.path("usb");
    let nas = dav.dir.join("backups");

    let out = s.run(&["jobs", "run", "monthly-backup"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("job «monthly-backup» run #1 succeeded"),
        "{}",
        output_text(&out)
    );
    let ids = backup_ids(&usb);
    assert_eq!(ids.len(), 1);
    assert_eq!(backup_ids(&nas), ids);
    let m = manifest(&usb, &ids[0]);
    assert_eq!(m["who"], "ejgate serve (job monthly-backup)");
    let log = s.run(&["backup", "log", "--json"]);
    let uses: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    let newest = &uses[0];
    assert_eq!(
        (newest["action"].as_str(), newest["outcome"].as_str(), newest["backup_id"].as_str()),
        (Some("backup"), Some("ok"), Some(ids[0].as_str())),
        "{uses}"
    );
    assert_eq!(newest["who"], "ejgate serve (job monthly-backup)");

    dav.stop();
    let out = s.run(&["jobs", "run", "monthly-backup"]);
    assert!(!out.status.success(), "{}", output_text(&out));
    let shown = output_text(&out);
    assert!(shown.contains("degraded: not written to «nas»") && shown.contains("retry at"), "{shown}");
    assert_eq!(backup_ids(&usb).len(), 2);
    assert_eq!(backup_ids(&nas).len(), 1);
    let status = output_text(&s.run(&["status"]));
    assert!(status.contains("backup target «nas» was not written"), "{status}");

    dav.restart();
    let out = s.run(&["jobs", "run", "monthly-backup"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(backup_ids(&usb).len(), 3);
    assert_eq!(backup_ids(&nas), backup_ids(&usb), "the gap is filled");
}
