//! The daemon (демон): `ejgate serve` runs the jobs of the schedules, alone or as several
//! workers on one PostgreSQL store; `ejgate jobs run NAME` runs one job now through the
//! same path.
//!
//! How a slot becomes a run, and runs once:
//! 1. Each worker computes the jobs' slots from their cron lines (`croner`, in the job's
//!    zone) and from the store's record of runs ([`plan`]): the slots since the newest one
//!    recorded, what `catch_up` makes of the missed ones. It records the slot as a job run
//!    keyed by (job, scheduled time) — `INSERT … ON CONFLICT DO NOTHING` — so of several
//!    workers, or a worker restarted, the slot is recorded once. (tokio-cron-scheduler was
//!    the card's choice; it keeps no record of runs, so it can neither catch up after
//!    downtime nor share slots between processes: the due times are computed here, with
//!    the same cron parser it builds on.)
//! 2. A worker takes a recorded run up by taking the job's lease `job:<name>`
//!    ([`crate::lease`]: heartbeat, expiry, immediate takeover from a dead process of the
//!    same host) and then marking the row `running` with the lease's token, by a
//!    conditional update ([`claim`]). One lease per job: two runs of one job never overlap.
//! 3. The run syncs its target's sources ([`run::execute`]); each sync takes the source's
//!    lease `source:<name>` as every sync does, so at most one sync of a source runs at a
//!    time across all workers and the source's request limit holds for the whole district.
//! 4. A worker that dies stops renewing its leases; once they expire (at once for a process
//!    of the same host that no longer runs) another worker takes the row, still `running`,
//!    up again, and the sync resumes from the committed cursors.
//!
//! A SQLite store runs one worker: `ejgate serve` takes the lease `serve`, and a second one
//! is refused with who holds it. On PostgreSQL any number of workers share the jobs.
//!
//! Shutdown: SIGTERM or Ctrl-C stops the scheduler; running syncs stop as `ejgate sync`
//! does (the group being written commits, the sync run and the job run are recorded
//! `interrupted`); the process waits at most [`SHUTDOWN_WAIT`] for them, then exits. The
//! next start takes the interrupted runs up again.
//!
//! For the HTTP part (health, metrics, the API), [`DaemonState`] holds what it reads (the
//! configuration, the jobs, the store, the clock) and [`ServeOptions::alongside`] starts a
//! task beside the scheduler that gets the state and the daemon's [`Stop`] and is waited
//! for (briefly) at shutdown. `ejgate serve` starts [`http::serve_http`] there, and the
//! alert watch ([`crate::alerts::watch`]) beside it.

pub mod clock;
pub mod http;
pub mod metrics;
pub mod plan;
pub mod run;
pub mod tokens;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

pub use clock::Clock;
pub use run::{execute, JobRunReport};

use crate::config::Config;
use crate::lease::{host_name, Lease};
use crate::schedule::{self, Job};
use crate::stop::Stop;
use crate::store::{JobClaim, JobRun, JobRunStatus, JobTrigger, NewJobRun, Store, StoreError, StoreResult};

/// How long a job's lease lasts without a renewal: a worker that died holds its runs up at
/// most this long (another host's worker then takes them over).
pub const JOB_LEASE_TTL: Duration = Duration::from_secs(30);

/// The lease a SQLite store's single `ejgate serve` holds.
pub const SERVE_LEASE: &str = "serve";

/// How often a worker looks for runs recorded by others, retries come due, and leases of
/// dead workers (besides waking at every slot and whenever one of its runs ends).
pub const POLL: Duration = Duration::from_secs(2);

/// How long a stopping daemon waits for its running jobs to record their end.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);

/// The name of a job's lease.
pub fn job_lease(job: &str) -> String {
    format!("job:{job}")
}

/// What the daemon works with; cheap to clone (shared).
#[derive(Clone)]
pub struct DaemonState {
    pub config: Arc<Config>,
    /// Every job of the schedules, those whose kind is not yet available included.
    pub jobs: Arc<Vec<Job>>,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
}

impl DaemonState {
    /// Loads the schedules of `schedules_dir` (refused with every file, line and reason)
    /// and opens the store. The clock is the system's unless `EJGATE_TEST_CLOCK_START` says
    /// otherwise ([`clock`]).
    pub async fn open(config: Config, schedules_dir: &Path) -> anyhow::Result<DaemonState> {
        let jobs = schedule::load_dir(schedules_dir, &config)?;
        let clock = Clock::from_env().map_err(anyhow::Error::msg)?;
        let store = crate::store::open(&config.store_url()).await?;
        Ok(DaemonState { config: Arc::new(config), jobs: Arc::new(jobs), store: Arc::from(store), clock })
    }

    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// Job runs, newest slot first, of one job or of all.
    pub async fn job_runs(&self, job: Option<&str>, limit: u32) -> StoreResult<Vec<JobRun>> {
        self.store.job_runs(job, limit).await
    }

