//! Auth types. Inputs are parsed into newtypes at the API edge: past it, only valid values exist.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;

/// A normalised (trimmed, lower-cased), syntactically valid email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, ApiError> {
        let email = raw.trim().to_lowercase();
        let invalid = || ApiError::bad_input("email", "email is not a valid address");
        if email.len() < 3
            || email.len() > 254
            || email.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let domain_ok = domain.contains('.')
            && domain.len() <= 253
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !(local_ok && domain_ok) || email.parse::<lettre::Address>().is_err() {
            return Err(invalid());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password of 8..=128 characters. Never printed.
pub struct Password(SecretString);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    /// `field` names the input in the error (`password`, `newPassword`).
    pub fn parse(raw: &str, field: &str) -> Result<Password, ApiError> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(ApiError::bad_input(
                field,
                format!("password must be at least {} characters", Self::MIN_CHARS),
            ));
        }
        if n > Self::MAX_CHARS {
            return Err(ApiError::bad_input(
                field,
                format!("password must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        Ok(Password(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// An account as stored. `password_hash` never leaves the auth service.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// When the owner confirmed the address (from the link of a confirmation email).
    pub email_confirmed_at: Option<DateTime<Utc>>,
}

/// What (almost) never changes about an account: shown by `me`, and cached with its sessions
/// so that showing it needs no database read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
    /// Whether the address is confirmed (it changes once: confirming drops the cached
    /// account). Accounts cached before confirmation existed were all confirmed.
    #[serde(default = "confirmed_before_confirmation_existed")]
    pub email_confirmed: bool,
}

fn confirmed_before_confirmation_existed() -> bool {
    true
}

impl From<UserRecord> for Account {
    fn from(user: UserRecord) -> Self {
        Account {
            id: user.id,
            email: user.email,
            created_at: user.created_at,
            email_confirmed: user.email_confirmed_at.is_some(),
        }
    }
}

/// A person's account and the sessions whose access tokens can still be valid (the session
/// cache's value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedIn {
    pub account: Account,
    pub sessions: Vec<Uuid>,
}

/// What sign-in, registration and refresh hand back.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserRecord,
}

/// A console sign-in: the account, and the secret for the console's cookie.
pub struct ConsoleSignIn {
    pub user_id: Uuid,
    pub cookie: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        let e = Email::parse("  Rex.Owner+dogs@Example.COM ").expect("valid");
        assert_eq!(e.as_str(), "rex.owner+dogs@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "a",
            "no-at-sign",
            "@example.com",
            "rex@",
            "rex@localhost",
            "rex@@example.com",
            "rex @example.com",
            "rex@exa mple.com",
            "rex@-example.com",
            ".rex@example.com",
            "rex..owner@example.com",
            "rex@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn password_length_is_counted_in_characters() {
        assert!(Password::parse("short", "password").is_err());
        assert!(Password::parse("ünïcödé", "password").is_err()); // 7 chars, 11 bytes
        assert!(Password::parse("ünïcödé!", "password").is_ok());
        assert!(Password::parse(&"x".repeat(128), "password").is_ok());
        assert!(Password::parse(&"x".repeat(129), "password").is_err());
    }
}
