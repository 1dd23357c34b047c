//! A typed client for Hearth's HTTP API, used by the integration tests, the CLI and (later)
//! remote agents. It knows the wire shapes from `hearth-api` and nothing of the server's
//! internals.

use hearth_api::auth::{
    ApiKey, AuthResponse, AuthStatus, ChangePasswordRequest, CreateApiKeyRequest,
    CreateInviteRequest, CreateUserRequest, CreatedApiKey, CreatedInvite, ErrorBody, LoginRequest,
    RefreshRequest, RegisterRequest, ResetPasswordRequest, UpdateUserRequest, User,
};
use hearth_api::chat::{
    ApprovalRequest, Conversation, ConversationDetail, CreateConversationRequest, MessageView,
    RegenerateRequest, RunEvent, SendMessageRequest, UpdateConversationRequest,
};
use hearth_api::ids::{
    ApiKeyId, ConversationId, DocumentId, KnowledgeBaseId, MessageId, ModelId, ProviderId, RunId,
    UserId,
};
use hearth_api::knowledge::{
    CreateKnowledgeBase, DocumentView, KnowledgeBaseView, SearchRequest, SearchResults,
    UpdateKnowledgeBase, UploadResult,
};
use hearth_api::providers::{
    CreateProviderRequest, ModelView, ProviderView, UpdateModelRequest, UpdateProviderRequest,
    UserModel,
};
use hearth_api::usage::{Trace, TraceQuery};
use hearth_llm::sse::SseDecoder;
pub use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// One file of an upload.
#[derive(Debug)]
pub struct Upload {
    /// The file name the server sees (its extension picks the parser).
    pub name: String,
    pub content: UploadContent,
}

/// Where an uploaded file's bytes come from.
#[derive(Debug)]
pub enum UploadContent {
    Bytes(Vec<u8>),
    /// Streamed from disk.
    Path(std::path::PathBuf),
}

impl Upload {
    /// A file from bytes in memory.
    pub fn bytes(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.into(),
            content: UploadContent::Bytes(bytes.into()),
        }
    }

    /// A file streamed from `path`, named by its file name.
    pub fn path(path: impl Into<std::path::PathBuf>) -> Self {
        let path = path.into();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            name,
            content: UploadContent::Path(path),
        }
    }
}

/// What can go wrong calling the API.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{status}: {code}: {message}")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
        field: Option<String>,
    },
    /// The request did not complete, or the answer was not what the API promises.
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
    /// A local file to upload could not be read.
    #[error("reading a file to upload: {0}")]
    Io(#[from] std::io::Error),
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Transport(e) => e.status(),
            ClientError::Io(_) => None,
        }
    }

    /// The error code, when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            ClientError::Transport(_) | ClientError::Io(_) => None,
        }
    }

    /// The field at fault, when the server named one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ClientError::Api { field, .. } => field.as_deref(),
            ClientError::Transport(_) | ClientError::Io(_) => None,
        }
    }
}

