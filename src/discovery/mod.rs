//! Discovery: locations, recommendations, and the actions on them (like, pass, match, unmatch,
//! block, report).
//!
//! Recommendations are computed from candidates the database has already filtered (distance
//! and age preferences of both people, complete and unpaused profiles, nobody already acted on
//! or blocked), scored in Rust ([`score`]), and cached per user in two tiers (L1 5 min, L2 15
//! min). A change of location or preferences drops the person's list; an action drops only the
//! lists it changes (a like, the liked person's, for `likedYou`; an unmatch, block or undo, both
//! people's); a cached list is filtered against newer actions when served, and computed again
//! once a page's worth of it is used up.
//!
//! Scores are ranked in hundredths and served in tenths, and cursors are sealed: neither the order, the
//! score nor a cursor tells a client more about a person's distance than the rounded distance.
//!
//! The service is one type whose methods are split by meaning: [`recommendations`] (lists and
//! pages), [`introductions`] (who may read whose profile), [`swipes`] (like, pass, undo,
//! unlike, unmatch, matches) and [`safety`] (block, report).

pub mod geo;
pub mod graphql;
mod introductions;
mod marks;
mod recommendations;
mod safety;
pub mod score;
pub mod store;
mod swipes;

pub use introductions::{RelationLoader, shows_to};
pub use recommendations::{Ranked, RecList, Recommendation, RecommendationPage};
pub use safety::{HoldRule, REPORTS_PER_DAY};
pub use store::Relation;
pub use swipes::match_cursor;

use std::sync::Arc;

use uuid::Uuid;

use crate::error::ApiResult;
use crate::infra::bus::Bus;
use crate::infra::cache::{CachePolicy, TwoTierCache};
use crate::infra::redis::Redis;
use crate::infra::replicas::Reads;
use crate::infra::seal::Sealer;
use crate::infra::time;
use crate::notifications::NotificationService;
use crate::profiles::ProfileService;
use crate::profiles::input::{PreferencesUpdate, PreferencesValue};
use geo::Coordinates;
use store::DiscoveryStore;

/// What a deployment decides about discovery.
pub struct DiscoverySettings {
    /// When reports hide a person before a moderator looks.
    pub hold: HoldRule,
    /// The ceiling on new people shown to someone in a day.
    pub profiles_per_day: u32,
    /// Whether only people with a confirmed email address are recommended.
    pub confirmed_only: bool,
}

pub struct DiscoveryService {
    store: DiscoveryStore,
    recs: Arc<TwoTierCache<RecList>>,
    /// Lists being computed on this instance: a request that finds its person's list being
    /// computed waits for that computation instead of starting another.
    computing: recommendations::InFlight,
    /// Whether a person has swiped since their cached list was computed.
    marks: marks::SwipeMarks,
    bus: Bus,
    /// The profiles recommended, liked, blocked and reported.
    profiles: Arc<ProfileService>,
    notifications: Arc<NotificationService>,
    /// Seals recommendation cursors.
    cursors: Sealer,
    /// When reports hide a person before a moderator looks.
    hold: HoldRule,
    /// Connections this instance read lately (see [`introductions`]).
    known: introductions::Known,
    /// The ceiling on new people shown to someone in a day.
    profiles_per_day: u32,
    /// Whether only people with a confirmed email address are recommended.
    confirmed_only: bool,
}

/// Per user, their current list of recommendations.
const RECOMMENDATIONS_CACHE: CachePolicy =
    CachePolicy::in_process("recs", 300, 10_000).and_redis(900);

impl DiscoveryService {
    pub fn new(
        reads: &Reads,
        redis: Option<Redis>,
        bus: Bus,
        profiles: Arc<ProfileService>,
        notifications: Arc<NotificationService>,
        secret: &[u8],
        settings: DiscoverySettings,
    ) -> Self {
        let DiscoverySettings {
            hold,
            profiles_per_day,
            confirmed_only,
        } = settings;
        let store = DiscoveryStore::new(reads);
        let marks = marks::SwipeMarks::new(redis.clone());
        let recs = TwoTierCache::new(RECOMMENDATIONS_CACHE, redis, bus.clone());
        DiscoveryService {
            store,
            recs,
            computing: recommendations::InFlight::default(),
            marks,
            bus,
            profiles,
            notifications,
            cursors: Sealer::new(secret, "recommendation cursor"),
            hold,
            known: introductions::Known::default(),
            profiles_per_day,
            confirmed_only,
        }
    }

    /// Where someone last said they are (their exact point, never shown to others).
    pub async fn location_of(&self, user_id: Uuid) -> ApiResult<Option<Coordinates>> {
        Ok(self.store.location_of(user_id).await?)
    }

    /// Drops the cached recommendations of a user, on every instance.
    pub async fn invalidate(&self, user_id: Uuid) {
        self.recs.invalidate(user_id).await;
    }

    /// Changes someone's preferences; their recommendations are computed anew (other
    /// distances, other ages).
    pub async fn update_preferences(
        &self,
        user_id: Uuid,
        update: PreferencesUpdate,
    ) -> ApiResult<PreferencesValue> {
        let prefs = self.profiles.update_preferences(user_id, update).await?;
        self.invalidate(user_id).await;
        Ok(prefs)
    }

    /// After `user_id`'s like of `target` committed: the liked person's list (they now show
    /// as having liked them) and the liker's swipe mark go, in one Redis command.
    async fn liked(&self, user_id: Uuid, target: Uuid) {
        let mark = self.marks.redis_key(user_id);
        let dropped = self
            .recs
            .invalidate_many_and_delete(&[target], mark.as_slice())
            .await;
        if mark.is_none() || !dropped {
            self.marks.swiped(user_id).await;
        }
    }

    /// Drops both people's cached lists after an action between them.
    async fn invalidate_pair(&self, user_id: Uuid, other: Uuid) {
        self.recs.invalidate_many(&[user_id, other]).await;
    }

    /// Only valid coordinates are stored. The exact point is kept for the owner;
    /// others only ever see distances computed from its grid-snapped twin.
    pub async fn update_location(
        &self,
        user_id: Uuid,
        latitude: f64,
        longitude: f64,
    ) -> ApiResult<()> {
        let exact = Coordinates::parse(latitude, longitude)?;
        self.store
            .set_location(user_id, exact, exact.snapped(), time::now())
            .await?;
        self.invalidate(user_id).await;
        Ok(())
    }
}
