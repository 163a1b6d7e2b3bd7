//! SQLite: likes as one script each, written by one task in transactions of as many as wait
//! (`BEGIN IMMEDIATE` takes the write lock up front; likes of one pair run one after the other),
//! and the candidate query: prefiltered with the R*Tree over locations, then measured exactly
//! (haversine) in Rust.

use chrono::{DateTime, Utc};
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{Candidate, LikeOutcome, LikeRow, MAX_CANDIDATES, Searcher, ordered};
use crate::discovery::geo::{Coordinates, bounding_box, haversine_km};
use crate::error::StoreError;
use crate::infra::sql::{Backend, Ts};
use crate::notifications::store::{NotificationRecord, insert_wanted_sqlite_sql};

/// Whether `$1` may like `$2` at `$3`: both have a profile, `$2` is not hidden, and neither
/// blocked the other.
macro_rules! like_allowed {
    () => {
        "EXISTS (SELECT 1 FROM profiles WHERE user_id = $1)
         AND EXISTS (SELECT 1 FROM profiles WHERE user_id = $2)
         AND NOT EXISTS (SELECT 1 FROM users WHERE id = $2 AND hidden_until > $3)
         AND NOT EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = $1 AND blocked_id = $2)
                                               OR (blocker_id = $2 AND blocked_id = $1))"
    };
}

/// A like as one script of statements, each doing its part only when the state calls for it,
/// the last reporting what happened in `pupmatch_like`'s words. `$1` the one liking, `$2` the
/// one liked, `$3` now, `$4` the like's id, `$5`/`$6` a new match's and conversation's ids,
/// `$7`/`$8` the pair in id order, `$9`–`$13` the liked person's notice (id, kind, title, body,
/// data), `$14` whether they are offline (a push is wanted).
const LIKE_SQL: &str = concat!(
    "INSERT INTO likes (id, user_id, target_id, created_at)
     SELECT $4, $1, $2, $3 WHERE ",
    like_allowed!(),
    " ON CONFLICT (user_id, target_id) DO NOTHING;

     -- A like replaces a pass.
     DELETE FROM passes WHERE user_id = $1 AND target_id = $2 AND ",
    like_allowed!(),
    ";

     -- A new like that is not mutual: the liked person's notice, as they want it.
     ",
    insert_wanted_sqlite_sql!("$9", "$2", "$10", "$11", "$12", "$13", "$3", "$14"),
    "
        AND EXISTS (SELECT 1 FROM likes WHERE id = $4)
        AND NOT EXISTS (SELECT 1 FROM likes WHERE user_id = $2 AND target_id = $1);

     -- A mutual like: the match and its conversation, unless the pair has them.
     INSERT INTO matches (id, user_a, user_b, created_at)
     SELECT $5, $7, $8, $3
      WHERE EXISTS (SELECT 1 FROM likes WHERE user_id = $2 AND target_id = $1)
        AND NOT EXISTS (SELECT 1 FROM matches WHERE user_a = $7 AND user_b = $8)
        AND ",
    like_allowed!(),
    ";
     INSERT INTO conversations (id, match_id, user_a, user_b, created_at, updated_at)
     SELECT $6, $5, $7, $8, $3, $3 WHERE EXISTS (SELECT 1 FROM matches WHERE id = $5);

     SELECT CASE
              WHEN NOT EXISTS (SELECT 1 FROM profiles WHERE user_id = $1) THEN 'no_profile'
              WHEN NOT EXISTS (SELECT 1 FROM profiles WHERE user_id = $2)
                   OR EXISTS (SELECT 1 FROM users WHERE id = $2 AND hidden_until > $3)
                THEN 'no_user'
              WHEN EXISTS (SELECT 1 FROM blocks WHERE (blocker_id = $1 AND blocked_id = $2)
                                                 OR (blocker_id = $2 AND blocked_id = $1))
                THEN 'blocked'
              WHEN m.id = $5 THEN 'new_match'
              WHEN m.id IS NOT NULL
                   AND EXISTS (SELECT 1 FROM likes WHERE user_id = $2 AND target_id = $1)
                THEN 'matched'
              WHEN EXISTS (SELECT 1 FROM likes WHERE id = $4) THEN 'liked'
              ELSE 'liked_again'
            END,
            m.id, c.id, m.created_at, n.push_state
       FROM (SELECT 1) AS one
       LEFT JOIN matches m ON m.user_a = $7 AND m.user_b = $8
       LEFT JOIN conversations c ON c.match_id = m.id
       LEFT JOIN notifications n ON n.id = $9"
);

/// Most likes written in one transaction.
const LIKES_PER_COMMIT: usize = 64;

/// A like to write, and where its outcome goes.
struct LikeJob {
    like: Like,
    outcome: oneshot::Sender<Result<LikeOutcome, StoreError>>,
}

