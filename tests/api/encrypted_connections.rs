//! Encrypted connections to PostgreSQL and Redis. scripts/test.sh makes a throwaway CA and
//! starts a PostgreSQL cluster and a Redis that accept TLS only, with a certificate for the
//! name `localhost` (so `127.0.0.1` is a host name the certificate does not hold), and a
//! second, unrelated CA.
//!
//! The server connects with `sslmode=verify-full` (what a CA file means without a mode),
//! `verify-ca` and `require` (which verifies the chain when a CA file is given), and over
//! `rediss://`; a certificate from another CA, or one that
//! does not name the host, stops it at startup with an error that says so.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::{Backend, pg_admin_url, redis_url, spawn_app_with};
use pupmatch::infra::db::Db;
use pupmatch::infra::redis::Redis;

fn tls_dir() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("TEST_TLS_DIR").unwrap_or_else(|_| "/tmp/pupmatch-test-tls".into()),
    );
    assert!(
        dir.join("ca.pem").exists(),
        "no test CA in {} (scripts/test.sh makes it and starts TLS-only PostgreSQL and Redis)",
        dir.display()
    );
    dir
}

fn ca() -> PathBuf {
    tls_dir().join("ca.pem")
}

fn other_ca() -> PathBuf {
    tls_dir().join("other-ca.pem")
}

fn pg_port() -> String {
    std::env::var("TEST_TLS_PG_PORT").unwrap_or_else(|_| "5433".into())
}

fn redis_port() -> String {
    std::env::var("TEST_TLS_REDIS_PORT").unwrap_or_else(|_| "6380".into())
}

/// A URL of the TLS-only cluster (trust authentication, over TLS only).
fn tls_pg_url(host: &str, database: &str, query: &str) -> String {
    format!("postgres://postgres@{host}:{}/{database}{query}", pg_port())
}

/// An admin connection to the TLS-only cluster, verified against the test CA.
async fn tls_admin() -> PgConnection {
    let url = tls_pg_url(
        "localhost",
        "postgres",
        &format!("?sslmode=verify-full&sslrootcert={}", ca().display()),
    );
    PgConnection::connect(&url)
        .await
        .expect("the TLS-only PostgreSQL runs (scripts/test.sh starts it)")
}

/// A fresh database on the TLS-only cluster; dropped by [`drop_tls_database`].
async fn create_tls_database() -> String {
    let name = format!("pupmatch_test_tls_{}", Uuid::new_v4().simple());
    let mut admin = tls_admin().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .expect("create database");
    name
}

async fn drop_tls_database(name: &str) {
    let mut admin = tls_admin().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
}

/// How many connections to `database` there are, and how many of them are encrypted.
async fn connections_to(database: &str) -> (i64, i64) {
    let mut admin = tls_admin().await;
    sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE s.ssl)
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
         WHERE a.datname = $1",
    )
    .bind(database)
    .fetch_one(&mut admin)
    .await
    .expect("pg_stat_ssl")
}

/// Runs the binary with `env` (on top of a minimal configuration) and returns what it printed,
/// asserting that it refused to start.
async fn startup_failure(env: &[(&str, String)]) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pupmatch"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PUPMATCH_LISTEN", "127.0.0.1:0")
        .env(
            "PUPMATCH_DATABASE_URL",
            format!("sqlite://{}/pupmatch.db", dir.path().display()),
        )
        .env("PUPMATCH_MEDIA_DIR", dir.path().join("media"))
        .env("PUPMATCH_JOBS_IN_SERVE", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("the server gives up within 30 s")
        .expect("the binary runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "it must not start:\n{printed}");
    printed
}

/// The server on the TLS-only cluster with only a CA file (so `verify-full`) serves requests,
/// and every connection it holds is encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_with_a_ca_file_verifies_the_server_and_encrypts() {
    let database = create_tls_database().await;
    let url = tls_pg_url("localhost", &database, "");
    let app = spawn_app_with(Backend::Postgres, |c| {
        c.database_url = url.clone();
        c.database_ca_file = Some(ca());
    })
    .await;
    let user = app.new_user().await;
    let me = app.me(user.token()).await;
    assert_eq!(me.data("me")["email"], json!(user.email), "{:?}", me.body);

    let mut db = PgConnection::connect(&tls_pg_url(
        "localhost",
        &database,
        &format!("?sslmode=verify-full&sslrootcert={}", ca().display()),
    ))
    .await
    .expect("connect");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email = $1")
        .bind(&user.email)
        .fetch_one(&mut db)
        .await
        .expect("count");
    assert_eq!(stored, 1, "the account is in the encrypted cluster");
    db.close().await.expect("close");
    let (all, encrypted) = connections_to(&database).await;
    assert!(all >= 1, "the server holds connections");
    assert_eq!(all, encrypted, "every connection is encrypted");
    drop(app);
    drop_tls_database(&database).await;
}

