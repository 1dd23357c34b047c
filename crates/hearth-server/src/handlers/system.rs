//! Health, readiness and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;
use hearth_core::tokens::hash_secret;

/// Liveness and readiness answers.
#[derive(Serialize, ToSchema)]
pub struct Status {
    /// `ok`, `ready` or `unavailable`.
    pub status: &'static str,
    /// Why not ready, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "system", responses((status = 200, body = Status)))]
pub async fn health() -> Json<Status> {
    Json(Status {
        status: "ok",
        reason: None,
    })
}

/// The store answers and every migration is applied.
#[utoipa::path(get, path = "/ready", tag = "system", responses((status = 200, body = Status), (status = 503, body = Status)))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let reason = match state.store.is_migrated().await {
        Ok(true) => state.runtime.ready().err(),
        Ok(false) => Some("migrations pending".to_owned()),
        Err(e) => {
            tracing::warn!(error.cause = %e, "readiness check failed");
            Some("database unreachable".to_owned())
        }
    };
    match reason {
        None => (
            StatusCode::OK,
            Json(Status {
                status: "ready",
                reason: None,
            }),
        ),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Status {
                status: "unavailable",
                reason: Some(reason),
            }),
        ),
    }
}

/// Prometheus text format; with `server.metrics_token` set, only for that bearer token.
#[utoipa::path(get, path = "/metrics", tag = "system", responses(
    (status = 200, description = "Prometheus text, or OpenMetrics text when asked for", content(
        ("text/plain; version=0.0.4; charset=utf-8"),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    )),
    (status = 401, description = "`server.metrics_token` is set and the request does not carry it"),
))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(token) = &state.settings.server.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        // Digests compared, so the time taken says nothing about the token.
        if hash_secret(given.trim()) != hash_secret(token.expose()) {
            return Err(ApiError::from(hearth_core::CoreError::Unauthorized(
                "/metrics needs the metrics token (server.metrics_token)".into(),
            )));
        }
    }
    let queue = state
        .queue
        .store()
        .job_counts()
        .await
        .map_err(hearth_core::CoreError::from)?;
    let pools: Vec<_> = state
        .job_pools
        .iter()
        .map(|(name, stats)| (*name, stats.snapshot()))
        .collect();
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state
            .metrics
            .render(&state.runtime.status(), &queue, &pools),
    ))
}
