//! The sentence embedder: a BERT-family model (a sentence-transformers export: `config.json`,
//! `tokenizer.json`, `model.safetensors`) run with candle on the CPU, mean-pooled (or CLS, as
//! its `1_Pooling/config.json` says) and L2-normalized, as sentence-transformers does.

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use futures_util::future::BoxFuture;
use hearth_llm::{Embedder, Embeddings, LlmError};
use tokenizers::{Tokenizer, TruncationParams};

use crate::LocalError;

/// Used when the folder does not say (sentence-transformers' default for MiniLM).
const DEFAULT_MAX_TOKENS: usize = 256;
/// Most texts one call may embed.
pub const MAX_INPUTS: usize = 2048;
/// Most padded tokens in one forward pass.
const PASS_TOKENS: usize = 8192;

/// A loaded embedding model.
pub struct BertEmbedder {
    name: String,
    inner: Arc<Inner>,
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    dimensions: usize,
    max_tokens: usize,
    cls_pooling: bool,
    batch: usize,
    pad_id: u32,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("name", &self.name)
            .field("dimensions", &self.inner.dimensions)
            .finish()
    }
}

impl BertEmbedder {
    /// Loads the model in folder `dir`, called `name`; `batch` texts go through each forward pass.
    pub fn load(name: &str, dir: &Path, batch: usize) -> Result<Self, LocalError> {
        let fail = |file: &str, reason: String| LocalError::Load {
            path: dir.join(file).display().to_string(),
            reason,
        };
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .map_err(|e| fail(file, format!("cannot read: {e}")))
        };
        let config: Config = serde_json::from_str(&read("config.json")?)
            .map_err(|e| fail("config.json", format!("is not a BERT config: {e}")))?;
        let max_tokens = std::fs::read_to_string(dir.join("sentence_bert_config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("max_seq_length")?.as_u64())
            .map_or(DEFAULT_MAX_TOKENS, |n| n as usize)
            .min(config.max_position_embeddings);
        let cls_pooling = std::fs::read_to_string(dir.join("1_Pooling/config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("pooling_mode_cls_token")?.as_bool())
            .unwrap_or(false);
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| fail("tokenizer.json", format!("is not a tokenizer: {e}")))?;
        // The file's own padding and truncation (fixed 128) would change the vectors: padding is
        // done per pass (to its longest text), truncation where sentence-transformers does.
        let pad_id = tokenizer.get_padding().map_or(0, |p| p.pad_id);
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..TruncationParams::default()
            }))
            .map_err(|e| fail("tokenizer.json", e.to_string()))?;
        let device = Device::Cpu;
        let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &device)
            .map_err(|e| fail("model.safetensors", format!("cannot load the weights: {e}")))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(vb, &config).map_err(|e| {
            fail(
                "model.safetensors",
                format!("does not match config.json: {e}"),
            )
        })?;
        Ok(Self {
            name: name.to_owned(),
            inner: Arc::new(Inner {
                model,
                tokenizer,
                dimensions: config.hidden_size,
                max_tokens,
                cls_pooling,
                batch: batch.max(1),
                pad_id,
            }),
        })
    }

    /// Embeds on the calling thread.
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Embeddings, LlmError> {
        self.inner.embed(texts)
    }
}

impl Inner {
    fn embed(&self, texts: &[String]) -> Result<Embeddings, LlmError> {
        let fail = |e: String| LlmError::Upstream(format!("embedding failed: {e}"));
        // Tokenized once, unpadded; then texts of similar length share a pass, and a pass holds
        // at most `batch` texts and PASS_TOKENS padded tokens (attention grows with the square
        // of the length, so long texts go fewer at a time).
        let encodings = self
            .tokenizer
            .encode_batch(texts.iter().map(String::as_str).collect::<Vec<_>>(), true)
            .map_err(|e| fail(e.to_string()))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut vectors = vec![Vec::new(); texts.len()];
        let input_tokens = ids.iter().map(|i| i.len() as u64).sum();
        let mut start = 0;
        while start < order.len() {
            let mut end = start + 1;
            while end < order.len()
                && end - start < self.batch
                && (end - start + 1) * ids[order[end]].len() <= PASS_TOKENS
            {
                end += 1;
            }
            let chunk = &order[start..end];
            let pooled = self
                .forward(chunk.iter().map(|&i| ids[i]).collect())
                .map_err(|e| fail(e.to_string()))?;
            for (row, &i) in pooled.into_iter().zip(chunk) {
                vectors[i] = row;
            }
            start = end;
        }
        Ok(Embeddings {
            vectors,
            input_tokens,
        })
    }

    /// Pooled, normalized vectors of `rows` (token ids), padded here to the longest.
    fn forward(&self, rows: Vec<&[u32]>) -> candle_core::Result<Vec<Vec<f32>>> {
        let device = &self.model.device;
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * width);
        let mut mask = Vec::with_capacity(rows.len() * width);
        for row in &rows {
            ids.extend_from_slice(row);
            ids.resize(ids.len() + width - row.len(), self.pad_id);
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            mask.extend(std::iter::repeat_n(0u32, width - row.len()));
        }
        let shape = (rows.len(), width);
        let ids = Tensor::from_vec(ids, shape, device)?;
        let mask = Tensor::from_vec(mask, shape, device)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        let pooled = if self.cls_pooling {
            hidden.narrow(1, 0, 1)?.squeeze(1)?
        } else {
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
            summed.broadcast_div(&counts)?
        };
        let norms = pooled
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        pooled.broadcast_div(&norms)?.to_vec2::<f32>()
    }
}

impl Embedder for BertEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions
    }

    fn max_tokens(&self) -> usize {
        self.inner.max_tokens
    }

    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Embeddings, LlmError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            if texts.len() > MAX_INPUTS {
                return Err(LlmError::Invalid {
                    field: "input".into(),
                    message: format!("has {} texts; at most {MAX_INPUTS} per call", texts.len()),
                });
            }
            tokio::task::spawn_blocking(move || inner.embed(&texts))
                .await
                .map_err(|e| LlmError::Upstream(format!("the embedding task failed: {e}")))?
        })
    }
}
