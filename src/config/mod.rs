//! Typed configuration: defaults → optional TOML file → `PUPMATCH_*` environment variables.
//!
//! The names are part of the operator contract: renaming one breaks deployments. Raw values are read leniently and then
//! validated all at once, so a bad deployment gets one clear line per bad value instead of the
//! first error only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

mod raw;
#[cfg(test)]
mod tests;
pub mod tls;
pub mod traces;

use raw::RawConfig;

/// The JWT secret used when none is configured. Fine on a laptop; refused in production.
pub const DEV_JWT_SECRET: &str = "pupmatch-development-secret-do-not-use-in-production";

/// `development` (GraphiQL, introspection, dev secret allowed) or `production`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// S3-compatible object storage settings (all of bucket, region and keys, endpoint optional).
#[derive(Debug, Clone)]
pub struct S3Config {
    pub bucket: String,
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: SecretString,
}

/// Rate limits, in requests per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per signed-in user, every request.
    pub user_per_min: u32,
    /// Per client IP, every request.
    pub ip_per_min: u32,
    /// Per client IP, each login / register / password-reset attempt.
    pub auth_per_min: u32,
    /// Per signed-in user, each location update.
    pub location_per_min: u32,
    /// Per signed-in user, each chat message or typing signal.
    pub message_per_min: u32,
    /// Per signed-in user, each person a field returns (a profile, a recommendation, a match,
    /// a conversation's other person).
    pub people_per_min: u32,
    /// Per signed-in user, new people shown in a day (recommendations served for the first
    /// time): the ceiling on profiles viewed.
    pub profiles_per_day: u32,
    /// Per signed-in user, likes in a day.
    pub likes_per_day: u32,
    /// Per signed-in user, first messages into conversations in a day.
    pub first_messages_per_day: u32,
    /// Per signed-in user, location changes in a day.
    pub location_changes_per_day: u32,
}

/// How often the background jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSchedule {
    /// Refresh the recommendations of people active in the last 24 h.
    pub refresh_every: std::time::Duration,
    /// Deliver queued push notifications.
    pub deliver_every: std::time::Duration,
    /// Remove expired tokens, old passes and notifications, and unreferenced blobs.
    pub cleanup_every: std::time::Duration,
    /// Whether `serve` runs the jobs itself (default: in embedded mode, without Redis).
    pub in_serve: bool,
}

/// The validated configuration the application runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub listen: SocketAddr,
    /// Where `/metrics` is served; `None`: on the main address.
    pub metrics_listen: Option<SocketAddr>,
    /// Base of links in emails and of signed media URLs; `None` means `http://<bound address>`.
    pub public_url: Option<Url>,
    pub database_url: String,
    /// CA bundle (PEM) that PostgreSQL's certificate must chain to; `None`: the system's.
    pub database_ca_file: Option<PathBuf>,
    /// Streaming replicas of the PostgreSQL primary for reads that may be a moment stale.
    pub database_replica_urls: Vec<String>,
    /// A replica further behind the primary than this gets no reads until it catches up.
    pub database_replica_max_lag: std::time::Duration,
    pub redis_url: Option<String>,
    /// CA bundle (PEM) that Redis's certificate must chain to (`rediss://`); `None`: the system's.
    pub redis_ca_file: Option<PathBuf>,
    /// Prefix of every Redis key and channel, so several deployments (or tests) share one Redis.
    pub redis_prefix: String,
    pub media_dir: PathBuf,
    pub s3: Option<S3Config>,
    pub jwt_secret: SecretString,
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    /// Development without SMTP: write the secrets of logged emails (reset tokens) in clear.
    pub mail_log_secrets: bool,
    /// New accounts must confirm their email address before they are discoverable and can
    /// like, message, report or add places (default: in production).
    pub require_email_confirmation: bool,
    /// `None` (development only) or `["*"]`: any origin.
    pub allowed_origins: Option<Vec<String>>,
    /// Peers whose `X-Forwarded-For` is believed (load balancers, reverse proxies).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub rate_limits: RateLimits,
    pub fcm_credentials: Option<PathBuf>,
    pub fcm_endpoint: Option<Url>,
    pub log: String,
    pub log_format: LogFormat,
    /// Where OpenTelemetry traces go (the standard `OTEL_*` variables); `None`: nowhere.
    pub traces: Option<traces::TraceSettings>,
    /// Maximum connections in the database pool.
    pub database_max_connections: u32,
    pub jobs: JobSchedule,
    pub work: WorkLimits,
    pub moderation: ModerationSettings,
}

/// When reports hide a person before a moderator has looked.
#[derive(Debug, Clone, Copy)]
pub struct ModerationSettings {
    /// Distinct reporters within `hold_window` that hide the reported person.
    pub hold_reporters: u32,
    pub hold_window: std::time::Duration,
    /// How old a reporter's account must be for their report to count towards a hold.
    pub reporter_min_age: std::time::Duration,
}

