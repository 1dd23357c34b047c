//! Memory: short facts the assistant keeps about a user across conversations. They are saved
//! by the user, by the model's `memory_save` tool, or (when enabled) extracted by the model
//! after an answer; the ones relevant to a new message are added to its system prompt. Text
//! and embedding are encrypted with the user's key, so relevance is computed here, over one
//! user's memories at a time.

use std::sync::Arc;

use base64::Engine as _;
use hearth_store::ids::{ConversationId, MemoryId, UserId};
use hearth_store::{NewMemory, Sealed, Store};
use serde::{Deserialize, Serialize};

use crate::access::{self, Owned, Principal};
use crate::crypto::{Binding, Crypto};
use crate::embeddings::{Embeddings, Purpose};
use crate::error::{CoreError, Result};

pub use hearth_api::memory::{MemorySource, MemoryText, MemoryView};

/// Memory settings (`[memory]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemorySettings {
    /// Add relevant memories to answers and offer the `memory_save` tool.
    pub enabled: bool,
    /// After each answer, ask the model for facts about the user worth remembering.
    pub extract: bool,
    /// Most memories added to one answer's prompt.
    pub top_k: usize,
    /// Least cosine similarity between a message and a memory for it to be added.
    pub min_similarity: f32,
    /// Most memories one user keeps.
    pub max_per_user: usize,
}

impl Default for MemorySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            extract: false,
            top_k: 5,
            min_similarity: 0.3,
            max_per_user: 1000,
        }
    }
}

impl MemorySettings {
    /// Checks values; the error names the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(1..=50).contains(&self.top_k) {
            return Err("memory.top_k must be between 1 and 50".into());
        }
        if !(-1.0..=1.0).contains(&self.min_similarity) {
            return Err("memory.min_similarity must be between -1 and 1".into());
        }
        if self.max_per_user == 0 {
            return Err("memory.max_per_user must be greater than 0".into());
        }
        Ok(())
    }
}

/// Longest memory, in characters.
pub const MAX_TEXT: usize = 2000;

/// A memory saved or changed, published for watching clients.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryEvent {
    /// Whose memory it is (routes the event; not sent).
    #[serde(skip)]
    pub user_id: UserId,
    pub memory: MemoryView,
}

impl Owned for hearth_store::Memory {
    fn owner(&self) -> UserId {
        self.user_id
    }
    const KIND: &'static str = "memory";
}

/// The memory service. Cheap to clone.
#[derive(Clone)]
pub struct Memories(Arc<Inner>);

struct Inner {
    store: Store,
    crypto: Crypto,
    embeddings: Embeddings,
    settings: MemorySettings,
    /// The embedder memories are compared with (the knowledge default).
    embedder: Option<String>,
    events: tokio::sync::broadcast::Sender<MemoryEvent>,
}

impl std::fmt::Debug for Memories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memories").finish_non_exhaustive()
    }
}

/// A decrypted memory with its vector, for relevance.
struct Opened {
    text: String,
    vector: Option<Vec<f32>>,
}

impl Memories {
    /// The service; `embedder` names the model relevance uses (none: most recent first).
    pub fn new(
        store: Store,
        crypto: Crypto,
        embeddings: Embeddings,
        settings: MemorySettings,
        embedder: Option<String>,
    ) -> Self {
        let (events, _) = tokio::sync::broadcast::channel(256);
        Self(Arc::new(Inner {
            store,
            crypto,
            embeddings,
            settings,
            embedder,
            events,
        }))
    }

