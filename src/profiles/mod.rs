//! Dog profiles: the profile itself, its photos and prompts, discovery preferences and the
//! owner's location. This part holds the read side that `me` needs; writes come with the
//! profile features.

pub mod graphql;
pub mod model;
pub mod store;

use std::sync::Arc;

use uuid::Uuid;

use crate::error::StoreError;
use crate::infra::db::Db;
use model::{LocationRecord, PhotoRecord, PreferencesRecord, ProfileRecord, PromptRecord};
use store::ProfileStore;

/// Reads of profiles and their parts.
pub struct ProfileService {
    store: Arc<dyn ProfileStore>,
}

impl ProfileService {
    pub fn new(db: &Db) -> Self {
        let store: Arc<dyn ProfileStore> = match db {
            Db::Postgres(pool) => Arc::new(store::PgProfileStore::new(pool.clone())),
            Db::Sqlite(pool) => Arc::new(store::SqliteProfileStore::new(pool.clone())),
        };
        ProfileService { store }
    }

    pub async fn profile_of(&self, user_id: Uuid) -> Result<Option<ProfileRecord>, StoreError> {
        self.store.profile_by_user(user_id).await
    }

    pub async fn photos_of(&self, user_id: Uuid) -> Result<Vec<PhotoRecord>, StoreError> {
        self.store.photos_of(user_id).await
    }

    pub async fn prompts_of(&self, user_id: Uuid) -> Result<Vec<PromptRecord>, StoreError> {
        self.store.prompts_of(user_id).await
    }

    pub async fn preferences_of(
        &self,
        user_id: Uuid,
    ) -> Result<Option<PreferencesRecord>, StoreError> {
        self.store.preferences_of(user_id).await
    }

    /// The owner's own exact location. Never call this for anyone but the owner.
    pub async fn own_location(&self, user_id: Uuid) -> Result<Option<LocationRecord>, StoreError> {
        self.store.location_of(user_id).await
    }
}
