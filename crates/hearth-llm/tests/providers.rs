//! Both wire formats against the scripted fake upstream over real HTTP: text, tool calls, usage,
//! model lists, retries, timeouts, broken and malformed streams, cancellation.

use std::time::Duration;

use futures_util::StreamExt as _;
use hearth_fake_llm::{FakeLlm, Script, Step};
use hearth_llm::{
    collect, AnthropicProvider, ChatRequest, Endpoint, FinishReason, LlmError, Message,
    OpenAiProvider, Provider, Role, StreamEvent, Timeouts, ToolSpec,
};
use serde_json::json;

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        first_token: Duration::from_secs(10),
        idle: Duration::from_secs(10),
        max_retries: 2,
        backoff: Duration::from_millis(10),
    }
}

fn endpoint(url: String, t: Timeouts) -> Endpoint {
    Endpoint {
        base_url: url,
        api_key: Some("sk-test".into()),
        timeouts: t,
    }
}

/// One client of each format, both pointing at `fake`.
fn providers(fake: &FakeLlm, t: Timeouts) -> Vec<(&'static str, Box<dyn Provider>)> {
    vec![
        (
            "openai",
            Box::new(OpenAiProvider::new(endpoint(fake.openai_url(), t))),
        ),
        (
            "anthropic",
            Box::new(AnthropicProvider::new(endpoint(fake.anthropic_url(), t))),
        ),
    ]
}

fn hello() -> ChatRequest {
    ChatRequest::new("fake-chat", vec![Message::text(Role::User, "hello there")])
}

#[tokio::test]
async fn streams_text_and_usage_in_both_formats() {
    let fake = FakeLlm::start().await.expect("fake");
    for (name, p) in providers(&fake, timeouts()) {
        let mut stream = p.stream(hello());
        let mut deltas = Vec::new();
        let mut events = Vec::new();
        while let Some(e) = stream.next().await {
            let e = e.unwrap_or_else(|e| panic!("{name}: {e}"));
            if let StreamEvent::TextDelta(t) = &e {
                deltas.push(t.clone());
            }
            events.push(e);
        }
        assert_eq!(deltas.concat(), "You said: hello there", "{name}");
        assert!(deltas.len() > 1, "{name}: streamed in pieces");
        assert!(
            events
                .iter()
                .any(|e| matches!(e, StreamEvent::Usage(u) if u.output_tokens > 0)),
            "{name}: usage"
        );
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Finish(FinishReason::Stop)),
            "{name}"
        );
    }
    let requests = fake.requests();
    assert_eq!(requests[0]["stream_options"]["include_usage"], true);
    assert_eq!(
        requests[1]["messages"][0]["content"][0]["text"],
        "hello there"
    );
}

#[tokio::test]
async fn tool_calls_are_assembled_in_both_formats() {
    let fake = FakeLlm::start().await.expect("fake");
    for (name, p) in providers(&fake, timeouts()) {
        let mut req = ChatRequest::new(
            "fake-tools",
            vec![Message::text(Role::User, "please calculate 6*7")],
        );
        req.tools = vec![ToolSpec {
            name: "calculator".into(),
            description: "evaluates arithmetic".into(),
            parameters: json!({"type": "object", "properties": {"expression": {"type": "string"}}}),
        }];
        let done = collect(p.stream(req))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(done.finish_reason, Some(FinishReason::ToolCalls), "{name}");
        assert_eq!(done.tool_calls.len(), 1, "{name}");
        assert_eq!(done.tool_calls[0].name, "calculator");
        let args: serde_json::Value =
            serde_json::from_str(&done.tool_calls[0].arguments).expect("json args");
        assert_eq!(args["expression"], "6*7", "{name}");
    }
}

#[tokio::test]
async fn lists_models_in_both_formats() {
    let fake = FakeLlm::start().await.expect("fake");
    for (name, p) in providers(&fake, timeouts()) {
        let models = p
            .list_models()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ids: Vec<_> = models.iter().map(|m| m.id.as_str()).collect();
        assert!(ids.contains(&"fake-chat"), "{name}: {ids:?}");
    }
}

#[tokio::test]
async fn retries_5xx_and_429_before_the_first_token() {
    let fake = FakeLlm::start().await.expect("fake");
    for (name, p) in providers(&fake, timeouts()) {
        let before = fake.requests().len();
        fake.push(Script::new(vec![Step::Status {
            status: 503,
            message: "busy".into(),
        }]));
        fake.push(Script::new(vec![Step::Status {
            status: 429,
            message: "slow down".into(),
        }]));
        fake.push(Script::text("finally"));
        let done = collect(p.stream(hello()))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(done.text, "finally", "{name}");
        assert_eq!(fake.requests().len() - before, 3, "{name}: two retries");
    }
}

#[tokio::test]
async fn client_errors_are_not_retried_and_carry_the_upstream_message() {
    let fake = FakeLlm::start().await.expect("fake");
    for (name, p) in providers(&fake, timeouts()) {
        let before = fake.requests().len();
        fake.push(Script::new(vec![Step::Status {
            status: 401,
            message: "bad key".into(),
        }]));
        let err = collect(p.stream(hello())).await.expect_err(name);
        assert_eq!(
            err,
            LlmError::Status {
                status: 401,
                message: "bad key".into()
            },
            "{name}"
        );
        assert!(!err.to_string().contains("sk-test"));
        assert_eq!(fake.requests().len() - before, 1, "{name}: no retry");
    }
}