/// Bounds of the CPU- and memory-heavy work (see `infra::work`).
#[derive(Debug, Clone, Copy)]
pub struct WorkLimits {
    /// Photos decoded and re-encoded at once.
    pub image_workers: usize,
    /// Memory the photos being decoded may take together, in MiB.
    pub image_memory_mb: u32,
    /// Passwords hashed or verified at once (19 MiB each).
    pub password_workers: usize,
}

/// Every problem found in the configuration, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Loads from an optional TOML file and the process environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(vec![format!(
                    "config file {} does not exist",
                    path.display()
                )]));
            }
            figment = figment.merge(Toml::file(path));
        }
        // PUPMATCH_CONFIG names the file itself, and is not a setting.
        figment = figment.merge(Env::prefixed("PUPMATCH_").ignore(&["config"]));
        let raw: RawConfig = figment
            .extract()
            .map_err(|e| ConfigError(e.into_iter().map(|e| e.to_string()).collect()))?;
        let mut config = raw.validate()?;
        // Traces are configured as in every OpenTelemetry SDK, by the standard variables.
        config.traces = traces::TraceSettings::from_env(
            |name| std::env::var(name).ok(),
            config.is_production(),
        )
        .map_err(|e| ConfigError(vec![e]))?;
        Ok(config)
    }

    /// The configuration with every default: embedded mode on 127.0.0.1:8080.
    pub fn defaults() -> Config {
        RawConfig::default()
            .validate()
            .expect("the defaults are valid by construction")
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// Whether a browser page from `origin` may call the API and open a WebSocket.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        match &self.allowed_origins {
            None => true,
            Some(list) => list.iter().any(|a| a == ANY_ORIGIN || a == origin),
        }
    }

    /// Whether every origin is allowed (unset in development, or `*`).
    pub fn any_origin(&self) -> bool {
        self.allowed_origins
            .as_deref()
            .is_none_or(|list| list.iter().any(|a| a == ANY_ORIGIN))
    }

    /// Checks rules that span fields, after a caller changed values programmatically.
    pub fn check(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        check_secret(self.environment, &self.jwt_secret, &mut errors);
        check_mail(
            self.environment,
            self.smtp_url.is_some(),
            self.mail_log_secrets,
            &mut errors,
        );
        check_exposure(
            self.environment,
            self.public_url.as_ref(),
            self.allowed_origins.as_deref(),
            &mut errors,
        );
        errors.extend(tls::check_settings(
            &self.database_url,
            self.database_ca_file.as_deref(),
            self.redis_url.as_deref(),
            self.redis_ca_file.as_deref(),
        ));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(errors))
        }
    }
}

/// The cores this process may use (2 when the system does not say).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// The database pool's default size on a machine with `cores` cores. More transactions at once
/// than the database has cores to run them makes each one slower (they queue on locks and for
/// the CPU inside PostgreSQL); waiting for a connection in the pool is cheaper. Four per core,
/// from 4 to 20.
fn default_pool_size(cores: usize) -> u32 {
    u32::try_from(cores.saturating_mul(4))
        .unwrap_or(20)
        .clamp(4, 20)
}

/// `PUPMATCH_ALLOWED_ORIGINS=*`: any origin, said on purpose.
pub const ANY_ORIGIN: &str = "*";

/// Production is reached over HTTPS (the console's cookie is `Secure`, links in emails are
/// safe to follow) and names the web origins it serves: without the list, any page on the web
/// could call the API with a visitor's credentials and open sockets. `*` says so on purpose.
fn check_exposure(
    env: Environment,
    public_url: Option<&Url>,
    allowed_origins: Option<&[String]>,
    errors: &mut Vec<String>,
) {
    if env != Environment::Production {
        return;
    }
    if public_url.is_none_or(|u| u.scheme() != "https") {
        errors.push(
            "PUPMATCH_PUBLIC_URL must be an https:// URL in production (the address people \
             reach the service at, behind its TLS proxy)"
                .into(),
        );
    }
    if allowed_origins.is_none() {
        errors.push(
            "PUPMATCH_ALLOWED_ORIGINS must be set in production: the origins of your web pages \
             (e.g. https://app.example), or `*` to allow any"
                .into(),
        );
    }
}

/// Production sends mail for real: without SMTP a reset email would only reach the log, and a
/// log that holds reset tokens lets anyone who reads it take over any account.
fn check_mail(env: Environment, has_smtp: bool, log_secrets: bool, errors: &mut Vec<String>) {
    if env != Environment::Production {
        return;
    }
    if !has_smtp {
        errors.push(
            "PUPMATCH_SMTP_URL must be set in production (password-reset emails need a mail server)"
                .into(),
        );
    }
    if log_secrets {
        errors.push("PUPMATCH_MAIL_LOG_SECRETS cannot be used in production".into());
    }
}

fn check_secret(env: Environment, secret: &SecretString, errors: &mut Vec<String>) {
    let s = secret.expose_secret();
    if s.len() < 32 {
        errors.push("PUPMATCH_JWT_SECRET must be at least 32 bytes".into());
    }
    if env == Environment::Production && s == DEV_JWT_SECRET {
        errors.push(
            "PUPMATCH_JWT_SECRET must be set in production (the development secret is refused)"
                .into(),
        );
    }
}
