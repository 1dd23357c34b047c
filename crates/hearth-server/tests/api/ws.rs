//! The WebSocket: authentication, several runs multiplexed on one connection, resume by
//! sequence, stop, approvals, and errors as frames.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use hearth_core::chat::api::CreateConversationRequest;
use hearth_fake_llm::{Script, Step};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{fake_provider, spawn_open};

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn connect(base: &str) -> Socket {
    let url = format!("{}/api/v1/ws", base.replacen("http://", "ws://", 1));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("connect")
        .0
}

pub(crate) async fn send(ws: &mut Socket, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON frame (pings skipped), bounded in time.
pub(crate) async fn next(ws: &mut Socket) -> Value {
    next_within(ws, Duration::from_secs(20)).await
}

/// The next JSON frame (pings skipped), which must come within `limit`.
pub(crate) async fn next_within(ws: &mut Socket, limit: Duration) -> Value {
    loop {
        let msg = tokio::time::timeout(limit, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).expect("json frame");
        }
    }
}

#[tokio::test]
async fn one_socket_multiplexes_runs_and_resumes_by_sequence() {
    let app = spawn_open().await;
    let (admin, user, _, user_auth) = app.admin_and_user().await;
    let fake = fake_provider(&admin).await;
    let conv_a = user
        .create_conversation(&CreateConversationRequest {
            title: None,
            model: Some("fake-chat".into()),
            ..Default::default()
        })
        .await
        .expect("a");
    let conv_b = user
        .create_conversation(&CreateConversationRequest {
            title: None,
            model: Some("fake-chat".into()),
            ..Default::default()
        })
        .await
        .expect("b");

    let mut ws = connect(app.client.base_url()).await;
    // Anything before auth is refused.
    send(&mut ws, json!({"type": "ping"})).await;
    let refused = next(&mut ws).await;
    assert_eq!(refused["code"], "unauthorized");

    let mut ws = connect(app.client.base_url()).await;
    send(
        &mut ws,
        json!({"type": "auth", "token": user_auth.access_token}),
    )
    .await;
    assert_eq!(next(&mut ws).await["type"], "ready");

    fake.push(Script {
        steps: vec![Step::Text("alpha beta gamma".into())],
        chunk_delay_ms: 10,
        usage: None,
    });
    fake.push(Script {
        steps: vec![Step::Text("one two three".into())],
        chunk_delay_ms: 10,
        usage: None,
    });
    send(
        &mut ws,
        json!({"type": "send", "id": "a", "conversation_id": conv_a.id, "content": "first"}),
    )
    .await;
    send(
        &mut ws,
        json!({"type": "send", "id": "b", "conversation_id": conv_b.id, "content": "second"}),
    )
    .await;

    let mut runs: std::collections::HashMap<String, (Vec<u64>, String)> = Default::default();
    let mut done = 0;
    while done < 2 {
        let frame = next(&mut ws).await;
        match frame["type"].as_str() {
            Some("ack") => assert!(frame["run_id"].is_string()),
            Some("event") => {
                let run = frame["run_id"].as_str().expect("run").to_owned();
                let entry = runs.entry(run).or_default();
                entry.0.push(frame["event"]["seq"].as_u64().expect("seq"));
                if let Some(t) = frame["event"]["text"].as_str() {
                    entry.1.push_str(t);
                }
                if frame["event"]["type"] == "done" {
                    done += 1;
                }
            }
            other => panic!("unexpected frame {other:?}: {frame}"),
        }
    }
    let mut texts: Vec<String> = runs.values().map(|(_, t)| t.clone()).collect();
    texts.sort();
    assert_eq!(
        texts,
        vec!["alpha beta gamma".to_owned(), "one two three".to_owned()]
    );
    for (seqs, _) in runs.values() {
        assert_eq!(*seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    }

    // Subscribing to a finished run after a sequence replays only the rest.
    let (run, (seqs, _)) = runs.iter().next().expect("a run");
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "s", "run_id": run, "after": 2}),
    )
    .await;
    let ack = next(&mut ws).await;
    assert_eq!(ack["type"], "ack");
    let mut replay = Vec::new();
    loop {
        let frame = next(&mut ws).await;
        replay.push(frame["event"]["seq"].as_u64().expect("seq"));
        if frame["event"]["type"] == "done" {
            break;
        }
    }
    assert_eq!(replay, seqs[2..].to_vec());

    // Errors are frames, with the request id.
    send(&mut ws, json!({"type": "send", "id": "x", "conversation_id": conv_a.id, "content": "hi", "model": "nope"})).await;
    let err = next(&mut ws).await;
    assert_eq!(
        (
            err["type"].as_str(),
            err["id"].as_str(),
            err["code"].as_str()
        ),
        (Some("error"), Some("x"), Some("model_not_found"))
    );
    send(&mut ws, json!({"type": "bogus"})).await;
    assert_eq!(next(&mut ws).await["code"], "invalid_frame");
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next(&mut ws).await["type"], "pong");

    // Another user's run is a 404 over the socket too.
    let (other_auth, _) = app.register("other@example.com").await;
    let mut other = connect(app.client.base_url()).await;
    send(
        &mut other,
        json!({"type": "auth", "token": other_auth.access_token}),
    )
    .await;
    assert_eq!(next(&mut other).await["type"], "ready");
    for frame in [
        json!({"type": "subscribe", "id": "1", "run_id": run}),
        json!({"type": "stop", "id": "2", "run_id": run}),
        json!({"type": "approve", "id": "3", "run_id": run, "call_id": "c", "approve": true}),
        json!({"type": "send", "id": "4", "conversation_id": conv_a.id, "content": "hi"}),
    ] {
        send(&mut other, frame.clone()).await;
        assert_eq!(next(&mut other).await["code"], "not_found", "{frame}");
    }
}

