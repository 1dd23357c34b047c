//! Access tokens (HS256 JWT) and opaque secrets (refresh tokens, API keys, invites).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hearth_store::ids::{SessionId, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{CoreError, Result};

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: UserId,
    /// The session the token was issued for; revoking it ends the token at once.
    pub sid: SessionId,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Always `hearth`.
    pub iss: String,
}

const ISSUER: &str = "hearth";

/// Signs and checks access tokens with one HS256 secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    /// Keys from a secret of at least 32 bytes.
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < 32 {
            return Err(CoreError::invalid(
                "auth.jwt_secret",
                "must be at least 32 bytes",
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// Signs a token for `user` in `session`, valid for `ttl_secs`.
    pub fn issue(&self, user: UserId, session: SessionId, ttl_secs: u64) -> Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user,
            sid: session,
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
            iss: ISSUER.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| CoreError::other(format!("jwt encode: {e}")))
    }

    /// Checks signature, issuer and expiry.
    pub fn verify(&self, token: &str) -> Result<AccessClaims> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    CoreError::Unauthorized("access token expired".into())
                }
                _ => CoreError::Unauthorized("invalid access token".into()),
            })
    }
}

/// Kinds of opaque secrets, each with a recognisable prefix.
#[derive(Clone, Copy, Debug)]
pub enum SecretKind {
    RefreshToken,
    ApiKey,
    Invite,
}

impl SecretKind {
    /// The prefix tokens of this kind start with.
    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::RefreshToken => "hrt_",
            SecretKind::ApiKey => "hk_",
            SecretKind::Invite => "hinv_",
        }
    }
}

/// A new random secret (256 bits) with its kind's prefix.
pub fn new_secret(kind: SecretKind) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes))
}

/// The hash a secret is stored and looked up by. Secrets are high-entropy, so a fast hash suffices.
pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Random bytes for a signing secret.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_round_trip_and_tamper() {
        let keys = JwtKeys::new(&[7u8; 32]).expect("keys");
        let (user, session) = (UserId::new(), SessionId::new());
        let token = keys.issue(user, session, 60).expect("issue");
        let claims = keys.verify(&token).expect("verify");
        assert_eq!(claims.sub, user);
        assert_eq!(claims.sid, session);
        let other = JwtKeys::new(&[8u8; 32]).expect("keys");
        assert!(other.verify(&token).is_err());
        let mut tampered = token.clone();
        tampered.push('x');
        assert!(keys.verify(&tampered).is_err());
    }

    #[test]
    fn expired_token_is_rejected() {
        let keys = JwtKeys::new(&[7u8; 32]).expect("keys");
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: UserId::new(),
            sid: SessionId::new(),
            iat: now - 100,
            exp: now - 60,
            iss: ISSUER.into(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .expect("encode");
        assert!(
            matches!(keys.verify(&token), Err(CoreError::Unauthorized(m)) if m.contains("expired"))
        );
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(JwtKeys::new(b"short").is_err());
    }

    #[test]
    fn secrets_are_prefixed_unique_and_hashed() {
        let a = new_secret(SecretKind::ApiKey);
        let b = new_secret(SecretKind::ApiKey);
        assert!(a.starts_with("hk_") && a != b);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), hash_secret(&b));
    }
}
