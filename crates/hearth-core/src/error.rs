use hearth_store::StoreError;
use thiserror::Error;

/// Errors of the domain. Messages are safe to show to the client; causes stay in [`CoreError::Other`].
#[derive(Debug, Error)]
pub enum CoreError {
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// Missing, or not visible to the caller (the two are indistinguishable on purpose).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No enabled model has this name or alias.
    #[error("model `{0}` does not exist or is not enabled")]
    ModelNotFound(String),
    /// A field failed to parse or validate.
    #[error("{field}: {reason}")]
    InvalidInput { field: String, reason: String },
    /// The request conflicts with what is stored (duplicate email, last admin…).
    #[error("{message}")]
    Conflict {
        field: Option<String>,
        message: String,
    },
    /// Too many attempts; try again after this many seconds.
    #[error("too many attempts, try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A usage quota is used up; it renews after this many seconds.
    #[error("{message}")]
    QuotaExceeded {
        message: String,
        retry_after_secs: u64,
    },
    /// A model's engine has no room now (its queue is full); try again after this many seconds.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after_secs: u64,
    },
    /// The input is larger than allowed.
    #[error("{field} {message}")]
    TooLarge { field: String, message: String },
    /// A service Hearth depends on failed. The message is shown: build it only from text that
    /// is safe for the caller (provider errors never carry keys).
    #[error("{0}")]
    Upstream(String),
    /// Anything else: a bug or an infrastructure failure. Logged in full, never shown.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// Result of a domain operation.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

impl CoreError {
    /// A field-level validation failure.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An internal failure with a message for the log.
    pub fn other(message: impl Into<String>) -> Self {
        Self::Other(message.into().into())
    }
}

impl From<hearth_llm::LlmError> for CoreError {
    /// A model's refusal: the caller's fault (400), no room (429), or the upstream's (502).
    fn from(err: hearth_llm::LlmError) -> Self {
        match err {
            hearth_llm::LlmError::Invalid { field, message } => CoreError::InvalidInput {
                field,
                reason: message,
            },
            hearth_llm::LlmError::Busy {
                message,
                retry_after,
            } => CoreError::Busy {
                message,
                retry_after_secs: retry_after.as_secs().max(1),
            },
            other => CoreError::Upstream(other.to_string()),
        }
    }
}

impl From<StoreError> for CoreError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => CoreError::NotFound("resource"),
            // The constraint name is for the log, not the client.
            StoreError::Conflict(_) => CoreError::Conflict {
                field: None,
                message: "this conflicts with something that already exists".into(),
            },
            other @ (StoreError::Open(_) | StoreError::Other(_)) => {
                CoreError::Other(Box::new(other))
            }
        }
    }
}
