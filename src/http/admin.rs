//! `/admin/graphql` (the moderators' API) and `/admin` (their web console).
//!
//! The API takes the app's bearer tokens; the console signs in with a form to a console
//! session of its own, whose one token lives in an `HttpOnly`, `SameSite=Strict` cookie scoped
//! to `/admin` (`Secure` in production): never refreshed, refused by the app's API, ended by
//! signing out and on the server after [`CONSOLE_SESSION_TTL`].
//! Every console form carries a CSRF token bound to the session. Pages are rendered here, with
//! no script at all: a strict Content-Security-Policy, no framing, no caching. Anyone who is not
//! a moderator or an admin gets 403 from both.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use axum::Extension;
use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use uuid::Uuid;

use super::HttpState;
use super::client_ip::ClientIp;
use super::middleware::Credentials;
use crate::app::AppState;
use crate::auth::api;
use crate::error::{ApiError, annotate_graphql_errors, graphql_error_response as error_response};
use crate::infra::rate_limit::Bucket;
use crate::moderation::model::{ActionKind, Actor, Role};

/// The console's cookie.
const COOKIE: &str = "pupmatch_console";
use crate::auth::tokens::CONSOLE_SESSION_TTL;
const STYLESHEET: &str = include_str!("admin.css");

// ---------------------------------------------------------------------------------------------
// The admin GraphQL API

/// `POST /admin/graphql`: staff only. Anyone else — no token, a token that does not work, a
/// member's token — gets 403 `FORBIDDEN`, the same answer the console gives.
pub async fn graphql(
    State(state): State<HttpState>,
    Extension(Credentials(credentials)): Extension<Credentials>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let actor = match staff_from_bearer(&state.app, credentials).await {
        Ok(actor) => actor,
        Err(err) => return error_response(&err),
    };
    let params =
        super::graphql::transport::read_body(&headers, body, super::GRAPHQL_BODY_LIMIT).await;
    let request = match params.and_then(super::graphql::transport::Params::into_request) {
        Ok(request) => request,
        Err(err) => return error_response(&err),
    };
    let request = request.data(actor).data(state.moderation.clone());
    // Staff actions (a ban ends sessions, tells sockets) are carried through like members'
    // mutations, whoever hangs up.
    let schema = state.admin_schema.clone();
    let mut response =
        crate::infra::to_end::run_to_end(async move { schema.execute(request).await }).await;
    annotate_graphql_errors(&mut response.errors);
    let mut http = async_graphql_axum::GraphQLResponse::from(response).into_response();
    no_store(http.headers_mut());
    http
}

async fn staff_from_bearer(
    state: &AppState,
    credentials: Option<Result<crate::auth::tokens::Claims, crate::auth::tokens::TokenError>>,
) -> Result<Actor, ApiError> {
    let staff_only = |why: &str| {
        ApiError::Forbidden(format!(
            "moderators and admins only: sign in with a staff account ({why})"
        ))
    };
    let claims = match credentials {
        None => return Err(staff_only("no token")),
        Some(Err(_)) => return Err(staff_only("the token is invalid or has expired")),
        Some(Ok(claims)) => claims,
    };
    let user = match api(state.auth.authenticate(&claims).await) {
        Ok(user) => user,
        Err(ApiError::Unauthenticated(_)) => return Err(staff_only("the session has ended")),
        Err(other) => return Err(other),
    };
    state.moderation.staff(user.user_id).await
}

// ---------------------------------------------------------------------------------------------
// The console: session, CSRF, headers

