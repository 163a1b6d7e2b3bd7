//! Notifications: the inbox, preferences, devices, and push through the FCM HTTP v1 client,
//! against a local server standing in for Google's token and send endpoints that checks each
//! request (FCM itself cannot be reached here).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::chat::matched_pair;
use crate::helpers::fcm::{FcmStandIn, Shared, deliver_queued_pushes};
use crate::helpers::inbox::{inbox, register_device};
use crate::helpers::people::{BERLIN, dog_at, like};
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

/// Starts the stand-in and an app whose FCM client talks to it.
async fn app_with_fcm(backend: Backend) -> (TestApp, Shared, FcmStandIn) {
    let stand_in = FcmStandIn::start().await;
    let app = spawn_app_with(backend, |c| stand_in.configure(c)).await;
    (app, stand_in.fcm.clone(), stand_in)
}

/// Waits until the stand-in has seen `n` accepted sends.
async fn wait_for_sends(fcm: &Shared, n: usize) -> Vec<(String, Value)> {
    for _ in 0..100 {
        let sent = fcm.lock().expect("lock").sent.clone();
        if sent.len() >= n {
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} pushes, got {:?}",
        fcm.lock().expect("lock").sent
    );
}

async fn likes_and_matches_fill_the_inbox(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = dog_at(&app, "Rex", BERLIN).await;
    let b = dog_at(&app, "Bella", BERLIN).await;
    like(&app, &a, b.user_id).await.data("like");
    like(&app, &a, b.user_id).await.data("like");
    let got = inbox(&app, &b, false).await;
    assert_eq!(got.len(), 1, "a repeated like notifies once: {got:?}");
    assert_eq!(got[0]["kind"], "LIKE");
    assert!(
        !got[0]["body"].as_str().unwrap_or("").contains("Rex"),
        "who liked you stays hidden"
    );

    let res = like(&app, &b, a.user_id).await;
    let conversation = res.data("like")["match"]["conversationId"].clone();
    for (user, other) in [(&a, "Bella"), (&b, "Rex")] {
        let notes = inbox(&app, user, false).await;
        let matched = notes
            .iter()
            .find(|n| n["kind"] == "MATCH")
            .expect("match notification");
        assert!(
            matched["body"].as_str().unwrap_or("").contains(other),
            "{matched}"
        );
        let data: Value =
            serde_json::from_str(matched["data"].as_str().expect("data")).expect("json");
        assert_eq!(data["conversationId"], conversation);
    }
    // Both are offline, but neither has a device: no push is queued for the delivery job.
    let states = sqlx_states(&app).await;
    assert_eq!(states.len(), 3, "{states:?}");
    assert!(states.iter().all(|s| s == "NONE"), "{states:?}");

    // Reading.
    let ids: Vec<Value> = inbox(&app, &b, true)
        .await
        .iter()
        .map(|n| n["id"].clone())
        .collect();
    assert_eq!(ids.len(), 2);
    let res = app
        .gql(
            b.token(),
            "mutation($i: [UUID!]!) { markNotificationsRead(ids: $i) }",
            json!({ "i": [ids[0]] }),
        )
        .await;
    assert_eq!(res.data("markNotificationsRead"), 1);
    // Someone else's ids change nothing.
    let res = app
        .gql(
            a.token(),
            "mutation($i: [UUID!]!) { markNotificationsRead(ids: $i) }",
            json!({ "i": ids }),
        )
        .await;
    assert_eq!(res.data("markNotificationsRead"), 0);
    assert_eq!(inbox(&app, &b, true).await.len(), 1);
    assert_eq!(inbox(&app, &b, false).await.len(), 2);
}

async fn preferences_decide_what_is_notified(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = dog_at(&app, "Rex", BERLIN).await;
    let b = dog_at(&app, "Bella", BERLIN).await;
    let prefs = app
        .gql(
            b.token(),
            "{ notificationPreferences { matches messages likes push } }",
            json!({}),
        )
        .await;
    assert_eq!(
        prefs.data("notificationPreferences"),
        &json!({ "matches": true, "messages": true, "likes": true, "push": true })
    );
    let res = app
        .gql(b.token(), "mutation { updateNotificationPreferences(input: { likes: false, push: false }) { matches messages likes push } }", json!({}))
        .await;
    assert_eq!(
        res.data("updateNotificationPreferences"),
        &json!({ "matches": true, "messages": true, "likes": false, "push": false })
    );
    like(&app, &a, b.user_id).await.data("like");
    assert!(inbox(&app, &b, false).await.is_empty(), "likes are off");
    like(&app, &b, a.user_id).await.data("like");
    assert_eq!(inbox(&app, &b, false).await.len(), 1, "matches are on");
    // A later partial update keeps the rest.
    let res = app
        .gql(b.token(), "mutation { updateNotificationPreferences(input: { messages: false }) { likes messages } }", json!({}))
        .await;
    assert_eq!(
        res.data("updateNotificationPreferences"),
        &json!({ "likes": false, "messages": false })
    );
}

