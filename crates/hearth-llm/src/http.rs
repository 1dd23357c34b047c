//! The streaming driver both wire formats share: send with retries (429/5xx, before the first
//! token only), then read SSE under first-token and idle deadlines, handing each event to the
//! format's parser. It runs in its own task and stops the moment the consumer drops the stream.

use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::{RequestBuilder, Response, StatusCode};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::sse::{SseDecoder, SseEvent};
use crate::{EventStream, LlmError, StreamEvent, Timeouts};

/// Largest single SSE event accepted from an upstream.
const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Turns SSE events of one wire format into normalized events.
pub(crate) trait WireParser: Send + 'static {
    /// Events for one SSE event.
    fn event(&mut self, event: SseEvent) -> Result<Vec<StreamEvent>, LlmError>;
    /// Events owed when the upstream closes the stream; an error if it closed too early.
    fn end(&mut self) -> Result<Vec<StreamEvent>, LlmError>;
    /// Whether the stream is complete (no more events should be read).
    fn finished(&self) -> bool;
    /// Whether output other than events (reasoning, thinking) arrived since the last call.
    fn take_activity(&mut self) -> bool;
}

/// An HTTP client with the connect timeout set.
pub(crate) fn client(timeouts: &Timeouts) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .pool_idle_timeout(Duration::from_secs(90))
        // Enough warm connections for bursts, without holding thousands idle after one.
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Starts the request in a task and returns its events.
fn spawn_stream<P: WireParser>(
    request: impl Fn() -> RequestBuilder + Send + Sync + 'static,
    parser: P,
    timeouts: Timeouts,
) -> EventStream {
    let (tx, rx) = mpsc::channel::<Result<StreamEvent, LlmError>>(64);
    tokio::spawn(async move {
        let result = tokio::select! {
            // The consumer went away: dropping the future drops the response and its connection.
            _ = tx.closed() => Ok(()),
            r = drive(&request, parser, timeouts, &tx) => r,
        };
        if let Err(err) = result {
            let _ = tx.send(Err(err)).await;
        }
    });
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Starts a completion: streamed through `parser`, or, when `stream` is off, one JSON answer
/// turned into the same events by `parse_whole`.
pub(crate) fn complete<P: WireParser>(
    request: impl Fn() -> RequestBuilder + Send + Sync + 'static,
    stream: bool,
    parser: P,
    parse_whole: fn(serde_json::Value) -> Result<Vec<StreamEvent>, LlmError>,
    timeouts: Timeouts,
) -> EventStream {
    if stream {
        spawn_stream(request, parser, timeouts)
    } else {
        spawn_once(request, parse_whole, timeouts)
    }
}

/// Sends a non-streaming request and turns its JSON answer into events with `parse`.
fn spawn_once(
    request: impl Fn() -> RequestBuilder + Send + Sync + 'static,
    parse: impl FnOnce(serde_json::Value) -> Result<Vec<StreamEvent>, LlmError> + Send + 'static,
    timeouts: Timeouts,
) -> EventStream {
    let (tx, rx) = mpsc::channel::<Result<StreamEvent, LlmError>>(64);
    tokio::spawn(async move {
        let once = async {
            let deadline = Instant::now() + timeouts.first_token;
            let response = send_with_retries(&request, &timeouts, deadline).await?;
            let body = tokio::time::timeout_at(deadline, read_capped(response, MAX_MODEL_LIST))
                .await
                .map_err(|_| LlmError::Timeout {
                    phase: "first token",
                    after: timeouts.first_token,
                })?
                .ok_or_else(|| LlmError::Protocol("the answer broke off".into()))?;
            let value = serde_json::from_slice(&body)
                .map_err(|e| LlmError::Protocol(format!("the answer is not JSON ({e})")))?;
            parse(value)
        };
        let result = tokio::select! {
            _ = tx.closed() => return,
            r = once => r,
        };
        match result {
            Ok(events) => {
                for e in events {
                    if tx.send(Ok(e)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
            }
        }
    });
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

async fn drive<P: WireParser>(
    request: &(impl Fn() -> RequestBuilder + Send + Sync),
    mut parser: P,
    timeouts: Timeouts,
    tx: &mpsc::Sender<Result<StreamEvent, LlmError>>,
) -> Result<(), LlmError> {
    let started = Instant::now();
    let first_token_deadline = started + timeouts.first_token;
    let response = send_with_retries(request, &timeouts, first_token_deadline).await?;
    let mut body = response.bytes_stream();
    let mut decoder = SseDecoder::new(MAX_EVENT_BYTES);
    let mut got_token = false;
    loop {
        let deadline = if got_token {
            Instant::now() + timeouts.idle
        } else {
            first_token_deadline
        };
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Err(_) => {
                return Err(if got_token {
                    LlmError::Timeout {
                        phase: "idle between tokens",
                        after: timeouts.idle,
                    }
                } else {
                    LlmError::Timeout {
                        phase: "first token",
                        after: timeouts.first_token,
                    }
                })
            }
            Ok(None) => {
                for event in decoder.finish().into_iter() {
                    for e in parser.event(event)? {
                        send(tx, e).await?;
                    }
                }
                for e in parser.end()? {
                    send(tx, e).await?;
                }
                return Ok(());
            }
            Ok(Some(Err(e))) => {
                return Err(LlmError::Protocol(format!(
                    "the connection broke mid-stream: {}",
                    error_text(&e)
                )))
            }
            Ok(Some(Ok(bytes))) => bytes,
        };
        let events = decoder
            .push(&chunk)
            .map_err(|e| LlmError::Protocol(e.to_string()))?;
        for event in events {
            for e in parser.event(event)? {
                got_token |= matches!(
                    e,
                    StreamEvent::TextDelta(_) | StreamEvent::ToolCallDelta { .. }
                );
                send(tx, e).await?;
            }
            got_token |= parser.take_activity();
            if parser.finished() {
                return Ok(());
            }
        }
    }
}

/// Hands an event to the consumer; a gone consumer ends the drive quietly.
async fn send(
    tx: &mpsc::Sender<Result<StreamEvent, LlmError>>,
    event: StreamEvent,
) -> Result<(), LlmError> {
    // If the receiver is gone the select in spawn_stream ends this task; nothing to report.
    let _ = tx.send(Ok(event)).await;
    Ok(())
}

async fn send_with_retries(
    request: &(impl Fn() -> RequestBuilder + Send + Sync),
    timeouts: &Timeouts,
    deadline: Instant,
) -> Result<Response, LlmError> {
    let mut attempt = 0u32;
    loop {
        let response = match tokio::time::timeout_at(deadline, request().send()).await {
            Err(_) => {
                return Err(LlmError::Timeout {
                    phase: "first token",
                    after: timeouts.first_token,
                })
            }
            Ok(Err(e)) if e.is_timeout() || e.is_connect() => {
                return Err(LlmError::Connect(error_text(&e)))
            }
            Ok(Err(e)) => return Err(LlmError::Connect(error_text(&e))),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
        if retryable && attempt < timeouts.max_retries {
            let wait = retry_after(&response)
                .unwrap_or_else(|| timeouts.backoff.saturating_mul(1 << attempt.min(16)));
            tracing::debug!(%status, attempt, wait_ms = wait.as_millis() as u64, "retrying provider call");
            if Instant::now() + wait >= deadline {
                return Err(status_error(response).await);
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
            continue;
        }
        return Err(status_error(response).await);
    }
}

fn retry_after(response: &Response) -> Option<Duration> {
    let secs: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Longest error body read from an upstream.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Largest model list accepted.
const MAX_MODEL_LIST: usize = 16 * 1024 * 1024;
/// Time allowed to read an error body.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads at most `limit` bytes of a body (the rest is dropped), or `None` on a transport error.
async fn read_capped(response: Response, limit: usize) -> Option<Vec<u8>> {
    let mut body = response.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.ok()?;
        out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())]);
        if out.len() >= limit {
            break;
        }
    }
    Some(out)
}

/// The error for a non-success status, with the upstream's own message when it sent one.
pub(crate) async fn status_error(response: Response) -> LlmError {
    let status = response.status().as_u16();
    let body = tokio::time::timeout(ERROR_BODY_TIMEOUT, read_capped(response, MAX_ERROR_BODY))
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    LlmError::Status {
        status,
        message: upstream_message(&String::from_utf8_lossy(&body)),
    }
}

/// The `error.message` (OpenAI and Anthropic shapes) of an error body, else its start.
pub(crate) fn upstream_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("message"))
            .and_then(|m| m.as_str())
            .map(str::to_owned)
    });
    let text = message.unwrap_or_else(|| body.trim().to_owned());
    let mut short: String = text.chars().take(300).collect();
    if short.is_empty() {
        short = "no details".into();
    }
    short
}

