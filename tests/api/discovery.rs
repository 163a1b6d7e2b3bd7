//! Location, recommendations, likes, matches, blocks and reports, on both backends.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::people::{
    BERLIN, act, all_recs, dog_at, dogs_north, like, north_of, place, recs, user_ids,
};
use crate::helpers::{Backend, GqlResponse, Session, TestApp, spawn_app};

async fn set_prefs(app: &TestApp, user: &Session, input: Value) {
    app.gql(
        user.token(),
        "mutation($i: PreferencesInput!) { updatePreferences(input: $i) { minAge } }",
        json!({ "i": input }),
    )
    .await
    .data("updatePreferences");
}

both_backends!(
    two_nearby_dogs_find_each_other_like_each_other_and_match,
    recommendations_exclude_everyone_they_should,
    distances_are_whole_rounded_and_in_the_viewers_unit,
    scores_and_cursors_tell_nothing_finer_than_the_rounded_score,
    pages_have_no_duplicates_and_no_gaps,
    a_cached_list_is_filtered_against_newer_actions,
    swiping_does_not_recompute_ones_own_list,
    requests_at_once_compute_one_list,
    undo_pass_brings_back_the_most_recent_pass,
    a_like_replaces_a_pass_and_a_pass_a_like,
    likes_at_once_each_get_their_own_answer,
    a_like_that_fails_fails_alone,
    blocking_hides_both_ways_and_ends_the_match,
    reporting_stores_the_reason_and_hides_the_person,
    unmatching_ends_the_match_and_its_conversation,
    bad_discovery_input_changes_nothing,
);

async fn two_nearby_dogs_find_each_other_like_each_other_and_match(backend: Backend) {
    let app = spawn_app(backend).await;
    let rex = dog_at(&app, "Rex", BERLIN).await;
    let bella = dog_at(&app, "Bella", north_of(BERLIN, 3.0)).await;

    let found = all_recs(&app, &rex).await;
    assert_eq!(found, vec![bella.user_id]);
    let res = recs(&app, &rex, 10, None).await;
    let node = &res.data("recommendations")["edges"][0]["node"];
    let score = node["score"].as_f64().expect("score");
    assert!((0.0..=1.0).contains(&score));
    assert_eq!(node["distanceUnit"], "KILOMETERS");
    assert!(!res.body.to_string().contains("latitude"));

    let first = like(&app, &rex, bella.user_id).await;
    assert_eq!(
        *first.data("like"),
        json!({ "isMatch": false, "match": null })
    );
    let count = app
        .gql(bella.token(), "{ likesReceivedCount }", json!({}))
        .await;
    assert_eq!(*count.data("likesReceivedCount"), json!(1));
    let seen = recs(&app, &bella, 10, None).await;
    assert_eq!(
        seen.data("recommendations")["edges"][0]["node"]["likedYou"],
        true
    );

    let second = like(&app, &bella, rex.user_id).await;
    let result = second.data("like");
    assert_eq!(result["isMatch"], true);
    assert_eq!(
        result["match"]["profile"]["userId"],
        rex.user_id.to_string()
    );
    assert_eq!(app.count("matches").await, 1);
    assert_eq!(app.count("conversations").await, 1);
    for (me, other) in [(&rex, &bella), (&bella, &rex)] {
        let res = app
            .gql(me.token(), "{ matches { edges { node { id conversationId profile { userId } } } pageInfo { hasNextPage } } }", json!({}))
            .await;
        let edges = res.data("matches")["edges"]
            .as_array()
            .expect("edges")
            .clone();
        assert_eq!(edges.len(), 1);
        assert_eq!(
            edges[0]["node"]["profile"]["userId"],
            other.user_id.to_string()
        );
        assert_eq!(edges[0]["node"]["id"], result["match"]["id"]);
        assert!(
            all_recs(&app, me).await.is_empty(),
            "matched people leave discovery"
        );
    }
    let count = app
        .gql(bella.token(), "{ likesReceivedCount }", json!({}))
        .await;
    assert_eq!(*count.data("likesReceivedCount"), json!(0));
}

