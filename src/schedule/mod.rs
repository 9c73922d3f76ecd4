//! Schedules (расписание заданий): the TOML job files of the `schedules/` directory, checked
//! when they load, and the next time each job is due.
//!
//! A file holds `[[job]]` tables and may give a `time_zone` for all of them:
//!
//! ```toml
//! time_zone = "Europe/Moscow"
//!
//! [[job]]
//! name = "nightly-sync"
//! kind = "sync"                 # sync, "sync --full", monitor, backup, paper, snapshot, report
//! target = "all"                # all, a source name, or a school
//! cron = "0 2 * * *"            # minute hour day-of-month month day-of-week, in the zone
//! catch_up = "once"             # after downtime: skip the missed slots, or run once
//! time_limit_minutes = 120
//! retry = { attempts = 2, delay_minutes = 15 }
//! ```
//!
//! Cron lines are parsed and evaluated by `croner` (the parser tokio-cron-scheduler builds
//! on): five fields, Vixie-cron meaning (day of month OR day of week when both are given).
//! In a zone with daylight saving time a fixed time that falls into the skipped hour runs at
//! the first minute after the gap that day, and a fixed time in the repeated hour runs once,
//! at its first pass; `*` and `*/N` hours run at each wall-clock match, none in the gap.
//!
//! A file that cannot be used is refused with the file, the line and the reason
//! ([`Refusal`]), every refusal of every file at once.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use serde::Deserialize;
use toml::Spanned;

use crate::config::{line_of, Config};

/// What a job does (вид задания).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JobKind {
    /// `ejgate sync`: the recent window of each source.
    #[serde(rename = "sync")]
    Sync,
    /// `ejgate sync --full`: the whole academic year (сверка, reconciliation).
    #[serde(rename = "sync --full")]
    FullSync,
    /// Monitoring of the journal against the regulation (мониторинг): the target's schools
    /// that name a regulation, judged for yesterday, findings recorded.
    #[serde(rename = "monitor")]
    Monitor,
    /// Backup of the store (резервная копия): `ejgate backup` to every target; the target
    /// is not used (a backup is of the whole store).
    #[serde(rename = "backup")]
    Backup,
    /// Paper copies of the journal (бумажные копии, A1): per school of the target, the PDF
    /// copies of the study period that ended last, into `archive/paper/SCHOOL/`.
    #[serde(rename = "paper")]
    Paper,
    /// Year-end snapshot (архив на конец года): the signed bag of the school year the run
    /// falls in, per school of the target, copied to the backup targets.
    #[serde(rename = "snapshot")]
    Snapshot,
    /// Reports (отчёты): the target's monthly reports per teacher and справки, and for
    /// `all` the district's quarterly rollout report, into `reports_dir`.
    #[serde(rename = "report")]
    Report,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Sync => "sync",
            JobKind::FullSync => "sync --full",
            JobKind::Monitor => "monitor",
            JobKind::Backup => "backup",
            JobKind::Paper => "paper",
            JobKind::Snapshot => "snapshot",
            JobKind::Report => "report",
        }
    }

    /// Whether ejgate can run jobs of this kind yet; the others are accepted in the files so
    /// that a schedule written today keeps loading when the workflow arrives.
    pub fn is_available(self) -> bool {
        matches!(
            self,
            JobKind::Sync
                | JobKind::FullSync
                | JobKind::Monitor
                | JobKind::Backup
                | JobKind::Paper
                | JobKind::Snapshot
                | JobKind::Report
        )
    }
}

/// What a job works on (объект задания).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every source of the configuration.
    All,
    /// One `[[source]]` by its name.
    Source(String),
    /// One school: a `[[school]]` name or a school id in a source's `schools`.
    School(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::All => f.write_str("all"),
            Target::Source(name) => write!(f, "source {name}"),
            Target::School(name) => write!(f, "school {name}"),
        }
    }
}

/// What to do with the slots missed while ejgate was not running (после простоя).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Missed slots are not run; the job waits for its next slot.
    Skip,
    /// However many slots were missed, the job runs once at start.
    Once,
}

/// Retries of a failed run: `attempts` more runs, `delay` apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub delay: Duration,
}

/// The most retries a job may ask for.
pub const MAX_RETRY_ATTEMPTS: u32 = 10;

/// One job, checked.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub kind: JobKind,
    pub target: Target,
    /// The cron line as written.
    pub cron_line: String,
    pub cron: Cron,
    pub time_zone: Tz,
    pub catch_up: CatchUp,
    pub time_limit: Duration,
    pub retry: Retry,
    /// The file and line of the job's `name`.
    pub file: PathBuf,
    pub line: usize,
}

impl Job {
    /// The first slot strictly after `after`, in the job's zone; `None` when the cron line
    /// matches no time in the next years.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Tz>> {
        self.cron.find_next_occurrence(&after.with_timezone(&self.time_zone), false).ok()
    }
}

