//! Providers, models, conversations, messages, runs and LLM call traces.

use crate::ids::{ConversationId, LlmCallId, MessageId, ModelId, ProviderId, RunId, UserId};
use crate::{on_pool, on_writer, Result, Store, StoreError, Timestamp};

/// A model provider as stored. `api_key_enc` is ciphertext made by the core.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Provider {
    pub id: ProviderId,
    /// `openai`, `anthropic` or `local`.
    pub kind: String,
    pub name: String,
    pub base_url: Option<String>,
    pub api_key_enc: Option<String>,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A provider to insert.
#[derive(Clone, Debug)]
pub struct NewProvider {
    /// Chosen by the caller, so the key can be sealed for this row before it is written.
    pub id: ProviderId,
    pub kind: String,
    pub name: String,
    pub base_url: Option<String>,
    pub api_key_enc: Option<String>,
}

/// Changes to a provider; `None` leaves a field as it is (`Some(None)` clears it).
#[derive(Clone, Debug, Default)]
pub struct ProviderPatch {
    pub name: Option<String>,
    pub base_url: Option<Option<String>>,
    pub api_key_enc: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// A model as stored. `name` is what users pick; `upstream_id` what the provider calls it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Model {
    pub id: ModelId,
    pub provider_id: ProviderId,
    pub upstream_id: String,
    pub name: String,
    pub display_name: String,
    /// JSON array of other names that resolve to this model.
    pub aliases: String,
    pub supports_streaming: bool,
    pub supports_tools: bool,
    pub supports_vision: bool,
    pub context_length: Option<i64>,
    pub input_price_per_mtok: Option<f64>,
    pub output_price_per_mtok: Option<f64>,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Makes embeddings rather than chat answers.
    pub supports_embeddings: bool,
    /// Length of its vectors, once known.
    pub embedding_dimensions: Option<i64>,
}

/// A model found by a sync.
#[derive(Clone, Debug)]
pub struct SyncedModel {
    pub upstream_id: String,
    pub name: String,
    pub display_name: String,
    pub context_length: Option<i64>,
    /// An embedding model (then neither streaming nor tools), as far as the sync can tell.
    pub supports_embeddings: bool,
}

/// Changes an admin makes to a model.
#[derive(Clone, Debug, Default)]
pub struct ModelPatch {
    pub display_name: Option<String>,
    pub aliases: Option<String>,
    pub supports_streaming: Option<bool>,
    pub supports_tools: Option<bool>,
    pub supports_vision: Option<bool>,
    pub supports_embeddings: Option<bool>,
    pub context_length: Option<Option<i64>>,
    pub input_price_per_mtok: Option<Option<f64>>,
    pub output_price_per_mtok: Option<Option<f64>>,
    pub enabled: Option<bool>,
}

/// A conversation as stored; the title is ciphertext.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Conversation {
    pub id: ConversationId,
    pub user_id: UserId,
    pub title_enc: String,
    pub model: Option<String>,
    /// The last message of the branch being shown.
    pub active_leaf_id: Option<MessageId>,
    /// JSON array of the knowledge base ids answers retrieve from.
    pub knowledge_base_ids: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A message as stored; the content is ciphertext of a JSON document the core defines.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub parent_id: Option<MessageId>,
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content_enc: String,
    pub model: Option<String>,
    /// `complete`, `streaming`, `error` or `stopped`.
    pub status: String,
    pub error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A message to insert.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub parent_id: Option<MessageId>,
    pub role: String,
    pub content_enc: String,
    pub model: Option<String>,
    pub status: String,
}

/// A run as stored. `events_enc` is the whole event log, written when the run ends.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Run {
    pub id: RunId,
    pub user_id: UserId,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    /// `running`, `complete`, `error` or `stopped`.
    pub status: String,
    pub events_enc: Option<String>,
    pub created_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// One call to a model.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LlmCall {
    pub id: LlmCallId,
    pub user_id: Option<UserId>,
    pub run_id: Option<RunId>,
    /// `chat`, `openai_api`, `memory_extract`, or `embed_*` (`embed_api`, `embed_ingest`,
    /// `embed_query`, `embed_memory`: embedding calls; the built-in embedders' are not counted
    /// toward the daily quota, providers' are).
    pub source: String,
    pub model: String,
    pub provider_id: Option<ProviderId>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub cost_usd: Option<f64>,
    pub tool_calls: i64,
    pub error: Option<String>,
    pub created_at: Timestamp,
}