/// A reqwest error without the URL (which may carry credentials in a query).
fn error_text(e: &reqwest::Error) -> String {
    let mut text = strip_url(e);
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn strip_url(e: &reqwest::Error) -> String {
    let text = e.to_string();
    match e.url() {
        Some(url) => text
            .replace(&format!(" ({url})"), "")
            .replace(url.as_str(), "<url>"),
        None => text,
    }
}

/// Joins a base URL and a path without doubling slashes.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// POSTs a JSON request and reads a JSON answer (embeddings), retrying on 429 and 5xx like a
/// stream does before its first token; the first-token timeout bounds the whole call.
pub(crate) async fn post_json(
    request: &(impl Fn() -> RequestBuilder + Send + Sync),
    timeouts: &Timeouts,
    phase: &'static str,
    limit: usize,
) -> Result<serde_json::Value, LlmError> {
    let deadline = Instant::now() + timeouts.first_token;
    let timeout = || LlmError::Timeout {
        phase,
        after: timeouts.first_token,
    };
    let response = send_with_retries(request, timeouts, deadline)
        .await
        .map_err(|e| match e {
            LlmError::Timeout { .. } => timeout(),
            e => e,
        })?;
    let body = tokio::time::timeout_at(deadline, read_capped(response, limit))
        .await
        .map_err(|_| timeout())?
        .ok_or_else(|| LlmError::Protocol(format!("the {phase} answer broke off")))?;
    serde_json::from_slice(&body)
        .map_err(|e| LlmError::Protocol(format!("the {phase} answer is not JSON: {e}")))
}

/// GETs JSON (model lists) with the first-token timeout as the whole budget.
pub(crate) async fn get_json(
    request: RequestBuilder,
    timeouts: &Timeouts,
) -> Result<serde_json::Value, LlmError> {
    let response = match tokio::time::timeout(timeouts.first_token, request.send()).await {
        Err(_) => {
            return Err(LlmError::Timeout {
                phase: "model list",
                after: timeouts.first_token,
            })
        }
        Ok(Err(e)) => return Err(LlmError::Connect(error_text(&e))),
        Ok(Ok(r)) => r,
    };
    if !response.status().is_success() {
        return Err(status_error(response).await);
    }
    let body = tokio::time::timeout(timeouts.first_token, read_capped(response, MAX_MODEL_LIST))
        .await
        .map_err(|_| LlmError::Timeout {
            phase: "model list",
            after: timeouts.first_token,
        })?
        .ok_or_else(|| LlmError::Protocol("the model list broke off".into()))?;
    serde_json::from_slice(&body)
        .map_err(|e| LlmError::Protocol(format!("model list is not JSON: {e}")))
}
