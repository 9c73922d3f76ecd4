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
    date           TEXT,
    lesson         BLOB CHECK (lesson IS NULL OR length(lesson) = 16),
    mark           BLOB CHECK (mark IS NULL OR length(mark) = 16),
    what           TEXT NOT NULL,
    evidence       TEXT NOT NULL,
    first_detected TEXT NOT NULL,
    last_detected  TEXT NOT NULL,
    fixed_at       TEXT,
    PRIMARY KEY (school, key)
) STRICT, WITHOUT ROWID;
