//! Anthropic's Messages API (`POST {base}/messages` with `stream: true`, `GET {base}/models`).

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use crate::http::{self, WireParser};
use crate::sse::SseEvent;
use crate::{
    ChatRequest, Endpoint, EventStream, FinishReason, LlmError, ModelInfo, Provider, Role,
    StreamEvent, ToolCall, ToolChoice, Usage,
};

const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; used when the request sets none.
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A client of the Anthropic Messages API.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    endpoint: Endpoint,
    client: reqwest::Client,
}

impl AnthropicProvider {
    /// A client of `endpoint` (base URL such as `https://api.anthropic.com/v1`).
    pub fn new(endpoint: Endpoint) -> Self {
        let client = http::client(&endpoint.timeouts);
        Self { endpoint, client }
    }

    fn authorized(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let builder = builder.header("anthropic-version", API_VERSION);
        match &self.endpoint.api_key {
            Some(key) if !key.is_empty() => builder.header("x-api-key", key),
            _ => builder,
        }
    }
}

impl Provider for AnthropicProvider {
    fn stream(&self, request: ChatRequest) -> EventStream {
        let body = request_body(&request);
        let url = http::join(&self.endpoint.base_url, "messages");
        let this = self.clone();
        http::complete(
            move || this.authorized(this.client.post(&url).json(&body)),
            request.stream,
            AnthropicParser::default(),
            parse_message,
            self.endpoint.timeouts,
        )
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>, LlmError>> {
        Box::pin(async move {
            let url = http::join(&self.endpoint.base_url, "models?limit=1000");
            let body = http::get_json(
                self.authorized(self.client.get(url)),
                &self.endpoint.timeouts,
            )
            .await?;
            let data = body
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| LlmError::Protocol("model list has no `data` array".into()))?;
            Ok(data
                .iter()
                .filter_map(|m| {
                    Some(ModelInfo {
                        id: m.get("id").and_then(Value::as_str)?.to_owned(),
                        display_name: m
                            .get("display_name")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        context_length: None,
                    })
                })
                .collect())
        })
    }
}

/// The JSON body of a streamed Messages request. System messages go to `system`; tool results
/// become `tool_result` blocks of a user turn; consecutive turns of one role are merged.
pub(crate) fn request_body(request: &ChatRequest) -> Value {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in &request.messages {
        let (role, blocks) = match m.role {
            Role::System => {
                system.push(m.content.clone());
                continue;
            }
            Role::User => ("user", vec![json!({"type": "text", "text": m.content})]),
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                    "content": m.content,
                })],
            ),
            Role::Assistant => {
                let mut blocks = Vec::new();
                if !m.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": m.content}));
                }
                for c in &m.tool_calls {
                    let input: Value = serde_json::from_str(&c.arguments).unwrap_or(json!({}));
                    blocks.push(
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                    );
                }
                ("assistant", blocks)
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "max_tokens": request.max_tokens.or(request.max_completion_tokens).unwrap_or(DEFAULT_MAX_TOKENS),
        "stream": request.stream,
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = request.sampling.top_p {
        body["top_p"] = json!(p);
    }
    if let Some(k) = request.sampling.top_k {
        body["top_k"] = json!(k);
    }
    if !request.sampling.stop.is_empty() {
        body["stop_sequences"] = json!(request.sampling.stop);
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        match &request.tool_choice {
            Some(ToolChoice::Auto) | None => {}
            Some(ToolChoice::Required) => body["tool_choice"] = json!({"type": "any"}),
            Some(ToolChoice::Tool(name)) => {
                body["tool_choice"] = json!({"type": "tool", "name": name})
            }
            // Tools stay defined: Anthropic refuses a history with tool blocks and no tools.
            Some(ToolChoice::None) => body["tool_choice"] = json!({"type": "none"}),
        }
    }
    body
}