/// Result of a client call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A client bound to one server and, optionally, one bearer credential.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: impl Into<String>) -> Self {
        let base = base_url.into().trim_end_matches('/').to_owned();
        Self {
            http: reqwest::Client::new(),
            base,
            token: None,
        }
    }

    /// The same client sending `Authorization: Bearer <token>` (an access token or an API key).
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request builder for `path`, with the bearer token when set.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let mut req = self.request(method, path);
        if let Some(body) = body {
            req = req.json(body);
        }
        let response = check(req.send().await?).await?;
        Ok(response.json().await?)
    }

    async fn send_empty(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<()> {
        let mut req = self.request(method, path);
        if let Some(body) = body {
            req = req.json(body);
        }
        check(req.send().await?).await?;
        Ok(())
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<serde_json::Value> {
        self.send(Method::GET, "/health", None::<&()>).await
    }

    /// `GET /ready`.
    pub async fn ready(&self) -> Result<serde_json::Value> {
        self.send(Method::GET, "/ready", None::<&()>).await
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> Result<String> {
        Ok(check(self.request(Method::GET, "/metrics").send().await?)
            .await?
            .text()
            .await?)
    }

    /// `GET /api/v1/auth/status`.
    pub async fn auth_status(&self) -> Result<AuthStatus> {
        self.send(Method::GET, "/api/v1/auth/status", None::<&()>)
            .await
    }

    /// `POST /api/v1/auth/register`.
    pub async fn register(&self, req: &RegisterRequest) -> Result<AuthResponse> {
        self.send(Method::POST, "/api/v1/auth/register", Some(req))
            .await
    }

    /// `POST /api/v1/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> Result<AuthResponse> {
        let req = LoginRequest {
            email: email.into(),
            password: password.into(),
        };
        self.send(Method::POST, "/api/v1/auth/login", Some(&req))
            .await
    }

    /// `POST /api/v1/auth/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> Result<AuthResponse> {
        let req = RefreshRequest {
            refresh_token: Some(refresh_token.into()),
        };
        self.send(Method::POST, "/api/v1/auth/refresh", Some(&req))
            .await
    }

    /// `POST /api/v1/auth/logout`.
    pub async fn logout(&self, refresh_token: Option<&str>) -> Result<()> {
        let req = RefreshRequest {
            refresh_token: refresh_token.map(str::to_owned),
        };
        self.send_empty(Method::POST, "/api/v1/auth/logout", Some(&req))
            .await
    }

    /// `GET /api/v1/me`.
    pub async fn me(&self) -> Result<User> {
        self.send(Method::GET, "/api/v1/me", None::<&()>).await
    }

    /// `POST /api/v1/me/password`.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<()> {
        self.change_password_with(&ChangePasswordRequest {
            current_password: current.into(),
            new_password: new.into(),
            revoke_api_keys: false,
        })
        .await
    }

    /// `POST /api/v1/me/password` with every option.
    pub async fn change_password_with(&self, req: &ChangePasswordRequest) -> Result<()> {
        self.send_empty(Method::POST, "/api/v1/me/password", Some(req))
            .await
    }

    /// `GET /api/v1/api-keys`.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.send(Method::GET, "/api/v1/api-keys", None::<&()>)
            .await
    }

    /// `POST /api/v1/api-keys`.
    pub async fn create_api_key(&self, req: &CreateApiKeyRequest) -> Result<CreatedApiKey> {
        self.send(Method::POST, "/api/v1/api-keys", Some(req)).await
    }

    /// `GET /api/v1/api-keys/{id}`.
    pub async fn get_api_key(&self, id: ApiKeyId) -> Result<ApiKey> {
        self.send(Method::GET, &format!("/api/v1/api-keys/{id}"), None::<&()>)
            .await
    }

    /// `DELETE /api/v1/api-keys/{id}`.
    pub async fn delete_api_key(&self, id: ApiKeyId) -> Result<()> {
        self.send_empty(
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            None::<&()>,
        )
        .await
    }

    /// `GET /api/v1/admin/users`.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        self.send(Method::GET, "/api/v1/admin/users", None::<&()>)
            .await
    }

    /// `POST /api/v1/admin/users`.
    pub async fn create_user(&self, req: &CreateUserRequest) -> Result<User> {
        self.send(Method::POST, "/api/v1/admin/users", Some(req))
            .await
    }

    /// `PATCH /api/v1/admin/users/{id}`.
    pub async fn update_user(&self, id: UserId, req: &UpdateUserRequest) -> Result<User> {
        self.send(
            Method::PATCH,
            &format!("/api/v1/admin/users/{id}"),
            Some(req),
        )
        .await
    }

    /// `POST /api/v1/admin/users/{id}/password`.
    pub async fn reset_password(&self, id: UserId, new_password: &str) -> Result<()> {
        let req = ResetPasswordRequest {
            new_password: new_password.into(),
            revoke_api_keys: false,
        };
        self.send_empty(
            Method::POST,
            &format!("/api/v1/admin/users/{id}/password"),
            Some(&req),
        )
        .await
    }

    /// `POST /api/v1/admin/invites`.
    pub async fn create_invite(&self, email: Option<&str>) -> Result<CreatedInvite> {
        let req = CreateInviteRequest {
            email: email.map(str::to_owned),
        };
        self.send(Method::POST, "/api/v1/admin/invites", Some(&req))
            .await
    }
}

/// Run events read from an SSE response.
pub type RunEvents = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<RunEvent>> + Send>>;

