//! Playgrounds: adding (with near-duplicate protection), favourites, radius and name search,
//! sharing into a chat, bad input, and "a place is stored exactly when its coordinates are valid".

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::chat::{matched_pair, messages};
use crate::helpers::people::names;
use crate::helpers::people::{BERLIN, dog_at, north_of};
use crate::helpers::{Backend, Session, TestApp, spawn_app};

const FIELDS: &str = "id name description location { latitude longitude } createdBy favoriteCount isFavorite distance createdAt";

async fn add(
    app: &TestApp,
    user: &Session,
    name: &str,
    at: (f64, f64),
) -> crate::helpers::GqlResponse {
    app.gql(
        user.token(),
        &format!("mutation($i: PlaygroundInput!) {{ addPlayground(input: $i) {{ {FIELDS} }} }}"),
        json!({ "i": { "name": name, "description": "Fenced, with water.", "latitude": at.0, "longitude": at.1 } }),
    )
    .await
}

async fn added(app: &TestApp, user: &Session, name: &str, at: (f64, f64)) -> Value {
    add(app, user, name, at).await.data("addPlayground").clone()
}

async fn near(
    app: &TestApp,
    user: &Session,
    at: (f64, f64),
    radius: f64,
    unit: &str,
) -> crate::helpers::GqlResponse {
    app.gql(
        user.token(),
        &format!("query($a: Float!, $o: Float!, $r: Float!, $u: DistanceUnit) {{ playgroundsNear(latitude: $a, longitude: $o, radius: $r, unit: $u) {{ {FIELDS} }} }}"),
        json!({ "a": at.0, "o": at.1, "r": radius, "u": unit }),
    )
    .await
}

async fn search(app: &TestApp, user: &Session, query: &str) -> crate::helpers::GqlResponse {
    app.gql(
        user.token(),
        &format!("query($q: String!) {{ searchPlaygrounds(query: $q) {{ {FIELDS} }} }}"),
        json!({ "q": query }),
    )
    .await
}

async fn mine(app: &TestApp, user: &Session) -> Value {
    app.gql(
        user.token(),
        &format!("{{ myPlaygrounds {{ {FIELDS} }} }}"),
        json!({}),
    )
    .await
    .data("myPlaygrounds")
    .clone()
}

async fn adding_saves_and_favourites_a_place(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = dog_at(&app, "Rex", BERLIN).await;
    let park = added(
        &app,
        &a,
        "  Volkspark   Friedrichshain ",
        north_of(BERLIN, 2.0),
    )
    .await;
    assert_eq!(
        park["name"], "Volkspark Friedrichshain",
        "whitespace tidied"
    );
    assert_eq!(park["description"], "Fenced, with water.");
    assert_eq!(park["createdBy"], a.user_id.to_string());
    assert_eq!(park["favoriteCount"], 1);
    assert_eq!(park["isFavorite"], true);
    assert_eq!(park["distance"], 2, "km from the viewer, rounded");
    let at = north_of(BERLIN, 2.0);
    assert_eq!(
        park["location"]["latitude"], at.0,
        "places are public, exact"
    );
    assert_eq!(
        names(&mine(&app, &a).await),
        vec!["Volkspark Friedrichshain"]
    );

    // Someone else favourites it: counts go up, it is theirs too; removing is per person.
    let b = app.new_user().await;
    let q = "mutation($p: UUID!) { favoritePlayground(playgroundId: $p) { favoriteCount isFavorite distance } }";
    let fav = app.gql(b.token(), q, json!({ "p": park["id"] })).await;
    assert_eq!(fav.data("favoritePlayground")["favoriteCount"], 2);
    assert_eq!(fav.data("favoritePlayground")["isFavorite"], true);
    assert!(
        fav.data("favoritePlayground")["distance"].is_null(),
        "b has no location"
    );
    // Twice is once.
    let again = app.gql(b.token(), q, json!({ "p": park["id"] })).await;
    assert_eq!(again.data("favoritePlayground")["favoriteCount"], 2);
    assert_eq!(app.count("playground_favorites").await, 2);

    let rm = "mutation($p: UUID!) { removePlayground(playgroundId: $p) }";
    assert_eq!(
        app.gql(a.token(), rm, json!({ "p": park["id"] }))
            .await
            .data("removePlayground"),
        true
    );
    assert_eq!(
        app.gql(a.token(), rm, json!({ "p": park["id"] }))
            .await
            .data("removePlayground"),
        false
    );
    assert!(names(&mine(&app, &a).await).is_empty());
    let theirs = mine(&app, &b).await;
    assert_eq!(names(&theirs), vec!["Volkspark Friedrichshain"]);
    assert_eq!(theirs[0]["favoriteCount"], 1, "the count follows at once");
    assert_eq!(
        app.count("playgrounds").await,
        1,
        "the place stays for everyone"
    );

    // Favouriting a place that does not exist.
    let missing = app
        .gql(b.token(), q, json!({ "p": uuid::Uuid::now_v7() }))
        .await;
    assert_eq!(missing.error_code(), "NOT_FOUND");
}

