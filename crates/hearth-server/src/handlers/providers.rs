//! Providers and models: admin management, and the models a user may pick.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_core::providers::{
    CreateProviderRequest, ModelView, ProviderView, UpdateModelRequest, UpdateProviderRequest,
    UserModel,
};

use super::path_id;
use crate::error::ApiError;
use crate::extract::{Auth, Json};
use crate::state::AppState;

/// Add a provider.
#[utoipa::path(post, path = "/api/v1/admin/providers", tag = "admin", request_body = CreateProviderRequest,
    responses((status = 201, body = ProviderView), (status = 400), (status = 403), (status = 409)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(req): Json<CreateProviderRequest>,
) -> Result<(StatusCode, axum::Json<ProviderView>), ApiError> {
    let admin = principal.admin()?;
    Ok((
        StatusCode::CREATED,
        axum::Json(state.providers.create(&admin, req).await?),
    ))
}

/// All providers.
#[utoipa::path(get, path = "/api/v1/admin/providers", tag = "admin",
    responses((status = 200, body = [ProviderView]), (status = 403)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<axum::Json<Vec<ProviderView>>, ApiError> {
    let admin = principal.admin()?;
    Ok(axum::Json(state.providers.list(&admin).await?))
}

/// One provider.
#[utoipa::path(get, path = "/api/v1/admin/providers/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ProviderView), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<ProviderView>, ApiError> {
    let admin = principal.admin()?;
    let id = path_id(&id, "provider")?;
    Ok(axum::Json(state.providers.get(&admin, id).await?))
}

/// Change a provider (`api_key: ""` removes the key).
#[utoipa::path(patch, path = "/api/v1/admin/providers/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    request_body = UpdateProviderRequest, responses((status = 200, body = ProviderView), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateProviderRequest>,
) -> Result<axum::Json<ProviderView>, ApiError> {
    let admin = principal.admin()?;
    let id = path_id(&id, "provider")?;
    Ok(axum::Json(state.providers.update(&admin, id, req).await?))
}

/// Remove a provider and its models.
#[utoipa::path(delete, path = "/api/v1/admin/providers/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let admin = principal.admin()?;
    let id = path_id(&id, "provider")?;
    state.providers.delete(&admin, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Read the provider's model list and add new models.
#[utoipa::path(post, path = "/api/v1/admin/providers/{id}/sync", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = [ModelView]), (status = 404), (status = 502)), security(("bearer" = [])))]
pub async fn sync(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<ModelView>>, ApiError> {
    let admin = principal.admin()?;
    let id = path_id(&id, "provider")?;
    Ok(axum::Json(state.providers.sync(&admin, id).await?))
}

/// Every model of every provider.
#[utoipa::path(get, path = "/api/v1/admin/models", tag = "admin",
    responses((status = 200, body = [ModelView]), (status = 403)), security(("bearer" = [])))]
pub async fn list_models(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<axum::Json<Vec<ModelView>>, ApiError> {
    let admin = principal.admin()?;
    Ok(axum::Json(state.providers.list_all_models(&admin).await?))
}

/// Change a model: display name, aliases, capabilities, prices, enabled.
#[utoipa::path(patch, path = "/api/v1/admin/models/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    request_body = UpdateModelRequest, responses((status = 200, body = ModelView), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update_model(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateModelRequest>,
) -> Result<axum::Json<ModelView>, ApiError> {
    let admin = principal.admin()?;
    let id = path_id(&id, "model")?;
    Ok(axum::Json(
        state.providers.update_model(&admin, id, req).await?,
    ))
}

/// The models the caller may pick: chat models, and embedding models (provider ones and the
/// built-in embedders, `capabilities.embeddings`) for knowledge bases.
#[utoipa::path(get, path = "/api/v1/models", tag = "chat",
    responses((status = 200, body = [UserModel])), security(("bearer" = [])))]
pub async fn user_models(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<axum::Json<Vec<UserModel>>, ApiError> {
    let mut models = state.providers.list_for_user(&principal).await?;
    models.extend(state.embeddings.builtin_models());
    Ok(axum::Json(models))
}
