-- Findings of the journal monitoring (нарушения): one row per school and finding key, kept
-- until fixed. `last_detected` is the last run that wrote the row (it first saw it, saw it
-- changed or saw it again after a fix): a run that sees the same finding writes nothing.
CREATE TABLE findings (
    school         TEXT NOT NULL,
    key            TEXT NOT NULL,
    rule           TEXT NOT NULL,
    clause         TEXT NOT NULL,
    severity       TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    teacher        TEXT,
    class          TEXT,
    subject        TEXT,
    date           DATE,
    lesson         UUID,
    mark           UUID,
    what           TEXT NOT NULL,
    evidence       TEXT NOT NULL,
    first_detected TIMESTAMPTZ NOT NULL,
    last_detected  TIMESTAMPTZ NOT NULL,
    fixed_at       TIMESTAMPTZ,
    PRIMARY KEY (school, key)
);
