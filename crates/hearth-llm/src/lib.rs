//! Hearth's model providers: one [`Provider`] trait whose streams yield normalized
//! [`StreamEvent`]s, and clients for the OpenAI-compatible Chat Completions wire format (OpenAI,
//! Ollama, vLLM, llama.cpp, LM Studio, OpenRouter, Groq…) and Anthropic's Messages API.
//!
//! It knows HTTP as a client and nothing of users, storage or Hearth's own API. Cancelling a
//! stream is dropping it: the task reading the upstream notices at once and closes the connection.

mod anthropic;
mod http;
mod openai;
pub mod sse;

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

pub use anthropic::AnthropicProvider;
pub use openai::OpenAiProvider;

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

/// A tool call the model asked for. `arguments` is the JSON text as the model wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// One message of a conversation sent to a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// Calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call a tool message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with text only.
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A tool's result for the call `tool_call_id`.
    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: Role::Tool,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: Some(tool_call_id.into()),
        }
    }
}

/// A tool offered to the model: a name, what it does, and a JSON schema of its arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// Whether and which tool the model must call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Tool(String),
}

/// A request for one completion.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    /// The provider's own model id.
    pub model: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: Option<ToolChoice>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// The newer OpenAI spelling of the limit, which reasoning models require; sent as given.
    pub max_completion_tokens: Option<u32>,
    /// Ask the upstream to stream (the default). Off for models that cannot: the whole answer
    /// then arrives as one text delta, and the events are the same otherwise.
    pub stream: bool,
    /// Sampling beyond the temperature; each is sent only when set.
    pub sampling: Sampling,
    /// Constrain the answer to JSON (a schema, when given).
    pub response_format: Option<ResponseFormat>,
}

/// Sampling options besides the temperature. Upstreams that lack one ignore it (the built-in
/// engine honours all of them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sampling {
    pub top_p: Option<f32>,
    pub top_k: Option<u32>,
    pub min_p: Option<f32>,
    /// 1.0 is off; above 1.0 discourages repeating recent tokens.
    pub repeat_penalty: Option<f32>,
    pub seed: Option<u64>,
    /// The answer ends before the first of these (which is not included).
    pub stop: Vec<String>,
}

/// A structured answer: any JSON object, or JSON valid against a schema.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponseFormat {
    JsonObject,
    JsonSchema {
        name: String,
        schema: serde_json::Value,
    },
}

impl ChatRequest {
    /// A request with defaults for everything but the model and messages.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: model.into(),
            messages,
            tools: Vec::new(),
            tool_choice: None,
            temperature: None,
            max_tokens: None,
            max_completion_tokens: None,
            stream: true,
            sampling: Sampling::default(),
            response_format: None,
        }
    }
}

/// Tokens used by one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    Other(String),
}

impl FinishReason {
    /// The OpenAI spelling.
    pub fn as_openai(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(s) => s,
        }
    }
}

/// What a provider stream yields, whatever the wire format.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// More answer text.
    TextDelta(String),
    /// Part of a tool call being written (index is the call's position in this answer).
    ToolCallDelta {
        index: usize,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    /// A tool call, complete.
    ToolCall(ToolCall),
    /// Tokens used (sent once, near the end, when the upstream reports it).
    Usage(Usage),
    /// The answer is complete; always the last event of a successful stream.
    Finish(FinishReason),
}

/// Why a call failed. Messages are safe to show to the user: they never carry the API key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The upstream could not be reached.
    #[error("cannot reach the provider: {0}")]
    Connect(String),
    /// Nothing arrived in time.
    #[error("the provider did not answer within {} ms ({phase})", .after.as_millis())]
    Timeout {
        phase: &'static str,
        after: Duration,
    },
    /// The upstream answered with an error status.
    #[error("the provider answered {status}: {message}")]
    Status { status: u16, message: String },
    /// The upstream sent something that is not the wire format.
    #[error("the provider sent a malformed stream: {0}")]
    Protocol(String),
    /// The upstream reported an error inside the stream.
    #[error("the provider reported an error: {0}")]
    Upstream(String),
    /// The request cannot be served as it is (a prompt beyond the context window, a schema the
    /// engine cannot compile); `field` names the part of the request at fault.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The engine's queue is full; try again after `retry_after`.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after: Duration,
    },
}

