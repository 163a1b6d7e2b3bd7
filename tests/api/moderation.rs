//! Moderation through the admin API (`/admin/graphql`), on both backends: roles only from the
//! command line or an admin, the case queue and its evidence, every action and what it does to
//! the person everywhere, automatic holds, the append-only audit log, and every way a
//! non-moderator could try to get in (403 each time).

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::both_backends;
use crate::helpers::chat::matched_pair;
use crate::helpers::people::profile_query;
use crate::helpers::people::{BERLIN, all_recs, dog_at, north_of};
use crate::helpers::process::{Alone, runs_alone_elsewhere};
use crate::helpers::staff::{admin_gql, grant, moderator};
use crate::helpers::{Backend, DEFAULT_PASSWORD, Session, TestApp, spawn_app, spawn_app_with};
use pupmatch::infra::db::Db;
use pupmatch::moderation::model::Role;

both_backends!(
    only_staff_reach_the_admin_api,
    only_staff_reach_the_console,
    roles_come_from_the_command_line_or_an_admin,
    the_queue_puts_the_most_reported_first_with_evidence,
    a_later_edit_cannot_hide_what_was_reported,
    dismissing_closes_the_case_and_lifts_a_hold,
    a_warning_reaches_the_person,
    a_removed_photo_leaves_the_profile,
    a_suspension_takes_the_person_out_everywhere_until_lifted,
    a_suspension_ends_by_itself,
    a_ban_refuses_the_email_for_a_new_account,
    many_reporters_hide_a_person_until_a_moderator_decides,
    actions_need_a_reason_and_change_nothing_without,
    the_audit_log_is_append_only_and_exports_as_csv,
);

/// Runs an admin mutation or query that must succeed; returns `data`.
async fn admin_ok(app: &TestApp, m: &Session, query: &str, variables: Value) -> Value {
    let (status, body) = admin_gql(app, m.token(), query, variables).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["errors"].is_null(), "{body}");
    body["data"].clone()
}

/// `name`, reported by `reporter_name` for `reason`: the person and the reporter.
async fn reported(
    app: &TestApp,
    name: &str,
    reporter_name: &str,
    reason: &str,
    details: &str,
) -> (Session, Session) {
    let person = dog_at(app, name, BERLIN).await;
    let reporter = dog_at(app, reporter_name, BERLIN).await;
    report(app, &reporter, person.user_id, reason, details).await;
    (person, reporter)
}

async fn report(app: &TestApp, by: &Session, whom: Uuid, reason: &str, details: &str) {
    let res = app.report(by, &whom, reason, Some(details)).await;
    assert_eq!(*res.data("report"), json!(true), "{}", res.body);
}

async fn cases(app: &TestApp, m: &Session) -> Vec<Value> {
    let data = admin_ok(
        app,
        m,
        "{ cases { personId name reports reporters reasons held firstReportedAt } }",
        json!({}),
    )
    .await;
    data["cases"].as_array().cloned().unwrap_or_default()
}

async fn case(app: &TestApp, m: &Session, person: Uuid) -> Value {
    admin_ok(
        app,
        m,
        "query($p: ID!) { case(personId: $p) {
            person { id email name bio photos { id url } suspendedUntil bannedAt }
            reports { id reporterId reason details status snapshotName snapshotBio snapshotPhotoUrls
                      messages { content } } } }",
        json!({ "p": person }),
    )
    .await["case"]
        .clone()
}

async fn act(app: &TestApp, m: &Session, op: &str, person: Uuid, extra: &str) -> (u16, Value) {
    admin_gql(
        app,
        m.token(),
        &format!("mutation($p: ID!) {{ {op}(personId: $p{extra}) }}"),
        json!({ "p": person }),
    )
    .await
}

async fn act_ok(app: &TestApp, m: &Session, op: &str, person: Uuid, extra: &str) {
    let (status, body) = act(app, m, op, person, extra).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][op], json!(true), "{body}");
}

