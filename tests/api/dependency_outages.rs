//! Fail fast, recover alone: with Redis or PostgreSQL gone (cut at a proxy in front of them),
//! every request answers within a second — Redis-backed parts fall back to in-process, database
//! requests get 503 SERVICE_UNAVAILABLE with `Retry-After` — `/readyz` names what is down, and
//! everything works again once the dependency is back. (Scale-out mode only: embedded mode has
//! no dependency to lose.)

use std::time::{Duration, Instant};

use crate::helpers::proxy::TcpProxy;
use crate::helpers::{Backend, GqlResponse, Session, TestApp, redis_url, spawn_app_with};

const PROMPTLY: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_answer_within_a_second_while_redis_or_postgres_is_down() {
    let redis = TcpProxy::start(redis_url().trim_start_matches("redis://").to_string()).await;
    let pg_port = url::Url::parse(&crate::helpers::pg_admin_url())
        .expect("url")
        .port()
        .unwrap_or(5432);
    let pg = TcpProxy::start(format!("127.0.0.1:{pg_port}")).await;
    let (redis_port, pg_proxy_port) = (redis.port, pg.port);
    let app = spawn_app_with(Backend::Postgres, move |c| {
        c.redis_url = Some(format!("redis://127.0.0.1:{redis_port}"));
        let mut url = url::Url::parse(&c.database_url).expect("url");
        url.set_port(Some(pg_proxy_port)).expect("port");
        c.database_url = url.to_string();
    })
    .await;
    let user = app.new_user().await;
    app.me(user.token()).await.data("me");

    // Redis goes away: requests still work, at once, on the in-process fallbacks.
    redis.cut().await;
    for _ in 0..5 {
        let (res, took) = timed_me(&app, &user).await;
        assert!(took < PROMPTLY, "took {took:?}");
        res.data("me");
    }
    let ready = app.readyz().await;
    assert_eq!(ready.0, 503);
    assert_eq!(ready.1["redis"], "unreachable", "{}", ready.1);
    assert_eq!(ready.1["database"], "ok");
    redis.restore();
    wait_until_ready(&app).await;
    app.me(user.token()).await.data("me");

    // PostgreSQL goes away: 503 with Retry-After, within a second — on a pooled connection
    // that broke, and on a new one (more requests at once than the pool keeps idle), which the
    // proxy accepts and closes at once, as a load balancer in front of a dead server does.
    pg.cut().await;
    for _ in 0..3 {
        let answers =
            futures::future::join_all((0..8).map(|_| timed_database_read(&app, &user))).await;
        for (res, took) in answers {
            assert!(took < PROMPTLY, "took {took:?}");
            assert_eq!(res.status, 503, "{}", res.body);
            assert_eq!(res.error_code(), "SERVICE_UNAVAILABLE");
            assert!(res.retry_after.is_some());
        }
    }
    // What the caches hold still answers: `me` comes from the session cache.
    let (res, took) = timed_me(&app, &user).await;
    assert!(took < PROMPTLY, "took {took:?}");
    res.data("me");
    let ready = app.readyz().await;
    assert_eq!(ready.0, 503);
    assert_eq!(ready.1["database"], "unreachable", "{}", ready.1);
    pg.restore();
    wait_until_ready(&app).await;
    app.me(user.token()).await.data("me");
}

/// A request that must read the database (`me` alone is answered from the session cache).
async fn timed_database_read(app: &TestApp, user: &Session) -> (GqlResponse, Duration) {
    let start = Instant::now();
    let res = app
        .gql(
            user.token(),
            "{ likesReceivedCount }",
            serde_json::json!({}),
        )
        .await;
    (res, start.elapsed())
}

async fn timed_me(app: &TestApp, user: &Session) -> (GqlResponse, Duration) {
    let start = Instant::now();
    let res = app.me(user.token()).await;
    (res, start.elapsed())
}

/// Recovery is automatic: ready again within ten seconds.
async fn wait_until_ready(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = app.readyz().await;
        if status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "still not ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
