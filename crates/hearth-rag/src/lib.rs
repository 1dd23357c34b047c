//! Knowledge-base document processing: parse files into structured blocks and split them into
//! token-bounded chunks. Knows nothing of storage, HTTP or models (a token counter is passed in).
//!
//! [`parse()`] turns a file's bytes into a [`ParsedDocument`] of [`Block`]s; [`chunk()`] packs those
//! blocks into [`Chunk`]s that respect the document's headings, tables and code. [`vectors`] is the
//! embedded HNSW index of chunk embeddings and [`fusion`] merges rankings for hybrid search.

pub mod chunk;
pub mod corpus;
pub mod eval;
pub mod fusion;
pub mod isolate;
mod open;
pub mod parse;
pub mod text;
pub mod vectors;

/// Indexes of each kind kept open at once unless configured otherwise.
pub const DEFAULT_MAX_OPEN: usize = 64;

pub use chunk::{approx_tokens, chunk, Chunk, ChunkSettings};
pub use isolate::{extract, Extracted};
pub use parse::{parse, Block, BlockKind, Format, ParseError, ParseLimits, ParsedDocument};
