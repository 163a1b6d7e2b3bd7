//! GraphQL types of profiles (`Profile`, `Photo`, `Prompt`, `Preferences`, `Coordinates`).

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{InputObject, MaybeUndefined};

use super::input::{self, NewProfile, PreferencesUpdate, PreferencesValue, ProfileChanges};
use super::loader::ProfileLoader;
use super::model::{
    ActivityLevel, DistanceUnit, DogSize, LocationRecord, PhotoRecord, PreferencesRecord,
    ProfileView, PromptRecord,
};
use crate::error::ApiError;
use crate::profiles::ProfileService;
use crate::resolvers::{require_user, service};

/// A dog's public profile, as other people see it. Never carries coordinates.
pub struct Profile(pub Arc<ProfileView>);

#[Object]
impl Profile {
    async fn id(&self) -> Uuid {
        self.0.profile.id.uuid()
    }
    async fn user_id(&self) -> Uuid {
        self.0.profile.user_id
    }
    async fn name(&self) -> &str {
        &self.0.profile.name
    }
    async fn age(&self) -> i32 {
        self.0.profile.age
    }
    async fn bio(&self) -> &str {
        &self.0.profile.bio
    }
    async fn breed(&self) -> Option<&str> {
        self.0.profile.breed.as_deref()
    }
    async fn size(&self) -> Option<DogSize> {
        self.0.profile.size
    }
    async fn activity_level(&self) -> ActivityLevel {
        self.0.profile.activity_level
    }
    /// In the owner's order.
    #[graphql(complexity = "crate::resolvers::page_cost(None, 6, 6, child_complexity)")]
    async fn photos(&self) -> Vec<Photo> {
        self.0.photos.iter().cloned().map(Photo).collect()
    }
    /// In the owner's order.
    #[graphql(complexity = "crate::resolvers::page_cost(None, 3, 3, child_complexity)")]
    async fn prompts(&self) -> Vec<Prompt> {
        self.0.prompts.iter().cloned().map(Prompt).collect()
    }
    /// 2 to 6 photos: only complete, unpaused profiles are discoverable.
    async fn is_complete(&self) -> bool {
        self.0.is_complete()
    }
    async fn is_paused(&self) -> bool {
        self.0.profile.is_paused
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.profile.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.profile.updated_at
    }
}

pub struct Photo(pub PhotoRecord);

