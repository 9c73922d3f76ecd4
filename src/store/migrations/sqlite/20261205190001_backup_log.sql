-- The backup-usage log (журнал использования резервных копий, REGULATIONS A9): every
-- backup, verification, pull, restore and retention deletion, with who did it, when and why.
-- Append-only; timestamps as everywhere in this flavour (fixed-width UTC text).
CREATE TABLE backup_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    action    TEXT NOT NULL CHECK (action IN ('backup', 'verify', 'pull', 'restore', 'prune')),
    backup_id TEXT,
    who       TEXT NOT NULL,
    why       TEXT,
    -- ok, degraded (some target not written) or failed
    outcome   TEXT NOT NULL CHECK (outcome IN ('ok', 'degraded', 'failed')),
    detail    TEXT NOT NULL DEFAULT ''
) STRICT;
