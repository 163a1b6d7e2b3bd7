//! `GET /v1/me/export`: everything stored about the caller in one streamed JSON document, and
//! nothing that is not theirs to have (no password or token hash, no one else's location or
//! email, push tokens masked); at most one a minute.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::chat::matched_pair;
use crate::helpers::db::uuid_lit;
use crate::helpers::people::{BERLIN, act, dog_at, like, north_of};
use crate::helpers::{Backend, Session, TestApp, spawn_app};

both_backends!(
    an_export_holds_everything_stored_about_the_person,
    an_export_is_streamed_and_one_a_minute,
    an_export_needs_a_signed_in_person,
);

async fn get_export(app: &TestApp, user: &Session) -> reqwest::Response {
    app.client
        .get(app.url("/v1/me/export"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .expect("export request")
}

async fn an_export_holds_everything_stored_about_the_person(backend: Backend) {
    let app = spawn_app(backend).await;
    let (me, partner, conversation) = matched_pair(&app).await;
    let second_session = app.sign_in(&me.email).await;
    let _ = second_session;
    // Prompts, preferences, a like, a pass, a block, a report, places, a device, messages.
    let question = app
        .gql(me.token(), "{ promptQuestions }", json!({}))
        .await
        .data("promptQuestions")[0]
        .clone();
    app.gql(
        me.token(),
        "mutation($p: [PromptInput!]!) { setPrompts(prompts: $p) { id } }",
        json!({ "p": [{ "question": question, "answer": "Tennis balls" }] }),
    )
    .await
    .data("setPrompts");
    app.gql(
        me.token(),
        "mutation { updatePreferences(input: { maxDistance: 42 }) { maxDistance } }",
        json!({}),
    )
    .await
    .data("updatePreferences");
    let liked = dog_at(&app, "Liked", north_of(BERLIN, 1.0)).await;
    let passed = dog_at(&app, "Passed", north_of(BERLIN, 2.0)).await;
    let blocked = dog_at(&app, "Blocked", north_of(BERLIN, 3.0)).await;
    let reported = dog_at(&app, "Reported", north_of(BERLIN, 4.0)).await;
    like(&app, &me, liked.user_id).await.data("like");
    act(&app, &me, "pass", passed.user_id).await.data("pass");
    act(&app, &me, "block", blocked.user_id).await.data("block");
    app.report(&me, &reported.user_id, "SPAM", Some("sells kibble"))
        .await
        .data("report");
    let park = app
        .gql(
            me.token(),
            "mutation { addPlayground(input: { name: \"Mauerpark\", description: \"big\", latitude: 52.54, longitude: 13.40 }) { id } }",
            json!({}),
        )
        .await
        .data("addPlayground")["id"]
        .clone();
    let device_token = "fcm-device-token-0123456789-abcdefghijklmnop";
    app.gql(
        me.token(),
        "mutation($t: String!) { registerDevice(token: $t, platform: ANDROID) }",
        json!({ "t": device_token }),
    )
    .await
    .data("registerDevice");
    for (from, text) in [(&me, "mine"), (&partner, "theirs")] {
        app.gql(
            from.token(),
            "mutation($c: UUID!, $t: String!) { sendMessage(conversationId: $c, content: $t) { id } }",
            json!({ "c": conversation, "t": text }),
        )
        .await
        .data("sendMessage");
    }

    let res = get_export(&app, &me).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let text = res.text().await.expect("body");
    let doc: Value = serde_json::from_str(&text).expect("one JSON document");

    assert_eq!(doc["account"]["email"], me.email);
    assert_eq!(doc["account"]["id"], me.user_id.to_string());
    assert!(doc["account"]["createdAt"].is_string());
    assert_eq!(doc["profile"]["name"], "Rex");
    assert_eq!(doc["prompts"][0]["answer"], "Tennis balls");
    assert_eq!(doc["preferences"]["maxDistance"], 42.0);
    assert_eq!(doc["location"]["latitude"], BERLIN.0, "the exact location");
    assert_eq!(doc["location"]["longitude"], BERLIN.1);
    let photos = doc["photos"].as_array().expect("photos");
    assert_eq!(photos.len(), 2);
    for photo in photos {
        for key in ["url", "thumbnailUrl"] {
            let url = photo[key].as_str().expect("url");
            assert_eq!(app.client.get(url).send().await.expect("get").status(), 200);
        }
    }
    let ids = |section: &str| -> Vec<String> {
        doc[section]
            .as_array()
            .unwrap_or_else(|| panic!("{section} is a list"))
            .iter()
            .map(|v| v["userId"].as_str().expect("userId").to_string())
            .collect()
    };
    assert!(ids("likes").contains(&liked.user_id.to_string()));
    assert!(ids("likes").contains(&partner.user_id.to_string()));
    assert_eq!(ids("passes"), vec![passed.user_id.to_string()]);
    assert!(ids("blocks").contains(&blocked.user_id.to_string()));
    assert!(
        ids("blocks").contains(&reported.user_id.to_string()),
        "a report blocks"
    );
    assert_eq!(ids("reports"), vec![reported.user_id.to_string()]);
    assert_eq!(doc["reports"][0]["details"], "sells kibble");
    assert_eq!(ids("matches"), vec![partner.user_id.to_string()]);
    assert_eq!(doc["conversations"][0]["id"], conversation);
    let contents: Vec<&str> = doc["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].as_str().expect("content"))
        .collect();
    assert_eq!(
        contents,
        vec!["mine", "theirs"],
        "both directions, in order"
    );
    assert_eq!(doc["playgroundsAdded"][0]["id"], park);
    assert_eq!(doc["playgroundsFavorited"][0]["playgroundId"], park);
    assert!(
        doc["notifications"]
            .as_array()
            .expect("notifications")
            .iter()
            .any(|n| n["kind"] == "MATCH")
    );
    assert_eq!(doc["notificationPreferences"]["push"], true);
    assert_eq!(doc["devices"][0]["platform"], "ANDROID");
    assert_eq!(doc["devices"][0]["token"], "fcm-…mnop");
    assert_eq!(doc["sessions"].as_array().expect("sessions").len(), 2);
    assert!(doc["sessions"][0]["lastUsedAt"].is_string());

    // Nothing that is not theirs to have.
    assert!(!text.contains(device_token), "the push token is masked");
    assert!(!text.contains("$argon2"), "no password hash");
    for word in ["password", "hash", "grid"] {
        assert!(!text.to_lowercase().contains(word), "{word} in the export");
    }
    assert!(!text.contains(&partner.email), "no one else's email");
    assert!(!text.contains(&me.refresh_token));
    assert!(!text.contains(&me.access_token));
}

async fn an_export_is_streamed_and_one_a_minute(backend: Backend) {
    let app = spawn_app(backend).await;
    let (me, partner, conversation) = matched_pair(&app).await;
    // A long history, written straight to the database.
    const MESSAGES: usize = 20_000;
    let conversation: Uuid = conversation.parse().expect("uuid");
    let conv = uuid_lit(&app, conversation);
    let ts = "'2026-01-01T00:00:00.000000Z'";
    let mut ids = Vec::with_capacity(MESSAGES);
    for batch in 0..MESSAGES / 1000 {
        let rows: Vec<String> = (0..1000)
            .map(|i| {
                let id = Uuid::now_v7();
                ids.push(id);
                let n = batch * 1000 + i;
                let (from, to) = if n % 2 == 0 {
                    (&me, &partner)
                } else {
                    (&partner, &me)
                };
                format!(
                    "({}, {conv}, {}, {}, 'TEXT', 'message {n}', {ts})",
                    uuid_lit(&app, id),
                    uuid_lit(&app, from.user_id),
                    uuid_lit(&app, to.user_id),
                )
            })
            .collect();
        app.execute(&format!(
                "INSERT INTO messages (id, conversation_id, sender_id, recipient_id, kind, content, created_at) VALUES {}",
                rows.join(", ")
            ),
        )
        .await;
    }
    let res = get_export(&app, &me).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("content-length").is_none(),
        "streamed, not buffered: {:?}",
        res.headers()
    );
    let mut chunks = 0;
    let mut body = Vec::new();
    let mut res = res;
    while let Some(chunk) = res.chunk().await.expect("chunk") {
        chunks += 1;
        body.extend_from_slice(&chunk);
    }
    assert!(chunks > 1, "sent in pieces");
    let doc: Value = serde_json::from_slice(&body).expect("one JSON document");
    let messages = doc["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), MESSAGES);
    let got: Vec<String> = messages
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect();
    let want: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    assert_eq!(got, want, "every message, in order");

    let again = get_export(&app, &me).await;
    assert_eq!(again.status(), 429);
    assert!(again.headers().get("retry-after").is_some());
    // Someone else's budget is their own.
    assert_eq!(get_export(&app, &partner).await.status(), 200);
}

async fn an_export_needs_a_signed_in_person(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .get(app.url("/v1/me/export"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .get(app.url("/v1/me/export"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
}
