use hearth_client::StatusCode;

use crate::helpers::spawn_open;

#[tokio::test]
async fn create_list_use_and_revoke() {
    let app = spawn_open().await;
    let (_, client) = app.register("ada@example.com").await;
    let created = client
        .create_api_key("laptop", Some(30))
        .await
        .expect("create");
    assert!(created.key.starts_with("hk_"));
    assert!(created.key.starts_with(&created.api_key.prefix));
    assert!(created.api_key.expires_at.is_some());

    let listed = client.list_api_keys().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.api_key.id);
    let listed_json = serde_json::to_string(&listed).expect("json");
    assert!(
        !listed_json.contains(&created.key),
        "the secret is never listed"
    );

    // The key works wherever a session token does, for its own user.
    let by_key = app.client.with_token(&created.key);
    assert_eq!(
        by_key.me().await.expect("me by key").email,
        "ada@example.com"
    );
    let second = by_key
        .create_api_key("made by key", None)
        .await
        .expect("key can call the API");
    assert!(client
        .get_api_key(created.api_key.id)
        .await
        .expect("get")
        .last_used_at
        .is_some());

    client
        .delete_api_key(created.api_key.id)
        .await
        .expect("revoke");
    assert_eq!(
        by_key.me().await.expect_err("revoked").status(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(client.list_api_keys().await.expect("list").len(), 1);
    assert_eq!(
        client
            .delete_api_key(created.api_key.id)
            .await
            .expect_err("twice")
            .status(),
        Some(StatusCode::NOT_FOUND)
    );
    client
        .delete_api_key(second.api_key.id)
        .await
        .expect("revoke second");
}

#[tokio::test]
async fn bad_key_requests() {
    let app = spawn_open().await;
    let (_, client) = app.register("ada@example.com").await;
    assert_eq!(
        client
            .create_api_key("  ", None)
            .await
            .expect_err("empty")
            .field(),
        Some("name")
    );
    assert_eq!(
        client
            .create_api_key(&"n".repeat(101), None)
            .await
            .expect_err("long")
            .field(),
        Some("name")
    );
    assert_eq!(
        client
            .create_api_key("k", Some(0))
            .await
            .expect_err("zero days")
            .field(),
        Some("expires_in_days")
    );
    assert!(
        client.list_api_keys().await.expect("list").is_empty(),
        "nothing stored"
    );
    let bogus = app.client.with_token("hk_not-a-real-key");
    assert_eq!(
        bogus.me().await.expect_err("bogus").status(),
        Some(StatusCode::UNAUTHORIZED)
    );
    let response = client
        .request(hearth_client::Method::GET, "/api/v1/api-keys/not-a-uuid")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_password_change_can_revoke_every_key_too() {
    let app = crate::helpers::spawn_open().await;
    let (_, user) = app.register("keys-and-password@example.com").await;
    let kept = user.create_api_key("kept", None).await.expect("key");
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
