//! Encryption at rest. A master key (from settings, or a 0600 file created on first start) is
//! stretched per scope (a user id, or `system`) with HKDF-SHA256 into an AES-256-GCM key, so one
//! user's ciphertext cannot be decrypted under another user's scope even with the same master key.
//!
//! Ciphertext is text: `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id is a
//! fingerprint of the master key, so after a rotation old values are decrypted with the
//! previous key (kept in settings) until `hearth admin rotate-key` has re-encrypted them.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use crate::error::{CoreError, Result};

const VERSION: &str = "v1";
const NONCE_LEN: usize = 12;
/// Shortest master key accepted, in bytes.
pub const MIN_MASTER_KEY_LEN: usize = 32;

/// What a ciphertext is bound to: the user whose data it is, or the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Data of one user (messages, their credentials).
    User(&'a str),
    /// Data of the installation (provider API keys set by an admin).
    System,
}

impl Scope<'_> {
    fn info(&self) -> Vec<u8> {
        match self {
            Scope::User(id) => format!("hearth/v1/user/{id}").into_bytes(),
            Scope::System => b"hearth/v1/system".to_vec(),
        }
    }
}

#[derive(Clone)]
struct MasterKey {
    id: String,
    bytes: Vec<u8>,
}

impl MasterKey {
    fn new(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < MIN_MASTER_KEY_LEN {
            return Err(CoreError::invalid(
                "crypto.master_key",
                format!("must be at least {MIN_MASTER_KEY_LEN} bytes"),
            ));
        }
        let digest = Sha256::digest([b"hearth-key-id:".as_slice(), bytes].concat());
        Ok(Self {
            id: crate::tokens::hex(&digest[..4]),
            bytes: bytes.to_vec(),
        })
    }

    fn cipher(&self, scope: Scope<'_>) -> Aes256Gcm {
        let hk = Hkdf::<Sha256>::new(Some(b"hearth-at-rest"), &self.bytes);
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
        hk.expand(&scope.info(), &mut key)
            .unwrap_or_else(|_| unreachable!("32-byte HKDF output"));
        Aes256Gcm::new(&key.into())
    }
}

/// Encrypts and decrypts values at rest. Cheap to clone.
#[derive(Clone)]
pub struct Crypto {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("key_id", &self.current.id)
            .field("previous", &self.previous.len())
            .finish()
    }
}

impl Crypto {
    /// A codec with `master` as the current key and `previous` keys still accepted for decryption.
    pub fn new(master: &[u8], previous: &[&[u8]]) -> Result<Self> {
        Ok(Self {
            current: MasterKey::new(master)?,
            previous: previous
                .iter()
                .map(|k| MasterKey::new(k))
                .collect::<Result<_>>()?,
        })
    }

    /// The current key's id (what new ciphertexts carry).
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Encrypts `plaintext` for `scope`.
    pub fn encrypt(&self, scope: Scope<'_>, plaintext: &str) -> Result<String> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let aad = self.current.id.as_bytes();
        let sealed = self
            .current
            .cipher(scope)
            .encrypt(
                Nonce::from_slice(&nonce_bytes),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad,
                },
            )
            .map_err(|_| CoreError::other("encryption failed"))?;
        let mut blob = Vec::with_capacity(NONCE_LEN + sealed.len());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&sealed);
        Ok(format!(
            "{VERSION}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(blob)
        ))
    }

    /// Decrypts a value made by [`Crypto::encrypt`] under the same scope, with whichever known key made it.
    pub fn decrypt(&self, scope: Scope<'_>, ciphertext: &str) -> Result<String> {
        let mut parts = ciphertext.splitn(3, '.');
        let (Some(version), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CoreError::other("stored ciphertext is malformed"));
        };
        if version != VERSION {
            return Err(CoreError::other(format!(
                "stored ciphertext has unknown version {version}"
            )));
        }
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == key_id)
            .ok_or_else(|| {
                CoreError::other(format!(
                    "stored value was encrypted with key {key_id}, which is not configured \
                     (set crypto.previous_master_keys)"
                ))
            })?;
        let blob = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| CoreError::other("stored ciphertext is not base64"))?;
        if blob.len() < NONCE_LEN {
            return Err(CoreError::other("stored ciphertext is truncated"));
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let plain = key
            .cipher(scope)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: key.id.as_bytes(),
                },
            )
            .map_err(|_| CoreError::other("stored ciphertext failed authentication"))?;
        String::from_utf8(plain).map_err(|_| CoreError::other("decrypted value is not UTF-8"))
    }

    /// Whether `ciphertext` was made with an older key and should be re-encrypted.
    pub fn needs_rotation(&self, ciphertext: &str) -> bool {
        ciphertext
            .split('.')
            .nth(1)
            .is_some_and(|id| id != self.current.id)
    }
}

