//! The JSON shapes of conversations, messages and run events (defined in `hearth-api`).

pub use hearth_api::chat::*;
