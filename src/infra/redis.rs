//! The optional shared Redis. Every key and channel is namespaced with `PUPMATCH_REDIS_PREFIX`.
//!
//! Redis going away must not stall requests: every command runs through [`Redis::guarded`],
//! which answers at once with an error while Redis is known to be down, and within
//! [`COMMAND_TIMEOUT`] otherwise. A failed command marks Redis down; a background task pings
//! it and marks it up again when it answers. Callers fall back to their in-process half (rate
//! limits, L1 cache, local delivery) on any error.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, RedisError, RedisResult};
use tracing::Instrument;

/// Longest a command may take before Redis counts as down.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
/// How often a Redis that is down is tried again.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// A multiplexed, auto-reconnecting Redis connection plus the key prefix.
#[derive(Clone)]
pub struct Redis {
    /// Cheap to clone; commands are pipelined over one connection.
    conn: ConnectionManager,
    /// Used to open dedicated pub/sub connections.
    pub client: redis::Client,
    prefix: String,
    /// Whether the last command (or health check) got an answer.
    up: Arc<AtomicBool>,
}

/// The span of one Redis round trip (the command's name only, never its keys or values).
fn redis_span(command: &str) -> tracing::Span {
    tracing::info_span!(
        "redis",
        otel.name = %format_args!("redis {command}"),
        otel.kind = "client",
        db.system = "redis",
        db.operation.name = %command,
    )
}

fn is_outage(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
}

/// A client for `url`, trusting `ca_file` (PEM) for `rediss://` when given.
fn open_client(url: &str, ca_file: Option<&Path>) -> anyhow::Result<redis::Client> {
    crate::infra::tls::install_crypto_provider();
    let Some(ca) = ca_file else {
        return redis::Client::open(url).context("Failed to parse the Redis URL");
    };
    let root_cert = crate::config::tls::read_ca_file(ca).map_err(|e| anyhow::anyhow!(e))?;
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        },
    )
    .context("Failed to set up the Redis client with PUPMATCH_REDIS_CA_FILE")
}

impl Redis {
    /// Connects to `url` (`rediss://` for TLS, whose certificate must chain to `ca_file` when
    /// given, else to the system's trust store, and name the URL's host).
    pub async fn connect(url: &str, prefix: &str, ca_file: Option<&Path>) -> anyhow::Result<Redis> {
        let client = open_client(url, ca_file)?;
        let target = client.get_connection_info().addr().to_string();
        let encrypted = matches!(
            client.get_connection_info().addr(),
            redis::ConnectionAddr::TcpTls { .. }
        );
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| {
                // A refused or silent port is not a certificate problem.
                if encrypted && !e.is_connection_refusal() && !e.is_timeout() {
                    anyhow::anyhow!(
                        "Failed to open an encrypted connection to Redis at {target}: {e}. The \
                         server's certificate must chain to the CA (PUPMATCH_REDIS_CA_FILE, else \
                         the system's) and name the host of PUPMATCH_REDIS_URL"
                    )
                } else {
                    anyhow::Error::new(e).context(format!("Failed to connect to Redis at {target}"))
                }
            })?;
        let redis = Redis {
            conn,
            client,
            prefix: prefix.to_string(),
            up: Arc::new(AtomicBool::new(true)),
        };
        let weak = Arc::downgrade(&redis.up);
        let probe = redis.conn.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RETRY_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(up) = weak.upgrade() else { break };
                if up.load(Ordering::Relaxed) {
                    continue;
                }
                let mut conn = probe.clone();
                let cmd = redis::cmd("PING");
                let ping = cmd.query_async::<String>(&mut conn);
                if let Ok(Ok(_)) = tokio::time::timeout(COMMAND_TIMEOUT, ping).await {
                    up.store(true, Ordering::Relaxed);
                    tracing::info!("redis is back");
                }
            }
        });
        Ok(redis)
    }

    /// `<prefix><name>`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// Whether Redis answered the last command.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Runs `op` on the connection, failing at once while Redis is down and within
    /// [`COMMAND_TIMEOUT`] otherwise; an outage marks Redis down until the probe sees it back.
    pub async fn guarded<T, F, Fut>(&self, op: F) -> RedisResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.is_up() {
            return Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "redis is down",
            )));
        }
        let result = match tokio::time::timeout(COMMAND_TIMEOUT, op(self.conn.clone())).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "redis did not answer in time",
            ))),
        };
        if let Err(err) = &result
            && is_outage(err)
            && self.up.swap(false, Ordering::Relaxed)
        {
            tracing::warn!(error = %err, "redis is down; falling back to in-process");
        }
        result
    }

    /// One command, guarded (and traced as `redis <COMMAND>`).
    pub async fn query<T: FromRedisValue>(&self, cmd: redis::Cmd) -> RedisResult<T> {
        let name = match cmd.args_iter().next() {
            Some(redis::Arg::Simple(word)) => String::from_utf8_lossy(word).to_uppercase(),
            _ => "command".into(),
        };
        let span = redis_span(&name);
        self.guarded(|mut conn| async move { cmd.query_async(&mut conn).await })
            .instrument(span)
            .await
    }

    /// One pipeline, guarded (and traced as `redis pipeline`).
    pub async fn pipeline<T: FromRedisValue>(&self, pipe: redis::Pipeline) -> RedisResult<T> {
        self.guarded(|mut conn| async move { pipe.query_async(&mut conn).await })
            .instrument(redis_span("pipeline"))
            .await
    }

    pub async fn ping(&self) -> anyhow::Result<()> {
        // Readiness asks Redis itself, even while it is marked down.
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        tokio::time::timeout(COMMAND_TIMEOUT, ping)
            .await
            .context("redis did not answer in time")??;
        Ok(())
    }
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish()
    }
}
