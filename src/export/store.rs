//! What an export reads: every row that belongs to or names the person, each statement written
//! once for both backends (see [`crate::infra::sql`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::StoreError;
use crate::infra::db::Db;
use crate::infra::sql::fetch;

#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub name: String,
    pub age: i32,
    pub bio: String,
    pub breed: Option<String>,
    pub size: Option<String>,
    pub activity_level: String,
    pub is_paused: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Prompt {
    pub position: i32,
    pub question: String,
    pub answer: String,
    pub created_at: DateTime<Utc>,
}

/// A photo row; the export hands out signed URLs instead of its keys.
#[derive(Debug, sqlx::FromRow)]
pub struct Photo {
    pub id: Uuid,
    pub position: i32,
    pub storage_key: String,
    pub thumbnail_key: String,
    pub width: i32,
    pub height: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    pub min_age: i32,
    pub max_age: i32,
    pub max_distance: f64,
    pub activity_level: String,
    pub distance_unit: String,
    pub updated_at: DateTime<Utc>,
}

/// The exact location (only ever shown to its owner).
#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub updated_at: DateTime<Utc>,
}

/// Something the person did about someone else (a like, a pass, a block).
#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Act {
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub id: Uuid,
    pub user_id: Uuid,
    pub reason: String,
    pub details: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    pub id: Uuid,
    /// The partner.
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub id: Uuid,
    pub match_id: Uuid,
    /// The partner.
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// When the person cleared it (`deleteConversation`); the messages are still stored.
    pub cleared_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender_id: Uuid,
    pub recipient_id: Uuid,
    pub kind: String,
    pub content: String,
    pub playground_id: Option<Uuid>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Playground {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub latitude: f64,
    pub longitude: f64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Favorite {
    pub playground_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: Uuid,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub data: Option<String>,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub push_state: String,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPreferences {
    pub matches: bool,
    pub messages: bool,
    pub likes: bool,
    pub push: bool,
    pub updated_at: DateTime<Utc>,
}

/// A device row; the export masks its push token.
#[derive(Debug, sqlx::FromRow)]
pub struct Device {
    pub id: Uuid,
    pub platform: String,
    pub token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// A session: when, never its token hashes.
#[derive(Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Reads a person's rows, one kind at a time.
pub struct ExportStore {
    db: Db,
}

impl ExportStore {
    pub fn new(db: Db) -> Self {
        ExportStore { db }
    }

    pub async fn account(&self, user: Uuid) -> Result<Option<Account>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT id, email, created_at, last_active_at FROM users WHERE id = $1",
            user
        ))
    }

    pub async fn profile(&self, user: Uuid) -> Result<Option<Profile>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT name, age, bio, breed, size, activity_level, is_paused, created_at, updated_at
               FROM profiles WHERE user_id = $1",
            user
        ))
    }

    pub async fn prompts(&self, user: Uuid) -> Result<Vec<Prompt>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT position, question, answer, created_at FROM prompts
              WHERE user_id = $1 ORDER BY position",
            user
        ))
    }

    pub async fn photos(&self, user: Uuid) -> Result<Vec<Photo>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT id, position, storage_key, thumbnail_key, width, height, created_at
               FROM photos WHERE user_id = $1 ORDER BY position",
            user
        ))
    }

    pub async fn preferences(&self, user: Uuid) -> Result<Option<Preferences>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT min_age, max_age, max_distance, activity_level, distance_unit, updated_at
               FROM preferences WHERE user_id = $1",
            user
        ))
    }

    pub async fn location(&self, user: Uuid) -> Result<Option<Location>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT latitude, longitude, updated_at FROM locations WHERE user_id = $1",
            user
        ))
    }

    pub async fn likes(&self, user: Uuid) -> Result<Vec<Act>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT target_id AS user_id, created_at FROM likes
              WHERE user_id = $1 ORDER BY created_at, id",
            user
        ))
    }

    pub async fn passes(&self, user: Uuid) -> Result<Vec<Act>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT target_id AS user_id, created_at FROM passes
              WHERE user_id = $1 ORDER BY created_at, id",
            user
        ))
    }

    pub async fn blocks(&self, user: Uuid) -> Result<Vec<Act>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT blocked_id AS user_id, created_at FROM blocks
              WHERE blocker_id = $1 ORDER BY created_at",
            user
        ))
    }

    pub async fn reports_made(&self, user: Uuid) -> Result<Vec<Report>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT id, reported_id AS user_id, reason, details, status, created_at FROM reports
              WHERE reporter_id = $1 ORDER BY created_at, id",
            user
        ))
    }

    pub async fn matches(&self, user: Uuid) -> Result<Vec<Match>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT id, CASE WHEN user_a = $1 THEN user_b ELSE user_a END AS user_id, created_at
               FROM matches WHERE user_a = $1 OR user_b = $1 ORDER BY created_at, id",
            user
        ))
    }

    pub async fn conversations(&self, user: Uuid) -> Result<Vec<Conversation>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT id, match_id,
                    CASE WHEN user_a = $1 THEN user_b ELSE user_a END AS user_id,
                    created_at,
                    CASE WHEN user_a = $1 THEN a_cleared_at ELSE b_cleared_at END AS cleared_at
               FROM conversations WHERE user_a = $1 OR user_b = $1 ORDER BY created_at, id",
            user
        ))
    }

    /// Up to `limit` of the messages the person sent or received with an id above `after`,
    /// in id (time) order: the export pages through them.
    pub async fn messages_after(
        &self,
        user: Uuid,
        after: Uuid,
        limit: i64,
    ) -> Result<Vec<Message>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT * FROM (
                 SELECT id, conversation_id, sender_id, recipient_id, kind, content,
                        playground_id, read_at, created_at
                   FROM messages WHERE sender_id = $1 AND id > $2
                 UNION ALL
                 SELECT id, conversation_id, sender_id, recipient_id, kind, content,
                        playground_id, read_at, created_at
                   FROM messages WHERE recipient_id = $1 AND id > $2
             ) AS mine ORDER BY id LIMIT $3",
            user,
            after,
            limit
        ))
    }

    pub async fn playgrounds_added(&self, user: Uuid) -> Result<Vec<Playground>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT id, name, description, latitude, longitude, created_at FROM playgrounds
              WHERE created_by = $1 ORDER BY created_at, id",
            user
        ))
    }

    pub async fn favorites(&self, user: Uuid) -> Result<Vec<Favorite>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT f.playground_id, p.name, f.created_at
               FROM playground_favorites f JOIN playgrounds p ON p.id = f.playground_id
              WHERE f.user_id = $1 ORDER BY f.created_at",
            user
        ))
    }

    /// Up to `limit` notifications with an id above `after`, oldest first.
    pub async fn notifications_after(
        &self,
        user: Uuid,
        after: Uuid,
        limit: i64,
    ) -> Result<Vec<Notification>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT id, kind, title, body, data, read_at, created_at, push_state
               FROM notifications WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            user,
            after,
            limit
        ))
    }

    pub async fn notification_preferences(
        &self,
        user: Uuid,
    ) -> Result<Option<NotificationPreferences>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT matches, messages, likes, push, updated_at FROM notification_preferences
              WHERE user_id = $1",
            user
        ))
    }

    pub async fn devices(&self, user: Uuid) -> Result<Vec<Device>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT id, platform, token, created_at, last_seen_at FROM devices
              WHERE user_id = $1 ORDER BY created_at, id",
            user
        ))
    }

    pub async fn sessions(&self, user: Uuid) -> Result<Vec<Session>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT id, created_at, last_used_at, revoked_at FROM sessions
              WHERE user_id = $1 ORDER BY created_at, id",
            user
        ))
    }
}
