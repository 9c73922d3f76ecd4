//! The secretary's КИАСУО exchange files: `ejgate kiasuo import FILE [--dry-run]` and
//! `ejgate kiasuo export --what contingent|movement|final-marks --out FILE`.
//!
//! Import is plan-then-execute: the file is read and checked whole (every problem, with
//! its line or sheet, row and column; one problem and nothing is written), turned into
//! canonical records ([`records`]), and diffed against what the store holds for the source
//! instance with the sync engine's [`crate::sync::diff`]. A dry run prints that plan; a real
//! import applies it in one store transaction, logged as a run of the source. Files add and
//! update records, they never delete: a partial file (one class) must not erase the rest,
//! and a pupil who left arrives as a departure in a movement file.
//!
//! Export reads the source's records and writes the file; rows are sorted so that the same
//! store always gives the same bytes, and export → import → export gives the same file.
//! Formats and layout: `connectors/kiasuo/EXCHANGE.md`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ejgate_kiasuo::exchange::{self, ExchangeKind, Format, Layout, Marks, Problem};
use ejgate_sdk::model::EntityKind;

use crate::store::{ChangeOp, ChangeSet, RunError, RunErrorKind, RunId, RunStats, RunStatus, Store, StoreError};

pub mod records;

/// The source instance exchange files go to by default: their own, so that a file never
/// overwrites what a diary sync brought (name the sync's instance with `--source` to merge).
pub const DEFAULT_SOURCE: &str = "kiasuo-exchange";

/// How many example changes per kind a plan shows.
const EXAMPLES: usize = 3;

/// Errors of the exchange workflow.
#[derive(Debug, thiserror::Error)]
pub enum KiasuoError {
    #[error("{}", invalid_message(file, problems))]
    Invalid { file: PathBuf, problems: Vec<Problem> },
    #[error("{0}")]
    Setup(String),
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid_message(file: &Path, problems: &[Problem]) -> String {
    let mut s = format!(
        "{}: {} problem(s); nothing was written. Correct the file and import it again:",
        file.display(),
        problems.len()
    );
    for p in problems {
        let _ = write!(s, "\n  {p}");
    }
    s
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub file: PathBuf,
    /// The source instance the records belong to.
    pub source: String,
    /// A layout file replacing `mappings/kiasuo/exchange.toml`.
    pub mapping: Option<PathBuf>,
    /// The configuration's mappings directory (for `kiasuo/marks.toml`).
    pub mappings_dir: Option<PathBuf>,
    pub dry_run: bool,
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub what: ExchangeKind,
    pub out: PathBuf,
    /// `None`: from the extension of `out`.
    pub format: Option<Format>,
    pub source: String,
    pub mapping: Option<PathBuf>,
}

/// Changes of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindChanges {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// A few of them, as a person reads them.
    pub examples: Vec<String>,
}

/// The outcome (or, for a dry run, the plan) of an import.
#[derive(Debug, Clone)]
pub struct ImportReport {
    pub file: PathBuf,
    pub kind: ExchangeKind,
    pub year: String,
    pub source: String,
    pub rows: usize,
    pub records: usize,
    pub dry_run: bool,
    /// The run the import was logged as (none for a dry run).
    pub run: Option<RunId>,
    pub changes: BTreeMap<EntityKind, KindChanges>,
}

impl ImportReport {
    pub fn total(&self) -> u64 {
        self.changes.values().map(|c| c.inserted + c.updated + c.deleted).sum()
    }
}

/// The outcome of an export.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub file: PathBuf,
    pub kind: ExchangeKind,
    pub format: Format,
    pub year: String,
    pub rows: usize,
    pub bytes: usize,
}

fn layout(mapping: Option<&Path>) -> Result<Layout, KiasuoError> {
    match mapping {
        Some(p) => Layout::load(p).map_err(KiasuoError::Setup),
        None => Ok(Layout::default_layout()),
    }
}

/// An import's plan: the report and the change set that would carry it out.
pub struct ImportPlan {
    pub report: ImportReport,
    pub changes: ChangeSet,
}

