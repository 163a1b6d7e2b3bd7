//! PostgreSQL implementation of [`NotificationStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{NotificationRecord, NotificationStore, Preferences, PreferencesPatch, PushState};
use crate::error::StoreError;

pub struct PgNotificationStore {
    pool: PgPool,
}

impl PgNotificationStore {
    pub fn new(pool: PgPool) -> Self {
        PgNotificationStore { pool }
    }
}

const COLUMNS: &str =
    "id, user_id, kind, title, body, data, read_at, created_at, push_state, push_attempts";

#[async_trait]
impl NotificationStore for PgNotificationStore {
    /// Commits without waiting for the WAL flush (`synchronous_commit` off for this statement's
    /// transaction only): a crash may lose the last fraction of a second of notifications,
    /// never a message (messages commit durably before their ack).
    async fn insert_wanted(
        &self,
        n: &NotificationRecord,
        offline: bool,
    ) -> Result<Option<PushState>, StoreError> {
        // `pupmatch_notify` (migration 0007) is also called inside `pupmatch_like`.
        Ok(sqlx::query_scalar(
            "SELECT pupmatch_notify($1, $2, $3, $4, $5, $6, $7, $8)
               FROM (SELECT set_config('synchronous_commit', 'off', true)) o",
        )
        .bind(n.id)
        .bind(n.user_id)
        .bind(n.kind)
        .bind(&n.title)
        .bind(&n.body)
        .bind(&n.data)
        .bind(n.created_at)
        .bind(offline)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn list(
        &self,
        user_id: Uuid,
        before: Option<Uuid>,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications
              WHERE user_id = $1 AND ($2::uuid IS NULL OR id < $2)
                AND (NOT $3 OR read_at IS NULL)
              ORDER BY id DESC LIMIT $4"
        )))
        .bind(user_id)
        .bind(before)
        .bind(unread_only)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn mark_read(
        &self,
        user_id: Uuid,
        ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE notifications SET read_at = $3
              WHERE user_id = $1 AND id = ANY($2) AND read_at IS NULL",
        )
        .bind(user_id)
        .bind(ids)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn preferences(&self, user_id: Uuid) -> Result<Preferences, StoreError> {
        let found: Option<Preferences> = sqlx::query_as(
            "SELECT matches, messages, likes, push FROM notification_preferences WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.unwrap_or_default())
    }

    async fn update_preferences(
        &self,
        user_id: Uuid,
        p: PreferencesPatch,
        now: DateTime<Utc>,
    ) -> Result<Preferences, StoreError> {
        Ok(sqlx::query_as(
            "INSERT INTO notification_preferences (user_id, matches, messages, likes, push, updated_at)
             VALUES ($1, COALESCE($2, true), COALESCE($3, true), COALESCE($4, true), COALESCE($5, true), $6)
             ON CONFLICT (user_id) DO UPDATE SET
                 matches = COALESCE($2, notification_preferences.matches),
                 messages = COALESCE($3, notification_preferences.messages),
                 likes = COALESCE($4, notification_preferences.likes),
                 push = COALESCE($5, notification_preferences.push),
                 updated_at = $6
             RETURNING matches, messages, likes, push",
        )
        .bind(user_id)
        .bind(p.matches)
        .bind(p.messages)
        .bind(p.likes)
        .bind(p.push)
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn register_device(
        &self,
        user_id: Uuid,
        token: &str,
        platform: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO devices (id, user_id, token, platform, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (token) DO UPDATE SET
                 user_id = EXCLUDED.user_id, platform = EXCLUDED.platform,
                 last_seen_at = EXCLUDED.last_seen_at",
        )
        .bind(Uuid::now_v7())
        .bind(user_id)
        .bind(token)
        .bind(platform)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(super::PRUNE_DEVICES)
            .bind(user_id)
            .bind(super::MAX_DEVICES)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn unregister_device(&self, user_id: Uuid, token: &str) -> Result<bool, StoreError> {
        Ok(
            sqlx::query("DELETE FROM devices WHERE user_id = $1 AND token = $2")
                .bind(user_id)
                .bind(token)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    async fn forget_device(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM devices WHERE token = $1")
            .bind(token)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn device_tokens(&self, user_id: Uuid) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT token FROM devices WHERE user_id = $1 ORDER BY created_at")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn claim_due_pushes(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE notifications SET next_attempt_at = $2
              WHERE id IN (SELECT id FROM notifications
                            WHERE push_state = '{pending}' AND next_attempt_at <= $1
                            ORDER BY next_attempt_at LIMIT $3
                            FOR UPDATE SKIP LOCKED)
              RETURNING {COLUMNS}",
            pending = PushState::Pending.as_db()
        )))
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn set_push_state(
        &self,
        id: Uuid,
        state: PushState,
        attempts: i32,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE notifications SET push_state = $2, push_attempts = $3, next_attempt_at = $4
              WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(attempts)
        .bind(next_attempt_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
