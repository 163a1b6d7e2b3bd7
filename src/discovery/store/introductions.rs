//! Who has been shown whom (introductions, with their daily ceiling), and how two people are
//! connected.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::*;

/// The advisory lock key of a person's introductions (apart from pair keys by a constant).
fn introductions_key(viewer: Uuid) -> i64 {
    pair_key(
        viewer,
        Uuid::from_u128(0x696e_7472_6f64_7563_7469_6f6e_735f_6b65),
    )
}

/// What [`DiscoveryStore::introduce`] did.
pub struct Introduced {
    /// Those of the people asked about who are introduced now.
    pub people: Vec<Uuid>,
    /// When some were not (the day's ceiling is reached): when it has room again.
    pub full_until: Option<DateTime<Utc>>,
}

/// How one person is connected to another, which decides whether they may read the other's
/// profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Neither served to them, nor liked them, nor matched.
    Stranger,
    /// Served to them in their recommendations, or liked them.
    Introduced,
    /// A match (and so a conversation).
    Matched,
}

impl DiscoveryStore {
    /// Introduces `people` (in the order they are served) to `viewer`, as many as the daily
    /// ceiling leaves room for: at most `per_day` new people in any 24 hours, counted under a
    /// lock on the viewer so pages served at once count each other. Returns those of `people`
    /// now introduced (before or just now); the new ones beyond the ceiling are not, and then
    /// `full_until` says when the ceiling has room again.
    pub async fn introduce(
        &self,
        viewer: Uuid,
        people: &[Uuid],
        per_day: i64,
        now: DateTime<Utc>,
    ) -> Result<Introduced, StoreError> {
        const ALREADY: Sql = in_ids!(
            "SELECT person_id FROM introductions WHERE viewer_id = $1 AND person_id",
            2,
            ""
        );
        const INSERT: Sql = Sql {
            postgres: "INSERT INTO introductions (viewer_id, person_id, introduced_at)
                       SELECT $1, unnest($2::uuid[]), $3 ON CONFLICT DO NOTHING",
            sqlite: "INSERT INTO introductions (viewer_id, person_id, introduced_at)
                     SELECT $1, unhex(value), $3 FROM json_each($2) WHERE true
                     ON CONFLICT DO NOTHING",
        };
        // Most pages show nobody new: a read answers them without the write lock.
        let known: Vec<Uuid> = fetch_scalar!(&self.db, fetch_all, ALREADY, viewer, Ids(people));
        if known.len() == people.len() {
            return Ok(Introduced {
                people: known,
                full_until: None,
            });
        }
        with_db!(&self.db, |pool| {
            let mut tx = pool.begin_write().await?;
            tx.lock_key(introductions_key(viewer)).await?;
            let mut known: Vec<Uuid> = sqlx::query_scalar(pool.pick(ALREADY))
                .bind(viewer)
                .bind(Ids(people))
                .fetch_all(&mut *tx)
                .await?;
            let new: Vec<Uuid> = people
                .iter()
                .filter(|id| !known.contains(id))
                .copied()
                .collect();
            if new.is_empty() {
                return Ok(Introduced {
                    people: known,
                    full_until: None,
                });
            }
            let (recent, earliest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
                "SELECT COUNT(*), MIN(introduced_at) FROM introductions
                  WHERE viewer_id = $1 AND introduced_at > $2",
            )
            .bind(viewer)
            .bind(Ts(now - chrono::Duration::days(1)))
            .fetch_one(&mut *tx)
            .await?;
            let room = usize::try_from(per_day.saturating_sub(recent)).unwrap_or(0);
            let admitted = &new[..room.min(new.len())];
            let full_until = (admitted.len() < new.len())
                .then(|| earliest.unwrap_or(now) + chrono::Duration::days(1));
            if !admitted.is_empty() {
                sqlx::query(pool.pick(INSERT))
                    .bind(viewer)
                    .bind(Ids(admitted))
                    .bind(Ts(now))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            known.extend_from_slice(admitted);
            Ok(Introduced {
                people: known,
                full_until,
            })
        })
    }

    /// How `viewer` is connected to each of `people` they are connected to at all: matched, or
    /// introduced (served to them, or liked them). Strangers are absent.
    pub async fn relations(
        &self,
        viewer: Uuid,
        people: &[Uuid],
    ) -> Result<HashMap<Uuid, Relation>, StoreError> {
        macro_rules! connections {
            ($in:literal) => {
                concat!(
                    "SELECT person_id, 1 FROM introductions WHERE viewer_id = $1 AND person_id",
                    $in,
                    " UNION ALL SELECT user_id, 1 FROM likes WHERE target_id = $1 AND user_id",
                    $in,
                    " UNION ALL SELECT user_b, 2 FROM matches WHERE user_a = $1 AND user_b",
                    $in,
                    " UNION ALL SELECT user_a, 2 FROM matches WHERE user_b = $1 AND user_a",
                    $in
                )
            };
        }
        const CONNECTIONS: Sql = Sql {
            postgres: connections!(" = ANY($2)"),
            sqlite: connections!(" IN (SELECT unhex(value) FROM json_each($2))"),
        };
        let rows: Vec<(Uuid, i32)> = fetch!(&self.db, fetch_all, CONNECTIONS, viewer, Ids(people));
        let mut out = HashMap::with_capacity(rows.len());
        for (person, kind) in rows {
            let relation = if kind == 2 {
                Relation::Matched
            } else {
                Relation::Introduced
            };
            let entry = out.entry(person).or_insert(relation);
            if relation == Relation::Matched {
                *entry = relation;
            }
        }
        Ok(out)
    }
}
