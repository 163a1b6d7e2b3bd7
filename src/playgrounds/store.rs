//! Playground persistence: the trait the service uses and its PostgreSQL and SQLite versions.

mod postgres;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use postgres::PgPlaygroundStore;
pub use sqlite::SqlitePlaygroundStore;

use crate::discovery::geo::Coordinates;
use crate::error::StoreError;

/// A place, with how many people saved it.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct PlaygroundRecord {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub latitude: f64,
    pub longitude: f64,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub favorite_count: i64,
}

/// A place to add (already validated; `name_search` is the normalised name).
#[derive(Debug, Clone)]
pub struct NewPlayground {
    pub id: Uuid,
    pub name: String,
    pub name_search: String,
    pub description: String,
    pub latitude: f64,
    pub longitude: f64,
    pub created_by: Uuid,
    pub now: DateTime<Utc>,
    pub duplicate_radius_m: f64,
}

/// A place whose name may match a search.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SearchCandidate {
    pub id: Uuid,
    pub name_search: String,
}

#[async_trait]
pub trait PlaygroundStore: Send + Sync {
    /// Inserts the place unless one with the same `name_search` lies within
    /// `duplicate_radius_m`, then favourites whichever it is for its creator, in one
    /// transaction. The id, and whether it is new.
    async fn add_and_favorite(&self, new: NewPlayground) -> Result<(Uuid, bool), StoreError>;
    /// False when there is no such place. Favouriting twice is one favourite.
    async fn favorite(
        &self,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Whether it was a favourite.
    async fn unfavorite(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError>;
    /// The user's favourites, most recently saved first.
    async fn favorite_ids(&self, user_id: Uuid) -> Result<Vec<Uuid>, StoreError>;
    async fn by_ids(&self, ids: &[Uuid]) -> Result<Vec<PlaygroundRecord>, StoreError>;
    /// Places within `radius_km` of `at`, nearest first (ties by id), at most `limit`.
    async fn near(
        &self,
        at: Coordinates,
        radius_km: f64,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// Places whose normalised name contains `query` or shares trigrams with it (at most
    /// `limit`, the likeliest first); ranking is the service's.
    async fn search_candidates(
        &self,
        query: &str,
        limit: i64,
    ) -> Result<Vec<SearchCandidate>, StoreError>;
}
