use thiserror::Error;

/// Errors of the store, converted from the driver's errors.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A unique constraint was violated; carries the constraint or column when known.
    #[error("conflict on {0}")]
    Conflict(String),
    /// The database could not be opened or migrated; the message is meant for an operator.
    #[error("{0}")]
    Open(String),
    /// Anything else the driver reported.
    #[error(transparent)]
    Other(sqlx::Error),
}

/// Result of a store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                let what = db
                    .constraint()
                    .map(str::to_owned)
                    .unwrap_or_else(|| unique_column(db.message()));
                StoreError::Conflict(what)
            }
            other => StoreError::Other(other),
        }
    }
}

/// SQLite reports "UNIQUE constraint failed: users.email" without a constraint name.
fn unique_column(message: &str) -> String {
    message
        .rsplit(": ")
        .next()
        .map(str::to_owned)
        .unwrap_or_else(|| "unique".to_owned())
}
