//! Safety: blocking (total, both ways) and reporting (which blocks too, and hides a person
//! reported by enough distinct people until a moderator decides).

use std::time::Duration;

use uuid::Uuid;

use super::DiscoveryService;
use super::store::{self};
use crate::error::{ApiError, ApiResult};
use crate::events::TOPIC_UNMATCHED;
use crate::infra::time;
use crate::profiles::ProfileService;

/// Most reports one person may make in 24 hours.
pub const REPORTS_PER_DAY: i64 = 20;

/// A person reported by `reporters` distinct people within `window` is hidden from everyone
/// until a moderator decides.
#[derive(Debug, Clone, Copy)]
pub struct HoldRule {
    pub reporters: u32,
    pub window: Duration,
}

impl DiscoveryService {
    /// Hides both people from each other everywhere and ends any match between them.
    pub async fn block(
        &self,
        user_id: Uuid,
        target: Uuid,
        profiles: &ProfileService,
    ) -> ApiResult<()> {
        self.check_target(user_id, target)?;
        if !self.store.user_exists(target).await? {
            return Err(ApiError::NotFound("no such user".into()));
        }
        if let Some(ended) = self.store.block(user_id, target, time::now()).await? {
            self.publish(TOPIC_UNMATCHED, user_id, &ended).await;
        }
        profiles.blocks_changed(user_id, target).await;
        self.invalidate_pair(user_id, target).await;
        Ok(())
    }

    pub async fn unblock(
        &self,
        user_id: Uuid,
        target: Uuid,
        profiles: &ProfileService,
    ) -> ApiResult<bool> {
        self.check_target(user_id, target)?;
        let removed = self.store.unblock(user_id, target).await?;
        profiles.blocks_changed(user_id, target).await;
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
        profiles: &ProfileService,
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
        let held = self
            .store
            .report(user_id, target, reason, details.as_deref(), now, hold)
            .await?;
        metrics::counter!("moderation_reports_total").increment(1);
        if held {
            metrics::counter!("moderation_holds_total").increment(1);
            tracing::warn!(user.id = %target, "reported by many people: hidden until a moderator decides");
            profiles.invalidate(target).await;
        }
        self.block(user_id, target, profiles).await
    }
}