async fn the_same_place_added_twice_is_one_place(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = dog_at(&app, "Rex", BERLIN).await;
    let b = dog_at(&app, "Bella", BERLIN).await;
    let first = added(&app, &a, "Tempelhofer Feld", BERLIN).await;
    // Same name, different case and accents, 30 m away: the same place.
    let second = added(&app, &b, "tempelhöfer  FELD", north_of(BERLIN, 0.03)).await;
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["name"], "Tempelhofer Feld", "the first name stays");
    assert_eq!(second["favoriteCount"], 2);
    assert_eq!(second["isFavorite"], true);
    // Same name 200 m away, or another name at the same spot: different places.
    let far = added(&app, &b, "Tempelhofer Feld", north_of(BERLIN, 0.2)).await;
    assert_ne!(far["id"], first["id"]);
    let other = added(&app, &b, "Dog corner", BERLIN).await;
    assert_ne!(other["id"], first["id"]);
    assert_eq!(app.count("playgrounds").await, 3);
}

async fn nearby_places_come_nearest_first_within_the_radius(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = dog_at(&app, "Rex", BERLIN).await;
    for (name, km) in [("Five", 5.0), ("One", 1.0), ("Twenty", 20.0), ("Nine", 9.0)] {
        added(&app, &a, name, north_of(BERLIN, km)).await;
    }
    let res = near(&app, &a, BERLIN, 10.0, "KILOMETERS").await;
    assert_eq!(
        names(res.data("playgroundsNear")),
        vec!["One", "Five", "Nine"]
    );
    // 10 miles is 16.1 km; distances shown in the viewer's unit (kilometres by default).
    let res = near(&app, &a, BERLIN, 10.0, "MILES").await;
    assert_eq!(
        names(res.data("playgroundsNear")),
        vec!["One", "Five", "Nine"]
    );
    let res = near(&app, &a, BERLIN, 25.0, "KILOMETERS").await;
    let list = res.data("playgroundsNear");
    assert_eq!(names(list), vec!["One", "Five", "Nine", "Twenty"]);
    assert_eq!(list[3]["distance"], 20);
    // Around another point: ordered from there.
    let res = near(&app, &a, north_of(BERLIN, 20.0), 12.0, "KILOMETERS").await;
    assert_eq!(names(res.data("playgroundsNear")), vec!["Twenty", "Nine"]);
}

