//! Profile storage, written once for both backends (see [`crate::infra::sql`]). Multi-row writes
//! run in one transaction; photo changes of one person serialise on their account row.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Sqlite};
use uuid::Uuid;

use super::images::Fingerprint;
use super::input::{PreferencesValue, ProfileChanges};
use super::model::{
    LocationRecord, NewPhoto, PhotoDeletion, PhotoFile, PhotoRecord, PreferencesRecord,
    ProfileRecord, PromptRecord,
};
use crate::error::{StoreError, on_constraint};
use crate::infra::db::Db;
use crate::infra::replicas::{Freshness, Reads, Target};
use crate::infra::sql::{
    Backend, Ids, Sql, Ts, execute, execute_in, fetch, fetch_scalar, for_update,
    in_both_transactions, in_ids, returning, with_db,
};
use crate::infra::time;

/// Everyone a person (`$1`) blocked or who blocked them.
pub(crate) const BLOCKS_OF_SQL: &str = "SELECT blocked_id FROM blocks WHERE blocker_id = $1
     UNION
     SELECT blocker_id FROM blocks WHERE blocked_id = $1";

/// Most photos a profile may have.
pub const MAX_PHOTOS: i64 = 6;

const PROFILES_OF: Sql = in_ids!(
    "SELECT id, user_id, name, age, bio, breed, size, activity_level, is_paused,
            photo_count, created_at, updated_at
       FROM profiles WHERE user_id",
    1,
    ""
);
const PHOTOS_OF: Sql = in_ids!(
    "SELECT id, user_id, position, storage_key, thumbnail_key, created_at
       FROM photos WHERE user_id",
    1,
    " ORDER BY user_id, position"
);
const PROMPTS_OF: Sql = in_ids!(
    "SELECT id, user_id, position, question, answer FROM prompts WHERE user_id",
    1,
    " ORDER BY user_id, position"
);
const HIDDEN_UNTIL_OF: Sql = in_ids!(
    "SELECT id, hidden_until FROM users WHERE hidden_until IS NOT NULL AND id",
    1,
    ""
);
/// Takes the person's account row: their photo changes, and their favourite places, serialise
/// here.
pub(crate) const LOCK_ACCOUNT: Sql = for_update!("SELECT 1 FROM users WHERE id = $1");

const CREATE_PROFILE: &str =
    "INSERT INTO profiles (id, user_id, name, age, bio, breed, size, activity_level,
                           is_paused, photo_count, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, false,
             (SELECT COUNT(*) FROM photos WHERE user_id = $2), $9, $9)
     RETURNING id, user_id, name, age, bio, breed, size, activity_level, is_paused, photo_count,
               created_at, updated_at";
const UPDATE_PROFILE: &str = "UPDATE profiles SET
         name = COALESCE($2, name),
         age = COALESCE($3, age),
         bio = COALESCE($4, bio),
         breed = CASE WHEN $5 THEN $6 ELSE breed END,
         size = COALESCE($7, size),
         activity_level = COALESCE($8, activity_level),
         updated_at = $9
     WHERE user_id = $1
     RETURNING id, user_id, name, age, bio, breed, size, activity_level, is_paused, photo_count,
               created_at, updated_at";
const SET_PAUSED: &str = "UPDATE profiles SET is_paused = $2, updated_at = $3 WHERE user_id = $1
     RETURNING id, user_id, name, age, bio, breed, size, activity_level, is_paused, photo_count,
               created_at, updated_at";

/// Profiles, photos, prompts, preferences and locations, and the block and hiding checks that
/// decide who may see them.
#[derive(Clone)]
pub struct ProfileStore {
    db: Db,
    reads: Reads,
}

/// Everything a whole profile is made of, for a set of users, read at one point in time.
pub struct ProfileParts {
    pub profiles: Vec<ProfileRecord>,
    /// By user and then the owner's order.
    pub photos: Vec<PhotoRecord>,
    /// By user and then the owner's order.
    pub prompts: Vec<PromptRecord>,
    /// Those whom moderation hides (or hid), with until when.
    pub hidden_until: Vec<(Uuid, DateTime<Utc>)>,
    /// Whether they were read from a replica (a moment behind the primary).
    pub from_replica: bool,
}

impl ProfileStore {
    pub fn new(reads: &Reads) -> Self {
        ProfileStore {
            db: reads.primary().clone(),
            reads: reads.clone(),
        }
    }

