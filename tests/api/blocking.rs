//! A block is total: in either direction, each person stops existing for the other on every
//! path that returns or acts on a person. Each test performs one path as the blocked person
//! (and as the blocker) would.

use std::time::Duration;

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::chat::matched_pair;
use crate::helpers::people::profile_query;
use crate::helpers::people::{BERLIN, act, all_recs, dog_at, like, north_of};
use crate::helpers::{Backend, Session, TestApp, spawn_app};

both_backends!(
    a_blocked_person_cannot_open_the_blockers_profile,
    a_block_hides_a_profile_already_cached_on_every_instance,
    undo_pass_never_hands_back_a_blocker,
    passing_on_a_blocker_finds_no_one,
    liking_a_blocker_finds_no_one_and_stores_nothing,
    recommendations_never_show_a_blocker,
    matches_and_conversations_forget_the_other_person,
    notifications_forget_the_other_person,
    messages_sent_as_the_block_lands_leave_no_notification,
    sharing_a_place_with_a_blocker_finds_no_conversation,
    sockets_carry_nothing_between_blocked_people,
);

/// Two dogs near each other; in the second of each returned pair, the first is blocked by the
/// other — once each way, so every test covers both directions.
async fn blocked_pairs(app: &TestApp) -> Vec<(Session, Session)> {
    let mut pairs = Vec::new();
    for who_blocks in [0, 1] {
        let a = dog_at(app, "Rex", BERLIN).await;
        let b = dog_at(app, "Bella", north_of(BERLIN, 1.0)).await;
        pairs.push((a, b, who_blocks));
    }
    let mut out = Vec::new();
    for (a, b, who_blocks) in pairs {
        // `seer` is the one who tries to reach `hidden`; the block goes one way or the other.
        if who_blocks == 0 {
            act(app, &b, "block", a.user_id).await.data("block");
        } else {
            act(app, &a, "block", b.user_id).await.data("block");
        }
        out.push((a, b));
    }
    out
}

async fn a_blocked_person_cannot_open_the_blockers_profile(backend: Backend) {
    let app = spawn_app(backend).await;
    for (a, b) in blocked_pairs(&app).await {
        for (seer, hidden) in [(&a, &b), (&b, &a)] {
            let res = profile_query(&app, seer, hidden).await;
            assert_eq!(res.error_code(), "NOT_FOUND");
            assert!(!res.body.to_string().contains("Bella\""), "{}", res.body);
        }
    }
}

/// Profiles and blocks are cached: the viewer opened the profile on both instances before the
/// block, and the block still hides it at once where it was made and within moments on the
/// other instance; lifting it shows the profile again.
async fn a_block_hides_a_profile_already_cached_on_every_instance(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = match backend {
        // Embedded mode is one process.
        Backend::Sqlite => None,
        Backend::Postgres => Some(app.spawn_sibling().await),
    };
    let instances: Vec<&TestApp> = std::iter::once(&app).chain(other.as_ref()).collect();
    let rex = dog_at(&app, "Rex", BERLIN).await;
    let bella = dog_at(&app, "Bella", north_of(BERLIN, 1.0)).await;
    for instance in &instances {
        profile_query(instance, &bella, &rex).await.data("profile");
    }
    act(&app, &rex, "block", bella.user_id).await.data("block");
    assert_eq!(
        profile_query(&app, &bella, &rex).await.error_code(),
        "NOT_FOUND"
    );
    for instance in &instances {
        eventually_code(instance, &bella, &rex, "NOT_FOUND").await;
    }
    let lifted = act(&app, &rex, "unblock", bella.user_id).await;
    lifted.data("unblock");
    for instance in &instances {
        eventually_code(instance, &bella, &rex, "").await;
    }
}

