//! No secret reaches the logs, and the careless-operator settings are refused: production
//! without a mail server does not start (reset emails would only be logged), and `seed` (demo
//! accounts with a published password) refuses production. A PostgreSQL that never refreshes
//! its planner statistics (autovacuum off) is named in the log at start-up.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::process::{
    Alone, runs_alone_elsewhere, serve_on, server_command, wait_for_address, wait_for_log,
};
use crate::helpers::{Backend, TestDb, in_production, pg_primary_url, test_config};

both_backends!(
    production_without_a_mail_server_refuses_to_start,
    seed_refuses_to_run_in_production,
    no_working_token_reaches_the_logs,
);

async fn production_without_a_mail_server_refuses_to_start(backend: Backend) {
    let db = TestDb::create(backend).await;
    let media = tempfile::tempdir().expect("dir");
    let mut config = test_config(backend, &db, media.path());
    in_production(&mut config);
    config.smtp_url = None;
    let err = pupmatch::Application::build(config.clone())
        .await
        .err()
        .expect("must refuse to start");
    assert!(err.to_string().contains("PUPMATCH_SMTP_URL"), "{err}");
    // Asking for the secrets in the log is refused in production even with a mail server.
    config.smtp_url = Some("smtp://127.0.0.1:1".to_string().into());
    config.mail_log_secrets = true;
    let err = pupmatch::Application::build(config)
        .await
        .err()
        .expect("must refuse to start");
    assert!(
        err.to_string().contains("PUPMATCH_MAIL_LOG_SECRETS"),
        "{err}"
    );
}

async fn seed_refuses_to_run_in_production(backend: Backend) {
    let db = TestDb::create(backend).await;
    let media = tempfile::tempdir().expect("dir");
    let mut config = test_config(backend, &db, media.path());
    in_production(&mut config);
    let err = pupmatch::seed::run(&config, 3)
        .await
        .expect_err("seed must refuse production");
    assert!(err.to_string().contains("production"), "{err}");
    let handle = pupmatch::infra::db::Db::connect(db.url(), 1, None)
        .await
        .expect("db");
    handle.migrate().await.expect("migrate");
    let users: i64 = match &handle {
        pupmatch::infra::db::Db::Postgres(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(pool)
            .await
            .expect("count"),
        pupmatch::infra::db::Db::Sqlite(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(pool)
            .await
            .expect("count"),
    };
    assert_eq!(users, 0, "no demo account was made");
}

/// The released binary, in development mode without SMTP (so reset emails go to the log),
/// logging at debug level, through a whole run: register, login, refresh, a request with the
/// access token, a WebSocket authenticated by its first frame, and a password reset. Then every
/// token-shaped string in the log is tried as an access, refresh and reset token: none works.
async fn no_working_token_reaches_the_logs(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let log_path = dir.path().join("server.log");
    let mut command = server_command(backend, &db, dir.path(), &log_path);
    command
        .env("PUPMATCH_LOG", "debug")
        .env("PUPMATCH_RATE_LIMIT_AUTH_PER_MIN", "100000");
    let mut server = command.spawn().expect("the binary starts");
    let base = wait_for_address(&log_path).await;
    let client = reqwest::Client::new();
    let gql = |token: Option<String>, query: &'static str, variables: Value| {
        let client = client.clone();
        let url = format!("{base}/graphql");
        async move {
            let mut req = client
                .post(url)
                .json(&json!({ "query": query, "variables": variables }));
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            let body: Value = req
                .send()
                .await
                .expect("request")
                .json()
                .await
                .expect("json");
            body
        }
    };

    let email = "logged@example.com";
    let password = "a secret password";
    let registered = gql(
        None,
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken } }",
        json!({ "i": { "email": email, "password": password } }),
    )
    .await;
    assert!(
        registered["data"]["register"]["accessToken"].is_string(),
        "{registered}"
    );
    let login = gql(
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }",
        json!({ "e": email, "p": password }),
    )
    .await;
    let refresh_token = login["data"]["login"]["refreshToken"]
        .as_str()
        .expect("refresh token")
        .to_string();
    let refreshed = gql(
        None,
        "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }",
        json!({ "t": refresh_token }),
    )
    .await;
    let access = refreshed["data"]["refreshToken"]["accessToken"]
        .as_str()
        .expect("access token")
        .to_string();
    let me = gql(Some(access.clone()), "{ me { id } }", json!({})).await;
    assert!(me["data"]["me"]["id"].is_string(), "{me}");
    {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let url = format!("{}/ws", base.replacen("http", "ws", 1));
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket");
        ws.send(Message::Text(
            json!({ "type": "auth", "token": access })
                .to_string()
                .into(),
        ))
        .await
        .expect("auth frame");
        let ready = ws.next().await.expect("frame").expect("frame");
        assert!(
            ready.to_text().expect("text").contains("ready"),
            "{ready:?}"
        );
    }
    let reset = gql(
        None,
        "mutation($e: String!) { requestPasswordReset(email: $e) }",
        json!({ "e": email }),
    )
    .await;
    assert_eq!(reset["data"]["requestPasswordReset"], true, "{reset}");
    let text = wait_for_log(&log_path, "[redacted]").await;
    assert!(
        text.contains("Reset token: [redacted]"),
        "the reset email is logged, redacted"
    );
    assert!(!text.contains(email), "no email address in the log");

    // Every token-shaped string of the log, tried every way a token can be used.
    let candidates: std::collections::BTreeSet<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .filter(|s| s.len() >= 40)
        .collect();
    for candidate in &candidates {
        let as_access = gql(Some(candidate.to_string()), "{ me { id } }", json!({})).await;
        assert!(
            as_access["data"]["me"].is_null(),
            "{candidate} works as an access token"
        );
        let as_refresh = gql(
            None,
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            json!({ "t": candidate }),
        )
        .await;
        assert!(
            as_refresh["data"].is_null() || as_refresh["data"]["refreshToken"].is_null(),
            "{candidate} works as a refresh token"
        );
        let as_reset = gql(
            None,
            "mutation($t: String!) { resetPassword(token: $t, newPassword: \"taken over!\") }",
            json!({ "t": candidate }),
        )
        .await;
        assert!(
            as_reset["data"].is_null() || as_reset["data"]["resetPassword"].is_null(),
            "{candidate} works as a reset token"
        );
    }
    // The account is still the owner's.
    let still = gql(
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
        json!({ "e": email, "p": password }),
    )
    .await;
    assert!(still["data"]["login"]["accessToken"].is_string(), "{still}");
    let _ = server.kill().await;
}

