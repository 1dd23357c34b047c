//! Any text frame a WebSocket client sends: read as a valid frame or refused, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = hearth_server::ws::check_frame(text);
    }
});
