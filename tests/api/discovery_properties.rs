//! Discovery's correctness properties (≥ 100 cases each): matches, distances, coordinates,
//! exclusions, idempotent swipes and unmatching; the
//! simultaneous-like race, and the PostGIS plan.

use proptest::prelude::*;
use pupmatch::discovery::geo::{self, Coordinates};
use serde_json::json;
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::people::{BERLIN, act, all_recs, dog_at, like, north_of, place};
use crate::helpers::{Backend, Session, TestApp, runtime, spawn_app};
use pupmatch::infra::db::Db;

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        ..ProptestConfig::default()
    }
}

fn coordinate() -> impl Strategy<Value = (f64, f64)> {
    (-90.0f64..=90.0, -180.0f64..=180.0)
}

proptest! {
    #![proptest_config(cases(500))]

    /// The distance from A to B equals the distance from B to A.
    #[test]
    fn distance_is_symmetric(a in coordinate(), b in coordinate()) {
        let (a, b) = (Coordinates::parse(a.0, a.1).expect("valid"), Coordinates::parse(b.0, b.1).expect("valid"));
        let (ab, ba) = (geo::haversine_km(a, b), geo::haversine_km(b, a));
        prop_assert!((ab - ba).abs() <= 1e-9 * ab.max(1.0), "{} vs {}", ab, ba);
        prop_assert!((0.0..=20_016.0).contains(&ab));
    }

    /// Miles → kilometres → miles gives back the original value.
    #[test]
    fn unit_conversion_round_trips(miles in 0.0f64..25_000.0) {
        let back = geo::km_to_miles(geo::miles_to_km(miles));
        prop_assert!((back - miles).abs() <= 1e-9 * miles.max(1.0));
        let km = miles;
        prop_assert!((geo::miles_to_km(geo::km_to_miles(km)) - km).abs() <= 1e-9 * km.max(1.0));
    }

    /// The parser: accepted exactly when latitude ∈ [-90, 90] and longitude ∈
    /// [-180, 180], both finite.
    #[test]
    fn coordinates_are_validated(
        lat in prop_oneof![-200.0f64..200.0, Just(f64::NAN), Just(f64::INFINITY), Just(90.0), Just(-90.0)],
        lon in prop_oneof![-400.0f64..400.0, Just(f64::NAN), Just(f64::NEG_INFINITY), Just(180.0), Just(-180.0)],
    ) {
        let valid = lat.is_finite() && lon.is_finite() && (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon);
        prop_assert_eq!(Coordinates::parse(lat, lon).is_ok(), valid);
    }
}

/// Over the API: `updateLocation` stores exactly the valid coordinates, and a
/// refused update leaves the stored location as it was.
fn update_location_validates(backend: Backend) {
    let rt = runtime();
    let app = rt.block_on(spawn_app(backend));
    let user = rt.block_on(app.new_user());
    let stored: std::sync::Mutex<Option<(f64, f64)>> = std::sync::Mutex::new(None);
    proptest!(cases(100), |(lat in -120.0f64..120.0, lon in -220.0f64..220.0)| {
        rt.block_on(async {
            let res = place(&app, &user, (lat, lon)).await;
            let valid = (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon);
            if valid {
                res.data("updateLocation");
                *stored.lock().expect("lock") = Some((lat, lon));
            } else {
                prop_assert_eq!(res.error_code(), "BAD_USER_INPUT");
            }
            let me = app.gql(user.token(), "{ me { location { latitude longitude } } }", json!({})).await;
            let loc = &me.data("me")["location"];
            let last = *stored.lock().expect("lock");
            match last {
                Some((a, o)) => prop_assert_eq!(loc.clone(), json!({ "latitude": a, "longitude": o })),
                None => prop_assert!(loc.is_null()),
            }
            Ok(())
        })?;
    });
}

both_backends!(blocking: update_location_validates, discovery_excludes_acted_on_profiles, matches_are_mutual_and_unique, like_and_pass_are_idempotent, unmatch_cascades);
both_backends!(worker_threads = 4: simultaneous_likes_make_exactly_one_match);
#[derive(Debug, Clone, Copy)]
enum Action {
    Like,
    Pass,
    Block,
}