#[tokio::test]
async fn retries_give_up_after_the_limit() {
    let fake = FakeLlm::start().await.expect("fake");
    let p = OpenAiProvider::new(endpoint(fake.openai_url(), timeouts()));
    for _ in 0..3 {
        fake.push(Script::new(vec![Step::Status {
            status: 500,
            message: "down".into(),
        }]));
    }
    let err = collect(p.stream(hello())).await.expect_err("fails");
    assert!(matches!(err, LlmError::Status { status: 500, .. }), "{err}");
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn broken_streams_keep_the_partial_answer_and_end_in_an_error() {
    let fake = FakeLlm::start().await.expect("fake");
    type Expect = fn(&LlmError) -> bool;
    let cases: Vec<(Step, Expect)> = vec![
        (Step::Disconnect, |e| matches!(e, LlmError::Protocol(_))),
        (Step::Malformed, |e| matches!(e, LlmError::Protocol(_))),
        (
            Step::StreamError("overloaded".into()),
            |e| matches!(e, LlmError::Upstream(m) if m == "overloaded"),
        ),
    ];
    for (name, p) in providers(&fake, timeouts()) {
        for (step, expected) in &cases {
            fake.push(Script::new(vec![
                Step::Text("partial answer".into()),
                step.clone(),
            ]));
            let mut stream = p.stream(hello());
            let mut text = String::new();
            let mut error = None;
            while let Some(e) = stream.next().await {
                match e {
                    Ok(StreamEvent::TextDelta(t)) => text.push_str(&t),
                    Ok(_) => {}
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            assert_eq!(text, "partial answer", "{name} {step:?}");
            let error = error.unwrap_or_else(|| panic!("{name} {step:?}: no error"));
            assert!(expected(&error), "{name} {step:?}: {error:?}");
        }
    }
}

#[tokio::test]
async fn first_token_and_idle_timeouts() {
    let fake = FakeLlm::start().await.expect("fake");
    let t = Timeouts {
        first_token: Duration::from_millis(300),
        idle: Duration::from_millis(300),
        ..timeouts()
    };
    for (name, p) in providers(&fake, t) {
        fake.push(Script::new(vec![Step::Hang]));
        let err = collect(p.stream(hello())).await.expect_err(name);
        assert!(
            matches!(
                err,
                LlmError::Timeout {
                    phase: "first token",
                    ..
                }
            ),
            "{name}: {err:?}"
        );
        fake.push(Script::new(vec![Step::Text("some".into()), Step::Hang]));
        let err = collect(p.stream(hello())).await.expect_err(name);
        assert!(
            matches!(
                err,
                LlmError::Timeout {
                    phase: "idle between tokens",
                    ..
                }
            ),
            "{name}: {err:?}"
        );
    }
    // The timed-out requests' connections were closed.
    fake.wait_idle().await;
}

#[tokio::test]
async fn unreachable_upstream_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let p = OpenAiProvider::new(endpoint(format!("http://{addr}/v1"), timeouts()));
    let err = collect(p.stream(hello())).await.expect_err("refused");
    assert_eq!(err.code(), "upstream_unreachable", "{err:?}");
    let err = p.list_models().await.expect_err("refused");
    assert_eq!(err.code(), "upstream_unreachable");
}

#[tokio::test]
async fn dropping_the_stream_closes_the_upstream_connection() {
    let fake = FakeLlm::start().await.expect("fake");
    for (name, p) in providers(&fake, timeouts()) {
        fake.push(Script::new(vec![Step::Text("first".into()), Step::Hang]));
        let mut stream = p.stream(hello());
        let first = stream.next().await.expect("event").expect("ok");
        assert_eq!(first, StreamEvent::TextDelta("first".into()), "{name}");
        assert_eq!(fake.active_streams(), 1, "{name}");
        drop(stream);
        // Returns only once the fake saw the connection go away.
        tokio::time::timeout(Duration::from_secs(10), fake.wait_idle())
            .await
            .unwrap_or_else(|_| panic!("{name}: upstream connection still open"));
    }
}

#[tokio::test]
async fn models_that_cannot_stream_answer_whole_with_the_same_events() {
    let fake = FakeLlm::start().await.expect("fake");
    for (name, p) in providers(&fake, timeouts()) {
        let mut req = hello();
        req.stream = false;
        let done = collect(p.stream(req))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(done.text, "You said: hello there", "{name}");
        assert_eq!(done.finish_reason, Some(FinishReason::Stop), "{name}");
        assert!(done.usage.is_some_and(|u| u.output_tokens > 0), "{name}");

        let mut req = ChatRequest::new(
            "fake-tools",
            vec![Message::text(Role::User, "calculate 2*3")],
        );
        req.stream = false;
        req.tools = vec![ToolSpec {
            name: "calculator".into(),
            description: "arithmetic".into(),
            parameters: json!({"type": "object"}),
        }];
        let done = collect(p.stream(req))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(done.finish_reason, Some(FinishReason::ToolCalls), "{name}");
        let args: serde_json::Value =
            serde_json::from_str(&done.tool_calls[0].arguments).expect("json");
        assert_eq!(args["expression"], "2*3", "{name}");

        fake.push(Script::new(vec![Step::Status {
            status: 400,
            message: "bad request".into(),
        }]));
        let mut req = hello();
        req.stream = false;
        let err = collect(p.stream(req)).await.expect_err(name);
        assert!(
            matches!(err, LlmError::Status { status: 400, .. }),
            "{name}: {err:?}"
        );
    }
    assert!(fake.requests().iter().all(|r| r["stream"] == false));
}
