//! `GET /v1/me/export`: everything stored about the caller, as one streamed JSON document.

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::middleware::Credentials;
use super::photos::caller;
use crate::app::AppState;
use crate::error::ApiError;
use crate::infra::rate_limit::Bucket;

pub async fn export(
    State(state): State<AppState>,
    Extension(credentials): Extension<Credentials>,
) -> Result<Response, ApiError> {
    let user = caller(&state, &credentials).await?;
    state
        .rate_limiter
        .check(Bucket::Export, &user.user_id.to_string())
        .await
        .map_err(ApiError::RateLimited)?;
    let stream = state.export.export(user.user_id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"pupmatch-export.json\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
