use hearth_client::StatusCode;
use hearth_core::access::Role;
use hearth_core::api::{RegisterRequest, Registration, UpdateUserRequest};

use crate::helpers::{spawn_app, spawn_open, spawn_with, PASSWORD};

fn register_req(email: &str) -> RegisterRequest {
    RegisterRequest {
        email: email.into(),
        password: PASSWORD.into(),
        name: Some("Ada".into()),
        invite_token: None,
    }
}

#[tokio::test]
async fn first_user_becomes_admin_and_status_reports_setup() {
    let app = spawn_open().await;
    assert!(app.client.auth_status().await.expect("status").needs_setup);
    let (first, _) = app.register("first@example.com").await;
    assert_eq!(first.user.role, Role::Admin);
    assert_eq!(first.token_type, "Bearer");
    assert_eq!(first.expires_in, 900);
    assert!(!app.client.auth_status().await.expect("status").needs_setup);
    let (second, _) = app.register("second@example.com").await;
    assert_eq!(second.user.role, Role::User);
}

#[tokio::test]
async fn login_me_and_wrong_password() {
    let app = spawn_open().await;
    app.register("ada@example.com").await;
    let auth = app
        .client
        .login("ADA@example.com ", PASSWORD)
        .await
        .expect("login is case-insensitive on email");
    let me = app
        .client
        .with_token(&auth.access_token)
        .me()
        .await
        .expect("me");
    assert_eq!(me.email, "ada@example.com");
    assert_eq!(me.role, Role::Admin);

    let err = app
        .client
        .login("ada@example.com", "wrong-password-here")
        .await
        .expect_err("wrong password");
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    let err = app
        .client
        .login("nobody@example.com", PASSWORD)
        .await
        .expect_err("unknown user");
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(err.to_string().contains("invalid email or password"));
}

#[tokio::test]
async fn refresh_rotates_and_replay_revokes_the_family() {
    let app = spawn_open().await;
    let (auth, _) = app.register("ada@example.com").await;
    let second = app
        .client
        .refresh(&auth.refresh_token)
        .await
        .expect("first refresh");
    assert_ne!(second.refresh_token, auth.refresh_token);
    let third = app
        .client
        .refresh(&second.refresh_token)
        .await
        .expect("second refresh");
    app.client
        .with_token(&third.access_token)
        .me()
        .await
        .expect("new access token works");

    // Replaying an already-used token revokes the whole session.
    let err = app
        .client
        .refresh(&auth.refresh_token)
        .await
        .expect_err("replay");
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    let err = app
        .client
        .refresh(&third.refresh_token)
        .await
        .expect_err("family revoked");
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    let err = app
        .client
        .with_token(&third.access_token)
        .me()
        .await
        .expect_err("access token of revoked session");
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));

    // Another session of the same user is untouched.
    let other = app
        .client
        .login("ada@example.com", PASSWORD)
        .await
        .expect("login");
    app.client
        .refresh(&other.refresh_token)
        .await
        .expect("other session still refreshes");
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let app = spawn_open().await;
    let (auth, client) = app.register("ada@example.com").await;
    client
        .logout(Some(&auth.refresh_token))
        .await
        .expect("logout");
    assert_eq!(
        client.me().await.expect_err("access token dead").status(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        app.client
            .refresh(&auth.refresh_token)
            .await
            .expect_err("refresh dead")
            .status(),
        Some(StatusCode::UNAUTHORIZED)
    );
}

