//! Memories: facts the assistant keeps about a user.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{ConversationId, MemoryId};

/// Where a memory came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemorySource {
    /// The model's `memory_save` tool.
    Saved,
    /// Extracted by the model after an answer.
    Extracted,
    /// Written by the user.
    User,
}

impl MemorySource {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            MemorySource::Saved => "saved",
            MemorySource::Extracted => "extracted",
            MemorySource::User => "user",
        }
    }

    /// Parses the stored form; anything unknown is `user`.
    pub fn from_stored(s: &str) -> Self {
        match s {
            "saved" => MemorySource::Saved,
            "extracted" => MemorySource::Extracted,
            _ => MemorySource::User,
        }
    }
}

/// A memory as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct MemoryView {
    #[schema(value_type = String)]
    pub id: MemoryId,
    pub text: String,
    pub source: MemorySource,
    #[schema(value_type = Option<String>)]
    pub conversation_id: Option<ConversationId>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Body of `POST /api/v1/memories` and `PATCH /api/v1/memories/{id}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryText {
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub text: String,
}
