//! Knowledge in chat: passages retrieved from the conversation's knowledge bases before an
//! answer (numbered, so the answer cites them as `[n]`), and the `kb_search` tool for models
//! that search on their own. Both search as the conversation's owner, through the knowledge
//! service's access policy.

use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;
use hearth_llm::ToolSpec;
use hearth_store::ids::KnowledgeBaseId;
use hearth_tools::{Tool, ToolError};
use serde_json::json;

use super::content::Source;
use crate::access::Principal;
use crate::knowledge::{Hit, Knowledge, SearchRequest};

/// The tool's name.
pub const KB_SEARCH: &str = "kb_search";
/// Most passages one `kb_search` call returns.
const TOOL_MAX_K: usize = 10;

/// What `kb_search` looks like to a model.
pub fn kb_search_spec() -> ToolSpec {
    ToolSpec {
        name: KB_SEARCH.into(),
        description: "Search the user's knowledge bases (documents they uploaded) and return the \
            most relevant passages, numbered. Use it for questions about their documents, and \
            cite the passages you use by number, like [1]."
            .into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to look for, in a few words or a question."},
                "top_k": {"type": "integer", "minimum": 1, "maximum": TOOL_MAX_K, "description": "Passages to return (default 5)."}
            },
            "required": ["query"],
            "additionalProperties": false
        }),
    }
}

/// Turns hits into sources numbered from `first`.
pub fn sources(hits: Vec<Hit>, first: u32) -> Vec<Source> {
    hits.into_iter()
        .zip(first..)
        .map(|(h, n)| Source {
            n,
            chunk_id: h.chunk_id,
            document_id: h.document_id,
            document_name: h.document_name,
            knowledge_base_id: h.knowledge_base_id,
            headings: h.headings,
            page: h.page,
            position: h.position,
            text: h.text,
        })
        .collect()
}

/// The passages as the model reads them.
pub fn render(sources: &[Source]) -> String {
    let mut out = String::new();
    for s in sources {
        out.push_str(&format!("[{}] {}", s.n, s.document_name));
        if !s.headings.is_empty() {
            out.push_str(&format!(" › {}", s.headings));
        }
        if let Some(page) = s.page {
            out.push_str(&format!(" (page {page})"));
        }
        out.push('\n');
        out.push_str(s.text.trim());
        out.push_str("\n\n");
    }
    out
}

/// How the model is told to read passages: the instruction only; the passages themselves go
/// into the user's turn as quoted data ([`super::context::attach`]).
pub const PASSAGES_INSTRUCTION: &str = "Numbered passages from the user's documents may come \
    with the user's message, inside <passages>. Use them to answer, and cite each passage you use \
    by its number in square brackets, like [1]. If they do not hold the answer, say so.";

/// Searches `kbs` (all of the owner's knowledge bases when empty) for `query`.
pub async fn retrieve(
    knowledge: &Knowledge,
    principal: &Principal,
    kbs: &[KnowledgeBaseId],
    query: &str,
    top_k: usize,
) -> crate::Result<Vec<Hit>> {
    let scope: Vec<KnowledgeBaseId> = if kbs.is_empty() {
        knowledge
            .list(principal)
            .await?
            .into_iter()
            .map(|kb| kb.id)
            .collect()
    } else {
        kbs.to_vec()
    };
    if scope.is_empty() {
        return Ok(Vec::new());
    }
    let found = knowledge
        .search_many(
            principal,
            &scope,
            SearchRequest {
                query: query.chars().take(2000).collect(),
                top_k: Some(top_k),
                ..Default::default()
            },
        )
        .await?;
    Ok(found.hits)
}

/// The `kb_search` tool of one run: searches as the run's user, and appends what it found to
/// the run's sources (numbered on from them), which the engine publishes after the call.
pub struct KbSearch {
    pub knowledge: Knowledge,
    pub principal: Principal,
    /// The conversation's knowledge bases (all of the user's when empty).
    pub kbs: Vec<KnowledgeBaseId>,
    pub sources: Arc<Mutex<Vec<Source>>>,
}

impl Tool for KbSearch {
    fn spec(&self) -> ToolSpec {
        kb_search_spec()
    }

    fn call(&self, arguments: serde_json::Value) -> BoxFuture<'_, Result<String, ToolError>> {
        Box::pin(async move {
            // The registry checked the schema; the range is this tool's own rule.
            let query = arguments["query"].as_str().unwrap_or_default();
            let top_k = match arguments.get("top_k").and_then(serde_json::Value::as_u64) {
                None => 5,
                Some(k) => usize::try_from(k)
                    .ok()
                    .filter(|k| (1..=TOOL_MAX_K).contains(k))
                    .ok_or_else(|| {
                        ToolError::InvalidArguments(format!("`top_k` must be 1 to {TOOL_MAX_K}"))
                    })?,
            };
            if query.trim().is_empty() {
                return Err(ToolError::InvalidArguments(
                    "`query` must not be empty".into(),
                ));
            }
            let hits = retrieve(&self.knowledge, &self.principal, &self.kbs, query, top_k)
                .await
                .map_err(|e| ToolError::Failed(format!("search failed: {e}")))?;
            let mut all = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
            let first = u32::try_from(all.len()).unwrap_or(u32::MAX - 1) + 1;
            let found = sources(hits, first);
            if found.is_empty() {
                return Ok("no passage matches".into());
            }
            let text = render(&found);
            all.extend(found);
            Ok(text)
        })
    }
}
