//! Application state, startup and shutdown. `Application::build(config)` wires every backend
//! the configuration asks for, binds the listener (port 0 picks a free port), and is what both
//! the binary and the tests run.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use url::Url;

use crate::auth::AuthService;
use crate::auth::tokens::TokenKeys;
use crate::chat::ChatService;
use crate::chat::hub::Hub;
use crate::config::Config;
use crate::discovery::DiscoveryService;
use crate::export::ExportService;
use crate::graphql::{DOCUMENT_CACHE_BYTES, DocumentCache, Schemas};
use crate::infra::blobs::{BlobStore, LocalBlobStore, MediaSigner, S3BlobStore};
use crate::infra::bus::Bus;
use crate::infra::db::Db;
use crate::infra::rate_limit::RateLimiter;
use crate::infra::redis::Redis;
use crate::infra::work::WorkGate;
use crate::infra::{mail, push, telemetry};
use crate::moderation::ModerationService;
use crate::moderation::graphql::{AdminSchema, build_admin_schema};
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
    /// Shared Redis, in scale-out mode.
    pub redis: Option<Redis>,
    /// Accounts, sessions and tokens.
    pub auth: Arc<AuthService>,
    /// Profiles and their parts.
    pub profiles: Arc<ProfileService>,
    /// Cases, actions, roles and the audit log.
    pub moderation: Arc<ModerationService>,
    /// Location, recommendations, likes, matches, blocks.
    pub discovery: DiscoveryService,
    /// Conversations and messages, and the live sockets.
    pub chat: ChatService,
    /// The inbox, preferences, devices and push.
    pub notifications: Arc<NotificationService>,
    /// Dog playgrounds.
    pub playgrounds: PlaygroundService,
    /// A person's data export.
    pub export: ExportService,
    /// Photo storage.
    pub blobs: Arc<dyn BlobStore>,
    /// Publish/subscribe across the deployment.
    pub bus: Bus,
    /// Signs and checks local `/media` URLs.
    pub media_signer: MediaSigner,
    /// Request budgets (in-process or shared through Redis).
    pub rate_limiter: RateLimiter,
    /// The GraphQL schemas clients use.
    pub schemas: Schemas,
    /// GraphQL documents already parsed.
    pub documents: DocumentCache,
    /// The moderators' GraphQL schema (`/admin/graphql`).
    pub admin_schema: AdminSchema,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// The bounded set of GraphQL operation names used as metric labels.
    pub operation_labels: telemetry::LabelSet,
}

/// A built application, bound to its port and ready to serve.
pub struct Application {
    listener: TcpListener,
    /// `/metrics` on its own address (`PUPMATCH_METRICS_LISTEN`).
    metrics_listener: Option<TcpListener>,
    state: AppState,
    local_addr: SocketAddr,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        config.check()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("Failed to bind {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("Failed to bind {addr} (PUPMATCH_METRICS_LISTEN)"))?,
            ),
            None => None,
        };
        let public_url = match &config.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{local_addr}"))?,
        };
        let state = build_state(config, public_url).await?;
        tracing::info!(
            address = %local_addr,
            database = state.db.backend_name(),
            redis = state.redis.is_some(),
            environment = ?state.config.environment,
            jobs = state.config.jobs.in_serve,
            "PupMatch is listening"
        );
        if let Some(metrics) = &metrics_listener {
            tracing::info!(address = %metrics.local_addr()?, "metrics are served here");
        }
        Ok(Application {
            listener,
            metrics_listener,
            state,
            local_addr,
        })
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address `/metrics` is served on when it has its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_with_shutdown(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_with_shutdown(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        let jobs = tokio_util::sync::CancellationToken::new();
        let _jobs = state
            .config
            .jobs
            .in_serve
            .then(|| crate::jobs::Worker::new(state.clone()).spawn(jobs.clone()));
        let router = crate::http::router(self.state);
        let metrics_server = self.metrics_listener.map(|listener| {
            let metrics = crate::http::metrics_router(state.clone());
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, metrics).await {
                    tracing::error!(error = %err, "the metrics server stopped");
                }
            })
        });
        // Open sockets would keep a graceful shutdown waiting forever: they are closed first.
        let hub = state.chat.hub.clone();
        let shutdown = async move {
            shutdown.await;
            hub.close_all();
        };
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("server error")?;
        jobs.cancel();
        if let Some(server) = metrics_server {
            server.abort();
        }
        state.db.close().await;
        tracing::info!("PupMatch stopped");
        Ok(())
    }
}

