//! Profile reads, one implementation per backend.

mod postgres;
mod sqlite;

use async_trait::async_trait;
use uuid::Uuid;

pub use postgres::PgProfileStore;
pub use sqlite::SqliteProfileStore;

use super::model::{LocationRecord, PhotoRecord, PreferencesRecord, ProfileRecord, PromptRecord};
use crate::error::StoreError;

#[async_trait]
pub trait ProfileStore: Send + Sync {
    async fn profile_by_user(&self, user_id: Uuid) -> Result<Option<ProfileRecord>, StoreError>;
    /// In the owner's order.
    async fn photos_of(&self, user_id: Uuid) -> Result<Vec<PhotoRecord>, StoreError>;
    /// In the owner's order.
    async fn prompts_of(&self, user_id: Uuid) -> Result<Vec<PromptRecord>, StoreError>;
    async fn preferences_of(&self, user_id: Uuid) -> Result<Option<PreferencesRecord>, StoreError>;
    async fn location_of(&self, user_id: Uuid) -> Result<Option<LocationRecord>, StoreError>;
}
