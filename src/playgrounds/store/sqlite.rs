//! SQLite implementation of [`PlaygroundStore`]: an R*Tree box prefilter with exact haversine
//! distances in Rust; name candidates from the FTS5 trigram index (substring `LIKE`, and any
//! shared trigram for typos).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::{NewPlayground, PlaygroundRecord, PlaygroundStore, SearchCandidate};
use crate::discovery::geo::{Coordinates, bounding_box, haversine_km};
use crate::error::StoreError;
use crate::infra::db::{begin_write, id_list, sqlite_writer};
use crate::infra::time::sqlite_ts;

pub struct SqlitePlaygroundStore {
    pool: SqlitePool,
}

impl SqlitePlaygroundStore {
    pub fn new(pool: SqlitePool) -> Self {
        SqlitePlaygroundStore { pool }
    }
}

const RECORD_SQL: &str = "SELECT p.id, p.name, p.description, p.latitude, p.longitude,
        p.created_by, p.created_at,
        (SELECT COUNT(*) FROM playground_favorites f WHERE f.playground_id = p.id) AS favorite_count
   FROM playgrounds p";

/// The R*Tree box around `at` (radius in km), clamped to the valid ranges.
fn rtree_box(at: Coordinates, radius_km: f64) -> (f64, f64, f64, f64) {
    let (min_lat, max_lat, mut min_lon, mut max_lon) = bounding_box(at, radius_km);
    if min_lon < -180.0 || max_lon > 180.0 {
        (min_lon, max_lon) = (-180.0, 180.0);
    }
    (min_lat.max(-90.0), max_lat.min(90.0), min_lon, max_lon)
}

/// An FTS5 query matching any trigram of `query` (each a quoted phrase).
fn any_trigram(query: &str) -> Option<String> {
    let chars: Vec<char> = query.chars().collect();
    let mut seen = HashSet::new();
    let phrases: Vec<String> = chars
        .windows(3)
        .map(|w| w.iter().collect::<String>())
        .filter(|t| seen.insert(t.clone()))
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    (!phrases.is_empty()).then(|| phrases.join(" OR "))
}

#[derive(sqlx::FromRow)]
struct Point {
    id: Uuid,
    latitude: f64,
    longitude: f64,
}

