//! A socket lives no longer than the session and the token that opened it: logout, a password
//! change (other sessions), a reset, a deleted account, a replayed refresh token and the
//! token's expiry each close the affected sockets within a second, on every instance, with
//! the documented close code.

use std::time::Duration;

use pupmatch::identity::tokens::TokenKeys;
use serde_json::json;

use crate::both_backends;
use crate::helpers::smtp::SmtpSink;
use crate::helpers::ws::WsClient;
use crate::helpers::{
    Backend, DEFAULT_PASSWORD, Session, TEST_JWT_SECRET, TestApp, spawn_app, spawn_app_with,
};

/// Close code of a socket whose session ended.
const SESSION_ENDED: u16 = 4001;
/// Close code of a socket refused at connect time.
const UNAUTHENTICATED: u16 = 4401;
/// Close code of a socket whose access token expired.
const TOKEN_EXPIRED: u16 = 4002;
/// How soon an ended session's sockets must close.
const PROMPTLY: Duration = Duration::from_secs(1);

both_backends!(
    logging_out_closes_that_sessions_sockets_on_every_instance,
    a_password_change_closes_every_other_sessions_sockets,
    a_password_reset_closes_every_socket,
    deleting_the_account_closes_every_socket,
    a_replayed_refresh_token_closes_its_sessions_sockets,
    a_socket_closes_when_its_token_expires,
    a_socket_opened_as_its_session_ends_does_not_outlive_it,
    a_reset_link_dies_with_a_password_change,
    an_eleventh_socket_closes_the_oldest,
    resync_and_mark_read_spend_the_chat_budget,
);

/// Where a second socket of the same person lives: another instance of the deployment in
/// scale-out mode (the close travels over the bus), the same one in embedded mode.
async fn other_instance(app: &TestApp) -> Option<TestApp> {
    match app.backend {
        Backend::Postgres => Some(app.spawn_sibling().await),
        Backend::Sqlite => None,
    }
}

async fn assert_closed(ws: &mut WsClient, code: u16) {
    let (closed, error) = ws.expect_closed(PROMPTLY).await;
    assert_eq!(closed, Some(code));
    let error = error.expect("an error frame before the close");
    assert_eq!(error["code"], "UNAUTHENTICATED", "{error}");
}

async fn logout(app: &TestApp, user: &Session) {
    let res = app
        .gql(
            None,
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": user.refresh_token }),
        )
        .await;
    assert_eq!(*res.data("logout"), json!(true));
}

async fn logging_out_closes_that_sessions_sockets_on_every_instance(backend: Backend) {
    let app = spawn_app(backend).await;
    let sibling = other_instance(&app).await;
    let there = sibling.as_ref().unwrap_or(&app);
    let phone = app.new_user().await;
    let laptop = app.sign_in(&phone.email).await;
    let mut phone_here = app.ws(&phone).await;
    let mut phone_there = there.ws(&phone).await;
    let mut laptop_ws = there.ws(&laptop).await;

    logout(&app, &phone).await;
    assert_closed(&mut phone_here, SESSION_ENDED).await;
    assert_closed(&mut phone_there, SESSION_ENDED).await;
    laptop_ws.assert_alive().await;
    // The ended session cannot open a new one.
    let mut again = app.ws_raw(Some(&phone.access_token), None).await;
    assert_eq!(again.recv().await["code"], "UNAUTHENTICATED");
}

/// A stolen token's socket opened in the instant its session ends: the session check passes
/// (this instance still has the session cached), and the end was announced before the socket
/// was there to hear it. It must not stay open until the token expires.
async fn a_socket_opened_as_its_session_ends_does_not_outlive_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let victim = app.new_user().await;
    let me = app
        .gql(Some(&victim.access_token), "{ me { id } }", json!({}))
        .await;
    assert_eq!(me.data("me")["id"], json!(victim.user_id.to_string()));
    // Another instance has just ended it: the database says so, its announcement has gone by,
    // and this instance's session cache has not dropped it yet.
    app.execute("UPDATE sessions SET revoked_at = last_used_at")
        .await;
    let mut thief = app.ws_raw(Some(&victim.access_token), None).await;
    assert_closed(&mut thief, UNAUTHENTICATED).await;
}