async fn recommendations_exclude_everyone_they_should(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    set_prefs(
        &app,
        &me,
        json!({ "maxDistance": 15, "minAge": 2, "maxAge": 10 }),
    )
    .await;
    let visible = dog_at(&app, "Visible", north_of(BERLIN, 2.0)).await;
    let liked = dog_at(&app, "Liked", north_of(BERLIN, 2.0)).await;
    let passed = dog_at(&app, "Passed", north_of(BERLIN, 2.0)).await;
    let blocked = dog_at(&app, "Blocked", north_of(BERLIN, 2.0)).await;
    let blocker = dog_at(&app, "Blocker", north_of(BERLIN, 2.0)).await;
    let paused = dog_at(&app, "Paused", north_of(BERLIN, 2.0)).await;
    let far = dog_at(&app, "Far", north_of(BERLIN, 30.0)).await;
    let picky = dog_at(&app, "Picky", north_of(BERLIN, 8.0)).await;
    set_prefs(&app, &picky, json!({ "maxDistance": 5 })).await;
    let too_old = app.new_user().await;
    app.gql(too_old.token(), "mutation { createProfile(input: {name: \"Old\", age: 12, bio: \"\", activityLevel: LOW}) { id } }", json!({})).await.data("createProfile");
    app.upload_jpeg(&too_old).await;
    app.upload_jpeg(&too_old).await;
    place(&app, &too_old, north_of(BERLIN, 2.0))
        .await
        .data("updateLocation");
    let wants_older = dog_at(&app, "WantsOlder", north_of(BERLIN, 2.0)).await;
    set_prefs(&app, &wants_older, json!({ "minAge": 5 })).await; // `me` is 3
    let incomplete = app.new_user().await;
    app.create_profile(&incomplete, "OnePhoto")
        .await
        .data("createProfile");
    app.upload_jpeg(&incomplete).await;
    place(&app, &incomplete, north_of(BERLIN, 2.0))
        .await
        .data("updateLocation");
    let nowhere = app.new_user().await;
    app.complete_profile(&nowhere, "NoLocation").await;

    like(&app, &me, liked.user_id).await.data("like");
    act(&app, &me, "pass", passed.user_id).await.data("pass");
    act(&app, &me, "block", blocked.user_id).await.data("block");
    act(&app, &blocker, "block", me.user_id).await.data("block");
    app.gql(
        paused.token(),
        "mutation { pauseProfile(paused: true) { id } }",
        json!({}),
    )
    .await
    .data("pauseProfile");

    let found = all_recs(&app, &me).await;
    assert_eq!(found, vec![visible.user_id], "got {found:?}");
    let _ = far;
}

