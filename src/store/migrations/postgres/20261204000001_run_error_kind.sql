-- The kind of the error that ended a run (RunErrorKind: unauthorized, rate_limited, server,
-- client, malformed, transport, timeout, config, store, internal), so that a person and the
-- daemon know what to do without reading the text. NULL for runs without an error and for
-- failed runs recorded before kinds were kept.
ALTER TABLE sync_runs ADD COLUMN error_kind TEXT;
