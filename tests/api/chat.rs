//! Chat over `/ws` and GraphQL: delivery, acks, idempotency, resync, several devices, several
//! instances, read receipts, the end of a match, and every kind of bad frame.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::chat::{matched_pair, messages};
use crate::helpers::people::{BERLIN, act, dog_at, like};
use crate::helpers::{Backend, spawn_app, spawn_app_with};

async fn two_matched_users_chat_in_real_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let mut wa = app.ws(&a).await;
    let mut wb = app.ws(&b).await;

    let ack = wa
        .send_message(&conversation, "  Walk at the park?  ", "c-1")
        .await;
    assert_eq!(ack["type"], "message_ack", "{ack}");
    assert_eq!(ack["clientId"], "c-1");
    let sent = &ack["message"];
    assert_eq!(sent["content"], "Walk at the park?", "trimmed");
    assert_eq!(sent["senderId"], a.user_id.to_string());
    assert_eq!(sent["recipientId"], b.user_id.to_string());
    assert_eq!(sent["conversationId"], conversation);
    assert_eq!(sent["kind"], "TEXT");
    assert_eq!(sent["read"], false);

    let got = wb.recv_type("message").await;
    assert_eq!(
        got["message"], *sent,
        "the recipient gets the stored message"
    );
    let note = wb.recv_type("notification").await;
    assert_eq!(note["notification"]["kind"], "MESSAGE");
    assert!(
        !note["notification"]["body"]
            .as_str()
            .unwrap_or("")
            .contains("park"),
        "no message text in notifications"
    );

    // Typing reaches the other person only.
    wb.send(json!({ "type": "typing", "conversationId": conversation }))
        .await;
    let typing = wa.recv_type("typing").await;
    assert_eq!(typing["userId"], b.user_id.to_string());
    assert_eq!(typing["conversationId"], conversation);

    // The conversation list: last message and unread count, in one page.
    let list = app
        .gql(
            b.token(),
            "{ conversations { edges { cursor node { id matchId unreadCount otherUser { userId name } lastMessage { content senderId } } } pageInfo { hasNextPage } } }",
            json!({}),
        )
        .await;
    let node = &list.data("conversations")["edges"][0]["node"];
    assert_eq!(node["id"], conversation);
    assert_eq!(node["unreadCount"], 1);
    assert_eq!(node["otherUser"]["userId"], a.user_id.to_string());
    assert_eq!(node["lastMessage"]["content"], "Walk at the park?");

    // Reading: the sender gets a read receipt, the count drops.
    let message_id = sent["id"].as_str().expect("id").to_string();
    wb.send(json!({ "type": "mark_read", "conversationId": conversation, "upTo": message_id }))
        .await;
    let read = wa.recv_type("read").await;
    assert_eq!(read["userId"], b.user_id.to_string());
    assert_eq!(read["upTo"], message_id);
    let one = app
        .gql(
            b.token(),
            "query($c: UUID!) { conversation(id: $c) { unreadCount lastMessage { read } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(one.data("conversation")["unreadCount"], 0);
    assert_eq!(one.data("conversation")["lastMessage"]["read"], true);

    // GraphQL sending reaches the socket too.
    let res = app
        .gql(b.token(), "mutation($c: UUID!) { sendMessage(conversationId: $c, content: \"Yes!\", clientId: \"g-1\") { id content clientId } }", json!({ "c": conversation }))
        .await;
    assert_eq!(res.data("sendMessage")["content"], "Yes!");
    let pushed = wa.recv_type("message").await;
    assert_eq!(pushed["message"]["content"], "Yes!");
    let all = messages(&app, &a, &conversation).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["content"], "Yes!", "newest first");
    let marked = app
        .gql(
            a.token(),
            "mutation($c: UUID!) { markConversationRead(conversationId: $c) }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(marked.data("markConversationRead"), 1);
}

async fn the_same_client_id_is_stored_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let mut wa = app.ws(&a).await;
    let mut wb = app.ws(&b).await;
    let first = wa.send_message(&conversation, "hello", "same").await;
    let second = wa.send_message(&conversation, "hello again", "same").await;
    assert_eq!(first["type"], "message_ack");
    assert_eq!(
        second["message"], first["message"],
        "the resend is acked with the stored message"
    );
    wb.recv_type("message").await;
    wb.expect_no("message", Duration::from_millis(400)).await;
    assert_eq!(app.count("messages").await, 1);
}

