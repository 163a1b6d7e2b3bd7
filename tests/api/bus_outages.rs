//! A bus outage never silently skips a message: when an instance loses its bus (Redis pub/sub)
//! or gets it back, every socket it holds is closed with 4004, so the app reconnects and
//! `resync`s what was stored meanwhile, instead of staying open with a gap it cannot see.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::people::{BERLIN, dog_at, like, north_of};
use crate::helpers::proxy::TcpProxy;
use crate::helpers::{Backend, redis_url, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_may_have_missed_messages_is_told_to_resync() {
    let redis = TcpProxy::start(redis_url().trim_start_matches("redis://").to_string()).await;
    let port = redis.port;
    let app = spawn_app_with(Backend::Postgres, move |c| {
        c.redis_url = Some(format!("redis://127.0.0.1:{port}"));
    })
    .await;
    let other = app.spawn_sibling().await;
    let alice = dog_at(&app, "Alice", BERLIN).await;
    let bob = dog_at(&app, "Bob", north_of(BERLIN, 1.0)).await;
    like(&app, &alice, bob.user_id).await.data("like");
    let matched = like(&app, &bob, alice.user_id).await;
    let conversation = matched.data("like")["match"]["conversationId"].clone();

    // Alice listens on the other instance; Bob writes through the first.
    let mut socket = other.ws(&alice).await;
    let before = app.send_message(&bob, &conversation, "before").await;
    let before_id = before.data("sendMessage")["id"].clone();
    assert_eq!(
        socket.recv_type("message").await["message"]["content"],
        "before"
    );

    // Redis goes away: Bob's message is stored and acknowledged, but cannot cross to Alice's
    // instance. Her socket is closed with 4004 (no authentication error before it).
    redis.cut().await;
    let during = app.send_message(&bob, &conversation, "during").await;
    during.data("sendMessage");
    let (code, error) = socket.expect_closed(Duration::from_secs(10)).await;
    assert_eq!(code, Some(4004));
    assert!(error.is_none(), "{error:?}");
    redis.restore();

    // Once the bus is back (a socket opened before that is closed too: frames published while
    // it reconnected were missed), a socket works live again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut fresh = other.ws(&alice).await;
        app.send_message(&bob, &conversation, "live again")
            .await
            .data("sendMessage");
        if let Some(frame) = fresh.try_recv(Duration::from_millis(500)).await
            && frame["type"] == "message"
        {
            assert_eq!(frame["message"]["content"], "live again");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no live delivery after the bus came back"
        );
    }
    // Reconnecting and resyncing from the last message she saw brings the missed one, once.
    let mut again = other.ws(&alice).await;
    again
        .send(json!({ "type": "resync", "since": before_id }))
        .await;
    let mut got: Vec<Value> = Vec::new();
    loop {
        let frame = again.recv().await;
        if frame["type"] == "resync_done" {
            break;
        }
        if frame["type"] == "message" {
            got.push(frame["message"]["content"].clone());
        }
    }
    assert_eq!(got.first(), Some(&json!("during")), "{got:?}");
    assert_eq!(got.iter().filter(|c| **c == json!("during")).count(), 1);
}
