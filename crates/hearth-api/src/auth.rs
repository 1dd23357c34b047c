//! Accounts: sign-in, users, API keys and invites, roles and key scopes, and the error body.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::{ApiKeyId, UserId};

/// `Debug` that shows which secret fields exist without their values, so a stray `{:?}` or
/// `#[instrument]` cannot log a password or token.
macro_rules! redacted_debug {
    ($ty:ident { $($shown:ident),* ; $($hidden:ident),* }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($shown), &self.$shown))*
                    $(.field(stringify!($hidden), &"<redacted>"))*
                    .finish()
            }
        }
    };
}

/// How new accounts may be created once the first (admin) account exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Anyone may register.
    Open,
    /// Registration needs an invite token made by an admin.
    #[default]
    Invite,
    /// Only admins create accounts.
    Closed,
}

/// What a client needs to know before signing in.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuthStatus {
    /// True until the first account (the admin) exists.
    pub needs_setup: bool,
    /// The registration mode.
    pub registration: Registration,
}

/// `POST /api/v1/auth/register`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(
        max_length = 254,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{1,64}@[^.@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+(\.[^.@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)+[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub email: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[serde(default)]
    #[schema(
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?)?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    /// Required when registration is `invite`.
    #[serde(default)]
    pub invite_token: Option<String>,
}

/// `POST /api/v1/auth/login`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(
        max_length = 254,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{1,64}@[^.@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+(\.[^.@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)+[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub email: String,
    #[schema(min_length = 1, max_length = 128)]
    pub password: String,
}

/// `POST /api/v1/auth/refresh` and `/logout`. The token may come from the cookie instead.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// A user as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    #[schema(value_type = String, format = Uuid)]
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// Tokens from register, login and refresh.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthResponse {
    /// Short-lived HS256 JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Long-lived, single-use token to get a new pair. Left out when the refresh token travels
    /// in the httpOnly cookie (browser refreshes), so page scripts never see it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Always `Bearer`.
    pub token_type: String,
    pub user: User,
}

/// `POST /api/v1/me/password`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(max_length = 128)]
    pub current_password: String,
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
    /// Also delete every API key of the account (a leaked key outlives a password otherwise).
    #[serde(default)]
    pub revoke_api_keys: bool,
}

/// An API key as listed (never the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    #[schema(value_type = String, format = Uuid)]
    pub id: ApiKeyId,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// When the key was last used (written at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// What the key may do.
    pub scopes: Vec<KeyScope>,
}

/// `POST /api/v1/api-keys`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: String,
    /// Days until the key expires; none means it does not expire.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
    /// What the key may do: at least one; `admin` only for admins.
    #[schema(min_items = 1)]
    pub scopes: Vec<KeyScope>,
    /// The caller's password, asked again to create a key.
    #[schema(max_length = 128)]
    pub password: String,
}

/// A new API key: the secret is shown this once.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    pub key: String,
    pub api_key: ApiKey,
}

/// `POST /api/v1/admin/users`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(
        max_length = 254,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{1,64}@[^.@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+(\.[^.@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)+[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub email: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[serde(default)]
    #[schema(
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*([^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?)?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
}

/// `PATCH /api/v1/admin/users/{id}`: fields left out stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// `POST /api/v1/admin/users/{id}/password`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
    /// Also delete every API key of the account.
    #[serde(default)]
    pub revoke_api_keys: bool,
}

/// `POST /api/v1/admin/invites`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// When set, only this email may use the invite.
    #[serde(default)]
    #[schema(
        max_length = 254,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]{1,64}@[^.@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+(\.[^.@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)+[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub email: Option<String>,
}

/// A new invite: the token is shown this once.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedInvite {
    pub token: String,
    pub email: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// The body of every error response.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code, e.g. `invalid_input`.
    pub code: String,
    /// A human-readable message, safe to show.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request id, for 5xx errors, to find the cause in the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

redacted_debug!(RegisterRequest { email, name; password, invite_token });

redacted_debug!(LoginRequest { email; password });

redacted_debug!(RefreshRequest { ; refresh_token });

redacted_debug!(AuthResponse { expires_in, token_type, user; access_token, refresh_token });

redacted_debug!(ChangePasswordRequest { revoke_api_keys; current_password, new_password });

redacted_debug!(CreatedApiKey { api_key; key });
redacted_debug!(CreateApiKeyRequest { name, expires_in_days, scopes; password });

redacted_debug!(CreateUserRequest { email, name, role; password });

redacted_debug!(ResetPasswordRequest { revoke_api_keys; new_password });

redacted_debug!(CreatedInvite { email, expires_at; token });

/// A user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    /// Parses the stored form; anything unknown is the least privilege.
    pub fn from_stored(s: &str) -> Self {
        if s == "admin" {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// One thing an API key may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    /// Read (GET) conversations, knowledge bases, memories and models.
    Read,
    /// Conversations, messages, runs, memories and the OpenAI-compatible `/v1` API.
    Chat,
    /// Knowledge bases, documents and search.
    Knowledge,
    /// The admin API; only an admin's key can have it.
    Admin,
}

impl KeyScope {
    /// Every scope, in order.
    pub const ALL: [KeyScope; 4] = [
        KeyScope::Read,
        KeyScope::Chat,
        KeyScope::Knowledge,
        KeyScope::Admin,
    ];

    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Read => "read",
            KeyScope::Chat => "chat",
            KeyScope::Knowledge => "knowledge",
            KeyScope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`KeyScope`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyScopes(u8);

impl KeyScopes {
    /// Every scope: what a signed-in session has (its role still limits it).
    pub const ALL: KeyScopes = KeyScopes(0b1111);

    /// Whether `scope` is in the set.
    pub fn has(self, scope: KeyScope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The scopes, in order.
    pub fn to_vec(self) -> Vec<KeyScope> {
        KeyScope::ALL.into_iter().filter(|s| self.has(*s)).collect()
    }

    /// The stored form (space-separated).
    pub fn to_stored(self) -> String {
        self.to_vec()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Parses the stored form; unknown words grant nothing.
    pub fn from_stored(s: &str) -> Self {
        s.split_whitespace()
            .filter_map(|w| KeyScope::ALL.into_iter().find(|k| k.as_str() == w))
            .collect()
    }
}

impl FromIterator<KeyScope> for KeyScopes {
    fn from_iter<I: IntoIterator<Item = KeyScope>>(iter: I) -> Self {
        KeyScopes(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let req = RegisterRequest {
            email: "a@x.io".into(),
            password: "hunter2-hunter2".into(),
            name: None,
            invite_token: Some("hinv_secret".into()),
        };
        let shown = format!("{req:?}");
        assert!(
            shown.contains("a@x.io")
                && !shown.contains("hunter2")
                && !shown.contains("hinv_secret"),
            "{shown}"
        );
        let key = CreatedApiKey {
            key: "hk_supersecret".into(),
            api_key: ApiKey {
                id: ApiKeyId::new(),
                name: "k".into(),
                prefix: "hk_s".into(),
                created_at: chrono::Utc::now(),
                last_used_at: None,
                expires_at: None,
                scopes: vec![KeyScope::Read],
            },
        };
        assert!(!format!("{key:?}").contains("supersecret"));
        let create = CreateApiKeyRequest {
            name: "k".into(),
            expires_in_days: None,
            scopes: vec![KeyScope::Chat],
            password: "hunter2-hunter2".into(),
        };
        assert!(!format!("{create:?}").contains("hunter2"));
    }
}
