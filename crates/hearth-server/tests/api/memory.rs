//! Memories: the user's own list, the model's `memory_save` tool, relevant memories in the
//! prompt, extraction after an answer, and encryption at rest.

use std::time::Duration;

use hearth_client::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::chat::{conversation, message, until_done_within};
use crate::helpers::{fake_provider, spawn_with, TestApp};

const LIMIT: Duration = Duration::from_secs(120);

async fn memory_app(extract: bool) -> TestApp {
    spawn_with(move |s| {
        crate::knowledge::embedder_only(s);
        s.memory.extract = extract;
    })
    .await
}

async fn call(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client.request(method, path);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let response = req.send().await.expect("send");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn memories(client: &Client) -> Vec<Value> {
    let (status, body) = call(client, Method::GET, "/api/v1/memories", None).await;
    assert_eq!(status, StatusCode::OK);
    body.as_array().expect("list").clone()
}

#[tokio::test]
async fn users_list_add_edit_and_forget_memories() {
    let app = memory_app(false).await;
    let (_, user) = app.register("mem@example.com").await;
    let (_, other) = app.register("other-mem@example.com").await;
    let (status, created) = call(
        &user,
        Method::POST,
        "/api/v1/memories",
        Some(json!({"text": "  The user prefers metric units.  "})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["text"], "The user prefers metric units.");
    assert_eq!(created["source"], "user");
    let id = created["id"].as_str().expect("id").to_owned();

    // Encrypted at rest: the text is nowhere in the database.
    let stored = app.stored_bytes();
    assert!(!stored
        .windows(b"metric units".len())
        .any(|w| w == b"metric units"));

    let (status, edited) = call(
        &user,
        Method::PATCH,
        &format!("/api/v1/memories/{id}"),
        Some(json!({"text": "The user prefers imperial units."})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(edited["text"], "The user prefers imperial units.");

    // Field-named errors; another user's memory is not found and stays untouched.
    for (body, field) in [
        (json!({"text": " "}), "text"),
        (json!({"text": "x".repeat(2001)}), "text"),
    ] {
        let (status, err) = call(&user, Method::POST, "/api/v1/memories", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    for (method, body) in [
        (Method::PATCH, Some(json!({"text": "mine now"}))),
        (Method::DELETE, None),
    ] {
        let (status, _) = call(&other, method, &format!("/api/v1/memories/{id}"), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert!(memories(&other).await.is_empty());
    assert_eq!(memories(&user).await.len(), 1);

    let (status, _) = call(
        &user,
        Method::DELETE,
        &format!("/api/v1/memories/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(memories(&user).await.is_empty());
}

#[tokio::test]
async fn the_model_saves_memories_and_relevant_ones_reach_later_prompts() {
    let app = memory_app(false).await;
    let (_, admin) = app.register("admin@example.com").await;
    let fake = fake_provider(&admin).await;
    let (_, user) = app.register("cook@example.com").await;
    call(
        &user,
        Method::POST,
        "/api/v1/memories",
        Some(json!({"text": "The user's dog is called Rex."})),
    )
    .await;

    let conv = conversation(&user, "fake-tools").await;
    fake.push(hearth_fake_llm::Script::new(vec![
        hearth_fake_llm::Step::ToolCall {
            name: "memory_save".into(),
            arguments: r#"{"text": "The user lives in Lyon, France."}"#.into(),
        },
    ]));
    fake.push(hearth_fake_llm::Script::text("I will remember that."));
    let mut events = user
        .send_message_events(conv, &message("Remember that I live in Lyon."))
        .await
        .expect("send");
    until_done_within(&mut events, LIMIT).await;
    let saved = memories(&user).await;
    let lyon = saved
        .iter()
        .find(|m| m["text"] == "The user lives in Lyon, France.")
        .expect("saved by the tool");
    assert_eq!(lyon["source"], "saved");
    assert_eq!(lyon["conversation_id"], json!(conv));

    // A new conversation: the relevant memory is quoted in the user's turn (the system prompt
    // only says how to read it), the unrelated one is not there at all.
    let later = conversation(&user, "fake-chat").await;
    fake.push(hearth_fake_llm::Script::text("It is in France."));
    let mut events = user
        .send_message_events(later, &message("Which city do I live in?"))
        .await
        .expect("send");
    until_done_within(&mut events, LIMIT).await;
    let request = fake.requests().pop().expect("request");
    let messages = request["messages"].as_array().expect("messages");
    let of_role = |role: &str| -> String {
        messages
            .iter()
            .filter(|m| m["role"] == role)
            .filter_map(|m| m["content"].as_str())
            .collect()
    };
    let (system, user_turn) = (of_role("system"), of_role("user"));
    assert!(system.contains("<memories>"), "{system}");
    assert!(!system.contains("Lyon"), "{system}");
    assert!(
        user_turn.contains("<memories>\n- The user lives in Lyon, France.\n</memories>"),
        "{user_turn}"
    );
    assert!(
        user_turn.ends_with("Which city do I live in?"),
        "{user_turn}"
    );
    assert!(
        !user_turn.contains("Rex") && !system.contains("Rex"),
        "{user_turn}"
    );
}

#[tokio::test]
async fn facts_are_extracted_after_an_answer_when_enabled() {
    let app = memory_app(true).await;
    let (_, admin) = app.register("admin@example.com").await;
    let fake = fake_provider(&admin).await;
    let (_, user) = app.register("cellist@example.com").await;
    let conv = conversation(&user, "fake-chat").await;
    // Memories saved after the answer arrive on a watching WebSocket.
    let token = user
        .login("cellist@example.com", crate::helpers::PASSWORD)
        .await
        .expect("login")
        .access_token;
    let mut ws = crate::ws::connect(user.base_url()).await;
    crate::ws::send(&mut ws, json!({"type": "auth", "token": token})).await;
    assert_eq!(crate::ws::next(&mut ws).await["type"], "ready");
    crate::ws::send(&mut ws, json!({"type": "watch_memories"})).await;
    assert_eq!(crate::ws::next(&mut ws).await["type"], "ack");
    fake.push(hearth_fake_llm::Script::text(
        "Lovely, the cello is a great instrument.",
    ));
    fake.push(hearth_fake_llm::Script::text(
        "```json\n[\"The user plays the cello.\"]\n```",
    ));
    let mut events = user
        .send_message_events(conv, &message("I play the cello in an orchestra."))
        .await
        .expect("send");
    until_done_within(&mut events, LIMIT).await;
    // Extraction runs after the answer; its memory is announced when saved.
    let frame = crate::ws::next_within(&mut ws, LIMIT).await;
    assert_eq!(frame["type"], "memory", "{frame}");
    let extracted = frame["memory"].clone();
    assert_eq!(extracted["source"], "extracted");
    assert_eq!(memories(&user).await, vec![extracted.clone()]);
    assert_eq!(extracted["text"], "The user plays the cello.");
    let asked = &fake.requests()[1];
    assert!(asked["messages"][0]["content"]
        .as_str()
        .is_some_and(|s| s.contains("worth remembering")));
    assert!(asked["messages"][1]["content"]
        .as_str()
        .is_some_and(|s| s.contains("I play the cello")));
    // The extraction call is traced like an answer (it counts toward the quota).
    let traces = admin.traces(&Default::default()).await.expect("traces");
    let extraction = traces
        .iter()
        .find(|t| t.source == "memory_extract")
        .unwrap_or_else(|| panic!("no extraction trace: {traces:?}"));
    assert_eq!(extraction.model, "fake-chat");
    assert!(extraction.output_tokens > 0, "{extraction:?}");
}
