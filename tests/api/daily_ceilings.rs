//! Daily ceilings besides the per-minute limits: a spammer's likes and first messages run out
//! for the day, whatever their pace.

use serde_json::json;

use crate::both_backends;
use crate::helpers::people::{BERLIN, dog_at, like, north_of};
use crate::helpers::{Backend, GqlResponse, Session, TestApp, spawn_app_with};

both_backends!(
    likes_have_a_daily_ceiling,
    first_messages_have_a_daily_ceiling
);

async fn likes_have_a_daily_ceiling(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.likes_per_day = 3).await;
    let spammer = dog_at(&app, "Spammer", BERLIN).await;
    let mut liked = Vec::new();
    for i in 0..4 {
        let target = dog_at(
            &app,
            &format!("Dog {i}"),
            north_of(BERLIN, 1.0 + f64::from(i)),
        )
        .await;
        let res = like(&app, &spammer, target.user_id).await;
        if i < 3 {
            res.data("like");
            liked.push(target);
        } else {
            assert_eq!(res.error_code(), "RATE_LIMITED", "{}", res.body);
            // Nothing was stored: the fourth person has no like to answer.
            let count = app
                .gql(target.token(), "{ likesReceivedCount }", json!({}))
                .await;
            assert_eq!(*count.data("likesReceivedCount"), json!(0));
        }
    }
    assert_eq!(app.count("likes").await, 3);
}

async fn send(app: &TestApp, from: &Session, conversation: &str, text: &str) -> GqlResponse {
    app.gql(
        from.token(),
        "mutation($c: UUID!, $t: String!) { sendMessage(conversationId: $c, content: $t) { id } }",
        json!({ "c": conversation, "t": text }),
    )
    .await
}

async fn first_messages_have_a_daily_ceiling(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.first_messages_per_day = 2).await;
    let spammer = dog_at(&app, "Spammer", BERLIN).await;
    let mut conversations = Vec::new();
    for i in 0..3 {
        let other = dog_at(
            &app,
            &format!("Dog {i}"),
            north_of(BERLIN, 1.0 + f64::from(i)),
        )
        .await;
        like(&app, &other, spammer.user_id).await.data("like");
        let res = like(&app, &spammer, other.user_id).await;
        let id = res.data("like")["match"]["conversationId"]
            .as_str()
            .expect("conversation")
            .to_string();
        conversations.push((other, id));
    }
    send(&app, &spammer, &conversations[0].1, "hi")
        .await
        .data("sendMessage");
    send(&app, &spammer, &conversations[1].1, "hi")
        .await
        .data("sendMessage");
    let third = send(&app, &spammer, &conversations[2].1, "hi").await;
    assert_eq!(third.error_code(), "RATE_LIMITED", "{}", third.body);
    assert_eq!(app.count("messages").await, 2);
    // Conversations already started go on; and the other person can always write first.
    for _ in 0..3 {
        send(&app, &spammer, &conversations[0].1, "more")
            .await
            .data("sendMessage");
    }
    let (other, id) = &conversations[2];
    send(&app, other, id, "hello?").await.data("sendMessage");
}
