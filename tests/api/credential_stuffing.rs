//! Credential stuffing is slowed per account, not only per address: after 10 wrong passwords
//! for one email within 15 minutes, from however many addresses, sign-ins for it pause for a
//! minute, doubling with each further failure; the same for an email without an account (so
//! nothing is learnt about which exist); a success does not reset the count; and the owner is
//! told at their next sign-in.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{Backend, DEFAULT_PASSWORD, TestApp, client_from, spawn_app};

both_backends!(stuffing_one_account_from_many_addresses_pauses_its_sign_ins);

/// A sign-in from `address` (a loopback address of its own): the status, the body and the
/// `Retry-After` seconds.
async fn login_from(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> (u16, Value, Option<u64>) {
    let res = client_from(address)
        .post(app.url("/graphql"))
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            "variables": { "e": email, "p": password },
        }))
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, res.json().await.expect("json"), retry_after)
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

/// Moves every recorded failure to `minutes_ago` (as if that much time had passed).
async fn age_failures(app: &TestApp, minutes_ago: i64) {
    let at = Utc::now() - Duration::minutes(minutes_ago);
    app.execute(&format!(
        "UPDATE sign_in_failures SET failed_at = '{}'",
        at.format("%Y-%m-%dT%H:%M:%S%.6fZ")
    ))
    .await;
}

async fn stuffing_one_account_from_many_addresses_pauses_its_sign_ins(backend: Backend) {
    let app = spawn_app(backend).await;
    let person = app.new_user().await;
    // An account made yesterday (failures are moved back in time below, never before it).
    app.execute(&format!(
        "UPDATE users SET created_at = '{}'",
        (Utc::now() - Duration::days(1)).format("%Y-%m-%dT%H:%M:%S%.6fZ")
    ))
    .await;
    // Six addresses, ten wrong passwords each.
    let mut refused_unchecked = 0;
    for i in 0..6 {
        let address = format!("127.0.0.{}", 11 + i);
        for _ in 0..10 {
            let (status, body, _) = login_from(&app, &address, &person.email, "guess-123456").await;
            match code(&body) {
                "UNAUTHENTICATED" => assert_eq!(status, 200),
                "RATE_LIMITED" => refused_unchecked += 1,
                other => panic!("{other}: {body}"),
            }
        }
    }
    assert_eq!(
        refused_unchecked, 50,
        "after 10 failures the rest are not even checked"
    );
    // The right password from a seventh address: paused too.
    let (status, body, retry) =
        login_from(&app, "127.0.0.17", &person.email, DEFAULT_PASSWORD).await;
    assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "{body}");
    assert!(retry.is_some_and(|s| (1..=60).contains(&s)), "{retry:?}");

    // An email with no account answers the same after as many failures.
    let nobody = "nobody-here@example.com";
    for _ in 0..10 {
        let (_, body, _) = login_from(&app, "127.0.0.18", nobody, "guess-123456").await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    }
    let (status, body, _) = login_from(&app, "127.0.0.18", nobody, "guess-123456").await;
    assert_eq!((status, code(&body)), (429, "RATE_LIMITED"), "{body}");

    // Three minutes later the minute's pause is over; one more failure pauses for two.
    age_failures(&app, 3).await;
    let (_, body, _) = login_from(&app, "127.0.0.19", &person.email, "guess-999").await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    let (status, _, retry) = login_from(&app, "127.0.0.19", &person.email, DEFAULT_PASSWORD).await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|s| (61..=120).contains(&s)), "{retry:?}");

    // Later still, the owner signs in, and hears about it.
    age_failures(&app, 5).await;
    let (status, body, _) = login_from(&app, "127.0.0.20", &person.email, DEFAULT_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let token = body["data"]["login"]["accessToken"]
        .as_str()
        .expect("signed in")
        .to_string();
    let res = app
        .gql(
            Some(&token),
            "{ notifications { edges { node { kind title body } } } }",
            json!({}),
        )
        .await;
    let notes = res.data("notifications")["edges"].clone();
    let notes = notes.as_array().expect("edges");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["node"]["kind"], "SYSTEM");
    assert!(
        notes[0]["node"]["body"]
            .as_str()
            .is_some_and(|b| b.starts_with("11 sign-ins with a wrong password")),
        "{notes:?}"
    );
    // Told once: the next sign-in brings no second notice.
    app.sign_in(&person.email).await;
    let res = app
        .gql(
            Some(&token),
            "{ notifications { edges { node { kind } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        res.data("notifications")["edges"].as_array().map(Vec::len),
        Some(1)
    );

    // The success did not reset the count: one more failure pauses again at once.
    let (_, body, _) = login_from(&app, "127.0.0.21", &person.email, "guess-1000").await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    let (status, _, _) = login_from(&app, "127.0.0.21", &person.email, DEFAULT_PASSWORD).await;
    assert_eq!(status, 429);
}
