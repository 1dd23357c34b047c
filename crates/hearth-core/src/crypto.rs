//! Encryption at rest. A master key (from settings, or a 0600 file created on first start) is
//! stretched per scope (a user id, or `system`) with HKDF-SHA256 into an AES-256-GCM key, so one
//! user's ciphertext cannot be decrypted under another user's scope even with the same master key.
//!
//! Every value is bound to where it lives: the associated data names the key id, the column, the
//! row id and the owner ([`Binding`]), so a ciphertext copied into another row or column (or
//! another user's row) fails authentication instead of being read there.
//!
//! Ciphertext is text: `v2.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id is a
//! fingerprint of the master key, so after a rotation old values are decrypted with the
//! previous key (kept in settings) until `hearth admin rotate-key` has re-encrypted them.
//! `v1` values (bound to the key id only) are re-sealed as `v2` once, when a server first starts
//! on a store that has them ([`upgrade`]); after that they are refused.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hearth_store::ids::UserId;
use hearth_store::Sealed;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use crate::error::{CoreError, Result};

const VERSION: &str = "v2";
/// Values bound to the key id alone, readable only while they are re-sealed.
const LEGACY: &str = "v1";
const NONCE_LEN: usize = 12;
/// Shortest master key accepted, in bytes.
pub const MIN_MASTER_KEY_LEN: usize = 32;

/// Whose key a ciphertext is made with: the user whose data it is, or the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Data of one user (messages, their credentials).
    User(UserId),
    /// Data of the installation (provider API keys set by an admin).
    System,
}

impl Scope {
    fn info(&self) -> Vec<u8> {
        match self {
            Scope::User(id) => format!("hearth/v1/user/{id}").into_bytes(),
            Scope::System => b"hearth/v1/system".to_vec(),
        }
    }

    fn owner(&self) -> String {
        match self {
            Scope::User(id) => id.to_string(),
            Scope::System => "system".into(),
        }
    }
}

/// Where a sealed value lives: its column, its row and its owner. A value sealed for one
/// binding opens only for the same binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    column: Sealed,
    row: String,
    scope: Scope,
}

impl Binding {
    /// The value of `column` in row `row`, owned by `scope`.
    pub fn new(column: Sealed, row: impl std::fmt::Display, scope: Scope) -> Self {
        Self {
            column,
            row: row.to_string(),
            scope,
        }
    }

    /// A value of one user's row.
    pub fn user(column: Sealed, row: impl std::fmt::Display, owner: UserId) -> Self {
        Self::new(column, row, Scope::User(owner))
    }

    fn aad(&self, key_id: &str) -> Vec<u8> {
        format!(
            "hearth/{VERSION}|{key_id}|{}|{}|{}",
            self.column.column(),
            self.row,
            self.scope.owner()
        )
        .into_bytes()
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

    fn cipher(&self, scope: Scope) -> Aes256Gcm {
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
    /// Whether `v1` values (bound to the key id only) are still read; only while re-sealing.
    legacy: bool,
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
            legacy: false,
        })
    }

    /// The same keys, also reading `v1` values: for re-sealing them, never for serving.
    fn reading_legacy(&self) -> Self {
        Self {
            legacy: true,
            ..self.clone()
        }
    }

    /// The current key's id (what new ciphertexts carry).
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Encrypts `plaintext` for the place `at` names.
    pub fn encrypt(&self, at: &Binding, plaintext: &str) -> Result<String> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let aad = at.aad(&self.current.id);
        let sealed = self
            .current
            .cipher(at.scope)
            .encrypt(
                Nonce::from_slice(&nonce_bytes),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
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

    /// Decrypts a value made by [`Crypto::encrypt`] for the same binding, with whichever known
    /// key made it.
    pub fn decrypt(&self, at: &Binding, ciphertext: &str) -> Result<String> {
        let mut parts = ciphertext.splitn(3, '.');
        let (Some(version), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CoreError::other("stored ciphertext is malformed"));
        };
        let legacy = match version {
            VERSION => false,
            LEGACY if self.legacy => true,
            LEGACY => {
                return Err(CoreError::other(
                    "stored ciphertext is v1, which is only read while it is re-sealed",
                ))
            }
            _ => {
                return Err(CoreError::other(format!(
                    "stored ciphertext has unknown version {version}"
                )))
            }
        };
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
        let aad = if legacy {
            key.id.as_bytes().to_vec()
        } else {
            at.aad(&key.id)
        };
        let plain = key
            .cipher(at.scope)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| CoreError::other("stored ciphertext failed authentication"))?;
        String::from_utf8(plain).map_err(|_| CoreError::other("decrypted value is not UTF-8"))
    }

    /// Whether `ciphertext` was made with an older key or format and should be re-encrypted.
    pub fn needs_rotation(&self, ciphertext: &str) -> bool {
        let mut parts = ciphertext.split('.');
        parts.next() != Some(VERSION) || parts.next() != Some(self.current.id.as_str())
    }
}