#[tokio::test]
async fn stop_over_the_socket_ends_the_run() {
    let app = spawn_open().await;
    let (admin, user, _, user_auth) = app.admin_and_user().await;
    let fake = fake_provider(&admin).await;
    let conv = user
        .create_conversation(&CreateConversationRequest {
            title: None,
            model: Some("fake-chat".into()),
            ..Default::default()
        })
        .await
        .expect("conv");
    let mut ws = connect(app.client.base_url()).await;
    send(
        &mut ws,
        json!({"type": "auth", "token": user_auth.access_token}),
    )
    .await;
    assert_eq!(next(&mut ws).await["type"], "ready");
    fake.push(Script::new(vec![Step::Text("started".into()), Step::Hang]));
    send(
        &mut ws,
        json!({"type": "send", "conversation_id": conv.id, "content": "go"}),
    )
    .await;
    let run = loop {
        let f = next(&mut ws).await;
        if f["event"]["type"] == "text_delta" {
            break f["run_id"].as_str().expect("run").to_owned();
        }
    };
    send(&mut ws, json!({"type": "stop", "id": "s", "run_id": run})).await;
    let mut status = None;
    while status.is_none() {
        let f = next(&mut ws).await;
        if f["event"]["type"] == "done" {
            status = f["event"]["status"].as_str().map(str::to_owned);
        }
    }
    assert_eq!(status.as_deref(), Some("stopped"));
}

/// A WebSocket of `token`'s user, authenticated.
async fn ready_socket(base: &str, token: &str) -> Socket {
    let mut ws = connect(base).await;
    send(&mut ws, json!({"type": "auth", "token": token})).await;
    assert_eq!(next(&mut ws).await["type"], "ready");
    ws
}

