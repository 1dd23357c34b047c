//! Usage and traces of model calls, as admins read them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{LlmCallId, ProviderId, RunId, UserId};

/// Which traces to list (`GET /api/v1/admin/llm-calls`).
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
pub struct TraceQuery {
    #[schema(value_type = Option<uuid::Uuid>)]
    #[param(value_type = Option<uuid::Uuid>)]
    pub user_id: Option<UserId>,
    pub model: Option<String>,
    /// RFC 3339 time; calls at or after it.
    pub since: Option<DateTime<Utc>>,
    /// RFC 3339 time; calls before it.
    pub until: Option<DateTime<Utc>>,
    /// Only calls that failed.
    #[serde(default)]
    pub errors_only: bool,
    /// At most this many (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// One model call.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Trace {
    #[schema(value_type = String)]
    pub id: LlmCallId,
    #[schema(value_type = Option<String>)]
    pub user_id: Option<UserId>,
    #[schema(value_type = Option<String>)]
    pub run_id: Option<RunId>,
    /// `chat`, `openai_api`, `memory_extract`, or `embed_*` (`embed_api`, `embed_ingest`,
    /// `embed_query`, `embed_memory`: embedding calls; the built-in embedders' are not counted
    /// toward the daily quota, providers' are).
    pub source: String,
    pub model: String,
    #[schema(value_type = Option<String>)]
    pub provider_id: Option<ProviderId>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub cost_usd: Option<f64>,
    pub tool_calls: i64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// `GET /api/v1/admin/usage` query.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema, utoipa::IntoParams)]
pub struct UsageQuery {
    /// Days back from now (default 30, at most 3660).
    #[param(minimum = 1, maximum = 3660)]
    pub days: Option<u32>,
    #[schema(value_type = Option<uuid::Uuid>)]
    #[param(value_type = Option<uuid::Uuid>)]
    pub user_id: Option<UserId>,
}

/// Sums for one user and model.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UsageSummary {
    #[schema(value_type = Option<String>)]
    pub user_id: Option<UserId>,
    pub model: String,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: Option<f64>,
}
