//! Accounts and sessions: registration, sign-in, token rotation, API keys, user administration.

use std::net::IpAddr;
use std::sync::Arc;

use hearth_store::ids::{ApiKeyId, UserId};
use hearth_store::{
    CredentialOwner, NewApiKey, NewInvite, NewRefreshToken, NewUser, NewUserRole, Store,
    StoreError, Timestamp, UserPatch,
};
use serde::{Deserialize, Serialize};

use crate::access::{self, Admin, Credential, KeyScope, KeyScopes, Principal, Role};
use crate::api::{self, Registration};
use crate::error::{CoreError, Result};
use crate::input::{self, Email, Password};
use crate::limits::{LoginLimiter, LoginLimits};
use crate::passwords::{Argon2Cost, PasswordHasher};
use crate::tokens::{self, JwtKeys, SecretKind};

/// Settings of accounts and sessions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 signing secret (32+ bytes); unset means one generated into `<data_dir>/jwt-secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<crate::Secret>,
    /// Who may register once the admin exists: `open`, `invite` or `closed`.
    pub registration: Registration,
    /// Lifetime of access tokens, in seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of refresh tokens, in seconds.
    pub refresh_token_ttl_secs: u64,
    /// Lifetime of invites, in seconds.
    pub invite_ttl_secs: u64,
    /// Password hashing cost.
    pub argon2: Argon2Cost,
    /// Sign-in throttling.
    pub login: LoginLimits,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            registration: Registration::Invite,
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 7 * 24 * 3600,
            invite_ttl_secs: 7 * 24 * 3600,
            argon2: Argon2Cost::default(),
            login: LoginLimits::default(),
        }
    }
}

const NAME_MAX: usize = 100;
const KEY_NAME_MAX: usize = 100;
/// Characters of an API key kept in clear to recognise it in a list.
const KEY_PREFIX_CHARS: usize = 10;
/// `last_used_at` of an API key is written at most this often, to keep reads read-only.
const KEY_TOUCH_EVERY_MS: i64 = 60_000;
/// How long a credential read from the store is trusted before it is read again. Every request
/// authenticates, and a store read is a hop to another thread that waits for a busy core, so a
/// stream's first token would wait for it. Changes made through this instance (revoking a key or
/// session, disabling a user, changing a role) clear the cache at once; another instance's
/// changes take effect within this time.
const CREDENTIAL_TTL: std::time::Duration = std::time::Duration::from_secs(2);
/// Cached credentials beyond this many are dropped all at once (a bound, not a working size).
const CREDENTIAL_CACHE_MAX: usize = 100_000;

/// The accounts service.
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    config: AuthConfig,
    hasher: PasswordHasher,
    keys: JwtKeys,
    limiter: Arc<dyn LoginLimiter>,
    /// When this instance last wrote each key's `last_used_at`, so a burst of requests with one
    /// key costs one write, not one per request.
    key_touches: Arc<std::sync::Mutex<std::collections::HashMap<ApiKeyId, i64>>>,
    credentials: Arc<CredentialCache>,
    /// Users whose credentials this instance just changed (revoked, disabled, re-roled...), so
    /// open connections re-check theirs at once (see [`Accounts::credential_ended`]).
    revocations: tokio::sync::broadcast::Sender<UserId>,
}

/// How often an open connection re-checks its credential when nothing on this instance said
/// it changed: another instance (PostgreSQL) may have revoked it; that is seen within this
/// time plus [`CREDENTIAL_TTL`]. With SQLite there is one server, and only the admin CLI can
/// change credentials behind its back.
const RECHECK_SHARED: std::time::Duration = std::time::Duration::from_secs(2);
const RECHECK_EMBEDDED: std::time::Duration = std::time::Duration::from_secs(30);

/// Credentials recently read from the store, by API key hash or session id (see
/// [`CREDENTIAL_TTL`]). Only found credentials are kept: unknown keys always read the store.
#[derive(Default)]
struct CredentialCache {
    inner: std::sync::Mutex<CredentialCacheInner>,
}

#[derive(Default)]
struct CredentialCacheInner {
    entries: std::collections::HashMap<String, (std::time::Instant, CredentialOwner)>,
    /// Bumped by every clear, so a read that started before a revocation is not cached after it.
    generation: u64,
}

