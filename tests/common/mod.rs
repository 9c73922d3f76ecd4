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
