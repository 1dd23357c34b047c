//! The OpenAI-compatible Chat Completions wire format (`POST {base}/chat/completions` with
//! `stream: true`, `GET {base}/models`), which OpenAI, Ollama, vLLM, llama.cpp's server, LM Studio,
//! OpenRouter and Groq all speak.

use std::borrow::Cow;
use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use crate::http::{self, WireParser};
use crate::sse::SseEvent;
use crate::{
    ChatRequest, Endpoint, EventStream, FinishReason, LlmError, Message, ModelInfo, Provider,
    ResponseFormat, Role, StreamEvent, ToolCall, ToolChoice, Usage,
};

/// A client of an OpenAI-compatible upstream.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    endpoint: Endpoint,
    client: reqwest::Client,
}

impl OpenAiProvider {
    /// A client of `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        let client = http::client(&endpoint.timeouts);
        Self { endpoint, client }
    }

    fn authorized(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.endpoint.api_key {
            Some(key) if !key.is_empty() => builder.bearer_auth(key),
            _ => builder,
        }
    }
}

impl Provider for OpenAiProvider {
    fn stream(&self, request: ChatRequest) -> EventStream {
        let body = request_body(&request);
        let url = http::join(&self.endpoint.base_url, "chat/completions");
        let this = self.clone();
        http::complete(
            move || this.authorized(this.client.post(&url).json(&body)),
            request.stream,
            OpenAiParser::default(),
            parse_completion,
            self.endpoint.timeouts,
        )
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, LlmError>> {
        Box::pin(async move {
            let url = http::join(&self.endpoint.base_url, "models");
            let body = http::get_json(
                self.authorized(self.client.get(url)),
                &self.endpoint.timeouts,
            )
            .await?;
            let data = body
                .get("data")
                .or_else(|| body.get("models"))
                .and_then(Value::as_array)
                .ok_or_else(|| LlmError::Protocol("model list has no `data` array".into()))?;
            Ok(data
                .iter()
                .filter_map(|m| {
                    let id = m.get("id").and_then(Value::as_str)?.to_owned();
                    Some(ModelInfo {
                        display_name: m.get("name").and_then(Value::as_str).map(str::to_owned),
                        context_length: m
                            .get("context_length")
                            .or_else(|| m.get("context_window"))
                            .or_else(|| m.get("max_model_len"))
                            .and_then(Value::as_u64),
                        id,
                    })
                })
                .collect())
        })
    }

    fn embed(
        &self,
        model: String,
        texts: Vec<String>,
    ) -> BoxFuture<'_, Result<crate::Embeddings, LlmError>> {
        Box::pin(async move {
            let url = http::join(&self.endpoint.base_url, "embeddings");
            let count = texts.len();
            let body = json!({"model": model, "input": texts, "encoding_format": "float"});
            let answer = http::post_json(
                &|| self.authorized(self.client.post(&url).json(&body)),
                &self.endpoint.timeouts,
                "embeddings",
                MAX_EMBEDDINGS_ANSWER,
            )
            .await?;
            parse_embeddings(&answer, count)
        })
    }
}

/// Largest embeddings answer read (2,048 vectors of 3,072 dimensions as JSON numbers fit).
const MAX_EMBEDDINGS_ANSWER: usize = 192 * 1024 * 1024;

/// The vectors of an embeddings answer, in input order (`data[].index`), checked: one per
/// input, all of one length.
fn parse_embeddings(answer: &Value, count: usize) -> Result<crate::Embeddings, LlmError> {
    let data = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| LlmError::Protocol("embeddings answer has no `data` array".into()))?;
    if data.len() != count {
        return Err(LlmError::Protocol(format!(
            "embeddings answer has {} vectors for {count} inputs",
            data.len()
        )));
    }
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; count];
    for (position, item) in data.iter().enumerate() {
        let index = item
            .get("index")
            .and_then(Value::as_u64)
            .map_or(position, |i| i as usize);
        let vector: Vec<f32> = item
            .get("embedding")
            .and_then(Value::as_array)
            .ok_or_else(|| LlmError::Protocol(format!("embedding {index} is not a list")))?
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32))
            .collect::<Option<_>>()
            .ok_or_else(|| LlmError::Protocol(format!("embedding {index} holds a non-number")))?;
        match vectors.get_mut(index) {
            Some(slot @ None) => *slot = Some(vector),
            _ => {
                return Err(LlmError::Protocol(format!(
                    "embeddings answer has a wrong or repeated index {index}"
                )))
            }
        }
    }
    let vectors: Vec<Vec<f32>> = vectors.into_iter().flatten().collect();
    let dims = vectors.first().map_or(0, Vec::len);
    if dims == 0 || vectors.iter().any(|v| v.len() != dims) {
        return Err(LlmError::Protocol(
            "embeddings answer has empty vectors or vectors of different lengths".into(),
        ));
    }
    let input_tokens = answer
        .pointer("/usage/prompt_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(crate::Embeddings {
        vectors,
        input_tokens,
    })
}

