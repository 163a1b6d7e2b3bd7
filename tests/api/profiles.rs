//! Profiles, prompts and preferences: the happy path, every limit, blocks, and the cache.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, GqlResponse, Session, TestApp, spawn_app};

both_backends!(
    a_complete_profile_is_seen_by_another_user_with_loadable_photos,
    profile_limits_name_the_field_and_store_nothing,
    a_second_profile_conflicts,
    updates_change_only_what_is_given,
    prompts_come_from_the_catalogue_and_replace_in_order,
    bad_prompts_change_nothing,
    preferences_are_validated_and_merged,
    a_paused_profile_says_so,
    a_blocked_person_gets_not_found,
    an_update_is_seen_at_once,
);

const FULL_PROFILE: &str = "query($u: UUID!) { profile(userId: $u) {
    id userId name age bio breed size activityLevel isComplete isPaused createdAt updatedAt
    photos { id url thumbnailUrl order createdAt } prompts { id question answer order } } }";

/// `user`'s profile as `viewer` reads it, `user` having been served to `viewer`.
async fn profile_of(app: &TestApp, viewer: &Session, user: &Session) -> GqlResponse {
    if viewer.user_id != user.user_id {
        app.introduce(viewer, user).await;
    }
    app.gql(viewer.token(), FULL_PROFILE, json!({ "u": user.user_id }))
        .await
}

async fn set_prompts(app: &TestApp, user: &Session, prompts: Value) -> GqlResponse {
    app.gql(
        user.token(),
        "mutation($p: [PromptInput!]!) { setPrompts(prompts: $p) { question answer order } }",
        json!({ "p": prompts }),
    )
    .await
}

async fn update_preferences(app: &TestApp, user: &Session, input: Value) -> GqlResponse {
    app.gql(
        user.token(),
        "mutation($i: PreferencesInput!) { updatePreferences(input: $i) {
            minAge maxAge maxDistance activityLevel distanceUnit } }",
        json!({ "i": input }),
    )
    .await
}

async fn questions(app: &TestApp, user: &Session) -> Vec<String> {
    let res = app
        .gql(user.token(), "{ promptQuestions }", json!({}))
        .await;
    serde_json::from_value(res.data("promptQuestions").clone()).expect("strings")
}

async fn a_complete_profile_is_seen_by_another_user_with_loadable_photos(backend: Backend) {
    let app = spawn_app(backend).await;
    let rex = app.new_user().await;
    let bella = app.new_user().await;
    let created = app.create_profile(&rex, "  Rex ").await;
    assert_eq!(created.data("createProfile")["name"], "Rex");
    assert_eq!(created.data("createProfile")["isComplete"], false);
    app.upload_jpeg(&rex).await;
    let (status, _) = app
        .upload(
            rex.token(),
            crate::helpers::images::png(80, 60),
            "park.png",
            "image/png",
        )
        .await;
    assert_eq!(status, 201);
    let q = questions(&app, &rex).await;
    assert_eq!(q.len(), 20);
    set_prompts(
        &app,
        &rex,
        json!([{ "question": q[0], "answer": "The red ball" }]),
    )
    .await
    .data("setPrompts");
    update_preferences(
        &app,
        &rex,
        json!({ "maxDistance": 25, "minAge": 1, "maxAge": 8 }),
    )
    .await
    .data("updatePreferences");

    let me = app
        .gql(
            rex.token(),
            "{ me { profile { name isComplete photos { order } } preferences { minAge maxAge maxDistance distanceUnit activityLevel } } }",
            json!({}),
        )
        .await;
    let me = me.data("me");
    assert_eq!(me["profile"]["isComplete"], true);
    assert_eq!(
        me["preferences"],
        json!({ "minAge": 1, "maxAge": 8, "maxDistance": 25.0,
        "distanceUnit": "KILOMETERS", "activityLevel": "MEDIUM" })
    );

    let seen = profile_of(&app, &bella, &rex).await;
    let p = seen.data("profile");
    assert_eq!(p["userId"], rex.user_id.to_string());
    assert_eq!(
        (p["name"].as_str(), p["age"].as_i64(), p["breed"].as_str()),
        (Some("Rex"), Some(3), Some("Beagle"))
    );
    assert_eq!(p["size"], "MEDIUM");
    assert_eq!(p["activityLevel"], "HIGH");
    assert_eq!(p["prompts"][0]["answer"], "The red ball");
    let photos = p["photos"].as_array().expect("photos");
    assert_eq!(photos.len(), 2);
    for (i, photo) in photos.iter().enumerate() {
        assert_eq!(photo["order"], i);
        for url in [&photo["url"], &photo["thumbnailUrl"]] {
            let res = app
                .client
                .get(url.as_str().expect("url"))
                .send()
                .await
                .expect("fetch");
            assert_eq!(res.status(), 200, "{url}");
            let bytes = res.bytes().await.expect("bytes");
            let img = image::load_from_memory(&bytes).expect("an image");
            assert!(img.width() > 0);
        }
    }
    // Coordinates never appear on a profile.
    assert!(!seen.body.to_string().contains("latitude"));
}