    /// The profiles, photos, prompts and moderation state of these users, from a replica when
    /// `freshness` allows and one is usable.
    pub async fn parts_of(
        &self,
        user_ids: &[Uuid],
        freshness: Freshness,
    ) -> Result<ProfileParts, StoreError> {
        let (parts, target) = self
            .reads
            .run(freshness, |db| async move {
                let profiles: Vec<ProfileRecord> =
                    fetch!(&db, fetch_all, PROFILES_OF, Ids(user_ids));
                let photos: Vec<PhotoRecord> = fetch!(&db, fetch_all, PHOTOS_OF, Ids(user_ids));
                let prompts: Vec<PromptRecord> = fetch!(&db, fetch_all, PROMPTS_OF, Ids(user_ids));
                let hidden_until: Vec<(Uuid, DateTime<Utc>)> =
                    fetch!(&db, fetch_all, HIDDEN_UNTIL_OF, Ids(user_ids));
                Ok((profiles, photos, prompts, hidden_until))
            })
            .await?;
        let (profiles, photos, prompts, hidden_until) = parts;
        Ok(ProfileParts {
            profiles,
            photos,
            prompts,
            hidden_until,
            from_replica: target == Target::Replica,
        })
    }

    pub async fn profiles_of(&self, user_ids: &[Uuid]) -> Result<Vec<ProfileRecord>, StoreError> {
        Ok(fetch!(&self.db, fetch_all, PROFILES_OF, Ids(user_ids)))
    }

