//! Playground persistence, written once for both backends (see [`crate::infra::sql`]) but for
//! the place searches, which differ:
//!
//! - PostgreSQL + PostGIS: `ST_DWithin` on the GiST index of `geog`, ordered by `ST_Distance`
//!   (PostGIS's KNN `<->` on geography fails near the poles with "index returned tuples in wrong
//!   order"); name candidates through the GIN trigram index of `name_search`.
//! - SQLite: an R*Tree box prefilter with exact haversine distances in Rust; name candidates
//!   from the FTS5 trigram index (substring `LIKE`, and any shared trigram for typos).

use std::collections::HashSet;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Sqlite, Transaction};
use uuid::Uuid;

use crate::ids::{PlaygroundId, uuids};

use super::MAX_FAVORITES;
use crate::discovery::geo::{Coordinates, bounding_box, haversine_km};
use crate::error::StoreError;
use crate::infra::db::Db;
use crate::infra::replicas::{Freshness, Reads};
use crate::infra::sql::{
    Backend, Ids, Sql, Ts, execute, execute_in, fetch, fetch_scalar, for_update, in_ids, with_db,
};
use crate::profiles::store::LOCK_ACCOUNT;

/// A place, with how many people saved it.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct PlaygroundRecord {
    pub id: PlaygroundId,
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
    pub id: PlaygroundId,
    pub name: String,
    pub name_search: String,
    pub description: String,
    pub latitude: f64,
    pub longitude: f64,
    pub created_by: Uuid,
    pub now: DateTime<Utc>,
    pub duplicate_radius_m: f64,
}

/// What adding a place did.
pub enum Placed {
    /// Stored (or an existing place at the same spot, saved): `created` when new.
    Stored { id: PlaygroundId, created: bool },
    /// The person added as many places as a day allows; the earliest of them was added then.
    DailyLimit { earliest: DateTime<Utc> },
}

/// A place whose name may match a search.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SearchCandidate {
    pub id: PlaygroundId,
    pub name_search: String,
}

const BY_IDS: Sql = in_ids!(
    "SELECT p.id, p.name, p.description, p.latitude, p.longitude, p.created_by, p.created_at,
            (SELECT COUNT(*) FROM playground_favorites f WHERE f.playground_id = p.id)
                AS favorite_count
       FROM playgrounds p WHERE p.id",
    1,
    ""
);

/// Whether `$1` already keeps place `$2` (NULL: none) as a favourite, and how many they keep.
const KEPT_FAVORITES: &str = "SELECT EXISTS (SELECT 1 FROM playground_favorites
                                               WHERE user_id = $1 AND playground_id = $2),
                                      (SELECT COUNT(*) FROM playground_favorites WHERE user_id = $1)";

/// CONFLICT when a person who keeps `count` favourites (`already` one of them: the place in
/// question) has no room for one more.
fn room_for_favorite((already, count): (bool, i64)) -> Result<(), StoreError> {
    if already || count < i64::from(MAX_FAVORITES) {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "you can keep at most {MAX_FAVORITES} favourite places; remove one first"
    )))
}

/// Places, and who saved which.
#[derive(Clone)]
pub struct PlaygroundStore {
    db: Db,
    reads: Reads,
}

impl PlaygroundStore {
    /// Deletes place `$1` (its favourites go with it; messages that shared it keep their text).
    /// A store that removes a place with more (a moderator's action) runs it in its transaction.
    pub const DELETE: &str = "DELETE FROM playgrounds WHERE id = $1";

    /// Locks places `$1` and `$2` (their ids come back), for a change that needs both.
    pub const LOCK_TWO: Sql = for_update!("SELECT id FROM playgrounds WHERE id = $1 OR id = $2");

    /// Saves place `$2` for everyone who saved `$1` (unless they did already).
    pub const MOVE_FAVORITES: &str = "INSERT INTO playground_favorites
            (user_id, playground_id, created_at)
     SELECT user_id, $2, created_at FROM playground_favorites WHERE playground_id = $1
     ON CONFLICT DO NOTHING";

