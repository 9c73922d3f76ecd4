-- Leases: one holder at a time for a named piece of work (`source:<name>`: the syncs and
-- imports of a source; the daemon's jobs use the same table). The holder renews its lease
-- while it works (a heartbeat); a process that died stops renewing, and once `expires_at`
-- has passed the next one takes the lease over. A released lease's row is deleted.
-- Timestamps as everywhere in this flavour: fixed-width UTC text, so text order is time
-- order and `expires_at <= ?now` compares times.
CREATE TABLE leases (
    name        TEXT NOT NULL PRIMARY KEY,
    -- Proves the holding: renewing and releasing name it.
    token       BLOB NOT NULL CHECK (length(token) = 16),
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    acquired_at TEXT NOT NULL,
    renewed_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT, WITHOUT ROWID;
