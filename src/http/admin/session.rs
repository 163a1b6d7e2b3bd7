//! The console session: its cookie, the extractor that finds the signed-in staff member
//! ([`Console`]) and the one that also checks a form's CSRF token ([`ConsoleForm`]). What a
//! refused request is answered with ([`Refused`]) is rendered by the layout.

use axum::extract::{Form, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;
use crate::moderation::model::Actor;

/// The console's cookie.
pub const COOKIE: &str = "pupmatch_console";

/// Why a console request was refused.
pub enum Refused {
    /// 403, with the reason to show.
    Forbidden(&'static str),
    /// 400: a form with fields missing.
    IncompleteForm,
    /// Anything else (the database is down, …).
    Failed(ApiError),
}

/// A signed-in staff member of the console, with the CSRF token of their session. As an
/// extractor, a request without one is answered with the 403 page.
pub struct Console {
    pub actor: Actor,
    csrf: String,
}

impl Console {
    /// The hidden field every console form carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

impl<S> FromRequestParts<S> for Console
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refused> {
        let state = AppState::from_ref(state);
        let Some(token) = cookie_value(&parts.headers, COOKIE) else {
            return Err(Refused::Forbidden(
                "Sign in with a moderator account to use the console.",
            ));
        };
        let user = state
            .auth
            .console_session(token)
            .await
            .map_err(|_| Refused::Forbidden("Your console session ended. Sign in again."))?;
        let actor = match state.moderation.staff(user.user_id).await {
            Ok(actor) => actor,
            Err(ApiError::Forbidden(_)) => {
                return Err(Refused::Forbidden("This account is not a moderator."));
            }
            Err(err) => return Err(Refused::Failed(err)),
        };
        Ok(Console {
            csrf: csrf_token(&state, user.session_id),
            actor,
        })
    }
}

/// A console form: the signed-in staff member and their form `F`, when the form is whole
/// (400 otherwise), carries the session's CSRF token and came from this site (403 otherwise).
pub struct ConsoleForm<F>(pub Console, pub F);

#[derive(Deserialize)]
struct Signed<F> {
    csrf: String,
    #[serde(flatten)]
    form: F,
}

impl<S, F> FromRequest<S> for ConsoleForm<F>
where
    AppState: FromRef<S>,
    S: Send + Sync,
    F: DeserializeOwned + Send,
{
    type Rejection = Refused;

    async fn from_request(request: Request, state: &S) -> Result<Self, Refused> {
        let (mut parts, body) = request.into_parts();
        let console = Console::from_request_parts(&mut parts, state).await?;
        let cross_site = parts
            .headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v != "same-origin" && v != "none");
        let request = Request::from_parts(parts, body);
        let Ok(Form(signed)) = Form::<Signed<F>>::from_request(request, state).await else {
            return Err(Refused::IncompleteForm);
        };
        if cross_site || !constant_eq(signed.csrf.as_bytes(), console.csrf.as_bytes()) {
            return Err(Refused::Forbidden(
                "This form has expired or did not come from the console. Go back and try again.",
            ));
        }
        Ok(ConsoleForm(console, signed.form))
    }
}

/// A form field's value, unless it was left empty.
pub fn filled(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
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
    let key = crate::identity::tokens::derive_key(state.auth.keys(), "console csrf");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(session_id.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
