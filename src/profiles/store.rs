//! Profile storage, one implementation per backend. Multi-row writes run in one transaction.

mod postgres;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use postgres::PgProfileStore;
pub use sqlite::SqliteProfileStore;

use super::input::{PreferencesValue, ProfileChanges};
use super::model::{
    LocationRecord, NewPhoto, PhotoDeletion, PhotoRecord, PreferencesRecord, ProfileRecord,
    PromptRecord,
};
use crate::error::StoreError;

/// Everyone a person (`$1`) blocked or who blocked them; the same text on both backends.
pub(crate) const BLOCKS_OF_SQL: &str = "SELECT blocked_id FROM blocks WHERE blocker_id = $1
     UNION
     SELECT blocker_id FROM blocks WHERE blocked_id = $1";

/// Most photos a profile may have.
pub const MAX_PHOTOS: i64 = 6;

#[async_trait]
pub trait ProfileStore: Send + Sync {
    async fn profiles_of(&self, user_ids: &[Uuid]) -> Result<Vec<ProfileRecord>, StoreError>;
    /// Photos of these users, by user and then the owner's order.
    async fn photos_of(&self, user_ids: &[Uuid]) -> Result<Vec<PhotoRecord>, StoreError>;
    /// Prompts of these users, by user and then the owner's order.
    async fn prompts_of(&self, user_ids: &[Uuid]) -> Result<Vec<PromptRecord>, StoreError>;
    async fn preferences_of(&self, user_id: Uuid) -> Result<Option<PreferencesRecord>, StoreError>;
    async fn location_of(&self, user_id: Uuid) -> Result<Option<LocationRecord>, StoreError>;

    /// `Conflict` when the user already has a profile.
    async fn create_profile(&self, profile: &ProfileRecord) -> Result<ProfileRecord, StoreError>;
    /// `None` when the user has no profile.
    async fn update_profile(
        &self,
        user_id: Uuid,
        changes: &ProfileChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<ProfileRecord>, StoreError>;
    async fn set_paused(
        &self,
        user_id: Uuid,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<ProfileRecord>, StoreError>;
    /// Replaces every prompt of the user, in the given order.
    async fn replace_prompts(
        &self,
        user_id: Uuid,
        prompts: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<PromptRecord>, StoreError>;
    async fn upsert_preferences(
        &self,
        user_id: Uuid,
        prefs: &PreferencesValue,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn photo_count(&self, user_id: Uuid) -> Result<i64, StoreError>;
    /// Appends a photo; `Conflict` when the user already has [`MAX_PHOTOS`].
    async fn insert_photo(&self, photo: &NewPhoto) -> Result<PhotoRecord, StoreError>;
    async fn delete_photo(
        &self,
        user_id: Uuid,
        photo_id: Uuid,
    ) -> Result<PhotoDeletion, StoreError>;
    /// Sets the order; `None` when `order` is not a permutation of the user's photos.
    async fn reorder_photos(
        &self,
        user_id: Uuid,
        order: &[Uuid],
    ) -> Result<Option<Vec<PhotoRecord>>, StoreError>;

    /// Whether either user blocked the other.
    async fn blocked_between(&self, a: Uuid, b: Uuid) -> Result<bool, StoreError>;
    /// Everyone `person` blocked or who blocked `person`.
    async fn blocks_of(&self, person: Uuid) -> Result<Vec<Uuid>, StoreError>;
    /// Those of `user_ids` whom moderation hides (or hid), with until when.
    async fn hidden_until_of(
        &self,
        user_ids: &[Uuid],
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError>;
}
