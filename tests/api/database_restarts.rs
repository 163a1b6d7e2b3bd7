//! A database that restarts (PostgreSQL's fast restart: every connection is closed) while two
//! instances carry live chat: no acknowledged message is lost or stored twice, every refusal is
//! SERVICE_UNAVAILABLE with a retry hint (never INTERNAL), on the socket and over GraphQL. The
//! restart is of the primary of the replica pair, so this runs in that pair's group, one test
//! at a time (`.config/nextest.toml`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::people::{BERLIN, dog_at, like, north_of};
use crate::helpers::process::{Alone, runs_alone_elsewhere};
use crate::helpers::{Session, TestApp, TestDb, pg_ctlcluster, pg_primary_url, spawn_app_on};

/// Messages each sender sends, 8 a second.
const MESSAGES: usize = 40;

async fn conversation(app: &TestApp, a: &Session, b: &Session) -> String {
    like(app, a, b.user_id).await.data("like");
    let matched = like(app, b, a.user_id).await;
    matched.data("like")["match"]["conversationId"]
        .as_str()
        .expect("conversation")
        .to_string()
}

/// Sends `MESSAGES` messages into `conversation` over a socket of `app`, 8 a second, each
/// until acknowledged (a refusal is retried with the same client id after its retry hint, as
/// the app does). Returns the client ids acknowledged, and every refusal's code.
async fn send_all(
    app: &TestApp,
    sender: &Session,
    conversation: &str,
) -> (Vec<String>, Vec<String>) {
    let mut socket = app.ws(sender).await;
    let mut acked = Vec::new();
    let mut refusals = Vec::new();
    for i in 0..MESSAGES {
        let client_id = format!("{conversation}-{i}");
        let started = Instant::now();
        loop {
            socket
                .send(json!({
                    "type": "send_message",
                    "conversationId": conversation,
                    "content": format!("message {i}"),
                    "clientId": client_id,
                }))
                .await;
            // The answer to this frame: its ack, a refusal, or the socket closing.
            let frame = loop {
                let frame = socket
                    .try_recv(Duration::from_secs(5))
                    .await
                    .unwrap_or_else(|| panic!("no answer to message {i} within 5 s"));
                if frame.get("closed").is_some()
                    || (matches!(frame["type"].as_str(), Some("message_ack" | "error"))
                        && frame["clientId"] == client_id.as_str())
                {
                    break frame;
                }
            };
            if frame["type"] == "message_ack" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "message {i} was never acknowledged"
            );
            if frame.get("closed").is_some() {
                refusals.push(format!("closed {}", frame["closed"]));
                socket = app.ws(sender).await;
                continue;
            }
            assert!(
                frame["retryAfter"].is_number(),
                "a refusal says when to retry: {frame}"
            );
            refusals.push(frame["code"].as_str().unwrap_or("?").to_string());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        acked.push(client_id);
        tokio::time::sleep(Duration::from_millis(125)).await;
    }
    (acked, refusals)
}

/// Everything `recipient` receives on a socket of `app` for `duration`: client ids of messages
/// in `conversation`, in arrival order (a closed socket is reopened and resynced from the last
/// message seen, as the app does).
async fn receive_all(
    app: &TestApp,
    recipient: &Session,
    conversation: &str,
    duration: Duration,
) -> Vec<String> {
    let until = Instant::now() + duration;
    let mut got = Vec::new();
    let mut last_id: Option<Value> = None;
    let mut socket = app.ws(recipient).await;
    while Instant::now() < until {
        let Some(frame) = socket.try_recv(Duration::from_millis(200)).await else {
            continue;
        };
        if frame.get("closed").is_some() {
            socket = app.ws(recipient).await;
            if let Some(since) = &last_id {
                socket
                    .send(json!({ "type": "resync", "since": since }))
                    .await;
            }
            continue;
        }
        if frame["type"] == "message" && frame["message"]["conversationId"] == conversation {
            got.push(
                frame["message"]["clientId"]
                    .as_str()
                    .expect("client id")
                    .to_string(),
            );
            last_id = Some(frame["message"]["id"].clone());
        }
    }
    got
}