    pub async fn preferences_of(
        &self,
        user_id: Uuid,
    ) -> Result<Option<PreferencesRecord>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT min_age, max_age, max_distance, activity_level, distance_unit
                   FROM preferences WHERE user_id = $1",
            user_id
        ))
    }

    pub async fn location_of(&self, user_id: Uuid) -> Result<Option<LocationRecord>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_optional,
            "SELECT latitude, longitude FROM locations WHERE user_id = $1",
            user_id
        ))
    }

    /// `Conflict` when the user already has a profile.
    pub async fn create_profile(&self, p: &ProfileRecord) -> Result<ProfileRecord, StoreError> {
        with_db!(&self.db, |pool| {
            sqlx::query_as(CREATE_PROFILE)
                .bind(p.id)
                .bind(p.user_id)
                .bind(&p.name)
                .bind(p.age)
                .bind(&p.bio)
                .bind(&p.breed)
                .bind(p.size)
                .bind(p.activity_level)
                .bind(Ts(p.created_at))
                .fetch_one(&*pool.writer())
                .await
        })
        .map_err(|e| on_constraint(e, "this account already has a profile"))
    }

    /// `None` when the user has no profile.
    pub async fn update_profile(
        &self,
        user_id: Uuid,
        c: &ProfileChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<ProfileRecord>, StoreError> {
        Ok(returning!(
            &self.db,
            fetch_optional,
            UPDATE_PROFILE,
            user_id,
            &c.name,
            c.age,
            &c.bio,
            c.breed.is_some(),
            c.breed.clone().flatten(),
            c.size,
            c.activity_level,
            Ts(now)
        ))
    }

    pub async fn set_paused(
        &self,
        user_id: Uuid,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<ProfileRecord>, StoreError> {
        Ok(returning!(
            &self.db,
            fetch_optional,
            SET_PAUSED,
            user_id,
            paused,
            Ts(now)
        ))
    }

    /// Replaces every prompt of the user, in the given order.
    pub async fn replace_prompts(
        &self,
        user_id: Uuid,
        prompts: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<PromptRecord>, StoreError> {
        let records: Vec<PromptRecord> = (0i32..)
            .zip(prompts)
            .map(|(position, (question, answer))| PromptRecord {
                id: Uuid::now_v7(),
                user_id,
                position,
                question: question.clone(),
                answer: answer.clone(),
            })
            .collect();
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            execute_in!(tx, "DELETE FROM prompts WHERE user_id = $1", user_id);
            for record in &records {
                execute_in!(
                    tx,
                    "INSERT INTO prompts (id, user_id, position, question, answer, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    record.id,
                    user_id,
                    record.position,
                    &record.question,
                    &record.answer,
                    Ts(now)
                );
            }
            execute_in!(
                tx,
                "UPDATE profiles SET updated_at = $2 WHERE user_id = $1",
                user_id,
                Ts(now)
            );
            tx.commit().await?;
        });
        Ok(records)
    }

    pub async fn upsert_preferences(
        &self,
        user_id: Uuid,
        p: &PreferencesValue,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        execute!(
            &self.db,
            "INSERT INTO preferences (user_id, min_age, max_age, max_distance, activity_level,
                                          distance_unit, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (user_id) DO UPDATE SET
                     min_age = EXCLUDED.min_age, max_age = EXCLUDED.max_age,
                     max_distance = EXCLUDED.max_distance,
                     activity_level = EXCLUDED.activity_level,
                     distance_unit = EXCLUDED.distance_unit, updated_at = EXCLUDED.updated_at",
            user_id,
            p.min_age,
            p.max_age,
            p.max_distance,
            p.activity_level,
            p.distance_unit,
            Ts(now)
        );
        Ok(())
    }

    pub async fn photo_count(&self, user_id: Uuid) -> Result<i64, StoreError> {
        Ok(fetch_scalar!(
            &self.db,
            fetch_one,
            "SELECT COUNT(*) FROM photos WHERE user_id = $1",
            user_id
        ))
    }

    /// Appends a photo; `Conflict` when the user already has [`MAX_PHOTOS`].
    /// Fingerprints of the photos moderators removed (and of banned people's photos).
    pub async fn removed_fingerprints(&self) -> Result<Vec<Fingerprint>, StoreError> {
        let stored: Vec<Vec<u8>> = fetch_scalar!(
            &self.db,
            fetch_all,
            "SELECT fingerprint FROM removed_photo_fingerprints"
        );
        Ok(stored.into_iter().map(Fingerprint::from_stored).collect())
    }

    pub async fn insert_photo(&self, photo: &NewPhoto) -> Result<PhotoRecord, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            execute_in!(tx, pool.pick(LOCK_ACCOUNT), photo.user_id);
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM photos WHERE user_id = $1")
                .bind(photo.user_id)
                .fetch_one(&mut *tx)
                .await?;
            if count >= MAX_PHOTOS {
                return Err(StoreError::Conflict(format!(
                    "a profile has at most {MAX_PHOTOS} photos"
                )));
            }
            let record: PhotoRecord = sqlx::query_as(
                "INSERT INTO photos (id, user_id, position, storage_key, thumbnail_key, width,
                                     height, byte_size, created_at, fingerprint)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
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
            .bind(Ts(photo.created_at))
            .bind(photo.fingerprint.as_bytes())
            .fetch_one(&mut *tx)
            .await?;
            execute_in!(
                tx,
                "UPDATE profiles SET photo_count = $2, updated_at = $3 WHERE user_id = $1",
                photo.user_id,
                i32::try_from(count + 1).unwrap_or(0),
                Ts(photo.created_at)
            );
            tx.commit().await?;
            Ok(record)
        })
    }

    pub async fn delete_photo(
        &self,
        user_id: Uuid,
        photo_id: Uuid,
    ) -> Result<PhotoDeletion, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            execute_in!(tx, pool.pick(LOCK_ACCOUNT), user_id);
            let Some(removed) = tx.remove_photo(user_id, photo_id, time::now()).await? else {
                return Ok(PhotoDeletion::NotFound);
            };
            // A complete profile stays complete (dropping the transaction undoes the removal).
            if removed.remaining == 1 {
                return Ok(PhotoDeletion::WouldLeaveTooFew);
            }
            tx.commit().await?;
            Ok(PhotoDeletion::Deleted(removed.keys))
        })
    }

    /// Sets the order; `None` when `order` is not a permutation of the user's photos.
    pub async fn reorder_photos(
        &self,
        user_id: Uuid,
        order: &[Uuid],
    ) -> Result<Option<Vec<PhotoRecord>>, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            execute_in!(tx, pool.pick(LOCK_ACCOUNT), user_id);
            let mut current: Vec<Uuid> =
                sqlx::query_scalar("SELECT id FROM photos WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_all(&mut *tx)
                    .await?;
            let mut wanted = order.to_vec();
            current.sort();
            wanted.sort();
            if current != wanted {
                return Ok(None);
            }
            tx.renumber(order).await?;
            execute_in!(
                tx,
                "UPDATE profiles SET updated_at = $2 WHERE user_id = $1",
                user_id,
                Ts(time::now())
            );
            let photos = sqlx::query_as(
                "SELECT id, user_id, position, storage_key, thumbnail_key, created_at
                   FROM photos WHERE user_id = $1 ORDER BY position",
            )
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(photos))
        })
    }

    /// The person's photos, in order, with their files and fingerprints.
    pub async fn photo_files(&self, user_id: Uuid) -> Result<Vec<PhotoFile>, StoreError> {
        Ok(fetch!(
            &self.db,
            fetch_all,
            "SELECT id, storage_key, thumbnail_key, fingerprint FROM photos
              WHERE user_id = $1 ORDER BY position",
            user_id
        ))
    }

    /// Everyone `person` blocked or who blocked `person`.
    pub async fn blocks_of(&self, person: Uuid) -> Result<Vec<Uuid>, StoreError> {
        Ok(fetch_scalar!(&self.db, fetch_all, BLOCKS_OF_SQL, person))
    }
}

