//! Memory in chat: relevant memories join the system prompt, the `memory_save` tool keeps a
//! fact the user asks to be remembered, and (when enabled) facts are extracted after an answer.

use futures_util::future::BoxFuture;
use futures_util::StreamExt as _;
use hearth_llm::{ChatRequest, Message as LlmMessage, Role, StreamEvent, ToolSpec};
use hearth_store::ids::ConversationId;
use hearth_tools::{Tool, ToolError};
use serde_json::json;

use crate::access::Principal;
use crate::memory::{self, Memories, MemorySource};
use crate::providers::ResolvedModel;
use crate::usage::{self, CallOutcome, Recorder};

/// The tool's name.
pub const MEMORY_SAVE: &str = "memory_save";

/// What `memory_save` looks like to a model.
pub fn memory_save_spec() -> ToolSpec {
    ToolSpec {
        name: MEMORY_SAVE.into(),
        description: "Remember a durable fact about the user for future conversations (when \
            they ask you to remember something, or state a lasting preference). One short \
            sentence in the third person."
            .into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "The fact, e.g. \"The user prefers metric units.\""}
            },
            "required": ["text"],
            "additionalProperties": false
        }),
    }
}

/// The `memory_save` tool of one run: saves as the run's user, for its conversation.
pub struct MemorySave {
    pub memories: Memories,
    pub principal: Principal,
    pub conversation: ConversationId,
}

impl Tool for MemorySave {
    fn spec(&self) -> ToolSpec {
        memory_save_spec()
    }

    fn call(&self, arguments: serde_json::Value) -> BoxFuture<'_, Result<String, ToolError>> {
        Box::pin(async move {
            let text = arguments["text"].as_str().unwrap_or_default();
            let saved = self
                .memories
                .create(
                    &self.principal,
                    text,
                    MemorySource::Saved,
                    Some(self.conversation),
                )
                .await
                .map_err(|e| ToolError::Failed(e.to_string()))?;
            Ok(format!("Saved to memory: {}", saved.text))
        })
    }
}

/// Asks the answering model for facts worth remembering from one exchange and saves the new
/// ones. Errors are logged: extraction never affects the answer.
pub async fn extract(
    memories: Memories,
    recorder: Recorder,
    principal: Principal,
    resolved: ResolvedModel,
    conversation: ConversationId,
    question: String,
    answer: String,
) {
    let started = std::time::Instant::now();
    let exchange = format!("User: {question}\n\nAssistant: {answer}");
    let mut request = ChatRequest::new(
        resolved.model.upstream_id.clone(),
        vec![
            LlmMessage::text(Role::System, memory::EXTRACT_PROMPT.to_owned()),
            LlmMessage::text(Role::User, exchange),
        ],
    );
    request.stream = resolved.model.supports_streaming;
    let prompt_chars = memory::EXTRACT_PROMPT.len() + request.messages[1].content.len();
    let mut stream = resolved.provider.stream(request);
    let mut reply = String::new();
    let (mut usage, mut ttft, mut failed) = (None, None, None);
    while let Some(event) = stream.next().await {
        match event {
            Ok(StreamEvent::TextDelta(t)) => {
                ttft.get_or_insert_with(|| started.elapsed());
                reply.push_str(&t);
            }
            Ok(StreamEvent::Usage(u)) => usage = Some(u),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "memory extraction failed");
                failed = Some(e.to_string());
                break;
            }
        }
    }
    // The extraction spends the user's tokens like an answer: it is traced and counts toward
    // the daily quota.
    let call = CallOutcome {
        user: principal.user_id(),
        run: None,
        source: "memory_extract",
        usage: usage.unwrap_or_else(|| usage::estimate(prompt_chars, reply.len())),
        latency: started.elapsed(),
        ttft,
        tool_calls: 0,
        error: failed.clone(),
    }
    .record_for(&resolved);
    recorder.record(call).await;
    if failed.is_some() {
        return;
    }
    let facts = memory::parse_extracted(&reply);
    if facts.is_empty() {
        return;
    }
    match memories
        .save_new(
            &principal,
            &facts,
            MemorySource::Extracted,
            Some(conversation),
        )
        .await
    {
        Ok(saved) if saved > 0 => tracing::debug!(saved, "memories extracted"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not save extracted memories"),
    }
}
