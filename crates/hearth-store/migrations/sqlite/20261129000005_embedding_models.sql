-- Provider models that make embeddings (OpenAI-compatible `/embeddings`): knowledge bases and
-- memories can use them instead of a built-in embedder. Their vector length is learnt on first
-- use and kept.
ALTER TABLE models ADD COLUMN supports_embeddings BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE models ADD COLUMN embedding_dimensions BIGINT;
