//! Matched pairs and their messages.

use serde_json::{Value, json};

use crate::helpers::people::{BERLIN, dog_at, like};
use crate::helpers::{Session, TestApp};

/// Two dogs who matched, and their conversation.
pub async fn matched_pair(app: &TestApp) -> (Session, Session, String) {
    let a = dog_at(app, "Rex", BERLIN).await;
    let b = dog_at(app, "Bella", BERLIN).await;
    like(app, &a, b.user_id).await.data("like");
    let res = like(app, &b, a.user_id).await;
    let conversation = res.data("like")["match"]["conversationId"]
        .as_str()
        .expect("conversation id")
        .to_string();
    (a, b, conversation)
}

pub async fn messages(app: &TestApp, user: &Session, conversation: &str) -> Vec<Value> {
    let res = app
        .gql(
            user.token(),
            "query($c: UUID!) { messages(conversationId: $c, first: 100) { edges { node { id content senderId recipientId clientId read kind } } } }",
            json!({ "c": conversation }),
        )
        .await;
    res.data("messages")["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}