/// The socket's last words: an `unauthorized` error frame naming why, then a close with code
/// 4401. Returns the reason.
async fn ended(ws: &mut Socket) -> String {
    let frame = next(ws).await;
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], "unauthorized", "{frame}");
    let closed = tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .expect("closed in time");
    match closed {
        Some(Ok(Message::Close(Some(close)))) => assert_eq!(u16::from(close.code), 4401),
        other => panic!("expected a close frame, got {other:?}"),
    }
    frame["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn revoking_a_credential_closes_its_open_sockets() {
    let app = spawn_open().await;
    let base = app.client.base_url().to_owned();
    let (admin, user, _, user_auth) = app.admin_and_user().await;

    // Logout ends the socket opened with that session.
    let mut ws = ready_socket(&base, &user_auth.access_token).await;
    user.logout(None).await.expect("logout");
    assert!(ended(&mut ws).await.contains("session has ended"));

    // A password change from another session ends this one's socket, not the changer's.
    let first = app
        .client
        .login("user@example.com", crate::helpers::PASSWORD)
        .await
        .expect("login");
    let second = app
        .client
        .login("user@example.com", crate::helpers::PASSWORD)
        .await
        .expect("login");
    let mut other = ready_socket(&base, &first.access_token).await;
    let mut own = ready_socket(&base, &second.access_token).await;
    app.client
        .with_token(&second.access_token)
        .change_password(crate::helpers::PASSWORD, "a new password 2")
        .await
        .expect("change password");
    assert!(ended(&mut other).await.contains("session has ended"));
    send(&mut own, json!({"type": "ping"})).await;
    assert_eq!(
        next(&mut own).await["type"],
        "pong",
        "the changer's socket stays"
    );

    // An API key's socket ends when the key is deleted.
    let key = app
        .client
        .with_token(&second.access_token)
        .create_api_key(&hearth_core::api::CreateApiKeyRequest {
            name: "socket".into(),
            expires_in_days: None,
            scopes: crate::helpers::USER_SCOPES.to_vec(),
            password: "a new password 2".into(),
        })
        .await
        .expect("key");
    let mut keyed = ready_socket(&base, &key.key).await;
    app.client
        .with_token(&second.access_token)
        .delete_api_key(key.api_key.id)
        .await
        .expect("delete key");
    assert!(ended(&mut keyed).await.contains("revoked"));

    // A role change or disabling by an admin ends every socket of the user.
    let me = app
        .client
        .with_token(&second.access_token)
        .me()
        .await
        .expect("me");
    admin
        .update_user(
            me.id,
            &hearth_core::api::UpdateUserRequest {
                role: Some(hearth_core::access::Role::Admin),
                ..Default::default()
            },
        )
        .await
        .expect("promote");
    assert!(ended(&mut own).await.contains("role changed"));
    let third = app
        .client
        .login("user@example.com", "a new password 2")
        .await
        .expect("login");
    let mut last = ready_socket(&base, &third.access_token).await;
    admin
        .update_user(
            me.id,
            &hearth_core::api::UpdateUserRequest {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("disable");
    let reason = ended(&mut last).await;
    assert!(
        reason.contains("disabled") || reason.contains("session has ended"),
        "{reason}"
    );
}

#[tokio::test]
async fn deleting_a_key_ends_its_streams() {
    let app = spawn_open().await;
    let (admin, user, _, _) = app.admin_and_user().await;
    let fake = fake_provider(&admin).await;
    let key = crate::helpers::api_key(&user, "stream", crate::helpers::USER_SCOPES).await;
    fake.push(Script::new(vec![Step::Text("started".into()), Step::Hang]));
    let response = app
        .client
        .request(hearth_client::Method::POST, "/v1/chat/completions")
        .bearer_auth(&key.key)
        .json(&json!({"model": "fake-chat", "stream": true,
                      "messages": [{"role": "user", "content": "go"}]}))
        .send()
        .await
        .expect("stream starts");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("started") {
        let chunk = tokio::time::timeout(Duration::from_secs(20), body.next())
            .await
            .expect("a chunk in time")
            .expect("open")
            .expect("bytes");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    user.delete_api_key(key.api_key.id).await.expect("delete");
    // The stream says why and ends, although the upstream still hangs.
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(20), body.next())
            .await
            .expect("the stream ends in time");
        match chunk {
            Some(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk.expect("bytes"))),
            None => break,
        }
    }
    assert!(seen.contains(r#""code":"unauthorized""#), "{seen}");
    assert!(!seen.contains("[DONE]"), "{seen}");
    // Dropping the stream closed the upstream call.
    fake.wait_idle().await;
}

#[tokio::test]
async fn sockets_are_shared_out_per_user_and_while_authenticating() {
    let app = crate::helpers::spawn_with(|s| {
        s.auth.registration = hearth_core::api::Registration::Open;
        s.server.max_websockets_per_user = 2;
        s.server.max_pending_websockets = 1;
    })
    .await;
    let base = app.client.base_url().to_owned();
    let (auth, _) = app.register("sockets@example.com").await;

    // One connection may wait to authenticate; the next upgrade is refused until it has.
    let mut waiting = connect(&base).await;
    let url = format!("{}/api/v1/ws", base.replacen("http://", "ws://", 1));
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    send(
        &mut waiting,
        json!({"type": "auth", "token": auth.access_token}),
    )
    .await;
    assert_eq!(next(&mut waiting).await["type"], "ready");

    // Two sockets per user: the third is told why and closed.
    let _second = ready_socket(&base, &auth.access_token).await;
    let mut third = connect(&base).await;
    send(
        &mut third,
        json!({"type": "auth", "token": auth.access_token}),
    )
    .await;
    let refused = next(&mut third).await;
    assert_eq!(refused["code"], "too_many_connections", "{refused}");
    assert!(refused["message"]
        .as_str()
        .is_some_and(|m| m.contains("server.max_websockets_per_user")));

    // A socket that closes gives its slot back.
    waiting.close(None).await.expect("close");
    socket_once_a_slot_is_free(&base, &auth.access_token).await;
}

/// A new socket of `token`'s user, once one of their slots has been given back (the server
/// frees a slot when it notices the connection ended: polled, with a deadline).
async fn socket_once_a_slot_is_free(base: &str, token: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = connect(base).await;
        send(&mut again, json!({"type": "auth", "token": token})).await;
        if next(&mut again).await["type"] == "ready" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never freed"
        );
    }
}

