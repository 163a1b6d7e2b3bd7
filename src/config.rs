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
    pub traces: Option<crate::infra::traces::TraceSettings>,
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

/// What the providers deliver, before validation. Every field is optional: absent means default.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    env: Option<String>,
    listen: Option<String>,
    metrics_listen: Option<String>,
    public_url: Option<String>,
    database_url: Option<String>,
    database_ca_file: Option<PathBuf>,
    database_max_connections: Option<u32>,
    database_replica_urls: Option<String>,
    database_replica_max_lag_ms: Option<u64>,
    redis_url: Option<String>,
    redis_ca_file: Option<PathBuf>,
    redis_prefix: Option<String>,
    media_dir: Option<PathBuf>,
    s3_bucket: Option<String>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<SecretString>,
    jwt_secret: Option<SecretString>,
    smtp_url: Option<SecretString>,
    mail_from: Option<String>,
    mail_log_secrets: Option<bool>,
    require_email_confirmation: Option<bool>,
    allowed_origins: Option<String>,
    trusted_proxies: Option<String>,
    rate_limit_user_per_min: Option<u32>,
    rate_limit_ip_per_min: Option<u32>,
    rate_limit_auth_per_min: Option<u32>,
    rate_limit_location_per_min: Option<u32>,
    rate_limit_message_per_min: Option<u32>,
    rate_limit_people_per_min: Option<u32>,
    rate_limit_profiles_per_day: Option<u32>,
    rate_limit_likes_per_day: Option<u32>,
    rate_limit_first_messages_per_day: Option<u32>,
    rate_limit_location_changes_per_day: Option<u32>,
    fcm_credentials: Option<PathBuf>,
    fcm_endpoint: Option<String>,
    log: Option<String>,
    log_format: Option<String>,
    jobs_refresh_every_secs: Option<u64>,
    jobs_deliver_every_secs: Option<u64>,
    jobs_cleanup_every_secs: Option<u64>,
    jobs_in_serve: Option<bool>,
    image_workers: Option<usize>,
    image_memory_mb: Option<u32>,
    password_workers: Option<usize>,
    moderation_hold_reporters: Option<u32>,
    moderation_hold_window_hours: Option<u32>,
    moderation_reporter_min_age_hours: Option<u32>,
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
        config.traces = crate::infra::traces::TraceSettings::from_env(
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
        errors.extend(crate::infra::tls::check_settings(
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

impl RawConfig {
    /// The configuration, or every problem with it (one line each). Each section below reads
    /// its own settings (taking them out of `self`) and adds what is wrong to `errors`.
    fn validate(mut self) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let environment = self.environment(&mut errors);
        let net = self.network(&mut errors);
        let data = self.data_stores(&mut errors);
        check_exposure(
            environment,
            net.public_url.as_ref(),
            net.allowed_origins.as_deref(),
            &mut errors,
        );
        let secrets = self.secrets_and_mail(environment, &mut errors);
        let rate_limits = self.rate_limits(&mut errors);
        let jobs = self.jobs(data.redis_url.is_none(), &mut errors);
        let work = self.work(&mut errors);
        let moderation = self.moderation(&mut errors);
        let ops = self.operations(&mut errors);
        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        Ok(Config {
            environment,
            listen: net.listen,
            metrics_listen: net.metrics_listen,
            public_url: net.public_url,
            database_url: data.database_url,
            database_ca_file: data.database_ca_file,
            database_replica_urls: data.database_replica_urls,
            database_replica_max_lag: data.database_replica_max_lag,
            redis_url: data.redis_url,
            redis_ca_file: data.redis_ca_file,
            redis_prefix: data.redis_prefix,
            media_dir: data.media_dir,
            s3: data.s3,
            jwt_secret: secrets.jwt_secret,
            smtp_url: secrets.smtp_url,
            mail_from: secrets.mail_from,
            mail_log_secrets: secrets.mail_log_secrets,
            require_email_confirmation: self
                .require_email_confirmation
                .unwrap_or(environment == Environment::Production),
            allowed_origins: net.allowed_origins,
            trusted_proxies: net.trusted_proxies,
            rate_limits,
            fcm_credentials: ops.fcm_credentials,
            fcm_endpoint: ops.fcm_endpoint,
            log: ops.log,
            log_format: ops.log_format,
            traces: None,
            database_max_connections: data.database_max_connections,
            jobs,
            work,
            moderation,
        })
    }

    fn environment(&mut self, errors: &mut Vec<String>) -> Environment {
        match self.env.as_deref().unwrap_or("development") {
            "development" | "dev" => Environment::Development,
            "production" | "prod" => Environment::Production,
            other => {
                errors.push(format!(
                    "PUPMATCH_ENV must be `development` or `production`, not `{other}`"
                ));
                Environment::Development
            }
        }
    }

    /// Where the server listens, the URL it hands out, who may call it from a browser, and
    /// which peers' `X-Forwarded-For` it believes.
    fn network(&mut self, errors: &mut Vec<String>) -> NetworkSettings {
        let listen = match self.listen.as_deref().unwrap_or("127.0.0.1:8080").parse() {
            Ok(addr) => addr,
            Err(_) => {
                errors.push("PUPMATCH_LISTEN must be an address like 127.0.0.1:8080".into());
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        };
        let metrics_listen = match self.metrics_listen.as_deref() {
            None | Some("") => None,
            Some(s) => match s.parse() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    errors.push(
                        "PUPMATCH_METRICS_LISTEN must be an address like 127.0.0.1:9090".into(),
                    );
                    None
                }
            },
        };
        let public_url = match self.public_url.as_deref() {
            None | Some("") => None,
            Some(s) => match Url::parse(s) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u),
                _ => {
                    errors.push("PUPMATCH_PUBLIC_URL must be an http(s) URL".into());
                    None
                }
            },
        };
        let mut trusted_proxies = Vec::new();
        for item in self
            .trusted_proxies
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            // A bare address is a network of one.
            let parsed = item
                .parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => trusted_proxies.push(net),
                Err(_) => errors.push(format!(
                    "PUPMATCH_TRUSTED_PROXIES must be comma-separated CIDRs like 10.0.0.0/8, not `{item}`"
                )),
            }
        }
        let allowed_origins = self.allowed_origins.take().and_then(|s| {
            let list: Vec<String> = s
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .collect();
            (!list.is_empty()).then_some(list)
        });
        let list = allowed_origins.as_deref().unwrap_or_default();
        if list.len() > 1 && list.iter().any(|o| o == ANY_ORIGIN) {
            errors.push(
                "PUPMATCH_ALLOWED_ORIGINS: `*` allows any origin; list no other with it".into(),
            );
        }
        for origin in list.iter().filter(|o| *o != ANY_ORIGIN) {
            if Url::parse(origin).is_err() {
                errors.push(format!(
                    "PUPMATCH_ALLOWED_ORIGINS: `{origin}` is not an origin like https://app.example"
                ));
            }
        }
        NetworkSettings {
            listen,
            metrics_listen,
            public_url,
            trusted_proxies,
            allowed_origins,
        }
    }

    /// The database, Redis (with their encryption) and where photos are kept.
    fn data_stores(&mut self, errors: &mut Vec<String>) -> DataSettings {
        let database_url = self
            .database_url
            .take()
            .unwrap_or_else(|| "sqlite://./data/pupmatch.db".into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            errors.push("PUPMATCH_DATABASE_URL must start with sqlite:// or postgres://".into());
        }
        let database_max_connections = self
            .database_max_connections
            .unwrap_or_else(|| default_pool_size(cores()));
        if database_max_connections == 0 {
            errors.push("PUPMATCH_DATABASE_MAX_CONNECTIONS must be at least 1".into());
        }
        let database_replica_urls: Vec<String> = self
            .database_replica_urls
            .take()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if !database_replica_urls.is_empty() && database_url.starts_with("sqlite:") {
            errors.push(
                "PUPMATCH_DATABASE_REPLICA_URLS needs a PostgreSQL PUPMATCH_DATABASE_URL (SQLite \
                 has no replicas)"
                    .into(),
            );
        }
        for url in &database_replica_urls {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                errors.push(
                    "PUPMATCH_DATABASE_REPLICA_URLS must be comma-separated postgres:// URLs"
                        .into(),
                );
            } else if let Some(mode) = crate::infra::tls::pg_ssl_mode(url)
                && !crate::infra::tls::PG_SSL_MODES.contains(&mode.as_str())
            {
                errors.push(format!(
                    "PUPMATCH_DATABASE_REPLICA_URLS: sslmode must be one of {}, not `{mode}`",
                    crate::infra::tls::PG_SSL_MODES.join(", ")
                ));
            }
        }
        let database_replica_max_lag =
            std::time::Duration::from_millis(self.database_replica_max_lag_ms.unwrap_or(2000));
        if database_replica_max_lag.is_zero() {
            errors.push("PUPMATCH_DATABASE_REPLICA_MAX_LAG_MS must be at least 1".into());
        }
        let redis_url = self.redis_url.take().filter(|s| !s.is_empty());
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            errors.push("PUPMATCH_REDIS_URL must start with redis:// or rediss://".into());
        }
        let database_ca_file = self
            .database_ca_file
            .take()
            .filter(|p| !p.as_os_str().is_empty());
        let redis_ca_file = self
            .redis_ca_file
            .take()
            .filter(|p| !p.as_os_str().is_empty());
        errors.extend(crate::infra::tls::check_settings(
            &database_url,
            database_ca_file.as_deref(),
            redis_url.as_deref(),
            redis_ca_file.as_deref(),
        ));
        let s3 = match (
            self.s3_bucket.take().filter(|s| !s.is_empty()),
            self.s3_access_key_id.take(),
            self.s3_secret_access_key.take(),
        ) {
            (None, _, _) => None,
            (Some(bucket), Some(access_key_id), Some(secret_access_key)) => Some(S3Config {
                bucket,
                endpoint: self.s3_endpoint.take().filter(|s| !s.is_empty()),
                region: self.s3_region.take().unwrap_or_else(|| "us-east-1".into()),
                access_key_id,
                secret_access_key,
            }),
            (Some(_), _, _) => {
                errors.push(
                    "PUPMATCH_S3_BUCKET needs PUPMATCH_S3_ACCESS_KEY_ID and PUPMATCH_S3_SECRET_ACCESS_KEY"
                        .into(),
                );
                None
            }
        };
        DataSettings {
            database_url,
            database_ca_file,
            database_replica_urls,
            database_replica_max_lag,
            database_max_connections,
            redis_url,
            redis_ca_file,
            redis_prefix: self
                .redis_prefix
                .take()
                .unwrap_or_else(|| "pupmatch:".into()),
            media_dir: self
                .media_dir
                .take()
                .unwrap_or_else(|| PathBuf::from("./data/media")),
            s3,
        }
    }

    /// The token secret and outgoing mail, with what production refuses.
    fn secrets_and_mail(&mut self, env: Environment, errors: &mut Vec<String>) -> SecretSettings {
        let jwt_secret = self
            .jwt_secret
            .take()
            .unwrap_or_else(|| SecretString::from(DEV_JWT_SECRET));
        check_secret(env, &jwt_secret, errors);
        let mail_log_secrets = self.mail_log_secrets.unwrap_or(false);
        check_mail(env, self.smtp_url.is_some(), mail_log_secrets, errors);
        let mail_from = self
            .mail_from
            .take()
            .unwrap_or_else(|| "PupMatch <no-reply@pupmatch.local>".into());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            errors.push(
                "PUPMATCH_MAIL_FROM must be a mailbox like PupMatch <no-reply@example.com>".into(),
            );
        }
        SecretSettings {
            jwt_secret,
            smtp_url: self.smtp_url.take(),
            mail_from,
            mail_log_secrets,
        }
    }

    fn rate_limits(&self, errors: &mut Vec<String>) -> RateLimits {
        let mut limit = |name: &str, value: Option<u32>, default: u32| -> u32 {
            let v = value.unwrap_or(default);
            if v == 0 {
                errors.push(format!("PUPMATCH_{name} must be at least 1"));
                default
            } else {
                v
            }
        };
        RateLimits {
            user_per_min: limit("RATE_LIMIT_USER_PER_MIN", self.rate_limit_user_per_min, 100),
            ip_per_min: limit("RATE_LIMIT_IP_PER_MIN", self.rate_limit_ip_per_min, 1000),
            auth_per_min: limit("RATE_LIMIT_AUTH_PER_MIN", self.rate_limit_auth_per_min, 10),
            location_per_min: limit(
                "RATE_LIMIT_LOCATION_PER_MIN",
                self.rate_limit_location_per_min,
                30,
            ),
            message_per_min: limit(
                "RATE_LIMIT_MESSAGE_PER_MIN",
                self.rate_limit_message_per_min,
                120,
            ),
            people_per_min: limit(
                "RATE_LIMIT_PEOPLE_PER_MIN",
                self.rate_limit_people_per_min,
                300,
            ),
            profiles_per_day: limit(
                "RATE_LIMIT_PROFILES_PER_DAY",
                self.rate_limit_profiles_per_day,
                1000,
            ),
            likes_per_day: limit(
                "RATE_LIMIT_LIKES_PER_DAY",
                self.rate_limit_likes_per_day,
                500,
            ),
            first_messages_per_day: limit(
                "RATE_LIMIT_FIRST_MESSAGES_PER_DAY",
                self.rate_limit_first_messages_per_day,
                100,
            ),
            location_changes_per_day: limit(
                "RATE_LIMIT_LOCATION_CHANGES_PER_DAY",
                self.rate_limit_location_changes_per_day,
                200,
            ),
        }
    }

    /// How often the jobs run, and whether `serve` runs them (by default: without Redis).
    fn jobs(&self, embedded: bool, errors: &mut Vec<String>) -> JobSchedule {
        let mut every = |name: &str, value: Option<u64>, default: u64| {
            let secs = value.unwrap_or(default);
            if secs == 0 {
                errors.push(format!("PUPMATCH_{name} must be at least 1"));
            }
            std::time::Duration::from_secs(secs.max(1))
        };
        JobSchedule {
            refresh_every: every("JOBS_REFRESH_EVERY_SECS", self.jobs_refresh_every_secs, 900),
            deliver_every: every("JOBS_DELIVER_EVERY_SECS", self.jobs_deliver_every_secs, 300),
            cleanup_every: every(
                "JOBS_CLEANUP_EVERY_SECS",
                self.jobs_cleanup_every_secs,
                86_400,
            ),
            in_serve: self.jobs_in_serve.unwrap_or(embedded),
        }
    }

    fn work(&self, errors: &mut Vec<String>) -> WorkLimits {
        let cores = cores();
        let work = WorkLimits {
            image_workers: self.image_workers.unwrap_or(cores),
            image_memory_mb: self.image_memory_mb.unwrap_or(512),
            password_workers: self.password_workers.unwrap_or(cores * 2),
        };
        if work.image_workers == 0 {
            errors.push("PUPMATCH_IMAGE_WORKERS must be at least 1".into());
        }
        if work.password_workers == 0 {
            errors.push("PUPMATCH_PASSWORD_WORKERS must be at least 1".into());
        }
        if work.image_memory_mb < 64 {
            errors.push("PUPMATCH_IMAGE_MEMORY_MB must be at least 64".into());
        }
        work
    }

    fn moderation(&self, errors: &mut Vec<String>) -> ModerationSettings {
        let moderation = ModerationSettings {
            hold_reporters: self.moderation_hold_reporters.unwrap_or(3),
            hold_window: std::time::Duration::from_secs(
                u64::from(self.moderation_hold_window_hours.unwrap_or(24)) * 3600,
            ),
            reporter_min_age: std::time::Duration::from_secs(
                u64::from(self.moderation_reporter_min_age_hours.unwrap_or(24)) * 3600,
            ),
        };
        if moderation.hold_reporters == 0 {
            errors.push("PUPMATCH_MODERATION_HOLD_REPORTERS must be at least 1".into());
        }
        if moderation.hold_window.is_zero() {
            errors.push("PUPMATCH_MODERATION_HOLD_WINDOW_HOURS must be at least 1".into());
        }
        moderation
    }

    /// Logging and push delivery.
    fn operations(&mut self, errors: &mut Vec<String>) -> OperationSettings {
        let fcm_endpoint = match self.fcm_endpoint.as_deref() {
            None | Some("") => None,
            Some(s) => match Url::parse(s) {
                Ok(u) => Some(u),
                Err(_) => {
                    errors.push("PUPMATCH_FCM_ENDPOINT must be a URL".into());
                    None
                }
            },
        };
        let log_format = match self.log_format.as_deref().unwrap_or("pretty") {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                errors.push(format!(
                    "PUPMATCH_LOG_FORMAT must be `pretty` or `json`, not `{other}`"
                ));
                LogFormat::Pretty
            }
        };
        OperationSettings {
            fcm_credentials: self.fcm_credentials.take(),
            fcm_endpoint,
            log: self.log.take().unwrap_or_else(|| "info".into()),
            log_format,
        }
    }
}

