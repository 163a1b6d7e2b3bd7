//! GraphQL over HTTP as real clients expect it: the specification's own audit suite
//! (graphql-http), a real Apollo Client with automatic persisted queries (Node, from
//! `tests/clients`, installed by scripts/test.sh), content negotiation, GET for queries,
//! persisted queries across instances, and GraphiQL rendering in Chromium with no network.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::Locator;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::both_backends;
use crate::helpers::browser::{browser_with, start_driver};
use crate::helpers::{Backend, TestApp, images, in_production, spawn_app, spawn_app_with};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs `node <script> <args…>` in `tests/clients`: whether it exited 0, and what it printed.
async fn node(script: &str, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(clients_dir())
        .output()
        .await
        .expect("node runs (scripts/test.sh installs Node.js and tests/clients)");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The audit's warnings this server keeps, each argued in the README ("GraphQL over HTTP").
const ARGUED_WARNINGS: &[&str] = &[];

async fn audit(app: &TestApp) {
    let (ran, printed) = node("audit.mjs", &[&app.address]).await;
    assert!(ran, "the audit ran:\n{printed}");
    let results: Vec<Value> = printed
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert!(results.len() > 50, "the audit reported:\n{printed}");
    let failed: Vec<&Value> = results.iter().filter(|r| r["status"] == "error").collect();
    assert!(failed.is_empty(), "MUSTs not met: {failed:#?}");
    let warned: Vec<&Value> = results
        .iter()
        .filter(|r| {
            r["status"] != "ok" && !ARGUED_WARNINGS.contains(&r["id"].as_str().unwrap_or(""))
        })
        .collect();
    assert!(warned.is_empty(), "SHOULDs not met: {warned:#?}");
}

async fn the_specs_audit_finds_nothing_in_development(backend: Backend) {
    audit(&spawn_app(backend).await).await;
}

async fn the_specs_audit_finds_nothing_in_production(backend: Backend) {
    audit(&spawn_app_with(backend, in_production).await).await;
}

both_backends!(
    get_spends_the_same_budget_as_post,
    the_specs_audit_finds_nothing_in_development,
    the_specs_audit_finds_nothing_in_production,
    the_answer_is_in_the_media_type_the_client_accepts,
    request_errors_are_400_without_data_for_graphql_response_clients,
    queries_run_by_get_and_mutations_do_not,
    persisted_queries_are_registered_checked_and_found,
);

/// POSTs `body` as JSON with `accept` (None: no `Accept` header).
async fn post(
    app: &TestApp,
    accept: Option<&str>,
    token: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string());
    req = match accept {
        Some(accept) => req.header(ACCEPT, accept),
        // reqwest sends `*/*` unless told otherwise; an empty value counts as none.
        None => req.header(ACCEPT, ""),
    };
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("sent")
}

fn content_type(res: &reqwest::Response) -> String {
    res.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn the_answer_is_in_the_media_type_the_client_accepts(backend: Backend) {
    let app = spawn_app(backend).await;
    let query = json!({ "query": "{ __typename }" });
    for (accept, media) in [
        (Some(GRAPHQL_RESPONSE), GRAPHQL_RESPONSE),
        (Some("application/json"), "application/json"),
        (Some("*/*"), "application/json"),
        (None, "application/json"),
        (
            Some("application/graphql-response+json,application/json;q=0.9"),
            GRAPHQL_RESPONSE,
        ),
    ] {
        let res = post(&app, accept, None, query.clone()).await;
        assert_eq!(res.status(), 200, "{accept:?}");
        assert!(
            content_type(&res).starts_with(media),
            "{accept:?}: {}",
            content_type(&res)
        );
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["data"]["__typename"], "Query");
    }
    // Nothing the server can answer in: 406, and nothing ran.
    let res = post(&app, Some("text/xml"), None, query.clone()).await;
    assert_eq!(res.status(), 406);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_ACCEPTABLE");

    // A body that is not JSON, or has no content type: 415, nothing registered.
    for content in [
        None,
        Some("text/plain"),
        Some("application/json; charset=latin1"),
    ] {
        let mut req = app.client.post(app.url("/graphql")).body(
            json!({ "query": "mutation { register(input: {email: \"x@example.com\", password: \"long enough pw\"}) { accessToken } }" })
                .to_string(),
        );
        if let Some(content) = content {
            req = req.header(CONTENT_TYPE, content);
        }
        let res = req.send().await.expect("sent");
        assert_eq!(res.status(), 415, "{content:?}");
    }
    assert_eq!(app.count("users").await, 0, "nothing was registered");
}

