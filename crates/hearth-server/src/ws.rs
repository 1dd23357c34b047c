//! `GET /api/v1/ws`: one WebSocket multiplexes any number of run streams. Frames are JSON text;
//! the protocol is documented in ARCHITECTURE.md. Each subscription is a task holding a cursor
//! into its run's event buffer and writing through one bounded outbound queue, so a slow socket
//! slows only its own subscriptions and never grows memory or delays the run.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::request::Parts;
use axum::response::{IntoResponse as _, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use hearth_core::access::{Area, Principal};
use hearth_core::chat::api::{RegenerateRequest, SendMessageRequest};
use hearth_core::ids::{ConversationId, MessageId, RunId};
use hearth_core::CoreError;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// How long a client has to authenticate after connecting.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Server pings this often; a connection that answers nothing for three intervals is closed.
const PING_EVERY: Duration = Duration::from_secs(15);
/// Frames waiting to be written per connection.
const OUTBOUND: usize = 64;
/// Largest frame accepted from a client.
const MAX_FRAME: usize = 1024 * 1024;
/// Close code when the connection's credential stops being valid (4000-4999 are the
/// application's; 4401 reads as "unauthorized").
const CLOSE_CREDENTIAL_ENDED: u16 = 4401;
/// Close code when the user holds as many sockets as they may.
const CLOSE_TOO_MANY: u16 = 4429;

/// A frame from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Auth {
        token: String,
    },
    Send {
        #[serde(default)]
        id: Option<String>,
        conversation_id: ConversationId,
        #[serde(flatten)]
        message: SendMessageRequest,
    },
    Regenerate {
        #[serde(default)]
        id: Option<String>,
        conversation_id: ConversationId,
        message_id: MessageId,
        #[serde(default)]
        model: Option<String>,
    },
    Subscribe {
        #[serde(default)]
        id: Option<String>,
        run_id: RunId,
        #[serde(default)]
        after: u64,
    },
    Unsubscribe {
        #[serde(default)]
        id: Option<String>,
        run_id: RunId,
    },
    Stop {
        #[serde(default)]
        id: Option<String>,
        run_id: RunId,
    },
    Approve {
        #[serde(default)]
        id: Option<String>,
        run_id: RunId,
        call_id: String,
        approve: bool,
    },
    /// Start receiving `document` frames: ingest progress of the caller's documents.
    WatchDocuments {
        #[serde(default)]
        id: Option<String>,
    },
    UnwatchDocuments {
        #[serde(default)]
        id: Option<String>,
    },
    /// Start receiving `memory` frames: the caller's memories as they are saved or changed.
    WatchMemories {
        #[serde(default)]
        id: Option<String>,
    },
    Ping,
}

/// Open WebSockets of this instance, for the shares `server.max_websockets_per_user` and
/// `server.max_pending_websockets`. A slot is held by a guard and given back when it drops.
#[derive(Clone, Default)]
pub struct Sockets(std::sync::Arc<std::sync::Mutex<SocketCounts>>);

#[derive(Default)]
struct SocketCounts {
    pending: usize,
    /// Connections still to authenticate, per client (IPv6: per /64).
    pending_per_client: HashMap<std::net::IpAddr, usize>,
    per_user: HashMap<hearth_core::ids::UserId, usize>,
}

/// A slot of [`Sockets`]; dropping it frees the slot.
pub struct SocketSlot {
    sockets: Sockets,
    holder: Holder,
}

enum Holder {
    Pending(std::net::IpAddr),
    User(hearth_core::ids::UserId),
}

/// IPv6 clients usually hold a whole /64, so that is the unit counted.
fn client_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V4(_) => ip,
        std::net::IpAddr::V6(v6) => std::net::IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(v6) & !((1u128 << 64) - 1),
        )),
    }
}

