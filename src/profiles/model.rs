//! Profile types as stored, and the enums shared with the API.

use async_graphql::Enum;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ids::ProfileId;
use crate::infra::stored::stored_enum;

/// How energetic a dog is.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityLevel {
    Low,
    Medium,
    High,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DogSize {
    Small,
    Medium,
    Large,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistanceUnit {
    Miles,
    Kilometers,
}

// Enums are stored as their GraphQL names (`'LOW'`, `'MILES'`, …), checked by the schema.
stored_enum!(ActivityLevel { Low => "LOW", Medium => "MEDIUM", High => "HIGH" });
stored_enum!(DogSize { Small => "SMALL", Medium => "MEDIUM", Large => "LARGE" });
stored_enum!(DistanceUnit { Miles => "MILES", Kilometers => "KILOMETERS" });

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct ProfileRecord {
    pub id: ProfileId,
    pub user_id: Uuid,
    pub name: String,
    pub age: i32,
    pub bio: String,
    pub breed: Option<String>,
    pub size: Option<DogSize>,
    pub activity_level: ActivityLevel,
    pub is_paused: bool,
    pub photo_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct PhotoRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub position: i32,
    pub storage_key: String,
    pub thumbnail_key: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct PromptRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub position: i32,
    pub question: String,
    pub answer: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PreferencesRecord {
    pub min_age: i32,
    pub max_age: i32,
    pub max_distance: f64,
    pub activity_level: ActivityLevel,
    pub distance_unit: DistanceUnit,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LocationRecord {
    pub latitude: f64,
    pub longitude: f64,
}

/// A profile with its photos and prompts, in the owner's order: what the profile cache holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProfileView {
    pub profile: ProfileRecord,
    pub photos: Vec<PhotoRecord>,
    pub prompts: Vec<PromptRecord>,
    /// Until when moderation hides this person from everyone else (a suspension, a ban, or a
    /// hold after many reports); every moderation action drops the cached view.
    #[serde(default)]
    pub hidden_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl ProfileView {
    /// 2 to 6 photos: only complete profiles are discoverable, and only their owners report
    /// with weight or add places.
    pub fn is_complete(&self) -> bool {
        (2..=6).contains(&self.photos.len())
    }

    /// Whether moderation hides this person from others right now.
    pub fn is_hidden(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.hidden_until.is_some_and(|until| until > now)
    }
}

/// A processed photo to store.
#[derive(Debug, Clone)]
pub struct NewPhoto {
    pub id: Uuid,
    pub user_id: Uuid,
    pub storage_key: String,
    pub thumbnail_key: String,
    pub width: i32,
    pub height: i32,
    pub byte_size: i32,
    pub created_at: DateTime<Utc>,
    pub fingerprint: super::images::Fingerprint,
}

/// A photo on a profile now, with its files and how it looks (what moderation shows, keeps as
/// evidence and remembers once it is removed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PhotoFile {
    pub id: Uuid,
    pub storage_key: String,
    pub thumbnail_key: String,
    /// How it looks (`None` for photos stored before fingerprints were kept).
    pub fingerprint: Option<Vec<u8>>,
}

/// The outcome of deleting a photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhotoDeletion {
    /// Deleted; the blob keys to remove.
    Deleted(Vec<String>),
    NotFound,
    /// It would take a complete profile (2+ photos) below 2.
    WouldLeaveTooFew,
}
