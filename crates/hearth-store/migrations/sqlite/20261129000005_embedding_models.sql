-- Provider models that make embeddings (OpenAI-compatible `/embeddings`): knowledge bases and
-- memories can use them instead of a built-in embedder. Their vector length is learnt on first
-- use and kept.
ALTER TABLE models ADD COLUMN supports_embeddings BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE models ADD COLUMN embedding_dimensions BIGINT;
-- Models synced before this knew no better: mark them as a sync now would.
UPDATE models SET supports_embeddings = TRUE, supports_streaming = FALSE, supports_tools = FALSE
WHERE lower(upstream_id) LIKE '%embed%' OR lower(upstream_id) LIKE '%bge-%'
   OR lower(upstream_id) LIKE 'e5-%' OR lower(upstream_id) LIKE '%/e5-%';
