//! The access table: for every user-owned resource, another user gets 404 on every endpoint
//! that takes its id, and the owner's data is untouched afterwards. Add a row per new resource;
//! `every_id_route_is_in_the_table` fails until you do.

use std::future::Future;
use std::pin::Pin;

use hearth_client::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::spawn_open;

/// Method, path (with `{id}`), and a body maker.
type Probe = (&'static str, &'static str, Option<fn() -> Value>);

type Create = for<'a> fn(&'a Client) -> Pin<Box<dyn Future<Output = String> + Send + 'a>>;

struct Resource {
    name: &'static str,
    /// Creates one as the owner, returns its id.
    create: Create,
    /// Method, path (with `{id}`), body.
    probes: &'static [Probe],
    /// A path that lists or gets it as the owner, to check it survived.
    owner_check: &'static str,
}

fn create_api_key(c: &Client) -> Pin<Box<dyn Future<Output = String> + Send + '_>> {
    Box::pin(async move {
        c.create_api_key("owned", None)
            .await
            .expect("create key")
            .api_key
            .id
            .to_string()
    })
}

const RESOURCES: &[Resource] = &[Resource {
    name: "api key",
    create: create_api_key,
    probes: &[
        ("GET", "/api/v1/api-keys/{id}", None),
        ("DELETE", "/api/v1/api-keys/{id}", None),
    ],
    owner_check: "/api/v1/api-keys/{id}",
}];

/// Admin-only endpoints: a plain user gets 403 on each.
const ADMIN_ONLY: &[Probe] = &[
    ("GET", "/api/v1/admin/users", None),
    (
        "POST",
        "/api/v1/admin/users",
        Some(|| json!({"email": "x@example.com", "password": "correct-horse-battery"})),
    ),
    (
        "PATCH",
        "/api/v1/admin/users/{id}",
        Some(|| json!({"role": "admin"})),
    ),
    (
        "POST",
        "/api/v1/admin/users/{id}/password",
        Some(|| json!({"new_password": "correct-horse-battery"})),
    ),
    ("POST", "/api/v1/admin/invites", Some(|| json!({}))),
];

async fn call(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<fn() -> Value>,
) -> StatusCode {
    let method: Method = method.parse().expect("method");
    let mut req = client.request(method, path);
    if let Some(body) = body {
        req = req.json(&body());
    }
    req.send().await.expect("send").status()
}

#[tokio::test]
async fn other_users_get_not_found_for_every_owned_resource() {
    let app = spawn_open().await;
    let (admin, user_b, _, _) = app.admin_and_user().await;
    // The owner is a plain user (the second registration is not admin).
    let (_, owner) = app.register("owner@example.com").await;
    for resource in RESOURCES {
        let id = (resource.create)(&owner).await;
        for (method, path, body) in resource.probes {
            let path = path.replace("{id}", &id);
            for (who, client) in [("user B", &user_b), ("admin via user routes", &admin)] {
                let status = call(client, method, &path, *body).await;
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "{who}: {method} {path} ({})",
                    resource.name
                );
            }
        }
        let check = resource.owner_check.replace("{id}", &id);
        assert_eq!(
            call(&owner, "GET", &check, None).await,
            StatusCode::OK,
            "{} survived the probes",
            resource.name
        );
    }
}

#[tokio::test]
async fn plain_users_get_forbidden_on_admin_routes() {
    let app = spawn_open().await;
    let (_, user, admin_auth, _) = app.admin_and_user().await;
    for (method, path, body) in ADMIN_ONLY {
        let path = path.replace("{id}", &admin_auth.user.id.to_string());
        assert_eq!(
            call(&user, method, &path, *body).await,
            StatusCode::FORBIDDEN,
            "{method} {path}"
        );
        assert_eq!(
            call(&app.client, method, &path, *body).await,
            StatusCode::UNAUTHORIZED,
            "anonymous {method} {path}"
        );
    }
}

#[tokio::test]
async fn every_id_route_is_in_the_table() {
    let app = spawn_open().await;
    let doc: Value = app
        .client
        .request(Method::GET, "/openapi.json")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    for (path, ops) in paths {
        for method in ops.as_object().expect("ops").keys() {
            let method = method.to_uppercase();
            let covered = RESOURCES
                .iter()
                .any(|r| r.probes.iter().any(|(m, p, _)| *m == method && p == path))
                || ADMIN_ONLY.iter().any(|(m, p, _)| *m == method && p == path);
            if path.contains('{') {
                assert!(
                    covered,
                    "{method} {path} takes an id but is not in the access table"
                );
            }
            if path.starts_with("/api/v1/admin/") {
                assert!(
                    covered,
                    "{method} {path} is an admin route missing from ADMIN_ONLY"
                );
            }
        }
    }
}