async fn request_errors_are_400_without_data_for_graphql_response_clients(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        // Does not parse.
        json!({ "query": "{ me { id }" }),
        // Does not validate.
        json!({ "query": "{ noSuchField }" }),
        // Variables that do not fit.
        json!({ "query": "query($n: Int!) { __typename }", "variables": { "n": "three" } }),
        // Too deep.
        json!({ "query": "{ a { b { c { d { e { f } } } } } }" }),
    ];
    for body in &cases {
        let res = post(&app, Some(GRAPHQL_RESPONSE), None, body.clone()).await;
        assert_eq!(res.status(), 400, "{body}");
        assert!(content_type(&res).starts_with(GRAPHQL_RESPONSE));
        let answer: Value = res.json().await.expect("json");
        assert!(answer.get("data").is_none(), "{answer}");
        let error = &answer["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{answer}");
        let message = error["message"].as_str().expect("message");
        assert!(
            !message.contains('\n') && !message.contains("-->"),
            "{message}"
        );

        // The same as plain JSON: 200 (what older clients expect), still without data.
        let res = post(&app, Some("application/json"), None, body.clone()).await;
        assert_eq!(res.status(), 200, "{body}");
        let answer: Value = res.json().await.expect("json");
        assert!(answer.get("data").is_none(), "{answer}");
    }
    // A syntax error says where, as a sentence.
    let res = post(&app, Some(GRAPHQL_RESPONSE), None, cases[0].clone()).await;
    let answer: Value = res.json().await.expect("json");
    assert_eq!(
        answer["errors"][0]["locations"][0],
        json!({ "line": 1, "column": 12 }),
        "{answer}"
    );
    // Not a GraphQL request at all: 400 whatever the client accepts.
    for body in [
        json!({}),
        json!({ "query": 7 }),
        json!({ "query": "{ __typename }", "variables": "x" }),
        json!([1]),
    ] {
        for accept in [GRAPHQL_RESPONSE, "application/json"] {
            let res = post(&app, Some(accept), None, body.clone()).await;
            assert_eq!(res.status(), 400, "{body} as {accept}");
        }
    }
    // An error while running is not a request error: 200 with data.
    let res = post(
        &app,
        Some(GRAPHQL_RESPONSE),
        None,
        json!({ "query": "{ me { id } }" }),
    )
    .await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.expect("json");
    assert!(answer.get("data").is_some(), "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

async fn queries_run_by_get_and_mutations_do_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user_with_profile("Getter").await;
    let get_with =
        |app: &TestApp, query: &str, variables: Option<Value>, operation: Option<&str>| {
            let mut url = url::Url::parse(&app.url("/graphql")).expect("url");
            url.query_pairs_mut().append_pair("query", query);
            if let Some(v) = variables {
                url.query_pairs_mut()
                    .append_pair("variables", &v.to_string());
            }
            if let Some(name) = operation {
                url.query_pairs_mut().append_pair("operationName", name);
            }
            app.client
                .get(url)
                .header(ACCEPT, GRAPHQL_RESPONSE)
                .bearer_auth(user.token().expect("token"))
        };
    let get = |query: &str, variables: Option<Value>| get_with(&app, query, variables, None);
    let res = get(
        "query($u: UUID!) { profile(userId: $u) { name } }",
        Some(json!({ "u": user.user_id })),
    )
    .send()
    .await
    .expect("sent");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["cache-control"].to_str().expect("text"),
        "private, no-store"
    );
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["data"]["profile"]["name"], "Getter", "{body}");

    // A mutation by GET is refused before it runs: 405 with Allow: POST.
    let res = get(
        "mutation { updateProfile(input: {name: \"Renamed\"}) { name } }",
        None,
    )
    .send()
    .await
    .expect("sent");
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"].to_str().expect("text"), "POST");
    let res = get_with(
        &app,
        "query Q { __typename } mutation M { updateProfile(input: {name: \"Renamed\"}) { name } }",
        None,
        Some("M"),
    )
    .send()
    .await
    .expect("sent");
    assert_eq!(res.status(), 405, "the operation chosen is the mutation");
    let res = get("{ me { profile { name } } }", None)
        .send()
        .await
        .expect("sent");
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body["data"]["me"]["profile"]["name"], "Getter",
        "nothing was renamed"
    );

    // GET has POST's limits: the same depth rule.
    let res = get("{ a { b { c { d { e { f } } } } } }", None)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 400);
    // A GET with no query is a malformed request.
    let res = app
        .client
        .get(app.url("/graphql"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 400);
}

