//! The two-tier cache: L1 in process (moka, short TTL, size
//! bound), L2 in Redis (shared, longer TTL) when configured.
//!
//! Writes go to the database first, then [`TwoTierCache::invalidate`] deletes the L2 entry and
//! publishes the key(s) on the bus; every instance (this one included) drops it from L1 when the
//! message arrives, and this instance also drops it at once. Readers go L1 → L2 → database and
//! fill both tiers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::bus::Bus;
use super::redis::Redis;

/// How long after a change [`TwoTierCache::invalidate_settled`] invalidates again: longer than a
/// cache fill takes (one database read).
pub const SETTLE: Duration = Duration::from_secs(2);

/// What one cache keeps, and for how long: in this process (L1) and, in scale-out mode and
/// when the cache is shared, in Redis (L2).
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    name: &'static str,
    in_process: Duration,
    entries: u64,
    /// `None`: in this process only, also in scale-out mode.
    in_redis: Option<Duration>,
}

impl CachePolicy {
    /// Up to `entries` values in this process, each for `seconds`.
    pub const fn in_process(name: &'static str, seconds: u64, entries: u64) -> Self {
        CachePolicy {
            name,
            in_process: Duration::from_secs(seconds),
            entries,
            in_redis: None,
        }
    }

    /// Also in Redis (when there is one), each value for `seconds`.
    pub const fn and_redis(self, seconds: u64) -> Self {
        CachePolicy {
            in_redis: Some(Duration::from_secs(seconds)),
            ..self
        }
    }
}

pub struct TwoTierCache<V> {
    name: &'static str,
    l1: moka::future::Cache<uuid::Uuid, Arc<V>>,
    l2_ttl: Duration,
    redis: Option<Redis>,
    bus: Bus,
}

/// `cache_requests_total{cache, tier, outcome}`: `n` lookups of `cache` in `tier` (`l1`, the
/// process; `l2`, Redis) that found (`hit`) or did not find (`miss`) their key.
fn count(cache: &'static str, tier: &'static str, outcome: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!("cache_requests_total", "cache" => cache, "tier" => tier, "outcome" => outcome)
            .increment(n);
    }
}

