//! Discovery: locations, recommendations, and the actions on them (like, pass, match, unmatch,
//! block, report).
//!
//! Recommendations are computed from candidates the database has already filtered (distance
//! and age preferences of both people, complete and unpaused profiles, nobody already acted on
//! or blocked), scored in Rust ([`score`]), and cached per user in two tiers (L1 5 min, L2 15
//! min). The cache is invalidated on a change of preferences or location and on every action,
//! and a cached list is still filtered against newer actions before it is served.
//!
//! Scores are rounded to 0.01 before ranking, and cursors are sealed: neither the order, the
//! score nor a cursor tells a client more about a person's distance than the rounded distance.

pub mod geo;
pub mod graphql;
pub mod score;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::events::{MatchEvent, TOPIC_MATCH, TOPIC_UNMATCHED};
use crate::infra::bus::Bus;
use crate::infra::cache::TwoTierCache;
use crate::infra::db::Db;
use crate::infra::redis::Redis;
use crate::infra::seal::Sealer;
use crate::infra::time;
use crate::notifications::{NotificationService, Notify};
use crate::profiles::ProfileService;
use crate::profiles::model::{DistanceUnit, ProfileView};
use geo::Coordinates;
use store::{DiscoveryStore, LikeOutcome, MatchRecord, Searcher};

/// Most reports one person may make in 24 hours.
pub const REPORTS_PER_DAY: i64 = 20;

/// One ranked candidate of a cached list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ranked {
    pub user_id: Uuid,
    pub score: f64,
    pub distance_km: f64,
    pub liked_you: bool,
}

/// A user's ranked recommendations, as cached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecList {
    pub generated_at: DateTime<Utc>,
    pub unit: DistanceUnit,
    pub items: Vec<Ranked>,
}

/// A served recommendation.
pub struct Recommendation {
    pub ranked: Ranked,
    pub profile: Arc<ProfileView>,
    pub cursor: String,
}

pub struct RecommendationPage {
    pub items: Vec<Recommendation>,
    pub unit: DistanceUnit,
    pub has_next_page: bool,
    /// People of the list left out because they were acted on after it was made.
    skipped: usize,
}

pub struct DiscoveryService {
    store: Arc<dyn DiscoveryStore>,
    recs: Arc<TwoTierCache<RecList>>,
    bus: Bus,
    notifications: Arc<NotificationService>,
    /// Seals recommendation cursors.
    cursors: Sealer,
    /// When reports hide a person before a moderator looks.
    hold: HoldRule,
}

/// A person reported by `reporters` distinct people within `window` is hidden from everyone
/// until a moderator decides.
#[derive(Debug, Clone, Copy)]
pub struct HoldRule {
    pub reporters: u32,
    pub window: Duration,
}

/// Whether a list was computed by this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Yes,
    No,
}

impl DiscoveryService {
    pub fn new(
        db: &Db,
        redis: Option<Redis>,
        bus: Bus,
        notifications: Arc<NotificationService>,
        secret: &[u8],
        hold: HoldRule,
    ) -> Self {
        let store: Arc<dyn DiscoveryStore> = match db {
            Db::Postgres(pool) => Arc::new(store::PgDiscoveryStore::new(pool.clone())),
            Db::Sqlite(pool) => Arc::new(store::SqliteDiscoveryStore::new(pool.clone())),
        };
        let recs = TwoTierCache::new(
            "recs",
            Duration::from_secs(300),
            10_000,
            Duration::from_secs(900),
            redis,
            bus.clone(),
        );
        DiscoveryService {
            store,
            recs,
            bus,
            notifications,
            cursors: Sealer::new(secret, "recommendation cursor"),
            hold,
        }
    }

    pub fn store(&self) -> &Arc<dyn DiscoveryStore> {
        &self.store
    }

