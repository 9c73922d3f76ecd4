-- The year-end bag reads a source's live records of one kind in source-id order
-- (`each_raw_record`, issue #19), byte order as everywhere (COLLATE "C"): walking this index
-- gives them in order instead of sorting the whole rows, content included. Partial:
-- tombstones are never exported.
CREATE INDEX records_export ON records (kind, source, source_id COLLATE "C") WHERE deleted_at IS NULL;
