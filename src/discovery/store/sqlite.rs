//! SQLite implementation of [`DiscoveryStore`]. Write transactions take SQLite's write lock up
//! front (`BEGIN IMMEDIATE`), which also serialises two simultaneous likes of one pair.
//! Candidates are prefiltered with the R*Tree over locations, then measured exactly (haversine)
//! in Rust.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use super::{
    AutoHold, Candidate, DiscoveryStore, LikeOutcome, MAX_CANDIDATES, MatchRecord, ReportReason,
    Searcher,
};
use crate::discovery::geo::Coordinates;
use crate::discovery::geo::{bounding_box, haversine_km};
use crate::error::StoreError;
use crate::infra::db::{begin_write, id_list};
use crate::infra::time::sqlite_ts;
use crate::notifications::store::{self as notification_store, NotificationRecord};

pub struct SqliteDiscoveryStore {
    pool: SqlitePool,
}

impl SqliteDiscoveryStore {
    pub fn new(pool: SqlitePool) -> Self {
        SqliteDiscoveryStore { pool }
    }
}

fn ordered(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a < b { (a, b) } else { (b, a) }
}

const MATCH_SELECT: &str = "SELECT m.id,
        CASE WHEN m.user_a = ?1 THEN m.user_b ELSE m.user_a END AS other_id,
        c.id AS conversation_id, m.created_at
   FROM matches m JOIN conversations c ON c.match_id = m.id";

async fn match_between(
    tx: &mut Transaction<'_, Sqlite>,
    viewer: Uuid,
    other: Uuid,
) -> Result<Option<MatchRecord>, StoreError> {
    let (a, b) = ordered(viewer, other);
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{MATCH_SELECT} WHERE m.user_a = ?2 AND m.user_b = ?3"
    )))
    .bind(viewer)
    .bind(a)
    .bind(b)
    .fetch_optional(&mut **tx)
    .await?)
}

async fn delete_match_between(
    tx: &mut Transaction<'_, Sqlite>,
    viewer: Uuid,
    other: Uuid,
) -> Result<Option<MatchRecord>, StoreError> {
    let ended = match_between(tx, viewer, other).await?;
    if let Some(m) = &ended {
        sqlx::query("DELETE FROM matches WHERE id = ?1")
            .bind(m.id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(ended)
}

/// A swipe: like or pass.
#[derive(Clone, Copy)]
enum Swipe {
    Like,
    Pass,
}

/// Records a swipe (idempotent) and withdraws the opposite one of the same pair: a like
/// replaces a pass and a pass replaces a like.
async fn record_swipe(
    tx: &mut Transaction<'_, Sqlite>,
    swipe: Swipe,
    user_id: Uuid,
    target: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (table, opposite) = match swipe {
        Swipe::Like => ("likes", "passes"),
        Swipe::Pass => ("passes", "likes"),
    };
    let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} (id, user_id, target_id, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id, target_id) DO NOTHING"
    )))
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(target)
    .bind(sqlite_ts(now))
    .execute(&mut **tx)
    .await?
    .rows_affected()
        > 0;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {opposite} WHERE user_id = ?1 AND target_id = ?2"
    )))
    .bind(user_id)
    .bind(target)
    .execute(&mut **tx)
    .await?;
    Ok(inserted)
}

async fn blocked_between(
    tx: &mut Transaction<'_, Sqlite>,
    a: Uuid,
    b: Uuid,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = ?1 AND blocked_id = ?2)
                                              OR (blocker_id = ?2 AND blocked_id = ?1))",
    )
    .bind(a)
    .bind(b)
    .fetch_one(&mut **tx)
    .await?)
}

async fn has_profile(tx: &mut Transaction<'_, Sqlite>, user: Uuid) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM profiles WHERE user_id = ?1)")
            .bind(user)
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Whether moderation hides the person from everyone (suspended, banned, held for review).
async fn hidden(tx: &mut Transaction<'_, Sqlite>, user: Uuid) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1
                           AND hidden_until > strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
    )
    .bind(user)
    .fetch_one(&mut **tx)
    .await?)
}

/// Whether `other` exists for `viewer`: an account not hidden by moderation, and no block
/// between them either way.
async fn visible_to(
    tx: &mut Transaction<'_, Sqlite>,
    viewer: Uuid,
    other: Uuid,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?2
                           AND (hidden_until IS NULL
                                OR hidden_until <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))
            AND NOT EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = ?1 AND blocked_id = ?2)
                                                  OR (blocker_id = ?2 AND blocked_id = ?1))",
    )
    .bind(viewer)
    .bind(other)
    .fetch_one(&mut **tx)
    .await?)
}

