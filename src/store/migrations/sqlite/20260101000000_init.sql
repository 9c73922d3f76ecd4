-- ejgate canonical store, SQLite flavour (the embedded default).
--
-- Conventions: ids are UUIDs as 16-byte BLOBs; timestamps are UTC TEXT in RFC 3339 with
-- microseconds and a `Z` (`2026-09-01T08:30:00.000000Z`, fixed width, so text order is time
-- order); dates are TEXT `YYYY-MM-DD`; JSON is TEXT. Tables are STRICT so that a value of the
-- wrong type is an error rather than a silent conversion.

-- One row per sync run. `status` is one of RunStatus; `stats` is RunStats as JSON.
CREATE TABLE sync_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL,
    mode        TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL
                CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    error       TEXT,
    stats       TEXT NOT NULL DEFAULT '{}'
) STRICT;

-- begin_run closes the source's runs still `running`.
CREATE INDEX sync_runs_running ON sync_runs (source) WHERE status = 'running';

-- The current state of every canonical record, tombstones included (`deleted_at` set).
-- A rowid table with the UUID as a separate unique index: ids are random (UUIDv5), and
-- keeping the wide rows in insertion order makes bulk inserts cheaper than a clustered
-- WITHOUT ROWID table would.
CREATE TABLE records (
    id                BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    kind              TEXT NOT NULL,
    source            TEXT NOT NULL,
    source_id         TEXT NOT NULL,
    scope             TEXT NOT NULL,
    -- Entity::natural_key() of the content: the engine tells a key change from an update.
    natural_key       TEXT NOT NULL,
    date              TEXT,
    content           TEXT NOT NULL CHECK (json_valid(content)),
    content_hash      BLOB NOT NULL CHECK (length(content_hash) = 32),
    source_updated_at TEXT,
    first_seen        TEXT NOT NULL,
    last_seen         TEXT NOT NULL,
    deleted_at        TEXT
) STRICT;

-- Coverage lookups of `existing` (source, kind, scope, date range); also serves
-- `counts` and `records` by source.
CREATE INDEX records_coverage ON records (source, kind, scope, date);

-- The append-only change log. `seq` never goes back and is never reused (AUTOINCREMENT).
-- No foreign key to `records`: a change row is written before the record it describes.
CREATE TABLE changes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id    INTEGER NOT NULL REFERENCES sync_runs (id),
    at        TEXT NOT NULL,
    kind      TEXT NOT NULL,
    id        BLOB NOT NULL,
    source    TEXT NOT NULL,
    source_id TEXT NOT NULL,
    op        TEXT NOT NULL CHECK (op IN ('insert', 'update', 'key_change', 'delete')),
    before    TEXT,
    after     TEXT
) STRICT;

-- changes_of_run. Run ids grow, so this index is appended at its right edge.
CREATE INDEX changes_run ON changes (run_id, seq);

-- Committed cursors: the position each (source, stream, scope) has safely reached.
CREATE TABLE cursors (
    source     TEXT NOT NULL,
    stream     TEXT NOT NULL,
    scope      TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (source, stream, scope)
) STRICT, WITHOUT ROWID;