    /// Memories saved or changed, of every user; subscribers filter by `user_id`.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<MemoryEvent> {
        self.0.events.subscribe()
    }

    fn publish(&self, user_id: UserId, memory: &MemoryView) {
        // No subscriber is fine: the memory is stored.
        let _ = self.0.events.send(MemoryEvent {
            user_id,
            memory: memory.clone(),
        });
    }

    /// The settings in force.
    pub fn settings(&self) -> &MemorySettings {
        &self.0.settings
    }

    fn view(&self, m: hearth_store::Memory) -> Result<MemoryView> {
        let text = self.0.crypto.decrypt(
            &Binding::user(Sealed::MemoryText, m.id, m.user_id),
            &m.text_enc,
        )?;
        Ok(MemoryView {
            id: m.id,
            text,
            source: MemorySource::from_stored(&m.source),
            conversation_id: m.conversation_id,
            created_at: m.created_at.to_datetime(),
            updated_at: m.updated_at.to_datetime(),
        })
    }

    async fn embed(&self, user: UserId, purpose: Purpose, text: &str) -> Option<Vec<f32>> {
        let model = self.0.embedder.as_deref()?;
        match self
            .0
            .embeddings
            .embed_for(user, purpose, model, vec![text.to_owned()])
            .await
        {
            Ok(mut out) => out.vectors.pop(),
            Err(e) => {
                tracing::warn!(error = %e, "could not embed a memory");
                None
            }
        }
    }

    fn seal_vector(&self, user: UserId, id: MemoryId, vector: &[f32]) -> Result<String> {
        let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.0
            .crypto
            .encrypt(&Binding::user(Sealed::MemoryEmbedding, id, user), &text)
    }

    fn open_vector(&self, user: UserId, id: MemoryId, sealed: &str) -> Option<Vec<f32>> {
        let text = self
            .0
            .crypto
            .decrypt(&Binding::user(Sealed::MemoryEmbedding, id, user), sealed)
            .ok()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        Some(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    }

    fn clean(raw: &str) -> Result<String> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(CoreError::invalid("text", "must not be empty"));
        }
        if raw.chars().count() > MAX_TEXT {
            return Err(CoreError::invalid(
                "text",
                format!("must be at most {MAX_TEXT} characters"),
            ));
        }
        Ok(text.to_owned())
    }

    /// The caller's memories, newest first.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<MemoryView>> {
        let limit = i64::try_from(self.0.settings.max_per_user).unwrap_or(i64::MAX);
        self.0
            .store
            .list_memories(access::list_scope(principal), limit)
            .await?
            .into_iter()
            .map(|m| self.view(m))
            .collect()
    }

    /// Saves a memory for the caller.
    pub async fn create(
        &self,
        principal: &Principal,
        text: &str,
        source: MemorySource,
        conversation: Option<ConversationId>,
    ) -> Result<MemoryView> {
        let text = Self::clean(text)?;
        let user = access::list_scope(principal);
        let count = self.0.store.count_memories(user).await?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= self.0.settings.max_per_user {
            return Err(CoreError::Conflict {
                field: Some("text".into()),
                message: format!(
                    "you have {count} memories, the most kept (memory.max_per_user); delete some first"
                ),
            });
        }
        let id = MemoryId::new();
        let embedding_enc = match self.embed(user, Purpose::Memory, &text).await {
            Some(v) => Some(self.seal_vector(user, id, &v)?),
            None => None,
        };
        let stored = self
            .0
            .store
            .create_memory(NewMemory {
                id,
                user_id: user,
                text_enc: self
                    .0
                    .crypto
                    .encrypt(&Binding::user(Sealed::MemoryText, id, user), &text)?,
                embedding_enc,
                source: source.as_str().into(),
                conversation_id: conversation,
            })
            .await?;
        let view = self.view(stored)?;
        self.publish(user, &view);
        Ok(view)
    }

    /// Changes a memory's text.
    pub async fn update(
        &self,
        principal: &Principal,
        id: MemoryId,
        text: &str,
    ) -> Result<MemoryView> {
        let m = access::owned(principal, self.0.store.find_memory(id).await?)?;
        let text = Self::clean(text)?;
        let embedding_enc = match self.embed(m.user_id, Purpose::Memory, &text).await {
            Some(v) => Some(self.seal_vector(m.user_id, id, &v)?),
            None => None,
        };
        let sealed = self
            .0
            .crypto
            .encrypt(&Binding::user(Sealed::MemoryText, id, m.user_id), &text)?;
        let updated = self
            .0
            .store
            .update_memory(id, &sealed, embedding_enc.as_deref())
            .await?
            .ok_or(CoreError::NotFound("memory"))?;
        let view = self.view(updated)?;
        self.publish(m.user_id, &view);
        Ok(view)
    }

    /// Deletes a memory.
    pub async fn delete(&self, principal: &Principal, id: MemoryId) -> Result<()> {
        access::owned(principal, self.0.store.find_memory(id).await?)?;
        self.0.store.delete_memory(id).await?;
        Ok(())
    }

    async fn opened(&self, user: UserId) -> Result<Vec<Opened>> {
        let limit = i64::try_from(self.0.settings.max_per_user).unwrap_or(i64::MAX);
        let rows = self.0.store.list_memories(user, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for m in rows {
            let Ok(text) = self
                .0
                .crypto
                .decrypt(&Binding::user(Sealed::MemoryText, m.id, user), &m.text_enc)
            else {
                tracing::warn!(memory = %m.id, "skipping a memory that cannot be decrypted");
                continue;
            };
            let vector = m
                .embedding_enc
                .as_deref()
                .and_then(|e| self.open_vector(user, m.id, e));
            out.push(Opened { text, vector });
        }
        Ok(out)
    }

    /// The memories most relevant to `message`, best first: by cosine similarity when an
    /// embedder is loaded, else the most recent.
    pub async fn relevant(&self, user: UserId, message: &str) -> Result<Vec<String>> {
        let all = self.opened(user).await?;
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let k = self.0.settings.top_k;
        let Some(query) = self.embed(user, Purpose::Query, message).await else {
            return Ok(all.into_iter().take(k).map(|m| m.text).collect());
        };
        let mut scored: Vec<(f32, String)> = all
            .into_iter()
            .filter_map(|m| {
                let v = m.vector?;
                (v.len() == query.len()).then(|| (dot(&v, &query), m.text))
            })
            .filter(|(s, _)| *s >= self.0.settings.min_similarity)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(scored.into_iter().take(k).map(|(_, t)| t).collect())
    }

    /// Saves `facts` for `user` unless an equal or near-equal one is kept already; returns
    /// how many were saved.
    pub async fn save_new(
        &self,
        principal: &Principal,
        facts: &[String],
        source: MemorySource,
        conversation: Option<ConversationId>,
    ) -> Result<usize> {
        let existing = self.opened(principal.user_id()).await?;
        let mut saved = 0;
        for fact in facts {
            let Ok(fact) = Self::clean(fact) else {
                continue;
            };
            let same_text = existing.iter().any(|m| m.text.eq_ignore_ascii_case(&fact));
            let near = match self
                .embed(principal.user_id(), Purpose::Memory, &fact)
                .await
            {
                Some(v) => existing
                    .iter()
                    .filter_map(|m| m.vector.as_deref())
                    .any(|e| e.len() == v.len() && dot(e, &v) > 0.92),
                None => false,
            };
            if same_text || near {
                continue;
            }
            self.create(principal, &fact, source, conversation).await?;
            saved += 1;
        }
        Ok(saved)
    }
}

