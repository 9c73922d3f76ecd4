-- Monitoring reads a source's corrected and deleted records of one kind (M7 corrections,
-- M8 deleted unsatisfactory marks, M9 edits after the period marks): a partial index of the
-- change log holding only the rows that are not inserts, so the read does not scan the
-- inserts that make up most of the log.
CREATE INDEX changes_edits ON changes (source, kind, seq) WHERE op <> 'insert';
