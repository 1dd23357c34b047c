//! The OpenAI-compatible API under `/v1`, for any OpenAI client: `GET /v1/models`,
//! `POST /v1/chat/completions` (streamed or not, with tools and `tool_choice`, `response_format`,
//! sampling options, usage in streams with `stream_options.include_usage`) and
//! `POST /v1/embeddings`. Authenticated by API key (or session token). The
//! caller's tools are passed through: tool calls come back to the caller, as with OpenAI.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use hearth_core::CoreError;
use hearth_llm::{
    ChatRequest, FinishReason, Message, ResponseFormat, Role, Sampling, StreamEvent, ToolCall,
    ToolChoice, ToolSpec,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{Auth, Json};
use crate::state::AppState;

/// `GET /v1/models`: the models the caller may use.
pub async fn models(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<axum::Json<Value>, ApiError> {
    let data: Vec<Value> = state
        .providers
        .list_for_user(&principal)
        .await?
        .into_iter()
        .chain(state.embeddings.builtin_models())
        .map(|m| json!({"id": m.name, "object": "model", "created": 0, "owned_by": m.provider}))
        .collect();
    Ok(axum::Json(json!({"object": "list", "data": data})))
}

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    model: String,
    messages: Vec<InMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    tools: Vec<InTool>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    top_p: Option<f32>,
    /// Not in OpenAI's API; honoured by the built-in models (as llama.cpp's server does).
    #[serde(default)]
    top_k: Option<u32>,
    #[serde(default)]
    min_p: Option<f32>,
    #[serde(default)]
    repeat_penalty: Option<f32>,
    #[serde(default)]
    seed: Option<u64>,
    /// A string or a list of strings.
    #[serde(default)]
    stop: Option<Value>,
    #[serde(default)]
    response_format: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Value,
    #[serde(default)]
    tool_calls: Vec<InToolCall>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InToolCall {
    id: String,
    function: InFunctionCall,
}

#[derive(Debug, Deserialize)]
struct InFunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Debug, Deserialize)]
struct InTool {
    function: InFunction,
}

#[derive(Debug, Deserialize)]
struct InFunction {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
}

fn invalid(field: String, reason: &str) -> ApiError {
    CoreError::invalid(field, reason).into()
}

/// The text of an OpenAI `content`: a string, null, or an array of parts with `text`.
fn content_text(content: &Value, field: String) -> Result<String, ApiError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut out = String::new();
            for (j, part) in parts.iter().enumerate() {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        out.push_str(part.get("text").and_then(Value::as_str).unwrap_or_default())
                    }
                    _ => {
                        return Err(invalid(
                            format!("{field}[{j}].type"),
                            "only `text` parts are supported",
                        ))
                    }
                }
            }
            Ok(out)
        }
        _ => Err(invalid(field, "must be a string or an array of parts")),
    }
}

