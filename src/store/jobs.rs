//! Job runs as the store keeps them (задания демона): one row per slot of a job, with an
//! idempotency key (job, scheduled time), written by `ejgate serve` and `ejgate jobs run`
//! (`crate::daemon`). Both backends implement [`JobStore`] in a file of their own
//! (`postgres/jobs.rs`, `sqlite/jobs.rs`); it is part of [`super::Store`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{RunErrorKind, RunId, StoreError, StoreResult};

/// Identifier of a job run.
pub type JobRunId = i64;

/// Why a job run exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobTrigger {
    /// Its slot came while a worker was running.
    Schedule,
    /// Its slot (and maybe others) passed while no worker ran: the job's `catch_up` policy
    /// decided (run once, or record it skipped).
    CatchUp,
    /// `ejgate jobs run NAME`.
    Manual,
}

impl JobTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            JobTrigger::Schedule => "schedule",
            JobTrigger::CatchUp => "catch_up",
            JobTrigger::Manual => "manual",
        }
    }
    pub fn parse(s: &str) -> Option<JobTrigger> {
        [JobTrigger::Schedule, JobTrigger::CatchUp, JobTrigger::Manual].into_iter().find(|t| t.as_str() == s)
    }
}

/// Where a job run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobRunStatus {
    /// Waiting for a worker (a retry waits until its `due_at`).
    Due,
    /// A worker runs it (or ran it and died: its lease tells).
    Running,
    Succeeded,
    /// Failed, retries spent.
    Failed,
    /// Stopped by the job's time limit, retries spent.
    TimedOut,
    /// Stopped by SIGTERM or Ctrl-C; the next worker to start takes it up again.
    Interrupted,
    /// Missed while no worker ran, and the job's policy is `catch_up = "skip"`.
    Skipped,
}

impl JobRunStatus {
    pub const ALL: [JobRunStatus; 7] = [
        JobRunStatus::Due,
        JobRunStatus::Running,
        JobRunStatus::Succeeded,
        JobRunStatus::Failed,
        JobRunStatus::TimedOut,
        JobRunStatus::Interrupted,
        JobRunStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobRunStatus::Due => "due",
            JobRunStatus::Running => "running",
            JobRunStatus::Succeeded => "succeeded",
            JobRunStatus::Failed => "failed",
            JobRunStatus::TimedOut => "timed_out",
            JobRunStatus::Interrupted => "interrupted",
            JobRunStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<JobRunStatus> {
        JobRunStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the run has ended for good.
    pub fn is_final(self) -> bool {
        !matches!(self, JobRunStatus::Due | JobRunStatus::Running | JobRunStatus::Interrupted)
    }
}

impl std::fmt::Display for JobRunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One job run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    pub id: JobRunId,
    pub job: String,
    /// The slot, in UTC (for a manual run: when it was asked for).
    pub scheduled_at: DateTime<Utc>,
    pub trigger: JobTrigger,
    pub status: JobRunStatus,
    /// When it may start.
    pub due_at: DateTime<Utc>,
    /// 1, then one more per retry.
    pub attempt: u32,
    /// Times it was taken up again after its worker died or was stopped.
    pub resumed: u32,
    /// The job lease's token of the worker running it. Never shown.
    #[serde(skip)]
    pub claim: Option<Uuid>,
    /// The worker running it, or that ran it last.
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub error_kind: Option<RunErrorKind>,
    /// The sync runs it made, over all its attempts.
    pub sync_runs: Vec<RunId>,
    /// What the scheduler decided about missed slots.
    pub note: Option<String>,
}

/// A slot to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJobRun<'a> {
    pub job: &'a str,
    pub scheduled_at: DateTime<Utc>,
    pub trigger: JobTrigger,
    /// `Due`, or `Skipped` for a slot the policy skips.
    pub status: JobRunStatus,
    pub due_at: DateTime<Utc>,
    pub note: Option<String>,
}

/// The worker taking a job run up: the job lease it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobClaim<'a> {
    pub token: Uuid,
    pub host: &'a str,
    pub pid: u32,
}

