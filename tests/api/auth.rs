//! Registration, login, refresh-token rotation and logout.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, DEFAULT_PASSWORD, Session, spawn_app};

both_backends!(
    registering_returns_tokens_and_me_answers,
    emails_are_normalised_and_duplicates_conflict,
    malformed_emails_are_refused_and_nothing_is_stored,
    short_and_overlong_passwords_are_refused_and_nothing_is_stored,
    a_wrong_password_looks_like_an_unknown_email,
    login_starts_a_new_session,
    refreshing_rotates_the_token,
    replaying_a_rotated_refresh_token_revokes_the_family,
    logout_ends_the_session,
    changing_the_password_signs_out_other_sessions,
    a_wrong_current_password_changes_nothing,
);

async fn registering_returns_tokens_and_me_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.register("rex@example.com", DEFAULT_PASSWORD).await;
    let payload = res.data("register");
    assert_eq!(payload["user"]["email"], "rex@example.com");
    assert!(payload["expiresAt"].as_str().is_some());
    let session = Session::from_payload(payload, "rex@example.com");

    let me = app
        .gql(
            session.token(),
            "{ me { id email createdAt profile { name } preferences { minAge } location { latitude } } }",
            json!({}),
        )
        .await;
    let me = me.data("me");
    assert_eq!(me["id"], session.user_id.to_string());
    assert_eq!(me["email"], "rex@example.com");
    assert!(me["profile"].is_null() && me["preferences"].is_null() && me["location"].is_null());
    // Registration also creates default notification preferences, in the same transaction.
    assert_eq!(app.count("notification_preferences").await, 1);
}

async fn emails_are_normalised_and_duplicates_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .register("  Bella.Owner@Example.COM ", DEFAULT_PASSWORD)
        .await;
    assert_eq!(
        res.data("register")["user"]["email"],
        "bella.owner@example.com"
    );

    let dup = app
        .register("bella.owner@example.com", "another password")
        .await;
    assert_eq!(dup.error_code(), "CONFLICT");
    assert_eq!(dup.body["errors"][0]["extensions"]["status"], 409);
    let dup_case = app
        .register("BELLA.OWNER@example.com", "another password")
        .await;
    assert_eq!(dup_case.error_code(), "CONFLICT");
    assert_eq!(app.count("users").await, 1);
    // The original password still works: the refused registrations changed nothing.
    app.login("bella.owner@example.com", DEFAULT_PASSWORD)
        .await
        .data("login");
}

async fn malformed_emails_are_refused_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    for bad in [
        "",
        "not-an-email",
        "rex@",
        "@example.com",
        "rex@localhost",
        "a b@example.com",
    ] {
        let res = app.register(bad, DEFAULT_PASSWORD).await;
        assert_eq!(res.error_code(), "BAD_USER_INPUT", "{bad:?}");
        assert_eq!(res.body["errors"][0]["extensions"]["field"], "email");
        assert_eq!(res.body["errors"][0]["extensions"]["status"], 400);
    }
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("sessions").await, 0);
}

async fn short_and_overlong_passwords_are_refused_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let short = app.register("rex@example.com", "1234567").await;
    assert_eq!(short.error_code(), "BAD_USER_INPUT");
    assert_eq!(short.body["errors"][0]["extensions"]["field"], "password");
    assert!(short.error_message().contains("at least 8"));
    let long = app.register("rex@example.com", &"p".repeat(129)).await;
    assert_eq!(long.error_code(), "BAD_USER_INPUT");
    assert!(long.error_message().contains("at most 128"));
    assert_eq!(app.count("users").await, 0);
    // The limits themselves are accepted.
    app.register("eight@example.com", "12345678")
        .await
        .data("register");
    app.register("long@example.com", &"p".repeat(128))
        .await
        .data("register");
}

async fn a_wrong_password_looks_like_an_unknown_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let wrong = app.login(&user.email, "wrong password!").await;
    let unknown = app.login("nobody@example.com", DEFAULT_PASSWORD).await;
    let malformed = app.login("not an email", DEFAULT_PASSWORD).await;
    for res in [&wrong, &unknown, &malformed] {
        assert_eq!(res.error_code(), "UNAUTHENTICATED");
        assert_eq!(res.error_message(), "invalid email or password");
        assert_eq!(res.body["errors"][0]["extensions"]["status"], 401);
    }
    assert_eq!(
        app.count("sessions").await,
        1,
        "failed logins start no session"
    );
}