async fn profile_limits_name_the_field_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let base = json!({ "name": "Rex", "age": 3, "bio": "", "activityLevel": "LOW" });
    let cases = [
        ("name", json!("")),
        ("name", json!("   ")),
        ("name", json!("x".repeat(51))),
        ("age", json!(-1)),
        ("age", json!(31)),
        ("bio", json!("b".repeat(501))),
        ("breed", json!("b".repeat(61))),
    ];
    for (field, value) in cases {
        let mut input = base.clone();
        input[field] = value;
        let res = app
            .gql(
                user.token(),
                "mutation($i: ProfileInput!) { createProfile(input: $i) { id } }",
                json!({ "i": input }),
            )
            .await;
        assert_eq!(res.error_code(), "BAD_USER_INPUT", "{field}");
        assert_eq!(res.body["errors"][0]["extensions"]["field"], field);
    }
    assert_eq!(app.count("profiles").await, 0);
    // The limits themselves are fine.
    let edge = json!({ "name": "x".repeat(50), "age": 30, "bio": "b".repeat(500), "breed": "b".repeat(60), "activityLevel": "LOW" });
    app.gql(
        user.token(),
        "mutation($i: ProfileInput!) { createProfile(input: $i) { id } }",
        json!({ "i": edge }),
    )
    .await
    .data("createProfile");
}

async fn a_second_profile_conflicts(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user_with_profile("Rex").await;
    let again = app.create_profile(&user, "Max").await;
    assert_eq!(again.error_code(), "CONFLICT");
    assert_eq!(
        profile_of(&app, &user, &user).await.data("profile")["name"],
        "Rex"
    );
    // Without a profile, updates are NOT_FOUND.
    let other = app.new_user().await;
    let res = app
        .gql(
            other.token(),
            "mutation { updateProfile(input: {name: \"Max\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(res.error_code(), "NOT_FOUND");
}

async fn updates_change_only_what_is_given(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user_with_profile("Rex").await;
    let res = app
        .gql(
            user.token(),
            "mutation { updateProfile(input: {age: 4, size: LARGE}) { name age breed size bio } }",
            json!({}),
        )
        .await;
    assert_eq!(
        *res.data("updateProfile"),
        json!({ "name": "Rex", "age": 4, "breed": "Beagle", "size": "LARGE", "bio": "Loves the park" })
    );
    let res = app
        .gql(
            user.token(),
            "mutation { updateProfile(input: {breed: null}) { breed name } }",
            json!({}),
        )
        .await;
    assert_eq!(
        *res.data("updateProfile"),
        json!({ "breed": null, "name": "Rex" })
    );
    let bad = app
        .gql(
            user.token(),
            "mutation { updateProfile(input: {name: \"\", age: 5}) { age } }",
            json!({}),
        )
        .await;
    assert_eq!(bad.body["errors"][0]["extensions"]["field"], "name");
    assert_eq!(
        profile_of(&app, &user, &user).await.data("profile")["age"],
        4
    );
}

async fn prompts_come_from_the_catalogue_and_replace_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user_with_profile("Rex").await;
    let q = questions(&app, &user).await;
    let three = json!([
        { "question": q[3], "answer": "Fetch" },
        { "question": q[1], "answer": "x".repeat(300) },
        { "question": q[2], "answer": "  Naps  " },
    ]);
    let res = set_prompts(&app, &user, three).await;
    let stored = res.data("setPrompts").as_array().expect("list");
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0]["question"], q[3]);
    assert_eq!(stored[2]["answer"], "Naps");
    assert_eq!(stored[2]["order"], 2);
    let one = set_prompts(&app, &user, json!([{ "question": q[5], "answer": "Ball" }])).await;
    assert_eq!(one.data("setPrompts").as_array().expect("list").len(), 1);
    let prompts = profile_of(&app, &user, &user).await;
    assert_eq!(prompts.data("profile")["prompts"][0]["question"], q[5]);
    set_prompts(&app, &user, json!([])).await;
    assert_eq!(app.count("prompts").await, 0);
}

