//! Discovery storage: locations, likes, passes, matches, blocks, reports, and the candidate
//! query behind recommendations. One implementation per backend.

mod postgres;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use postgres::{CANDIDATES_SQL, PgDiscoveryStore};
pub use sqlite::SqliteDiscoveryStore;

use super::geo::Coordinates;
use crate::error::StoreError;
use crate::infra::stored::stored_enum;
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

/// The end of a hold that only a moderator lifts (both backends store this instant).
pub fn forever() -> DateTime<Utc> {
    chrono::DateTime::from_timestamp(253_402_300_799, 0).expect("9999-12-31T23:59:59Z is valid")
}

#[async_trait]
pub trait DiscoveryStore: Send + Sync {
    async fn set_location(
        &self,
        user_id: Uuid,
        exact: Coordinates,
        grid: Coordinates,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn location_of(&self, user_id: Uuid) -> Result<Option<Coordinates>, StoreError>;

    /// Likes `target` and, when the like is mutual, creates the match and its conversation —
    /// in one transaction, serialised per pair so two simultaneous likes make exactly one match.
    /// A new like that is not mutual also stores `notice` (the `LIKE` notification for
    /// `target`; pushed if `target_offline`) in that transaction, if `target` wants it.
    async fn like(
        &self,
        user_id: Uuid,
        target: Uuid,
        now: DateTime<Utc>,
        notice: &NotificationRecord,
        target_offline: bool,
    ) -> Result<LikeOutcome, StoreError>;
    /// False when the target does not exist. Passing also withdraws a like.
    async fn pass(
        &self,
        user_id: Uuid,
        target: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Withdraws a like; a match built on it ends. Returns the ended match.
    async fn unlike(&self, user_id: Uuid, target: Uuid) -> Result<Option<MatchRecord>, StoreError>;
    /// Removes the most recent pass; returns whom it was about.
    async fn undo_last_pass(&self, user_id: Uuid) -> Result<Option<Uuid>, StoreError>;
    /// Ends a match the user is part of. `None` when there is no such match of theirs.
    async fn unmatch(
        &self,
        user_id: Uuid,
        match_id: Uuid,
    ) -> Result<Option<MatchRecord>, StoreError>;
    /// Blocks; ends any match and withdraws likes between the two. Returns the ended match.
    async fn block(
        &self,
        user_id: Uuid,
        target: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<MatchRecord>, StoreError>;
    async fn unblock(&self, user_id: Uuid, target: Uuid) -> Result<bool, StoreError>;
    /// Stores a report for moderation, with a snapshot of the reported person's name, bio and
    /// photo keys as they are now, and a copy of the messages they sent the reporter. When
    /// `hold.reporters` distinct people have reported them since `hold.since` (this report
    /// included), hides them from everyone until a moderator decides; true when this report
    /// did that.
    async fn report(
        &self,
        user_id: Uuid,
        target: Uuid,
        reason: ReportReason,
        details: Option<&str>,
        now: DateTime<Utc>,
        hold: AutoHold,
    ) -> Result<bool, StoreError>;

    async fn user_exists(&self, user_id: Uuid) -> Result<bool, StoreError>;
    /// How many reports the user made after `since`, and when the oldest of them was made.
    async fn reports_made_since(
        &self,
        user_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), StoreError>;
    /// Newest first; `before` is a match id (UUIDv7: ids sort by time).
    async fn matches(
        &self,
        user_id: Uuid,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<MatchRecord>, StoreError>;
    async fn match_of(
        &self,
        user_id: Uuid,
        match_id: Uuid,
    ) -> Result<Option<MatchRecord>, StoreError>;
    /// People who liked the user and whom the user has not acted on (nor blocked).
    async fn likes_received_count(&self, user_id: Uuid) -> Result<i64, StoreError>;
    /// Those of `others` the user liked, passed, matched or blocked, or who blocked the user.
    async fn acted_on(&self, user_id: Uuid, others: &[Uuid]) -> Result<Vec<Uuid>, StoreError>;
    /// Complete, unpaused profiles with a location within both people's distance and age
    /// preferences, excluding self, liked, passed, matched and blocked (both ways).
    async fn candidates(&self, searcher: &Searcher) -> Result<Vec<Candidate>, StoreError>;
}
