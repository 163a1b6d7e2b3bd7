//! One request cannot buy a thousand: each aliased mutation field spends the caller's budget,
//! list fields cost their page size in the complexity limit, and what one person may pile up is
//! capped (10 devices, 200 favourite places, 20 reports a day).

use serde_json::json;

use crate::both_backends;
use crate::helpers::db::uuid_lit;
use crate::helpers::people::{BERLIN, dog_at, north_of};
use crate::helpers::{Backend, Session, TestApp, spawn_app, spawn_app_with};

both_backends!(
    aliased_mutations_each_spend_the_request_budget,
    mutations_inside_a_fragment_each_spend_the_request_budget,
    a_list_costs_its_page_size_in_complexity,
    a_person_keeps_at_most_ten_devices,
    a_person_keeps_at_most_200_favourite_places,
    favourites_made_at_once_stay_within_the_cap,
    a_person_makes_at_most_20_reports_a_day,
);

/// Today's attack: 150 aliased `registerDevice` in one request all ran on a budget of 100.
async fn aliased_mutations_each_spend_the_request_budget(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.user_per_min = 100).await;
    let user = app.new_user().await;
    let batch: String = (0..150)
        .map(|i| {
            format!(
                "d{i}: updateLocation(latitude: {}, longitude: 13.4) ",
                52.0 + f64::from(i) / 1000.0
            )
        })
        .collect();
    let res = app
        .gql(user.token(), &format!("mutation {{ {batch} }}"), json!({}))
        .await;
    assert_eq!(res.status, 429, "{}", res.body);
    let limited = res
        .errors()
        .iter()
        .filter(|e| e["extensions"]["code"] == "RATE_LIMITED")
        .count();
    let done = (0..150)
        .filter(|i| res.body["data"][format!("d{i}")] == json!(true))
        .count();
    // The request paid for its first field; each other field paid for itself. The budget
    // refills continuously (one unit every 0.6 s), so a slow run may earn a unit or two while
    // the 150 fields execute — never the 50 it would take to let the batch through.
    assert!((100..=103).contains(&done), "{done} ran");
    assert_eq!(limited, 150 - done);
    // The budget is spent for the next request too.
    assert_eq!(app.me(user.token()).await.status, 429);
}

/// The same batch, hidden in a fragment at the root of the mutation.
async fn mutations_inside_a_fragment_each_spend_the_request_budget(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.user_per_min = 100).await;
    let user = app.new_user().await;
    let batch: String = (0..150)
        .map(|i| format!("d{i}: updateLocation(latitude: 52.5, longitude: 13.4) "))
        .collect();
    let res = app
        .gql(
            user.token(),
            &format!("mutation {{ ...Batch }} fragment Batch on Mutation {{ {batch} }}"),
            json!({}),
        )
        .await;
    assert_eq!(res.status, 429, "{}", res.body);
    let done = (0..150)
        .filter(|i| res.body["data"][format!("d{i}")] == json!(true))
        .count();
    assert!((100..=103).contains(&done), "{done} ran");
}

