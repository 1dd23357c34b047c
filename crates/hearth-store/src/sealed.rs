//! The columns that hold ciphertext, listed and rewritten page by page for key rotation.

use crate::ids::UserId;
use crate::{on_pool, on_writer, Result, Store};

/// A column of ciphertext and whose key scope it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sealed {
    /// `providers.api_key_enc` (system scope).
    ProviderKey,
    /// `conversations.title_enc` (the owner's scope).
    ConversationTitle,
    /// `messages.content_enc` (the conversation owner's scope).
    MessageContent,
    /// `runs.events_enc` (the owner's scope).
    RunEvents,
    /// `memories.text_enc` (the owner's scope).
    MemoryText,
    /// `memories.embedding_enc` (the owner's scope).
    MemoryEmbedding,
}

impl Sealed {
    /// Every sealed column.
    pub const ALL: [Sealed; 6] = [
        Sealed::ProviderKey,
        Sealed::ConversationTitle,
        Sealed::MessageContent,
        Sealed::RunEvents,
        Sealed::MemoryText,
        Sealed::MemoryEmbedding,
    ];

    /// A name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Sealed::ProviderKey => "provider keys",
            Sealed::ConversationTitle => "conversation titles",
            Sealed::MessageContent => "messages",
            Sealed::RunEvents => "run event logs",
            Sealed::MemoryText => "memories",
            Sealed::MemoryEmbedding => "memory embeddings",
        }
    }

    /// `table.column`, as the ciphertext's associated data names it.
    pub fn column(self) -> &'static str {
        match self {
            Sealed::ProviderKey => "providers.api_key_enc",
            Sealed::ConversationTitle => "conversations.title_enc",
            Sealed::MessageContent => "messages.content_enc",
            Sealed::RunEvents => "runs.events_enc",
            Sealed::MemoryText => "memories.text_enc",
            Sealed::MemoryEmbedding => "memories.embedding_enc",
        }
    }

    /// (select a page after an id, update one row).
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Sealed::ProviderKey => (
                "SELECT id, CAST(NULL AS TEXT) AS owner, api_key_enc AS value FROM providers \
                 WHERE id > $1 AND api_key_enc IS NOT NULL ORDER BY id LIMIT $2",
                "UPDATE providers SET api_key_enc = $2 WHERE id = $1 AND api_key_enc = $3",
            ),
            Sealed::ConversationTitle => (
                "SELECT id, user_id AS owner, title_enc AS value FROM conversations \
                 WHERE id > $1 ORDER BY id LIMIT $2",
                "UPDATE conversations SET title_enc = $2 WHERE id = $1 AND title_enc = $3",
            ),
            Sealed::MessageContent => (
                "SELECT m.id, c.user_id AS owner, m.content_enc AS value FROM messages m \
                 JOIN conversations c ON c.id = m.conversation_id WHERE m.id > $1 ORDER BY m.id LIMIT $2",
                "UPDATE messages SET content_enc = $2 WHERE id = $1 AND content_enc = $3",
            ),
            Sealed::RunEvents => (
                "SELECT id, user_id AS owner, events_enc AS value FROM runs \
                 WHERE id > $1 AND events_enc IS NOT NULL ORDER BY id LIMIT $2",
                "UPDATE runs SET events_enc = $2 WHERE id = $1 AND events_enc = $3",
            ),
            Sealed::MemoryText => (
                "SELECT id, user_id AS owner, text_enc AS value FROM memories \
                 WHERE id > $1 ORDER BY id LIMIT $2",
                "UPDATE memories SET text_enc = $2 WHERE id = $1 AND text_enc = $3",
            ),
            Sealed::MemoryEmbedding => (
                "SELECT id, user_id AS owner, embedding_enc AS value FROM memories \
                 WHERE id > $1 AND embedding_enc IS NOT NULL ORDER BY id LIMIT $2",
                "UPDATE memories SET embedding_enc = $2 WHERE id = $1 AND embedding_enc = $3",
            ),
        }
    }
}

/// One stored ciphertext.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SealedValue {
    pub id: String,
    pub owner: Option<UserId>,
    pub value: String,
}

impl Store {
    /// Up to `limit` ciphertexts of `column` with ids after `after`, in id order.
    pub async fn sealed_page(
        &self,
        column: Sealed,
        after: &str,
        limit: i64,
    ) -> Result<Vec<SealedValue>> {
        let (select, _) = column.sql();
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, SealedValue>(select)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?)
    }

    /// Replaces a ciphertext if it is still `old` (a concurrent write wins); whether it was replaced.
    pub async fn reseal(&self, column: Sealed, id: &str, old: &str, new: &str) -> Result<bool> {
        let (_, update) = column.sql();
        let n = on_writer!(self, |pool| {
            sqlx::query(update)
                .bind(id)
                .bind(new)
                .bind(old)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// The format every sealed value has been brought to, if a re-seal ever finished.
    pub async fn sealed_format(&self) -> Result<Option<String>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>(
                "SELECT value FROM store_meta WHERE name = 'sealed_format'",
            )
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Records that every sealed value now has `format`.
    pub async fn mark_sealed_format(&self, format: &str) -> Result<()> {
        on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO store_meta (name, value) VALUES ('sealed_format', $1) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(format)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }
}