async fn distances_are_whole_rounded_and_in_the_viewers_unit(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    let near = dog_at(&app, "Near", north_of(BERLIN, 0.05)).await;
    let mid = dog_at(&app, "Mid", north_of(BERLIN, 16.1)).await;
    let _ = (near, mid);
    let distances = |res: &GqlResponse| -> Vec<i64> {
        let mut d: Vec<i64> = res.data("recommendations")["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["distance"].as_i64().expect("int"))
            .collect();
        d.sort();
        d
    };
    let km = distances(&recs(&app, &me, 10, None).await);
    assert_eq!(km[0], 1, "never below 1");
    assert!((15..=17).contains(&km[1]), "{km:?}");
    set_prefs(&app, &me, json!({ "distanceUnit": "MILES" })).await;
    let res = recs(&app, &me, 10, None).await;
    assert_eq!(
        res.data("recommendations")["edges"][0]["node"]["distanceUnit"],
        "MILES"
    );
    let miles = distances(&res);
    assert_eq!(miles[0], 1);
    assert!((9..=11).contains(&miles[1]), "{miles:?}");
}

/// The attack: change your radius again and again and solve the distance term
/// `0.25·e^(−2d/r)` of a person's score (or of the score carried in a cursor) for their exact
/// distance. Served scores are in steps of 0.1, and a cursor is a sealed function of the
/// ranking score (in hundredths) and the person: it changes far less often than the radius.
async fn scores_and_cursors_tell_nothing_finer_than_the_rounded_score(backend: Backend) {
    use base64::Engine;
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    let victim = dog_at(&app, "Victim", north_of(BERLIN, 3.3)).await;
    let mut seen: std::collections::BTreeMap<i64, std::collections::BTreeSet<String>> =
        Default::default();
    let radii: Vec<f64> = (0..=40).map(|i| 300.0 + 5.0 * f64::from(i)).collect();
    for radius in &radii {
        set_prefs(&app, &me, json!({ "maxDistance": radius })).await;
        let res = recs(&app, &me, 1, None).await;
        let edge = &res.data("recommendations")["edges"][0];
        assert_eq!(
            edge["node"]["profile"]["userId"],
            victim.user_id.to_string()
        );
        let score = edge["node"]["score"].as_f64().expect("score");
        let tenths = (score * 10.0).round();
        assert!(
            (score * 10.0 - tenths).abs() < 1e-9,
            "served score {score} is in steps of 0.1"
        );
        let cursor = edge["cursor"].as_str().expect("cursor").to_string();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&cursor)
            .expect("base64");
        assert!(
            !bytes
                .windows(16)
                .any(|w| w == victim.user_id.as_bytes().as_slice()),
            "the cursor does not carry the person's id in clear"
        );
        seen.entry(tenths as i64).or_default().insert(cursor);
    }
    // Over this sweep the exact score changes at every step; the served one and the cursor
    // rarely.
    assert!(seen.len() < radii.len() / 4, "{seen:?}");
    let cursors: usize = seen.values().map(std::collections::BTreeSet::len).sum();
    assert!(cursors < radii.len() / 4, "{seen:?}");
    // A cursor made by the client (the exact score's bits and an id) is refused, as is a
    // tampered one.
    let mut forged = 0.2345_f64.to_bits().to_be_bytes().to_vec();
    forged.extend_from_slice(victim.user_id.as_bytes());
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
    let res = recs(&app, &me, 1, Some(&forged)).await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    let real = seen
        .values()
        .next()
        .and_then(|c| c.first())
        .expect("a cursor");
    let mut tampered = real.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let res = recs(&app, &me, 1, Some(&tampered)).await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    // A real cursor still pages on.
    let res = recs(&app, &me, 1, Some(real)).await;
    assert_eq!(
        res.data("recommendations")["edges"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}

async fn pages_have_no_duplicates_and_no_gaps(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    let mut expected = Vec::new();
    for i in 0..23 {
        let dog = dog_at(
            &app,
            &format!("Dog {i}"),
            north_of(BERLIN, 0.5 + f64::from(i) * 0.4),
        )
        .await;
        expected.push(dog.user_id);
    }
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let res = recs(&app, &me, 10, after.as_deref()).await;
        let conn = res.data("recommendations").clone();
        let ids: Vec<String> = user_ids(&res).iter().map(Uuid::to_string).collect();
        let scores: Vec<f64> = conn["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"]["score"].as_f64().expect("score"))
            .collect();
        assert!(
            scores.windows(2).all(|w| w[0] >= w[1]),
            "best first: {scores:?}"
        );
        pages.push(ids);
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(String::from);
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 10, 3]
    );
    let mut all: Vec<String> = pages.concat();
    all.sort();
    all.dedup();
    let mut want: Vec<String> = expected.iter().map(Uuid::to_string).collect();
    want.sort();
    assert_eq!(all, want);
    let bad = recs(&app, &me, 10, Some("not-a-cursor")).await;
    assert_eq!(bad.error_code(), "BAD_USER_INPUT");
    for first in [0, -1, 51] {
        assert_eq!(
            recs(&app, &me, first, None).await.error_code(),
            "BAD_USER_INPUT"
        );
    }
}

