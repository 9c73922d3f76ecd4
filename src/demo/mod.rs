//! `ejgate demo`: the whole main job on a fresh machine, with nothing to set up. It makes a
//! synthetic school year, serves it through the emulator of every system on loopback,
//! writes a configuration with one source per system and their token files, syncs them all
//! into one SQLite store, and compares what each source brought with the generator's ground
//! truth of what that system exposes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use ejgate_sdk::connector::SyncMode;
use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{SynthConfig, World};

use crate::config::{Config, System};
use crate::emulators::Emulator;
use crate::store;
use crate::sync::{run_sync, Progress, SyncOptions, SyncReport};

/// Makes the progress display of one source's sync, given the source's name.
pub type ProgressFactory = Arc<dyn Fn(&str) -> Arc<dyn Progress> + Send + Sync>;

/// Options of the demo.
pub struct DemoOptions {
    pub dir: PathBuf,
    pub seed: u64,
    pub synth: SynthConfig,
    /// The systems to serve the school through, one source instance each.
    pub systems: Vec<System>,
    /// Progress display of one source's sync.
    pub progress: ProgressFactory,
}

/// Every system `ejgate demo` can emulate.
pub const ALL_SYSTEMS: [System; 5] = [System::Dnevnik, System::Epos, System::Kiasuo, System::Mosreg, System::Files];

/// Where the demo writes the files source's export, under its directory.
const EXPORT_DIR: &str = "files-export";

/// What the demo did with one source.
pub struct DemoSource {
    pub name: String,
    pub system: System,
    pub emulator_url: String,
    pub report: SyncReport,
    /// kind → (in the store from this source, in the ground truth of what the system exposes)
    pub comparison: BTreeMap<EntityKind, (u64, u64)>,
}

/// What the demo did.
pub struct DemoReport {
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub store_url: String,
    pub sources: Vec<DemoSource>,
    /// The people of the five sources linked to one another (the school is bound to all).
    pub links: Option<crate::link::LinkReport>,
}

impl DemoSource {
    pub fn matches_truth(&self) -> bool {
        self.report.error.is_none() && self.comparison.values().all(|(a, b)| a == b)
    }
}

impl DemoReport {
    pub fn matches_truth(&self) -> bool {
        self.sources.iter().all(DemoSource::matches_truth)
    }
}

/// The school's name in the demo's configuration.
const SCHOOL: &str = "Демонстрационная школа";

