-- Providers and their models, conversations with branching messages, runs, and LLM call traces.
-- Provider API keys, conversation titles and message contents are ciphertext (see hearth-core crypto).
CREATE TABLE providers (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('openai', 'anthropic', 'local')),
    name TEXT NOT NULL UNIQUE,
    base_url TEXT,
    api_key_enc TEXT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE models (
    id TEXT PRIMARY KEY NOT NULL,
    provider_id TEXT NOT NULL REFERENCES providers(id) ON DELETE CASCADE,
    upstream_id TEXT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    aliases TEXT NOT NULL DEFAULT '[]',
    supports_streaming BOOLEAN NOT NULL DEFAULT TRUE,
    supports_tools BOOLEAN NOT NULL DEFAULT TRUE,
    supports_vision BOOLEAN NOT NULL DEFAULT FALSE,
    context_length BIGINT,
    input_price_per_mtok DOUBLE PRECISION,
    output_price_per_mtok DOUBLE PRECISION,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (provider_id, upstream_id)
);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title_enc TEXT NOT NULL,
    model TEXT,
    active_leaf_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX conversations_user_updated ON conversations(user_id, updated_at);

CREATE TABLE messages (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    parent_id TEXT REFERENCES messages(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content_enc TEXT NOT NULL,
    model TEXT,
    status TEXT NOT NULL CHECK (status IN ('complete', 'streaming', 'error', 'stopped')),
    error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX messages_conversation ON messages(conversation_id, created_at);

CREATE TABLE runs (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'error', 'stopped')),
    events_enc TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX runs_conversation ON runs(conversation_id);

CREATE TABLE llm_calls (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT REFERENCES users(id) ON DELETE SET NULL,
    run_id TEXT,
    source TEXT NOT NULL,
    model TEXT NOT NULL,
    provider_id TEXT,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL,
    ttft_ms BIGINT,
    cost_usd DOUBLE PRECISION,
    tool_calls BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX llm_calls_user_created ON llm_calls(user_id, created_at);
CREATE INDEX llm_calls_created ON llm_calls(created_at);
