//! Likes, passes and matches: recording and withdrawing them, and reading them back.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;

/// Those of `$2` the viewer `$1` liked or passed, given each backend's test of a column against
/// the list. (A match always has both people's likes: the like that made it, and an unmatch or a
/// block removes the match with the likes.)
macro_rules! swiped_on {
    ($in_ids:literal) => {
        concat!(
            "SELECT target_id FROM likes WHERE user_id = $1 AND target_id",
            $in_ids,
            " UNION ALL SELECT target_id FROM passes WHERE user_id = $1 AND target_id",
            $in_ids
        )
    };
}
const SWIPED_ON: Sql = Sql {
    postgres: swiped_on!(" = ANY($2)"),
    sqlite: swiped_on!(" IN (SELECT unhex(value) FROM json_each($2))"),
};

impl DiscoveryStore {
    /// Records a like; creates the match (and its conversation) when it is mutual, and stores
    /// the liked person's notice (`notice`, pushed when `target_offline`) for a new like.
    pub async fn like(&self, like: Like) -> Result<LikeOutcome, StoreError> {
        match &self.likes {
            Likes::Postgres(pool) => postgres::like(pool, &like).await,
            Likes::Sqlite(writer) => writer.like(like).await,
        }
    }

    /// Records a pass (replacing a like) and ends a match of the pair. False when the target
    /// does not exist for the user (no account, hidden, or blocked either way).
    pub async fn pass(
        &self,
        user_id: Uuid,
        target: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            tx.relax_durability().await?;
            let visible: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM users WHERE id = $2
                                   AND (hidden_until IS NULL OR hidden_until <= $3))
                    AND NOT EXISTS (SELECT 1 FROM blocks
                                     WHERE (blocker_id = $1 AND blocked_id = $2)
                                        OR (blocker_id = $2 AND blocked_id = $1))",
            )
            .bind(user_id)
            .bind(target)
            .bind(Ts(now))
            .fetch_one(&mut *tx)
            .await?;
            if !visible {
                return Ok(false);
            }
            execute_in!(tx, INSERT_PASS, Uuid::now_v7(), user_id, target, Ts(now));
            execute_in!(tx, DELETE_LIKE, user_id, target);
            tx.end_match_between(user_id, target).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Withdraws a like (and ends the match it made); the match that ended, if any.
    pub async fn unlike(
        &self,
        user_id: Uuid,
        target: Uuid,
    ) -> Result<Option<MatchRecord>, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            tx.lock_key(pair_key(user_id, target)).await?;
            execute_in!(
                tx,
                "DELETE FROM likes WHERE user_id = $1 AND target_id = $2",
                user_id,
                target
            );
            let ended = tx.end_match_between(user_id, target).await?;
            execute_in!(tx, FORGET_INTRODUCTIONS, user_id, target);
            tx.commit().await?;
            Ok(ended)
        })
    }

    /// Removes the user's latest pass on someone not blocked either way; whom it was on.
    pub async fn undo_last_pass(&self, user_id: Uuid) -> Result<Option<Uuid>, StoreError> {
        Ok(returning_scalar!(
            &self.db,
            fetch_optional,
            "DELETE FROM passes WHERE id = (
                     SELECT p.id FROM passes p
                      WHERE p.user_id = $1
                        AND NOT EXISTS (SELECT 1 FROM blocks b
                                         WHERE (b.blocker_id = $1 AND b.blocked_id = p.target_id)
                                            OR (b.blocker_id = p.target_id AND b.blocked_id = $1))
                      ORDER BY p.created_at DESC, p.id DESC LIMIT 1)
                 RETURNING target_id",
            user_id
        ))
    }

    /// Ends the user's match: its likes go and each passes on the other. `None` when the user
    /// has no such match.
    pub async fn unmatch(
        &self,
        user_id: Uuid,
        match_id: Uuid,
    ) -> Result<Option<MatchRecord>, StoreError> {
        const THE_MATCH: Sql = for_update!(
            concatcp!(
                MATCH_SELECT,
                " WHERE m.id = $2 AND (m.user_a = $1 OR m.user_b = $1)"
            ),
            "OF m"
        );
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            let found: Option<MatchRecord> = sqlx::query_as(pool.pick(THE_MATCH))
                .bind(user_id)
                .bind(match_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(m) = &found {
                execute_in!(tx, "DELETE FROM matches WHERE id = $1", m.id);
                // Unmatching is final: both likes go, and each passes on the other, so they
                // leave each other's discovery and match again only if both like again.
                execute_in!(
                    tx,
                    "DELETE FROM likes WHERE (user_id = $1 AND target_id = $2)
                                          OR (user_id = $2 AND target_id = $1)",
                    user_id,
                    m.other_id
                );
                execute_in!(tx, FORGET_INTRODUCTIONS, user_id, m.other_id);
                let now = time::now();
                for (a, b) in [(user_id, m.other_id), (m.other_id, user_id)] {
                    execute_in!(tx, INSERT_PASS, Uuid::now_v7(), a, b, Ts(now));
                }
            }
            tx.commit().await?;
            Ok(found)
        })
    }

    /// Newest first; `before` is a match id (UUIDv7: ids sort by time).
    pub async fn matches(
        &self,
        user_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<MatchRecord>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            concatcp!(
                MATCH_SELECT,
                " WHERE (m.user_a = $1 OR m.user_b = $1) AND ($2 IS NULL OR m.id < $2)
                    AND NOT EXISTS (SELECT 1 FROM users h
                                     WHERE h.id = CASE WHEN m.user_a = $1 THEN m.user_b
                                                       ELSE m.user_a END
                                       AND h.hidden_until > $4)
                  ORDER BY m.id DESC LIMIT $3"
            ),
            user_id,
            before,
            limit,
            Ts(time::now())
        ))
    }

    /// People who liked the user and whom the user has not acted on (nor blocked).
    pub async fn likes_received_count(&self, user_id: Uuid) -> Result<i64, StoreError> {
        Ok(fetch_scalar!(
            &self.db,
            fetch_one,
            "SELECT COUNT(*) FROM likes l
                  WHERE l.target_id = $1
                    AND NOT EXISTS (SELECT 1 FROM likes x
                                     WHERE x.user_id = $1 AND x.target_id = l.user_id)
                    AND NOT EXISTS (SELECT 1 FROM passes x
                                     WHERE x.user_id = $1 AND x.target_id = l.user_id)
                    AND NOT EXISTS (SELECT 1 FROM blocks b
                                     WHERE (b.blocker_id = $1 AND b.blocked_id = l.user_id)
                                        OR (b.blocker_id = l.user_id AND b.blocked_id = $1))
                    AND NOT EXISTS (SELECT 1 FROM users h
                                     WHERE h.id = l.user_id AND h.hidden_until > $2)",
            user_id,
            Ts(time::now())
        ))
    }

    /// Those of `others` the user liked or passed (or matched: a match keeps both likes).
    pub async fn swiped_on(&self, user_id: Uuid, others: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        Ok(fetch_scalar!(
            &self.db,
            fetch_all,
            SWIPED_ON,
            user_id,
            Ids(others)
        ))
    }
}
