//! Tools a model may call: the [`Tool`] trait, a [`Registry`] that checks arguments against each
//! tool's JSON schema before calling it, and the built-ins (calculator, current time and time-zone
//! conversion, fetch URL as Markdown with SSRF checks, web search through SearXNG). A tool
//! failure is a value the model sees, never a crash.
//!
//! It knows nothing of users, storage or HTTP serving; policy (auto / ask / deny) is the caller's.

mod calculator;
mod fetch;
pub mod net;
mod schema;
mod search;
mod time;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use hearth_llm::ToolSpec;

pub use calculator::{evaluate, Calculator};
pub use fetch::FetchUrl;
pub use search::WebSearch;
pub use time::CurrentTime;

/// Settings of the built-in tools (`[tools]`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsConfig {
    /// Base URL of a SearXNG instance for `web_search` (its JSON format enabled); unset: no search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub searxng_url: Option<String>,
    /// Hosts, addresses or CIDR ranges `fetch_url` may reach although they are private.
    pub fetch_allowlist: Vec<String>,
    /// Largest page `fetch_url` reads, in bytes.
    pub fetch_max_bytes: usize,
    /// Seconds a fetch or a search may take.
    pub fetch_timeout_secs: u64,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        Self {
            searxng_url: None,
            fetch_allowlist: Vec::new(),
            fetch_max_bytes: 2 * 1024 * 1024,
            fetch_timeout_secs: 15,
        }
    }
}

impl ToolsConfig {
    /// Checks the settings; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        net::Allowlist::parse(&self.fetch_allowlist)
            .map_err(|e| ("tools.fetch_allowlist".into(), e))?;
        if let Some(url) = &self.searxng_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err((
                    "tools.searxng_url".into(),
                    "must start with http:// or https://".into(),
                ));
            }
        }
        if self.fetch_max_bytes < 1024 {
            return Err((
                "tools.fetch_max_bytes".into(),
                "must be at least 1024".into(),
            ));
        }
        if self.fetch_timeout_secs == 0 {
            return Err((
                "tools.fetch_timeout_secs".into(),
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Why a tool call produced no result. The message goes back to the model.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// No tool by that name is offered.
    #[error("unknown tool `{0}`")]
    Unknown(String),
    /// The arguments are not JSON or do not fit the schema.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran and failed.
    #[error("{0}")]
    Failed(String),
}

/// A tool a model may call.
pub trait Tool: Send + Sync {
    /// Name, description and JSON schema of the arguments.
    fn spec(&self) -> ToolSpec;
    /// Runs the tool on arguments that passed the schema check.
    fn call(&self, arguments: serde_json::Value) -> BoxFuture<'_, Result<String, ToolError>>;
}

/// The tools on offer, by name.
#[derive(Clone, Default)]
pub struct Registry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in tools: calculator, current_time, fetch_url and web_search.
    pub fn builtin(config: &ToolsConfig) -> Self {
        let timeout = std::time::Duration::from_secs(config.fetch_timeout_secs);
        let mut r = Self::new();
        r.add(Arc::new(Calculator));
        r.add(Arc::new(CurrentTime));
        r.add(Arc::new(FetchUrl::new(
            net::Allowlist::parse(&config.fetch_allowlist).unwrap_or_default(),
            config.fetch_max_bytes,
            timeout,
        )));
        r.add(Arc::new(WebSearch::new(
            config.searxng_url.clone(),
            timeout,
        )));
        r
    }

    /// This registry plus `tools` (for tools bound to one caller, such as a user's search).
    pub fn with(&self, tools: impl IntoIterator<Item = Arc<dyn Tool>>) -> Self {
        let mut out = self.clone();
        for tool in tools {
            out.add(tool);
        }
        out
    }

    /// Adds (or replaces) a tool.
    pub fn add(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.spec().name, tool);
    }

    /// Names of all tools.
    pub fn names(&self) -> Vec<String> {
        self.tools.keys().cloned().collect()
    }

    /// Whether a tool of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tools.contains_key(name)
    }

    /// Specs of the named tools (all of them when `names` is `None`), in name order.
    pub fn specs(&self, names: Option<&[String]>) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .filter(|(n, _)| names.is_none_or(|list| list.iter().any(|x| x == *n)))
            .map(|(_, t)| t.spec())
            .collect()
    }

    /// Parses `arguments` (JSON text as the model wrote it), checks it against the tool's
    /// schema and calls the tool.
    pub async fn call(&self, name: &str, arguments: &str) -> Result<String, ToolError> {
        let tool = self
            .tools
            .get(name)
            .ok_or_else(|| ToolError::Unknown(name.to_owned()))?;
        let text = if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ToolError::InvalidArguments(format!("not JSON: {e}")))?;
        schema::check(&tool.spec().parameters, &value).map_err(ToolError::InvalidArguments)?;
        tool.call(value).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registry_checks_arguments_before_calling() {
        let r = Registry::builtin(&ToolsConfig::default());
        assert_eq!(
            r.call("calculator", r#"{"expression":"2*(3+4)"}"#).await,
            Ok("14".into())
        );
        assert!(matches!(
            r.call("calculator", "{}").await,
            Err(ToolError::InvalidArguments(m)) if m.contains("expression")
        ));
        assert!(matches!(
            r.call("calculator", r#"{"expression": 5}"#).await,
            Err(ToolError::InvalidArguments(m)) if m.contains("string")
        ));
        assert!(matches!(
            r.call("calculator", "not json").await,
            Err(ToolError::InvalidArguments(_))
        ));
        assert_eq!(
            r.call("nope", "{}").await,
            Err(ToolError::Unknown("nope".into()))
        );
        assert_eq!(r.specs(Some(&["calculator".into()])).len(), 1);
    }
}