async fn a_client_that_drops_resyncs_without_gaps_or_duplicates(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let mut wa = app.ws(&a).await;
    let mut wb = app.ws(&b).await;
    wa.send_message(&conversation, "one", "r-1").await;
    let seen = wb.recv_type("message").await["message"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    wb.close().await;

    for (i, text) in ["two", "three", "four"].iter().enumerate() {
        let ack = wa
            .send_message(&conversation, text, &format!("r-{}", i + 2))
            .await;
        assert_eq!(ack["type"], "message_ack");
    }
    let mut wb = app.ws(&b).await;
    wb.send(json!({ "type": "resync", "since": seen })).await;
    let mut got = Vec::new();
    loop {
        let frame = wb.recv().await;
        match frame["type"].as_str() {
            Some("message") => got.push(
                frame["message"]["content"]
                    .as_str()
                    .expect("text")
                    .to_string(),
            ),
            Some("resync_done") => break,
            _ => {}
        }
    }
    assert_eq!(
        got,
        ["two", "three", "four"],
        "everything missed, in order, once"
    );

    // Without a starting point: all recent messages.
    wb.send(json!({ "type": "resync", "since": null })).await;
    let mut all = 0;
    loop {
        let frame = wb.recv().await;
        match frame["type"].as_str() {
            Some("message") => all += 1,
            Some("resync_done") => break,
            _ => {}
        }
    }
    assert_eq!(all, 4);
}

/// A reconnecting client asks for what it missed; a message that arrives live on the new socket
/// before that resync is answered (the client had not read it yet) is not sent again by it.
async fn a_message_delivered_live_as_a_resync_is_asked_for_arrives_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let mut wa = app.ws(&a).await;
    let seen = wa.send_message(&conversation, "one", "l-1").await["message"]["id"]
        .as_str()
        .expect("id")
        .to_string();

    // B comes back: a new socket, nothing read from it yet.
    let mut wb = app.ws(&b).await;
    // A second socket of B's shows when the live delivery has reached B's sockets.
    let mut witness = app.ws(&b).await;
    let ack = wa.send_message(&conversation, "two", "l-2").await;
    assert_eq!(ack["type"], "message_ack");
    witness.recv_type("message").await;

    wb.send(json!({ "type": "resync", "since": seen })).await;
    let mut got = Vec::new();
    loop {
        let frame = wb.recv().await;
        match frame["type"].as_str() {
            Some("message") => got.push(frame["message"]["content"].clone()),
            Some("resync_done") => break,
            _ => {}
        }
    }
    wb.expect_no("message", Duration::from_millis(300)).await;
    assert_eq!(got, [json!("two")], "live or by resync, once");
}

async fn every_device_of_a_user_gets_every_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let mut phone = app.ws(&a).await;
    let mut tablet = app.ws(&a).await;
    let mut wb = app.ws(&b).await;
    let ack = phone
        .send_message(&conversation, "from my phone", "d-1")
        .await;
    assert_eq!(ack["type"], "message_ack");
    let on_tablet = tablet.recv_type("message").await;
    assert_eq!(on_tablet["message"], ack["message"]);
    wb.recv_type("message").await;
    // The sending socket got the ack, not a second copy.
    phone.expect_no("message", Duration::from_millis(400)).await;
}

async fn sockets_authenticate_by_header_or_first_frame(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.new_user().await;
    // First frame.
    let mut ws = app.ws_raw(None, None).await;
    ws.send(json!({ "type": "auth", "token": user.access_token }))
        .await;
    assert_eq!(ws.recv().await["type"], "ready");
    ws.assert_alive().await;

    // A bad token: error, then close 4401.
    let mut bad = app.ws_raw(Some("not-a-token"), None).await;
    let err = bad.recv().await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["code"], "UNAUTHENTICATED");
    assert_eq!(bad.recv().await["closed"], 4401);

    // Anything but `auth` first.
    let mut rude = app.ws_raw(None, None).await;
    rude.send(json!({ "type": "ping" })).await;
    assert_eq!(rude.recv().await["code"], "UNAUTHENTICATED");
    assert_eq!(rude.recv().await["closed"], 4401);

    // A token of an ended session.
    let logout = app
        .gql(
            None,
            "mutation($r: String!) { logout(refreshToken: $r) }",
            json!({ "r": user.refresh_token }),
        )
        .await;
    assert_eq!(logout.data("logout"), true);
    let mut ended = app.ws_raw(Some(&user.access_token), None).await;
    assert_eq!(ended.recv().await["code"], "UNAUTHENTICATED");
}

