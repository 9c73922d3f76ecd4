-- The year-end bag reads a source's live records of one kind in source-id order
-- (`each_raw_record`, issue #19). Without this index SQLite found them through
-- records_coverage and sorted the whole rows, content included, in a temporary B-tree:
-- for the large school's 277,000 marks that sort was two thirds of the read. Walking this
-- index gives them in order. Partial: tombstones are never exported.
CREATE INDEX records_export ON records (kind, source, source_id) WHERE deleted_at IS NULL;
