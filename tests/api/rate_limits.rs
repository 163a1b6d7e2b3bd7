//! Rate limits over HTTP: 429 + `Retry-After`, GraphQL code RATE_LIMITED, aliased batches, and
//! one budget shared by two instances through Redis.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, DEFAULT_PASSWORD, spawn_app_with};

both_backends!(
    login_attempts_past_the_limit_get_429_and_change_nothing,
    twenty_aliased_logins_count_as_twenty_attempts,
    a_user_past_the_per_user_limit_gets_429,
    an_ip_past_the_per_ip_limit_gets_429,
);

async fn login_attempts_past_the_limit_get_429_and_change_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.auth_per_min = 3).await;
    let user = app.new_user().await; // attempt 1
    let sessions = app.count("sessions").await;
    for _ in 0..2 {
        let res = app.login(&user.email, "wrong password").await;
        assert_eq!(res.error_code(), "UNAUTHENTICATED");
        assert_eq!(res.status, 200);
    }
    // The right password, but the budget is spent: refused before it is checked.
    let res = app.login(&user.email, DEFAULT_PASSWORD).await;
    assert_eq!(res.status, 429);
    assert_eq!(res.error_code(), "RATE_LIMITED");
    assert_eq!(res.body["errors"][0]["extensions"]["status"], 429);
    let retry = res.retry_after.expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(app.count("sessions").await, sessions);
    // Other operations are not on the auth budget.
    app.me(user.token()).await.data("me");
}

async fn twenty_aliased_logins_count_as_twenty_attempts(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.auth_per_min = 10).await;
    let batch: String = (0..20)
        .map(|i| format!("a{i}: login(email: \"dog{i}@example.com\", password: \"password{i}\") {{ accessToken }} "))
        .collect();
    let res = app
        .gql(None, &format!("mutation {{ {batch} }}"), json!({}))
        .await;
    assert_eq!(res.status, 429);
    assert!(res.retry_after.is_some());
    let codes: Vec<&str> = res
        .errors()
        .iter()
        .map(|e| e["extensions"]["code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes.len(), 20);
    assert_eq!(
        codes.iter().filter(|c| **c == "UNAUTHENTICATED").count(),
        10
    );
    assert_eq!(codes.iter().filter(|c| **c == "RATE_LIMITED").count(), 10);
    let next = app.register("new@example.com", DEFAULT_PASSWORD).await;
    assert_eq!(next.error_code(), "RATE_LIMITED");
    assert_eq!(app.count("users").await, 0);
}

async fn a_user_past_the_per_user_limit_gets_429(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.user_per_min = 5).await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    for _ in 0..5 {
        app.me(user.token()).await.data("me");
    }
    let res = app.me(user.token()).await;
    assert_eq!(res.status, 429);
    assert_eq!(res.error_code(), "RATE_LIMITED");
    assert!(res.retry_after.is_some());
    // Someone else's budget is their own.
    app.me(other.token()).await.data("me");
}

async fn an_ip_past_the_per_ip_limit_gets_429(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.ip_per_min = 4).await;
    for _ in 0..4 {
        assert_eq!(app.me(None).await.status, 200);
    }
    let res = app.me(None).await;
    assert_eq!(res.status, 429);
    assert_eq!(res.error_code(), "RATE_LIMITED");
    // Health checks are never limited.
    app.get_ok(app.url("/healthz")).await;
}

/// Scale-out mode: two instances on one Redis spend one budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_rate_limit_through_redis() {
    let a = spawn_app_with(Backend::Postgres, |c| c.rate_limits.auth_per_min = 4).await;
    let b = a.spawn_sibling().await;
    assert_ne!(a.address, b.address);
    for app in [&a, &b, &a, &b] {
        assert_eq!(
            app.login("x@example.com", "wrong password")
                .await
                .error_code(),
            "UNAUTHENTICATED"
        );
    }
    for app in [&a, &b] {
        let res = app.login("x@example.com", "wrong password").await;
        assert_eq!(res.status, 429);
        assert_eq!(res.error_code(), "RATE_LIMITED");
    }
}
