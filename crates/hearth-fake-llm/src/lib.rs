//! A scripted LLM upstream that speaks the real wire formats over real HTTP: OpenAI Chat
//! Completions (`/v1/chat/completions`, `/v1/models`) and Anthropic Messages
//! (`/anthropic/v1/messages`, `/anthropic/v1/models`), streamed as SSE.
//!
//! Each request takes the next queued [`Script`] (queued from Rust with [`FakeLlm::push`], or over
//! HTTP with `POST /_scripts`); with none queued it answers by a fixed rule: a model named
//! `tokens-N` streams N tokens as fast as it can (`tokens-slow`: 100 tokens 200 ms apart); when tools are offered and the last user
//! message says `calculate EXPR`, it calls the `calculator` tool, and after a tool result it
//! answers `The result is RESULT.`; otherwise it echoes `You said: TEXT`.
//! `POST /v1/embeddings` with model `fake-embed` answers deterministic 64-dimension vectors of
//! hashed words (texts sharing words are near each other, so retrieval through it can be
//! tested); a queued script whose first step is `Status` makes it fail instead (other queued
//! scripts are left for chat requests).
//! Every request body is recorded for assertions.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// One thing the upstream does while answering.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Stream this text, one word per chunk.
    Text(String),
    /// Stream a tool call, its arguments split in two chunks.
    ToolCall { name: String, arguments: String },
    /// Wait before the next chunk.
    Delay { ms: u64 },
    /// Answer with this HTTP status and an error body instead of a stream (must come first).
    Status { status: u16, message: String },
    /// Send an error event inside the stream and stop.
    StreamError(String),
    /// Send a chunk that is not JSON.
    Malformed,
    /// End the body without finishing the answer.
    Disconnect,
    /// Stop sending and keep the connection open (for timeout tests).
    Hang,
}

/// What one request gets.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Script {
    pub steps: Vec<Step>,
    /// Pause between chunks.
    #[serde(default)]
    pub chunk_delay_ms: u64,
    /// Usage to report (input, output); computed from the text when absent.
    #[serde(default)]
    pub usage: Option<(u64, u64)>,
}

impl Script {
    /// A script of these steps.
    pub fn new(steps: Vec<Step>) -> Self {
        Self {
            steps,
            ..Self::default()
        }
    }

    /// A plain text answer.
    pub fn text(text: &str) -> Self {
        Self::new(vec![Step::Text(text.into())])
    }
}

#[derive(Default)]
struct Shared {
    scripts: Mutex<VecDeque<Script>>,
    requests: Mutex<Vec<Value>>,
    /// Streams being written; lets tests see that a cancelled client closed its connection.
    active: tokio::sync::watch::Sender<usize>,
}

/// Counts a stream as active while it lives.
struct ActiveGuard(Arc<Shared>);

impl ActiveGuard {
    fn new(shared: Arc<Shared>) -> Self {
        shared.active.send_modify(|n| *n += 1);
        Self(shared)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.send_modify(|n| *n -= 1);
    }
}

/// A running fake upstream. Stops when dropped.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeLlm {
    /// Starts on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/models", get(openai_models))
            .route("/v1/chat/completions", post(openai_chat))
            .route("/v1/embeddings", post(openai_embeddings))
            .route("/anthropic/v1/models", get(anthropic_models))
            .route("/anthropic/v1/messages", post(anthropic_messages))
            .route("/_scripts", post(push_script))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// Base URL of the OpenAI-compatible API (`…/v1`).
    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Base URL of the Anthropic API (`…/anthropic/v1`).
    pub fn anthropic_url(&self) -> String {
        format!("http://{}/anthropic/v1", self.addr)
    }

    /// Queues the script for the next request.
    pub fn push(&self, script: Script) {
        lock(&self.shared.scripts).push_back(script);
    }

    /// Waits until no stream is being written (every client finished or hung up).
    pub async fn wait_idle(&self) {
        let mut rx = self.shared.active.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// How many streams are being written now.
    pub fn active_streams(&self) -> usize {
        *self.shared.active.borrow()
    }

    /// The bodies of all requests so far.
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.shared.requests).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn push_script(State(shared): State<Arc<Shared>>, Json(script): Json<Script>) -> StatusCode {
    lock(&shared.scripts).push_back(script);
    StatusCode::NO_CONTENT
}

