-- The backup-usage log (журнал использования резервных копий, REGULATIONS A9): every
-- backup, verification, pull, restore and retention deletion, with who did it, when and why.
-- Append-only.
CREATE TABLE backup_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    action    TEXT NOT NULL CHECK (action IN ('backup', 'verify', 'pull', 'restore', 'prune')),
    backup_id TEXT,
    who       TEXT NOT NULL,
    why       TEXT,
    outcome   TEXT NOT NULL CHECK (outcome IN ('ok', 'degraded', 'failed')),
    detail    TEXT NOT NULL DEFAULT ''
);