/// A signed-in staff member of the console, with the CSRF token of their session.
struct Console {
    actor: Actor,
    csrf: String,
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn csrf_token(state: &AppState, session_id: Uuid) -> String {
    use hmac::Mac;
    let key = crate::auth::tokens::derive_key(state.auth.keys(), "console csrf");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(session_id.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The console's signed-in staff member, or the page to show instead (403).
async fn console(state: &AppState, headers: &HeaderMap) -> Result<Console, Response> {
    let Some(token) = cookie_value(headers, COOKIE) else {
        return Err(forbidden_page(
            "Sign in with a moderator account to use the console.",
        ));
    };
    let user = state
        .auth
        .console_session(token)
        .await
        .map_err(|_| forbidden_page("Your console session ended. Sign in again."))?;
    let actor = match state.moderation.staff(user.user_id).await {
        Ok(actor) => actor,
        Err(ApiError::Forbidden(_)) => {
            return Err(forbidden_page("This account is not a moderator."));
        }
        Err(err) => return Err(err.into_response()),
    };
    Ok(Console {
        csrf: csrf_token(state, user.session_id),
        actor,
    })
}

/// A console form: each carries the session's CSRF token.
trait ConsoleForm {
    fn csrf(&self) -> &str;
}

macro_rules! console_forms {
    ($($form:ty),*) => {
        $(impl ConsoleForm for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })*
    };
}
console_forms!(CsrfForm, ActionForm, PlaceForm, RoleForm);

/// The console's staff member and their form, when it is whole and genuine; otherwise the page
/// to answer with.
async fn genuine_form<F: ConsoleForm>(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<Form<F>, FormRejection>,
) -> Result<(Console, F), Response> {
    let console = console(state, headers).await?;
    let Ok(Form(form)) = form else {
        return Err(ApiError::bad_input("form", "incomplete form").into_response());
    };
    if !form_is_genuine(&console, headers, form.csrf()) {
        return Err(forged_form());
    }
    Ok((console, form))
}

/// Whether a form carries the session's CSRF token and came from this site.
fn form_is_genuine(console: &Console, headers: &HeaderMap, csrf: &str) -> bool {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "same-origin" && v != "none");
    !cross_site && constant_eq(csrf.as_bytes(), console.csrf.as_bytes())
}

/// The page of an action refused for bad input: why, and the way back.
fn not_done(console: &Console, message: &str, back: &str, back_text: &str) -> Response {
    secure(
        page(
            StatusCode::BAD_REQUEST,
            "Not done",
            Some(console),
            &format!(
                r#"<p role="alert">{}</p><p><a href="{}">{}</a></p>"#,
                esc(message),
                esc(back),
                esc(back_text)
            ),
        ),
        &BTreeSet::new(),
    )
}

fn forged_form() -> Response {
    forbidden_page("This form has expired or did not come from the console. Go back and try again.")
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The security headers of every console response; `img` lists the origins of its images.
fn secure(mut response: Response, img: &BTreeSet<String>) -> Response {
    let mut img_src = String::from("'self'");
    for origin in img {
        img_src.push(' ');
        img_src.push_str(origin);
    }
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src {img_src}; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    no_store(headers);
    response
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A whole page: the layout around `body`.
fn page(status: StatusCode, title: &str, who: Option<&Console>, body: &str) -> Response {
    let mut nav = String::new();
    if let Some(console) = who {
        let _ = write!(
            nav,
            r#"<nav aria-label="Console"><ul>
<li><a href="/admin">Queue</a></li>
<li><a href="/admin/places">Places</a></li>
<li><a href="/admin/audit">Audit log</a></li>{staff}
</ul>
<form method="post" action="/admin/logout" class="signout">
<input type="hidden" name="csrf" value="{csrf}">
<span>{email} ({role})</span> <button type="submit">Sign out</button>
</form></nav>"#,
            staff = if console.actor.role == Role::Admin {
                r#"<li><a href="/admin/staff">Staff</a></li>"#
            } else {
                ""
            },
            csrf = esc(&console.csrf),
            email = esc(&console.actor.email),
            role = console.actor.role.as_db().to_lowercase(),
        );
    }
    let html = format!(
        r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} · PupMatch moderation</title>
<link rel="stylesheet" href="/admin/console.css">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><p class="brand">PupMatch moderation</p>{nav}</header>
<main id="main">
<h1>{title}</h1>
{body}
</main>
</body>
</html>"##,
        title = esc(title),
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

fn forbidden_page(message: &str) -> Response {
    secure(
        page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            None,
            &format!(
                r#"<p role="alert">{}</p><p><a href="/admin/login">Sign in</a></p>"#,
                esc(message)
            ),
        ),
        &BTreeSet::new(),
    )
}

/// The origin (`scheme://host[:port]`) of an absolute URL, for `img-src`.
fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

// ---------------------------------------------------------------------------------------------
// Pages

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLESHEET,
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LoginQuery {
    error: Option<String>,
}

pub async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    let alert = match q.error.as_deref() {
        Some(_) => r#"<p role="alert">That email and password did not match.</p>"#,
        None => "",
    };
    let body = format!(
        r#"{alert}<form method="post" action="/admin/login" class="login">
<p><label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required autofocus></p>
<p><label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button type="submit">Sign in</button></p>
</form>"#
    );
    secure(
        page(StatusCode::OK, "Sign in", None, &body),
        &BTreeSet::new(),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Err(wait) = state
        .rate_limiter
        .check(Bucket::Auth, &client.limit_key())
        .await
    {
        return ApiError::RateLimited(wait).into_response();
    }
    let issued = match state.auth.console_login(&form.email, &form.password).await {
        Ok(issued) => issued,
        Err(crate::auth::AuthError::InvalidCredentials) => {
            return secure(
                Redirect::to("/admin/login?error=1").into_response(),
                &BTreeSet::new(),
            );
        }
        Err(crate::auth::AuthError::Restricted(message)) => return forbidden_page(&message),
        Err(err) => return ApiError::from(err).into_response(),
    };
    match state.moderation.staff(issued.user_id).await {
        Ok(actor) => {
            tracing::info!(user.id = %issued.user_id, role = actor.role.as_db(), "console sign-in");
        }
        Err(ApiError::Forbidden(_)) => {
            // The session was only for the console: end it at once.
            let _ = state.auth.logout(&issued.cookie).await;
            return forbidden_page("This account is not a moderator.");
        }
        Err(err) => return err.into_response(),
    }
    // Production is always served over https (its public URL must say so).
    let secure_flag = if state.config.is_production() || state.public_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure_flag}",
        issued.cookie,
        CONSOLE_SESSION_TTL.num_seconds()
    );
    let mut response = Redirect::to("/admin").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    secure(response, &BTreeSet::new())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    if let Err(page) = genuine_form(&state, &headers, form).await {
        return page;
    }
    if let Some(token) = cookie_value(&headers, COOKIE) {
        let _ = state.auth.logout(token).await;
    }
    let mut response = Redirect::to("/admin/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "pupmatch_console=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    secure(response, &BTreeSet::new())
}

#[derive(Deserialize)]
pub struct QueueQuery {
    done: Option<String>,
}

/// The queue: open cases, most urgent first.
pub async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Response {
    let console = match console(&state, &headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let cases = match state.moderation.cases(&console.actor).await {
        Ok(cases) => cases,
        Err(err) => return err.into_response(),
    };
    let mut body = String::new();
    if let Some(done) = q.done.as_deref() {
        let _ = write!(
            body,
            r#"<p role="status" class="done">Done: {}.</p>"#,
            esc(done)
        );
    }
    if cases.is_empty() {
        body.push_str("<p>No open cases. Good dogs all round.</p>");
    } else {
        body.push_str(
            r#"<table>
<caption>Open cases: most reporters who could have met the person first, then most reporters, then oldest</caption>
<thead><tr><th scope="col">Person</th><th scope="col">Reporters (counted)</th><th scope="col">Reports</th>
<th scope="col">Reasons</th><th scope="col">First report</th><th scope="col">Last report</th>
<th scope="col">State</th></tr></thead><tbody>"#,
        );
        for c in &cases {
            let _ = write!(
                body,
                r#"<tr><td><a href="/admin/cases/{id}">{name}</a></td><td>{reporters} ({counted})</td><td>{reports}</td>
<td>{reasons}</td><td>{first}</td><td>{last}</td><td>{state}</td></tr>"#,
                id = c.person_id,
                name = esc(c.name.as_deref().unwrap_or("(no profile)")),
                reporters = c.reporters,
                counted = c.counted_reporters,
                reports = c.reports,
                reasons = esc(&c.reasons.join(", ").to_lowercase().replace('_', " ")),
                first = when(c.first_reported_at),
                last = when(c.last_reported_at),
                state = if c.held {
                    "hidden until decided"
                } else {
                    "visible"
                },
            );
        }
        body.push_str("</tbody></table>");
    }
    secure(
        page(StatusCode::OK, "Queue", Some(&console), &body),
        &BTreeSet::new(),
    )
}

/// One case: the person now, each report with its snapshot and messages, and the actions.
pub async fn case(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(person_id): Path<Uuid>,
) -> Response {
    let console = match console(&state, &headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let detail = match state.moderation.case(&console.actor, person_id).await {
        Ok(Some(detail)) => detail,
        Ok(None) => return ApiError::NotFound("no such person".into()).into_response(),
        Err(err) => return err.into_response(),
    };
    let mut img = BTreeSet::new();
    let p = &detail.person;
    let name = p.name.clone().unwrap_or_else(|| "(no profile)".into());
    let mut body = String::new();
    let status = match (p.banned_at, p.suspended_until) {
        (Some(at), _) => format!("Banned since {}", when(at)),
        (None, Some(until)) if until > chrono::Utc::now() => {
            format!("Suspended until {}", when(until))
        }
        _ if p.hidden_until.is_some_and(|t| t > chrono::Utc::now()) => {
            "Hidden from everyone until a decision (many recent reports)".into()
        }
        _ => "Active".into(),
    };
    let _ = write!(
        body,
        r#"<section aria-labelledby="now"><h2 id="now">{name} now</h2>
<dl><dt>Status</dt><dd>{status}</dd><dt>Account</dt><dd>{email}, since {since}</dd>
<dt>Age</dt><dd>{age}</dd><dt>Breed</dt><dd>{breed}</dd><dt>Bio</dt><dd class="text">{bio}</dd></dl>
<ul class="photos">"#,
        name = esc(&name),
        status = esc(&status),
        email = esc(&p.email),
        since = when(p.created_at),
        age = p.age.map_or_else(|| "—".into(), |a| a.to_string()),
        breed = esc(p.breed.as_deref().unwrap_or("—")),
        bio = esc(p.bio.as_deref().unwrap_or("")),
    );
    for (i, (photo_id, url)) in detail.photos.iter().enumerate() {
        img.extend(origin_of(url));
        let _ = write!(
            body,
            r#"<li><img src="{url}" alt="Current photo {n} of {name}" width="160">
<form method="post" action="/admin/cases/{person_id}/actions">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="action" value="REMOVE_PHOTO">
<input type="hidden" name="photo_id" value="{photo_id}">
<label for="reason-photo-{n}">Reason</label> <input id="reason-photo-{n}" name="reason" required maxlength="1000">
<button type="submit">Remove photo {n}</button></form></li>"#,
            url = esc(url),
            n = i + 1,
            name = esc(&name),
            csrf = esc(&console.csrf),
        );
    }
    body.push_str("</ul></section>");

    body.push_str(r#"<section aria-labelledby="actions"><h2 id="actions">Decide</h2>"#);
    for (action, label, days) in [
        (ActionKind::Dismiss, "Dismiss the reports", false),
        (ActionKind::Warn, "Warn", false),
        (ActionKind::Suspend, "Suspend", true),
        (ActionKind::Ban, "Ban", false),
        (ActionKind::Lift, "Lift suspension or ban", false),
    ] {
        let id = action.as_db().to_lowercase();
        let days_field = if days {
            format!(
                r#"<label for="days-{id}">Days</label> <input id="days-{id}" name="days" type="number" min="1" max="{max}" value="7" required>"#,
                max = crate::moderation::MAX_SUSPENSION_DAYS
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            r#"<form method="post" action="/admin/cases/{person_id}/actions" class="action">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="action" value="{kind}">
<fieldset><legend>{label}</legend>{days_field}
<label for="reason-{id}">Reason</label> <input id="reason-{id}" name="reason" required maxlength="1000">
<button type="submit" id="do-{id}">{label}…</button></fieldset></form>"#,
            csrf = esc(&console.csrf),
            kind = action.as_db(),
        );
    }
    body.push_str("</section>");

    let _ = write!(
        body,
        r#"<section aria-labelledby="reports"><h2 id="reports">Reports ({})</h2>"#,
        detail.reports.len()
    );
    for r in &detail.reports {
        let rep = &r.report;
        let _ = write!(
            body,
            r#"<article class="report {status}"><h3>{reason} — {at} — {status_label}</h3>
<p>By {reporter}.</p>{standing}<p class="text">{details}</p>
<h4>Profile when reported</h4><dl><dt>Name</dt><dd>{sname}</dd><dt>Bio</dt><dd class="text">{sbio}</dd></dl>
<ul class="photos">"#,
            status = rep.status.as_db().to_lowercase(),
            status_label = rep.status.as_db().to_lowercase(),
            reason = esc(&rep.reason.to_lowercase().replace('_', " ")),
            at = when(rep.created_at),
            reporter = esc(rep
                .reporter_name
                .as_deref()
                .unwrap_or(if rep.reporter_id.is_some() {
                    "someone without a profile"
                } else {
                    "a deleted account"
                })),
            standing = match (&rep.counts_towards_hold, &rep.not_counted_because) {
                (true, _) => String::new(),
                (false, why) => format!(
                    r#"<p class="uncounted">Does not count towards the automatic hold: {}.</p>"#,
                    esc(why.as_deref().unwrap_or("the reporter did not qualify"))
                ),
            },
            details = esc(rep.details.as_deref().unwrap_or("(no details)")),
            sname = esc(rep.reported_name.as_deref().unwrap_or("(no profile)")),
            sbio = esc(rep.reported_bio.as_deref().unwrap_or("")),
        );
        for (i, url) in r.snapshot_photos.iter().enumerate() {
            img.extend(origin_of(url));
            let _ = write!(
                body,
                r#"<li><img src="{}" alt="Photo {} when reported" width="120"></li>"#,
                esc(url),
                i + 1
            );
        }
        body.push_str("</ul>");
        if r.messages.is_empty() {
            body.push_str("<p>No messages from them to this reporter.</p>");
        } else {
            let _ = write!(
                body,
                r#"<h4>What {} sent this reporter</h4><ol class="messages">"#,
                esc(&name)
            );
            for m in &r.messages {
                let _ = write!(
                    body,
                    r#"<li><time>{}</time> <span class="text">{}</span></li>"#,
                    when(m.sent_at),
                    esc(&m.content)
                );
            }
            body.push_str("</ol>");
        }
        body.push_str("</article>");
    }
    body.push_str("</section>");
    secure(
        page(
            StatusCode::OK,
            &format!("Case: {name}"),
            Some(&console),
            &body,
        ),
        &img,
    )
}

#[derive(Deserialize)]
pub struct ActionForm {
    csrf: String,
    action: String,
    reason: String,
    days: Option<String>,
    /// Empty when the action is not about a photo.
    photo_id: Option<String>,
    confirmed: Option<String>,
}

/// An action: first a confirmation page, then (confirmed) the action itself.
pub async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(person_id): Path<Uuid>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let (console, form) = match genuine_form(&state, &headers, form).await {
        Ok(signed_in) => signed_in,
        Err(page) => return page,
    };
    let Some(kind) = ActionKind::parse(&form.action)
        .filter(|k| !matches!(k, ActionKind::GrantRole | ActionKind::RevokeRole))
    else {
        return ApiError::bad_input("action", "unknown action").into_response();
    };
    let days = match form
        .days
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        None => None,
        Some(d) => match d.parse::<i64>() {
            Ok(d) => Some(d),
            Err(_) => return ApiError::bad_input("days", "a whole number of days").into_response(),
        },
    };
    let photo_id = match form
        .photo_id
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => match Uuid::parse_str(p) {
            Ok(id) => Some(id),
            Err(_) => return ApiError::bad_input("photo_id", "not a photo id").into_response(),
        },
    };
    // Only someone whose case this staff member sees: staff out of reach stay unnamed.
    let name = match state.moderation.case(&console.actor, person_id).await {
        Ok(Some(case)) => case.person.name.unwrap_or_else(|| "(no profile)".into()),
        Ok(None) => return ApiError::NotFound("no such person".into()).into_response(),
        Err(err) => return err.into_response(),
    };
    if form.confirmed.as_deref() != Some("yes") {
        let what = match (kind, days) {
            (ActionKind::Suspend, Some(d)) => format!("Suspend {name} for {d} days"),
            (ActionKind::RemovePhoto, _) => format!("Remove this photo from {name}'s profile"),
            (ActionKind::Dismiss, _) => format!("Dismiss the open reports about {name}"),
            (ActionKind::Warn, _) => format!("Warn {name}"),
            (ActionKind::Ban, _) => format!("Ban {name}"),
            (ActionKind::Lift, _) => format!("Lift {name}'s suspension or ban"),
            _ => format!("{} {name}", kind.label()),
        };
        let consequence = match kind {
            ActionKind::Suspend | ActionKind::Ban => {
                "Every session and open connection of this person ends now, on every server; \
                 they are hidden from everyone and cannot sign in."
            }
            ActionKind::Warn => "They get an in-app warning with your reason.",
            _ => "",
        };
        let body = format!(
            r#"<p>{what}?</p><p>{consequence}</p><p>Reason: <q>{reason}</q></p>
<form method="post" action="/admin/cases/{person_id}/actions">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="action" value="{kind}">
<input type="hidden" name="reason" value="{reason}"><input type="hidden" name="days" value="{days}">
<input type="hidden" name="photo_id" value="{photo}"><input type="hidden" name="confirmed" value="yes">
<button type="submit" id="confirm">Confirm: {what}</button>
<a href="/admin/cases/{person_id}">Cancel</a></form>"#,
            what = esc(&what),
            reason = esc(&form.reason),
            csrf = esc(&console.csrf),
            kind = kind.as_db(),
            days = days.map(|d| d.to_string()).unwrap_or_default(),
            photo = photo_id.map(|p| p.to_string()).unwrap_or_default(),
        );
        return secure(
            page(StatusCode::OK, "Confirm", Some(&console), &body),
            &BTreeSet::new(),
        );
    }
    let result = match kind {
        ActionKind::RemovePhoto => match photo_id {
            Some(photo) => {
                state
                    .moderation
                    .remove_photo(&console.actor, person_id, photo, &form.reason)
                    .await
            }
            None => Err(ApiError::bad_input("photo_id", "which photo?")),
        },
        _ => {
            state
                .moderation
                .act(&console.actor, kind, person_id, &form.reason, days)
                .await
        }
    };
    match result {
        Ok(()) => {
            let done = format!("{} {name}", kind.label());
            let target = if kind == ActionKind::RemovePhoto {
                format!("/admin/cases/{person_id}")
            } else {
                format!(
                    "/admin?done={}",
                    url::form_urlencoded::byte_serialize(done.as_bytes()).collect::<String>()
                )
            };
            secure(Redirect::to(&target).into_response(), &BTreeSet::new())
        }
        Err(ApiError::BadUserInput { message, .. }) => not_done(
            &console,
            &message,
            &format!("/admin/cases/{person_id}"),
            "Back to the case",
        ),
        Err(ApiError::Forbidden(message)) => forbidden_page(&message),
        Err(err) => err.into_response(),
    }
}

#[derive(Deserialize)]
pub struct PlacesQuery {
    q: Option<String>,
    done: Option<String>,
}

/// Places, newest first (100), or those whose name contains `q`; each with a form to remove
/// it or merge it into another.
pub async fn places(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PlacesQuery>,
) -> Response {
    let console = match console(&state, &headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let rows = match state.moderation.places(q.q.as_deref()).await {
        Ok(rows) => rows,
        Err(err) => return err.into_response(),
    };
    let mut body = String::new();
    if let Some(done) = q.done.as_deref() {
        let _ = write!(
            body,
            r#"<p role="status" class="done">Done: {}.</p>"#,
            esc(done)
        );
    }
    let _ = write!(
        body,
        r#"<form method="get" action="/admin/places" role="search"><label for="q">Name contains</label>
<input id="q" name="q" value="{q}"> <button type="submit">Search</button></form>"#,
        q = esc(q.q.as_deref().unwrap_or("")),
    );
    if rows.is_empty() {
        body.push_str("<p>No places.</p>");
    } else {
        body.push_str(
            r#"<table>
<caption>Places, newest first</caption>
<thead><tr><th scope="col">Place</th><th scope="col">Where</th><th scope="col">Saved by</th>
<th scope="col">Added</th><th scope="col">Remove, or merge into another</th></tr></thead><tbody>"#,
        );
        for p in &rows {
            let _ = write!(
                body,
                r#"<tr><td><strong>{name}</strong><br>{description}<br><small>{id}</small></td>
<td>{lat:.5}, {lon:.5}</td><td>{favorites}</td><td>{added}</td>
<td><form method="post" action="/admin/places/{id}/actions">
<input type="hidden" name="csrf" value="{csrf}">
<label>Reason <input name="reason" required maxlength="1000"></label>
<label>Merge into (place id) <input name="into"></label>
<button type="submit" name="action" value="REMOVE_PLACE">Remove</button>
<button type="submit" name="action" value="MERGE_PLACE">Merge</button>
</form></td></tr>"#,
                id = p.id,
                name = esc(&p.name),
                description = esc(&p.description),
                lat = p.latitude,
                lon = p.longitude,
                favorites = p.favorite_count,
                added = when(p.created_at),
                csrf = esc(&console.csrf),
            );
        }
        body.push_str("</tbody></table>");
    }
    secure(
        page(StatusCode::OK, "Places", Some(&console), &body),
        &BTreeSet::new(),
    )
}

#[derive(Deserialize)]
pub struct PlaceForm {
    csrf: String,
    action: String,
    reason: String,
    into: Option<String>,
    confirmed: Option<String>,
}

/// A place's removal or merge: first a confirmation page, then (confirmed) the action.
pub async fn place_act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(place_id): Path<Uuid>,
    form: Result<Form<PlaceForm>, FormRejection>,
) -> Response {
    let (console, form) = match genuine_form(&state, &headers, form).await {
        Ok(signed_in) => signed_in,
        Err(page) => return page,
    };
    let kind = match ActionKind::parse(&form.action) {
        Some(k @ (ActionKind::RemovePlace | ActionKind::MergePlace)) => k,
        _ => return ApiError::bad_input("action", "unknown action").into_response(),
    };
    let into = match form
        .into
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        None if kind == ActionKind::MergePlace => {
            return ApiError::bad_input("into", "merge into which place?").into_response();
        }
        None => None,
        Some(i) => match Uuid::parse_str(i) {
            Ok(id) => Some(id),
            Err(_) => return ApiError::bad_input("into", "not a place id").into_response(),
        },
    };
    if form.confirmed.as_deref() != Some("yes") {
        let what = match into {
            Some(into) if kind == ActionKind::MergePlace => {
                format!("Merge place {place_id} into place {into}")
            }
            _ => format!("Remove place {place_id}"),
        };
        let body = format!(
            r#"<p>{what}?</p><p>Reason: <q>{reason}</q></p>
<form method="post" action="/admin/places/{place_id}/actions">
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="action" value="{kind}">
<input type="hidden" name="reason" value="{reason}"><input type="hidden" name="into" value="{into}">
<input type="hidden" name="confirmed" value="yes">
<button type="submit" id="confirm">Confirm: {what}</button>
<a href="/admin/places">Cancel</a></form>"#,
            what = esc(&what),
            reason = esc(&form.reason),
            csrf = esc(&console.csrf),
            kind = kind.as_db(),
            into = into.map(|i| i.to_string()).unwrap_or_default(),
        );
        return secure(
            page(StatusCode::OK, "Confirm", Some(&console), &body),
            &BTreeSet::new(),
        );
    }
    let result = match (kind, into) {
        (ActionKind::MergePlace, Some(into)) => {
            state
                .moderation
                .merge_place(&console.actor, place_id, into, &form.reason)
                .await
        }
        _ => {
            state
                .moderation
                .remove_place(&console.actor, place_id, &form.reason)
                .await
        }
    };
    match result {
        Ok(()) => {
            let done = format!("{} {place_id}", kind.label());
            let target = format!(
                "/admin/places?done={}",
                url::form_urlencoded::byte_serialize(done.as_bytes()).collect::<String>()
            );
            secure(Redirect::to(&target).into_response(), &BTreeSet::new())
        }
        Err(ApiError::BadUserInput { message, .. }) => {
            not_done(&console, &message, "/admin/places", "Back to the places")
        }
        Err(err) => err.into_response(),
    }
}

/// The audit log, newest first (500 entries), with a CSV export of all of it.
pub async fn audit(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let console = match console(&state, &headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let entries = match state.moderation.audit(500, None).await {
        Ok(e) => e,
        Err(err) => return err.into_response(),
    };
    let mut body = String::from(
        r#"<p><a href="/admin/audit.csv" download>Download the whole log as CSV</a></p>
<table><caption>Every moderator action and role change, newest first</caption>
<thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th>
<th scope="col">Whom</th><th scope="col">Why</th><th scope="col">Detail</th></tr></thead><tbody>"#,
    );
    for e in &entries {
        let kind = e.kind.label();
        let name = esc(e.subject_name.as_deref().unwrap_or("—"));
        // A place's entry names the place (it may be gone); a person's links to their case.
        let whom = match e.kind {
            ActionKind::RemovePlace | ActionKind::MergePlace => {
                format!("{name} <small>(place {})</small>", e.subject_id)
            }
            _ => format!(r#"<a href="/admin/cases/{}">{name}</a>"#, e.subject_id),
        };
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{whom}</td><td class="text">{}</td><td>{}</td></tr>"#,
            when(e.created_at),
            esc(&e.actor_email),
            esc(kind),
            esc(&e.reason),
            esc(e.detail.as_deref().unwrap_or("")),
        );
    }
    body.push_str("</tbody></table>");
    secure(
        page(StatusCode::OK, "Audit log", Some(&console), &body),
        &BTreeSet::new(),
    )
}

/// `GET /admin/audit.csv`: the whole audit log, oldest last.
pub async fn audit_csv(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let console = match console(&state, &headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let mut csv = String::from("at,actor_id,actor,action,subject_id,subject,reason,detail\r\n");
    let mut before = None;
    loop {
        let entries = match state.moderation.audit(1000, before).await {
            Ok(e) => e,
            Err(err) => return err.into_response(),
        };
        for e in &entries {
            let fields = [
                e.created_at.to_rfc3339(),
                e.actor_id.map(|i| i.to_string()).unwrap_or_default(),
                e.actor_email.clone(),
                e.kind.as_db().to_string(),
                e.subject_id.to_string(),
                e.subject_name.clone().unwrap_or_default(),
                e.reason.clone(),
                e.detail.clone().unwrap_or_default(),
            ];
            let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            csv.push_str(&row.join(","));
            csv.push_str("\r\n");
        }
        match entries.last() {
            Some(last) if entries.len() == 1000 => before = Some((last.created_at, last.id)),
            _ => break,
        }
    }
    tracing::info!(moderator = ?console.actor.id, "audit log exported");
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"pupmatch-audit-log.csv\"",
            ),
        ],
        csv,
    )
        .into_response();
    no_store(response.headers_mut());
    response
}

/// A CSV field, quoted, with formula-starting text defused for spreadsheets.
fn csv_field(raw: &str) -> String {
    let defused = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_string()
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

/// Admins: who has a role, and the form to grant or take one away.
pub async fn staff(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let console = match console(&state, &headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let rows = match state.moderation.staff_list(&console.actor).await {
        Ok(rows) => rows,
        Err(ApiError::Forbidden(_)) => return forbidden_page("Only admins manage roles."),
        Err(err) => return err.into_response(),
    };
    let mut body = String::from(
        r#"<table><caption>Accounts with a role</caption><thead><tr><th scope="col">Email</th><th scope="col">Role</th></tr></thead><tbody>"#,
    );
    for s in &rows {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&s.email),
            esc(&s.role.as_db().to_lowercase())
        );
    }
    let _ = write!(
        body,
        r#"</tbody></table>
<form method="post" action="/admin/staff"><fieldset><legend>Grant or take away a role</legend>
<input type="hidden" name="csrf" value="{csrf}">
<p><label for="staff-email">Email</label> <input id="staff-email" name="email" type="email" required></p>
<p><label for="staff-role">Role</label> <select id="staff-role" name="role">
<option value="MODERATOR">moderator</option><option value="ADMIN">admin</option>
<option value="MEMBER">none (take the role away)</option></select></p>
<p><label for="staff-reason">Reason</label> <input id="staff-reason" name="reason" required maxlength="1000"></p>
<p><button type="submit">Save</button></p></fieldset></form>"#,
        csrf = esc(&console.csrf)
    );
    secure(
        page(StatusCode::OK, "Staff", Some(&console), &body),
        &BTreeSet::new(),
    )
}

#[derive(Deserialize)]
pub struct RoleForm {
    csrf: String,
    email: String,
    role: String,
    reason: String,
}

pub async fn set_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<RoleForm>, FormRejection>,
) -> Response {
    let (console, form) = match genuine_form(&state, &headers, form).await {
        Ok(signed_in) => signed_in,
        Err(page) => return page,
    };
    let Some(role) = Role::parse(&form.role) else {
        return ApiError::bad_input("role", "unknown role").into_response();
    };
    match state
        .moderation
        .set_role(&console.actor, &form.email, role, &form.reason)
        .await
    {
        Ok(_) => secure(
            Redirect::to("/admin/staff").into_response(),
            &BTreeSet::new(),
        ),
        Err(ApiError::Forbidden(m)) => forbidden_page(&m),
        Err(err) => err.into_response(),
    }
}
