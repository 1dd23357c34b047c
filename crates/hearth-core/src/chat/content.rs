//! What a stored message holds (encrypted as one JSON document), and how a branch of stored
//! messages becomes the history sent to a model.

use hearth_llm::{Message as LlmMessage, Role, ToolCall};
use serde::{Deserialize, Serialize};

pub use hearth_api::chat::{Part, Source, ToolCallStatus};

/// The decrypted content of a message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    pub parts: Vec<Part>,
    /// Passages retrieved for this answer, cited as `[n]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
}

impl Content {
    /// A message of plain text.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            parts: vec![Part::Text { text: text.into() }],
            sources: Vec::new(),
        }
    }

    /// All text parts joined.
    pub fn plain_text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text } => Some(text.as_str()),
                Part::ToolCall { .. } => None,
            })
            .collect()
    }

    /// Appends streamed text, growing the last text part when there is one.
    pub fn push_text(&mut self, delta: &str) {
        if let Some(Part::Text { text }) = self.parts.last_mut() {
            text.push_str(delta);
        } else {
            self.parts.push(Part::Text {
                text: delta.to_owned(),
            });
        }
    }

    /// Sets the outcome of the call `id` (the latest, should an upstream reuse an id).
    pub fn settle_call(&mut self, id: &str, status: ToolCallStatus, output: String) {
        for part in self.parts.iter_mut().rev() {
            if let Part::ToolCall {
                id: pid,
                status: s,
                output: o,
                ..
            } = part
            {
                if pid == id {
                    *s = status;
                    *o = Some(output);
                    return;
                }
            }
        }
    }

    /// The model messages this stored message stands for. An assistant message with tool calls
    /// becomes, per round, an assistant turn with its calls followed by one tool turn per result.
    pub fn to_llm(&self, role: Role) -> Vec<LlmMessage> {
        if role != Role::Assistant {
            return vec![LlmMessage::text(role, self.plain_text())];
        }
        let mut out = Vec::new();
        let mut text = String::new();
        let mut calls: Vec<(ToolCall, String)> = Vec::new();
        let flush =
            |out: &mut Vec<LlmMessage>, text: &mut String, calls: &mut Vec<(ToolCall, String)>| {
                if text.is_empty() && calls.is_empty() {
                    return;
                }
                out.push(LlmMessage {
                    role: Role::Assistant,
                    content: std::mem::take(text),
                    tool_calls: calls.iter().map(|(c, _)| c.clone()).collect(),
                    tool_call_id: None,
                });
                for (call, result) in calls.drain(..) {
                    out.push(LlmMessage::tool_result(call.id, result));
                }
            };
        for part in &self.parts {
            match part {
                Part::Text { text: t } => {
                    if !calls.is_empty() {
                        flush(&mut out, &mut text, &mut calls);
                    }
                    text.push_str(t);
                }
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                    status,
                    output,
                } => {
                    let result = match (status, output) {
                        (ToolCallStatus::Ok, Some(o)) => o.clone(),
                        (_, Some(o)) => format!("error: {o}"),
                        (_, None) => "error: the call did not complete".into(),
                    };
                    calls.push((
                        ToolCall {
                            id: id.clone(),
                            name: name.clone(),
                            arguments: arguments.clone(),
                        },
                        result,
                    ));
                }
            }
        }
        flush(&mut out, &mut text, &mut calls);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_rounds_become_assistant_and_tool_turns() {
        let mut c = Content::default();
        c.push_text("Let me ");
        c.push_text("check.");
        c.parts.push(Part::ToolCall {
            id: "c1".into(),
            name: "calculator".into(),
            arguments: "{}".into(),
            status: ToolCallStatus::Pending,
            output: None,
        });
        c.settle_call("c1", ToolCallStatus::Ok, "42".into());
        c.push_text("It is 42.");
        let msgs = c.to_llm(Role::Assistant);
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[0].content, "Let me check.");
        assert_eq!(msgs[0].tool_calls[0].id, "c1");
        assert_eq!(msgs[1].role, Role::Tool);
        assert_eq!(msgs[1].content, "42");
        assert_eq!(msgs[2].content, "It is 42.");
        assert_eq!(c.plain_text(), "Let me check.It is 42.");
    }
}
