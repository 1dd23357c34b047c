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
