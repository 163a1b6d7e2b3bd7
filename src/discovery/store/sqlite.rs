//! SQLite: likes written by one task, as many as wait in one transaction and one statement
//! (`BEGIN IMMEDIATE` takes the write lock up front; likes of one pair run one after the other),
//! and the candidate query: prefiltered with the R*Tree over locations, then measured exactly
//! (haversine) in Rust.

use chrono::{DateTime, Utc};
use const_format::concatcp;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{
    CANDIDATE_SIGNALS, Candidate, Like, LikeOutcome, LikeRow, MAX_CANDIDATES, NOT_ACTED_ON,
    Searcher, ordered,
};
use crate::discovery::geo::{Coordinates, bounding_box, haversine_km};
use crate::error::StoreError;
use crate::infra::db::sqlite_writer;
use crate::infra::sql::Ts;
use crate::infra::time::sqlite_ts;

/// Writes a batch of likes in one transaction and one statement, sent to the writer connection
/// as one command: `$1` is a JSON array with one array per like (see [`like_request`]), and
/// inserting them into the `like_requests` view runs each like in order (its trigger is SQLite's
/// `pupmatch_like`); then their outcomes, in that order, and the outcomes table emptied again.
/// `BEGIN IMMEDIATE` takes the write lock up front.
const WRITE_LIKES_SQL: &str = "
    BEGIN IMMEDIATE;
    INSERT INTO like_requests (seq, user_id, target_id, now, like_id, match_id, conversation_id,
                               pair_a, pair_b, notice_id, notice_kind, notice_title, notice_body,
                               notice_data, target_offline)
    SELECT key, unhex(value ->> 0), unhex(value ->> 1), value ->> 2, unhex(value ->> 3),
           unhex(value ->> 4), unhex(value ->> 5), unhex(value ->> 6), unhex(value ->> 7),
           unhex(value ->> 8), value ->> 9, value ->> 10, value ->> 11, value ->> 12, value ->> 13
      FROM json_each($1)
     ORDER BY key;
    SELECT outcome, match_id, conversation_id, created_at, push_state
      FROM like_outcomes ORDER BY seq;
    DELETE FROM like_outcomes;
    COMMIT";

/// Most likes written in one transaction.
const LIKES_PER_COMMIT: usize = 64;

/// A like to write, and where its outcome goes.
struct LikeJob {
    like: Like,
    outcome: oneshot::Sender<Result<LikeOutcome, StoreError>>,
}

/// Writes likes for one database: the likes that wait while a transaction is written go into the
/// next one together (group commit). Each like still gets its own outcome, decided by the write.
#[derive(Clone)]
pub(super) struct LikeWriter {
    jobs: mpsc::Sender<LikeJob>,
}

impl LikeWriter {
    /// Starts the task that writes the likes; it ends when the last writer handle is dropped.
    pub(super) fn start(pool: SqlitePool) -> LikeWriter {
        let (jobs, queue) = mpsc::channel(1024);
        tokio::spawn(write_likes(pool, queue));
        LikeWriter { jobs }
    }

    /// Records a like (see [`super::DiscoveryStore::like`]).
    pub(super) async fn like(&self, like: Like) -> Result<LikeOutcome, StoreError> {
        let stopped = || StoreError::Unavailable(anyhow::anyhow!("the like writer has stopped"));
        let (outcome, written) = oneshot::channel();
        self.jobs
            .send(LikeJob { like, outcome })
            .await
            .map_err(|_| stopped())?;
        written.await.map_err(|_| stopped())?
    }
}

/// Writes queued likes until every sender is gone, as many at a time as are waiting.
async fn write_likes(pool: SqlitePool, mut queue: mpsc::Receiver<LikeJob>) {
    let mut batch = Vec::with_capacity(LIKES_PER_COMMIT);
    while queue.recv_many(&mut batch, LIKES_PER_COMMIT).await > 0 {
        let likes: Vec<&Like> = batch.iter().map(|job| &job.like).collect();
        let outcomes = match write_together(&pool, &likes).await {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            // One failed, and with it the transaction: each again on its own, so only it fails.
            Err(err) if likes.len() == 1 => vec![Err(err)],
            Err(_) => {
                let mut alone = Vec::with_capacity(likes.len());
                for like in &likes {
                    alone.push(
                        write_together(&pool, std::slice::from_ref(like))
                            .await
                            .and_then(|mut one| {
                                one.pop().ok_or_else(|| {
                                    StoreError::Other(anyhow::anyhow!("a like without outcome"))
                                })
                            }),
                    );
                }
                alone
            }
        };
        for (job, outcome) in batch.drain(..).zip(outcomes) {
            // The request may have gone; its like is written all the same.
            let _ = job.outcome.send(outcome);
        }
    }
}

