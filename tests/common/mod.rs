//! Shared pieces of the end-to-end tests: a Dnevnik emulator on loopback serving a
//! synthetic school, a connector pointed at it, and a fresh SQLite store.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ejgate::store::{SqliteStore, Store};
use ejgate::sync::{run_sync, SyncOptions, SyncReport};
use ejgate_dnevnik::emulator::{self, EmulatorHandle, EmulatorOptions};
use ejgate_dnevnik::{DnevnikConfig, DnevnikConnector};
use ejgate_sdk::client::RetryPolicy;
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{SynthConfig, World};
use secrecy::SecretString;

pub const TOKEN: &str = "test-token-5f0c1e9a7d2b4c68a1e3";

/// The `ejgate` binary of this build, as a user runs it.
pub fn ejgate() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_ejgate"))
}

/// A finished command's status, stdout and stderr, for an assertion's message.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub struct Harness {
    pub emulator: EmulatorHandle,
    pub store: Box<dyn Store>,
    pub dir: tempfile::TempDir,
}

pub async fn start_emulator(world: World, request_limit: Option<u32>) -> EmulatorHandle {
    let mut options = EmulatorOptions::new(TOKEN);
    options.request_limit = request_limit;
    emulator::start(world, options, SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("emulator starts")
}

/// A Dnevnik connector for an emulator, with fast retries.
pub fn dnevnik_connector(emulator: &EmulatorHandle, instance: &str) -> Arc<DnevnikConnector> {
    let mut c = DnevnikConfig::new(instance, emulator.base_url().parse().unwrap(), SecretString::from(TOKEN));
    c.retry = fast_retries();
    Arc::new(DnevnikConnector::new(c).expect("connector builds"))
}

/// Retries that do not wait out production backoffs.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        max_rate_limited_attempts: 50,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(200),
    }
}

impl Harness {
    pub async fn new(config: SynthConfig) -> Harness {
        Harness::with_limit(config, None).await
    }

    pub async fn with_limit(config: SynthConfig, request_limit: Option<u32>) -> Harness {
        let world = World::generate(config);
        let emulator = start_emulator(world, request_limit).await;
        Harness::around(emulator).await
    }

    /// An emulator started with these options (accounts, forms) over this world.
    pub async fn with_options(world: World, options: EmulatorOptions) -> Harness {
        let emulator =
            emulator::start(world, options, SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("emulator starts");
        Harness::around(emulator).await
    }

    async fn around(emulator: EmulatorHandle) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ejgate.db").display());
        let store: Box<dyn Store> = Box::new(SqliteStore::open(&url).await.expect("store opens"));
        Harness { emulator, store, dir }
    }

    /// A connector with fast retries (tests must not wait out production backoffs).
    pub fn connector(&self, tweak: impl FnOnce(&mut DnevnikConfig)) -> Arc<DnevnikConnector> {
        let mut c =
            DnevnikConfig::new("dnevnik-test", self.emulator.base_url().parse().unwrap(), SecretString::from(TOKEN));
        c.retry = fast_retries();
        tweak(&mut c);
        Arc::new(DnevnikConnector::new(c).expect("connector builds"))
    }

    pub async fn sync(&self, mode: SyncMode) -> SyncReport {
        self.sync_with(mode, |_| {}).await
    }

    pub async fn sync_with(&self, mode: SyncMode, tweak: impl FnOnce(&mut DnevnikConfig)) -> SyncReport {
        let connector = self.connector(tweak);
        run_sync(self.store.as_ref(), connector, &SyncOptions { mode, ..SyncOptions::default() })
            .await
            .expect("the store records the run")
    }

    pub fn expected(&self) -> BTreeMap<EntityKind, u64> {
        self.emulator.world().read(|w| ejgate_dnevnik::truth::TRUTH.expected_counts(w))
    }

    pub async fn live_counts(&self) -> BTreeMap<EntityKind, u64> {
        live_counts(self.store.as_ref()).await
    }
}

pub async fn live_counts(store: &dyn Store) -> BTreeMap<EntityKind, u64> {
    store.live_counts(None).await.unwrap()
}

/// A fresh schema on the test PostgreSQL server (`EJGATE_TEST_PG_URL`, default
/// `postgres://postgres@127.0.0.1:5432/test`) and a store URL that selects it; the schema is
/// dropped when this is dropped (also when the test panics).
pub struct PgSchema {
    pub url: String,
    admin: String,
    schema: String,
}