#[Object]
impl Photo {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn url(&self, ctx: &Context<'_>) -> Result<String> {
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        Ok(profiles
            .blobs()
            .url(&self.0.storage_key)
            .await
            .map_err(ApiError::Internal)?)
    }
    async fn thumbnail_url(&self, ctx: &Context<'_>) -> Result<String> {
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        Ok(profiles
            .blobs()
            .url(&self.0.thumbnail_key)
            .await
            .map_err(ApiError::Internal)?)
    }
    async fn order(&self) -> i32 {
        self.0.position
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

pub struct Prompt(pub PromptRecord);

#[Object]
impl Prompt {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn question(&self) -> &str {
        &self.0.question
    }
    async fn answer(&self) -> &str {
        &self.0.answer
    }
    async fn order(&self) -> i32 {
        self.0.position
    }
}

#[derive(SimpleObject)]
pub struct Preferences {
    pub min_age: i32,
    pub max_age: i32,
    /// In `distanceUnit`.
    pub max_distance: f64,
    pub activity_level: ActivityLevel,
    pub distance_unit: DistanceUnit,
}

impl From<PreferencesRecord> for Preferences {
    fn from(r: PreferencesRecord) -> Self {
        Preferences {
            min_age: r.min_age,
            max_age: r.max_age,
            max_distance: r.max_distance,
            activity_level: r.activity_level,
            distance_unit: r.distance_unit,
        }
    }
}

#[derive(SimpleObject)]
pub struct Coordinates {
    pub latitude: f64,
    pub longitude: f64,
}

impl From<LocationRecord> for Coordinates {
    fn from(r: LocationRecord) -> Self {
        Coordinates {
            latitude: r.latitude,
            longitude: r.longitude,
        }
    }
}

impl From<PreferencesValue> for Preferences {
    fn from(v: PreferencesValue) -> Self {
        Preferences {
            min_age: v.min_age,
            max_age: v.max_age,
            max_distance: v.max_distance,
            activity_level: v.activity_level,
            distance_unit: v.distance_unit,
        }
    }
}

#[derive(InputObject)]
pub struct ProfileInput {
    /// 1..50 chars.
    pub name: String,
    /// 0..30 (years).
    pub age: i32,
    /// 0..500 chars.
    pub bio: String,
    /// 0..60 chars.
    pub breed: Option<String>,
    pub size: Option<DogSize>,
    pub activity_level: ActivityLevel,
}

impl ProfileInput {
    fn parse(self) -> Result<NewProfile, ApiError> {
        Ok(NewProfile {
            name: input::name(&self.name)?,
            age: input::age(self.age)?,
            bio: input::bio(&self.bio)?,
            breed: self
                .breed
                .as_deref()
                .map(input::breed)
                .transpose()?
                .flatten(),
            size: self.size,
            activity_level: self.activity_level,
        })
    }
}

#[derive(InputObject)]
pub struct ProfileUpdateInput {
    pub name: Option<String>,
    pub age: Option<i32>,
    pub bio: Option<String>,
    /// Absent: unchanged; null or empty: cleared.
    pub breed: MaybeUndefined<String>,
    pub size: Option<DogSize>,
    pub activity_level: Option<ActivityLevel>,
}

impl ProfileUpdateInput {
    fn parse(self) -> Result<ProfileChanges, ApiError> {
        Ok(ProfileChanges {
            name: self.name.as_deref().map(input::name).transpose()?,
            age: self.age.map(input::age).transpose()?,
            bio: self.bio.as_deref().map(input::bio).transpose()?,
            breed: match self.breed {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(b) => Some(input::breed(&b)?),
            },
            size: self.size,
            activity_level: self.activity_level,
        })
    }
}

/// `question` from `promptQuestions`; `answer` 1..300 chars.
#[derive(InputObject)]
pub struct PromptInput {
    pub question: String,
    pub answer: String,
}

#[derive(InputObject)]
pub struct PreferencesInput {
    pub min_age: Option<i32>,
    pub max_age: Option<i32>,
    /// > 0, at most 500 km or 310 mi.
    pub max_distance: Option<f64>,
    pub activity_level: Option<ActivityLevel>,
    pub distance_unit: Option<DistanceUnit>,
}

impl From<PreferencesInput> for PreferencesUpdate {
    fn from(input: PreferencesInput) -> Self {
        PreferencesUpdate {
            min_age: input.min_age,
            max_age: input.max_age,
            max_distance: input.max_distance,
            activity_level: input.activity_level,
            distance_unit: input.distance_unit,
        }
    }
}

/// Loads a profile through the request's batching loader.
pub async fn load_profile(ctx: &Context<'_>, user_id: Uuid) -> Result<Option<Profile>> {
    let loader = ctx.data::<DataLoader<ProfileLoader>>()?;
    let view = loader.load_one(user_id).await.map_err(ApiError::from)?;
    Ok(view.map(Profile))
}

#[derive(Default)]
pub struct ProfileQuery;

#[Object]
impl ProfileQuery {
    /// The prompt catalogue `setPrompts` accepts.
    async fn prompt_questions(&self) -> Vec<&'static str> {
        input::PROMPT_QUESTIONS.to_vec()
    }
}

#[derive(Default)]
pub struct ProfileMutation;

#[Object]
impl ProfileMutation {
    async fn create_profile(&self, ctx: &Context<'_>, input: ProfileInput) -> Result<Profile> {
        let user = require_user(ctx).await?;
        let input = input.parse()?;
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        Ok(Profile(profiles.create(user.user_id, input).await?))
    }

    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: ProfileUpdateInput,
    ) -> Result<Profile> {
        let user = require_user(ctx).await?;
        let changes = input.parse()?;
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        Ok(Profile(profiles.update(user.user_id, changes).await?))
    }

    /// 0..3 prompts; replaces all, in order.
    async fn set_prompts(
        &self,
        ctx: &Context<'_>,
        prompts: Vec<PromptInput>,
    ) -> Result<Vec<Prompt>> {
        let user = require_user(ctx).await?;
        if prompts.len() > 3 {
            return Err(ApiError::bad_input("prompts", "at most 3 prompts").into());
        }
        let parsed = prompts
            .iter()
            .map(|p| {
                Ok((
                    input::prompt_question(&p.question)?.to_string(),
                    input::prompt_answer(&p.answer)?,
                ))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        let stored = profiles.set_prompts(user.user_id, parsed).await?;
        Ok(stored.into_iter().map(Prompt).collect())
    }

    async fn pause_profile(&self, ctx: &Context<'_>, paused: bool) -> Result<Profile> {
        let user = require_user(ctx).await?;
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        Ok(Profile(profiles.pause(user.user_id, paused).await?))
    }

    /// Must be a permutation of the current photos.
    async fn reorder_photos(&self, ctx: &Context<'_>, photo_ids: Vec<Uuid>) -> Result<Vec<Photo>> {
        let user = require_user(ctx).await?;
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        let photos = profiles.reorder_photos(user.user_id, &photo_ids).await?;
        Ok(photos.into_iter().map(Photo).collect())
    }

    async fn delete_photo(&self, ctx: &Context<'_>, photo_id: Uuid) -> Result<bool> {
        let user = require_user(ctx).await?;
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        profiles.delete_photo(user.user_id, photo_id).await?;
        Ok(true)
    }
}
