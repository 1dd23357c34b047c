//! Bad input gets a clear 4xx naming the field, and nothing is stored.

use hearth_client::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_open, PASSWORD};

async fn post_raw(
    app: &crate::helpers::TestApp,
    path: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, Value) {
    let response = app
        .client
        .request(Method::POST, path)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("send");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_registrations_are_refused_and_store_nothing() {
    let app = spawn_open().await;
    let long = "a".repeat(300);
    let cases: Vec<(String, StatusCode, &str, Option<&str>)> = vec![
        (
            "{\"email\": ".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            "not json".into(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        // serde would read a struct from an array by position; a body is an object.
        (
            json!(["a@example.com", PASSWORD]).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            None,
        ),
        (
            json!({"password": PASSWORD}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("email"),
        ),
        (
            json!({"email": 5, "password": PASSWORD}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("email"),
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "role": "admin"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("role"),
        ),
        (
            json!({"email": "not-an-email", "password": PASSWORD}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            Some("email"),
        ),
        (
            json!({"email": format!("{long}@example.com"), "password": PASSWORD}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            Some("email"),
        ),
        (
            json!({"email": "a@example.com", "password": "short"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            Some("password"),
        ),
        (
            json!({"email": "a@example.com", "password": "password123"}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            Some("password"),
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": long}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            Some("name"),
        ),
        (
            json!({"email": "a@example.com", "password": PASSWORD, "name": 7}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("name"),
        ),
    ];
    for (body, status, code, field) in cases {
        let (got, value) = post_raw(&app, "/api/v1/auth/register", "application/json", &body).await;
        assert_eq!(got, status, "{body}: {value}");
        assert_eq!(value["error"]["code"], code, "{body}: {value}");
        assert_eq!(value["error"]["field"].as_str(), field, "{body}: {value}");
        assert!(value["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert!(
        app.client.auth_status().await.expect("status").needs_setup,
        "no account was stored"
    );

    let (status, value) = post_raw(&app, "/api/v1/auth/register", "text/plain", "{}").await;
    assert_eq!(
        (status, value["error"]["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
}

#[tokio::test]
async fn duplicate_email_conflicts_and_keeps_the_original() {
    let app = spawn_open().await;
    let (first, _) = app.register("ada@example.com").await;
    let body =
        json!({"email": "Ada@Example.com", "password": "a-different-passphrase"}).to_string();
    let (status, value) = post_raw(&app, "/api/v1/auth/register", "application/json", &body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(value["error"]["field"], "email");
    let again = app
        .client
        .login("ada@example.com", PASSWORD)
        .await
        .expect("the original password still works");
    assert_eq!(again.user.id, first.user.id);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = crate::helpers::spawn_with(|s| s.server.body_limit_bytes = 4096).await;
    let body = json!({"email": "a@example.com", "password": "x".repeat(10_000)}).to_string();
    let (status, value) = post_raw(&app, "/api/v1/auth/register", "application/json", &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(value["error"]["code"], "payload_too_large");
    // The optional body of refresh/logout too, even without a content type.
    let response = app
        .client
        .request(Method::POST, "/api/v1/auth/refresh")
        .body("x".repeat(10_000))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn auth_errors_and_unknown_routes() {
    let app = spawn_open().await;
    let response = app
        .client
        .request(Method::GET, "/api/v1/me")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let value: Value = response.json().await.expect("json");
    assert_eq!(value["error"]["code"], "unauthorized");
    for token in ["garbage", "eyJhbGciOiJIUzI1NiJ9.e30.x", ""] {
        let response = app
            .client
            .request(Method::GET, "/api/v1/me")
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
    }
    let response = app
        .client
        .request(Method::GET, "/api/v1/nope")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let value: Value = response.json().await.expect("json");
    assert_eq!(value["error"]["code"], "not_found");
}
