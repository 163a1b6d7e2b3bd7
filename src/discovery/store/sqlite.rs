//! SQLite: a like as a write transaction (`BEGIN IMMEDIATE` takes the write lock up front, which
//! also serialises two simultaneous likes of one pair), and the candidate query: prefiltered
//! with the R*Tree over locations, then measured exactly (haversine) in Rust.

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::{Candidate, LikeOutcome, MAX_CANDIDATES, MatchRecord, Searcher, ordered};
use crate::discovery::geo::{Coordinates, bounding_box, haversine_km};
use crate::error::StoreError;
use crate::infra::sql::{Backend, Ts, execute_in};
use crate::notifications::store::{NotificationRecord, insert_wanted_sqlite};

/// Records a like (see [`super::DiscoveryStore::like`]).
pub(super) async fn like(
    pool: &SqlitePool,
    user_id: Uuid,
    target: Uuid,
    now: DateTime<Utc>,
    notice: &NotificationRecord,
    target_offline: bool,
) -> Result<LikeOutcome, StoreError> {
    // Every statement is a hop to the one writer connection's thread, which all writes queue
    // for: what can be read is read at once (the write lock held since `BEGIN IMMEDIATE`
    // keeps it true until the commit).
    let mut tx = pool.begin_write().await?;
    let (has_profile, target_exists, blocked, passed, mutual): (bool, bool, bool, bool, bool) =
        sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM profiles WHERE user_id = $1),
                EXISTS (SELECT 1 FROM profiles WHERE user_id = $2)
                  AND NOT EXISTS (SELECT 1 FROM users WHERE id = $2 AND hidden_until > $3),
                EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = $1 AND blocked_id = $2)
                                              OR (blocker_id = $2 AND blocked_id = $1)),
                EXISTS (SELECT 1 FROM passes WHERE user_id = $1 AND target_id = $2),
                EXISTS (SELECT 1 FROM likes WHERE user_id = $2 AND target_id = $1)",
        )
        .bind(user_id)
        .bind(target)
        .bind(Ts(now))
        .fetch_one(&mut *tx)
        .await?;
    if !has_profile {
        return Ok(LikeOutcome::NoProfile);
    }
    if !target_exists {
        return Ok(LikeOutcome::NoSuchUser);
    }
    if blocked {
        return Ok(LikeOutcome::Blocked);
    }
    let new = sqlx::query(
        "INSERT INTO likes (id, user_id, target_id, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, target_id) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(target)
    .bind(Ts(now))
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if passed {
        // A like replaces a pass.
        execute_in!(
            tx,
            "DELETE FROM passes WHERE user_id = $1 AND target_id = $2",
            user_id,
            target
        );
    }
    if !mutual {
        let notice_push_state = if new {
            insert_wanted_sqlite(&mut tx, notice, target_offline).await?
        } else {
            None
        };
        tx.commit().await?;
        return Ok(LikeOutcome::Liked {
            new,
            notice_push_state,
        });
    }
    if let Some(record) = match_between!(tx, user_id, target) {
        tx.commit().await?;
        return Ok(LikeOutcome::Matched { record, new: false });
    }
    let (a, b) = ordered(user_id, target);
    let (match_id, conversation_id) = (Uuid::now_v7(), Uuid::now_v7());
    execute_in!(
        tx,
        "INSERT INTO matches (id, user_a, user_b, created_at) VALUES ($1, $2, $3, $4)",
        match_id,
        a,
        b,
        Ts(now)
    );
    execute_in!(
        tx,
        "INSERT INTO conversations (id, match_id, user_a, user_b, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)",
        conversation_id,
        match_id,
        a,
        b,
        Ts(now)
    );
    tx.commit().await?;
    Ok(LikeOutcome::Matched {
        record: MatchRecord {
            id: match_id,
            other_id: target,
            conversation_id,
            created_at: now,
        },
        new: true,
    })
}

