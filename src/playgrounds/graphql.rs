//! GraphQL: playgrounds. Each request reads the viewer's favourites, location and unit once
//! ([`ViewerLoader`]) and places through the cache in batches ([`PlaygroundLoader`]), so a
//! list of messages sharing places costs a constant number of statements.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::store::PlaygroundRecord;
use super::{MAX_SEARCH, PlaygroundDraft};
use crate::discovery::DiscoveryService;
use crate::discovery::geo::{Coordinates as Point, haversine_km, km_to_miles};
use crate::error::ApiError;
use crate::ids::PlaygroundId;
use crate::playgrounds::PlaygroundService;
use crate::profiles::ProfileService;
use crate::profiles::graphql::Coordinates;
use crate::profiles::model::DistanceUnit;
use crate::resolvers::{require_confirmed_user, require_user, service};

/// What a place looks like to one viewer.
pub struct Viewer {
    user_id: Uuid,
    favorites: HashSet<PlaygroundId>,
    location: Option<Point>,
    unit: DistanceUnit,
}

/// Loads what a viewer's places need: their favourites, location and distance unit.
pub struct ViewerLoader {
    pub playgrounds: Arc<PlaygroundService>,
    pub discovery: Arc<DiscoveryService>,
    pub profiles: Arc<ProfileService>,
}

impl Loader<Uuid> for ViewerLoader {
    type Value = Arc<Viewer>;
    type Error = Arc<ApiError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Arc<Viewer>>, Self::Error> {
        let mut out = HashMap::with_capacity(keys.len());
        for &user_id in keys {
            let viewer = load_viewer(&self.playgrounds, &self.discovery, &self.profiles, user_id)
                .await
                .map_err(Arc::new)?;
            out.insert(user_id, Arc::new(viewer));
        }
        Ok(out)
    }
}

/// A viewer's favourites, own location and distance unit, read now.
async fn load_viewer(
    playgrounds: &PlaygroundService,
    discovery: &DiscoveryService,
    profiles: &ProfileService,
    user_id: Uuid,
) -> Result<Viewer, ApiError> {
    Ok(Viewer {
        user_id,
        favorites: playgrounds.favorite_set(user_id).await?,
        location: discovery.location_of(user_id).await?,
        unit: profiles.preferences_value(user_id).await?.distance_unit,
    })
}

pub struct PlaygroundLoader(pub Arc<PlaygroundService>);

impl Loader<PlaygroundId> for PlaygroundLoader {
    type Value = Arc<PlaygroundRecord>;
    type Error = Arc<ApiError>;

    async fn load(
        &self,
        keys: &[PlaygroundId],
    ) -> Result<HashMap<PlaygroundId, Arc<PlaygroundRecord>>, Self::Error> {
        self.0.many(keys).await.map_err(Arc::new)
    }
}

pub struct Playground {
    record: Arc<PlaygroundRecord>,
    added_by_viewer: bool,
    is_favorite: bool,
    distance: Option<i32>,
}

impl Playground {
    fn new(record: Arc<PlaygroundRecord>, viewer: &Viewer) -> Self {
        let distance = viewer.location.and_then(|me| {
            let there = Point::parse(record.latitude, record.longitude).ok()?;
            let km = haversine_km(me, there);
            let value = match viewer.unit {
                DistanceUnit::Miles => km_to_miles(km),
                DistanceUnit::Kilometers => km,
            };
            // Places are public: a park next door is 0 away.
            Some(value.round() as i32)
        });
        Playground {
            added_by_viewer: record.created_by == viewer.user_id,
            is_favorite: viewer.favorites.contains(&record.id),
            record,
            distance,
        }
    }
}

#[Object]
impl Playground {
    async fn id(&self) -> Uuid {
        self.record.id.uuid()
    }
    async fn name(&self) -> &str {
        &self.record.name
    }
    async fn description(&self) -> &str {
        &self.record.description
    }
    /// Places are public; people are not.
    async fn location(&self) -> Coordinates {
        Coordinates {
            latitude: self.record.latitude,
            longitude: self.record.longitude,
        }
    }
    /// The viewer's own id when they added the place; null otherwise, so a place never ties a
    /// person to the park they visit.
    async fn created_by(&self) -> Option<Uuid> {
        self.added_by_viewer.then_some(self.record.created_by)
    }
    async fn favorite_count(&self) -> i32 {
        i32::try_from(self.record.favorite_count).unwrap_or(i32::MAX)
    }
    async fn is_favorite(&self) -> bool {
        self.is_favorite
    }
    /// Rounded, in the viewer's unit, from the viewer's location (null without one).
    async fn distance(&self) -> Option<i32> {
        self.distance
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.record.created_at
    }
}

async fn viewer(ctx: &Context<'_>, user_id: Uuid) -> Result<Arc<Viewer>> {
    let loader = ctx.data::<DataLoader<ViewerLoader>>()?;
    Ok(loader
        .load_one(user_id)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("loading playgrounds failed: {e}")))?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("viewer not loaded")))?)
}

async fn present(
    ctx: &Context<'_>,
    user_id: Uuid,
    records: Vec<Arc<PlaygroundRecord>>,
) -> Result<Vec<Playground>> {
    let viewer = viewer(ctx, user_id).await?;
    Ok(records
        .into_iter()
        .map(|r| Playground::new(r, &viewer))
        .collect())
}