async fn a_cached_list_is_filtered_against_newer_actions(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    let a = dog_at(&app, "A", north_of(BERLIN, 1.0)).await;
    let b = dog_at(&app, "B", north_of(BERLIN, 2.0)).await;
    assert_eq!(all_recs(&app, &me).await.len(), 2);
    // `a` blocks `me`: `me`'s cached list is not theirs to invalidate, but it is filtered.
    act(&app, &a, "block", me.user_id).await.data("block");
    assert_eq!(all_recs(&app, &me).await, vec![b.user_id]);
}

/// How many recommendation lists this process has computed.
async fn lists_computed(app: &TestApp) -> u64 {
    app.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix("recommendation_lists_computed_total "))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

async fn swiping_does_not_recompute_ones_own_list(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    let mut dogs = Vec::new();
    for i in 0..5 {
        let at = north_of(BERLIN, 1.0 + f64::from(i));
        dogs.push(dog_at(&app, &format!("Dog {i}"), at).await.user_id);
    }
    let start = lists_computed(&app).await;
    assert_eq!(user_ids(&recs(&app, &me, 3, None).await).len(), 3);
    assert_eq!(lists_computed(&app).await, start + 1);

    // A like and a pass: the next page comes from the same list, without either of them.
    like(&app, &me, dogs[0]).await.data("like");
    act(&app, &me, "pass", dogs[1]).await.data("pass");
    let page = user_ids(&recs(&app, &me, 3, None).await);
    assert_eq!(page.len(), 3);
    assert!(
        !page.contains(&dogs[0]) && !page.contains(&dogs[1]),
        "{page:?}"
    );
    assert_eq!(lists_computed(&app).await, start + 1, "no list computed");

    // A page's worth swiped: the list is computed again, with a dog who arrived since.
    let newcomer = dog_at(&app, "Newcomer", north_of(BERLIN, 0.5))
        .await
        .user_id;
    act(&app, &me, "pass", dogs[2]).await.data("pass");
    let mut page = user_ids(&recs(&app, &me, 3, None).await);
    page.sort();
    let mut want = vec![newcomer, dogs[3], dogs[4]];
    want.sort();
    assert_eq!(page, want);
    assert_eq!(lists_computed(&app).await, start + 2);
}

async fn requests_at_once_compute_one_list(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    for i in 0..5 {
        dog_at(
            &app,
            &format!("Dog {i}"),
            north_of(BERLIN, 1.0 + f64::from(i)),
        )
        .await;
    }
    let start = lists_computed(&app).await;
    let pages = futures::future::join_all((0..8).map(|_| recs(&app, &me, 5, None))).await;
    for page in &pages {
        assert_eq!(user_ids(page).len(), 5);
    }
    assert_eq!(
        lists_computed(&app).await,
        start + 1,
        "eight requests at once wait for one computation"
    );
}

async fn undo_pass_brings_back_the_most_recent_pass(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    let a = dog_at(&app, "A", north_of(BERLIN, 1.0)).await;
    let b = dog_at(&app, "B", north_of(BERLIN, 2.0)).await;
    act(&app, &me, "pass", a.user_id).await.data("pass");
    act(&app, &me, "pass", b.user_id).await.data("pass");
    assert!(all_recs(&app, &me).await.is_empty());
    let undo = app
        .gql(
            me.token(),
            "mutation { undoPass { userId name } }",
            json!({}),
        )
        .await;
    assert_eq!(undo.data("undoPass")["userId"], b.user_id.to_string());
    assert_eq!(all_recs(&app, &me).await, vec![b.user_id]);
    app.gql(me.token(), "mutation { undoPass { userId } }", json!({}))
        .await
        .data("undoPass");
    let none = app
        .gql(me.token(), "mutation { undoPass { userId } }", json!({}))
        .await;
    assert!(none.body["data"]["undoPass"].is_null() && none.errors().is_empty());
}