/// What a rotation did.
#[derive(Clone, Debug, Default)]
pub struct RotationReport {
    /// Per column: (name, values re-encrypted, values already current).
    pub columns: Vec<(&'static str, u64, u64)>,
    /// Values no known key opens (corrupt, or sealed under a key no longer configured): left as
    /// they are, and as unreadable as before.
    pub unreadable: u64,
    /// Whether every readable value is now current. A value changed while it was being
    /// re-sealed keeps its newer value and is looked at again in another pass; this is false
    /// only when values kept changing through every pass.
    pub complete: bool,
}

/// Re-encrypts every stored ciphertext not made with the current key and format. Safe to run
/// again after an interruption; rows changed concurrently keep the newer value (and are looked
/// at again). Values no key opens are counted and skipped, so one damaged row cannot block a
/// rotation or a start.
pub async fn rotate(store: &hearth_store::Store, crypto: &Crypto) -> Result<RotationReport> {
    const PAGE: i64 = 500;
    const PASSES: usize = 5;
    let reader = crypto.reading_legacy();
    let mut report = RotationReport {
        complete: true,
        ..Default::default()
    };
    for column in Sealed::ALL {
        let mut changed = 0u64;
        let (mut current, mut unreadable, mut raced) = (0u64, 0u64, 0u64);
        // Values current before the rotation: counted in the first pass (later passes would
        // count the ones it re-sealed again).
        let mut already = None;
        for _ in 0..PASSES {
            (current, unreadable, raced) = (0, 0, 0);
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
                    let scope = match (row.owner, column) {
                        (_, Sealed::ProviderKey) => Scope::System,
                        (Some(o), _) => Scope::User(o),
                        (None, _) => {
                            tracing::warn!(column = column.name(), row = %row.id, "sealed value without an owner; left as it is");
                            unreadable += 1;
                            continue;
                        }
                    };
                    let at = Binding::new(column, &row.id, scope);
                    let plain = match reader.decrypt(&at, &row.value) {
                        Ok(plain) => plain,
                        Err(e) => {
                            tracing::warn!(column = column.name(), row = %row.id, error = %e, "sealed value no key opens; left as it is");
                            unreadable += 1;
                            continue;
                        }
                    };
                    let sealed = crypto.encrypt(&at, &plain)?;
                    if store.reseal(column, &row.id, &row.value, &sealed).await? {
                        changed += 1;
                    } else {
                        raced += 1;
                    }
                }
            }
            already.get_or_insert(current);
            if raced == 0 {
                break;
            }
        }
        report.unreadable += unreadable;
        report.complete &= raced == 0;
        report
            .columns
            .push((column.name(), changed, already.unwrap_or(current)));
    }
    // Values that still change as v1 (an instance of an earlier version still writing) keep
    // the format unmarked, so the next start looks again.
    if report.complete {
        store.mark_sealed_format(VERSION).await?;
    }
    Ok(report)
}