impl Sockets {
    fn lock(&self) -> std::sync::MutexGuard<'_, SocketCounts> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for a connection of `client` yet to authenticate, unless `max` are waiting
    /// already, or `per_client` of that client's.
    fn pending(
        &self,
        client: std::net::IpAddr,
        max: usize,
        per_client: usize,
    ) -> Option<SocketSlot> {
        let client = client_key(client);
        let mut counts = self.lock();
        let theirs = counts.pending_per_client.get(&client).copied().unwrap_or(0);
        if counts.pending >= max || theirs >= per_client {
            return None;
        }
        counts.pending += 1;
        counts.pending_per_client.insert(client, theirs + 1);
        Some(SocketSlot {
            sockets: self.clone(),
            holder: Holder::Pending(client),
        })
    }

    /// A slot for one of `user`'s SSE streams: the same share as their WebSockets
    /// (`server.max_websockets_per_user`), or 429 naming it.
    pub(crate) fn stream_slot(
        &self,
        user: hearth_core::ids::UserId,
        max: usize,
    ) -> Result<SocketSlot, crate::error::ApiError> {
        self.for_user(user, max).ok_or_else(|| {
            crate::error::ApiError::request(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                too_many(max),
                None,
            )
        })
    }

    /// A slot for `user`'s connection, unless they hold `max` already.
    fn for_user(&self, user: hearth_core::ids::UserId, max: usize) -> Option<SocketSlot> {
        let mut counts = self.lock();
        let held = counts.per_user.entry(user).or_insert(0);
        (*held < max).then(|| {
            *held += 1;
            SocketSlot {
                sockets: self.clone(),
                holder: Holder::User(user),
            }
        })
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self.sockets.lock();
        match self.holder {
            Holder::Pending(client) => {
                counts.pending = counts.pending.saturating_sub(1);
                if let Some(theirs) = counts.pending_per_client.get_mut(&client) {
                    *theirs = theirs.saturating_sub(1);
                    if *theirs == 0 {
                        counts.pending_per_client.remove(&client);
                    }
                }
            }
            Holder::User(user) => {
                if let Some(held) = counts.per_user.get_mut(&user) {
                    *held = held.saturating_sub(1);
                    if *held == 0 {
                        counts.per_user.remove(&user);
                    }
                }
            }
        }
    }
}

fn too_many(max: usize) -> String {
    format!(
        "you have {max} live connections open (WebSockets and streams), the most one user may \
         (server.max_websockets_per_user)"
    )
}