/// Changing one's mind: a like after a pass leaves only the like (the other is notified once),
/// a pass after a like only the pass, and liking again changes nothing.
async fn a_like_replaces_a_pass_and_a_pass_a_like(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    let other = dog_at(&app, "Other", north_of(BERLIN, 1.0)).await;
    let swipes = || async { (app.count("likes").await, app.count("passes").await) };
    act(&app, &me, "pass", other.user_id).await.data("pass");
    assert_eq!(swipes().await, (0, 1));
    like(&app, &me, other.user_id).await.data("like");
    assert_eq!(swipes().await, (1, 0), "the like replaced the pass");
    like(&app, &me, other.user_id).await.data("like");
    assert_eq!(swipes().await, (1, 0));
    assert_eq!(app.count("notifications").await, 1, "one LIKE notification");
    act(&app, &me, "pass", other.user_id).await.data("pass");
    assert_eq!(swipes().await, (0, 1), "the pass replaced the like");
    assert!(all_recs(&app, &me).await.is_empty());
}

async fn match_pair(app: &TestApp) -> (Session, Session, Value) {
    let rex = dog_at(app, "Rex", BERLIN).await;
    let bella = dog_at(app, "Bella", north_of(BERLIN, 1.0)).await;
    like(app, &rex, bella.user_id).await.data("like");
    let res = like(app, &bella, rex.user_id).await;
    let m = res.data("like")["match"].clone();
    (rex, bella, m)
}

/// Likes sent at the same moment (on SQLite, written together in one transaction) each get
/// the answer their own state calls for, and one that is refused changes nothing for the rest.
async fn likes_at_once_each_get_their_own_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let star = dog_at(&app, "Star", BERLIN).await;
    let fans = dogs_north(&app, "Fan", 8, 1.0).await;
    // Star already likes the first four; the fifth has blocked Star.
    for fan in &fans[..4] {
        assert_eq!(
            like(&app, &star, fan.user_id).await.data("like")["isMatch"],
            false
        );
    }
    act(&app, &fans[4], "block", star.user_id)
        .await
        .data("block");
    let no_profile = app.new_user().await;

    // At once: every fan likes Star, Star likes the last two fans back, someone without a
    // profile likes Star, and a fan likes nobody that exists.
    let mut sends = Vec::new();
    for fan in &fans {
        sends.push(like(&app, fan, star.user_id));
    }
    sends.push(like(&app, &star, fans[6].user_id));
    sends.push(like(&app, &star, fans[7].user_id));
    sends.push(like(&app, &no_profile, star.user_id));
    sends.push(like(&app, &fans[0], Uuid::now_v7()));
    let answers = futures::future::join_all(sends).await;

    for (i, answer) in answers[..4].iter().enumerate() {
        let answer = answer.data("like");
        assert_eq!(answer["isMatch"], true, "fan {i}: {answer}");
        assert_eq!(answer["match"]["profile"]["userId"], json!(star.user_id));
    }
    assert_eq!(
        answers[4].error_code(),
        "NOT_FOUND",
        "the fan who blocked Star"
    );
    assert_eq!(answers[5].data("like")["isMatch"], false);
    // Star and fans 6 and 7 liked each other at the same moment: one match each, and one
    // of the two likes made it.
    for (fan, from_star) in [(6, 8), (7, 9)] {
        let theirs = answers[fan].data("like")["isMatch"]
            .as_bool()
            .expect("isMatch");
        let stars = answers[from_star].data("like")["isMatch"]
            .as_bool()
            .expect("isMatch");
        assert!(theirs || stars, "fan {fan}: neither like made the match");
    }
    assert_eq!(answers[10].error_code(), "FORBIDDEN", "no profile");
    assert_eq!(answers[11].error_code(), "NOT_FOUND", "nobody");

    assert_eq!(app.count("matches").await, 6);
    assert_eq!(app.count("conversations").await, 6);
    // Fans 5, 6 and 7's likes, and Star's four earlier ones; not the blocked fan's or the
    // refused ones.
    assert_eq!(app.count("likes").await, 4 + 4 + 3 + 2);
    let matches = app
        .gql(
            star.token(),
            "{ matches(first: 20) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        matches.data("matches")["edges"].as_array().map(Vec::len),
        Some(6)
    );
}

