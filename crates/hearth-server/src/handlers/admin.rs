//! User administration. Every handler first turns the principal into an `Admin` proof.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_core::api::{
    CreateInviteRequest, CreateUserRequest, CreatedInvite, ResetPasswordRequest, UpdateUserRequest,
    User,
};

use super::path_id;
use crate::error::ApiError;
use crate::extract::{Auth, Json};
use crate::state::AppState;

/// Every user.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", responses((status = 200, body = [User]), (status = 403)), security(("bearer" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<axum::Json<Vec<User>>, ApiError> {
    let admin = principal.admin()?;
    Ok(axum::Json(state.accounts.list_users(&admin).await?))
}

/// Create a user directly.
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = CreateUserRequest,
    responses((status = 201, body = User), (status = 400), (status = 403), (status = 409)), security(("bearer" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(req): Json<CreateUserRequest>,
) -> Result<(StatusCode, axum::Json<User>), ApiError> {
    let admin = principal.admin()?;
    Ok((
        StatusCode::CREATED,
        axum::Json(state.accounts.create_user(&admin, req).await?),
    ))
}

/// Change a user's role, name or disabled flag.
#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "admin", request_body = UpdateUserRequest, params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = User), (status = 403), (status = 404), (status = 409)), security(("bearer" = [])))]
pub async fn update_user(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateUserRequest>,
) -> Result<axum::Json<User>, ApiError> {
    let admin = principal.admin()?;
    let id = path_id(&id, "user")?;
    Ok(axum::Json(
        state.accounts.update_user(&admin, id, req).await?,
    ))
}

/// Set a user's password; their sessions end.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/password", tag = "admin", request_body = ResetPasswordRequest, params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 400), (status = 403), (status = 404)), security(("bearer" = [])))]
pub async fn reset_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(req): Json<ResetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let admin = principal.admin()?;
    let id = path_id(&id, "user")?;
    state.accounts.reset_password(&admin, id, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make an invite token for registration.
#[utoipa::path(post, path = "/api/v1/admin/invites", tag = "admin", request_body = CreateInviteRequest,
    responses((status = 201, body = CreatedInvite), (status = 403)), security(("bearer" = [])))]
pub async fn create_invite(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(req): Json<CreateInviteRequest>,
) -> Result<(StatusCode, axum::Json<CreatedInvite>), ApiError> {
    let admin = principal.admin()?;
    Ok((
        StatusCode::CREATED,
        axum::Json(state.accounts.create_invite(&admin, req).await?),
    ))
}

/// Model calls (traces), newest first, filtered by user, model, time and errors.
#[utoipa::path(get, path = "/api/v1/admin/llm-calls", tag = "admin", params(hearth_core::usage::TraceQuery),
    responses((status = 200, body = [hearth_core::usage::Trace]), (status = 400), (status = 403)), security(("bearer" = [])))]
pub async fn traces(
    State(state): State<AppState>,
    Auth(principal): Auth,
    crate::extract::Query(query): crate::extract::Query<hearth_core::usage::TraceQuery>,
) -> Result<axum::Json<Vec<hearth_core::usage::Trace>>, ApiError> {
    let admin = principal.admin()?;
    Ok(axum::Json(state.usage.traces(&admin, query).await?))
}

/// Tokens and cost per user and model over the last days.
#[utoipa::path(get, path = "/api/v1/admin/usage", tag = "admin", params(hearth_core::usage::UsageQuery),
    responses((status = 200, body = [hearth_core::usage::UsageSummary]), (status = 400), (status = 403)), security(("bearer" = [])))]
pub async fn usage(
    State(state): State<AppState>,
    Auth(principal): Auth,
    crate::extract::Query(query): crate::extract::Query<hearth_core::usage::UsageQuery>,
) -> Result<axum::Json<Vec<hearth_core::usage::UsageSummary>>, ApiError> {
    let admin = principal.admin()?;
    Ok(axum::Json(state.usage.summary(&admin, query).await?))
}
