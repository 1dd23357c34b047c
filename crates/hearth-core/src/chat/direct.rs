//! Completions without a conversation, for the OpenAI-compatible API: the caller's messages go
//! to the resolved model as they are, tool calls go back to the caller, and every call is
//! recorded for usage and the daily quota like a chat run's.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::Stream;
use hearth_llm::{ChatRequest, EventStream, LlmError, StreamEvent, Usage};
use hearth_store::ids::UserId;

use super::Chat;
use crate::access::{self, Principal};
use crate::error::Result;
use crate::providers::ResolvedModel;

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
        // A completion holds one of the user's answer slots while it streams, like a run.
        let slot = self
            .hub
            .hold(owner, self.config.max_runs_per_user)
            .ok_or_else(|| crate::error::CoreError::QuotaExceeded {
                message: format!(
                    "you have {} answers in progress, the most one user may have at once \
                     (chat.max_runs_per_user)",
                    self.config.max_runs_per_user
                ),
                retry_after_secs: 5,
            })?;
        // The caller's max_tokens, capped: what the call may spend is reserved up front.
        let cap = self.config.max_output_tokens;
        request.max_tokens = Some(request.max_tokens.map_or(cap, |m| m.min(cap)));
        request.max_completion_tokens = request.max_completion_tokens.map(|m| m.min(cap));
        let reservation = self
            .quota
            .reserve(
                owner,
                self.call_estimate(
                    &request.messages,
                    request.max_completion_tokens.or(request.max_tokens),
                ),
            )
            .await?;
        let name = resolved.model.name.clone();
        request.model = resolved.model.upstream_id.clone();
        // A model that cannot stream answers whole; the caller still gets a stream.
        request.stream = resolved.model.supports_streaming;
        let input_chars: usize = request.messages.iter().map(|m| m.content.len()).sum();
        let upstream = resolved.provider.start(request)?;
        let meter = Meter {
            recorder: self.recorder.clone(),
            owner,
            resolved,
            started: Instant::now(),
            ttft: None,
            usage: Usage::default(),
            tool_calls: 0,
            error: None,
            input_chars,
            output_chars: 0,
            reservation,
            _slot: slot,
        };
        Ok((
            name,
            Box::pin(Metered {
                inner: upstream,
                meter: Some(meter),
            }),
        ))
    }
}

/// What one direct call did, recorded when its stream ends or is dropped.
struct Meter {
    recorder: crate::usage::Recorder,
    owner: UserId,
    resolved: ResolvedModel,
    started: Instant,
    ttft: Option<std::time::Duration>,
    usage: Usage,
    tool_calls: usize,
    error: Option<String>,
    input_chars: usize,
    output_chars: usize,
    /// Given back once the record is committed.
    reservation: crate::usage::Reservation,
    /// The user's answer slot, held until the stream ends or is dropped.
    _slot: super::runs::HubSlot,
}

impl Meter {
    fn observe(&mut self, item: &std::result::Result<StreamEvent, LlmError>) {
        match item {
            Ok(StreamEvent::TextDelta(t)) => {
                self.ttft.get_or_insert_with(|| self.started.elapsed());
                self.output_chars += t.len();
            }
            Ok(StreamEvent::ToolCallDelta { arguments, .. }) => {
                self.ttft.get_or_insert_with(|| self.started.elapsed());
                self.output_chars += arguments.len();
            }
            Ok(StreamEvent::ToolCall(_)) => self.tool_calls += 1,
            Ok(StreamEvent::Usage(u)) => self.usage = *u,
            Ok(StreamEvent::Finish(_)) => {}
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Records the call off the stream's path (the write is batched with others).
    fn record(mut self) {
        if self.usage == Usage::default() {
            self.usage = crate::usage::estimate(self.input_chars, self.output_chars);
        }
        let call = crate::usage::CallOutcome {
            user: self.owner,
            run: None,
            source: "openai_api",
            usage: self.usage,
            latency: self.started.elapsed(),
            ttft: self.ttft,
            tool_calls: self.tool_calls,
            error: self.error,
        }
        .record_for(&self.resolved);
        let (recorder, reservation) = (self.recorder, self.reservation);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                recorder.record(call).await;
                drop(reservation);
            });
        }
    }
}

/// The upstream stream, observed in place: no task or channel between it and the caller.
struct Metered {
    inner: EventStream,
    meter: Option<Meter>,
}

impl Stream for Metered {
    type Item = std::result::Result<StreamEvent, LlmError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(item)) => {
                if let Some(meter) = self.meter.as_mut() {
                    meter.observe(item);
                }
            }
            Poll::Ready(None) => {
                if let Some(meter) = self.meter.take() {
                    meter.record();
                }
            }
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        if let Some(mut meter) = self.meter.take() {
            meter
                .error
                .get_or_insert_with(|| "the client went away".to_owned());
            meter.record();
        }
    }
}