/// A schedule file that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub file: PathBuf,
    /// 1-based; `None` when the reason is about the file as a whole.
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

/// Every refusal of a schedules directory, one per line.
#[derive(Debug, thiserror::Error)]
pub struct Refused(pub Vec<Refusal>);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(Refusal::to_string).collect();
        write!(f, "the schedules cannot be used:\n{}", lines.join("\n"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    time_zone: Option<Spanned<String>>,
    #[serde(default, rename = "job")]
    jobs: Vec<RawJob>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: Spanned<String>,
    kind: JobKind,
    target: Spanned<String>,
    cron: Spanned<String>,
    #[serde(default)]
    time_zone: Option<Spanned<String>>,
    catch_up: CatchUp,
    time_limit_minutes: Spanned<u64>,
    #[serde(default)]
    retry: Option<Spanned<RawRetry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    attempts: u32,
    delay_minutes: u64,
}

/// Parses a five-field cron line (minute hour day-of-month month day-of-week).
pub fn parse_cron(line: &str) -> Result<Cron, String> {
    if line.split_whitespace().count() != 5 {
        return Err(format!(
            "cron «{line}» must have five fields: minute hour day-of-month month day-of-week (\"0 2 * * *\" is 02:00 \
             every day)"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(line)
        .map_err(|e| format!("cron «{line}» is not valid: {e}"))
}

/// Finds what a target name names in the configuration.
fn resolve_target(name: &str, config: &Config) -> Result<Target, String> {
    if name == "all" {
        return Ok(Target::All);
    }
    let is_source = config.sources.iter().any(|s| s.name == name);
    let is_school = config.schools.iter().any(|s| s.name == name)
        || config.sources.iter().any(|s| s.schools.iter().any(|id| id == name));
    match (is_source, is_school) {
        (true, false) => Ok(Target::Source(name.to_string())),
        (false, true) => Ok(Target::School(name.to_string())),
        (true, true) => Err(format!("target «{name}» is both a source and a school: rename one of them")),
        (false, false) => {
            let sources: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
            Err(format!(
                "unknown target «{name}»: give `all`, a source ({}) or a school (a [[school]] name or an id in a \
                 source's `schools`)",
                if sources.is_empty() { "none configured".to_string() } else { sources.join(", ") }
            ))
        }
    }
}

fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("unknown time zone «{name}»: give an IANA name such as Europe/Moscow, Asia/Yekaterinburg or Asia/Krasnoyarsk")
    })
}

/// Reads the jobs of one file's text; `file` names it in refusals.
pub fn parse_file(text: &str, file: &Path, config: &Config) -> Result<Vec<Job>, Vec<Refusal>> {
    let refusal = |offset: Option<usize>, reason: String| Refusal {
        file: file.to_path_buf(),
        line: offset.map(|o| line_of(text, o)),
        reason,
    };
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| vec![refusal(e.span().map(|s| s.start), e.message().trim_end().to_string())])?;
    let mut refusals = Vec::new();
    let file_zone = match &raw.time_zone {
        None => None,
        Some(zone) => match parse_zone(zone.get_ref()) {
            Ok(tz) => Some(tz),
            Err(reason) => {
                refusals.push(refusal(Some(zone.span().start), reason));
                None
            }
        },
    };
    let mut jobs = Vec::new();
    for raw_job in raw.jobs {
        let name = raw_job.name.get_ref().clone();
        let job_line = line_of(text, raw_job.name.span().start);
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_') {
            refusals.push(refusal(
                Some(raw_job.name.span().start),
                format!("job name «{name}»: use letters, digits, '-' and '_'"),
            ));
        }
        let target = resolve_target(raw_job.target.get_ref(), config)
            .map_err(|reason| refusals.push(refusal(Some(raw_job.target.span().start), reason)))
            .ok();
        let cron = parse_cron(raw_job.cron.get_ref().trim())
            .map_err(|reason| refusals.push(refusal(Some(raw_job.cron.span().start), reason)))
            .ok();
        let time_zone = match &raw_job.time_zone {
            Some(zone) => parse_zone(zone.get_ref())
                .map_err(|reason| refusals.push(refusal(Some(zone.span().start), reason)))
                .ok(),
            None if raw.time_zone.is_some() => file_zone,
            None => {
                refusals.push(refusal(
                    Some(raw_job.name.span().start),
                    format!(
                        "job «{name}» has no time_zone: give one in the job or at the top of the file (the school's \
                         zone, such as Europe/Moscow)"
                    ),
                ));
                None
            }
        };
        let minutes = *raw_job.time_limit_minutes.get_ref();
        if minutes == 0 || minutes > 24 * 60 {
            refusals.push(refusal(
                Some(raw_job.time_limit_minutes.span().start),
                format!("time_limit_minutes = {minutes} is out of range: give 1 to 1440 (a day)"),
            ));
        }
        let retry = match &raw_job.retry {
            None => Retry { attempts: 0, delay: Duration::ZERO },
            Some(retry) => {
                let r = retry.get_ref();
                if r.attempts > MAX_RETRY_ATTEMPTS {
                    refusals.push(refusal(
                        Some(retry.span().start),
                        format!("retry attempts = {} is too many: give 0 to {MAX_RETRY_ATTEMPTS}", r.attempts),
                    ));
                } else if r.attempts > 0 && r.delay_minutes == 0 {
                    refusals.push(refusal(
                        Some(retry.span().start),
                        "retry delay_minutes must be at least 1 when attempts are given".to_string(),
                    ));
                }
                Retry { attempts: r.attempts, delay: Duration::from_secs(r.delay_minutes * 60) }
            }
        };
        if let (Some(target), Some(cron), Some(time_zone)) = (target, cron, time_zone) {
            jobs.push(Job {
                name,
                kind: raw_job.kind,
                target,
                cron_line: raw_job.cron.get_ref().trim().to_string(),
                cron,
                time_zone,
                catch_up: raw_job.catch_up,
                time_limit: Duration::from_secs(minutes * 60),
                retry,
                file: file.to_path_buf(),
                line: job_line,
            });
        }
    }
    if refusals.is_empty() {
        Ok(jobs)
    } else {
        Err(refusals)
    }
}

