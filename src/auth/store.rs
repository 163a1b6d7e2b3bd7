//! What the auth service needs from the database. One implementation per backend, side by side.
//! Every method that writes more than one row runs in one transaction.

mod postgres;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use postgres::PgAuthStore;
pub use sqlite::SqliteAuthStore;

use super::model::UserRecord;
use crate::error::StoreError;

/// A new session with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub token: NewRefreshToken,
}

/// A refresh token to store (hash only).
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub id: Uuid,
    pub hash: [u8; 32],
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: it is now used, and the successor is stored in the same session.
    Rotated { user_id: Uuid, session_id: Uuid },
    /// The token had already been rotated: someone replayed it, so the whole session (token
    /// family) has been revoked.
    Replayed { user_id: Uuid, session_id: Uuid },
    /// Unknown, expired, or its session has ended.
    Invalid,
}

#[async_trait]
pub trait AuthStore: Send + Sync {
    /// Inserts the account, its default notification preferences and its first session.
    /// `Conflict` when the email is taken.
    async fn create_user(&self, user: &UserRecord, session: &NewSession) -> Result<(), StoreError>;

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;

    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError>;

    /// Starts a session (login) and records the user as active.
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;

    /// Rotates the refresh token whose hash is `presented`, storing `next` as its successor.
    async fn rotate_refresh_token(
        &self,
        presented: &[u8; 32],
        next: &NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError>;

    /// Ends the session that `presented` belongs to: its user and session, or `None` when no
    /// such token exists.
    async fn revoke_session_by_token(
        &self,
        presented: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<(Uuid, Uuid)>, StoreError>;

    /// The user's sessions that are not revoked and were used (signed in or refreshed) at or
    /// after `since`.
    async fn active_sessions(
        &self,
        user_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// Stores a reset token (hash only).
    async fn create_reset_token(
        &self,
        user_id: Uuid,
        token: &NewRefreshToken,
    ) -> Result<(), StoreError>;

    /// Consumes a valid, unused, unexpired reset token: sets the new password hash, marks every
    /// reset token of the user used, and revokes every session. The user id, or `None` when the
    /// token is not valid (nothing changes then).
    async fn reset_password(
        &self,
        presented: &[u8; 32],
        new_password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError>;

    /// Sets a new password hash, revokes every session except `keep_session`, and uses up
    /// every outstanding reset token (a reset link sent before the change no longer works).
    async fn change_password(
        &self,
        user_id: Uuid,
        new_password_hash: &str,
        keep_session: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The user and session of a refresh token that is unused, unexpired, made after
    /// `created_after`, and whose session is active (the console's cookie session).
    async fn session_of_refresh_token(
        &self,
        presented: &[u8; 32],
        created_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<(Uuid, Uuid)>, StoreError>;

    /// The moderation restriction on signing in: suspended until, banned since.
    async fn restriction(
        &self,
        user_id: Uuid,
    ) -> Result<(Option<DateTime<Utc>>, Option<DateTime<Utc>>), StoreError>;

    /// Whether the keyed hash of an email belongs to a banned account.
    async fn email_banned(&self, hash: &[u8; 32]) -> Result<bool, StoreError>;

    /// Deletes the account and (by cascade) every row of it. Returns the blob keys its rows
    /// pointed to, for the caller to delete from object storage after the commit.
    async fn delete_user(&self, user_id: Uuid) -> Result<Vec<String>, StoreError>;
}
