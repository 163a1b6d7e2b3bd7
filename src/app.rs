//! The application: every service and the infrastructure under them, wired from the
//! configuration ([`build_state`]). Nothing here knows about HTTP, GraphQL or the job runner:
//! those sit above and take what they use from [`App`] (see `crate::server`).

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::ExposeSecret;
use url::Url;

use crate::auth::AuthService;
use crate::chat::ChatService;
use crate::config::Config;
use crate::discovery::DiscoveryService;
use crate::export::ExportService;
use crate::hub::Hub;
use crate::identity::tokens::TokenKeys;
use crate::infra::blobs::{BlobStore, LocalBlobStore, MediaSigner, ReusedLinks, S3BlobStore};
use crate::infra::bus::Bus;
use crate::infra::db::Db;
use crate::infra::rate_limit::RateLimiter;
use crate::infra::redis::Redis;
use crate::infra::replicas::Reads;
use crate::infra::work::WorkGate;
use crate::infra::{mail, push, telemetry};
use crate::moderation::ModerationService;
use crate::notifications::NotificationService;
use crate::playgrounds::PlaygroundService;
use crate::profiles::ProfileService;

/// Longest a password hash or a photo waits for room before the request gets 503.
const WORK_MAX_WAIT: Duration = Duration::from_secs(10);

/// Shared state of one running application; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}

pub struct App {
    /// The validated configuration.
    pub config: Config,
    /// Base URL of links we hand out (emails, media).
    pub public_url: Url,
    /// The database pool (PostgreSQL or SQLite).
    pub db: Db,
    /// Where reads that may be a moment stale go (a read replica, else `db`).
    pub reads: Reads,
    /// Shared Redis, in scale-out mode.
    pub redis: Option<Redis>,
    /// Accounts, sessions and tokens.
    pub auth: Arc<AuthService>,
    /// Profiles and their parts.
    pub profiles: Arc<ProfileService>,
    /// Cases, actions, roles and the audit log.
    pub moderation: Arc<ModerationService>,
    /// Location, recommendations, likes, matches, blocks.
    pub discovery: Arc<DiscoveryService>,
    /// Conversations and messages, and the live sockets.
    pub chat: Arc<ChatService>,
    /// The inbox, preferences, devices and push.
    pub notifications: Arc<NotificationService>,
    /// Dog playgrounds.
    pub playgrounds: Arc<PlaygroundService>,
    /// A person's data export.
    pub export: Arc<ExportService>,
    /// Photo storage.
    pub blobs: Arc<dyn BlobStore>,
    /// Publish/subscribe across the deployment.
    pub bus: Bus,
    /// The live sockets of this instance, and delivery to everyone's on every instance.
    pub hub: Arc<Hub>,
    /// Signs and checks local `/media` URLs.
    pub media_signer: MediaSigner,
    /// Request budgets (in-process or shared through Redis).
    pub rate_limiter: RateLimiter,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
}

