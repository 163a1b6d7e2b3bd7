//! SQLite implementation of [`ProfileStore`].

use async_trait::async_trait;
use sqlx::SqlitePool;
use uuid::Uuid;

use super::ProfileStore;
use crate::error::StoreError;
use crate::profiles::model::{
    LocationRecord, PhotoRecord, PreferencesRecord, ProfileRecord, PromptRecord,
};

pub struct SqliteProfileStore {
    pool: SqlitePool,
}

impl SqliteProfileStore {
    pub fn new(pool: SqlitePool) -> Self {
        SqliteProfileStore { pool }
    }
}

#[async_trait]
impl ProfileStore for SqliteProfileStore {
    async fn profile_by_user(&self, user_id: Uuid) -> Result<Option<ProfileRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, name, age, bio, breed, size, activity_level, is_paused,
                    photo_count, created_at, updated_at
               FROM profiles WHERE user_id = ?1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn photos_of(&self, user_id: Uuid) -> Result<Vec<PhotoRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, position, storage_key, thumbnail_key, created_at
               FROM photos WHERE user_id = ?1 ORDER BY position",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn prompts_of(&self, user_id: Uuid) -> Result<Vec<PromptRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, position, question, answer
               FROM prompts WHERE user_id = ?1 ORDER BY position",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn preferences_of(&self, user_id: Uuid) -> Result<Option<PreferencesRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT min_age, max_age, max_distance, activity_level, distance_unit
               FROM preferences WHERE user_id = ?1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn location_of(&self, user_id: Uuid) -> Result<Option<LocationRecord>, StoreError> {
        Ok(
            sqlx::query_as("SELECT latitude, longitude FROM locations WHERE user_id = ?1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}
