-- Job runs of the daemon (`ejgate serve`, `ejgate jobs run`): one row per slot of a job,
-- keyed by (job, scheduled_at) so that a slot is recorded, and run, once whatever the
-- number of restarts. A worker runs a row while it holds the job's lease (`job:<name>` in
-- `leases`); `claim` is that lease's token, so a worker whose lease was taken over cannot
-- close the row the new holder runs. Retries run in the same row (`attempt`); `resumed`
-- counts the times the row was taken up again after its worker died or stopped. Times are
-- the daemon's clock (see `daemon::Clock`), fixed-width UTC text as everywhere here.
CREATE TABLE job_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    job          TEXT NOT NULL,
    -- The slot (UTC); for a run asked for by `ejgate jobs run`, the time it was asked.
    scheduled_at TEXT NOT NULL,
    -- schedule, catch_up, manual
    trigger      TEXT NOT NULL,
    status       TEXT NOT NULL
                 CHECK (status IN ('due', 'running', 'succeeded', 'failed', 'timed_out', 'interrupted', 'skipped')),
    -- When the row may start (a retry's due time is after its delay).
    due_at       TEXT NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 1,
    resumed      INTEGER NOT NULL DEFAULT 0,
    claim        BLOB CHECK (claim IS NULL OR length(claim) = 16),
    host         TEXT,
    pid          INTEGER,
    started_at   TEXT,
    finished_at  TEXT,
    error        TEXT,
    error_kind   TEXT,
    -- The sync runs (sync_runs.id) the job run made, in order, over all its attempts.
    sync_runs    TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(sync_runs)),
    -- What the scheduler decided about missed slots, in words.
    note         TEXT,
    UNIQUE (job, scheduled_at)
) STRICT;

-- The rows a worker may take up.
CREATE INDEX job_runs_open ON job_runs (due_at) WHERE status IN ('due', 'running', 'interrupted');

-- When the daemon first saw each job: slots before it were never owed (a new job does not
-- catch up the years before it was written).
CREATE TABLE job_schedules (
    job   TEXT NOT NULL PRIMARY KEY,
    since TEXT NOT NULL
) STRICT, WITHOUT ROWID;
