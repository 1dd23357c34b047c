//! The one access policy. Every read or write of user-owned data passes through here; services
//! never compare owner ids themselves. Admin rights are a value ([`Admin`]) that can only be
//! obtained from a principal whose role is admin, so a service method that takes `&Admin`
//! cannot be called without the check.

use hearth_store::ids::{ApiKeyId, SessionId, UserId};

use crate::error::{CoreError, Result};

pub use hearth_api::auth::{KeyScope, KeyScopes, Role};

/// How a principal proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// An access token of this session.
    Session(SessionId),
    /// This API key.
    ApiKey(ApiKeyId),
}

/// What part of the API a route belongs to, which decides the scope an API key needs for it.
/// Every authenticated route declares one; a route without one refuses API keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// The caller's own account (`/me`, API keys, password). Keys may read; changes need a session.
    Account,
    /// Model lists: any key.
    Models,
    /// Conversations, runs, memories, `/v1`. `chat`, or `read` for reads.
    Chat,
    /// Knowledge bases. `knowledge`, or `read` for reads.
    Knowledge,
    /// Searching a knowledge base: a read although it is a POST (`knowledge` or `read`).
    KnowledgeSearch,
    /// Conversation into a knowledge base: `chat` and `knowledge`.
    ChatToKnowledge,
    /// The admin API: `admin`.
    Admin,
}

/// An authenticated caller. Only the accounts service makes one (fields are private), so a
/// principal with the admin role always comes from a real admin's credential.
#[derive(Clone, Debug)]
pub struct Principal {
    user_id: UserId,
    email: String,
    role: Role,
    credential: Credential,
    scopes: KeyScopes,
}

/// Proof that the caller is an admin. Only [`Principal::admin`] and [`Admin::local_operator`] make one.
#[derive(Clone, Debug)]
pub struct Admin {
    acting_user: Option<UserId>,
}

impl Principal {
    pub(crate) fn new(user_id: UserId, email: String, role: Role, credential: Credential) -> Self {
        Self {
            user_id,
            email,
            role,
            credential,
            scopes: KeyScopes::ALL,
        }
    }

    /// The same caller limited to an API key's scopes.
    pub(crate) fn with_scopes(self, scopes: KeyScopes) -> Self {
        Self { scopes, ..self }
    }

    /// What the caller's credential allows (every scope for a session).
    pub fn scopes(&self) -> KeyScopes {
        self.scopes
    }

    /// Whether the caller may use a route of `area` with a reading (`GET`) or writing request;
    /// 403 naming the missing scope otherwise. Sessions may use every area (their role still
    /// decides admin rights).
    pub fn may(&self, area: Area, reading: bool) -> Result<()> {
        if matches!(self.credential, Credential::Session(_)) {
            return Ok(());
        }
        let has = |s| self.scopes.has(s);
        let read_or = |s| has(s) || (reading && has(KeyScope::Read));
        let (allowed, needs) = match area {
            Area::Account => (
                reading,
                "a signed-in session (API keys can only read the account)",
            ),
            Area::Models => (true, ""),
            Area::Chat => (read_or(KeyScope::Chat), "the `chat` scope"),
            Area::Knowledge => (read_or(KeyScope::Knowledge), "the `knowledge` scope"),
            Area::KnowledgeSearch => (
                has(KeyScope::Knowledge) || has(KeyScope::Read),
                "the `knowledge` or `read` scope",
            ),
            Area::ChatToKnowledge => (
                has(KeyScope::Chat) && has(KeyScope::Knowledge),
                "the `chat` and `knowledge` scopes",
            ),
            Area::Admin => (has(KeyScope::Admin), "the `admin` scope"),
        };
        if allowed {
            Ok(())
        } else {
            Err(CoreError::Forbidden(format!("this API key lacks {needs}")))
        }
    }

    /// The caller's user id.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The caller's email.
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The caller's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// How the caller authenticated.
    pub fn credential(&self) -> Credential {
        self.credential
    }

    /// Admin rights, or 403.
    pub fn admin(&self) -> Result<Admin> {
        if !self.scopes.has(KeyScope::Admin) {
            return Err(CoreError::Forbidden(
                "this API key lacks the `admin` scope".into(),
            ));
        }
        match self.role {
            Role::Admin => Ok(Admin {
                acting_user: Some(self.user_id),
            }),
            Role::User => Err(CoreError::Forbidden("admin role required".into())),
        }
    }

    /// The session behind this principal, when it signed in with a token.
    pub fn session(&self) -> Option<SessionId> {
        match self.credential {
            Credential::Session(id) => Some(id),
            Credential::ApiKey(_) => None,
        }
    }
}

impl Admin {
    /// Admin rights of whoever runs `hearth admin …` on the server itself: they already hold
    /// the database and the data directory.
    pub fn local_operator() -> Self {
        Self { acting_user: None }
    }

    /// The admin user acting, or `None` for the local operator.
    pub fn acting_user(&self) -> Option<UserId> {
        self.acting_user
    }
}

/// Something a single user owns.
pub trait Owned {
    /// The owner.
    fn owner(&self) -> UserId;
    /// What to call it in a not-found message.
    const KIND: &'static str;
}

impl Owned for hearth_store::ApiKey {
    fn owner(&self) -> UserId {
        self.user_id
    }
    const KIND: &'static str = "api key";
}

