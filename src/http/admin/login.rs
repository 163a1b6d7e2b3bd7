//! Signing in to the console and out of it.

use axum::Extension;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::layout::{Page, forbidden_page, redirect, secure};
use super::session::{COOKIE, ConsoleForm, cookie_value};
use crate::app::AppState;
use crate::auth::AuthError;
use crate::error::ApiError;
use crate::http::client_ip::ClientIp;
use crate::identity::tokens::CONSOLE_SESSION_TTL;
use crate::infra::rate_limit::Bucket;

#[derive(Deserialize)]
pub struct LoginQuery {
    error: Option<String>,
}

/// `GET /admin/login`.
pub async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    Page {
        status: StatusCode::OK,
        title: "Sign in",
        who: None,
        body: html! {
            @if q.error.is_some() {
                p role="alert" { "That email and password did not match." }
            }
            form method="post" action="/admin/login" class="login" {
                p {
                    label for="email" { "Email" }
                    input id="email" name="email" type="email" autocomplete="username" required autofocus;
                }
                p {
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                }
                p { button type="submit" { "Sign in" } }
            }
        },
        images: Default::default(),
    }
    .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
}

/// `POST /admin/login`: a console session for staff, in its cookie.
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
        Err(AuthError::InvalidCredentials) => return redirect("/admin/login?error=1"),
        Err(AuthError::Restricted(message)) => return forbidden_page(&message),
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
    secure(response, &Default::default())
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

/// `POST /admin/logout`: ends the console session and its cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    _: ConsoleForm<NoFields>,
) -> Response {
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
    secure(response, &Default::default())
}
