//! Startup and shutdown: `Application::build(config)` wires the application ([`crate::app`]),
//! binds the listener (port 0 picks a free port) and serves the HTTP surface, with the jobs
//! when this deployment runs them in `serve`; [`run_worker`] runs the jobs alone. Both the
//! binary and the tests start here.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use url::Url;

use crate::app::{AppState, build_state};
use crate::config::Config;
use crate::http::HttpState;
use crate::jobs::{JobServices, Worker};

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
            .then(|| Worker::new(JobServices::of(&state)).spawn(jobs.clone()));
        let router = crate::http::router(HttpState::new(self.state));
        let metrics_server = self.metrics_listener.map(|listener| {
            let metrics = crate::http::metrics_router(state.clone());
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, metrics).await {
                    tracing::error!(error = %err, "the metrics server stopped");
                }
            })
        });
        // Open sockets would keep a graceful shutdown waiting forever: they are closed first.
        let hub = state.hub.clone();
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
        state.reads.close().await;
        state.db.close().await;
        tracing::info!("PupMatch stopped");
        Ok(())
    }
}

/// `pupmatch worker`: runs the background jobs until Ctrl-C or SIGTERM, serving only
/// `/healthz`, `/readyz` and `/metrics` on `PUPMATCH_LISTEN`.
pub async fn run_worker(config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("Failed to bind {}", config.listen))?;
    let public_url = match &config.public_url {
        Some(url) => url.clone(),
        None => Url::parse(&format!("http://{}", listener.local_addr()?))?,
    };
    let state = build_state(config, public_url).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut jobs = Worker::new(JobServices::of(&state)).spawn(stop.clone());
    tracing::info!(address = %listener.local_addr()?, "PupMatch worker is running");
    axum::serve(listener, crate::http::ops_router(state.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    stop.cancel();
    while jobs.join_next().await.is_some() {}
    state.reads.close().await;
    state.db.close().await;
    tracing::info!("PupMatch worker stopped");
    Ok(())
}

/// Drops `user_id`'s cached profile on every running instance, from a process that serves
/// nothing (the command line): through Redis in scale-out mode. In embedded mode the server's
/// own cache, which no other process reaches, lets the change show within a minute.
pub async fn forget_cached_profile(config: &Config, user_id: uuid::Uuid) -> anyhow::Result<()> {
    let Some(url) = &config.redis_url else {
        return Ok(());
    };
    let redis = crate::infra::redis::Redis::connect(
        url,
        &config.redis_prefix,
        config.redis_ca_file.as_deref(),
    )
    .await?;
    let bus = crate::infra::bus::Bus::redis(redis.clone()).await?;
    crate::profiles::ProfileService::forget_cached(redis, bus, user_id).await;
    Ok(())
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
