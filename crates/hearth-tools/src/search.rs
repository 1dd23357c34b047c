//! `web_search`: searches the web through a SearXNG instance's JSON API (`/search?format=json`).
//! The instance is an admin setting; without it the tool answers with a clear error.

use std::time::Duration;

use futures_util::future::BoxFuture;
use hearth_llm::ToolSpec;
use serde_json::{json, Value};

use crate::{Tool, ToolError};

const DEFAULT_RESULTS: usize = 5;

/// The `web_search` tool.
pub struct WebSearch {
    /// Base URL of the SearXNG instance, e.g. `http://searxng:8080`.
    base_url: Option<String>,
    client: reqwest::Client,
}

impl WebSearch {
    /// A search tool using the SearXNG at `base_url` (none: every call explains how to set it).
    pub fn new(base_url: Option<String>, timeout: Duration) -> Self {
        Self {
            base_url: base_url.map(|u| u.trim_end_matches('/').to_owned()),
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default(),
        }
    }
}

impl Tool for WebSearch {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "web_search".into(),
            description: "Searches the web and returns the top results (title, URL, snippet)."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to search for."},
                    "max_results": {"type": "integer", "description": "How many results (default 5, at most 20)."}
                },
                "required": ["query"],
                "additionalProperties": false,
            }),
        }
    }

    fn call(&self, arguments: Value) -> BoxFuture<'_, Result<String, ToolError>> {
        Box::pin(async move {
            let Some(base) = &self.base_url else {
                return Err(ToolError::Failed(
                    "web search is not configured: an admin must set tools.searxng_url to a SearXNG instance".into(),
                ));
            };
            let query = arguments["query"].as_str().unwrap_or_default().trim();
            if query.is_empty() {
                return Err(ToolError::InvalidArguments(
                    "arguments.query must not be empty".into(),
                ));
            }
            let max = arguments["max_results"]
                .as_u64()
                .map(|n| (n as usize).clamp(1, 20))
                .unwrap_or(DEFAULT_RESULTS);
            let response = self
                .client
                .get(format!("{base}/search"))
                .query(&[("q", query), ("format", "json")])
                .send()
                .await
                .map_err(|e| {
                    ToolError::Failed(format!(
                        "the search service is unreachable: {}",
                        e.without_url()
                    ))
                })?;
            if !response.status().is_success() {
                return Err(ToolError::Failed(format!(
                    "the search service answered {} (is its JSON format enabled?)",
                    response.status()
                )));
            }
            let body: Value = response
                .json()
                .await
                .map_err(|_| ToolError::Failed("the search service did not answer JSON".into()))?;
            let results = body["results"].as_array().cloned().unwrap_or_default();
            if results.is_empty() {
                return Ok(format!("No results for \"{query}\"."));
            }
            let mut out = String::new();
            for (i, r) in results.iter().take(max).enumerate() {
                out.push_str(&format!(
                    "{}. {}\n   {}\n   {}\n",
                    i + 1,
                    r["title"].as_str().unwrap_or("(untitled)"),
                    r["url"].as_str().unwrap_or_default(),
                    r["content"].as_str().unwrap_or_default().trim()
                ));
            }
            Ok(out)
        })
    }
}