/// What a like needs written.
struct Like {
    user_id: Uuid,
    target: Uuid,
    now: DateTime<Utc>,
    notice: NotificationRecord,
    target_offline: bool,
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
    pub(super) async fn like(
        &self,
        user_id: Uuid,
        target: Uuid,
        now: DateTime<Utc>,
        notice: &NotificationRecord,
        target_offline: bool,
    ) -> Result<LikeOutcome, StoreError> {
        let stopped = || StoreError::Unavailable(anyhow::anyhow!("the like writer has stopped"));
        let (outcome, written) = oneshot::channel();
        let like = Like {
            user_id,
            target,
            now,
            notice: notice.clone(),
            target_offline,
        };
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
/// written).
async fn write_together(
    pool: &SqlitePool,
    likes: &[&Like],
) -> Result<Vec<LikeOutcome>, StoreError> {
    // Each statement sent is a hop to the one writer connection's thread and back, and every
    // write waits for that connection: the likes go as scripts of up to 16 (one hop each)
    // between `BEGIN IMMEDIATE` (the write lock, taken up front) and the commit they share.
    let mut tx = pool.begin_write().await?;
    let mut outcomes = Vec::with_capacity(likes.len());
    let mut rest = likes;
    while !rest.is_empty() {
        let (sql, n) = likes_sql(rest.len());
        let (chunk, after) = rest.split_at(n);
        rest = after;
        let mut query = sqlx::query_as::<_, LikeRow>(sql);
        for like in chunk {
            let (a, b) = ordered(like.user_id, like.target);
            let notice = &like.notice;
            query = query
                .bind(like.user_id)
                .bind(like.target)
                .bind(Ts(like.now))
                .bind(Uuid::now_v7())
                .bind(Uuid::now_v7())
                .bind(Uuid::now_v7())
                .bind(a)
                .bind(b)
                .bind(notice.id)
                .bind(notice.kind)
                .bind(&notice.title)
                .bind(&notice.body)
                .bind(&notice.data)
                .bind(like.target_offline);
        }
        // All of it: a fetch that stops at the first row would stop the script there.
        let rows = query.fetch_all(&mut *tx).await?;
        if rows.len() != chunk.len() {
            return Err(StoreError::Other(anyhow::anyhow!(
                "{} likes reported {} outcomes",
                chunk.len(),
                rows.len()
            )));
        }
        for (row, like) in rows.into_iter().zip(chunk) {
            outcomes.push(LikeOutcome::from_row(row, like.target)?);
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// Parameters of one like in [`LIKE_SQL`] (`$1`–`$14`).
const LIKE_PARAMS: usize = 14;

/// The script for the next likes of `waiting`: [`LIKE_SQL`] repeated for 16, 4 or 1 of them
/// (few scripts, so each is prepared once per connection), the i-th copy's parameters moved up
/// by `LIKE_PARAMS`·i; and how many likes it writes.
fn likes_sql(waiting: usize) -> (&'static str, usize) {
    static SCRIPTS: std::sync::LazyLock<[(String, usize); 3]> =
        std::sync::LazyLock::new(|| [16, 4, 1].map(|n| (repeated_like_sql(n), n)));
    let (sql, n) = SCRIPTS
        .iter()
        .find(|(_, n)| *n <= waiting)
        .unwrap_or(&SCRIPTS[2]);
    (sql.as_str(), *n)
}

fn repeated_like_sql(n: usize) -> String {
    let mut out = String::with_capacity(LIKE_SQL.len() * n);
    for i in 0..n {
        let mut rest = LIKE_SQL;
        while let Some(at) = rest.find('$') {
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let k: usize = rest[at + 1..at + 1 + digits]
                .parse()
                .expect("LIKE_SQL numbers its parameters");
            out.push_str(&rest[..at]);
            out.push_str(&format!("${}", k + LIKE_PARAMS * i));
            rest = &rest[at + 1 + digits..];
        }
        out.push_str(rest);
        out.push_str(";\n");
    }
    out
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The parameter numbers a script uses.
    fn parameters(sql: &str) -> BTreeSet<usize> {
        sql.split('$')
            .skip(1)
            .map(|after| {
                let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().expect("a numbered parameter")
            })
            .collect()
    }

    #[test]
    fn likes_in_one_script_each_have_their_own_parameters() {
        assert_eq!(parameters(LIKE_SQL), (1..=LIKE_PARAMS).collect());
        let three = repeated_like_sql(3);
        assert_eq!(three.matches("INSERT INTO likes").count(), 3);
        assert_eq!(parameters(&three), (1..=3 * LIKE_PARAMS).collect());
        assert_eq!(likes_sql(40).1, 16);
        assert_eq!(likes_sql(15).1, 4);
        assert_eq!(likes_sql(3).1, 1);
    }
}
