//! Every text input is NFC-normalised and refuses characters that let one person's text
//! disguise itself: control characters, text-direction overrides, and in names invisible
//! characters. Each refusal is BAD_USER_INPUT naming the field, and stores nothing.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::chat::{matched_pair, messages};
use crate::helpers::people::{BERLIN, dog_at};
use crate::helpers::{Backend, GqlResponse, spawn_app};

both_backends!(
    a_disguised_dog_name_is_refused,
    every_text_input_refuses_disguises_and_stores_nothing,
    text_is_stored_in_one_normal_form,
);

#[track_caller]
fn assert_refused(res: &GqlResponse, field: &str) {
    assert_eq!(res.error_code(), "BAD_USER_INPUT", "{}", res.body);
    assert_eq!(
        res.body["errors"][0]["extensions"]["field"], field,
        "{}",
        res.body
    );
}

/// Today's attack: "Rex\u{202E}gnp.exe" shows as "Rexexe.png".
async fn a_disguised_dog_name_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let create = "mutation($i: ProfileInput!) { createProfile(input: $i) { name } }";
    for name in [
        "Rex\u{202E}gnp.exe",
        "Re\u{200B}x",
        "Rex\u{0}",
        "Rex\u{2066}",
    ] {
        let res = app
            .gql(
                user.token(),
                create,
                json!({ "i": { "name": name, "age": 3, "bio": "", "activityLevel": "HIGH" } }),
            )
            .await;
        assert_refused(&res, "name");
    }
    assert_eq!(app.count("profiles").await, 0);
}

async fn every_text_input_refuses_disguises_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let before_profile = own_profile(&app, &a).await;
    let bad = "Walks \u{202E}daily";
    let update = "mutation($i: ProfileUpdateInput!) { updateProfile(input: $i) { name } }";
    for (input, field) in [
        (json!({ "name": "Zero\u{200D}Width" }), "name"),
        (json!({ "bio": bad }), "bio"),
        (json!({ "bio": "nul \u{0} inside" }), "bio"),
        (json!({ "breed": "Bea\u{1b}[2Jgle" }), "breed"),
    ] {
        let res = app.gql(a.token(), update, json!({ "i": input })).await;
        assert_refused(&res, field);
    }
    let question = app
        .gql(a.token(), "{ promptQuestions }", json!({}))
        .await
        .data("promptQuestions")[0]
        .clone();
    let res = app
        .gql(
            a.token(),
            "mutation($p: [PromptInput!]!) { setPrompts(prompts: $p) { id } }",
            json!({ "p": [{ "question": question, "answer": bad }] }),
        )
        .await;
    assert_refused(&res, "answer");
    let after_profile = own_profile(&app, &a).await;
    assert_eq!(before_profile, after_profile, "nothing changed");

    // Messages, over GraphQL and the socket.
    let res = app
        .gql(
            a.token(),
            "mutation($c: UUID!, $t: String!) { sendMessage(conversationId: $c, content: $t) { id } }",
            json!({ "c": conversation, "t": bad }),
        )
        .await;
    assert_refused(&res, "content");
    let mut ws = app.ws(&a).await;
    let frame = ws.send_message(&conversation, "hi\u{0}", "nul").await;
    assert_eq!(frame["code"], "BAD_USER_INPUT", "{frame}");
    // Line breaks are fine in a message.
    let ok = ws
        .send_message(&conversation, "line one\nline two", "ok")
        .await;
    assert_eq!(ok["type"], "message_ack", "{ok}");
    assert_eq!(messages(&app, &b, &conversation).await.len(), 1);

    // Places.
    let add = "mutation($i: PlaygroundInput!) { addPlayground(input: $i) { id } }";
    for (name, description, field) in [
        ("Park\u{2060}", "", "name"),
        ("Park \u{202D}", "", "name"),
        ("Park", "Open \u{2067}late", "description"),
        ("Park", "bell \u{7}", "description"),
    ] {
        let res = app
            .gql(
                a.token(),
                add,
                json!({ "i": { "name": name, "description": description, "latitude": BERLIN.0, "longitude": BERLIN.1 } }),
            )
            .await;
        assert_refused(&res, field);
    }
    assert_eq!(app.count("playgrounds").await, 0);

    // Report details.
    let other = dog_at(&app, "Other", BERLIN).await;
    let res = app.report(&a, &other.user_id, "OTHER", Some(bad)).await;
    assert_refused(&res, "details");
    assert_eq!(app.count("reports").await, 0);
    assert_eq!(app.count("blocks").await, 0);
}

/// "Rémi" typed as e + a combining accent and as the one precomposed character is one name.
async fn text_is_stored_in_one_normal_form(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    let res = app
        .gql(
            user.token(),
            "mutation($i: ProfileInput!) { createProfile(input: $i) { name bio } }",
            json!({ "i": { "name": "Re\u{0301}mi", "age": 3, "bio": "Cafe\u{0301} dog", "activityLevel": "LOW" } }),
        )
        .await;
    let profile: &Value = res.data("createProfile");
    assert_eq!(profile["name"], "R\u{00E9}mi");
    assert_eq!(profile["bio"], "Caf\u{00E9} dog");
}

/// What a person's own profile says now.
async fn own_profile(app: &crate::helpers::TestApp, user: &crate::helpers::Session) -> Value {
    app.gql(
        user.token(),
        "{ me { profile { name bio breed prompts { answer } } } }",
        json!({}),
    )
    .await
    .data("me")
    .clone()
}
