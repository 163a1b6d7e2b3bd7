//! Who is calling: the tokens a client presents ([`tokens`]), the signed-in person they stand
//! for ([`AuthUser`]), and the session check every entry point asks of the accounts domain
//! ([`Sessions`], which `auth` implements). It sits below the domains so that what every
//! resolver shares ([`crate::resolvers`]) can name the signed-in person without depending on
//! accounts.

pub mod tokens;

use uuid::Uuid;

use crate::error::ApiError;
use tokens::Claims;

/// The signed-in caller of a request: who, and through which session (refresh-token family).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

/// The session check: whether verified claims still stand for a live session of a usable
/// account, and whether that account's email address is confirmed where that is required.
#[async_trait::async_trait]
pub trait Sessions: Send + Sync {
    /// The signed-in person, or UNAUTHENTICATED (the session ended, the account is gone) or
    /// FORBIDDEN (the account is suspended or banned).
    async fn signed_in(&self, claims: &Claims) -> Result<AuthUser, ApiError>;

    /// FORBIDDEN, saying so, when the address is not confirmed and confirmation is required.
    async fn confirmed(&self, user: AuthUser) -> Result<(), ApiError>;
}