/// Connects every backend the configuration asks for (migrating the database) and wires the
/// services: what `serve` and `worker` share.
pub async fn build_state(config: Config, public_url: Url) -> anyhow::Result<AppState> {
    config.check()?;
    for warning in
        crate::infra::tls::unverified_connections(&config.database_url, config.redis_url.as_deref())
    {
        tracing::warn!("{warning}");
    }
    let db = Db::connect(
        &config.database_url,
        config.database_max_connections,
        config.database_ca_file.as_deref(),
    )
    .await?;
    db.migrate().await?;
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
    let auth = Arc::new(AuthService::new(
        crate::auth::store_for(&db),
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
    ));
    let rate_limiter = match &redis {
        Some(redis) => RateLimiter::shared(config.rate_limits, redis.clone()),
        None => RateLimiter::local(config.rate_limits),
    };
    spawn_rate_limit_pruning(rate_limiter.clone());

    let hub = Hub::new(bus.clone(), redis.clone());
    let notifications = NotificationService::new(&db, hub.clone(), push::from_config(&config)?);

    let production = config.is_production();
    let profiles = Arc::new(ProfileService::new(
        &db,
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
    let moderation = Arc::new(ModerationService::new(
        &db,
        auth.clone(),
        profiles.clone(),
        notifications.clone(),
        blobs.clone(),
    ));
    crate::moderation::spawn_open_case_gauge(moderation.store().clone());
    let state = AppState(Arc::new(App {
        public_url,
        profiles,
        moderation,
        discovery: DiscoveryService::new(
            &db,
            redis.clone(),
            bus.clone(),
            notifications.clone(),
            secret,
            crate::discovery::HoldRule {
                reporters: config.moderation.hold_reporters,
                window: config.moderation.hold_window,
            },
        ),
        chat: ChatService::new(&db, hub, notifications.clone()),
        playgrounds: PlaygroundService::new(&db, bus.clone()),
        export: ExportService::new(&db, blobs.clone()),
        notifications,
        bus,
        db,
        redis,
        auth,
        blobs,
        media_signer,
        rate_limiter,
        schemas: Schemas::new(production),
        documents: DocumentCache::new(DOCUMENT_CACHE_BYTES),
        admin_schema: build_admin_schema(production),
        metrics: telemetry::prometheus(),
        operation_labels: telemetry::LabelSet::default(),
        config,
    }));
    Ok(state)
}

/// `pupmatch worker`: runs the background jobs until Ctrl-C or SIGTERM, serving only
/// `/healthz`, `/readyz` and `/metrics` on `PUPMATCH_LISTEN`.
pub async fn run_worker(config: Config) -> anyhow::Result<()> {
    config.check()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("Failed to bind {}", config.listen))?;
    let public_url = match &config.public_url {
        Some(url) => url.clone(),
        None => Url::parse(&format!("http://{}", listener.local_addr()?))?,
    };
    let state = build_state(config, public_url).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut jobs = crate::jobs::Worker::new(state.clone()).spawn(stop.clone());
    tracing::info!(address = %listener.local_addr()?, "PupMatch worker is running");
    axum::serve(listener, crate::http::ops_router(state.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    stop.cancel();
    while jobs.join_next().await.is_some() {}
    state.db.close().await;
    tracing::info!("PupMatch worker stopped");
    Ok(())
}

/// The configured photo store: S3 when `PUPMATCH_S3_*` is set, else local disk with signed URLs.
pub fn blob_store(config: &Config, public_url: &Url) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match &config.s3 {
        Some(s3) => Arc::new(S3BlobStore::new(s3)?),
        None => Arc::new(LocalBlobStore::new(
            &config.media_dir,
            MediaSigner::new(config.jwt_secret.expose_secret().as_bytes()),
            public_url.clone(),
        )?),
    })
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

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
