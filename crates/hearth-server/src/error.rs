//! The one mapping from domain errors to HTTP responses.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_core::api::{ErrorBody, ErrorDetail};
use hearth_core::CoreError;

/// An error on its way to the client.
#[derive(Debug)]
pub enum ApiError {
    /// A domain error.
    Core(CoreError),
    /// The request itself was malformed before reaching the domain.
    Request {
        status: StatusCode,
        code: &'static str,
        message: String,
        field: Option<String>,
    },
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError::Core(e)
    }
}

impl From<hearth_store::StoreError> for ApiError {
    fn from(e: hearth_store::StoreError) -> Self {
        ApiError::Core(e.into())
    }
}

impl ApiError {
    /// A malformed-request error.
    pub fn request(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        field: Option<String>,
    ) -> Self {
        ApiError::Request {
            status,
            code,
            message: message.into(),
            field,
        }
    }
}

tokio::task_local! {
    /// The id of the request being handled, set by the request middleware, echoed in 5xx bodies.
    pub static REQUEST_ID: String;
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut retry_after = None;
        let (status, code, message, field) = match self {
            ApiError::Request {
                status,
                code,
                message,
                field,
            } => (status, code, message, field),
            ApiError::Core(err) => match err {
                CoreError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m, None),
                CoreError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m, None),
                CoreError::NotFound(what) => (
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("{what} not found"),
                    None,
                ),
                err @ CoreError::ModelNotFound(_) => (
                    StatusCode::NOT_FOUND,
                    "model_not_found",
                    err.to_string(),
                    Some("model".into()),
                ),
                CoreError::InvalidInput { field, reason } => (
                    StatusCode::BAD_REQUEST,
                    "invalid_input",
                    format!("{field} {reason}"),
                    Some(field),
                ),
                CoreError::Conflict { field, message } => {
                    (StatusCode::CONFLICT, "conflict", message, field)
                }
                CoreError::RateLimited { retry_after_secs } => {
                    retry_after = Some(retry_after_secs);
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        format!("too many attempts; try again in {retry_after_secs} seconds"),
                        None,
                    )
                }
                CoreError::QuotaExceeded {
                    message,
                    retry_after_secs,
                } => {
                    retry_after = Some(retry_after_secs);
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        "quota_exceeded",
                        message,
                        None,
                    )
                }
                CoreError::Busy {
                    message,
                    retry_after_secs,
                } => {
                    retry_after = Some(retry_after_secs);
                    (StatusCode::TOO_MANY_REQUESTS, "model_busy", message, None)
                }
                CoreError::TooLarge { field, message } => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("{field} {message}"),
                    Some(field),
                ),
                CoreError::Upstream(message) => {
                    tracing::warn!(error.cause = %message, "upstream failure");
                    (StatusCode::BAD_GATEWAY, "upstream_error", message, None)
                }
                CoreError::Other(cause) => {
                    tracing::error!(error.cause = %cause_chain(cause.as_ref()), "internal error");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "internal error".into(),
                        None,
                    )
                }
            },
        };
        let request_id = if status.is_server_error() {
            REQUEST_ID.try_with(Clone::clone).ok()
        } else {
            None
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message,
                field,
                request_id,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// `outer: inner: innermost`, for the log.
fn cause_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause_and_carry_the_request_id() {
        let err = ApiError::Core(CoreError::other(
            "relation \"users\" does not exist at /var/lib/secret.db",
        ));
        let response = REQUEST_ID
            .scope("req-42".to_owned(), async { err.into_response() })
            .await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_of(response).await;
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["request_id"], "req-42");
        assert!(
            !body.to_string().contains("users") && !body.to_string().contains("secret"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn every_core_error_has_its_status() {
        let cases = [
            (
                CoreError::Unauthorized("x".into()),
                StatusCode::UNAUTHORIZED,
                "unauthorized",
            ),
            (
                CoreError::Forbidden("x".into()),
                StatusCode::FORBIDDEN,
                "forbidden",
            ),
            (
                CoreError::NotFound("thing"),
                StatusCode::NOT_FOUND,
                "not_found",
            ),
            (
                CoreError::invalid("email", "is bad"),
                StatusCode::BAD_REQUEST,
                "invalid_input",
            ),
            (
                CoreError::Conflict {
                    field: None,
                    message: "x".into(),
                },
                StatusCode::CONFLICT,
                "conflict",
            ),
            (
                CoreError::RateLimited {
                    retry_after_secs: 7,
                },
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
            ),
            (
                CoreError::ModelNotFound("gpt".into()),
                StatusCode::NOT_FOUND,
                "model_not_found",
            ),
            (
                CoreError::QuotaExceeded {
                    message: "daily quota".into(),
                    retry_after_secs: 7,
                },
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
            ),
            (
                CoreError::Busy {
                    message: "model `m` is busy".into(),
                    retry_after_secs: 7,
                },
                StatusCode::TOO_MANY_REQUESTS,
                "model_busy",
            ),
            (
                CoreError::TooLarge {
                    field: "content".into(),
                    message: "is too long".into(),
                },
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
            (
                CoreError::other("provider said 500"),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
            ),
            (
                CoreError::Upstream("cannot reach the provider".into()),
                StatusCode::BAD_GATEWAY,
                "upstream_error",
            ),
        ];
        for (err, status, code) in cases {
            let response = ApiError::Core(err).into_response();
            assert_eq!(response.status(), status);
            if status == StatusCode::TOO_MANY_REQUESTS {
                assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "7");
            }
            let body = body_of(response).await;
            assert_eq!(body["error"]["code"], code);
            assert!(
                !body.to_string().contains("provider said"),
                "internal details stay in the log"
            );
        }
    }
}
