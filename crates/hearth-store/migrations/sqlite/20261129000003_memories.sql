-- What the assistant remembers about a user. Text and embedding are ciphertext (per-user keys,
-- like messages), so relevance is computed in memory over one user's memories.
CREATE TABLE memories (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    text_enc TEXT NOT NULL,
    embedding_enc TEXT,
    source TEXT NOT NULL CHECK (source IN ('saved', 'extracted', 'user')),
    conversation_id TEXT REFERENCES conversations(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX memories_user ON memories(user_id, created_at);