/// The JSON body of a streamed Chat Completions request.
pub(crate) fn request_body(request: &ChatRequest) -> Value {
    let messages: Vec<Value> = request.messages.iter().map(message_json).collect();
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "stream": request.stream,
    });
    if request.stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect();
        if let Some(choice) = &request.tool_choice {
            body["tool_choice"] = match choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            };
        }
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(m) = request.max_tokens {
        body["max_tokens"] = json!(m);
    }
    if let Some(m) = request.max_completion_tokens {
        body["max_completion_tokens"] = json!(m);
    }
    let sampling = &request.sampling;
    if let Some(p) = sampling.top_p {
        body["top_p"] = json!(p);
    }
    if let Some(seed) = sampling.seed {
        body["seed"] = json!(seed);
    }
    if !sampling.stop.is_empty() {
        body["stop"] = json!(sampling.stop);
    }
    match &request.response_format {
        None => {}
        Some(ResponseFormat::JsonObject) => {
            body["response_format"] = json!({"type": "json_object"})
        }
        Some(ResponseFormat::JsonSchema { name, schema }) => {
            body["response_format"] =
                json!({"type": "json_schema", "json_schema": {"name": name, "schema": schema}})
        }
    }
    body
}

/// Events for a whole (non-streamed) `chat.completion`.
fn parse_completion(body: Value) -> Result<Vec<StreamEvent>, LlmError> {
    let choice = body
        .pointer("/choices/0")
        .ok_or_else(|| LlmError::Protocol("the answer has no choices".into()))?;
    let message = &choice["message"];
    let mut out = Vec::new();
    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
        out.push(StreamEvent::TextDelta(text.to_owned()));
    }
    for (i, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        out.push(StreamEvent::ToolCall(ToolCall {
            id: call["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("call_{:016x}_{i}", rand_id())),
            name: call["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            arguments: call["function"]["arguments"]
                .as_str()
                .unwrap_or("{}")
                .to_owned(),
        }));
    }
    if let Some(usage) = body.get("usage").filter(|u| u.is_object()) {
        out.push(StreamEvent::Usage(Usage {
            input_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
            output_tokens: usage["completion_tokens"].as_u64().unwrap_or(0),
        }));
    }
    out.push(StreamEvent::Finish(finish_reason(
        choice["finish_reason"].as_str().unwrap_or("stop"),
    )));
    Ok(out)
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

fn message_json(m: &Message) -> Value {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let mut v = json!({"role": role, "content": m.content});
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        if m.content.is_empty() {
            v["content"] = Value::Null;
        }
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = json!(id);
    }
    v
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Parses `data:` chunks of `chat.completion.chunk` objects, ending at `[DONE]`.
#[derive(Default)]
pub(crate) struct OpenAiParser {
    calls: BTreeMap<usize, PartialCall>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    done: bool,
    active: bool,
}

/// A random id suffix for tool calls the upstream did not name.
fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

impl OpenAiParser {
    fn complete(&mut self) -> Vec<StreamEvent> {
        let mut out: Vec<StreamEvent> = std::mem::take(&mut self.calls)
            .into_values()
            .map(|c| {
                StreamEvent::ToolCall(ToolCall {
                    id: c.id,
                    name: c.name,
                    arguments: if c.arguments.trim().is_empty() {
                        "{}".into()
                    } else {
                        c.arguments
                    },
                })
            })
            .collect();
        if let Some(u) = self.usage.take() {
            out.push(StreamEvent::Usage(u));
        }
        let reason = self.finish.take().unwrap_or(FinishReason::Stop);
        out.push(StreamEvent::Finish(reason));
        self.done = true;
        out
    }
}

/// The usual chunk: text, reasoning, a finish reason or usage, no tool calls and no error.
/// Anything else (or any field of another type) goes through the general path.
#[derive(serde::Deserialize)]
struct TextChunk<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<TextChoice<'a>>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct TextChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<TextDelta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct TextDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl TextChunk<'_> {
    fn is_plain(&self) -> bool {
        self.error.is_none()
            && !self
                .choices
                .iter()
                .flatten()
                .any(|c| c.delta.as_ref().is_some_and(|d| d.tool_calls.is_some()))
    }
}

impl OpenAiParser {
    /// The events of a plain chunk, as the general path would give them.
    fn text_chunk(&mut self, chunk: TextChunk<'_>) -> Vec<StreamEvent> {
        if let Some(u) = chunk.usage {
            self.usage = Some(Usage {
                input_tokens: u.prompt_tokens.unwrap_or(0),
                output_tokens: u.completion_tokens.unwrap_or(0),
            });
        }
        let Some(choice) = chunk.choices.and_then(|c| c.into_iter().next()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(delta) = choice.delta {
            if [&delta.reasoning_content, &delta.reasoning]
                .iter()
                .any(|t| t.as_ref().is_some_and(|t| !t.is_empty()))
            {
                self.active = true;
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta(text.into_owned()));
            }
        }
        if let Some(reason) = choice.finish_reason {
            self.finish = Some(finish_reason(&reason));
        }
        out
    }
}

impl WireParser for OpenAiParser {
    fn take_activity(&mut self) -> bool {
        std::mem::take(&mut self.active)
    }

    fn event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(self.complete());
        }
        if data.is_empty() {
            return Ok(Vec::new());
        }
        // Most chunks carry one token; those are read without building a JSON tree.
        if let Ok(chunk) = serde_json::from_str::<TextChunk<'_>>(data) {
            if chunk.is_plain() {
                return Ok(self.text_chunk(chunk));
            }
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|e| LlmError::Protocol(format!("a chunk is not JSON ({e})")))?;
        if let Some(err) = chunk.get("error") {
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| err.to_string());
            return Err(LlmError::Upstream(message));
        }
        let mut out = Vec::new();
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(Usage {
                input_tokens: usage
                    .get("prompt_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                output_tokens: usage
                    .get("completion_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            });
        }
        let choices = match chunk.get("choices") {
            Some(Value::Array(c)) => c,
            Some(_) => return Err(LlmError::Protocol("`choices` is not an array".into())),
            None => return Ok(out),
        };
        let Some(choice) = choices.first() else {
            return Ok(out);
        };
        if let Some(delta) = choice.get("delta") {
            // Reasoning models stream their thinking first; it is activity, not a token.
            if ["reasoning_content", "reasoning"].iter().any(|k| {
                delta
                    .get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty())
            }) {
                self.active = true;
            }
            if let Some(text) = delta.get("content").and_then(Value::as_str) {
                if !text.is_empty() {
                    out.push(StreamEvent::TextDelta(text.to_owned()));
                }
            }
            if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                for (position, call) in calls.iter().enumerate() {
                    let index = call
                        .get("index")
                        .and_then(Value::as_u64)
                        .map(|i| i as usize)
                        .unwrap_or(position);
                    let function = call.get("function");
                    let id = call.get("id").and_then(Value::as_str).map(str::to_owned);
                    let name = function
                        .and_then(|f| f.get("name"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    let arguments = function
                        .and_then(|f| f.get("arguments"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    let partial = self.calls.entry(index).or_default();
                    if let Some(id) = id.as_ref().filter(|i| !i.is_empty()) {
                        partial.id.clone_from(id);
                    }
                    // Some servers repeat the name in every chunk; it is never split.
                    if let Some(name) = name.as_ref().filter(|n| !n.is_empty()) {
                        partial.name.clone_from(name);
                    }
                    partial.arguments.push_str(&arguments);
                    if partial.id.is_empty() {
                        // Ids must be unique across rounds: results and approvals are keyed by them.
                        partial.id = format!("call_{:016x}", rand_id());
                    }
                    out.push(StreamEvent::ToolCallDelta {
                        index,
                        id,
                        name,
                        arguments,
                    });
                }
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(finish_reason(reason));
        }
        Ok(out)
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        if self.done {
            return Ok(Vec::new());
        }
        if self.finish.is_some() {
            // Some servers close after the finishing chunk without `[DONE]`.
            return Ok(self.complete());
        }
        Err(LlmError::Protocol(
            "the stream ended before the answer was finished".into(),
        ))
    }

    fn finished(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_come_back_in_input_order_and_are_checked() {
        let answer = json!({"data": [
            {"index": 1, "embedding": [0.0, 1.0]},
            {"index": 0, "embedding": [1.0, 0.0]}
        ], "usage": {"prompt_tokens": 9}});
        let out = parse_embeddings(&answer, 2).expect("parses");
        assert_eq!(out.vectors, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert_eq!(out.input_tokens, 9);

        let short = parse_embeddings(&answer, 3).expect_err("too few");
        assert!(
            short.to_string().contains("2 vectors for 3 inputs"),
            "{short}"
        );
        let repeated = json!({"data": [
            {"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]});
        assert!(parse_embeddings(&repeated, 2).is_err());
        let ragged = json!({"data": [
            {"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [1.0, 2.0]}]});
        assert!(parse_embeddings(&ragged, 2).is_err());
        let words = json!({"data": [{"index": 0, "embedding": ["a"]}]});
        assert!(parse_embeddings(&words, 1).is_err());
        assert!(parse_embeddings(&json!({"object": "list"}), 1).is_err());
    }

    fn ev(data: &str) -> SseEvent {
        SseEvent {
            event: String::new(),
            data: data.into(),
        }
    }

    #[test]
    fn assembles_text_tool_calls_usage_and_finish() {
        let mut p = OpenAiParser::default();
        let mut all = Vec::new();
        for d in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"calc","arguments":"{\"ex"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"pr\":1}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#,
            "[DONE]",
        ] {
            all.extend(p.event(ev(d)).expect("parse"));
        }
        assert_eq!(all[0], StreamEvent::TextDelta("Hi".into()));
        assert!(all.contains(&StreamEvent::ToolCall(ToolCall {
            id: "c1".into(),
            name: "calc".into(),
            arguments: "{\"expr\":1}".into()
        })));
        assert!(all.contains(&StreamEvent::Usage(Usage {
            input_tokens: 5,
            output_tokens: 7
        })));
        assert_eq!(
            all.last(),
            Some(&StreamEvent::Finish(FinishReason::ToolCalls))
        );
        assert!(p.finished());
    }

    #[test]
    fn plain_chunks_read_without_a_json_tree_give_the_same_events() {
        let mut p = OpenAiParser::default();
        let mut all = Vec::new();
        for d in [
            // Escapes make the text an owned string; the rest borrow from the event.
            r#"{"id":"x","choices":[{"index":0,"delta":{"content":"say \"hi\"\n\u00e9"},"finish_reason":null}]}"#,
            r#"{"choices":[{"delta":{"content":null,"role":"assistant"}}],"usage":null}"#,
            r#"{"choices":[{"delta":{"content":""}}]}"#,
            // A content of another type goes the general way, which skips it.
            r#"{"choices":[{"delta":{"content":7}}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":3}}"#,
            "[DONE]",
        ] {
            all.extend(p.event(ev(d)).expect("parse"));
        }
        assert_eq!(
            all,
            vec![
                StreamEvent::TextDelta("say \"hi\"\n\u{e9}".into()),
                StreamEvent::Usage(Usage {
                    input_tokens: 3,
                    output_tokens: 0
                }),
                StreamEvent::Finish(FinishReason::Length),
            ]
        );

        let mut p = OpenAiParser::default();
        p.event(ev(r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#))
            .expect("ok");
        assert!(p.take_activity(), "reasoning counts as activity");
        // An error next to choices is still an error.
        assert!(matches!(
            p.event(ev(r#"{"choices":[],"error":{"message":"gone"}}"#)),
            Err(LlmError::Upstream(m)) if m == "gone"
        ));
        assert!(matches!(
            p.event(ev(r#"{"choices":{"delta":{}}}"#)),
            Err(LlmError::Protocol(_))
        ));
    }

    #[test]
    fn malformed_and_error_chunks_are_errors() {
        let mut p = OpenAiParser::default();
        assert!(matches!(
            p.event(ev("{not json")),
            Err(LlmError::Protocol(_))
        ));
        assert!(matches!(
            p.event(ev(r#"{"error":{"message":"overloaded"}}"#)),
            Err(LlmError::Upstream(m)) if m == "overloaded"
        ));
        let mut p = OpenAiParser::default();
        p.event(ev(r#"{"choices":[{"delta":{"content":"x"}}]}"#))
            .expect("ok");
        assert!(p.end().is_err(), "closed before finishing");
    }
}
