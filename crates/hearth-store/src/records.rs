//! Rows as the store reads and writes them, paired `NewX` / `X`.

use crate::ids::{ApiKeyId, InviteId, RefreshTokenId, SessionId, UserId};
use crate::time::Timestamp;

/// A user account as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    /// `admin` or `user`; the core parses it.
    pub role: String,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// How the role of a new user is chosen.
#[derive(Clone, Debug)]
pub enum NewUserRole {
    /// Exactly this role (`admin` or `user`).
    Exact(String),
    /// `admin` when there is no user yet, otherwise `user`; decided atomically with the insert.
    AdminIfFirst,
}

/// A user to insert.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: NewUserRole,
}

/// Fields an admin may change on a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub name: Option<String>,
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

/// A sign-in session: the family of refresh tokens born from one login.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A refresh token as stored: only its hash.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RefreshToken {
    pub id: RefreshTokenId,
    pub session_id: SessionId,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// A refresh token to insert.
#[derive(Clone, Debug)]
pub struct NewRefreshToken {
    pub session_id: SessionId,
    pub token_hash: String,
    pub expires_at: Timestamp,
}

/// An API key as stored: only its hash and a display prefix.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// Space-separated scopes; the accounts service parses them.
    pub scopes: String,
}

/// An API key to insert.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub expires_at: Option<Timestamp>,
    pub scopes: String,
}

/// An invitation to register, stored by hash.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Invite {
    pub id: InviteId,
    pub token_hash: String,
    pub email: Option<String>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub used_by: Option<UserId>,
}

/// An invitation to insert.
#[derive(Clone, Debug)]
pub struct NewInvite {
    pub token_hash: String,
    pub email: Option<String>,
    pub created_by: UserId,
    pub expires_at: Timestamp,
}

/// A credential (API key or session) with its owner, read in one query to authenticate.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CredentialOwner {
    /// The key's or session's id, as text.
    pub credential_id: String,
    pub user_id: UserId,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub email: String,
    pub role: String,
    pub disabled: bool,
    /// An API key's scopes (space-separated); `None` for a session.
    pub scopes: Option<String>,
}