    pub fn new(reads: &Reads) -> Self {
        PlaygroundStore {
            db: reads.primary().clone(),
            reads: reads.clone(),
        }
    }

    /// Inserts the place unless one with the same `name_search` lies within
    /// `duplicate_radius_m`, then favourites whichever it is for its creator, in one
    /// transaction. The id, and whether it is new.
    pub async fn add_and_favorite(
        &self,
        new: NewPlayground,
        daily_limit: i64,
    ) -> Result<Placed, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            execute_in!(tx, pool.pick(LOCK_ACCOUNT), new.created_by);
            let found = tx.same_place(&new).await?;
            if found.is_none() {
                // Places the person added in the last day (their account is locked above, so
                // requests at once count each other).
                let (added, earliest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(created_at) FROM playgrounds
                      WHERE created_by = $1 AND created_at > $2",
                )
                .bind(new.created_by)
                .bind(Ts(new.now - chrono::Duration::days(1)))
                .fetch_one(&mut *tx)
                .await?;
                if added >= daily_limit {
                    return Ok(Placed::DailyLimit {
                        earliest: earliest.unwrap_or(new.now),
                    });
                }
            }
            let kept: (bool, i64) = sqlx::query_as(KEPT_FAVORITES)
                .bind(new.created_by)
                .bind(found)
                .fetch_one(&mut *tx)
                .await?;
            room_for_favorite(kept)?;
            let (id, created) = match found {
                Some(id) => (id, false),
                None => {
                    execute_in!(
                        tx,
                        "INSERT INTO playgrounds (id, name, name_search, description, latitude,
                                                  longitude, created_by, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        new.id,
                        &new.name,
                        &new.name_search,
                        &new.description,
                        new.latitude,
                        new.longitude,
                        new.created_by,
                        Ts(new.now)
                    );
                    (new.id, true)
                }
            };
            execute_in!(
                tx,
                "INSERT INTO playground_favorites (user_id, playground_id, created_at)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                new.created_by,
                id,
                Ts(new.now)
            );
            tx.commit().await?;
            Ok(Placed::Stored { id, created })
        })
    }

    /// False when there is no such place. Favouriting twice is one favourite. CONFLICT when the
    /// person already keeps [`MAX_FAVORITES`] other places: counted on their locked account row,
    /// so favourites made at once are counted one after another.
    pub async fn favorite(
        &self,
        user_id: Uuid,
        id: PlaygroundId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            execute_in!(tx, pool.pick(LOCK_ACCOUNT), user_id);
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM playgrounds WHERE id = $1)")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            if !exists {
                return Ok(false);
            }
            let kept: (bool, i64) = sqlx::query_as(KEPT_FAVORITES)
                .bind(user_id)
                .bind(Some(id))
                .fetch_one(&mut *tx)
                .await?;
            room_for_favorite(kept)?;
            execute_in!(
                tx,
                "INSERT INTO playground_favorites (user_id, playground_id, created_at)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                user_id,
                id,
                Ts(now)
            );
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Whether it was a favourite.
    pub async fn unfavorite(&self, user_id: Uuid, id: PlaygroundId) -> Result<bool, StoreError> {
        let removed = execute!(
            &self.db,
            "DELETE FROM playground_favorites WHERE user_id = $1 AND playground_id = $2",
            user_id,
            id
        );
        Ok(removed > 0)
    }

    /// The user's favourites, most recently saved first.
    pub async fn favorite_ids(&self, user_id: Uuid) -> Result<Vec<PlaygroundId>, StoreError> {
        Ok(fetch_scalar!(
            &self.db,
            fetch_all,
            "SELECT playground_id FROM playground_favorites WHERE user_id = $1
                  ORDER BY created_at DESC, playground_id",
            user_id
        ))
    }

    pub async fn by_ids(&self, ids: &[PlaygroundId]) -> Result<Vec<PlaygroundRecord>, StoreError> {
        Ok(fetch!(&self.db, fetch_all, BY_IDS, Ids(&uuids(ids))))
    }

    /// Places, newest first, at most `limit`; with `search` (normalised), those whose name
    /// contains it (the moderators' list).
    pub async fn newest(
        &self,
        search: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PlaygroundRecord>, StoreError> {
        macro_rules! newest {
            ($contains:literal) => {
                concat!(
                    "SELECT g.id, g.name, g.description, g.latitude, g.longitude, g.created_by,
                            g.created_at,
                            (SELECT COUNT(*) FROM playground_favorites f
                              WHERE f.playground_id = g.id) AS favorite_count
                       FROM playgrounds g
                      WHERE $1 IS NULL OR ",
                    $contains,
                    " > 0 ORDER BY g.created_at DESC, g.id LIMIT $2"
                )
            };
        }
        const NEWEST: Sql = Sql {
            postgres: newest!("strpos(g.name_search, $1::text)"),
            sqlite: newest!("instr(g.name_search, $1)"),
        };
        Ok(fetch!(&self.db, fetch_all, NEWEST, search, limit))
    }

    /// Places within `radius_km` of `at`, nearest first (ties by id), at most `limit`; from a
    /// replica when one is usable.
    pub async fn near(
        &self,
        at: Coordinates,
        radius_km: f64,
        limit: i64,
    ) -> Result<Vec<PlaygroundId>, StoreError> {
        let (ids, _) = self
            .reads
            .run(Freshness::MomentOld, |db| async move {
                near_on(&db, at, radius_km, limit).await
            })
            .await?;
        Ok(ids)
    }

    /// Places whose normalised name contains `query` or shares trigrams with it (at most
    /// `limit`, the likeliest first; ranking is the service's); from a replica when one is
    /// usable.
    pub async fn search_candidates(
        &self,
        query: &str,
        limit: i64,
    ) -> Result<Vec<SearchCandidate>, StoreError> {
        let (found, _) = self
            .reads
            .run(Freshness::MomentOld, |db| async move {
                search_on(&db, query, limit).await
            })
            .await?;
        Ok(found)
    }
}