async fn audit_count(app: &TestApp) -> i64 {
    app.count("moderation_actions").await
}

const EVERY_ADMIN_OPERATION: [&str; 13] = [
    "{ viewer { email } }",
    "{ cases { personId } }",
    "{ case(personId: \"00000000-0000-0000-0000-000000000000\") { person { id } } }",
    "{ auditLog { id } }",
    "{ staff { email } }",
    "mutation { dismiss(personId: \"00000000-0000-0000-0000-000000000000\", reason: \"x\") }",
    "mutation { warn(personId: \"00000000-0000-0000-0000-000000000000\", reason: \"x\") }",
    "mutation { removePhoto(personId: \"00000000-0000-0000-0000-000000000000\", photoId: \"00000000-0000-0000-0000-000000000000\", reason: \"x\") }",
    "mutation { suspend(personId: \"00000000-0000-0000-0000-000000000000\", days: 3, reason: \"x\") }",
    "mutation { ban(personId: \"00000000-0000-0000-0000-000000000000\", reason: \"x\") }",
    "mutation { lift(personId: \"00000000-0000-0000-0000-000000000000\", reason: \"x\") }",
    "mutation { grantRole(email: \"a@b.example\", role: ADMIN, reason: \"x\") }",
    "mutation { revokeRole(email: \"a@b.example\", reason: \"x\") }",
];