    /// Drops the cached recommendations of a user, on every instance.
    pub async fn invalidate(&self, user_id: Uuid) {
        self.recs.invalidate(user_id).await;
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

    /// The user's list, cached or computed now (`Fresh::Yes`: nobody in it was acted on yet).
    async fn ranked_list(
        &self,
        user_id: Uuid,
        profiles: &ProfileService,
    ) -> ApiResult<Option<(Arc<RecList>, Fresh)>> {
        if let Some(list) = self.recs.get_many(&[user_id]).await.remove(&user_id) {
            return Ok(Some((list, Fresh::No)));
        }
        let list = self.compute_list(user_id, profiles).await?;
        if let Some(list) = &list {
            self.recs.insert_many(vec![(user_id, list.clone())]).await;
        }
        Ok(list.map(|list| (list, Fresh::Yes)))
    }

    /// Computes a user's list afresh and caches it (the background refresh job); false when
    /// they have no location.
    pub async fn refresh(&self, user_id: Uuid, profiles: &ProfileService) -> ApiResult<bool> {
        let Some(list) = self.compute_list(user_id, profiles).await? else {
            return Ok(false);
        };
        // Every instance serves the new list from now on, not its own older copy.
        self.recs.replace_many(vec![(user_id, list)]).await;
        Ok(true)
    }

    /// A user's ranked list, computed now (not cached here); None without a location.
    async fn compute_list(
        &self,
        user_id: Uuid,
        profiles: &ProfileService,
    ) -> ApiResult<Option<Arc<RecList>>> {
        let Some(location) = self.store.location_of(user_id).await? else {
            return Ok(None);
        };
        let prefs = profiles.preferences_value(user_id).await?;
        let me = profiles.view(user_id).await?;
        let radius_km = prefs.distance_unit.to_km(prefs.max_distance);
        let searcher = Searcher {
            user_id,
            location,
            age: me.as_ref().map(|v| v.profile.age),
            min_age: prefs.min_age,
            max_age: prefs.max_age,
            radius_km,
        };
        metrics::counter!("recommendation_lists_computed_total").increment(1);
        let now = time::now();
        let mut items: Vec<Ranked> = self
            .store
            .candidates(&searcher)
            .await?
            .into_iter()
            .map(|c| Ranked {
                score: score::rounded(score::score(&c, prefs.activity_level, radius_km, now)),
                user_id: c.user_id,
                distance_km: c.distance_km,
                liked_you: c.liked_you,
            })
            .collect();
        items.sort_by(|a, b| rank_order(a.score, a.user_id, b.score, b.user_id));
        let list = Arc::new(RecList {
            generated_at: now,
            unit: prefs.distance_unit,
            items,
        });
        Ok(Some(list))
    }

    /// A page of recommendations after `after` (a cursor from a previous page).
    ///
    /// Swipes do not drop the swiper's own list: people acted on since it was made are skipped
    /// when a page is served. Once a page's worth of the list has been skipped so (or a full
    /// list runs short), the list is computed again, so the people beyond its end come in.
    pub async fn recommendations(
        &self,
        user_id: Uuid,
        first: usize,
        after: Option<&str>,
        profiles: &ProfileService,
    ) -> ApiResult<RecommendationPage> {
        let after = after.map(|c| self.parse_cursor(c)).transpose()?;
        let Some((list, fresh)) = self.ranked_list(user_id, profiles).await? else {
            return Ok(RecommendationPage {
                items: Vec::new(),
                unit: profiles.preferences_value(user_id).await?.distance_unit,
                has_next_page: false,
                skipped: 0,
            });
        };
        let page = self
            .page_of(user_id, &list, fresh, after, first, profiles)
            .await?;
        let used_up = page.skipped >= first.max(1)
            || (page.skipped > 0
                && page.items.len() < first
                && list.items.len() >= store::MAX_CANDIDATES as usize);
        if fresh == Fresh::No
            && used_up
            && let Some(list) = self.compute_list(user_id, profiles).await?
        {
            self.recs.replace_many(vec![(user_id, list.clone())]).await;
            return self
                .page_of(user_id, &list, Fresh::Yes, after, first, profiles)
                .await;
        }
        Ok(page)
    }

    /// The page of `list` after `after`, without the people acted on since it was made.
    async fn page_of(
        &self,
        user_id: Uuid,
        list: &RecList,
        fresh: Fresh,
        after: Option<(f64, Uuid)>,
        first: usize,
        profiles: &ProfileService,
    ) -> ApiResult<RecommendationPage> {
        let unit = list.unit;
        let start = match after {
            Some((score, id)) => list
                .items
                .iter()
                .position(|r| rank_order(r.score, r.user_id, score, id).is_gt())
                .unwrap_or(list.items.len()),
            None => 0,
        };
        let mut items = Vec::with_capacity(first);
        let mut skipped = 0;
        let mut next = start;
        while items.len() < first && next < list.items.len() {
            let end = (next + (first - items.len()) * 2 + 4).min(list.items.len());
            let window = &list.items[next..end];
            let ids: Vec<Uuid> = window.iter().map(|r| r.user_id).collect();
            // Someone may have been liked, passed or blocked since a cached list was made (the
            // candidate query of a list made just now already left them out).
            let acted = match fresh {
                Fresh::Yes => Vec::new(),
                Fresh::No => self.store.acted_on(user_id, &ids).await?,
            };
            let views = profiles.views(&ids).await?;
            for r in window {
                next += 1;
                if acted.contains(&r.user_id) {
                    skipped += 1;
                    continue;
                }
                let Some(view) = views.get(&r.user_id) else {
                    continue;
                };
                if view.profile.is_paused || !(2..=6).contains(&view.photos.len()) {
                    continue;
                }
                items.push(Recommendation {
                    cursor: self.make_cursor(r.score, r.user_id),
                    ranked: r.clone(),
                    profile: view.clone(),
                });
                if items.len() == first {
                    break;
                }
            }
        }
        Ok(RecommendationPage {
            has_next_page: next < list.items.len(),
            items,
            unit,
            skipped,
        })
    }

    fn check_target(&self, user_id: Uuid, target: Uuid) -> ApiResult<()> {
        if user_id == target {
            return Err(ApiError::bad_input("userId", "that is you"));
        }
        Ok(())
    }

    /// Likes `target`; a mutual like makes exactly one match (never one without both likes).
    #[tracing::instrument(skip_all, fields(user.id = %user_id))]
    pub async fn like(
        &self,
        user_id: Uuid,
        target: Uuid,
        profiles: &ProfileService,
    ) -> ApiResult<Option<(MatchRecord, bool)>> {
        self.check_target(user_id, target)?;
        // The like, the checks that both people have a profile and are not blocked, and the
        // `LIKE` notification are one transaction (one round trip on PostgreSQL).
        let notice = self.notifications.outgoing(Notify::liked(target)).await;
        let outcome = self
            .store
            .like(user_id, target, time::now(), &notice.record, notice.offline)
            .await?;
        match outcome {
            LikeOutcome::NoProfile => Err(ApiError::Forbidden("create your profile first".into())),
            LikeOutcome::NoSuchUser | LikeOutcome::Blocked => {
                Err(ApiError::NotFound("no such profile".into()))
            }
            LikeOutcome::Liked {
                new,
                notice_push_state,
            } => {
                if new {
                    // The liker now shows in the other's list as having liked them (and
                    // scores higher there). The liker's own list skips people once liked.
                    self.invalidate(target).await;
                    self.notifications.stored(notice, notice_push_state).await;
                }
                Ok(None)
            }
            LikeOutcome::Matched { record, new } => {
                // Both lists skip a matched pair when served: neither needs computing again.
                if new {
                    self.publish(TOPIC_MATCH, user_id, &record).await;
                    let views = profiles.views(&[user_id, target]).await?;
                    let name = |id: &Uuid| {
                        views
                            .get(id)
                            .map_or_else(|| "someone".to_string(), |v| v.profile.name.clone())
                    };
                    for (who, other) in [(user_id, target), (target, user_id)] {
                        self.notifications
                            .notify(Notify::matched(
                                who,
                                other,
                                &name(&other),
                                record.id,
                                record.conversation_id,
                            ))
                            .await;
                    }
                }
                Ok(Some((record, new)))
            }
        }
    }

    pub async fn pass(&self, user_id: Uuid, target: Uuid) -> ApiResult<()> {
        self.check_target(user_id, target)?;
        if !self.store.pass(user_id, target, time::now()).await? {
            return Err(ApiError::NotFound("no such profile".into()));
        }
        // The passer's list skips the person from now on (see `recommendations`).
        Ok(())
    }

    pub async fn unlike(&self, user_id: Uuid, target: Uuid) -> ApiResult<()> {
        self.check_target(user_id, target)?;
        if let Some(ended) = self.store.unlike(user_id, target).await? {
            self.publish(TOPIC_UNMATCHED, user_id, &ended).await;
        }
        self.invalidate_pair(user_id, target).await;
        Ok(())
    }

    /// Rewinds the most recent pass on someone who still exists for the user (no block either
    /// way: a pass on a person who blocked you stays, and is never handed back): whom it was
    /// about.
    pub async fn undo_pass(&self, user_id: Uuid) -> ApiResult<Option<Uuid>> {
        let target = self.store.undo_last_pass(user_id).await?;
        if target.is_some() {
            self.invalidate(user_id).await;
        }
        Ok(target)
    }

    /// Ends one of the user's matches; the conversation ends with it (no more messages).
    pub async fn unmatch(&self, user_id: Uuid, match_id: Uuid) -> ApiResult<()> {
        let ended = self
            .store
            .unmatch(user_id, match_id)
            .await?
            .ok_or_else(|| ApiError::NotFound("no such match".into()))?;
        self.publish(TOPIC_UNMATCHED, user_id, &ended).await;
        self.invalidate_pair(user_id, ended.other_id).await;
        Ok(())
    }

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

    pub async fn matches(
        &self,
        user_id: Uuid,
        first: usize,
        after: Option<&str>,
    ) -> ApiResult<(Vec<MatchRecord>, bool)> {
        let before = after
            .map(|c| {
                URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| Uuid::from_slice(&b).ok())
                    .ok_or_else(|| ApiError::bad_input("after", "invalid cursor"))
            })
            .transpose()?;
        let limit = i64::try_from(first).unwrap_or(100) + 1;
        let mut rows = self.store.matches(user_id, before, limit).await?;
        let more = rows.len() > first;
        rows.truncate(first);
        Ok((rows, more))
    }