/// Over random action sequences: whatever a searcher liked, passed or blocked
/// never appears in their recommendations.
fn discovery_excludes_acted_on_profiles(backend: Backend) {
    let rt = runtime();
    let app = rt.block_on(spawn_app(backend));
    let pool: Vec<Session> = rt.block_on(async {
        let mut pool = Vec::new();
        for i in 0..6 {
            pool.push(
                dog_at(
                    &app,
                    &format!("Pool {i}"),
                    north_of(BERLIN, 1.0 + f64::from(i)),
                )
                .await,
            );
        }
        pool
    });
    let action = prop_oneof![Just(Action::Like), Just(Action::Pass), Just(Action::Block)];
    proptest!(cases(100), |(actions in prop::collection::vec((action, 0usize..6), 0..8))| {
        rt.block_on(async {
            // A searcher browses with a complete profile, paused so that the searchers of
            // later cases do not find this one.
            let me = app.new_user().await;
            app.complete_profile(&me, "Searcher").await;
            app.gql(me.token(), "mutation { pauseProfile(paused: true) { isPaused } }", json!({}))
                .await
                .data("pauseProfile");
            place(&app, &me, BERLIN).await.data("updateLocation");
            let mut acted = std::collections::HashSet::new();
            // Warm the cache first, so later reads exercise the cached-list filter too.
            all_recs(&app, &me).await;
            for (i, (action, target)) in actions.iter().enumerate() {
                let target = &pool[*target];
                let op = match action { Action::Like => "like", Action::Pass => "pass", Action::Block => "block" };
                if matches!(action, Action::Like) {
                    like(&app, &me, target.user_id).await;
                } else {
                    act(&app, &me, op, target.user_id).await;
                }
                acted.insert(target.user_id);
                if i % 3 == 2 {
                    let found = all_recs(&app, &me).await;
                    prop_assert!(found.iter().all(|id| !acted.contains(id)), "acted-on profile recommended");
                }
            }
            let found = all_recs(&app, &me).await;
            prop_assert!(found.iter().all(|id| !acted.contains(id)));
            prop_assert_eq!(found.len(), pool.len() - acted.len(), "everyone else is still there");
            Ok(())
        })?;
    });
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    match &app.db {
        Db::Postgres(pool) => sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await
            .expect("query"),
        Db::Sqlite(pool) => sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await
            .expect("query"),
    }
}

#[derive(Debug, Clone, Copy)]
enum PairOp {
    Like(usize, usize),
    Unlike(usize, usize),
    Block(usize, usize),
    Unblock(usize, usize),
    Unmatch(usize),
}