/// A place as the signed-in viewer sees it (for `Message.playground`); None when it is gone.
pub async fn load_playground(ctx: &Context<'_>, id: PlaygroundId) -> Result<Option<Playground>> {
    let user = require_user(ctx).await?;
    let loader = ctx.data::<DataLoader<PlaygroundLoader>>()?;
    let Some(record) = loader
        .load_one(id)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("loading playgrounds failed: {e}")))?
    else {
        return Ok(None);
    };
    let viewer = viewer(ctx, user.user_id).await?;
    Ok(Some(Playground::new(record, &viewer)))
}

#[derive(InputObject)]
pub struct PlaygroundInput {
    name: String,
    description: String,
    latitude: f64,
    longitude: f64,
}

#[derive(Default)]
pub struct PlaygroundQuery;

#[Object]
impl PlaygroundQuery {
    /// Your favourite places, most recently saved first.
    #[graphql(
        complexity = "crate::resolvers::page_cost(None, super::MAX_FAVORITES, super::MAX_FAVORITES, child_complexity)"
    )]
    async fn my_playgrounds(&self, ctx: &Context<'_>) -> Result<Vec<Playground>> {
        let user = require_user(ctx).await?;
        let playgrounds = service::<Arc<PlaygroundService>>(ctx)?;
        let records = playgrounds.favorites(user.user_id).await?;
        present(ctx, user.user_id, records).await
    }

    /// Places within `radius` (above 0, at most 100 km) of a point, nearest first.
    #[graphql(
        complexity = "crate::resolvers::page_cost(None, super::NEAR_LIMIT as i32, super::NEAR_LIMIT as i32, child_complexity)"
    )]
    async fn playgrounds_near(
        &self,
        ctx: &Context<'_>,
        latitude: f64,
        longitude: f64,
        radius: f64,
        #[graphql(default_with = "Some(DistanceUnit::Kilometers)")] unit: Option<DistanceUnit>,
    ) -> Result<Vec<Playground>> {
        let user = require_user(ctx).await?;
        let playgrounds = service::<Arc<PlaygroundService>>(ctx)?;
        let radius_km = unit.unwrap_or(DistanceUnit::Kilometers).to_km(radius);
        let records = playgrounds.near(latitude, longitude, radius_km).await?;
        present(ctx, user.user_id, records).await
    }

    /// Fuzzy name search: prefix matches first; case and accents do not matter.
    #[graphql(
        complexity = "crate::resolvers::page_cost(first, 20, MAX_SEARCH as i32, child_complexity)"
    )]
    async fn search_playgrounds(
        &self,
        ctx: &Context<'_>,
        query: String,
        #[graphql(default = 20)] first: Option<i32>,
    ) -> Result<Vec<Playground>> {
        let user = require_user(ctx).await?;
        let playgrounds = service::<Arc<PlaygroundService>>(ctx)?;
        let first = usize::try_from(first.unwrap_or(20))
            .ok()
            .filter(|f| (1..=MAX_SEARCH).contains(f))
            .ok_or_else(|| {
                ApiError::bad_input("first", format!("first must be between 1 and {MAX_SEARCH}"))
            })?;
        let records = playgrounds.search(&query, first).await?;
        present(ctx, user.user_id, records).await
    }
}

#[derive(Default)]
pub struct PlaygroundMutation;

#[Object]
impl PlaygroundMutation {
    /// Adds a place and makes it one of your favourites; the same name within 50 m of an
    /// existing place is that place.
    async fn add_playground(
        &self,
        ctx: &Context<'_>,
        input: PlaygroundInput,
    ) -> Result<Playground> {
        let user = require_confirmed_user(ctx).await?;
        let playgrounds = service::<Arc<PlaygroundService>>(ctx)?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        let complete = profiles
            .view(user.user_id)
            .await?
            .is_some_and(|v| v.is_complete());
        let record = playgrounds
            .add(
                user.user_id,
                PlaygroundDraft {
                    name: input.name,
                    description: input.description,
                    latitude: input.latitude,
                    longitude: input.longitude,
                },
                complete,
            )
            .await?;
        // The viewer's favourites just changed: read them fresh, not from this request's loader.
        let viewer = load_viewer(playgrounds, discovery, profiles, user.user_id).await?;
        Ok(Playground::new(record, &viewer))
    }

    async fn favorite_playground(
        &self,
        ctx: &Context<'_>,
        playground_id: Uuid,
    ) -> Result<Playground> {
        let user = require_user(ctx).await?;
        let playgrounds = service::<Arc<PlaygroundService>>(ctx)?;
        let record = playgrounds
            .favorite(user.user_id, playground_id.into())
            .await?;
        let viewer = viewer(ctx, user.user_id).await?;
        let mut shown = Playground::new(record, &viewer);
        shown.is_favorite = true;
        Ok(shown)
    }

    /// Removes a place from your favourites (the place stays for everyone else); false when
    /// it was not one of them.
    async fn remove_playground(&self, ctx: &Context<'_>, playground_id: Uuid) -> Result<bool> {
        let user = require_user(ctx).await?;
        let playgrounds = service::<Arc<PlaygroundService>>(ctx)?;
        Ok(playgrounds
            .unfavorite(user.user_id, playground_id.into())
            .await?)
    }
}
