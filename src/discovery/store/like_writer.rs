//! Likes written together (group commit): the likes that wait while a transaction is written
//! go into the next one together, and each still gets its own outcome, decided by the write.
//! SQLite has one writer; PostgreSQL has a few, each writing the likes of its own pairs (a pair
//! always goes to the same one, so two transactions of this instance never hold one pair).

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{LikeOutcome, pair_key};
use crate::error::StoreError;
use crate::infra::db::Db;
use crate::notifications::store::NotificationRecord;

/// Most likes written in one transaction.
const LIKES_PER_COMMIT: usize = 64;

/// PostgreSQL's writers: enough to keep a few transactions going at once (the database does
/// the most likes a second with a handful of them), fewer than the pool's connections.
fn postgres_writers(max_connections: u32) -> usize {
    usize::try_from(max_connections / 2)
        .unwrap_or(1)
        .clamp(1, 4)
}

/// What a like needs written.
pub(super) struct Like {
    pub user_id: Uuid,
    pub target: Uuid,
    pub now: DateTime<Utc>,
    pub notice: NotificationRecord,
    pub target_offline: bool,
}

/// A like to write, and where its outcome goes.
struct LikeJob {
    like: Like,
    outcome: oneshot::Sender<Result<LikeOutcome, StoreError>>,
}

/// Writes likes for one database (see the module's documentation).
#[derive(Clone)]
pub(super) struct LikeWriter {
    writers: Vec<mpsc::Sender<LikeJob>>,
}

impl LikeWriter {
    /// Starts the tasks that write the likes; they end when the last handle is dropped.
    pub(super) fn start(db: &Db) -> LikeWriter {
        let count = match db {
            Db::Postgres(pool) => postgres_writers(pool.options().get_max_connections()),
            Db::Sqlite(_) => 1,
        };
        let writers = (0..count)
            .map(|_| {
                let (jobs, queue) = mpsc::channel(1024);
                tokio::spawn(write_likes(db.clone(), queue));
                jobs
            })
            .collect();
        LikeWriter { writers }
    }

    /// Records a like (see [`super::DiscoveryStore::like`]).
    pub(super) async fn like(
        &self,
        user_id: Uuid,
        target: Uuid,
        now: DateTime<Utc>,
        notice: &NotificationRecord,
        target_offline: bool,
    ) -> Result<LikeOutcome, StoreError> {
        let stopped = || StoreError::Unavailable(anyhow::anyhow!("the like writer has stopped"));
        let (outcome, written) = oneshot::channel();
        let like = Like {
            user_id,
            target,
            now,
            notice: notice.clone(),
            target_offline,
        };
        let shard = pair_key(user_id, target).unsigned_abs() as usize % self.writers.len();
        self.writers[shard]
            .send(LikeJob { like, outcome })
            .await
            .map_err(|_| stopped())?;
        written.await.map_err(|_| stopped())?
    }
}

/// Writes queued likes until every sender is gone, as many at a time as are waiting.
async fn write_likes(db: Db, mut queue: mpsc::Receiver<LikeJob>) {
    let mut batch = Vec::with_capacity(LIKES_PER_COMMIT);
    while queue.recv_many(&mut batch, LIKES_PER_COMMIT).await > 0 {
        let likes: Vec<&Like> = batch.iter().map(|job| &job.like).collect();
        let outcomes = match write_together(&db, &likes).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            // One failed, and with it the transaction: each again on its own, so only it fails.
            Err(err) if likes.len() == 1 => vec![Err(err)],
            Err(_) => {
                let mut alone = Vec::with_capacity(likes.len());
                for like in &likes {
                    alone.push(
                        write_together(&db, std::slice::from_ref(like))
                            .await
                            .and_then(|mut one| {
                                one.pop().ok_or_else(|| {
                                    StoreError::Other(anyhow::anyhow!("a like without outcome"))
                                })
                            }),
                    );
                }
                alone
            }
        };
        for (job, outcome) in batch.drain(..).zip(outcomes) {
            // The request may have gone; its like is written all the same.
            let _ = job.outcome.send(outcome);
        }
    }
}

/// Writes `likes` in one transaction; their outcomes in order, or the first error (nothing
/// written).
async fn write_together(db: &Db, likes: &[&Like]) -> Result<Vec<LikeOutcome>, StoreError> {
    match db {
        Db::Postgres(pool) => super::postgres::write_together(pool, likes).await,
        Db::Sqlite(pool) => super::sqlite::write_together(pool, likes).await,
    }
}

#[cfg(test)]
mod tests {
    use super::postgres_writers;

    #[test]
    fn postgres_has_up_to_four_writers_and_half_the_pool_at_most() {
        assert_eq!(postgres_writers(1), 1);
        assert_eq!(postgres_writers(4), 2);
        assert_eq!(postgres_writers(8), 4);
        assert_eq!(postgres_writers(20), 4);
    }
}
