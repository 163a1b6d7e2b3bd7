//! SQL of the background jobs: leases, the run log, and the cleanup statements, written once
//! for both backends (see [`crate::infra::sql`]); writes go through SQLite's writer connection.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
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

/// What the cleanup removes once it has had its time: rows older than `kept` (`$1` in each
/// statement is the cut-off).
pub struct Retention {
    /// What the rows are, as the cleanup's log names them.
    pub what: &'static str,
    pub statements: &'static [&'static str],
    pub kept: Duration,
}

/// Everything the cleanup removes, and how long each is kept.
pub const RETENTION: &[Retention] = &[
    Retention {
        what: "tokens",
        statements: &[
            "DELETE FROM refresh_tokens WHERE expires_at < $1",
            "DELETE FROM password_reset_tokens WHERE expires_at < $1",
            "DELETE FROM email_confirmation_tokens WHERE expires_at < $1",
        ],
        // Past their expiry.
        kept: Duration::zero(),
    },
    Retention {
        what: "passes",
        statements: &["DELETE FROM passes WHERE created_at < $1"],
        // Then the profile can be recommended again.
        kept: Duration::days(90),
    },
    Retention {
        what: "read notifications",
        statements: &["DELETE FROM notifications WHERE read_at IS NOT NULL AND created_at < $1"],
        kept: Duration::days(90),
    },
    Retention {
        what: "job runs",
        statements: &["DELETE FROM job_runs WHERE started_at < $1"],
        kept: Duration::days(30),
    },
    Retention {
        what: "failed sign-ins",
        // An account's owner hears of them at their next sign-in within this time.
        statements: &["DELETE FROM sign_in_failures WHERE failed_at < $1"],
        kept: Duration::days(30),
    },
    Retention {
        what: "introductions",
        // An introduction (someone served in a person's recommendations) lets the person read
        // that profile this long; a person served again is introduced again.
        statements: &["DELETE FROM introductions WHERE introduced_at < $1"],
        kept: Duration::days(30),
    },
    Retention {
        what: "like notices",
        // Within this time one person's like tells its person only once.
        statements: &["DELETE FROM like_notices WHERE sent_at < $1"],
        kept: Duration::days(30),
    },
    Retention {
        what: "tombstones",
        // What is left of an account deleted with its case open waits this long for a
        // moderator; a ban keeps the email's hash among the banned emails after that.
        statements: &["DELETE FROM tombstones WHERE deleted_at < $1"],
        kept: Duration::days(180),
    },
    Retention {
        what: "unsaved places",
        // Added before the cut-off, and no favourite of theirs left after it.
        statements: &["DELETE FROM playgrounds
                        WHERE created_at < $1 AND (last_unsaved_at IS NULL OR last_unsaved_at < $1)
                          AND NOT EXISTS (SELECT 1 FROM playground_favorites f
                                           WHERE f.playground_id = playgrounds.id)"],
        kept: Duration::days(30),
    },
];

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

    /// Removes the rows `rule` says have had their time: those older than `now` less the
    /// time the rule keeps them. How many.
    pub async fn remove_expired(
        &self,
        rule: &Retention,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        for statement in rule.statements {
            removed += self.delete(statement, now - rule.kept).await?;
        }
        Ok(removed)
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