/// A like the database refuses (here a trigger refuses every like of one person) fails on its
/// own: likes written in the same moment, and on SQLite in the same transaction, still land.
async fn a_like_that_fails_fails_alone(backend: Backend) {
    let app = spawn_app(backend).await;
    let refused = dog_at(&app, "Refused", BERLIN).await;
    let star = dog_at(&app, "Star", north_of(BERLIN, 1.0)).await;
    let mut fans = Vec::new();
    for i in 0..4 {
        fans.push(
            dog_at(
                &app,
                &format!("Fan {i}"),
                north_of(BERLIN, 2.0 + f64::from(i)),
            )
            .await,
        );
    }
    match backend {
        Backend::Postgres => {
            app.execute(&format!(
                "CREATE FUNCTION refuse_like() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   IF NEW.target_id = '{}' THEN RAISE EXCEPTION 'refused'; END IF;
                   RETURN NEW;
                 END $$",
                refused.user_id
            ))
            .await;
            app.execute(
                "CREATE TRIGGER refuse_like BEFORE INSERT ON likes
                 FOR EACH ROW EXECUTE FUNCTION refuse_like()",
            )
            .await;
        }
        Backend::Sqlite => {
            app.execute(&format!(
                "CREATE TRIGGER refuse_like BEFORE INSERT ON likes
                 WHEN NEW.target_id = X'{}'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END",
                refused.user_id.simple()
            ))
            .await;
        }
    }
    let mut sends = Vec::new();
    for fan in &fans {
        sends.push(like(&app, fan, refused.user_id));
        sends.push(like(&app, fan, star.user_id));
    }
    let answers = futures::future::join_all(sends).await;
    for pair in answers.chunks(2) {
        assert_eq!(pair[0].error_code(), "INTERNAL", "{:?}", pair[0].body);
        assert_eq!(pair[1].data("like")["isMatch"], false);
    }
    assert_eq!(app.count("likes").await, 4);
    let count = app
        .gql(star.token(), "{ likesReceivedCount }", json!({}))
        .await;
    assert_eq!(*count.data("likesReceivedCount"), json!(4));
}

async fn blocking_hides_both_ways_and_ends_the_match(backend: Backend) {
    let app = spawn_app(backend).await;
    let (rex, bella, _) = match_pair(&app).await;
    act(&app, &rex, "block", bella.user_id).await.data("block");
    assert_eq!(app.count("matches").await, 0);
    assert_eq!(app.count("conversations").await, 0);
    for (a, b) in [(&rex, &bella), (&bella, &rex)] {
        assert!(all_recs(&app, a).await.is_empty());
        let p = app
            .gql(
                a.token(),
                "query($u: UUID!) { profile(userId: $u) { id } }",
                json!({ "u": b.user_id }),
            )
            .await;
        assert_eq!(p.error_code(), "NOT_FOUND");
        assert_eq!(like(&app, a, b.user_id).await.error_code(), "NOT_FOUND");
    }
    // Idempotent.
    act(&app, &rex, "block", bella.user_id).await.data("block");
    assert_eq!(app.count("blocks").await, 1);
    act(&app, &rex, "unblock", bella.user_id)
        .await
        .data("unblock");
    assert_eq!(app.count("blocks").await, 0);
    assert_eq!(all_recs(&app, &rex).await, vec![bella.user_id]);
}

