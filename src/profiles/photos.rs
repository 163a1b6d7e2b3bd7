//! Photo upload, deletion and ordering. Bytes are processed off the async runtime, blobs are
//! written before the row (and removed again if the row is refused), and deleted after the row.

use std::sync::Arc;

use uuid::Uuid;

use super::ProfileService;
use super::images::{self, Fingerprint, PhotoError};
use super::model::{NewPhoto, PhotoDeletion, PhotoFile, PhotoRecord};
use super::store::MAX_PHOTOS;
use crate::error::{ApiError, ApiResult, StoreError};
use crate::infra::time;

impl From<PhotoError> for ApiError {
    fn from(err: PhotoError) -> Self {
        ApiError::bad_input("file", err.to_string())
    }
}

/// An uploaded photo as the API returns it.
pub struct UploadedPhoto {
    pub record: PhotoRecord,
    pub url: String,
    pub thumbnail_url: String,
}

impl ProfileService {
    /// Validates, re-encodes and stores a photo as the user's last one.
    #[tracing::instrument(skip_all, fields(user.id = %user_id, bytes = bytes.len()))]
    pub async fn upload_photo(&self, user_id: Uuid, bytes: Vec<u8>) -> ApiResult<UploadedPhoto> {
        // Cheap refusals first: the type and size (from the header), then the count, before
        // any decoding; then the decode waits for room in the image gate.
        let memory = images::decoding_memory(&bytes)?;
        if self.store.photo_count(user_id).await? >= MAX_PHOTOS {
            return Err(too_many());
        }
        let processed = self
            .images
            .run(memory, move || images::process(&bytes))
            .await??;
        if self
            .was_removed(&[&processed.fingerprint, &processed.mirrored])
            .await?
        {
            tracing::info!("an upload looked like a photo moderators removed: refused");
            return Err(ApiError::bad_input("file", "this photo cannot be used"));
        }

        let id = Uuid::now_v7();
        let storage_key = format!("photos/{}/{}.jpg", user_id.simple(), id.simple());
        let thumbnail_key = format!("photos/{}/{}_thumb.jpg", user_id.simple(), id.simple());
        let byte_size = i32::try_from(processed.jpeg.len()).unwrap_or(i32::MAX);
        self.blobs.put(&storage_key, processed.jpeg).await?;
        self.blobs.put(&thumbnail_key, processed.thumbnail).await?;
        let new = NewPhoto {
            id,
            user_id,
            storage_key: storage_key.clone(),
            thumbnail_key: thumbnail_key.clone(),
            width: i32::try_from(processed.width).unwrap_or(i32::MAX),
            height: i32::try_from(processed.height).unwrap_or(i32::MAX),
            byte_size,
            created_at: time::now(),
            fingerprint: processed.fingerprint,
        };
        let record = match self.store.insert_photo(&new).await {
            Ok(record) => record,
            Err(err) => {
                // Refused (e.g. a concurrent upload took the 6th place): leave no orphan blobs.
                self.delete_blobs(&[storage_key, thumbnail_key]).await;
                return Err(match err {
                    StoreError::Conflict(_) => too_many(),
                    other => other.into(),
                });
            }
        };
        self.invalidate(user_id).await;
        Ok(UploadedPhoto {
            url: self.blobs.url(&record.storage_key).await?,
            thumbnail_url: self.blobs.url(&record.thumbnail_key).await?,
            record,
        })
    }

    /// Whether a picture (by its fingerprints, as it is and mirrored) looks like one
    /// moderators removed (or a banned person's).
    async fn was_removed(&self, fingerprints: &[&Fingerprint]) -> ApiResult<bool> {
        Ok(self
            .store
            .removed_fingerprints()
            .await?
            .iter()
            .any(|removed| {
                fingerprints
                    .iter()
                    .any(|f| removed.distance(f) <= images::SAME_PICTURE_BITS)
            }))
    }

    /// The person's photos now, in order, with their files and fingerprints (read from the
    /// primary).
    pub async fn photo_files(&self, user_id: Uuid) -> ApiResult<Vec<PhotoFile>> {
        Ok(self.store.photo_files(user_id).await?)
    }

    /// The fingerprint of a stored photo (decoded within the image work budget), for photos
    /// stored before fingerprints were kept. `None` when its file is gone or unreadable.
    pub async fn fingerprint_of_stored(&self, storage_key: &str) -> ApiResult<Option<Fingerprint>> {
        let Some(bytes) = self.blobs.get(storage_key).await? else {
            return Ok(None);
        };
        let Ok(memory) = images::decoding_memory(&bytes) else {
            return Ok(None);
        };
        Ok(self
            .images
            .run(memory, move || images::fingerprint_of_stored(&bytes))
            .await?
            .ok())
    }

    /// Deletes one of the user's photos and its blobs. NOT_FOUND for anyone else's photo;
    /// CONFLICT when it would take a complete profile below 2 photos.
    #[tracing::instrument(skip_all, fields(user.id = %user_id))]
    pub async fn delete_photo(&self, user_id: Uuid, photo_id: Uuid) -> ApiResult<()> {
        match self.store.delete_photo(user_id, photo_id).await? {
            PhotoDeletion::Deleted(keys) => {
                self.invalidate(user_id).await;
                self.delete_blobs(&keys).await;
                Ok(())
            }
            PhotoDeletion::NotFound => Err(ApiError::NotFound("no such photo".into())),
            PhotoDeletion::WouldLeaveTooFew => Err(ApiError::Conflict(
                "a complete profile keeps at least 2 photos: upload another one first".into(),
            )),
        }
    }

    /// Puts the user's photos in the given order, which must name each of them exactly once.
    pub async fn reorder_photos(
        &self,
        user_id: Uuid,
        order: &[Uuid],
    ) -> ApiResult<Vec<PhotoRecord>> {
        let photos = self
            .store
            .reorder_photos(user_id, order)
            .await?
            .ok_or_else(|| {
                ApiError::bad_input(
                    "photoIds",
                    "photoIds must list each of your photos exactly once",
                )
            })?;
        self.invalidate(user_id).await;
        Ok(photos)
    }

    pub fn blobs(&self) -> &Arc<dyn crate::infra::blobs::BlobStore> {
        &self.blobs
    }

    async fn delete_blobs(&self, keys: &[String]) {
        for key in keys {
            if let Err(err) = self.blobs.delete(key).await {
                // An orphan blob is harmless and removed by the daily cleanup.
                tracing::warn!(error = format!("{err:#}"), "blob not deleted");
            }
        }
    }
}

fn too_many() -> ApiError {
    ApiError::Conflict(format!("a profile has at most {MAX_PHOTOS} photos"))
}
