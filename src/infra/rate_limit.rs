//! Rate limiting with GCRA (the generic cell rate algorithm): `limit` requests per minute with a
//! burst of `limit`, so a quiet client may spend its whole minute at once and then gets one
//! request every `60 s / limit`.
//!
//! Without Redis every instance limits on its own with `governor`. With Redis the state lives in
//! one key per (bucket, subject), updated atomically by a Lua script that reads Redis' own clock,
//! so every instance shares one budget. If Redis fails, the check falls back to the in-process
//! limiter rather than letting traffic through unlimited.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimits;
use crate::infra::redis::Redis;

/// Which budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Every request of a signed-in user, keyed by user id.
    User,
    /// Every request from one client IP.
    Ip,
    /// Each login / register / password-reset attempt from one client IP.
    Auth,
    /// Each location update of a signed-in user (DESIGN §5: location updates are limited).
    Location,
    /// Each chat message or typing signal of a signed-in user.
    Message,
    /// Each data export of a signed-in user: one a minute.
    Export,
}

/// Data exports per minute per person (an export reads everything the person has).
pub const EXPORTS_PER_MIN: u32 = 1;

impl Bucket {
    fn name(self) -> &'static str {
        match self {
            Bucket::User => "user",
            Bucket::Ip => "ip",
            Bucket::Auth => "auth",
            Bucket::Location => "location",
            Bucket::Message => "message",
            Bucket::Export => "export",
        }
    }

    fn limit(self, limits: &RateLimits) -> u32 {
        match self {
            Bucket::User => limits.user_per_min,
            Bucket::Ip => limits.ip_per_min,
            Bucket::Auth => limits.auth_per_min,
            Bucket::Location => limits.location_per_min,
            Bucket::Message => limits.message_per_min,
            Bucket::Export => EXPORTS_PER_MIN,
        }
    }
}

/// A shared handle to the configured limiter.
#[derive(Clone)]
pub struct RateLimiter {
    local: Arc<LocalLimiter>,
    redis: Option<Redis>,
    limits: RateLimits,
}

struct LocalLimiter {
    user: DefaultKeyedRateLimiter<String>,
    ip: DefaultKeyedRateLimiter<String>,
    auth: DefaultKeyedRateLimiter<String>,
    location: DefaultKeyedRateLimiter<String>,
    message: DefaultKeyedRateLimiter<String>,
    export: DefaultKeyedRateLimiter<String>,
}

fn keyed(per_min: u32) -> DefaultKeyedRateLimiter<String> {
    let n = NonZeroU32::new(per_min).unwrap_or(NonZeroU32::MIN);
    governor::RateLimiter::keyed(Quota::per_minute(n))
}

impl LocalLimiter {
    fn new(limits: &RateLimits) -> Self {
        LocalLimiter {
            user: keyed(limits.user_per_min),
            ip: keyed(limits.ip_per_min),
            auth: keyed(limits.auth_per_min),
            location: keyed(limits.location_per_min),
            message: keyed(limits.message_per_min),
            export: keyed(EXPORTS_PER_MIN),
        }
    }

    fn check(&self, bucket: Bucket, subject: &str) -> Result<(), Duration> {
        let limiter = match bucket {
            Bucket::User => &self.user,
            Bucket::Ip => &self.ip,
            Bucket::Auth => &self.auth,
            Bucket::Location => &self.location,
            Bucket::Message => &self.message,
            Bucket::Export => &self.export,
        };
        limiter
            .check_key(&subject.to_string())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// GCRA in one atomic step. KEYS[1]: the bucket key. ARGV[1]: emission interval (µs).
/// ARGV[2]: tolerance (µs) = interval × (limit − 1). Returns 0 when allowed, otherwise the
/// microseconds to wait.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then return allow_at - now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return 0
";

impl RateLimiter {
    /// In-process limits (embedded mode, or a fallback).
    pub fn local(limits: RateLimits) -> Self {
        RateLimiter {
            local: Arc::new(LocalLimiter::new(&limits)),
            redis: None,
            limits,
        }
    }

    /// Limits shared by every instance using this Redis.
    pub fn shared(limits: RateLimits, redis: Redis) -> Self {
        RateLimiter {
            redis: Some(redis),
            ..RateLimiter::local(limits)
        }
    }

    /// Spends one request of `subject`'s budget; `Err(wait)` when it is exhausted.
    /// Spends one of a user's chat budget ([`Bucket::Message`]: messages, shared places and
    /// typing signals, over GraphQL and the WebSocket alike).
    pub async fn check_message(&self, user_id: uuid::Uuid) -> Result<(), crate::error::ApiError> {
        self.check(Bucket::Message, &user_id.to_string())
            .await
            .map_err(crate::error::ApiError::RateLimited)
    }

    pub async fn check(&self, bucket: Bucket, subject: &str) -> Result<(), Duration> {
        let Some(redis) = &self.redis else {
            return self.local.check(bucket, subject);
        };
        let limit = u64::from(bucket.limit(&self.limits).max(1));
        let interval = 60_000_000 / limit;
        let tolerance = interval * (limit - 1);
        let key = redis.key(&format!("rl:{}:{}", bucket.name(), subject));
        let result: redis::RedisResult<i64> = redis
            .guarded(|mut conn| async move {
                redis::Script::new(GCRA_SCRIPT)
                    .key(key)
                    .arg(interval)
                    .arg(tolerance)
                    .invoke_async(&mut conn)
                    .await
            })
            .await;
        match result {
            Ok(0) => Ok(()),
            Ok(wait_us) => Err(Duration::from_micros(wait_us.unsigned_abs())),
            Err(err) => {
                // While Redis is down (logged once, where it was noticed) this is expected.
                if redis.is_up() {
                    tracing::warn!(error = %err, "shared rate limit unavailable; limiting in-process");
                }
                self.local.check(bucket, subject)
            }
        }
    }

    /// Drops in-process state of subjects that are back to a full budget (memory bound).
    pub fn prune(&self) {
        self.local.user.retain_recent();
        self.local.ip.retain_recent();
        self.local.auth.retain_recent();
        self.local.location.retain_recent();
        self.local.message.retain_recent();
        self.local.export.retain_recent();
    }
}
