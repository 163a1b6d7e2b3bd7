//! A request that goes away while its write transaction is starting (a client that disconnects,
//! a timeout, a socket that closes) must not leave its pooled PostgreSQL connection inside a
//! transaction. If it did, the next autocommit write on that connection would run inside that
//! transaction: acknowledged, yet visible to no other connection, and lost when the connection
//! closes (a database restart closes them all).

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures::FutureExt;
use pupmatch::infra::sql::Backend as _;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

use crate::helpers::{Backend, TestDb};

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
    for _ in 0..500 {
        if (&mut begin).now_or_never().is_some() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        if someone_in_transaction(observer).await {
            return true;
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