/// The name of a system's source in the demo's configuration.
fn demo_source_name(system: System) -> String {
    format!("{}-demo", system.as_str())
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

/// Runs the demo: one emulator per system, all serving the same school, and one source
/// instance per system in one store.
pub async fn run(options: DemoOptions) -> anyhow::Result<DemoReport> {
    let dir = &options.dir;
    std::fs::create_dir_all(dir.join("secrets")).with_context(|| format!("cannot create {}", dir.display()))?;
    let db = dir.join("ejgate.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let world = World::generate(SynthConfig { seed: options.seed, ..options.synth.clone() });
    let mut emulators = Vec::new();
    let mut config_text = String::from(
        "# Written by `ejgate demo`: the store and one emulator per system on loopback, all\n\
         # serving the same synthetic school. The emulators stopped when the demo ended;\n\
         # `ejgate status --config <this file>` still reads the store.\n\
         [store]\nurl = \"sqlite://ejgate.db\"\n",
    );
    for &system in &options.systems {
        if system == System::Files {
            // The school's "own system" exports files; the source reads them in the
            // built-in default layout.
            let emulator = Emulator::export_files(&world, &dir.join(EXPORT_DIR))?;
            config_text.push_str(&format!(
                "\n[[source]]\nname = \"{}\"\nsystem = \"files\"\ndir = \"{EXPORT_DIR}\"\n",
                demo_source_name(system)
            ));
            emulators.push((system, emulator));
            continue;
        }
        let token = fresh_token();
        let token_file = format!("secrets/{}.token", system.as_str());
        let token_path = dir.join(&token_file);
        write_private(&token_path, &token).with_context(|| format!("cannot write {}", token_path.display()))?;
        let emulator =
            Emulator::start(system, world.clone(), &token, None, SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        config_text.push_str(&format!(
            "\n[[source]]\nname = \"{name}\"\nsystem = \"{system}\"\nbase_url = \"{url}\"\n\
             token_file = \"{token_file}\"\nwindow_days = 35\nconcurrency = 4\n",
            name = demo_source_name(system),
            system = system.as_str(),
            url = emulator.base_url(),
        ));
        emulators.push((system, emulator));
    }
    if options.systems.len() > 1 {
        let names: Vec<String> = options.systems.iter().map(|s| format!("\"{}\"", demo_source_name(*s))).collect();
        config_text.push_str(&format!(
            "\n# One school in every system: its people are linked across the sources (`ejgate link`).\n\
             [[school]]\nname = \"{SCHOOL}\"\nsources = [{}]\n",
            names.join(", ")
        ));
    }
    let config_path = dir.join("ejgate.toml");
    std::fs::write(&config_path, &config_text).with_context(|| format!("cannot write {}", config_path.display()))?;
    let config = Config::load(&config_path)?;
    let store_url = config.store_url();
    let store = store::open(&store_url).await?;
    let mut sources = Vec::new();
    for ((system, emulator), source) in emulators.into_iter().zip(&config.sources) {
        let connector = crate::sources::connector(&config, source)?;
        let report = run_sync(
            store.as_ref(),
            connector,
            &SyncOptions {
                mode: SyncMode::Full,
                concurrency: source.concurrency,
                progress: (options.progress)(&source.name),
                skip_limit: source.skip_limit(),
                year: source.year,
                deletes: source.delete_limit(false),
                ..SyncOptions::default()
            },
        )
        .await?;
        let emulator_url = emulator.base_url();
        emulator.shutdown().await;
        let live = store.live_counts(Some(&source.name)).await?;
        let comparison = crate::sources::truth(system)
            .expected_counts(&world)
            .into_iter()
            .map(|(kind, n)| (kind, (live.get(&kind).copied().unwrap_or(0), n)))
            .collect();
        sources.push(DemoSource { name: source.name.clone(), system, emulator_url, report, comparison });
    }
    let links = match config.schools.first() {
        Some(school) => {
            Some(crate::link::link_school(store.as_ref(), &school.name, &school.sources, &school.match_rules).await?)
        }
        None => None,
    };
    Ok(DemoReport { dir: dir.clone(), config_path, store_url, sources, links })
}

/// The demo's summary for a person.
pub fn render(r: &DemoReport) -> String {
    let mut out = String::new();
    for source in &r.sources {
        let s = &source.report.stats;
        let from = match source.system {
            System::Files => format!("the export files in {}", source.emulator_url),
            system => format!("the {} emulator ({})", system.as_str(), source.emulator_url),
        };
        out.push_str(&format!(
            "\n{}: synced the school year from {from} in {:.1} s (store {:.1} s): {} requests, {} records, {} inserted.\n",
            source.name,
            source.report.elapsed.as_secs_f64(),
            source.report.store_time.as_secs_f64(),
            s.requests,
            s.records_read,
            s.inserted
        ));
        if let Some(e) = &source.report.error {
            out.push_str(&format!("The sync FAILED: {e}\n"));
        }
        out.push_str("\n  entity             in the store   ground truth\n");
        for (kind, (have, want)) in &source.comparison {
            let mark = if have == want { "" } else { "   <- differs" };
            out.push_str(&format!("  {:<18} {:>12}   {:>12}{mark}\n", kind.as_str(), have, want));
        }
    }
    if let Some(links) = &r.links {
        out.push_str(&crate::link::render(links));
    }
    let mut tokens = String::new();
    for source in &r.sources {
        if source.system == System::Files {
            tokens.push_str(&format!("\n  {:<14} {}", "export files", source.emulator_url));
            continue;
        }
        tokens.push_str(&format!(
            "\n  {:<14} {}",
            "token",
            r.dir.join(format!("secrets/{}.token", source.system.as_str())).display()
        ));
    }
    out.push_str(&format!(
        "\n{}\n\nWhere everything is:\n  configuration  {}\n  store          {}{tokens}\n\nNext:\n  ejgate status --config {cfg}\n  ejgate compare dnevnik-demo mosreg-demo --config {cfg}   (сверка of two sources)\n  ejgate link --config {cfg}   (the people linked across the sources)\n  ejgate emulate dnevnik --listen 127.0.0.1:8080 --token-file {}   (an emulator on its own)\n",
        if r.matches_truth() {
            "Every entity of every source matches the generator's ground truth."
        } else {
            "Some entities differ from the ground truth."
        },
        r.config_path.display(),
        r.store_url,
        r.dir.join("secrets/dnevnik.token").display(),
        cfg = r.config_path.display(),
    ));
    out
}
