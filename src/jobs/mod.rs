//! Background jobs and the worker that runs them on schedule.
//!
//! | job | every (default) | what it does |
//! |---|---|---|
//! | `refresh_recommendations` | 15 min | recomputes and caches the lists of people active in the last 24 h |
//! | `deliver_notifications` | 5 min | sends queued pushes that are due (retry with backoff, [`crate::notifications`]) |
//! | `cleanup` | 1 day | expired refresh and reset tokens; passes older than 90 days (so those profiles can come back); read notifications older than 90 days; photo blobs no row points to (older than an hour, so uploads in flight are safe); run records older than 30 days |
//!
//! Time is cut into ticks per job (`unix time / period`). A worker runs tick N of a job only
//! after moving the job's lease row (`job_leases`) from an older tick to N in one statement,
//! which exactly one worker manages — so each tick runs once however many workers run, with or
//! without Redis. A failed run is retried ([`MAX_ATTEMPTS`], with a growing delay) within its
//! tick; every run is recorded in `job_runs` (attempts, outcome, error, items) and in the
//! metrics `jobs_runs_total{job,outcome}`, `jobs_attempt_failures_total{job}` and
//! `jobs_duration_seconds{job}`. A worker that dies mid-run loses that tick; the next tick runs.
//!
//! `pupmatch worker` runs them in scale-out mode; in embedded mode `serve` runs them itself
//! (`PUPMATCH_JOBS_IN_SERVE`).

pub mod store;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::Instrument;
use uuid::Uuid;

use crate::app::App;
use crate::config::JobSchedule;
use crate::discovery::DiscoveryService;
use crate::infra::blobs::BlobStore;
use crate::infra::db::Db;
use crate::infra::time;
use crate::notifications::NotificationService;
use crate::profiles::ProfileService;
use store::{JobRun, JobStore};

/// Tries per tick before a run is recorded as failed.
pub const MAX_ATTEMPTS: i32 = 3;
/// Unreferenced blobs younger than this are left alone (an upload may be in flight).
pub const ORPHAN_BLOB_GRACE: chrono::Duration = chrono::Duration::hours(1);
/// How many recently active people one refresh tick recomputes at most.
const REFRESH_LIMIT: i64 = 10_000;
/// Queued pushes claimed per batch by the delivery job.
const DELIVERY_BATCH: i64 = 200;

/// The jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    RefreshRecommendations,
    DeliverNotifications,
    Cleanup,
}

impl Job {
    pub const ALL: [Job; 3] = [
        Job::RefreshRecommendations,
        Job::DeliverNotifications,
        Job::Cleanup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::RefreshRecommendations => "refresh_recommendations",
            Job::DeliverNotifications => "deliver_notifications",
            Job::Cleanup => "cleanup",
        }
    }

    fn every(self, s: JobSchedule) -> Duration {
        match self {
            Job::RefreshRecommendations => s.refresh_every,
            Job::DeliverNotifications => s.deliver_every,
            Job::Cleanup => s.cleanup_every,
        }
    }
}

/// What the jobs run on.
#[derive(Clone)]
pub struct JobServices {
    pub db: Db,
    pub schedule: JobSchedule,
    pub discovery: Arc<DiscoveryService>,
    pub profiles: Arc<ProfileService>,
    pub notifications: Arc<NotificationService>,
    pub blobs: Arc<dyn BlobStore>,
}

impl JobServices {
    /// The parts of a running application the jobs use.
    pub fn of(app: &App) -> Self {
        JobServices {
            db: app.db.clone(),
            schedule: app.config.jobs,
            discovery: app.discovery.clone(),
            profiles: app.profiles.clone(),
            notifications: app.notifications.clone(),
            blobs: app.blobs.clone(),
        }
    }
}

/// Runs the jobs of one deployment; any number may run at once.
#[derive(Clone)]
pub struct Worker {
    services: JobServices,
    store: JobStore,
    id: String,
    retry_delay: Duration,
    orphan_grace: chrono::Duration,
}

impl Worker {
    pub fn new(services: JobServices) -> Self {
        let store = JobStore::new(&services.db);
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
        Worker {
            services,
            store,
            id: format!("{host}-{}-{}", std::process::id(), Uuid::now_v7().simple()),
            retry_delay: Duration::from_secs(1),
            orphan_grace: ORPHAN_BLOB_GRACE,
        }
    }

    /// The delay before a failed run's second attempt (doubling after that).
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// How old an unreferenced blob must be before cleanup deletes it.
    pub fn with_orphan_grace(mut self, grace: chrono::Duration) -> Self {
        self.orphan_grace = grace;
        self
    }

    /// This worker's name in leases and run records.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Starts one scheduling loop per job, in the background, until `stop` fires.
    pub fn spawn(self, stop: tokio_util::sync::CancellationToken) -> tokio::task::JoinSet<()> {
        let mut set = tokio::task::JoinSet::new();
        for job in Job::ALL {
            let worker = self.clone();
            let stop = stop.clone();
            set.spawn(async move {
                tokio::select! {
                    () = worker.schedule(job) => {}
                    () = stop.cancelled() => {}
                }
            });
        }
        tracing::info!(worker = %self.id, "background jobs scheduled");
        set
    }

    /// Checks for a new tick of `job` every second (or period, if shorter) and runs the ticks
    /// this worker wins.
    async fn schedule(&self, job: Job) {
        let every = job.every(self.services.schedule);
        let mut check = tokio::time::interval(every.min(Duration::from_secs(1)));
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_tick = None;
        loop {
            check.tick().await;
            let tick = current_tick(every);
            if last_tick == Some(tick) {
                continue;
            }
            last_tick = Some(tick);
            match self
                .store
                .claim(job.name(), tick, &self.id, time::now())
                .await
            {
                Ok(true) => {
                    self.run(job, tick).await;
                }
                Ok(false) => {}
                Err(err) => {
                    // Retried at the next check: the tick is not ours until the claim commits.
                    last_tick = None;
                    tracing::warn!(job = job.name(), error = %err, "could not claim a job tick");
                }
            }
        }
    }

