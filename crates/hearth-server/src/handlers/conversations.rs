//! Conversations, messages and runs. Sending a message starts a run; with
//! `Accept: text/event-stream` its events stream back as SSE, otherwise the finished message
//! comes back as JSON. Either way the run goes on if the client leaves.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt as _};
use hearth_core::chat::api::{
    ApprovalRequest, Conversation, ConversationDetail, CreateConversationRequest, MessageView,
    RegenerateRequest, RunStatus, SendMessageRequest, UpdateConversationRequest,
};
use hearth_core::chat::runs::{LiveRun, Published};
use serde::Deserialize;

use super::auth::OptionalJson;
use super::path_id;
use crate::error::ApiError;
use crate::extract::{Auth, Json, Query};
use crate::state::AppState;
use crate::ws::SocketSlot;

/// `?q=` of the conversation list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only conversations whose title or messages contain this text.
    pub q: Option<String>,
}

/// `?after=` of the event stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventsQuery {
    /// Sequence number of the last event received; later ones are sent.
    #[param(minimum = 0)]
    pub after: Option<u64>,
}

/// `?format=` of an export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExportQuery {
    /// `markdown` (default) or `json`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
}

/// What an export is written as.
#[derive(Clone, Copy, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    #[serde(alias = "md")]
    Markdown,
    Json,
}

/// Export the branch shown, as Markdown, into one of the caller's knowledge bases (as a new
/// document named after the conversation).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/export-to-knowledge", tag = "chat", params(("id" = uuid::Uuid, Path)),
    request_body = hearth_core::knowledge::ExportToKnowledge,
    responses((status = 201, body = hearth_core::knowledge::UploadResult), (status = 404)), security(("bearer" = [])))]
pub async fn export_to_knowledge(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(req): Json<hearth_core::knowledge::ExportToKnowledge>,
) -> Result<(StatusCode, axum::Json<hearth_core::knowledge::UploadResult>), ApiError> {
    let id = path_id(&id, "conversation")?;
    let detail = state.chat.get(&principal, id).await?;
    let text = state.chat.export_markdown(&principal, id).await?;
    let name = hearth_core::knowledge::markdown_file_name(&detail.conversation.title);
    let result = state
        .knowledge
        .add_text(&principal, req.knowledge_base_id, &name, &text)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(result)))
}

/// Start a conversation.
#[utoipa::path(post, path = "/api/v1/conversations", tag = "chat", request_body = CreateConversationRequest,
    responses((status = 201, body = Conversation), (status = 404)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(req): Json<CreateConversationRequest>,
) -> Result<(StatusCode, axum::Json<Conversation>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.chat.create(&principal, req).await?),
    ))
}

/// The caller's conversations, newest first; `q` searches titles and messages.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "chat", params(ListQuery),
    responses((status = 200, body = [Conversation])), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Vec<Conversation>>, ApiError> {
    Ok(axum::Json(
        state.chat.list(&principal, query.q.as_deref()).await?,
    ))
}

/// A conversation with the branch shown.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "chat", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ConversationDetail), (status = 404)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<ConversationDetail>, ApiError> {
    let id = path_id(&id, "conversation")?;
    Ok(axum::Json(state.chat.get(&principal, id).await?))
}

/// Rename, change the model, or switch branch.
#[utoipa::path(patch, path = "/api/v1/conversations/{id}", tag = "chat", params(("id" = uuid::Uuid, Path)),
    request_body = UpdateConversationRequest, responses((status = 200, body = ConversationDetail), (status = 404)), security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Json(req): Json<UpdateConversationRequest>,
) -> Result<axum::Json<ConversationDetail>, ApiError> {
    let id = path_id(&id, "conversation")?;
    Ok(axum::Json(state.chat.update(&principal, id, req).await?))
}

/// Delete a conversation.
#[utoipa::path(delete, path = "/api/v1/conversations/{id}", tag = "chat", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "conversation")?;
    state.chat.delete(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Export the branch shown as Markdown or JSON.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/export", tag = "chat", params(("id" = uuid::Uuid, Path), ExportQuery),
    responses((status = 200, description = "The branch shown", content(
        ("text/markdown; charset=utf-8"),
        (ConversationDetail = "application/json"),
    )), (status = 400), (status = 404)), security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "conversation")?;
    let attachment = |ext: &str| format!("attachment; filename=\"conversation-{id}.{ext}\"");
    match query.format.unwrap_or_default() {
        ExportFormat::Markdown => {
            let text = state.chat.export_markdown(&principal, id).await?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "text/markdown; charset=utf-8".to_owned(),
                    ),
                    (header::CONTENT_DISPOSITION, attachment("md")),
                ],
                text,
            )
                .into_response())
        }
        ExportFormat::Json => {
            let detail = state.chat.get(&principal, id).await?;
            Ok((
                [(header::CONTENT_DISPOSITION, attachment("json"))],
                axum::Json(detail),
            )
                .into_response())
        }
    }
}

fn wants_sse(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// Send a message and stream the answer (SSE) or wait for it (JSON).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "chat", params(("id" = uuid::Uuid, Path)),
    request_body = SendMessageRequest,
    responses((status = 200, description = "SSE run events, or the finished message", body = MessageView),
        (status = 400), (status = 404), (status = 409), (status = 413), (status = 429)), security(("bearer" = [])))]