impl CredentialCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CredentialCacheInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, key: &str) -> Option<CredentialOwner> {
        let inner = self.lock();
        let (at, owner) = inner.entries.get(key)?;
        (at.elapsed() < CREDENTIAL_TTL).then(|| owner.clone())
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps `owner`, unless the cache was cleared since `generation` was taken.
    fn put(&self, generation: u64, key: String, owner: CredentialOwner) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() >= CREDENTIAL_CACHE_MAX {
            inner.entries.clear();
        }
        inner
            .entries
            .insert(key, (std::time::Instant::now(), owner));
    }

    /// Drops `user`'s cached credentials only (a revocation of theirs must not make every
    /// other user's next request read the store).
    fn forget_user(&self, user: UserId) {
        let mut inner = self.lock();
        inner.entries.retain(|_, (_, owner)| owner.user_id != user);
        inner.generation += 1;
    }
}

impl Accounts {
    /// Builds the service. `jwt_secret` signs access tokens.
    pub fn new(
        store: Store,
        config: AuthConfig,
        jwt_secret: &[u8],
        limiter: Arc<dyn LoginLimiter>,
    ) -> Result<Self> {
        Ok(Self {
            hasher: PasswordHasher::new(config.argon2)?,
            keys: JwtKeys::new(jwt_secret)?,
            store,
            config,
            limiter,
            key_touches: Arc::default(),
            credentials: Arc::default(),
            revocations: tokio::sync::broadcast::channel(256).0,
        })
    }

