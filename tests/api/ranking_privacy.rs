//! The ranking tells no one when a person was last online or which parks they saved. The two
//! attacks: the step search (set a fractional radius again and again and watch where the
//! person's served score steps) and the decoy search (rank profiles of your own, alike but for
//! one input, around the person). Both recover the day band of the person's last activity and
//! the places many people save, and nothing finer.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::db::uuid_lit;
use crate::helpers::people::{BERLIN, dog_at, north_of, recs};
use crate::helpers::{Backend, Session, TestApp, spawn_app};

both_backends!(
    the_ranking_tells_the_day_not_the_hour_of_last_activity,
    the_ranking_tells_no_private_spot,
);

/// Where the victim and the decoys live, from the attacker's place.
fn there() -> (f64, f64) {
    north_of(BERLIN, 3.3)
}

async fn set_last_active(app: &TestApp, who: Uuid, at: DateTime<Utc>) {
    app.execute(&format!(
        "UPDATE users SET last_active_at = '{}' WHERE id = {}",
        at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        uuid_lit(app, who)
    ))
    .await;
}

async fn set_radius(app: &TestApp, me: &Session, km: f64) {
    let res = app
        .gql(
            me.token(),
            "mutation($p: PreferencesInput!) { updatePreferences(input: $p) { maxDistance } }",
            json!({ "p": { "maxDistance": km } }),
        )
        .await;
    assert!(res.errors().is_empty(), "{}", res.body);
}

/// What the attacker sees of the victim: the served score at each radius of the sweep, and
/// where the victim ranks among everyone (the decoys included) at the last one.
async fn observe(app: &TestApp, me: &Session, victim: Uuid) -> (Vec<f64>, usize) {
    let mut scores = Vec::new();
    let mut rank = usize::MAX;
    for i in 0..12 {
        set_radius(app, me, 20.0 + 0.37 * f64::from(i)).await;
        let res = recs(app, me, 50, None).await;
        let edges: Vec<Value> = res.data("recommendations")["edges"]
            .as_array()
            .expect("edges")
            .clone();
        rank = edges
            .iter()
            .position(|e| e["node"]["profile"]["userId"] == json!(victim))
            .expect("the victim is recommended");
        scores.push(edges[rank]["node"]["score"].as_f64().expect("score"));
    }
    (scores, rank)
}

async fn the_ranking_tells_the_day_not_the_hour_of_last_activity(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Attacker", BERLIN).await;
    // Decoys made before the victim (so on an equal score they rank first), last active three
    // days ago; the victim, alike in everything but her last activity.
    let now = Utc::now();
    let mut decoys = Vec::new();
    for i in 0..3 {
        let decoy = dog_at(&app, &format!("Decoy{i}"), there()).await;
        set_last_active(&app, decoy.user_id, now - Duration::days(3)).await;
        decoys.push(decoy);
    }
    let victim = dog_at(&app, "Victim", there()).await;

    // Two and four days ago: the same band ("this week"), so the same scores and place.
    set_last_active(&app, victim.user_id, now - Duration::days(2)).await;
    let two_days = observe(&app, &me, victim.user_id).await;
    set_last_active(
        &app,
        victim.user_id,
        now - Duration::days(4) - Duration::hours(5),
    )
    .await;
    let four_days = observe(&app, &me, victim.user_id).await;
    assert_eq!(
        two_days, four_days,
        "the ranking told two and four days ago apart"
    );
    for score in &two_days.0 {
        assert!(
            ((score * 10.0).round() - score * 10.0).abs() < 1e-9,
            "{score}"
        );
    }
    // What it does tell: active today, or not for months (each a band of its own).
    set_last_active(&app, victim.user_id, now).await;
    let today = observe(&app, &me, victim.user_id).await;
    assert!(
        today.1 < two_days.1,
        "today ranks above this week: {today:?} {two_days:?}"
    );
    set_last_active(&app, victim.user_id, now - Duration::days(60)).await;
    let long_ago = observe(&app, &me, victim.user_id).await;
    assert!(
        long_ago.0.iter().sum::<f64>() < two_days.0.iter().sum::<f64>(),
        "two months ago scores lower: {long_ago:?} {two_days:?}"
    );
}

async fn favourite(app: &TestApp, who: &Session, park: &Value) {
    let res = app
        .gql(
            who.token(),
            "mutation($p: UUID!) { favoritePlayground(playgroundId: $p) { id } }",
            json!({ "p": park }),
        )
        .await;
    assert!(res.errors().is_empty(), "{}", res.body);
}

async fn unfavourite(app: &TestApp, who: &Session, park: &Value) {
    let res = app
        .gql(
            who.token(),
            "mutation($p: UUID!) { removePlayground(playgroundId: $p) }",
            json!({ "p": park }),
        )
        .await;
    assert!(res.errors().is_empty(), "{}", res.body);
}

async fn add_park(app: &TestApp, who: &Session, name: &str, at: (f64, f64)) -> Value {
    let res = app
        .gql(
            who.token(),
            "mutation($i: PlaygroundInput!) { addPlayground(input: $i) { id } }",
            json!({ "i": { "name": name, "description": "", "latitude": at.0, "longitude": at.1 } }),
        )
        .await;
    res.data("addPlayground")["id"].clone()
}

async fn the_ranking_tells_no_private_spot(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Attacker", BERLIN).await;
    let mut decoys = Vec::new();
    for i in 0..3 {
        decoys.push(dog_at(&app, &format!("Decoy{i}"), there()).await);
    }
    let victim = dog_at(&app, "Victim", there()).await;
    let now = Utc::now();
    for who in decoys.iter().chain([&victim]) {
        set_last_active(&app, who.user_id, now).await;
    }
    // A quiet corner: the attacker saves it, and so do four accounts made for the purpose;
    // then asks again and again.
    let spot = add_park(&app, &me, "Quiet corner", there()).await;
    for _ in 0..4 {
        favourite(&app, &app.new_user().await, &spot).await;
    }
    let before = observe(&app, &me, victim.user_id).await;
    favourite(&app, &victim, &spot).await;
    let after = observe(&app, &me, victim.user_id).await;
    assert_eq!(
        before, after,
        "the ranking told that she saved the quiet corner"
    );
    unfavourite(&app, &victim, &spot).await;

    // A park five other people with profiles save does count (so the test can see a
    // difference at all). They live far away, out of the attacker's radius.
    let popular = add_park(&app, &me, "Volkspark", there()).await;
    for i in 0..5 {
        let regular = dog_at(&app, &format!("Regular{i}"), north_of(BERLIN, 100.0)).await;
        favourite(&app, &regular, &popular).await;
    }
    let without = observe(&app, &me, victim.user_id).await;
    favourite(&app, &victim, &popular).await;
    let with = observe(&app, &me, victim.user_id).await;
    assert!(
        with.1 < without.1,
        "a popular shared park lifts her: {with:?} {without:?}"
    );
}