/// Reads one client frame as the connection does, saying only whether it is valid (for the
/// fuzz target `ws_frame`: no input may panic the reader).
pub fn check_frame(text: &str) -> Result<(), String> {
    serde_json::from_str::<ClientFrame>(text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// What one connection is subscribed to.
#[derive(Default)]
struct Subscriptions {
    runs: HashMap<RunId, JoinHandle<()>>,
    documents: Option<JoinHandle<()>>,
    memories: Option<JoinHandle<()>>,
}

impl Subscriptions {
    fn abort_all(self) {
        for (_, task) in self.runs {
            task.abort();
        }
        for task in [self.documents, self.memories].into_iter().flatten() {
            task.abort();
        }
    }
}

/// Upgrades to a WebSocket. A bearer token in the request authenticates at once; otherwise the
/// first frame must be `{"type":"auth","token":…}` (browsers cannot set headers on a WebSocket).
pub async fn upgrade(
    State(state): State<AppState>,
    ws: WebSocketUpgrade,
    parts: Parts,
) -> Response {
    let token = crate::extract::bearer(&parts);
    let client = crate::extract::client_of(&parts, &state);
    let server = &state.settings.server;
    let Some(pending) = state.sockets.pending(
        client,
        server.max_pending_websockets,
        server.max_pending_websockets_per_client,
    ) else {
        return crate::error::ApiError::from(CoreError::QuotaExceeded {
            message: "too many connections are waiting to authenticate \
                      (server.max_pending_websockets, server.max_pending_websockets_per_client); \
                      try again shortly"
                .into(),
            retry_after_secs: 5,
        })
        .into_response();
    };
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(MAX_FRAME)
        .on_upgrade(move |socket| serve(state, socket, token, pending))
}

fn error_frame(id: Option<&str>, code: &str, message: &str) -> String {
    json!({"type": "error", "id": id, "code": code, "message": message}).to_string()
}

fn core_error_frame(id: Option<&str>, err: &CoreError) -> String {
    let code = match err {
        CoreError::NotFound(_) => "not_found",
        CoreError::ModelNotFound(_) => "model_not_found",
        CoreError::InvalidInput { .. } => "invalid_input",
        CoreError::Unauthorized(_) => "unauthorized",
        CoreError::Forbidden(_) => "forbidden",
        CoreError::QuotaExceeded { .. } => "quota_exceeded",
        CoreError::Busy { .. } => "model_busy",
        CoreError::TooLarge { .. } => "payload_too_large",
        CoreError::RateLimited { .. } => "rate_limited",
        CoreError::Conflict { .. } => "conflict",
        CoreError::Upstream(_) => "upstream_error",
        CoreError::Other(cause) => {
            tracing::error!(error.cause = %cause, "internal error on a WebSocket");
            return error_frame(id, "internal", "internal error");
        }
    };
    error_frame(id, code, &err.to_string())
}

async fn serve(state: AppState, socket: WebSocket, token: Option<String>, pending: SocketSlot) {
    let (mut sink, mut stream) = socket.split();
    let principal = match authenticate(&state, &mut stream, token).await {
        Ok(p) => p,
        Err(message) => {
            let _ = sink
                .send(Message::Text(
                    error_frame(None, "unauthorized", &message).into(),
                ))
                .await;
            let _ = sink.close().await;
            return;
        }
    };
    drop(pending);
    let max = state.settings.server.max_websockets_per_user;
    let Some(_slot) = state.sockets.for_user(principal.user_id(), max) else {
        let message = too_many(max);
        let _ = sink
            .send(Message::Text(
                error_frame(None, "too_many_connections", &message).into(),
            ))
            .await;
        let _ = sink
            .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                code: CLOSE_TOO_MANY,
                reason: "too many connections".into(),
            })))
            .await;
        return;
    };
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(OUTBOUND);
    let ready = json!({"type": "ready", "user_id": principal.user_id()}).to_string();
    if sink.send(Message::Text(ready.into())).await.is_err() {
        return;
    }
    // The connection lives as long as the credential that opened it: logout, a revoked
    // session or key, a password change elsewhere, disabling or a role change end it.
    let ended = state.accounts.credential_ended(&principal);
    tokio::pin!(ended);
    // The writer: frames from subscriptions and replies, plus heartbeats.
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                frame = out_rx.recv() => match frame {
                    Some(frame) => if !send_within(&mut sink, frame).await { break },
                    None => break,
                },
                _ = ping.tick() => if !send_within(&mut sink, Message::Ping(Vec::new().into())).await { break },
            }
        }
        let _ = sink.close().await;
    });
    let mut subscriptions = Subscriptions::default();
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(PING_EVERY * 3, stream.next()) => next,
            reason = &mut ended => {
                subscriptions.abort_all();
                subscriptions = Subscriptions::default();
                let _ = out_tx
                    .send(Message::Text(error_frame(None, "unauthorized", &reason).into()))
                    .await;
                let _ = out_tx
                    .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                        code: CLOSE_CREDENTIAL_ENDED,
                        reason: "credential ended".into(),
                    })))
                    .await;
                break;
            }
        };
        let frame = match next {
            Err(_) => break,
            Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(frame))) => frame,
        };
        let text = match frame {
            Message::Text(t) => t,
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) | Message::Binary(_) => continue,
        };
        let reply = handle(&state, &principal, &text, &out_tx, &mut subscriptions).await;
        if let Some(reply) = reply {
            if out_tx.send(Message::Text(reply.into())).await.is_err() {
                break;
            }
        }
        subscriptions.runs.retain(|_, task| !task.is_finished());
    }
    subscriptions.abort_all();
    drop(out_tx);
    let _ = writer.await;
}

/// A client that takes this long to accept one frame is gone or not reading: it is dropped, so
/// its subscriptions stop and release their runs.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

async fn send_within(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    frame: Message,
) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, sink.send(frame)).await,
        Ok(Ok(()))
    )
}

