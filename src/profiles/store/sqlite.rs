//! SQLite implementation of [`ProfileStore`]. Lists of ids are passed as one JSON array of hex
//! strings (`json_each` + `unhex`), so a batch is one statement whatever its size.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::{MAX_PHOTOS, ProfileStore};
use crate::error::{StoreError, on_constraint};
use crate::infra::db::{begin_write, id_list};
use crate::infra::time::sqlite_ts;
use crate::profiles::input::{PreferencesValue, ProfileChanges};
use crate::profiles::model::{
    LocationRecord, NewPhoto, PhotoDeletion, PhotoRecord, PreferencesRecord, ProfileRecord,
    PromptRecord,
};

pub struct SqliteProfileStore {
    pool: SqlitePool,
}

impl SqliteProfileStore {
    pub fn new(pool: SqlitePool) -> Self {
        SqliteProfileStore { pool }
    }
}

const PROFILE_COLUMNS: &str = "id, user_id, name, age, bio, breed, size, activity_level, \
     is_paused, photo_count, created_at, updated_at";

#[async_trait]
impl ProfileStore for SqliteProfileStore {
    async fn profiles_of(&self, user_ids: &[Uuid]) -> Result<Vec<ProfileRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, name, age, bio, breed, size, activity_level, is_paused,
                    photo_count, created_at, updated_at
               FROM profiles WHERE user_id IN (SELECT unhex(value) FROM json_each(?1))",
        )
        .bind(id_list(user_ids))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn photos_of(&self, user_ids: &[Uuid]) -> Result<Vec<PhotoRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, position, storage_key, thumbnail_key, created_at
               FROM photos WHERE user_id IN (SELECT unhex(value) FROM json_each(?1)) ORDER BY user_id, position",
        )
        .bind(id_list(user_ids))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn prompts_of(&self, user_ids: &[Uuid]) -> Result<Vec<PromptRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, position, question, answer
               FROM prompts WHERE user_id IN (SELECT unhex(value) FROM json_each(?1)) ORDER BY user_id, position",
        )
        .bind(id_list(user_ids))
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

    async fn create_profile(&self, p: &ProfileRecord) -> Result<ProfileRecord, StoreError> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO profiles (id, user_id, name, age, bio, breed, size, activity_level,
                                   is_paused, photo_count, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0,
                     (SELECT COUNT(*) FROM photos WHERE user_id = ?2), ?9, ?9)
             RETURNING {PROFILE_COLUMNS}"
        )))
        .bind(p.id)
        .bind(p.user_id)
        .bind(&p.name)
        .bind(p.age)
        .bind(&p.bio)
        .bind(&p.breed)
        .bind(p.size)
        .bind(p.activity_level)
        .bind(sqlite_ts(p.created_at))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| on_constraint(e, "this account already has a profile"))
    }

    async fn update_profile(
        &self,
        user_id: Uuid,
        c: &ProfileChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<ProfileRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE profiles SET
                 name = COALESCE(?2, name),
                 age = COALESCE(?3, age),
                 bio = COALESCE(?4, bio),
                 breed = CASE WHEN ?5 THEN ?6 ELSE breed END,
                 size = COALESCE(?7, size),
                 activity_level = COALESCE(?8, activity_level),
                 updated_at = ?9
             WHERE user_id = ?1
             RETURNING {PROFILE_COLUMNS}"
        )))
        .bind(user_id)
        .bind(&c.name)
        .bind(c.age)
        .bind(&c.bio)
        .bind(c.breed.is_some())
        .bind(c.breed.clone().flatten())
        .bind(c.size.map(|s| s.as_db()))
        .bind(c.activity_level.map(|a| a.as_db()))
        .bind(sqlite_ts(now))
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn set_paused(
        &self,
        user_id: Uuid,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<ProfileRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE profiles SET is_paused = ?2, updated_at = ?3 WHERE user_id = ?1
             RETURNING {PROFILE_COLUMNS}"
        )))
        .bind(user_id)
        .bind(paused)
        .bind(sqlite_ts(now))
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn replace_prompts(
        &self,
        user_id: Uuid,
        prompts: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<PromptRecord>, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        sqlx::query("DELETE FROM prompts WHERE user_id = ?1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(prompts.len());
        for (position, (question, answer)) in (0i32..).zip(prompts) {
            let record = PromptRecord {
                id: Uuid::now_v7(),
                user_id,
                position,
                question: question.clone(),
                answer: answer.clone(),
            };
            sqlx::query(
                "INSERT INTO prompts (id, user_id, position, question, answer, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(record.id)
            .bind(user_id)
            .bind(position)
            .bind(question)
            .bind(answer)
            .bind(sqlite_ts(now))
            .execute(&mut *tx)
            .await?;
            out.push(record);
        }
        sqlx::query("UPDATE profiles SET updated_at = ?2 WHERE user_id = ?1")
            .bind(user_id)
            .bind(sqlite_ts(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn upsert_preferences(
        &self,
        user_id: Uuid,
        p: &PreferencesValue,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO preferences (user_id, min_age, max_age, max_distance, activity_level,
                                      distance_unit, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (user_id) DO UPDATE SET
                 min_age = EXCLUDED.min_age, max_age = EXCLUDED.max_age,
                 max_distance = EXCLUDED.max_distance, activity_level = EXCLUDED.activity_level,
                 distance_unit = EXCLUDED.distance_unit, updated_at = EXCLUDED.updated_at",
        )
        .bind(user_id)
        .bind(p.min_age)
        .bind(p.max_age)
        .bind(p.max_distance)
        .bind(p.activity_level.as_db())
        .bind(p.distance_unit.as_db())
        .bind(sqlite_ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn photo_count(&self, user_id: Uuid) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM photos WHERE user_id = ?1")
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn insert_photo(&self, photo: &NewPhoto) -> Result<PhotoRecord, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM photos WHERE user_id = ?1")
            .bind(photo.user_id)
            .fetch_one(&mut *tx)
            .await?;
        if count >= MAX_PHOTOS {
            return Err(StoreError::Conflict(format!(
                "a profile has at most {MAX_PHOTOS} photos"
            )));
        }
        let record: PhotoRecord = sqlx::query_as(
            "INSERT INTO photos (id, user_id, position, storage_key, thumbnail_key, width, height,
                                 byte_size, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             RETURNING id, user_id, position, storage_key, thumbnail_key, created_at",
        )
        .bind(photo.id)
        .bind(photo.user_id)
        .bind(i32::try_from(count).unwrap_or(0))
        .bind(&photo.storage_key)
        .bind(&photo.thumbnail_key)
        .bind(photo.width)
        .bind(photo.height)
        .bind(photo.byte_size)
        .bind(sqlite_ts(photo.created_at))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE profiles SET photo_count = ?2, updated_at = ?3 WHERE user_id = ?1")
            .bind(photo.user_id)
            .bind(i32::try_from(count + 1).unwrap_or(0))
            .bind(sqlite_ts(photo.created_at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn delete_photo(
        &self,
        user_id: Uuid,
        photo_id: Uuid,
    ) -> Result<PhotoDeletion, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        let photos: Vec<(Uuid, String, String)> = sqlx::query_as(
            "SELECT id, storage_key, thumbnail_key FROM photos WHERE user_id = ?1 ORDER BY position",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        let Some((_, key, thumb)) = photos.iter().find(|(id, ..)| *id == photo_id).cloned() else {
            return Ok(PhotoDeletion::NotFound);
        };
        if photos.len() == 2 {
            return Ok(PhotoDeletion::WouldLeaveTooFew);
        }
        sqlx::query("DELETE FROM photos WHERE id = ?1")
            .bind(photo_id)
            .execute(&mut *tx)
            .await?;
        let rest: Vec<Uuid> = photos
            .iter()
            .map(|(id, ..)| *id)
            .filter(|id| *id != photo_id)
            .collect();
        renumber(&mut tx, &rest).await?;
        sqlx::query("UPDATE profiles SET photo_count = ?2, updated_at = ?3 WHERE user_id = ?1")
            .bind(user_id)
            .bind(i32::try_from(rest.len()).unwrap_or(0))
            .bind(sqlite_ts(crate::infra::time::now()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(PhotoDeletion::Deleted(vec![key, thumb]))
    }

    async fn reorder_photos(
        &self,
        user_id: Uuid,
        order: &[Uuid],
    ) -> Result<Option<Vec<PhotoRecord>>, StoreError> {
        let mut tx = begin_write(&self.pool).await?;
        let mut current: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM photos WHERE user_id = ?1")
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
        let mut wanted = order.to_vec();
        current.sort();
        wanted.sort();
        if current != wanted {
            return Ok(None);
        }
        renumber(&mut tx, order).await?;
        sqlx::query("UPDATE profiles SET updated_at = ?2 WHERE user_id = ?1")
            .bind(user_id)
            .bind(sqlite_ts(crate::infra::time::now()))
            .execute(&mut *tx)
            .await?;
        let photos = sqlx::query_as(
            "SELECT id, user_id, position, storage_key, thumbnail_key, created_at
               FROM photos WHERE user_id = ?1 ORDER BY position",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(photos))
    }

    async fn blocks_of(&self, person: Uuid) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(super::BLOCKS_OF_SQL)
            .bind(person)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn hidden_until_of(
        &self,
        user_ids: &[Uuid],
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, hidden_until FROM users
              WHERE id IN (SELECT unhex(value) FROM json_each(?1)) AND hidden_until IS NOT NULL",
        )
        .bind(id_list(user_ids))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn blocked_between(&self, a: Uuid, b: Uuid) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM blocks
                             WHERE (blocker_id = ?1 AND blocked_id = ?2)
                                OR (blocker_id = ?2 AND blocked_id = ?1))",
        )
        .bind(a)
        .bind(b)
        .fetch_one(&self.pool)
        .await?)
    }
}

/// Gives `ids` positions 0, 1, … in this order. SQLite checks the unique (user, position)
/// constraint row by row and cannot defer it, so the rows are taken out and put back in order.
async fn renumber(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ids: &[Uuid],
) -> Result<(), StoreError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        user_id: Uuid,
        storage_key: String,
        thumbnail_key: String,
        width: i32,
        height: i32,
        byte_size: i32,
        created_at: String,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, user_id, storage_key, thumbnail_key, width, height, byte_size, created_at
           FROM photos WHERE id IN (SELECT unhex(value) FROM json_each(?1))",
    )
    .bind(id_list(ids))
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM photos WHERE id IN (SELECT unhex(value) FROM json_each(?1))")
        .bind(id_list(ids))
        .execute(&mut **tx)
        .await?;
    for (position, id) in (0i32..).zip(ids) {
        let Some(r) = rows.iter().find(|r| r.id == *id) else {
            continue;
        };
        sqlx::query(
            "INSERT INTO photos (id, user_id, position, storage_key, thumbnail_key, width, height,
                                 byte_size, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(r.id)
        .bind(r.user_id)
        .bind(position)
        .bind(&r.storage_key)
        .bind(&r.thumbnail_key)
        .bind(r.width)
        .bind(r.height)
        .bind(r.byte_size)
        .bind(&r.created_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
