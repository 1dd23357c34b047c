//! The chunker on any text read as Markdown, at small and odd chunk sizes: chunks stay within
//! their token limit (but for single words longer than it) and never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Some((&size, text)) = bytes.split_first() else {
        return;
    };
    let Ok(document) = hearth_rag::parse(
        hearth_rag::Format::Markdown,
        text,
        &hearth_rag::corpus::limits(),
    ) else {
        return;
    };
    let settings = hearth_rag::ChunkSettings {
        max_tokens: 16 + usize::from(size),
        overlap_tokens: usize::from(size) / 4,
    };
    for chunk in hearth_rag::chunk(&document, &settings, &hearth_rag::approx_tokens) {
        let words_fit = chunk.text.split_whitespace().count() <= 1;
        assert!(chunk.tokens <= settings.max_tokens || words_fit);
    }
});