/// The start-up log warns exactly when the database's autovacuum is off: both settings, on the
/// PostgreSQL cluster the tests own (the primary of the replica pair), its setting restored after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_autovacuum_is_named_at_start_up_postgres() {
    if runs_alone_elsewhere(Alone::ReplicaPair) {
        return;
    }
    let admin = pg_primary_url();
    let set = |on: bool| {
        let admin = admin.clone();
        async move {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                .await
                .expect("connect");
            let (value, statement) = if on {
                ("on", "ALTER SYSTEM SET autovacuum = on")
            } else {
                ("off", "ALTER SYSTEM SET autovacuum = off")
            };
            sqlx::query(statement)
                .execute(&mut conn)
                .await
                .expect("set");
            sqlx::query("SELECT pg_reload_conf()")
                .execute(&mut conn)
                .await
                .expect("reload");
            // The setting as a new session sees it, once the reload reached the postmaster.
            for _ in 0..100 {
                let mut fresh = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("connect");
                let now: String = sqlx::query_scalar("SELECT current_setting('autovacuum')")
                    .fetch_one(&mut fresh)
                    .await
                    .expect("setting");
                if now == value {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("autovacuum never became {value}");
        }
    };
    let warned = |log: &str| {
        log.lines().any(|line| {
            line.contains("\"WARN\"")
                && line.contains("autovacuum is off")
                && line.contains("ANALYZE")
        })
    };
    set(false).await;
    let mut off = serve_on(Backend::Postgres, TestDb::create_on(&admin).await, &[]).await;
    let _ = off.process.kill().await;
    set(true).await;
    let mut on = serve_on(Backend::Postgres, TestDb::create_on(&admin).await, &[]).await;
    let _ = on.process.kill().await;
    assert!(
        warned(&off.log),
        "no warning with autovacuum off:\n{}",
        off.log
    );
    assert!(
        !warned(&on.log),
        "a warning with autovacuum on:\n{}",
        on.log
    );
}
