//! SQL of the background jobs: leases, the run log, and the cleanup statements.

mod postgres;
mod sqlite;

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use postgres::PgJobStore;
pub use sqlite::SqliteJobStore;

use crate::error::StoreError;

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

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Takes tick `tick` of `job` for `holder`: true for exactly one caller per tick (the row
    /// moves forward only from an older tick).
    async fn claim(
        &self,
        job: &str,
        tick: i64,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn record_run(&self, run: &JobRun) -> Result<(), StoreError>;
    /// People active since `since` who have a location, at most `limit`, most recent first.
    async fn recently_active(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// Refresh and password-reset tokens past their expiry.
    async fn delete_expired_tokens(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
    async fn delete_passes_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Read notifications created before `before`.
    async fn delete_read_notifications_before(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    async fn delete_runs_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Which of `keys` a photo row points to (as its image or its thumbnail), or an open
    /// report keeps as evidence (its snapshot of the reported profile).
    async fn referenced_blobs(&self, keys: &[String]) -> Result<HashSet<String>, StoreError>;
}
