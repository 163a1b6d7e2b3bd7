//! Hostile input is the client's error: a GraphQL body over 256 KiB is refused with 413
//! before it is buffered or executed, and an argument the engine cannot coerce (an Int out of
//! range) is BAD_USER_INPUT, never INTERNAL.

use serde_json::json;

use crate::both_backends;
use crate::helpers::people::{BERLIN, dog_at};
use crate::helpers::{Backend, spawn_app};

both_backends!(
    a_huge_graphql_body_is_refused_before_it_is_read,
    out_of_range_arguments_are_the_clients_error,
);

const LIMIT: usize = 256 * 1024;

async fn a_huge_graphql_body_is_refused_before_it_is_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    // A valid document padded past the limit: today it would be read and executed.
    let padded = |size: usize| {
        let pad = " ".repeat(size);
        json!({ "query": format!("mutation {{ updateLocation(latitude: 1, longitude: 1) }}{pad}") })
            .to_string()
    };
    // With a Content-Length: refused from the header alone.
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&user.access_token)
        .header("content-type", "application/json")
        .body(padded(LIMIT + 1024))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 413);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE",
        "{body}"
    );

    // Chunked, 60 MB, without a length: refused once the limit is passed; the rest is never
    // read (the stream below is produced lazily and would take long to send in full).
    let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
    let head = bytes::Bytes::from(
        "{\"query\":\"mutation { updateLocation(latitude: 1, longitude: 1) }\",\"x\":\"",
    );
    let stream = futures::stream::iter(
        std::iter::once(head)
            .chain(std::iter::repeat_n(chunk, 60 * 16))
            .map(Ok::<_, std::io::Error>),
    );
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&user.access_token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    // The server answers 413 and may close the connection while the client is still sending.
    if let Ok(res) = res {
        assert_eq!(res.status(), 413);
    }
    // Nothing ran.
    assert_eq!(app.count("locations").await, 0);
    // Under the limit is fine.
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&user.access_token)
        .header("content-type", "application/json")
        .body(padded(LIMIT - 1024))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    assert_eq!(app.count("locations").await, 1);
}

async fn out_of_range_arguments_are_the_clients_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = dog_at(&app, "Rex", BERLIN).await;
    let conversation = uuid::Uuid::now_v7();
    for (query, vars) in [
        (
            "query($f: Int) { matches(first: $f) { edges { cursor } } }",
            json!({}),
        ),
        (
            "query($f: Int) { recommendations(first: $f) { edges { cursor } } }",
            json!({}),
        ),
        (
            "query($f: Int) { searchPlaygrounds(query: \"park\", first: $f) { id } }",
            json!({}),
        ),
        (
            "query($f: Int) { conversations(first: $f) { edges { cursor } } }",
            json!({}),
        ),
        (
            "query($f: Int, $c: UUID!) { messages(conversationId: $c, first: $f) { edges { cursor } } }",
            json!({ "c": conversation }),
        ),
        (
            "query($f: Int) { notifications(first: $f) { edges { cursor } } }",
            json!({}),
        ),
    ] {
        for first in [
            json!(-2_147_483_649_i64),
            json!(2_147_483_648_i64),
            json!(1.5),
            json!("ten"),
        ] {
            let mut vars = vars.clone();
            vars["f"] = first.clone();
            let res = app.gql(user.token(), query, vars).await;
            assert_eq!(
                res.error_code(),
                "BAD_USER_INPUT",
                "{query} with {first}: {}",
                res.body
            );
            assert!(res.status < 500, "{}", res.body);
        }
        // Inline, too.
        let inline = query
            .replace("$f", "-2147483649")
            .replace("query(-2147483649: Int)", "query")
            .replace("query(-2147483649: Int, $c: UUID!)", "query($c: UUID!)");
        let res = app
            .gql(user.token(), &inline, json!({ "c": conversation }))
            .await;
        assert_eq!(res.error_code(), "BAD_USER_INPUT", "{inline}: {}", res.body);
    }
}
