//! Providers, models and streaming chat against the scripted fake upstream over real HTTP.

use std::time::Duration;

use futures_util::StreamExt as _;
use hearth_client::{Client, RunEvents};
use hearth_core::chat::api::{
    CreateConversationRequest, MessageStatus, RegenerateRequest, RunEvent, RunEventKind, RunStatus,
    SendMessageRequest, UpdateConversationRequest,
};
use hearth_core::chat::content::{Part, ToolCallStatus};
use hearth_core::chat::ToolPolicy;
use hearth_core::providers::{CreateProviderRequest, ProviderKind, UpdateModelRequest};
use hearth_fake_llm::{FakeLlm, Script, Step};

use crate::helpers::{fake_provider, spawn_with, TestApp};

async fn setup(
    configure: impl FnOnce(&mut hearth_server::settings::Settings),
) -> (TestApp, Client, Client, FakeLlm) {
    let app = spawn_with(|s| {
        s.auth.registration = hearth_core::api::Registration::Open;
        s.chat.max_retries = 0;
        configure(s);
    })
    .await;
    let (admin, user, _, _) = app.admin_and_user().await;
    let fake = fake_provider(&admin).await;
    (app, admin, user, fake)
}

/// The admin view of the model called `name`.
async fn model_named(admin: &Client, name: &str) -> hearth_core::providers::ModelView {
    admin
        .admin_models()
        .await
        .expect("models")
        .into_iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("model {name}"))
}

pub(crate) fn message(content: &str) -> SendMessageRequest {
    SendMessageRequest {
        content: content.into(),
        ..Default::default()
    }
}

pub(crate) async fn conversation(client: &Client, model: &str) -> hearth_core::ids::ConversationId {
    client
        .create_conversation(&CreateConversationRequest {
            title: None,
            model: Some(model.into()),
            ..Default::default()
        })
        .await
        .expect("create conversation")
        .id
}

/// Reads events until `done` (bounded, so a hang fails instead of blocking forever).
pub(crate) async fn until_done(events: &mut RunEvents) -> Vec<RunEvent> {
    until_done_within(events, Duration::from_secs(30)).await
}

