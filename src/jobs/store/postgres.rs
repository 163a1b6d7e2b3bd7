//! PostgreSQL implementation of [`JobStore`].

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{JobRun, JobStore};
use crate::error::StoreError;

pub struct PgJobStore {
    pool: PgPool,
}

impl PgJobStore {
    pub fn new(pool: PgPool) -> Self {
        PgJobStore { pool }
    }
}

#[async_trait]
impl JobStore for PgJobStore {
    async fn claim(
        &self,
        job: &str,
        tick: i64,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let won: Option<String> = sqlx::query_scalar(
            "INSERT INTO job_leases (job, tick, holder, claimed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (job) DO UPDATE
                SET tick = EXCLUDED.tick, holder = EXCLUDED.holder, claimed_at = EXCLUDED.claimed_at
              WHERE job_leases.tick < EXCLUDED.tick
             RETURNING holder",
        )
        .bind(job)
        .bind(tick)
        .bind(holder)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(won.is_some())
    }

    async fn record_run(&self, run: &JobRun) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO job_runs (id, job, tick, worker, started_at, finished_at, attempts,
                                   outcome, items, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(run.id)
        .bind(run.job)
        .bind(run.tick)
        .bind(&run.worker)
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(run.attempts)
        .bind(if run.ok { "ok" } else { "failed" })
        .bind(run.items)
        .bind(&run.error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn recently_active(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT u.id FROM users u JOIN locations l ON l.user_id = u.id
              WHERE u.last_active_at >= $1
              ORDER BY u.last_active_at DESC LIMIT $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_expired_tokens(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let refresh = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let reset = sqlx::query("DELETE FROM password_reset_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(refresh.rows_affected() + reset.rows_affected())
    }

    async fn delete_passes_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM passes WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn delete_read_notifications_before(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM notifications WHERE read_at IS NOT NULL AND created_at < $1")
                .bind(before)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }

    async fn delete_runs_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM job_runs WHERE started_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn referenced_blobs(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT storage_key FROM photos WHERE storage_key = ANY($1)
             UNION ALL
             SELECT thumbnail_key FROM photos WHERE thumbnail_key = ANY($1)
             UNION ALL
             SELECT k FROM reports r, json_array_elements_text(r.reported_photo_keys::json) k
              WHERE r.status = 'OPEN' AND k = ANY($1)",
        )
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        Ok(found.into_iter().collect())
    }
}
