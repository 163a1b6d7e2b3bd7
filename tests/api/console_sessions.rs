//! The moderation console's sign-in is a session of its own kind: its cookie cannot be
//! refreshed through the app's API (nor an app token used as the cookie), it ends on the server
//! after 8 hours whatever the browser keeps, it ends with sign-out, and in production the
//! cookie is always `Secure`.

use crate::both_backends;
use crate::helpers::db::uuid_lit;
use crate::helpers::staff::moderator;
use crate::helpers::staff::{console_sign_in, no_redirects};
use crate::helpers::{Backend, TestApp, in_production, spawn_app, spawn_app_with};

both_backends!(
    a_console_session_reaches_only_the_console,
    a_console_session_ends_after_eight_hours_or_at_sign_out,
    production_console_cookies_are_secure,
);

/// The queue page with `cookie` as the console's: its status and text.
async fn queue(app: &TestApp, cookie: &str) -> (u16, String) {
    let res = no_redirects()
        .get(app.url("/admin"))
        .header("cookie", format!("pupmatch_console={cookie}"))
        .send()
        .await
        .expect("queue");
    (res.status().as_u16(), res.text().await.expect("page text"))
}

async fn a_console_session_reaches_only_the_console(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let (header, cookie) = console_sign_in(&app, &m.email).await;
    assert!(
        !header.contains("Secure"),
        "plain http in development: {header}"
    );
    assert_eq!(queue(&app, &cookie).await.0, 200);

    // The app's API does not take it: no 30-day tokens for the console's cookie…
    let res = app.refresh(&cookie).await;
    assert_eq!(res.error_code(), "UNAUTHENTICATED", "{}", res.body);
    assert!(res.body["data"].is_null() || res.body["data"]["refreshToken"].is_null());
    // …and trying does not end the console session either.
    assert_eq!(queue(&app, &cookie).await.0, 200);
    // An app session's refresh token is no console cookie.
    assert_eq!(queue(&app, &m.refresh_token).await.0, 403);
    // The app session still refreshes as ever.
    let res = app.refresh(&m.refresh_token).await;
    assert!(res.errors().is_empty(), "{}", res.body);
}

async fn a_console_session_ends_after_eight_hours_or_at_sign_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let m = moderator(&app).await;
    let (header, cookie) = console_sign_in(&app, &m.email).await;
    assert!(header.contains("Max-Age=28800"), "{header}");
    // Eight hours and a minute later, whatever the browser still holds:
    app.execute(&format!(
        "UPDATE refresh_tokens SET created_at = '2026-01-01T00:00:00.000000Z',
                                   expires_at = '2026-01-01T08:00:00.000000Z'
          WHERE session_id IN (SELECT id FROM sessions WHERE user_id = {} AND kind = 'console')",
        uuid_lit(&app, m.user_id)
    ))
    .await;
    let (status, page) = queue(&app, &cookie).await;
    assert_eq!(status, 403);
    assert!(page.contains("session ended"), "{page}");

    // Signing out ends the session on the server, not only in the browser.
    let (_, cookie) = console_sign_in(&app, &m.email).await;
    let (status, page) = queue(&app, &cookie).await;
    assert_eq!(status, 200);
    let csrf = page
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the sign-out form's token")
        .to_string();
    let res = no_redirects()
        .post(app.url("/admin/logout"))
        .header("cookie", format!("pupmatch_console={cookie}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status(), 303);
    assert_eq!(queue(&app, &cookie).await.0, 403);
}

async fn production_console_cookies_are_secure(backend: Backend) {
    let app = spawn_app_with(backend, in_production).await;
    let m = moderator(&app).await;
    let (header, _) = console_sign_in(&app, &m.email).await;
    assert!(header.contains("; Secure"), "{header}");
    assert!(header.contains("HttpOnly") && header.contains("SameSite=Strict"));
}
