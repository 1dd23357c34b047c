//! Sentence embeddings for callers (`POST /v1/embeddings`) and for Hearth's own features: the
//! embedders this process loaded, found by name.

use std::sync::Arc;

use hearth_llm::Embedder;

use crate::access::Principal;
use crate::error::{CoreError, Result};

/// Most texts in one request.
pub const MAX_INPUTS: usize = 2048;
/// Largest text, in bytes (inputs are truncated to the model's token limit anyway).
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// The embedders service.
#[derive(Clone, Debug, Default)]
pub struct Embeddings {
    embedders: Arc<Vec<Arc<dyn Embedder>>>,
}

/// What one call produced.
#[derive(Clone, Debug)]
pub struct Embedded {
    /// The model's name.
    pub model: String,
    pub vectors: Vec<Vec<f32>>,
    pub input_tokens: u64,
}

impl Embeddings {
    /// The service over `embedders`.
    pub fn new(embedders: Vec<Arc<dyn Embedder>>) -> Self {
        Self {
            embedders: Arc::new(embedders),
        }
    }

    /// Names and dimensions of the embedders.
    pub fn list(&self) -> Vec<(String, usize)> {
        self.embedders
            .iter()
            .map(|e| (e.name().to_owned(), e.dimensions()))
            .collect()
    }

    /// The embedder called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Embedder>> {
        self.embedders.iter().find(|e| e.name() == name).cloned()
    }

    /// Embeds `inputs` with model `model`, after checking them.
    pub async fn embed(
        &self,
        _principal: &Principal,
        model: &str,
        inputs: Vec<String>,
    ) -> Result<Embedded> {
        let embedder = self
            .get(model)
            .ok_or_else(|| CoreError::ModelNotFound(model.to_owned()))?;
        if inputs.is_empty() {
            return Err(CoreError::invalid("input", "must hold at least one text"));
        }
        if inputs.len() > MAX_INPUTS {
            return Err(CoreError::TooLarge {
                field: "input".into(),
                message: format!("has {} texts; at most {MAX_INPUTS}", inputs.len()),
            });
        }
        if let Some(i) = inputs.iter().position(|t| t.len() > MAX_INPUT_BYTES) {
            return Err(CoreError::TooLarge {
                field: format!("input[{i}]"),
                message: format!("is longer than {MAX_INPUT_BYTES} bytes"),
            });
        }
        let out = embedder.embed(inputs).await?;
        Ok(Embedded {
            model: embedder.name().to_owned(),
            vectors: out.vectors,
            input_tokens: out.input_tokens,
        })
    }
}