impl PgSchema {
    pub async fn create(prefix: &str) -> PgSchema {
        use sqlx::Connection;
        let admin =
            std::env::var("EJGATE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        // Tests of one binary run in parallel: the counter keeps their schemas apart.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let schema = format!("{prefix}_{}_{n}_{nanos}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin} is unreachable ({e}): start the server or point EJGATE_TEST_PG_URL at one")
        });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut conn).await.unwrap();
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-c%20search_path%3D{schema}");
        PgSchema { url, admin, schema }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (admin, sql) = (self.admin.clone(), format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        // The test's runtime may be gone or busy: drop the schema from a thread of its own.
        let _ = std::thread::spawn(move || {
            use sqlx::Connection;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.ok()
            })
        })
        .join();
    }
}

/// An XLSX workbook as openpyxl reads it: per sheet its rows (values; dates as ISO text),
/// frozen panes, filter range and column widths. Panics with openpyxl's words if it cannot.
pub fn openpyxl(path: &std::path::Path) -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, sys, datetime, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
out = {}
for ws in wb.worksheets:
    def value(c):
        return c.isoformat() if isinstance(c, (datetime.date, datetime.datetime)) else c
    out[ws.title] = {
        "rows": [[value(c) for c in row] for row in ws.iter_rows(values_only=True)],
        "freeze": ws.freeze_panes,
        "filter": ws.auto_filter.ref,
        "widths": {k: v.width for k, v in ws.column_dimensions.items()},
        "heights": {str(k): v.height for k, v in ws.row_dimensions.items() if v.height},
        "wrapped": [c.coordinate for row in ws.iter_rows() for c in row if c.alignment is not None and c.alignment.wrap_text],
    }
print(json.dumps({"sheets": [ws.title for ws in wb.worksheets], "data": out}, ensure_ascii=False))
"#;
    let out = std::process::Command::new("python3").args(["-c", SCRIPT]).arg(path).output().expect("python3 runs");
    assert!(out.status.success(), "openpyxl cannot read {}: {}", path.display(), output_text(&out));
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// Every sheet of an XLSX workbook as LibreOffice converts it to CSV (headless, UTF-8, all
/// sheets): sheet name → rows. Panics with LibreOffice's words if it cannot.
pub fn libreoffice_csv(path: &std::path::Path) -> BTreeMap<String, Vec<Vec<String>>> {
    let dir = tempfile::tempdir().unwrap();
    // A profile of its own: tests run side by side, and LibreOffice locks its profile.
    let profile = format!("-env:UserInstallation=file://{}", dir.path().join("profile").display());
    let out = std::process::Command::new("soffice")
        .arg(&profile)
        .args([
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
        ])
        .arg("--outdir")
        .arg(dir.path())
        .arg(path)
        .output()
        .expect("soffice runs (Debian: apt-get install libreoffice-calc-nogui)");
    assert!(out.status.success(), "LibreOffice cannot convert {}: {}", path.display(), output_text(&out));
    let stem = path.file_stem().unwrap().to_string_lossy().to_string();
    let mut sheets = BTreeMap::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let Some(sheet) = name.strip_prefix(&format!("{stem}-")).and_then(|n| n.strip_suffix(".csv")) else { continue };
        let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_path(&p).unwrap();
        let rows: Vec<Vec<String>> = r.records().map(|x| x.unwrap().iter().map(str::to_string).collect()).collect();
        sheets.insert(sheet.to_string(), rows);
    }
    assert!(!sheets.is_empty(), "LibreOffice wrote no CSV for {}: {}", path.display(), output_text(&out));
    sheets
}

/// Runs an outside judge of a file (`qpdf --check`, `pdftotext`, `pdffonts`, `pdfinfo`) and
/// returns what it printed; panics with its words when it fails. `pdftotext` writes to
/// standard output.
pub fn tool(name: &str, args: &[&str], file: &std::path::Path) -> String {
    let mut command = std::process::Command::new(name);
    command.args(args).arg(file);
    if name == "pdftotext" {
        command.arg("-");
    }
    let out =
        command.output().unwrap_or_else(|e| panic!("{name} runs (Debian: apt-get install qpdf poppler-utils): {e}"));
    assert!(out.status.success(), "{name} {args:?} {}: {}", file.display(), output_text(&out));
    String::from_utf8_lossy(&out.stdout).to_string()
}
