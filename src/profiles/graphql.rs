//! GraphQL types of profiles (`Profile`, `Photo`, `Prompt`, `Preferences`, `Coordinates`).

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{
    ActivityLevel, DistanceUnit, DogSize, LocationRecord, PhotoRecord, PreferencesRecord,
    ProfileRecord, PromptRecord,
};
use crate::app::AppState;
use crate::error::ApiError;

/// A dog's public profile, as other people see it. Never carries coordinates.
pub struct Profile(pub ProfileRecord);

#[Object]
impl Profile {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn user_id(&self) -> Uuid {
        self.0.user_id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn age(&self) -> i32 {
        self.0.age
    }
    async fn bio(&self) -> &str {
        &self.0.bio
    }
    async fn breed(&self) -> Option<&str> {
        self.0.breed.as_deref()
    }
    async fn size(&self) -> Result<Option<DogSize>> {
        Ok(self
            .0
            .size
            .as_deref()
            .map(DogSize::from_db)
            .transpose()
            .map_err(ApiError::Internal)?)
    }
    async fn activity_level(&self) -> Result<ActivityLevel> {
        Ok(ActivityLevel::from_db(&self.0.activity_level).map_err(ApiError::Internal)?)
    }
    /// In the owner's order.
    async fn photos(&self, ctx: &Context<'_>) -> Result<Vec<Photo>> {
        let state = ctx.data::<AppState>()?;
        let photos = state
            .profiles
            .photos_of(self.0.user_id)
            .await
            .map_err(ApiError::from)?;
        Ok(photos.into_iter().map(Photo).collect())
    }
    /// In the owner's order.
    async fn prompts(&self, ctx: &Context<'_>) -> Result<Vec<Prompt>> {
        let state = ctx.data::<AppState>()?;
        let prompts = state
            .profiles
            .prompts_of(self.0.user_id)
            .await
            .map_err(ApiError::from)?;
        Ok(prompts.into_iter().map(Prompt).collect())
    }
    /// 2 to 6 photos: only complete, unpaused profiles are discoverable.
    async fn is_complete(&self) -> bool {
        (2..=6).contains(&self.0.photo_count)
    }
    async fn is_paused(&self) -> bool {
        self.0.is_paused
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

pub struct Photo(pub PhotoRecord);

#[Object]
impl Photo {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    async fn url(&self, ctx: &Context<'_>) -> Result<String> {
        let state = ctx.data::<AppState>()?;
        Ok(state
            .blobs
            .url(&self.0.storage_key)
            .await
            .map_err(ApiError::Internal)?)
    }
    async fn thumbnail_url(&self, ctx: &Context<'_>) -> Result<String> {
        let state = ctx.data::<AppState>()?;
        Ok(state
            .blobs
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

impl TryFrom<PreferencesRecord> for Preferences {
    type Error = ApiError;
    fn try_from(r: PreferencesRecord) -> Result<Self, ApiError> {
        Ok(Preferences {
            min_age: r.min_age,
            max_age: r.max_age,
            max_distance: r.max_distance,
            activity_level: ActivityLevel::from_db(&r.activity_level)?,
            distance_unit: DistanceUnit::from_db(&r.distance_unit)?,
        })
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