/// Waits (up to 2 s: the other instances hear of a change over Redis) until `viewer`'s view of
/// `whom`'s profile answers with `code` ("" for no error).
async fn eventually_code(app: &TestApp, viewer: &Session, whom: &Session, code: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let res = profile_query(app, viewer, whom).await;
        let got = if res.errors().is_empty() {
            ""
        } else {
            res.error_code()
        };
        if got == code {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {got:?}: {}",
            res.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The attack that started it: pass on the person who blocked you, then undo the pass to have
/// their profile handed back.
async fn undo_pass_never_hands_back_a_blocker(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    let earlier = dog_at(&app, "Earlier", north_of(BERLIN, 2.0)).await;
    let blocker = dog_at(&app, "Blocker", north_of(BERLIN, 1.0)).await;
    act(&app, &me, "pass", earlier.user_id).await.data("pass");
    act(&app, &me, "pass", blocker.user_id).await.data("pass");
    act(&app, &blocker, "block", me.user_id).await.data("block");
    let undo = "mutation { undoPass { userId name photos { url } } }";
    let res = app.gql(me.token(), undo, json!({})).await;
    assert_eq!(
        res.data("undoPass")["userId"],
        earlier.user_id.to_string(),
        "the pass on the blocker is skipped"
    );
    let res = app.gql(me.token(), undo, json!({})).await;
    assert!(res.errors().is_empty(), "{}", res.body);
    assert!(res.body["data"]["undoPass"].is_null(), "{}", res.body);
    assert!(!res.body.to_string().contains(&blocker.user_id.to_string()));

    // The blocker's own undo of a pass on the person they blocked returns nothing either.
    let other = dog_at(&app, "Other", BERLIN).await;
    act(&app, &other, "pass", me.user_id).await.data("pass");
    act(&app, &other, "block", me.user_id).await.data("block");
    let res = app.gql(other.token(), undo, json!({})).await;
    assert!(res.body["data"]["undoPass"].is_null(), "{}", res.body);
}

async fn passing_on_a_blocker_finds_no_one(backend: Backend) {
    let app = spawn_app(backend).await;
    for (a, b) in blocked_pairs(&app).await {
        for (seer, hidden) in [(&a, &b), (&b, &a)] {
            let res = act(&app, seer, "pass", hidden.user_id).await;
            assert_eq!(res.error_code(), "NOT_FOUND");
        }
    }
    assert_eq!(app.count("passes").await, 0, "nothing stored");
}

async fn liking_a_blocker_finds_no_one_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for (a, b) in blocked_pairs(&app).await {
        for (seer, hidden) in [(&a, &b), (&b, &a)] {
            let res = like(&app, seer, hidden.user_id).await;
            assert_eq!(res.error_code(), "NOT_FOUND");
        }
    }
    assert_eq!(app.count("likes").await, 0);
    assert_eq!(app.count("notifications").await, 0);
}

async fn recommendations_never_show_a_blocker(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = dog_at(&app, "Me", BERLIN).await;
    let blocker = dog_at(&app, "Blocker", north_of(BERLIN, 1.0)).await;
    let blocked = dog_at(&app, "Blocked", north_of(BERLIN, 2.0)).await;
    // Both are in my (now cached) list, and I am in theirs.
    assert_eq!(all_recs(&app, &me).await.len(), 2);
    assert!(all_recs(&app, &blocker).await.contains(&me.user_id));
    act(&app, &blocker, "block", me.user_id).await.data("block");
    act(&app, &me, "block", blocked.user_id).await.data("block");
    assert!(all_recs(&app, &me).await.is_empty());
    for them in [&blocker, &blocked] {
        assert!(!all_recs(&app, them).await.contains(&me.user_id));
    }
}

async fn matches_and_conversations_forget_the_other_person(backend: Backend) {
    let app = spawn_app(backend).await;
    for who_blocks in [0, 1] {
        let (a, b, _conversation) = matched_pair(&app).await;
        let (blocker, blocked) = if who_blocks == 0 { (&a, &b) } else { (&b, &a) };
        act(&app, blocker, "block", blocked.user_id)
            .await
            .data("block");
        for (seer, hidden) in [(&a, &b), (&b, &a)] {
            let res = app
                .gql(
                    seer.token(),
                    "{ matches { edges { node { id profile { userId } } } }
                       conversations { edges { node { id otherUser { userId } } } } }",
                    json!({}),
                )
                .await;
            assert!(res.errors().is_empty(), "{}", res.body);
            assert_eq!(res.body["data"]["matches"]["edges"], json!([]));
            assert_eq!(res.body["data"]["conversations"]["edges"], json!([]));
            assert!(!res.body.to_string().contains(&hidden.user_id.to_string()));
        }
    }
}

/// Notifications about the other person (the match, their messages) name them: after a block
/// they are gone from both inboxes.
async fn notifications_forget_the_other_person(backend: Backend) {
    let app = spawn_app(backend).await;
    for who_blocks in [0, 1] {
        let (a, b, conversation) = matched_pair(&app).await;
        for (from, to) in [(&a, &b), (&b, &a)] {
            app.send_message(from, &conversation, "woof")
                .await
                .data("sendMessage");
            let _ = to;
        }
        let (blocker, blocked) = if who_blocks == 0 { (&a, &b) } else { (&b, &a) };
        assert!(
            crate::helpers::inbox::inbox(&app, blocker, false)
                .await
                .iter()
                .any(|n| mentions(n, blocked)),
            "before the block, the inbox names them"
        );
        act(&app, blocker, "block", blocked.user_id)
            .await
            .data("block");
        for (seer, hidden) in [(&a, &b), (&b, &a)] {
            let notes = crate::helpers::inbox::inbox(&app, seer, false).await;
            assert!(
                !notes.iter().any(|n| mentions(n, hidden)),
                "{notes:?} mentions {}",
                hidden.user_id
            );
        }
    }
}