/// Writes `likes` in one transaction, in order; their outcomes, or the first error (nothing
/// written). Outcomes that do not match the likes one for one (which the statement rules out)
/// are an error too, though the likes were written.
async fn write_together(
    pool: &SqlitePool,
    likes: &[&Like],
) -> Result<Vec<LikeOutcome>, StoreError> {
    // Every command sent is a hop to the writer connection's thread and back, and each
    // statement's result comes back on its own: the transaction is one command, its likes one
    // statement.
    let requests: Vec<serde_json::Value> = likes.iter().map(|like| like_request(like)).collect();
    let mut conn = sqlite_writer(pool).acquire().await?;
    let written = sqlx::query_as::<_, LikeRow>(WRITE_LIKES_SQL)
        .bind(serde_json::Value::Array(requests).to_string())
        .fetch_all(&mut *conn)
        .await;
    let rows = match written {
        Ok(rows) => rows,
        Err(err) => {
            // The script stopped at the failing statement: end its transaction. A connection
            // that cannot say whether it still has one is not used again.
            if let Err(rollback) = sqlx::query("ROLLBACK").execute(&mut *conn).await
                && !rollback.to_string().contains("no transaction is active")
            {
                conn.close_on_drop();
            }
            return Err(err.into());
        }
    };
    if rows.len() != likes.len() {
        return Err(StoreError::Other(anyhow::anyhow!(
            "{} likes reported {} outcomes",
            likes.len(),
            rows.len()
        )));
    }
    rows.into_iter()
        .zip(likes)
        .map(|(row, like)| LikeOutcome::from_row(row, like.target))
        .collect()
}

