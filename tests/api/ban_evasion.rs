//! Deleting an account does not escape a ban: an account deleted while reports about it are open
//! (or while they hold it) leaves a tombstone — its id and the keyed hash of its email — that
//! moderators can ban; the ban refuses the email, and bans an account registered with it since.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::people::{BERLIN, dog_at, north_of};
use crate::helpers::staff::{admin_gql, moderator};
use crate::helpers::{Backend, DEFAULT_PASSWORD, Session, TestApp, spawn_app_with};

both_backends!(
    a_reported_person_who_deletes_their_account_can_still_be_banned,
    registering_again_before_the_ban_does_not_escape_it,
    only_accounts_with_an_open_case_leave_a_tombstone,
);

async fn reported_by_three(app: &TestApp) -> Session {
    let person = dog_at(app, "Menace", BERLIN).await;
    for i in 0..3 {
        let reporter = dog_at(app, &format!("R{i}"), north_of(BERLIN, 1.0)).await;
        let res = app
            .report(&reporter, &person.user_id, "HARASSMENT", Some("rude"))
            .await;
        assert_eq!(*res.data("report"), json!(true), "{}", res.body);
    }
    person
}

async fn act(app: &TestApp, m: &Session, op: &str, person: Uuid) -> Value {
    let (status, body) = admin_gql(
        app,
        m.token(),
        &format!("mutation($p: ID!) {{ {op}(personId: $p, reason: \"evidence\") }}"),
        json!({ "p": person }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn a_reported_person_who_deletes_their_account_can_still_be_banned(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.moderation.reporter_min_age = Duration::ZERO).await;
    let m = moderator(&app).await;
    let person = reported_by_three(&app).await;
    app.delete_account(&person).await.data("deleteAccount");
    assert_eq!(app.count("tombstones").await, 1);
    // The case is still there, the reports with their snapshots.
    let (_, body) = admin_gql(
        &app,
        m.token(),
        "query($p: ID!) { case(personId: $p) { person { id email } reports { snapshotName snapshotPhotoUrls } } }",
        json!({ "p": person.user_id }),
    )
    .await;
    assert_eq!(
        body["data"]["case"]["person"]["id"],
        json!(person.user_id),
        "{body}"
    );
    assert_eq!(body["data"]["case"]["reports"][0]["snapshotName"], "Menace");
    // The photos the reports saw are still there to look at.
    let url = body["data"]["case"]["reports"][0]["snapshotPhotoUrls"][0]
        .as_str()
        .expect("a snapshot photo")
        .to_string();
    let photo = app.client.get(&url).send().await.expect("photo");
    assert_eq!(photo.status(), 200, "{url}");
    // Only a dismissal or a ban fits a deleted account.
    let warn = act(&app, &m, "warn", person.user_id).await;
    assert_eq!(
        warn["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{warn}"
    );
    let ban = act(&app, &m, "ban", person.user_id).await;
    assert_eq!(ban["data"]["ban"], true, "{ban}");
    // The email is refused, however it is written.
    let again = app
        .register(&person.email.to_uppercase(), DEFAULT_PASSWORD)
        .await;
    assert_eq!(again.error_code(), "FORBIDDEN", "{}", again.body);
    assert_eq!(
        app.count("users").await,
        4,
        "the moderator and the reporters: nobody new"
    );
}

async fn registering_again_before_the_ban_does_not_escape_it(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.moderation.reporter_min_age = Duration::ZERO).await;
    let m = moderator(&app).await;
    let person = reported_by_three(&app).await;
    app.delete_account(&person).await.data("deleteAccount");
    let res = app.register(&person.email, DEFAULT_PASSWORD).await;
    let again = Session::from_payload(res.data("register"), &person.email);
    assert_eq!(
        app.me(again.token()).await.data("me")["email"],
        json!(person.email)
    );
    act(&app, &m, "ban", person.user_id).await;
    // The new account is banned with the old one: its session ends and sign-in is refused.
    assert_eq!(app.me(again.token()).await.error_code(), "UNAUTHENTICATED");
    let login = app.login(&person.email, DEFAULT_PASSWORD).await;
    assert_eq!(login.error_code(), "FORBIDDEN", "{}", login.body);
}

async fn only_accounts_with_an_open_case_leave_a_tombstone(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.moderation.reporter_min_age = Duration::ZERO).await;
    let m = moderator(&app).await;
    // Nothing reported: nothing kept.
    let quiet = dog_at(&app, "Quiet", BERLIN).await;
    app.delete_account(&quiet).await.data("deleteAccount");
    assert_eq!(app.count("tombstones").await, 0);
    // A dismissed case lets the tombstone go, and the email is free.
    let person = reported_by_three(&app).await;
    app.delete_account(&person).await.data("deleteAccount");
    assert_eq!(app.count("tombstones").await, 1);
    let dismissed = act(&app, &m, "dismiss", person.user_id).await;
    assert_eq!(dismissed["data"]["dismiss"], true, "{dismissed}");
    assert_eq!(app.count("tombstones").await, 0);
    app.register(&person.email, DEFAULT_PASSWORD)
        .await
        .data("register");
}
