//! Conversations, messages (their parts and cited sources) and run events.

use crate::ids::{ConversationId, KnowledgeBaseId, MessageId, RunId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/conversations`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversationRequest {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub title: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// Knowledge bases answers retrieve from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 20)]
    pub knowledge_base_ids: Option<Vec<KnowledgeBaseId>>,
}

/// `PATCH /api/v1/conversations/{id}`: rename, change the model, or show another branch.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversationRequest {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub title: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// Show the branch through this message (its latest descendant becomes the shown leaf).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub active_message_id: Option<MessageId>,
    /// Replaces the knowledge bases answers retrieve from (`[]` detaches them all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 20)]
    pub knowledge_base_ids: Option<Vec<KnowledgeBaseId>>,
}

/// A conversation in a list.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    #[schema(value_type = String, format = Uuid)]
    pub id: ConversationId,
    pub title: String,
    pub model: Option<String>,
    /// Knowledge bases answers retrieve from.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub knowledge_base_ids: Vec<KnowledgeBaseId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A conversation with the messages of the branch being shown, oldest first.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationDetail {
    #[serde(flatten)]
    pub conversation: Conversation,
    pub messages: Vec<MessageView>,
}

/// Message status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Complete,
    Streaming,
    Error,
    Stopped,
}

impl MessageStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Complete => "complete",
            MessageStatus::Streaming => "streaming",
            MessageStatus::Error => "error",
            MessageStatus::Stopped => "stopped",
        }
    }

    /// Parses the stored form.
    pub fn from_stored(s: &str) -> Self {
        match s {
            "streaming" => MessageStatus::Streaming,
            "error" => MessageStatus::Error,
            "stopped" => MessageStatus::Stopped,
            _ => MessageStatus::Complete,
        }
    }
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    System,
    User,
    Assistant,
}

/// How a tool call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallStatus {
    /// Waiting to run or for approval.
    Pending,
    /// Ran and returned a result.
    Ok,
    /// Ran and failed, or the arguments were rejected.
    Error,
    /// Not run: denied by policy, declined by the user, or the approval timed out.
    Denied,
}

/// One piece of a message, in order: text, or a tool call with its result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
    },
    ToolCall {
        id: String,
        name: String,
        /// The arguments as the model wrote them (JSON text).
        arguments: String,
        status: ToolCallStatus,
        /// The result, or why there is none.
        #[serde(default)]
        output: Option<String>,
    },
}

/// A knowledge-base passage given to the model with an answer; the answer cites it as `[n]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Source {
    /// The number the answer cites it by.
    pub n: u32,
    #[schema(value_type = String)]
    pub chunk_id: crate::ids::ChunkId,
    #[schema(value_type = String)]
    pub document_id: crate::ids::DocumentId,
    pub document_name: String,
    #[schema(value_type = String)]
    pub knowledge_base_id: crate::ids::KnowledgeBaseId,
    /// The heading path above the passage.
    pub headings: String,
    pub page: Option<i64>,
    /// Order of the passage in its document.
    pub position: i64,
    pub text: String,
}

/// A message as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    #[schema(value_type = String, format = Uuid)]
    pub id: MessageId,
    #[schema(value_type = String, format = Uuid)]
    pub conversation_id: ConversationId,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub parent_id: Option<MessageId>,
    pub role: MessageRole,
    /// The text of all text parts.
    pub content: String,
    /// Text and tool calls in order.
    pub parts: Vec<Part>,
    /// Knowledge-base passages the answer was given; it cites them as `[n]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
    pub model: Option<String>,
    pub status: MessageStatus,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// This message and its alternatives (edits or regenerations), oldest first.
    #[schema(value_type = Vec<String>)]
    pub sibling_ids: Vec<MessageId>,
    /// The run producing this message while it streams (resume with its events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub run_id: Option<RunId>,
}

/// `POST /api/v1/conversations/{id}/messages`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    #[schema(
        min_length = 1,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub content: String,
    /// The model for this answer (default: the conversation's).
    #[serde(default)]
    pub model: Option<String>,
    /// The message this one answers (default: the branch shown). Set it to the parent of a
    /// message to edit that message into a new branch; `null` with `edit_root` starts at the top.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub parent_id: Option<MessageId>,
    /// With no `parent_id`: attach to the conversation's top instead of the shown branch.
    #[serde(default)]
    pub edit_root: bool,
    /// Tools offered to the model (default: every tool not denied by policy).
    #[serde(default)]
    pub tools: Option<Vec<String>>,
}

/// `POST /api/v1/conversations/{id}/messages/{message_id}/regenerate`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegenerateRequest {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub tools: Option<Vec<String>>,
}

/// `POST /api/v1/runs/{run_id}/approvals/{call_id}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequest {
    pub approve: bool,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Complete,
    Error,
    Stopped,
}

impl RunStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Error => "error",
            RunStatus::Stopped => "stopped",
        }
    }

    /// Parses the stored form.
    pub fn from_stored(s: &str) -> Self {
        match s {
            "running" => RunStatus::Running,
            "error" => RunStatus::Error,
            "stopped" => RunStatus::Stopped,
            _ => RunStatus::Complete,
        }
    }
}

/// What a run was started with, returned when it starts.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RunStarted {
    #[schema(value_type = String, format = Uuid)]
    pub run_id: RunId,
    #[schema(value_type = String, format = Uuid)]
    pub conversation_id: ConversationId,
    /// The assistant message being written.
    #[schema(value_type = String, format = Uuid)]
    pub message_id: MessageId,
    /// The user message it answers (absent on regenerate).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub user_message_id: Option<MessageId>,
    pub model: String,
}

/// One event of a run; `seq` starts at 1 and has no gaps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunEvent {
    pub seq: u64,
    #[serde(flatten)]
    pub kind: RunEventKind,
}

/// The kinds of run events. Every run ends with exactly one `done`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEventKind {
    RunStarted {
        #[schema(value_type = String)]
        run_id: RunId,
        #[schema(value_type = String)]
        conversation_id: ConversationId,
        #[schema(value_type = String)]
        message_id: MessageId,
        #[schema(value_type = Option<String>)]
        user_message_id: Option<MessageId>,
        model: String,
    },
    /// Knowledge-base passages retrieved for this answer (before any text).
    Sources {
        sources: Vec<Source>,
    },
    TextDelta {
        text: String,
    },
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    ToolApprovalRequired {
        id: String,
        name: String,
        arguments: String,
        timeout_secs: u64,
    },
    ToolResult {
        id: String,
        name: String,
        status: ToolCallStatus,
        output: String,
    },
    Usage {
        input_tokens: u64,
        output_tokens: u64,
    },
    Error {
        code: String,
        message: String,
    },
    Done {
        status: RunStatus,
        message: Box<MessageView>,
    },
}

impl RunEventKind {
    /// The `type` tag, used as the SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            RunEventKind::RunStarted { .. } => "run_started",
            RunEventKind::Sources { .. } => "sources",
            RunEventKind::TextDelta { .. } => "text_delta",
            RunEventKind::ToolCall { .. } => "tool_call",
            RunEventKind::ToolApprovalRequired { .. } => "tool_approval_required",
            RunEventKind::ToolResult { .. } => "tool_result",
            RunEventKind::Usage { .. } => "usage",
            RunEventKind::Error { .. } => "error",
            RunEventKind::Done { .. } => "done",
        }
    }
}