async fn bad_prompts_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user_with_profile("Rex").await;
    let q = questions(&app, &user).await;
    set_prompts(&app, &user, json!([{ "question": q[0], "answer": "Ball" }]))
        .await
        .data("setPrompts");
    let cases = [
        (
            "question",
            json!([{ "question": "What is your sign?", "answer": "Leo" }]),
        ),
        ("answer", json!([{ "question": q[0], "answer": "" }])),
        (
            "answer",
            json!([{ "question": q[0], "answer": "a".repeat(301) }]),
        ),
        (
            "prompts",
            json!([
            { "question": q[0], "answer": "a" }, { "question": q[1], "answer": "b" },
            { "question": q[2], "answer": "c" }, { "question": q[3], "answer": "d" }]),
        ),
        (
            "question",
            json!([{ "question": q[0], "answer": "a" }, { "question": q[0], "answer": "b" }]),
        ),
    ];
    for (field, prompts) in cases {
        let res = set_prompts(&app, &user, prompts).await;
        assert_eq!(res.error_code(), "BAD_USER_INPUT");
        assert_eq!(res.body["errors"][0]["extensions"]["field"], field);
    }
    let after = profile_of(&app, &user, &user).await;
    assert_eq!(
        after.data("profile")["prompts"],
        json!([{ "id": after.data("profile")["prompts"][0]["id"], "question": q[0], "answer": "Ball", "order": 0 }])
    );
}

async fn preferences_are_validated_and_merged(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let res = update_preferences(&app, &user, json!({ "minAge": 2 })).await;
    assert_eq!(
        *res.data("updatePreferences"),
        json!({ "minAge": 2, "maxAge": 30, "maxDistance": 50.0, "activityLevel": "MEDIUM", "distanceUnit": "KILOMETERS" })
    );
    let cases = [
        ("minAge", json!({ "minAge": -1 })),
        ("maxAge", json!({ "maxAge": 31 })),
        ("minAge", json!({ "minAge": 10, "maxAge": 5 })),
        ("maxAge", json!({ "maxAge": 1 })),
        ("maxDistance", json!({ "maxDistance": 0 })),
        ("maxDistance", json!({ "maxDistance": -3 })),
        ("maxDistance", json!({ "maxDistance": 501 })),
        (
            "maxDistance",
            json!({ "maxDistance": 311, "distanceUnit": "MILES" }),
        ),
    ];
    for (field, input) in cases {
        let res = update_preferences(&app, &user, input.clone()).await;
        assert_eq!(res.error_code(), "BAD_USER_INPUT", "{input}");
        assert_eq!(
            res.body["errors"][0]["extensions"]["field"], field,
            "{input}"
        );
    }
    let me = app
        .gql(
            user.token(),
            "{ me { preferences { minAge maxAge maxDistance } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me.data("me")["preferences"],
        json!({ "minAge": 2, "maxAge": 30, "maxDistance": 50.0 })
    );
    let res = update_preferences(
        &app,
        &user,
        json!({ "maxDistance": 310, "distanceUnit": "MILES", "activityLevel": "HIGH" }),
    )
    .await;
    assert_eq!(res.data("updatePreferences")["maxDistance"], 310.0);
}

