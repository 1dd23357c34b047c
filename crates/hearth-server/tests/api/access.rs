//! The access table: for every user-owned resource, another user gets 404 on every endpoint
//! that takes its id, and the owner's data is untouched afterwards. Add a row per new resource;
//! `every_id_route_is_in_the_table` fails until you do.

use std::future::Future;
use std::pin::Pin;

use hearth_client::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{fake_provider, spawn_open, spawn_with};

/// Method, path (with `{id}` and other placeholders), and a body maker.
type Probe = (&'static str, &'static str, Option<fn() -> Value>);

/// Placeholder names and the values to put in them.
type Ids = Vec<(&'static str, String)>;

type Create = for<'a> fn(&'a Client) -> Pin<Box<dyn Future<Output = Ids> + Send + 'a>>;

struct Resource {
    name: &'static str,
    /// Creates one as the owner, returns its ids.
    create: Create,
    /// Method, path (with placeholders), body.
    probes: &'static [Probe],
    /// A path that gets it as the owner, to check it survived.
    owner_check: &'static str,
}

fn fill(path: &str, ids: &Ids) -> String {
    ids.iter().fold(path.to_owned(), |p, (name, value)| {
        p.replace(&format!("{{{name}}}"), value)
    })
}

fn create_api_key(c: &Client) -> Pin<Box<dyn Future<Output = Ids> + Send + '_>> {
    Box::pin(async move {
        let id = crate::helpers::api_key(c, "owned", crate::helpers::USER_SCOPES)
            .await
            .api_key
            .id;
        vec![("id", id.to_string())]
    })
}

/// A conversation whose answer waits for the approval of a tool call (calculator is `ask`).
fn create_conversation(c: &Client) -> Pin<Box<dyn Future<Output = Ids> + Send + '_>> {
    Box::pin(async move {
        use futures_util::StreamExt as _;
        use hearth_core::chat::api::{CreateConversationRequest, RunEventKind, SendMessageRequest};
        let conv = c
            .create_conversation(&CreateConversationRequest {
                title: None,
                model: Some("fake-tools".into()),
                ..Default::default()
            })
            .await
            .expect("conversation");
        let mut events = c
            .send_message_events(
                conv.id,
                &SendMessageRequest {
                    content: "calculate 1+1".into(),
                    ..Default::default()
                },
            )
            .await
            .expect("send");
        let mut ids = vec![("id", conv.id.to_string())];
        while let Some(event) = events.next().await {
            match event.expect("event").kind {
                RunEventKind::RunStarted {
                    run_id, message_id, ..
                } => {
                    ids.push(("run_id", run_id.to_string()));
                    ids.push(("message_id", message_id.to_string()));
                }
                RunEventKind::ToolApprovalRequired { id, .. } => {
                    ids.push(("call_id", id));
                    break;
                }
                _ => {}
            }
        }
        ids
    })
}

/// A knowledge base with one document.
fn create_knowledge_base(c: &Client) -> Pin<Box<dyn Future<Output = Ids> + Send + '_>> {
    Box::pin(async move {
        let kb = c
            .create_knowledge_base(&hearth_core::knowledge::CreateKnowledgeBase {
                name: "owned".into(),
                ..Default::default()
            })
            .await
            .expect("knowledge base");
        let doc = c
            .upload_documents(
                kb.id,
                vec![hearth_client::Upload::bytes(
                    "notes.md",
                    "# Notes\n\nprivate",
                )],
                None,
            )
            .await
            .expect("upload")
            .documents[0]
            .id;
        vec![("id", kb.id.to_string()), ("doc", doc.to_string())]
    })
}

/// A memory.
fn create_memory(c: &Client) -> Pin<Box<dyn Future<Output = Ids> + Send + '_>> {
    Box::pin(async move {
        let created: Value = c
            .request(Method::POST, "/api/v1/memories")
            .json(&json!({"text": "The owner likes tea."}))
            .send()
            .await
            .expect("create memory")
            .json()
            .await
            .expect("json");
        vec![("id", created["id"].as_str().expect("id").to_owned())]
    })
}

