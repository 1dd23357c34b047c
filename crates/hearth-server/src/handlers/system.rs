//! Health, readiness and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

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
        Ok(true) => None,
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

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
