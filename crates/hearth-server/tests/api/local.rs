//! The built-in models end to end: a fresh server pointed at a folder holding only the fetched
//! reference models (scripts/fetch-models.sh) chats with no provider configured, over SSE, the
//! WebSocket and `/v1`, and embeds over `/v1/embeddings`.

use hearth_client::{Method, StatusCode};
use serde_json::{json, Value};

use crate::chat::{conversation, done_of, message, text_of, until_done_within};
use crate::helpers::{spawn_with, TestApp};
use crate::ws::{connect, next, next_within, send};

use hearth_local::reference::{dir as models_dir, CHAT_MODEL as CHAT, EMBEDDING_MODEL as EMBED};

async fn local_app(parallel: usize, queue: usize) -> TestApp {
    let dir = models_dir();
    spawn_with(move |s| {
        s.auth.registration = hearth_core::api::Registration::Open;
        s.local.models_dir = Some(dir);
        s.local.parallel = parallel;
        s.local.queue = queue;
        s.local.context_per_sequence = 1024;
    })
    .await
}

/// A client of `app` holding a new user's API key.
async fn api_client(app: &TestApp) -> hearth_client::Client {
    let (_, user) = app.register("first@example.com").await;
    let key = crate::helpers::api_key(&user, "sdk", crate::helpers::USER_SCOPES)
        .await
        .key;
    app.client.with_token(key)
}

