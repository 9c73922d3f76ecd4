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

/// A PostgreSQL schema of a test's own on the server at `EJGATE_TEST_PG_URL` (default
/// [`DEFAULT_PG_URL`](pg::DEFAULT_PG_URL)), so that tests run in parallel.
pub mod pg {
    use std::sync::atomic::{AtomicU64, Ordering};

    use sqlx::{AssertSqlSafe, Connection};

    pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

    /// A schema of its own on the shared PostgreSQL server; dropped when the test ends (also
    /// when it panics).
    pub struct PgSchema {
        admin_url: String,
        schema: String,
    }

    impl PgSchema {
        /// A fresh schema, and the store URL that selects it (`options=-c search_path=…`).
        /// An unreachable server fails the test: CI starts one.
        pub async fn create() -> (String, PgSchema) {
            let admin_url = std::env::var("EJGATE_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
            let schema = format!("ejgate_t_{}", unique_suffix());
            let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {admin_url} is unreachable ({e}): start the server or point \
                     EJGATE_TEST_PG_URL at one"
                )
            });
            sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut conn)
                .await
                .expect("create the test schema");
            let sep = if admin_url.contains('?') { '&' } else { '?' };
            let url = format!("{admin_url}{sep}options=-c%20search_path%3D{schema}");
            (url, PgSchema { admin_url, schema })
        }
    }

    impl Drop for PgSchema {
        fn drop(&mut self) {
            let admin_url = self.admin_url.clone();
            let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
            // The test's runtime may be gone or busy: drop the schema from a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                    sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await.ok()
                })
            })
            .join();
        }
    }

    pub fn unique_suffix() -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        format!("{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), nanos)
    }
}
