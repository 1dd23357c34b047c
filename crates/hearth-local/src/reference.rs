//! The two reference models `scripts/fetch-models.sh` installs, for tests and benchmarks.

use std::path::PathBuf;

/// The reference chat model's name (its file is `NAME.gguf`).
pub const CHAT_MODEL: &str = "SmolLM2-135M-Instruct.Q4_1";
/// The reference embedding model's name (a folder).
pub const EMBEDDING_MODEL: &str = "all-MiniLM-L6-v2";

/// The folder holding both: `HEARTH_TEST_MODELS_DIR`, else the fetch script's cache
/// (`~/.cache/hearth/models`). Panics, saying how to fetch them, when they are not there.
pub fn dir() -> PathBuf {
    let dir = std::env::var_os("HEARTH_TEST_MODELS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hearth/models")))
        .unwrap_or_else(|| PathBuf::from("hearth-data/models"));
    assert!(
        dir.join(format!("{CHAT_MODEL}.gguf")).is_file() && dir.join(EMBEDDING_MODEL).is_dir(),
        "the reference models are not in {}: run scripts/fetch-models.sh {0} (make test does)",
        dir.display()
    );
    dir
}
