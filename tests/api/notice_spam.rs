//! Notices cannot be used to pester someone: a like tells its person once per liker in 30 days
//! however often it is taken back and made again, and unread message notices collapse to one per
//! conversation.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::inbox::inbox;
use crate::helpers::people::{BERLIN, act, dog_at, like, north_of};
use crate::helpers::{Backend, Session, TestApp, spawn_app};

both_backends!(
    a_like_tells_its_person_once,
    message_notices_collapse_per_conversation
);

/// `user`'s notifications of `kind` (newest first), unread only when `unread`.
async fn notices(app: &TestApp, user: &Session, kind: &str, unread: bool) -> Vec<Value> {
    inbox(app, user, unread)
        .await
        .into_iter()
        .filter(|n| n["kind"] == kind)
        .collect()
}

async fn a_like_tells_its_person_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let pest = dog_at(&app, "Pest", BERLIN).await;
    let target = dog_at(&app, "Target", north_of(BERLIN, 1.0)).await;
    for _ in 0..5 {
        like(&app, &pest, target.user_id).await.data("like");
        act(&app, &pest, "unlike", target.user_id)
            .await
            .data("unlike");
    }
    assert_eq!(notices(&app, &target, "LIKE", false).await.len(), 1);
    // Matching and unmatching, then liking again, does not tell them again either.
    like(&app, &pest, target.user_id).await.data("like");
    let matched = like(&app, &target, pest.user_id).await;
    let match_id = matched.data("like")["match"]["id"].clone();
    app.gql(
        pest.token(),
        "mutation($m: UUID!) { unmatch(matchId: $m) }",
        json!({ "m": match_id }),
    )
    .await
    .data("unmatch");
    like(&app, &pest, target.user_id).await.data("like");
    assert_eq!(notices(&app, &target, "LIKE", false).await.len(), 1);
    // Someone else's like still tells them.
    let other = dog_at(&app, "Other", north_of(BERLIN, 2.0)).await;
    like(&app, &other, target.user_id).await.data("like");
    assert_eq!(notices(&app, &target, "LIKE", false).await.len(), 2);
}

async fn message_notices_collapse_per_conversation(backend: Backend) {
    let app = spawn_app(backend).await;
    let talker = dog_at(&app, "Talker", BERLIN).await;
    let reader = dog_at(&app, "Reader", north_of(BERLIN, 1.0)).await;
    let friend = dog_at(&app, "Friend", north_of(BERLIN, 2.0)).await;
    let mut conversations = Vec::new();
    for from in [&talker, &friend] {
        like(&app, from, reader.user_id).await.data("like");
        let res = like(&app, &reader, from.user_id).await;
        conversations.push(res.data("like")["match"]["conversationId"].clone());
    }
    for i in 0..5 {
        app.send_message(&talker, &conversations[0], &format!("message {i}"))
            .await
            .data("sendMessage");
    }
    app.send_message(&friend, &conversations[1], "hello")
        .await
        .data("sendMessage");
    let unread = notices(&app, &reader, "MESSAGE", true).await;
    assert_eq!(unread.len(), 2, "{unread:?}");
    let about = |n: &Value| -> Value {
        serde_json::from_str::<Value>(n["data"].as_str().expect("data")).expect("json")
            ["conversationId"]
            .clone()
    };
    // The newest message's notice stands for the conversation.
    assert_eq!(about(&unread[0]), conversations[1]);
    assert_eq!(about(&unread[1]), conversations[0]);
    // Once read, a new message is told again; the read notice stays in the list.
    app.gql(
        reader.token(),
        "mutation($ids: [UUID!]!) { markNotificationsRead(ids: $ids) }",
        json!({ "ids": [unread[1]["id"]] }),
    )
    .await
    .data("markNotificationsRead");
    app.send_message(&talker, &conversations[0], "again")
        .await
        .data("sendMessage");
    assert_eq!(notices(&app, &reader, "MESSAGE", true).await.len(), 2);
    assert_eq!(notices(&app, &reader, "MESSAGE", false).await.len(), 3);
}