impl Client {
    /// `POST /api/v1/admin/providers`.
    pub async fn create_provider(&self, req: &CreateProviderRequest) -> Result<ProviderView> {
        self.send(Method::POST, "/api/v1/admin/providers", Some(req))
            .await
    }

    /// `GET /api/v1/admin/providers`.
    pub async fn list_providers(&self) -> Result<Vec<ProviderView>> {
        self.send(Method::GET, "/api/v1/admin/providers", None::<&()>)
            .await
    }

    /// `PATCH /api/v1/admin/providers/{id}`.
    pub async fn update_provider(
        &self,
        id: ProviderId,
        req: &UpdateProviderRequest,
    ) -> Result<ProviderView> {
        self.send(
            Method::PATCH,
            &format!("/api/v1/admin/providers/{id}"),
            Some(req),
        )
        .await
    }

    /// `DELETE /api/v1/admin/providers/{id}`.
    pub async fn delete_provider(&self, id: ProviderId) -> Result<()> {
        self.send_empty(
            Method::DELETE,
            &format!("/api/v1/admin/providers/{id}"),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/admin/providers/{id}/sync`.
    pub async fn sync_provider(&self, id: ProviderId) -> Result<Vec<ModelView>> {
        self.send(
            Method::POST,
            &format!("/api/v1/admin/providers/{id}/sync"),
            None::<&()>,
        )
        .await
    }

    /// `GET /api/v1/admin/models`.
    pub async fn admin_models(&self) -> Result<Vec<ModelView>> {
        self.send(Method::GET, "/api/v1/admin/models", None::<&()>)
            .await
    }

    /// `PATCH /api/v1/admin/models/{id}`.
    pub async fn update_model(&self, id: ModelId, req: &UpdateModelRequest) -> Result<ModelView> {
        self.send(
            Method::PATCH,
            &format!("/api/v1/admin/models/{id}"),
            Some(req),
        )
        .await
    }

    /// `GET /api/v1/admin/llm-calls`: model calls, newest first.
    pub async fn traces(&self, query: &TraceQuery) -> Result<Vec<Trace>> {
        let req = self
            .request(Method::GET, "/api/v1/admin/llm-calls")
            .query(query);
        Ok(check(req.send().await?).await?.json().await?)
    }

    /// `GET /api/v1/models`.
    pub async fn models(&self) -> Result<Vec<UserModel>> {
        self.send(Method::GET, "/api/v1/models", None::<&()>).await
    }

    /// `POST /api/v1/knowledge-bases`.
    pub async fn create_knowledge_base(
        &self,
        req: &CreateKnowledgeBase,
    ) -> Result<KnowledgeBaseView> {
        self.send(Method::POST, "/api/v1/knowledge-bases", Some(req))
            .await
    }

    /// `GET /api/v1/knowledge-bases`.
    pub async fn list_knowledge_bases(&self) -> Result<Vec<KnowledgeBaseView>> {
        self.send(Method::GET, "/api/v1/knowledge-bases", None::<&()>)
            .await
    }

    /// `GET /api/v1/knowledge-bases/{id}`.
    pub async fn get_knowledge_base(&self, id: KnowledgeBaseId) -> Result<KnowledgeBaseView> {
        self.send(
            Method::GET,
            &format!("/api/v1/knowledge-bases/{id}"),
            None::<&()>,
        )
        .await
    }

    /// `PATCH /api/v1/knowledge-bases/{id}`.
    pub async fn update_knowledge_base(
        &self,
        id: KnowledgeBaseId,
        req: &UpdateKnowledgeBase,
    ) -> Result<KnowledgeBaseView> {
        self.send(
            Method::PATCH,
            &format!("/api/v1/knowledge-bases/{id}"),
            Some(req),
        )
        .await
    }

    /// `DELETE /api/v1/knowledge-bases/{id}`.
    pub async fn delete_knowledge_base(&self, id: KnowledgeBaseId) -> Result<()> {
        self.send_empty(
            Method::DELETE,
            &format!("/api/v1/knowledge-bases/{id}"),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/knowledge-bases/{id}/documents`: a multipart upload; files on disk are
    /// streamed, not read into memory.
    pub async fn upload_documents(
        &self,
        id: KnowledgeBaseId,
        files: Vec<Upload>,
        metadata: Option<&serde_json::Value>,
    ) -> Result<UploadResult> {
        let mut form = reqwest::multipart::Form::new();
        for file in files {
            let part = match file.content {
                UploadContent::Bytes(bytes) => reqwest::multipart::Part::bytes(bytes),
                UploadContent::Path(path) => {
                    let handle = tokio::fs::File::open(&path).await?;
                    let len = handle.metadata().await?.len();
                    reqwest::multipart::Part::stream_with_length(handle, len)
                }
            };
            form = form.part("files", part.file_name(file.name));
        }
        if let Some(meta) = metadata {
            form = form.text("metadata", meta.to_string());
        }
        let req = self
            .request(
                Method::POST,
                &format!("/api/v1/knowledge-bases/{id}/documents"),
            )
            .multipart(form);
        Ok(check(req.send().await?).await?.json().await?)
    }

    /// `GET /api/v1/knowledge-bases/{id}/documents`.
    pub async fn documents(&self, id: KnowledgeBaseId) -> Result<Vec<DocumentView>> {
        self.send(
            Method::GET,
            &format!("/api/v1/knowledge-bases/{id}/documents"),
            None::<&()>,
        )
        .await
    }

    /// `GET /api/v1/knowledge-bases/{id}/documents/{doc}`.
    pub async fn document(&self, id: KnowledgeBaseId, doc: DocumentId) -> Result<DocumentView> {
        self.send(
            Method::GET,
            &format!("/api/v1/knowledge-bases/{id}/documents/{doc}"),
            None::<&()>,
        )
        .await
    }

    /// `DELETE /api/v1/knowledge-bases/{id}/documents/{doc}`.
    pub async fn delete_document(&self, id: KnowledgeBaseId, doc: DocumentId) -> Result<()> {
        self.send_empty(
            Method::DELETE,
            &format!("/api/v1/knowledge-bases/{id}/documents/{doc}"),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/knowledge-bases/{id}/documents/{doc}/retry`.
    pub async fn retry_document(
        &self,
        id: KnowledgeBaseId,
        doc: DocumentId,
    ) -> Result<DocumentView> {
        self.send(
            Method::POST,
            &format!("/api/v1/knowledge-bases/{id}/documents/{doc}/retry"),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/knowledge-bases/{id}/search`.
    pub async fn search(&self, id: KnowledgeBaseId, req: &SearchRequest) -> Result<SearchResults> {
        self.send(
            Method::POST,
            &format!("/api/v1/knowledge-bases/{id}/search"),
            Some(req),
        )
        .await
    }

    /// `POST /api/v1/conversations`.
    pub async fn create_conversation(
        &self,
        req: &CreateConversationRequest,
    ) -> Result<Conversation> {
        self.send(Method::POST, "/api/v1/conversations", Some(req))
            .await
    }

    /// `GET /api/v1/conversations?q=`.
    pub async fn list_conversations(&self, q: Option<&str>) -> Result<Vec<Conversation>> {
        let mut req = self.request(Method::GET, "/api/v1/conversations");
        if let Some(q) = q {
            req = req.query(&[("q", q)]);
        }
        Ok(check(req.send().await?).await?.json().await?)
    }

    /// `GET /api/v1/conversations/{id}`.
    pub async fn get_conversation(&self, id: ConversationId) -> Result<ConversationDetail> {
        self.send(
            Method::GET,
            &format!("/api/v1/conversations/{id}"),
            None::<&()>,
        )
        .await
    }

    /// `PATCH /api/v1/conversations/{id}`.
    pub async fn update_conversation(
        &self,
        id: ConversationId,
        req: &UpdateConversationRequest,
    ) -> Result<ConversationDetail> {
        self.send(
            Method::PATCH,
            &format!("/api/v1/conversations/{id}"),
            Some(req),
        )
        .await
    }

    /// `DELETE /api/v1/conversations/{id}`.
    pub async fn delete_conversation(&self, id: ConversationId) -> Result<()> {
        self.send_empty(
            Method::DELETE,
            &format!("/api/v1/conversations/{id}"),
            None::<&()>,
        )
        .await
    }

    /// `GET /api/v1/conversations/{id}/export?format=`: the export's text.
    pub async fn export_conversation(&self, id: ConversationId, format: &str) -> Result<String> {
        let req = self
            .request(Method::GET, &format!("/api/v1/conversations/{id}/export"))
            .query(&[("format", format)]);
        Ok(check(req.send().await?).await?.text().await?)
    }

    /// `POST /api/v1/conversations/{id}/messages`, waiting for the finished answer.
    pub async fn send_message(
        &self,
        id: ConversationId,
        req: &SendMessageRequest,
    ) -> Result<MessageView> {
        self.send(
            Method::POST,
            &format!("/api/v1/conversations/{id}/messages"),
            Some(req),
        )
        .await
    }

    /// `POST /api/v1/conversations/{id}/messages` with `Accept: text/event-stream`.
    pub async fn send_message_events(
        &self,
        id: ConversationId,
        req: &SendMessageRequest,
    ) -> Result<RunEvents> {
        let request = self
            .request(
                Method::POST,
                &format!("/api/v1/conversations/{id}/messages"),
            )
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(req);
        Ok(run_events(check(request.send().await?).await?))
    }

    /// `POST /api/v1/conversations/{id}/messages/{message_id}/regenerate`, waiting for the answer.
    pub async fn regenerate(
        &self,
        id: ConversationId,
        message_id: MessageId,
        req: &RegenerateRequest,
    ) -> Result<MessageView> {
        self.send(
            Method::POST,
            &format!("/api/v1/conversations/{id}/messages/{message_id}/regenerate"),
            Some(req),
        )
        .await
    }

    /// `GET /api/v1/conversations/{id}/runs/{run_id}/events?after=SEQ`.
    pub async fn run_events(
        &self,
        id: ConversationId,
        run_id: RunId,
        after: u64,
    ) -> Result<RunEvents> {
        let request = self
            .request(
                Method::GET,
                &format!("/api/v1/conversations/{id}/runs/{run_id}/events"),
            )
            .query(&[("after", after)]);
        Ok(run_events(check(request.send().await?).await?))
    }

    /// `POST /api/v1/runs/{run_id}/stop`.
    pub async fn stop_run(&self, run_id: RunId) -> Result<serde_json::Value> {
        self.send(
            Method::POST,
            &format!("/api/v1/runs/{run_id}/stop"),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/runs/{run_id}/approvals/{call_id}`.
    pub async fn approve(&self, run_id: RunId, call_id: &str, approve: bool) -> Result<()> {
        self.send_empty(
            Method::POST,
            &format!("/api/v1/runs/{run_id}/approvals/{call_id}"),
            Some(&ApprovalRequest { approve }),
        )
        .await
    }
}

/// Decodes an SSE response of run events (heartbeat comments are skipped).
fn run_events(response: reqwest::Response) -> RunEvents {
    use futures_util::StreamExt as _;
    let state = (
        response.bytes_stream().boxed(),
        SseDecoder::new(16 * 1024 * 1024),
        std::collections::VecDeque::<RunEvent>::new(),
    );
    Box::pin(futures_util::stream::unfold(
        Some(state),
        |state| async move {
            let (mut body, mut decoder, mut pending) = state?;
            loop {
                if let Some(event) = pending.pop_front() {
                    return Some((Ok(event), Some((body, decoder, pending))));
                }
                match body.next().await {
                    None => return None,
                    Some(Err(e)) => return Some((Err(ClientError::Transport(e)), None)),
                    Some(Ok(bytes)) => {
                        let Ok(events) = decoder.push(&bytes) else {
                            return None;
                        };
                        for e in events {
                            match serde_json::from_str::<RunEvent>(&e.data) {
                                Ok(ev) => pending.push_back(ev),
                                Err(_) => continue,
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// Turns an error status into [`ClientError::Api`] with the server's code and message.
pub async fn check(response: reqwest::Response) -> Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await?;
    Err(match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => ClientError::Api {
            status,
            code: body.error.code,
            message: body.error.message,
            field: body.error.field,
        },
        Err(_) => ClientError::Api {
            status,
            code: "unknown".into(),
            message: text,
            field: None,
        },
    })
}
