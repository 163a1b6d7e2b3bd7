//! Access tokens that must be refused: each gets UNAUTHENTICATED and changes nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use pupmatch::identity::tokens::{Claims, TokenKeys};
use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, TEST_JWT_SECRET, spawn_app};

both_backends!(
    a_missing_token_is_unauthenticated,
    a_tampered_token_is_refused,
    an_alg_none_token_is_refused,
    a_token_signed_with_another_key_is_refused,
    an_expired_token_is_refused,
    a_token_for_another_algorithm_is_refused,
);

fn claims_for(user_id: uuid::Uuid, session_id: uuid::Uuid, exp_offset: Duration) -> Claims {
    let now = Utc::now();
    Claims {
        sub: user_id,
        sid: session_id,
        iat: now.timestamp(),
        exp: (now + exp_offset).timestamp(),
        iss: "pupmatch".into(),
    }
}

/// The session id a real token carries.
fn session_of(token: &str) -> uuid::Uuid {
    let payload = token.split('.').nth(1).expect("payload");
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
    claims["sid"].as_str().expect("sid").parse().expect("uuid")
}

async fn a_missing_token_is_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.me(None).await;
    assert_eq!(res.error_code(), "UNAUTHENTICATED");
    assert_eq!(res.body["errors"][0]["extensions"]["status"], 401);
    assert!(res.body["data"]["me"].is_null());
    let res = app
        .gql(
            None,
            "mutation { deleteAccount(password: \"whatever1\") }",
            json!({}),
        )
        .await;
    assert_eq!(res.error_code(), "UNAUTHENTICATED");
}

async fn a_tampered_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    // Swap in another user's id, keep the signature.
    let mut parts: Vec<String> = user.access_token.split('.').map(String::from).collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).expect("b64")).expect("json");
    claims["sub"] = json!(other.user_id.to_string());
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
    let forged = parts.join(".");
    assert_eq!(app.me(Some(&forged)).await.error_code(), "UNAUTHENTICATED");
    // A flipped signature character.
    let mut sig_flip = user.access_token.clone();
    let last = sig_flip.pop().expect("non-empty");
    sig_flip.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(
        app.me(Some(&sig_flip)).await.error_code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        app.me(Some("garbage")).await.error_code(),
        "UNAUTHENTICATED"
    );
    // The genuine token still works.
    app.me(user.token()).await.data("me");
}

async fn an_alg_none_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = claims_for(
        user.user_id,
        session_of(&user.access_token),
        Duration::hours(1),
    );
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
    for token in [format!("{header}.{body}."), format!("{header}.{body}")] {
        assert_eq!(app.me(Some(&token)).await.error_code(), "UNAUTHENTICATED");
    }
}

async fn a_token_signed_with_another_key_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let other_keys = TokenKeys::new(&"some-other-secret-that-is-long-enough-xyz".into());
    let claims = claims_for(
        user.user_id,
        session_of(&user.access_token),
        Duration::hours(1),
    );
    let token = other_keys.sign(&claims).expect("signs");
    assert_eq!(app.me(Some(&token)).await.error_code(), "UNAUTHENTICATED");
    // The same claims with the right key pass: the key is what was wrong.
    let keys = TokenKeys::new(&TEST_JWT_SECRET.into());
    app.me(Some(&keys.sign(&claims).expect("signs")))
        .await
        .data("me");
}

async fn an_expired_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let keys = TokenKeys::new(&TEST_JWT_SECRET.into());
    let expired = claims_for(
        user.user_id,
        session_of(&user.access_token),
        Duration::seconds(-1),
    );
    let res = app.me(Some(&keys.sign(&expired).expect("signs"))).await;
    assert_eq!(res.error_code(), "UNAUTHENTICATED");
    assert_eq!(res.error_message(), "invalid or expired token");
}

async fn a_token_for_another_algorithm_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let claims = claims_for(
        user.user_id,
        session_of(&user.access_token),
        Duration::hours(1),
    );
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .expect("signs");
    assert_eq!(app.me(Some(&token)).await.error_code(), "UNAUTHENTICATED");
}
