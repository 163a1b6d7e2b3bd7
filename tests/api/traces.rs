//! OpenTelemetry traces, received by a real OTLP/HTTP receiver that decodes the protobuf
//! (`helpers::otlp`). Each test process (nextest runs one test per process) installs the
//! server's own telemetry subscriber, as the binary does.

use std::time::Duration;

use serde_json::json;

use crate::both_backends;
use crate::helpers::chat::matched_pair;
use crate::helpers::fcm::{FcmStandIn, deliver_queued_pushes};
use crate::helpers::inbox::register_device;
use crate::helpers::otlp::{ReceivedSpan, Receiver};
use crate::helpers::people::{BERLIN, dog_at, like};
use crate::helpers::process::{Alone, runs_alone_elsewhere};
use crate::helpers::{Backend, TestApp, spawn_app_with};
use pupmatch::infra::traces::{SamplerSetting, TraceSettings};

both_backends!(
    a_request_is_traced_under_its_callers_traceparent,
    a_collector_that_is_gone_changes_no_answer,
    only_the_traces_the_sampler_picks_are_sent,
    a_push_the_worker_retries_belongs_to_its_requests_trace,
);

/// An app whose process exports every trace to `endpoint`.
async fn traced_app(
    backend: Backend,
    endpoint: &str,
) -> (TestApp, pupmatch::infra::telemetry::Telemetry) {
    let every = SamplerSetting {
        parent_based: true,
        ratio: 1.0,
    };
    sampled_app(backend, endpoint, every, |_| {}).await
}

/// An app whose process exports the traces `sampler` picks to `endpoint`, configured further
/// by `configure`.
async fn sampled_app(
    backend: Backend,
    endpoint: &str,
    sampler: SamplerSetting,
    configure: impl FnOnce(&mut pupmatch::Config),
) -> (TestApp, pupmatch::infra::telemetry::Telemetry) {
    let settings = TraceSettings {
        endpoint: endpoint.to_string(),
        service_name: "pupmatch-test".into(),
        sampler,
    };
    let app = spawn_app_with(backend, |c| {
        c.traces = Some(settings.clone());
        c.log = "info,pupmatch::infra::traces=debug".into();
        configure(c);
    })
    .await;
    let telemetry = pupmatch::infra::telemetry::init(&app.config).expect("telemetry");
    (app, telemetry)
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn in_trace<'a>(spans: &'a [ReceivedSpan], name: &str) -> Option<&'a ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.trace_id == TRACE_ID && s.name == name)
}

