use hearth_client::StatusCode;
use hearth_core::access::Role;
use hearth_core::api::{CreateUserRequest, UpdateUserRequest};

use crate::helpers::{spawn_open, PASSWORD};

#[tokio::test]
async fn list_promote_and_reset() {
    let app = spawn_open().await;
    let (admin, user, _, user_auth) = app.admin_and_user().await;
    let users = admin.list_users().await.expect("list");
    assert_eq!(
        users.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        ["admin@example.com", "user@example.com"]
    );

    let promoted = admin
        .update_user(
            user_auth.user.id,
            &UpdateUserRequest {
                role: Some(Role::Admin),
                ..Default::default()
            },
        )
        .await
        .expect("promote");
    assert_eq!(promoted.role, Role::Admin);
    user.list_users()
        .await
        .expect("the role applies to existing tokens at once");

    admin
        .reset_password(user_auth.user.id, "a-brand-new-passphrase")
        .await
        .expect("reset");
    assert_eq!(
        user.me().await.expect_err("sessions ended").status(),
        Some(StatusCode::UNAUTHORIZED)
    );
    app.client
        .login("user@example.com", "a-brand-new-passphrase")
        .await
        .expect("new password");
    assert_eq!(
        admin
            .reset_password(user_auth.user.id, "weak")
            .await
            .expect_err("weak")
            .field(),
        Some("new_password")
    );
}

#[tokio::test]
async fn last_admin_cannot_be_demoted_or_disabled() {
    let app = spawn_open().await;
    let (admin, _, admin_auth, _) = app.admin_and_user().await;
    let id = admin_auth.user.id;
    let err = admin
        .update_user(
            id,
            &UpdateUserRequest {
                role: Some(Role::User),
                ..Default::default()
            },
        )
        .await
        .expect_err("demote");
    assert_eq!(
        (err.status(), err.field()),
        (Some(StatusCode::CONFLICT), Some("role"))
    );
    let err = admin
        .update_user(
            id,
            &UpdateUserRequest {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect_err("disable");
    assert_eq!(
        (err.status(), err.field()),
        (Some(StatusCode::CONFLICT), Some("disabled"))
    );
    assert_eq!(admin.me().await.expect("still admin").role, Role::Admin);
}

#[tokio::test]
async fn admin_creates_users_and_duplicates_conflict() {
    let app = spawn_open().await;
    let (admin, _, _, _) = app.admin_and_user().await;
    let req = CreateUserRequest {
        email: "new@example.com".into(),
        password: PASSWORD.into(),
        name: Some("New".into()),
        role: Some(Role::User),
    };
    let created = admin.create_user(&req).await.expect("create");
    assert_eq!(created.name, "New");
    let err = admin
        .create_user(&CreateUserRequest {
            email: "NEW@example.com".into(),
            ..req
        })
        .await
        .expect_err("dup");
    assert_eq!(
        (err.status(), err.field()),
        (Some(StatusCode::CONFLICT), Some("email"))
    );
    assert_eq!(admin.list_users().await.expect("list").len(), 3);
    let missing = hearth_core::ids::UserId::new();
    assert_eq!(
        admin
            .update_user(missing, &UpdateUserRequest::default())
            .await
            .expect_err("missing")
            .status(),
        Some(StatusCode::NOT_FOUND)
    );
}

#[tokio::test]
async fn demotion_takes_effect_at_once_and_admin_keys_work_on_admin_routes() {
    let app = spawn_open().await;
    let (admin, user, admin_auth, user_auth) = app.admin_and_user().await;
    admin
        .update_user(
            user_auth.user.id,
            &UpdateUserRequest {
                role: Some(Role::Admin),
                ..Default::default()
            },
        )
        .await
        .expect("promote");
    let key = crate::helpers::api_key(&user, "ops", &[hearth_core::access::KeyScope::Admin]).await;
    let by_key = app.client.with_token(&key.key);
    assert_eq!(
        by_key
            .list_users()
            .await
            .expect("admin key on admin route")
            .len(),
        2
    );
    by_key
        .update_user(
            admin_auth.user.id,
            &UpdateUserRequest {
                name: Some("Boss".into()),
                ..Default::default()
            },
        )
        .await
        .expect("admin key can administer");
    admin
        .update_user(
            user_auth.user.id,
            &UpdateUserRequest {
                role: Some(Role::User),
                ..Default::default()
            },
        )
        .await
        .expect("demote");
    assert_eq!(
        user.list_users().await.expect_err("token").status(),
        Some(StatusCode::FORBIDDEN)
    );
    assert_eq!(
        by_key.list_users().await.expect_err("key").status(),
        Some(StatusCode::FORBIDDEN)
    );
}
