//! The task behind a run: stream from the model, execute tool calls under their policy, feed
//! results back until the model answers (or the round limit), checkpoint the partial answer,
//! record each model call, and end with one `done` event and the stored event log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use hearth_llm::{ChatRequest, LlmError, Message as LlmMessage, StreamEvent, ToolCall, Usage};
use hearth_store::ids::{ConversationId, MessageId};

use super::api::{MessageStatus, RunEventKind, RunStatus};
use super::content::{Content, Part, Source, ToolCallStatus};
use super::runs::LiveRun;
use super::{Chat, ToolPolicy};
use crate::providers::ResolvedModel;

/// The partial answer is written to the store at most this often while streaming...
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// ...and less often when many runs are live, so that all of them together write about this
/// many checkpoints a second (10,000 live runs checkpoint every 20 s, not 10,000 writes a second).
const CHECKPOINTS_PER_SEC: f64 = 500.0;

/// How long a run waits between checkpoints while `live_runs` runs are going.
fn checkpoint_interval(live_runs: usize) -> Duration {
    CHECKPOINT_EVERY.max(Duration::from_secs_f64(
        live_runs as f64 / CHECKPOINTS_PER_SEC,
    ))
}

pub(super) struct Job {
    /// Whether the run's message and run rows were written (`None` while they are being
    /// written): the task streams meanwhile but writes nothing until they are there, and
    /// ends silently if they could not be written.
    pub stored: tokio::sync::watch::Receiver<Option<bool>>,
    pub chat: Chat,
    pub run: Arc<LiveRun>,
    pub owner: hearth_store::ids::UserId,
    pub conversation_id: ConversationId,
    pub parent_id: MessageId,
    pub message_id: MessageId,
    pub resolved: ResolvedModel,
    pub history: Vec<LlmMessage>,
    /// The tools of this run: the shared ones and those bound to its user.
    pub registry: Arc<hearth_tools::Registry>,
    /// Names of the tools offered.
    pub tools: Vec<String>,
    /// Who the answer is for (memory extraction saves as them).
    pub principal: crate::access::Principal,
    /// The run's sources: retrieved before the answer, and appended by `kb_search`.
    pub sources: Arc<std::sync::Mutex<Vec<Source>>>,
    /// Whether the model has read content nobody vouched for: retrieved passages, or any tool's
    /// output. From then on the tools of `chat.ask_after_untrusted` ask before they run, and no
    /// memories are extracted from the answer.
    pub read_untrusted: bool,
    /// The user's message as they wrote it (without the quoted context).
    pub question: String,
    /// Tokens reserved against the daily quota; given back when the run ends (its calls are
    /// recorded by then).
    pub _reservation: crate::usage::Reservation,
}

/// The characters of a history, for estimating its tokens.
pub(super) fn request_history_chars(history: &[LlmMessage]) -> usize {
    history
        .iter()
        .map(|m| {
            m.content.len()
                + m.tool_calls
                    .iter()
                    .map(|c| c.arguments.len())
                    .sum::<usize>()
        })
        .sum()
}

/// How one model call ended.
enum CallEnd {
    Finished,
    Failed(LlmError),
    Cancelled,
}

impl Job {
    pub(super) async fn execute(mut self) {
        let mut content = Content::default();
        self.publish_new_sources(&mut content);
        let (status, error) = self.rounds(&mut content).await;
        if self.stored().await {
            self.finish(content, status, error).await;
        } else {
            self.chat.hub.remove(self.run.id);
            self.run.finish();
        }
    }

    /// Waits until the run's rows are written; false when they could not be (the run was
    /// given up, and nothing of it is to be written).
    async fn stored(&self) -> bool {
        let mut stored = self.stored.clone();
        let result = matches!(
            stored.wait_for(Option::is_some).await.as_deref(),
            Ok(Some(true))
        );
        result
    }

