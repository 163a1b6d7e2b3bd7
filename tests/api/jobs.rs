//! The background jobs: each tick runs once across workers, each job's effect on the data,
//! and a failing job is retried and reported.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::helpers::db::{exec_at, hex_id};
use crate::helpers::people::{BERLIN, act, all_recs, dog_at};
use crate::helpers::process::{Alone, runs_alone_elsewhere};
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};
use pupmatch::infra::db::Db;
use pupmatch::jobs::Job;

/// (job, tick, runs) for every tick that ran.
async fn runs_per_tick(app: &TestApp) -> Vec<(String, i64, i64)> {
    let sql = "SELECT job, tick, COUNT(*) FROM job_runs GROUP BY job, tick ORDER BY job, tick";
    match &app.db {
        Db::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await,
        Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await,
    }
    .expect("runs")
}

async fn each_tick_runs_once_across_two_workers(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.jobs.refresh_every = Duration::from_secs(1);
        c.jobs.deliver_every = Duration::from_secs(1);
        c.jobs.cleanup_every = Duration::from_secs(1);
    })
    .await;
    let stop = tokio_util::sync::CancellationToken::new();
    let one = app.worker().await;
    let two = app.worker().await;
    let ids = [one.id().to_string(), two.id().to_string()];
    let mut first = one.spawn(stop.clone());
    let mut second = two.spawn(stop.clone());
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    stop.cancel();
    while first.join_next().await.is_some() {}
    while second.join_next().await.is_some() {}

    let runs = runs_per_tick(&app).await;
    for job in Job::ALL {
        let ticks: Vec<&(String, i64, i64)> = runs.iter().filter(|r| r.0 == job.name()).collect();
        assert!(
            ticks.len() >= 3,
            "{} ran on {} ticks: {runs:?}",
            job.name(),
            ticks.len()
        );
        for (_, tick, n) in &ticks {
            assert_eq!(*n, 1, "{} tick {tick} ran {n} times", job.name());
        }
    }
    // Every run was by one of the two, and each succeeded.
    let sql = "SELECT worker FROM job_runs WHERE outcome = 'ok'";
    let workers: Vec<String> = match &app.db {
        Db::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
    }
    .expect("workers");
    assert_eq!(workers.len(), runs.len(), "all runs ok");
    assert!(workers.iter().all(|w| ids.contains(w)));
}

async fn cleanup_removes_what_has_expired_and_nothing_else(backend: Backend) {
    let app = spawn_app(backend).await;
    let now = Utc::now();
    let a = dog_at(&app, "Rex", BERLIN).await;
    let b = dog_at(&app, "Bella", BERLIN).await;
    let c = dog_at(&app, "Luna", BERLIN).await;

    // a passed b 91 days ago and c yesterday.
    act(&app, &a, "pass", b.user_id).await.data("pass");
    act(&app, &a, "pass", c.user_id).await.data("pass");
    let old = now - chrono::Duration::days(91);
    let sql = format!(
        "UPDATE passes SET created_at = $1 WHERE target_id = {}",
        hex_id(&app, b.user_id)
    );
    assert_eq!(exec_at(&app, &sql, old).await, 1);
    assert!(!all_recs(&app, &a).await.contains(&b.user_id));

    // Tokens: one expired refresh token (another session) and one expired reset token.
    let other = app.login(&a.email, crate::helpers::DEFAULT_PASSWORD).await;
    other.data("login");
    let sql = "UPDATE refresh_tokens SET expires_at = $1 WHERE session_id = \
               (SELECT session_id FROM refresh_tokens ORDER BY created_at DESC LIMIT 1)";
    assert_eq!(exec_at(&app, sql, now - chrono::Duration::days(1)).await, 1);
    app.gql(
        None,
        "mutation($e: String!) { requestPasswordReset(email: $e) }",
        json!({ "e": b.email }),
    )
    .await
    .data("requestPasswordReset");
    assert_eq!(app.count("password_reset_tokens").await, 1);
    exec_at(
        &app,
        "UPDATE password_reset_tokens SET expires_at = $1",
        now - chrono::Duration::hours(1),
    )
    .await;

    // Notifications (d likes b, c and a): b's read and old, c's unread and old, a's read and new.
    let d = dog_at(&app, "Max", BERLIN).await;
    for target in [&b, &c, &a] {
        crate::helpers::people::like(&app, &d, target.user_id)
            .await
            .data("like");
    }
    assert_eq!(app.count("notifications").await, 3);
    let ids = |x: &crate::helpers::Session, y: &crate::helpers::Session| {
        format!("({}, {})", hex_id(&app, x.user_id), hex_id(&app, y.user_id))
    };
    exec_at(
        &app,
        &format!(
            "UPDATE notifications SET read_at = $1 WHERE user_id IN {}",
            ids(&b, &a)
        ),
        now,
    )
    .await;
    exec_at(
        &app,
        &format!(
            "UPDATE notifications SET created_at = $1 WHERE user_id IN {}",
            ids(&b, &c)
        ),
        old,
    )
    .await;

    // Blobs: a's photos are referenced; one stray file is not.
    let stray = "photos/0000000000000000000000000000dead/stray.jpg";
    let blobs =
        pupmatch::app::blob_store(&app.config, &app.address.parse().expect("url")).expect("blobs");
    blobs.put(stray, vec![1, 2, 3]).await.expect("put");
    let photos_before = blobs.list("photos/").await.expect("list").len();

    let refresh_before = app.count("refresh_tokens").await;
    let run = app
        .worker()
        .await
        .with_orphan_grace(chrono::Duration::zero())
        .run(Job::Cleanup, 1)
        .await;
    assert!(run.ok, "{run:?}");

    assert!(
        !all_recs(&app, &a).await.contains(&c.user_id),
        "a recent pass stays"
    );
    assert_eq!(app.count("passes").await, 1, "the 91-day-old pass is gone");
    assert_eq!(app.count("refresh_tokens").await, refresh_before - 1);
    assert_eq!(app.count("password_reset_tokens").await, 0);
    assert_eq!(
        app.count("notifications").await,
        2,
        "only the old read one went"
    );
    let keys: Vec<String> = blobs
        .list("photos/")
        .await
        .expect("list")
        .into_iter()
        .map(|b| b.key)
        .collect();
    assert!(!keys.contains(&stray.to_string()));
    assert_eq!(
        keys.len(),
        photos_before - 1,
        "every referenced photo stays"
    );
    // Sign-in still works for the live session.
    assert!(app.me(a.token()).await.errors().is_empty());

    // After the refresh job, b (whose pass expired) is recommended to a again.
    let refresh = app
        .mode_worker()
        .await
        .run(Job::RefreshRecommendations, 1)
        .await;
    assert!(refresh.ok, "{refresh:?}");
    assert!(all_recs(&app, &a).await.contains(&b.user_id));
}

