//! The `[local]` settings: where models live and how the built-in engines run.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Settings of the built-in models.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalConfig {
    /// Load the models found in the models folder at start.
    pub enabled: bool,
    /// The models folder; empty means `<data_dir>/models`.
    pub models_dir: Option<PathBuf>,
    /// CPU threads per chat model; 0 picks every core (what measures fastest here: see
    /// bench/README.md).
    pub threads: usize,
    /// Answers generated at once per chat model (continuous batching).
    pub parallel: usize,
    /// Answers waiting for a free slot before new ones get 429.
    pub queue: usize,
    /// Tokens one answer can hold, prompt included (capped by what the model was trained on).
    pub context_per_sequence: u32,
    /// Most tokens read in one decode step.
    pub batch: u32,
    /// Most texts embedded per forward pass (long texts go fewer at a time).
    pub embedding_batch: usize,
    /// What Q4_1 chat models are run as: by default they are converted once to Q8_0 (kept in
    /// `cache_dir`), which llama.cpp reads prompts from ~1.7x faster on x86 (bench/README.md).
    pub requantize: Requantize,
    /// Where converted weights are kept; set by the server to `<data_dir>/cache/models`.
    /// Unset, models are loaded as they are.
    #[serde(skip)]
    pub cache_dir: Option<PathBuf>,
}

/// The `local.requantize` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Requantize {
    /// Q4_1 models run as Q8_0 (converted once, at first load).
    #[serde(rename = "q8_0")]
    Q8_0,
    /// Every model runs as its file is.
    #[serde(rename = "off")]
    Off,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            models_dir: None,
            threads: 0,
            parallel: 4,
            queue: 64,
            context_per_sequence: 4096,
            batch: 512,
            embedding_batch: 128,
            requantize: Requantize::Q8_0,
            cache_dir: None,
        }
    }
}

impl LocalConfig {
    /// Checks ranges; the error is the key (`local.…`) and what is wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let check = |key: &str, ok: bool, range: &str| {
            if ok {
                Ok(())
            } else {
                Err((format!("local.{key}"), format!("must be {range}")))
            }
        };
        check("threads", self.threads <= 256, "0 (all cores) to 256")?;
        check("parallel", (1..=64).contains(&self.parallel), "1 to 64")?;
        check("queue", self.queue <= 100_000, "0 to 100000")?;
        check(
            "context_per_sequence",
            (256..=131_072).contains(&self.context_per_sequence),
            "256 to 131072",
        )?;
        check("batch", (32..=8192).contains(&self.batch), "32 to 8192")?;
        check(
            "embedding_batch",
            (1..=1024).contains(&self.embedding_batch),
            "1 to 1024",
        )
    }

    /// Threads to run with.
    pub fn threads(&self) -> i32 {
        let n = if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.threads
        };
        n.clamp(1, 256) as i32
    }
}
