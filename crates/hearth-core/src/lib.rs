//! Hearth's domain: parsed inputs, the accounts and sessions service, the one access policy,
//! password hashing and token crypto, sign-in throttling, and the JSON shapes of the API.
//!
//! It knows business rules and nothing of HTTP; it talks to storage only through `hearth-store`.

pub mod access;
pub mod accounts;
pub mod api;
pub mod chat;
pub mod crypto;
pub mod embeddings;
mod error;
pub mod input;
pub mod knowledge;
pub mod limits;
pub mod memory;
pub mod passwords;
pub mod providers;
mod secret;
pub mod tokens;
pub mod usage;

pub use error::{CoreError, Result};
pub use hearth_store::ids;
pub use secret::Secret;