/// Dot product: the cosine similarity of two L2-normalized vectors.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// How the model is told to read memories: the instruction only; the memories themselves go
/// into the user's turn as quoted data.
pub const MEMORIES_INSTRUCTION: &str = "What you remember about the user from earlier \
    conversations may come with the user's message, inside <memories>: use it when relevant.";

/// The memories as one quoted list.
pub fn render(memories: &[String]) -> String {
    let mut out = String::new();
    for m in memories {
        out.push_str("- ");
        out.push_str(m);
        out.push('\n');
    }
    out
}

/// The instruction that asks a model for facts worth remembering after an exchange.
pub const EXTRACT_PROMPT: &str = "From the exchange below, list durable facts about the user \
    (preferences, background, goals, circumstances) worth remembering in future conversations. \
    Reply with a JSON array of short sentences in the third person, such as \
    [\"The user lives in Lyon.\"], or [] when there is none. Never include secrets such as \
    passwords or keys.";

/// Reads the facts a model extracted: a JSON array of strings (possibly inside a code fence
/// or surrounded by text); anything else is no facts.
pub fn parse_extracted(reply: &str) -> Vec<String> {
    let (Some(start), Some(end)) = (reply.find('['), reply.rfind(']')) else {
        return Vec::new();
    };
    if end <= start {
        return Vec::new();
    }
    serde_json::from_str::<Vec<serde_json::Value>>(&reply[start..=end])
        .map(|items| {
            items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::trim).map(str::to_owned))
                .filter(|s| !s.is_empty() && s.chars().count() <= MAX_TEXT)
                .take(10)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracted_facts_are_read_leniently() {
        assert_eq!(
            parse_extracted("```json\n[\"The user lives in Lyon.\", \"\", 3]\n```"),
            vec!["The user lives in Lyon."]
        );
        assert!(parse_extracted("[]").is_empty());
        assert!(parse_extracted("nothing to remember").is_empty());
        assert!(parse_extracted("] broken [").is_empty());
    }

    #[test]
    fn settings_are_checked() {
        assert!(MemorySettings::default().validate().is_ok());
        let bad = MemorySettings {
            top_k: 0,
            ..MemorySettings::default()
        };
        assert!(bad
            .validate()
            .expect_err("refused")
            .contains("memory.top_k"));
    }
}
