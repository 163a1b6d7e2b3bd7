//! Dog profiles: the profile, its photos (2–6, in the owner's order) and prompts (0–3 from a
//! curated catalogue), discovery preferences, and the owner's own location.
//!
//! Reads of whole profiles (profile + photos + prompts) go through the two-tier profile cache
//! (L1 1 min, L2 5 min) and are batched per request by [`loader::ProfileLoader`], so a list of
//! profiles costs a constant number of queries. Every write invalidates the owner's entry.

pub mod graphql;
pub mod images;
pub mod input;
pub mod loader;
pub mod model;
pub mod photos;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::error::{ApiError, ApiResult, StoreError};
use crate::ids::ProfileId;
use crate::infra::blobs::BlobStore;
use crate::infra::bus::Bus;
use crate::infra::cache::{CachePolicy, TwoTierCache};
use crate::infra::redis::Redis;
use crate::infra::replicas::{Freshness, Reads};
use crate::infra::time;
use crate::infra::work::WorkGate;
use input::{NewProfile, PreferencesUpdate, PreferencesValue, ProfileChanges};
use model::{LocationRecord, PreferencesRecord, ProfileRecord, ProfileView, PromptRecord};
use store::ProfileStore;

/// One user's cached profile: theirs, or that they have none.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedView {
    view: Option<Arc<ProfileView>>,
    /// Read from a replica, so possibly a moment behind: good for others, not for the owner.
    from_replica: bool,
}

/// Cache entries for `ids` from what was read about them (absent users have no profile).
fn assemble(ids: &[Uuid], parts: store::ProfileParts) -> Vec<(Uuid, Arc<CachedView>)> {
    let hidden: HashMap<Uuid, _> = parts.hidden_until.into_iter().collect();
    let mut loaded: HashMap<Uuid, ProfileView> = parts
        .profiles
        .into_iter()
        .map(|p| {
            (
                p.user_id,
                ProfileView {
                    hidden_until: hidden.get(&p.user_id).copied(),
                    profile: p,
                    photos: Vec::new(),
                    prompts: Vec::new(),
                },
            )
        })
        .collect();
    for photo in parts.photos {
        if let Some(v) = loaded.get_mut(&photo.user_id) {
            v.photos.push(photo);
        }
    }
    for prompt in parts.prompts {
        if let Some(v) = loaded.get_mut(&prompt.user_id) {
            v.prompts.push(prompt);
        }
    }
    ids.iter()
        .map(|id| {
            let view = loaded.remove(id).map(Arc::new);
            let entry = CachedView {
                view,
                from_replica: parts.from_replica,
            };
            (*id, Arc::new(entry))
        })
        .collect()
}

/// Profiles, prompts and preferences. (Photos: see [`photos`].)
pub struct ProfileService {
    store: ProfileStore,
    /// Per user: their profile with photos and prompts, or that they have none.
    cache: Arc<TwoTierCache<CachedView>>,
    /// Per user: everyone they blocked or who blocked them. Dropped for both people whenever a
    /// block is made or lifted.
    blocks: Arc<TwoTierCache<Vec<Uuid>>>,
    blobs: Arc<dyn BlobStore>,
    /// Bounds photo decoding (CPU and memory).
    images: WorkGate,
    /// How far behind the primary a profile read from a replica may be.
    replica_lag: Duration,
}

/// Per user, the profile as others see it.
const PROFILES_CACHE: CachePolicy = CachePolicy::in_process("profiles", 60, 10_000).and_redis(300);
/// Per user, who they blocked or were blocked by.
const BLOCKS_CACHE: CachePolicy = CachePolicy::in_process("blocks", 60, 100_000).and_redis(300);

impl ProfileService {
    pub fn new(
        reads: &Reads,
        redis: Option<Redis>,
        bus: Bus,
        blobs: Arc<dyn BlobStore>,
        images: WorkGate,
    ) -> Self {
        let store = ProfileStore::new(reads);
        let cache = Self::profile_cache(redis.clone(), bus.clone());
        let blocks = TwoTierCache::new(BLOCKS_CACHE, redis, bus);
        ProfileService {
            store,
            cache,
            blocks,
            blobs,
            images,
            replica_lag: reads.staleness_bound(),
        }
    }

    /// Drops `user_id`'s cached profile from Redis and every instance's memory, without a
    /// service (the command line).
    pub async fn forget_cached(redis: Redis, bus: Bus, user_id: Uuid) {
        Self::profile_cache(Some(redis), bus)
            .invalidate(user_id)
            .await;
    }