async fn name_search_is_fuzzy_with_prefix_matches_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = dog_at(&app, "Rex", BERLIN).await;
    for (i, name) in [
        "Volkspark Hasenheide",
        "Hasenheide Hundeauslauf",
        "Grunewald",
        "Park am Gleisdreieck",
        "Görlitzer Park",
    ]
    .iter()
    .enumerate()
    {
        added(&app, &a, name, north_of(BERLIN, i as f64)).await;
    }
    // Prefix first, then a word starting with it.
    let res = search(&app, &a, "HASEN").await;
    assert_eq!(
        names(res.data("searchPlaygrounds")),
        vec!["Hasenheide Hundeauslauf", "Volkspark Hasenheide"]
    );
    // Accents and case do not matter, both ways.
    let res = search(&app, &a, "gorlitzer").await;
    assert_eq!(names(res.data("searchPlaygrounds")), vec!["Görlitzer Park"]);
    // A typo still finds it.
    let res = search(&app, &a, "grunewlad").await;
    assert_eq!(names(res.data("searchPlaygrounds")), vec!["Grunewald"]);
    // "park": the name starting with it, then names with the word, then the substring.
    let res = search(&app, &a, "park").await;
    assert_eq!(
        names(res.data("searchPlaygrounds")),
        vec![
            "Park am Gleisdreieck",
            "Görlitzer Park",
            "Volkspark Hasenheide"
        ]
    );
    // Nothing like it.
    let res = search(&app, &a, "zzzz").await;
    assert!(names(res.data("searchPlaygrounds")).is_empty());
    // LIKE's wildcards are plain characters here.
    let res = search(&app, &a, "%").await;
    assert!(names(res.data("searchPlaygrounds")).is_empty());
}

