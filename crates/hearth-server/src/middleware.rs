//! Per-request plumbing: request id, tracing span, access log line, metrics.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

use crate::error::REQUEST_ID;
use crate::metrics::Metrics;

const REQUEST_ID_HEADER: &str = "x-request-id";

/// Wraps every request in a span with its id and route, records metrics, echoes the id back.
pub async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let route = route.unwrap_or_else(|| {
        if req.uri().path().starts_with("/api/") {
            "unmatched".into()
        } else {
            "ui".into()
        }
    });
    // Only standard methods become label values: hyper accepts any token as a method, and
    // each distinct label would be a new series kept forever.
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    };
    let span = tracing::info_span!(
        "request",
        request.id = %id,
        http.request.method = %method,
        http.route = %route,
        user.id = tracing::field::Empty,
    );
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span.clone()))
        .await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    metrics.observe(method, &route, status, elapsed);
    span.in_scope(|| {
        let ms = elapsed.as_secs_f64() * 1000.0;
        if matches!(route.as_str(), "/health" | "/ready" | "/metrics") {
            tracing::debug!(
                http.response.status_code = status,
                duration_ms = ms,
                "request"
            );
        } else {
            tracing::info!(
                http.response.status_code = status,
                duration_ms = ms,
                "request"
            );
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}
