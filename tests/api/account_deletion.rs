//! `deleteAccount`: password-confirmed; every row and blob of the person goes.

use serde_json::json;
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::db::uuid_lit;
use crate::helpers::{Backend, DEFAULT_PASSWORD, Session, TestApp, spawn_app};
use pupmatch::infra::db::Db;

both_backends!(
    deleting_an_account_removes_every_row_and_blob,
    a_wrong_password_deletes_nothing,
    a_deleted_account_vanishes_at_once_from_every_instance,
    reports_outlive_the_accounts_they_involve,
);

/// Tables that hold nothing but the deleted person's data in the story below.
const PERSONAL_TABLES: &[&str] = &[
    "profiles",
    "photos",
    "prompts",
    "preferences",
    "locations",
    "likes",
    "passes",
    "matches",
    "blocks",
    "playgrounds",
    "playground_favorites",
    "conversations",
    "messages",
    "notifications",
    "devices",
    "password_reset_tokens",
];

/// A complete profile with a prompt, made through the API; returns every photo and thumbnail URL.
async fn profile_with_photos(app: &TestApp, me: &Session) -> Vec<String> {
    app.complete_profile(me, "Rex").await;
    let q = app.gql(me.token(), "{ promptQuestions }", json!({})).await;
    let question = q.data("promptQuestions")[0].clone();
    app.gql(
        me.token(),
        "mutation($p: [PromptInput!]!) { setPrompts(prompts: $p) { id } }",
        json!({ "p": [{ "question": question, "answer": "The red ball" }] }),
    )
    .await
    .data("setPrompts");
    let res = app
        .gql(
            me.token(),
            "{ me { profile { photos { url thumbnailUrl } } } }",
            json!({}),
        )
        .await;
    let urls: Vec<String> = res.data("me")["profile"]["photos"]
        .as_array()
        .expect("photos")
        .iter()
        .flat_map(|p| {
            [
                p["url"].as_str().expect("url").to_string(),
                p["thumbnailUrl"].as_str().expect("url").to_string(),
            ]
        })
        .collect();
    assert_eq!(urls.len(), 4);
    for url in &urls {
        assert_eq!(app.client.get(url).send().await.expect("get").status(), 200);
    }
    urls
}

/// Gives `me` a row in every table, several of them involving `other`.
async fn fill_every_table(app: &TestApp, me: Uuid, other: Uuid) {
    let ts = "'2026-01-01T00:00:00.000000Z'";
    let (u, o) = (uuid_lit(app, me), uuid_lit(app, other));
    let id = || uuid_lit(app, Uuid::now_v7());
    let (a, b) = if me < other {
        (u.clone(), o.clone())
    } else {
        (o.clone(), u.clone())
    };
    let match_id = id();
    let conv_id = id();
    let pg_id = id();
    let statements = [
        format!(
            "INSERT INTO preferences (user_id, min_age, max_age, max_distance, activity_level, distance_unit, updated_at) VALUES ({u}, 1, 10, 25, 'HIGH', 'KILOMETERS', {ts})"
        ),
        format!(
            "INSERT INTO locations (user_id, latitude, longitude, grid_latitude, grid_longitude, updated_at) VALUES ({u}, 52.52, 13.40, 52.52, 13.40, {ts})"
        ),
        format!(
            "INSERT INTO likes (id, user_id, target_id, created_at) VALUES ({}, {u}, {o}, {ts})",
            id()
        ),
        format!(
            "INSERT INTO likes (id, user_id, target_id, created_at) VALUES ({}, {o}, {u}, {ts})",
            id()
        ),
        format!(
            "INSERT INTO passes (id, user_id, target_id, created_at) VALUES ({}, {o}, {u}, {ts})",
            id()
        ),
        format!(
            "INSERT INTO matches (id, user_a, user_b, created_at) VALUES ({match_id}, {a}, {b}, {ts})"
        ),
        format!(
            "INSERT INTO conversations (id, match_id, user_a, user_b, created_at, updated_at) VALUES ({conv_id}, {match_id}, {a}, {b}, {ts}, {ts})"
        ),
        format!(
            "INSERT INTO playgrounds (id, name, name_search, description, latitude, longitude, created_by, created_at) VALUES ({pg_id}, 'Tiergarten', 'tiergarten', '', 52.51, 13.36, {u}, {ts})"
        ),
        format!(
            "INSERT INTO playground_favorites (user_id, playground_id, created_at) VALUES ({u}, {pg_id}, {ts})"
        ),
        format!(
            "INSERT INTO messages (id, conversation_id, sender_id, recipient_id, kind, content, playground_id, client_id, created_at) VALUES ({}, {conv_id}, {o}, {u}, 'PLAYGROUND', 'Meet here?', {pg_id}, 'c1', {ts})",
            id()
        ),
        format!("INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES ({o}, {u}, {ts})"),
        format!(
            "INSERT INTO reports (id, reporter_id, reported_id, reason, details, created_at) VALUES ({}, {u}, {o}, 'SPAM', 'sells kibble', {ts})",
            id()
        ),
        format!(
            "INSERT INTO notifications (id, user_id, kind, title, body, created_at) VALUES ({}, {u}, 'MATCH', 'New match', 'You matched', {ts})",
            id()
        ),
        format!(
            "INSERT INTO devices (id, user_id, token, platform, created_at, last_seen_at) VALUES ({}, {u}, 'fcm-token-1', 'ANDROID', {ts}, {ts})",
            id()
        ),
        format!(
            "INSERT INTO password_reset_tokens (id, user_id, token_hash, created_at, expires_at) VALUES ({}, {u}, {}, {ts}, {ts})",
            id(),
            match app.backend {
                Backend::Postgres => format!("'\\x{}'", "ab".repeat(32)),
                Backend::Sqlite => format!("X'{}'", "ab".repeat(32)),
            }
        ),
    ];
    for sql in &statements {
        app.execute(sql).await;
    }
}

