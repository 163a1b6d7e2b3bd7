//! Requests that go away midway (a client that disconnects, a timeout, a socket that closes).
//! A write transaction cancelled while starting must not leave its pooled PostgreSQL connection
//! inside a transaction: the next autocommit write on that connection would run inside it,
//! acknowledged yet visible to no other connection, and lost when the connection closes (a
//! database restart closes them all). A write that was stored is carried through to the end,
//! whoever hung up.

use std::future::Future;
use std::pin::pin;
use std::time::{Duration, Instant};

use futures::FutureExt;
use pupmatch::infra::sql::Backend as _;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::chat::matched_pair;
use crate::helpers::{Backend, TestDb, spawn_app};

/// Whether a connection of this database other than `observer` is inside a transaction.
async fn someone_in_transaction(observer: &mut PgConnection) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND state LIKE 'idle in transaction%')",
    )
    .fetch_one(observer)
    .await
    .expect("pg_stat_activity")
}

/// Polls `begin` once at a time until the server has run its `BEGIN`, then drops it before it
/// reads the answer. Returns false if `begin` finished within one poll (nothing was cancelled).
async fn cancel_once_begun<F: Future>(begin: F, observer: &mut PgConnection) -> bool {
    let mut begin = pin!(begin);
    for _ in 0..50 {
        if (&mut begin).now_or_never().is_some() {
            return false;
        }
        // The poll may have sent the BEGIN (or only got further in acquiring a connection):
        // give a busy server a while to run it before polling again.
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            if someone_in_transaction(observer).await {
                return true;
            }
        }
    }
    panic!("the BEGIN never reached the server");
}

#[tokio::test]
async fn a_write_transaction_cancelled_while_beginning_loses_no_later_write() {
    let db = TestDb::create(Backend::Postgres).await;
    // One connection, so the write after the cancelled BEGIN gets the same one.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(db.url())
        .await
        .expect("pool");
    let mut observer = PgConnection::connect(db.url()).await.expect("observer");
    sqlx::query("CREATE TABLE notes (body text NOT NULL)")
        .execute(&pool)
        .await
        .expect("table");

    let mut cancelled = 0;
    for attempt in 0..20 {
        if !cancel_once_begun(pool.begin_write(), &mut observer).await {
            continue;
        }
        cancelled += 1;
        sqlx::query("INSERT INTO notes (body) VALUES ($1)")
            .bind(format!("after cancelled begin {attempt}"))
            .execute(&pool)
            .await
            .expect("insert");
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
            .fetch_one(&mut observer)
            .await
            .expect("count");
        assert_eq!(
            seen, cancelled,
            "a write after a cancelled BEGIN is invisible to other connections"
        );
        assert!(
            !someone_in_transaction(&mut observer).await,
            "the pooled connection is still inside the cancelled transaction"
        );
        if cancelled == 3 {
            return;
        }
    }
    panic!("only {cancelled} of 20 BEGINs could be cancelled in flight");
}

/// Whether a connection of this database other than `observer` waits for a lock.
async fn someone_waits_for_a_lock(observer: &mut PgConnection) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND wait_event_type = 'Lock')",
    )
    .fetch_one(observer)
    .await
    .expect("pg_stat_activity")
}

/// A sender whose connection drops after their message is stored, while it is being delivered:
/// the recipient still gets everything a message brings (here, its notification), as if the
/// sender had stayed. Otherwise a flaky network (or an attacker hanging up on purpose) would
/// leave stored messages nobody was told about.
#[tokio::test]
async fn a_message_whose_sender_hangs_up_midway_is_still_delivered_in_full() {
    let app = spawn_app(Backend::Postgres).await;
    let (alice, bob, conversation) = matched_pair(&app).await;
    let mut bob_socket = app.ws(&bob).await;
    let mut observer = PgConnection::connect(&app.config.database_url)
        .await
        .expect("observer");
    // Holding the notifications table stops the send after its message is stored and
    // delivered, while it stores the message's notification.
    let mut holder = PgConnection::connect(&app.config.database_url)
        .await
        .expect("holder");
    sqlx::query("BEGIN")
        .execute(&mut holder)
        .await
        .expect("begin");
    sqlx::query("LOCK TABLE notifications IN EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .expect("lock");

    let body = json!({
        "query": "mutation($c: UUID!, $t: String!) { sendMessage(conversationId: $c, content: $t) { id } }",
        "variables": { "c": conversation, "t": "are you there?" },
    })
    .to_string();
    let host = app.address.trim_start_matches("http://").to_string();
    let mut client = TcpStream::connect(&host).await.expect("connect");
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        alice.access_token,
        body.len()
    );
    client.write_all(request.as_bytes()).await.expect("request");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !someone_waits_for_a_lock(&mut observer).await {
        assert!(
            Instant::now() < deadline,
            "the send never reached the notification"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let message = bob_socket.recv().await;
    assert_eq!(message["type"], "message", "{message}");
    // The sender hangs up, and the server has time to notice, before the table is free.
    drop(client);
    tokio::time::sleep(Duration::from_millis(500)).await;
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("rollback");

    let notification = bob_socket
        .try_recv(Duration::from_secs(5))
        .await
        .expect("the message's notification reaches its recipient");
    assert_eq!(notification["type"], "notification", "{notification}");
    assert_eq!(
        notification["notification"]["kind"], "MESSAGE",
        "{notification}"
    );
}
