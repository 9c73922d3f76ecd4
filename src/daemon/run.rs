//! One job run (запуск задания): taken up under the job's lease, its target's sources
//! synced one after another (or its schools monitored, the store backed up, the year-end
//! archive made), the outcome recorded in its row.
//!
//! - Time limit: the run's own [`Stop`] is asked when the limit passes, so the sync stops as
//!   a SIGTERM'd one does (the group being written commits, the sync run is recorded
//!   `interrupted`); the job run is recorded `timed_out`.
//! - SIGTERM / Ctrl-C: the daemon's stop is passed on to the run's; the job run is recorded
//!   `interrupted`, and the next worker to start takes it up again (the sync resumes from
//!   the committed cursors).
//! - Retries: a `failed` or `timed_out` attempt with retries left goes back to `due`, its
//!   `due_at` the retry delay later; the same row runs again (`attempt` + 1).
//! - A source whose lease another process holds (a manual `ejgate sync`, another job of
//!   the same source on another worker) is waited for, within the time limit: at most one
//!   sync of a source runs at a time across every worker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ejgate_sdk::connector::SyncMode;

use super::DaemonState;
use crate::config::{Config, SourceConfig};
use crate::lease::Lease;
use crate::schedule::{Job, JobKind, Target};
use crate::stop::Stop;
use crate::store::{JobEnd, JobRun, JobRunStatus, RunErrorKind, RunId, RunStatus, StoreError};
use crate::sync::{run_sync, Quiet, SyncOptions};

/// How often a run waiting for a source's lease asks again.
const SOURCE_WAIT: Duration = Duration::from_secs(2);

/// What a job run attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRunReport {
    pub run: JobRun,
    /// How the attempt ended (`Due` when it failed and a retry is due at `retry_at`).
    pub status: JobRunStatus,
    pub error: Option<String>,
    pub error_kind: Option<RunErrorKind>,
    pub retry_at: Option<DateTime<Utc>>,
    /// The sync runs of this attempt, with their sources.
    pub syncs: Vec<(String, RunId, RunStatus)>,
    pub elapsed: Duration,
    /// `false` when the job's lease was lost (this process was paused past its time to
    /// live) and the outcome was left to the worker that took the run over.
    pub recorded: bool,
}

/// The sources a target names, in the configuration's order. A school is synced through the
/// sources that serve it, whole: a source's lease, cursors and request limit are per source.
pub fn sources_of<'a>(config: &'a Config, target: &Target) -> Vec<&'a SourceConfig> {
    match target {
        Target::All => config.sources.iter().collect(),
        Target::Source(name) => config.sources.iter().filter(|s| &s.name == name).collect(),
        Target::School(name) => match config.schools.iter().find(|s| &s.name == name) {
            Some(school) => config.sources.iter().filter(|s| school.sources.contains(&s.name)).collect(),
            None => config.sources.iter().filter(|s| s.schools.contains(name)).collect(),
        },
    }
}

