//! Read replicas, against a real streaming replica (`pg_basebackup -R` of the pair's primary,
//! started by scripts/test.sh): reads that may be a moment stale go to it while it is healthy
//! and close enough, a person's own data never does, and a replica that falls behind or stops
//! costs nobody a failed or slow request. These tests pause and stop the one replica, so they
//! run one at a time (`.config/nextest.toml`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::people::names;
use crate::helpers::people::{dog_at, like, recs, user_ids};
use crate::helpers::process::{Alone, runs_alone_elsewhere};
use crate::helpers::{
    Session, TestApp, pg_ctlcluster, pg_database_url, pg_replica_url, primary_db_with_replica,
    spawn_app_on,
};

const BERLIN: (f64, f64) = (52.52, 13.405);

/// An app on a fresh database of the primary, reading from its replica, which may lag
/// `max_lag_ms` at most.
async fn app_with_replica(max_lag_ms: u64) -> TestApp {
    let (db, replica) = primary_db_with_replica().await;
    let app = spawn_app_on(db, |c| {
        c.database_replica_urls = vec![replica.clone()];
        c.database_replica_max_lag = Duration::from_millis(max_lag_ms);
    })
    .await;
    wait_for_replica(&app, "ok").await;
    app
}

/// Waits (up to 20 s) until `/readyz` says the replica is `status`; the body then.
async fn wait_for_replica(app: &TestApp, status: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) = app.readyz().await;
        if body["replicas"][0]["status"] == status {
            assert_eq!(code, 200, "a replica never decides readiness: {body}");
            return body;
        }
        assert!(
            Instant::now() < until,
            "the replica never became {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `sql` on the replica server (as a superuser).
async fn on_replica(sql: &str) -> Value {
    let mut conn = sqlx::PgConnection::connect(&pg_replica_url())
        .await
        .expect("the replica runs (scripts/test.sh starts it)");
    let row: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT to_json(x)::text FROM ({sql}) AS x(v)"
    )))
    .fetch_one(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    serde_json::from_str::<Value>(&row.unwrap_or_default())
        .map(|v| v["v"].clone())
        .unwrap_or(Value::Null)
}

/// Pauses the replica's replay until dropped (then resumes it, also when the test fails).
struct ReplayPaused;