async fn online_people_get_frames_and_offline_people_get_pushes(backend: Backend) {
    let (app, fcm, _dir) = app_with_fcm(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    register_device(&app, &b, "device-b").await;
    let sent_before = fcm.lock().expect("lock").sent.len();

    // Online: a notification frame, no push.
    let mut wa = app.ws(&a).await;
    let mut wb = app.ws(&b).await;
    wa.send_message(&conversation, "are you there?", "p-1")
        .await;
    let frame = wb.recv_type("notification").await;
    assert_eq!(frame["notification"]["kind"], "MESSAGE");
    // The notification was stored before its frame went out, with no push queued: nothing
    // will ever send one for it.
    assert_eq!(
        sqlx_states(&app).await.last().map(String::as_str),
        Some("NONE")
    );
    assert_eq!(
        fcm.lock().expect("lock").sent.len(),
        sent_before,
        "no push to someone online"
    );

    // Offline (once the hub no longer counts b's socket): a push through FCM, with the
    // conversation to open.
    wb.close().await;
    let hub = &app.state.chat.hub;
    for _ in 0..100 {
        if !hub.is_online(b.user_id).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!hub.is_online(b.user_id).await, "b's socket is gone");
    wa.send_message(&conversation, "hello?", "p-2").await;
    let sent = wait_for_sends(&fcm, sent_before + 1).await;
    let (device, body) = sent.last().expect("a push");
    assert_eq!(device, "device-b");
    assert_eq!(
        body["message"]["notification"]["title"],
        "New message from Rex"
    );
    assert_eq!(body["message"]["data"]["conversationId"], conversation);
    assert!(
        !body.to_string().contains("hello?"),
        "message text never goes to the push service"
    );
    // FCM saw the send before the outcome is written: wait for the record.
    let state = wait_for_state(&app, "SENT").await;
    assert!(state.contains(&"SENT".to_string()), "{state:?}");
    // One OAuth token, reused.
    assert_eq!(fcm.lock().expect("lock").tokens_issued.len(), 1);
}

/// A notification is either shown live or left for later: someone with a live socket gets the
/// `notification` frame; for someone with none nothing goes out to the instances at all (it waits
/// in their inbox, and goes as a push when they have a device).
async fn a_notification_goes_live_or_waits_in_the_inbox(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = dog_at(&app, "Rex", BERLIN).await;
    let b = dog_at(&app, "Bella", BERLIN).await;
    let c = dog_at(&app, "Luna", BERLIN).await;
    let mut bus = app.state.bus.subscribe();

    // b has no socket: the like is stored and notified, and no frame is published for b.
    like(&app, &a, b.user_id).await.data("like");
    assert_eq!(inbox(&app, &b, true).await.len(), 1);
    let quiet = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            match bus.recv().await {
                Ok(m) if m.topic == "deliver" && m.payload.contains(&b.user_id.to_string()) => {
                    return m.payload;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    std::future::pending().await
                }
            }
        }
    })
    .await;
    assert!(
        quiet.is_err(),
        "a frame went out for someone offline: {quiet:?}"
    );

    // b online: the next like arrives as a frame.
    let mut wb = app.ws(&b).await;
    like(&app, &c, b.user_id).await.data("like");
    let frame = wb.recv_type("notification").await;
    assert_eq!(frame["notification"]["kind"], "LIKE");
    assert_eq!(inbox(&app, &b, true).await.len(), 2);
}

