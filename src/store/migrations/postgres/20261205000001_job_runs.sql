-- Job runs of the daemon (`ejgate serve`, `ejgate jobs run`): one row per slot of a job,
-- keyed by (job, scheduled_at) so that a slot is recorded, and run, once whatever the
-- number of workers and restarts. A worker runs a row while it holds the job's lease
-- (`job:<name>` in `leases`); `claim` is that lease's token, so a worker whose lease was
-- taken over cannot close the row the new holder runs. Retries run in the same row
-- (`attempt`); `resumed` counts the times the row was taken up again after its worker
-- died or stopped. Times are the daemon's clock (see `daemon::Clock`).
CREATE TABLE job_runs (
    id           BIGSERIAL PRIMARY KEY,
    job          TEXT NOT NULL,
    -- The slot (UTC); for a run asked for by `ejgate jobs run`, the time it was asked.
    scheduled_at TIMESTAMPTZ NOT NULL,
    -- schedule, catch_up, manual
    trigger      TEXT NOT NULL,
    status       TEXT NOT NULL
                 CHECK (status IN ('due', 'running', 'succeeded', 'failed', 'timed_out', 'interrupted', 'skipped')),
    -- When the row may start (a retry's due time is after its delay).
    due_at       TIMESTAMPTZ NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 1,
    resumed      INTEGER NOT NULL DEFAULT 0,
    claim        UUID,
    host         TEXT,
    pid          BIGINT,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    error        TEXT,
    error_kind   TEXT,
    -- The sync runs (sync_runs.id) the job run made, in order, over all its attempts.
    sync_runs    JSONB NOT NULL DEFAULT '[]',
    -- What the scheduler decided about missed slots, in words.
    note         TEXT,
    UNIQUE (job, scheduled_at)
);

-- The rows a worker may take up.
CREATE INDEX job_runs_open ON job_runs (due_at) WHERE status IN ('due', 'running', 'interrupted');

-- When the daemon first saw each job: slots before it were never owed (a new job does not
-- catch up the years before it was written).
CREATE TABLE job_schedules (
    job   TEXT PRIMARY KEY,
    since TIMESTAMPTZ NOT NULL
);
