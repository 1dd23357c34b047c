//! HTTP handlers, one module per resource. Each parses, calls a service, maps the result.

pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod conversations;
pub mod knowledge;
pub mod me;
pub mod memories;
pub mod openai;
pub mod providers;
pub mod system;

use std::str::FromStr;

use hearth_core::CoreError;

use crate::error::ApiError;

/// Parses a path id; a malformed id is as absent as an unknown one.
pub(crate) fn path_id<T: FromStr>(raw: &str, what: &'static str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::Core(CoreError::NotFound(what)))
}