const MODELS: [&str; 5] = [
    "fake-chat",
    "fake-tools",
    "tokens-500",
    "tokens-slow",
    "fake-embed",
];

/// Length of `fake-embed`'s vectors.
pub const EMBED_DIMENSIONS: usize = 64;

/// `fake-embed`'s vector for `text`: each lowercased word adds 1 at a position chosen by its
/// FNV-1a hash, then L2 normalization.
pub fn fake_embedding(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; EMBED_DIMENSIONS];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let hash = word
            .to_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        v[(hash % EMBED_DIMENSIONS as u64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else {
        v[0] = 1.0;
    }
    v
}

async fn openai_embeddings(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    lock(&shared.requests).push(body.clone());
    // Only a queued failure is for this endpoint; other scripts wait for a chat request.
    let failure = {
        let mut scripts = lock(&shared.scripts);
        match scripts.front().and_then(|s| s.steps.first()) {
            Some(Step::Status { status, message }) => {
                let failure = (*status, message.clone());
                scripts.pop_front();
                Some(failure)
            }
            _ => None,
        }
    };
    if let Some((status, message)) = failure {
        return error_response(status, &message, false);
    }
    let model = body["model"].as_str().unwrap_or_default();
    if model != "fake-embed" {
        return error_response(
            404,
            &format!("model `{model}` does not make embeddings"),
            false,
        );
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => return error_response(400, "input must be a string or a list of strings", false),
    };
    let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": fake_embedding(t)}))
        .collect();
    Json(json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    }))
    .into_response()
}

