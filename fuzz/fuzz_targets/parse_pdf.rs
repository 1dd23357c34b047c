//! Any bytes as a .pdf upload: parsing and chunking end in a document or a `ParseError`, within
//! the corpus budgets, never a panic, overflow or runaway allocation.
//!
//! `pdf-extract` panics on some damaged pages, and the parser catches that (`catch_unwind`, the
//! page counts as unreadable). libFuzzer's panic hook would abort on those caught panics too, so
//! this target hushes the hook: a panic that escapes the parser still aborts the run, because
//! libfuzzer-sys treats any panic out of the target as a crash.
#![no_main]

static QUIET_PANICS: std::sync::Once = std::sync::Once::new();

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let limits = hearth_rag::corpus::limits();
    let _ = hearth_rag::extract(
        hearth_rag::Format::Pdf,
        bytes,
        &limits,
        &hearth_rag::ChunkSettings::default(),
    );
});
