//! GraphQL: `recommendations`, `matches`, `likesReceivedCount`, and the discovery mutations.

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

use super::store::MatchRecord;
use super::store::ReportReason;
use super::{Recommendation as Served, geo, match_cursor};
use crate::discovery::DiscoveryService;
use crate::error::ApiError;
use crate::infra::rate_limit::{Bucket, RateLimiter};
use crate::profiles::ProfileService;
use crate::resolvers::{
    connection, page_size, require_confirmed_user, require_user, service, spend_on_people,
};
use async_graphql::dataloader::DataLoader;

use super::{Relation, RelationLoader, shows_to};
use crate::profiles::graphql::{Preferences, PreferencesInput, Profile, load_profile};
use crate::profiles::loader::SeenProfileLoader;
use crate::profiles::model::DistanceUnit;

/// Most items one page may ask for.
const MAX_PAGE: i32 = 50;

pub struct Recommendation {
    served: Served,
    unit: DistanceUnit,
}

#[Object]
impl Recommendation {
    async fn profile(&self) -> Profile {
        Profile(self.served.profile.clone())
    }
    /// 0..1, higher is better, rounded to 0.01.
    async fn score(&self) -> f64 {
        super::score::served(self.served.ranked.score)
    }
    /// Rounded, at least 1, in the viewer's distance unit.
    async fn distance(&self) -> i32 {
        geo::display_distance(
            self.served.ranked.distance_km,
            self.unit == DistanceUnit::Miles,
        )
    }
    async fn distance_unit(&self) -> DistanceUnit {
        self.unit
    }
    async fn liked_you(&self) -> bool {
        self.served.ranked.liked_you
    }
}

connection!(
    RecommendationConnection,
    RecommendationEdge,
    Recommendation,
    |recommendation| recommendation.served.cursor.clone()
);

pub struct Match(pub MatchRecord);

