//! The page around every console page, the headers every console response carries, and the
//! small pieces pages share.

use std::collections::BTreeSet;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::{Console, Refused};
use crate::moderation::model::Role;

const STYLESHEET: &str = include_str!("console.css");

/// `GET /admin/console.css`.
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

/// A page to answer with: its status, title, who is signed in, body, and the origins its
/// images come from.
pub struct Page<'a> {
    pub status: StatusCode,
    pub title: &'a str,
    pub who: Option<&'a Console>,
    pub body: Markup,
    pub images: BTreeSet<String>,
}

impl<'a> Page<'a> {
    /// A 200 page for the signed-in staff member, with no image from elsewhere.
    pub fn ok(title: &'a str, who: &'a Console, body: Markup) -> Self {
        Page {
            status: StatusCode::OK,
            title,
            who: Some(who),
            body,
            images: BTreeSet::new(),
        }
    }
}

impl IntoResponse for Page<'_> {
    fn into_response(self) -> Response {
        let html = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="referrer" content="no-referrer";
                    title { (self.title) " · PupMatch moderation" }
                    link rel="stylesheet" href="/admin/console.css";
                }
                body {
                    a class="skip" href="#main" { "Skip to content" }
                    header {
                        p class="brand" { "PupMatch moderation" }
                        @if let Some(console) = self.who { (nav(console)) }
                    }
                    main id="main" {
                        h1 { (self.title) }
                        (self.body)
                    }
                }
            }
        };
        let response = (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html.into_string(),
        )
            .into_response();
        secure(response, &self.images)
    }
}

fn nav(console: &Console) -> Markup {
    html! {
        nav aria-label="Console" {
            ul {
                li { a href="/admin" { "Queue" } }
                li { a href="/admin/places" { "Places" } }
                li { a href="/admin/audit" { "Audit log" } }
                @if console.actor.role == Role::Admin {
                    li { a href="/admin/staff" { "Staff" } }
                }
            }
            form method="post" action="/admin/logout" class="signout" {
                (console.csrf_field())
                span { (console.actor.email) " (" (console.actor.role.as_db().to_lowercase()) ")" }
                " "
                button type="submit" { "Sign out" }
            }
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Forbidden(why) => forbidden_page(why),
            Refused::IncompleteForm => {
                crate::error::ApiError::bad_input("form", "incomplete form").into_response()
            }
            Refused::Failed(err) => err.into_response(),
        }
    }
}

/// A table's head: one column heading each.
pub fn column_heads(headings: &[&str]) -> Markup {
    html! {
        thead { tr { @for heading in headings { th scope="col" { (heading) } } } }
    }
}

/// A hidden form field.
pub fn hidden(name: &str, value: &str) -> Markup {
    html! { input type="hidden" name=(name) value=(value); }
}

/// The 403 page: why, and the way to sign in.
pub fn forbidden_page(message: &str) -> Response {
    Page {
        status: StatusCode::FORBIDDEN,
        title: "Not allowed",
        who: None,
        body: html! {
            p role="alert" { (message) }
            p { a href="/admin/login" { "Sign in" } }
        },
        images: BTreeSet::new(),
    }
    .into_response()
}

/// The page of an action refused for bad input: why, and the way back.
pub fn not_done(console: &Console, message: &str, back: &str, back_text: &str) -> Response {
    Page {
        status: StatusCode::BAD_REQUEST,
        title: "Not done",
        who: Some(console),
        body: html! {
            p role="alert" { (message) }
            p { a href=(back) { (back_text) } }
        },
        images: BTreeSet::new(),
    }
    .into_response()
}

/// The confirmation line after an action, when there is one.
pub fn done_status(done: Option<&str>) -> Markup {
    html! {
        @if let Some(done) = done {
            p role="status" class="done" { "Done: " (done) "." }
        }
    }
}

/// A redirect from the console, with its headers.
pub fn redirect(to: &str) -> Response {
    secure(Redirect::to(to).into_response(), &BTreeSet::new())
}

/// `to` with `?done=<what was done>`.
pub fn with_done(to: &str, done: &str) -> String {
    let done: String = url::form_urlencoded::byte_serialize(done.as_bytes()).collect();
    format!("{to}?done={done}")
}

/// A time as the console shows it.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The origin (`scheme://host[:port]`) of an absolute URL, for `img-src`.
pub fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    Some(url.origin().ascii_serialization()).filter(|o| o != "null")
}

pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The security headers of every console response; `img` lists the origins of its images.
pub fn secure(mut response: Response, img: &BTreeSet<String>) -> Response {
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
    for (name, value) in [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    no_store(headers);
    response
}