/// The race: messages sent while the recipient blocks the sender. A message stored just before
/// the block must not have its notification land just after it, in the blocker's inbox.
async fn messages_sent_as_the_block_lands_leave_no_notification(backend: Backend) {
    let app = spawn_app(backend).await;
    for _ in 0..8 {
        let (sender, blocker, conversation) = matched_pair(&app).await;
        let texts: Vec<String> = (0..12).map(|i| format!("woof {i}")).collect();
        let sends = texts
            .iter()
            .map(|text| app.send_message(&sender, &conversation, text));
        let (answers, block) = tokio::join!(futures::future::join_all(sends), async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            act(&app, &blocker, "block", sender.user_id).await
        });
        block.data("block");
        let stored = answers.iter().filter(|a| a.errors().is_empty()).count();
        // Whatever the notifications still on their way do, they end after the block.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let notes = crate::helpers::inbox::inbox(&app, &blocker, false).await;
        assert!(
            !notes.iter().any(|n| mentions(n, &sender)),
            "{stored} of 12 messages stored; after the block the inbox holds {notes:?}"
        );
    }
}

/// Whether a notification names `who` or their conversation with the reader.
fn mentions(n: &Value, who: &Session) -> bool {
    let text = n.to_string();
    n["kind"] == "MATCH" || n["kind"] == "MESSAGE" || text.contains(&who.user_id.to_string())
}

async fn sharing_a_place_with_a_blocker_finds_no_conversation(backend: Backend) {
    let app = spawn_app(backend).await;
    for who_blocks in [0, 1] {
        let (a, b, conversation) = matched_pair(&app).await;
        let park = app
            .gql(
                a.token(),
                "mutation($i: PlaygroundInput!) { addPlayground(input: $i) { id } }",
                json!({ "i": { "name": format!("Park {who_blocks}"), "description": "", "latitude": 52.5, "longitude": 13.4 } }),
            )
            .await
            .data("addPlayground")["id"]
            .clone();
        let (blocker, blocked) = if who_blocks == 0 { (&a, &b) } else { (&b, &a) };
        act(&app, blocker, "block", blocked.user_id)
            .await
            .data("block");
        for sender in [&a, &b] {
            let res = app
                .gql(
                    sender.token(),
                    "mutation($c: UUID!, $p: UUID!) { sharePlayground(conversationId: $c, playgroundId: $p) { id } }",
                    json!({ "c": conversation, "p": park }),
                )
                .await;
            assert_eq!(res.error_code(), "NOT_FOUND");
        }
    }
    assert_eq!(app.count("messages").await, 0);
}

/// Open sockets on both sides: after the block, nothing one sends reaches the other — no
/// message, no typing, no read receipt — and each attempt is refused as NOT_FOUND.
async fn sockets_carry_nothing_between_blocked_people(backend: Backend) {
    let app = spawn_app(backend).await;
    for who_blocks in [0, 1] {
        let (a, b, conversation) = matched_pair(&app).await;
        let mut wa = app.ws(&a).await;
        let mut wb = app.ws(&b).await;
        let sent = wa.send_message(&conversation, "hi", "before").await;
        assert_eq!(sent["type"], "message_ack");
        wb.recv_type("message").await;
        let message_id = sent["message"]["id"].clone();
        let (blocker, blocked) = if who_blocks == 0 { (&a, &b) } else { (&b, &a) };
        act(&app, blocker, "block", blocked.user_id)
            .await
            .data("block");
        wa.recv_type("unmatched").await;
        wb.recv_type("unmatched").await;
        for turn in 0..2 {
            let (ws, other) = if turn == 0 {
                (&mut wa, &mut wb)
            } else {
                (&mut wb, &mut wa)
            };
            let res = ws
                .send_message(&conversation, "still there?", "after")
                .await;
            assert_eq!(res["code"], "NOT_FOUND", "{res}");
            ws.send(json!({ "type": "typing", "conversationId": conversation }))
                .await;
            assert_eq!(ws.recv_type("error").await["code"], "NOT_FOUND");
            ws.send(
                json!({ "type": "mark_read", "conversationId": conversation, "upTo": message_id }),
            )
            .await;
            assert_eq!(ws.recv_type("error").await["code"], "NOT_FOUND");
            for kind in ["message", "typing", "read"] {
                other.expect_no(kind, Duration::from_millis(100)).await;
            }
        }
        // A resync hands back nothing of the ended conversation.
        for ws in [&mut wa, &mut wb] {
            ws.send(json!({ "type": "resync", "since": null })).await;
            let frame = ws.recv().await;
            assert_eq!(frame["type"], "resync_done", "{frame}");
        }
    }
}
