//! Knowledge bases, their documents, uploads and search.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{ChunkId, DocumentId, KnowledgeBaseId};

/// How hybrid search fuses its two rankings (the `knowledge.fusion` setting, or a search's own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion: ranks only, `weight / (rrf_k + rank)` per list.
    Rrf,
    /// Convex combination of the scores, each list's scaled to 0–1 (the default: ahead of RRF
    /// on every query kind of bench/retrieval, see bench/README.md).
    #[default]
    Convex,
}

/// A document's place in the ingest pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocumentStatus {
    Queued,
    Parsing,
    Embedding,
    Indexed,
    Failed,
}

/// A knowledge base as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct KnowledgeBaseView {
    #[schema(value_type = String)]
    pub id: KnowledgeBaseId,
    pub name: String,
    pub description: String,
    pub embedding_model: String,
    pub dimensions: i64,
    pub documents: i64,
    pub chunks: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A document as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DocumentView {
    #[schema(value_type = String)]
    pub id: DocumentId,
    #[schema(value_type = String)]
    pub knowledge_base_id: KnowledgeBaseId,
    pub name: String,
    pub format: String,
    pub size_bytes: i64,
    pub content_hash: String,
    pub status: DocumentStatus,
    /// Why it failed.
    pub error: Option<String>,
    pub pages: Option<i64>,
    pub chunks: i64,
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub metadata: serde_json::Value,
    /// True in an upload's answer when the knowledge base already held this content: the
    /// existing document is returned and nothing new is stored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub indexed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A file of an upload that was not taken, and why.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RejectedFile {
    pub name: String,
    pub code: String,
    pub message: String,
}

/// What an upload did, file by file.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadResult {
    /// Queued documents, and existing ones for duplicates (`duplicate: true`).
    pub documents: Vec<DocumentView>,
    /// Files not taken (unsupported type).
    pub rejected: Vec<RejectedFile>,
}

/// Body of `POST /api/v1/knowledge-bases`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKnowledgeBase {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Embedder to use; default: the server's `knowledge.embedding_model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
}

/// Body of `POST /api/v1/conversations/{id}/export-to-knowledge`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportToKnowledge {
    #[schema(value_type = uuid::Uuid)]
    pub knowledge_base_id: KnowledgeBaseId,
}

/// Body of `PATCH /api/v1/knowledge-bases/{id}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKnowledgeBase {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}

/// Chunks embedded out of all of a document's chunks.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// Which rankings a search uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    #[default]
    Hybrid,
    Bm25,
    Vector,
}

/// Body of `POST /api/v1/knowledge-bases/{id}/search`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub query: String,
    /// Hits to return (1–50, default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 50)]
    pub top_k: Option<usize>,
    /// `hybrid` (default), `bm25` or `vector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<SearchMode>)]
    pub mode: Option<String>,
    /// Only these documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<uuid::Uuid>>)]
    pub document_ids: Option<Vec<DocumentId>>,
    /// Only documents whose metadata has these keys with these values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// How hybrid search fuses, for this search only: `rrf` or `convex`; default
    /// `knowledge.fusion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Fusion>)]
    pub fusion: Option<String>,
    /// Weight of the BM25 ranking in hybrid fusion, for this search only (tuning: `hearth eval
    /// retrieval --bm25-weight`); default `knowledge.bm25_weight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 100)]
    pub bm25_weight: Option<f64>,
    /// Weight of the vector ranking in hybrid fusion, for this search only; default
    /// `knowledge.vector_weight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 100)]
    pub vector_weight: Option<f64>,
}

/// One passage found.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Hit {
    #[schema(value_type = String)]
    pub chunk_id: ChunkId,
    #[schema(value_type = String)]
    pub document_id: DocumentId,
    pub document_name: String,
    #[schema(value_type = String)]
    pub knowledge_base_id: KnowledgeBaseId,
    pub text: String,
    /// The heading path above the passage ("A > B").
    pub headings: String,
    /// Order of the passage in its document.
    pub position: i64,
    pub page: Option<i64>,
    /// The fused score (or the single ranking's score for `bm25` / `vector`).
    pub score: f64,
    /// Full-text score, when the passage was in that ranking.
    pub bm25_score: Option<f64>,
    /// Cosine similarity, when the passage was in that ranking.
    pub vector_score: Option<f64>,
}

/// What a search found.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    pub mode: SearchMode,
    /// Where vectors were searched: `embedded` or `pgvector`.
    pub vector_index: String,
    /// The query's terms, for highlighting.
    pub terms: Vec<String>,
    pub hits: Vec<Hit>,
}