#[tokio::test]
async fn sse_streams_count_in_the_same_share() {
    let app = crate::helpers::spawn_with(|s| {
        s.auth.registration = hearth_core::api::Registration::Open;
        s.server.max_websockets_per_user = 1;
    })
    .await;
    let base = app.client.base_url().to_owned();
    let (admin, _, admin_auth, _) = app.admin_and_user().await;
    let fake = fake_provider(&admin).await;
    let conv = admin
        .create_conversation(&CreateConversationRequest {
            model: Some("fake-chat".into()),
            ..Default::default()
        })
        .await
        .expect("conversation");
    fake.push(Script::new(vec![Step::Text("thinking".into()), Step::Hang]));
    // One SSE stream holds the user's only slot...
    let mut stream = admin
        .send_message_events(
            conv.id,
            &hearth_core::chat::api::SendMessageRequest {
                content: "go".into(),
                ..Default::default()
            },
        )
        .await
        .expect("first stream");
    let run_id = match stream.next().await.expect("event").expect("ok").kind {
        hearth_core::chat::api::RunEventKind::RunStarted { run_id, .. } => run_id,
        other => panic!("expected run_started, got {other:?}"),
    };
    // ...so a socket, another stream of the run and an OpenAI stream are refused, naming it.
    let mut socket = connect(&base).await;
    send(
        &mut socket,
        json!({"type": "auth", "token": admin_auth.access_token}),
    )
    .await;
    assert_eq!(next(&mut socket).await["code"], "too_many_connections");
    let second = admin
        .request(
            hearth_client::Method::GET,
            &format!("/api/v1/conversations/{}/runs/{run_id}/events", conv.id),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(second.status(), 429);
    let body: Value = second.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("server.max_websockets_per_user")));
    let openai = admin
        .request(hearth_client::Method::POST, "/v1/chat/completions")
        .json(&json!({"model": "fake-chat", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(openai.status(), 429);
    // A plain request needs no slot.
    admin.get_conversation(conv.id).await.expect("plain GET");

    // Stopping the run ends the stream, and its slot comes back.
    admin.stop_run(run_id).await.expect("stop");
    while stream.next().await.is_some() {}
    drop(stream);
    socket_once_a_slot_is_free(&base, &admin_auth.access_token).await;
}

#[tokio::test]
async fn answers_in_progress_are_shared_out_per_user() {
    let app = crate::helpers::spawn_with(|s| {
        s.auth.registration = hearth_core::api::Registration::Open;
        s.chat.max_runs_per_user = 1;
    })
    .await;
    let (admin, user, _, user_auth) = app.admin_and_user().await;
    let fake = fake_provider(&admin).await;
    let first = crate::chat::conversation(&user, "fake-chat").await;
    let second = crate::chat::conversation(&user, "fake-chat").await;
    let mut ws = ready_socket(app.client.base_url(), &user_auth.access_token).await;
    fake.push(Script::new(vec![Step::Text("thinking".into()), Step::Hang]));
    send(
        &mut ws,
        json!({"type": "send", "id": "a", "conversation_id": first, "content": "one"}),
    )
    .await;
    let run = loop {
        let f = next(&mut ws).await;
        if f["type"] == "ack" {
            break f["run_id"].as_str().expect("run").to_owned();
        }
    };
    let err = user
        .send_message(second, &crate::chat::message("two"))
        .await
        .expect_err("one answer at a time");
    assert_eq!(
        err.status(),
        Some(hearth_client::StatusCode::TOO_MANY_REQUESTS)
    );
    assert!(err.to_string().contains("chat.max_runs_per_user"), "{err}");
    // The admin's share is their own.
    let theirs = crate::chat::conversation(&admin, "fake-chat").await;
    fake.push(Script::text("fine"));
    admin
        .send_message(theirs, &crate::chat::message("hello"))
        .await
        .expect("another user's run");
    // Once the first answer stops, the user may ask again.
    send(&mut ws, json!({"type": "stop", "id": "s", "run_id": run})).await;
    loop {
        let f = next(&mut ws).await;
        if f["event"]["type"] == "done" {
            break;
        }
    }
    fake.push(Script::text("second answer"));
    user.send_message(second, &crate::chat::message("two"))
        .await
        .expect("room again");
}
