//! Discovery storage: locations, likes, passes, matches, blocks, reports, and the candidate
//! query behind recommendations. Written once for both backends (see [`crate::infra::sql`]),
//! except a like and the candidate query, which differ enough to stand per backend side by side
//! (`store/postgres.rs`, `store/sqlite.rs`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::geo::Coordinates;
use crate::error::StoreError;
use crate::infra::db::Db;
use crate::infra::replicas::{Freshness, Reads, Target};
use crate::infra::sql::{
    Backend, Ids, Sql, Ts, WriteTx, execute, execute_in, fetch, fetch_scalar, for_update, in_ids,
    returning_scalar, with_db,
};
use crate::infra::stored::stored_enum;
use crate::infra::time;
use crate::notifications::store::NotificationRecord;

/// A match as its participants see it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MatchRecord {
    pub id: Uuid,
    /// The other person (from the viewer's side).
    pub other_id: Uuid,
    pub conversation_id: Uuid,
    pub created_at: DateTime<Utc>,
}

/// What a like did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LikeOutcome {
    /// Stored (`new`) or already there; no mutual like yet. A new like stored its
    /// notification in the same transaction when the person's preferences wanted it:
    /// `notice_push_state` is that notification's push state (`None`: not stored).
    Liked {
        new: bool,
        notice_push_state: Option<crate::notifications::store::PushState>,
    },
    /// The like completed a pair: the match, and whether this like created it.
    Matched { record: MatchRecord, new: bool },
    /// One of the two blocked the other.
    Blocked,
    /// The target has no profile (or no account).
    NoSuchUser,
    /// The one liking has no profile yet.
    NoProfile,
}

/// What a like did, as the words both backends' like statements report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LikeResult {
    NoProfile,
    NoUser,
    Blocked,
    Liked,
    LikedAgain,
    Matched,
    NewMatch,
}
stored_enum!(LikeResult {
    NoProfile => "no_profile",
    NoUser => "no_user",
    Blocked => "blocked",
    Liked => "liked",
    LikedAgain => "liked_again",
    Matched => "matched",
    NewMatch => "new_match",
});

/// A like statement's answer: the outcome, the match (id, conversation, when), and the liked
/// person's notice's push state.
type LikeRow = (
    LikeResult,
    Option<Uuid>,
    Option<Uuid>,
    Option<DateTime<Utc>>,
    Option<crate::notifications::store::PushState>,
);

impl LikeOutcome {
    /// The outcome a like statement reported, for a like of `target`.
    fn from_row(row: LikeRow, target: Uuid) -> Result<LikeOutcome, StoreError> {
        let (outcome, match_id, conversation_id, created_at, push_state) = row;
        let record = || -> Result<MatchRecord, StoreError> {
            match (match_id, conversation_id, created_at) {
                (Some(id), Some(conversation_id), Some(created_at)) => Ok(MatchRecord {
                    id,
                    other_id: target,
                    conversation_id,
                    created_at,
                }),
                _ => Err(StoreError::Other(anyhow::anyhow!(
                    "the like reported {outcome:?} without its match"
                ))),
            }
        };
        Ok(match outcome {
            LikeResult::NoProfile => LikeOutcome::NoProfile,
            LikeResult::NoUser => LikeOutcome::NoSuchUser,
            LikeResult::Blocked => LikeOutcome::Blocked,
            LikeResult::Liked => LikeOutcome::Liked {
                new: true,
                notice_push_state: push_state,
            },
            LikeResult::LikedAgain => LikeOutcome::Liked {
                new: false,
                notice_push_state: None,
            },
            LikeResult::Matched => LikeOutcome::Matched {
                record: record()?,
                new: false,
            },
            LikeResult::NewMatch => LikeOutcome::Matched {
                record: record()?,
                new: true,
            },
        })
    }
}

/// The searcher's side of a recommendation query.
#[derive(Debug, Clone, Copy)]
pub struct Searcher {
    pub user_id: Uuid,
    pub location: Coordinates,
    /// Their own dog's age, when they have a profile (checked against candidates' preferences).
    pub age: Option<i32>,
    pub min_age: i32,
    pub max_age: i32,
    pub radius_km: f64,
    /// Only people whose email address is confirmed (when confirmation is required).
    pub confirmed_only: bool,
}

/// A candidate as the database returns it, before scoring.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Candidate {
    pub user_id: Uuid,
    /// Kilometres from the searcher to the candidate's grid-snapped point.
    pub distance_km: f64,
    pub activity_level: crate::profiles::model::ActivityLevel,
    pub photo_count: i32,
    pub prompt_count: i64,
    pub has_bio: bool,
    pub last_active_at: DateTime<Utc>,
    pub liked_you: bool,
    pub shared_playgrounds: i64,
}