/// The sections of [`Config`] as validated, before they are put together.
struct NetworkSettings {
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    public_url: Option<Url>,
    trusted_proxies: Vec<ipnet::IpNet>,
    allowed_origins: Option<Vec<String>>,
}

struct DataSettings {
    database_url: String,
    database_ca_file: Option<PathBuf>,
    database_replica_urls: Vec<String>,
    database_replica_max_lag: std::time::Duration,
    database_max_connections: u32,
    redis_url: Option<String>,
    redis_ca_file: Option<PathBuf>,
    redis_prefix: String,
    media_dir: PathBuf,
    s3: Option<S3Config>,
}

struct SecretSettings {
    jwt_secret: SecretString,
    smtp_url: Option<SecretString>,
    mail_from: String,
    mail_log_secrets: bool,
}

struct OperationSettings {
    fcm_credentials: Option<PathBuf>,
    fcm_endpoint: Option<Url>,
    log: String,
    log_format: LogFormat,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_pool_has_four_connections_per_core_and_at_most_twenty() {
        assert_eq!(default_pool_size(1), 4);
        assert_eq!(default_pool_size(2), 8);
        assert_eq!(default_pool_size(5), 20);
        assert_eq!(default_pool_size(64), 20);
        assert_eq!(
            Config::defaults().database_max_connections,
            default_pool_size(cores())
        );
        let set = RawConfig {
            database_max_connections: Some(50),
            ..raw()
        }
        .validate()
        .expect("valid");
        assert_eq!(set.database_max_connections, 50);
    }