/// Events for a whole (non-streamed) `message`.
fn parse_message(body: Value) -> Result<Vec<StreamEvent>, LlmError> {
    if body["type"] == "error" {
        return Err(LlmError::Upstream(
            body.pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_owned(),
        ));
    }
    let blocks = body["content"]
        .as_array()
        .ok_or_else(|| LlmError::Protocol("the answer has no content".into()))?;
    let mut out = Vec::new();
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => {
                if let Some(t) = block["text"].as_str().filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta(t.to_owned()));
                }
            }
            Some("tool_use") => out.push(StreamEvent::ToolCall(ToolCall {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                name: block["name"].as_str().unwrap_or_default().to_owned(),
                arguments: block["input"].to_string(),
            })),
            _ => {}
        }
    }
    out.push(StreamEvent::Usage(Usage {
        input_tokens: body
            .pointer("/usage/input_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output_tokens: body
            .pointer("/usage/output_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }));
    out.push(StreamEvent::Finish(match body["stop_reason"].as_str() {
        Some("tool_use") => FinishReason::ToolCalls,
        Some("max_tokens") => FinishReason::Length,
        Some("refusal") => FinishReason::ContentFilter,
        Some("end_turn") | Some("stop_sequence") | None => FinishReason::Stop,
        Some(other) => FinishReason::Other(other.to_owned()),
    }));
    Ok(out)
}

enum Block {
    Text,
    ToolUse {
        id: String,
        name: String,
        json: String,
    },
}

/// Parses `message_start`, `content_block_*`, `message_delta`, `message_stop`, `ping`, `error`.
#[derive(Default)]
pub(crate) struct AnthropicParser {
    blocks: BTreeMap<usize, Block>,
    tool_index: usize,
    usage: Usage,
    finish: Option<FinishReason>,
    done: bool,
    /// A delta of any kind (thinking included) arrived since the driver last asked.
    active: bool,
}

impl WireParser for AnthropicParser {
    fn take_activity(&mut self) -> bool {
        std::mem::take(&mut self.active)
    }

    fn event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError> {
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| LlmError::Protocol(format!("an event is not JSON ({e})")))?;
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(event.event.as_str())
            .to_owned();
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        let mut out = Vec::new();
        match kind.as_str() {
            "message_start" => {
                if let Some(n) = data
                    .pointer("/message/usage/input_tokens")
                    .and_then(Value::as_u64)
                {
                    self.usage.input_tokens = n;
                }
            }
            "content_block_start" => {
                let block = data.get("content_block").cloned().unwrap_or(Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let id = block
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let name = block
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        out.push(StreamEvent::ToolCallDelta {
                            index: self.tool_index,
                            id: Some(id.clone()),
                            name: Some(name.clone()),
                            arguments: String::new(),
                        });
                        self.blocks.insert(
                            index,
                            Block::ToolUse {
                                id,
                                name,
                                json: String::new(),
                            },
                        );
                    }
                    _ => {
                        if let Some(text) = block.get("text").and_then(Value::as_str) {
                            if !text.is_empty() {
                                out.push(StreamEvent::TextDelta(text.to_owned()));
                            }
                        }
                        self.blocks.insert(index, Block::Text);
                    }
                }
            }
            "content_block_delta" => {
                self.active = true;
                let delta = data.get("delta").cloned().unwrap_or(Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(t) = delta.get("text").and_then(Value::as_str) {
                            out.push(StreamEvent::TextDelta(t.to_owned()));
                        }
                    }
                    Some("input_json_delta") => {
                        let part = delta
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if let Some(Block::ToolUse { json, .. }) = self.blocks.get_mut(&index) {
                            json.push_str(part);
                            out.push(StreamEvent::ToolCallDelta {
                                index: self.tool_index,
                                id: None,
                                name: None,
                                arguments: part.to_owned(),
                            });
                        } else {
                            return Err(LlmError::Protocol(
                                "tool input for a block that is not a tool call".into(),
                            ));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(Block::ToolUse { id, name, json }) = self.blocks.remove(&index) {
                    self.tool_index += 1;
                    out.push(StreamEvent::ToolCall(ToolCall {
                        id,
                        name,
                        arguments: if json.trim().is_empty() {
                            "{}".into()
                        } else {
                            json
                        },
                    }));
                }
            }
            "message_delta" => {
                if let Some(n) = data.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.usage.output_tokens = n;
                }
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.finish = Some(match reason {
                        "end_turn" | "stop_sequence" => FinishReason::Stop,
                        "max_tokens" => FinishReason::Length,
                        "tool_use" => FinishReason::ToolCalls,
                        "refusal" => FinishReason::ContentFilter,
                        other => FinishReason::Other(other.to_owned()),
                    });
                }
            }
            "message_stop" => {
                out.push(StreamEvent::Usage(self.usage));
                out.push(StreamEvent::Finish(
                    self.finish.take().unwrap_or(FinishReason::Stop),
                ));
                self.done = true;
            }
            "error" => {
                let message = data
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_owned();
                return Err(LlmError::Upstream(message));
            }
            _ => {}
        }
        Ok(out)
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, LlmError> {
        if self.done {
            Ok(Vec::new())
        } else {
            Err(LlmError::Protocol(
                "the stream ended before the answer was finished".into(),
            ))
        }
    }

    fn finished(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    fn ev(data: Value) -> SseEvent {
        SseEvent {
            event: String::new(),
            data: data.to_string(),
        }
    }

    #[test]
    fn assembles_a_tool_use_answer() {
        let mut p = AnthropicParser::default();
        let mut all = Vec::new();
        for d in [
            json!({"type":"message_start","message":{"usage":{"input_tokens":9}}}),
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me"}}),
            json!({"type":"content_block_stop","index":0}),
            json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"tu1","name":"calc","input":{}}}),
            json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"e\":"}}),
            json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"2}"}}),
            json!({"type":"content_block_stop","index":1}),
            json!({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":4}}),
            json!({"type":"message_stop"}),
        ] {
            all.extend(p.event(ev(d)).expect("parse"));
        }
        assert_eq!(all[0], StreamEvent::TextDelta("Let me".into()));
        assert!(all.contains(&StreamEvent::ToolCall(ToolCall {
            id: "tu1".into(),
            name: "calc".into(),
            arguments: "{\"e\":2}".into()
        })));
        assert!(all.contains(&StreamEvent::Usage(Usage {
            input_tokens: 9,
            output_tokens: 4
        })));
        assert_eq!(
            all.last(),
            Some(&StreamEvent::Finish(FinishReason::ToolCalls))
        );
    }

    #[test]
    fn request_moves_system_and_tool_results() {
        let mut req = ChatRequest::new(
            "claude",
            vec![
                Message::text(Role::System, "be brief"),
                Message::text(Role::User, "2+2?"),
                Message {
                    role: Role::Assistant,
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "t".into(),
                        name: "calc".into(),
                        arguments: "{\"e\":\"2+2\"}".into(),
                    }],
                    tool_call_id: None,
                },
                Message::tool_result("t", "4"),
            ],
        );
        req.max_tokens = Some(10);
        let body = request_body(&req);
        assert_eq!(body["system"], "be brief");
        assert_eq!(body["max_tokens"], 10);
        let messages = body["messages"].as_array().expect("array");
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[1]["content"][0]["type"], "tool_use");
        assert_eq!(messages[1]["content"][0]["input"]["e"], "2+2");
        assert_eq!(messages[2]["content"][0]["type"], "tool_result");
    }

    #[test]
    fn tool_choice_none_keeps_the_tools_defined() {
        let mut req = ChatRequest::new("claude", vec![Message::text(Role::User, "hi")]);
        req.tools = vec![crate::ToolSpec {
            name: "calc".into(),
            description: "d".into(),
            parameters: json!({"type": "object"}),
        }];
        req.tool_choice = Some(ToolChoice::None);
        let body = request_body(&req);
        assert_eq!(body["tool_choice"]["type"], "none");
        assert_eq!(body["tools"][0]["name"], "calc");
    }

    #[test]
    fn error_event_is_an_error() {
        let mut p = AnthropicParser::default();
        let r = p.event(ev(
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
        ));
        assert_eq!(r, Err(LlmError::Upstream("Overloaded".into())));
    }
}
