//! Argon2id password hashing, run off the async threads.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Cost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for Argon2Cost {
    /// OWASP's recommended minimum for Argon2id.
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Argon2Cost {
    /// Checks the parameters are ones Argon2 accepts; the error names the bad key.
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map(|_| ())
            .map_err(|e| {
                let key = match e {
                    argon2::Error::MemoryTooLittle | argon2::Error::MemoryTooMuch => "memory_kib",
                    argon2::Error::TimeTooSmall => "iterations",
                    _ => "parallelism",
                };
                (key, e.to_string())
            })
    }
}

/// Hashes and verifies passwords with a fixed cost.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, verified against when the account does not exist so that
    /// unknown emails take as long as wrong passwords.
    decoy: String,
}

impl PasswordHasher {
    /// A hasher with this cost.
    pub fn new(cost: Argon2Cost) -> Result<Self> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| CoreError::other(format!("argon2 parameters: {e}")))?;
        let decoy = hash_with(
            &params,
            &crate::tokens::new_secret(crate::tokens::SecretKind::RefreshToken),
        )?;
        Ok(Self { params, decoy })
    }

    /// Hashes a password (PHC string).
    pub async fn hash(&self, password: &str) -> Result<String> {
        let params = self.params.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_with(&params, &password))
            .await
            .map_err(|e| CoreError::Other(Box::new(e)))?
    }

    /// Whether `password` matches `hash`. With `None`, checks against a decoy and returns false.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.decoy).to_owned();
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| CoreError::other(format!("stored hash: {e}")))?;
            Ok::<_, CoreError>(
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
            )
        })
        .await
        .map_err(|e| CoreError::Other(Box::new(e)))??;
        Ok(ok && known)
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::other(format!("argon2: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Cost {
        Argon2Cost {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let h = PasswordHasher::new(cheap()).expect("hasher");
        let hash = h.hash("correct-horse").await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(h
            .verify("correct-horse", Some(&hash))
            .await
            .expect("verify"));
        assert!(!h.verify("wrong-horse", Some(&hash)).await.expect("verify"));
        assert!(!h.verify("correct-horse", None).await.expect("decoy"));
    }

    #[test]
    fn bad_cost_names_key() {
        let bad = Argon2Cost {
            memory_kib: 1,
            ..cheap()
        };
        assert_eq!(
            bad.validate().expect_err("too little memory").0,
            "memory_kib"
        );
        let bad = Argon2Cost {
            iterations: 0,
            ..cheap()
        };
        assert_eq!(bad.validate().expect_err("zero passes").0, "iterations");
    }
}
