//! Any bytes as a .csv upload: parsing and chunking end in a document or a `ParseError`, within
//! the corpus budgets, never a panic, overflow or runaway allocation.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let limits = hearth_rag::corpus::limits();
    let _ = hearth_rag::extract(
        hearth_rag::Format::Csv,
        bytes,
        &limits,
        &hearth_rag::ChunkSettings::default(),
    );
});