/// Runs a job run taken up under `lease` (see [`super::claim`]) to the end of this attempt
/// and records how it ended. `stop` is the daemon's (signals).
pub async fn execute(state: &DaemonState, run: JobRun, lease: Lease, stop: &Stop) -> JobRunReport {
    let started = Instant::now();
    let claim = lease.info().token;
    let Some(job) = state.job(&run.job).cloned() else {
        // The caller checked; a row of a job no longer in the schedules is not taken up.
        lease.release().await;
        return JobRunReport {
            status: JobRunStatus::Failed,
            error: Some(format!("job «{}» is not in the schedules", run.job)),
            error_kind: Some(RunErrorKind::Config),
            retry_at: None,
            syncs: Vec::new(),
            elapsed: started.elapsed(),
            recorded: false,
            run,
        };
    };
    tracing::info!(
        job = %job.name,
        run = run.id,
        slot = %run.scheduled_at.format("%Y-%m-%d %H:%M UTC"),
        attempt = run.attempt,
        resumed = run.resumed,
        "job started"
    );

    // The run's own stop: asked by the daemon's stop or by the time limit.
    let run_stop = Stop::default();
    let timed_out = Arc::new(AtomicBool::new(false));
    let forward = tokio::spawn({
        let (stop, run_stop, timed_out, limit) = (stop.clone(), run_stop.clone(), timed_out.clone(), job.time_limit);
        async move {
            tokio::select! {
                () = stop.wait() => run_stop.request(stop.requested().unwrap_or("a stop request")),
                () = tokio::time::sleep(limit) => {
                    timed_out.store(true, Ordering::SeqCst);
                    run_stop.request("the job's time limit");
                }
            }
        }
    });

    let mut syncs = Vec::new();
    let mut failures: Vec<(String, RunErrorKind)> = Vec::new();
    // Whether the run stopped before the end of its sources (time limit, signal).
    let mut stopped = false;
    if job.kind == JobKind::Monitor {
        // Monitoring (мониторинг): the schools of the target that name a regulation, each
        // judged for yesterday in its own zone, the findings recorded.
        let schools = state.config.schools.iter().filter(|s| s.regulation.is_some()).filter(|s| match &job.target {
            Target::All => true,
            Target::School(name) => &s.name == name,
            Target::Source(name) => s.sources.contains(name),
        });
        let mut any = false;
        for school in schools {
            any = true;
            let now = state.clock.now();
            let day = crate::monitor::Span::Day;
            if let Err(e) =
                crate::monitor::run(&state.config, state.store.as_ref(), &school.name, None, day, now, true).await
            {
                failures.push((format!("monitoring of «{}»: {e:#}", school.name), RunErrorKind::Internal));
            }
        }
        if !any {
            failures.push((
                format!("no [[school]] of target {} names a regulation: add regulation = \"…\" to it", job.target),
                RunErrorKind::Config,
            ));
        }
    }
    match job.kind {
        JobKind::Backup => {
            if let Err(failure) = run_backup(state, &job).await {
                failures.push(failure);
            }
        }
        JobKind::Snapshot => failures.extend(run_snapshots(state, &job).await),
        JobKind::Paper => failures.extend(run_paper(state, &job).await),
        JobKind::Report => {
            // Reports (отчёты): the target's monthly reports and, for `all`, the district's
            // quarterly rollout report, written into reports_dir.
            match crate::report::job(&state.config, state.store.as_ref(), &job.target, state.clock.now()).await {
                Ok(files) => tracing::info!(
                    job = %job.name,
                    "reports written: {}",
                    files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
                ),
                Err(e) => failures.push((format!("reports: {e:#}"), RunErrorKind::Internal)),
            }
        }
        _ => {}
    }
    let sync_sources = if matches!(job.kind, JobKind::Sync | JobKind::FullSync) {
        sources_of(&state.config, &job.target)
    } else {
        Vec::new()
    };
    for source in sync_sources {
        if run_stop.requested().is_some() {
            stopped = true;
            break;
        }
        if let Some(lost) = lease.lost() {
            failures.push((lost, RunErrorKind::Internal));
            break;
        }
        match sync_source(state, &job, source, &run_stop).await {
            Synced::Run(report) => {
                if let Err(e) = state.store.add_job_sync_run(run.id, claim, report.run).await {
                    tracing::warn!(job = %job.name, "could not add sync run #{} to job run #{}: {e}", report.run, run.id);
                }
                syncs.push((source.name.clone(), report.run, report.status));
                match report.status {
                    RunStatus::Failed => failures.push((
                        format!("{}: run #{} failed: {}", source.name, report.run, report.error.unwrap_or_default()),
                        report.error_kind.unwrap_or(RunErrorKind::Internal),
                    )),
                    RunStatus::Interrupted => {
                        stopped = true;
                        break;
                    }
                    RunStatus::Succeeded | RunStatus::Running => {}
                }
            }
            Synced::Stopped => {
                stopped = true;
                break;
            }
            Synced::Failed(message, kind) => failures.push((format!("{}: {message}", source.name), kind)),
        }
    }
    forward.abort();

    let now = state.clock.now();
    let (status, error, error_kind) = if stopped && timed_out.load(Ordering::SeqCst) {
        (
            JobRunStatus::TimedOut,
            Some(format!(
                "the job's time limit of {} min passed: stopped (what was written is kept){}",
                job.time_limit.as_secs() / 60,
                if failures.is_empty() {
                    String::new()
                } else {
                    format!("; before that: {}", failures.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join("; "))
                }
            )),
            Some(RunErrorKind::Timeout),
        )
    } else if let Some(why) = run_stop.requested().filter(|_| stopped) {
        (
            JobRunStatus::Interrupted,
            Some(format!("stopped by {why}; the next worker to start takes it up again from what was written")),
            Some(RunErrorKind::Stopped),
        )
    } else if !failures.is_empty() {
        (
            JobRunStatus::Failed,
            Some(failures.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join("; ")),
            Some(failures[0].1),
        )
    } else {
        (JobRunStatus::Succeeded, None, None)
    };
    let retry_at = (matches!(status, JobRunStatus::Failed | JobRunStatus::TimedOut)
        && run.attempt <= job.retry.attempts)
        .then(|| now + chrono::TimeDelta::from_std(job.retry.delay).unwrap_or_default());
    let end = JobEnd { status, error: error.as_deref(), error_kind, retry_at, at: now };
    let recorded = match state.store.finish_job_run(run.id, claim, &end).await {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!(
                job = %job.name,
                "job run #{} was taken over by another worker (this one lost its lease: was it paused?); its \
                 outcome here is not recorded",
                run.id
            );
            false
        }
        Err(e) => {
            // Left `running`: once this process ends, its lease expires and a worker takes
            // the run up again.
            tracing::error!(job = %job.name, "could not record the end of job run #{}: {e}", run.id);
            false
        }
    };
    lease.release().await;
    log_end(&job, &run, status, error.as_deref(), error_kind, retry_at);
    JobRunReport {
        status: if retry_at.is_some() { JobRunStatus::Due } else { status },
        error,
        error_kind,
        retry_at,
        syncs,
        elapsed: started.elapsed(),
        recorded,
        run,
    }
}

