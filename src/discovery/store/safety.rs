//! Blocks and reports.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;
use crate::notifications::store::NotificationStore;

/// A report with its snapshot of the reported profile, taken in the same statement.
macro_rules! insert_report {
    ($photo_keys:literal) => {
        concat!(
            "INSERT INTO reports (id, reporter_id, reported_id, reason, details, created_at,
                                  counts_towards_hold, not_counted_because,
                                  reported_name, reported_bio, reported_photo_keys)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, p.name, p.bio, ",
            $photo_keys,
            " FROM (SELECT 1) AS one LEFT JOIN profiles p ON p.user_id = $3"
        )
    };
}
const INSERT_REPORT: Sql = Sql {
    postgres: insert_report!(
        "(SELECT COALESCE(json_agg(ph.storage_key ORDER BY ph.position), '[]')::text
            FROM photos ph WHERE ph.user_id = $3)"
    ),
    sqlite: insert_report!(
        "(SELECT json_group_array(storage_key)
            FROM (SELECT storage_key FROM photos WHERE user_id = $3 ORDER BY position))"
    ),
};

impl DiscoveryStore {
    /// Blocks `target`: likes both ways and a match between them go, and so do the
    /// notifications each has about the other. The match that ended, if any.
    pub async fn block(
        &self,
        user_id: Uuid,
        target: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<MatchRecord>, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            tx.lock_key(pair_key(user_id, target)).await?;
            execute_in!(
                tx,
                "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                user_id,
                target,
                Ts(now)
            );
            execute_in!(
                tx,
                "DELETE FROM likes WHERE (user_id = $1 AND target_id = $2)
                                      OR (user_id = $2 AND target_id = $1)",
                user_id,
                target
            );
            let ended = tx.end_match_between(user_id, target).await?;
            execute_in!(tx, FORGET_INTRODUCTIONS, user_id, target);
            sqlx::query(pool.pick(NotificationStore::FORGET_NOTICES_BETWEEN))
                .bind(user_id)
                .bind(target)
                .bind(target.to_string())
                .bind(user_id.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(ended)
        })
    }

    /// Whether there was a block to lift.
    pub async fn unblock(&self, user_id: Uuid, target: Uuid) -> Result<bool, StoreError> {
        let lifted = execute!(
            &self.db,
            "DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2",
            user_id,
            target
        );
        Ok(lifted > 0)
    }

    /// What decides whether `reporter`'s report about `target` counts towards a hold: their
    /// account's age, their reports dismissed since `dismissed_since`, and whether the two
    /// ever interacted. `None` when the reporter has no account.
    pub async fn reporter_standing(
        &self,
        reporter: Uuid,
        target: Uuid,
        dismissed_since: DateTime<Utc>,
    ) -> Result<Option<ReporterStanding>, StoreError> {
        let (a, b) = ordered(reporter, target);
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT u.created_at AS account_created_at,
                    (SELECT COUNT(*) FROM reports
                      WHERE reporter_id = $1 AND status = 'DISMISSED' AND resolved_at > $3)
                        AS dismissed,
                    (EXISTS (SELECT 1 FROM likes WHERE user_id = $1 AND target_id = $2)
                     OR EXISTS (SELECT 1 FROM likes WHERE user_id = $2 AND target_id = $1)
                     OR EXISTS (SELECT 1 FROM passes WHERE user_id = $1 AND target_id = $2)
                     OR EXISTS (SELECT 1 FROM passes WHERE user_id = $2 AND target_id = $1)
                     OR EXISTS (SELECT 1 FROM matches WHERE user_a = $4 AND user_b = $5)
                     OR EXISTS (SELECT 1 FROM conversations WHERE user_a = $4 AND user_b = $5))
                        AS interacted
               FROM users u WHERE u.id = $1",
            reporter,
            target,
            Ts(dismissed_since),
            a,
            b
        ))
    }

    /// Stores a report for moderation, with a snapshot of the reported person's name, bio and
    /// photo keys as they are now, and a copy of the messages they sent the reporter. When
    /// `hold.reporters` distinct people whose reports count have reported them since
    /// `hold.since` (this report included), hides them from everyone until a moderator
    /// decides; true when this report did that.
    #[expect(
        clippy::too_many_arguments,
        reason = "one report's fields, written in one transaction"
    )]
    pub async fn report(
        &self,
        user_id: Uuid,
        target: Uuid,
        reason: ReportReason,
        details: Option<&str>,
        count: &HoldCount,
        now: DateTime<Utc>,
        hold: AutoHold,
    ) -> Result<bool, StoreError> {
        let id = Uuid::now_v7();
        let (a, b) = ordered(user_id, target);
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(pool.pick(INSERT_REPORT))
                .bind(id)
                .bind(user_id)
                .bind(target)
                .bind(reason)
                .bind(details)
                .bind(Ts(now))
                .bind(count.not_counted_because.is_none())
                .bind(count.not_counted_because.as_deref())
                .execute(&mut *tx)
                .await?;
            execute_in!(
                tx,
                "INSERT INTO report_messages (report_id, message_id, sent_at, content)
                 SELECT $1, m.id, m.created_at, m.content
                   FROM conversations c JOIN messages m ON m.conversation_id = c.id
                  WHERE c.user_a = $2 AND c.user_b = $3 AND m.sender_id = $4
                  ORDER BY m.id DESC LIMIT 500",
                id,
                a,
                b,
                target
            );
            let held = sqlx::query(
                "UPDATE users SET hidden_until = $2
                  WHERE id = $1 AND (hidden_until IS NULL OR hidden_until < $2)
                    AND (SELECT COUNT(DISTINCT reporter_id) FROM reports
                          WHERE reported_id = $1 AND status = 'OPEN' AND created_at > $3
                            AND counts_towards_hold) >= $4",
            )
            .bind(target)
            .bind(Ts(forever()))
            .bind(Ts(hold.since))
            .bind(hold.reporters)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            tx.commit().await?;
            Ok(held)
        })
    }

    /// How many reports the user made after `since`, and when the oldest of them was made.
    pub async fn reports_made_since(
        &self,
        user_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_one,
            "SELECT COUNT(*), MIN(created_at) FROM reports
                  WHERE reporter_id = $1 AND created_at > $2",
            user_id,
            Ts(since)
        ))
    }
}
