//! The OpenAI-compatible API: wire shapes checked from Rust, and the official `openai` Python
//! package driving it unmodified (`HEARTH_TEST_PYTHON` names a Python that has it; `make test`
//! installs it).

use futures_util::StreamExt as _;
use hearth_client::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{fake_provider, spawn_open};

#[tokio::test]
async fn chat_completions_speak_the_openai_wire_format() {
    let app = spawn_open().await;
    let (admin, user, _, _) = app.admin_and_user().await;
    let _fake = fake_provider(&admin).await;
    let key = crate::helpers::api_key(&user, "sdk", crate::helpers::USER_SCOPES)
        .await
        .key;
    let api = app.client.with_token(key);

    let models: Value = api
        .request(Method::GET, "/v1/models")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(models["object"], "list");
    assert!(models["data"]
        .as_array()
        .expect("data")
        .iter()
        .any(|m| m["id"] == "fake-chat"));

    let done: Value = api
        .request(Method::POST, "/v1/chat/completions")
        .json(&json!({"model": "fake-chat", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(done["object"], "chat.completion");
    assert_eq!(done["choices"][0]["message"]["content"], "You said: hi");
    assert!(done["usage"]["total_tokens"].as_u64().expect("usage") > 0);

    let response = api
        .request(Method::POST, "/v1/chat/completions")
        .json(
            &json!({"model": "fake-chat", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "yo"}]}),
        )
        .send()
        .await
        .expect("send");
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/event-stream"));
    let body = response.text().await.expect("body");
    let datas: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(datas.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = datas[..datas.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("chunk"))
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "You said: yo");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    assert!(
        chunks.last().expect("usage chunk")["usage"]["total_tokens"]
            .as_u64()
            .expect("n")
            > 0
    );

    // Bad input names the field; an unknown model is a 404 with a code.
    for (body, status, field) in [
        (
            json!({"model": "fake-chat", "messages": []}),
            StatusCode::BAD_REQUEST,
            Some("messages"),
        ),
        (
            json!({"model": "fake-chat", "messages": [{"role": "wizard", "content": "x"}]}),
            StatusCode::BAD_REQUEST,
            Some("messages[0].role"),
        ),
        (
            json!({"model": "fake-chat", "messages": [{"role": "tool", "content": "x"}]}),
            StatusCode::BAD_REQUEST,
            Some("messages[0].tool_call_id"),
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("model"),
        ),
        (
            json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
            StatusCode::NOT_FOUND,
            Some("model"),
        ),
    ] {
        let r = api
            .request(Method::POST, "/v1/chat/completions")
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), status, "{body}");
        let err: Value = r.json().await.expect("json");
        assert_eq!(err["error"]["field"].as_str(), field, "{body}");
    }
    let r = app
        .client
        .request(Method::GET, "/v1/models")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_upstream_call() {
    let app = spawn_open().await;
    let (admin, user, _, _) = app.admin_and_user().await;
    let fake = fake_provider(&admin).await;
    fake.push(hearth_fake_llm::Script::new(vec![
        hearth_fake_llm::Step::Text("some".into()),
        hearth_fake_llm::Step::Hang,
    ]));
    let response = user
        .request(Method::POST, "/v1/chat/completions")
        .json(&json!({"model": "fake-chat", "stream": true, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .expect("send");
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("some") {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.expect("chunk").expect("bytes"),
        ));
    }
    drop(body);
    tokio::time::timeout(std::time::Duration::from_secs(10), fake.wait_idle())
        .await
        .expect("the upstream connection was closed");
}

#[tokio::test]
async fn the_official_openai_python_client_works_unmodified() {
    let Ok(python) = std::env::var("HEARTH_TEST_PYTHON") else {
        eprintln!("skipped: HEARTH_TEST_PYTHON is unset (make test sets it to a Python with the `openai` package)");
        return;
    };
    let app = spawn_open().await;
    let (admin, user, _, _) = app.admin_and_user().await;
    let _fake = fake_provider(&admin).await;
    let key = crate::helpers::api_key(&user, "python", crate::helpers::USER_SCOPES)
        .await
        .key;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_client.py");
    let out = tokio::process::Command::new(&python)
        .arg(script)
        .arg(format!("{}/v1", app.client.base_url()))
        .arg(&key)
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openai client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
