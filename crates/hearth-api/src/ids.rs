//! Newtype ids. Every id is a UUIDv7 (time-ordered), sent as a string and stored as text in both
//! backends (the `sqlx` feature, which only the store enables, makes them columns).

use std::fmt;
use std::str::FromStr;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            String: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<'q, DB>>::encode(self.0.to_string(), buf)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            String: sqlx::Decode<'r, DB>,
        {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <String as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(Self(uuid::Uuid::parse_str(&text)?))
            }
        }
    )+};
}

id_type!(
    /// A user account.
    UserId,
    /// A sign-in session: one family of rotating refresh tokens.
    SessionId,
    /// One refresh token of a session.
    RefreshTokenId,
    /// An API key.
    ApiKeyId,
    /// An invitation to register.
    InviteId,
    /// A model provider (an upstream API, or the built-in models).
    ProviderId,
    /// A model offered by a provider.
    ModelId,
    /// A conversation.
    ConversationId,
    /// A message of a conversation.
    MessageId,
    /// One streamed answer: a server-side run whose events can be resumed.
    RunId,
    /// One call to a model, kept for usage and traces.
    LlmCallId,
    /// A knowledge base: a user's collection of documents to search.
    KnowledgeBaseId,
    /// A document of a knowledge base.
    DocumentId,
    /// One indexed passage of a document.
    ChunkId,
    /// A fact the assistant remembers about a user.
    MemoryId,
    /// A job of the durable queue.
    JobId,
    /// One claim of a job by a worker: a worker's renewals and its result count only while its
    /// claim is the job's current one.
    ClaimId,
);
