//! Completions without a conversation, for the OpenAI-compatible API: the caller's messages go
//! to the resolved model as they are, tool calls go back to the caller, and every call is
//! recorded for usage and the daily quota like a chat run's.

use std::time::Instant;

use futures_util::StreamExt as _;
use hearth_llm::{ChatRequest, EventStream, StreamEvent, Usage};
use hearth_store::ids::LlmCallId;
use hearth_store::{LlmCall, Timestamp};
use tokio::sync::mpsc;

use super::Chat;
use crate::access::{self, Principal};
use crate::error::Result;

impl Chat {
    /// Streams a completion from the model called `request.model` (a Hearth model name or
    /// alias). Dropping the stream cancels the upstream call; the call is recorded either way.
    pub async fn complete_direct(
        &self,
        principal: &Principal,
        mut request: ChatRequest,
    ) -> Result<(String, EventStream)> {
        let resolved = self.providers.resolve(principal, &request.model).await?;
        let owner = access::list_scope(principal);
        self.check_quota(owner).await?;
        let name = resolved.model.name.clone();
        request.model = resolved.model.upstream_id.clone();
        // A model that cannot stream answers whole; the caller still gets a stream.
        request.stream = resolved.model.supports_streaming;
        let input_chars: usize = request.messages.iter().map(|m| m.content.len()).sum();
        let mut upstream = resolved.provider.stream(request);
        let (tx, rx) = mpsc::channel(64);
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut ttft = None;
            let mut usage = Usage::default();
            let mut tool_calls = 0i64;
            let mut error = None;
            let mut produced = String::new();
            loop {
                let next = tokio::select! {
                    _ = tx.closed() => {
                        error = Some("the client went away".to_owned());
                        break;
                    }
                    next = upstream.next() => next,
                };
                let Some(item) = next else { break };
                match &item {
                    Ok(StreamEvent::TextDelta(t)) => {
                        ttft.get_or_insert_with(|| started.elapsed());
                        produced.push_str(t);
                    }
                    Ok(StreamEvent::ToolCallDelta { arguments, .. }) => {
                        ttft.get_or_insert_with(|| started.elapsed());
                        produced.push_str(arguments);
                    }
                    Ok(StreamEvent::ToolCall(_)) => tool_calls += 1,
                    Ok(StreamEvent::Usage(u)) => usage = *u,
                    Ok(StreamEvent::Finish(_)) => {}
                    Err(e) => error = Some(e.to_string()),
                }
                if tx.send(item).await.is_err() {
                    error.get_or_insert_with(|| "the client went away".to_owned());
                    break;
                }
            }
            drop(upstream);
            if usage == Usage::default() {
                usage = super::estimate_usage(input_chars, &produced, &[]);
            }
            let call = LlmCall {
                id: LlmCallId::new(),
                user_id: Some(owner),
                run_id: None,
                source: "openai_api".into(),
                model: resolved.model.name.clone(),
                provider_id: Some(resolved.model.provider_id),
                input_tokens: usage.input_tokens as i64,
                output_tokens: usage.output_tokens as i64,
                latency_ms: started.elapsed().as_millis() as i64,
                ttft_ms: ttft.map(|d| d.as_millis() as i64),
                cost_usd: resolved.cost(usage.input_tokens, usage.output_tokens),
                tool_calls,
                error,
                created_at: Timestamp::now(),
            };
            recorder.record(call).await;
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok((name, Box::pin(stream)))
    }
}
