//! The JSON shapes of accounts and errors (defined in `hearth-api`).

pub use hearth_api::auth::*;
pub use hearth_api::LINE_PATTERN;