async fn only_staff_reach_the_admin_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let member = app.new_user().await;
    let before = audit_count(&app).await;
    for op in EVERY_ADMIN_OPERATION {
        for token in [None, Some("not-a-token"), member.token()] {
            let (status, body) = admin_gql(&app, token, op, json!({})).await;
            assert_eq!(status, 403, "{op} with {token:?}: {body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "FORBIDDEN",
                "{body}"
            );
        }
    }
    // The app's own schema has no admin field.
    let res = app
        .gql(member.token(), "{ cases { personId } }", json!({}))
        .await;
    assert!(!res.errors().is_empty());
    // A revoked moderator is a member again at once.
    let m = moderator(&app).await;
    admin_ok(&app, &m, "{ viewer { email role } }", json!({})).await;
    grant(&app, &m.email, Role::Member).await;
    let (status, _) = admin_gql(&app, m.token(), "{ cases { personId } }", json!({})).await;
    assert_eq!(status, 403);
    // A moderator is not an admin: roles stay out of reach.
    let m2 = moderator(&app).await;
    let (status, body) = admin_gql(
        &app,
        m2.token(),
        "mutation($e: String!) { grantRole(email: $e, role: ADMIN, reason: \"promote me\") }",
        json!({ "e": m2.email }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    assert_eq!(
        audit_count(&app).await,
        before + 3,
        "only the three command-line role changes were logged"
    );
}

/// The console's pages and forms, for no one, for a member and for a forged form.
async fn only_staff_reach_the_console(backend: Backend) {
    let app = spawn_app(backend).await;
    let member = app.new_user().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let person = Uuid::now_v7();
    let pages = [
        "/admin".to_string(),
        format!("/admin/cases/{person}"),
        "/admin/audit".into(),
        "/admin/audit.csv".into(),
        "/admin/staff".into(),
    ];
    for path in &pages {
        let res = client.get(app.url(path)).send().await.expect("get");
        assert_eq!(res.status(), 403, "{path}");
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .expect("csp");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(res.headers()["cache-control"], "no-store");
        // A stolen app cookie name with a made-up value gets nothing either.
        let res = client
            .get(app.url(path))
            .header("cookie", "pupmatch_console=made-up")
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), 403, "{path}");
    }
    for path in [
        format!("/admin/cases/{person}/actions"),
        "/admin/staff".into(),
        "/admin/logout".into(),
    ] {
        let res = client
            .post(app.url(&path))
            .form(&[
                ("csrf", "x"),
                ("action", "BAN"),
                ("reason", "x"),
                ("confirmed", "yes"),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), 403, "{path}");
    }
    // A member signing in is refused, and the session made for it ends.
    let res = client
        .post(app.url("/admin/login"))
        .form(&[
            ("email", member.email.as_str()),
            ("password", DEFAULT_PASSWORD),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("set-cookie").is_none());

    // A moderator's signed-in cookie with a forged CSRF token cannot act.
    let m = moderator(&app).await;
    let target = app.new_user().await;
    let res = client
        .post(app.url("/admin/login"))
        .form(&[("email", m.email.as_str()), ("password", DEFAULT_PASSWORD)])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().expect("pair").to_string();
    let res = client
        .get(app.url("/admin"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("queue");
    assert_eq!(res.status(), 200);
    let res = client
        .post(app.url(&format!("/admin/cases/{}/actions", target.user_id)))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", "forged"),
            ("action", "BAN"),
            ("reason", "x"),
            ("confirmed", "yes"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 403);
    let banned: i64 = app.count("banned_emails").await;
    assert_eq!(banned, 0, "nothing happened");
}

async fn roles_come_from_the_command_line_or_an_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.new_user().await;
    let someone = app.new_user().await;
    // The binary itself, on the same database.
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_pupmatch"))
        .args(["admin", "grant", &admin.email, "--role", "admin"])
        .env_clear()
        .env("PUPMATCH_DATABASE_URL", &app.config.database_url)
        .env("PUPMATCH_LOG", "warn")
        .status()
        .await
        .expect("runs");
    assert!(status.success());
    let data = admin_ok(&app, &admin, "{ viewer { role } }", json!({})).await;
    assert_eq!(data["viewer"]["role"], "ADMIN");
    // An admin grants and revokes in the API; each change is logged with its reason.
    admin_ok(
        &app,
        &admin,
        "mutation($e: String!) { grantRole(email: $e, role: MODERATOR, reason: \"new hire\") }",
        json!({ "e": someone.email }),
    )
    .await;
    let staff = admin_ok(&app, &admin, "{ staff { email role } }", json!({})).await;
    assert!(
        staff["staff"]
            .as_array()
            .expect("staff")
            .iter()
            .any(|s| s["email"] == json!(someone.email) && s["role"] == "MODERATOR"),
        "{staff}"
    );
    admin_ok(
        &app,
        &admin,
        "mutation($e: String!) { revokeRole(email: $e, reason: \"left the team\") }",
        json!({ "e": someone.email }),
    )
    .await;
    let (status, _) = admin_gql(&app, someone.token(), "{ cases { personId } }", json!({})).await;
    assert_eq!(status, 403);
    let log = admin_ok(
        &app,
        &admin,
        "{ auditLog { kind actorEmail subjectName reason detail } }",
        json!({}),
    )
    .await;
    let kinds: Vec<&str> = log["auditLog"]
        .as_array()
        .expect("log")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["REVOKE_ROLE", "GRANT_ROLE", "GRANT_ROLE"]);
    assert_eq!(log["auditLog"][2]["actorEmail"], "command line");
    assert_eq!(log["auditLog"][0]["reason"], "left the team");
    // An unknown email is a clear error and changes nothing.
    let (_, body) = admin_gql(
        &app,
        admin.token(),
        "mutation { grantRole(email: \"nobody@example.com\", role: MODERATOR, reason: \"x\") }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{body}"
    );
    assert_eq!(audit_count(&app).await, 3);
}