    /// Resolves when `principal`'s credential stops authenticating it as it did (session ended,
    /// key deleted or expired, user disabled, role changed), with the reason. Open WebSockets
    /// and SSE streams end on it: a change made on this instance is seen at once, one made
    /// elsewhere within a few seconds.
    pub fn credential_ended(
        &self,
        principal: &Principal,
    ) -> impl std::future::Future<Output = String> + Send + 'static {
        let this = self.clone();
        let principal = principal.clone();
        let mut changed = self.revocations.subscribe();
        let every = match self.store.backend() {
            hearth_store::Backend::Postgres => RECHECK_SHARED,
            hearth_store::Backend::Sqlite => RECHECK_EMBEDDED,
        };
        async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    user = changed.recv() => match user {
                        Ok(user) if user != principal.user_id() => continue,
                        // Missed messages may have named this user.
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await;
                        }
                    },
                    _ = tick.tick() => {}
                }
                match this.still_valid(&principal).await {
                    Ok(()) => {}
                    Err(CoreError::Unauthorized(reason)) => return reason,
                    Err(e) => {
                        tracing::warn!(error = %e, user.id = %principal.user_id(), "could not re-check a connection's credential");
                    }
                }
            }
        }
    }

    /// Whether `principal`'s credential still authenticates it with the same role.
    async fn still_valid(&self, principal: &Principal) -> Result<()> {
        let owner = match principal.credential() {
            Credential::Session(sid) => {
                let owner = self
                    .cached_credential(format!("s:{sid}"), || self.store.find_session_auth(sid))
                    .await?;
                match owner {
                    Some(o) if o.revoked_at.is_none() && o.user_id == principal.user_id() => o,
                    _ => return Err(CoreError::Unauthorized("session has ended".into())),
                }
            }
            Credential::ApiKey(id) => {
                let owner = self
                    .cached_credential(format!("ki:{id}"), || {
                        self.store.find_api_key_auth_by_id(id)
                    })
                    .await?
                    .ok_or_else(|| CoreError::Unauthorized("API key was revoked".into()))?;
                if owner.expires_at.is_some_and(|at| at <= Timestamp::now()) {
                    return Err(CoreError::Unauthorized("API key expired".into()));
                }
                owner
            }
        };
        if owner.disabled {
            return Err(CoreError::Unauthorized("this account is disabled".into()));
        }
        if Role::from_stored(&owner.role) != principal.role() {
            return Err(CoreError::Unauthorized(
                "this account's role changed; sign in again".into(),
            ));
        }
        Ok(())
    }

    /// Whether setup is needed, and the registration mode.
    pub async fn status(&self) -> Result<api::AuthStatus> {
        Ok(api::AuthStatus {
            needs_setup: self.store.count_users().await? == 0,
            registration: self.config.registration,
        })
    }

    /// Registers an account and signs it in. The first account becomes admin whatever the mode.
    pub async fn register(
        &self,
        req: api::RegisterRequest,
        ip: IpAddr,
    ) -> Result<api::AuthResponse> {
        let email = Email::parse("email", &req.email)?;
        let password = Password::parse("password", &req.password)?;
        let name = display_name(req.name.as_deref(), &email)?;
        self.throttle(ip, email.as_str())?;

        let first = self.store.count_users().await? == 0;
        let invite = match (first, self.config.registration) {
            (true, _) | (false, Registration::Open) => None,
            (false, Registration::Closed) => {
                return Err(CoreError::Forbidden("registration is closed".into()))
            }
            (false, Registration::Invite) => Some(
                self.usable_invite(req.invite_token.as_deref(), &email)
                    .await?,
            ),
        };
        let role = if first {
            NewUserRole::AdminIfFirst
        } else {
            NewUserRole::Exact(Role::User.as_str().into())
        };
        let new = self.new_user(&email, name, &password, role).await?;
        let user = match invite {
            None => self.store.create_user(new).await.map_err(email_conflict)?,
            Some(invite) => self
                .store
                .create_invited_user(new, invite)
                .await
                .map_err(email_conflict)?
                .ok_or_else(|| CoreError::invalid("invite_token", "has already been used"))?,
        };
        if first
            && user.role != Role::Admin.as_str()
            && self.config.registration != Registration::Open
        {
            // Another registration became the first account a moment before this one, so the
            // registration mode applies after all.
            self.store.delete_user(user.id).await?;
            return Err(CoreError::Conflict {
                field: None,
                message:
                    "the admin account was just created by someone else; ask them for an invite"
                        .into(),
            });
        }
        tracing::info!(user.id = %user.id, role = %user.role, "account registered");
        self.start_session(user).await
    }

    /// Signs in with email and password.
    pub async fn login(&self, req: api::LoginRequest, ip: IpAddr) -> Result<api::AuthResponse> {
        let account = req.email.trim().to_lowercase();
        if account.is_empty() {
            return Err(CoreError::invalid("email", "is required"));
        }
        // Bounded before it becomes a throttling key or a query parameter.
        if account.chars().count() > 254 {
            return Err(CoreError::invalid(
                "email",
                "must be at most 254 characters",
            ));
        }
        if req.password.is_empty() {
            return Err(CoreError::invalid("password", "is required"));
        }
        self.throttle(ip, &account)?;
        let user = self.store.find_user_by_email(&account).await?;
        let password = truncate_chars(&req.password, Password::MAX_CHARS);
        let ok = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        let user = match user {
            Some(user) if ok => user,
            _ => {
                self.limiter.failed(ip, &account);
                // No email in the log: people type passwords into the email field.
                tracing::info!(user.id = ?user.as_ref().map(|u| u.id), "sign-in failed");
                return Err(CoreError::Unauthorized("invalid email or password".into()));
            }
        };
        if user.disabled {
            return Err(CoreError::Forbidden("this account is disabled".into()));
        }
        self.limiter.succeeded(ip, &account);
        tracing::info!(user.id = %user.id, "signed in");
        self.start_session(user).await
    }

    /// Exchanges a refresh token for a new pair. A token used twice revokes its whole session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<api::AuthResponse> {
        let denied = || CoreError::Unauthorized("invalid refresh token".into());
        let token = self
            .store
            .find_refresh_token_by_hash(&tokens::hash_secret(refresh_token))
            .await?
            .ok_or_else(denied)?;
        let session = self
            .store
            .find_session(token.session_id)
            .await?
            .ok_or_else(denied)?;
        if session.revoked_at.is_some() {
            return Err(denied());
        }
        let replayed = || async {
            self.store.revoke_session(session.id).await?;
            self.forget_credentials(session.user_id);
            tracing::warn!(user.id = %session.user_id, session.id = %session.id, "refresh token replayed; session revoked");
            Err::<api::AuthResponse, _>(CoreError::Unauthorized(
                "refresh token was already used; the session has been revoked".into(),
            ))
        };
        if token.used_at.is_some() {
            return replayed().await;
        }
        if token.expires_at <= Timestamp::now() {
            return Err(CoreError::Unauthorized("refresh token expired".into()));
        }
        let user = self
            .store
            .find_user(session.user_id)
            .await?
            .ok_or_else(denied)?;
        if user.disabled {
            return Err(CoreError::Forbidden("this account is disabled".into()));
        }
        let (refresh_token, next) = self.refresh_token_for(session.id);
        if !self.store.rotate_refresh_token(token.id, next).await? {
            return replayed().await;
        }
        let access_token =
            self.keys
                .issue(user.id, session.id, self.config.access_token_ttl_secs)?;
        Ok(self.auth_response(access_token, refresh_token, &user))
    }

    /// Ends the caller's session and the session of `refresh_token`, when given and theirs.
    pub async fn logout(
        &self,
        principal: Option<&Principal>,
        refresh_token: Option<&str>,
    ) -> Result<()> {
        if let Some((session, user)) = principal.and_then(|p| Some((p.session()?, p.user_id()))) {
            self.store.revoke_session(session).await?;
            self.forget_credentials(user);
        }
        if let Some(raw) = refresh_token {
            if let Some(token) = self
                .store
                .find_refresh_token_by_hash(&tokens::hash_secret(raw))
                .await?
            {
                let session = self.store.find_session(token.session_id).await?;
                let allowed = match (principal, &session) {
                    (Some(p), Some(s)) => s.user_id == p.user_id(),
                    // Holding the refresh token is proof enough to end its own session.
                    (None, Some(_)) => true,
                    (_, None) => false,
                };
                if let (true, Some(s)) = (allowed, session) {
                    self.store.revoke_session(s.id).await?;
                    self.forget_credentials(s.user_id);
                }
            }
        }
        Ok(())
    }

    /// Who presents this bearer credential: an access token or an API key.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal> {
        if bearer.starts_with(SecretKind::ApiKey.prefix()) {
            return self.authenticate_api_key(bearer).await;
        }
        let claims = self.keys.verify(bearer)?;
        // One read at most: every request authenticates, so this is on the hot path of streaming.
        let owner = match self
            .cached_credential(format!("s:{}", claims.sid), || {
                self.store.find_session_auth(claims.sid)
            })
            .await?
        {
            Some(o) if o.revoked_at.is_none() && o.user_id == claims.sub => o,
            _ => return Err(CoreError::Unauthorized("session has ended".into())),
        };
        if owner.disabled {
            return Err(CoreError::Unauthorized("this account is disabled".into()));
        }
        Ok(Principal::new(
            owner.user_id,
            owner.email,
            Role::from_stored(&owner.role),
            Credential::Session(claims.sid),
        ))
    }

    async fn authenticate_api_key(&self, raw: &str) -> Result<Principal> {
        let denied = || CoreError::Unauthorized("invalid API key".into());
        let hash = tokens::hash_secret(raw);
        let key = self
            .cached_credential(format!("k:{hash}"), || self.store.find_api_key_auth(&hash))
            .await?
            .ok_or_else(denied)?;
        let key_id: ApiKeyId = key.credential_id.parse().map_err(|_| denied())?;
        let now = Timestamp::now();
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(CoreError::Unauthorized("API key expired".into()));
        }
        if key.disabled {
            return Err(CoreError::Unauthorized("this account is disabled".into()));
        }
        if key
            .last_used_at
            .is_none_or(|at| now.millis() - at.millis() > KEY_TOUCH_EVERY_MS)
            && self.claim_touch(key_id, now.millis())
        {
            self.store.touch_api_key(key_id, now).await?;
        }
        Ok(Principal::new(
            key.user_id,
            key.email,
            Role::from_stored(&key.role),
            Credential::ApiKey(key_id),
        )
        .with_scopes(KeyScopes::from_stored(
            key.scopes.as_deref().unwrap_or_default(),
        )))
    }

    /// The credential under `key`: from the cache while it is fresh, else from `read`.
    async fn cached_credential<F, Fut>(
        &self,
        key: String,
        read: F,
    ) -> Result<Option<CredentialOwner>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = hearth_store::Result<Option<CredentialOwner>>>,
    {
        if let Some(owner) = self.credentials.get(&key) {
            return Ok(Some(owner));
        }
        let generation = self.credentials.generation();
        let owner = read().await?;
        if let Some(owner) = &owner {
            self.credentials.put(generation, key, owner.clone());
        }
        Ok(owner)
    }

    /// Drops every cached credential and tells `user`'s open connections to re-check theirs:
    /// called after any change that can end one.
    fn forget_credentials(&self, user: UserId) {
        self.credentials.forget_user(user);
        // No receiver means no open connection: nothing to tell.
        let _ = self.revocations.send(user);
    }

    /// Whether this request should write the key's last use (once per interval per instance).
    fn claim_touch(&self, key: ApiKeyId, now_ms: i64) -> bool {
        let mut touches = self.key_touches.lock().unwrap_or_else(|p| p.into_inner());
        match touches.get(&key) {
            Some(at) if now_ms - at <= KEY_TOUCH_EVERY_MS => false,
            _ => {
                if touches.len() > 100_000 {
                    touches.clear();
                }
                touches.insert(key, now_ms);
                true
            }
        }
    }

    /// The caller's account.
    pub async fn me(&self, principal: &Principal) -> Result<api::User> {
        Ok(user_view(&self.store.get_user(principal.user_id()).await?))
    }

    /// The caller's account, once they have given its password again (as `field`). Guesses count
    /// as failed sign-ins, so a stolen token cannot be used to brute-force the password.
    async fn signed_in_user_again(
        &self,
        principal: &Principal,
        field: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<hearth_store::User> {
        let user = self.store.get_user(principal.user_id()).await?;
        self.throttle(ip, &user.email)?;
        let password = truncate_chars(password, Password::MAX_CHARS);
        if !self
            .hasher
            .verify(password, Some(&user.password_hash))
            .await?
        {
            self.limiter.failed(ip, &user.email);
            return Err(CoreError::invalid(field, "is incorrect"));
        }
        Ok(user)
    }

    /// Changes the caller's password and ends their other sessions.
    /// Guesses of the current password count as failed sign-ins, so a stolen token cannot be
    /// used to brute-force the password.
    pub async fn change_password(
        &self,
        principal: &Principal,
        req: api::ChangePasswordRequest,
        ip: IpAddr,
    ) -> Result<()> {
        let user = self
            .signed_in_user_again(principal, "current_password", &req.current_password, ip)
            .await?;
        let new = Password::parse("new_password", &req.new_password)?;
        self.store
            .set_password_hash(user.id, &self.hasher.hash(new.expose()).await?)
            .await?;
        self.store
            .revoke_user_sessions(user.id, principal.session())
            .await?;
        if req.revoke_api_keys {
            let keys = self.store.delete_user_api_keys(user.id).await?;
            tracing::info!(user.id = %user.id, api_keys = keys, "api keys revoked with a password change");
        }
        self.forget_credentials(user.id);
        Ok(())
    }

    /// The caller's API keys.
    pub async fn list_api_keys(&self, principal: &Principal) -> Result<Vec<api::ApiKey>> {
        let keys = self
            .store
            .list_api_keys(access::list_scope(principal))
            .await?;
        Ok(keys.iter().map(api_key_view).collect())
    }

    /// One of the caller's API keys.
    pub async fn get_api_key(&self, principal: &Principal, id: ApiKeyId) -> Result<api::ApiKey> {
        let key = access::owned(principal, self.store.find_api_key(id).await?)?;
        Ok(api_key_view(&key))
    }

    /// Creates an API key for the caller; the secret is returned this once.
    /// The password is asked again (a stolen session alone cannot mint a lasting credential);
    /// wrong guesses count as failed sign-ins.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        req: api::CreateApiKeyRequest,
        ip: IpAddr,
    ) -> Result<api::CreatedApiKey> {
        let name = input::text("name", &req.name, KEY_NAME_MAX)?;
        let scopes: KeyScopes = req.scopes.iter().copied().collect();
        if scopes == KeyScopes::default() {
            return Err(CoreError::invalid(
                "scopes",
                "must name at least one of read, chat, knowledge, admin",
            ));
        }
        if scopes.has(KeyScope::Admin) && principal.role() != Role::Admin {
            return Err(CoreError::Forbidden(
                "only admins can create keys with the `admin` scope".into(),
            ));
        }
        self.signed_in_user_again(principal, "password", &req.password, ip)
            .await?;
        let expires_at = match req.expires_in_days {
            None => None,
            Some(days @ 1..=3650) => Some(Timestamp::now().plus_secs(u64::from(days) * 86_400)),
            Some(_) => {
                return Err(CoreError::invalid(
                    "expires_in_days",
                    "must be between 1 and 3650",
                ))
            }
        };
        let secret = tokens::new_secret(SecretKind::ApiKey);
        let key = self
            .store
            .create_api_key(NewApiKey {
                user_id: principal.user_id(),
                name,
                prefix: secret.chars().take(KEY_PREFIX_CHARS).collect(),
                key_hash: tokens::hash_secret(&secret),
                expires_at,
                scopes: scopes.to_stored(),
            })
            .await?;
        tracing::info!(user.id = %principal.user_id(), api_key.id = %key.id, "api key created");
        Ok(api::CreatedApiKey {
            key: secret,
            api_key: api_key_view(&key),
        })
    }

    /// Revokes (deletes) one of the caller's API keys.
    pub async fn delete_api_key(&self, principal: &Principal, id: ApiKeyId) -> Result<()> {
        let key = access::owned(principal, self.store.find_api_key(id).await?)?;
        self.store.delete_api_key(key.id).await?;
        self.forget_credentials(principal.user_id());
        tracing::info!(user.id = %principal.user_id(), api_key.id = %key.id, "api key revoked");
        Ok(())
    }

    /// Every user (admin).
    pub async fn list_users(&self, _admin: &Admin) -> Result<Vec<api::User>> {
        Ok(self
            .store
            .list_users()
            .await?
            .iter()
            .map(user_view)
            .collect())
    }

    /// Creates a user directly (admin, or the local operator from the CLI).
    pub async fn create_user(
        &self,
        admin: &Admin,
        req: api::CreateUserRequest,
    ) -> Result<api::User> {
        let email = Email::parse("email", &req.email)?;
        let password = Password::parse("password", &req.password)?;
        let name = display_name(req.name.as_deref(), &email)?;
        let role = req.role.unwrap_or(Role::User);
        let new = self
            .new_user(
                &email,
                name,
                &password,
                NewUserRole::Exact(role.as_str().into()),
            )
            .await?;
        let user = self.store.create_user(new).await.map_err(email_conflict)?;
        tracing::info!(admin.id = ?admin.acting_user(), user.id = %user.id, "user created by admin");
        Ok(user_view(&user))
    }

    /// Changes a user's name, role or disabled flag (admin). The last enabled admin cannot be
    /// demoted or disabled. Disabling ends the user's sessions at once.
    pub async fn update_user(
        &self,
        admin: &Admin,
        id: UserId,
        req: api::UpdateUserRequest,
    ) -> Result<api::User> {
        let name = req
            .name
            .as_deref()
            .map(|n| input::text("name", n, NAME_MAX))
            .transpose()?;
        let patch = UserPatch {
            name,
            role: req.role.map(|r| r.as_str().to_owned()),
            disabled: req.disabled,
        };
        let user = match self.store.update_user(id, patch).await {
            Ok(user) => user,
            Err(StoreError::Conflict(what)) if what == "last_admin" => {
                let field = if req.disabled == Some(true) {
                    "disabled"
                } else {
                    "role"
                };
                return Err(CoreError::Conflict {
                    field: Some(field.into()),
                    message: "this is the last active admin; make another admin first".into(),
                });
            }
            Err(StoreError::NotFound) => return Err(CoreError::NotFound("user")),
            Err(e) => return Err(e.into()),
        };
        if req.disabled == Some(true) {
            self.store.revoke_user_sessions(id, None).await?;
        }
        // The cached role and disabled flag of the user's keys and sessions are stale now.
        self.forget_credentials(id);
        tracing::info!(admin.id = ?admin.acting_user(), user.id = %id, role = %user.role, disabled = user.disabled, "user updated by admin");
        Ok(user_view(&user))
    }

    /// Sets a user's password (admin) and ends their sessions.
    pub async fn reset_password(
        &self,
        admin: &Admin,
        id: UserId,
        req: api::ResetPasswordRequest,
    ) -> Result<()> {
        let password = Password::parse("new_password", &req.new_password)?;
        self.store
            .find_user(id)
            .await?
            .ok_or(CoreError::NotFound("user"))?;
        self.store
            .set_password_hash(id, &self.hasher.hash(password.expose()).await?)
            .await?;
        self.store.revoke_user_sessions(id, None).await?;
        if req.revoke_api_keys {
            self.store.delete_user_api_keys(id).await?;
        }
        self.forget_credentials(id);
        tracing::info!(admin.id = ?admin.acting_user(), user.id = %id, revoke_api_keys = req.revoke_api_keys, "password reset by admin");
        Ok(())
    }

    /// Sets a user's password by email (the CLI's `reset-password`).
    pub async fn reset_password_by_email(
        &self,
        admin: &Admin,
        email: &str,
        new_password: &str,
    ) -> Result<()> {
        let email = Email::parse("email", email)?;
        let user = self
            .store
            .find_user_by_email(email.as_str())
            .await?
            .ok_or(CoreError::NotFound("user"))?;
        self.reset_password(
            admin,
            user.id,
            api::ResetPasswordRequest {
                new_password: new_password.into(),
                revoke_api_keys: false,
            },
        )
        .await
    }

    /// Makes an invite (admin); the token is returned this once.
    pub async fn create_invite(
        &self,
        admin: &Admin,
        req: api::CreateInviteRequest,
    ) -> Result<api::CreatedInvite> {
        let email = req
            .email
            .as_deref()
            .map(|e| Email::parse("email", e))
            .transpose()?;
        let created_by = admin
            .acting_user()
            .ok_or_else(|| CoreError::Forbidden("invites are made by a signed-in admin".into()))?;
        let token = tokens::new_secret(SecretKind::Invite);
        let invite = self
            .store
            .create_invite(NewInvite {
                token_hash: tokens::hash_secret(&token),
                email: email.map(|e| e.as_str().to_owned()),
                created_by,
                expires_at: Timestamp::now().plus_secs(self.config.invite_ttl_secs),
            })
            .await?;
        Ok(api::CreatedInvite {
            token,
            email: invite.email,
            expires_at: invite.expires_at.to_datetime(),
        })
    }

    fn throttle(&self, ip: IpAddr, account: &str) -> Result<()> {
        self.limiter
            .attempt(ip, account)
            .map_err(|r| CoreError::RateLimited {
                retry_after_secs: r.retry_after_secs,
            })
    }

    async fn usable_invite(
        &self,
        raw: Option<&str>,
        email: &Email,
    ) -> Result<hearth_store::ids::InviteId> {
        let raw = raw
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                CoreError::invalid("invite_token", "is required: registration is by invitation")
            })?;
        let invite = self
            .store
            .find_invite_by_hash(&tokens::hash_secret(raw))
            .await?
            .ok_or_else(|| CoreError::invalid("invite_token", "is not valid"))?;
        if invite.used_at.is_some() {
            return Err(CoreError::invalid("invite_token", "has already been used"));
        }
        if invite.expires_at <= Timestamp::now() {
            return Err(CoreError::invalid("invite_token", "has expired"));
        }
        if invite.email.as_deref().is_some_and(|e| e != email.as_str()) {
            return Err(CoreError::invalid(
                "invite_token",
                "was made for another email",
            ));
        }
        Ok(invite.id)
    }

    async fn new_user(
        &self,
        email: &Email,
        name: String,
        password: &Password,
        role: NewUserRole,
    ) -> Result<NewUser> {
        Ok(NewUser {
            email: email.as_str().to_owned(),
            name,
            password_hash: self.hasher.hash(password.expose()).await?,
            role,
        })
    }

    async fn start_session(&self, user: hearth_store::User) -> Result<api::AuthResponse> {
        let session = self.store.create_session(user.id).await?;
        let refresh_token = self.new_refresh_token(session.id).await?;
        let access_token =
            self.keys
                .issue(user.id, session.id, self.config.access_token_ttl_secs)?;
        Ok(self.auth_response(access_token, refresh_token, &user))
    }

    async fn new_refresh_token(&self, session: hearth_store::ids::SessionId) -> Result<String> {
        let (secret, new) = self.refresh_token_for(session);
        self.store.create_refresh_token(new).await?;
        Ok(secret)
    }

    /// A new refresh secret and the row that stores it.
    fn refresh_token_for(
        &self,
        session: hearth_store::ids::SessionId,
    ) -> (String, NewRefreshToken) {
        let secret = tokens::new_secret(SecretKind::RefreshToken);
        let new = NewRefreshToken {
            session_id: session,
            token_hash: tokens::hash_secret(&secret),
            expires_at: Timestamp::now().plus_secs(self.config.refresh_token_ttl_secs),
        };
        (secret, new)
    }

    fn auth_response(
        &self,
        access_token: String,
        refresh_token: String,
        user: &hearth_store::User,
    ) -> api::AuthResponse {
        api::AuthResponse {
            access_token,
            refresh_token,
            expires_in: self.config.access_token_ttl_secs,
            token_type: "Bearer".into(),
            user: user_view(user),
        }
    }

    /// Lifetime of refresh tokens, for cookies.
    pub fn refresh_token_ttl_secs(&self) -> u64 {
        self.config.refresh_token_ttl_secs
    }
}