pub async fn send(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<SendMessageRequest>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "conversation")?;
    // The stream's slot is taken first: over the share, no run starts.
    let slot = stream_slot(&state, &principal, &headers)?;
    let (started, live) = state.chat.send(&principal, id, req).await?;
    answer(&state, &principal, started.run_id, live, slot).await
}

/// Write another answer to a user message (the old one stays as a sibling).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages/{message_id}/regenerate", tag = "chat",
    params(("id" = uuid::Uuid, Path), ("message_id" = uuid::Uuid, Path)), request_body = RegenerateRequest,
    responses((status = 200, body = MessageView), (status = 404), (status = 409), (status = 429)), security(("bearer" = [])))]
pub async fn regenerate(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, message_id)): Path<(String, String)>,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<RegenerateRequest>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "conversation")?;
    let message_id = path_id(&message_id, "message")?;
    let slot = stream_slot(&state, &principal, &headers)?;
    let (started, live) = state
        .chat
        .regenerate(&principal, id, message_id, req)
        .await?;
    answer(&state, &principal, started.run_id, live, slot).await
}

/// A live-connection slot when the caller asked for SSE (429 when they hold their share).
fn stream_slot(
    state: &AppState,
    principal: &hearth_core::access::Principal,
    headers: &HeaderMap,
) -> Result<Option<SocketSlot>, ApiError> {
    wants_sse(headers)
        .then(|| {
            state.sockets.stream_slot(
                principal.user_id(),
                state.settings.server.max_websockets_per_user,
            )
        })
        .transpose()
}

async fn answer(
    state: &AppState,
    principal: &hearth_core::access::Principal,
    run_id: hearth_core::ids::RunId,
    live: Arc<LiveRun>,
    sse: Option<SocketSlot>,
) -> Result<Response, ApiError> {
    if let Some(slot) = sse {
        return Ok(sse_response(state, principal, live.subscribe(0), slot));
    }
    let message = state.chat.wait(principal, run_id).await?;
    Ok(axum::Json(message).into_response())
}

/// Run events as SSE: `id` is the sequence number, `event` the type, `data` the JSON event.
/// The stream ends with an `error` event (code `unauthorized`) when the caller's credential
/// stops being valid.
pub fn sse_response(
    state: &AppState,
    principal: &hearth_core::access::Principal,
    events: impl Stream<Item = Arc<Published>> + Send + 'static,
    slot: SocketSlot,
) -> Response {
    let events = events.map(|p| {
        let mut out = String::with_capacity(p.json.len() + 48);
        crate::sse::encode(
            &mut out,
            Some(&p.event.seq.to_string()),
            Some(p.event.kind.name()),
            &p.json,
        );
        out
    });
    crate::sse::response(
        crate::sse::until_ended(
            events,
            state.accounts.credential_ended(principal),
            |reason| {
                let mut out = String::new();
                let data = serde_json::json!({"code": "unauthorized", "message": reason});
                crate::sse::encode(&mut out, None, Some("error"), &data.to_string());
                out
            },
        ),
        slot,
    )
}

/// Events of a run after `after` (or `Last-Event-ID`): the rest of a live run as it happens,
/// or the stored events of a finished one, as SSE.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/runs/{run_id}/events", tag = "chat",
    params(("id" = uuid::Uuid, Path), ("run_id" = uuid::Uuid, Path), EventsQuery),
    responses((status = 200, description = "SSE run events"), (status = 404)), security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, run_id)): Path<(String, String)>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "conversation")?;
    let run_id = path_id(&run_id, "run")?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let after = query.after.or(last_event_id).unwrap_or(0);
    let slot = state.sockets.stream_slot(
        principal.user_id(),
        state.settings.server.max_websockets_per_user,
    )?;
    let events = state
        .chat
        .events(&principal, Some(id), run_id, after)
        .await?;
    Ok(sse_response(&state, &principal, events, slot))
}

/// The outcome of a stop request.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct StopResponse {
    pub status: RunStatus,
}

/// Stop a run; the partial answer is kept.
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/stop", tag = "chat", params(("run_id" = uuid::Uuid, Path)),
    responses((status = 200, body = StopResponse), (status = 404)), security(("bearer" = [])))]
pub async fn stop(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(run_id): Path<String>,
) -> Result<axum::Json<StopResponse>, ApiError> {
    let run_id = path_id(&run_id, "run")?;
    let status = state.chat.stop(&principal, run_id).await?;
    Ok(axum::Json(StopResponse { status }))
}

/// Approve or decline a tool call waiting for the user.
#[utoipa::path(post, path = "/api/v1/runs/{run_id}/approvals/{call_id}", tag = "chat",
    params(("run_id" = uuid::Uuid, Path), ("call_id" = String, Path)), request_body = ApprovalRequest,
    responses((status = 204), (status = 404)), security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((run_id, call_id)): Path<(String, String)>,
    Json(req): Json<ApprovalRequest>,
) -> Result<StatusCode, ApiError> {
    let run_id = path_id(&run_id, "run")?;
    state
        .chat
        .approve(&principal, run_id, &call_id, req.approve)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
