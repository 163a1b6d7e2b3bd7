//! PostgreSQL + PostGIS implementation of [`PlaygroundStore`]: `ST_DWithin` on the GiST index
//! of `geog`, ordered by `ST_Distance` (PostGIS's KNN `<->` on geography fails near the poles
//! with "index returned tuples in wrong order", found by the valid-coordinates property test); name candidates through
//! the GIN trigram index of `name_search`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::{NewPlayground, PlaygroundRecord, PlaygroundStore, SearchCandidate};
use crate::discovery::geo::Coordinates;
use crate::error::StoreError;

pub struct PgPlaygroundStore {
    pool: PgPool,
}

impl PgPlaygroundStore {
    pub fn new(pool: PgPool) -> Self {
        PgPlaygroundStore { pool }
    }
}

/// `LIKE` pattern text matching `s` literally.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[async_trait]
impl PlaygroundStore for PgPlaygroundStore {
    async fn add_and_favorite(&self, new: NewPlayground) -> Result<(Uuid, bool), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Two people adding the same place at once: the second waits, then finds the first.
        sqlx::query("SELECT pg_advisory_xact_lock(3, hashtext($1))")
            .bind(&new.name_search)
            .execute(&mut *tx)
            .await?;
        let existing: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM playgrounds
              WHERE name_search = $1
                AND ST_DWithin(geog, ST_SetSRID(ST_MakePoint($3, $2), 4326)::geography, $4)
              ORDER BY ST_Distance(geog, ST_SetSRID(ST_MakePoint($3, $2), 4326)::geography), id
              LIMIT 1",
        )
        .bind(&new.name_search)
        .bind(new.latitude)
        .bind(new.longitude)
        .bind(new.duplicate_radius_m)
        .fetch_optional(&mut *tx)
        .await?;
        let (id, created) = match existing {
            Some(id) => (id, false),
            None => {
                sqlx::query(
                    "INSERT INTO playgrounds (id, name, name_search, description, latitude,
                                              longitude, created_by, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(new.id)
                .bind(&new.name)
                .bind(&new.name_search)
                .bind(&new.description)
                .bind(new.latitude)
                .bind(new.longitude)
                .bind(new.created_by)
                .bind(new.now)
                .execute(&mut *tx)
                .await?;
                (new.id, true)
            }
        };
        sqlx::query(
            "INSERT INTO playground_favorites (user_id, playground_id, created_at)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(new.created_by)
        .bind(id)
        .bind(new.now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((id, created))
    }

    async fn favorite(
        &self,
        user_id: Uuid,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let exists: bool = sqlx::query_scalar(
            "WITH p AS (SELECT id FROM playgrounds WHERE id = $2),
                  ins AS (INSERT INTO playground_favorites (user_id, playground_id, created_at)
                          SELECT $1, p.id, $3 FROM p ON CONFLICT DO NOTHING)
             SELECT EXISTS (SELECT 1 FROM p)",
        )
        .bind(user_id)
        .bind(id)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(exists)
    }

    async fn unfavorite(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM playground_favorites WHERE user_id = $1 AND playground_id = $2",
        )
        .bind(user_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn favorite_ids(&self, user_id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT playground_id FROM playground_favorites WHERE user_id = $1
              ORDER BY created_at DESC, playground_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn by_ids(&self, ids: &[Uuid]) -> Result<Vec<PlaygroundRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT p.id, p.name, p.description, p.latitude, p.longitude, p.created_by,
                    p.created_at,
                    (SELECT COUNT(*) FROM playground_favorites f WHERE f.playground_id = p.id)
                        AS favorite_count
               FROM playgrounds p WHERE p.id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn near(
        &self,
        at: Coordinates,
        radius_km: f64,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "WITH me AS (SELECT ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography AS g)
             SELECT p.id FROM playgrounds p, me
              WHERE ST_DWithin(p.geog, me.g, $3)
              ORDER BY ST_Distance(p.geog, me.g), p.id
              LIMIT $4",
        )
        .bind(at.latitude())
        .bind(at.longitude())
        .bind(radius_km * 1000.0)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn search_candidates(
        &self,
        query: &str,
        limit: i64,
    ) -> Result<Vec<SearchCandidate>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, name_search FROM playgrounds
              WHERE name_search LIKE '%' || $2 || '%' OR name_search % $1
              ORDER BY (name_search LIKE $2 || '%') DESC, similarity(name_search, $1) DESC, id
              LIMIT $3",
        )
        .bind(query)
        .bind(like_escape(query))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
