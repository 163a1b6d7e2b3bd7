//! Who may read whose profile. A person reads the profiles the app has put in front of them:
//! the people served to them in their recommendations (an introduction, stored when the page is
//! served), the people who liked them, and their matches. To anyone else a profile does not
//! exist, so a list of ids reaches nobody. Introductions are capped per day: the ceiling on new
//! profiles a person can view.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::Loader;

use uuid::Uuid;

use super::DiscoveryService;
use super::recommendations::RecommendationPage;
use super::store::{Introduced, Relation};
use crate::error::{ApiError, ApiResult, StoreError};
use crate::infra::time;
use crate::profiles::model::ProfileView;
use crate::resolvers::per_viewer;

/// How long this instance trusts a relation it read (an unmatch elsewhere ends a match).
const KNOWN_FOR: Duration = Duration::from_secs(60);
/// Pairs remembered per instance.
const KNOWN_PAIRS: u64 = 200_000;

/// The relations this instance read or made lately: the common reads (a person opening the
/// profile of someone in their list, a page of a cached list served again) ask the database
/// nothing. Only connections are remembered: a stranger may be introduced at any moment.
pub(super) struct Known(moka::future::Cache<(Uuid, Uuid), Relation>);

impl Default for Known {
    fn default() -> Self {
        Known(
            moka::future::Cache::builder()
                .max_capacity(KNOWN_PAIRS)
                .time_to_live(KNOWN_FOR)
                .build(),
        )
    }
}

/// Whether a profile shows to someone so connected to its owner: a match sees it whatever its
/// state; someone introduced sees it only while it is complete and not paused.
pub fn shows_to(relation: Relation, view: &ProfileView) -> bool {
    match relation {
        Relation::Matched => true,
        Relation::Introduced => !view.profile.is_paused && view.is_complete(),
        Relation::Stranger => false,
    }
}

impl DiscoveryService {
    /// How `viewer` is connected to each of `people` (strangers absent).
    pub async fn relations(
        &self,
        viewer: Uuid,
        people: &[Uuid],
    ) -> Result<HashMap<Uuid, Relation>, StoreError> {
        let mut out = HashMap::with_capacity(people.len());
        let mut unknown = Vec::new();
        for person in people {
            match self.known.0.get(&(viewer, *person)).await {
                Some(known) => {
                    out.insert(*person, known);
                }
                None => unknown.push(*person),
            }
        }
        if !unknown.is_empty() {
            for (person, relation) in self.store.relations(viewer, &unknown).await? {
                self.known.0.insert((viewer, person), relation).await;
                out.insert(person, relation);
            }
        }
        Ok(out)
    }

    /// Introduces the people of `page` to `viewer`, keeping the page up to the first new person
    /// beyond today's ceiling on new profiles (`profiles_per_day`); RATE_LIMITED when nobody
    /// on it may be shown.
    pub async fn introduce(&self, viewer: Uuid, page: &mut RecommendationPage) -> ApiResult<()> {
        let mut unknown = Vec::new();
        for item in &page.items {
            let id = item.ranked.user_id;
            if !self.known.0.contains_key(&(viewer, id)) {
                unknown.push(id);
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let now = time::now();
        let Introduced {
            people: introduced,
            full_until,
        } = self
            .store
            .introduce(viewer, &unknown, i64::from(self.profiles_per_day), now)
            .await?;
        for id in &introduced {
            self.known
                .0
                .insert((viewer, *id), Relation::Introduced)
                .await;
        }
        let keep = page
            .items
            .iter()
            .position(|item| {
                unknown.contains(&item.ranked.user_id) && !introduced.contains(&item.ranked.user_id)
            })
            .unwrap_or(page.items.len());
        if keep == 0 {
            let wait = full_until
                .and_then(|until| (until - now).to_std().ok())
                .unwrap_or(Duration::from_secs(60));
            return Err(ApiError::RateLimited(wait));
        }
        if keep < page.items.len() {
            page.items.truncate(keep);
            page.has_next_page = true;
        }
        Ok(())
    }

    /// Forgets what this instance knew about the pair (an unmatch or a block ended it).
    pub(super) async fn forget_relation(&self, a: Uuid, b: Uuid) {
        self.known.0.invalidate(&(a, b)).await;
        self.known.0.invalidate(&(b, a)).await;
    }
}

/// Batches the relations a request asks about (150 aliased `profile` fields are one query).
/// Keys are `(viewer, person)`; strangers are absent.
pub struct RelationLoader(pub Arc<DiscoveryService>);

impl Loader<(Uuid, Uuid)> for RelationLoader {
    type Value = Relation;
    type Error = Arc<StoreError>;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<HashMap<(Uuid, Uuid), Self::Value>, Self::Error> {
        let discovery = &self.0;
        per_viewer(keys, |viewer, people| async move {
            discovery.relations(viewer, &people).await
        })
        .await
        .map_err(Arc::new)
    }
}
