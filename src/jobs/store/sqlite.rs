//! SQLite implementation of [`JobStore`]. Writes go through the database's writer connection.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::{JobRun, JobStore};
use crate::error::StoreError;
use crate::infra::db::sqlite_writer;
use crate::infra::time::sqlite_ts;

pub struct SqliteJobStore {
    pool: SqlitePool,
}

impl SqliteJobStore {
    pub fn new(pool: SqlitePool) -> Self {
        SqliteJobStore { pool }
    }

    async fn delete(&self, sql: &'static str, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query(sql)
            .bind(sqlite_ts(at))
            .execute(&sqlite_writer(&self.pool))
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl JobStore for SqliteJobStore {
    async fn claim(
        &self,
        job: &str,
        tick: i64,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let won: Option<String> = sqlx::query_scalar(
            "INSERT INTO job_leases (job, tick, holder, claimed_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (job) DO UPDATE
                SET tick = excluded.tick, holder = excluded.holder, claimed_at = excluded.claimed_at
              WHERE job_leases.tick < excluded.tick
             RETURNING holder",
        )
        .bind(job)
        .bind(tick)
        .bind(holder)
        .bind(sqlite_ts(now))
        .fetch_optional(&sqlite_writer(&self.pool))
        .await?;
        Ok(won.is_some())
    }

    async fn record_run(&self, run: &JobRun) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO job_runs (id, job, tick, worker, started_at, finished_at, attempts,
                                   outcome, items, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .bind(run.id)
        .bind(run.job)
        .bind(run.tick)
        .bind(&run.worker)
        .bind(sqlite_ts(run.started_at))
        .bind(sqlite_ts(run.finished_at))
        .bind(run.attempts)
        .bind(if run.ok { "ok" } else { "failed" })
        .bind(run.items)
        .bind(&run.error)
        .execute(&sqlite_writer(&self.pool))
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
              WHERE u.last_active_at >= ?1
              ORDER BY u.last_active_at DESC LIMIT ?2",
        )
        .bind(sqlite_ts(since))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_expired_tokens(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(self
            .delete("DELETE FROM refresh_tokens WHERE expires_at < ?1", now)
            .await?
            + self
                .delete(
                    "DELETE FROM password_reset_tokens WHERE expires_at < ?1",
                    now,
                )
                .await?)
    }

    async fn delete_passes_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.delete("DELETE FROM passes WHERE created_at < ?1", before)
            .await
    }

    async fn delete_read_notifications_before(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.delete(
            "DELETE FROM notifications WHERE read_at IS NOT NULL AND created_at < ?1",
            before,
        )
        .await
    }

    async fn delete_runs_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.delete("DELETE FROM job_runs WHERE started_at < ?1", before)
            .await
    }

    async fn referenced_blobs(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        let list = serde_json::to_string(keys).map_err(|e| StoreError::Other(e.into()))?;
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT storage_key FROM photos WHERE storage_key IN (SELECT value FROM json_each(?1))
             UNION ALL
             SELECT thumbnail_key FROM photos WHERE thumbnail_key IN (SELECT value FROM json_each(?1))
             UNION ALL
             SELECT k.value FROM reports r, json_each(r.reported_photo_keys) k
              WHERE r.status = 'OPEN' AND k.value IN (SELECT value FROM json_each(?1))",
        )
        .bind(list)
        .fetch_all(&self.pool)
        .await?;
        Ok(found.into_iter().collect())
    }
}
