//! Batches every profile a GraphQL request touches into one cache lookup and, for the misses,
//! one query each for profiles, photos, prompts and moderation state — whatever the number of
//! profiles.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::ProfileService;
use super::model::ProfileView;
use crate::resolvers::per_viewer;

pub struct ProfileLoader(pub Arc<ProfileService>);

impl Loader<Uuid> for ProfileLoader {
    type Value = Arc<ProfileView>;
    type Error = Arc<crate::error::StoreError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        self.0.views(keys).await.map_err(Arc::new)
    }
}

/// [`ProfileLoader`] for profiles opened by id, as one person may see them (not blocked either
/// way, not hidden by moderation). Keys are `(viewer, other)`.
pub struct SeenProfileLoader(pub Arc<ProfileService>);

impl Loader<(Uuid, Uuid)> for SeenProfileLoader {
    type Value = Arc<ProfileView>;
    type Error = Arc<crate::error::StoreError>;

    async fn load(
        &self,
        keys: &[(Uuid, Uuid)],
    ) -> Result<HashMap<(Uuid, Uuid), Self::Value>, Self::Error> {
        let profiles = &self.0;
        per_viewer(keys, |viewer, others| async move {
            profiles.seen_by(viewer, &others).await
        })
        .await
        .map_err(Arc::new)
    }
}