    fn raw() -> RawConfig {
        RawConfig::default()
    }

    #[test]
    fn defaults_are_embedded_mode_on_8080() {
        let c = Config::defaults();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://./data/pupmatch.db");
        assert!(c.redis_url.is_none());
        assert_eq!(c.rate_limits.auth_per_min, 10);
    }

    #[test]
    fn production_refuses_the_dev_secret() {
        let err = RawConfig {
            env: Some("production".into()),
            ..raw()
        }
        .validate()
        .expect_err("must refuse");
        assert!(err.to_string().contains("PUPMATCH_JWT_SECRET"));
    }

    fn production() -> RawConfig {
        RawConfig {
            env: Some("production".into()),
            jwt_secret: Some(SecretString::from(
                "a production secret of at least 32 bytes",
            )),
            smtp_url: Some(SecretString::from("smtp://127.0.0.1:2525")),
            public_url: Some("https://pupmatch.example".into()),
            allowed_origins: Some("https://app.pupmatch.example".into()),
            ..raw()
        }
    }

    #[test]
    fn email_confirmation_is_required_in_production_unless_turned_off() {
        assert!(
            production()
                .validate()
                .expect("valid")
                .require_email_confirmation
        );
        assert!(!raw().validate().expect("valid").require_email_confirmation);
        let off = RawConfig {
            require_email_confirmation: Some(false),
            ..production()
        };
        assert!(!off.validate().expect("valid").require_email_confirmation);
        let on = RawConfig {
            require_email_confirmation: Some(true),
            ..raw()
        };
        assert!(on.validate().expect("valid").require_email_confirmation);
    }