/// Which calls to list.
#[derive(Clone, Debug, Default)]
pub struct LlmCallFilter {
    pub user_id: Option<UserId>,
    pub model: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub errors_only: bool,
    pub limit: i64,
}

/// Usage summed per user and model.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UsageRow {
    pub user_id: Option<UserId>,
    pub model: String,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: Option<f64>,
}

impl Store {
    // ---- providers ----

    /// Inserts a provider; a duplicate name is a conflict.
    pub async fn create_provider(&self, new: NewProvider) -> Result<Provider> {
        let now = Timestamp::now();
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Provider>(
                "INSERT INTO providers (id, kind, name, base_url, api_key_enc, enabled, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, TRUE, $6, $6) RETURNING *",
            )
            .bind(new.id)
            .bind(&new.kind)
            .bind(&new.name)
            .bind(&new.base_url)
            .bind(&new.api_key_enc)
            .bind(now)
            .fetch_one(pool)
            .await
        })?)
    }

    /// All providers, by name.
    pub async fn list_providers(&self) -> Result<Vec<Provider>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Provider>("SELECT * FROM providers ORDER BY name")
                .fetch_all(pool)
                .await
        })?)
    }

    /// One provider, or `None`.
    pub async fn find_provider(&self, id: ProviderId) -> Result<Option<Provider>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Provider>("SELECT * FROM providers WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Applies `patch`; [`StoreError::NotFound`] when the provider is gone.
    pub async fn update_provider(&self, id: ProviderId, patch: ProviderPatch) -> Result<Provider> {
        let now = Timestamp::now();
        let row = on_writer!(self, |pool| {
            sqlx::query_as::<_, Provider>(
                "UPDATE providers SET \
                   name = COALESCE($2, name), \
                   base_url = CASE WHEN $3 THEN $4 ELSE base_url END, \
                   api_key_enc = CASE WHEN $5 THEN $6 ELSE api_key_enc END, \
                   enabled = COALESCE($7, enabled), \
                   updated_at = $8 \
                 WHERE id = $1 RETURNING *",
            )
            .bind(id)
            .bind(&patch.name)
            .bind(patch.base_url.is_some())
            .bind(patch.base_url.clone().flatten())
            .bind(patch.api_key_enc.is_some())
            .bind(patch.api_key_enc.clone().flatten())
            .bind(patch.enabled)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        row.ok_or(StoreError::NotFound)
    }

    /// Deletes a provider and its models; `false` when it did not exist.
    pub async fn delete_provider(&self, id: ProviderId) -> Result<bool> {
        let done = on_writer!(self, |pool| {
            sqlx::query("DELETE FROM providers WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }

    // ---- models ----

    /// Adds models a sync found and refreshes the context length of known ones; admin choices
    /// (names, aliases, prices, enabled) are kept. Returns the provider's models afterwards.
    pub async fn sync_models(
        &self,
        provider: ProviderId,
        found: &[SyncedModel],
    ) -> Result<Vec<Model>> {
        let now = Timestamp::now();
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            for m in found {
                sqlx::query(
                    "INSERT INTO models (id, provider_id, upstream_id, name, display_name, context_length, \
                       created_at, updated_at, supports_streaming, supports_tools, supports_embeddings) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $8, $9) \
                     ON CONFLICT (provider_id, upstream_id) DO UPDATE SET \
                       context_length = COALESCE(excluded.context_length, models.context_length), updated_at = $7",
                )
                .bind(ModelId::new())
                .bind(provider)
                .bind(&m.upstream_id)
                .bind(&m.name)
                .bind(&m.display_name)
                .bind(m.context_length)
                .bind(now)
                .bind(!m.supports_embeddings)
                .bind(m.supports_embeddings)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        self.list_models(Some(provider)).await
    }

    /// Whether a model name is taken.
    pub async fn model_name_taken(&self, name: &str) -> Result<bool> {
        let n: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT count(*) FROM models WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await
        })?;
        Ok(n > 0)
    }

    /// Models, of one provider or all, by name.
    pub async fn list_models(&self, provider: Option<ProviderId>) -> Result<Vec<Model>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Model>(
                "SELECT * FROM models WHERE ($1 IS NULL OR provider_id = $1) ORDER BY name",
            )
            .bind(provider)
            .fetch_all(pool)
            .await
        })?)
    }

    /// One model, or `None`.
    pub async fn find_model(&self, id: ModelId) -> Result<Option<Model>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Model>("SELECT * FROM models WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Applies `patch` to a model.
    pub async fn update_model(&self, id: ModelId, patch: ModelPatch) -> Result<Model> {
        let now = Timestamp::now();
        let row = on_writer!(self, |pool| {
            sqlx::query_as::<_, Model>(
                "UPDATE models SET \
                   display_name = COALESCE($2, display_name), \
                   aliases = COALESCE($3, aliases), \
                   supports_streaming = COALESCE($4, supports_streaming), \
                   supports_tools = COALESCE($5, supports_tools), \
                   supports_vision = COALESCE($6, supports_vision), \
                   context_length = CASE WHEN $7 THEN $8 ELSE context_length END, \
                   input_price_per_mtok = CASE WHEN $9 THEN $10 ELSE input_price_per_mtok END, \
                   output_price_per_mtok = CASE WHEN $11 THEN $12 ELSE output_price_per_mtok END, \
                   enabled = COALESCE($13, enabled), \
                   updated_at = $14, \
                   supports_embeddings = COALESCE($15, supports_embeddings) \
                 WHERE id = $1 RETURNING *",
            )
            .bind(id)
            .bind(&patch.display_name)
            .bind(&patch.aliases)
            .bind(patch.supports_streaming)
            .bind(patch.supports_tools)
            .bind(patch.supports_vision)
            .bind(patch.context_length.is_some())
            .bind(patch.context_length.flatten())
            .bind(patch.input_price_per_mtok.is_some())
            .bind(patch.input_price_per_mtok.flatten())
            .bind(patch.output_price_per_mtok.is_some())
            .bind(patch.output_price_per_mtok.flatten())
            .bind(patch.enabled)
            .bind(now)
            .bind(patch.supports_embeddings)
            .fetch_optional(pool)
            .await
        })?;
        row.ok_or(StoreError::NotFound)
    }

    /// Records the vector length of an embedding model, learnt from its first answer.
    pub async fn set_embedding_dimensions(&self, id: ModelId, dimensions: i64) -> Result<()> {
        on_writer!(self, |pool| {
            sqlx::query("UPDATE models SET embedding_dimensions = $2 WHERE id = $1")
                .bind(id)
                .bind(dimensions)
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    // ---- conversations and messages ----

    /// Inserts a conversation (the caller chooses the id, so the title can be sealed for it).
    pub async fn create_conversation(
        &self,
        id: ConversationId,
        user: UserId,
        title_enc: &str,
        model: Option<&str>,
    ) -> Result<Conversation> {
        let now = Timestamp::now();
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Conversation>(
                "INSERT INTO conversations (id, user_id, title_enc, model, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) RETURNING *",
            )
            .bind(id)
            .bind(user)
            .bind(title_enc)
            .bind(model)
            .bind(now)
            .fetch_one(pool)
            .await
        })?)
    }

    /// A user's conversations, most recently active first.
    pub async fn list_conversations(&self, user: UserId, limit: i64) -> Result<Vec<Conversation>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Conversation>(
                "SELECT * FROM conversations WHERE user_id = $1 ORDER BY updated_at DESC, id DESC LIMIT $2",
            )
            .bind(user)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?)
    }

    /// One conversation, or `None`.
    pub async fn find_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Conversation>("SELECT * FROM conversations WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Sets the title, model or shown branch; bumps `updated_at`.
    pub async fn update_conversation(
        &self,
        id: ConversationId,
        title_enc: Option<&str>,
        model: Option<&str>,
        active_leaf: Option<MessageId>,
    ) -> Result<Conversation> {
        let now = Timestamp::now();
        let row = on_writer!(self, |pool| {
            sqlx::query_as::<_, Conversation>(
                "UPDATE conversations SET title_enc = COALESCE($2, title_enc), model = COALESCE($3, model), \
                 active_leaf_id = COALESCE($4, active_leaf_id), updated_at = $5 WHERE id = $1 RETURNING *",
            )
            .bind(id)
            .bind(title_enc)
            .bind(model)
            .bind(active_leaf)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?;
        row.ok_or(StoreError::NotFound)
    }

    /// Sets the knowledge bases attached to a conversation (a JSON array of ids).
    pub async fn set_conversation_knowledge(
        &self,
        id: ConversationId,
        knowledge_base_ids: &str,
    ) -> Result<Conversation> {
        let row = on_writer!(self, |pool| {
            sqlx::query_as::<_, Conversation>(
                "UPDATE conversations SET knowledge_base_ids = $2, updated_at = $3 WHERE id = $1 RETURNING *",
            )
            .bind(id)
            .bind(knowledge_base_ids)
            .bind(Timestamp::now())
            .fetch_optional(pool)
            .await
        })?;
        row.ok_or(StoreError::NotFound)
    }

    /// Deletes a conversation with its messages and runs.
    pub async fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        let done = on_writer!(self, |pool| {
            sqlx::query("DELETE FROM conversations WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// Inserts messages in one transaction and makes the last one the conversation's shown leaf.
    pub async fn append_messages(&self, messages: &[NewMessage]) -> Result<()> {
        let Some(last) = messages.last() else {
            return Ok(());
        };
        let now = Timestamp::now();
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            for m in messages {
                sqlx::query(
                    "INSERT INTO messages (id, conversation_id, parent_id, role, content_enc, model, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                )
                .bind(m.id)
                .bind(m.conversation_id)
                .bind(m.parent_id)
                .bind(&m.role)
                .bind(&m.content_enc)
                .bind(&m.model)
                .bind(&m.status)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE conversations SET active_leaf_id = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(last.conversation_id)
            .bind(last.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// Sets a message's status and error, and its content unless `content_enc` is `None`
    /// (streaming checkpoints, the final answer, a failure).
    pub async fn update_message(
        &self,
        id: MessageId,
        content_enc: Option<&str>,
        status: &str,
        error: Option<&str>,
    ) -> Result<()> {
        let now = Timestamp::now();
        on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE messages SET content_enc = COALESCE($2, content_enc), status = $3, error = $4, \
                 updated_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(content_enc)
            .bind(status)
            .bind(error)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Every message of a conversation (all branches), oldest first.
    pub async fn list_messages(&self, conversation: ConversationId) -> Result<Vec<Message>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Message>(
                "SELECT * FROM messages WHERE conversation_id = $1 ORDER BY created_at, id",
            )
            .bind(conversation)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Up to `limit` messages of all of a user's conversations, newest first, older than
    /// `before` (a previous page's last `(created_at, id)`): search reads them page by page.
    pub async fn list_user_messages(
        &self,
        user: UserId,
        before: Option<(Timestamp, MessageId)>,
        limit: i64,
    ) -> Result<Vec<Message>> {
        // The first page starts after every real message: no NULL parameter to type.
        let (at, id) = match before {
            Some((at, id)) => (at, id.to_string()),
            None => (Timestamp::from_millis(i64::MAX), String::new()),
        };
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Message>(
                "SELECT m.* FROM messages m JOIN conversations c ON c.id = m.conversation_id \
                 WHERE c.user_id = $1 AND (m.created_at < $2 OR (m.created_at = $2 AND m.id < $3)) \
                 ORDER BY m.created_at DESC, m.id DESC LIMIT $4",
            )
            .bind(user)
            .bind(at)
            .bind(&id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Records that `instance` is alive (registering it on first call).
    pub async fn heartbeat_instance(&self, instance: &str) -> Result<()> {
        let now = Timestamp::now();
        on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO instances (id, started_at, heartbeat_at) VALUES ($1, $2, $2) \
                 ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            )
            .bind(instance)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Fails runs left by stopped processes, with their `streaming` messages: runs of instances
    /// whose last heartbeat is older than `alive_since` (or unknown). With `all_but` set, every
    /// run of another instance counts as left (one process owns the database). Removes
    /// instances that stopped beating. Returns how many messages were failed.
    pub async fn fail_orphaned_runs(
        &self,
        error: &str,
        alive_since: Timestamp,
        all_but: Option<&str>,
    ) -> Result<u64> {
        let now = Timestamp::now();
        let orphaned = "status = 'running' AND (instance_id IS NULL OR ($3 IS NOT NULL AND instance_id <> $3) \
             OR instance_id NOT IN (SELECT id FROM instances WHERE heartbeat_at >= $2))";
        let messages = format!(
            "UPDATE messages SET status = 'error', error = $1, updated_at = $4 \
             WHERE status = 'streaming' AND id IN (SELECT message_id FROM runs WHERE {orphaned})"
        );
        let runs = format!(
            "UPDATE runs SET status = 'error', finished_at = $4 WHERE $1 = $1 AND {orphaned}"
        );
        let n = on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(&messages)
                .bind(error)
                .bind(alive_since)
                .bind(all_but)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(&runs)
                .bind(error)
                .bind(alive_since)
                .bind(all_but)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
                .bind(alive_since)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(n)
    }

    // ---- runs ----

    /// Records a run that has started.
    pub async fn create_run(
        &self,
        id: RunId,
        user: UserId,
        conversation: ConversationId,
        message: MessageId,
        instance: &str,
    ) -> Result<()> {
        let now = Timestamp::now();
        on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO runs (id, user_id, conversation_id, message_id, status, created_at, instance_id) \
                 VALUES ($1, $2, $3, $4, 'running', $5, $6)",
            )
            .bind(id)
            .bind(user)
            .bind(conversation)
            .bind(message)
            .bind(now)
            .bind(instance)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Records how a run ended, with its event log.
    pub async fn finish_run(&self, id: RunId, status: &str, events_enc: &str) -> Result<()> {
        let now = Timestamp::now();
        on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE runs SET status = $2, events_enc = $3, finished_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(status)
            .bind(events_enc)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// The newest run writing `message`, if any.
    pub async fn find_run_for_message(&self, message: MessageId) -> Result<Option<RunId>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar::<_, RunId>(
                "SELECT id FROM runs WHERE message_id = $1 ORDER BY created_at DESC LIMIT 1",
            )
            .bind(message)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// One run, or `None`.
    pub async fn find_run(&self, id: RunId) -> Result<Option<Run>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Run>("SELECT * FROM runs WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    // ---- LLM calls ----

    /// Records model calls, all in one transaction.
    pub async fn record_llm_calls(&self, calls: &[LlmCall]) -> Result<()> {
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            for call in calls {
                sqlx::query(
                    "INSERT INTO llm_calls (id, user_id, run_id, source, model, provider_id, input_tokens, output_tokens, \
                     latency_ms, ttft_ms, cost_usd, tool_calls, error, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(call.id)
                .bind(call.user_id)
                .bind(call.run_id)
                .bind(&call.source)
                .bind(&call.model)
                .bind(call.provider_id)
                .bind(call.input_tokens)
                .bind(call.output_tokens)
                .bind(call.latency_ms)
                .bind(call.ttft_ms)
                .bind(call.cost_usd)
                .bind(call.tool_calls)
                .bind(&call.error)
                .bind(call.created_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// Records one model call.
    pub async fn record_llm_call(&self, call: &LlmCall) -> Result<()> {
        self.record_llm_calls(std::slice::from_ref(call)).await
    }

    /// Calls matching `filter`, newest first.
    pub async fn list_llm_calls(&self, filter: &LlmCallFilter) -> Result<Vec<LlmCall>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, LlmCall>(
                "SELECT * FROM llm_calls WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR model = $2) \
                 AND ($3 IS NULL OR created_at >= $3) AND ($4 IS NULL OR created_at < $4) \
                 AND (NOT $5 OR error IS NOT NULL) ORDER BY created_at DESC, id DESC LIMIT $6",
            )
            .bind(filter.user_id)
            .bind(&filter.model)
            .bind(filter.since)
            .bind(filter.until)
            .bind(filter.errors_only)
            .bind(filter.limit)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Tokens and cost per user and model since `since`.
    pub async fn usage_summary(
        &self,
        since: Timestamp,
        user: Option<UserId>,
    ) -> Result<Vec<UsageRow>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, UsageRow>(
                "SELECT user_id, model, count(*) AS calls, CAST(COALESCE(sum(input_tokens), 0) AS BIGINT) AS input_tokens, \
                 CAST(COALESCE(sum(output_tokens), 0) AS BIGINT) AS output_tokens, sum(cost_usd) AS cost_usd \
                 FROM llm_calls WHERE created_at >= $1 AND ($2 IS NULL OR user_id = $2) \
                 GROUP BY user_id, model ORDER BY user_id, model",
            )
            .bind(since)
            .bind(user)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Tokens (in + out) a user spent since `since`, for the daily quota.
    pub async fn tokens_used_since(&self, user: UserId, since: Timestamp) -> Result<i64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT CAST(COALESCE(sum(input_tokens + output_tokens), 0) AS BIGINT) FROM llm_calls \
                 WHERE user_id = $1 AND created_at >= $2 AND NOT (source LIKE 'embed%' AND provider_id IS NULL)",
            )
            .bind(user)
            .bind(since)
            .fetch_one(pool)
            .await
        })?)
    }
}
