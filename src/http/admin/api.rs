//! `POST /admin/graphql`: the moderators' GraphQL API, for staff bearer tokens only.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::layout::no_store;
use crate::app::AppState;
use crate::auth::api;
use crate::error::{ApiError, annotate_graphql_errors, graphql_error_response as error_response};
use crate::http::middleware::Credentials;
use crate::http::{GRAPHQL_BODY_LIMIT, HttpState, graphql::transport};
use crate::identity::tokens::{Claims, TokenError};
use crate::moderation::model::Actor;

/// Staff only. Anyone else — no token, a token that does not work, a member's token — gets
/// 403 `FORBIDDEN`, the same answer the console gives.
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
    let params = transport::read_body(&headers, body, GRAPHQL_BODY_LIMIT).await;
    let request = match params.and_then(transport::Params::into_request) {
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
    credentials: Option<Result<Claims, TokenError>>,
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