    async fn rounds(&mut self, content: &mut Content) -> (RunStatus, Option<String>) {
        let max_rounds = self.chat.config.max_tool_rounds;
        let specs = if self.resolved.model.supports_tools {
            self.registry.specs(Some(&self.tools))
        } else {
            Vec::new()
        };
        let mut last_checkpoint = Instant::now();
        let mut checkpoint_every = checkpoint_interval(self.chat.hub.len());
        for round in 0..=max_rounds {
            // The run's reservation covers its first call; each later one (after tool
            // results) reserves again, so a tool loop cannot run past the quota.
            let _round = if round == 0 {
                None
            } else {
                let estimate = self.chat.call_estimate(&self.history, None);
                match self.chat.quota.reserve(self.owner, estimate).await {
                    Ok(reservation) => Some(reservation),
                    Err(e) => {
                        let message = e.to_string();
                        self.run.publish(RunEventKind::Error {
                            code: "quota_exceeded".into(),
                            message: message.clone(),
                        });
                        return (RunStatus::Error, Some(message));
                    }
                }
            };
            let mut request = ChatRequest::new(
                self.resolved.model.upstream_id.clone(),
                self.history.clone(),
            );
            // On the last round the model may not call tools, so it has to answer in words. The
            // tools stay defined: some providers refuse a history with tool calls and no tools.
            request.stream = self.resolved.model.supports_streaming;
            request.max_tokens = Some(self.chat.config.max_output_tokens);
            request.tools = specs.clone();
            if round == max_rounds && !specs.is_empty() {
                request.tool_choice = Some(hearth_llm::ToolChoice::None);
            }
            let started = Instant::now();
            let mut ttft = None;
            let mut usage = Usage::default();
            let mut calls: Vec<ToolCall> = Vec::new();
            let mut round_text = String::new();
            let mut stream = self.resolved.provider.stream(request);
            let end = loop {
                let next = tokio::select! {
                    _ = self.run.cancel.cancelled() => break CallEnd::Cancelled,
                    next = stream.next() => next,
                };
                match next {
                    None => break CallEnd::Finished,
                    Some(Ok(StreamEvent::TextDelta(text))) => {
                        ttft.get_or_insert_with(|| started.elapsed());
                        round_text.push_str(&text);
                        content.push_text(&text);
                        self.run.publish(RunEventKind::TextDelta { text });
                        if last_checkpoint.elapsed() >= checkpoint_every
                            && *self.stored.borrow() == Some(true)
                        {
                            last_checkpoint = Instant::now();
                            checkpoint_every = checkpoint_interval(self.chat.hub.len());
                            self.checkpoint(content).await;
                        }
                    }
                    Some(Ok(StreamEvent::ToolCallDelta { .. })) => {
                        ttft.get_or_insert_with(|| started.elapsed());
                    }
                    Some(Ok(StreamEvent::ToolCall(call))) => calls.push(call),
                    Some(Ok(StreamEvent::Usage(u))) => usage = u,
                    Some(Ok(StreamEvent::Finish(_))) => {}
                    Some(Err(e)) => break CallEnd::Failed(e),
                }
            };
            drop(stream);
            let error = match &end {
                CallEnd::Failed(e) => Some(e.to_string()),
                CallEnd::Cancelled => Some("stopped".to_owned()),
                CallEnd::Finished => None,
            };
            // A stopped or broken stream carries no usage; count what was produced anyway, or
            // stopping every answer at the end would spend no quota.
            if usage == Usage::default() {
                let output =
                    round_text.len() + calls.iter().map(|c| c.arguments.len()).sum::<usize>();
                usage = crate::usage::estimate(request_history_chars(&self.history), output);
            }
            if !self.stored().await {
                return (RunStatus::Stopped, None);
            }
            self.record_call(usage, started.elapsed(), ttft, calls.len(), error)
                .await;
            if usage != Usage::default() {
                self.run.publish(RunEventKind::Usage {
                    input_tokens: usage.input_tokens,
                    output_tokens: usage.output_tokens,
                });
            }
            match end {
                CallEnd::Cancelled => return (RunStatus::Stopped, None),
                CallEnd::Failed(e) => {
                    let message = e.to_string();
                    self.run.publish(RunEventKind::Error {
                        code: e.code().into(),
                        message: message.clone(),
                    });
                    return (RunStatus::Error, Some(message));
                }
                CallEnd::Finished => {}
            }
            if calls.is_empty() || round == max_rounds {
                return (RunStatus::Complete, None);
            }
            self.history.push(LlmMessage {
                role: hearth_llm::Role::Assistant,
                content: round_text,
                tool_calls: calls.clone(),
                tool_call_id: None,
            });
            for call in calls {
                content.parts.push(Part::ToolCall {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                    status: ToolCallStatus::Pending,
                    output: None,
                });
                self.run.publish(RunEventKind::ToolCall {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                });
                let Some((status, output)) = self.call_tool(&call).await else {
                    content.settle_call(&call.id, ToolCallStatus::Denied, "stopped".into());
                    return (RunStatus::Stopped, None);
                };
                self.publish_new_sources(content);
                content.settle_call(&call.id, status, output.clone());
                self.run.publish(RunEventKind::ToolResult {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    status,
                    output: output.clone(),
                });
                // Whatever a tool returned came from outside the conversation.
                self.read_untrusted = true;
                let for_model = match status {
                    ToolCallStatus::Ok => output,
                    _ => format!("error: {output}"),
                };
                self.history
                    .push(LlmMessage::tool_result(call.id, for_model));
            }
            self.checkpoint(content).await;
        }
        (RunStatus::Complete, None)
    }

