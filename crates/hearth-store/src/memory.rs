//! Memories: facts the assistant keeps about a user, stored as ciphertext the core makes.

use crate::ids::{ConversationId, MemoryId, UserId};
use crate::{on_pool, on_writer, Result, Store, Timestamp};

/// A memory as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Memory {
    pub id: MemoryId,
    pub user_id: UserId,
    pub text_enc: String,
    /// The embedding (little-endian f32, base64) as ciphertext; absent when no embedder ran.
    pub embedding_enc: Option<String>,
    /// `saved` (the model's memory tool), `extracted` (after a conversation) or `user`.
    pub source: String,
    pub conversation_id: Option<ConversationId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A memory to insert.
#[derive(Clone, Debug)]
pub struct NewMemory {
    /// Chosen by the caller, so the text can be sealed for this row before it is written.
    pub id: MemoryId,
    pub user_id: UserId,
    pub text_enc: String,
    pub embedding_enc: Option<String>,
    pub source: String,
    pub conversation_id: Option<ConversationId>,
}

impl Store {
    /// Inserts a memory.
    pub async fn create_memory(&self, new: NewMemory) -> Result<Memory> {
        let now = Timestamp::now();
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Memory>(
                "INSERT INTO memories (id, user_id, text_enc, embedding_enc, source, conversation_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING *",
            )
            .bind(new.id)
            .bind(new.user_id)
            .bind(&new.text_enc)
            .bind(&new.embedding_enc)
            .bind(&new.source)
            .bind(new.conversation_id)
            .bind(now)
            .fetch_one(pool)
            .await
        })?)
    }

    /// A user's memories, newest first.
    pub async fn list_memories(&self, user: UserId, limit: i64) -> Result<Vec<Memory>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Memory>(
                "SELECT * FROM memories WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
            )
            .bind(user)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?)
    }

    /// How many memories a user has.
    pub async fn count_memories(&self, user: UserId) -> Result<i64> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM memories WHERE user_id = $1")
                .bind(user)
                .fetch_one(pool)
                .await
        })?)
    }

    /// One memory.
    pub async fn find_memory(&self, id: MemoryId) -> Result<Option<Memory>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Memory>("SELECT * FROM memories WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Replaces a memory's text and embedding.
    pub async fn update_memory(
        &self,
        id: MemoryId,
        text_enc: &str,
        embedding_enc: Option<&str>,
    ) -> Result<Option<Memory>> {
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Memory>(
                "UPDATE memories SET text_enc = $2, embedding_enc = $3, updated_at = $4 WHERE id = $1 RETURNING *",
            )
            .bind(id)
            .bind(text_enc)
            .bind(embedding_enc)
            .bind(Timestamp::now())
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Deletes a memory.
    pub async fn delete_memory(&self, id: MemoryId) -> Result<bool> {
        let done = on_writer!(self, |pool| {
            sqlx::query("DELETE FROM memories WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done > 0)
    }
}