async fn authenticate(
    state: &AppState,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    token: Option<String>,
) -> Result<Principal, String> {
    let token = match token {
        Some(t) => t,
        None => {
            let first = tokio::time::timeout(AUTH_TIMEOUT, stream.next())
                .await
                .map_err(|_| {
                    "authenticate within 10 s with {\"type\":\"auth\",\"token\":…}".to_owned()
                })?;
            let Some(Ok(Message::Text(text))) = first else {
                return Err("the first frame must be {\"type\":\"auth\",\"token\":…}".into());
            };
            match serde_json::from_str::<ClientFrame>(&text) {
                Ok(ClientFrame::Auth { token }) => token,
                _ => return Err("the first frame must be {\"type\":\"auth\",\"token\":…}".into()),
            }
        }
    };
    // Any credential may open the socket; each frame is checked against its own area.
    state
        .accounts
        .authenticate(&token)
        .await
        .map_err(|e| e.to_string())
}

/// The area a frame acts in and whether it only reads (what an API key needs for it).
fn frame_area(frame: &ClientFrame) -> Option<(Option<&str>, Area, bool)> {
    use ClientFrame as F;
    match frame {
        F::Auth { .. } | F::Ping | F::Unsubscribe { .. } | F::UnwatchDocuments { .. } => None,
        F::Send { id, .. }
        | F::Regenerate { id, .. }
        | F::Stop { id, .. }
        | F::Approve { id, .. } => Some((id.as_deref(), Area::Chat, false)),
        F::Subscribe { id, .. } | F::WatchMemories { id } => {
            Some((id.as_deref(), Area::Chat, true))
        }
        F::WatchDocuments { id } => Some((id.as_deref(), Area::Knowledge, true)),
    }
}

/// Handles one client frame; returns the direct reply, if any.
async fn handle(
    state: &AppState,
    principal: &Principal,
    text: &str,
    out: &mpsc::Sender<Message>,
    subscriptions: &mut Subscriptions,
) -> Option<String> {
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => return Some(error_frame(None, "invalid_frame", &e.to_string())),
    };
    if let Some((id, area, reading)) = frame_area(&frame) {
        if let Err(e) = principal.may(area, reading) {
            return Some(core_error_frame(id, &e));
        }
    }
    let ack = |id: &Option<String>, extra: Value| {
        let mut v = json!({"type": "ack", "id": id});
        if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
            obj.extend(more);
        }
        v.to_string()
    };
    match frame {
        ClientFrame::Auth { .. } => {
            Some(error_frame(None, "invalid_frame", "already authenticated"))
        }
        ClientFrame::Ping => Some(json!({"type": "pong"}).to_string()),
        ClientFrame::Send {
            id,
            conversation_id,
            message,
        } => match state.chat.send(principal, conversation_id, message).await {
            Ok((started, live)) => {
                subscribe(
                    &mut subscriptions.runs,
                    started.run_id,
                    live.subscribe(0),
                    out,
                );
                Some(ack(
                    &id,
                    json!({"run_id": started.run_id, "message_id": started.message_id,
                        "user_message_id": started.user_message_id}),
                ))
            }
            Err(e) => Some(core_error_frame(id.as_deref(), &e)),
        },
        ClientFrame::Regenerate {
            id,
            conversation_id,
            message_id,
            model,
        } => {
            let req = RegenerateRequest { model, tools: None };
            match state
                .chat
                .regenerate(principal, conversation_id, message_id, req)
                .await
            {
                Ok((started, live)) => {
                    subscribe(
                        &mut subscriptions.runs,
                        started.run_id,
                        live.subscribe(0),
                        out,
                    );
                    Some(ack(
                        &id,
                        json!({"run_id": started.run_id, "message_id": started.message_id}),
                    ))
                }
                Err(e) => Some(core_error_frame(id.as_deref(), &e)),
            }
        }
        ClientFrame::Subscribe { id, run_id, after } => {
            match state.chat.events(principal, None, run_id, after).await {
                Ok(events) => {
                    let _ = out
                        .send(Message::Text(ack(&id, json!({"run_id": run_id})).into()))
                        .await;
                    subscribe(&mut subscriptions.runs, run_id, events, out);
                    None
                }
                Err(e) => Some(core_error_frame(id.as_deref(), &e)),
            }
        }
        ClientFrame::Unsubscribe { id, run_id } => {
            if let Some(task) = subscriptions.runs.remove(&run_id) {
                task.abort();
            }
            Some(ack(&id, json!({"run_id": run_id})))
        }
        ClientFrame::WatchMemories { id } => {
            let task = forward_user_events(
                state.memories.subscribe(),
                principal.user_id(),
                "memory",
                "memories_missed",
                |e: &hearth_core::memory::MemoryEvent| e.user_id,
                out,
            );
            if let Some(old) = subscriptions.memories.replace(task) {
                old.abort();
            }
            Some(ack(&id, json!({"watching": "memories"})))
        }
        ClientFrame::WatchDocuments { id } => {
            let task = forward_user_events(
                state.knowledge.subscribe(),
                principal.user_id(),
                "document",
                "documents_missed",
                |e: &hearth_core::knowledge::DocumentEvent| e.user_id,
                out,
            );
            if let Some(old) = subscriptions.documents.replace(task) {
                old.abort();
            }
            Some(ack(&id, json!({"watching": "documents"})))
        }
        ClientFrame::UnwatchDocuments { id } => {
            if let Some(task) = subscriptions.documents.take() {
                task.abort();
            }
            Some(ack(&id, json!({"watching": null})))
        }
        ClientFrame::Stop { id, run_id } => match state.chat.stop(principal, run_id).await {
            Ok(status) => Some(ack(&id, json!({"run_id": run_id, "status": status}))),
            Err(e) => Some(core_error_frame(id.as_deref(), &e)),
        },
        ClientFrame::Approve {
            id,
            run_id,
            call_id,
            approve,
        } => {
            match state
                .chat
                .approve(principal, run_id, &call_id, approve)
                .await
            {
                Ok(()) => Some(ack(&id, json!({"run_id": run_id, "call_id": call_id}))),
                Err(e) => Some(core_error_frame(id.as_deref(), &e)),
            }
        }
    }
}

