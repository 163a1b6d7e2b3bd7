//! Profiles cannot be copied in bulk: a profile answers only the people the app showed it to or
//! connected with its owner; every person a field returns spends the reader's people budget;
//! new profiles viewed and location changes have daily ceilings; and browsing recommendations
//! needs a complete profile of your own (the app's "give to get").

use serde_json::json;
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::people::{
    BERLIN, act, dog_at, dogs_north, like, north_of, place, recs, user_ids,
};
use crate::helpers::{Backend, GqlResponse, Session, TestApp, spawn_app, spawn_app_with};

both_backends!(
    an_account_nobody_can_see_cannot_browse_others,
    a_profile_answers_only_those_it_was_shown_to,
    every_person_returned_spends_the_people_budget,
    new_profiles_viewed_have_a_daily_ceiling,
    location_changes_have_a_daily_ceiling,
);

/// `viewer` asks for each of `people`'s profiles by id, in one request (aliased fields).
async fn profiles_by_id(app: &TestApp, viewer: &Session, people: &[Uuid]) -> GqlResponse {
    let fields: String = people
        .iter()
        .enumerate()
        .map(|(i, id)| format!("p{i}: profile(userId: \"{id}\") {{ userId name bio }} "))
        .collect();
    app.gql(viewer.token(), &format!("{{ {fields} }}"), json!({}))
        .await
}

/// The ids of the profiles a [`profiles_by_id`] answer holds.
fn answered(res: &GqlResponse) -> Vec<Uuid> {
    res.body["data"]
        .as_object()
        .map(|fields| {
            fields
                .values()
                .filter_map(|p| p["userId"].as_str())
                .map(|id| id.parse().expect("uuid"))
                .collect()
        })
        .unwrap_or_default()
}

async fn a_profile_answers_only_those_it_was_shown_to(backend: Backend) {
    let app = spawn_app(backend).await;
    // Complete profiles far from the scraper, whose ids it learned somewhere.
    let far = dogs_north(&app, "Far", 5, 400.0).await;
    let near = dog_at(&app, "Near", north_of(BERLIN, 1.0)).await;
    let scraper = dog_at(&app, "Scraper", BERLIN).await;
    let far_ids: Vec<Uuid> = far.iter().map(|s| s.user_id).collect();
    let res = profiles_by_id(&app, &scraper, &far_ids).await;
    assert!(answered(&res).is_empty(), "{}", res.body);
    assert!(
        res.errors()
            .iter()
            .all(|e| e["extensions"]["code"] == "NOT_FOUND"),
        "{}",
        res.body
    );
    assert!(!res.body.to_string().contains("Far 0"), "{}", res.body);
    // Someone served in their recommendations is readable.
    assert_eq!(
        profiles_by_id(&app, &scraper, &[near.user_id])
            .await
            .error_code(),
        "NOT_FOUND"
    );
    assert!(user_ids(&recs(&app, &scraper, 10, None).await).contains(&near.user_id));
    assert_eq!(
        answered(&profiles_by_id(&app, &scraper, &[near.user_id]).await),
        vec![near.user_id]
    );
    // Someone who liked them is readable (the likes they were told about).
    like(&app, &far[0], scraper.user_id).await.data("like");
    assert_eq!(
        answered(&profiles_by_id(&app, &scraper, &far_ids).await),
        vec![far[0].user_id]
    );
    // Paused: only a match still sees it.
    like(&app, &scraper, far[0].user_id).await.data("like");
    for paused in [&near, &far[0]] {
        app.gql(
            paused.token(),
            "mutation { pauseProfile(paused: true) { isPaused } }",
            json!({}),
        )
        .await
        .data("pauseProfile");
    }
    let res = profiles_by_id(&app, &scraper, &[near.user_id, far[0].user_id]).await;
    assert_eq!(answered(&res), vec![far[0].user_id], "{}", res.body);
    // An unmatch ends the connection.
    let matches = app
        .gql(
            scraper.token(),
            "{ matches { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let match_id = matches.data("matches")["edges"][0]["node"]["id"].clone();
    app.gql(
        scraper.token(),
        "mutation($m: UUID!) { unmatch(matchId: $m) }",
        json!({ "m": match_id }),
    )
    .await
    .data("unmatch");
    let res = profiles_by_id(&app, &scraper, &[far[0].user_id]).await;
    assert_eq!(res.error_code(), "NOT_FOUND", "{}", res.body);
    // Blocking ends an introduction too.
    for paused in [&near] {
        app.gql(
            paused.token(),
            "mutation { pauseProfile(paused: false) { isPaused } }",
            json!({}),
        )
        .await
        .data("pauseProfile");
    }
    assert_eq!(
        answered(&profiles_by_id(&app, &scraper, &[near.user_id]).await),
        vec![near.user_id]
    );
    act(&app, &near, "block", scraper.user_id)
        .await
        .data("block");
    act(&app, &near, "unblock", scraper.user_id)
        .await
        .data("unblock");
    assert_eq!(
        profiles_by_id(&app, &scraper, &[near.user_id])
            .await
            .error_code(),
        "NOT_FOUND"
    );
}

async fn every_person_returned_spends_the_people_budget(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.people_per_min = 12).await;
    let scraper = dog_at(&app, "Scraper", BERLIN).await;
    let people: Vec<Uuid> = dogs_north(&app, "Dog", 8, 1.0)
        .await
        .iter()
        .map(|d| d.user_id)
        .collect();
    // A page of 8 people spends 8 of the 12.
    let page = recs(&app, &scraper, 8, None).await;
    assert_eq!(user_ids(&page).len(), 8, "{}", page.body);
    // Eight aliased profiles in one request cost 8, not 1: only 4 are answered.
    let res = profiles_by_id(&app, &scraper, &people).await;
    assert_eq!(answered(&res).len(), 4, "{}", res.body);
    assert!(
        res.errors()
            .iter()
            .all(|e| e["extensions"]["code"] == "RATE_LIMITED"),
        "{}",
        res.body
    );
    // And the next page finds the budget spent.
    assert_eq!(
        recs(&app, &scraper, 8, None).await.error_code(),
        "RATE_LIMITED"
    );
}