async fn the_queue_puts_the_most_reported_first_with_evidence(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    // The harasser matched with Bella and wrote to her; Bella wrote back.
    let (harasser, bella, conversation) = matched_pair(&app).await;
    app.send_message(&harasser, &conversation, "you are ugly")
        .await
        .data("sendMessage");
    app.send_message(&bella, &conversation, "please stop")
        .await
        .data("sendMessage");
    app.send_message(&harasser, &conversation, "make me")
        .await
        .data("sendMessage");
    // Someone else chats with the harasser too: a moderator never sees that.
    let other = dog_at(&app, "Other", BERLIN).await;
    crate::helpers::people::like(&app, &other, harasser.user_id).await;
    let res = crate::helpers::people::like(&app, &harasser, other.user_id).await;
    let private = res.data("like")["match"]["conversationId"]
        .as_str()
        .expect("conversation")
        .to_string();
    app.send_message(&harasser, &private, "a private note")
        .await
        .data("sendMessage");

    // An older case with one reporter, then the harasser with two.
    let spammer = dog_at(&app, "Spammer", BERLIN).await;
    let r0 = dog_at(&app, "R0", BERLIN).await;
    report(&app, &r0, spammer.user_id, "SPAM", "sells kibble").await;
    report(&app, &bella, harasser.user_id, "HARASSMENT", "insults").await;
    let r2 = dog_at(&app, "R2", BERLIN).await;
    report(&app, &r2, harasser.user_id, "HARASSMENT", "").await;

    let queue = cases(&app, &m).await;
    assert_eq!(queue.len(), 2, "{queue:?}");
    assert_eq!(queue[0]["personId"], json!(harasser.user_id));
    assert_eq!(queue[0]["reporters"], 2);
    assert_eq!(queue[0]["reasons"], json!(["HARASSMENT"]));
    assert_eq!(queue[1]["personId"], json!(spammer.user_id));

    let detail = case(&app, &m, harasser.user_id).await;
    let reports = detail["reports"].as_array().expect("reports");
    assert_eq!(reports.len(), 2);
    let from_bella = reports
        .iter()
        .find(|r| r["reporterId"] == json!(bella.user_id))
        .expect("bella's report");
    let said: Vec<&str> = from_bella["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].as_str().expect("text"))
        .collect();
    assert_eq!(said, ["you are ugly", "make me"], "only what they sent her");
    let text = detail.to_string();
    assert!(!text.contains("please stop"), "not what the reporter wrote");
    assert!(!text.contains("a private note"), "not other conversations");
    assert_eq!(detail["person"]["photos"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        from_bella["snapshotPhotoUrls"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(from_bella["snapshotName"], "Rex");
}

async fn a_later_edit_cannot_hide_what_was_reported(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let bad = dog_at(&app, "Nasty", BERLIN).await;
    app.gql(
        bad.token(),
        "mutation { updateProfile(input: { bio: \"call me for cheap puppies\" }) { id } }",
        json!({}),
    )
    .await
    .data("updateProfile");
    let reporter = dog_at(&app, "Victim", BERLIN).await;
    report(&app, &reporter, bad.user_id, "SCAM", "puppy scam").await;
    app.gql(
        bad.token(),
        "mutation { updateProfile(input: { name: \"Angel\", bio: \"just a good dog\" }) { id } }",
        json!({}),
    )
    .await
    .data("updateProfile");
    let detail = case(&app, &m, bad.user_id).await;
    assert_eq!(detail["person"]["name"], "Angel");
    assert_eq!(detail["reports"][0]["snapshotName"], "Nasty");
    assert_eq!(
        detail["reports"][0]["snapshotBio"],
        "call me for cheap puppies"
    );
}

async fn dismissing_closes_the_case_and_lifts_a_hold(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.moderation.hold_reporters = 1;
        c.moderation.reporter_min_age = Duration::ZERO;
    })
    .await;
    let m = moderator(&app).await;
    let person = dog_at(&app, "Innocent", BERLIN).await;
    let reporter = dog_at(&app, "Grumpy", BERLIN).await;
    let viewer = dog_at(&app, "Viewer", north_of(BERLIN, 1.0)).await;
    report(
        &app,
        &reporter,
        person.user_id,
        "OTHER",
        "I just don't like him",
    )
    .await;
    assert_eq!(cases(&app, &m).await[0]["held"], true);
    assert!(!all_recs(&app, &viewer).await.contains(&person.user_id));
    act_ok(
        &app,
        &m,
        "dismiss",
        person.user_id,
        ", reason: \"no rule broken\"",
    )
    .await;
    assert!(cases(&app, &m).await.is_empty());
    // The viewer's next list (the cached one expires; the refresh job recomputes it).
    app.state.discovery.invalidate(viewer.user_id).await;
    assert!(all_recs(&app, &viewer).await.contains(&person.user_id));
    let detail = case(&app, &m, person.user_id).await;
    assert_eq!(detail["reports"][0]["status"], "DISMISSED");
}

async fn a_warning_reaches_the_person(backend: Backend) {
    if runs_alone_elsewhere(Alone::Measures) {
        return;
    }
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let (person, _) = reported(&app, "Rude", "Polite", "HARASSMENT", "rude").await;
    act_ok(
        &app,
        &m,
        "warn",
        person.user_id,
        ", reason: \"insulting people\"",
    )
    .await;
    let res = app
        .gql(
            person.token(),
            "{ notifications(first: 10) { edges { node { kind title body } } } }",
            json!({}),
        )
        .await;
    let edges = res.data("notifications")["edges"]
        .as_array()
        .expect("edges")
        .clone();
    let warning = edges
        .iter()
        .find(|e| e["node"]["kind"] == "SYSTEM")
        .unwrap_or_else(|| panic!("a warning in {edges:?}"));
    assert!(
        warning["node"]["body"]
            .as_str()
            .expect("body")
            .contains("insulting people")
    );
    assert!(cases(&app, &m).await.is_empty(), "the case is closed");
    // Metrics: open cases, actions by kind, time from the first report to the decision.
    let metrics = app.metrics().await;
    for line in [
        "moderation_open_cases 0",
        "moderation_actions_total{kind=\"WARN\"} 1",
        "moderation_actions_total{kind=\"GRANT_ROLE\"} 1",
        "moderation_first_action_seconds_count 1",
        "moderation_reports_total 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

async fn a_removed_photo_leaves_the_profile(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let person = dog_at(&app, "Lewd", BERLIN).await;
    let reporter = dog_at(&app, "Shocked", BERLIN).await;
    report(
        &app,
        &reporter,
        person.user_id,
        "INAPPROPRIATE_CONTENT",
        "photo 1",
    )
    .await;
    let photos = app.photo_ids(&person, &person).await;
    assert_eq!(photos.len(), 2);
    let (status, body) = admin_gql(
        &app,
        m.token(),
        "mutation($p: ID!, $f: ID!) { removePhoto(personId: $p, photoId: $f, reason: \"nudity\") }",
        json!({ "p": person.user_id, "f": photos[0] }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["removePhoto"], true, "{body}");
    assert_eq!(app.photo_ids(&person, &person).await, vec![photos[1]]);
    // The snapshot still shows what was reported, and the case stays open for a decision.
    let detail = case(&app, &m, person.user_id).await;
    assert_eq!(
        detail["reports"][0]["snapshotPhotoUrls"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(cases(&app, &m).await.len(), 1);
    // Someone else's photo id is not found, and nothing is logged for it.
    let before = audit_count(&app).await;
    let (_, body) = admin_gql(
        &app,
        m.token(),
        "mutation($p: ID!, $f: ID!) { removePhoto(personId: $p, photoId: $f, reason: \"x\") }",
        json!({ "p": person.user_id, "f": app.photo_ids(&reporter, &reporter).await[0] }),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{body}"
    );
    assert_eq!(audit_count(&app).await, before);
    // The person can upload again and reorder: positions stayed consistent.
    app.upload_jpeg(&person).await;
    assert_eq!(app.photo_ids(&person, &person).await.len(), 2);
}

async fn a_suspension_takes_the_person_out_everywhere_until_lifted(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let (harasser, bella, conversation) = matched_pair(&app).await;
    app.send_message(&harasser, &conversation, "hey")
        .await
        .data("sendMessage");
    let viewer = dog_at(&app, "Viewer", north_of(BERLIN, 1.0)).await;
    assert!(all_recs(&app, &viewer).await.contains(&harasser.user_id));
    let reporter = dog_at(&app, "Reporter", BERLIN).await;
    report(&app, &reporter, harasser.user_id, "HARASSMENT", "threats").await;
    let mut socket = app.ws(&harasser).await;

    act_ok(
        &app,
        &m,
        "suspend",
        harasser.user_id,
        ", days: 7, reason: \"threats\"",
    )
    .await;

    // Their socket closes at once, their token stops working, sign-in is refused with the end.
    let (closed, _) = socket.expect_closed(Duration::from_secs(1)).await;
    assert_eq!(closed, Some(4001));
    assert_eq!(
        app.me(harasser.token()).await.error_code(),
        "UNAUTHENTICATED"
    );
    let login = app.login(&harasser.email, DEFAULT_PASSWORD).await;
    assert_eq!(login.error_code(), "FORBIDDEN", "{}", login.body);
    assert!(
        login.error_message().contains("suspended until"),
        "{}",
        login.body
    );
    // Their ended session's refresh token gets no new tokens, and says why.
    let refresh = app.refresh(&harasser.refresh_token).await;
    assert_eq!(refresh.error_code(), "FORBIDDEN", "{}", refresh.body);
    assert!(
        refresh.error_message().contains("suspended until"),
        "{}",
        refresh.body
    );
    // Others see them nowhere: discovery, matches, conversations, their profile.
    assert!(!all_recs(&app, &viewer).await.contains(&harasser.user_id));
    let res = app
        .gql(
            bella.token(),
            "query($u: UUID!) { matches { edges { node { id } } } conversations { edges { node { id } } }
                                profile(userId: $u) { name } }",
            json!({ "u": harasser.user_id }),
        )
        .await;
    assert_eq!(
        res.body["data"]["matches"]["edges"],
        json!([]),
        "{}",
        res.body
    );
    assert_eq!(
        res.body["data"]["conversations"]["edges"],
        json!([]),
        "{}",
        res.body
    );
    assert!(res.body["data"]["profile"].is_null(), "{}", res.body);
    let like = crate::helpers::people::like(&app, &viewer, harasser.user_id).await;
    assert_eq!(like.error_code(), "NOT_FOUND", "{}", like.body);
    // Nor can Bella write into the old conversation or read it by its id.
    let res = app.send_message(&bella, &conversation, "hello?").await;
    assert_eq!(res.error_code(), "NOT_FOUND", "{}", res.body);
    let res = app
        .gql(
            bella.token(),
            "query($c: UUID!) { messages(conversationId: $c) { edges { node { id } } } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(res.error_code(), "NOT_FOUND", "{}", res.body);

    // Lifted: they sign in again and are seen again.
    act_ok(
        &app,
        &m,
        "lift",
        harasser.user_id,
        ", reason: \"appeal accepted\"",
    )
    .await;
    let login = app.login(&harasser.email, DEFAULT_PASSWORD).await;
    assert!(login.errors().is_empty(), "{}", login.body);
    let res = app
        .gql(
            bella.token(),
            "{ matches { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        res.data("matches")["edges"].as_array().map(Vec::len),
        Some(1)
    );
}

/// When the days are over the person signs in and is seen again, with no one acting.
async fn a_suspension_ends_by_itself(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let person = dog_at(&app, "Sorry", BERLIN).await;
    let viewer = dog_at(&app, "Viewer", north_of(BERLIN, 1.0)).await;
    let reporter = dog_at(&app, "Reporter", BERLIN).await;
    report(&app, &reporter, person.user_id, "HARASSMENT", "").await;
    act_ok(
        &app,
        &m,
        "suspend",
        person.user_id,
        ", days: 1, reason: \"cool off\"",
    )
    .await;
    assert_eq!(
        app.login(&person.email, DEFAULT_PASSWORD)
            .await
            .error_code(),
        "FORBIDDEN"
    );
    // A day passes (the suspension's end is moved to a minute ago).
    let ended = chrono::Utc::now() - chrono::Duration::minutes(1);
    match &app.db {
        Db::Postgres(pool) => {
            sqlx::query("UPDATE users SET suspended_until = $2, hidden_until = $2 WHERE id = $1")
                .bind(person.user_id)
                .bind(ended)
                .execute(pool)
                .await
                .expect("update");
        }
        Db::Sqlite(pool) => {
            sqlx::query("UPDATE users SET suspended_until = ?2, hidden_until = ?2 WHERE id = ?1")
                .bind(person.user_id)
                .bind(pupmatch::infra::time::sqlite_ts(ended))
                .execute(pool)
                .await
                .expect("update");
        }
    }
    let login = app.login(&person.email, DEFAULT_PASSWORD).await;
    assert!(login.errors().is_empty(), "{}", login.body);
    app.state.discovery.invalidate(viewer.user_id).await;
    assert!(all_recs(&app, &viewer).await.contains(&person.user_id));
}

async fn a_ban_refuses_the_email_for_a_new_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let scammer = dog_at(&app, "Scammer", BERLIN).await;
    let reporter = dog_at(&app, "Victim", BERLIN).await;
    report(&app, &reporter, scammer.user_id, "SCAM", "asked for money").await;
    act_ok(&app, &m, "ban", scammer.user_id, ", reason: \"money scam\"").await;
    let login = app.login(&scammer.email, DEFAULT_PASSWORD).await;
    assert_eq!(login.error_code(), "FORBIDDEN");
    assert!(login.error_message().contains("banned"), "{}", login.body);
    // Deleting the account does not wash the email: a new one is refused, in any spelling.
    assert_eq!(app.count("banned_emails").await, 1);
    let stored = match &app.db {
        Db::Postgres(pool) => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM banned_emails WHERE position($1::bytea in email_hash) > 0",
        )
        .bind(scammer.email.as_bytes())
        .fetch_one(pool)
        .await
        .expect("query"),
        Db::Sqlite(pool) => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM banned_emails WHERE instr(email_hash, ?1) > 0",
        )
        .bind(scammer.email.as_bytes())
        .fetch_one(pool)
        .await
        .expect("query"),
    };
    assert_eq!(stored, 0, "the email is not kept in clear");
    for spelling in [
        scammer.email.clone(),
        format!("  {}  ", scammer.email.to_uppercase()),
    ] {
        let res = app.register(&spelling, "another-password-1").await;
        assert_eq!(res.error_code(), "FORBIDDEN", "{}", res.body);
    }
    // Lifting the ban frees the email again (the account still exists, so: taken).
    act_ok(&app, &m, "lift", scammer.user_id, ", reason: \"mistake\"").await;
    assert_eq!(app.count("banned_emails").await, 0);
    let login = app.login(&scammer.email, DEFAULT_PASSWORD).await;
    assert!(login.errors().is_empty(), "{}", login.body);
}

async fn many_reporters_hide_a_person_until_a_moderator_decides(backend: Backend) {
    // Reporters made a moment ago count here (by default their accounts must be a day old).
    let app = spawn_app_with(backend, |c| c.moderation.reporter_min_age = Duration::ZERO).await;
    let m = moderator(&app).await;
    let person = dog_at(&app, "Menace", BERLIN).await;
    let viewer = dog_at(&app, "Viewer", north_of(BERLIN, 1.0)).await;
    let mut reporters = Vec::new();
    for i in 0..3 {
        reporters.push(dog_at(&app, &format!("R{i}"), BERLIN).await);
    }
    // The same person reporting twice counts once.
    report(&app, &reporters[0], person.user_id, "SPAM", "").await;
    report(&app, &reporters[1], person.user_id, "SPAM", "").await;
    assert!(all_recs(&app, &viewer).await.contains(&person.user_id));
    assert_eq!(cases(&app, &m).await[0]["held"], false);
    // The viewer opens the profile (so it is cached) before the hold.
    assert!(
        profile_query(&app, &viewer, &person)
            .await
            .errors()
            .is_empty()
    );
    report(&app, &reporters[2], person.user_id, "SPAM", "").await;
    assert!(!all_recs(&app, &viewer).await.contains(&person.user_id));
    assert_eq!(cases(&app, &m).await[0]["held"], true);
    assert_eq!(
        profile_query(&app, &viewer, &person).await.error_code(),
        "NOT_FOUND"
    );
    // A warning decides the case: visible again.
    act_ok(
        &app,
        &m,
        "warn",
        person.user_id,
        ", reason: \"stop spamming\"",
    )
    .await;
    assert!(
        profile_query(&app, &viewer, &person)
            .await
            .errors()
            .is_empty()
    );
    // The viewer's next list (the cached one expires; the refresh job recomputes it).
    app.state.discovery.invalidate(viewer.user_id).await;
    assert!(all_recs(&app, &viewer).await.contains(&person.user_id));
}

async fn actions_need_a_reason_and_change_nothing_without(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let (person, _) = reported(&app, "Someone", "Reporter", "OTHER", "").await;
    for (op, extra) in [
        ("dismiss", ", reason: \"\""),
        ("warn", ", reason: \"   \""),
        ("suspend", ", days: 7, reason: \"\""),
        ("suspend", ", days: 0, reason: \"too short\""),
        ("suspend", ", days: 366, reason: \"too long\""),
        ("ban", ", reason: \"\\u0000\""),
    ] {
        let (status, body) = act(&app, &m, op, person.user_id, extra).await;
        assert_eq!(status, 200);
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{op}{extra}: {body}"
        );
    }
    let (_, body) = act(
        &app,
        &m,
        "suspend",
        Uuid::now_v7(),
        ", days: 1, reason: \"x\"",
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{body}"
    );
    let (_, body) = act(&app, &m, "ban", m.user_id, ", reason: \"oops\"").await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{body}"
    );
    assert_eq!(audit_count(&app).await, 1, "only the grant");
    assert_eq!(cases(&app, &m).await.len(), 1, "the case is still open");
    let login = app.login(&person.email, DEFAULT_PASSWORD).await;
    assert!(login.errors().is_empty());
}

async fn the_audit_log_is_append_only_and_exports_as_csv(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let (person, _) = reported(&app, "=HYPERLINK(\"x\")", "Reporter", "OTHER", "").await;
    act_ok(
        &app,
        &m,
        "warn",
        person.user_id,
        ", reason: \"said \\\"hi\\\", rudely\"",
    )
    .await;
    // No statement edits or deletes an entry.
    let refused = (
        app.try_execute("UPDATE moderation_actions SET reason = 'edited'")
            .await
            .is_err(),
        app.try_execute("DELETE FROM moderation_actions")
            .await
            .is_err(),
    );
    assert_eq!(refused, (true, true));
    assert_eq!(audit_count(&app).await, 2);
    // The CSV, from the console.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let res = client
        .post(app.url("/admin/login"))
        .form(&[("email", m.email.as_str()), ("password", DEFAULT_PASSWORD)])
        .send()
        .await
        .expect("login");
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let res = client
        .get(app.url("/admin/audit.csv"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("csv");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv")
    );
    let csv = res.text().await.expect("body");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "at,actor_id,actor,action,subject_id,subject,reason,detail"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[1].contains("\"WARN\""), "{csv}");
    assert!(lines[1].contains("\"said \"\"hi\"\", rudely\""), "{csv}");
    assert!(
        lines[1].contains("\"'=HYPERLINK(\"\"x\"\")\""),
        "formulas are defused: {csv}"
    );
    assert!(lines[2].contains("\"GRANT_ROLE\""), "{csv}");
}