impl CompletionRequest {
    fn into_request(self) -> Result<(ChatRequest, bool, bool), ApiError> {
        if self.messages.is_empty() {
            return Err(invalid("messages".into(), "must not be empty"));
        }
        let mut messages = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.into_iter().enumerate() {
            let role = match m.role.as_str() {
                "system" | "developer" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "tool" => Role::Tool,
                _ => {
                    return Err(invalid(
                        format!("messages[{i}].role"),
                        "must be system, user, assistant or tool",
                    ))
                }
            };
            if role == Role::Tool && m.tool_call_id.is_none() {
                return Err(invalid(
                    format!("messages[{i}].tool_call_id"),
                    "is required for tool messages",
                ));
            }
            messages.push(Message {
                role,
                content: content_text(&m.content, format!("messages[{i}].content"))?,
                tool_calls: m
                    .tool_calls
                    .into_iter()
                    .map(|c| ToolCall {
                        id: c.id,
                        name: c.function.name,
                        arguments: c.function.arguments,
                    })
                    .collect(),
                tool_call_id: m.tool_call_id,
            });
        }
        let tools = self
            .tools
            .into_iter()
            .map(|t| ToolSpec {
                name: t.function.name,
                description: t.function.description.unwrap_or_default(),
                parameters: t
                    .function
                    .parameters
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            })
            .collect();
        let tool_choice = match &self.tool_choice {
            None => None,
            Some(Value::String(s)) => Some(match s.as_str() {
                "auto" => ToolChoice::Auto,
                "none" => ToolChoice::None,
                "required" => ToolChoice::Required,
                _ => {
                    return Err(invalid(
                        "tool_choice".into(),
                        "must be auto, none, required or a function",
                    ))
                }
            }),
            Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
                Some(name) => Some(ToolChoice::Tool(name.to_owned())),
                None => {
                    return Err(invalid(
                        "tool_choice".into(),
                        "must be auto, none, required or a function",
                    ))
                }
            },
        };
        let stop = match self.stop {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(invalid(
                        "stop".into(),
                        "must be a string or a list of strings",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(invalid(
                    "stop".into(),
                    "must be a string or a list of strings",
                ))
            }
        };
        let response_format = match &self.response_format {
            None | Some(Value::Null) => None,
            Some(v) => match v.get("type").and_then(Value::as_str) {
                Some("text") => None,
                Some("json_object") => Some(ResponseFormat::JsonObject),
                Some("json_schema") => {
                    let spec = v.get("json_schema");
                    let schema = spec.and_then(|s| s.get("schema")).cloned().ok_or_else(|| {
                        invalid("response_format.json_schema.schema".into(), "is required")
                    })?;
                    if !schema.is_object() {
                        return Err(invalid(
                            "response_format.json_schema.schema".into(),
                            "must be a JSON schema object",
                        ));
                    }
                    let name = spec
                        .and_then(|s| s.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or("response")
                        .to_owned();
                    Some(ResponseFormat::JsonSchema { name, schema })
                }
                _ => {
                    return Err(invalid(
                        "response_format.type".into(),
                        "must be text, json_object or json_schema",
                    ))
                }
            },
        };
        let request = ChatRequest {
            model: self.model,
            messages,
            tools,
            tool_choice,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            max_completion_tokens: self.max_completion_tokens,
            stream: true,
            sampling: Sampling {
                top_p: self.top_p,
                top_k: self.top_k,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                seed: self.seed,
                stop,
            },
            response_format,
        };
        let include_usage = self.stream_options.is_some_and(|o| o.include_usage);
        Ok((request, self.stream, include_usage))
    }
}

fn completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::now_v7().simple())
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(body): Json<CompletionRequest>,
) -> Result<Response, ApiError> {
    let (request, stream, include_usage) = body.into_request()?;
    // A stream's slot is taken before the call: over the share, nothing is sent upstream.
    let slot = stream
        .then(|| {
            state.sockets.stream_slot(
                principal.user_id(),
                state.settings.server.max_websockets_per_user,
            )
        })
        .transpose()?;
    let (model, events) = state.chat.complete_direct(&principal, request).await?;
    let id = completion_id();
    let created = now_secs();
    if let Some(slot) = slot {
        let ended = state.accounts.credential_ended(&principal);
        return Ok(stream_response(
            id,
            created,
            model,
            events,
            include_usage,
            ended,
            slot,
        ));
    }
    let done = hearth_llm::collect(events)
        .await
        .map_err(|e| ApiError::Core(CoreError::Upstream(e.to_string())))?;
    let usage = done.usage.unwrap_or_default();
    let tool_calls: Vec<Value> = done
        .tool_calls
        .iter()
        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
        .collect();
    let mut message = json!({"role": "assistant", "content": if done.text.is_empty() && !tool_calls.is_empty() { Value::Null } else { json!(done.text) }});
    if !tool_calls.is_empty() {
        message["tool_calls"] = json!(tool_calls);
    }
    let finish = done.finish_reason.unwrap_or(FinishReason::Stop);
    Ok(axum::Json(json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish.as_openai(), "logprobs": null}],
        "usage": {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
                  "total_tokens": usage.input_tokens + usage.output_tokens},
    }))
    .into_response())
}