async fn sharing_a_place_sends_it_to_both_people_live(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let park = added(&app, &a, "Mauerpark", BERLIN).await;
    let mut wa = app.ws(&a).await;
    let mut wb = app.ws(&b).await;
    let res = app
        .gql(
            a.token(),
            "mutation($c: UUID!, $p: UUID!) { sharePlayground(conversationId: $c, playgroundId: $p) { id kind content playground { id name isFavorite favoriteCount } } }",
            json!({ "c": conversation, "p": park["id"] }),
        )
        .await;
    let sent = res.data("sharePlayground");
    assert_eq!(sent["kind"], "PLAYGROUND");
    assert_eq!(sent["content"], "Mauerpark");
    assert_eq!(sent["playground"]["id"], park["id"]);
    assert_eq!(sent["playground"]["isFavorite"], true, "a saved it");
    for socket in [&mut wa, &mut wb] {
        let frame = socket.recv_type("message").await;
        assert_eq!(frame["message"]["kind"], "PLAYGROUND");
        assert_eq!(frame["message"]["playgroundId"], park["id"]);
    }
    // b reads it in the conversation with the place, as b sees it.
    let res = app
        .gql(
            b.token(),
            "query($c: UUID!) { messages(conversationId: $c) { edges { node { kind playground { name isFavorite } } } } }",
            json!({ "c": conversation }),
        )
        .await;
    let node = &res.data("messages")["edges"][0]["node"];
    assert_eq!(node["playground"]["name"], "Mauerpark");
    assert_eq!(node["playground"]["isFavorite"], false);

    // Not into someone else's conversation, and not a place that does not exist.
    let outsider = app.new_user().await;
    let q = "mutation($c: UUID!, $p: UUID!) { sharePlayground(conversationId: $c, playgroundId: $p) { id } }";
    let res = app
        .gql(
            outsider.token(),
            q,
            json!({ "c": conversation, "p": park["id"] }),
        )
        .await;
    assert_eq!(res.error_code(), "NOT_FOUND");
    let res = app
        .gql(
            a.token(),
            q,
            json!({ "c": conversation, "p": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_eq!(res.error_code(), "NOT_FOUND");
    assert_eq!(messages(&app, &a, &conversation).await.len(), 1);
}

/// A place tells its viewer whether they added it, and nobody else who did.
async fn a_place_never_names_the_person_who_added_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let park = added(&app, &a, "Mauerpark", BERLIN).await;
    assert_eq!(park["createdBy"], a.user_id.to_string(), "their own place");
    let stranger = dog_at(&app, "Fido", BERLIN).await;
    let seen = [
        search(&app, &stranger, "Mauerpark")
            .await
            .data("searchPlaygrounds")[0]
            .clone(),
        near(&app, &stranger, BERLIN, 5.0, "KILOMETERS")
            .await
            .data("playgroundsNear")[0]
            .clone(),
    ];
    for place in seen {
        assert_eq!(place["id"], park["id"]);
        assert!(place["createdBy"].is_null(), "{place}");
    }
    // Favouriting it does not make it theirs either.
    let fav = app
        .gql(
            stranger.token(),
            "mutation($p: UUID!) { favoritePlayground(playgroundId: $p) { createdBy } }",
            json!({ "p": park["id"] }),
        )
        .await;
    assert!(fav.data("favoritePlayground")["createdBy"].is_null());
    assert!(mine(&app, &stranger).await[0]["createdBy"].is_null());
    // Shared into a chat: the partner does not learn who added it.
    app.gql(
        a.token(),
        "mutation($c: UUID!, $p: UUID!) { sharePlayground(conversationId: $c, playgroundId: $p) { id } }",
        json!({ "c": conversation, "p": park["id"] }),
    )
    .await
    .data("sharePlayground");
    let res = app
        .gql(
            b.token(),
            "query($c: UUID!) { messages(conversationId: $c) { edges { node { playground { createdBy } } } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert!(res.data("messages")["edges"][0]["node"]["playground"]["createdBy"].is_null());
    // Its author still sees it as theirs everywhere.
    let res = search(&app, &a, "Mauerpark").await;
    assert_eq!(
        res.data("searchPlaygrounds")[0]["createdBy"],
        a.user_id.to_string()
    );
}

async fn bad_input_is_refused_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = dog_at(&app, "Rex", BERLIN).await;
    for (name, at, field) in [
        ("", BERLIN, "name"),
        ("   ", BERLIN, "name"),
        (&"x".repeat(81) as &str, BERLIN, "name"),
        ("Park", (91.0, 13.0), "latitude"),
        ("Park", (52.0, -181.0), "longitude"),
    ] {
        let res = add(&app, &a, name, at).await;
        assert_eq!(res.error_code(), "BAD_USER_INPUT", "{name} {at:?}");
        assert_eq!(res.errors()[0]["extensions"]["field"], field, "{res:?}");
    }
    let long = app
        .gql(
            a.token(),
            "mutation($i: PlaygroundInput!) { addPlayground(input: $i) { id } }",
            json!({ "i": { "name": "Park", "description": "d".repeat(501), "latitude": 1.0, "longitude": 1.0 } }),
        )
        .await;
    assert_eq!(long.error_code(), "BAD_USER_INPUT");
    assert_eq!(app.count("playgrounds").await, 0);
    assert_eq!(app.count("playground_favorites").await, 0);

    for (radius, unit) in [
        (0.0, "KILOMETERS"),
        (-1.0, "KILOMETERS"),
        (1000.0, "KILOMETERS"),
        (100.1, "KILOMETERS"),
        (63.0, "MILES"),
    ] {
        let res = near(&app, &a, BERLIN, radius, unit).await;
        assert_eq!(res.error_code(), "BAD_USER_INPUT", "{radius} {unit}");
    }
    let res = near(&app, &a, (95.0, 0.0), 5.0, "KILOMETERS").await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    let res = search(&app, &a, "   ").await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    let res = app
        .gql(
            a.token(),
            "{ searchPlaygrounds(query: \"park\", first: 0) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    // Signed out.
    let res = app.gql(None, "{ myPlaygrounds { id } }", json!({})).await;
    assert_eq!(res.error_code(), "UNAUTHENTICATED");
}

crate::both_backends!(
    adding_saves_and_favourites_a_place,
    the_same_place_added_twice_is_one_place,
    nearby_places_come_nearest_first_within_the_radius,
    name_search_is_fuzzy_with_prefix_matches_first,
    sharing_a_place_sends_it_to_both_people_live,
    a_place_never_names_the_person_who_added_it,
    bad_input_is_refused_and_changes_nothing,
);

/// A place is stored exactly when its coordinates are valid (latitude in
/// [-90, 90], longitude in [-180, 180]), and then with exactly those coordinates.
fn playground_locations_are_valid(backend: Backend) {
    use proptest::prelude::*;
    let rt = crate::helpers::runtime();
    let app = rt.block_on(spawn_app(backend));
    // A person adds at most 5 places a day: each stored place's adder, 5 each.
    let adders = std::sync::Mutex::new(Vec::<Session>::new());
    let stored = std::sync::atomic::AtomicI64::new(0);
    let coordinate = |limit: f64| {
        prop_oneof![
            -limit..=limit,
            (limit + 1e-9)..1e6,
            -1e6..-(limit + 1e-9),
            Just(limit),
            Just(-limit),
        ]
    };
    let tried = std::sync::atomic::AtomicI64::new(0);
    proptest!(ProptestConfig { cases: 100, ..ProptestConfig::default() }, |(lat in coordinate(90.0), lon in coordinate(180.0))| {
        rt.block_on(async {
            // A new name each time, so no case is a near-duplicate of another.
            let n = tried.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let which = usize::try_from(stored.load(std::sync::atomic::Ordering::SeqCst) / 5)
                .expect("index");
            let known = adders.lock().expect("adders").get(which).cloned();
            let user = match known {
                Some(user) => user,
                None => {
                    let user = app.new_user().await;
                    app.complete_profile(&user, "Adder").await;
                    adders.lock().expect("adders").push(user.clone());
                    user
                }
            };
            let res = add(&app, &user, &format!("Park {n}"), (lat, lon)).await;
            let valid = (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon);
            if valid {
                let place = res.data("addPlayground");
                prop_assert_eq!(place["location"]["latitude"].as_f64(), Some(lat));
                prop_assert_eq!(place["location"]["longitude"].as_f64(), Some(lon));
                stored.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            } else {
                prop_assert_eq!(res.error_code(), "BAD_USER_INPUT");
            }
            prop_assert_eq!(
                app.count("playgrounds").await,
                stored.load(std::sync::atomic::Ordering::SeqCst)
            );
            Ok(())
        })?;
    });
}

both_backends!(blocking: playground_locations_are_valid);
/// Shared favourite places raise compatibility, when many people save the place: with
/// everything else equal, the person who saved the same popular park ranks first (over one
/// made earlier, who would rank first on an equal score).
async fn shared_favourite_places_raise_the_score(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = dog_at(&app, "Rex", BERLIN).await;
    // Luna first: on equal scores the earlier account ranks first.
    let c = dog_at(&app, "Luna", BERLIN).await;
    let b = dog_at(&app, "Bella", BERLIN).await;
    let park = added(&app, &b, "Mauerpark", BERLIN).await;
    added(&app, &c, "Somewhere else", north_of(BERLIN, 1.0)).await;
    let favourite = |who: Session| {
        let app = &app;
        let park = park["id"].clone();
        async move {
            app.gql(
                who.token(),
                "mutation($p: UUID!) { favoritePlayground(playgroundId: $p) { id } }",
                json!({ "p": park }),
            )
            .await
            .data("favoritePlayground");
        }
    };
    favourite(a.clone()).await;
    // A place counts once five other people with profiles save it (they live far away).
    for i in 0..5 {
        favourite(dog_at(&app, &format!("Regular{i}"), north_of(BERLIN, 100.0)).await).await;
    }
    let res = crate::helpers::people::recs(&app, &a, 10, None).await;
    let edges = res.data("recommendations")["edges"]
        .as_array()
        .expect("edges")
        .clone();
    let by_user = |u: &Session| {
        edges
            .iter()
            .find(|e| e["node"]["profile"]["userId"] == u.user_id.to_string())
            .map(|e| e["node"]["score"].as_f64().expect("score"))
            .expect("recommended")
    };
    assert_eq!(
        edges[0]["node"]["profile"]["userId"],
        b.user_id.to_string(),
        "{edges:?}"
    );
    assert!(by_user(&b) >= by_user(&c));
}

crate::both_backends!(shared_favourite_places_raise_the_score);