/// Places within `radius_km` of `at` on `db`, nearest first (ties by id), at most `limit`.
async fn near_on(
    db: &Db,
    at: Coordinates,
    radius_km: f64,
    limit: i64,
) -> Result<Vec<PlaygroundId>, StoreError> {
    match db {
        Db::Postgres(pool) => Ok(sqlx::query_scalar(
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
        .fetch_all(pool)
        .await?),
        Db::Sqlite(pool) => {
            let mut within: Vec<(f64, PlaygroundId)> = in_box(pool, at, radius_km, None)
                .await?
                .into_iter()
                .filter(|(km, _)| *km <= radius_km)
                .collect();
            within.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            Ok(within
                .into_iter()
                .take(usize::try_from(limit).unwrap_or(0))
                .map(|(_, id)| id)
                .collect())
        }
    }
}

/// Places on `db` whose normalised name contains `query` or shares trigrams with it.
async fn search_on(db: &Db, query: &str, limit: i64) -> Result<Vec<SearchCandidate>, StoreError> {
    match db {
        Db::Postgres(pool) => Ok(sqlx::query_as(
            "SELECT id, name_search FROM playgrounds
              WHERE name_search LIKE '%' || $2 || '%' OR name_search % $1
              ORDER BY (name_search LIKE $2 || '%') DESC, similarity(name_search, $1) DESC, id
              LIMIT $3",
        )
        .bind(query)
        .bind(like_escape(query))
        .bind(limit)
        .fetch_all(pool)
        .await?),
        Db::Sqlite(pool) => {
            // Substrings: the trigram index answers LIKE itself (for queries of 3+
            // characters). LIKE's own wildcards in the query are matched with instr().
            let literal = !query.contains(['%', '_']);
            let mut out: Vec<SearchCandidate> = if literal {
                sqlx::query_as(
                    "SELECT p.id, p.name_search FROM playgrounds p
                      WHERE p.rowid IN (SELECT rowid FROM playgrounds_fts
                                         WHERE name_search LIKE '%' || $1 || '%' LIMIT $2)",
                )
                .bind(query)
                .bind(limit)
                .fetch_all(pool)
                .await?
            } else {
                sqlx::query_as(
                    "SELECT id, name_search FROM playgrounds
                      WHERE instr(name_search, $1) > 0 LIMIT $2",
                )
                .bind(query)
                .bind(limit)
                .fetch_all(pool)
                .await?
            };
            // Typos: names sharing trigrams with the query, best first.
            if let Some(expr) = any_trigram(query) {
                let similar: Vec<SearchCandidate> = sqlx::query_as(
                    "SELECT p.id, p.name_search FROM playgrounds p
                      WHERE p.rowid IN (SELECT rowid FROM playgrounds_fts
                                         WHERE playgrounds_fts MATCH $1
                                         ORDER BY rank LIMIT $2)",
                )
                .bind(expr)
                .bind(limit)
                .fetch_all(pool)
                .await?;
                let seen: HashSet<PlaygroundId> = out.iter().map(|c| c.id).collect();
                out.extend(similar.into_iter().filter(|c| !seen.contains(&c.id)));
            }
            Ok(out)
        }
    }
}

/// Finding the place a new one would duplicate, inside the write transaction that adds it.
trait SamePlace {
    /// The nearest place with the same normalised name within the duplicate radius.
    fn same_place(
        &mut self,
        new: &NewPlayground,
    ) -> impl Future<Output = Result<Option<PlaygroundId>, StoreError>> + Send;
}

impl SamePlace for Transaction<'_, Postgres> {
    async fn same_place(
        &mut self,
        new: &NewPlayground,
    ) -> Result<Option<PlaygroundId>, StoreError> {
        // Two people adding the same place at once: the second waits, then finds the first.
        sqlx::query("SELECT pg_advisory_xact_lock(3, hashtext($1))")
            .bind(&new.name_search)
            .execute(&mut **self)
            .await?;
        Ok(sqlx::query_scalar(
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
        .fetch_optional(&mut **self)
        .await?)
    }
}

/// The write transaction holds SQLite's one write lock: a concurrent add waits for it.
impl SamePlace for Transaction<'_, Sqlite> {
    async fn same_place(
        &mut self,
        new: &NewPlayground,
    ) -> Result<Option<PlaygroundId>, StoreError> {
        let at = Coordinates::parse(new.latitude, new.longitude)
            .map_err(|e| StoreError::Other(anyhow::anyhow!("{e}")))?;
        let radius_km = new.duplicate_radius_m / 1000.0;
        Ok(in_box(&mut **self, at, radius_km, Some(&new.name_search))
            .await?
            .into_iter()
            .filter(|(km, _)| *km <= radius_km)
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, id)| id))
    }
}