/// Why someone reported a person (GraphQL `ReportReason`).
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportReason {
    Spam,
    FakeProfile,
    InappropriateContent,
    Harassment,
    Scam,
    Other,
}

stored_enum!(ReportReason {
    Spam => "SPAM",
    FakeProfile => "FAKE_PROFILE",
    InappropriateContent => "INAPPROPRIATE_CONTENT",
    Harassment => "HARASSMENT",
    Scam => "SCAM",
    Other => "OTHER",
});

/// Default radius of people without preferences, in km.
pub const DEFAULT_RADIUS_KM: f64 = 50.0;
/// The most candidates one recommendation list holds: the nearest that pass every filter; 200
/// is 10 pages of 20. A list is recomputed once a page's worth of it has been swiped, so a
/// swiping user never runs out.
pub const MAX_CANDIDATES: i64 = 200;

/// When reports hide a person before a moderator looks: `reporters` distinct reporters of
/// open reports made after `since`.
#[derive(Debug, Clone, Copy)]
pub struct AutoHold {
    pub reporters: i64,
    pub since: DateTime<Utc>,
}

/// What decides whether a reporter's report counts towards a hold, read at report time.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReporterStanding {
    pub account_created_at: DateTime<Utc>,
    /// Their reports moderators dismissed since the time given.
    pub dismissed: i64,
    /// Whether the two ever swiped on each other (either way), matched or talked.
    pub interacted: bool,
}

/// Whether a report counts towards the automatic hold, and if not, why (for moderators).
#[derive(Debug, Clone, Default)]
pub struct HoldCount {
    pub not_counted_because: Option<String>,
}

/// The end of a hold that only a moderator lifts (both backends store this instant).
pub fn forever() -> DateTime<Utc> {
    chrono::DateTime::from_timestamp(253_402_300_799, 0).expect("9999-12-31T23:59:59Z is valid")
}

/// `$1` is the viewer: a match from their side.
macro_rules! match_select {
    () => {
        "SELECT m.id, CASE WHEN m.user_a = $1 THEN m.user_b ELSE m.user_a END AS other_id,
                c.id AS conversation_id, m.created_at
           FROM matches m JOIN conversations c ON c.match_id = m.id"
    };
}

/// The match of `$viewer` and `$other`, if any, inside `$tx`.
macro_rules! match_between {
    ($tx:ident, $viewer:expr, $other:expr) => {{
        let (a, b) = ordered($viewer, $other);
        let found: Option<MatchRecord> = sqlx::query_as(concat!(
            match_select!(),
            " WHERE m.user_a = $2 AND m.user_b = $3"
        ))
        .bind($viewer)
        .bind(a)
        .bind(b)
        .fetch_optional(&mut *$tx)
        .await?;
        found
    }};
}

/// Ends the match of `$viewer` and `$other`, if any, inside `$tx`; the match it was.
macro_rules! delete_match_between {
    ($tx:ident, $viewer:expr, $other:expr) => {{
        let ended = match_between!($tx, $viewer, $other);
        if let Some(m) = &ended {
            sqlx::query("DELETE FROM matches WHERE id = $1")
                .bind(m.id)
                .execute(&mut *$tx)
                .await?;
        }
        ended
    }};
}

/// Records a swipe of `$user` on `$target` (idempotent) in `$table` inside `$tx`, and withdraws
/// the opposite swipe of the pair (in `$opposite`): a pass replaces a like, a like a pass.
/// Whether the swipe is new.
macro_rules! record_swipe {
    ($tx:ident, $table:literal replacing $opposite:literal, $user:expr, $target:expr, $now:expr) => {{
        let new = sqlx::query(concat!(
            "INSERT INTO ",
            $table,
            " (id, user_id, target_id, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, target_id) DO NOTHING"
        ))
        .bind(Uuid::now_v7())
        .bind($user)
        .bind($target)
        .bind(Ts($now))
        .execute(&mut *$tx)
        .await?
        .rows_affected()
            > 0;
        sqlx::query(concat!(
            "DELETE FROM ",
            $opposite,
            " WHERE user_id = $1 AND target_id = $2"
        ))
        .bind($user)
        .bind($target)
        .execute(&mut *$tx)
        .await?;
        new
    }};
}