async fn a_list_costs_its_page_size_in_complexity(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = dog_at(&app, "Rex", BERLIN).await;
    let one = "recommendations(first: 50) { edges { cursor node { score distance profile { userId name photos { url } } } } }";
    let res = app
        .gql(user.token(), &format!("{{ {one} }}"), json!({}))
        .await;
    assert!(
        res.errors().is_empty(),
        "one full page is fine: {}",
        res.body
    );
    let forty: String = (0..40).map(|i| format!("r{i}: {one} ")).collect();
    let res = app
        .gql(user.token(), &format!("{{ {forty} }}"), json!({}))
        .await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    assert!(
        res.error_message().to_lowercase().contains("complex"),
        "{}",
        res.body
    );
    // Nested lists multiply: every message page of every conversation... and every match's
    // photos and prompts.
    let res = app
        .gql(
            user.token(),
            "{ a: matches(first: 50) { edges { node { profile { photos { url thumbnailUrl } prompts { question answer } } } } }
               b: matches(first: 50) { edges { node { profile { photos { url thumbnailUrl } prompts { question answer } } } } }
               c: matches(first: 50) { edges { node { profile { photos { url thumbnailUrl } prompts { question answer } } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT", "{}", res.body);
}

async fn register_device(
    app: &crate::helpers::TestApp,
    user: &crate::helpers::Session,
    token: &str,
) {
    app.gql(
        user.token(),
        "mutation($t: String!) { registerDevice(token: $t, platform: IOS) }",
        json!({ "t": token }),
    )
    .await
    .data("registerDevice");
}

async fn a_person_keeps_at_most_ten_devices(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    register_device(&app, &other, "someone-elses-phone").await;
    for i in 0..12 {
        register_device(&app, &user, &format!("phone-{i:02}")).await;
    }
    assert_eq!(
        app.count("devices").await,
        11,
        "ten of theirs, one of someone else's"
    );
    // The least recently seen went.
    for gone in ["phone-00", "phone-01"] {
        assert_eq!(
            app.count(&format!("devices WHERE token = '{gone}'")).await,
            0,
            "{gone}"
        );
    }
    // Seeing an old one again keeps it (and drops the now least recent).
    register_device(&app, &user, "phone-02").await;
    register_device(&app, &user, "phone-12").await;
    assert_eq!(app.count("devices WHERE token = 'phone-02'").await, 1);
    assert_eq!(app.count("devices WHERE token = 'phone-03'").await, 0);
    assert_eq!(app.count("devices").await, 11);
}

/// `total` places added by `user` straight into the database, a kilometre apart, the first
/// `kept` of them their favourites.
async fn places_kept(app: &TestApp, user: &Session, total: u32, kept: usize) -> Vec<uuid::Uuid> {
    let ts = "'2026-01-01T00:00:00.000000Z'";
    let u = uuid_lit(app, user.user_id);
    let mut places = Vec::new();
    for i in 0..total {
        let id = uuid::Uuid::now_v7();
        places.push(id);
        let at = north_of(BERLIN, f64::from(i));
        app.execute(&format!(
                "INSERT INTO playgrounds (id, name, name_search, description, latitude, longitude, created_by, created_at) VALUES ({}, 'Park {i}', 'park {i}', '', {}, {}, {u}, {ts})",
                uuid_lit(app, id), at.0, at.1
            ),
        )
        .await;
    }
    let values: Vec<String> = places[..kept]
        .iter()
        .map(|id| format!("({u}, {}, {ts})", uuid_lit(app, *id)))
        .collect();
    app.execute(&format!(
        "INSERT INTO playground_favorites (user_id, playground_id, created_at) VALUES {}",
        values.join(", ")
    ))
    .await;
    places
}

async fn a_person_keeps_at_most_200_favourite_places(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = dog_at(&app, "Rex", BERLIN).await;
    // 200 favourites, then no more.
    let places = places_kept(&app, &user, 201, 200).await;
    let fav = "mutation($p: UUID!) { favoritePlayground(playgroundId: $p) { id } }";
    let res = app
        .gql(user.token(), fav, json!({ "p": places[200] }))
        .await;
    assert_eq!(res.error_code(), "CONFLICT", "{}", res.body);
    let res = app
        .gql(
            user.token(),
            "mutation { addPlayground(input: { name: \"One more\", description: \"\", latitude: 10, longitude: 10 }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(res.error_code(), "CONFLICT");
    assert_eq!(app.count("playground_favorites").await, 200);
    assert_eq!(app.count("playgrounds").await, 201, "nothing added");
    // Favouriting one they already keep is still fine; after removing one there is room.
    app.gql(user.token(), fav, json!({ "p": places[0] }))
        .await
        .data("favoritePlayground");
    app.gql(
        user.token(),
        "mutation($p: UUID!) { removePlayground(playgroundId: $p) }",
        json!({ "p": places[0] }),
    )
    .await
    .data("removePlayground");
    app.gql(user.token(), fav, json!({ "p": places[200] }))
        .await
        .data("favoritePlayground");
}

/// The attack: at 199 favourites, a dozen favourites (and two new places) sent at once each
/// counted 199 and all went in.
async fn favourites_made_at_once_stay_within_the_cap(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = dog_at(&app, "Rex", BERLIN).await;
    let places = places_kept(&app, &user, 211, 199).await;
    let fav = "mutation($p: UUID!) { favoritePlayground(playgroundId: $p) { id } }";
    let add = "mutation($n: String!, $l: Float!) { addPlayground(input: { name: $n, description: \"\", latitude: 10, longitude: $l }) { id } }";
    let mut sends = Vec::new();
    for place in &places[199..] {
        sends.push(app.gql(user.token(), fav, json!({ "p": place })));
    }
    for (i, longitude) in [(1, 10.0), (2, 11.0)] {
        sends.push(app.gql(
            user.token(),
            add,
            json!({ "n": format!("New place {i}"), "l": longitude }),
        ));
    }
    let answers = futures::future::join_all(sends).await;
    let refused = answers
        .iter()
        .filter(|a| {
            a.errors()
                .first()
                .is_some_and(|_| a.error_code() == "CONFLICT")
        })
        .count();
    assert_eq!(refused, answers.len() - 1, "exactly one went in");
    assert_eq!(app.count("playground_favorites").await, 200);
}

async fn a_person_makes_at_most_20_reports_a_day(backend: Backend) {
    let app = spawn_app(backend).await;
    let reporter = app.new_user().await;
    let report = "mutation($u: UUID!) { report(userId: $u, reason: SPAM) }";
    for _ in 0..20 {
        let target = app.new_user().await;
        app.gql(reporter.token(), report, json!({ "u": target.user_id }))
            .await
            .data("report");
    }
    let one_more = app.new_user().await;
    let res = app
        .gql(reporter.token(), report, json!({ "u": one_more.user_id }))
        .await;
    assert_eq!(res.error_code(), "RATE_LIMITED", "{}", res.body);
    assert!(
        res.retry_after.is_some_and(|s| s > 3600),
        "{:?}",
        res.retry_after
    );
    assert_eq!(app.count("reports").await, 20);
    assert_eq!(
        app.count("blocks").await,
        20,
        "the refused report blocked no one"
    );
}
