//! The caller's own account.

use axum::extract::State;
use axum::http::StatusCode;
use hearth_core::api::{ChangePasswordRequest, User};

use crate::error::ApiError;
use crate::extract::{Auth, ClientIp, Json};
use crate::state::AppState;

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", responses((status = 200, body = User), (status = 401)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> Result<axum::Json<User>, ApiError> {
    Ok(axum::Json(state.accounts.me(&principal).await?))
}

/// Change the caller's password; their other sessions end.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = ChangePasswordRequest,
    responses((status = 204), (status = 400), (status = 401), (status = 429)), security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ClientIp(ip): ClientIp,
    Json(req): Json<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state.accounts.change_password(&principal, req, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}
