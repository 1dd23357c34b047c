-- Knowledge bases, their documents and chunks. The documents table is also the ingest queue:
-- a worker claims a `queued` row and leases it; chunks and the `indexed` status are written in
-- one transaction, so a document is never half-indexed. Chunk text is indexed by FTS5 (BM25);
-- embeddings are kept here (little-endian f32) as the source the vector index is built from.
CREATE TABLE knowledge_bases (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    embedding_model TEXT NOT NULL,
    dimensions BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE kb_documents (
    id TEXT PRIMARY KEY NOT NULL,
    kb_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    format TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL CHECK (status IN ('queued', 'parsing', 'embedding', 'indexed', 'failed')),
    error TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT,
    pages BIGINT,
    chunks BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    indexed_at BIGINT,
    UNIQUE (kb_id, content_hash)
);
CREATE INDEX kb_documents_kb ON kb_documents(kb_id, created_at);
CREATE INDEX kb_documents_queue ON kb_documents(status, created_at);

CREATE TABLE kb_chunks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kb_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    document_id TEXT NOT NULL REFERENCES kb_documents(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    headings TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    page BIGINT,
    tokens BIGINT NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX kb_chunks_document ON kb_chunks(document_id, position);
CREATE INDEX kb_chunks_kb ON kb_chunks(kb_id, seq);

CREATE VIRTUAL TABLE kb_chunks_fts USING fts5(
    headings, text,
    content = 'kb_chunks', content_rowid = 'seq',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER kb_chunks_fts_insert AFTER INSERT ON kb_chunks BEGIN
    INSERT INTO kb_chunks_fts (rowid, headings, text) VALUES (new.seq, new.headings, new.text);
END;
CREATE TRIGGER kb_chunks_fts_delete AFTER DELETE ON kb_chunks BEGIN
    INSERT INTO kb_chunks_fts (kb_chunks_fts, rowid, headings, text)
    VALUES ('delete', old.seq, old.headings, old.text);
END;