#[async_trait]
impl PlaygroundStore for SqlitePlaygroundStore {
    async fn add_and_favorite(&self, new: NewPlayground) -> Result<(Uuid, bool), StoreError> {
        let at = Coordinates::parse(new.latitude, new.longitude)
            .map_err(|e| StoreError::Other(anyhow::anyhow!("{e}")))?;
        let (min_lat, max_lat, min_lon, max_lon) =
            rtree_box(at, new.duplicate_radius_m / 1000.0 * 1.01);
        let mut tx = begin_write(&self.pool).await?;
        let nearby: Vec<Point> = sqlx::query_as(
            "SELECT p.id, p.latitude, p.longitude
               FROM playgrounds_rtree r JOIN playgrounds p ON p.rowid = r.id
              WHERE r.min_lat >= ?1 AND r.max_lat <= ?2 AND r.min_lon >= ?3 AND r.max_lon <= ?4
                AND p.name_search = ?5",
        )
        .bind(min_lat)
        .bind(max_lat)
        .bind(min_lon)
        .bind(max_lon)
        .bind(&new.name_search)
        .fetch_all(&mut *tx)
        .await?;
        let existing = nearby
            .iter()
            .filter_map(|p| {
                let there = Coordinates::parse(p.latitude, p.longitude).ok()?;
                let metres = haversine_km(at, there) * 1000.0;
                (metres <= new.duplicate_radius_m).then_some((metres, p.id))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, id)| id);
        let now = sqlite_ts(new.now);
        let (id, created) = match existing {
            Some(id) => (id, false),
            None => {
                sqlx::query(
                    "INSERT INTO playgrounds (id, name, name_search, description, latitude,
                                              longitude, created_by, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .bind(new.id)
                .bind(&new.name)
                .bind(&new.name_search)
                .bind(&new.description)
                .bind(new.latitude)
                .bind(new.longitude)
                .bind(new.created_by)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
                (new.id, true)
            }
        };
        sqlx::query(
            "INSERT INTO playground_favorites (user_id, playground_id, created_at)
             VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )
        .bind(new.created_by)
        .bind(id)
        .bind(&now)
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
        let mut tx = begin_write(&self.pool).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM playgrounds WHERE id = ?1)")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if exists {
            sqlx::query(
                "INSERT INTO playground_favorites (user_id, playground_id, created_at)
                 VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )
            .bind(user_id)
            .bind(id)
            .bind(sqlite_ts(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(exists)
    }

    async fn unfavorite(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM playground_favorites WHERE user_id = ?1 AND playground_id = ?2",
        )
        .bind(user_id)
        .bind(id)
        .execute(&sqlite_writer(&self.pool))
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn favorite_ids(&self, user_id: Uuid) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT playground_id FROM playground_favorites WHERE user_id = ?1
              ORDER BY created_at DESC, playground_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn by_ids(&self, ids: &[Uuid]) -> Result<Vec<PlaygroundRecord>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{RECORD_SQL} WHERE p.id IN (SELECT unhex(value) FROM json_each(?1))"
        )))
        .bind(id_list(ids))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn near(
        &self,
        at: Coordinates,
        radius_km: f64,
        limit: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        let (min_lat, max_lat, min_lon, max_lon) = rtree_box(at, radius_km * 1.01);
        let points: Vec<Point> = sqlx::query_as(
            "SELECT p.id, p.latitude, p.longitude
               FROM playgrounds_rtree r JOIN playgrounds p ON p.rowid = r.id
              WHERE r.min_lat >= ?1 AND r.max_lat <= ?2 AND r.min_lon >= ?3 AND r.max_lon <= ?4",
        )
        .bind(min_lat)
        .bind(max_lat)
        .bind(min_lon)
        .bind(max_lon)
        .fetch_all(&self.pool)
        .await?;
        let mut within: Vec<(f64, Uuid)> = points
            .into_iter()
            .filter_map(|p| {
                let km = haversine_km(at, Coordinates::parse(p.latitude, p.longitude).ok()?);
                (km <= radius_km).then_some((km, p.id))
            })
            .collect();
        within.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Ok(within
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|(_, id)| id)
            .collect())
    }

    async fn search_candidates(
        &self,
        query: &str,
        limit: i64,
    ) -> Result<Vec<SearchCandidate>, StoreError> {
        // Substrings: the trigram index answers LIKE itself (for queries of 3+ characters).
        // LIKE's own wildcards in the query are matched with instr() instead.
        let literal = !query.contains(['%', '_']);
        let mut out: Vec<SearchCandidate> = if literal {
            sqlx::query_as(
                "SELECT p.id, p.name_search FROM playgrounds p
                  WHERE p.rowid IN (SELECT rowid FROM playgrounds_fts
                                     WHERE name_search LIKE '%' || ?1 || '%' LIMIT ?2)",
            )
            .bind(query)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
        } else {
            sqlx::query_as(
                "SELECT id, name_search FROM playgrounds WHERE instr(name_search, ?1) > 0 LIMIT ?2",
            )
            .bind(query)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
        };
        // Typos: names sharing trigrams with the query, best first.
        if let Some(expr) = any_trigram(query) {
            let similar: Vec<SearchCandidate> = sqlx::query_as(
                "SELECT p.id, p.name_search FROM playgrounds p
                  WHERE p.rowid IN (SELECT rowid FROM playgrounds_fts
                                     WHERE playgrounds_fts MATCH ?1 ORDER BY rank LIMIT ?2)",
            )
            .bind(expr)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            let seen: HashSet<Uuid> = out.iter().map(|c| c.id).collect();
            out.extend(similar.into_iter().filter(|c| !seen.contains(&c.id)));
        }
        Ok(out)
    }
}
