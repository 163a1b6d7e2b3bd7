//! Recommendations: a person's ranked list (computed from the candidates the database
//! filtered, scored in Rust, cached per person) and the pages served from it, with sealed
//! cursors. Swipes do not drop the swiper's own list: a page skips the people acted on since
//! the list was made, and the list is computed again once a page's worth of it is used up. A
//! page whose reader has not liked or passed anyone since their list was made asks the database
//! nothing (see [`super::marks`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::store::{self, Searcher};
use super::{DiscoveryService, score};
use crate::error::{ApiError, ApiResult};
use crate::infra::replicas::Target;
use crate::infra::time;
use crate::profiles::model::{DistanceUnit, ProfileView};

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
    /// The person's swipe mark stored before the candidates were read: while it is still
    /// stored, they have not liked or passed anyone since, and pages need no check. None for a
    /// list read from a replica.
    #[serde(default)]
    pub mark: Option<Uuid>,
    /// Read from a replica, which may not have replayed the person's latest swipes when it
    /// was: every page of it is checked against the primary's, the first one too.
    #[serde(default)]
    pub from_replica: bool,
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
    /// People of the list left out because they were swiped on, blocked, hidden or gone since it
    /// was made.
    skipped: usize,
}

/// The computations of lists under way on this instance, one per person.
#[derive(Default)]
pub(super) struct InFlight(Mutex<HashMap<Uuid, Arc<ListCell>>>);

type ListCell = tokio::sync::OnceCell<Option<Arc<RecList>>>;

impl InFlight {
    /// Joins the computation of `user_id`'s list under way, or starts one.
    fn join(&self, user_id: Uuid) -> Computing<'_> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let cell = map.entry(user_id).or_default().clone();
        Computing {
            inflight: self,
            user_id,
            cell,
        }
    }
}

/// One request's part in a computation. When it ends — the list cached, an error, or the
/// request gone — the computation is forgotten, so later requests read the cache or start
/// afresh and never reuse an old result.
struct Computing<'a> {
    inflight: &'a InFlight,
    user_id: Uuid,
    cell: Arc<ListCell>,
}

impl Drop for Computing<'_> {
    fn drop(&mut self) {
        let mut map = self.inflight.0.lock().unwrap_or_else(|e| e.into_inner());
        if map
            .get(&self.user_id)
            .is_some_and(|c| Arc::ptr_eq(c, &self.cell))
        {
            map.remove(&self.user_id);
        }
    }
}

/// Whether a list was computed by this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    Yes,
    No,
}

/// Whether a page must check its people against the swipes made since its list was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The list was computed by this request, or its reader has not swiped since.
    No,
    Swipes,
}

impl DiscoveryService {
    /// The user's list, cached or computed now (`Fresh::Yes`: nobody in it was acted on yet).
    async fn ranked_list(&self, user_id: Uuid) -> ApiResult<Option<(Arc<RecList>, Fresh)>> {
        if let Some(list) = self.recs.get_many(&[user_id]).await.remove(&user_id) {
            return Ok(Some((list, Fresh::No)));
        }
        let computing = self.computing.join(user_id);
        let list = computing
            .cell
            .get_or_try_init(|| async {
                let list = self.compute_list(user_id).await?;
                if let Some(list) = &list {
                    self.recs.insert_many(vec![(user_id, list.clone())]).await;
                }
                Ok::<_, ApiError>(list)
            })
            .await
            .cloned();
        drop(computing);
        Ok(list?.map(|list| (list, Fresh::Yes)))
    }

    /// Computes a user's list afresh and caches it (the background refresh job); false when
    /// they have no location.
    pub async fn refresh(&self, user_id: Uuid) -> ApiResult<bool> {
        let Some(list) = self.compute_list(user_id).await? else {
            return Ok(false);
        };
        // Every instance serves the new list from now on, not its own older copy.
        self.recs.replace_many(vec![(user_id, list)]).await;
        Ok(true)
    }