    /// The newest run of each job that has one.
    pub async fn last_runs(&self) -> StoreResult<HashMap<String, JobRun>> {
        Ok(self.store.last_job_runs().await?.into_iter().map(|r| (r.job.clone(), r)).collect())
    }
}

/// A task started beside the scheduler (the HTTP server): it gets the state and the
/// daemon's stop, and should end soon after the stop is asked.
pub type Alongside = Box<dyn FnOnce(DaemonState, Stop) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// How `ejgate serve` runs.
pub struct ServeOptions {
    /// Job runs this worker runs at once (each syncs its sources one after another).
    pub jobs: usize,
    /// Asked by SIGTERM / Ctrl-C ([`crate::stop::on_signals`]).
    pub stop: Stop,
    pub alongside: Option<Alongside>,
}

/// Runs the scheduler until `options.stop` is asked, then waits (at most
/// [`SHUTDOWN_WAIT`]) for the running jobs to stop and record it.
pub async fn serve(state: DaemonState, options: ServeOptions) -> anyhow::Result<()> {
    let store = state.store.clone();
    let serve_lease = if store.backend() == "sqlite" {
        match Lease::acquire(store.as_ref(), SERVE_LEASE, JOB_LEASE_TTL).await {
            Ok(lease) => Some(lease),
            Err(StoreError::LeaseHeld(held)) => bail!(
                "another `ejgate serve` already serves this SQLite store: pid {} on host «{}», since {}. A SQLite store \
                 runs one worker: stop that one first (if it is gone, its lease expires at {}), or use a PostgreSQL \
                 store for several workers",
                held.pid,
                held.host,
                held.acquired_at.format("%Y-%m-%d %H:%M:%S UTC"),
                held.expires_at.format("%H:%M:%S UTC"),
            ),
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    let stop = options.stop.clone();
    let available: Vec<Job> = state.jobs.iter().filter(|j| j.kind.is_available()).cloned().collect();
    for job in state.jobs.iter().filter(|j| !j.kind.is_available()) {
        tracing::warn!(job = %job.name, "jobs of kind «{}» are not yet available: this job is not run", job.kind.as_str());
    }
    let mut anchors: HashMap<String, DateTime<Utc>> = HashMap::new();
    for job in &available {
        let anchor = store
            .schedule_anchor(&job.name, state.clock.now())
            .await
            .with_context(|| format!("cannot read the runs of job «{}»", job.name))?;
        anchors.insert(job.name.clone(), anchor);
    }
    tracing::info!(
        jobs = available.len(),
        backend = store.backend(),
        pid = std::process::id(),
        "serving the schedules"
    );
    let alongside = options.alongside.map(|start| tokio::spawn(start(state.clone(), stop.clone())));

    let host = host_name();
    let mut running = tokio::task::JoinSet::new();
    let parallel = options.jobs.max(1);
    while stop.requested().is_none() {
        let now = state.clock.now();
        for job in &available {
            let anchor = anchors[&job.name];
            let (planned, next_anchor) = plan::plan(job, anchor, now);
            if let Some(p) = planned {
                let new = NewJobRun {
                    job: &job.name,
                    scheduled_at: p.slot,
                    trigger: p.trigger,
                    status: p.status,
                    due_at: p.slot,
                    note: p.note.clone(),
                };
                match store.insert_job_run(&new).await {
                    Ok(Some(run)) => match (&run.status, &run.note) {
                        (JobRunStatus::Skipped, note) => tracing::warn!(
                            job = %job.name,
                            "slot {} not run: {}",
                            run.scheduled_at.format("%Y-%m-%d %H:%M UTC"),
                            note.as_deref().unwrap_or_default()
                        ),
                        (_, Some(note)) => tracing::warn!(job = %job.name, run = run.id, "{note}"),
                        (_, None) => tracing::debug!(job = %job.name, run = run.id, "slot recorded"),
                    },
                    // Another worker recorded it.
                    Ok(None) => {}
                    Err(e) => {
                        // The anchor stays: the next pass records it.
                        tracing::warn!(job = %job.name, "cannot record the slot (tried again in a moment): {e}");
                        continue;
                    }
                }
            }
            anchors.insert(job.name.clone(), next_anchor);
        }
        while running.len() < parallel && stop.requested().is_none() {
            match claim(&state, &host).await {
                Ok(Some((run, lease))) => {
                    let (state, stop) = (state.clone(), stop.clone());
                    running.spawn(async move { execute(&state, run, lease, &stop).await });
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("cannot look for due jobs (tried again in a moment): {e}");
                    break;
                }
            }
        }
        let next_slot =
            available.iter().filter_map(|j| j.next_after(anchors[&j.name]).map(|t| t.with_timezone(&Utc))).min();
        let poll = state.clock.now() + chrono::TimeDelta::from_std(POLL).unwrap_or_default();
        let wake = next_slot.map_or(poll, |slot| slot.min(poll));
        // Not less than a moment: a slot the store refused to record is due at once again,
        // and a store that is down is not asked in a tight loop.
        let pause = state.clock.until(wake).max(Duration::from_millis(100));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.wait() => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }

    tracing::info!(running = running.len(), "stopping: the running jobs stop after the batch being written");
    let waited = tokio::time::timeout(SHUTDOWN_WAIT, async { while running.join_next().await.is_some() {} }).await;
    if waited.is_err() {
        tracing::warn!(
            "{} job(s) did not stop within {} s; left as running, the next start takes them up again",
            running.len(),
            SHUTDOWN_WAIT.as_secs()
        );
        running.abort_all();
    }
    if let Some(task) = alongside {
        let abort = task.abort_handle();
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Err(e))) => tracing::warn!("the task beside the scheduler failed: {e:#}"),
            Err(_) => abort.abort(),
            _ => {}
        }
    }
    if let Some(lease) = serve_lease {
        lease.release().await;
    }
    Ok(())
}

