//! API tests: the real application on port 0 with its own temp data dir, driven by `hearth-client`.

mod access;
mod admin;
mod api_keys;
mod auth;
mod chat;
mod errors;
mod helpers;
mod knowledge;
mod local;
mod memory;
mod openai;
mod rotation;
mod system;
mod ws;