async fn openai_models() -> Json<Value> {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|id| json!({"id": id, "object": "model", "owned_by": "fake", "context_length": 8192}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

async fn anthropic_models() -> Json<Value> {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|id| json!({"id": id, "type": "model", "display_name": format!("Fake {id}")}))
        .collect();
    Json(json!({"data": data, "has_more": false}))
}

/// The script for a request: the queued one, or the fixed rule.
fn script_for(shared: &Shared, body: &Value, anthropic: bool) -> Script {
    lock(&shared.requests).push(body.clone());
    if let Some(s) = lock(&shared.scripts).pop_front() {
        return s;
    }
    let model = body["model"].as_str().unwrap_or_default();
    if model == "tokens-slow" {
        // 100 tokens, 200 ms apart: a stream that stays open for twenty seconds.
        let mut script = Script::text(&vec!["tok"; 100].join(" "));
        script.chunk_delay_ms = 200;
        return script;
    }
    if let Some(n) = model
        .strip_prefix("tokens-")
        .and_then(|n| n.parse::<usize>().ok())
    {
        let mut text = String::with_capacity(n * 4);
        for i in 0..n {
            text.push_str(if i == 0 { "tok" } else { " tok" });
        }
        return Script::text(&text);
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let has_tools = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    let last = messages.last().cloned().unwrap_or(Value::Null);
    let last_text = text_of(&last);
    if let Some(result) = tool_result_of(&last, anthropic) {
        return Script::text(&format!("The result is {result}."));
    }
    if has_tools {
        if let Some(expr) = last_text
            .to_lowercase()
            .find("calculate ")
            .map(|i| last_text[i + "calculate ".len()..].trim().to_owned())
        {
            return Script::new(vec![Step::ToolCall {
                name: "calculator".into(),
                arguments: json!({ "expression": expr }).to_string(),
            }]);
        }
    }
    Script::text(&format!("You said: {last_text}"))
}

fn text_of(message: &Value) -> String {
    match &message["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn tool_result_of(message: &Value, anthropic: bool) -> Option<String> {
    if anthropic {
        message["content"].as_array()?.iter().find_map(|b| {
            (b["type"] == "tool_result").then(|| match &b["content"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
    } else {
        (message["role"] == "tool").then(|| text_of(message))
    }
}

/// The answer of a script as one JSON body (for `stream: false`): text and tool calls only.
fn whole_answer(script: &Script, body: &Value, anthropic: bool) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for step in &script.steps {
        match step {
            Step::Text(t) => text.push_str(t),
            Step::ToolCall { name, arguments } => calls.push((
                format!("call_{}", calls.len() + 1),
                name.clone(),
                arguments.clone(),
            )),
            _ => {}
        }
    }
    let words = text.split_whitespace().count() as u64;
    let model = body["model"].as_str().unwrap_or_default();
    if anthropic {
        let mut content: Vec<Value> = Vec::new();
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
        for (id, name, args) in &calls {
            let input: Value = serde_json::from_str(args).unwrap_or(json!({}));
            content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
        let stop = if calls.is_empty() {
            "end_turn"
        } else {
            "tool_use"
        };
        return json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop, "usage": {"input_tokens": 10, "output_tokens": words}});
    }
    let tool_calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
        .collect();
    let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
    if !tool_calls.is_empty() {
        message["tool_calls"] = json!(tool_calls);
    }
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    json!({"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": words, "total_tokens": 10 + words}})
}

type Tx = mpsc::Sender<Result<Bytes, std::io::Error>>;

fn sse_response(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

fn error_response(status: u16, message: &str, anthropic: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if anthropic {
        json!({"type": "error", "error": {"type": "api_error", "message": message}})
    } else {
        json!({"error": {"message": message, "type": "server_error", "code": null}})
    };
    (status, Json(body)).into_response()
}

/// What the stream writer does after the scripted steps.
enum Ending {
    Finish,
    Abort,
    Hang,
}

/// Plays `script` in `wire`'s format into the response body.
async fn play<W: Wire>(script: Script, mut wire: W, tx: Tx, _active: ActiveGuard) {
    let delay = Duration::from_millis(script.chunk_delay_ms);
    let mut output_words = 0u64;
    let mut tool_calls = 0usize;
    let mut ending = Ending::Finish;
    let send = |bytes: String| {
        let tx = tx.clone();
        async move { tx.send(Ok(Bytes::from(bytes))).await.is_ok() }
    };
    if !send(wire.start()).await {
        return;
    }
    'steps: for step in &script.steps {
        match step {
            Step::Text(text) => {
                let mut first = true;
                for word in text.split(' ') {
                    let piece = if first {
                        word.to_owned()
                    } else {
                        format!(" {word}")
                    };
                    first = false;
                    output_words += 1;
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    if !send(wire.text(&piece)).await {
                        return;
                    }
                }
            }
            Step::ToolCall { name, arguments } => {
                let id = format!("call_{}", tool_calls + 1);
                let split = arguments
                    .char_indices()
                    .nth(arguments.chars().count() / 2)
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                for chunk in wire.tool_call(
                    tool_calls,
                    &id,
                    name,
                    &arguments[..split],
                    &arguments[split..],
                ) {
                    if !send(chunk).await {
                        return;
                    }
                }
                tool_calls += 1;
            }
            Step::Delay { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
            Step::Status { .. } => {}
            Step::StreamError(message) => {
                let _ = send(wire.error(message)).await;
                return;
            }
            Step::Malformed => {
                if !send("data: {this is not json\n\n".into()).await {
                    return;
                }
            }
            Step::Disconnect => {
                ending = Ending::Abort;
                break 'steps;
            }
            Step::Hang => {
                ending = Ending::Hang;
                break 'steps;
            }
        }
    }
    match ending {
        Ending::Finish => {
            let (input, output) = script.usage.unwrap_or((10, output_words));
            for chunk in wire.finish(tool_calls > 0, input, output) {
                if !send(chunk).await {
                    return;
                }
            }
        }
        // The body ends without the finishing chunk, as when a proxy or the upstream drops
        // the stream; what was sent before still arrives (an abort could discard it unflushed).
        Ending::Abort => {}
        Ending::Hang => {
            tx.closed().await;
        }
    }
}

/// One wire format's chunks.
trait Wire: Send + 'static {
    fn start(&mut self) -> String;
    fn text(&mut self, piece: &str) -> String;
    fn tool_call(
        &mut self,
        index: usize,
        id: &str,
        name: &str,
        args1: &str,
        args2: &str,
    ) -> Vec<String>;
    fn error(&mut self, message: &str) -> String;
    fn finish(&mut self, tool_calls: bool, input: u64, output: u64) -> Vec<String>;
}

struct OpenAiWire {
    model: String,
    include_usage: bool,
}

impl OpenAiWire {
    fn chunk(&self, delta: Value, finish: Value) -> String {
        let body = json!({
            "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        format!("data: {body}\n\n")
    }
}

impl Wire for OpenAiWire {
    fn start(&mut self) -> String {
        self.chunk(json!({"role": "assistant", "content": ""}), Value::Null)
    }
    fn text(&mut self, piece: &str) -> String {
        self.chunk(json!({"content": piece}), Value::Null)
    }
    fn tool_call(&mut self, index: usize, id: &str, name: &str, a1: &str, a2: &str) -> Vec<String> {
        vec![
            self.chunk(
                json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": a1}}]}),
                Value::Null,
            ),
            self.chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": a2}}]}),
                Value::Null,
            ),
        ]
    }
    fn error(&mut self, message: &str) -> String {
        format!(
            "data: {}\n\n",
            json!({"error": {"message": message, "type": "server_error"}})
        )
    }
    fn finish(&mut self, tool_calls: bool, input: u64, output: u64) -> Vec<String> {
        let reason = if tool_calls { "tool_calls" } else { "stop" };
        let mut out = vec![self.chunk(json!({}), json!(reason))];
        if self.include_usage {
            let usage = json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0,
                "model": self.model, "choices": [],
                "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}});
            out.push(format!("data: {usage}\n\n"));
        }
        out.push("data: [DONE]\n\n".into());
        out
    }
}

#[derive(Default)]
struct AnthropicWire {
    block: usize,
    text_open: bool,
}

fn event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

impl AnthropicWire {
    fn close_text(&mut self) -> Option<String> {
        if self.text_open {
            self.text_open = false;
            let s = event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": self.block}),
            );
            self.block += 1;
            Some(s)
        } else {
            None
        }
    }
}

impl Wire for AnthropicWire {
    fn start(&mut self) -> String {
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message",
            "role": "assistant", "content": [], "model": "fake", "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        )
    }
    fn text(&mut self, piece: &str) -> String {
        let mut out = String::new();
        if !self.text_open {
            self.text_open = true;
            out.push_str(&event(
                "content_block_start",
                json!({"type": "content_block_start", "index": self.block,
                "content_block": {"type": "text", "text": ""}}),
            ));
        }
        out.push_str(&event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.block,
            "delta": {"type": "text_delta", "text": piece}}),
        ));
        out
    }
    fn tool_call(
        &mut self,
        _index: usize,
        id: &str,
        name: &str,
        a1: &str,
        a2: &str,
    ) -> Vec<String> {
        let mut out: Vec<String> = self.close_text().into_iter().collect();
        let i = self.block;
        out.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": i,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        ));
        for part in [a1, a2] {
            out.push(event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": i,
                "delta": {"type": "input_json_delta", "partial_json": part}}),
            ));
        }
        out.push(event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        ));
        self.block += 1;
        out
    }
    fn error(&mut self, message: &str) -> String {
        event(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": message}}),
        )
    }
    fn finish(&mut self, tool_calls: bool, _input: u64, output: u64) -> Vec<String> {
        let mut out: Vec<String> = self.close_text().into_iter().collect();
        let reason = if tool_calls { "tool_use" } else { "end_turn" };
        out.push(event("message_delta", json!({"type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": {"output_tokens": output}})));
        out.push(event("message_stop", json!({"type": "message_stop"})));
        out
    }
}

async fn openai_chat(State(shared): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let script = script_for(&shared, &body, false);
    if let Some(Step::Status { status, message }) = script.steps.first() {
        return error_response(*status, message, false);
    }
    let wire = OpenAiWire {
        model: body["model"].as_str().unwrap_or_default().to_owned(),
        include_usage: body["stream_options"]["include_usage"].as_bool() == Some(true),
    };
    if body["stream"].as_bool() != Some(true) {
        return Json(whole_answer(&script, &body, false)).into_response();
    }
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(play(script, wire, tx, ActiveGuard::new(shared.clone())));
    sse_response(rx)
}

async fn anthropic_messages(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if headers.get("anthropic-version").is_none() {
        return error_response(400, "anthropic-version header is required", true);
    }
    let script = script_for(&shared, &body, true);
    if let Some(Step::Status { status, message }) = script.steps.first() {
        return error_response(*status, message, true);
    }
    if body["stream"].as_bool() != Some(true) {
        return Json(whole_answer(&script, &body, true)).into_response();
    }
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(play(
        script,
        AnthropicWire::default(),
        tx,
        ActiveGuard::new(shared.clone()),
    ));
    sse_response(rx)
}
