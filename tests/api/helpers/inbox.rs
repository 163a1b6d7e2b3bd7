//! Notifications: the inbox, and registering a device for push.

use serde_json::{Value, json};

use crate::helpers::{Session, TestApp};

pub async fn inbox(app: &TestApp, user: &Session, unread_only: bool) -> Vec<Value> {
    let res = app
        .gql(
            user.token(),
            "query($u: Boolean) { notifications(first: 50, unreadOnly: $u) { edges { cursor node { id kind title body data read createdAt } } pageInfo { hasNextPage } } }",
            json!({ "u": unread_only }),
        )
        .await;
    res.data("notifications")["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

pub async fn register_device(app: &TestApp, user: &Session, token: &str) {
    let res = app
        .gql(
            user.token(),
            "mutation($t: String!) { registerDevice(token: $t, platform: ANDROID) }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(res.data("registerDevice"), true);
}
