//! Batches every profile a GraphQL request touches into one cache lookup and, for the misses,
//! one query each for profiles, photos and prompts — whatever the number of profiles.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::model::ProfileView;
use crate::app::AppState;

pub struct ProfileLoader(pub AppState);

impl Loader<Uuid> for ProfileLoader {
    type Value = Arc<ProfileView>;
    type Error = Arc<crate::error::StoreError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.0.profiles.views(keys).await.map_err(Arc::new)
    }
}

/// Batches "is this profile hidden from the viewer by a block (either way)?" checks of one
/// request into one query. Keys are `(viewer, other)`.
pub struct BlockLoader(pub AppState);

impl Loader<(Uuid, Uuid)> for BlockLoader {
    type Value = bool;
    type Error = Arc<crate::error::StoreError>;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<HashMap<(Uuid, Uuid), bool>, Self::Error> {
        let mut by_viewer: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (viewer, other) in keys {
            by_viewer.entry(*viewer).or_default().push(*other);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (viewer, others) in by_viewer {
            let blocked = self
                .0
                .profiles
                .store()
                .blocked_among(viewer, &others)
                .await
                .map_err(Arc::new)?;
            for other in others {
                out.insert((viewer, other), blocked.contains(&other));
            }
        }
        Ok(out)
    }
}
