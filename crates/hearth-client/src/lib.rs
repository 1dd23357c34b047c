//! A typed client for Hearth's HTTP API, used by the integration tests, the CLI and (later)
//! remote agents. It knows the wire shapes from `hearth_core::api` and nothing of the server's
//! internals.

use hearth_core::api::{
    ApiKey, AuthResponse, AuthStatus, ChangePasswordRequest, CreateApiKeyRequest,
    CreateInviteRequest, CreateUserRequest, CreatedApiKey, CreatedInvite, ErrorBody, LoginRequest,
    RefreshRequest, RegisterRequest, ResetPasswordRequest, UpdateUserRequest, User,
};
use hearth_core::ids::{ApiKeyId, UserId};
pub use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

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
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Transport(e) => e.status(),
        }
    }

    /// The error code, when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            ClientError::Transport(_) => None,
        }
    }

    /// The field at fault, when the server named one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ClientError::Api { field, .. } => field.as_deref(),
            ClientError::Transport(_) => None,
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
        let req = ChangePasswordRequest {
            current_password: current.into(),
            new_password: new.into(),
        };
        self.send_empty(Method::POST, "/api/v1/me/password", Some(&req))
            .await
    }

    /// `GET /api/v1/api-keys`.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.send(Method::GET, "/api/v1/api-keys", None::<&()>)
            .await
    }

    /// `POST /api/v1/api-keys`.
    pub async fn create_api_key(
        &self,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<CreatedApiKey> {
        let req = CreateApiKeyRequest {
            name: name.into(),
            expires_in_days,
        };
        self.send(Method::POST, "/api/v1/api-keys", Some(&req))
            .await
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