/// One like as a row of [`WRITE_LIKES_SQL`]: the one liking, the one liked, now, new ids for the
/// like, a match and its conversation, the pair in id order, the liked person's notice (id, kind,
/// title, body, data) and whether they are offline (a push is wanted).
fn like_request(like: &Like) -> serde_json::Value {
    let hex = |id: Uuid| serde_json::Value::String(id.simple().to_string());
    let (a, b) = ordered(like.user_id, like.target);
    let notice = &like.notice;
    serde_json::json!([
        hex(like.user_id),
        hex(like.target),
        sqlite_ts(like.now),
        hex(Uuid::now_v7()),
        hex(Uuid::now_v7()),
        hex(Uuid::now_v7()),
        hex(a),
        hex(b),
        hex(notice.id),
        notice.kind.as_db(),
        notice.title,
        notice.body,
        notice.data,
        like.target_offline,
    ])
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
    let rows: Vec<Row> = sqlx::query_as(concatcp!(
        "SELECT l.user_id, l.grid_latitude, l.grid_longitude, cp.max_distance, cp.distance_unit, ",
        CANDIDATE_SIGNALS,
        " FROM locations_rtree r
           JOIN locations l ON l.rowid = r.id
           JOIN profiles p ON p.user_id = l.user_id
           JOIN users u ON u.id = l.user_id
           LEFT JOIN preferences cp ON cp.user_id = l.user_id
          WHERE r.min_lat >= $2 AND r.max_lat <= $3 AND r.min_lon >= $4 AND r.max_lon <= $5
            AND l.user_id <> $1
            AND (u.hidden_until IS NULL OR u.hidden_until <= $9)
            AND (NOT $10 OR u.email_confirmed_at IS NOT NULL)
            AND p.is_paused = 0 AND p.photo_count BETWEEN 2 AND 6
            AND p.age BETWEEN $6 AND $7
            AND ($8 IS NULL OR $8 BETWEEN COALESCE(cp.min_age, 0) AND COALESCE(cp.max_age, 30))
            AND ",
        NOT_ACTED_ON
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
    .bind(s.confirmed_only)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::db::Db;
    use crate::notifications::store::{NotificationKind, NotificationRecord, PushState};

    /// Someone in the database, with a profile or without.
    async fn person(pool: &SqlitePool, with_profile: bool) -> Uuid {
        let id = Uuid::now_v7();
        let now = sqlite_ts(Utc::now());
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, created_at, updated_at, last_active_at)
             VALUES ($1, $2, 'not a hash', $3, $3, $3)",
        )
        .bind(id)
        .bind(format!("{}@example.com", id.simple()))
        .bind(&now)
        .execute(pool)
        .await
        .expect("user");
        if with_profile {
            sqlx::query(
                "INSERT INTO profiles (id, user_id, name, age, activity_level, created_at,
                                       updated_at)
                 VALUES ($1, $2, 'Rex', 3, 'MEDIUM', $3, $3)",
            )
            .bind(Uuid::now_v7())
            .bind(id)
            .bind(&now)
            .execute(pool)
            .await
            .expect("profile");
        }
        id
    }

    fn like(user_id: Uuid, target: Uuid) -> Like {
        Like {
            user_id,
            target,
            now: Utc::now(),
            notice: NotificationRecord {
                id: Uuid::now_v7(),
                user_id: target,
                kind: NotificationKind::Like,
                title: "Someone likes you".into(),
                body: "Take a look".into(),
                data: Some(r#"{"userId":"x"}"#.into()),
                read_at: None,
                created_at: Utc::now(),
                push_state: PushState::NotWanted,
                push_attempts: 0,
            },
            target_offline: true,
        }
    }

    async fn count(pool: &SqlitePool, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(pool)
            .await
            .expect("count")
    }

    /// Likes written together in one statement run one after the other, each seeing what the
    /// ones before it wrote: two people who like each other in the same batch make one match,
    /// made by the second like, and the first like's notice is stored; a like again, a like
    /// without a profile and a like of someone without one each get their own outcome.
    #[tokio::test]
    async fn likes_written_together_run_in_order_and_each_get_their_own_outcome() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("likes.db").display());
        let db = Db::connect(&url, 2, None).await.expect("database");
        db.migrate().await.expect("migrations");
        let Db::Sqlite(pool) = &db else {
            unreachable!("an SQLite URL")
        };
        let (rex, bella, milo) = (
            person(pool, true).await,
            person(pool, true).await,
            person(pool, true).await,
        );
        let (no_profile, profileless_target) =
            (person(pool, false).await, person(pool, false).await);

        let batch = [
            like(rex, bella),
            like(bella, rex),
            like(rex, milo),
            like(rex, milo),
            like(no_profile, rex),
            like(rex, profileless_target),
        ];
        let outcomes = write_together(pool, &batch.iter().collect::<Vec<_>>())
            .await
            .expect("written");

        assert_eq!(
            outcomes[0],
            LikeOutcome::Liked {
                new: true,
                notice_push_state: Some(PushState::NotWanted)
            },
            "the first of the pair: no mutual like yet (no device: no push)"
        );
        let LikeOutcome::Matched { record, new: true } = &outcomes[1] else {
            panic!("the second of the pair makes the match: {:?}", outcomes[1]);
        };
        assert_eq!(record.other_id, rex);
        assert!(matches!(outcomes[2], LikeOutcome::Liked { new: true, .. }));
        assert_eq!(
            outcomes[3],
            LikeOutcome::Liked {
                new: false,
                notice_push_state: None
            },
            "the same like again, in the same batch"
        );
        assert_eq!(outcomes[4], LikeOutcome::NoProfile);
        assert_eq!(outcomes[5], LikeOutcome::NoSuchUser);

        assert_eq!(count(pool, "likes").await, 3);
        assert_eq!(count(pool, "matches").await, 1);
        assert_eq!(count(pool, "conversations").await, 1);
        // Bella's notice of Rex's like and Milo's; none for the like that made the match.
        assert_eq!(count(pool, "notifications").await, 2);
        assert_eq!(count(pool, "like_outcomes").await, 0, "read and emptied");
    }
}