    fn profile_cache(redis: Option<Redis>, bus: Bus) -> Arc<TwoTierCache<CachedView>> {
        TwoTierCache::new(PROFILES_CACHE, redis, bus)
    }

    pub fn store(&self) -> &ProfileStore {
        &self.store
    }

    /// Whole profiles of these users (absent when a user has none), from the cache when
    /// possible, else with four queries whatever the number of users. They may be a moment
    /// behind the latest change (read from a replica): use [`Self::view`] for a person's own.
    pub async fn views(
        &self,
        user_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Arc<ProfileView>>, StoreError> {
        self.views_with(user_ids, None).await
    }

    /// `user_id`'s whole profile as of the latest change (never from a replica): what they see
    /// of themselves, and what a write checks.
    pub async fn view(&self, user_id: Uuid) -> Result<Option<Arc<ProfileView>>, StoreError> {
        Ok(self
            .views_with(&[user_id], Some(user_id))
            .await?
            .remove(&user_id))
    }

    /// [`Self::views`], with `latest`'s (when among them) as of the latest change: a cached
    /// copy read from a replica is read again from the primary.
    async fn views_with(
        &self,
        user_ids: &[Uuid],
        latest: Option<Uuid>,
    ) -> Result<HashMap<Uuid, Arc<ProfileView>>, StoreError> {
        let cached = self.cache.get_many(user_ids).await;
        let mut out: HashMap<Uuid, Arc<ProfileView>> = HashMap::new();
        let mut missing = Vec::new();
        let mut missing_latest = Vec::new();
        for id in user_ids {
            let must_be_latest = latest == Some(*id);
            match cached.get(id) {
                Some(entry) if !(must_be_latest && entry.from_replica) => {
                    if let Some(view) = entry.view.as_ref() {
                        out.insert(*id, view.clone());
                    }
                }
                _ if must_be_latest => missing_latest.push(*id),
                _ => missing.push(*id),
            }
        }
        for (ids, freshness) in [
            (missing, Freshness::MomentOld),
            (missing_latest, Freshness::Latest),
        ] {
            if !ids.is_empty() {
                let parts = self.store.parts_of(&ids, freshness).await?;
                let fill = assemble(&ids, parts);
                for (id, entry) in &fill {
                    if let Some(view) = &entry.view {
                        out.insert(*id, view.clone());
                    }
                }
                self.cache.insert_many(fill).await;
            }
        }
        Ok(out)
    }

    /// The profiles of `others` that `viewer` may see: absent when there is none, when either
    /// blocked the other, or when moderation hides them (people always see their own).
    pub async fn seen_by(
        &self,
        viewer: Uuid,
        others: &[Uuid],
    ) -> Result<HashMap<Uuid, Arc<ProfileView>>, StoreError> {
        let mut views = self.views_with(others, Some(viewer)).await?;
        let blocks = self.blocks_of(viewer).await?;
        let now = time::now();
        views.retain(|id, view| *id == viewer || !(view.is_hidden(now) || blocks.contains(id)));
        Ok(views)
    }

    /// [`Self::seen_by`] for one profile when everything it needs is in this instance's cache
    /// (the common case: no query, nothing to batch); None when something is not.
    pub async fn seen_by_if_cached(
        &self,
        viewer: Uuid,
        other: Uuid,
    ) -> Option<Option<Arc<ProfileView>>> {
        let entry = self.cache.peek_local(other).await?;
        if viewer == other && entry.from_replica {
            return None;
        }
        let Some(view) = entry.view.as_ref() else {
            return Some(None);
        };
        if viewer == other {
            return Some(Some(view.clone()));
        }
        let blocks = self.blocks.peek_local(viewer).await?;
        let hidden = view.is_hidden(time::now()) || blocks.contains(&other);
        Some((!hidden).then(|| view.clone()))
    }

    /// Everyone `person` blocked or who blocked `person`.
    async fn blocks_of(&self, person: Uuid) -> Result<Arc<Vec<Uuid>>, StoreError> {
        if let Some(cached) = self.blocks.get_many(&[person]).await.remove(&person) {
            return Ok(cached);
        }
        let blocks = Arc::new(self.store.blocks_of(person).await?);
        self.blocks
            .insert_many(vec![(person, blocks.clone())])
            .await;
        Ok(blocks)
    }

    /// A block between `a` and `b` was made or lifted: drops both people's cached blocks
    /// everywhere. Call after the commit.
    pub async fn blocks_changed(&self, a: Uuid, b: Uuid) {
        self.blocks.invalidate_settled(&[a, b]).await;
    }

    /// Drops a user's cached profile everywhere (now, and again a moment later: the view also
    /// says whether moderation hides them). Call after every committed change.
    pub async fn invalidate(&self, user_id: Uuid) {
        self.cache
            .invalidate_settled_after(&[user_id], self.replica_lag)
            .await;
    }

    #[tracing::instrument(skip_all, fields(user.id = %user_id))]
    pub async fn create(&self, user_id: Uuid, input: NewProfile) -> ApiResult<Arc<ProfileView>> {
        let now = time::now();
        let record = ProfileRecord {
            id: ProfileId::new(),
            user_id,
            name: input.name,
            age: input.age,
            bio: input.bio,
            breed: input.breed,
            size: input.size,
            activity_level: input.activity_level,
            is_paused: false,
            photo_count: 0,
            created_at: now,
            updated_at: now,
        };
        self.store.create_profile(&record).await?;
        self.invalidate(user_id).await;
        self.own_view(user_id).await
    }

    #[tracing::instrument(skip_all, fields(user.id = %user_id))]
    pub async fn update(
        &self,
        user_id: Uuid,
        changes: ProfileChanges,
    ) -> ApiResult<Arc<ProfileView>> {
        self.store
            .update_profile(user_id, &changes, time::now())
            .await?
            .ok_or_else(no_profile)?;
        self.invalidate(user_id).await;
        self.own_view(user_id).await
    }

    pub async fn pause(&self, user_id: Uuid, paused: bool) -> ApiResult<Arc<ProfileView>> {
        self.store
            .set_paused(user_id, paused, time::now())
            .await?
            .ok_or_else(no_profile)?;
        self.invalidate(user_id).await;
        self.own_view(user_id).await
    }

    /// Replaces the prompts (0–3, already validated) in the given order.
    pub async fn set_prompts(
        &self,
        user_id: Uuid,
        prompts: Vec<(String, String)>,
    ) -> ApiResult<Vec<PromptRecord>> {
        if prompts.len() > 3 {
            return Err(ApiError::bad_input("prompts", "at most 3 prompts"));
        }
        let mut seen = std::collections::HashSet::new();
        if !prompts.iter().all(|(q, _)| seen.insert(q.clone())) {
            return Err(ApiError::bad_input(
                "question",
                "each question may be answered once",
            ));
        }
        if self.store.profiles_of(&[user_id]).await?.is_empty() {
            return Err(no_profile());
        }
        let stored = self
            .store
            .replace_prompts(user_id, &prompts, time::now())
            .await?;
        self.invalidate(user_id).await;
        Ok(stored)
    }

    pub async fn preferences_of(&self, user_id: Uuid) -> ApiResult<Option<PreferencesRecord>> {
        Ok(self.store.preferences_of(user_id).await?)
    }

    /// The user's preferences, or the defaults when they set none.
    pub async fn preferences_value(&self, user_id: Uuid) -> ApiResult<PreferencesValue> {
        Ok(match self.store.preferences_of(user_id).await? {
            Some(r) => PreferencesValue {
                min_age: r.min_age,
                max_age: r.max_age,
                max_distance: r.max_distance,
                activity_level: r.activity_level,
                distance_unit: r.distance_unit,
            },
            None => PreferencesValue::default(),
        })
    }

    pub async fn update_preferences(
        &self,
        user_id: Uuid,
        update: PreferencesUpdate,
    ) -> ApiResult<PreferencesValue> {
        let current = self.preferences_value(user_id).await?;
        let next = update.apply(current)?;
        self.store
            .upsert_preferences(user_id, &next, time::now())
            .await?;
        Ok(next)
    }

    /// The owner's own exact location. Never call this for anyone but the owner.
    pub async fn own_location(&self, user_id: Uuid) -> ApiResult<Option<LocationRecord>> {
        Ok(self.store.location_of(user_id).await?)
    }

    async fn own_view(&self, user_id: Uuid) -> ApiResult<Arc<ProfileView>> {
        self.view(user_id).await?.ok_or_else(no_profile)
    }
}

fn no_profile() -> ApiError {
    ApiError::NotFound("create a profile first".into())
}