async fn refresh_recomputes_the_lists_of_active_people(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = dog_at(&app, "Rex", BERLIN).await;
    assert!(all_recs(&app, &a).await.is_empty());
    // b arrives; a's cached list (5 min) does not know yet.
    let b = dog_at(&app, "Bella", BERLIN).await;
    assert!(all_recs(&app, &a).await.is_empty(), "served from the cache");
    let run = app
        .mode_worker()
        .await
        .run(Job::RefreshRecommendations, 1)
        .await;
    assert!(run.ok, "{run:?}");
    assert_eq!(run.items, 2, "both are active and have a location");
    assert_eq!(all_recs(&app, &a).await, vec![b.user_id]);
    // People inactive for more than a day are left alone.
    exec_at(
        &app,
        "UPDATE users SET last_active_at = $1",
        Utc::now() - chrono::Duration::days(2),
    )
    .await;
    let run = app.worker().await.run(Job::RefreshRecommendations, 2).await;
    assert_eq!(run.items, 0);
}

async fn a_failing_job_is_retried_and_reported(backend: Backend) {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
    let app = spawn_app(backend).await;
    app.execute("ALTER TABLE passes RENAME TO passes_away")
        .await;
    let worker = app.worker().await;
    let run = worker.run(Job::Cleanup, 7).await;
    assert!(!run.ok);
    assert_eq!(run.attempts, pupmatch::jobs::MAX_ATTEMPTS, "retried");
    assert!(
        run.error.as_deref().unwrap_or("").contains("passes"),
        "{run:?}"
    );
    let sql = "SELECT outcome, attempts, error FROM job_runs WHERE job = 'cleanup' AND tick = 7";
    let (outcome, attempts, error): (String, i32, Option<String>) = match &app.db {
        Db::Postgres(p) => sqlx::query_as(sql).fetch_one(p).await,
        Db::Sqlite(p) => sqlx::query_as(sql).fetch_one(p).await,
    }
    .expect("recorded");
    assert_eq!((outcome.as_str(), attempts), ("failed", 3));
    assert!(error.is_some());
    let metrics = app.metrics().await;
    assert!(
        metrics.lines().any(|l| l.starts_with("jobs_runs_total{")
            && l.contains("job=\"cleanup\"")
            && l.contains("outcome=\"failed\"")),
        "{metrics}"
    );
    assert!(
        metrics.contains("jobs_attempt_failures_total{job=\"cleanup\"} 3"),
        "{metrics}"
    );
    // Mended, the next run succeeds.
    app.execute("ALTER TABLE passes_away RENAME TO passes")
        .await;
    let run = worker.run(Job::Cleanup, 8).await;
    assert!(run.ok, "{run:?}");
    assert_eq!(run.attempts, 1);
}

crate::both_backends!(
    each_tick_runs_once_across_two_workers,
    cleanup_removes_what_has_expired_and_nothing_else,
    refresh_recomputes_the_lists_of_active_people,
    a_failing_job_is_retried_and_reported,
);
