//! Email addresses are confirmed: with confirmation required, a new account gets an email with a
//! single-use link (48 h); until it is followed the person can build a profile but is not
//! recommended to anyone and cannot like, message, report or add places.

use serde_json::json;
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::people::{BERLIN, dog_at, like, north_of, recs, user_ids};
use crate::helpers::smtp::SmtpSink;
use crate::helpers::{Backend, GqlResponse, Session, TestApp, spawn_app, spawn_app_with};

both_backends!(
    an_unconfirmed_account_builds_a_profile_but_cannot_act,
    a_new_confirmation_email_ends_the_earlier_links_and_they_are_limited,
    confirmation_is_not_required_in_development_by_default,
);

/// An app requiring confirmation, sending mail to a sink.
async fn confirming_app(backend: Backend) -> (TestApp, SmtpSink) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url.clone();
    let app = spawn_app_with(backend, |c| {
        c.smtp_url = Some(url.into());
        c.require_email_confirmation = true;
    })
    .await;
    (app, smtp)
}

/// The token of the next confirmation email, which must be addressed to `to`.
async fn next_token(smtp: &mut SmtpSink, app: &TestApp, to: &Session) -> String {
    let mail = smtp.next_mail().await;
    assert_eq!(mail.to, vec![to.email.clone()]);
    assert!(
        mail.data
            .contains("Subject: Confirm your PupMatch email address"),
        "{}",
        mail.data
    );
    let token = mail
        .data
        .lines()
        .find_map(|l| l.trim().strip_prefix("Confirmation token: "))
        .unwrap_or_else(|| panic!("no token in {}", mail.data))
        .trim()
        .to_string();
    assert!(
        mail.data
            .contains(&format!("{}/confirm-email?token={token}", app.address)),
        "{}",
        mail.data
    );
    token
}

async fn confirm(app: &TestApp, token: &str) -> GqlResponse {
    app.gql(
        None,
        "mutation($t: String!) { confirmEmail(token: $t) }",
        json!({ "t": token }),
    )
    .await
}

async fn confirmed_flag(app: &TestApp, user: &Session) -> bool {
    app.gql(user.token(), "{ me { emailConfirmed } }", json!({}))
        .await
        .data("me")["emailConfirmed"]
        .as_bool()
        .expect("bool")
}

fn assert_needs_confirmation(res: &GqlResponse) {
    assert_eq!(res.error_code(), "FORBIDDEN", "{}", res.body);
    assert!(
        res.error_message().contains("confirm your email"),
        "{}",
        res.body
    );
}

async fn an_unconfirmed_account_builds_a_profile_but_cannot_act(backend: Backend) {
    let (app, mut smtp) = confirming_app(backend).await;
    // A confirmed person nearby.
    let friend = dog_at(&app, "Friend", north_of(BERLIN, 1.0)).await;
    let token = next_token(&mut smtp, &app, &friend).await;
    confirm(&app, &token).await.data("confirmEmail");
    // A new account builds its whole profile, unconfirmed.
    let fresh = dog_at(&app, "Fresh", BERLIN).await;
    let fresh_token = next_token(&mut smtp, &app, &fresh).await;
    assert!(!confirmed_flag(&app, &fresh).await);
    assert!(confirmed_flag(&app, &friend).await);
    // It is recommended to nobody.
    assert!(!user_ids(&recs(&app, &friend, 10, None).await).contains(&fresh.user_id));
    // It cannot like, message, report or add places; nothing is stored.
    assert_needs_confirmation(&like(&app, &fresh, friend.user_id).await);
    assert_needs_confirmation(&app.send_message(&fresh, Uuid::now_v7(), "hi").await);
    assert_needs_confirmation(
        &app.report(&fresh, &friend.user_id, "SPAM", Some("spam"))
            .await,
    );
    let place = app
        .gql(
            fresh.token(),
            "mutation { addPlayground(input: { name: \"Park\", description: \"\", latitude: 52.5, longitude: 13.4 }) { id } }",
            json!({}),
        )
        .await;
    assert_needs_confirmation(&place);
    assert_eq!(app.count("likes").await, 0);
    assert_eq!(app.count("reports").await, 0);
    assert_eq!(app.count("playgrounds").await, 0);

    // The link confirms it, once.
    assert_eq!(
        *confirm(&app, &fresh_token).await.data("confirmEmail"),
        json!(true)
    );
    assert!(confirmed_flag(&app, &fresh).await);
    let again = confirm(&app, &fresh_token).await;
    assert_eq!(again.error_code(), "BAD_USER_INPUT", "{}", again.body);
    assert_eq!(again.body["errors"][0]["extensions"]["field"], "token");
    like(&app, &fresh, friend.user_id).await.data("like");
    // Someone whose list is made now finds it.
    let later = dog_at(&app, "Later", north_of(BERLIN, 2.0)).await;
    let later_token = next_token(&mut smtp, &app, &later).await;
    confirm(&app, &later_token).await.data("confirmEmail");
    assert!(user_ids(&recs(&app, &later, 10, None).await).contains(&fresh.user_id));
}

async fn resend(app: &TestApp, user: &Session) -> GqlResponse {
    app.gql(user.token(), "mutation { resendConfirmation }", json!({}))
        .await
}

async fn a_new_confirmation_email_ends_the_earlier_links_and_they_are_limited(backend: Backend) {
    let (app, mut smtp) = confirming_app(backend).await;
    let user = app.new_user().await;
    let first = next_token(&mut smtp, &app, &user).await;
    assert_eq!(
        *resend(&app, &user).await.data("resendConfirmation"),
        json!(true)
    );
    let second = next_token(&mut smtp, &app, &user).await;
    assert_eq!(confirm(&app, &first).await.error_code(), "BAD_USER_INPUT");
    assert!(!confirmed_flag(&app, &user).await);
    // Three emails an hour, the first included.
    resend(&app, &user).await.data("resendConfirmation");
    let third = next_token(&mut smtp, &app, &user).await;
    let refused = resend(&app, &user).await;
    assert_eq!(refused.error_code(), "RATE_LIMITED", "{}", refused.body);
    assert!(
        !smtp
            .receives_within(std::time::Duration::from_millis(500))
            .await
    );
    assert_eq!(confirm(&app, &second).await.error_code(), "BAD_USER_INPUT");
    confirm(&app, &third).await.data("confirmEmail");
    // Nothing more to confirm.
    assert_eq!(
        *resend(&app, &user).await.data("resendConfirmation"),
        json!(false)
    );
    // A token that was never sent is refused the same way.
    assert_eq!(
        confirm(&app, "not-a-token").await.error_code(),
        "BAD_USER_INPUT"
    );
}

async fn confirmation_is_not_required_in_development_by_default(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = dog_at(&app, "A", BERLIN).await;
    let b = dog_at(&app, "B", north_of(BERLIN, 1.0)).await;
    assert!(!confirmed_flag(&app, &a).await);
    like(&app, &a, b.user_id).await.data("like");
    assert!(user_ids(&recs(&app, &b, 10, None).await).contains(&a.user_id));
}
