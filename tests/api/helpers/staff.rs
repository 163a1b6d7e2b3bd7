//! Staff: roles, the admin API, the console's sign-in, restrictions written directly.

use pupmatch::moderation::model::{Actor, Role};
use pupmatch::moderation::store::ModerationStore;
use serde_json::{Value, json};

use crate::helpers::db::uuid_lit;
use crate::helpers::{DEFAULT_PASSWORD, Session, TestApp};

/// An `/admin/graphql` request: the status and the body.
pub async fn admin_gql(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/admin/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json"))
}

/// Gives `email` a role as the command line does.
pub async fn grant(app: &TestApp, email: &str, role: Role) {
    pupmatch::moderation::set_role(
        &ModerationStore::new(&app.db),
        &Actor::command_line(),
        email,
        role,
        "test setup",
    )
    .await
    .expect("grant");
}

/// A moderator account, signed in.
pub async fn moderator(app: &TestApp) -> Session {
    let m = app.new_user().await;
    grant(app, &m.email, Role::Moderator).await;
    m
}

/// Signs `email` in to the console: the whole `Set-Cookie` header, and the cookie's value.
pub async fn console_sign_in(app: &TestApp, email: &str) -> (String, String) {
    let res = no_redirects()
        .post(app.url("/admin/login"))
        .form(&[("email", email), ("password", DEFAULT_PASSWORD)])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 303);
    let header = res.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    let value = header
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("pupmatch_console="))
        .expect("the console cookie")
        .to_string();
    (header, value)
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub const BANNED: &str = "banned_at = '2026-01-01T00:00:00.000000Z',
                      hidden_until = '9999-01-01T00:00:00.000000Z'";

/// Restricts `user` in the database alone (`set`: the columns to set), leaving their sessions
/// as they are: a session that survived a restriction, whatever way it did.
pub async fn restrict_directly(app: &TestApp, user: uuid::Uuid, set: &str) {
    app.execute(&format!(
        "UPDATE users SET {set} WHERE id = {}",
        uuid_lit(app, user)
    ))
    .await;
}