/// `verify-ca` accepts a certificate that does not name the host (it checks the chain only),
/// `require` encrypts without checking either; the cluster refuses unencrypted connections, so
/// each of these was encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_verify_ca_and_require_connect_where_verify_full_would_not() {
    let ca = ca();
    let verify_ca = tls_pg_url("127.0.0.1", "postgres", "?sslmode=verify-ca");
    let db = Db::connect(&verify_ca, 1, Some(&ca))
        .await
        .expect("verify-ca checks the chain, not the name");
    db.ping().await.expect("ping");
    db.close().await;

    let require = tls_pg_url("127.0.0.1", "postgres", "?sslmode=require");
    let db = Db::connect(&require, 1, None)
        .await
        .expect("require encrypts");
    db.ping().await.expect("ping");
    db.close().await;

    let plain = tls_pg_url("localhost", "postgres", "?sslmode=disable");
    let err = Db::connect(&plain, 1, None)
        .await
        .expect_err("the cluster accepts encrypted connections only");
    assert!(format!("{err:#}").contains("no encryption"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_with_a_certificate_from_another_ca_refuses_to_start() {
    let printed = startup_failure(&[
        (
            "PUPMATCH_DATABASE_URL",
            tls_pg_url("localhost", "postgres", "?sslmode=verify-full"),
        ),
        (
            "PUPMATCH_DATABASE_CA_FILE",
            other_ca().display().to_string(),
        ),
    ])
    .await;
    let at = format!(
        "encrypted connection to PostgreSQL at localhost:{}",
        pg_port()
    );
    assert!(printed.contains(&at), "{printed}");
    assert!(printed.contains("sslmode=verify-full"), "{printed}");
    assert!(printed.contains("UnknownIssuer"), "{printed}");
    assert!(printed.contains("PUPMATCH_DATABASE_CA_FILE"), "{printed}");

    // Without a CA file the system's trust store is used, which does not know the test CA.
    let printed = startup_failure(&[(
        "PUPMATCH_DATABASE_URL",
        tls_pg_url("localhost", "postgres", "?sslmode=verify-full"),
    )])
    .await;
    assert!(printed.contains("UnknownIssuer"), "{printed}");
}

/// `require` with a CA file verifies the chain, as libpq does when a root certificate is
/// there: a certificate from another CA stops the server at start, however the URL says
/// `require` (the last `sslmode` is the one used; a `host` parameter names the host).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_require_with_a_ca_file_verifies_the_chain() {
    for query in [
        "?sslmode=require".to_string(),
        "?sslmode=verify-full&sslmode=require".to_string(),
    ] {
        let printed = startup_failure(&[
            (
                "PUPMATCH_DATABASE_URL",
                tls_pg_url("localhost", "postgres", &query),
            ),
            (
                "PUPMATCH_DATABASE_CA_FILE",
                other_ca().display().to_string(),
            ),
        ])
        .await;
        assert!(printed.contains("sslmode=verify-ca"), "{query}: {printed}");
        assert!(printed.contains("UnknownIssuer"), "{query}: {printed}");
    }
    // The URL's own host and port are overridden by its parameters, as the driver reads them.
    let printed = startup_failure(&[
        (
            "PUPMATCH_DATABASE_URL",
            format!(
                "postgres://postgres@127.0.0.1:5432/postgres?host=localhost&port={}&sslmode=require",
                pg_port()
            ),
        ),
        (
            "PUPMATCH_DATABASE_CA_FILE",
            other_ca().display().to_string(),
        ),
    ])
    .await;
    assert!(
        printed.contains(&format!("localhost:{} (sslmode=verify-ca", pg_port())),
        "{printed}"
    );
    assert!(printed.contains("UnknownIssuer"), "{printed}");

    // With the right CA, `require` connects: the chain is checked, not the name.
    let require = tls_pg_url("127.0.0.1", "postgres", "?sslmode=require");
    let db = Db::connect(&require, 1, Some(&ca()))
        .await
        .expect("the chain is the test CA's");
    db.ping().await.expect("ping");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_with_a_certificate_for_another_host_refuses_to_start() {
    let printed = startup_failure(&[
        (
            "PUPMATCH_DATABASE_URL",
            tls_pg_url("127.0.0.1", "postgres", ""),
        ),
        ("PUPMATCH_DATABASE_CA_FILE", ca().display().to_string()),
    ])
    .await;
    let at = format!(
        "encrypted connection to PostgreSQL at 127.0.0.1:{}",
        pg_port()
    );
    assert!(printed.contains(&at), "{printed}");
    assert!(printed.contains("not valid for name"), "{printed}");
}

/// Over `rediss://` with the CA file the server starts, shares its limits through the
/// encrypted Redis, and a second instance receives events published by the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_with_a_ca_file_carries_limits_and_events() {
    let url = format!("rediss://localhost:{}", redis_port());
    let app = spawn_app_with(Backend::Postgres, |c| {
        c.redis_url = Some(url.clone());
        c.redis_ca_file = Some(ca());
    })
    .await;
    let user = app.new_user().await;
    let me = app.me(user.token()).await;
    assert_eq!(me.data("me")["email"], json!(user.email), "{:?}", me.body);

    let redis = Redis::connect(&url, &app.config.redis_prefix, Some(&ca()))
        .await
        .expect("the TLS-only Redis runs (scripts/test.sh starts it)");
    let pattern = redis.key("*");
    let keys: Vec<String> = redis
        .query(redis::cmd("KEYS").arg(&pattern).clone())
        .await
        .expect("keys");
    assert!(
        !keys.is_empty(),
        "the server's rate limits live in the encrypted Redis"
    );
    // The shared Redis on the plain port holds nothing of this deployment.
    let plain = Redis::connect(&redis_url(), &app.config.redis_prefix, None)
        .await
        .expect("redis");
    let keys: Vec<String> = plain
        .query(redis::cmd("KEYS").arg(&pattern).clone())
        .await
        .expect("keys");
    assert!(keys.is_empty(), "{keys:?}");

    // Events cross instances through the encrypted pub/sub: a session ended on one instance
    // closes its socket on the other.
    let sibling = app.spawn_sibling().await;
    let mut socket = sibling.ws(&user).await;
    let logout = app
        .gql(
            None,
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": user.refresh_token }),
        )
        .await;
    assert_eq!(*logout.data("logout"), json!(true), "{:?}", logout.body);
    let (closed, _) = socket.expect_closed(Duration::from_secs(2)).await;
    assert_eq!(
        closed,
        Some(4001),
        "the sibling closed the ended session's socket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_a_certificate_from_another_ca_or_for_another_host_refuses_to_start() {
    let printed = startup_failure(&[
        (
            "PUPMATCH_REDIS_URL",
            format!("rediss://localhost:{}", redis_port()),
        ),
        ("PUPMATCH_REDIS_CA_FILE", other_ca().display().to_string()),
    ])
    .await;
    let at = format!(
        "encrypted connection to Redis at localhost:{}",
        redis_port()
    );
    assert!(printed.contains(&at), "{printed}");
    assert!(printed.contains("UnknownIssuer"), "{printed}");
    assert!(printed.contains("PUPMATCH_REDIS_CA_FILE"), "{printed}");

    let printed = startup_failure(&[
        (
            "PUPMATCH_REDIS_URL",
            format!("rediss://127.0.0.1:{}", redis_port()),
        ),
        ("PUPMATCH_REDIS_CA_FILE", ca().display().to_string()),
    ])
    .await;
    let at = format!(
        "encrypted connection to Redis at 127.0.0.1:{}",
        redis_port()
    );
    assert!(printed.contains(&at), "{printed}");
    assert!(printed.contains("not valid for name"), "{printed}");
}

/// Settings that cannot mean what the operator wants are refused before anything connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inconsistent_tls_settings_are_refused_with_the_setting_named() {
    let printed = startup_failure(&[
        ("PUPMATCH_REDIS_URL", redis_url()),
        ("PUPMATCH_REDIS_CA_FILE", ca().display().to_string()),
    ])
    .await;
    assert!(
        printed.contains("PUPMATCH_REDIS_CA_FILE needs an encrypted PUPMATCH_REDIS_URL"),
        "{printed}"
    );
    let printed = startup_failure(&[
        (
            "PUPMATCH_DATABASE_URL",
            format!("{}?sslmode=prefer", pg_admin_url()),
        ),
        ("PUPMATCH_DATABASE_CA_FILE", ca().display().to_string()),
    ])
    .await;
    assert!(
        printed.contains("PUPMATCH_DATABASE_CA_FILE needs sslmode=verify-full"),
        "{printed}"
    );
    // Redis's `#insecure` would turn the certificate check off: refused.
    let printed = startup_failure(&[(
        "PUPMATCH_REDIS_URL",
        format!("rediss://localhost:{}/#insecure", redis_port()),
    )])
    .await;
    assert!(
        printed.contains("PUPMATCH_REDIS_URL: `#insecure` turns off the certificate check"),
        "{printed}"
    );
}