fn log_end(
    job: &Job,
    run: &JobRun,
    status: JobRunStatus,
    error: Option<&str>,
    kind: Option<RunErrorKind>,
    retry_at: Option<DateTime<Utc>>,
) {
    let error = error.unwrap_or_default();
    match status {
        JobRunStatus::Succeeded => tracing::info!(job = %job.name, run = run.id, "job succeeded"),
        JobRunStatus::Interrupted => tracing::warn!(job = %job.name, run = run.id, "job interrupted: {error}"),
        _ => {
            let then = match retry_at {
                Some(at) => format!("tried again at {} (attempt {})", at.format("%Y-%m-%d %H:%M UTC"), run.attempt + 1),
                None => "no retries left".to_string(),
            };
            let todo = kind.map(|k| k.what_to_do()).unwrap_or("see the error");
            tracing::error!(job = %job.name, run = run.id, "job {status}: {error}; {then}; what to do: {todo}");
        }
    }
}

enum Synced {
    Run(Box<crate::sync::SyncReport>),
    /// Stopped while waiting for the source's lease.
    Stopped,
    Failed(String, RunErrorKind),
}

/// One source of the job's target, waiting for its lease while another process syncs it.
async fn sync_source(state: &DaemonState, job: &Job, source: &SourceConfig, stop: &Stop) -> Synced {
    let connector = match crate::sources::connector(&state.config, source) {
        Ok(c) => c,
        Err(e) => return Synced::Failed(format!("{e:#}"), RunErrorKind::Config),
    };
    let mode =
        if job.kind == JobKind::FullSync || source.year.is_some() { SyncMode::Full } else { SyncMode::Incremental };
    let options = SyncOptions {
        mode,
        concurrency: source.concurrency,
        progress: Arc::new(Quiet),
        skip_limit: source.skip_limit(),
        year: source.year,
        deletes: source.delete_limit(false),
        stop: stop.clone(),
        max_requests: source.max_requests,
        requests_per_second: source.requests_per_second,
    };
    let mut said = false;
    loop {
        match run_sync(state.store.as_ref(), connector.clone(), &options).await {
            Ok(report) => return Synced::Run(Box::new(report)),
            Err(StoreError::LeaseHeld(held)) => {
                if !said {
                    tracing::info!(
                        job = %job.name,
                        "source «{}» is being synced by pid {} on host «{}»: waiting for it",
                        source.name,
                        held.pid,
                        held.host
                    );
                    said = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(SOURCE_WAIT) => {}
                    () = stop.wait() => return Synced::Stopped,
                }
            }
            Err(e) => return Synced::Failed(e.to_string(), RunErrorKind::Store),
        }
    }
}

