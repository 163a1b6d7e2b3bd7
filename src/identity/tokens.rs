//! Access tokens (JWT, HS256 pinned, 24 h) and opaque secrets (refresh and reset tokens).
//!
//! Access tokens carry the user (`sub`) and the session (`sid`); the session is checked on use,
//! so logout, password changes and account deletion end them at once. Opaque tokens are 32
//! random bytes, base64url; only their SHA-256 is stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Lifetime of an access token.
pub const ACCESS_TOKEN_TTL: Duration = Duration::hours(24);
/// Lifetime of a refresh token (each rotation issues a fresh one).
pub const REFRESH_TOKEN_TTL: Duration = Duration::days(30);
/// Lifetime of a password-reset token.
pub const RESET_TOKEN_TTL: Duration = Duration::hours(1);
/// How long an email confirmation link works.
pub const CONFIRMATION_TOKEN_TTL: Duration = Duration::hours(48);
/// How long a moderation console sign-in lasts (its one token is never refreshed).
pub const CONSOLE_SESSION_TTL: Duration = Duration::hours(8);

const ISSUER: &str = "pupmatch";

/// The JWT claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The session (refresh-token family) this token belongs to.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

/// Why a presented access token was refused. Clients only ever see "invalid or expired token".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
}

/// Signs and verifies access tokens with one HMAC secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Root of the keys derived for other purposes ([`derive_key`]).
    root: [u8; 32],
}

/// A key for `purpose`, derived from the server secret (HMAC-SHA-256 of the purpose under a
/// hash of the secret): different purposes never share a key.
pub fn derive_key(keys: &TokenKeys, purpose: &str) -> [u8; 32] {
    use hmac::Mac;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(&keys.root).expect("HMAC takes any key length");
    mac.update(b"pupmatch derived key v1 ");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

impl TokenKeys {
    pub fn new(secret: &SecretString) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        // Only HS256: `alg: none` and every other algorithm are refused.
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        TokenKeys {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            root: {
                use sha2::Digest;
                sha2::Sha256::digest(bytes).into()
            },
        }
    }

    /// Issues an access token valid until `now + ACCESS_TOKEN_TTL`.
    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(String, DateTime<Utc>)> {
        let expires_at = now + ACCESS_TOKEN_TTL;
        let claims = Claims {
            sub: user_id,
            sid: session_id,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            iss: ISSUER.into(),
        };
        Ok((self.sign(&claims)?, expires_at))
    }

    /// Signs arbitrary claims (tests use it to make expired tokens).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }

    /// Verifies signature, algorithm, issuer and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// A fresh opaque token: what the client gets, and the hash the database keeps.
pub fn new_opaque_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_opaque(&token);
    (token, hash)
}

/// SHA-256 of an opaque token as presented. (Random 256-bit tokens need no slow hash.)
pub fn hash_opaque(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&SecretString::from(
            "a-test-secret-that-is-long-enough-0123456789",
        ))
    }

    #[test]
    fn a_token_from_another_key_is_invalid() {
        let other = TokenKeys::new(&SecretString::from(
            "another-secret-that-is-long-enough-987654",
        ));
        let (token, _) = other
            .issue(Uuid::now_v7(), Uuid::now_v7(), Utc::now())
            .expect("signs");
        assert_eq!(keys().verify(&token), Err(TokenError::Invalid));
    }

    #[test]
    fn opaque_tokens_are_unique_and_hash_stably() {
        let (a, ha) = new_opaque_token();
        let (b, hb) = new_opaque_token();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert_eq!(hash_opaque(&a), ha);
        assert_eq!(a.len(), 43);
    }
}