async fn a_password_change_closes_every_other_sessions_sockets(backend: Backend) {
    let app = spawn_app(backend).await;
    let sibling = other_instance(&app).await;
    let there = sibling.as_ref().unwrap_or(&app);
    let me = app.new_user().await;
    let other = app.sign_in(&me.email).await;
    let mut mine = app.ws(&me).await;
    let mut theirs = there.ws(&other).await;
    let res = app
        .change_password(&me, DEFAULT_PASSWORD, "a brand new password")
        .await;
    assert_eq!(*res.data("changePassword"), json!(true));
    assert_closed(&mut theirs, SESSION_ENDED).await;
    mine.assert_alive().await;
}

async fn a_password_reset_closes_every_socket(backend: Backend) {
    let mut smtp = SmtpSink::start().await;
    let url = smtp.url.clone();
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(url.into())).await;
    let sibling = other_instance(&app).await;
    let there = sibling.as_ref().unwrap_or(&app);
    let me = app.new_user().await;
    let mut here = app.ws(&me).await;
    let mut far = there.ws(&me).await;
    let token = reset_token(&app, &mut smtp, &me).await;
    let res = reset(&app, &token, "my new password 1").await;
    assert_eq!(*res.data("resetPassword"), json!(true));
    assert_closed(&mut here, SESSION_ENDED).await;
    assert_closed(&mut far, SESSION_ENDED).await;
}

async fn deleting_the_account_closes_every_socket(backend: Backend) {
    let app = spawn_app(backend).await;
    let sibling = other_instance(&app).await;
    let there = sibling.as_ref().unwrap_or(&app);
    let me = app.new_user().await;
    let other_session = app.sign_in(&me.email).await;
    let bystander = app.new_user().await;
    let mut here = app.ws(&me).await;
    let mut far = there.ws(&other_session).await;
    let mut theirs = there.ws(&bystander).await;
    app.delete_account(&me).await.data("deleteAccount");
    assert_closed(&mut here, SESSION_ENDED).await;
    assert_closed(&mut far, SESSION_ENDED).await;
    theirs.assert_alive().await;
}

async fn a_replayed_refresh_token_closes_its_sessions_sockets(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.new_user().await;
    let mut ws = app.ws(&me).await;
    app.refresh(&me.refresh_token).await.data("refreshToken");
    // The stolen, already rotated token comes back: the session is revoked.
    let replay = app.refresh(&me.refresh_token).await;
    assert_eq!(replay.error_code(), "UNAUTHENTICATED");
    assert_closed(&mut ws, SESSION_ENDED).await;
}

async fn a_socket_closes_when_its_token_expires(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.new_user().await;
    // A token of the same session, issued so that it expires two seconds from now.
    let keys = TokenKeys::new(&TEST_JWT_SECRET.to_string().into());
    let claims = keys.verify(&me.access_token).expect("the app's own token");
    let issued_at = chrono::Utc::now() - pupmatch::identity::tokens::ACCESS_TOKEN_TTL
        + chrono::Duration::seconds(2);
    let (short, _) = keys
        .issue(claims.sub, claims.sid, issued_at)
        .expect("token");
    // The token's own expiry: whole seconds.
    let expires_at = keys.verify(&short).expect("valid for now").exp * 1000;
    let short_lived = Session {
        access_token: short,
        ..me.clone()
    };
    let mut ws = app.ws(&short_lived).await;
    let mut long = app.ws(&me).await;
    ws.assert_alive().await;
    let (closed, error) = ws.expect_closed(Duration::from_secs(4)).await;
    let closed_at = chrono::Utc::now().timestamp_millis();
    assert_eq!(closed, Some(TOKEN_EXPIRED));
    assert_eq!(error.expect("an error frame")["code"], "UNAUTHENTICATED");
    assert!(closed_at >= expires_at, "not before expiry");
    assert!(
        closed_at - expires_at < 1000,
        "closed {} ms after expiry",
        closed_at - expires_at
    );
    long.assert_alive().await;
}