/// A backup job (резервное копирование по расписанию, REGULATIONS A6): `ejgate backup` of
/// the whole store (the target is not used). A run that leaves a target unwritten fails, so
/// that it is retried and alerted; the next run fills the gap.
async fn run_backup(state: &DaemonState, job: &Job) -> Result<(), (String, RunErrorKind)> {
    let backups = crate::backup::Backups::from_config(&state.config, None)
        .map_err(|e| (format!("backup: {e:#}"), RunErrorKind::Config))?;
    let who = format!("ejgate serve (job {})", job.name);
    let report = crate::backup::backup(state.store.as_ref(), &backups, &who, Some("scheduled backup (REGULATIONS A6)"))
        .await
        .map_err(|e| (format!("backup: {e:#}"), RunErrorKind::Store))?;
    tracing::info!(job = %job.name, "{}", report.render().trim_end());
    if report.outcome == crate::store::BackupOutcome::Ok {
        return Ok(());
    }
    let down: Vec<String> =
        report.targets.iter().filter_map(|t| t.error.as_ref().map(|e| format!("«{}»: {e}", t.target))).collect();
    Err((
        format!("backup {} {}: not written to {}", report.id, report.outcome.as_str(), down.join("; ")),
        RunErrorKind::Transport,
    ))
}

/// A year-end snapshot job (архив на конец года, by 30 June): the bag of the school year
/// the run falls in, for each school of the target (every `[[school]]` for `all`, or each
/// source when there is none), signed, and copied to the backup targets. A bag made by an
/// earlier run is not made again; only the targets that lack it get it.
/// A `paper` job: per school of the target, the copies of the journal for the study period
/// that ended last (A1), into `archive/paper/SCHOOL/`.
async fn run_paper(state: &DaemonState, job: &Job) -> Vec<(String, RunErrorKind)> {
    let config = &state.config;
    let schools: Vec<String> = match &job.target {
        Target::All if !config.schools.is_empty() => config.schools.iter().map(|s| s.name.clone()).collect(),
        Target::All => config.sources.iter().map(|s| s.name.clone()).collect(),
        Target::School(name) | Target::Source(name) => vec![name.clone()],
    };
    let today = state.clock.now().date_naive();
    let mut failures = Vec::new();
    for school in schools {
        match crate::archive::paper::last_period_job(config, state.store.as_ref(), &school, today).await {
            Ok(report) => tracing::info!(job = %job.name, "{}", report.render().trim_end()),
            Err(e) => failures.push((format!("paper copies of «{school}»: {e:#}"), RunErrorKind::Internal)),
        }
    }
    failures
}

async fn run_snapshots(state: &DaemonState, job: &Job) -> Vec<(String, RunErrorKind)> {
    let config = &state.config;
    let schools: Vec<String> = match &job.target {
        Target::All if !config.schools.is_empty() => config.schools.iter().map(|s| s.name.clone()).collect(),
        Target::All => config.sources.iter().map(|s| s.name.clone()).collect(),
        Target::School(name) | Target::Source(name) => vec![name.clone()],
    };
    let year = ejgate_sdk::year::SchoolYear::containing(state.clock.now().date_naive());
    let mut failures = Vec::new();
    for school in schools {
        match crate::archive::year_end(config, state.store.as_ref(), &school, year).await {
            Ok(report) => {
                tracing::info!(job = %job.name, "{}", report.render().trim_end());
                let down: Vec<String> = report
                    .copies
                    .iter()
                    .filter_map(|c| c.error.as_ref().map(|e| format!("«{}»: {e}", c.target)))
                    .collect();
                if !down.is_empty() {
                    failures.push((
                        format!(
                            "year-end archive of «{school}» {year}: not copied to {} (the next run copies it)",
                            down.join("; ")
                        ),
                        RunErrorKind::Transport,
                    ));
                }
            }
            Err(e) => failures.push((format!("year-end archive of «{school}» {year}: {e:#}"), RunErrorKind::Internal)),
        }
    }
    failures
}
