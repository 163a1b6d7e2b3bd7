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
    /// Each person a field returns to a signed-in user, per minute.
    People,
    /// Each like of a signed-in user, per day.
    LikesPerDay,
    /// Each first message a signed-in user sends into a conversation, per day.
    FirstMessagesPerDay,
    /// Each location change of a signed-in user, per day.
    LocationChangesPerDay,
}

/// Data exports per minute per person (an export reads everything the person has).
pub const EXPORTS_PER_MIN: u32 = 1;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

const BUCKETS: [Bucket; 10] = [
    Bucket::User,
    Bucket::Ip,
    Bucket::Auth,
    Bucket::Location,
    Bucket::Message,
    Bucket::Export,
    Bucket::People,
    Bucket::LikesPerDay,
    Bucket::FirstMessagesPerDay,
    Bucket::LocationChangesPerDay,
];

impl Bucket {
    fn name(self) -> &'static str {
        match self {
            Bucket::User => "user",
            Bucket::Ip => "ip",
            Bucket::Auth => "auth",
            Bucket::Location => "location",
            Bucket::Message => "message",
            Bucket::Export => "export",
            Bucket::People => "people",
            Bucket::LikesPerDay => "likes-day",
            Bucket::FirstMessagesPerDay => "first-messages-day",
            Bucket::LocationChangesPerDay => "location-day",
        }
    }

    /// How many may be spent in how long (all of them at once, if the budget is full).
    fn quota(self, limits: &RateLimits) -> (u32, Duration) {
        match self {
            Bucket::User => (limits.user_per_min, MINUTE),
            Bucket::Ip => (limits.ip_per_min, MINUTE),
            Bucket::Auth => (limits.auth_per_min, MINUTE),
            Bucket::Location => (limits.location_per_min, MINUTE),
            Bucket::Message => (limits.message_per_min, MINUTE),
            Bucket::Export => (EXPORTS_PER_MIN, MINUTE),
            Bucket::People => (limits.people_per_min, MINUTE),
            Bucket::LikesPerDay => (limits.likes_per_day, DAY),
            Bucket::FirstMessagesPerDay => (limits.first_messages_per_day, DAY),
            Bucket::LocationChangesPerDay => (limits.location_changes_per_day, DAY),
        }
    }

    /// The bucket's limit (at least 1) and the time one unit takes to come back.
    fn emission(self, limits: &RateLimits) -> (u32, Duration) {
        let (limit, period) = self.quota(limits);
        let limit = limit.max(1);
        (limit, period / limit)
    }
}

/// A shared handle to the configured limiter.
#[derive(Clone)]
pub struct RateLimiter {
    local: Arc<LocalLimiter>,
    redis: Option<Redis>,
    limits: RateLimits,
}

/// One in-process limiter per bucket, in [`BUCKETS`] order.
struct LocalLimiter(Vec<DefaultKeyedRateLimiter<String>>);

impl LocalLimiter {
    fn new(limits: &RateLimits) -> Self {
        LocalLimiter(
            BUCKETS
                .iter()
                .map(|bucket| {
                    let (limit, interval) = bucket.emission(limits);
                    let burst = NonZeroU32::new(limit).unwrap_or(NonZeroU32::MIN);
                    let quota = Quota::with_period(interval.max(Duration::from_nanos(1)))
                        .expect("a period of at least a nanosecond")
                        .allow_burst(burst);
                    governor::RateLimiter::keyed(quota)
                })
                .collect(),
        )
    }

    fn limiter(&self, bucket: Bucket) -> &DefaultKeyedRateLimiter<String> {
        let i = BUCKETS.iter().position(|b| *b == bucket).unwrap_or(0);
        &self.0[i]
    }

    fn check(&self, bucket: Bucket, subject: &str, cost: u32) -> Result<(), Duration> {
        let limiter = self.limiter(bucket);
        let cost = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        match limiter.check_key_n(&subject.to_string(), cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(DefaultClock::default().now())),
            // More than the whole budget at once: never, so wait as long as a full refill.
            Err(_) => Err(MINUTE),
        }
    }
}

/// GCRA in one atomic step, for one or more budgets at once: a request is let through only when
/// every budget allows it, and then spends one of each; a refused request spends nothing.
/// KEYS: the bucket keys. ARGV[3i-2], ARGV[3i-1], ARGV[3i]: the i-th bucket's emission interval
/// and tolerance (µs; tolerance = interval × (limit − 1)) and how many units to spend. Returns 0
/// when allowed, otherwise the microseconds to wait (the longest wait of the budgets that refuse).
static GCRA_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local tolerance = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local allow_at = tat + (cost - 1) * interval - tolerance
  if now < allow_at and allow_at - now > wait then wait = allow_at - now end
  tats[i] = tat + cost * interval
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
        self.check_n(bucket, subject, 1).await
    }

    /// Spends `cost` units of `subject`'s budget at once (none when that is more than is left).
    pub async fn check_n(&self, bucket: Bucket, subject: &str, cost: u32) -> Result<(), Duration> {
        if cost == 0 {
            return Ok(());
        }
        self.spend(&[(bucket, subject, cost)]).await
    }

    /// Spends one of each budget, in one round trip to Redis: all or nothing, so a request
    /// refused by one budget spends none of the others (in-process, each is checked in turn).
    pub async fn check_all(&self, budgets: &[(Bucket, &str)]) -> Result<(), Duration> {
        let budgets: Vec<(Bucket, &str, u32)> = budgets.iter().map(|(b, s)| (*b, *s, 1)).collect();
        self.spend(&budgets).await
    }

    async fn spend(&self, budgets: &[(Bucket, &str, u32)]) -> Result<(), Duration> {
        let Some(redis) = &self.redis else {
            return self.check_locally(budgets);
        };
        let mut script = GCRA_SCRIPT.prepare_invoke();
        for (bucket, subject, cost) in budgets {
            let (limit, interval) = bucket.emission(&self.limits);
            let interval = u64::try_from(interval.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            script
                .key(redis.key(&format!("rl:{}:{}", bucket.name(), subject)))
                .arg(interval)
                .arg(interval * u64::from(limit - 1))
                .arg(*cost.min(&limit));
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

    fn check_locally(&self, budgets: &[(Bucket, &str, u32)]) -> Result<(), Duration> {
        budgets
            .iter()
            .try_for_each(|(bucket, subject, cost)| self.local.check(*bucket, subject, *cost))
    }

    /// Drops in-process state of subjects that are back to a full budget (memory bound).
    pub fn prune(&self) {
        for limiter in &self.local.0 {
            limiter.retain_recent();
        }
    }
}
