//! PostgreSQL read replicas (`PUPMATCH_DATABASE_REPLICA_URLS`): reads that may be a moment
//! stale — the recommendation candidates, other people's profiles, places near a point and the
//! place search — go to a streaming replica; everything else stays on the primary.
//!
//! A replica serves reads only while a background check finds it answering and no further
//! behind than `PUPMATCH_DATABASE_REPLICA_MAX_LAG_MS`. Lag is measured from WAL positions, not
//! from the time of the last replayed transaction (which would make an idle primary look like
//! lag): every [`CHECK_EVERY`] the primary's WAL position is noted with the time it was first
//! seen, and a replica is as far behind as the oldest position it has not replayed yet. A read
//! that finds a replica gone (no connection, a broken one, no answer within [`READ_BUDGET`])
//! takes it out of rotation and is run on the primary; the check puts it back once it answers
//! and has caught up.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio::time::Instant;

use super::db::{Db, pg_connect_options, pg_pool_options};
use crate::error::StoreError;

/// How often each replica's health and lag are checked.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Longest a read waits for a connection to a replica before it is run on the primary.
const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(400);

/// Longest a read may take on a replica before the replica is taken out of rotation and the
/// read is run on the primary: a replica that is down costs one request at most this long.
pub const READ_BUDGET: Duration = Duration::from_millis(700);

/// Longest a check waits for a replica's (or the primary's) answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Primary WAL positions kept to measure lag against (one per check that saw it move).
const MAX_SAMPLES: usize = 100_000;

/// Where reads that may be a moment stale go: a healthy replica, else the primary. Cheap to
/// clone.
#[derive(Clone)]
pub struct Reads(Arc<Inner>);

struct Inner {
    primary: Db,
    replicas: Vec<Replica>,
    next: AtomicUsize,
    max_lag: Duration,
}

struct Replica {
    /// `host:port`, for logs, `/readyz` and metrics (never the credentials).
    name: String,
    pool: PgPool,
    /// Answering and within the maximum lag, as of the last check.
    usable: AtomicBool,
    state: Mutex<ReplicaState>,
}

/// What the last check found about one replica.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaState {
    /// Not checked yet: no reads until it is.
    Unknown,
    /// Answering, this far behind the primary.
    Replaying { lag: Duration },
    /// Not answering (or a read found it gone), with why.
    Down { error: String },
}

/// One replica as `/readyz` describes it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplicaReport {
    pub name: String,
    /// `ok`, `lagging`, `down` or `unknown` (not checked yet).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether a read goes where a moment's staleness is fine, or must see every committed change
/// (a person's own data, and whatever a write is about to rely on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// The primary.
    Latest,
    /// A replica when one is usable.
    MomentOld,
}

/// Where a read was run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Primary,
    Replica,
}

impl Reads {
    /// Every read on `primary` (no replicas configured, or SQLite).
    pub fn primary_only(primary: &Db) -> Reads {
        Reads(Arc::new(Inner {
            primary: primary.clone(),
            replicas: Vec::new(),
            next: AtomicUsize::new(0),
            max_lag: Duration::ZERO,
        }))
    }

    /// Pools for the replicas at `urls` (opened as reads need them, so a replica that is down
    /// at start-up does not stop the server), and the task that checks them.
    pub fn connect(
        primary: &Db,
        urls: &[String],
        max_connections: u32,
        ca_file: Option<&std::path::Path>,
        max_lag: Duration,
    ) -> anyhow::Result<Reads> {
        if urls.is_empty() {
            return Ok(Reads::primary_only(primary));
        }
        let mut replicas = Vec::with_capacity(urls.len());
        for url in urls {
            let (options, target) = pg_connect_options(url, ca_file)?;
            let name = target
                .split_once(' ')
                .map_or(target.as_str(), |(host, _)| host)
                .to_string();
            let pool = pg_pool_options(max_connections, ACQUIRE_TIMEOUT).connect_lazy_with(options);
            replicas.push(Replica {
                name,
                pool,
                usable: AtomicBool::new(false),
                state: Mutex::new(ReplicaState::Unknown),
            });
        }
        let reads = Reads(Arc::new(Inner {
            primary: primary.clone(),
            replicas,
            next: AtomicUsize::new(0),
            max_lag,
        }));
        tokio::spawn(check_replicas(Arc::downgrade(&reads.0)));
        Ok(reads)
    }

    /// The primary, for reads that must see every committed change.
    pub fn primary(&self) -> &Db {
        &self.0.primary
    }

    /// How long after a change a read begun on a replica may still return what was there
    /// before it (zero without replicas): the maximum lag, as precisely as the checks measure
    /// it, plus the longest a replica read may take.
    pub fn staleness_bound(&self) -> Duration {
        if self.0.replicas.is_empty() {
            Duration::ZERO
        } else {
            self.0.max_lag + CHECK_EVERY + READ_BUDGET
        }
    }

