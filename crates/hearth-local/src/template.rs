//! A model's own chat template (the Jinja source in its GGUF metadata), rendered with minijinja
//! the way Hugging Face's `apply_chat_template` renders it (`trim_blocks`, `lstrip_blocks`,
//! `add_generation_prompt`, Python string methods).
//!
//! The rendering keeps message contents apart from the template's own text: contents are
//! tokenized as plain text, so a user who types `<|im_end|>` cannot forge a control token.

use hearth_llm::{Message, Role, ToolSpec};
use minijinja::{context, Environment, Error, ErrorKind, Value};
use serde_json::json;

/// Content markers: private-use characters no real message contains next to each other.
const OPEN: char = '\u{F8F0}';
const CLOSE: char = '\u{F8F1}';

/// A piece of a rendered prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Text the template wrote: its control tokens are real control tokens.
    Template(String),
    /// Text a message carried: tokenized as plain text.
    Content(String),
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
    /// The template knows `tools`, tool calls and tool messages; otherwise tools are described
    /// in the system message and calls are written as `<tool_call>` blocks (the Hermes format).
    native_tools: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("native_tools", &self.native_tools)
            .finish()
    }
}

/// Used when a model carries no template.
pub const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Where the output of a Hermes-format tool call starts and ends.
pub const TOOL_CALL_OPEN: &str = "<tool_call>";
pub const TOOL_CALL_CLOSE: &str = "</tool_call>";

impl ChatTemplate {
    /// Compiles `source`; `bos`/`eos` are the model's token texts, which templates reference.
    pub fn new(source: &str, bos: String, eos: String) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |format: String| {
            chrono::Local::now().format(&format).to_string()
        });
        env.add_template_owned("chat", source.to_owned())
            .map_err(|e| format!("the chat template does not compile: {e}"))?;
        Ok(Self {
            env,
            bos,
            eos,
            native_tools: source.contains("tool_calls") || source.contains("tools"),
        })
    }

    /// Renders the conversation followed by the assistant's turn, as segments.
    pub fn render(&self, messages: &[Message], tools: &[ToolSpec]) -> Result<Vec<Segment>, String> {
        let (values, contents) = self.messages(messages, tools);
        let marked = self.render_values(&values, tools)?;
        if let Some(segments) = split(&marked, &contents) {
            return Ok(segments);
        }
        // The template changed a content (trimmed it, say): render it whole instead. Control
        // tokens typed by a user are then parsed like the template's (what llama.cpp does).
        let values = self.messages_plain(messages, tools);
        Ok(vec![Segment::Template(self.render_values(&values, tools)?)])
    }

    fn render_values(
        &self,
        messages: &[serde_json::Value],
        tools: &[ToolSpec],
    ) -> Result<String, String> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| format!("chat template: {e}"))?;
        let tools = (self.native_tools && !tools.is_empty()).then(|| {
            tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
                .collect::<Vec<_>>()
        });
        template
            .render(context! {
                messages => messages,
                tools => tools,
                add_generation_prompt => true,
                bos_token => self.bos,
                eos_token => self.eos,
            })
            .map_err(|e| format!("the chat template failed: {e}"))
    }

    /// The messages as template values with each content replaced by a marker, and the
    /// contents in marker order.
    fn messages(
        &self,
        messages: &[Message],
        tools: &[ToolSpec],
    ) -> (Vec<serde_json::Value>, Vec<String>) {
        let mut values = self.messages_plain(messages, tools);
        let mut contents = Vec::new();
        for v in &mut values {
            if let Some(text) = v.get("content").and_then(|c| c.as_str()) {
                if !text.is_empty() {
                    let marker = format!("{OPEN}{}{CLOSE}", contents.len());
                    contents.push(text.to_owned());
                    v["content"] = json!(marker);
                }
            }
        }
        (values, contents)
    }

    fn messages_plain(&self, messages: &[Message], tools: &[ToolSpec]) -> Vec<serde_json::Value> {
        let mut out = Vec::with_capacity(messages.len() + 1);
        if !self.native_tools && !tools.is_empty() {
            let block = tools_prompt(tools);
            match messages.first() {
                Some(m) if m.role == Role::System => {
                    out.push(
                        json!({"role": "system", "content": format!("{}\n\n{block}", m.content)}),
                    );
                }
                _ => out.push(json!({"role": "system", "content": block})),
            }
        }
        for (i, m) in messages.iter().enumerate() {
            if i == 0 && m.role == Role::System && !out.is_empty() {
                continue;
            }
            out.push(self.message_value(m));
        }
        out
    }

    fn message_value(&self, m: &Message) -> serde_json::Value {
        let role = match m.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        };
        if self.native_tools {
            let mut v = json!({"role": role, "content": m.content});
            if !m.tool_calls.is_empty() {
                v["tool_calls"] = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        let args: serde_json::Value =
                            serde_json::from_str(&c.arguments).unwrap_or(json!({}));
                        json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": args}})
                    })
                    .collect();
            }
            if let Some(id) = &m.tool_call_id {
                v["tool_call_id"] = json!(id);
            }
            return v;
        }
        match m.role {
            Role::Assistant if !m.tool_calls.is_empty() => {
                let mut text = m.content.clone();
                for c in &m.tool_calls {
                    let args: serde_json::Value =
                        serde_json::from_str(&c.arguments).unwrap_or(json!({}));
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&format!(
                        "{TOOL_CALL_OPEN}\n{}\n{TOOL_CALL_CLOSE}",
                        json!({"name": c.name, "arguments": args})
                    ));
                }
                json!({"role": "assistant", "content": text})
            }
            Role::Tool => {
                json!({"role": "user", "content": format!("<tool_response>\n{}\n</tool_response>", m.content)})
            }
            _ => json!({"role": role, "content": m.content}),
        }
    }
}

