//! The settings as the providers deliver them, and their validation: each section reads its
//! own settings and names every problem with them.

use super::*;

/// What the providers deliver, before validation. Every field is optional: absent means default.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) env: Option<String>,
    pub(super) listen: Option<String>,
    pub(super) metrics_listen: Option<String>,
    pub(super) public_url: Option<String>,
    pub(super) database_url: Option<String>,
    pub(super) database_ca_file: Option<PathBuf>,
    pub(super) database_max_connections: Option<u32>,
    pub(super) database_replica_urls: Option<String>,
    pub(super) database_replica_max_lag_ms: Option<u64>,
    pub(super) redis_url: Option<String>,
    pub(super) redis_ca_file: Option<PathBuf>,
    pub(super) redis_prefix: Option<String>,
    pub(super) media_dir: Option<PathBuf>,
    pub(super) s3_bucket: Option<String>,
    pub(super) s3_endpoint: Option<String>,
    pub(super) s3_region: Option<String>,
    pub(super) s3_access_key_id: Option<String>,
    pub(super) s3_secret_access_key: Option<SecretString>,
    pub(super) jwt_secret: Option<SecretString>,
    pub(super) smtp_url: Option<SecretString>,
    pub(super) mail_from: Option<String>,
    pub(super) mail_log_secrets: Option<bool>,
    pub(super) require_email_confirmation: Option<bool>,
    pub(super) allowed_origins: Option<String>,
    pub(super) trusted_proxies: Option<String>,
    pub(super) rate_limit_user_per_min: Option<u32>,
    pub(super) rate_limit_ip_per_min: Option<u32>,
    pub(super) rate_limit_auth_per_min: Option<u32>,
    pub(super) rate_limit_location_per_min: Option<u32>,
    pub(super) rate_limit_message_per_min: Option<u32>,
    pub(super) rate_limit_people_per_min: Option<u32>,
    pub(super) rate_limit_profiles_per_day: Option<u32>,
    pub(super) rate_limit_likes_per_day: Option<u32>,
    pub(super) rate_limit_first_messages_per_day: Option<u32>,
    pub(super) rate_limit_location_changes_per_day: Option<u32>,
    pub(super) fcm_credentials: Option<PathBuf>,
    pub(super) fcm_endpoint: Option<String>,
    pub(super) log: Option<String>,
    pub(super) log_format: Option<String>,
    pub(super) jobs_refresh_every_secs: Option<u64>,
    pub(super) jobs_deliver_every_secs: Option<u64>,
    pub(super) jobs_cleanup_every_secs: Option<u64>,
    pub(super) jobs_in_serve: Option<bool>,
    pub(super) image_workers: Option<usize>,
    pub(super) image_memory_mb: Option<u32>,
    pub(super) password_workers: Option<usize>,
    pub(super) moderation_hold_reporters: Option<u32>,
    pub(super) moderation_hold_window_hours: Option<u32>,
    pub(super) moderation_reporter_min_age_hours: Option<u32>,
}

impl RawConfig {
    /// The configuration, or every problem with it (one line each). Each section below reads
    /// its own settings (taking them out of `self`) and adds what is wrong to `errors`.
    pub(super) fn validate(mut self) -> Result<Config, ConfigError> {
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
            } else if let Some(mode) = super::tls::pg_ssl_mode(url)
                && !super::tls::PG_SSL_MODES.contains(&mode.as_str())
            {
                errors.push(format!(
                    "PUPMATCH_DATABASE_REPLICA_URLS: sslmode must be one of {}, not `{mode}`",
                    super::tls::PG_SSL_MODES.join(", ")
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
        errors.extend(super::tls::check_settings(
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