    /// Takes the sources added since `content` last took them (retrieval before the answer,
    /// then `kb_search` calls) and publishes them.
    fn publish_new_sources(&self, content: &mut Content) {
        let all = self
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if all.len() > content.sources.len() {
            let new = all[content.sources.len()..].to_vec();
            content.sources = all;
            self.run.publish(RunEventKind::Sources { sources: new });
        }
    }

    /// Runs one tool call under its policy. `None` when the run was stopped meanwhile.
    async fn call_tool(&self, call: &ToolCall) -> Option<(ToolCallStatus, String)> {
        if let Some(refusal) = self.authorize(call).await? {
            return Some(refusal);
        }
        let limit = Duration::from_secs(self.chat.config.tool_timeout_secs);
        // A task of its own, so a tool that panics fails its call, not the run.
        let (tools, name, arguments) = (
            self.registry.clone(),
            call.name.clone(),
            call.arguments.clone(),
        );
        let mut task = tokio::spawn(async move { tools.call(&name, &arguments).await });
        let result = tokio::select! {
            _ = self.run.cancel.cancelled() => {
                task.abort();
                return None;
            }
            r = tokio::time::timeout(limit, &mut task) => r,
        };
        Some(match result {
            Ok(Ok(Ok(output))) => (ToolCallStatus::Ok, output),
            Ok(Ok(Err(e))) => (ToolCallStatus::Error, e.to_string()),
            Ok(Err(_)) => (ToolCallStatus::Error, "the tool failed unexpectedly".into()),
            Err(_) => {
                task.abort();
                (
                    ToolCallStatus::Error,
                    format!("the tool did not finish within {} s", limit.as_secs()),
                )
            }
        })
    }

    /// Applies the tool's policy: `Some(None)` to go ahead, `Some(Some(refusal))` when it may
    /// not run, `None` when the run was stopped while waiting for an approval.
    async fn authorize(&self, call: &ToolCall) -> Option<Option<(ToolCallStatus, String)>> {
        let config = &self.chat.config;
        if !self.tools.iter().any(|t| t == &call.name) {
            return Some(Some((
                ToolCallStatus::Error,
                format!(
                    "unknown tool `{}`; available: {}",
                    call.name,
                    self.tools.join(", ")
                ),
            )));
        }
        let policy = match config.policy(&call.name) {
            ToolPolicy::Auto
                if self.read_untrusted
                    && config.ask_after_untrusted.iter().any(|t| t == &call.name) =>
            {
                ToolPolicy::Ask
            }
            policy => policy,
        };
        match policy {
            ToolPolicy::Deny => Some(Some((
                ToolCallStatus::Denied,
                "this tool is disabled by policy".into(),
            ))),
            ToolPolicy::Auto => Some(None),
            ToolPolicy::Ask => {
                let answer = self.run.await_approval(&call.id);
                self.run.publish(RunEventKind::ToolApprovalRequired {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                    timeout_secs: config.approval_timeout_secs,
                });
                let wait = Duration::from_secs(config.approval_timeout_secs);
                let approved = tokio::select! {
                    _ = self.run.cancel.cancelled() => {
                        self.run.drop_approval(&call.id);
                        return None;
                    }
                    r = tokio::time::timeout(wait, answer) => r,
                };
                Some(match approved {
                    Ok(Ok(true)) => None,
                    Ok(Ok(false)) | Ok(Err(_)) => {
                        Some((ToolCallStatus::Denied, "the user declined this call".into()))
                    }
                    Err(_) => {
                        self.run.drop_approval(&call.id);
                        Some((
                            ToolCallStatus::Denied,
                            "the approval timed out, so the call was declined".into(),
                        ))
                    }
                })
            }
        }
    }

