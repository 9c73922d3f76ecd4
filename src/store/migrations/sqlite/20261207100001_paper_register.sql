-- The register of paper copies (реестр бумажных копий, REGULATIONS A4, R4): each printed
-- copy of a class journal, year-end book or сводная ведомость, numbered per school, with
-- its sheets, who signed it, where it is kept and when it was handed to the secretary.
CREATE TABLE paper_register (
    school       TEXT NOT NULL,
    number       INTEGER NOT NULL CHECK (number > 0),
    class        TEXT NOT NULL,
    school_year  TEXT NOT NULL,
    -- what the copy is: «копия журнала, 1 четверть», «книга за год», «сводная ведомость»
    title        TEXT NOT NULL,
    sheets       INTEGER NOT NULL CHECK (sheets > 0),
    signed_by    TEXT,
    kept_at      TEXT,
    -- the day it was handed to the secretary (R4), and to whom
    handed_on    TEXT,
    handed_to    TEXT,
    recorded_at  TEXT NOT NULL,
    recorded_by  TEXT NOT NULL,
    PRIMARY KEY (school, number)
) STRICT;
