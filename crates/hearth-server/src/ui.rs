//! The web UI, built by Vite into `web/dist` and embedded into the binary (read from disk in
//! debug builds). Unknown non-API paths get `index.html` so client-side routes work on reload.

use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hearth_core::CoreError;
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "$CARGO_MANIFEST_DIR/../../web/dist"]
#[allow_missing = true]
struct Assets;

const NOT_BUILT: &str = "<!doctype html><title>Hearth</title><h1>The web UI is not built</h1>\
<p>Run <code>make run</code> (or <code>npm --prefix web ci &amp;&amp; npm --prefix web run build</code>, then rebuild) \
to include it. The API is available under <code>/api/v1</code>; see <a href=\"/docs\">/docs</a>.</p>";

/// Serves an asset, or the SPA shell for client routes. Only GET and HEAD reach the UI.
pub async fn serve(method: Method, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path.starts_with("api/") || path == "api" || !matches!(method, Method::GET | Method::HEAD) {
        return ApiError::Core(CoreError::NotFound("route")).into_response();
    }
    if !path.is_empty() {
        if let Some(file) = Assets::get(path) {
            let mime = mime_guess::from_path(path).first_or_octet_stream();
            // Vite puts content-hashed files under assets/: they never change under one name.
            let cache = if path.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            return (
                [
                    (header::CONTENT_TYPE, mime.as_ref()),
                    (header::CACHE_CONTROL, cache),
                ],
                file.data,
            )
                .into_response();
        }
        if path
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains('.'))
        {
            return (StatusCode::NOT_FOUND, "not found").into_response();
        }
    }
    match Assets::get("index.html") {
        Some(file) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            file.data,
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            NOT_BUILT,
        )
            .into_response(),
    }
}

/// The JSON error shape for a known route called with the wrong method.
pub async fn method_not_allowed() -> Response {
    ApiError::request(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
        None,
    )
    .into_response()
}