/// The events up to `done`, which must come within `limit`.
pub(crate) async fn until_done_within(events: &mut RunEvents, limit: Duration) -> Vec<RunEvent> {
    let mut out = Vec::new();
    let read = async {
        while let Some(e) = events.next().await {
            let e = e.expect("event");
            let done = matches!(e.kind, RunEventKind::Done { .. });
            out.push(e);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .expect("run finished in time");
    out
}

pub(crate) fn text_of(events: &[RunEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            RunEventKind::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

pub(crate) fn done_of(events: &[RunEvent]) -> (RunStatus, hearth_core::chat::api::MessageView) {
    match events.last().map(|e| &e.kind) {
        Some(RunEventKind::Done { status, message }) => (*status, (**message).clone()),
        other => panic!("last event is not done: {other:?}"),
    }
}

#[tokio::test]
async fn providers_sync_models_and_users_see_only_enabled_ones() {
    let (app, admin, user, fake) = setup(|_| {}).await;
    let providers = admin.list_providers().await.expect("list");
    assert_eq!(providers.len(), 1);
    assert!(providers[0].has_api_key);
    // The provider key is encrypted at rest.
    let stored = app.stored_bytes();
    assert!(!stored
        .windows(20)
        .any(|w| w == &b"sk-fake-upstream-key"[..20]));

    // A second provider whose model ids collide gets prefixed names.
    let anthropic = admin
        .create_provider(&CreateProviderRequest {
            kind: ProviderKind::Anthropic,
            name: "claude".into(),
            base_url: Some(fake.anthropic_url()),
            api_key: None,
        })
        .await
        .expect("anthropic");
    let synced = admin.sync_provider(anthropic.id).await.expect("sync");
    assert!(
        synced.iter().any(|m| m.name == "claude/fake-chat"),
        "{synced:?}"
    );

    let names = crate::helpers::model_names(&user).await;
    assert!(names.contains(&"fake-chat".to_owned()));
    let model = model_named(&admin, "fake-chat").await;
    let updated = admin
        .update_model(
            model.id,
            &UpdateModelRequest {
                enabled: Some(false),
                aliases: Some(vec!["fc".into()]),
                input_price_per_mtok: Some(Some(1.5)),
                ..Default::default()
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.aliases, vec!["fc".to_owned()]);
    assert_eq!(updated.input_price_per_mtok, Some(1.5));
    // `null` clears a price; leaving it out keeps it.
    let kept = admin
        .update_model(
            model.id,
            &UpdateModelRequest {
                display_name: Some("Fake".into()),
                ..Default::default()
            },
        )
        .await
        .expect("keep");
    assert_eq!(kept.input_price_per_mtok, Some(1.5));
    let cleared: serde_json::Value = admin
        .request(
            hearth_client::Method::PATCH,
            &format!("/api/v1/admin/models/{}", model.id),
        )
        .json(&serde_json::json!({"input_price_per_mtok": null}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(cleared["input_price_per_mtok"].is_null(), "{cleared}");
    let names = crate::helpers::model_names(&user).await;
    assert!(
        !names.contains(&"fake-chat".to_owned()),
        "disabled models are hidden"
    );

    // A disabled model cannot be used; neither can an unknown one.
    let conv = conversation(&user, "fake-tools").await;
    for model in ["fake-chat", "fc", "no-such-model"] {
        let err = user
            .send_message(
                conv,
                &SendMessageRequest {
                    model: Some(model.into()),
                    ..message("hi")
                },
            )
            .await
            .expect_err(model);
        assert_eq!(
            err.status(),
            Some(hearth_client::StatusCode::NOT_FOUND),
            "{model}"
        );
        assert_eq!(err.code(), Some("model_not_found"), "{model}");
    }
    // Alias collisions are refused.
    let other = model_named(&admin, "fake-tools").await;
    let err = admin
        .update_model(
            other.id,
            &UpdateModelRequest {
                aliases: Some(vec!["fc".into()]),
                ..Default::default()
            },
        )
        .await
        .expect_err("collision");
    assert_eq!(err.code(), Some("conflict"));
    // Bad provider input names the field.
    let err = admin
        .create_provider(&CreateProviderRequest {
            kind: ProviderKind::Openai,
            name: "nourl".into(),
            base_url: None,
            api_key: None,
        })
        .await
        .expect_err("no url");
    assert_eq!(err.field(), Some("base_url"));
    let err = admin
        .create_provider(&CreateProviderRequest {
            kind: ProviderKind::Openai,
            name: "fake".into(),
            base_url: Some("http://127.0.0.1:1/v1".into()),
            api_key: None,
        })
        .await
        .expect_err("dup");
    assert_eq!(err.code(), Some("conflict"));
}

#[tokio::test]
async fn sync_of_an_unreachable_provider_is_a_clear_502() {
    let (_app, admin, _user, _fake) = setup(|_| {}).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = dead.local_addr().expect("addr");
    drop(dead);
    let p = admin
        .create_provider(&CreateProviderRequest {
            kind: ProviderKind::Openai,
            name: "down".into(),
            base_url: Some(format!("http://{addr}/v1")),
            api_key: None,
        })
        .await
        .expect("create");
    let err = admin.sync_provider(p.id).await.expect_err("down");
    assert_eq!(err.status(), Some(hearth_client::StatusCode::BAD_GATEWAY));
}

#[tokio::test]
async fn json_answer_is_stored_encrypted_titled_and_searchable() {
    let (app, _admin, user, _fake) = setup(|_| {}).await;
    let conv = conversation(&user, "fake-chat").await;
    let answer = user
        .send_message(conv, &message("tell me about zebras"))
        .await
        .expect("answer");
    assert_eq!(answer.content, "You said: tell me about zebras");
    assert_eq!(answer.status, MessageStatus::Complete);
    let detail = user.get_conversation(conv).await.expect("get");
    assert_eq!(detail.conversation.title, "tell me about zebras");
    assert_eq!(detail.messages.len(), 2);
    assert_eq!(detail.messages[1].id, answer.id);
    assert_eq!(detail.messages[1].parent_id, Some(detail.messages[0].id));

    let hits = user
        .list_conversations(Some("ZEBRA"))
        .await
        .expect("search");
    assert_eq!(hits.len(), 1);
    let other = conversation(&user, "fake-chat").await;
    user.send_message(other, &message("giraffes only"))
        .await
        .expect("answer");
    let hits = user
        .list_conversations(Some("you said: giraffes"))
        .await
        .expect("search");
    assert_eq!(hits.iter().map(|c| c.id).collect::<Vec<_>>(), vec![other]);
    assert_eq!(user.list_conversations(None).await.expect("all").len(), 2);

    // Nothing of the conversation is stored in clear.
    let stored = app.stored_bytes();
    for secret in [&b"zebras"[..], b"giraffes"] {
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret),
            "plaintext at rest"
        );
    }

    let md = user
        .export_conversation(conv, "markdown")
        .await
        .expect("md");
    assert!(
        md.contains("# tell me about zebras") && md.contains("You said: tell me about zebras"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&user.export_conversation(conv, "json").await.expect("json"))
            .expect("parse");
    assert_eq!(json["messages"].as_array().map(Vec::len), Some(2));
    let err = user
        .export_conversation(conv, "pdf")
        .await
        .expect_err("format");
    assert_eq!(err.field(), Some("format"));

    user.update_conversation(
        conv,
        &UpdateConversationRequest {
            title: Some("Zebras".into()),
            ..Default::default()
        },
    )
    .await
    .expect("rename");
    user.delete_conversation(conv).await.expect("delete");
    assert_eq!(
        user.get_conversation(conv)
            .await
            .expect_err("gone")
            .status(),
        Some(hearth_client::StatusCode::NOT_FOUND)
    );
}

#[tokio::test]
async fn sse_events_are_sequenced_and_end_with_done() {
    let (_app, _admin, user, _fake) = setup(|_| {}).await;
    let conv = conversation(&user, "fake-chat").await;
    let mut events = user
        .send_message_events(conv, &message("one two three"))
        .await
        .expect("sse");
    let events = until_done(&mut events).await;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
    assert!(matches!(events[0].kind, RunEventKind::RunStarted { .. }));
    assert_eq!(text_of(&events), "You said: one two three");
    assert!(events
        .iter()
        .any(|e| matches!(e.kind, RunEventKind::Usage { .. })));
    let (status, message) = done_of(&events);
    assert_eq!(status, RunStatus::Complete);
    assert_eq!(message.content, "You said: one two three");
}

#[tokio::test]
async fn a_client_that_reconnects_gets_the_rest_with_nothing_lost_or_repeated() {
    let (_app, _admin, user, fake) = setup(|_| {}).await;
    let conv = conversation(&user, "fake-chat").await;
    let words: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
    let full = words.join(" ");
    fake.push(Script {
        steps: vec![Step::Text(full.clone())],
        chunk_delay_ms: 20,
        usage: None,
    });
    let mut events = user
        .send_message_events(conv, &message("go"))
        .await
        .expect("sse");
    let mut first = Vec::new();
    while first.len() < 4 {
        first.push(events.next().await.expect("event").expect("ok"));
    }
    let RunEventKind::RunStarted { run_id, .. } = first[0].kind.clone() else {
        panic!("first event is run_started");
    };
    drop(events); // the client goes away mid-answer

    let last_seen = first.last().expect("some").seq;
    let mut rest = user
        .run_events(conv, run_id, last_seen)
        .await
        .expect("resume");
    let rest = until_done(&mut rest).await;
    assert_eq!(rest[0].seq, last_seen + 1, "nothing lost");
    let all: Vec<RunEvent> = first.into_iter().chain(rest).collect();
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=all.len() as u64).collect::<Vec<_>>(),
        "nothing repeated"
    );
    assert_eq!(text_of(&all), full);

    // After the run, the stored log serves the same events.
    let mut again = user.run_events(conv, run_id, 0).await.expect("stored");
    let again = until_done(&mut again).await;
    assert_eq!(again, all);
    let detail = user.get_conversation(conv).await.expect("get");
    assert_eq!(detail.messages[1].content, full);
}

#[tokio::test]
async fn stop_cancels_the_run_and_keeps_the_partial_answer() {
    let (_app, _admin, user, fake) = setup(|_| {}).await;
    let conv = conversation(&user, "fake-chat").await;
    fake.push(Script::new(vec![
        Step::Text("partial words".into()),
        Step::Hang,
    ]));
    let mut events = user
        .send_message_events(conv, &message("go"))
        .await
        .expect("sse");
    let mut run = None;
    let mut text = String::new();
    while text != "partial words" {
        match events.next().await.expect("event").expect("ok").kind {
            RunEventKind::RunStarted { run_id, .. } => run = Some(run_id),
            RunEventKind::TextDelta { text: t } => text.push_str(&t),
            _ => {}
        }
    }
    let run = run.expect("run id");
    user.stop_run(run).await.expect("stop");
    let rest = until_done(&mut events).await;
    let (status, message) = done_of(&rest);
    assert_eq!(status, RunStatus::Stopped);
    assert_eq!(message.content, "partial words");
    assert_eq!(message.status, MessageStatus::Stopped);
    // The upstream connection was closed.
    tokio::time::timeout(Duration::from_secs(10), fake.wait_idle())
        .await
        .expect("upstream closed");
}

#[tokio::test]
async fn upstream_failures_end_in_an_error_event_and_keep_the_partial_answer() {
    let (_app, _admin, user, fake) = setup(|_| {}).await;
    let conv = conversation(&user, "fake-chat").await;
    let cases = [
        (
            vec![Step::Status {
                status: 500,
                message: "boom".into(),
            }],
            "",
            "upstream_status",
        ),
        (
            vec![Step::Text("half an".into()), Step::Disconnect],
            "half an",
            "upstream_protocol",
        ),
        (
            vec![Step::Text("bad".into()), Step::Malformed],
            "bad",
            "upstream_protocol",
        ),
        (
            vec![
                Step::Text("over".into()),
                Step::StreamError("overloaded".into()),
            ],
            "over",
            "upstream_error",
        ),
    ];
    for (steps, partial, code) in cases {
        fake.push(Script::new(steps));
        let mut events = user
            .send_message_events(conv, &message("go"))
            .await
            .expect("sse");
        let events = until_done(&mut events).await;
        let error = events
            .iter()
            .find_map(|e| match &e.kind {
                RunEventKind::Error { code, message } => Some((code.clone(), message.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{code}: no error event"));
        assert_eq!(error.0, code);
        assert!(!error.1.is_empty());
        let (status, message) = done_of(&events);
        assert_eq!(status, RunStatus::Error, "{code}");
        assert_eq!(message.content, partial, "{code}");
        assert_eq!(message.status, MessageStatus::Error);
        assert!(message.error.is_some());
    }
}

#[tokio::test]
async fn tools_run_in_a_loop_and_results_are_stored_with_the_message() {
    let (_app, _admin, user, fake) = setup(|_| {}).await;
    let conv = conversation(&user, "fake-tools").await;
    let mut events = user
        .send_message_events(conv, &message("please calculate 6*7"))
        .await
        .expect("sse");
    let events = until_done(&mut events).await;
    assert!(events
        .iter()
        .any(|e| matches!(&e.kind, RunEventKind::ToolCall { name, .. } if name == "calculator")));
    assert!(events.iter().any(|e| matches!(&e.kind,
        RunEventKind::ToolResult { status: ToolCallStatus::Ok, output, .. } if output == "42")));
    let (status, answer) = done_of(&events);
    assert_eq!(status, RunStatus::Complete);
    assert_eq!(answer.content, "The result is 42.");
    assert!(matches!(&answer.parts[0], Part::ToolCall { output: Some(o), .. } if o == "42"));
    // The second request carried the tool result back to the model.
    let requests = fake.requests();
    let last = requests.last().expect("requests");
    assert!(last["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .any(|m| m["role"] == "tool" && m["content"] == "42"));
    // And the stored conversation round-trips to the same parts.
    let detail = user.get_conversation(conv).await.expect("get");
    assert_eq!(detail.messages[1].parts, answer.parts);

    // Arguments that fail the schema go back to the model as an error; nothing crashes.
    fake.push(Script::new(vec![Step::ToolCall {
        name: "calculator".into(),
        arguments: r#"{"expr": 1}"#.into(),
    }]));
    let answer = user
        .send_message(conv, &message("again"))
        .await
        .expect("answer");
    assert!(
        matches!(&answer.parts[0], Part::ToolCall { status: ToolCallStatus::Error, output: Some(o), .. }
        if o.contains("invalid arguments")),
        "{:?}",
        answer.parts
    );
    assert!(
        answer
            .content
            .starts_with("The result is error: invalid arguments"),
        "{}",
        answer.content
    );
}

#[tokio::test]
async fn ask_policy_waits_for_the_owner_s_approval() {
    let (_app, admin, user, _fake) = setup(|s| {
        s.chat
            .tool_policy
            .insert("calculator".into(), ToolPolicy::Ask);
    })
    .await;
    let conv = conversation(&user, "fake-tools").await;
    for approve in [true, false] {
        let mut events = user
            .send_message_events(conv, &message("calculate 2+2"))
            .await
            .expect("sse");
        let mut run = None;
        let call = loop {
            match events.next().await.expect("event").expect("ok").kind {
                RunEventKind::RunStarted { run_id, .. } => run = Some(run_id),
                RunEventKind::ToolApprovalRequired { id, .. } => break id,
                _ => {}
            }
        };
        let run = run.expect("run");
        // Someone else's approval is a 404 and changes nothing.
        let err = admin
            .approve(run, &call, true)
            .await
            .expect_err("not theirs");
        assert_eq!(err.status(), Some(hearth_client::StatusCode::NOT_FOUND));
        user.approve(run, &call, approve).await.expect("approve");
        let rest = until_done(&mut events).await;
        let (_, message) = done_of(&rest);
        if approve {
            assert_eq!(message.content, "The result is 4.");
        } else {
            assert!(matches!(
                &message.parts[0],
                Part::ToolCall {
                    status: ToolCallStatus::Denied,
                    ..
                }
            ));
            assert!(message.content.contains("declined"), "{}", message.content);
        }
    }
}

#[tokio::test]
async fn an_unanswered_approval_times_out_as_declined() {
    let (_app, _admin, user, _fake) = setup(|s| {
        s.chat
            .tool_policy
            .insert("calculator".into(), ToolPolicy::Ask);
        s.chat.approval_timeout_secs = 1;
    })
    .await;
    let conv = conversation(&user, "fake-tools").await;
    let answer = user
        .send_message(conv, &message("calculate 1+1"))
        .await
        .expect("answer");
    assert!(
        matches!(&answer.parts[0], Part::ToolCall { status: ToolCallStatus::Denied, output: Some(o), .. }
        if o.contains("timed out"))
    );
}

#[tokio::test]
async fn regenerate_and_edit_make_branches_that_can_be_switched() {
    let (_app, _admin, user, fake) = setup(|_| {}).await;
    let conv = conversation(&user, "fake-chat").await;
    fake.push(Script::text("first answer"));
    let first = user
        .send_message(conv, &message("question"))
        .await
        .expect("answer");
    fake.push(Script::text("second answer"));
    let second = user
        .regenerate(conv, first.id, &RegenerateRequest::default())
        .await
        .expect("regenerate");
    assert_eq!(second.parent_id, first.parent_id);
    assert_eq!(second.sibling_ids, vec![first.id, second.id]);
    let shown = user.get_conversation(conv).await.expect("get");
    assert_eq!(shown.messages[1].content, "second answer");
    let switched = user
        .update_conversation(
            conv,
            &UpdateConversationRequest {
                active_message_id: Some(first.id),
                ..Default::default()
            },
        )
        .await
        .expect("switch");
    assert_eq!(switched.messages[1].content, "first answer");

    // Editing the first user message: a new message at the top, the old branch kept.
    let edited = user
        .send_message(
            conv,
            &SendMessageRequest {
                edit_root: true,
                ..message("better question")
            },
        )
        .await
        .expect("edit");
    let shown = user.get_conversation(conv).await.expect("get");
    assert_eq!(shown.messages.len(), 2);
    assert_eq!(shown.messages[0].content, "better question");
    assert_eq!(shown.messages[0].sibling_ids.len(), 2);
    assert_eq!(shown.messages[1].id, edited.id);
    // The model saw only the edited branch.
    let last = fake.requests().last().cloned().expect("request");
    assert_eq!(last["messages"].as_array().map(Vec::len), Some(1));

    let err = user
        .send_message(
            conv,
            &SendMessageRequest {
                parent_id: Some(shown.messages[0].id),
                ..message("x")
            },
        )
        .await
        .expect_err("user parent");
    assert_eq!(err.field(), Some("parent_id"));
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let (_app, _admin, user, _fake) = setup(|s| s.chat.max_message_chars = 50).await;
    let conv = conversation(&user, "fake-chat").await;
    let err = user
        .send_message(conv, &message(&"x".repeat(51)))
        .await
        .expect_err("too long");
    assert_eq!(
        err.status(),
        Some(hearth_client::StatusCode::PAYLOAD_TOO_LARGE)
    );
    let err = user
        .send_message(conv, &message("  "))
        .await
        .expect_err("empty");
    assert_eq!(err.field(), Some("content"));
    let err = user
        .send_message(
            conv,
            &SendMessageRequest {
                tools: Some(vec!["rm -rf".into()]),
                ..message("hi")
            },
        )
        .await
        .expect_err("tool");
    assert_eq!(err.field(), Some("tools[0]"));
    let untitled = user
        .create_conversation(&CreateConversationRequest::default())
        .await
        .expect("no model");
    let err = user
        .send_message(untitled.id, &message("hi"))
        .await
        .expect_err("no model");
    assert_eq!(err.field(), Some("model"));
    assert!(user
        .get_conversation(conv)
        .await
        .expect("get")
        .messages
        .is_empty());
}

#[tokio::test]
async fn daily_quota_is_enforced_with_429() {
    let (_app, _admin, user, _fake) = setup(|s| {
        s.chat.daily_token_quota = 5;
        s.chat.max_output_tokens = 1;
    })
    .await;
    let conv = conversation(&user, "fake-chat").await;
    user.send_message(conv, &message("hello"))
        .await
        .expect("first fits");
    let err = user
        .send_message(conv, &message("hello"))
        .await
        .expect_err("over quota");
    assert_eq!(
        err.status(),
        Some(hearth_client::StatusCode::TOO_MANY_REQUESTS)
    );
    assert_eq!(err.code(), Some("quota_exceeded"));
}

#[tokio::test]
async fn concurrent_calls_at_the_quota_boundary_cannot_all_pass() {
    // 500 tokens a day; each call may write 100, so each reserves ~101 before it starts.
    let (_app, _admin, user, fake) = setup(|s| {
        s.chat.daily_token_quota = 500;
        s.chat.max_output_tokens = 100;
    })
    .await;
    for _ in 0..10 {
        fake.push(Script {
            steps: vec![Step::Delay { ms: 1500 }, Step::Text("ok".into())],
            chunk_delay_ms: 0,
            usage: Some((10, 90)),
        });
    }
    let call = || {
        let user = user.clone();
        async move {
            user.request(hearth_client::Method::POST, "/v1/chat/completions")
                .json(
                    &serde_json::json!({"model": "fake-chat", "max_tokens": 5000,
                    "messages": [{"role": "user", "content": "hi"}]}),
                )
                .send()
                .await
                .expect("send")
                .status()
        }
    };
    let statuses = futures_util::future::join_all((0..10).map(|_| call())).await;
    let passed = statuses
        .iter()
        .filter(|s| **s == hearth_client::StatusCode::OK)
        .count();
    assert!(
        statuses.iter().all(|s| *s == hearth_client::StatusCode::OK
            || *s == hearth_client::StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Checked against usage alone, all ten would pass (none had finished): 1,000 tokens.
    assert!((1..=4).contains(&passed), "{passed} passed: {statuses:?}");
    // The caller's max_tokens went upstream capped.
    let sent = fake.requests();
    assert!(sent.iter().all(|r| r["max_tokens"] == 100), "{sent:?}");
    // What passed is recorded; with it, the next call does not fit.
    assert_eq!(call().await, hearth_client::StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn anthropic_providers_chat_and_call_tools_too() {
    let (_app, admin, user, fake) = setup(|_| {}).await;
    let p = admin
        .create_provider(&CreateProviderRequest {
            kind: ProviderKind::Anthropic,
            name: "claude".into(),
            base_url: Some(fake.anthropic_url()),
            api_key: Some("sk-ant".into()),
        })
        .await
        .expect("create");
    admin.sync_provider(p.id).await.expect("sync");
    let conv = conversation(&user, "claude/fake-tools").await;
    let answer = user
        .send_message(conv, &message("calculate 3*3"))
        .await
        .expect("answer");
    assert_eq!(answer.content, "The result is 9.");
}

#[tokio::test]
async fn admins_see_traces_and_usage_per_user_and_model() {
    let (_app, admin, user, fake) = setup(|_| {}).await;
    let me = user.me().await.expect("me");
    let conv = conversation(&user, "fake-tools").await;
    user.send_message(conv, &message("calculate 1+2"))
        .await
        .expect("tool answer");
    fake.push(Script::new(vec![Step::Status {
        status: 500,
        message: "down".into(),
    }]));
    let failed = user
        .send_message(conv, &message("again"))
        .await
        .expect("error answer");
    assert_eq!(failed.status, MessageStatus::Error);

    let traces = admin
        .traces(&hearth_core::usage::TraceQuery {
            model: Some("fake-tools".into()),
            ..Default::default()
        })
        .await
        .expect("traces");
    assert_eq!(
        traces.len(),
        3,
        "two calls for the tool round trip, one failed: {traces:?}"
    );
    assert!(traces
        .iter()
        .all(|t| t.user_id == Some(me.id) && t.source == "chat"));
    assert!(traces.iter().any(|t| t.tool_calls == 1));
    assert!(traces
        .iter()
        .any(|t| t.error.as_deref().is_some_and(|e| e.contains("down"))));
    assert!(traces
        .iter()
        .filter(|t| t.error.is_none())
        .all(|t| t.ttft_ms.is_some()));

    let errors = admin
        .traces(&hearth_core::usage::TraceQuery {
            errors_only: true,
            ..Default::default()
        })
        .await
        .expect("traces");
    assert_eq!(errors.len(), 1);

    let usage: serde_json::Value = admin
        .request(hearth_client::Method::GET, "/api/v1/admin/usage?days=1")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let row = usage
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["model"] == "fake-tools")
        .expect("fake-tools row");
    assert_eq!(row["calls"], 3);
    assert!(row["output_tokens"].as_i64().expect("tokens") > 0);

    let r = admin
        .request(
            hearth_client::Method::GET,
            "/api/v1/admin/llm-calls?since=yesterday",
        )
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), hearth_client::StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["field"], "since");
}

#[tokio::test]
async fn a_client_that_never_reads_does_not_stall_the_run_or_other_clients() {
    let (_app, _admin, user, fake) = setup(|_| {}).await;
    let conv = conversation(&user, "fake-chat").await;
    // Large enough to fill the socket buffers of a reader that never reads.
    let text: String = (0..20_000)
        .map(|i| format!("word{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    fake.push(Script::text(&text));
    let mut stalled = user
        .send_message_events(conv, &message("go"))
        .await
        .expect("sse");
    let first = stalled.next().await.expect("event").expect("ok");
    let RunEventKind::RunStarted { run_id, .. } = first.kind else {
        panic!("run_started first");
    };
    // `stalled` is never read again; a second client follows the same run to the end.
    let mut other = user.run_events(conv, run_id, 0).await.expect("resume");
    let events = until_done(&mut other).await;
    assert_eq!(text_of(&events), text);
    let detail = user.get_conversation(conv).await.expect("get");
    assert_eq!(detail.messages[1].status, MessageStatus::Complete);
    drop(stalled);
}

#[tokio::test]
async fn an_upstream_that_never_answers_times_out_into_an_error_event() {
    let (_app, _admin, user, fake) = setup(|s| {
        s.chat.first_token_timeout_secs = 1;
        s.chat.idle_timeout_secs = 1;
    })
    .await;
    let conv = conversation(&user, "fake-chat").await;
    fake.push(Script::new(vec![Step::Text("half".into()), Step::Hang]));
    let mut events = user
        .send_message_events(conv, &message("go"))
        .await
        .expect("sse");
    let events = until_done(&mut events).await;
    assert!(events.iter().any(
        |e| matches!(&e.kind, RunEventKind::Error { code, .. } if code == "upstream_timeout")
    ));
    let (status, message) = done_of(&events);
    assert_eq!(status, RunStatus::Error);
    assert_eq!(message.content, "half");
}

#[tokio::test]
async fn deleting_a_conversation_stops_its_run() {
    let (_app, _admin, user, fake) = setup(|_| {}).await;
    let conv = conversation(&user, "fake-chat").await;
    fake.push(Script::new(vec![Step::Text("started".into()), Step::Hang]));
    let mut events = user
        .send_message_events(conv, &message("go"))
        .await
        .expect("sse");
    loop {
        if let RunEventKind::TextDelta { .. } =
            events.next().await.expect("event").expect("ok").kind
        {
            break;
        }
    }
    user.delete_conversation(conv).await.expect("delete");
    let rest = until_done(&mut events).await;
    assert_eq!(done_of(&rest).0, RunStatus::Stopped);
    tokio::time::timeout(Duration::from_secs(10), fake.wait_idle())
        .await
        .expect("upstream closed");
}

#[tokio::test]
async fn the_last_round_keeps_tools_defined_but_forbids_calls() {
    let (_app, _admin, user, fake) = setup(|s| s.chat.max_tool_rounds = 1).await;
    let conv = conversation(&user, "fake-tools").await;
    // The model asks for a tool in both rounds; the second request forbids it.
    fake.push(Script::new(vec![Step::ToolCall {
        name: "calculator".into(),
        arguments: r#"{"expression":"1+1"}"#.into(),
    }]));
    fake.push(Script::new(vec![
        Step::Text("Two.".into()),
        Step::ToolCall {
            name: "calculator".into(),
            arguments: r#"{"expression":"2+2"}"#.into(),
        },
    ]));
    let answer = user
        .send_message(conv, &message("go"))
        .await
        .expect("answer");
    let requests = fake.requests();
    let last = requests.last().expect("request");
    assert_eq!(last["tool_choice"], "none");
    assert!(
        last["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "tools stay defined"
    );
    assert_eq!(answer.status, MessageStatus::Complete);
    assert_eq!(answer.content, "Two.");
    let calls = answer
        .parts
        .iter()
        .filter(|p| matches!(p, Part::ToolCall { .. }))
        .count();
    assert_eq!(
        calls, 1,
        "a call on the last round is not run: {:?}",
        answer.parts
    );
}

#[tokio::test]
async fn stopped_answers_still_count_against_the_quota() {
    let (_app, _admin, user, fake) = setup(|s| {
        s.chat.daily_token_quota = 10;
        s.chat.max_output_tokens = 2;
    })
    .await;
    let conv = conversation(&user, "fake-chat").await;
    // No usage arrives from an upstream that is cut off: what was produced is estimated.
    fake.push(Script::new(vec![
        Step::Text("a long answer that the user stops before the upstream reports usage".into()),
        Step::Hang,
    ]));
    let mut events = user
        .send_message_events(conv, &message("go"))
        .await
        .expect("sse");
    let mut run = None;
    let mut text = String::new();
    while !text.ends_with("usage") {
        match events.next().await.expect("event").expect("ok").kind {
            RunEventKind::RunStarted { run_id, .. } => run = Some(run_id),
            RunEventKind::TextDelta { text: t } => text.push_str(&t),
            _ => {}
        }
    }
    user.stop_run(run.expect("run")).await.expect("stop");
    until_done(&mut events).await;
    let err = user
        .send_message(conv, &message("again"))
        .await
        .expect_err("quota used");
    assert_eq!(err.code(), Some("quota_exceeded"));
}

#[tokio::test]
async fn histories_longer_than_the_context_window_are_cut_from_the_oldest_turn() {
    let (_app, admin, user, fake) = setup(|_| {}).await;
    let model = model_named(&admin, "fake-chat").await;
    admin
        .update_model(
            model.id,
            &UpdateModelRequest {
                context_length: Some(Some(1100)),
                ..Default::default()
            },
        )
        .await
        .expect("window");
    let conv = conversation(&user, "fake-chat").await;
    for i in 0..3 {
        user.send_message(conv, &message(&format!("{i} {}", "y".repeat(1000))))
            .await
            .expect("answer");
    }
    let last = fake.requests().last().cloned().expect("request");
    let messages = last["messages"].as_array().expect("messages");
    assert!(
        messages.len() < 5,
        "oldest turns dropped: {} messages",
        messages.len()
    );
    assert!(messages.last().expect("last")["content"]
        .as_str()
        .expect("text")
        .starts_with("2 "));
}

#[tokio::test]
async fn a_model_marked_as_not_streaming_is_asked_for_a_whole_answer() {
    let (_app, admin, user, fake) = setup(|_| {}).await;
    let model = model_named(&admin, "fake-chat").await;
    admin
        .update_model(
            model.id,
            &UpdateModelRequest {
                supports_streaming: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("no streaming");
    let conv = conversation(&user, "fake-chat").await;
    let mut events = user
        .send_message_events(conv, &message("whole please"))
        .await
        .expect("sse");
    let events = until_done(&mut events).await;
    assert_eq!(text_of(&events), "You said: whole please");
    assert_eq!(done_of(&events).0, RunStatus::Complete);
    assert_eq!(fake.requests().last().expect("request")["stream"], false);
}

#[tokio::test]
async fn a_provider_moved_to_another_address_needs_its_key_again() {
    let (_app, admin, _user, fake) = setup(|_| {}).await;
    let provider = admin
        .create_provider(&CreateProviderRequest {
            kind: ProviderKind::Openai,
            name: "keyed".into(),
            base_url: Some(fake.openai_url()),
            api_key: Some("sk-keep-me-home".into()),
        })
        .await
        .expect("create");
    let elsewhere = "https://collector.example/v1";
    let err = admin
        .update_provider(
            provider.id,
            &hearth_core::providers::UpdateProviderRequest {
                base_url: Some(elsewhere.into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("the key does not follow the address");
    assert_eq!(err.status(), Some(hearth_client::StatusCode::BAD_REQUEST));
    assert_eq!(err.field(), Some("api_key"));
    // Renaming keeps the address, and the key with it.
    admin
        .update_provider(
            provider.id,
            &hearth_core::providers::UpdateProviderRequest {
                name: Some("renamed".into()),
                base_url: Some(fake.openai_url()),
                ..Default::default()
            },
        )
        .await
        .expect("same address");
    // With the key given again (or removed) the move is allowed.
    let moved = admin
        .update_provider(
            provider.id,
            &hearth_core::providers::UpdateProviderRequest {
                base_url: Some(elsewhere.into()),
                api_key: Some("sk-for-the-new-host".into()),
                ..Default::default()
            },
        )
        .await
        .expect("moved with a key");
    assert_eq!(moved.base_url.as_deref(), Some(elsewhere));
}