#[tokio::test]
async fn refresh_cookie_is_http_only_and_works_without_body() {
    let app = spawn_open().await;
    let response = app
        .client
        .request(hearth_client::Method::POST, "/api/v1/auth/register")
        .json(&register_req("ada@example.com"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookie = response
        .headers()
        .get("set-cookie")
        .expect("cookie")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.starts_with("hearth_refresh=hrt_"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/api/v1/auth"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("pair").to_owned();
    let refreshed = app
        .client
        .request(hearth_client::Method::POST, "/api/v1/auth/refresh")
        .header("cookie", &pair)
        .send()
        .await
        .expect("send");
    assert_eq!(refreshed.status(), StatusCode::OK);
    let again = app
        .client
        .request(hearth_client::Method::POST, "/api/v1/auth/refresh")
        .header("cookie", &pair)
        .send()
        .await
        .expect("send");
    assert_eq!(
        again.status(),
        StatusCode::UNAUTHORIZED,
        "the cookie's token was used already"
    );
    let cleared = again
        .headers()
        .get("set-cookie")
        .expect("cleared")
        .to_str()
        .expect("ascii");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn change_password_keeps_this_session_and_ends_others() {
    let app = spawn_open().await;
    let (_, client) = app.register("ada@example.com").await;
    let other = app
        .client
        .login("ada@example.com", PASSWORD)
        .await
        .expect("second session");
    let err = client
        .change_password("not-the-password", "another-good-passphrase")
        .await
        .expect_err("wrong current");
    assert_eq!(err.field(), Some("current_password"));
    let err = client
        .change_password(PASSWORD, "short")
        .await
        .expect_err("weak new");
    assert_eq!(err.field(), Some("new_password"));
    client
        .change_password(PASSWORD, "another-good-passphrase")
        .await
        .expect("change");
    client.me().await.expect("this session continues");
    assert!(
        app.client
            .with_token(&other.access_token)
            .me()
            .await
            .is_err(),
        "other session ended"
    );
    assert!(app.client.login("ada@example.com", PASSWORD).await.is_err());
    app.client
        .login("ada@example.com", "another-good-passphrase")
        .await
        .expect("new password works");
}

#[tokio::test]
async fn registration_modes() {
    // Invite-only (the default): the admin can register, others need an invite.
    let app = spawn_app().await;
    let (_, admin) = app.register("admin@example.com").await;
    let err = app
        .client
        .register(&register_req("eve@example.com"))
        .await
        .expect_err("needs invite");
    assert_eq!(
        (err.status(), err.field()),
        (Some(StatusCode::BAD_REQUEST), Some("invite_token"))
    );
    let invite = admin
        .create_invite(Some("bob@example.com"))
        .await
        .expect("invite");
    let mut req = register_req("eve@example.com");
    req.invite_token = Some(invite.token.clone());
    let err = app
        .client
        .register(&req)
        .await
        .expect_err("invite for another email");
    assert_eq!(err.field(), Some("invite_token"));
    let mut req = register_req("bob@example.com");
    req.invite_token = Some(invite.token.clone());
    let bob = app
        .client
        .register(&req)
        .await
        .expect("invited registration");
    assert_eq!(bob.user.role, Role::User);
    let mut req = register_req("bob2@example.com");
    req.invite_token = Some(invite.token);
    assert_eq!(
        app.client
            .register(&req)
            .await
            .expect_err("used invite")
            .field(),
        Some("invite_token")
    );

    // Closed: only admins create accounts.
    let app = spawn_with(|s| s.auth.registration = Registration::Closed).await;
    app.register("admin@example.com").await;
    let err = app
        .client
        .register(&register_req("eve@example.com"))
        .await
        .expect_err("closed");
    assert_eq!(err.status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(
        app.client.auth_status().await.expect("status").registration,
        Registration::Closed
    );
}

#[tokio::test]
async fn disabled_user_tokens_stop_at_once() {
    let app = spawn_open().await;
    let (admin, user, _, user_auth) = app.admin_and_user().await;
    let key = crate::helpers::api_key(&user, "k", crate::helpers::USER_SCOPES).await;
    let key_client = app.client.with_token(&key.key);
    key_client.me().await.expect("key works");
    admin
        .update_user(
            user_auth.user.id,
            &UpdateUserRequest {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("disable");
    assert_eq!(
        user.me().await.expect_err("token").status(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        key_client.me().await.expect_err("key").status(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        app.client
            .refresh(&user_auth.refresh_token)
            .await
            .expect_err("refresh")
            .status(),
        Some(StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        app.client
            .login("user@example.com", PASSWORD)
            .await
            .expect_err("login")
            .status(),
        Some(StatusCode::FORBIDDEN)
    );
    admin
        .update_user(
            user_auth.user.id,
            &UpdateUserRequest {
                disabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("enable");
    app.client
        .login("user@example.com", PASSWORD)
        .await
        .expect("login again");
    key_client.me().await.expect("key works again");
}

#[tokio::test]
async fn login_lockout_and_per_ip_limit() {
    let app = spawn_with(|s| {
        s.auth.registration = Registration::Open;
        s.auth.login.max_failures = 3;
    })
    .await;
    app.register("ada@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            app.client
                .login("ada@example.com", "wrong-password")
                .await
                .expect_err("wrong")
                .status(),
            Some(StatusCode::UNAUTHORIZED)
        );
    }
    let err = app
        .client
        .login("ada@example.com", PASSWORD)
        .await
        .expect_err("locked even with the right password");
    assert_eq!(
        (err.status(), err.code()),
        (Some(StatusCode::TOO_MANY_REQUESTS), Some("rate_limited"))
    );

    let app = spawn_with(|s| {
        s.auth.registration = Registration::Open;
        s.auth.login.per_ip_per_minute = 3;
    })
    .await;
    for i in 0..3 {
        let _ = app
            .client
            .login(&format!("u{i}@example.com"), PASSWORD)
            .await;
    }
    let response = app
        .client
        .request(hearth_client::Method::POST, "/api/v1/auth/login")
        .json(&serde_json::json!({"email": "z@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_some());
}

/// A sign-in attempt as if relayed by a proxy for `client`.
async fn login_from(app: &crate::helpers::TestApp, client: &str, password: &str) -> StatusCode {
    app.client
        .request(hearth_client::Method::POST, "/api/v1/auth/login")
        .header("x-forwarded-for", client)
        .json(&serde_json::json!({"email": "ada@example.com", "password": password}))
        .send()
        .await
        .expect("send")
        .status()
}

#[tokio::test]
async fn behind_a_trusted_proxy_a_stranger_locks_out_only_themselves() {
    let app = spawn_with(|s| {
        s.auth.registration = Registration::Open;
        s.auth.login.max_failures = 3;
        s.server.trusted_proxies =
            vec![
                hearth_server::settings::ProxyRange::try_from("127.0.0.1".to_string())
                    .expect("range"),
            ];
    })
    .await;
    app.register("ada@example.com").await;
    let stranger = "203.0.113.9";
    for _ in 0..3 {
        assert_eq!(
            login_from(&app, stranger, "wrong-password").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_from(&app, stranger, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the stranger's address is locked out"
    );
    assert_eq!(
        login_from(&app, "198.51.100.7", PASSWORD).await,
        StatusCode::OK,
        "the owner signs in from their own address"
    );

    // Without the proxy trusted, the header is the client's own claim and is ignored: every
    // attempt comes from the TCP peer, which the failures lock out.
    let app = spawn_with(|s| {
        s.auth.registration = Registration::Open;
        s.auth.login.max_failures = 3;
    })
    .await;
    app.register("ada@example.com").await;
    for _ in 0..3 {
        login_from(&app, stranger, "wrong-password").await;
    }
    assert_eq!(
        login_from(&app, "198.51.100.7", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn browser_refresh_keeps_the_token_in_the_cookie_only() {
    let app = spawn_open().await;
    let (auth, _) = app.register("ada@example.com").await;
    let response = app
        .client
        .request(hearth_client::Method::POST, "/api/v1/auth/refresh")
        .header("cookie", format!("hearth_refresh={}", auth.refresh_token))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: serde_json::Value = response.json().await.expect("json");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body["access_token"].is_string());
    let rotated = cookie
        .split(';')
        .next()
        .expect("pair")
        .trim_start_matches("hearth_refresh=")
        .to_owned();
    app.client
        .refresh(&rotated)
        .await
        .expect("the rotated cookie token works");
}

#[tokio::test]
async fn logout_with_a_dead_access_token_still_ends_the_session() {
    let app = spawn_open().await;
    let (auth, _) = app.register("ada@example.com").await;
    let response = app
        .client
        .request(hearth_client::Method::POST, "/api/v1/auth/logout")
        .header("authorization", "Bearer expired.or.garbage")
        .header("cookie", format!("hearth_refresh={}", auth.refresh_token))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .contains("Max-Age=0"));
    let err = app
        .client
        .refresh(&auth.refresh_token)
        .await
        .expect_err("session ended");
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
}

#[tokio::test]
async fn concurrent_first_registrations_make_exactly_one_account() {
    let app = spawn_app().await; // invite-only: the loser must not get an account
    let a = register_req("a@example.com");
    let b = register_req("b@example.com");
    let (ra, rb) = tokio::join!(app.client.register(&a), app.client.register(&b));
    let winners: Vec<_> = [ra, rb].into_iter().filter_map(Result::ok).collect();
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].user.role, Role::Admin);
    let admin = app.client.with_token(&winners[0].access_token);
    assert_eq!(admin.list_users().await.expect("list").len(), 1);
}

#[tokio::test]
async fn secrets_are_stored_only_as_hashes() {
    let app = spawn_open().await;
    let (auth, client) = app.register("ada@example.com").await;
    let key = crate::helpers::api_key(&client, "k", crate::helpers::USER_SCOPES).await;
    let invite = client.create_invite(None).await.expect("invite");
    let stored = app.stored_bytes();
    let stored = String::from_utf8_lossy(&stored);
    for secret in [
        &auth.refresh_token,
        &key.key,
        &invite.token,
        &crate::helpers::PASSWORD.to_owned(),
    ] {
        assert!(
            !stored.contains(secret.as_str()),
            "a secret is stored in clear"
        );
    }
    let hash = hearth_core::tokens::hash_secret(&key.key);
    assert!(stored.contains(&hash), "the key's hash is what is stored");
}

#[tokio::test]
async fn the_contract_shapes_other_clients_rely_on() {
    let app = spawn_open().await;
    let response = app
        .client
        .request(hearth_client::Method::POST, "/api/v1/auth/register")
        .json(&serde_json::json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("send");
    let body: serde_json::Value = response.json().await.expect("json");
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&body),
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "token_type",
            "user"
        ]
    );
    assert_eq!(
        keys(&body["user"]),
        ["created_at", "disabled", "email", "id", "name", "role"]
    );
    assert_eq!(body["user"]["role"], "admin");
    let token = body["access_token"].as_str().expect("token");
    let me: serde_json::Value = app
        .client
        .with_token(token)
        .request(hearth_client::Method::GET, "/api/v1/me")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    for key in ["id", "email", "name", "role"] {
        assert!(me.get(key).is_some(), "/me has {key}");
    }
}