/// The item if `principal` owns it. Missing and not-owned are the same 404, so ids of other
/// users' things cannot be probed.
pub fn owned<T: Owned>(principal: &Principal, item: Option<T>) -> Result<T> {
    match item {
        Some(item) if item.owner() == principal.user_id => Ok(item),
        _ => Err(CoreError::NotFound(T::KIND)),
    }
}

/// The item whoever owns it: the explicit admin bypass.
pub fn owned_by_anyone<T: Owned>(_admin: &Admin, item: Option<T>) -> Result<T> {
    item.ok_or(CoreError::NotFound(T::KIND))
}

/// The owner to scope a listing to.
pub fn list_scope(principal: &Principal) -> UserId {
    principal.user_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_store::Timestamp;

    fn principal(role: Role) -> Principal {
        Principal {
            user_id: UserId::new(),
            email: "a@x.io".into(),
            role,
            credential: Credential::Session(SessionId::new()),
            scopes: KeyScopes::ALL,
        }
    }

    fn keyed(role: Role, scopes: &[KeyScope]) -> Principal {
        Principal {
            credential: Credential::ApiKey(ApiKeyId::new()),
            ..principal(role)
        }
        .with_scopes(scopes.iter().copied().collect())
    }

    fn key(owner: UserId) -> hearth_store::ApiKey {
        hearth_store::ApiKey {
            id: ApiKeyId::new(),
            user_id: owner,
            name: "k".into(),
            prefix: "hk_".into(),
            key_hash: String::new(),
            created_at: Timestamp::now(),
            expires_at: None,
            last_used_at: None,
            scopes: "read".into(),
        }
    }

    #[test]
    fn owner_sees_own_and_others_get_not_found() {
        let a = principal(Role::User);
        let b = principal(Role::User);
        assert!(owned(&a, Some(key(a.user_id))).is_ok());
        assert!(matches!(
            owned(&b, Some(key(a.user_id))),
            Err(CoreError::NotFound(_))
        ));
        assert!(matches!(
            owned::<hearth_store::ApiKey>(&a, None),
            Err(CoreError::NotFound(_))
        ));
    }

    #[test]
    fn admin_proof_needs_admin_role() {
        assert!(principal(Role::User).admin().is_err());
        let admin = principal(Role::Admin).admin().expect("admin");
        let other = UserId::new();
        // Even an admin goes through the policy; the bypass is a separate, explicit call.
        assert!(owned(&principal(Role::Admin), Some(key(other))).is_err());
        assert!(owned_by_anyone(&admin, Some(key(other))).is_ok());
    }

    #[test]
    fn scopes_round_trip_and_unknown_words_grant_nothing() {
        let s: KeyScopes = [KeyScope::Chat, KeyScope::Read].into_iter().collect();
        assert_eq!(s.to_stored(), "read chat");
        assert_eq!(KeyScopes::from_stored("read chat"), s);
        assert_eq!(KeyScopes::from_stored("root all *"), KeyScopes::default());
        assert_eq!(
            KeyScopes::from_stored(&KeyScopes::ALL.to_stored()),
            KeyScopes::ALL
        );
    }

    #[test]
    fn a_key_reaches_only_the_areas_of_its_scopes() {
        let read = keyed(Role::User, &[KeyScope::Read]);
        assert!(read.may(Area::Chat, true).is_ok());
        assert!(read.may(Area::Knowledge, true).is_ok());
        assert!(read.may(Area::Chat, false).is_err(), "read cannot write");
        assert!(read.may(Area::Admin, true).is_err());

        let chat = keyed(Role::User, &[KeyScope::Chat]);
        assert!(chat.may(Area::Chat, false).is_ok());
        assert!(chat.may(Area::Knowledge, true).is_err(), "no read scope");
        assert!(chat.may(Area::ChatToKnowledge, false).is_err());
        assert!(chat.may(Area::Models, true).is_ok());

        assert!(
            read.may(Area::KnowledgeSearch, false).is_ok(),
            "search reads"
        );
        assert!(chat.may(Area::KnowledgeSearch, false).is_err());
        let both = keyed(Role::User, &[KeyScope::Chat, KeyScope::Knowledge]);
        assert!(both.may(Area::ChatToKnowledge, false).is_ok());
        for scopes in [&[][..], &KeyScope::ALL[..]] {
            let k = keyed(Role::Admin, scopes);
            assert!(k.may(Area::Account, true).is_ok());
            assert!(
                k.may(Area::Account, false).is_err(),
                "keys cannot change the account"
            );
        }
        let err = chat.may(Area::Knowledge, false).expect_err("denied");
        assert!(err.to_string().contains("`knowledge`"), "{err}");

        // A session may use every area; its role still decides admin rights.
        assert!(principal(Role::User).may(Area::Admin, false).is_ok());
        assert!(principal(Role::User).admin().is_err());
    }

    #[test]
    fn admin_rights_through_a_key_need_the_admin_scope() {
        assert!(keyed(Role::Admin, &[KeyScope::Read, KeyScope::Chat])
            .admin()
            .is_err());
        assert!(keyed(Role::Admin, &[KeyScope::Admin]).admin().is_ok());
        assert!(keyed(Role::User, &[KeyScope::Admin]).admin().is_err());
    }
}
