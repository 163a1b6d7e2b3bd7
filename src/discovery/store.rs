//! Discovery storage: locations, likes, passes, matches, blocks, reports, and the candidate
//! query behind recommendations. Written once for both backends (see [`crate::infra::sql`]),
//! except a like and the candidate query, which differ enough to stand per backend side by side
//! (`store/postgres.rs`, `store/sqlite.rs`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use const_format::concatcp;
use uuid::Uuid;

use super::geo::Coordinates;
use crate::error::StoreError;
use crate::ids::ConversationId;
use crate::infra::db::Db;
use crate::infra::replicas::{Freshness, Reads, Target};
use crate::infra::sql::{
    Backend, Ids, Sql, Ts, WriteTx, execute, execute_in, fetch, fetch_scalar, for_update,
    in_both_transactions, in_ids, returning_scalar, with_db,
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
    pub conversation_id: ConversationId,
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
    Option<ConversationId>,
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

/// A match `m` from the side of the viewer, `$1`.
const MATCH_SELECT: &str = "SELECT m.id,
        CASE WHEN m.user_a = $1 THEN m.user_b ELSE m.user_a END AS other_id,
        c.id AS conversation_id, m.created_at
   FROM matches m JOIN conversations c ON c.match_id = m.id";

/// The match of the viewer `$1` with someone, the pair in id order as `$2`, `$3`.
const MATCH_BETWEEN: &str = concatcp!(MATCH_SELECT, " WHERE m.user_a = $2 AND m.user_b = $3");

/// A pass of `$2` on `$3` (the pass's id `$1`, made at `$4`); nothing when there is one.
const INSERT_PASS: &str = "INSERT INTO passes (id, user_id, target_id, created_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, target_id) DO NOTHING";

/// `$1`'s like of `$2`, withdrawn.
const DELETE_LIKE: &str = "DELETE FROM likes WHERE user_id = $1 AND target_id = $2";

/// What the discovery store writes inside a write transaction of either backend.
pub trait MatchesTx {
    /// Ends the match of `viewer` and `other`, if any (its conversation goes with it); the
    /// match it was, from the viewer's side.
    fn end_match_between(
        &mut self,
        viewer: Uuid,
        other: Uuid,
    ) -> impl std::future::Future<Output = Result<Option<MatchRecord>, StoreError>> + Send;
}

in_both_transactions!(impl MatchesTx {
    async fn end_match_between(
        &mut self,
        viewer: Uuid,
        other: Uuid,
    ) -> Result<Option<MatchRecord>, StoreError> {
        let tx = &mut **self;
        let (a, b) = ordered(viewer, other);
        let found: Option<MatchRecord> = sqlx::query_as(MATCH_BETWEEN)
            .bind(viewer)
            .bind(a)
            .bind(b)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(m) = &found {
            execute_in!(tx, "DELETE FROM matches WHERE id = $1", m.id);
        }
        Ok(found)
    }
});

/// What scores a candidate `l.user_id` (profile `p`, account `u`) for the searcher `$1`. A
/// shared favourite place counts only when at least 5 other people with a complete profile save
/// it: neither of the two can make a private spot count, nor can accounts made for the purpose
/// without building profiles.
const CANDIDATE_SIGNALS: &str = "p.activity_level, p.photo_count,
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
             AS shared_playgrounds";

/// The candidate `l.user_id` is someone the searcher `$1` has not liked, passed or matched, and
/// no block stands between them either way.
const NOT_ACTED_ON: &str =
    "NOT EXISTS (SELECT 1 FROM likes x WHERE x.user_id = $1 AND x.target_id = l.user_id)
         AND NOT EXISTS (SELECT 1 FROM passes x WHERE x.user_id = $1 AND x.target_id = l.user_id)
         AND NOT EXISTS (SELECT 1 FROM matches m
                          WHERE (m.user_a = $1 AND m.user_b = l.user_id)
                             OR (m.user_b = $1 AND m.user_a = l.user_id))
         AND NOT EXISTS (SELECT 1 FROM blocks b
                          WHERE (b.blocker_id = $1 AND b.blocked_id = l.user_id)
                             OR (b.blocker_id = l.user_id AND b.blocked_id = $1))";

mod postgres;
mod sqlite;

pub use postgres::CANDIDATES_SQL;

/// A like to record: who liked whom and when, and the liked person's notice (pushed when they
/// are offline).
#[derive(Debug, Clone)]
pub struct Like {
    pub user_id: Uuid,
    pub target: Uuid,
    pub now: DateTime<Utc>,
    pub notice: NotificationRecord,
    pub target_offline: bool,
}

/// The pair's two people in a fixed order (matches and conversations store them so).
fn ordered(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a < b { (a, b) } else { (b, a) }
}

/// One lock key per unordered pair: a like, an unlike and a block of one pair queue on it.
fn pair_key(a: Uuid, b: Uuid) -> i64 {
    let x = a.as_u128() ^ b.as_u128();
    i64::from_ne_bytes(((x as u64) ^ ((x >> 64) as u64)).to_ne_bytes())
}

/// Forgets the introductions between `$1` and `$2`, both ways.
const FORGET_INTRODUCTIONS: &str = "DELETE FROM introductions
     WHERE (viewer_id = $1 AND person_id = $2) OR (viewer_id = $2 AND person_id = $1)";

mod introductions;
mod safety;
mod swipes;

pub use introductions::{Introduced, Relation};

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

    pub async fn user_exists(&self, user_id: Uuid) -> Result<bool, StoreError> {
        Ok(fetch_scalar!(
            &self.db,
            fetch_one,
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)",
            user_id
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
