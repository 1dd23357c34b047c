//! Hearth's built-in models, so a fresh server answers with nothing else installed.
//!
//! - [`catalog`]: the models folder (`<data_dir>/models`): `NAME.gguf` chat models and
//!   sentence-transformers folders, checked before loading ([`gguf`] reads GGUF headers).
//! - `llama` (feature `llama`): the chat engine, llama.cpp through `llama-cpp-2`, with the
//!   model's own chat template ([`template`], minijinja), sampling, grammar-constrained tool
//!   calls and JSON, and a scheduler that batches concurrent answers; `requantize` runs Q4_1
//!   models as Q8_0, whose prompts llama.cpp reads faster on x86.
//! - `embed` (feature `embed`): BERT-family sentence embeddings with candle.
//!
//! [`LocalModels::load`] loads everything the folder holds; [`LocalProvider`] serves the chat
//! models behind `hearth_llm::Provider` (provider kind `local`), and the embedders implement
//! `hearth_llm::Embedder`. Both features are on by default; building without them gives a server
//! whose `local` provider is empty, which compiles much faster during development.

pub mod catalog;
pub mod config;
#[cfg(feature = "embed")]
pub mod embed;
pub mod gguf;
#[cfg(feature = "llama")]
pub mod llama;
pub mod reference;
#[cfg(feature = "llama")]
pub mod requantize;
#[cfg(feature = "llama")]
pub mod template;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use hearth_llm::{ChatRequest, Embedder, EventStream, LlmError, ModelInfo, Provider};

pub use catalog::{ModelFile, ModelKind, Problem, Scan};
pub use config::LocalConfig;

/// Why a model could not be loaded. The path names the file at fault.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LocalError {
    #[error("{path}: {reason}")]
    Load { path: String, reason: String },
}

/// The models loaded from the folder, and the entries that could not be.
#[derive(Clone, Debug, Default)]
pub struct LocalModels {
    pub provider: LocalProvider,
    pub embedders: Vec<Arc<dyn Embedder>>,
    /// Entries skipped, with the reason (a broken file never stops the server).
    pub problems: Vec<Problem>,
}

impl LocalModels {
    /// Scans `dir` and loads every model in it. Blocking (loading reads the weights).
    pub fn load(dir: &Path, config: &LocalConfig) -> Self {
        let scan = catalog::scan(dir);
        let mut out = LocalModels {
            problems: scan.problems,
            ..LocalModels::default()
        };
        let mut chat = BTreeMap::new();
        for file in scan.models {
            let loaded = match file.kind {
                ModelKind::Chat => load_chat(&file, config).map(|engine| {
                    chat.insert(file.name.clone(), engine);
                }),
                ModelKind::Embedding => load_embedder(&file, config).map(|e| out.embedders.push(e)),
            };
            if let Err(e) = loaded {
                out.problems.push(Problem {
                    path: file.path.clone(),
                    reason: match e {
                        LocalError::Load { reason, .. } => reason,
                    },
                });
            }
        }
        out.provider = LocalProvider {
            engines: Arc::new(chat),
        };
        out
    }
}

/// Loads `file` once and drops it: whether the engines can run it.
pub fn verify(file: &ModelFile, config: &LocalConfig) -> Result<(), LocalError> {
    let small = LocalConfig {
        parallel: 1,
        context_per_sequence: 256,
        ..config.clone()
    };
    match file.kind {
        ModelKind::Chat => load_chat(file, &small).map(drop),
        ModelKind::Embedding => load_embedder(file, &small).map(drop),
    }
}

#[cfg(feature = "llama")]
type Engine = llama::ChatEngine;
#[cfg(not(feature = "llama"))]
type Engine = std::convert::Infallible;

#[cfg(feature = "llama")]
fn load_chat(file: &ModelFile, config: &LocalConfig) -> Result<Arc<Engine>, LocalError> {
    llama::ChatEngine::load(file, config).map(Arc::new)
}

#[cfg(not(feature = "llama"))]
fn load_chat(file: &ModelFile, _config: &LocalConfig) -> Result<Arc<Engine>, LocalError> {
    Err(LocalError::Load {
        path: file.path.display().to_string(),
        reason: "this build has no chat engine (built without the `llama` feature)".into(),
    })
}

#[cfg(feature = "embed")]
fn load_embedder(file: &ModelFile, config: &LocalConfig) -> Result<Arc<dyn Embedder>, LocalError> {
    Ok(Arc::new(embed::BertEmbedder::load(
        &file.name,
        &file.path,
        config.embedding_batch,
    )?))
}

#[cfg(not(feature = "embed"))]
fn load_embedder(file: &ModelFile, _config: &LocalConfig) -> Result<Arc<dyn Embedder>, LocalError> {
    Err(LocalError::Load {
        path: file.path.display().to_string(),
        reason: "this build has no embedding engine (built without the `embed` feature)".into(),
    })
}

/// The chat models of the folder as one provider; the model id is the model's name.
#[derive(Clone, Debug, Default)]
pub struct LocalProvider {
    engines: Arc<BTreeMap<String, Arc<Engine>>>,
}

impl LocalProvider {
    /// Names of the loaded chat models.
    pub fn model_names(&self) -> Vec<String> {
        self.engines.keys().cloned().collect()
    }

    /// The engine of model `name`.
    #[cfg(feature = "llama")]
    pub fn engine(&self, name: &str) -> Option<&Arc<Engine>> {
        self.engines.get(name)
    }

    fn lookup(&self, name: &str) -> Result<&Arc<Engine>, LlmError> {
        self.engines.get(name).ok_or_else(|| LlmError::Status {
            status: 404,
            message: format!("no built-in model called `{name}` is loaded"),
        })
    }
}

impl Provider for LocalProvider {
    fn stream(&self, request: ChatRequest) -> EventStream {
        match self.start(request) {
            Ok(stream) => stream,
            Err(e) => Box::pin(futures_util::stream::once(async move { Err(e) })),
        }
    }

    fn start(&self, request: ChatRequest) -> Result<EventStream, LlmError> {
        #[cfg(feature = "llama")]
        {
            self.lookup(&request.model)?.start(request)
        }
        #[cfg(not(feature = "llama"))]
        {
            match *self.lookup(&request.model)?.as_ref() {}
        }
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, LlmError>> {
        #[cfg(feature = "llama")]
        let models = self
            .engines
            .values()
            .map(|e| ModelInfo {
                id: e.name().to_owned(),
                display_name: None,
                context_length: Some(u64::from(e.context_length())),
            })
            .collect();
        #[cfg(not(feature = "llama"))]
        let models = Vec::new();
        Box::pin(async move { Ok(models) })
    }
}
