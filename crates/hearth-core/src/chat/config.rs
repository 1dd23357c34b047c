//! Chat settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether a tool runs when the model calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolPolicy {
    /// Runs at once.
    Auto,
    /// Runs once the user approves; a timeout counts as declined.
    Ask,
    /// Never offered to the model.
    Deny,
}

/// Chat and provider settings (`[chat]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    /// Rounds of tool calls before the model must answer in words.
    pub max_tool_rounds: u32,
    /// Seconds a tool call waits for the user's approval before it counts as declined.
    pub approval_timeout_secs: u64,
    /// Seconds a tool may run.
    pub tool_timeout_secs: u64,
    /// Tokens (in + out) a user may spend per UTC day; 0 means no limit.
    pub daily_token_quota: u64,
    /// Longest user message, in characters.
    pub max_message_chars: usize,
    /// A system prompt put before every conversation; empty for none.
    pub system_prompt: String,
    /// Per-tool policy by tool name; tools not listed use `default_tool_policy`.
    pub tool_policy: BTreeMap<String, ToolPolicy>,
    /// Policy of tools not listed in `tool_policy`.
    pub default_tool_policy: ToolPolicy,
    /// Tools that act beyond the answer (keep a memory, send data out): once a run has read
    /// untrusted content (retrieved passages, any tool's output), those whose policy is `auto`
    /// ask the user first, so a poisoned document cannot make them run unseen.
    pub ask_after_untrusted: Vec<String>,
    /// Seconds to open a connection to a provider.
    pub connect_timeout_secs: u64,
    /// Seconds from request to first token.
    pub first_token_timeout_secs: u64,
    /// Longest silence between tokens, in seconds.
    pub idle_timeout_secs: u64,
    /// Retries of a provider call on 429 and 5xx (before the first token only).
    pub max_retries: u32,
    /// Answers one user may have in progress at once on this instance (429 past it), so one
    /// user cannot hold every model slot.
    pub max_runs_per_user: usize,
    /// Most tokens a model call may write (its `max_tokens`, capped): bounds what one call
    /// spends, and what it reserves against the daily quota.
    pub max_output_tokens: u32,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            max_tool_rounds: 5,
            approval_timeout_secs: 300,
            tool_timeout_secs: 30,
            daily_token_quota: 0,
            max_message_chars: 100_000,
            system_prompt: String::new(),
            tool_policy: BTreeMap::new(),
            default_tool_policy: ToolPolicy::Auto,
            ask_after_untrusted: vec![
                "memory_save".into(),
                "fetch_url".into(),
                "web_search".into(),
            ],
            connect_timeout_secs: 10,
            first_token_timeout_secs: 120,
            idle_timeout_secs: 60,
            max_retries: 2,
            max_runs_per_user: 8,
            max_output_tokens: 4096,
        }
    }
}

impl ChatConfig {
    /// The policy of a tool.
    pub fn policy(&self, tool: &str) -> ToolPolicy {
        self.tool_policy
            .get(tool)
            .copied()
            .unwrap_or(self.default_tool_policy)
    }

    /// Provider client time limits.
    pub fn timeouts(&self) -> hearth_llm::Timeouts {
        use std::time::Duration;
        hearth_llm::Timeouts {
            connect: Duration::from_secs(self.connect_timeout_secs),
            first_token: Duration::from_secs(self.first_token_timeout_secs),
            idle: Duration::from_secs(self.idle_timeout_secs),
            max_retries: self.max_retries,
            backoff: Duration::from_millis(500),
        }
    }
}
