//! A suspension or ban holds at every door: one that commits while the person is signing in
//! leaves them no session, and a restricted account cannot refresh its way back in.

use std::time::Duration;

use crate::both_backends;
use crate::helpers::db::uuid_lit;
use crate::helpers::staff::{BANNED, restrict_directly};
use crate::helpers::{Backend, DEFAULT_PASSWORD, TestApp, spawn_app};
use pupmatch::infra::db::Db;

both_backends!(
    a_ban_landing_during_sign_in_leaves_no_session,
    a_restricted_account_cannot_refresh,
);

/// Sessions of `user` that have not ended.
async fn live_sessions(app: &TestApp, user: uuid::Uuid) -> i64 {
    let sql = format!(
        "SELECT COUNT(*) FROM sessions WHERE user_id = {} AND revoked_at IS NULL",
        uuid_lit(app, user)
    );
    let sql = sqlx::AssertSqlSafe(sql);
    match &app.db {
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .expect("count")
}

/// Runs a ban exactly as moderation writes it (the account first, then its sessions), holding
/// its transaction open for `hold` before committing, while `during` runs.
async fn ban_held_open<F: std::future::Future>(
    app: &TestApp,
    user: uuid::Uuid,
    hold: Duration,
    during: F,
) -> F::Output {
    let id = uuid_lit(app, user);
    let statements = [
        format!("UPDATE users SET {BANNED} WHERE id = {id}"),
        format!(
            "UPDATE sessions SET revoked_at = '2026-01-01T00:00:00.000000Z'
              WHERE user_id = {id} AND revoked_at IS NULL"
        ),
    ];
    macro_rules! run {
        ($tx:expr) => {{
            let mut tx = $tx;
            for sql in &statements {
                sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(&mut *tx)
                    .await
                    .expect("ban statement");
            }
            let commit = async {
                tokio::time::sleep(hold).await;
                tx.commit().await.expect("commit");
            };
            tokio::join!(during, commit).0
        }};
    }
    match &app.db {
        Db::Postgres(pool) => run!(pool.begin().await.expect("begin")),
        Db::Sqlite(pool) => run!(pupmatch::infra::db::begin_write(pool).await.expect("begin")),
    }
}

async fn a_ban_landing_during_sign_in_leaves_no_session(backend: Backend) {
    let app = spawn_app(backend).await;
    for _ in 0..3 {
        let person = app.new_user().await;
        // The sign-in checks the account before the ban commits, and stores its session after.
        let res = ban_held_open(
            &app,
            person.user_id,
            Duration::from_millis(1500),
            app.login(&person.email, DEFAULT_PASSWORD),
        )
        .await;
        assert_eq!(
            live_sessions(&app, person.user_id).await,
            0,
            "a ban left a session behind: {}",
            res.body
        );
        assert_eq!(res.error_code(), "FORBIDDEN", "{}", res.body);
        assert!(
            res.error_message().contains("banned"),
            "the person is told why: {}",
            res.body
        );
        // And the door stays shut.
        let again = app.login(&person.email, DEFAULT_PASSWORD).await;
        assert_eq!(again.error_code(), "FORBIDDEN", "{}", again.body);
    }
}

async fn a_restricted_account_cannot_refresh(backend: Backend) {
    let app = spawn_app(backend).await;
    let person = app.new_user().await;
    // A session that outlived a restriction (whatever way it survived) is not renewed.
    restrict_directly(
        &app,
        person.user_id,
        "suspended_until = '9999-01-01T00:00:00.000000Z',
         hidden_until = '9999-01-01T00:00:00.000000Z'",
    )
    .await;
    let res = app.refresh(&person.refresh_token).await;
    assert_eq!(res.error_code(), "FORBIDDEN", "{}", res.body);
    assert!(
        res.error_message().contains("suspended until 9999-01-01"),
        "{}",
        res.body
    );
    // Nothing was rotated: once the suspension ends, the same token works.
    restrict_directly(
        &app,
        person.user_id,
        "suspended_until = NULL, hidden_until = NULL",
    )
    .await;
    let res = app.refresh(&person.refresh_token).await;
    assert!(res.errors().is_empty(), "{}", res.body);
    // A ban, the same.
    let person = app.new_user().await;
    restrict_directly(&app, person.user_id, BANNED).await;
    let res = app.refresh(&person.refresh_token).await;
    assert_eq!(res.error_code(), "FORBIDDEN", "{}", res.body);
    assert!(res.error_message().contains("banned"), "{}", res.body);
}
