//! PostgreSQL keeps the plans of the like, notification and message functions per connection.
//! A plan made while a table was small — or while its statistics said so, e.g. after an
//! `ANALYZE` of a new deployment with autovacuum off — may read the table whole, and it stays
//! for the connection's life: every like then reads every like. These tests give the planner the
//! statistics of empty tables, then count, from PostgreSQL's own counters, the tables the writes
//! read whole.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use crate::helpers::people::{BERLIN, dog_at, like, north_of};
use crate::helpers::{Backend, spawn_app};

/// Per table: (sequential scans, rows inserted, rows fetched through an index), as
/// PostgreSQL's statistics have them.
type Counters = BTreeMap<String, (i64, i64, i64)>;

async fn counters(conn: &mut PgConnection) -> Counters {
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT relname::text, seq_scan, n_tup_ins, coalesce(idx_tup_fetch, 0)
           FROM pg_stat_user_tables",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("table statistics");
    rows.into_iter()
        .map(|(t, s, i, f)| (t, (s, i, f)))
        .collect()
}

/// The counters with every backend's own included: a backend reports its counters when idle,
/// at most once a second and sometimes only ten seconds later, and always when it ends — so the
/// server's connections are ended (its pool opens new ones) and the counters read once they
/// are gone.
async fn flushed_counters(conn: &mut PgConnection) -> Counters {
    let ended: Vec<i32> = sqlx::query_scalar(
        "WITH others AS MATERIALIZED (
             SELECT pid FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid())
         SELECT pid FROM others WHERE pg_terminate_backend(pid)",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("end the server's connections");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                .bind(&ended)
                .fetch_one(&mut *conn)
                .await
                .expect("connections");
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server's connections did not end"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The server's pool checks a connection idle for a second before handing it out, and
    // opens a new one for each ended.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    counters(conn).await
}

/// The tables that grow with every swipe and message, where a plan reading a table whole gets
/// slower with every row.
const GROWING: [&str; 9] = [
    "likes",
    "passes",
    "blocks",
    "matches",
    "conversations",
    "messages",
    "notifications",
    "notification_preferences",
    "devices",
];

/// Likes (one-sided and mutual, so matches and conversations too), their notifications, and
/// messages both ways, made after the planner was told those tables are empty, read none of
/// them whole. (Profiles and accounts, read for a match's names, grow with sign-ups only and
/// are not counted here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn likes_and_messages_read_no_table_whole_whatever_the_statistics_postgres() {
    let app = spawn_app(Backend::Postgres).await;
    let mut dogs = Vec::new();
    for (i, name) in ["Rex", "Bella", "Max", "Luna"].into_iter().enumerate() {
        dogs.push(dog_at(&app, name, north_of(BERLIN, i as f64)).await);
    }
    // The statistics of a new deployment: no likes, matches, conversations, messages or
    // notifications at all.
    app.execute("ANALYZE").await;
    // The test's own connection, which survives the ending of the server's.
    let mut conn = PgConnection::connect(&app.config.database_url)
        .await
        .expect("connect");
    let before = flushed_counters(&mut conn).await;

    // More than five of each, so PostgreSQL settles on its cached plans for them.
    let mut conversations = Vec::new();
    for (i, a) in dogs.iter().enumerate() {
        for b in &dogs[i + 1..] {
            like(&app, a, b.user_id).await.data("like");
            let res = like(&app, b, a.user_id).await;
            let conversation = res.data("like")["match"]["conversationId"].clone();
            assert!(
                conversation.is_string(),
                "a mutual like is a match: {res:?}"
            );
            conversations.push((a, b, conversation));
        }
    }
    for round in 0..2 {
        for (a, b, conversation) in &conversations {
            let from = if round == 0 { a } else { b };
            app.send_message(from, conversation, "Fetch at the park?")
                .await
                .data("sendMessage");
        }
    }

    let after = flushed_counters(&mut conn).await;
    let inserted = |table: &str| after[table].1 - before[table].1;
    assert_eq!(inserted("likes"), 12, "every like was counted");
    assert_eq!(inserted("messages"), 12, "every message was counted");
    let read_whole: Vec<(&str, i64)> = GROWING
        .into_iter()
        .map(|table| (table, after[table].0 - before[table].0))
        .filter(|(_, scans)| *scans > 0)
        .collect();
    assert!(
        read_whole.is_empty(),
        "tables read whole by likes and messages (sequential scans): {read_whole:?}"
    );
}

/// Liking back someone who liked you looks up the pair, not everyone who liked you: a person
/// liked by many pays for a like what anyone pays, even when the planner was told the tables
/// are empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_like_looks_up_the_pair_not_everyone_who_liked_you_postgres() {
    const FANS: usize = 12;
    let app = spawn_app(Backend::Postgres).await;
    let star = dog_at(&app, "Star", BERLIN).await;
    app.execute("ANALYZE").await;
    let mut fans = Vec::new();
    for i in 0..FANS {
        let fan = dog_at(&app, &format!("Fan {i}"), north_of(BERLIN, 0.5)).await;
        like(&app, &fan, star.user_id).await.data("like");
        fans.push(fan);
    }
    let mut conn = PgConnection::connect(&app.config.database_url)
        .await
        .expect("connect");
    let before = flushed_counters(&mut conn).await;
    for fan in &fans {
        let res = like(&app, &star, fan.user_id).await;
        assert_eq!(res.data("like")["isMatch"], true, "{res:?}");
    }
    let after = flushed_counters(&mut conn).await;
    let fetched = |table: &str| after[table].2 - before[table].2;
    // One like read a like (the one it answers); each found its match's row once.
    for table in ["likes", "matches"] {
        assert!(
            fetched(table) <= FANS as i64,
            "{} rows of {table} read through an index for {FANS} likes back",
            fetched(table)
        );
    }
}