/// `me` over GraphQL every 50 ms for `duration`: the status and error code of every failure.
async fn poll_graphql(app: &TestApp, user: &Session, duration: Duration) -> Vec<(u16, String)> {
    let until = Instant::now() + duration;
    let mut failures = Vec::new();
    while Instant::now() < until {
        let res = app
            .gql(
                user.token(),
                "{ me { id profile { name } } matches { edges { node { id } } } }",
                json!({}),
            )
            .await;
        if !res.errors().is_empty() {
            assert!(
                res.retry_after.is_some(),
                "a failure during the restart says when to retry: {:?}",
                res.body
            );
            failures.push((res.status, res.error_code().to_string()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fast_restart_of_the_database_loses_no_message_and_answers_none_internal() {
    if runs_alone_elsewhere(Alone::ReplicaPair) {
        return;
    }
    let app = spawn_app_on(TestDb::create_on(&pg_primary_url()).await, |_| {}).await;
    let sibling = app.spawn_sibling().await;
    let alice = dog_at(&app, "Alice", BERLIN).await;
    let bob = dog_at(&app, "Bob", north_of(BERLIN, 1.0)).await;
    let carol = dog_at(&app, "Carol", north_of(BERLIN, 2.0)).await;
    let dave = dog_at(&app, "Dave", north_of(BERLIN, 3.0)).await;
    for (a, b) in [
        (&alice, &bob),
        (&carol, &dave),
        (&bob, &alice),
        (&dave, &carol),
    ] {
        app.introduce(a, b).await;
    }
    let first = conversation(&app, &alice, &bob).await;
    let second = conversation(&app, &carol, &dave).await;

    let listen = Duration::from_secs(12);
    // Bob writes through one instance to Alice on the other, Dave the other way round.
    let results = tokio::join!(
        send_all(&app, &bob, &first),
        send_all(&sibling, &dave, &second),
        receive_all(&sibling, &alice, &first, listen),
        receive_all(&app, &carol, &second, listen),
        poll_graphql(&app, &alice, Duration::from_secs(6)),
        poll_graphql(&sibling, &carol, Duration::from_secs(6)),
        async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            tokio::task::spawn_blocking(|| {
                pg_ctlcluster("pupmatch_primary", &["restart", "-m", "fast"]);
            })
            .await
            .expect("restart");
        },
    );
    let (sent_first, refused_first) = results.0;
    let (sent_second, refused_second) = results.1;
    let (got_first, got_second) = (results.2, results.3);
    let graphql_failures: Vec<_> = results.4.into_iter().chain(results.5).collect();

    for code in refused_first.iter().chain(&refused_second) {
        assert_eq!(
            code, "SERVICE_UNAVAILABLE",
            "a socket refusal during the restart"
        );
    }
    for (status, code) in &graphql_failures {
        assert_eq!(
            (*status, code.as_str()),
            (503, "SERVICE_UNAVAILABLE"),
            "{graphql_failures:?}"
        );
    }
    // Every acknowledged message reached its recipient exactly once, in order.
    assert_eq!(
        got_first, sent_first,
        "Alice got each of Bob's messages once"
    );
    assert_eq!(
        got_second, sent_second,
        "Carol got each of Dave's messages once"
    );
    // And each is stored exactly once.
    let stored: Vec<(String, i64)> = sqlx::query_as(
        "SELECT client_id, count(*) FROM messages WHERE client_id IS NOT NULL GROUP BY client_id",
    )
    .fetch_all(match &app.db {
        pupmatch::infra::db::Db::Postgres(pool) => pool,
        pupmatch::infra::db::Db::Sqlite(_) => unreachable!("PostgreSQL"),
    })
    .await
    .expect("messages");
    let stored: HashMap<String, i64> = stored.into_iter().collect();
    let sent: HashSet<&String> = sent_first.iter().chain(&sent_second).collect();
    assert_eq!(stored.len(), sent.len());
    for (client_id, count) in &stored {
        assert_eq!(*count, 1, "{client_id} stored {count} times");
        assert!(sent.contains(client_id));
    }
    eprintln!(
        "socket refusals: {}, GraphQL failures: {}",
        refused_first.len() + refused_second.len(),
        graphql_failures.len()
    );
}
