-- On SQLite this step drops FTS5 for the embedded tantivy index; PostgreSQL keeps its
-- tsvector column and GIN index. Kept so both engines have the same migration history.
SELECT 1;
