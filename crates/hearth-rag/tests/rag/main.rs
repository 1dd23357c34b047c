//! Integration tests for hearth-rag: every format parsed from bytes built here (no binary
//! fixtures), and chunking properties over whole documents.

mod chunking;
mod docx;
mod pdf;
mod text_formats;