async fn a_paused_profile_says_so(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user_with_profile("Rex").await;
    let res = app
        .gql(
            user.token(),
            "mutation { pauseProfile(paused: true) { isPaused } }",
            json!({}),
        )
        .await;
    assert_eq!(res.data("pauseProfile")["isPaused"], true);
    let res = app
        .gql(
            user.token(),
            "mutation { pauseProfile(paused: false) { isPaused } }",
            json!({}),
        )
        .await;
    assert_eq!(res.data("pauseProfile")["isPaused"], false);
}

async fn a_blocked_person_gets_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let rex = app.new_user().await;
    let bella = app.new_user().await;
    app.complete_profile(&rex, "Rex").await;
    profile_of(&app, &bella, &rex).await.data("profile");
    // Bella has Rex's profile cached by now; the block must still hide it at once.
    crate::helpers::people::act(&app, &rex, "block", bella.user_id)
        .await
        .data("block");
    let res = profile_of(&app, &bella, &rex).await;
    assert_eq!(res.error_code(), "NOT_FOUND");
    assert!(res.body["data"]["profile"].is_null());
    // The owner still sees their own.
    profile_of(&app, &rex, &rex).await.data("profile");
    // A missing profile is NOT_FOUND too, without a token UNAUTHENTICATED.
    assert_eq!(
        profile_of(&app, &rex, &bella).await.error_code(),
        "NOT_FOUND"
    );
    let anon = app
        .gql(None, FULL_PROFILE, json!({ "u": rex.user_id }))
        .await;
    assert_eq!(anon.error_code(), "UNAUTHENTICATED");
}

async fn an_update_is_seen_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let rex = app.new_user().await;
    let bella = app.new_user().await;
    app.complete_profile(&rex, "Rex").await;
    assert_eq!(
        profile_of(&app, &bella, &rex).await.data("profile")["name"],
        "Rex"
    );
    app.gql(
        rex.token(),
        "mutation { updateProfile(input: {name: \"Rex II\"}) { id } }",
        json!({}),
    )
    .await
    .data("updateProfile");
    assert_eq!(
        profile_of(&app, &bella, &rex).await.data("profile")["name"],
        "Rex II"
    );
}

/// Scale-out: each instance has its own L1; an update through one is seen at once through the
/// other, because the invalidation reaches every instance over Redis pub/sub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_through_one_instance_is_seen_at_once_through_another() {
    let a = crate::helpers::spawn_app(Backend::Postgres).await;
    let b = a.spawn_sibling().await;
    let rex = a.new_user().await;
    let bella = a.new_user().await;
    a.complete_profile(&rex, "Rex").await;
    for round in 0..5 {
        // Warm both instances' caches, then change the profile through `a`.
        let name = format!("Rex {round}");
        profile_of(&a, &bella, &rex).await.data("profile");
        profile_of(&b, &bella, &rex).await.data("profile");
        a.gql(
            rex.token(),
            "mutation($n: String!) { updateProfile(input: {name: $n}) { id } }",
            json!({ "n": name }),
        )
        .await
        .data("updateProfile");
        assert_eq!(
            profile_of(&b, &bella, &rex).await.data("profile")["name"],
            name.as_str()
        );
        assert_eq!(
            profile_of(&a, &bella, &rex).await.data("profile")["name"],
            name.as_str()
        );
    }
}