async fn a_request_is_traced_under_its_callers_traceparent(backend: Backend) {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
    let receiver = Receiver::start().await;
    let (app, _telemetry) = traced_app(backend, &receiver.url).await;
    let user = app.new_user().await;
    let bio = "Secretly afraid of squirrels";
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(user.token().expect("token"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&json!({
            "query": "mutation CreateProfile($i: ProfileInput!) { createProfile(input: $i) { id } }",
            "operationName": "CreateProfile",
            "variables": { "i": { "name": "Rex", "age": 3, "bio": bio, "activityLevel": "HIGH" } },
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);

    let spans = receiver
        .wait_for("the request's spans with a database span", |spans| {
            in_trace(spans, "POST /graphql").is_some()
                && in_trace(spans, "mutation CreateProfile").is_some()
                && spans
                    .iter()
                    .any(|s| s.trace_id == TRACE_ID && s.attributes.contains_key("db.system"))
        })
        .await;
    // The request is a child of the caller's span, the operation of the request.
    let request = in_trace(&spans, "POST /graphql").expect("request span");
    assert_eq!(request.parent_span_id, CALLER_SPAN);
    assert_eq!(request.kind, 2, "a server span");
    assert_eq!(request.service, "pupmatch-test");
    assert_eq!(request.attributes["http.route"], "/graphql");
    assert_eq!(request.attributes["http.response.status_code"], "200");
    let operation = in_trace(&spans, "mutation CreateProfile").expect("operation span");
    assert_eq!(operation.parent_span_id, request.span_id);
    // A statement of the operation, named, with its database and never a bound value.
    let ours: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace_id == TRACE_ID).collect();
    let insert = ours
        .iter()
        .find(|s| s.name.starts_with("INSERT profiles"))
        .unwrap_or_else(|| panic!("an INSERT into profiles among {ours:#?}"));
    let system = if backend == Backend::Postgres {
        "postgresql"
    } else {
        "sqlite"
    };
    assert_eq!(insert.attributes["db.system"], system);
    assert_eq!(insert.kind, 3, "a client span");
    let within: Vec<&str> = ours.iter().map(|s| s.span_id.as_str()).collect();
    assert!(
        within.contains(&insert.parent_span_id.as_str()),
        "{insert:#?}"
    );
    // Nothing personal in any span: what people wrote, their email, their token.
    for span in &ours {
        for (key, value) in &span.attributes {
            for secret in [bio, user.email.as_str(), user.token().expect("token")] {
                assert!(
                    !value.contains(secret),
                    "{key} of {} holds {secret:?}",
                    span.name
                );
            }
        }
    }
}

/// Parent-based sampling with no new traces of its own: a caller's unsampled trace, and
/// requests and socket frames with no caller, send nothing; a caller's sampled trace is sent
/// whole.
async fn only_the_traces_the_sampler_picks_are_sent(backend: Backend) {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
    let receiver = Receiver::start().await;
    let never_alone = SamplerSetting {
        parent_based: true,
        ratio: 0.0,
    };
    let (app, _telemetry) = sampled_app(backend, &receiver.url, never_alone, |_| {}).await;
    let user = app.new_user().await;
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    for traceparent in [Some(format!("00-{unsampled}-b7ad6b7169203331-00")), None] {
        let mut req = app
            .client
            .post(app.url("/graphql"))
            .bearer_auth(user.token().expect("token"))
            .json(&json!({ "query": "query Me { me { id } }" }));
        if let Some(traceparent) = traceparent {
            req = req.header("traceparent", traceparent);
        }
        assert_eq!(req.send().await.expect("sent").status(), 200);
    }
    let mut ws = app.ws(&user).await;
    ws.assert_alive().await;

    // Then a sampled caller: its spans arrive, and they are all that ever did.
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(user.token().expect("token"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&json!({ "query": "query Me { me { id } }", "operationName": "Me" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let spans = receiver
        .wait_for("the sampled request and its operation", |spans| {
            in_trace(spans, "POST /graphql").is_some() && in_trace(spans, "query Me").is_some()
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let strays: Vec<String> = receiver
        .spans()
        .iter()
        .filter(|s| s.trace_id != TRACE_ID)
        .map(|s| format!("{} ({})", s.name, s.trace_id))
        .collect();
    assert!(strays.is_empty(), "unsampled work was sent: {strays:?}");
    let request = in_trace(&spans, "POST /graphql").expect("request span");
    assert_eq!(request.parent_span_id, CALLER_SPAN);
}

async fn a_collector_that_is_gone_changes_no_answer(backend: Backend) {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let endpoint = format!("http://{}/v1/traces", closed.local_addr().expect("addr"));
    drop(closed);
    let (app, _telemetry) = traced_app(backend, &endpoint).await;
    for _ in 0..20 {
        let res = app.me(None).await;
        assert_eq!(res.status, 200);
    }
    // What could not be sent is counted, not retried forever nor blocking anyone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = app.metrics().await;
        if metrics
            .lines()
            .any(|l| l.starts_with("otel_spans_dropped_total") && !l.ends_with(" 0"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dropped spans counted:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A message sent through one instance and delivered to a socket on another is one trace: the
/// trace context travels with the bus message (PostgreSQL + Redis), and its delivery is timed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_by_another_instance_is_one_trace() {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
    let receiver = Receiver::start().await;
    let (app, _telemetry) = traced_app(Backend::Postgres, &receiver.url).await;
    let other = app.spawn_sibling().await;
    let (alice, bob, conversation) = matched_pair(&app).await;
    let mut bob_socket = other.ws(&bob).await;
    let text = "meet at the big oak?";
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(alice.token().expect("token"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&json!({
            "query": "mutation Send($c: UUID!, $t: String!) { sendMessage(conversationId: $c, content: $t) { id } }",
            "operationName": "Send",
            "variables": { "c": conversation, "t": text },
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let frame = bob_socket.recv().await;
    assert_eq!(frame["type"], "message", "{frame}");

    let spans = receiver
        .wait_for("the delivery on the other instance", |spans| {
            in_trace(spans, "ws deliver").is_some() && in_trace(spans, "hub publish").is_some()
        })
        .await;
    receiver
        .save_trace(TRACE_ID, "message-across-instances")
        .await;
    let publish = in_trace(&spans, "hub publish").expect("publish");
    let deliver = in_trace(&spans, "ws deliver").expect("deliver");
    assert_eq!(deliver.parent_span_id, publish.span_id, "{deliver:#?}");
    let operation = in_trace(&spans, "mutation Send").expect("operation");
    let chain: Vec<&str> = spans
        .iter()
        .filter(|s| s.trace_id == TRACE_ID)
        .map(|s| s.span_id.as_str())
        .collect();
    assert!(
        chain.contains(&publish.parent_span_id.as_str()),
        "{publish:#?}"
    );
    assert_eq!(operation.attributes["graphql.operation.name"], "Send");
    for span in spans.iter().filter(|s| s.trace_id == TRACE_ID) {
        for value in span.attributes.values() {
            assert!(!value.contains(text), "the message text in {}", span.name);
        }
    }
    // Timed from the message being stored to its frame being written, on the other instance.
    let metrics = other.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("chat_delivery_seconds_count") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

/// A like sent through one instance makes a match; the `match` frame written to a socket on
/// another instance belongs to the like's trace (the trace context travels with the match
/// event on the bus).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_delivered_by_another_instance_is_in_the_likes_trace() {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
    let receiver = Receiver::start().await;
    let (app, _telemetry) = traced_app(Backend::Postgres, &receiver.url).await;
    let other = app.spawn_sibling().await;
    let alice = dog_at(&app, "Rex", BERLIN).await;
    let bob = dog_at(&app, "Bella", BERLIN).await;
    like(&app, &bob, alice.user_id).await.data("like");
    // No match notification for Bob: the only frame delivered to him is the match itself.
    app.gql(
        bob.token(),
        "mutation { updateNotificationPreferences(input: { matches: false }) { matches } }",
        json!({}),
    )
    .await
    .data("updateNotificationPreferences");
    let mut bob_socket = other.ws(&bob).await;
    like_in_trace(&app, &alice, bob.user_id).await;
    assert_eq!(bob_socket.recv_type("match").await["type"], "match");

    let spans = receiver
        .wait_for("a delivery in the like's trace", |spans| {
            in_trace(spans, "ws deliver").is_some() && in_trace(spans, "mutation Like").is_some()
        })
        .await;
    let ours: Vec<&str> = spans
        .iter()
        .filter(|s| s.trace_id == TRACE_ID)
        .map(|s| s.span_id.as_str())
        .collect();
    for deliver in spans
        .iter()
        .filter(|s| s.trace_id == TRACE_ID && s.name == "ws deliver")
    {
        assert!(
            ours.contains(&deliver.parent_span_id.as_str()),
            "{deliver:#?}"
        );
    }
}

/// A push that fails for now is left for the delivery job; the job's later attempt belongs to
/// the trace of the request that caused it.
async fn a_push_the_worker_retries_belongs_to_its_requests_trace(backend: Backend) {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
    let receiver = Receiver::start().await;
    let fcm = FcmStandIn::start().await;
    let every = SamplerSetting {
        parent_based: true,
        ratio: 1.0,
    };
    let (app, _telemetry) = sampled_app(backend, &receiver.url, every, |c| fcm.configure(c)).await;
    let alice = dog_at(&app, "Rex", BERLIN).await;
    let bob = dog_at(&app, "Bella", BERLIN).await;
    // Bob's phone is unreachable for now (the stand-in refuses `down…` devices).
    register_device(&app, &bob, "down-bob").await;
    like_in_trace(&app, &alice, bob.user_id).await;
    let pending = "SELECT count(*) FROM notifications
                    WHERE push_state = 'PENDING' AND push_traceparent LIKE '00-' || $1 || '-%'";
    let mut queued = 0i64;
    for _ in 0..100 {
        queued = match &app.db {
            pupmatch::infra::db::Db::Postgres(p) => {
                sqlx::query_scalar(pending)
                    .bind(TRACE_ID)
                    .fetch_one(p)
                    .await
            }
            pupmatch::infra::db::Db::Sqlite(p) => {
                sqlx::query_scalar(pending)
                    .bind(TRACE_ID)
                    .fetch_one(p)
                    .await
            }
        }
        .expect("count");
        if queued == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(queued, 1, "the push waits for the job, with its trace");

    let run = deliver_queued_pushes(&app, &fcm.fcm).await;
    assert!(run.ok && run.items == 1, "{run:?}");

    let spans = receiver
        .wait_for("the job's push attempt in the like's trace", |spans| {
            in_trace(spans, "push attempt").is_some()
        })
        .await;
    let attempt = in_trace(&spans, "push attempt").expect("attempt");
    assert!(
        spans
            .iter()
            .any(|s| s.trace_id == TRACE_ID && s.span_id == attempt.parent_span_id),
        "{attempt:#?}"
    );
}

/// `from` likes `to` in a request that is a child of the caller's span `CALLER_SPAN` of trace
/// `TRACE_ID`.
async fn like_in_trace(app: &TestApp, from: &crate::helpers::Session, to: uuid::Uuid) {
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(from.token().expect("token"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .json(&json!({
            "query": "mutation Like($u: UUID!) { like(userId: $u) { isMatch } }",
            "operationName": "Like",
            "variables": { "u": to },
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
}