async fn reporting_stores_the_reason_and_hides_the_person(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    let spammer = dog_at(&app, "Spammer", north_of(BERLIN, 1.0)).await;
    let res = app
        .report(&me, &spammer.user_id, "SPAM", Some("  sells kibble  "))
        .await;
    assert_eq!(*res.data("report"), json!(true));
    assert_eq!(app.count("reports").await, 1);
    assert!(all_recs(&app, &me).await.is_empty());
    let long = app
        .report(&me, &spammer.user_id, "OTHER", Some(&"x".repeat(1001)))
        .await;
    assert_eq!(long.error_code(), "BAD_USER_INPUT");
    let bad_reason = app
        .gql(
            me.token(),
            "mutation($u: UUID!) { report(userId: $u, reason: BORING) }",
            json!({ "u": spammer.user_id }),
        )
        .await;
    assert_eq!(bad_reason.error_code(), "BAD_USER_INPUT");
    assert_eq!(app.count("reports").await, 1);
}

async fn unmatching_ends_the_match_and_its_conversation(backend: Backend) {
    let app = spawn_app(backend).await;
    let (rex, bella, m) = match_pair(&app).await;
    let stranger = dog_at(&app, "Stranger", north_of(BERLIN, 1.0)).await;
    let id = m["id"].as_str().expect("id");
    let res = app.unmatch(&stranger, &id).await;
    assert_eq!(res.error_code(), "NOT_FOUND");
    assert_eq!(app.count("matches").await, 1);
    let res = app.unmatch(&bella, &id).await;
    assert_eq!(*res.data("unmatch"), json!(true));
    assert_eq!(app.count("matches").await, 0);
    assert_eq!(app.count("conversations").await, 0);
    let again = app.unmatch(&rex, &id).await;
    assert_eq!(again.error_code(), "NOT_FOUND");
    // Unmatching is final: they leave each other's discovery, and one like alone does not
    // bring the match back; only both liking again does.
    assert!(!all_recs(&app, &rex).await.contains(&bella.user_id));
    assert!(!all_recs(&app, &bella).await.contains(&rex.user_id));
    let res = like(&app, &rex, bella.user_id).await;
    assert_eq!(res.data("like")["isMatch"], false, "{}", res.body);
    assert_eq!(app.count("matches").await, 0);
    let res = like(&app, &bella, rex.user_id).await;
    assert_eq!(res.data("like")["isMatch"], true, "{}", res.body);
}

async fn bad_discovery_input_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    for (lat, lon, field) in [
        (91.0, 0.0, "latitude"),
        (-90.5, 0.0, "latitude"),
        (0.0, -181.0, "longitude"),
        (0.0, 180.01, "longitude"),
    ] {
        let res = place(&app, &me, (lat, lon)).await;
        assert_eq!(res.error_code(), "BAD_USER_INPUT");
        assert_eq!(res.body["errors"][0]["extensions"]["field"], field);
    }
    let nan = app
        .gql(
            me.token(),
            "mutation($a: Float!) { updateLocation(latitude: $a, longitude: 0) }",
            json!({ "a": "NaN" }),
        )
        .await;
    assert_eq!(nan.error_code(), "BAD_USER_INPUT");
    let own = app
        .gql(
            me.token(),
            "{ me { location { latitude longitude } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        own.data("me")["location"],
        json!({ "latitude": BERLIN.0, "longitude": BERLIN.1 })
    );

    let res = like(&app, &me, me.user_id).await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    let res = like(&app, &me, Uuid::now_v7()).await;
    assert_eq!(res.error_code(), "NOT_FOUND");
    assert_eq!(
        act(&app, &me, "pass", me.user_id).await.error_code(),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        act(&app, &me, "pass", Uuid::now_v7()).await.error_code(),
        "NOT_FOUND"
    );
    assert_eq!(
        act(&app, &me, "block", Uuid::now_v7()).await.error_code(),
        "NOT_FOUND"
    );
    let res = app.unmatch(&me, &Uuid::now_v7()).await;
    assert_eq!(res.error_code(), "NOT_FOUND");
    for table in ["likes", "passes", "matches", "blocks"] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
    // Without a profile you cannot like.
    let profileless = app.new_user().await;
    assert_eq!(
        like(&app, &profileless, me.user_id).await.error_code(),
        "FORBIDDEN"
    );
    // Nor can someone without a profile be liked; neither like stores a like or notification.
    assert_eq!(
        like(&app, &me, profileless.user_id).await.error_code(),
        "NOT_FOUND"
    );
    for table in ["likes", "notifications"] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
}