async fn foreign_origins_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.allowed_origins = Some(vec!["https://app.pupmatch.example".into()]);
    })
    .await;
    let user = app.new_user().await;
    assert!(
        app.try_ws_raw(Some(&user.access_token), Some("https://evil.example"))
            .await
            .is_err()
    );
    let mut ok = app
        .ws_raw(
            Some(&user.access_token),
            Some("https://app.pupmatch.example"),
        )
        .await;
    assert_eq!(ok.recv().await["type"], "ready");
    // Native clients send no Origin.
    let mut native = app.ws_raw(Some(&user.access_token), None).await;
    assert_eq!(native.recv().await["type"], "ready");
}

async fn bad_frames_get_errors_and_change_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.rate_limits.message_per_min = 5).await;
    let (a, b, conversation) = matched_pair(&app).await;
    // Someone else's conversation.
    let (c, _d, other_conversation) = matched_pair(&app).await;
    let _ = c;
    let mut ws = app.ws(&a).await;

    let expect_error = |frame: Value, code: &str| {
        assert_eq!(frame["type"], "error", "{frame}");
        assert_eq!(frame["code"], code, "{frame}");
    };
    ws.send_text("{not json".into()).await;
    expect_error(ws.recv_type("error").await, "BAD_USER_INPUT");
    ws.send(json!({ "type": "dance" })).await;
    expect_error(ws.recv_type("error").await, "BAD_USER_INPUT");
    ws.send(json!({ "type": "send_message", "conversationId": conversation, "content": "x".repeat(17 * 1024), "clientId": "big" })).await;
    let big = ws.recv_type("error").await;
    expect_error(big.clone(), "BAD_USER_INPUT");
    assert!(
        big["message"].as_str().unwrap_or("").contains("16 KiB"),
        "{big}"
    );
    let empty = ws.send_message(&conversation, "   ", "empty").await;
    expect_error(empty.clone(), "BAD_USER_INPUT");
    assert_eq!(empty["clientId"], "empty");
    expect_error(
        ws.send_message(&conversation, &"a".repeat(2001), "long")
            .await,
        "BAD_USER_INPUT",
    );
    expect_error(
        ws.send_message(&other_conversation, "hi", "theirs").await,
        "NOT_FOUND",
    );
    expect_error(
        ws.send_message(&Uuid::now_v7().to_string(), "hi", "nowhere")
            .await,
        "NOT_FOUND",
    );
    ws.send(json!({ "type": "send_message", "conversationId": conversation, "content": "forged", "clientId": "f", "senderId": b.user_id })).await;
    expect_error(ws.recv_type("error").await, "FORBIDDEN");
    ws.send(json!({ "type": "send_message", "conversationId": "not-a-uuid", "content": "x" }))
        .await;
    expect_error(ws.recv_type("error").await, "BAD_USER_INPUT");
    assert_eq!(
        app.count("messages").await,
        0,
        "nothing stored for refused frames"
    );
    ws.assert_alive().await;

    // A flood: the budget is 5 a minute.
    let mut limited = 0;
    for i in 0..8 {
        let frame = ws
            .send_message(&conversation, "woof", &format!("flood-{i}"))
            .await;
        if frame["type"] == "error" {
            assert_eq!(frame["code"], "RATE_LIMITED");
            // With how long to wait, as GraphQL's `retryAfter`.
            assert!(
                frame["retryAfter"].as_u64().is_some_and(|s| s >= 1),
                "{frame}"
            );
            limited += 1;
        }
    }
    assert!(limited >= 3, "{limited} refused");
    assert_eq!(app.count("messages").await, 8 - limited);
    ws.assert_alive().await;
}

