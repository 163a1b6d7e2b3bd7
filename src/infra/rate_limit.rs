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
    /// Each location update of a signed-in user (updates are limited: no live tracking).
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

/// GCRA in one atomic step, for one or more budgets at once: a request is let through only when
/// every budget allows it, and then spends one of each; a refused request spends nothing.
/// KEYS: the bucket keys. ARGV[2i-1], ARGV[2i]: the i-th bucket's emission interval and tolerance
/// (µs; tolerance = interval × (limit − 1)). Returns 0 when allowed, otherwise the microseconds
/// to wait (the longest wait of the budgets that refuse).
static GCRA_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local allow_at = tat - tolerance
  if now < allow_at and allow_at - now > wait then wait = allow_at - now end
  tats[i] = tat + interval
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
end
return 0
",
    )
});

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
        self.check_all(&[(bucket, subject)]).await
    }

    /// Spends one of each budget, in one round trip to Redis: all or nothing, so a request
    /// refused by one budget spends none of the others (in-process, each is checked in turn).
    pub async fn check_all(&self, budgets: &[(Bucket, &str)]) -> Result<(), Duration> {
        let Some(redis) = &self.redis else {
            return self.check_locally(budgets);
        };
        let mut script = GCRA_SCRIPT.prepare_invoke();
        for (bucket, subject) in budgets {
            let limit = u64::from(bucket.limit(&self.limits).max(1));
            let interval = 60_000_000 / limit;
            script
                .key(redis.key(&format!("rl:{}:{}", bucket.name(), subject)))
                .arg(interval)
                .arg(interval * (limit - 1));
        }
        let result: redis::RedisResult<i64> = redis
            .guarded(|mut conn| async move { script.invoke_async(&mut conn).await })
            .await;
        match result {
            Ok(0) => Ok(()),
            Ok(wait_us) => Err(Duration::from_micros(wait_us.unsigned_abs())),
            Err(err) => {
                // While Redis is down (logged once, where it was noticed) this is expected.
                if redis.is_up() {
                    tracing::warn!(error = %err, "shared rate limit unavailable; limiting in-process");
                }
                self.check_locally(budgets)
            }
        }
    }

    fn check_locally(&self, budgets: &[(Bucket, &str)]) -> Result<(), Duration> {
        budgets
            .iter()
            .try_for_each(|(bucket, subject)| self.local.check(*bucket, subject))
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