/// Reads and checks a file and diffs it against the store. Writes nothing.
pub async fn plan_import(store: &dyn Store, options: &ImportOptions) -> Result<ImportPlan, KiasuoError> {
    let layout = layout(options.mapping.as_deref())?;
    let marks = Marks::load(options.mappings_dir.as_deref()).map_err(KiasuoError::Setup)?;
    let bytes =
        std::fs::read(&options.file).map_err(|source| KiasuoError::Read { path: options.file.clone(), source })?;
    let format = Format::from_path(&options.file).unwrap_or_else(|| Format::sniff(&bytes));
    let snap = records::Snapshot::load(store, &options.source).await?;
    let file = exchange::parse(&bytes, format, &layout, &snap.known(), &marks)
        .map_err(|problems| KiasuoError::Invalid { file: options.file.clone(), problems })?;
    let built = records::import_records(&file, &options.source, &snap, &marks);
    let describe: HashMap<uuid::Uuid, String> = built.iter().map(|b| (b.record.id, b.describe.clone())).collect();
    let records: Vec<_> = built.into_iter().map(|b| b.record).collect();
    let count = records.len();
    let ids: Vec<uuid::Uuid> = records.iter().map(|r| r.id).collect();
    let existing = store.existing(&options.source, &ids, &[]).await?;
    let changes = crate::sync::diff(records.into_iter().map(crate::sync::canonical).collect(), &existing);
    let mut by_kind: BTreeMap<EntityKind, KindChanges> = BTreeMap::new();
    for u in &changes.upserts {
        let k = by_kind.entry(u.kind).or_default();
        let label = match u.op {
            ChangeOp::Insert => {
                k.inserted += 1;
                "insert"
            }
            ChangeOp::Delete => {
                k.deleted += 1;
                "delete"
            }
            ChangeOp::Update | ChangeOp::KeyChange => {
                k.updated += 1;
                "update"
            }
        };
        if k.examples.len() < EXAMPLES {
            k.examples.push(format!("{label} {}", describe.get(&u.id).cloned().unwrap_or_else(|| u.source_id.clone())));
        }
    }
    for (_, kind) in &changes.deletes {
        by_kind.entry(*kind).or_default().deleted += 1;
    }
    Ok(ImportPlan {
        report: ImportReport {
            file: options.file.clone(),
            kind: file.kind(),
            year: file.year().name(),
            source: options.source.clone(),
            rows: file.rows(),
            records: count,
            dry_run: options.dry_run,
            run: None,
            changes: by_kind,
        },
        changes,
    })
}

/// Imports a file: plan, then (unless a dry run) apply in one transaction, logged as a run
/// of the source with mode `kiasuo-import`.
pub async fn import(store: &dyn Store, options: &ImportOptions) -> Result<ImportReport, KiasuoError> {
    let plan = plan_import(store, options).await?;
    if options.dry_run {
        return Ok(plan.report);
    }
    let mut report = plan.report;
    let run = store.begin_run(&options.source, "kiasuo-import").await?;
    let stats = RunStats {
        chunks: 1,
        records_read: report.records as u64,
        inserted: report.changes.values().map(|c| c.inserted).sum(),
        updated: report.changes.values().map(|c| c.updated).sum(),
        deleted: report.changes.values().map(|c| c.deleted).sum(),
        ..RunStats::default()
    };
    match store.apply(run, &options.source, &plan.changes, &[]).await {
        Ok(()) => store.finish_run(run, RunStatus::Succeeded, None, &stats).await?,
        Err(e) => {
            let text = format!("import of {}: {e}", options.file.display());
            let failure = RunError::new(RunErrorKind::Store, text);
            store.finish_run(run, RunStatus::Failed, Some(&failure), &RunStats::default()).await?;
            return Err(e.into());
        }
    }
    report.run = Some(run);
    Ok(report)
}