    pub async fn likes_received_count(&self, user_id: Uuid) -> ApiResult<i64> {
        Ok(self.store.likes_received_count(user_id).await?)
    }

    /// A sealed cursor after (score, id): opaque to the client.
    fn make_cursor(&self, score: f64, id: Uuid) -> String {
        let mut plain = hundredths(score).to_be_bytes().to_vec();
        plain.extend_from_slice(id.as_bytes());
        URL_SAFE_NO_PAD.encode(self.cursors.seal(&plain))
    }

    fn parse_cursor(&self, cursor: &str) -> ApiResult<(f64, Uuid)> {
        let invalid = || ApiError::bad_input("after", "invalid cursor");
        let sealed = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let plain = self.cursors.open(&sealed).ok_or_else(invalid)?;
        let (score, id) = plain.split_at_checked(2).ok_or_else(invalid)?;
        let score = u16::from_be_bytes([score[0], score[1]]);
        let id = Uuid::from_slice(id).map_err(|_| invalid())?;
        Ok((f64::from(score) / 100.0, id))
    }

    async fn publish(&self, topic: &str, actor: Uuid, m: &MatchRecord) {
        let event = MatchEvent {
            match_id: m.id,
            conversation_id: m.conversation_id,
            users: [actor, m.other_id],
            created_at: m.created_at,
        };
        match serde_json::to_string(&event) {
            Ok(payload) => {
                if let Err(err) = self.bus.publish(topic, payload).await {
                    tracing::error!(
                        error = format!("{err:#}"),
                        topic,
                        "publishing a match event failed"
                    );
                }
            }
            Err(err) => tracing::error!(error = %err, "serialising a match event failed"),
        }
    }
}

/// Best first; ties by user id, so the order is total and pages never overlap.
/// Compared in served hundredths, so the order says no more than the served scores.
fn rank_order(score_a: f64, id_a: Uuid, score_b: f64, id_b: Uuid) -> std::cmp::Ordering {
    hundredths(score_b)
        .cmp(&hundredths(score_a))
        .then(id_a.cmp(&id_b))
}

pub fn match_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// A served score in hundredths (scores lie in [0, 1]).
fn hundredths(score: f64) -> u16 {
    (score.clamp(0.0, 1.0) * 100.0).round() as u16
}
