//! Restarts: master key rotation keeps everything readable; shutdown stops runs and keeps
//! their partial answers.

use hearth_core::chat::api::{CreateConversationRequest, SendMessageRequest};
use hearth_server::Application;

use crate::helpers::{fake_provider, test_settings};

async fn start(
    settings: hearth_server::settings::Settings,
) -> (
    hearth_client::Client,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let app = Application::build(settings).await.expect("build");
    let client = hearth_client::Client::new(format!("http://{}", app.local_addr()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    (client, tx, task)
}

#[tokio::test]
async fn rotate_key_re_encrypts_everything_and_keeps_it_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(dir.path());
    let (client, stop, task) = start(settings.clone()).await;
    let auth = client
        .register(&hearth_core::api::RegisterRequest {
            email: "admin@example.com".into(),
            password: crate::helpers::PASSWORD.into(),
            name: None,
            invite_token: None,
        })
        .await
        .expect("register");
    let admin = client.with_token(&auth.access_token);
    let fake = fake_provider(&admin).await;
    let conv = admin
        .create_conversation(&CreateConversationRequest {
            title: Some("secret plans".into()),
            model: Some("fake-chat".into()),
            ..Default::default()
        })
        .await
        .expect("conv");
    admin
        .send_message(
            conv.id,
            &SendMessageRequest {
                content: "the plan".into(),
                ..Default::default()
            },
        )
        .await
        .expect("answer");
    let _ = stop.send(());
    task.await.expect("join").expect("served");

    let old_key = std::fs::read(settings.data_dir.join("master-key")).expect("key");
    let store = hearth_server::open_store(&settings).await.expect("store");
    let report = hearth_server::rotate_master_key(&settings, &store)
        .await
        .expect("rotate");
    let changed: u64 = report.columns.iter().map(|c| c.1).sum();
    assert_eq!(
        changed,
        1 + 1 + 2 + 1,
        "provider key, title, two messages, one run log: {report:?}"
    );
    // A second rotation makes yet another key; the first key is then no longer needed.
    let again = hearth_server::rotate_master_key(&settings, &store)
        .await
        .expect("rotate again");
    assert_eq!(again.columns.iter().map(|c| c.1).sum::<u64>(), changed);
    store.close().await;
    let new_key = std::fs::read(settings.data_dir.join("master-key")).expect("new key");
    assert_ne!(new_key, old_key);
    assert!(!settings.data_dir.join("master-key.next").exists());
    std::fs::remove_file(settings.data_dir.join("master-key.previous")).expect("remove previous");

    // Everything is readable with the newest key alone.
    let (client, stop, task) = start(settings.clone()).await;
    let auth = client
        .login("admin@example.com", crate::helpers::PASSWORD)
        .await
        .expect("login");
    let admin = client.with_token(&auth.access_token);
    let detail = admin.get_conversation(conv.id).await.expect("conversation");
    assert_eq!(detail.conversation.title, "secret plans");
    assert_eq!(detail.messages[1].content, "You said: the plan");
    let provider = admin.list_providers().await.expect("providers").remove(0);
    admin
        .sync_provider(provider.id)
        .await
        .expect("the provider key still decrypts");
    let _ = stop.send(());
    task.await.expect("join").expect("served");
    drop(fake);
}

#[tokio::test]
async fn shutdown_stops_live_runs_and_keeps_their_partial_answers() {
    use futures_util::StreamExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(dir.path());
    let (client, stop, task) = start(settings.clone()).await;
    let auth = client
        .register(&hearth_core::api::RegisterRequest {
            email: "admin@example.com".into(),
            password: crate::helpers::PASSWORD.into(),
            name: None,
            invite_token: None,
        })
        .await
        .expect("register");
    let admin = client.with_token(&auth.access_token);
    let fake = fake_provider(&admin).await;
    let conv = admin
        .create_conversation(&CreateConversationRequest {
            title: None,
            model: Some("fake-chat".into()),
            ..Default::default()
        })
        .await
        .expect("conv");
    fake.push(hearth_fake_llm::Script::new(vec![
        hearth_fake_llm::Step::Text("so far".into()),
        hearth_fake_llm::Step::Hang,
    ]));
    let mut events = admin
        .send_message_events(
            conv.id,
            &SendMessageRequest {
                content: "go".into(),
                ..Default::default()
            },
        )
        .await
        .expect("sse");
    loop {
        let e = events.next().await.expect("event").expect("ok");
        if matches!(
            e.kind,
            hearth_core::chat::api::RunEventKind::TextDelta { .. }
        ) {
            break;
        }
    }
    let _ = stop.send(());
    // Graceful shutdown ends although a run was streaming (the run is stopped, its stream ends).
    tokio::time::timeout(std::time::Duration::from_secs(20), task)
        .await
        .expect("shut down in time")
        .expect("join")
        .expect("served");
    drop(events);

    let (client, stop, task) = start(settings.clone()).await;
    let auth = client
        .login("admin@example.com", crate::helpers::PASSWORD)
        .await
        .expect("login");
    let detail = client
        .with_token(&auth.access_token)
        .get_conversation(conv.id)
        .await
        .expect("get");
    assert_eq!(
        detail.messages[1].status,
        hearth_core::chat::api::MessageStatus::Stopped
    );
    assert_eq!(detail.messages[1].content, "so far");
    let _ = stop.send(());
    task.await.expect("join").expect("served");
}
