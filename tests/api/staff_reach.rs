//! Staff cannot be turned against each other: a moderator acts on members only, an admin on
//! members and moderators, nobody on an admin or on themselves (only the command line, which
//! can also let a locked-out admin back in). Only admins see who the staff are.

use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::people::{BERLIN, dog_at};
use crate::helpers::staff::{BANNED, restrict_directly};
use crate::helpers::staff::{admin_gql, grant, moderator};
use crate::helpers::{Backend, DEFAULT_PASSWORD, Session, TestApp, spawn_app};
use pupmatch::moderation::model::Role;

both_backends!(
    staff_cannot_be_turned_against_each_other,
    a_locked_out_admin_is_let_back_in_from_the_command_line,
);

async fn admin(app: &TestApp) -> Session {
    let a = app.new_user().await;
    grant(app, &a.email, Role::Admin).await;
    a
}

/// Every action of the admin API on `target`, as `by`: the error code of each.
async fn every_action(app: &TestApp, by: &Session, target: &Session) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for op in [
        "dismiss(personId: $p, reason: \"r\")",
        "warn(personId: $p, reason: \"r\")",
        "suspend(personId: $p, days: 3, reason: \"r\")",
        "ban(personId: $p, reason: \"r\")",
        "lift(personId: $p, reason: \"r\")",
        "removePhoto(personId: $p, photoId: \"00000000-0000-0000-0000-000000000000\", reason: \"r\")",
    ] {
        let (status, body) = admin_gql(
            app,
            by.token(),
            &format!("mutation($p: ID!) {{ {op} }}"),
            json!({ "p": target.user_id }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        out.push((
            op.split('(').next().unwrap_or_default().to_string(),
            body["errors"][0]["extensions"]["code"].clone(),
        ));
    }
    for op in [
        "grantRole(email: $e, role: ADMIN, reason: \"r\")",
        "grantRole(email: $e, role: MODERATOR, reason: \"r\")",
        "revokeRole(email: $e, reason: \"r\")",
    ] {
        let (_, body) = admin_gql(
            app,
            by.token(),
            &format!("mutation($e: String!) {{ {op} }}"),
            json!({ "e": target.email }),
        )
        .await;
        out.push((
            op.split('(').next().unwrap_or_default().to_string(),
            body["errors"][0]["extensions"]["code"].clone(),
        ));
    }
    out
}

fn all_refused(results: &[(String, Value)], code: &str, who: &str) {
    for (op, got) in results {
        assert_eq!(got, code, "{who}: {op} was not refused with {code}");
    }
}

async fn signed_in_role(app: &TestApp, who: &Session) -> Value {
    let (status, body) = admin_gql(app, who.token(), "{ viewer { role } }", json!({})).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["viewer"]["role"].clone()
}

async fn staff_cannot_be_turned_against_each_other(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a1, a2) = (admin(&app).await, admin(&app).await);
    let (m1, m2) = (moderator(&app).await, moderator(&app).await);
    let audit_before = app.count("moderation_actions").await;

    // A moderator acts on no staff account, admin or moderator; roles are not theirs either.
    for target in [&a1, &a2, &m2] {
        let results = every_action(&app, &m1, target).await;
        all_refused(&results, "FORBIDDEN", "a moderator on staff");
    }
    // An admin acts on no other admin, and on themselves only to be told they cannot.
    all_refused(
        &every_action(&app, &a1, &a2).await,
        "FORBIDDEN",
        "an admin on an admin",
    );
    all_refused(
        &every_action(&app, &a1, &a1).await,
        "BAD_USER_INPUT",
        "an admin on themselves",
    );
    all_refused(
        &every_action(&app, &m1, &m1).await[..6],
        "BAD_USER_INPUT",
        "a moderator on themselves",
    );
    assert_eq!(
        app.count("moderation_actions").await,
        audit_before,
        "nothing was done, so nothing was logged"
    );
    for who in [&a1, &a2] {
        assert_eq!(signed_in_role(&app, who).await, "ADMIN");
    }
    for who in [&m1, &m2] {
        assert_eq!(signed_in_role(&app, who).await, "MODERATOR");
    }
    assert_eq!(app.count("banned_emails").await, 0);

    // Only admins see the staff list.
    let (_, body) = admin_gql(&app, m1.token(), "{ staff { id email } }", json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    assert!(
        body["data"].is_null() || body["data"]["staff"].is_null(),
        "{body}"
    );
    let (_, body) = admin_gql(&app, a1.token(), "{ staff { email role } }", json!({})).await;
    assert_eq!(
        body["data"]["staff"].as_array().map(Vec::len),
        Some(4),
        "{body}"
    );

    // Reports about staff reach only those who may decide them.
    let reporter = dog_at(&app, "Reporter", BERLIN).await;
    for whom in [&a2, &m2] {
        let res = app
            .report(&reporter, &whom.user_id, "HARASSMENT", Some("rude"))
            .await;
        assert_eq!(*res.data("report"), json!(true), "{}", res.body);
    }
    let queue = |by: &Session| {
        let by = by.clone();
        let app = &app;
        async move {
            let (_, body) = admin_gql(app, by.token(), "{ cases { personId } }", json!({})).await;
            body["data"]["cases"]
                .as_array()
                .expect("cases")
                .iter()
                .map(|c| c["personId"].as_str().expect("id").to_string())
                .collect::<Vec<_>>()
        }
    };
    assert!(
        queue(&m1).await.is_empty(),
        "a moderator sees no staff case"
    );
    let mut seen = queue(&a1).await;
    seen.sort();
    let mut want = vec![a2.user_id.to_string(), m2.user_id.to_string()];
    want.sort();
    assert_eq!(seen, want, "an admin sees both");
    assert!(
        queue(&a2).await == [m2.user_id.to_string()],
        "not their own case"
    );
    let (_, body) = admin_gql(
        &app,
        m1.token(),
        "query($p: ID!) { case(personId: $p) { person { email } } }",
        json!({ "p": a2.user_id }),
    )
    .await;
    assert!(body["data"]["case"].is_null(), "{body}");

    // What each may do still works.
    let member = app.new_user().await;
    for (by, target, op) in [
        (&m1, &member, "warn(personId: $p, reason: \"be kind\")"),
        (
            &a1,
            &m2,
            "suspend(personId: $p, days: 1, reason: \"abused the console\")",
        ),
    ] {
        let (_, body) = admin_gql(
            &app,
            by.token(),
            &format!("mutation($p: ID!) {{ {op} }}"),
            json!({ "p": target.user_id }),
        )
        .await;
        assert!(body["errors"].is_null(), "{body}");
    }
    let (_, body) = admin_gql(
        &app,
        a1.token(),
        "mutation($e: String!) { grantRole(email: $e, role: ADMIN, reason: \"promoted\") }",
        json!({ "e": m1.email }),
    )
    .await;
    assert!(
        body["errors"].is_null(),
        "an admin promotes a moderator: {body}"
    );
    assert_eq!(app.count("moderation_actions").await, audit_before + 3);
}

async fn a_locked_out_admin_is_let_back_in_from_the_command_line(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = admin(&app).await;
    // Locked out as a compromised console could have done it before staff were protected.
    pupmatch::moderation::lift_from_command_line(
        &pupmatch::moderation::store::ModerationStore::new(&app.db),
        &a.email,
        "setup: nothing to lift yet",
    )
    .await
    .expect("a lift with nothing to lift is fine");
    restrict_directly(&app, a.user_id, BANNED).await;
    let res = app.login(&a.email, DEFAULT_PASSWORD).await;
    assert_eq!(res.error_code(), "FORBIDDEN", "{}", res.body);

    let run = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pupmatch"));
        cmd.args(args)
            .env_clear()
            .env("PUPMATCH_DATABASE_URL", &app.config.database_url)
            .env("PUPMATCH_LOG", "warn");
        if let Some(redis) = &app.config.redis_url {
            cmd.env("PUPMATCH_REDIS_URL", redis)
                .env("PUPMATCH_REDIS_PREFIX", &app.config.redis_prefix);
        }
        cmd.output()
    };
    // A reason is required, and an unknown account is a clear error: nothing is logged.
    let out = run(&["admin", "lift", &a.email]).await.expect("runs");
    assert!(!out.status.success());
    let out = run(&["admin", "lift", "nobody@example.com", "--reason", "x"])
        .await
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no account with the email"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logged = app.count("moderation_actions").await;
    let out = run(&[
        "admin",
        "lift",
        &a.email,
        "--reason",
        "locked out by a bad actor",
    ])
    .await
    .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(app.count("moderation_actions").await, logged + 1);

    let back = app.sign_in(&a.email).await;
    assert_eq!(signed_in_role(&app, &back).await, "ADMIN");
    let (_, body) = admin_gql(
        &app,
        back.token(),
        "{ auditLog(first: 1) { kind actorEmail subjectId reason } }",
        json!({}),
    )
    .await;
    let entry = &body["data"]["auditLog"][0];
    assert_eq!(entry["kind"], "LIFT", "{body}");
    assert_eq!(entry["actorEmail"], "command line");
    assert_eq!(entry["subjectId"], json!(a.user_id));
    assert_eq!(entry["reason"], "locked out by a bad actor");
}
