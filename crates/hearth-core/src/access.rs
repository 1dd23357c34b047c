//! The one access policy. Every read or write of user-owned data passes through here; services
//! never compare owner ids themselves. Admin rights are a value ([`Admin`]) that can only be
//! obtained from a principal whose role is admin, so a service method that takes `&Admin`
//! cannot be called without the check.

use hearth_store::ids::{ApiKeyId, SessionId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{CoreError, Result};

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

/// How a principal proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// An access token of this session.
    Session(SessionId),
    /// This API key.
    ApiKey(ApiKeyId),
}

/// An authenticated caller. Only the accounts service makes one (fields are private), so a
/// principal with the admin role always comes from a real admin's credential.
#[derive(Clone, Debug)]
pub struct Principal {
    user_id: UserId,
    email: String,
    role: Role,
    credential: Credential,
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
        }
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
}