    async fn checkpoint(&self, content: &Content) {
        let result = match self.chat.seal_content(self.owner, self.message_id, content) {
            Ok(enc) => self
                .chat
                .store
                .update_message(
                    self.message_id,
                    Some(&enc),
                    MessageStatus::Streaming.as_str(),
                    None,
                )
                .await
                .map_err(crate::CoreError::from),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(run = %self.run.id, error = %e, "could not checkpoint a streaming answer");
        }
    }

    async fn record_call(
        &self,
        usage: Usage,
        latency: Duration,
        ttft: Option<Duration>,
        tool_calls: usize,
        error: Option<String>,
    ) {
        let call = crate::usage::CallOutcome {
            user: self.owner,
            run: Some(self.run.id),
            source: "chat",
            usage,
            latency,
            ttft,
            tool_calls,
            error,
        }
        .record_for(&self.resolved);
        self.chat.recorder.record(call).await;
    }

    /// Stores the answer and the event log, publishes `done`, and leaves the hub.
    async fn finish(self, content: Content, status: RunStatus, error: Option<String>) {
        let message_status = match status {
            RunStatus::Complete | RunStatus::Running => MessageStatus::Complete,
            RunStatus::Error => MessageStatus::Error,
            RunStatus::Stopped => MessageStatus::Stopped,
        };
        let stored = async {
            let enc = self
                .chat
                .seal_content(self.owner, self.message_id, &content)?;
            self.chat
                .store
                .update_message(
                    self.message_id,
                    Some(&enc),
                    message_status.as_str(),
                    error.as_deref(),
                )
                .await?;
            let conv = self
                .chat
                .store
                .find_conversation(self.conversation_id)
                .await?
                .ok_or(crate::CoreError::NotFound("conversation"))?;
            let all = self.chat.store.list_messages(conv.id).await?;
            let m = all
                .iter()
                .find(|m| m.id == self.message_id)
                .ok_or(crate::CoreError::NotFound("message"))?;
            self.chat.message_view(self.owner, m, &all).await
        }
        .await;
        let message = match stored {
            Ok(view) => view,
            Err(e) => {
                // The conversation may have been deleted mid-answer; report what was produced.
                tracing::warn!(run = %self.run.id, error = %e, "could not store the finished answer");
                super::api::MessageView {
                    id: self.message_id,
                    conversation_id: self.conversation_id,
                    parent_id: Some(self.parent_id),
                    role: super::api::MessageRole::Assistant,
                    content: content.plain_text(),
                    parts: content.parts.clone(),
                    sources: content.sources.clone(),
                    model: Some(self.resolved.model.name.clone()),
                    status: message_status,
                    error: error.clone(),
                    created_at: chrono::Utc::now(),
                    sibling_ids: vec![self.message_id],
                    run_id: None,
                }
            }
        };
        let answer = message.content.clone();
        // Whoever sees `done` may ask again at once.
        self.chat.hub.release_share(&self.run);
        self.run.publish(RunEventKind::Done {
            status,
            message: Box::new(message),
        });
        self.chat.close_run(&self.run, status).await;
        if let (RunStatus::Complete, Some(memories)) = (status, &self.chat.memories) {
            // An answer shaped by untrusted content could carry a planted "fact".
            if memories.settings().extract && !self.read_untrusted {
                let question = self.question.clone();
                tokio::spawn(super::remember::extract(
                    memories.clone(),
                    self.chat.recorder.clone(),
                    self.principal.clone(),
                    self.resolved.clone(),
                    self.conversation_id,
                    question,
                    answer,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::checkpoint_interval;
    use std::time::Duration;

    #[test]
    fn checkpoints_thin_out_with_many_live_runs() {
        assert_eq!(checkpoint_interval(0), Duration::from_secs(1));
        assert_eq!(checkpoint_interval(500), Duration::from_secs(1));
        assert_eq!(checkpoint_interval(10_000), Duration::from_secs(20));
    }
}