async fn get_spends_the_same_budget_as_post(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.ip_per_min = 4).await;
    for _ in 0..2 {
        assert_eq!(app.me(None).await.status, 200);
    }
    let mut url = url::Url::parse(&app.url("/graphql")).expect("url");
    url.query_pairs_mut().append_pair("query", "{ __typename }");
    for _ in 0..2 {
        let res = app.client.get(url.clone()).send().await.expect("sent");
        assert_eq!(res.status(), 200);
    }
    let res = app.client.get(url).send().await.expect("sent");
    assert_eq!(res.status(), 429);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
}

/// A persisted-query request to `app` by POST: the hash, and the document when given.
async fn apq(
    app: &TestApp,
    accept: Option<&str>,
    query: Option<&str>,
    hash: &str,
) -> reqwest::Response {
    let mut body =
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
    if let Some(query) = query {
        body["query"] = json!(query);
    }
    post(app, accept, None, body).await
}

async fn persisted_queries_are_registered_checked_and_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let query = "{ __typename }";
    let hash = sha256_hex(query);
    let gr = Some(GRAPHQL_RESPONSE);

    // Unknown: PERSISTED_QUERY_NOT_FOUND (a request error).
    let res = apq(&app, gr, None, &hash).await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND",
        "{body}"
    );
    let res = apq(&app, Some("application/json"), None, &hash).await;
    assert_eq!(res.status(), 200, "as plain JSON a request error is 200");

    // A hash that is not the query's is refused, and registers nothing.
    let other = sha256_hex("{ me { id } }");
    assert_eq!(apq(&app, gr, Some(query), &other).await.status(), 400);
    assert_eq!(
        apq(&app, gr, None, &other).await.status(),
        404,
        "the wrong hash was not registered"
    );

    // Registered with its query; then the hash alone runs it, by POST and by GET.
    assert_eq!(apq(&app, gr, Some(query), &hash).await.status(), 200);
    let body: Value = apq(&app, gr, None, &hash).await.json().await.expect("json");
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
    let mut url = url::Url::parse(&app.url("/graphql")).expect("url");
    url.query_pairs_mut().append_pair(
        "extensions",
        &json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } }).to_string(),
    );
    let res = app.client.get(url).send().await.expect("sent");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["data"]["__typename"], "Query", "{body}");

    // A document that does not validate is not kept, nor one longer than 32 KiB (it runs).
    let invalid = "{ noSuchField }";
    assert_eq!(
        apq(&app, gr, Some(invalid), &sha256_hex(invalid))
            .await
            .status(),
        400
    );
    let res = apq(&app, gr, None, &sha256_hex(invalid)).await;
    assert_eq!(res.status(), 404, "an invalid document was kept");
    let long = format!("# {}\n{{ __typename }}", "x".repeat(40 * 1024));
    assert_eq!(
        apq(&app, gr, Some(&long), &sha256_hex(&long))
            .await
            .status(),
        200
    );
    let res = apq(&app, gr, None, &sha256_hex(&long)).await;
    assert_eq!(res.status(), 404, "a 40 KiB document was kept");

    // A malformed extension is a malformed request.
    let res = post(
        &app,
        None,
        None,
        json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": hash } } }),
    )
    .await;
    assert_eq!(res.status(), 400);

    // In scale-out mode a hash registered through one instance works through every other.
    if backend == Backend::Postgres {
        let sibling = app.spawn_sibling().await;
        let doc = "query Sibling { __typename }";
        apq(&app, None, Some(doc), &sha256_hex(doc)).await;
        let body: Value = apq(&sibling, None, None, &sha256_hex(doc))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(body["data"]["__typename"], "Query", "{body}");
    }
}

