//! Notification storage: the inbox, per-user preferences, devices, and the push queue.

mod postgres;
pub(crate) mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::infra::stored::stored_enum;

/// Most devices a person may have registered; registering one more forgets the least recently
/// seen.
pub const MAX_DEVICES: i64 = 10;

/// Keeps only a person's [`MAX_DEVICES`] most recently seen devices (same text on both
/// backends: `$1` the person, `$2` the number kept).
const PRUNE_DEVICES: &str = "DELETE FROM devices WHERE user_id = $1 AND id NOT IN (
         SELECT id FROM devices WHERE user_id = $1 ORDER BY last_seen_at DESC, id DESC LIMIT $2)";

pub use postgres::PgNotificationStore;
pub use sqlite::SqliteNotificationStore;

use crate::error::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NotificationRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    pub data: Option<String>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub push_state: PushState,
    pub push_attempts: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Preferences {
    pub matches: bool,
    pub messages: bool,
    pub likes: bool,
    pub push: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            matches: true,
            messages: true,
            likes: true,
            push: true,
        }
    }
}

/// A partial update of [`Preferences`]: `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreferencesPatch {
    pub matches: Option<bool>,
    pub messages: Option<bool>,
    pub likes: Option<bool>,
    pub push: Option<bool>,
}

/// What a notification is about (GraphQL `NotificationKind`).
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    Match,
    Message,
    Like,
    /// From the service itself (a moderator's warning).
    System,
}
stored_enum!(NotificationKind { Match => "MATCH", Message => "MESSAGE", Like => "LIKE", System => "SYSTEM" });

/// Where a notification's push stands (`notifications.push_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// No push wanted (the person was online, or has push off, or no device).
    NotWanted,
    /// Waiting for (another) attempt at `next_attempt_at`.
    Pending,
    Sent,
    /// Gave up after the last attempt.
    Failed,
}
stored_enum!(PushState { NotWanted => "NONE", Pending => "PENDING", Sent => "SENT", Failed => "FAILED" });

#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Stores the notification if the person's preferences want its kind, in one statement.
    /// Its push is `PENDING` (due at once) when `offline` and the person has push on and a
    /// registered device, else
    /// `NONE`. Returns the push state stored, or `None` when the preferences declined it.
    async fn insert_wanted(
        &self,
        n: &NotificationRecord,
        offline: bool,
    ) -> Result<Option<PushState>, StoreError>;

    /// The user's notifications, newest first, older than `before`.
    async fn list(
        &self,
        user_id: Uuid,
        before: Option<Uuid>,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<NotificationRecord>, StoreError>;

    /// Marks the user's listed notifications read; how many changed.
    async fn mark_read(
        &self,
        user_id: Uuid,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    async fn preferences(&self, user_id: Uuid) -> Result<Preferences, StoreError>;

    async fn update_preferences(
        &self,
        user_id: Uuid,
        patch: PreferencesPatch,
        now: DateTime<Utc>,
    ) -> Result<Preferences, StoreError>;

    /// Registers a device token for the user (a token moves to its latest user).
    async fn register_device(
        &self,
        user_id: Uuid,
        token: &str,
        platform: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Removes the user's device token; false when they had no such token.
    async fn unregister_device(&self, user_id: Uuid, token: &str) -> Result<bool, StoreError>;

    /// Forgets a token the push service reported as no longer valid.
    async fn forget_device(&self, token: &str) -> Result<(), StoreError>;

    async fn device_tokens(&self, user_id: Uuid) -> Result<Vec<String>, StoreError>;

    /// Pending pushes due by `now`, oldest first, claimed for a while (their next attempt is
    /// moved to `lease_until`) so that two workers never send the same one.
    async fn claim_due_pushes(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<NotificationRecord>, StoreError>;

    /// Records a push attempt's result.
    async fn set_push_state(
        &self,
        id: Uuid,
        state: PushState,
        attempts: i32,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
}