fn stream_response(
    id: String,
    created: i64,
    model: String,
    events: hearth_llm::EventStream,
    include_usage: bool,
    ended: impl std::future::Future<Output = String> + Send + 'static,
    slot: crate::ws::SocketSlot,
) -> Response {
    // Every chunk shares its envelope; it is written once and each token only fills the delta.
    // Chunks are whole SSE events (compact JSON has no line breaks).
    let model_json = serde_json::to_string(&model).unwrap_or_else(|_| "\"\"".into());
    let head = format!(
        r#"data: {{"id":"{id}","object":"chat.completion.chunk","created":{created},"model":{model_json},"choices":"#
    );
    let chunk = {
        let head = head.clone();
        move |delta: &str, finish: &str| {
            format!("{head}[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n")
        }
    };
    let usage_chunk = move |u: hearth_llm::Usage| {
        format!(
            "{head}[],\"usage\":{{\"prompt_tokens\":{},\"completion_tokens\":{},\"total_tokens\":{}}}}}\n\n",
            u.input_tokens,
            u.output_tokens,
            u.input_tokens + u.output_tokens
        )
    };
    let text = |t: &str| serde_json::to_string(t).unwrap_or_else(|_| "\"\"".into());
    let first = chunk(r#"{"role":"assistant","content":""}"#, "null");
    let body = futures_util::stream::once(async move { vec![first] })
        .chain(events.scan(
            (None::<hearth_llm::Usage>, false),
            move |(usage, ended), item| {
                let out: Vec<String> = if *ended {
                    Vec::new()
                } else {
                    match item {
                        Ok(StreamEvent::TextDelta(t)) => {
                            vec![chunk(&format!(r#"{{"content":{}}}"#, text(&t)), "null")]
                        }
                        Ok(StreamEvent::ToolCallDelta { index, id, name, arguments }) => {
                            let mut call = json!({"index": index, "function": {"arguments": arguments}});
                            if let Some(id) = id {
                                call["id"] = json!(id);
                                call["type"] = json!("function");
                            }
                            if let Some(name) = name {
                                call["function"]["name"] = json!(name);
                            }
                            vec![chunk(&json!({"tool_calls": [call]}).to_string(), "null")]
                        }
                        Ok(StreamEvent::ToolCall(_)) => Vec::new(),
                        Ok(StreamEvent::Usage(u)) => {
                            *usage = Some(u);
                            Vec::new()
                        }
                        Ok(StreamEvent::Finish(reason)) => {
                            *ended = true;
                            let mut out = vec![chunk("{}", &text(reason.as_openai()))];
                            if include_usage {
                                out.push(usage_chunk(usage.unwrap_or_default()));
                            }
                            out
                        }
                        Err(e) => {
                            *ended = true;
                            vec![crate::sse::data_event(
                                &json!({"error": {"message": e.to_string(), "type": "upstream_error", "code": e.code()}})
                                    .to_string(),
                            )]
                        }
                    }
                };
                futures_util::future::ready(Some(out))
            },
        ))
        .flat_map(futures_util::stream::iter)
        .chain(futures_util::stream::once(async {
            crate::sse::data_event("[DONE]")
        }));
    // A revoked key or session stops the stream (and, by dropping it, the upstream call).
    crate::sse::response(
        crate::sse::until_ended(body, ended, |reason| {
            crate::sse::data_event(
            &json!({"error": {"message": reason, "type": "authentication_error", "code": "unauthorized"}})
                .to_string(),
        )
        }),
        slot,
    )
}

#[derive(Debug, Deserialize)]
pub struct EmbeddingRequest {
    model: String,
    /// A string or a list of strings.
    input: Value,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<u32>,
}

/// `POST /v1/embeddings`: vectors from a built-in embedding model.
pub async fn embeddings(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(body): Json<EmbeddingRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let inputs: Vec<String> = match body.input {
        Value::String(s) => vec![s],
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                _ => Err(invalid(
                    format!("input[{i}]"),
                    "must be a string (token arrays are not accepted)",
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(
                "input".into(),
                "must be a string or a list of strings",
            ))
        }
    };
    let base64 = match body.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => return Err(invalid("encoding_format".into(), "must be float or base64")),
    };
    let out = state
        .embeddings
        .embed(&principal, &body.model, inputs)
        .await?;
    if let Some(d) = body.dimensions {
        let native = out.vectors.first().map_or(0, Vec::len);
        if d as usize != native {
            return Err(invalid(
                "dimensions".into(),
                &format!(
                    "model `{}` has {native} dimensions and cannot shorten them",
                    out.model
                ),
            ));
        }
    }
    let data: Vec<Value> = out
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                use base64::Engine as _;
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(axum::Json(json!({
        "object": "list", "data": data, "model": out.model,
        "usage": {"prompt_tokens": out.input_tokens, "total_tokens": out.input_tokens},
    })))
}
