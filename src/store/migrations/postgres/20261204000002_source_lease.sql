-- Leases: one holder at a time for a named piece of work (`source:<name>`: the syncs and
-- imports of a source; the daemon's jobs use the same table). The holder renews its lease
-- while it works (a heartbeat); a process that died stops renewing, and once `expires_at`
-- has passed the next one takes the lease over. A released lease's row is deleted.
-- Times are the database server's clock (`now()`), so workers on several hosts agree.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    -- Proves the holding: renewing and releasing name it.
    token       UUID NOT NULL,
    host        TEXT NOT NULL,
    pid         BIGINT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    renewed_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
