//! The `ejgate` command: parses the command line and calls the library.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

use ejgate::config::{Config, EXAMPLE};
use ejgate::sync::{run_sync, Progress, Quiet, SyncOptions};
use ejgate::{progress, schedule, status, store};
use ejgate_sdk::connector::SyncMode;

/// mimalloc instead of the system allocator: a sync allocates and frees millions of small
/// strings and buffers (parsed answers, canonical JSON, SQLite's row buffers), and glibc's
/// malloc spent a fifth of the CPU of a КИАСУО sync on it (perf, 2026-11-23).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "ejgate", version, about = "Gateway between schools and the regional electronic journal systems")]
struct Cli {
    /// The configuration file
    #[arg(long, global = true, env = "EJGATE_CONFIG", default_value = "ejgate.toml")]
    config: PathBuf,
    /// More log output (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented ejgate.toml to start from
    Init {
        /// Overwrite an existing file
        #[arg(long)]
        force: bool,
    },
    /// Run the whole job on a synthetic school: emulator, configuration, sync into SQLite
    #[cfg(feature = "emulators")]
    Demo {
        /// Where to put the configuration, the token and the store
        #[arg(long, default_value = "ejgate-demo")]
        dir: PathBuf,
        #[arg(long, default_value_t = 2025)]
        seed: u64,
        /// small (tests), demo (22 classes), large (40 classes, about 1,000 students)
        #[arg(long, value_enum, default_value_t = Size::Demo)]
        size: Size,
    },
    /// Sync the configured sources into the store
    Sync {
        /// Only this source (its name in ejgate.toml)
        #[arg(long)]
        source: Option<String>,
        /// Re-read the whole academic year (reconciliation) instead of the recent window
        #[arg(long)]
        full: bool,
        /// No progress bars
        #[arg(long)]
        quiet: bool,
        /// Confirm that records the sources no longer have are really gone, even when they
        /// are more than the source's max_delete_percent of a kind
        #[arg(long)]
        allow_deletes: bool,
        /// Read this school year (2024/2025) instead of the current one, where the source
        /// still serves it; the year is read whole. Overrides `year` in the configuration
        #[arg(long)]
        year: Option<ejgate_sdk::year::SchoolYear>,
    },
    /// What the store holds and how the last runs went
    Status {
        #[arg(long)]
        json: bool,
        /// How many runs to show
        #[arg(long, default_value_t = 10)]
        runs: u32,
    },
    /// Compare what two sources brought (сверка): entity by entity, over what both systems expose
    Compare {
        /// The first source (its name in ejgate.toml)
        first: String,
        /// The second source
        second: String,
        #[arg(long)]
        json: bool,
    },
    /// Link the people of schools served by several sources ([[school]] in ejgate.toml)
    Link {
        /// Only this school
        #[arg(long)]
        school: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The scheduled jobs (schedule files): their next times in the school's zone and in UTC
    Jobs {
        #[command(subcommand)]
        command: Option<JobsCommand>,
        /// The schedules directory (default: schedules_dir in ejgate.toml, or `schedules`
        /// beside it)
        #[arg(long, global = true)]
        dir: Option<PathBuf>,
    },
    /// Monitoring of the journal against each school's regulation (мониторинг)
    Monitor {
        #[command(subcommand)]
        command: Option<MonitorCommand>,
        /// The school (a [[school]] name in ejgate.toml, with its regulation)
        #[arg(long)]
        school: Option<String>,
        /// The day to judge (default: yesterday in the school's time zone)
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// The whole week (Monday to Sunday) of the day
        #[arg(long, conflicts_with_all = ["month", "quarter"])]
        week: bool,
        /// The whole calendar month of the day
        #[arg(long, conflicts_with = "quarter")]
        month: bool,
        /// The school's quarter (четверть) holding the day
        #[arg(long)]
        quarter: bool,
        /// Instead of the board: the report per teacher (P2) or the deputy's справка of
        /// findings and fixes (M20), over the span (usually --month)
        #[arg(long, value_enum)]
        report: Option<MonitorReport>,
        /// xlsx needs --out
        #[arg(long, value_enum, default_value_t = BoardFormat::Text)]
        format: BoardFormat,
        /// Write the board to this file instead of the standard output
        #[arg(long)]
        out: Option<PathBuf>,
        /// Judge without recording the findings in the store
        #[arg(long)]
        dry_run: bool,
    },
    /// Exports (выгрузки, P11): the records of one canonical entity as CSV or XLSX, or a
    /// OneRoster 1.2 CSV bundle of a source
    Export {
        /// The entity (organization, person, class, lesson, mark, final_mark, attendance, …)
        #[arg(long, value_parser = parse_kind, required_unless_present = "oneroster", conflicts_with = "oneroster")]
        entity: Option<ejgate_sdk::model::EntityKind>,
        /// Only this source's records (the OneRoster bundle needs it)
        #[arg(long)]
        source: Option<String>,
        /// A OneRoster 1.2 CSV bundle (rostering and gradebook) of --source into the
        /// directory --out
        #[arg(long, requires_all = ["source", "out"])]
        oneroster: bool,
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// The file (the directory for --oneroster); CSV goes to the standard output without it
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Reports (отчёты) of the school and the district
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Bearer tokens of `ejgate serve`'s JSON API (/api/v1/…)
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Only the HTTP side of `ejgate serve`: /healthz, /readyz, /metrics and the JSON API
    /// over the store, without running jobs (a read-only view, for example on another machine
    /// of a district)
    Http {
        /// The address to listen on (default: [serve] listen in ejgate.toml, 127.0.0.1:8089)
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run the scheduled jobs: the daemon (one worker on SQLite, several on PostgreSQL).
    /// SIGTERM or Ctrl-C stops it; running syncs stop after the batch being written
    Serve {
        /// The schedules directory (default: schedules_dir in ejgate.toml, or `schedules`
        /// beside it)
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Job runs this worker runs at once
        #[arg(long, default_value_t = 2)]
        jobs: usize,
    },
    /// Backups of the store: a consistent snapshot, compressed and sealed with age, written to
    /// every [[backup.target]] and read back; exits 2 when a target was not written (degraded)
    Backup {
        #[command(subcommand)]
        command: Option<BackupCommand>,
        /// Why (kept in the manifest and the backup-usage log)
        #[arg(long, global = true)]
        why: Option<String>,
        /// Who acts (default: the OS user), for the backup-usage log
        #[arg(long, global = true)]
        who: Option<String>,
    },
    /// Restore a backup into a fresh store, checked against its manifest (rows per table, the
    /// store's consistency check)
    Restore {
        /// The backup's id (`ejgate backup log` lists them)
        id: String,
        /// The new store: sqlite://PATH (the file must not exist) for a SQLite backup;
        /// postgres://… naming a fresh schema (?options=-c%20search_path%3DNAME) or database
        /// for a PostgreSQL one
        #[arg(long)]
        into: String,
        /// An age identity file opening the backup (besides backup.identity_file)
        #[arg(long)]
        identity: Option<PathBuf>,
        #[arg(long)]
        why: Option<String>,
        #[arg(long)]
        who: Option<String>,
    },
    /// The year-end electronic archive: BagIt bags signed with minisign
    Archive {
        #[command(subcommand)]
        command: ArchiveCommand,
    },
    /// КИАСУО exchange files: load (import) and unload (export) the secretary's files
    Kiasuo {
        #[command(subcommand)]
        command: ejgate::kiasuo::KiasuoCommand,
    },
    /// Run an emulator of a source system on its own, for trying clients against it
    #[cfg(feature = "emulators")]
    Emulate {
        #[arg(value_enum)]
        system: ejgate::config::System,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        #[arg(long, default_value_t = 2025)]
        seed: u64,
        /// Schools in the synthetic municipality
        #[arg(long, default_value_t = 1)]
        schools: u32,
        #[arg(long, value_enum, default_value_t = Size::Demo)]
        size: Size,
        /// Requests per second allowed per token (none: unlimited)
        #[arg(long)]
        request_limit: Option<u32>,
        /// The token the emulator accepts
        #[arg(long, env = "EJGATE_EMULATOR_TOKEN", conflicts_with = "token_file")]
        token: Option<String>,
        /// A file holding the token the emulator accepts
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// `files` only: the directory to write the school's export into (a files source is
        /// not served; its stand-in is the export)
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a token named NAME and print it once (only its hash is kept)
    Create { name: String },
    /// Revoke the token NAME: it no longer opens the API
    Revoke { name: String },
    /// The tokens, in force and revoked (never the tokens themselves)
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum BoardFormat {
    Text,
    Json,
    Csv,
    Xlsx,
    /// PDF/A-2u, laid out as the paper copies are (`templates/paper.toml`)
    Pdf,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum ExportFormat {
    Csv,
    Xlsx,
}

fn parse_kind(s: &str) -> Result<ejgate_sdk::model::EntityKind, String> {
    use ejgate_sdk::model::EntityKind;
    EntityKind::parse(s)
        .ok_or_else(|| format!("unknown entity «{s}»: one of {}", EntityKind::ALL.map(|k| k.as_str()).join(", ")))
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Отчёт о ходе внедрения электронных журналов за четверть (P10): every school of the
    /// district in the store, aggregates only
    Rollout {
        /// The district (муниципалитет) as the sources name it, or «все» for every school
        #[arg(long)]
        district: String,
        /// The quarter's number in the academic year (1–4)
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
        quarter: u8,
        /// The academic year, 2025/2026 (default: the latest in the store)
        #[arg(long)]
        year: Option<String>,
        /// xlsx needs --out
        #[arg(long, value_enum, default_value_t = RolloutFormat::Xlsx)]
        format: RolloutFormat,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Итоги успеваемости и посещаемости по классам за период или год (P1)
    Progress(SchoolReportArgs),
    /// Активность пользователей (P3): where the sources tell it, and the work in the journal
    Activity(SchoolReportArgs),
    /// Пропущенные уроки и неудовлетворительные отметки с темами, по ученикам (P5)
    Missed(SchoolReportArgs),
    /// Заполнение журнала и выполнение учебного плана: часы по нагрузке и проведённые (P6)
    Completeness(SchoolReportArgs),
    /// Результаты контрольных работ и ВШК (P7)
    Control(SchoolReportArgs),
    /// Прогноз итоговых отметок, группа риска и точность прогноза (P8)
    Forecast {
        #[command(flatten)]
        args: SchoolReportArgs,
        /// The day of the forecast (default: today, or the period's last day once it is over)
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
    /// Выписка из дневника ученика за неделю для родителя (P9)
    Diary {
        #[arg(long)]
        school: String,
        /// «Фамилия Имя» as the journal has it
        #[arg(long)]
        student: String,
        /// A day of the week (default: today)
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        #[arg(long, value_enum, default_value_t = SchoolFormat::Xlsx)]
        format: SchoolFormat,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// What every school report (P1, P3, P5–P8) is asked with.
#[derive(clap::Args)]
struct SchoolReportArgs {
    /// The school (a [[school]] of the configuration)
    #[arg(long)]
    school: String,
    /// The period: its number in the latest academic year (2: the second quarter), or «год»
    #[arg(long)]
    period: String,
    /// xlsx needs --out; csv writes the first sheet
    #[arg(long, value_enum, default_value_t = SchoolFormat::Xlsx)]
    format: SchoolFormat,
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum SchoolFormat {
    Xlsx,
    Csv,
    Text,
    /// Every sheet: headings and rows, numbers as numbers, dates ISO (`report::table::json`)
    Json,
    /// PDF/A-2u, laid out as the paper copies are (`templates/paper.toml`)
    Pdf,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum RolloutFormat {
    Xlsx,
    Json,
    Csv,
    Text,
    /// PDF/A-2u, laid out as the paper copies are (`templates/paper.toml`); the charts are
    /// the XLSX's only
    Pdf,
}

#[derive(Clone, Copy, ValueEnum)]
enum MonitorReport {
    /// Отчёт о работе учителей с журналом (P2)
    Teachers,
    /// Справка по итогам мониторинга: нарушения и их устранение (M20)
    Spravka,
}

#[derive(Subcommand)]
enum MonitorCommand {
    /// Report a login as compromised (M19, S4 4.3–4.4): the operations under it from --at on
    /// are invalid and reported as findings. The sources model no logins: give the person's
    /// id in the source or the full name («Фамилия Имя Отчество»)
    Compromised {
        /// The school (a [[school]] name in ejgate.toml)
        #[arg(long)]
        school: String,
        /// The person's source id or full name
        #[arg(long)]
        login: String,
        /// When the school learned of it: local time of the school («2026-02-10T09:30») or
        /// RFC 3339 with an offset
        #[arg(long)]
        at: String,
    },
    /// The regulation profiles (regulations/*.toml)
    Profiles {
        #[command(subcommand)]
        command: ProfilesCommand,
        /// The profiles directory (default: regulations_dir in ejgate.toml, or `regulations`
        /// beside it; `regulations` here when there is no ejgate.toml)
        #[arg(long, global = true)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ProfilesCommand {
    /// Check every profile; each refusal is printed as FILE:LINE: reason
    Check,
}

#[derive(Subcommand)]
enum ArchiveCommand {
    /// A school's year as a BagIt 1.0 bag (JSON Lines and CSV per entity, bag-info, SHA-512
    /// manifests) with a minisign signature of its tag manifest
    Snapshot {
        /// A [[school]] of ejgate.toml (its sources), or a source's name
        #[arg(long)]
        school: String,
        /// The school year, 2025/2026
        #[arg(long)]
        year: ejgate_sdk::year::SchoolYear,
        /// Where to write the bag (default: archive.dir, or `archive` beside ejgate.toml)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Paper copies as PDF/A-2u, laid out for two-sided printing: with --period, each
    /// class's copy of the journal for the period; with --year, each class's year-end book
    /// (title page with the contents and the number of sheets) and сводная ведомость
    Paper {
        /// A [[school]] of ejgate.toml (its journal source), or a source's name
        #[arg(long)]
        school: String,
        /// A study period: its number (2) or name («2 четверть»); with --year, of that year
        #[arg(long, required_unless_present = "year")]
        period: Option<String>,
        /// The school year, 2025/2026
        #[arg(long)]
        year: Option<ejgate_sdk::year::SchoolYear>,
        /// Where to write the PDFs (default: archive.dir/paper/SCHOOL)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The register of paper copies (реестр бумажных копий, REGULATIONS A4, R4)
    Register {
        #[command(subcommand)]
        command: RegisterCommand,
    },
    /// Check a bag: the signature and every manifest; each changed, added or missing file is named
    Verify {
        bag: PathBuf,
        /// The minisign public key (default: archive.minisign_public_key)
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Fetch a school's year-end bag from the backup targets (the first whose copy opens and
    /// verifies, or --from), check its signatures and manifests, unpack it; logged with who
    /// and why in the backup-usage log
    Pull {
        /// A [[school]] of ejgate.toml, or a source's name (as given to `archive snapshot`)
        #[arg(long)]
        school: String,
        /// The school year, 2025/2026
        #[arg(long)]
        year: ejgate_sdk::year::SchoolYear,
        /// Only this [[backup.target]]
        #[arg(long)]
        from: Option<String>,
        /// Where to unpack the bag (default: the current directory)
        #[arg(long)]
        out: Option<PathBuf>,
        /// Why it is pulled (kept in the backup-usage log, REGULATIONS A9)
        #[arg(long)]
        reason: String,
        /// Who pulls it (default: the OS user)
        #[arg(long)]
        who: Option<String>,
        /// An age identity file opening the copies (besides backup.identity_file)
        #[arg(long)]
        identity: Option<PathBuf>,
        /// The minisign public key (default: archive.minisign_public_key)
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RegisterCommand {
    /// Enter a printed copy under the school's next number (printed)
    Add {
        /// A [[school]] of ejgate.toml, or a source's name
        #[arg(long)]
        school: String,
        /// The class («5А»)
        #[arg(long)]
        class: String,
        /// The school year, 2025/2026
        #[arg(long)]
        year: ejgate_sdk::year::SchoolYear,
        /// What the copy is («копия журнала, 1 четверть», «книга за год», «сводная ведомость»)
        #[arg(long)]
        title: String,
        /// Its sheets (листов)
        #[arg(long)]
        sheets: u32,
        #[command(flatten)]
        details: RegisterDetails,
        /// Who enters it (default: the OS user)
        #[arg(long)]
        who: Option<String>,
    },
    /// Change an entry: who signed it, where it is kept, when it was handed to the secretary
    Set {
        #[arg(long)]
        school: String,
        /// The entry's number in the school's register
        number: u32,
        /// Its sheets (листов)
        #[arg(long)]
        sheets: Option<u32>,
        #[command(flatten)]
        details: RegisterDetails,
    },
    /// The register, by school and number
    List {
        #[arg(long)]
        school: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The register as CSV, XLSX or PDF
    Export {
        #[arg(long)]
        school: Option<String>,
        #[arg(long, value_enum, default_value = "xlsx")]
        format: RegisterFormat,
        /// The file to write
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct RegisterDetails {
    /// Who signed (certified) the copy
    #[arg(long)]
    signed_by: Option<String>,
    /// Where it is kept
    #[arg(long)]
    kept_at: Option<String>,
    /// The day it was handed to the secretary (YYYY-MM-DD)
    #[arg(long)]
    handed_on: Option<chrono::NaiveDate>,
    /// To whom it was handed
    #[arg(long)]
    handed_to: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RegisterFormat {
    Csv,
    Xlsx,
    Pdf,
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Check every target's copy of a backup (default: the newest) against its manifest; with
    /// the identity or passphrase, open it and check its content too
    Verify {
        id: Option<String>,
        /// An age identity file opening the backup (besides backup.identity_file)
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// The backup-usage log: every backup, verification, pull, restore and deletion, with
    /// who, when and why
    Log {
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Check every schedule file; each refusal is printed as FILE:LINE: reason
    Check,
    /// Run one job now, recorded in the store as the daemon records its runs
    Run {
        /// The job's name in the schedules
        name: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Size {
    Small,
    Demo,
    Large,
}

impl Size {
    fn config(self, seed: u64) -> ejgate_sdk::synth::SynthConfig {
        use ejgate_sdk::synth::SynthConfig;
        match self {
            Size::Small => SynthConfig::small(seed),
            Size::Demo => SynthConfig::demo(seed),
            Size::Large => SynthConfig::large(seed),
        }
    }
}

fn init_tracing(verbose: u8) {
    // Libraries' own warnings (sqlx's slow statements, with their whole SQL) only when asked
    // for: at the default level a person sees ejgate's warnings.
    let default = match verbose {
        0 => "warn,sqlx=error",
        1 => "info,sqlx=warn",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal: redirected into a file or a journal they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}

/// An error and its causes on one line, each text once: a cause whose text the line already
/// holds (errors that print their source inside their own text) is left out.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A daemon's log is its record of what ran: info by default.
    let verbose = if matches!(cli.command, Command::Serve { .. }) { cli.verbose.max(1) } else { cli.verbose };
    init_tracing(verbose);
    let code = match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    };
    // A КИАСУО refresh still under way (its run may have failed meanwhile) is waited for:
    // the source may already have rotated the refresh token, and only that refresh writes
    // the new one to the token file.
    tokio::task::spawn_blocking(ejgate_kiasuo::connector::wait_for_refreshes).await.ok();
    code
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Init { force } => {
            if cli.config.exists() && !force {
                bail!("{} exists; use --force to overwrite it", cli.config.display());
            }
            std::fs::write(&cli.config, EXAMPLE).with_context(|| format!("cannot write {}", cli.config.display()))?;
            println!(
                "Wrote {}. Put the source's token in the file it names, then run `ejgate sync`.",
                cli.config.display()
            );
        }
        #[cfg(feature = "emulators")]
        Command::Demo { dir, seed, size } => {
            let report = ejgate::demo::run(ejgate::demo::DemoOptions {
                dir,
                seed,
                synth: size.config(seed),
                systems: ejgate::demo::ALL_SYSTEMS.to_vec(),
                progress: Arc::new(|name: &str| -> Arc<dyn Progress> { Arc::new(progress::Bars::new(name)) }),
            })
            .await?;
            print!("{}", ejgate::demo::render(&report));
            if !report.matches_truth() {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
        Command::Sync { source, full, quiet, allow_deletes, year } => {
            let config = Config::load(&cli.config)?;
            let store = store::open(&config.store_url()).await?;
            let selected: Vec<_> = match &source {
                Some(name) => vec![config
                    .source(name)
                    .with_context(|| format!("no source named «{name}» in {}", cli.config.display()))?],
                None => config.sources.iter().collect(),
            };
            if selected.is_empty() {
                bail!("{} names no [[source]]; add one (see `ejgate init`)", cli.config.display());
            }
            let mut failed = false;
            let stop = ejgate::stop::on_signals().context("cannot watch for SIGINT and SIGTERM")?;
            for s in selected {
                let connector = ejgate::sources::connector(&config, s)?;
                let progress: Arc<dyn Progress> =
                    if quiet { Arc::new(Quiet) } else { Arc::new(progress::Bars::new(&s.name)) };
                let year = year.or(s.year);
                if year.is_some() && !s.system.is_api() {
                    bail!(
                        "source «{}» is a files source: it reads the year its exports hold, --year does not apply",
                        s.name
                    );
                }
                // A run asked for a year reads it whole.
                let mode = if full || year.is_some() { SyncMode::Full } else { SyncMode::Incremental };
                let options = SyncOptions {
                    mode,
                    concurrency: s.concurrency,
                    progress,
                    skip_limit: s.skip_limit(),
                    year,
                    deletes: s.delete_limit(allow_deletes),
                    stop: stop.clone(),
                    max_requests: s.max_requests,
                    requests_per_second: s.requests_per_second,
                };
                let report = match run_sync(store.as_ref(), connector, &options).await {
                    Ok(report) => report,
                    // Another process syncs this source: say who, and go on with the others.
                    Err(e @ store::StoreError::LeaseHeld(_)) => {
                        failed = true;
                        eprintln!("{}: not synced: {e}", s.name);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let st = &report.stats;
                match &report.error {
                    None => println!(
                        "{}: {} run #{} done in {:.1} s: {} requests, {} records read, {} inserted, {} updated, {} deleted{}{}",
                        s.name,
                        mode,
                        report.run,
                        report.elapsed.as_secs_f64(),
                        st.requests,
                        st.records_read,
                        st.inserted,
                        st.updated,
                        st.deleted,
                        if st.warnings.is_empty() { String::new() } else { format!(", {} warning(s) (see `ejgate status`)", st.warnings.len()) },
                        if st.skipped == 0 { String::new() } else { format!(", {} unreadable source record(s) left out", st.skipped) }
                    ),
                    Some(e) if report.status == store::RunStatus::Interrupted => {
                        eprintln!(
                            "{}: run #{} interrupted after {:.1} s: {} records read, {} inserted, {} updated, {} deleted; {e}",
                            s.name,
                            report.run,
                            report.elapsed.as_secs_f64(),
                            st.records_read,
                            st.inserted,
                            st.updated,
                            st.deleted
                        );
                        // The sources after it are not started.
                        return Ok(std::process::ExitCode::from(130));
                    }
                    Some(e) => {
                        failed = true;
                        eprintln!("{}: run #{} failed: {e}", s.name, report.run);
                        if let Some(kind) = report.error_kind {
                            eprintln!("  ({kind}) what to do: {}", kind.what_to_do());
                        }
                    }
                }
            }
            if failed {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
        Command::Status { json, runs } => {
            let config = Config::load(&cli.config)?;
            let store = store::open(&config.store_url()).await?;
            let names: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
            let st = status::status(store.as_ref(), &names, runs).await?.with_alerts(store.as_ref(), &config).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print!("{}", status::render(&st));
            }
        }
        Command::Compare { first, second, json } => {
            let config = Config::load(&cli.config)?;
            let system = |name: &str| {
                config
                    .source(name)
                    .map(|s| s.system)
                    .with_context(|| format!("no source «{name}» in {}", cli.config.display()))
            };
            let (kinds, tolerances) = ejgate::sources::shared(system(&first)?, system(&second)?);
            let store = store::open(&config.store_url()).await?;
            let c = ejgate::compare::compare(store.as_ref(), &first, &second, &kinds, &tolerances).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                print!("{}", ejgate::compare::render(&c));
                println!(
                    "\n{}",
                    if c.identical() {
                        format!("«{first}» and «{second}» hold identical data for every entity both systems expose.")
                    } else {
                        format!("«{first}» and «{second}» differ (see above).")
                    }
                );
            }
            if !c.identical() {
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
        Command::Jobs { command, dir } => {
            let config = Config::load(&cli.config)?;
            let dir = dir.unwrap_or_else(|| config.schedules_dir());
            let jobs = match schedule::load_dir(&dir, &config) {
                Ok(jobs) => jobs,
                Err(refused) => {
                    for refusal in &refused.0 {
                        eprintln!("{refusal}");
                    }
                    eprintln!(
                        "error: {} refused in {}",
                        if refused.0.len() == 1 {
                            "1 schedule error".to_string()
                        } else {
                            format!("{} schedule errors", refused.0.len())
                        },
                        dir.display()
                    );
                    return Ok(std::process::ExitCode::FAILURE);
                }
            };
            match command {
                Some(JobsCommand::Run { name }) => {
                    let state = ejgate::daemon::DaemonState::open(config, &dir).await?;
                    let stop = ejgate::stop::on_signals().context("cannot watch for SIGINT and SIGTERM")?;
                    let report = ejgate::daemon::run_now(&state, &name, &stop).await?;
                    let syncs: Vec<String> = report
                        .syncs
                        .iter()
                        .map(|(source, run, status)| format!("{source} #{run} {}", status.as_str()))
                        .collect();
                    let syncs = if syncs.is_empty() { "none".to_string() } else { syncs.join(", ") };
                    let error = report.error.as_deref().unwrap_or_default();
                    match report.status {
                        store::JobRunStatus::Succeeded => println!(
                            "job «{name}» run #{} succeeded in {:.1} s; sync runs: {syncs}",
                            report.run.id,
                            report.elapsed.as_secs_f64()
                        ),
                        store::JobRunStatus::Interrupted => {
                            eprintln!("job «{name}» run #{} interrupted: {error}; sync runs: {syncs}", report.run.id);
                            return Ok(std::process::ExitCode::from(130));
                        }
                        status => {
                            let then = match report.retry_at {
                                Some(at) => format!(
                                    "; recorded for a retry at {} (`ejgate serve` runs it)",
                                    at.format("%Y-%m-%d %H:%M UTC")
                                ),
                                None => String::new(),
                            };
                            eprintln!(
                                "job «{name}» run #{} {}: {error}{then}; sync runs: {syncs}",
                                report.run.id,
                                if status == store::JobRunStatus::Due {
                                    "failed".to_string()
                                } else {
                                    status.to_string()
                                }
                            );
                            if let Some(kind) = report.error_kind {
                                eprintln!("  ({kind}) what to do: {}", kind.what_to_do());
                            }
                            return Ok(std::process::ExitCode::FAILURE);
                        }
                    }
                }
                Some(JobsCommand::Check) => {
                    println!(
                        "{}: {} checked",
                        dir.display(),
                        if jobs.len() == 1 { "1 job".to_string() } else { format!("{} jobs", jobs.len()) }
                    );
                }
                None if jobs.is_empty() => println!("No jobs in {}.", dir.display()),
                None => {
                    // The last runs are the store's; the listing is still useful without them.
                    let last = match store::open(&config.store_url()).await {
                        Ok(store) => store.last_job_runs().await,
                        Err(e) => Err(e),
                    };
                    let last = match last {
                        Ok(runs) => Some(runs.into_iter().map(|r| (r.job.clone(), r)).collect()),
                        Err(e) => {
                            eprintln!("warning: the last runs cannot be shown (LAST RUN: ?): {e}");
                            None
                        }
                    };
                    print!("{}", schedule::render(&jobs, chrono::Utc::now(), last.as_ref()));
                }
            }
        }
        Command::Serve { dir, jobs } => {
            let config = Config::load(&cli.config)?;
            let dir = dir.unwrap_or_else(|| config.schedules_dir());
            let state = ejgate::daemon::DaemonState::open(config, &dir).await?;
            let stop = ejgate::stop::on_signals().context("cannot watch for SIGINT and SIGTERM")?;
            // Bound before the scheduler starts: an address in use is refused at once.
            let listener = ejgate::daemon::http::bind(state.config.serve.listen).await?;
            let alongside: ejgate::daemon::Alongside = Box::new(move |state, stop| {
                Box::pin(async move {
                    let http = ejgate::daemon::http::HttpState::new(state.store.clone(), state.config.clone());
                    http.set_jobs(state.jobs.to_vec());
                    let watching = {
                        let stop = stop.clone();
                        let (store, config) = (state.store.clone(), state.config.clone());
                        tokio::spawn(ejgate::alerts::watch(store, config, async move { stop.wait().await }))
                    };
                    let served = ejgate::daemon::http::serve_on(listener, http, async move { stop.wait().await }).await;
                    watching.abort();
                    Ok(served?)
                })
            });
            ejgate::daemon::serve(state, ejgate::daemon::ServeOptions { jobs, stop, alongside: Some(alongside) })
                .await?;
        }
        Command::Link { school, json } => {
            let config = Config::load(&cli.config)?;
            let schools: Vec<_> =
                config.schools.iter().filter(|s| school.as_ref().is_none_or(|n| *n == s.name)).collect();
            if schools.is_empty() {
                bail!(
                    "{} binds no school to several sources: add a [[school]] with its sources (see `ejgate init`)",
                    cli.config.display()
                );
            }
            let store = store::open(&config.store_url()).await?;
            let mut reports = Vec::new();
            for s in schools {
                reports.push(ejgate::link::link_school(store.as_ref(), &s.name, &s.sources, &s.match_rules).await?);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                for r in &reports {
                    print!("{}", ejgate::link::render(r));
                }
            }
        }
        Command::Monitor { command: None, school, date, week, month, quarter, report, format, out, dry_run } => {
            use ejgate::report::table;
            let Some(school) = school else {
                bail!("name the school: ejgate monitor --school NAME (a [[school]] of {})", cli.config.display());
            };
            if matches!(format, BoardFormat::Xlsx | BoardFormat::Pdf) && out.is_none() {
                bail!("an XLSX workbook or a PDF goes into a file: add --out FILE.xlsx (or .pdf)");
            }
            let config = Config::load(&cli.config)?;
            let store = store::open(&config.store_url()).await?;
            let span = if week {
                ejgate::monitor::Span::Week
            } else if month {
                ejgate::monitor::Span::Month
            } else if quarter {
                ejgate::monitor::Span::Quarter
            } else {
                ejgate::monitor::Span::Day
            };
            let (board, changes) =
                ejgate::monitor::run(&config, store.as_ref(), &school, date, span, chrono::Utc::now(), !dry_run)
                    .await?;
            let bytes = match report {
                None => match format {
                    BoardFormat::Text => ejgate::monitor::board::render(&board).into_bytes(),
                    BoardFormat::Json => serde_json::to_vec_pretty(&board)?,
                    BoardFormat::Csv => ejgate::monitor::board::csv(&board)?,
                    BoardFormat::Xlsx => ejgate::monitor::board::xlsx(&board)?,
                    BoardFormat::Pdf => ejgate::monitor::board::pdf(&board)?,
                },
                Some(kind) => {
                    let stored = store.findings(&school).await?;
                    let (title, sheets, json) = match kind {
                        MonitorReport::Teachers => {
                            let source = config
                                .schools
                                .iter()
                                .find(|s| s.name == school)
                                .map(|s| s.journal_source().to_string())
                                .unwrap_or_default();
                            let r = ejgate::report::teachers::build(store.as_ref(), &source, &board, &stored).await?;
                            let title = format!("Работа учителей с электронным журналом: {school}");
                            (title, ejgate::report::teachers::sheets(&r), serde_json::to_vec_pretty(&r)?)
                        }
                        MonitorReport::Spravka => {
                            let r = ejgate::report::spravka::build(&board, &stored)?;
                            let title = format!("Справка по итогам мониторинга: {school}");
                            (title, ejgate::report::spravka::sheets(&r), serde_json::to_vec_pretty(&r)?)
                        }
                    };
                    match format {
                        BoardFormat::Text => table::text(&title, &sheets).into_bytes(),
                        BoardFormat::Json => json,
                        BoardFormat::Csv => sheets[0].csv()?,
                        BoardFormat::Xlsx => table::xlsx(&title, &sheets)?,
                        BoardFormat::Pdf => table::pdf(&title, &sheets)?,
                    }
                }
            };
            match &out {
                Some(path) => table::write_file(path, &bytes)?,
                None => {
                    use std::io::Write as _;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
            if !dry_run {
                eprintln!(
                    "findings recorded: {} new, {} changed, {} reopened, {} fixed",
                    changes.new, changes.changed, changes.reopened, changes.fixed
                );
            }
        }
        Command::Monitor { command: Some(MonitorCommand::Compromised { school, login, at }), .. } => {
            let config = Config::load(&cli.config)?;
            let Some(school_config) = config.schools.iter().find(|s| s.name == school) else {
                bail!("there is no [[school]] named «{school}» in {}", cli.config.display());
            };
            let store = store::open(&config.store_url()).await?;
            let (_, zone) =
                ejgate::monitor::engine::school_zone(store.as_ref(), school_config.journal_source()).await?;
            let at_utc = match chrono::DateTime::parse_from_rfc3339(&at) {
                Ok(t) => t.with_timezone(&chrono::Utc),
                Err(_) => {
                    let local = chrono::NaiveDateTime::parse_from_str(&at, "%Y-%m-%dT%H:%M")
                        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&at, "%Y-%m-%dT%H:%M:%S"))
                        .map_err(|_| {
                            anyhow::anyhow!(
                                "--at «{at}»: give the school's local time as 2026-02-10T09:30, or RFC 3339"
                            )
                        })?;
                    use chrono::TimeZone as _;
                    zone.from_local_datetime(&local)
                        .earliest()
                        .ok_or_else(|| anyhow::anyhow!("--at «{at}» does not exist in the school's time zone"))?
                        .with_timezone(&chrono::Utc)
                }
            };
            store.report_compromised(&school, login.trim(), at_utc, chrono::Utc::now()).await?;
            println!(
                "login «{}» of «{school}» recorded as compromised from {}: the next monitoring reports the operations under it (M19)",
                login.trim(),
                at_utc.with_timezone(&zone).format("%d.%m.%Y %H:%M")
            );
        }
        Command::Monitor {
            command: Some(MonitorCommand::Profiles { command: ProfilesCommand::Check, dir }), ..
        } => {
            let dir = match dir {
                Some(dir) => dir,
                None if cli.config.exists() => Config::load(&cli.config)?.regulations_dir(),
                None => PathBuf::from("regulations"),
            };
            match ejgate::monitor::profile::load_dir(&dir) {
                Ok(profiles) => {
                    for p in &profiles {
                        let ids: Vec<&str> = p.rules.iter().map(|r| r.id.as_str()).collect();
                        println!("{}: {} — {}", p.name, p.title, ids.join(", "));
                    }
                    println!("{}: {} profiles checked", dir.display(), profiles.len());
                }
                Err(refused) => {
                    for refusal in &refused.0 {
                        eprintln!("{refusal}");
                    }
                    eprintln!("error: {} refused in {}", refused.0.len(), dir.display());
                    return Ok(std::process::ExitCode::FAILURE);
                }
            }
        }
        Command::Export { entity, source, oneroster, format, out } => {
            use ejgate::report::{export, oneroster as or, table};
            let config = Config::load(&cli.config)?;
            let store = store::open(&config.store_url()).await?;
            if oneroster {
                let (source, dir) = (source.expect("clap requires it"), out.expect("clap requires it"));
                let written = or::bundle(store.as_ref(), &source, &dir, chrono::Utc::now()).await?;
                println!(
                    "OneRoster 1.2 CSV: {} ({})",
                    dir.display(),
                    written.rows.iter().map(|(f, n)| format!("{f}.csv {n}")).collect::<Vec<_>>().join(", ")
                );
            } else {
                let kind = entity.expect("clap requires it");
                let sheet = export::entity(store.as_ref(), kind, source.as_deref()).await?;
                let bytes = match format {
                    ExportFormat::Csv => sheet.csv()?,
                    ExportFormat::Xlsx => table::xlsx(&format!("Выгрузка: {kind}"), std::slice::from_ref(&sheet))?,
                };
                match &out {
                    Some(path) => {
                        table::write_file(path, &bytes)?;
                        eprintln!("{kind}: {} records written to {}", sheet.rows.len(), path.display());
                    }
                    None if format == ExportFormat::Xlsx => {
                        bail!("an XLSX workbook goes into a file: add --out FILE.xlsx")
                    }
                    None => {
                        use std::io::Write as _;
                        std::io::stdout().write_all(&bytes)?;
                    }
                }
            }
        }
        Command::Report { command: ReportCommand::Rollout { district, quarter, year, format, out } } => {
            use ejgate::report::{rollout, table};
            if matches!(format, RolloutFormat::Xlsx | RolloutFormat::Pdf) && out.is_none() {
                bail!("an XLSX workbook or a PDF goes into a file: add --out FILE.xlsx (or .pdf)");
            }
            let config = Config::load(&cli.config)?;
            let store = store::open(&config.store_url()).await?;
            let report = rollout::build(
                store.as_ref(),
                &config,
                &district,
                &rollout::Quarter { number: quarter, year },
                chrono::Utc::now(),
            )
            .await?;
            let title = format!("О ходе внедрения электронных журналов: {district}, {quarter} четверть");
            let sheets = rollout::sheets(&report);
            let bytes = match format {
                RolloutFormat::Xlsx => table::xlsx(&title, &sheets)?,
                RolloutFormat::Json => serde_json::to_vec_pretty(&report)?,
                RolloutFormat::Csv => sheets[0].csv()?,
                RolloutFormat::Text => table::text(&title, &sheets).into_bytes(),
                RolloutFormat::Pdf => table::pdf(&title, &sheets)?,
            };
            match &out {
                Some(path) => table::write_file(path, &bytes)?,
                None => {
                    use std::io::Write as _;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
        }
        Command::Report { command } => {
            use ejgate::report::{school as sr, table};
            let (school, format, out) = match &command {
                ReportCommand::Progress(a)
                | ReportCommand::Activity(a)
                | ReportCommand::Missed(a)
                | ReportCommand::Completeness(a)
                | ReportCommand::Control(a)
                | ReportCommand::Forecast { args: a, .. } => (a.school.clone(), a.format, a.out.clone()),
                ReportCommand::Diary { school, format, out, .. } => (school.clone(), *format, out.clone()),
                ReportCommand::Rollout { .. } => unreachable!("matched above"),
            };
            if matches!(format, SchoolFormat::Xlsx | SchoolFormat::Pdf) && out.is_none() {
                bail!("an XLSX workbook or a PDF goes into a file: add --out FILE.xlsx (or .pdf)");
            }
            let config = Config::load(&cli.config)?;
            let Some(s) = config.schools.iter().find(|s| s.name == school) else {
                bail!(
                    "no [[school]] «{school}» in {}: the schools are {}",
                    cli.config.display(),
                    config.schools.iter().map(|s| format!("«{}»", s.name)).collect::<Vec<_>>().join(", ")
                );
            };
            let sources = s.sources_journal_first();
            let store = store::open(&config.store_url()).await?;
            let j = sr::Journal::load(store.as_ref(), &sources).await?;
            let today = chrono::Local::now().date_naive();
            let (title, sheets) = match &command {
                ReportCommand::Diary { student, date, .. } => {
                    let who = sr::find_student(&j, student)?;
                    (format!("Выписка из дневника: {student}"), sr::diary(&j, who, date.unwrap_or(today), &school))
                }
                ReportCommand::Progress(a) => {
                    let span = sr::span(&j, &a.period)?;
                    (
                        format!("Итоги успеваемости и посещаемости: {school}, {}", span.name),
                        sr::progress(&j, &span, &school),
                    )
                }
                ReportCommand::Activity(a) => {
                    let span = sr::span(&j, &a.period)?;
                    (format!("Активность пользователей: {school}, {}", span.name), sr::activity(&j, &span, &school))
                }
                ReportCommand::Missed(a) => {
                    let span = sr::span(&j, &a.period)?;
                    (
                        format!("Пропуски и неудовлетворительные отметки: {school}, {}", span.name),
                        sr::missed(&j, &span, &school),
                    )
                }
                ReportCommand::Completeness(a) => {
                    let span = sr::span(&j, &a.period)?;
                    (
                        format!("Выполнение учебного плана: {school}, {}", span.name),
                        sr::completeness(&j, &span, &school),
                    )
                }
                ReportCommand::Control(a) => {
                    let span = sr::span(&j, &a.period)?;
                    (format!("Результаты контрольных работ: {school}, {}", span.name), sr::control(&j, &span, &school))
                }
                ReportCommand::Forecast { args, date } => {
                    let span = sr::span(&j, &args.period)?;
                    let as_of = date.unwrap_or(today).clamp(span.from, span.to);
                    (
                        format!("Прогноз итоговых отметок: {school}, {}", span.name),
                        sr::forecast(&j, &span, as_of, &school),
                    )
                }
                ReportCommand::Rollout { .. } => unreachable!("matched above"),
            };
            let bytes = match format {
                SchoolFormat::Xlsx => table::xlsx(&title, &sheets)?,
                SchoolFormat::Csv => sheets[0].csv()?,
                SchoolFormat::Text => table::text(&title, &sheets).into_bytes(),
                SchoolFormat::Json => serde_json::to_vec_pretty(&table::json(&title, &sheets))?,
                SchoolFormat::Pdf => table::pdf(&title, &sheets)?,
            };
            match &out {
                Some(path) => table::write_file(path, &bytes)?,
                None => {
                    use std::io::Write as _;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
        }
        Command::Token { command } => {
            let config = Config::load(&cli.config)?;
            let store = store::open(&config.store_url()).await?;
            match command {
                TokenCommand::Create { name } => {
                    use secrecy::ExposeSecret;
                    let token = ejgate::daemon::tokens::create(store.as_ref(), &name).await?;
                    eprintln!(
                        "API token «{name}» made. It is shown this once (the store keeps only its hash): give it to \
                         whoever calls the API, as `Authorization: Bearer <token>`. `ejgate token revoke {name}` \
                         shuts it."
                    );
                    println!("{}", token.expose_secret());
                }
                TokenCommand::Revoke { name } => {
                    if !ejgate::daemon::tokens::revoke(store.as_ref(), &name).await? {
                        bail!("there is no API token «{name}» in force (`ejgate token list` shows them)");
                    }
                    println!("API token «{name}» revoked: it no longer opens the API.");
                }
                TokenCommand::List { json } => {
                    let tokens = store.api_tokens().await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&tokens)?);
                    } else {
                        print!("{}", ejgate::daemon::tokens::render(&tokens));
                    }
                }
            }
        }
        Command::Http { listen } => {
            use ejgate::daemon::http;
            let config = Config::load(&cli.config)?;
            let store: Arc<dyn store::Store> = store::open(&config.store_url()).await?.shared();
            let listen = listen.unwrap_or(config.serve.listen);
            let dir = config.schedules_dir();
            let jobs =
                schedule::load_dir(&dir, &config).with_context(|| format!("the schedules in {}", dir.display()))?;
            let config = Arc::new(config);
            let state = http::HttpState::new(store.clone(), config.clone());
            state.set_jobs(jobs);
            // SIGINT or SIGTERM: the requests under way are answered, then the process ends.
            let stop = ejgate::stop::Stop::default();
            {
                use tokio::signal::unix::{signal, SignalKind};
                let mut terminate = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
                let asked = stop.clone();
                tokio::spawn(async move {
                    let name = tokio::select! {
                        _ = tokio::signal::ctrl_c() => "SIGINT",
                        _ = terminate.recv() => "SIGTERM",
                    };
                    asked.request(name);
                });
            }
            let listener = http::bind(listen).await?;
            // The address as bound (port 0 gets one), for whoever started it.
            println!("ejgate: HTTP on http://{}", listener.local_addr()?);
            let watching = {
                let stop = stop.clone();
                tokio::spawn(ejgate::alerts::watch(store, config, async move { stop.wait().await }))
            };
            http::serve_on(listener, state, async move { stop.wait().await }).await?;
            watching.abort();
        }
        Command::Backup { command, why, who } => {
            use ejgate::backup;
            let config = Config::load(&cli.config)?;
            let who = backup::who(who);
            match command {
                None => {
                    let backups = backup::Backups::from_config(&config, None)?;
                    let store = store::open(&config.store_url()).await?;
                    let report = backup::backup(store.as_ref(), &backups, &who, why.as_deref()).await?;
                    print!("{}", report.render());
                    match report.outcome {
                        store::BackupOutcome::Ok => {}
                        store::BackupOutcome::Degraded => {
                            let down: Vec<_> = report
                                .targets
                                .iter()
                                .filter(|t| t.error.is_some())
                                .map(|t| t.target.as_str())
                                .collect();
                            eprintln!(
                                "backup {} degraded: not written to {}; bring it back and run `ejgate backup` again \
                                 (it copies the missing backups there)",
                                report.id,
                                down.join(", ")
                            );
                            return Ok(std::process::ExitCode::from(2));
                        }
                        store::BackupOutcome::Failed => return Ok(std::process::ExitCode::FAILURE),
                    }
                }
                Some(BackupCommand::Verify { id, identity }) => {
                    let backups = backup::Backups::from_config(&config, identity.as_deref())?;
                    let store = store::open(&config.store_url()).await.ok();
                    let report =
                        backup::verify(store.as_deref(), &backups, id.as_deref(), &who, why.as_deref()).await?;
                    print!("{}", report.render());
                    if !report.ok() {
                        return Ok(std::process::ExitCode::FAILURE);
                    }
                }
                Some(BackupCommand::Log { limit, json }) => {
                    let store = store::open(&config.store_url()).await?;
                    let uses = store.backup_uses(limit).await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&uses)?);
                    } else {
                        print!("{}", backup::render_log(&uses));
                    }
                }
            }
        }
        Command::Restore { id, into, identity, why, who } => {
            use ejgate::backup;
            let config = Config::load(&cli.config)?;
            let backups = backup::Backups::from_config(&config, identity.as_deref())?;
            let (manifest, inspection) =
                backup::restore(&backups, &id, &into, &backup::who(who), why.as_deref()).await?;
            println!(
                "backup {} restored into {into}: {} rows in {} tables, as the manifest says; the store's consistency check passes",
                manifest.id,
                inspection.tables.values().sum::<u64>(),
                inspection.tables.len()
            );
        }
        Command::Archive { command } => {
            let config = Config::load(&cli.config)?;
            match command {
                ArchiveCommand::Snapshot { school, year, out } => {
                    let store = store::open(&config.store_url()).await?;
                    let report = ejgate::archive::snapshot_command(&config, store.as_ref(), &school, year, out).await?;
                    println!(
                        "{}: {} records of {} kinds, {} payload files ({} bytes), signed",
                        report.bag.display(),
                        report.counts.values().sum::<u64>(),
                        report.counts.len(),
                        report.payload_files,
                        report.payload_bytes
                    );
                    // The second medium (A7): a sealed copy on every backup target.
                    if config.backup.is_some() {
                        let backups = ejgate::backup::Backups::from_config(&config, None)?;
                        let copies = ejgate::archive::copy_to_targets(&backups, &report.bag).await?;
                        let shown = ejgate::archive::YearEndReport { bag: report.bag.clone(), made: None, copies };
                        let text = shown.render();
                        print!("{}", text.split_once('\n').map_or("", |(_, rest)| rest));
                        if shown.copies.iter().any(|c| c.error.is_some()) {
                            eprintln!(
                                "the year-end archive is not on every backup target: bring the target back and run \
                                 the year-end job again (`ejgate jobs run NAME`; it copies the bag made now)"
                            );
                            return Ok(std::process::ExitCode::from(2));
                        }
                    } else {
                        println!(
                            "  not copied to backup targets: ejgate.toml has no [backup] (REGULATIONS A7 asks for two media)"
                        );
                    }
                }
                ArchiveCommand::Register { command } => {
                    let store = store::open(&config.store_url()).await?;
                    match command {
                        RegisterCommand::Add { school, class, year, title, sheets, details, who } => {
                            anyhow::ensure!(sheets > 0, "--sheets: a copy has at least one sheet");
                            let copy = ejgate::store::PaperCopy {
                                school: school.clone(),
                                number: 0,
                                class,
                                school_year: year.to_string(),
                                title,
                                sheets,
                                signed_by: details.signed_by,
                                kept_at: details.kept_at,
                                handed_on: details.handed_on,
                                handed_to: details.handed_to,
                                recorded_at: chrono::Utc::now(),
                                recorded_by: ejgate::backup::who(who),
                            };
                            let number = store.add_paper_copy(&copy).await?;
                            println!("{number}");
                        }
                        RegisterCommand::Set { school, number, sheets, details } => {
                            let change = ejgate::store::PaperCopyChange {
                                sheets,
                                signed_by: details.signed_by,
                                kept_at: details.kept_at,
                                handed_on: details.handed_on,
                                handed_to: details.handed_to,
                            };
                            if !store.set_paper_copy(&school, number, &change).await? {
                                anyhow::bail!("the register of «{school}» has no entry № {number} (`ejgate archive register list`)");
                            }
                        }
                        RegisterCommand::List { school, json } => {
                            let copies = store.paper_copies(school.as_deref()).await?;
                            if json {
                                println!("{}", serde_json::to_string_pretty(&copies)?);
                            } else {
                                print!("{}", ejgate::archive::register::render(&copies));
                            }
                        }
                        RegisterCommand::Export { school, format, out } => {
                            let copies = store.paper_copies(school.as_deref()).await?;
                            let sheet = ejgate::archive::register::sheet(&copies);
                            let title = "Реестр бумажных копий";
                            let bytes = match format {
                                RegisterFormat::Csv => sheet.csv()?,
                                RegisterFormat::Xlsx => ejgate::report::table::xlsx(title, &[sheet])?,
                                RegisterFormat::Pdf => ejgate::report::table::pdf(title, &[sheet])?,
                            };
                            ejgate::report::table::write_file(&out, &bytes)?;
                        }
                    }
                }
                ArchiveCommand::Paper { school, period, year, out } => {
                    let store = store::open(&config.store_url()).await?;
                    let span = match period {
                        Some(period) => ejgate::archive::paper::PaperSpan::Period { period, year },
                        None => ejgate::archive::paper::PaperSpan::Year(year.context("give --period or --year")?),
                    };
                    let report = ejgate::archive::paper::command(&config, store.as_ref(), &school, &span, out).await?;
                    print!("{}", report.render());
                }
                ArchiveCommand::Pull { school, year, from, out, reason, who, identity, public_key } => {
                    let store = store::open(&config.store_url()).await?;
                    let backups = ejgate::backup::Backups::from_config(&config, identity.as_deref())?;
                    let archive = config.archive.clone().unwrap_or_default();
                    let key_path = public_key
                        .or_else(|| archive.minisign_public_key.as_deref().map(|p| config.resolve(p)))
                        .context("give the minisign public key: --public-key FILE or archive.minisign_public_key")?;
                    let key = minisign::PublicKey::from_file(&key_path)
                        .map_err(|e| anyhow::anyhow!("{} is not a minisign public key: {e}", key_path.display()))?;
                    let out = out.unwrap_or_else(|| PathBuf::from("."));
                    let who = ejgate::backup::who(who);
                    let report = ejgate::archive::pull(
                        &config,
                        store.as_ref(),
                        &backups,
                        &school,
                        year,
                        from.as_deref(),
                        &out,
                        &key,
                        &who,
                        &reason,
                    )
                    .await?;
                    for p in &report.passed_over {
                        println!("  passed over {p}");
                    }
                    println!(
                        "{}: pulled from «{}»; the signature and every manifest verify; logged in the backup-usage log",
                        report.bag.display(),
                        report.from
                    );
                }
                ArchiveCommand::Verify { bag, public_key } => {
                    let problems = ejgate::archive::verify_command(&config, &bag, public_key)?;
                    if problems.is_empty() {
                        println!("{}: the signature and every manifest verify", bag.display());
                    } else {
                        for p in &problems {
                            eprintln!("{}: {p}", bag.display());
                        }
                        eprintln!("{}: {} problem(s): the bag is not as it was signed", bag.display(), problems.len());
                        return Ok(std::process::ExitCode::FAILURE);
                    }
                }
            }
        }
        Command::Kiasuo { command } => {
            let config = Config::load(&cli.config)?;
            let store = store::open(&config.store_url()).await?;
            let mappings = config.mappings_dir.as_deref().map(|p| config.resolve(p));
            print!("{}", ejgate::kiasuo::run(store.as_ref(), mappings.as_deref(), command).await?);
        }
        #[cfg(feature = "emulators")]
        Command::Emulate { system, listen, seed, schools, size, request_limit, token, token_file, out } => {
            use secrecy::ExposeSecret;
            let mut synth = size.config(seed);
            synth.schools = schools.max(1);
            let world = ejgate_sdk::synth::World::generate(synth);
            if system == ejgate::config::System::Files {
                let dir = out.context("give the directory to write the export into: --out DIR")?;
                ejgate::emulators::Emulator::export_files(&world, &dir)?;
                println!(
                    "The synthetic school is exported into {} (the default layout of mappings/files/default.toml).",
                    dir.display()
                );
                return Ok(std::process::ExitCode::SUCCESS);
            }
            let token = match (token, token_file) {
                (Some(t), _) => t,
                (None, Some(f)) => {
                    ejgate_sdk::secret::SecretRef::file(f).load("emulator token")?.expose_secret().to_string()
                }
                (None, None) => {
                    bail!("give the token the emulator accepts: --token, --token-file or EJGATE_EMULATOR_TOKEN")
                }
            };
            let emulator = ejgate::emulators::Emulator::start(system, world, &token, request_limit, listen).await?;
            println!(
                "{} emulator at {} (control surface: /__emulator/… on the same host). Ctrl-C stops it.",
                system.as_str(),
                emulator.base_url()
            );
            tokio::signal::ctrl_c().await?;
            emulator.shutdown().await;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