/// What scores a candidate `l.user_id` (profile `p`, account `u`) for the searcher `$1`. A
/// shared favourite place counts only when at least 5 other people with a complete profile save
/// it: neither of the two can make a private spot count, nor can accounts made for the purpose
/// without building profiles.
macro_rules! candidate_signals {
    () => {
        "p.activity_level, p.photo_count,
         (SELECT COUNT(*) FROM prompts pr WHERE pr.user_id = l.user_id) AS prompt_count,
         (p.bio <> '') AS has_bio,
         u.last_active_at,
         EXISTS (SELECT 1 FROM likes lk WHERE lk.user_id = l.user_id AND lk.target_id = $1)
             AS liked_you,
         (SELECT COUNT(*) FROM playground_favorites f1
            JOIN playground_favorites f2
              ON f2.playground_id = f1.playground_id AND f2.user_id = $1
           WHERE f1.user_id = l.user_id
             AND (SELECT COUNT(*) FROM playground_favorites f3
                    JOIN profiles p3 ON p3.user_id = f3.user_id AND p3.photo_count >= 2
                   WHERE f3.playground_id = f1.playground_id
                     AND f3.user_id <> $1 AND f3.user_id <> l.user_id) >= 5)
             AS shared_playgrounds"
    };
}

/// The candidate `l.user_id` is someone the searcher `$1` has not liked, passed or matched, and
/// no block stands between them either way.
macro_rules! not_acted_on {
    () => {
        "NOT EXISTS (SELECT 1 FROM likes x WHERE x.user_id = $1 AND x.target_id = l.user_id)
         AND NOT EXISTS (SELECT 1 FROM passes x WHERE x.user_id = $1 AND x.target_id = l.user_id)
         AND NOT EXISTS (SELECT 1 FROM matches m
                          WHERE (m.user_a = $1 AND m.user_b = l.user_id)
                             OR (m.user_b = $1 AND m.user_a = l.user_id))
         AND NOT EXISTS (SELECT 1 FROM blocks b
                          WHERE (b.blocker_id = $1 AND b.blocked_id = l.user_id)
                             OR (b.blocker_id = l.user_id AND b.blocked_id = $1))"
    };
}

mod postgres;
mod sqlite;

pub use postgres::CANDIDATES_SQL;

/// The pair's two people in a fixed order (matches and conversations store them so).
fn ordered(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a < b { (a, b) } else { (b, a) }
}

/// One lock key per unordered pair: a like, an unlike and a block of one pair queue on it.
fn pair_key(a: Uuid, b: Uuid) -> i64 {
    let x = a.as_u128() ^ b.as_u128();
    i64::from_ne_bytes(((x as u64) ^ ((x >> 64) as u64)).to_ne_bytes())
}

/// Deletes the introductions between `$a` and `$b`, both ways, inside `$tx`.
macro_rules! forget_introductions {
    ($tx:ident, $a:expr, $b:expr) => {
        execute_in!(
            $tx,
            "DELETE FROM introductions WHERE (viewer_id = $1 AND person_id = $2)
                                          OR (viewer_id = $2 AND person_id = $1)",
            $a,
            $b
        )
    };
}

/// The advisory lock key of a person's introductions (apart from pair keys by a constant).
fn introductions_key(viewer: Uuid) -> i64 {
    pair_key(
        viewer,
        Uuid::from_u128(0x696e_7472_6f64_7563_7469_6f6e_735f_6b65),
    )
}

/// What [`DiscoveryStore::introduce`] did.
pub struct Introduced {
    /// Those of the people asked about who are introduced now.
    pub people: Vec<Uuid>,
    /// When some were not (the day's ceiling is reached): when it has room again.
    pub full_until: Option<DateTime<Utc>>,
}

/// How one person is connected to another, which decides whether they may read the other's
/// profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Neither served to them, nor liked them, nor matched.
    Stranger,
    /// Served to them in their recommendations, or liked them.
    Introduced,
    /// A match (and so a conversation).
    Matched,
}

/// What each inbox says about the other (`$1` and `$2` the pair; `$3`, `$4` the other's id as
/// text): notifications whose data names them.
const DELETE_NOTICES_ABOUT: Sql = Sql {
    postgres: "DELETE FROM notifications
                WHERE (user_id = $1 AND data::jsonb ->> 'userId' = $3)
                   OR (user_id = $2 AND data::jsonb ->> 'userId' = $4)",
    sqlite: "DELETE FROM notifications
              WHERE (user_id = $1 AND json_extract(data, '$.userId') = $3)
                 OR (user_id = $2 AND json_extract(data, '$.userId') = $4)",
};

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

