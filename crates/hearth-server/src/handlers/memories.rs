//! The caller's memories: what the assistant remembers about them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_core::ids::MemoryId;
use hearth_core::memory::{MemorySource, MemoryText, MemoryView};

use super::path_id;
use crate::error::ApiError;
use crate::extract::{Auth, Json};
use crate::state::AppState;

fn memory_id(raw: &str) -> Result<MemoryId, ApiError> {
    path_id(raw, "memory")
}

/// The caller's memories, newest first.
#[utoipa::path(get, path = "/api/v1/memories", tag = "memory",
    responses((status = 200, body = [MemoryView])), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<axum::Json<Vec<MemoryView>>, ApiError> {
    Ok(axum::Json(state.memories.list(&principal).await?))
}

/// Add a memory.
#[utoipa::path(post, path = "/api/v1/memories", tag = "memory", request_body = MemoryText,
    responses((status = 201, body = MemoryView), (status = 400), (status = 409)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(req): Json<MemoryText>,
) -> Result<(StatusCode, axum::Json<MemoryView>), ApiError> {
    let created = state
        .memories
        .create(&principal, &req.text, MemorySource::User, None)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Change a memory's text.
#[utoipa::path(patch, path = "/api/v1/memories/{id}", tag = "memory", params(("id" = uuid::Uuid, Path)),
    request_body = MemoryText,
    responses((status = 200, body = MemoryView), (status = 404)), security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(req): Json<MemoryText>,
) -> Result<axum::Json<MemoryView>, ApiError> {
    Ok(axum::Json(
        state
            .memories
            .update(&principal, memory_id(&id)?, &req.text)
            .await?,
    ))
}

/// Forget a memory.
#[utoipa::path(delete, path = "/api/v1/memories/{id}", tag = "memory", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.memories.delete(&principal, memory_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