impl<V> TwoTierCache<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Also starts the task that applies other instances' invalidations to L1.
    pub fn new(policy: CachePolicy, redis: Option<Redis>, bus: Bus) -> Arc<Self> {
        let cache = Arc::new(TwoTierCache {
            name: policy.name,
            l1: moka::future::Cache::builder()
                .time_to_live(policy.in_process)
                .max_capacity(policy.entries)
                .build(),
            l2_ttl: policy.in_redis.unwrap_or_default(),
            redis: redis.filter(|_| policy.in_redis.is_some()),
            bus,
        });
        let weak = Arc::downgrade(&cache);
        let mut rx = cache.bus.subscribe();
        let topic = cache.topic();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(msg) if msg.topic == topic => {
                        let Some(cache) = weak.upgrade() else { break };
                        // One or more comma-separated keys.
                        for key in msg.payload.split(',') {
                            if let Ok(key) = key.parse::<uuid::Uuid>() {
                                cache.l1.invalidate(&key).await;
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // Missed invalidations: drop all of L1 rather than serve stale data.
                        let Some(cache) = weak.upgrade() else { break };
                        cache.l1.invalidate_all();
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        cache
    }

    fn topic(&self) -> String {
        format!("cache:{}", self.name)
    }

    /// The L1 invalidation message for `keys`.
    fn payload(keys: &[uuid::Uuid]) -> String {
        keys.iter()
            .map(uuid::Uuid::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn l2_key(redis: &Redis, name: &str, key: &uuid::Uuid) -> String {
        redis.key(&format!("{name}:{key}"))
    }

    /// Values found in L1 or L2 (L2 hits are copied into L1); misses are absent.
    pub async fn get_many(&self, keys: &[uuid::Uuid]) -> HashMap<uuid::Uuid, Arc<V>> {
        let mut found = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for key in keys {
            match self.l1.get(key).await {
                Some(v) => {
                    found.insert(*key, v);
                }
                None => missing.push(*key),
            }
        }
        let local_hits = found.len() as u64;
        count(self.name, "l1", "hit", local_hits);
        count(self.name, "l1", "miss", missing.len() as u64);
        if let (Some(redis), false) = (&self.redis, missing.is_empty()) {
            let names: Vec<String> = missing
                .iter()
                .map(|k| Self::l2_key(redis, self.name, k))
                .collect();
            let mut cmd = redis::cmd("MGET");
            cmd.arg(&names);
            let values: redis::RedisResult<Vec<Option<String>>> = redis.query(cmd).await;
            match values {
                Ok(values) => {
                    for (key, value) in missing.iter().zip(values) {
                        if let Some(v) = value.and_then(|s| serde_json::from_str::<V>(&s).ok()) {
                            let v = Arc::new(v);
                            self.l1.insert(*key, v.clone()).await;
                            found.insert(*key, v);
                        }
                    }
                }
                Err(err) if redis.is_up() => {
                    tracing::warn!(cache = self.name, error = %err, "L2 read failed");
                }
                Err(_) => {}
            }
            let shared_hits = found.len() as u64 - local_hits;
            count(self.name, "l2", "hit", shared_hits);
            count(self.name, "l2", "miss", missing.len() as u64 - shared_hits);
        }
        found
    }

    /// The value this instance holds in L1, without asking Redis.
    pub async fn peek_local(&self, key: uuid::Uuid) -> Option<Arc<V>> {
        self.l1.get(&key).await
    }

    /// Stores freshly loaded values in both tiers.
    pub async fn insert_many(&self, values: Vec<(uuid::Uuid, Arc<V>)>) {
        if values.is_empty() {
            return;
        }
        self.write_l2(&values).await;
        for (key, value) in values {
            self.l1.insert(key, value).await;
        }
    }

    /// Puts fresher values in place of whatever every instance holds (a background refresh):
    /// with Redis, writes L2 and drops the keys from every instance's L1, so each reads the
    /// new value next; without Redis (one process) it is [`Self::insert_many`].
    pub async fn replace_many(&self, values: Vec<(uuid::Uuid, Arc<V>)>) {
        let Some(redis) = &self.redis else {
            return self.insert_many(values).await;
        };
        // The writes and the broadcast in one round trip, the writes first.
        let pipe = self.l2_writes(redis, &values);
        let keys: Vec<uuid::Uuid> = values.iter().map(|(k, _)| *k).collect();
        if !self
            .bus
            .publish_after(pipe, &self.topic(), Self::payload(&keys))
            .await
            && redis.is_up()
        {
            tracing::warn!(cache = self.name, "L2 write failed");
        }
    }

    async fn write_l2(&self, values: &[(uuid::Uuid, Arc<V>)]) {
        let Some(redis) = &self.redis else {
            return;
        };
        if let Err(err) = redis.pipeline::<()>(self.l2_writes(redis, values)).await
            && redis.is_up()
        {
            tracing::warn!(cache = self.name, error = %err, "L2 write failed");
        }
    }

    /// One `SET` per value, with the L2 lifetime.
    fn l2_writes(&self, redis: &Redis, values: &[(uuid::Uuid, Arc<V>)]) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        for (key, value) in values {
            if let Ok(json) = serde_json::to_string(value.as_ref()) {
                pipe.cmd("SET")
                    .arg(Self::l2_key(redis, self.name, key))
                    .arg(json)
                    .arg("PX")
                    .arg(u64::try_from(self.l2_ttl.as_millis()).unwrap_or(u64::MAX))
                    .ignore();
            }
        }
        pipe
    }

    /// Write-through invalidation: drops `key` from L2, from this L1, and (over the bus) from
    /// every other instance's L1. Call after the database commit.
    pub async fn invalidate(&self, key: uuid::Uuid) {
        self.invalidate_many(&[key]).await;
    }

    /// [`Self::invalidate`] for several keys: one L2 command and one bus message for all.
    pub async fn invalidate_many(&self, keys: &[uuid::Uuid]) {
        self.invalidate_many_and_delete(keys, &[]).await;
    }

    /// [`Self::invalidate_many`], deleting `also` (other Redis keys, already prefixed) in the same
    /// command. False when Redis did not confirm the deletion.
    pub async fn invalidate_many_and_delete(&self, keys: &[uuid::Uuid], also: &[String]) -> bool {
        if keys.is_empty() && also.is_empty() {
            return true;
        }
        let Some(redis) = &self.redis else {
            for key in keys {
                self.l1.invalidate(key).await;
            }
            if !keys.is_empty() {
                self.broadcast_l1_invalidation(keys).await;
            }
            return true;
        };
        let mut names: Vec<String> = keys
            .iter()
            .map(|k| Self::l2_key(redis, self.name, k))
            .collect();
        names.extend_from_slice(also);
        let mut del = redis::pipe();
        del.cmd("DEL").arg(&names).ignore();
        // The deletion and the other instances' L1 invalidation in one round trip, the
        // deletion first: an instance that hears the message finds L2 empty already.
        let deleted = if keys.is_empty() {
            redis
                .pipeline::<()>(del)
                .await
                .inspect_err(|err| tracing::warn!(cache = self.name, error = %err, "DEL failed"))
                .is_ok()
        } else {
            self.bus
                .publish_after(del, &self.topic(), Self::payload(keys))
                .await
        };
        if !deleted {
            tracing::error!(cache = self.name, "L2 invalidation failed");
        }
        for key in keys {
            self.l1.invalidate(key).await;
        }
        deleted
    }

    /// [`Self::invalidate_many`] now, and once more a moment later. A reader that loaded the old
    /// value from the database just before the change and stores it just after the first
    /// invalidation would otherwise keep it cached for a whole TTL; for values that decide who
    /// may see whom (blocks, moderation), the second pass bounds that to [`SETTLE`].
    pub async fn invalidate_settled(self: &Arc<Self>, keys: &[uuid::Uuid]) {
        self.invalidate_settled_after(keys, Duration::ZERO).await;
    }

    /// [`Self::invalidate_settled`] for values also read from replicas up to `replica_lag`
    /// behind: the second pass waits that much longer, so a value a replica served from before
    /// the change does not outlive it either.
    pub async fn invalidate_settled_after(
        self: &Arc<Self>,
        keys: &[uuid::Uuid],
        replica_lag: Duration,
    ) {
        self.invalidate_many(keys).await;
        let cache = Arc::clone(self);
        let keys = keys.to_vec();
        tokio::spawn(async move {
            tokio::time::sleep(SETTLE + replica_lag).await;
            cache.invalidate_many(&keys).await;
        });
    }

    /// Tells every instance (this one too, when the message comes back) to drop `keys` from L1.
    async fn broadcast_l1_invalidation(&self, keys: &[uuid::Uuid]) {
        if let Err(err) = self.bus.publish(&self.topic(), Self::payload(keys)).await {
            tracing::error!(
                cache = self.name,
                error = format!("{err:#}"),
                "L1 invalidation broadcast failed"
            );
        }
    }
}
