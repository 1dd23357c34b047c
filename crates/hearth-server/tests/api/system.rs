use hearth_client::{Method, StatusCode};

use crate::helpers::spawn_open;

#[tokio::test]
async fn health_ready_and_metrics_by_route_template() {
    let app = spawn_open().await;
    assert_eq!(app.client.health().await.expect("health")["status"], "ok");
    assert_eq!(app.client.ready().await.expect("ready")["status"], "ready");
    let (_, client) = app.register("ada@example.com").await;
    let key = crate::helpers::api_key(&client, "k", crate::helpers::USER_SCOPES).await;
    client.get_api_key(key.api_key.id).await.expect("get");
    let metrics = app.client.metrics().await.expect("metrics");
    assert!(metrics.contains(r#"hearth_http_requests_total{method="GET",route="/api/v1/api-keys/{id}",status="200"} 1"#), "{metrics}");
    assert!(
        metrics.contains("hearth_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    // The background loops run under the runtime and report there.
    assert!(
        metrics.contains(r#"hearth_background_task_up{task="heartbeat"} 1"#)
            && metrics.contains(r#"hearth_background_task_restarts{task="heartbeat"} 0"#),
        "{metrics}"
    );
    // So do the job pools and the scheduler, and each pool's counts are there from the start.
    for task in [
        "jobs-ingest",
        "jobs-general",
        "job-scheduler",
        "kb-reconcile",
    ] {
        assert!(
            metrics.contains(&format!(r#"hearth_background_task_up{{task="{task}"}} 1"#)),
            "{task}: {metrics}"
        );
    }
    for pool in ["ingest", "general"] {
        assert!(
            metrics.contains(&format!(
                r#"hearth_job_outcomes{{pool="{pool}",outcome="dead"}} 0"#
            )) && metrics.contains(&format!(r#"hearth_job_run_seconds_sum{{pool="{pool}"}}"#)),
            "{pool}: {metrics}"
        );
    }
    assert!(
        !metrics.contains(&key.api_key.id.to_string()),
        "ids never become labels"
    );
}

#[tokio::test]
async fn security_headers_and_request_ids() {
    let app = spawn_open().await;
    let response = app
        .client
        .request(Method::GET, "/health")
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("send");
    let h = response.headers();
    assert_eq!(h["x-request-id"], "abc-123");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-security-policy"]
        .to_str()
        .expect("ascii")
        .contains("frame-ancestors 'none'"));
    let response = app
        .client
        .request(Method::GET, "/health")
        .send()
        .await
        .expect("send");
    assert_eq!(
        response.headers()["x-request-id"].len(),
        36,
        "a generated id when none is sent"
    );
}

#[tokio::test]
async fn openapi_and_docs() {
    let app = spawn_open().await;
    let doc: serde_json::Value = app
        .client
        .request(Method::GET, "/openapi.json")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    for path in [
        "/api/v1/auth/login",
        "/api/v1/me",
        "/api/v1/api-keys/{id}",
        "/api/v1/admin/users/{id}",
        "/health",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["schemas"]["AuthResponse"].is_object());
    let docs = app
        .client
        .request(Method::GET, "/docs/")
        .send()
        .await
        .expect("send");
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.expect("text").contains("swagger"));
}

#[tokio::test]
async fn ui_routes_fall_back_to_the_shell_without_caching() {
    let app = spawn_open().await;
    for path in ["/", "/settings", "/admin/users"] {
        let response = app
            .client
            .request(Method::GET, path)
            .send()
            .await
            .expect("send");
        assert!(
            matches!(
                response.status(),
                StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE
            ),
            "{path}"
        );
        assert_eq!(response.headers()["cache-control"], "no-cache", "{path}");
        assert!(response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html"));
    }
    let missing = app
        .client
        .request(Method::GET, "/assets/missing-0000.js")
        .send()
        .await
        .expect("send");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cors_allowlist() {
    let app = crate::helpers::spawn_with(|s| {
        s.server.cors_allowed_origins = vec!["https://app.example.com".into()]
    })
    .await;
    let allowed = app
        .client
        .request(Method::OPTIONS, "/api/v1/me")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("send");
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().expect("ascii")),
        Some("https://app.example.com")
    );
    let denied = app
        .client
        .request(Method::OPTIONS, "/api/v1/me")
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("send");
    assert!(denied
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn wrong_methods_and_non_get_ui_paths_get_json_errors_with_headers() {
    let app = spawn_open().await;
    let response = app
        .client
        .request(Method::DELETE, "/api/v1/me")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response.headers()["x-content-type-options"],
        "nosniff",
        "security headers on errors too"
    );
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let response = app
        .client
        .request(Method::POST, "/settings")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found");
    let ui = app
        .client
        .request(Method::GET, "/settings")
        .send()
        .await
        .expect("send");
    assert_eq!(ui.headers()["x-frame-options"], "DENY");
    assert_eq!(ui.headers()["referrer-policy"], "no-referrer");
    assert!(ui.headers().get("permissions-policy").is_some());
}

#[tokio::test]
async fn no_cors_headers_without_an_allowlist() {
    let app = spawn_open().await;
    let response = app
        .client
        .request(Method::GET, "/health")
        .header("origin", "https://elsewhere.example.com")
        .send()
        .await
        .expect("send");
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let app = crate::helpers::spawn_with(|s| {
        s.server.metrics_token = Some(hearth_core::Secret::new("scrape-me-please"));
    })
    .await;
    let refused = app
        .client
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let wrong = app
        .client
        .request(Method::GET, "/metrics")
        .bearer_auth("scrape-me-pleasf")
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let scraped = app
        .client
        .request(Method::GET, "/metrics")
        .bearer_auth("scrape-me-please")
        .send()
        .await
        .expect("send");
    assert_eq!(scraped.status(), StatusCode::OK);
    let text = scraped.text().await.expect("body");
    assert!(text.contains("hearth_http_requests_total"), "{text}");
}
