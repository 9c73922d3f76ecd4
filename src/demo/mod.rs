//! `ejgate demo`: the whole main job on a fresh machine, with nothing to set up. It makes a
//! synthetic school year, serves it through the Dnevnik emulator on loopback, writes a
//! configuration and a token file, syncs everything into SQLite, and compares what the
//! store holds with the generator's ground truth.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use ejgate_dnevnik::emulator::{self, EmulatorOptions};
use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{SynthConfig, World};

use crate::config::Config;
use crate::store;
use crate::sync::{run_sync, Progress, SyncOptions, SyncReport};

/// Options of the demo.
pub struct DemoOptions {
    pub dir: PathBuf,
    pub seed: u64,
    pub synth: SynthConfig,
    pub progress: Arc<dyn Progress>,
}

/// What the demo did.
pub struct DemoReport {
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub store_url: String,
    pub emulator_url: String,
    pub report: SyncReport,
    /// kind → (in the store, in the ground truth)
    pub comparison: BTreeMap<EntityKind, (u64, u64)>,
}

impl DemoReport {
    pub fn matches_truth(&self) -> bool {
        self.comparison.values().all(|(a, b)| a == b)
    }
}

/// A token for the emulator: random enough for a loopback demo, never printed.
fn fresh_token() -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(
        &std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes(),
    );
    hasher.update(&(&hasher as *const _ as usize).to_le_bytes());
    hasher.finalize().to_hex()[..32].to_string()
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// Runs the demo.
pub async fn run(options: DemoOptions) -> anyhow::Result<DemoReport> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir.join("secrets")).with_context(|| format!("cannot create {}", dir.display()))?;
    let db = dir.join("ejgate.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let world = World::generate(SynthConfig { seed: options.seed, ..options.synth.clone() });
    let expected = ejgate_dnevnik::truth::expected_counts(&world);
    let token = fresh_token();
    let token_path = dir.join("secrets").join("dnevnik.token");
    write_private(&token_path, &token).with_context(|| format!("cannot write {}", token_path.display()))?;
    let handle = emulator::start(world, EmulatorOptions::new(token), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("cannot start the Dnevnik emulator on loopback")?;
    let config_path = dir.join("ejgate.toml");
    let config_text = format!(
        "# Written by `ejgate demo`: the store and a Dnevnik emulator on loopback.\n\
         # The emulator stopped when the demo ended; `ejgate status --config {cfg}` still reads the store.\n\
         [store]\nurl = \"sqlite://ejgate.db\"\n\n\
         [[source]]\nname = \"dnevnik-demo\"\nsystem = \"dnevnik\"\nbase_url = \"{url}\"\n\
         token_file = \"secrets/dnevnik.token\"\nwindow_days = 35\nchunk_days = 31\nconcurrency = 4\n",
        cfg = config_path.display(),
        url = handle.base_url()
    );
    std::fs::write(&config_path, &config_text).with_context(|| format!("cannot write {}", config_path.display()))?;
    let config = Config::load(&config_path)?;
    let store_url = config.store_url();
    let store = store::open(&store_url).await?;
    let source = &config.sources[0];
    let connector = crate::sources::connector(&config, source)?;
    let report = run_sync(
        store.as_ref(),
        connector,
        &SyncOptions { mode: SyncMode::Full, concurrency: source.concurrency, progress: options.progress.clone() },
    )
    .await?;
    let emulator_url = handle.base_url();
    handle.shutdown().await;
    let counts = store.counts(None).await?;
    let comparison = expected
        .iter()
        .map(|(kind, n)| {
            let have = counts.iter().find(|c| c.kind == *kind).map(|c| c.live).unwrap_or(0);
            (*kind, (have, *n))
        })
        .collect();
    Ok(DemoReport { dir: dir.clone(), config_path, store_url, emulator_url, report, comparison })
}

/// The demo's summary for a person.
pub fn render(r: &DemoReport) -> String {
    let mut out = String::new();
    let s = &r.report.stats;
    out.push_str(&format!(
        "\nSynced a school year from the Dnevnik emulator ({}) in {:.1} s (store {:.1} s): {} requests, {} records, {} inserted.\n",
        r.emulator_url,
        r.report.elapsed.as_secs_f64(),
        r.report.store_time.as_secs_f64(),
        s.requests,
        s.records_read,
        s.inserted
    ));
    if let Some(e) = &r.report.error {
        out.push_str(&format!("The sync FAILED: {e}\n"));
    }
    out.push_str("\n  entity             in the store   ground truth\n");
    for (kind, (have, want)) in &r.comparison {
        let mark = if have == want { "" } else { "   <- differs" };
        out.push_str(&format!("  {:<18} {:>12}   {:>12}{mark}\n", kind.as_str(), have, want));
    }
    out.push_str(&format!(
        "\n{}\n\nWhere everything is:\n  configuration  {}\n  store          {}\n  token          {}\n\nNext:\n  ejgate status --config {}\n  ejgate emulate dnevnik --listen 127.0.0.1:8080 --token-file {}   (the emulator on its own)\n",
        if r.matches_truth() { "Every entity matches the generator's ground truth." } else { "Some entities differ from the ground truth." },
        r.config_path.display(),
        r.store_url,
        r.dir.join("secrets/dnevnik.token").display(),
        r.config_path.display(),
        r.dir.join("secrets/dnevnik.token").display(),
    ));
    out
}
