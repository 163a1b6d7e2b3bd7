//! Password reset by email, received by a real SMTP server the test starts.

use std::time::Duration;

use pupmatch::auth::store::{AuthStore, NewRefreshToken, OneTimeToken};
use pupmatch::identity::tokens::new_opaque_token;
use serde_json::json;
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::smtp::SmtpSink;
use crate::helpers::{Backend, DEFAULT_PASSWORD, GqlResponse, TestApp, spawn_app, spawn_app_with};

both_backends!(
    a_new_reset_link_ends_the_earlier_ones,
    reset_emails_cannot_flood_an_inbox,
    a_reset_email_lets_the_owner_choose_a_new_password,
    an_unknown_email_gets_the_same_answer_and_no_mail,
    an_expired_reset_token_is_refused,
    a_bad_reset_request_changes_nothing,
);

async fn request_reset(app: &TestApp, email: &str) -> GqlResponse {
    app.gql(
        None,
        "mutation($e: String!) { requestPasswordReset(email: $e) }",
        json!({ "e": email }),
    )
    .await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> GqlResponse {
    app.gql(
        None,
        "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }",
        json!({ "t": token, "p": password }),
    )
    .await
}

fn token_in(mail: &str) -> String {
    let line = mail
        .lines()
        .find_map(|l| l.trim().strip_prefix("Reset token: "))
        .unwrap_or_else(|| panic!("no token in {mail}"));
    line.trim().to_string()
}

async fn a_reset_email_lets_the_owner_choose_a_new_password(backend: Backend) {
    let mut smtp = SmtpSink::start().await;
    let url = smtp.url.clone();
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(url.into())).await;
    let user = app.new_user().await;

    let res = request_reset(&app, &user.email.to_uppercase()).await;
    assert_eq!(*res.data("requestPasswordReset"), json!(true));
    let mail = smtp.next_mail().await;
    assert_eq!(mail.to, vec![user.email.clone()]);
    assert_eq!(mail.from, "no-reply@pupmatch.local");
    assert!(mail.data.contains("Subject: Reset your PupMatch password"));
    let token = token_in(&mail.data);
    assert!(
        mail.data
            .contains(&format!("{}/reset-password?token={token}", app.address))
    );
    assert_eq!(app.count("password_reset_tokens").await, 1);

    assert_eq!(
        *reset(&app, &token, "my new password")
            .await
            .data("resetPassword"),
        json!(true)
    );
    // Every session ended; only the new password works.
    assert_eq!(app.me(user.token()).await.error_code(), "UNAUTHENTICATED");
    assert_eq!(
        app.refresh(&user.refresh_token).await.error_code(),
        "UNAUTHENTICATED"
    );
    app.only_password_is(&user, "my new password").await;

    // Single use.
    let again = reset(&app, &token, "yet another password").await;
    assert_eq!(again.error_code(), "BAD_USER_INPUT");
    assert_eq!(again.body["errors"][0]["extensions"]["field"], "token");
    app.login(&user.email, "my new password")
        .await
        .data("login");
}

async fn an_unknown_email_gets_the_same_answer_and_no_mail(backend: Backend) {
    let mut smtp = SmtpSink::start().await;
    let url = smtp.url.clone();
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(url.into())).await;
    let res = request_reset(&app, "nobody@example.com").await;
    assert_eq!(*res.data("requestPasswordReset"), json!(true));
    assert!(!smtp.receives_within(Duration::from_millis(500)).await);
    assert_eq!(app.count("password_reset_tokens").await, 0);
}

async fn an_expired_reset_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let (token, hash) = new_opaque_token();
    let issued = chrono::Utc::now() - chrono::Duration::hours(2);
    AuthStore::new(&app.db)
        .create_one_time_token(
            OneTimeToken::PasswordReset,
            user.user_id,
            &NewRefreshToken {
                id: Uuid::now_v7(),
                hash,
                created_at: issued,
                expires_at: issued + chrono::Duration::hours(1),
            },
            3,
        )
        .await
        .expect("stored");
    let res = reset(&app, &token, "my new password").await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    app.login(&user.email, DEFAULT_PASSWORD).await.data("login");
    app.me(user.token()).await.data("me");
}

async fn a_bad_reset_request_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    assert_eq!(
        request_reset(&app, "not-an-email").await.error_code(),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        reset(&app, "made-up-token", "my new password")
            .await
            .error_code(),
        "BAD_USER_INPUT"
    );
    let short = reset(&app, "made-up-token", "short").await;
    assert_eq!(
        short.body["errors"][0]["extensions"]["field"],
        "newPassword"
    );
    assert_eq!(app.count("password_reset_tokens").await, 0);
    app.login(&user.email, DEFAULT_PASSWORD).await.data("login");
}

async fn a_new_reset_link_ends_the_earlier_ones(backend: Backend) {
    let mut smtp = SmtpSink::start().await;
    let url = smtp.url.clone();
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(url.into())).await;
    let user = app.new_user().await;
    request_reset(&app, &user.email)
        .await
        .data("requestPasswordReset");
    let first = token_in(&smtp.next_mail().await.data);
    request_reset(&app, &user.email)
        .await
        .data("requestPasswordReset");
    let second = token_in(&smtp.next_mail().await.data);
    let res = reset(&app, &first, "my new password").await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT", "{}", res.body);
    app.login(&user.email, DEFAULT_PASSWORD).await.data("login");
    assert_eq!(
        *reset(&app, &second, "my new password")
            .await
            .data("resetPassword"),
        json!(true)
    );
}

/// Thirty requests for one address from three addresses at once: three emails, and only the
/// last link works.
async fn reset_emails_cannot_flood_an_inbox(backend: Backend) {
    let mut smtp = SmtpSink::start().await;
    let url = smtp.url.clone();
    let app = spawn_app_with(backend, |c| c.smtp_url = Some(url.into())).await;
    let user = app.new_user().await;
    let requests = (0..30).map(|i| {
        let app = &app;
        let email = user.email.clone();
        async move {
            let res = crate::helpers::client_from(&format!("127.0.0.{}", 31 + i % 3))
                .post(app.url("/graphql"))
                .json(&json!({
                    "query": "mutation($e: String!) { requestPasswordReset(email: $e) }",
                    "variables": { "e": email },
                }))
                .send()
                .await
                .expect("request");
            let body: serde_json::Value = res.json().await.expect("json");
            assert_eq!(body["data"]["requestPasswordReset"], true, "{body}");
        }
    });
    futures::future::join_all(requests).await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(token_in(&smtp.next_mail().await.data));
    }
    assert!(
        !smtp.receives_within(Duration::from_secs(1)).await,
        "no fourth email within the hour"
    );
    assert_eq!(app.count("password_reset_tokens").await, 3);
    assert_eq!(
        app.count("password_reset_tokens WHERE used_at IS NULL")
            .await,
        1,
        "only the newest link works"
    );
}