/// Re-seals `v1` values (bound to the key id only) once per store, so that afterwards every
/// value is bound to its place. Returns the report when it ran.
pub async fn upgrade(
    store: &hearth_store::Store,
    crypto: &Crypto,
) -> Result<Option<RotationReport>> {
    if store.sealed_format().await?.as_deref() == Some(VERSION) {
        return Ok(None);
    }
    rotate(store, crypto).await.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(user: &str) -> Binding {
        Binding::user(
            Sealed::MessageContent,
            "m1",
            user.parse().expect("a user id"),
        )
    }

    const U1: &str = "0190a6a0-0000-7000-8000-000000000001";
    const U2: &str = "0190a6a0-0000-7000-8000-000000000002";

    const K1: &[u8] = b"0123456789abcdef0123456789abcdef";
    const K2: &[u8] = b"fedcba9876543210fedcba9876543210";

    #[test]
    fn round_trips_and_is_randomised() {
        let c = Crypto::new(K1, &[]).expect("key");
        let a = c.encrypt(&at(U1), "hello").expect("enc");
        let b = c.encrypt(&at(U1), "hello").expect("enc");
        assert_ne!(a, b, "nonces differ");
        assert!(a.starts_with(&format!("v2.{}.", c.key_id())));
        assert!(!a.contains("hello"));
        assert_eq!(c.decrypt(&at(U1), &a).expect("dec"), "hello");
    }

    #[test]
    fn scope_binds_the_ciphertext() {
        let c = Crypto::new(K1, &[]).expect("key");
        let a = c.encrypt(&at(U1), "secret").expect("enc");
        assert!(c.decrypt(&at(U2), &a).is_err());
        let system = Binding::new(Sealed::MessageContent, "m1", Scope::System);
        assert!(c.decrypt(&system, &a).is_err());
    }

    #[test]
    fn column_and_row_bind_the_ciphertext() {
        let c = Crypto::new(K1, &[]).expect("key");
        let user: UserId = U1.parse().expect("id");
        let a = c.encrypt(&at(U1), "secret").expect("enc");
        let other_row = Binding::user(Sealed::MessageContent, "m2", user);
        let other_column = Binding::user(Sealed::ConversationTitle, "m1", user);
        assert!(c.decrypt(&other_row, &a).is_err(), "moved to another row");
        assert!(
            c.decrypt(&other_column, &a).is_err(),
            "moved to another column"
        );
        assert_eq!(c.decrypt(&at(U1), &a).expect("in place"), "secret");
    }

    #[test]
    fn v1_values_are_read_only_while_re_sealing() {
        let c = Crypto::new(K1, &[]).expect("key");
        let user: UserId = U1.parse().expect("id");
        let v1 = seal_v1(&c, Scope::User(user), "old");
        assert!(c.needs_rotation(&v1));
        let err = c.decrypt(&at(U1), &v1).expect_err("refused when serving");
        assert!(err.to_string().contains("v1"), "{err}");
        assert_eq!(
            c.reading_legacy()
                .decrypt(&at(U1), &v1)
                .expect("re-sealing"),
            "old"
        );
    }

    /// A `v1` value as earlier versions made it: the key id alone as associated data.
    fn seal_v1(c: &Crypto, scope: Scope, plain: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = c
            .current
            .cipher(scope)
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: c.key_id().as_bytes(),
                },
            )
            .expect("enc");
        format!(
            "v1.{}.{}",
            c.key_id(),
            URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat())
        )
    }

    #[tokio::test]
    async fn a_v1_store_is_upgraded_once_and_then_bound() {
        use hearth_store::ids::ConversationId;
        use hearth_store::{NewUser, NewUserRole, Store, StoreOptions};
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("hearth.db").display());
        let store = Store::open(&url, &StoreOptions::default())
            .await
            .expect("open");
        store.migrate(dir.path()).await.expect("migrate");
        let c = Crypto::new(K1, &[]).expect("key");
        let user = store
            .create_user(NewUser {
                email: "a@example.com".into(),
                name: "A".into(),
                password_hash: "x".into(),
                role: NewUserRole::Exact("user".into()),
            })
            .await
            .expect("user");
        let (a, b) = (ConversationId::new(), ConversationId::new());
        for (id, title) in [(a, "alpha"), (b, "beta")] {
            let v1 = seal_v1(&c, Scope::User(user.id), title);
            store
                .create_conversation(id, user.id, &v1, None)
                .await
                .expect("conversation");
        }

        // One value sealed under a key that is no longer configured: skipped, counted, and no
        // reason to fail the start.
        let lost = Crypto::new(K2, &[]).expect("key");
        store
            .create_conversation(
                ConversationId::new(),
                user.id,
                &seal_v1(&lost, Scope::User(user.id), "lost"),
                None,
            )
            .await
            .expect("conversation");

        let report = upgrade(&store, &c).await.expect("upgrade").expect("ran");
        assert_eq!(report.unreadable, 1, "{report:?}");
        assert!(report.complete);
        let titles = report
            .columns
            .iter()
            .find(|col| col.0 == Sealed::ConversationTitle.name())
            .expect("titles reported");
        assert_eq!(titles.1, 2, "both titles re-sealed: {report:?}");
        assert_eq!(
            store.sealed_format().await.expect("format").as_deref(),
            Some("v2")
        );
        assert!(
            upgrade(&store, &c).await.expect("again").is_none(),
            "runs once"
        );

        let rows = store
            .sealed_page(Sealed::ConversationTitle, "", 10)
            .await
            .expect("page");
        let value = |id: ConversationId| {
            rows.iter()
                .find(|r| r.id == id.to_string())
                .expect("row")
                .value
                .clone()
        };
        let at = |id: ConversationId| Binding::user(Sealed::ConversationTitle, id, user.id);
        assert!(value(a).starts_with("v2."));
        assert_eq!(c.decrypt(&at(a), &value(a)).expect("in place"), "alpha");
        // Copied into the other row it no longer opens.
        assert!(c.decrypt(&at(b), &value(a)).is_err());
        store.close().await;
    }

    #[test]
    fn tampering_is_detected() {
        let c = Crypto::new(K1, &[]).expect("key");
        let system = Binding::new(Sealed::ProviderKey, "p1", Scope::System);
        let a = c.encrypt(&system, "secret").expect("enc");
        let mut bytes = a.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("utf8");
        assert!(c.decrypt(&system, &tampered).is_err());
        assert!(c.decrypt(&system, "v2.zz").is_err());
        assert!(c.decrypt(&system, "v9.a.b").is_err());
    }

    #[test]
    fn rotation_keeps_old_values_readable() {
        let old = Crypto::new(K1, &[]).expect("key");
        let value = old.encrypt(&at(U1), "x").expect("enc");
        assert!(!old.needs_rotation(&value));
        let without_previous = Crypto::new(K2, &[]).expect("key");
        assert!(without_previous.decrypt(&at(U1), &value).is_err());
        let rotated = Crypto::new(K2, &[K1]).expect("key");
        assert!(rotated.needs_rotation(&value));
        assert_eq!(rotated.decrypt(&at(U1), &value).expect("dec"), "x");
        let again = rotated.encrypt(&at(U1), "x").expect("enc");
        assert!(!rotated.needs_rotation(&again));
    }

    #[test]
    fn short_keys_are_refused() {
        let err = Crypto::new(b"short", &[]).expect_err("short");
        assert!(err.to_string().contains("crypto.master_key"));
    }
}
