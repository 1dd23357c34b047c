//! Hearth's wire types: every JSON shape the HTTP API reads or writes, and the ids in them.
//!
//! The server derives its OpenAPI document from these types and `hearth-client` speaks them, so
//! a client needs this crate and nothing of the server: no store, no index, no parsers. Types
//! here hold data and the rules that belong to the shape itself (serde forms, schema
//! constraints, stored spellings of enums); what a value means to the service lives in
//! `hearth-core`.

pub mod auth;
pub mod chat;
pub mod ids;
pub mod knowledge;
pub mod memory;
pub mod providers;
pub mod usage;

/// A single line with something in it: what trimmed names and titles must match.
pub const LINE_PATTERN: &str = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$";
