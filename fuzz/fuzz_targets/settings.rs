//! Settings loading from any `HEARTH_*` variables (one `KEY=VALUE` per line): loaded and
//! validated, or refused with a message naming a key, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let env: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (format!("HEARTH_{k}"), v.to_owned()))
        // No config or secret files: the target reads no path the input names.
        .filter(|(k, _)| k != "HEARTH_CONFIG" && !k.ends_with("_FILE"))
        .collect();
    let _ = hearth_server::settings::Settings::load(env, &Default::default());
});