/// SQLite: the places (named `name`, when given) in the R*Tree box around `at` a little larger
/// than `radius_km`, with their exact distances in km.
async fn in_box<'e, E>(
    conn: E,
    at: Coordinates,
    radius_km: f64,
    name: Option<&str>,
) -> Result<Vec<(f64, PlaygroundId)>, StoreError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    #[derive(sqlx::FromRow)]
    struct Point {
        id: PlaygroundId,
        latitude: f64,
        longitude: f64,
    }
    let (min_lat, max_lat, mut min_lon, mut max_lon) = bounding_box(at, radius_km * 1.01);
    if min_lon < -180.0 || max_lon > 180.0 {
        (min_lon, max_lon) = (-180.0, 180.0);
    }
    let points: Vec<Point> = sqlx::query_as(
        "SELECT p.id, p.latitude, p.longitude
           FROM playgrounds_rtree r JOIN playgrounds p ON p.rowid = r.id
          WHERE r.min_lat >= $1 AND r.max_lat <= $2 AND r.min_lon >= $3 AND r.max_lon <= $4
            AND ($5 IS NULL OR p.name_search = $5)",
    )
    .bind(min_lat.max(-90.0))
    .bind(max_lat.min(90.0))
    .bind(min_lon)
    .bind(max_lon)
    .bind(name)
    .fetch_all(conn)
    .await?;
    Ok(points
        .into_iter()
        .filter_map(|p| {
            let there = Coordinates::parse(p.latitude, p.longitude).ok()?;
            Some((haversine_km(at, there), p.id))
        })
        .collect())
}

/// `LIKE` pattern text matching `s` literally.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
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