    /// Runs `read` where `freshness` allows: on a usable replica (round robin) when a moment's
    /// staleness is fine, else — and whenever the replica turns out to be gone — on the primary.
    /// Also says where it ran.
    pub async fn run<T, F, Fut>(
        &self,
        freshness: Freshness,
        read: F,
    ) -> Result<(T, Target), StoreError>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        if freshness == Freshness::MomentOld
            && let Some(replica) = self.pick()
        {
            let db = Db::Postgres(replica.pool.clone());
            match tokio::time::timeout(READ_BUDGET, read(db)).await {
                Ok(Ok(value)) => {
                    count_read(Target::Replica);
                    return Ok((value, Target::Replica));
                }
                Ok(Err(StoreError::Unavailable(err))) => replica.fail(format!("{err:#}")),
                Err(_) => replica.fail(format!("no answer within {} ms", READ_BUDGET.as_millis())),
                // Replay cancelled the query (a conflict with recovery): ask the primary.
                Ok(Err(err)) if is_recovery_conflict(&err) => {}
                Ok(Err(err)) => return Err(err),
            }
        }
        count_read(Target::Primary);
        Ok((read(self.0.primary.clone()).await?, Target::Primary))
    }

    /// The next usable replica, if any.
    fn pick(&self) -> Option<&Replica> {
        let replicas = &self.0.replicas;
        if replicas.is_empty() {
            return None;
        }
        let start = self.0.next.fetch_add(1, Ordering::Relaxed);
        (0..replicas.len())
            .map(|i| &replicas[(start + i) % replicas.len()])
            .find(|r| r.usable.load(Ordering::Relaxed))
    }

    /// Each replica's state, for `/readyz`.
    pub fn report(&self) -> Vec<ReplicaReport> {
        let max_lag = self.0.max_lag;
        self.0
            .replicas
            .iter()
            .map(|r| {
                let state = r.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let (status, lag_ms, error) = match state {
                    ReplicaState::Unknown => ("unknown", None, None),
                    ReplicaState::Replaying { lag } => (
                        if lag > max_lag { "lagging" } else { "ok" },
                        Some(u64::try_from(lag.as_millis()).unwrap_or(u64::MAX)),
                        None,
                    ),
                    ReplicaState::Down { error } => ("down", None, Some(error)),
                };
                ReplicaReport {
                    name: r.name.clone(),
                    status,
                    lag_ms,
                    error,
                }
            })
            .collect()
    }

    pub async fn close(&self) {
        for replica in &self.0.replicas {
            replica.pool.close().await;
        }
    }
}

impl Replica {
    /// A read found this replica gone: no more reads until a check sees it back.
    fn fail(&self, error: String) {
        if self.usable.swap(false, Ordering::Relaxed) {
            tracing::warn!(replica = %self.name, %error, "read replica out of rotation");
        }
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = ReplicaState::Down { error };
    }

    /// Records what a check found.
    fn checked(&self, state: ReplicaState, max_lag: Duration) {
        let usable = matches!(state, ReplicaState::Replaying { lag } if lag <= max_lag);
        if let ReplicaState::Replaying { lag } = state {
            metrics::gauge!("db_replica_lag_seconds", "replica" => self.name.clone())
                .set(lag.as_secs_f64());
        }
        let was = self.usable.swap(usable, Ordering::Relaxed);
        if was != usable {
            match &state {
                ReplicaState::Replaying { lag } if usable => tracing::info!(
                    replica = %self.name,
                    lag_ms = lag.as_millis(),
                    "read replica in rotation"
                ),
                ReplicaState::Replaying { lag } => tracing::warn!(
                    replica = %self.name,
                    lag_ms = lag.as_millis(),
                    max_lag_ms = max_lag.as_millis(),
                    "read replica out of rotation: too far behind"
                ),
                ReplicaState::Down { error } => tracing::warn!(
                    replica = %self.name,
                    %error,
                    "read replica out of rotation: not answering"
                ),
                ReplicaState::Unknown => {}
            }
        }
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

fn count_read(target: Target) {
    let target = match target {
        Target::Primary => "primary",
        Target::Replica => "replica",
    };
    metrics::counter!("db_reads_total", "target" => target).increment(1);
}

/// A standby cancels a query whose rows replay must change (SQLSTATE 40001 with "conflict with
/// recovery"); the primary has no such conflict.
fn is_recovery_conflict(err: &StoreError) -> bool {
    let StoreError::Other(err) = err else {
        return false;
    };
    err.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .is_some_and(|db| db.code().as_deref() == Some("40001"))
    })
}

