//! No N+1: a document touching many profiles (with photos and prompts) costs the same number of
//! SQL statements as one touching a single profile. Statements are counted from sqlx's
//! `sqlx::query` events (each test runs in its own process under nextest).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

use crate::both_backends;
use crate::helpers::{Backend, Session, TestApp, spawn_app};

#[derive(Clone, Default)]
struct QueryCounter(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for QueryCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            // SQLite's background WAL checkpoint (every half second) is not the request's.
            let mut checkpoint = Checkpoint(false);
            event.record(&mut checkpoint);
            if !checkpoint.0 {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// Whether a logged statement is the WAL checkpoint.
struct Checkpoint(bool);

impl tracing::field::Visit for Checkpoint {
    fn record_debug(&mut self, _field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if format!("{value:?}").contains("wal_checkpoint") {
            self.0 = true;
        }
    }
}

both_backends!(nested_profile_queries_cost_a_constant_number_of_statements);

async fn statements_for(
    app: &TestApp,
    counter: &QueryCounter,
    viewer: &Session,
    users: &[Session],
) -> usize {
    let fields: String = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            format!(
                "p{i}: profile(userId: \"{}\") {{ name photos {{ id url order }} prompts {{ question answer }} }} ",
                u.user_id
            )
        })
        .collect();
    let before = counter.0.load(Ordering::SeqCst);
    let res = app
        .gql(viewer.token(), &format!("{{ {fields} }}"), json!({}))
        .await;
    assert!(res.errors().is_empty(), "{}", res.body);
    assert_eq!(
        res.body["data"]["p0"]["photos"].as_array().map(Vec::len),
        Some(2)
    );
    counter.0.load(Ordering::SeqCst) - before
}

async fn nested_profile_queries_cost_a_constant_number_of_statements(backend: Backend) {
    let counter = QueryCounter::default();
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(counter.clone()),
    );
    let app = spawn_app(backend).await;
    let viewer = app.new_user().await;
    let mut users = Vec::new();
    for i in 0..11 {
        let user = app.new_user().await;
        app.complete_profile(&user, &format!("Dog {i}")).await;
        let q = app
            .gql(user.token(), "{ promptQuestions }", json!({}))
            .await;
        let question = q.data("promptQuestions")[0].clone();
        app.gql(
            user.token(),
            "mutation($p: [PromptInput!]!) { setPrompts(prompts: $p) { id } }",
            json!({ "p": [{ "question": question, "answer": "Fetch" }] }),
        )
        .await
        .data("setPrompts");
        users.push(user);
    }
    // The viewer's session check is cached after their first request: make that one first.
    app.me(viewer.token()).await;
    let one = statements_for(&app, &counter, &viewer, &users[..1]).await;
    let ten = statements_for(&app, &counter, &viewer, &users[1..]).await;
    assert!(one > 0, "the counter sees statements");
    // Ten cost no more than one (one may also read what the viewer's later requests find
    // cached, such as their blocks).
    assert!(
        ten <= one,
        "10 profiles cost {ten} statements, 1 profile {one}"
    );
    // Warm: the profiles come from the cache.
    let warm = statements_for(&app, &counter, &viewer, &users[1..]).await;
    assert!(warm < ten, "cached: {warm} statements, cold: {ten}");
}