#[async_trait]
impl DiscoveryStore for SqliteDiscoveryStore {
    async fn set_location(
        &self,
        user_id: Uuid,
        exact: Coordinates,
        grid: Coordinates,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO locations (user_id, latitude, longitude, grid_latitude, grid_longitude, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (user_id) DO UPDATE SET
                 latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
                 grid_latitude = EXCLUDED.grid_latitude, grid_longitude = EXCLUDED.grid_longitude,
                 updated_at = EXCLUDED.updated_at",
        )
        .bind(user_id)
        .bind(exact.latitude())
        .bind(exact.longitude())
        .bind(grid.latitude())
        .bind(grid.longitude())
        .bind(sqlite_ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn location_of(&self, user_id: Uuid) -> Result<Option<Coordinates>, StoreError> {
        let row: Option<(f64, f64)> =
            sqlx::query_as("SELECT latitude, longitude FROM locations WHERE user_id = ?1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(lat, lon)| Coordinates::parse(lat, lon).ok()))
    }

    async fn like(
        &self,
        user_id: Uuid,
        target: Uuid,
        now: DateTime<Utc>,
        notice: &NotificationRecord,
        target_offline: bool,
    ) -> Result<LikeOutcome, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        if !has_profile(&mut tx, user_id).await? {
            return Ok(LikeOutcome::NoProfile);
        }
        if !has_profile(&mut tx, target).await? || hidden(&mut tx, target).await? {
            return Ok(LikeOutcome::NoSuchUser);
        }
        if blocked_between(&mut tx, user_id, target).await? {
            return Ok(LikeOutcome::Blocked);
        }
        let new = record_swipe(&mut tx, Swipe::Like, user_id, target, now).await?;
        let mutual: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM likes WHERE user_id = ?1 AND target_id = ?2)",
        )
        .bind(target)
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
        if !mutual {
            let notice_push_state = if new {
                notification_store::sqlite::insert_wanted(&mut tx, notice, target_offline).await?
            } else {
                None
            };
            tx.commit().await?;
            return Ok(LikeOutcome::Liked {
                new,
                notice_push_state,
            });
        }
        if let Some(record) = match_between(&mut tx, user_id, target).await? {
            tx.commit().await?;
            return Ok(LikeOutcome::Matched { record, new: false });
        }
        let (a, b) = ordered(user_id, target);
        let (match_id, conversation_id) = (Uuid::now_v7(), Uuid::now_v7());
        sqlx::query("INSERT INTO matches (id, user_a, user_b, created_at) VALUES (?1, ?2, ?3, ?4)")
            .bind(match_id)
            .bind(a)
            .bind(b)
            .bind(sqlite_ts(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO conversations (id, match_id, user_a, user_b, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )
        .bind(conversation_id)
        .bind(match_id)
        .bind(a)
        .bind(b)
        .bind(sqlite_ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(LikeOutcome::Matched {
            record: MatchRecord {
                id: match_id,
                other_id: target,
                conversation_id,
                created_at: now,
            },
            new: true,
        })
    }

    async fn pass(
        &self,
        user_id: Uuid,
        target: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        if !visible_to(&mut tx, user_id, target).await? {
            return Ok(false);
        }
        record_swipe(&mut tx, Swipe::Pass, user_id, target, now).await?;
        delete_match_between(&mut tx, user_id, target).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn unlike(&self, user_id: Uuid, target: Uuid) -> Result<Option<MatchRecord>, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        sqlx::query("DELETE FROM likes WHERE user_id = ?1 AND target_id = ?2")
            .bind(user_id)
            .bind(target)
            .execute(&mut *tx)
            .await?;
        let ended = delete_match_between(&mut tx, user_id, target).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn undo_last_pass(&self, user_id: Uuid) -> Result<Option<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "DELETE FROM passes WHERE id = (
                 SELECT p.id FROM passes p
                  WHERE p.user_id = ?1
                    AND NOT EXISTS (SELECT 1 FROM blocks b
                                     WHERE (b.blocker_id = ?1 AND b.blocked_id = p.target_id)
                                        OR (b.blocker_id = p.target_id AND b.blocked_id = ?1))
                  ORDER BY p.created_at DESC, p.id DESC LIMIT 1)
             RETURNING target_id",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn unmatch(
        &self,
        user_id: Uuid,
        match_id: Uuid,
    ) -> Result<Option<MatchRecord>, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        let found: Option<MatchRecord> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{MATCH_SELECT} WHERE m.id = ?2 AND (m.user_a = ?1 OR m.user_b = ?1)"
        )))
        .bind(user_id)
        .bind(match_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(m) = &found {
            sqlx::query("DELETE FROM matches WHERE id = ?1")
                .bind(m.id)
                .execute(&mut *tx)
                .await?;
            // Unmatching is final: both likes go, and each passes on the other, so they leave
            // each other's discovery and match again only if both like again.
            sqlx::query(
                "DELETE FROM likes WHERE (user_id = ?1 AND target_id = ?2) OR (user_id = ?2 AND target_id = ?1)",
            )
            .bind(user_id)
            .bind(m.other_id)
            .execute(&mut *tx)
            .await?;
            let now = crate::infra::time::now();
            for (a, b) in [(user_id, m.other_id), (m.other_id, user_id)] {
                record_swipe(&mut tx, Swipe::Pass, a, b, now).await?;
            }
        }
        tx.commit().await?;
        Ok(found)
    }

    async fn block(
        &self,
        user_id: Uuid,
        target: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<MatchRecord>, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        sqlx::query(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )
        .bind(user_id)
        .bind(target)
        .bind(sqlite_ts(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM likes WHERE (user_id = ?1 AND target_id = ?2) OR (user_id = ?2 AND target_id = ?1)",
        )
        .bind(user_id)
        .bind(target)
        .execute(&mut *tx)
        .await?;
        let ended = delete_match_between(&mut tx, user_id, target).await?;
        // What each inbox says about the other (a match with them, a message from them) goes.
        sqlx::query(
            "DELETE FROM notifications
              WHERE (user_id = ?1 AND json_extract(data, '$.userId') = ?3)
                 OR (user_id = ?2 AND json_extract(data, '$.userId') = ?4)",
        )
        .bind(user_id)
        .bind(target)
        .bind(target.to_string())
        .bind(user_id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn unblock(&self, user_id: Uuid, target: Uuid) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2")
            .bind(user_id)
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn report(
        &self,
        user_id: Uuid,
        target: Uuid,
        reason: ReportReason,
        details: Option<&str>,
        now: DateTime<Utc>,
        hold: AutoHold,
    ) -> Result<bool, StoreError> {
        let id = Uuid::now_v7();
        let mut tx = begin_write(&self.pool).await?;
        // The snapshot of the reported profile is taken in the same statement.
        sqlx::query(
            "INSERT INTO reports (id, reporter_id, reported_id, reason, details, created_at,
                                  reported_name, reported_bio, reported_photo_keys)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, p.name, p.bio,
                    (SELECT json_group_array(storage_key)
                       FROM (SELECT storage_key FROM photos WHERE user_id = ?3 ORDER BY position))
               FROM (SELECT 1) AS one LEFT JOIN profiles p ON p.user_id = ?3",
        )
        .bind(id)
        .bind(user_id)
        .bind(target)
        .bind(reason)
        .bind(details)
        .bind(sqlite_ts(now))
        .execute(&mut *tx)
        .await?;
        let (a, b) = ordered(user_id, target);
        sqlx::query(
            "INSERT INTO report_messages (report_id, message_id, sent_at, content)
             SELECT ?1, m.id, m.created_at, m.content
               FROM conversations c JOIN messages m ON m.conversation_id = c.id
              WHERE c.user_a = ?2 AND c.user_b = ?3 AND m.sender_id = ?4
              ORDER BY m.id DESC LIMIT 500",
        )
        .bind(id)
        .bind(a)
        .bind(b)
        .bind(target)
        .execute(&mut *tx)
        .await?;
        let held = sqlx::query(
            "UPDATE users SET hidden_until = ?2
              WHERE id = ?1 AND (hidden_until IS NULL OR hidden_until < ?2)
                AND (SELECT COUNT(DISTINCT reporter_id) FROM reports
                      WHERE reported_id = ?1 AND status = 'OPEN' AND created_at > ?3) >= ?4",
        )
        .bind(target)
        .bind(sqlite_ts(super::forever()))
        .bind(sqlite_ts(hold.since))
        .bind(hold.reporters)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        tx.commit().await?;
        Ok(held)
    }

    async fn reports_made_since(
        &self,
        user_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        Ok(sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM reports WHERE reporter_id = $1 AND created_at > $2",
        )
        .bind(user_id)
        .bind(sqlite_ts(since))
        .fetch_one(&self.pool)
        .await?)
    }

    async fn user_exists(&self, user_id: Uuid) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn matches(
        &self,
        user_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<MatchRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{MATCH_SELECT} WHERE (m.user_a = ?1 OR m.user_b = ?1) AND (?2 IS NULL OR m.id < ?2)
                AND NOT EXISTS (SELECT 1 FROM users h
                                 WHERE h.id = CASE WHEN m.user_a = ?1 THEN m.user_b ELSE m.user_a END
                                   AND h.hidden_until > strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
              ORDER BY m.id DESC LIMIT ?3"
        )))
        .bind(user_id)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn match_of(
        &self,
        user_id: Uuid,
        match_id: Uuid,
    ) -> Result<Option<MatchRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{MATCH_SELECT} WHERE m.id = ?2 AND (m.user_a = ?1 OR m.user_b = ?1)"
        )))
        .bind(user_id)
        .bind(match_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn likes_received_count(&self, user_id: Uuid) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM likes l
              WHERE l.target_id = ?1
                AND NOT EXISTS (SELECT 1 FROM likes x WHERE x.user_id = ?1 AND x.target_id = l.user_id)
                AND NOT EXISTS (SELECT 1 FROM passes x WHERE x.user_id = ?1 AND x.target_id = l.user_id)
                AND NOT EXISTS (SELECT 1 FROM blocks b
                                 WHERE (b.blocker_id = ?1 AND b.blocked_id = l.user_id)
                                    OR (b.blocker_id = l.user_id AND b.blocked_id = ?1))
                AND NOT EXISTS (SELECT 1 FROM users h WHERE h.id = l.user_id
                                   AND h.hidden_until > strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn acted_on(&self, user_id: Uuid, others: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT target_id FROM likes WHERE user_id = ?1 AND target_id IN (SELECT unhex(value) FROM json_each(?2))
             UNION SELECT target_id FROM passes WHERE user_id = ?1 AND target_id IN (SELECT unhex(value) FROM json_each(?2))
             UNION SELECT user_b FROM matches WHERE user_a = ?1 AND user_b IN (SELECT unhex(value) FROM json_each(?2))
             UNION SELECT user_a FROM matches WHERE user_b = ?1 AND user_a IN (SELECT unhex(value) FROM json_each(?2))
             UNION SELECT blocked_id FROM blocks WHERE blocker_id = ?1 AND blocked_id IN (SELECT unhex(value) FROM json_each(?2))
             UNION SELECT blocker_id FROM blocks WHERE blocked_id = ?1 AND blocker_id IN (SELECT unhex(value) FROM json_each(?2))
             UNION SELECT id FROM users WHERE id IN (SELECT unhex(value) FROM json_each(?2))
                                          AND hidden_until > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(user_id)
        .bind(id_list(others))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn candidates(&self, s: &Searcher) -> Result<Vec<Candidate>, StoreError> {
        // SQLite has no nearest-first index scan: search a small circle first and widen it
        // until it holds enough candidates (the nearest MAX_CANDIDATES of the full radius are
        // then all inside it) or covers the whole radius.
        let limit = usize::try_from(MAX_CANDIDATES).unwrap_or(200);
        let mut radius = (s.radius_km / 16.0).max(2.0).min(s.radius_km);
        loop {
            let mut found = self.candidates_within(s, radius).await?;
            if found.len() >= limit || radius >= s.radius_km {
                found.truncate(limit);
                return Ok(found);
            }
            radius = (radius * 3.0).min(s.radius_km);
        }
    }
}

impl SqliteDiscoveryStore {
    /// Candidates within `radius_km` of the searcher (and within the searcher's and their own
    /// preferences), nearest first.
    async fn candidates_within(
        &self,
        s: &Searcher,
        radius_km: f64,
    ) -> Result<Vec<Candidate>, StoreError> {
        // Grid points lie within ~1 km of the indexed exact points: widen the box by 2 km.
        let (mut min_lat, mut max_lat, mut min_lon, mut max_lon) =
            bounding_box(s.location, radius_km + 2.0);
        if min_lon < -180.0 || max_lon > 180.0 {
            (min_lon, max_lon) = (-180.0, 180.0);
        }
        (min_lat, max_lat) = (min_lat.max(-90.0), max_lat.min(90.0));
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT l.user_id, l.grid_latitude, l.grid_longitude,
                    p.activity_level, p.photo_count,
                    (SELECT COUNT(*) FROM prompts pr WHERE pr.user_id = l.user_id) AS prompt_count,
                    (p.bio <> '') AS has_bio,
                    u.last_active_at,
                    EXISTS (SELECT 1 FROM likes lk WHERE lk.user_id = l.user_id AND lk.target_id = ?1) AS liked_you,
                    (SELECT COUNT(*) FROM playground_favorites f1
                       JOIN playground_favorites f2 ON f2.playground_id = f1.playground_id AND f2.user_id = ?1
                      WHERE f1.user_id = l.user_id) AS shared_playgrounds,
                    cp.max_distance, cp.distance_unit
               FROM locations_rtree r
               JOIN locations l ON l.rowid = r.id
               JOIN profiles p ON p.user_id = l.user_id
               JOIN users u ON u.id = l.user_id
               LEFT JOIN preferences cp ON cp.user_id = l.user_id
              WHERE r.min_lat >= ?2 AND r.max_lat <= ?3 AND r.min_lon >= ?4 AND r.max_lon <= ?5
                AND l.user_id <> ?1
                AND (u.hidden_until IS NULL OR u.hidden_until <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                AND p.is_paused = 0 AND p.photo_count BETWEEN 2 AND 6
                AND p.age BETWEEN ?6 AND ?7
                AND (?8 IS NULL OR ?8 BETWEEN COALESCE(cp.min_age, 0) AND COALESCE(cp.max_age, 30))
                AND NOT EXISTS (SELECT 1 FROM likes x WHERE x.user_id = ?1 AND x.target_id = l.user_id)
                AND NOT EXISTS (SELECT 1 FROM passes x WHERE x.user_id = ?1 AND x.target_id = l.user_id)
                AND NOT EXISTS (SELECT 1 FROM matches m
                                 WHERE (m.user_a = ?1 AND m.user_b = l.user_id)
                                    OR (m.user_b = ?1 AND m.user_a = l.user_id))
                AND NOT EXISTS (SELECT 1 FROM blocks b
                                 WHERE (b.blocker_id = ?1 AND b.blocked_id = l.user_id)
                                    OR (b.blocker_id = l.user_id AND b.blocked_id = ?1))",
        )
        .bind(s.user_id)
        .bind(min_lat)
        .bind(max_lat)
        .bind(min_lon)
        .bind(max_lon)
        .bind(s.min_age)
        .bind(s.max_age)
        .bind(s.age)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Candidate> = rows
            .into_iter()
            .filter_map(|r| {
                let grid = Coordinates::parse(r.grid_latitude, r.grid_longitude).ok()?;
                let distance_km = haversine_km(s.location, grid);
                let their_radius_km = match (r.max_distance, r.distance_unit.as_deref()) {
                    (Some(d), Some("MILES")) => d * crate::discovery::geo::KM_PER_MILE,
                    (Some(d), _) => d,
                    (None, _) => super::DEFAULT_RADIUS_KM,
                };
                (distance_km <= s.radius_km && distance_km <= their_radius_km).then_some(
                    Candidate {
                        user_id: r.user_id,
                        distance_km,
                        activity_level: r.activity_level,
                        photo_count: r.photo_count,
                        prompt_count: r.prompt_count,
                        has_bio: r.has_bio,
                        last_active_at: r.last_active_at,
                        liked_you: r.liked_you,
                        shared_playgrounds: r.shared_playgrounds,
                    },
                )
            })
            .collect();
        out.sort_by(|a, b| a.distance_km.total_cmp(&b.distance_km));
        Ok(out)
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    user_id: Uuid,
    grid_latitude: f64,
    grid_longitude: f64,
    activity_level: crate::profiles::model::ActivityLevel,
    photo_count: i32,
    prompt_count: i64,
    has_bio: bool,
    last_active_at: DateTime<Utc>,
    liked_you: bool,
    shared_playgrounds: i64,
    max_distance: Option<f64>,
    distance_unit: Option<String>,
}
