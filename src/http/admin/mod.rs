//! `/admin/graphql` (the moderators' API) and `/admin` (their web console).
//!
//! The API takes the app's bearer tokens; the console signs in with a form to a console
//! session of its own, whose one token lives in an `HttpOnly`, `SameSite=Strict` cookie scoped
//! to `/admin` (`Secure` in production): never refreshed, refused by the app's API, ended by
//! signing out and on the server after [`CONSOLE_SESSION_TTL`](crate::identity::tokens::CONSOLE_SESSION_TTL).
//! Every console form carries a CSRF token bound to the session ([`session::ConsoleForm`]).
//! Pages are `maud` templates (escaped by default, checked when compiled) with no script at
//! all: a strict Content-Security-Policy, no framing, no caching. Anyone who is not a moderator
//! or an admin gets 403 from both.
//!
//! - [`api`]: the moderators' GraphQL endpoint.
//! - [`session`]: the console session and its CSRF check; [`login`]: signing in and out.
//! - [`layout`]: the page around every page, the security headers, small renderings.
//! - [`cases`]: the queue, one case, and acting on it.
//! - [`places`], [`audit`], [`staff`]: the other pages.

mod api;
mod audit;
mod cases;
mod layout;
mod login;
mod places;
mod session;
mod staff;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use super::{GRAPHQL_BODY_LIMIT, HttpState};

/// Every `/admin` route.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route(
            "/admin/graphql",
            post(api::graphql).layer(DefaultBodyLimit::max(GRAPHQL_BODY_LIMIT)),
        )
        .route("/admin", get(cases::queue))
        .route("/admin/console.css", get(layout::stylesheet))
        .route("/admin/login", get(login::login_page).post(login::login))
        .route("/admin/logout", post(login::logout))
        .route("/admin/cases/{id}", get(cases::case))
        .route("/admin/cases/{id}/actions", post(cases::act))
        .route("/admin/places", get(places::places))
        .route("/admin/places/{id}/actions", post(places::act))
        .route("/admin/audit", get(audit::audit))
        .route("/admin/audit.csv", get(audit::audit_csv))
        .route("/admin/staff", get(staff::staff).post(staff::set_role))
}
