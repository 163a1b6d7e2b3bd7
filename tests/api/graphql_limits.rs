//! Query depth and complexity limits, and the error shape of refused documents.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};

both_backends!(
    a_query_deeper_than_five_is_refused,
    an_over_complex_query_is_refused,
    graphiql_introspection_works_in_development,
    malformed_documents_get_a_clear_error,
);

async fn a_query_deeper_than_five_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    // A complete profile, as browsing recommendations needs.
    app.complete_profile(&user, "Rex").await;
    // Depth 6 through introspection types, mixed with a normal field (so it is not an
    // introspection-only document).
    let deep = "{ me { id } __schema { types { fields { type { ofType { name } } } } } }";
    let res = app.gql(user.token(), deep, json!({})).await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    assert!(
        res.error_message()
            .to_lowercase()
            .contains("nested too deep"),
        "{}",
        res.body
    );
    assert!(res.body["data"].is_null());
    // Connection plumbing (`edges`, `node`) does not count: this is depth 5 of data.
    let page = "{ recommendations { edges { node { profile { photos { url } } } } } matches { edges { node { profile { prompts { answer } } } } } }";
    let res = app.gql(user.token(), page, json!({}));
    assert!(res.await.errors().is_empty());
    let too_deep = "{ matches { edges { node { profile { photos { id } } } } } me { profile { photos { id } } } __schema { types { fields { type { ofType { name } } } } } }";
    assert_eq!(
        app.gql(user.token(), too_deep, json!({}))
            .await
            .error_code(),
        "BAD_USER_INPUT"
    );
    // Depth 5 is fine.
    let ok = "{ me { profile { photos { id } } } }";
    app.gql(user.token(), ok, json!({})).await.data("me");
}

async fn an_over_complex_query_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let many: String = (0..1300).map(|i| format!("m{i}: me {{ id }} ")).collect();
    let res = app
        .gql(user.token(), &format!("{{ {many} }}"), json!({}))
        .await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    assert!(
        res.error_message().to_lowercase().contains("complex"),
        "{}",
        res.body
    );
    // A mutation refused for complexity runs none of its fields.
    let registers: String = (0..550)
        .map(|i| {
            format!(
                "r{i}: register(input: {{email: \"dog{i}@example.com\", password: \"password{i}\"}}) {{ accessToken user {{ id email }} }} "
            )
        })
        .collect();
    let res = app
        .gql(None, &format!("mutation {{ {registers} }}"), json!({}))
        .await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    assert_eq!(app.count("users").await, 1);
}

async fn graphiql_introspection_works_in_development(backend: Backend) {
    let app = spawn_app(backend).await;
    // The shape of GraphiQL's introspection query: deeper than 5, allowed in development only.
    let q = "query IntrospectionQuery { __schema { queryType { name } types { kind name
        fields(includeDeprecated: true) { name args { name type { kind name ofType { kind name
        ofType { kind name ofType { kind name } } } } } } } } }";
    let res = app.gql(None, q, json!({})).await;
    let types = res.data("__schema")["types"].as_array().expect("types");
    assert!(types.iter().any(|t| t["name"] == "AuthPayload"));
    // A browser's navigation gets the page.
    let page = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .expect("body")
            .to_lowercase()
            .contains("graphiql")
    );
}

async fn malformed_documents_get_a_clear_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.gql(None, "{ me { id ", json!({})).await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    let res = app.gql(None, "{ noSuchField }", json!({})).await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    assert!(res.error_message().contains("noSuchField"));
    let res = app
        .gql(
            None,
            "mutation { register(input: {email: 5, password: \"x\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(res.error_code(), "BAD_USER_INPUT");
    assert_eq!(app.count("users").await, 0);
}