/// Apollo Client 4 with its persisted-query link, on POST and (for hashed queries) on GET,
/// through two instances on PostgreSQL and Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apollo_client_with_persisted_queries_works_across_instances() {
    let app = spawn_app(Backend::Postgres).await;
    let sibling = app.spawn_sibling().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut photos = Vec::new();
    for seed in [1_u64, 2] {
        let path = dir.path().join(format!("dog{seed}.jpg"));
        std::fs::write(&path, images::photo_jpeg(seed, 64, 48)).expect("photo written");
        photos.push(path.display().to_string());
    }
    let (ok, printed) = node(
        "apollo.mjs",
        &[&app.address, &sibling.address, &photos[0], &photos[1]],
    )
    .await;
    assert!(ok, "Apollo Client:\n{printed}");
}

/// GraphiQL renders and runs a query in Chromium with every address but the server's cut off:
/// it loads nothing from anywhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_works_with_no_network() {
    let app = spawn_app(Backend::Sqlite).await;
    let driver = start_driver().await;
    // Every host name resolves to nothing, and anything not on loopback goes to a closed port.
    let page = browser_with(
        &driver,
        &[
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
        ],
    )
    .await;
    page.goto(&app.url("/graphql")).await.expect("opens");
    let editor = page
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(".graphiql-container .graphiql-query-editor"))
        .await;
    assert!(
        editor.is_ok(),
        "GraphiQL rendered: {}",
        page.source().await.unwrap_or_default()
    );
    // Every file the page loaded came from the server.
    let loaded = page
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)",
            vec![],
        )
        .await
        .expect("resources");
    let loaded: Vec<String> = serde_json::from_value(loaded).expect("names");
    assert!(loaded.len() >= 4, "{loaded:?}");
    for name in &loaded {
        assert!(
            name.starts_with(&app.address),
            "loaded from elsewhere: {name}"
        );
    }
    // And it runs a query: the schema is fetched (introspection) and shown in the docs.
    page.find(Locator::Css(".graphiql-execute-button"))
        .await
        .expect("run button")
        .click()
        .await
        .expect("clicked");
    let result = page
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(".graphiql-response"))
        .await
        .expect("a response pane");
    let mut text = String::new();
    for _ in 0..50 {
        text = result.text().await.unwrap_or_default();
        if text.contains("Query") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(text.contains("\"__typename\": \"Query\""), "{text}");
    page.close().await.ok();

    // Production has no GraphiQL, nor its files.
    let prod = spawn_app_with(Backend::Sqlite, in_production).await;
    let res = prod
        .client
        .get(prod.url("/graphql"))
        .header(ACCEPT, "text/html")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 404);
    let res = prod
        .client
        .get(prod.url("/graphiql/graphiql.min.js"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 404);
}