/// Locations, swipes, matches, blocks and reports, and recommendation candidates.
#[derive(Clone)]
pub struct DiscoveryStore {
    db: Db,
    reads: Reads,
    likes: Likes,
}

/// Where likes are written.
#[derive(Clone)]
enum Likes {
    /// One call of the `pupmatch_like` function each.
    Postgres(sqlx::PgPool),
    /// In transactions of as many as wait for the one writer.
    Sqlite(sqlite::LikeWriter),
}

impl DiscoveryStore {
    pub fn new(reads: &Reads) -> Self {
        let db = reads.primary();
        let likes = match db {
            Db::Postgres(pool) => Likes::Postgres(pool.clone()),
            Db::Sqlite(pool) => Likes::Sqlite(sqlite::LikeWriter::start(pool.clone())),
        };
        DiscoveryStore {
            db: db.clone(),
            reads: reads.clone(),
            likes,
        }
    }

    /// Stores the exact point and the grid point shown to others.
    pub async fn set_location(
        &self,
        user_id: Uuid,
        exact: Coordinates,
        grid: Coordinates,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        execute!(
            &self.db,
            "INSERT INTO locations (user_id, latitude, longitude, grid_latitude,
                                        grid_longitude, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (user_id) DO UPDATE SET
                     latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
                     grid_latitude = EXCLUDED.grid_latitude,
                     grid_longitude = EXCLUDED.grid_longitude,
                     updated_at = EXCLUDED.updated_at",
            user_id,
            exact.latitude(),
            exact.longitude(),
            grid.latitude(),
            grid.longitude(),
            Ts(now)
        );
        Ok(())
    }

    pub async fn location_of(&self, user_id: Uuid) -> Result<Option<Coordinates>, StoreError> {
        let row: Option<(f64, f64)> = fetch!(
            &self.db,
            fetch_optional,
            "SELECT latitude, longitude FROM locations WHERE user_id = $1",
            user_id
        );
        Ok(row.and_then(|(lat, lon)| Coordinates::parse(lat, lon).ok()))
    }

