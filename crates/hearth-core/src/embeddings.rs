//! Sentence embeddings for callers (`POST /v1/embeddings`) and for Hearth's own features
//! (knowledge bases, memories): the built-in embedders this process loaded, found by name, and
//! the embedding models of providers (an OpenAI-compatible upstream's `/embeddings`). Every call
//! is recorded with the model-call traces and usage, like a chat call.

use std::sync::Arc;
use std::time::Instant;

use hearth_llm::Embedder;
use hearth_store::ids::{LlmCallId, UserId};
use hearth_store::Timestamp;

use crate::access::Principal;
use crate::error::{CoreError, Result};
use crate::providers::{Capabilities, Providers, ResolvedModel, UserModel, LOCAL_PROVIDER_NAME};
use crate::usage::Recorder;

/// Most texts in one request.
pub const MAX_INPUTS: usize = 2048;
/// Largest text, in bytes (inputs are truncated to the model's token limit anyway).
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// Why texts are embedded; the `source` of the recorded call (`embed_*`: traced and summed in
/// usage; the built-in embedders' calls are not counted toward the daily token quota, so
/// ingesting a library locally does not use up a day's chat, while a provider's are).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `POST /v1/embeddings`.
    Api,
    /// A document's chunks while ingesting.
    Ingest,
    /// A search query (knowledge search, chat retrieval, memory relevance).
    Query,
    /// A memory being saved.
    Memory,
}

impl Purpose {
    fn source(self) -> &'static str {
        match self {
            Purpose::Api => "embed_api",
            Purpose::Ingest => "embed_ingest",
            Purpose::Query => "embed_query",
            Purpose::Memory => "embed_memory",
        }
    }
}

/// The embeddings service.
#[derive(Clone, Debug, Default)]
pub struct Embeddings {
    local: Arc<Vec<Arc<dyn Embedder>>>,
    remote: Option<Remote>,
}

/// Provider embedding models and where their calls are recorded.
#[derive(Clone)]
struct Remote {
    providers: Providers,
    recorder: Recorder,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Remote")
    }
}

/// What one call produced.
#[derive(Clone, Debug)]
pub struct Embedded {
    /// The model's name.
    pub model: String,
    pub vectors: Vec<Vec<f32>>,
    pub input_tokens: u64,
}

/// A model found by name: built in, or a provider's.
enum Model {
    Local(Arc<dyn Embedder>),
    Provider(Box<ResolvedModel>),
}

impl Embeddings {
    /// The service over the built-in `embedders` only.
    pub fn new(embedders: Vec<Arc<dyn Embedder>>) -> Self {
        Self {
            local: Arc::new(embedders),
            remote: None,
        }
    }

    /// Adds the providers' embedding models, and records every call with `recorder`.
    pub fn with_providers(mut self, providers: Providers, recorder: Recorder) -> Self {
        self.remote = Some(Remote {
            providers,
            recorder,
        });
        self
    }

    /// Names and dimensions of the built-in embedders (provider models are in the catalog).
    pub fn list(&self) -> Vec<(String, usize)> {
        self.local
            .iter()
            .map(|e| (e.name().to_owned(), e.dimensions()))
            .collect()
    }

    /// The built-in embedders as entries of a user's model list.
    pub fn builtin_models(&self) -> Vec<UserModel> {
        self.local
            .iter()
            .map(|e| UserModel {
                name: e.name().to_owned(),
                display_name: e.name().to_owned(),
                aliases: Vec::new(),
                capabilities: Capabilities {
                    streaming: false,
                    tools: false,
                    vision: false,
                    context_length: i64::try_from(e.max_tokens()).ok(),
                    embeddings: true,
                    embedding_dimensions: i64::try_from(e.dimensions()).ok(),
                },
                provider: LOCAL_PROVIDER_NAME.to_owned(),
            })
            .collect()
    }

    async fn find(&self, name: &str) -> Result<Model> {
        if let Some(e) = self.local.iter().find(|e| e.name() == name) {
            return Ok(Model::Local(e.clone()));
        }
        match &self.remote {
            Some(remote) => Ok(Model::Provider(Box::new(
                remote.providers.resolve_embedder(name).await?,
            ))),
            None => Err(CoreError::ModelNotFound(name.to_owned())),
        }
    }