/// Properties 5 and 6 over random sequences of likes, unlikes, blocks and unmatches among four
/// dogs: every match rests on two likes, and no pair ever has more than one match.
fn matches_are_mutual_and_unique(backend: Backend) {
    let rt = runtime();
    let app = rt.block_on(spawn_app(backend));
    let dogs: Vec<Session> = rt.block_on(async {
        let mut v = Vec::new();
        for i in 0..4 {
            v.push(dog_at(&app, &format!("Dog {i}"), north_of(BERLIN, f64::from(i))).await);
        }
        v
    });
    let op = prop_oneof![
        5 => (0usize..4, 0usize..4).prop_map(|(a, b)| PairOp::Like(a, b)),
        1 => (0usize..4, 0usize..4).prop_map(|(a, b)| PairOp::Unlike(a, b)),
        1 => (0usize..4, 0usize..4).prop_map(|(a, b)| PairOp::Block(a, b)),
        1 => (0usize..4, 0usize..4).prop_map(|(a, b)| PairOp::Unblock(a, b)),
        1 => (0usize..4).prop_map(PairOp::Unmatch),
    ];
    proptest!(cases(100), |(ops in prop::collection::vec(op, 1..10))| {
        rt.block_on(async {
            for op in ops {
                match op {
                    PairOp::Like(a, b) if a != b => { like(&app, &dogs[a], dogs[b].user_id).await; }
                    PairOp::Unlike(a, b) if a != b => { act(&app, &dogs[a], "unlike", dogs[b].user_id).await; }
                    PairOp::Block(a, b) if a != b => { act(&app, &dogs[a], "block", dogs[b].user_id).await; }
                    PairOp::Unblock(a, b) if a != b => { act(&app, &dogs[a], "unblock", dogs[b].user_id).await; }
                    PairOp::Unmatch(a) => {
                        let res = app.gql(dogs[a].token(), "{ matches { edges { node { id } } } }", json!({})).await;
                        if let Some(id) = res.data("matches")["edges"][0]["node"]["id"].as_str() {
                            app.unmatch(&dogs[a], &id).await.data("unmatch");
                        }
                    }
                    _ => {}
                }
                let unmutual = scalar(&app, "SELECT COUNT(*) FROM matches m WHERE
                    NOT EXISTS (SELECT 1 FROM likes WHERE user_id = m.user_a AND target_id = m.user_b)
                    OR NOT EXISTS (SELECT 1 FROM likes WHERE user_id = m.user_b AND target_id = m.user_a)").await;
                prop_assert_eq!(unmutual, 0, "a match without both likes");
                let duplicated = scalar(&app, "SELECT COUNT(*) FROM (SELECT 1 FROM matches GROUP BY user_a, user_b HAVING COUNT(*) > 1) d").await;
                prop_assert_eq!(duplicated, 0, "two matches for one pair");
                let blocked = scalar(&app, "SELECT COUNT(*) FROM matches m JOIN blocks b
                    ON (b.blocker_id = m.user_a AND b.blocked_id = m.user_b) OR (b.blocker_id = m.user_b AND b.blocked_id = m.user_a)").await;
                prop_assert_eq!(blocked, 0, "a match survived a block");
            }
            Ok(())
        })?;
    });
}

/// Liking or passing the same profile several times has the effect of once.
fn like_and_pass_are_idempotent(backend: Backend) {
    let rt = runtime();
    let app = rt.block_on(spawn_app(backend));
    let (me, pool) = rt.block_on(async {
        let me = dog_at(&app, "Me", BERLIN).await;
        let mut pool = Vec::new();
        for i in 0..5 {
            pool.push(dog_at(&app, &format!("Pool {i}"), north_of(BERLIN, 1.0)).await);
        }
        (me, pool)
    });
    proptest!(cases(100), |(target in 0usize..5, times in 1usize..4, pass in any::<bool>())| {
        rt.block_on(async {
            let t = pool[target].user_id;
            let op = if pass { "pass" } else { "like" };
            let mut answers = Vec::new();
            for _ in 0..times {
                let res = if pass { act(&app, &me, "pass", t).await } else { like(&app, &me, t).await };
                answers.push(res.data(op).clone());
            }
            prop_assert!(answers.windows(2).all(|w| w[0] == w[1]), "same answer every time");
            let table = if pass { "passes" } else { "likes" };
            let count = scalar(&app, &format!("SELECT COUNT(*) FROM {table} WHERE {}", pair_filter(&app, me.user_id, t))).await;
            prop_assert_eq!(count, 1);
            Ok(())
        })?;
    });
}

fn pair_filter(app: &TestApp, a: Uuid, b: Uuid) -> String {
    match app.backend {
        Backend::Postgres => format!("user_id = '{a}' AND target_id = '{b}'"),
        Backend::Sqlite => format!(
            "user_id = X'{}' AND target_id = X'{}'",
            a.simple(),
            b.simple()
        ),
    }
}

/// Unmatching deletes the match and its conversation (so no more messages), for
/// either side, every time.
fn unmatch_cascades(backend: Backend) {
    let rt = runtime();
    let app = rt.block_on(spawn_app(backend));
    let pair = rt.block_on(async {
        [
            dog_at(&app, "Rex", BERLIN).await,
            dog_at(&app, "Bella", north_of(BERLIN, 1.0)).await,
        ]
    });
    proptest!(cases(100), |(first in 0usize..2, unmatcher in 0usize..2)| {
        rt.block_on(async {
            let (a, b) = (&pair[first], &pair[1 - first]);
            like(&app, a, b.user_id).await.data("like");
            let res = like(&app, b, a.user_id).await;
            let m = res.data("like")["match"].clone();
            prop_assert_eq!(scalar(&app, "SELECT COUNT(*) FROM matches").await, 1);
            prop_assert_eq!(scalar(&app, "SELECT COUNT(*) FROM conversations").await, 1);
            let res = app.unmatch(&pair[unmatcher], &m["id"]).await;
            res.data("unmatch");
            prop_assert_eq!(scalar(&app, "SELECT COUNT(*) FROM matches").await, 0);
            prop_assert_eq!(scalar(&app, "SELECT COUNT(*) FROM conversations").await, 0);
            for s in &pair {
                let res = app.gql(s.token(), "{ matches { edges { node { id } } } }", json!({})).await;
                prop_assert_eq!(res.data("matches")["edges"].as_array().map(Vec::len), Some(0));
            }
            Ok(())
        })?;
    });
}

/// Two people liking each other at the same instant get exactly one match.
async fn simultaneous_likes_make_exactly_one_match(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 0..10 {
        let a = dog_at(&app, &format!("A{i}"), BERLIN).await;
        let b = dog_at(&app, &format!("B{i}"), north_of(BERLIN, 1.0)).await;
        let (ra, rb) = tokio::join!(like(&app, &a, b.user_id), like(&app, &b, a.user_id));
        let (ma, mb) = (ra.data("like").clone(), rb.data("like").clone());
        assert!(ma["isMatch"] == true || mb["isMatch"] == true, "{ma} {mb}");
        if ma["isMatch"] == true && mb["isMatch"] == true {
            assert_eq!(
                ma["match"]["id"], mb["match"]["id"],
                "one match, seen by both"
            );
        }
        assert_eq!(app.count("matches").await, i + 1);
        assert_eq!(app.count("conversations").await, i + 1);
    }
}

/// The candidate query can use the GiST index on the grid points (no geometry/geography cast
/// defeats it): with sequential scans discouraged, the plan names the index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_candidate_query_uses_the_gist_index() {
    let app = spawn_app(Backend::Postgres).await;
    let Db::Postgres(pool) = &app.db else {
        unreachable!("postgres")
    };
    let mut conn = pool.acquire().await.expect("conn");
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .expect("set");
    let plan: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "EXPLAIN {}",
        pupmatch::discovery::store::CANDIDATES_SQL
    )))
    .bind(Uuid::now_v7())
    .bind(BERLIN.0)
    .bind(BERLIN.1)
    .bind(50_000.0f64)
    .bind(0i32)
    .bind(30i32)
    .bind(Some(3i32))
    .bind(50.0f64)
    .bind(500i64)
    .bind(true)
    .fetch_all(&mut *conn)
    .await
    .expect("explain");
    let text: String = plan.into_iter().map(|(l,)| l + "\n").collect();
    assert!(text.contains("locations_grid_geog_gist"), "{text}");
}