/// A reset link mailed before the password changed must not undo the change.
async fn a_reset_link_dies_with_a_password_change(backend: Backend) {
    let mut smtp = SmtpSink::start().await;
    let url = smtp.url.clone();
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(url.into())).await;
    let me = app.new_user().await;
    let token = reset_token(&app, &mut smtp, &me).await;
    let res = app
        .change_password(&me, DEFAULT_PASSWORD, "changed on purpose")
        .await;
    assert_eq!(*res.data("changePassword"), json!(true));
    let res = reset(&app, &token, "the attackers password").await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    app.login(&me.email, "changed on purpose")
        .await
        .data("login");
    assert_eq!(
        app.login(&me.email, "the attackers password")
            .await
            .error_code(),
        "UNAUTHENTICATED"
    );
}

async fn reset_token(app: &TestApp, smtp: &mut SmtpSink, user: &Session) -> String {
    app.gql(
        None,
        "mutation($e: String!) { requestPasswordReset(email: $e) }",
        json!({ "e": user.email }),
    )
    .await
    .data("requestPasswordReset");
    let mail = smtp.next_mail().await;
    mail.data
        .lines()
        .find_map(|l| l.trim().strip_prefix("Reset token: "))
        .expect("a token in the mail")
        .trim()
        .to_string()
}

async fn reset(app: &TestApp, token: &str, password: &str) -> crate::helpers::GqlResponse {
    app.gql(
        None,
        "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }",
        json!({ "t": token, "p": password }),
    )
    .await
}

/// Close code of a person's oldest socket when they open one too many.
const TOO_MANY: u16 = 4003;

/// Ten live sockets per person, across instances; the eleventh closes the oldest.
async fn an_eleventh_socket_closes_the_oldest(backend: Backend) {
    let app = spawn_app(backend).await;
    let sibling = other_instance(&app).await;
    let there = sibling.as_ref().unwrap_or(&app);
    let me = app.new_user().await;
    let mut sockets = Vec::new();
    for i in 0..10 {
        let instance = if i % 2 == 0 { &app } else { there };
        sockets.push(instance.ws(&me).await);
    }
    for ws in &mut sockets {
        ws.assert_alive().await;
    }
    let mut newest = there.ws(&me).await;
    let (closed, _) = sockets[0].expect_closed(PROMPTLY).await;
    assert_eq!(closed, Some(TOO_MANY));
    newest.assert_alive().await;
    for ws in &mut sockets[1..] {
        ws.assert_alive().await;
    }
    // Someone else's sockets do not count.
    let other = app.new_user().await;
    app.ws(&other).await.assert_alive().await;
    sockets[1].assert_alive().await;
}

/// `resync` and `mark_read` read and write the database: they spend the chat budget.
async fn resync_and_mark_read_spend_the_chat_budget(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.message_per_min = 3).await;
    let me = app.new_user().await;
    let mut ws = app.ws(&me).await;
    let mut limited = 0;
    for i in 0..6 {
        if i % 2 == 0 {
            ws.send(json!({ "type": "resync", "since": null })).await;
        } else {
            ws.send(json!({ "type": "mark_read", "conversationId": uuid::Uuid::now_v7(), "upTo": uuid::Uuid::now_v7() }))
                .await;
        }
        let frame = ws.recv().await;
        if frame["code"] == "RATE_LIMITED" {
            limited += 1;
        }
    }
    assert_eq!(limited, 3, "three of six refused");
    ws.assert_alive().await;
}