    /// Records a like; creates the match (and its conversation) when it is mutual, and stores
    /// the liked person's notice (`notice`, pushed when `target_offline`) for a new like.
    pub async fn like(
        &self,
        user_id: Uuid,
        target: Uuid,
        now: DateTime<Utc>,
        notice: &NotificationRecord,
        target_offline: bool,
    ) -> Result<LikeOutcome, StoreError> {
        match &self.likes {
            Likes::Postgres(pool) => {
                postgres::like(pool, user_id, target, now, notice, target_offline).await
            }
            Likes::Sqlite(writer) => {
                writer
                    .like(user_id, target, now, notice, target_offline)
                    .await
            }
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
            record_swipe!(tx, "passes" replacing "likes", user_id, target, now);
            delete_match_between!(tx, user_id, target);
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
            let ended = delete_match_between!(tx, user_id, target);
            forget_introductions!(tx, user_id, target);
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
            concat!(
                match_select!(),
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
                forget_introductions!(tx, user_id, m.other_id);
                let now = time::now();
                for (a, b) in [(user_id, m.other_id), (m.other_id, user_id)] {
                    record_swipe!(tx, "passes" replacing "likes", a, b, now);
                }
            }
            tx.commit().await?;
            Ok(found)
        })
    }

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
            let ended = delete_match_between!(tx, user_id, target);
            forget_introductions!(tx, user_id, target);
            sqlx::query(pool.pick(DELETE_NOTICES_ABOUT))
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

    /// Introduces `people` (in the order they are served) to `viewer`, as many as the daily
    /// ceiling leaves room for: at most `per_day` new people in any 24 hours, counted under a
    /// lock on the viewer so pages served at once count each other. Returns those of `people`
    /// now introduced (before or just now); the new ones beyond the ceiling are not, and then
    /// `full_until` says when the ceiling has room again.
    pub async fn introduce(
        &self,
        viewer: Uuid,
        people: &[Uuid],
        per_day: i64,
        now: DateTime<Utc>,
    ) -> Result<Introduced, StoreError> {
        const ALREADY: Sql = in_ids!(
            "SELECT person_id FROM introductions WHERE viewer_id = $1 AND person_id",
            2,
            ""
        );
        const INSERT: Sql = Sql {
            postgres: "INSERT INTO introductions (viewer_id, person_id, introduced_at)
                       SELECT $1, unnest($2::uuid[]), $3 ON CONFLICT DO NOTHING",
            sqlite: "INSERT INTO introductions (viewer_id, person_id, introduced_at)
                     SELECT $1, unhex(value), $3 FROM json_each($2) WHERE true
                     ON CONFLICT DO NOTHING",
        };
        // Most pages show nobody new: a read answers them without the write lock.
        let known: Vec<Uuid> = fetch_scalar!(&self.db, fetch_all, ALREADY, viewer, Ids(people));
        if known.len() == people.len() {
            return Ok(Introduced {
                people: known,
                full_until: None,
            });
        }
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            tx.lock_key(introductions_key(viewer)).await?;
            let mut known: Vec<Uuid> = sqlx::query_scalar(pool.pick(ALREADY))
                .bind(viewer)
                .bind(Ids(people))
                .fetch_all(&mut *tx)
                .await?;
            let new: Vec<Uuid> = people
                .iter()
                .filter(|id| !known.contains(id))
                .copied()
                .collect();
            if new.is_empty() {
                return Ok(Introduced {
                    people: known,
                    full_until: None,
                });
            }
            let (recent, earliest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
                "SELECT COUNT(*), MIN(introduced_at) FROM introductions
                  WHERE viewer_id = $1 AND introduced_at > $2",
            )
            .bind(viewer)
            .bind(Ts(now - chrono::Duration::days(1)))
            .fetch_one(&mut *tx)
            .await?;
            let room = usize::try_from(per_day.saturating_sub(recent)).unwrap_or(0);
            let admitted = &new[..room.min(new.len())];
            let full_until = (admitted.len() < new.len())
                .then(|| earliest.unwrap_or(now) + chrono::Duration::days(1));
            if !admitted.is_empty() {
                sqlx::query(pool.pick(INSERT))
                    .bind(viewer)
                    .bind(Ids(admitted))
                    .bind(Ts(now))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            known.extend_from_slice(admitted);
            Ok(Introduced {
                people: known,
                full_until,
            })
        })
    }

    /// How `viewer` is connected to each of `people` they are connected to at all: matched, or
    /// introduced (served to them, or liked them). Strangers are absent.
    pub async fn relations(
        &self,
        viewer: Uuid,
        people: &[Uuid],
    ) -> Result<HashMap<Uuid, Relation>, StoreError> {
        macro_rules! connections {
            ($in:literal) => {
                concat!(
                    "SELECT person_id, 1 FROM introductions WHERE viewer_id = $1 AND person_id",
                    $in,
                    " UNION ALL SELECT user_id, 1 FROM likes WHERE target_id = $1 AND user_id",
                    $in,
                    " UNION ALL SELECT user_b, 2 FROM matches WHERE user_a = $1 AND user_b",
                    $in,
                    " UNION ALL SELECT user_a, 2 FROM matches WHERE user_b = $1 AND user_a",
                    $in
                )
            };
        }
        const CONNECTIONS: Sql = Sql {
            postgres: connections!(" = ANY($2)"),
            sqlite: connections!(" IN (SELECT unhex(value) FROM json_each($2))"),
        };
        let rows: Vec<(Uuid, i32)> = fetch!(&self.db, fetch_all, CONNECTIONS, viewer, Ids(people));
        let mut out = HashMap::with_capacity(rows.len());
        for (person, kind) in rows {
            let relation = if kind == 2 {
                Relation::Matched
            } else {
                Relation::Introduced
            };
            let entry = out.entry(person).or_insert(relation);
            if relation == Relation::Matched {
                *entry = relation;
            }
        }
        Ok(out)
    }

    pub async fn user_exists(&self, user_id: Uuid) -> Result<bool, StoreError> {
        Ok(fetch_scalar!(
            &self.db,
            fetch_one,
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)",
            user_id
        ))
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
            concat!(
                match_select!(),
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

    /// Complete, unpaused profiles with a location within both people's distance and age
    /// preferences, excluding self, liked, passed, matched and blocked (both ways), and where
    /// they were read. From a replica when one is usable, which may not have replayed the
    /// latest swipes yet: what is served from such a list is checked against the primary's
    /// swipes and blocks first.
    pub async fn candidates(
        &self,
        searcher: &Searcher,
    ) -> Result<(Vec<Candidate>, Target), StoreError> {
        let read = self
            .reads
            .run(Freshness::MomentOld, |db| async move {
                match &db {
                    Db::Postgres(pool) => postgres::candidates(pool, searcher).await,
                    Db::Sqlite(pool) => sqlite::candidates(pool, searcher).await,
                }
            })
            .await?;
        Ok(read)
    }
}
