-- Knowledge bases, their documents and chunks. The documents table is also the ingest queue:
-- a worker claims a `queued` row (FOR UPDATE SKIP LOCKED) and leases it; chunks and the
-- `indexed` status are written in one transaction, so a document is never half-indexed. Chunk
-- text is indexed by PostgreSQL full-text search (a generated tsvector with a GIN index);
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
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kb_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    document_id TEXT NOT NULL REFERENCES kb_documents(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    headings TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL,
    page BIGINT,
    tokens BIGINT NOT NULL,
    embedding BYTEA NOT NULL,
    tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', headings || ' ' || text)) STORED
);
CREATE INDEX kb_chunks_document ON kb_chunks(document_id, position);
CREATE INDEX kb_chunks_kb ON kb_chunks(kb_id, seq);
CREATE INDEX kb_chunks_tsv ON kb_chunks USING GIN (tsv);
