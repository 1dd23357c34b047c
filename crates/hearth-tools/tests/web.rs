//! fetch_url and web_search against real local HTTP servers.

use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::{Json, Router};
use hearth_tools::{Registry, ToolError, ToolsConfig};
use serde_json::json;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn site() -> Router {
    Router::new()
        .route("/page", get(|| async {
            ([(header::CONTENT_TYPE, "text/html")],
             "<html><head><title>t</title><script>alert(1)</script></head><body><nav>menu</nav>\
              <h1>Otters</h1><p>Otters hold <b>hands</b>.</p><a href=\"/x\">more</a></body></html>")
        }))
        .route("/big", get(|| async { ([(header::CONTENT_TYPE, "text/plain")], "a".repeat(100_000)) }))
        // 100,000 nested elements: converting them recursively would overflow a stack.
        .route("/deep", get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<div>".repeat(100_000)) }))
        // Never answers: the fetch must give up on its own time limit.
        .route("/slow", get(std::future::pending::<&'static str>))
        .route("/bin", get(|| async { ([(header::CONTENT_TYPE, "application/octet-stream")], vec![0u8; 10]) }))
        .route("/to-metadata", get(|| async { Redirect::temporary("http://169.254.169.254/latest").into_response() }))
        .route("/search", get(|q: axum::extract::Query<std::collections::HashMap<String, String>>| async move {
            assert_eq!(q.get("format").map(String::as_str), Some("json"));
            Json(json!({"results": [
                {"title": "Otter facts", "url": "https://example.org/otters", "content": "They hold hands."},
                {"title": "More", "url": "https://example.org/more", "content": "x"}
            ]}))
        }))
}

fn config(allow: &[&str], searxng: Option<String>) -> ToolsConfig {
    ToolsConfig {
        fetch_allowlist: allow.iter().map(|s| (*s).to_owned()).collect(),
        searxng_url: searxng,
        fetch_max_bytes: 10_000,
        fetch_timeout_secs: 2,
    }
}

fn failed(r: Result<String, ToolError>) -> String {
    match r {
        Err(ToolError::Failed(m)) => m,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn fetch_refuses_private_addresses_unless_allowlisted() {
    let base = serve(site()).await;
    let strict = Registry::builtin(&config(&[], None));
    let msg = failed(
        strict
            .call(
                "fetch_url",
                &json!({"url": format!("{base}/page")}).to_string(),
            )
            .await,
    );
    assert!(
        msg.contains("loopback") && msg.contains("tools.fetch_allowlist"),
        "{msg}"
    );
    let msg = failed(
        strict
            .call("fetch_url", r#"{"url": "file:///etc/passwd"}"#)
            .await,
    );
    assert!(msg.contains("only http and https"), "{msg}");
    let msg = failed(
        strict
            .call("fetch_url", r#"{"url": "http://[::1]:9/"}"#)
            .await,
    );
    assert!(msg.contains("loopback"), "{msg}");

    let open = Registry::builtin(&config(&["127.0.0.1"], None));
    let page = open
        .call(
            "fetch_url",
            &json!({"url": format!("{base}/page")}).to_string(),
        )
        .await
        .expect("page");
    assert!(
        page.contains("# Otters") && page.contains("**hands**"),
        "{page}"
    );
    assert!(
        !page.contains("alert") && !page.contains("menu"),
        "scripts and navigation dropped: {page}"
    );

    let msg = failed(
        open.call(
            "fetch_url",
            &json!({"url": format!("{base}/deep")}).to_string(),
        )
        .await,
    );
    assert!(msg.contains("more than 256 levels deep"), "{msg}");

    // A redirect to a private address is checked like the first hop.
    let msg = failed(
        open.call(
            "fetch_url",
            &json!({"url": format!("{base}/to-metadata")}).to_string(),
        )
        .await,
    );
    assert!(msg.contains("link-local"), "{msg}");
}

#[tokio::test]
async fn fetch_limits_size_time_and_content_type() {
    let base = serve(site()).await;
    let tools = Registry::builtin(&config(&["127.0.0.0/8"], None));
    let big = tools
        .call(
            "fetch_url",
            &json!({"url": format!("{base}/big"), "max_chars": 500}).to_string(),
        )
        .await
        .expect("big");
    assert!(
        big.contains("[truncated"),
        "truncated: {}",
        &big[big.len() - 80..]
    );
    let msg = failed(
        tools
            .call(
                "fetch_url",
                &json!({"url": format!("{base}/slow")}).to_string(),
            )
            .await,
    );
    assert!(
        msg.contains("2 s") || msg.contains("timed out") || msg.contains("failed"),
        "{msg}"
    );
    let msg = failed(
        tools
            .call(
                "fetch_url",
                &json!({"url": format!("{base}/bin")}).to_string(),
            )
            .await,
    );
    assert!(msg.contains("octet-stream"), "{msg}");
}

#[tokio::test]
async fn web_search_uses_searxng_json_and_explains_when_unset() {
    let base = serve(site()).await;
    let tools = Registry::builtin(&config(&[], Some(base)));
    let out = tools
        .call("web_search", r#"{"query": "otters", "max_results": 1}"#)
        .await
        .expect("results");
    assert!(
        out.contains("Otter facts") && out.contains("https://example.org/otters"),
        "{out}"
    );
    assert!(!out.contains("More"), "max_results respected");
    let unset = Registry::builtin(&ToolsConfig::default());
    let msg = failed(unset.call("web_search", r#"{"query": "otters"}"#).await);
    assert!(msg.contains("tools.searxng_url"), "{msg}");
}