/// What a key rotation did, per sealed column: (name, re-encrypted, already current).
#[derive(Clone, Debug, Default)]
pub struct RotationReport {
    pub columns: Vec<(&'static str, u64, u64)>,
}

/// Re-encrypts every stored ciphertext not made with the current key. Safe to run again after
/// an interruption; rows changed concurrently keep the newer value.
pub async fn rotate(store: &hearth_store::Store, crypto: &Crypto) -> Result<RotationReport> {
    use hearth_store::Sealed;
    const PAGE: i64 = 500;
    let mut report = RotationReport::default();
    for column in Sealed::ALL {
        let (mut changed, mut current) = (0u64, 0u64);
        let mut after = String::new();
        loop {
            let page = store.sealed_page(column, &after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            for row in &page {
                if !crypto.needs_rotation(&row.value) {
                    current += 1;
                    continue;
                }
                let owner = row.owner.map(|o| o.to_string());
                let scope = match (&owner, column) {
                    (_, Sealed::ProviderKey) => Scope::System,
                    (Some(o), _) => Scope::User(o),
                    (None, _) => {
                        return Err(CoreError::other(format!(
                            "{} {} has no owner",
                            column.name(),
                            row.id
                        )))
                    }
                };
                let plain = crypto.decrypt(scope, &row.value)?;
                let sealed = crypto.encrypt(scope, &plain)?;
                if store.reseal(column, &row.id, &row.value, &sealed).await? {
                    changed += 1;
                }
            }
        }
        report.columns.push((column.name(), changed, current));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &[u8] = b"0123456789abcdef0123456789abcdef";
    const K2: &[u8] = b"fedcba9876543210fedcba9876543210";

    #[test]
    fn round_trips_and_is_randomised() {
        let c = Crypto::new(K1, &[]).expect("key");
        let a = c.encrypt(Scope::User("u1"), "hello").expect("enc");
        let b = c.encrypt(Scope::User("u1"), "hello").expect("enc");
        assert_ne!(a, b, "nonces differ");
        assert!(a.starts_with(&format!("v1.{}.", c.key_id())));
        assert!(!a.contains("hello"));
        assert_eq!(c.decrypt(Scope::User("u1"), &a).expect("dec"), "hello");
    }

    #[test]
    fn scope_binds_the_ciphertext() {
        let c = Crypto::new(K1, &[]).expect("key");
        let a = c.encrypt(Scope::User("u1"), "secret").expect("enc");
        assert!(c.decrypt(Scope::User("u2"), &a).is_err());
        assert!(c.decrypt(Scope::System, &a).is_err());
    }

    #[test]
    fn tampering_is_detected() {
        let c = Crypto::new(K1, &[]).expect("key");
        let a = c.encrypt(Scope::System, "secret").expect("enc");
        let mut bytes = a.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("utf8");
        assert!(c.decrypt(Scope::System, &tampered).is_err());
        assert!(c.decrypt(Scope::System, "v1.zz").is_err());
        assert!(c.decrypt(Scope::System, "v9.a.b").is_err());
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = Crypto::new(K1, &[]).expect("key");
        let value = old.encrypt(Scope::User("u"), "x").expect("enc");
        let without_previous = Crypto::new(K2, &[]).expect("key");
        assert!(without_previous.decrypt(Scope::User("u"), &value).is_err());
        let rotated = Crypto::new(K2, &[K1]).expect("key");
        assert!(rotated.needs_rotation(&value));
        assert_eq!(rotated.decrypt(Scope::User("u"), &value).expect("dec"), "x");
        let again = rotated.encrypt(Scope::User("u"), "x").expect("enc");
        assert!(!rotated.needs_rotation(&again));
    }

    #[test]
    fn short_keys_are_refused() {
        let err = Crypto::new(b"short", &[]).expect_err("short");
        assert!(err.to_string().contains("crypto.master_key"));
    }
}
