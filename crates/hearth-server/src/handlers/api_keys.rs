//! The caller's API keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_core::api::{ApiKey, CreateApiKeyRequest, CreatedApiKey};

use super::path_id;
use crate::error::ApiError;
use crate::extract::{Auth, ClientIp, Json};
use crate::state::AppState;

/// The caller's keys (never the secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", responses((status = 200, body = [ApiKey])), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<axum::Json<Vec<ApiKey>>, ApiError> {
    Ok(axum::Json(state.accounts.list_api_keys(&principal).await?))
}

/// Create a key (the password is asked again); the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest,
    responses((status = 201, body = CreatedApiKey), (status = 400), (status = 403), (status = 422), (status = 429)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ClientIp(ip): ClientIp,
    Json(req): Json<CreateApiKeyRequest>,
) -> Result<(StatusCode, axum::Json<CreatedApiKey>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.accounts.create_api_key(&principal, req, ip).await?),
    ))
}

/// One of the caller's keys.
#[utoipa::path(get, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ApiKey), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<ApiKey>, ApiError> {
    let id = path_id(&id, "api key")?;
    Ok(axum::Json(
        state.accounts.get_api_key(&principal, id).await?,
    ))
}

/// Revoke a key.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "api key")?;
    state.accounts.delete_api_key(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
