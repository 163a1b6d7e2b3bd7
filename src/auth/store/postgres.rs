//! PostgreSQL implementation of [`AuthStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{AuthStore, NewRefreshToken, NewSession, Rotation};
use crate::auth::model::UserRecord;
use crate::error::{StoreError, on_constraint};

pub struct PgAuthStore {
    pool: PgPool,
}

impl PgAuthStore {
    pub fn new(pool: PgPool) -> Self {
        PgAuthStore { pool }
    }
}

async fn insert_session(
    tx: &mut Transaction<'_, Postgres>,
    s: &NewSession,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, last_used_at) VALUES ($1, $2, $3, $3)",
    )
    .bind(s.session_id)
    .bind(s.user_id)
    .bind(s.token.created_at)
    .execute(&mut **tx)
    .await?;
    insert_refresh_token(tx, s.session_id, &s.token).await?;
    sqlx::query("UPDATE users SET last_active_at = $2 WHERE id = $1")
        .bind(s.user_id)
        .bind(s.token.created_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert_refresh_token(
    tx: &mut Transaction<'_, Postgres>,
    session_id: Uuid,
    t: &NewRefreshToken,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(t.id)
    .bind(session_id)
    .bind(&t.hash[..])
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    session_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

#[async_trait]
impl AuthStore for PgAuthStore {
    async fn create_user(&self, user: &UserRecord, session: &NewSession) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, created_at, updated_at, last_active_at)
             VALUES ($1, $2, $3, $4, $4, $4)",
        )
        .bind(user.id)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| on_constraint(e, "an account with this email already exists"))?;
        sqlx::query("INSERT INTO notification_preferences (user_id, updated_at) VALUES ($1, $2)")
            .bind(user.id)
            .bind(user.created_at)
            .execute(&mut *tx)
            .await?;
        insert_session(&mut tx, session).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, email, password_hash, created_at FROM users WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, email, password_hash, created_at FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn session_of_refresh_token(
        &self,
        presented: &[u8; 32],
        created_after: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<(Uuid, Uuid)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT s.user_id, s.id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
              WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > $3
                AND t.created_at > $2 AND s.revoked_at IS NULL",
        )
        .bind(&presented[..])
        .bind(created_after)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn restriction(
        &self,
        user_id: Uuid,
    ) -> Result<(Option<DateTime<Utc>>, Option<DateTime<Utc>>), StoreError> {
        Ok(
            sqlx::query_as("SELECT suspended_until, banned_at FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?
                .unwrap_or((None, None)),
        )
    }

    async fn email_banned(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM banned_emails WHERE email_hash = $1)")
                .bind(&hash[..])
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_session(&mut tx, session).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented: &[u8; 32],
        next: &NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Row lock: two concurrent presentations of one token serialise here, and the second
        // sees the first one's `used_at` (a replay).
        let row: Option<TokenRow> = sqlx::query_as(
            "SELECT rt.session_id, s.user_id, rt.expires_at, rt.used_at, s.revoked_at
               FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
              WHERE rt.token_hash = $1
              FOR UPDATE OF rt, s",
        )
        .bind(&presented[..])
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Rotation::Invalid);
        };
        if row.revoked_at.is_some() {
            return Ok(Rotation::Invalid);
        }
        if row.used_at.is_some() {
            sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE id = $1")
                .bind(row.session_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Rotation::Replayed {
                user_id: row.user_id,
                session_id: row.session_id,
            });
        }
        if row.expires_at <= now {
            return Ok(Rotation::Invalid);
        }
        sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1")
            .bind(&presented[..])
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_refresh_token(&mut tx, row.session_id, next).await?;
        sqlx::query("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
            .bind(row.session_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE users SET last_active_at = $2 WHERE id = $1")
            .bind(row.user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Rotation::Rotated {
            user_id: row.user_id,
            session_id: row.session_id,
        })
    }

    async fn revoke_session_by_token(
        &self,
        presented: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<(Uuid, Uuid)>, StoreError> {
        Ok(sqlx::query_as(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2)
              WHERE id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1)
          RETURNING user_id, id",
        )
        .bind(&presented[..])
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn active_sessions(
        &self,
        user_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM sessions
              WHERE user_id = $1 AND revoked_at IS NULL AND last_used_at >= $2",
        )
        .bind(user_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn create_reset_token(
        &self,
        user_id: Uuid,
        token: &NewRefreshToken,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO password_reset_tokens (id, user_id, token_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token.id)
        .bind(user_id)
        .bind(&token.hash[..])
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn reset_password(
        &self,
        presented: &[u8; 32],
        new_password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let user_id: Option<Uuid> = sqlx::query_scalar(
            "UPDATE password_reset_tokens SET used_at = $2
              WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
              RETURNING user_id",
        )
        .bind(&presented[..])
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(user_id) = user_id else {
            return Ok(None);
        };
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(new_password_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        use_up_reset_tokens(&mut tx, user_id, now).await?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(user_id))
    }

    async fn change_password(
        &self,
        user_id: Uuid,
        new_password_hash: &str,
        keep_session: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(new_password_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = $3
              WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(keep_session)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        use_up_reset_tokens(&mut tx, user_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_user(&self, user_id: Uuid) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let keys: Vec<(String, String)> = sqlx::query_as(
            "SELECT storage_key, thumbnail_key FROM photos WHERE user_id = $1 FOR UPDATE",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(keys.into_iter().flat_map(|(a, b)| [a, b]).collect())
    }
}

/// Every outstanding reset link of the user stops working (after a reset or a password change).
async fn use_up_reset_tokens(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE password_reset_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
