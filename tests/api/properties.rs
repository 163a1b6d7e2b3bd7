//! Tokens, password hashes and rate limits: correctness properties, each checked over ≥ 100
//! generated cases.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use pupmatch::auth::password;
use pupmatch::config::RateLimits;
use pupmatch::identity::tokens::{Claims, TokenError, TokenKeys};
use pupmatch::infra::rate_limit::{Bucket, RateLimiter};
use pupmatch::infra::redis::Redis;
use uuid::Uuid;

use crate::helpers::redis_url;

fn keys() -> TokenKeys {
    TokenKeys::new(&"property-test-secret-0123456789-abcdefghij".into())
}

fn uuid_strategy() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Decoding a valid token gives back the user (and session) it was issued for.
    #[test]
    fn token_validity(user in uuid_strategy(), session in uuid_strategy(),
                                  issued_ago in 0i64..86_000) {
        let now = Utc::now() - chrono::Duration::seconds(issued_ago);
        let (token, expires_at) = keys().issue(user, session, now).expect("signs");
        let claims = keys().verify(&token).expect("valid");
        prop_assert_eq!(claims.sub, user);
        prop_assert_eq!(claims.sid, session);
        prop_assert_eq!(claims.exp, expires_at.timestamp());
    }

    /// Every expired token fails validation, as an authentication error.
    #[test]
    fn token_expiration(user in uuid_strategy(), expired_for in 1i64..10_000_000,
                                    lifetime in 1i64..100_000) {
        let exp = Utc::now().timestamp() - expired_for;
        let claims = Claims { sub: user, sid: user, iat: exp - lifetime, exp, iss: "pupmatch".into() };
        let token = keys().sign(&claims).expect("signs");
        prop_assert_eq!(keys().verify(&token), Err(TokenError::Expired));
    }
}

proptest! {
    // argon2id at production cost: 100 cases.
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// The stored hash reveals nothing of the password (salted argon2id PHC string,
    /// never containing it), yet the same password always verifies and any other does not.
    #[test]
    fn password_hash_irreversibility(pw in "\\PC{8,40}", other in "\\PC{8,40}") {
        let hash = password::hash_blocking(&pw).expect("hashes");
        prop_assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        prop_assert!(!hash.contains(&pw));
        prop_assert!(password::verify_blocking(&pw, &hash));
        prop_assert_eq!(password::verify_blocking(&other, &hash), other == pw);
        // Salted: hashing again gives a different string that verifies too.
        let again = password::hash_blocking(&pw).expect("hashes");
        prop_assert_ne!(&again, &hash);
    }
}

fn limits(n: u32) -> RateLimits {
    RateLimits {
        user_per_min: n,
        ip_per_min: n,
        auth_per_min: n,
        location_per_min: n,
        message_per_min: n,
        people_per_min: n,
        profiles_per_day: n,
        likes_per_day: n,
        first_messages_per_day: n,
        location_changes_per_day: n,
    }
}

/// Sends `requests` back-to-back requests through `limiter` and checks that none past the
/// threshold gets through.
async fn check_limit(
    limiter: &RateLimiter,
    limit: u32,
    requests: u32,
    subject: &str,
) -> Result<(), TestCaseError> {
    for i in 0..requests {
        let result = limiter.check(Bucket::User, subject).await;
        if i < limit {
            prop_assert!(
                result.is_ok(),
                "request {} of limit {} refused",
                i + 1,
                limit
            );
        } else {
            let wait = result.expect_err("past the limit: rejected");
            prop_assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// In process: past the threshold, every further request is rejected.
    #[test]
    fn rate_limiting_in_process(limit in 1u32..40, requests in 0u32..80) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async {
            let limiter = RateLimiter::local(limits(limit));
            check_limit(&limiter, limit, requests, "someone").await
        })?;
    }

    /// Shared through Redis: the same, with the GCRA script on a real Redis.
    #[test]
    fn rate_limiting_through_redis(limit in 1u32..40, requests in 0u32..80) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async {
            let prefix = format!("prop13:{}:", Uuid::new_v4().simple());
            let redis = Redis::connect(&redis_url(), &prefix, None).await.expect("Redis runs (scripts/test.sh)");
            let limiter = RateLimiter::shared(limits(limit), redis);
            check_limit(&limiter, limit, requests, "someone").await
        })?;
    }
}

#[test]
fn tokens_from_the_future_beyond_expiry_are_not_special() {
    // A token whose `iat` lies in the future but whose `exp` has passed is still expired.
    let exp = Utc::now().timestamp() - 5;
    let claims = Claims {
        sub: Uuid::nil(),
        sid: Uuid::nil(),
        iat: exp + 1000,
        exp,
        iss: "pupmatch".into(),
    };
    assert_eq!(
        keys().verify(&keys().sign(&claims).expect("signs")),
        Err(TokenError::Expired)
    );
    let _ = Utc.timestamp_opt(0, 0);
}