/// A photo taken off a profile: its blob keys (image and thumbnail), and how many photos the
/// profile has left.
pub struct RemovedPhoto {
    pub keys: Vec<String>,
    pub remaining: usize,
}

/// What the profile store writes inside a write transaction of either backend, for a change
/// that spans more (a moderator's removal of a photo, with its audit entry).
pub trait PhotosTx {
    /// Deletes `user_id`'s photo `photo_id`, moves the later ones up and keeps the profile's
    /// photo count; `None` when the photo is not theirs. The caller holds the account's lock or
    /// otherwise orders changes to the person's photos.
    fn remove_photo(
        &mut self,
        user_id: Uuid,
        photo_id: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<RemovedPhoto>, StoreError>> + Send;
}

in_both_transactions!(impl PhotosTx {
    async fn remove_photo(
        &mut self,
        user_id: Uuid,
        photo_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<RemovedPhoto>, StoreError> {
        let tx = &mut **self;
        let photos: Vec<(Uuid, String, String)> = sqlx::query_as(
            "SELECT id, storage_key, thumbnail_key FROM photos WHERE user_id = $1 ORDER BY position",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        let Some((_, key, thumb)) = photos.iter().find(|(id, ..)| *id == photo_id).cloned() else {
            return Ok(None);
        };
        execute_in!(tx, "DELETE FROM photos WHERE id = $1", photo_id);
        let rest: Vec<Uuid> = photos
            .iter()
            .map(|(id, ..)| *id)
            .filter(|id| *id != photo_id)
            .collect();
        self.renumber(&rest).await?;
        let tx = &mut **self;
        execute_in!(
            tx,
            "UPDATE profiles SET photo_count = $2, updated_at = $3 WHERE user_id = $1",
            user_id,
            i32::try_from(rest.len()).unwrap_or(0),
            Ts(now)
        );
        Ok(Some(RemovedPhoto {
            keys: vec![key, thumb],
            remaining: rest.len(),
        }))
    }
});

/// Positions photos 0, 1, … in a new order: each backend its own way, since they check the
/// unique (user, position) constraint differently.
trait Renumber {
    /// Gives `ids` positions 0, 1, … in this order.
    fn renumber(&mut self, ids: &[Uuid]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// PostgreSQL defers the constraint to the commit, so positions may collide in between.
impl Renumber for sqlx::Transaction<'_, Postgres> {
    async fn renumber(&mut self, ids: &[Uuid]) -> Result<(), StoreError> {
        sqlx::query("SET CONSTRAINTS photos_user_position_key DEFERRED")
            .execute(&mut **self)
            .await?;
        sqlx::query(
            "UPDATE photos SET position = o.position
               FROM (SELECT id, (ord - 1)::int AS position
                       FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, ord)) o
              WHERE photos.id = o.id",
        )
        .bind(ids)
        .execute(&mut **self)
        .await?;
        Ok(())
    }
}

/// SQLite checks the constraint row by row and cannot defer it, so the rows are taken out and
/// put back in order.
impl Renumber for sqlx::Transaction<'_, Sqlite> {
    async fn renumber(&mut self, ids: &[Uuid]) -> Result<(), StoreError> {
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
               FROM photos WHERE id IN (SELECT unhex(value) FROM json_each($1))",
        )
        .bind(Ids(ids))
        .fetch_all(&mut **self)
        .await?;
        sqlx::query("DELETE FROM photos WHERE id IN (SELECT unhex(value) FROM json_each($1))")
            .bind(Ids(ids))
            .execute(&mut **self)
            .await?;
        for (position, id) in (0i32..).zip(ids) {
            let Some(r) = rows.iter().find(|r| r.id == *id) else {
                continue;
            };
            sqlx::query(
                "INSERT INTO photos (id, user_id, position, storage_key, thumbnail_key, width,
                                     height, byte_size, created_at, fingerprint)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
            .execute(&mut **self)
            .await?;
        }
        Ok(())
    }
}