impl ReplayPaused {
    async fn start() -> ReplayPaused {
        on_replica("SELECT pg_wal_replay_pause()").await;
        let until = Instant::now() + Duration::from_secs(10);
        while on_replica("SELECT pg_get_wal_replay_pause_state()").await != "paused" {
            assert!(Instant::now() < until, "replay never paused");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ReplayPaused
    }
}

impl Drop for ReplayPaused {
    fn drop(&mut self) {
        let _ = std::thread::spawn(|| {
            crate::helpers::runtime().block_on(on_replica("SELECT pg_wal_replay_resume()"))
        })
        .join();
    }
}

/// Stops the replica's server until dropped (then starts it again, also when the test fails).
struct ReplicaStopped;

impl ReplicaStopped {
    fn start() -> ReplicaStopped {
        pg_ctlcluster("pupmatch_replica", &["stop", "-m", "fast"]);
        ReplicaStopped
    }
}

impl Drop for ReplicaStopped {
    fn drop(&mut self) {
        pg_ctlcluster("pupmatch_replica", &["start"]);
    }
}

/// Index and sequential scans the replica's own statistics count on the tables discovery,
/// profiles and places read, in the test's database.
async fn replica_scans(app: &TestApp) -> i64 {
    let name = app.config.database_url.rsplit_once('/').expect("path").1;
    let mut conn = sqlx::PgConnection::connect(&pg_database_url(&pg_replica_url(), name))
        .await
        .expect("replica");
    sqlx::query_scalar(
        "SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::bigint
           FROM pg_stat_user_tables
          WHERE relname IN ('profiles', 'locations', 'photos', 'playgrounds')",
    )
    .fetch_one(&mut conn)
    .await
    .expect("replica statistics")
}

/// Waits (up to 10 s: a server publishes its statistics within a second or two) until the
/// replica's scans exceed `before`.
async fn replica_scans_grow(app: &TestApp, before: i64, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let now = replica_scans(app).await;
        if now > before {
            return;
        }
        assert!(
            Instant::now() < until,
            "{what}: the replica's scans stayed at {before}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `db_reads_total{target}` from `/metrics`.
async fn reads_on(app: &TestApp, target: &str) -> f64 {
    let metrics = app.metrics().await;
    let prefix = format!("db_reads_total{{target=\"{target}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

async fn edit_bio(app: &TestApp, user: &Session, bio: &str) {
    app.gql(
        user.token(),
        "mutation($b: String!) { updateProfile(input: { bio: $b }) { bio } }",
        json!({ "b": bio }),
    )
    .await
    .data("updateProfile");
}

async fn nearby_places(app: &TestApp, user: &Session) -> Vec<String> {
    let res = app
        .gql(
            user.token(),
            "query($a: Float!, $o: Float!) { playgroundsNear(latitude: $a, longitude: $o, radius: 5) { name } }",
            json!({ "a": BERLIN.0, "o": BERLIN.1 }),
        )
        .await;
    names(res.data("playgroundsNear"))
}

async fn search_places(app: &TestApp, user: &Session, query: &str) -> Vec<String> {
    let res = app
        .gql(
            user.token(),
            "query($q: String!) { searchPlaygrounds(query: $q) { name } }",
            json!({ "q": query }),
        )
        .await;
    names(res.data("searchPlaygrounds"))
}

async fn add_place(app: &TestApp, user: &Session, name: &str) {
    app.gql(
        user.token(),
        "mutation($i: PlaygroundInput!) { addPlayground(input: $i) { id } }",
        json!({ "i": { "name": name, "description": "Fenced, with water",
                       "latitude": BERLIN.0 + 0.001, "longitude": BERLIN.1 } }),
    )
    .await
    .data("addPlayground");
}

/// North of Berlin by `km`.
fn north(km: f64) -> (f64, f64) {
    (BERLIN.0 + km / 111.2, BERLIN.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_profiles_and_places_are_read_from_a_healthy_replica() {
    if runs_alone_elsewhere(Alone::ReplicaPair) {
        return;
    }
    let app = app_with_replica(2_000).await;
    let viewer = dog_at(&app, "Viewer", north(0.0)).await;
    let others = [
        dog_at(&app, "Near One", north(1.0)).await,
        dog_at(&app, "Near Two", north(2.0)).await,
    ];
    add_place(&app, &viewer, "Volkspark Friedrichshain").await;
    wait_for_replica(&app, "ok").await;
    // Caught up: the replica has everyone.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let before = replica_scans(&app).await;
    let replica_reads = reads_on(&app, "replica").await;
    let served = user_ids(&recs(&app, &viewer, 10, None).await);
    for other in &others {
        assert!(served.contains(&other.user_id), "{served:?}");
    }
    replica_scans_grow(&app, before, "recommendations").await;

    let before = replica_scans(&app).await;
    let res = app
        .gql(
            viewer.token(),
            "query($u: UUID!) { profile(userId: $u) { name } }",
            json!({ "u": others[0].user_id }),
        )
        .await;
    assert_eq!(res.data("profile")["name"], "Near One");
    let places = nearby_places(&app, &viewer).await;
    assert_eq!(places, ["Volkspark Friedrichshain"]);
    let found = search_places(&app, &viewer, "friedrichs").await;
    assert_eq!(found, ["Volkspark Friedrichshain"]);
    replica_scans_grow(&app, before, "profile and places").await;
    assert!(
        reads_on(&app, "replica").await >= replica_reads + 3.0,
        "db_reads_total{{target=\"replica\"}} counts them"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("db_replica_lag_seconds{replica=\"127.0.0.1:"),
        "the lag is exported: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_read_their_own_changes_at_once_while_the_replica_is_behind() {
    if runs_alone_elsewhere(Alone::ReplicaPair) {
        return;
    }
    // A generous maximum lag: the paused replica stays in rotation throughout.
    let app = app_with_replica(120_000).await;
    let alice = dog_at(&app, "Alice", north(0.0)).await;
    let bob = dog_at(&app, "Bob", north(1.0)).await;
    app.introduce(&alice, &bob).await;
    app.introduce(&bob, &alice).await;
    wait_for_replica(&app, "ok").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let paused = ReplayPaused::start().await;
    let replica_reads = reads_on(&app, "replica").await;

    // Her own profile edit.
    edit_bio(&app, &alice, "Chases every ball, twice").await;
    let me = app
        .gql(alice.token(), "{ me { profile { bio } } }", json!({}))
        .await;
    assert_eq!(me.data("me")["profile"]["bio"], "Chases every ball, twice");
    let own = app
        .gql(
            alice.token(),
            "query($u: UUID!) { profile(userId: $u) { bio } }",
            json!({ "u": alice.user_id }),
        )
        .await;
    assert_eq!(own.data("profile")["bio"], "Chases every ball, twice");

    // A new match, on both sides.
    like(&app, &alice, bob.user_id).await.data("like");
    let matched = like(&app, &bob, alice.user_id).await;
    assert_eq!(matched.data("like")["isMatch"], true);
    let conversation = matched.data("like")["match"]["conversationId"].clone();
    for (who, other) in [(&alice, &bob), (&bob, &alice)] {
        let res = app
            .gql(
                who.token(),
                "{ matches { edges { node { profile { userId } } } } }",
                json!({}),
            )
            .await;
        let edges = res.data("matches")["edges"]
            .as_array()
            .expect("edges")
            .clone();
        assert_eq!(edges.len(), 1, "the new match at once: {edges:?}");
        assert_eq!(
            edges[0]["node"]["profile"]["userId"],
            other.user_id.to_string()
        );
    }

    // A new message.
    app.send_message(&bob, &conversation, "Park at five?")
        .await
        .data("sendMessage");
    let res = app
        .gql(
            alice.token(),
            "query($c: UUID!) { messages(conversationId: $c) { edges { node { content } } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(
        res.data("messages")["edges"][0]["node"]["content"],
        "Park at five?"
    );
    let res = app
        .gql(
            alice.token(),
            "{ conversations { edges { node { lastMessage { content } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        res.data("conversations")["edges"][0]["node"]["lastMessage"]["content"],
        "Park at five?"
    );

    // Meanwhile the replica served what may be stale: it was in rotation the whole time.
    let carol = dog_at(&app, "Carol", north(2.0)).await;
    recs(&app, &carol, 10, None).await.data("recommendations");
    assert!(
        reads_on(&app, "replica").await > replica_reads,
        "the paused replica was still serving discovery"
    );
    let (_, body) = app.readyz().await;
    assert_eq!(body["replicas"][0]["status"], "ok", "{body}");
    drop(paused);
}

/// A list computed from a replica that has not yet replayed the reader's latest like may hold
/// the person liked; the page served from it is checked against the primary's swipes, so the
/// reader never sees them again (seeing them, they could pass and end the match).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_just_liked_is_not_recommended_again_from_a_replica_behind() {
    if runs_alone_elsewhere(Alone::ReplicaPair) {
        return;
    }
    let app = app_with_replica(120_000).await;
    let alice = dog_at(&app, "Alice", north(0.0)).await;
    let bob = dog_at(&app, "Bob", north(1.0)).await;
    let carol = dog_at(&app, "Carol", north(2.0)).await;
    wait_for_replica(&app, "ok").await;
    // Everyone, replayed on the replica.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = user_ids(&recs(&app, &alice, 10, None).await);
    assert!(
        seen.contains(&bob.user_id) && seen.contains(&carol.user_id),
        "{seen:?}"
    );

    let paused = ReplayPaused::start().await;
    let replica_reads = reads_on(&app, "replica").await;
    like(&app, &alice, bob.user_id).await.data("like");
    // Her list is computed again (her location moved a little): from the paused replica.
    app.gql(
        alice.token(),
        "mutation($la: Float!, $lo: Float!) { updateLocation(latitude: $la, longitude: $lo) }",
        json!({ "la": north(0.001).0, "lo": north(0.001).1 }),
    )
    .await
    .data("updateLocation");
    let page = user_ids(&recs(&app, &alice, 10, None).await);
    assert!(
        reads_on(&app, "replica").await > replica_reads,
        "the list was read from the paused replica"
    );
    assert!(page.contains(&carol.user_id), "{page:?}");
    assert!(
        !page.contains(&bob.user_id),
        "Bob, whom Alice just liked, is recommended again: {page:?}"
    );
    drop(paused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_further_behind_than_the_maximum_lag_gets_no_reads() {
    if runs_alone_elsewhere(Alone::ReplicaPair) {
        return;
    }
    let app = app_with_replica(300).await;
    let viewer = dog_at(&app, "Viewer", north(0.0)).await;
    wait_for_replica(&app, "ok").await;

    let paused = ReplayPaused::start().await;
    // Discoverable after the replica stopped replaying, longer ago than the maximum lag.
    let newcomer = dog_at(&app, "Newcomer", north(1.0)).await;
    let body = wait_for_replica(&app, "lagging").await;
    assert!(
        body["replicas"][0]["lag_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 300),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let replica_reads = reads_on(&app, "replica").await;
    let served = user_ids(&recs(&app, &viewer, 10, None).await);
    assert!(
        served.contains(&newcomer.user_id),
        "fresh recommendations include someone the lagging replica does not have: {served:?}"
    );
    assert_eq!(
        reads_on(&app, "replica").await,
        replica_reads,
        "no reads went to the lagging replica"
    );

    // Caught up again: back in rotation.
    drop(paused);
    wait_for_replica(&app, "ok").await;
    let latecomer = dog_at(&app, "Latecomer", north(2.0)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let served = user_ids(&recs(&app, &latecomer, 10, None).await);
    assert!(served.contains(&viewer.user_id), "{served:?}");
    assert!(reads_on(&app, "replica").await > replica_reads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_replica_stopped_every_request_succeeds_within_a_second() {
    if runs_alone_elsewhere(Alone::ReplicaPair) {
        return;
    }
    let app = app_with_replica(2_000).await;
    let viewer = dog_at(&app, "Viewer", north(0.0)).await;
    let other = dog_at(&app, "Other", north(1.0)).await;
    app.introduce(&viewer, &other).await;
    add_place(&app, &viewer, "Tempelhofer Feld").await;
    wait_for_replica(&app, "ok").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stopped = ReplicaStopped::start();
    let mut people = Vec::new();
    for i in 0..4 {
        people.push(dog_at(&app, &format!("Walker {i}"), north(2.0 + f64::from(i))).await);
    }
    for person in &people {
        let started = Instant::now();
        let served = user_ids(&recs(&app, person, 10, None).await);
        assert!(served.contains(&viewer.user_id), "{served:?}");
        let places = nearby_places(&app, person).await;
        assert_eq!(places, ["Tempelhofer Feld"]);
        let found = search_places(&app, person, "tempelhof").await;
        assert_eq!(found, ["Tempelhofer Feld"]);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "three reads took {took:?} with the replica stopped"
        );
    }
    let started = Instant::now();
    let res = app
        .gql(
            viewer.token(),
            "query($u: UUID!) { profile(userId: $u) { name } }",
            json!({ "u": people[3].user_id }),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    // Not introduced: the answer is NOT_FOUND, served by the primary all the same.
    assert_eq!(res.error_code(), "NOT_FOUND");
    let body = wait_for_replica(&app, "down").await;
    assert!(body["replicas"][0]["error"].is_string(), "{body}");
    assert_eq!(body["status"], "ready");

    // Started again: the check sees it back, and reads go to it again.
    drop(stopped);
    wait_for_replica(&app, "ok").await;
    let replica_reads = reads_on(&app, "replica").await;
    let latecomer = dog_at(&app, "Latecomer", north(0.5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let served = user_ids(&recs(&app, &latecomer, 10, None).await);
    assert!(served.contains(&viewer.user_id), "{served:?}");
    assert!(reads_on(&app, "replica").await > replica_reads);
}