/// The `*.toml` files of a listed directory, in name order (schedules and regulation
/// profiles are both directories of such files).
pub(crate) fn toml_files(entries: std::fs::ReadDir) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    files
}

/// Reads and parses each file: what parsed, and every refusal of every file at once (a file
/// that cannot be read is one refusal).
pub(crate) fn parse_files<T>(
    files: Vec<PathBuf>,
    mut parse: impl FnMut(&str, &Path) -> Result<T, Vec<Refusal>>,
) -> (Vec<T>, Vec<Refusal>) {
    let mut parsed = Vec::new();
    let mut refusals = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Err(e) => refusals.push(Refusal { file, line: None, reason: format!("cannot be read: {e}") }),
            Ok(text) => match parse(&text, &file) {
                Ok(found) => parsed.push(found),
                Err(found) => refusals.extend(found),
            },
        }
    }
    (parsed, refusals)
}

/// Loads every `*.toml` file of a schedules directory (in name order) and checks the job
/// names are unique across them. A directory that does not exist holds no jobs.
pub fn load_dir(dir: &Path, config: &Config) -> Result<Vec<Job>, Refused> {
    let whole = |reason: String| Refused(vec![Refusal { file: dir.to_path_buf(), line: None, reason }]);
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(whole(format!("cannot read the schedules directory: {e}"))),
    };
    let (found, mut refusals) = parse_files(toml_files(entries), |text, file| parse_file(text, file, config));
    let jobs: Vec<Job> = found.into_iter().flatten().collect();
    let mut seen: HashMap<&str, &Job> = HashMap::new();
    for job in &jobs {
        if let Some(first) = seen.insert(job.name.as_str(), job) {
            refusals.push(Refusal {
                file: job.file.clone(),
                line: Some(job.line),
                reason: format!(
                    "a job named «{}» is already in {}:{}: job names must be unique",
                    job.name,
                    first.file.display(),
                    first.line
                ),
            });
        }
    }
    if refusals.is_empty() {
        Ok(jobs)
    } else {
        Err(Refused(refusals))
    }
}

/// The jobs as a table: kind, target, cron line and zone, the next slot after `now` in the
/// job's zone and in UTC, and the last run (its slot in the job's zone and its outcome)
/// from `last`, the newest job run of each job (`None`: the store could not be read).
pub fn render(jobs: &[Job], now: DateTime<Utc>, last: Option<&HashMap<String, crate::store::JobRun>>) -> String {
    let header = ["NAME", "KIND", "TARGET", "CRON", "ZONE", "NEXT (ZONE)", "NEXT (UTC)", "LAST RUN"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for job in jobs {
        let next = job.next_after(now);
        let kind = if job.kind.is_available() {
            job.kind.as_str().to_string()
        } else {
            format!("{} (not yet available)", job.kind.as_str())
        };
        rows.push(vec![
            job.name.clone(),
            kind,
            job.target.to_string(),
            job.cron_line.clone(),
            job.time_zone.name().to_string(),
            next.map_or("never".into(), |t| t.format("%Y-%m-%d %H:%M %Z").to_string()),
            next.map_or("never".into(), |t| t.with_timezone(&Utc).format("%Y-%m-%d %H:%M").to_string()),
            match last {
                None => "?".to_string(),
                Some(last) => last.get(&job.name).map_or("—".to_string(), |run| {
                    format!(
                        "{} {}",
                        run.scheduled_at.with_timezone(&job.time_zone).format("%Y-%m-%d %H:%M %Z"),
                        run.status
                    )
                }),
            },
        ]);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
