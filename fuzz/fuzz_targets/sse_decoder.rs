//! An upstream's SSE stream cut into arbitrary pieces: the decoder gives the same events however
//! the bytes are split, and refuses events over its bound instead of buffering them.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Some((&cut, stream)) = bytes.split_first() else {
        return;
    };
    let whole = hearth_llm::sse::SseDecoder::new(4096).push(stream);
    let mut pieces = hearth_llm::sse::SseDecoder::new(4096);
    let mut events = Vec::new();
    let step = usize::from(cut).max(1);
    for piece in stream.chunks(step) {
        match pieces.push(piece) {
            Ok(more) => events.extend(more),
            Err(_) => return,
        }
    }
    if let Ok(whole) = whole {
        assert_eq!(whole, events);
    }
});