    /// The model's own name (not an alias) and the length of its vectors. A provider model not
    /// used before is asked once (one short text, recorded for `user`) and its answer kept.
    pub async fn dimensions(&self, user: UserId, model: &str) -> Result<(String, usize)> {
        match self.find(model).await? {
            Model::Local(e) => Ok((e.name().to_owned(), e.dimensions())),
            Model::Provider(resolved) => {
                let name = resolved.model.name.clone();
                match resolved.model.embedding_dimensions {
                    Some(d) if d > 0 => Ok((name, usize::try_from(d).unwrap_or(usize::MAX))),
                    _ => {
                        let out = self
                            .embed_for(user, Purpose::Query, &name, vec!["dimensions".into()])
                            .await?;
                        Ok((name, out.vectors.first().map_or(0, Vec::len)))
                    }
                }
            }
        }
    }

    /// Embeds `texts` with `model` on behalf of `user`, one L2-normalized vector each, and
    /// records the call.
    pub async fn embed_for(
        &self,
        user: UserId,
        purpose: Purpose,
        model: &str,
        texts: Vec<String>,
    ) -> Result<Embedded> {
        let started = Instant::now();
        let input_chars: usize = texts.iter().map(String::len).sum();
        let (name, outcome, resolved) = match self.find(model).await? {
            Model::Local(e) => (e.name().to_owned(), e.embed(texts).await, None),
            Model::Provider(resolved) => {
                let out = resolved
                    .provider
                    .embed(resolved.model.upstream_id.clone(), texts)
                    .await;
                (resolved.model.name.clone(), out, Some(resolved))
            }
        };
        let input_tokens = match &outcome {
            Ok(out) if out.input_tokens > 0 => out.input_tokens,
            _ => crate::usage::estimate(input_chars, 0).input_tokens,
        };
        if let Some(remote) = &self.remote {
            let call = hearth_store::LlmCall {
                id: LlmCallId::new(),
                user_id: Some(user),
                run_id: None,
                source: purpose.source().into(),
                model: name.clone(),
                provider_id: resolved.as_ref().map(|r| r.model.provider_id),
                input_tokens: i64::try_from(input_tokens).unwrap_or(i64::MAX),
                output_tokens: 0,
                latency_ms: started.elapsed().as_millis() as i64,
                ttft_ms: None,
                cost_usd: resolved.as_ref().and_then(|r| r.cost(input_tokens, 0)),
                tool_calls: 0,
                error: outcome.as_ref().err().map(ToString::to_string),
                created_at: Timestamp::now(),
            };
            if purpose == Purpose::Query {
                // A search waits for nobody: its record is written behind it.
                let recorder = remote.recorder.clone();
                tokio::spawn(async move { recorder.record(call).await });
            } else {
                remote.recorder.record(call).await;
            }
        }
        let mut out = outcome?;
        if let Some(resolved) = &resolved {
            if let Some(dims) = out.vectors.first().map(Vec::len) {
                if let Some(remote) = &self.remote {
                    // A cache of the model's vector length: failing to write it loses nothing.
                    if let Err(e) = remote
                        .providers
                        .learn_dimensions(&resolved.model, dims)
                        .await
                    {
                        tracing::warn!(model = %name, error = %e, "could not record the vector length");
                    }
                }
            }
            // Upstreams differ on normalization; cosine search and memory relevance expect it.
            out.vectors.iter_mut().for_each(|v| normalize(v));
        }
        Ok(Embedded {
            model: name,
            vectors: out.vectors,
            input_tokens,
        })
    }

    /// Embeds `inputs` with model `model` for an API caller, after checking them.
    pub async fn embed(
        &self,
        principal: &Principal,
        model: &str,
        inputs: Vec<String>,
    ) -> Result<Embedded> {
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
        self.embed_for(principal.user_id(), Purpose::Api, model, inputs)
            .await
    }
}

fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && (norm - 1.0).abs() > 1e-6 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