/// Exports a kind of file from the source's records.
pub async fn export(store: &dyn Store, options: &ExportOptions) -> Result<ExportReport, KiasuoError> {
    let layout = layout(options.mapping.as_deref())?;
    let format = match options.format.or_else(|| Format::from_path(&options.out)) {
        Some(f) => f,
        None => {
            return Err(KiasuoError::Setup(format!(
                "{}: name the format with --format xml|xlsx or use the extension .xml or .xlsx",
                options.out.display()
            )))
        }
    };
    let snap = records::Snapshot::load(store, &options.source).await?;
    let year = snap.academic_year().ok_or_else(|| {
        KiasuoError::Setup(format!(
            "the store holds no academic year, study period or enrolment date for source «{}»: nothing tells which year the file is for (is the source name right?)",
            options.source
        ))
    })?;
    let file = records::export_file(options.what, &snap, year);
    let bytes = exchange::write(&file, &layout, format).map_err(KiasuoError::Setup)?;
    write_atomically(&options.out, &bytes)?;
    Ok(ExportReport {
        file: options.out.clone(),
        kind: options.what,
        format,
        year: year.name(),
        rows: file.rows(),
        bytes: bytes.len(),
    })
}

/// Writes a file through a temporary file in the same directory, so that a failed export
/// never leaves half a file under the final name.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), KiasuoError> {
    let fail = |source| KiasuoError::Write { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.ejgate-tmp"));
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// The report of an import as the CLI prints it.
pub fn render_import(r: &ImportReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {} of {}, {} row(s) → {} record(s) of source «{}»{}",
        r.file.display(),
        r.kind,
        r.year,
        r.rows,
        r.records,
        r.source,
        if r.dry_run { " — dry run, nothing written" } else { "" }
    );
    let _ = writeln!(s, "{:<14} {:>8} {:>8} {:>8}", "kind", "insert", "update", "delete");
    for (kind, c) in &r.changes {
        let _ = writeln!(s, "{:<14} {:>8} {:>8} {:>8}", kind.as_str(), c.inserted, c.updated, c.deleted);
    }
    if r.changes.is_empty() {
        let _ = writeln!(s, "(no changes: the store already holds this file)");
    }
    for (kind, c) in &r.changes {
        for e in &c.examples {
            let _ = writeln!(s, "  {kind}: {e}");
        }
    }
    let verb = if r.dry_run { "would write" } else { "wrote" };
    let _ = write!(s, "{verb} {} change(s)", r.total());
    if let Some(run) = r.run {
        let _ = write!(s, " (run #{run})");
    }
    s.push('\n');
    s
}

/// The `ejgate kiasuo` command line.
#[derive(Debug, clap::Subcommand)]
pub enum KiasuoCommand {
    /// Load an exchange file (XML or XLSX) into the store; every problem is listed and one
    /// problem means nothing is written
    Import {
        file: PathBuf,
        /// Show what would change, write nothing
        #[arg(long)]
        dry_run: bool,
        /// A layout file replacing mappings/kiasuo/exchange.toml
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// The source instance the records belong to
        #[arg(long, default_value = DEFAULT_SOURCE)]
        source: String,
    },
    /// Unload the store into an exchange file
    Export {
        #[arg(long, value_enum)]
        what: What,
        #[arg(long)]
        out: PathBuf,
        /// Default: from the extension of --out
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// The source instance whose records are exported
        #[arg(long, default_value = DEFAULT_SOURCE)]
        source: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum What {
    Contingent,
    Movement,
    FinalMarks,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FileFormat {
    Xml,
    Xlsx,
}

/// Runs one `ejgate kiasuo` command; returns what to print.
pub async fn run(
    store: &dyn Store,
    mappings_dir: Option<&Path>,
    command: KiasuoCommand,
) -> Result<String, KiasuoError> {
    match command {
        KiasuoCommand::Import { file, dry_run, mapping, source } => {
            let options =
                ImportOptions { file, source, mapping, mappings_dir: mappings_dir.map(Path::to_path_buf), dry_run };
            Ok(render_import(&import(store, &options).await?))
        }
        KiasuoCommand::Export { what, out, format, mapping, source } => {
            let what = match what {
                What::Contingent => ExchangeKind::Contingent,
                What::Movement => ExchangeKind::Movement,
                What::FinalMarks => ExchangeKind::FinalMarks,
            };
            let format = format.map(|f| match f {
                FileFormat::Xml => Format::Xml,
                FileFormat::Xlsx => Format::Xlsx,
            });
            let r = export(store, &ExportOptions { what, out, format, source, mapping }).await?;
            Ok(format!(
                "{}: {} of {} ({:?}), {} row(s), {} bytes\n",
                r.file.display(),
                r.kind,
                r.year,
                r.format,
                r.rows,
                r.bytes
            ))
        }
    }
}