    /// Runs `job` now as tick `tick` (with retries), records and reports the run: one trace
    /// of its own per run.
    pub async fn run(&self, job: Job, tick: i64) -> JobRun {
        let span = crate::infra::sampling::root(|| {
            tracing::info_span!(
                parent: None,
                "job",
                otel.name = %format_args!("job {}", job.name()),
                job.name = job.name(),
                job.tick = tick,
            )
        });
        self.run_traced(job, tick).instrument(span).await
    }

    async fn run_traced(&self, job: Job, tick: i64) -> JobRun {
        let started_at = time::now();
        let clock = Instant::now();
        let mut attempts = 0;
        let mut delay = self.retry_delay;
        let outcome = loop {
            attempts += 1;
            match self.execute(job).await {
                Ok(items) => break Ok(items),
                Err(err) => {
                    metrics::counter!("jobs_attempt_failures_total", "job" => job.name())
                        .increment(1);
                    tracing::warn!(job = job.name(), attempt = attempts, error = %format!("{err:#}"), "job attempt failed");
                    if attempts >= MAX_ATTEMPTS {
                        break Err(err);
                    }
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        };
        let elapsed = clock.elapsed();
        metrics::histogram!("jobs_duration_seconds", "job" => job.name())
            .record(elapsed.as_secs_f64());
        let run = JobRun {
            id: Uuid::now_v7(),
            job: job.name(),
            tick,
            worker: self.id.clone(),
            started_at,
            finished_at: time::now(),
            attempts,
            ok: outcome.is_ok(),
            items: *outcome.as_ref().unwrap_or(&0),
            error: outcome.as_ref().err().map(|e| format!("{e:#}")),
        };
        let label = if run.ok { "ok" } else { "failed" };
        metrics::counter!("jobs_runs_total", "job" => job.name(), "outcome" => label).increment(1);
        if run.ok {
            // Alerts compare it with the job's interval: ticks nobody ran show as its age.
            metrics::gauge!("jobs_last_success_timestamp_seconds", "job" => job.name())
                .set(run.finished_at.timestamp_millis() as f64 / 1000.0);
            tracing::info!(
                job = job.name(),
                tick,
                items = run.items,
                ms = elapsed.as_millis() as u64,
                "job ran"
            );
        } else {
            tracing::error!(
                job = job.name(),
                tick,
                attempts,
                error = run.error.as_deref().unwrap_or(""),
                "job failed"
            );
        }
        if let Err(err) = self.store.record_run(&run).await {
            tracing::error!(job = job.name(), error = %err, "could not record a job run");
        }
        run
    }

    /// One attempt; how many things it handled.
    async fn execute(&self, job: Job) -> anyhow::Result<i64> {
        match job {
            Job::RefreshRecommendations => self.refresh_recommendations().await,
            Job::DeliverNotifications => self.deliver_notifications().await,
            Job::Cleanup => self.cleanup().await,
        }
    }

    async fn refresh_recommendations(&self) -> anyhow::Result<i64> {
        let since = time::now() - chrono::Duration::hours(24);
        let users = self.store.recently_active(since, REFRESH_LIMIT).await?;
        let mut refreshed = 0;
        for user in users {
            if self.services.discovery.refresh(user).await? {
                refreshed += 1;
            }
        }
        Ok(refreshed)
    }

    async fn deliver_notifications(&self) -> anyhow::Result<i64> {
        let mut total = 0;
        loop {
            let n = self
                .services
                .notifications
                .deliver_due_pushes(DELIVERY_BATCH)
                .await?;
            let n = i64::try_from(n).unwrap_or(0);
            total += n;
            if n < DELIVERY_BATCH {
                return Ok(total);
            }
        }
    }

    async fn cleanup(&self) -> anyhow::Result<i64> {
        let now = time::now();
        let mut removed = Vec::with_capacity(store::RETENTION.len() + 1);
        for rule in store::RETENTION {
            removed.push((rule.what, self.store.remove_expired(rule, now).await?));
        }
        removed.push((
            "orphan blobs",
            self.delete_orphan_blobs(now - self.orphan_grace).await?,
        ));
        tracing::info!(?removed, "cleanup");
        let total: u64 = removed.iter().map(|(_, n)| n).sum();
        Ok(i64::try_from(total).unwrap_or(i64::MAX))
    }

    /// Photo blobs written before `before` that no photo row points to (an upload whose row
    /// was never written, or a delete whose blob delete failed).
    async fn delete_orphan_blobs(&self, before: chrono::DateTime<Utc>) -> anyhow::Result<u64> {
        let old: Vec<String> = self
            .services
            .blobs
            .list("photos/")
            .await?
            .into_iter()
            .filter(|b| b.modified < before)
            .map(|b| b.key)
            .collect();
        let mut deleted = 0;
        for chunk in old.chunks(500) {
            let referenced: HashSet<String> = self.store.referenced_blobs(chunk).await?;
            for key in chunk.iter().filter(|k| !referenced.contains(*k)) {
                self.services.blobs.delete(key).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// The number of the period of length `every` we are in.
pub fn current_tick(every: Duration) -> i64 {
    let ms = Utc::now().timestamp_millis();
    let period = i64::try_from(every.as_millis()).unwrap_or(i64::MAX).max(1);
    ms.div_euclid(period)
}