    /// A user's ranked list, computed now (not cached here); None without a location.
    async fn compute_list(&self, user_id: Uuid) -> ApiResult<Option<Arc<RecList>>> {
        let Some(location) = self.store.location_of(user_id).await? else {
            return Ok(None);
        };
        let prefs = self.profiles.preferences_value(user_id).await?;
        let me = self.profiles.view(user_id).await?;
        let radius_km = prefs.distance_unit.to_km(prefs.max_distance);
        let searcher = Searcher {
            user_id,
            location,
            age: me.as_ref().map(|v| v.profile.age),
            min_age: prefs.min_age,
            max_age: prefs.max_age,
            radius_km,
            confirmed_only: self.confirmed_only,
        };
        metrics::counter!("recommendation_lists_computed_total").increment(1);
        let now = time::now();
        // Before the candidates are read: a swipe they miss drops this mark.
        let mark = self.marks.start(user_id).await;
        let (candidates, read_from) = self.store.candidates(&searcher).await?;
        let from_replica = read_from == Target::Replica;
        let mut items: Vec<Ranked> = candidates
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
            // A replica's answer may predate a swipe made after the mark was stored.
            mark: mark.filter(|_| !from_replica),
            from_replica,
            unit: prefs.distance_unit,
            items,
        });
        Ok(Some(list))
    }

    /// A page of recommendations after `after` (a cursor from a previous page); FORBIDDEN to
    /// someone without a complete profile of their own.
    ///
    /// Swipes do not drop the swiper's own list: people acted on since it was made are skipped
    /// when a page is served. Once a page's worth of the list has been skipped so (or a full
    /// list runs short), the list is computed again, so the people beyond its end come in.
    pub async fn recommendations(
        &self,
        user_id: Uuid,
        first: usize,
        after: Option<&str>,
    ) -> ApiResult<RecommendationPage> {
        // Give to get: only people others can see browse others.
        if !self
            .profiles
            .view(user_id)
            .await?
            .is_some_and(|v| v.is_complete())
        {
            return Err(ApiError::Forbidden(
                "complete your profile (at least 2 photos) to see recommendations".into(),
            ));
        }
        let after = after.map(|c| self.parse_cursor(c)).transpose()?;
        let Some((list, fresh)) = self.ranked_list(user_id).await? else {
            return Ok(RecommendationPage {
                items: Vec::new(),
                unit: self
                    .profiles
                    .preferences_value(user_id)
                    .await?
                    .distance_unit,
                has_next_page: false,
                skipped: 0,
            });
        };
        let check = match fresh {
            Fresh::Yes if list.from_replica => Check::Swipes,
            Fresh::Yes => Check::No,
            Fresh::No if self.marks.unswiped_since(user_id, list.mark).await => Check::No,
            Fresh::No => Check::Swipes,
        };
        let page = self.page_of(user_id, &list, check, after, first).await?;
        let used_up = page.skipped >= first.max(1)
            || (page.skipped > 0
                && page.items.len() < first
                && list.items.len() >= store::MAX_CANDIDATES as usize);
        if fresh == Fresh::No
            && used_up
            && let Some(list) = self.compute_list(user_id).await?
        {
            self.recs.replace_many(vec![(user_id, list.clone())]).await;
            return self.page_of(user_id, &list, Check::No, after, first).await;
        }
        Ok(page)
    }

    /// The page of `list` after `after`, without the people acted on since it was made.
    async fn page_of(
        &self,
        user_id: Uuid,
        list: &RecList,
        check: Check,
        after: Option<(f64, Uuid)>,
        first: usize,
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
            // A few more than needed: some may be left out.
            let end = (next + (first - items.len()) + 4).min(list.items.len());
            let window = &list.items[next..end];
            let ids: Vec<Uuid> = window.iter().map(|r| r.user_id).collect();
            // Someone may have been liked or passed since a cached list was made (the candidate
            // query of a list made just now already left them out).
            let swiped = match check {
                Check::No => Vec::new(),
                Check::Swipes => self.store.swiped_on(user_id, &ids).await?,
            };
            // Without those blocked either way since, or hidden by moderation (from the same
            // caches every profile read uses).
            let views = self.profiles.seen_by(user_id, &ids).await?;
            for r in window {
                next += 1;
                let view = match views.get(&r.user_id) {
                    Some(view) if !swiped.contains(&r.user_id) => view,
                    _ => {
                        skipped += 1;
                        continue;
                    }
                };
                if view.profile.is_paused || !view.is_complete() {
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
}

/// Best first; ties by user id, so the order is total and pages never overlap.
/// Compared in served hundredths, so the order says no more than the served scores.
fn rank_order(score_a: f64, id_a: Uuid, score_b: f64, id_b: Uuid) -> std::cmp::Ordering {
    hundredths(score_b)
        .cmp(&hundredths(score_a))
        .then(id_a.cmp(&id_b))
}

/// A served score in hundredths (scores lie in [0, 1]).
fn hundredths(score: f64) -> u16 {
    (score.clamp(0.0, 1.0) * 100.0).round() as u16
}
