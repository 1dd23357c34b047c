//! Users, sessions, refresh tokens, API keys and invites.

use crate::ids::{ApiKeyId, InviteId, RefreshTokenId, SessionId, UserId};
use crate::{
    on_pool, on_writer, ApiKey, CredentialOwner, Invite, NewApiKey, NewInvite, NewRefreshToken,
    NewUser, NewUserRole, RefreshToken, Result, Session, Store, StoreError, Timestamp, User,
    UserPatch,
};

impl Store {
    /// Inserts a user. A duplicate email is a [`StoreError::Conflict`].
    pub async fn create_user(&self, new: NewUser) -> Result<User> {
        let user = self.insert_user(new, None).await?;
        user.ok_or_else(|| StoreError::Conflict("invite".into()))
    }

    /// Inserts a user and claims the invite for them, in one transaction. `None` when the
    /// invite was used by someone else first (nothing is inserted then).
    pub async fn create_invited_user(
        &self,
        new: NewUser,
        invite: InviteId,
    ) -> Result<Option<User>> {
        self.insert_user(new, Some(invite)).await
    }

    async fn insert_user(&self, new: NewUser, invite: Option<InviteId>) -> Result<Option<User>> {
        let id = UserId::new();
        let now = Timestamp::now();
        let role_sql = match &new.role {
            NewUserRole::Exact(_) => "$5",
            NewUserRole::AdminIfFirst => {
                "CASE WHEN EXISTS (SELECT 1 FROM users) THEN 'user' ELSE 'admin' END"
            }
        };
        let sql = format!(
            "INSERT INTO users (id, email, name, password_hash, created_at, updated_at, disabled, role) \
             SELECT $1, $2, $3, $4, $6, $6, FALSE, {role_sql} RETURNING *"
        );
        let exact = match new.role {
            NewUserRole::Exact(role) => role,
            NewUserRole::AdminIfFirst => String::new(),
        };
        let lock = self.users_lock();
        let user = on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(lock).execute(&mut *tx).await?;
            let user = sqlx::query_as::<_, User>(&sql)
                .bind(id)
                .bind(&new.email)
                .bind(&new.name)
                .bind(&new.password_hash)
                .bind(&exact)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            let claimed = match invite {
                None => true,
                Some(invite) => {
                    sqlx::query("UPDATE invites SET used_at = $2, used_by = $3 WHERE id = $1 AND used_at IS NULL")
                        .bind(invite)
                        .bind(now)
                        .bind(user.id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        == 1
                }
            };
            if claimed {
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Some(user))
            } else {
                tx.rollback().await?;
                Ok(None)
            }
        })?;
        Ok(user)
    }

    /// The user with this id, or [`StoreError::NotFound`].
    pub async fn get_user(&self, id: UserId) -> Result<User> {
        self.find_user(id).await?.ok_or(StoreError::NotFound)
    }

    /// The user with this id, if any.
    pub async fn find_user(&self, id: UserId) -> Result<Option<User>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, User>("SELECT * FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// The user with this (already normalised) email, if any.
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, User>("SELECT * FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Every user, oldest first.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, User>("SELECT * FROM users ORDER BY created_at, id")
                .fetch_all(pool)
                .await
        })?)
    }

    /// How many users exist.
    pub async fn count_users(&self) -> Result<i64> {
        let (n,): (i64,) = on_pool!(self, |pool| sqlx::query_as("SELECT count(*) FROM users")
            .fetch_one(pool)
            .await)?;
        Ok(n)
    }

    /// How many enabled admins exist.
    pub async fn count_active_admins(&self) -> Result<i64> {
        let (n,): (i64,) = on_pool!(self, |pool| {
            sqlx::query_as("SELECT count(*) FROM users WHERE role = 'admin' AND disabled = FALSE")
                .fetch_one(pool)
                .await
        })?;
        Ok(n)
    }

    /// Applies the fields set in `patch` and returns the updated user. Refuses, with
    /// `StoreError::Conflict("last_admin")`, a change that would take the number of enabled
    /// admins from one to none; the
    /// check and the update are one transaction so two admins cannot demote each other at once.
    pub async fn update_user(&self, id: UserId, patch: UserPatch) -> Result<User> {
        let lock = self.users_lock();
        let user = on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(lock).execute(&mut *tx).await?;
            let count_admins =
                "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = FALSE";
            let (before,): (i64,) = sqlx::query_as(count_admins).fetch_one(&mut *tx).await?;
            let user = sqlx::query_as::<_, User>(
                "UPDATE users SET name = COALESCE($2, name), role = COALESCE($3, role), \
                 disabled = COALESCE($4, disabled), updated_at = $5 WHERE id = $1 RETURNING *",
            )
            .bind(id)
            .bind(&patch.name)
            .bind(&patch.role)
            .bind(patch.disabled)
            .bind(Timestamp::now())
            .fetch_optional(&mut *tx)
            .await?;
            let (after,): (i64,) = sqlx::query_as(count_admins).fetch_one(&mut *tx).await?;
            if before > 0 && after == 0 {
                tx.rollback().await?;
                return Err(StoreError::Conflict("last_admin".into()));
            }
            tx.commit().await?;
            Ok::<_, StoreError>(user)
        })?;
        user.ok_or(StoreError::NotFound)
    }

    /// Replaces a user's password hash.
    pub async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<()> {
        let done = on_writer!(self, |pool| {
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(password_hash)
                .bind(Timestamp::now())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Starts a session for a user.
    pub async fn create_session(&self, user_id: UserId) -> Result<Session> {
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Session>(
                "INSERT INTO sessions (id, user_id, created_at) VALUES ($1, $2, $3) RETURNING *",
            )
            .bind(SessionId::new())
            .bind(user_id)
            .bind(Timestamp::now())
            .fetch_one(pool)
            .await
        })?)
    }

    /// The session with this id, if any.
    pub async fn find_session(&self, id: SessionId) -> Result<Option<Session>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Session>("SELECT * FROM sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Revokes a session (and so every refresh token of its family). Returns whether it was live.
    pub async fn revoke_session(&self, id: SessionId) -> Result<bool> {
        let done = on_writer!(self, |pool| {
            sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(Timestamp::now())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// Revokes every live session of a user except `keep`. Returns how many were revoked.
    pub async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
    ) -> Result<u64> {
        let keep = keep.map(|k| k.to_string()).unwrap_or_default();
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL AND id <> $3",
            )
            .bind(user_id)
            .bind(Timestamp::now())
            .bind(&keep)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(done)
    }

    /// Stores a refresh token (by hash).
    pub async fn create_refresh_token(&self, new: NewRefreshToken) -> Result<RefreshToken> {
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, RefreshToken>(
                "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING *",
            )
            .bind(RefreshTokenId::new())
            .bind(new.session_id)
            .bind(&new.token_hash)
            .bind(Timestamp::now())
            .bind(new.expires_at)
            .fetch_one(pool)
            .await
        })?)
    }

    /// The refresh token with this hash, if any.
    pub async fn find_refresh_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshToken>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, RefreshToken>("SELECT * FROM refresh_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Marks `used` used and stores its successor, in one transaction. Returns false (and
    /// stores nothing) when `used` had been used already.
    pub async fn rotate_refresh_token(
        &self,
        used: RefreshTokenId,
        next: NewRefreshToken,
    ) -> Result<bool> {
        let now = Timestamp::now();
        let rotated = on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let won = sqlx::query(
                "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
            )
            .bind(used)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !won {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(RefreshTokenId::new())
            .bind(next.session_id)
            .bind(&next.token_hash)
            .bind(now)
            .bind(next.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        })?;
        Ok(rotated)
    }

    /// Stores an API key (by hash).
    pub async fn create_api_key(&self, new: NewApiKey) -> Result<ApiKey> {
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, ApiKey>(
                "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at, expires_at, scopes) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
            )
            .bind(ApiKeyId::new())
            .bind(new.user_id)
            .bind(&new.name)
            .bind(&new.prefix)
            .bind(&new.key_hash)
            .bind(Timestamp::now())
            .bind(new.expires_at)
            .bind(&new.scopes)
            .fetch_one(pool)
            .await
        })?)
    }

    /// A user's API keys, newest first.
    pub async fn list_api_keys(&self, user_id: UserId) -> Result<Vec<ApiKey>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, ApiKey>(
                "SELECT * FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await
        })?)
    }

    /// The API key with this id, if any (whoever owns it: the access policy decides).
    pub async fn find_api_key(&self, id: ApiKeyId) -> Result<Option<ApiKey>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, ApiKey>("SELECT * FROM api_keys WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// The API key with this hash, if any.
    pub async fn find_api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, ApiKey>("SELECT * FROM api_keys WHERE key_hash = $1")
                .bind(key_hash)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// What authenticating with an API key needs, in one read: the key and its owner.
    pub async fn find_api_key_auth(&self, key_hash: &str) -> Result<Option<CredentialOwner>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, CredentialOwner>(
                "SELECT k.id AS credential_id, k.user_id, k.expires_at, k.last_used_at, CAST(NULL AS BIGINT) AS revoked_at, \
                 u.email, u.role, u.disabled, k.scopes FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1",
            )
            .bind(key_hash)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// [`Store::find_api_key_auth`] by the key's id: what re-checking a connection opened with
    /// the key needs.
    pub async fn find_api_key_auth_by_id(&self, id: ApiKeyId) -> Result<Option<CredentialOwner>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, CredentialOwner>(
                "SELECT k.id AS credential_id, k.user_id, k.expires_at, k.last_used_at, CAST(NULL AS BIGINT) AS revoked_at, \
                 u.email, u.role, u.disabled, k.scopes FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// What authenticating with an access token needs, in one read: the session and its user.
    pub async fn find_session_auth(&self, id: SessionId) -> Result<Option<CredentialOwner>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, CredentialOwner>(
                "SELECT s.id AS credential_id, s.user_id, CAST(NULL AS BIGINT) AS expires_at, CAST(NULL AS BIGINT) AS last_used_at, s.revoked_at, \
                 u.email, u.role, u.disabled, CAST(NULL AS TEXT) AS scopes FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Records that a key was just used.
    pub async fn touch_api_key(&self, id: ApiKeyId, at: Timestamp) -> Result<()> {
        on_writer!(self, |pool| {
            sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                .bind(id)
                .bind(at)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Deletes an API key.
    /// Deletes every API key of `user`; returns how many there were.
    pub async fn delete_user_api_keys(&self, user: UserId) -> Result<u64> {
        Ok(on_writer!(self, |pool| {
            sqlx::query("DELETE FROM api_keys WHERE user_id = $1")
                .bind(user)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?)
    }

    pub async fn delete_api_key(&self, id: ApiKeyId) -> Result<()> {
        let done = on_writer!(self, |pool| {
            sqlx::query("DELETE FROM api_keys WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Stores an invitation (by hash).
    pub async fn create_invite(&self, new: NewInvite) -> Result<Invite> {
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, Invite>(
                "INSERT INTO invites (id, token_hash, email, created_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            )
            .bind(InviteId::new())
            .bind(&new.token_hash)
            .bind(&new.email)
            .bind(new.created_by)
            .bind(Timestamp::now())
            .bind(new.expires_at)
            .fetch_one(pool)
            .await
        })?)
    }

    /// The invitation with this hash, if any.
    pub async fn find_invite_by_hash(&self, token_hash: &str) -> Result<Option<Invite>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as::<_, Invite>("SELECT * FROM invites WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Deletes a user and, by cascade, everything they own.
    pub async fn delete_user(&self, id: UserId) -> Result<()> {
        let done = on_writer!(self, |pool| sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