impl LlmError {
    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            LlmError::Connect(_) => "upstream_unreachable",
            LlmError::Timeout { .. } => "upstream_timeout",
            LlmError::Status { .. } => "upstream_status",
            LlmError::Protocol(_) => "upstream_protocol",
            LlmError::Upstream(_) => "upstream_error",
            LlmError::Invalid { .. } => "invalid_request",
            LlmError::Busy { .. } => "model_busy",
        }
    }
}

/// A stream of normalized events; ends after `Finish` or an error.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, LlmError>> + Send>>;

/// A model as the provider lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    pub display_name: Option<String>,
    pub context_length: Option<u64>,
}

/// A source of completions.
pub trait Provider: Send + Sync + fmt::Debug {
    /// Starts a streamed completion. Dropping the stream cancels it and closes the connection.
    fn stream(&self, request: ChatRequest) -> EventStream;
    /// Like [`Provider::stream`], but refuses at once what is known to fail before any work
    /// (an engine whose queue is full, a prompt that cannot fit), so an API can answer with the
    /// right status instead of a failed stream. Remote providers learn of errors only by asking.
    fn start(&self, request: ChatRequest) -> Result<EventStream, LlmError> {
        Ok(self.stream(request))
    }
    /// The models the upstream offers.
    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, LlmError>>;
    /// Embeds `texts` with the upstream's model `model`, one vector each, in order (OpenAI's
    /// `POST /embeddings`). Kinds without an embeddings endpoint refuse.
    fn embed(
        &self,
        model: String,
        texts: Vec<String>,
    ) -> BoxFuture<'_, Result<Embeddings, LlmError>> {
        let _ = (model, texts);
        Box::pin(async {
            Err(LlmError::Invalid {
                field: "model".into(),
                message: "this kind of provider has no embeddings endpoint".into(),
            })
        })
    }
}

/// Vectors for some texts, in their order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    /// Tokens read (after truncation).
    pub input_tokens: u64,
}

/// A source of sentence embeddings.
pub trait Embedder: Send + Sync + fmt::Debug {
    /// The name it is called by.
    fn name(&self) -> &str;
    /// Length of every vector.
    fn dimensions(&self) -> usize;
    /// Longest input in tokens; longer inputs are truncated to it.
    fn max_tokens(&self) -> usize;
    /// Embeds `texts`, one vector each, L2-normalized.
    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Embeddings, LlmError>>;
}

/// Time limits and retries of a provider client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// To open the TCP (and TLS) connection.
    pub connect: Duration,
    /// From sending the request to the first token.
    pub first_token: Duration,
    /// Longest silence between two chunks once streaming.
    pub idle: Duration,
    /// Retries on 429 and 5xx, before the first token only.
    pub max_retries: u32,
    /// First backoff; doubled on each retry (a `Retry-After` up to 10 s wins).
    pub backoff: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_token: Duration::from_secs(120),
            idle: Duration::from_secs(60),
            max_retries: 2,
            backoff: Duration::from_millis(500),
        }
    }
}

/// Where and how to reach an upstream.
#[derive(Clone)]
pub struct Endpoint {
    /// Base URL, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// The API key, when the upstream wants one.
    pub api_key: Option<String>,
    pub timeouts: Timeouts,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// Collects a stream into the finished answer (for non-streaming callers and tests).
pub async fn collect(mut stream: EventStream) -> Result<Completion, LlmError> {
    use futures_util::StreamExt as _;
    let mut out = Completion::default();
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::TextDelta(t) => out.text.push_str(&t),
            StreamEvent::ToolCallDelta { .. } => {}
            StreamEvent::ToolCall(call) => out.tool_calls.push(call),
            StreamEvent::Usage(u) => out.usage = Some(u),
            StreamEvent::Finish(reason) => out.finish_reason = Some(reason),
        }
    }
    Ok(out)
}

/// A whole answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<Usage>,
    pub finish_reason: Option<FinishReason>,
}