/// Forwards a run's events to the socket until the run ends (replacing an earlier subscription).
fn subscribe(
    subscriptions: &mut HashMap<RunId, JoinHandle<()>>,
    run_id: RunId,
    events: impl futures_util::Stream<Item = std::sync::Arc<hearth_core::chat::runs::Published>>
        + Send
        + 'static,
    out: &mpsc::Sender<Message>,
) {
    let out = out.clone();
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(p) = events.next().await {
            let frame = format!(
                r#"{{"type":"event","run_id":"{run_id}","event":{}}}"#,
                p.json
            );
            if out.send(Message::Text(frame.into())).await.is_err() {
                break;
            }
        }
    });
    if let Some(old) = subscriptions.insert(run_id, task) {
        old.abort();
    }
}

/// Forwards a user's events from a service's broadcast as frames of type `kind` (the event's
/// fields inlined). A client too slow to keep up misses events and gets a `missed` frame
/// saying how many (it can list again); it never holds up the service.
fn forward_user_events<E: Clone + serde::Serialize + Send + 'static>(
    mut events: tokio::sync::broadcast::Receiver<E>,
    user: hearth_core::ids::UserId,
    kind: &'static str,
    missed: &'static str,
    owner: fn(&E) -> hearth_core::ids::UserId,
    out: &mpsc::Sender<Message>,
) -> JoinHandle<()> {
    let out = out.clone();
    tokio::spawn(async move {
        loop {
            let frame = match events.recv().await {
                Ok(event) if owner(&event) == user => {
                    let mut frame = json!({"type": kind});
                    if let (Some(obj), Ok(Value::Object(body))) =
                        (frame.as_object_mut(), serde_json::to_value(&event))
                    {
                        obj.extend(body);
                    }
                    frame.to_string()
                }
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    json!({"type": missed, "missed": n}).to_string()
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            if out.send(Message::Text(frame.into())).await.is_err() {
                break;
            }
        }
    })
}