/// How a job run attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct JobEnd<'a> {
    /// `Succeeded`, `Failed`, `TimedOut` or `Interrupted`; with `retry_at`, the row goes
    /// back to `Due` for its next attempt instead.
    pub status: JobRunStatus,
    pub error: Option<&'a str>,
    pub error_kind: Option<RunErrorKind>,
    pub retry_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// The job runs of one (job, status), added up: what `/metrics` exports of the jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRunTotals {
    pub job: String,
    pub status: JobRunStatus,
    pub runs: u64,
    /// Attempts beyond the first (retries), over these runs.
    pub retries: u64,
    /// Times these runs were taken up again after their worker died or stopped.
    pub resumed: u64,
    /// When the newest of them finished.
    pub last_finished_at: Option<DateTime<Utc>>,
}

/// The daemon's part of the store.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Records that the daemon knows the job from `now` on (the first time only), and
    /// returns the time from which its slots are owed: the later of that first time and
    /// the newest slot recorded by the schedule (manual runs are not slots).
    async fn schedule_anchor(&self, job: &str, now: DateTime<Utc>) -> StoreResult<DateTime<Utc>>;

    /// Records a slot unless the same (job, scheduled time) is already recorded: `None`
    /// then. Of two workers recording one slot, one gets it.
    async fn insert_job_run(&self, new: &NewJobRun<'_>) -> StoreResult<Option<JobRun>>;

    /// Rows a worker may take up, oldest due first: `due` or `interrupted` ones whose time
    /// has come, and `running` ones (whose worker may be dead: the job's lease tells).
    async fn open_job_runs(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<JobRun>>;

    /// Marks the row `running` for the worker holding the job's lease, if it may still be
    /// taken up (`due` or `interrupted` and due by `now`, or `running`); `None` when another
    /// worker finished it meanwhile. A row taken up from `running` or `interrupted` counts
    /// in `resumed`.
    async fn start_job_run(
        &self,
        id: JobRunId,
        claim: &JobClaim<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<JobRun>>;

    /// Adds a sync run to the row (only while `claim` holds it: `false` otherwise).
    async fn add_job_sync_run(&self, id: JobRunId, claim: Uuid, run: RunId) -> StoreResult<bool>;

    /// Closes an attempt (only while `claim` holds it: `false` otherwise, when its lease
    /// was taken over and another worker runs the row now).
    async fn finish_job_run(&self, id: JobRunId, claim: Uuid, end: &JobEnd<'_>) -> StoreResult<bool>;

    /// Job runs, newest slot first, of one job or of all.
    async fn job_runs(&self, job: Option<&str>, limit: u32) -> StoreResult<Vec<JobRun>>;

    /// The newest run (by slot) of every job that has one.
    async fn last_job_runs(&self) -> StoreResult<Vec<JobRun>>;

    /// The job runs added up per (job, status).
    async fn job_run_totals(&self) -> StoreResult<Vec<JobRunTotals>>;
}

/// Reads a stored status, trigger or error kind back.
pub(crate) fn parse_status(s: &str) -> StoreResult<JobRunStatus> {
    JobRunStatus::parse(s).ok_or_else(|| StoreError::Invalid(format!("unknown job run status «{s}» in the store")))
}

pub(crate) fn parse_trigger(s: &str) -> StoreResult<JobTrigger> {
    JobTrigger::parse(s).ok_or_else(|| StoreError::Invalid(format!("unknown job run trigger «{s}» in the store")))
}

pub(crate) fn parse_error_kind(s: Option<&str>) -> StoreResult<Option<RunErrorKind>> {
    s.map(|k| {
        RunErrorKind::parse(k).ok_or_else(|| StoreError::Invalid(format!("unknown error kind «{k}» in the store")))
    })
    .transpose()
}

pub(crate) fn parse_sync_runs(s: &str) -> StoreResult<Vec<RunId>> {
    serde_json::from_str(s).map_err(|e| StoreError::Invalid(format!("bad sync run list «{s}» in the store: {e}")))
}
