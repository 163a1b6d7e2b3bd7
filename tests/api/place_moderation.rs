//! Places are moderated and tidied: moderators remove a place or merge a duplicate into another
//! (admin API and console, audited), and the cleanup job removes places nobody has saved for 30
//! days.

use chrono::Utc;
use pupmatch::jobs::Job;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::db::{exec_at, hex_id};
use crate::helpers::people::{BERLIN, dog_at, north_of};
use crate::helpers::staff::{admin_gql, moderator};
use crate::helpers::staff::{console_sign_in, no_redirects};
use crate::helpers::{Backend, Session, TestApp, spawn_app};

both_backends!(
    moderators_remove_and_merge_places,
    the_console_removes_a_place,
    the_console_shows_what_people_typed_as_text,
    places_nobody_saves_for_30_days_are_removed,
);

/// `who` adds a place `km` north of Berlin: its id.
async fn add_place(app: &TestApp, who: &Session, name: &str, km: f64) -> String {
    let (lat, lon) = north_of(BERLIN, km);
    let res = app
        .gql(
            who.token(),
            "mutation($n: String!, $lat: Float!, $lon: Float!) {
                addPlayground(input: { name: $n, description: \"\", latitude: $lat, longitude: $lon }) { id } }",
            json!({ "n": name, "lat": lat, "lon": lon }),
        )
        .await;
    res.data("addPlayground")["id"]
        .as_str()
        .expect("id")
        .to_string()
}

async fn my_places(app: &TestApp, who: &Session) -> Vec<String> {
    app.gql(who.token(), "{ myPlaygrounds { name } }", json!({}))
        .await
        .data("myPlaygrounds")
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect()
}

async fn near(app: &TestApp, who: &Session) -> Vec<String> {
    app.gql(
        who.token(),
        "query($lat: Float!, $lon: Float!) { playgroundsNear(latitude: $lat, longitude: $lon, radius: 20) { name } }",
        json!({ "lat": BERLIN.0, "lon": BERLIN.1 }),
    )
    .await
    .data("playgroundsNear")
    .as_array()
    .expect("list")
    .iter()
    .map(|p| p["name"].as_str().expect("name").to_string())
    .collect()
}

async fn admin(app: &TestApp, who: &Session, query: &str, variables: Value) -> Value {
    let (status, body) = admin_gql(app, who.token(), query, variables).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn moderators_remove_and_merge_places(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let alice = dog_at(&app, "Alice", BERLIN).await;
    let bob = dog_at(&app, "Bob", BERLIN).await;
    let spam = add_place(&app, &alice, "Cheap Bones Outlet", 1.0).await;
    let main = add_place(&app, &alice, "Tempelhofer Feld", 2.0).await;
    let duplicate = add_place(&app, &bob, "Tempelhof Field", 2.2).await;

    let listed = admin(
        &app,
        &m,
        "{ places(search: \"TEMPEL\") { id name favorites createdBy } }",
        json!({}),
    )
    .await;
    let places = listed["data"]["places"].as_array().expect("places").clone();
    assert_eq!(places.len(), 2, "{listed}");
    assert_eq!(places[0]["id"], json!(duplicate), "newest first");
    assert_eq!(places[0]["createdBy"], json!(bob.user_id));

    // A member cannot.
    let (status, _) = admin_gql(
        &app,
        alice.token(),
        "mutation($p: ID!) { removePlace(placeId: $p, reason: \"x\") }",
        json!({ "p": spam }),
    )
    .await;
    assert_eq!(status, 403);

    let removed = admin(
        &app,
        &m,
        "mutation($p: ID!) { removePlace(placeId: $p, reason: \"advertising\") }",
        json!({ "p": spam }),
    )
    .await;
    assert_eq!(removed["data"]["removePlace"], true, "{removed}");
    assert!(
        !near(&app, &alice)
            .await
            .contains(&"Cheap Bones Outlet".to_string())
    );
    assert!(
        !my_places(&app, &alice)
            .await
            .contains(&"Cheap Bones Outlet".to_string())
    );

    // Bad merges change nothing.
    for (from, into, field) in [
        (&main, &main, "intoId"),
        (&main, &spam, "intoId"),
        (&spam, &main, "placeId"),
    ] {
        let res = admin(
            &app,
            &m,
            "mutation($p: ID!, $i: ID!) { mergePlace(placeId: $p, intoId: $i, reason: \"dup\") }",
            json!({ "p": from, "i": into }),
        )
        .await;
        assert_eq!(
            res["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{res}"
        );
        assert_eq!(res["errors"][0]["extensions"]["field"], field, "{res}");
    }
    let merged = admin(
        &app,
        &m,
        "mutation($p: ID!, $i: ID!) { mergePlace(placeId: $p, intoId: $i, reason: \"the same park\") }",
        json!({ "p": duplicate, "i": main }),
    )
    .await;
    assert_eq!(merged["data"]["mergePlace"], true, "{merged}");
    // Bob's favourite moved to the place that stays.
    assert_eq!(
        my_places(&app, &bob).await,
        vec!["Tempelhofer Feld".to_string()]
    );
    assert!(
        !near(&app, &bob)
            .await
            .contains(&"Tempelhof Field".to_string())
    );

    // Both are in the audit log, with the place's name.
    let log = admin(
        &app,
        &m,
        "{ auditLog { kind subjectName reason detail } }",
        json!({}),
    )
    .await;
    let entries = log["data"]["auditLog"].as_array().expect("log").clone();
    assert!(
        entries.iter().any(|e| e["kind"] == "REMOVE_PLACE"
            && e["subjectName"] == "Cheap Bones Outlet"
            && e["reason"] == "advertising"),
        "{log}"
    );
    assert!(
        entries.iter().any(|e| e["kind"] == "MERGE_PLACE"
            && e["subjectName"] == "Tempelhof Field"
            && e["detail"].as_str().is_some_and(|d| d.contains(&main))),
        "{log}"
    );
}

/// The CSRF token of the console page at `path`.
async fn console_csrf(app: &TestApp, cookie: &str, path: &str) -> (String, String) {
    let res = no_redirects()
        .get(app.url(path))
        .header("cookie", format!("pupmatch_console={cookie}"))
        .send()
        .await
        .expect("page");
    assert_eq!(res.status(), 200);
    let html = res.text().await.expect("html");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf")
        .to_string();
    (csrf, html)
}

async fn the_console_removes_a_place(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let alice = dog_at(&app, "Alice", BERLIN).await;
    let spam = add_place(&app, &alice, "Buy Followers Park", 1.0).await;
    let (_, cookie) = console_sign_in(&app, &m.email).await;
    let (csrf, html) = console_csrf(&app, &cookie, "/admin/places").await;
    assert!(html.contains("Buy Followers Park"));
    let post = |confirmed: &'static str| {
        no_redirects()
            .post(app.url(&format!("/admin/places/{spam}/actions")))
            .header("cookie", format!("pupmatch_console={cookie}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("action", "REMOVE_PLACE"),
                ("reason", "spam"),
                ("into", ""),
                ("confirmed", confirmed),
            ])
            .send()
    };
    let confirm = post("").await.expect("post");
    assert_eq!(confirm.status(), 200);
    assert!(
        confirm
            .text()
            .await
            .expect("html")
            .contains("Confirm: Remove place")
    );
    assert_eq!(
        near(&app, &alice).await,
        vec!["Buy Followers Park".to_string()]
    );
    let done = post("yes").await.expect("post");
    assert_eq!(done.status(), 303);
    assert!(near(&app, &alice).await.is_empty());
    // The audit log names the place (no case link: it is no person).
    let (_, audit) = console_csrf(&app, &cookie, "/admin/audit").await;
    assert!(
        audit.contains(&format!("Buy Followers Park <small>(place {spam})</small>")),
        "{audit}"
    );
    // A form without the session's token does nothing.
    let other = add_place(&app, &alice, "Second Park", 3.0).await;
    let forged = no_redirects()
        .post(app.url(&format!("/admin/places/{other}/actions")))
        .header("cookie", format!("pupmatch_console={cookie}"))
        .form(&[
            ("csrf", "forged"),
            ("action", "REMOVE_PLACE"),
            ("reason", "x"),
            ("confirmed", "yes"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 403);
    assert_eq!(near(&app, &alice).await, vec!["Second Park".to_string()]);
}

async fn places_nobody_saves_for_30_days_are_removed(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = dog_at(&app, "Alice", BERLIN).await;
    let forgotten = add_place(&app, &alice, "Forgotten Park", 1.0).await;
    let dropped_lately = add_place(&app, &alice, "Lately Dropped Park", 2.0).await;
    add_place(&app, &alice, "Loved Park", 3.0).await;
    for id in [&forgotten, &dropped_lately] {
        app.gql(
            alice.token(),
            "mutation($p: UUID!) { removePlayground(playgroundId: $p) }",
            json!({ "p": id }),
        )
        .await
        .data("removePlayground");
    }
    // Added 40 days ago; the forgotten one unsaved 31 days ago, the other yesterday.
    let now = Utc::now();
    exec_at(
        &app,
        "UPDATE playgrounds SET created_at = $1",
        now - chrono::Duration::days(40),
    )
    .await;
    let id = |p: &str| hex_id(&app, p.parse().expect("uuid"));
    exec_at(
        &app,
        &format!(
            "UPDATE playgrounds SET last_unsaved_at = $1 WHERE id = {}",
            id(&forgotten)
        ),
        now - chrono::Duration::days(31),
    )
    .await;
    exec_at(
        &app,
        &format!(
            "UPDATE playgrounds SET last_unsaved_at = $1 WHERE id = {}",
            id(&dropped_lately)
        ),
        now - chrono::Duration::days(1),
    )
    .await;
    let run = app.worker().await.run(Job::Cleanup, 1).await;
    assert!(run.ok, "{run:?}");
    let mut left = near(&app, &alice).await;
    left.sort();
    assert_eq!(
        left,
        vec!["Lately Dropped Park".to_string(), "Loved Park".to_string()]
    );
}

/// Markup typed into a place's name or a search comes back as text, in content and in
/// attribute values alike: nothing a member writes runs in a moderator's browser.
async fn the_console_shows_what_people_typed_as_text(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let alice = dog_at(&app, "Alice", BERLIN).await;
    let name = "<script>alert(1)</script> & \"Park\"";
    add_place(&app, &alice, name, 1.0).await;
    let (_, cookie) = console_sign_in(&app, &m.email).await;
    let (_, html) = console_csrf(&app, &cookie, "/admin/places").await;
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Park&quot;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    let search = "\"><script>alert(2)</script>";
    let query: String = url::form_urlencoded::byte_serialize(search.as_bytes()).collect();
    let (_, html) = console_csrf(&app, &cookie, &format!("/admin/places?q={query}")).await;
    assert!(
        html.contains("value=\"&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;\""),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
}
