//! No N+1: a document touching many profiles (with photos and prompts) costs the same number of
//! SQL statements as one touching a single profile. Statements are counted from sqlx's
//! `sqlx::query` events made inside a request's span (each test runs in its own process under
//! nextest), so background work — job ticks, SQLite's WAL checkpoint — never counts.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::both_backends;
use crate::helpers::people::{BERLIN, act, dog_at, like, north_of, recs, user_ids};
use crate::helpers::process::{Alone, runs_alone_elsewhere};
use crate::helpers::{Backend, Session, TestApp, spawn_app};

/// The statements run while serving a request, as sqlx logged them.
#[derive(Clone, Default)]
struct QueryCounter(Arc<Mutex<Vec<String>>>);

impl QueryCounter {
    fn count(&self) -> usize {
        self.0.lock().expect("counter").len()
    }

    /// The statements logged after the first `from`.
    fn since(&self, from: usize) -> Vec<String> {
        self.0.lock().expect("counter")[from..].to_vec()
    }
}

impl<S> Layer<S> for QueryCounter
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let in_request = ctx
            .event_scope(event)
            .is_some_and(|mut scope| scope.any(|span| span.name() == "request"));
        if in_request {
            let mut text = Statement(String::new());
            event.record(&mut text);
            self.0.lock().expect("counter").push(text.0);
        }
    }
}

/// A logged statement: its text, or sqlx's summary of it (its first words) when that is all.
struct Statement(String);

impl tracing::field::Visit for Statement {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match field.name() {
            "db.statement" if !value.is_empty() => self.0 = value,
            "summary" if self.0.is_empty() => self.0 = value,
            _ => {}
        }
    }
}

both_backends!(
    nested_profile_queries_cost_a_constant_number_of_statements,
    a_cached_page_asks_the_database_nothing_until_its_reader_swipes,
);

async fn statements_for(
    app: &TestApp,
    counter: &QueryCounter,
    viewer: &Session,
    users: &[Session],
) -> Vec<String> {
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
    let before = counter.count();
    let res = app
        .gql(viewer.token(), &format!("{{ {fields} }}"), json!({}))
        .await;
    assert!(res.errors().is_empty(), "{}", res.body);
    assert_eq!(
        res.body["data"]["p0"]["photos"].as_array().map(Vec::len),
        Some(2)
    );
    counter.since(before)
}

async fn nested_profile_queries_cost_a_constant_number_of_statements(backend: Backend) {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
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
        app.introduce(&viewer, &user).await;
        users.push(user);
    }
    // Every profile change drops the cached profile again `SETTLE` later: let the setup's
    // second drops pass, or one could land between the cold and the warm reads below.
    tokio::time::sleep(pupmatch::infra::cache::SETTLE + std::time::Duration::from_millis(200))
        .await;
    // The viewer's session check is cached after their first request: make that one first.
    app.me(viewer.token()).await;
    let one = statements_for(&app, &counter, &viewer, &users[..1]).await;
    let ten = statements_for(&app, &counter, &viewer, &users[1..]).await;
    assert!(!one.is_empty(), "the counter sees statements");
    // Ten cost no more than one (one may also read what the viewer's later requests find
    // cached, such as their blocks).
    assert!(
        ten.len() <= one.len(),
        "10 profiles cost {ten:#?}, 1 profile {one:#?}"
    );
    // Warm: the profiles come from the cache.
    let warm = statements_for(&app, &counter, &viewer, &users[1..]).await;
    assert!(warm.len() < ten.len(), "cached: {warm:#?}, cold: {ten:#?}");
}

/// A cached recommendation page read by someone who has not liked or passed anyone since their
/// list was made runs no statement at all. After a like and a pass, the next page — on every
/// instance, at once — checks again and leaves both people out.
async fn a_cached_page_asks_the_database_nothing_until_its_reader_swipes(backend: Backend) {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
    let counter = QueryCounter::default();
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(counter.clone()),
    );
    let app = spawn_app(backend).await;
    let sibling = match backend {
        // Embedded mode is one process.
        Backend::Sqlite => None,
        Backend::Postgres => Some(app.spawn_sibling().await),
    };
    let instances: Vec<&TestApp> = std::iter::once(&app).chain(sibling.as_ref()).collect();
    let me = dog_at(&app, "Me", BERLIN).await;
    for i in 0..4 {
        dog_at(
            &app,
            &format!("Dog {i}"),
            north_of(BERLIN, 1.0 + f64::from(i)),
        )
        .await;
    }
    // Let the profile caches' second drops after the setup pass (see above).
    tokio::time::sleep(pupmatch::infra::cache::SETTLE + std::time::Duration::from_millis(200))
        .await;
    let listed = user_ids(&recs(&app, &me, 4, None).await);
    assert_eq!(listed.len(), 4);
    // Each instance's first read fills its own caches (the session, the profiles).
    for instance in &instances {
        assert_eq!(user_ids(&recs(instance, &me, 4, None).await), listed);
    }
    for instance in &instances {
        let before = counter.count();
        assert_eq!(user_ids(&recs(instance, &me, 4, None).await), listed);
        assert_eq!(
            counter.since(before),
            Vec::<String>::new(),
            "a cached page whose reader has not swiped since"
        );
    }

    like(&app, &me, listed[0]).await.data("like");
    act(&app, &me, "pass", listed[1]).await.data("pass");
    for instance in &instances {
        let before = counter.count();
        assert_eq!(
            user_ids(&recs(instance, &me, 4, None).await),
            listed[2..].to_vec(),
            "the liked and the passed are left out"
        );
        assert!(
            !counter.since(before).is_empty(),
            "after a swipe, the page checks"
        );
    }
}