#[Object]
impl Match {
    async fn id(&self) -> Uuid {
        self.0.id
    }
    /// The other person's profile.
    async fn profile(&self, ctx: &Context<'_>) -> Result<Profile> {
        load_profile(ctx, self.0.other_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("the profile is gone".into()).into())
    }
    async fn conversation_id(&self) -> Uuid {
        self.0.conversation_id.uuid()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(MatchConnection, MatchEdge, Match, |m| match_cursor(m.0.id));

#[derive(SimpleObject)]
pub struct LikeResult {
    pub is_match: bool,
    #[graphql(name = "match")]
    pub match_: Option<Match>,
}

#[derive(Default)]
pub struct DiscoveryQuery;

#[Object]
impl DiscoveryQuery {
    /// Your own profile, or that of someone the app showed you or connected you with (served
    /// in your recommendations, liked you, or matched); NOT_FOUND for anyone else, and when
    /// either of you blocked the other. A paused or incomplete profile shows only to matches.
    async fn profile(&self, ctx: &Context<'_>, user_id: Uuid) -> Result<Option<Profile>> {
        let viewer = require_user(ctx).await?.user_id;
        let profiles = service::<Arc<ProfileService>>(ctx)?;
        let not_found = || ApiError::NotFound("no such profile".into());
        let relation = if viewer == user_id {
            Relation::Matched
        } else {
            spend_on_people(ctx, viewer, 1).await?;
            ctx.data::<DataLoader<RelationLoader>>()?
                .load_one((viewer, user_id))
                .await
                .map_err(ApiError::from)?
                .unwrap_or(Relation::Stranger)
        };
        if relation == Relation::Stranger {
            return Err(not_found().into());
        }
        let seen = match profiles.seen_by_if_cached(viewer, user_id).await {
            Some(seen) => seen,
            // Not all cached here: batched with the request's other profiles.
            None => ctx
                .data::<DataLoader<SeenProfileLoader>>()?
                .load_one((viewer, user_id))
                .await
                .map_err(ApiError::from)?,
        };
        match seen {
            Some(view) if shows_to(relation, &view) => Ok(Some(Profile(view))),
            _ => Err(not_found().into()),
        }
    }

    #[graphql(complexity = "crate::resolvers::page_cost(first, 10, MAX_PAGE, child_complexity)")]
    async fn recommendations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<RecommendationConnection> {
        let user = require_user(ctx).await?;
        let first = page_size(first.unwrap_or(10), MAX_PAGE)?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        let mut page = discovery
            .recommendations(user.user_id, first, after.as_deref())
            .await?;
        spend_on_people(ctx, user.user_id, page.items.len()).await?;
        discovery.introduce(user.user_id, &mut page).await?;
        let unit = page.unit;
        let nodes = page.items.into_iter();
        Ok(RecommendationConnection::page(
            nodes.map(|served| Recommendation { served, unit }),
            page.has_next_page,
        ))
    }

    /// People who liked you and whom you have not answered yet.
    async fn likes_received_count(&self, ctx: &Context<'_>) -> Result<i32> {
        let user = require_user(ctx).await?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        let n = discovery.likes_received_count(user.user_id).await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    /// Newest first.
    #[graphql(complexity = "crate::resolvers::page_cost(first, 20, MAX_PAGE, child_complexity)")]
    async fn matches(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> Result<MatchConnection> {
        let user = require_user(ctx).await?;
        let first = page_size(first.unwrap_or(20), MAX_PAGE)?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        let (rows, more) = discovery
            .matches(user.user_id, first, after.as_deref())
            .await?;
        spend_on_people(ctx, user.user_id, rows.len()).await?;
        Ok(MatchConnection::page(rows.into_iter().map(Match), more))
    }
}

#[derive(Default)]
pub struct DiscoveryMutation;

#[Object]
impl DiscoveryMutation {
    /// Changes your preferences; your recommendations are computed anew.
    async fn update_preferences(
        &self,
        ctx: &Context<'_>,
        input: PreferencesInput,
    ) -> Result<Preferences> {
        let user = require_user(ctx).await?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        Ok(discovery
            .update_preferences(user.user_id, input.into())
            .await?
            .into())
    }

    async fn update_location(
        &self,
        ctx: &Context<'_>,
        latitude: f64,
        longitude: f64,
    ) -> Result<bool> {
        let user = require_user(ctx).await?;
        let rate_limiter = service::<RateLimiter>(ctx)?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        let me = user.user_id.to_string();
        rate_limiter
            .check_all(&[
                (Bucket::Location, &me),
                (Bucket::LocationChangesPerDay, &me),
            ])
            .await
            .map_err(ApiError::RateLimited)?;
        discovery
            .update_location(user.user_id, latitude, longitude)
            .await?;
        Ok(true)
    }

    async fn like(&self, ctx: &Context<'_>, user_id: Uuid) -> Result<LikeResult> {
        let user = require_confirmed_user(ctx).await?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        service::<RateLimiter>(ctx)?
            .check(Bucket::LikesPerDay, &user.user_id.to_string())
            .await
            .map_err(ApiError::RateLimited)?;
        let result = discovery.like(user.user_id, user_id).await?;
        Ok(LikeResult {
            is_match: result.is_some(),
            match_: result.map(|(m, _)| Match(m)),
        })
    }

    async fn pass(&self, ctx: &Context<'_>, user_id: Uuid) -> Result<bool> {
        let user = require_user(ctx).await?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        discovery.pass(user.user_id, user_id).await?;
        Ok(true)
    }

    async fn unlike(&self, ctx: &Context<'_>, user_id: Uuid) -> Result<bool> {
        let user = require_user(ctx).await?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        discovery.unlike(user.user_id, user_id).await?;
        Ok(true)
    }

    /// Rewinds the most recent pass; null if none.
    async fn undo_pass(&self, ctx: &Context<'_>) -> Result<Option<Profile>> {
        let user = require_user(ctx).await?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        match discovery.undo_pass(user.user_id).await? {
            Some(target) => load_profile(ctx, target).await,
            None => Ok(None),
        }
    }

    async fn unmatch(&self, ctx: &Context<'_>, match_id: Uuid) -> Result<bool> {
        let user = require_user(ctx).await?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        discovery.unmatch(user.user_id, match_id).await?;
        Ok(true)
    }

    async fn block(&self, ctx: &Context<'_>, user_id: Uuid) -> Result<bool> {
        let user = require_user(ctx).await?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        discovery.block(user.user_id, user_id).await?;
        Ok(true)
    }

    async fn unblock(&self, ctx: &Context<'_>, user_id: Uuid) -> Result<bool> {
        let user = require_user(ctx).await?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        discovery.unblock(user.user_id, user_id).await?;
        Ok(true)
    }

    async fn report(
        &self,
        ctx: &Context<'_>,
        user_id: Uuid,
        reason: ReportReason,
        details: Option<String>,
    ) -> Result<bool> {
        let user = require_confirmed_user(ctx).await?;
        let discovery = service::<Arc<DiscoveryService>>(ctx)?;
        discovery
            .report(user.user_id, user_id, reason, details)
            .await?;
        Ok(true)
    }
}