/// The candidates of one searcher, nearest first (see [`super::DiscoveryStore::candidates`]).
pub(super) async fn candidates(
    pool: &SqlitePool,
    s: &Searcher,
) -> Result<Vec<Candidate>, StoreError> {
    // SQLite has no nearest-first index scan: search a small circle first and widen it until it
    // holds enough candidates (the nearest MAX_CANDIDATES of the full radius are then all inside
    // it) or covers the whole radius.
    let limit = usize::try_from(MAX_CANDIDATES).unwrap_or(200);
    let mut radius = (s.radius_km / 16.0).max(2.0).min(s.radius_km);
    loop {
        let mut found = candidates_within(pool, s, radius).await?;
        if found.len() >= limit || radius >= s.radius_km {
            found.truncate(limit);
            return Ok(found);
        }
        radius = (radius * 3.0).min(s.radius_km);
    }
}

/// Candidates within `radius_km` of the searcher (and within the searcher's and their own
/// preferences), nearest first.
async fn candidates_within(
    pool: &SqlitePool,
    s: &Searcher,
    radius_km: f64,
) -> Result<Vec<Candidate>, StoreError> {
    // Grid points lie within ~1 km of the indexed exact points: widen the box by 2 km.
    let (mut min_lat, mut max_lat, mut min_lon, mut max_lon) =
        bounding_box(s.location, radius_km + 2.0);
    if min_lon < -180.0 || max_lon > 180.0 {
        (min_lon, max_lon) = (-180.0, 180.0);
    }
    (min_lat, max_lat) = (min_lat.max(-90.0), max_lat.min(90.0));
    let rows: Vec<Row> = sqlx::query_as(concat!(
        "SELECT l.user_id, l.grid_latitude, l.grid_longitude, cp.max_distance, cp.distance_unit, ",
        candidate_signals!(),
        " FROM locations_rtree r
           JOIN locations l ON l.rowid = r.id
           JOIN profiles p ON p.user_id = l.user_id
           JOIN users u ON u.id = l.user_id
           LEFT JOIN preferences cp ON cp.user_id = l.user_id
          WHERE r.min_lat >= $2 AND r.max_lat <= $3 AND r.min_lon >= $4 AND r.max_lon <= $5
            AND l.user_id <> $1
            AND (u.hidden_until IS NULL OR u.hidden_until <= $9)
            AND p.is_paused = 0 AND p.photo_count BETWEEN 2 AND 6
            AND p.age BETWEEN $6 AND $7
            AND ($8 IS NULL OR $8 BETWEEN COALESCE(cp.min_age, 0) AND COALESCE(cp.max_age, 30))
            AND ",
        not_acted_on!()
    ))
    .bind(s.user_id)
    .bind(min_lat)
    .bind(max_lat)
    .bind(min_lon)
    .bind(max_lon)
    .bind(s.min_age)
    .bind(s.max_age)
    .bind(s.age)
    .bind(Ts(crate::infra::time::now()))
    .fetch_all(pool)
    .await?;
    let mut out: Vec<Candidate> = rows
        .into_iter()
        .filter_map(|r| {
            let grid = Coordinates::parse(r.grid_latitude, r.grid_longitude).ok()?;
            let distance_km = haversine_km(s.location, grid);
            let their_radius_km = match (r.max_distance, r.distance_unit.as_deref()) {
                (Some(d), Some("MILES")) => d * crate::discovery::geo::KM_PER_MILE,
                (Some(d), _) => d,
                (None, _) => super::DEFAULT_RADIUS_KM,
            };
            (distance_km <= s.radius_km && distance_km <= their_radius_km).then_some(Candidate {
                user_id: r.user_id,
                distance_km,
                activity_level: r.activity_level,
                photo_count: r.photo_count,
                prompt_count: r.prompt_count,
                has_bio: r.has_bio,
                last_active_at: r.last_active_at,
                liked_you: r.liked_you,
                shared_playgrounds: r.shared_playgrounds,
            })
        })
        .collect();
    out.sort_by(|a, b| a.distance_km.total_cmp(&b.distance_km));
    Ok(out)
}

#[derive(sqlx::FromRow)]
struct Row {
    user_id: Uuid,
    grid_latitude: f64,
    grid_longitude: f64,
    activity_level: crate::profiles::model::ActivityLevel,
    photo_count: i32,
    prompt_count: i64,
    has_bio: bool,
    last_active_at: DateTime<Utc>,
    liked_you: bool,
    shared_playgrounds: i64,
    max_distance: Option<f64>,
    distance_unit: Option<String>,
}
