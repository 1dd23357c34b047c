use hearth_client::{Client, Method, StatusCode};
use hearth_core::access::KeyScope;
use hearth_core::api::CreateApiKeyRequest;
use serde_json::json;

use crate::helpers::{api_key, spawn_open, PASSWORD, USER_SCOPES};

fn request(name: &str, scopes: &[KeyScope], password: &str) -> CreateApiKeyRequest {
    CreateApiKeyRequest {
        name: name.into(),
        expires_in_days: None,
        scopes: scopes.to_vec(),
        password: password.into(),
    }
}

/// The status of `method path` (with a JSON body for writes) as `client`.
async fn status(client: &Client, method: Method, path: &str) -> StatusCode {
    let mut req = client.request(method.clone(), path);
    if method != Method::GET {
        req = req.json(&json!({}));
    }
    req.send().await.expect("send").status()
}

#[tokio::test]
async fn create_list_use_and_revoke() {
    let app = spawn_open().await;
    let (_, client) = app.register("ada@example.com").await;
    let created = client
        .create_api_key(&CreateApiKeyRequest {
            expires_in_days: Some(30),
            ..request("laptop", USER_SCOPES, PASSWORD)
        })
        .await
        .expect("create");
    assert!(created.key.starts_with("hk_"));
    assert!(created.key.starts_with(&created.api_key.prefix));
    assert!(created.api_key.expires_at.is_some());
    assert_eq!(created.api_key.scopes, USER_SCOPES);
    assert!(created.api_key.last_used_at.is_none());

    let listed = client.list_api_keys().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.api_key.id);
    assert_eq!(listed[0].scopes, USER_SCOPES);
    let listed_json = serde_json::to_string(&listed).expect("json");
    assert!(
        !listed_json.contains(&created.key),
        "the secret is never listed"
    );

    // The key works for its own user, and its last use shows.
    let by_key = app.client.with_token(&created.key);
    assert_eq!(
        by_key.me().await.expect("me by key").email,
        "ada@example.com"
    );
    assert!(client
        .get_api_key(created.api_key.id)
        .await
        .expect("get")
        .last_used_at
        .is_some());
    // A key cannot make more keys (that takes a session and the password).
    let err = by_key
        .create_api_key(&request("made by key", USER_SCOPES, PASSWORD))
        .await
        .expect_err("keys cannot mint keys");
    assert_eq!(err.status(), Some(StatusCode::FORBIDDEN));

    client
        .delete_api_key(created.api_key.id)
        .await
        .expect("revoke");
    assert_eq!(
        by_key.me().await.expect_err("revoked").status(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert!(client.list_api_keys().await.expect("list").is_empty());
    assert_eq!(
        client
            .delete_api_key(created.api_key.id)
            .await
            .expect_err("twice")
            .status(),
        Some(StatusCode::NOT_FOUND)
    );
}

#[tokio::test]
async fn bad_key_requests() {
    let app = spawn_open().await;
    let (_, admin) = app.register("admin@example.com").await;
    let (_, client) = app.register("ada@example.com").await;
    let field = |r: CreateApiKeyRequest| {
        let client = client.clone();
        async move {
            client
                .create_api_key(&r)
                .await
                .expect_err("refused")
                .field()
                .map(str::to_owned)
        }
    };
    assert_eq!(
        field(request("  ", USER_SCOPES, PASSWORD)).await.as_deref(),
        Some("name")
    );
    assert_eq!(
        field(request(&"n".repeat(101), USER_SCOPES, PASSWORD))
            .await
            .as_deref(),
        Some("name")
    );
    assert_eq!(
        field(CreateApiKeyRequest {
            expires_in_days: Some(0),
            ..request("k", USER_SCOPES, PASSWORD)
        })
        .await
        .as_deref(),
        Some("expires_in_days")
    );
    assert_eq!(
        field(request("k", &[], PASSWORD)).await.as_deref(),
        Some("scopes")
    );
    assert_eq!(
        field(request("k", USER_SCOPES, "not the password"))
            .await
            .as_deref(),
        Some("password")
    );
    // Fields the wire needs, and scopes the server does not know.
    for (body, named) in [
        (json!({"name": "k", "scopes": ["read"]}), "password"),
        (json!({"name": "k", "password": PASSWORD}), "scopes"),
        (
            json!({"name": "k", "scopes": ["root"], "password": PASSWORD}),
            "scopes[0]",
        ),
        (
            json!({"name": "k", "scopes": ["read"], "password": PASSWORD, "expires_in_days": 1.5}),
            "expires_in_days",
        ),
    ] {
        let response = client
            .request(Method::POST, "/api/v1/api-keys")
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let err: serde_json::Value = response.json().await.expect("json");
        assert_eq!(err["error"]["field"], named, "{err}");
    }
    // JSON has one number type: 30.0 is the whole number 30 (as a JSON Schema reads it).
    let whole = client
        .request(Method::POST, "/api/v1/api-keys")
        .json(&json!({"name": "whole", "scopes": ["read"], "password": PASSWORD, "expires_in_days": 30.0}))
        .send()
        .await
        .expect("send");
    assert_eq!(whole.status(), StatusCode::CREATED);
    let whole: hearth_core::api::CreatedApiKey = whole.json().await.expect("json");
    client
        .delete_api_key(whole.api_key.id)
        .await
        .expect("delete");

    // Only an admin's key can have the admin scope.
    let err = client
        .create_api_key(&request("k", &[KeyScope::Admin], PASSWORD))
        .await
        .expect_err("not an admin");
    assert_eq!(err.status(), Some(StatusCode::FORBIDDEN));
    assert!(
        client.list_api_keys().await.expect("list").is_empty(),
        "nothing stored"
    );
    api_key(&admin, "ops", &[KeyScope::Admin]).await;

    let bogus = app.client.with_token("hk_not-a-real-key");
    assert_eq!(
        bogus.me().await.expect_err("bogus").status(),
        Some(StatusCode::UNAUTHORIZED)
    );
    let response = client
        .request(Method::GET, "/api/v1/api-keys/not-a-uuid")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_key_reaches_only_what_its_scopes_allow() {
    let app = crate::helpers::spawn_with(crate::knowledge::embedder_only).await;
    let (admin, _user, _, _) = app.admin_and_user().await;
    let key = |scopes: &'static [KeyScope]| {
        let admin = admin.clone();
        let base = app.client.clone();
        async move { base.with_token(&api_key(&admin, "k", scopes).await.key) }
    };
    let read = key(&[KeyScope::Read]).await;
    let chat = key(&[KeyScope::Chat]).await;
    let knowledge = key(&[KeyScope::Knowledge]).await;
    let all_but_admin = key(USER_SCOPES).await;
    let admin_key = key(&[KeyScope::Admin]).await;

    let kb = admin
        .create_knowledge_base(&hearth_core::knowledge::CreateKnowledgeBase {
            name: "notes".into(),
            ..Default::default()
        })
        .await
        .expect("knowledge base")
        .id;
    let search_path = format!("/api/v1/knowledge-bases/{kb}/search");

    use Method as M;
    // (who, method, path, expected status)
    let table: Vec<(&Client, Method, &str, StatusCode)> = vec![
        // Search is a read although it is a POST (the empty body then fails validation).
        (
            &read,
            M::POST,
            &search_path,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (&chat, M::POST, &search_path, StatusCode::FORBIDDEN),
        (&read, M::GET, "/api/v1/conversations", StatusCode::OK),
        (&read, M::GET, "/api/v1/knowledge-bases", StatusCode::OK),
        (&read, M::GET, "/api/v1/memories", StatusCode::OK),
        (&read, M::GET, "/api/v1/models", StatusCode::OK),
        (&read, M::GET, "/v1/models", StatusCode::OK),
        (
            &read,
            M::POST,
            "/api/v1/conversations",
            StatusCode::FORBIDDEN,
        ),
        (
            &read,
            M::POST,
            "/api/v1/knowledge-bases",
            StatusCode::FORBIDDEN,
        ),
        (
            &read,
            M::POST,
            "/v1/chat/completions",
            StatusCode::FORBIDDEN,
        ),
        (&read, M::GET, "/api/v1/admin/users", StatusCode::FORBIDDEN),
        (&chat, M::POST, "/api/v1/conversations", StatusCode::CREATED),
        (
            &chat,
            M::GET,
            "/api/v1/knowledge-bases",
            StatusCode::FORBIDDEN,
        ),
        (
            &knowledge,
            M::GET,
            "/api/v1/conversations",
            StatusCode::FORBIDDEN,
        ),
        (
            &knowledge,
            M::GET,
            "/api/v1/memories",
            StatusCode::FORBIDDEN,
        ),
        // Keys may read the account but not change it.
        (&all_but_admin, M::GET, "/api/v1/me", StatusCode::OK),
        (&all_but_admin, M::GET, "/api/v1/api-keys", StatusCode::OK),
        (
            &all_but_admin,
            M::POST,
            "/api/v1/me/password",
            StatusCode::FORBIDDEN,
        ),
        // An admin's key reaches the admin API only with the admin scope.
        (
            &all_but_admin,
            M::GET,
            "/api/v1/admin/users",
            StatusCode::FORBIDDEN,
        ),
        (&admin_key, M::GET, "/api/v1/admin/users", StatusCode::OK),
        (
            &admin_key,
            M::GET,
            "/api/v1/conversations",
            StatusCode::FORBIDDEN,
        ),
    ];
    for (who, method, path, expected) in table {
        assert_eq!(
            status(who, method.clone(), path).await,
            expected,
            "{method} {path}"
        );
    }
    // Chat cannot reach knowledge sideways: attaching a knowledge base needs its scope too.
    let err = chat
        .create_conversation(&hearth_core::chat::api::CreateConversationRequest {
            knowledge_base_ids: Some(vec![kb]),
            ..Default::default()
        })
        .await
        .expect_err("attach without the knowledge scope");
    assert_eq!(err.status(), Some(StatusCode::FORBIDDEN));

    // The refusal names the scope.
    let body: serde_json::Value = chat
        .request(M::GET, "/api/v1/knowledge-bases")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`knowledge`")),
        "{body}"
    );

    // Any key opens the live socket; each frame needs its own scope.
    let base = app.client.base_url().to_owned();
    let knowledge_secret = api_key(&admin, "socket", &[KeyScope::Knowledge]).await.key;
    let mut ws = crate::ws::connect(&base).await;
    crate::ws::send(&mut ws, json!({"type": "auth", "token": knowledge_secret})).await;
    assert_eq!(crate::ws::next(&mut ws).await["type"], "ready");
    crate::ws::send(&mut ws, json!({"type": "watch_documents", "id": "d"})).await;
    assert_eq!(crate::ws::next(&mut ws).await["type"], "ack");
    for frame in [
        json!({"type": "watch_memories", "id": "m"}),
        json!({"type": "send", "id": "s", "conversation_id": uuid::Uuid::now_v7(), "content": "hi"}),
    ] {
        crate::ws::send(&mut ws, frame).await;
        let reply = crate::ws::next(&mut ws).await;
        assert_eq!(reply["code"], "forbidden", "{reply}");
        assert!(
            reply["message"]
                .as_str()
                .is_some_and(|m| m.contains("`chat`")),
            "{reply}"
        );
    }
}

#[tokio::test]
async fn a_password_change_can_revoke_every_key_too() {
    let app = crate::helpers::spawn_open().await;
    let (_, user) = app.register("keys-and-password@example.com").await;
    let kept = api_key(&user, "kept", USER_SCOPES).await;
    user.change_password(crate::helpers::PASSWORD, "second password 2")
        .await
        .expect("change");
    // By default keys survive a password change...
    app.client
        .with_token(&kept.key)
        .me()
        .await
        .expect("key still works");
    user.change_password_with(&hearth_core::api::ChangePasswordRequest {
        current_password: "second password 2".into(),
        new_password: "third password 3".into(),
        revoke_api_keys: true,
    })
    .await
    .expect("change and revoke");
    // ...and are gone when asked.
    let err = app
        .client
        .with_token(&kept.key)
        .me()
        .await
        .expect_err("key revoked");
    assert_eq!(err.status(), Some(hearth_client::StatusCode::UNAUTHORIZED));
    assert!(user.list_api_keys().await.expect("list").is_empty());
}