    #[test]
    fn production_names_its_origins_and_is_served_over_https() {
        production()
            .validate()
            .expect("a complete production configuration");
        let err = RawConfig {
            allowed_origins: None,
            ..production()
        }
        .validate()
        .expect_err("refused");
        assert!(
            err.to_string().contains("PUPMATCH_ALLOWED_ORIGINS"),
            "{err}"
        );
        let any = RawConfig {
            allowed_origins: Some(" * ".into()),
            ..production()
        }
        .validate()
        .expect("`*` on purpose");
        assert!(any.any_origin() && any.origin_allowed("https://evil.example"));
        let err = RawConfig {
            allowed_origins: Some("*, https://a.example".into()),
            ..production()
        }
        .validate()
        .expect_err("refused");
        assert!(err.to_string().contains("`*`"), "{err}");
        for url in [None, Some("http://pupmatch.example")] {
            let err = RawConfig {
                public_url: url.map(String::from),
                ..production()
            }
            .validate()
            .expect_err("refused");
            assert!(err.to_string().contains("PUPMATCH_PUBLIC_URL"), "{err}");
        }
        let listed = production().validate().expect("valid");
        assert!(!listed.any_origin());
        assert!(listed.origin_allowed("https://app.pupmatch.example"));
        assert!(!listed.origin_allowed("https://evil.example"));
        // Development stays open without the setting.
        let dev = Config::defaults();
        assert!(dev.any_origin() && dev.origin_allowed("http://localhost:19006"));
    }