async fn login_starts_a_new_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let res = app
        .login(&user.email.to_uppercase(), DEFAULT_PASSWORD)
        .await;
    let second = Session::from_payload(res.data("login"), &user.email);
    assert_eq!(second.user_id, user.user_id);
    assert_ne!(second.refresh_token, user.refresh_token);
    assert_eq!(app.count("sessions").await, 2);
    app.me(user.token()).await.data("me");
    app.me(second.token()).await.data("me");
}

async fn refreshing_rotates_the_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let res = app.refresh(&user.refresh_token).await;
    let payload = res.data("refreshToken");
    let next_refresh = payload["refreshToken"].as_str().expect("token");
    let next_access = payload["accessToken"].as_str().expect("token");
    assert_ne!(next_refresh, user.refresh_token);
    assert_eq!(payload["user"]["id"], user.user_id.to_string());
    app.me(Some(next_access)).await.data("me");
    // And again with the successor.
    app.refresh(next_refresh).await.data("refreshToken");
}

async fn replaying_a_rotated_refresh_token_revokes_the_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let other_device = app.login(&user.email, DEFAULT_PASSWORD).await;
    let other_device = Session::from_payload(other_device.data("login"), &user.email);

    let rotated = app.refresh(&user.refresh_token).await;
    let successor = rotated.data("refreshToken")["refreshToken"]
        .as_str()
        .expect("token")
        .to_string();
    let successor_access = rotated.data("refreshToken")["accessToken"]
        .as_str()
        .expect("token")
        .to_string();

    // An attacker replays the old token: refused, and the whole family is revoked.
    let replay = app.refresh(&user.refresh_token).await;
    assert_eq!(replay.error_code(), "UNAUTHENTICATED");
    assert_eq!(
        app.refresh(&successor).await.error_code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        app.me(Some(&successor_access)).await.error_code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(app.me(user.token()).await.error_code(), "UNAUTHENTICATED");
    // Another session of the same person is unaffected.
    app.me(other_device.token()).await.data("me");
    app.refresh(&other_device.refresh_token)
        .await
        .data("refreshToken");
}

async fn logout_ends_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let logout = |t: String| {
        let app = &app;
        async move {
            app.gql(
                None,
                "mutation($t: String!) { logout(refreshToken: $t) }",
                json!({ "t": t }),
            )
            .await
        }
    };
    assert_eq!(
        *logout(user.refresh_token.clone()).await.data("logout"),
        json!(true)
    );
    assert_eq!(app.me(user.token()).await.error_code(), "UNAUTHENTICATED");
    assert_eq!(
        app.refresh(&user.refresh_token).await.error_code(),
        "UNAUTHENTICATED"
    );
    // An unknown token names no session.
    assert_eq!(
        logout("no-such-token".into()).await.body["data"]["logout"],
        json!(false)
    );
}

async fn changing_the_password_signs_out_other_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let other = app.sign_in(&user.email).await;

    let res = app
        .change_password(&user, "correct horse battery", "a brand new secret")
        .await;
    assert_eq!(*res.data("changePassword"), json!(true));
    app.me(user.token()).await.data("me");
    app.refresh(&user.refresh_token).await.data("refreshToken");
    assert_eq!(app.me(other.token()).await.error_code(), "UNAUTHENTICATED");
    assert_eq!(
        app.refresh(&other.refresh_token).await.error_code(),
        "UNAUTHENTICATED"
    );
    app.only_password_is(&user, "a brand new secret").await;
}

async fn a_wrong_current_password_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let other = app.sign_in(&user.email).await;
    let res = app
        .change_password(&user, "not my password", "a brand new secret")
        .await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    assert_eq!(
        res.body["errors"][0]["extensions"]["field"],
        "currentPassword"
    );
    let short = app
        .change_password(&user, "correct horse battery", "short")
        .await;
    assert_eq!(short.error_code(), "BAD_USER_INPUT");
    assert_eq!(
        short.body["errors"][0]["extensions"]["field"],
        "newPassword"
    );
    app.me(other.token()).await.data("me");
    app.login(&user.email, DEFAULT_PASSWORD).await.data("login");
}
