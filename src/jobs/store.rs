//! SQL of the background jobs: leases, the run log, and the cleanup statements, written once
//! for both backends (see [`crate::infra::sql`]); writes go through SQLite's writer connection.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::StoreError;
use crate::infra::db::Db;
use crate::infra::sql::{Backend, Sql, Ts, execute, fetch_scalar, returning_scalar};

/// One finished run of a job.
#[derive(Debug, Clone)]
pub struct JobRun {
    pub id: Uuid,
    pub job: &'static str,
    pub tick: i64,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub attempts: i32,
    pub ok: bool,
    pub items: i64,
    pub error: Option<String>,
}

/// Which of the keys `$1` a photo row or an open report's evidence points to.
const REFERENCED_BLOBS: Sql = Sql {
    postgres: "SELECT storage_key FROM photos WHERE storage_key = ANY($1)
               UNION ALL
               SELECT thumbnail_key FROM photos WHERE thumbnail_key = ANY($1)
               UNION ALL
               SELECT k FROM reports r, json_array_elements_text(r.reported_photo_keys::json) k
                WHERE r.status = 'OPEN' AND k = ANY($1)",
    sqlite: "SELECT storage_key FROM photos
              WHERE storage_key IN (SELECT value FROM json_each($1))
             UNION ALL
             SELECT thumbnail_key FROM photos
              WHERE thumbnail_key IN (SELECT value FROM json_each($1))
             UNION ALL
             SELECT k.value FROM reports r, json_each(r.reported_photo_keys) k
              WHERE r.status = 'OPEN' AND k.value IN (SELECT value FROM json_each($1))",
};

/// Leases, the run log, and the cleanups.
#[derive(Clone)]
pub struct JobStore {
    db: Db,
}

impl JobStore {
    pub fn new(db: &Db) -> Self {
        JobStore { db: db.clone() }
    }

    /// Runs a `DELETE` whose only parameter is a time; how many rows went.
    async fn delete(&self, sql: &'static str, at: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(execute!(&self.db, sql, Ts(at)))
    }

    /// Takes tick `tick` of `job` for `holder`: true for exactly one caller per tick (the row
    /// moves forward only from an older tick).
    pub async fn claim(
        &self,
        job: &str,
        tick: i64,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let won: Option<String> = returning_scalar!(
            &self.db,
            fetch_optional,
            "INSERT INTO job_leases (job, tick, holder, claimed_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (job) DO UPDATE
                    SET tick = EXCLUDED.tick, holder = EXCLUDED.holder,
                        claimed_at = EXCLUDED.claimed_at
                  WHERE job_leases.tick < EXCLUDED.tick
                 RETURNING holder",
            job,
            tick,
            holder,
            Ts(now)
        );
        Ok(won.is_some())
    }

    pub async fn record_run(&self, run: &JobRun) -> Result<(), StoreError> {
        execute!(
            &self.db,
            "INSERT INTO job_runs (id, job, tick, worker, started_at, finished_at, attempts,
                                       outcome, items, error)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            run.id,
            run.job,
            run.tick,
            &run.worker,
            Ts(run.started_at),
            Ts(run.finished_at),
            run.attempts,
            if run.ok { "ok" } else { "failed" },
            run.items,
            &run.error
        );
        Ok(())
    }

    /// People active since `since` who have a location, at most `limit`, most recent first.
    pub async fn recently_active(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(fetch_scalar!(
            &self.db,
            fetch_all,
            "SELECT u.id FROM users u JOIN locations l ON l.user_id = u.id
                  WHERE u.last_active_at >= $1
                  ORDER BY u.last_active_at DESC LIMIT $2",
            Ts(since),
            limit
        ))
    }

    /// Refresh, password-reset and email confirmation tokens past their expiry.
    pub async fn delete_expired_tokens(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(self
            .delete("DELETE FROM refresh_tokens WHERE expires_at < $1", now)
            .await?
            + self
                .delete(
                    "DELETE FROM password_reset_tokens WHERE expires_at < $1",
                    now,
                )
                .await?
            + self
                .delete(
                    "DELETE FROM email_confirmation_tokens WHERE expires_at < $1",
                    now,
                )
                .await?)
    }

    /// Failed sign-ins recorded before `before`.
    pub async fn delete_sign_in_failures_before(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.delete("DELETE FROM sign_in_failures WHERE failed_at < $1", before)
            .await
    }

    /// Records of like notices sent before `before` (a like after that tells its person again).
    pub async fn delete_like_notices_before(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.delete("DELETE FROM like_notices WHERE sent_at < $1", before)
            .await
    }

    /// Places nobody has saved since `before` (added before it, and no favourite of theirs
    /// left after it).
    pub async fn delete_unsaved_places(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.delete(
            "DELETE FROM playgrounds
              WHERE created_at < $1 AND (last_unsaved_at IS NULL OR last_unsaved_at < $1)
                AND NOT EXISTS (SELECT 1 FROM playground_favorites f
                                 WHERE f.playground_id = playgrounds.id)",
            before,
        )
        .await
    }

    /// Tombstones of accounts deleted before `before`.
    pub async fn delete_tombstones_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.delete("DELETE FROM tombstones WHERE deleted_at < $1", before)
            .await
    }

    /// Introductions made before `before` (a person served again is introduced again).
    pub async fn delete_introductions_before(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.delete("DELETE FROM introductions WHERE introduced_at < $1", before)
            .await
    }

    pub async fn delete_passes_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.delete("DELETE FROM passes WHERE created_at < $1", before)
            .await
    }

    /// Read notifications created before `before`.
    pub async fn delete_read_notifications_before(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.delete(
            "DELETE FROM notifications WHERE read_at IS NOT NULL AND created_at < $1",
            before,
        )
        .await
    }

    pub async fn delete_runs_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.delete("DELETE FROM job_runs WHERE started_at < $1", before)
            .await
    }

    /// Which of `keys` a photo row points to (as its image or its thumbnail), or an open
    /// report keeps as evidence (its snapshot of the reported profile).
    pub async fn referenced_blobs(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        let found: Vec<String> = match &self.db {
            Db::Postgres(pool) => {
                sqlx::query_scalar(pool.pick(REFERENCED_BLOBS))
                    .bind(keys)
                    .fetch_all(pool)
                    .await?
            }
            Db::Sqlite(pool) => {
                let list = serde_json::to_string(keys).map_err(|e| StoreError::Other(e.into()))?;
                sqlx::query_scalar(pool.pick(REFERENCED_BLOBS))
                    .bind(list)
                    .fetch_all(pool)
                    .await?
            }
        };
        Ok(found.into_iter().collect())
    }
}