    #[test]
    fn a_toml_file_overrides_the_defaults() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pupmatch.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\nrate_limit_auth_per_min = 7\nallowed_origins = \"https://a.example, https://b.example/\"\n",
        )
        .expect("write");
        let c = Config::load(Some(&path)).expect("valid");
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.rate_limits.auth_per_min, 7);
        assert_eq!(
            c.allowed_origins,
            Some(vec![
                "https://a.example".to_string(),
                "https://b.example".to_string()
            ])
        );
    }

    #[test]
    fn a_bad_or_unknown_toml_value_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("pupmatch.toml");
        std::fs::write(&path, "rate_limit_user_per_min = \"lots\"\n").expect("write");
        let err = Config::load(Some(&path)).expect_err("refused").to_string();
        assert!(err.contains("rate_limit_user_per_min"), "{err}");
        std::fs::write(&path, "databse_url = \"sqlite://x.db\"\n").expect("write");
        let err = Config::load(Some(&path)).expect_err("refused").to_string();
        assert!(err.contains("databse_url"), "{err}");
        let missing = Config::load(Some(&dir.path().join("nope.toml"))).expect_err("refused");
        assert!(missing.to_string().contains("does not exist"));
    }

    #[test]
    fn every_bad_value_gets_its_own_line() {
        let err = RawConfig {
            env: Some("staging".into()),
            listen: Some("nowhere".into()),
            log_format: Some("xml".into()),
            rate_limit_user_per_min: Some(0),
            jwt_secret: Some(SecretString::from("short")),
            ..raw()
        }
        .validate()
        .expect_err("must refuse");
        assert_eq!(err.0.len(), 5, "{err}");
    }

    #[test]
    fn read_replicas_are_postgres_urls_of_a_postgres_primary() {
        let err = RawConfig {
            database_replica_urls: Some("postgres://replica/pupmatch".into()),
            ..raw()
        }
        .validate()
        .expect_err("SQLite has no replicas");
        assert!(err.0[0].contains("SQLite has no replicas"), "{err}");
        let err = RawConfig {
            database_url: Some("postgres://primary/pupmatch".into()),
            database_replica_urls: Some(
                "postgres://a/pupmatch?sslmode=verify-full, mysql://b/pupmatch".into(),
            ),
            database_replica_max_lag_ms: Some(0),
            ..raw()
        }
        .validate()
        .expect_err("must refuse");
        assert_eq!(err.0.len(), 2, "{err}");
        let ok = RawConfig {
            database_url: Some("postgres://primary/pupmatch".into()),
            database_replica_urls: Some(" postgres://a/p , postgres://b/p ,".into()),
            ..raw()
        }
        .validate()
        .expect("valid");
        assert_eq!(
            ok.database_replica_urls,
            ["postgres://a/p", "postgres://b/p"]
        );
        assert_eq!(
            ok.database_replica_max_lag,
            std::time::Duration::from_secs(2)
        );
    }
}
