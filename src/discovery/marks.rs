//! Which recommendation list each person has not swiped since.
//!
//! A cached list must be checked against the likes and passes made after it was computed (one
//! statement per page). Most pages are read by someone who has not swiped since: the list was
//! computed, then paged, or the app was opened again. To spare those pages the statement, each
//! computation stores a fresh random mark for the person *before* it asks the database for
//! candidates, and keeps it in the list; every like or pass deletes the person's mark *after*
//! it commits. A page whose list carries the mark still stored therefore comes from a list no
//! swipe has happened since: any swipe the candidate query did not see committed after the mark
//! was stored, so it deleted that mark. Anything else (no mark, another mark, Redis not
//! answering) means "check".
//!
//! With Redis the marks live there only, not in a per-instance copy, so a swipe on one instance
//! counts at once on every other; in embedded mode (one process) they live in memory.

use std::time::Duration;

use uuid::Uuid;

use crate::infra::redis::Redis;

/// Longer than a cached list is served from Redis; a list outliving its mark is checked.
const MARK_TTL: Duration = Duration::from_secs(900);

/// How often a mark that could not be dropped is tried again.
const RETRY_EVERY: Duration = Duration::from_millis(200);

pub(super) struct SwipeMarks {
    store: MarkStore,
}

enum MarkStore {
    Redis(Redis),
    Memory(moka::future::Cache<Uuid, Uuid>),
}

impl SwipeMarks {
    pub(super) fn new(redis: Option<Redis>) -> Self {
        let store = match redis {
            Some(redis) => MarkStore::Redis(redis),
            None => MarkStore::Memory(
                moka::future::Cache::builder()
                    .time_to_live(MARK_TTL)
                    .max_capacity(1_000_000)
                    .build(),
            ),
        };
        SwipeMarks { store }
    }

    async fn delete(redis: &Redis, key: &str) -> redis::RedisResult<()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key);
        redis.query(cmd).await
    }

    fn key(redis: &Redis, user_id: Uuid) -> String {
        redis.key(&format!("swipe-mark:{user_id}"))
    }

    /// A new mark for `user_id`, stored before a list is computed; None when it could not be
    /// stored (the list is then always checked).
    pub(super) async fn start(&self, user_id: Uuid) -> Option<Uuid> {
        let mark = Uuid::new_v4();
        match &self.store {
            MarkStore::Memory(marks) => marks.insert(user_id, mark).await,
            MarkStore::Redis(redis) => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(Self::key(redis, user_id))
                    .arg(mark.as_bytes().as_slice())
                    .arg("PX")
                    .arg(MARK_TTL.as_millis() as u64);
                if let Err(err) = redis.query::<()>(cmd).await {
                    if redis.is_up() {
                        tracing::warn!(error = %err, "storing a swipe mark failed");
                    }
                    return None;
                }
            }
        }
        Some(mark)
    }

    /// Whether `user_id` has not swiped since `mark` was stored.
    pub(super) async fn unswiped_since(&self, user_id: Uuid, mark: Option<Uuid>) -> bool {
        let Some(mark) = mark else {
            return false;
        };
        let stored = match &self.store {
            MarkStore::Memory(marks) => marks.get(&user_id).await,
            MarkStore::Redis(redis) => {
                let mut cmd = redis::cmd("GET");
                cmd.arg(Self::key(redis, user_id));
                match redis.query::<Option<Vec<u8>>>(cmd).await {
                    Ok(bytes) => bytes.and_then(|b| Uuid::from_slice(&b).ok()),
                    Err(_) => None,
                }
            }
        };
        stored == Some(mark)
    }

    /// The Redis key of `user_id`'s mark, for deleting it in a command sent anyway (then
    /// [`Self::swiped`] only if that command failed); None in embedded mode.
    pub(super) fn redis_key(&self, user_id: Uuid) -> Option<String> {
        match &self.store {
            MarkStore::Redis(redis) => Some(Self::key(redis, user_id)),
            MarkStore::Memory(_) => None,
        }
    }

    /// After a like or pass by `user_id` has committed: their cached list must be checked.
    pub(super) async fn swiped(&self, user_id: Uuid) {
        match &self.store {
            MarkStore::Memory(marks) => marks.invalidate(&user_id).await,
            MarkStore::Redis(redis) => {
                let key = Self::key(redis, user_id);
                if let Err(err) = Self::delete(redis, &key).await {
                    // Left in place, the mark would spare the check while it lasts: keep trying
                    // until Redis answers again (pages do not trust marks while it does not).
                    tracing::error!(error = %err, "dropping a swipe mark failed; retrying");
                    let redis = redis.clone();
                    tokio::spawn(async move {
                        let deadline = tokio::time::Instant::now() + MARK_TTL;
                        while tokio::time::Instant::now() < deadline {
                            tokio::time::sleep(RETRY_EVERY).await;
                            if Self::delete(&redis, &key).await.is_ok() {
                                break;
                            }
                        }
                    });
                }
            }
        }
    }
}