async fn deleting_an_account_removes_every_row_and_blob(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.new_user().await;
    let other = app.new_user().await;
    let urls = profile_with_photos(&app, &me).await;
    fill_every_table(&app, me.user_id, other.user_id).await;
    for table in PERSONAL_TABLES {
        assert!(app.count(table).await > 0, "{table} was filled");
    }

    let res = app.delete_account(&me).await;
    assert_eq!(*res.data("deleteAccount"), json!(true));

    for table in PERSONAL_TABLES {
        assert_eq!(app.count(table).await, 0, "{table} still has rows");
    }
    // The report they made stays for moderation, without their id.
    assert_eq!(app.count("reports").await, 1);
    assert_eq!(app.count("reports WHERE reporter_id IS NULL").await, 1);
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("sessions").await, 1);
    assert_eq!(app.count("refresh_tokens").await, 1);
    assert_eq!(app.count("notification_preferences").await, 1);
    for url in urls {
        let res = app.client.get(&url).send().await.expect("get");
        assert_eq!(res.status(), 404, "{url} was not deleted");
    }
    assert_eq!(app.me(me.token()).await.error_code(), "UNAUTHENTICATED");
    assert_eq!(
        app.login(&me.email, DEFAULT_PASSWORD).await.error_code(),
        "UNAUTHENTICATED"
    );
    app.me(other.token()).await.data("me");
    // The address is free again.
    app.register(&me.email, DEFAULT_PASSWORD)
        .await
        .data("register");
}

async fn a_wrong_password_deletes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.new_user().await;
    let other = app.new_user().await;
    let urls = profile_with_photos(&app, &me).await;
    fill_every_table(&app, me.user_id, other.user_id).await;
    let res = app
        .gql(
            me.token(),
            "mutation { deleteAccount(password: \"not my password\") }",
            json!({}),
        )
        .await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    assert_eq!(res.body["errors"][0]["extensions"]["field"], "password");
    for table in PERSONAL_TABLES {
        assert!(app.count(table).await > 0, "{table} lost rows");
    }
    for url in urls {
        let res = app.client.get(&url).send().await.expect("get");
        assert_eq!(res.status(), 200, "{url} must survive");
    }
    app.me(me.token()).await.data("me");
}

