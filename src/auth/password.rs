//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane), off the async
//! runtime and through a bounded gate, so a burst of sign-ins cannot take unbounded memory.

use anyhow::Context;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::ApiError;
use crate::infra::work::WorkGate;

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let hash = argon2()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("Failed to hash a password")?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
pub fn verify_blocking(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Memory one hash or verification takes (argon2id's 19 MiB, and a little).
pub const HASH_MEMORY: u64 = 20 * 1024 * 1024;

/// Hashes through `gate` (bounded: see `infra::work`).
pub async fn hash(gate: &WorkGate, password: String) -> Result<String, ApiError> {
    gate.run(HASH_MEMORY, move || hash_blocking(&password))
        .await?
        .map_err(ApiError::Internal)
}

/// Verifies through `gate`.
pub async fn verify(gate: &WorkGate, password: String, hash: String) -> Result<bool, ApiError> {
    gate.run(HASH_MEMORY, move || verify_blocking(&password, &hash))
        .await
}

/// A real hash of a random password, verified against when an email is unknown, so that
/// "no such account" and "wrong password" take the same time.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_blocking(&uuid::Uuid::new_v4().to_string())
            .unwrap_or_else(|_| "$argon2id$v=19$m=19456,t=2,p=1$invalid".into())
    })
}