/// After unmatch neither can write, and both sockets hear of it.
async fn unmatch_ends_the_conversation_for_both(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let mut wa = app.ws(&a).await;
    let mut wb = app.ws(&b).await;
    wa.send_message(&conversation, "bye?", "u-1").await;
    let matches = app
        .gql(
            a.token(),
            "{ matches { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let match_id = matches.data("matches")["edges"][0]["node"]["id"].clone();
    let res = app.unmatch(&a, &match_id).await;
    assert_eq!(res.data("unmatch"), true);
    for ws in [&mut wa, &mut wb] {
        let frame = ws.recv_type("unmatched").await;
        assert_eq!(frame["matchId"], match_id);
        assert_eq!(frame["conversationId"], conversation);
    }
    assert_eq!(
        wa.send_message(&conversation, "hello?", "u-2").await["code"],
        "NOT_FOUND"
    );
    assert_eq!(
        wb.send_message(&conversation, "hello?", "u-3").await["code"],
        "NOT_FOUND"
    );
    let list = app
        .gql(
            b.token(),
            "{ conversations { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(list.data("conversations")["edges"], json!([]));
}

async fn block_ends_the_conversation_for_both(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let mut wa = app.ws(&a).await;
    let mut wb = app.ws(&b).await;
    act(&app, &b, "block", a.user_id).await.data("block");
    wa.recv_type("unmatched").await;
    wb.recv_type("unmatched").await;
    assert_eq!(
        wa.send_message(&conversation, "why", "b-1").await["code"],
        "NOT_FOUND"
    );
    let res = app.send_message(&b, &conversation, "x").await;
    assert_eq!(res.error_code(), "NOT_FOUND");
}

async fn delete_conversation_hides_history_from_one_side(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let mut wa = app.ws(&a).await;
    wa.send_message(&conversation, "old news", "h-1").await;
    let res = app
        .gql(
            b.token(),
            "mutation($c: UUID!) { deleteConversation(conversationId: $c) }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(res.data("deleteConversation"), true);
    assert!(messages(&app, &b, &conversation).await.is_empty());
    assert_eq!(
        messages(&app, &a, &conversation).await.len(),
        1,
        "the other side keeps theirs"
    );
    wa.send_message(&conversation, "new", "h-2").await;
    let seen: Vec<Value> = messages(&app, &b, &conversation).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["content"], "new");
    let stranger = app.new_user().await;
    let res = app
        .gql(
            stranger.token(),
            "mutation($c: UUID!) { deleteConversation(conversationId: $c) }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(res.error_code(), "NOT_FOUND");
}

async fn conversations_page_by_last_activity(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Max", BERLIN).await;
    let mut conversations = Vec::new();
    for i in 0..5 {
        let other = dog_at(&app, &format!("Dog{i}"), BERLIN).await;
        like(&app, &me, other.user_id).await.data("like");
        let res = like(&app, &other, me.user_id).await;
        conversations.push(
            res.data("like")["match"]["conversationId"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    // Activity in the second one moves it to the top.
    let res = app.send_message(&me, &conversations[1], "hi").await;
    res.data("sendMessage");
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = app
            .gql(me.token(), "query($a: String) { conversations(first: 2, after: $a) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }", json!({ "a": after }))
            .await;
        let conn = page.data("conversations");
        for e in conn["edges"].as_array().expect("edges") {
            seen.push(e["node"]["id"].as_str().expect("id").to_string());
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].as_str().map(String::from);
    }
    assert_eq!(seen.len(), 5, "no gaps or duplicates: {seen:?}");
    assert_eq!(seen[0], conversations[1]);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5);
    let bad = app
        .gql(
            me.token(),
            "{ conversations(after: \"zzz\") { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(bad.error_code(), "BAD_USER_INPUT");
}

crate::both_backends!(
    two_matched_users_chat_in_real_time,
    the_same_client_id_is_stored_once,
    a_client_that_drops_resyncs_without_gaps_or_duplicates,
    a_message_delivered_live_as_a_resync_is_asked_for_arrives_once,
    every_device_of_a_user_gets_every_message,
    sockets_authenticate_by_header_or_first_frame,
    foreign_origins_are_refused,
    bad_frames_get_errors_and_change_nothing,
    unmatch_ends_the_conversation_for_both,
    block_ends_the_conversation_for_both,
    delete_conversation_hides_history_from_one_side,
    conversations_page_by_last_activity,
);

/// Two instances on one Redis: the two people on different instances still chat live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_crosses_instances_postgres() {
    let one = spawn_app(Backend::Postgres).await;
    let two = one.spawn_sibling().await;
    let (a, b, conversation) = matched_pair(&one).await;
    let mut wa = one.ws(&a).await;
    let mut wb = two.ws(&b).await;
    let ack = wa
        .send_message(&conversation, "across the cluster", "x-1")
        .await;
    assert_eq!(ack["type"], "message_ack");
    assert_eq!(wb.recv_type("message").await["message"], ack["message"]);
    wb.send(json!({ "type": "typing", "conversationId": conversation }))
        .await;
    assert_eq!(
        wa.recv_type("typing").await["userId"],
        b.user_id.to_string()
    );
    // A new match made on one instance reaches a socket on the other.
    let c = dog_at(&one, "Luna", BERLIN).await;
    like(&one, &c, b.user_id).await.data("like");
    like(&two, &b, c.user_id).await.data("like");
    let frame = wb.recv_type("match").await;
    assert_eq!(frame["match"]["userId"], c.user_id.to_string());
    // So does a like: the instance that stores it sees b online on the other one.
    let d = dog_at(&one, "Bolt", BERLIN).await;
    like(&one, &d, b.user_id).await.data("like");
    loop {
        let note = wb.recv_type("notification").await;
        if note["notification"]["kind"] == "LIKE" {
            break;
        }
    }
}

/// A message is accepted exactly when its sender is one of the two matched people
/// of the conversation; everything else is refused and stores nothing.
fn only_matched_users_exchange_messages(backend: Backend) {
    use proptest::prelude::*;
    let rt = crate::helpers::runtime();
    let (app, people, conversations) = rt.block_on(async {
        let app = spawn_app(backend).await;
        let (a, b, ab) = matched_pair(&app).await;
        let (c, d, cd) = matched_pair(&app).await;
        let outsider = dog_at(&app, "Solo", BERLIN).await;
        // c also liked a, unanswered: a like is not a match.
        like(&app, &c, a.user_id).await.data("like");
        let people = vec![a, b, c, d, outsider];
        let conversations = vec![(ab, [0usize, 1usize]), (cd, [2, 3])];
        (app, people, conversations)
    });
    let stored = std::sync::atomic::AtomicI64::new(0);
    proptest!(ProptestConfig { cases: 100, ..ProptestConfig::default() }, |(sender in 0usize..5, conv in 0usize..2)| {
        rt.block_on(async {
            let (id, members) = &conversations[conv];
            let res = app
                .send_message(&people[sender], &id, "woof")
                .await;
            if members.contains(&sender) {
                res.data("sendMessage");
                stored.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            } else {
                prop_assert_eq!(res.error_code(), "NOT_FOUND");
            }
            prop_assert_eq!(app.count("messages").await, stored.load(std::sync::atomic::Ordering::SeqCst));
            Ok(())
        })?;
    });
}

both_backends!(blocking: only_matched_users_exchange_messages);
async fn mark_messages_read_counts_only_received_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let mut wa = app.ws(&a).await;
    let one = wa.send_message(&conversation, "one", "m-1").await["message"]["id"].clone();
    let two = wa.send_message(&conversation, "two", "m-2").await["message"]["id"].clone();
    let q = "mutation($ids: [UUID!]!) { markMessagesRead(messageIds: $ids) }";
    // The sender cannot mark their own messages read.
    assert_eq!(
        app.gql(a.token(), q, json!({ "ids": [one, two] }))
            .await
            .data("markMessagesRead"),
        0
    );
    assert_eq!(
        app.gql(b.token(), q, json!({ "ids": [one] }))
            .await
            .data("markMessagesRead"),
        1
    );
    let read = wa.recv_type("read").await;
    assert_eq!(read["upTo"], one);
    assert_eq!(
        app.gql(b.token(), q, json!({ "ids": [one, two] }))
            .await
            .data("markMessagesRead"),
        1
    );
}

crate::both_backends!(mark_messages_read_counts_only_received_messages);

/// An id from a clock ahead of this instance's (another instance's, say) is already in the
/// stream: the next message still gets a larger id, so resync from it misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ids_stay_increasing_when_a_clock_ran_ahead_postgres() {
    let app = spawn_app(Backend::Postgres).await;
    let (a, b, conversation) = matched_pair(&app).await;
    let ahead = uuid::Builder::from_unix_timestamp_millis(
        u64::try_from(chrono::Utc::now().timestamp_millis() + 3_600_000).expect("positive"),
        &[7; 10],
    )
    .into_uuid();
    let conversation_id: Uuid = conversation.parse().expect("uuid");
    let pupmatch::infra::db::Db::Postgres(pool) = &app.db else {
        unreachable!()
    };
    sqlx::query(
        "INSERT INTO messages (id, conversation_id, sender_id, recipient_id, content, created_at)
         VALUES ($1, $2, $3, $4, 'from the future', now())",
    )
    .bind(ahead)
    .bind(conversation_id)
    .bind(b.user_id)
    .bind(a.user_id)
    .execute(pool)
    .await
    .expect("insert");
    let mut wa = app.ws(&a).await;
    let ack = wa.send_message(&conversation, "after it", "late-1").await;
    let id: Uuid = ack["message"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    assert!(id > ahead, "{id} must sort after {ahead}");
    wa.send(json!({ "type": "resync", "since": ahead })).await;
    assert_eq!(
        wa.recv_type("message").await["message"]["content"],
        "after it"
    );
    wa.recv_type("resync_done").await;
}
