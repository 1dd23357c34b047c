-- Full-text search of chunks moves to the embedded tantivy index (hearth-rag text.rs), which
-- ranks top-k by BM25 with block-max WAND instead of scoring every match as FTS5 does.
DROP TRIGGER kb_chunks_fts_insert;
DROP TRIGGER kb_chunks_fts_delete;
DROP TABLE kb_chunks_fts;
