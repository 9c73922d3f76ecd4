-- What the newest backup run did on each backup target (место хранения копий): when it was
-- last tried, when it was last written and read back, and why the last try failed. One
-- row per target, replaced by every run; `/metrics` and the alerts read it, so that a
-- target down is seen until a run writes it again (and fills its gap).
CREATE TABLE backup_targets (
    target          TEXT PRIMARY KEY,
    last_attempt_at TIMESTAMPTZ NOT NULL,
    last_success_at TIMESTAMPTZ,
    -- NULL: the last try wrote it.
    last_error      TEXT,
    last_backup_id  TEXT NOT NULL
);