const RESOURCES: &[Resource] = &[
    Resource {
        name: "api key",
        create: create_api_key,
        probes: &[
            ("GET", "/api/v1/api-keys/{id}", None),
            ("DELETE", "/api/v1/api-keys/{id}", None),
        ],
        owner_check: "/api/v1/api-keys/{id}",
    },
    Resource {
        name: "conversation",
        create: create_conversation,
        probes: &[
            ("GET", "/api/v1/conversations/{id}", None),
            (
                "PATCH",
                "/api/v1/conversations/{id}",
                Some(|| json!({"title": "taken"})),
            ),
            ("DELETE", "/api/v1/conversations/{id}", None),
            ("GET", "/api/v1/conversations/{id}/export", None),
            (
                "POST",
                "/api/v1/conversations/{id}/export-to-knowledge",
                Some(|| json!({"knowledge_base_id": "0196f2a0-0000-7000-8000-000000000000"})),
            ),
            (
                "POST",
                "/api/v1/conversations/{id}/messages",
                Some(|| json!({"content": "hi"})),
            ),
            (
                "POST",
                "/api/v1/conversations/{id}/messages/{message_id}/regenerate",
                Some(|| json!({})),
            ),
            (
                "GET",
                "/api/v1/conversations/{id}/runs/{run_id}/events",
                None,
            ),
            ("POST", "/api/v1/runs/{run_id}/stop", None),
            (
                "POST",
                "/api/v1/runs/{run_id}/approvals/{call_id}",
                Some(|| json!({"approve": true})),
            ),
        ],
        owner_check: "/api/v1/conversations/{id}",
    },
    Resource {
        name: "knowledge base",
        create: create_knowledge_base,
        probes: &[
            ("GET", "/api/v1/knowledge-bases/{id}", None),
            (
                "PATCH",
                "/api/v1/knowledge-bases/{id}",
                Some(|| json!({"name": "taken"})),
            ),
            ("DELETE", "/api/v1/knowledge-bases/{id}", None),
            ("GET", "/api/v1/knowledge-bases/{id}/documents", None),
            ("POST", "/api/v1/knowledge-bases/{id}/documents", None),
            ("GET", "/api/v1/knowledge-bases/{id}/documents/{doc}", None),
            (
                "DELETE",
                "/api/v1/knowledge-bases/{id}/documents/{doc}",
                None,
            ),
            (
                "POST",
                "/api/v1/knowledge-bases/{id}/documents/{doc}/retry",
                None,
            ),
            (
                "POST",
                "/api/v1/knowledge-bases/{id}/search",
                Some(|| json!({"query": "private"})),
            ),
        ],
        owner_check: "/api/v1/knowledge-bases/{id}/documents/{doc}",
    },
    Resource {
        name: "memory",
        create: create_memory,
        probes: &[
            (
                "PATCH",
                "/api/v1/memories/{id}",
                Some(|| json!({"text": "taken"})),
            ),
            ("DELETE", "/api/v1/memories/{id}", None),
        ],
        owner_check: "/api/v1/memories",
    },
];

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
    ("GET", "/api/v1/admin/providers", None),
    (
        "POST",
        "/api/v1/admin/providers",
        Some(|| json!({"kind": "openai", "name": "x", "base_url": "http://127.0.0.1:1/v1"})),
    ),
    ("GET", "/api/v1/admin/providers/{id}", None),
    (
        "PATCH",
        "/api/v1/admin/providers/{id}",
        Some(|| json!({"enabled": false})),
    ),
    ("DELETE", "/api/v1/admin/providers/{id}", None),
    ("POST", "/api/v1/admin/providers/{id}/sync", None),
    ("GET", "/api/v1/admin/models", None),
    ("GET", "/api/v1/admin/llm-calls", None),
    ("GET", "/api/v1/admin/usage", None),
    (
        "PATCH",
        "/api/v1/admin/models/{id}",
        Some(|| json!({"enabled": false})),
    ),
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
    let app = spawn_with(|s| {
        crate::knowledge::embedder_only(s);
        s.chat
            .tool_policy
            .insert("calculator".into(), hearth_core::chat::ToolPolicy::Ask);
    })
    .await;
    let (admin, user_b, _, _) = app.admin_and_user().await;
    let _fake = fake_provider(&admin).await;
    // The owner is a plain user (the second registration is not admin).
    let (_, owner) = app.register("owner@example.com").await;
    for resource in RESOURCES {
        let ids = (resource.create)(&owner).await;
        for (method, path, body) in resource.probes {
            let path = fill(path, &ids);
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
        let check = fill(resource.owner_check, &ids);
        assert_eq!(
            call(&owner, "GET", &check, None).await,
            StatusCode::OK,
            "{} survived the probes",
            resource.name
        );
        // The pending approval survived too: the owner can still answer it.
        if let Some((_, call)) = ids.iter().find(|(n, _)| *n == "call_id") {
            let run = &ids.iter().find(|(n, _)| *n == "run_id").expect("run").1;
            let path = format!("/api/v1/runs/{run}/approvals/{call}");
            let status = call_json(&owner, "POST", &path, json!({"approve": false})).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "owner answers the approval");
        }
    }
}

async fn call_json(client: &Client, method: &str, path: &str, body: Value) -> StatusCode {
    let method: Method = method.parse().expect("method");
    client
        .request(method, path)
        .json(&body)
        .send()
        .await
        .expect("send")
        .status()
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