/// `POST path` with a JSON body; the JSON answer, whatever the status.
async fn post(api: &hearth_client::Client, path: &str, body: Value) -> Value {
    api.request(Method::POST, path)
        .json(&body)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn a_fresh_server_chats_with_the_built_in_model_over_sse_and_websocket() {
    let app = local_app(2, 8).await;
    // The first user, with nothing configured, already has the model.
    let (_, user) = app.register("first@example.com").await;
    let models = user.models().await.expect("models");
    let local = models
        .iter()
        .find(|m| m.name == CHAT)
        .expect("the built-in model is offered");
    assert_eq!(local.provider, "Built-in");
    assert_eq!(local.capabilities.context_length, Some(1024));

    let conv = conversation(&user, CHAT).await;
    let mut events = user
        .send_message_events(conv, &message("What is the capital of France?"))
        .await
        .expect("sse");
    // CPU inference shares two cores with the rest of the suite: allow it time.
    let events = until_done_within(&mut events, std::time::Duration::from_secs(180)).await;
    let (status, answer) = done_of(&events);
    assert_eq!(status, hearth_core::chat::api::RunStatus::Complete);
    assert!(!answer.content.trim().is_empty());
    assert_eq!(text_of(&events), answer.content);

    let (auth, _) = app.register("second@example.com").await;
    let other = app.client.with_token(&auth.access_token);
    let conv = conversation(&other, CHAT).await;
    let mut ws = connect(other.base_url()).await;
    send(&mut ws, json!({"type": "auth", "token": auth.access_token})).await;
    assert_eq!(next(&mut ws).await["type"], "ready");
    send(
        &mut ws,
        json!({"type": "send", "id": "q", "conversation_id": conv, "content": "Say hello."}),
    )
    .await;
    let mut text = String::new();
    loop {
        let frame = next_within(&mut ws, std::time::Duration::from_secs(120)).await;
        if frame["type"] == "event" {
            if let Some(t) = frame["event"]["text"].as_str() {
                text.push_str(t);
            }
            if frame["event"]["type"] == "done" {
                assert_eq!(frame["event"]["status"], "complete", "{frame}");
                break;
            }
        }
    }
    assert!(!text.trim().is_empty());
}

#[tokio::test]
async fn v1_serves_the_built_in_chat_model_and_embeddings() {
    let app = local_app(2, 8).await;
    let api = api_client(&app).await;

    let models: Value = api
        .request(Method::GET, "/v1/models")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&CHAT) && ids.contains(&EMBED), "{ids:?}");

    let done: Value = post(
        &api,
        "/v1/chat/completions",
        json!({"model": CHAT, "temperature": 0, "max_tokens": 16, "seed": 1,
                      "messages": [{"role": "user", "content": "Name a colour."}]}),
    )
    .await;
    assert_eq!(done["object"], "chat.completion", "{done}");
    assert!(!done["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .is_empty());
    assert!(done["usage"]["completion_tokens"].as_u64().expect("usage") <= 16);

    let body = api
        .request(Method::POST, "/v1/chat/completions")
        .json(&json!({"model": CHAT, "stream": true, "max_tokens": 8,
                      "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("body");
    assert!(
        body.contains("chat.completion.chunk") && body.trim_end().ends_with("data: [DONE]"),
        "{body}"
    );

    // A tool the model must call comes back as a valid OpenAI tool call.
    // Greedy: sampled at the default temperature, the arguments could ramble past max_tokens.
    let done: Value = post(&api, "/v1/chat/completions", json!({"model": CHAT, "max_tokens": 64,
            "temperature": 0,
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
            "tool_choice": "required"})).await;
    let call = &done["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "weather", "{done}");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().expect("args")).expect("JSON");
    assert!(args["city"].is_string(), "{args}");
    assert_eq!(done["choices"][0]["finish_reason"], "tool_calls");

    let out: Value = post(
        &api,
        "/v1/embeddings",
        json!({"model": EMBED, "input": ["a cat", "a kitten", "a tax return"]}),
    )
    .await;
    let vecs: Vec<Vec<f64>> = out["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| serde_json::from_value(d["embedding"].clone()).expect("floats"))
        .collect();
    assert_eq!(vecs.len(), 3);
    assert_eq!(vecs[0].len(), 384);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    assert!(
        dot(&vecs[0], &vecs[1]) > dot(&vecs[0], &vecs[2]),
        "cat is nearer kitten than tax"
    );
    assert!(out["usage"]["prompt_tokens"].as_u64().expect("usage") > 0);

    let b64: Value = post(
        &api,
        "/v1/embeddings",
        json!({"model": EMBED, "input": "a cat", "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(
        b64["data"][0]["embedding"].as_str().expect("base64").len(),
        2048,
        "384 f32 in base64"
    );
}

#[tokio::test]
async fn bad_requests_to_the_built_in_models_name_the_field() {
    let app = local_app(1, 0).await;
    let api = api_client(&app).await;
    let cases = [
        (
            "/v1/chat/completions",
            json!({"model": CHAT, "messages": [{"role": "user", "content": "word ".repeat(1500)}]}),
            StatusCode::BAD_REQUEST,
            "messages",
        ),
        (
            "/v1/chat/completions",
            json!({"model": CHAT, "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}),
            StatusCode::BAD_REQUEST,
            "response_format.type",
        ),
        (
            "/v1/chat/completions",
            json!({"model": CHAT, "messages": [{"role": "user", "content": "x"}], "top_p": 7}),
            StatusCode::BAD_REQUEST,
            "top_p",
        ),
        (
            "/v1/chat/completions",
            json!({"model": CHAT, "messages": [{"role": "user", "content": "x"}], "stop": [1]}),
            StatusCode::BAD_REQUEST,
            "stop",
        ),
        (
            "/v1/embeddings",
            json!({"model": EMBED, "input": [1, 2]}),
            StatusCode::BAD_REQUEST,
            "input[0]",
        ),
        (
            "/v1/embeddings",
            json!({"model": EMBED, "input": []}),
            StatusCode::BAD_REQUEST,
            "input",
        ),
        (
            "/v1/embeddings",
            json!({"model": EMBED, "input": "x", "dimensions": 64}),
            StatusCode::BAD_REQUEST,
            "dimensions",
        ),
        (
            "/v1/embeddings",
            json!({"model": EMBED, "input": "x", "encoding_format": "hex"}),
            StatusCode::BAD_REQUEST,
            "encoding_format",
        ),
    ];
    for (path, body, status, field) in cases {
        let response = api
            .request(Method::POST, path)
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), status, "{path} {body}");
        let err: Value = response.json().await.expect("json");
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let response = api
        .request(Method::POST, "/v1/embeddings")
        .json(&json!({"model": "nope", "input": "x"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    // One slot and no queue: while one answer streams, the next is refused.
    let app = local_app(1, 0).await;
    let api = api_client(&app).await;
    let mut running = api
        .request(Method::POST, "/v1/chat/completions")
        .json(
            &json!({"model": CHAT, "stream": true, "max_tokens": 400, "temperature": 1.0,
                      "messages": [{"role": "user", "content": "Tell me a very long story."}]}),
        )
        .send()
        .await
        .expect("send");
    // Its first content chunk means it holds the slot.
    let mut seen = String::new();
    while !seen.contains("\"content\":\"") || seen.matches("data:").count() < 3 {
        let chunk = running.chunk().await.expect("chunk").expect("more");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let refused = api
        .request(Method::POST, "/v1/chat/completions")
        .json(&json!({"model": CHAT, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
    let err: Value = refused.json().await.expect("json");
    assert_eq!(err["error"]["code"], "model_busy");
    drop(running);
}

#[tokio::test]
async fn a_broken_model_file_is_skipped_and_everything_else_still_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = dir.path().join("models");
    std::fs::create_dir(&models).expect("mkdir");
    let good = models_dir().join(format!("{CHAT}.gguf"));
    std::os::unix::fs::symlink(&good, models.join(format!("{CHAT}.gguf"))).expect("link");
    std::fs::write(
        models.join("broken.gguf"),
        b"GGUF\x03\x00\x00\x00 cut short",
    )
    .expect("write");
    let app = spawn_with(move |s| {
        s.auth.registration = hearth_core::api::Registration::Open;
        s.local.models_dir = Some(models);
        s.local.parallel = 1;
        s.local.context_per_sequence = 1024;
    })
    .await;
    let (_, admin) = app.register("admin@example.com").await;
    // Another provider works beside the built-in one.
    let _fake = crate::helpers::fake_provider(&admin).await;
    let names = crate::helpers::model_names(&admin).await;
    assert!(names.iter().any(|n| n == CHAT), "{names:?}");
    assert!(names.iter().any(|n| n == "fake-chat"), "{names:?}");
    assert!(!names.iter().any(|n| n == "broken"), "{names:?}");
    let conv = conversation(&admin, CHAT).await;
    let answer = admin
        .send_message(conv, &message("Hello!"))
        .await
        .expect("answers");
    assert!(!answer.content.is_empty(), "{answer:?}");
    let conv = conversation(&admin, "fake-chat").await;
    let answer = admin
        .send_message(conv, &message("hi"))
        .await
        .expect("answers");
    assert_eq!(answer.content, "You said: hi");
    // The built-in provider cannot be made by hand.
    let err = admin
        .create_provider(&hearth_core::providers::CreateProviderRequest {
            kind: hearth_core::providers::ProviderKind::Local,
            name: "mine".into(),
            base_url: None,
            api_key: None,
        })
        .await
        .expect_err("refused");
    assert_eq!(err.field(), Some("kind"));
}

#[tokio::test]
async fn the_built_in_model_answers_from_an_attached_knowledge_base_with_sources() {
    let app = local_app(2, 8).await;
    let (auth, user) = app.register("reader@example.com").await;
    let kb = user
        .create_knowledge_base(&hearth_core::knowledge::CreateKnowledgeBase {
            name: "Bakery".into(),
            ..Default::default()
        })
        .await
        .expect("knowledge base");
    assert_eq!(kb.embedding_model, EMBED);
    let mut ws = connect(user.base_url()).await;
    send(&mut ws, json!({"type": "auth", "token": auth.access_token})).await;
    assert_eq!(next(&mut ws).await["type"], "ready");
    send(&mut ws, json!({"type": "watch_documents"})).await;
    assert_eq!(next(&mut ws).await["type"], "ack");
    let doc = user
        .upload_documents(
            kb.id,
            vec![hearth_client::Upload::bytes(
                "bakery.md",
                "# Opening hours\n\nThe Hearth bakery opens at 7 am and closes at 6 pm.",
            )],
            None,
        )
        .await
        .expect("upload")
        .documents[0]
        .id;
    loop {
        let frame = next_within(&mut ws, std::time::Duration::from_secs(120)).await;
        if frame["document"]["id"] == json!(doc) && frame["document"]["status"] == "indexed" {
            break;
        }
        assert_ne!(frame["document"]["status"], "failed", "{frame}");
    }
    let conv = user
        .create_conversation(&hearth_core::chat::api::CreateConversationRequest {
            model: Some(CHAT.into()),
            knowledge_base_ids: Some(vec![kb.id]),
            ..Default::default()
        })
        .await
        .expect("conversation")
        .id;
    let mut events = user
        .send_message_events(conv, &message("When does the bakery open?"))
        .await
        .expect("sse");
    let events = until_done_within(&mut events, std::time::Duration::from_secs(180)).await;
    let (status, answer) = done_of(&events);
    assert_eq!(status, hearth_core::chat::api::RunStatus::Complete);
    assert!(!answer.content.trim().is_empty());
    assert_eq!(answer.sources.len(), 1);
    assert_eq!(answer.sources[0].document_name, "bakery.md");
    assert!(answer.sources[0].text.contains("7 am"));
}