/// Today's attack: delete the account, and its profile is still served from the cache. Here a
/// viewer on another instance (scale-out; the same one in embedded mode) has the profile and
/// a recommendation list holding it cached in both tiers; right after the deletion, neither
/// shows the person.
async fn a_deleted_account_vanishes_at_once_from_every_instance(backend: Backend) {
    use crate::helpers::people::{BERLIN, all_recs, dog_at, north_of};
    let app = spawn_app(backend).await;
    let sibling = match backend {
        Backend::Postgres => Some(app.spawn_sibling().await),
        Backend::Sqlite => None,
    };
    let there = sibling.as_ref().unwrap_or(&app);
    let gone = dog_at(&app, "Gone", BERLIN).await;
    let stays = dog_at(&app, "Stays", north_of(BERLIN, 2.0)).await;
    let viewer = dog_at(&app, "Viewer", north_of(BERLIN, 1.0)).await;
    let profile = "query($u: UUID!) { profile(userId: $u) { userId name } }";
    app.introduce(&viewer, &gone).await;
    let seen = there
        .gql(viewer.token(), profile, json!({ "u": gone.user_id }))
        .await;
    assert_eq!(seen.data("profile")["name"], "Gone");
    let mut before = all_recs(there, &viewer).await;
    before.sort();
    let mut both = vec![gone.user_id, stays.user_id];
    both.sort();
    assert_eq!(before, both);

    app.delete_account(&gone).await.data("deleteAccount");
    for instance in [&app, there] {
        let res = instance
            .gql(viewer.token(), profile, json!({ "u": gone.user_id }))
            .await;
        assert_eq!(res.error_code(), "NOT_FOUND", "{}", res.body);
        assert_eq!(all_recs(instance, &viewer).await, vec![stays.user_id]);
    }
}

/// One report's snapshot: (reported id, name, bio, photo keys, reason, whether the reporter's
/// id is kept).
async fn reports(
    app: &TestApp,
) -> Vec<(
    uuid::Uuid,
    Option<String>,
    Option<String>,
    String,
    String,
    bool,
)> {
    let sql = "SELECT reported_id, reported_name, reported_bio, reported_photo_keys, reason,
                      reporter_id IS NOT NULL AS has_reporter
                 FROM reports ORDER BY created_at, id";
    match &app.db {
        Db::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.expect("reports"),
        Db::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.expect("reports"),
    }
}

async fn reports_outlive_the_accounts_they_involve(backend: Backend) {
    use crate::helpers::people::{BERLIN, dog_at};
    let app = spawn_app(backend).await;
    let reporter = dog_at(&app, "Reporter", BERLIN).await;
    let harasser = dog_at(&app, "Harasser", BERLIN).await;
    let res = app
        .report(&reporter, &harasser.user_id, "HARASSMENT", Some("rude"))
        .await;
    assert_eq!(*res.data("report"), json!(true));
    // The harasser covers their tracks: a new name and bio, then the account goes.
    app.gql(
        harasser.token(),
        "mutation($i: ProfileUpdateInput!) { updateProfile(input: $i) { name } }",
        json!({ "i": { "name": "Angel", "bio": "Nothing to see" } }),
    )
    .await
    .data("updateProfile");
    app.delete_account(&harasser).await.data("deleteAccount");
    let kept = reports(&app).await;
    assert_eq!(kept.len(), 1);
    let (reported, name, bio, photo_keys, reason, has_reporter) = &kept[0];
    assert_eq!(*reported, harasser.user_id);
    assert_eq!(name.as_deref(), Some("Harasser"), "the name when reported");
    assert_eq!(bio.as_deref(), Some("Loves the park"));
    let keys: Vec<String> = serde_json::from_str(photo_keys).expect("a JSON list");
    assert_eq!(keys.len(), 2, "{photo_keys}");
    assert_eq!(reason, "HARASSMENT");
    assert!(has_reporter);

    // The reporter leaves too: the report stays, without their id.
    app.delete_account(&reporter).await.data("deleteAccount");
    let kept = reports(&app).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0, harasser.user_id);
    assert_eq!(kept[0].4, "HARASSMENT");
    assert!(!kept[0].5, "the reporter's id is gone");
}