async fn new_profiles_viewed_have_a_daily_ceiling(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.profiles_per_day = 3).await;
    let scraper = dog_at(&app, "Scraper", BERLIN).await;
    dogs_north(&app, "Dog", 5, 1.0).await;
    // Three new people today, however they are asked for.
    let page = recs(&app, &scraper, 10, None).await;
    let first = user_ids(&page);
    assert_eq!(first.len(), 3, "{}", page.body);
    assert_eq!(
        page.data("recommendations")["pageInfo"]["hasNextPage"],
        true
    );
    let after = page.data("recommendations")["pageInfo"]["endCursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    let next = recs(&app, &scraper, 10, Some(&after)).await;
    assert_eq!(next.error_code(), "RATE_LIMITED", "{}", next.body);
    // Room comes back a day after the first of them was shown.
    let wait = next.body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .expect("retryAfter");
    assert!((23 * 3600..=24 * 3600).contains(&wait), "{wait}");
    // The people already shown can be shown again.
    assert_eq!(user_ids(&recs(&app, &scraper, 10, None).await), first);
    assert_eq!(
        answered(&profiles_by_id(&app, &scraper, &first).await).len(),
        3
    );
}

async fn location_changes_have_a_daily_ceiling(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.location_changes_per_day = 3).await;
    let mover = dog_at(&app, "Mover", BERLIN).await; // one change
    for km in [1.0, 2.0] {
        place(&app, &mover, north_of(BERLIN, km))
            .await
            .data("updateLocation");
    }
    let res = place(&app, &mover, north_of(BERLIN, 3.0)).await;
    assert_eq!(res.error_code(), "RATE_LIMITED", "{}", res.body);
}

async fn an_account_nobody_can_see_cannot_browse_others(backend: Backend) {
    let app = spawn_app(backend).await;
    let someone = dog_at(&app, "Someone", north_of(BERLIN, 1.0)).await;
    // A profile without photos (so never shown to anyone), with a location.
    let collector = app.new_user_with_profile("Collector").await;
    place(&app, &collector, BERLIN).await.data("updateLocation");
    let res = recs(&app, &collector, 10, None).await;
    assert_eq!(res.error_code(), "FORBIDDEN", "{}", res.body);
    assert!(
        res.error_message().contains("complete your profile"),
        "{}",
        res.body
    );
    assert!(!res.body.to_string().contains(&someone.user_id.to_string()));
    // One photo is not enough; two are.
    app.upload_jpeg(&collector).await;
    assert_eq!(
        recs(&app, &collector, 10, None).await.error_code(),
        "FORBIDDEN"
    );
    app.upload_jpeg(&collector).await;
    let res = recs(&app, &collector, 10, None).await;
    assert_eq!(
        res.data("recommendations")["edges"][0]["node"]["profile"]["userId"],
        json!(someone.user_id)
    );
}
