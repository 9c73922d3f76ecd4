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
                "[store]\nurl = \"sqlite://ejgate.db\"\n\n[[source]]\nname = \"dn\"\nsystem = \"dnevnik\"\n\
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

    // The store as it is now, but for the backup-usage log (its row for this backup was
    // written after the snapshot).
    let original = rows(&s.path("ejgate.db"));
    let without_log = |mut r: BTreeMap<String, Vec<Vec<String>>>| {
        r.remove("backup_log");
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

/// One target down: the other is written, the run exits 2 naming the target and what to
/// do; the next run with both up writes both and copies the missing backup.
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

    dav.restart();
    let out = s.run(&["backup"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let both = backup_ids(&usb);
    assert_eq!(both.len(), 2);
    assert_eq!(backup_ids(&nas), both, "the gap is filled");
    assert!(output_text(&out).contains(&format!("gap filled: {}", first[0])), "{}", output_text(&out));
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