/// The push states once one of them is `wanted`, or after 5 s, whichever comes first.
async fn wait_for_state(app: &TestApp, wanted: &str) -> Vec<String> {
    for _ in 0..100 {
        let states = sqlx_states(app).await;
        if states.iter().any(|s| s == wanted) {
            return states;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sqlx_states(app).await
}

/// The notifications' push states, oldest first.
async fn sqlx_states(app: &TestApp) -> Vec<String> {
    match &app.db {
        pupmatch::infra::db::Db::Postgres(p) => {
            sqlx::query_scalar("SELECT push_state FROM notifications ORDER BY id")
                .fetch_all(p)
                .await
                .expect("query")
        }
        pupmatch::infra::db::Db::Sqlite(p) => {
            sqlx::query_scalar("SELECT push_state FROM notifications ORDER BY id")
                .fetch_all(p)
                .await
                .expect("query")
        }
    }
}

async fn pushes_retry_and_forget_dead_devices(backend: Backend) {
    let (app, fcm, _dir) = app_with_fcm(backend).await;
    let a = dog_at(&app, "Rex", BERLIN).await;
    let b = dog_at(&app, "Bella", BERLIN).await;
    let c = dog_at(&app, "Luna", BERLIN).await;
    register_device(&app, &b, "flaky-b").await;
    register_device(&app, &b, "gone-b").await;
    fcm.lock().expect("lock").flaky_once.push("flaky-b".into());
    like(&app, &a, b.user_id).await.data("like");
    let sent = wait_for_sends(&fcm, 1).await;
    assert_eq!(sent[0].0, "flaky-b", "delivered after a retry");
    // The dead token is forgotten.
    for _ in 0..50 {
        if app.count("devices").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.count("devices").await, 1);

    // A push service that stays down: the push stays queued for the delivery job.
    register_device(&app, &c, "down-c").await;
    like(&app, &a, c.user_id).await.data("like");
    for _ in 0..100 {
        if sqlx_states(&app)
            .await
            .iter()
            .filter(|s| *s == "PENDING")
            .count()
            == 1
            && fcm.lock().expect("lock").refused.len() >= 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let states = sqlx_states(&app).await;
    assert!(states.contains(&"PENDING".to_string()), "{states:?}");
    assert_eq!(
        fcm.lock().expect("lock").refused.len(),
        3,
        "three attempts with backoff"
    );

    // The service is back and the backoff is over: the delivery job sends it.
    let run = deliver_queued_pushes(&app, &fcm).await;
    assert!(run.ok, "{run:?}");
    assert_eq!(run.items, 1);
    assert!(
        fcm.lock()
            .expect("lock")
            .sent
            .iter()
            .any(|(d, _)| d == "down-c"),
        "delivered by the job"
    );
    assert!(!sqlx_states(&app).await.contains(&"PENDING".to_string()));
}

async fn devices_are_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let res = app
        .gql(
            user.token(),
            "mutation { registerDevice(token: \"   \", platform: IOS) }",
            json!({}),
        )
        .await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    let res = app
        .gql(
            user.token(),
            "mutation($t: String!) { registerDevice(token: $t, platform: IOS) }",
            json!({ "t": "x".repeat(5000) }),
        )
        .await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    let res = app
        .gql(
            user.token(),
            "mutation { registerDevice(token: \"t\", platform: FAX) }",
            json!({}),
        )
        .await;
    assert!(!res.errors().is_empty());
    assert_eq!(app.count("devices").await, 0);
    register_device(&app, &user, "device-1").await;
    register_device(&app, &user, "device-1").await;
    assert_eq!(
        app.count("devices").await,
        1,
        "registering twice is one device"
    );
    let other = app.new_user().await;
    let res = app
        .gql(
            other.token(),
            "mutation { unregisterDevice(token: \"device-1\") }",
            json!({}),
        )
        .await;
    assert_eq!(res.data("unregisterDevice"), false, "not theirs");
    let res = app
        .gql(
            user.token(),
            "mutation { unregisterDevice(token: \"device-1\") }",
            json!({}),
        )
        .await;
    assert_eq!(res.data("unregisterDevice"), true);
    assert_eq!(app.count("devices").await, 0);
    let res = app
        .gql(None, "{ notifications { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(res.error_code(), "UNAUTHENTICATED");
}

crate::both_backends!(
    likes_and_matches_fill_the_inbox,
    preferences_decide_what_is_notified,
    online_people_get_frames_and_offline_people_get_pushes,
    a_notification_goes_live_or_waits_in_the_inbox,
    pushes_retry_and_forget_dead_devices,
    devices_are_validated,
);
