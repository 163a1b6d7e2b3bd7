//! Safety: blocking (total, both ways) and reporting (which blocks too, and hides a person
//! reported by enough distinct people until a moderator decides).

use std::time::Duration;

use uuid::Uuid;

use super::DiscoveryService;
use super::store::{self};
use crate::error::{ApiError, ApiResult};
use crate::events::TOPIC_UNMATCHED;
use crate::infra::time;

/// Most reports one person may make in 24 hours.
pub const REPORTS_PER_DAY: i64 = 20;

/// A reporter whose reports moderators dismissed this many times within
/// [`DISMISSALS_WINDOW_DAYS`] no longer counts towards holds.
pub const DISMISSALS_THAT_DISCOUNT: i64 = 5;
pub const DISMISSALS_WINDOW_DAYS: i64 = 30;

/// A person reported by `reporters` distinct people within `window` is hidden from everyone
/// until a moderator decides. Only reports that count do: from a reporter with a complete
/// profile, an account at least `reporter_min_age` old, who could have met the person (within
/// the reporter's discovery distance, or a like, pass, match or message between them), and
/// whose reports moderators have not often dismissed. Every report reaches moderators.
#[derive(Debug, Clone, Copy)]
pub struct HoldRule {
    pub reporters: u32,
    pub window: Duration,
    pub reporter_min_age: Duration,
}

impl DiscoveryService {
    /// Hides both people from each other everywhere and ends any match between them.
    pub async fn block(&self, user_id: Uuid, target: Uuid) -> ApiResult<()> {
        self.check_target(user_id, target)?;
        if !self.store.user_exists(target).await? {
            return Err(ApiError::NotFound("no such user".into()));
        }
        if let Some(ended) = self.store.block(user_id, target, time::now()).await? {
            self.publish(TOPIC_UNMATCHED, user_id, &ended).await;
        }
        self.profiles.blocks_changed(user_id, target).await;
        self.invalidate_pair(user_id, target).await;
        self.forget_relation(user_id, target).await;
        Ok(())
    }

    pub async fn unblock(&self, user_id: Uuid, target: Uuid) -> ApiResult<bool> {
        self.check_target(user_id, target)?;
        let removed = self.store.unblock(user_id, target).await?;
        self.profiles.blocks_changed(user_id, target).await;
        self.invalidate_pair(user_id, target).await;
        Ok(removed)
    }

    /// Stores the report for moderation, and hides the reported person (a block).
    pub async fn report(
        &self,
        user_id: Uuid,
        target: Uuid,
        reason: store::ReportReason,
        details: Option<String>,
    ) -> ApiResult<()> {
        self.check_target(user_id, target)?;
        let details = details
            .map(|d| crate::text::clean("details", &d, crate::text::Kind::Multiline, 0, 1000))
            .transpose()?
            .filter(|d| !d.is_empty());
        if !self.store.user_exists(target).await? {
            return Err(ApiError::NotFound("no such user".into()));
        }
        let now = time::now();
        let day = chrono::Duration::hours(24);
        let (made, oldest) = self.store.reports_made_since(user_id, now - day).await?;
        if made >= REPORTS_PER_DAY {
            let wait = oldest.map_or(day, |t| t + day - now);
            return Err(ApiError::RateLimited(
                wait.to_std().unwrap_or(Duration::from_secs(60)),
            ));
        }
        let hold = store::AutoHold {
            reporters: i64::from(self.hold.reporters),
            since: now - chrono::Duration::from_std(self.hold.window).unwrap_or(day),
        };
        let count = self.hold_count(user_id, target, now).await?;
        if let Some(why) = &count.not_counted_because {
            tracing::info!(reporter = %user_id, user.id = %target, why, "report does not count towards a hold");
        }
        let held = self
            .store
            .report(
                user_id,
                target,
                reason,
                details.as_deref(),
                &count,
                now,
                hold,
            )
            .await?;
        metrics::counter!("moderation_reports_total").increment(1);
        if held {
            metrics::counter!("moderation_holds_total").increment(1);
            tracing::warn!(user.id = %target, "reported by many people: hidden until a moderator decides");
            self.profiles.invalidate(target).await;
        }
        self.block(user_id, target).await
    }

    /// Whether `reporter`'s report about `target` counts towards a hold, and if not, why.
    async fn hold_count(
        &self,
        reporter: Uuid,
        target: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> ApiResult<store::HoldCount> {
        let not_counted = |why: String| {
            Ok(store::HoldCount {
                not_counted_because: Some(why),
            })
        };
        let dismissed_since = now - chrono::Duration::days(DISMISSALS_WINDOW_DAYS);
        let Some(standing) = self
            .store
            .reporter_standing(reporter, target, dismissed_since)
            .await?
        else {
            return not_counted("the reporter's account is gone".into());
        };
        let min_age = chrono::Duration::from_std(self.hold.reporter_min_age)
            .unwrap_or(chrono::Duration::zero());
        if standing.account_created_at > now - min_age {
            return not_counted(format!(
                "the reporter's account is younger than {} hours",
                min_age.num_hours()
            ));
        }
        if standing.dismissed >= DISMISSALS_THAT_DISCOUNT {
            return not_counted(format!(
                "moderators dismissed {} of the reporter's reports in {DISMISSALS_WINDOW_DAYS} days",
                standing.dismissed
            ));
        }
        let complete = self
            .profiles
            .view(reporter)
            .await?
            .is_some_and(|v| v.is_complete());
        if !complete {
            return not_counted("the reporter has no complete profile".into());
        }
        if !standing.interacted && !self.within_reach(reporter, target).await? {
            return not_counted(
                "the reporter was never within their discovery distance of the person, nor in \
                 touch with them"
                    .into(),
            );
        }
        Ok(store::HoldCount::default())
    }

    /// Whether `target` is within `viewer`'s discovery distance (both must have a location).
    async fn within_reach(&self, viewer: Uuid, target: Uuid) -> ApiResult<bool> {
        let (Some(here), Some(there)) = (
            self.store.location_of(viewer).await?,
            self.store.location_of(target).await?,
        ) else {
            return Ok(false);
        };
        let prefs = self.profiles.preferences_value(viewer).await?;
        let radius_km = prefs.distance_unit.to_km(prefs.max_distance);
        Ok(super::geo::haversine_km(here, there) <= radius_km)
    }
}
