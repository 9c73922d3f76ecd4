//! [`JobStore`] on SQLite: one worker per store (`ejgate serve` holds the `serve` lease),
//! but `ejgate jobs run` may write beside it; every write is one statement or one
//! `BEGIN IMMEDIATE` transaction on the writer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use super::{db, parse_ts, parse_uuid, ts, SqliteStore};
use crate::store::jobs::{parse_error_kind, parse_status, parse_sync_runs, parse_trigger};
use crate::store::{
    JobClaim, JobEnd, JobRun, JobRunId, JobRunStatus, JobRunTotals, JobStore, NewJobRun, RunId, StoreResult,
};

const COLUMNS: &str = "id, job, scheduled_at, trigger, status, due_at, attempt, resumed, claim, host, pid, \
     started_at, finished_at, error, error_kind, sync_runs, note";

fn job_run(row: &SqliteRow) -> StoreResult<JobRun> {
    let get = db("read job runs");
    let time = |i: usize| -> StoreResult<Option<DateTime<Utc>>> {
        row.try_get::<Option<&str>, _>(i).map_err(get)?.map(parse_ts).transpose()
    };
    let attempt: i64 = row.try_get(6).map_err(get)?;
    let resumed: i64 = row.try_get(7).map_err(get)?;
    let pid: Option<i64> = row.try_get(10).map_err(get)?;
    Ok(JobRun {
        id: row.try_get(0).map_err(get)?,
        job: row.try_get(1).map_err(get)?,
        scheduled_at: parse_ts(row.try_get(2).map_err(get)?)?,
        trigger: parse_trigger(row.try_get(3).map_err(get)?)?,
        status: parse_status(row.try_get(4).map_err(get)?)?,
        due_at: parse_ts(row.try_get(5).map_err(get)?)?,
        attempt: u32::try_from(attempt).unwrap_or(0),
        resumed: u32::try_from(resumed).unwrap_or(0),
        claim: row.try_get::<Option<&[u8]>, _>(8).map_err(get)?.map(parse_uuid).transpose()?,
        host: row.try_get(9).map_err(get)?,
        pid: pid.and_then(|p| u32::try_from(p).ok()),
        started_at: time(11)?,
        finished_at: time(12)?,
        error: row.try_get(13).map_err(get)?,
        error_kind: parse_error_kind(row.try_get(14).map_err(get)?)?,
        sync_runs: parse_sync_runs(row.try_get(15).map_err(get)?)?,
        note: row.try_get(16).map_err(get)?,
    })
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn schedule_anchor(&self, job: &str, now: DateTime<Utc>) -> StoreResult<DateTime<Utc>> {
        sqlx::query("INSERT INTO job_schedules (job, since) VALUES (?1, ?2) ON CONFLICT (job) DO NOTHING")
            .bind(job)
            .bind(ts(now))
            .execute(&self.writer)
            .await
            .map_err(db("record a job's first start"))?;
        // Fixed-width text: max() of the texts is the latest time.
        let anchor: String = sqlx::query_scalar(
            "SELECT max(s.since, coalesce((SELECT max(scheduled_at) FROM job_runs r \
             WHERE r.job = s.job AND r.trigger <> 'manual'), '')) FROM job_schedules s WHERE s.job = ?1",
        )
        .bind(job)
        .fetch_one(&self.writer)
        .await
        .map_err(db("read a job's last slot"))?;
        parse_ts(&anchor)
    }

    async fn insert_job_run(&self, new: &NewJobRun<'_>) -> StoreResult<Option<JobRun>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO job_runs (job, scheduled_at, trigger, status, due_at, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (job, scheduled_at) DO NOTHING RETURNING {COLUMNS}"
        )))
        .bind(new.job)
        .bind(ts(new.scheduled_at))
        .bind(new.trigger.as_str())
        .bind(new.status.as_str())
        .bind(ts(new.due_at))
        .bind(new.note.as_deref())
        .fetch_optional(&self.writer)
        .await
        .map_err(db("record a job run"))?;
        row.as_ref().map(job_run).transpose()
    }

    async fn open_job_runs(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<JobRun>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM job_runs WHERE status IN ('due', 'running', 'interrupted') \
             AND (status = 'running' OR due_at <= ?1) ORDER BY due_at, id LIMIT ?2"
        )))
        .bind(ts(now))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db("list open job runs"))?;
        rows.iter().map(job_run).collect()
    }

    async fn start_job_run(
        &self,
        id: JobRunId,
        claim: &JobClaim<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<JobRun>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "UPDATE job_runs SET resumed = resumed + CASE WHEN status = 'due' THEN 0 ELSE 1 END, \
             status = 'running', claim = ?2, host = ?3, pid = ?4, started_at = ?5, finished_at = NULL \
             WHERE id = ?1 AND (status = 'running' OR (status IN ('due', 'interrupted') AND due_at <= ?5)) \
             RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(&claim.token.as_bytes()[..])
        .bind(claim.host)
        .bind(i64::from(claim.pid))
        .bind(ts(now))
        .fetch_optional(&self.writer)
        .await
        .map_err(db("start a job run"))?;
        row.as_ref().map(job_run).transpose()
    }

    async fn add_job_sync_run(&self, id: JobRunId, claim: Uuid, run: RunId) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE job_runs SET sync_runs = json_insert(sync_runs, '$[#]', ?3) WHERE id = ?1 AND claim = ?2",
        )
        .bind(id)
        .bind(&claim.as_bytes()[..])
        .bind(run)
        .execute(&self.writer)
        .await
        .map_err(db("add a sync run to a job run"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_job_run(&self, id: JobRunId, claim: Uuid, end: &JobEnd<'_>) -> StoreResult<bool> {
        let (status, attempt_step) = match end.retry_at {
            Some(_) => (JobRunStatus::Due, 1),
            None => (end.status, 0),
        };
        let done = sqlx::query(
            "UPDATE job_runs SET status = ?3, finished_at = ?4, error = ?5, error_kind = ?6, \
             due_at = coalesce(?7, due_at), attempt = attempt + ?8, claim = CASE WHEN ?3 = 'due' THEN NULL \
             ELSE claim END WHERE id = ?1 AND claim = ?2 AND status = 'running'",
        )
        .bind(id)
        .bind(&claim.as_bytes()[..])
        .bind(status.as_str())
        .bind(ts(end.at))
        .bind(end.error)
        .bind(end.error_kind.map(|k| k.as_str()))
        .bind(end.retry_at.map(ts))
        .bind(attempt_step)
        .execute(&self.writer)
        .await
        .map_err(db("finish a job run"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn job_runs(&self, job: Option<&str>, limit: u32) -> StoreResult<Vec<JobRun>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM job_runs WHERE (?1 IS NULL OR job = ?1) \
             ORDER BY scheduled_at DESC, id DESC LIMIT ?2"
        )))
        .bind(job)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(db("list job runs"))?;
        rows.iter().map(job_run).collect()
    }

    async fn last_job_runs(&self) -> StoreResult<Vec<JobRun>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM job_runs r WHERE r.id = (SELECT id FROM job_runs x WHERE x.job = r.job \
             ORDER BY x.scheduled_at DESC, x.id DESC LIMIT 1) ORDER BY r.job"
        )))
        .fetch_all(&self.reader)
        .await
        .map_err(db("list the last job runs"))?;
        rows.iter().map(job_run).collect()
    }

    async fn job_run_totals(&self) -> StoreResult<Vec<JobRunTotals>> {
        let rows = sqlx::query(
            "SELECT job, status, count(*), coalesce(sum(attempt - 1), 0), coalesce(sum(resumed), 0), \
             max(finished_at) FROM job_runs GROUP BY job, status ORDER BY job, status",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(db("add up job runs"))?;
        rows.iter()
            .map(|row| {
                let get = db("add up job runs");
                let n = |i: usize| -> StoreResult<u64> { Ok(row.try_get::<i64, _>(i).map_err(get)?.max(0) as u64) };
                let last: Option<&str> = row.try_get(5).map_err(get)?;
                Ok(JobRunTotals {
                    job: row.try_get(0).map_err(get)?,
                    status: parse_status(row.try_get(1).map_err(get)?)?,
                    runs: n(2)?,
                    retries: n(3)?,
                    resumed: n(4)?,
                    last_finished_at: last.map(parse_ts).transpose()?,
                })
            })
            .collect()
    }
}