/// The primary's WAL positions, each with when a check first saw it, oldest first.
#[derive(Default)]
struct WalHistory(VecDeque<(u64, Instant)>);

impl WalHistory {
    fn note(&mut self, position: u64, at: Instant) {
        if self.0.back().is_none_or(|(last, _)| position > *last) {
            self.0.push_back((position, at));
        }
        while self.0.len() > MAX_SAMPLES {
            self.0.pop_front();
        }
    }

    /// How far behind a replica that has replayed up to `replayed` is at `now`: since when the
    /// primary has been at a position it has not replayed (zero when it has replayed all).
    fn lag(&self, replayed: u64, now: Instant) -> Duration {
        self.0
            .iter()
            .find(|(position, _)| *position > replayed)
            .map_or(Duration::ZERO, |(_, since)| {
                now.saturating_duration_since(*since)
            })
    }

    /// Forgets positions every replica has replayed, but the newest.
    fn forget_through(&mut self, replayed: u64) {
        while self.0.len() > 1 && self.0.get(1).is_some_and(|(p, _)| *p <= replayed) {
            self.0.pop_front();
        }
    }
}

/// Checks every replica each [`CHECK_EVERY`] until the reads are dropped.
async fn check_replicas(reads: std::sync::Weak<Inner>) {
    let mut history = WalHistory::default();
    // Each replica's last replayed position: positions are forgotten only once every replica
    // (one that is down included) has replayed them, so one that comes back is measured right.
    let mut replayed_by: Vec<Option<u64>> = Vec::new();
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = reads.upgrade() else { return };
        if inner.primary.is_closed() {
            return;
        }
        // The primary's position first: a replica that has replayed it was caught up then.
        let Db::Postgres(primary) = &inner.primary else {
            return;
        };
        let seen = Instant::now();
        match wal_position(primary, "pg_current_wal_lsn()").await {
            Ok(Some(position)) => history.note(position, seen),
            // Without the primary's position lag cannot be measured: keep the last verdicts.
            Ok(None) | Err(_) => continue,
        }
        let checks = inner.replicas.iter().map(|replica| async move {
            let replayed = wal_position(&replica.pool, "pg_last_wal_replay_lsn()").await;
            (replica, replayed)
        });
        replayed_by.resize(inner.replicas.len(), None);
        for (i, (replica, replayed)) in futures::future::join_all(checks)
            .await
            .into_iter()
            .enumerate()
        {
            let state = match replayed {
                Ok(Some(replayed)) => {
                    replayed_by[i] = Some(replayed);
                    ReplicaState::Replaying {
                        lag: history.lag(replayed, Instant::now()),
                    }
                }
                Ok(None) => ReplicaState::Down {
                    error: "not a standby (pg_last_wal_replay_lsn() is null)".into(),
                },
                Err(error) => ReplicaState::Down { error },
            };
            replica.checked(state, inner.max_lag);
        }
        if let Some(oldest) = replayed_by.iter().map(|r| r.unwrap_or(0)).min() {
            history.forget_through(oldest);
        }
    }
}

/// `function` (a `pg_lsn`) as a byte position, within [`CHECK_TIMEOUT`].
async fn wal_position(pool: &PgPool, function: &str) -> Result<Option<u64>, String> {
    let sql = format!("SELECT ({function} - '0/0'::pg_lsn)::bigint");
    let query = sqlx::query_scalar::<_, Option<i64>>(sqlx::AssertSqlSafe(sql)).fetch_one(pool);
    match tokio::time::timeout(CHECK_TIMEOUT, query).await {
        Ok(Ok(position)) => Ok(position.and_then(|p| u64::try_from(p).ok())),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_primary_is_no_lag() {
        let start = Instant::now();
        let mut history = WalHistory::default();
        history.note(100, start);
        // The primary stays at 100 for a minute; the replica replayed 100.
        history.note(100, start + Duration::from_secs(60));
        assert_eq!(
            history.lag(100, start + Duration::from_secs(60)),
            Duration::ZERO
        );
    }

    #[test]
    fn lag_counts_from_the_first_position_not_replayed() {
        let start = Instant::now();
        let mut history = WalHistory::default();
        history.note(100, start);
        history.note(200, start + Duration::from_secs(1));
        history.note(300, start + Duration::from_secs(2));
        let now = start + Duration::from_secs(5);
        assert_eq!(history.lag(150, now), Duration::from_secs(4));
        assert_eq!(history.lag(200, now), Duration::from_secs(3));
        assert_eq!(history.lag(300, now), Duration::ZERO);
        history.forget_through(200);
        assert_eq!(history.lag(200, now), Duration::from_secs(3));
    }
}