/// A duplicate email, named as such.
fn email_conflict(e: StoreError) -> CoreError {
    match e {
        StoreError::Conflict(_) => CoreError::Conflict {
            field: Some("email".into()),
            message: "an account with this email already exists".into(),
        },
        other => other.into(),
    }
}

fn display_name(raw: Option<&str>, email: &Email) -> Result<String> {
    match raw.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => input::text("name", name, NAME_MAX),
        None => Ok(email.local_part().to_owned()),
    }
}

/// Over-long passwords can never match (registration refuses them); cutting them bounds the hashing cost.
fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max + 1) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn user_view(u: &hearth_store::User) -> api::User {
    api::User {
        id: u.id,
        email: u.email.clone(),
        name: u.name.clone(),
        role: Role::from_stored(&u.role),
        disabled: u.disabled,
        created_at: u.created_at.to_datetime(),
    }
}

fn api_key_view(k: &hearth_store::ApiKey) -> api::ApiKey {
    api::ApiKey {
        id: k.id,
        name: k.name.clone(),
        prefix: k.prefix.clone(),
        created_at: k.created_at.to_datetime(),
        last_used_at: k.last_used_at.map(Timestamp::to_datetime),
        expires_at: k.expires_at.map(Timestamp::to_datetime),
        scopes: KeyScopes::from_stored(&k.scopes).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::{truncate_chars, CredentialCache};
    use hearth_store::ids::UserId;
    use hearth_store::CredentialOwner;
    use proptest::prelude::*;

    fn owner(role: &str) -> CredentialOwner {
        CredentialOwner {
            credential_id: "k".into(),
            user_id: UserId::new(),
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            email: "a@x.io".into(),
            role: role.into(),
            disabled: false,
            scopes: None,
        }
    }

    #[test]
    fn a_read_from_before_a_revocation_is_not_cached_after_it() {
        let cache = CredentialCache::default();
        let before = cache.generation();
        // A revocation lands while the read is in flight.
        cache.forget_user(UserId::new());
        cache.put(before, "k:1".into(), owner("admin"));
        assert!(cache.get("k:1").is_none());
        let now = cache.generation();
        let user = owner("user");
        let other = owner("user");
        cache.put(now, "k:1".into(), user.clone());
        cache.put(now, "k:2".into(), other.clone());
        assert_eq!(cache.get("k:1").map(|o| o.role), Some("user".into()));
        // Forgetting one user keeps the others' credentials.
        cache.forget_user(user.user_id);
        assert!(cache.get("k:1").is_none());
        assert!(cache.get("k:2").is_some());
    }

    proptest! {
        #[test]
        fn truncation_keeps_a_char_boundary_prefix(s in ".{0,200}", max in 0usize..150) {
            let t = truncate_chars(&s, max);
            prop_assert!(s.starts_with(t));
            prop_assert!(t.chars().count() <= max + 1);
            if s.chars().count() <= max + 1 {
                prop_assert_eq!(t, s.as_str());
            }
        }
    }
}
