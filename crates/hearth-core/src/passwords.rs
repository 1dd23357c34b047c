//! Argon2id password hashing, run off the async threads.

use std::sync::{Arc, Mutex};

use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

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
///
/// Argon2 needs `memory_kib` of scratch memory per hash. Allocating it afresh for every login
/// leaves freed blocks in the allocator's per-thread arenas (hundreds of MiB after a burst of
/// concurrent logins), so hashing runs at most one job per core and reuses a pool of buffers:
/// memory stays at `cores × memory_kib`.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, verified against when the account does not exist so that
    /// unknown emails take as long as wrong passwords.
    decoy: String,
    work: Arc<Workspace>,
}

struct Workspace {
    permits: Arc<Semaphore>,
    buffers: Mutex<Vec<Vec<Block>>>,
}

impl PasswordHasher {
    /// A hasher with this cost.
    pub fn new(cost: Argon2Cost) -> Result<Self> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| CoreError::other(format!("argon2 parameters: {e}")))?;
        let decoy_password = crate::tokens::new_secret(crate::tokens::SecretKind::RefreshToken);
        let decoy = hash_with(&params, &decoy_password, &mut Vec::new())?;
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        let work = Arc::new(Workspace {
            permits: Arc::new(Semaphore::new(jobs)),
            buffers: Mutex::new(Vec::new()),
        });
        Ok(Self {
            params,
            decoy,
            work,
        })
    }

    /// Hashes a password (PHC string).
    pub async fn hash(&self, password: &str) -> Result<String> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.run(move |blocks| hash_with(&params, &password, blocks))
            .await?
    }

    /// Whether `password` matches `hash`. With `None`, checks against a decoy and returns false.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.decoy).to_owned();
        let password = password.to_owned();
        let ok = self
            .run(move |blocks| verify_with(&password, &hash, blocks))
            .await??;
        Ok(ok && known)
    }

    /// Runs `job` on a blocking thread with a scratch buffer from the pool.
    async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Vec<Block>) -> R + Send + 'static,
    ) -> Result<R> {
        // The permit and the buffer travel with the blocking task, so a client that disconnects
        // (dropping this future) cannot free a slot while its hash still runs.
        let permit = Arc::clone(&self.work.permits)
            .acquire_owned()
            .await
            .map_err(|e| CoreError::Other(Box::new(e)))?;
        let work = Arc::clone(&self.work);
        tokio::task::spawn_blocking(move || {
            let mut blocks = work
                .buffers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
                .unwrap_or_default();
            let result = job(&mut blocks);
            work.buffers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(blocks);
            drop(permit);
            result
        })
        .await
        .map_err(|e| CoreError::Other(Box::new(e)))
    }
}

/// Argon2id over `password` with a fresh salt, using `blocks` as scratch memory.
fn hash_with(params: &Params, password: &str, blocks: &mut Vec<Block>) -> Result<String> {
    let fail = |e: &dyn std::fmt::Display| CoreError::other(format!("argon2: {e}"));
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| fail(&e))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    grow(blocks, params.block_count());
    let output = Output::init_with(
        params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN),
        |out| {
            argon
                .hash_password_into_with_memory(
                    password.as_bytes(),
                    salt_bytes,
                    out,
                    &mut blocks[..],
                )
                .map_err(Into::into)
        },
    )
    .map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Recomputes a stored PHC hash's output for `password` and compares in constant time.
fn verify_with(password: &str, stored: &str, blocks: &mut Vec<Block>) -> Result<bool> {
    let fail = |e: &dyn std::fmt::Display| CoreError::other(format!("stored password hash: {e}"));
    let phc = PasswordHash::new(stored).map_err(|e| fail(&e))?;
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
        return Err(fail(&"no salt or hash"));
    };
    let algorithm = Algorithm::try_from(phc.algorithm).map_err(|e| fail(&e))?;
    let version = phc
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| fail(&e))?
        .unwrap_or_default();
    let params = Params::try_from(&phc).map_err(|e| fail(&e))?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| fail(&e))?;
    grow(blocks, params.block_count());
    let argon = Argon2::new(algorithm, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        argon
            .hash_password_into_with_memory(password.as_bytes(), salt_bytes, out, &mut blocks[..])
            .map_err(Into::into)
    })
    .map_err(|e| fail(&e))?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

fn grow(blocks: &mut Vec<Block>, needed: usize) {
    if blocks.len() < needed {
        blocks.resize(needed, Block::new());
    }
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

    #[tokio::test]
    async fn verifies_hashes_made_by_the_reference_implementation() {
        use argon2::password_hash::PasswordHasher as _;
        let params = Params::new(256, 1, 1, None).expect("params");
        let salt = SaltString::generate(&mut OsRng);
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"correct-horse", &salt)
            .expect("reference hash")
            .to_string();
        let h = PasswordHasher::new(cheap()).expect("hasher");
        assert!(h
            .verify("correct-horse", Some(&reference))
            .await
            .expect("verify"));
        assert!(!h
            .verify("correct-horsf", Some(&reference))
            .await
            .expect("verify"));
        // And ours verify with the reference verifier.
        use argon2::password_hash::PasswordVerifier as _;
        let ours = h.hash("correct-horse").await.expect("hash");
        let parsed = PasswordHash::new(&ours).expect("parse");
        assert!(Argon2::default()
            .verify_password(b"correct-horse", &parsed)
            .is_ok());
    }

    #[tokio::test]
    async fn stored_hashes_with_another_cost_still_verify() {
        let old = PasswordHasher::new(Argon2Cost {
            memory_kib: 512,
            iterations: 2,
            parallelism: 2,
        })
        .expect("old");
        let hash = old.hash("correct-horse").await.expect("hash");
        let new = PasswordHasher::new(cheap()).expect("new");
        assert!(new
            .verify("correct-horse", Some(&hash))
            .await
            .expect("verify"));
        assert!(new.verify("x", Some("not a phc string")).await.is_err());
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