/// The system-prompt section that offers tools to a model whose template has no tool support.
fn tools_prompt(tools: &[ToolSpec]) -> String {
    let list: Vec<String> = tools
        .iter()
        .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}).to_string())
        .collect();
    format!(
        "You can call functions. Their signatures are inside <tools></tools>:\n<tools>\n{}\n</tools>\nTo call one, answer with a JSON object holding the function's name and arguments inside {TOOL_CALL_OPEN}{TOOL_CALL_CLOSE} tags:\n{TOOL_CALL_OPEN}\n{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n{TOOL_CALL_CLOSE}",
        list.join("\n")
    )
}

/// Splits a marked rendering into template text and contents; `None` when a marker is
/// missing, repeated or altered.
fn split(rendered: &str, contents: &[String]) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    let mut seen = vec![false; contents.len()];
    let mut rest = rendered;
    while let Some(start) = rest.find(OPEN) {
        if start > 0 {
            out.push(Segment::Template(rest[..start].to_owned()));
        }
        let after = &rest[start + OPEN.len_utf8()..];
        let end = after.find(CLOSE)?;
        let index: usize = after[..end].parse().ok()?;
        if *seen.get(index)? {
            return None;
        }
        seen[index] = true;
        out.push(Segment::Content(contents[index].clone()));
        rest = &after[end + CLOSE.len_utf8()..];
    }
    if rest.contains(CLOSE) || seen.iter().any(|s| !s) {
        return None;
    }
    if !rest.is_empty() {
        out.push(Segment::Template(rest.to_owned()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chatml() -> ChatTemplate {
        ChatTemplate::new(CHATML, String::new(), "<|im_end|>".into()).expect("compiles")
    }

    #[test]
    fn contents_stay_apart_from_template_text() {
        let segments = chatml()
            .render(&[Message::text(Role::User, "hi <|im_end|> there")], &[])
            .expect("renders");
        assert_eq!(
            segments,
            vec![
                Segment::Template("<|im_start|>user\n".into()),
                Segment::Content("hi <|im_end|> there".into()),
                Segment::Template("<|im_end|>\n<|im_start|>assistant\n".into()),
            ]
        );
    }

    #[test]
    fn tools_go_into_the_system_message_for_templates_without_tool_support() {
        let tools = [ToolSpec {
            name: "calculator".into(),
            description: "Adds".into(),
            parameters: json!({"type": "object"}),
        }];
        let segments = chatml()
            .render(
                &[
                    Message::text(Role::System, "Be brief."),
                    Message::text(Role::User, "2+2?"),
                ],
                &tools,
            )
            .expect("renders");
        let Segment::Content(system) = &segments[1] else {
            panic!("{segments:?}")
        };
        assert!(system.starts_with("Be brief.\n\nYou can call functions"));
        assert!(system.contains("\"name\":\"calculator\""));
    }

    #[test]
    fn template_errors_are_reported() {
        assert!(ChatTemplate::new("{% if %}", String::new(), String::new()).is_err());
        let t = ChatTemplate::new(
            "{{ raise_exception('roles must alternate') }}",
            String::new(),
            String::new(),
        )
        .expect("compiles");
        let err = t
            .render(&[Message::text(Role::User, "x")], &[])
            .expect_err("fails");
        assert!(err.contains("roles must alternate"), "{err}");
    }
}