/// Connects every backend the configuration asks for (migrating the database) and wires the
/// services: what `serve` and `worker` share.
pub async fn build_state(config: Config, public_url: Url) -> anyhow::Result<AppState> {
    config.check()?;
    for warning in crate::infra::tls::unverified_connections(
        &config.database_url,
        config.database_ca_file.is_some(),
        config.redis_url.as_deref(),
    ) {
        tracing::warn!("{warning}");
    }
    for url in &config.database_replica_urls {
        for warning in
            crate::infra::tls::unverified_connections(url, config.database_ca_file.is_some(), None)
        {
            tracing::warn!("read replica: {warning}");
        }
    }
    let db = Db::connect(
        &config.database_url,
        config.database_max_connections,
        config.database_ca_file.as_deref(),
    )
    .await?;
    db.migrate().await?;
    for warning in db.setting_warnings().await? {
        tracing::warn!("{warning}");
    }
    let reads = Reads::connect(
        &db,
        &config.database_replica_urls,
        config.database_max_connections,
        config.database_ca_file.as_deref(),
        config.database_replica_max_lag,
    )?;
    if config.is_production() && config.any_origin() {
        tracing::warn!(
            "PUPMATCH_ALLOWED_ORIGINS=*: any web page may call this API and open WebSockets \
             with a visitor's credentials; list your web origins instead"
        );
    }
    let redis = match &config.redis_url {
        Some(url) => {
            Some(Redis::connect(url, &config.redis_prefix, config.redis_ca_file.as_deref()).await?)
        }
        None => None,
    };
    let bus = match &redis {
        Some(redis) => Bus::redis(redis.clone()).await?,
        None => Bus::local(),
    };

    let secret = config.jwt_secret.expose_secret().as_bytes();
    let media_signer = MediaSigner::new(secret);
    let blobs = blob_store(&config, &public_url)?;
    let mailer: Arc<dyn mail::Mailer> = Arc::from(mail::from_config(&config)?);
    let hub = Hub::new(bus.clone(), redis.clone());
    let notifications = NotificationService::new(&db, hub.clone(), push::from_config(&config)?);
    let auth = Arc::new(AuthService::new(
        crate::auth::store::AuthStore::new(&db),
        TokenKeys::new(&config.jwt_secret),
        mailer,
        blobs.clone(),
        public_url.clone(),
        redis.clone(),
        bus.clone(),
        WorkGate::new(
            "password",
            config.work.password_workers,
            u32::try_from(config.work.password_workers * 20).unwrap_or(u32::MAX),
            WORK_MAX_WAIT,
        ),
        notifications.clone(),
        config.require_email_confirmation,
    ));
    let rate_limiter = match &redis {
        Some(redis) => RateLimiter::shared(config.rate_limits, redis.clone()),
        None => RateLimiter::local(config.rate_limits),
    };
    spawn_rate_limit_pruning(rate_limiter.clone());

    let profiles = Arc::new(ProfileService::new(
        &reads,
        redis.clone(),
        bus.clone(),
        blobs.clone(),
        WorkGate::new(
            "image",
            config.work.image_workers,
            config.work.image_memory_mb,
            WORK_MAX_WAIT,
        ),
    ));
    let playgrounds = Arc::new(PlaygroundService::new(&reads, bus.clone()));
    let moderation = Arc::new(ModerationService::new(
        &db,
        auth.clone(),
        profiles.clone(),
        notifications.clone(),
        blobs.clone(),
        playgrounds.clone(),
    ));
    crate::moderation::spawn_open_case_gauge(moderation.store().clone());
    let state = AppState(Arc::new(App {
        public_url,
        profiles: profiles.clone(),
        moderation,
        discovery: Arc::new(DiscoveryService::new(
            &reads,
            redis.clone(),
            bus.clone(),
            profiles.clone(),
            notifications.clone(),
            secret,
            crate::discovery::DiscoverySettings {
                hold: crate::discovery::HoldRule {
                    reporters: config.moderation.hold_reporters,
                    window: config.moderation.hold_window,
                    reporter_min_age: config.moderation.reporter_min_age,
                },
                profiles_per_day: config.rate_limits.profiles_per_day,
                confirmed_only: config.require_email_confirmation,
            },
        )),
        chat: Arc::new(ChatService::new(
            &db,
            hub.clone(),
            notifications.clone(),
            profiles.clone(),
            rate_limiter.clone(),
        )),
        playgrounds,
        export: Arc::new(ExportService::new(&db, blobs.clone())),
        notifications,
        bus,
        hub,
        db,
        reads,
        redis,
        auth,
        blobs,
        media_signer,
        rate_limiter,
        metrics: telemetry::prometheus(),
        config,
    }));
    Ok(state)
}

/// The configured photo store: S3 when `PUPMATCH_S3_*` is set, else local disk with signed URLs.
pub fn blob_store(config: &Config, public_url: &Url) -> anyhow::Result<Arc<dyn BlobStore>> {
    let store: Arc<dyn BlobStore> = match &config.s3 {
        Some(s3) => Arc::new(S3BlobStore::new(s3)?),
        None => Arc::new(LocalBlobStore::new(
            &config.media_dir,
            MediaSigner::new(config.jwt_secret.expose_secret().as_bytes()),
            public_url.clone(),
        )?),
    };
    Ok(Arc::new(ReusedLinks::new(store)))
}

fn spawn_rate_limit_pruning(limiter: RateLimiter) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limiter.prune();
        }
    });
}
