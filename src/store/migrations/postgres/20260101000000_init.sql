-- ejgate canonical store, PostgreSQL flavour (municipality and region scale).
-- Same tables and meaning as the SQLite flavour; native types here.

CREATE TABLE sync_runs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      TEXT NOT NULL,
    mode        TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status      TEXT NOT NULL
                CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    error       TEXT,
    stats       JSONB NOT NULL DEFAULT '{}'
);

CREATE INDEX sync_runs_running ON sync_runs (source) WHERE status = 'running';

CREATE TABLE records (
    id                UUID PRIMARY KEY,
    kind              TEXT NOT NULL,
    source            TEXT NOT NULL,
    source_id         TEXT NOT NULL,
    scope             TEXT NOT NULL,
    -- Entity::natural_key() of the content: the engine tells a key change from an update.
    natural_key       TEXT NOT NULL,
    date              DATE,
    content           JSONB NOT NULL,
    content_hash      BYTEA NOT NULL CHECK (octet_length(content_hash) = 32),
    -- The source's own clock (school local time, as the source writes it).
    source_updated_at TIMESTAMP,
    first_seen        TIMESTAMPTZ NOT NULL,
    last_seen         TIMESTAMPTZ NOT NULL,
    deleted_at        TIMESTAMPTZ
);

CREATE INDEX records_coverage ON records (source, kind, scope, date);

-- The append-only change log. `apply` takes a transaction-level advisory lock before it
-- writes here, so seq order is commit order: a reader following `seq > n` never misses
-- a row committed late with a smaller seq.
CREATE TABLE changes (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id    BIGINT NOT NULL REFERENCES sync_runs (id),
    at        TIMESTAMPTZ NOT NULL,
    kind      TEXT NOT NULL,
    id        UUID NOT NULL,
    source    TEXT NOT NULL,
    source_id TEXT NOT NULL,
    op        TEXT NOT NULL CHECK (op IN ('insert', 'update', 'key_change', 'delete')),
    before    JSONB,
    after     JSONB
);

CREATE INDEX changes_run ON changes (run_id, seq);

CREATE TABLE cursors (
    source     TEXT NOT NULL,
    stream     TEXT NOT NULL,
    scope      TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, stream, scope)
);