both_backends!(seeded_demo_profiles_are_discoverable);

async fn seeded_demo_profiles_are_discoverable(backend: Backend) {
    let app = spawn_app(backend).await;
    let blobs =
        pupmatch::app::blob_store(&app.config, &app.address.parse().expect("url")).expect("blobs");
    let made = pupmatch::seed::seed(&app.db, blobs, 60)
        .await
        .expect("seeded");
    assert_eq!(made, 60);
    assert_eq!(app.count("profiles").await, 60);
    assert!(app.count("photos").await >= 120);
    // Demo accounts can sign in, and a searcher in Berlin finds Berlin's demo dogs.
    app.login("demo0@pupmatch.example", pupmatch::seed::DEMO_PASSWORD)
        .await
        .data("login");
    let me = app.new_user().await;
    app.gql(me.token(), "mutation { createProfile(input: {name: \"Searcher\", age: 3, bio: \"\", activityLevel: HIGH}) { id } }", json!({}))
        .await
        .data("createProfile");
    // Only a complete profile browses others.
    app.upload_jpeg(&me).await;
    app.upload_jpeg(&me).await;
    set_prefs(&app, &me, json!({ "maxDistance": 50 })).await;
    place(
        &app,
        &me,
        (pupmatch::seed::CITIES[0].1, pupmatch::seed::CITIES[0].2),
    )
    .await
    .data("updateLocation");
    let found = recs(&app, &me, 10, None).await;
    let edges = found.data("recommendations")["edges"]
        .as_array()
        .expect("edges")
        .clone();
    assert!(!edges.is_empty(), "{}", found.body);
    let url = edges[0]["node"]["profile"]["userId"].as_str().expect("id");
    let photo = app
        .gql(
            me.token(),
            "query($u: UUID!) { profile(userId: $u) { photos { url } } }",
            json!({ "u": url }),
        )
        .await;
    let photo_url = photo.data("profile")["photos"][0]["url"]
        .as_str()
        .expect("url")
        .to_string();
    assert_eq!(
        app.client
            .get(&photo_url)
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
    // Seeding again adds more, with new emails.
    let blobs =
        pupmatch::app::blob_store(&app.config, &app.address.parse().expect("url")).expect("blobs");
    pupmatch::seed::seed(&app.db, blobs, 10)
        .await
        .expect("seeded");
    assert_eq!(app.count("profiles").await, 71);
}

/// People at the ends of the map (a pole, the antimeridian) find each other too. (PostGIS's
/// nearest-first index scan on geography can fail there with "index returned tuples in wrong
/// order"; found by the playground property test.)
async fn people_at_the_ends_of_the_map_find_each_other(backend: Backend) {
    let app = spawn_app(backend).await;
    for (here, there) in [
        ((-90.0, 180.0), (-89.99, 179.0)),
        ((0.0, 180.0), (0.0, -179.99)),
        ((89.995, -180.0), (89.99, 0.0)),
    ] {
        let a = dog_at(&app, "Rex", here).await;
        let b = dog_at(&app, "Bella", there).await;
        let found = all_recs(&app, &a).await;
        assert!(
            found.contains(&b.user_id),
            "{here:?} → {there:?}: {found:?}"
        );
        for user in [&a, &b] {
            act(
                &app,
                user,
                "block",
                if user.user_id == a.user_id {
                    b.user_id
                } else {
                    a.user_id
                },
            )
            .await;
        }
    }
}

both_backends!(people_at_the_ends_of_the_map_find_each_other);