/// Takes up the oldest due job run whose job's lease this worker can take: the lease, then
/// the row marked `running` with the lease's token. `None` when there is none.
pub async fn claim(state: &DaemonState, host: &str) -> StoreResult<Option<(JobRun, Lease)>> {
    let now = state.clock.now();
    let open = state.store.open_job_runs(now, 1000).await?;
    if open.is_empty() {
        return Ok(None);
    }
    let leases: HashMap<String, crate::store::LeaseInfo> =
        state.store.leases().await?.into_iter().map(|l| (l.name.clone(), l)).collect();
    let pid = std::process::id();
    let mut tried = HashSet::new();
    for run in open {
        let Some(job) = state.job(&run.job).filter(|j| j.kind.is_available()) else { continue };
        let name = job_lease(&job.name);
        if !tried.insert(name.clone()) {
            continue;
        }
        // Leases held by this process, or live on another host, are not asked for.
        if let Some(held) = leases.get(&name) {
            let live_elsewhere = held.host != host && held.expires_at > Utc::now();
            if (held.host == host && held.pid == pid) || live_elsewhere {
                continue;
            }
        }
        let lease = match Lease::acquire(state.store.as_ref(), &name, JOB_LEASE_TTL).await {
            Ok(lease) => lease,
            Err(StoreError::LeaseHeld(_)) => continue,
            Err(e) => return Err(e),
        };
        let claim = JobClaim { token: lease.info().token, host, pid };
        match state.store.start_job_run(run.id, &claim, state.clock.now()).await {
            Ok(Some(started)) => return Ok(Some((started, lease))),
            // Finished by another worker meanwhile.
            Ok(None) => lease.release().await,
            Err(e) => {
                lease.release().await;
                return Err(e);
            }
        }
    }
    Ok(None)
}

/// `ejgate jobs run NAME`: records a manual run of the job now and runs it through the same
/// path as the scheduler.
pub async fn run_now(state: &DaemonState, name: &str, stop: &Stop) -> anyhow::Result<JobRunReport> {
    let Some(job) = state.job(name) else {
        let names: Vec<&str> = state.jobs.iter().map(|j| j.name.as_str()).collect();
        bail!(
            "no job named «{name}» in the schedules (jobs: {})",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        );
    };
    if !job.kind.is_available() {
        bail!("job «{name}» is of kind «{}», which is not yet available", job.kind.as_str());
    }
    let lease = match Lease::acquire(state.store.as_ref(), &job_lease(name), JOB_LEASE_TTL).await {
        Ok(lease) => lease,
        Err(StoreError::LeaseHeld(held)) => bail!(
            "job «{name}» is running now: pid {} on host «{}», since {}; wait for it to finish (`ejgate jobs` shows \
             its last run)",
            held.pid,
            held.host,
            held.acquired_at.format("%Y-%m-%d %H:%M:%S UTC"),
        ),
        Err(e) => return Err(e.into()),
    };
    let now = state.clock.now();
    let new = NewJobRun {
        job: name,
        scheduled_at: now,
        trigger: JobTrigger::Manual,
        status: JobRunStatus::Due,
        due_at: now,
        note: None,
    };
    let host = host_name();
    let claim = JobClaim { token: lease.info().token, host: &host, pid: std::process::id() };
    let recorded = state.store.insert_job_run(&new).await?;
    let started = match recorded {
        Some(run) => state.store.start_job_run(run.id, &claim, now).await?,
        None => None,
    };
    let Some(run) = started else {
        lease.release().await;
        bail!("job «{name}»: a run at {now} is already recorded; run it again");
    };
    Ok(execute(state, run, lease, stop).await)
}
