//! Health, readiness, metrics, request ids, production mode and startup validation.

use serde_json::json;

use crate::both_backends;
use crate::helpers::process::{Alone, runs_alone_elsewhere};
use crate::helpers::{Backend, TestDb, in_production, spawn_app, spawn_app_with, test_config};

both_backends!(
    health_and_readiness_answer,
    metrics_count_requests_per_route_and_operation,
    every_response_carries_a_request_id,
    production_mode_hides_the_schema,
    production_refuses_the_development_secret,
    media_urls_need_a_valid_signature,
    metrics_can_have_an_address_of_their_own,
    operation_names_are_bounded_metric_labels,
);

async fn metrics_can_have_an_address_of_their_own(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().expect("addr"));
    })
    .await;
    app.new_user().await;
    let public = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(public.status(), 404, "not on the public address");
    let own = app.metrics_address.clone().expect("a metrics address");
    let res = app.get_ok(format!("{own}/metrics")).await;
    assert!(
        res.text()
            .await
            .expect("text")
            .contains("http_requests_total")
    );
}

/// Operation names are the client's choice: random ones must not grow the metrics.
async fn operation_names_are_bounded_metric_labels(backend: Backend) {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
    let app = spawn_app(backend).await;
    for i in 0..150 {
        let res = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": format!("query Random{i} {{ promptQuestions }}"), "operationName": format!("Random{i}") }))
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), 200);
    }
    let text = app.metrics().await;
    let labels: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("graphql_operations_total{"))
        .filter_map(|l| l.split("operation=\"").nth(1)?.split('"').next())
        .collect();
    assert!(labels.contains("other"), "{labels:?}");
    assert!(labels.len() <= 102, "{} labels", labels.len());
}

async fn health_and_readiness_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    app.get_ok(app.url("/healthz")).await;
    let ready = app.get_ok(app.url("/readyz")).await;
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["database"], "ok");
    let expected_redis = match backend {
        Backend::Postgres => "ok",
        Backend::Sqlite => "not configured",
    };
    assert_eq!(body["redis"], expected_redis);
}

async fn metrics_count_requests_per_route_and_operation(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": "query WhoAmI { me { id } }", "operationName": "WhoAmI" }))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 200);
    let text = app.metrics().await;
    assert!(
        text.contains(r#"graphql_operations_total{operation="WhoAmI",outcome="error"}"#),
        "{text}"
    );
    assert!(text.contains(r#"route="/graphql""#), "{text}");
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("get");
    let id = res.headers().get("x-request-id").expect("request id");
    assert!(uuid::Uuid::parse_str(id.to_str().expect("ascii")).is_ok());
}

async fn production_mode_hides_the_schema(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        in_production(c);
    })
    .await;
    let res = app
        .gql(None, "{ __schema { types { name } } }", json!({}))
        .await;
    assert!(
        res.body["data"]["__schema"].is_null() || !res.errors().is_empty(),
        "introspection must be off: {}",
        res.body
    );
    let res = app
        .gql(
            None,
            "{ __type(name: \"Me\") { fields { name } } }",
            json!({}),
        )
        .await;
    assert!(res.body["data"]["__type"].is_null(), "{}", res.body);
    let res = app.gql(None, "{ mee { id } }", json!({})).await;
    assert!(
        !res.error_message().contains("Did you mean"),
        "{}",
        res.body
    );
    // No GraphiQL: a browser's navigation finds nothing.
    let page = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("get");
    assert_eq!(page.status(), 404);
    // The API itself works.
    app.new_user().await;
}

async fn production_refuses_the_development_secret(backend: Backend) {
    let db = TestDb::create(backend).await;
    let media = tempfile::tempdir().expect("dir");
    let mut config = test_config(backend, &db, media.path());
    in_production(&mut config);
    config.jwt_secret = pupmatch::config::DEV_JWT_SECRET.into();
    let err = pupmatch::Application::build(config)
        .await
        .err()
        .expect("must refuse to start");
    assert!(err.to_string().contains("PUPMATCH_JWT_SECRET"), "{err}");
}

async fn media_urls_need_a_valid_signature(backend: Backend) {
    // `/media` serves the local blob store (with S3, clients get presigned S3 URLs instead).
    let app = spawn_app_with(backend, |c| c.s3 = None).await;
    let key = "photos/test/pic.jpg";
    let path = app.config.media_dir.join(key);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, b"\xff\xd8\xff jpeg").expect("write");
    let signer =
        pupmatch::infra::blobs::MediaSigner::new(crate::helpers::TEST_JWT_SECRET.as_bytes());
    let exp = chrono::Utc::now().timestamp() + 60;
    let sig = signer.sign(key, exp);
    let ok = app
        .get_ok(app.url(&format!("/media/{key}?exp={exp}&sig={sig}")))
        .await;
    assert_eq!(
        ok.bytes().await.expect("bytes").as_ref(),
        b"\xff\xd8\xff jpeg"
    );
    for bad in [
        format!("/media/{key}"),
        format!("/media/{key}?exp={}&sig={sig}", exp + 1),
        format!("/media/photos/test/other.jpg?exp={exp}&sig={sig}"),
        format!(
            "/media/{key}?exp={}&sig={}",
            exp - 120,
            signer.sign(key, exp - 120)
        ),
    ] {
        let res = app.client.get(app.url(&bad)).send().await.expect("get");
        assert_eq!(res.status(), 403, "{bad}");
    }
}
